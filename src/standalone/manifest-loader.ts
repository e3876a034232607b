// Task manifests from files and folders (YAML or JSON, several documents per file, or a List),
// checked against the CRD's own OpenAPI schema with its defaults filled in, as the apiserver
// would. (The CRD's CEL rules are the apiserver's alone; the reconciler still refuses what it
// cannot run, with a reason.) Errors are one line: the file, the Task, the field, the problem.
// A file is hostile input: manifest-bounds.ts bounds what reading it may cost.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { loadAll } from 'js-yaml';

import { taskApiVersion, taskKind, type Task } from '../api/task.js';
import { terminalSafeText } from '../http/terminal-safe-json.js';
import { boundedDocuments, ManifestBoundError, readManifestText } from './manifest-bounds.js';

/**
 * A manifest that cannot be run, and why. Its message goes to the operator's terminal, and quotes
 * what the Task author wrote (the file's name, the text a JSON parse error shows, a field's name):
 * every terminal control in it (C0, DEL, C1: U+009B is CSI to xterm) is shown escaped as \uXXXX
 * (red team, terminal-escapes.test.ts: a manifest named with an OSC sequence set the window title).
 */
export class ManifestError extends Error {
  constructor(message: string) {
    super(withoutTerminalControls(message));
    this.name = 'ManifestError';
  }

  /** Several problems, a line each (each escaped as one message is: a newline in a file name stays \u000a). */
  static ofProblems(problems: readonly string[]): ManifestError {
    const error = new ManifestError('');
    error.message = problems.map(withoutTerminalControls).join('\n');
    return error;
  }
}

/** `text` with its C0 controls, DEL and C1 controls written as \uXXXX escapes: nothing a terminal obeys. */
export const withoutTerminalControls = terminalSafeText;

export interface LoadedTask {
  readonly task: Task;
  /** Where it came from: "examples/hello.yaml#1". */
  readonly source: string;
}

const manifestExtensions = new Set(['.yaml', '.yml', '.json']);
// src/standalone or dist/standalone: the package root is two levels up.
const crdPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'crds', 'task.yaml');

let validateTask: ValidateFunction | undefined;

/**
 * The schema with unknown fields refused: the apiserver prunes them from a structural schema and
 * kubectl's strict field validation turns that into an error; here the schema says so itself.
 * metadata (which the CRD leaves open) and objects that preserve unknown fields stay open.
 */
function refuseUnknownFields(schema: Record<string, unknown>, path: string): Record<string, unknown> {
  const properties = schema.properties as Record<string, Record<string, unknown>> | undefined;
  const result: Record<string, unknown> = { ...schema };
  if (properties) {
    result.properties = Object.fromEntries(Object.entries(properties).map(([name, child]) => [name, refuseUnknownFields(child, `${path}.${name}`)]));
    if (path !== '.metadata' && schema['x-kubernetes-preserve-unknown-fields'] !== true && schema.additionalProperties === undefined) {
      result.additionalProperties = false;
    }
  }
  if (schema.items && typeof schema.items === 'object') result.items = refuseUnknownFields(schema.items as Record<string, unknown>, `${path}[]`);
  return result;
}

function taskValidator(): ValidateFunction {
  if (validateTask) return validateTask;
  const [crd] = loadAll(readFileSync(crdPath, 'utf8')) as { spec: { versions: { schema: { openAPIV3Schema: object } }[] } }[];
  const schema = crd?.spec.versions[0]?.schema.openAPIV3Schema;
  if (!schema) throw new Error(`no openAPIV3Schema in ${crdPath}`);
  // strict off: the schema carries Kubernetes' own x-kubernetes-* keywords, which Ajv does not know.
  validateTask = new Ajv({ strict: false, useDefaults: true, allErrors: true, validateFormats: false }).compile(refuseUnknownFields(schema as Record<string, unknown>, ''));
  return validateTask;
}

function describeError(error: ErrorObject): string {
  const field = error.instancePath.replace(/^\//, '').replace(/\/(\d+)/g, '[$1]').replaceAll('/', '.') || '(the object)';
  if (error.keyword === 'additionalProperties') return `${field}: unknown field "${String(error.params.additionalProperty)}"`;
  if (error.keyword === 'enum') return `${field}: must be one of ${(error.params.allowedValues as unknown[]).map((value) => JSON.stringify(value)).join(', ')}`;
  return `${field}: ${error.message ?? 'is invalid'}`;
}

/** The bounded text of `file`, parsed, checked against manifest-bounds.ts, Lists unpacked. */
function documentsOf(file: string): unknown[] {
  const kind = path.extname(file) === '.json' ? 'JSON' : 'YAML';
  let documents: unknown[];
  try {
    const text = readManifestText(file);
    try {
      documents = kind === 'JSON' ? [JSON.parse(text) as unknown] : loadAll(text);
    } catch (error) {
      throw new ManifestError(`${file}: not valid ${kind}: ${(error as Error).message.split('\n')[0] ?? ''}`);
    }
    documents = boundedDocuments(documents, text.length);
  } catch (error) {
    if (error instanceof ManifestError) throw error;
    if (error instanceof ManifestBoundError) throw new ManifestError(`${file}: ${error.message}`);
    throw new ManifestError(`${file}: cannot be read: ${(error as Error).message}`);
  }
  return documents.flatMap((document) => {
    const list = document as { kind?: string; items?: unknown[] } | null;
    return list?.kind === 'List' || list?.kind === 'TaskList' ? (list.items ?? []) : [document];
  });
}

/** The manifest files of a folder (sorted), or the file itself. */
export function manifestFiles(target: string): string[] {
  let stats;
  try {
    stats = statSync(target);
  } catch {
    throw new ManifestError(`${target}: no such file or directory`);
  }
  // Anything but a folder is read as a file, which refuses what is not a regular one (a FIFO).
  if (!stats.isDirectory()) return [target];
  return readdirSync(target)
    .filter((name) => manifestExtensions.has(path.extname(name)))
    .sort()
    .map((name) => path.join(target, name));
}

/**
 * A manifest's value as an error shows it: JSON, cut at 100 characters. Not String(): a mapping
 * such as {toString: ""} makes that throw a TypeError instead of the ManifestError.
 */
function preview(value: unknown): string {
  let shown: string;
  try {
    // JSON.stringify gives undefined for undefined itself (its TypeScript signature does not say so).
    shown = value === undefined ? 'nothing' : JSON.stringify(value);
  } catch {
    shown = typeof value;
  }
  // JSON escapes C0 controls; DEL and C1 (U+009B is CSI to xterm) are escaped too: this goes to a terminal.
  shown = withoutTerminalControls(shown);
  return shown.length > 100 ? `${shown.slice(0, 100)}...` : shown;
}

/** The top-level fields of a Task object; another one is a typo the schema check would name, had the name check not come first. */
const taskTopLevelFields = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);

