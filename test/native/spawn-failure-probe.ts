// Run by spawn-failure-steps.test.ts in a node of its own (with fewer capabilities): spawns once
// with the options in argv[2] and prints the SpawnError's step, code, syscall and message as JSON.
import { Launcher, SpawnError, type SpawnOptions } from 'parafork';

const launcher = new Launcher({ threads: 1 });
try {
  const child = await launcher.spawn(JSON.parse(process.argv[2] ?? '{}') as SpawnOptions);
  await child.exited;
  process.stdout.write('null');
} catch (error) {
  if (!(error instanceof SpawnError)) throw error;
  const { step, code, syscall, message } = error;
  process.stdout.write(JSON.stringify({ step, code, syscall, message }));
} finally {
  await launcher.close();
}
