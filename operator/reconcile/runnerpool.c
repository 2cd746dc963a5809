/* MockartyRunnerPool reconcile: one runner Deployment in the pool's namespace, pointed at the
 * coordinator of the referenced MockartyCluster, and the pool's status. */
#include "reconcile.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define CA_DIR   "/etc/mockarty/coordinator-ca"
#define CERT_DIR "/etc/mockarty/runner-tls"

typedef struct pool_spec {
    const char *cluster_name, *cluster_ns;
    char caps[64];
    long long replicas, max_concurrent;
    bool shared;
    const char *mk_namespace, *token_name, *token_key, *ca_secret, *client_cert;
    const json_t *resources, *env;
} pool_spec_t;

static void read_spec(mk_op_spec_t *sp, const json_t *pool, const char *ns, pool_spec_t *ps)
{
    const json_t *spec = json_object_get(pool, "spec");
    const json_t *ref, *caps, *cap, *tls;
    bool seen_api = false, seen_perf = false;
    size_t i;

    memset(ps, 0, sizeof *ps);
    if (spec && !json_is_object(spec))
        mk_op_spec_fail(sp, "spec: must be an object");
    ref = mk_op_spec_obj(sp, spec, "spec", "clusterRef");
    ps->cluster_name = mk_op_spec_str(sp, ref, "spec.clusterRef", "name", NULL);
    ps->cluster_ns = mk_op_spec_str(sp, ref, "spec.clusterRef", "namespace", ns);
    if (!ps->cluster_name || !*ps->cluster_name)
        mk_op_spec_fail(sp, "spec.clusterRef.name: required");
    if (!*ps->cluster_ns)
        ps->cluster_ns = ns;

    caps = mk_op_spec_array(sp, spec, "spec", "capabilities");
    json_array_foreach(caps, i, cap)
    {
        const char *c = json_string_value(cap);

        if (c && strcmp(c, "api_test") == 0)
            seen_api = true;
        else if (c && strcmp(c, "performance") == 0)
            seen_perf = true;
        else
            mk_op_spec_fail(sp, "spec.capabilities[%zu]: must be one of api_test|performance", i);
    }
    if (caps && json_array_size(caps) == 0)
        mk_op_spec_fail(sp, "spec.capabilities: must not be empty");
    if (!caps)
        seen_api = seen_perf = true;
    snprintf(ps->caps, sizeof ps->caps, "%s%s%s", seen_api ? "api_test" : "",
             seen_api && seen_perf ? "," : "", seen_perf ? "performance" : "");

    ps->replicas = mk_op_spec_int(sp, spec, "spec", "replicas", 1, 0, 1000);
    ps->max_concurrent = mk_op_spec_int(sp, spec, "spec", "maxConcurrent", 4, 1, 1000);
    ps->shared = mk_op_spec_bool(sp, spec, "spec", "shared", false);
    ps->mk_namespace = mk_op_spec_str(sp, spec, "spec", "mockartyNamespace", NULL);
    mk_op_spec_secret_ref(sp, spec, "spec", "tokenSecretRef", "token", &ps->token_name,
                          &ps->token_key);
    if (!ps->token_name)
        mk_op_spec_fail(sp, "spec.tokenSecretRef: required (an mki_ integration token)");
    ps->resources = mk_op_spec_obj(sp, spec, "spec", "resources");
    ps->env = mk_op_spec_array(sp, spec, "spec", "env");
    mk_op_spec_env(sp, ps->env, "spec.env");
    tls = mk_op_spec_obj(sp, spec, "spec", "tls");
    ps->ca_secret = mk_op_spec_str(sp, tls, "spec.tls", "caSecretName", NULL);
    ps->client_cert = mk_op_spec_str(sp, tls, "spec.tls", "clientCertSecretName", NULL);
    if (ps->shared && ps->mk_namespace && *ps->mk_namespace)
        mk_op_spec_fail(sp, "spec.mockartyNamespace: must not be set when spec.shared is true "
                            "(they are mutually exclusive)");
}

static int env_value(json_t *env, const char *name, const char *value)
{
    return mk_op_env_set(env, json_pack("{s:s, s:s}", "name", name, "value", value));
}

