/* MockartyCluster reconcile: the ConfigMap, admin and resolver workloads, their Services, the
 * resolvers' PodDisruptionBudget and HorizontalPodAutoscaler, and the status computed from them. */
#include "reconcile.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATA_DIR      "/var/lib/mockarty"
#define TLS_DIR       "/etc/mockarty/tls"
#define CLIENT_CA_DIR "/etc/mockarty/client-ca"

typedef struct cluster_spec {
    const char *image, *pull_policy, *version;
    char image_buf[512];
    const char *db_type, *dsn_name, *dsn_key, *sqlite_claim;
    const char *read_dsn_name, *read_dsn_key, *listen_dsn_name, *listen_dsn_key;
    const char *cache_type, *redis_host, *redis_pw_name, *redis_pw_key;
    char sentinels[1024]; /* cache.redis.sentinels joined with commas; "" none */
    const char *master_name;
    const char *shutdown_drain;
    long long grace_seconds;
    long long redis_port, redis_db;
    const json_t *admin_resources, *admin_env, *svc_annotations;
    const char *svc_type;
    long long replicas;
    const json_t *res_resources, *res_env;
    const char *res_token_name, *res_token_key;
    bool autoscaling;
    long long min_replicas, max_replicas, cpu_target;
    bool tls;
    const char *tls_secret, *tls_client_ca;
} cluster_spec_t;

/* "5s", "1500ms", "1m" in milliseconds; -1 when it is none of those. */
static long long drain_ms(const char *s)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0 || v > 3600000)
        return -1;
    if (strcmp(end, "ms") == 0)
        return v;
    if (strcmp(end, "s") == 0)
        return v * 1000;
    if (strcmp(end, "m") == 0 && v <= 60)
        return v * 60000;
    return -1;
}

/* cache.redis.sentinels: "host:port" strings, joined for REPO_REDIS_SENTINELS. */
static void read_sentinels(mk_op_spec_t *sp, const json_t *list, cluster_spec_t *cs)
{
    size_t i, used = 0;
    const json_t *v;

    json_array_foreach(list, i, v)
    {
        const char *hp = json_string_value(v);
        const char *colon = hp ? strrchr(hp, ':') : NULL;
        size_t len = hp ? strlen(hp) : 0;
        if (!colon || colon == hp || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
            !colon[1] || atoi(colon + 1) < 1 || atoi(colon + 1) > 65535) {
            mk_op_spec_fail(sp, "spec.cache.redis.sentinels[%zu]: must be host:port", i);
            return;
        }
        if (used + len + 2 > sizeof cs->sentinels) {
            mk_op_spec_fail(sp, "spec.cache.redis.sentinels: too long");
            return;
        }
        used += (size_t)snprintf(cs->sentinels + used, sizeof cs->sentinels - used, "%s%s",
                                 used ? "," : "", hp);
    }
}

/* Reads and checks spec the way the CRD schema and its CEL rules would, so a resource that
 * slipped past an older CRD gets the same verdict with the same field path. */
