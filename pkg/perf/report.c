/* The HTML report: one page, inline CSS and SVG drawn here from the result JSON, so it opens
 * offline and can be attached to a ticket as a single file. */
#include "perf/perf.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define W    720
#define H    220
#define PADL 60
#define PADB 30
#define PADT 24

static void esc(mk_buf_t *o, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            mk_buf_append_str(o, "&lt;");
            break;
        case '>':
            mk_buf_append_str(o, "&gt;");
            break;
        case '&':
            mk_buf_append_str(o, "&amp;");
            break;
        case '"':
            mk_buf_append_str(o, "&quot;");
            break;
        default:
            mk_buf_append(o, s, 1);
        }
    }
}

/* A round axis maximum: 1, 2 or 5 times a power of ten at or above v. */
static double nice_max(double v)
{
    if (!(v > 0))
        return 1;
    double p = pow(10, floor(log10(v)));
    for (int i = 0; i < 3; i++) {
        double m = (double[]){1, 2, 5}[i] * p;
        if (m >= v)
            return m;
    }
    return 10 * p;
}

typedef struct series {
    const char *key, *label, *color;
} series_t;

static void axes(mk_buf_t *o, const char *title, const char *unit, double ymax, double xmax,
                 const char *xunit)
{
    mk_buf_appendf(o, "<h3>%s</h3><svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\">", title, W,
                   H, W, H);
    for (int i = 0; i <= 4; i++) {
        double y = PADT + (H - PADT - PADB) * (1 - i / 4.0);
        mk_buf_appendf(o,
                       "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>"
                       "<text x=\"%d\" y=\"%.1f\" class=\"ax\" text-anchor=\"end\">%g%s</text>",
                       PADL, y, W - 10, y, PADL - 4, y + 4, ymax * i / 4, unit);
    }
    for (int i = 0; i <= 5; i++) {
        double x = PADL + (W - PADL - 10) * i / 5.0;
        mk_buf_appendf(o,
                       "<text x=\"%.1f\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">%.3g%s"
                       "</text>",
                       x, H - 8, xmax * i / 5, xunit);
    }
}

static void line_chart(mk_buf_t *o, const json_t *tl, const char *title, const char *unit,
                       const series_t *ss, size_t ns)
{
    double ymax = 0, xmax = 0;
    size_t i;
    json_t *p;
    json_array_foreach(tl, i, p)
    {
        xmax = fmax(xmax, json_number_value(json_object_get(p, "t")));
        for (size_t k = 0; k < ns; k++)
            ymax = fmax(ymax, json_number_value(json_object_get(p, ss[k].key)));
    }
    ymax = nice_max(ymax);
    if (!(xmax > 0))
        xmax = 1;
    axes(o, title, unit, ymax, xmax, "s");
    for (size_t k = 0; k < ns; k++) {
        mk_buf_appendf(o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                       ss[k].color);
        json_array_foreach(tl, i, p)
        {
            double x = PADL + (W - PADL - 10) * json_number_value(json_object_get(p, "t")) / xmax;
            double y = PADT + (H - PADT - PADB) *
                                  (1 - json_number_value(json_object_get(p, ss[k].key)) / ymax);
            mk_buf_appendf(o, "%.1f,%.1f ", x, y);
        }
        mk_buf_appendf(o, "\"/><text x=\"%zu\" y=\"14\" fill=\"%s\" class=\"lg\">%s</text>",
                       (size_t)PADL + 90 * k, ss[k].color, ss[k].label);
    }
    mk_buf_append_str(o, "</svg>");
}

/* Latency histogram: the buckets regrouped into 40 bins on a log scale between min and max. */
static void histogram_chart(mk_buf_t *o, const json_t *h)
{
    enum { BINS = 40 };
    double bins[BINS] = {0};
    json_t *b = json_object_get(h, "b");
    double lo = (double)json_integer_value(json_object_get(h, "min"));
    double hi = (double)json_integer_value(json_object_get(h, "max"));
    if (!json_is_array(b) || json_array_size(b) == 0)
        return;
    if (lo < 1)
        lo = 1;
    if (hi <= lo)
        hi = lo * 1.01;
    double span = log(hi / lo), ymax = 0;
    for (size_t i = 0; i + 1 < json_array_size(b); i += 2) {
        int bk = (int)json_integer_value(json_array_get(b, i));
        double v = (double)mk_hdr_bucket_low(bk);
        int bin = v <= lo ? 0 : (int)(log(v / lo) / span * BINS);
        if (bin >= BINS)
            bin = BINS - 1;
        bins[bin] += (double)json_integer_value(json_array_get(b, i + 1));
    }
    for (int i = 0; i < BINS; i++)
        ymax = fmax(ymax, bins[i]);
    ymax = nice_max(ymax);
    axes(o, "Latency histogram (log scale: min to max)", "", ymax, 1, "");
    double bw = (W - PADL - 10) / (double)BINS;
    for (int i = 0; i < BINS; i++) {
        double bh = (H - PADT - PADB) * bins[i] / ymax;
        double edge = lo * exp(span * i / BINS) / 1000.0;
        mk_buf_appendf(
            o,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4c78a8\">"
            "<title>from %.3f ms: %.0f</title></rect>",
            PADL + i * bw, H - PADB - bh, bw - 1, bh, edge, bins[i]);
    }
    mk_buf_appendf(o, "<text x=\"%d\" y=\"14\" class=\"lg\">%.3f ms .. %.3f ms</text></svg>", PADL,
                   lo / 1000.0, hi / 1000.0);
}

