/* apitest: parsing and export, variables, auth and bodies on the wire, every pm API the sandbox
 * offers, the sandbox limits inside a run, redirects and timeouts, progress, and the reports;
 * against a small HTTP server on a loopback socket that echoes what it received. */
#include "apitest/apitest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apitest/internal.h"
#include "testing/testing.h"

static int srv_fd, srv_port;

static int read_request(int fd, char *buf, size_t cap, char **body)
{
    size_t len = 0;
    char *end = NULL;
    while (!end && len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end)
        return -1;
    size_t clen = 0;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl)
        clen = strtoul(cl + 17, NULL, 10);
    size_t have = len - (size_t)(end + 4 - buf);
    while (have < clen && len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        have += (size_t)n;
        buf[len] = '\0';
    }
    *body = end + 4;
    return 0;
}

static void reply(int fd, int status, const char *extra, const char *type, const char *body)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", status,
                     type, strlen(body), extra);
    if (write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0)
        return;
}

/* One connection, one request: /echo...: the request as JSON; /token; /status/N; /redirect;
 * /slow; /xml. */
static void *handle(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(1 << 16);
    char *body;
    if (read_request(fd, buf, 1 << 16, &body) == 0) {
        char method[16] = "", target[1024] = "";
        sscanf(buf, "%15s %1023s", method, target);
        if (strcmp(target, "/token") == 0) {
            reply(fd, 200, "Set-Cookie: sid=s-1; Path=/\r\n", "application/json",
                  "{\"token\":\"abc123\",\"user\":{\"id\":7,\"name\":\"Ann\"},\"items\":[1,2,3]}");
        } else if (strncmp(target, "/status/", 8) == 0) {
            reply(fd, atoi(target + 8), "", "text/plain", "status");
        } else if (strcmp(target, "/redirect") == 0) {
            reply(fd, 302, "Location: /echo/redirected\r\n", "text/plain", "");
        } else if (strcmp(target, "/slow") == 0) {
            sleep(2);
            reply(fd, 200, "", "text/plain", "late");
        } else if (strcmp(target, "/xml") == 0) {
            reply(fd, 200, "", "application/xml", "<r><a x=\"1\">t</a><b>1</b><b>2</b></r>");
        } else {
            json_t *h = json_object();
            char *line = strstr(buf, "\r\n") + 2;
            while (line < body - 2) {
                char *eol = strstr(line, "\r\n"), *colon = memchr(line, ':', (size_t)(eol - line));
                if (colon) {
                    char name[128];
                    size_t nl = (size_t)(colon - line) < 127 ? (size_t)(colon - line) : 127;
                    for (size_t i = 0; i < nl; i++)
                        name[i] = (char)(line[i] >= 'A' && line[i] <= 'Z' ? line[i] + 32 : line[i]);
                    name[nl] = '\0';
                    const char *v = colon + 1;
                    while (*v == ' ')
                        v++;
                    json_object_set_new(h, name, json_stringn(v, (size_t)(eol - v)));
                }
                line = eol + 2;
            }
            json_t *doc = json_pack("{s:s, s:s, s:o, s:s}", "method", method, "target", target,
                                    "headers", h, "body", body);
            char *text = json_dumps(doc, JSON_COMPACT);
            reply(fd, 200, "X-Echo: yes\r\n", "application/json", text);
            free(text);
            json_decref(doc);
        }
    }
    close(fd);
    free(buf);
    return NULL;
}

/* Accepts until a connection asks for /stop; each connection gets its own thread, so a slow
 * answer holds up nobody else. */
static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(srv_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        char peek[32] = "";
        if (recv(fd, peek, sizeof peek - 1, MSG_PEEK) > 0 && strncmp(peek, "GET /stop ", 10) == 0) {
            close(fd);
            return NULL;
        }
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, handle, (void *)(intptr_t)fd) != 0)
            close(fd);
        pthread_attr_destroy(&at);
    }
}

static char base[64];

static mk_apitest_collection_t *load(const char *text)
{
    mk_apitest_collection_t *c = NULL;
    mk_err_t err = {0};
    if (mk_apitest_collection_load(text, strlen(text), &c, &err) < 0)
        fprintf(stderr, "load: %s\n", err.msg);
    return c;
}

/* Runs text with {"base": base} in the environment; returns the TestRunResult. */
static json_t *run_text(const char *text, mk_apitest_options_t *o)
{
    mk_apitest_collection_t *c = load(text);
    if (!c)
        return NULL;
    json_t *env = json_pack("{s:s, s:[{s:s, s:s}]}", "name", "test-env", "values", "key", "base",
                            "value", base);
    mk_apitest_options_t def = {0};
    if (!o)
        o = &def;
    if (!o->environment)
        o->environment = env;
    json_t *res = NULL;
    mk_err_t err = {0};
    if (mk_apitest_run(c, o, &res, &err) < 0)
        fprintf(stderr, "run: %s\n", err.msg);
    mk_apitest_collection_free(c);
    if (o->environment == env)
        o->environment = NULL;
    json_decref(env);
    return res;
}

static const json_t *result_named(const json_t *run, const char *name)
{
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(run, "results"), i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "requestName")), name) == 0)
            return r;
    }
    return NULL;
}

static const json_t *assertion(const json_t *result, const char *name)
{
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(result, "assertions"), i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "name")), name) == 0)
            return a;
    }
    return NULL;
}

static int passed(const json_t *run, const char *req, const char *test)
{
    const json_t *a = assertion(result_named(run, req), test);
    if (!a) {
        fprintf(stderr, "  no assertion '%s' on '%s'\n", test, req);
        return -1;
    }
    if (!json_is_true(json_object_get(a, "passed")))
        fprintf(stderr, "  '%s': %s\n", test, json_string_value(json_object_get(a, "message")));
    return json_is_true(json_object_get(a, "passed"));
}

/* The body the echo server saw, parsed from the response kept in the result. */
static json_t *echoed(const json_t *run, const char *req)
{
    const json_t *r = result_named(run, req);
    const char *body = json_string_value(json_object_get(json_object_get(r, "response"), "body"));
    return body ? json_loads(body, 0, NULL) : NULL;
}

static const char *echoed_header(json_t *echo, const char *name)
{
    return json_string_value(json_object_get(json_object_get(echo, "headers"), name));
}

