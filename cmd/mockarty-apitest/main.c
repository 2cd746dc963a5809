/* mockarty-apitest: runs a Postman collection from the command line and prints a report, the
 * way `newman run` does. Exit status: 0 every request passed, 1 some failed, 2 bad usage or
 * input. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apitest/apitest.h"

static const char usage[] =
    "usage: mockarty-apitest COLLECTION.json [options]\n"
    "  -e, --environment FILE   Postman environment export (or a JSON object)\n"
    "  -g, --globals FILE       Postman globals export (or a JSON object)\n"
    "  -d, --iteration-data FILE  a JSON list of objects or a CSV file with a header row\n"
    "  -n, --iteration-count N  passes over the collection (default: one per data row)\n"
    "      --var KEY=VALUE      a run variable (repeatable; above every scope)\n"
    "      --base-url URL       shorthand for --var baseUrl=URL\n"
    "  -r, --format FORMAT      json (default), junit or html\n"
    "  -o, --output FILE        write the report there instead of stdout\n"
    "      --timeout-request MS per request (default 30000)\n"
    "      --timeout-script MS  per script event (default 5000)\n"
    "      --no-redirects       do not follow redirects\n"
    "  -k, --insecure           do not verify TLS certificates\n"
    "      --bail               stop at the first failing request\n"
    "      --export             print the collection as normalised Postman v2.1 and exit\n"
    "  -q, --quiet              no progress lines on stderr\n";

static json_t *load_json(const char *path)
{
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc)
        fprintf(stderr, "mockarty-apitest: %s: line %d: %s\n", path, je.line, je.text);
    return doc;
}

/* An unquoted CSV field as Newman casts it: integers and decimals become numbers (quoted fields
 * stay text). */
