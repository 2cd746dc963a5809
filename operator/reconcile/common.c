/* Shared pieces of the reconcilers: spec readers that name the bad field, child metadata with a
 * controller owner reference, conditions that keep their transition time, and Deployment state. */
#include "internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mk_op_spec_fail(mk_op_spec_t *sp, const char *fmt, ...)
{
    va_list ap;

    if (sp->bad)
        return;
    sp->bad = true;
    va_start(ap, fmt);
    vsnprintf(sp->msg, sizeof sp->msg, fmt, ap);
    va_end(ap);
}

static const json_t *member(const json_t *parent, const char *key)
{
    const json_t *v;

    if (!parent || !json_is_object(parent))
        return NULL;
    v = json_object_get(parent, key);
    if (!v || json_is_null(v))
        return NULL;
    return v;
}

const json_t *mk_op_spec_obj(mk_op_spec_t *sp, const json_t *parent, const char *path,
                             const char *key)
{
    const json_t *v = member(parent, key);

    if (v && !json_is_object(v)) {
        mk_op_spec_fail(sp, "%s.%s: must be an object", path, key);
        return NULL;
    }
    return v;
}

const json_t *mk_op_spec_array(mk_op_spec_t *sp, const json_t *parent, const char *path,
                               const char *key)
{
    const json_t *v = member(parent, key);

    if (v && !json_is_array(v)) {
        mk_op_spec_fail(sp, "%s.%s: must be an array", path, key);
        return NULL;
    }
    return v;
}

const char *mk_op_spec_str(mk_op_spec_t *sp, const json_t *parent, const char *path,
                           const char *key, const char *def)
{
    const json_t *v = member(parent, key);

    if (!v)
        return def;
    if (!json_is_string(v)) {
        mk_op_spec_fail(sp, "%s.%s: must be a string", path, key);
        return def;
    }
    return json_string_value(v);
}

const char *mk_op_spec_enum(mk_op_spec_t *sp, const json_t *parent, const char *path,
                            const char *key, const char *def, const char *choices)
{
    const char *v = mk_op_spec_str(sp, parent, path, key, def);
    const char *p = choices;
    size_t n;

    if (!v)
        return NULL;
    n = strlen(v);
    while (*p) {
        const char *end = strchr(p, '|');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (len == n && strncmp(p, v, n) == 0)
            return v;
        if (!end)
            break;
        p = end + 1;
    }
    mk_op_spec_fail(sp, "%s.%s: must be one of %s, not \"%s\"", path, key, choices, v);
    return def;
}

long long mk_op_spec_int(mk_op_spec_t *sp, const json_t *parent, const char *path, const char *key,
                         long long def, long long min, long long max)
{
    const json_t *v = member(parent, key);
    long long n;

    if (!v)
        return def;
    if (!json_is_integer(v)) {
        mk_op_spec_fail(sp, "%s.%s: must be an integer", path, key);
        return def;
    }
    n = json_integer_value(v);
    if (n < min || n > max) {
        mk_op_spec_fail(sp, "%s.%s: must be between %lld and %lld, not %lld", path, key, min, max,
                        n);
        return def;
    }
    return n;
}

bool mk_op_spec_bool(mk_op_spec_t *sp, const json_t *parent, const char *path, const char *key,
                     bool def)
{
    const json_t *v = member(parent, key);

    if (!v)
        return def;
    if (!json_is_boolean(v)) {
        mk_op_spec_fail(sp, "%s.%s: must be a boolean", path, key);
        return def;
    }
    return json_is_true(v);
}

void mk_op_spec_secret_ref(mk_op_spec_t *sp, const json_t *parent, const char *path,
                           const char *key, const char *def_key, const char **name,
                           const char **ref_key)
{
    char sub[160];
    const json_t *ref = mk_op_spec_obj(sp, parent, path, key);

    *name = NULL;
    *ref_key = def_key;
    if (!ref)
        return;
    snprintf(sub, sizeof sub, "%s.%s", path, key);
    *name = mk_op_spec_str(sp, ref, sub, "name", NULL);
    *ref_key = mk_op_spec_str(sp, ref, sub, "key", def_key);
    if (!*name || !**name)
        mk_op_spec_fail(sp, "%s.name: required", sub);
    if (!*ref_key || !**ref_key)
        mk_op_spec_fail(sp, "%s.key: must not be empty", sub);
}

void mk_op_spec_env(mk_op_spec_t *sp, const json_t *env, const char *path)
{
    size_t i;
    const json_t *item;

    json_array_foreach(env, i, item)
    {
        const json_t *name = json_object_get(item, "name");

        if (!json_is_object(item) || !json_is_string(name) || !*json_string_value(name)) {
            mk_op_spec_fail(sp, "%s[%zu].name: required string", path, i);
            return;
        }
    }
}

json_t *mk_op_labels(const char *instance, const char *component)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "app.kubernetes.io/name", "mockarty",
                     "app.kubernetes.io/instance", instance, "app.kubernetes.io/component",
                     component, "app.kubernetes.io/managed-by", MK_OP_MANAGER);
}