static void test_parse_errors(void)
{
    struct {
        const char *text, *want;
    } cases[] = {
        {"[]", "expected a JSON object"},
        {"{\"info\":{\"name\":\"x\"},\"item\":[{\"name\":\"a\",\"request\":{\"url\":5}}]}",
         "item[0].request: url: expected a string or an object"},
        {"{\"info\":{\"name\":\"x\"},\"item\":[{\"name\":\"f\",\"item\":[{\"name\":\"a\"}]}]}",
         "item[0].item[0]: neither a request"},
        {"{\"info\":{\"name\":\"x\"},\"item\":[{\"request\":{\"url\":\"u\",\"header\":[1]}}]}",
         "item[0].request.header[0]: expected {key, value}"},
        {"{\"info\":{\"name\":\"x\"},\"event\":[{\"listen\":\"test\",\"script\":{\"exec\":[1]}}]}",
         "collection.event[0].script.exec[0]: expected a string"},
        {"{\"name\":\"old\",\"requests\":[]}", "Collection v1 is not supported"},
        {"{\"info\":{\"name\":\"x\"}", "invalid JSON at line 1"},
        {"{\"info\":{\"name\":\"x\",\"schema\":\"https://schema.getpostman.com/json/collection/"
         "v1.0.0/collection.json\"}}",
         "is not Postman v2.0 or v2.1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mk_apitest_collection_t *c = NULL;
        mk_err_t err = {0};
        MK_CHECK_INT(mk_apitest_collection_load(cases[i].text, strlen(cases[i].text), &c, &err),
                     MK_EINVAL);
        if (!strstr(err.msg, cases[i].want))
            fprintf(stderr, "  case %zu: %s\n", i, err.msg);
        MK_CHECK(strstr(err.msg, cases[i].want) != NULL);
        MK_CHECK(c == NULL);
    }
    /* folders nested past the limit */
    mk_buf_t b;
    mk_buf_init(&b, 0);
    mk_buf_append_str(&b, "{\"info\":{\"name\":\"deep\"},\"item\":[");
    for (int i = 0; i < 40; i++)
        mk_buf_append_str(&b, "{\"name\":\"f\",\"item\":[");
    mk_buf_append_str(&b, "{\"name\":\"r\",\"request\":\"http://x\"}");
    for (int i = 0; i < 40; i++)
        mk_buf_append_str(&b, "]}");
    mk_buf_append_str(&b, "]}");
    mk_apitest_collection_t *c = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_apitest_collection_load(b.data, b.len, &c, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "nested deeper than 32") != NULL);
    mk_buf_free(&b);
}

static const char roundtrip[] =
    "{\"info\":{\"_postman_id\":\"c-1\",\"name\":\"Orders\",\"schema\":"
    "\"https://schema.getpostman.com/json/collection/v2.0.0/collection.json\"},"
    "\"auth\":{\"type\":\"bearer\",\"bearer\":{\"token\":\"{{tok}}\"}},"
    "\"variable\":[{\"key\":\"v\",\"value\":\"1\"}],"
    "\"item\":[{\"name\":\"Users\",\"description\":\"kept\",\"item\":["
    "{\"name\":\"list\",\"request\":\"http://x/users\",\"response\":[{\"name\":\"example\"}]},"
    "{\"name\":\"create\",\"request\":{\"method\":\"POST\",\"url\":{\"raw\":\"http://x/u\","
    "\"host\":[\"x\"],\"path\":[\"u\"]},\"header\":\"A: 1\\nB: two\","
    "\"body\":{\"mode\":\"raw\",\"raw\":\"{}\"}},"
    "\"event\":[{\"listen\":\"test\",\"script\":{\"exec\":[\"pm.test('t', function(){})\"]}}]}]},"
    "{\"name\":\"root\",\"request\":{\"url\":\"http://x/\"},\"protocolProfileBehavior\":"
    "{\"followRedirects\":false}}]}";

static void test_parse_export_roundtrip(void)
{
    mk_apitest_collection_t *c = load(roundtrip);
    MK_CHECK(c != NULL);
    if (!c)
        return;
    MK_CHECK_STR(mk_apitest_collection_name(c), "Orders");
    MK_CHECK_STR(mk_apitest_collection_id(c), "c-1");
    MK_CHECK_INT(mk_apitest_collection_count(c), 3);
    json_t *ex = mk_apitest_collection_export(c);
    /* normalised to v2.1: schema, auth as a list, a URL-string request as an object, the header
     * string as a list; unknown fields (description, response, protocolProfileBehavior) kept */
    MK_CHECK(strstr(json_string_value(json_object_get(json_object_get(ex, "info"), "schema")),
                    "v2.1.0") != NULL);
    json_t *bearer = json_object_get(json_object_get(ex, "auth"), "bearer");
    MK_CHECK(json_is_array(bearer));
    MK_CHECK_STR(json_string_value(json_object_get(json_array_get(bearer, 0), "value")), "{{tok}}");
    json_t *users = json_array_get(json_object_get(ex, "item"), 0);
    MK_CHECK_STR(json_string_value(json_object_get(users, "description")), "kept");
    json_t *list = json_array_get(json_object_get(users, "item"), 0);
    MK_CHECK_STR(json_string_value(json_object_get(json_object_get(list, "request"), "method")),
                 "GET");
    MK_CHECK(json_array_size(json_object_get(list, "response")) == 1);
    json_t *hdr = json_object_get(
        json_object_get(json_array_get(json_object_get(users, "item"), 1), "request"), "header");
    MK_CHECK_INT(json_array_size(hdr), 2);
    MK_CHECK_STR(json_string_value(json_object_get(json_array_get(hdr, 1), "value")), "two");
    /* export -> parse -> export is a fixed point */
    char *text = json_dumps(ex, 0);
    mk_apitest_collection_t *c2 = load(text);
    json_t *ex2 = c2 ? mk_apitest_collection_export(c2) : NULL;
    MK_CHECK(ex2 && json_equal(ex, ex2));
    free(text);
    json_decref(ex);
    json_decref(ex2);
    mk_apitest_collection_free(c2);
    mk_apitest_collection_free(c);
}

