/* The GraphQL lexer and recursive-descent parser (executable documents and SDL). */
#include "graphql/graphql.h"
#include "str/str.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---------------------------------------------------------------------------------- */

typedef struct block {
    struct block *next;
    size_t used, cap;
    _Alignas(max_align_t) char data[];
} block_t;

struct mk_gql_doc {
    block_t *blocks;
    mk_gql_operation_t *ops;
    mk_gql_fragment_t *frags;
    mk_gql_type_def_t *types;
    size_t nfrags;
    mk_gql_fragment_t **slots; /* open addressing by name, in the arena; nslots a power of 2 */
    size_t nslots;
};

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void *arena_alloc(mk_gql_doc_t *d, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    block_t *b = d->blocks;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        b = malloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = d->blocks;
        d->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void mk_gql_doc_free(mk_gql_doc_t *doc)
{
    if (doc == NULL)
        return;
    block_t *b = doc->blocks;
    while (b) {
        block_t *next = b->next;
        free(b);
        b = next;
    }
    free(doc);
}

mk_gql_operation_t *mk_gql_doc_operations(const mk_gql_doc_t *doc)
{
    return doc->ops;
}

mk_gql_fragment_t *mk_gql_doc_fragments(const mk_gql_doc_t *doc)
{
    return doc->frags;
}

mk_gql_type_def_t *mk_gql_doc_types(const mk_gql_doc_t *doc)
{
    return doc->types;
}

const mk_gql_fragment_t *mk_gql_doc_fragment(const mk_gql_doc_t *doc, const char *name)
{
    if (doc->nslots == 0)
        return NULL;
    for (size_t i = hash_name(name) & (doc->nslots - 1);; i = (i + 1) & (doc->nslots - 1)) {
        const mk_gql_fragment_t *f = doc->slots[i];
        if (f == NULL || strcmp(f->name, name) == 0)
            return f;
    }
}

bool mk_gql_fragment_of(const mk_gql_doc_t *doc, const mk_gql_sel_t *s, const char **type_cond,
                        const mk_gql_sel_t **selections)
{
    *type_cond = s->type_cond;
    *selections = s->selections;
    if (s->kind != MK_GQL_SEL_SPREAD)
        return true;
    const mk_gql_fragment_t *f = mk_gql_doc_fragment(doc, s->name);
    if (f == NULL)
        return false;
    *type_cond = f->type_cond;
    *selections = f->selections;
    return true;
}

size_t mk_gql_doc_fragment_count(const mk_gql_doc_t *doc)
{
    return doc->nfrags;
}

/* Spreads are looked up by name once per use: a hash keeps a document of many fragments and
 * many spreads linear. */
static int index_fragments(mk_gql_doc_t *d)
{
    for (mk_gql_fragment_t *f = d->frags; f; f = f->next)
        f->index = (uint32_t)d->nfrags++;
    if (d->nfrags == 0)
        return 0;
    d->nslots = 8;
    while (d->nslots < d->nfrags * 2)
        d->nslots *= 2;
    d->slots = arena_alloc(d, d->nslots * sizeof *d->slots);
    if (d->slots == NULL)
        return MK_ENOMEM;
    for (mk_gql_fragment_t *f = d->frags; f; f = f->next) {
        size_t i = hash_name(f->name) & (d->nslots - 1);
        while (d->slots[i] && strcmp(d->slots[i]->name, f->name) != 0)
            i = (i + 1) & (d->nslots - 1);
        if (d->slots[i] == NULL)
            d->slots[i] = f;
    }
    return 0;
}

const char *mk_gql_op_kind_name(mk_gql_op_kind_t kind)
{
    return kind == MK_GQL_MUTATION       ? "mutation"
           : kind == MK_GQL_SUBSCRIPTION ? "subscription"
                                         : "query";
}

/* ---- lexer ---------------------------------------------------------------------------------- */

typedef enum { T_EOF, T_PUNCT, T_NAME, T_INT, T_FLOAT, T_STRING } tok_kind_t;

typedef struct tok {
    tok_kind_t kind;
    char punct; /* '.' stands for "..." */
    const char
        *text; /* names and numbers: raw bytes in the source; strings: decoded, in the arena */
    size_t len;
    bool block; /* a block string */
    mk_gql_loc_t loc;
} tok_t;

typedef struct parser {
    mk_gql_doc_t *doc;
    const char *src, *p, *end;
    uint32_t line, col;
    tok_t tok;
    size_t ntokens, max_tokens;
    unsigned depth, max_depth;
    int rc;
    mk_gql_error_t *gerr;
} parser_t;

static int fail_at(parser_t *ps, int code, mk_gql_loc_t loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(parser_t *ps, int code, mk_gql_loc_t loc, const char *fmt, ...)
{
    if (ps->rc)
        return ps->rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->gerr->msg, sizeof ps->gerr->msg, fmt, ap);
    va_end(ap);
    ps->gerr->loc = loc;
    ps->rc = code;
    return code;
}

#define FAIL(ps, ...) fail_at((ps), MK_EINVAL, (ps)->tok.loc, __VA_ARGS__)
#define NOMEM(ps)     fail_at((ps), MK_ENOMEM, (ps)->tok.loc, "out of memory")
#define HERE(ps)      ((mk_gql_loc_t){(ps)->line, (ps)->col})

/* Moves over one byte, keeping line and column (columns count code points). */
static void adv(parser_t *ps)
{
    unsigned char c = (unsigned char)*ps->p++;
    if (c == '\n' || (c == '\r' && !(ps->p < ps->end && *ps->p == '\n'))) {
        ps->line++;
        ps->col = 1;
    } else if (c != '\r' && (c & 0xC0) != 0x80) {
        ps->col++;
    }
}

static bool name_start(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_char(int c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

static void skip_ignored(parser_t *ps)
{
    while (ps->p < ps->end) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == ' ' || c == '\t' || c == ',' || c == '\n' || c == '\r') {
            adv(ps);
        } else if (c == 0xEF && ps->end - ps->p >= 3 && (unsigned char)ps->p[1] == 0xBB &&
                   (unsigned char)ps->p[2] == 0xBF) {
            ps->p += 3; /* byte order mark */
        } else if (c == '#') {
            while (ps->p < ps->end && *ps->p != '\n' && *ps->p != '\r')
                adv(ps);
        } else {
            break;
        }
    }
}

/* A growing string in the arena's neighbourhood: built in a malloc'd buffer, then copied. */
typedef struct sbuf {
    char *d;
    size_t len, cap;
} sbuf_t;

static bool sb_put(sbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->d, cap);
        if (d == NULL)
            return false;
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->len, s, n);
    b->len += n;
    b->d[b->len] = '\0';
    return true;
}

