/* Tests for the importers over real-world-shaped files (testdata/): every generated mock must pass
 * the mock validator, and the translation must say what the source says. */
#include "importer/importer.h"
#include "mock/mock.h"
#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", MK_IMPORTER_TESTDATA, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

typedef int (*translate_fn)(json_t *, const mk_import_opts_t *, mk_import_result_t *, mk_err_t *);

/* Parses testdata/name and translates it into r; returns the translator's code. */
static int import_file(const char *name, translate_fn fn, const mk_import_opts_t *o,
                       mk_import_result_t *r, mk_err_t *err)
{
    size_t len;
    char *text = slurp(name, &len);
    json_t *doc;
    mk_import_result_init(r);
    int rc = mk_import_parse(text, len, &doc, err);
    free(text);
    if (rc == 0)
        rc = fn(doc, o, r, err);
    json_decref(doc);
    return rc;
}

/* Every mock must compile as the API would compile it. */
static void check_valid(const mk_import_result_t *r)
{
    size_t i;
    json_t *m;
    json_array_foreach(r->mocks, i, m)
    {
        mk_mock_parse_opts_t po = {.now_ms = 1};
        mk_mock_t *mock = NULL;
        mk_err_t err = {0};
        int rc = mk_mock_parse(m, &po, &mock, &err);
        if (rc != 0) {
            char *d = json_dumps(m, JSON_COMPACT);
            fprintf(stderr, "invalid mock %zu: %s\n  %s\n", i, err.msg, d);
            free(d);
        }
        MK_CHECK_INT(rc, 0);
        mk_mock_unref(mock);
    }
}

static json_t *find(const mk_import_result_t *r, const char *method, const char *route, int status)
{
    size_t i;
    json_t *m;
    json_array_foreach(r->mocks, i, m)
    {
        json_t *http = json_object_get(m, "http");
        json_t *resp = json_object_get(m, "response");
        if (resp == NULL)
            resp = json_array_get(json_object_get(json_object_get(m, "oneOf"), "responses"), 0);
        if (strcmp(json_string_value(json_object_get(http, "httpMethod")), method) == 0 &&
            strcmp(json_string_value(json_object_get(http, "route")), route) == 0 &&
            (status == 0 || json_integer_value(json_object_get(resp, "statusCode")) == status))
            return m;
    }
    return NULL;
}

/* The n-th condition of http[list] of m as "path action value" text. */
static const char *cond(json_t *m, const char *list, size_t n)
{
    static char buf[512];
    json_t *c = json_array_get(json_object_get(json_object_get(m, "http"), list), n);
    if (c == NULL)
        return "(none)";
    char *v = json_object_get(c, "value")
                  ? json_dumps(json_object_get(c, "value"), JSON_COMPACT | JSON_ENCODE_ANY)
                  : NULL;
    snprintf(buf, sizeof buf, "%s %s%s%s", json_string_value(json_object_get(c, "path")),
             json_string_value(json_object_get(c, "assertAction")), v ? " " : "", v ? v : "");
    free(v);
    return buf;
}

static const char *payload_str(json_t *m, const char *path)
{
    static char buf[512];
    json_t *v = json_object_get(json_object_get(m, "response"), "payload");
    char copy[256];
    snprintf(copy, sizeof copy, "%s", path);
    for (char *tok = strtok(copy, "."); v && tok; tok = strtok(NULL, "."))
        v = json_is_array(v) ? json_array_get(v, (size_t)atoi(tok)) : json_object_get(v, tok);
    char *d = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(buf, sizeof buf, "%s", d ? d : "(absent)");
    free(d);
    return buf;
}

static bool noted(json_t *list, const char *item_part, const char *reason_part)
{
    size_t i;
    json_t *n;
    json_array_foreach(list, i, n)
    {
        if (strstr(json_string_value(json_object_get(n, "item")), item_part) &&
            strstr(json_string_value(json_object_get(n, "reason")), reason_part))
            return true;
    }
    return false;
}

