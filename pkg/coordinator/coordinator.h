/* The coordinator: the admin's gRPC service (proto/coordinator.proto) through which runners
 * register, heartbeat, pull tasks from the durable queue (pkg/queue), stream progress and report
 * results. A runner's integration token (metadata "authorization: Bearer mki_...") decides its
 * scope: an admin-scoped token may run shared, a namespace-scoped one only that namespace.
 * Progress events are kept in memory per task for the REST API's event stream. */
#ifndef MK_COORDINATOR_H
#define MK_COORDINATOR_H

#include "err/err.h"
#include "grpc/grpc.h"
#include "identity/identity.h"
#include "queue/queue.h"
#include "repo/repo.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct mk_coord mk_coord_t;

typedef struct mk_coord_config {
    const char *host;              /* NULL: 0.0.0.0 */
    int port;                      /* RUNNER_GRPC_PORT; 0: ephemeral */
    const mk_grpc_tls_opts_t *tls; /* NULL: h2c */
    const char *api_token;         /* the bootstrap API_TOKEN, accepted as an admin token */
    bool allow_anonymous;          /* no credentials needed (authentication off): acts as admin */
    int heartbeat_interval_ms;     /* told to runners; 0: a third of the timeout, at most 5 s */
    mk_queue_config_t queue;
} mk_coord_config_t;

/* Opens the queue over repo (borrowed, must outlive the coordinator); identity is borrowed and may
 * be NULL (then only api_token or anonymous callers are accepted). Not yet listening. */
int mk_coord_new(const mk_coord_config_t *cfg, mk_repo_t *repo, mk_identity_t *identity,
                 mk_coord_t **out, mk_err_t *err);
/* Listens and starts the dispatch/tick thread. */
int mk_coord_start(mk_coord_t *c, mk_err_t *err);
int mk_coord_port(const mk_coord_t *c);
/* Stops the gRPC server and the thread, frees everything. NULL is fine. */
void mk_coord_free(mk_coord_t *c);

/* TLS without certificate files: the paths of dir/coordinator.crt and dir/coordinator.key
 * (written into cert_path and key_path, size bytes each), made now (EC P-256, self-signed, ten
 * years, names localhost, 127.0.0.1, ::1 and hostname) unless an earlier start made them. The
 * directory is created with mode 0700, the key file 0600. */
int mk_coord_selfsigned(const char *dir, const char *hostname, char *cert_path, char *key_path,
                        size_t size, mk_err_t *err);

/* The queue (borrowed): the REST API submits, lists and cancels through it. */
mk_queue_t *mk_coord_queue(mk_coord_t *c);

/* The progress events received for task_id so far (new reference: an array of
 * {seq, attempt, percent, event}), or NULL when none. */
json_t *mk_coord_events(mk_coord_t *c, const char *task_id);
/* The same, only those with a seq above after (a live stream's next poll); an empty array when
 * none is newer. */
json_t *mk_coord_events_after(mk_coord_t *c, const char *task_id, int64_t after);
/* Forgets a task's events (the run was deleted). */
void mk_coord_forget(mk_coord_t *c, const char *task_id);
/* Asks the runner of a running task to stop it and report what it has (a load test's stop):
 * unlike mk_queue_cancel the task stays its runner's until that result comes. The id is listed
 * in the runner's heartbeat answers (cancel_task_ids) until then, or for ten minutes. */
int mk_coord_stop_task(mk_coord_t *c, const char *task_id);

/* ---- a node that takes no tasks (a resolver) announcing itself ---- */

typedef struct mk_coord_announce mk_coord_announce_t;

typedef struct mk_coord_announce_opts {
    const char *target;            /* COORDINATOR_ADDR, "host:port" */
    const char *token;             /* an admin-scoped token (mki_ or the admin's API_TOKEN) */
    const char *name;              /* shown in GET /api/v1/resolvers */
    const char *address;           /* where the node serves, e.g. "10.0.0.8:5780" */
    const mk_grpc_tls_opts_t *tls; /* NULL: h2c */
} mk_coord_announce_opts_t;

/* Starts a thread that registers (kind resolver), heartbeats, and registers again with backoff
 * whenever the coordinator is lost. Options are copied. */
int mk_coord_announce_start(const mk_coord_announce_opts_t *o, mk_coord_announce_t **out,
                            mk_err_t *err);
/* Whether it is registered now; error (size bytes) gets the last failure, "" when none. */
bool mk_coord_announce_status(mk_coord_announce_t *a, char *error, size_t size);
/* Stops the thread (at worst after a call in flight times out) and frees. NULL is fine. */
void mk_coord_announce_stop(mk_coord_announce_t *a);

#endif
