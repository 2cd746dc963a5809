/* WSDL 1.1 to mock definitions: one mock per operation, with a sample response generated from
 * the document's inline XML Schema (see mk_soap_wsdl_mocks in soap.h). */
#include "soap/soap.h"
#include "soap/soap_xml.h"

#include <libxml/tree.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NS_WSDL   "http://schemas.xmlsoap.org/wsdl/"
#define NS_WSOAP  "http://schemas.xmlsoap.org/wsdl/soap/"
#define NS_WSOAP2 "http://schemas.xmlsoap.org/wsdl/soap12/"
#define NS_XSD    "http://www.w3.org/2001/XMLSchema"

/* Recursive types stop here; the sample keeps what was generated above. */
#define SAMPLE_MAX_DEPTH 12
#define SAMPLE_MAX_BYTES (1u << 20)

typedef struct wsdl {
    xmlDocPtr doc;
    xmlNodePtr defs;
    const char *tns;
    mk_buf_t *out;
} wsdl_t;

typedef struct qname {
    const char *ns; /* "" when none */
    const char *local;
} qname_t;

static const char *attr(xmlNodePtr n, const char *name)
{
    xmlAttrPtr a = xmlHasProp(n, BAD_CAST name);
    if (a == NULL || a->children == NULL || a->children->type != XML_TEXT_NODE)
        return NULL;
    return (const char *)a->children->content;
}

/* A QName attribute value resolved against the namespaces in scope at n. buf holds the prefix. */
static bool resolve_qname(wsdl_t *w, xmlNodePtr n, const char *value, qname_t *q)
{
    if (value == NULL)
        return false;
    const char *colon = strchr(value, ':');
    char prefix[128] = "";
    if (colon) {
        size_t pl = (size_t)(colon - value);
        if (pl >= sizeof prefix)
            return false;
        memcpy(prefix, value, pl);
        prefix[pl] = '\0';
    }
    xmlNsPtr ns = xmlSearchNs(w->doc, n, colon ? BAD_CAST prefix : NULL);
    q->ns = ns ? (const char *)ns->href : "";
    q->local = colon ? colon + 1 : value;
    return true;
}

/* The child of parent (namespace ns) named local whose name attribute is name. */
static xmlNodePtr named_child(xmlNodePtr parent, const char *ns, const char *local,
                              const char *name)
{
    for (xmlNodePtr c = mk_soap_xml_first_elem(parent->children); c;
         c = mk_soap_xml_first_elem(c->next)) {
        const char *nm = attr(c, "name");
        if (mk_soap_xml_is(c, ns, local) && nm && strcmp(nm, name) == 0)
            return c;
    }
    return NULL;
}

/* ---- XML Schema ---- */

static const char *schema_tns(xmlNodePtr schema)
{
    const char *t = attr(schema, "targetNamespace");
    return t ? t : "";
}

static xmlNodePtr schema_of(xmlNodePtr n)
{
    while (n && !mk_soap_xml_is(n, NS_XSD, "schema"))
        n = n->parent;
    return n;
}

/* A global declaration (element, complexType, simpleType) named q in any inline schema. */
static xmlNodePtr find_global(wsdl_t *w, const char *kind, qname_t q)
{
    for (xmlNodePtr t = mk_soap_xml_first_elem(w->defs->children); t;
         t = mk_soap_xml_first_elem(t->next)) {
        if (!mk_soap_xml_is(t, NS_WSDL, "types"))
            continue;
        for (xmlNodePtr s = mk_soap_xml_first_elem(t->children); s;
             s = mk_soap_xml_first_elem(s->next)) {
            if (!mk_soap_xml_is(s, NS_XSD, "schema") || strcmp(schema_tns(s), q.ns) != 0)
                continue;
            xmlNodePtr d = named_child(s, NS_XSD, kind, q.local);
            if (d)
                return d;
        }
    }
    return NULL;
}

