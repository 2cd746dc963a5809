/* Tests of the Kubernetes client: configuration parsing, and every verb against the test API
 * server (e2e/kube-apiserver/fake_apiserver.py), which this test starts on a free port. */
#include "kube/kube.h"
#include "testing/testing.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t server_pid;
static char server_url[64];

/* Starts the fake API server (with bearer token "t0ken") and waits for its port file. */
static int start_server(void)
{
    char port_file[] = "/tmp/mk_kube_test_port_XXXXXX";
    int fd = mkstemp(port_file);
    if (fd < 0)
        return -1;
    close(fd);
    unlink(port_file);
    server_pid = fork();
    if (server_pid == 0) {
        execl(MK_PYTHON, MK_PYTHON, MK_FAKE_APISERVER, "--token", "t0ken", "--port-file", port_file,
              "--bookmark-interval", "0.3", (char *)NULL);
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

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
}

static mk_kube_t *client(const char *token)
{
    mk_kube_config_t cfg = {.server = server_url, .token = (char *)token, .namespace = "team-a"};
    mk_kube_t *k = NULL;
    mk_err_t err = {0};
    if (mk_kube_new(&cfg, &k, &err) != 0)
        fprintf(stderr, "mk_kube_new: %s\n", err.msg);
    return k;
}

static void test_resource_for(void)
{
    MK_CHECK(mk_kube_resource_for("apps/v1", "Deployment") == &mk_kube_deployments);
    MK_CHECK(mk_kube_resource_for("v1", "ConfigMap") == &mk_kube_configmaps);
    MK_CHECK(mk_kube_resource_for("autoscaling/v2", "HorizontalPodAutoscaler") == &mk_kube_hpas);
    MK_CHECK(mk_kube_resource_for("mockarty.io/v1alpha1", "MockartyCluster") ==
             &mk_kube_mockartyclusters);
    MK_CHECK(mk_kube_resource_for("autoscaling/v1", "HorizontalPodAutoscaler") == NULL);
    MK_CHECK(mk_kube_resource_for(NULL, "Deployment") == NULL);
}

static const char *kubeconfig =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: dev\n"
    "clusters:\n"
    "- name: c1\n"
    "  cluster:\n"
    "    server: https://k8s.example:6443\n"
    "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
    "- name: c2\n"
    "  cluster:\n"
    "    server: https://other:443\n"
    "    insecure-skip-tls-verify: true\n"
    "users:\n"
    "- name: u1\n"
    "  user:\n"
    "    token: abc.def\n"
    "- name: u2\n"
    "  user:\n"
    "    client-certificate-data: Y2VydA==\n"
    "    client-key-data: a2V5\n"
    "contexts:\n"
    "- name: dev\n"
    "  context: {cluster: c1, user: u1, namespace: team-a}\n"
    "- name: prod\n"
    "  context:\n"
    "    cluster: c2\n"
    "    user: u2\n";

static void test_kubeconfig(void)
{
    mk_kube_config_t *cfg = NULL;
    mk_err_t err = {0};
    int rc =
        mk_kube_config_parse_kubeconfig(kubeconfig, strlen(kubeconfig), NULL, NULL, &cfg, &err);
    MK_CHECK_INT(rc, 0);
    if (cfg) {
        MK_CHECK_STR(cfg->server, "https://k8s.example:6443");
        MK_CHECK_STR(cfg->token, "abc.def");
        MK_CHECK_STR(cfg->ca_pem, "-----BEGIN CERTIFICATE-----\n");
        MK_CHECK_STR(cfg->namespace, "team-a");
        MK_CHECK(!cfg->insecure);
        MK_CHECK(cfg->cert_pem == NULL);
    }
    mk_kube_config_free(cfg);
    cfg = NULL;
    rc = mk_kube_config_parse_kubeconfig(kubeconfig, strlen(kubeconfig), NULL, "prod", &cfg, &err);
    MK_CHECK_INT(rc, 0);
    if (cfg) {
        MK_CHECK_STR(cfg->server, "https://other:443");
        MK_CHECK(cfg->insecure);
        MK_CHECK_STR(cfg->cert_pem, "cert");
        MK_CHECK_STR(cfg->key_pem, "key");
        MK_CHECK(cfg->token == NULL);
        MK_CHECK_STR(cfg->namespace, "default");
    }
    mk_kube_config_free(cfg);
    cfg = NULL;
    rc = mk_kube_config_parse_kubeconfig(kubeconfig, strlen(kubeconfig), NULL, "nope", &cfg, &err);
    MK_CHECK_INT(rc, MK_EINVAL);
    MK_CHECK(strstr(err.msg, "\"nope\"") != NULL);
    MK_CHECK(cfg == NULL);
    rc = mk_kube_config_parse_kubeconfig("a: [", 4, NULL, NULL, &cfg, &err);
    MK_CHECK_INT(rc, MK_EINVAL);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_in_cluster(void)
{
    char dir[] = "/tmp/mk_kube_sa_XXXXXX";
    char path[128];
    mk_kube_config_t *cfg = NULL;
    mk_err_t err = {0};
    MK_CHECK(mkdtemp(dir) != NULL);
    unsetenv("KUBERNETES_SERVICE_HOST");
    MK_CHECK_INT(mk_kube_config_in_cluster(dir, &cfg, &err), MK_ENOTFOUND);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    MK_CHECK_INT(mk_kube_config_in_cluster(dir, &cfg, &err), MK_ENOTFOUND); /* no token file */
    snprintf(path, sizeof path, "%s/token", dir);
    write_text(path, "sa-token\n");
    snprintf(path, sizeof path, "%s/ca.crt", dir);
    write_text(path, "PEM");
    snprintf(path, sizeof path, "%s/namespace", dir);
    write_text(path, "operators");
    MK_CHECK_INT(mk_kube_config_in_cluster(dir, &cfg, &err), 0);
    if (cfg) {
        MK_CHECK_STR(cfg->server, "https://10.96.0.1:443");
        MK_CHECK_STR(cfg->token, "sa-token");
        MK_CHECK_STR(cfg->ca_pem, "PEM");
        MK_CHECK_STR(cfg->namespace, "operators");
    }
    mk_kube_config_free(cfg);
    cfg = NULL;
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    MK_CHECK_INT(mk_kube_config_in_cluster(dir, &cfg, &err), 0);
    if (cfg)
        MK_CHECK_STR(cfg->server, "https://[fd00::1]:443");
    mk_kube_config_free(cfg);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    snprintf(path, sizeof path, "%s/token", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/ca.crt", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/namespace", dir);
    unlink(path);
    rmdir(dir);
}

static json_t *configmap(const char *name, const char *label)
{
    return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind",
                     "ConfigMap", "metadata", "name", name, "labels", "tier", label, "data", "k",
                     name);
}

static void test_crud_and_errors(void)
{
    mk_kube_t *k = client("t0ken");
    mk_err_t err = {0};
    json_t *obj = NULL, *got = NULL;
    MK_CHECK(k != NULL);
    if (!k)
        return;

    json_t *cm = configmap("settings", "a");
    MK_CHECK_INT(mk_kube_create(k, &mk_kube_configmaps, NULL, cm, &obj, &err), 0);
    MK_CHECK_STR(mk_kube_namespace(obj), "team-a"); /* the client's default namespace */
    MK_CHECK(mk_kube_uid(obj) != NULL);
    const char *rv1 = mk_kube_resource_version(obj);
    MK_CHECK(rv1 != NULL);

    MK_CHECK_INT(mk_kube_create(k, &mk_kube_configmaps, "team-a", cm, NULL, &err), MK_ECONFLICT);
    MK_CHECK_STR(err.cause, "AlreadyExists");

    MK_CHECK_INT(mk_kube_get(k, &mk_kube_configmaps, "team-a", "settings", &got, &err), 0);
    MK_CHECK_STR(json_string_value(json_object_get(json_object_get(got, "data"), "k")), "settings");

    /* Update with the current resourceVersion, then again with the stale one. */
    json_object_set_new(json_object_get(got, "data"), "k", json_string("v2"));
    json_t *updated = NULL;
    MK_CHECK_INT(mk_kube_update(k, &mk_kube_configmaps, "team-a", got, &updated, &err), 0);
    MK_CHECK(strcmp(mk_kube_resource_version(updated), rv1) != 0);
    MK_CHECK_INT(mk_kube_update(k, &mk_kube_configmaps, "team-a", got, NULL, &err), MK_ECONFLICT);
    MK_CHECK_STR(err.cause, "Conflict");
    MK_CHECK(strstr(err.msg, "409") != NULL);
    MK_CHECK(strstr(err.msg, "the object has been modified") != NULL);

    MK_CHECK_INT(mk_kube_get(k, &mk_kube_configmaps, "team-a", "missing", NULL, &err),
                 MK_ENOTFOUND);
    MK_CHECK_STR(err.cause, "NotFound");
    MK_CHECK(strstr(err.msg, "configmaps \"missing\" not found") != NULL);

    json_t *noname = json_pack("{s:{}}", "metadata");
    MK_CHECK_INT(mk_kube_create(k, &mk_kube_configmaps, "team-a", noname, NULL, &err), MK_EINVAL);
    MK_CHECK_STR(err.cause, "Invalid");

    json_t *patch = json_pack("{s:{s:s}}", "data", "extra", "x");
    json_t *patched = NULL;
    MK_CHECK_INT(mk_kube_patch_merge(k, &mk_kube_configmaps, "team-a", "settings", patch, false,
                                     &patched, &err),
                 0);
    MK_CHECK_STR(json_string_value(json_object_get(json_object_get(patched, "data"), "extra")),
                 "x");

    MK_CHECK_INT(mk_kube_delete(k, &mk_kube_configmaps, "team-a", "settings", &err), 0);
    MK_CHECK_INT(mk_kube_delete(k, &mk_kube_configmaps, "team-a", "settings", &err), MK_ENOTFOUND);

    /* Bad and missing credentials. */
    mk_kube_t *bad = client("wrong");
    MK_CHECK_INT(mk_kube_get(bad, &mk_kube_configmaps, "team-a", "x", NULL, &err), MK_EUNAUTH);
    MK_CHECK_STR(err.cause, "Unauthorized");
    mk_kube_free(bad);
    mk_kube_t *anon = client(NULL);
    MK_CHECK_INT(mk_kube_get(anon, &mk_kube_configmaps, "team-a", "x", NULL, &err), MK_EFORBIDDEN);
    mk_kube_free(anon);

    /* Nobody listening. */
    mk_kube_config_t dead = {.server = "http://127.0.0.1:1"};
    mk_kube_t *dk = NULL;
    MK_CHECK_INT(mk_kube_new(&dead, &dk, &err), 0);
    MK_CHECK_INT(mk_kube_get(dk, &mk_kube_configmaps, "x", "y", NULL, &err), MK_EUNAVAIL);
    mk_kube_free(dk);

    json_decref(cm);
    json_decref(obj);
    json_decref(got);
    json_decref(updated);
    json_decref(noname);
    json_decref(patch);
    json_decref(patched);
    mk_kube_free(k);
}

static void test_list_pagination(void)
{
    mk_kube_t *k = client("t0ken");
    mk_err_t err = {0};
    for (int i = 0; i < 7; i++) {
        char name[16];
        snprintf(name, sizeof name, "cm-%d", i);
        json_t *cm = configmap(name, i % 2 ? "odd" : "even");
        MK_CHECK_INT(mk_kube_create(k, &mk_kube_configmaps, "pages", cm, NULL, &err), 0);
        json_decref(cm);
    }
    json_t *page = NULL;
    mk_kube_list_opts_t two = {.limit = 2};
    MK_CHECK_INT(mk_kube_list_page(k, &mk_kube_configmaps, "pages", &two, NULL, &page, &err), 0);
    MK_CHECK_INT(json_array_size(json_object_get(page, "items")), 2);
    const char *cont =
        json_string_value(json_object_get(json_object_get(page, "metadata"), "continue"));
    MK_CHECK(cont && cont[0]);
    json_decref(page);

    json_t *list = NULL;
    MK_CHECK_INT(mk_kube_list(k, &mk_kube_configmaps, "pages", &two, &list, &err), 0);
    json_t *items = json_object_get(list, "items");
    MK_CHECK_INT(json_array_size(items), 7);
    MK_CHECK_STR(json_string_value(json_object_get(list, "kind")), "ConfigMapList");
    MK_CHECK_STR(json_string_value(json_object_get(json_array_get(items, 0), "kind")), "ConfigMap");
    MK_CHECK_STR(mk_kube_name(json_array_get(items, 6)), "cm-6");
    MK_CHECK(json_object_get(json_object_get(list, "metadata"), "continue") == NULL);
    MK_CHECK(mk_kube_resource_version(list) != NULL);
    json_decref(list);

    mk_kube_list_opts_t odd = {.limit = 2, .label_selector = "tier=odd"};
    MK_CHECK_INT(mk_kube_list(k, &mk_kube_configmaps, "pages", &odd, &list, &err), 0);
    MK_CHECK_INT(json_array_size(json_object_get(list, "items")), 3);
    json_decref(list);
    mk_kube_free(k);
}

static json_t *deployment(const char *name, int replicas)
{
    json_t *d =
        json_pack("{s:s, s:s, s:{s:s}, s:{s:{s:{s:s}}, s:{s:{s:{s:s}}, s:{s:[{s:s, s:s}]}}}}",
                  "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name", name, "spec",
                  "selector", "matchLabels", "app", name, "template", "metadata", "labels", "app",
                  name, "spec", "containers", "name", "app", "image", "nginx:1.25");
    if (replicas >= 0)
        json_object_set_new(json_object_get(d, "spec"), "replicas", json_integer(replicas));
    return d;
}

static long replicas_of(const json_t *d)
{
    return (long)json_integer_value(json_object_get(json_object_get(d, "spec"), "replicas"));
}

static void test_apply_and_status(void)
{
    mk_kube_t *k = client("t0ken");
    mk_err_t err = {0};
    json_t *out = NULL;
    bool created = false;
    json_t *d = deployment("web", 3);
    MK_CHECK_INT(
        mk_kube_apply(k, &mk_kube_deployments, "apply", d, NULL, true, &out, &created, &err), 0);
    MK_CHECK(created);
    MK_CHECK_INT(replicas_of(out), 3);
    json_decref(out);

    /* Another manager takes replicas; our apply without replicas keeps its value. */
    json_t *scale = json_pack("{s:{s:i}}", "spec", "replicas", 5);
    MK_CHECK_INT(
        mk_kube_patch_merge(k, &mk_kube_deployments, "apply", "web", scale, false, NULL, &err), 0);
    json_t *noreplicas = deployment("web", -1);
    MK_CHECK_INT(mk_kube_apply(k, &mk_kube_deployments, "apply", noreplicas, NULL, true, &out,
                               &created, &err),
                 0);
    MK_CHECK(!created);
    MK_CHECK_INT(replicas_of(out), 5);
    json_decref(out);

    /* Without force, applying a field another manager owns is a conflict. */
    MK_CHECK_INT(
        mk_kube_apply(k, &mk_kube_deployments, "apply", d, "someone", false, NULL, NULL, &err),
        MK_ECONFLICT);
    MK_CHECK(strstr(err.msg, "Apply failed") != NULL);

    /* Status goes through /status only, and does not bump generation. */
    json_t *cur = NULL;
    MK_CHECK_INT(mk_kube_get(k, &mk_kube_deployments, "apply", "web", &cur, &err), 0);
    long gen =
        (long)json_integer_value(json_object_get(json_object_get(cur, "metadata"), "generation"));
    json_object_set_new(cur, "status", json_pack("{s:i}", "readyReplicas", 2));
    json_object_set_new(json_object_get(cur, "spec"), "replicas", json_integer(9));
    MK_CHECK_INT(mk_kube_update_status(k, &mk_kube_deployments, "apply", cur, &out, &err), 0);
    MK_CHECK_INT(replicas_of(out), 5);
    MK_CHECK_INT(
        json_integer_value(json_object_get(json_object_get(out, "status"), "readyReplicas")), 2);
    MK_CHECK_INT(
        json_integer_value(json_object_get(json_object_get(out, "metadata"), "generation")), gen);
    json_decref(out);
    json_decref(cur);
    json_decref(scale);
    json_decref(noreplicas);
    json_decref(d);
    mk_kube_free(k);
}

typedef struct seen {
    int added, modified, deleted, bookmarks;
    int stop_after;
    char last_name[64];
} seen_t;

static int on_event(void *ud, mk_kube_event_t type, json_t *obj)
{
    seen_t *s = ud;
    switch (type) {
    case MK_KUBE_ADDED:
        s->added++;
        break;
    case MK_KUBE_MODIFIED:
        s->modified++;
        break;
    case MK_KUBE_DELETED:
        s->deleted++;
        break;
    case MK_KUBE_BOOKMARK:
        s->bookmarks++;
        return s->stop_after < 0; /* stop at the first bookmark when asked */
    }
    if (type != MK_KUBE_BOOKMARK && mk_kube_name(obj))
        snprintf(s->last_name, sizeof s->last_name, "%s", mk_kube_name(obj));
    return s->stop_after > 0 && s->added + s->modified + s->deleted >= s->stop_after;
}

static void *set_stop(void *arg)
{
    usleep(300000);
    *(volatile int *)arg = 1;
    return NULL;
}

static void post_control(const char *path)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -X POST %s%s", server_url, path);
    MK_CHECK_INT(system(cmd), 0);
}

