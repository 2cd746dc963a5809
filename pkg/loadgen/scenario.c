/* Scenario compiler: weighted requests whose URL path, headers and body are templates. Variables
 * are substituted once here; fakers are left as segments rendered per request. A request with no
 * faker is prebuilt into its exact bytes, so the hot path only writes it. */
#include "loadgen/scenario_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_REQUESTS 1000
#define MAX_TEXT     (1 << 20)

typedef void (*builtin_fn)(mk_faker_rng_t *rng, mk_buf_t *out);

static void gen_random_int(mk_faker_rng_t *rng, mk_buf_t *out)
{
    mk_buf_appendf(out, "%" PRId64, mk_faker_rng_between(rng, 0, 1000));
}

static void gen_uuid(mk_faker_rng_t *rng, mk_buf_t *out)
{
    uint64_t a = mk_faker_rng_next(rng), b = mk_faker_rng_next(rng);
    a = (a & ~UINT64_C(0xf000)) | UINT64_C(0x4000);
    b = (b & ~(UINT64_C(3) << 62)) | (UINT64_C(2) << 62);
    mk_buf_appendf(out, "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%012" PRIx64,
                   a >> 32, (a >> 16) & 0xffff, a & 0xffff, b >> 48, b & UINT64_C(0xffffffffffff));
}

static void gen_timestamp(mk_faker_rng_t *rng, mk_buf_t *out)
{
    (void)rng;
    mk_buf_appendf(out, "%lld", (long long)time(NULL));
}

