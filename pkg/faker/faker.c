/* Fake data generators: the random state, the table of generators with their argument rules, and
 * one function per generator that writes straight into the caller's buffer. */
#include "faker/faker.h"
#include "faker/faker_data.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- random state: xoshiro256** seeded through splitmix64 ---- */

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void mk_faker_rng_seed(mk_faker_rng_t *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        x += 0x9e3779b97f4a7c15ULL;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        rng->s[i] = z ^ (z >> 31);
    }
}

uint64_t mk_faker_rng_next(mk_faker_rng_t *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Two's-complement reinterpretation without the implementation-defined narrowing conversion. */
static int64_t u64_to_i64(uint64_t u)
{
    if (u <= (uint64_t)INT64_MAX)
        return (int64_t)u;
    return -(int64_t)(UINT64_MAX - u) - 1;
}

/* Uniform in [0, bound), bound > 0. Rejection keeps picks from short lists unbiased. */
static uint64_t below(mk_faker_rng_t *rng, uint64_t bound)
{
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t r = mk_faker_rng_next(rng);
        if (r >= threshold)
            return r % bound;
    }
}

int64_t mk_faker_rng_between(mk_faker_rng_t *rng, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    /* Unsigned arithmetic: hi - lo overflows int64 for wide ranges such as INT64_MIN..INT64_MAX. */
    uint64_t span = (uint64_t)hi - (uint64_t)lo;
    uint64_t r = span == UINT64_MAX ? mk_faker_rng_next(rng) : below(rng, span + 1);
    return u64_to_i64((uint64_t)lo + r);
}

double mk_faker_rng_double(mk_faker_rng_t *rng)
{
    return (double)(mk_faker_rng_next(rng) >> 11) * 0x1.0p-53;
}

/* ---- output ---- */

/* Appends remember the first failure so generators can write without checking every call. */
typedef struct writer {
    mk_buf_t *b;
    int rc;
} writer_t;

static void put(writer_t *w, const char *s, size_t n)
{
    if (w->rc == 0)
        w->rc = mk_buf_append(w->b, s, n);
}

static void put_str(writer_t *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_ch(writer_t *w, char c)
{
    put(w, &c, 1);
}

static void put_fmt(writer_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(writer_t *w, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        if (w->rc == 0)
            w->rc = MK_EINTERNAL;
        return;
    }
    put(w, tmp, (size_t)n);
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static void put_lower(writer_t *w, const char *s)
{
    size_t start = w->b->len;
    put_str(w, s);
    if (w->rc == 0)
        for (size_t i = start; i < w->b->len; i++)
            w->b->data[i] = ascii_lower(w->b->data[i]);
}

static const char *pick(mk_faker_rng_t *rng, const mk_faker_pool_t *pool)
{
    return pool->items[below(rng, pool->n)];
}

static const char hex_digits[] = "0123456789abcdef";

/* ---- the call ---- */

typedef enum arg_rule {
    ARGS_NONE,
    ARGS_INT2,
    ARGS_FLOAT2,
} arg_rule_t;

typedef void gen_fn_t(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w);

typedef struct gen_def {
    const char *name;
    const char *args;         /* as shown by mk_faker_list() */
    const char *example_args; /* used for the list's example */
    mk_faker_kind_t kind;
    arg_rule_t rule;
    gen_fn_t *fn;
} gen_def_t;

struct mk_faker_call {
    const gen_def_t *def;
    int64_t imin, imax;
    double fmin, fmax;
};

/* ---- numbers ---- */

static void gen_int_between(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                            writer_t *w)
{
    (void)now_ms;
    put_fmt(w, "%" PRId64, mk_faker_rng_between(rng, c->imin, c->imax));
}

/* Shortest of %.15g / %.17g that still reads back inside [lo, hi]. */
static void put_double_within(writer_t *w, double v, double lo, double hi)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.15g", v);
    double back = strtod(tmp, NULL);
    if (back < lo || back > hi)
        snprintf(tmp, sizeof tmp, "%.17g", v);
    put_str(w, tmp);
}

static void gen_float_range(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                            writer_t *w)
{
    (void)now_ms;
    double d = mk_faker_rng_double(rng);
    /* Interpolating this way cannot overflow even for -DBL_MAX..DBL_MAX. */
    double v = c->fmin * (1 - d) + c->fmax * d;
    if (v < c->fmin)
        v = c->fmin;
    if (v > c->fmax)
        v = c->fmax;
    put_double_within(w, v, c->fmin, c->fmax);
}

static void gen_float64(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_fmt(w, "%.6f", mk_faker_rng_double(rng) * 1000.0);
}

static void gen_positive_int(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                             writer_t *w)
{
    (void)c, (void)now_ms;
    put_fmt(w, "%" PRId64, mk_faker_rng_between(rng, 1, INT32_MAX));
}

static void gen_bool(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, below(rng, 2) ? "true" : "false");
}

