/* The task queue against a real SQLite repository: the state machine, dispatch by capability and
 * scope, fairness, slots, heartbeats and requeues, attempts that no longer own their task, task
 * timeouts, cancellation, and a restart that keeps everything. */
#include "queue/queue.h"
#include "sqlite/sqlite.h"
#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[256];

static mk_repo_t *open_repo(void)
{
    mk_repo_t *r = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_sqlite_repo_open(path, &r, &err), 0);
    return r;
}

static mk_queue_t *open_queue(mk_repo_t *repo, int64_t now)
{
    mk_queue_config_t cfg = {
        .max_attempts = 2, .heartbeat_timeout_ms = 1000, .task_timeout_ms = 5000};
    mk_queue_t *q = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_queue_open(repo, &cfg, now, &q, &err), 0);
    return q;
}

static void reg(mk_queue_t *q, const char *name, bool shared, const char *ns, int slots, char *id,
                int64_t now)
{
    const char *caps[] = {"api_test", "performance"};
    mk_queue_runner_info_t info = {.name = name,
                                   .capabilities = caps,
                                   .ncapabilities = 2,
                                   .shared = shared,
                                   .ns = ns,
                                   .max_concurrent = slots};
    mk_err_t err;
    MK_CHECK_INT(mk_queue_register(q, &info, now, id, &err), 0);
}

static const char *state(mk_queue_t *q, const char *id)
{
    static char buf[32];
    json_t *t = mk_queue_task(q, id);
    snprintf(buf, sizeof buf, "%s", t ? json_string_value(json_object_get(t, "state")) : "?");
    json_decref(t);
    return buf;
}

static void test_transitions(void)
{
    MK_CHECK(mk_task_transition_ok(MK_TASK_QUEUED, MK_TASK_ASSIGNED));
    MK_CHECK(mk_task_transition_ok(MK_TASK_ASSIGNED, MK_TASK_RUNNING));
    MK_CHECK(mk_task_transition_ok(MK_TASK_RUNNING, MK_TASK_QUEUED));
    MK_CHECK(mk_task_transition_ok(MK_TASK_RUNNING, MK_TASK_TIMED_OUT));
    MK_CHECK(!mk_task_transition_ok(MK_TASK_QUEUED, MK_TASK_RUNNING));
    MK_CHECK(!mk_task_transition_ok(MK_TASK_QUEUED, MK_TASK_SUCCEEDED));
    for (int s = MK_TASK_SUCCEEDED; s <= MK_TASK_TIMED_OUT; s++)
        for (int t = MK_TASK_QUEUED; t <= MK_TASK_TIMED_OUT; t++)
            MK_CHECK(!mk_task_transition_ok((mk_task_state_t)s, (mk_task_state_t)t));
}

