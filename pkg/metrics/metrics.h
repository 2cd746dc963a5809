/* Prometheus metrics. HTTP serving metrics go to per-worker shards that only their worker writes;
 * database timings, gauges and counters are set off the hot path under a lock. */
#ifndef MK_METRICS_H
#define MK_METRICS_H

#include "str/str.h"

#include <stdbool.h>

typedef struct mk_metrics mk_metrics_t;

/* Metrics with nshards hot-path shards (one per worker thread). NULL when nshards is 0 or on
 * allocation failure. Free with mk_metrics_free(), which accepts NULL. */
mk_metrics_t *mk_metrics_new(unsigned nshards);
void mk_metrics_free(mk_metrics_t *m);

/* Hot path: counts one request in http_requests_total{method,status} and observes seconds in
 * http_request_duration_seconds{method}. Only the worker owning shard may call it for that
 * shard (the shard's counters have a single writer; a concurrent render reads them with relaxed
 * atomics). An index past the last shard wraps. method is one of GET POST PUT PATCH DELETE HEAD
 * OPTIONS (exact), anything else counts as OTHER; a status outside 100-599 counts as "0". */
void mk_metrics_http(mk_metrics_t *m, unsigned shard, mk_str_t method, int status, double seconds);

/* Hot path, same single-writer rule as mk_metrics_http: counts one mock call in
 * mockarty_protocol_requests_total{protocol,outcome}. protocol is one of MK_METRICS_PROTOCOLS
 * (NULL or anything else counts as "http"); matched tells whether a mock answered. */
#define MK_METRICS_PROTOCOLS "http", "grpc", "graphql", "soap", "sse", "websocket"
void mk_metrics_protocol(mk_metrics_t *m, unsigned shard, const char *protocol, bool matched);

/* Observes seconds in db_query_duration_seconds{operation} (operation borrowed, copied on first
 * use). Takes a lock: not for the hot path. */
void mk_metrics_db(mk_metrics_t *m, const char *operation, double seconds);

/* Sets gauge name (with an optional single label; label_name NULL means no label, label_value is
 * then ignored) to v, replacing the previous value of that series. help is used when the gauge is
 * first created. Strings are borrowed and copied. Ignored when name or label_name is not a valid
 * Prometheus name, when name belongs to another metric, or when label_name differs from the one
 * the gauge was created with. */
void mk_metrics_gauge_set(mk_metrics_t *m, const char *name, const char *help,
                          const char *label_name, const char *label_value, double v);
/* Removes gauge name and all its series (for instance before re-setting mockarty_mocks for the
 * namespaces that still exist). */
void mk_metrics_gauge_clear(mk_metrics_t *m, const char *name);

/* Adds v (ignored when negative or NaN) to the unlabelled counter name, creating it at 0 first.
 * Same naming rules as gauges. */
void mk_metrics_counter_add(mk_metrics_t *m, const char *name, const char *help, double v);

/* Appends every metric to out in the Prometheus text exposition format 0.0.4 (# HELP and # TYPE
 * lines, escaped label values, cumulative histogram buckets with +Inf, _sum and _count).
 * Returns 0, or MK_ETOOBIG / MK_ENOMEM from the buffer. Safe while workers record. */
int mk_metrics_render(mk_metrics_t *m, mk_buf_t *out);

#endif
