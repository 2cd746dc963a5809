/* The protocol-independent view of one incoming request that matching, conditions and templates
 * read. The HTTP layer fills the slices (borrowed, valid for the request's lifetime); the lazily
 * parsed parts (query parameters, JSON body) are built on first use and released by
 * mk_request_release(). */
#ifndef MK_REQUEST_H
#define MK_REQUEST_H

#include "str/str.h"

#include <jansson.h>

typedef struct mk_header {
    mk_str_t name;
    mk_str_t value;
} mk_header_t;

typedef struct mk_request {
    mk_str_t method;
    mk_str_t path;  /* without the query string, as received (not percent-decoded) */
    mk_str_t query; /* raw query string without the '?' */
    const mk_header_t *headers;
    size_t nheaders;
    mk_str_t body;

    /* Set by the server that answered, for metrics: the protocol of the mock call (one of
     * MK_METRICS_PROTOCOLS; NULL is plain HTTP) and whether a mock answered it. */
    const char *served_protocol;
    bool served_matched;
    /* With served_protocol, what was called (the SOAP operation...), for the journal. */
    mk_str_t served_operation;

    /* Lazily built; private to request.c. */
    mk_header_t *params_; /* decoded query parameters, one malloc'd block */
    size_t nparams_;
    int params_state_; /* 0 not parsed, 1 parsed */
    json_t *json_;
    int json_state_; /* 0 not parsed, 1 parsed (json_ may be NULL when the body is not JSON) */
} mk_request_t;

/* Initializes the lazily built state; the caller sets the public slices. */
void mk_request_init(mk_request_t *req);
/* Releases what the getters built. The request may not be used afterwards. */
void mk_request_release(mk_request_t *req);

/* First value of header name (ASCII case-insensitive); returns false when absent. */
bool mk_request_header(const mk_request_t *req, mk_str_t name, mk_str_t *value);
/* Up to max values of header name, in order; returns how many exist (may exceed max). */
size_t mk_request_header_values(const mk_request_t *req, mk_str_t name, mk_str_t *out, size_t max);

/* The credential a client sent, as Mockarty's SDKs send it: `Authorization: Bearer <token>`, else
 * `X-API-Key: <token>`. Returns false when there is none. */
bool mk_request_credential(const mk_request_t *req, mk_str_t *token);

/* First value of query parameter name, percent-decoded; returns false when absent. The value is
 * borrowed from the request. */
bool mk_request_query_param(mk_request_t *req, mk_str_t name, mk_str_t *value);

/* The body parsed as JSON (borrowed reference), or NULL when it is empty or not JSON. */
json_t *mk_request_json(mk_request_t *req);
/* Makes json (takes the reference) what mk_request_json answers, whatever the body is: a
 * protocol whose body is not JSON (SOAP) gives conditions and templates a JSON view of it. */
void mk_request_set_json(mk_request_t *req, json_t *json);

#endif
