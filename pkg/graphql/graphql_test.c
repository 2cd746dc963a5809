/* Tests for the GraphQL parser, schema builder, validation and introspection. */
#include "graphql/graphql.h"
#include "graphql/schema.h"
#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static mk_gql_doc_t *parse_ok(const char *src)
{
    mk_gql_doc_t *doc = NULL;
    mk_gql_error_t gerr;
    int rc = mk_gql_parse(src, strlen(src), MK_GQL_EXECUTABLE, NULL, &doc, &gerr);
    if (rc != 0)
        fprintf(stderr, "parse failed: %s at %u:%u\n", gerr.msg, gerr.loc.line, gerr.loc.column);
    MK_CHECK(rc == 0 && doc != NULL);
    return doc;
}

/* Parses src expecting a failure at line:col whose message contains what. */
static void parse_fails(const char *src, unsigned line, unsigned col, const char *what)
{
    mk_gql_doc_t *doc = NULL;
    mk_gql_error_t gerr;
    int rc = mk_gql_parse(src, strlen(src), MK_GQL_EXECUTABLE, NULL, &doc, &gerr);
    MK_CHECK(rc == MK_EINVAL && doc == NULL);
    if (strstr(gerr.msg, what) == NULL || gerr.loc.line != line || gerr.loc.column != col)
        fprintf(stderr, "for %s: got '%s' at %u:%u\n", src, gerr.msg, gerr.loc.line,
                gerr.loc.column);
    MK_CHECK(strstr(gerr.msg, what) != NULL);
    MK_CHECK_INT(gerr.loc.line, line);
    MK_CHECK_INT(gerr.loc.column, col);
}

/* Number tokens keep their text: integer, fraction and exponent parts. */
static void test_numbers(void)
{
    mk_gql_doc_t *doc = parse_ok("{ a(x: [0, -7, 10.25, -0.5E-2, 3e+4]) }");
    const mk_gql_sel_t *a = mk_gql_doc_operations(doc)->selections;
    char *printed = mk_gql_value_print(a->args->value);
    MK_CHECK_STR(printed, "[0, -7, 10.25, -0.5E-2, 3e+4]");
    free(printed);
    mk_gql_doc_free(doc);
}

static void test_operations(void)
{
    mk_gql_doc_t *doc = parse_ok(
        "# leading comment\n"
        "query Q($id: ID! = \"1\", $n: [Int!]! @dir) @op {\n"
        "  me: user(id: $id, filter: {a: [1, 2.5e3, true, null, ENUM], b: \"x\\u00e9\\n\"}) {\n"
        "    ...F @include(if: true)\n"
        "    ... on User { name }\n"
        "    ... @skip(if: false) { id }\n"
        "  }\n"
        "}\n"
        "fragment F on User { email }\n"
        "mutation { createUser(input: {name: \"\"\"\n    block\n      indented\n    \"\"\"}) { id "
        "} }\n"
        "subscription S { tick }\n"
        "{ anonymous }\n");
    mk_gql_operation_t *op = mk_gql_doc_operations(doc);
    MK_CHECK(op->kind == MK_GQL_QUERY && strcmp(op->name, "Q") == 0);
    MK_CHECK_INT(op->loc.line, 2);
    MK_CHECK_INT(op->loc.column, 1);
    MK_CHECK(op->vars && strcmp(op->vars->name, "id") == 0 &&
             op->vars->type->kind == MK_GQL_TYPE_NON_NULL);
    MK_CHECK(op->vars->default_value && op->vars->default_value->kind == MK_GQL_STRING);
    char tb[64];
    mk_gql_type_print(op->vars->next->type, tb, sizeof tb);
    MK_CHECK_STR(tb, "[Int!]!");
    MK_CHECK(op->vars->next->directives && strcmp(op->vars->next->directives->name, "dir") == 0);
    MK_CHECK(op->directives && strcmp(op->directives->name, "op") == 0);
    mk_gql_sel_t *me = op->selections;
    MK_CHECK(me->kind == MK_GQL_SEL_FIELD && strcmp(me->alias, "me") == 0 &&
             strcmp(me->name, "user") == 0);
    MK_CHECK_INT(me->loc.line, 3);
    MK_CHECK_INT(me->loc.column, 3);
    json_t *vars = json_pack("{s:s}", "id", "42");
    json_t *filter = mk_gql_value_to_json(me->args->next->value, vars);
    char *text = json_dumps(filter, JSON_COMPACT | JSON_SORT_KEYS);
    MK_CHECK_STR(text, "{\"a\":[1,2500.0,true,null,\"ENUM\"],\"b\":\"x\xc3\xa9\\n\"}");
    free(text);
    json_decref(filter);
    json_t *id = mk_gql_value_to_json(me->args->value, vars);
    MK_CHECK_STR(json_string_value(id), "42");
    json_decref(id);
    char *printed = mk_gql_value_print(me->args->next->value);
    MK_CHECK_STR(printed, "{a: [1, 2.5e3, true, null, ENUM], b: \"x\xc3\xa9\\n\"}");
    free(printed);
    mk_gql_sel_t *spread = me->selections;
    MK_CHECK(spread->kind == MK_GQL_SEL_SPREAD && strcmp(spread->name, "F") == 0);
    MK_CHECK(mk_gql_included(spread->directives, vars));
    MK_CHECK(spread->next->kind == MK_GQL_SEL_INLINE &&
             strcmp(spread->next->type_cond, "User") == 0);
    MK_CHECK(spread->next->next->type_cond == NULL &&
             mk_gql_included(spread->next->next->directives, vars));
    MK_CHECK(mk_gql_doc_fragment(doc, "F") != NULL);
    mk_gql_operation_t *mut = op->next;
    MK_CHECK(mut->kind == MK_GQL_MUTATION && mut->name == NULL);
    mk_gql_value_t *block = mut->selections->args->value->items;
    MK_CHECK_STR(block->str, "block\n  indented");
    MK_CHECK(mut->next->kind == MK_GQL_SUBSCRIPTION);
    mk_gql_error_t gerr;
    MK_CHECK(mk_gql_pick_operation(doc, NULL, &gerr) == NULL &&
             strstr(gerr.msg, "Must provide operation name") != NULL);
    MK_CHECK(mk_gql_pick_operation(doc, "S", &gerr) == mut->next);
    MK_CHECK(mk_gql_pick_operation(doc, "Nope", &gerr) == NULL &&
             strstr(gerr.msg, "Unknown operation named \"Nope\"") != NULL);
    json_decref(vars);
    mk_gql_doc_free(doc);
}

