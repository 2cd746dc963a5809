/* Cron expressions: parsing into bit sets, and the next firing time by walking the calendar from
 * the largest field down (a month that cannot match is skipped whole, then a day, ...). */
#include "cron/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* names[i] is value lo + i; NULL when the field has none */
    int nnames;
} field_t;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MONTH, F_DOW, NFIELDS };
static const field_t fields[NFIELDS] = {
    {"second", 0, 59, NULL, 0},        {"minute", 0, 59, NULL, 0},
    {"hour", 0, 23, NULL, 0},          {"day-of-month", 1, 31, NULL, 0},
    {"month", 1, 12, month_names, 12}, {"day-of-week", 0, 7, dow_names, 7},
};

static const struct {
    const char *name, *expr;
} shorthands[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* A number or (for fields with names) a three-letter name; advances *p. */
static int value(const field_t *f, const char **p, int *out, mk_err_t *err)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s) && v < 1000)
            v = v * 10 + (*s++ - '0');
        if (v < f->lo || v > f->hi)
            return mk_err_set(err, MK_EINVAL, "cron: %s: %ld is out of range %d-%d", f->name, v,
                              f->lo, f->hi);
        *out = (int)v;
        *p = s;
        return 0;
    }
    for (int i = 0; i < f->nnames; i++) {
        if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
            *out = f->lo + i;
            *p = s + 3;
            return 0;
        }
    }
    return mk_err_set(err, MK_EINVAL, "cron: %s: unexpected '%.10s'", f->name, s);
}

/* One comma-separated field (text without spaces, NUL-terminated) into bits. */
static int parse_field(const field_t *f, const char *text, uint64_t *bits, bool *any, mk_err_t *err)
{
    *bits = 0;
    *any = text[0] == '*' || text[0] == '?';
    const char *p = text;
    for (;;) {
        int lo, hi, step = 1;
        bool single = false;
        if (*p == '*' || *p == '?') {
            lo = f->lo;
            hi = f->hi;
            p++;
        } else {
            int rc = value(f, &p, &lo, err);
            if (rc != 0)
                return rc;
            hi = lo;
            single = *p != '-';
            if (*p == '-') {
                p++;
                if ((rc = value(f, &p, &hi, err)) != 0)
                    return rc;
                if (hi < lo)
                    return mk_err_set(err, MK_EINVAL, "cron: %s: range %d-%d runs backwards",
                                      f->name, lo, hi);
            }
        }
        if (*p == '/') {
            p++;
            long s = 0;
            if (!isdigit((unsigned char)*p))
                return mk_err_set(err, MK_EINVAL, "cron: %s: a step needs a number", f->name);
            while (isdigit((unsigned char)*p) && s < 1000)
                s = s * 10 + (*p++ - '0');
            if (s < 1 || s > f->hi)
                return mk_err_set(err, MK_EINVAL, "cron: %s: step %ld is out of range 1-%d",
                                  f->name, s, f->hi);
            step = (int)s;
            /* "5/15" means 5-max/15. */
            if (single)
                hi = f->hi;
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= UINT64_C(1) << v;
        if (*p == '\0')
            break;
        if (*p != ',')
            return mk_err_set(err, MK_EINVAL, "cron: %s: unexpected '%.10s'", f->name, p);
        p++;
    }
    return 0;
}

int mk_cron_parse(const char *text, mk_cron_t *out, mk_err_t *err)
{
    if (text == NULL)
        return mk_err_set(err, MK_EINVAL, "cron: expression is missing");
    while (isspace((unsigned char)*text))
        text++;
    for (size_t i = 0; i < sizeof shorthands / sizeof *shorthands; i++) {
        if (strcasecmp(text, shorthands[i].name) == 0)
            text = shorthands[i].expr;
    }
    if (text[0] == '@')
        return mk_err_set(err, MK_EINVAL, "cron: unknown shorthand '%.20s'", text);
    char parts[NFIELDS][64];
    int n = 0;
    const char *p = text;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        size_t len = strcspn(p, " \t\r\n");
        if (n == NFIELDS || len >= sizeof parts[0])
            return mk_err_set(err, MK_EINVAL, "cron: '%.60s' is not 5 or 6 space-separated fields",
                              text);
        memcpy(parts[n], p, len);
        parts[n++][len] = '\0';
        p += len;
    }
    if (n != 5 && n != 6)
        return mk_err_set(err, MK_EINVAL, "cron: '%.60s' has %d fields, not 5 or 6", text, n);
    memset(out, 0, sizeof *out);
    uint64_t bits[NFIELDS];
    bool any[NFIELDS];
    bits[F_SEC] = 1; /* five fields: at second 0 */
    any[F_SEC] = false;
    for (int i = 0; i < n; i++) {
        int f = i + (n == 5);
        int rc = parse_field(&fields[f], parts[i], &bits[f], &any[f], err);
        if (rc != 0)
            return rc;
    }
    if (bits[F_DOW] & (UINT64_C(1) << 7)) /* 7 is Sunday too */
        bits[F_DOW] = (bits[F_DOW] | 1) & 0x7f;
    out->second = bits[F_SEC];
    out->minute = bits[F_MIN];
    out->hour = (uint32_t)bits[F_HOUR];
    out->dom = (uint32_t)bits[F_DOM];
    out->month = (uint32_t)bits[F_MONTH];
    out->dow = (uint32_t)bits[F_DOW];
    out->dom_any = any[F_DOM];
    out->dow_any = any[F_DOW];
    return 0;
}

static bool has(uint64_t bits, int v)
{
    return (bits >> v) & 1;
}

static bool day_matches(const mk_cron_t *c, const struct tm *tm)
{
    bool dom = has(c->dom, tm->tm_mday), dow = has(c->dow, tm->tm_wday);
    if (c->dom_any && c->dow_any)
        return true;
    if (c->dom_any)
        return dow;
    if (c->dow_any)
        return dom;
    return dom || dow;
}

int64_t mk_cron_next(const mk_cron_t *c, int64_t after_ms)
{
    time_t t = (time_t)(after_ms / 1000 + 1);
    if (after_ms < 0 && after_ms % 1000 != 0)
        t--; /* division rounds towards zero */
    const time_t limit = t + (time_t)8 * 366 * 86400;
    struct tm tm;
    while (t <= limit) {
        if (gmtime_r(&t, &tm) == NULL)
            return -1;
        if (!has(c->month, tm.tm_mon + 1)) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        } else if (!day_matches(c, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        } else if (!has(c->hour, tm.tm_hour)) {
            tm.tm_hour++;
            tm.tm_min = tm.tm_sec = 0;
        } else if (!has(c->minute, tm.tm_min)) {
            tm.tm_min++;
            tm.tm_sec = 0;
        } else if (!has(c->second, tm.tm_sec)) {
            tm.tm_sec++;
        } else {
            return (int64_t)t * 1000;
        }
        tm.tm_isdst = 0;
        t = timegm(&tm); /* normalises the overflowed field */
    }
    return -1;
}
