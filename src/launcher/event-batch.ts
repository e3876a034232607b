// Decoding of the native event batches: a Float64Array of fixed-size records. The layout (the
// kinds' numbers, each field's index) is defined once, in native/src/event.h, and read from the
// binding's `eventLayout` when a field is first looked up (the addon loads with the first
// Launcher, not with this module), so nothing here can drift from the native side.
import { loadNativeBinding, type NativeEventLayout } from '../native/binding.js';

type Group = keyof NativeEventLayout;

/** The names this package decodes; the addon must number every one. */
const decodedNames: { readonly [G in Group]: readonly (keyof NativeEventLayout[G])[] } = {
  kinds: ['spawned', 'failed', 'exited'],
  spawned: ['pid', 'stdoutFd', 'stderrFd', 'queuedNs', 'spawnNs'],
  failed: ['errno', 'syscall', 'queuedNs', 'spawnNs'],
  exited: ['exitCode', 'signal', 'durationNs', 'userUs', 'systemUs', 'maxRssKb'],
};

let layout: NativeEventLayout | undefined;

/** The first name `read` does not number, as 'group.name', or undefined when it numbers them all. */
function unnumbered(read: NativeEventLayout | undefined): string | undefined {
  for (const group of Object.keys(decodedNames) as Group[]) {
    for (const name of decodedNames[group]) {
      const value: unknown = (read?.[group] as Record<PropertyKey, unknown> | undefined)?.[name];
      if (typeof value !== 'number') return `${group}.${name}`;
    }
  }
  return undefined;
}

/** The addon's layout, checked once: a name it does not number is a stale build, said plainly. */
function nativeLayout(): NativeEventLayout {
  if (layout) return layout;
  const read = loadNativeBinding().eventLayout as NativeEventLayout | undefined;
  const missing = unnumbered(read);
  if (read === undefined || missing !== undefined) {
    throw new Error(`parafork: the native addon's eventLayout has no ${missing ?? 'eventLayout'}; rebuild it (npm run build:native)`);
  }
  layout = read;
  return layout;
}

/** One group of the layout, each number read through a getter (inlined by V8: no cost per event). */
function layoutGroup<G extends Group>(group: G): NativeEventLayout[G] {
  const numbers = {};
  for (const name of decodedNames[group]) {
    Object.defineProperty(numbers, name, { enumerable: true, get: () => nativeLayout()[group][name] });
  }
  return Object.freeze(numbers) as NativeEventLayout[G];
}

export const eventKinds = layoutGroup('kinds');

/** Field offsets inside one record, after the kind (0) and the request id (1). */
export const spawnedFields = layoutGroup('spawned');
export const failedFields = layoutGroup('failed');
export const exitedFields = layoutGroup('exited');