static void test_variables(void)
{
    json_t *local = json_pack("{s:s}", "a", "local");
    json_t *env =
        json_pack("{s:s, s:s, s:s, s:i}", "a", "env", "b", "env-b", "nest", "{{b}}!", "num", 5);
    json_t *coll = json_pack("{s:s, s:s}", "b", "coll-b", "c", "coll-c");
    json_t *glob = json_pack("{s:s, s:s}", "c", "glob-c", "d", "glob-d");
    json_t *loop = json_pack("{s:s}", "self", "{{self}}");
    json_t *data = json_object();
    mk_apitest_vars_t v = {local, data, env, coll, glob};
    char *s = mk_apitest_resolve(&v, "{{a}} {{b}} {{c}} {{d}} {{nest}} {{num}} {{missing}} {{");
    MK_CHECK_STR(s, "local env-b coll-c glob-d env-b! 5 {{missing}} {{");
    free(s);
    s = mk_apitest_resolve(&v, "{{$guid}}");
    MK_CHECK(s && strlen(s) == 36 && s[14] == '4');
    free(s);
    s = mk_apitest_resolve(&v, "{{$timestamp}}");
    MK_CHECK(s && atol(s) > 1700000000L);
    free(s);
    mk_apitest_vars_t lv = {loop, data, env, coll, glob};
    s = mk_apitest_resolve(&lv, "x{{self}}y");
    MK_CHECK_STR(s, "x{{self}}y"); /* a cycle stops */
    free(s);
    json_decref(local);
    json_decref(env);
    json_decref(coll);
    json_decref(glob);
    json_decref(loop);
    json_decref(data);
}

static void test_cookie_jar(void)
{
    json_t *jar = json_array();
    mk_apitest_jar_store(jar, "http://a.example.com/x/y", "s=1; HttpOnly");
    mk_apitest_jar_store(jar, "http://a.example.com/x/y", "d=2; Domain=.Example.com; Path=/");
    mk_apitest_jar_store(jar, "http://a.example.com:8080/", "bad");
    char *h = mk_apitest_jar_header(jar, "http://a.example.com:9/x/z?q");
    MK_CHECK_STR(h, "s=1; d=2");
    free(h);
    h = mk_apitest_jar_header(jar, "https://b.example.com/other");
    MK_CHECK_STR(h, "d=2"); /* host-only s stays on a.example.com, and under /x */
    free(h);
    h = mk_apitest_jar_header(jar, "http://a.example.com/xy");
    MK_CHECK_STR(h, "d=2");
    free(h);
    MK_CHECK(mk_apitest_jar_header(jar, "http://example.org/") == NULL);
    mk_apitest_jar_store(jar, "http://a.example.com/x/", "s=3; Path=/x");
    h = mk_apitest_jar_header(jar, "http://a.example.com/x");
    MK_CHECK_STR(h, "d=2; s=3"); /* replaced, not added */
    free(h);
    mk_apitest_jar_store(jar, "http://a.example.com/", "d=; Domain=example.com; Path=/; Max-Age=0");
    h = mk_apitest_jar_header(jar, "http://a.example.com/x");
    MK_CHECK_STR(h, "s=3");
    free(h);
    json_decref(jar);
}

static const char auth_bodies[] =
    "{\"info\":{\"name\":\"Auth\"},"
    "\"auth\":{\"type\":\"bearer\",\"bearer\":[{\"key\":\"token\",\"value\":\"{{tok}}\"}]},"
    "\"variable\":[{\"key\":\"tok\",\"value\":\"T-1\"},{\"key\":\"user\",\"value\":\"ann\"}],"
    "\"item\":["
    "{\"name\":\"inherits bearer\",\"request\":{\"url\":\"{{base}}/echo/a\"}},"
    "{\"name\":\"F\",\"auth\":{\"type\":\"basic\",\"basic\":[{\"key\":\"username\",\"value\":"
    "\"{{user}}\"},{\"key\":\"password\",\"value\":\"p:w\"}]},\"item\":["
    "{\"name\":\"inherits basic\",\"request\":{\"url\":\"{{base}}/echo/b\",\"auth\":{\"type\":"
    "\"inherit\"}}},"
    "{\"name\":\"apikey header\",\"request\":{\"url\":\"{{base}}/echo/c\",\"auth\":{\"type\":"
    "\"apikey\",\"apikey\":[{\"key\":\"key\",\"value\":\"X-Api-Key\"},{\"key\":\"value\","
    "\"value\":\"k1\"}]}}},"
    "{\"name\":\"apikey query\",\"request\":{\"url\":\"{{base}}/echo/d?x=1\",\"auth\":{\"type\":"
    "\"apikey\",\"apikey\":[{\"key\":\"key\",\"value\":\"api key\"},{\"key\":\"value\","
    "\"value\":\"k&2\"},{\"key\":\"in\",\"value\":\"query\"}]}}},"
    "{\"name\":\"noauth\",\"request\":{\"url\":\"{{base}}/echo/e\",\"auth\":{\"type\":\"noauth\"}}}"
    "]},"
    "{\"name\":\"raw json\",\"request\":{\"method\":\"POST\",\"url\":\"{{base}}/echo/f\","
    "\"header\":[{\"key\":\"X-Off\",\"value\":\"1\",\"disabled\":true},{\"key\":\"X-User\","
    "\"value\":\"{{user}}\"}],\"body\":{\"mode\":\"raw\",\"raw\":\"{\\\"u\\\":\\\"{{user}}\\\"}\","
    "\"options\":{\"raw\":{\"language\":\"json\"}}}}},"
    "{\"name\":\"urlencoded\",\"request\":{\"method\":\"POST\",\"url\":\"{{base}}/echo/g\","
    "\"body\":{\"mode\":\"urlencoded\",\"urlencoded\":[{\"key\":\"a b\",\"value\":\"1&2\"},"
    "{\"key\":\"off\",\"value\":\"x\",\"disabled\":true},{\"key\":\"u\",\"value\":\"{{user}}\"}]}}}"
    ","
    "{\"name\":\"formdata\",\"request\":{\"method\":\"PUT\",\"url\":\"{{base}}/echo/h\","
    "\"body\":{\"mode\":\"formdata\",\"formdata\":[{\"key\":\"f1\",\"value\":\"v1\",\"type\":"
    "\"text\"},{\"key\":\"f2\",\"value\":\"{{user}}\"}]}}},"
    "{\"name\":\"graphql\",\"request\":{\"method\":\"POST\",\"url\":\"{{base}}/echo/i\","
    "\"body\":{\"mode\":\"graphql\",\"graphql\":{\"query\":\"{ me { id } }\",\"variables\":"
    "\"{\\\"n\\\": 1}\"}}}},"
    "{\"name\":\"url object\",\"request\":{\"url\":{\"raw\":\"ignored\",\"protocol\":\"http\","
    "\"host\":[\"127\",\"0\",\"0\",\"1\"],\"port\":\"{{port}}\",\"path\":[\"echo\",\":id\"],"
    "\"query\":[{\"key\":\"q\",\"value\":\"1\"},{\"key\":\"off\",\"value\":\"2\",\"disabled\":"
    "true}],\"variable\":[{\"key\":\"id\",\"value\":\"{{user}}\"}]}}},"
    "{\"name\":\"encoded url\",\"request\":{\"url\":\"{{base}}/echo/a b?q={{quoted}}&x=%41\"}},"
    "{\"name\":\"file field\",\"request\":{\"method\":\"POST\",\"url\":\"{{base}}/echo/j\","
    "\"body\":{\"mode\":\"formdata\",\"formdata\":[{\"key\":\"up\",\"type\":\"file\",\"src\":"
    "\"/etc/passwd\"}]}}}"
    "]}";

