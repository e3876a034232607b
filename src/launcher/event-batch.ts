// Decoding of the native event batches: a Float64Array of fixed-size records, laid out in
// native/src/event_batcher.h. Kept in one place so the layout is written down twice, not more.

export const eventKinds = { spawned: 1, failed: 2, exited: 3, logClosed: 4 } as const;

/** Field offsets inside one record, after the kind (0) and the request id (1). */
export const spawnedFields = { pid: 2, stdoutFd: 3, stderrFd: 4, queuedNs: 5, spawnNs: 6 } as const;
export const failedFields = { errno: 2, syscall: 3, queuedNs: 4, spawnNs: 5 } as const;
export const exitedFields = { exitCode: 2, signal: 3, durationNs: 4, userUs: 5, systemUs: 6, maxRssKb: 7 } as const;
export const logClosedFields = { payloadBytes: 2, droppedBytes: 3, diskBytes: 4, writeErrno: 5 } as const;
