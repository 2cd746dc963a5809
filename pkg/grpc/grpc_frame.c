/* gRPC framing, timeouts, status names and metadata encodings (see grpc_frame.h). */
#include "grpc/grpc_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char *const code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *mk_grpc_code_name(int code)
{
    if (code < 0 || code >= (int)(sizeof code_names / sizeof code_names[0]))
        return "UNKNOWN";
    return code_names[code];
}

static const struct {
    int mk;
    int grpc;
} err_codes[] = {
    {MK_OK, MK_GRPC_OK},
    {MK_EINVAL, MK_GRPC_INVALID_ARGUMENT},
    {MK_EUNAUTH, MK_GRPC_UNAUTHENTICATED},
    {MK_EFORBIDDEN, MK_GRPC_PERMISSION_DENIED},
    {MK_ENOTFOUND, MK_GRPC_NOT_FOUND},
    {MK_ECONFLICT, MK_GRPC_ALREADY_EXISTS},
    {MK_ETOOBIG, MK_GRPC_RESOURCE_EXHAUSTED},
    {MK_ERATE, MK_GRPC_RESOURCE_EXHAUSTED},
    {MK_EUNAVAIL, MK_GRPC_UNAVAILABLE},
    {MK_EMETHOD, MK_GRPC_UNIMPLEMENTED},
};

int mk_grpc_code_from_err(int mk_code)
{
    for (size_t i = 0; i < sizeof err_codes / sizeof err_codes[0]; i++)
        if (err_codes[i].mk == mk_code)
            return err_codes[i].grpc;
    return MK_GRPC_INTERNAL;
}

void mk_grpc_decoder_init(mk_grpc_decoder_t *d, size_t max)
{
    memset(d, 0, sizeof *d);
    d->max = max ? max : MK_GRPC_DEFAULT_MAX_MSG;
}

void mk_grpc_decoder_free(mk_grpc_decoder_t *d)
{
    free(d->msg);
    d->msg = NULL;
}

bool mk_grpc_decoder_partial(const mk_grpc_decoder_t *d)
{
    return d->prefix_len > 0;
}

/* Records the status to answer with; the error message is set by the caller. */
static int decoder_fail(mk_grpc_decoder_t *d, int code, int status)
{
    d->status = status;
    return code;
}

/* Inflates a gzip message into at most d->max bytes (a small bomb cannot grow past it). */
static int inflate_msg(mk_grpc_decoder_t *d, const uint8_t *in, size_t len, uint8_t **out,
                       size_t *out_len, mk_err_t *err)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        mk_err_set(err, MK_ENOMEM, "inflateInit2 failed");
        return decoder_fail(d, MK_ENOMEM, MK_GRPC_RESOURCE_EXHAUSTED);
    }
    size_t cap = len * 4 + 64 < d->max ? len * 4 + 64 : d->max + 1;
    uint8_t *buf = malloc(cap);
    int zrc = Z_OK, rc = 0;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    size_t have = 0;
    while (buf != NULL) {
        z.next_out = buf + have;
        z.avail_out = (uInt)(cap - have);
        zrc = inflate(&z, Z_NO_FLUSH);
        have = cap - z.avail_out;
        if (zrc == Z_STREAM_END || (zrc != Z_OK && zrc != Z_BUF_ERROR) || have > d->max)
            break;
        if (z.avail_out > 0 && z.avail_in == 0)
            break; /* input ended before the stream did */
        if (z.avail_out == 0) {
            size_t ncap = cap * 2 < d->max + 1 ? cap * 2 : d->max + 1;
            uint8_t *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (nb == NULL) {
                have = d->max + 1; /* full at max + 1 bytes: over the limit */
                break;
            }
            buf = nb;
            cap = ncap;
        }
    }
    inflateEnd(&z);
    if (buf == NULL) {
        mk_err_set(err, MK_ENOMEM, "out of memory inflating a message");
        rc = decoder_fail(d, MK_ENOMEM, MK_GRPC_RESOURCE_EXHAUSTED);
    } else if (have > d->max) {
        mk_err_set(err, MK_ETOOBIG, "message inflates past the limit of %zu bytes", d->max);
        rc = decoder_fail(d, MK_ETOOBIG, MK_GRPC_RESOURCE_EXHAUSTED);
    } else if (zrc != Z_STREAM_END) {
        mk_err_set(err, MK_EINVAL, "compressed message is not valid gzip");
        rc = decoder_fail(d, MK_EINVAL, MK_GRPC_INTERNAL);
    }
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = have;
    return 0;
}