static void put_cents(writer_t *w, int64_t cents)
{
    put_fmt(w, "%" PRId64 ".%02" PRId64, cents / 100, cents % 100);
}

static void gen_price(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_cents(w, mk_faker_rng_between(rng, 99, 99999));
}

static void gen_amount(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_cents(w, mk_faker_rng_between(rng, 100, 1000000));
}

/* A coordinate in millionths of a degree, printed exactly (no float rounding past the bound). */
static void put_micro_degrees(writer_t *w, int64_t v)
{
    int64_t a = v < 0 ? -v : v;
    put_fmt(w, "%s%" PRId64 ".%06" PRId64, v < 0 ? "-" : "", a / 1000000, a % 1000000);
}

static void gen_latitude(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_micro_degrees(w, mk_faker_rng_between(rng, -90000000, 90000000));
}

static void gen_longitude(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                          writer_t *w)
{
    (void)c, (void)now_ms;
    put_micro_degrees(w, mk_faker_rng_between(rng, -180000000, 180000000));
}

/* ---- time ---- */

#define MAX_RFC3339_MS INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */
#define DAY_MS         INT64_C(86400000)
#define FIVE_YEARS_MS  (DAY_MS * 1826)

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 to a proleptic Gregorian date (era-based civil calendar arithmetic). */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

enum { TIME_DATE, TIME_SECONDS, TIME_MILLIS };

static void put_time(writer_t *w, int64_t ms, int precision)
{
    if (ms < 0)
        ms = 0;
    if (ms > MAX_RFC3339_MS)
        ms = MAX_RFC3339_MS;
    int64_t days = ms / DAY_MS, in_day = ms % DAY_MS;
    int y, mo, d;
    civil_from_days(days, &y, &mo, &d);
    if (precision == TIME_DATE) {
        put_fmt(w, "%04d-%02d-%02d", y, mo, d);
        return;
    }
    int h = (int)(in_day / 3600000), mi = (int)(in_day / 60000 % 60), s = (int)(in_day / 1000 % 60);
    if (precision == TIME_SECONDS)
        put_fmt(w, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, h, mi, s);
    else
        put_fmt(w, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h, mi, s, (int)(in_day % 1000));
}

/* A random instant within the five years before now. */
static int64_t past_ms(mk_faker_rng_t *rng, int64_t now_ms)
{
    int64_t back = mk_faker_rng_between(rng, 0, FIVE_YEARS_MS);
    return now_ms < INT64_MIN + back ? INT64_MIN : now_ms - back;
}

static void gen_date_iso(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c;
    put_time(w, past_ms(rng, now_ms), TIME_SECONDS);
}

static void gen_date(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c;
    put_time(w, past_ms(rng, now_ms), TIME_DATE);
}

static void gen_timestamp(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                          writer_t *w)
{
    (void)c, (void)rng;
    put_time(w, now_ms, TIME_MILLIS);
}

static void gen_unix_time(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                          writer_t *w)
{
    (void)c, (void)rng;
    put_fmt(w, "%" PRId64, floor_div(now_ms, 1000));
}

/* ---- identifiers ---- */

static void put_uuid(writer_t *w, mk_faker_rng_t *rng, int dashes)
{
    uint8_t b[16];
    uint64_t r0 = mk_faker_rng_next(rng), r1 = mk_faker_rng_next(rng);
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(r0 >> (8 * i));
        b[8 + i] = (uint8_t)(r1 >> (8 * i));
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char out[36];
    size_t n = 0;
    for (int i = 0; i < 16; i++) {
        if (dashes && (i == 4 || i == 6 || i == 8 || i == 10))
            out[n++] = '-';
        out[n++] = hex_digits[b[i] >> 4];
        out[n++] = hex_digits[b[i] & 15];
    }
    put(w, out, n);
}

static void gen_uuid(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_uuid(w, rng, 1);
}