static const struct {
    const char *names;
    const char *sample;
} builtins[] = {
    {" int integer long short byte nonNegativeInteger nonPositiveInteger unsignedInt "
     "unsignedLong unsignedShort unsignedByte ",
     "0"},
    {" positiveInteger ", "1"},
    {" negativeInteger ", "-1"},
    {" decimal float double ", "0.0"},
    {" boolean ", "true"},
    {" date ", "2024-01-01"},
    {" dateTime ", "2024-01-01T00:00:00Z"},
    {" time ", "00:00:00"},
    {" duration ", "P1D"},
    {" base64Binary ", "AA=="},
    {" hexBinary ", "00"},
    {" anyURI ", "http://example.com"},
    {" language ", "en"},
};

static const char *builtin_sample(const char *local)
{
    char key[80];
    snprintf(key, sizeof key, " %s ", local);
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
        if (strstr(builtins[i].names, key))
            return builtins[i].sample;
    return "string";
}

static const char *simple_sample(wsdl_t *w, xmlNodePtr st, int depth);

/* The sample text of a type reference (builtin or a named simpleType). */
static const char *type_sample(wsdl_t *w, xmlNodePtr at, const char *type, int depth)
{
    qname_t q;
    if (!resolve_qname(w, at, type, &q))
        return "string";
    if (strcmp(q.ns, NS_XSD) == 0)
        return builtin_sample(q.local);
    xmlNodePtr st = find_global(w, "simpleType", q);
    return st && depth < SAMPLE_MAX_DEPTH ? simple_sample(w, st, depth + 1) : "string";
}

static const char *simple_sample(wsdl_t *w, xmlNodePtr st, int depth)
{
    for (xmlNodePtr c = mk_soap_xml_first_elem(st->children); c;
         c = mk_soap_xml_first_elem(c->next)) {
        if (!mk_soap_xml_is(c, NS_XSD, "restriction"))
            continue;
        for (xmlNodePtr f = mk_soap_xml_first_elem(c->children); f;
             f = mk_soap_xml_first_elem(f->next))
            if (mk_soap_xml_is(f, NS_XSD, "enumeration") && attr(f, "value"))
                return attr(f, "value");
        const char *base = attr(c, "base");
        if (base)
            return type_sample(w, c, base, depth);
        xmlNodePtr inner = mk_soap_xml_first_elem(c->children);
        if (mk_soap_xml_is(inner, NS_XSD, "simpleType") && depth < SAMPLE_MAX_DEPTH)
            return simple_sample(w, inner, depth + 1);
    }
    return "string";
}

static int put(wsdl_t *w, const char *s)
{
    return mk_buf_append_str(w->out, s);
}

static int put_text(wsdl_t *w, const char *s)
{
    return mk_soap_escape(w->out, mk_str_of(s));
}

static int gen_element(wsdl_t *w, xmlNodePtr decl, bool global, const char *dflt, int depth);

/* The attributes a complexType (or its extension) declares, as name="sample". */
static int gen_attrs(wsdl_t *w, xmlNodePtr ct, int depth)
{
    int rc = 0;
    for (xmlNodePtr c = mk_soap_xml_first_elem(ct->children); c && rc == 0;
         c = mk_soap_xml_first_elem(c->next)) {
        if (mk_soap_xml_is(c, NS_XSD, "attribute") && attr(c, "name")) {
            const char *type = attr(c, "type");
            rc = mk_buf_appendf(w->out, " %s=\"", attr(c, "name"));
            if (rc == 0)
                rc = put_text(w, type ? type_sample(w, c, type, depth) : "string");
            if (rc == 0)
                rc = put(w, "\"");
        } else if ((mk_soap_xml_is(c, NS_XSD, "complexContent") ||
                    mk_soap_xml_is(c, NS_XSD, "simpleContent") ||
                    mk_soap_xml_is(c, NS_XSD, "extension")) &&
                   depth < SAMPLE_MAX_DEPTH) {
            rc = gen_attrs(w, c, depth + 1);
        }
    }
    return rc;
}

