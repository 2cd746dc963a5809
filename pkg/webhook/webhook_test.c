/* The webhook sender and namespace webhooks against a receiver written here: a loopback HTTP
 * server that answers from a script (500, 500, 200...) or never answers, and keeps what it got. */
#include "webhook/webhook.h"

#include "identity/identity.h"
#include "sqlite/sqlite.h"
#include "testing/testing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEEN 16

typedef struct receiver {
    int fd, port;
    pthread_t thread;
    int script[8]; /* status per request in order; 0: never answer; past the end: 200 */
    atomic_int seen;
    char bodies[MAX_SEEN][2048];
    char headers[MAX_SEEN][2048];
    atomic_bool stop;
} receiver_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *serve(void *arg)
{
    receiver_t *r = arg;
    while (!atomic_load(&r->stop)) {
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[8192];
        size_t len = 0;
        char *end = NULL;
        while (len < sizeof buf - 1 && (end = strstr(buf, "\r\n\r\n")) == NULL) {
            ssize_t n = read(c, buf + len, sizeof buf - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            buf[len] = '\0';
        }
        if (end == NULL) {
            close(c);
            continue;
        }
        size_t head = (size_t)(end - buf) + 4, clen = 0;
        const char *cl = strcasestr(buf, "Content-Length:");
        if (cl)
            clen = (size_t)atoi(cl + 15);
        while (len < head + clen && len < sizeof buf - 1) {
            ssize_t n = read(c, buf + len, sizeof buf - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        buf[len] = '\0';
        int i = atomic_load(&r->seen);
        if (i < MAX_SEEN) {
            snprintf(r->headers[i], sizeof r->headers[i], "%.*s", (int)head, buf);
            snprintf(r->bodies[i], sizeof r->bodies[i], "%s", buf + head);
        }
        int status = i < 8 && r->script[i] >= 0 ? r->script[i] : 200;
        atomic_fetch_add(&r->seen, 1);
        if (status == 0) {
            /* A target that hangs: hold the connection until the client gives up. */
            for (;;) {
                ssize_t n = read(c, buf, sizeof buf);
                if (n == 0 || (n < 0 && (errno != EAGAIN || atomic_load(&r->stop))))
                    break;
            }
        } else {
            char resp[128];
            int n = snprintf(resp, sizeof resp,
                             "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                             status);
            if (write(c, resp, (size_t)n) < 0)
                perror("write");
        }
        close(c);
    }
    return NULL;
}

static void receiver_start(receiver_t *r, const int *script, int n)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 8; i++)
        r->script[i] = i < n ? script[i] : 200;
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(r->fd, (struct sockaddr *)&a, sizeof a);
    socklen_t alen = sizeof a;
    getsockname(r->fd, (struct sockaddr *)&a, &alen);
    r->port = ntohs(a.sin_port);
    listen(r->fd, 16);
    struct timeval tv = {0, 100000};
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    pthread_create(&r->thread, NULL, serve, r);
}

static void receiver_stop(receiver_t *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    close(r->fd);
}

typedef struct attempts {
    pthread_mutex_t lock;
    mk_webhook_attempt_t log[16];
    char errors[16][128];
    int n;
    atomic_bool done;
} attempts_t;

static void on_attempt(void *ud, const mk_webhook_attempt_t *a)
{
    attempts_t *at = ud;
    pthread_mutex_lock(&at->lock);
    if (at->n < 16) {
        at->log[at->n] = *a;
        snprintf(at->errors[at->n], sizeof at->errors[0], "%s", a->error);
        at->n++;
    }
    pthread_mutex_unlock(&at->lock);
    if (a->final)
        atomic_store(&at->done, true);
}

static bool wait_done(attempts_t *at, double ms)
{
    double until = now_ms() + ms;
    while (!atomic_load(&at->done) && now_ms() < until)
        usleep(5000);
    return atomic_load(&at->done);
}

static void test_retries_then_success(void)
{
    receiver_t r;
    receiver_start(&r, (int[]){500, 503, 200}, 3);
    mk_webhook_sender_t *s;
    MK_CHECK_INT(mk_webhook_sender_new(4, &s, NULL), 0);
    attempts_t at = {.lock = PTHREAD_MUTEX_INITIALIZER};
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", r.port);
    const char *headers[] = {"X-Test: yes", NULL};
    mk_webhook_req_t req = {.url = url,
                            .headers = headers,
                            .body = "{\"a\":1}",
                            .body_len = 7,
                            .retries = 3,
                            .backoff_ms = 60,
                            .on_attempt = on_attempt,
                            .ud = &at};
    double t0 = now_ms();
    MK_CHECK_INT(mk_webhook_send(s, &req, NULL), 0);
    MK_CHECK(now_ms() - t0 < 50); /* queued, not sent inline */
    MK_CHECK(wait_done(&at, 5000));
    double took = now_ms() - t0;
    MK_CHECK_INT(at.n, 3);
    MK_CHECK_INT(at.log[0].status, 500);
    MK_CHECK_INT(at.log[0].retry_in_ms, 60);
    MK_CHECK_INT(at.log[1].status, 503);
    MK_CHECK_INT(at.log[1].retry_in_ms, 120); /* doubled */
    MK_CHECK(at.log[2].ok && at.log[2].final && at.log[2].attempt == 3);
    MK_CHECK(took >= 180);
    MK_CHECK_INT(atomic_load(&r.seen), 3);
    MK_CHECK(strstr(r.headers[2], "X-Test: yes") != NULL);
    MK_CHECK(strcmp(r.bodies[2], "{\"a\":1}") == 0);
    mk_webhook_sender_free(s);
    receiver_stop(&r);
}

static void test_retries_exhausted_and_hanging(void)
{
    receiver_t r;
    receiver_start(&r, (int[]){500, 500, 500}, 3);
    mk_webhook_sender_t *s;
    MK_CHECK_INT(mk_webhook_sender_new(4, &s, NULL), 0);
    attempts_t at = {.lock = PTHREAD_MUTEX_INITIALIZER};
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", r.port);
    mk_webhook_req_t req = {
        .url = url, .retries = 1, .backoff_ms = 10, .on_attempt = on_attempt, .ud = &at};
    MK_CHECK_INT(mk_webhook_send(s, &req, NULL), 0);
    MK_CHECK(wait_done(&at, 5000));
    MK_CHECK_INT(at.n, 2);
    MK_CHECK(!at.log[1].ok && at.log[1].final);
    receiver_stop(&r);

    /* A target that never answers ends in the timeout; nothing waits for it meanwhile. */
    receiver_t hang;
    receiver_start(&hang, (int[]){0}, 1);
    attempts_t ah = {.lock = PTHREAD_MUTEX_INITIALIZER};
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", hang.port);
    mk_webhook_req_t hreq = {.url = url, .timeout_ms = 300, .on_attempt = on_attempt, .ud = &ah};
    double t0 = now_ms();
    MK_CHECK_INT(mk_webhook_send(s, &hreq, NULL), 0);
    MK_CHECK(now_ms() - t0 < 50);
    MK_CHECK(wait_done(&ah, 5000));
    MK_CHECK_INT(ah.log[0].status, 0);
    MK_CHECK(ah.errors[0][0] != '\0');
    MK_CHECK(now_ms() - t0 >= 290);

    /* Bad URLs are refused up front; a delivery still waiting when the sender stops ends. */
    mk_webhook_req_t bad = {.url = "ftp://x/"};
    mk_err_t err;
    MK_CHECK_INT(mk_webhook_send(s, &bad, &err), MK_EINVAL);
    attempts_t late = {.lock = PTHREAD_MUTEX_INITIALIZER};
    mk_webhook_req_t delayed = {
        .url = url, .delay_ms = 60000, .on_attempt = on_attempt, .ud = &late};
    MK_CHECK_INT(mk_webhook_send(s, &delayed, NULL), 0);
    mk_webhook_sender_free(s);
    MK_CHECK(atomic_load(&late.done));
    MK_CHECK_STR(late.errors[0], "stopped");
    receiver_stop(&hang);
}

static void test_namespace_hooks(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/webhook-test-%d.db", (int)getpid());
    mk_repo_t *repo;
    mk_err_t err;
    MK_CHECK_INT(mk_sqlite_repo_open(path, &repo, &err), 0);
    receiver_t r;
    receiver_start(&r, (int[]){500, 200}, 2);
    mk_webhook_sender_t *s;
    MK_CHECK_INT(mk_webhook_sender_new(4, &s, NULL), 0);
    mk_webhook_hooks_t *h =
        mk_webhook_hooks_new(repo, s, &(mk_webhook_hooks_config_t){.backoff_ms = 20});
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/in", r.port);
    json_t *body = json_pack("{s:s, s:s}", "url", url, "secret", "0123456789abcdef-secret");
    json_t *hook;
    MK_CHECK_INT(mk_webhook_hooks_create(h, "team-a", body, "ann", &hook, &err), 0);
    json_decref(body);
    const char *id = json_string_value(json_object_get(hook, "id"));
    body = json_pack("{s:s, s:[s]}", "url", url, "events", "mock.exploded");
    json_t *bad;
    MK_CHECK_INT(mk_webhook_hooks_create(h, "team-a", body, "ann", &bad, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "events[0]") != NULL);
    json_decref(body);
    body = json_pack("{s:s}", "url", "file:///etc/passwd");
    MK_CHECK_INT(mk_webhook_hooks_create(h, "team-a", body, "ann", &bad, &err), MK_EINVAL);
    json_decref(body);
    json_t *list;
    MK_CHECK_INT(mk_webhook_hooks_list(h, "team-a", &list, &err), 0);
    MK_CHECK_INT(json_array_size(list), 1);
    MK_CHECK(json_object_get(json_array_get(list, 0), "secret") == NULL);
    json_decref(list);
    MK_CHECK_INT(mk_webhook_hooks_list(h, "team-b", &list, &err), 0);
    MK_CHECK_INT(json_array_size(list), 0);
    json_decref(list);

    json_t *data = json_pack("{s:s}", "id", "m1");
    MK_CHECK_INT(mk_webhook_hooks_emit(h, "team-a", "mock.created", data), 1);
    MK_CHECK_INT(mk_webhook_hooks_emit(h, "team-a", "testrun.finished", data), 0);
    MK_CHECK_INT(mk_webhook_hooks_emit(h, "team-b", "mock.created", data), 0);
    json_decref(data);
    double until = now_ms() + 5000;
    json_t *log = NULL;
    while (now_ms() < until) {
        json_decref(log);
        mk_webhook_hooks_deliveries(h, "team-a", id, 10, &log, &err);
        if (json_array_size(log) == 2)
            break;
        usleep(10000);
    }
    MK_CHECK_INT(json_array_size(log), 2);
    json_t *last = json_array_get(log, 0);
    MK_CHECK(json_is_true(json_object_get(last, "ok")));
    MK_CHECK_INT(json_integer_value(json_object_get(last, "attempt")), 2);
    MK_CHECK_INT(json_integer_value(json_object_get(json_array_get(log, 1), "status")), 500);
    json_decref(log);
    /* The receiver checks the signature with the secret. */
    char want[65], line[96];
    mk_identity_hmac_sha256_hex("0123456789abcdef-secret", 23, r.bodies[1], strlen(r.bodies[1]),
                                want);
    snprintf(line, sizeof line, "X-Mockarty-Signature: sha256=%s", want);
    MK_CHECK(strstr(r.headers[1], line) != NULL);
    MK_CHECK(strstr(r.headers[1], "X-Mockarty-Event: mock.created") != NULL);
    json_t *got = json_loads(r.bodies[1], 0, NULL);
    MK_CHECK_STR(json_string_value(json_object_get(got, "event")), "mock.created");
    MK_CHECK_STR(json_string_value(json_object_get(json_object_get(got, "data"), "id")), "m1");
    json_decref(got);

    MK_CHECK_INT(mk_webhook_hooks_delete(h, "team-b", id, &err), MK_ENOTFOUND);
    MK_CHECK_INT(mk_webhook_hooks_delete(h, "team-a", id, &err), 0);
    MK_CHECK_INT(mk_webhook_hooks_emit(h, "team-a", "mock.created", NULL), 0);
    mk_webhook_hooks_prune(h, 1LL << 60, 1000);
    MK_CHECK_INT(mk_webhook_hooks_deliveries(h, "team-a", id, 10, &log, &err), 0);
    MK_CHECK_INT(json_array_size(log), 0);
    json_decref(log);
    json_decref(hook);
    mk_webhook_sender_free(s);
    mk_webhook_hooks_free(h);
    receiver_stop(&r);
    mk_repo_free(repo);
    unlink(path);
}

int main(void)
{
    MK_RUN(test_retries_then_success);
    MK_RUN(test_retries_exhausted_and_hanging);
    MK_RUN(test_namespace_hooks);
    return mk_testing_done();
}
