/* Outbound webhooks. The sender delivers HTTP calls off the request path, with retries and
 * exponential backoff, over pkg/httpclient (one thread, many transfers): any module can use it
 * (namespace webhooks here; per-mock webhooks). The hooks are the namespace webhooks of the admin
 * API: subscriptions stored as repository documents, events signed with HMAC-SHA256
 * (X-Mockarty-Signature: sha256=<hex>), and a delivery log with one row per attempt. */
#ifndef MK_WEBHOOK_H
#define MK_WEBHOOK_H

#include "err/err.h"
#include "repo/repo.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- the sender --- */

typedef struct mk_webhook_sender mk_webhook_sender_t;

typedef struct mk_webhook_attempt {
    int attempt;         /* 1 for the first */
    bool ok;             /* a 2xx answer */
    bool final;          /* no attempt follows: delivered, retries used up, or stopping */
    int status;          /* the HTTP status; 0 without an answer */
    const char *error;   /* "" or why there was no answer (timeout, refused, stopped) */
    double duration_ms;  /* of this attempt */
    int64_t retry_in_ms; /* when not final: the wait before the next attempt */
} mk_webhook_attempt_t;

/* Runs on the sender's thread after every attempt; the call with final set is the last one for
 * the request, after which its ud is not used again (free it there). Must not block long. */
typedef void (*mk_webhook_attempt_cb)(void *ud, const mk_webhook_attempt_t *a);

/* One call to make. mk_webhook_send copies everything but ud. */
typedef struct mk_webhook_req {
    const char *url;            /* http:// or https:// */
    const char *method;         /* NULL: "POST" */
    const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
    const void *body;
    size_t body_len;
    int retries;        /* attempts after a failed first one (non-2xx or no answer); 0: none */
    int64_t backoff_ms; /* wait before the first retry, doubled after each (max 10 min); 0: 1 s */
    int64_t timeout_ms; /* per attempt; 0: 10 s */
    int64_t delay_ms;   /* wait before the first attempt (0: now) */
    mk_webhook_attempt_cb on_attempt; /* may be NULL */
    void *ud;
} mk_webhook_req_t;

/* max_in_flight: transfers at once (0: 32). */
int mk_webhook_sender_new(unsigned max_in_flight, mk_webhook_sender_t **out, mk_err_t *err);
/* Stops: deliveries waiting or in flight end with a final attempt whose error is "stopped". */
void mk_webhook_sender_free(mk_webhook_sender_t *s);
/* Queues req and returns at once. 0: on_attempt (when set) will run at least once, the last
 * time with final set. Otherwise (bad URL MK_EINVAL, queue full or stopping MK_EUNAVAIL) it
 * never runs. */
int mk_webhook_send(mk_webhook_sender_t *s, const mk_webhook_req_t *req, mk_err_t *err);

/* --- namespace webhooks --- */

typedef struct mk_webhook_hooks mk_webhook_hooks_t;

typedef struct mk_webhook_hooks_config {
    int retries;        /* 0: 5 */
    int64_t backoff_ms; /* 0: 1 s */
    int64_t timeout_ms; /* 0: 10 s */
} mk_webhook_hooks_config_t;

/* repo and sender are borrowed; the sender must be freed first (its last callbacks write the
 * delivery log). */
mk_webhook_hooks_t *mk_webhook_hooks_new(mk_repo_t *repo, mk_webhook_sender_t *sender,
                                         const mk_webhook_hooks_config_t *cfg);
void mk_webhook_hooks_free(mk_webhook_hooks_t *h);

/* True for the events a webhook may subscribe to (mock.created, mock.updated, mock.deleted,
 * testrun.finished, perfrun.finished). */
bool mk_webhook_event_known(const char *event);
/* body: {"url", "events"? (default: the mock events), "secret"? (generated when absent),
 * "retries"?, "description"?}. *out (new reference) is the webhook with its secret, which only
 * this answer shows. */
int mk_webhook_hooks_create(mk_webhook_hooks_t *h, const char *ns, json_t *body,
                            const char *created_by, json_t **out, mk_err_t *err);
/* The webhooks of ns, without secrets (new reference). */
int mk_webhook_hooks_list(mk_webhook_hooks_t *h, const char *ns, json_t **out, mk_err_t *err);
int mk_webhook_hooks_delete(mk_webhook_hooks_t *h, const char *ns, const char *id, mk_err_t *err);
/* The attempts of webhook id, newest first, at most limit (new reference). */
int mk_webhook_hooks_deliveries(mk_webhook_hooks_t *h, const char *ns, const char *id, size_t limit,
                                json_t **out, mk_err_t *err);
/* Announces event in ns to the webhooks subscribed to it: {"event", "namespace", "timestamp",
 * "deliveryId", "data"} (data borrowed). Returns how many deliveries were queued. */
int mk_webhook_hooks_emit(mk_webhook_hooks_t *h, const char *ns, const char *event, json_t *data);
/* Drops delivery log rows older than max_age_ms. */
void mk_webhook_hooks_prune(mk_webhook_hooks_t *h, int64_t now_ms, int64_t max_age_ms);

#endif
