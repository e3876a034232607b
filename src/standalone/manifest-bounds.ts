// Bounds on the work one manifest file can cause. A manifest comes from whoever can write the
// folder or hand the operator a file; before these bounds a 650-byte YAML "billion laughs" (nine
// levels of nine aliases) ran `parafork run` for minutes at 600 MB and crashed `agent --manifests`
// (issue 12, finding 10). js-yaml shares an aliased value instead of copying it, so parsing is
// cheap; the cost came after, in everything that walks the documents (schema check, JSON copies
// and output), which sees 9^9 strings. So each file is:
// - read only if it is a regular file (a FIFO named x.yaml would block the read, and the agent's
//   event loop, forever) of at most maxManifestBytes;
// - parsed, then copied into plain trees under a budget: the copy may not be much larger than
//   the text (aliases may repeat a value, not multiply the document), may not nest deeper than
//   maxManifestDepth, and may not contain itself (`&a [*a]`). The copy also unshares aliased
//   values, so a default filled into one Task never shows up in another.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** 4 MiB: 25 times examples/burst-1000.yaml (1,000 Tasks), above the apiserver's 3 MiB request limit. */
export const maxManifestBytes = 4 * 2 ** 20;

/** js-yaml's own default nesting limit; a Task is a handful of levels deep, kubectl's managedFields a dozen. */
export const maxManifestDepth = 100;

/**
 * What the documents of a file may weigh once aliases are expanded, beyond twice its length: a
 * node weighs 1, a string or key 1 more per character. Alias-free YAML or JSON weighs under twice
 * its length (each node takes at least a character to write); aliases may add up to 1 Mi more.
 */
const aliasAllowance = 2 ** 20;

/** A file that cannot be taken as a manifest, and why (the message goes after the file's name). */
export class ManifestBoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestBoundError';
  }
}

/** Not in fs.constants: open(2)'s O_PATH on Linux (x86-64, arm64). */
const openPath = 0o10000000;

/**
 * The text of `file`, refused unless it is a regular file of at most maxManifestBytes. What the
 * name leads to is looked at through an O_PATH descriptor, which opens nothing, and only a regular
 * file is opened, through that descriptor (so it is the file looked at): opening a device has
 * effects of its own (/dev/watchdog starts the node's watchdog, a tape rewinds, a FIFO wakes its
 * writer), and a manifest folder's links lead wherever their author chose (red team, session 12;
 * test/security/manifest-device-links.test.ts).
 */
export function readManifestText(file: string): string {
  const pathFd = openSync(file, openPath);
  let fd: number;
  try {
    const stats = fstatSync(pathFd);
    if (!stats.isFile()) throw new ManifestBoundError('is not a regular file');
    if (stats.size > maxManifestBytes) throw new ManifestBoundError(`is larger than a manifest file may be (${stats.size} bytes; at most ${maxManifestBytes / 2 ** 20} MiB)`);
    // O_NONBLOCK still: some files that stat as regular block their reader (/proc/kmsg), and would
    // hold the agent's event loop.
    fd = openSync(`/proc/self/fd/${pathFd}`, constants.O_RDONLY | constants.O_NONBLOCK);
  } finally {
    closeSync(pathFd);
  }
  try {
    // Read one byte past the cap: the file may have grown since fstat.
    const buffer = Buffer.allocUnsafe(maxManifestBytes + 1);
    let length = 0;
    for (let read = -1; read !== 0 && length < buffer.length; length += read) read = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > maxManifestBytes) throw new ManifestBoundError(`is larger than a manifest file may be (at most ${maxManifestBytes / 2 ** 20} MiB)`);
    return buffer.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}

interface CopyState {
  remaining: number;
  /** The objects on the path from the document's root to the value being copied. */
  readonly ancestors: Set<object>;
}

function copyWithin(value: unknown, depth: number, state: CopyState): unknown {
  state.remaining -= typeof value === 'string' ? 1 + value.length : 1;
  if (state.remaining < 0) throw new ManifestBoundError('expands through YAML aliases to far more than its own size (an alias bomb?)');
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= maxManifestDepth) throw new ManifestBoundError(`nests deeper than ${maxManifestDepth} levels`);
  if (state.ancestors.has(value)) throw new ManifestBoundError('has a YAML alias that contains itself');
  state.ancestors.add(value);
  let copy: unknown;
  if (Array.isArray(value)) {
    copy = value.map((item: unknown) => copyWithin(item, depth + 1, state));
  } else {
    // fromEntries defines own properties: a "__proto__" key stays a key, never a prototype.
    copy = Object.fromEntries(
      Object.entries(value).map(([key, item]) => {
        state.remaining -= key.length;
        return [key, copyWithin(item, depth + 1, state)];
      }),
    );
  }
  state.ancestors.delete(value);
  return copy;
}

/**
 * The documents parsed from a text of `textLength` characters as plain, unshared trees, or a
 * ManifestBoundError when they expand beyond twice that length plus the alias allowance, nest
 * too deep, or contain themselves.
 */
export function boundedDocuments(documents: readonly unknown[], textLength: number): unknown[] {
  const state: CopyState = { remaining: 2 * textLength + aliasAllowance, ancestors: new Set() };
  return documents.map((document) => copyWithin(document, 0, state));
}