static void read_spec(mk_op_spec_t *sp, const json_t *cluster, cluster_spec_t *cs)
{
    const json_t *spec = json_object_get(cluster, "spec");
    const json_t *db, *pg, *sq, *cache, *redis, *admin, *svc, *res, *as, *coord, *tls;

    memset(cs, 0, sizeof *cs);
    if (spec && !json_is_object(spec))
        mk_op_spec_fail(sp, "spec: must be an object");
    cs->image = mk_op_image(sp, spec, cs->image_buf, sizeof cs->image_buf, &cs->pull_policy);
    cs->version = json_string_value(json_object_get(json_object_get(spec, "image"), "tag"));
    if (!cs->version)
        cs->version = MK_OP_IMAGE_TAG;

    db = mk_op_spec_obj(sp, spec, "spec", "database");
    cs->db_type = mk_op_spec_enum(sp, db, "spec.database", "type", "sqlite", "sqlite|postgres");
    pg = mk_op_spec_obj(sp, db, "spec.database", "postgres");
    mk_op_spec_secret_ref(sp, pg, "spec.database.postgres", "dsnSecretRef", "dsn", &cs->dsn_name,
                          &cs->dsn_key);
    /* Resolvers' reads from replicas; the feed's LISTEN direct when DSN is a PgBouncer. */
    mk_op_spec_secret_ref(sp, db, "spec.database", "readDsnSecretRef", "readDsn",
                          &cs->read_dsn_name, &cs->read_dsn_key);
    mk_op_spec_secret_ref(sp, db, "spec.database", "listenDsnSecretRef", "listenDsn",
                          &cs->listen_dsn_name, &cs->listen_dsn_key);
    sq = mk_op_spec_obj(sp, db, "spec.database", "sqlite");
    cs->sqlite_claim =
        mk_op_spec_str(sp, sq, "spec.database.sqlite", "persistentVolumeClaim", NULL);

    cache = mk_op_spec_obj(sp, spec, "spec", "cache");
    cs->cache_type = mk_op_spec_enum(sp, cache, "spec.cache", "type", "inmemory", "inmemory|redis");
    redis = mk_op_spec_obj(sp, cache, "spec.cache", "redis");
    cs->redis_host = mk_op_spec_str(sp, redis, "spec.cache.redis", "host", NULL);
    cs->redis_port = mk_op_spec_int(sp, redis, "spec.cache.redis", "port", 6379, 1, 65535);
    cs->redis_db = mk_op_spec_int(sp, redis, "spec.cache.redis", "db", 0, 0, 15);
    mk_op_spec_secret_ref(sp, redis, "spec.cache.redis", "passwordSecretRef", "password",
                          &cs->redis_pw_name, &cs->redis_pw_key);
    read_sentinels(sp, mk_op_spec_array(sp, redis, "spec.cache.redis", "sentinels"), cs);
    cs->master_name = mk_op_spec_str(sp, redis, "spec.cache.redis", "masterName", NULL);
    cs->shutdown_drain = mk_op_spec_str(sp, spec, "spec", "shutdownDrain", NULL);
    cs->grace_seconds = 30;
    if (cs->shutdown_drain) {
        long long ms = drain_ms(cs->shutdown_drain);
        if (ms < 0)
            mk_op_spec_fail(sp,
                            "spec.shutdownDrain: must be a duration such as 5s, 1500ms or 1m, "
                            "not \"%.40s\"",
                            cs->shutdown_drain);
        /* The drain, then up to SHUTDOWN_TIMEOUT (20 s) for requests in flight, then slack. */
        else if ((ms + 999) / 1000 + 25 > cs->grace_seconds)
            cs->grace_seconds = (ms + 999) / 1000 + 25;
    }

    admin = mk_op_spec_obj(sp, spec, "spec", "admin");
    cs->admin_resources = mk_op_spec_obj(sp, admin, "spec.admin", "resources");
    cs->admin_env = mk_op_spec_array(sp, admin, "spec.admin", "env");
    mk_op_spec_env(sp, cs->admin_env, "spec.admin.env");
    svc = mk_op_spec_obj(sp, admin, "spec.admin", "service");
    cs->svc_type = mk_op_spec_enum(sp, svc, "spec.admin.service", "type", "ClusterIP",
                                   "ClusterIP|NodePort|LoadBalancer");
    cs->svc_annotations = mk_op_spec_obj(sp, svc, "spec.admin.service", "annotations");

    res = mk_op_spec_obj(sp, spec, "spec", "resolvers");
    cs->replicas = mk_op_spec_int(sp, res, "spec.resolvers", "replicas", 0, 0, 1000);
    cs->res_resources = mk_op_spec_obj(sp, res, "spec.resolvers", "resources");
    cs->res_env = mk_op_spec_array(sp, res, "spec.resolvers", "env");
    mk_op_spec_env(sp, cs->res_env, "spec.resolvers.env");
    mk_op_spec_secret_ref(sp, res, "spec.resolvers", "tokenSecretRef", "token", &cs->res_token_name,
                          &cs->res_token_key);
    as = mk_op_spec_obj(sp, res, "spec.resolvers", "autoscaling");
    cs->autoscaling = mk_op_spec_bool(sp, as, "spec.resolvers.autoscaling", "enabled", false);
    cs->min_replicas =
        mk_op_spec_int(sp, as, "spec.resolvers.autoscaling", "minReplicas", 2, 1, 1000);
    cs->max_replicas =
        mk_op_spec_int(sp, as, "spec.resolvers.autoscaling", "maxReplicas", 10, 1, 1000);
    cs->cpu_target = mk_op_spec_int(sp, as, "spec.resolvers.autoscaling",
                                    "targetCPUUtilizationPercentage", 80, 1, 100);

    coord = mk_op_spec_obj(sp, spec, "spec", "coordinator");
    tls = mk_op_spec_obj(sp, coord, "spec.coordinator", "tls");
    cs->tls = mk_op_spec_bool(sp, tls, "spec.coordinator.tls", "enabled", false);
    cs->tls_secret = mk_op_spec_str(sp, tls, "spec.coordinator.tls", "secretName", NULL);
    cs->tls_client_ca = mk_op_spec_str(sp, tls, "spec.coordinator.tls", "clientCASecretName", NULL);

    /* The cross-field rules, in the order the CRD's CEL rules state them. */
    if (strcmp(cs->db_type, "sqlite") == 0 && (cs->replicas > 0 || cs->autoscaling))
        mk_op_spec_fail(sp, "spec.database.type: sqlite is only allowed when resolvers.replicas "
                            "is 0 and autoscaling is disabled; use postgres for resolvers");
    if (strcmp(cs->db_type, "postgres") == 0 && !cs->dsn_name)
        mk_op_spec_fail(sp, "spec.database.postgres.dsnSecretRef: required when database.type is "
                            "postgres");
    if (strcmp(cs->cache_type, "redis") == 0 && (!cs->redis_host || !*cs->redis_host) &&
        !cs->sentinels[0])
        mk_op_spec_fail(sp, "spec.cache.redis.host: required when cache.type is redis");
    if (cs->autoscaling && cs->min_replicas > cs->max_replicas)
        mk_op_spec_fail(sp,
                        "spec.resolvers.autoscaling.minReplicas: must not exceed maxReplicas "
                        "(%lld > %lld)",
                        cs->min_replicas, cs->max_replicas);
    if (cs->tls && (!cs->tls_secret || !*cs->tls_secret))
        mk_op_spec_fail(sp, "spec.coordinator.tls.secretName: required when tls.enabled is true");
}

