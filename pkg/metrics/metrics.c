/* Prometheus metrics: cache-line-aligned per-worker shards for HTTP serving, a locked registry for
 * the rest, and the text exposition renderer. */
#include "metrics/metrics.h"
#include "err/err.h"

#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_LINE 64
#define NSTATUS    600
#define NBOUNDS    14

enum { M_GET, M_POST, M_PUT, M_PATCH, M_DELETE, M_HEAD, M_OPTIONS, M_OTHER, NMETHODS };

static const char *const method_names[NMETHODS] = {"GET",    "POST", "PUT",     "PATCH",
                                                   "DELETE", "HEAD", "OPTIONS", "OTHER"};

static const char *const protocol_names[] = {MK_METRICS_PROTOCOLS};
#define NPROTOCOLS (sizeof protocol_names / sizeof *protocol_names)

static const double bounds[NBOUNDS] = {.0001, .0005, .001, .005, .01, .025, .05,
                                       .1,    .25,   .5,   1,    2.5, 5,    10};

static const char *const builtin_names[] = {"http_requests_total", "http_request_duration_seconds",
                                            "mockarty_protocol_requests_total",
                                            "db_query_duration_seconds"};

/* One worker's counters. Buckets are per-bucket (not cumulative) so an observation is one
 * increment; the renderer accumulates. */
typedef struct shard {
    alignas(CACHE_LINE) _Atomic uint64_t requests[NMETHODS][NSTATUS];
    _Atomic uint64_t buckets[NMETHODS][NBOUNDS + 1];
    _Atomic uint64_t sum_ns[NMETHODS];
    _Atomic uint64_t protocols[NPROTOCOLS][2]; /* [protocol][matched] */
} shard_t;

typedef struct db_hist {
    char *operation;
    uint64_t buckets[NBOUNDS + 1];
    double sum;
} db_hist_t;

typedef struct series {
    char *label_value; /* NULL for an unlabelled family */
    double v;
} series_t;

typedef struct family {
    char *name, *help, *label_name;
    const char *type; /* "gauge" or "counter" */
    series_t *series;
    size_t nseries;
} family_t;

struct mk_metrics {
    unsigned nshards;
    shard_t *shards;
    pthread_mutex_t mu; /* guards everything below */
    db_hist_t *db;
    size_t ndb;
    family_t *families; /* in creation order */
    size_t nfamilies;
};

mk_metrics_t *mk_metrics_new(unsigned nshards)
{
    if (nshards == 0)
        return NULL;
    mk_metrics_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->shards = aligned_alloc(CACHE_LINE, nshards * sizeof(shard_t));
    if (m->shards == NULL) {
        free(m);
        return NULL;
    }
    /* All-zero bytes are a valid zero for lock-free atomic integers. */
    memset(m->shards, 0, nshards * sizeof(shard_t));
    m->nshards = nshards;
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void family_release(family_t *f)
{
    for (size_t i = 0; i < f->nseries; i++)
        free(f->series[i].label_value);
    free(f->series);
    free(f->name);
    free(f->help);
    free(f->label_name);
}

void mk_metrics_free(mk_metrics_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->ndb; i++)
        free(m->db[i].operation);
    free(m->db);
    for (size_t i = 0; i < m->nfamilies; i++)
        family_release(&m->families[i]);
    free(m->families);
    pthread_mutex_destroy(&m->mu);
    free(m->shards);
    free(m);
}

/* ---- observing ---- */

static int method_index(mk_str_t s)
{
    switch (s.len) {
    case 3:
        if (memcmp(s.base, "GET", 3) == 0)
            return M_GET;
        if (memcmp(s.base, "PUT", 3) == 0)
            return M_PUT;
        break;
    case 4:
        if (memcmp(s.base, "POST", 4) == 0)
            return M_POST;
        if (memcmp(s.base, "HEAD", 4) == 0)
            return M_HEAD;
        break;
    case 5:
        if (memcmp(s.base, "PATCH", 5) == 0)
            return M_PATCH;
        break;
    case 6:
        if (memcmp(s.base, "DELETE", 6) == 0)
            return M_DELETE;
        break;
    case 7:
        if (memcmp(s.base, "OPTIONS", 7) == 0)
            return M_OPTIONS;
        break;
    }
    return M_OTHER;
}

static int bucket_index(double seconds)
{
    for (int i = 0; i < NBOUNDS; i++) {
        if (seconds <= bounds[i])
            return i;
    }
    return NBOUNDS;
}

