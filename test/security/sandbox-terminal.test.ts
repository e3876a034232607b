// A sandboxed task never holds the agent's controlling terminal. Started from an operator's shell,
// the agent (or `parafork run`) has one; a task that shared it could open /dev/tty and push
// keystrokes into the operator's shell with TIOCSTI (issue 12, finding 1). Each task starts a new
// session (its init is the session leader, with no terminal), and its /dev has no terminal nodes.
// Needs root (the sandbox) and util-linux `script` (a pseudo-terminal that is the probe's
// controlling terminal: the test runner usually has none).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';

interface PayloadReport {
  readonly self: { readonly session: number; readonly ttyNr: number };
  readonly sid: number;
  readonly stdioTtys: readonly boolean[];
  readonly devTty: string;
  readonly terminalDevices: readonly string[];
}

interface ProbeReport {
  readonly probe: { readonly ttyNr: number };
  readonly sandboxed: PayloadReport;
  readonly plain: PayloadReport;
}

const skip =
  missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot) ??
  missingRequirement('needs util-linux script (a controlling pseudo-terminal)', existsSync('/usr/bin/script'));

/** Runs test/helpers/terminal-probe.mjs with a fresh pty as its controlling terminal. */
function probeUnderTerminal(): ProbeReport {
  const output = execFileSync('/usr/bin/script', ['-qec', `${process.execPath} test/helpers/terminal-probe.mjs`, '/dev/null'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    timeout: 30_000,
  });
  const report = /<<<(.*)>>>/.exec(output);
  if (!report?.[1]) throw new Error(`terminal probe printed no report: ${output}`);
  return JSON.parse(report[1]) as ProbeReport;
}

describe.skipIf(skip !== undefined)(`a sandboxed task and the agent's terminal${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const report = skip === undefined ? probeUnderTerminal() : undefined;

  it('runs where the agent has a controlling terminal (else this test proves nothing)', () => {
    expect(report?.probe.ttyNr).not.toBe(0);
  });

  it('has no controlling terminal: a new session, led by its init (pid 1)', () => {
    expect(report?.sandboxed.self.ttyNr).toBe(0);
    expect(report?.sandboxed.sid).toBe(1);
    expect(report?.sandboxed.self.session).toBe(1);
  });

  it('cannot open /dev/tty, and its /dev holds no terminal device at all', () => {
    expect(report?.sandboxed.devTty).toBe('ENOENT');
    expect(report?.sandboxed.terminalDevices).toEqual([]);
  });

  it('gets no terminal through its standard streams either', () => {
    expect(report?.sandboxed.stdioTtys).toEqual([false, false, false]);
  });

  it('leaves an unsandboxed spawn in the caller s session, as child_process does', () => {
    // An unsandboxed child runs with the agent's own privileges and filesystem: a new session
    // would not contain it, and would change what terminal signals (Ctrl-C) reach.
    expect(report?.plain.self.ttyNr).toBe(report?.probe.ttyNr);
    expect(report?.plain.sid).not.toBe(1);
  });
});
