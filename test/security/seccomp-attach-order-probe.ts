// Run by sandbox-bpf-programs.test.ts under strace(1), in a node of its own: spawns one Task in
// the sandbox argv[2] names (a key of `sandboxes` below), waits for it and prints its exit as
// JSON. The test reads from the trace when the child attached its filter.
import { readFileSync } from 'node:fs';

import { Launcher, SeccompFilter, type SandboxOptions, type SeccompFilterSpec } from 'parafork';

/** test/security/fixtures/allow-list-profile.json (Docker's format: SCMP_ACT_ERRNO for what it does not list) as a filter spec. */
function allowListSpec(): SeccompFilterSpec {
  const profile = JSON.parse(readFileSync(new URL('./fixtures/allow-list-profile.json', import.meta.url), 'utf8')) as {
    syscalls: { names: string[]; action: 'SCMP_ACT_ALLOW' }[];
  };
  return { defaultAction: { action: 'SCMP_ACT_ERRNO' }, rules: profile.syscalls.map(({ names, action }) => ({ names, action, args: [] })) };
}

const allowAll = { action: 'SCMP_ACT_ALLOW' } as const;

const kind = process.argv[2] ?? 'default';
const sandboxes: Record<string, SandboxOptions> = {
  default: {},
  unconfined: { seccomp: 'unconfined' },
  custom: { seccomp: SeccompFilter.compile({ defaultAction: allowAll, rules: [] }) },
  'custom-allow-list': { seccomp: SeccompFilter.compile(allowListSpec()) },
  'custom-refusing-capset': {
    seccomp: SeccompFilter.compile({ defaultAction: allowAll, rules: [{ names: ['capset'], action: 'SCMP_ACT_ERRNO', args: [] }] }),
  },
  'custom-logging-setresuid': {
    seccomp: SeccompFilter.compile({ defaultAction: allowAll, rules: [{ names: ['setresuid'], action: 'SCMP_ACT_LOG', args: [] }] }),
  },
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
