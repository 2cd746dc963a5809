/* GraphQL documents: our own parser for the executable grammar (operations, selection sets,
 * fragments, inline fragments, aliases, variables with defaults, directives, every value literal
 * including block strings) and the type-system grammar (SDL: schema, scalar, type, interface,
 * union, enum, input, directive definitions and their extensions), October 2021 spec.
 *
 * A parsed document lives in one arena owned by mk_gql_doc_t: every node and string is freed at
 * once by mk_gql_doc_free(). Lists are singly linked through `next`. Parsing is linear in the
 * input and bounded by mk_gql_limits_t (bytes, tokens, nesting depth); errors carry the line and
 * column (1-based, in Unicode code points as the spec counts) of the offending token. */
#ifndef MK_GRAPHQL_H
#define MK_GRAPHQL_H

#include "err/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mk_gql_limits {
    size_t max_bytes;   /* 0: MK_GQL_DEFAULT_MAX_BYTES */
    size_t max_tokens;  /* 0: MK_GQL_DEFAULT_MAX_TOKENS */
    unsigned max_depth; /* nesting of selection sets, values and types; 0: default */
} mk_gql_limits_t;

#define MK_GQL_DEFAULT_MAX_BYTES  (1u << 20)
#define MK_GQL_DEFAULT_MAX_TOKENS 100000
#define MK_GQL_DEFAULT_MAX_DEPTH  64

typedef struct mk_gql_loc {
    uint32_t line, column;
} mk_gql_loc_t;

/* A parse or validation error: a message and where (line 0 when it has no place). */
typedef struct mk_gql_error {
    char msg[256];
    mk_gql_loc_t loc;
} mk_gql_error_t;

typedef enum mk_gql_value_kind {
    MK_GQL_VARIABLE,
    MK_GQL_INT,
    MK_GQL_FLOAT,
    MK_GQL_STRING,
    MK_GQL_BOOLEAN,
    MK_GQL_NULL,
    MK_GQL_ENUM,
    MK_GQL_LIST,
    MK_GQL_OBJECT,
} mk_gql_value_kind_t;

/* A value literal. str: the variable or enum name, the int/float text, the decoded string.
 * A list's items and an object's fields are `items`; an object field has its key in `name`. */
typedef struct mk_gql_value {
    mk_gql_value_kind_t kind;
    mk_gql_loc_t loc;
    const char *name; /* object field key, else NULL */
    const char *str;
    size_t len;
    bool boolean;
    struct mk_gql_value *items;
    struct mk_gql_value *next;
} mk_gql_value_t;

typedef struct mk_gql_arg {
    const char *name;
    mk_gql_value_t *value;
    mk_gql_loc_t loc;
    struct mk_gql_arg *next;
} mk_gql_arg_t;

typedef struct mk_gql_directive {
    const char *name;
    mk_gql_arg_t *args;
    mk_gql_loc_t loc;
    struct mk_gql_directive *next;
} mk_gql_directive_t;

/* A type reference: Name, [T] or T!. */
typedef enum { MK_GQL_TYPE_NAMED, MK_GQL_TYPE_LIST, MK_GQL_TYPE_NON_NULL } mk_gql_type_kind_t;
typedef struct mk_gql_type {
    mk_gql_type_kind_t kind;
    const char *name; /* NAMED */
    struct mk_gql_type *of;
    mk_gql_loc_t loc;
} mk_gql_type_t;

typedef enum {
    MK_GQL_SEL_FIELD,
    MK_GQL_SEL_SPREAD,
    MK_GQL_SEL_INLINE,
} mk_gql_sel_kind_t;

/* A selection: a field (alias may be NULL), a fragment spread (name is the fragment) or an inline
 * fragment (type_cond may be NULL). */
typedef struct mk_gql_sel {
    mk_gql_sel_kind_t kind;
    mk_gql_loc_t loc;
    const char *alias;
    const char *name;
    const char *type_cond;
    mk_gql_arg_t *args;
    mk_gql_directive_t *directives;
    struct mk_gql_sel *selections; /* NULL: no selection set */
    mk_gql_loc_t set_loc;          /* of the selection set's "{" */
    struct mk_gql_sel *next;
} mk_gql_sel_t;

typedef struct mk_gql_var_def {
    const char *name;
    mk_gql_type_t *type;
    mk_gql_value_t *default_value; /* NULL when none */
    mk_gql_directive_t *directives;
    mk_gql_loc_t loc;
    struct mk_gql_var_def *next;
} mk_gql_var_def_t;

typedef enum { MK_GQL_QUERY, MK_GQL_MUTATION, MK_GQL_SUBSCRIPTION } mk_gql_op_kind_t;

typedef struct mk_gql_operation {
    mk_gql_op_kind_t kind;
    const char *name; /* NULL for an anonymous operation */
    mk_gql_var_def_t *vars;
    mk_gql_directive_t *directives;
    mk_gql_sel_t *selections;
    mk_gql_loc_t loc;
    struct mk_gql_operation *next;
} mk_gql_operation_t;

