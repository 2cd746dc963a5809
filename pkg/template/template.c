/* Template compiler and renderer. A compiled template is a flat list of ops over one literal byte
 * block: literal runs are copied, placeholders are evaluated against the request and stores. */
#include "template/template.h"

#include "jsonpath/jsonpath.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum mode {
    MODE_TYPED,   /* the whole JSON string: the value keeps its JSON type */
    MODE_ESCAPED, /* inside a JSON string: text, escaped */
    MODE_RAW,     /* a text template: text as is */
} mode_t_;

typedef enum expr_kind {
    EX_PATH_PARAM,
    EX_QUERY_PARAM,
    EX_HEADER,
    EX_BODY,
    EX_BODY_PATH,
    EX_STORE,
    EX_FAKE,
    EX_INCREMENT,
} expr_kind_t;

typedef struct expr {
    expr_kind_t kind;
    char *name; /* parameter, header or store key */
    size_t name_len;
    long index; /* header value index; -1 = all values as an array */
    mk_jsonpath_t *path;
    mk_template_store_t store;
    mk_faker_call_t *fake;
    struct expr *inner; /* $.increment's operand */
} expr_t;

typedef struct op {
    expr_t *expr; /* NULL: a literal run */
    size_t off, len;
    mode_t_ mode;
} op_t;

struct mk_template {
    char *lit;
    size_t lit_len;
    op_t *ops;
    size_t nops;
    bool uses_store;
};

/* Compile-time state. */
typedef struct builder {
    mk_buf_t lit;
    op_t *ops;
    size_t nops, cap;
    size_t nplaceholders;
    bool uses_store;
    mk_buf_t where; /* field path for messages */
} builder_t;

static void expr_free(expr_t *e)
{
    if (e == NULL)
        return;
    free(e->name);
    mk_jsonpath_free(e->path);
    mk_faker_call_free(e->fake);
    expr_free(e->inner);
    free(e);
}

void mk_template_free(mk_template_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nops; i++)
        expr_free(t->ops[i].expr);
    free(t->ops);
    free(t->lit);
    free(t);
}

static int push_op(builder_t *b, op_t op)
{
    if (b->nops == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        op_t *ops = realloc(b->ops, cap * sizeof *ops);
        if (ops == NULL)
            return MK_ENOMEM;
        b->ops = ops;
        b->cap = cap;
    }
    b->ops[b->nops++] = op;
    return 0;
}

static int emit_lit(builder_t *b, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    size_t off = b->lit.len;
    int rc = mk_buf_append(&b->lit, data, len);
    if (rc != 0)
        return rc;
    op_t *last = b->nops ? &b->ops[b->nops - 1] : NULL;
    if (last != NULL && last->expr == NULL && last->off + last->len == off) {
        last->len += len;
        return 0;
    }
    return push_op(b, (op_t){.off = off, .len = len});
}

/* The letter after the backslash of a two-character JSON escape; other control characters take
 * the six-character form. */
static const char short_escapes[256] = {
    ['"'] = '"',  ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r',
    ['\t'] = 't', ['\b'] = 'b',  ['\f'] = 'f',
};

int mk_template_json_escape(mk_buf_t *out, mk_str_t s)
{
    size_t start = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.base[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        int rc = mk_buf_append(out, s.base + start, i - start);
        if (rc != 0)
            return rc;
        char esc[8];
        if (short_escapes[c]) {
            esc[0] = '\\';
            esc[1] = short_escapes[c];
            rc = mk_buf_append(out, esc, 2);
        } else {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            rc = mk_buf_append(out, esc, 6);
        }
        if (rc != 0)
            return rc;
        start = i + 1;
    }
    return mk_buf_append(out, s.base + start, s.len - start);
}

static int emit_lit_escaped(builder_t *b, const char *data, size_t len)
{
    mk_buf_t tmp;
    mk_buf_init(&tmp, 0);
    int rc = mk_template_json_escape(&tmp, (mk_str_t){data, len});
    if (rc == 0)
        rc = emit_lit(b, tmp.data ? tmp.data : "", tmp.len);
    mk_buf_free(&tmp);
    return rc;
}

