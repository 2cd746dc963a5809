/* A small typed Kubernetes API client over libcurl: configuration (in-cluster and kubeconfig),
 * CRUD, merge patch, server-side apply, status writes and streaming watch. */
#ifndef MK_KUBE_H
#define MK_KUBE_H

#include "err/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- Resources ---------------------------------------------------------------------------- */

/* How a kind is addressed: /api/v1/... for the core group (group ""), /apis/<group>/<version>/...
 * otherwise. Instances below are static; pointers to them stay valid forever. */
typedef struct mk_kube_resource {
    const char *group;
    const char *version;
    const char *resource; /* plural, lower case: "deployments" */
    const char *kind;     /* "Deployment" */
    bool namespaced;
} mk_kube_resource_t;

extern const mk_kube_resource_t mk_kube_mockartyclusters;
extern const mk_kube_resource_t mk_kube_mockartyrunnerpools;
extern const mk_kube_resource_t mk_kube_deployments;
extern const mk_kube_resource_t mk_kube_services;
extern const mk_kube_resource_t mk_kube_configmaps;
extern const mk_kube_resource_t mk_kube_secrets;
extern const mk_kube_resource_t mk_kube_hpas;
extern const mk_kube_resource_t mk_kube_pdbs;
extern const mk_kube_resource_t mk_kube_leases;
extern const mk_kube_resource_t mk_kube_events;
/* Prometheus Operator's ServiceMonitor: only served where that operator is installed. */
extern const mk_kube_resource_t mk_kube_servicemonitors;

/* The resource for an object's apiVersion ("apps/v1", "v1") and kind, or NULL when unknown. */
const mk_kube_resource_t *mk_kube_resource_for(const char *api_version, const char *kind);

/* ---- Configuration ------------------------------------------------------------------------ */

typedef struct mk_kube_config {
    char *server;     /* "https://10.0.0.1:443" */
    char *token;      /* bearer token, or NULL */
    char *ca_pem;     /* CA bundle (PEM text), or NULL to use the system store */
    char *cert_pem;   /* client certificate (PEM), or NULL */
    char *key_pem;    /* client key (PEM), or NULL */
    bool insecure;    /* insecure-skip-tls-verify */
    char *namespace;  /* the default namespace ("default" when none is given) */
    char *user_agent; /* NULL: "mockarty-operator/0.1" */
} mk_kube_config_t;

/* In-cluster configuration: KUBERNETES_SERVICE_HOST/PORT and the service account files in dir
 * (NULL: /var/run/secrets/kubernetes.io/serviceaccount): token, ca.crt, namespace.
 * *out: caller frees with mk_kube_config_free. MK_ENOTFOUND when not running in a cluster. */
int mk_kube_config_in_cluster(const char *dir, mk_kube_config_t **out, mk_err_t *err);

/* Configuration from a kubeconfig file: the context named context, or current-context when
 * context is NULL. Supports server, certificate-authority(-data), insecure-skip-tls-verify,
 * token, tokenFile, client-certificate(-data), client-key(-data) and the context's namespace. */
int mk_kube_config_from_kubeconfig(const char *path, const char *context, mk_kube_config_t **out,
                                   mk_err_t *err);

/* The same from kubeconfig text already in memory (len bytes, need not be NUL-terminated);
 * relative file names are resolved against base_dir (may be NULL). */
int mk_kube_config_parse_kubeconfig(const char *text, size_t len, const char *base_dir,
                                    const char *context, mk_kube_config_t **out, mk_err_t *err);

/* The usual order: kubeconfig_path when given, else in-cluster, else $HOME/.kube/config. */
int mk_kube_config_load(const char *kubeconfig_path, mk_kube_config_t **out, mk_err_t *err);

void mk_kube_config_free(mk_kube_config_t *cfg);

/* ---- Client ------------------------------------------------------------------------------- */

typedef struct mk_kube mk_kube_t;

/* A client for cfg (copied). Thread-safe: calls may run concurrently from several threads; they
 * share connections. Caller frees with mk_kube_free. */
int mk_kube_new(const mk_kube_config_t *cfg, mk_kube_t **out, mk_err_t *err);
void mk_kube_free(mk_kube_t *k);

/* Every call below returns 0 or a negative MK_E* code. On an API error, err->msg holds the
 * Status message (with the HTTP code), err->cause the Status reason ("NotFound", "Conflict",
 * "Expired", ...). Codes: 404 MK_ENOTFOUND, 409 MK_ECONFLICT (AlreadyExists too), 410
 * MK_ECONFLICT with cause "Expired" (see mk_kube_is_expired), 401 MK_EUNAUTH, 403 MK_EFORBIDDEN,
 * 400/415/422 MK_EINVAL, 413 MK_ETOOBIG, 429 MK_ERATE, connection failures and 5xx MK_EUNAVAIL.
 * `out` parameters, when not NULL, receive a new reference (caller json_decref). ns is ignored
 * for cluster-scoped resources and may be NULL ("all namespaces") for list and watch. */

