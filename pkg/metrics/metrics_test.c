/* Tests for the metrics registry: the rendered exposition is parsed line by line. */
#include "err/err.h"
#include "metrics/metrics.h"
#include "testing/testing.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static char *render(mk_metrics_t *m)
{
    mk_buf_t b;
    mk_buf_init(&b, 0);
    int rc = mk_metrics_render(m, &b);
    MK_CHECK_INT(rc, 0);
    return mk_buf_take(&b);
}

/* Number of sample lines for series (exact text before the value); the last one's value in *v. */
static int lines_of(const char *text, const char *series, double *v)
{
    int n = 0;
    size_t len = strlen(series);
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        if (strncmp(line, series, len) == 0 && line[len] == ' ') {
            n++;
            if (v)
                *v = strtod(line + len + 1, NULL);
        }
        line = nl ? nl + 1 : NULL;
    }
    return n;
}

static double value_of(const char *text, const char *series)
{
    double v = NAN;
    if (lines_of(text, series, &v) != 1)
        return NAN;
    return v;
}

static bool is_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Checks the exposition grammar: comment lines, then name{label="escaped",...} value, and that
 * every sample belongs to a family declared by an earlier # TYPE line, each declared once. */
static bool well_formed(const char *text, char *why, size_t whylen)
{
    char typed[64][128];
    int ntyped = 0;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        if (nl == NULL) {
            snprintf(why, whylen, "missing final newline");
            return false;
        }
        size_t len = (size_t)(nl - line);
        char buf[1024];
        if (len >= sizeof buf)
            return false;
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = nl + 1;
        if (strncmp(buf, "# HELP ", 7) == 0)
            continue;
        if (strncmp(buf, "# TYPE ", 7) == 0) {
            char name[128], type[32];
            if (sscanf(buf + 7, "%127s %31s", name, type) != 2 ||
                (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram"))) {
                snprintf(why, whylen, "bad TYPE line: %s", buf);
                return false;
            }
            for (int i = 0; i < ntyped; i++) {
                if (strcmp(typed[i], name) == 0) {
                    snprintf(why, whylen, "TYPE twice: %s", name);
                    return false;
                }
            }
            snprintf(typed[ntyped++], sizeof typed[0], "%s", name);
            continue;
        }
        const char *p = buf;
        while (is_name_char(*p, p == buf))
            p++;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(p - buf), buf);
        if (*p == '{') {
            p++;
            while (*p != '}') {
                const char *ls = p;
                while (is_name_char(*p, p == ls) && *p != ':')
                    p++;
                if (p == ls || p[0] != '=' || p[1] != '"')
                    goto bad;
                p += 2;
                while (*p && *p != '"') {
                    if (*p == '\\') {
                        if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                            goto bad;
                        p++;
                    }
                    p++;
                }
                if (*p != '"')
                    goto bad;
                p++;
                if (*p == ',')
                    p++;
                else if (*p != '}')
                    goto bad;
            }
            p++;
        }
        if (*p != ' ')
            goto bad;
        p++;
        char *end;
        strtod(p, &end);
        if (end == p || *end != '\0')
            goto bad;
        bool declared = false;
        for (int i = 0; i < ntyped && !declared; i++) {
            size_t tl = strlen(typed[i]);
            if (strncmp(name, typed[i], tl) != 0)
                continue;
            const char *rest = name + tl;
            declared = !*rest || !strcmp(rest, "_bucket") || !strcmp(rest, "_sum") ||
                       !strcmp(rest, "_count");
        }
        if (!declared) {
            snprintf(why, whylen, "sample before its TYPE: %s", buf);
            return false;
        }
        continue;
    bad:
        snprintf(why, whylen, "malformed line: %s", buf);
        return false;
    }
    return true;
}

static void check_well_formed(const char *text)
{
    char why[1200] = "";
    bool ok = well_formed(text, why, sizeof why);
    mk_testing_record(ok, __FILE__, __LINE__, "well_formed(text)", why);
}

static const char *const les[] = {"0.0001", "0.0005", "0.001", "0.005", "0.01",
                                  "0.025",  "0.05",   "0.1",   "0.25",  "0.5",
                                  "1",      "2.5",    "5",     "10",    "+Inf"};
#define NLES (sizeof les / sizeof *les)

