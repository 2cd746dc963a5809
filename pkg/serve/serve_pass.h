/* The store work of an answer (serve.c), shared by the answers of this module that render mocks
 * with stores (HTTP, SOAP, GraphQL): extraction and templates run in passes, at once with the
 * memory backend, on the worker's loop across Redis round trips otherwise. Not a public header. */
#ifndef MK_SERVE_PASS_H
#define MK_SERVE_PASS_H

#include "serve/serve.h"

typedef struct mk_serve_pass mk_serve_pass_t;

/* What an answer does with its passes; ud is the answer's state. */
typedef struct mk_serve_work {
    /* Renders the whole answer once: for each mock it uses, mk_serve_pass_mock, then that mock's
     * templates with the env it filled. Called once with the memory backend, once per round trip
     * with Redis (rendering must not branch on store values, so every pass makes the same store
     * calls in the same order). Returns 0, or an error that ends the work. */
    int (*render)(void *ud, mk_serve_pass_t *p, mk_err_t *err);
    /* Sends the answer of the last render (rc 0) or the error (rc < 0) on req; returns the status
     * sent. Not called when the request went away first. */
    int (*finish)(void *ud, mk_httpd_req_t *req, int rc, const mk_err_t *err);
    /* Frees ud (mk_serve_work_start only): after finish, or instead of it. */
    void (*free)(void *ud);
} mk_serve_work_t;

/* Within render: m's stores (its mS, the cS of its chain) are the ones read and written from here
 * on; fills env's store callbacks (none without a store backend) and runs m's extraction with env.
 * m must outlive the work (a reference, or the snapshot held). */
int mk_serve_pass_mock(mk_serve_pass_t *p, const mk_mock_t *m, mk_template_env_t *env,
                       mk_err_t *err);

/* Whether work that uses stores must go through mk_serve_work_start (Redis). */
bool mk_serve_stores_async(const mk_serve_t *s);

/* Renders once with synchronous stores (or none) and finishes; returns finish's status. ud is
 * borrowed; w->free is not called. */
int mk_serve_work_now(mk_serve_t *s, mk_httpd_req_t *req, mk_str_t ns, const mk_serve_work_t *w,
                      void *ud);

/* With asynchronous stores: takes ud (heap; it must own or reference everything render and
 * finish read, since the catalog snapshot is left while the request waits) and runs passes on
 * req's loop until every store value is known, then finishes. Returns true with *status when it
 * finished at once, false when the answer comes later. ud is freed with w->free either way. */
bool mk_serve_work_start(mk_serve_t *s, mk_httpd_req_t *req, mk_str_t ns, const mk_serve_work_t *w,
                         void *ud, int *status);

/* ---- per-mock webhooks of an answer ----
 * Rendered during the passes with each mock's env (so they read the request and the stores like
 * the answer), sent with the answer. One set may hold the webhooks of several mocks (the fields
 * of a GraphQL request, the operations of a batch). */
typedef struct mk_serve_hook_call mk_serve_hook_call_t;
typedef struct mk_serve_hooks {
    mk_buf_t buf; /* the rendered urls, header lines and bodies */
    mk_serve_hook_call_t *calls;
    size_t n, cap;
} mk_serve_hooks_t;

void mk_serve_hooks_init(mk_serve_hooks_t *h);
/* Forgets what was rendered: a pass starts over, or the answer became an error. */
void mk_serve_hooks_reset(mk_serve_hooks_t *h);
/* Forgets the webhooks rendered from the from-th to before the to-th (one operation's of a
 * batch that failed); the others keep their order. */
void mk_serve_hooks_drop(mk_serve_hooks_t *h, size_t from, size_t to);
void mk_serve_hooks_free(mk_serve_hooks_t *h);
/* Within render: appends m's webhooks rendered with env. status is the answer's HTTP status (0
 * for a fault) that the onSuccess/onError triggers read. m is borrowed until the set is fired. */
int mk_serve_hooks_render(mk_serve_hooks_t *h, const mk_mock_t *m, mk_template_env_t *env,
                          int status, mk_err_t *err);
/* Sends the webhooks whose trigger fires. When one is synchronous the answer (send_status, body,
 * opts; headers already added to req) is held and sent from req's loop once every synchronous
 * call is done: returns true. false: the caller sends the answer now. Without req (a WebSocket
 * message) every webhook is sent without holding anything. */
bool mk_serve_hooks_fire(mk_serve_t *s, mk_httpd_req_t *req, const mk_serve_hooks_t *h,
                         int send_status, mk_str_t body, const mk_httpd_send_opts_t *opts);

/* Copies the parameter names of match (borrowed from the route snapshot), its values and its
 * wildcard (borrowed from the path looked up) into one block, *names (caller frees), and points
 * match at it, so the match outlives the snapshot and the path. Returns 0 or MK_ENOMEM. */
int mk_serve_match_keep(mk_route_match_t *match, char **names);

#endif