static double num(const json_t *o, const char *a, const char *b)
{
    return json_number_value(json_object_get(json_object_get(o, a), b));
}

static void page_head(mk_buf_t *o, const char *title)
{
    mk_buf_append_str(o, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>");
    esc(o, title);
    mk_buf_append_str(
        o, "</title><style>body{font:14px sans-serif;margin:24px;color:#222}"
           "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px "
           "8px;text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}"
           ".ok{color:#1a7f37}.bad{color:#c62828;font-weight:bold}.grid{stroke:#eee}"
           ".ax{font-size:11px;fill:#666}.lg{font-size:12px}.cols{display:flex;gap:24px}"
           ".cols>div{flex:1;min-width:0}.cols svg{width:100%;height:auto}</style></head><body>");
}

/* One result's sections, from its title to its status codes. */
static void report_body(const json_t *r, mk_buf_t *o)
{
    const json_t *m = json_object_get(r, "metrics");
    const char *name = json_string_value(json_object_get(r, "name"));
    const char *status = json_string_value(json_object_get(r, "status"));
    mk_buf_append_str(o, "<h1>");
    esc(o, name && *name ? name : "Performance test");
    mk_buf_appendf(o, "</h1><p>Status: <b class=\"%s\">",
                   status && !strcmp(status, "completed") ? "ok" : "bad");
    esc(o, status);
    mk_buf_appendf(o, "</b> &middot; executor %s &middot; %.1f s &middot; max %lld VUs</p>",
                   json_string_value(json_object_get(r, "executor")),
                   json_integer_value(json_object_get(r, "duration")) / 1000.0,
                   json_integer_value(json_object_get(r, "vus")));
    mk_buf_append_str(o, "<h2>Summary</h2><table><tr><th>metric</th><th>min</th><th>avg</th>"
                         "<th>med</th><th>p(90)</th><th>p(95)</th><th>p(99)</th><th>max</th>"
                         "</tr>");
    const char *trends[] = {"http_req_duration", "http_req_waiting"};
    for (int i = 0; i < 2; i++) {
        mk_buf_appendf(o, "<tr><td>%s (ms)</td>", trends[i]);
        const char *cols[] = {"min", "avg", "med", "p(90)", "p(95)", "p(99)", "max"};
        for (int k = 0; k < 7; k++)
            mk_buf_appendf(o, "<td>%.3f</td>", num(m, trends[i], cols[k]));
        mk_buf_append_str(o, "</tr>");
    }
    mk_buf_appendf(
        o,
        "</table><table><tr><td>http_reqs</td><td>%lld</td><td>%.1f/s</td></tr>"
        "<tr><td>http_req_failed</td><td>%.2f %%</td><td>%lld</td></tr>"
        "<tr><td>iterations</td><td>%lld</td><td></td></tr>"
        "<tr><td>data_sent / data_received</td><td>%lld B</td><td>%lld B</td></tr>"
        "<tr><td>dropped_iterations</td><td>%lld</td><td></td></tr></table>",
        (long long)num(m, "http_reqs", "count"), num(m, "http_reqs", "rate"),
        100 * num(m, "http_req_failed", "rate"), (long long)num(m, "http_req_failed", "passes"),
        (long long)num(m, "iterations", "count"), (long long)num(m, "data_sent", "count"),
        (long long)num(m, "data_received", "count"),
        (long long)num(m, "dropped_iterations", "count"));
    const json_t *rate = json_object_get(r, "rate");
    if (rate)
        mk_buf_appendf(o,
                       "<p>Arrival rate: target %.1f/s, achieved %.1f/s: <b class=\"%s\">%s</b>"
                       "</p>",
                       num(r, "rate", "target"), num(r, "rate", "achieved"),
                       json_is_true(json_object_get(rate, "kept")) ? "ok" : "bad",
                       json_is_true(json_object_get(rate, "kept")) ? "kept" : "not kept");
    const char *mk;
    json_t *per;
    json_t *th = json_object_get(r, "thresholds");
    if (json_object_size(th)) {
        mk_buf_append_str(o, "<h2>Thresholds</h2><table><tr><th>metric</th><th>threshold</th>"
                             "<th>value</th><th>result</th></tr>");
        json_object_foreach(th, mk, per)
        {
            const char *ex;
            json_t *res;
            json_object_foreach(per, ex, res)
            {
                bool ok = json_is_true(json_object_get(res, "ok"));
                mk_buf_appendf(o, "<tr><td>%s</td><td>", mk);
                esc(o, ex);
                mk_buf_appendf(o, "</td><td>%.4g</td><td class=\"%s\">%s</td></tr>",
                               json_number_value(json_object_get(res, "value")), ok ? "ok" : "bad",
                               ok ? "passed" : "FAILED");
            }
        }
        mk_buf_append_str(o, "</table>");
    }
    const json_t *tl = json_object_get(r, "timeline");
    if (json_array_size(tl)) {
        mk_buf_append_str(o, "<h2>Over time</h2>");
        series_t rps[] = {{"rps", "requests/s", "#4c78a8"}, {"failed", "failed", "#e45756"}};
        line_chart(o, tl, "Throughput", "", rps, 2);
        series_t lat[] = {
            {"p50", "p50", "#54a24b"}, {"p95", "p95", "#f58518"}, {"p99", "p99", "#e45756"}};
        line_chart(o, tl, "Latency percentiles (ms)", "", lat, 3);
        series_t vus[] = {{"vus", "active VUs", "#72b7b2"}};
        line_chart(o, tl, "Virtual users", "", vus, 1);
    }
    const json_t *h = json_object_get(r, "histogram");
    if (h)
        histogram_chart(o, h);
    const json_t *errs = json_object_get(r, "errors");
    if (json_array_size(errs)) {
        mk_buf_append_str(o, "<h2>Errors</h2><table><tr><th>message</th><th>count</th></tr>");
        size_t i;
        json_t *e;
        json_array_foreach(errs, i, e)
        {
            mk_buf_append_str(o, "<tr><td>");
            esc(o, json_string_value(json_object_get(e, "message")));
            mk_buf_appendf(o, "</td><td>%lld</td></tr>",
                           json_integer_value(json_object_get(e, "count")));
        }
        mk_buf_append_str(o, "</table>");
    }
    const json_t *codes = json_object_get(r, "statusCodes");
    if (json_object_size(codes)) {
        mk_buf_append_str(o, "<h2>Status codes</h2><table>");
        json_object_foreach((json_t *)codes, mk, per)
        {
            mk_buf_appendf(o, "<tr><td>%s</td><td>%lld</td></tr>",
                           !strcmp(mk, "0") ? "no response" : mk, json_integer_value(per));
        }
        mk_buf_append_str(o, "</table>");
    }
}

int mk_perf_report_html(const json_t *r, mk_buf_t *o)
{
    const char *name = json_string_value(json_object_get(r, "name"));
    page_head(o, name && *name ? name : "Performance test");
    report_body(r, o);
    return mk_buf_append_str(o, "</body></html>\n");
}

int mk_perf_report_compare_html(const json_t *a, const json_t *b, mk_buf_t *o)
{
    page_head(o, "Performance test comparison");
    mk_buf_append_str(o, "<h1>Comparison</h1><table><tr><th>metric</th><th>");
    esc(o, json_string_value(json_object_get(a, "id")));
    mk_buf_append_str(o, "</th><th>");
    esc(o, json_string_value(json_object_get(b, "id")));
    mk_buf_append_str(o, "</th><th>change</th></tr>");
    static const char *const rows[][3] = {
        {"http_reqs", "count", "http_reqs"},
        {"http_reqs", "rate", "http_reqs/s"},
        {"http_req_duration", "avg", "avg (ms)"},
        {"http_req_duration", "med", "med (ms)"},
        {"http_req_duration", "p(95)", "p(95) (ms)"},
        {"http_req_duration", "p(99)", "p(99) (ms)"},
        {"http_req_duration", "max", "max (ms)"},
        {"http_req_failed", "rate", "http_req_failed"},
    };
    const json_t *ma = json_object_get(a, "metrics"), *mb = json_object_get(b, "metrics");
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        double x = num(ma, rows[i][0], rows[i][1]), y = num(mb, rows[i][0], rows[i][1]);
        mk_buf_appendf(o, "<tr><td>%s</td><td>%.3f</td><td>%.3f</td>", rows[i][2], x, y);
        if (x != 0)
            mk_buf_appendf(o, "<td>%+.1f %%</td></tr>", 100 * (y - x) / x);
        else
            mk_buf_append_str(o, "<td></td></tr>");
    }
    mk_buf_append_str(o, "</table><div class=\"cols\"><div>");
    report_body(a, o);
    mk_buf_append_str(o, "</div><div>");
    report_body(b, o);
    return mk_buf_append_str(o, "</div></div></body></html>\n");
}
