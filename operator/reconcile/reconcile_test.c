/* Table tests of the pure reconcilers: every spec variant of MockartyCluster and
 * MockartyRunnerPool, the objects they produce, the status phases and condition bookkeeping. */
#include "reconcile/reconcile.h"
#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);

    if (!v)
        fprintf(stderr, "bad test JSON at line %d: %s\n", e.line, e.text);
    return v;
}

/* Walks a '/'-separated path (numbers index arrays). A key that itself holds '/' (a label such as
 * app.kubernetes.io/name) is found by joining segments until a member matches. */
static const json_t *at(const json_t *v, const char *path)
{
    char buf[256], key[256];
    char *segs[32];
    size_t n = 0, i = 0;

    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = strtok(buf, "/"); p && n < 32; p = strtok(NULL, "/"))
        segs[n++] = p;
    while (v && i < n) {
        if (json_is_array(v)) {
            v = json_array_get(v, (size_t)atoi(segs[i++]));
            continue;
        }
        size_t j = i;
        const json_t *m = NULL;

        snprintf(key, sizeof key, "%s", segs[i]);
        for (;;) {
            m = json_object_get(v, key);
            if (m || j + 1 >= n)
                break;
            j++;
            snprintf(key + strlen(key), sizeof key - strlen(key), "/%s", segs[j]);
        }
        v = m;
        i = j + 1;
    }
    return v;
}

static const char *str_at(const json_t *v, const char *path)
{
    return json_string_value(at(v, path));
}

static long long int_at(const json_t *v, const char *path)
{
    const json_t *n = at(v, path);

    return json_is_integer(n) ? json_integer_value(n) : -999;
}

static const json_t *find_obj(const json_t *list, const char *kind, const char *name)
{
    const json_t *o;
    size_t i;

    json_array_foreach(list, i, o)
    {
        const char *k = json_string_value(json_object_get(o, "kind"));
        const char *n = str_at(o, "metadata/name");

        if (!n)
            n = json_string_value(json_object_get(o, "name"));
        if (k && n && strcmp(k, kind) == 0 && strcmp(n, name) == 0)
            return o;
    }
    return NULL;
}

static const json_t *find_named(const json_t *list, const char *name)
{
    const json_t *o;
    size_t i;

    json_array_foreach(list, i, o)
    {
        const char *n = json_string_value(json_object_get(o, "name"));

        if (n && strcmp(n, name) == 0)
            return o;
    }
    return NULL;
}

static const json_t *env_of(const json_t *deploy, const char *name)
{
    return find_named(at(deploy, "spec/template/spec/containers/0/env"), name);
}

static const json_t *condition(const json_t *status, const char *type)
{
    const json_t *c;
    size_t i;

    json_array_foreach(json_object_get(status, "conditions"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0)
            return c;
    }
    return NULL;
}

