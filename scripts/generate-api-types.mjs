#!/usr/bin/env node
// Generates src/api/task.ts, the TypeScript view of the Task API, from crds/task.yaml, the API's
// source of truth. `--check` writes nothing and exits 1 when the file on disk is stale (CI and
// test/unit/task-api-types.test.ts run it), so the types can never drift from the CRD.
//
// Why a dedicated converter rather than json-schema-to-typescript: for this schema that package
// inlines every nested object as an anonymous type (no TaskSpec or TaskStatus to import without
// injecting titles), emits `metadata?: {}` (which the lint config forbids), drops defaults and
// CEL rules from the doc comments, and has no readonly or enum-value arrays. Fixing all of that
// around it would be longer than this file, which only has to understand the small subset of
// OpenAPI v3 that Kubernetes structural schemas allow.
//
// The conversion:
// - objects with properties become interfaces with readonly fields, in the CRD's field order;
//   a field is optional unless the schema lists it as required (defaulted fields stay optional:
//   the apiserver fills them, but code that creates Tasks may leave them out);
// - string enums become a const array of the values plus a union type of its elements;
// - arrays become readonly arrays, or a readonly non-empty tuple when minItems >= 1;
// - maps (additionalProperties) become Readonly<Record<string, T>>;
// - x-kubernetes-int-or-string becomes IntOrString;
// - integers become number: every int64 here (UIDs, nanosecond durations) stays far below 2^53;
// - descriptions become doc comments, followed by the apiserver's checks and the default.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const crdPath = 'crds/task.yaml';
const outputPath = 'src/api/task.ts';
const generatorPath = 'scripts/generate-api-types.mjs';
const commentWidth = 100;

// Names for the schema's objects and enums, by path ('spec.env[]' is an item of spec.env). A path
// not listed gets a name spelled from its path, so a new field still generates; list it here when
// a shorter name reads better.
const objectNames = new Map([
  ['', 'Task'],
  ['spec', 'TaskSpec'],
  ['spec.env[]', 'TaskEnvVar'],
  ['spec.resources', 'TaskResources'],
  ['spec.resources.limits', 'TaskResourceLimits'],
  ['spec.sandbox', 'TaskSandbox'],
  ['spec.sandbox.mounts[]', 'TaskMount'],
  ['spec.sandbox.seccomp', 'TaskSeccompProfile'],
  ['spec.backoff', 'TaskBackoff'],
  ['status', 'TaskStatus'],
  ['status.conditions[]', 'TaskCondition'],
  ['status.resources', 'TaskStatusResources'],
  ['status.resources.limits', 'TaskStatusLimits'],
  ['status.spawnTimings', 'TaskSpawnTimings'],
  ['status.hostIdentity', 'TaskHostIdentity'],
  ['status.failures[]', 'TaskIndexFailure'],
  ['status.indexTimings', 'TaskIndexTimings'],
  ['status.indexTimings.spawnLatency', 'TaskSpawnLatencyPercentiles'],
  ['status.indexTimings.runDuration', 'TaskRunDurationPercentiles'],
  ['status.partitions[]', 'TaskIndexPartition'],
]);
const enumNames = new Map([
  ['spec.sandbox.network', { type: 'TaskNetworkMode', values: 'taskNetworkModes' }],
  ['spec.sandbox.seccomp.type', { type: 'TaskSeccompType', values: 'taskSeccompTypes' }],
  ['status.phase', { type: 'TaskPhase', values: 'taskPhases' }],
  ['status.conditions[].type', { type: 'TaskConditionType', values: 'taskConditionTypes' }],
  ['status.conditions[].status', { type: 'TaskConditionStatus', values: 'taskConditionStatuses' }],
  ['status.reason', { type: 'TaskReason', values: 'taskReasons' }],
  ['status.resources.defaulted[]', { type: 'TaskLimitName', values: 'taskLimitNames' }],
]);
// The apiserver forbids a CRD from describing metadata (it publishes ObjectMeta's own docs), so
// that field alone may go without a description.
const fieldsWithoutDescription = new Set(['metadata']);

class CrdError extends Error {}

function readCrd() {
  const crd = load(readFileSync(path.join(root, crdPath), 'utf8'));
  const versions = crd?.spec?.versions ?? [];
  const storage = versions.filter((version) => version.storage === true);
  // One generated module per storage version; a second version needs a decision about which one
  // the code speaks, so stop rather than guess.
  if (versions.length !== 1 || storage.length !== 1) {
    throw new CrdError(`${crdPath}: expected exactly one version, served and stored; found ${versions.length}`);
  }
  return { crd, version: storage[0] };
}

