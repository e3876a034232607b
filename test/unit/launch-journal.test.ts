// The launch journal outlives the agent: what one LaunchJournal recorded, the next one on the same
// file reads back, without what was forgotten, and a torn last line is ignored.
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { LaunchJournal } from '../../src/tasks/launch-journal.js';

let directory: string;

beforeEach(() => {
  directory = mkdtempSync(path.join(tmpdir(), 'parafork-journal-'));
});

afterEach(() => {
  rmSync(directory, { recursive: true, force: true });
});

describe('LaunchJournal', () => {
  it('reads back the last attempt launched per uid, without the forgotten ones, in a later life', () => {
    const file = path.join(directory, 'state', 'launched-node');
    const first = new LaunchJournal(file);
    first.launched('a', 1);
    first.launched('b', 1);
    first.launched('a', 2);
    first.forget('b');
    // As a kill -9 leaves it: every line written, nothing rewritten (no close), and a torn last line.
    appendFileSync(file, 'c 1');
    const second = new LaunchJournal(file);
    expect(second.lastLaunched('a')).toBe(2);
    expect(second.lastLaunched('c')).toBe(1);
    expect(second.lastLaunched('nobody')).toBeUndefined();
    second.close();
  });

  it('keeps only what is still needed after a clean shutdown', () => {
    const file = path.join(directory, 'launched-node');
    const first = new LaunchJournal(file);
    first.launched('a', 1);
    first.launched('b', 3);
    first.forget('a');
    first.close();
    expect(readFileSync(file, 'utf8')).toMatch(/^b 3 \d+\n$/);
    const second = new LaunchJournal(file);
    expect(second.lastLaunched('a')).toBeUndefined();
    expect(second.lastLaunched('b')).toBe(3);
    second.close();
  });
});
