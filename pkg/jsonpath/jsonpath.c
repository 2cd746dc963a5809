/* The JSONPath subset that selects one value: a compiler from text to a flat list of steps, and an
 * evaluator that walks them without allocating. */
#include "jsonpath/jsonpath.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* An index has at most this many digits, so it always fits a long long. */
#define MAX_INDEX_DIGITS 18

typedef enum step_type {
    STEP_KEY,
    STEP_INDEX,
} step_type_t;

typedef struct step {
    step_type_t type;
    const char *key; /* NUL-terminated, points into the path's key storage */
    size_t key_len;
    /* A dotted key made only of digits also indexes arrays (`items.0.sku`), as gjson does. */
    bool key_is_index;
    long long index; /* negative counts from the end */
} step_t;

struct mk_jsonpath {
    char *source;
    size_t nsteps;
    step_t *steps;
    char *keys;
};

/* The parser runs twice: once to validate and count (path == NULL), then to fill. */
typedef struct parser {
    const char *s;
    size_t pos;
    mk_jsonpath_t *path; /* NULL on the counting pass */
    size_t nsteps;
    size_t keys_used;
    mk_err_t *err;
} parser_t;

static int fail_at(parser_t *p, size_t pos, const char *what)
{
    return mk_err_set(p->err, MK_EINVAL, "%s at %zu", what, pos);
}

static int fail_unexpected(parser_t *p, size_t pos)
{
    char c = p->s[pos];
    if (c == '\0')
        return fail_at(p, pos, "unexpected end of path");
    if ((unsigned char)c < 0x20 || c == 0x7f)
        return mk_err_set(p->err, MK_EINVAL, "unexpected control character 0x%02x at %zu",
                          (unsigned)(unsigned char)c, pos);
    return mk_err_set(p->err, MK_EINVAL, "unexpected '%c' at %zu", c, pos);
}

