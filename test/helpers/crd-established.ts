// Whether a CustomResourceDefinition, as `kubectl get -o json` prints it, is Established. Read
// from the whole object rather than a jsonpath filter: `{.status.conditions[?(...)]}` makes
// kubectl exit 1 ("<nil> is not array or slice and cannot be filtered") while the apiserver has
// written no condition yet, which a loaded machine shows (test/integration/global-setup.ts failed
// on it), where an absent condition should only mean "not yet".
interface CrdStatus {
  readonly status?: { readonly conditions?: readonly { readonly type?: string; readonly status?: string }[] | null };
}

export function crdEstablished(json: string): boolean {
  const crd = JSON.parse(json) as CrdStatus;
  return (crd.status?.conditions ?? []).some((condition) => condition.type === 'Established' && condition.status === 'True');
}
