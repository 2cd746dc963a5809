/* SOAP envelopes over libxml2: safe parsing, XPath, faults, JSON to XML (see soap.h). */
#include "soap/soap.h"
#include "soap/soap_xml.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NS 64

struct mk_soap_msg {
    xmlDocPtr doc;
    xmlNodePtr op; /* the Body's first element, NULL for an empty Body */
    mk_soap_version_t version;
    size_t nns;
    struct {
        const xmlChar *prefix, *href; /* borrowed from the document */
    } ns[MAX_NS];
};

struct mk_soap_xpath {
    xmlXPathCompExprPtr comp;
};

/* libxml2 reports through per-thread handlers that print by default; ours stay silent (errors
 * reach callers as mk_err_t messages). */
static void quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void quiet_structured(void *ctx, xmlErrorPtr e)
{
    (void)ctx;
    (void)e;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libxml(void)
{
    xmlInitParser();
}

void mk_soap_xml_init(void)
{
    static _Thread_local bool silenced;
    pthread_once(&init_once, init_libxml);
    if (!silenced) {
        xmlSetGenericErrorFunc(NULL, quiet);
        xmlSetStructuredErrorFunc(NULL, quiet_structured);
        silenced = true;
    }
}

/* A DOCTYPE stops the parse: SOAP forbids DTDs, and without one there is no entity to expand
 * and nothing external to load. */
static void refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
    (void)name;
    (void)ext;
    (void)sys;
    xmlParserCtxtPtr ctxt = ctx;
    *(bool *)ctxt->_private = true;
    xmlStopParser(ctxt);
}

/* Deepest element nesting of the tree under root, stopping once past limit. */
static bool depth_ok(xmlNodePtr root, int limit)
{
    int depth = 0;
    xmlNodePtr n = root;
    while (n != NULL) {
        if (n->type == XML_ELEMENT_NODE && n->children != NULL) {
            if (++depth > limit)
                return false;
            n = n->children;
            continue;
        }
        while (n != NULL && n->next == NULL) {
            n = n->parent;
            if (n == NULL || n->type == XML_DOCUMENT_NODE)
                return true;
            depth--;
        }
        if (n != NULL)
            n = n->next;
    }
    return true;
}

int mk_soap_xml_read(const char *data, size_t len, size_t max, xmlDocPtr *out, mk_err_t *err)
{
    *out = NULL;
    if (len > max)
        return mk_err_set(err, MK_ETOOBIG, "XML document larger than %zu bytes", max);
    if (len == 0)
        return mk_err_set(err, MK_EINVAL, "empty XML document");
    mk_soap_xml_init();
    xmlParserCtxtPtr ctxt = xmlCreateMemoryParserCtxt(data, (int)len);
    if (ctxt == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    bool dtd = false;
    ctxt->_private = &dtd;
    ctxt->sax->internalSubset = refuse_dtd;
    /* No XML_PARSE_NOENT (entities stay unexpanded), no XML_PARSE_DTDLOAD, no XML_PARSE_HUGE. */
    xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                XML_PARSE_NOCDATA | XML_PARSE_NSCLEAN);
    xmlParseDocument(ctxt);
    int rc = 0;
    xmlDocPtr doc = ctxt->myDoc;
    if (dtd) {
        rc = mk_err_set(err, MK_EINVAL, "a DOCTYPE is not allowed (no DTD, no entities)");
    } else if (!ctxt->wellFormed || doc == NULL) {
        const char *m = ctxt->lastError.message;
        size_t ml = m ? strlen(m) : 0;
        while (ml > 0 && m[ml - 1] == '\n')
            ml--;
        rc = mk_err_set(err, MK_EINVAL, "malformed XML at line %d: %.*s", ctxt->lastError.line,
                        (int)(ml > 200 ? 200 : ml), m ? m : "parse error");
    } else if (!depth_ok(xmlDocGetRootElement(doc), MK_SOAP_MAX_DEPTH)) {
        rc = mk_err_set(err, MK_EINVAL, "XML nested deeper than %d elements", MK_SOAP_MAX_DEPTH);
    }
    if (rc == 0) {
        *out = doc;
        ctxt->myDoc = NULL;
    } else if (doc != NULL) {
        xmlFreeDoc(doc);
        ctxt->myDoc = NULL;
    }
    xmlFreeParserCtxt(ctxt);
    return rc;
}

