/* Fuzz harness of the GraphQL parser, schema builder, validator and introspection. An input is a
 * query document, or an SDL schema, a NUL byte and a query document. Invariants: a failed parse
 * says where (a message, a line when it has a place); a parsed document picks an operation or
 * says why; a built schema validates and introspects the query without crashing, and its own
 * introspection lists every type. Small limits keep each run short. */
#include "graphql/graphql.h"
#include "graphql/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const mk_gql_limits_t limits = {.max_bytes = 64 << 10, .max_tokens = 4000, .max_depth = 32};

static void run_query(const mk_gql_schema_t *schema, const char *q, size_t n)
{
    mk_gql_doc_t *doc = NULL;
    mk_gql_error_t gerr;
    int rc = mk_gql_parse(q, n, MK_GQL_EXECUTABLE, &limits, &doc, &gerr);
    if (rc != 0) {
        CHECK(doc == NULL && gerr.msg[0] != '\0');
        CHECK(rc == MK_EINVAL || rc == MK_ETOOBIG || rc == MK_ENOMEM);
        return;
    }
    const mk_gql_operation_t *op = mk_gql_pick_operation(doc, NULL, &gerr);
    CHECK(op != NULL || gerr.msg[0] != '\0');
    json_t *errors = json_array();
    json_t *vars = json_pack("{s:i, s:s}", "id", 1, "name", "x");
    for (; op; op = op->next) {
        size_t ne = mk_gql_validate_fragments(doc, op, errors, 20);
        CHECK(ne == json_array_size(errors));
        json_array_clear(errors);
        if (schema == NULL)
            continue;
        ne = mk_gql_validate(schema, doc, op, vars, errors, 20);
        CHECK(ne == json_array_size(errors));
        /* Introspection only runs on documents that validate, as the server does. */
        for (const mk_gql_sel_t *s = op->selections; ne == 0 && s; s = s->next) {
            if (s->kind != MK_GQL_SEL_FIELD || s->name[0] != '_')
                continue;
            json_t *v = mk_gql_introspect(schema, doc, s, vars);
            CHECK(v != NULL);
            json_decref(v);
        }
        json_array_clear(errors);
    }
    for (const mk_gql_fragment_t *f = mk_gql_doc_fragments(doc); f; f = f->next)
        CHECK(f->name && f->type_cond);
    json_decref(vars);
    json_decref(errors);
    mk_gql_doc_free(doc);
}

static const char types_query[] = "{ __schema { types { name kind fields { name } } } }";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    const char *nul = memchr(src, '\0', size);
    mk_gql_schema_t *schema = NULL;
    if (nul) {
        mk_gql_error_t gerr;
        int rc = mk_gql_schema_build(src, (size_t)(nul - src), &limits, &schema, &gerr);
        CHECK((rc == 0) == (schema != NULL));
        CHECK(rc == 0 || gerr.msg[0] != '\0');
        if (schema) {
            mk_gql_doc_t *doc;
            CHECK(mk_gql_parse(types_query, sizeof types_query - 1, MK_GQL_EXECUTABLE, NULL, &doc,
                               &gerr) == 0);
            json_t *v =
                mk_gql_introspect(schema, doc, mk_gql_doc_operations(doc)->selections, NULL);
            CHECK(json_array_size(json_object_get(v, "types")) >= mk_gql_schema_type_count(schema));
            json_decref(v);
            mk_gql_doc_free(doc);
        }
        src = nul + 1;
        size -= (size_t)(nul - (const char *)data) + 1;
    } else {
        /* The same bytes as SDL too. */
        mk_gql_schema_t *s2 = NULL;
        mk_gql_error_t gerr;
        if (mk_gql_schema_build(src, size, &limits, &s2, &gerr) == 0)
            mk_gql_schema_free(s2);
    }
    run_query(schema, src, size);
    mk_gql_schema_free(schema);
    return 0;
}
