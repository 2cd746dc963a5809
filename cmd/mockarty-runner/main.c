/* mockarty-runner: registers with the coordinator (gRPC), heartbeats, pulls tasks, runs API test
 * collections (pkg/apitest) and load tests (perf_task.c), streams their progress and reports
 * their results; reconnects with
 * backoff and registers again by itself. Its dashboard (RUNNER_HTTP_PORT) serves /health,
 * /metrics and a status page of the current tasks. */
#include "apitest/apitest.h"
#include "config/config.h"
#include "coordinator.pb-c.h"
#include "grpc/grpc.h"
#include "httpd/httpd.h"
#include "perf_task.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VERSION   "0.3.0"
#define SVC       "/mockarty.coordinator.v1.Coordinator/"
#define MAX_TASKS 256

extern char **environ;

typedef struct settings {
    char *coordinator;
    char *token;
    char *name;
    char *capabilities;
    bool shared;
    char *ns;
    int64_t max_concurrent;
    char *http_host;
    int http_port;
    char *advertise;
    bool tls;
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    bool tls_insecure;
} settings_t;

#define F(field) offsetof(settings_t, field)
static const mk_config_spec_t spec[] = {
    {"COORDINATOR_ADDR", MK_CONFIG_STRING, "localhost:5773", F(coordinator),
     "host:port of the coordinator (the admin's RUNNER_GRPC_PORT)", NULL, 0, 0},
    {"API_TOKEN", MK_CONFIG_STRING, NULL, F(token),
     "integration token (mki_...): admin-scoped for SHARED, or scoped to NAMESPACE", NULL, 0, 0},
    {"RUNNER_NAME", MK_CONFIG_STRING, NULL, F(name), "name (default: the host name)", NULL, 0, 0},
    {"CAPABILITIES", MK_CONFIG_STRING, "api_test", F(capabilities),
     "comma-separated: api_test, performance", NULL, 0, 0},
    {"SHARED", MK_CONFIG_BOOL, "false", F(shared),
     "take tasks of every namespace (needs an admin-scoped token)", NULL, 0, 0},
    {"NAMESPACE", MK_CONFIG_STRING, NULL, F(ns), "the namespace of a team runner", NULL, 0, 0},
    {"MAX_CONCURRENT", MK_CONFIG_INT, "2", F(max_concurrent), "tasks run at once", NULL, 1, 256},
    {"RUNNER_HTTP_HOST", MK_CONFIG_STRING, "0.0.0.0", F(http_host), "dashboard listen address",
     NULL, 0, 0},
    {"RUNNER_HTTP_PORT", MK_CONFIG_PORT, "6770", F(http_port), "dashboard port", NULL, 0, 0},
    {"RUNNER_ADVERTISE_ADDR", MK_CONFIG_STRING, NULL, F(advertise),
     "dashboard address told to the coordinator (default: name:port)", NULL, 0, 0},
    {"COORDINATOR_TLS", MK_CONFIG_BOOL, "false", F(tls), "TLS to the coordinator", NULL, 0, 0},
    {"COORDINATOR_TLS_CA_FILE", MK_CONFIG_STRING, NULL, F(tls_ca),
     "CA verifying the coordinator (default: the system store)", NULL, 0, 0},
    {"COORDINATOR_TLS_CERT_FILE", MK_CONFIG_STRING, NULL, F(tls_cert), "client certificate (mTLS)",
     NULL, 0, 0},
    {"COORDINATOR_TLS_KEY_FILE", MK_CONFIG_STRING, NULL, F(tls_key), "client key (mTLS)", NULL, 0,
     0},
    {"COORDINATOR_TLS_INSECURE", MK_CONFIG_BOOL, "false", F(tls_insecure),
     "accept any coordinator certificate (tests only)", NULL, 0, 0},
};
#undef F
#define NSPEC (sizeof spec / sizeof *spec)

/* One task being run. */
typedef struct task {
    bool used;
    char id[40];
    int attempt;
    char ns[80];
    char name[128]; /* the collection's name */
    size_t done, total;
    atomic_bool cancel;
    int64_t started_ms;
    bool perf;        /* a load test: heartbeats come every 250 ms so a stop is quick */
    mk_loadgen_t *lg; /* its generator while it runs, to stop it from the heartbeat */
    double perf_pct;  /* its progress */
} task_t;