static void test_syntax_errors(void)
{
    parse_fails("{ user(id: ) }", 1, 12, "Unexpected \")\"");
    parse_fails("{\n  user {\n    name\n", 4, 1, "Expected Name, found <EOF>");
    parse_fails("query { a(x: \"unterminated) }", 1, 30, "Unterminated string");
    parse_fails("{ a(x: 01) }", 1, 9, "unexpected digit after 0");
    parse_fails("{ a(x: 1.) }", 1, 10, "expected digit");
    parse_fails("{ a(x: 1e) }", 1, 10, "expected digit");
    parse_fails("{ a(x: 1.5e+) }", 1, 13, "expected digit");
    parse_fails("{ a(x: -) }", 1, 9, "expected digit");
    parse_fails("{ a(x: \"\\q\") }", 1, 9, "Invalid character escape");
    parse_fails("fragment on on User { a }", 1, 10, "Unexpected Name \"on\"");
    parse_fails("type Query { a: Int }", 1, 1, "Unexpected Name \"type\"");
    parse_fails("", 1, 1, "Expected an operation, found <EOF>");
    parse_fails("{ a } ?", 1, 7, "Unexpected character: \"?\"");
    parse_fails("query ($a: Int = $b) { a }", 1, 18, "Unexpected \"$\"");
    /* columns count code points: é is one column */
    parse_fails("{ \"é\" }", 1, 3, "Expected Name, found String");
    parse_fails("{ a(s: \"\xc3\xa9\xff\") }", 1, 10, "Invalid UTF-8");
    parse_fails("{ a(s: \"\xed\xa0\x80\") }", 1, 9, "Invalid UTF-8 byte 0xED"); /* surrogate */
    parse_fails("{ a(s: \"\xc0\xaf\") }", 1, 9, "Invalid UTF-8 byte 0xC0");     /* overlong */
    parse_fails("{ a(s: \"\x01\") }", 1, 9, "Invalid character: U+0001");
    parse_fails("{ a }\t\r\n\x7f", 2, 1, "Unexpected character");
}