static void test_auth_and_bodies(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", srv_port);
    json_t *vars = json_pack("{s:s, s:s}", "port", port, "quoted", "\"x y\" <é>");
    mk_apitest_options_t o = {.variables = vars};
    json_t *run = run_text(auth_bodies, &o);
    json_decref(vars);
    MK_CHECK(run != NULL);
    if (!run)
        return;
    json_t *e = echoed(run, "inherits bearer");
    MK_CHECK_STR(echoed_header(e, "authorization"), "Bearer T-1");
    MK_CHECK_STR(echoed_header(e, "accept"), "*/*");
    json_decref(e);
    e = echoed(run, "inherits basic");
    MK_CHECK_STR(echoed_header(e, "authorization"), "Basic YW5uOnA6dw=="); /* ann:p:w */
    json_decref(e);
    e = echoed(run, "apikey header");
    MK_CHECK_STR(echoed_header(e, "x-api-key"), "k1");
    MK_CHECK(echoed_header(e, "authorization") == NULL);
    json_decref(e);
    e = echoed(run, "apikey query");
    MK_CHECK_STR(json_string_value(json_object_get(e, "target")), "/echo/d?x=1&api%20key=k%262");
    json_decref(e);
    e = echoed(run, "noauth");
    MK_CHECK(e && echoed_header(e, "authorization") == NULL);
    json_decref(e);
    e = echoed(run, "raw json");
    MK_CHECK_STR(json_string_value(json_object_get(e, "body")), "{\"u\":\"ann\"}");
    MK_CHECK_STR(echoed_header(e, "content-type"), "application/json");
    MK_CHECK_STR(echoed_header(e, "x-user"), "ann");
    MK_CHECK(echoed_header(e, "x-off") == NULL);
    MK_CHECK_STR(json_string_value(json_object_get(e, "method")), "POST");
    json_decref(e);
    e = echoed(run, "urlencoded");
    MK_CHECK_STR(json_string_value(json_object_get(e, "body")), "a%20b=1%262&u=ann");
    MK_CHECK_STR(echoed_header(e, "content-type"), "application/x-www-form-urlencoded");
    json_decref(e);
    e = echoed(run, "formdata");
    const char *fb = json_string_value(json_object_get(e, "body"));
    MK_CHECK(fb && strstr(fb, "name=\"f1\"\r\n\r\nv1\r\n") && strstr(fb, "name=\"f2\"\r\n\r\nann"));
    MK_CHECK(strncmp(echoed_header(e, "content-type") ? echoed_header(e, "content-type") : "",
                     "multipart/form-data; boundary=", 30) == 0);
    MK_CHECK_STR(json_string_value(json_object_get(e, "method")), "PUT");
    json_decref(e);
    e = echoed(run, "graphql");
    MK_CHECK_STR(json_string_value(json_object_get(e, "body")),
                 "{\"query\":\"{ me { id } }\",\"variables\":{\"n\":1}}");
    json_decref(e);
    e = echoed(run, "url object");
    MK_CHECK_STR(json_string_value(json_object_get(e, "target")), "/echo/ann?q=1");
    json_decref(e);
    e = echoed(run, "encoded url");
    MK_CHECK_STR(json_string_value(json_object_get(e, "target")),
                 "/echo/a%20b?q=%22x%20y%22%20%3C%C3%A9%3E&x=%41");
    json_decref(e);
    const json_t *ff = result_named(run, "file field");
    MK_CHECK_STR(json_string_value(json_object_get(ff, "status")), "error");
    MK_CHECK(strstr(json_string_value(json_object_get(ff, "error")), "file uploads") != NULL);
    MK_CHECK_INT(json_integer_value(json_object_get(run, "totalTests")), 12);
    MK_CHECK_INT(json_integer_value(json_object_get(run, "failedTests")), 1);
    json_decref(run);
}