static json_t *csv_value(const char *s, size_t len, int quoted)
{
    while (!quoted && len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (!quoted && len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (!quoted && len && len < 64) {
        char buf[64];
        memcpy(buf, s, len);
        buf[len] = '\0';
        size_t i = buf[0] == '-', digits = 0, dots = 0;
        for (; i < len && (isdigit((unsigned char)buf[i]) || buf[i] == '.'); i++) {
            digits += buf[i] != '.';
            dots += buf[i] == '.';
        }
        if (i == len && digits && dots == 0)
            return json_integer(strtoll(buf, NULL, 10));
        if (i == len && digits && dots == 1 && buf[len - 1] != '.')
            return json_real(strtod(buf, NULL));
    }
    return json_stringn(s, len);
}

/* A CSV file with a header row as a list of objects (RFC 4180 quoting), as Newman reads -d. */
static json_t *load_csv(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return NULL;
    }
    json_t *rows = json_array(), *header = NULL, *row = json_array();
    char field[65536];
    size_t len = 0;
    int c, quoted = 0, in_quotes = 0;
    for (;;) {
        c = fgetc(f);
        if (in_quotes) {
            if (c == '"') {
                int d = fgetc(f);
                if (d == '"') {
                    if (len < sizeof field - 1)
                        field[len++] = '"';
                    continue;
                }
                in_quotes = 0;
                c = d;
            } else if (c != EOF) {
                if (len < sizeof field - 1)
                    field[len++] = (char)c;
                continue;
            }
        }
        if (c == '"' && len == 0 && !quoted) {
            in_quotes = quoted = 1;
            continue;
        }
        if (c == ',' || c == '\n' || c == EOF) {
            if (len && field[len - 1] == '\r' && !quoted)
                len--;
            if (c != EOF || len || json_array_size(row))
                json_array_append_new(row, csv_value(field, len, quoted));
            len = 0;
            quoted = 0;
            if (c == ',')
                continue;
            if (json_array_size(row)) {
                if (!header) {
                    header = row;
                } else {
                    json_t *obj = json_object();
                    for (size_t i = 0; i < json_array_size(header); i++) {
                        const char *k = json_string_value(json_array_get(header, i));
                        json_t *v = json_array_get(row, i);
                        json_object_set(obj, k, v ? v : json_string(""));
                    }
                    json_array_append_new(rows, obj);
                    json_decref(row);
                }
                row = json_array();
            }
            if (c == EOF)
                break;
            continue;
        }
        if (len < sizeof field - 1)
            field[len++] = (char)c;
    }
    fclose(f);
    json_decref(row);
    json_decref(header);
    return rows;
}

/* JSON when the file parses as JSON, else CSV (Newman decides by content too). */
static json_t *load_data(const char *path)
{
    json_t *doc = json_load_file(path, 0, NULL);
    if (!doc)
        return load_csv(path);
    if (!json_is_array(doc)) {
        fprintf(stderr, "mockarty-apitest: %s: iteration data must be a list of objects\n", path);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

static int on_progress(void *ud, const mk_apitest_event_t *ev)
{
    (void)ud;
    if (ev->type == MK_APITEST_REQUEST_START) {
        fprintf(stderr, "→ %s%s%s\n", ev->folder, ev->folder[0] ? " / " : "", ev->request);
    } else if (ev->type == MK_APITEST_ASSERTION) {
        int ok = json_is_true(json_object_get(ev->assertion, "passed"));
        const char *msg = json_string_value(json_object_get(ev->assertion, "message"));
        fprintf(stderr, "  %s %s%s%s\n", ok ? "✓" : "✗",
                json_string_value(json_object_get(ev->assertion, "name")), ok ? "" : ": ",
                ok || !msg ? "" : msg);
    } else if (ev->type == MK_APITEST_REQUEST_DONE) {
        const json_t *resp = json_object_get(ev->result, "response");
        const char *error = json_string_value(json_object_get(ev->result, "error"));
        if (resp)
            fprintf(stderr, "  %lld %s, %lld ms\n",
                    (long long)json_integer_value(json_object_get(resp, "status")),
                    json_string_value(json_object_get(resp, "statusText")),
                    (long long)json_integer_value(json_object_get(ev->result, "duration")));
        if (error)
            fprintf(stderr, "  error: %s\n", error);
    }
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_VAR = 256, OPT_BASE, OPT_TREQ, OPT_TSCRIPT, OPT_NOREDIR, OPT_BAIL, OPT_EXPORT };
    static const struct option longs[] = {
        {"environment", required_argument, 0, 'e'},
        {"globals", required_argument, 0, 'g'},
        {"iteration-data", required_argument, 0, 'd'},
        {"iteration-count", required_argument, 0, 'n'},
        {"var", required_argument, 0, OPT_VAR},
        {"base-url", required_argument, 0, OPT_BASE},
        {"format", required_argument, 0, 'r'},
        {"output", required_argument, 0, 'o'},
        {"timeout-request", required_argument, 0, OPT_TREQ},
        {"timeout-script", required_argument, 0, OPT_TSCRIPT},
        {"no-redirects", no_argument, 0, OPT_NOREDIR},
        {"insecure", no_argument, 0, 'k'},
        {"bail", no_argument, 0, OPT_BAIL},
        {"export", no_argument, 0, OPT_EXPORT},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    mk_apitest_options_t o = {0};
    const char *env_path = NULL, *globals_path = NULL, *data_path = NULL, *format = "json",
               *output = NULL;
    int export = 0, quiet = 0, rc = 2, c;
    json_t *vars = json_object(), *env = NULL, *globals = NULL, *data = NULL, *result = NULL;
    mk_apitest_collection_t *coll = NULL;
    char *report = NULL;
    while ((c = getopt_long(argc, argv, "e:g:d:n:r:o:kqh", longs, NULL)) != -1) {
        switch (c) {
        case 'e':
            env_path = optarg;
            break;
        case 'g':
            globals_path = optarg;
            break;
        case 'd':
            data_path = optarg;
            break;
        case 'n':
            o.iterations = (size_t)atol(optarg);
            break;
        case OPT_VAR: {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                fprintf(stderr, "mockarty-apitest: --var wants KEY=VALUE, not %s\n", optarg);
                goto out;
            }
            *eq = '\0';
            json_object_set_new(vars, optarg, json_string(eq + 1));
            break;
        }
        case OPT_BASE:
            json_object_set_new(vars, "baseUrl", json_string(optarg));
            break;
        case 'r':
            format = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case OPT_TREQ:
            o.request_timeout_ms = atol(optarg);
            break;
        case OPT_TSCRIPT:
            o.script_timeout_ms = atol(optarg);
            break;
        case OPT_NOREDIR:
            o.no_follow_redirects = 1;
            break;
        case 'k':
            o.insecure = 1;
            break;
        case OPT_BAIL:
            o.bail = 1;
            break;
        case OPT_EXPORT:
            export = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            rc = 0;
            goto out;
        default:
            fputs(usage, stderr);
            goto out;
        }
    }
    if (optind != argc - 1 ||
        (strcmp(format, "json") && strcmp(format, "junit") && strcmp(format, "html"))) {
        fputs(usage, stderr);
        goto out;
    }
    json_t *doc = load_json(argv[optind]);
    if (!doc)
        goto out;
    mk_err_t err = {0};
    if (mk_apitest_init(&err) < 0) {
        fprintf(stderr, "mockarty-apitest: %s\n", err.msg);
        json_decref(doc);
        goto out;
    }
    int prc = mk_apitest_collection_parse(doc, &coll, &err);
    json_decref(doc);
    if (prc < 0) {
        fprintf(stderr, "mockarty-apitest: %s: %s\n", argv[optind], err.msg);
        goto out;
    }
    if (export) {
        json_t *ex = mk_apitest_collection_export(coll);
        report = json_dumps(ex, JSON_INDENT(2));
        json_decref(ex);
    } else {
        if ((env_path && !(env = load_json(env_path))) ||
            (globals_path && !(globals = load_json(globals_path))) ||
            (data_path && !(data = load_data(data_path))))
            goto out;
        o.data = data;
        o.environment = env;
        o.globals = globals;
        o.variables = vars;
        if (!quiet)
            o.progress = on_progress;
        if (mk_apitest_run(coll, &o, &result, &err) < 0) {
            fprintf(stderr, "mockarty-apitest: %s\n", err.msg);
            goto out;
        }
        if (strcmp(format, "junit") == 0)
            prc = mk_apitest_report_junit(result, &report, &err);
        else if (strcmp(format, "html") == 0)
            prc = mk_apitest_report_html(result, &report, &err);
        else
            report = json_dumps(result, JSON_INDENT(2));
        if (prc < 0 || !report) {
            fprintf(stderr, "mockarty-apitest: report: %s\n", err.msg);
            goto out;
        }
    }
    FILE *f = output ? fopen(output, "w") : stdout;
    if (!f) {
        perror(output);
        goto out;
    }
    fputs(report, f);
    if (report[0] && report[strlen(report) - 1] != '\n')
        fputc('\n', f);
    if (f != stdout)
        fclose(f);
    rc = export || strcmp(json_string_value(json_object_get(result, "status")), "completed") == 0
             ? 0
             : 1;
    if (!quiet && result)
        fprintf(stderr, "%lld requests: %lld passed, %lld failed, %lld skipped in %lld ms\n",
                (long long)json_integer_value(json_object_get(result, "totalTests")),
                (long long)json_integer_value(json_object_get(result, "passedTests")),
                (long long)json_integer_value(json_object_get(result, "failedTests")),
                (long long)json_integer_value(json_object_get(result, "skippedTests")),
                (long long)json_integer_value(json_object_get(result, "duration")));
out:
    free(report);
    json_decref(result);
    json_decref(vars);
    json_decref(env);
    json_decref(globals);
    json_decref(data);
    mk_apitest_collection_free(coll);
    return rc;
}
