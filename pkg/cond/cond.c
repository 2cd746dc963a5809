/* Request conditions: validation and compilation of `{path, assertAction, value, sortArray}`,
 * and their evaluation against a request without allocating (except sortArray on big values). */
#include "cond/cond.h"

#include "jsonpath/jsonpath.h"
#include "regex/regex.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum action {
    ACT_EQUALS,
    ACT_NOT_EQUALS,
    ACT_CONTAINS,
    ACT_NOT_CONTAINS,
    ACT_ANY,
    ACT_NOT_EMPTY,
    ACT_EMPTY,
    ACT_MATCHES,
} action_t;

/* Mockarty's spelling, indexed by action_t. */
static const char *const action_names[] = {
    "equals", "not_equals", "contains", "not_contains", "any", "notEmpty", "empty", "matches",
};
#define NACTIONS (sizeof action_names / sizeof action_names[0])

static const char *const kind_names[] = {"body", "query", "header"};

/* Longest text of a number: shortest round-trip %g of a double or a 64-bit integer. */
#define NUM_TEXT_MAX 32

struct mk_cond {
    mk_cond_kind_t kind;
    action_t action;
    bool sort_array;
    char *path;
    mk_str_t path_str;
    mk_jsonpath_t *jsonpath; /* body only */
    json_t *value;           /* deep copy, NULL when absent (compares as null) */
    mk_regex_t *re;          /* matches only */
    /* The text of a scalar value, for text comparisons: a string's bytes, a number's shortest
     * text, "true"/"false". has_text is false for null, arrays and objects. */
    bool has_text;
    mk_str_t text;
    char num_text[NUM_TEXT_MAX];
    /* sortArray with an array or object value: the value's canonical form (see canon_value) and
     * the work it took, which bounds the work spent on a request's value. */
    char *canon;
    size_t canon_len;
    size_t canon_work;
};

/* ---- text of scalars ---------------------------------------------------------------------- */

/* The shortest %g text that reads back as the same double ("1.5", "0.1", "1e+21"). */
static size_t format_real(double d, char *buf, size_t size)
{
    int n = 0;
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return n < 0 ? 0 : (size_t)n;
}

/* The text of a scalar JSON value; buf (NUM_TEXT_MAX bytes) holds a number's text. */
static bool scalar_text(const json_t *v, char *buf, mk_str_t *out)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        *out = (mk_str_t){json_string_value(v), json_string_length(v)};
        return true;
    case JSON_INTEGER: {
        int n = snprintf(buf, NUM_TEXT_MAX, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *out = (mk_str_t){buf, (size_t)n};
        return true;
    }
    case JSON_REAL:
        *out = (mk_str_t){buf, format_real(json_real_value(v), buf, NUM_TEXT_MAX)};
        return true;
    case JSON_TRUE:
        *out = MK_STR_LIT("true");
        return true;
    case JSON_FALSE:
        *out = MK_STR_LIT("false");
        return true;
    default:
        return false;
    }
}

/* ---- numbers ------------------------------------------------------------------------------ */

typedef struct number {
    bool is_int;
    long long i;
    double d;
} number_t;

static bool number_of(const json_t *v, number_t *out)
{
    if (json_is_integer(v)) {
        *out = (number_t){true, json_integer_value(v), 0};
        return true;
    }
    if (json_is_real(v)) {
        *out = (number_t){false, 0, json_real_value(v)};
        return true;
    }
    return false;
}