static void test_limits(void)
{
    mk_gql_limits_t lim = {.max_depth = 8};
    char deep[256] = "";
    for (int i = 0; i < 10; i++)
        strcat(deep, "{ a ");
    for (int i = 0; i < 10; i++)
        strcat(deep, "} ");
    mk_gql_doc_t *doc = NULL;
    mk_gql_error_t gerr;
    MK_CHECK(mk_gql_parse(deep, strlen(deep), MK_GQL_EXECUTABLE, &lim, &doc, &gerr) == MK_ETOOBIG);
    MK_CHECK(strstr(gerr.msg, "nesting limit of 8") != NULL);
    /* A default-depth parse of a deeply nested list value stops too, without recursing deeper. */
    size_t n = 200000;
    char *big = malloc(n + 32);
    strcpy(big, "{ a(x: ");
    memset(big + 7, '[', n);
    strcpy(big + 7 + n, ") }");
    MK_CHECK(mk_gql_parse(big, strlen(big), MK_GQL_EXECUTABLE, NULL, &doc, &gerr) == MK_ETOOBIG);
    lim = (mk_gql_limits_t){.max_tokens = 100};
    memset(big, 0, n + 32);
    strcpy(big, "{ ");
    for (int i = 0; i < 200; i++)
        strcat(big, "a ");
    strcat(big, "}");
    MK_CHECK(mk_gql_parse(big, strlen(big), MK_GQL_EXECUTABLE, &lim, &doc, &gerr) == MK_ETOOBIG);
    MK_CHECK(strstr(gerr.msg, "100 tokens") != NULL);
    lim = (mk_gql_limits_t){.max_bytes = 10};
    MK_CHECK(mk_gql_parse(big, strlen(big), MK_GQL_EXECUTABLE, &lim, &doc, &gerr) == MK_ETOOBIG);
    free(big);
}

static const char sdl[] =
    "\"\"\"The API\"\"\"\n"
    "schema { query: Root mutation: Mut }\n"
    "scalar DateTime @specifiedBy(url: \"https://example.com/dt\")\n"
    "interface Node { id: ID! }\n"
    "\"A person\"\n"
    "type User implements Node { id: ID! name: String email: String @deprecated(reason: "
    "\"use contact\") posts(first: Int = 10, after: String): [Post!]! role: Role }\n"
    "type Post implements Node { id: ID! title: String! }\n"
    "union SearchResult = User | Post\n"
    "enum Role { ADMIN USER GUEST @deprecated }\n"
    "input NewUser { name: String! email: String }\n"
    "type Root { user(id: ID!): User node(id: ID!): Node search(q: String!): [SearchResult!]! "
    "now: DateTime }\n"
    "type Mut { createUser(input: NewUser!): User }\n"
    "extend type Root { version: String }\n"
    "directive @auth(role: Role!) repeatable on FIELD_DEFINITION | OBJECT\n";

static mk_gql_schema_t *schema_ok(void)
{
    mk_gql_schema_t *s = NULL;
    mk_gql_error_t gerr;
    int rc = mk_gql_schema_build(sdl, strlen(sdl), NULL, &s, &gerr);
    if (rc)
        fprintf(stderr, "schema: %s at %u:%u\n", gerr.msg, gerr.loc.line, gerr.loc.column);
    MK_CHECK(rc == 0);
    return s;
}

static void schema_fails(const char *text, const char *what)
{
    mk_gql_schema_t *s = NULL;
    mk_gql_error_t gerr;
    MK_CHECK(mk_gql_schema_build(text, strlen(text), NULL, &s, &gerr) == MK_EINVAL && s == NULL);
    if (strstr(gerr.msg, what) == NULL)
        fprintf(stderr, "for %s: got '%s'\n", text, gerr.msg);
    MK_CHECK(strstr(gerr.msg, what) != NULL);
}