static void gen_iso_timestamp(mk_faker_rng_t *rng, mk_buf_t *out)
{
    (void)rng;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    mk_buf_appendf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

static void gen_alnum(mk_faker_rng_t *rng, mk_buf_t *out)
{
    char c = alnum[mk_faker_rng_next(rng) % (sizeof alnum - 1)];
    mk_buf_append(out, &c, 1);
}

static void gen_string(mk_faker_rng_t *rng, mk_buf_t *out)
{
    for (int i = 0; i < 10; i++)
        gen_alnum(rng, out);
}

static void gen_bool(mk_faker_rng_t *rng, mk_buf_t *out)
{
    mk_buf_append_str(out, mk_faker_rng_next(rng) & 1 ? "true" : "false");
}

/* Postman's dynamic variables that load tests use most; {{$fake.X}} reaches the rest. */
static const struct {
    const char *name;
    builtin_fn fn;
} builtins[] = {
    {"randomInt", gen_random_int},
    {"uuid", gen_uuid},
    {"guid", gen_uuid},
    {"randomUUID", gen_uuid},
    {"timestamp", gen_timestamp},
    {"isoTimestamp", gen_iso_timestamp},
    {"randomAlphaNumeric", gen_alnum},
    {"randomString", gen_string},
    {"randomBoolean", gen_bool},
};
#define NBUILTINS (sizeof builtins / sizeof builtins[0])

const char *const mk_loadgen_fakers[] = {"randomInt",
                                         "uuid",
                                         "guid",
                                         "randomUUID",
                                         "timestamp",
                                         "isoTimestamp",
                                         "randomAlphaNumeric",
                                         "randomString",
                                         "randomBoolean",
                                         NULL};

static void tmpl_free(lg_tmpl_t *t)
{
    for (size_t i = 0; i < t->nsegs; i++)
        mk_faker_call_free(t->segs[i].fake);
    free(t->segs);
    free(t->text);
    memset(t, 0, sizeof *t);
}

static const json_t *lookup_var(const json_t *a, const json_t *b, const char *name, size_t len)
{
    const json_t *objs[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        const char *k;
        json_t *v;
        if (!json_is_object(objs[i]))
            continue;
        json_object_foreach((json_t *)objs[i], k, v)
        {
            if (strlen(k) == len && memcmp(k, name, len) == 0)
                return v;
        }
    }
    return NULL;
}

/* Replaces {{name}} by variables (scenario vars first, then env); leaves {{$...}} alone. */
static int substitute_vars(const char *in, const json_t *vars, const json_t *env, mk_buf_t *out,
                           mk_err_t *err)
{
    const char *p = in;
    for (;;) {
        const char *o = strstr(p, "{{");
        if (!o)
            return mk_buf_append_str(out, p) ? mk_err_set(err, MK_ETOOBIG, "text too long") : 0;
        const char *c = strstr(o + 2, "}}");
        if (!c)
            return mk_err_set(err, MK_EINVAL, "unterminated '{{'");
        const char *n = o + 2;
        while (n < c && isspace((unsigned char)*n))
            n++;
        size_t len = (size_t)(c - n);
        while (len && isspace((unsigned char)n[len - 1]))
            len--;
        if (mk_buf_append(out, p, (size_t)(o - p)))
            return mk_err_set(err, MK_ETOOBIG, "text too long");
        if (len && n[0] == '$') {
            mk_buf_appendf(out, "{{%.*s}}", (int)len, n);
        } else {
            const json_t *v = lookup_var(vars, env, n, len);
            if (!v)
                return mk_err_set(err, MK_EINVAL, "unknown variable '%.*s'", (int)len, n);
            if (json_is_string(v)) {
                mk_buf_append_str(out, json_string_value(v));
            } else {
                char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                mk_buf_append_str(out, s ? s : "");
                free(s);
            }
        }
        p = c + 2;
    }
}

static int add_seg(lg_tmpl_t *t, lg_seg_t seg)
{
    lg_seg_t *n = realloc(t->segs, (t->nsegs + 1) * sizeof *n);
    if (!n)
        return MK_ENOMEM;
    t->segs = n;
    t->segs[t->nsegs++] = seg;
    return 0;
}

/* Splits text (taken over: freed with the template) into literal and faker segments. */
static int tmpl_compile(lg_tmpl_t *t, char *text, mk_err_t *err)
{
    memset(t, 0, sizeof *t);
    t->text = text;
    const char *p = text;
    for (;;) {
        const char *o = strstr(p, "{{$");
        size_t litlen = o ? (size_t)(o - p) : strlen(p);
        if (litlen && add_seg(t, (lg_seg_t){p, litlen, -1, NULL}))
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        if (!o)
            return 0;
        const char *c = strstr(o, "}}");
        const char *name = o + 3;
        size_t len = (size_t)(c - name);
        lg_seg_t seg = {NULL, 0, -1, NULL};
        if (len > 5 && strncmp(name, "fake.", 5) == 0) {
            const char *nm = name + 5, *paren = memchr(nm, '(', (size_t)(c - nm));
            mk_str_t fname = {nm, paren ? (size_t)(paren - nm) : (size_t)(c - nm)};
            mk_str_t args = {"", 0};
            if (paren) {
                const char *close = c - 1;
                if (*close != ')')
                    return mk_err_set(err, MK_EINVAL, "{{$%.*s}}: missing ')'", (int)len, name);
                args = (mk_str_t){paren + 1, (size_t)(close - paren - 1)};
            }
            int rc = mk_faker_compile(fname, args, &seg.fake, err);
            if (rc)
                return rc;
        } else {
            for (size_t i = 0; i < NBUILTINS; i++)
                if (strlen(builtins[i].name) == len && !memcmp(builtins[i].name, name, len))
                    seg.builtin = (int)i;
            if (seg.builtin < 0)
                return mk_err_set(err, MK_EINVAL, "unknown faker '{{$%.*s}}'", (int)len, name);
        }
        if (add_seg(t, seg)) {
            mk_faker_call_free(seg.fake);
            return mk_err_set(err, MK_ENOMEM, "out of memory");
        }
        t->dynamic = true;
        p = c + 2;
    }
}

static int tmpl_render(const lg_tmpl_t *t, mk_faker_rng_t *rng, mk_buf_t *out)
{
    int64_t now_ms = 0;
    for (size_t i = 0; i < t->nsegs; i++) {
        const lg_seg_t *s = &t->segs[i];
        int rc = 0;
        if (s->lit) {
            rc = mk_buf_append(out, s->lit, s->len);
        } else if (s->fake) {
            if (!now_ms)
                now_ms = (int64_t)time(NULL) * 1000;
            rc = mk_faker_gen(s->fake, rng, now_ms, out);
        } else {
            builtins[s->builtin].fn(rng, out);
        }
        if (rc)
            return rc;
    }
    return 0;
}

int lg_request_render(const lg_request_t *r, mk_faker_rng_t *rng, mk_buf_t *out, mk_buf_t *tmp)
{
    mk_buf_reset(out);
    int rc = tmpl_render(&r->head_t, rng, out);
    if (rc)
        return rc;
    if (!r->has_body)
        return mk_buf_append(out, "\r\n", 2);
    mk_buf_reset(tmp);
    rc = tmpl_render(&r->body_t, rng, tmp);
    if (rc == 0)
        rc = mk_buf_appendf(out, "Content-Length: %zu\r\n\r\n", tmp->len);
    if (rc == 0)
        rc = mk_buf_append(out, tmp->data ? tmp->data : "", tmp->len);
    return rc;
}

size_t lg_pick(const mk_loadgen_scenario_t *sc, mk_faker_rng_t *rng)
{
    if (sc->nreq == 1)
        return 0;
    uint64_t x = mk_faker_rng_next(rng) % sc->totalw;
    size_t lo = 0, hi = sc->nreq - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sc->cumw[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int find_target(mk_loadgen_scenario_t *sc, const char *host, const char *port, bool tls,
                       mk_err_t *err)
{
    char hp[280];
    snprintf(hp, sizeof hp, "%s:%s", host, port);
    for (size_t i = 0; i < sc->ntargets; i++)
        if (strcmp(sc->targets[i].hostport, hp) == 0 && sc->targets[i].tls == tls)
            return (int)i;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0 || !res)
        return mk_err_set(err, MK_EINVAL, "cannot resolve '%s': %s", host, gai_strerror(g));
    lg_target_t *n = realloc(sc->targets, (sc->ntargets + 1) * sizeof *n);
    if (!n) {
        freeaddrinfo(res);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    sc->targets = n;
    lg_target_t *t = &n[sc->ntargets];
    memset(t, 0, sizeof *t);
    snprintf(t->hostport, sizeof t->hostport, "%s", hp);
    snprintf(t->host, sizeof t->host, "%s", host);
    t->tls = tls;
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return (int)sc->ntargets++;
}

/* The buffer's bytes as a C string ("" when nothing was appended); NULL when out of memory. */
static char *take_text(mk_buf_t *b)
{
    char *s = mk_buf_take(b);
    return s ? s : strdup("");
}

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* Builds request i: request line, Host, User-Agent, the user's headers, then the body. */
static int compile_request(mk_loadgen_scenario_t *sc, size_t i, const json_t *jr,
                           const json_t *vars, const json_t *env, mk_err_t *err)
{
    lg_request_t *r = &sc->req[i];
    mk_buf_t url, head, body, tmp;
    mk_buf_init(&url, MAX_TEXT);
    mk_buf_init(&head, MAX_TEXT);
    mk_buf_init(&body, MAX_TEXT);
    mk_buf_init(&tmp, MAX_TEXT);
    int rc = MK_EINVAL;
    const char *method = json_string_value(json_object_get(jr, "method"));
    const char *rawurl = json_string_value(json_object_get(jr, "url"));
    json_t *headers = json_object_get(jr, "headers"), *jbody = json_object_get(jr, "body");
    json_t *http2 = json_object_get(jr, "http2");
    if (!json_is_object(jr)) {
        mk_err_set(err, MK_EINVAL, "must be an object");
        goto out;
    }
    if (http2 && !json_is_boolean(http2)) {
        mk_err_set(err, MK_EINVAL, "http2: a boolean expected");
        goto out;
    }
    r->http2 = http2 ? json_is_true(http2) : -1;
    if (!method)
        method = "GET";
    if (!is_token(method)) {
        mk_err_set(err, MK_EINVAL, "method: '%s' is not an HTTP method", method);
        goto out;
    }
    if (!rawurl || !*rawurl) {
        mk_err_set(err, MK_EINVAL, "url: required");
        goto out;
    }
    if ((rc = substitute_vars(rawurl, vars, env, &url, err)) != 0) {
        mk_err_prefix(err, "url");
        goto out;
    }
    rc = MK_EINVAL;
    const char *u = url.data;
    bool tls = strncasecmp(u, "https://", 8) == 0;
    if (!tls && strncasecmp(u, "http://", 7) != 0) {
        mk_err_set(err, MK_EINVAL,
                   "url: unsupported scheme in '%.40s' (http:// or https:// expected)", u);
        goto out;
    }
    const char *hs = u + (tls ? 8 : 7), *he = hs + strcspn(hs, "/?#");
    if (he == hs || memchr(hs, '{', (size_t)(he - hs)) || memchr(hs, '@', (size_t)(he - hs))) {
        mk_err_set(err, MK_EINVAL, "url: the host must be a plain host[:port]");
        goto out;
    }
    char host[256], port[8];
    snprintf(port, sizeof port, "%s", tls ? "443" : "80");
    size_t hl = (size_t)(he - hs);
    const char *colon = NULL;
    if (*hs == '[') {
        const char *rb = memchr(hs, ']', hl);
        if (!rb) {
            mk_err_set(err, MK_EINVAL, "url: bad host (no ']')");
            goto out;
        }
        colon = rb && rb + 1 < he && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(hs, ':', hl);
    }
    size_t namelen = colon ? (size_t)(colon - hs) : hl;
    if (namelen == 0 || namelen >= sizeof host) {
        mk_err_set(err, MK_EINVAL, "url: bad host");
        goto out;
    }
    memcpy(host, hs, namelen);
    host[namelen] = '\0';
    if (host[0] == '[') {
        memmove(host, host + 1, namelen);
        host[strcspn(host, "]")] = '\0';
    }
    if (colon) {
        size_t pl = (size_t)(he - colon - 1);
        char *end;
        if (pl == 0 || pl >= sizeof port) {
            mk_err_set(err, MK_EINVAL, "url: bad port");
            goto out;
        }
        memcpy(port, colon + 1, pl);
        port[pl] = '\0';
        long pv = strtol(port, &end, 10);
        if (*end || pv < 1 || pv > 65535) {
            mk_err_set(err, MK_EINVAL, "url: bad port '%s'", port);
            goto out;
        }
    }
    int t = find_target(sc, host, port, tls, err);
    if (t < 0) {
        rc = t;
        mk_err_prefix(err, "url");
        goto out;
    }
    r->target = t;
    r->head = strcmp(method, "HEAD") == 0;
    char *path = (char *)he;
    path[strcspn(path, "#")] = '\0';
    mk_buf_appendf(&head, "%s %s%s HTTP/1.1\r\n", method, *path == '/' ? "" : "/", path);
    bool has_host = false, has_ct = false, has_ua = false;
    if (headers && !json_is_object(headers)) {
        mk_err_set(err, MK_EINVAL, "headers: must be an object of strings");
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(headers, k, v)
    {
        if (!json_is_string(v) || !is_token(k) || has_crlf(json_string_value(v))) {
            mk_err_set(err, MK_EINVAL, "headers.%s: must be a valid header with a string value", k);
            goto out;
        }
        if (!strcasecmp(k, "content-length") || !strcasecmp(k, "transfer-encoding")) {
            mk_err_set(err, MK_EINVAL, "headers.%s: set by the generator", k);
            goto out;
        }
        has_host |= !strcasecmp(k, "host");
        has_ct |= !strcasecmp(k, "content-type");
        has_ua |= !strcasecmp(k, "user-agent");
        mk_buf_reset(&tmp);
        if ((rc = substitute_vars(json_string_value(v), vars, env, &tmp, err)) != 0) {
            mk_err_prefix(err, "headers.%s", k);
            goto out;
        }
        rc = MK_EINVAL;
        mk_buf_appendf(&head, "%s: %s\r\n", k, tmp.data);
    }
    if (!has_host)
        mk_buf_appendf(&head, "Host: %.*s\r\n", (int)hl, hs);
    if (!has_ua)
        mk_buf_append_str(&head, "User-Agent: mockarty-load\r\n");
    if (json_is_string(jbody)) {
        if ((rc = substitute_vars(json_string_value(jbody), vars, env, &body, err)) != 0) {
            mk_err_prefix(err, "body");
            goto out;
        }
        r->has_body = true;
    } else if (jbody && !json_is_null(jbody)) {
        char *s = json_dumps(jbody, JSON_COMPACT | JSON_ENCODE_ANY);
        rc = s ? substitute_vars(s, vars, env, &body, err) : mk_err_set(err, MK_ENOMEM, "oom");
        free(s);
        if (rc) {
            mk_err_prefix(err, "body");
            goto out;
        }
        if (!has_ct)
            mk_buf_append_str(&head, "Content-Type: application/json\r\n");
        r->has_body = true;
    } else if (!strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH")) {
        r->has_body = true; /* Content-Length: 0, as servers expect for these */
    }
    char *htext = take_text(&head), *btext = take_text(&body);
    if (!htext || !btext) {
        free(htext);
        free(btext);
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = tmpl_compile(&r->head_t, htext, err)) != 0) {
        free(btext);
        goto out;
    }
    if ((rc = tmpl_compile(&r->body_t, btext, err)) != 0) {
        mk_err_prefix(err, "body");
        goto out;
    }
    if (!r->head_t.dynamic && !r->body_t.dynamic) {
        mk_buf_t pre;
        mk_buf_init(&pre, 0);
        rc = lg_request_render(r, NULL, &pre, &tmp);
        r->prebuilt_len = pre.len;
        r->prebuilt = mk_buf_take(&pre);
        if (rc || !r->prebuilt) {
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    mk_buf_free(&url);
    mk_buf_free(&head);
    mk_buf_free(&body);
    mk_buf_free(&tmp);
    return rc;
}

int mk_loadgen_scenario_compile(const json_t *scenario, const json_t *env,
                                mk_loadgen_scenario_t **out, mk_err_t *err)
{
    *out = NULL;
    json_t *reqs = json_object_get(scenario, "requests");
    json_t *vars = json_object_get(scenario, "variables");
    if (!json_is_array(reqs) || json_array_size(reqs) == 0)
        return mk_err_set(err, MK_EINVAL, "scenario.requests: a non-empty array is required");
    if (json_array_size(reqs) > MAX_REQUESTS)
        return mk_err_set(err, MK_EINVAL, "scenario.requests: at most %d", MAX_REQUESTS);
    if (vars && !json_is_object(vars))
        return mk_err_set(err, MK_EINVAL, "scenario.variables: must be an object");
    mk_loadgen_scenario_t *sc = calloc(1, sizeof *sc);
    size_t n = json_array_size(reqs);
    int rc = MK_ENOMEM;
    if (!sc)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    sc->req = calloc(n, sizeof *sc->req);
    sc->cumw = calloc(n, sizeof *sc->cumw);
    if (!sc->req || !sc->cumw) {
        mk_err_set(err, MK_ENOMEM, "out of memory");
        goto fail;
    }
    sc->nreq = n;
    for (size_t i = 0; i < n; i++) {
        json_t *jr = json_array_get(reqs, i), *w = json_object_get(jr, "weight");
        if ((rc = compile_request(sc, i, jr, vars, env, err)) != 0) {
            mk_err_prefix(err, "scenario.requests[%zu]", i);
            goto fail;
        }
        json_int_t wv = 1;
        if (w && (!json_is_integer(w) || (wv = json_integer_value(w)) < 1 || wv > 1000000)) {
            rc = mk_err_set(err, MK_EINVAL,
                            "scenario.requests[%zu].weight: an integer from 1 to 1000000", i);
            goto fail;
        }
        sc->totalw += (uint64_t)wv;
        sc->cumw[i] = sc->totalw;
    }
    sc->hostptrs = calloc(sc->ntargets, sizeof *sc->hostptrs);
    if (!sc->hostptrs) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < sc->ntargets; i++)
        sc->hostptrs[i] = sc->targets[i].hostport;
    *out = sc;
    return 0;
fail:
    mk_loadgen_scenario_free(sc);
    return rc;
}

void mk_loadgen_scenario_free(mk_loadgen_scenario_t *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < sc->nreq; i++) {
        tmpl_free(&sc->req[i].head_t);
        tmpl_free(&sc->req[i].body_t);
        free(sc->req[i].prebuilt);
    }
    free(sc->req);
    free(sc->cumw);
    free(sc->targets);
    free(sc->hostptrs);
    free(sc);
}

size_t mk_loadgen_scenario_targets(const mk_loadgen_scenario_t *sc, const char **hosts, size_t max)
{
    for (size_t i = 0; i < sc->ntargets && i < max; i++)
        hosts[i] = sc->hostptrs[i];
    return sc->ntargets;
}