/* Parses text that is exactly one JSON number literal ("5", "-1.5e3"; not " 5", "05", "0x1"). */
static bool number_parse(mk_str_t t, number_t *out)
{
    char buf[64];
    if (t.len == 0 || t.len >= sizeof buf)
        return false;
    size_t i = 0;
    bool frac = false;
    if (t.base[i] == '-')
        i++;
    if (i >= t.len)
        return false;
    if (t.base[i] == '0') {
        i++;
    } else if (t.base[i] >= '1' && t.base[i] <= '9') {
        while (i < t.len && t.base[i] >= '0' && t.base[i] <= '9')
            i++;
    } else {
        return false;
    }
    if (i < t.len && t.base[i] == '.') {
        frac = true;
        size_t d = ++i;
        while (i < t.len && t.base[i] >= '0' && t.base[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < t.len && (t.base[i] == 'e' || t.base[i] == 'E')) {
        frac = true;
        i++;
        if (i < t.len && (t.base[i] == '+' || t.base[i] == '-'))
            i++;
        size_t d = i;
        while (i < t.len && t.base[i] >= '0' && t.base[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i != t.len)
        return false;
    memcpy(buf, t.base, t.len);
    buf[t.len] = '\0';
    if (!frac) {
        errno = 0;
        long long v = strtoll(buf, NULL, 10);
        if (errno == 0) {
            *out = (number_t){true, v, 0};
            return true;
        }
    }
    *out = (number_t){false, 0, strtod(buf, NULL)};
    return true;
}

/* 1 == 1.0; an integer equals a double only when the double is exactly that integer. */
static bool number_eq(number_t a, number_t b)
{
    if (a.is_int && b.is_int)
        return a.i == b.i;
    if (!a.is_int && !b.is_int)
        return a.d == b.d;
    long long i = a.is_int ? a.i : b.i;
    double d = a.is_int ? b.d : a.d;
    /* 2^63 as a double; anything at or beyond it cannot equal a long long. */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != trunc(d))
        return false;
    return (long long)d == i;
}

/* ---- canonical form (sortArray) --------------------------------------------------------- */

/* A byte string that two values share exactly when they are equal with arrays compared as
 * multisets (and 1 == 1.0): every node is encoded prefix-free (null "z", true "t", false "f",
 * number "n<text>;", string "s<len>:<bytes>", array "a<n>[...]", object "o<n>{key value...}"),
 * object members in key order and array elements sorted by their encoding. Sorting makes the
 * comparison O(n log n); the old pairwise matching was O(n^2).
 *
 * The work (bytes written plus bytes moved when sorting) is counted against a limit: the
 * condition's own value gets MK_COND_MAX_SORT_WORK, and a request's value gets the work of the
 * condition's value, since equal forms take equal work. Small values need no heap. */
typedef struct slice {
    uint32_t off, len;
} slice_t;

typedef struct canon {
    char *out;
    size_t len, cap;
    slice_t *sl; /* a stack of element slices of the arrays being sorted */
    size_t nsl, slcap;
    char *tmp; /* scratch for reordering */
    size_t tmpcap;
    size_t work, limit;
    bool over;  /* the limit was reached */
    bool nomem; /* an allocation failed */
    char out_small[512];
    slice_t sl_small[64];
    char tmp_small[512];
} canon_t;

static void canon_init(canon_t *c, size_t limit)
{
    c->out = c->out_small;
    c->len = 0;
    c->cap = sizeof c->out_small;
    c->sl = c->sl_small;
    c->nsl = 0;
    c->slcap = sizeof c->sl_small / sizeof c->sl_small[0];
    c->tmp = c->tmp_small;
    c->tmpcap = sizeof c->tmp_small;
    c->work = 0;
    c->limit = limit;
    c->over = false;
    c->nomem = false;
}

static void canon_release(canon_t *c)
{
    if (c->out != c->out_small)
        free(c->out);
    if (c->sl != c->sl_small)
        free(c->sl);
    if (c->tmp != c->tmp_small)
        free(c->tmp);
}

/* Makes room for need items of size elem in *p (capacity *cap items, inline storage small). */
static bool canon_reserve(canon_t *c, void **p, size_t *cap, size_t need, size_t elem, void *small)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap * 2 > need ? *cap * 2 : need;
    void *np = malloc(ncap * elem);
    if (np == NULL) {
        c->nomem = true;
        return false;
    }
    memcpy(np, *p, *cap * elem);
    if (*p != small)
        free(*p);
    *p = np;
    *cap = ncap;
    return true;
}

static bool canon_charge(canon_t *c, size_t n)
{
    c->work += n;
    if (c->work > c->limit || c->work > UINT32_MAX)
        c->over = true;
    return !c->over && !c->nomem;
}

static bool canon_put(canon_t *c, const void *data, size_t n)
{
    if (!canon_charge(c, n) ||
        !canon_reserve(c, (void **)&c->out, &c->cap, c->len + n, 1, c->out_small))
        return false;
    memcpy(c->out + c->len, data, n);
    c->len += n;
    return true;
}

static bool canon_putf(canon_t *c, char tag, size_t n, char end)
{
    char buf[32];
    int k = snprintf(buf, sizeof buf, "%c%zu%c", tag, n, end);
    return canon_put(c, buf, (size_t)k);
}

static bool canon_string(canon_t *c, const char *s, size_t n)
{
    return canon_putf(c, 's', n, ':') && canon_put(c, s, n);
}

static int slice_cmp(const void *a, const void *b, void *base)
{
    const slice_t *x = a, *y = b;
    const char *p = base;
    int r = memcmp(p + x->off, p + y->off, x->len < y->len ? x->len : y->len);
    if (r != 0)
        return r;
    return x->len < y->len ? -1 : x->len > y->len;
}

static bool canon_value(canon_t *c, const json_t *v);

/* Writes the n children (array elements, or key + value of object members) one after another,
 * then sorts them by their encoding. */
static bool canon_sorted(canon_t *c, const json_t *v, size_t n)
{
    size_t base = c->nsl;
    if (!canon_reserve(c, (void **)&c->sl, &c->slcap, base + n, sizeof *c->sl, c->sl_small))
        return false;
    c->nsl = base + n; /* nested arrays push their slices above ours */
    size_t start = c->len;
    bool ok = true;
    if (json_is_array(v)) {
        for (size_t i = 0; ok && i < n; i++) {
            size_t off = c->len;
            ok = canon_value(c, json_array_get(v, i));
            c->sl[base + i] = (slice_t){(uint32_t)off, (uint32_t)(c->len - off)};
        }
    } else {
        size_t i = 0;
        for (void *it = json_object_iter((json_t *)v); ok && it != NULL && i < n;
             it = json_object_iter_next((json_t *)v, it), i++) {
            size_t off = c->len;
            ok = canon_string(c, json_object_iter_key(it), json_object_iter_key_len(it)) &&
                 canon_value(c, json_object_iter_value(it));
            c->sl[base + i] = (slice_t){(uint32_t)off, (uint32_t)(c->len - off)};
        }
    }
    size_t region = c->len - start;
    ok = ok && canon_charge(c, region) &&
         canon_reserve(c, (void **)&c->tmp, &c->tmpcap, region, 1, c->tmp_small);
    if (ok) {
        qsort_r(c->sl + base, n, sizeof *c->sl, slice_cmp, c->out);
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(c->tmp + o, c->out + c->sl[base + i].off, c->sl[base + i].len);
            o += c->sl[base + i].len;
        }
        memcpy(c->out + start, c->tmp, region);
    }
    c->nsl = base;
    return ok;
}

static bool canon_value(canon_t *c, const json_t *v)
{
    char buf[NUM_TEXT_MAX + 2];
    switch (json_typeof(v)) {
    case JSON_NULL:
        return canon_put(c, "z", 1);
    case JSON_TRUE:
        return canon_put(c, "t", 1);
    case JSON_FALSE:
        return canon_put(c, "f", 1);
    case JSON_INTEGER: {
        int k = snprintf(buf, sizeof buf, "n%" JSON_INTEGER_FORMAT ";", json_integer_value(v));
        return canon_put(c, buf, (size_t)k);
    }
    case JSON_REAL: {
        /* An integral double in range reads as that integer, so 1.0 and 1 agree (number_eq). */
        double d = json_real_value(v);
        size_t k;
        buf[0] = 'n';
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == trunc(d))
            k = (size_t)snprintf(buf + 1, sizeof buf - 1, "%lld", (long long)d);
        else
            k = format_real(d, buf + 1, sizeof buf - 2);
        buf[1 + k] = ';';
        return canon_put(c, buf, k + 2);
    }
    case JSON_STRING:
        return canon_string(c, json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        return canon_putf(c, 'a', n, '[') && canon_sorted(c, v, n) && canon_put(c, "]", 1);
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        return canon_putf(c, 'o', n, '{') && canon_sorted(c, v, n) && canon_put(c, "}", 1);
    }
    }
    return false;
}

