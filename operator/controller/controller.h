/* The operator's control loop: informers (list+watch caches), a deduplicating work queue with
 * per-key backoff, leader election on a Lease, and the reconcile I/O around the pure functions
 * of operator/reconcile. */
#ifndef MK_CONTROLLER_H
#define MK_CONTROLLER_H

#include "err/err.h"
#include "kube/kube.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- Work queue --------------------------------------------------------------------------- */

/* Keys are strings ("MockartyCluster/ns/name"). A key is queued at most once; a key added while
 * it is being processed is queued again when processing is done, so one key is never processed
 * by two workers at once. */
typedef struct mk_controller_queue mk_controller_queue_t;

/* base_ms and max_ms bound the per-key exponential backoff (base * 2^failures, capped). */
int mk_controller_queue_new(long base_ms, long max_ms, mk_controller_queue_t **out);
void mk_controller_queue_free(mk_controller_queue_t *q);
void mk_controller_queue_add(mk_controller_queue_t *q, const char *key);
void mk_controller_queue_add_after(mk_controller_queue_t *q, const char *key, long delay_ms);
/* Adds after the key's backoff delay and counts one more failure for it. */
void mk_controller_queue_add_rate_limited(mk_controller_queue_t *q, const char *key);
/* Resets the key's failure count (after a success). */
void mk_controller_queue_forget(mk_controller_queue_t *q, const char *key);
int mk_controller_queue_failures(mk_controller_queue_t *q, const char *key);
/* Blocks for the next key; *key is the caller's to free. MK_EUNAVAIL once shut down. */
int mk_controller_queue_get(mk_controller_queue_t *q, char **key);
/* Marks the key from mk_controller_queue_get as processed. */
void mk_controller_queue_done(mk_controller_queue_t *q, const char *key);
void mk_controller_queue_shutdown(mk_controller_queue_t *q);
/* Keys ready or waiting for their delay. */
size_t mk_controller_queue_len(mk_controller_queue_t *q);

/* ---- Informer ----------------------------------------------------------------------------- */

/* Called from the informer's thread after the cache changed. obj is borrowed. After a relist,
 * every object is reported (ADDED or MODIFIED) and vanished ones as DELETED. */
typedef void (*mk_controller_handler_fn)(void *ud, mk_kube_event_t type, const json_t *obj);

typedef struct mk_controller_informer mk_controller_informer_t;

/* An informer for res in ns (NULL or "": all namespaces). k is borrowed and must outlive it. */
int mk_controller_informer_new(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns,
                               mk_controller_handler_fn fn, void *ud,
                               mk_controller_informer_t **out, mk_err_t *err);
int mk_controller_informer_start(mk_controller_informer_t *inf, mk_err_t *err);
/* Asks the thread to stop without waiting (so several informers stop in parallel). */
void mk_controller_informer_stop(mk_controller_informer_t *inf);
/* Stops and joins the thread; then frees. Accepts NULL. */
void mk_controller_informer_free(mk_controller_informer_t *inf);
bool mk_controller_informer_synced(mk_controller_informer_t *inf);
/* The cached object (a new reference; read-only, shared with the cache) or NULL. */
json_t *mk_controller_informer_get(mk_controller_informer_t *inf, const char *ns, const char *name);
/* A new array of every cached object (references shared with the cache; read-only). */
json_t *mk_controller_informer_list(mk_controller_informer_t *inf);
/* How many times the informer listed (1 after the first sync; more after 410 Expired). */
long mk_controller_informer_lists(mk_controller_informer_t *inf);

/* ---- Leader election ---------------------------------------------------------------------- */

typedef enum {
    MK_CONTROLLER_FOLLOWER,
    MK_CONTROLLER_LEADER,
    MK_CONTROLLER_RELEASED,
} mk_controller_lease_state_t;

typedef struct mk_controller_lease mk_controller_lease_t;

/* A coordination.k8s.io/v1 Lease ns/name contended for as identity. */
int mk_controller_lease_new(mk_kube_t *k, const char *ns, const char *name, const char *identity,
                            int duration_s, mk_controller_lease_t **out, mk_err_t *err);
void mk_controller_lease_free(mk_controller_lease_t *l);
/* One round: acquire when free or expired (not renewed for duration_s as seen from here), renew
 * when held. Returns 0 (see *state) or the API error of the attempt. */
int mk_controller_lease_try(mk_controller_lease_t *l, mk_controller_lease_state_t *state,
                            mk_err_t *err);
/* Gives the lease up (clears holderIdentity) when held. */
int mk_controller_lease_release(mk_controller_lease_t *l, mk_err_t *err);
mk_controller_lease_state_t mk_controller_lease_state(mk_controller_lease_t *l);

/* ---- Controller --------------------------------------------------------------------------- */

typedef void (*mk_controller_log_fn)(void *ud, const char *level, const char *msg);

typedef struct mk_controller_opts {
    const char *watch_namespace; /* NULL or "": all namespaces */
    bool leader_election;
    const char *lease_namespace; /* required when leader_election */
    const char *lease_name;      /* NULL: "mockarty-operator-leader" */
    const char *identity;        /* this process (POD_NAME) */
    int health_port;             /* 0: no health server */
    long resync_ms;              /* periodic requeue of every resource; 0: 10 minutes */
    mk_controller_log_fn log;    /* may be NULL */
    void *log_ud;
} mk_controller_opts_t;

typedef struct mk_controller mk_controller_t;

/* k is borrowed and must outlive the controller; opts strings are copied. */
int mk_controller_new(mk_kube_t *k, const mk_controller_opts_t *opts, mk_controller_t **out,
                      mk_err_t *err);
void mk_controller_free(mk_controller_t *c);
/* Runs until *stop becomes nonzero (returns 0, after releasing the lease) or the lease is lost
 * (MK_EUNAVAIL: the process should exit so that it never reconciles without the lease). */
int mk_controller_run(mk_controller_t *c, const volatile int *stop, mk_err_t *err);
/* The port the health server listens on (useful with health_port -1: any free port). */
int mk_controller_health_port(mk_controller_t *c);

/* ---- Health and metrics server ----------------------------------------------------------- */

/* Renders the answer for path into a malloc'd body; returns the HTTP status. */
typedef int (*mk_controller_http_fn)(void *ud, const char *path, char **body,
                                     const char **content_type);

typedef struct mk_controller_health mk_controller_health_t;

/* Serves GET requests on 0.0.0.0:port (port -1: a free port) from its own thread. */
int mk_controller_health_start(int port, mk_controller_http_fn fn, void *ud,
                               mk_controller_health_t **out, mk_err_t *err);
int mk_controller_health_bound_port(mk_controller_health_t *h);
void mk_controller_health_stop(mk_controller_health_t *h);

#endif
