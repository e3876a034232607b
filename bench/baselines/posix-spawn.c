/*
 * posix-spawn.c - C baseline for the parafork spawn benchmark.
 *
 * Why this exists: parafork claims to launch processes fast, so we need to
 * know what "fast" means on the same machine. glibc's posix_spawn (2.36 uses
 * clone(CLONE_VM | CLONE_VFORK), so no page tables are copied) is the fastest
 * way plain libc offers, which makes it the floor a launcher has to be
 * compared against. The program deliberately has no dependencies beyond libc
 * and pthreads so its numbers cannot be blamed on a runtime.
 *
 * What it measures: N threads share an atomic ticket counter and each loops
 *   t0 = now; posix_spawn(FILE); t1 = now; waitpid(that pid)
 * until TOTAL spawns have been issued. t1 - t0 is the spawn latency (the
 * child has exec'd by the time posix_spawn returns, because of CLONE_VFORK).
 * A short uncounted warm-up runs first so page-cache and allocator effects
 * do not land in the samples. One JSON line is printed at the end; the
 * contract is shared with go-exec/main.go and described in README.md.
 *
 * Build: gcc -std=c11 -O2 -Wall -Wextra -Werror -pthread \
 *            -o posix-spawn posix-spawn.c
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ENGINE_NAME "c-posix-spawn"
#define PROGRAM_NAME "posix-spawn"
#define MAX_WARMUP_SPAWNS 200

extern char **environ;

struct options {
    long concurrency;
    long total_spawns;
    const char *file;
    long heap_mb;
};

/* Everything the workers share. Read-only after setup except the atomics. */
struct benchmark {
    const struct options *options;
    posix_spawn_file_actions_t stdio_to_dev_null;
    pthread_barrier_t warmup_finished;
    atomic_long warmup_tickets;
    long warmup_spawns;
    atomic_long measured_tickets;
    atomic_long samples_recorded;
    atomic_long errors;
    uint64_t *latency_samples_ns; /* one slot per counted spawn */
};

/* Each worker keeps its own wall-clock bounds so that the hot loop never
 * writes to shared cache lines except for the ticket and sample counters. */
struct worker {
    pthread_t thread;
    struct benchmark *benchmark;
    uint64_t first_spawn_start_ns; /* 0 = this worker did no counted spawn */
    uint64_t last_exit_ns;
};

/* Kept in a volatile-qualified global so the compiler cannot decide the
 * ballast is unused and drop the allocation or the page touches. */
static volatile unsigned char *volatile heap_ballast;

static uint64_t monotonic_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void print_usage(FILE *out)
{
    fprintf(out,
        "usage: %s [-c N] [-n TOTAL] [-file PATH] [-heap-mb M] [-h]\n"
        "  -c N         concurrent spawning threads (default 50)\n"
        "  -n TOTAL     counted spawns across all threads (default 5000)\n"
        "  -file PATH   program to spawn, no arguments (default /bin/true)\n"
        "  -heap-mb M   allocate and touch M MiB before measuring (default 0)\n"
        "  -h           show this help\n"
        "Prints one JSON line with engine \"%s\".\n",
        PROGRAM_NAME, ENGINE_NAME);
}

static void exit_bad_usage(const char *message, const char *detail)
{
    fprintf(stderr, "%s: %s%s (try -h)\n", PROGRAM_NAME, message, detail);
    exit(2);
}

static long parse_long_in_range(const char *flag, const char *text,
                                long min, long max)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min ||
        value > max) {
        fprintf(stderr, "%s: invalid value \"%s\" for flag -%s "
                "(want an integer in [%ld, %ld]) (try -h)\n",
                PROGRAM_NAME, text, flag, min, max);
        exit(2);
    }
    return value;
}

/* Accepts the same spellings as Go's flag package (-c 5, -c=5, --c 5) so
 * that both baselines can be driven by identical command lines. */