typedef struct runner {
    settings_t cfg;
    mk_grpc_channel_t *ch;
    mk_grpc_mdlist_t md; /* authorization */
    pthread_mutex_t mu;  /* below */
    char runner_id[40];
    int heartbeat_ms;
    bool connected;
    char last_error[256];
    task_t tasks[MAX_TASKS];
    int running;
    uint64_t succeeded, failed, cancelled, registrations;
    mk_grpc_stream_t *pull; /* the open task stream */
    bool pull_live;
} runner_t;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    for (int i = 0; i < ms / 50 && !stopping; i++)
        usleep(50 * 1000);
}

static void note_error(runner_t *r, const char *fmt, const char *a, const char *b)
{
    char line[1400]; /* holds two 512-byte messages: never cut here */
    snprintf(line, sizeof line, fmt, a, b ? b : "");
    pthread_mutex_lock(&r->mu);
    size_t n = strlen(line) < sizeof r->last_error ? strlen(line) : sizeof r->last_error - 1;
    memcpy(r->last_error, line, n);
    r->last_error[n] = '\0';
    pthread_mutex_unlock(&r->mu);
    fprintf(stderr, "mockarty-runner: %s\n", line);
}

/* A unary call of the coordinator with the runner's token; returns the gRPC code (or -1 when the
 * call could not start) and *resp on OK. */
static int call(runner_t *r, const char *method, const ProtobufCMessage *req, uint8_t **resp,
                size_t *resp_len, char *msg, size_t size)
{
    size_t n = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        return -1;
    protobuf_c_message_pack(req, buf);
    char path[128];
    snprintf(path, sizeof path, SVC "%s", method);
    mk_grpc_status_t st = {0};
    mk_err_t err;
    int code = mk_grpc_unary(r->ch, path, &r->md, buf, n, 10000, resp, resp_len, &st, &err);
    free(buf);
    if (code < 0)
        snprintf(msg, size, "%s", err.msg);
    else
        snprintf(msg, size, "%s", st.message ? st.message : "");
    mk_grpc_status_clear(&st);
    return code < 0 ? MK_GRPC_UNAVAILABLE : code;
}

/* ---- registration -------------------------------------------------------------------------- */

/* 0 registered; 1 retry later; 2 refused for good (bad token or scope: a configuration error). */
static int register_node(runner_t *r)
{
    char *caps[16];
    size_t ncaps = 0;
    char *list = strdup(r->cfg.capabilities), *save = NULL;
    for (char *t = strtok_r(list, ", ", &save); t && ncaps < 16; t = strtok_r(NULL, ", ", &save))
        caps[ncaps++] = t;
    char addr[300];
    snprintf(addr, sizeof addr, "%s:%d", r->cfg.name, r->cfg.http_port);
    Mockarty__Coordinator__V1__RegisterRequest rq =
        MOCKARTY__COORDINATOR__V1__REGISTER_REQUEST__INIT;
    rq.name = r->cfg.name;
    rq.n_capabilities = ncaps;
    rq.capabilities = caps;
    rq.shared = r->cfg.shared;
    rq.namespace_ = r->cfg.ns ? r->cfg.ns : (char *)"";
    rq.max_concurrent = (int32_t)r->cfg.max_concurrent;
    rq.version = (char *)VERSION;
    rq.kind = MOCKARTY__COORDINATOR__V1__NODE_KIND__NODE_KIND_RUNNER;
    rq.address = r->cfg.advertise ? r->cfg.advertise : addr;
    uint8_t *resp = NULL;
    size_t len = 0;
    char msg[512];
    int code = call(r, "RegisterNode", &rq.base, &resp, &len, msg, sizeof msg);
    free(list);
    if (code != MK_GRPC_OK) {
        note_error(r, "register: %s", msg, NULL);
        return code == MK_GRPC_UNAVAILABLE || code == MK_GRPC_DEADLINE_EXCEEDED ||
                       code == MK_GRPC_INTERNAL || code == MK_GRPC_RESOURCE_EXHAUSTED
                   ? 1
                   : 2;
    }
    Mockarty__Coordinator__V1__RegisterResponse *rs =
        mockarty__coordinator__v1__register_response__unpack(NULL, len, resp);
    free(resp);
    if (rs == NULL) {
        note_error(r, "register: the answer does not decode", "", NULL);
        return 1;
    }
    pthread_mutex_lock(&r->mu);
    snprintf(r->runner_id, sizeof r->runner_id, "%s", rs->runner_id);
    r->heartbeat_ms = rs->heartbeat_interval_ms > 0 ? rs->heartbeat_interval_ms : 5000;
    r->connected = true;
    r->last_error[0] = '\0';
    r->registrations++;
    pthread_mutex_unlock(&r->mu);
    printf("mockarty-runner: registered as %s (id %s, %s%s)\n", r->cfg.name, rs->runner_id,
           rs->shared ? "shared" : "namespace ", rs->shared ? "" : rs->namespace_);
    fflush(stdout);
    mockarty__coordinator__v1__register_response__free_unpacked(rs, NULL);
    return 0;
}