static void test_petstore_30_yaml(void)
{
    mk_import_result_t r;
    mk_err_t err = {0};
    json_t *tags = json_pack("[s]", "imported");
    mk_import_opts_t o = {.id_seed = "shop", .tags = tags, .chain_id = "c1"};
    MK_CHECK_INT(import_file("petstore.yaml", mk_import_openapi, &o, &r, &err), 0);
    MK_CHECK_INT(json_array_size(r.errors), 0);
    MK_CHECK_INT(json_array_size(r.mocks), 9);
    MK_CHECK_INT(json_array_size(r.skipped), 2); /* the two default responses beside codes */
    MK_CHECK(noted(r.skipped, "GET /pets default", "default response"));
    check_valid(&r);

    json_t *list = find(&r, "GET", "/pets", 200);
    MK_CHECK(list != NULL);
    MK_CHECK_STR(payload_str(list, "0.id"), "\"$.fake.IntBetween(1,99999)\"");
    MK_CHECK_STR(payload_str(list, "0.status"), "\"available\"");
    MK_CHECK_STR(payload_str(list, "0.owner.email"), "\"$.fake.Email\"");
    MK_CHECK_STR(payload_str(list, "0.owner.since"), "\"$.fake.DateISO\"");
    MK_CHECK_STR(payload_str(list, "0.weight"), "\"$.fake.FloatRange(0.5,80)\"");
    MK_CHECK_STR(payload_str(list, "0.name"), "\"$.fake.Name\"");
    MK_CHECK_STR(json_string_value(json_object_get(list, "chainId")), "c1");
    MK_CHECK_STR(json_string_value(json_array_get(json_object_get(list, "tags"), 0)), "imported");
    MK_CHECK_STR(json_string_value(json_array_get(json_object_get(list, "tags"), 1)), "pets");
    MK_CHECK_STR(
        json_string_value(json_object_get(
            json_object_get(json_object_get(list, "response"), "headers"), "Content-Type")),
        "application/json");

    /* Named examples: a oneOf in order; the 400 from components/responses is chosen by header. */
    json_t *create = find(&r, "POST", "/pets", 201);
    json_t *resps = json_object_get(json_object_get(create, "oneOf"), "responses");
    MK_CHECK_INT(json_array_size(resps), 2);
    MK_CHECK_STR(json_string_value(
                     json_object_get(json_object_get(json_array_get(resps, 1), "payload"), "name")),
                 "Tom");
    MK_CHECK_STR(cond(create, "header", 0), "X-Request-Source any");
    json_t *bad = find(&r, "POST", "/pets", 400);
    MK_CHECK_STR(cond(bad, "header", 1), "x-mock-response-code equals \"400\"");
    MK_CHECK_INT(json_integer_value(json_object_get(bad, "priority")), 3);
    MK_CHECK_STR(payload_str(bad, "code"), "\"$.fake.IntBetween(1,1000)\"");

    json_t *one = find(&r, "GET", "/pets/:petId", 200);
    MK_CHECK(one != NULL);
    MK_CHECK_INT(json_integer_value(json_object_get(one, "priority")), 2);
    /* Concrete paths rank above templated ones (OpenAPI's path matching). */
    MK_CHECK_INT(
        json_integer_value(json_object_get(find(&r, "GET", "/pets/search", 200), "priority")), 4);
    MK_CHECK_STR(payload_str(find(&r, "GET", "/pets/:petId", 404), "message"), "\"no such pet\"");
    MK_CHECK(find(&r, "DELETE", "/pets/:petId", 204) != NULL);

    json_t *search = find(&r, "GET", "/pets/search", 200);
    MK_CHECK_STR(cond(search, "queryParams", 0), "q any");
    MK_CHECK_INT(json_array_size(json_object_get(json_object_get(search, "response"), "payload")),
                 2);

    /* The recursive Category is cut where it repeats, with a warning. */
    json_t *cat = find(&r, "GET", "/categories/:id", 200);
    MK_CHECK_STR(payload_str(cat, "id"), "\"$.fake.UUID\"");
    MK_CHECK_STR(payload_str(cat, "parent"), "(absent)");
    MK_CHECK(noted(r.warnings, "GET /categories/{id} 200", "recursive"));
    /* A parameter inside a segment takes the segment. */
    json_t *file = find(&r, "GET", "/files/:name", 200);
    MK_CHECK_STR(payload_str(file, ""), "\"hello\"");
    MK_CHECK(noted(r.warnings, "/files/{name}.json", "whole segment"));
    json_decref(tags);
    mk_import_result_free(&r);
}