/* ---- placeholder parsing ---- */

static bool is_ident(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

static bool has_prefix(const char *s, size_t len, const char *p)
{
    size_t n = strlen(p);
    return len >= n && memcmp(s, p, n) == 0;
}

/* Length of a run of identifier characters (plus any in extra). */
static size_t span(const char *s, size_t len, const char *extra)
{
    size_t i = 0;
    while (i < len && (is_ident(s[i]) || (extra && s[i] != '\0' && strchr(extra, s[i]))))
        i++;
    return i;
}

/* Index of the ')' closing the '(' at s[0], or 0 when unbalanced. Only $.fake's arguments use it:
 * the scan either ends the compile (unbalanced) or the bytes it covered are consumed, so the
 * compile stays linear. */
static size_t closing_paren(const char *s, size_t len)
{
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '(')
            depth++;
        else if (s[i] == ')' && --depth == 0)
            return i;
    }
    return 0;
}

/* Index of the ']' closing the '[' at s[0], or 0 when there is none. Outside quotes the scan stops
 * at the next '[', so a run of unclosed brackets ("$.req[$.req[...") is not rescanned to the end
 * from each of them: every byte is visited outside quotes from one bracket only, and a quoted run
 * once, which keeps the template compile linear. */
static size_t closing_bracket(const char *s, size_t len)
{
    char quote = 0;
    for (size_t j = 1; j < len; j++) {
        char c = s[j];
        if (quote) {
            if (c == '\\')
                j++;
            else if (c == quote)
                quote = 0;
        } else if (c == ']') {
            return j;
        } else if (c == '[') {
            return 0;
        } else if (c == '\'' || c == '"') {
            quote = c;
        }
    }
    return 0;
}

/* Length of a JSONPath tail after $.req / $.body: dotted names, [index] and ['quoted'] parts. */
static size_t path_span(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] == '.' && i + 1 < len && (is_ident(s[i + 1]) || s[i + 1] == '*')) {
            i++;
            i += span(s + i, len - i, "*");
        } else if (s[i] == '[') {
            size_t j = closing_bracket(s + i, len - i);
            if (j == 0)
                break;
            i += j + 1;
        } else {
            break;
        }
    }
    return i;
}

typedef struct parse_ctx {
    builder_t *b;
    int depth;   /* placeholders the one being parsed is nested in */
    size_t base; /* offset of the string being parsed, for positions in messages */
    mk_err_t *err;
} parse_ctx_t;

static int parse_fail(parse_ctx_t *p, size_t pos, const char *what, const char *detail)
{
    return mk_err_set(p->err, MK_EINVAL, "%s: %s%s%s at %zu",
                      p->b->where.data ? p->b->where.data : "template", what, detail ? ": " : "",
                      detail ? detail : "", p->base + pos);
}

static expr_t *expr_new(expr_kind_t kind, const char *name, size_t name_len)
{
    expr_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->kind = kind;
    e->index = -1;
    if (name != NULL) {
        e->name = mk_str_dup((mk_str_t){name, name_len});
        e->name_len = name_len;
        if (e->name == NULL) {
            free(e);
            return NULL;
        }
    }
    return e;
}

static long parse_placeholder(parse_ctx_t *p, const char *s, size_t len, size_t pos, expr_t **out);

/* Store keys may contain dots; a trailing dot ends the sentence, not the key. */
static size_t trim_dots(const char *s, size_t n)
{
    while (n > 0 && s[n - 1] == '.')
        n--;
    return n;
}

static size_t skip_space(const char *s, size_t len, size_t i)
{
    while (i < len && isspace((unsigned char)s[i]))
        i++;
    return i;
}

/* $.increment( <placeholder> ): the operand is parsed in place and then the ')' is expected, so
 * nesting costs no rescan for the closing parenthesis; the depth is bounded before recursing. */