/* ---- running a task ------------------------------------------------------------------------ */

typedef struct job {
    runner_t *r;
    task_t *slot;
    Mockarty__Coordinator__V1__Task *task;
    mk_grpc_stream_t *progress;
    int64_t seq;
} job_t;

/* Sends one progress event on the job's stream (best effort: a lost stream does not stop the
 * run). */
static void send_progress(job_t *j, const char *kind, const char *text, double percent)
{
    if (j->progress == NULL || text == NULL)
        return;
    Mockarty__Coordinator__V1__ProgressEvent pe = MOCKARTY__COORDINATOR__V1__PROGRESS_EVENT__INIT;
    pe.task_id = j->task->task_id;
    pe.attempt = j->task->attempt;
    pe.seq = ++j->seq;
    pe.event_json = (char *)text;
    pe.percent = percent;
    pe.kind = (char *)kind;
    size_t n = mockarty__coordinator__v1__progress_event__get_packed_size(&pe);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf) {
        mockarty__coordinator__v1__progress_event__pack(&pe, buf);
        if (mk_grpc_stream_send(j->progress, buf, n, NULL) != 0) {
            mk_grpc_stream_free(j->progress);
            j->progress = NULL;
        }
    }
    free(buf);
}

static int on_progress(void *ud, const mk_apitest_event_t *ev)
{
    job_t *j = ud;
    pthread_mutex_lock(&j->r->mu);
    j->slot->total = ev->total;
    if (ev->type == MK_APITEST_REQUEST_DONE)
        j->slot->done = ev->index + 1;
    pthread_mutex_unlock(&j->r->mu);
    static const char *const types[] = {"request_start", "assertion", "request_done"};
    json_t *e = json_pack("{s:s, s:I, s:I, s:s, s:s}", "type", types[ev->type], "index",
                          (json_int_t)ev->index, "total", (json_int_t)ev->total, "folder",
                          ev->folder ? ev->folder : "", "request", ev->request ? ev->request : "");
    if (ev->assertion)
        json_object_set(e, "assertion", (json_t *)ev->assertion);
    if (ev->result)
        json_object_set(e, "result", (json_t *)ev->result);
    char *text = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    send_progress(j, "", text,
                  ev->total ? 100.0 * (double)(ev->index + (ev->type == MK_APITEST_REQUEST_DONE)) /
                                  (double)ev->total
                            : 0);
    free(text);
    return atomic_load(&j->slot->cancel) || stopping;
}

/* Runs the payload {collection, environment, variables, globals, baseUrl, iterations, data,
 * bail, insecure}. *result_json (caller frees) on success; else *error. */
static int run_api_test(job_t *j, char **result_json, char *error, size_t size)
{
    json_error_t je;
    json_t *p = json_loads(j->task->payload_json, 0, &je);
    mk_apitest_collection_t *col = NULL;
    mk_err_t err;
    int rc = -1;
    if (p == NULL) {
        snprintf(error, size, "payload: %s", je.text);
        goto out;
    }
    if (mk_apitest_collection_parse(json_object_get(p, "collection"), &col, &err) != 0) {
        snprintf(error, size, "collection: %s", err.msg);
        goto out;
    }
    pthread_mutex_lock(&j->r->mu);
    snprintf(j->slot->name, sizeof j->slot->name, "%s", mk_apitest_collection_name(col));
    pthread_mutex_unlock(&j->r->mu);
    json_t *vars = json_object_get(p, "variables");
    vars = json_is_object(vars) ? json_deep_copy(vars) : json_object();
    if (json_is_string(json_object_get(p, "baseUrl")))
        json_object_set(vars, "baseUrl", json_object_get(p, "baseUrl"));
    json_t *iter = json_object_get(p, "iterations");
    mk_apitest_options_t o = {
        .environment = json_object_get(p, "environment"),
        .globals = json_object_get(p, "globals"),
        .variables = vars,
        .run_id = j->task->task_id,
        .collection_id = json_string_value(json_object_get(p, "collectionId")),
        .bail = json_is_true(json_object_get(p, "bail")),
        .insecure = json_is_true(json_object_get(p, "insecure")),
        .iterations = json_is_integer(iter) && json_integer_value(iter) > 0
                          ? (size_t)json_integer_value(iter)
                          : 0,
        .data = json_is_array(json_object_get(p, "data")) ? json_object_get(p, "data") : NULL,
        .progress = on_progress,
        .progress_ud = j,
    };
    json_t *result = NULL;
    rc = mk_apitest_run(col, &o, &result, &err);
    json_decref(vars);
    if (rc != 0) {
        snprintf(error, size, "%s", err.msg);
        goto out;
    }
    *result_json = json_dumps(result, JSON_COMPACT);
    json_decref(result);
    rc = *result_json ? 0 : -1;
out:
    mk_apitest_collection_free(col);
    json_decref(p);
    return rc;
}