static void gen_uuid_digit(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                           writer_t *w)
{
    (void)c, (void)now_ms;
    put_uuid(w, rng, 0);
}

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static void gen_ulid(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c;
    char out[26];
    uint64_t t = now_ms < 0 ? 0 : (uint64_t)now_ms;
    if (t > 0xffffffffffffULL)
        t = 0xffffffffffffULL;
    for (int i = 9; i >= 0; i--, t >>= 5)
        out[i] = crockford[t & 31];
    /* 80 random bits: 60 from one draw, 20 from another. */
    uint64_t r0 = mk_faker_rng_next(rng), r1 = mk_faker_rng_next(rng);
    for (int i = 0; i < 12; i++, r0 >>= 5)
        out[10 + i] = crockford[r0 & 31];
    for (int i = 0; i < 4; i++, r1 >>= 5)
        out[22 + i] = crockford[r1 & 31];
    put(w, out, sizeof out);
}

static void put_base64url(writer_t *w, const uint8_t *p, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char out[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t chunk = n - i < 3 ? n - i : 3;
        if (chunk > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (chunk > 2)
            v |= p[i + 2];
        for (int k = 0; k < 4; k++)
            out[k] = alphabet[(v >> (18 - 6 * k)) & 63];
        put(w, out, chunk + 1); /* unpadded: 1, 2 or 3 bytes become 2, 3 or 4 characters */
    }
}

static void gen_jwt(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c;
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    put_base64url(w, (const uint8_t *)header, sizeof header - 1);
    put_ch(w, '.');
    char payload[256];
    int n = snprintf(
        payload, sizeof payload, "{\"sub\":\"%" PRId64 "\",\"name\":\"%s %s\",\"iat\":%" PRId64 "}",
        mk_faker_rng_between(rng, 1000000000, 9999999999), pick(rng, &mk_faker_first_names),
        pick(rng, &mk_faker_last_names), floor_div(now_ms, 1000));
    put_base64url(w, (const uint8_t *)payload, (size_t)n);
    put_ch(w, '.');
    uint8_t sig[32];
    for (int i = 0; i < 32; i += 8) {
        uint64_t r = mk_faker_rng_next(rng);
        for (int k = 0; k < 8; k++)
            sig[i + k] = (uint8_t)(r >> (8 * k));
    }
    put_base64url(w, sig, sizeof sig);
}

/* ---- people ---- */

static void gen_first_name(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                           writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, pick(rng, &mk_faker_first_names));
}

static void gen_last_name(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                          writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, pick(rng, &mk_faker_last_names));
}

static void gen_name(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, pick(rng, &mk_faker_first_names));
    put_ch(w, ' ');
    put_str(w, pick(rng, &mk_faker_last_names));
}

/* Lowercase handle from a person's name: "mary.jones", "maryjones42", "mjones", "mary_jones7". */
static void put_handle(writer_t *w, mk_faker_rng_t *rng)
{
    const char *first = pick(rng, &mk_faker_first_names);
    const char *last = pick(rng, &mk_faker_last_names);
    switch (below(rng, 4)) {
    case 0:
        put_lower(w, first);
        put_ch(w, '.');
        put_lower(w, last);
        break;
    case 1:
        put_lower(w, first);
        put_lower(w, last);
        put_fmt(w, "%d", (int)below(rng, 100));
        break;
    case 2:
        put_ch(w, ascii_lower(first[0]));
        put_lower(w, last);
        break;
    default:
        put_lower(w, first);
        put_ch(w, '_');
        put_lower(w, last);
        put_fmt(w, "%d", (int)below(rng, 10));
        break;
    }
}

static void gen_username(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_handle(w, rng);
}

static void gen_email(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_handle(w, rng);
    put_ch(w, '@');
    put_str(w, pick(rng, &mk_faker_email_domains));
}

static void gen_password(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    static const char *const classes[] = {
        "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "!@#$%^&*-_=+?"};
    static const char all[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                              "!@#$%^&*-_=+?";
    char out[16];
    size_t n = (size_t)mk_faker_rng_between(rng, 12, 16);
    /* One character of each class, the rest from all of them, then shuffled. */
    for (size_t i = 0; i < n; i++) {
        const char *set = i < 4 ? classes[i] : all;
        out[i] = set[below(rng, strlen(set))];
    }
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = below(rng, i + 1);
        char t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
    put(w, out, n);
}

static void gen_gender(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, pick(rng, &mk_faker_genders));
}

static void gen_job_title(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                          writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, pick(rng, &mk_faker_job_titles));
}