int mk_grpc_decoder_feed(mk_grpc_decoder_t *d, const uint8_t *data, size_t len, mk_grpc_msg_fn fn,
                         void *ud, mk_err_t *err)
{
    if (d->status != 0)
        return mk_err_set(err, MK_EINVAL, "stream already failed");
    while (len > 0) {
        if (d->prefix_len < MK_GRPC_PREFIX_LEN) {
            size_t take = MK_GRPC_PREFIX_LEN - d->prefix_len;
            if (take > len)
                take = len;
            memcpy(d->prefix + d->prefix_len, data, take);
            d->prefix_len += take;
            data += take;
            len -= take;
            if (d->prefix_len < MK_GRPC_PREFIX_LEN)
                break;
            if (d->prefix[0] == 1 && !d->gzip) {
                mk_err_set(err, MK_EINVAL, "compressed message without a grpc-encoding");
                return decoder_fail(d, MK_EINVAL, MK_GRPC_INTERNAL);
            }
            if (d->prefix[0] > 1) {
                mk_err_set(err, MK_EINVAL, "invalid message flag byte %u", d->prefix[0]);
                return decoder_fail(d, MK_EINVAL, MK_GRPC_INTERNAL);
            }
            size_t n = (size_t)d->prefix[1] << 24 | (size_t)d->prefix[2] << 16 |
                       (size_t)d->prefix[3] << 8 | d->prefix[4];
            if (n > d->max) {
                mk_err_set(err, MK_ETOOBIG, "message of %zu bytes is over the limit of %zu", n,
                           d->max);
                return decoder_fail(d, MK_ETOOBIG, MK_GRPC_RESOURCE_EXHAUSTED);
            }
            d->msg_len = n;
            d->msg_have = 0;
            if (n > 0) {
                d->msg = malloc(n);
                if (d->msg == NULL) {
                    mk_err_set(err, MK_ENOMEM, "out of memory for a %zu-byte message", n);
                    return decoder_fail(d, MK_ENOMEM, MK_GRPC_RESOURCE_EXHAUSTED);
                }
            }
        }
        size_t take = d->msg_len - d->msg_have;
        if (take > len)
            take = len;
        if (take > 0) {
            memcpy(d->msg + d->msg_have, data, take);
            d->msg_have += take;
            data += take;
            len -= take;
        }
        if (d->msg_have < d->msg_len)
            break;
        /* Complete: reset before the callback so it may feed again or free the decoder. */
        uint8_t *msg = d->msg;
        size_t n = d->msg_len;
        if (d->prefix[0] == 1) {
            uint8_t *plain = NULL;
            int rc = inflate_msg(d, msg, n, &plain, &n, err);
            free(msg);
            d->msg = NULL;
            if (rc < 0)
                return rc;
            msg = plain;
        }
        d->msg = NULL;
        d->prefix_len = 0;
        d->msg_len = d->msg_have = 0;
        int rc = fn(ud, msg ? msg : (const uint8_t *)"", n);
        free(msg);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mk_grpc_frame_encode(mk_buf_t *out, const uint8_t *msg, size_t len)
{
    if (len > UINT32_MAX)
        return MK_ETOOBIG;
    uint8_t p[MK_GRPC_PREFIX_LEN] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                                     (uint8_t)(len >> 8), (uint8_t)len};
    int rc = mk_buf_append(out, p, sizeof p);
    if (rc == 0 && len > 0)
        rc = mk_buf_append(out, msg, len);
    return rc;
}

static const struct {
    char unit;
    int64_t num, den; /* value * num / den = milliseconds */
} timeout_units[] = {
    {'H', 3600000, 1}, {'M', 60000, 1}, {'S', 1000, 1},
    {'m', 1, 1},       {'u', 1, 1000},  {'n', 1, 1000000},
};

int mk_grpc_timeout_parse(mk_str_t v, int64_t *ms)
{
    if (v.len < 2 || v.len > 9)
        return MK_EINVAL;
    int64_t n = 0;
    for (size_t i = 0; i + 1 < v.len; i++) {
        if (v.base[i] < '0' || v.base[i] > '9')
            return MK_EINVAL;
        n = n * 10 + (v.base[i] - '0');
    }
    for (size_t i = 0; i < sizeof timeout_units / sizeof timeout_units[0]; i++) {
        if (timeout_units[i].unit != v.base[v.len - 1])
            continue;
        int64_t den = timeout_units[i].den;
        *ms = (n * timeout_units[i].num + den - 1) / den;
        return 0;
    }
    return MK_EINVAL;
}

void mk_grpc_timeout_format(int64_t ms, char *out, size_t size)
{
    if (ms < 0)
        ms = 0;
    /* At most 8 digits: fall back to coarser units for long timeouts. */
    if (ms <= 99999999)
        snprintf(out, size, "%lldm", (long long)ms);
    else if (ms / 1000 <= 99999999)
        snprintf(out, size, "%lldS", (long long)(ms / 1000));
    else
        snprintf(out, size, "%lldH",
                 (long long)(ms / 3600000 > 99999999 ? 99999999 : ms / 3600000));
}

int mk_grpc_message_encode(mk_buf_t *out, const char *msg, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        int rc;
        if (c >= 0x20 && c <= 0x7e && c != '%') {
            rc = mk_buf_append(out, &msg[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = mk_buf_append(out, e, 3);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int mk_grpc_message_decode(mk_buf_t *out, const char *msg, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = msg[i];
        if (c == '%' && i + 2 < len && mk_str_hexval(msg[i + 1]) >= 0 &&
            mk_str_hexval(msg[i + 2]) >= 0) {
            c = (char)(mk_str_hexval(msg[i + 1]) << 4 | mk_str_hexval(msg[i + 2]));
            i += 2;
        }
        int rc = mk_buf_append(out, &c, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int mk_grpc_base64_encode(mk_buf_t *out, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63], b64[v >> 6 & 63], b64[v & 63]};
        size_t n = len - i >= 3 ? 4 : len - i + 1;
        int rc = mk_buf_append(out, q, n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int mk_grpc_base64_decode(mk_buf_t *out, const char *text, size_t len)
{
    while (len > 0 && text[len - 1] == '=')
        len--;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val(text[i]);
        if (v < 0)
            return MK_EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char c = (char)(acc >> bits & 0xff);
            int rc = mk_buf_append(out, &c, 1);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}