static bool resolvers_wanted(const cluster_spec_t *cs)
{
    return cs->autoscaling || cs->replicas > 0;
}

static json_t *secret_env(const char *name, const char *secret, const char *key)
{
    return json_pack("{s:s, s:{s:{s:s, s:s}}}", "name", name, "valueFrom", "secretKeyRef", "name",
                     secret, "key", key);
}

static json_t *value_env(const char *name, const char *value)
{
    return json_pack("{s:s, s:s}", "name", name, "value", value);
}

static json_t *configmap_data(const cluster_spec_t *cs, const char *name, const char *ns)
{
    char coord[320], port[16], db[16];
    json_t *data;

    snprintf(coord, sizeof coord, "%s-admin.%s.svc:%d", name, ns, MK_OP_ADMIN_GRPC_PORT);
    data =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "HTTP_PORT", "5770", "RUNNER_GRPC_PORT", "5773",
                  "DB_USE", cs->db_type, "CACHE_TYPE", cs->cache_type, "COORDINATOR_ADDR", coord,
                  "RUNNER_GRPC_TLS_ENABLED", cs->tls ? "true" : "false");
    if (!data)
        return NULL;
    /* SQLite's "DSN" is a file path, not a secret; PostgreSQL's comes from a secretKeyRef. */
    if (strcmp(cs->db_type, "sqlite") == 0 &&
        json_object_set_new(data, "DB_DSN", json_string(DATA_DIR "/mockarty.db")) != 0)
        goto fail;
    if (json_object_set_new(data, "RUNNER_GRPC_TLS_DIR", json_string(DATA_DIR "/tls")) != 0)
        goto fail;
    if (strcmp(cs->cache_type, "redis") == 0) {
        snprintf(port, sizeof port, "%lld", cs->redis_port);
        snprintf(db, sizeof db, "%lld", cs->redis_db);
        if ((cs->redis_host &&
             json_object_set_new(data, "REPO_REDIS_HOST", json_string(cs->redis_host)) != 0) ||
            json_object_set_new(data, "REPO_REDIS_PORT", json_string(port)) != 0 ||
            json_object_set_new(data, "REPO_REDIS_DB", json_string(db)) != 0)
            goto fail;
        if (cs->sentinels[0] &&
            (json_object_set_new(data, "REPO_REDIS_SENTINELS", json_string(cs->sentinels)) != 0 ||
             (cs->master_name && json_object_set_new(data, "REPO_REDIS_MASTER_NAME",
                                                     json_string(cs->master_name)) != 0)))
            goto fail;
    }
    if (cs->shutdown_drain &&
        json_object_set_new(data, "SHUTDOWN_DRAIN", json_string(cs->shutdown_drain)) != 0)
        goto fail;
    return data;
fail:
    json_decref(data);
    return NULL;
}

/* Env shared by admin and resolvers: the secrets, by reference only. */
static int common_env(const cluster_spec_t *cs, json_t *env)
{
    int rc = 0;

    if (strcmp(cs->db_type, "postgres") == 0)
        rc = mk_op_env_set(env, secret_env("DB_DSN", cs->dsn_name, cs->dsn_key));
    if (rc == 0 && strcmp(cs->db_type, "postgres") == 0 && cs->listen_dsn_name)
        rc = mk_op_env_set(env,
                           secret_env("DB_LISTEN_DSN", cs->listen_dsn_name, cs->listen_dsn_key));
    if (rc == 0 && strcmp(cs->cache_type, "redis") == 0 && cs->redis_pw_name)
        rc = mk_op_env_set(env,
                           secret_env("REPO_REDIS_PASSWORD", cs->redis_pw_name, cs->redis_pw_key));
    return rc;
}

static json_t *probe(const char *path, int period, int failures)
{
    return json_pack("{s:{s:s, s:s}, s:i, s:i, s:i}", "httpGet", "path", path, "port", "http",
                     "periodSeconds", period, "timeoutSeconds", 2, "failureThreshold", failures);
}

static int add_volume(json_t *volumes, json_t *mounts, json_t *volume, const char *name,
                      const char *path, bool ro)
{
    json_t *m = json_pack("{s:s, s:s, s:b}", "name", name, "mountPath", path, "readOnly", ro);

    if (!volume || !m) {
        json_decref(volume);
        json_decref(m);
        return MK_ENOMEM;
    }
    if (json_array_append_new(volumes, volume) != 0 || json_array_append_new(mounts, m) != 0)
        return MK_ENOMEM;
    return 0;
}

static json_t *secret_volume(const char *name, const char *secret)
{
    return json_pack("{s:s, s:{s:s, s:i}}", "name", name, "secret", "secretName", secret,
                     "defaultMode", 0440);
}

static json_t *empty_dir(const char *name)
{
    return json_pack("{s:s, s:{}}", "name", name, "emptyDir");
}