/* ---- equality ----------------------------------------------------------------------------- */

/* Structural JSON equality with 1 == 1.0 (sortArray goes through the canonical form). */
static bool json_eq(const json_t *a, const json_t *b)
{
    number_t na, nb;
    if (number_of(a, &na) && number_of(b, &nb))
        return number_eq(na, nb);
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++) {
            if (!json_eq(json_array_get(a, i), json_array_get(b, i)))
                return false;
        }
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *key;
        size_t klen;
        json_t *va;
        /* json_object_keylen_foreach is 2.14+; the plain iterator works everywhere. */
        for (void *it = json_object_iter((json_t *)a); it != NULL;
             it = json_object_iter_next((json_t *)a, it)) {
            key = json_object_iter_key(it);
            klen = json_object_iter_key_len(it);
            va = json_object_iter_value(it);
            const json_t *vb = json_object_getn(b, key, klen);
            if (vb == NULL || !json_eq(va, vb))
                return false;
        }
        return true;
    }
    default: /* null, true, false: the types already matched */
        return true;
    }
}

/* A text subject (query, header, or a string in the body) against a scalar value: strings by
 * bytes, numbers numerically when the text is a number literal, booleans by their literal. */
static bool text_eq_value(mk_str_t text, const json_t *value)
{
    number_t nt, nv;
    switch (json_typeof(value)) {
    case JSON_STRING:
        return mk_str_eq(text, (mk_str_t){json_string_value(value), json_string_length(value)});
    case JSON_INTEGER:
    case JSON_REAL:
        number_of(value, &nv);
        return number_parse(text, &nt) && number_eq(nt, nv);
    case JSON_TRUE:
        return mk_str_eq_cstr(text, "true");
    case JSON_FALSE:
        return mk_str_eq_cstr(text, "false");
    default:
        return false;
    }
}