static double bucket(const char *text, const char *name, const char *label, const char *le)
{
    char series[256];
    snprintf(series, sizeof series, "%s_bucket{%s,le=\"%s\"}", name, label, le);
    return value_of(text, series);
}

/* Buckets never decrease and +Inf equals _count. */
static bool cumulative(const char *text, const char *name, const char *label)
{
    double prev = 0;
    for (size_t i = 0; i < NLES; i++) {
        double v = bucket(text, name, label, les[i]);
        if (isnan(v) || v < prev)
            return false;
        prev = v;
    }
    char series[256];
    snprintf(series, sizeof series, "%s_count{%s}", name, label);
    return value_of(text, series) == prev;
}

static void test_http_counts_and_histogram(void)
{
    mk_metrics_t *m = mk_metrics_new(2);
    mk_metrics_http(m, 0, MK_STR_LIT("GET"), 200, 0.00005);
    mk_metrics_http(m, 0, MK_STR_LIT("GET"), 200, 0.003);
    mk_metrics_http(m, 1, MK_STR_LIT("GET"), 200, 0.003);
    mk_metrics_http(m, 1, MK_STR_LIT("GET"), 404, 0.7);
    mk_metrics_http(m, 1, MK_STR_LIT("BREW"), 418, 20);
    mk_metrics_http(m, 0, MK_STR_LIT("get"), 200, 0.001);
    mk_metrics_http(m, 0, MK_STR_LIT("DELETE"), 999, 0.25);
    mk_metrics_http(m, 3, MK_STR_LIT("PUT"), 201, 0.01); /* wraps to shard 1 */
    char *t = render(m);
    check_well_formed(t);
    MK_CHECK(strstr(t, "# TYPE http_requests_total counter\n") != NULL);
    MK_CHECK(strstr(t, "# HELP http_requests_total ") != NULL);
    MK_CHECK(strstr(t, "# TYPE http_request_duration_seconds histogram\n") != NULL);
    MK_CHECK(value_of(t, "http_requests_total{method=\"GET\",status=\"200\"}") == 3);
    MK_CHECK(value_of(t, "http_requests_total{method=\"GET\",status=\"404\"}") == 1);
    MK_CHECK(value_of(t, "http_requests_total{method=\"OTHER\",status=\"418\"}") == 1);
    MK_CHECK(value_of(t, "http_requests_total{method=\"OTHER\",status=\"200\"}") == 1);
    MK_CHECK(value_of(t, "http_requests_total{method=\"DELETE\",status=\"0\"}") == 1);
    MK_CHECK(value_of(t, "http_requests_total{method=\"PUT\",status=\"201\"}") == 1);
    MK_CHECK_INT(lines_of(t, "http_requests_total{method=\"POST\",status=\"200\"}", NULL), 0);

    const char *name = "http_request_duration_seconds", *get = "method=\"GET\"";
    MK_CHECK(bucket(t, name, get, "0.0001") == 1);
    MK_CHECK(bucket(t, name, get, "0.001") == 1);
    MK_CHECK(bucket(t, name, get, "0.005") == 3);
    MK_CHECK(bucket(t, name, get, "0.5") == 3);
    MK_CHECK(bucket(t, name, get, "1") == 4);
    MK_CHECK(bucket(t, name, get, "+Inf") == 4);
    MK_CHECK(cumulative(t, name, get));
    MK_CHECK(fabs(value_of(t, "http_request_duration_seconds_sum{method=\"GET\"}") - 0.70605) <
             1e-9);
    /* 20 s is past the last bound: only +Inf holds it. */
    MK_CHECK(bucket(t, name, "method=\"OTHER\"", "0.001") == 1);
    MK_CHECK(bucket(t, name, "method=\"OTHER\"", "10") == 1);
    MK_CHECK(bucket(t, name, "method=\"OTHER\"", "+Inf") == 2);
    MK_CHECK(cumulative(t, name, "method=\"OTHER\""));
    /* A boundary value falls in its own bucket (le is "less than or equal"). */
    MK_CHECK(bucket(t, name, "method=\"DELETE\"", "0.1") == 0);
    MK_CHECK(bucket(t, name, "method=\"DELETE\"", "0.25") == 1);
    MK_CHECK_INT(lines_of(t, "http_request_duration_seconds_count{method=\"POST\"}", NULL), 0);
    free(t);

    mk_buf_t small;
    mk_buf_init(&small, 64);
    MK_CHECK_INT(mk_metrics_render(m, &small), MK_ETOOBIG);
    mk_buf_free(&small);
    mk_metrics_free(m);
    mk_metrics_free(NULL);
    MK_CHECK(mk_metrics_new(0) == NULL);
}