/* True when err holds a 410 Gone / Expired answer: the caller must relist. */
bool mk_kube_is_expired(const mk_err_t *err);

int mk_kube_get(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns, const char *name,
                json_t **out, mk_err_t *err);

/* Discovery: *served is true when the API server serves res (its group/version lists the
 * resource), false when the group/version is unknown (404) or lacks it. */
int mk_kube_served(mk_kube_t *k, const mk_kube_resource_t *res, bool *served, mk_err_t *err);

typedef struct mk_kube_list_opts {
    const char *label_selector; /* NULL: none */
    const char *field_selector; /* NULL: none */
    long limit;                 /* page size; 0: 500 */
} mk_kube_list_opts_t;

/* Lists every page (following "continue") and returns one list object whose "items" hold all of
 * them, each with apiVersion and kind filled in, and whose metadata.resourceVersion is the
 * first page's: the point to start a watch from. opts may be NULL. */
int mk_kube_list(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns,
                 const mk_kube_list_opts_t *opts, json_t **out, mk_err_t *err);

/* One page: cont is the previous page's metadata.continue (NULL for the first). */
int mk_kube_list_page(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns,
                      const mk_kube_list_opts_t *opts, const char *cont, json_t **out,
                      mk_err_t *err);

int mk_kube_create(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns, const json_t *obj,
                   json_t **out, mk_err_t *err);

/* PUT of obj (name and resourceVersion from obj's metadata; a stale one is MK_ECONFLICT). */
int mk_kube_update(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns, const json_t *obj,
                   json_t **out, mk_err_t *err);

/* PUT to the /status subresource: only obj's status is written. */
int mk_kube_update_status(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns,
                          const json_t *obj, json_t **out, mk_err_t *err);

/* RFC 7386 merge patch of the object (status == false) or of its /status (status == true). */
int mk_kube_patch_merge(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns,
                        const char *name, const json_t *patch, bool status, json_t **out,
                        mk_err_t *err);

/* Server-side apply of obj (name from its metadata) with field_manager (NULL:
 * "mockarty-operator") and force. *created (may be NULL) is set when the apply created the
 * object (HTTP 201). */
int mk_kube_apply(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns, const json_t *obj,
                  const char *field_manager, bool force, json_t **out, bool *created,
                  mk_err_t *err);

/* DELETE with background propagation. A missing object is MK_ENOTFOUND. */
int mk_kube_delete(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns, const char *name,
                   mk_err_t *err);

/* ---- Watch -------------------------------------------------------------------------------- */

typedef enum {
    MK_KUBE_ADDED,
    MK_KUBE_MODIFIED,
    MK_KUBE_DELETED,
    MK_KUBE_BOOKMARK,
} mk_kube_event_t;

/* Called for each event; object is borrowed for the call. A BOOKMARK object is not a real
 * object: only its metadata.resourceVersion means anything. Return 0 to go on, anything else to
 * stop the watch (mk_kube_watch then returns 0). */
typedef int (*mk_kube_watch_fn)(void *ud, mk_kube_event_t type, json_t *object);

typedef struct mk_kube_watch_opts {
    const char *label_selector;
    int timeout_seconds; /* server-side timeout; 0: 300 */
    /* Checked about every 100 ms; when it becomes nonzero the watch ends and returns 0. */
    const volatile int *stop;
} mk_kube_watch_opts_t;

/* Watches from resource_version (a char buffer of rv_cap bytes, updated in place after every
 * event and bookmark, so a caller can resume where the stream ended). Sends
 * allowWatchBookmarks=true. Returns 0 when the server ended the stream, the callback asked to
 * stop or *stop was set; MK_ECONFLICT with cause "Expired" (mk_kube_is_expired) on 410 Gone,
 * whether as an HTTP status or as an ERROR event: the caller must relist. An empty
 * resource_version starts with the current state as ADDED events. */
int mk_kube_watch(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns,
                  const mk_kube_watch_opts_t *opts, char *resource_version, size_t rv_cap,
                  mk_kube_watch_fn fn, void *ud, mk_err_t *err);

/* ---- Helpers ------------------------------------------------------------------------------ */

/* Borrowed metadata strings of obj, or NULL. */
const char *mk_kube_name(const json_t *obj);
const char *mk_kube_namespace(const json_t *obj);
const char *mk_kube_uid(const json_t *obj);
const char *mk_kube_resource_version(const json_t *obj);

/* Writes now (UTC) as RFC 3339: micro == false "2026-11-21T00:03:21Z", micro == true with
 * exactly six fractional digits (the MicroTime format Leases and events.k8s.io need). */
void mk_kube_time_now(char *buf, size_t cap, bool micro);

#endif
