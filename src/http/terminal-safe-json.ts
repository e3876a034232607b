// JSON that a terminal shows as text. JSON.stringify escapes the C0 controls and leaves DEL and the
// C1 controls (U+0080-U+009F) as they are, which terminals obey in UTF-8 (xterm takes U+009B as
// CSI, U+009D as OSC); a Task's result and stderr tail are in what parafork prints as JSON (`parafork
// run -o json`, the manifest agent's /tasks, which the README reads with curl), so a Task could
// clear the reader's screen or set their window title (red team, session 10;
// test/security/run-output-formats.test.ts). Outside strings JSON text is ASCII, so each escape
// lands inside a string, and every JSON reader reads the same text back.

/** JSON.stringify(value, null, indent) with DEL and C1 controls written as \u escapes too. */
export function terminalSafeJson(value: unknown, indent = 2): string {
  return JSON.stringify(value, null, indent).replace(/[\u007f-\u009f]/g, (control) => `\\u${control.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