json_t *mk_op_metadata(const char *name, const mk_op_owner_t *owner, json_t *labels)
{
    if (!labels)
        return NULL;
    return json_pack("{s:s, s:s, s:o, s:[{s:s, s:s, s:s, s:s, s:b, s:b}]}", "name", name,
                     "namespace", owner->ns, "labels", labels, "ownerReferences", "apiVersion",
                     MK_OP_API_VERSION, "kind", owner->kind, "name", owner->name, "uid",
                     owner->uid ? owner->uid : "", "controller", 1, "blockOwnerDeletion", 1);
}

json_t *mk_op_deployment(const char *name, const mk_op_owner_t *owner, const char *component,
                         long long replicas, json_t *strategy, json_t *pod_annotations,
                         json_t *pod_spec)
{
    json_t *d = NULL, *spec;

    d = json_pack("{s:s, s:s, s:o, s:{s:{s:o}, s:{s:{s:o, s:o*}, s:o}}}", "apiVersion", "apps/v1",
                  "kind", "Deployment", "metadata",
                  mk_op_metadata(name, owner, mk_op_labels(owner->name, component)), "spec",
                  "selector", "matchLabels", mk_op_labels(owner->name, component), "template",
                  "metadata", "labels", mk_op_labels(owner->name, component), "annotations",
                  pod_annotations, "spec", pod_spec);
    pod_annotations = NULL;
    pod_spec = NULL;
    if (!d)
        goto fail;
    spec = json_object_get(d, "spec");
    /* Omitted, not 0, when an HPA owns the count: an applied value would fight the autoscaler. */
    if (replicas >= 0 && json_object_set_new(spec, "replicas", json_integer(replicas)) != 0)
        goto fail;
    if (json_object_set_new(spec, "revisionHistoryLimit", json_integer(5)) != 0)
        goto fail;
    if (strategy) {
        json_t *s = strategy;

        strategy = NULL;
        if (json_object_set_new(spec, "strategy", s) != 0)
            goto fail;
    }
    return d;
fail:
    json_decref(strategy);
    json_decref(d);
    return NULL;
}

const char *mk_op_image(mk_op_spec_t *sp, const json_t *spec, char *buf, size_t size,
                        const char **pull_policy)
{
    const json_t *img = mk_op_spec_obj(sp, spec, "spec", "image");
    const char *repo = mk_op_spec_str(sp, img, "spec.image", "repository", MK_OP_IMAGE_REPO);
    const char *tag = mk_op_spec_str(sp, img, "spec.image", "tag", MK_OP_IMAGE_TAG);

    *pull_policy = mk_op_spec_enum(sp, img, "spec.image", "pullPolicy", "IfNotPresent",
                                   "Always|IfNotPresent|Never");
    if (!*repo)
        mk_op_spec_fail(sp, "spec.image.repository: must not be empty");
    /* A tag starting with "sha256:" is a digest. */
    if (strncmp(tag, "sha256:", 7) == 0)
        snprintf(buf, size, "%s@%s", repo, tag);
    else
        snprintf(buf, size, "%s:%s", repo, tag);
    return buf;
}

int mk_op_add_delete(json_t *deletes, const char *api_version, const char *kind, const char *ns,
                     const char *name)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s}", "apiVersion", api_version, "kind", kind,
                          "namespace", ns, "name", name);

    if (!d || json_array_append_new(deletes, d) != 0)
        return MK_ENOMEM;
    return 0;
}

int mk_op_add_event(json_t *events, const char *type, const char *reason, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    json_t *e;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    e = json_pack("{s:s, s:s, s:s}", "type", type, "reason", reason, "message", msg);
    if (!e || json_array_append_new(events, e) != 0)
        return MK_ENOMEM;
    return 0;
}