static void test_protocols(void)
{
    mk_metrics_t *m = mk_metrics_new(2);
    mk_metrics_protocol(m, 0, "graphql", true);
    mk_metrics_protocol(m, 1, "graphql", true);
    mk_metrics_protocol(m, 1, "graphql", false);
    mk_metrics_protocol(m, 0, NULL, true);
    mk_metrics_protocol(m, 0, "carrier-pigeon", false); /* unknown: counted as http */
    char *t = render(m);
    check_well_formed(t);
    MK_CHECK(strstr(t, "# TYPE mockarty_protocol_requests_total counter\n") != NULL);
    const char *g = "mockarty_protocol_requests_total{protocol=\"graphql\",outcome=\"matched\"}";
    MK_CHECK(value_of(t, g) == 2);
    MK_CHECK(value_of(t, "mockarty_protocol_requests_total{protocol=\"graphql\",outcome=\""
                         "unmatched\"}") == 1);
    MK_CHECK(value_of(t, "mockarty_protocol_requests_total{protocol=\"http\",outcome=\""
                         "matched\"}") == 1);
    MK_CHECK(value_of(t, "mockarty_protocol_requests_total{protocol=\"http\",outcome=\""
                         "unmatched\"}") == 1);
    MK_CHECK_INT(lines_of(t, "mockarty_protocol_requests_total{protocol=\"soap\"", NULL), 0);
    free(t);
    mk_metrics_free(m);
}

static void test_gauges_counters_db(void)
{
    mk_metrics_t *m = mk_metrics_new(1);
    const char *help = "Mocks per namespace.";
    mk_metrics_gauge_set(m, "mockarty_mocks", help, "namespace", "a", 3);
    mk_metrics_gauge_set(m, "mockarty_mocks", help, "namespace", "b", 1);
    mk_metrics_gauge_set(m, "mockarty_mocks", help, "namespace", "a", 5);
    mk_metrics_gauge_set(m, "mockarty_mocks", help, "namespace", "q\"u\\o\nte", 2);
    mk_metrics_gauge_set(m, "mockarty_mocks", help, "ns", "c", 9); /* other label: ignored */
    mk_metrics_gauge_set(m, "mockarty_journal_bytes", "Journal size.\nIn bytes \\ total.", NULL,
                         "ignored", 1024);
    mk_metrics_gauge_set(m, "mockarty_journal_bytes", NULL, NULL, NULL, 2048);
    mk_metrics_gauge_set(m, "bad-name", "x", NULL, NULL, 1);
    mk_metrics_gauge_set(m, "http_requests_total", "x", NULL, NULL, 1);
    mk_metrics_gauge_set(m, "mockarty_x", "x", "0bad", "v", 1);
    mk_metrics_counter_add(m, "mockarty_reloads_total", "Reloads.", 1);
    mk_metrics_counter_add(m, "mockarty_reloads_total", "Reloads.", 2.5);
    mk_metrics_counter_add(m, "mockarty_reloads_total", "Reloads.", -10);
    mk_metrics_counter_add(m, "mockarty_mocks", "clash with a gauge", 1);
    mk_metrics_db(m, "select", 0.002);
    mk_metrics_db(m, "select", 0.02);
    mk_metrics_db(m, "insert \"x\"", 0.3);

    char *t = render(m);
    check_well_formed(t);
    MK_CHECK(strstr(t, "# TYPE mockarty_mocks gauge\n") != NULL);
    MK_CHECK(strstr(t, "# HELP mockarty_mocks Mocks per namespace.\n") != NULL);
    MK_CHECK(value_of(t, "mockarty_mocks{namespace=\"a\"}") == 5);
    MK_CHECK(value_of(t, "mockarty_mocks{namespace=\"b\"}") == 1);
    MK_CHECK(value_of(t, "mockarty_mocks{namespace=\"q\\\"u\\\\o\\nte\"}") == 2);
    MK_CHECK_INT(lines_of(t, "mockarty_mocks{ns=\"c\"}", NULL), 0);
    MK_CHECK(value_of(t, "mockarty_journal_bytes") == 2048);
    MK_CHECK(strstr(t, "# HELP mockarty_journal_bytes Journal size.\\nIn bytes \\\\ total.\n") !=
             NULL);
    MK_CHECK(strstr(t, "bad-name") == NULL);
    MK_CHECK(strstr(t, "mockarty_x") == NULL);
    MK_CHECK(strstr(t, "# TYPE mockarty_reloads_total counter\n") != NULL);
    MK_CHECK(value_of(t, "mockarty_reloads_total") == 3.5);
    MK_CHECK(strstr(t, "# TYPE db_query_duration_seconds histogram\n") != NULL);
    const char *db = "db_query_duration_seconds", *sel = "operation=\"select\"";
    MK_CHECK(bucket(t, db, sel, "0.001") == 0);
    MK_CHECK(bucket(t, db, sel, "0.005") == 1);
    MK_CHECK(bucket(t, db, sel, "0.025") == 2);
    MK_CHECK(cumulative(t, db, sel));
    MK_CHECK(fabs(value_of(t, "db_query_duration_seconds_sum{operation=\"select\"}") - 0.022) <
             1e-12);
    MK_CHECK(value_of(t, "db_query_duration_seconds_count{operation=\"insert \\\"x\\\"\"}") == 1);
    free(t);

    mk_metrics_gauge_clear(m, "mockarty_mocks");
    mk_metrics_gauge_clear(m, "mockarty_reloads_total");           /* a counter: not cleared */
    mk_metrics_gauge_set(m, "mockarty_mocks", help, "ns", "c", 9); /* label may change now */
    t = render(m);
    check_well_formed(t);
    MK_CHECK_INT(lines_of(t, "mockarty_mocks{namespace=\"a\"}", NULL), 0);
    MK_CHECK(value_of(t, "mockarty_mocks{ns=\"c\"}") == 9);
    MK_CHECK(value_of(t, "mockarty_journal_bytes") == 2048);
    MK_CHECK(value_of(t, "mockarty_reloads_total") == 3.5);
    free(t);
    mk_metrics_free(m);
}

