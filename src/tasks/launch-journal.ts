// A node-local record of the attempts this agent launched, appended before each launch. A Task's
// first status write comes after its process ran (a short Task gets only its final status: see
// the reconciler's header), so an agent killed in between would otherwise find the Task Pending
// and run the same attempt again as if it were new. On restart, an attempt the journal shows
// launched but the Task's status does not count is ended as AgentRestarted and retried by the
// Task's backoffLimit, as a Task shown Running without a process is (issue 7's chaos test).
//
// One line per launch, "uid attempt epoch-ms", appended with one write(2): it survives the
// agent's death (the page cache holds it) but not the node's unless the file is on disk; after a
// reboot every process is gone anyway. Entries go once the Task's ending is in the cache; the
// file is rewritten from what is still needed when it has grown well past it.
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';

/** What the reconciler needs of a journal (standalone mode has none). */
export interface LaunchRecord {
  /** Called just before attempt `attempt` of the Task with this uid is launched. */
  launched(uid: string, attempt: number): void;
  /** The highest attempt launched for this uid that has not been forgotten. */
  lastLaunched(uid: string): number | undefined;
  /** The Task's ending is recorded (or the Task is gone): its entry is no longer needed. */
  forget(uid: string): void;
}

/** Entries older than this are dropped when the file is rewritten: the Task has long been dealt with. */
const maxEntryAgeMs = 7 * 24 * 3600 * 1000;
/** Rewrite once the file has this many more lines than live entries. */
const compactAfterExtraLines = 20_000;

export class LaunchJournal implements LaunchRecord {
  readonly #file: string;
  readonly #entries = new Map<string, { readonly attempt: number; readonly at: number }>();
  /** Open for appends; -1 until the constructor's first rewrite. */
  #fd = -1;
  #lines = 0;

  /** Opens (creating it and its folder) the journal at `file` and reads what an earlier life of the agent wrote. */
  constructor(file: string) {
    this.#file = file;
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    for (const line of text.split('\n')) {
      const [uid, attempt, at] = line.split(' ');
      const number = Number(attempt);
      if (uid === undefined || uid === '' || !Number.isInteger(number) || number < 1) continue; // a torn last line
      if (number >= (this.#entries.get(uid)?.attempt ?? 0)) this.#entries.set(uid, { attempt: number, at: Number(at) || Date.now() });
    }
    this.#fd = this.#rewrite();
  }

  get size(): number {
    return this.#entries.size;
  }

  launched(uid: string, attempt: number): void {
    this.#entries.set(uid, { attempt, at: Date.now() });
    writeSync(this.#fd, `${uid} ${attempt} ${Date.now()}\n`);
    if (++this.#lines > this.#entries.size + compactAfterExtraLines) this.#fd = this.#rewrite();
  }

  lastLaunched(uid: string): number | undefined {
    return this.#entries.get(uid)?.attempt;
  }

  forget(uid: string): void {
    this.#entries.delete(uid);
  }

  /** A clean shutdown: the file keeps only what is still needed. */
  close(): void {
    closeSync(this.#rewrite());
    this.#fd = -1;
  }

  /** Writes the live entries to a new file, renames it over the old one, and returns it open for appends. */
  #rewrite(): number {
    const now = Date.now();
    for (const [uid, entry] of this.#entries) if (now - entry.at > maxEntryAgeMs) this.#entries.delete(uid);
    const fresh = `${this.#file}.new`;
    writeFileSync(fresh, [...this.#entries].map(([uid, entry]) => `${uid} ${entry.attempt} ${entry.at}\n`).join(''), { mode: 0o600 });
    renameSync(fresh, this.#file);
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#lines = this.#entries.size;
    return openSync(this.#file, 'a', 0o600);
  }
}
