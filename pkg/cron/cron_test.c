/* Tests for cron expressions: parsing errors, and next firing times checked against dates worked
 * out by hand (UTC). */
#include "cron/cron.h"
#include "testing/testing.h"

#include <string.h>
#include <time.h>

/* Unix ms of a UTC date. */
static int64_t at(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm) * 1000;
}

static int64_t next(const char *expr, int64_t after)
{
    mk_cron_t c;
    mk_err_t err = {0};
    if (mk_cron_parse(expr, &c, &err) != 0)
        return -2;
    return mk_cron_next(&c, after);
}

static void test_next(void)
{
    int64_t t0 = at(2026, 12, 4, 20, 15, 30); /* a Friday */
    MK_CHECK_INT(next("* * * * *", t0), at(2026, 12, 4, 20, 16, 0));
    MK_CHECK_INT(next("*/15 * * * *", t0), at(2026, 12, 4, 20, 30, 0));
    MK_CHECK_INT(next("0 9 * * 1-5", t0), at(2026, 12, 7, 9, 0, 0)); /* next Monday */
    MK_CHECK_INT(next("0 9 * * MON-FRI", t0), at(2026, 12, 7, 9, 0, 0));
    MK_CHECK_INT(next("30 2 1 * *", t0), at(2027, 1, 1, 2, 30, 0));
    MK_CHECK_INT(next("0 0 29 2 *", t0), at(2028, 2, 29, 0, 0, 0)); /* the next leap day */
    MK_CHECK_INT(next("0 0 30 2 *", t0), -1);                       /* never */
    MK_CHECK_INT(next("@hourly", t0), at(2026, 12, 4, 21, 0, 0));
    MK_CHECK_INT(next("@daily", t0), at(2026, 12, 5, 0, 0, 0));
    MK_CHECK_INT(next("@weekly", t0), at(2026, 12, 6, 0, 0, 0)); /* Sunday */
    MK_CHECK_INT(next("@monthly", t0), at(2027, 1, 1, 0, 0, 0));
    MK_CHECK_INT(next("@yearly", t0), at(2027, 1, 1, 0, 0, 0));
    MK_CHECK_INT(next("0 0 * * 7", t0), at(2026, 12, 6, 0, 0, 0)); /* 7 is Sunday */
    MK_CHECK_INT(next("0 12 * JAN,jul *", t0), at(2027, 1, 1, 12, 0, 0));
    MK_CHECK_INT(next("5/20 * * * *", t0), at(2026, 12, 4, 20, 25, 0));
    MK_CHECK_INT(next("0 8-18/4 * * *", t0), at(2026, 12, 5, 8, 0, 0));
    /* Both day fields restricted: either one matches (the 13th, or any Friday). */
    MK_CHECK_INT(next("0 0 13 * FRI", t0), at(2026, 12, 11, 0, 0, 0));
    MK_CHECK_INT(next("0 0 5 * FRI", t0), at(2026, 12, 5, 0, 0, 0));
    /* Six fields: seconds first. */
    MK_CHECK_INT(next("*/2 * * * * *", t0), at(2026, 12, 4, 20, 15, 32));
    MK_CHECK_INT(next("0 0 0 1 1 *", t0), at(2027, 1, 1, 0, 0, 0));
    /* Strictly after: a time that matches is not returned for itself. */
    MK_CHECK_INT(next("* * * * *", at(2026, 12, 4, 20, 16, 0)), at(2026, 12, 4, 20, 17, 0));
    MK_CHECK_INT(next("* * * * *", at(2026, 12, 4, 20, 16, 0) - 1), at(2026, 12, 4, 20, 16, 0));
    /* Year end and month lengths. */
    MK_CHECK_INT(next("59 23 31 * *", at(2026, 11, 1, 0, 0, 0)), at(2026, 12, 31, 23, 59, 0));
    MK_CHECK_INT(next("0 0 31 * *", at(2027, 1, 31, 0, 0, 0)), at(2027, 3, 31, 0, 0, 0));
}

static void check_error(const char *expr, const char *want)
{
    mk_cron_t c;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_cron_parse(expr, &c, &err), MK_EINVAL);
    if (strstr(err.msg, want) == NULL)
        MK_CHECK_STR(err.msg, want);
}

static void test_errors(void)
{
    check_error("", "has 0 fields");
    check_error("* * * *", "has 4 fields");
    check_error("* * * * * * *", "not 5 or 6");
    check_error("61 * * * *", "minute: 61 is out of range 0-59");
    check_error("* 24 * * *", "hour: 24 is out of range 0-23");
    check_error("* * 0 * *", "day-of-month: 0 is out of range 1-31");
    check_error("* * * 13 *", "month: 13 is out of range 1-12");
    check_error("* * * * 8", "day-of-week: 8 is out of range 0-7");
    check_error("* * * FOO *", "month: unexpected 'FOO");
    check_error("*/0 * * * *", "minute: step 0 is out of range");
    check_error("*/ * * * *", "a step needs a number");
    check_error("10-5 * * * *", "range 10-5 runs backwards");
    check_error("1,,2 * * * *", "minute: unexpected");
    check_error("@fortnightly", "unknown shorthand");
    check_error(NULL, "missing");
}

int main(void)
{
    MK_RUN(test_next);
    MK_RUN(test_errors);
    return mk_testing_done();
}
