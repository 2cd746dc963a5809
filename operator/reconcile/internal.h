/* Helpers shared by the cluster and runner-pool reconcilers: reading a spec with field-precise
 * errors, building metadata, conditions and events. Not part of the public API. */
#ifndef MK_OP_RECONCILE_INTERNAL_H
#define MK_OP_RECONCILE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "err/err.h"

#define MK_OP_API_VERSION     "mockarty.io/v1alpha1"
#define MK_OP_MANAGER         "mockarty-operator"
#define MK_OP_ADMIN_HTTP_PORT 5770
#define MK_OP_ADMIN_GRPC_PORT 5773
#define MK_OP_RESOLVER_PORT   5780
#define MK_OP_RUNNER_PORT     6770
#define MK_OP_UID             10001
#define MK_OP_IMAGE_REPO      "mockarty/mockarty"
#define MK_OP_IMAGE_TAG       "0.1.0"
/* Pod template annotation: the version (image tag) a workload's pods run. */
#define MK_OP_VERSION_ANNOTATION "mockarty.io/version"

/* The resource that owns the children: every child lives in its namespace. */
typedef struct mk_op_owner {
    const char *kind, *name, *ns, *uid;
} mk_op_owner_t;

/* Collects the first invalid field met while reading a spec; later reads return defaults. */
typedef struct mk_op_spec {
    bool bad;
    char msg[384];
} mk_op_spec_t;

void mk_op_spec_fail(mk_op_spec_t *sp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Each reader returns the member key of parent (path names parent, e.g. "spec.database"), or def
 * when parent or the member is absent or null; a member of the wrong type fails the spec. */
const json_t *mk_op_spec_obj(mk_op_spec_t *sp, const json_t *parent, const char *path,
                             const char *key);
const json_t *mk_op_spec_array(mk_op_spec_t *sp, const json_t *parent, const char *path,
                               const char *key);
const char *mk_op_spec_str(mk_op_spec_t *sp, const json_t *parent, const char *path,
                           const char *key, const char *def);
/* Like mk_op_spec_str, and the value must be one of the '|'-separated choices. */
const char *mk_op_spec_enum(mk_op_spec_t *sp, const json_t *parent, const char *path,
                            const char *key, const char *def, const char *choices);
long long mk_op_spec_int(mk_op_spec_t *sp, const json_t *parent, const char *path, const char *key,
                         long long def, long long min, long long max);
bool mk_op_spec_bool(mk_op_spec_t *sp, const json_t *parent, const char *path, const char *key,
                     bool def);
/* A {name, key} secret reference; *name is NULL when ref is absent. Fails when present without a
 * name. key defaults to def_key. */
void mk_op_spec_secret_ref(mk_op_spec_t *sp, const json_t *parent, const char *path,
                           const char *key, const char *def_key, const char **name,
                           const char **ref_key);
/* Validates a list of Kubernetes EnvVar objects (each needs a string name). */
void mk_op_spec_env(mk_op_spec_t *sp, const json_t *env, const char *path);

/* The app.kubernetes.io labels of a child; new reference. */
json_t *mk_op_labels(const char *instance, const char *component);
/* metadata {name, namespace, labels, ownerReferences: [controller ref to owner]}; new reference,
 * steals labels. */
json_t *mk_op_metadata(const char *name, const mk_op_owner_t *owner, json_t *labels);
/* An apps/v1 Deployment selecting the owner's component pods; replicas < 0 leaves spec.replicas
 * out. Steals strategy, pod_annotations (both may be NULL) and pod_spec. New reference or NULL. */
json_t *mk_op_deployment(const char *name, const mk_op_owner_t *owner, const char *component,
                         long long replicas, json_t *strategy, json_t *pod_annotations,
                         json_t *pod_spec);
/* "<repository>:<tag>" (or "@sha256:..." for a digest) of spec.image into buf; sets the pull
 * policy. */
const char *mk_op_image(mk_op_spec_t *sp, const json_t *spec, char *buf, size_t size,
                        const char **pull_policy);
/* Appends {"apiVersion","kind","namespace","name"} to deletes. */
int mk_op_add_delete(json_t *deletes, const char *api_version, const char *kind, const char *ns,
                     const char *name);
/* Appends an event {"type","reason","message"}. */
int mk_op_add_event(json_t *events, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A condition; lastTransitionTime is kept from the same-typed condition of prev_status when its
 * status is unchanged, else now. New reference. */
json_t *mk_op_condition(const json_t *prev_status, const char *type, bool ok, const char *reason,
                        const char *message, const char *now, json_int_t generation);
/* Sets env[name] in a list of EnvVar: replaces an entry of the same name, else appends; steals
 * var. Server-side apply rejects duplicate names, so user env overrides instead of repeating. */
int mk_op_env_set(json_t *env, json_t *var);
/* Merges the user's EnvVar list into env (user entries win). */
int mk_op_env_merge(json_t *env, const json_t *user);

/* observed.deployments[name], or NULL. Borrowed. */
const json_t *mk_op_observed_deployment(const json_t *observed, const char *name);
/* observed.now, or the epoch when missing. Borrowed. */
const char *mk_op_observed_now(const json_t *observed);
/* status.readyReplicas of a Deployment (0 when absent). */
long long mk_op_deployment_ready(const json_t *deploy);
/* True when the Deployment controller reports it cannot make progress (Progressing=False or
 * ReplicaFailure=True). */
bool mk_op_deployment_failed(const json_t *deploy);
/* The MK_OP_VERSION_ANNOTATION of a Deployment's pod template, or NULL. Borrowed. */
const char *mk_op_deployment_version(const json_t *deploy);
/* True when the controller has seen the latest spec and finished rolling it out
 * (Progressing reason NewReplicaSetAvailable): a shortfall after that is a degradation. */
bool mk_op_deployment_rolled_out(const json_t *deploy);

/* Hex FNV-1a 64 of the compact, key-sorted JSON of v: a checksum annotation that rolls the pods
 * when the settings they read at start change. */
void mk_op_checksum(const json_t *v, char out[17]);

/* Container and pod security settings shared by every workload: non-root, no privilege
 * escalation, no capabilities, read-only root filesystem. New references. */
json_t *mk_op_container_security(void);
json_t *mk_op_pod_security(void);

/* The invalid-spec outcome: Ready=False/InvalidSpec (other conditions kept), a Warning event.
 * Steals status_extra (fields to add to the status; may be NULL); *status is a new reference. */
int mk_op_invalid_spec(const json_t *resource, const mk_op_spec_t *sp, const char *now,
                       json_t *status_extra, json_t *events, json_t **status);

#endif