static void gen_company(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, pick(rng, &mk_faker_last_names));
    switch (below(rng, 3)) {
    case 0:
        put_str(w, " and ");
        put_str(w, pick(rng, &mk_faker_last_names));
        break;
    case 1:
        put_str(w, ", ");
        put_str(w, pick(rng, &mk_faker_last_names));
        put_str(w, " and ");
        put_str(w, pick(rng, &mk_faker_last_names));
        break;
    default:
        put_ch(w, ' ');
        put_str(w, pick(rng, &mk_faker_company_suffixes));
        break;
    }
}

static void gen_company_name(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                             writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, pick(rng, &mk_faker_company_adjectives));
    put_ch(w, ' ');
    put_str(w, pick(rng, &mk_faker_company_nouns));
}

/* ---- text ---- */

static void gen_word(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, pick(rng, &mk_faker_words));
}

static void put_sentence(writer_t *w, mk_faker_rng_t *rng)
{
    size_t start = w->b->len;
    int n = (int)mk_faker_rng_between(rng, 6, 12);
    for (int i = 0; i < n; i++) {
        if (i > 0)
            put_ch(w, ' ');
        put_str(w, pick(rng, &mk_faker_words));
    }
    put_ch(w, '.');
    if (w->rc == 0)
        w->b->data[start] = ascii_upper(w->b->data[start]);
}

static void gen_sentence(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_sentence(w, rng);
}

static void gen_paragraph(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                          writer_t *w)
{
    (void)c, (void)now_ms;
    int n = (int)mk_faker_rng_between(rng, 3, 6);
    for (int i = 0; i < n; i++) {
        if (i > 0)
            put_ch(w, ' ');
        put_sentence(w, rng);
    }
}

/* ---- places ---- */

static void gen_city(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, pick(rng, &mk_faker_cities));
}

static void gen_country(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, mk_faker_countries[below(rng, mk_faker_countries_n)].name);
}

static void gen_country_code(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                             writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, mk_faker_countries[below(rng, mk_faker_countries_n)].code);
}

static void gen_state(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, mk_faker_states[below(rng, mk_faker_states_n)].name);
}

static void put_street_address(writer_t *w, mk_faker_rng_t *rng)
{
    put_fmt(w, "%d ", (int)mk_faker_rng_between(rng, 1, 9999));
    put_str(w, pick(rng, &mk_faker_street_names));
    put_ch(w, ' ');
    put_str(w, pick(rng, &mk_faker_street_suffixes));
    if (below(rng, 5) == 0)
        put_fmt(w, " Apt. %d", (int)mk_faker_rng_between(rng, 1, 999));
}

static void put_zip(writer_t *w, mk_faker_rng_t *rng)
{
    put_fmt(w, "%05d", (int)mk_faker_rng_between(rng, 501, 99950));
}

static void gen_street_address(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                               writer_t *w)
{
    (void)c, (void)now_ms;
    put_street_address(w, rng);
}

static void gen_address(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_street_address(w, rng);
    put_str(w, ", ");
    put_str(w, pick(rng, &mk_faker_cities));
    put_str(w, ", ");
    put_str(w, mk_faker_states[below(rng, mk_faker_states_n)].code);
    put_ch(w, ' ');
    put_zip(w, rng);
}

static void gen_zip(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_zip(w, rng);
}

/* North American numbers: area code and exchange never start with 0 or 1. */
static void gen_phone(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_fmt(w, "+1-%d-%d-%04d", (int)mk_faker_rng_between(rng, 200, 999),
            (int)mk_faker_rng_between(rng, 200, 999), (int)below(rng, 10000));
}

static void gen_phone_number(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                             writer_t *w)
{
    (void)c, (void)now_ms;
    put_fmt(w, "(%d) %d-%04d", (int)mk_faker_rng_between(rng, 200, 999),
            (int)mk_faker_rng_between(rng, 200, 999), (int)below(rng, 10000));
}

/* ---- internet ---- */

static void put_domain(writer_t *w, mk_faker_rng_t *rng)
{
    put_lower(w, pick(rng, &mk_faker_last_names));
    if (below(rng, 2)) {
        put_ch(w, '-');
        put_lower(w, pick(rng, &mk_faker_last_names));
    } else {
        put_lower(w, pick(rng, &mk_faker_company_nouns));
    }
    put_ch(w, '.');
    put_str(w, pick(rng, &mk_faker_tlds));
}