static struct options parse_options(int argc, char **argv)
{
    struct options options = {
        .concurrency = 50,
        .total_spawns = 5000,
        .file = "/bin/true",
        .heap_mb = 0,
    };
    for (int i = 1; i < argc; i++) {
        const char *argument = argv[i];
        if (argument[0] != '-' || argument[1] == '\0')
            exit_bad_usage("unexpected argument ", argument);
        const char *name = argument + 1;
        if (name[0] == '-')
            name++;
        char name_buffer[32];
        const char *value = NULL;
        const char *equals = strchr(name, '=');
        if (equals != NULL) {
            size_t length = (size_t)(equals - name);
            if (length >= sizeof name_buffer)
                exit_bad_usage("unknown flag ", argument);
            memcpy(name_buffer, name, length);
            name_buffer[length] = '\0';
            name = name_buffer;
            value = equals + 1;
        }
        if (strcmp(name, "h") == 0 || strcmp(name, "help") == 0) {
            print_usage(stdout);
            exit(0);
        }
        if (strcmp(name, "c") != 0 && strcmp(name, "n") != 0 &&
            strcmp(name, "file") != 0 && strcmp(name, "heap-mb") != 0)
            exit_bad_usage("unknown flag ", argument);
        if (value == NULL) {
            if (i + 1 >= argc)
                exit_bad_usage("missing value for flag ", argument);
            value = argv[++i];
        }
        if (strcmp(name, "c") == 0)
            options.concurrency = parse_long_in_range("c", value, 1, 100000);
        else if (strcmp(name, "n") == 0)
            options.total_spawns =
                parse_long_in_range("n", value, 1, 100000000);
        else if (strcmp(name, "heap-mb") == 0)
            options.heap_mb = parse_long_in_range("heap-mb", value, 0,
                                                  1024L * 1024L);
        else if (value[0] == '\0')
            exit_bad_usage("empty value for flag ", argument);
        else
            options.file = value;
    }
    return options;
}

/* Makes the process big (resident, not just reserved) so the benchmark can
 * show whether spawn cost grows with the parent's memory, as fork's does. */
static void allocate_heap_ballast(long heap_mb)
{
    if (heap_mb == 0)
        return;
    size_t bytes = (size_t)heap_mb * 1024u * 1024u;
    volatile unsigned char *ballast = malloc(bytes);
    if (ballast == NULL) {
        fprintf(stderr, "%s: cannot allocate %ld MiB of heap ballast\n",
                PROGRAM_NAME, heap_mb);
        exit(1);
    }
    size_t page_size = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t offset = 0; offset < bytes; offset += page_size)
        ballast[offset] = 1;
    heap_ballast = ballast;
}

/* Spawns one child and waits for it. Returns the latency of the spawn call
 * itself, or -1 if the spawn or the wait failed. */
static int spawn_and_wait(struct benchmark *benchmark, uint64_t *spawn_start_ns,
                          uint64_t *spawn_latency_ns, uint64_t *exit_ns)
{
    char *child_argv[] = {(char *)benchmark->options->file, NULL};
    pid_t child;

    uint64_t start = monotonic_now_ns();
    int spawn_error = posix_spawn(&child, benchmark->options->file,
                                  &benchmark->stdio_to_dev_null, NULL,
                                  child_argv, environ);
    uint64_t returned = monotonic_now_ns();
    *spawn_start_ns = start;
    if (spawn_error != 0)
        return -1;
    *spawn_latency_ns = returned - start;

    int status;
    pid_t waited;
    do {
        waited = waitpid(child, &status, 0);
    } while (waited == -1 && errno == EINTR);
    *exit_ns = monotonic_now_ns();
    /* A non-zero exit status is the child's business, not a spawn error. */
    return waited == child ? 0 : -1;
}

static void *run_worker(void *argument)
{
    struct worker *worker = argument;
    struct benchmark *benchmark = worker->benchmark;
    uint64_t start_ns, latency_ns, exit_ns;

    while (atomic_fetch_add(&benchmark->warmup_tickets, 1) <
           benchmark->warmup_spawns)
        (void)spawn_and_wait(benchmark, &start_ns, &latency_ns, &exit_ns);

    /* Everyone starts the counted phase together, so the wall clock does not
     * include warm-up stragglers. */
    pthread_barrier_wait(&benchmark->warmup_finished);

    while (atomic_fetch_add(&benchmark->measured_tickets, 1) <
           benchmark->options->total_spawns) {
        int outcome = spawn_and_wait(benchmark, &start_ns, &latency_ns,
                                     &exit_ns);
        if (worker->first_spawn_start_ns == 0)
            worker->first_spawn_start_ns = start_ns;
        if (outcome != 0) {
            atomic_fetch_add(&benchmark->errors, 1);
            exit_ns = monotonic_now_ns();
        } else {
            long slot = atomic_fetch_add(&benchmark->samples_recorded, 1);
            benchmark->latency_samples_ns[slot] = latency_ns;
        }
        worker->last_exit_ns = exit_ns;
    }
    return NULL;
}

static int compare_u64(const void *left, const void *right)
{
    uint64_t a = *(const uint64_t *)left;
    uint64_t b = *(const uint64_t *)right;
    return (a > b) - (a < b);
}

/* Nearest-rank percentile over an ascending array: the smallest sample such
 * that at least `percent`% of samples are <= it. */