static void test_schema(void)
{
    mk_gql_schema_t *s = schema_ok();
    MK_CHECK_STR(mk_gql_schema_root(s, MK_GQL_QUERY), "Root");
    MK_CHECK_STR(mk_gql_schema_root(s, MK_GQL_MUTATION), "Mut");
    MK_CHECK(mk_gql_schema_root(s, MK_GQL_SUBSCRIPTION) == NULL);
    MK_CHECK_INT(mk_gql_schema_type_count(s), 9);
    MK_CHECK_STR(mk_gql_schema_field_type(s, "Root", "version"), "String");
    MK_CHECK_STR(mk_gql_schema_field_type(s, "User", "posts"), "Post");
    MK_CHECK(mk_gql_schema_type_applies(s, "User", "Node"));
    MK_CHECK(mk_gql_schema_type_applies(s, "Post", "SearchResult"));
    MK_CHECK(!mk_gql_schema_type_applies(s, "Post", "User"));
    mk_gql_schema_free(s);
    schema_fails("type Query { a: Foo }", "Unknown type \"Foo\"");
    schema_fails("type Query { a: Int } type Query { b: Int }", "Type \"Query\" already exists");
    schema_fails("type Query { a: Int a: Int }", "Field \"Query.a\" can only be defined once");
    schema_fails("extend type Nope { a: Int } type Query { a: Int }",
                 "Cannot extend type \"Nope\"");
    schema_fails("type Foo { a: Int }", "Query root type must be provided");
    schema_fails("type Query { a: Int } union U = Query | String", "can only include Object types");
    schema_fails("type Query { a: Int", "Syntax Error");
    /* The three lists of definitions (fields, input values, enum values) and their errors. */
    schema_fails("type Query { a(x: Int = ): Int }", "Syntax Error");
    schema_fails("type Query { a(x Int): Int }", "Expected \":\"");
    schema_fails("type Query { a Int }", "Expected \":\"");
    schema_fails("type Query { a: Int } input I { x: Int = 1 y }", "Expected \":\"");
    schema_fails("type Query { a: Int } enum E { A true }",
                 "Expected enum value, found Name \"true\"");
    schema_fails("type Query { a: Int } enum E { A: Int }", "Syntax Error");
}

/* Validates query against the test schema; returns the errors as compact text. */
static char *validate(const char *query, const char *vars_json)
{
    mk_gql_schema_t *s = schema_ok();
    mk_gql_doc_t *doc = parse_ok(query);
    mk_gql_error_t gerr;
    const mk_gql_operation_t *op = mk_gql_pick_operation(doc, NULL, &gerr);
    json_t *vars = vars_json ? json_loads(vars_json, 0, NULL) : NULL;
    json_t *errors = json_array();
    size_t n = mk_gql_validate(s, doc, op, vars, errors, 10);
    MK_CHECK(n == json_array_size(errors));
    char *text = json_dumps(errors, JSON_COMPACT);
    json_decref(errors);
    json_decref(vars);
    mk_gql_doc_free(doc);
    mk_gql_schema_free(s);
    return text;
}

static void expect_valid(const char *query, const char *vars)
{
    char *e = validate(query, vars);
    if (strcmp(e, "[]") != 0)
        fprintf(stderr, "for %s: %s\n", query, e);
    MK_CHECK_STR(e, "[]");
    free(e);
}

static void expect_error(const char *query, const char *vars, const char *msg, int line, int col)
{
    char *e = validate(query, vars);
    char loc[64];
    snprintf(loc, sizeof loc, "{\"line\":%d,\"column\":%d}", line, col);
    if (strstr(e, msg) == NULL || strstr(e, loc) == NULL)
        fprintf(stderr, "for %s: %s (wanted %s at %s)\n", query, e, msg, loc);
    MK_CHECK(strstr(e, msg) != NULL);
    MK_CHECK(strstr(e, loc) != NULL);
    free(e);
}

