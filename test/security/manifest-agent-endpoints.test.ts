// `agent --manifests` has no apiserver to ask who a reader is, and served every Task's output
// (GET /logs/<ns>/<name>) and status with its stderr tail (GET /tasks) to anyone who reached its
// port: by default every interface (0.0.0.0), so anyone on the network, and every local user,
// although the logs on disk are root's alone (mode 0700: a Task's output may hold secrets). Now
// the two answer only a peer on this machine whose socket is root's or the agent's own user's;
// anyone else gets 403 and none of the output. /metrics, /healthz and /readyz stay open (a
// Prometheus scrapes from elsewhere; they hold no Task output).
// Needs root (the agent sandboxes its Tasks; the test reads as another uid).
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { waitFor } from '../helpers/wait-for.js';
import { startManifestAgent, type ManifestAgent } from './standalone-cli.js';

const skip = missingRequirement('the agent sandboxes its Tasks, which needs root', runningAsRoot);

/** An address of this machine that is not loopback: a peer coming from it is "the network". */
const outsideAddress = Object.values(networkInterfaces())
  .flat()
  .find((address) => address?.family === 'IPv4' && !address.internal)?.address;

const secret = 'secret-output-7d1f';

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** GET url as `uid` (a user of the machine other than root), with curl's exit status mapped to an HTTP one. */
async function getAs(uid: number, url: string): Promise<Answer> {
  const child = spawn('/usr/bin/curl', ['-s', '-o', '-', '-w', '\n%{http_code}', url], { uid, gid: uid, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise((resolve) => child.once('close', resolve));
  const cut = output.lastIndexOf('\n');
  return { status: Number(output.slice(cut + 1)), body: output.slice(0, cut) };
}

async function get(url: string, localAddress?: string): Promise<Answer> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    request(url, { localAddress }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe.skipIf(skip !== undefined)(`agent --manifests keeps Task output from other users and the network${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let folder: string;
  let agent: ManifestAgent;
  let port: string;
  beforeAll(async () => {
    folder = mkdtempSync(path.join(tmpdir(), 'parafork-endpoints-'));
    writeFileSync(path.join(folder, 'talker.yaml'), `apiVersion: parafork.dev/v1alpha1\nkind: Task\nmetadata: {name: talker}\nspec: {command: [/bin/sh, -c, "echo ${secret}; echo ${secret} >&2; exit 3"]}\n`);
    agent = await startManifestAgent(folder, ['--listen-address', '0.0.0.0']);
    port = new URL(agent.base).port;
    await waitFor(async () => (await agent.tasks()).get('talker')?.status?.phase === 'Failed' || undefined, { timeoutMs: 20_000, description: 'the Task to end' });
  });
  afterAll(async () => {
    await agent.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it('serves the logs and the Tasks to root on this machine', async () => {
    const logs = await get(`http://127.0.0.1:${port}/logs/default/talker`);
    expect(logs.status).toBe(200);
    expect(logs.body).toContain(secret);
    expect((await get(`http://127.0.0.1:${port}/tasks`)).body).toContain(secret);
  });

  it('refuses another local user, on loopback, with 403 and none of the output', async () => {
    chmodSync(folder, 0o755);
    for (const endpoint of ['/logs/default/talker', '/logs/default/talker?follow=true', '/tasks']) {
      const answer = await getAs(65534, `http://127.0.0.1:${port}${endpoint}`);
      expect(answer.status, endpoint).toBe(403);
      expect(answer.body).not.toContain(secret);
    }
  });

  it.skipIf(outsideAddress === undefined)('refuses a peer coming from the network (a non-loopback address)', async () => {
    for (const endpoint of ['/logs/default/talker', '/tasks']) {
      const answer = await get(`http://${outsideAddress ?? ''}:${port}${endpoint}`, outsideAddress);
      // Root's socket, but the address is not loopback: with --listen-address 0.0.0.0, a remote
      // machine's connection looks the same from here.
      expect(answer.status, endpoint).toBe(403);
      expect(answer.body).not.toContain(secret);
    }
  });

  it('keeps /metrics, /healthz and /readyz open to anyone', async () => {
    expect((await getAs(65534, `http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await getAs(65534, `http://127.0.0.1:${port}/metrics`)).status).toBe(200);
    if (outsideAddress !== undefined) expect((await get(`http://${outsideAddress}:${port}/readyz`, outsideAddress)).status).toBe(200);
  });
});
