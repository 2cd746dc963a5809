/* Mergeable run statistics and their JSON form (what runners stream per second). */
#include "loadgen/loadgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mk_loadgen_stats_t *mk_loadgen_stats_new(void)
{
    mk_loadgen_stats_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->duration = mk_hdr_new();
    s->waiting = mk_hdr_new();
    if (!s->duration || !s->waiting) {
        mk_loadgen_stats_free(s);
        return NULL;
    }
    return s;
}

void mk_loadgen_stats_free(mk_loadgen_stats_t *s)
{
    if (!s)
        return;
    mk_hdr_free(s->duration);
    mk_hdr_free(s->waiting);
    free(s);
}

void mk_loadgen_stats_reset(mk_loadgen_stats_t *s)
{
    mk_hdr_t *d = s->duration, *w = s->waiting;
    mk_hdr_reset(d);
    mk_hdr_reset(w);
    memset(s, 0, sizeof *s);
    s->duration = d;
    s->waiting = w;
}

static mk_loadgen_error_count_t *find_error(mk_loadgen_stats_t *s, const char *msg)
{
    for (size_t i = 0; i < s->nerrors; i++)
        if (strcmp(s->errors[i].msg, msg) == 0)
            return &s->errors[i];
    return NULL;
}

/* The last slot is kept for "other errors", so a flood of distinct messages stays bounded. */
void mk_loadgen_stats_add_error(mk_loadgen_stats_t *s, const char *msg, uint64_t n)
{
    mk_loadgen_error_count_t *e = find_error(s, msg);
    if (!e && s->nerrors >= MK_LOADGEN_ERRORS_MAX - 1) {
        msg = "other errors";
        e = find_error(s, msg);
    }
    if (!e) {
        e = &s->errors[s->nerrors++];
        snprintf(e->msg, sizeof e->msg, "%s", msg);
        e->count = 0;
    }
    e->count += n;
}

void mk_loadgen_stats_merge(mk_loadgen_stats_t *d, const mk_loadgen_stats_t *s)
{
    mk_hdr_merge(d->duration, s->duration);
    mk_hdr_merge(d->waiting, s->waiting);
    d->reqs += s->reqs;
    d->failed += s->failed;
    d->iterations += s->iterations;
    d->interrupted += s->interrupted;
    d->dropped += s->dropped;
    d->scheduled += s->scheduled;
    d->data_sent += s->data_sent;
    d->data_received += s->data_received;
    for (int i = 0; i < MK_LOADGEN_STATUS_MAX; i++)
        d->status[i] += s->status[i];
    for (size_t i = 0; i < s->nerrors; i++)
        mk_loadgen_stats_add_error(d, s->errors[i].msg, s->errors[i].count);
    d->vus += s->vus;
    d->vus_max += s->vus_max;
    d->behind += s->behind;
    if (s->max_lag_us > d->max_lag_us)
        d->max_lag_us = s->max_lag_us;
    if (s->t_s > d->t_s)
        d->t_s = s->t_s;
    if (s->interval_s > d->interval_s)
        d->interval_s = s->interval_s;
}

/* Counters by JSON key: one table drives both directions. */
#define U64_FIELDS(X)                                                                              \
    X(reqs)                                                                                        \
    X(failed)                                                                                      \
    X(iterations) X(interrupted) X(dropped) X(scheduled) X(data_sent) X(data_received) X(behind)

