/* The Kubernetes client's request path: handles, URLs, error mapping from the API's Status, and
 * the typed verbs (get, list, create, update, patch, apply, delete). */
#include "kube/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const mk_kube_resource_t mk_kube_mockartyclusters = {"mockarty.io", "v1alpha1", "mockartyclusters",
                                                     "MockartyCluster", true};
const mk_kube_resource_t mk_kube_mockartyrunnerpools = {
    "mockarty.io", "v1alpha1", "mockartyrunnerpools", "MockartyRunnerPool", true};
const mk_kube_resource_t mk_kube_deployments = {"apps", "v1", "deployments", "Deployment", true};
const mk_kube_resource_t mk_kube_services = {"", "v1", "services", "Service", true};
const mk_kube_resource_t mk_kube_configmaps = {"", "v1", "configmaps", "ConfigMap", true};
const mk_kube_resource_t mk_kube_secrets = {"", "v1", "secrets", "Secret", true};
const mk_kube_resource_t mk_kube_hpas = {"autoscaling", "v2", "horizontalpodautoscalers",
                                         "HorizontalPodAutoscaler", true};
const mk_kube_resource_t mk_kube_pdbs = {"policy", "v1", "poddisruptionbudgets",
                                         "PodDisruptionBudget", true};
const mk_kube_resource_t mk_kube_leases = {"coordination.k8s.io", "v1", "leases", "Lease", true};
const mk_kube_resource_t mk_kube_events = {"", "v1", "events", "Event", true};
const mk_kube_resource_t mk_kube_servicemonitors = {"monitoring.coreos.com", "v1",
                                                    "servicemonitors", "ServiceMonitor", true};

static const mk_kube_resource_t *const known[] = {
    &mk_kube_mockartyclusters,
    &mk_kube_mockartyrunnerpools,
    &mk_kube_deployments,
    &mk_kube_services,
    &mk_kube_configmaps,
    &mk_kube_secrets,
    &mk_kube_hpas,
    &mk_kube_pdbs,
    &mk_kube_leases,
    &mk_kube_events,
    &mk_kube_servicemonitors,
};

const mk_kube_resource_t *mk_kube_resource_for(const char *api_version, const char *kind)
{
    if (!api_version || !kind)
        return NULL;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const mk_kube_resource_t *r = known[i];
        char av[128];
        if (r->group[0])
            snprintf(av, sizeof av, "%s/%s", r->group, r->version);
        else
            snprintf(av, sizeof av, "%s", r->version);
        if (strcmp(av, api_version) == 0 && strcmp(r->kind, kind) == 0)
            return r;
    }
    return NULL;
}