static void gen_domain_name(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                            writer_t *w)
{
    (void)c, (void)now_ms;
    put_domain(w, rng);
}

static void gen_url(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, below(rng, 2) ? "https://www." : "https://");
    put_domain(w, rng);
    int segments = (int)below(rng, 3);
    for (int i = 0; i < segments; i++) {
        put_ch(w, '/');
        put_str(w, pick(rng, &mk_faker_words));
    }
}

static void gen_ipv4(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    /* First octet 1..223 except loopback: a unicast address a client could plausibly have. */
    int first = (int)mk_faker_rng_between(rng, 1, 222);
    if (first >= 127)
        first++;
    put_fmt(w, "%d.%d.%d.%d", first, (int)below(rng, 256), (int)below(rng, 256),
            (int)below(rng, 256));
}

static void gen_ipv6(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    /* Inside 2000::/3, the global unicast range. */
    uint64_t hi = mk_faker_rng_next(rng), lo = mk_faker_rng_next(rng);
    hi = (hi & ~(UINT64_C(0xe000) << 48)) | (UINT64_C(0x2000) << 48);
    put_fmt(w, "%04x:%04x:%04x:%04x:%04x:%04x:%04x:%04x", (unsigned)(hi >> 48) & 0xffff,
            (unsigned)(hi >> 32) & 0xffff, (unsigned)(hi >> 16) & 0xffff, (unsigned)hi & 0xffff,
            (unsigned)(lo >> 48) & 0xffff, (unsigned)(lo >> 32) & 0xffff,
            (unsigned)(lo >> 16) & 0xffff, (unsigned)lo & 0xffff);
}

static void gen_mac_address(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                            writer_t *w)
{
    (void)c, (void)now_ms;
    uint64_t r = mk_faker_rng_next(rng);
    char out[17];
    for (int i = 0; i < 6; i++) {
        unsigned b = (unsigned)(r >> (8 * i)) & 0xff;
        if (i == 0)
            b &= 0xfe; /* unicast */
        out[3 * i] = hex_digits[b >> 4];
        out[3 * i + 1] = hex_digits[b & 15];
        if (i < 5)
            out[3 * i + 2] = ':';
    }
    put(w, out, sizeof out);
}

static void gen_user_agent(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                           writer_t *w)
{
    (void)c, (void)now_ms;
    put_str(w, pick(rng, &mk_faker_user_agents));
}

static void gen_hex_color(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                          writer_t *w)
{
    (void)c, (void)now_ms;
    put_fmt(w, "#%06x", (unsigned)below(rng, 0x1000000));
}

/* ---- finance ---- */

static void gen_credit_card(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms,
                            writer_t *w)
{
    (void)c, (void)now_ms;
    char d[16];
    size_t len = 16, n;
    switch (below(rng, 5)) {
    case 0: /* Visa */
        n = (size_t)snprintf(d, sizeof d, "4");
        break;
    case 1: /* Mastercard 51-55 */
        n = (size_t)snprintf(d, sizeof d, "5%d", (int)mk_faker_rng_between(rng, 1, 5));
        break;
    case 2: /* Mastercard 2221-2720 */
        n = (size_t)snprintf(d, sizeof d, "%d", (int)mk_faker_rng_between(rng, 2221, 2720));
        break;
    case 3: /* American Express */
        n = (size_t)snprintf(d, sizeof d, "%s", below(rng, 2) ? "34" : "37");
        len = 15;
        break;
    default: /* Discover */
        n = (size_t)snprintf(d, sizeof d, "%s", below(rng, 2) ? "6011" : "65");
        break;
    }
    for (; n < len - 1; n++)
        d[n] = (char)('0' + below(rng, 10));
    /* Luhn: double every second digit counting leftwards from the check digit. */
    int sum = 0;
    for (size_t i = 0; i < len - 1; i++) {
        int v = d[len - 2 - i] - '0';
        if (i % 2 == 0) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    d[len - 1] = (char)('0' + (10 - sum % 10) % 10);
    put(w, d, len);
}

/* ISO 13616 check digits: 98 - (BBAN + country + "00" read as a number, letters as 10..35) mod 97.
 */
static int iban_check(const char *country, const char *bban)
{
    char rearranged[80];
    snprintf(rearranged, sizeof rearranged, "%s%s00", bban, country);
    unsigned m = 0;
    for (const char *p = rearranged; *p; p++) {
        if (*p >= '0' && *p <= '9')
            m = (m * 10 + (unsigned)(*p - '0')) % 97;
        else
            m = (m * 100 + (unsigned)(*p - 'A' + 10)) % 97;
    }
    return (int)(98 - m);
}

static void put_digits(char *dst, mk_faker_rng_t *rng, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)('0' + below(rng, 10));
    dst[n] = '\0';
}