static void test_dispatch_scope_and_fairness(void)
{
    unlink(path);
    mk_repo_t *repo = open_repo();
    mk_queue_t *q = open_queue(repo, 1000);
    mk_err_t err;
    char a1[40], a2[40], b1[40], shared[40], team[40];
    MK_CHECK_INT(mk_queue_submit(q, "api_test", "team-a", "{\"n\":1}", 0, 1001, a1, &err), 0);
    MK_CHECK_INT(mk_queue_submit(q, "api_test", "team-a", "{\"n\":2}", 0, 1002, a2, &err), 0);
    MK_CHECK_INT(mk_queue_submit(q, "api_test", "team-b", "{\"n\":3}", 0, 1003, b1, &err), 0);
    MK_CHECK_INT(mk_queue_submit(q, "", "team-b", "{}", 0, 1003, b1 + 0, &err), MK_EINVAL);
    reg(q, "team-runner", false, "team-b", 4, team, 1004);
    mk_queue_grant_t g;
    /* A namespace runner only ever receives its namespace's tasks. */
    MK_CHECK_INT(mk_queue_next(q, team, 1005, &g, &err), 0);
    MK_CHECK_STR(g.task_id, b1);
    MK_CHECK_STR(g.ns, "team-b");
    MK_CHECK_INT(g.attempt, 1);
    mk_queue_grant_release(&g);
    MK_CHECK_INT(mk_queue_next(q, team, 1006, &g, &err), MK_ENOTFOUND);
    /* A shared runner takes any; with one slot it takes one at a time. */
    reg(q, "shared-runner", true, NULL, 1, shared, 1007);
    MK_CHECK_INT(mk_queue_next(q, shared, 1008, &g, &err), 0);
    MK_CHECK_STR(g.task_id, a1);
    MK_CHECK_STR(g.payload_json, "{\"n\":1}");
    mk_queue_grant_release(&g);
    MK_CHECK_INT(mk_queue_next(q, shared, 1009, &g, &err), MK_ENOTFOUND);
    MK_CHECK(mk_queue_started(q, a1, 1, 1010));
    MK_CHECK_STR(state(q, a1), "running");
    const char *why = NULL;
    MK_CHECK(mk_queue_finish(q, a1, 1, MK_QUEUE_SUCCEEDED, NULL, "{\"ok\":true}", 1011, &why));
    MK_CHECK(!mk_queue_finish(q, a1, 1, MK_QUEUE_FAILED, "late", NULL, 1012, &why));
    MK_CHECK_STR(why, "task already finished");
    MK_CHECK_STR(state(q, a1), "succeeded");
    /* Fairness: with team-b busy and team-a idle, team-a's next task comes before newer ones. */
    char b2[40];
    MK_CHECK_INT(mk_queue_submit(q, "api_test", "team-b", "{}", 0, 1013, b2, &err), 0);
    MK_CHECK_INT(mk_queue_next(q, shared, 1014, &g, &err), 0);
    MK_CHECK_STR(g.task_id, a2);
    mk_queue_grant_release(&g);
    json_t *depths = mk_queue_depths(q);
    MK_CHECK_INT(json_integer_value(json_object_get(json_object_get(depths, "team-b"), "queued")),
                 1);
    MK_CHECK_INT(json_integer_value(json_object_get(json_object_get(depths, "team-b"), "active")),
                 1);
    json_decref(depths);
    mk_queue_free(q);
    mk_repo_free(repo);
}

static void test_lost_runner_and_attempts(void)
{
    unlink(path);
    mk_repo_t *repo = open_repo();
    mk_queue_t *q = open_queue(repo, 0);
    mk_err_t err;
    char t[40], r1[40], r2[40];
    MK_CHECK_INT(mk_queue_submit(q, "api_test", "ns", "{}", 0, 0, t, &err), 0);
    reg(q, "r1", true, NULL, 2, r1, 0);
    mk_queue_grant_t g;
    MK_CHECK_INT(mk_queue_next(q, r1, 10, &g, &err), 0);
    mk_queue_grant_release(&g);
    MK_CHECK(mk_queue_started(q, t, 1, 20));
    /* r1 goes silent: its task is requeued; the old attempt's result is refused. */
    mk_queue_tick(q, 2000);
    MK_CHECK_STR(state(q, t), "queued");
    reg(q, "r2", true, NULL, 2, r2, 2001);
    MK_CHECK_INT(mk_queue_next(q, r2, 2002, &g, &err), 0);
    MK_CHECK_INT(g.attempt, 2);
    mk_queue_grant_release(&g);
    const char *why = NULL;
    MK_CHECK(!mk_queue_finish(q, t, 1, MK_QUEUE_SUCCEEDED, NULL, "{}", 2003, &why));
    MK_CHECK_STR(why, "another attempt owns the task now");
    MK_CHECK(!mk_queue_owns(q, t, 1));
    MK_CHECK(mk_queue_owns(q, t, 2));
    /* r1 comes back: told to drop what it still runs. */
    json_t *cancel = NULL;
    const char *running[] = {t};
    MK_CHECK_INT(mk_queue_heartbeat(q, r1, running, 1, 2004, &cancel, &err), 0);
    MK_CHECK_INT(json_array_size(cancel), 1);
    MK_CHECK_STR(json_string_value(json_array_get(cancel, 0)), t);
    json_decref(cancel);
    /* r2 is lost too: attempts used up (2), the task fails with the reason. */
    mk_queue_tick(q, 4100);
    MK_CHECK_STR(state(q, t), "failed");
    json_t *task = mk_queue_task(q, t);
    MK_CHECK(strstr(json_string_value(json_object_get(task, "error")), "heartbeats") != NULL);
    json_decref(task);
    MK_CHECK_INT(mk_queue_heartbeat(q, "runner-nope", NULL, 0, 4200, &cancel, &err), MK_ENOTFOUND);
    mk_queue_free(q);
    mk_repo_free(repo);
}

