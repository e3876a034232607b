// An attempt's result (issue 15, item 5): the small text a Task leaves for programs in
// status.result, as a container leaves its termination message. The process writes it to the file
// $PARAFORK_RESULT names, its fd 3 (the launcher's result file: src/launcher/result-file.ts, a memory
// file the agent holds its own fd to, so nothing the Task does to the name reaches anything else);
// with spec.resultPolicy FallbackToLogsOnError a failed attempt that left it empty gets the end of
// its output instead, as the kubelet's FallbackToLogsOnError takes the end of a container's log.
// Task arrays keep no result per index (docs/arrays.md): their indexes get no result file.
import type { TaskSpec } from '../api/task.js';
import type { ResultFileContent } from '../launcher/result-file.js';

/** The environment variable that names the result file. */
export const resultVariable = 'PARAFORK_RESULT';
/** The result file as the process finds it: its fd 3 (native/src/child.h: kResultFd). */
export const resultPath = '/dev/fd/3';
/** The most bytes of a result kept, as a Pod's termination message (4096 bytes). */
export const resultMaxBytes = 4096;

export type ResultPolicy = NonNullable<TaskSpec['resultPolicy']>;

/** What status.result and status.resultTruncated say of an attempt. */
export interface AttemptResult {
  readonly text: string;
  readonly truncated: boolean;
}

/**
 * Bytes as status text: UTF-8 with invalid sequences and NUL replaced by U+FFFD. When the bytes are
 * the beginning of something longer (`cut`), a character the cut split is left out, not replaced.
 */
export function resultText(bytes: Uint8Array, cut: boolean): string {
  const text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(bytes, { stream: cut });
  return text.replaceAll('\0', '\uFFFD');
}

/** The last `maxBytes` bytes of `text` in UTF-8, starting at a whole character. */
export function textTail(text: string, maxBytes: number): AttemptResult {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return { text, truncated: false };
  let start = bytes.length - maxBytes;
  while (start < bytes.length && ((bytes[start] ?? 0) & 0xc0) === 0x80) start++; // a continuation byte
  return { text: bytes.subarray(start).toString('utf8'), truncated: true };
}

/**
 * The attempt's result: the file's content; or, with FallbackToLogsOnError, for a failed attempt
 * whose file is empty, the end of its output (`outputTail`, read only then). Undefined: nothing.
 */
export async function attemptResult(
  file: ResultFileContent,
  policy: ResultPolicy,
  failed: boolean,
  outputTail: () => Promise<string>,
): Promise<AttemptResult | undefined> {
  if (file.bytes.length > 0 || file.truncated) return { text: resultText(file.bytes, file.truncated), truncated: file.truncated };
  if (policy !== 'FallbackToLogsOnError' || !failed) return undefined;
  const tail = textTail(await outputTail(), resultMaxBytes);
  return tail.text === '' ? undefined : tail;
}
