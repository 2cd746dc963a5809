/* Internal to pkg/soap: the safe reader and small tree helpers shared by soap.c and wsdl.c. */
#ifndef MK_SOAP_XML_H
#define MK_SOAP_XML_H

#include "err/err.h"

#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>

/* Initialises libxml2 once and silences its printing on the calling thread. */
void mk_soap_xml_init(void);
/* Parses data (at most max bytes) with no network, no DTD and bounded depth; *out is freed with
 * xmlFreeDoc(). */
int mk_soap_xml_read(const char *data, size_t len, size_t max, xmlDocPtr *out, mk_err_t *err);
/* The first element node of n and its following siblings, or NULL. */
xmlNodePtr mk_soap_xml_first_elem(xmlNodePtr n);
/* True when n is the element local in namespace ns (ns NULL: any namespace). */
bool mk_soap_xml_is(xmlNodePtr n, const char *ns, const char *local);

#endif