/* The content of a complexType, sequence, all, choice or extension. */
static int gen_content(wsdl_t *w, xmlNodePtr ct, const char *dflt, int depth)
{
    if (depth > SAMPLE_MAX_DEPTH)
        return 0;
    int rc = 0;
    for (xmlNodePtr c = mk_soap_xml_first_elem(ct->children); c && rc == 0;
         c = mk_soap_xml_first_elem(c->next)) {
        if (mk_soap_xml_is(c, NS_XSD, "element")) {
            if (attr(c, "maxOccurs") && strcmp(attr(c, "maxOccurs"), "0") == 0)
                continue;
            rc = gen_element(w, c, false, dflt, depth + 1);
        } else if (mk_soap_xml_is(c, NS_XSD, "sequence") || mk_soap_xml_is(c, NS_XSD, "all") ||
                   mk_soap_xml_is(c, NS_XSD, "complexContent")) {
            rc = gen_content(w, c, dflt, depth + 1);
        } else if (mk_soap_xml_is(c, NS_XSD, "choice")) {
            /* One branch is a valid instance: the first. */
            xmlNodePtr first = mk_soap_xml_first_elem(c->children);
            if (mk_soap_xml_is(first, NS_XSD, "element"))
                rc = gen_element(w, first, false, dflt, depth + 1);
            else if (first)
                rc = gen_content(w, first, dflt, depth + 1);
        } else if (mk_soap_xml_is(c, NS_XSD, "extension") ||
                   mk_soap_xml_is(c, NS_XSD, "restriction")) {
            qname_t q;
            xmlNodePtr base = NULL;
            if (resolve_qname(w, c, attr(c, "base"), &q) && strcmp(q.ns, NS_XSD) != 0)
                base = find_global(w, "complexType", q);
            if (base && mk_soap_xml_is(c, NS_XSD, "extension"))
                rc = gen_content(w, base, dflt, depth + 1);
            if (rc == 0)
                rc = gen_content(w, c, dflt, depth + 1);
        } else if (mk_soap_xml_is(c, NS_XSD, "simpleContent")) {
            xmlNodePtr ext = mk_soap_xml_first_elem(c->children);
            if (ext && attr(ext, "base"))
                rc = put_text(w, type_sample(w, ext, attr(ext, "base"), depth));
        }
    }
    return rc;
}

static bool qualified(xmlNodePtr decl, bool global)
{
    if (global)
        return true;
    const char *form = attr(decl, "form");
    if (form)
        return strcmp(form, "qualified") == 0;
    xmlNodePtr s = schema_of(decl);
    const char *efd = s ? attr(s, "elementFormDefault") : NULL;
    return efd && strcmp(efd, "qualified") == 0;
}

/* One element instance of decl; dflt is the default namespace in scope of the output. Namespaces
 * are written as default-namespace declarations wherever they change, so no prefix is needed. */
static int gen_element(wsdl_t *w, xmlNodePtr decl, bool global, const char *dflt, int depth)
{
    if (depth > SAMPLE_MAX_DEPTH)
        return 0;
    qname_t q;
    if (attr(decl, "ref") && resolve_qname(w, decl, attr(decl, "ref"), &q)) {
        xmlNodePtr target = find_global(w, "element", q);
        return target ? gen_element(w, target, true, dflt, depth + 1) : 0;
    }
    const char *name = attr(decl, "name");
    if (name == NULL)
        return 0;
    xmlNodePtr s = schema_of(decl);
    const char *ns = qualified(decl, global) && s ? schema_tns(s) : "";
    int rc = mk_buf_appendf(w->out, "<%s", name);
    if (rc == 0 && strcmp(ns, dflt) != 0) {
        rc = put(w, " xmlns=\"");
        if (rc == 0)
            rc = put_text(w, ns);
        if (rc == 0)
            rc = put(w, "\"");
    }
    xmlNodePtr ct = NULL;
    const char *text = NULL;
    const char *type = attr(decl, "type");
    if (type && resolve_qname(w, decl, type, &q)) {
        if (strcmp(q.ns, NS_XSD) == 0)
            text = builtin_sample(q.local);
        else if ((ct = find_global(w, "complexType", q)) == NULL)
            text = type_sample(w, decl, type, depth);
    } else {
        for (xmlNodePtr c = mk_soap_xml_first_elem(decl->children); c && !ct && !text;
             c = mk_soap_xml_first_elem(c->next)) {
            if (mk_soap_xml_is(c, NS_XSD, "complexType"))
                ct = c;
            else if (mk_soap_xml_is(c, NS_XSD, "simpleType"))
                text = simple_sample(w, c, depth + 1);
        }
        if (!ct && !text && attr(decl, "fixed"))
            text = attr(decl, "fixed");
    }
    if (rc == 0 && ct)
        rc = gen_attrs(w, ct, depth);
    if (rc == 0)
        rc = put(w, ">");
    if (rc == 0 && ct)
        rc = gen_content(w, ct, ns, depth + 1);
    else if (rc == 0 && text)
        rc = put_text(w, text);
    if (rc == 0)
        rc = mk_buf_appendf(w->out, "</%s>", name);
    return rc;
}