/* Reports the outcome until the coordinator answers (accepted or refused with a reason). */
static void report(runner_t *r, job_t *j, int outcome, const char *error, const char *result)
{
    Mockarty__Coordinator__V1__TaskResult tr = MOCKARTY__COORDINATOR__V1__TASK_RESULT__INIT;
    tr.task_id = j->task->task_id;
    tr.attempt = j->task->attempt;
    tr.outcome = outcome;
    tr.error = (char *)(error ? error : "");
    tr.result_json = (char *)(result ? result : "");
    for (int backoff = 500; !stopping; backoff = backoff < 8000 ? backoff * 2 : backoff) {
        uint8_t *resp = NULL;
        size_t len = 0;
        char msg[512];
        int code = call(r, "ReportResult", &tr.base, &resp, &len, msg, sizeof msg);
        if (code == MK_GRPC_OK) {
            Mockarty__Coordinator__V1__ResultAck *ack =
                mockarty__coordinator__v1__result_ack__unpack(NULL, len, resp);
            if (ack && !ack->accepted)
                fprintf(stderr, "mockarty-runner: task %s attempt %d: result refused: %s\n",
                        tr.task_id, tr.attempt, ack->reason);
            if (ack)
                mockarty__coordinator__v1__result_ack__free_unpacked(ack, NULL);
            free(resp);
            return;
        }
        free(resp);
        if (code != MK_GRPC_UNAVAILABLE && code != MK_GRPC_DEADLINE_EXCEEDED) {
            note_error(r, "result of %s refused: %s", tr.task_id, msg);
            return;
        }
        sleep_ms(backoff);
    }
}

/* ---- load tests ---------------------------------------------------------------------------- */

static void perf_snapshot(void *ud, const char *event_json, double percent)
{
    job_t *j = ud;
    pthread_mutex_lock(&j->r->mu);
    j->slot->perf_pct = percent;
    pthread_mutex_unlock(&j->r->mu);
    send_progress(j, "perf_snapshot", event_json, percent);
}

static void perf_running(void *ud, mk_loadgen_t *lg, const char *name)
{
    job_t *j = ud;
    pthread_mutex_lock(&j->r->mu);
    j->slot->lg = lg;
    snprintf(j->slot->name, sizeof j->slot->name, "%s", name);
    if (lg && atomic_load(&j->slot->cancel))
        mk_loadgen_stop(lg);
    pthread_mutex_unlock(&j->r->mu);
}

static bool perf_quitting(void *ud)
{
    (void)ud;
    return stopping;
}

/* A stopped load test reports what it measured, as a cancelled task with a result. */
static int run_perf(job_t *j, char **result, char *error, size_t size)
{
    perf_task_io_t io = {
        .snapshot = perf_snapshot, .running = perf_running, .quitting = perf_quitting, .ud = j};
    bool stopped = false;
    if (perf_task_run(j->task->payload_json, &io, result, &stopped, error, size) != 0)
        return MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_FAILED;
    /* A runner shutting down stops its load tests as a user's stop does. */
    return stopped || atomic_load(&j->slot->cancel) || stopping
               ? MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_CANCELLED
               : MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_SUCCEEDED;
}