static long parse_increment(parse_ctx_t *p, const char *s, size_t len, size_t pos, expr_t **out)
{
    if (p->depth >= MK_TEMPLATE_MAX_NESTING) {
        char what[64];
        snprintf(what, sizeof what, "placeholders nested deeper than %d", MK_TEMPLATE_MAX_NESTING);
        return parse_fail(p, pos, what, NULL);
    }
    size_t i = skip_space(s, len, strlen("$.increment("));
    expr_t *inner = NULL;
    p->depth++;
    long used = parse_placeholder(p, s + i, len - i, pos + i, &inner);
    p->depth--;
    if (used < 0)
        return used;
    if (used > 0)
        i = skip_space(s, len, i + (size_t)used);
    if (used == 0 || i >= len || s[i] != ')') {
        expr_free(inner);
        if (used > 0 && i >= len)
            return parse_fail(p, pos, "unbalanced parentheses in $.increment", NULL);
        return parse_fail(p, pos, "$.increment expects one placeholder, e.g. $.increment($.gS.n)",
                          NULL);
    }
    expr_t *e = expr_new(EX_INCREMENT, NULL, 0);
    if (e == NULL) {
        expr_free(inner);
        return MK_ENOMEM;
    }
    e->inner = inner;
    p->b->uses_store = true;
    *out = e;
    return (long)i + 1;
}

static long parse_fake(parse_ctx_t *p, const char *s, size_t len, size_t pos, expr_t **out)
{
    const char *name = s + strlen("$.fake.");
    size_t name_len = span(name, len - (size_t)(name - s), NULL);
    if (name_len == 0)
        return 0;
    const char *after = name + name_len;
    size_t rest = len - (size_t)(after - s);
    mk_str_t args = {"", 0};
    size_t used = (size_t)(after - s);
    if (rest > 0 && *after == '(') {
        size_t close = closing_paren(after, rest);
        if (close == 0)
            return parse_fail(p, pos, "unbalanced parentheses in $.fake", NULL);
        args = (mk_str_t){after + 1, close - 1};
        used += close + 1;
    }
    mk_err_t ferr;
    mk_faker_call_t *call = NULL;
    if (mk_faker_compile((mk_str_t){name, name_len}, args, &call, &ferr) != 0)
        return parse_fail(p, pos, ferr.msg, NULL);
    expr_t *e = expr_new(EX_FAKE, NULL, 0);
    if (e == NULL) {
        mk_faker_call_free(call);
        return MK_ENOMEM;
    }
    e->fake = call;
    *out = e;
    return (long)used;
}

static long parse_body(parse_ctx_t *p, const char *s, size_t len, size_t pos, size_t head,
                       expr_t **out)
{
    /* "$.req" must not be the start of a longer word ("$.request"). */
    if (head < len && is_ident(s[head]))
        return 0;
    size_t n = path_span(s + head, len - head);
    n = trim_dots(s + head, n);
    if (n == 0) {
        *out = expr_new(EX_BODY, NULL, 0);
        return *out ? (long)head : MK_ENOMEM;
    }
    char *expr = malloc(n + 2);
    if (expr == NULL)
        return MK_ENOMEM;
    expr[0] = '$';
    memcpy(expr + 1, s + head, n);
    expr[n + 1] = '\0';
    mk_err_t perr;
    mk_jsonpath_t *path = NULL;
    int rc = mk_jsonpath_compile(expr, &path, &perr);
    free(expr);
    if (rc != 0)
        return parse_fail(p, pos, "invalid JSONPath", perr.msg);
    expr_t *e = expr_new(EX_BODY_PATH, NULL, 0);
    if (e == NULL) {
        mk_jsonpath_free(path);
        return MK_ENOMEM;
    }
    e->path = path;
    *out = e;
    return (long)(head + n);
}

/* Parses a placeholder at s[0] (which starts with "$."). Returns the bytes consumed, 0 when the
 * text is not a placeholder (a literal "$."), or a negative MK_E code with err filled. */