static uint64_t nearest_rank(const uint64_t *sorted, long count, long percent)
{
    if (count == 0)
        return 0;
    long rank = (percent * count + 99) / 100;
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

/* Opens /dev/null once and lets the file actions dup2 it onto 0/1/2, which is
 * cheaper per spawn than three opens in the child. The descriptor is kept at
 * >= 3 and close-on-exec so children never inherit an extra fd. */
static int open_dev_null_above_stdio(void)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd == -1) {
        perror(PROGRAM_NAME ": open /dev/null");
        exit(1);
    }
    if (fd > STDERR_FILENO)
        return fd;
    int high_fd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (high_fd == -1) {
        perror(PROGRAM_NAME ": fcntl F_DUPFD_CLOEXEC");
        exit(1);
    }
    close(fd);
    return high_fd;
}

int main(int argc, char **argv)
{
    struct options options = parse_options(argc, argv);
    allocate_heap_ballast(options.heap_mb);

    struct benchmark benchmark = {
        .options = &options,
        .warmup_spawns = options.total_spawns / 10 < MAX_WARMUP_SPAWNS
                             ? options.total_spawns / 10
                             : MAX_WARMUP_SPAWNS,
    };
    atomic_init(&benchmark.warmup_tickets, 0);
    atomic_init(&benchmark.measured_tickets, 0);
    atomic_init(&benchmark.samples_recorded, 0);
    atomic_init(&benchmark.errors, 0);

    benchmark.latency_samples_ns =
        calloc((size_t)options.total_spawns, sizeof(uint64_t));
    struct worker *workers =
        calloc((size_t)options.concurrency, sizeof(struct worker));
    if (benchmark.latency_samples_ns == NULL || workers == NULL) {
        fprintf(stderr, "%s: out of memory\n", PROGRAM_NAME);
        return 1;
    }

    int dev_null = open_dev_null_above_stdio();
    posix_spawn_file_actions_init(&benchmark.stdio_to_dev_null);
    for (int target = STDIN_FILENO; target <= STDERR_FILENO; target++)
        posix_spawn_file_actions_adddup2(&benchmark.stdio_to_dev_null,
                                         dev_null, target);

    pthread_barrier_init(&benchmark.warmup_finished, NULL,
                         (unsigned)options.concurrency);

    for (long i = 0; i < options.concurrency; i++) {
        workers[i].benchmark = &benchmark;
        int error = pthread_create(&workers[i].thread, NULL, run_worker,
                                   &workers[i]);
        if (error != 0) {
            fprintf(stderr, "%s: cannot start thread %ld of %ld: %s\n",
                    PROGRAM_NAME, i + 1, options.concurrency,
                    strerror(error));
            exit(1); /* the barrier would never open */
        }
    }
    for (long i = 0; i < options.concurrency; i++)
        pthread_join(workers[i].thread, NULL);

    uint64_t wall_start_ns = UINT64_MAX;
    uint64_t wall_end_ns = 0;
    for (long i = 0; i < options.concurrency; i++) {
        if (workers[i].first_spawn_start_ns == 0)
            continue;
        if (workers[i].first_spawn_start_ns < wall_start_ns)
            wall_start_ns = workers[i].first_spawn_start_ns;
        if (workers[i].last_exit_ns > wall_end_ns)
            wall_end_ns = workers[i].last_exit_ns;
    }
    uint64_t wall_ns = wall_end_ns > wall_start_ns ? wall_end_ns - wall_start_ns
                                                   : 0;

    long sample_count = atomic_load(&benchmark.samples_recorded);
    long error_count = atomic_load(&benchmark.errors);
    qsort(benchmark.latency_samples_ns, (size_t)sample_count,
          sizeof(uint64_t), compare_u64);
    const uint64_t *sorted = benchmark.latency_samples_ns;

    /* Throughput counts only spawns that worked, so errors cannot inflate it. */
    double spawns_per_second =
        wall_ns > 0 ? (double)sample_count * 1e9 / (double)wall_ns : 0.0;

    printf("{\"engine\":\"%s\",\"concurrency\":%ld,\"total\":%ld,"
           "\"wallNs\":%llu,\"spawnsPerSecond\":%.1f,"
           "\"latencyNs\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
           "\"max\":%llu},\"errors\":%ld}\n",
           ENGINE_NAME, options.concurrency, options.total_spawns,
           (unsigned long long)wall_ns, spawns_per_second,
           (unsigned long long)nearest_rank(sorted, sample_count, 50),
           (unsigned long long)nearest_rank(sorted, sample_count, 90),
           (unsigned long long)nearest_rank(sorted, sample_count, 99),
           (unsigned long long)(sample_count > 0 ? sorted[sample_count - 1]
                                                 : 0),
           error_count);

    pthread_barrier_destroy(&benchmark.warmup_finished);
    posix_spawn_file_actions_destroy(&benchmark.stdio_to_dev_null);
    close(dev_null);
    free(workers);
    free(benchmark.latency_samples_ns);
    free((void *)heap_ballast);
    return 0;
}
