/* The coordinator over real gRPC (our client) on SQLite: token scopes at registration, a task
 * streamed to a runner, progress and results accepted only from the owning attempt, and runner
 * ids usable only with the token that registered them. */
#include "coordinator/coordinator.h"
#include "coordinator.pb-c.h"
#include "mock/mock.h"
#include "sqlite/sqlite.h"
#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SVC "/mockarty.coordinator.v1.Coordinator/"

static char path[256];
static mk_repo_t *repo;
static mk_identity_t *identity;
static mk_coord_t *coord;
static mk_grpc_channel_t *ch;
static char admin_token[128], team_token[128];

static void mint(const char *body_text, char *out)
{
    mk_identity_principal_t boot = {.kind = MK_PRINCIPAL_BOOTSTRAP, .admin = true};
    json_t *body = json_loads(body_text, 0, NULL);
    char *secret = NULL;
    json_t *info = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_identity_token_create(identity, &boot, body, 1, &secret, &info, &err), 0);
    snprintf(out, 128, "%s", secret ? secret : "");
    free(secret);
    json_decref(info);
    json_decref(body);
}

static void auth(mk_grpc_mdlist_t *md, const char *token)
{
    char v[160];
    snprintf(v, sizeof v, "Bearer %s", token);
    mk_grpc_md_add(md, "authorization", v, strlen(v));
}

/* A unary call with the request bytes buf; returns the status code, msg (512 bytes) the status
 * message. */
static int unary_raw(const char *method, const char *token, const uint8_t *buf, size_t n,
                     uint8_t **resp, size_t *len, char *msg)
{
    mk_grpc_mdlist_t md = {0};
    if (token)
        auth(&md, token);
    char p[128];
    snprintf(p, sizeof p, SVC "%s", method);
    mk_grpc_status_t st = {0};
    mk_err_t err;
    *resp = NULL;
    int code = mk_grpc_unary(ch, p, &md, buf, n, 5000, resp, len, &st, &err);
    snprintf(msg, 512, "%s", st.message ? st.message : "");
    mk_grpc_status_clear(&st);
    mk_grpc_md_clear(&md);
    return code;
}

/* A unary call with the request req packed. */
static int unary(const char *method, const char *token, const ProtobufCMessage *req, uint8_t **resp,
                 size_t *len, char *msg)
{
    size_t n = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(n ? n : 1);
    protobuf_c_message_pack(req, buf);
    int code = unary_raw(method, token, buf, n, resp, len, msg);
    free(buf);
    return code;
}

/* Registers; returns the code and fills id (on OK). */
static int reg(const char *token, const char *name, bool shared, const char *ns, const char *cap,
               char *id, char *msg)
{
    char *caps[] = {(char *)cap};
    Mockarty__Coordinator__V1__RegisterRequest rq =
        MOCKARTY__COORDINATOR__V1__REGISTER_REQUEST__INIT;
    rq.name = (char *)name;
    rq.shared = shared;
    rq.namespace_ = (char *)(ns ? ns : "");
    rq.n_capabilities = 1;
    rq.capabilities = caps;
    rq.max_concurrent = 1;
    uint8_t *resp;
    size_t len;
    int code = unary("RegisterNode", token, &rq.base, &resp, &len, msg);
    if (code == MK_GRPC_OK) {
        Mockarty__Coordinator__V1__RegisterResponse *rs =
            mockarty__coordinator__v1__register_response__unpack(NULL, len, resp);
        MK_CHECK(rs != NULL);
        if (rs) {
            snprintf(id, 40, "%s", rs->runner_id);
            MK_CHECK(rs->shared == shared);
            mockarty__coordinator__v1__register_response__free_unpacked(rs, NULL);
        }
    }
    free(resp);
    return code;
}

