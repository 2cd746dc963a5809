/* A GraphQL schema built from SDL: type lookup, validation of executable documents against it
 * (the rules a real server applies, with graphql-js's messages), and introspection (`__schema`,
 * `__type`, `__typename`) answered from it, so GraphiQL's and Apollo's standard IntrospectionQuery
 * works. A schema is immutable once built and may be shared between threads. */
#ifndef MK_GRAPHQL_SCHEMA_H
#define MK_GRAPHQL_SCHEMA_H

#include "graphql/graphql.h"

typedef struct mk_gql_schema mk_gql_schema_t;

/* Builds a schema from SDL text (type, interface, union, enum, input, scalar, schema, directive
 * and `extend` of each). The built-in scalars and directives are added. MK_EINVAL with the
 * position of the first problem: a syntax error, a type defined twice, an unknown type in a
 * field, an extension of an unknown type, a missing query type. Caller frees with
 * mk_gql_schema_free(). */
int mk_gql_schema_build(const char *sdl, size_t len, const mk_gql_limits_t *limits,
                        mk_gql_schema_t **out, mk_gql_error_t *gerr);
void mk_gql_schema_free(mk_gql_schema_t *s);

/* Root type names; NULL when the schema has no such root. */
const char *mk_gql_schema_root(const mk_gql_schema_t *s, mk_gql_op_kind_t kind);
size_t mk_gql_schema_type_count(const mk_gql_schema_t *s); /* user types, built-ins excluded */

/* Validates op (and the fragments it uses) of doc against s with the request's variables
 * (borrowed, may be NULL). Appends one object {message, locations:[{line, column}]} per problem
 * to errors (at most max_errors). Returns the number appended. */
size_t mk_gql_validate(const mk_gql_schema_t *s, const mk_gql_doc_t *doc,
                       const mk_gql_operation_t *op, const json_t *vars, json_t *errors,
                       size_t max_errors);

/* Checks the document's fragments without a schema: every spread names a fragment, and no
 * fragment spreads itself, directly or not (executing one would never end). Same output as
 * mk_gql_validate. */
size_t mk_gql_validate_fragments(const mk_gql_doc_t *doc, const mk_gql_operation_t *op,
                                 json_t *errors, size_t max_errors);

/* Answers an introspection field (`__schema` or `__type`) selected at the query root: the value
 * for the response's data (new reference), with vars for arguments and @skip/@include. */
json_t *mk_gql_introspect(const mk_gql_schema_t *s, const mk_gql_doc_t *doc,
                          const mk_gql_sel_t *field, const json_t *vars);

/* Is the named type (an object type) one of the possible types of type_cond (the same type, an
 * interface it implements or a union holding it)? Unknown names answer true. */
bool mk_gql_schema_type_applies(const mk_gql_schema_t *s, const char *type_name,
                                const char *type_cond);

/* The named type of field `field` on type `parent` (list and non-null wrappers removed), or
 * NULL when either is unknown. */
const char *mk_gql_schema_field_type(const mk_gql_schema_t *s, const char *parent,
                                     const char *field);

#endif
