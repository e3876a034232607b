// Scratch directories that a default Task sees through the agent's root. A Task's /tmp is a private
// tmpfs and the node's world-writable /var/tmp and /var/crash are masked (red team, session 12:
// test/security/sandbox-world-writable-dirs.test.ts), so tests whose Tasks must see a file of the
// test's own keep it under this folder of the root: root's, 0755, not shared with other users,
// never masked. In the Pod (test/node/security-in-pod.test.ts) it is an emptyDir, as /var/tmp was.
// The folder goes again at the end of a run (removeTaskVisibleScratchParent, a global teardown)
// once no test keeps anything in it, so a run leaves nothing on the machine.
import { mkdirSync, mkdtempSync, rmdirSync } from 'node:fs';
import path from 'node:path';

export const taskVisibleScratchParent = '/var/lib/parafork-tests';

/** A new directory (0700, as mkdtemp makes it) under taskVisibleScratchParent; the caller removes it. */
export function makeTaskVisibleScratch(prefix: string): string {
  for (let attempt = 1; ; attempt++) {
    mkdirSync(taskVisibleScratchParent, { recursive: true, mode: 0o755 });
    try {
      return mkdtempSync(path.join(taskVisibleScratchParent, prefix));
    } catch (error) {
      // Another project's teardown removed the empty folder between the two calls: make it again.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === 3) throw error;
    }
  }
}

/** Removes taskVisibleScratchParent if it is empty (another run's or test's files keep it). */
export function removeTaskVisibleScratchParent(): void {
  try {
    rmdirSync(taskVisibleScratchParent);
  } catch {
    // Not empty, not there, or a mount (the Pod's emptyDir): left as it is.
  }
}