json_t *mk_loadgen_stats_to_json(const mk_loadgen_stats_t *s)
{
    json_t *j = json_object(), *st = json_object(), *errs = json_array();
    json_t *d = mk_hdr_to_json(s->duration), *w = mk_hdr_to_json(s->waiting);
    if (!j || !st || !errs || !d || !w)
        goto fail;
    json_object_set_new(j, "duration", d);
    json_object_set_new(j, "waiting", w);
    d = w = NULL;
#define PUT(f) json_object_set_new(j, #f, json_integer((json_int_t)s->f));
    U64_FIELDS(PUT)
#undef PUT
    json_object_set_new(j, "vus", json_integer(s->vus));
    json_object_set_new(j, "vus_max", json_integer(s->vus_max));
    json_object_set_new(j, "max_lag_us", json_integer(s->max_lag_us));
    json_object_set_new(j, "t", json_real(s->t_s));
    json_object_set_new(j, "interval", json_real(s->interval_s));
    for (int i = 0; i < MK_LOADGEN_STATUS_MAX; i++) {
        if (!s->status[i])
            continue;
        char k[8];
        snprintf(k, sizeof k, "%d", i);
        json_object_set_new(st, k, json_integer((json_int_t)s->status[i]));
    }
    json_object_set_new(j, "status", st);
    for (size_t i = 0; i < s->nerrors; i++)
        json_array_append_new(errs, json_pack("{s:s,s:I}", "message", s->errors[i].msg, "count",
                                              (json_int_t)s->errors[i].count));
    json_object_set_new(j, "errors", errs);
    return j;
fail:
    json_decref(j);
    json_decref(st);
    json_decref(errs);
    json_decref(d);
    json_decref(w);
    return NULL;
}

static int get_u64(const json_t *j, const char *k, uint64_t *v)
{
    json_t *x = json_object_get(j, k);
    if (!x)
        return 0;
    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return -1;
    *v += (uint64_t)json_integer_value(x);
    return 0;
}

int mk_loadgen_stats_from_json_add(mk_loadgen_stats_t *s, const json_t *j, mk_err_t *err)
{
    if (!json_is_object(j))
        return mk_err_set(err, MK_EINVAL, "stats: an object expected");
    /* parse into a scratch copy first so bad input changes nothing */
    mk_loadgen_stats_t *t = mk_loadgen_stats_new();
    int rc = MK_EINVAL;
    if (!t)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    if ((rc = mk_hdr_from_json_add(t->duration, json_object_get(j, "duration"), err)) != 0 ||
        (rc = mk_hdr_from_json_add(t->waiting, json_object_get(j, "waiting"), err)) != 0)
        goto out;
    rc = MK_EINVAL;
#define GET(f)                                                                                     \
    if (get_u64(j, #f, &t->f)) {                                                                   \
        mk_err_set(err, MK_EINVAL, "stats." #f ": a non-negative integer expected");               \
        goto out;                                                                                  \
    }
    U64_FIELDS(GET)
#undef GET
    t->vus = json_integer_value(json_object_get(j, "vus"));
    t->vus_max = json_integer_value(json_object_get(j, "vus_max"));
    t->max_lag_us = json_integer_value(json_object_get(j, "max_lag_us"));
    t->t_s = json_number_value(json_object_get(j, "t"));
    t->interval_s = json_number_value(json_object_get(j, "interval"));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(j, "status"), k, v)
    {
        char *end;
        long code = strtol(k, &end, 10);
        if (*end || code < 0 || code >= MK_LOADGEN_STATUS_MAX || !json_is_integer(v) ||
            json_integer_value(v) < 0) {
            mk_err_set(err, MK_EINVAL, "stats.status.%s: bad entry", k);
            goto out;
        }
        t->status[code] += (uint64_t)json_integer_value(v);
    }
    size_t i;
    json_array_foreach(json_object_get(j, "errors"), i, v)
    {
        const char *m = json_string_value(json_object_get(v, "message"));
        json_t *c = json_object_get(v, "count");
        if (!m || !json_is_integer(c) || json_integer_value(c) < 0) {
            mk_err_set(err, MK_EINVAL, "stats.errors[%zu]: {message, count} expected", i);
            goto out;
        }
        mk_loadgen_stats_add_error(t, m, (uint64_t)json_integer_value(c));
    }
    mk_loadgen_stats_merge(s, t);
    rc = 0;
out:
    mk_loadgen_stats_free(t);
    return rc;
}
