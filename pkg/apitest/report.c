/* Reports from a TestRunResult: JUnit XML for CI, and one self-contained HTML page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apitest/internal.h"

/* Text for XML and HTML: the five special characters escaped, and the control characters XML
 * 1.0 forbids dropped (a response body may hold anything). */
static void esc(mk_buf_t *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '&':
            mk_buf_append_str(b, "&amp;");
            break;
        case '<':
            mk_buf_append_str(b, "&lt;");
            break;
        case '>':
            mk_buf_append_str(b, "&gt;");
            break;
        case '"':
            mk_buf_append_str(b, "&quot;");
            break;
        case '\'':
            mk_buf_append_str(b, "&#39;");
            break;
        default:
            if (*p >= 0x20 || *p == '\t' || *p == '\n' || *p == '\r')
                mk_buf_append(b, p, 1);
        }
    }
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static json_int_t num(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static int check_result(const json_t *result, mk_err_t *err)
{
    if (!json_is_object(result) || !json_is_array(json_object_get(result, "results")))
        return mk_err_set(err, MK_EINVAL, "report: expected a TestRunResult with results");
    return 0;
}

static int finish(mk_buf_t *b, char **out, mk_err_t *err)
{
    *out = mk_buf_take(b);
    if (!*out)
        return mk_err_set(err, MK_ENOMEM, "report: out of memory");
    return 0;
}

/* One <testcase>: a <failure> lists every failed assertion with expected and actual. */
static void junit_case(mk_buf_t *b, const json_t *suite_name, const json_t *tr)
{
    mk_buf_append_str(b, "    <testcase name=\"");
    esc(b, str(tr, "requestName"));
    mk_buf_append_str(b, "\" classname=\"");
    esc(b, json_string_value(suite_name));
    mk_buf_appendf(b, "\" time=\"%.3f\">\n", (double)num(tr, "duration") / 1000.0);
    const char *status = str(tr, "status");
    size_t nfail = 0, total = json_array_size(json_object_get(tr, "assertions")), i;
    const json_t *a;
    json_array_foreach(json_object_get(tr, "assertions"), i, a)
    {
        nfail += !json_is_true(json_object_get(a, "passed"));
    }
    if (strcmp(status, "skipped") == 0)
        mk_buf_append_str(b,
                          "      <skipped message=\"skipped by pm.execution.skipRequest()\"/>\n");
    if (strcmp(status, "error") == 0) {
        mk_buf_append_str(b, "      <error type=\"Error\" message=\"");
        esc(b, str(tr, "error"));
        mk_buf_append_str(b, "\">");
        esc(b, str(tr, "error"));
        mk_buf_append_str(b, "</error>\n");
    }
    if (nfail) {
        const json_t *first = NULL;
        json_array_foreach(json_object_get(tr, "assertions"), i, a)
        {
            if (!json_is_true(json_object_get(a, "passed"))) {
                first = a;
                break;
            }
        }
        mk_buf_appendf(b,
                       "      <failure type=\"AssertionError\" message=\"%zu of %zu assertions "
                       "failed: ",
                       nfail, total);
        esc(b, str(first, "name"));
        mk_buf_append_str(b, ": ");
        esc(b, str(first, "message"));
        mk_buf_append_str(b, "\">");
        json_array_foreach(json_object_get(tr, "assertions"), i, a)
        {
            if (json_is_true(json_object_get(a, "passed")))
                continue;
            mk_buf_append_str(b, "\n");
            esc(b, str(a, "name"));
            mk_buf_append_str(b, "\n  message: ");
            esc(b, str(a, "message"));
            if (json_object_get(a, "expected")) {
                mk_buf_append_str(b, "\n  expected: ");
                esc(b, str(a, "expected"));
            }
            if (json_object_get(a, "actual")) {
                mk_buf_append_str(b, "\n  actual: ");
                esc(b, str(a, "actual"));
            }
        }
        mk_buf_append_str(b, "\n      </failure>\n");
    }
    const json_t *console = json_object_get(tr, "console");
    if (json_array_size(console)) {
        mk_buf_append_str(b, "      <system-out>");
        json_t *c;
        json_array_foreach(console, i, c)
        {
            esc(b, str(c, "message"));
            mk_buf_append_str(b, "\n");
        }
        mk_buf_append_str(b, "</system-out>\n");
    }
    mk_buf_append_str(b, "    </testcase>\n");
}

int mk_apitest_report_junit(const json_t *result, char **out, mk_err_t *err)
{
    *out = NULL;
    int rc = check_result(result, err);
    if (rc < 0)
        return rc;
    const json_t *results = json_object_get(result, "results");
    const char *cname = str(result, "collectionName");
    /* suites in order of first appearance; a folder's suite is named "Collection/Folder" */
    json_t *order = json_array(), *suites = json_object();
    size_t i;
    const json_t *tr;
    json_array_foreach(results, i, tr)
    {
        const char *folder = str(tr, "folder");
        if (!json_object_get(suites, folder)) {
            json_object_set_new(suites, folder, json_array());
            json_array_append_new(order, json_string(folder));
        }
        json_array_append(json_object_get(suites, folder), (json_t *)tr);
    }
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_buf_append_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"");
    esc(&b, cname);
    size_t errors = 0, failures = 0, skipped = 0;
    json_array_foreach(results, i, tr)
    {
        const char *st = str(tr, "status");
        errors += strcmp(st, "error") == 0;
        failures += strcmp(st, "failed") == 0;
        skipped += strcmp(st, "skipped") == 0;
    }
    mk_buf_appendf(&b,
                   "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" "
                   "time=\"%.3f\">\n",
                   json_array_size(results), failures, errors, skipped,
                   (double)num(result, "duration") / 1000.0);
    const json_t *f;
    json_array_foreach(order, i, f)
    {
        const json_t *list = json_object_get(suites, json_string_value(f));
        json_t *name = json_string_value(f)[0] ? json_sprintf("%s/%s", cname, json_string_value(f))
                                               : json_string(cname);
        size_t fe = 0, ff = 0, fs = 0, j;
        json_int_t ms = 0;
        json_array_foreach(list, j, tr)
        {
            const char *st = str(tr, "status");
            fe += strcmp(st, "error") == 0;
            ff += strcmp(st, "failed") == 0;
            fs += strcmp(st, "skipped") == 0;
            ms += num(tr, "duration");
        }
        mk_buf_appendf(&b, "  <testsuite id=\"%zu\" name=\"", i);
        esc(&b, json_string_value(name));
        mk_buf_appendf(&b,
                       "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" "
                       "time=\"%.3f\" timestamp=\"",
                       json_array_size(list), ff, fe, fs, (double)ms / 1000.0);
        esc(&b, str(result, "startedAt"));
        mk_buf_append_str(&b, "\">\n");
        json_array_foreach(list, j, tr)
        {
            junit_case(&b, name, tr);
        }
        mk_buf_append_str(&b, "  </testsuite>\n");
        json_decref(name);
    }
    mk_buf_append_str(&b, "</testsuites>\n");
    json_decref(order);
    json_decref(suites);
    return finish(&b, out, err);
}