static void *job_main(void *ud)
{
    job_t *j = ud;
    runner_t *r = j->r;
    mk_err_t err;
    if (mk_grpc_stream_start(r->ch, SVC "ReportProgress", &r->md, 0, &j->progress, &err) != 0)
        j->progress = NULL;
    char error[640] = "";
    char *result = NULL;
    int outcome;
    if (strcmp(j->task->capability, "performance") == 0) {
        outcome = run_perf(j, &result, error, sizeof error);
    } else if (strcmp(j->task->capability, "api_test") != 0) {
        snprintf(error, sizeof error, "capability '%s' is not supported by this runner yet",
                 j->task->capability);
        outcome = MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_FAILED;
    } else if (run_api_test(j, &result, error, sizeof error) != 0) {
        outcome = MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_FAILED;
    } else {
        /* Failed tests are part of the result; the task itself ran. */
        outcome = atomic_load(&j->slot->cancel)
                      ? MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_CANCELLED
                      : MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_SUCCEEDED;
    }
    if (j->progress) {
        mk_grpc_stream_close_send(j->progress);
        mk_grpc_stream_finish(j->progress, NULL);
        mk_grpc_stream_free(j->progress);
    }
    report(r, j, outcome, error[0] ? error : NULL, result);
    free(result);
    pthread_mutex_lock(&r->mu);
    j->slot->used = false;
    r->running--;
    if (outcome == MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_SUCCEEDED)
        r->succeeded++;
    else if (outcome == MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_CANCELLED)
        r->cancelled++;
    else
        r->failed++;
    pthread_mutex_unlock(&r->mu);
    mockarty__coordinator__v1__task__free_unpacked(j->task, NULL);
    free(j);
    return NULL;
}

static void start_job(runner_t *r, Mockarty__Coordinator__V1__Task *t)
{
    job_t *j = calloc(1, sizeof *j);
    pthread_mutex_lock(&r->mu);
    task_t *slot = NULL;
    for (size_t i = 0; i < MAX_TASKS && !slot; i++)
        if (!r->tasks[i].used)
            slot = &r->tasks[i];
    if (slot && j) {
        memset(slot, 0, sizeof *slot);
        slot->used = true;
        snprintf(slot->id, sizeof slot->id, "%s", t->task_id);
        snprintf(slot->ns, sizeof slot->ns, "%s", t->namespace_);
        slot->attempt = t->attempt;
        slot->started_ms = now_ms();
        slot->perf = strcmp(t->capability, "performance") == 0;
        r->running++;
    }
    pthread_mutex_unlock(&r->mu);
    pthread_t th;
    if (slot == NULL || j == NULL) {
        free(j);
        mockarty__coordinator__v1__task__free_unpacked(t, NULL);
        return; /* not reported: the coordinator requeues what we do not run */
    }
    *j = (job_t){.r = r, .slot = slot, .task = t};
    printf("mockarty-runner: task %s attempt %d (%s, namespace %s)\n", t->task_id, t->attempt,
           t->capability, t->namespace_);
    fflush(stdout);
    if (pthread_create(&th, NULL, job_main, j) != 0) {
        pthread_mutex_lock(&r->mu);
        slot->used = false;
        r->running--;
        pthread_mutex_unlock(&r->mu);
        mockarty__coordinator__v1__task__free_unpacked(t, NULL);
        free(j);
        return;
    }
    pthread_detach(th);
}