static bool sb_utf8(sbuf_t *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return sb_put(b, u, n);
}

static char *arena_strndup(mk_gql_doc_t *d, const char *s, size_t n)
{
    char *c = arena_alloc(d, n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

/* \uXXXX or \u{X...}: the code point, or -1. Advances over the digits. */
static long read_escape_u(parser_t *ps)
{
    long cp = 0;
    if (ps->p < ps->end && *ps->p == '{') {
        adv(ps);
        int n = 0;
        while (ps->p < ps->end && *ps->p != '}') {
            int h = mk_str_hexval((unsigned char)*ps->p);
            if (h < 0 || ++n > 8)
                return -1;
            cp = cp * 16 + h;
            if (cp > 0x10FFFF)
                return -1;
            adv(ps);
        }
        if (ps->p >= ps->end || n == 0)
            return -1;
        adv(ps);
        return cp;
    }
    for (int i = 0; i < 4; i++) {
        int h = ps->p < ps->end ? mk_str_hexval((unsigned char)*ps->p) : -1;
        if (h < 0)
            return -1;
        cp = cp * 16 + h;
        adv(ps);
    }
    return cp;
}

static int lex_string(parser_t *ps)
{
    sbuf_t b = {0};
    adv(ps); /* the opening quote */
    int rc = 0;
    for (;;) {
        if (ps->p >= ps->end || *ps->p == '\n' || *ps->p == '\r') {
            rc = fail_at(ps, MK_EINVAL, HERE(ps), "Syntax Error: Unterminated string.");
            goto out;
        }
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            adv(ps);
            break;
        }
        if (c < 0x20 && c != '\t') {
            rc = fail_at(ps, MK_EINVAL, HERE(ps),
                         "Syntax Error: Invalid character within String: U+%04X.", c);
            goto out;
        }
        if (c != '\\') {
            const char *s = ps->p;
            adv(ps);
            if (!sb_put(&b, s, 1))
                goto nomem;
            continue;
        }
        mk_gql_loc_t at = HERE(ps);
        adv(ps);
        if (ps->p >= ps->end) {
            rc = fail_at(ps, MK_EINVAL, at, "Syntax Error: Unterminated string.");
            goto out;
        }
        char e = *ps->p;
        adv(ps);
        const char *simple = NULL;
        switch (e) {
        case '"':
            simple = "\"";
            break;
        case '\\':
            simple = "\\";
            break;
        case '/':
            simple = "/";
            break;
        case 'b':
            simple = "\b";
            break;
        case 'f':
            simple = "\f";
            break;
        case 'n':
            simple = "\n";
            break;
        case 'r':
            simple = "\r";
            break;
        case 't':
            simple = "\t";
            break;
        case 'u':
            break;
        default:
            rc = fail_at(ps, MK_EINVAL, at,
                         "Syntax Error: Invalid character escape sequence: \"\\%c\".",
                         e >= 0x20 && e < 0x7f ? e : '?');
            goto out;
        }
        if (simple) {
            if (!sb_put(&b, simple, 1))
                goto nomem;
            continue;
        }
        long cp = read_escape_u(ps);
        if (cp >= 0xD800 && cp <= 0xDBFF && ps->end - ps->p >= 6 && ps->p[0] == '\\' &&
            ps->p[1] == 'u') {
            const char *save = ps->p;
            uint32_t line = ps->line, col = ps->col;
            adv(ps);
            adv(ps);
            long lo = read_escape_u(ps);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
                ps->p = save;
                ps->line = line;
                ps->col = col;
                cp = -1;
            }
        }
        if (cp < 0 || (cp >= 0xD800 && cp <= 0xDFFF)) {
            rc = fail_at(ps, MK_EINVAL, at, "Syntax Error: Invalid Unicode escape sequence.");
            goto out;
        }
        if (!sb_utf8(&b, (uint32_t)cp))
            goto nomem;
    }
    ps->tok.text = arena_strndup(ps->doc, b.d ? b.d : "", b.len);
    ps->tok.len = b.len;
    if (ps->tok.text == NULL)
        goto nomem;
    goto out;
nomem:
    rc = NOMEM(ps);
out:
    free(b.d);
    return rc;
}

static bool blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

/* The spec's BlockStringValue(): common indentation removed, blank first and last lines dropped,
 * lines joined with \n. raw has \""" already turned into """. */