/* The pod spec of the admin (admin=true) or of a resolver. */
static json_t *pod_spec(const cluster_spec_t *cs, const char *name, bool admin, const char *image)
{
    json_t *env = json_array(), *volumes = json_array(), *mounts = json_array();
    json_t *ports = NULL, *c = NULL, *pod = NULL, *data_vol;
    const json_t *resources = admin ? cs->admin_resources : cs->res_resources;
    char cm[300], port[16];
    int rc;

    if (!env || !volumes || !mounts)
        goto out;
    rc = common_env(cs, env);
    if (admin) {
        ports = json_pack("[{s:s, s:i, s:s}, {s:s, s:i, s:s}]", "name", "http", "containerPort",
                          MK_OP_ADMIN_HTTP_PORT, "protocol", "TCP", "name", "grpc", "containerPort",
                          MK_OP_ADMIN_GRPC_PORT, "protocol", "TCP");
        if (cs->sqlite_claim && strcmp(cs->db_type, "sqlite") == 0)
            data_vol = json_pack("{s:s, s:{s:s}}", "name", "data", "persistentVolumeClaim",
                                 "claimName", cs->sqlite_claim);
        else
            data_vol = empty_dir("data");
        if (rc == 0)
            rc = add_volume(volumes, mounts, data_vol, "data", DATA_DIR, false);
        else
            json_decref(data_vol);
        if (rc == 0 && cs->tls) {
            rc = add_volume(volumes, mounts, secret_volume("coordinator-tls", cs->tls_secret),
                            "coordinator-tls", TLS_DIR, true);
            if (rc == 0)
                rc = mk_op_env_set(env, value_env("RUNNER_GRPC_TLS_CERT_FILE", TLS_DIR "/tls.crt"));
            if (rc == 0)
                rc = mk_op_env_set(env, value_env("RUNNER_GRPC_TLS_KEY_FILE", TLS_DIR "/tls.key"));
        }
        if (rc == 0 && cs->tls && cs->tls_client_ca) {
            rc = add_volume(volumes, mounts,
                            secret_volume("coordinator-client-ca", cs->tls_client_ca),
                            "coordinator-client-ca", CLIENT_CA_DIR, true);
            if (rc == 0)
                rc = mk_op_env_set(
                    env, value_env("RUNNER_GRPC_TLS_CLIENT_CA_CERT", CLIENT_CA_DIR "/ca.crt"));
        }
    } else {
        snprintf(port, sizeof port, "%d", MK_OP_RESOLVER_PORT);
        ports = json_pack("[{s:s, s:i, s:s}]", "name", "http", "containerPort", MK_OP_RESOLVER_PORT,
                          "protocol", "TCP");
        if (rc == 0)
            rc = mk_op_env_set(env, value_env("HTTP_PORT", port));
        if (rc == 0 && cs->res_token_name)
            rc = mk_op_env_set(env, secret_env("API_TOKEN", cs->res_token_name, cs->res_token_key));
        /* Only resolvers read replicas: the admin reads its own writes. */
        if (rc == 0 && strcmp(cs->db_type, "postgres") == 0 && cs->read_dsn_name)
            rc = mk_op_env_set(env, secret_env("DB_READ_DSN", cs->read_dsn_name, cs->read_dsn_key));
        /* Resolvers dial the coordinator: with TLS they trust the CA that signed its certificate.
         */
        if (rc == 0 && cs->tls) {
            rc = add_volume(volumes, mounts, secret_volume("coordinator-tls", cs->tls_secret),
                            "coordinator-tls", TLS_DIR, true);
            if (rc == 0)
                rc = mk_op_env_set(env, value_env("RUNNER_GRPC_TLS_CA_FILE", TLS_DIR "/ca.crt"));
        }
    }
    if (rc == 0)
        rc = add_volume(volumes, mounts, empty_dir("tmp"), "tmp", "/tmp", false);
    if (rc == 0)
        rc = mk_op_env_merge(env, admin ? cs->admin_env : cs->res_env);
    if (rc != 0 || !ports)
        goto out;
    snprintf(cm, sizeof cm, "%s-config", name);
    c = json_pack("{s:s, s:s, s:s, s:[s], s:o, s:[{s:{s:s}}], s:O, s:O, s:o, s:o, s:o}", "name",
                  admin ? "admin" : "resolver", "image", image, "imagePullPolicy", cs->pull_policy,
                  "args", admin ? "mockarty" : "mockarty-resolver", "ports", ports, "envFrom",
                  "configMapRef", "name", cm, "env", env, "volumeMounts", mounts, "livenessProbe",
                  probe("/health/live", 10, 3), "readinessProbe", probe("/health/ready", 5, 2),
                  "securityContext", mk_op_container_security());
    ports = NULL;
    if (!c)
        goto out;
    if (resources && json_object_set_new(c, "resources", json_deep_copy(resources)) != 0)
        goto out;
    pod = json_pack("{s:b, s:i, s:o, s:[O], s:O}", "automountServiceAccountToken", 0,
                    "terminationGracePeriodSeconds", (int)cs->grace_seconds, "securityContext",
                    mk_op_pod_security(), "containers", c, "volumes", volumes);
out:
    json_decref(c);
    json_decref(ports);
    json_decref(env);
    json_decref(volumes);
    json_decref(mounts);
    return pod;
}