static long parse_placeholder(parse_ctx_t *p, const char *s, size_t len, size_t pos, expr_t **out)
{
    *out = NULL;
    if (!has_prefix(s, len, "$."))
        return 0;
    static const struct {
        const char *prefix;
        expr_kind_t kind;
        const char *extra; /* further characters a name may hold */
        mk_template_store_t store;
    } named[] = {
        {"$.pathParam.", EX_PATH_PARAM, NULL, 0},     {"$.queryParam.", EX_QUERY_PARAM, NULL, 0},
        {"$.reqHeader.", EX_HEADER, NULL, 0},         {"$.gS.", EX_STORE, ".:", MK_TEMPLATE_GLOBAL},
        {"$.cS.", EX_STORE, ".:", MK_TEMPLATE_CHAIN}, {"$.mS.", EX_STORE, ".:", MK_TEMPLATE_MOCK},
    };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        if (!has_prefix(s, len, named[i].prefix))
            continue;
        size_t head = strlen(named[i].prefix);
        size_t n = span(s + head, len - head, named[i].extra);
        if (named[i].kind == EX_STORE)
            n = trim_dots(s + head, n);
        if (n == 0)
            return 0;
        expr_t *e = expr_new(named[i].kind, s + head, n);
        if (e == NULL)
            return MK_ENOMEM;
        e->store = named[i].store;
        size_t used = head + n;
        if (named[i].kind == EX_HEADER && used < len && s[used] == '[') {
            size_t j = used + 1;
            long index = 0;
            while (j < len && isdigit((unsigned char)s[j]) && index < 1000000)
                index = index * 10 + (s[j++] - '0');
            if (j < len && s[j] == ']' && j > used + 1) {
                e->index = index;
                used = j + 1;
            }
        }
        if (named[i].kind == EX_STORE)
            p->b->uses_store = true;
        *out = e;
        return (long)used;
    }
    if (has_prefix(s, len, "$.fake."))
        return parse_fake(p, s, len, pos, out);
    if (has_prefix(s, len, "$.increment("))
        return parse_increment(p, s, len, pos, out);
    if (has_prefix(s, len, "$.req"))
        return parse_body(p, s, len, pos, strlen("$.req"), out);
    if (has_prefix(s, len, "$.body"))
        return parse_body(p, s, len, pos, strlen("$.body"), out);
    return 0;
}

/* Compiles one string: in JSON (as a JSON string, or typed when it is one placeholder) or as
 * text. */
static int count_placeholder(parse_ctx_t *p, size_t pos)
{
    if (++p->b->nplaceholders <= MK_TEMPLATE_MAX_PLACEHOLDERS)
        return 0;
    char what[64];
    snprintf(what, sizeof what, "more than %d placeholders", MK_TEMPLATE_MAX_PLACEHOLDERS);
    return parse_fail(p, pos, what, NULL);
}

static int compile_string(builder_t *b, const char *s, size_t len, bool json, mk_err_t *err)
{
    parse_ctx_t p = {.b = b, .base = 0, .err = err};
    expr_t *e = NULL;
    long used;
    if (json) {
        used = parse_placeholder(&p, s, len, 0, &e);
        if (used < 0)
            return (int)used;
        if (used > 0 && (size_t)used == len) {
            int rc = count_placeholder(&p, 0);
            if (rc == 0)
                rc = push_op(b, (op_t){.expr = e, .mode = MODE_TYPED});
            if (rc != 0)
                expr_free(e);
            return rc;
        }
        expr_free(e);
        e = NULL;
    }
    int rc = json ? emit_lit(b, "\"", 1) : 0;
    size_t start = 0;
    for (size_t i = 0; rc == 0 && i + 1 < len;) {
        if (s[i] != '$' || s[i + 1] != '.') {
            i++;
            continue;
        }
        used = parse_placeholder(&p, s + i, len - i, i, &e);
        if (used < 0)
            return (int)used;
        if (used == 0) {
            i += 2;
            continue;
        }
        rc = count_placeholder(&p, i);
        if (rc == 0)
            rc = json ? emit_lit_escaped(b, s + start, i - start)
                      : emit_lit(b, s + start, i - start);
        if (rc == 0)
            rc = push_op(b, (op_t){.expr = e, .mode = json ? MODE_ESCAPED : MODE_RAW});
        if (rc != 0)
            expr_free(e);
        e = NULL;
        i += (size_t)used;
        start = i;
    }
    if (rc == 0)
        rc = json ? emit_lit_escaped(b, s + start, len - start)
                  : emit_lit(b, s + start, len - start);
    if (rc == 0 && json)
        rc = emit_lit(b, "\"", 1);
    return rc;
}