static void test_validation(void)
{
    expect_valid("query($id: ID!) { user(id: $id) { id name posts(first: 2) { title } } }",
                 "{\"id\": \"1\"}");
    expect_valid("{ search(q: \"x\") { __typename ... on User { name } ... on Post { title } } }",
                 NULL);
    expect_valid("{ node(id: 1) { id ...U } } fragment U on User { email role }", NULL);
    expect_valid("mutation { createUser(input: {name: \"a\"}) { id } }", NULL);
    expect_valid("{ __typename __type(name: \"User\") { name } __schema { queryType { name } } }",
                 NULL);
    expect_error("{ user(id: 1) { nme } }", NULL,
                 "Cannot query field \\\"nme\\\" on type \\\"User\\\". Did you mean \\\"name\\\"?",
                 1, 17);
    expect_error("{ nope }", NULL, "Cannot query field \\\"nope\\\" on type \\\"Root\\\".", 1, 3);
    expect_error("{ user(id: 1, bad: 2) { id } }", NULL,
                 "Unknown argument \\\"bad\\\" on field \\\"Root.user\\\".", 1, 15);
    expect_error("{ user { id } }", NULL,
                 "Field \\\"user\\\" argument \\\"id\\\" of type \\\"ID!\\\" is required", 1, 3);
    expect_error("query Q($id: ID!) { user(id: $id) { id } }", "{}",
                 "Variable \\\"$id\\\" of required type \\\"ID!\\\" was not provided.", 1, 9);
    expect_error("query Q { user(id: $x) { id } }", NULL,
                 "Variable \\\"$x\\\" is not defined by operation \\\"Q\\\".", 1, 20);
    expect_error("{ user(id: 1) }", NULL,
                 "Field \\\"user\\\" of type \\\"User\\\" must have a selection of subfields", 1,
                 3);
    expect_error("{ version { x } }", NULL,
                 "Field \\\"version\\\" must not have a selection since type \\\"String\\\"", 1,
                 11);
    expect_error("{ user(id: 1) { ...P } } fragment P on Post { title }", NULL,
                 "Fragment \\\"P\\\" cannot be spread here as objects of type \\\"User\\\" can "
                 "never be of type \\\"Post\\\".",
                 1, 17);
    expect_error("{ user(id: 1) { ...Missing } }", NULL, "Unknown fragment \\\"Missing\\\".", 1,
                 17);
    expect_error("{ user(id: 1) { ... on Nope { id } } }", NULL, "Unknown type \\\"Nope\\\".", 1,
                 17);
    expect_error("{ user(id: 1) @nope { id } }", NULL, "Unknown directive \\\"@nope\\\".", 1, 15);
    expect_error("subscription { tick }", NULL,
                 "Schema is not configured to execute subscription operation.", 1, 1);
    expect_error("{ user(id: 1) { ...A } } fragment A on User { ...B } fragment B on User { ...A }",
                 NULL, "Cannot spread fragment \\\"A\\\" within itself via \\\"B\\\".", 1, 47);
}

/* GraphiQL's introspection query (graphql-js getIntrospectionQuery(), descriptions on). */
static const char introspection_query[] =
    "query IntrospectionQuery { __schema { queryType { name } mutationType { name } "
    "subscriptionType { name } types { ...FullType } directives { name description locations "
    "args { ...InputValue } } } }\n"
    "fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name "
    "description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason } "
    "inputFields { ...InputValue } interfaces { ...TypeRef } enumValues(includeDeprecated: true) "
    "{ name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }\n"
    "fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }\n"
    "fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind "
    "name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } "
    "} }\n";

static json_t *find_named(json_t *arr, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(json_object_get(v, "name")) &&
            strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return v;
    }
    return NULL;
}

static void test_introspection(void)
{
    mk_gql_schema_t *s = schema_ok();
    mk_gql_doc_t *doc = parse_ok(introspection_query);
    json_t *errors = json_array();
    MK_CHECK(mk_gql_validate(s, doc, mk_gql_doc_operations(doc), NULL, errors, 10) == 0);
    json_t *v = mk_gql_introspect(s, doc, mk_gql_doc_operations(doc)->selections, NULL);
    MK_CHECK_STR(json_string_value(json_object_get(json_object_get(v, "queryType"), "name")),
                 "Root");
    MK_CHECK(json_is_null(json_object_get(v, "subscriptionType")));
    json_t *types = json_object_get(v, "types");
    json_t *user = find_named(types, "User");
    MK_CHECK(user != NULL);
    MK_CHECK_STR(json_string_value(json_object_get(user, "kind")), "OBJECT");
    MK_CHECK_STR(json_string_value(json_object_get(user, "description")), "A person");
    json_t *posts = find_named(json_object_get(user, "fields"), "posts");
    /* [Post!]! */
    json_t *t = json_object_get(posts, "type");
    MK_CHECK_STR(json_string_value(json_object_get(t, "kind")), "NON_NULL");
    t = json_object_get(t, "ofType");
    MK_CHECK_STR(json_string_value(json_object_get(t, "kind")), "LIST");
    t = json_object_get(json_object_get(t, "ofType"), "ofType");
    MK_CHECK_STR(json_string_value(json_object_get(t, "name")), "Post");
    json_t *first = find_named(json_object_get(posts, "args"), "first");
    MK_CHECK_STR(json_string_value(json_object_get(first, "defaultValue")), "10");
    json_t *email = find_named(json_object_get(user, "fields"), "email");
    MK_CHECK(json_is_true(json_object_get(email, "isDeprecated")));
    MK_CHECK_STR(json_string_value(json_object_get(email, "deprecationReason")), "use contact");
    MK_CHECK_INT(json_array_size(json_object_get(user, "interfaces")), 1);
    json_t *node = find_named(types, "Node");
    MK_CHECK_INT(json_array_size(json_object_get(node, "possibleTypes")), 2);
    json_t *sr = find_named(types, "SearchResult");
    MK_CHECK_STR(json_string_value(json_object_get(sr, "kind")), "UNION");
    json_t *role = find_named(types, "Role");
    MK_CHECK_INT(json_array_size(json_object_get(role, "enumValues")), 3);
    MK_CHECK(find_named(types, "__Schema") != NULL && find_named(types, "String") != NULL);
    json_t *auth = find_named(json_object_get(v, "directives"), "auth");
    MK_CHECK(auth != NULL && json_array_size(json_object_get(auth, "locations")) == 2);
    MK_CHECK(find_named(json_object_get(v, "directives"), "skip") != NULL);
    json_decref(v);
    mk_gql_doc_free(doc);

    /* __type with a variable, aliases, and an enum's values without deprecated ones. */
    doc = parse_ok("query($n: String!) { t: __type(name: $n) { k: kind name enumValues { name } "
                   "__typename } }");
    json_t *vars = json_pack("{s:s}", "n", "Role");
    v = mk_gql_introspect(s, doc, mk_gql_doc_operations(doc)->selections, vars);
    char *text = json_dumps(v, JSON_COMPACT);
    MK_CHECK_STR(text, "{\"k\":\"ENUM\",\"name\":\"Role\",\"enumValues\":[{\"name\":\"ADMIN\"},"
                       "{\"name\":\"USER\"}],\"__typename\":\"__Type\"}");
    free(text);
    json_decref(v);
    json_decref(vars);
    mk_gql_doc_free(doc);
    json_decref(errors);
    mk_gql_schema_free(s);
}

