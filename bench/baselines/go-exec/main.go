// Command go-exec is the Go baseline for the parafork spawn benchmark.
//
// Why this exists: os/exec is what a Go service reaches for when it needs a
// child process, so it is the "ordinary runtime" point of comparison next to
// the raw libc floor in ../posix-spawn.c. It is written the idiomatic way
// (exec.Command, Start, Wait, nil stdio meaning /dev/null) on purpose: the
// number we want is what Go programs actually pay, runtime overhead included.
//
// What it measures: N goroutines share an atomic ticket counter and each loops
//
//	t0 = now; exec.Command(FILE).Start(); t1 = now; cmd.Wait()
//
// until TOTAL spawns have been issued. Start returns only after the child has
// exec'd (the runtime waits on a close-on-exec pipe), so t1 - t0 is the spawn
// latency. A short uncounted warm-up runs first. One JSON line is printed at
// the end; the contract is shared with posix-spawn.c and described in
// ../README.md. The module has no dependencies so it builds offline.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	engineName      = "go-os-exec"
	programName     = "go-exec"
	maxWarmupSpawns = 200
)

type options struct {
	concurrency int
	totalSpawns int
	file        string
	heapMB      int
}

type latencySummary struct {
	P50 int64 `json:"p50"`
	P90 int64 `json:"p90"`
	P99 int64 `json:"p99"`
	Max int64 `json:"max"`
}

// benchmarkResult's field order is the JSON output contract; keep it in step
// with the printf in posix-spawn.c.
type benchmarkResult struct {
	Engine          string         `json:"engine"`
	Concurrency     int            `json:"concurrency"`
	Total           int            `json:"total"`
	WallNs          int64          `json:"wallNs"`
	SpawnsPerSecond float64        `json:"spawnsPerSecond"`
	LatencyNs       latencySummary `json:"latencyNs"`
	Errors          int64          `json:"errors"`
}

// heapBallast lives in a package variable so the collector keeps it resident
// for the whole run rather than reclaiming it once setup is done.
var heapBallast []byte

const usageText = `usage: go-exec [-c N] [-n TOTAL] [-file PATH] [-heap-mb M] [-h]
  -c N         concurrent spawning goroutines (default 50)
  -n TOTAL     counted spawns across all goroutines (default 5000)
  -file PATH   program to spawn, no arguments (default /bin/true)
  -heap-mb M   allocate and touch M MiB before measuring (default 0)
  -h           show this help
Prints one JSON line with engine "go-os-exec".
`

// parseOptions keeps flag's own messages quiet: the contract is usage on
// stdout for -h, and exactly one line on stderr plus exit 2 for a bad flag,
// whereas flag's default would dump the whole usage on every mistake.
func parseOptions(arguments []string) options {
	parsed := options{}
	flags := flag.NewFlagSet(programName, flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.IntVar(&parsed.concurrency, "c", 50, "")
	flags.IntVar(&parsed.totalSpawns, "n", 5000, "")
	flags.StringVar(&parsed.file, "file", "/bin/true", "")
	flags.IntVar(&parsed.heapMB, "heap-mb", 0, "")

	err := flags.Parse(arguments)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(usageText)
		os.Exit(0)
	}
	if err == nil {
		err = validateOptions(parsed, flags.Args())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v (try -h)\n", programName, err)
		os.Exit(2)
	}
	return parsed
}

// validateOptions uses the same limits as posix-spawn.c so that a command
// line accepted by one baseline is accepted by the other.
func validateOptions(parsed options, leftover []string) error {
	switch {
	case len(leftover) > 0:
		return fmt.Errorf("unexpected argument %s", leftover[0])
	case parsed.concurrency < 1 || parsed.concurrency > 100000:
		return fmt.Errorf("invalid value %d for flag -c (want an integer in [1, 100000])", parsed.concurrency)
	case parsed.totalSpawns < 1 || parsed.totalSpawns > 100000000:
		return fmt.Errorf("invalid value %d for flag -n (want an integer in [1, 100000000])", parsed.totalSpawns)
	case parsed.heapMB < 0 || parsed.heapMB > 1024*1024:
		return fmt.Errorf("invalid value %d for flag -heap-mb (want an integer in [0, 1048576])", parsed.heapMB)
	case parsed.file == "":
		return errors.New("empty value for flag -file")
	}
	return nil
}

// allocateHeapBallast makes the process big (resident, not just reserved) so
// the benchmark can show whether spawn cost grows with the parent's memory.
// Fresh Go allocations of this size come straight from the OS untouched, so
// every page is written once to fault it in.
func allocateHeapBallast(heapMB int) {
	if heapMB == 0 {
		return
	}
	heapBallast = make([]byte, heapMB<<20)
	pageSize := os.Getpagesize()
	for offset := 0; offset < len(heapBallast); offset += pageSize {
		heapBallast[offset] = 1
	}
}

