/* The coordinator's gRPC handlers, its dispatch/tick thread and the per-task progress buffers. */
#include "coordinator/coordinator.h"

#include "coordinator.pb-c.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SVC             "/mockarty.coordinator.v1.Coordinator/"
#define MAX_EVENT_TASKS 512   /* tasks whose progress is kept in memory */
#define MAX_EVENTS      10000 /* events kept per task */
#define STOP_TTL_MS     600000

typedef struct pull {
    mk_grpc_call_t *call; /* referenced */
    char runner_id[40];
    struct pull *next;
} pull_t;

typedef struct owner {
    char runner_id[40];
    char cred[MK_IDENTITY_ID_MAX]; /* the credential that registered it */
} owner_t;

typedef struct stop {
    char task_id[40];
    int64_t at;
} stop_t;

typedef struct events {
    char task_id[40];
    json_t *list;
    int64_t last_seq;
    int64_t touched;
} events_t;

struct mk_coord {
    mk_coord_config_t cfg;
    char *api_token;
    mk_repo_t *repo;
    mk_identity_t *identity;
    mk_queue_t *queue;
    mk_grpc_server_t *server;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cond;
    bool wake, stopping;
    pull_t *pulls;
    owner_t *owners;
    size_t nowners, capowners;
    events_t *events;
    size_t nevents;
    stop_t *stops; /* mk_coord_stop_task's, until the result or for STOP_TTL_MS */
    size_t nstops, capstops;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- authentication ------------------------------------------------------------------------ */

/* Who is calling: fills who and returns MK_GRPC_OK, or a status code with msg. */
static int authenticate(mk_coord_t *co, mk_grpc_call_t *call, mk_identity_principal_t *who,
                        char *msg, size_t size)
{
    memset(who, 0, sizeof *who);
    const mk_grpc_md_t *md = mk_grpc_md_get(mk_grpc_call_metadata(call), "authorization");
    const char *v = md ? md->value : NULL;
    if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0) {
        if (co->cfg.allow_anonymous) {
            who->kind = MK_PRINCIPAL_ANONYMOUS;
            who->admin = true;
            return MK_GRPC_OK;
        }
        snprintf(msg, size, "missing metadata \"authorization: Bearer mki_...\" (API_TOKEN)");
        return MK_GRPC_UNAUTHENTICATED;
    }
    const char *secret = v + 7;
    if (co->api_token && co->api_token[0] && strcmp(secret, co->api_token) == 0) {
        who->kind = MK_PRINCIPAL_BOOTSTRAP;
        who->admin = true;
        return MK_GRPC_OK;
    }
    mk_err_t err;
    if (co->identity == NULL ||
        mk_identity_authenticate(co->identity, secret, strlen(secret), now_ms(), who, &err) != 0) {
        snprintf(msg, size, "%s", co->identity ? err.msg : "token: unknown");
        return MK_GRPC_UNAUTHENTICATED;
    }
    if (who->kind != MK_PRINCIPAL_INTEGRATION) {
        snprintf(msg, size,
                 "runners authenticate with an integration token (mki_...), not a "
                 "personal token or a session");
        return MK_GRPC_PERMISSION_DENIED;
    }
    return MK_GRPC_OK;
}

/* Remembers which credential registered runner_id, so only it may act for the runner. */
static void owner_set(mk_coord_t *co, const char *runner_id, const char *cred)
{
    pthread_mutex_lock(&co->mu);
    owner_t *o = NULL;
    for (size_t i = 0; i < co->nowners && !o; i++)
        if (strcmp(co->owners[i].runner_id, runner_id) == 0)
            o = &co->owners[i];
    if (o == NULL && co->nowners == co->capowners) {
        size_t cap = co->capowners ? co->capowners * 2 : 16;
        owner_t *n = realloc(co->owners, cap * sizeof *n);
        if (n) {
            co->owners = n;
            co->capowners = cap;
        }
    }
    if (o == NULL && co->nowners < co->capowners)
        o = &co->owners[co->nowners++];
    if (o) {
        snprintf(o->runner_id, sizeof o->runner_id, "%s", runner_id);
        snprintf(o->cred, sizeof o->cred, "%s", cred);
    }
    pthread_mutex_unlock(&co->mu);
}