char *kube_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int kube_buf_append(kube_buf_t *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->max) {
        b->overflow = true;
        return MK_ETOOBIG;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return MK_ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void kube_buf_free(kube_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- client lifecycle -------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int mk_kube_new(const mk_kube_config_t *cfg, mk_kube_t **out, mk_err_t *err)
{
    *out = NULL;
    if (!cfg || !cfg->server || !cfg->server[0])
        return mk_err_set(err, MK_EINVAL, "kube: no API server address configured");
    pthread_once(&curl_once, curl_init_once);
    mk_kube_t *k = calloc(1, sizeof *k);
    if (!k)
        return mk_err_set(err, MK_ENOMEM, "kube: out of memory");
    pthread_mutex_init(&k->mu, NULL);
    k->cfg.server = kube_strdup(cfg->server);
    /* A trailing slash would double the one every path starts with. */
    size_t n = strlen(k->cfg.server);
    while (n > 0 && k->cfg.server[n - 1] == '/')
        k->cfg.server[--n] = '\0';
    k->cfg.token = kube_strdup(cfg->token);
    k->cfg.ca_pem = kube_strdup(cfg->ca_pem);
    k->cfg.cert_pem = kube_strdup(cfg->cert_pem);
    k->cfg.key_pem = kube_strdup(cfg->key_pem);
    k->cfg.insecure = cfg->insecure;
    k->cfg.namespace = kube_strdup(cfg->namespace ? cfg->namespace : "default");
    k->cfg.user_agent = kube_strdup(cfg->user_agent ? cfg->user_agent : "mockarty-operator/0.1");
    if (cfg->token && cfg->token[0]) {
        size_t len = strlen(cfg->token) + 32;
        k->auth_header = malloc(len);
        if (k->auth_header)
            snprintf(k->auth_header, len, "Authorization: Bearer %s", cfg->token);
    }
    if (!k->cfg.server || !k->cfg.namespace || !k->cfg.user_agent ||
        (cfg->token && cfg->token[0] && !k->auth_header)) {
        mk_kube_free(k);
        return mk_err_set(err, MK_ENOMEM, "kube: out of memory");
    }
    *out = k;
    return 0;
}

void mk_kube_free(mk_kube_t *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n_idle; i++)
        curl_easy_cleanup(k->idle[i]);
    free(k->idle);
    pthread_mutex_destroy(&k->mu);
    free(k->cfg.server);
    free(k->cfg.token);
    free(k->cfg.ca_pem);
    free(k->cfg.cert_pem);
    free(k->cfg.key_pem);
    free(k->cfg.namespace);
    free(k->cfg.user_agent);
    free(k->auth_header);
    free(k);
}

CURL *kube_handle_get(mk_kube_t *k, const char *url, struct curl_slist **headers)
{
    CURL *h = NULL;
    pthread_mutex_lock(&k->mu);
    if (k->n_idle > 0)
        h = k->idle[--k->n_idle];
    pthread_mutex_unlock(&k->mu);
    if (h)
        curl_easy_reset(h);
    else
        h = curl_easy_init();
    if (!h)
        return NULL;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, k->cfg.user_agent);
    if (k->cfg.ca_pem) {
        struct curl_blob blob = {k->cfg.ca_pem, strlen(k->cfg.ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (k->cfg.cert_pem) {
        struct curl_blob blob = {k->cfg.cert_pem, strlen(k->cfg.cert_pem), CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &blob);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (k->cfg.key_pem) {
        struct curl_blob blob = {k->cfg.key_pem, strlen(k->cfg.key_pem), CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &blob);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (k->cfg.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    *headers = curl_slist_append(*headers, "Accept: application/json");
    if (k->auth_header && *headers)
        *headers = curl_slist_append(*headers, k->auth_header);
    return h;
}

void kube_handle_put(mk_kube_t *k, CURL *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&k->mu);
    if (k->n_idle == k->cap_idle) {
        size_t cap = k->cap_idle ? k->cap_idle * 2 : 8;
        CURL **idle = realloc(k->idle, cap * sizeof *idle);
        if (!idle) {
            pthread_mutex_unlock(&k->mu);
            curl_easy_cleanup(h);
            return;
        }
        k->idle = idle;
        k->cap_idle = cap;
    }
    k->idle[k->n_idle++] = h;
    pthread_mutex_unlock(&k->mu);
}

char *kube_url(const mk_kube_t *k, const mk_kube_resource_t *res, const char *ns, const char *name,
               const char *sub, const char *query)
{
    size_t cap = strlen(k->cfg.server) + 256 + (ns ? strlen(ns) : 0) + (name ? strlen(name) : 0) +
                 (query ? strlen(query) : 0);
    char *url = malloc(cap);
    if (!url)
        return NULL;
    int n;
    if (res->group[0])
        n = snprintf(url, cap, "%s/apis/%s/%s", k->cfg.server, res->group, res->version);
    else
        n = snprintf(url, cap, "%s/api/%s", k->cfg.server, res->version);
    if (res->namespaced && ns && ns[0])
        n += snprintf(url + n, cap - n, "/namespaces/%s", ns);
    n += snprintf(url + n, cap - n, "/%s", res->resource);
    if (name)
        n += snprintf(url + n, cap - n, "/%s", name);
    if (sub)
        n += snprintf(url + n, cap - n, "/%s", sub);
    if (query && query[0])
        snprintf(url + n, cap - n, "?%s", query);
    return url;
}

/* ---- errors ------------------------------------------------------------------------------ */

static int code_for_http(long http)
{
    switch (http) {
    case 400:
    case 415:
    case 422:
        return MK_EINVAL;
    case 401:
        return MK_EUNAUTH;
    case 403:
        return MK_EFORBIDDEN;
    case 404:
        return MK_ENOTFOUND;
    case 409:
    case 410:
        return MK_ECONFLICT;
    case 413:
        return MK_ETOOBIG;
    case 429:
        return MK_ERATE;
    default:
        return http >= 500 ? MK_EUNAVAIL : MK_EINTERNAL;
    }
}

int kube_error_from_status(mk_err_t *err, long http, const char *body, size_t len, const char *what)
{
    int code = code_for_http(http);
    json_t *st = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *reason = st ? json_string_value(json_object_get(st, "reason")) : NULL;
    const char *message = st ? json_string_value(json_object_get(st, "message")) : NULL;
    if (message)
        mk_err_set(err, code, "%s: %ld %s: %s", what, http, reason ? reason : "", message);
    else
        mk_err_set(err, code, "%s: HTTP %ld: %.200s", what, http, body ? body : "");
    if (err) {
        const char *cause = reason;
        if (!cause)
            cause = http == 410 ? "Expired" : "";
        snprintf(err->cause, sizeof err->cause, "%s", cause);
    }
    json_decref(st);
    return code;
}

int kube_error_from_curl(mk_err_t *err, CURLcode rc, const char *what)
{
    int code = rc == CURLE_OUT_OF_MEMORY ? MK_ENOMEM : MK_EUNAVAIL;
    mk_err_set(err, code, "%s: %s", what, curl_easy_strerror(rc));
    if (err)
        snprintf(err->cause, sizeof err->cause, "curl: %d", (int)rc);
    return code;
}

bool mk_kube_is_expired(const mk_err_t *err)
{
    return err && err->code == MK_ECONFLICT && strcmp(err->cause, "Expired") == 0;
}

/* ---- one request ------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    kube_buf_t *b = ud;
    return kube_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

/* Sends method url with body (NUL-terminated JSON, may be NULL) of content type ctype; on 2xx
 * parses the answer into *out (may be NULL) and sets *http. */
static int kube_do(mk_kube_t *k, const char *method, const char *url, const char *ctype,
                   const char *body, long *http_out, json_t **out, mk_err_t *err)
{
    int rc = 0;
    struct curl_slist *headers = NULL;
    kube_buf_t buf = {.max = MK_KUBE_MAX_BODY};
    char what[300];
    const char *path = strstr(url, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    snprintf(what, sizeof what, "kube: %s %.250s", method, path ? path : url);
    if (out)
        *out = NULL;
    CURL *h = kube_handle_get(k, url, &headers);
    if (!h || !headers) {
        rc = mk_err_set(err, MK_ENOMEM, "%s: out of memory", what);
        goto out;
    }
    if (ctype) {
        char ct[128];
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        struct curl_slist *n = curl_slist_append(headers, ct);
        if (!n) {
            rc = mk_err_set(err, MK_ENOMEM, "%s: out of memory", what);
            goto out;
        }
        headers = n;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &buf);
    CURLcode cr = curl_easy_perform(h);
    if (cr != CURLE_OK) {
        if (buf.overflow)
            rc = mk_err_set(err, MK_ETOOBIG, "%s: answer larger than %u bytes", what,
                            MK_KUBE_MAX_BODY);
        else
            rc = kube_error_from_curl(err, cr, what);
        goto out;
    }
    long http = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
    if (http_out)
        *http_out = http;
    if (http < 200 || http > 299) {
        rc = kube_error_from_status(err, http, buf.data, buf.len, what);
        goto out;
    }
    if (out) {
        json_error_t je;
        *out = buf.data ? json_loadb(buf.data, buf.len, 0, &je) : NULL;
        if (!*out) {
            rc = mk_err_set(err, MK_EINTERNAL, "%s: answer is not JSON: %s", what,
                            buf.data ? je.text : "empty body");
            goto out;
        }
    }
out:
    curl_slist_free_all(headers);
    if (h && rc == 0)
        kube_handle_put(k, h);
    else if (h)
        curl_easy_cleanup(h); /* a failed connection is not worth keeping */
    kube_buf_free(&buf);
    return rc;
}

static const char *resolve_ns(const mk_kube_t *k, const mk_kube_resource_t *res, const char *ns)
{
    if (!res->namespaced)
        return NULL;
    return ns && ns[0] ? ns : k->cfg.namespace;
}

static int object_name(const json_t *obj, const char **name, mk_err_t *err)
{
    *name = mk_kube_name(obj);
    if (!*name || !(*name)[0])
        return mk_err_set(err, MK_EINVAL, "kube: object has no metadata.name");
    return 0;
}

int mk_kube_get(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns, const char *name,
                json_t **out, mk_err_t *err)
{
    char *url = kube_url(k, res, resolve_ns(k, res, ns), name, NULL, NULL);
    if (!url)
        return mk_err_set(err, MK_ENOMEM, "kube: out of memory");
    int rc = kube_do(k, "GET", url, NULL, NULL, NULL, out, err);
    free(url);
    return rc;
}

int mk_kube_served(mk_kube_t *k, const mk_kube_resource_t *res, bool *served, mk_err_t *err)
{
    json_t *list = NULL, *r;
    size_t i, cap = strlen(k->cfg.server) + strlen(res->group) + strlen(res->version) + 16;
    char *url = malloc(cap);
    int rc;

    *served = false;
    if (!url)
        return mk_err_set(err, MK_ENOMEM, "kube: out of memory");
    if (res->group[0])
        snprintf(url, cap, "%s/apis/%s/%s", k->cfg.server, res->group, res->version);
    else
        snprintf(url, cap, "%s/api/%s", k->cfg.server, res->version);
    rc = kube_do(k, "GET", url, NULL, NULL, NULL, &list, err);
    free(url);
    if (rc == MK_ENOTFOUND)
        return 0;
    json_array_foreach(json_object_get(list, "resources"), i, r)
    {
        const char *name = json_string_value(json_object_get(r, "name"));
        if (name && strcmp(name, res->resource) == 0)
            *served = true;
    }
    json_decref(list);
    return rc;
}

static int append_param(char *q, size_t cap, const char *key, const char *value)
{
    if (!value || !value[0])
        return 0;
    char *esc = curl_easy_escape(NULL, value, 0);
    if (!esc)
        return MK_ENOMEM;
    size_t n = strlen(q);
    int w = snprintf(q + n, cap - n, "%s%s=%s", n ? "&" : "", key, esc);
    curl_free(esc);
    return w < 0 || (size_t)w >= cap - n ? MK_ETOOBIG : 0;
}

int mk_kube_list_page(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns,
                      const mk_kube_list_opts_t *opts, const char *cont, json_t **out,
                      mk_err_t *err)
{
    char query[4096] = "";
    char limit[32];
    snprintf(limit, sizeof limit, "%ld", opts && opts->limit > 0 ? opts->limit : 500L);
    int rc = append_param(query, sizeof query, "limit", limit);
    if (rc == 0 && opts)
        rc = append_param(query, sizeof query, "labelSelector", opts->label_selector);
    if (rc == 0 && opts)
        rc = append_param(query, sizeof query, "fieldSelector", opts->field_selector);
    if (rc == 0)
        rc = append_param(query, sizeof query, "continue", cont);
    if (rc != 0)
        return mk_err_set(err, rc, "kube: list query too long");
    char *url = kube_url(k, res, res->namespaced ? ns : NULL, NULL, NULL, query);
    if (!url)
        return mk_err_set(err, MK_ENOMEM, "kube: out of memory");
    rc = kube_do(k, "GET", url, NULL, NULL, NULL, out, err);
    free(url);
    return rc;
}

int mk_kube_list(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns,
                 const mk_kube_list_opts_t *opts, json_t **out, mk_err_t *err)
{
    int rc = 0;
    json_t *all = NULL, *page = NULL;
    char *cont = NULL;
    char av[128];
    if (res->group[0])
        snprintf(av, sizeof av, "%s/%s", res->group, res->version);
    else
        snprintf(av, sizeof av, "%s", res->version);
    *out = NULL;
    for (;;) {
        rc = mk_kube_list_page(k, res, ns, opts, cont, &page, err);
        if (rc != 0)
            goto out;
        json_t *items = json_object_get(page, "items");
        if (!all) {
            all = json_pack("{s:s, s:s, s:o, s:[]}", "apiVersion", av, "kind", res->kind,
                            "metadata", json_deep_copy(json_object_get(page, "metadata")), "items");
            if (!all || !json_object_get(all, "metadata")) {
                rc = mk_err_set(err, MK_EINTERNAL, "kube: list answer has no metadata");
                goto out;
            }
            char kind[128];
            snprintf(kind, sizeof kind, "%sList", res->kind);
            json_object_set_new(all, "kind", json_string(kind));
            json_object_del(json_object_get(all, "metadata"), "continue");
            json_object_del(json_object_get(all, "metadata"), "remainingItemCount");
        }
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            /* Items of built-in lists come without apiVersion/kind (fixture 08b). */
            if (!json_object_get(it, "apiVersion"))
                json_object_set_new(it, "apiVersion", json_string(av));
            if (!json_object_get(it, "kind"))
                json_object_set_new(it, "kind", json_string(res->kind));
            json_array_append(json_object_get(all, "items"), it);
        }
        const char *next =
            json_string_value(json_object_get(json_object_get(page, "metadata"), "continue"));
        free(cont);
        cont = next && next[0] ? strdup(next) : NULL;
        json_decref(page);
        page = NULL;
        if (!cont)
            break;
    }
    *out = all;
    all = NULL;
out:
    free(cont);
    json_decref(page);
    json_decref(all);
    return rc;
}

static int write_object(mk_kube_t *k, const char *method, const mk_kube_resource_t *res,
                        const char *ns, const char *name, const char *sub, const char *query,
                        const char *ctype, const json_t *body, long *http, json_t **out,
                        mk_err_t *err)
{
    char *url = kube_url(k, res, resolve_ns(k, res, ns), name, sub, query);
    char *text = json_dumps(body, JSON_COMPACT);
    int rc;
    if (!url || !text)
        rc = mk_err_set(err, MK_ENOMEM, "kube: out of memory");
    else
        rc = kube_do(k, method, url, ctype, text, http, out, err);
    free(url);
    free(text);
    return rc;
}

int mk_kube_create(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns, const json_t *obj,
                   json_t **out, mk_err_t *err)
{
    return write_object(k, "POST", res, ns, NULL, NULL, NULL, "application/json", obj, NULL, out,
                        err);
}

int mk_kube_update(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns, const json_t *obj,
                   json_t **out, mk_err_t *err)
{
    const char *name;
    int rc = object_name(obj, &name, err);
    if (rc != 0)
        return rc;
    return write_object(k, "PUT", res, ns, name, NULL, NULL, "application/json", obj, NULL, out,
                        err);
}

int mk_kube_update_status(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns,
                          const json_t *obj, json_t **out, mk_err_t *err)
{
    const char *name;
    int rc = object_name(obj, &name, err);
    if (rc != 0)
        return rc;
    return write_object(k, "PUT", res, ns, name, "status", NULL, "application/json", obj, NULL, out,
                        err);
}

int mk_kube_patch_merge(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns,
                        const char *name, const json_t *patch, bool status, json_t **out,
                        mk_err_t *err)
{
    return write_object(k, "PATCH", res, ns, name, status ? "status" : NULL, NULL,
                        "application/merge-patch+json", patch, NULL, out, err);
}

int mk_kube_apply(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns, const json_t *obj,
                  const char *field_manager, bool force, json_t **out, bool *created, mk_err_t *err)
{
    const char *name;
    int rc = object_name(obj, &name, err);
    if (rc != 0)
        return rc;
    char query[256] = "";
    rc = append_param(query, sizeof query, "fieldManager",
                      field_manager ? field_manager : "mockarty-operator");
    if (rc == 0 && force)
        rc = append_param(query, sizeof query, "force", "true");
    if (rc != 0)
        return mk_err_set(err, rc, "kube: field manager name too long");
    long http = 0;
    /* JSON is valid YAML, so the apply body needs no YAML writer. */
    rc = write_object(k, "PATCH", res, ns, name, NULL, query, "application/apply-patch+yaml", obj,
                      &http, out, err);
    if (created)
        *created = rc == 0 && http == 201;
    return rc;
}

int mk_kube_delete(mk_kube_t *k, const mk_kube_resource_t *res, const char *ns, const char *name,
                   mk_err_t *err)
{
    char *url = kube_url(k, res, resolve_ns(k, res, ns), name, NULL, NULL);
    if (!url)
        return mk_err_set(err, MK_ENOMEM, "kube: out of memory");
    const char *body = "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\","
                       "\"propagationPolicy\":\"Background\"}";
    int rc = kube_do(k, "DELETE", url, "application/json", body, NULL, NULL, err);
    free(url);
    return rc;
}

/* ---- helpers ----------------------------------------------------------------------------- */

static const char *meta_string(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

const char *mk_kube_name(const json_t *obj)
{
    return meta_string(obj, "name");
}

const char *mk_kube_namespace(const json_t *obj)
{
    return meta_string(obj, "namespace");
}

const char *mk_kube_uid(const json_t *obj)
{
    return meta_string(obj, "uid");
}

const char *mk_kube_resource_version(const json_t *obj)
{
    return meta_string(obj, "resourceVersion");
}

void mk_kube_time_now(char *buf, size_t cap, bool micro)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (micro)
        snprintf(buf, cap, "%s.%06ldZ", base, ts.tv_nsec / 1000);
    else
        snprintf(buf, cap, "%sZ", base);
}
