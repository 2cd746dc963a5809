/* HTTP/1.1 response framing (see response.h). */
#include "loadgen/response.h"
#include "str/str.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void lg_resp_reset(lg_resp_t *c, bool head_request)
{
    c->ps = P_HEAD;
    c->head_request = head_request;
    c->status = 0;
    c->hlen = 0;
}

void lg_resp_free(lg_resp_t *c)
{
    free(c->hbuf);
    c->hbuf = NULL;
}

static bool header_is(const char *name, size_t nlen, const char *want)
{
    return nlen == strlen(want) && strncasecmp(name, want, nlen) == 0;
}

static bool value_has(const char *v, size_t vlen, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i + tl <= vlen; i++)
        if (strncasecmp(v + i, token, tl) == 0)
            return true;
    return false;
}

/* Parses the status line and the headers that frame the body. -1 when malformed. */
static int parse_head(lg_resp_t *c, const char *h, size_t len)
{
    if (len < 12 || memcmp(h, "HTTP/1.", 7) != 0 || h[8] != ' ')
        return -1;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (h[i] < '0' || h[i] > '9')
            return -1;
        st = st * 10 + (h[i] - '0');
    }
    c->status = st;
    c->keepalive = h[7] == '1';
    bool chunked = false, has_len = false;
    uint64_t clen = 0;
    const char *p = memchr(h, '\n', len), *end = h + len;
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon) {
            size_t nlen = (size_t)(colon - p);
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vlen = (size_t)(eol - v);
            if (header_is(p, nlen, "content-length")) {
                has_len = true;
                clen = 0;
                for (const char *q = v; q < eol && *q >= '0' && *q <= '9'; q++)
                    clen = clen * 10 + (uint64_t)(*q - '0');
            } else if (header_is(p, nlen, "transfer-encoding")) {
                chunked = value_has(v, vlen, "chunked");
            } else if (header_is(p, nlen, "connection")) {
                if (value_has(v, vlen, "close"))
                    c->keepalive = false;
                else if (value_has(v, vlen, "keep-alive"))
                    c->keepalive = true;
            }
        }
        p = eol;
    }
    if (c->head_request || st == 204 || st == 304 || (st >= 100 && st < 200))
        c->ps = P_LEN, c->left = 0;
    else if (chunked)
        c->ps = P_CHUNK_SIZE, c->linelen = 0, c->chunk = 0, c->chunk_hex_done = false;
    else if (has_len)
        c->ps = P_LEN, c->left = clen;
    else
        c->ps = P_CLOSE, c->keepalive = false;
    return 0;
}

/* Consumes body bytes; returns 1 when the response is complete, 0 for more, -1 when malformed. */
static int parse_body(lg_resp_t *c, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n || (c->ps == P_LEN && c->left == 0)) {
        switch (c->ps) {
        case P_LEN: {
            size_t take = n - i < c->left ? n - i : (size_t)c->left;
            c->left -= take;
            i += take;
            if (c->left == 0)
                return 1;
            break;
        }
        case P_CHUNK_SIZE: {
            char ch = p[i++];
            if (ch == '\n') {
                if (!c->linelen)
                    return -1;
                c->ps = c->chunk ? P_CHUNK_DATA : P_TRAILER;
                c->left = c->chunk;
                c->linelen = 0;
                break;
            }
            int h = mk_str_hexval((unsigned char)ch);
            if (h >= 0 && !c->chunk_hex_done) {
                if (c->chunk >> 58)
                    return -1;
                c->chunk = c->chunk * 16 + (uint64_t)h;
                c->linelen++;
            } else if (ch != '\r') {
                c->chunk_hex_done = true; /* extension: ignored */
            }
            break;
        }
        case P_CHUNK_DATA: {
            size_t take = n - i < c->left ? n - i : (size_t)c->left;
            c->left -= take;
            i += take;
            if (c->left == 0)
                c->ps = P_CHUNK_CRLF, c->linelen = 0;
            break;
        }
        case P_CHUNK_CRLF:
            if (p[i++] == '\n') {
                c->ps = P_CHUNK_SIZE;
                c->chunk = 0;
                c->linelen = 0;
                c->chunk_hex_done = false;
            }
            break;
        case P_TRAILER: {
            char ch = p[i++];
            if (ch == '\n') {
                if (c->linelen == 0)
                    return 1;
                c->linelen = 0;
            } else if (ch != '\r') {
                c->linelen++;
            }
            break;
        }
        case P_CLOSE:
            return 0; /* until the server closes */
        case P_HEAD:
            return -1;
        }
    }
    return 0;
}

/* Feeds received bytes: 1 complete, 0 more needed, -1 malformed, -2 header too large. */
int lg_resp_feed(lg_resp_t *c, const char *p, size_t n)
{
    if (c->ps != P_HEAD)
        return parse_body(c, p, n);
    const char *head = p;
    size_t hlen = 0, rest_off = 0;
    if (c->hlen == 0) {
        const char *e = memmem(p, n, "\r\n\r\n", 4);
        if (e) {
            hlen = (size_t)(e - p) + 4;
            rest_off = hlen;
        }
    }
    if (!hlen) {
        if (c->hlen + n > LG_RESP_HEAD_MAX)
            return -2;
        if (!c->hbuf && !(c->hbuf = malloc(LG_RESP_HEAD_MAX)))
            return -1;
        size_t from = c->hlen > 3 ? c->hlen - 3 : 0;
        memcpy(c->hbuf + c->hlen, p, n);
        c->hlen += n;
        const char *e = memmem(c->hbuf + from, c->hlen - from, "\r\n\r\n", 4);
        if (!e)
            return 0;
        hlen = (size_t)(e - c->hbuf) + 4;
        head = c->hbuf;
        rest_off = n - (c->hlen - hlen); /* offset in p where the body starts */
    }
    if (parse_head(c, head, hlen) != 0)
        return -1;
    if (c->status >= 100 && c->status < 200 && c->status != 101) {
        /* an interim answer: the real one follows */
        c->ps = P_HEAD;
        c->hlen = 0;
        return rest_off < n ? lg_resp_feed(c, p + rest_off, n - rest_off) : 0;
    }
    c->hlen = 0;
    return parse_body(c, p + rest_off, n - rest_off);
}
