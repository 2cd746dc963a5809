/* Internals shared by the scenario compiler and the engine: compiled requests and targets. */
#ifndef MK_LOADGEN_SCENARIO_INT_H
#define MK_LOADGEN_SCENARIO_INT_H

#include "faker/faker.h"
#include "loadgen/loadgen.h"
#include "str/str.h"

#include <sys/socket.h>

typedef struct lg_seg {
    const char *lit; /* literal bytes (points into the owning template's text) or NULL */
    size_t len;
    int builtin;           /* index into the built-in faker table, or -1 */
    mk_faker_call_t *fake; /* {{$fake.Name}}, or NULL */
} lg_seg_t;

typedef struct lg_tmpl {
    char *text; /* owned text the literal segments point into */
    lg_seg_t *segs;
    size_t nsegs;
    bool dynamic;
} lg_tmpl_t;

typedef struct lg_target {
    char hostport[280]; /* "host:port", what allow-lists match */
    char host[256];     /* for TLS verification and SNI */
    bool tls;
    struct sockaddr_storage addr;
    socklen_t addrlen;
} lg_target_t;

typedef struct lg_request {
    int target;
    bool head;        /* HEAD: the response has no body */
    int http2;        /* the request's "http2": -1 unset (the run's), 0 false, 1 true */
    lg_tmpl_t head_t; /* request line and headers, without the blank line */
    lg_tmpl_t body_t; /* empty when has_body is false */
    bool has_body;
    char *prebuilt; /* the whole request when nothing is generated */
    size_t prebuilt_len;
} lg_request_t;

struct mk_loadgen_scenario {
    lg_request_t *req;
    size_t nreq;
    uint64_t *cumw; /* cumulative weights */
    uint64_t totalw;
    lg_target_t *targets;
    size_t ntargets;
    const char **hostptrs;
};

/* Renders request r into out (reset first). */
int lg_request_render(const lg_request_t *r, mk_faker_rng_t *rng, mk_buf_t *out, mk_buf_t *tmp);
/* Picks a request index by weight. */
size_t lg_pick(const mk_loadgen_scenario_t *sc, mk_faker_rng_t *rng);

#endif
