/* Error object helpers. */
#include "err/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mk_err_set(mk_err_t *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->cause[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void mk_err_prefix(mk_err_t *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    char prefix[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation of a very long message is acceptable: the start names the field. */
    size_t n = strnlen(prefix, sizeof prefix);
    if (n > sizeof err->msg - 3)
        n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3;
    size_t ol = strnlen(old, room);
    memcpy(err->msg + n + 2, old, ol);
    err->msg[n + 2 + ol] = '\0';
}

void mk_err_clear(mk_err_t *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->msg[0] = '\0';
    err->cause[0] = '\0';
}

const char *mk_err_code_name(int code)
{
    switch (code) {
    case MK_EINVAL:
    case MK_ETOOBIG:
        return "validation";
    case MK_EUNAUTH:
        return "unauthorized";
    case MK_EFORBIDDEN:
        return "forbidden";
    case MK_ENOTFOUND:
        return "not_found";
    case MK_ECONFLICT:
        return "conflict";
    case MK_ERATE:
        return "rate_limit";
    case MK_EUNAVAIL:
        return "unavailable";
    case MK_EMETHOD:
        return "method_not_allowed";
    default:
        return "internal";
    }
}

int mk_err_http_status(int code)
{
    switch (code) {
    case MK_OK:
        return 200;
    case MK_EINVAL:
        return 400;
    case MK_EUNAUTH:
        return 401;
    case MK_EFORBIDDEN:
        return 403;
    case MK_ENOTFOUND:
        return 404;
    case MK_ECONFLICT:
        return 409;
    case MK_ETOOBIG:
        return 413;
    case MK_ERATE:
        return 429;
    case MK_EUNAVAIL:
        return 503;
    case MK_EMETHOD:
        return 405;
    default:
        return 500;
    }
}