static int block_value(parser_t *ps, const char *raw, size_t n)
{
    /* Line boundaries. */
    size_t nlines = 1;
    for (size_t i = 0; i < n; i++)
        if (raw[i] == '\n' || (raw[i] == '\r' && !(i + 1 < n && raw[i + 1] == '\n')))
            nlines++;
    size_t *st = malloc(nlines * sizeof *st), *ln = malloc(nlines * sizeof *ln);
    sbuf_t b = {0};
    int rc = 0;
    if (st == NULL || ln == NULL)
        goto nomem;
    size_t k = 0, s = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || raw[i] == '\n' || raw[i] == '\r') {
            st[k] = s;
            ln[k++] = i - s;
            if (i < n && raw[i] == '\r' && i + 1 < n && raw[i + 1] == '\n')
                i++;
            s = i + 1;
        }
    }
    size_t common = (size_t)-1;
    for (size_t i = 1; i < k; i++) {
        size_t ind = 0;
        while (ind < ln[i] && (raw[st[i] + ind] == ' ' || raw[st[i] + ind] == '\t'))
            ind++;
        if (ind < ln[i] && ind < common)
            common = ind;
    }
    size_t first = 0, last = k;
    while (first < last && blank_line(raw + st[first], ln[first]))
        first++;
    while (last > first && blank_line(raw + st[last - 1], ln[last - 1]))
        last--;
    for (size_t i = first; i < last; i++) {
        size_t cut = (i > 0 && common != (size_t)-1) ? (common < ln[i] ? common : ln[i]) : 0;
        if ((i > first && !sb_put(&b, "\n", 1)) || !sb_put(&b, raw + st[i] + cut, ln[i] - cut))
            goto nomem;
    }
    ps->tok.text = arena_strndup(ps->doc, b.d ? b.d : "", b.len);
    ps->tok.len = b.len;
    if (ps->tok.text == NULL)
        goto nomem;
    goto out;
nomem:
    rc = NOMEM(ps);
out:
    free(st);
    free(ln);
    free(b.d);
    return rc;
}

static int lex_block_string(parser_t *ps)
{
    for (int i = 0; i < 3; i++)
        adv(ps);
    sbuf_t raw = {0};
    int rc = 0;
    for (;;) {
        if (ps->p >= ps->end) {
            rc = fail_at(ps, MK_EINVAL, HERE(ps), "Syntax Error: Unterminated string.");
            goto out;
        }
        if (ps->end - ps->p >= 3 && memcmp(ps->p, "\"\"\"", 3) == 0) {
            for (int i = 0; i < 3; i++)
                adv(ps);
            break;
        }
        if (ps->end - ps->p >= 4 && memcmp(ps->p, "\\\"\"\"", 4) == 0) {
            for (int i = 0; i < 4; i++)
                adv(ps);
            if (!sb_put(&raw, "\"\"\"", 3))
                goto nomem;
            continue;
        }
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            rc = fail_at(ps, MK_EINVAL, HERE(ps),
                         "Syntax Error: Invalid character within String: U+%04X.", c);
            goto out;
        }
        const char *s = ps->p;
        adv(ps);
        if (!sb_put(&raw, s, 1))
            goto nomem;
    }
    rc = block_value(ps, raw.d ? raw.d : "", raw.len);
    goto out;
nomem:
    rc = NOMEM(ps);
out:
    free(raw.d);
    return rc;
}