/* The task stream: reads tasks until it ends (then the main loop opens it again). */
static void *pull_main(void *ud)
{
    runner_t *r = ud;
    for (;;) {
        uint8_t *msg = NULL;
        size_t len = 0;
        pthread_mutex_lock(&r->mu);
        mk_grpc_stream_t *s = r->pull;
        pthread_mutex_unlock(&r->mu);
        if (s == NULL || mk_grpc_stream_recv(s, &msg, &len) != 1)
            break;
        Mockarty__Coordinator__V1__Task *t =
            mockarty__coordinator__v1__task__unpack(NULL, len, msg);
        free(msg);
        if (t)
            start_job(r, t);
    }
    pthread_mutex_lock(&r->mu);
    r->pull_live = false;
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static int open_pull(runner_t *r, pthread_t *th)
{
    Mockarty__Coordinator__V1__PullTasksRequest rq =
        MOCKARTY__COORDINATOR__V1__PULL_TASKS_REQUEST__INIT;
    rq.runner_id = r->runner_id;
    rq.free_slots = (int32_t)r->cfg.max_concurrent;
    size_t n = mockarty__coordinator__v1__pull_tasks_request__get_packed_size(&rq);
    uint8_t buf[256];
    if (n > sizeof buf)
        return -1;
    mockarty__coordinator__v1__pull_tasks_request__pack(&rq, buf);
    mk_grpc_stream_t *s;
    mk_err_t err;
    if (mk_grpc_stream_start(r->ch, SVC "PullTasks", &r->md, 0, &s, &err) != 0) {
        note_error(r, "task stream: %s", err.msg, NULL);
        return -1;
    }
    if (mk_grpc_stream_send(s, buf, n, &err) != 0 || mk_grpc_stream_close_send(s) != 0) {
        mk_grpc_stream_free(s);
        return -1;
    }
    pthread_mutex_lock(&r->mu);
    r->pull = s;
    r->pull_live = true;
    pthread_mutex_unlock(&r->mu);
    if (pthread_create(th, NULL, pull_main, r) != 0) {
        pthread_mutex_lock(&r->mu);
        r->pull = NULL;
        r->pull_live = false;
        pthread_mutex_unlock(&r->mu);
        mk_grpc_stream_free(s);
        return -1;
    }
    return 0;
}

static void close_pull(runner_t *r, pthread_t th)
{
    pthread_mutex_lock(&r->mu);
    mk_grpc_stream_t *s = r->pull;
    pthread_mutex_unlock(&r->mu);
    if (s)
        mk_grpc_stream_cancel(s);
    pthread_join(th, NULL);
    pthread_mutex_lock(&r->mu);
    r->pull = NULL;
    pthread_mutex_unlock(&r->mu);
    mk_grpc_stream_free(s);
}

/* 0 fine; 1 the coordinator forgot us or is unreachable (register again). */
static int heartbeat(runner_t *r)
{
    char *ids[MAX_TASKS];
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < MAX_TASKS; i++)
        if (r->tasks[i].used)
            ids[n++] = strdup(r->tasks[i].id);
    int free_slots = (int)r->cfg.max_concurrent - r->running;
    pthread_mutex_unlock(&r->mu);
    Mockarty__Coordinator__V1__HeartbeatRequest rq =
        MOCKARTY__COORDINATOR__V1__HEARTBEAT_REQUEST__INIT;
    rq.runner_id = r->runner_id;
    rq.n_running_task_ids = n;
    rq.running_task_ids = ids;
    rq.free_slots = free_slots > 0 ? free_slots : 0;
    uint8_t *resp = NULL;
    size_t len = 0;
    char msg[512];
    int code = call(r, "Heartbeat", &rq.base, &resp, &len, msg, sizeof msg);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    if (code != MK_GRPC_OK) {
        note_error(r, "heartbeat: %s", msg, NULL);
        free(resp);
        return 1;
    }
    Mockarty__Coordinator__V1__HeartbeatResponse *rs =
        mockarty__coordinator__v1__heartbeat_response__unpack(NULL, len, resp);
    free(resp);
    pthread_mutex_lock(&r->mu);
    for (size_t k = 0; rs && k < rs->n_cancel_task_ids; k++)
        for (size_t i = 0; i < MAX_TASKS; i++)
            if (r->tasks[i].used && strcmp(r->tasks[i].id, rs->cancel_task_ids[k]) == 0) {
                atomic_store(&r->tasks[i].cancel, true);
                if (r->tasks[i].lg)
                    mk_loadgen_stop(r->tasks[i].lg);
            }
    pthread_mutex_unlock(&r->mu);
    if (rs)
        mockarty__coordinator__v1__heartbeat_response__free_unpacked(rs, NULL);
    return 0;
}

/* ---- dashboard ----------------------------------------------------------------------------- */

static void reply(mk_httpd_req_t *req, int status, const char *type, const char *body)
{
    mk_httpd_add_header(req, MK_STR_LIT("Content-Type"), mk_str_of(type));
    mk_httpd_respond(req, status, mk_str_of(body));
}

