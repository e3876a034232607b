// The agent's own kubeconfig reader (src/k8s/kube-config.ts, in place of client-node's KubeConfig
// and its ~75 MB): the current context's server, TLS material and token, paths relative to the
// file, a token file read at each request; and loadCredentials, which keeps this reader for those
// and imports client-node's KubeConfig only for a user with an exec or auth-provider plugin.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { ApiClient } from '../../src/k8s/api-client.js';
import { AgentCredentials, KubeconfigError, loadCredentials } from '../../src/k8s/kube-config.js';

// Counts the imports of client-node (the module is evaluated at most once per test file, so the
// test of the light path runs before the one that imports it).
const clientNode = vi.hoisted(() => ({ imports: 0 }));
vi.mock('@kubernetes/client-node', async (importOriginal) => {
  clientNode.imports += 1;
  return importOriginal();
});

let directory: string;

beforeEach(() => {
  directory = mkdtempSync(path.join(tmpdir(), 'parafork-kubeconfig-'));
});

afterEach(() => {
  rmSync(directory, { recursive: true, force: true });
});

function kubeconfig(user: Record<string, unknown>, cluster: Record<string, unknown> = { server: 'https://127.0.0.1:6443', 'certificate-authority-data': Buffer.from('CA').toString('base64') }): string {
  const file = path.join(directory, 'config');
  writeFileSync(file, JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'current',
    contexts: [{ name: 'other', context: { cluster: 'other', user: 'other' } }, { name: 'current', context: { cluster: 'main', user: 'me' } }],
    clusters: [{ name: 'main', cluster }],
    users: [{ name: 'me', user }],
  }));
  return file;
}

async function applied(credentials: AgentCredentials): Promise<https.RequestOptions> {
  const options: https.RequestOptions = {};
  await credentials.applyToHTTPSOptions(options);
  return options;
}

describe('AgentCredentials.fromFile', () => {
  it("takes the current context's server, CA and client certificate (paths relative to the file)", async () => {
    writeFileSync(path.join(directory, 'client.crt'), 'CERT');
    writeFileSync(path.join(directory, 'client.key'), 'KEY');
    const credentials = AgentCredentials.fromFile(kubeconfig({ 'client-certificate': 'client.crt', 'client-key': 'client.key' }));
    expect(credentials.getCurrentCluster()).toEqual({ server: 'https://127.0.0.1:6443' });
    const options = await applied(credentials);
    expect(String(options.ca)).toBe('CA');
    expect(String(options.cert)).toBe('CERT');
    expect(options.key).toEqual(Buffer.from('KEY'));
    expect(options.rejectUnauthorized).toBe(true);
  });

  it('sends a token as a bearer Authorization header, and re-reads a token file at each request', async () => {
    expect((await applied(AgentCredentials.fromFile(kubeconfig({ token: 'abc' })))).headers).toEqual({ Authorization: 'Bearer abc' });
    const tokenFile = path.join(directory, 'token');
    writeFileSync(tokenFile, 'first\n');
    const rotating = AgentCredentials.fromFile(kubeconfig({ tokenFile: 'token' }));
    expect((await applied(rotating)).headers).toEqual({ Authorization: 'Bearer first' });
    writeFileSync(tokenFile, 'second\n');
    expect((await applied(rotating)).headers).toEqual({ Authorization: 'Bearer second' });
  });

  it('honours insecure-skip-tls-verify and tls-server-name', async () => {
    const options = await applied(AgentCredentials.fromFile(kubeconfig({ token: 't' }, { server: 'https://10.0.0.1', 'insecure-skip-tls-verify': true, 'tls-server-name': 'kubernetes' })));
    expect(options.rejectUnauthorized).toBe(false);
    expect(options.servername).toBe('kubernetes');
  });

  it('leaves exec and auth-provider plugins to loadCredentials', () => {
    expect(() => AgentCredentials.fromFile(kubeconfig({ exec: { command: 'aws' } }))).toThrow(KubeconfigError);
    expect(() => AgentCredentials.fromFile(kubeconfig({ 'auth-provider': { name: 'oidc' } }))).toThrow(/load it with loadCredentials/);
  });

  it('names the file when it has no current context', () => {
    const file = path.join(directory, 'empty');
    writeFileSync(file, 'apiVersion: v1\nkind: Config\n');
    expect(() => AgentCredentials.fromFile(file)).toThrow(`the kubeconfig ${file} has no current context`);
  });
});

describe('loadCredentials', () => {
  it('reads a token kubeconfig with the light reader, without importing client-node', async () => {
    const credentials = await loadCredentials(kubeconfig({ token: 'abc' }));
    if (!(credentials instanceof AgentCredentials)) throw new Error('expected the light reader');
    expect((await applied(credentials)).headers).toEqual({ Authorization: 'Bearer abc' });
    expect(clientNode.imports).toBe(0);
  });

  it("runs an exec plugin through client-node's KubeConfig, and sends the token it prints", async () => {
    const plugin = path.join(directory, 'credential-plugin.sh');
    writeFileSync(plugin, `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-the-plugin"}}'\n`);
    chmodSync(plugin, 0o755);
    const credentials = await loadCredentials(kubeconfig({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } }));
    expect(clientNode.imports).toBe(1);
    expect(credentials).not.toBeInstanceOf(AgentCredentials);
    expect(credentials.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
    const options: https.RequestOptions = {};
    await credentials.applyToHTTPSOptions(options);
    expect((options.headers as Record<string, string>).Authorization).toBe('Bearer from-the-plugin');
    expect(String(options.ca)).toBe('CA');
  });

  it('runs the exec plugin again once the credential it printed has expired', async () => {
    const plugin = path.join(directory, 'expiring-plugin.sh');
    const runs = path.join(directory, 'runs');
    writeFileSync(plugin, `#!/bin/sh\necho run >> '${runs}'\nn=$(wc -l < '${runs}')\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"token-'$n'","expirationTimestamp":"2000-01-01T00:00:00Z"}}'\n`);
    chmodSync(plugin, 0o755);
    const credentials = await loadCredentials(kubeconfig({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } }));
    const authorization = async (): Promise<string> => {
      const options: https.RequestOptions = {};
      await credentials.applyToHTTPSOptions(options);
      return (options.headers as Record<string, string>).Authorization!;
    };
    expect(await authorization()).toBe('Bearer token-1');
    expect(await authorization()).toBe('Bearer token-2');
  });
});

describe('ApiClient with credentials that fail once', () => {
  it('retries a request whose credentials could not be had (a token file mid-rotation, an exec plugin that failed), as a network failure', async () => {
    const server = http.createServer((_request, response) => response.end('{"kind":"Status"}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      let calls = 0;
      const client = new ApiClient({
        kubeConfig: {
          getCurrentCluster: () => ({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
          applyToHTTPSOptions: () => (++calls === 1 ? Promise.reject(new Error('the plugin exited with 1')) : Promise.resolve()),
        },
        qps: 1000,
        burst: 1000,
        userAgent: 'parafork-test',
      });
      await expect(client.request({ method: 'GET', path: '/api' })).resolves.toEqual({ kind: 'Status' });
      expect(calls).toBe(2);
    } finally {
      server.close();
    }
  });
});