/**
 * Why a document has no usable metadata.name, said so its author can fix it: a misspelt metadata
 * (`metdata:`), a generateName (which kubectl apply refuses too), or a name that is not a DNS name.
 */
function nameProblem(document: Readonly<Record<string, unknown>>): string {
  const metadata = document.metadata as { name?: unknown; generateName?: unknown } | null | undefined;
  const name = metadata?.name;
  if (name !== undefined && name !== null) return `metadata.name must be a lowercase DNS name (a-z, 0-9, '-' and '.'), got ${preview(name)}`;
  if (metadata === undefined || metadata === null) {
    const unknown = Object.keys(document).filter((field) => !taskTopLevelFields.has(field));
    return `no metadata.name: the Task has no metadata${unknown.length > 0 ? `, and an unknown field ${unknown.map((field) => preview(field)).join(', ')}` : ''}`;
  }
  if (metadata.generateName !== undefined) return 'no metadata.name: a Task here needs a name of its own, as kubectl apply does (generateName is only for kubectl create)';
  return 'no metadata.name: every Task needs one';
}

/** The Tasks of one manifest file; throws ManifestError on the first bad document. Empty files give none. */
export function loadTaskFile(file: string): LoadedTask[] {
  const validate = taskValidator();
  const loaded: LoadedTask[] = [];
  documentsOf(file).forEach((document, index) => {
    if (document === null || document === undefined) return;
    const source = `${file}#${index + 1}`;
    const object = document as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
    if (object.apiVersion !== taskApiVersion || object.kind !== taskKind) {
      throw new ManifestError(`${source}: not a Task: a Task has apiVersion ${taskApiVersion} and kind ${taskKind}, this one apiVersion ${preview(object.apiVersion)} and kind ${preview(object.kind)}`);
    }
    const name = object.metadata?.name;
    if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) {
      throw new ManifestError(`${source}: ${nameProblem(document as Record<string, unknown>)}`);
    }
    if (!validate(document)) {
      const problems = (validate.errors ?? []).map(describeError);
      throw new ManifestError(`${source} (Task ${name}): ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? `; and ${problems.length - 3} more` : ''}`);
    }
    const task = document as Task;
    const namespace = object.metadata?.namespace ?? 'default';
    // What the apiserver accepts (an RFC 1123 label): the namespace names the Task's log directory.
    if (typeof namespace !== 'string' || !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
      throw new ManifestError(`${source}: metadata.namespace must be a lowercase DNS label of at most 63 characters, got ${preview(namespace)}`);
    }
    loaded.push({ task: { ...task, metadata: { ...task.metadata, namespace } }, source });
  });
  return loaded;
}

/** The key a loaded Task goes by: "namespace/name". */
export function loadedTaskKey(loaded: LoadedTask): string {
  return `${loaded.task.metadata.namespace ?? 'default'}/${loaded.task.metadata.name ?? ''}`;
}

/** How many bad files one ManifestError names; past them, how many more there were. */
const problemsShown = 10;

/**
 * Reads every Task in `targets` (files or folders). Throws one ManifestError naming every bad file
 * (its first problem, up to ten files, a line each), so a folder is fixed in one pass, not a run
 * per mistake; and for a Task defined twice.
 */
export function loadTaskManifests(targets: readonly string[]): LoadedTask[] {
  const loaded: LoadedTask[] = [];
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const file of targets.flatMap(manifestFiles)) {
    let tasks: LoadedTask[];
    try {
      tasks = loadTaskFile(file);
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      problems.push(error.message);
      continue;
    }
    for (const entry of tasks) {
      const key = loadedTaskKey(entry);
      const first = seen.get(key);
      if (first !== undefined) {
        problems.push(`${entry.source}: Task ${key} is defined twice (first in ${first})`);
        continue;
      }
      seen.set(key, entry.source);
      loaded.push(entry);
    }
  }
  if (problems.length > 0) {
    const more = problems.length - problemsShown;
    throw ManifestError.ofProblems([...problems.slice(0, problemsShown), ...(more > 0 ? [`and ${String(more)} more problems`] : [])]);
  }
  if (loaded.length === 0) throw new ManifestError(`no Task manifests in ${targets.join(', ')}`);
  return loaded;
}
