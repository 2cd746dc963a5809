/* The HTTP front of a node: /health, /health/... and /metrics; on the admin, the API's endpoints
 * (its route table); /stubs/{namespace}/... and everything else to mock serving (the root is the
 * sandbox namespace).
 * Counts every request in the metrics. */
#ifndef MK_NODE_H
#define MK_NODE_H

#include "api/api.h"
#include "catalog/catalog.h"
#include "httpd/httpd.h"
#include "journal/journal.h"
#include "metrics/metrics.h"
#include "repo/repo.h"
#include "serve/serve.h"

typedef struct mk_node mk_node_t;

typedef struct mk_node_config {
    const char *release_id;
    const char *role;      /* "admin" or "resolver" */
    const char *node_name; /* sent as X-Mockarty-Node on every response; NULL: not sent */
    /* On a node without the API (a resolver): the token that shows the 404 diagnosis in TOKEN
     * mode; NULL or "": shown to everyone, as the API would be open. */
    const char *api_token;
    mk_serve_details_t details; /* NEAR_MISS_DETAILS */
    /* UI_PATH_PREFIX: where the admin serves the web UI (NULL: /ui; "off": nowhere). Only a node
     * with the API serves it. */
    const char *ui_prefix;
} mk_node_config_t;

/* What /health reports, measured off the request path by the node's owner (a ping every second)
 * so a health check never waits on a database that is down. */
typedef struct mk_node_status {
    bool ready; /* /health/ready: the node can serve its full set */
    bool db_up;
    double db_latency_ms;
    const char *redis; /* "up", "down" or "not_configured" (static string) */
    double redis_latency_ms;
    int64_t change_seq; /* last change applied (resolvers) or written */
    /* The coordinator component: NULL leaves it out; else "up", "down" or "disabled" (static),
     * with the runners online (admin) and the last error ("" none). */
    const char *coordinator;
    int runners_online;
    char coordinator_error[256];
} mk_node_status_t;

/* Everything is borrowed; api may be NULL (a node without the admin API). */
mk_node_t *mk_node_new(const mk_node_config_t *cfg, mk_serve_t *serve, mk_api_t *api,
                       mk_catalog_t *catalog, mk_journal_t *journal, mk_metrics_t *metrics,
                       mk_repo_t *repo);
void mk_node_free(mk_node_t *n);

/* The mk_httpd_handler_cb for this node (ud = the node). */
void mk_node_handle(void *ud, mk_httpd_req_t *req);

void mk_node_set_status(mk_node_t *n, const mk_node_status_t *st);
/* Shutting down: /health/ready answers 503 from now on (so load balancers stop sending) while
 * everything else is still served. Any thread. */
void mk_node_set_draining(mk_node_t *n);
/* Extra components of /health (read replicas, Redis Sentinel): an object whose members are set
 * into "components"; one with "status": "down" (or a list holding one) makes the overall status
 * warn. The node takes the reference (NULL clears). Any thread. */
void mk_node_set_components(mk_node_t *n, json_t *components);

/* Sets the gauges that are not counted on the fly (mocks per namespace, journal bytes). */
void mk_node_update_gauges(mk_node_t *n);

#endif
