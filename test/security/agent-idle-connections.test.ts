// Red team: whoever reaches the agent's port (the cluster network, for the agent's log API) may
// open connections and send nothing. Node's HTTP server times a request out only once it has begun
// (headersTimeout, requestTimeout) and by default never an idle socket, so each such connection
// held an fd of the agent's for good, the same fds every Task's spawn needs (pipes, pidfds, cgroup
// and namespace files): past the agent's open-file limit a Task could not start at all, and stayed
// so for as long as the connections were held. The agent now bounds its connections
// (maxConnections; more are closed at once) and closes one that has not begun a request within a
// few seconds.
//
// An `agent --manifests` of the test's own, with an open-file limit of 2048 (prlimit; not lower:
// a Task gets 1024, which an agent without CAP_SYS_RESOURCE may not raise past its own), against
// 2,500 idle connections of the test's own. Needs root (the agent sandboxes its Tasks) and a build.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { firstRequestTimeoutMs } from '../../src/http/http-server.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { waitFor } from '../helpers/wait-for.js';
import { type ManifestAgent, startManifestAgent, writeTask } from './standalone-cli.js';

const skip = missingRequirement('the agent sandboxes its Tasks, which needs root', runningAsRoot);

describe.skipIf(skip !== undefined)(`an agent against idle connections to its port${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let agent: ManifestAgent | undefined;
  const flood: net.Socket[] = [];

  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-idle-connections-'));
  });
  afterAll(async () => {
    for (const socket of flood) socket.destroy();
    await agent?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('still starts a Task while more connections than its open-file limit are held open without a request', async () => {
    const folder = mkdtempSync(path.join(scratch, 'folder-'));
    agent = await startManifestAgent(folder, [], { openFiles: 2048 });
    const port = Number(new URL(agent.base).port);
    for (let count = 0; count < 2500; count++) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => undefined); // closed by the agent: what is wanted
      flood.push(socket);
    }
    await Promise.all(flood.map((socket) => new Promise((resolve) => socket.once('connect', resolve).once('close', resolve))));
    writeTask(folder, 'during-idle-connections', { command: ['/bin/true'] });
    const running = agent;
    const ending = await waitFor(() => running.logs().split('\n').find((line) => line.includes('during-idle-connections') && /"reason":"(Completed|Failed)"/.test(line)), { timeoutMs: 20_000, description: `the Task to end; the agent logged:\n${running.logs().slice(-3000)}` });
    expect(ending).toContain('"reason":"Completed"');
    // And the connections it kept are closed once they have gone firstRequestTimeoutMs without a request.
    await waitFor(() => flood.every((socket) => socket.destroyed || socket.readyState === 'closed'), { timeoutMs: firstRequestTimeoutMs + 15_000, description: 'the agent to close the idle connections' });
  }, 60_000);
});