static void test_scopes(void)
{
    char id[40], msg[512];
    MK_CHECK_INT(reg(team_token, "r", true, NULL, "api_test", id, msg), MK_GRPC_PERMISSION_DENIED);
    MK_CHECK(strstr(msg, "SHARED=true needs an admin-scoped integration token") != NULL);
    MK_CHECK(strstr(msg, "team-a") != NULL);
    MK_CHECK_INT(reg(team_token, "r", false, "team-b", "api_test", id, msg),
                 MK_GRPC_PERMISSION_DENIED);
    MK_CHECK_INT(reg(NULL, "r", true, NULL, "api_test", id, msg), MK_GRPC_UNAUTHENTICATED);
    MK_CHECK_INT(reg("mki_unknown", "r", true, NULL, "api_test", id, msg), MK_GRPC_UNAUTHENTICATED);
    MK_CHECK_INT(reg(admin_token, "r", true, NULL, "teleport", id, msg), MK_GRPC_INVALID_ARGUMENT);
    MK_CHECK(strstr(msg, "teleport") != NULL);
    MK_CHECK_INT(reg(admin_token, "r", false, NULL, "api_test", id, msg), MK_GRPC_INVALID_ARGUMENT);
    MK_CHECK_INT(reg(admin_token, "shared-1", true, NULL, "api_test", id, msg), MK_GRPC_OK);
    /* a namespace token without NAMESPACE gets its token's namespace */
    MK_CHECK_INT(reg(team_token, "team-1", false, NULL, "api_test", id, msg), MK_GRPC_OK);
    json_t *runners = mk_queue_runners(mk_coord_queue(coord), "runner");
    size_t i;
    json_t *r;
    bool seen = false;
    json_array_foreach(runners, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "id")), id) == 0) {
            seen = true;
            MK_CHECK_STR(json_string_value(json_object_get(r, "namespace")), "team-a");
        }
    }
    MK_CHECK(seen);
    json_decref(runners);
    /* another token cannot speak for this runner */
    Mockarty__Coordinator__V1__HeartbeatRequest hb =
        MOCKARTY__COORDINATOR__V1__HEARTBEAT_REQUEST__INIT;
    hb.runner_id = id;
    uint8_t *resp;
    size_t len;
    MK_CHECK_INT(unary("Heartbeat", admin_token, &hb.base, &resp, &len, msg),
                 MK_GRPC_PERMISSION_DENIED);
    free(resp);
    MK_CHECK_INT(unary("Heartbeat", team_token, &hb.base, &resp, &len, msg), MK_GRPC_OK);
    free(resp);
    hb.runner_id = (char *)"runner-nope";
    MK_CHECK_INT(unary("Heartbeat", team_token, &hb.base, &resp, &len, msg), MK_GRPC_NOT_FOUND);
    free(resp);
}

/* Each unary method names its request type when the bytes do not decode, after authenticating
 * the caller; a runner id is refused with a message that says why. */
static void test_refusals(void)
{
    static const struct {
        const char *method, *type;
    } calls[] = {{"RegisterNode", "RegisterRequest"},
                 {"Heartbeat", "HeartbeatRequest"},
                 {"PullTasks", "PullTasksRequest"},
                 {"ReportResult", "TaskResult"}};
    static const uint8_t junk[] = {0x0a, 0x05, 'a'}; /* field 1: 5 bytes announced, 1 sent */
    char msg[512], want[64];
    uint8_t *resp;
    size_t len;
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
        MK_CHECK_INT(unary_raw(calls[i].method, admin_token, junk, sizeof junk, &resp, &len, msg),
                     MK_GRPC_INVALID_ARGUMENT);
        free(resp);
        snprintf(want, sizeof want, "%s does not decode", calls[i].type);
        MK_CHECK_STR(msg, want);
        MK_CHECK_INT(unary_raw(calls[i].method, NULL, junk, sizeof junk, &resp, &len, msg),
                     MK_GRPC_UNAUTHENTICATED);
        free(resp);
        MK_CHECK_STR(msg, "missing metadata \"authorization: Bearer mki_...\" (API_TOKEN)");
    }
    char id[40];
    MK_CHECK_INT(reg(team_token, "refusals", false, NULL, "api_test", id, msg), MK_GRPC_OK);
    char other[128];
    snprintf(other, sizeof other, "runner '%s' was registered with another token", id);
    Mockarty__Coordinator__V1__HeartbeatRequest hb =
        MOCKARTY__COORDINATOR__V1__HEARTBEAT_REQUEST__INIT;
    Mockarty__Coordinator__V1__PullTasksRequest pr =
        MOCKARTY__COORDINATOR__V1__PULL_TASKS_REQUEST__INIT;
    hb.runner_id = pr.runner_id = id;
    MK_CHECK_INT(unary("Heartbeat", admin_token, &hb.base, &resp, &len, msg),
                 MK_GRPC_PERMISSION_DENIED);
    free(resp);
    MK_CHECK_STR(msg, other);
    MK_CHECK_INT(unary("PullTasks", admin_token, &pr.base, &resp, &len, msg),
                 MK_GRPC_PERMISSION_DENIED);
    free(resp);
    MK_CHECK_STR(msg, other);
    hb.runner_id = pr.runner_id = NULL; /* absent: the empty id, never registered */
    MK_CHECK_INT(unary("Heartbeat", team_token, &hb.base, &resp, &len, msg), MK_GRPC_NOT_FOUND);
    free(resp);
    MK_CHECK_STR(msg, "runner '' is not registered (register again)");
    MK_CHECK_INT(unary("PullTasks", team_token, &pr.base, &resp, &len, msg), MK_GRPC_NOT_FOUND);
    free(resp);
    MK_CHECK_STR(msg, "runner '' is not registered (register again)");
}

