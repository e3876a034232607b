// How the agent sizes V8's heap, decided once at start (V8 reads these flags at each sizing
// decision; Node refuses them in NODE_OPTIONS, hence set from here before the agent allocates).
//
// The old generation: V8 lets it grow to about 4x what is live before a full collection. A Task
// array (issue 17) promotes short-lived per-index objects (in flight across young collections),
// so the heap sat at ~60 MB for ~20 MB live, most of the agent's RSS; a growing factor of 1.3
// keeps it near what is live (106 MB instead of 149 MB peak RSS over a 20,000-index array).
//
// The young generation: where its size is capped at start (the image's
// NODE_OPTIONS=--max-semi-space-size=8), V8 is left to grow it to that cap. --optimize-for-size,
// which gave the factor of 1.3 before, also held it at 1-4 MB semi-spaces: an array's ~28 KB an
// index then ran a scavenge every ~70 indexes, each copying the in-flight indexes' objects again
// and promoting those it had copied before, and V8's GC took ~50 us of the JS thread an index
// (docs/benchmarks.md, "The agent's JS thread and GC per index"). Without a cap at start (an
// agent run by scripts/parafork, say) V8 would grow it to 32-64 MB semi-spaces (134 MB resident,
// issue 7), so an agent started without one keeps --optimize-for-size.
//
// Taken out once (7ee13dc) on bench:logs runs whose turns never saw these flags (they run the
// runtime, not this entry point); measured again with the flags given to the turns
// (bench/logs.ts --node-options) and in bench:array (docs/benchmarks.md, "branch h-js, session 11").

/** The V8 flags the agent sets at start, given Node's own flags and NODE_OPTIONS. */
export function heapSizingFlags(execArgv: readonly string[], nodeOptions: string | undefined): string {
  const flags = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)];
  const youngGenerationCapped = flags.some((flag) => /^--max[-_]semi[-_]space[-_]size(=|$)/.test(flag));
  return youngGenerationCapped ? '--heap-growing-percent=30' : '--optimize-for-size';
}