static bool at_digit(const parser_t *ps)
{
    return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

/* One digit or more, as a number's integer, fraction and exponent parts need. */
static int digits(parser_t *ps)
{
    if (!at_digit(ps))
        return fail_at(ps, MK_EINVAL, HERE(ps), "Syntax Error: Invalid number, expected digit.");
    while (at_digit(ps))
        adv(ps);
    return 0;
}

static int lex_number(parser_t *ps)
{
    const char *s = ps->p;
    bool is_float = false;
    int rc = 0;
    if (*ps->p == '-')
        adv(ps);
    if (at_digit(ps) && *ps->p == '0') {
        adv(ps);
        if (at_digit(ps))
            return fail_at(ps, MK_EINVAL, HERE(ps),
                           "Syntax Error: Invalid number, unexpected digit after 0.");
    } else {
        rc = digits(ps);
    }
    if (rc == 0 && ps->p < ps->end && *ps->p == '.') {
        is_float = true;
        adv(ps);
        rc = digits(ps);
    }
    if (rc == 0 && ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        is_float = true;
        adv(ps);
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            adv(ps);
        rc = digits(ps);
    }
    if (rc != 0)
        return rc;
    if (ps->p < ps->end && (*ps->p == '.' || name_start((unsigned char)*ps->p)))
        return fail_at(ps, MK_EINVAL, HERE(ps), "Syntax Error: Invalid number, expected digit.");
    ps->tok.kind = is_float ? T_FLOAT : T_INT;
    ps->tok.text = s;
    ps->tok.len = (size_t)(ps->p - s);
    return 0;
}

/* Reads the next token into ps->tok. */
static int next(parser_t *ps)
{
    if (ps->rc)
        return ps->rc;
    skip_ignored(ps);
    ps->tok = (tok_t){.loc = HERE(ps)};
    if (ps->p >= ps->end) {
        ps->tok.kind = T_EOF;
        return 0;
    }
    if (++ps->ntokens > ps->max_tokens)
        return fail_at(ps, MK_ETOOBIG, ps->tok.loc, "Document exceeds the limit of %zu tokens.",
                       ps->max_tokens);
    unsigned char c = (unsigned char)*ps->p;
    if (strchr("!$&()=:@[]{}|", c) && c != '\0') {
        ps->tok.kind = T_PUNCT;
        ps->tok.punct = (char)c;
        adv(ps);
        return 0;
    }
    if (c == '.') {
        if (ps->end - ps->p >= 3 && ps->p[1] == '.' && ps->p[2] == '.') {
            ps->tok.kind = T_PUNCT;
            ps->tok.punct = '.';
            for (int i = 0; i < 3; i++)
                adv(ps);
            return 0;
        }
        return FAIL(ps, "Syntax Error: Unexpected \".\".");
    }
    if (name_start(c)) {
        const char *s = ps->p;
        while (ps->p < ps->end && name_char((unsigned char)*ps->p))
            adv(ps);
        ps->tok.kind = T_NAME;
        ps->tok.text = s;
        ps->tok.len = (size_t)(ps->p - s);
        return 0;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return lex_number(ps);
    if (c == '"') {
        ps->tok.kind = T_STRING;
        if (ps->end - ps->p >= 3 && ps->p[1] == '"' && ps->p[2] == '"') {
            ps->tok.block = true;
            return lex_block_string(ps);
        }
        return lex_string(ps);
    }
    if (c >= 0x20 && c < 0x7f)
        return FAIL(ps, "Syntax Error: Unexpected character: \"%c\".", c);
    return FAIL(ps, "Syntax Error: Unexpected character: U+%04X.", c);
}

/* ---- parser helpers ------------------------------------------------------------------------- */

static bool is_punct(parser_t *ps, char p)
{
    return ps->tok.kind == T_PUNCT && ps->tok.punct == p;
}

static bool is_name(parser_t *ps, const char *kw)
{
    return ps->tok.kind == T_NAME && ps->tok.len == strlen(kw) &&
           memcmp(ps->tok.text, kw, ps->tok.len) == 0;
}

static void tok_desc(const tok_t *t, char *buf, size_t size)
{
    switch (t->kind) {
    case T_EOF:
        snprintf(buf, size, "<EOF>");
        break;
    case T_PUNCT:
        snprintf(buf, size, "\"%s\"", t->punct == '.' ? "..." : (char[]){t->punct, 0});
        break;
    case T_NAME:
        snprintf(buf, size, "Name \"%.*s\"", (int)(t->len > 60 ? 60 : t->len), t->text);
        break;
    case T_INT:
        snprintf(buf, size, "Int \"%.*s\"", (int)(t->len > 40 ? 40 : t->len), t->text);
        break;
    case T_FLOAT:
        snprintf(buf, size, "Float \"%.*s\"", (int)(t->len > 40 ? 40 : t->len), t->text);
        break;
    case T_STRING:
        snprintf(buf, size, t->block ? "BlockString" : "String");
        break;
    }
}

static int unexpected(parser_t *ps, const char *expected)
{
    char d[96];
    tok_desc(&ps->tok, d, sizeof d);
    if (expected)
        return FAIL(ps, "Syntax Error: Expected %s, found %s.", expected, d);
    return FAIL(ps, "Syntax Error: Unexpected %s.", d);
}

static int expect(parser_t *ps, char p)
{
    if (!is_punct(ps, p)) {
        char want[8];
        snprintf(want, sizeof want, "\"%s\"", p == '.' ? "..." : (char[]){p, 0});
        return unexpected(ps, want);
    }
    return next(ps);
}

static bool skip_punct(parser_t *ps, char p)
{
    if (!is_punct(ps, p))
        return false;
    next(ps);
    return true;
}

static const char *parse_name(parser_t *ps)
{
    if (ps->tok.kind != T_NAME) {
        unexpected(ps, "Name");
        return NULL;
    }
    char *n = arena_strndup(ps->doc, ps->tok.text, ps->tok.len);
    if (n == NULL) {
        NOMEM(ps);
        return NULL;
    }
    next(ps);
    return ps->rc ? NULL : n;
}

static bool enter(parser_t *ps)
{
    if (++ps->depth > ps->max_depth) {
        fail_at(ps, MK_ETOOBIG, ps->tok.loc, "Document exceeds the nesting limit of %u.",
                ps->max_depth);
        return false;
    }
    return true;
}

static void *node(parser_t *ps, size_t size)
{
    void *n = arena_alloc(ps->doc, size);
    if (n == NULL)
        NOMEM(ps);
    return n;
}

/* ---- values, directives, types -------------------------------------------------------------- */

static mk_gql_value_t *parse_value(parser_t *ps, bool is_const)
{
    if (!enter(ps))
        return NULL;
    mk_gql_value_t *v = node(ps, sizeof *v);
    if (v == NULL)
        return NULL;
    v->loc = ps->tok.loc;
    if (is_punct(ps, '$')) {
        if (is_const) {
            unexpected(ps, NULL);
            return NULL;
        }
        next(ps);
        v->kind = MK_GQL_VARIABLE;
        v->str = parse_name(ps);
        if (v->str)
            v->len = strlen(v->str);
    } else if (is_punct(ps, '[') || is_punct(ps, '{')) {
        bool list = is_punct(ps, '[');
        v->kind = list ? MK_GQL_LIST : MK_GQL_OBJECT;
        next(ps);
        mk_gql_value_t **tail = &v->items;
        while (ps->rc == 0 && !is_punct(ps, list ? ']' : '}')) {
            if (ps->tok.kind == T_EOF) {
                unexpected(ps, NULL);
                break;
            }
            const char *key = NULL;
            mk_gql_loc_t at = ps->tok.loc;
            if (!list) {
                key = parse_name(ps);
                if (key == NULL || expect(ps, ':'))
                    break;
            }
            mk_gql_value_t *item = parse_value(ps, is_const);
            if (item == NULL)
                break;
            if (!list) {
                item->name = key;
                item->loc = at;
            }
            *tail = item;
            tail = &item->next;
        }
        if (ps->rc == 0)
            next(ps);
    } else if (ps->tok.kind == T_INT || ps->tok.kind == T_FLOAT) {
        v->kind = ps->tok.kind == T_INT ? MK_GQL_INT : MK_GQL_FLOAT;
        v->str = arena_strndup(ps->doc, ps->tok.text, ps->tok.len);
        v->len = ps->tok.len;
        if (v->str == NULL)
            NOMEM(ps);
        next(ps);
    } else if (ps->tok.kind == T_STRING) {
        v->kind = MK_GQL_STRING;
        v->str = ps->tok.text;
        v->len = ps->tok.len;
        next(ps);
    } else if (ps->tok.kind == T_NAME) {
        if (is_name(ps, "true") || is_name(ps, "false")) {
            v->kind = MK_GQL_BOOLEAN;
            v->boolean = is_name(ps, "true");
        } else if (is_name(ps, "null")) {
            v->kind = MK_GQL_NULL;
        } else {
            v->kind = MK_GQL_ENUM;
        }
        v->str = arena_strndup(ps->doc, ps->tok.text, ps->tok.len);
        v->len = ps->tok.len;
        if (v->str == NULL)
            NOMEM(ps);
        next(ps);
    } else {
        unexpected(ps, NULL);
    }
    ps->depth--;
    return ps->rc ? NULL : v;
}

static mk_gql_arg_t *parse_args(parser_t *ps, bool is_const)
{
    mk_gql_arg_t *head = NULL, **tail = &head;
    if (!is_punct(ps, '('))
        return NULL;
    next(ps);
    do {
        mk_gql_arg_t *a = node(ps, sizeof *a);
        if (a == NULL)
            return NULL;
        a->loc = ps->tok.loc;
        a->name = parse_name(ps);
        if (a->name == NULL || expect(ps, ':'))
            return NULL;
        a->value = parse_value(ps, is_const);
        if (a->value == NULL)
            return NULL;
        *tail = a;
        tail = &a->next;
    } while (ps->rc == 0 && !is_punct(ps, ')'));
    expect(ps, ')');
    return head;
}

static mk_gql_directive_t *parse_directives(parser_t *ps, bool is_const)
{
    mk_gql_directive_t *head = NULL, **tail = &head;
    while (ps->rc == 0 && is_punct(ps, '@')) {
        mk_gql_directive_t *d = node(ps, sizeof *d);
        if (d == NULL)
            return NULL;
        d->loc = ps->tok.loc;
        next(ps);
        d->name = parse_name(ps);
        if (d->name == NULL)
            return NULL;
        d->args = parse_args(ps, is_const);
        *tail = d;
        tail = &d->next;
    }
    return head;
}

static mk_gql_type_t *parse_type(parser_t *ps)
{
    if (!enter(ps))
        return NULL;
    mk_gql_type_t *t = node(ps, sizeof *t);
    if (t == NULL)
        return NULL;
    t->loc = ps->tok.loc;
    if (is_punct(ps, '[')) {
        next(ps);
        t->kind = MK_GQL_TYPE_LIST;
        t->of = parse_type(ps);
        if (t->of)
            expect(ps, ']');
    } else {
        t->kind = MK_GQL_TYPE_NAMED;
        t->name = parse_name(ps);
    }
    if (ps->rc == 0 && is_punct(ps, '!')) {
        mk_gql_type_t *nn = node(ps, sizeof *nn);
        if (nn) {
            nn->kind = MK_GQL_TYPE_NON_NULL;
            nn->of = t;
            nn->loc = t->loc;
            t = nn;
            next(ps);
        }
    }
    ps->depth--;
    return ps->rc ? NULL : t;
}

/* ---- executable definitions ----------------------------------------------------------------- */

static mk_gql_sel_t *parse_selection_set(parser_t *ps);

static mk_gql_sel_t *parse_selection(parser_t *ps)
{
    mk_gql_sel_t *s = node(ps, sizeof *s);
    if (s == NULL)
        return NULL;
    s->loc = ps->tok.loc;
    if (is_punct(ps, '.')) {
        next(ps);
        if (ps->tok.kind == T_NAME && !is_name(ps, "on")) {
            s->kind = MK_GQL_SEL_SPREAD;
            s->name = parse_name(ps);
            s->directives = parse_directives(ps, false);
            return ps->rc ? NULL : s;
        }
        s->kind = MK_GQL_SEL_INLINE;
        if (is_name(ps, "on")) {
            next(ps);
            s->type_cond = parse_name(ps);
        }
        s->directives = parse_directives(ps, false);
        if (ps->rc == 0 && !is_punct(ps, '{'))
            unexpected(ps, "\"{\"");
        s->selections = parse_selection_set(ps);
        return ps->rc ? NULL : s;
    }
    s->kind = MK_GQL_SEL_FIELD;
    s->name = parse_name(ps);
    if (s->name && skip_punct(ps, ':')) {
        s->alias = s->name;
        s->name = parse_name(ps);
    }
    if (ps->rc == 0)
        s->args = parse_args(ps, false);
    if (ps->rc == 0)
        s->directives = parse_directives(ps, false);
    if (ps->rc == 0 && is_punct(ps, '{')) {
        s->set_loc = ps->tok.loc;
        s->selections = parse_selection_set(ps);
    }
    return ps->rc ? NULL : s;
}

static mk_gql_sel_t *parse_selection_set(parser_t *ps)
{
    if (expect(ps, '{') || !enter(ps))
        return NULL;
    mk_gql_sel_t *head = NULL, **tail = &head;
    do {
        mk_gql_sel_t *s = parse_selection(ps);
        if (s == NULL)
            break;
        *tail = s;
        tail = &s->next;
    } while (ps->rc == 0 && !is_punct(ps, '}'));
    if (ps->rc == 0)
        expect(ps, '}');
    ps->depth--;
    return ps->rc ? NULL : head;
}

static mk_gql_var_def_t *parse_var_defs(parser_t *ps)
{
    mk_gql_var_def_t *head = NULL, **tail = &head;
    if (!skip_punct(ps, '('))
        return NULL;
    do {
        mk_gql_var_def_t *v = node(ps, sizeof *v);
        if (v == NULL)
            return NULL;
        v->loc = ps->tok.loc;
        if (expect(ps, '$'))
            return NULL;
        v->name = parse_name(ps);
        if (v->name == NULL || expect(ps, ':'))
            return NULL;
        v->type = parse_type(ps);
        if (v->type && skip_punct(ps, '='))
            v->default_value = parse_value(ps, true);
        if (ps->rc == 0)
            v->directives = parse_directives(ps, true);
        if (ps->rc)
            return NULL;
        *tail = v;
        tail = &v->next;
    } while (!is_punct(ps, ')'));
    expect(ps, ')');
    return head;
}

static int parse_operation(parser_t *ps, mk_gql_operation_t ***tail)
{
    mk_gql_operation_t *op = node(ps, sizeof *op);
    if (op == NULL)
        return ps->rc;
    op->loc = ps->tok.loc;
    if (is_punct(ps, '{')) {
        op->kind = MK_GQL_QUERY;
    } else {
        op->kind = is_name(ps, "mutation")       ? MK_GQL_MUTATION
                   : is_name(ps, "subscription") ? MK_GQL_SUBSCRIPTION
                                                 : MK_GQL_QUERY;
        next(ps);
        if (ps->tok.kind == T_NAME)
            op->name = parse_name(ps);
        if (ps->rc == 0)
            op->vars = parse_var_defs(ps);
        if (ps->rc == 0)
            op->directives = parse_directives(ps, false);
    }
    if (ps->rc == 0)
        op->selections = parse_selection_set(ps);
    if (ps->rc == 0) {
        **tail = op;
        *tail = &op->next;
    }
    return ps->rc;
}

static int parse_fragment(parser_t *ps, mk_gql_fragment_t ***tail)
{
    mk_gql_fragment_t *f = node(ps, sizeof *f);
    if (f == NULL)
        return ps->rc;
    f->loc = ps->tok.loc;
    next(ps);
    if (is_name(ps, "on"))
        return unexpected(ps, NULL);
    f->name = parse_name(ps);
    if (ps->rc == 0 && !is_name(ps, "on"))
        return unexpected(ps, "\"on\"");
    next(ps);
    if (ps->rc == 0)
        f->type_cond = parse_name(ps);
    if (ps->rc == 0)
        f->directives = parse_directives(ps, false);
    if (ps->rc == 0)
        f->selections = parse_selection_set(ps);
    if (ps->rc == 0) {
        **tail = f;
        *tail = &f->next;
    }
    return ps->rc;
}

/* ---- type-system definitions ---------------------------------------------------------------- */

static const char *parse_description(parser_t *ps)
{
    if (ps->tok.kind != T_STRING)
        return NULL;
    const char *d = ps->tok.text;
    next(ps);
    return d;
}

/* The three lists of definitions that share mk_gql_field_def_t. */
typedef enum { DEF_INPUT_VALUE, DEF_FIELD, DEF_ENUM_VALUE } def_kind_t;

/* A list of kind between open and close, each entry "description name ... @dirs" with:
 * input values "name: Type = default", fields "name(args): Type", enum values "name". */
static mk_gql_field_def_t *parse_defs(parser_t *ps, def_kind_t kind, char open, char close)
{
    mk_gql_field_def_t *head = NULL, **tail = &head;
    if (!skip_punct(ps, open))
        return NULL;
    while (ps->rc == 0 && !is_punct(ps, close)) {
        mk_gql_field_def_t *f = node(ps, sizeof *f);
        if (f == NULL)
            return NULL;
        f->description = parse_description(ps);
        f->loc = ps->tok.loc;
        if (kind == DEF_ENUM_VALUE &&
            (is_name(ps, "true") || is_name(ps, "false") || is_name(ps, "null"))) {
            unexpected(ps, "enum value");
            return NULL;
        }
        f->name = parse_name(ps);
        if (f->name == NULL)
            return NULL;
        if (kind == DEF_FIELD && is_punct(ps, '('))
            f->args = parse_defs(ps, DEF_INPUT_VALUE, '(', ')');
        if (kind != DEF_ENUM_VALUE) {
            if (ps->rc || expect(ps, ':'))
                return NULL;
            f->type = parse_type(ps);
        }
        if (kind == DEF_INPUT_VALUE && f->type && skip_punct(ps, '='))
            f->default_value = parse_value(ps, true);
        if (ps->rc == 0)
            f->directives = parse_directives(ps, true);
        if (ps->rc)
            return NULL;
        *tail = f;
        tail = &f->next;
    }
    expect(ps, close);
    return head;
}

static mk_gql_name_list_t *parse_names(parser_t *ps, char sep)
{
    mk_gql_name_list_t *head = NULL, **tail = &head;
    skip_punct(ps, sep);
    do {
        mk_gql_name_list_t *n = node(ps, sizeof *n);
        if (n == NULL)
            return NULL;
        n->loc = ps->tok.loc;
        n->name = parse_name(ps);
        if (n->name == NULL)
            return NULL;
        *tail = n;
        tail = &n->next;
    } while (skip_punct(ps, sep));
    return head;
}

static const struct {
    const char *kw;
    mk_gql_def_kind_t kind;
} def_keywords[] = {
    {"schema", MK_GQL_DEF_SCHEMA}, {"scalar", MK_GQL_DEF_SCALAR},
    {"type", MK_GQL_DEF_OBJECT},   {"interface", MK_GQL_DEF_INTERFACE},
    {"union", MK_GQL_DEF_UNION},   {"enum", MK_GQL_DEF_ENUM},
    {"input", MK_GQL_DEF_INPUT},   {"directive", MK_GQL_DEF_DIRECTIVE},
};

static int parse_type_def(parser_t *ps, mk_gql_type_def_t ***tail)
{
    mk_gql_type_def_t *t = node(ps, sizeof *t);
    if (t == NULL)
        return ps->rc;
    t->description = parse_description(ps);
    t->loc = ps->tok.loc;
    if (is_name(ps, "extend")) {
        if (t->description)
            return unexpected(ps, NULL);
        t->extend = true;
        next(ps);
    }
    size_t k = 0, n = sizeof def_keywords / sizeof *def_keywords;
    while (k < n && !is_name(ps, def_keywords[k].kw))
        k++;
    if (k == n || (t->extend && def_keywords[k].kind == MK_GQL_DEF_DIRECTIVE))
        return unexpected(ps, NULL);
    t->kind = def_keywords[k].kind;
    next(ps);
    switch (t->kind) {
    case MK_GQL_DEF_SCHEMA:
        t->directives = parse_directives(ps, true);
        if (ps->rc == 0 && is_punct(ps, '{')) {
            next(ps);
            mk_gql_field_def_t **ft = &t->fields;
            while (ps->rc == 0 && !is_punct(ps, '}')) {
                mk_gql_field_def_t *f = node(ps, sizeof *f);
                if (f == NULL)
                    break;
                f->loc = ps->tok.loc;
                if (!is_name(ps, "query") && !is_name(ps, "mutation") &&
                    !is_name(ps, "subscription")) {
                    unexpected(ps, "query, mutation or subscription");
                    break;
                }
                f->name = parse_name(ps);
                if (f->name == NULL || expect(ps, ':'))
                    break;
                f->type = parse_type(ps);
                if (ps->rc == 0 && f->type->kind != MK_GQL_TYPE_NAMED)
                    fail_at(ps, MK_EINVAL, f->type->loc,
                            "Syntax Error: a root operation type must be a named type.");
                *ft = f;
                ft = &f->next;
            }
            expect(ps, '}');
        } else if (ps->rc == 0 && !t->extend) {
            unexpected(ps, "\"{\"");
        }
        break;
    case MK_GQL_DEF_DIRECTIVE:
        if (expect(ps, '@'))
            break;
        t->name = parse_name(ps);
        if (ps->rc == 0 && is_punct(ps, '('))
            t->fields = parse_defs(ps, DEF_INPUT_VALUE, '(', ')');
        if (ps->rc == 0 && is_name(ps, "repeatable")) {
            t->repeatable = true;
            next(ps);
        }
        if (ps->rc == 0 && !is_name(ps, "on")) {
            unexpected(ps, "\"on\"");
            break;
        }
        next(ps);
        if (ps->rc == 0)
            t->members = parse_names(ps, '|');
        break;
    default:
        t->name = parse_name(ps);
        if (ps->rc == 0 && (t->kind == MK_GQL_DEF_OBJECT || t->kind == MK_GQL_DEF_INTERFACE) &&
            is_name(ps, "implements")) {
            next(ps);
            t->interfaces = parse_names(ps, '&');
        }
        if (ps->rc == 0)
            t->directives = parse_directives(ps, true);
        if (ps->rc)
            break;
        if (t->kind == MK_GQL_DEF_OBJECT || t->kind == MK_GQL_DEF_INTERFACE)
            t->fields = parse_defs(ps, DEF_FIELD, '{', '}');
        else if (t->kind == MK_GQL_DEF_INPUT)
            t->fields = parse_defs(ps, DEF_INPUT_VALUE, '{', '}');
        else if (t->kind == MK_GQL_DEF_ENUM)
            t->fields = parse_defs(ps, DEF_ENUM_VALUE, '{', '}');
        else if (t->kind == MK_GQL_DEF_UNION && skip_punct(ps, '='))
            t->members = parse_names(ps, '|');
        break;
    }
    if (ps->rc == 0) {
        **tail = t;
        *tail = &t->next;
    }
    return ps->rc;
}

/* ---- document ------------------------------------------------------------------------------- */

/* Where the bytes stop being UTF-8 text without control characters other than tab, LF and CR
 * (GraphQL source is Unicode text; JSON output needs it too), or (size_t)-1. */
static size_t utf8_bad_at(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = mk_str_utf8_seq(s + i, n - i);
        if (k == 0 || (s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r'))
            return i;
        i += k;
    }
    return (size_t)-1;
}

int mk_gql_parse(const char *src, size_t len, mk_gql_doc_kind_t kind, const mk_gql_limits_t *limits,
                 mk_gql_doc_t **out, mk_gql_error_t *gerr)
{
    mk_gql_error_t scratch;
    if (gerr == NULL)
        gerr = &scratch;
    memset(gerr, 0, sizeof *gerr);
    *out = NULL;
    size_t max_bytes = limits && limits->max_bytes ? limits->max_bytes : MK_GQL_DEFAULT_MAX_BYTES;
    if (len > max_bytes) {
        snprintf(gerr->msg, sizeof gerr->msg, "Document of %zu bytes exceeds the limit of %zu.",
                 len, max_bytes);
        return MK_ETOOBIG;
    }
    parser_t ps = {
        .src = src,
        .p = src,
        .end = src + len,
        .line = 1,
        .col = 1,
        .max_tokens = limits && limits->max_tokens ? limits->max_tokens : MK_GQL_DEFAULT_MAX_TOKENS,
        .max_depth = limits && limits->max_depth ? limits->max_depth : MK_GQL_DEFAULT_MAX_DEPTH,
        .gerr = gerr,
    };
    size_t bad = utf8_bad_at((const unsigned char *)src, len);
    if (bad != (size_t)-1) {
        /* Walk to the offending byte for its position. */
        while (ps.p < src + bad)
            adv(&ps);
        unsigned char c = (unsigned char)src[bad];
        snprintf(gerr->msg, sizeof gerr->msg,
                 c < 0x20 ? "Syntax Error: Invalid character: U+%04X."
                          : "Syntax Error: Invalid UTF-8 byte 0x%02X.",
                 c);
        gerr->loc = HERE(&ps);
        return MK_EINVAL;
    }
    ps.doc = calloc(1, sizeof *ps.doc);
    if (ps.doc == NULL) {
        snprintf(gerr->msg, sizeof gerr->msg, "out of memory");
        return MK_ENOMEM;
    }
    mk_gql_operation_t **ops = &ps.doc->ops;
    mk_gql_fragment_t **frags = &ps.doc->frags;
    mk_gql_type_def_t **types = &ps.doc->types;
    next(&ps);
    if (ps.rc == 0 && ps.tok.kind == T_EOF)
        unexpected(&ps, kind == MK_GQL_EXECUTABLE ? "an operation" : "a definition");
    while (ps.rc == 0 && ps.tok.kind != T_EOF) {
        if (kind == MK_GQL_EXECUTABLE) {
            if (is_punct(&ps, '{') || is_name(&ps, "query") || is_name(&ps, "mutation") ||
                is_name(&ps, "subscription"))
                parse_operation(&ps, &ops);
            else if (is_name(&ps, "fragment"))
                parse_fragment(&ps, &frags);
            else
                unexpected(&ps, NULL);
        } else {
            parse_type_def(&ps, &types);
        }
    }
    if (ps.rc == 0 && index_fragments(ps.doc) != 0)
        fail_at(&ps, MK_ENOMEM, ps.tok.loc, "out of memory");
    if (ps.rc) {
        int rc = ps.rc;
        mk_gql_doc_free(ps.doc);
        return rc;
    }
    *out = ps.doc;
    return 0;
}

const mk_gql_operation_t *mk_gql_pick_operation(const mk_gql_doc_t *doc, const char *name,
                                                mk_gql_error_t *gerr)
{
    const mk_gql_operation_t *found = NULL;
    size_t n = 0;
    for (const mk_gql_operation_t *op = doc->ops; op; op = op->next) {
        n++;
        if (name && name[0] && op->name && strcmp(op->name, name) == 0)
            return op;
        found = op;
    }
    memset(gerr, 0, sizeof *gerr);
    if (name && name[0])
        snprintf(gerr->msg, sizeof gerr->msg, "Unknown operation named \"%.100s\".", name);
    else if (n == 0)
        snprintf(gerr->msg, sizeof gerr->msg, "Must provide an operation.");
    else if (n > 1)
        snprintf(gerr->msg, sizeof gerr->msg,
                 "Must provide operation name if query contains multiple operations.");
    else
        return found;
    return NULL;
}

/* ---- values out ----------------------------------------------------------------------------- */

json_t *mk_gql_value_to_json(const mk_gql_value_t *v, const json_t *vars)
{
    switch (v->kind) {
    case MK_GQL_VARIABLE: {
        json_t *x = vars ? json_object_get(vars, v->str) : NULL;
        return x ? json_incref(x) : json_null();
    }
    case MK_GQL_INT: {
        char *end;
        long long n = strtoll(v->str, &end, 10);
        if (*end == '\0' && n != LLONG_MAX && n != LLONG_MIN)
            return json_integer(n);
        return json_real(strtod(v->str, NULL));
    }
    case MK_GQL_FLOAT:
        return json_real(strtod(v->str, NULL));
    case MK_GQL_STRING:
        return json_stringn(v->str, v->len);
    case MK_GQL_BOOLEAN:
        return json_boolean(v->boolean);
    case MK_GQL_NULL:
        return json_null();
    case MK_GQL_ENUM:
        return json_string(v->str);
    case MK_GQL_LIST: {
        json_t *a = json_array();
        for (const mk_gql_value_t *i = v->items; a && i; i = i->next)
            json_array_append_new(a, mk_gql_value_to_json(i, vars));
        return a;
    }
    case MK_GQL_OBJECT: {
        json_t *o = json_object();
        for (const mk_gql_value_t *i = v->items; o && i; i = i->next)
            json_object_set_new(o, i->name, mk_gql_value_to_json(i, vars));
        return o;
    }
    }
    return json_null();
}

static bool print_value(const mk_gql_value_t *v, sbuf_t *b)
{
    switch (v->kind) {
    case MK_GQL_VARIABLE:
        return sb_put(b, "$", 1) && sb_put(b, v->str, v->len);
    case MK_GQL_STRING: {
        json_t *s = json_stringn(v->str, v->len);
        char *t = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        bool ok = t && sb_put(b, t, strlen(t));
        free(t);
        json_decref(s);
        return ok;
    }
    case MK_GQL_LIST:
    case MK_GQL_OBJECT: {
        bool list = v->kind == MK_GQL_LIST;
        if (!sb_put(b, list ? "[" : "{", 1))
            return false;
        for (const mk_gql_value_t *i = v->items; i; i = i->next) {
            if (i != v->items && !sb_put(b, ", ", 2))
                return false;
            if (!list && (!sb_put(b, i->name, strlen(i->name)) || !sb_put(b, ": ", 2)))
                return false;
            if (!print_value(i, b))
                return false;
        }
        return sb_put(b, list ? "]" : "}", 1);
    }
    default:
        return sb_put(b, v->str, v->len);
    }
}

char *mk_gql_value_print(const mk_gql_value_t *v)
{
    sbuf_t b = {0};
    if (!print_value(v, &b)) {
        free(b.d);
        return NULL;
    }
    return b.d ? b.d : strdup("");
}

/* Appends t's text at buf[*at...], cut at size - 1. */
static void type_print(const mk_gql_type_t *t, char *buf, size_t size, size_t *at)
{
    const char *text = t->kind == MK_GQL_TYPE_NAMED  ? t->name
                       : t->kind == MK_GQL_TYPE_LIST ? "["
                                                     : "";
    for (const char *p = text; *p && *at + 1 < size; p++)
        buf[(*at)++] = *p;
    if (t->kind != MK_GQL_TYPE_NAMED && t->of)
        type_print(t->of, buf, size, at);
    const char *close = t->kind == MK_GQL_TYPE_LIST       ? "]"
                        : t->kind == MK_GQL_TYPE_NON_NULL ? "!"
                                                          : "";
    for (const char *p = close; *p && *at + 1 < size; p++)
        buf[(*at)++] = *p;
}

void mk_gql_type_print(const mk_gql_type_t *t, char *buf, size_t size)
{
    if (size == 0)
        return;
    size_t at = 0;
    if (t)
        type_print(t, buf, size, &at);
    buf[at] = '\0';
}

bool mk_gql_included(const mk_gql_directive_t *dirs, const json_t *vars)
{
    for (const mk_gql_directive_t *d = dirs; d; d = d->next) {
        bool skip = strcmp(d->name, "skip") == 0, include = strcmp(d->name, "include") == 0;
        if (!skip && !include)
            continue;
        for (const mk_gql_arg_t *a = d->args; a; a = a->next) {
            if (strcmp(a->name, "if") != 0)
                continue;
            json_t *v = mk_gql_value_to_json(a->value, vars);
            bool on = json_is_true(v);
            json_decref(v);
            if ((skip && on) || (include && !on))
                return false;
        }
    }
    return true;
}