static const json_t *cond_value(const mk_cond_t *c)
{
    return c->value ? c->value : json_null();
}

/* Top-level equality of a selected body value and the condition's value: JSON equality, plus
 * text comparison when one side is a string and the other a number or bool. With sortArray, an
 * array or object is compared by canonical form within the value's work; *cut (may be NULL) is
 * set when the subject took more than that and was compared no further. */
static bool value_eq(const mk_cond_t *c, const json_t *subject, bool *cut)
{
    const json_t *value = cond_value(c);
    if (json_is_string(subject) && (json_is_number(value) || json_is_boolean(value)))
        return text_eq_value((mk_str_t){json_string_value(subject), json_string_length(subject)},
                             value);
    if (json_is_string(value) && (json_is_number(subject) || json_is_boolean(subject)))
        return text_eq_value((mk_str_t){json_string_value(value), json_string_length(value)},
                             subject);
    if (c->canon == NULL || json_typeof(subject) != json_typeof(value))
        return json_eq(subject, value);
    canon_t cs;
    canon_init(&cs, c->canon_work);
    bool eq = canon_value(&cs, subject) && cs.len == c->canon_len &&
              memcmp(cs.out, c->canon, cs.len) == 0;
    if (cs.over && cut != NULL)
        *cut = true;
    canon_release(&cs);
    return eq;
}

static bool str_contains(mk_str_t hay, mk_str_t needle)
{
    if (needle.len == 0)
        return true;
    if (hay.len < needle.len)
        return false;
    return memmem(hay.base, hay.len, needle.base, needle.len) != NULL;
}

/* ---- the subject -------------------------------------------------------------------------- */

typedef enum subject_state {
    SUBJ_MISSING,
    SUBJ_NOT_JSON, /* body condition and the body is empty or not JSON */
    SUBJ_JSON,
    SUBJ_TEXT,
} subject_state_t;

typedef struct subject {
    subject_state_t state;
    json_t *json;  /* SUBJ_JSON, borrowed from the request */
    mk_str_t text; /* SUBJ_TEXT, borrowed from the request */
} subject_t;

