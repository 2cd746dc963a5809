/* Shared by the translators of pkg/importer: building mock definitions and report rows. */
#ifndef MK_IMPORTER_INTERNAL_H
#define MK_IMPORTER_INTERNAL_H

#include "importer/importer.h"

#include <stdarg.h>

/* Appends {"item", "reason"} to list (r->skipped, r->errors or r->warnings). */
void mk_imp_note(json_t *list, const char *item, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new mock definition (new reference): id "<kind>-<hash of seed, prefix, key>", the options'
 * tags, chainId, serverName and pathPrefix, and http {route, httpMethod}. */
json_t *mk_imp_mock_new(const mk_import_opts_t *o, const char *kind, const char *key,
                        const char *method, const char *route);
/* Appends a condition to http[list] ("conditions", "queryParams" or "header"); value is stolen
 * and may be NULL (no value member). Returns the condition (borrowed), for extra members. */
json_t *mk_imp_cond(json_t *mock, const char *list, const char *path, const char *action,
                    json_t *value);
/* Adds r's mock, checking MK_IMPORT_MAX_MOCKS; steals mock. */
int mk_imp_push(mk_import_result_t *r, json_t *mock, mk_err_t *err);

/* Writes a route parameter name made of [A-Za-z0-9_-] from name (n bytes) into out (size cap). */
void mk_imp_param_name(const char *name, size_t n, char *out, size_t cap);
#define MK_IMP_MAX_PARAMS 16 /* route parameters (the route syntax's own limit) */
/* "/pets/{petId}" → "/pets/:petId" (OpenAPI paths, WireMock urlPathTemplate). A segment mixing
 * text and a parameter becomes the parameter, which is looser: *loose is then set. Heap string. */
char *mk_imp_route_template(const char *path, bool *loose);
/* Decodes standard or URL-safe base64 into a new NUL-terminated heap buffer (*len bytes);
 * NULL when invalid. */
unsigned char *mk_imp_base64(const char *in, size_t n, size_t *len);
/* True when the n bytes are valid UTF-8 without NUL. */
bool mk_imp_utf8(const unsigned char *s, size_t n);
/* The path of a URL (after scheme://host), without query or fragment, into a new heap string;
 * "/" when empty. *query (may be NULL) gets the query text after '?' (borrowed from url). */
char *mk_imp_url_path(const char *url, const char **query);
/* A response payload from body text and its media type: JSON when the type says so and it
 * parses, else the string. New reference. */
json_t *mk_imp_payload(const char *text, size_t n, const char *mime);
/* A query name or value as it appears in a URL, decoded as the server decodes query parameters
 * (%XX, '+' as space), as a new JSON string. */
json_t *mk_imp_query_text(const char *s, size_t n);
/* Calls fn for each file of a zip archive (bytes NUL-terminated, freed after the call); see
 * zip.c for the limits. A nonzero return from fn stops the walk and is returned. */
typedef int (*mk_import_zip_fn)(void *ud, const char *name, const unsigned char *bytes, size_t n,
                                mk_err_t *err);
int mk_import_unzip(const void *data, size_t len, mk_import_zip_fn fn, void *ud, mk_err_t *err);
/* Headers a mock should not replay: hop-by-hop ones, and those the server sets itself. */
bool mk_imp_drop_header(const char *name);

#endif