xmlNodePtr mk_soap_xml_first_elem(xmlNodePtr n)
{
    for (; n != NULL; n = n->next)
        if (n->type == XML_ELEMENT_NODE)
            return n;
    return NULL;
}

bool mk_soap_xml_is(xmlNodePtr n, const char *ns, const char *local)
{
    if (n == NULL || n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, local) != 0)
        return false;
    if (ns == NULL)
        return true;
    return n->ns != NULL && strcmp((const char *)n->ns->href, ns) == 0;
}

static void collect_ns(mk_soap_msg_t *msg, xmlNodePtr n)
{
    for (; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        for (xmlNsPtr d = n->nsDef; d != NULL && msg->nns < MAX_NS; d = d->next) {
            if (d->prefix == NULL)
                continue;
            bool known = false;
            for (size_t i = 0; i < msg->nns && !known; i++)
                known = xmlStrEqual(msg->ns[i].prefix, d->prefix);
            if (!known) {
                msg->ns[msg->nns].prefix = d->prefix;
                msg->ns[msg->nns].href = d->href;
                msg->nns++;
            }
        }
        collect_ns(msg, n->children);
    }
}

int mk_soap_parse(const char *data, size_t len, mk_soap_msg_t **out, mk_err_t *err)
{
    *out = NULL;
    if (len > MK_SOAP_MAX_BYTES)
        return mk_err_set(err, MK_ETOOBIG, "SOAP message larger than %u bytes", MK_SOAP_MAX_BYTES);
    xmlDocPtr doc;
    int rc = mk_soap_xml_read(data, len, MK_SOAP_MAX_BYTES, &doc, err);
    if (rc)
        return rc;
    xmlNodePtr env = xmlDocGetRootElement(doc);
    mk_soap_version_t v = MK_SOAP_11;
    const char *ns = MK_SOAP_NS_11;
    if (mk_soap_xml_is(env, MK_SOAP_NS_12, "Envelope")) {
        v = MK_SOAP_12;
        ns = MK_SOAP_NS_12;
    } else if (!mk_soap_xml_is(env, MK_SOAP_NS_11, "Envelope")) {
        rc = mk_err_set(err, MK_EINVAL,
                        "not a SOAP envelope: the root element must be Envelope in the SOAP 1.1 "
                        "or 1.2 namespace");
        goto fail;
    }
    xmlNodePtr body = mk_soap_xml_first_elem(env->children);
    if (mk_soap_xml_is(body, ns, "Header"))
        body = mk_soap_xml_first_elem(body->next);
    if (!mk_soap_xml_is(body, ns, "Body")) {
        rc = mk_err_set(err, MK_EINVAL, "SOAP envelope without a Body");
        goto fail;
    }
    mk_soap_msg_t *msg = calloc(1, sizeof *msg);
    if (msg == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto fail;
    }
    msg->doc = doc;
    msg->version = v;
    msg->op = mk_soap_xml_first_elem(body->children);
    collect_ns(msg, env);
    *out = msg;
    return 0;
fail:
    xmlFreeDoc(doc);
    return rc;
}

void mk_soap_msg_free(mk_soap_msg_t *msg)
{
    if (msg == NULL)
        return;
    xmlFreeDoc(msg->doc);
    free(msg);
}

mk_soap_version_t mk_soap_msg_version(const mk_soap_msg_t *msg)
{
    return msg->version;
}

const char *mk_soap_msg_operation(const mk_soap_msg_t *msg)
{
    return msg->op ? (const char *)msg->op->name : "";
}

/* ---- the body as JSON ---- */

