/* SOAP mocks: Mockarty's `soap` request context (path, service, method, action, conditions,
 * header) and `response.soapFault`, compiled once when the mock is saved.
 *
 * Indexing: a SOAP mock is in the route index under method "SOAP" and the route
 * "<pathPrefix><soap.path>/<method>" (soap.path defaults to "/soap"); a mock without a method
 * sits at "<endpoint>/%2A" and answers any operation. A call costs one probe for its operation
 * and, when nothing matched there, one for the catch-all.
 *
 * Responses are rendered at save time into whole envelopes, once per SOAP version: m->responses
 * hold the SOAP 1.1 answers (text/xml) and soap->v12->responses the SOAP 1.2 ones
 * (application/soap+xml), at the same index. A payload is an XML string (a template; wrapped in
 * the envelope unless it is one) or JSON turned into XML; a soapFault becomes a fault envelope
 * with status httpStatus (default 500). */
#ifndef MK_MOCK_SOAP_H
#define MK_MOCK_SOAP_H

#include "cond/cond.h"
#include "err/err.h"
#include "request/request.h"
#include "soap/soap.h"

#include <jansson.h>
#include <stdbool.h>

struct mk_mock;

#define MK_MOCK_SOAP_METHOD       "SOAP"
#define MK_MOCK_SOAP_ANY          "%2A" /* the route segment of mocks that answer any operation */
#define MK_MOCK_SOAP_DEFAULT_PATH "/soap"
#define MK_MOCK_SOAP_MAX_ROUTE    1024

/* One XPath condition: the expression and the assertion on its string value. */
typedef struct mk_mock_soap_xcond {
    char *expr;           /* owned, as written */
    mk_soap_xpath_t *xp;  /* compiled once */
    mk_cond_t *assertion; /* a header condition on MK_MOCK_SOAP_XVALUE holding the value */
} mk_mock_soap_xcond_t;

#define MK_MOCK_SOAP_XVALUE "x-soap-xpath-value"

typedef struct mk_mock_soap {
    size_t endpoint_len; /* m->route[0, endpoint_len) is the endpoint path */
    char *action;        /* soap.action; NULL: any */
    char *service;       /* soap.service (journal and diagnosis; not matched) */
    mk_mock_soap_xcond_t *xconds;
    size_t nxconds;
    /* The same mock compiled for SOAP 1.2: only its responses are used (owned reference). */
    struct mk_mock *v12;
} mk_mock_soap_t;

/* True when def is a SOAP mock: a non-empty `soap` object and no http or grpc section. */
bool mk_mock_soap_is(const json_t *def);
/* Compiles the `soap` section into m (route, method, conditions, m->soap). */
int mk_mock_soap_compile(struct mk_mock *m, const json_t *def, mk_err_t *err);
/* Compiles the responses of def into m, for 1.1, and into m->soap->v12, for 1.2, through
 * compile_responses (mock.c's, called with a rewritten definition). */
int mk_mock_soap_responses(struct mk_mock *m, const json_t *def,
                           int (*compile_responses)(struct mk_mock *, const json_t *, mk_err_t *),
                           mk_err_t *err);
void mk_mock_soap_free(mk_mock_soap_t *s);

/* The route of a call into buf: "<endpoint>/<operation>" (operation "" -> the catch-all).
 * Returns the length, 0 when it does not fit. */
size_t mk_mock_soap_route(mk_str_t endpoint, mk_str_t operation, char *buf, size_t cap);

/* True when every XPath condition of s holds for msg. */
bool mk_mock_soap_xconds_hold(const mk_mock_soap_t *s, const mk_soap_msg_t *msg);
/* Why XPath condition i fails for msg, one line into buf. */
void mk_mock_soap_xcond_explain(const mk_mock_soap_t *s, size_t i, const mk_soap_msg_t *msg,
                                char *buf, size_t size);

#endif
