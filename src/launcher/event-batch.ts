// Decoding of the native event batches: a Float64Array of fixed-size records. The layout (the
// kinds' numbers, each field's index) is defined once, in native/src/event.h, and read here from
// the binding's `eventLayout`, so nothing here can drift from the native side.
//
// It is read when this module loads, into plain frozen objects: the decoding loop reads a dozen
// fields a spawn, and getters reading the binding lazily cost ~20x a plain property there. The
// addon loads here exactly when it can load for a Launcher (the same loader, the same files); when
// it cannot, `new Launcher()` says why, and these numbers are never read.
import { loadNativeBinding, type NativeEventLayout } from '../native/binding.js';

type Group = keyof NativeEventLayout;

/** The names this package decodes; the addon must number every one. */
const decodedNames: { readonly [G in Group]: readonly (keyof NativeEventLayout[G])[] } = {
  kinds: ['spawned', 'failed', 'exited', 'logClosed'],
  spawned: ['pid', 'stdoutFd', 'stderrFd', 'queuedNs', 'spawnNs', 'resultFd'],
  failed: ['errno', 'syscall', 'queuedNs', 'spawnNs'],
  exited: ['exitCode', 'signal', 'durationNs', 'userUs', 'systemUs', 'maxRssKb'],
  logClosed: ['payloadBytes', 'droppedBytes', 'diskBytes', 'writeErrno'],
};

/** The first name `layout` does not number, as 'group.name', or undefined when it numbers them all. */
function unnumbered(layout: NativeEventLayout | undefined): string | undefined {
  for (const group of Object.keys(decodedNames) as Group[]) {
    for (const name of decodedNames[group]) {
      const value: unknown = (layout?.[group] as Record<PropertyKey, unknown> | undefined)?.[name];
      if (typeof value !== 'number') return `${group}.${name}`;
    }
  }
  return undefined;
}

function loadableLayout(): NativeEventLayout | undefined {
  let layout: NativeEventLayout | undefined;
  try {
    layout = loadNativeBinding().eventLayout;  // undefined from an addon older than the layout
  } catch {
    return undefined;  // not loadable here: no Launcher can be made either, and it says why
  }
  // Loaded but without the layout this package reads: an addon built from other sources.
  const missing = unnumbered(layout);
  if (missing !== undefined) throw new Error(`parafork: the native addon's eventLayout has no ${missing}; rebuild it (npm run build:native)`);
  return layout;
}

const layout = loadableLayout();

/** One group of the layout as a plain frozen object (its numbers copied, so the loop reads small integers). */
function layoutGroup<G extends Group>(group: G): NativeEventLayout[G] {
  return Object.freeze({ ...layout?.[group] }) as NativeEventLayout[G];
}

export const eventKinds = layoutGroup('kinds');

/** Field offsets inside one record, after the kind (0) and the request id (1). */
export const spawnedFields = layoutGroup('spawned');
export const failedFields = layoutGroup('failed');
export const exitedFields = layoutGroup('exited');
export const logClosedFields = layoutGroup('logClosed');
