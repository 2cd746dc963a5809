/* The durable task queue of the coordinator: tasks (API test runs, load tests) wait here until a
 * runner with the capability and the scope takes them. Each task has an explicit state machine
 *
 *     queued -> assigned -> running -> succeeded | failed | cancelled | timed_out
 *        ^         |            |
 *        +---------+------------+   (requeued: runner lost, attempts left)
 *
 * A "performance" task is never requeued (its load already happened): a lost runner fails it.
 * The shares of one load test (tasks whose payload has the same "runId") go to different runners.
 *
 * changed in one function that refuses illegal transitions, and an attempt number that grows each
 * time it is handed out: only the attempt that owns a task may report on it, so a late result of
 * a requeued attempt cannot overwrite the newer one and every task finishes exactly once.
 *
 * Tasks persist as repository documents (kind "task") on every transition, so the queue survives
 * an admin restart; runners do not (they re-register). The admin is the only writer. Thread-safe:
 * one mutex; repository writes happen under it (the admin's writes are serialised anyway). */
#ifndef MK_QUEUE_H
#define MK_QUEUE_H

#include "err/err.h"
#include "repo/repo.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum mk_task_state {
    MK_TASK_QUEUED,
    MK_TASK_ASSIGNED,
    MK_TASK_RUNNING,
    MK_TASK_SUCCEEDED,
    MK_TASK_FAILED,
    MK_TASK_CANCELLED,
    MK_TASK_TIMED_OUT,
} mk_task_state_t;

const char *mk_task_state_name(mk_task_state_t s);
/* Whether the state machine allows from -> to (queued -> assigned, assigned -> running, assigned
 * or running -> queued (requeue) or a final state, queued -> cancelled; nothing leaves a final
 * state). */
bool mk_task_transition_ok(mk_task_state_t from, mk_task_state_t to);

typedef struct mk_queue mk_queue_t;

typedef struct mk_queue_config {
    int max_attempts;             /* 0: 3 */
    int64_t heartbeat_timeout_ms; /* RUNNER_HEARTBEAT_TIMEOUT; 0: 30 s */
    int64_t task_timeout_ms;      /* RUNNER_TASK_TIMEOUT default for tasks; 0: 30 min */
} mk_queue_config_t;

/* Loads every stored task (repo borrowed; must outlive the queue). Tasks that were assigned or
 * running when the admin stopped keep their runner: if it does not come back within the
 * heartbeat timeout, they are requeued like any lost runner's. */
int mk_queue_open(mk_repo_t *repo, const mk_queue_config_t *cfg, int64_t now_ms, mk_queue_t **out,
                  mk_err_t *err);
void mk_queue_free(mk_queue_t *q);

/* Called (with the queue's lock released) whenever tasks may be handed out: a submission, a
 * requeue, a runner with free slots. */
void mk_queue_set_notify(mk_queue_t *q, void (*cb)(void *ud), void *ud);

/* --- tasks --- */

/* A new queued task; id_out (at least 40 bytes) gets its id. payload_json is stored as given.
 * timeout_ms 0: the configured default. */
int mk_queue_submit(mk_queue_t *q, const char *capability, const char *ns, const char *payload_json,
                    int64_t timeout_ms, int64_t now_ms, char *id_out, mk_err_t *err);
/* Cancels a task that has not finished: a queued one at once, an assigned or running one too,
 * and its runner is told at its next heartbeat. MK_ENOTFOUND, or MK_ECONFLICT when finished. */
int mk_queue_cancel(mk_queue_t *q, const char *task_id, int64_t now_ms, mk_err_t *err);
/* Forgets a finished task: its document and its memory go (what deleting a run or a load test
 * result does, by hand or by retention). MK_ENOTFOUND, or MK_ECONFLICT when not finished. */
int mk_queue_remove(mk_queue_t *q, const char *task_id, mk_err_t *err);
/* The task as JSON {id, capability, namespace, state, attempt, runnerId, createdAt, updatedAt,
 * timeoutMs, error, payload (parsed), result (parsed)} or NULL. */