static void test_petstore_31_json(void)
{
    mk_import_result_t r;
    mk_err_t err = {0};
    mk_import_opts_t o = {.id_seed = "shop", .path_prefix = "/api/v3"};
    MK_CHECK_INT(import_file("petstore31.json", mk_import_openapi, &o, &r, &err), 0);
    MK_CHECK_INT(json_array_size(r.errors), 0);
    check_valid(&r);
    MK_CHECK_INT(json_array_size(r.mocks), 21);
    json_t *pet = find(&r, "GET", "/pet/:petId", 200);
    MK_CHECK_STR(json_string_value(json_object_get(pet, "pathPrefix")), "/api/v3");
    MK_CHECK_STR(payload_str(pet, "name"), "\"doggie\"");
    MK_CHECK_STR(payload_str(pet, "category.name"), "\"Dogs\"");
    MK_CHECK_STR(payload_str(pet, "kind.name"), "\"$.fake.Name\""); /* oneOf: the first */
    json_t *order = find(&r, "POST", "/store/order", 200);
    MK_CHECK_STR(payload_str(order, "quantity"), "7");
    MK_CHECK_STR(payload_str(order, "petId"), "\"$.fake.IntBetween(1,1000)\"");
    MK_CHECK_STR(payload_str(order, "note"), "\"string\"");
    MK_CHECK_STR(payload_str(find(&r, "GET", "/store/inventory", 200), "additionalProp1"),
                 "\"$.fake.IntBetween(1,1000)\"");
    MK_CHECK_STR(cond(find(&r, "GET", "/pet/findByStatus", 200), "queryParams", 0), "status any");
    /* Only a 400: it answers by default, without a selecting header. */
    json_t *del = find(&r, "DELETE", "/pet/:petId", 400);
    MK_CHECK(del != NULL && json_object_get(json_object_get(del, "http"), "header") == NULL);
    /* JSON is preferred over XML. */
    json_t *put = find(&r, "PUT", "/pet", 200);
    MK_CHECK_STR(json_string_value(json_object_get(
                     json_object_get(json_object_get(put, "response"), "headers"), "Content-Type")),
                 "application/json");
    MK_CHECK_STR(
        json_string_value(json_object_get(
            json_object_get(json_object_get(find(&r, "GET", "/user/login", 200), "response"),
                            "headers"),
            "X-Expires-After")),
        "$.fake.DateISO");
    mk_import_result_free(&r);
}

/* The published Petstore 3.0 spec, verbatim: imports without error, and every mock validates. */
static void test_published_petstore(void)
{
    mk_import_result_t r;
    mk_err_t err = {0};
    MK_CHECK_INT(import_file("swagger-petstore-openapi.yaml", mk_import_openapi, NULL, &r, &err),
                 0);
    MK_CHECK_INT(json_array_size(r.errors), 0);
    MK_CHECK_INT(json_array_size(r.mocks), 45);
    check_valid(&r);
    json_t *m = find(&r, "GET", "/pet/:petId", 200);
    MK_CHECK_STR(payload_str(m, "name"), "\"doggie\"");
    /* status is optional there: no condition. */
    MK_CHECK_STR(cond(find(&r, "GET", "/pet/findByStatus", 200), "queryParams", 0), "(none)");
    mk_import_result_free(&r);
}

/* Swagger 2.0: responses carry schema and examples themselves; #/definitions refs. */
static void test_petstore_swagger2(void)
{
    mk_import_result_t r;
    mk_err_t err = {0};
    MK_CHECK_INT(import_file("petstore-swagger2.json", mk_import_openapi, NULL, &r, &err), 0);
    MK_CHECK_INT(json_array_size(r.errors), 0);
    check_valid(&r);
    MK_CHECK_INT(json_array_size(r.mocks), 3);
    json_t *list = find(&r, "GET", "/pets", 200);
    MK_CHECK_STR(payload_str(list, "0.id"), "\"$.fake.IntBetween(1,1000)\"");
    MK_CHECK_STR(json_string_value(json_object_get(
                     json_object_get(json_object_get(list, "response"), "headers"), "x-next")),
                 "string");
    MK_CHECK_STR(payload_str(find(&r, "GET", "/pets/:petId", 200), "0.name"), "\"Rex\"");
    MK_CHECK(find(&r, "POST", "/pets", 201) != NULL);
    mk_import_result_free(&r);
}

static int openapi_text(const char *text, mk_import_result_t *r, mk_err_t *err)
{
    json_t *doc;
    mk_import_result_init(r);
    int rc = mk_import_parse(text, strlen(text), &doc, err);
    if (rc == 0)
        rc = mk_import_openapi(doc, NULL, r, err);
    json_decref(doc);
    return rc;
}