static int count_env(const json_t *deploy, const char *name)
{
    const json_t *e;
    size_t i;
    int n = 0;

    json_array_foreach(at(deploy, "spec/template/spec/containers/0/env"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            n++;
    }
    return n;
}

/* Every child: owned by the resource as controller, labelled, in the resource's namespace. */
static void check_children(const mk_op_desired_t *d, const char *kind, const char *name,
                           const char *ns)
{
    const json_t *o;
    size_t i;

    json_array_foreach(d->apply, i, o)
    {
        MK_CHECK(str_at(o, "apiVersion") != NULL);
        MK_CHECK_STR(str_at(o, "metadata/namespace"), ns);
        MK_CHECK_STR(str_at(o, "metadata/ownerReferences/0/apiVersion"), "mockarty.io/v1alpha1");
        MK_CHECK_STR(str_at(o, "metadata/ownerReferences/0/kind"), kind);
        MK_CHECK_STR(str_at(o, "metadata/ownerReferences/0/name"), name);
        MK_CHECK_STR(str_at(o, "metadata/ownerReferences/0/uid"), "uid-1");
        MK_CHECK(json_is_true(at(o, "metadata/ownerReferences/0/controller")));
        MK_CHECK(json_is_true(at(o, "metadata/ownerReferences/0/blockOwnerDeletion")));
        MK_CHECK_STR(str_at(o, "metadata/labels/app.kubernetes.io/name"), "mockarty");
        MK_CHECK_STR(str_at(o, "metadata/labels/app.kubernetes.io/instance"), name);
        MK_CHECK_STR(str_at(o, "metadata/labels/app.kubernetes.io/managed-by"),
                     "mockarty-operator");
        MK_CHECK(str_at(o, "metadata/labels/app.kubernetes.io/component") != NULL);
    }
}

/* A cluster "demo" in namespace "team" with the given spec and status (JSON text). */
static json_t *cluster(const char *spec, const char *status)
{
    char buf[4096];

    snprintf(buf, sizeof buf,
             "{\"apiVersion\":\"mockarty.io/v1alpha1\",\"kind\":\"MockartyCluster\","
             "\"metadata\":{\"name\":\"demo\",\"namespace\":\"team\",\"uid\":\"uid-1\","
             "\"generation\":4},\"spec\":%s%s%s}",
             spec, status ? ",\"status\":" : "", status ? status : "");
    return load(buf);
}

static json_t *observed(const char *deployments, const char *now)
{
    char buf[4096];

    snprintf(buf, sizeof buf, "{\"deployments\":%s,\"now\":\"%s\"}", deployments, now);
    return load(buf);
}

/* Runs mk_op_cluster_desired on spec text; fails the test on a non-zero return. */
static int run_cluster(const char *spec, const char *status, const char *deps, mk_op_desired_t *d)
{
    json_t *c = cluster(spec, status);
    json_t *o = observed(deps ? deps : "{}", "2026-11-21T10:00:00Z");
    mk_err_t err = {0};
    int rc;

    rc = mk_op_cluster_desired(c, o, d, &err);
    MK_CHECK_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n", err.msg);
    json_decref(c);
    json_decref(o);
    return rc;
}

static void test_defaults_single_node_sqlite(void)
{
    mk_op_desired_t d;
    const json_t *cm, *dep, *svc, *c;

    if (run_cluster("{}", NULL, NULL, &d) != 0)
        return;
    MK_CHECK_INT(json_array_size(d.apply), 3);
    check_children(&d, "MockartyCluster", "demo", "team");
    cm = find_obj(d.apply, "ConfigMap", "demo-config");
    MK_CHECK_STR(str_at(cm, "data/DB_USE"), "sqlite");
    MK_CHECK_STR(str_at(cm, "data/CACHE_TYPE"), "inmemory");
    MK_CHECK_STR(str_at(cm, "data/HTTP_PORT"), "5770");
    MK_CHECK_STR(str_at(cm, "data/RUNNER_GRPC_PORT"), "5773");
    MK_CHECK_STR(str_at(cm, "data/COORDINATOR_ADDR"), "demo-admin.team.svc:5773");
    MK_CHECK(at(cm, "data/REPO_REDIS_HOST") == NULL);

    dep = find_obj(d.apply, "Deployment", "demo-admin");
    MK_CHECK_STR(str_at(dep, "apiVersion"), "apps/v1");
    MK_CHECK_INT(int_at(dep, "spec/replicas"), 1);
    MK_CHECK_STR(str_at(dep, "spec/strategy/type"), "Recreate");
    MK_CHECK(at(dep, "spec/strategy/rollingUpdate") == NULL);
    MK_CHECK_STR(str_at(dep, "spec/selector/matchLabels/app.kubernetes.io/component"), "admin");
    MK_CHECK_STR(str_at(dep, "spec/template/metadata/labels/app.kubernetes.io/instance"), "demo");
    MK_CHECK(str_at(dep, "spec/template/metadata/annotations/mockarty.io/config-checksum") != NULL);
    c = at(dep, "spec/template/spec/containers/0");
    MK_CHECK_STR(str_at(c, "image"), "mockarty/mockarty:0.1.0");
    MK_CHECK_STR(str_at(c, "imagePullPolicy"), "IfNotPresent");
    MK_CHECK_STR(str_at(c, "args/0"), "mockarty");
    MK_CHECK_STR(str_at(c, "envFrom/0/configMapRef/name"), "demo-config");
    MK_CHECK_STR(str_at(c, "livenessProbe/httpGet/path"), "/health/live");
    MK_CHECK_STR(str_at(c, "readinessProbe/httpGet/path"), "/health/ready");
    MK_CHECK_INT(int_at(find_named(at(c, "ports"), "http"), "containerPort"), 5770);
    MK_CHECK_INT(int_at(find_named(at(c, "ports"), "grpc"), "containerPort"), 5773);
    MK_CHECK(at(c, "resources") == NULL);
    MK_CHECK(env_of(dep, "DB_DSN") == NULL);
    MK_CHECK(json_is_true(at(dep, "spec/template/spec/securityContext/runAsNonRoot")));
    MK_CHECK(json_is_false(at(c, "securityContext/allowPrivilegeEscalation")));
    MK_CHECK_STR(str_at(find_named(at(dep, "spec/template/spec/volumes"), "data"), "name"), "data");

    svc = find_obj(d.apply, "Service", "demo-admin");
    MK_CHECK_STR(str_at(svc, "spec/type"), "ClusterIP");
    MK_CHECK_INT(int_at(find_named(at(svc, "spec/ports"), "http"), "port"), 5770);
    MK_CHECK_INT(int_at(find_named(at(svc, "spec/ports"), "grpc"), "port"), 5773);
    MK_CHECK_STR(str_at(svc, "spec/selector/app.kubernetes.io/component"), "admin");

    /* No resolvers: all their objects are to be removed if a previous spec made them. */
    MK_CHECK_INT(json_array_size(d.deletes), 4);
    MK_CHECK(find_obj(d.deletes, "Deployment", "demo-resolvers") != NULL);
    MK_CHECK(find_obj(d.deletes, "Service", "demo-resolvers") != NULL);
    MK_CHECK(find_obj(d.deletes, "PodDisruptionBudget", "demo-resolvers") != NULL);
    MK_CHECK_STR(
        str_at(find_obj(d.deletes, "HorizontalPodAutoscaler", "demo-resolvers"), "apiVersion"),
        "autoscaling/v2");
    MK_CHECK_STR(
        str_at(find_obj(d.deletes, "HorizontalPodAutoscaler", "demo-resolvers"), "namespace"),
        "team");

    MK_CHECK_STR(str_at(d.status, "phase"), "Pending");
    MK_CHECK_INT(int_at(d.status, "observedGeneration"), 4);
    MK_CHECK_STR(str_at(condition(d.status, "Ready"), "status"), "False");
    MK_CHECK_STR(str_at(condition(d.status, "AdminReady"), "reason"), "DeploymentNotFound");
    MK_CHECK_STR(str_at(condition(d.status, "ResolversReady"), "status"), "True");
    MK_CHECK_STR(str_at(condition(d.status, "ResolversReady"), "reason"), "NoResolvers");
    MK_CHECK_INT(int_at(condition(d.status, "Ready"), "observedGeneration"), 4);
    MK_CHECK_STR(str_at(condition(d.status, "Ready"), "lastTransitionTime"),
                 "2026-11-21T10:00:00Z");
    MK_CHECK_STR(str_at(d.status, "endpoints/admin"), "demo-admin.team.svc:5770");
    MK_CHECK_STR(str_at(d.status, "endpoints/coordinator"), "demo-admin.team.svc:5773");
    MK_CHECK(at(d.status, "endpoints/resolvers") == NULL);
    MK_CHECK_INT(int_at(d.status, "resolvers/replicas"), 0);
    MK_CHECK_INT(json_array_size(d.events), 1);
    MK_CHECK_STR(str_at(d.events, "0/type"), "Normal");
    MK_CHECK_STR(str_at(d.events, "0/reason"), "Pending");
    mk_op_desired_free(&d);
    MK_CHECK(d.apply == NULL && d.status == NULL);
    mk_op_desired_free(&d);
    mk_op_desired_free(NULL);
}

#define PG "\"database\":{\"type\":\"postgres\",\"postgres\":{\"dsnSecretRef\":{\"name\":\"pg\"}}}"

static void test_postgres_static_resolvers_with_pdb(void)
{
    mk_op_desired_t d;
    const json_t *admin, *res, *pdb, *svc;

    if (run_cluster("{" PG ",\"resolvers\":{\"replicas\":3,"
                    "\"resources\":{\"requests\":{\"cpu\":\"250m\"}},"
                    "\"tokenSecretRef\":{\"name\":\"rt\",\"key\":\"t\"}}}",
                    NULL, NULL, &d) != 0)
        return;
    check_children(&d, "MockartyCluster", "demo", "team");
    MK_CHECK_INT(json_array_size(d.apply), 6);
    admin = find_obj(d.apply, "Deployment", "demo-admin");
    MK_CHECK_STR(str_at(admin, "spec/strategy/type"), "RollingUpdate");
    MK_CHECK_INT(int_at(admin, "spec/strategy/rollingUpdate/maxUnavailable"), 0);
    MK_CHECK_STR(str_at(env_of(admin, "DB_DSN"), "valueFrom/secretKeyRef/name"), "pg");
    MK_CHECK_STR(str_at(env_of(admin, "DB_DSN"), "valueFrom/secretKeyRef/key"), "dsn");
    MK_CHECK(at(env_of(admin, "DB_DSN"), "value") == NULL);
    MK_CHECK_STR(str_at(find_obj(d.apply, "ConfigMap", "demo-config"), "data/DB_USE"), "postgres");
    MK_CHECK(at(find_obj(d.apply, "ConfigMap", "demo-config"), "data/DB_DSN") == NULL);

    res = find_obj(d.apply, "Deployment", "demo-resolvers");
    MK_CHECK_INT(int_at(res, "spec/replicas"), 3);
    MK_CHECK_STR(str_at(res, "spec/template/spec/containers/0/args/0"), "mockarty-resolver");
    MK_CHECK_STR(str_at(env_of(res, "HTTP_PORT"), "value"), "5780");
    MK_CHECK_STR(str_at(env_of(res, "DB_DSN"), "valueFrom/secretKeyRef/name"), "pg");
    MK_CHECK_STR(str_at(env_of(res, "API_TOKEN"), "valueFrom/secretKeyRef/key"), "t");
    MK_CHECK_STR(str_at(res, "spec/template/spec/containers/0/resources/requests/cpu"), "250m");
    MK_CHECK_STR(str_at(res, "spec/selector/matchLabels/app.kubernetes.io/component"), "resolver");
    MK_CHECK_STR(str_at(res, "spec/template/spec/containers/0/readinessProbe/httpGet/path"),
                 "/health/ready");
    svc = find_obj(d.apply, "Service", "demo-resolvers");
    MK_CHECK_INT(int_at(svc, "spec/ports/0/port"), 5780);
    pdb = find_obj(d.apply, "PodDisruptionBudget", "demo-resolvers");
    MK_CHECK_STR(str_at(pdb, "apiVersion"), "policy/v1");
    MK_CHECK_INT(int_at(pdb, "spec/maxUnavailable"), 1);
    MK_CHECK_STR(str_at(pdb, "spec/selector/matchLabels/app.kubernetes.io/component"), "resolver");
    MK_CHECK(find_obj(d.apply, "HorizontalPodAutoscaler", "demo-resolvers") == NULL);
    MK_CHECK_INT(json_array_size(d.deletes), 1);
    MK_CHECK(find_obj(d.deletes, "HorizontalPodAutoscaler", "demo-resolvers") != NULL);
    MK_CHECK_STR(str_at(d.status, "endpoints/resolvers"), "demo-resolvers.team.svc:5780");
    MK_CHECK_INT(int_at(d.status, "resolvers/replicas"), 3);
    mk_op_desired_free(&d);
}

static void test_single_resolver_has_no_pdb(void)
{
    mk_op_desired_t d;

    if (run_cluster("{" PG ",\"resolvers\":{\"replicas\":1}}", NULL, NULL, &d) != 0)
        return;
    MK_CHECK(find_obj(d.apply, "Deployment", "demo-resolvers") != NULL);
    MK_CHECK(find_obj(d.apply, "PodDisruptionBudget", "demo-resolvers") == NULL);
    MK_CHECK(find_obj(d.deletes, "PodDisruptionBudget", "demo-resolvers") != NULL);
    MK_CHECK(find_obj(d.deletes, "Deployment", "demo-resolvers") == NULL);
    MK_CHECK(at(find_obj(d.apply, "Deployment", "demo-resolvers"),
                "spec/template/spec/"
                "containers/0/resources") == NULL);
    mk_op_desired_free(&d);
}

static void test_autoscaling_on_leaves_replicas_to_hpa(void)
{
    mk_op_desired_t d;
    const json_t *res, *hpa;

    /* The HPA has scaled the Deployment to 5; status follows it, the apply leaves it alone. */
    if (run_cluster(
            "{" PG ",\"resolvers\":{\"replicas\":2,\"autoscaling\":{\"enabled\":true,"
            "\"minReplicas\":3,\"maxReplicas\":8,\"targetCPUUtilizationPercentage\":65}}}",
            NULL,
            "{\"demo-resolvers\":{\"metadata\":{\"generation\":2},\"spec\":{\"replicas\":5},"
            "\"status\":{\"readyReplicas\":4}}}",
            &d) != 0)
        return;
    res = find_obj(d.apply, "Deployment", "demo-resolvers");
    MK_CHECK(res != NULL);
    MK_CHECK(at(res, "spec/replicas") == NULL);
    MK_CHECK(at(res, "spec/template") != NULL);
    hpa = find_obj(d.apply, "HorizontalPodAutoscaler", "demo-resolvers");
    MK_CHECK_STR(str_at(hpa, "apiVersion"), "autoscaling/v2");
    MK_CHECK_STR(str_at(hpa, "spec/scaleTargetRef/kind"), "Deployment");
    MK_CHECK_STR(str_at(hpa, "spec/scaleTargetRef/name"), "demo-resolvers");
    MK_CHECK_STR(str_at(hpa, "spec/scaleTargetRef/apiVersion"), "apps/v1");
    MK_CHECK_INT(int_at(hpa, "spec/minReplicas"), 3);
    MK_CHECK_INT(int_at(hpa, "spec/maxReplicas"), 8);
    MK_CHECK_STR(str_at(hpa, "spec/metrics/0/resource/name"), "cpu");
    MK_CHECK_STR(str_at(hpa, "spec/metrics/0/resource/target/type"), "Utilization");
    MK_CHECK_INT(int_at(hpa, "spec/metrics/0/resource/target/averageUtilization"), 65);
    MK_CHECK(find_obj(d.apply, "PodDisruptionBudget", "demo-resolvers") != NULL);
    MK_CHECK_INT(json_array_size(d.deletes), 0);
    MK_CHECK_INT(int_at(d.status, "resolvers/replicas"), 5);
    MK_CHECK_INT(int_at(d.status, "resolvers/readyReplicas"), 4);
    MK_CHECK_STR(str_at(d.status, "resolvers/ready"), "4/5");
    mk_op_desired_free(&d);

    /* Autoscaling with defaults (min 2, max 10, 80%) and no resolvers Deployment yet. */
    if (run_cluster("{" PG ",\"resolvers\":{\"autoscaling\":{\"enabled\":true}}}", NULL, NULL,
                    &d) != 0)
        return;
    hpa = find_obj(d.apply, "HorizontalPodAutoscaler", "demo-resolvers");
    MK_CHECK_INT(int_at(hpa, "spec/minReplicas"), 2);
    MK_CHECK_INT(int_at(hpa, "spec/maxReplicas"), 10);
    MK_CHECK_INT(int_at(hpa, "spec/metrics/0/resource/target/averageUtilization"), 80);
    MK_CHECK(at(find_obj(d.apply, "Deployment", "demo-resolvers"), "spec/replicas") == NULL);
    MK_CHECK_INT(int_at(d.status, "resolvers/replicas"), 2);
    mk_op_desired_free(&d);
}

static void check_invalid(const char *spec, const char *want_msg)
{
    mk_op_desired_t d;
    const json_t *ready;

    if (run_cluster(spec, NULL, NULL, &d) != 0)
        return;
    MK_CHECK_INT(json_array_size(d.apply), 0);
    MK_CHECK_INT(json_array_size(d.deletes), 0);
    ready = condition(d.status, "Ready");
    MK_CHECK_STR(str_at(ready, "status"), "False");
    MK_CHECK_STR(str_at(ready, "reason"), "InvalidSpec");
    MK_CHECK_STR(str_at(ready, "message"), want_msg);
    MK_CHECK_INT(int_at(ready, "observedGeneration"), 4);
    MK_CHECK_INT(int_at(d.status, "observedGeneration"), 4);
    MK_CHECK_INT(json_array_size(d.events), 1);
    MK_CHECK_STR(str_at(d.events, "0/type"), "Warning");
    MK_CHECK_STR(str_at(d.events, "0/reason"), "InvalidSpec");
    MK_CHECK_STR(str_at(d.events, "0/message"), want_msg);
    mk_op_desired_free(&d);
}

static void test_invalid_specs(void)
{
    static const struct {
        const char *spec, *msg;
    } cases[] = {
        {"{\"resolvers\":{\"replicas\":2}}",
         "spec.database.type: sqlite is only allowed when resolvers.replicas is 0 and autoscaling "
         "is disabled; use postgres for resolvers"},
        {"{\"resolvers\":{\"autoscaling\":{\"enabled\":true}}}",
         "spec.database.type: sqlite is only allowed when resolvers.replicas is 0 and autoscaling "
         "is disabled; use postgres for resolvers"},
        {"{\"database\":{\"type\":\"postgres\"}}",
         "spec.database.postgres.dsnSecretRef: required when database.type is postgres"},
        {"{\"database\":{\"type\":\"postgres\",\"postgres\":{\"dsnSecretRef\":{\"key\":\"k\"}}}}",
         "spec.database.postgres.dsnSecretRef.name: required"},
        {"{\"database\":{\"type\":\"mysql\"}}",
         "spec.database.type: must be one of sqlite|postgres, not \"mysql\""},
        {"{\"resolvers\":{\"replicas\":\"3\"}}", "spec.resolvers.replicas: must be an integer"},
        {"{\"resolvers\":{\"replicas\":-1}}",
         "spec.resolvers.replicas: must be between 0 and 1000, not -1"},
        {"{\"resolvers\":\"many\"}", "spec.resolvers: must be an object"},
        {"{\"cache\":{\"type\":\"redis\"}}",
         "spec.cache.redis.host: required when cache.type is redis"},
        {"{\"cache\":{\"type\":\"redis\",\"redis\":{\"sentinels\":[\"s1\"]}}}",
         "spec.cache.redis.sentinels[0]: must be host:port"},
        {"{\"shutdownDrain\":\"5 seconds\"}",
         "spec.shutdownDrain: must be a duration such as 5s, 1500ms or 1m, not \"5 seconds\""},
        {"{\"cache\":{\"type\":\"redis\",\"redis\":{\"host\":\"r\",\"port\":70000}}}",
         "spec.cache.redis.port: must be between 1 and 65535, not 70000"},
        {"{" PG ",\"resolvers\":{\"autoscaling\":{\"enabled\":true,\"minReplicas\":5,"
         "\"maxReplicas\":3}}}",
         "spec.resolvers.autoscaling.minReplicas: must not exceed maxReplicas (5 > 3)"},
        {"{\"coordinator\":{\"tls\":{\"enabled\":true}}}",
         "spec.coordinator.tls.secretName: required when tls.enabled is true"},
        {"{\"admin\":{\"env\":[{\"value\":\"x\"}]}}", "spec.admin.env[0].name: required string"},
        {"{\"admin\":{\"service\":{\"type\":\"ExternalName\"}}}",
         "spec.admin.service.type: must be one of ClusterIP|NodePort|LoadBalancer, not "
         "\"ExternalName\""},
        {"{\"image\":{\"pullPolicy\":\"Sometimes\"}}",
         "spec.image.pullPolicy: must be one of Always|IfNotPresent|Never, not \"Sometimes\""},
        {"{\"resolvers\":{\"autoscaling\":{\"enabled\":\"yes\"}}}",
         "spec.resolvers.autoscaling.enabled: must be a boolean"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_invalid(cases[i].spec, cases[i].msg);
}

static void test_invalid_spec_keeps_other_conditions(void)
{
    mk_op_desired_t d;

    if (run_cluster("{\"resolvers\":{\"replicas\":2}}",
                    "{\"phase\":\"Ready\",\"conditions\":["
                    "{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"Ready\",\"message\":\"\","
                    "\"lastTransitionTime\":\"2026-01-01T00:00:00Z\",\"observedGeneration\":3},"
                    "{\"type\":\"AdminReady\",\"status\":\"True\",\"reason\":\"ReplicasReady\","
                    "\"message\":\"1/1\",\"lastTransitionTime\":\"2026-01-01T00:00:00Z\","
                    "\"observedGeneration\":3}]}",
                    NULL, &d) != 0)
        return;
    MK_CHECK_STR(str_at(d.status, "phase"), "Degraded");
    MK_CHECK_STR(str_at(condition(d.status, "Ready"), "lastTransitionTime"),
                 "2026-11-21T10:00:00Z");
    MK_CHECK_STR(str_at(condition(d.status, "AdminReady"), "status"), "True");
    MK_CHECK_STR(str_at(condition(d.status, "AdminReady"), "lastTransitionTime"),
                 "2026-01-01T00:00:00Z");
    mk_op_desired_free(&d);
}

static void test_redis_with_password(void)
{
    mk_op_desired_t d, d2;
    const json_t *cm, *admin, *res;
    char *dump;

    if (run_cluster("{" PG ",\"cache\":{\"type\":\"redis\",\"redis\":{\"host\":\"redis.db\","
                    "\"port\":6380,\"db\":2,\"passwordSecretRef\":{\"name\":\"redis-auth\"}}},"
                    "\"resolvers\":{\"replicas\":2}}",
                    NULL, NULL, &d) != 0)
        return;
    cm = find_obj(d.apply, "ConfigMap", "demo-config");
    MK_CHECK_STR(str_at(cm, "data/CACHE_TYPE"), "redis");
    MK_CHECK_STR(str_at(cm, "data/REPO_REDIS_HOST"), "redis.db");
    MK_CHECK_STR(str_at(cm, "data/REPO_REDIS_PORT"), "6380");
    MK_CHECK_STR(str_at(cm, "data/REPO_REDIS_DB"), "2");
    MK_CHECK(at(cm, "data/REPO_REDIS_PASSWORD") == NULL);
    admin = find_obj(d.apply, "Deployment", "demo-admin");
    res = find_obj(d.apply, "Deployment", "demo-resolvers");
    MK_CHECK_STR(str_at(env_of(admin, "REPO_REDIS_PASSWORD"), "valueFrom/secretKeyRef/name"),
                 "redis-auth");
    MK_CHECK_STR(str_at(env_of(admin, "REPO_REDIS_PASSWORD"), "valueFrom/secretKeyRef/key"),
                 "password");
    MK_CHECK_STR(str_at(env_of(res, "REPO_REDIS_PASSWORD"), "valueFrom/secretKeyRef/name"),
                 "redis-auth");

    /* Another Redis host changes the settings, so the pod template must change too. */
    if (run_cluster("{" PG ",\"cache\":{\"type\":\"redis\",\"redis\":{\"host\":\"redis.other\"}},"
                    "\"resolvers\":{\"replicas\":2}}",
                    NULL, NULL, &d2) == 0) {
        MK_CHECK(strcmp(str_at(admin, "spec/template/metadata/annotations/"
                                      "mockarty.io/config-checksum"),
                        str_at(find_obj(d2.apply, "Deployment", "demo-admin"),
                               "spec/template/metadata/annotations/mockarty.io/config-checksum")) !=
                 0);
        MK_CHECK(env_of(find_obj(d2.apply, "Deployment", "demo-admin"), "REPO_REDIS_PASSWORD") ==
                 NULL);
        MK_CHECK_STR(str_at(find_obj(d2.apply, "ConfigMap", "demo-config"), "data/REPO_REDIS_PORT"),
                     "6379");
        mk_op_desired_free(&d2);
    }
    dump = json_dumps(d.apply, 0);
    MK_CHECK(dump && strstr(dump, "\"stringData\"") == NULL && strstr(dump, "\"Secret\"") == NULL);
    free(dump);
    mk_op_desired_free(&d);
}

/* The large deployment: read replicas and a direct LISTEN by secret, Redis through sentinels, a
 * longer drain (and grace period to match). */
static void test_replicas_sentinels_drain(void)
{
    mk_op_desired_t d;
    const json_t *cm, *admin, *res;

    if (run_cluster("{\"database\":{\"type\":\"postgres\",\"postgres\":{\"dsnSecretRef\":"
                    "{\"name\":\"pg\"}},\"readDsnSecretRef\":{\"name\":\"pg-ro\"},"
                    "\"listenDsnSecretRef\":{\"name\":\"pg-direct\",\"key\":\"dsn\"}},"
                    "\"cache\":{\"type\":\"redis\",\"redis\":{\"sentinels\":"
                    "[\"s0.redis:26379\",\"s1.redis:26379\"],\"masterName\":\"mk\"}},"
                    "\"shutdownDrain\":\"15s\",\"resolvers\":{\"replicas\":3}}",
                    NULL, NULL, &d) != 0)
        return;
    cm = find_obj(d.apply, "ConfigMap", "demo-config");
    MK_CHECK_STR(str_at(cm, "data/REPO_REDIS_SENTINELS"), "s0.redis:26379,s1.redis:26379");
    MK_CHECK_STR(str_at(cm, "data/REPO_REDIS_MASTER_NAME"), "mk");
    MK_CHECK(at(cm, "data/REPO_REDIS_HOST") == NULL);
    MK_CHECK_STR(str_at(cm, "data/SHUTDOWN_DRAIN"), "15s");
    admin = find_obj(d.apply, "Deployment", "demo-admin");
    res = find_obj(d.apply, "Deployment", "demo-resolvers");
    MK_CHECK_STR(str_at(env_of(res, "DB_READ_DSN"), "valueFrom/secretKeyRef/name"), "pg-ro");
    MK_CHECK_STR(str_at(env_of(res, "DB_READ_DSN"), "valueFrom/secretKeyRef/key"), "readDsn");
    MK_CHECK(env_of(admin, "DB_READ_DSN") == NULL);
    MK_CHECK_STR(str_at(env_of(admin, "DB_LISTEN_DSN"), "valueFrom/secretKeyRef/name"),
                 "pg-direct");
    MK_CHECK_STR(str_at(env_of(res, "DB_LISTEN_DSN"), "valueFrom/secretKeyRef/key"), "dsn");
    MK_CHECK_INT(int_at(res, "spec/template/spec/terminationGracePeriodSeconds"), 40);
    mk_op_desired_free(&d);
}

static void test_tls_and_user_settings(void)
{
    mk_op_desired_t d;
    const json_t *admin, *res, *vol, *svc, *c;

    if (run_cluster("{" PG ",\"image\":{\"repository\":\"reg.local/mk\",\"tag\":\"1.2.3\","
                    "\"pullPolicy\":\"Always\"},"
                    "\"coordinator\":{\"tls\":{\"enabled\":true,\"secretName\":\"coord-tls\","
                    "\"clientCASecretName\":\"runner-ca\"}},"
                    "\"admin\":{\"resources\":{\"limits\":{\"memory\":\"512Mi\"}},"
                    "\"env\":[{\"name\":\"LOG_LEVEL\",\"value\":\"debug\"},"
                    "{\"name\":\"HTTP_PORT\",\"value\":\"5770\"},"
                    "{\"name\":\"DB_DSN\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"o\","
                    "\"key\":\"k\"}}}],"
                    "\"service\":{\"type\":\"LoadBalancer\",\"annotations\":{\"a/b\":\"c\"}}},"
                    "\"resolvers\":{\"replicas\":2}}",
                    NULL, NULL, &d) != 0)
        return;
    admin = find_obj(d.apply, "Deployment", "demo-admin");
    c = at(admin, "spec/template/spec/containers/0");
    MK_CHECK_STR(str_at(c, "image"), "reg.local/mk:1.2.3");
    MK_CHECK_STR(str_at(c, "imagePullPolicy"), "Always");
    MK_CHECK_STR(str_at(c, "resources/limits/memory"), "512Mi");
    vol = find_named(at(admin, "spec/template/spec/volumes"), "coordinator-tls");
    MK_CHECK_STR(str_at(vol, "secret/secretName"), "coord-tls");
    MK_CHECK_STR(str_at(find_named(at(c, "volumeMounts"), "coordinator-tls"), "mountPath"),
                 "/etc/mockarty/tls");
    MK_CHECK(json_is_true(at(find_named(at(c, "volumeMounts"), "coordinator-tls"), "readOnly")));
    MK_CHECK_STR(str_at(env_of(admin, "RUNNER_GRPC_TLS_CERT_FILE"), "value"),
                 "/etc/mockarty/tls/tls.crt");
    MK_CHECK_STR(str_at(env_of(admin, "RUNNER_GRPC_TLS_KEY_FILE"), "value"),
                 "/etc/mockarty/tls/tls.key");
    MK_CHECK_STR(
        str_at(find_named(at(admin, "spec/template/spec/volumes"), "coordinator-client-ca"),
               "secret/secretName"),
        "runner-ca");
    MK_CHECK_STR(str_at(env_of(admin, "RUNNER_GRPC_TLS_CLIENT_CA_CERT"), "value"),
                 "/etc/mockarty/client-ca/ca.crt");
    MK_CHECK_STR(
        str_at(find_obj(d.apply, "ConfigMap", "demo-config"), "data/RUNNER_GRPC_TLS_ENABLED"),
        "true");
    res = find_obj(d.apply, "Deployment", "demo-resolvers");
    MK_CHECK_STR(str_at(find_named(at(res, "spec/template/spec/volumes"), "coordinator-tls"),
                        "secret/secretName"),
                 "coord-tls");
    /* User env is passed through; a name the operator also sets is replaced, never repeated
     * (server-side apply rejects duplicate list-map keys). */
    MK_CHECK_STR(str_at(env_of(admin, "LOG_LEVEL"), "value"), "debug");
    MK_CHECK_INT(count_env(admin, "DB_DSN"), 1);
    MK_CHECK_STR(str_at(env_of(admin, "DB_DSN"), "valueFrom/secretKeyRef/name"), "o");
    MK_CHECK(env_of(res, "LOG_LEVEL") == NULL);
    svc = find_obj(d.apply, "Service", "demo-admin");
    MK_CHECK_STR(str_at(svc, "spec/type"), "LoadBalancer");
    MK_CHECK_STR(json_string_value(json_object_get(at(svc, "metadata/annotations"), "a/b")), "c");
    mk_op_desired_free(&d);
}

/* A Deployment as observed: generation, spec and status replicas, Progressing reason/status. */
static void observed_dep(char *buf, size_t n, const char *name, int want, int ready,
                         const char *prog_status, const char *prog_reason)
{
    snprintf(buf, n,
             "\"%s\":{\"metadata\":{\"generation\":2},\"spec\":{\"replicas\":%d},"
             "\"status\":{\"observedGeneration\":2,\"replicas\":%d,\"updatedReplicas\":%d,"
             "\"readyReplicas\":%d,\"conditions\":[{\"type\":\"Progressing\",\"status\":\"%s\","
             "\"reason\":\"%s\",\"message\":\"m\"}]}}",
             name, want, want, want, ready, prog_status, prog_reason);
}

static void test_status_phases(void)
{
    static const struct {
        int admin_ready, res_ready;
        const char *prog_status, *prog_reason, *phase, *res_reason, *event_type;
    } cases[] = {
        {1, 3, "True", "NewReplicaSetAvailable", "Ready", "ReplicasReady", "Normal"},
        {1, 1, "True", "ReplicaSetUpdated", "Progressing", "ReplicasNotReady", "Normal"},
        {0, 3, "True", "ReplicaSetUpdated", "Progressing", "ReplicasReady", "Normal"},
        {1, 1, "True", "NewReplicaSetAvailable", "Degraded", "ReplicasNotReady", "Warning"},
        {1, 0, "False", "ProgressDeadlineExceeded", "Degraded", "DeploymentFailed", "Warning"},
    };
    char a[512], r[512], deps[1100];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mk_op_desired_t d;

        observed_dep(a, sizeof a, "demo-admin", 1, cases[i].admin_ready, "True",
                     cases[i].admin_ready ? "NewReplicaSetAvailable" : "ReplicaSetUpdated");
        observed_dep(r, sizeof r, "demo-resolvers", 3, cases[i].res_ready, cases[i].prog_status,
                     cases[i].prog_reason);
        snprintf(deps, sizeof deps, "{%s,%s}", a, r);
        if (run_cluster("{" PG ",\"resolvers\":{\"replicas\":3}}", "{\"phase\":\"Pending\"}", deps,
                        &d) != 0)
            return;
        MK_CHECK_STR(str_at(d.status, "phase"), cases[i].phase);
        MK_CHECK_STR(str_at(condition(d.status, "ResolversReady"), "reason"), cases[i].res_reason);
        MK_CHECK_STR(str_at(condition(d.status, "Ready"), "status"),
                     strcmp(cases[i].phase, "Ready") == 0 ? "True" : "False");
        MK_CHECK_STR(str_at(condition(d.status, "AdminReady"), "status"),
                     cases[i].admin_ready ? "True" : "False");
        MK_CHECK_INT(int_at(d.status, "admin/readyReplicas"), cases[i].admin_ready);
        MK_CHECK_INT(int_at(d.status, "resolvers/readyReplicas"), cases[i].res_ready);
        MK_CHECK_INT(int_at(d.status, "resolvers/replicas"), 3);
        /* The phase left Pending, so exactly one event says where it went. */
        MK_CHECK_INT(json_array_size(d.events), 1);
        MK_CHECK_STR(str_at(d.events, "0/reason"), cases[i].phase);
        MK_CHECK_STR(str_at(d.events, "0/type"), cases[i].event_type);
        mk_op_desired_free(&d);
    }
}

static void test_last_transition_time(void)
{
    const char *prev =
        "{\"phase\":\"Progressing\",\"conditions\":["
        "{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"ComponentsNotReady\","
        "\"message\":\"x\",\"lastTransitionTime\":\"2026-11-20T00:00:00Z\",\"observedGeneration\":"
        "3},"
        "{\"type\":\"AdminReady\",\"status\":\"False\",\"reason\":\"ReplicasNotReady\","
        "\"message\":\"x\",\"lastTransitionTime\":\"2026-11-20T00:00:01Z\",\"observedGeneration\":"
        "3},"
        "{\"type\":\"ResolversReady\",\"status\":\"True\",\"reason\":\"NoResolvers\","
        "\"message\":\"x\",\"lastTransitionTime\":\"2026-11-20T00:00:02Z\",\"observedGeneration\":"
        "3}]}";
    char a[512], deps[600];
    mk_op_desired_t d;

    /* Nothing changed status: every time is kept, the reason and generation are refreshed. */
    observed_dep(a, sizeof a, "demo-admin", 1, 0, "True", "ReplicaSetUpdated");
    snprintf(deps, sizeof deps, "{%s}", a);
    if (run_cluster("{}", prev, deps, &d) != 0)
        return;
    MK_CHECK_STR(str_at(d.status, "phase"), "Progressing");
    MK_CHECK_STR(str_at(condition(d.status, "Ready"), "lastTransitionTime"),
                 "2026-11-20T00:00:00Z");
    MK_CHECK_STR(str_at(condition(d.status, "AdminReady"), "lastTransitionTime"),
                 "2026-11-20T00:00:01Z");
    MK_CHECK_STR(str_at(condition(d.status, "ResolversReady"), "lastTransitionTime"),
                 "2026-11-20T00:00:02Z");
    MK_CHECK_INT(int_at(condition(d.status, "Ready"), "observedGeneration"), 4);
    MK_CHECK_INT(json_array_size(d.events), 0);
    mk_op_desired_free(&d);

    /* The admin became ready: Ready and AdminReady flip and take the new time. */
    observed_dep(a, sizeof a, "demo-admin", 1, 1, "True", "NewReplicaSetAvailable");
    snprintf(deps, sizeof deps, "{%s}", a);
    if (run_cluster("{}", prev, deps, &d) != 0)
        return;
    MK_CHECK_STR(str_at(d.status, "phase"), "Ready");
    MK_CHECK_STR(str_at(condition(d.status, "Ready"), "status"), "True");
    MK_CHECK_STR(str_at(condition(d.status, "Ready"), "lastTransitionTime"),
                 "2026-11-21T10:00:00Z");
    MK_CHECK_STR(str_at(condition(d.status, "AdminReady"), "lastTransitionTime"),
                 "2026-11-21T10:00:00Z");
    MK_CHECK_STR(str_at(condition(d.status, "ResolversReady"), "lastTransitionTime"),
                 "2026-11-20T00:00:02Z");
    MK_CHECK_INT(json_array_size(d.events), 1);
    MK_CHECK_STR(str_at(d.events, "0/reason"), "Ready");
    mk_op_desired_free(&d);
}

static void test_bad_metadata_is_an_error(void)
{
    json_t *c = load("{\"spec\":{}}");
    mk_op_desired_t d;
    mk_err_t err = {0};

    MK_CHECK_INT(mk_op_cluster_desired(c, NULL, &d, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "metadata.name") != NULL);
    MK_CHECK(d.apply == NULL && d.status == NULL);
    MK_CHECK_INT(mk_op_runnerpool_desired(c, NULL, NULL, &d, &err), MK_EINVAL);
    json_decref(c);
}

/* ---- runner pools ---- */

static json_t *pool(const char *spec, const char *status)
{
    char buf[2048];

    snprintf(buf, sizeof buf,
             "{\"apiVersion\":\"mockarty.io/v1alpha1\",\"kind\":\"MockartyRunnerPool\","
             "\"metadata\":{\"name\":\"team-a\",\"namespace\":\"team-a-ns\",\"uid\":\"uid-1\","
             "\"generation\":2},\"spec\":%s%s%s}",
             spec, status ? ",\"status\":" : "", status ? status : "");
    return load(buf);
}

static int run_pool(const char *spec, const char *status, bool with_cluster, const char *deps,
                    mk_op_desired_t *d)
{
    json_t *p = pool(spec, status);
    json_t *c = with_cluster
                    ? load("{\"metadata\":{\"name\":\"prod\",\"namespace\":\"mockarty\"},"
                           "\"spec\":{\"image\":{\"repository\":\"reg/mk\",\"tag\":\"2.0\"},"
                           "\"coordinator\":{\"tls\":{\"enabled\":true,"
                           "\"secretName\":\"t\"}}}}")
                    : NULL;
    json_t *o = observed(deps ? deps : "{}", "2026-11-21T10:00:00Z");
    mk_err_t err = {0};
    int rc = mk_op_runnerpool_desired(p, c, o, d, &err);

    MK_CHECK_INT(rc, 0);
    json_decref(p);
    json_decref(c);
    json_decref(o);
    return rc;
}

#define POOL_BASE                                                                                  \
    "\"clusterRef\":{\"name\":\"prod\",\"namespace\":\"mockarty\"},"                               \
    "\"tokenSecretRef\":{\"name\":\"team-a-token\"}"

static void test_pool_with_cluster(void)
{
    mk_op_desired_t d;
    const json_t *dep, *c;

    if (run_pool("{" POOL_BASE ",\"replicas\":2,\"maxConcurrent\":8,\"capabilities\":"
                 "[\"performance\"],\"resources\":{\"limits\":{\"cpu\":\"2\"}},"
                 "\"tls\":{\"caSecretName\":\"coord-ca\"}}",
                 NULL, true, NULL, &d) != 0)
        return;
    MK_CHECK_INT(json_array_size(d.apply), 1);
    check_children(&d, "MockartyRunnerPool", "team-a", "team-a-ns");
    dep = find_obj(d.apply, "Deployment", "team-a-runner");
    MK_CHECK_INT(int_at(dep, "spec/replicas"), 2);
    MK_CHECK_STR(str_at(dep, "spec/selector/matchLabels/app.kubernetes.io/component"), "runner");
    c = at(dep, "spec/template/spec/containers/0");
    MK_CHECK_STR(str_at(c, "image"), "reg/mk:2.0");
    MK_CHECK_STR(str_at(c, "args/0"), "mockarty-runner");
    MK_CHECK_STR(str_at(c, "resources/limits/cpu"), "2");
    MK_CHECK_STR(str_at(env_of(dep, "COORDINATOR_ADDR"), "value"), "prod-admin.mockarty.svc:5773");
    MK_CHECK_STR(str_at(env_of(dep, "API_TOKEN"), "valueFrom/secretKeyRef/name"), "team-a-token");
    MK_CHECK_STR(str_at(env_of(dep, "API_TOKEN"), "valueFrom/secretKeyRef/key"), "token");
    MK_CHECK_STR(str_at(env_of(dep, "CAPABILITIES"), "value"), "performance");
    MK_CHECK_STR(str_at(env_of(dep, "SHARED"), "value"), "false");
    MK_CHECK_STR(str_at(env_of(dep, "NAMESPACE"), "value"), "team-a-ns");
    MK_CHECK_STR(str_at(env_of(dep, "MAX_CONCURRENT"), "value"), "8");
    MK_CHECK_STR(str_at(env_of(dep, "RUNNER_NAME"), "valueFrom/fieldRef/fieldPath"),
                 "metadata.name");
    MK_CHECK_STR(str_at(env_of(dep, "RUNNER_GRPC_TLS_ENABLED"), "value"), "true");
    MK_CHECK_STR(str_at(find_named(at(dep, "spec/template/spec/volumes"), "coordinator-ca"),
                        "secret/secretName"),
                 "coord-ca");
    MK_CHECK_STR(str_at(d.status, "conditions/0/type"), "Ready");
    MK_CHECK_STR(str_at(d.status, "conditions/0/reason"), "DeploymentNotFound");
    MK_CHECK_INT(int_at(d.status, "replicas"), 2);
    MK_CHECK_INT(int_at(d.status, "readyReplicas"), 0);
    MK_CHECK_INT(int_at(d.status, "observedGeneration"), 2);
    MK_CHECK_STR(str_at(d.events, "0/type"), "Normal");
    mk_op_desired_free(&d);

    /* Defaults: one runner, both capabilities, 4 at a time; ready when the Deployment is. */
    if (run_pool("{" POOL_BASE "}", NULL, true,
                 "{\"team-a-runner\":{\"status\":{\"readyReplicas\":1}}}", &d) != 0)
        return;
    dep = find_obj(d.apply, "Deployment", "team-a-runner");
    MK_CHECK_INT(int_at(dep, "spec/replicas"), 1);
    MK_CHECK_STR(str_at(env_of(dep, "CAPABILITIES"), "value"), "api_test,performance");
    MK_CHECK_STR(str_at(env_of(dep, "MAX_CONCURRENT"), "value"), "4");
    /* Another namespace than the cluster's and no caSecretName: no CA to mount. */
    MK_CHECK(find_named(at(dep, "spec/template/spec/volumes"), "coordinator-ca") == NULL);
    MK_CHECK_STR(str_at(d.status, "conditions/0/status"), "True");
    MK_CHECK_STR(str_at(d.status, "conditions/0/reason"), "ReplicasReady");
    MK_CHECK_INT(int_at(d.status, "readyReplicas"), 1);
    mk_op_desired_free(&d);
}

/* Same namespace as the cluster: the CA defaults to the cluster's coordinator Secret; mTLS
 * client certificate; the image at the cluster's status.version; a missing token Secret. */
static void test_pool_tls_version_and_token(void)
{
    json_t *p = load("{\"apiVersion\":\"mockarty.io/v1alpha1\",\"kind\":\"MockartyRunnerPool\","
                     "\"metadata\":{\"name\":\"r\",\"namespace\":\"mockarty\",\"uid\":\"u\","
                     "\"generation\":1},\"spec\":{\"clusterRef\":{\"name\":\"prod\"},"
                     "\"tokenSecretRef\":{\"name\":\"tok\"},"
                     "\"tls\":{\"clientCertSecretName\":\"runner-cert\"}}}");
    json_t *c = load("{\"metadata\":{\"name\":\"prod\",\"namespace\":\"mockarty\"},"
                     "\"spec\":{\"image\":{\"repository\":\"reg/mk\",\"tag\":\"2.1\"},"
                     "\"coordinator\":{\"tls\":{\"enabled\":true,\"secretName\":\"coord\"}}},"
                     "\"status\":{\"version\":\"2.0\"}}");
    json_t *o = observed("{}", "2026-11-21T10:00:00Z");
    mk_op_desired_t d = {0};
    mk_err_t err = {0};

    MK_CHECK_INT(mk_op_runnerpool_desired(p, c, o, &d, &err), 0);
    const json_t *dep = find_obj(d.apply, "Deployment", "r-runner");
    const json_t *vols = at(dep, "spec/template/spec/volumes");
    MK_CHECK_STR(str_at(dep, "spec/template/spec/containers/0/image"), "reg/mk:2.0");
    MK_CHECK_STR(str_at(find_named(vols, "coordinator-ca"), "secret/secretName"), "coord");
    MK_CHECK_STR(str_at(find_named(vols, "runner-tls"), "secret/secretName"), "runner-cert");
    MK_CHECK_STR(str_at(env_of(dep, "RUNNER_GRPC_TLS_CA_FILE"), "value"),
                 "/etc/mockarty/coordinator-ca/ca.crt");
    MK_CHECK_STR(str_at(env_of(dep, "RUNNER_GRPC_TLS_CERT_FILE"), "value"),
                 "/etc/mockarty/runner-tls/tls.crt");
    MK_CHECK_STR(str_at(env_of(dep, "RUNNER_GRPC_TLS_KEY_FILE"), "value"),
                 "/etc/mockarty/runner-tls/tls.key");
    mk_op_desired_free(&d);

    json_object_set_new(o, "tokenSecret", json_false());
    MK_CHECK_INT(mk_op_runnerpool_desired(p, c, o, &d, &err), 0);
    MK_CHECK_INT(json_array_size(d.apply), 0);
    MK_CHECK_STR(str_at(d.status, "conditions/0/status"), "False");
    MK_CHECK_STR(str_at(d.status, "conditions/0/reason"), "TokenSecretNotFound");
    MK_CHECK(strstr(str_at(d.status, "conditions/0/message"), "mockarty/tok") != NULL);
    MK_CHECK_STR(str_at(d.events, "0/type"), "Warning");
    mk_op_desired_free(&d);
    json_decref(p);
    json_decref(c);
    json_decref(o);
}

static void test_pool_without_cluster(void)
{
    mk_op_desired_t d;

    if (run_pool("{" POOL_BASE "}", NULL, false, NULL, &d) != 0)
        return;
    MK_CHECK_INT(json_array_size(d.apply), 0);
    MK_CHECK_INT(json_array_size(d.deletes), 0);
    MK_CHECK_STR(str_at(d.status, "conditions/0/status"), "False");
    MK_CHECK_STR(str_at(d.status, "conditions/0/reason"), "ClusterNotFound");
    MK_CHECK(strstr(str_at(d.status, "conditions/0/message"), "mockarty/prod") != NULL);
    MK_CHECK_INT(json_array_size(d.events), 1);
    MK_CHECK_STR(str_at(d.events, "0/type"), "Warning");
    mk_op_desired_free(&d);

    /* Still missing on the retry: same condition time, no second event. */
    if (run_pool("{" POOL_BASE "}",
                 "{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","
                 "\"reason\":\"ClusterNotFound\",\"message\":\"m\","
                 "\"lastTransitionTime\":\"2026-11-21T09:00:00Z\",\"observedGeneration\":2}]}",
                 false, NULL, &d) != 0)
        return;
    MK_CHECK_STR(str_at(d.status, "conditions/0/lastTransitionTime"), "2026-11-21T09:00:00Z");
    MK_CHECK_INT(json_array_size(d.events), 0);
    mk_op_desired_free(&d);
}

static void test_pool_shared_and_namespace(void)
{
    mk_op_desired_t d;
    const json_t *dep;

    if (run_pool("{" POOL_BASE ",\"shared\":true}", NULL, true, NULL, &d) != 0)
        return;
    dep = find_obj(d.apply, "Deployment", "team-a-runner");
    MK_CHECK_STR(str_at(env_of(dep, "SHARED"), "value"), "true");
    MK_CHECK(env_of(dep, "NAMESPACE") == NULL);
    mk_op_desired_free(&d);

    if (run_pool("{" POOL_BASE ",\"mockartyNamespace\":\"payments\"}", NULL, true, NULL, &d) != 0)
        return;
    dep = find_obj(d.apply, "Deployment", "team-a-runner");
    MK_CHECK_STR(str_at(env_of(dep, "NAMESPACE"), "value"), "payments");
    mk_op_desired_free(&d);
}

static void test_pool_invalid(void)
{
    static const struct {
        const char *spec, *msg;
    } cases[] = {
        {"{" POOL_BASE ",\"shared\":true,\"mockartyNamespace\":\"x\"}",
         "spec.mockartyNamespace: must not be set when spec.shared is true (they are mutually "
         "exclusive)"},
        {"{\"clusterRef\":{\"name\":\"prod\"}}",
         "spec.tokenSecretRef: required (an mki_ integration token)"},
        {"{\"tokenSecretRef\":{\"name\":\"t\"}}", "spec.clusterRef.name: required"},
        {"{" POOL_BASE ",\"capabilities\":[\"api_test\",\"chaos\"]}",
         "spec.capabilities[1]: must be one of api_test|performance"},
        {"{" POOL_BASE ",\"maxConcurrent\":0}",
         "spec.maxConcurrent: must be between 1 and 1000, not 0"},
        {"{" POOL_BASE ",\"replicas\":true}", "spec.replicas: must be an integer"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mk_op_desired_t d;

        if (run_pool(cases[i].spec, NULL, true, NULL, &d) != 0)
            return;
        MK_CHECK_INT(json_array_size(d.apply), 0);
        MK_CHECK_STR(str_at(condition(d.status, "Ready"), "reason"), "InvalidSpec");
        MK_CHECK_STR(str_at(condition(d.status, "Ready"), "message"), cases[i].msg);
        MK_CHECK_STR(str_at(d.events, "0/type"), "Warning");
        mk_op_desired_free(&d);
    }
}

/* A Deployment of the cluster as observed: template version and image, rolled out or not. */
static void dep_json(char *buf, size_t n, const char *name, const char *version, bool rolled,
                     int ready)
{
    snprintf(buf, n,
             "\"%s\":{\"metadata\":{\"generation\":2},\"spec\":{\"replicas\":1,"
             "\"template\":{\"metadata\":{\"annotations\":{\"mockarty.io/version\":\"%s\"}},"
             "\"spec\":{\"containers\":[{\"image\":\"mockarty/mockarty:%s\"}]}}},"
             "\"status\":{\"observedGeneration\":%d,\"updatedReplicas\":1,"
             "\"readyReplicas\":%d,\"conditions\":[{\"type\":\"Progressing\","
             "\"status\":\"True\",\"reason\":\"%s\"}]}}",
             name, version, version, rolled ? 2 : 1, ready,
             rolled ? "NewReplicaSetAvailable" : "ReplicaSetUpdated");
}

static void test_admin_first_upgrade(void)
{
    const char *spec = "{\"image\":{\"tag\":\"0.2.0\"},\"database\":{\"type\":\"postgres\","
                       "\"postgres\":{\"dsnSecretRef\":{\"name\":\"pg\"}}},"
                       "\"resolvers\":{\"replicas\":1}}";
    const char *prev = "{\"version\":\"0.1.0\"}";
    char a[1024], r[1024], deps[2200];
    mk_op_desired_t d = {0};

    /* The admin is still rolling to 0.2.0: resolvers keep 0.1.0. */
    dep_json(a, sizeof a, "demo-admin", "0.2.0", false, 1);
    dep_json(r, sizeof r, "demo-resolvers", "0.1.0", true, 1);
    snprintf(deps, sizeof deps, "{%s,%s}", a, r);
    if (run_cluster(spec, prev, deps, &d) != 0)
        return;
    const json_t *res = find_obj(d.apply, "Deployment", "demo-resolvers");
    const json_t *adm = find_obj(d.apply, "Deployment", "demo-admin");
    MK_CHECK_STR(str_at(adm, "spec/template/spec/containers/0/image"), "mockarty/mockarty:0.2.0");
    MK_CHECK_STR(str_at(res, "spec/template/spec/containers/0/image"), "mockarty/mockarty:0.1.0");
    MK_CHECK_STR(str_at(res, "spec/template/metadata/annotations/mockarty.io/version"), "0.1.0");
    MK_CHECK_STR(str_at(d.status, "version"), "0.1.0");
    MK_CHECK_STR(str_at(condition(d.status, "Upgrading"), "reason"), "AdminRollingOut");
    MK_CHECK_STR(str_at(condition(d.status, "Upgrading"), "status"), "True");
    mk_op_desired_free(&d);

    /* The admin is available at 0.2.0: resolvers follow. */
    dep_json(a, sizeof a, "demo-admin", "0.2.0", true, 1);
    snprintf(deps, sizeof deps, "{%s,%s}", a, r);
    if (run_cluster(spec, prev, deps, &d) != 0)
        return;
    res = find_obj(d.apply, "Deployment", "demo-resolvers");
    MK_CHECK_STR(str_at(res, "spec/template/spec/containers/0/image"), "mockarty/mockarty:0.2.0");
    MK_CHECK_STR(str_at(d.status, "version"), "0.2.0");
    MK_CHECK_STR(str_at(condition(d.status, "Upgrading"), "reason"), "NodesRollingOut");
    bool upgraded_event = false;
    const json_t *ev;
    size_t i;
    json_array_foreach(d.events, i, ev)
    {
        upgraded_event |=
            str_at(ev, "reason") && strcmp(str_at(ev, "reason"), "AdminUpgraded") == 0;
    }
    MK_CHECK(upgraded_event);
    mk_op_desired_free(&d);

    /* Every node at 0.2.0, then the admin goes down at 0.2.0: no upgrade, no rollback. */
    dep_json(r, sizeof r, "demo-resolvers", "0.2.0", true, 1);
    snprintf(deps, sizeof deps, "{%s,%s}", a, r);
    if (run_cluster(spec, "{\"version\":\"0.2.0\"}", deps, &d) != 0)
        return;
    MK_CHECK_STR(str_at(condition(d.status, "Upgrading"), "reason"), "UpToDate");
    MK_CHECK_STR(str_at(condition(d.status, "Upgrading"), "status"), "False");
    mk_op_desired_free(&d);
    dep_json(a, sizeof a, "demo-admin", "0.2.0", true, 0);
    snprintf(deps, sizeof deps, "{%s,%s}", a, r);
    if (run_cluster(spec, "{\"version\":\"0.2.0\"}", deps, &d) != 0)
        return;
    MK_CHECK_STR(str_at(condition(d.status, "Upgrading"), "reason"), "UpToDate");
    MK_CHECK_STR(str_at(d.status, "version"), "0.2.0");
    res = find_obj(d.apply, "Deployment", "demo-resolvers");
    MK_CHECK_STR(str_at(res, "spec/template/spec/containers/0/image"), "mockarty/mockarty:0.2.0");
    mk_op_desired_free(&d);

    /* First install: nothing observed, resolvers start at the asked version. */
    if (run_cluster(spec, NULL, NULL, &d) != 0)
        return;
    res = find_obj(d.apply, "Deployment", "demo-resolvers");
    MK_CHECK_STR(str_at(res, "spec/template/spec/containers/0/image"), "mockarty/mockarty:0.2.0");
    MK_CHECK_STR(str_at(condition(d.status, "Upgrading"), "reason"), "Installing");
    MK_CHECK(at(d.status, "version") == NULL);
    mk_op_desired_free(&d);
}

int main(void)
{
    MK_RUN(test_defaults_single_node_sqlite);
    MK_RUN(test_postgres_static_resolvers_with_pdb);
    MK_RUN(test_single_resolver_has_no_pdb);
    MK_RUN(test_autoscaling_on_leaves_replicas_to_hpa);
    MK_RUN(test_invalid_specs);
    MK_RUN(test_invalid_spec_keeps_other_conditions);
    MK_RUN(test_redis_with_password);
    MK_RUN(test_replicas_sentinels_drain);
    MK_RUN(test_tls_and_user_settings);
    MK_RUN(test_status_phases);
    MK_RUN(test_last_transition_time);
    MK_RUN(test_bad_metadata_is_an_error);
    MK_RUN(test_pool_with_cluster);
    MK_RUN(test_pool_without_cluster);
    MK_RUN(test_pool_shared_and_namespace);
    MK_RUN(test_pool_invalid);
    MK_RUN(test_pool_tls_version_and_token);
    MK_RUN(test_admin_first_upgrade);
    return mk_testing_done();
}