static int compile_value(builder_t *b, const json_t *v, int depth, mk_err_t *err);

/* Compiles the member key (or, when key is NULL, the element index) of a container, with its
 * place added to the location that errors name for as long as it takes. */
static int compile_child(builder_t *b, const json_t *child, const char *key, size_t index,
                         int depth, mk_err_t *err)
{
    size_t mark = b->where.len;
    int rc =
        key ? mk_buf_appendf(&b->where, ".%s", key) : mk_buf_appendf(&b->where, "[%zu]", index);
    if (rc == 0)
        rc = compile_value(b, child, depth + 1, err);
    b->where.len = mark;
    if (b->where.data)
        b->where.data[mark] = '\0';
    return rc;
}

static int dump_scalar(builder_t *b, const json_t *v)
{
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (text == NULL)
        return MK_ENOMEM;
    int rc = emit_lit(b, text, strlen(text));
    free(text);
    return rc;
}

static int compile_value(builder_t *b, const json_t *v, int depth, mk_err_t *err)
{
    if (depth > MK_TEMPLATE_MAX_DEPTH)
        return mk_err_set(err, MK_EINVAL, "%s: nested deeper than %d levels", b->where.data,
                          MK_TEMPLATE_MAX_DEPTH);
    int rc = 0;
    if (json_is_string(v)) {
        rc = compile_string(b, json_string_value(v), json_string_length(v), true, err);
    } else if (json_is_object(v)) {
        const char *key;
        json_t *child;
        bool first = true;
        rc = emit_lit(b, "{", 1);
        json_object_foreach((json_t *)v, key, child)
        {
            if (rc == 0 && !first)
                rc = emit_lit(b, ",", 1);
            first = false;
            if (rc == 0)
                rc = emit_lit(b, "\"", 1);
            if (rc == 0)
                rc = emit_lit_escaped(b, key, strlen(key));
            if (rc == 0)
                rc = emit_lit(b, "\":", 2);
            if (rc == 0)
                rc = compile_child(b, child, key, 0, depth, err);
            if (rc != 0)
                break;
        }
        if (rc == 0)
            rc = emit_lit(b, "}", 1);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        rc = emit_lit(b, "[", 1);
        json_array_foreach((json_t *)v, i, child)
        {
            if (rc == 0 && i > 0)
                rc = emit_lit(b, ",", 1);
            if (rc == 0)
                rc = compile_child(b, child, NULL, i, depth, err);
            if (rc != 0)
                break;
        }
        if (rc == 0)
            rc = emit_lit(b, "]", 1);
    } else {
        rc = dump_scalar(b, v);
    }
    if (rc != 0 && err != NULL && err->code == 0)
        mk_err_set(err, rc, "%s: out of memory compiling the template", b->where.data);
    return rc;
}

static int finish(builder_t *b, int rc, mk_template_t **out, mk_err_t *err)
{
    mk_template_t *t = NULL;
    if (rc == 0) {
        t = calloc(1, sizeof *t);
        if (t == NULL)
            rc = MK_ENOMEM;
    }
    if (rc != 0) {
        for (size_t i = 0; i < b->nops; i++)
            expr_free(b->ops[i].expr);
        free(b->ops);
        mk_buf_free(&b->lit);
        mk_buf_free(&b->where);
        if (err != NULL && err->code == 0)
            mk_err_set(err, rc, "template: out of memory");
        return rc;
    }
    t->lit_len = b->lit.len;
    t->lit = b->lit.data ? mk_buf_take(&b->lit) : strdup("");
    t->ops = b->ops;
    t->nops = b->nops;
    t->uses_store = b->uses_store;
    mk_buf_free(&b->where);
    *out = t;
    return t->lit ? 0 : (mk_template_free(t), MK_ENOMEM);
}

