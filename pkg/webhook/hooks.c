/* Namespace webhooks: subscriptions are documents of kind "webhook" with id "<ns>/<webhook id>",
 * each attempt of a delivery a document of kind "webhook_delivery" with id
 * "<ns>/<webhook id>/<time ms>-<seq>", so one prefix lists a webhook's log in time order. */
#include "webhook/webhook.h"

#include "identity/identity.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KIND_HOOK        "webhook"
#define KIND_DELIVERY    "webhook_delivery"
#define URL_MAX          2048
#define RETRIES_MAX      20
#define HOOKS_PER_NS_MAX 50

struct mk_webhook_hooks {
    mk_repo_t *repo;
    mk_webhook_sender_t *sender;
    mk_webhook_hooks_config_t cfg;
    atomic_uint seq;
};

static const char *const events[] = {"mock.created", "mock.updated", "mock.deleted",
                                     "testrun.finished", "perfrun.finished"};

bool mk_webhook_event_known(const char *event)
{
    for (size_t i = 0; event && i < sizeof events / sizeof *events; i++)
        if (strcmp(events[i], event) == 0)
            return true;
    return false;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

mk_webhook_hooks_t *mk_webhook_hooks_new(mk_repo_t *repo, mk_webhook_sender_t *sender,
                                         const mk_webhook_hooks_config_t *cfg)
{
    mk_webhook_hooks_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->repo = repo;
    h->sender = sender;
    h->cfg.retries = cfg && cfg->retries > 0 ? cfg->retries : 5;
    h->cfg.backoff_ms = cfg && cfg->backoff_ms > 0 ? cfg->backoff_ms : 1000;
    h->cfg.timeout_ms = cfg && cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    atomic_init(&h->seq, 0);
    return h;
}

void mk_webhook_hooks_free(mk_webhook_hooks_t *h)
{
    free(h);
}

static int put_json(mk_webhook_hooks_t *h, const char *kind, const char *id, const char *ns,
                    json_t *doc, mk_err_t *err)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    if (text == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    mk_repo_doc_t row = {kind, id, ns, text, now_ms()};
    int rc = mk_repo_put_docs(h->repo, &row, 1, err);
    free(text);
    return rc;
}

static int collect(void *ud, const mk_repo_doc_t *doc)
{
    json_t *v = json_loads(doc->json, 0, NULL);
    return v && json_array_append_new(ud, v) == 0 ? 0 : MK_ENOMEM;
}

/* Every stored webhook of ns, secrets included. */
static int load(mk_webhook_hooks_t *h, const char *ns, json_t **out, mk_err_t *err)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s/", ns);
    *out = json_array();
    int rc = mk_repo_list_docs(h->repo, KIND_HOOK, prefix, collect, *out, err);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static int check_events(json_t *v, json_t **out, mk_err_t *err)
{
    if (v == NULL || json_is_null(v)) {
        *out = json_pack("[s,s,s]", events[0], events[1], events[2]);
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return mk_err_set(err, MK_EINVAL, "events: must be a non-empty array of event names");
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!mk_webhook_event_known(json_string_value(e)))
            return mk_err_set(err, MK_EINVAL,
                              "events[%zu]: unknown event (mock.created, mock.updated, "
                              "mock.deleted, testrun.finished, perfrun.finished)",
                              i);
    }
    *out = json_incref(v);
    return 0;
}

