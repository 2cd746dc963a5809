/* SOAP 1.1 and 1.2 over libxml2 (the only module that includes it): safe envelope parsing, the
 * operation and action of a call, XPath conditions compiled once, response envelopes and faults
 * for either version, JSON turned into XML, and sample mocks from a WSDL 1.1 document.
 *
 * Parsing is hostile-input safe: no network, no DTD at all (a DOCTYPE is refused, so no external
 * entity and no entity expansion), at most MK_SOAP_MAX_BYTES of input and MK_SOAP_MAX_DEPTH
 * levels of elements. */
#ifndef MK_SOAP_H
#define MK_SOAP_H

#include "err/err.h"
#include "str/str.h"

#include <jansson.h>
#include <stdbool.h>

#define MK_SOAP_MAX_BYTES (4u << 20)
#define MK_SOAP_MAX_DEPTH 64
#define MK_SOAP_MAX_XPATH 1024 /* characters of one XPath condition */
#define MK_SOAP_WSDL_MAX  (8u << 20)
#define MK_SOAP_NS_11     "http://schemas.xmlsoap.org/soap/envelope/"
#define MK_SOAP_NS_12     "http://www.w3.org/2003/05/soap-envelope"
#define MK_SOAP_CTYPE_11  "text/xml; charset=utf-8"
#define MK_SOAP_CTYPE_12  "application/soap+xml; charset=utf-8"

typedef enum mk_soap_version {
    MK_SOAP_11 = 0,
    MK_SOAP_12 = 1,
} mk_soap_version_t;

/* ---- requests ---- */

typedef struct mk_soap_msg mk_soap_msg_t;

/* Parses an envelope. MK_ETOOBIG past MK_SOAP_MAX_BYTES; MK_EINVAL with a message for XML that
 * does not parse, a DOCTYPE, nesting past MK_SOAP_MAX_DEPTH, or a document that is not a SOAP
 * 1.1/1.2 Envelope with a Body. Caller frees *out with mk_soap_msg_free(). */
int mk_soap_parse(const char *data, size_t len, mk_soap_msg_t **out, mk_err_t *err);
void mk_soap_msg_free(mk_soap_msg_t *msg);

mk_soap_version_t mk_soap_msg_version(const mk_soap_msg_t *msg);
/* The local name of the Body's first element (borrowed), or "" for an empty Body. */
const char *mk_soap_msg_operation(const mk_soap_msg_t *msg);
/* The operation element's content as JSON (new reference): child elements by local name (a
 * repeated name becomes an array), text-only elements as strings, attributes as "@name", mixed
 * text as "#text". {} for an empty Body. Bounded by the message's own size. */
json_t *mk_soap_msg_body_json(const mk_soap_msg_t *msg);

/* The action of a call: SOAP 1.2's `action` parameter of Content-Type, else the SOAPAction
 * header (quotes removed). Writes a NUL-terminated string into buf (empty when none). */
void mk_soap_action(mk_str_t content_type, mk_str_t soap_action, char *buf, size_t size);

/* The version a request's Content-Type announces: 1.2 for application/soap+xml, else 1.1. */
mk_soap_version_t mk_soap_version_of(mk_str_t content_type);

/* ---- XPath conditions ---- */

typedef struct mk_soap_xpath mk_soap_xpath_t;

/* Compiles expr (at most MK_SOAP_MAX_XPATH characters). Prefixes resolve at evaluation against
 * the namespaces the envelope declares, plus soap/soap11 (1.1) and soap12/env (1.2).
 * Caller frees with mk_soap_xpath_free(). */
int mk_soap_xpath_compile(const char *expr, mk_soap_xpath_t **out, mk_err_t *err);
void mk_soap_xpath_free(mk_soap_xpath_t *xp);
/* Evaluates xp on msg: true when it selects something (a non-empty node set, a true boolean, a
 * number or a non-empty string); *text (caller frees with free(); may be NULL) gets its string
 * value: the first node's text content, or the number/boolean/string result. */
bool mk_soap_xpath_eval(const mk_soap_xpath_t *xp, const mk_soap_msg_t *msg, char **text);

/* ---- responses ---- */

/* The envelope around inner (an XML fragment, borrowed) for version v into out. */
int mk_soap_wrap(mk_soap_version_t v, mk_str_t inner, mk_buf_t *out);
/* True when text is a whole envelope already (its first element's local name is Envelope). */
bool mk_soap_is_envelope(mk_str_t text);
/* JSON as XML into out: keys are element names (an array repeats the element), "@name" keys are
 * attributes, "#text" is text; scalars are escaped text. A top-level {"Envelope": {"Body": x}}
 * (any prefix) gives x's XML, so the caller wraps it for the request's version.
 * MK_EINVAL when a key is not an XML name. */
int mk_soap_json_to_xml(const json_t *v, mk_buf_t *out, mk_err_t *err);
/* Appends s escaped for XML text and attribute values. */
int mk_soap_escape(mk_buf_t *out, mk_str_t s);

typedef struct mk_soap_fault {
    const char *code;   /* "soap:Client", "Client", "Server", "Sender", ... (NULL: Server) */
    const char *string; /* faultString / Reason */
    const char *actor;  /* NULL or "" for none */
    const char *detail; /* raw XML fragment, or text (escaped when it is not well-formed XML) */
} mk_soap_fault_t;

/* A whole fault envelope for version v into out: 1.1 faultcode/faultstring/faultactor/detail;
 * 1.2 Code/Value (Client -> Sender, Server -> Receiver), Reason/Text, Role, Detail. */
int mk_soap_fault(mk_soap_version_t v, const mk_soap_fault_t *f, mk_buf_t *out);

/* ---- WSDL ---- */

/* One mock definition per operation of a WSDL 1.1 document (SOAP 1.1 or 1.2 bindings): a new
 * JSON array of {"soap": {service, method, action, path}, "response": {statusCode, payload}}
 * where payload is a sample response element generated from the inline XSD (elements,
 * complexType sequence/all/choice, simple types and enumerations, attributes). path overrides
 * the endpoint path (NULL: the path of the service's address, else "/soap"). MK_EINVAL with a
 * message for a document that is not a usable WSDL. */
int mk_soap_wsdl_mocks(const char *data, size_t len, const char *path, json_t **out, mk_err_t *err);

/* The WSDL document again (into out) with every SOAP address location replaced by base followed
 * by the endpoint path mk_soap_wsdl_mocks gives it (path overrides as there), so clients that
 * load the WSDL from the mock server call the mock server. */
int mk_soap_wsdl_rewrite(const char *data, size_t len, const char *base, const char *path,
                         mk_buf_t *out, mk_err_t *err);

#endif