/* Single writer per shard: a relaxed load and store is enough and avoids a locked instruction. */
static inline void bump(_Atomic uint64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

void mk_metrics_http(mk_metrics_t *m, unsigned shard, mk_str_t method, int status, double seconds)
{
    shard_t *s = &m->shards[shard % m->nshards];
    int mi = method_index(method);
    int si = (status >= 100 && status < NSTATUS) ? status : 0;
    if (!(seconds > 0)) /* also catches NaN */
        seconds = 0;
    bump(&s->requests[mi][si], 1);
    bump(&s->buckets[mi][bucket_index(seconds)], 1);
    /* Saturate instead of overflowing the conversion for absurd durations. */
    uint64_t ns = seconds < 1.8e10 ? (uint64_t)(seconds * 1e9) : UINT64_C(18000000000000000000);
    bump(&s->sum_ns[mi], ns);
}

void mk_metrics_protocol(mk_metrics_t *m, unsigned shard, const char *protocol, bool matched)
{
    size_t pi = 0;
    for (size_t i = 1; protocol != NULL && i < NPROTOCOLS; i++) {
        if (strcmp(protocol, protocol_names[i]) == 0)
            pi = i;
    }
    bump(&m->shards[shard % m->nshards].protocols[pi][matched], 1);
}

void mk_metrics_db(mk_metrics_t *m, const char *operation, double seconds)
{
    if (operation == NULL)
        operation = "unknown";
    if (!(seconds > 0))
        seconds = 0;
    pthread_mutex_lock(&m->mu);
    db_hist_t *h = NULL;
    for (size_t i = 0; i < m->ndb && h == NULL; i++) {
        if (strcmp(m->db[i].operation, operation) == 0)
            h = &m->db[i];
    }
    if (h == NULL) {
        char *op = strdup(operation);
        db_hist_t *grown = op ? realloc(m->db, (m->ndb + 1) * sizeof *m->db) : NULL;
        if (grown == NULL) {
            free(op);
            goto out;
        }
        m->db = grown;
        h = &m->db[m->ndb++];
        memset(h, 0, sizeof *h);
        h->operation = op;
    }
    h->buckets[bucket_index(seconds)]++;
    h->sum += seconds;
out:
    pthread_mutex_unlock(&m->mu);
}

/* ---- gauges and counters ---- */

static bool valid_name(const char *s, bool colon_ok)
{
    if (s == NULL || *s == '\0')
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon_ok && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool builtin_name(const char *name)
{
    for (size_t i = 0; i < sizeof builtin_names / sizeof *builtin_names; i++) {
        if (strcmp(builtin_names[i], name) == 0)
            return true;
    }
    return false;
}

static family_t *family_find(mk_metrics_t *m, const char *name)
{
    for (size_t i = 0; i < m->nfamilies; i++) {
        if (strcmp(m->families[i].name, name) == 0)
            return &m->families[i];
    }
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Finds or creates family name of type; NULL when it cannot be used as asked. Caller holds mu. */
static family_t *family_get(mk_metrics_t *m, const char *name, const char *help, const char *type,
                            const char *label_name)
{
    if (!valid_name(name, true) || builtin_name(name))
        return NULL;
    if (label_name && (!valid_name(label_name, false) || strncmp(label_name, "__", 2) == 0))
        return NULL;
    family_t *f = family_find(m, name);
    if (f) {
        bool same_label = (f->label_name == NULL && label_name == NULL) ||
                          (f->label_name && label_name && strcmp(f->label_name, label_name) == 0);
        return (f->type == type && same_label) ? f : NULL;
    }
    family_t *grown = realloc(m->families, (m->nfamilies + 1) * sizeof *m->families);
    if (grown == NULL)
        return NULL;
    m->families = grown;
    family_t nf = {.name = strdup(name),
                   .help = dup_or_null(help),
                   .label_name = dup_or_null(label_name),
                   .type = type};
    if (nf.name == NULL || (help && nf.help == NULL) || (label_name && nf.label_name == NULL)) {
        family_release(&nf);
        return NULL;
    }
    m->families[m->nfamilies] = nf;
    return &m->families[m->nfamilies++];
}

/* The series of f for label_value (ignored when f has no label), created at 0 when missing. */
static series_t *series_get(family_t *f, const char *label_value)
{
    if (f->label_name == NULL)
        label_value = NULL;
    else if (label_value == NULL)
        label_value = "";
    for (size_t i = 0; i < f->nseries; i++) {
        const char *lv = f->series[i].label_value;
        if ((lv == NULL && label_value == NULL) ||
            (lv && label_value && strcmp(lv, label_value) == 0))
            return &f->series[i];
    }
    series_t *grown = realloc(f->series, (f->nseries + 1) * sizeof *f->series);
    if (grown == NULL)
        return NULL;
    f->series = grown;
    series_t s = {.label_value = dup_or_null(label_value), .v = 0};
    if (label_value && s.label_value == NULL)
        return NULL;
    f->series[f->nseries] = s;
    return &f->series[f->nseries++];
}

static const char type_gauge[] = "gauge";
static const char type_counter[] = "counter";

void mk_metrics_gauge_set(mk_metrics_t *m, const char *name, const char *help,
                          const char *label_name, const char *label_value, double v)
{
    pthread_mutex_lock(&m->mu);
    family_t *f = family_get(m, name, help, type_gauge, label_name);
    series_t *s = f ? series_get(f, label_value) : NULL;
    if (s)
        s->v = v;
    pthread_mutex_unlock(&m->mu);
}

void mk_metrics_gauge_clear(mk_metrics_t *m, const char *name)
{
    if (name == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    family_t *f = family_find(m, name);
    if (f && f->type == type_gauge) {
        family_release(f);
        size_t i = (size_t)(f - m->families);
        memmove(f, f + 1, (m->nfamilies - i - 1) * sizeof *f);
        m->nfamilies--;
    }
    pthread_mutex_unlock(&m->mu);
}

void mk_metrics_counter_add(mk_metrics_t *m, const char *name, const char *help, double v)
{
    if (!(v >= 0))
        return;
    pthread_mutex_lock(&m->mu);
    family_t *f = family_get(m, name, help, type_counter, NULL);
    series_t *s = f ? series_get(f, NULL) : NULL;
    if (s)
        s->v += v;
    pthread_mutex_unlock(&m->mu);
}

/* ---- rendering ---- */

/* Shortest decimal that reads back as v, or the format's spelling of the special values. */
static int put_double(mk_buf_t *b, double v)
{
    if (isnan(v))
        return mk_buf_append_str(b, "NaN");
    if (isinf(v))
        return mk_buf_append_str(b, v > 0 ? "+Inf" : "-Inf");
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return mk_buf_append_str(b, tmp);
}

/* Escapes s for a label value (quote, backslash, newline) or for HELP text (no quote). */
static int put_escaped(mk_buf_t *b, const char *s, bool quote)
{
    int rc = 0;
    for (const char *p = s; *p && rc == 0; p++) {
        if (*p == '\\')
            rc = mk_buf_append(b, "\\\\", 2);
        else if (*p == '\n')
            rc = mk_buf_append(b, "\\n", 2);
        else if (quote && *p == '"')
            rc = mk_buf_append(b, "\\\"", 2);
        else
            rc = mk_buf_append(b, p, 1);
    }
    return rc;
}

static int put_header(mk_buf_t *b, const char *name, const char *help, const char *type)
{
    int rc = 0;
    if (help && *help) {
        rc = mk_buf_appendf(b, "# HELP %s ", name);
        if (rc == 0)
            rc = put_escaped(b, help, false);
        if (rc == 0)
            rc = mk_buf_append(b, "\n", 1);
    }
    if (rc == 0)
        rc = mk_buf_appendf(b, "# TYPE %s %s\n", name, type);
    return rc;
}

/* Writes name{label="value"[,le="bound"]} (no braces when there is no label and no bound). */
static int put_series(mk_buf_t *b, const char *name, const char *suffix, const char *label,
                      const char *value, const char *le)
{
    int rc = mk_buf_appendf(b, "%s%s", name, suffix);
    if (rc == 0 && (label || le))
        rc = mk_buf_append(b, "{", 1);
    if (rc == 0 && label) {
        rc = mk_buf_appendf(b, "%s=\"", label);
        if (rc == 0)
            rc = put_escaped(b, value, true);
        if (rc == 0)
            rc = mk_buf_append(b, "\"", 1);
    }
    if (rc == 0 && le)
        rc = mk_buf_appendf(b, "%sle=\"%s\"", label ? "," : "", le);
    if (rc == 0 && (label || le))
        rc = mk_buf_append(b, "}", 1);
    return rc;
}

/* One histogram series from per-bucket counts. */
static int put_histogram(mk_buf_t *b, const char *name, const char *label, const char *value,
                         const uint64_t *buckets, double sum)
{
    uint64_t cumulative = 0;
    int rc = 0;
    char le[32];
    for (int i = 0; i <= NBOUNDS && rc == 0; i++) {
        cumulative += buckets[i];
        if (i < NBOUNDS)
            snprintf(le, sizeof le, "%g", bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        rc = put_series(b, name, "_bucket", label, value, le);
        if (rc == 0)
            rc = mk_buf_appendf(b, " %llu\n", (unsigned long long)cumulative);
    }
    if (rc == 0)
        rc = put_series(b, name, "_sum", label, value, NULL);
    if (rc == 0)
        rc = mk_buf_append(b, " ", 1);
    if (rc == 0)
        rc = put_double(b, sum);
    if (rc == 0)
        rc = mk_buf_append(b, "\n", 1);
    if (rc == 0)
        rc = put_series(b, name, "_count", label, value, NULL);
    if (rc == 0)
        rc = mk_buf_appendf(b, " %llu\n", (unsigned long long)cumulative);
    return rc;
}

static int render_http(mk_metrics_t *m, mk_buf_t *b)
{
    int rc = put_header(b, "http_requests_total", "Total HTTP requests served.", "counter");
    for (int mi = 0; mi < NMETHODS && rc == 0; mi++) {
        for (int si = 0; si < NSTATUS && rc == 0; si++) {
            uint64_t n = 0;
            for (unsigned k = 0; k < m->nshards; k++)
                n += atomic_load_explicit(&m->shards[k].requests[mi][si], memory_order_relaxed);
            if (n == 0)
                continue;
            rc = mk_buf_appendf(b, "http_requests_total{method=\"%s\",status=\"%d\"} %llu\n",
                                method_names[mi], si, (unsigned long long)n);
        }
    }
    if (rc == 0)
        rc = put_header(b, "mockarty_protocol_requests_total",
                        "Mock calls by protocol, and whether a mock answered.", "counter");
    for (size_t pi = 0; pi < NPROTOCOLS && rc == 0; pi++) {
        for (int matched = 0; matched < 2 && rc == 0; matched++) {
            uint64_t n = 0;
            for (unsigned k = 0; k < m->nshards; k++)
                n += atomic_load_explicit(&m->shards[k].protocols[pi][matched],
                                          memory_order_relaxed);
            if (n != 0)
                rc = mk_buf_appendf(
                    b, "mockarty_protocol_requests_total{protocol=\"%s\",outcome=\"%s\"} %llu\n",
                    protocol_names[pi], matched ? "matched" : "unmatched", (unsigned long long)n);
        }
    }
    if (rc == 0)
        rc = put_header(b, "http_request_duration_seconds",
                        "HTTP request duration in seconds, by method.", "histogram");
    for (int mi = 0; mi < NMETHODS && rc == 0; mi++) {
        uint64_t buckets[NBOUNDS + 1] = {0}, count = 0, sum_ns = 0;
        for (unsigned k = 0; k < m->nshards; k++) {
            const shard_t *s = &m->shards[k];
            for (int i = 0; i <= NBOUNDS; i++)
                buckets[i] += atomic_load_explicit(&s->buckets[mi][i], memory_order_relaxed);
            sum_ns += atomic_load_explicit(&s->sum_ns[mi], memory_order_relaxed);
        }
        for (int i = 0; i <= NBOUNDS; i++)
            count += buckets[i];
        if (count == 0)
            continue;
        rc = put_histogram(b, "http_request_duration_seconds", "method", method_names[mi], buckets,
                           (double)sum_ns / 1e9);
    }
    return rc;
}

/* Caller holds mu. */
static int render_locked(mk_metrics_t *m, mk_buf_t *b)
{
    int rc = put_header(b, "db_query_duration_seconds",
                        "Database query duration in seconds, by operation.", "histogram");
    for (size_t i = 0; i < m->ndb && rc == 0; i++)
        rc = put_histogram(b, "db_query_duration_seconds", "operation", m->db[i].operation,
                           m->db[i].buckets, m->db[i].sum);
    for (size_t i = 0; i < m->nfamilies && rc == 0; i++) {
        const family_t *f = &m->families[i];
        rc = put_header(b, f->name, f->help, f->type);
        for (size_t k = 0; k < f->nseries && rc == 0; k++) {
            rc = put_series(b, f->name, "", f->label_name, f->series[k].label_value, NULL);
            if (rc == 0)
                rc = mk_buf_append(b, " ", 1);
            if (rc == 0)
                rc = put_double(b, f->series[k].v);
            if (rc == 0)
                rc = mk_buf_append(b, "\n", 1);
        }
    }
    return rc;
}

int mk_metrics_render(mk_metrics_t *m, mk_buf_t *out)
{
    int rc = render_http(m, out);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&m->mu);
    rc = render_locked(m, out);
    pthread_mutex_unlock(&m->mu);
    return rc;
}