#define PER_WRITER 200000

typedef struct writer_arg {
    mk_metrics_t *m;
    unsigned shard;
} writer_arg_t;

static void *writer_main(void *p)
{
    writer_arg_t *a = p;
    for (int i = 0; i < PER_WRITER; i++)
        mk_metrics_http(a->m, a->shard, MK_STR_LIT("GET"), 200, i % 2 ? 0.002 : 0.2);
    return NULL;
}

static void test_concurrent_writers_and_render(void)
{
    mk_metrics_t *m = mk_metrics_new(2);
    writer_arg_t args[2] = {{m, 0}, {m, 1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, writer_main, &args[i]);
    double prev = 0;
    bool monotonic = true, consistent = true;
    int renders = 0;
    for (; renders < 200; renders++) {
        char *text = render(m);
        double v = 0;
        if (lines_of(text, "http_requests_total{method=\"GET\",status=\"200\"}", &v) == 1) {
            monotonic &= v >= prev && v <= 2 * PER_WRITER;
            prev = v;
            consistent &= cumulative(text, "http_request_duration_seconds", "method=\"GET\"");
        }
        free(text);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    MK_CHECK(monotonic);
    MK_CHECK(consistent);

    char *text = render(m);
    check_well_formed(text);
    MK_CHECK(value_of(text, "http_requests_total{method=\"GET\",status=\"200\"}") ==
             2 * PER_WRITER);
    const char *name = "http_request_duration_seconds", *get = "method=\"GET\"";
    MK_CHECK(bucket(text, name, get, "0.005") == PER_WRITER);
    MK_CHECK(bucket(text, name, get, "0.25") == 2 * PER_WRITER);
    MK_CHECK(fabs(value_of(text, "http_request_duration_seconds_sum{method=\"GET\"}") -
                  PER_WRITER * (0.002 + 0.2)) < 1e-6);
    free(text);
    mk_metrics_free(m);
}

int main(void)
{
    MK_RUN(test_http_counts_and_histogram);
    MK_RUN(test_protocols);
    MK_RUN(test_gauges_counters_db);
    MK_RUN(test_concurrent_writers_and_render);
    return mk_testing_done();
}