static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>";

static const char html_style[] =
    "</title>\n<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;background:#fafafa}\n"
    "h1{font-size:1.4em;margin:0 0 .3em}.sum{display:flex;gap:1em;margin:1em 0}\n"
    ".card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em 1em}\n"
    ".card b{display:block;font-size:1.5em}.passed{color:#1a7f37}.failed,.error{color:#cf222e}\n"
    ".skipped{color:#9a6700}details{background:#fff;border:1px solid #ddd;border-radius:6px;"
    "margin:.4em 0;padding:.4em .8em}\nsummary{cursor:pointer}summary .folder{color:#777}\n"
    "table{border-collapse:collapse;width:100%;margin:.4em 0}td,th{border-bottom:1px solid #eee;"
    "padding:.2em .4em;text-align:left;vertical-align:top}\n"
    "pre{background:#f3f3f3;padding:.5em;overflow:auto;max-height:20em;white-space:pre-wrap}\n"
    ".badge{display:inline-block;min-width:4.5em;font-weight:600}\n"
    "</style></head><body>\n";

static void html_kv(mk_buf_t *b, const json_t *obj)
{
    const char *k;
    const json_t *v;
    mk_buf_append_str(b, "<table>");
    json_object_foreach((json_t *)obj, k, v)
    {
        mk_buf_append_str(b, "<tr><th>");
        esc(b, k);
        mk_buf_append_str(b, "</th><td>");
        esc(b, json_string_value(v));
        mk_buf_append_str(b, "</td></tr>");
    }
    mk_buf_append_str(b, "</table>\n");
}