typedef struct mk_gql_fragment {
    const char *name;
    const char *type_cond;
    mk_gql_directive_t *directives;
    mk_gql_sel_t *selections;
    mk_gql_loc_t loc;
    uint32_t index; /* 0, 1, ... in document order */
    struct mk_gql_fragment *next;
} mk_gql_fragment_t;

/* --- type-system definitions (SDL) --- */

typedef enum mk_gql_def_kind {
    MK_GQL_DEF_SCHEMA,
    MK_GQL_DEF_SCALAR,
    MK_GQL_DEF_OBJECT,
    MK_GQL_DEF_INTERFACE,
    MK_GQL_DEF_UNION,
    MK_GQL_DEF_ENUM,
    MK_GQL_DEF_INPUT,
    MK_GQL_DEF_DIRECTIVE,
} mk_gql_def_kind_t;

/* An argument or input field definition (name: Type = default @dirs), or a field definition
 * (args set, default NULL), or an enum value (type NULL), or a root operation type of `schema`
 * (name is "query"/"mutation"/"subscription", type the named type). */
typedef struct mk_gql_field_def {
    const char *description; /* NULL when none */
    const char *name;
    struct mk_gql_field_def *args;
    mk_gql_type_t *type;
    mk_gql_value_t *default_value;
    mk_gql_directive_t *directives;
    mk_gql_loc_t loc;
    struct mk_gql_field_def *next;
} mk_gql_field_def_t;

typedef struct mk_gql_name_list {
    const char *name;
    mk_gql_loc_t loc;
    struct mk_gql_name_list *next;
} mk_gql_name_list_t;

typedef struct mk_gql_type_def {
    mk_gql_def_kind_t kind;
    bool extend;
    const char *description;
    const char *name;               /* NULL for `schema` */
    mk_gql_name_list_t *interfaces; /* OBJECT / INTERFACE: implements */
    mk_gql_name_list_t *members;    /* UNION members; DIRECTIVE locations */
    mk_gql_field_def_t *fields;     /* fields, input fields, enum values, root types; DIRECTIVE
                                       arguments */
    mk_gql_directive_t *directives;
    bool repeatable; /* DIRECTIVE */
    mk_gql_loc_t loc;
    struct mk_gql_type_def *next;
} mk_gql_type_def_t;

typedef struct mk_gql_doc mk_gql_doc_t;

/* What a document may hold. */
typedef enum {
    MK_GQL_EXECUTABLE, /* operations and fragments only */
    MK_GQL_SDL,        /* type-system definitions and extensions only */
} mk_gql_doc_kind_t;

/* Parses src (len bytes, need not be NUL-terminated). limits may be NULL. On failure returns
 * MK_EINVAL (syntax; gerr has message and location) or MK_ETOOBIG (a limit; the message names
 * it), and *out is NULL. Caller frees *out with mk_gql_doc_free(). */
int mk_gql_parse(const char *src, size_t len, mk_gql_doc_kind_t kind, const mk_gql_limits_t *limits,
                 mk_gql_doc_t **out, mk_gql_error_t *gerr);
void mk_gql_doc_free(mk_gql_doc_t *doc);

mk_gql_operation_t *mk_gql_doc_operations(const mk_gql_doc_t *doc);
mk_gql_fragment_t *mk_gql_doc_fragments(const mk_gql_doc_t *doc);
mk_gql_type_def_t *mk_gql_doc_types(const mk_gql_doc_t *doc);
/* The fragment of that name (the first, when several share it), by hash: O(1). */
const mk_gql_fragment_t *mk_gql_doc_fragment(const mk_gql_doc_t *doc, const char *name);
/* What the fragment selection s (inline or a spread) brings: its type condition (NULL when it
 * has none) and its selections, both borrowed from doc. False for a spread of an unknown name. */
bool mk_gql_fragment_of(const mk_gql_doc_t *doc, const mk_gql_sel_t *s, const char **type_cond,
                        const mk_gql_sel_t **selections);
size_t mk_gql_doc_fragment_count(const mk_gql_doc_t *doc);

/* The operation to run: the one named name, or the only one when name is NULL or "". NULL with
 * gerr set when there is none of that name, or several and no name. */
const mk_gql_operation_t *mk_gql_pick_operation(const mk_gql_doc_t *doc, const char *name,
                                                mk_gql_error_t *gerr);

const char *mk_gql_op_kind_name(mk_gql_op_kind_t kind); /* "query", "mutation", "subscription" */

/* A value literal as JSON (new reference), variables read from vars (borrowed, may be NULL; an
 * absent variable gives null). Ints beyond int64 and floats are JSON reals. */
json_t *mk_gql_value_to_json(const mk_gql_value_t *v, const json_t *vars);

/* A value literal printed back as GraphQL text (for defaultValue in introspection); caller
 * frees. */
char *mk_gql_value_print(const mk_gql_value_t *v);
/* A type reference printed ("[Int!]!"); writes into buf (truncated to size). */
void mk_gql_type_print(const mk_gql_type_t *t, char *buf, size_t size);

/* Whether @skip/@include on the selection let it in (vars borrowed, may be NULL). */
bool mk_gql_included(const mk_gql_directive_t *dirs, const json_t *vars);

#endif
