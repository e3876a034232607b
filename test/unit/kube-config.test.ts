// The agent's own kubeconfig reader (src/k8s/kube-config.ts, in place of client-node's KubeConfig
// and its ~75 MB): the current context's server, TLS material and token, paths relative to the
// file, a token file read at each request, and a clear refusal of exec/auth-provider plugins.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { AgentCredentials, KubeconfigError } from '../../src/k8s/kube-config.js';

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

  it('refuses exec and auth-provider plugins with a message that says what to use instead', () => {
    expect(() => AgentCredentials.fromFile(kubeconfig({ exec: { command: 'aws' } }))).toThrow(KubeconfigError);
    expect(() => AgentCredentials.fromFile(kubeconfig({ 'auth-provider': { name: 'oidc' } }))).toThrow(/token, a token file or a client certificate/);
  });

  it('names the file when it has no current context', () => {
    const file = path.join(directory, 'empty');
    writeFileSync(file, 'apiVersion: v1\nkind: Config\n');
    expect(() => AgentCredentials.fromFile(file)).toThrow(`the kubeconfig ${file} has no current context`);
  });
});