static void html_result(mk_buf_t *b, const json_t *tr)
{
    const char *st = str(tr, "status");
    mk_buf_appendf(b, "<details%s><summary><span class=\"badge %s\">%s</span> ",
                   strcmp(st, "passed") ? " open" : "", st, st);
    if (str(tr, "folder")[0]) {
        mk_buf_append_str(b, "<span class=\"folder\">");
        esc(b, str(tr, "folder"));
        mk_buf_append_str(b, " / </span>");
    }
    esc(b, str(tr, "requestName"));
    const json_t *rq = json_object_get(tr, "request"), *rs = json_object_get(tr, "response");
    mk_buf_appendf(b, " <small>%lld ms", (long long)num(tr, "duration"));
    if (rs)
        mk_buf_appendf(b, ", HTTP %lld", (long long)num(rs, "status"));
    mk_buf_append_str(b, "</small></summary>\n");
    if (str(tr, "error")[0]) {
        mk_buf_append_str(b, "<p class=\"error\">");
        esc(b, str(tr, "error"));
        mk_buf_append_str(b, "</p>\n");
    }
    size_t i;
    const json_t *a;
    if (json_array_size(json_object_get(tr, "assertions"))) {
        mk_buf_append_str(b, "<table><tr><th>assertion</th><th>result</th><th>detail</th></tr>\n");
        json_array_foreach(json_object_get(tr, "assertions"), i, a)
        {
            int ok = json_is_true(json_object_get(a, "passed"));
            int sk = json_is_true(json_object_get(a, "skipped"));
            mk_buf_append_str(b, "<tr><td>");
            esc(b, str(a, "name"));
            mk_buf_appendf(b, "</td><td class=\"%s\">%s</td><td>",
                           sk   ? "skipped"
                           : ok ? "passed"
                                : "failed",
                           sk   ? "skipped"
                           : ok ? "passed"
                                : "failed");
            esc(b, str(a, "message"));
            if (json_object_get(a, "expected")) {
                mk_buf_append_str(b, "<br>expected: <code>");
                esc(b, str(a, "expected"));
                mk_buf_append_str(b, "</code> actual: <code>");
                esc(b, str(a, "actual"));
                mk_buf_append_str(b, "</code>");
            }
            mk_buf_append_str(b, "</td></tr>\n");
        }
        mk_buf_append_str(b, "</table>\n");
    }
    if (rq) {
        mk_buf_append_str(b, "<p><b>");
        esc(b, str(rq, "method"));
        mk_buf_append_str(b, "</b> ");
        esc(b, str(rq, "url"));
        mk_buf_append_str(b, "</p>\n");
        html_kv(b, json_object_get(rq, "headers"));
        if (str(rq, "body")[0]) {
            mk_buf_append_str(b, "<pre>");
            esc(b, str(rq, "body"));
            mk_buf_append_str(b, "</pre>\n");
        }
    }
    if (rs) {
        mk_buf_appendf(b, "<p><b>%lld ", (long long)num(rs, "status"));
        esc(b, str(rs, "statusText"));
        mk_buf_appendf(b, "</b> %lld bytes in %lld ms</p>\n", (long long)num(rs, "size"),
                       (long long)num(rs, "responseTime"));
        html_kv(b, json_object_get(rs, "headers"));
        mk_buf_append_str(b, "<pre>");
        esc(b, str(rs, "body"));
        mk_buf_append_str(b, "</pre>\n");
    }
    const json_t *console = json_object_get(tr, "console");
    if (json_array_size(console)) {
        mk_buf_append_str(b, "<pre>");
        json_array_foreach(console, i, a)
        {
            esc(b, str(a, "message"));
            mk_buf_append_str(b, "\n");
        }
        mk_buf_append_str(b, "</pre>\n");
    }
    mk_buf_append_str(b, "</details>\n");
}

int mk_apitest_report_html(const json_t *result, char **out, mk_err_t *err)
{
    *out = NULL;
    int rc = check_result(result, err);
    if (rc < 0)
        return rc;
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_buf_append_str(&b, html_head);
    esc(&b, str(result, "collectionName"));
    mk_buf_append_str(&b, " - test run");
    mk_buf_append_str(&b, html_style);
    mk_buf_append_str(&b, "<h1>");
    esc(&b, str(result, "collectionName"));
    mk_buf_append_str(&b, "</h1>\n<p>run ");
    esc(&b, str(result, "id"));
    mk_buf_append_str(&b, ", ");
    esc(&b, str(result, "startedAt"));
    mk_buf_append_str(&b, " to ");
    esc(&b, str(result, "completedAt"));
    mk_buf_append_str(&b, ", status <b class=\"");
    esc(&b, str(result, "status"));
    mk_buf_append_str(&b, "\">");
    esc(&b, str(result, "status"));
    mk_buf_append_str(&b, "</b></p>\n<div class=\"sum\">");
    const json_t *asserts = json_object_get(json_object_get(result, "metadata"), "assertions");
    mk_buf_appendf(&b,
                   "<div class=\"card\"><b>%lld</b>requests</div>"
                   "<div class=\"card passed\"><b>%lld</b>passed</div>"
                   "<div class=\"card failed\"><b>%lld</b>failed</div>"
                   "<div class=\"card skipped\"><b>%lld</b>skipped</div>"
                   "<div class=\"card\"><b>%lld / %lld</b>assertions passed</div>"
                   "<div class=\"card\"><b>%lld ms</b>duration</div></div>\n",
                   (long long)num(result, "totalTests"), (long long)num(result, "passedTests"),
                   (long long)num(result, "failedTests"), (long long)num(result, "skippedTests"),
                   (long long)num(asserts, "passed"), (long long)num(asserts, "total"),
                   (long long)num(result, "duration"));
    size_t i;
    const json_t *tr;
    json_array_foreach(json_object_get(result, "results"), i, tr)
    {
        html_result(&b, tr);
    }
    mk_buf_append_str(&b, "</body></html>\n");
    return finish(&b, out, err);
}
