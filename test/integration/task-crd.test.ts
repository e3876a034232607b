// The Task CRD as a real kube-apiserver serves it: defaults filled in on create, schema violations
// refused with the field named, the printer columns and the spec.nodeName field selector agents
// watch with, `kubectl explain`, and immutability of what a Task runs. Part of the product's
// acceptance: a user's kubectl session behaves like this.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { taskApiVersion, taskKind, type TaskSpec } from '../../src/api/task.js';
import {
  createTestNamespace,
  getTask,
  kubectl,
  kubectlResult,
  waitFor,
  type KubectlResult,
  type TestNamespace,
} from '../helpers/cluster.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let namespace: TestNamespace;

beforeAll(async () => {
  namespace = await createTestNamespace('task-crd');
});

afterAll(async () => {
  await namespace.cleanup();
});

/** A Task manifest as JSON, which `kubectl apply` reads like YAML. `spec` is unchecked on purpose. */
function taskManifest(name: string, spec: object): string {
  return JSON.stringify({ apiVersion: taskApiVersion, kind: taskKind, metadata: { name }, spec });
}

/** `kubectl apply` of one Task, as a user would send it; the result, whatever it is. */
function applyTask(name: string, spec: object): Promise<KubectlResult> {
  return kubectlResult(['apply', '--namespace', namespace.name, '--filename', '-'], {
    input: taskManifest(name, spec),
  });
}

async function applyValidTask(name: string, spec: TaskSpec): Promise<void> {
  const result = await applyTask(name, spec);
  expect(result.status, result.stderr).toBe(0);
}

/** `kubectl get` as a table: the header's columns and the rows' cells, split on runs of spaces. */
function parseTable(output: string): { header: string[]; rows: string[][] } {
  const [headerLine = '', ...rowLines] = output.trimEnd().split('\n');
  // Empty cells vanish: a row has only the cells that hold something.
  const cells = (line: string): string[] => line.trim().split(/\s+/);
  return { header: cells(headerLine), rows: rowLines.map(cells) };
}

describe('a valid Task', () => {
  it('is stored with the schema defaults filled in', async () => {
    await applyValidTask('defaults', { command: ['/bin/true'] });

    const task = await getTask(namespace.name, 'defaults');
    expect(task.spec).toEqual({
      command: ['/bin/true'],
      workingDir: '/',
      suspend: false,
      backoffLimit: 0,
      resultPolicy: 'File',
      backoff: { initialSeconds: 10, maxSeconds: 360 },
      sandbox: {
        network: 'none',
        rootfs: '/',
        readOnlyRootFilesystem: true,
        tmpSizeLimit: '64Mi',
        // No runAsUser/runAsGroup default: unset, each attempt gets host ids of its own.
        userNamespace: false,
        seccomp: { type: 'RuntimeDefault' },
      },
    });
    // Nobody but the agent writes status, and there is no agent here: the apiserver shows the
    // CRD's default, as it gives a new Pod phase Pending.
    expect(task.status).toEqual({ phase: 'Pending', reason: 'WaitingForAgent', message: expect.stringMatching(/^no agent has taken this Task up yet/) as string });
  });

  it('keeps the default status out of its way once an agent writes one', async () => {
    await applyValidTask('written', { command: ['/bin/true'] });
    await kubectl(['patch', 'ptask', 'written', '--namespace', namespace.name, '--subresource', 'status', '--type', 'merge', '--patch', JSON.stringify({ status: { phase: 'Running', reason: null, message: null, attempts: 1 } })]);
    expect((await getTask(namespace.name, 'written')).status).toEqual({ phase: 'Running', attempts: 1 });
  });

  it('shows in `kubectl get ptask` with its printer columns', async () => {
    await applyValidTask('columns', { command: ['/bin/true'], nodeName: 'node-columns' });

    const table = parseTable(await kubectl(['get', 'ptask', 'columns', '--namespace', namespace.name]));
    expect(table.header).toEqual(['NAME', 'PHASE', 'NODE', 'EXIT', 'ATTEMPTS', 'COMPLETIONS', 'DURATION', 'AGE']);
    // Until an agent reports, the phase is the default Pending; the name, node and age are known.
    expect(table.rows).toHaveLength(1);
    expect(table.rows[0]).toEqual(['columns', 'Pending', 'node-columns', expect.stringMatching(/^\d+s$/)]);

    // REASON has priority 1: shown only with -o wide.
    const wide = parseTable(await kubectl(['get', 'ptask', 'columns', '--namespace', namespace.name, '--output', 'wide']));
    expect(wide.header).toEqual(['NAME', 'PHASE', 'NODE', 'EXIT', 'ATTEMPTS', 'COMPLETIONS', 'DURATION', 'REASON', 'AGE']);
    expect(parseTable(await kubectl(['get', 'ptask', 'columns', '--namespace', namespace.name, '--output', 'wide'])).rows[0]).toContain('WaitingForAgent');
  });
});

