/* String slices and a bounded growable buffer. A slice (base, len) borrows memory it does not
 * own; a buffer owns its bytes and refuses to grow past its maximum. */
#ifndef MK_STR_H
#define MK_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mk_str {
    const char *base;
    size_t len;
} mk_str_t;

#define MK_STR_LIT(s) ((mk_str_t){(s), sizeof(s) - 1})

mk_str_t mk_str_of(const char *cstr); /* borrows cstr; NULL gives an empty slice */
bool mk_str_eq(mk_str_t a, mk_str_t b);
bool mk_str_eq_cstr(mk_str_t a, const char *b);
bool mk_str_caseeq(mk_str_t a, mk_str_t b); /* ASCII case-insensitive */
bool mk_str_starts_with(mk_str_t s, const char *prefix);
/* a == secret in time that depends on the lengths only, not on where they differ (for tokens). */
bool mk_str_secret_eq(mk_str_t a, const char *secret);
/* Returns a NUL-terminated heap copy; caller frees with free(). NULL on allocation failure. */
char *mk_str_dup(mk_str_t s);

typedef struct mk_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max; /* 0 means no limit */
} mk_buf_t;

void mk_buf_init(mk_buf_t *b, size_t max);
void mk_buf_free(mk_buf_t *b);  /* releases the bytes; the buffer may be reused after init */
void mk_buf_reset(mk_buf_t *b); /* empties without releasing */
/* Append functions return 0, or MK_ETOOBIG past max, or MK_ENOMEM. */
int mk_buf_append(mk_buf_t *b, const void *data, size_t len);
int mk_buf_append_str(mk_buf_t *b, const char *cstr);
int mk_buf_appendf(mk_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the bytes over to the caller (who frees with free()) and leaves the buffer empty. */
char *mk_buf_take(mk_buf_t *b);

/* s as a decimal integer with an optional sign ('-' or '+'); false on any other byte, on no
 * digits, or past 64 bits (INT64_MIN parses). */
bool mk_str_to_i64(mk_str_t s, int64_t *out);

/* The value of the hexadecimal digit c (either case), or -1. */
int mk_str_hexval(int c);

/* The length (1 to 4) of the well-formed UTF-8 sequence at s (n bytes available, n > 0), or 0
 * when there is none: overlong forms, surrogates and code points past U+10FFFF are refused. */
size_t mk_str_utf8_seq(const unsigned char *s, size_t n);

/* Decodes %XX and '+' (when plus_is_space) of src into dst, which must hold src.len + 1 bytes.
 * Returns the decoded length. Malformed escapes are kept literally. */
size_t mk_str_url_decode(mk_str_t src, char *dst, bool plus_is_space);

#endif
