// The agent's log lines, JSON and the terminal form: what a Task's author wrote and the agent
// quotes (a refused host path, a command that was not found) reaches the operator's terminal with
// no terminal control in it (red team, session 15; test/integration/task-author-api.test.ts).
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';

import { terminalLines, terminalSafeJsonLines } from '../../src/agent/logger.js';

/** ESC [ 2 J (clear screen), the same in C1 (CSI), OSC 0 (window title) ended by BEL, DEL. */
const hostile = '/a\u001b[2J\u009b2J\u009d0;title\u0007\u007f';
/** Any C0 control, DEL, or a C1 control. */
// eslint-disable-next-line no-control-regex -- what must never reach a terminal from the agent's log
const terminalControl = /[\u0000-\u001f\u007f-\u009f]/;

function linesOf(destination: (output: { write(text: string): boolean }) => pino.DestinationStream): { logger: pino.Logger; written: string[] } {
  const written: string[] = [];
  const logger = pino({ level: 'info' }, destination({ write: (text: string) => written.push(text) > 0 }));
  return { logger, written };
}

describe('the agent\'s log', () => {
  it('as JSON lines, writes DEL and C1 controls as \\u escapes, and reads back as what was logged', () => {
    const { logger, written } = linesOf((output) => terminalSafeJsonLines(output));
    logger.info({ task: 'ns/name', path: hostile }, `refused ${hostile}`);
    expect(written).toHaveLength(1);
    expect((written[0] ?? '').slice(0, -1)).not.toMatch(terminalControl);
    const record = JSON.parse(written[0] ?? '') as { msg: string; path: string };
    expect(record.msg).toBe(`refused ${hostile}`);
    expect(record.path).toBe(hostile);
  });

  it('on a terminal, shows the message and every field without a terminal control but its own colours', () => {
    const { logger, written } = linesOf((output) => terminalLines(output));
    logger.info({ task: 'ns/name', path: hostile, spaced: `${hostile} x`, [`key${hostile}`]: 1 }, `refused ${hostile}`);
    expect(written).toHaveLength(1);
    const line = written[0] ?? '';
    // The level's colour is the only control: ESC [ 32 m ... ESC [ 0 m.
    // eslint-disable-next-line no-control-regex -- the level's colour, the one control the line may hold
    const withoutColour = line.replace(/\u001b\[(32|0)m/g, '');
    expect(withoutColour.endsWith('\n')).toBe(true);
    expect(withoutColour.slice(0, -1)).not.toMatch(terminalControl);
    expect(withoutColour).toContain('refused /a\\u001b[2J\\u009b2J\\u009d0;title\\u0007\\u007f');
    expect(withoutColour).toContain('path=/a\\u001b[2J\\u009b2J');
  });
});