/* Every pm API: what a script reads, what it writes, what the next request sees. */
static const char pm_api[] =
    "{\"info\":{\"name\":\"PM\",\"_postman_id\":\"pm-1\"},"
    "\"variable\":[{\"key\":\"cv\",\"value\":\"c\"}],"
    "\"event\":[{\"listen\":\"prerequest\",\"script\":{\"exec\":["
    "\"pm.collectionVariables.set('seen', (pm.collectionVariables.get('seen') || 0) + 1);\"]}}],"
    "\"item\":["
    "{\"name\":\"login\",\"event\":["
    "{\"listen\":\"prerequest\",\"script\":{\"exec\":["
    "\"pm.request.headers.add({key: 'X-Pre', value: pm.info.requestName + '-' + "
    "pm.info.eventName});\","
    "\"pm.variables.set('local1', 'L');\","
    "\"pm.globals.set('g1', 'G');\","
    "\"console.log('pre', pm.request.url.toString(), pm.request.method);\"]}},"
    "{\"listen\":\"test\",\"script\":{\"exec\":["
    "\"pm.test('Status code is 200', function () { pm.response.to.have.status(200); });\","
    "\"pm.test('json', function () { var j = pm.response.json(); "
    "pm.expect(j.user.name).to.eql('Ann');"
    " pm.expect(j.items).to.be.an('array').that.includes(2).and.has.lengthOf(3); });\","
    "\"pm.test('text and headers', function () { "
    "pm.expect(pm.response.text()).to.include('abc123');"
    " pm.expect(pm.response.headers.get('content-type')).to.equal('application/json');"
    " pm.response.to.have.header('Set-Cookie'); pm.expect(pm.cookies.get('sid')).to.equal('s-1'); "
    "});\","
    "\"pm.test('status and time', function () { pm.expect(pm.response.code).to.equal(200);"
    " pm.expect(pm.response.status).to.be.a('string'); "
    "pm.expect(pm.response.responseTime).to.be.at.least(0).and.below(10000);"
    " pm.response.to.be.ok; pm.response.to.be.success; pm.response.to.be.json;"
    " pm.response.to.have.jsonBody('user.id', 7); pm.response.to.not.have.jsonBody('nope'); });\","
    "\"pm.test('chai', function () { pm.expect(1).to.be.above(0).and.below(2); "
    "pm.expect(null).to.be.null;"
    " pm.expect(undefined).to.be.undefined; pm.expect('').to.be.empty; pm.expect({}).to.be.empty;"
    " pm.expect(true).to.be.true; pm.expect(false).to.be.false; pm.expect(1).to.be.ok;"
    " pm.expect({a: 1, b: {c: [1]}}).to.have.property('b').that.deep.equals({c: [1]});"
    " pm.expect({a: {b: 2}}).to.have.nested.property('a.b', 2); pm.expect([1, "
    "2]).to.include.members([2]);"
    " pm.expect('abc').to.match(/b/); pm.expect(3).to.be.oneOf([1, 3]); "
    "pm.expect(2).to.be.within(1, 3);"
    " pm.expect(5).to.be.at.most(5); pm.expect({x: 1}).to.not.eql({x: 2}); "
    "pm.expect([1]).to.have.length(1); });\","
    "\"pm.test('vars in test', function () { pm.expect(pm.variables.get('local1')).to.equal('L');"
    " pm.expect(pm.globals.get('g1')).to.equal('G'); "
    "pm.expect(pm.variables.get('cv')).to.equal('c');"
    " pm.expect(pm.collectionVariables.get('seen')).to.equal(1); "
    "pm.expect(pm.environment.name).to.equal('test-env');"
    " pm.expect(pm.environment.has('base')).to.be.true; });\","
    "\"pm.environment.set('token', pm.response.json().token);\","
    "\"pm.environment.set('userId', pm.response.json().user.id);\","
    "\"pm.globals.unset('g1');\","
    "\"tests['legacy tests object'] = responseCode.code === 200 && responseBody.has('Ann');\","
    "\"postman.setEnvironmentVariable('legacy', 'yes');\"]}}],"
    "\"request\":{\"method\":\"POST\",\"url\":\"{{base}}/token\"}},"
    "{\"name\":\"use token\",\"event\":[{\"listen\":\"test\",\"script\":{\"exec\":["
    "\"var e = pm.response.json();\","
    "\"pm.test('token sent', function () { pm.expect(e.headers.authorization).to.equal('Bearer "
    "abc123'); });\","
    "\"pm.test('number var', function () { pm.expect(e.target).to.equal('/echo/users/7'); });\","
    "\"pm.test('pre header', function () { pm.expect(e.headers['x-pre']).to.equal('use "
    "token-prerequest'); });\","
    "\"pm.test('session cookie sent back', function () {"
    " pm.expect(e.headers.cookie).to.equal('sid=s-1'); });\","
    "\"pm.test('globals unset', function () { pm.expect(pm.globals.has('g1')).to.be.false; });\","
    "\"pm.test('legacy var', function () { "
    "pm.expect(pm.environment.get('legacy')).to.equal('yes'); });\","
    "\"pm.test('replaceIn', function () { "
    "pm.expect(pm.variables.replaceIn('{{userId}}-{{cv}}')).to.equal('7-c'); });\","
    "\"pm.test('request object', function () { pm.expect(pm.request.method).to.equal('GET');"
    " pm.expect(pm.request.headers.get('Authorization')).to.equal('Bearer {{token}}'); });\","
    "\"pm.test('deliberately fails', function () { pm.expect(pm.response.code).to.equal(201); "
    "});\","
    "\"pm.test('type error fails', function () { nothing.here; });\","
    "\"pm.test.skip('skipped one', function () {});\"]}},"
    "{\"listen\":\"prerequest\",\"script\":{\"exec\":["
    "\"pm.request.headers.add({key: 'X-Pre', value: pm.info.requestName + '-' + "
    "pm.info.eventName});\"]}}],"
    "\"request\":{\"url\":\"{{base}}/echo/users/"
    "{{userId}}\",\"header\":[{\"key\":\"Authorization\","
    "\"value\":\"Bearer {{token}}\"}]}},"
    "{\"name\":\"skipped request\",\"event\":[{\"listen\":\"prerequest\",\"script\":{\"exec\":"
    "\"pm.execution.skipRequest();\"}}],\"request\":{\"url\":\"{{base}}/status/500\"}},"
    "{\"name\":\"jump\",\"event\":[{\"listen\":\"test\",\"script\":{\"exec\":"
    "\"if (pm.collectionVariables.get('seen') < 6) pm.execution.setNextRequest('jump'); else "
    "postman.setNextRequest('last');\"}}],"
    "\"request\":{\"url\":\"{{base}}/status/204\"}},"
    "{\"name\":\"never\",\"request\":{\"url\":\"{{base}}/status/500\"}},"
    "{\"name\":\"last\",\"event\":[{\"listen\":\"test\",\"script\":{\"exec\":["
    "\"pm.test('xml', function () { var x = xml2Json(pm.response.text()); "
    "pm.expect(x.r.b).to.eql(['1', '2']);"
    " pm.expect(x.r.a._).to.equal('t'); pm.expect(x.r.a.$.x).to.equal('1'); });\","
    "\"pm.test('tv4', function () { pm.expect(tv4.validate({a: 1}, {type: 'object', required: "
    "['a'],"
    " properties: {a: {type: 'integer'}}})).to.be.true; pm.expect(tv4.validate({a: 'x'},"
    " {properties: {a: {type: 'integer'}}})).to.be.false; });\","
    "\"pm.test('es2015 syntax', () => { const a = [1, 2].map(x => x * 2); let s = `n=${a[1]}`;"
    " pm.expect(s).to.equal('n=4'); });\","
    "\"var order = []; pm.sendRequest(pm.environment.get('base') + '/token', function (err, res) {"
    " order.push('callback'); pm.test('sendRequest', function () { pm.expect(err).to.be.null; "
    "pm.expect(res.json().token).to.equal('abc123'); pm.expect(order).to.eql(['script', "
    "'callback']); }); }); order.push('script');\","
    "\"pm.test('async done', function (done) { setTimeout(function () { pm.expect(1).to.equal(1); "
    "done(); }, 10); });\","
    "\"throw new Error('script-level boom');\"]}}],"
    "\"request\":{\"url\":\"{{base}}/xml\"}},"
    "{\"name\":\"modified\",\"event\":[{\"listen\":\"prerequest\",\"script\":{\"exec\":["
    "\"pm.request.url.addQueryParams('via=pre'); pm.request.url.addQueryParams([{key: 'b', value: "
    "'2'}]);\","
    "\"pm.request.url.removeQueryParams('drop'); pm.request.method = 'PUT';\","
    "\"pm.request.headers.upsert({key: 'X-Up', value: 'v2'}); pm.request.body.update('new "
    "body');\"]}},"
    "{\"listen\":\"test\",\"script\":{\"exec\":["
    "\"var e = pm.response.json();\","
    "\"pm.test('request changed by the pre-request script', function () {"
    " pm.expect(e.target).to.equal('/echo/m?via=pre&b=2'); pm.expect(e.method).to.equal('PUT');"
    " pm.expect(e.headers['x-up']).to.equal('v2'); pm.expect(e.body).to.equal('new body'); });\","
    "\"pm.test('jsonSchema on a value', function () { pm.expect(e).to.have.jsonSchema({type: "
    "'object',"
    " required: ['method', 'target']}); pm.response.to.have.jsonSchema({required: ['body']}); "
    "});\"]}}],"
    "\"request\":{\"method\":\"POST\",\"url\":\"{{base}}/echo/m?drop=1\",\"header\":[{\"key\":"
    "\"X-Up\",\"value\":\"v1\"}],\"body\":{\"mode\":\"raw\",\"raw\":\"old\"}}}"
    "]}";

