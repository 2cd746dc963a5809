/* String slices and bounded buffers. */
#include "str/str.h"
#include "err/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

mk_str_t mk_str_of(const char *cstr)
{
    return cstr ? (mk_str_t){cstr, strlen(cstr)} : (mk_str_t){"", 0};
}

bool mk_str_eq(mk_str_t a, mk_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

bool mk_str_eq_cstr(mk_str_t a, const char *b)
{
    return mk_str_eq(a, mk_str_of(b));
}

bool mk_str_caseeq(mk_str_t a, mk_str_t b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.base, b.base, a.len) == 0);
}

bool mk_str_starts_with(mk_str_t s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && memcmp(s.base, prefix, n) == 0;
}

char *mk_str_dup(mk_str_t s)
{
    char *p = malloc(s.len + 1);
    if (p == NULL)
        return NULL;
    if (s.len)
        memcpy(p, s.base, s.len);
    p[s.len] = '\0';
    return p;
}

void mk_buf_init(mk_buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void mk_buf_free(mk_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void mk_buf_reset(mk_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int buf_reserve(mk_buf_t *b, size_t extra)
{
    if (b->max && b->len + extra > b->max)
        return MK_ETOOBIG;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return MK_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int mk_buf_append(mk_buf_t *b, const void *data, size_t len)
{
    int rc = buf_reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int mk_buf_append_str(mk_buf_t *b, const char *cstr)
{
    return mk_buf_append(b, cstr, strlen(cstr));
}

int mk_buf_appendf(mk_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MK_EINVAL;
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *mk_buf_take(mk_buf_t *b)
{
    char *p = b->data;
    if (p == NULL)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

bool mk_str_to_i64(mk_str_t s, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (s.len && (s.base[0] == '-' || s.base[0] == '+')) {
        neg = s.base[0] == '-';
        i++;
    }
    if (i == s.len)
        return false;
    /* Accumulate as a negative number so INT64_MIN is reachable. */
    int64_t v = 0;
    for (; i < s.len; i++) {
        if (s.base[i] < '0' || s.base[i] > '9')
            return false;
        int d = s.base[i] - '0';
        if (v < (INT64_MIN + d) / 10)
            return false;
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == INT64_MIN)
            return false;
        v = -v;
    }
    *out = v;
    return true;
}

int mk_str_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t mk_str_url_decode(mk_str_t src, char *dst, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < src.len; i++) {
        char c = src.base[i];
        if (c == '%' && i + 2 < src.len) {
            int h = mk_str_hexval(src.base[i + 1]), l = mk_str_hexval(src.base[i + 2]);
            if (h >= 0 && l >= 0) {
                dst[o++] = (char)(h * 16 + l);
                i += 2;
                continue;
            }
        }
        dst[o++] = (plus_is_space && c == '+') ? ' ' : c;
    }
    dst[o] = '\0';
    return o;
}

bool mk_str_secret_eq(mk_str_t a, const char *secret)
{
    size_t n = strlen(secret);
    if (a.base == NULL || a.len != n)
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a.base[i] ^ secret[i]);
    return diff == 0;
}

size_t mk_str_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    }
    return len;
}