static void test_watch(void)
{
    mk_kube_t *k = client("t0ken");
    mk_err_t err = {0};
    json_t *list = NULL;
    MK_CHECK_INT(mk_kube_list(k, &mk_kube_configmaps, "watched", NULL, &list, &err), 0);
    char rv[64];
    snprintf(rv, sizeof rv, "%s", mk_kube_resource_version(list));
    char start_rv[64];
    snprintf(start_rv, sizeof start_rv, "%s", rv);
    json_decref(list);

    json_t *cm = configmap("w", "a");
    json_t *patch = json_pack("{s:{s:s}}", "data", "k", "changed");
    MK_CHECK_INT(mk_kube_create(k, &mk_kube_configmaps, "watched", cm, NULL, &err), 0);
    MK_CHECK_INT(
        mk_kube_patch_merge(k, &mk_kube_configmaps, "watched", "w", patch, false, NULL, &err), 0);
    MK_CHECK_INT(mk_kube_delete(k, &mk_kube_configmaps, "watched", "w", &err), 0);

    seen_t s = {.stop_after = 3};
    MK_CHECK_INT(
        mk_kube_watch(k, &mk_kube_configmaps, "watched", NULL, rv, sizeof rv, on_event, &s, &err),
        0);
    MK_CHECK_INT(s.added, 1);
    MK_CHECK_INT(s.modified, 1);
    MK_CHECK_INT(s.deleted, 1);
    MK_CHECK_STR(s.last_name, "w");
    MK_CHECK(strcmp(rv, start_rv) != 0);

    /* Activity elsewhere moves the global resourceVersion; a bookmark carries it to us. */
    char before[64];
    snprintf(before, sizeof before, "%s", rv);
    json_t *other = configmap("elsewhere", "a");
    MK_CHECK_INT(mk_kube_create(k, &mk_kube_configmaps, "other-ns", other, NULL, &err), 0);
    seen_t b = {.stop_after = -1};
    mk_kube_watch_opts_t opts = {.timeout_seconds = 5};
    MK_CHECK_INT(
        mk_kube_watch(k, &mk_kube_configmaps, "watched", &opts, rv, sizeof rv, on_event, &b, &err),
        0);
    MK_CHECK_INT(b.bookmarks, 1);
    MK_CHECK_INT(b.added, 0);
    MK_CHECK(atol(rv) > atol(before));

    /* A stop flag ends a quiet watch. */
    volatile int stop = 0;
    pthread_t t;
    pthread_create(&t, NULL, set_stop, (void *)&stop);
    seen_t q = {0};
    mk_kube_watch_opts_t sopts = {.stop = &stop, .timeout_seconds = 30};
    time_t t0 = time(NULL);
    MK_CHECK_INT(
        mk_kube_watch(k, &mk_kube_configmaps, "quiet", &sopts, rv, sizeof rv, on_event, &q, &err),
        0);
    MK_CHECK(time(NULL) - t0 < 5);
    pthread_join(t, NULL);

    /* After compaction an old resourceVersion is Expired (as an ERROR event in a 200 stream). */
    post_control("/_test/compact");
    seen_t e = {0};
    MK_CHECK_INT(mk_kube_watch(k, &mk_kube_configmaps, "watched", NULL, start_rv, sizeof start_rv,
                               on_event, &e, &err),
                 MK_ECONFLICT);
    MK_CHECK(mk_kube_is_expired(&err));
    MK_CHECK(strstr(err.msg, "too old resource version") != NULL);

    /* A continue token from before the compaction is an HTTP 410. */
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "p-%d", i);
        json_t *c = configmap(name, "a");
        mk_kube_create(k, &mk_kube_configmaps, "paged", c, NULL, &err);
        json_decref(c);
    }
    json_t *page = NULL;
    mk_kube_list_opts_t one = {.limit = 1};
    MK_CHECK_INT(mk_kube_list_page(k, &mk_kube_configmaps, "paged", &one, NULL, &page, &err), 0);
    const char *cont =
        json_string_value(json_object_get(json_object_get(page, "metadata"), "continue"));
    json_t *cm2 = configmap("bump", "a");
    mk_kube_create(k, &mk_kube_configmaps, "paged", cm2, NULL, &err);
    post_control("/_test/compact");
    json_t *page2 = NULL;
    MK_CHECK_INT(mk_kube_list_page(k, &mk_kube_configmaps, "paged", &one, cont, &page2, &err),
                 MK_ECONFLICT);
    MK_CHECK(mk_kube_is_expired(&err));
    MK_CHECK(page2 == NULL);
    json_decref(page);
    json_decref(cm2);
    json_decref(other);
    json_decref(cm);
    json_decref(patch);
    mk_kube_free(k);
}

int main(void)
{
    MK_RUN(test_resource_for);
    MK_RUN(test_kubeconfig);
    MK_RUN(test_in_cluster);
    if (start_server() != 0) {
        MK_CHECK(!"fake API server did not start");
        stop_server();
        return mk_testing_done();
    }
    MK_RUN(test_crud_and_errors);
    MK_RUN(test_list_pagination);
    MK_RUN(test_apply_and_status);
    MK_RUN(test_watch);
    stop_server();
    return mk_testing_done();
}
