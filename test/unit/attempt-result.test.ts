// An attempt's result (src/tasks/attempt-result.ts): the file's first 4096 bytes as text, or with
// FallbackToLogsOnError the end of a failed attempt's output when the file is empty.
import { describe, expect, it } from 'vitest';

import { attemptResult, resultMaxBytes, resultText, textTail } from '../../src/tasks/attempt-result.js';

const noOutput = (): Promise<string> => Promise.reject(new Error('the log must not be read'));
const file = (text: string, truncated = false) => ({ bytes: Buffer.from(text, 'utf8'), truncated });

describe('resultText', () => {
  it('reads UTF-8, with invalid bytes and NUL replaced by U+FFFD', () => {
    expect(resultText(Buffer.from([0x6f, 0x6b, 0x00, 0xff, 0x21]), false)).toBe('ok\uFFFD\uFFFD!');
  });

  it('leaves out a character the 4096-byte cut split, rather than replacing it', () => {
    const bytes = Buffer.from('ab€', 'utf8').subarray(0, 4); // € is 3 bytes: 1 of them kept
    expect(resultText(bytes, true)).toBe('ab');
    expect(resultText(bytes, false)).toBe('ab\uFFFD');
  });
});

describe('textTail', () => {
  it('keeps text within the limit whole', () => {
    expect(textTail('last line\n', 4096)).toEqual({ text: 'last line\n', truncated: false });
  });

  it('keeps the last bytes, starting at a whole character, and says it cut', () => {
    expect(textTail('ä'.repeat(3), 3)).toEqual({ text: 'ä', truncated: true }); // 6 bytes: the last 3 start mid-character
    expect(textTail('x'.repeat(5000), resultMaxBytes).text).toHaveLength(resultMaxBytes);
  });
});

describe('attemptResult', () => {
  it('is the file s content under either policy, for success and failure, and never reads the log then', async () => {
    for (const policy of ['File', 'FallbackToLogsOnError'] as const) {
      for (const failed of [false, true]) {
        await expect(attemptResult(file('done\n'), policy, failed, noOutput)).resolves.toEqual({ text: 'done\n', truncated: false });
      }
    }
  });

  it('says a file longer than the limit was truncated', async () => {
    await expect(attemptResult(file('x'.repeat(4096), true), 'File', false, noOutput)).resolves.toEqual({ text: 'x'.repeat(4096), truncated: true });
  });

  it('is nothing for an empty file under File, even when the attempt failed', async () => {
    await expect(attemptResult(file(''), 'File', true, noOutput)).resolves.toBeUndefined();
  });

  it('is the end of a failed attempt s output under FallbackToLogsOnError when the file is empty', async () => {
    await expect(attemptResult(file(''), 'FallbackToLogsOnError', true, () => Promise.resolve('step 1\nboom\n'))).resolves.toEqual({ text: 'step 1\nboom\n', truncated: false });
    const long = await attemptResult(file(''), 'FallbackToLogsOnError', true, () => Promise.resolve(`${'a'.repeat(10_000)}END`));
    expect(long).toMatchObject({ truncated: true });
    expect(long?.text.endsWith('END')).toBe(true);
    expect(Buffer.byteLength(long?.text ?? '')).toBe(resultMaxBytes);
  });

  it('takes nothing from the output of a successful attempt, nor an empty output', async () => {
    await expect(attemptResult(file(''), 'FallbackToLogsOnError', false, noOutput)).resolves.toBeUndefined();
    await expect(attemptResult(file(''), 'FallbackToLogsOnError', true, () => Promise.resolve(''))).resolves.toBeUndefined();
  });
});
