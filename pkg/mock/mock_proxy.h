/* A proxy mock's upstream (Mockarty's `proxy`), validated and compiled once when the mock is
 * saved: where requests go, what is added to or removed from them, and what is changed in the
 * upstream's answer. Served by pkg/serve (serve_proxy.c). */
#ifndef MK_MOCK_PROXY_H
#define MK_MOCK_PROXY_H

#include "err/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MK_MOCK_PROXY_MAX_HEADERS    32
#define MK_MOCK_PROXY_MAX_TIMEOUT_MS 300000

typedef struct mk_mock_proxy_header {
    char *name, *value; /* owned */
} mk_mock_proxy_header_t;

typedef struct mk_mock_proxy {
    char *target; /* scheme://authority[/base], without a trailing '/' (owned) */
    size_t target_len;
    char *strip_prefix; /* removed from the request path before it is appended; NULL: none */
    bool insecure;      /* do not verify the upstream's TLS certificate */
    uint32_t timeout_ms, connect_timeout_ms; /* 0: the client's defaults (30 s, 5 s) */
    /* Sent upstream: "Name: value" lines added (owned), header names not forwarded (owned). */
    char **add_lines;
    size_t nadd;
    char **remove;
    size_t nremove;
    /* Changes to the answer: status (0: the upstream's), headers set (replacing the upstream's
     * of the same name), a JSON object merged into a JSON object body (owned, or NULL). */
    int status;
    mk_mock_proxy_header_t *headers;
    size_t nheaders;
    json_t *merge;
    char *record; /* a recorder session's id: each exchange goes to it (owned); NULL: none */
} mk_mock_proxy_t;

/* Compiles def["proxy"] (borrowed) into *out; *out is NULL when the mock has no proxy. On a bad
 * definition, MK_EINVAL naming the field ("proxy.target: ..."). */
int mk_mock_proxy_parse(const json_t *def, mk_mock_proxy_t **out, mk_err_t *err);
void mk_mock_proxy_free(mk_mock_proxy_t *p);

/* Merges src into dst (both borrowed; dst is changed): objects member by member, recursively;
 * anything else in src replaces dst's value. */
void mk_mock_proxy_merge(json_t *dst, const json_t *src);

#endif