/* A load test's runner is lost: the task fails at once, never handed to another runner (its load
 * already happened); a runner registering again fails its load test the same way. */
static void test_performance_never_requeued(void)
{
    unlink(path);
    mk_repo_t *repo = open_repo();
    mk_queue_t *q = open_queue(repo, 0);
    mk_err_t err;
    char t[40], t2[40], r1[40], r2[40];
    MK_CHECK_INT(mk_queue_submit(q, "performance", "ns", "{}", 0, 0, t, &err), 0);
    MK_CHECK_INT(mk_queue_submit(q, "performance", "ns", "{}", 0, 0, t2, &err), 0);
    reg(q, "r1", true, NULL, 1, r1, 0);
    reg(q, "r2", true, NULL, 1, r2, 0);
    mk_queue_grant_t g;
    MK_CHECK_INT(mk_queue_next(q, r1, 10, &g, &err), 0);
    MK_CHECK_STR(g.task_id, t);
    mk_queue_grant_release(&g);
    MK_CHECK_INT(mk_queue_next(q, r2, 10, &g, &err), 0);
    mk_queue_grant_release(&g);
    MK_CHECK(mk_queue_started(q, t, 1, 20));
    MK_CHECK(mk_queue_started(q, t2, 1, 20));
    const char *none[] = {NULL};
    json_t *cancel = NULL;
    MK_CHECK_INT(mk_queue_heartbeat(q, r2, none, 0, 1500, &cancel, &err), 0);
    json_decref(cancel);
    mk_queue_tick(q, 2000); /* r1 silent for 2 s, r2 heard 0.5 s ago */
    MK_CHECK_STR(state(q, t), "failed");
    json_t *task = mk_queue_task(q, t);
    MK_CHECK(strstr(json_string_value(json_object_get(task, "error")), "not run again") != NULL);
    MK_CHECK_INT(json_integer_value(json_object_get(task, "attempt")), 1);
    json_decref(task);
    MK_CHECK_INT(mk_queue_next(q, r2, 2001, &g, &err), MK_ENOTFOUND);
    reg(q, "r2", true, NULL, 1, r2, 2002); /* restarted: its load test is over too */
    MK_CHECK_STR(state(q, t2), "failed");
    MK_CHECK_INT(mk_queue_next(q, r2, 2003, &g, &err), MK_ENOTFOUND);
    mk_queue_free(q);
    mk_repo_free(repo);
}

/* Two shares of one load test never go to the same runner, even with free slots; another run's
 * share may. */
static void test_shares_on_different_runners(void)
{
    unlink(path);
    mk_repo_t *repo = open_repo();
    mk_queue_t *q = open_queue(repo, 0);
    mk_err_t err;
    char a0[40], a1[40], b0[40], r1[40], r2[40];
    MK_CHECK_INT(
        mk_queue_submit(q, "performance", "ns", "{\"runId\":\"A\",\"shard\":0}", 0, 0, a0, &err),
        0);
    MK_CHECK_INT(
        mk_queue_submit(q, "performance", "ns", "{\"runId\":\"A\",\"shard\":1}", 0, 1, a1, &err),
        0);
    MK_CHECK_INT(
        mk_queue_submit(q, "performance", "ns", "{\"runId\":\"B\",\"shard\":0}", 0, 2, b0, &err),
        0);
    reg(q, "r1", true, NULL, 3, r1, 0);
    mk_queue_grant_t g;
    MK_CHECK_INT(mk_queue_next(q, r1, 10, &g, &err), 0);
    MK_CHECK_STR(g.task_id, a0);
    mk_queue_grant_release(&g);
    MK_CHECK_INT(mk_queue_next(q, r1, 11, &g, &err), 0);
    MK_CHECK_STR(g.task_id, b0); /* not a1 */
    mk_queue_grant_release(&g);
    MK_CHECK_INT(mk_queue_next(q, r1, 12, &g, &err), MK_ENOTFOUND);
    mk_queue_free(q); /* the groups come back with the tasks after a restart */
    q = open_queue(repo, 13);
    reg(q, "r2", true, NULL, 3, r2, 14);
    MK_CHECK_INT(mk_queue_next(q, r2, 15, &g, &err), 0);
    MK_CHECK_STR(g.task_id, a1);
    mk_queue_grant_release(&g);
    mk_queue_free(q);
    mk_repo_free(repo);
}