json_t *mk_queue_task(mk_queue_t *q, const char *task_id);
/* Tasks of ns (NULL: all), newest first, without payload and result. */
json_t *mk_queue_tasks(mk_queue_t *q, const char *ns);

/* --- runners --- */

typedef struct mk_queue_runner_info {
    const char *name;
    const char *const *capabilities;
    size_t ncapabilities;
    bool shared;        /* takes any namespace's tasks */
    const char *ns;     /* a namespace runner's namespace ("" or NULL when shared) */
    int max_concurrent; /* 0: 1 */
    const char *version;
    const char *kind; /* "runner" or "resolver" */
    const char *address;
} mk_queue_runner_info_t;

/* Registers a runner (a new registration with the same name replaces the old one, whose tasks
 * are requeued). id_out (at least 40 bytes) gets its id. */
int mk_queue_register(mk_queue_t *q, const mk_queue_runner_info_t *info, int64_t now_ms,
                      char *id_out, mk_err_t *err);
/* Liveness: *cancel (new reference, an array of task ids) lists tasks the runner must stop
 * (cancelled by a user, timed out, or no longer its own). MK_ENOTFOUND for an unknown runner (it
 * must register again). */
int mk_queue_heartbeat(mk_queue_t *q, const char *runner_id, const char *const *running,
                       size_t nrunning, int64_t now_ms, json_t **cancel, mk_err_t *err);

/* A task handed to a runner. Strings are owned; free with mk_queue_grant_release(). */
typedef struct mk_queue_grant {
    char *task_id;
    int attempt;
    char *capability;
    char *ns;
    char *payload_json;
    int64_t timeout_ms;
    int64_t created_at_ms;
} mk_queue_grant_t;
void mk_queue_grant_release(mk_queue_grant_t *g);

/* The next task for runner_id: one of its capabilities and within its scope, while it has a
 * free slot; fair across namespaces (the namespace with the fewest tasks in flight first, then
 * the oldest task). The task becomes assigned with the next attempt number. MK_ENOTFOUND when
 * nothing fits. */
int mk_queue_next(mk_queue_t *q, const char *runner_id, int64_t now_ms, mk_queue_grant_t *out,
                  mk_err_t *err);
/* The runner started the attempt (assigned -> running). false when the attempt no longer owns
 * the task. */
bool mk_queue_started(mk_queue_t *q, const char *task_id, int attempt, int64_t now_ms);
/* Whether a report for (task, attempt) may be accepted now. */
bool mk_queue_owns(mk_queue_t *q, const char *task_id, int attempt);

typedef enum mk_queue_outcome {
    MK_QUEUE_SUCCEEDED,
    MK_QUEUE_FAILED,
    MK_QUEUE_CANCELLED,
    MK_QUEUE_TIMED_OUT,
} mk_queue_outcome_t;

/* The final outcome of an attempt. Returns true when accepted; otherwise *reason says why ("attempt
 * 2 owns the task now", "task already finished", "no such task"). */
bool mk_queue_finish(mk_queue_t *q, const char *task_id, int attempt, mk_queue_outcome_t outcome,
                     const char *error, const char *result_json, int64_t now_ms,
                     const char **reason);

/* Housekeeping, every second or so: runners silent past the heartbeat timeout go offline and
 * their tasks are requeued (or fail once attempts are used up); tasks running past their timeout
 * become timed_out (their runner is told to cancel). */
void mk_queue_tick(mk_queue_t *q, int64_t now_ms);

/* Runners as JSON [{id, name, kind, state ("online"/"offline"), capabilities, shared, namespace,
 * maxConcurrent, running (task ids), lastHeartbeat, version, address}]; kind NULL: all. */
json_t *mk_queue_runners(mk_queue_t *q, const char *kind);

/* Gauges: tasks queued and in flight per namespace, as {"ns": {"queued": n, "active": m}}. */
json_t *mk_queue_depths(mk_queue_t *q);

#endif