static bool result(const char *task, int attempt, const char **why_out)
{
    static char why[256];
    Mockarty__Coordinator__V1__TaskResult tr = MOCKARTY__COORDINATOR__V1__TASK_RESULT__INIT;
    tr.task_id = (char *)task;
    tr.attempt = attempt;
    tr.outcome = MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_SUCCEEDED;
    tr.result_json = (char *)"{\"status\":\"completed\"}";
    uint8_t *resp;
    size_t len;
    char msg[512];
    MK_CHECK_INT(unary("ReportResult", admin_token, &tr.base, &resp, &len, msg), MK_GRPC_OK);
    Mockarty__Coordinator__V1__ResultAck *ack =
        mockarty__coordinator__v1__result_ack__unpack(NULL, len, resp);
    free(resp);
    bool ok = ack && ack->accepted;
    snprintf(why, sizeof why, "%s", ack && ack->reason ? ack->reason : "");
    *why_out = why;
    if (ack)
        mockarty__coordinator__v1__result_ack__free_unpacked(ack, NULL);
    return ok;
}

static void send_progress(mk_grpc_stream_t *s, const char *task, int attempt, int64_t seq)
{
    Mockarty__Coordinator__V1__ProgressEvent ev = MOCKARTY__COORDINATOR__V1__PROGRESS_EVENT__INIT;
    ev.task_id = (char *)task;
    ev.attempt = attempt;
    ev.seq = seq;
    ev.event_json = (char *)"{\"type\":\"request_done\"}";
    uint8_t buf[256];
    size_t n = mockarty__coordinator__v1__progress_event__pack(&ev, buf);
    MK_CHECK_INT(mk_grpc_stream_send(s, buf, n, NULL), 0);
}