typedef struct progress {
    int starts, assertions, dones, cancel_after;
} progress_t;

static int on_progress(void *ud, const mk_apitest_event_t *ev)
{
    progress_t *p = ud;
    if (ev->type == MK_APITEST_REQUEST_START)
        p->starts++;
    if (ev->type == MK_APITEST_ASSERTION)
        p->assertions += ev->assertion != NULL;
    if (ev->type == MK_APITEST_REQUEST_DONE)
        p->dones += ev->result != NULL;
    return p->cancel_after && p->dones >= p->cancel_after;
}

static void test_pm_api(void)
{
    progress_t p = {0};
    mk_apitest_options_t o = {.progress = on_progress, .progress_ud = &p, .run_id = "run-7"};
    json_t *run = run_text(pm_api, &o);
    MK_CHECK(run != NULL);
    if (!run)
        return;
    const char *login_tests[] = {"Status code is 200", "json", "text and headers",
                                 "status and time",    "chai", "vars in test",
                                 "legacy tests object"};
    for (size_t i = 0; i < sizeof login_tests / sizeof *login_tests; i++)
        MK_CHECK_INT(passed(run, "login", login_tests[i]), 1);
    const char *use_tests[] = {
        "token sent", "number var", "pre header",     "globals unset",
        "legacy var", "replaceIn",  "request object", "session cookie sent back"};
    for (size_t i = 0; i < sizeof use_tests / sizeof *use_tests; i++)
        MK_CHECK_INT(passed(run, "use token", use_tests[i]), 1);
    const json_t *use = result_named(run, "use token");
    const json_t *bad = assertion(use, "deliberately fails");
    MK_CHECK(bad && !json_is_true(json_object_get(bad, "passed")));
    MK_CHECK_STR(json_string_value(json_object_get(bad, "expected")), "201");
    MK_CHECK_STR(json_string_value(json_object_get(bad, "actual")), "200");
    MK_CHECK_STR(json_string_value(json_object_get(bad, "message")),
                 "AssertionError: expected 200 to equal 201");
    const json_t *te = assertion(use, "type error fails");
    MK_CHECK(te && strstr(json_string_value(json_object_get(te, "message")), "ReferenceError"));
    MK_CHECK(json_is_true(json_object_get(assertion(use, "skipped one"), "skipped")));
    MK_CHECK_STR(json_string_value(json_object_get(use, "status")), "failed");
    MK_CHECK_STR(json_string_value(json_object_get(result_named(run, "login"), "status")),
                 "passed");
    const json_t *console = json_object_get(result_named(run, "login"), "console");
    MK_CHECK_STR(json_string_value(json_object_get(json_array_get(console, 0), "message")),
                 "pre {{base}}/token POST");
    MK_CHECK_STR(json_string_value(json_object_get(result_named(run, "skipped request"), "status")),
                 "skipped");
    /* setNextRequest: jump ran until the collection pre-request counter reached 6, never was
     * jumped over, last ran */
    size_t jumps = 0, i;
    const json_t *r;
    json_array_foreach(json_object_get(run, "results"), i, r)
    {
        jumps += strcmp(json_string_value(json_object_get(r, "requestName")), "jump") == 0;
    }
    MK_CHECK_INT(jumps, 3);
    MK_CHECK(result_named(run, "never") == NULL);
    const char *last_tests[] = {"xml", "tv4", "es2015 syntax", "sendRequest", "async done"};
    for (size_t k = 0; k < sizeof last_tests / sizeof *last_tests; k++)
        MK_CHECK_INT(passed(run, "last", last_tests[k]), 1);
    MK_CHECK_INT(passed(run, "modified", "request changed by the pre-request script"), 1);
    MK_CHECK_INT(passed(run, "modified", "jsonSchema on a value"), 1);
    const json_t *last = result_named(run, "last");
    MK_CHECK_STR(json_string_value(json_object_get(last, "status")), "error");
    MK_CHECK(strstr(json_string_value(json_object_get(last, "error")), "script-level boom"));
    json_t *vars = json_object_get(json_object_get(run, "metadata"), "variables");
    MK_CHECK_STR(json_string_value(json_object_get(json_object_get(vars, "environment"), "token")),
                 "abc123");
    MK_CHECK_INT(
        json_integer_value(json_object_get(json_object_get(vars, "collectionVariables"), "seen")),
        8);
    MK_CHECK_STR(json_string_value(json_object_get(run, "status")), "failed");
    MK_CHECK_STR(json_string_value(json_object_get(run, "collectionId")), "pm-1");
    MK_CHECK_STR(json_string_value(json_object_get(run, "id")), "run-7");
    size_t n = json_array_size(json_object_get(run, "results"));
    MK_CHECK_INT(p.starts, n);
    MK_CHECK_INT(p.dones, n);
    json_t *asserts = json_object_get(json_object_get(run, "metadata"), "assertions");
    MK_CHECK_INT(p.assertions, json_integer_value(json_object_get(asserts, "total")));

    /* the JUnit report: one suite (no folders), one case per execution, failures explained */
    char *xml = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_apitest_report_junit(run, &xml, &err), 0);
    MK_CHECK(xml && strstr(xml, "<testsuite id=\"0\" name=\"PM\""));
    MK_CHECK(xml && strstr(xml, "expected: 201\n  actual: 200"));
    MK_CHECK(xml && strstr(xml, "<error type=\"Error\" message=\"test script (request): Error: "
                                "script-level boom\""));
    free(xml);
    char *html = NULL;
    MK_CHECK_INT(mk_apitest_report_html(run, &html, &err), 0);
    MK_CHECK(html && strstr(html, "<title>PM - test run</title>") && !strstr(html, "<script"));
    MK_CHECK(html && strstr(html, "expected 200 to equal 201"));
    free(html);
    json_decref(run);

    /* cancel from the progress callback */
    progress_t pc = {.cancel_after = 1};
    mk_apitest_options_t oc = {.progress = on_progress, .progress_ud = &pc, .collection_id = "c9"};
    run = run_text(pm_api, &oc);
    MK_CHECK_STR(json_string_value(json_object_get(run, "collectionId")), "c9");
    MK_CHECK_STR(json_string_value(json_object_get(run, "status")), "cancelled");
    MK_CHECK_INT(json_array_size(json_object_get(run, "results")), 1);
    json_decref(run);
}