static void builder_init(builder_t *b, const char *where)
{
    memset(b, 0, sizeof *b);
    mk_buf_init(&b->lit, 0);
    mk_buf_init(&b->where, 0);
    mk_buf_append_str(&b->where, where ? where : "template");
}

int mk_template_compile_json(const json_t *value, const char *where, mk_template_t **out,
                             mk_err_t *err)
{
    builder_t b;
    builder_init(&b, where);
    if (err != NULL)
        err->code = 0;
    int rc = compile_value(&b, value, 0, err);
    return finish(&b, rc, out, err);
}

int mk_template_compile_text(mk_str_t text, const char *where, mk_template_t **out, mk_err_t *err)
{
    builder_t b;
    builder_init(&b, where);
    if (err != NULL)
        err->code = 0;
    int rc = compile_string(&b, text.base, text.len, false, err);
    return finish(&b, rc, out, err);
}

bool mk_template_is_static(const mk_template_t *t)
{
    return t->nops == 0 || (t->nops == 1 && t->ops[0].expr == NULL);
}

mk_str_t mk_template_literal(const mk_template_t *t)
{
    if (t->nops == 0)
        return (mk_str_t){t->lit, 0};
    return (mk_str_t){t->lit + t->ops[0].off, t->ops[0].len};
}

bool mk_template_uses_store(const mk_template_t *t)
{
    return t->uses_store;
}

bool mk_template_increments(const mk_template_t *t, mk_template_store_t *store, mk_str_t *key)
{
    if (t->nops != 1 || t->ops[0].expr == NULL || t->ops[0].mode != MODE_TYPED)
        return false;
    const expr_t *e = t->ops[0].expr;
    if (e->kind != EX_INCREMENT || e->inner->kind != EX_STORE)
        return false;
    *store = e->inner->store;
    *key = (mk_str_t){e->inner->name, e->inner->name_len};
    return true;
}

/* ---- rendering ---- */

typedef struct render {
    mk_template_env_t *env;
    mk_buf_t *out;
    mk_buf_t tmp; /* scratch for values that need a second pass */
    mk_err_t *err;
} render_t;

static int put_missing(render_t *r, mode_t_ mode)
{
    return mode == MODE_TYPED ? mk_buf_append(r->out, "null", 4) : 0;
}

static int put_string(render_t *r, mk_str_t s, mode_t_ mode)
{
    if (mode == MODE_RAW)
        return mk_buf_append(r->out, s.base, s.len);
    if (mode == MODE_ESCAPED)
        return mk_template_json_escape(r->out, s);
    int rc = mk_buf_append(r->out, "\"", 1);
    if (rc == 0)
        rc = mk_template_json_escape(r->out, s);
    if (rc == 0)
        rc = mk_buf_append(r->out, "\"", 1);
    return rc;
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    return mk_buf_append(data, buf, size) == 0 ? 0 : -1;
}

/* Writes a JSON value: as is when typed, as text otherwise. */
static int put_json(render_t *r, json_t *v, mode_t_ mode)
{
    if (json_is_string(v))
        return put_string(r, (mk_str_t){json_string_value(v), json_string_length(v)}, mode);
    if (mode != MODE_ESCAPED)
        return json_dump_callback(v, dump_cb, r->out, JSON_ENCODE_ANY | JSON_COMPACT) == 0
                   ? 0
                   : MK_ETOOBIG;
    mk_buf_reset(&r->tmp);
    if (json_dump_callback(v, dump_cb, &r->tmp, JSON_ENCODE_ANY | JSON_COMPACT) != 0)
        return MK_ETOOBIG;
    return mk_template_json_escape(r->out, (mk_str_t){r->tmp.data, r->tmp.len});
}

