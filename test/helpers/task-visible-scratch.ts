// Scratch directories that a default Task sees through the agent's root. A Task's /tmp is a private
// tmpfs and the node's world-writable /var/tmp and /var/crash are masked (red team, session 12:
// test/security/sandbox-world-writable-dirs.test.ts), so tests whose Tasks must see a file of the
// test's own keep it under this folder of the root: root's, 0755, not shared with other users,
// never masked. In the Pod (test/node/security-in-pod.test.ts) it is an emptyDir, as /var/tmp was.
import { mkdirSync, mkdtempSync } from 'node:fs';
import path from 'node:path';

export const taskVisibleScratchParent = '/var/lib/parafork-tests';

/** A new directory (0700, as mkdtemp makes it) under taskVisibleScratchParent; the caller removes it. */
export function makeTaskVisibleScratch(prefix: string): string {
  mkdirSync(taskVisibleScratchParent, { recursive: true, mode: 0o755 });
  return mkdtempSync(path.join(taskVisibleScratchParent, prefix));
}
