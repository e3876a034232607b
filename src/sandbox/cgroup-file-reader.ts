// One cgroupfs file read again and again (a pooled task cgroup's cgroup.events and OOM counter,
// read after every exit) through an fd kept open. A pread(2) at offset 0 makes kernfs generate the
// file afresh (seq_file starts over at offset 0), in one system call; readFileSync's open, fstat,
// read and close cost ~4x as much on the JS thread (kernfs allocates at each open): ~45 us against
// ~10 us a file, measured on Linux 6.18 with a Task array's after-exit reads (docs/benchmarks.md,
// Task arrays). A directory removed behind the reader's back (and perhaps made again by a spawn)
// reads ENODEV through the old fd: the reader opens the path again.
import { closeSync, openSync, readSync } from 'node:fs';

/** The files read here are a few lines (cgroup.events, memory.events, memory.oom_control). */
const chunkBytes = 4096;
const chunk = Buffer.allocUnsafe(chunkBytes);

export class CgroupFileReader {
  readonly path: string;
  #fd: number | undefined;

  constructor(path: string) {
    this.path = path;
  }

  /** The file's content now; throws as readFileSync does (ENOENT: the cgroup is not there). */
  read(): string {
    if (this.#fd !== undefined) {
      try {
        return readWhole(this.#fd);
      } catch {
        this.close(); // removed behind our back (ENODEV): its path may name a new one
      }
    }
    const fd = openSync(this.path, 'r');
    try {
      const text = readWhole(fd);
      this.#fd = fd;
      return text;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** Closes the fd (the cgroup goes); a later read opens the path again. */
  close(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    closeSync(fd);
  }
}

/** The whole file from offset 0: kernfs regenerates it for a read there. */
function readWhole(fd: number): string {
  let text = '';
  for (let offset = 0; ; ) {
    const length = readSync(fd, chunk, 0, chunkBytes, offset);
    text += chunk.toString('utf8', 0, length);
    if (length < chunkBytes) return text;
    offset += length;
  }
}