/* Writes stored JSON text (in r->tmp) in the given mode. */
static int put_json_text(render_t *r, mk_str_t text, mode_t_ mode)
{
    if (mode == MODE_TYPED)
        return mk_buf_append(r->out, text.base, text.len);
    if (text.len >= 2 && text.base[0] == '"' && text.base[text.len - 1] == '"') {
        /* A JSON string: its inside is already escaped JSON. */
        if (mode == MODE_ESCAPED)
            return mk_buf_append(r->out, text.base + 1, text.len - 2);
        json_t *v = json_loadb(text.base, text.len, JSON_DECODE_ANY, NULL);
        if (v == NULL)
            return mk_buf_append(r->out, text.base, text.len);
        int rc = put_json(r, v, mode);
        json_decref(v);
        return rc;
    }
    return mode == MODE_ESCAPED ? mk_template_json_escape(r->out, text)
                                : mk_buf_append(r->out, text.base, text.len);
}

static bool find_param(const mk_route_match_t *m, mk_str_t name, mk_str_t *value)
{
    if (m == NULL)
        return false;
    for (size_t i = 0; i < m->nparams; i++) {
        if (mk_str_eq(m->names[i], name)) {
            *value = m->values[i];
            return true;
        }
    }
    return false;
}

static int put_headers(render_t *r, const expr_t *e, mode_t_ mode)
{
    mk_str_t name = {e->name, e->name_len};
    mk_request_t *req = r->env->req;
    if (e->index >= 0) {
        mk_str_t vals[16];
        size_t want = (size_t)e->index + 1;
        if (want > 16)
            return put_missing(r, mode);
        size_t n = mk_request_header_values(req, name, vals, want);
        if (n < want)
            return put_missing(r, mode);
        return put_string(r, vals[e->index], mode);
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < req->nheaders; i++)
        if (mk_str_caseeq(req->headers[i].name, name))
            json_array_append_new(
                arr, json_stringn(req->headers[i].value.base, req->headers[i].value.len));
    if (arr == NULL)
        return MK_ENOMEM;
    int rc = json_array_size(arr) ? put_json(r, arr, mode) : put_missing(r, mode);
    json_decref(arr);
    return rc;
}

static int store_read(render_t *r, const expr_t *e, mk_buf_t *into, bool *found)
{
    *found = false;
    if (r->env->store_get == NULL)
        return 0;
    int rc = r->env->store_get(r->env->store_ud, e->store, (mk_str_t){e->name, e->name_len}, into,
                               r->err);
    if (rc == MK_ENOTFOUND)
        return 0;
    *found = rc == 0;
    return rc;
}