static const char limits[] =
    "{\"info\":{\"name\":\"Limits\"},\"item\":["
    "{\"name\":\"loop\",\"event\":[{\"listen\":\"test\",\"script\":{\"exec\":"
    "\"pm.test('before', function () {}); for (;;) {}\"}}],\"request\":\"{{base}}/echo/1\"},"
    "{\"name\":\"bomb\",\"event\":[{\"listen\":\"test\",\"script\":{\"exec\":"
    "\"var a = [], s = 'x'; for (var i = 0; i < 16; i++) s += s; for (;;) a.push(s + "
    "a.length);\"}}],"
    "\"request\":\"{{base}}/echo/2\"},"
    "{\"name\":\"syntax\",\"event\":[{\"listen\":\"test\",\"script\":{\"exec\":"
    "\"pm.test('x', function () {\"}}],\"request\":\"{{base}}/echo/3\"},"
    "{\"name\":\"module\",\"event\":[{\"listen\":\"test\",\"script\":{\"exec\":"
    "\"var _ = require('lodash');\"}}],\"request\":\"{{base}}/echo/4\"},"
    "{\"name\":\"after\",\"event\":[{\"listen\":\"test\",\"script\":{\"exec\":"
    "\"pm.test('still runs', function () { pm.response.to.have.status(200); });\"}}],"
    "\"request\":\"{{base}}/echo/5\"},"
    "{\"name\":\"slow\",\"request\":\"{{base}}/slow\"},"
    "{\"name\":\"redirect followed\",\"request\":\"{{base}}/redirect\"},"
    "{\"name\":\"redirect kept\",\"protocolProfileBehavior\":{\"followRedirects\":false},"
    "\"request\":\"{{base}}/redirect\"},"
    "{\"name\":\"refused\",\"request\":\"http://127.0.0.1:1/\"},"
    "{\"name\":\"undefined variable\",\"request\":\"{{nohost}}/x\"}"
    "]}";

static void test_limits_timeouts_redirects(void)
{
    mk_apitest_options_t o = {
        .script_timeout_ms = 1500, .script_max_heap = (size_t)8 << 20, .request_timeout_ms = 400};
    json_t *run = run_text(limits, &o);
    MK_CHECK(run != NULL);
    if (!run)
        return;
    const json_t *loop = result_named(run, "loop");
    MK_CHECK_STR(json_string_value(json_object_get(loop, "status")), "error");
    MK_CHECK(strstr(json_string_value(json_object_get(loop, "error")),
                    "test script: script did not finish within 1500 ms (time limit)"));
    MK_CHECK(assertion(loop, "test script") != NULL);
    const json_t *bomb = result_named(run, "bomb");
    printf("  bomb: %s\n", json_string_value(json_object_get(bomb, "error")));
    MK_CHECK(strstr(json_string_value(json_object_get(bomb, "error")),
                    "more memory than allowed (8192 KiB limit)"));
    const json_t *syn = result_named(run, "syntax");
    MK_CHECK(strstr(json_string_value(json_object_get(syn, "error")), "SyntaxError"));
    const json_t *mod = result_named(run, "module");
    MK_CHECK(strstr(json_string_value(json_object_get(mod, "error")),
                    "require('lodash') is not available"));
    MK_CHECK_INT(passed(run, "after", "still runs"), 1);
    const json_t *slow = result_named(run, "slow");
    MK_CHECK_STR(json_string_value(json_object_get(slow, "status")), "error");
    MK_CHECK(strstr(json_string_value(json_object_get(slow, "error")), "imeout") ||
             strstr(json_string_value(json_object_get(slow, "error")), "timed out"));
    const json_t *rf = json_object_get(result_named(run, "redirect followed"), "response");
    MK_CHECK_INT(json_integer_value(json_object_get(rf, "status")), 200);
    const json_t *rk = json_object_get(result_named(run, "redirect kept"), "response");
    MK_CHECK_INT(json_integer_value(json_object_get(rk, "status")), 302);
    MK_CHECK_STR(json_string_value(json_object_get(rk, "statusText")), "X");
    MK_CHECK_STR(json_string_value(json_object_get(result_named(run, "refused"), "status")),
                 "error");
    const json_t *uv = result_named(run, "undefined variable");
    MK_CHECK(strstr(json_string_value(json_object_get(uv, "error")),
                    "uses the variable {{nohost}}, which no scope defines"));
    json_decref(run);

    /* bail stops at the first failing request */
    mk_apitest_options_t ob = {.bail = 1, .script_timeout_ms = 300};
    run = run_text(limits, &ob);
    MK_CHECK_INT(json_array_size(json_object_get(run, "results")), 1);
    MK_CHECK(
        strstr(json_string_value(json_object_get(json_object_get(run, "metadata"), "stopReason")),
               "bail"));
    json_decref(run);
}