/* French RIB key over bank (5), branch (5) and account (11 digits). */
static int rib_key(const char *bank, const char *branch, const char *account)
{
    long long b = atoll(bank), g = atoll(branch), a = atoll(account);
    return (int)(97 - (89 * b + 15 * g + 3 * (a % 97)) % 97);
}

static void gen_iban(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms, writer_t *w)
{
    (void)c, (void)now_ms;
    static const char *const gb_banks[] = {"NWBK", "BARC", "LOYD", "HBUK", "MIDL"};
    static const char *const nl_banks[] = {"ABNA", "INGB", "RABO", "TRIO"};
    char bban[64], a[16], b[16], g[16];
    const char *country;
    switch (below(rng, 4)) {
    case 0: /* DE: 8-digit bank code, 10-digit account */
        country = "DE";
        put_digits(a, rng, 8);
        put_digits(b, rng, 10);
        snprintf(bban, sizeof bban, "%s%s", a, b);
        break;
    case 1: /* GB: 4-letter bank, 6-digit sort code, 8-digit account */
        country = "GB";
        put_digits(a, rng, 6);
        put_digits(b, rng, 8);
        snprintf(bban, sizeof bban, "%s%s%s", gb_banks[below(rng, 5)], a, b);
        break;
    case 2: /* FR: bank, branch, account and the RIB key */
        country = "FR";
        put_digits(a, rng, 5);
        put_digits(g, rng, 5);
        put_digits(b, rng, 11);
        snprintf(bban, sizeof bban, "%s%s%s%02d", a, g, b, rib_key(a, g, b));
        break;
    default: /* NL: 4-letter bank, 10-digit account */
        country = "NL";
        put_digits(a, rng, 10);
        snprintf(bban, sizeof bban, "%s%s", nl_banks[below(rng, 4)], a);
        break;
    }
    put_fmt(w, "%s%02d%s", country, iban_check(country, bban), bban);
}

/* ---- the table, sorted by name ignoring case (mk_faker_list relies on it) ---- */

#define NONE(name, kind, fn)                                                                       \
    {                                                                                              \
        name, "", NULL, kind, ARGS_NONE, fn                                                        \
    }
#define S MK_FAKER_STRING
#define N MK_FAKER_NUMBER

static const gen_def_t defs[] = {
    NONE("Address", S, gen_address),
    NONE("Amount", N, gen_amount),
    NONE("Bool", MK_FAKER_BOOL, gen_bool),
    NONE("City", S, gen_city),
    NONE("Company", S, gen_company),
    NONE("CompanyName", S, gen_company_name),
    NONE("Country", S, gen_country),
    NONE("CountryCode", S, gen_country_code),
    NONE("CreditCardNumber", S, gen_credit_card),
    NONE("Date", S, gen_date),
    NONE("DateISO", S, gen_date_iso),
    NONE("DomainName", S, gen_domain_name),
    NONE("Email", S, gen_email),
    NONE("FirstName", S, gen_first_name),
    NONE("Float64", N, gen_float64),
    {"FloatRange", "(a,b)", "0, 1", N, ARGS_FLOAT2, gen_float_range},
    NONE("Gender", S, gen_gender),
    NONE("HexColor", S, gen_hex_color),
    NONE("IBAN", S, gen_iban),
    {"IntBetween", "(min,max)", "1, 100", N, ARGS_INT2, gen_int_between},
    {"IntRange", "(a,b)", "1, 100", N, ARGS_INT2, gen_int_between},
    NONE("IPv4", S, gen_ipv4),
    NONE("IPv6", S, gen_ipv6),
    NONE("JobTitle", S, gen_job_title),
    NONE("JWT", S, gen_jwt),
    NONE("LastName", S, gen_last_name),
    NONE("Latitude", N, gen_latitude),
    NONE("Longitude", N, gen_longitude),
    NONE("MacAddress", S, gen_mac_address),
    NONE("Name", S, gen_name),
    NONE("Paragraph", S, gen_paragraph),
    NONE("Password", S, gen_password),
    NONE("Phone", S, gen_phone),
    NONE("PhoneNumber", S, gen_phone_number),
    NONE("PositiveInt", N, gen_positive_int),
    NONE("Price", N, gen_price),
    NONE("Sentence", S, gen_sentence),
    NONE("State", S, gen_state),
    NONE("StreetAddress", S, gen_street_address),
    NONE("Timestamp", S, gen_timestamp),
    NONE("ULID", S, gen_ulid),
    NONE("UnixTime", N, gen_unix_time),
    NONE("URL", S, gen_url),
    NONE("UserAgent", S, gen_user_agent),
    NONE("Username", S, gen_username),
    NONE("UUID", S, gen_uuid),
    NONE("UUIDDigit", S, gen_uuid_digit),
    NONE("Word", S, gen_word),
    NONE("Zip", S, gen_zip),
    NONE("ZipCode", S, gen_zip),
};