static mk_faker_rng_t *thread_rng(void)
{
    static _Thread_local mk_faker_rng_t rng;
    static _Thread_local bool seeded;
    if (!seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        mk_faker_rng_seed(&rng, (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
                                    (uint64_t)(uintptr_t)&rng);
        seeded = true;
    }
    return &rng;
}

static int eval(render_t *r, const expr_t *e, mode_t_ mode, int depth);

static int eval_increment(render_t *r, const expr_t *e, mode_t_ mode, int depth)
{
    char num[32];
    const expr_t *in = e->inner;
    if (in->kind == EX_STORE) {
        if (r->env->store_incr == NULL)
            return put_missing(r, mode);
        int64_t result = 0;
        int rc = r->env->store_incr(r->env->store_ud, in->store, (mk_str_t){in->name, in->name_len},
                                    1, &result, r->err);
        if (rc != 0)
            return rc;
        snprintf(num, sizeof num, "%" PRId64, result);
        return mk_buf_append(r->out, num, strlen(num));
    }
    /* Any other operand: its value plus one, nothing stored. */
    mk_buf_t *saved = r->out;
    mk_buf_t val;
    mk_buf_init(&val, 4096);
    r->out = &val;
    int rc = eval(r, in, MODE_RAW, depth + 1);
    r->out = saved;
    double x = val.data ? strtod(val.data, NULL) : 0;
    mk_buf_free(&val);
    if (rc != 0)
        return rc;
    if (x == floor(x) && fabs(x) < 9e15)
        snprintf(num, sizeof num, "%" PRId64, (int64_t)x + 1);
    else
        snprintf(num, sizeof num, "%.17g", x + 1);
    return mk_buf_append(r->out, num, strlen(num));
}

static int eval(render_t *r, const expr_t *e, mode_t_ mode, int depth)
{
    mk_template_env_t *env = r->env;
    /* The compiler refuses deeper nesting; this only guards against a template built otherwise. */
    if (depth > MK_TEMPLATE_MAX_NESTING)
        return mk_err_set(r->err, MK_EINTERNAL, "placeholders nested deeper than %d",
                          MK_TEMPLATE_MAX_NESTING);
    mk_str_t v;
    switch (e->kind) {
    case EX_PATH_PARAM:
        if (!find_param(env->match, (mk_str_t){e->name, e->name_len}, &v))
            return put_missing(r, mode);
        return put_string(r, v, mode);
    case EX_QUERY_PARAM:
        if (!mk_request_query_param(env->req, (mk_str_t){e->name, e->name_len}, &v))
            return put_missing(r, mode);
        return put_string(r, v, mode);
    case EX_HEADER:
        return put_headers(r, e, mode);
    case EX_BODY:
        if (env->req->body.len == 0)
            return put_missing(r, mode);
        if (mode == MODE_TYPED && mk_request_json(env->req) != NULL)
            return mk_buf_append(r->out, env->req->body.base, env->req->body.len);
        return put_string(r, env->req->body, mode);
    case EX_BODY_PATH: {
        json_t *root = mk_request_json(env->req);
        json_t *val = root ? mk_jsonpath_eval(e->path, root) : NULL;
        return val ? put_json(r, val, mode) : put_missing(r, mode);
    }
    case EX_STORE: {
        mk_buf_reset(&r->tmp);
        bool found;
        int rc = store_read(r, e, &r->tmp, &found);
        if (rc != 0)
            return rc;
        if (!found)
            return put_missing(r, mode);
        /* put_json_text may reuse tmp; hand it a copy of the slice's owner. */
        mk_buf_t text = r->tmp;
        mk_buf_init(&r->tmp, 0);
        rc = put_json_text(r, (mk_str_t){text.data, text.len}, mode);
        mk_buf_free(&text);
        return rc;
    }
    case EX_FAKE: {
        mk_faker_rng_t *rng = env->rng ? env->rng : thread_rng();
        if (mk_faker_call_kind(e->fake) != MK_FAKER_STRING)
            return mk_faker_gen(e->fake, rng, env->now_ms, r->out);
        mk_buf_reset(&r->tmp);
        int rc = mk_faker_gen(e->fake, rng, env->now_ms, &r->tmp);
        if (rc != 0)
            return rc;
        return put_string(r, (mk_str_t){r->tmp.data ? r->tmp.data : "", r->tmp.len}, mode);
    }
    case EX_INCREMENT:
        return eval_increment(r, e, mode, depth);
    }
    return MK_EINTERNAL;
}

int mk_template_render(const mk_template_t *t, mk_template_env_t *env, mk_buf_t *out, mk_err_t *err)
{
    render_t r = {.env = env, .out = out, .err = err};
    mk_buf_init(&r.tmp, 0);
    if (err != NULL)
        err->code = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < t->nops; i++) {
        const op_t *op = &t->ops[i];
        rc = op->expr ? eval(&r, op->expr, op->mode, 0)
                      : mk_buf_append(out, t->lit + op->off, op->len);
    }
    mk_buf_free(&r.tmp);
    if (rc != 0 && err != NULL && rc != err->code)
        mk_err_set(err, rc, "rendering the response: output too large or out of memory");
    return rc;
}
