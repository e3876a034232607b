// The attempt table's count of active attempts (src/tasks/attempts.ts), which the reconciler reads
// before every launch and after every reconcile: right through every change, and kept rather than
// counted, so that reading it costs the same with 10 Tasks or 10,000 (issue 15's event-loop bar).
import { describe, expect, it } from 'vitest';

import { AttemptTable, StderrTail, type Attempt } from '../../src/tasks/attempts.js';

function attempt(uid: string): Attempt {
  return { uid, number: 1, launchedAt: 0, runningRecorded: false, stderr: new StderrTail() };
}

function ended(unended: Attempt): Attempt {
  unended.ending = { reason: 'Completed', message: 'exited with code 0', finishedAt: 1, exitCode: 0 };
  return unended;
}

describe('AttemptTable', () => {
  it('counts the attempts without an ending as they come, end and go', () => {
    const table = new AttemptTable();
    const first = attempt('a');
    const second = attempt('b');
    table.set('ns/a', first);
    table.set('ns/b', second);
    expect(table.active).toBe(2);

    table.ended(ended(first));
    expect(table.active).toBe(1);
    table.delete('ns/a');
    expect(table.active).toBe(1);
    table.delete('ns/b');
    expect(table.active).toBe(0);
  });

  it('does not count an attempt that is entered already ended (one the agent lost), nor one replaced under its key', () => {
    const table = new AttemptTable();
    table.set('ns/lost', ended(attempt('lost')));
    table.set('ns/a', attempt('old'));
    table.set('ns/a', attempt('new')); // the Task made again under the same name
    expect(table.active).toBe(1);
  });

  it('ignores ended() for an attempt that has no ending yet, or is not in the table', () => {
    const table = new AttemptTable();
    const running = attempt('a');
    table.set('ns/a', running);
    table.ended(running);
    table.ended(ended(attempt('elsewhere')));
    expect(table.active).toBe(1);
  });

  it('reads no attempt to count the active ones, however many there are', () => {
    const table = new AttemptTable();
    let endingsRead = 0;
    for (let index = 0; index < 10_000; index++) {
      const counted = attempt(String(index));
      table.set(`ns/${index}`, counted);
      let ending: Attempt['ending'];
      Object.defineProperty(counted, 'ending', {
        get: () => (endingsRead++, ending),
        set: (value: Attempt['ending']) => (ending = value),
      });
    }

    endingsRead = 0;
    for (let read = 0; read < 100; read++) expect(table.active).toBe(10_000);
    expect(endingsRead).toBe(0);
  });
});