static void dashboard(void *ud, mk_httpd_req_t *req)
{
    runner_t *r = ud;
    mk_request_t v;
    mk_httpd_req_view(req, &v);
    mk_buf_t b;
    mk_buf_init(&b, 0);
    pthread_mutex_lock(&r->mu);
    const char *coord = r->connected ? "up" : "down";
    if (mk_str_eq(v.path, MK_STR_LIT("/health"))) {
        json_t *h = json_pack("{s:s, s:s, s:s, s:{s:{s:s, s:s, s:s, s:s}, s:{s:s, s:i, s:i}}}",
                              "status", r->connected ? "healthy" : "degraded", "version", VERSION,
                              "name", r->cfg.name, "components", "coordinator", "status", coord,
                              "address", r->cfg.coordinator, "runnerId", r->runner_id, "error",
                              r->last_error, "tasks", "status", "up", "running", r->running,
                              "maxConcurrent", (int)r->cfg.max_concurrent);
        char *t = json_dumps(h, JSON_COMPACT);
        json_decref(h);
        pthread_mutex_unlock(&r->mu);
        reply(req, r->connected ? 200 : 503, "application/json", t ? t : "{}");
        free(t);
    } else if (mk_str_eq(v.path, MK_STR_LIT("/metrics"))) {
        mk_buf_appendf(&b,
                       "# HELP runner_active_tasks Tasks running now\n# TYPE runner_active_tasks "
                       "gauge\nrunner_active_tasks %d\n"
                       "# HELP runner_max_concurrent MAX_CONCURRENT\n# TYPE runner_max_concurrent "
                       "gauge\nrunner_max_concurrent %d\n"
                       "# HELP runner_coordinator_up 1 when registered with the coordinator\n"
                       "# TYPE runner_coordinator_up gauge\nrunner_coordinator_up %d\n"
                       "# HELP runner_tasks_total Tasks finished, by outcome\n"
                       "# TYPE runner_tasks_total counter\n"
                       "runner_tasks_total{outcome=\"succeeded\"} %llu\n"
                       "runner_tasks_total{outcome=\"failed\"} %llu\n"
                       "runner_tasks_total{outcome=\"cancelled\"} %llu\n"
                       "# HELP runner_registrations_total Registrations with the coordinator\n"
                       "# TYPE runner_registrations_total counter\n"
                       "runner_registrations_total %llu\n",
                       r->running, (int)r->cfg.max_concurrent, r->connected ? 1 : 0,
                       (unsigned long long)r->succeeded, (unsigned long long)r->failed,
                       (unsigned long long)r->cancelled, (unsigned long long)r->registrations);
        pthread_mutex_unlock(&r->mu);
        reply(req, 200, "text/plain; version=0.0.4", b.data ? b.data : "");
    } else if (mk_str_eq(v.path, MK_STR_LIT("/"))) {
        mk_buf_appendf(&b,
                       "<!doctype html><html><head><meta charset=\"utf-8\"><title>mockarty-runner "
                       "%s</title><meta http-equiv=\"refresh\" content=\"2\"><style>body{font-"
                       "family:sans-serif}td,th{padding:2px 8px;text-align:left}</style></head>"
                       "<body><h1>mockarty-runner</h1><p>coordinator %s: <b>%s</b>, runner id "
                       "%s, %d of %d slots busy; finished: %llu succeeded, %llu failed, %llu "
                       "cancelled</p><table><tr><th>task</th><th>attempt</th><th>namespace</th>"
                       "<th>collection</th><th>progress</th><th>running for</th></tr>",
                       r->cfg.name, r->cfg.coordinator, coord,
                       r->runner_id[0] ? r->runner_id : "none", r->running,
                       (int)r->cfg.max_concurrent, (unsigned long long)r->succeeded,
                       (unsigned long long)r->failed, (unsigned long long)r->cancelled);
        for (size_t i = 0; i < MAX_TASKS; i++) {
            const task_t *t = &r->tasks[i];
            if (t->used && t->perf)
                /* The run's name is user text: not shown, the task id says which. */
                mk_buf_appendf(&b,
                               "<tr><td>%s</td><td>%d</td><td>%s</td><td>load test</td>"
                               "<td>%.0f %%</td><td>%.1f s</td></tr>",
                               t->id, t->attempt, t->ns, t->perf_pct,
                               (double)(now_ms() - t->started_ms) / 1000.0);
            else if (t->used)
                /* Ids and namespaces are [A-Za-z0-9_.-]; the collection name is user text. */
                mk_buf_appendf(&b,
                               "<tr><td>%s</td><td>%d</td><td>%s</td><td>%zu requests</td>"
                               "<td>%zu/%zu</td><td>%.1f s</td></tr>",
                               t->id, t->attempt, t->ns, t->total, t->done, t->total,
                               (double)(now_ms() - t->started_ms) / 1000.0);
        }
        mk_buf_appendf(&b, "</table></body></html>");
        pthread_mutex_unlock(&r->mu);
        reply(req, 200, "text/html; charset=utf-8", b.data ? b.data : "");
    } else {
        pthread_mutex_unlock(&r->mu);
        reply(req, 404, "application/json", "{\"error\":\"not found\"}");
    }
    mk_buf_free(&b);
    mk_request_release(&v);
}

/* ---- main ---------------------------------------------------------------------------------- */

static void set_disconnected(runner_t *r)
{
    pthread_mutex_lock(&r->mu);
    r->connected = false;
    pthread_mutex_unlock(&r->mu);
}