static json_t *elem_json(xmlNodePtr e);

static void add_member(json_t *obj, const char *key, json_t *v)
{
    json_t *have = json_object_get(obj, key);
    if (have == NULL) {
        json_object_set_new(obj, key, v);
    } else if (json_is_array(have)) {
        json_array_append_new(have, v);
    } else {
        json_t *arr = json_array();
        json_array_append(arr, have);
        json_array_append_new(arr, v);
        json_object_set_new(obj, key, arr);
    }
}

static bool blank(const xmlChar *s)
{
    for (; s && *s; s++)
        if (!isspace(*s))
            return false;
    return true;
}

/* Recursion is bounded by the depth check of the parse. */
static json_t *elem_json(xmlNodePtr e)
{
    bool has_elems = false;
    for (xmlNodePtr c = e->children; c && !has_elems; c = c->next)
        has_elems = c->type == XML_ELEMENT_NODE;
    xmlChar *text = NULL;
    bool texty = false;
    for (xmlNodePtr c = e->children; c; c = c->next)
        texty |=
            (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && !blank(c->content);
    if (texty || (!has_elems && e->properties == NULL))
        text = xmlNodeGetContent(e);
    if (!has_elems && e->properties == NULL) {
        json_t *s = json_string(text ? (const char *)text : "");
        xmlFree(text);
        return s ? s : json_string("");
    }
    json_t *obj = json_object();
    for (xmlAttrPtr a = e->properties; a; a = a->next) {
        xmlChar *v = xmlNodeListGetString(e->doc, a->children, 1);
        char key[256];
        snprintf(key, sizeof key, "@%s", (const char *)a->name);
        json_object_set_new(obj, key, json_string(v ? (const char *)v : ""));
        xmlFree(v);
    }
    if (texty && text) {
        json_t *s = json_string((const char *)text);
        if (s)
            json_object_set_new(obj, "#text", s);
    }
    xmlFree(text);
    for (xmlNodePtr c = e->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            add_member(obj, (const char *)c->name, elem_json(c));
    return obj;
}

json_t *mk_soap_msg_body_json(const mk_soap_msg_t *msg)
{
    if (msg->op == NULL)
        return json_object();
    json_t *v = elem_json(msg->op);
    if (!json_is_object(v)) {
        /* <op>text</op>: the operation's value under "#text". */
        json_t *o = json_object();
        json_object_set_new(o, "#text", v);
        return o;
    }
    return v;
}

/* ---- action and version ---- */

static mk_str_t trim(mk_str_t s)
{
    while (s.len && isspace((unsigned char)s.base[0])) {
        s.base++;
        s.len--;
    }
    while (s.len && isspace((unsigned char)s.base[s.len - 1]))
        s.len--;
    if (s.len >= 2 && s.base[0] == '"' && s.base[s.len - 1] == '"') {
        s.base++;
        s.len -= 2;
    }
    return s;
}

static void copy_out(mk_str_t s, char *buf, size_t size)
{
    size_t n = s.len < size - 1 ? s.len : size - 1;
    memcpy(buf, s.base, n);
    buf[n] = '\0';
}

void mk_soap_action(mk_str_t ct, mk_str_t soap_action, char *buf, size_t size)
{
    if (size == 0)
        return;
    buf[0] = '\0';
    /* Content-Type parameters: ;name=value or ;name="value". */
    for (size_t i = 0; i < ct.len; i++) {
        if (ct.base[i] != ';')
            continue;
        size_t k = i + 1;
        while (k < ct.len && isspace((unsigned char)ct.base[k]))
            k++;
        if (ct.len - k < 7 || strncasecmp(ct.base + k, "action", 6) != 0)
            continue;
        k += 6;
        while (k < ct.len && isspace((unsigned char)ct.base[k]))
            k++;
        if (k >= ct.len || ct.base[k] != '=')
            continue;
        size_t end = ++k;
        if (end < ct.len && ct.base[end] == '"') {
            end++;
            while (end < ct.len && ct.base[end] != '"')
                end++;
            end += end < ct.len;
        } else {
            while (end < ct.len && ct.base[end] != ';')
                end++;
        }
        copy_out(trim((mk_str_t){ct.base + k, end - k}), buf, size);
        return;
    }
    if (soap_action.base != NULL)
        copy_out(trim(soap_action), buf, size);
}

mk_soap_version_t mk_soap_version_of(mk_str_t ct)
{
    mk_str_t want = MK_STR_LIT("application/soap+xml");
    return ct.len >= want.len && strncasecmp(ct.base, want.base, want.len) == 0 ? MK_SOAP_12
                                                                                : MK_SOAP_11;
}

/* ---- XPath ---- */

int mk_soap_xpath_compile(const char *expr, mk_soap_xpath_t **out, mk_err_t *err)
{
    *out = NULL;
    size_t n = strlen(expr);
    if (n == 0 || n > MK_SOAP_MAX_XPATH)
        return mk_err_set(err, MK_EINVAL, "XPath must have 1 to %d characters", MK_SOAP_MAX_XPATH);
    mk_soap_xml_init();
    xmlXPathCompExprPtr comp = xmlXPathCompile((const xmlChar *)expr);
    if (comp == NULL)
        return mk_err_set(err, MK_EINVAL, "invalid XPath expression '%.80s'", expr);
    mk_soap_xpath_t *xp = malloc(sizeof *xp);
    if (xp == NULL) {
        xmlXPathFreeCompExpr(comp);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    xp->comp = comp;
    *out = xp;
    return 0;
}

void mk_soap_xpath_free(mk_soap_xpath_t *xp)
{
    if (xp == NULL)
        return;
    xmlXPathFreeCompExpr(xp->comp);
    free(xp);
}

static char *dup_xml(const xmlChar *s)
{
    return strdup(s ? (const char *)s : "");
}

bool mk_soap_xpath_eval(const mk_soap_xpath_t *xp, const mk_soap_msg_t *msg, char **text)
{
    if (text)
        *text = NULL;
    mk_soap_xml_init();
    xmlXPathContextPtr ctx = xmlXPathNewContext(msg->doc);
    if (ctx == NULL)
        return false;
    /* Conventional prefixes first, so a mock can say soap:Body whatever the client's prefix. */
    xmlXPathRegisterNs(ctx, BAD_CAST "soap",
                       BAD_CAST(msg->version == MK_SOAP_12 ? MK_SOAP_NS_12 : MK_SOAP_NS_11));
    xmlXPathRegisterNs(ctx, BAD_CAST "soapenv", BAD_CAST MK_SOAP_NS_11);
    xmlXPathRegisterNs(ctx, BAD_CAST "soap12", BAD_CAST MK_SOAP_NS_12);
    for (size_t i = 0; i < msg->nns; i++)
        xmlXPathRegisterNs(ctx, msg->ns[i].prefix, msg->ns[i].href);
    xmlXPathObjectPtr r = xmlXPathCompiledEval(xp->comp, ctx);
    bool found = false;
    char *s = NULL;
    if (r != NULL) {
        switch (r->type) {
        case XPATH_NODESET:
            found = r->nodesetval != NULL && r->nodesetval->nodeNr > 0;
            if (found && text) {
                xmlChar *c = xmlNodeGetContent(r->nodesetval->nodeTab[0]);
                s = dup_xml(c);
                xmlFree(c);
            }
            break;
        case XPATH_BOOLEAN:
            found = r->boolval;
            if (text)
                s = strdup(r->boolval ? "true" : "false");
            break;
        case XPATH_NUMBER:
        case XPATH_STRING: {
            found = r->type == XPATH_NUMBER || (r->stringval && r->stringval[0]);
            xmlChar *c = xmlXPathCastToString(r);
            if (text)
                s = dup_xml(c);
            xmlFree(c);
            break;
        }
        default:
            break;
        }
        xmlXPathFreeObject(r);
    }
    xmlXPathFreeContext(ctx);
    if (text)
        *text = s;
    else
        free(s);
    return found;
}

/* ---- responses ---- */

static const char *const env_open[] = {
    "<soap:Envelope xmlns:soap=\"" MK_SOAP_NS_11 "\"><soap:Body>",
    "<env:Envelope xmlns:env=\"" MK_SOAP_NS_12 "\"><env:Body>",
};
static const char *const env_close[] = {
    "</soap:Body></soap:Envelope>",
    "</env:Body></env:Envelope>",
};

int mk_soap_wrap(mk_soap_version_t v, mk_str_t inner, mk_buf_t *out)
{
    int rc = mk_buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    if (rc == 0)
        rc = mk_buf_append_str(out, env_open[v]);
    if (rc == 0)
        rc = mk_buf_append(out, inner.base, inner.len);
    if (rc == 0)
        rc = mk_buf_append_str(out, env_close[v]);
    return rc;
}

bool mk_soap_is_envelope(mk_str_t t)
{
    size_t i = 0;
    for (;;) {
        while (i < t.len && isspace((unsigned char)t.base[i]))
            i++;
        if (i + 1 >= t.len || t.base[i] != '<')
            return false;
        if (t.base[i + 1] == '?' || t.base[i + 1] == '!') {
            const char *end = memchr(t.base + i, '>', t.len - i);
            if (end == NULL)
                return false;
            i = (size_t)(end - t.base) + 1;
            continue;
        }
        break;
    }
    size_t start = ++i;
    while (i < t.len && !isspace((unsigned char)t.base[i]) && t.base[i] != '>' && t.base[i] != '/')
        i++;
    mk_str_t name = {t.base + start, i - start};
    const char *colon = memchr(name.base, ':', name.len);
    if (colon) {
        name.len -= (size_t)(colon + 1 - name.base);
        name.base = colon + 1;
    }
    return mk_str_eq_cstr(name, "Envelope");
}

int mk_soap_escape(mk_buf_t *out, mk_str_t s)
{
    size_t run = 0;
    int rc = 0;
    for (size_t i = 0; i < s.len && rc == 0; i++) {
        const char *rep = NULL;
        switch (s.base[i]) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        default:
            continue;
        }
        rc = mk_buf_append(out, s.base + run, i - run);
        if (rc == 0)
            rc = mk_buf_append_str(out, rep);
        run = i + 1;
    }
    return rc ? rc : mk_buf_append(out, s.base + run, s.len - run);
}

static bool xml_name_ok(const char *k)
{
    if (!(isalpha((unsigned char)k[0]) || k[0] == '_' || (unsigned char)k[0] >= 0x80))
        return false;
    for (const char *p = k + 1; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("_.-:", *p) || (unsigned char)*p >= 0x80))
            return false;
    return true;
}

static const char *local_of(const char *name)
{
    const char *c = strrchr(name, ':');
    return c ? c + 1 : name;
}

static int scalar_xml(const json_t *v, mk_buf_t *out)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return mk_soap_escape(out, (mk_str_t){json_string_value(v), json_string_length(v)});
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return mk_buf_append_str(out, num);
    case JSON_REAL:
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        return mk_buf_append_str(out, num);
    case JSON_TRUE:
        return mk_buf_append_str(out, "true");
    case JSON_FALSE:
        return mk_buf_append_str(out, "false");
    default:
        return 0;
    }
}

