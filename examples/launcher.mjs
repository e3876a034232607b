// launcher: the library on its own. Spawns a process from a native thread (never the JS thread),
// pipes its stdout, sends its stderr to a file, waits for its exit; then shows a SpawnError and a
// kill through the pidfd. No root needed.
//
//   npm install parafork            # in your project (Node >= 22.19; builds the addon: g++, make,
//                                   # python3, libseccomp-dev)
//   node launcher.mjs               # prints the lines in the comments below
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';

import { Launcher, SpawnError } from 'parafork';

const launcher = new Launcher(); // { threads?, observer?, sandboxStagingDirectory? } (docs/library.md)
const scratch = mkdtempSync(path.join(tmpdir(), 'launcher-example-'));

const child = await launcher.spawn({
  file: 'sh', // without a slash: looked up in env.PATH
  args: ['-c', 'echo hello; echo oops >&2; exit 3'],
  env: { PATH: '/usr/bin:/bin' }, // the whole environment; default: this process's
  cwd: scratch,
  stdout: 'pipe', // 'ignore' (default) | 'pipe' | { file, append? }
  stderr: { file: path.join(scratch, 'err.log') },
});
const stdout = await text(child.stdout); // a Readable, to its end
const exit = await child.exited; // { code, signal, durationNs, rusage }
const stderr = readFileSync(path.join(scratch, 'err.log'), 'utf8');
console.log(`exit code ${exit.code}, stdout ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`); // exit code 3, stdout "hello\n", stderr "oops\n"
console.log(`clone to exec: ${child.timings.spawnNs > 0 ? 'measured' : 'missing'}`); // clone to exec: measured ({ queuedNs, spawnNs })

try {
  await launcher.spawn({ file: 'no-such-command', env: { PATH: '/usr/bin:/bin' } });
} catch (error) {
  if (!(error instanceof SpawnError)) throw error;
  console.log(`SpawnError ${error.code} in ${error.syscall}`); // SpawnError ENOENT in execve
}

const sleeper = await launcher.spawn({ file: 'sleep', args: ['60'] });
sleeper.kill('SIGTERM'); // through the pidfd: never a recycled pid
console.log(`sleep ended by ${(await sleeper.exited).signal}`); // sleep ended by SIGTERM

await launcher.close(); // waits for running children
rmSync(scratch, { recursive: true });