static void test_timeout_cancel_and_restart(void)
{
    unlink(path);
    mk_repo_t *repo = open_repo();
    mk_queue_t *q = open_queue(repo, 0);
    mk_err_t err;
    char slow[40], queued[40], flying[40], r[40];
    MK_CHECK_INT(mk_queue_submit(q, "performance", "ns", "{}", 100, 0, slow, &err), 0);
    reg(q, "r", true, NULL, 4, r, 0);
    mk_queue_grant_t g;
    MK_CHECK_INT(mk_queue_next(q, r, 1, &g, &err), 0);
    MK_CHECK_INT(g.timeout_ms, 100);
    mk_queue_grant_release(&g);
    MK_CHECK(mk_queue_started(q, slow, 1, 2));
    json_t *cancel = NULL;
    MK_CHECK_INT(mk_queue_heartbeat(q, r, NULL, 0, 150, &cancel, &err), 0);
    json_decref(cancel);
    mk_queue_tick(q, 200);
    MK_CHECK_STR(state(q, slow), "timed_out");
    MK_CHECK_INT(mk_queue_heartbeat(q, r, NULL, 0, 210, &cancel, &err), 0);
    MK_CHECK_INT(json_array_size(cancel), 1);
    json_decref(cancel);
    /* Cancelling: a queued task at once; a finished one is a conflict. */
    MK_CHECK_INT(mk_queue_submit(q, "api_test", "ns", "{\"q\":1}", 0, 300, queued, &err), 0);
    MK_CHECK_INT(mk_queue_cancel(q, queued, 301, &err), 0);
    MK_CHECK_STR(state(q, queued), "cancelled");
    MK_CHECK_INT(mk_queue_cancel(q, queued, 302, &err), MK_ECONFLICT);
    MK_CHECK_INT(mk_queue_cancel(q, "task-nope", 302, &err), MK_ENOTFOUND);
    /* One in flight, then the admin restarts: everything is still there. */
    MK_CHECK_INT(mk_queue_submit(q, "api_test", "ns", "{\"f\":1}", 60000, 400, flying, &err), 0);
    MK_CHECK_INT(mk_queue_next(q, r, 401, &g, &err), 0);
    mk_queue_grant_release(&g);
    mk_queue_free(q);
    mk_repo_free(repo);
    repo = open_repo();
    q = open_queue(repo, 10000);
    MK_CHECK_STR(state(q, slow), "timed_out");
    MK_CHECK_STR(state(q, queued), "cancelled");
    MK_CHECK_STR(state(q, flying), "assigned");
    json_t *list = mk_queue_tasks(q, "ns");
    MK_CHECK_INT(json_array_size(list), 3);
    json_decref(list);
    /* Its runner does not come back within the heartbeat timeout: requeued, attempt 2 next. */
    mk_queue_tick(q, 10500);
    MK_CHECK_STR(state(q, flying), "assigned");
    mk_queue_tick(q, 11100);
    MK_CHECK_STR(state(q, flying), "queued");
    reg(q, "r-again", true, NULL, 1, r, 11200);
    MK_CHECK_INT(mk_queue_next(q, r, 11201, &g, &err), 0);
    MK_CHECK_STR(g.task_id, flying);
    MK_CHECK_INT(g.attempt, 2);
    MK_CHECK_STR(g.payload_json, "{\"f\":1}");
    mk_queue_grant_release(&g);
    const char *why;
    MK_CHECK(mk_queue_finish(q, flying, 2, MK_QUEUE_FAILED, "boom", "{\"r\":1}", 11300, &why));
    json_t *task = mk_queue_task(q, flying);
    MK_CHECK_STR(json_string_value(json_object_get(task, "error")), "boom");
    MK_CHECK_INT(json_integer_value(json_object_get(json_object_get(task, "result"), "r")), 1);
    json_decref(task);
    json_t *runners = mk_queue_runners(q, "runner");
    MK_CHECK_INT(json_array_size(runners), 1);
    json_decref(runners);
    mk_queue_free(q);
    mk_repo_free(repo);
}

