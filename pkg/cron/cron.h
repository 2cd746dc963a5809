/* Cron expressions: the standard five fields (minute hour day-of-month month day-of-week), an
 * optional leading seconds field (six fields), the @yearly/@monthly/@weekly/@daily/@hourly
 * shorthands, lists, ranges, steps and month/day names. Times are UTC. */
#ifndef MK_CRON_H
#define MK_CRON_H

#include "err/err.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct mk_cron {
    uint64_t second, minute; /* bit n: value n allowed */
    uint32_t hour, dom, month, dow;
    /* When both day fields are restricted a day matches either (cron's rule); when one is '*',
     * only the other decides. */
    bool dom_any, dow_any;
} mk_cron_t;

/* Parses text into *out. MK_EINVAL names the field and what is wrong, e.g.
 * "cron: hour: 25 is out of range 0-23". */
int mk_cron_parse(const char *text, mk_cron_t *out, mk_err_t *err);

/* The first time strictly after after_ms (unix ms) the expression fires, in unix ms, or -1 when it
 * never does within the next eight years (e.g. "0 0 30 2 *"). */
int64_t mk_cron_next(const mk_cron_t *c, int64_t after_ms);

#endif