int main(int argc, char **argv)
{
    runner_t r;
    mk_err_t err;
    const char *config_path = NULL;
    bool help = false;
    memset(&r, 0, sizeof r);
    /* The script sandbox's fork server starts before any thread. */
    if (mk_apitest_init(&err) != 0) {
        fprintf(stderr, "mockarty-runner: script sandbox: %s\n", err.msg);
        return 1;
    }
    if (mk_config_parse_args(argc, argv, &config_path, &help, &err) != 0) {
        fprintf(stderr, "mockarty-runner: %s\n", err.msg);
        return 2;
    }
    if (help) {
        mk_buf_t out;
        mk_buf_init(&out, 0);
        mk_config_usage(spec, NSPEC, &out);
        printf("Usage: mockarty-runner [--config FILE]\n\nSettings (environment or YAML "
               "file):\n%s",
               out.data ? out.data : "");
        mk_buf_free(&out);
        return 0;
    }
    if (mk_config_load(spec, NSPEC, &r.cfg, config_path, environ, &err) != 0) {
        fprintf(stderr, "mockarty-runner: configuration: %s\n", err.msg);
        return 2;
    }
    if (r.cfg.name == NULL) {
        char host[256] = "runner";
        gethostname(host, sizeof host - 1);
        r.cfg.name = strdup(host);
    }
    pthread_mutex_init(&r.mu, NULL);
    if (r.cfg.token && r.cfg.token[0]) {
        char auth[1024];
        snprintf(auth, sizeof auth, "Bearer %s", r.cfg.token);
        mk_grpc_md_add(&r.md, "authorization", auth, strlen(auth));
    }
    mk_grpc_tls_opts_t tls = {.cert_file = r.cfg.tls_cert,
                              .key_file = r.cfg.tls_key,
                              .ca_file = r.cfg.tls_ca,
                              .insecure_skip_verify = r.cfg.tls_insecure};
    mk_grpc_channel_opts_t co = {
        .target = r.cfg.coordinator, .tls = r.cfg.tls ? &tls : NULL, .keepalive_ms = 30000};
    int status = 0;
    mk_httpd_t *httpd = NULL;
    signal(SIGPIPE, SIG_IGN);
    if (mk_grpc_channel_new(&co, &r.ch, &err) != 0) {
        fprintf(stderr, "mockarty-runner: coordinator channel: %s\n", err.msg);
        status = 2;
        goto out;
    }
    mk_httpd_config_t hc = {.host = r.cfg.http_host, .port = r.cfg.http_port, .workers = 1};
    if (mk_httpd_new(&hc, dashboard, &r, &httpd, &err) != 0 || mk_httpd_start(httpd, &err) != 0) {
        fprintf(stderr, "mockarty-runner: dashboard: %s\n", err.msg);
        status = 1;
        goto out;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    printf("mockarty-runner %s: %s, coordinator %s, dashboard on port %d\n", VERSION, r.cfg.name,
           r.cfg.coordinator, mk_httpd_port(httpd));
    fflush(stdout);
    /* Register, open the task stream, heartbeat; on any loss, back off and start again. */
    int backoff = 500;
    while (!stopping) {
        int rc = register_node(&r);
        if (rc == 2) {
            status = 2;
            break;
        }
        pthread_t pull;
        if (rc != 0 || open_pull(&r, &pull) != 0) {
            set_disconnected(&r);
            sleep_ms(backoff);
            backoff = backoff < 10000 ? backoff * 2 : 10000;
            continue;
        }
        backoff = 500;
        while (!stopping) {
            pthread_mutex_lock(&r.mu);
            bool live = r.pull_live;
            int every = r.heartbeat_ms;
            for (size_t i = 0; i < MAX_TASKS; i++)
                if (r.tasks[i].used && r.tasks[i].perf && every > 250)
                    every = 250; /* a stop must reach a load test within a second */
            pthread_mutex_unlock(&r.mu);
            if (!live || heartbeat(&r) != 0)
                break;
            sleep_ms(every);
        }
        close_pull(&r, pull);
        set_disconnected(&r);
        if (!stopping)
            sleep_ms(backoff);
    }
    /* Running tasks get a moment to report after a stop signal. */
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&r.mu);
        int running = r.running;
        pthread_mutex_unlock(&r.mu);
        if (running == 0)
            break;
        usleep(50 * 1000);
    }
out:
    mk_httpd_stop(httpd);
    mk_httpd_free(httpd);
    mk_grpc_channel_free(r.ch);
    mk_grpc_md_clear(&r.md);
    mk_config_free(spec, NSPEC, &r.cfg);
    return status;
}