/* True when who registered runner_id (NULL: ""); otherwise answers the call NOT_FOUND (register
 * again) or PERMISSION_DENIED and returns false. */
static bool owner_check(mk_coord_t *co, mk_grpc_call_t *call, const char *runner_id,
                        const mk_identity_principal_t *who)
{
    if (runner_id == NULL)
        runner_id = "";
    int code = MK_GRPC_NOT_FOUND;
    pthread_mutex_lock(&co->mu);
    for (size_t i = 0; i < co->nowners; i++)
        if (strcmp(co->owners[i].runner_id, runner_id) == 0)
            code = strcmp(co->owners[i].cred, who->cred_id) == 0 ? MK_GRPC_OK
                                                                 : MK_GRPC_PERMISSION_DENIED;
    pthread_mutex_unlock(&co->mu);
    if (code == MK_GRPC_OK)
        return true;
    char msg[512];
    if (code == MK_GRPC_NOT_FOUND)
        snprintf(msg, sizeof msg, "runner '%s' is not registered (register again)", runner_id);
    else
        snprintf(msg, sizeof msg, "runner '%s' was registered with another token", runner_id);
    mk_grpc_call_finish(call, code, msg, NULL, 0);
    return false;
}

/* ---- call plumbing ------------------------------------------------------------------------- */

/* Unary calls: the one request message is kept until half-close. */
typedef struct unary {
    uint8_t *msg;
    size_t len;
    int count;
} unary_t;

static unary_t *unary_of(mk_grpc_call_t *call)
{
    unary_t *u = mk_grpc_call_data(call);
    if (u == NULL) {
        u = calloc(1, sizeof *u);
        mk_grpc_call_set_data(call, u);
    }
    return u;
}

static void unary_message(mk_grpc_call_t *call, const uint8_t *msg, size_t len, void *ud)
{
    (void)ud;
    unary_t *u = unary_of(call);
    if (u == NULL || ++u->count > 1)
        return;
    u->msg = malloc(len ? len : 1);
    if (u->msg) {
        memcpy(u->msg, msg, len);
        u->len = len;
    }
}

static void unary_done(mk_grpc_call_t *call, int code, void *ud)
{
    (void)code;
    (void)ud;
    unary_t *u = mk_grpc_call_data(call);
    if (u) {
        free(u->msg);
        free(u);
        mk_grpc_call_set_data(call, NULL);
    }
}

/* The request of a unary call, or NULL after answering INVALID_ARGUMENT. */
static const unary_t *unary_request(mk_grpc_call_t *call)
{
    unary_t *u = unary_of(call);
    if (u == NULL || u->count != 1 || u->msg == NULL) {
        mk_grpc_call_finish(call, MK_GRPC_INVALID_ARGUMENT, "exactly one request message expected",
                            NULL, 0);
        return NULL;
    }
    return u;
}

/* The request of a unary call from an authenticated caller (who), decoded as desc; free it with
 * protobuf_c_message_free_unpacked. NULL after answering the call: INVALID_ARGUMENT when it is not
 * one message or does not decode, or the authentication's status. */
static ProtobufCMessage *unary_decode(mk_coord_t *co, mk_grpc_call_t *call,
                                      const ProtobufCMessageDescriptor *desc,
                                      mk_identity_principal_t *who)
{
    const unary_t *u = unary_request(call);
    if (u == NULL)
        return NULL;
    char msg[512];
    int code = authenticate(co, call, who, msg, sizeof msg);
    if (code != MK_GRPC_OK) {
        mk_grpc_call_finish(call, code, msg, NULL, 0);
        return NULL;
    }
    ProtobufCMessage *rq = protobuf_c_message_unpack(desc, NULL, u->len, u->msg);
    if (rq == NULL) {
        snprintf(msg, sizeof msg, "%s does not decode", desc->short_name);
        mk_grpc_call_finish(call, MK_GRPC_INVALID_ARGUMENT, msg, NULL, 0);
    }
    return rq;
}