static void test_task_flow(void)
{
    char id[40], msg[512];
    MK_CHECK_INT(reg(admin_token, "shared-2", true, NULL, "api_test", id, msg), MK_GRPC_OK);
    mk_grpc_mdlist_t md = {0};
    auth(&md, admin_token);
    mk_grpc_stream_t *pull;
    mk_err_t err;
    MK_CHECK_INT(mk_grpc_stream_start(ch, SVC "PullTasks", &md, 10000, &pull, &err), 0);
    Mockarty__Coordinator__V1__PullTasksRequest pr =
        MOCKARTY__COORDINATOR__V1__PULL_TASKS_REQUEST__INIT;
    pr.runner_id = id;
    uint8_t buf[128];
    size_t n = mockarty__coordinator__v1__pull_tasks_request__pack(&pr, buf);
    MK_CHECK_INT(mk_grpc_stream_send(pull, buf, n, NULL), 0);
    mk_grpc_stream_close_send(pull);
    /* the task is submitted after the stream is open: the queue's notification sends it */
    usleep(200 * 1000);
    char task[40];
    MK_CHECK_INT(mk_queue_submit(mk_coord_queue(coord), "api_test", "team-b", "{\"x\":1}", 0,
                                 mk_mock_now_ms(), task, &err),
                 0);
    uint8_t *msgb = NULL;
    size_t len = 0;
    MK_CHECK_INT(mk_grpc_stream_recv(pull, &msgb, &len), 1);
    Mockarty__Coordinator__V1__Task *t = mockarty__coordinator__v1__task__unpack(NULL, len, msgb);
    free(msgb);
    MK_CHECK(t != NULL);
    if (t == NULL)
        return;
    MK_CHECK_STR(t->task_id, task);
    MK_CHECK_STR(t->namespace_, "team-b");
    MK_CHECK_STR(t->payload_json, "{\"x\":1}");
    int attempt = t->attempt;
    MK_CHECK_INT(attempt, 1);
    /* progress: a stale attempt and a repeated seq are dropped */
    mk_grpc_stream_t *ps;
    MK_CHECK_INT(mk_grpc_stream_start(ch, SVC "ReportProgress", &md, 5000, &ps, &err), 0);
    send_progress(ps, task, attempt, 1);
    send_progress(ps, task, attempt + 1, 2);
    send_progress(ps, task, attempt, 1);
    send_progress(ps, task, attempt, 2);
    mk_grpc_stream_close_send(ps);
    MK_CHECK_INT(mk_grpc_stream_recv(ps, &msgb, &len), 1);
    Mockarty__Coordinator__V1__ProgressAck *ack =
        mockarty__coordinator__v1__progress_ack__unpack(NULL, len, msgb);
    free(msgb);
    MK_CHECK(ack && ack->accepted == 2 && ack->dropped == 2);
    if (ack)
        mockarty__coordinator__v1__progress_ack__free_unpacked(ack, NULL);
    MK_CHECK_INT(mk_grpc_stream_finish(ps, NULL), MK_GRPC_OK);
    mk_grpc_stream_free(ps);
    json_t *events = mk_coord_events(coord, task);
    MK_CHECK_INT((int)json_array_size(events), 2);
    json_decref(events);
    json_t *tj = mk_queue_task(mk_coord_queue(coord), task);
    MK_CHECK_STR(json_string_value(json_object_get(tj, "state")), "running");
    json_decref(tj);
    /* results: only the owning attempt, only once */
    const char *why;
    MK_CHECK(!result(task, attempt + 1, &why));
    MK_CHECK(why[0] != '\0');
    MK_CHECK(result(task, attempt, &why));
    MK_CHECK(!result(task, attempt, &why));
    MK_CHECK(strstr(why, "finished") != NULL);
    tj = mk_queue_task(mk_coord_queue(coord), task);
    MK_CHECK_STR(json_string_value(json_object_get(tj, "state")), "succeeded");
    MK_CHECK_STR(json_string_value(json_object_get(json_object_get(tj, "result"), "status")),
                 "completed");
    json_decref(tj);
    mockarty__coordinator__v1__task__free_unpacked(t, NULL);
    mk_grpc_stream_cancel(pull);
    mk_grpc_stream_free(pull);
    mk_grpc_md_clear(&md);
}

/* The cancel list of one heartbeat of runner id running task (NULL: running nothing), as a
 * new JSON array. */
static json_t *heartbeat_cancels(const char *id, const char *task)
{
    char *running[] = {(char *)task};
    Mockarty__Coordinator__V1__HeartbeatRequest hb =
        MOCKARTY__COORDINATOR__V1__HEARTBEAT_REQUEST__INIT;
    hb.runner_id = (char *)id;
    hb.n_running_task_ids = task ? 1 : 0;
    hb.running_task_ids = running;
    uint8_t *resp;
    size_t len;
    char msg[512];
    json_t *out = json_array();
    MK_CHECK_INT(unary("Heartbeat", admin_token, &hb.base, &resp, &len, msg), MK_GRPC_OK);
    Mockarty__Coordinator__V1__HeartbeatResponse *rs =
        mockarty__coordinator__v1__heartbeat_response__unpack(NULL, len, resp);
    free(resp);
    for (size_t i = 0; rs && i < rs->n_cancel_task_ids; i++)
        json_array_append_new(out, json_string(rs->cancel_task_ids[i]));
    if (rs)
        mockarty__coordinator__v1__heartbeat_response__free_unpacked(rs, NULL);
    return out;
}

/* A load test's stop: listed to the runner that runs it (not to one that does not), the task
 * stays running until its runner reports, the cancelled outcome keeps the measured result, and
 * the stop is forgotten then. */
