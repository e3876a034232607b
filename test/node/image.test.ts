// The agent image scripts/build-image.sh builds without Docker against what the Dockerfile
// describes, so the two cannot drift apart (issue 18): the runtime stage's ENTRYPOINT, CMD, ENV,
// USER, WORKDIR and EXPOSE, and the files its COPY --from=builder brings (the runtime tree of
// scripts/container-build.sh install) on a Node 24 base with no compilers and no sources.
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, inject, it } from 'vitest';

import { execForm, readDockerfile } from '../helpers/dockerfile.js';

const unavailable = inject('nodeUnavailable');
/** PATH of the images Docker builds FROM (node:24-bookworm-slim keeps Docker's default). */
const dockerDefaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface ImageConfig {
  config: { Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; User?: string; WorkingDir?: string; ExposedPorts?: Record<string, object> };
  rootfs: { diff_ids: string[] };
}

describe.skipIf(unavailable !== '')(`the image built without Docker matches the Dockerfile${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const runtime = readDockerfile().stages.at(-1)!;
  let image: ImageConfig;
  /** Every path in the image's layers, without the leading "./". */
  let files: Set<string>;

  // Read in a hook, not while collecting: a skipped run has no archive.
  beforeAll(() => {
    const archive = inject('agentImageArchive');
    const read = (member: string): string => execFileSync('tar', ['-xOf', archive, member], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
    const blob = (digest: string): string => `./blobs/sha256/${digest.slice('sha256:'.length)}`;
    const index = JSON.parse(read('./index.json')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(read(blob(index.manifests[0]!.digest))) as { config: { digest: string }; layers: { digest: string }[] };
    image = JSON.parse(read(blob(manifest.config.digest))) as ImageConfig;
    files = new Set(
      manifest.layers.flatMap((layer) =>
        execFileSync('bash', ['-c', 'tar -xOf "$1" "$2" | tar -t', '_', archive, blob(layer.digest)], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 })
          .split('\n')
          .map((entry) => entry.replace(/^\.\//, '').replace(/\/$/, '')),
      ),
    );
  });

  it('has the entrypoint and command of the Dockerfile', () => {
    expect(image.config.Entrypoint).toEqual(execForm(runtime, 'ENTRYPOINT'));
    expect(image.config.Cmd).toEqual(execForm(runtime, 'CMD'));
  });

  it("has the Dockerfile's environment, PATH on top of the base image's, and nothing else but NODE_VERSION", () => {
    const expected = new Map<string, string>();
    for (const instruction of runtime.instructions.filter((each) => each.keyword === 'ENV')) {
      for (const [, name = '', value = ''] of instruction.argument.matchAll(/(\w+)=(\S+)/g)) {
        expected.set(name, value.replace('$PATH', dockerDefaultPath));
      }
    }
    const actual = new Map((image.config.Env ?? []).map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
    expect(actual.get('NODE_VERSION')).toMatch(/^24\./);
    actual.delete('NODE_VERSION');
    expect(actual).toEqual(expected);
  });

  it('runs as the same user in the same working directory, exposing the same ports', () => {
    const user = runtime.instructions.findLast((each) => each.keyword === 'USER')?.argument ?? '';
    expect(image.config.User ?? '').toBe(user);
    expect(image.config.WorkingDir).toBe(runtime.instructions.findLast((each) => each.keyword === 'WORKDIR')?.argument);
    const exposed = runtime.instructions.filter((each) => each.keyword === 'EXPOSE').flatMap((each) => each.argument.split(/\s+/));
    expect(Object.keys(image.config.ExposedPorts ?? {}).sort()).toEqual(exposed.map((port) => (port.includes('/') ? port : `${port}/tcp`)).sort());
  });

  it('holds the runtime tree of container-build.sh install, Node 24 and libseccomp, and no compiler or source', () => {
    for (const file of [
      'opt/parafork/package.json',
      'opt/parafork/package-lock.json',
      'opt/parafork/dist/cli/main.js',
      'opt/parafork/crds/task.yaml',
      'opt/parafork/bin/parafork',
      'opt/parafork/node_modules',
      'usr/local/bin/node',
      // bookworm's /bin is a link to usr/bin.
      'usr/bin/sh',
      'usr/lib/x86_64-linux-gnu/libseccomp.so.2',
    ]) {
      expect(files, file).toContain(file);
    }
    // The addon (a pattern: the lint rule keeps .node file names for src/native/binding.ts).
    expect([...files].filter((file) => /^opt\/parafork\/native\/build\/Release\/parafork\.node$/.test(file))).toHaveLength(1);
    const unwanted = [...files].filter((file) => /^(opt\/parafork\/(src|native\/src|test)\/|usr\/bin\/(g\+\+|gcc|make)$)/.test(file));
    expect(unwanted).toEqual([]);
    // What the Dockerfile copies out of the builder is what the image has.
    const copies = runtime.instructions.filter((each) => each.keyword === 'COPY').map((each) => each.argument.split(/\s+/).at(-1)!.replace(/^\//, ''));
    for (const destination of copies) expect(files, destination).toContain(destination);
  });
});