/* Packs msg and sends it as the call's answer, then OK. */
static void answer(mk_grpc_call_t *call, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL) {
        mk_grpc_call_finish(call, MK_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return;
    }
    protobuf_c_message_pack(msg, buf);
    mk_grpc_call_send(call, buf, n, 0);
    mk_grpc_call_finish(call, MK_GRPC_OK, NULL, NULL, 0);
    free(buf);
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* ---- RegisterNode -------------------------------------------------------------------------- */

static void register_node(mk_grpc_call_t *call, void *ud)
{
    mk_coord_t *co = ud;
    mk_identity_principal_t who;
    Mockarty__Coordinator__V1__RegisterRequest *rq = (void *)unary_decode(
        co, call, &mockarty__coordinator__v1__register_request__descriptor, &who);
    if (rq == NULL)
        return;
    char msg[512];
    const char *ns = str_or_empty(rq->namespace_);
    bool admin = who.admin && who.scope_ns[0] == '\0';
    int code = MK_GRPC_OK;
    if (rq->shared && !admin) {
        snprintf(msg, sizeof msg,
                 "SHARED=true needs an admin-scoped integration token; this token is scoped to "
                 "namespace '%s', so this runner can only run that namespace's tasks (unset "
                 "SHARED)",
                 who.scope_ns);
        code = MK_GRPC_PERMISSION_DENIED;
    } else if (!admin && ns[0] && strcmp(ns, who.scope_ns) != 0) {
        snprintf(msg, sizeof msg, "NAMESPACE '%s': this token is scoped to namespace '%s'", ns,
                 who.scope_ns);
        code = MK_GRPC_PERMISSION_DENIED;
    } else if (!admin) {
        ns = who.scope_ns;
    } else if (!rq->shared && ns[0] == '\0') {
        snprintf(msg, sizeof msg, "set SHARED=true (any namespace) or NAMESPACE (one namespace)");
        code = MK_GRPC_INVALID_ARGUMENT;
    }
    for (size_t i = 0; code == MK_GRPC_OK && i < rq->n_capabilities; i++)
        if (strcmp(rq->capabilities[i], "api_test") != 0 &&
            strcmp(rq->capabilities[i], "performance") != 0) {
            snprintf(msg, sizeof msg, "capability '%s' is unknown (known: api_test, performance)",
                     rq->capabilities[i]);
            code = MK_GRPC_INVALID_ARGUMENT;
        }
    char id[40] = "";
    if (code == MK_GRPC_OK) {
        bool resolver = rq->kind == MOCKARTY__COORDINATOR__V1__NODE_KIND__NODE_KIND_RESOLVER;
        mk_queue_runner_info_t info = {
            .name = rq->name,
            .capabilities = (const char *const *)rq->capabilities,
            .ncapabilities = rq->n_capabilities,
            .shared = rq->shared,
            .ns = rq->shared ? "" : ns,
            .max_concurrent = rq->max_concurrent,
            .version = rq->version,
            .kind = resolver ? "resolver" : "runner",
            .address = rq->address,
        };
        mk_err_t err;
        if (mk_queue_register(co->queue, &info, now_ms(), id, &err) != 0) {
            snprintf(msg, sizeof msg, "%s", err.msg);
            code = err.code == MK_EINVAL ? MK_GRPC_INVALID_ARGUMENT : MK_GRPC_INTERNAL;
        }
    }
    if (code != MK_GRPC_OK) {
        mk_grpc_call_finish(call, code, msg, NULL, 0);
    } else {
        owner_set(co, id, who.cred_id);
        Mockarty__Coordinator__V1__RegisterResponse rs =
            MOCKARTY__COORDINATOR__V1__REGISTER_RESPONSE__INIT;
        rs.runner_id = id;
        rs.heartbeat_interval_ms = co->cfg.heartbeat_interval_ms;
        rs.namespace_ = (char *)(rq->shared ? "" : ns);
        rs.shared = rq->shared;
        answer(call, &rs.base);
    }
    mockarty__coordinator__v1__register_request__free_unpacked(rq, NULL);
}

/* ---- Heartbeat ----------------------------------------------------------------------------- */

/* The stops asked for tasks the runner says it runs join its cancel list; old ones go. */
static void stops_add_running(mk_coord_t *co, const Mockarty__Coordinator__V1__HeartbeatRequest *rq,
                              json_t *cancel)
{
    int64_t now = now_ms();
    pthread_mutex_lock(&co->mu);
    for (size_t i = 0; i < co->nstops;) {
        if (now - co->stops[i].at > STOP_TTL_MS) {
            co->stops[i] = co->stops[--co->nstops];
            continue;
        }
        for (size_t k = 0; k < rq->n_running_task_ids; k++)
            if (strcmp(rq->running_task_ids[k], co->stops[i].task_id) == 0)
                json_array_append_new(cancel, json_string(co->stops[i].task_id));
        i++;
    }
    pthread_mutex_unlock(&co->mu);
}

static void stops_forget(mk_coord_t *co, const char *task_id)
{
    pthread_mutex_lock(&co->mu);
    for (size_t i = 0; i < co->nstops; i++)
        if (strcmp(co->stops[i].task_id, task_id) == 0) {
            co->stops[i] = co->stops[--co->nstops];
            break;
        }
    pthread_mutex_unlock(&co->mu);
}

int mk_coord_stop_task(mk_coord_t *c, const char *task_id)
{
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    bool known = false;
    for (size_t i = 0; i < c->nstops && !known; i++)
        known = strcmp(c->stops[i].task_id, task_id) == 0;
    if (!known && c->nstops == c->capstops) {
        size_t cap = c->capstops ? c->capstops * 2 : 16;
        stop_t *n = realloc(c->stops, cap * sizeof *n);
        if (n) {
            c->stops = n;
            c->capstops = cap;
        }
    }
    if (!known && c->nstops < c->capstops) {
        snprintf(c->stops[c->nstops].task_id, sizeof c->stops[c->nstops].task_id, "%s", task_id);
        c->stops[c->nstops++].at = now_ms();
    } else if (!known) {
        rc = MK_ENOMEM;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static void heartbeat(mk_grpc_call_t *call, void *ud)
{
    mk_coord_t *co = ud;
    mk_identity_principal_t who;
    Mockarty__Coordinator__V1__HeartbeatRequest *rq = (void *)unary_decode(
        co, call, &mockarty__coordinator__v1__heartbeat_request__descriptor, &who);
    if (rq == NULL)
        return;
    json_t *cancel = NULL;
    mk_err_t err;
    if (!owner_check(co, call, rq->runner_id, &who))
        goto out;
    if (mk_queue_heartbeat(co->queue, rq->runner_id, (const char *const *)rq->running_task_ids,
                           rq->n_running_task_ids, now_ms(), &cancel, &err) != 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%.400s (register again)", err.msg);
        mk_grpc_call_finish(call, MK_GRPC_NOT_FOUND, msg, NULL, 0);
        goto out;
    }
    stops_add_running(co, rq, cancel);
    size_t n = json_array_size(cancel);
    char **ids = calloc(n ? n : 1, sizeof *ids);
    Mockarty__Coordinator__V1__HeartbeatResponse rs =
        MOCKARTY__COORDINATOR__V1__HEARTBEAT_RESPONSE__INIT;
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = (char *)json_string_value(json_array_get(cancel, i));
    rs.n_cancel_task_ids = ids ? n : 0;
    rs.cancel_task_ids = ids;
    answer(call, &rs.base);
    free(ids);
out:
    json_decref(cancel);
    mockarty__coordinator__v1__heartbeat_request__free_unpacked(rq, NULL);
}

/* ---- PullTasks ----------------------------------------------------------------------------- */

static void wake_dispatcher(void *ud)
{
    mk_coord_t *co = ud;
    pthread_mutex_lock(&co->mu);
    co->wake = true;
    pthread_cond_signal(&co->cond);
    pthread_mutex_unlock(&co->mu);
}

static void pull_tasks(mk_grpc_call_t *call, void *ud)
{
    mk_coord_t *co = ud;
    mk_identity_principal_t who;
    Mockarty__Coordinator__V1__PullTasksRequest *rq = (void *)unary_decode(
        co, call, &mockarty__coordinator__v1__pull_tasks_request__descriptor, &who);
    if (rq == NULL)
        return;
    if (!owner_check(co, call, rq->runner_id, &who))
        goto out;
    pull_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        mk_grpc_call_finish(call, MK_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        goto out;
    }
    /* The stream stays open; the dispatcher sends tasks on it until the runner goes away. */
    snprintf(p->runner_id, sizeof p->runner_id, "%s", rq->runner_id);
    mk_grpc_call_ref(call);
    p->call = call;
    pthread_mutex_lock(&co->mu);
    p->next = co->pulls;
    co->pulls = p;
    co->wake = true;
    pthread_cond_signal(&co->cond);
    pthread_mutex_unlock(&co->mu);
out:
    mockarty__coordinator__v1__pull_tasks_request__free_unpacked(rq, NULL);
}

/* Sends every task the queue hands out to the open task streams. On the dispatcher thread. */
static void dispatch(mk_coord_t *co)
{
    pthread_mutex_lock(&co->mu);
    /* Streams that ended are dropped here, off the loop threads. */
    for (pull_t **pp = &co->pulls; *pp;) {
        pull_t *p = *pp;
        if (mk_grpc_call_is_done(p->call)) {
            *pp = p->next;
            mk_grpc_call_unref(p->call);
            free(p);
        } else {
            pp = &p->next;
        }
    }
    size_t n = 0;
    for (pull_t *p = co->pulls; p; p = p->next)
        n++;
    pull_t *snap = calloc(n ? n : 1, sizeof *snap);
    size_t k = 0;
    for (pull_t *p = co->pulls; snap && p; p = p->next) {
        snap[k] = *p;
        mk_grpc_call_ref(p->call);
        k++;
    }
    pthread_mutex_unlock(&co->mu);
    for (size_t i = 0; i < k; i++) {
        mk_queue_grant_t g;
        mk_err_t err;
        while (!mk_grpc_call_is_done(snap[i].call) &&
               mk_queue_next(co->queue, snap[i].runner_id, now_ms(), &g, &err) == 0) {
            Mockarty__Coordinator__V1__Task t = MOCKARTY__COORDINATOR__V1__TASK__INIT;
            t.task_id = g.task_id;
            t.attempt = g.attempt;
            t.capability = g.capability;
            t.namespace_ = g.ns;
            t.payload_json = g.payload_json;
            t.timeout_ms = g.timeout_ms;
            t.created_at_ms = g.created_at_ms;
            size_t len = mockarty__coordinator__v1__task__get_packed_size(&t);
            uint8_t *buf = malloc(len ? len : 1);
            int rc = MK_ENOMEM;
            if (buf) {
                mockarty__coordinator__v1__task__pack(&t, buf);
                rc = mk_grpc_call_send(snap[i].call, buf, len, 0);
            }
            free(buf);
            /* A task that could not be sent stays assigned to this runner: the runner's next
             * registration or its heartbeat timeout requeues it. */
            mk_queue_grant_release(&g);
            if (rc != 0)
                break;
        }
        mk_grpc_call_unref(snap[i].call);
    }
    free(snap);
}

static void *dispatcher_main(void *ud)
{
    mk_coord_t *co = ud;
    int64_t last_tick = 0;
    pthread_mutex_lock(&co->mu);
    while (!co->stopping) {
        if (!co->wake) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 250 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&co->cond, &co->mu, &ts);
        }
        co->wake = false;
        pthread_mutex_unlock(&co->mu);
        int64_t now = now_ms();
        if (now - last_tick >= 1000) {
            mk_queue_tick(co->queue, now);
            last_tick = now;
        }
        dispatch(co);
        pthread_mutex_lock(&co->mu);
    }
    pthread_mutex_unlock(&co->mu);
    return NULL;
}

/* ---- ReportProgress ------------------------------------------------------------------------ */

typedef struct progress {
    bool authed;
    int code;
    char msg[256];
    mk_identity_principal_t who;
    int64_t accepted, dropped;
} progress_t;

static events_t *events_slot(mk_coord_t *co, const char *task_id, bool create)
{
    events_t *oldest = NULL;
    for (size_t i = 0; i < co->nevents; i++) {
        if (strcmp(co->events[i].task_id, task_id) == 0)
            return &co->events[i];
        if (oldest == NULL || co->events[i].touched < oldest->touched)
            oldest = &co->events[i];
    }
    if (!create)
        return NULL;
    events_t *e = NULL;
    if (co->events == NULL)
        co->events = calloc(MAX_EVENT_TASKS, sizeof *co->events);
    if (co->events == NULL)
        return NULL;
    if (co->nevents < MAX_EVENT_TASKS) {
        e = &co->events[co->nevents++];
    } else {
        e = oldest; /* bounded memory: the least recently active task's events go */
        json_decref(e->list);
    }
    memset(e, 0, sizeof *e);
    snprintf(e->task_id, sizeof e->task_id, "%s", task_id);
    e->list = json_array();
    e->last_seq = -1;
    return e;
}

static void progress_start(mk_grpc_call_t *call, void *ud)
{
    mk_coord_t *co = ud;
    progress_t *p = calloc(1, sizeof *p);
    mk_grpc_call_set_data(call, p);
    if (p)
        p->code = authenticate(co, call, &p->who, p->msg, sizeof p->msg);
}

static void progress_message(mk_grpc_call_t *call, const uint8_t *msg, size_t len, void *ud)
{
    mk_coord_t *co = ud;
    progress_t *p = mk_grpc_call_data(call);
    if (p == NULL || p->code != MK_GRPC_OK)
        return;
    Mockarty__Coordinator__V1__ProgressEvent *ev =
        mockarty__coordinator__v1__progress_event__unpack(NULL, len, msg);
    if (ev == NULL || ev->task_id == NULL) {
        p->dropped++;
        goto out;
    }
    /* Only the attempt that owns the task speaks for it; its first word starts it. */
    if (!mk_queue_started(co->queue, ev->task_id, ev->attempt, now_ms())) {
        p->dropped++;
        goto out;
    }
    json_t *event = NULL;
    if (ev->event_json && ev->event_json[0])
        event = json_loads(ev->event_json, 0, NULL);
    pthread_mutex_lock(&co->mu);
    events_t *e = events_slot(co, ev->task_id, true);
    if (e && ev->seq > e->last_seq && json_array_size(e->list) < MAX_EVENTS) {
        e->last_seq = ev->seq;
        e->touched = now_ms();
        json_array_append_new(e->list, json_pack("{s:I, s:i, s:f, s:o}", "seq", (json_int_t)ev->seq,
                                                 "attempt", ev->attempt, "percent", ev->percent,
                                                 "event", event ? event : json_null()));
        event = NULL;
        p->accepted++;
    } else {
        p->dropped++;
    }
    pthread_mutex_unlock(&co->mu);
    json_decref(event);
out:
    if (ev)
        mockarty__coordinator__v1__progress_event__free_unpacked(ev, NULL);
}

static void progress_half_close(mk_grpc_call_t *call, void *ud)
{
    (void)ud;
    progress_t *p = mk_grpc_call_data(call);
    if (p == NULL) {
        mk_grpc_call_finish(call, MK_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return;
    }
    if (p->code != MK_GRPC_OK) {
        mk_grpc_call_finish(call, p->code, p->msg, NULL, 0);
        return;
    }
    Mockarty__Coordinator__V1__ProgressAck ack = MOCKARTY__COORDINATOR__V1__PROGRESS_ACK__INIT;
    ack.accepted = p->accepted;
    ack.dropped = p->dropped;
    answer(call, &ack.base);
}

static void progress_done(mk_grpc_call_t *call, int code, void *ud)
{
    (void)code;
    (void)ud;
    free(mk_grpc_call_data(call));
    mk_grpc_call_set_data(call, NULL);
}

/* ---- ReportResult -------------------------------------------------------------------------- */

static void report_result(mk_grpc_call_t *call, void *ud)
{
    mk_coord_t *co = ud;
    mk_identity_principal_t who;
    Mockarty__Coordinator__V1__TaskResult *rq =
        (void *)unary_decode(co, call, &mockarty__coordinator__v1__task_result__descriptor, &who);
    if (rq == NULL)
        return;
    if (rq->task_id == NULL) {
        mk_grpc_call_finish(call, MK_GRPC_INVALID_ARGUMENT, "TaskResult does not decode", NULL, 0);
        mockarty__coordinator__v1__task_result__free_unpacked(rq, NULL);
        return;
    }
    static const mk_queue_outcome_t outcomes[] = {
        [MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_SUCCEEDED] = MK_QUEUE_SUCCEEDED,
        [MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_FAILED] = MK_QUEUE_FAILED,
        [MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_CANCELLED] = MK_QUEUE_CANCELLED,
        [MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_TIMED_OUT] = MK_QUEUE_TIMED_OUT,
    };
    Mockarty__Coordinator__V1__ResultAck ack = MOCKARTY__COORDINATOR__V1__RESULT_ACK__INIT;
    const char *reason = NULL;
    json_t *parsed =
        rq->result_json && rq->result_json[0] ? json_loads(rq->result_json, 0, NULL) : json_null();
    if (rq->outcome <= 0 || (size_t)rq->outcome >= sizeof outcomes / sizeof *outcomes) {
        reason = "outcome: unspecified";
    } else if (parsed == NULL) {
        reason = "result_json: not JSON";
    } else {
        ack.accepted = mk_queue_finish(
            co->queue, rq->task_id, rq->attempt, outcomes[rq->outcome],
            rq->error && rq->error[0] ? rq->error : NULL,
            rq->result_json && rq->result_json[0] ? rq->result_json : NULL, now_ms(), &reason);
    }
    json_decref(parsed);
    if (ack.accepted)
        stops_forget(co, rq->task_id);
    ack.reason = (char *)(ack.accepted ? "" : reason ? reason : "refused");
    answer(call, &ack.base);
    mockarty__coordinator__v1__task_result__free_unpacked(rq, NULL);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

int mk_coord_new(const mk_coord_config_t *cfg, mk_repo_t *repo, mk_identity_t *identity,
                 mk_coord_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_coord_t *co = calloc(1, sizeof *co);
    if (co == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    co->cfg = *cfg;
    co->cfg.tls = NULL; /* read during mk_grpc_server_new only */
    if (co->cfg.heartbeat_interval_ms <= 0) {
        /* Three heartbeats fit in the timeout, so one lost heartbeat never loses the runner. */
        int64_t timeout =
            cfg->queue.heartbeat_timeout_ms > 0 ? cfg->queue.heartbeat_timeout_ms : 30000;
        int64_t every = timeout / 3 < 5000 ? timeout / 3 : 5000;
        co->cfg.heartbeat_interval_ms = (int)(every < 100 ? 100 : every);
    }
    co->api_token = cfg->api_token ? strdup(cfg->api_token) : NULL;
    co->cfg.api_token = NULL;
    co->repo = repo;
    co->identity = identity;
    pthread_mutex_init(&co->mu, NULL);
    pthread_cond_init(&co->cond, NULL);
    int rc = mk_queue_open(repo, &cfg->queue, now_ms(), &co->queue, err);
    if (rc == 0) {
        mk_grpc_server_opts_t so = {.host = cfg->host ? cfg->host : "0.0.0.0",
                                    .port = cfg->port,
                                    .threads = 1,
                                    .tls = cfg->tls,
                                    .keepalive_ms = 30000};
        rc = mk_grpc_server_new(&so, &co->server, err);
    }
    const mk_grpc_method_t methods[] = {
        {SVC "RegisterNode", NULL, unary_message, register_node, unary_done, co},
        {SVC "Heartbeat", NULL, unary_message, heartbeat, unary_done, co},
        {SVC "PullTasks", NULL, unary_message, pull_tasks, unary_done, co},
        {SVC "ReportProgress", progress_start, progress_message, progress_half_close, progress_done,
         co},
        {SVC "ReportResult", NULL, unary_message, report_result, unary_done, co},
    };
    for (size_t i = 0; rc == 0 && i < sizeof methods / sizeof *methods; i++)
        rc = mk_grpc_server_add(co->server, &methods[i], err);
    if (rc != 0) {
        mk_coord_free(co);
        return rc;
    }
    mk_queue_set_notify(co->queue, wake_dispatcher, co);
    *out = co;
    return 0;
}

int mk_coord_start(mk_coord_t *c, mk_err_t *err)
{
    int rc = mk_grpc_server_start(c->server, err);
    if (rc != 0)
        return rc;
    if (pthread_create(&c->thread, NULL, dispatcher_main, c) != 0)
        return mk_err_set(err, MK_ENOMEM, "coordinator: cannot start its thread");
    c->thread_started = true;
    return 0;
}

int mk_coord_port(const mk_coord_t *c)
{
    return mk_grpc_server_port(c->server);
}

mk_queue_t *mk_coord_queue(mk_coord_t *c)
{
    return c->queue;
}

json_t *mk_coord_events(mk_coord_t *c, const char *task_id)
{
    return mk_coord_events_after(c, task_id, -1);
}

json_t *mk_coord_events_after(mk_coord_t *c, const char *task_id, int64_t after)
{
    pthread_mutex_lock(&c->mu);
    events_t *e = events_slot(c, task_id, false);
    json_t *out = NULL;
    if (e && after < 0) {
        out = json_deep_copy(e->list);
    } else if (e) {
        /* Sequence numbers only grow: the newer events are at the end. */
        size_t n = json_array_size(e->list), i = n;
        while (i > 0 &&
               json_integer_value(json_object_get(json_array_get(e->list, i - 1), "seq")) > after)
            i--;
        out = json_array();
        for (; out && i < n; i++)
            json_array_append_new(out, json_deep_copy(json_array_get(e->list, i)));
    }
    pthread_mutex_unlock(&c->mu);
    return out;
}

void mk_coord_forget(mk_coord_t *c, const char *task_id)
{
    pthread_mutex_lock(&c->mu);
    events_t *e = events_slot(c, task_id, false);
    if (e) {
        json_decref(e->list);
        *e = c->events[--c->nevents];
    }
    pthread_mutex_unlock(&c->mu);
}

void mk_coord_free(mk_coord_t *c)
{
    if (c == NULL)
        return;
    if (c->thread_started) {
        pthread_mutex_lock(&c->mu);
        c->stopping = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    if (c->queue)
        mk_queue_set_notify(c->queue, NULL, NULL);
    /* Stopping the server ends the task streams (their on_done runs) before they are dropped. */
    mk_grpc_server_stop(c->server);
    while (c->pulls) {
        pull_t *p = c->pulls;
        c->pulls = p->next;
        mk_grpc_call_unref(p->call);
        free(p);
    }
    mk_grpc_server_free(c->server);
    mk_queue_free(c->queue);
    for (size_t i = 0; i < c->nevents; i++)
        json_decref(c->events[i].list);
    free(c->events);
    free(c->stops);
    free(c->owners);
    free(c->api_token);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    free(c);
}
