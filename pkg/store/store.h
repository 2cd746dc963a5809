/* The storage layer (after Mockzilla's): one backend per process, memory (default) or Redis, with
 * an isolated view per namespace. A record lives at "{namespace}:{table}:{key}"; tables are
 * created on first use; each record has its own TTL (0 = forever). The memory backend expires
 * lazily on access plus a bounded background sweep; Redis uses its native TTL. A history table per
 * namespace keeps time-ordered records for a bounded duration.
 *
 * Values are opaque bytes (callers store JSON text). Namespaces are 1-64 of [A-Za-z0-9_.-]; table
 * names are ours ("global", "chain:<chainId>", "mock:<mockId>"; 1-256 bytes, no NUL), and the
 * module escapes ':' and '%' in them so no two (table, key) pairs can collide. Keys are 0-1024
 * bytes, any but NUL.
 * All functions are thread-safe; the hot path calls them from every worker thread. */
#ifndef MK_STORE_H
#define MK_STORE_H

#include "err/err.h"
#include "httpd/httpd_loop.h"
#include "str/str.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum mk_store_type {
    MK_STORE_MEMORY,
    MK_STORE_REDIS,
} mk_store_type_t;

typedef struct mk_store_opts {
    mk_store_type_t type;
    /* Redis (type MK_STORE_REDIS); strings copied. */
    const char *redis_host;
    int redis_port;
    const char *redis_password;
    int redis_db;
    /* Redis Sentinel (see redis.h): when set, the master is found through these instead. */
    const char *redis_sentinels;
    const char *redis_master_name;
    const char *redis_sentinel_password;
    size_t max_value_bytes;    /* STORE_MAX_VALUE_BYTES; 0 = 1 MiB */
    int64_t history_ms;        /* HISTORY_DURATION; 0 = 60 minutes */
    int64_t sweep_interval_ms; /* memory backend's background sweep; 0 = 1000 */
} mk_store_opts_t;

typedef struct mk_store mk_store_t;

#define MK_STORE_NS_MAX    64   /* namespace bytes */
#define MK_STORE_TABLE_MAX 256  /* table name bytes, before escaping */
#define MK_STORE_KEY_MAX   1024 /* key bytes */

/* Opens the backend. With Redis, an unreachable server is not an error here (operations answer
 * MK_EUNAVAIL until it is back). Caller frees with mk_store_free(). */
int mk_store_open(const mk_store_opts_t *opts, mk_store_t **out, mk_err_t *err);
void mk_store_free(mk_store_t *s);
const char *mk_store_backend(const mk_store_t *s); /* "memory" or "redis" */

/* Errors common to all operations: MK_EINVAL (bad namespace, key with NUL, value too large —
 * the message names which and the limit), MK_EUNAVAIL (Redis unreachable). */

/* Appends the value to out; MK_ENOTFOUND when absent or expired. */
int mk_store_get(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_str_t key, mk_buf_t *out,
                 mk_err_t *err);
/* ttl_ms 0 = forever. */
int mk_store_set(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_str_t key, mk_str_t value,
                 int64_t ttl_ms, mk_err_t *err);
/* Missing keys are not an error. */
int mk_store_delete(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_str_t key, mk_err_t *err);
/* Atomically adds by to the integer stored at key (absent or expired counts as 0) and stores the
 * sum, keeping the record's TTL; MK_EINVAL when the value is not an integer. *result may be
 * NULL. Atomic across threads and, with Redis, across processes. */
int mk_store_incr(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_str_t key, int64_t by,
                  int64_t *result, mk_err_t *err);
/* Calls cb for each live record of the table (order unspecified); a non-zero return stops. cb
 * runs without store locks held and may call the store. With Redis (SCAN) a record written during
 * the walk may be missed or seen twice. The memory backend walks every record it holds, so this
 * is for admin paths, not the hot path. */
typedef int (*mk_store_each_cb)(void *ud, mk_str_t key, mk_str_t value);
int mk_store_each(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_store_each_cb cb, void *ud,
                  mk_err_t *err);
/* Removes every record of the table. */
int mk_store_clear(mk_store_t *s, mk_str_t ns, mk_str_t table, mk_err_t *err);

/* History: records appended with their time, kept for history_ms, read back oldest first. */
int mk_store_history_append(mk_store_t *s, mk_str_t ns, int64_t ts_ms, mk_str_t record,
                            mk_err_t *err);
/* Appends many records of possibly different namespaces in one round trip (the journal's drain
 * thread batches this way). */
typedef struct mk_store_history_rec {
    mk_str_t ns;
    int64_t ts_ms;
    mk_str_t record;
} mk_store_history_rec_t;
int mk_store_history_append_many(mk_store_t *s, const mk_store_history_rec_t *recs, size_t n,
                                 mk_err_t *err);
/* Records with ts >= since_ms, oldest first. cb gets the record's ts_ms as decimal text for key
 * and the record for value. */
int mk_store_history_each(mk_store_t *s, mk_str_t ns, int64_t since_ms, mk_store_each_cb cb,
                          void *ud, mk_err_t *err);
int mk_store_history_clear(mk_store_t *s, mk_str_t ns, mk_err_t *err);

/* Checks the backend answers (always 0 for memory), with the round trip in *latency_ms. */
int mk_store_ping(mk_store_t *s, double *latency_ms, mk_err_t *err);

/* Memory backend: records held (expired ones not yet removed included) and the bytes of their keys
 * and values; both 0 with Redis. For metrics, and to see the sweep work. */
void mk_store_mem_stats(mk_store_t *s, size_t *records, size_t *bytes);

/* ---- the hot path on Redis: asynchronous batches on the worker's event loop ---- */

typedef enum mk_store_op_kind {
    MK_STORE_OP_GET,
    MK_STORE_OP_SET, /* without TTL */
    MK_STORE_OP_INCR,
} mk_store_op_kind_t;

typedef struct mk_store_op {
    mk_store_op_kind_t kind;
    mk_str_t table, key; /* copied by mk_store_submit */
    /* SET: the value. INCR: a seed stored first when the key is absent (empty: none). Copied. */
    mk_str_t value;
    int64_t by; /* INCR */
    /* Filled before done runs. rc: 0; MK_ENOTFOUND (GET of nothing); MK_EINVAL (INCR of a
     * non-integer or past int64); MK_EUNAVAIL; MK_EIO. */
    int rc;
    mk_buf_t out;   /* GET: the value; the caller inits it (with its limit) and frees it */
    int64_t result; /* INCR: the sum */
} mk_store_op_t;

/* True when the hot path should use mk_store_submit (Redis); the memory backend answers the
 * synchronous calls at once. */
bool mk_store_is_async(const mk_store_t *s);

/* Sends ops in their order, pipelined on this store's connection for loop (one per loop, made
 * on first use), and calls done(ud, err) on the loop once every reply is in; err is NULL when all
 * succeeded (MK_ENOTFOUND of a GET is not a failure), else it describes the first failure and
 * ops[i].rc tells which. Returns 0 when done will run (ops must stay valid until then), or an
 * error and done never runs: MK_EINVAL for a bad namespace, table, key or value, MK_EUNAVAIL at
 * once while Redis is down. */
int mk_store_submit(mk_store_t *s, mk_httpd_loop_t *loop, mk_str_t ns, mk_store_op_t *ops, size_t n,
                    void (*done)(void *ud, const mk_err_t *err), void *ud, mk_err_t *err);

#endif
