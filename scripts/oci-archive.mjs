#!/usr/bin/env node
// Writes an OCI image archive (an OCI image layout, tarred: the format `ctr images import` and
// `docker load` read) from uncompressed layer tarballs and an image config, with no container
// engine and no registry. scripts/build-image.sh calls it; the image spec it follows is
// https://github.com/opencontainers/image-spec (image-layout.md, manifest.md, config.md).
//
//   node scripts/oci-archive.mjs --name docker.io/library/parafork:dev --config CONFIG.json \
//        --layer BASE.tar [--layer MORE.tar ...] --output IMAGE.tar
//
// CONFIG.json holds the image config's `config` object (Entrypoint, Cmd, Env, WorkingDir, User,
// ExposedPorts, Labels). Layers stay uncompressed (layer.v1.tar): each layer's digest is then its
// diff id, and containerd unpacks them as fast as it can read them. Everything written is a
// function of the inputs (no timestamps but the epoch), so the same inputs give the same digest.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, linkSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    config: { type: 'string' },
    layer: { type: 'string', multiple: true },
    output: { type: 'string' },
  },
});
const usage = 'usage: oci-archive.mjs --name REF --config CONFIG.json --layer LAYER.tar... --output IMAGE.tar';
if (!values.name || !values.config || !values.layer?.length || !values.output) {
  console.error(usage);
  process.exit(2);
}
// A full reference, as containerd and the kubelet name images (docker.io/library/NAME:TAG).
if (!/^[a-z0-9.-]+(:\d+)?\/[a-z0-9._/-]+:[\w.-]+$/.test(values.name)) {
  console.error(`oci-archive: --name must be a full reference like docker.io/library/parafork:dev, got ${values.name}`);
  process.exit(2);
}

async function sha256File(file) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

const layout = mkdtempSync(path.join(path.dirname(path.resolve(values.output)), '.oci-layout-'));
try {
  const blobs = path.join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const putBlob = (bytes) => {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    writeFileSync(path.join(blobs, digest.slice(7)), bytes);
    return { digest, size: bytes.length };
  };

  const layers = [];
  for (const file of values.layer) {
    const digest = await sha256File(file);
    const target = path.join(blobs, digest.slice(7));
    // A hard link when the layer is on the same filesystem: layers are hundreds of megabytes.
    try {
      linkSync(file, target);
    } catch {
      copyFileSync(file, target);
    }
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: statSync(file).size });
  }

  const config = JSON.parse(readFileSync(values.config, 'utf8'));
  const imageConfig = {
    created: '1970-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
    history: layers.map((_, index) => ({ created: '1970-01-01T00:00:00Z', created_by: `scripts/build-image.sh layer ${index + 1}` })),
  };
  const configBlob = putBlob(Buffer.from(JSON.stringify(imageConfig)));
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
    layers,
  };
  const manifestBlob = putBlob(Buffer.from(JSON.stringify(manifest)));
  const tag = values.name.slice(values.name.lastIndexOf(':') + 1);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...manifestBlob,
        platform: { architecture: 'amd64', os: 'linux' },
        // containerd names the imported image after io.containerd.image.name.
        annotations: { 'io.containerd.image.name': values.name, 'org.opencontainers.image.ref.name': tag },
      },
    ],
  };
  writeFileSync(path.join(layout, 'index.json'), JSON.stringify(index));
  writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const tar = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', layout, '-cf', values.output, '.'], { stdio: 'inherit' });
  if (tar.status !== 0) throw new Error(`tar exited with ${tar.status}`);
  console.log(manifestBlob.digest);
} finally {
  rmSync(layout, { recursive: true, force: true });
}