static void test_openapi_bad_input(void)
{
    mk_import_result_t r;
    mk_err_t err = {0};
    MK_CHECK_INT(openapi_text("openapi: 3.0.0\npaths: {\n  /x: [\n", &r, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "invalid YAML") && strstr(err.msg, "line"));
    mk_import_result_free(&r);
    MK_CHECK_INT(openapi_text("{\"openapi\": \"3.0.0\", \"paths\": {", &r, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "invalid JSON at line 1") != NULL);
    mk_import_result_free(&r);
    MK_CHECK_INT(openapi_text("swagger: '1.2'\n", &r, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "not an OpenAPI document") != NULL);
    mk_import_result_free(&r);
    MK_CHECK_INT(openapi_text("title: nothing\n", &r, &err), MK_EINVAL);
    mk_import_result_free(&r);

    const char *dangling =
        "openapi: 3.1.0\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n"
        "          description: x\n          content:\n            application/json:\n"
        "              schema: {$ref: '#/components/schemas/Nope'}\n"
        "  /b:\n    get:\n      responses:\n        '200': {$ref: 'other.yaml#/r'}\n"
        "  /c:\n    get:\n      responses: {'200': {description: ok}}\n";
    MK_CHECK_INT(openapi_text(dangling, &r, &err), 0);
    MK_CHECK_INT(json_array_size(r.mocks), 1);
    MK_CHECK(noted(r.errors, "GET /a 200", "'#/components/schemas/Nope' points nowhere"));
    MK_CHECK(noted(r.errors, "GET /b 200", "points outside the document"));
    mk_import_result_free(&r);

    char *big = malloc(MK_IMPORT_MAX_BYTES + 2);
    memset(big, ' ', MK_IMPORT_MAX_BYTES + 1);
    big[MK_IMPORT_MAX_BYTES + 1] = 0;
    json_t *doc = NULL;
    MK_CHECK_INT(mk_import_parse(big, MK_IMPORT_MAX_BYTES + 1, &doc, &err), MK_ETOOBIG);
    MK_CHECK(strstr(err.msg, "over the import limit") != NULL);
    free(big);
}