static void test_stop_task(void)
{
    char id[40], other[40], msg[512], task[40];
    mk_err_t err;
    mk_queue_t *q = mk_coord_queue(coord);
    MK_CHECK_INT(reg(admin_token, "perf-1", true, NULL, "performance", id, msg), MK_GRPC_OK);
    MK_CHECK_INT(reg(admin_token, "perf-2", true, NULL, "performance", other, msg), MK_GRPC_OK);
    MK_CHECK_INT(mk_queue_submit(q, "performance", "team-b", "{}", 0, mk_mock_now_ms(), task, &err),
                 0);
    mk_queue_grant_t g;
    MK_CHECK_INT(mk_queue_next(q, id, mk_mock_now_ms(), &g, &err), 0);
    MK_CHECK_STR(g.task_id, task);
    mk_queue_grant_release(&g);
    MK_CHECK(mk_queue_started(q, task, 1, mk_mock_now_ms()));
    json_t *c = heartbeat_cancels(id, task);
    MK_CHECK_INT((int)json_array_size(c), 0);
    json_decref(c);
    MK_CHECK_INT(mk_coord_stop_task(coord, task), 0);
    MK_CHECK_INT(mk_coord_stop_task(coord, task), 0); /* twice is once */
    c = heartbeat_cancels(other, NULL);
    MK_CHECK_INT((int)json_array_size(c), 0);
    json_decref(c);
    c = heartbeat_cancels(id, task);
    MK_CHECK_INT((int)json_array_size(c), 1);
    MK_CHECK_STR(json_string_value(json_array_get(c, 0)), task);
    json_decref(c);
    json_t *tj = mk_queue_task(q, task);
    MK_CHECK_STR(json_string_value(json_object_get(tj, "state")), "running");
    json_decref(tj);
    Mockarty__Coordinator__V1__TaskResult tr = MOCKARTY__COORDINATOR__V1__TASK_RESULT__INIT;
    tr.task_id = task;
    tr.attempt = 1;
    tr.outcome = MOCKARTY__COORDINATOR__V1__TASK_OUTCOME__TASK_OUTCOME_CANCELLED;
    tr.result_json = (char *)"{\"stats\":{\"reqs\":7}}";
    uint8_t *resp;
    size_t len;
    MK_CHECK_INT(unary("ReportResult", admin_token, &tr.base, &resp, &len, msg), MK_GRPC_OK);
    free(resp);
    tj = mk_queue_task(q, task);
    MK_CHECK_STR(json_string_value(json_object_get(tj, "state")), "cancelled");
    MK_CHECK_INT(json_integer_value(json_object_get(
                     json_object_get(json_object_get(tj, "result"), "stats"), "reqs")),
                 7);
    json_decref(tj);
    /* the stop is forgotten: a runner still listing the task hears of it once at most (from the
     * queue: it no longer runs), not twice */
    c = heartbeat_cancels(id, task);
    MK_CHECK(json_array_size(c) <= 1);
    json_decref(c);
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/mk-coord-test-%d.db", (int)getpid());
    mk_err_t err;
    MK_CHECK_INT(mk_sqlite_repo_open(path, &repo, &err), 0);
    mk_identity_config_t ic = {0};
    MK_CHECK_INT(mk_identity_new(repo, &ic, &identity, &err), 0);
    mint("{\"name\":\"shared\",\"kind\":\"integration\"}", admin_token);
    mint("{\"name\":\"team\",\"kind\":\"integration\",\"namespace\":\"team-a\","
         "\"role\":\"editor\"}",
         team_token);
    mk_coord_config_t cc = {.host = "127.0.0.1", .port = 0};
    MK_CHECK_INT(mk_coord_new(&cc, repo, identity, &coord, &err), 0);
    MK_CHECK_INT(mk_coord_start(coord, &err), 0);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", mk_coord_port(coord));
    mk_grpc_channel_opts_t co = {.target = target};
    MK_CHECK_INT(mk_grpc_channel_new(&co, &ch, &err), 0);
    MK_RUN(test_scopes);
    MK_RUN(test_refusals);
    MK_RUN(test_task_flow);
    MK_RUN(test_stop_task);
    mk_grpc_channel_free(ch);
    mk_coord_free(coord);
    mk_identity_free(identity);
    mk_repo_free(repo);
    unlink(path);
    char extra[300];
    snprintf(extra, sizeof extra, "%s-wal", path);
    unlink(extra);
    snprintf(extra, sizeof extra, "%s-shm", path);
    unlink(extra);
    return mk_testing_done();
}