static int mount_secret(json_t *volumes, json_t *mounts, const char *name, const char *secret,
                        const char *dir)
{
    if (json_array_append_new(volumes, json_pack("{s:s, s:{s:s, s:i}}", "name", name, "secret",
                                                 "secretName", secret, "defaultMode", 0440)) != 0 ||
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:b}", "name", name, "mountPath", dir,
                                                "readOnly", 1)) != 0)
        return MK_ENOMEM;
    return 0;
}

/* The cluster's image at the version its admin is available at (status.version): runners are
 * upgraded after the admin, like resolvers. Falls back to the spec's tag before the first
 * status. *holder keeps the strings alive; the caller releases it. */
static const char *runner_image(mk_op_spec_t *sp, const json_t *cluster, char *buf, size_t size,
                                const char **pull, json_t **holder)
{
    const json_t *cspec = json_object_get(cluster, "spec");
    const char *ver =
        json_string_value(json_object_get(json_object_get(cluster, "status"), "version"));
    json_t *img = json_deep_copy(json_object_get(cspec, "image"));

    if (!img)
        img = json_object();
    if (ver && img)
        json_object_set_new(img, "tag", json_string(ver));
    *holder = json_pack("{s:o*}", "image", img);
    return mk_op_image(sp, *holder, buf, size, pull);
}