static int members_xml(const json_t *obj, mk_buf_t *out, int depth, mk_err_t *err);

static int elem_xml(const char *key, const json_t *v, mk_buf_t *out, int depth, mk_err_t *err)
{
    if (depth > MK_SOAP_MAX_DEPTH)
        return mk_err_set(err, MK_EINVAL, "JSON nested deeper than %d levels", MK_SOAP_MAX_DEPTH);
    if (!xml_name_ok(key))
        return mk_err_set(err, MK_EINVAL, "'%.64s' is not an XML element name", key);
    int rc = 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            rc = elem_xml(key, item, out, depth + 1, err);
            if (rc)
                return rc;
        }
        return 0;
    }
    rc = mk_buf_appendf(out, "<%s", key);
    if (rc == 0 && json_is_object(v)) {
        const char *k;
        json_t *a;
        json_object_foreach((json_t *)v, k, a)
        {
            if (k[0] != '@' || rc)
                continue;
            if (!xml_name_ok(k + 1))
                return mk_err_set(err, MK_EINVAL, "'%.64s' is not an XML attribute name", k);
            rc = mk_buf_appendf(out, " %s=\"", k + 1);
            if (rc == 0)
                rc = scalar_xml(a, out);
            if (rc == 0)
                rc = mk_buf_append_str(out, "\"");
        }
    }
    if (rc == 0 && json_is_null(v))
        return mk_buf_append_str(out, "/>");
    if (rc == 0)
        rc = mk_buf_append_str(out, ">");
    if (rc == 0)
        rc = json_is_object(v) ? members_xml(v, out, depth + 1, err) : scalar_xml(v, out);
    if (rc == 0)
        rc = mk_buf_appendf(out, "</%s>", key);
    if (rc == MK_ETOOBIG || rc == MK_ENOMEM)
        return mk_err_set(err, rc, "XML too large");
    return rc;
}

