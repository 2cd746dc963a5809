/* Translators from what teams already have (OpenAPI 3.0/3.1, WireMock mappings, HAR 1.2, Postman
 * v2.1 collections, GraphQL SDL) into our mock JSON (docs/mock-format.md). Pure functions: a
 * document in, an array of mock definitions and a report out; nothing is stored or validated
 * against the catalog here (the admin API does that, see docs/imports.md). */
#ifndef MK_IMPORTER_H
#define MK_IMPORTER_H

#include "err/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Limits checked where the input is read. */
#define MK_IMPORT_MAX_BYTES (8u << 20) /* one spec, HAR or collection */
#define MK_IMPORT_MAX_MOCKS 10000      /* mocks one import may produce */

/* What every generated mock gets. All pointers borrowed; all may be NULL. */
typedef struct mk_import_opts {
    const char *id_seed;     /* mixed into the generated ids (the namespace): the same input in
                                the same namespace gives the same ids, so a re-import replaces */
    const char *path_prefix; /* set as the mocks' pathPrefix */
    const char *chain_id;
    const char *server_name;
    json_t *tags;  /* array of strings, added to every mock */
    json_t *files; /* WireMock: {"name": "content"} standing in for __files/ (bodyFileName) */
} mk_import_opts_t;

/* The outcome. Each report list holds {"item": "GET /pets 200", "reason": "..."} objects.
 * skipped: left out by design (a `default` response beside explicit codes, a Postman request
 * without saved examples); errors: input problems (a $ref to nowhere, an invalid regex) that make
 * the API refuse the import unless the caller asks for a partial one; warnings: imported with a
 * looser translation than the source (a regex path segment that became a route parameter). */
typedef struct mk_import_result {
    json_t *mocks; /* array of mock definitions, in input order */
    json_t *skipped;
    json_t *errors;
    json_t *warnings;
} mk_import_result_t;

void mk_import_result_init(mk_import_result_t *r);
/* Drops the four lists (each may be NULL) and zeroes r. */
void mk_import_result_free(mk_import_result_t *r);

/* Parses a document given as text: JSON when it starts with '{' or '[', YAML otherwise (JSON is
 * YAML, so either works for the YAML formats). *out is a new reference. MK_EINVAL names the line
 * (and column for JSON); MK_ETOOBIG past MK_IMPORT_MAX_BYTES. */
int mk_import_parse(const char *text, size_t len, json_t **out, mk_err_t *err);

/* The translators. doc is borrowed. They fill r (which the caller initialised with
 * mk_import_result_init and frees with mk_import_result_free, also on failure) and return 0,
 * or MK_EINVAL when the document as a whole is not of the kind (err says why), or MK_ETOOBIG
 * when it would produce more than MK_IMPORT_MAX_MOCKS mocks. */
int mk_import_openapi(json_t *doc, const mk_import_opts_t *o, mk_import_result_t *r, mk_err_t *err);
/* A single mapping, an array of mappings, or {"mappings": [...]}. */
int mk_import_wiremock(json_t *doc, const mk_import_opts_t *o, mk_import_result_t *r,
                       mk_err_t *err);
/* A zip of a WireMock folder (mappings/ *.json, each a mapping or {"mappings": [...]}, and
 * __files/): *doc gets {"mappings": [...]} and *files {"name under __files/": "text"} (new
 * references) for mk_import_wiremock and its opts.files. The zip reader refuses encrypted, zip64
 * and damaged archives, and stops when the entries would inflate past MK_IMPORT_MAX_BYTES
 * (MK_ETOOBIG). A mapping file that is not JSON is MK_EINVAL naming it. */
bool mk_import_is_zip(const void *data, size_t len);
int mk_import_wiremock_zip(const void *data, size_t len, json_t **doc, json_t **files,
                           mk_err_t *err);
int mk_import_har(json_t *doc, const mk_import_opts_t *o, mk_import_result_t *r, mk_err_t *err);
int mk_import_postman(json_t *doc, const mk_import_opts_t *o, mk_import_result_t *r, mk_err_t *err);
/* GraphQL SDL text, or the JSON result of an introspection query ({"data": {"__schema": ...}}):
 * one mock per Query and Mutation field on POST /graphql. */
int mk_import_graphql(const char *sdl, size_t len, const mk_import_opts_t *o, mk_import_result_t *r,
                      mk_err_t *err);

#endif
