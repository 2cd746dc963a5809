/* The runner's load test task (capability "performance"): one share of a run's load, measured
 * by pkg/loadgen and streamed to the coordinator as per-second mergeable snapshots. */
#ifndef MK_RUNNER_PERF_TASK_H
#define MK_RUNNER_PERF_TASK_H

#include "loadgen/loadgen.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct perf_task_io {
    /* One second of the run: event_json is {"type": "snapshot", "runId", "shard", "shards",
     * "stats": delta} (borrowed), percent of the planned run done. */
    void (*snapshot)(void *ud, const char *event_json, double percent);
    /* The generator is about to run (lg) or has ended (NULL), so another thread can stop it
     * with mk_loadgen_stop (a task stopped before it started: stop it here; it then ends at
     * once). name is the run's. */
    void (*running)(void *ud, mk_loadgen_t *lg, const char *name);
    /* Whether the runner itself is shutting down (checked once a second). */
    bool (*quitting)(void *ud);
    void *ud;
} perf_task_io_t;

/* Runs the payload {"runId", "shard", "shards", "config": the POST /api/v1/perf/run body}.
 * 0 when the load ran: *result_json (caller frees) is {"type": "perf", "runId", "shard",
 * "shards", "stats": total, "summary": {...}} and *stopped says whether it was stopped early;
 * -1 when it could not start, with the reason in error. */
int perf_task_run(const char *payload_json, const perf_task_io_t *io, char **result_json,
                  bool *stopped, char *error, size_t size);

#endif