#define N_DEFS (sizeof defs / sizeof defs[0])

/* ---- compiling ---- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static mk_str_t trim(mk_str_t s)
{
    while (s.len > 0 && is_space(s.base[0])) {
        s.base++;
        s.len--;
    }
    while (s.len > 0 && is_space(s.base[s.len - 1]))
        s.len--;
    return s;
}

/* Copies an argument into tmp for strto*; fails (returns 0) when it cannot be a number. */
static int arg_cstr(mk_str_t s, char *tmp, size_t cap)
{
    if (s.len == 0 || s.len >= cap || memchr(s.base, '\0', s.len) != NULL)
        return 0;
    memcpy(tmp, s.base, s.len);
    tmp[s.len] = '\0';
    return 1;
}

static int parse_int(const gen_def_t *d, int idx, mk_str_t s, int64_t *out, mk_err_t *err)
{
    char tmp[64];
    char *end = NULL;
    if (!arg_cstr(s, tmp, sizeof tmp))
        return mk_err_set(err, MK_EINVAL, "%s: argument %d '%.*s' is not an integer", d->name, idx,
                          (int)(s.len > 40 ? 40 : s.len), s.base);
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (end != tmp + s.len)
        return mk_err_set(err, MK_EINVAL, "%s: argument %d '%s' is not an integer", d->name, idx,
                          tmp);
    if (errno == ERANGE)
        return mk_err_set(err, MK_EINVAL, "%s: argument %d '%s' is out of the 64-bit range",
                          d->name, idx, tmp);
    *out = v;
    return 0;
}

static int parse_double(const gen_def_t *d, int idx, mk_str_t s, double *out, mk_err_t *err)
{
    char tmp[64];
    char *end = NULL;
    if (!arg_cstr(s, tmp, sizeof tmp))
        return mk_err_set(err, MK_EINVAL, "%s: argument %d '%.*s' is not a number", d->name, idx,
                          (int)(s.len > 40 ? 40 : s.len), s.base);
    double v = strtod(tmp, &end);
    if (end != tmp + s.len)
        return mk_err_set(err, MK_EINVAL, "%s: argument %d '%s' is not a number", d->name, idx,
                          tmp);
    if (!isfinite(v))
        return mk_err_set(err, MK_EINVAL, "%s: argument %d '%s' is not a finite number", d->name,
                          idx, tmp);
    *out = v;
    return 0;
}

/* Splits on commas into at most two trimmed parts; returns how many there were in all. */
static int split_args(mk_str_t args, mk_str_t parts[2])
{
    args = trim(args);
    if (args.len == 0)
        return 0;
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= args.len; i++) {
        if (i < args.len && args.base[i] != ',')
            continue;
        if (n < 2)
            parts[n] = trim((mk_str_t){args.base + start, i - start});
        n++;
        start = i + 1;
    }
    return n;
}