int mk_webhook_hooks_create(mk_webhook_hooks_t *h, const char *ns, json_t *body,
                            const char *created_by, json_t **out, mk_err_t *err)
{
    *out = NULL;
    if (!json_is_object(body))
        return mk_err_set(err, MK_EINVAL, "request body: must be a JSON object");
    json_t *url = json_object_get(body, "url");
    const char *u = json_string_value(url);
    if (u == NULL || strlen(u) > URL_MAX ||
        (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0))
        return mk_err_set(err, MK_EINVAL, "url: required, an http:// or https:// URL");
    json_t *secret = json_object_get(body, "secret");
    if (secret && !json_is_null(secret) &&
        (!json_is_string(secret) || json_string_length(secret) < 16 ||
         json_string_length(secret) > 256))
        return mk_err_set(err, MK_EINVAL, "secret: a string of 16 to 256 characters");
    json_t *retries = json_object_get(body, "retries");
    if (retries && !json_is_null(retries) &&
        (!json_is_integer(retries) || json_integer_value(retries) < 0 ||
         json_integer_value(retries) > RETRIES_MAX))
        return mk_err_set(err, MK_EINVAL, "retries: an integer from 0 to %d", RETRIES_MAX);
    json_t *desc = json_object_get(body, "description");
    if (desc && !json_is_null(desc) && !json_is_string(desc))
        return mk_err_set(err, MK_EINVAL, "description: must be a string");
    json_t *evs = NULL;
    int rc = check_events(json_object_get(body, "events"), &evs, err);
    if (rc != 0)
        return rc;
    json_t *existing;
    rc = load(h, ns, &existing, err);
    if (rc == 0 && json_array_size(existing) >= HOOKS_PER_NS_MAX)
        rc = mk_err_set(err, MK_ECONFLICT, "namespace '%s' has %d webhooks already", ns,
                        HOOKS_PER_NS_MAX);
    json_decref(existing);
    if (rc != 0) {
        json_decref(evs);
        return rc;
    }
    char id[32] = "wh_", gen[65], when[32], key[160];
    mk_identity_random_hex(8, id + 3);
    mk_identity_random_hex(24, gen);
    mk_identity_time_format(now_ms(), when);
    json_t *hook = json_pack(
        "{s:s, s:s, s:s, s:o, s:s, s:I, s:s, s:s, s:s, s:b}", "id", id, "namespace", ns, "url", u,
        "events", evs, "secret", json_is_string(secret) ? json_string_value(secret) : gen,
        "retries",
        (json_int_t)(json_is_integer(retries) ? json_integer_value(retries) : h->cfg.retries),
        "description", json_is_string(desc) ? json_string_value(desc) : "", "createdAt", when,
        "createdBy", created_by ? created_by : "", "active", 1);
    snprintf(key, sizeof key, "%s/%s", ns, id);
    rc = put_json(h, KIND_HOOK, key, ns, hook, err);
    if (rc != 0) {
        json_decref(hook);
        return rc;
    }
    *out = hook;
    return 0;
}

int mk_webhook_hooks_list(mk_webhook_hooks_t *h, const char *ns, json_t **out, mk_err_t *err)
{
    int rc = load(h, ns, out, err);
    size_t i;
    json_t *hook;
    json_array_foreach(rc == 0 ? *out : NULL, i, hook) json_object_del(hook, "secret");
    return rc;
}

int mk_webhook_hooks_delete(mk_webhook_hooks_t *h, const char *ns, const char *id, mk_err_t *err)
{
    json_t *all;
    int rc = load(h, ns, &all, err);
    if (rc != 0)
        return rc;
    bool found = false;
    size_t i;
    json_t *hook;
    json_array_foreach(all, i, hook) found |=
        strcmp(json_string_value(json_object_get(hook, "id")) ?: "", id) == 0;
    json_decref(all);
    if (!found)
        return mk_err_set(err, MK_ENOTFOUND, "webhook '%s' not found", id);
    char key[160];
    snprintf(key, sizeof key, "%s/%s", ns, id);
    const char *ids[] = {key};
    return mk_repo_delete_docs(h->repo, KIND_HOOK, ids, 1, err);
}

int mk_webhook_hooks_deliveries(mk_webhook_hooks_t *h, const char *ns, const char *id, size_t limit,
                                json_t **out, mk_err_t *err)
{
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s/%s/", ns, id);
    json_t *all = json_array();
    int rc = mk_repo_list_docs(h->repo, KIND_DELIVERY, prefix, collect, all, err);
    *out = NULL;
    if (rc != 0) {
        json_decref(all);
        return rc;
    }
    json_t *list = json_array();
    size_t n = json_array_size(all);
    for (size_t i = 0; i < n && json_array_size(list) < limit; i++)
        json_array_append(list, json_array_get(all, n - 1 - i));
    json_decref(all);
    *out = list;
    return 0;
}

/* One delivery of one event to one webhook: what the attempt log needs. */
typedef struct pending {
    mk_webhook_hooks_t *hooks;
    char ns[80], hook_id[32], delivery_id[32], event[32], url[URL_MAX + 1];
} pending_t;

static void log_attempt(void *ud, const mk_webhook_attempt_t *a)
{
    pending_t *p = ud;
    char key[200], when[32];
    int64_t now = now_ms();
    snprintf(key, sizeof key, "%s/%s/%013lld-%08x", p->ns, p->hook_id, (long long)now,
             atomic_fetch_add(&p->hooks->seq, 1));
    mk_identity_time_format(now, when);
    json_t *row =
        json_pack("{s:s, s:s, s:s, s:i, s:b, s:b, s:i, s:s, s:f, s:s, s:s}", "deliveryId",
                  p->delivery_id, "webhookId", p->hook_id, "event", p->event, "attempt", a->attempt,
                  "ok", a->ok, "final", a->final, "status", a->status, "error", a->error,
                  "durationMs", a->duration_ms, "at", when, "url", p->url);
    if (row && !a->final)
        json_object_set_new(row, "retryInMs", json_integer((json_int_t)a->retry_in_ms));
    if (row)
        put_json(p->hooks, KIND_DELIVERY, key, p->ns, row, NULL);
    json_decref(row);
    if (a->final)
        free(p);
}

