/* Pure reconcile functions of the operator: from a MockartyCluster or MockartyRunnerPool and the
 * children observed in the cluster, compute the objects to apply, delete, and the status to write.
 */
#ifndef MK_OP_RECONCILE_H
#define MK_OP_RECONCILE_H

#include <jansson.h>

#include "err/err.h"

/* Everything one reconcile wants done. All four members are new references owned by the struct
 * (free with mk_op_desired_free); on success none of them is NULL. */
typedef struct mk_op_desired {
    json_t *apply;   /* array of full objects to server-side apply (apiVersion, kind, metadata incl.
                        ownerReferences) */
    json_t *deletes; /* array of {"apiVersion","kind","namespace","name"} to delete if present */
    json_t *status;  /* the complete status object to write to the resource's /status */
    json_t *events;  /* array of {"type":"Normal|Warning","reason","message"} */
} mk_op_desired_t;

/* Desired children and status of a MockartyCluster.
 *   cluster:  borrowed; the resource as read from the API (metadata.uid and .generation used).
 *   observed: borrowed; {"deployments": {"<name>": <Deployment>...}, "now": "<RFC3339>",
 *             "serviceMonitor": true when the cluster serves ServiceMonitors}; may be
 *             NULL (treated as nothing observed, with now = "1970-01-01T00:00:00Z").
 *   out:      filled on success; the caller frees it with mk_op_desired_free. On failure it is
 *             left zeroed.
 * An invalid spec is not an error: it returns 0 with an empty apply list, a status whose Ready
 * condition is False with reason InvalidSpec and a message naming the field, and a Warning event.
 * Returns MK_EINVAL only when cluster has no metadata.name/namespace, MK_ENOMEM on allocation. */
int mk_op_cluster_desired(const json_t *cluster, const json_t *observed, mk_op_desired_t *out,
                          mk_err_t *err);

/* Desired runner Deployment and status of a MockartyRunnerPool.
 *   pool:    borrowed; the resource as read from the API.
 *   cluster: borrowed; the MockartyCluster named by spec.clusterRef, or NULL if it does not exist.
 *            Then apply and deletes are empty (an existing runner Deployment is left alone) and the
 *            status says Ready=False with reason ClusterNotFound: the caller should requeue the
 * pool with backoff rather than drop it. observed: as for mk_op_cluster_desired. */
int mk_op_runnerpool_desired(const json_t *pool, const json_t *cluster, const json_t *observed,
                             mk_op_desired_t *out, mk_err_t *err);

/* Releases the four members and zeroes d; accepts NULL and an already freed struct. */
void mk_op_desired_free(mk_op_desired_t *d);

#endif
