// The chart's seccomp profile for the agent (charts/parafork/files/agent-seccomp-<arch>.json) is
// containerd's RuntimeDefault for a container with exactly the chart's capabilities, plus
// pivot_root(2) and nothing else: tools/node/cmd/agent-seccomp-profile builds it from the source
// of the containerd this node runs, and the chart's copy must be what it prints. After a containerd
// update (tools/node/go.mod) this fails until the file is regenerated:
//
//   cd tools/node && go run ./cmd/agent-seccomp-profile CAP_... > ../../charts/parafork/files/agent-seccomp-x86_64.json
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { load } from 'js-yaml';
import { describe, expect, inject, it } from 'vitest';

import { chartDir, repositoryRoot } from '../helpers/helm.js';

const unavailable = inject('nodeUnavailable');
/** Building the generator compiles part of containerd: minutes on a cold Go build cache. */
const generateTimeoutMs = 20 * 60_000;

describe.skipIf(unavailable !== '' || process.arch !== 'x64')("the chart's seccomp profile for the agent", () => {
  it("is containerd's RuntimeDefault for the chart's capabilities plus pivot_root", () => {
    const values = load(readFileSync(path.join(chartDir, 'values.yaml'), 'utf8')) as { securityContext: { capabilities: { add: string[] } } };
    const capabilities = values.securityContext.capabilities.add.map((name) => `CAP_${name}`);
    const goBin = execFileSync(path.join(repositoryRoot, 'scripts/provision-go.sh'), { encoding: 'utf8' }).trim().split('\n').at(-1)!;
    const generated = execFileSync(path.join(goBin, 'go'), ['run', '-mod=readonly', './cmd/agent-seccomp-profile', ...capabilities], {
      cwd: path.join(repositoryRoot, 'tools/node'),
      encoding: 'utf8',
      env: { ...process.env, GOWORK: 'off', GOFLAGS: '-mod=readonly' },
      timeout: generateTimeoutMs,
    });
    const shipped = readFileSync(path.join(chartDir, 'files/agent-seccomp-x86_64.json'), 'utf8');
    expect(shipped).toBe(generated);
    const profile = JSON.parse(shipped) as { defaultAction: string; syscalls: { names: string[]; action: string }[] };
    expect(profile.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(profile.syscalls.at(-1)).toEqual({ names: ['pivot_root'], action: 'SCMP_ACT_ALLOW' });
  }, generateTimeoutMs + 60_000);
});
