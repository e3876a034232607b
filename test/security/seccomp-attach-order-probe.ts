// Run by sandbox-bpf-programs.test.ts under strace(1), in a node of its own: spawns one Task in
// the sandbox argv[2] names ('default', 'unconfined', 'custom', 'user-namespace'), waits for it
// and prints its exit as JSON. The test reads from the trace when the child attached its filter.
import { Launcher, SeccompFilter, type SandboxOptions } from 'parafork';

const kind = process.argv[2] ?? 'default';
const sandboxes: Record<string, SandboxOptions> = {
  default: {},
  unconfined: { seccomp: 'unconfined' },
  custom: { seccomp: SeccompFilter.compile({ defaultAction: { action: 'SCMP_ACT_ALLOW' }, rules: [] }) },
  'user-namespace': { userNamespace: true },
};
const sandbox = sandboxes[kind];
if (sandbox === undefined) throw new Error(`no sandbox named ${kind}`);
const launcher = new Launcher({ threads: 1 });
try {
  const child = await launcher.spawn({ file: '/bin/true', args: [], sandbox });
  const { code, signal } = await child.exited;
  process.stdout.write(JSON.stringify({ code, signal }));
} finally {
  await launcher.close();
}