/* A spec of several hundred operations, generated from a template. */
static void test_openapi_large(void)
{
    json_t *paths = json_object();
    for (int i = 0; i < 300; i++) {
        char p[64], q[64];
        snprintf(p, sizeof p, "/service%d/items", i);
        snprintf(q, sizeof q, "/service%d/items/{itemId}", i);
        json_object_set_new(
            paths, p,
            json_pack("{s:{s:[s], s:{s:{s:s, s:{s:{s:{s:s}}}}}}, s:{s:{s:{s:s}, s:{s:s}}}}", "get",
                      "tags", "svc", "responses", "200", "description", "ok", "content",
                      "application/json", "schema", "$ref", "#/components/schemas/ItemList", "post",
                      "responses", "201", "$ref", "#/components/responses/Item", "400",
                      "description", "bad"));
        json_object_set_new(paths, q,
                            json_pack("{s:{s:{s:{s:s}, s:{s:s}}}}", "get", "responses", "200",
                                      "$ref", "#/components/responses/Item", "404", "description",
                                      "missing"));
    }
    json_t *doc = json_pack(
        "{s:s, s:o, s:{s:{s:{s:s, s:{s:{s:s, s:s}, s:{s:s}, s:{s:s, s:s}}}, s:{s:s, s:{s:s}}}, "
        "s:{s:{s:s, s:{s:{s:{s:s}}}}}}}",
        "openapi", "3.0.3", "paths", paths, "components", "schemas", "Item", "type", "object",
        "properties", "id", "type", "string", "format", "uuid", "name", "type", "string", "created",
        "type", "string", "format", "date-time", "ItemList", "type", "array", "items", "$ref",
        "#/components/schemas/Item", "responses", "Item", "description", "an item", "content",
        "application/json", "schema", "$ref", "#/components/schemas/Item");
    mk_import_result_t r;
    mk_import_result_init(&r);
    mk_err_t err = {0};
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    MK_CHECK_INT(mk_import_openapi(doc, NULL, &r, &err), 0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    printf("  900 operations -> %zu mocks in %.1f ms CPU\n", json_array_size(r.mocks),
           (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
    MK_CHECK_INT(json_array_size(r.mocks), 1500);
    MK_CHECK_INT(json_array_size(r.errors), 0);
    check_valid(&r);
    /* Distinct ids. */
    json_t *ids = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(r.mocks, i, m)
    {
        json_object_set(ids, json_string_value(json_object_get(m, "id")), json_true());
    }
    MK_CHECK_INT(json_object_size(ids), 1500);
    json_decref(ids);
    json_decref(doc);
    mk_import_result_free(&r);
}

static void test_wiremock(void)
{
    mk_import_result_t r;
    mk_err_t err = {0};
    json_t *files = json_pack("{s:s}", "file.txt", "file body");
    mk_import_opts_t o = {.id_seed = "wm", .files = files};
    MK_CHECK_INT(import_file("wiremock.json", mk_import_wiremock, &o, &r, &err), 0);
    json_t *m;
    check_valid(&r);
    MK_CHECK_INT(json_array_size(r.errors), 0);
    MK_CHECK_INT(json_array_size(r.mocks), 13);
    MK_CHECK_INT(json_array_size(r.skipped), 5);
    MK_CHECK(noted(r.skipped, "mappings[17]", "'{{math 1 '+' 2}}' has no counterpart"));
    m = find(&r, "GET", "/greet/:name", 200);
    MK_CHECK_STR(payload_str(m, ""),
                 "\"Hello $.pathParam.name from $.queryParam.city, $.reqHeader.X-Who[0]!\"");
    MK_CHECK_STR(json_string_value(json_object_get(
                     json_object_get(json_object_get(m, "response"), "headers"), "X-Echo")),
                 "greet");
    m = find(&r, "POST", "/echo", 200);
    MK_CHECK_STR(payload_str(m, "id"), "\"$.req.id\"");
    MK_CHECK_STR(payload_str(m, "uuid"), "\"$.fake.UUID\"");
    MK_CHECK_STR(payload_str(m, "all"), "\"$.req\"");
    MK_CHECK(noted(r.skipped, "mappings[10]", "requiredScenarioState"));
    MK_CHECK(noted(r.skipped, "mappings[11]", "doesNotMatch"));
    MK_CHECK(noted(r.skipped, "mappings[13]", "equalToXml"));
    MK_CHECK(noted(r.skipped, "mappings[14]", "proxy"));
    MK_CHECK(noted(r.warnings, "mappings[9]", "newScenarioState"));

    m = find(&r, "GET", "/some/thing", 200);
    MK_CHECK_STR(payload_str(m, ""), "\"Hello world!\"");
    MK_CHECK_INT(json_integer_value(json_object_get(m, "priority")), -5);
    m = find(&r, "GET", "/search", 200);
    MK_CHECK_STR(cond(m, "queryParams", 0), "q equals \"shoes\"");
    MK_CHECK_STR(cond(m, "queryParams", 1), "page equals \"2\"");
    m = find(&r, "GET", "/everything", 200);
    MK_CHECK_STR(cond(m, "queryParams", 0), "search_term equals \"WireMock\"");
    MK_CHECK_STR(cond(m, "queryParams", 1), "debug empty");
    MK_CHECK_STR(cond(m, "header", 0), "Accept contains \"json\"");
    MK_CHECK_STR(cond(m, "header", 1), "X-Client matches \"^(?:app-[0-9]+)$\"");
    MK_CHECK_INT(json_integer_value(json_object_get(json_object_get(m, "response"), "delay")), 50);
    m = find(&r, "POST", "/orders", 201);
    MK_CHECK_INT(json_integer_value(json_object_get(m, "priority")), -1);
    MK_CHECK_STR(cond(m, "conditions", 0), "$.item equals \"book\"");
    MK_CHECK_STR(cond(m, "conditions", 1), "$.qty equals 2");
    MK_CHECK_STR(cond(m, "conditions", 2), "$.customer any");
    m = find(&r, "PUT", "/users/:p1", 204);
    MK_CHECK_STR(cond(m, "conditions", 0), "$.name any");
    MK_CHECK(noted(r.warnings, "mappings[4]", "route parameters"));
    m = find(&r, "GET", "/contacts/:contactId/addresses/:addressId", 200);
    MK_CHECK_STR(payload_str(m, ""), "\"{\\\"street\\\": \\\"Main\\\"}\"");
    MK_CHECK_STR(payload_str(find(&r, "GET", "/files/*", 200), ""), "\"file body\"");
    MK_CHECK_STR(json_string_value(json_object_get(
                     json_object_get(find(&r, "GET", "/fault", 200), "response"), "fault")),
                 "CONNECTION_RESET_BY_PEER");
    m = find(&r, "ANY", "/case/*", 200);
    MK_CHECK_STR(cond(m, "header", 0), "X-Mode matches \"(?i)^fast$\"");
    MK_CHECK_STR(cond(m, "header", 1), "Cookie contains \"session=abc\"");
    mk_import_result_free(&r);

    /* Without the file, bodyFileName is reported; a bad regex is an input error. */
    json_t *doc = json_loads(
        "[{\"request\": {\"urlPattern\": \"/a/(\"}, \"response\": {}},"
        " {\"request\": {\"url\": \"/b\"}, \"response\": {\"bodyFileName\": \"x.json\"}}]",
        0, NULL);
    mk_import_result_init(&r);
    MK_CHECK_INT(mk_import_wiremock(doc, NULL, &r, &err), 0);
    MK_CHECK(noted(r.errors, "mappings[0]", "invalid regular expression"));
    MK_CHECK(noted(r.skipped, "mappings[1]", "bodyFileName 'x.json'"));
    MK_CHECK_INT(json_array_size(r.mocks), 0);
    json_decref(doc);
    mk_import_result_free(&r);
    /* A single mapping works too. */
    doc = json_loads("{\"request\": {\"method\": \"GET\"}, \"response\": {\"status\": 418}}", 0,
                     NULL);
    mk_import_result_init(&r);
    MK_CHECK_INT(mk_import_wiremock(doc, NULL, &r, &err), 0);
    MK_CHECK(find(&r, "GET", "/*", 418) != NULL);
    json_decref(doc);
    mk_import_result_free(&r);
    json_decref(files);
}

/* 10,000 mappings, as a WireMock export of a large suite: translated without error, timed. */
static void test_wiremock_large(void)
{
    json_t *list = json_array();
    for (int i = 0; i < 10000; i++) {
        char path[64], q[32];
        snprintf(path, sizeof path, "/wm/%d/things", i);
        snprintf(q, sizeof q, "v%d", i);
        json_array_append_new(
            list, json_pack("{s:{s:s, s:s, s:{s:{s:s}}, s:{s:{s:s}}}, s:{s:i, s:{s:i, s:b}}}",
                            "request", "method", "GET", "urlPath", path, "queryParameters", "q",
                            "equalTo", q, "headers", "Accept", "contains", "json", "response",
                            "status", 200, "jsonBody", "n", i, "ok", 1));
    }
    json_t *doc = json_pack("{s:o}", "mappings", list);
    mk_import_result_t r;
    mk_import_result_init(&r);
    mk_err_t err = {0};
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    MK_CHECK_INT(mk_import_wiremock(doc, NULL, &r, &err), 0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    printf("  10000 mappings -> %zu mocks in %.1f ms CPU\n", json_array_size(r.mocks),
           (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
    MK_CHECK_INT(json_array_size(r.mocks), 10000);
    MK_CHECK_INT(json_array_size(r.errors) + json_array_size(r.skipped), 0);
    json_decref(doc);
    mk_import_result_free(&r);
}

/* A zipped WireMock folder: mappings/ (single and grouped) and __files/; a zip bomb stops at the
 * import limit; a damaged archive is refused. */
static void test_wiremock_zip(void)
{
    size_t len;
    char *zip = slurp("wiremock-folder.zip", &len);
    json_t *doc = NULL, *files = NULL;
    mk_err_t err = {0};
    MK_CHECK(mk_import_is_zip(zip, len));
    MK_CHECK_INT(mk_import_wiremock_zip(zip, len, &doc, &files, &err), 0);
    MK_CHECK_INT(json_array_size(json_object_get(doc, "mappings")), 3);
    MK_CHECK_STR(json_string_value(json_object_get(files, "hello.json")),
                 "{\"hello\": \"from __files\"}");
    mk_import_opts_t o = {.files = files};
    mk_import_result_t r;
    mk_import_result_init(&r);
    MK_CHECK_INT(mk_import_wiremock(doc, &o, &r, &err), 0);
    check_valid(&r);
    MK_CHECK_STR(payload_str(find(&r, "GET", "/zip/hello", 200), "hello"), "\"from __files\"");
    mk_import_result_free(&r);
    json_decref(doc);
    json_decref(files);
    MK_CHECK_INT(mk_import_wiremock_zip(zip, len - 30, &doc, &files, &err), MK_EINVAL);
    free(zip);

    zip = slurp("zip-bomb.zip", &len);
    MK_CHECK_INT(mk_import_wiremock_zip(zip, len, &doc, &files, &err), MK_ETOOBIG);
    MK_CHECK(strstr(err.msg, "past the import limit") != NULL);
    MK_CHECK(doc == NULL && files == NULL);
    /* A declared size smaller than what the data inflates to is refused too. */
    unsigned char *lie = (unsigned char *)zip;
    for (size_t i = len - 22; i > 0; i--)
        if (lie[i] == 'P' && lie[i + 1] == 'K' && lie[i + 2] == 1 && lie[i + 3] == 2) {
            lie[i + 24] = 0x10; /* uncompressed size 16 MiB -> 4 KiB + ... */
            lie[i + 25] = 0;
            lie[i + 26] = 0;
            lie[i + 27] = 0;
            break;
        }
    MK_CHECK_INT(mk_import_wiremock_zip(zip, len, &doc, &files, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "does not inflate to its declared") != NULL);
    free(zip);
}

static void test_har(void)
{
    mk_import_result_t r;
    mk_err_t err = {0};
    MK_CHECK_INT(import_file("capture.har", mk_import_har, NULL, &r, &err), 0);
    check_valid(&r);
    MK_CHECK_INT(json_array_size(r.mocks), 3);
    MK_CHECK(noted(r.skipped, "log.entries[3]", "binary"));
    MK_CHECK(noted(r.skipped, "log.entries[4]", "no response"));
    json_t *m = find(&r, "GET", "/api/products", 200);
    MK_CHECK_STR(cond(m, "queryParams", 0), "category equals \"books\"");
    MK_CHECK_STR(cond(m, "queryParams", 2), "q equals \"sci fi\""); /* saved encoded */
    json_t *resps = json_object_get(json_object_get(m, "oneOf"), "responses");
    MK_CHECK_INT(json_array_size(resps), 2); /* the repeat with another answer */
    json_t *h = json_object_get(json_array_get(resps, 0), "headers");
    MK_CHECK(json_object_get(h, "content-length") == NULL && json_object_get(h, "date") == NULL);
    MK_CHECK_STR(json_string_value(json_object_get(h, "cache-control")), "no-cache");
    m = find(&r, "POST", "/api/cart", 201);
    MK_CHECK_STR(cond(m, "conditions", 0), "$ equals {\"productId\":1,\"qty\":2}");
    MK_CHECK_STR(payload_str(m, "cartId"), "\"c-1\"");
    h = json_object_get(json_object_get(m, "response"), "headers");
    MK_CHECK_INT(json_array_size(json_object_get(h, "Set-Cookie")), 2);
    MK_CHECK(json_object_get(h, "Connection") == NULL);
    MK_CHECK_STR(payload_str(find(&r, "GET", "/api/products/1", 200), ""), "\"<h1>Dune</h1>\"");
    mk_import_result_free(&r);
}

static void test_postman(void)
{
    mk_import_result_t r;
    mk_err_t err = {0};
    MK_CHECK_INT(import_file("collection.json", mk_import_postman, NULL, &r, &err), 0);
    check_valid(&r);
    MK_CHECK_INT(json_array_size(r.mocks), 4);
    MK_CHECK(noted(r.skipped, "/Health", "no saved example"));
    json_t *m = find(&r, "GET", "/users/:id", 200);
    MK_CHECK_STR(payload_str(m, "name"), "\"Ada\"");
    MK_CHECK(json_object_get(json_object_get(m, "http"), "header") == NULL);
    m = find(&r, "GET", "/users/:id", 404);
    MK_CHECK_STR(cond(m, "header", 0), "x-mock-response-name equals \"Missing\"");
    m = find(&r, "GET", "/users", 200);
    MK_CHECK_STR(cond(m, "queryParams", 0), "q equals \"ada\"");
    MK_CHECK_STR(cond(m, "queryParams", 1), "limit any");
    MK_CHECK_STR(cond(m, "queryParams", 2), "(none)");
    m = find(&r, "POST", "/orders/:orderId/items", 201);
    MK_CHECK_STR(payload_str(m, ""), "\"created\"");
    mk_import_result_free(&r);
}

static void test_graphql(void)
{
    size_t len;
    char *sdl = slurp("schema.graphql", &len);
    mk_import_result_t r;
    mk_import_result_init(&r);
    mk_err_t err = {0};
    MK_CHECK_INT(mk_import_graphql(sdl, len, NULL, &r, &err), 0);
    if (err.msg[0])
        fprintf(stderr, "%s\n", err.msg);
    check_valid(&r);
    MK_CHECK_INT(json_array_size(r.mocks), 4);
    json_t *m = json_array_get(r.mocks, 0);
    MK_CHECK_STR(cond(m, "conditions", 0),
                 "$.query matches \"^\\\\s*(?:query\\\\b[^{]*)?\\\\{\\\\s*(?:\\\\w+\\\\s*:\\\\s*)?"
                 "user\\\\b\"");
    MK_CHECK_STR(payload_str(m, "data.user.status"), "\"ACTIVE\"");
    MK_CHECK_STR(payload_str(m, "data.user.id"), "\"$.fake.UUID\"");
    MK_CHECK_STR(payload_str(m, "data.user.friends.0.age"), "\"$.fake.IntBetween(1,1000)\"");
    MK_CHECK_STR(payload_str(json_array_get(r.mocks, 2), "data.search.0.name"), "\"string\"");
    MK_CHECK(strstr(cond(json_array_get(r.mocks, 3), "conditions", 0), "mutation") != NULL);
    mk_import_result_free(&r);
    free(sdl);

    mk_import_result_init(&r);
    MK_CHECK_INT(mk_import_graphql("type Query { a: }", 17, NULL, &r, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "line 1") != NULL);
    mk_import_result_free(&r);
}

/* The JSON result of an introspection query, as GraphQL servers answer it. */
static void test_graphql_introspection(void)
{
    const char *doc =
        "{\"data\": {\"__schema\": {\"queryType\": {\"name\": \"Root\"}, \"mutationType\": null,"
        " \"types\": ["
        "  {\"kind\": \"OBJECT\", \"name\": \"Root\", \"fields\": ["
        "    {\"name\": \"user\", \"type\": {\"kind\": \"OBJECT\", \"name\": \"User\"}}]},"
        "  {\"kind\": \"OBJECT\", \"name\": \"User\", \"fields\": ["
        "    {\"name\": \"id\", \"type\": {\"kind\": \"NON_NULL\", \"ofType\": "
        "       {\"kind\": \"SCALAR\", \"name\": \"ID\"}}},"
        "    {\"name\": \"tags\", \"type\": {\"kind\": \"LIST\", \"ofType\": "
        "       {\"kind\": \"SCALAR\", \"name\": \"String\"}}},"
        "    {\"name\": \"status\", \"type\": {\"kind\": \"ENUM\", \"name\": \"Status\"}}]},"
        "  {\"kind\": \"ENUM\", \"name\": \"Status\", \"enumValues\": [{\"name\": \"ON\"}]}"
        "]}}}";
    mk_import_result_t r;
    mk_import_result_init(&r);
    mk_err_t err = {0};
    MK_CHECK_INT(mk_import_graphql(doc, strlen(doc), NULL, &r, &err), 0);
    check_valid(&r);
    MK_CHECK_INT(json_array_size(r.mocks), 1);
    json_t *m = json_array_get(r.mocks, 0);
    MK_CHECK_STR(payload_str(m, "data.user.id"), "\"$.fake.UUID\"");
    MK_CHECK_STR(payload_str(m, "data.user.tags.0"), "\"string\"");
    MK_CHECK_STR(payload_str(m, "data.user.status"), "\"ON\"");
    mk_import_result_free(&r);
    mk_import_result_init(&r);
    MK_CHECK_INT(mk_import_graphql("{\"a\": 1}", 8, NULL, &r, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "__schema") != NULL);
    mk_import_result_free(&r);
}

/* The same input in the same namespace gives the same ids (a re-import replaces). */
static void test_ids_are_stable(void)
{
    mk_import_result_t a, b, c;
    mk_err_t err = {0};
    mk_import_opts_t o1 = {.id_seed = "ns1"}, o2 = {.id_seed = "ns2"};
    import_file("petstore.yaml", mk_import_openapi, &o1, &a, &err);
    import_file("petstore.yaml", mk_import_openapi, &o1, &b, &err);
    import_file("petstore.yaml", mk_import_openapi, &o2, &c, &err);
    const char *ida = json_string_value(json_object_get(json_array_get(a.mocks, 0), "id"));
    MK_CHECK_STR(ida, json_string_value(json_object_get(json_array_get(b.mocks, 0), "id")));
    MK_CHECK(strcmp(ida, json_string_value(json_object_get(json_array_get(c.mocks, 0), "id"))));
    MK_CHECK(strncmp(ida, "oa-", 3) == 0);
    mk_import_result_free(&a);
    mk_import_result_free(&b);
    mk_import_result_free(&c);
}

int main(void)
{
    MK_RUN(test_petstore_30_yaml);
    MK_RUN(test_petstore_31_json);
    MK_RUN(test_published_petstore);
    MK_RUN(test_petstore_swagger2);
    MK_RUN(test_openapi_bad_input);
    MK_RUN(test_openapi_large);
    MK_RUN(test_wiremock);
    MK_RUN(test_wiremock_large);
    MK_RUN(test_wiremock_zip);
    MK_RUN(test_har);
    MK_RUN(test_postman);
    MK_RUN(test_graphql);
    MK_RUN(test_graphql_introspection);
    MK_RUN(test_ids_are_stable);
    return mk_testing_done();
}