/* ---- WSDL ---- */

/* The sample response of one operation: its output message's parts. rpc style wraps them in
 * <operationResponse> in the namespace of the binding's soap:body. */
static int gen_output(wsdl_t *w, xmlNodePtr pt_op, xmlNodePtr b_op, bool rpc, const char *op)
{
    xmlNodePtr output = NULL;
    for (xmlNodePtr c = mk_soap_xml_first_elem(pt_op->children); c && !output;
         c = mk_soap_xml_first_elem(c->next))
        if (mk_soap_xml_is(c, NS_WSDL, "output"))
            output = c;
    qname_t q;
    if (output == NULL || !resolve_qname(w, output, attr(output, "message"), &q))
        return 0;
    xmlNodePtr msg = named_child(w->defs, NS_WSDL, "message", q.local);
    if (msg == NULL)
        return 0;
    int rc = 0;
    const char *rpc_ns = w->tns;
    if (rpc && b_op) {
        for (xmlNodePtr c = mk_soap_xml_first_elem(b_op->children); c;
             c = mk_soap_xml_first_elem(c->next)) {
            if (!mk_soap_xml_is(c, NS_WSDL, "output"))
                continue;
            xmlNodePtr body = mk_soap_xml_first_elem(c->children);
            if (body && attr(body, "namespace"))
                rpc_ns = attr(body, "namespace");
        }
        rc = mk_buf_appendf(w->out, "<%sResponse xmlns=\"", op);
        if (rc == 0)
            rc = put_text(w, rpc_ns);
        if (rc == 0)
            rc = put(w, "\">");
    }
    for (xmlNodePtr p = mk_soap_xml_first_elem(msg->children); p && rc == 0;
         p = mk_soap_xml_first_elem(p->next)) {
        if (!mk_soap_xml_is(p, NS_WSDL, "part") || attr(p, "name") == NULL)
            continue;
        if (attr(p, "element") && resolve_qname(w, p, attr(p, "element"), &q)) {
            xmlNodePtr el = find_global(w, "element", q);
            if (el)
                rc = gen_element(w, el, true, rpc ? rpc_ns : "", 0);
            continue;
        }
        /* A typed part: an element named after the part, unqualified. */
        rc = mk_buf_appendf(w->out, "<%s%s>", attr(p, "name"), rpc ? " xmlns=\"\"" : "");
        xmlNodePtr ct = NULL;
        const char *type = attr(p, "type");
        if (rc == 0 && type && resolve_qname(w, p, type, &q)) {
            if (strcmp(q.ns, NS_XSD) != 0 && (ct = find_global(w, "complexType", q)) != NULL)
                rc = gen_content(w, ct, "", 1);
            else
                rc = put_text(w, type_sample(w, p, type, 0));
        }
        if (rc == 0)
            rc = mk_buf_appendf(w->out, "</%s>", attr(p, "name"));
    }
    if (rc == 0 && rpc)
        rc = mk_buf_appendf(w->out, "</%sResponse>", op);
    return rc;
}

