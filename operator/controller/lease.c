/* Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: a lease is expired
 * when its record has not changed for leaseDurationSeconds as observed by this process (so clock
 * skew between nodes does not matter); optimistic concurrency settles races. */
#include "controller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mk_controller_lease {
    mk_kube_t *k;
    char *ns, *name, *identity;
    int duration_s;
    mk_controller_lease_state_t state;
    char observed[512]; /* holder|renewTime|resourceVersion last seen */
    long long observed_ms;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The one place the state changes; a released lease stays released. */
static void set_state(mk_controller_lease_t *l, mk_controller_lease_state_t to)
{
    if (l->state == MK_CONTROLLER_RELEASED)
        return;
    l->state = to;
}

int mk_controller_lease_new(mk_kube_t *k, const char *ns, const char *name, const char *identity,
                            int duration_s, mk_controller_lease_t **out, mk_err_t *err)
{
    *out = NULL;
    if (!ns || !ns[0] || !name || !name[0] || !identity || !identity[0])
        return mk_err_set(err, MK_EINVAL, "lease: namespace, name and identity are required");
    mk_controller_lease_t *l = calloc(1, sizeof *l);
    if (!l)
        return mk_err_set(err, MK_ENOMEM, "lease: out of memory");
    l->k = k;
    l->ns = strdup(ns);
    l->name = strdup(name);
    l->identity = strdup(identity);
    l->duration_s = duration_s > 0 ? duration_s : 15;
    l->state = MK_CONTROLLER_FOLLOWER;
    if (!l->ns || !l->name || !l->identity) {
        mk_controller_lease_free(l);
        return mk_err_set(err, MK_ENOMEM, "lease: out of memory");
    }
    *out = l;
    return 0;
}

void mk_controller_lease_free(mk_controller_lease_t *l)
{
    if (!l)
        return;
    free(l->ns);
    free(l->name);
    free(l->identity);
    free(l);
}

mk_controller_lease_state_t mk_controller_lease_state(mk_controller_lease_t *l)
{
    return l->state;
}

static int create_lease(mk_controller_lease_t *l, mk_err_t *err)
{
    char now[40];
    mk_kube_time_now(now, sizeof now, true);
    json_t *lease =
        json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s, s:s, s:i}}", "apiVersion",
                  "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", l->name,
                  "namespace", l->ns, "spec", "holderIdentity", l->identity, "leaseDurationSeconds",
                  l->duration_s, "acquireTime", now, "renewTime", now, "leaseTransitions", 0);
    if (!lease)
        return mk_err_set(err, MK_ENOMEM, "lease: out of memory");
    int rc = mk_kube_create(l->k, &mk_kube_leases, l->ns, lease, NULL, err);
    json_decref(lease);
    return rc;
}

int mk_controller_lease_try(mk_controller_lease_t *l, mk_controller_lease_state_t *state,
                            mk_err_t *err)
{
    int rc = 0;
    json_t *lease = NULL;
    *state = l->state;
    if (l->state == MK_CONTROLLER_RELEASED)
        return 0;
    rc = mk_kube_get(l->k, &mk_kube_leases, l->ns, l->name, &lease, err);
    if (rc == MK_ENOTFOUND) {
        rc = create_lease(l, err);
        if (rc == 0) {
            l->observed_ms = mono_ms();
            set_state(l, MK_CONTROLLER_LEADER);
        } else if (rc == MK_ECONFLICT) {
            rc = 0; /* someone else created it first */
            set_state(l, MK_CONTROLLER_FOLLOWER);
        }
        goto out;
    }
    if (rc != 0)
        goto out;
    json_t *spec = json_object_get(lease, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(lease, "spec", spec);
    }
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    const char *renew = json_string_value(json_object_get(spec, "renewTime"));
    char record[512];
    snprintf(record, sizeof record, "%s|%s|%s", holder ? holder : "", renew ? renew : "",
             mk_kube_resource_version(lease) ? mk_kube_resource_version(lease) : "");
    long long now_ms = mono_ms();
    if (strcmp(record, l->observed) != 0) {
        snprintf(l->observed, sizeof l->observed, "%s", record);
        l->observed_ms = now_ms;
    }
    bool mine = holder && strcmp(holder, l->identity) == 0;
    bool is_free = !holder || !holder[0];
    long dur = (long)json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
    if (dur <= 0)
        dur = l->duration_s;
    bool expired = now_ms - l->observed_ms > dur * 1000L;
    if (!mine && !is_free && !expired) {
        set_state(l, MK_CONTROLLER_FOLLOWER);
        goto out;
    }
    char now[40];
    mk_kube_time_now(now, sizeof now, true);
    if (!mine) {
        json_int_t transitions = json_integer_value(json_object_get(spec, "leaseTransitions"));
        json_object_set_new(spec, "holderIdentity", json_string(l->identity));
        json_object_set_new(spec, "acquireTime", json_string(now));
        json_object_set_new(spec, "leaseTransitions", json_integer(transitions + 1));
    }
    json_object_set_new(spec, "leaseDurationSeconds", json_integer(l->duration_s));
    json_object_set_new(spec, "renewTime", json_string(now));
    rc = mk_kube_update(l->k, &mk_kube_leases, l->ns, lease, NULL, err);
    if (rc == 0) {
        l->observed_ms = now_ms;
        set_state(l, MK_CONTROLLER_LEADER);
    } else if (rc == MK_ECONFLICT) {
        /* Another candidate wrote first: it holds the lease now. */
        rc = 0;
        set_state(l, MK_CONTROLLER_FOLLOWER);
    }
out:
    json_decref(lease);
    *state = l->state;
    return rc;
}

int mk_controller_lease_release(mk_controller_lease_t *l, mk_err_t *err)
{
    int rc = 0;
    json_t *lease = NULL;
    if (l->state != MK_CONTROLLER_LEADER)
        goto out;
    rc = mk_kube_get(l->k, &mk_kube_leases, l->ns, l->name, &lease, err);
    if (rc != 0)
        goto out;
    json_t *spec = json_object_get(lease, "spec");
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    if (!holder || strcmp(holder, l->identity) != 0)
        goto out;
    char now[40];
    mk_kube_time_now(now, sizeof now, true);
    /* An empty holder tells the other candidates the lease is free right now. */
    json_object_set_new(spec, "holderIdentity", json_string(""));
    json_object_set_new(spec, "renewTime", json_string(now));
    json_object_set_new(spec, "leaseDurationSeconds", json_integer(1));
    rc = mk_kube_update(l->k, &mk_kube_leases, l->ns, lease, NULL, err);
out:
    json_decref(lease);
    l->state = MK_CONTROLLER_RELEASED;
    return rc;
}