describe('a schema-invalid Task is refused by the apiserver, naming the field', () => {
  it.each([
    { problem: 'missing command', name: 'no-command', fieldPath: 'spec.command', spec: { args: ['x'] } },
    { problem: 'empty command', name: 'empty-command', fieldPath: 'spec.command', spec: { command: [] } },
    {
      problem: 'negative backoffLimit',
      name: 'negative-backoff-limit',
      fieldPath: 'spec.backoffLimit',
      spec: { command: ['/bin/true'], backoffLimit: -1 },
    },
    {
      problem: 'env name that is not a C identifier',
      name: 'bad-env-name',
      fieldPath: 'spec.env[0].name',
      spec: { command: ['/bin/true'], env: [{ name: '1ST-VAR', value: 'x' }] },
    },
    {
      problem: 'unknown field',
      name: 'unknown-field',
      fieldPath: 'spec.commandLine',
      spec: { command: ['/bin/true'], commandLine: '/bin/true' },
    },
    {
      problem: 'sandbox.network outside its enum',
      name: 'bad-network',
      fieldPath: 'spec.sandbox.network',
      spec: { command: ['/bin/true'], sandbox: { network: 'bridge' } },
    },
  ])('$problem: $fieldPath', async ({ name, fieldPath, spec }) => {
    const result = await applyTask(name, spec);

    expect(result.status).not.toBe(0);
    // Refused by the server (422 Invalid, or 400 for strict decoding), not by kubectl itself.
    expect(result.stderr).toMatch(/is invalid|Error from server/);
    expect(result.stderr).toContain(fieldPath);
    const lookup = await kubectlResult(['get', 'tasks.parafork.dev', name, '--namespace', namespace.name]);
    expect(lookup.stderr).toContain('NotFound');
  });
});

describe('the spec.nodeName field selector', () => {
  it('lists only the Tasks bound to that node', async () => {
    await applyValidTask('on-node-a', { command: ['/bin/true'], nodeName: 'node-a' });
    await applyValidTask('on-node-b', { command: ['/bin/true'], nodeName: 'node-b' });
    await applyValidTask('unbound', { command: ['/bin/true'] });

    const names = await kubectl([
      'get',
      'ptask',
      '--namespace',
      namespace.name,
      '--field-selector',
      'spec.nodeName=node-a',
      '--output',
      'name',
    ]);
    expect(names.trim().split('\n')).toEqual(['task.parafork.dev/on-node-a']);
  });
});

describe('kubectl explain', () => {
  it("prints a field's description from the CRD", async () => {
    const description = commandDescriptionInCrd();
    // The apiserver publishes a new CRD's OpenAPI a moment after it is Established.
    const output = await waitFor(
      async (observed) => {
        const result = await kubectlResult(['explain', 'task.spec.command']);
        observed(result);
        return result.status === 0 ? result.stdout : undefined;
      },
      { description: '`kubectl explain task.spec.command` to succeed', timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(output).toMatch(/^FIELD:\s+command <\[\]string>$/m);
    // explain wraps the text to its width: compare with whitespace collapsed.
    const collapse = (text: string): string => text.replace(/\s+/g, ' ').trim();
    expect(collapse(output)).toContain(collapse(description));
  });
});

describe('after creation', () => {
  it('refuses a change of spec.command, naming the field', async () => {
    await applyValidTask('frozen-command', { command: ['/bin/true'] });

    const result = await applyTask('frozen-command', { command: ['/bin/false'] });

    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('spec.command');
    expect(result.stderr).toContain('cannot be changed after the Task is created');
    expect((await getTask(namespace.name, 'frozen-command')).spec.command).toEqual(['/bin/true']);
  });

  it('accepts a change of spec.suspend', async () => {
    await applyValidTask('suspendable', { command: ['/bin/true'] });
    const before = await getTask(namespace.name, 'suspendable');

    await applyValidTask('suspendable', { command: ['/bin/true'], suspend: true });

    const after = await getTask(namespace.name, 'suspendable');
    expect(after.spec.suspend).toBe(true);
    expect(after.spec.command).toEqual(['/bin/true']);
    // A spec change: the agent learns of it through metadata.generation.
    expect(after.metadata.generation).toBe((before.metadata.generation ?? 0) + 1);
  });
});

/** The description of spec.command, as crds/task.yaml writes it. */
function commandDescriptionInCrd(): string {
  interface Schema {
    readonly description?: string;
    readonly properties?: Readonly<Record<string, Schema>>;
  }
  interface Crd {
    readonly spec: { readonly versions: readonly { readonly schema: { readonly openAPIV3Schema: Schema } }[] };
  }
  const crd = load(readFileSync(path.join(root, 'crds/task.yaml'), 'utf8')) as Crd;
  const description = crd.spec.versions[0]?.schema.openAPIV3Schema.properties?.spec?.properties?.command?.description;
  if (description === undefined) throw new Error('crds/task.yaml has no description for spec.command');
  return description;
}