static int members_xml(const json_t *obj, mk_buf_t *out, int depth, mk_err_t *err)
{
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (k[0] == '@')
            continue;
        rc = strcmp(k, "#text") == 0 ? scalar_xml(v, out) : elem_xml(k, v, out, depth, err);
        if (rc)
            return rc;
    }
    return 0;
}

int mk_soap_json_to_xml(const json_t *v, mk_buf_t *out, mk_err_t *err)
{
    if (!json_is_object(v))
        return mk_err_set(err, MK_EINVAL, "must be an object of elements or an XML string");
    /* {"Envelope": {"Body": {...}}}: the Body's content; the envelope is the request's. */
    if (json_object_size(v) == 1) {
        const char *k = json_object_iter_key(json_object_iter((json_t *)v));
        json_t *env = json_object_iter_value(json_object_iter((json_t *)v));
        if (strcmp(local_of(k), "Envelope") == 0 && json_is_object(env)) {
            const char *bk;
            json_t *body;
            json_object_foreach(env, bk, body)
            {
                if (strcmp(local_of(bk), "Body") == 0)
                    return json_is_object(body) ? members_xml(body, out, 1, err) : 0;
            }
            return mk_err_set(err, MK_EINVAL, "Envelope without a Body");
        }
    }
    return members_xml(v, out, 0, err);
}