static int compile_args(const gen_def_t *d, mk_str_t args, mk_faker_call_t *c, mk_err_t *err)
{
    mk_str_t parts[2];
    int n = split_args(args, parts);
    if (d->rule == ARGS_NONE) {
        if (n != 0)
            return mk_err_set(err, MK_EINVAL, "%s: takes no arguments", d->name);
        return 0;
    }
    if (n != 2)
        return mk_err_set(err, MK_EINVAL, "%s: expects 2 arguments %s, got %d", d->name, d->args,
                          n);
    int rc;
    if (d->rule == ARGS_INT2) {
        rc = parse_int(d, 1, parts[0], &c->imin, err);
        if (rc == 0)
            rc = parse_int(d, 2, parts[1], &c->imax, err);
        if (rc == 0 && c->imin > c->imax)
            rc = mk_err_set(err, MK_EINVAL, "%s: min %" PRId64 " is greater than max %" PRId64,
                            d->name, c->imin, c->imax);
        return rc;
    }
    rc = parse_double(d, 1, parts[0], &c->fmin, err);
    if (rc == 0)
        rc = parse_double(d, 2, parts[1], &c->fmax, err);
    if (rc == 0 && c->fmin > c->fmax)
        rc = mk_err_set(err, MK_EINVAL, "%s: min %g is greater than max %g", d->name, c->fmin,
                        c->fmax);
    return rc;
}

int mk_faker_compile(mk_str_t name, mk_str_t args, mk_faker_call_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_str_t key = trim(name);
    const gen_def_t *def = NULL;
    for (size_t i = 0; i < N_DEFS && def == NULL; i++)
        if (mk_str_caseeq(key, mk_str_of(defs[i].name)))
            def = &defs[i];
    if (def == NULL)
        return mk_err_set(err, MK_EINVAL, "unknown faker '%.*s'",
                          (int)(key.len > 64 ? 64 : key.len), key.base ? key.base : "");
    mk_faker_call_t tmp = {.def = def};
    int rc = compile_args(def, args, &tmp, err);
    if (rc != 0)
        return rc;
    mk_faker_call_t *c = malloc(sizeof *c);
    if (c == NULL)
        return mk_err_set(err, MK_ENOMEM, "%s: out of memory", def->name);
    *c = tmp;
    *out = c;
    return 0;
}

void mk_faker_call_free(mk_faker_call_t *call)
{
    free(call);
}

mk_faker_kind_t mk_faker_call_kind(const mk_faker_call_t *call)
{
    return call->def->kind;
}

const char *mk_faker_call_name(const mk_faker_call_t *call)
{
    return call->def->name;
}

int mk_faker_gen(const mk_faker_call_t *call, mk_faker_rng_t *rng, int64_t now_ms, mk_buf_t *out)
{
    size_t start = out->len;
    writer_t w = {out, 0};
    call->def->fn(call, rng, now_ms, &w);
    /* Leave the buffer as it was rather than holding half a value. */
    if (w.rc != 0 && out->data != NULL) {
        out->len = start;
        out->data[start] = '\0';
    }
    return w.rc;
}

const char *mk_faker_kind_name(mk_faker_kind_t kind)
{
    switch (kind) {
    case MK_FAKER_NUMBER:
        return "number";
    case MK_FAKER_BOOL:
        return "boolean";
    default:
        return "string";
    }
}

/* Fixed inputs so the listed examples are the same on every call and every machine. */
#define EXAMPLE_SEED   UINT64_C(20240501)
#define EXAMPLE_NOW_MS INT64_C(1735689600000) /* 2025-01-01T00:00:00Z */

json_t *mk_faker_list(void)
{
    json_t *list = json_array();
    mk_buf_t buf;
    mk_buf_init(&buf, 0);
    if (list == NULL)
        goto fail;
    for (size_t i = 0; i < N_DEFS; i++) {
        const gen_def_t *d = &defs[i];
        mk_faker_call_t call = {.def = d};
        mk_faker_rng_t rng;
        if (compile_args(d, mk_str_of(d->example_args), &call, NULL) != 0)
            goto fail;
        mk_faker_rng_seed(&rng, EXAMPLE_SEED);
        mk_buf_reset(&buf);
        if (mk_faker_gen(&call, &rng, EXAMPLE_NOW_MS, &buf) != 0)
            goto fail;
        json_t *item = json_pack("{s:s, s:s, s:s, s:s}", "name", d->name, "args", d->args, "kind",
                                 mk_faker_kind_name(d->kind), "example", buf.data);
        if (item == NULL || json_array_append_new(list, item) != 0)
            goto fail;
    }
    mk_buf_free(&buf);
    return list;
fail:
    mk_buf_free(&buf);
    json_decref(list);
    return NULL;
}