static json_t *service(const cluster_spec_t *cs, const char *name, const mk_op_owner_t *owner,
                       bool admin)
{
    const char *comp = admin ? "admin" : "resolver";
    json_t *svc, *meta;

    if (admin)
        svc =
            json_pack("{s:s, s:s, s:o, s:{s:s, s:o, s:[{s:s, s:i, s:s, s:s}, "
                      "{s:s, s:i, s:s, s:s, s:s}]}}",
                      "apiVersion", "v1", "kind", "Service", "metadata",
                      mk_op_metadata(name, owner, mk_op_labels(owner->name, comp)), "spec", "type",
                      cs->svc_type, "selector", mk_op_labels(owner->name, comp), "ports", "name",
                      "http", "port", MK_OP_ADMIN_HTTP_PORT, "targetPort", "http", "protocol",
                      "TCP", "name", "grpc", "port", MK_OP_ADMIN_GRPC_PORT, "targetPort", "grpc",
                      "protocol", "TCP", "appProtocol", "kubernetes.io/h2c");
    else
        svc = json_pack(
            "{s:s, s:s, s:o, s:{s:s, s:o, s:[{s:s, s:i, s:s, s:s}]}}", "apiVersion", "v1", "kind",
            "Service", "metadata", mk_op_metadata(name, owner, mk_op_labels(owner->name, comp)),
            "spec", "type", "ClusterIP", "selector", mk_op_labels(owner->name, comp), "ports",
            "name", "http", "port", MK_OP_RESOLVER_PORT, "targetPort", "http", "protocol", "TCP");
    if (!svc)
        return NULL;
    meta = json_object_get(svc, "metadata");
    if (admin && cs->svc_annotations &&
        json_object_set_new(meta, "annotations", json_deep_copy(cs->svc_annotations)) != 0) {
        json_decref(svc);
        return NULL;
    }
    return svc;
}

/* Admin-first upgrades (seed 000: the admin runs the migrations; never run resolvers on a newer
 * version than the admin): resolvers keep the image they run until the admin is available at
 * the version asked for. */
typedef struct rollout {
    const char *admin_at;                /* version the admin is available at, or NULL */
    const char *res_image, *res_version; /* what the resolver Deployment gets */
} rollout_t;

static const char *deployment_image(const json_t *dep)
{
    const json_t *pod =
        json_object_get(json_object_get(json_object_get(dep, "spec"), "template"), "spec");
    return json_string_value(
        json_object_get(json_array_get(json_object_get(pod, "containers"), 0), "image"));
}

static void plan_rollout(const cluster_spec_t *cs, const char *name, const json_t *observed,
                         rollout_t *ro)
{
    char n[300];
    const json_t *adep, *rdep;

    snprintf(n, sizeof n, "%s-admin", name);
    adep = mk_op_observed_deployment(observed, n);
    snprintf(n, sizeof n, "%s-resolvers", name);
    rdep = mk_op_observed_deployment(observed, n);
    ro->admin_at = NULL;
    if (adep && mk_op_deployment_rolled_out(adep) && mk_op_deployment_ready(adep) >= 1)
        ro->admin_at = mk_op_deployment_version(adep);
    ro->res_image = cs->image;
    ro->res_version = cs->version;
    if (rdep && !(ro->admin_at && strcmp(ro->admin_at, cs->version) == 0)) {
        const char *img = deployment_image(rdep), *ver = mk_op_deployment_version(rdep);

        if (img && ver) {
            ro->res_image = img;
            ro->res_version = ver;
        }
    }
}

static int push(json_t *apply, json_t *obj)
{
    if (!obj)
        return MK_ENOMEM;
    return json_array_append_new(apply, obj) == 0 ? 0 : MK_ENOMEM;
}

