/* Tests of the control loop's parts: the work queue (dedup, backoff), leader election against the
 * test API server, and the health server. The whole loop is tested by e2e/operator. */
#include "controller.h"
#include "testing/testing.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_queue_dedup(void)
{
    mk_controller_queue_t *q = NULL;
    MK_CHECK_INT(mk_controller_queue_new(5, 60000, &q), 0);
    mk_controller_queue_add(q, "a");
    mk_controller_queue_add(q, "b");
    mk_controller_queue_add(q, "a");
    MK_CHECK_INT(mk_controller_queue_len(q), 2);
    char *k = NULL;
    MK_CHECK_INT(mk_controller_queue_get(q, &k), 0);
    MK_CHECK_STR(k, "a");
    /* Added while processing: not handed out again until done. */
    mk_controller_queue_add(q, "a");
    MK_CHECK_INT(mk_controller_queue_len(q), 1);
    char *k2 = NULL;
    MK_CHECK_INT(mk_controller_queue_get(q, &k2), 0);
    MK_CHECK_STR(k2, "b");
    MK_CHECK_INT(mk_controller_queue_len(q), 0);
    mk_controller_queue_done(q, k);
    MK_CHECK_INT(mk_controller_queue_len(q), 1);
    mk_controller_queue_done(q, k2);
    free(k);
    free(k2);
    MK_CHECK_INT(mk_controller_queue_get(q, &k), 0);
    MK_CHECK_STR(k, "a");
    mk_controller_queue_done(q, k);
    free(k);
    mk_controller_queue_shutdown(q);
    MK_CHECK_INT(mk_controller_queue_get(q, &k), MK_EUNAVAIL);
    mk_controller_queue_free(q);
}

static void test_queue_backoff(void)
{
    mk_controller_queue_t *q = NULL;
    MK_CHECK_INT(mk_controller_queue_new(50, 200, &q), 0);
    long expect[] = {50, 100, 200, 200};
    for (int i = 0; i < 4; i++) {
        long long t0 = now_ms();
        mk_controller_queue_add_rate_limited(q, "x");
        char *k = NULL;
        MK_CHECK_INT(mk_controller_queue_get(q, &k), 0);
        long long dt = now_ms() - t0;
        MK_CHECK(dt >= expect[i] - 2);
        MK_CHECK(dt < expect[i] + 150);
        mk_controller_queue_done(q, k);
        free(k);
    }
    MK_CHECK_INT(mk_controller_queue_failures(q, "x"), 4);
    mk_controller_queue_forget(q, "x");
    MK_CHECK_INT(mk_controller_queue_failures(q, "x"), 0);
    /* A delayed key and an immediate add of the same key: handed out once, at once. */
    mk_controller_queue_add_after(q, "y", 10000);
    mk_controller_queue_add(q, "y");
    char *k = NULL;
    long long t0 = now_ms();
    MK_CHECK_INT(mk_controller_queue_get(q, &k), 0);
    MK_CHECK(now_ms() - t0 < 100);
    MK_CHECK_STR(k, "y");
    mk_controller_queue_done(q, k);
    free(k);
    mk_controller_queue_free(q);
}

static pid_t server_pid;
static char server_url[64];

static int start_server(void)
{
    char port_file[] = "/tmp/mk_ctl_test_port_XXXXXX";
    int fd = mkstemp(port_file);
    if (fd < 0)
        return -1;
    close(fd);
    unlink(port_file);
    server_pid = fork();
    if (server_pid == 0) {
        execl(MK_PYTHON, MK_PYTHON, MK_FAKE_APISERVER, "--port-file", port_file, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            int port = 0;
            int ok = fscanf(f, "%d", &port);
            fclose(f);
            unlink(port_file);
            if (ok == 1) {
                snprintf(server_url, sizeof server_url, "http://127.0.0.1:%d", port);
                return 0;
            }
        }
        usleep(50000);
    }
    return -1;
}