/* The path of a soap:address location URL ("http://h:1/ws/x?wsdl" -> "/ws/x"). */
static void address_path(const char *loc, char *buf, size_t size)
{
    const char *p = loc ? strstr(loc, "://") : NULL;
    p = p ? strchr(p + 3, '/') : NULL;
    size_t n = p ? strcspn(p, "?#") : 0;
    if (n == 0 || n >= size) {
        snprintf(buf, size, "/soap");
        return;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
}

static bool already(json_t *mocks, const char *path, const char *op)
{
    size_t i;
    json_t *m;
    json_array_foreach(mocks, i, m)
    {
        json_t *s = json_object_get(m, "soap");
        if (strcmp(json_string_value(json_object_get(s, "path")), path) == 0 &&
            strcmp(json_string_value(json_object_get(s, "method")), op) == 0)
            return true;
    }
    return false;
}

/* Mocks for the operations of one port: its binding, then the binding's portType. */
static int port_mocks(wsdl_t *w, const char *service, xmlNodePtr port, const char *path_override,
                      json_t *mocks, mk_err_t *err)
{
    qname_t q;
    if (!resolve_qname(w, port, attr(port, "binding"), &q))
        return 0;
    xmlNodePtr binding = named_child(w->defs, NS_WSDL, "binding", q.local);
    if (binding == NULL || !resolve_qname(w, binding, attr(binding, "type"), &q))
        return 0;
    xmlNodePtr pt = named_child(w->defs, NS_WSDL, "portType", q.local);
    if (pt == NULL)
        return 0;
    char path[512];
    const char *location = NULL;
    bool soap_binding = false, rpc = false;
    for (xmlNodePtr c = mk_soap_xml_first_elem(port->children); c;
         c = mk_soap_xml_first_elem(c->next))
        if (mk_soap_xml_is(c, NS_WSOAP, "address") || mk_soap_xml_is(c, NS_WSOAP2, "address"))
            location = attr(c, "location");
    for (xmlNodePtr c = mk_soap_xml_first_elem(binding->children); c;
         c = mk_soap_xml_first_elem(c->next)) {
        if (mk_soap_xml_is(c, NS_WSOAP, "binding") || mk_soap_xml_is(c, NS_WSOAP2, "binding")) {
            soap_binding = true;
            rpc = attr(c, "style") && strcmp(attr(c, "style"), "rpc") == 0;
        }
    }
    if (!soap_binding)
        return 0; /* an HTTP or other binding */
    if (path_override && path_override[0])
        snprintf(path, sizeof path, "%s", path_override);
    else
        address_path(location, path, sizeof path);
    int rc = 0;
    for (xmlNodePtr op = mk_soap_xml_first_elem(pt->children); op && rc == 0;
         op = mk_soap_xml_first_elem(op->next)) {
        const char *name = attr(op, "name");
        if (!mk_soap_xml_is(op, NS_WSDL, "operation") || name == NULL || already(mocks, path, name))
            continue;
        xmlNodePtr b_op = named_child(binding, NS_WSDL, "operation", name);
        const char *action = NULL;
        bool op_rpc = rpc;
        for (xmlNodePtr c = b_op ? mk_soap_xml_first_elem(b_op->children) : NULL; c;
             c = mk_soap_xml_first_elem(c->next)) {
            if (mk_soap_xml_is(c, NS_WSOAP, "operation") ||
                mk_soap_xml_is(c, NS_WSOAP2, "operation")) {
                action = attr(c, "soapAction");
                if (attr(c, "style"))
                    op_rpc = strcmp(attr(c, "style"), "rpc") == 0;
            }
        }
        mk_buf_reset(w->out);
        rc = gen_output(w, op, b_op, op_rpc, name);
        if (rc)
            return mk_err_set(err, rc == MK_ETOOBIG ? MK_ETOOBIG : MK_ENOMEM,
                              "wsdl: the sample response of %.64s exceeds %u bytes", name,
                              SAMPLE_MAX_BYTES);
        json_t *soap =
            json_pack("{s:s, s:s, s:s}", "service", service, "method", name, "path", path);
        if (soap && action && action[0])
            json_object_set_new(soap, "action", json_string(action));
        json_t *mock = json_pack("{s:o, s:{s:i, s:s}}", "soap", soap, "response", "statusCode", 200,
                                 "payload", w->out->data ? w->out->data : "");
        if (mock == NULL || json_array_append_new(mocks, mock) != 0)
            return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    return 0;
}

int mk_soap_wsdl_mocks(const char *data, size_t len, const char *path, json_t **out, mk_err_t *err)
{
    *out = NULL;
    xmlDocPtr doc;
    int rc = mk_soap_xml_read(data, len, MK_SOAP_WSDL_MAX, &doc, err);
    if (rc) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return mk_err_set(err, rc, "wsdl: %s", msg);
    }
    xmlNodePtr defs = xmlDocGetRootElement(doc);
    mk_buf_t buf;
    mk_buf_init(&buf, SAMPLE_MAX_BYTES);
    wsdl_t w = {.doc = doc, .defs = defs, .out = &buf};
    json_t *mocks = NULL;
    if (!mk_soap_xml_is(defs, NS_WSDL, "definitions")) {
        rc = mk_err_set(err, MK_EINVAL,
                        "wsdl: the root element must be definitions in the WSDL 1.1 namespace "
                        "(WSDL 2.0 is not supported)");
        goto out;
    }
    w.tns = attr(defs, "targetNamespace") ? attr(defs, "targetNamespace") : "";
    mocks = json_array();
    for (xmlNodePtr s = mk_soap_xml_first_elem(defs->children); s && rc == 0;
         s = mk_soap_xml_first_elem(s->next)) {
        if (!mk_soap_xml_is(s, NS_WSDL, "service"))
            continue;
        const char *service = attr(s, "name") ? attr(s, "name") : "Service";
        for (xmlNodePtr p = mk_soap_xml_first_elem(s->children); p && rc == 0;
             p = mk_soap_xml_first_elem(p->next))
            if (mk_soap_xml_is(p, NS_WSDL, "port"))
                rc = port_mocks(&w, service, p, path, mocks, err);
    }
    if (rc == 0 && json_array_size(mocks) == 0)
        rc = mk_err_set(err, MK_EINVAL,
                        "wsdl: no operation found (a service with a port on a SOAP binding whose "
                        "portType has operations)");
out:
    mk_buf_free(&buf);
    xmlFreeDoc(doc);
    if (rc)
        json_decref(mocks);
    else
        *out = mocks;
    return rc;
}

int mk_soap_wsdl_rewrite(const char *data, size_t len, const char *base, const char *path,
                         mk_buf_t *out, mk_err_t *err)
{
    xmlDocPtr doc;
    int rc = mk_soap_xml_read(data, len, MK_SOAP_WSDL_MAX, &doc, err);
    if (rc)
        return rc;
    xmlNodePtr defs = xmlDocGetRootElement(doc);
    for (xmlNodePtr s = defs ? mk_soap_xml_first_elem(defs->children) : NULL; s;
         s = mk_soap_xml_first_elem(s->next)) {
        if (!mk_soap_xml_is(s, NS_WSDL, "service"))
            continue;
        for (xmlNodePtr p = mk_soap_xml_first_elem(s->children); p;
             p = mk_soap_xml_first_elem(p->next)) {
            for (xmlNodePtr a = mk_soap_xml_is(p, NS_WSDL, "port")
                                    ? mk_soap_xml_first_elem(p->children)
                                    : NULL;
                 a; a = mk_soap_xml_first_elem(a->next)) {
                if (!mk_soap_xml_is(a, NS_WSOAP, "address") &&
                    !mk_soap_xml_is(a, NS_WSOAP2, "address"))
                    continue;
                char ep[512], loc[1024];
                if (path && path[0])
                    snprintf(ep, sizeof ep, "%s", path);
                else
                    address_path(attr(a, "location"), ep, sizeof ep);
                snprintf(loc, sizeof loc, "%s%s", base, ep);
                xmlSetProp(a, BAD_CAST "location", BAD_CAST loc);
            }
        }
    }
    xmlChar *mem = NULL;
    int size = 0;
    xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
    rc = mem ? mk_buf_append(out, mem, (size_t)size) : MK_ENOMEM;
    if (rc)
        rc = mk_err_set(err, rc, "wsdl: the rewritten document does not fit");
    xmlFree(mem);
    xmlFreeDoc(doc);
    return rc;
}
