// Text and JSON that a terminal shows as text. JSON.stringify escapes the C0 controls and leaves DEL
// and the C1 controls (U+0080-U+009F) as they are, which terminals obey in UTF-8 (xterm takes
// U+009B as CSI, U+009D as OSC); a Task's result and stderr tail are in what parafork prints as JSON
// (`parafork run -o json`, the manifest agent's /tasks, which the README reads with curl), so a Task
// could clear the reader's screen or set their window title (red team, session 10;
// test/security/run-output-formats.test.ts). Outside strings JSON text is ASCII, so each escape
// lands inside a string, and every JSON reader reads the same text back.
//
// What parafork itself writes about a Task (status.message, Events, the agent's log lines) quotes
// what the Task's author wrote (a refused host path, a command that was not found): terminalSafeText
// shows the controls in it as \u escapes (red team, session 15; task-author-api.test.ts).

/** C0 controls, DEL, C1 controls. */
// eslint-disable-next-line no-control-regex -- the controls are what is matched
const terminalControls = /[\u0000-\u001f\u007f-\u009f]/g;
/** DEL and C1 controls: what JSON.stringify leaves as they are. */
const controlsJsonKeeps = /[\u007f-\u009f]/g;

function escaped(control: string): string {
  return `\\u${control.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** JSON.stringify(value, null, indent) with DEL and C1 controls written as \u escapes too. */
export function terminalSafeJson(value: unknown, indent = 2): string {
  return terminalSafeJsonText(JSON.stringify(value, null, indent));
}

/** JSON text (as JSON.stringify writes it) with DEL and C1 controls written as \u escapes too. */
export function terminalSafeJsonText(json: string): string {
  return json.replace(controlsJsonKeeps, escaped);
}

/** `text` on one line, with every terminal control (C0, DEL, C1) written as a \uXXXX escape. */
export function terminalSafeText(text: string): string {
  return text.replace(terminalControls, escaped);
}
