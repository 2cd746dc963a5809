/* Shared between the store's front (store.c: validation, key layout, dispatch) and its two
 * backends (store_mem.c, store_redis.c). Not a public header. */
#ifndef MK_STORE_INT_H
#define MK_STORE_INT_H

#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* "ns:escapedtable:key": 64 + 1 + 3 * MK_STORE_TABLE_MAX + 1 + MK_STORE_KEY_MAX fits. */
#define STORE_FULLKEY_MAX 2048

typedef struct store_key {
    char buf[STORE_FULLKEY_MAX];
    size_t len;        /* the whole key; buf is NUL-terminated */
    size_t prefix_len; /* "ns:escapedtable:" */
} store_key_t;

typedef struct store_mem store_mem_t;
typedef struct mk_redis mk_redis_t;

struct mk_store {
    mk_store_type_t type;
    size_t max_value;
    int64_t history_ms;
    int64_t sweep_ms;
    store_mem_t *mem;
    mk_redis_t *redis;
    char redis_addr[300]; /* "host:port", for messages */
    char *redis_host;     /* for the per-loop asynchronous connections */
    char *redis_password; /* NULL = no AUTH */
    int redis_port, redis_db;
    char uid[17];             /* random per open: makes Redis history members unique */
    atomic_uint_fast64_t seq; /* ... with this counter */
};

int64_t mk_store_mono_ms(void);
int64_t mk_store_wall_ms(void);
/* Strict integer text as Redis and JSON accept it: -?(0|[1-9][0-9]*), within int64. */
bool mk_store_parse_int(const char *p, size_t len, int64_t *out);

int mk_store_mem_open(mk_store_t *s, mk_err_t *err);
void mk_store_mem_close(mk_store_t *s);
int mk_store_mem_get(mk_store_t *s, const store_key_t *k, mk_buf_t *out, mk_err_t *err);
int mk_store_mem_set(mk_store_t *s, const store_key_t *k, mk_str_t value, int64_t ttl_ms,
                     mk_err_t *err);
int mk_store_mem_delete(mk_store_t *s, const store_key_t *k, mk_err_t *err);
int mk_store_mem_incr(mk_store_t *s, const store_key_t *k, int64_t by, int64_t *result,
                      mk_err_t *err);
int mk_store_mem_each(mk_store_t *s, const store_key_t *prefix, mk_store_each_cb cb, void *ud,
                      mk_err_t *err);
int mk_store_mem_clear(mk_store_t *s, const store_key_t *prefix, mk_err_t *err);
int mk_store_mem_hist_append(mk_store_t *s, const mk_store_history_rec_t *rec, mk_err_t *err);
int mk_store_mem_hist_each(mk_store_t *s, mk_str_t ns, int64_t since_ms, mk_store_each_cb cb,
                           void *ud, mk_err_t *err);
int mk_store_mem_hist_clear(mk_store_t *s, mk_str_t ns, mk_err_t *err);
void mk_store_mem_stats_get(mk_store_t *s, size_t *records, size_t *bytes);

int mk_store_redis_open(mk_store_t *s, const mk_store_opts_t *opts, mk_err_t *err);
void mk_store_redis_close(mk_store_t *s);
int mk_store_redis_get(mk_store_t *s, const store_key_t *k, mk_buf_t *out, mk_err_t *err);
int mk_store_redis_set(mk_store_t *s, const store_key_t *k, mk_str_t value, int64_t ttl_ms,
                       mk_err_t *err);
int mk_store_redis_delete(mk_store_t *s, const store_key_t *k, mk_err_t *err);
int mk_store_redis_incr(mk_store_t *s, const store_key_t *k, int64_t by, int64_t *result,
                        mk_err_t *err);
int mk_store_redis_each(mk_store_t *s, const store_key_t *prefix, mk_store_each_cb cb, void *ud,
                        mk_err_t *err);
int mk_store_redis_clear(mk_store_t *s, const store_key_t *prefix, mk_err_t *err);
int mk_store_redis_hist_append(mk_store_t *s, const mk_store_history_rec_t *recs, size_t n,
                               mk_err_t *err);
int mk_store_redis_hist_each(mk_store_t *s, mk_str_t ns, int64_t since_ms, mk_store_each_cb cb,
                             void *ud, mk_err_t *err);
int mk_store_redis_hist_clear(mk_store_t *s, mk_str_t ns, mk_err_t *err);
int mk_store_redis_submit(mk_store_t *s, mk_httpd_loop_t *loop, const store_key_t *keys,
                          mk_store_op_t *ops, size_t n, void (*done)(void *ud, const mk_err_t *err),
                          void *ud, mk_err_t *err);
int mk_store_redis_ping(mk_store_t *s, double *latency_ms, mk_err_t *err);

#endif
