// `parafork run -o json` and `-o yaml` print the Tasks with their status, which quotes what a Task
// chose: its result (status.result) and the end of its stderr (status.stderrTail). What parafork
// prints about Tasks carries no terminal control (docs/security.md, Task logs, "What reaches a
// terminal"; terminal-escapes.test.ts for the table and the summary), and these formats are
// printed to a terminal as often as piped. YAML writes C0 and C1 controls as escapes; JSON escapes
// C0 only, and printed a Task's C1 controls as they were: a result of U+009B "2J" cleared the
// operator's screen, U+009D "0;...", U+009C set the window title, as OSC 52 would write the
// clipboard (xterm obeys C1 controls in UTF-8) (red team, session 10). `-o json` now writes DEL and
// C1 as \u escapes, which every JSON reader reads back as the same text. So does the manifest
// agent's /tasks, the same List, which the README reads with `curl -s localhost:9464/tasks`.
// Needs root (parafork sandboxes the Tasks it runs) and a build (npm run build).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { load } from 'js-yaml';

import type { Task } from '../../src/api/task.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { parafork, startManifestAgent, writeTask } from './standalone-cli.js';
import { waitFor } from '../helpers/wait-for.js';

const skip = missingRequirement('parafork sandboxes the Tasks it runs, which needs root', runningAsRoot);

// Clear the screen and set the window title, as 8-bit C1 and as 7-bit sequences; DEL too.
const result = 'r\u009b2J\u009d0;owned\u009c\u001b]0;owned\u0007\u007f';
const stderr = 'e\u009b31m\u001b[31m';
// eslint-disable-next-line no-control-regex -- what must never reach a terminal from parafork's own output
const terminalControls = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

describe.skipIf(skip !== undefined)(`parafork run -o json and -o yaml and a Task's terminal controls${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let scratch: string;
  let manifest: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'parafork-output-formats-'));
    const script = `import os, sys; open(os.environ["PARAFORK_RESULT"], "w").write(${JSON.stringify(result)}); print(${JSON.stringify(stderr)}, file=sys.stderr); sys.exit(3)`;
    manifest = writeTask(scratch, 'controls', { command: ['/usr/bin/python3', '-c', script] });
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it.each([
    ['json', (text: string) => (JSON.parse(text) as { items: Task[] }).items],
    ['yaml', (text: string) => (load(text) as { items: Task[] }).items],
  ])('-o %s prints none of them, and reads back as the Task wrote them', async (format, parse) => {
    const run = await parafork(['run', '-q', '-o', format, '-f', manifest], 30_000);
    expect(run.status, run.stderr).toBe(1);
    expect(run.stdout).not.toMatch(terminalControls);
    const [task] = parse(run.stdout);
    expect(task?.status?.result).toBe(result);
    expect(task?.status?.stderrTail).toContain(stderr);
  });

  it('agent --manifests serves /tasks without them, and it reads back as the Task wrote them', async () => {
    const agent = await startManifestAgent(scratch);
    try {
      const task = await waitFor(async () => {
        const found = (await agent.tasks()).get('controls');
        return found?.status?.phase === 'Failed' ? found : undefined;
      }, { timeoutMs: 30_000, description: 'the Task to fail' });
      expect(task.status?.result).toBe(result);
      const text = await (await fetch(`${agent.base}/tasks`)).text();
      expect(text).not.toMatch(terminalControls);
    } finally {
      await agent.stop();
    }
  });
});
