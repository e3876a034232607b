// The generated Task types match crds/task.yaml, and the CRD keeps the facts the agent's code
// relies on: its names, its reasons and phases, the nodeName field selector, the status subresource.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';

import {
  taskApiVersion,
  taskGroup,
  taskKind,
  taskPhases,
  taskPlural,
  taskReasons,
  taskSelectableFields,
  taskShortNames,
  taskVersion,
} from '../../src/api/task.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The parts of an OpenAPI v3 schema these tests walk. */
interface Schema {
  readonly description?: string;
  readonly enum?: readonly string[];
  readonly required?: readonly string[];
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly items?: Schema;
}

/** The parts of a CustomResourceDefinition these tests read. */
interface CustomResourceDefinition {
  readonly spec: {
    readonly group: string;
    readonly scope: string;
    readonly names: {
      readonly kind: string;
      readonly plural: string;
      readonly singular: string;
      readonly shortNames: readonly string[];
      readonly categories: readonly string[];
    };
    readonly versions: readonly {
      readonly name: string;
      readonly served: boolean;
      readonly storage: boolean;
      readonly subresources?: { readonly status?: object };
      readonly selectableFields?: readonly { readonly jsonPath: string }[];
      readonly additionalPrinterColumns?: readonly { readonly name: string; readonly jsonPath: string }[];
      readonly schema: { readonly openAPIV3Schema: Schema };
    }[];
  };
}

const crd = load(readFileSync(path.join(root, 'crds/task.yaml'), 'utf8')) as CustomResourceDefinition;
const version = crd.spec.versions[0]!;
const schema = version.schema.openAPIV3Schema;
const statusSchema = schema.properties!.status!;

/** Paths of the fields (object properties) under `node` that have no description. */
function fieldsWithoutDescription(node: Schema, at: string): string[] {
  const missing: string[] = [];
  for (const [name, field] of Object.entries(node.properties ?? {})) {
    const fieldPath = at === '' ? name : `${at}.${name}`;
    // The apiserver forbids describing metadata; it publishes ObjectMeta's own documentation.
    if (!field.description && fieldPath !== 'metadata') missing.push(fieldPath);
    missing.push(...fieldsWithoutDescription(field, fieldPath));
  }
  if (node.items) missing.push(...fieldsWithoutDescription(node.items, `${at}[]`));
  return missing;
}

describe('src/api/task.ts', () => {
  it('is what scripts/generate-api-types.mjs makes from crds/task.yaml today', () => {
    const check = spawnSync(process.execPath, ['scripts/generate-api-types.mjs', '--check'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('exports the names the CRD declares', () => {
    expect(taskGroup).toBe(crd.spec.group);
    expect(taskVersion).toBe(version.name);
    expect(taskApiVersion).toBe(`${crd.spec.group}/${version.name}`);
    expect(taskKind).toBe(crd.spec.names.kind);
    expect(taskPlural).toBe(crd.spec.names.plural);
    expect(taskShortNames).toEqual(crd.spec.names.shortNames);
  });
});

describe('crds/task.yaml', () => {
  it('defines parafork.dev/v1alpha1 Task, namespaced, as tasks and ptask', () => {
    expect(crd.spec.group).toBe('parafork.dev');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toMatchObject({ kind: 'Task', plural: 'tasks', singular: 'task' });
    // Tekton has a kind Task too: the short name is what keeps `kubectl get` unambiguous.
    expect(crd.spec.names.shortNames).toContain('ptask');
    expect(crd.spec.names.categories).toContain('parafork');
  });

  it('serves and stores exactly one version, v1alpha1, with a status subresource', () => {
    expect(crd.spec.versions).toHaveLength(1);
    expect(version).toMatchObject({ name: 'v1alpha1', served: true, storage: true });
    // The agent writes status through /status; without the subresource those writes would fail.
    expect(version.subresources?.status).toEqual({});
  });

  it('lets agents select Tasks by spec.nodeName', () => {
    expect(version.selectableFields?.map((field) => field.jsonPath)).toContain('.spec.nodeName');
    expect(taskSelectableFields).toContain('spec.nodeName');
  });

  it('shows phase, node, exit code, attempts, duration and age in kubectl get', () => {
    const columns = version.additionalPrinterColumns?.map((column) => column.name);
    expect(columns).toEqual(expect.arrayContaining(['Phase', 'Node', 'Exit', 'Attempts', 'Duration', 'Age']));
  });

  it('requires spec and spec.command', () => {
    expect(schema.required).toContain('spec');
    expect(schema.properties!.spec!.required).toContain('command');
  });

  it('has the phases and reasons the agent writes', () => {
    expect(statusSchema.properties!.phase!.enum).toEqual(['Pending', 'Running', 'Succeeded', 'Failed']);
    expect(taskPhases).toEqual(statusSchema.properties!.phase!.enum);
    expect(taskReasons).toEqual(statusSchema.properties!.reason!.enum);
    expect(taskReasons).toEqual(
      expect.arrayContaining([
        'Completed',
        'Error',
        'ExecFailed',
        'InvalidSpec',
        'DeadlineExceeded',
        'OOMKilled',
        'Killed',
        'Cancelled',
        'AgentRestarted',
        'BackoffLimitExceeded',
        'SandboxUnavailable',
      ]),
    );
  });

  it('describes every field, so kubectl explain can teach the API', () => {
    expect(fieldsWithoutDescription(schema, '')).toEqual([]);
  });
});