static bool subscribed(json_t *hook, const char *event)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(hook, "events"), i,
                       e) if (json_is_string(e) &&
                              !strcmp(json_string_value(e), event)) return true;
    return false;
}

int mk_webhook_hooks_emit(mk_webhook_hooks_t *h, const char *ns, const char *event, json_t *data)
{
    json_t *all;
    if (load(h, ns, &all, NULL) != 0)
        return 0;
    int queued = 0;
    size_t i;
    json_t *hook;
    json_array_foreach(all, i, hook)
    {
        if (!subscribed(hook, event) || !json_is_true(json_object_get(hook, "active")))
            continue;
        pending_t *p = calloc(1, sizeof *p);
        if (p == NULL)
            break;
        p->hooks = h;
        snprintf(p->ns, sizeof p->ns, "%s", ns);
        snprintf(p->hook_id, sizeof p->hook_id, "%s",
                 json_string_value(json_object_get(hook, "id")));
        snprintf(p->event, sizeof p->event, "%s", event);
        snprintf(p->url, sizeof p->url, "%s", json_string_value(json_object_get(hook, "url")));
        strcpy(p->delivery_id, "dl_");
        mk_identity_random_hex(8, p->delivery_id + 3);
        char when[32];
        mk_identity_time_format(now_ms(), when);
        json_t *payload =
            json_pack("{s:s, s:s, s:s, s:s, s:O}", "event", event, "namespace", ns, "timestamp",
                      when, "deliveryId", p->delivery_id, "data", data ? data : json_null());
        char *body = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
        json_decref(payload);
        const char *secret = json_string_value(json_object_get(hook, "secret"));
        char sig[65], sig_h[96], ev_h[64], id_h[64];
        if (body && secret)
            mk_identity_hmac_sha256_hex(secret, strlen(secret), body, strlen(body), sig);
        snprintf(sig_h, sizeof sig_h, "X-Mockarty-Signature: sha256=%s", sig);
        snprintf(ev_h, sizeof ev_h, "X-Mockarty-Event: %s", event);
        snprintf(id_h, sizeof id_h, "X-Mockarty-Delivery: %s", p->delivery_id);
        const char *headers[] = {"Content-Type: application/json",
                                 "User-Agent: mockarty-webhook",
                                 sig_h,
                                 ev_h,
                                 id_h,
                                 NULL};
        mk_webhook_req_t req = {
            .url = p->url,
            .headers = headers,
            .body = body,
            .body_len = body ? strlen(body) : 0,
            .retries = (int)json_integer_value(json_object_get(hook, "retries")),
            .backoff_ms = h->cfg.backoff_ms,
            .timeout_ms = h->cfg.timeout_ms,
            .on_attempt = log_attempt,
            .ud = p,
        };
        if (body == NULL || secret == NULL || mk_webhook_send(h->sender, &req, NULL) != 0)
            free(p);
        else
            queued++;
        free(body);
    }
    json_decref(all);
    return queued;
}

typedef struct prune {
    int64_t cutoff;
    json_t *ids;
} prune_t;

static int old_row(void *ud, const mk_repo_doc_t *doc)
{
    prune_t *p = ud;
    if (doc->updated_at && doc->updated_at < p->cutoff)
        json_array_append_new(p->ids, json_string(doc->id));
    return json_array_size(p->ids) >= 1000; /* a batch at a time */
}

void mk_webhook_hooks_prune(mk_webhook_hooks_t *h, int64_t now, int64_t max_age_ms)
{
    for (int round = 0; round < 100; round++) {
        prune_t p = {now - max_age_ms, json_array()};
        mk_repo_list_docs(h->repo, KIND_DELIVERY, NULL, old_row, &p, NULL);
        size_t n = json_array_size(p.ids);
        const char **ids = calloc(n ? n : 1, sizeof *ids);
        for (size_t i = 0; ids && i < n; i++)
            ids[i] = json_string_value(json_array_get(p.ids, i));
        if (ids && n)
            mk_repo_delete_docs(h->repo, KIND_DELIVERY, ids, n, NULL);
        free(ids);
        json_decref(p.ids);
        if (n < 1000)
            break;
    }
}