/* Fragments spreading the next one twice, 40 deep: 2^40 paths. Validation and introspection
 * must stay linear (each fragment walked once) or bounded (a budget), not exponential. */
static void test_fragment_bomb(void)
{
    char *q = malloc(8192);
    int k = sprintf(q, "{ __schema { types { ...F0 } } }\n");
    for (int i = 0; i < 40; i++)
        k += sprintf(q + k, "fragment F%d on __Type { name ...F%d ...F%d }\n", i, i + 1, i + 1);
    k += sprintf(q + k, "fragment F40 on __Type { kind }\n");
    mk_gql_doc_t *doc = parse_ok(q);
    mk_gql_schema_t *s = schema_ok();
    json_t *errors = json_array();
    clock_t t0 = clock();
    MK_CHECK(mk_gql_validate_fragments(doc, mk_gql_doc_operations(doc), errors, 10) == 0);
    MK_CHECK(mk_gql_validate(s, doc, mk_gql_doc_operations(doc), NULL, errors, 10) == 0);
    json_t *v = mk_gql_introspect(s, doc, mk_gql_doc_operations(doc)->selections, NULL);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    MK_CHECK(v != NULL && json_array_size(json_object_get(v, "types")) > 0);
    if (secs > 10)
        fprintf(stderr, "fragment bomb took %.1f s\n", secs);
    MK_CHECK(secs < 10);
    json_decref(v);
    /* A cycle through many fragments is found once, with the path. */
    json_array_clear(errors);
    mk_gql_doc_free(doc);
    doc = parse_ok("{ a { ...A } } fragment A on T { ...B } fragment B on T { x { ...C } } "
                   "fragment C on T { ...A } fragment D on T { ...D }");
    MK_CHECK(mk_gql_validate_fragments(doc, mk_gql_doc_operations(doc), errors, 10) == 2);
    char *text = json_dumps(errors, JSON_COMPACT);
    MK_CHECK(strstr(text, "Cannot spread fragment \\\"A\\\" within itself via \\\"B\\\", "
                          "\\\"C\\\".") != NULL);
    MK_CHECK(strstr(text, "Cannot spread fragment \\\"D\\\" within itself.") != NULL);
    free(text);
    json_decref(errors);
    mk_gql_doc_free(doc);
    mk_gql_schema_free(s);
    free(q);
}

int main(void)
{
    MK_RUN(test_operations);
    MK_RUN(test_numbers);
    MK_RUN(test_syntax_errors);
    MK_RUN(test_limits);
    MK_RUN(test_schema);
    MK_RUN(test_validation);
    MK_RUN(test_introspection);
    MK_RUN(test_fragment_bomb);
    return mk_testing_done();
}