/* Removing: only a finished task, gone from memory and from the database (a restart does not
 * bring it back); the others stay. */
static void test_remove_finished(void)
{
    unlink(path);
    mk_repo_t *repo = open_repo();
    mk_queue_t *q = open_queue(repo, 0);
    mk_err_t err;
    char a[40], b[40], c[40], r[40];
    MK_CHECK_INT(mk_queue_submit(q, "api_test", "ns", "{}", 0, 1, a, &err), 0);
    MK_CHECK_INT(mk_queue_submit(q, "api_test", "ns", "{}", 0, 2, b, &err), 0);
    MK_CHECK_INT(mk_queue_submit(q, "api_test", "ns", "{}", 0, 3, c, &err), 0);
    MK_CHECK_INT(mk_queue_remove(q, a, &err), MK_ECONFLICT); /* queued */
    reg(q, "r", true, NULL, 1, r, 4);
    mk_queue_grant_t g;
    MK_CHECK_INT(mk_queue_next(q, r, 5, &g, &err), 0);
    MK_CHECK_STR(g.task_id, a);
    MK_CHECK(mk_queue_started(q, a, 1, 6));
    MK_CHECK_INT(mk_queue_remove(q, a, &err), MK_ECONFLICT); /* running */
    const char *why;
    MK_CHECK(mk_queue_finish(q, a, 1, MK_QUEUE_SUCCEEDED, NULL, "{}", 7, &why));
    mk_queue_grant_release(&g);
    MK_CHECK_INT(mk_queue_cancel(q, c, 8, &err), 0);
    MK_CHECK_INT(mk_queue_remove(q, a, &err), 0);
    MK_CHECK_INT(mk_queue_remove(q, c, &err), 0);
    MK_CHECK_INT(mk_queue_remove(q, a, &err), MK_ENOTFOUND);
    MK_CHECK_STR(state(q, a), "?");
    json_t *list = mk_queue_tasks(q, NULL);
    MK_CHECK_INT(json_array_size(list), 1);
    MK_CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0), "id")), b);
    json_decref(list);
    mk_queue_free(q);
    mk_repo_free(repo);
    repo = open_repo();
    q = open_queue(repo, 10);
    list = mk_queue_tasks(q, NULL);
    MK_CHECK_INT(json_array_size(list), 1);
    json_decref(list);
    MK_CHECK_STR(state(q, b), "queued");
    MK_CHECK_STR(state(q, c), "?");
    mk_queue_free(q);
    mk_repo_free(repo);
}

static void test_reregister_requeues(void)
{
    unlink(path);
    mk_repo_t *repo = open_repo();
    mk_queue_t *q = open_queue(repo, 0);
    mk_err_t err;
    char t[40], r[40], r_new[40];
    MK_CHECK_INT(mk_queue_submit(q, "api_test", "ns", "{}", 0, 0, t, &err), 0);
    reg(q, "same-name", true, NULL, 1, r, 0);
    mk_queue_grant_t g;
    MK_CHECK_INT(mk_queue_next(q, r, 1, &g, &err), 0);
    mk_queue_grant_release(&g);
    reg(q, "same-name", true, NULL, 1, r_new, 2);
    MK_CHECK(strcmp(r, r_new) != 0);
    MK_CHECK_STR(state(q, t), "queued");
    mk_queue_runner_info_t bad = {.name = "x", .shared = false};
    MK_CHECK_INT(mk_queue_register(q, &bad, 3, r, &err), MK_EINVAL);
    mk_queue_free(q);
    mk_repo_free(repo);
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/mk-queue-test-%d.db", (int)getpid());
    MK_RUN(test_transitions);
    MK_RUN(test_dispatch_scope_and_fairness);
    MK_RUN(test_lost_runner_and_attempts);
    MK_RUN(test_performance_never_requeued);
    MK_RUN(test_shares_on_different_runners);
    MK_RUN(test_timeout_cancel_and_restart);
    MK_RUN(test_reregister_requeues);
    MK_RUN(test_remove_finished);
    unlink(path);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    return mk_testing_done();
}