static int build_children(const cluster_spec_t *cs, const rollout_t *ro, const mk_op_owner_t *ow,
                          json_t *apply, json_t *deletes)
{
    char n_cm[300], n_admin[300], n_res[300], sum[17];
    json_t *data = configmap_data(cs, ow->name, ow->ns), *ann, *strategy;
    bool sqlite = strcmp(cs->db_type, "sqlite") == 0;
    bool pdb = cs->autoscaling ? cs->min_replicas > 1 : cs->replicas > 1;
    int rc;

    if (!data)
        return MK_ENOMEM;
    snprintf(n_cm, sizeof n_cm, "%s-config", ow->name);
    snprintf(n_admin, sizeof n_admin, "%s-admin", ow->name);
    snprintf(n_res, sizeof n_res, "%s-resolvers", ow->name);
    mk_op_checksum(data, sum);
    rc = push(apply,
              json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "ConfigMap", "metadata",
                        mk_op_metadata(n_cm, ow, mk_op_labels(ow->name, "config")), "data", data));
    if (rc != 0)
        return rc;

    /* Two SQLite writers on one file must never overlap, so the admin is replaced, not rolled.
     * With PostgreSQL the rollingUpdate is stated so that we own it and a later switch to
     * Recreate removes it (the API rejects rollingUpdate with Recreate). */
    if (sqlite)
        strategy = json_pack("{s:s}", "type", "Recreate");
    else
        strategy = json_pack("{s:s, s:{s:i, s:i}}", "type", "RollingUpdate", "rollingUpdate",
                             "maxSurge", 1, "maxUnavailable", 0);
    ann = json_pack("{s:s, s:s}", "mockarty.io/config-checksum", sum, MK_OP_VERSION_ANNOTATION,
                    cs->version);
    rc = push(apply, mk_op_deployment(n_admin, ow, "admin", 1, strategy, ann,
                                      pod_spec(cs, ow->name, true, cs->image)));
    if (rc == 0)
        rc = push(apply, service(cs, n_admin, ow, true));
    if (rc != 0)
        return rc;

    if (!resolvers_wanted(cs)) {
        rc = mk_op_add_delete(deletes, "apps/v1", "Deployment", ow->ns, n_res);
        if (rc == 0)
            rc = mk_op_add_delete(deletes, "v1", "Service", ow->ns, n_res);
        if (rc == 0)
            rc = mk_op_add_delete(deletes, "policy/v1", "PodDisruptionBudget", ow->ns, n_res);
        if (rc == 0)
            rc = mk_op_add_delete(deletes, "autoscaling/v2", "HorizontalPodAutoscaler", ow->ns,
                                  n_res);
        return rc;
    }
    ann = json_pack("{s:s, s:s}", "mockarty.io/config-checksum", sum, MK_OP_VERSION_ANNOTATION,
                    ro->res_version);
    strategy = json_pack("{s:s, s:{s:i, s:i}}", "type", "RollingUpdate", "rollingUpdate",
                         "maxSurge", 1, "maxUnavailable", 0);
    rc = push(apply, mk_op_deployment(n_res, ow, "resolver", cs->autoscaling ? -1 : cs->replicas,
                                      strategy, ann, pod_spec(cs, ow->name, false, ro->res_image)));
    if (rc == 0)
        rc = push(apply, service(cs, n_res, ow, false));
    if (rc != 0)
        return rc;
    if (pdb)
        rc = push(apply, json_pack("{s:s, s:s, s:o, s:{s:i, s:{s:o}}}", "apiVersion", "policy/v1",
                                   "kind", "PodDisruptionBudget", "metadata",
                                   mk_op_metadata(n_res, ow, mk_op_labels(ow->name, "resolver")),
                                   "spec", "maxUnavailable", 1, "selector", "matchLabels",
                                   mk_op_labels(ow->name, "resolver")));
    else
        rc = mk_op_add_delete(deletes, "policy/v1", "PodDisruptionBudget", ow->ns, n_res);
    if (rc != 0)
        return rc;
    if (cs->autoscaling)
        rc = push(apply,
                  json_pack("{s:s, s:s, s:o, s:{s:{s:s, s:s, s:s}, s:I, s:I, s:[{s:s, s:{s:s, "
                            "s:{s:s, s:I}}}]}}",
                            "apiVersion", "autoscaling/v2", "kind", "HorizontalPodAutoscaler",
                            "metadata",
                            mk_op_metadata(n_res, ow, mk_op_labels(ow->name, "resolver")), "spec",
                            "scaleTargetRef", "apiVersion", "apps/v1", "kind", "Deployment", "name",
                            n_res, "minReplicas", (json_int_t)cs->min_replicas, "maxReplicas",
                            (json_int_t)cs->max_replicas, "metrics", "type", "Resource", "resource",
                            "name", "cpu", "target", "type", "Utilization", "averageUtilization",
                            (json_int_t)cs->cpu_target));
    else
        rc = mk_op_add_delete(deletes, "autoscaling/v2", "HorizontalPodAutoscaler", ow->ns, n_res);
    return rc;
}

typedef struct component {
    bool ok;
    const char *reason;
    char message[200];
    bool failed, degraded;
} component_t;

/* The state of one Deployment against the replica count it should reach. */
static void assess(const json_t *dep, const char *name, long long want, component_t *c)
{
    long long ready = mk_op_deployment_ready(dep);

    memset(c, 0, sizeof *c);
    if (!dep) {
        c->reason = "DeploymentNotFound";
        snprintf(c->message, sizeof c->message, "Deployment %s does not exist yet", name);
        return;
    }
    if (ready >= want) {
        c->ok = true;
        c->reason = "ReplicasReady";
        snprintf(c->message, sizeof c->message, "%lld/%lld replicas ready", ready, want);
        return;
    }
    c->failed = mk_op_deployment_failed(dep);
    c->degraded = c->failed || mk_op_deployment_rolled_out(dep);
    c->reason = c->failed ? "DeploymentFailed" : "ReplicasNotReady";
    snprintf(c->message, sizeof c->message, "%lld/%lld replicas ready", ready, want);
}

/* A Prometheus Operator ServiceMonitor scraping /metrics of the cluster's Services (admin and
 * resolvers); created only where the kind is served (the controller discovers it). */