static bool is_digits(const char *s, size_t len)
{
    if (len == 0 || len > MAX_INDEX_DIGITS)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

static long long digits_value(const char *s, size_t len)
{
    long long v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* Appends a key step; key bytes are copied (unescaped by the caller) into the key storage. */
static char *begin_key(parser_t *p)
{
    if (p->path == NULL)
        return NULL;
    return p->path->keys + p->keys_used;
}

static void end_key(parser_t *p, size_t len, bool dotted)
{
    if (p->path != NULL) {
        char *k = p->path->keys + p->keys_used;
        k[len] = '\0';
        step_t *st = &p->path->steps[p->nsteps];
        st->type = STEP_KEY;
        st->key = k;
        st->key_len = len;
        st->key_is_index = dotted && is_digits(k, len);
        st->index = st->key_is_index ? digits_value(k, len) : 0;
    }
    p->keys_used += len + 1;
    p->nsteps++;
}

static bool name_char(char c)
{
    unsigned char u = (unsigned char)c;
    if (u <= 0x20 || u == 0x7f)
        return false;
    return c != '.' && c != '[' && c != ']' && c != '*' && c != '\'' && c != '"';
}

/* An unquoted name: after '.', or the first segment when there is no leading '$'. */
static int parse_name(parser_t *p)
{
    size_t start = p->pos;
    if (p->s[start] == '.')
        return fail_at(p, start - 1, "recursive descent '..' is not supported");
    if (p->s[start] == '*')
        return fail_at(p, start, "wildcard '*' is not supported");
    if (!name_char(p->s[start])) {
        if (p->s[start] == '\0' || p->s[start] == '[')
            return fail_at(p, start, "expected a name");
        return fail_unexpected(p, start);
    }
    while (name_char(p->s[p->pos]))
        p->pos++;
    size_t len = p->pos - start;
    char *k = begin_key(p);
    if (k != NULL)
        memcpy(k, p->s + start, len);
    end_key(p, len, true);
    return 0;
}

/* ['key'] or ["key"]; p->pos is on the quote. Backslash escapes the next character. */
static int parse_quoted(parser_t *p)
{
    char quote = p->s[p->pos];
    size_t open = p->pos - 1;
    p->pos++;
    char *k = begin_key(p);
    size_t len = 0;
    for (;;) {
        char c = p->s[p->pos];
        if (c == '\0')
            return fail_at(p, open, "unterminated quoted key starting");
        if (c == quote)
            break;
        if (c == '\\') {
            p->pos++;
            c = p->s[p->pos];
            if (c == '\0')
                return fail_at(p, open, "unterminated quoted key starting");
        }
        if (k != NULL)
            k[len] = c;
        len++;
        p->pos++;
    }
    p->pos++; /* closing quote */
    if (p->s[p->pos] != ']')
        return p->s[p->pos] == '\0' ? fail_at(p, p->pos, "expected ']'")
                                    : fail_unexpected(p, p->pos);
    p->pos++;
    end_key(p, len, false);
    return 0;
}

/* [N] or [-N]; p->pos is on the first character after '['. */
static int parse_index(parser_t *p)
{
    size_t start = p->pos;
    bool neg = false;
    if (p->s[p->pos] == '-') {
        neg = true;
        p->pos++;
    }
    size_t dstart = p->pos;
    while (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        p->pos++;
    size_t nd = p->pos - dstart;
    if (nd == 0)
        return fail_unexpected(p, p->pos);
    if (nd > MAX_INDEX_DIGITS)
        return fail_at(p, start, "index too large");
    if (p->s[p->pos] == ':')
        return fail_at(p, p->pos, "slices are not supported");
    if (p->s[p->pos] == ',')
        return fail_at(p, p->pos, "unions are not supported");
    if (p->s[p->pos] != ']')
        return p->s[p->pos] == '\0' ? fail_at(p, p->pos, "expected ']'")
                                    : fail_unexpected(p, p->pos);
    p->pos++;
    if (p->path != NULL) {
        long long v = digits_value(p->s + dstart, nd);
        step_t *st = &p->path->steps[p->nsteps];
        st->type = STEP_INDEX;
        st->key = NULL;
        st->key_len = 0;
        st->key_is_index = false;
        st->index = neg ? -v : v;
    }
    p->nsteps++;
    return 0;
}

static int parse_bracket(parser_t *p)
{
    p->pos++; /* '[' */
    char c = p->s[p->pos];
    if (c == '\'' || c == '"')
        return parse_quoted(p);
    if (c == '*')
        return fail_at(p, p->pos, "wildcard '*' is not supported");
    if (c == '?' || c == '(')
        return fail_at(p, p->pos, "filter expressions are not supported");
    if (c == ':')
        return fail_at(p, p->pos, "slices are not supported");
    return parse_index(p);
}

static int parse(parser_t *p)
{
    const char *s = p->s;
    if (s[p->pos] == '\0')
        return fail_at(p, p->pos, "empty path");
    /* `$`, a leading `[`, or `.name` (jq style) start at the root; anything else is a name. */
    if (s[p->pos] == '$') {
        p->pos++;
    } else if (s[p->pos] != '[' && s[p->pos] != '.') {
        int rc = parse_name(p);
        if (rc < 0)
            return rc;
    }
    while (s[p->pos] != '\0') {
        int rc;
        if (s[p->pos] == '.') {
            p->pos++;
            rc = parse_name(p);
        } else if (s[p->pos] == '[') {
            rc = parse_bracket(p);
        } else {
            rc = fail_unexpected(p, p->pos);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mk_jsonpath_compile(const char *expr, mk_jsonpath_t **out, mk_err_t *err)
{
    int rc = 0;
    mk_jsonpath_t *path = NULL;
    *out = NULL;
    if (expr == NULL)
        return mk_err_set(err, MK_EINVAL, "empty path at 0");

    parser_t p = {.s = expr, .err = err};
    rc = parse(&p);
    if (rc < 0)
        goto out;

    path = calloc(1, sizeof *path);
    if (path == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    path->source = strdup(expr);
    path->steps = calloc(p.nsteps ? p.nsteps : 1, sizeof *path->steps);
    path->keys = malloc(p.keys_used ? p.keys_used : 1);
    if (path->source == NULL || path->steps == NULL || path->keys == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    parser_t fill = {.s = expr, .path = path, .err = err};
    rc = parse(&fill);
    if (rc < 0)
        goto out;
    path->nsteps = fill.nsteps;
    *out = path;
    path = NULL;
out:
    mk_jsonpath_free(path);
    return rc;
}

void mk_jsonpath_free(mk_jsonpath_t *path)
{
    if (path == NULL)
        return;
    free(path->source);
    free(path->steps);
    free(path->keys);
    free(path);
}

static json_t *array_at(json_t *arr, long long index)
{
    long long n = (long long)json_array_size(arr);
    if (index < 0)
        index += n;
    if (index < 0 || index >= n)
        return NULL;
    return json_array_get(arr, (size_t)index);
}

json_t *mk_jsonpath_eval(const mk_jsonpath_t *path, json_t *root)
{
    json_t *cur = root;
    for (size_t i = 0; i < path->nsteps && cur != NULL; i++) {
        const step_t *st = &path->steps[i];
        if (st->type == STEP_INDEX) {
            cur = json_is_array(cur) ? array_at(cur, st->index) : NULL;
        } else if (json_is_object(cur)) {
            cur = json_object_getn(cur, st->key, st->key_len);
        } else if (json_is_array(cur) && st->key_is_index) {
            cur = array_at(cur, st->index);
        } else {
            cur = NULL;
        }
    }
    return cur;
}

const char *mk_jsonpath_source(const mk_jsonpath_t *path)
{
    return path->source;
}