/* ---- faults ---- */

typedef struct code_map {
    const char *names[2]; /* spellings that mean this code */
    const char *v11, *v12;
} code_map_t;

static const code_map_t codes[] = {
    {{"Client", "Sender"}, "Client", "Sender"},
    {{"Server", "Receiver"}, "Server", "Receiver"},
    {{"VersionMismatch", NULL}, "VersionMismatch", "VersionMismatch"},
    {{"MustUnderstand", NULL}, "MustUnderstand", "MustUnderstand"},
    {{"DataEncodingUnknown", NULL}, "Client", "DataEncodingUnknown"},
};

/* Detail is kept as XML when it is a well-formed fragment, else written as text. */
static int detail_xml(const char *detail, mk_buf_t *out)
{
    mk_buf_t probe;
    mk_buf_init(&probe, MK_SOAP_MAX_BYTES);
    bool xml = false;
    if (mk_buf_append_str(&probe, "<d>") == 0 && mk_buf_append_str(&probe, detail) == 0 &&
        mk_buf_append_str(&probe, "</d>") == 0) {
        xmlDocPtr doc;
        mk_err_t err;
        xml = mk_soap_xml_read(probe.data, probe.len, MK_SOAP_MAX_BYTES, &doc, &err) == 0;
        if (xml)
            xmlFreeDoc(doc);
    }
    mk_buf_free(&probe);
    return xml ? mk_buf_append_str(out, detail) : mk_soap_escape(out, mk_str_of(detail));
}