static json_t *runner_deployment(const pool_spec_t *ps, const mk_op_owner_t *ow,
                                 const json_t *cluster, mk_op_spec_t *sp)
{
    const json_t *cmeta = json_object_get(cluster, "metadata");
    const json_t *cspec = json_object_get(cluster, "spec");
    const char *cname = json_string_value(json_object_get(cmeta, "name"));
    const char *cns = json_string_value(json_object_get(cmeta, "namespace"));
    const json_t *tls = json_object_get(json_object_get(cspec, "coordinator"), "tls");
    bool tls_on = json_is_true(json_object_get(tls, "enabled"));
    json_t *env = json_array(), *volumes = json_array(), *mounts = json_array();
    json_t *c = NULL, *pod = NULL, *dep = NULL, *img_holder = NULL;
    char coord[320], img[512], num[24], name[300];
    const char *pull;
    int rc;

    if (!env || !volumes || !mounts)
        goto out;
    runner_image(sp, cluster, img, sizeof img, &pull, &img_holder);
    snprintf(coord, sizeof coord, "%s-admin.%s.svc:%d", cname ? cname : ps->cluster_name,
             cns ? cns : ps->cluster_ns, MK_OP_ADMIN_GRPC_PORT);
    rc = env_value(env, "COORDINATOR_ADDR", coord);
    if (rc == 0)
        rc = mk_op_env_set(env,
                           json_pack("{s:s, s:{s:{s:s, s:s}}}", "name", "API_TOKEN", "valueFrom",
                                     "secretKeyRef", "name", ps->token_name, "key", ps->token_key));
    if (rc == 0)
        rc = mk_op_env_set(env,
                           json_pack("{s:s, s:{s:{s:s, s:s}}}", "name", "RUNNER_NAME", "valueFrom",
                                     "fieldRef", "apiVersion", "v1", "fieldPath", "metadata.name"));
    if (rc == 0)
        rc = env_value(env, "CAPABILITIES", ps->caps);
    if (rc == 0)
        rc = env_value(env, "SHARED", ps->shared ? "true" : "false");
    /* A shared runner serves every Mockarty namespace, so it carries no namespace. */
    if (rc == 0 && !ps->shared)
        rc = env_value(env, "NAMESPACE",
                       ps->mk_namespace && *ps->mk_namespace ? ps->mk_namespace : ow->ns);
    snprintf(num, sizeof num, "%lld", ps->max_concurrent);
    if (rc == 0)
        rc = env_value(env, "MAX_CONCURRENT", num);
    if (rc == 0)
        rc = env_value(env, "RUNNER_GRPC_TLS_ENABLED", tls_on ? "true" : "false");
    /* The coordinator's CA: the pool's own Secret, else, in the cluster's namespace (a pod mounts
     * only Secrets of its own), the cluster's coordinator Secret, whose ca.crt signed it. */
    const char *ca = ps->ca_secret;
    if (!ca && cns && strcmp(cns, ow->ns) == 0)
        ca = json_string_value(json_object_get(tls, "secretName"));
    if (rc == 0 && tls_on && ca) {
        rc = env_value(env, "RUNNER_GRPC_TLS_CA_FILE", CA_DIR "/ca.crt");
        if (rc == 0)
            rc = mount_secret(volumes, mounts, "coordinator-ca", ca, CA_DIR);
    }
    /* Mutual TLS: the runner's own certificate, when the pool names one. */
    if (rc == 0 && tls_on && ps->client_cert) {
        rc = env_value(env, "RUNNER_GRPC_TLS_CERT_FILE", CERT_DIR "/tls.crt");
        if (rc == 0)
            rc = env_value(env, "RUNNER_GRPC_TLS_KEY_FILE", CERT_DIR "/tls.key");
        if (rc == 0)
            rc = mount_secret(volumes, mounts, "runner-tls", ps->client_cert, CERT_DIR);
    }
    if (rc == 0 &&
        (json_array_append_new(volumes, json_pack("{s:s, s:{}}", "name", "tmp", "emptyDir")) != 0 ||
         json_array_append_new(mounts,
                               json_pack("{s:s, s:s}", "name", "tmp", "mountPath", "/tmp")) != 0))
        rc = MK_ENOMEM;
    if (rc == 0)
        rc = mk_op_env_merge(env, ps->env);
    if (rc != 0)
        goto out;
    c = json_pack("{s:s, s:s, s:s, s:[s], s:[{s:s, s:i, s:s}], s:O, s:O, s:{s:{s:s, s:s}, s:i}, "
                  "s:{s:{s:s, s:s}, s:i}, s:o}",
                  "name", "runner", "image", img, "imagePullPolicy", pull, "args",
                  "mockarty-runner", "ports", "name", "http", "containerPort", MK_OP_RUNNER_PORT,
                  "protocol", "TCP", "env", env, "volumeMounts", mounts, "livenessProbe", "httpGet",
                  "path", "/health/live", "port", "http", "periodSeconds", 10, "readinessProbe",
                  "httpGet", "path", "/health/ready", "port", "http", "periodSeconds", 5,
                  "securityContext", mk_op_container_security());
    if (!c)
        goto out;
    if (ps->resources && json_object_set_new(c, "resources", json_deep_copy(ps->resources)) != 0)
        goto out;
    /* Runners finish or hand back their task on SIGTERM; give them time to report. */
    pod = json_pack("{s:b, s:i, s:o, s:[O], s:O}", "automountServiceAccountToken", 0,
                    "terminationGracePeriodSeconds", 60, "securityContext", mk_op_pod_security(),
                    "containers", c, "volumes", volumes);
    if (!pod)
        goto out;
    snprintf(name, sizeof name, "%s-runner", ow->name);
    dep = mk_op_deployment(name, ow, "runner", ps->replicas,
                           json_pack("{s:s, s:{s:i, s:i}}", "type", "RollingUpdate",
                                     "rollingUpdate", "maxSurge", 1, "maxUnavailable", 0),
                           NULL, pod);
out:
    json_decref(img_holder);
    json_decref(c);
    json_decref(env);
    json_decref(volumes);
    json_decref(mounts);
    return dep;
}

static bool prev_reason_is(const json_t *pool, const char *reason)
{
    const json_t *conds = json_object_get(json_object_get(pool, "status"), "conditions");
    const json_t *c;
    size_t i;

    json_array_foreach(conds, i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        const char *r = json_string_value(json_object_get(c, "reason"));

        if (t && strcmp(t, "Ready") == 0)
            return r && strcmp(r, reason) == 0;
    }
    return false;
}