// spawnOutcome is what one spawn-and-wait reports back to its worker.
type spawnOutcome struct {
	start   time.Time
	latency time.Duration
	exited  time.Time
	failed  bool
}

func spawnAndWait(file string) spawnOutcome {
	// Building the Cmd is inside the timed region because every os/exec
	// caller pays for it; with a path containing '/', no PATH lookup happens.
	start := time.Now()
	command := exec.Command(file)
	startErr := command.Start()
	latency := time.Since(start)
	if startErr != nil {
		return spawnOutcome{start: start, exited: time.Now(), failed: true}
	}
	waitErr := command.Wait()
	exited := time.Now()
	// A non-zero exit status is the child's business, not a spawn error.
	var exitErr *exec.ExitError
	failed := waitErr != nil && !errors.As(waitErr, &exitErr)
	return spawnOutcome{start: start, latency: latency, exited: exited, failed: failed}
}

// workerSpan is one goroutine's share of the wall clock; the overall wall
// time is the union of all spans.
type workerSpan struct {
	firstSpawnStart time.Time
	lastExit        time.Time
}

// nearestRank returns the smallest sample such that at least percent% of the
// samples are <= it. sorted must be ascending.
func nearestRank(sorted []int64, percent int) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := (percent*len(sorted) + 99) / 100
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func main() {
	opts := parseOptions(os.Args[1:])
	allocateHeapBallast(opts.heapMB)

	warmupSpawns := int64(min(maxWarmupSpawns, opts.totalSpawns/10))
	totalSpawns := int64(opts.totalSpawns)

	var warmupTickets, measuredTickets, samplesRecorded, errorCount atomic.Int64
	latencySamplesNs := make([]int64, totalSpawns)
	spans := make([]workerSpan, opts.concurrency)

	var warmupFinished, workersFinished sync.WaitGroup
	startMeasuring := make(chan struct{})

	for worker := range opts.concurrency {
		warmupFinished.Add(1)
		workersFinished.Add(1)
		go func(span *workerSpan) {
			defer workersFinished.Done()
			for warmupTickets.Add(1) <= warmupSpawns {
				spawnAndWait(opts.file)
			}
			// Everyone starts the counted phase together, so the wall clock
			// does not include warm-up stragglers.
			warmupFinished.Done()
			<-startMeasuring

			for measuredTickets.Add(1) <= totalSpawns {
				outcome := spawnAndWait(opts.file)
				if span.firstSpawnStart.IsZero() {
					span.firstSpawnStart = outcome.start
				}
				span.lastExit = outcome.exited
				if outcome.failed {
					errorCount.Add(1)
					continue
				}
				slot := samplesRecorded.Add(1) - 1
				latencySamplesNs[slot] = outcome.latency.Nanoseconds()
			}
		}(&spans[worker])
	}
	warmupFinished.Wait()
	close(startMeasuring)
	workersFinished.Wait()

	var wallStart, wallEnd time.Time
	for _, span := range spans {
		if span.firstSpawnStart.IsZero() {
			continue
		}
		if wallStart.IsZero() || span.firstSpawnStart.Before(wallStart) {
			wallStart = span.firstSpawnStart
		}
		if span.lastExit.After(wallEnd) {
			wallEnd = span.lastExit
		}
	}
	var wall time.Duration
	if !wallStart.IsZero() {
		wall = wallEnd.Sub(wallStart) // both carry monotonic readings
	}

	sorted := latencySamplesNs[:samplesRecorded.Load()]
	slices.Sort(sorted)

	// Throughput counts only spawns that worked, so errors cannot inflate it.
	spawnsPerSecond := 0.0
	if wall > 0 {
		spawnsPerSecond = float64(len(sorted)) / wall.Seconds()
	}
	var maxLatency int64
	if len(sorted) > 0 {
		maxLatency = sorted[len(sorted)-1]
	}

	result := benchmarkResult{
		Engine:          engineName,
		Concurrency:     opts.concurrency,
		Total:           opts.totalSpawns,
		WallNs:          wall.Nanoseconds(),
		SpawnsPerSecond: math.Round(spawnsPerSecond*10) / 10,
		LatencyNs: latencySummary{
			P50: nearestRank(sorted, 50),
			P90: nearestRank(sorted, 90),
			P99: nearestRank(sorted, 99),
			Max: maxLatency,
		},
		Errors: errorCount.Load(),
	}
	line, err := json.Marshal(result)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: encoding result: %v\n", programName, err)
		os.Exit(1)
	}
	fmt.Println(string(line))
}
