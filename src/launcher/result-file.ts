// A child's result file (issue 15): an anonymous memory file (memfd_create(2)) made on the spawn
// thread, placed at fd 3 in the child, and read here once, after the child has exited.
//
// Why a memory file held by fd rather than a path: nothing the child does to a path can make the
// read reach anything else. The child can replace what its own fd 3 or /dev/fd/3 names (a link to
// a host file, a FIFO, a directory, a hard link), but this fd keeps pointing at the file that was
// made for it. The file lives on no disk: its pages are charged to the memory cgroup of the
// process that writes them (the task's), so an endless write runs into the task's own memory
// limit and goes when this fd is closed. And it is read with pread(2) of at most `limit + 1`
// bytes, never blocking and never holding more than that.
import { close, closeSync, fstatSync, readSync } from 'node:fs';

/**
 * A file that holds no more than this is closed at once; a larger one on the thread pool, as
 * closing the last fd of a memory file frees its pages (~0.1 s a GiB) on the calling thread.
 */
const closeAtOnceMaxBytes = 2 ** 20;

/** What a result file held when it was read. */
export interface ResultFileContent {
  /** Its first bytes, at most the limit read. */
  readonly bytes: Buffer;
  /** It held more than the limit (its size, or a byte past the limit). */
  readonly truncated: boolean;
}

/** A result file's fd in this process: read once, then closed (ResultFile.read). */
export class ResultFile {
  #fd: number | undefined;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * Reads the first `limit` bytes and closes the file; a second call, or a call after close(),
   * reads nothing. Never rejects: a file that cannot be read reads as empty.
   */
  read(limit: number): Promise<ResultFileContent> {
    const fd = this.#fd;
    if (fd === undefined) return Promise.resolve({ bytes: Buffer.alloc(0), truncated: false });
    this.#fd = undefined;
    // Read on this thread: a memory file's fstat and a pread of a few KiB never block and cost a
    // few microseconds, less than the thread pool's round trips (three per Task, in a burst of
    // exits: issue 15's event-loop bar).
    let size = Number.POSITIVE_INFINITY;
    try {
      // The size the task left (ftruncate may have made it larger than what it wrote), and one
      // byte past the limit in case the size is not to be trusted.
      size = fstatSync(fd).size;
      const buffer = Buffer.alloc(limit + 1);
      const bytesRead = readSync(fd, buffer, 0, buffer.length, 0);
      return Promise.resolve({ bytes: buffer.subarray(0, Math.min(bytesRead, limit)), truncated: bytesRead > limit || size > limit });
    } catch {
      return Promise.resolve({ bytes: Buffer.alloc(0), truncated: false });
    } finally {
      closeFile(fd, size);
    }
  }

  /** Closes the file unread (an attempt that ends without reading it). */
  close(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) close(fd, () => undefined);
  }
}

function closeFile(fd: number, size: number): void {
  if (size > closeAtOnceMaxBytes) {
    close(fd, () => undefined);
    return;
  }
  try {
    closeSync(fd);
  } catch {
    // closed is closed
  }
}