static json_t *service_monitor(const mk_op_owner_t *ow)
{
    return json_pack("{s:s, s:s, s:o, s:{s:{s:{s:s, s:s}}, s:[{s:s, s:s, s:s}]}}", "apiVersion",
                     "monitoring.coreos.com/v1", "kind", "ServiceMonitor", "metadata",
                     mk_op_metadata(ow->name, ow, mk_op_labels(ow->name, "metrics")), "spec",
                     "selector", "matchLabels", "app.kubernetes.io/name", "mockarty",
                     "app.kubernetes.io/instance", ow->name, "endpoints", "port", "http", "path",
                     "/metrics", "interval", "30s");
}

/* True when every pod of dep runs its template at version (updated, whether ready or not:
 * readiness is the Ready condition's business, not the upgrade's). */
static bool rolled_to(const json_t *dep, const char *version)
{
    const json_t *st = json_object_get(dep, "status"), *spec = json_object_get(dep, "spec");
    const char *v = mk_op_deployment_version(dep);
    json_int_t gen =
        json_integer_value(json_object_get(json_object_get(dep, "metadata"), "generation"));
    json_int_t want = json_is_integer(json_object_get(spec, "replicas"))
                          ? json_integer_value(json_object_get(spec, "replicas"))
                          : 1;

    return dep && v && strcmp(v, version) == 0 &&
           json_integer_value(json_object_get(st, "observedGeneration")) >= gen &&
           json_integer_value(json_object_get(st, "updatedReplicas")) >= want;
}

/* The Upgrading condition: True while a new version rolls out, admin first. */
static json_t *upgrade_condition(const json_t *prev, const cluster_spec_t *cs, const char *version,
                                 const json_t *rdep, const char *now, json_int_t gen)
{
    char msg[400];
    const char *reason;
    bool upgrading = true;
    bool res_done = !resolvers_wanted(cs) || rolled_to(rdep, cs->version);

    if (!version) {
        upgrading = false;
        reason = "Installing";
        snprintf(msg, sizeof msg, "waiting for the admin to become available at %s", cs->version);
    } else if (strcmp(version, cs->version) != 0) {
        /* version is the admin's while it is available, else the last one it was: an admin
         * that is merely down at the asked version is no upgrade. */
        reason = "AdminRollingOut";
        snprintf(msg, sizeof msg,
                 "rolling the admin from %s to %s; resolvers and runner pools follow once it is "
                 "available",
                 version, cs->version);
    } else if (!res_done) {
        reason = "NodesRollingOut";
        snprintf(msg, sizeof msg, "the admin runs %s; rolling the resolvers", cs->version);
    } else {
        upgrading = false;
        reason = "UpToDate";
        snprintf(msg, sizeof msg, "every node runs %s", cs->version);
    }
    return mk_op_condition(prev, "Upgrading", upgrading, reason, msg, now, gen);
}

