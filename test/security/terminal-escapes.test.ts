// What a Task writes reaches the operator's terminal in two ways, and they are treated as kubectl
// treats them (docs/security.md, "Task logs"):
// - its output, asked for (`parafork logs`, `kubectl parafork logs`, `parafork run`'s live lines),
//   is the Task's bytes, as `kubectl logs` and `docker logs` print them: byte for byte, so a log
//   piped to a file or a program is exactly what the Task wrote;
// - what parafork prints about Tasks (tables, the summary, its MESSAGE and "stderr:" lines, which
//   quote the Task's stderr and its spec) has no terminal controls, as `kubectl get` and `kubectl
//   describe` escape ESC: here every C0 control, DEL, and the C1 controls (U+0080-U+009F), which
//   xterm obeys in UTF-8 (U+009B is CSI, U+009D is OSC) and which the table's flattening let through.
// Needs root (parafork sandboxes the Tasks it runs) and a build (npm run build).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { waitFor } from '../helpers/wait-for.js';
import { parafork, startManifestAgent } from './standalone-cli.js';

// `parafork logs NAME` reads the newest Task of that name among all runs on the machine: the name
// carries this run's token, so another checkout's run of this file at once is never read instead.
const taskName = `escapes-${Math.random().toString(36).slice(2, 8)}`;
const skip = missingRequirement('parafork sandboxes the Tasks it runs, which needs root', runningAsRoot);

// Clear the screen, set the window title, write the clipboard (OSC 52), each as 7-bit and as 8-bit C1.
const hostile = String.raw`\033[2J\033]0;owned\007\033]52;c;b3duZWQ=\007\302\2332J\302\2350;owned\007\r`;
// eslint-disable-next-line no-control-regex -- what must never reach a terminal from a table
const terminalControls = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

describe.skipIf(skip !== undefined)(`a Task's terminal escape sequences and the operator's terminal${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let manifest: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-terminal-escapes-'));
    manifest = path.join(scratch, 'escapes.yaml');
    const script = `printf '${hostile}out\\n'; printf '${hostile}err\\n' >&2; exit 3`;
    writeFileSync(manifest, JSON.stringify({ apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: taskName }, spec: { command: ['/bin/sh', '-c', script] } }));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('prints the summary of a failed Task (its stderr quoted) without any terminal control', async () => {
    const run = await parafork(['run', '-q', '-f', manifest], 30_000);
    expect(run.status, run.stderr).toBe(1);
    expect(run.stdout).toContain('stderr:');
    expect(run.stdout).toContain('owned');
    expect(run.stdout).not.toMatch(terminalControls);
    expect(run.stderr).not.toMatch(terminalControls);
  });

  it('prints the summary of a Task whose command names escapes (quoted in its message) without them', async () => {
    const file = path.join(scratch, 'missing.yaml');
    writeFileSync(file, JSON.stringify({ apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'missing' }, spec: { command: ['/nonexistent/\u001b]0;owned\u0007\u009b2J'] } }));
    const run = await parafork(['run', '-q', '-f', file], 30_000);
    expect(run.status, run.stderr).toBe(1);
    expect(run.stdout).not.toMatch(terminalControls);
  });

  it('names a refused manifest s bad values without their terminal controls (exit 2)', async () => {
    const file = path.join(scratch, 'bad-name.yaml');
    writeFileSync(file, JSON.stringify({ apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'x\u009b2J\u009d0;owned\u0007\u001b[2J' }, spec: { command: ['/bin/true'] } }));
    const run = await parafork(['run', '-q', '-f', file], 30_000);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('metadata.name');
    expect(run.stderr).not.toMatch(terminalControls);
  });

  // Red team: a manifest's file name and text are the Task author's as much as its values are, and
  // the error naming a refused one quoted them as they were: the file's name, the snippet of a
  // JSON parse error, the name of an unknown field.
  it.each([
    ['its file s name', `named-\u001b]0;owned\u0007\u009b2J.yaml`, JSON.stringify({ apiVersion: 'v1', kind: 'Pod' })],
    ['the text a JSON parse error quotes', 'parse-error.json', '{"apiVersion": \u001b]0;owned\u0007 \u009b2J}'],
    ['the name of an unknown field', 'unknown-field.yaml', JSON.stringify({ apiVersion: 'parafork.dev/v1alpha1', kind: 'Task', metadata: { name: 'unknown-field' }, spec: { command: ['/bin/true'], 'x\u001b]0;owned\u0007\u009b2J': 1 } })],
  ])('names a refused manifest without the terminal controls of %s (exit 2)', async (_, name, text) => {
    const folder = mkdtempSync(path.join(scratch, 'refused-'));
    writeFileSync(path.join(folder, name), text);
    const run = await parafork(['run', '-q', '-f', folder], 30_000);
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toContain('parafork: ');
    expect(run.stderr).not.toMatch(terminalControls);
  });

  it('logs a refused manifest of `agent --manifests` without the terminal controls of its file s name (JSON escapes only C0)', async () => {
    const folder = mkdtempSync(path.join(scratch, 'agent-refused-'));
    writeFileSync(path.join(folder, 'named-\u009d0;owned\u0007\u009b2J\u007f.yaml'), JSON.stringify({ apiVersion: 'v1', kind: 'Pod' }));
    const agent = await startManifestAgent(folder);
    try {
      const line = await waitFor(() => agent.logs().split('\n').find((logged) => logged.includes('invalid manifest')), { timeoutMs: 20_000, description: 'the agent to log the refused manifest' });
      expect(line).toContain('named-');
      expect(line).not.toMatch(terminalControls);
    } finally {
      await agent.stop();
    }
  });

  it('gives `parafork logs` the Task s bytes unchanged, as kubectl logs does', async () => {
    await parafork(['run', '-q', '-f', manifest], 30_000);
    const logs = await parafork(['logs', taskName], 30_000);
    expect(logs.status, logs.stderr).toBe(0);
    expect(logs.stdout).toContain('\u001b[2J\u001b]0;owned\u0007\u001b]52;c;b3duZWQ=\u0007\u009b2J\u009d0;owned\u0007\rout\n');
  });
});