int mk_soap_fault(mk_soap_version_t v, const mk_soap_fault_t *f, mk_buf_t *out)
{
    const char *code = f->code && f->code[0] ? f->code : "Server";
    const char *local = local_of(code);
    const code_map_t *known = NULL;
    for (size_t i = 0; i < sizeof codes / sizeof *codes && !known; i++)
        for (int k = 0; k < 2; k++)
            if (codes[i].names[k] && strcasecmp(local, codes[i].names[k]) == 0)
                known = &codes[i];
    const char *str = f->string ? f->string : "";
    bool actor = f->actor && f->actor[0], detail = f->detail && f->detail[0];
    int rc = mk_buf_append_str(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    if (rc == 0)
        rc = mk_buf_append_str(out, env_open[v]);
    if (v == MK_SOAP_11) {
        if (rc == 0)
            rc = mk_buf_append_str(out, "<soap:Fault><faultcode>");
        if (rc == 0 && known)
            rc = mk_buf_appendf(out, "soap:%s", known->v11);
        else if (rc == 0)
            rc = mk_soap_escape(out, mk_str_of(code));
        if (rc == 0)
            rc = mk_buf_append_str(out, "</faultcode><faultstring>");
        if (rc == 0)
            rc = mk_soap_escape(out, mk_str_of(str));
        if (rc == 0)
            rc = mk_buf_append_str(out, "</faultstring>");
        if (rc == 0 && actor) {
            rc = mk_buf_append_str(out, "<faultactor>");
            if (rc == 0)
                rc = mk_soap_escape(out, mk_str_of(f->actor));
            if (rc == 0)
                rc = mk_buf_append_str(out, "</faultactor>");
        }
        if (rc == 0 && detail) {
            rc = mk_buf_append_str(out, "<detail>");
            if (rc == 0)
                rc = detail_xml(f->detail, out);
            if (rc == 0)
                rc = mk_buf_append_str(out, "</detail>");
        }
        if (rc == 0)
            rc = mk_buf_append_str(out, "</soap:Fault>");
    } else {
        if (rc == 0)
            rc = mk_buf_appendf(out, "<env:Fault><env:Code><env:Value>env:%s</env:Value>",
                                known ? known->v12 : "Receiver");
        /* A code of the mock's own (no prefix to resolve) is kept as a Subcode. */
        if (rc == 0 && !known && strchr(code, ':') == NULL) {
            rc = mk_buf_append_str(out, "<env:Subcode><env:Value>");
            if (rc == 0)
                rc = mk_soap_escape(out, mk_str_of(code));
            if (rc == 0)
                rc = mk_buf_append_str(out, "</env:Value></env:Subcode>");
        }
        if (rc == 0)
            rc = mk_buf_append_str(out, "</env:Code><env:Reason><env:Text xml:lang=\"en\">");
        if (rc == 0)
            rc = mk_soap_escape(out, mk_str_of(str));
        if (rc == 0)
            rc = mk_buf_append_str(out, "</env:Text></env:Reason>");
        if (rc == 0 && actor) {
            rc = mk_buf_append_str(out, "<env:Role>");
            if (rc == 0)
                rc = mk_soap_escape(out, mk_str_of(f->actor));
            if (rc == 0)
                rc = mk_buf_append_str(out, "</env:Role>");
        }
        if (rc == 0 && detail) {
            rc = mk_buf_append_str(out, "<env:Detail>");
            if (rc == 0)
                rc = detail_xml(f->detail, out);
            if (rc == 0)
                rc = mk_buf_append_str(out, "</env:Detail>");
        }
        if (rc == 0)
            rc = mk_buf_append_str(out, "</env:Fault>");
    }
    if (rc == 0)
        rc = mk_buf_append_str(out, env_close[v]);
    return rc;
}
