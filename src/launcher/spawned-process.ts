// One launched child: its pid, how long the spawn took, its output streams, kill and its exit.
import type { Readable } from 'node:stream';

import type { ResultFile } from './result-file.js';

/** How long a spawn took, measured natively on the spawn thread (CLOCK_MONOTONIC). */
export interface SpawnTimings {
  /** From the spawn() call to a spawn thread picking the request up. */
  readonly queuedNs: number;
  /** From clone to the child's successful exec, measured on the spawn thread. */
  readonly spawnNs: number;
}

/** The child's resource usage at exit (wait4's rusage), in microseconds and KiB. */
export interface ResourceUsage {
  /** CPU time in user mode. */
  readonly userUs: number;
  /** CPU time in the kernel. */
  readonly systemUs: number;
  /**
   * The child's peak resident set in KiB, as getrusage(2) reports it. Beware: until exec the child
   * shares the agent's memory (CLONE_VM), and the kernel folds that shared high-water mark into
   * the child's figure at exec, so small tasks report about the agent's own RSS. Use the cgroup's
   * memory peak for a task's real footprint.
   */
  readonly maxRssKb: number;
}

/** How a child ended (SpawnedProcess.exited). */
export interface ExitResult {
  /** The exit status, or null when a signal ended the process. */
  readonly code: number | null;
  /** The signal that ended it ('SIGKILL'), or null when it exited. */
  readonly signal: string | null;
  /** From clone to the exit being observed. */
  readonly durationNs: number;
  readonly rusage: ResourceUsage;
}

/** A log (stdout/stderr `{ log }`) once complete: both streams at EOF. */
export interface LogTotals {
  /** Bytes the process wrote to the log. */
  readonly bytes: number;
  /** Of those, bytes no longer on disk: the cap rotated them away, or the disk refused them. */
  readonly droppedBytes: number;
  /** The log's size on disk (both of its files). */
  readonly diskBytes: number;
  /** The first error the disk gave ('ENOSPC'), or undefined. */
  readonly writeError: string | undefined;
  /** False when the launcher closed before the log was complete (the totals are then zero). */
  readonly complete: boolean;
}

/** What a launcher makes a SpawnedProcess from. */
export interface SpawnedProcessInit {
  readonly pid: number;
  readonly timings: SpawnTimings;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly exited: Promise<ExitResult>;
  /** Default null: no log. */
  readonly log?: Promise<LogTotals> | null;
  /** Default null: no result file. */
  readonly resultFile?: ResultFile | null;
  readonly kill: (signal: NodeJS.Signals | number) => boolean;
}

/** One started child (Launcher.spawn): its pid, spawn timings, output streams, kill, exit. */
export class SpawnedProcess {
  /** Its pid, as this process's pid namespace sees it. */
  readonly pid: number;
  /** How long its spawn took. */
  readonly timings: SpawnTimings;
  /** A Readable when stdout was 'pipe', else null. */
  readonly stdout: Readable | null;
  /** A Readable when stderr was 'pipe', else null. */
  readonly stderr: Readable | null;
  /** Resolves once the process has exited and been reaped; never rejects. */
  readonly exited: Promise<ExitResult>;
  /**
   * With stdout or stderr `{ log }`: resolves once the log is complete, which may be after `exited`
   * (the pipes are read to their end) or never while a process the child left behind holds them.
   * Null without a log. Never rejects.
   */
  readonly log: Promise<LogTotals> | null;
  /**
   * The result file the child got at fd 3 (the agent's internal `resultFile` spawn option), to
   * read once it has exited; null without one.
   */
  readonly resultFile: ResultFile | null;
  readonly #kill: (signal: NodeJS.Signals | number) => boolean;

  constructor(init: SpawnedProcessInit) {
    this.pid = init.pid;
    this.timings = init.timings;
    this.stdout = init.stdout;
    this.stderr = init.stderr;
    this.exited = init.exited;
    this.log = init.log ?? null;
    this.resultFile = init.resultFile ?? null;
    this.#kill = init.kill;
  }

  /**
   * Sends a signal through the child's pidfd (pidfd_send_signal(2)), so it can never reach another
   * process that was given the same pid after this one was reaped. Returns false when the process
   * has already been reaped; throws for anything else (EPERM, an unknown signal).
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    return this.#kill(signal);
  }
}
