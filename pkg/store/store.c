/* The store's front: options, validation of namespaces, tables, keys and values, the key layout
 * "ns:escapedtable:key" shared by both backends, and dispatch to memory or Redis. */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <time.h>

#define DEFAULT_MAX_VALUE  (1024 * 1024)
#define DEFAULT_HISTORY_MS (60 * 60 * 1000)
#define DEFAULT_SWEEP_MS   1000

int64_t mk_store_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mk_store_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool mk_store_parse_int(const char *p, size_t len, int64_t *out)
{
    /* Canonical only (as Redis prints them): no '+', no leading zero, no "-0". */
    size_t i = len > 0 && p[0] == '-';
    if (i == len || p[i] == '+' || (p[i] == '0' && (len - i > 1 || i)))
        return false;
    return mk_str_to_i64((mk_str_t){p, len}, out);
}

static bool ns_valid(mk_str_t ns)
{
    if (ns.len == 0 || ns.len > MK_STORE_NS_MAX)
        return false;
    for (size_t i = 0; i < ns.len; i++) {
        char c = ns.base[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static int check_ns(mk_str_t ns, mk_err_t *err)
{
    if (!ns_valid(ns))
        return mk_err_set(
            err, MK_EINVAL, "store: namespace \"%.*s\" must be 1-%d characters of [A-Za-z0-9_.-]",
            (int)(ns.len > 80 ? 80 : ns.len), ns.base ? ns.base : "", MK_STORE_NS_MAX);
    return 0;
}

static int check_value(const mk_store_t *s, mk_str_t v, const char *what, mk_err_t *err)
{
    if (v.len > s->max_value)
        return mk_err_set(err, MK_EINVAL,
                          "store: %s of %zu bytes exceeds the limit of %zu bytes "
                          "(STORE_MAX_VALUE_BYTES)",
                          what, v.len, s->max_value);
    return 0;
}

/* Builds "ns:table:" and, when key is not NULL, appends the key. ':' and '%' in the table are
 * escaped so the first two ':' always delimit namespace and table. */
static int key_build(mk_str_t ns, mk_str_t table, const mk_str_t *key, store_key_t *k,
                     mk_err_t *err)
{
    int rc = check_ns(ns, err);
    if (rc != 0)
        return rc;
    if (table.len == 0 || table.len > MK_STORE_TABLE_MAX || memchr(table.base, 0, table.len))
        return mk_err_set(err, MK_EINVAL, "store: table name must be 1-%d bytes without NUL",
                          MK_STORE_TABLE_MAX);
    if (key != NULL) {
        if (key->len > MK_STORE_KEY_MAX)
            return mk_err_set(err, MK_EINVAL, "store: key of %zu bytes exceeds %d bytes", key->len,
                              MK_STORE_KEY_MAX);
        if (key->len > 0 && memchr(key->base, 0, key->len) != NULL)
            return mk_err_set(err, MK_EINVAL, "store: key contains a NUL byte");
    }
    char *p = k->buf;
    memcpy(p, ns.base, ns.len);
    p += ns.len;
    *p++ = ':';
    for (size_t i = 0; i < table.len; i++) {
        char c = table.base[i];
        if (c == '%') {
            memcpy(p, "%25", 3);
            p += 3;
        } else if (c == ':') {
            memcpy(p, "%3A", 3);
            p += 3;
        } else {
            *p++ = c;
        }
    }
    *p++ = ':';
    k->prefix_len = (size_t)(p - k->buf);
    if (key != NULL && key->len > 0) {
        memcpy(p, key->base, key->len);
        p += key->len;
    }
    *p = '\0';
    k->len = (size_t)(p - k->buf);
    return 0;
}

int mk_store_open(const mk_store_opts_t *opts, mk_store_t **out, mk_err_t *err)
{
    *out = NULL;
    if (opts->max_value_bytes > (size_t)1 << 30)
        return mk_err_set(err, MK_EINVAL, "store: max_value_bytes %zu exceeds 1 GiB",
                          opts->max_value_bytes);
    if (opts->history_ms < 0 || opts->sweep_interval_ms < 0)
        return mk_err_set(err, MK_EINVAL, "store: history_ms and sweep_interval_ms must be >= 0");
    mk_store_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return mk_err_set(err, MK_ENOMEM, "store: out of memory");
    s->type = opts->type;
    s->max_value = opts->max_value_bytes ? opts->max_value_bytes : DEFAULT_MAX_VALUE;
    s->history_ms = opts->history_ms ? opts->history_ms : DEFAULT_HISTORY_MS;
    s->sweep_ms = opts->sweep_interval_ms ? opts->sweep_interval_ms : DEFAULT_SWEEP_MS;
    uint64_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        rnd = (uint64_t)mk_store_wall_ms() ^ ((uint64_t)getpid() << 32);
    snprintf(s->uid, sizeof s->uid, "%016llx", (unsigned long long)rnd);
    atomic_init(&s->seq, 0);
    int rc;
    switch (opts->type) {
    case MK_STORE_MEMORY:
        rc = mk_store_mem_open(s, err);
        break;
    case MK_STORE_REDIS:
        rc = mk_store_redis_open(s, opts, err);
        break;
    default:
        rc = mk_err_set(err, MK_EINVAL, "store: unknown backend type %d", (int)opts->type);
        break;
    }
    if (rc != 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void mk_store_free(mk_store_t *s)
{
    if (s == NULL)
        return;
    if (s->type == MK_STORE_MEMORY)
        mk_store_mem_close(s);
    else
        mk_store_redis_close(s);
    free(s);
}

const char *mk_store_backend(const mk_store_t *s)
{
    return s->type == MK_STORE_MEMORY ? "memory" : "redis";
}

int mk_store_get(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_str_t key, mk_buf_t *out,
                 mk_err_t *err)
{
    store_key_t k;
    int rc = key_build(ns, table, &key, &k, err);
    if (rc != 0)
        return rc;
    if (s->type == MK_STORE_MEMORY)
        return mk_store_mem_get(s, &k, out, err);
    return mk_store_redis_get(s, &k, out, err);
}

int mk_store_set(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_str_t key, mk_str_t value,
                 int64_t ttl_ms, mk_err_t *err)
{
    store_key_t k;
    int rc = key_build(ns, table, &key, &k, err);
    if (rc == 0)
        rc = check_value(s, value, "value", err);
    if (rc != 0)
        return rc;
    if (ttl_ms < 0)
        return mk_err_set(err, MK_EINVAL, "store: ttl %lld ms is negative", (long long)ttl_ms);
    if (s->type == MK_STORE_MEMORY)
        return mk_store_mem_set(s, &k, value, ttl_ms, err);
    return mk_store_redis_set(s, &k, value, ttl_ms, err);
}

int mk_store_delete(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_str_t key, mk_err_t *err)
{
    store_key_t k;
    int rc = key_build(ns, table, &key, &k, err);
    if (rc != 0)
        return rc;
    if (s->type == MK_STORE_MEMORY)
        return mk_store_mem_delete(s, &k, err);
    return mk_store_redis_delete(s, &k, err);
}

int mk_store_incr(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_str_t key, int64_t by,
                  int64_t *result, mk_err_t *err)
{
    store_key_t k;
    int rc = key_build(ns, table, &key, &k, err);
    if (rc != 0)
        return rc;
    if (s->type == MK_STORE_MEMORY)
        return mk_store_mem_incr(s, &k, by, result, err);
    return mk_store_redis_incr(s, &k, by, result, err);
}

int mk_store_each(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_store_each_cb cb, void *ud,
                  mk_err_t *err)
{
    store_key_t k;
    int rc = key_build(ns, table, NULL, &k, err);
    if (rc != 0)
        return rc;
    if (s->type == MK_STORE_MEMORY)
        return mk_store_mem_each(s, &k, cb, ud, err);
    return mk_store_redis_each(s, &k, cb, ud, err);
}

int mk_store_clear(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_err_t *err)
{
    store_key_t k;
    int rc = key_build(ns, table, NULL, &k, err);
    if (rc != 0)
        return rc;
    if (s->type == MK_STORE_MEMORY)
        return mk_store_mem_clear(s, &k, err);
    return mk_store_redis_clear(s, &k, err);
}

int mk_store_history_append(mk_store_t *s, mk_str_t ns, int64_t ts_ms, mk_str_t record,
                            mk_err_t *err)
{
    mk_store_history_rec_t rec = {ns, ts_ms, record};
    return mk_store_history_append_many(s, &rec, 1, err);
}

int mk_store_history_append_many(mk_store_t *s, const mk_store_history_rec_t *recs, size_t n,
                                 mk_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = check_ns(recs[i].ns, err);
        if (rc == 0)
            rc = check_value(s, recs[i].record, "history record", err);
        if (rc != 0)
            return rc;
    }
    if (n == 0)
        return 0;
    if (s->type == MK_STORE_REDIS)
        return mk_store_redis_hist_append(s, recs, n, err);
    for (size_t i = 0; i < n; i++) {
        int rc = mk_store_mem_hist_append(s, &recs[i], err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int mk_store_history_each(mk_store_t *s, mk_str_t ns, int64_t since_ms, mk_store_each_cb cb,
                          void *ud, mk_err_t *err)
{
    int rc = check_ns(ns, err);
    if (rc != 0)
        return rc;
    if (s->type == MK_STORE_MEMORY)
        return mk_store_mem_hist_each(s, ns, since_ms, cb, ud, err);
    return mk_store_redis_hist_each(s, ns, since_ms, cb, ud, err);
}

int mk_store_history_clear(mk_store_t *s, mk_str_t ns, mk_err_t *err)
{
    int rc = check_ns(ns, err);
    if (rc != 0)
        return rc;
    if (s->type == MK_STORE_MEMORY)
        return mk_store_mem_hist_clear(s, ns, err);
    return mk_store_redis_hist_clear(s, ns, err);
}

int mk_store_ping(mk_store_t *s, double *latency_ms, mk_err_t *err)
{
    if (s->type == MK_STORE_MEMORY) {
        if (latency_ms != NULL)
            *latency_ms = 0;
        return 0;
    }
    return mk_store_redis_ping(s, latency_ms, err);
}

void mk_store_mem_stats(mk_store_t *s, size_t *records, size_t *bytes)
{
    size_t r = 0, b = 0;
    if (s->type == MK_STORE_MEMORY)
        mk_store_mem_stats_get(s, &r, &b);
    if (records != NULL)
        *records = r;
    if (bytes != NULL)
        *bytes = b;
}

bool mk_store_is_async(const mk_store_t *s)
{
    return s->type == MK_STORE_REDIS;
}

int mk_store_submit(mk_store_t *s, mk_httpd_loop_t *loop, mk_str_t ns, mk_store_op_t *ops, size_t n,
                    void (*done)(void *ud, const mk_err_t *err), void *ud, mk_err_t *err)
{
    if (s->type != MK_STORE_REDIS)
        return mk_err_set(err, MK_EINVAL, "store: the %s backend has no asynchronous calls",
                          mk_store_backend(s));
    if (n == 0)
        return mk_err_set(err, MK_EINVAL, "store: an empty batch");
    /* Keys are built (and checked) up front, so a bad one refuses the whole batch. */
    store_key_t stack[2];
    store_key_t *keys = n <= 2 ? stack : malloc(n * sizeof *keys);
    if (keys == NULL)
        return mk_err_set(err, MK_ENOMEM, "store: out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = key_build(ns, ops[i].table, &ops[i].key, &keys[i], err);
        if (rc == 0 && ops[i].kind != MK_STORE_OP_GET)
            rc = check_value(s, ops[i].value, "value", err);
    }
    if (rc == 0)
        rc = mk_store_redis_submit(s, loop, keys, ops, n, done, ud, err);
    if (keys != stack)
        free(keys);
    return rc;
}
