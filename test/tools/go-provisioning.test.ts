// The control-plane tools build (scripts/build-tools.sh) on a machine with no Go: it names the pinned
// toolchain without fetching anything (a cached build needs no Go), and scripts/provision-go.sh
// fetches that toolchain from the Go module proxy through Debian's Go when none is on PATH. Needs
// root (apt-get install golang-1.N-go, once) and the network (Debian mirrors, proxy.golang.org).
//
// A whole cold build with Go off PATH (what scripts/test.sh does on a fresh machine without Go: ~9
// min idle on 2 vCPUs, ~58 min measured under load 17-25; README) is not a test here, so that no
// test is skipped in CI: run `PATH=<a PATH without go> PARAFORK_CACHE=$(mktemp -d) scripts/build-tools.sh`.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

const repositoryRoot = path.resolve(import.meta.dirname, '../..');
const provisionGo = path.join(repositoryRoot, 'scripts/provision-go.sh');

/** PATH without any directory holding a `go`. */
const pathWithoutGo = (process.env.PATH ?? '')
  .split(':')
  .filter((directory) => directory !== '' && !existsSync(path.join(directory, 'go')))
  .join(':');

const skip = missingRequirement('fetching Go installs a Debian package, which needs root', runningAsRoot);

describe.skipIf(skip !== undefined)(`Go for the tool build, with no Go on PATH${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let goEnv: NodeJS.ProcessEnv;

  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-no-go-'));
    const gopath = path.join(scratch, 'gopath');
    goEnv = { ...process.env, PATH: pathWithoutGo, GOPATH: gopath, GOMODCACHE: path.join(gopath, 'pkg/mod'), GOCACHE: path.join(scratch, 'gocache'), PARAFORK_CACHE: path.join(scratch, 'cache') };
  });
  afterAll(() => {
    // The module cache is read-only by design (Go's own `go clean -modcache` makes it writable first).
    const makeWritable = (directory: string): void => {
      chmodSync(directory, 0o755);
      for (const entry of readdirSync(directory)) {
        const entryPath = path.join(directory, entry);
        if (statSync(entryPath, { throwIfNoEntry: false })?.isDirectory()) makeWritable(entryPath);
      }
    };
    if (existsSync(path.join(scratch, 'gopath'))) makeWritable(path.join(scratch, 'gopath'));
    rmSync(scratch, { recursive: true, force: true });
  });

  it('names the pinned toolchain without fetching it, so a cached build needs no Go', () => {
    const result = spawnSync(provisionGo, ['--version'], { env: goEnv, encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^go1\.(2[6-9]|[3-9]\d)\.\d+ linux (amd64|arm64)\n$/);
    expect(existsSync(path.join(scratch, 'gopath'))).toBe(false);
  });

  it('fetches that Go 1.26 toolchain from the module proxy and prints its bin directory', () => {
    const pinned = execFileSync(provisionGo, ['--version'], { env: goEnv, encoding: 'utf8' }).split(' ')[0];
    const result = spawnSync(provisionGo, [], { env: goEnv, encoding: 'utf8', timeout: 600_000 });
    expect(result.status, result.stderr).toBe(0);
    const bin = result.stdout.trimEnd().split('\n').at(-1) ?? '';
    expect(bin.startsWith(path.join(scratch, 'gopath/pkg/mod/golang.org/toolchain@'))).toBe(true);
    expect(execFileSync(path.join(bin, 'go'), ['env', 'GOVERSION'], { env: goEnv, encoding: 'utf8' }).trim()).toBe(pinned);
  }, 600_000);
});