static subject_t subject_get(const mk_cond_t *c, mk_request_t *req)
{
    subject_t s = {SUBJ_MISSING, NULL, {NULL, 0}};
    switch (c->kind) {
    case MK_COND_BODY: {
        json_t *root = mk_request_json(req);
        if (root == NULL) {
            s.state = SUBJ_NOT_JSON;
            break;
        }
        s.json = mk_jsonpath_eval(c->jsonpath, root);
        if (s.json != NULL)
            s.state = SUBJ_JSON;
        break;
    }
    case MK_COND_QUERY:
        if (mk_request_query_param(req, c->path_str, &s.text))
            s.state = SUBJ_TEXT;
        break;
    case MK_COND_HEADER:
        if (mk_request_header(req, c->path_str, &s.text))
            s.state = SUBJ_TEXT;
        break;
    }
    return s;
}

static bool subject_exists(const subject_t *s)
{
    return s->state == SUBJ_JSON || s->state == SUBJ_TEXT;
}

static bool subject_is_empty(const subject_t *s)
{
    if (s->state == SUBJ_TEXT)
        return s->text.len == 0;
    if (s->state != SUBJ_JSON)
        return true;
    switch (json_typeof(s->json)) {
    case JSON_NULL:
        return true;
    case JSON_STRING:
        return json_string_length(s->json) == 0;
    case JSON_ARRAY:
        return json_array_size(s->json) == 0;
    case JSON_OBJECT:
        return json_object_size(s->json) == 0;
    default:
        return false;
    }
}

static bool eval_equals(const mk_cond_t *c, const subject_t *s, bool *cut)
{
    if (s->state == SUBJ_TEXT)
        return text_eq_value(s->text, cond_value(c));
    if (s->state == SUBJ_JSON)
        return value_eq(c, s->json, cut);
    return false;
}

static bool eval_contains(const mk_cond_t *c, const subject_t *s, bool *cut)
{
    if (s->state == SUBJ_TEXT)
        return c->has_text && str_contains(s->text, c->text);
    if (s->state != SUBJ_JSON)
        return false;
    const json_t *v = s->json;
    if (json_is_string(v))
        return c->has_text &&
               str_contains((mk_str_t){json_string_value(v), json_string_length(v)}, c->text);
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (value_eq(c, json_array_get(v, i), cut))
                return true;
        }
        return false;
    }
    if (json_is_object(v))
        return c->has_text && json_object_getn(v, c->text.base, c->text.len) != NULL;
    /* A number or bool contains a value when its text does ({"id": 12345} contains 234). */
    char buf[NUM_TEXT_MAX];
    mk_str_t t;
    return c->has_text && scalar_text(v, buf, &t) && str_contains(t, c->text);
}

static bool eval_matches(const mk_cond_t *c, const subject_t *s)
{
    if (s->state == SUBJ_TEXT)
        return mk_regex_match(c->re, s->text);
    if (s->state != SUBJ_JSON)
        return false;
    char buf[NUM_TEXT_MAX];
    mk_str_t t;
    return scalar_text(s->json, buf, &t) && mk_regex_match(c->re, t);
}

static bool eval_subject(const mk_cond_t *c, const subject_t *s, bool *cut)
{
    switch (c->action) {
    case ACT_EQUALS:
        return eval_equals(c, s, cut);
    case ACT_NOT_EQUALS:
        return !eval_equals(c, s, cut);
    case ACT_CONTAINS:
        return eval_contains(c, s, cut);
    case ACT_NOT_CONTAINS:
        return !eval_contains(c, s, cut);
    case ACT_ANY:
        return subject_exists(s);
    case ACT_NOT_EMPTY:
        return subject_exists(s) && !subject_is_empty(s);
    case ACT_EMPTY:
        return subject_is_empty(s);
    case ACT_MATCHES:
        return eval_matches(c, s);
    }
    return false;
}

bool mk_cond_eval(const mk_cond_t *cond, mk_request_t *req)
{
    subject_t s = subject_get(cond, req);
    return eval_subject(cond, &s, NULL);
}