static void test_junit_folders(void)
{
    json_t *run = run_text(auth_bodies, NULL);
    char *xml = NULL;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_apitest_report_junit(run, &xml, &err), 0);
    /* root requests in the collection's suite, the folder's in its own, in order */
    const char *s1 = xml ? strstr(xml, "<testsuite id=\"0\" name=\"Auth\" tests=\"8\"") : NULL;
    const char *s2 = xml ? strstr(xml, "<testsuite id=\"1\" name=\"Auth/F\" tests=\"4\"") : NULL;
    const char *s3 = xml ? strstr(xml, "<testsuite id=\"2\" name=\"Auth\" tests=\"1\"") : NULL;
    MK_CHECK(s1 && s2 && !s3 && s1 < s2);
    MK_CHECK(xml && strstr(xml, "<testcase name=\"apikey header\" classname=\"Auth/F\""));
    free(xml);
    json_t *bad = json_object();
    MK_CHECK_INT(mk_apitest_report_junit(bad, &xml, &err), MK_EINVAL);
    json_decref(bad);
    json_decref(run);
}

static const char data_driven[] =
    "{\"info\":{\"name\":\"Data\"},\"item\":["
    "{\"name\":\"row\",\"event\":[{\"listen\":\"test\",\"script\":{\"exec\":["
    "\"var e = pm.response.json();\","
    "\"pm.test('row ' + pm.iterationData.get('n'), function () {"
    " pm.expect(e.target).to.equal('/echo/' + pm.iterationData.get('n'));"
    " pm.expect(pm.info.iteration).to.equal(pm.iterationData.get('i'));"
    " pm.expect(pm.info.iterationCount).to.equal(3); });\","
    "\"if (pm.iterationData.get('n') === 'b') pm.execution.setNextRequest(null);\"]}}],"
    "\"request\":\"{{base}}/echo/{{n}}\"},"
    "{\"name\":\"after\",\"request\":\"{{base}}/echo/after\"}]}";

/* Iteration data: one pass per row, {{name}} and pm.iterationData from the row, pm.info's
 * iteration; setNextRequest(null) ends only its own iteration. */
static void test_iterations(void)
{
    json_t *data = json_pack("[{s:s, s:i}, {s:s, s:i}, {s:s, s:i}]", "n", "a", "i", 0, "n", "b",
                             "i", 1, "n", "c", "i", 2);
    mk_apitest_options_t o = {.data = data};
    json_t *run = run_text(data_driven, &o);
    json_t *results = json_object_get(run, "results");
    MK_CHECK_INT(json_array_size(results), 5); /* a, after, b, c, after */
    const char *want[] = {"row", "after", "row", "row", "after"};
    for (size_t i = 0; i < 5 && i < json_array_size(results); i++)
        MK_CHECK_STR(json_string_value(json_object_get(json_array_get(results, i), "requestName")),
                     want[i]);
    MK_CHECK_INT(json_integer_value(json_object_get(json_array_get(results, 3), "iteration")), 2);
    MK_CHECK_INT(json_integer_value(json_object_get(run, "failedTests")), 0);
    json_t *asserts = json_object_get(json_object_get(run, "metadata"), "assertions");
    MK_CHECK_INT(json_integer_value(json_object_get(asserts, "passed")), 3);
    json_decref(run);
    /* more iterations than rows: the last row repeats */
    mk_apitest_options_t o2 = {.data = data, .iterations = 4};
    run = run_text(data_driven, &o2);
    MK_CHECK_INT(json_array_size(json_object_get(run, "results")), 7);
    json_decref(run);
    json_decref(data);
}

static void *concurrent_run(void *arg)
{
    json_t **out = arg;
    *out = run_text(pm_api, NULL);
    return NULL;
}

/* Runners run several collections at once, one per thread, each with its own sandbox worker. */
static void test_concurrent_runs(void)
{
    enum { N = 3 };
    pthread_t t[N];
    json_t *res[N] = {0};
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, concurrent_run, &res[i]);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        json_t *a = json_object_get(json_object_get(res[i], "metadata"), "assertions");
        MK_CHECK_INT(json_integer_value(json_object_get(res[i], "totalTests")), 8);
        MK_CHECK_INT(json_integer_value(json_object_get(a, "failed")), 2);
        if (json_integer_value(json_object_get(a, "failed")) != 2) {
            char *dump = json_dumps(json_object_get(res[i], "results"), JSON_COMPACT);
            fprintf(stderr, "  run %d: %.3000s\n", i, dump);
            free(dump);
        }
        MK_CHECK_INT(passed(res[i], "last", "sendRequest"), 1);
        json_decref(res[i]);
    }
}

int main(void)
{
    mk_err_t init_err = {0};
    if (mk_apitest_init(&init_err) < 0) {
        fprintf(stderr, "mk_apitest_init: %s\n", init_err.msg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    srv_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(srv_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(srv_fd, 64) < 0 ||
        getsockname(srv_fd, (struct sockaddr *)&a, &alen) < 0) {
        perror("listen");
        return 1;
    }
    srv_port = ntohs(a.sin_port);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", srv_port);
    pthread_t t;
    pthread_create(&t, NULL, serve, NULL);
    MK_RUN(test_parse_errors);
    MK_RUN(test_parse_export_roundtrip);
    MK_RUN(test_variables);
    MK_RUN(test_cookie_jar);
    MK_RUN(test_auth_and_bodies);
    MK_RUN(test_pm_api);
    MK_RUN(test_limits_timeouts_redirects);
    MK_RUN(test_junit_folders);
    MK_RUN(test_iterations);
    MK_RUN(test_concurrent_runs);
    /* stop the server: a request it answers by returning */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, "GET /stop HTTP/1.1\r\n\r\n", 22) > 0)
        pthread_join(t, NULL);
    close(fd);
    close(srv_fd);
    return mk_testing_done();
}