// ---------------------------------------------------------------- naming

function pascalCase(word) {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function nameFromPath(schemaPath) {
  return 'Task' + schemaPath.split(/[.[\]]+/).filter(Boolean).map(pascalCase).join('');
}

function objectName(schemaPath) {
  return objectNames.get(schemaPath) ?? nameFromPath(schemaPath);
}

function enumName(schemaPath) {
  const named = enumNames.get(schemaPath);
  if (named) return named;
  const type = nameFromPath(schemaPath);
  const values = type.charAt(0).toLowerCase() + type.slice(1) + (type.endsWith('s') ? 'es' : 's');
  return { type, values };
}

// ---------------------------------------------------------------- rendering helpers

/** A JSON value as a TypeScript literal in the project's style (single quotes). */
function literal(value) {
  if (typeof value === 'string') return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  if (Array.isArray(value)) return `[${value.map(literal).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(([key, item]) => `${key}: ${literal(item)}`);
    return entries.length === 0 ? '{}' : `{ ${entries.join(', ')} }`;
  }
  return String(value);
}

function wrap(text, width) {
  const lines = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** A doc comment of paragraphs, indented, wrapped so lines stay within commentWidth. */
function docComment(texts, indent) {
  const body = texts.filter((text) => text !== undefined && text !== '');
  if (body.length === 0) return [];
  const width = commentWidth - indent.length - 3;
  // A description could contain the comment terminator; break it so the comment stays closed.
  const paragraphs = body.map((paragraph) => wrap(paragraph.replaceAll('*/', '*\\/'), width));
  const only = paragraphs.length === 1 && paragraphs[0].length === 1 ? paragraphs[0][0] : undefined;
  if (only !== undefined && indent.length + only.length + 7 <= commentWidth) return [`${indent}/** ${only} */`];
  const lines = [`${indent}/**`];
  paragraphs.forEach((paragraph, index) => {
    if (index > 0) lines.push(`${indent} *`);
    for (const line of paragraph) lines.push(`${indent} * ${line}`);
  });
  lines.push(`${indent} */`);
  return lines;
}

function plural(count, noun, nouns = `${noun}s`) {
  return `${count} ${count === 1 ? noun : nouns}`;
}

/** What the apiserver checks about a value beyond its type, as one sentence for the doc comment. */
function checksOf(schema) {
  const checks = [];
  const range = (low, high, unit) => {
    if (low !== undefined && high !== undefined) checks.push(`${low} to ${high}${unit}`);
    else if (low !== undefined) checks.push(`at least ${low}${unit}`);
    else if (high !== undefined) checks.push(`at most ${high}${unit}`);
  };
  range(schema.minimum, schema.maximum, '');
  if (schema.maxLength !== undefined) checks.push(`at most ${plural(schema.maxLength, 'character')}`);
  if (schema.minItems !== undefined || schema.maxItems !== undefined) {
    range(schema.minItems, schema.maxItems, ' items');
  }
  if (schema.maxProperties !== undefined) checks.push(`at most ${plural(schema.maxProperties, 'entry', 'entries')}`);
  if (schema.pattern !== undefined) checks.push(`matches /${schema.pattern}/`);
  if (schema.format === 'date-time') checks.push('an RFC 3339 date-time');
  if (schema['x-kubernetes-list-map-keys']) {
    checks.push(`unique by ${schema['x-kubernetes-list-map-keys'].join(', ')}`);
  }
  for (const validation of schema['x-kubernetes-validations'] ?? []) {
    checks.push(validation.message ?? `CEL: ${validation.rule}`);
  }
  return checks.length === 0 ? undefined : `Apiserver checks: ${checks.join('; ')}.`;
}

function defaultOf(schema) {
  return schema.default === undefined ? undefined : `@defaultValue \`${literal(schema.default)}\``;
}

// ---------------------------------------------------------------- schema walk

/**
 * Collects the declarations the schema needs. `interfaces` keeps the order in which objects
 * are met (parents before children), so the file reads top-down like the CRD.
 */
class Collector {
  enums = [];
  interfaces = [];
  names = new Map();

  claim(name, schemaPath) {
    const owner = this.names.get(name);
    if (owner !== undefined) {
      throw new CrdError(`${generatorPath}: ${schemaPath} and ${owner} would both be named ${name}; name one in objectNames`);
    }
    this.names.set(name, schemaPath);
  }

  /** The TypeScript type of `schema` at `schemaPath`, declaring named types as needed. */
  typeOf(schema, schemaPath, doc) {
    if (schema['x-kubernetes-int-or-string'] === true) return 'IntOrString';
    if (Array.isArray(schema.enum)) return this.declareEnum(schema, schemaPath, doc);
    switch (schema.type) {
      case 'string':
        return 'string';
      case 'integer':
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'array': {
        if (schema.items === undefined) throw new CrdError(`${crdPath}: ${schemaPath} is an array without items`);
        const item = this.typeOf(schema.items, `${schemaPath}[]`, schema.items.description ?? doc);
        const element = /[|&]/.test(item) ? `(${item})` : item;
        // A non-empty tuple makes `command[0]` a string, not string | undefined.
        return (schema.minItems ?? 0) >= 1 ? `readonly [${item}, ...${element}[]]` : `readonly ${element}[]`;
      }
      case 'object':
        if (schema.properties !== undefined) return this.declareInterface(schema, schemaPath, doc);
        if (typeof schema.additionalProperties === 'object') {
          return `Readonly<Record<string, ${this.typeOf(schema.additionalProperties, `${schemaPath}{}`, doc)}>>`;
        }
        return 'Readonly<Record<string, unknown>>';
      default:
        throw new CrdError(`${crdPath}: ${schemaPath || 'the root'} has a type this generator does not know: ${schema.type}`);
    }
  }

  declareEnum(schema, schemaPath, doc) {
    if (schema.type !== 'string') throw new CrdError(`${crdPath}: ${schemaPath} is a non-string enum`);
    const { type, values } = enumName(schemaPath);
    this.claim(type, schemaPath);
    this.enums.push({ type, valuesName: values, values: schema.enum, doc });
    return type;
  }

  declareInterface(schema, schemaPath, doc) {
    const name = objectName(schemaPath);
    this.claim(name, schemaPath);
    const declaration = { name, doc, checks: checksOf(schema), fields: [] };
    this.interfaces.push(declaration);
    const required = new Set(schema.required ?? []);
    for (const [field, fieldSchema] of Object.entries(schema.properties)) {
      const fieldPath = schemaPath === '' ? field : `${schemaPath}.${field}`;
      if (!fieldSchema.description && !(schemaPath === '' && fieldsWithoutDescription.has(field))) {
        throw new CrdError(`${crdPath}: ${fieldPath} has no description; every field needs one`);
      }
      declaration.fields.push({
        name: field,
        schema: fieldSchema,
        optional: !required.has(field),
        type: this.typeOf(fieldSchema, fieldPath, fieldSchema.description),
      });
    }
    return name;
  }
}

// The root object's own fields: apiVersion and kind are always these literals, and metadata is
// the apiserver's ObjectMeta rather than the empty object the CRD may declare.
function rootFieldOverrides(field) {
  switch (field.name) {
    case 'apiVersion':
      return { ...field, optional: false, type: 'typeof taskApiVersion' };
    case 'kind':
      return { ...field, optional: false, type: 'typeof taskKind' };
    case 'metadata':
      return { ...field, optional: false, type: 'ObjectMeta' };
    default:
      return field;
  }
}

// ---------------------------------------------------------------- output

function renderInterface({ name, doc, checks, fields }) {
  const lines = [...docComment([doc, checks], ''), `export interface ${name} {`];
  for (const field of fields) {
    // An object field's own checks are already on its interface; repeating them here is noise.
    const checks = field.schema.properties === undefined ? checksOf(field.schema) : undefined;
    const fieldDoc = field.name === 'metadata' && !field.schema.description
      ? ['Standard Kubernetes object metadata.']
      : [field.schema.description, checks, defaultOf(field.schema)];
    lines.push(...docComment(fieldDoc, '  '));
    lines.push(`  readonly ${field.name}${field.optional ? '?' : ''}: ${field.type};`);
  }
  lines.push('}');
  return lines.join('\n');
}

function renderEnum({ type, valuesName, values, doc }) {
  const oneLine = `export const ${valuesName} = ${literal(values)} as const;`;
  const valueLines = oneLine.length <= commentWidth
    ? [oneLine]
    : [`export const ${valuesName} = [`, ...values.map((value) => `  ${literal(value)},`), '] as const;'];
  return [
    ...docComment([`Every {@link ${type}}, in the CRD's order.`], ''),
    ...valueLines,
    '',
    ...docComment([doc], ''),
    `export type ${type} = (typeof ${valuesName})[number];`,
  ].join('\n');
}

function render(crd, version) {
  const names = crd.spec.names;
  const schema = version.schema.openAPIV3Schema;
  const collector = new Collector();
  collector.typeOf(schema, '', schema.description);
  const [task, ...nested] = collector.interfaces;
  task.fields = task.fields.map(rootFieldOverrides);
  const selectableFields = (version.selectableFields ?? []).map((field) => field.jsonPath.replace(/^\./, ''));

  const sections = [
    `// Generated from ${crdPath} by ${generatorPath} — do not edit by hand.
// The Task API (${crd.spec.group}/${version.name}) as TypeScript: the resource's names, the enum values
// as const arrays and unions, and one interface per object of the schema, documented from the
// CRD's descriptions. Change the CRD, then run \`node ${generatorPath}\`.`,
    `/** The API group Tasks belong to. */
export const taskGroup = ${literal(crd.spec.group)};

/** The API version this module describes (served and stored). */
export const taskVersion = ${literal(version.name)};

/** The apiVersion field of every Task: group/version. */
export const taskApiVersion = ${literal(`${crd.spec.group}/${version.name}`)};

/** The kind of a Task object. */
export const taskKind = ${literal(names.kind)};

/** The kind of a list of Tasks, as list calls return. */
export const taskListKind = ${literal(names.listKind ?? `${names.kind}List`)};

/** The resource name in API paths: /apis/${crd.spec.group}/${version.name}/namespaces/NS/${names.plural}. */
export const taskPlural = ${literal(names.plural)};

/** The singular name kubectl accepts. */
export const taskSingular = ${literal(names.singular)};

/** kubectl's short names for Tasks. */
export const taskShortNames = ${literal(names.shortNames ?? [])} as const;

/** Fields a field selector may name (e.g. \`spec.nodeName=node-a\`); the apiserver refuses others. */
export const taskSelectableFields = ${literal(selectableFields)} as const;`,
    `/** A Kubernetes int-or-string: quantities such as \`'500m'\` or \`2\` arrive as either. */
export type IntOrString = number | string;

/**
 * The part of Kubernetes' ObjectMeta that parafork reads and writes. The apiserver sends more
 * (managedFields, ownerReferences, ...); those are present at run time but not typed here.
 */
export interface ObjectMeta {
  readonly name?: string;
  readonly generateName?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  /** RFC 3339, second precision. */
  readonly creationTimestamp?: string;
  /** Set when deletion was requested; the object stays until its finalizers are gone. */
  readonly deletionTimestamp?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly finalizers?: readonly string[];
}

/** The metadata of a list response. */
export interface ListMeta {
  readonly resourceVersion?: string;
  /** Present when the list was cut short by a limit: pass it back to get the next page. */
  readonly continue?: string;
  readonly remainingItemCount?: number;
}`,
    ...collector.enums.map(renderEnum),
    renderInterface(task),
    `/** A page of Tasks, as a list call returns it. */
export interface TaskList {
  readonly apiVersion: typeof taskApiVersion;
  readonly kind: typeof taskListKind;
  readonly metadata: ListMeta;
  readonly items: readonly Task[];
}`,
    ...nested.map(renderInterface),
  ];
  return `${sections.join('\n\n')}\n`;
}

// ---------------------------------------------------------------- main

function main(args) {
  const check = args.includes('--check');
  const unknown = args.filter((arg) => arg !== '--check');
  if (unknown.length > 0) {
    console.error(`usage: node ${generatorPath} [--check]\nunknown argument: ${unknown.join(' ')}`);
    return 2;
  }
  const { crd, version } = readCrd();
  const generated = render(crd, version);
  const target = path.join(root, outputPath);
  if (check) {
    let current;
    try {
      current = readFileSync(target, 'utf8');
    } catch {
      current = undefined;
    }
    if (current === generated) return 0;
    console.error(
      `${outputPath} is ${current === undefined ? 'missing' : 'stale'}: it does not match ${crdPath}.\n` +
        `Run \`node ${generatorPath}\` and commit the result.`,
    );
    return 1;
  }
  writeFileSync(target, generated);
  console.log(`wrote ${outputPath}`);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof CrdError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