/* ---- compile ------------------------------------------------------------------------------ */

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static int parse_action(const json_t *def, const char *field, action_t *out, mk_err_t *err)
{
    const json_t *a = json_object_get(def, "assertAction");
    *out = ACT_EQUALS;
    /* Absent, null and "" all mean equals: Go's zero value is how Mockarty reads a missing one. */
    if (a == NULL || json_is_null(a))
        return 0;
    if (!json_is_string(a))
        return mk_err_set(err, MK_EINVAL, "%s.assertAction: must be a string, got %s", field,
                          json_type_name(a));
    const char *name = json_string_value(a);
    if (name[0] == '\0')
        return 0;
    for (size_t i = 0; i < NACTIONS; i++) {
        if (strcmp(name, action_names[i]) == 0) {
            *out = (action_t)i;
            return 0;
        }
    }
    char allowed[128];
    size_t off = 0;
    for (size_t i = 0; i < NACTIONS; i++)
        off += (size_t)snprintf(allowed + off, sizeof allowed - off, "%s%s", i ? ", " : "",
                                action_names[i]);
    return mk_err_set(err, MK_EINVAL, "%s.assertAction: unknown action '%.64s' (allowed: %s)",
                      field, name, allowed);
}

static int canon_compile(mk_cond_t *c, const char *field, mk_err_t *err)
{
    canon_t cs;
    canon_init(&cs, MK_COND_MAX_SORT_WORK);
    int rc = 0;
    if (!canon_value(&cs, c->value)) {
        if (cs.over)
            rc = mk_err_set(err, MK_EINVAL,
                            "%s.value: too large to compare with sortArray (its canonical form "
                            "takes more than %u bytes of work)",
                            field, (unsigned)MK_COND_MAX_SORT_WORK);
        else
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    c->canon = malloc(cs.len ? cs.len : 1);
    if (c->canon == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(c->canon, cs.out, cs.len);
    c->canon_len = cs.len;
    c->canon_work = cs.work;
out:
    canon_release(&cs);
    return rc;
}

int mk_cond_compile(const json_t *def, mk_cond_kind_t kind, const char *field, mk_cond_t **out,
                    mk_err_t *err)
{
    int rc = 0;
    mk_cond_t *c = NULL;
    *out = NULL;
    if (field == NULL)
        field = "condition";
    if (kind != MK_COND_BODY && kind != MK_COND_QUERY && kind != MK_COND_HEADER)
        return mk_err_set(err, MK_EINVAL, "%s: unknown condition kind %d", field, (int)kind);
    if (!json_is_object(def))
        return mk_err_set(err, MK_EINVAL, "%s: must be an object, got %s", field,
                          def ? json_type_name(def) : "nothing");

    const json_t *path = json_object_get(def, "path");
    if (path == NULL || json_is_null(path))
        return mk_err_set(err, MK_EINVAL, "%s.path: required", field);
    if (!json_is_string(path))
        return mk_err_set(err, MK_EINVAL, "%s.path: must be a string, got %s", field,
                          json_type_name(path));
    if (json_string_length(path) == 0)
        return mk_err_set(err, MK_EINVAL, "%s.path: must not be empty", field);
    if (strlen(json_string_value(path)) != json_string_length(path))
        return mk_err_set(err, MK_EINVAL, "%s.path: must not contain NUL", field);

    action_t action;
    rc = parse_action(def, field, &action, err);
    if (rc < 0)
        return rc;

    const json_t *sort = json_object_get(def, "sortArray");
    if (sort != NULL && !json_is_null(sort) && !json_is_boolean(sort))
        return mk_err_set(err, MK_EINVAL, "%s.sortArray: must be a boolean, got %s", field,
                          json_type_name(sort));

    const json_t *value = json_object_get(def, "value");
    if (action == ACT_MATCHES && !json_is_string(value))
        return mk_err_set(err, MK_EINVAL,
                          "%s.value: matches needs a regular expression string, got %s", field,
                          value ? json_type_name(value) : "nothing");

    c = calloc(1, sizeof *c);
    if (c == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    c->kind = kind;
    c->action = action;
    c->sort_array = json_is_true(sort);
    c->path = strdup(json_string_value(path));
    if (c->path == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    c->path_str = (mk_str_t){c->path, json_string_length(path)};

    if (kind == MK_COND_BODY) {
        rc = mk_jsonpath_compile(c->path, &c->jsonpath, err);
        if (rc < 0) {
            mk_err_prefix(err, "%s.path", field);
            goto out;
        }
    }
    if (value != NULL) {
        c->value = json_deep_copy(value);
        if (c->value == NULL) {
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            goto out;
        }
        c->has_text = scalar_text(c->value, c->num_text, &c->text);
        if (c->sort_array && (json_is_array(value) || json_is_object(value))) {
            rc = canon_compile(c, field, err);
            if (rc < 0)
                goto out;
        }
    }
    if (action == ACT_MATCHES) {
        rc = mk_regex_compile(json_string_value(value), &c->re, err);
        if (rc < 0) {
            if (rc == MK_EINVAL)
                mk_err_prefix(err, "%s.value: invalid regular expression", field);
            goto out;
        }
    }
    *out = c;
    c = NULL;
out:
    mk_cond_free(c);
    return rc;
}

void mk_cond_free(mk_cond_t *cond)
{
    if (cond == NULL)
        return;
    free(cond->path);
    mk_jsonpath_free(cond->jsonpath);
    json_decref(cond->value);
    mk_regex_free(cond->re);
    free(cond->canon);
    free(cond);
}

mk_cond_kind_t mk_cond_kind(const mk_cond_t *cond)
{
    return cond->kind;
}

json_t *mk_cond_to_json(const mk_cond_t *cond)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int rc = 0;
    rc |= json_object_set_new(o, "path", json_stringn(cond->path_str.base, cond->path_str.len));
    rc |= json_object_set_new(o, "assertAction", json_string(action_names[cond->action]));
    if (cond->value != NULL)
        rc |= json_object_set_new(o, "value", json_deep_copy(cond->value));
    rc |= json_object_set_new(o, "sortArray", json_boolean(cond->sort_array));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- explain ------------------------------------------------------------------------------ */

#define SHOW_MAX 80

/* Compact JSON of v, cut to SHOW_MAX characters with "..." so a huge body stays one short line. */
static void show_json(const json_t *v, char *buf, size_t size)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        snprintf(buf, size, "?");
        return;
    }
    if (strlen(s) > SHOW_MAX)
        snprintf(buf, size, "%.*s...", SHOW_MAX, s);
    else
        snprintf(buf, size, "%s", s);
    free(s);
}

/* A text value as a double-quoted string; control and non-ASCII-safe bytes are escaped so a
 * header with binary junk still gives a readable one-line message. */
static void show_text(mk_str_t t, char *buf, size_t size)
{
    size_t o = 0;
    buf[o++] = '"';
    for (size_t i = 0; i < t.len; i++) {
        unsigned char c = (unsigned char)t.base[i];
        if (o + 8 >= size || o > SHOW_MAX) {
            snprintf(buf + o, size - o, "...");
            return;
        }
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

void mk_cond_explain(const mk_cond_t *cond, mk_request_t *req, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return;
    char want[SHOW_MAX + 8] = "";
    char got[SHOW_MAX + 8] = "";
    char head[512];
    subject_t s = subject_get(cond, req);
    bool cut = false;
    bool holds = eval_subject(cond, &s, &cut);

    snprintf(head, sizeof head, "%s %.*s %s", kind_names[cond->kind],
             (int)(cond->path_str.len > 200 ? 200 : cond->path_str.len), cond->path_str.base,
             action_names[cond->action]);
    if (cond->value != NULL && cond->action != ACT_ANY && cond->action != ACT_EMPTY &&
        cond->action != ACT_NOT_EMPTY)
        show_json(cond->value, want, sizeof want);

    const char *sep = want[0] ? " " : "";
    const char *tail = holds ? " (holds)"
                       : cut ? " (sortArray: larger than the value, compared no further)"
                             : "";
    switch (s.state) {
    case SUBJ_JSON:
        show_json(s.json, got, sizeof got);
        snprintf(buf, size, "%s%s%s, got %s%s", head, sep, want, got, tail);
        break;
    case SUBJ_TEXT:
        show_text(s.text, got, sizeof got);
        snprintf(buf, size, "%s%s%s, got %s%s", head, sep, want, got, tail);
        break;
    case SUBJ_NOT_JSON:
        snprintf(buf, size, "%s%s%s, but the body is %s%s", head, sep, want,
                 req->body.len == 0 ? "empty" : "not JSON", tail);
        break;
    case SUBJ_MISSING:
        snprintf(buf, size, "%s%s%s, but %s%s", head, sep, want,
                 cond->kind == MK_COND_BODY ? "the path does not exist" : "it is absent", tail);
        break;
    }
}