static const json_t *find_condition(const json_t *status, const char *type)
{
    const json_t *conds = json_object_get(status, "conditions");
    const json_t *c;
    size_t i;

    json_array_foreach(conds, i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));

        if (t && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

json_t *mk_op_condition(const json_t *prev_status, const char *type, bool ok, const char *reason,
                        const char *message, const char *now, json_int_t generation)
{
    const char *status = ok ? "True" : "False";
    const json_t *prev = find_condition(prev_status, type);
    const char *since = now;

    if (prev) {
        const char *ps = json_string_value(json_object_get(prev, "status"));
        const char *pt = json_string_value(json_object_get(prev, "lastTransitionTime"));

        if (ps && pt && strcmp(ps, status) == 0)
            since = pt;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "type", type, "status", status, "reason",
                     reason, "message", message, "lastTransitionTime", since, "observedGeneration",
                     generation);
}

int mk_op_env_set(json_t *env, json_t *var)
{
    const char *name = json_string_value(json_object_get(var, "name"));
    json_t *cur;
    size_t i;

    if (!var || !name) {
        json_decref(var);
        return MK_ENOMEM;
    }
    json_array_foreach(env, i, cur)
    {
        const char *n = json_string_value(json_object_get(cur, "name"));

        if (n && strcmp(n, name) == 0)
            return json_array_set_new(env, i, var) == 0 ? 0 : MK_ENOMEM;
    }
    return json_array_append_new(env, var) == 0 ? 0 : MK_ENOMEM;
}

int mk_op_env_merge(json_t *env, const json_t *user)
{
    const json_t *var;
    size_t i;
    int rc;

    json_array_foreach(user, i, var)
    {
        rc = mk_op_env_set(env, json_deep_copy(var));
        if (rc != 0)
            return rc;
    }
    return 0;
}

const json_t *mk_op_observed_deployment(const json_t *observed, const char *name)
{
    const json_t *d = json_object_get(json_object_get(observed, "deployments"), name);

    return json_is_object(d) ? d : NULL;
}

const char *mk_op_observed_now(const json_t *observed)
{
    const char *now = json_string_value(json_object_get(observed, "now"));

    return now ? now : "1970-01-01T00:00:00Z";
}

static long long status_int(const json_t *deploy, const char *key)
{
    const json_t *v = json_object_get(json_object_get(deploy, "status"), key);

    return json_is_integer(v) ? json_integer_value(v) : 0;
}

long long mk_op_deployment_ready(const json_t *deploy)
{
    return status_int(deploy, "readyReplicas");
}

bool mk_op_deployment_failed(const json_t *deploy)
{
    const json_t *c = find_condition(json_object_get(deploy, "status"), "Progressing");
    const char *s = json_string_value(json_object_get(c, "status"));

    if (s && strcmp(s, "False") == 0)
        return true;
    c = find_condition(json_object_get(deploy, "status"), "ReplicaFailure");
    s = json_string_value(json_object_get(c, "status"));
    return s && strcmp(s, "True") == 0;
}

const char *mk_op_deployment_version(const json_t *deploy)
{
    const json_t *tmpl = json_object_get(json_object_get(deploy, "spec"), "template");
    const json_t *ann = json_object_get(json_object_get(tmpl, "metadata"), "annotations");

    return json_string_value(json_object_get(ann, MK_OP_VERSION_ANNOTATION));
}

bool mk_op_deployment_rolled_out(const json_t *deploy)
{
    const json_t *meta = json_object_get(deploy, "metadata");
    long long gen = json_integer_value(json_object_get(meta, "generation"));
    long long seen = status_int(deploy, "observedGeneration");
    const json_t *c = find_condition(json_object_get(deploy, "status"), "Progressing");
    const char *reason = json_string_value(json_object_get(c, "reason"));

    return seen >= gen && reason && strcmp(reason, "NewReplicaSetAvailable") == 0;
}

void mk_op_checksum(const json_t *v, char out[17])
{
    char *s = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT);
    uint64_t h = 0xcbf29ce484222325ULL;

    for (const char *p = s ? s : ""; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 0x100000001b3ULL;
    }
    free(s);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

json_t *mk_op_container_security(void)
{
    return json_pack("{s:b, s:b, s:b, s:{s:[s]}}", "allowPrivilegeEscalation", 0,
                     "readOnlyRootFilesystem", 1, "runAsNonRoot", 1, "capabilities", "drop", "ALL");
}

json_t *mk_op_pod_security(void)
{
    return json_pack("{s:b, s:i, s:i, s:i, s:{s:s}}", "runAsNonRoot", 1, "runAsUser", MK_OP_UID,
                     "runAsGroup", MK_OP_UID, "fsGroup", MK_OP_UID, "seccompProfile", "type",
                     "RuntimeDefault");
}

int mk_op_invalid_spec(const json_t *resource, const mk_op_spec_t *sp, const char *now,
                       json_t *status_extra, json_t *events, json_t **status)
{
    const json_t *meta = json_object_get(resource, "metadata");
    const json_t *prev = json_object_get(resource, "status");
    json_int_t gen = json_integer_value(json_object_get(meta, "generation"));
    json_t *st = NULL, *conds = NULL, *c;
    const json_t *pc;
    size_t i;
    int rc = MK_ENOMEM;

    st = status_extra ? status_extra : json_object();
    conds = json_array();
    if (!st || !conds)
        goto out;
    c = mk_op_condition(prev, "Ready", false, "InvalidSpec", sp->msg, now, gen);
    if (!c || json_array_append_new(conds, c) != 0)
        goto out;
    /* The children keep running with the last valid spec, so their conditions stay as they were. */
    json_array_foreach(json_object_get(prev, "conditions"), i, pc)
    {
        const char *t = json_string_value(json_object_get(pc, "type"));

        if (t && strcmp(t, "Ready") != 0 && json_array_append_new(conds, json_deep_copy(pc)) != 0)
            goto out;
    }
    c = conds;
    conds = NULL;
    if (json_object_set_new(st, "conditions", c) != 0)
        goto out;
    if (json_object_set_new(st, "observedGeneration", json_integer(gen)) != 0)
        goto out;
    rc = mk_op_add_event(events, "Warning", "InvalidSpec", "%s", sp->msg);
    if (rc != 0)
        goto out;
    *status = st;
    st = NULL;
out:
    json_decref(conds);
    json_decref(st);
    return rc;
}