static void test_lease(void)
{
    mk_kube_config_t cfg = {.server = server_url};
    mk_kube_t *k = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_kube_new(&cfg, &k, &err), 0);
    mk_controller_lease_t *a = NULL, *b = NULL;
    MK_CHECK_INT(mk_controller_lease_new(k, "ops", "leader", "pod-a", 1, &a, &err), 0);
    MK_CHECK_INT(mk_controller_lease_new(k, "ops", "leader", "pod-b", 1, &b, &err), 0);
    mk_controller_lease_state_t st;
    MK_CHECK_INT(mk_controller_lease_try(a, &st, &err), 0);
    MK_CHECK_INT(st, MK_CONTROLLER_LEADER);
    MK_CHECK_INT(mk_controller_lease_try(b, &st, &err), 0);
    MK_CHECK_INT(st, MK_CONTROLLER_FOLLOWER);
    MK_CHECK_INT(mk_controller_lease_try(a, &st, &err), 0); /* renew */
    MK_CHECK_INT(st, MK_CONTROLLER_LEADER);

    json_t *lease = NULL;
    MK_CHECK_INT(mk_kube_get(k, &mk_kube_leases, "ops", "leader", &lease, &err), 0);
    json_t *spec = json_object_get(lease, "spec");
    MK_CHECK_STR(json_string_value(json_object_get(spec, "holderIdentity")), "pod-a");
    MK_CHECK_INT(json_integer_value(json_object_get(spec, "leaseDurationSeconds")), 1);
    /* MicroTime: exactly six fractional digits, or a real API server answers 400. */
    const char *renew = json_string_value(json_object_get(spec, "renewTime"));
    MK_CHECK(renew && strlen(renew) == 27 && renew[19] == '.' && renew[26] == 'Z');
    json_decref(lease);

    /* a stops renewing: b sees the record unchanged for longer than the duration and takes it. */
    MK_CHECK_INT(mk_controller_lease_try(b, &st, &err), 0);
    MK_CHECK_INT(st, MK_CONTROLLER_FOLLOWER);
    usleep(1200000);
    MK_CHECK_INT(mk_controller_lease_try(b, &st, &err), 0);
    MK_CHECK_INT(st, MK_CONTROLLER_LEADER);
    MK_CHECK_INT(mk_controller_lease_try(a, &st, &err), 0);
    MK_CHECK_INT(st, MK_CONTROLLER_FOLLOWER);

    /* b releases: a acquires at once, without waiting for expiry. */
    MK_CHECK_INT(mk_controller_lease_release(b, &err), 0);
    MK_CHECK_INT(mk_controller_lease_state(b), MK_CONTROLLER_RELEASED);
    MK_CHECK_INT(mk_kube_get(k, &mk_kube_leases, "ops", "leader", &lease, &err), 0);
    MK_CHECK_STR(
        json_string_value(json_object_get(json_object_get(lease, "spec"), "holderIdentity")), "");
    MK_CHECK_INT(
        json_integer_value(json_object_get(json_object_get(lease, "spec"), "leaseTransitions")), 1);
    json_decref(lease);
    MK_CHECK_INT(mk_controller_lease_try(a, &st, &err), 0);
    MK_CHECK_INT(st, MK_CONTROLLER_LEADER);
    MK_CHECK_INT(mk_controller_lease_try(b, &st, &err), 0);
    MK_CHECK_INT(st, MK_CONTROLLER_RELEASED);
    mk_controller_lease_free(a);
    mk_controller_lease_free(b);
    mk_kube_free(k);
}

static int answer(void *ud, const char *path, char **body, const char **ctype)
{
    (void)ud;
    (void)ctype;
    if (strcmp(path, "/healthz") == 0) {
        *body = strdup("ok\n");
        return 200;
    }
    *body = strdup("nope\n");
    return 404;
}

static void http_get(int port, const char *path, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    out[0] = '\0';
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        char req[256];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
        if (write(fd, req, (size_t)n) == n) {
            size_t len = 0;
            ssize_t r;
            while (len < cap - 1 && (r = read(fd, out + len, cap - 1 - len)) > 0)
                len += (size_t)r;
            out[len] = '\0';
        }
    }
    close(fd);
}

static void test_health(void)
{
    mk_controller_health_t *h = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_controller_health_start(-1, answer, NULL, &h, &err), 0);
    int port = mk_controller_health_bound_port(h);
    MK_CHECK(port > 0);
    char buf[1024];
    http_get(port, "/healthz", buf, sizeof buf);
    MK_CHECK(strncmp(buf, "HTTP/1.1 200 OK", 15) == 0);
    MK_CHECK(strstr(buf, "\r\n\r\nok\n") != NULL);
    http_get(port, "/other?x=1", buf, sizeof buf);
    MK_CHECK(strncmp(buf, "HTTP/1.1 404", 12) == 0);
    mk_controller_health_stop(h);
}

int main(void)
{
    MK_RUN(test_queue_dedup);
    MK_RUN(test_queue_backoff);
    MK_RUN(test_health);
    if (start_server() != 0) {
        MK_CHECK(!"fake API server did not start");
    } else {
        MK_RUN(test_lease);
    }
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    return mk_testing_done();
}