int mk_op_runnerpool_desired(const json_t *pool, const json_t *cluster, const json_t *observed,
                             mk_op_desired_t *out, mk_err_t *err)
{
    const json_t *meta = json_object_get(pool, "metadata");
    const json_t *prev = json_object_get(pool, "status");
    json_int_t gen = json_integer_value(json_object_get(meta, "generation"));
    const char *now = mk_op_observed_now(observed);
    mk_op_desired_t d = {0};
    mk_op_owner_t ow = {"MockartyRunnerPool", NULL, NULL, NULL};
    mk_op_spec_t sp = {0};
    pool_spec_t ps;
    const json_t *dep;
    const char *reason;
    char name[300], msg[400];
    long long ready;
    bool ok;
    json_t *obj;
    int rc = MK_ENOMEM;

    memset(out, 0, sizeof *out);
    ow.name = json_string_value(json_object_get(meta, "name"));
    ow.ns = json_string_value(json_object_get(meta, "namespace"));
    ow.uid = json_string_value(json_object_get(meta, "uid"));
    if (!ow.name || !ow.ns)
        return mk_err_set(err, MK_EINVAL,
                          "MockartyRunnerPool: metadata.name and namespace "
                          "required");
    d.apply = json_array();
    d.deletes = json_array();
    d.events = json_array();
    if (!d.apply || !d.deletes || !d.events)
        goto out;
    read_spec(&sp, pool, ow.ns, &ps);
    snprintf(name, sizeof name, "%s-runner", ow.name);
    dep = mk_op_observed_deployment(observed, name);
    ready = mk_op_deployment_ready(dep);
    /* observed.tokenSecret is false when the controller looked and the Secret is missing: the
     * runners could not start, so nothing is applied until it appears. */
    bool token_missing = json_is_false(json_object_get(observed, "tokenSecret"));
    if (!sp.bad && cluster && !token_missing) {
        obj = runner_deployment(&ps, &ow, cluster, &sp);
        /* The cluster's own spec (its image) may be what is broken. */
        if (sp.bad) {
            json_decref(obj);
        } else {
            if (!obj || json_array_append_new(d.apply, obj) != 0)
                goto out;
        }
    }
    if (sp.bad) {
        rc = mk_op_invalid_spec(pool, &sp, now,
                                json_pack("{s:I, s:I}", "replicas", (json_int_t)ps.replicas,
                                          "readyReplicas", (json_int_t)ready),
                                d.events, &d.status);
        goto out;
    }

    if (!cluster) {
        ok = false;
        reason = "ClusterNotFound";
        snprintf(msg, sizeof msg, "MockartyCluster %s/%s not found; retrying", ps.cluster_ns,
                 ps.cluster_name);
    } else if (token_missing) {
        ok = false;
        reason = "TokenSecretNotFound";
        snprintf(msg, sizeof msg,
                 "Secret %s/%s (key %s) with the runners' token not found; retrying", ow.ns,
                 ps.token_name, ps.token_key);
    } else if (!dep && ps.replicas > 0) {
        ok = false;
        reason = "DeploymentNotFound";
        snprintf(msg, sizeof msg, "Deployment %s does not exist yet", name);
    } else if (ready >= ps.replicas) {
        ok = true;
        reason = "ReplicasReady";
        snprintf(msg, sizeof msg, "%lld/%lld runners ready", ready, ps.replicas);
    } else {
        ok = false;
        reason = mk_op_deployment_failed(dep) ? "DeploymentFailed" : "ReplicasNotReady";
        snprintf(msg, sizeof msg, "%lld/%lld runners ready", ready, ps.replicas);
    }
    d.status = json_pack("{s:I, s:I, s:I, s:[o]}", "observedGeneration", gen, "replicas",
                         (json_int_t)ps.replicas, "readyReplicas", (json_int_t)ready, "conditions",
                         mk_op_condition(prev, "Ready", ok, reason, msg, now, gen));
    if (!d.status)
        goto out;
    rc = 0;
    if (!prev_reason_is(pool, reason))
        rc = mk_op_add_event(d.events,
                             !cluster || token_missing || strcmp(reason, "DeploymentFailed") == 0
                                 ? "Warning"
                                 : "Normal",
                             reason, "%s", msg);
out:
    if (rc != 0) {
        mk_op_desired_free(&d);
        return mk_err_set(err, rc, "MockartyRunnerPool %s/%s: out of memory", ow.ns, ow.name);
    }
    *out = d;
    return 0;
}
