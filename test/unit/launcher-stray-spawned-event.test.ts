// A spawned event for a request id the Launcher no longer waits for (no pending spawn) hands over
// fds all the same: the result file's and the stdout/stderr pipes' read ends. The Launcher closes
// every one of them, so none leaks. The native engine is replaced by one that only keeps the
// Launcher's onEvents, so that the test can deliver such an event itself.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';

import type { NativeBinding, NativeEngineOptions } from '../../src/native/binding.js';

let deliver: NativeEngineOptions['onEvents'] | undefined;

vi.mock('../../src/native/binding.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/native/binding.js')>();
  const real = original.loadNativeBinding();
  class EngineThatOnlyListens {
    constructor(options: NativeEngineOptions) {
      deliver = options.onEvents;
    }
    spawn(): void {}
    ref(): void {}
    unref(): void {}
    close(): void {}
    kill(): number {
      return 0;
    }
  }
  const binding = Object.assign(Object.create(null) as NativeBinding, real, { SpawnEngine: EngineThatOnlyListens });
  return { ...original, loadNativeBinding: () => binding };
});

const { Launcher } = await import('../../src/launcher/launcher.js');
const { eventKinds, spawnedFields } = await import('../../src/launcher/event-batch.js');
const { loadNativeBinding } = await import('../../src/native/binding.js');

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EBADF') return false;
    throw error;
  }
}

describe('a spawned event for an id no spawn waits for', () => {
  it('closes the stdout and stderr pipes and the result file it hands over', async () => {
    const launcher = new Launcher({ threads: 1 });
    const stdoutFd = openSync('/dev/null', 'r');
    const stderrFd = openSync('/dev/null', 'r');
    const resultFd = openSync('/dev/null', 'r');
    try {
      const stride = loadNativeBinding().eventStride;
      const batch = new Float64Array(stride).fill(-1);
      batch[0] = eventKinds.spawned;
      batch[1] = 4242; // never requested
      batch[spawnedFields.pid] = 1;
      batch[spawnedFields.stdoutFd] = stdoutFd;
      batch[spawnedFields.stderrFd] = stderrFd;
      batch[spawnedFields.resultFd] = resultFd;
      batch[spawnedFields.queuedNs] = 0;
      batch[spawnedFields.spawnNs] = 0;
      expect(deliver).toBeDefined();
      deliver?.(batch, stride);
      // The pipes are closed at once; the result file on the thread pool (ResultFile.close).
      expect({ stdout: isOpen(stdoutFd), stderr: isOpen(stderrFd) }).toEqual({ stdout: false, stderr: false });
      await vi.waitFor(() => expect(isOpen(resultFd)).toBe(false));
    } finally {
      for (const fd of [stdoutFd, stderrFd, resultFd]) if (isOpen(fd)) closeSync(fd);
      await launcher.close();
    }
  });
});