static int build_status(const json_t *cluster, const cluster_spec_t *cs, const rollout_t *ro,
                        const mk_op_owner_t *ow, const json_t *observed, json_t *events,
                        json_t **status)
{
    const char *version;
    const json_t *prev = json_object_get(cluster, "status");
    json_int_t gen =
        json_integer_value(json_object_get(json_object_get(cluster, "metadata"), "generation"));
    const char *now = mk_op_observed_now(observed);
    const char *prev_phase = json_string_value(json_object_get(prev, "phase"));
    char n_admin[300], n_res[300], e_admin[320], e_res[320], e_coord[320], ready_str[48], msg[480];
    const json_t *adep, *rdep, *rsp;
    component_t a, r;
    long long want = 0;
    const char *phase;
    json_t *st;
    int rc;

    snprintf(n_admin, sizeof n_admin, "%s-admin", ow->name);
    snprintf(n_res, sizeof n_res, "%s-resolvers", ow->name);
    adep = mk_op_observed_deployment(observed, n_admin);
    rdep = mk_op_observed_deployment(observed, n_res);
    assess(adep, n_admin, 1, &a);
    if (resolvers_wanted(cs)) {
        want = cs->replicas;
        if (cs->autoscaling) {
            /* The HPA owns the count: what it last set is the target, within the bounds. */
            rsp = json_object_get(json_object_get(rdep, "spec"), "replicas");
            want = json_is_integer(rsp) ? json_integer_value(rsp) : cs->min_replicas;
            if (want < cs->min_replicas)
                want = cs->min_replicas;
            if (want > cs->max_replicas)
                want = cs->max_replicas;
        }
        assess(rdep, n_res, want, &r);
    } else {
        memset(&r, 0, sizeof r);
        r.ok = true;
        r.reason = "NoResolvers";
        snprintf(r.message, sizeof r.message, "no resolvers requested");
    }

    if (!adep)
        phase = "Pending";
    else if (a.ok && r.ok)
        phase = "Ready";
    else if (a.degraded || r.degraded)
        phase = "Degraded";
    else
        phase = "Progressing";
    if (a.ok && r.ok)
        snprintf(msg, sizeof msg, "admin and resolvers are ready");
    else
        snprintf(msg, sizeof msg, "admin: %s; resolvers: %s", a.message, r.message);

    snprintf(e_admin, sizeof e_admin, "%s-admin.%s.svc:%d", ow->name, ow->ns,
             MK_OP_ADMIN_HTTP_PORT);
    snprintf(e_res, sizeof e_res, "%s-resolvers.%s.svc:%d", ow->name, ow->ns, MK_OP_RESOLVER_PORT);
    snprintf(e_coord, sizeof e_coord, "%s-admin.%s.svc:%d", ow->name, ow->ns,
             MK_OP_ADMIN_GRPC_PORT);
    snprintf(ready_str, sizeof ready_str, "%lld/%lld", mk_op_deployment_ready(rdep), want);
    st = json_pack("{s:s, s:I, s:[o, o, o], s:{s:I}, s:{s:I, s:I, s:s}, s:{s:s, s:s*, s:s}}",
                   "phase", phase, "observedGeneration", gen, "conditions",
                   mk_op_condition(prev, "Ready", a.ok && r.ok,
                                   a.ok && r.ok ? "Ready" : "ComponentsNotReady", msg, now, gen),
                   mk_op_condition(prev, "AdminReady", a.ok, a.reason, a.message, now, gen),
                   mk_op_condition(prev, "ResolversReady", r.ok, r.reason, r.message, now, gen),
                   "admin", "readyReplicas", (json_int_t)mk_op_deployment_ready(adep), "resolvers",
                   "replicas", (json_int_t)want, "readyReplicas",
                   (json_int_t)mk_op_deployment_ready(rdep), "ready", ready_str, "endpoints",
                   "admin", e_admin, "resolvers", resolvers_wanted(cs) ? e_res : NULL,
                   "coordinator", e_coord);
    if (!st)
        return MK_ENOMEM;
    /* The version the admin is available at; kept from before while it is not. */
    version = ro->admin_at ? ro->admin_at : json_string_value(json_object_get(prev, "version"));
    if ((version && json_object_set_new(st, "version", json_string(version)) != 0) ||
        json_array_append_new(json_object_get(st, "conditions"),
                              upgrade_condition(prev, cs, version, rdep, now, gen)) != 0) {
        json_decref(st);
        return MK_ENOMEM;
    }
    if (ro->admin_at && strcmp(ro->admin_at, cs->version) == 0 && version &&
        json_string_value(json_object_get(prev, "version")) &&
        strcmp(json_string_value(json_object_get(prev, "version")), version) != 0) {
        rc = mk_op_add_event(events, "Normal", "AdminUpgraded",
                             "the admin is available at %s; rolling resolvers and runner pools",
                             version);
        if (rc != 0) {
            json_decref(st);
            return rc;
        }
    }
    if (!prev_phase || strcmp(prev_phase, phase) != 0) {
        rc = mk_op_add_event(events, strcmp(phase, "Degraded") == 0 ? "Warning" : "Normal", phase,
                             "phase %s: %s", phase, msg);
        if (rc != 0) {
            json_decref(st);
            return rc;
        }
    }
    *status = st;
    return 0;
}

int mk_op_cluster_desired(const json_t *cluster, const json_t *observed, mk_op_desired_t *out,
                          mk_err_t *err)
{
    const json_t *meta = json_object_get(cluster, "metadata");
    mk_op_desired_t d = {0};
    mk_op_owner_t ow = {"MockartyCluster", NULL, NULL, NULL};
    mk_op_spec_t sp = {0};
    cluster_spec_t cs;
    int rc = MK_ENOMEM;

    memset(out, 0, sizeof *out);
    ow.name = json_string_value(json_object_get(meta, "name"));
    ow.ns = json_string_value(json_object_get(meta, "namespace"));
    ow.uid = json_string_value(json_object_get(meta, "uid"));
    if (!ow.name || !ow.ns)
        return mk_err_set(err, MK_EINVAL, "MockartyCluster: metadata.name and namespace required");
    d.apply = json_array();
    d.deletes = json_array();
    d.events = json_array();
    if (!d.apply || !d.deletes || !d.events)
        goto out;
    read_spec(&sp, cluster, &cs);
    if (sp.bad) {
        rc = mk_op_invalid_spec(cluster, &sp, mk_op_observed_now(observed),
                                json_pack("{s:s}", "phase", "Degraded"), d.events, &d.status);
        goto out;
    }
    rollout_t ro;
    plan_rollout(&cs, ow.name, observed, &ro);
    rc = build_children(&cs, &ro, &ow, d.apply, d.deletes);
    if (rc == 0 && json_is_true(json_object_get(observed, "serviceMonitor")))
        rc = push(d.apply, service_monitor(&ow));
    if (rc == 0)
        rc = build_status(cluster, &cs, &ro, &ow, observed, d.events, &d.status);
out:
    if (rc != 0) {
        mk_op_desired_free(&d);
        return mk_err_set(err, rc, "MockartyCluster %s/%s: out of memory", ow.ns, ow.name);
    }
    *out = d;
    return 0;
}

void mk_op_desired_free(mk_op_desired_t *d)
{
    if (!d)
        return;
    json_decref(d->apply);
    json_decref(d->deletes);
    json_decref(d->status);
    json_decref(d->events);
    memset(d, 0, sizeof *d);
}
