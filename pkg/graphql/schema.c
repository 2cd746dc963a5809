/* GraphQL schemas from SDL: building, validation of executable documents, introspection. */
#include "graphql/schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The built-in scalars and directives, and the introspection types, as SDL (the spec's text):
 * they are parsed into every schema, so introspection queries validate like any other. */
static const char builtin_sdl[] =
    "scalar Int scalar Float scalar String scalar Boolean scalar ID\n"
    "directive @skip(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT\n"
    "directive @include(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT\n"
    "directive @deprecated(reason: String = \"No longer supported\") on FIELD_DEFINITION | "
    "ARGUMENT_DEFINITION | INPUT_FIELD_DEFINITION | ENUM_VALUE\n"
    "directive @specifiedBy(url: String!) on SCALAR\n"
    "type __Schema { description: String types: [__Type!]! queryType: __Type! "
    "mutationType: __Type subscriptionType: __Type directives: [__Directive!]! }\n"
    "type __Type { kind: __TypeKind! name: String description: String specifiedByURL: String "
    "fields(includeDeprecated: Boolean = false): [__Field!] interfaces: [__Type!] "
    "possibleTypes: [__Type!] enumValues(includeDeprecated: Boolean = false): [__EnumValue!] "
    "inputFields(includeDeprecated: Boolean = false): [__InputValue!] ofType: __Type }\n"
    "enum __TypeKind { SCALAR OBJECT INTERFACE UNION ENUM INPUT_OBJECT LIST NON_NULL }\n"
    "type __Field { name: String! description: String "
    "args(includeDeprecated: Boolean = false): [__InputValue!]! type: __Type! "
    "isDeprecated: Boolean! deprecationReason: String }\n"
    "type __InputValue { name: String! description: String type: __Type! defaultValue: String "
    "isDeprecated: Boolean! deprecationReason: String }\n"
    "type __EnumValue { name: String! description: String isDeprecated: Boolean! "
    "deprecationReason: String }\n"
    "type __Directive { name: String! description: String locations: [__DirectiveLocation!]! "
    "args(includeDeprecated: Boolean = false): [__InputValue!]! isRepeatable: Boolean! }\n"
    "enum __DirectiveLocation { QUERY MUTATION SUBSCRIPTION FIELD FRAGMENT_DEFINITION "
    "FRAGMENT_SPREAD INLINE_FRAGMENT VARIABLE_DEFINITION SCHEMA SCALAR OBJECT FIELD_DEFINITION "
    "ARGUMENT_DEFINITION INTERFACE UNION ENUM ENUM_VALUE INPUT_OBJECT INPUT_FIELD_DEFINITION }\n";

#define MAX_WALK_DEPTH 128

typedef struct stype {
    const char *name;
    mk_gql_def_kind_t kind;
    const char *description;
    const mk_gql_field_def_t **fields; /* fields, input fields or enum values */
    size_t nfields;
    const char **ifaces;
    size_t nifaces;
    struct stype **possible; /* union members; objects implementing an interface */
    size_t npossible;
    const char *specified_by;
    bool builtin;
    mk_gql_loc_t loc;
} stype_t;

struct mk_gql_schema {
    mk_gql_doc_t *docs[2]; /* built-ins and the user's SDL: own every string */
    stype_t *types;
    size_t ntypes, nuser;
    size_t *slots; /* open addressing over types by name: index + 1, 0 empty */
    size_t nslots;
    const mk_gql_type_def_t **dirs;
    size_t ndirs;
    const char *roots[3];
    const char *description;
};

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static const stype_t *find_type(const mk_gql_schema_t *s, const char *name)
{
    if (name == NULL || s->nslots == 0)
        return NULL;
    for (size_t i = hash_name(name) & (s->nslots - 1);; i = (i + 1) & (s->nslots - 1)) {
        size_t v = s->slots[i];
        if (v == 0)
            return NULL;
        if (strcmp(s->types[v - 1].name, name) == 0)
            return &s->types[v - 1];
    }
}

static const mk_gql_type_def_t *find_directive(const mk_gql_schema_t *s, const char *name)
{
    for (size_t i = 0; i < s->ndirs; i++)
        if (strcmp(s->dirs[i]->name, name) == 0)
            return s->dirs[i];
    return NULL;
}

static const mk_gql_field_def_t *find_field(const stype_t *t, const char *name)
{
    for (size_t i = 0; t && i < t->nfields; i++)
        if (strcmp(t->fields[i]->name, name) == 0)
            return t->fields[i];
    return NULL;
}

static const char *named(const mk_gql_type_t *t)
{
    while (t && t->kind != MK_GQL_TYPE_NAMED)
        t = t->of;
    return t ? t->name : NULL;
}

void mk_gql_schema_free(mk_gql_schema_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ntypes; i++) {
        free(s->types[i].fields);
        free(s->types[i].ifaces);
        free(s->types[i].possible);
    }
    free(s->types);
    free(s->slots);
    free(s->dirs);
    mk_gql_doc_free(s->docs[0]);
    mk_gql_doc_free(s->docs[1]);
    free(s);
}

const char *mk_gql_schema_root(const mk_gql_schema_t *s, mk_gql_op_kind_t kind)
{
    return s->roots[kind];
}

size_t mk_gql_schema_type_count(const mk_gql_schema_t *s)
{
    return s->nuser;
}

/* ---- building ------------------------------------------------------------------------------- */

static int build_err(mk_gql_error_t *gerr, mk_gql_loc_t loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int build_err(mk_gql_error_t *gerr, mk_gql_loc_t loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(gerr->msg, sizeof gerr->msg, fmt, ap);
    va_end(ap);
    gerr->loc = loc;
    return MK_EINVAL;
}

static bool push(void *arrp, size_t *n, const void *item, size_t size)
{
    char **arr = arrp;
    char *grown = realloc(*arr, (*n + 1) * size);
    if (grown == NULL)
        return false;
    memcpy(grown + *n * size, item, size);
    *arr = grown;
    (*n)++;
    return true;
}

static const char *directive_arg_string(const mk_gql_directive_t *dirs, const char *dname,
                                        const char *aname, bool *present)
{
    for (const mk_gql_directive_t *d = dirs; d; d = d->next) {
        if (strcmp(d->name, dname) != 0)
            continue;
        *present = true;
        for (const mk_gql_arg_t *a = d->args; a; a = a->next)
            if (strcmp(a->name, aname) == 0 && a->value->kind == MK_GQL_STRING)
                return a->value->str;
        return NULL;
    }
    *present = false;
    return NULL;
}

/* Adds a definition's members to its type (a definition or an extension). */
static int absorb(stype_t *t, const mk_gql_type_def_t *d, mk_gql_error_t *gerr)
{
    for (const mk_gql_field_def_t *f = d->fields; f; f = f->next) {
        if (find_field(t, f->name))
            return build_err(gerr, f->loc, "Field \"%s.%s\" can only be defined once.", t->name,
                             f->name);
        if (!push(&t->fields, &t->nfields, &f, sizeof f))
            return MK_ENOMEM;
    }
    for (const mk_gql_name_list_t *n = d->interfaces; n; n = n->next)
        if (!push(&t->ifaces, &t->nifaces, &n->name, sizeof n->name))
            return MK_ENOMEM;
    bool present;
    const char *url = directive_arg_string(d->directives, "specifiedBy", "url", &present);
    if (url)
        t->specified_by = url;
    return 0;
}

static int check_type_ref(const mk_gql_schema_t *s, const mk_gql_type_t *t, mk_gql_error_t *gerr)
{
    const char *n = named(t);
    if (find_type(s, n) == NULL) {
        const mk_gql_type_t *at = t;
        while (at->kind != MK_GQL_TYPE_NAMED)
            at = at->of;
        return build_err(gerr, at->loc, "Unknown type \"%s\".", n);
    }
    return 0;
}

static int check_refs(mk_gql_schema_t *s, mk_gql_error_t *gerr)
{
    for (size_t i = 0; i < s->ntypes; i++) {
        stype_t *t = &s->types[i];
        for (size_t k = 0; k < t->nfields; k++) {
            const mk_gql_field_def_t *f = t->fields[k];
            if (f->type && check_type_ref(s, f->type, gerr))
                return MK_EINVAL;
            for (const mk_gql_field_def_t *a = f->args; a; a = a->next)
                if (check_type_ref(s, a->type, gerr))
                    return MK_EINVAL;
        }
        for (size_t k = 0; k < t->nifaces; k++) {
            const stype_t *it = find_type(s, t->ifaces[k]);
            if (it == NULL || it->kind != MK_GQL_DEF_INTERFACE)
                return build_err(gerr, t->loc,
                                 "Type \"%s\" must only implement Interface types, "
                                 "it cannot implement \"%s\".",
                                 t->name, t->ifaces[k]);
            if (t->kind != MK_GQL_DEF_OBJECT)
                continue;
            stype_t *iface = (stype_t *)it;
            if (!push(&iface->possible, &iface->npossible, &t, sizeof t))
                return MK_ENOMEM;
        }
    }
    for (size_t i = 0; i < s->ndirs; i++)
        for (const mk_gql_field_def_t *a = s->dirs[i]->fields; a; a = a->next)
            if (check_type_ref(s, a->type, gerr))
                return MK_EINVAL;
    return 0;
}

static int add_union_members(mk_gql_schema_t *s, const mk_gql_type_def_t *d, mk_gql_error_t *gerr)
{
    stype_t *u = (stype_t *)find_type(s, d->name);
    for (const mk_gql_name_list_t *n = d->members; n; n = n->next) {
        const stype_t *m = find_type(s, n->name);
        if (m == NULL || m->kind != MK_GQL_DEF_OBJECT)
            return build_err(gerr, n->loc,
                             "Union type \"%s\" can only include Object types, it cannot include "
                             "\"%s\".",
                             d->name, n->name);
        if (!push(&u->possible, &u->npossible, &m, sizeof m))
            return MK_ENOMEM;
    }
    return 0;
}

static int index_types(mk_gql_schema_t *s)
{
    s->nslots = 16;
    while (s->nslots < s->ntypes * 2)
        s->nslots *= 2;
    s->slots = calloc(s->nslots, sizeof *s->slots);
    if (s->slots == NULL)
        return MK_ENOMEM;
    for (size_t i = 0; i < s->ntypes; i++) {
        size_t k = hash_name(s->types[i].name) & (s->nslots - 1);
        while (s->slots[k])
            k = (k + 1) & (s->nslots - 1);
        s->slots[k] = i + 1;
    }
    return 0;
}

static int build(mk_gql_schema_t *s, mk_gql_error_t *gerr)
{
    /* Definitions first (so extensions and references find every type), then extensions. */
    size_t cap = 0;
    for (int d = 0; d < 2; d++)
        for (mk_gql_type_def_t *t = mk_gql_doc_types(s->docs[d]); t; t = t->next)
            cap++;
    s->types = calloc(cap ? cap : 1, sizeof *s->types);
    if (s->types == NULL)
        return MK_ENOMEM;
    const mk_gql_type_def_t *schema_def = NULL;
    for (int d = 0; d < 2; d++) {
        for (mk_gql_type_def_t *t = mk_gql_doc_types(s->docs[d]); t; t = t->next) {
            if (t->extend)
                continue;
            if (t->kind == MK_GQL_DEF_SCHEMA) {
                if (schema_def)
                    return build_err(gerr, t->loc, "Must provide only one schema definition.");
                schema_def = t;
                s->description = t->description;
                continue;
            }
            if (t->kind == MK_GQL_DEF_DIRECTIVE) {
                for (size_t i = 0; i < s->ndirs; i++)
                    if (strcmp(s->dirs[i]->name, t->name) == 0)
                        return build_err(gerr, t->loc,
                                         "Directive \"@%s\" already exists in the "
                                         "schema.",
                                         t->name);
                if (!push(&s->dirs, &s->ndirs, &t, sizeof t))
                    return MK_ENOMEM;
                continue;
            }
            for (size_t i = 0; i < s->ntypes; i++)
                if (strcmp(s->types[i].name, t->name) == 0)
                    return build_err(gerr, t->loc, "Type \"%s\" already exists in the schema.",
                                     t->name);
            stype_t *st = &s->types[s->ntypes++];
            st->name = t->name;
            st->kind = t->kind;
            st->description = t->description;
            st->builtin = d == 0;
            st->loc = t->loc;
            s->nuser += d == 1;
        }
    }
    int rc = index_types(s);
    if (rc)
        return rc;
    for (int d = 0; d < 2; d++) {
        for (mk_gql_type_def_t *t = mk_gql_doc_types(s->docs[d]); t; t = t->next) {
            if (t->kind == MK_GQL_DEF_SCHEMA || t->kind == MK_GQL_DEF_DIRECTIVE)
                continue;
            stype_t *st = (stype_t *)find_type(s, t->name);
            if (st == NULL)
                return build_err(gerr, t->loc,
                                 "Cannot extend type \"%s\" because it is not "
                                 "defined.",
                                 t->name);
            if (st->kind != t->kind)
                return build_err(gerr, t->loc, "Cannot extend non-matching type \"%s\".", t->name);
            if ((rc = absorb(st, t, gerr)) != 0)
                return rc;
            if (t->kind == MK_GQL_DEF_UNION && (rc = add_union_members(s, t, gerr)) != 0)
                return rc;
        }
    }
    /* Root types: the schema definition (and its extensions), else the conventional names. */
    static const char *const conventional[3] = {"Query", "Mutation", "Subscription"};
    for (int d = 0; d < 2; d++) {
        for (mk_gql_type_def_t *t = mk_gql_doc_types(s->docs[d]); t; t = t->next) {
            if (t->kind != MK_GQL_DEF_SCHEMA)
                continue;
            for (const mk_gql_field_def_t *f = t->fields; f; f = f->next) {
                int k = strcmp(f->name, "query") == 0      ? 0
                        : strcmp(f->name, "mutation") == 0 ? 1
                                                           : 2;
                const stype_t *rt = find_type(s, f->type->name);
                if (rt == NULL || rt->kind != MK_GQL_DEF_OBJECT)
                    return build_err(gerr, f->loc, "%s root type \"%s\" must be an Object type.",
                                     k == 0   ? "Query"
                                     : k == 1 ? "Mutation"
                                              : "Subscription",
                                     f->type->name);
                s->roots[k] = rt->name;
            }
        }
    }
    if (schema_def == NULL) {
        for (int k = 0; k < 3; k++) {
            const stype_t *rt = find_type(s, conventional[k]);
            if (rt && rt->kind == MK_GQL_DEF_OBJECT)
                s->roots[k] = rt->name;
        }
    }
    if (s->roots[0] == NULL)
        return build_err(gerr, (mk_gql_loc_t){0, 0}, "Query root type must be provided.");
    return check_refs(s, gerr);
}

int mk_gql_schema_build(const char *sdl, size_t len, const mk_gql_limits_t *limits,
                        mk_gql_schema_t **out, mk_gql_error_t *gerr)
{
    mk_gql_error_t scratch;
    if (gerr == NULL)
        gerr = &scratch;
    memset(gerr, 0, sizeof *gerr);
    *out = NULL;
    mk_gql_schema_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MK_ENOMEM;
    int rc = mk_gql_parse(builtin_sdl, sizeof builtin_sdl - 1, MK_GQL_SDL, NULL, &s->docs[0], gerr);
    if (rc == 0)
        rc = mk_gql_parse(sdl, len, MK_GQL_SDL, limits, &s->docs[1], gerr);
    if (rc == 0)
        rc = build(s, gerr);
    if (rc == MK_ENOMEM)
        snprintf(gerr->msg, sizeof gerr->msg, "out of memory");
    if (rc) {
        mk_gql_schema_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

bool mk_gql_schema_type_applies(const mk_gql_schema_t *s, const char *type_name,
                                const char *type_cond)
{
    if (type_cond == NULL || type_name == NULL || strcmp(type_name, type_cond) == 0)
        return true;
    const stype_t *c = find_type(s, type_cond), *t = find_type(s, type_name);
    if (c == NULL || t == NULL)
        return true;
    for (size_t i = 0; i < c->npossible; i++)
        if (c->possible[i] == t)
            return true;
    return false;
}

const char *mk_gql_schema_field_type(const mk_gql_schema_t *s, const char *parent,
                                     const char *field)
{
    const mk_gql_field_def_t *f = find_field(find_type(s, parent), field);
    return f ? named(f->type) : NULL;
}

/* ---- validation ----------------------------------------------------------------------------- */

typedef struct vctx {
    const mk_gql_schema_t *s;
    const mk_gql_doc_t *doc;
    const mk_gql_operation_t *op;
    const json_t *vars;
    json_t *errors;
    size_t max, n;
    const char **seen_frags; /* fragments already walked (each once) */
    size_t nseen;
    unsigned depth;
} vctx_t;

static void verr(vctx_t *v, mk_gql_loc_t loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void verr(vctx_t *v, mk_gql_loc_t loc, const char *fmt, ...)
{
    if (v->n >= v->max)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:s}", "message", msg);
    if (e && loc.line)
        json_object_set_new(e, "locations",
                            json_pack("[{s:i, s:i}]", "line", (json_int_t)loc.line, "column",
                                      (json_int_t)loc.column));
    if (e && json_array_append_new(v->errors, e) == 0)
        v->n++;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t cost = (a[i - 1] | 0x20) == (b[j - 1] | 0x20) ? 0 : 1;
            size_t best = prev + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* " Did you mean "a", "b" or "c"?" for names close to name among a type's fields, or "". */
static void suggest(const stype_t *t, const char *name, char *buf, size_t size)
{
    const char *pick[5];
    size_t n = 0, limit = strlen(name) * 4 / 10 + 1;
    for (size_t i = 0; t && i < t->nfields && n < 5; i++)
        if (edit_distance(name, t->fields[i]->name) <= limit)
            pick[n++] = t->fields[i]->name;
    buf[0] = '\0';
    if (n == 0)
        return;
    size_t k = (size_t)snprintf(buf, size, " Did you mean ");
    for (size_t i = 0; i < n && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s\"%s\"",
                              i == 0       ? ""
                              : i + 1 == n ? " or "
                                           : ", ",
                              pick[i]);
    if (k < size)
        snprintf(buf + k, size - k, "?");
}

static bool is_composite(const stype_t *t)
{
    return t && (t->kind == MK_GQL_DEF_OBJECT || t->kind == MK_GQL_DEF_INTERFACE ||
                 t->kind == MK_GQL_DEF_UNION);
}

static bool is_input_type(const stype_t *t)
{
    return t && (t->kind == MK_GQL_DEF_SCALAR || t->kind == MK_GQL_DEF_ENUM ||
                 t->kind == MK_GQL_DEF_INPUT);
}

/* Could an object be of both types (spread possible)? */
static bool overlap(const stype_t *a, const stype_t *b)
{
    if (a == b)
        return true;
    const stype_t *const *pa =
        a->kind == MK_GQL_DEF_OBJECT ? &a : (const stype_t *const *)a->possible;
    size_t na = a->kind == MK_GQL_DEF_OBJECT ? 1 : a->npossible;
    const stype_t *const *pb =
        b->kind == MK_GQL_DEF_OBJECT ? &b : (const stype_t *const *)b->possible;
    size_t nb = b->kind == MK_GQL_DEF_OBJECT ? 1 : b->npossible;
    for (size_t i = 0; i < na; i++)
        for (size_t k = 0; k < nb; k++)
            if (pa[i] == pb[k])
                return true;
    return false;
}

static const mk_gql_var_def_t *find_var(const mk_gql_operation_t *op, const char *name)
{
    for (const mk_gql_var_def_t *v = op->vars; v; v = v->next)
        if (strcmp(v->name, name) == 0)
            return v;
    return NULL;
}

static void check_value_vars(vctx_t *v, const mk_gql_value_t *val)
{
    if (val->kind == MK_GQL_VARIABLE) {
        if (find_var(v->op, val->str) == NULL) {
            if (v->op->name)
                verr(v, val->loc, "Variable \"$%s\" is not defined by operation \"%s\".", val->str,
                     v->op->name);
            else
                verr(v, val->loc, "Variable \"$%s\" is not defined.", val->str);
        }
        return;
    }
    for (const mk_gql_value_t *i = val->items; i; i = i->next)
        check_value_vars(v, i);
}

static void check_directives(vctx_t *v, const mk_gql_directive_t *dirs)
{
    for (const mk_gql_directive_t *d = dirs; d; d = d->next) {
        const mk_gql_type_def_t *def = find_directive(v->s, d->name);
        if (def == NULL) {
            verr(v, d->loc, "Unknown directive \"@%s\".", d->name);
            continue;
        }
        for (const mk_gql_arg_t *a = d->args; a; a = a->next) {
            bool known = false;
            for (const mk_gql_field_def_t *f = def->fields; f; f = f->next)
                known = known || strcmp(f->name, a->name) == 0;
            if (!known)
                verr(v, a->loc, "Unknown argument \"%s\" on directive \"@%s\".", a->name, d->name);
            check_value_vars(v, a->value);
        }
        for (const mk_gql_field_def_t *f = def->fields; f; f = f->next) {
            if (f->type->kind != MK_GQL_TYPE_NON_NULL || f->default_value)
                continue;
            bool given = false;
            for (const mk_gql_arg_t *a = d->args; a; a = a->next)
                given = given || strcmp(f->name, a->name) == 0;
            if (!given) {
                char tb[128];
                mk_gql_type_print(f->type, tb, sizeof tb);
                verr(v, d->loc,
                     "Directive \"@%s\" argument \"%s\" of type \"%s\" is required, but it was "
                     "not provided.",
                     d->name, f->name, tb);
            }
        }
    }
}

static void check_args(vctx_t *v, const stype_t *parent, const mk_gql_sel_t *sel,
                       const mk_gql_field_def_t *fd)
{
    for (const mk_gql_arg_t *a = sel->args; a; a = a->next) {
        bool known = false;
        for (const mk_gql_field_def_t *f = fd->args; f; f = f->next)
            known = known || strcmp(f->name, a->name) == 0;
        if (!known)
            verr(v, a->loc, "Unknown argument \"%s\" on field \"%s.%s\".", a->name, parent->name,
                 sel->name);
        check_value_vars(v, a->value);
    }
    for (const mk_gql_field_def_t *f = fd->args; f; f = f->next) {
        if (f->type->kind != MK_GQL_TYPE_NON_NULL || f->default_value)
            continue;
        bool given = false;
        for (const mk_gql_arg_t *a = sel->args; a; a = a->next)
            given = given || strcmp(f->name, a->name) == 0;
        if (!given) {
            char tb[128];
            mk_gql_type_print(f->type, tb, sizeof tb);
            verr(v, sel->loc,
                 "Field \"%s\" argument \"%s\" of type \"%s\" is required, but it was not "
                 "provided.",
                 sel->name, f->name, tb);
        }
    }
}

static void check_selections(vctx_t *v, const stype_t *parent, const mk_gql_sel_t *sels);

static void check_field(vctx_t *v, const stype_t *parent, const mk_gql_sel_t *sel)
{
    check_directives(v, sel->directives);
    const mk_gql_field_def_t *fd = NULL;
    if (strcmp(sel->name, "__typename") == 0) {
        if (sel->selections)
            verr(v, sel->set_loc,
                 "Field \"__typename\" must not have a selection since type \"String!\" has no "
                 "subfields.");
        return;
    }
    bool is_query_root = v->s->roots[0] && strcmp(parent->name, v->s->roots[0]) == 0;
    if (is_query_root && strcmp(sel->name, "__schema") == 0) {
        static const mk_gql_field_def_t meta = {.name = "__schema"};
        fd = &meta;
        check_selections(v, find_type(v->s, "__Schema"), sel->selections);
        if (sel->selections == NULL)
            verr(v, sel->loc,
                 "Field \"__schema\" of type \"__Schema!\" must have a selection of "
                 "subfields. Did you mean \"__schema { ... }\"?");
        return;
    }
    if (is_query_root && strcmp(sel->name, "__type") == 0) {
        bool has_name = false;
        for (const mk_gql_arg_t *a = sel->args; a; a = a->next) {
            if (strcmp(a->name, "name") == 0)
                has_name = true;
            else
                verr(v, a->loc, "Unknown argument \"%s\" on field \"%s.__type\".", a->name,
                     parent->name);
            check_value_vars(v, a->value);
        }
        if (!has_name)
            verr(v, sel->loc,
                 "Field \"__type\" argument \"name\" of type \"String!\" is "
                 "required, but it was not provided.");
        if (sel->selections == NULL)
            verr(v, sel->loc,
                 "Field \"__type\" of type \"__Type\" must have a selection of "
                 "subfields. Did you mean \"__type { ... }\"?");
        check_selections(v, find_type(v->s, "__Type"), sel->selections);
        return;
    }
    (void)fd;
    fd = parent->kind == MK_GQL_DEF_UNION ? NULL : find_field(parent, sel->name);
    if (fd == NULL) {
        char sug[200];
        suggest(parent, sel->name, sug, sizeof sug);
        verr(v, sel->loc, "Cannot query field \"%s\" on type \"%s\".%s", sel->name, parent->name,
             sug);
        return;
    }
    check_args(v, parent, sel, fd);
    const stype_t *ft = find_type(v->s, named(fd->type));
    char tb[128];
    mk_gql_type_print(fd->type, tb, sizeof tb);
    if (is_composite(ft) && sel->selections == NULL)
        verr(v, sel->loc,
             "Field \"%s\" of type \"%s\" must have a selection of subfields. Did you mean \"%s "
             "{ ... }\"?",
             sel->name, tb, sel->name);
    else if (!is_composite(ft) && sel->selections)
        verr(v, sel->set_loc,
             "Field \"%s\" must not have a selection since type \"%s\" has no subfields.",
             sel->name, tb);
    else if (ft && sel->selections)
        check_selections(v, ft, sel->selections);
}

static bool frag_seen(vctx_t *v, const char *name)
{
    for (size_t i = 0; i < v->nseen; i++)
        if (strcmp(v->seen_frags[i], name) == 0)
            return true;
    return false;
}

static void check_type_cond(vctx_t *v, const stype_t *parent, const char *cond, mk_gql_loc_t loc,
                            const char *frag, const stype_t **out)
{
    const stype_t *ct = find_type(v->s, cond);
    *out = ct;
    if (ct == NULL) {
        verr(v, loc, "Unknown type \"%s\".", cond);
        return;
    }
    if (!is_composite(ct)) {
        if (frag)
            verr(v, loc, "Fragment \"%s\" cannot condition on non composite type \"%s\".", frag,
                 cond);
        else
            verr(v, loc, "Fragment cannot condition on non composite type \"%s\".", cond);
        *out = NULL;
        return;
    }
    if (!overlap(parent, ct)) {
        if (frag)
            verr(v, loc,
                 "Fragment \"%s\" cannot be spread here as objects of type \"%s\" can never be of "
                 "type \"%s\".",
                 frag, parent->name, cond);
        else
            verr(v, loc,
                 "Fragment cannot be spread here as objects of type \"%s\" can never be of type "
                 "\"%s\".",
                 parent->name, cond);
    }
}

static void check_selections(vctx_t *v, const stype_t *parent, const mk_gql_sel_t *sels)
{
    if (parent == NULL || ++v->depth > MAX_WALK_DEPTH) {
        v->depth--;
        return;
    }
    for (const mk_gql_sel_t *s = sels; s && v->n < v->max; s = s->next) {
        if (s->kind == MK_GQL_SEL_FIELD) {
            check_field(v, parent, s);
            continue;
        }
        check_directives(v, s->directives);
        const stype_t *ct = parent;
        if (s->kind == MK_GQL_SEL_INLINE) {
            if (s->type_cond)
                check_type_cond(v, parent, s->type_cond, s->loc, NULL, &ct);
            if (ct)
                check_selections(v, ct, s->selections);
            continue;
        }
        const mk_gql_fragment_t *f = mk_gql_doc_fragment(v->doc, s->name);
        if (f == NULL) {
            verr(v, s->loc, "Unknown fragment \"%s\".", s->name);
            continue;
        }
        check_type_cond(v, parent, f->type_cond, s->loc, f->name, &ct);
        /* A fragment's body is checked against its own type condition: once is enough. */
        if (ct && !frag_seen(v, f->name) &&
            push(&v->seen_frags, &v->nseen, &f->name, sizeof f->name)) {
            check_directives(v, f->directives);
            check_selections(v, ct, f->selections);
        }
    }
    v->depth--;
}

/* Fragment cycles, as graphql-js finds them: a depth-first walk that enters each fragment once,
 * with the spreads on the current path, so the work is linear in the document. */
typedef struct cycles {
    vctx_t *v;
    bool *done;
    int *on_path;              /* per fragment: its position on the path, or -1 */
    const mk_gql_sel_t **path; /* the spreads followed */
    size_t depth;
} cycles_t;

static void cycle_walk(cycles_t *cy, const mk_gql_fragment_t *f);

static void cycle_spreads(cycles_t *cy, const mk_gql_sel_t *sels, unsigned nest)
{
    for (const mk_gql_sel_t *s = sels; s && nest <= MAX_WALK_DEPTH; s = s->next) {
        if (s->kind != MK_GQL_SEL_SPREAD) {
            cycle_spreads(cy, s->selections, nest + 1);
            continue;
        }
        const mk_gql_fragment_t *t = mk_gql_doc_fragment(cy->v->doc, s->name);
        if (t == NULL || cy->depth >= MAX_WALK_DEPTH)
            continue;
        int at = cy->on_path[t->index];
        cy->path[cy->depth++] = s;
        if (at < 0) {
            cycle_walk(cy, t);
        } else {
            char via[200] = "";
            size_t k = 0;
            for (size_t i = (size_t)at; i + 1 < cy->depth && k + 1 < sizeof via; i++)
                k += (size_t)snprintf(via + k, sizeof via - k, "%s\"%s\"",
                                      i > (size_t)at ? ", " : "", cy->path[i]->name);
            if (via[0])
                verr(cy->v, cy->path[at]->loc,
                     "Cannot spread fragment \"%s\" within itself via %s.", t->name, via);
            else
                verr(cy->v, s->loc, "Cannot spread fragment \"%s\" within itself.", t->name);
        }
        cy->depth--;
    }
}

static void cycle_walk(cycles_t *cy, const mk_gql_fragment_t *f)
{
    if (cy->done[f->index])
        return;
    cy->done[f->index] = true;
    cy->on_path[f->index] = (int)cy->depth;
    cycle_spreads(cy, f->selections, 0);
    cy->on_path[f->index] = -1;
}

static void check_unknown_spreads(vctx_t *v, const mk_gql_sel_t *sels, unsigned depth)
{
    if (depth > MAX_WALK_DEPTH)
        return;
    for (const mk_gql_sel_t *s = sels; s; s = s->next) {
        if (s->kind == MK_GQL_SEL_SPREAD) {
            if (mk_gql_doc_fragment(v->doc, s->name) == NULL)
                verr(v, s->loc, "Unknown fragment \"%s\".", s->name);
        } else if (s->selections) {
            check_unknown_spreads(v, s->selections, depth + 1);
        }
    }
}

size_t mk_gql_validate_fragments(const mk_gql_doc_t *doc, const mk_gql_operation_t *op,
                                 json_t *errors, size_t max_errors)
{
    vctx_t v = {.doc = doc, .op = op, .errors = errors, .max = max_errors};
    check_unknown_spreads(&v, op->selections, 0);
    size_t n = mk_gql_doc_fragment_count(doc);
    cycles_t cy = {.v = &v,
                   .done = calloc(n + 1, sizeof *cy.done),
                   .on_path = malloc((n + 1) * sizeof *cy.on_path),
                   .path = malloc((MAX_WALK_DEPTH + 1) * sizeof *cy.path)};
    for (size_t i = 0; cy.on_path && i < n; i++)
        cy.on_path[i] = -1;
    for (const mk_gql_fragment_t *f = mk_gql_doc_fragments(doc); f; f = f->next) {
        if (mk_gql_doc_fragment(doc, f->name) != f)
            verr(&v, f->loc, "There can be only one fragment named \"%s\".", f->name);
        check_unknown_spreads(&v, f->selections, 0);
        if (cy.done && cy.on_path && cy.path)
            cycle_walk(&cy, f);
    }
    free(cy.done);
    free(cy.on_path);
    free(cy.path);
    return v.n;
}

size_t mk_gql_validate(const mk_gql_schema_t *s, const mk_gql_doc_t *doc,
                       const mk_gql_operation_t *op, const json_t *vars, json_t *errors,
                       size_t max_errors)
{
    vctx_t v = {.s = s, .doc = doc, .op = op, .vars = vars, .errors = errors, .max = max_errors};
    size_t cycles = mk_gql_validate_fragments(doc, op, errors, max_errors);
    v.n = cycles;
    if (cycles)
        return cycles; /* walking a cyclic document further only repeats itself */
    const char *root = s->roots[op->kind];
    if (root == NULL) {
        verr(&v, op->loc, "Schema is not configured to execute %s operation.",
             mk_gql_op_kind_name(op->kind));
        return v.n;
    }
    for (const mk_gql_var_def_t *d = op->vars; d; d = d->next) {
        for (const mk_gql_var_def_t *e = op->vars; e != d; e = e->next)
            if (strcmp(e->name, d->name) == 0)
                verr(&v, d->loc, "There can be only one variable named \"$%s\".", d->name);
        const stype_t *t = find_type(s, named(d->type));
        char tb[128];
        mk_gql_type_print(d->type, tb, sizeof tb);
        if (t == NULL)
            verr(&v, d->type->loc, "Unknown type \"%s\".", named(d->type));
        else if (!is_input_type(t))
            verr(&v, d->type->loc, "Variable \"$%s\" cannot be non-input type \"%s\".", d->name,
                 tb);
        json_t *given = vars ? json_object_get(vars, d->name) : NULL;
        if (d->type->kind == MK_GQL_TYPE_NON_NULL && d->default_value == NULL &&
            (given == NULL || json_is_null(given))) {
            if (given == NULL)
                verr(&v, d->loc, "Variable \"$%s\" of required type \"%s\" was not provided.",
                     d->name, tb);
            else
                verr(&v, d->loc, "Variable \"$%s\" of non-null type \"%s\" must not be null.",
                     d->name, tb);
        }
        check_directives(&v, d->directives);
    }
    check_directives(&v, op->directives);
    check_selections(&v, find_type(s, root), op->selections);
    free(v.seen_frags);
    return v.n;
}

/* ---- introspection -------------------------------------------------------------------------- */

typedef enum { M_SCHEMA, M_TYPE, M_FIELD, M_INPUT, M_ENUM, M_DIRECTIVE } mkind_t;

typedef struct meta {
    mkind_t k;
    const stype_t *st;         /* M_TYPE: a named type */
    const mk_gql_type_t *wrap; /* M_TYPE: a LIST or NON_NULL wrapper (st NULL) */
    const mk_gql_field_def_t *f;
    const mk_gql_type_def_t *dir;
} meta_t;

static const char *const meta_names[] = {"__Schema",     "__Type",      "__Field",
                                         "__InputValue", "__EnumValue", "__Directive"};

typedef struct ictx {
    const mk_gql_schema_t *s;
    const mk_gql_doc_t *doc;
    const json_t *vars;
    unsigned depth;
    size_t budget; /* selections left to visit: bounds the work of fragment-heavy queries */
} ictx_t;

#define INTROSPECTION_BUDGET 4000000

static json_t *exec(ictx_t *c, meta_t m, const mk_gql_sel_t *sels);

static meta_t type_meta(const mk_gql_schema_t *s, const mk_gql_type_t *t)
{
    if (t->kind == MK_GQL_TYPE_NAMED)
        return (meta_t){.k = M_TYPE, .st = find_type(s, t->name)};
    return (meta_t){.k = M_TYPE, .wrap = t};
}

static json_t *obj_or_null(ictx_t *c, meta_t m, const mk_gql_sel_t *sel)
{
    if (m.k == M_TYPE && m.st == NULL && m.wrap == NULL)
        return json_null();
    return exec(c, m, sel->selections);
}

static bool arg_bool(ictx_t *c, const mk_gql_sel_t *sel, const char *name)
{
    for (const mk_gql_arg_t *a = sel->args; a; a = a->next) {
        if (strcmp(a->name, name) == 0) {
            json_t *v = mk_gql_value_to_json(a->value, c->vars);
            bool on = json_is_true(v);
            json_decref(v);
            return on;
        }
    }
    return false;
}

static const char *deprecation(const mk_gql_directive_t *dirs, bool *is)
{
    const char *r = directive_arg_string(dirs, "deprecated", "reason", is);
    return *is && r == NULL ? "No longer supported" : r;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static const char *const kind_names[] = {
    [MK_GQL_DEF_SCALAR] = "SCALAR",       [MK_GQL_DEF_OBJECT] = "OBJECT",
    [MK_GQL_DEF_INTERFACE] = "INTERFACE", [MK_GQL_DEF_UNION] = "UNION",
    [MK_GQL_DEF_ENUM] = "ENUM",           [MK_GQL_DEF_INPUT] = "INPUT_OBJECT",
};

/* A list of input values (arguments or input fields) as __InputValue objects. */
static json_t *input_list(ictx_t *c, const mk_gql_field_def_t *const *arr, size_t n,
                          const mk_gql_field_def_t *linked, const mk_gql_sel_t *sel)
{
    bool incl = arg_bool(c, sel, "includeDeprecated");
    json_t *a = json_array();
    for (size_t i = 0; a && (arr ? i < n : linked != NULL); i++) {
        const mk_gql_field_def_t *f = arr ? arr[i] : linked;
        if (!arr)
            linked = linked->next;
        bool dep;
        deprecation(f->directives, &dep);
        if (dep && !incl)
            continue;
        json_array_append_new(a, exec(c, (meta_t){.k = M_INPUT, .f = f}, sel->selections));
    }
    return a;
}

static json_t *resolve_schema(ictx_t *c, const mk_gql_sel_t *sel)
{
    const mk_gql_schema_t *s = c->s;
    const char *n = sel->name;
    if (strcmp(n, "description") == 0)
        return str_or_null(s->description);
    if (strcmp(n, "types") == 0) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < s->ntypes; i++)
            json_array_append_new(
                a, exec(c, (meta_t){.k = M_TYPE, .st = &s->types[i]}, sel->selections));
        return a;
    }
    if (strcmp(n, "queryType") == 0 || strcmp(n, "mutationType") == 0 ||
        strcmp(n, "subscriptionType") == 0) {
        int k = n[0] == 'q' ? 0 : n[0] == 'm' ? 1 : 2;
        const stype_t *t = find_type(s, s->roots[k]);
        return t ? exec(c, (meta_t){.k = M_TYPE, .st = t}, sel->selections) : json_null();
    }
    if (strcmp(n, "directives") == 0) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < s->ndirs; i++)
            json_array_append_new(
                a, exec(c, (meta_t){.k = M_DIRECTIVE, .dir = s->dirs[i]}, sel->selections));
        return a;
    }
    return json_null();
}

static json_t *resolve_type(ictx_t *c, meta_t m, const mk_gql_sel_t *sel)
{
    const char *n = sel->name;
    const stype_t *t = m.st;
    if (strcmp(n, "kind") == 0)
        return json_string(t                                  ? kind_names[t->kind]
                           : m.wrap->kind == MK_GQL_TYPE_LIST ? "LIST"
                                                              : "NON_NULL");
    if (strcmp(n, "ofType") == 0)
        return t ? json_null() : obj_or_null(c, type_meta(c->s, m.wrap->of), sel);
    if (t == NULL)
        return json_null();
    if (strcmp(n, "name") == 0)
        return json_string(t->name);
    if (strcmp(n, "description") == 0)
        return str_or_null(t->description);
    if (strcmp(n, "specifiedByURL") == 0 || strcmp(n, "specifiedByUrl") == 0)
        return str_or_null(t->specified_by);
    if (strcmp(n, "fields") == 0 || strcmp(n, "enumValues") == 0) {
        bool want = n[0] == 'f' ? (t->kind == MK_GQL_DEF_OBJECT || t->kind == MK_GQL_DEF_INTERFACE)
                                : t->kind == MK_GQL_DEF_ENUM;
        if (!want)
            return json_null();
        bool incl = arg_bool(c, sel, "includeDeprecated");
        json_t *a = json_array();
        for (size_t i = 0; a && i < t->nfields; i++) {
            bool dep;
            deprecation(t->fields[i]->directives, &dep);
            if (dep && !incl)
                continue;
            meta_t fm = {.k = n[0] == 'f' ? M_FIELD : M_ENUM, .f = t->fields[i]};
            json_array_append_new(a, exec(c, fm, sel->selections));
        }
        return a;
    }
    if (strcmp(n, "inputFields") == 0)
        return t->kind == MK_GQL_DEF_INPUT ? input_list(c, t->fields, t->nfields, NULL, sel)
                                           : json_null();
    if (strcmp(n, "interfaces") == 0) {
        if (t->kind != MK_GQL_DEF_OBJECT && t->kind != MK_GQL_DEF_INTERFACE)
            return json_null();
        json_t *a = json_array();
        for (size_t i = 0; a && i < t->nifaces; i++)
            json_array_append_new(
                a, exec(c, (meta_t){.k = M_TYPE, .st = find_type(c->s, t->ifaces[i])},
                        sel->selections));
        return a;
    }
    if (strcmp(n, "possibleTypes") == 0) {
        if (t->kind != MK_GQL_DEF_UNION && t->kind != MK_GQL_DEF_INTERFACE)
            return json_null();
        json_t *a = json_array();
        for (size_t i = 0; a && i < t->npossible; i++)
            json_array_append_new(
                a, exec(c, (meta_t){.k = M_TYPE, .st = t->possible[i]}, sel->selections));
        return a;
    }
    return json_null();
}

static json_t *resolve_value_def(ictx_t *c, meta_t m, const mk_gql_sel_t *sel)
{
    const mk_gql_field_def_t *f = m.f;
    const char *n = sel->name;
    bool dep;
    const char *reason = deprecation(f->directives, &dep);
    if (strcmp(n, "name") == 0)
        return json_string(f->name);
    if (strcmp(n, "description") == 0)
        return str_or_null(f->description);
    if (strcmp(n, "isDeprecated") == 0)
        return json_boolean(dep);
    if (strcmp(n, "deprecationReason") == 0)
        return str_or_null(reason);
    if (strcmp(n, "type") == 0 && f->type)
        return obj_or_null(c, type_meta(c->s, f->type), sel);
    if (strcmp(n, "args") == 0)
        return input_list(c, NULL, 0, f->args, sel);
    if (strcmp(n, "defaultValue") == 0) {
        if (f->default_value == NULL)
            return json_null();
        char *text = mk_gql_value_print(f->default_value);
        json_t *v = str_or_null(text);
        free(text);
        return v;
    }
    return json_null();
}

static json_t *resolve_directive(ictx_t *c, meta_t m, const mk_gql_sel_t *sel)
{
    const mk_gql_type_def_t *d = m.dir;
    const char *n = sel->name;
    if (strcmp(n, "name") == 0)
        return json_string(d->name);
    if (strcmp(n, "description") == 0)
        return str_or_null(d->description);
    if (strcmp(n, "isRepeatable") == 0)
        return json_boolean(d->repeatable);
    if (strcmp(n, "args") == 0)
        return input_list(c, NULL, 0, d->fields, sel);
    if (strcmp(n, "locations") == 0) {
        json_t *a = json_array();
        for (const mk_gql_name_list_t *l = d->members; a && l; l = l->next)
            json_array_append_new(a, json_string(l->name));
        return a;
    }
    return json_null();
}

static void exec_into(ictx_t *c, meta_t m, const mk_gql_sel_t *sels, json_t *out)
{
    if (++c->depth > MAX_WALK_DEPTH) {
        c->depth--;
        return;
    }
    for (const mk_gql_sel_t *s = sels; s && c->budget > 0; s = s->next) {
        c->budget--;
        if (!mk_gql_included(s->directives, c->vars))
            continue;
        if (s->kind == MK_GQL_SEL_FIELD) {
            const char *key = s->alias ? s->alias : s->name;
            if (json_object_get(out, key))
                continue;
            json_t *v;
            if (strcmp(s->name, "__typename") == 0)
                v = json_string(meta_names[m.k]);
            else if (m.k == M_SCHEMA)
                v = resolve_schema(c, s);
            else if (m.k == M_TYPE)
                v = resolve_type(c, m, s);
            else if (m.k == M_DIRECTIVE)
                v = resolve_directive(c, m, s);
            else
                v = resolve_value_def(c, m, s);
            json_object_set_new(out, key, v ? v : json_null());
            continue;
        }
        const char *cond;
        const mk_gql_sel_t *body;
        if (!mk_gql_fragment_of(c->doc, s, &cond, &body))
            continue;
        if (cond == NULL || strcmp(cond, meta_names[m.k]) == 0)
            exec_into(c, m, body, out);
    }
    c->depth--;
}

static json_t *exec(ictx_t *c, meta_t m, const mk_gql_sel_t *sels)
{
    json_t *o = json_object();
    if (o)
        exec_into(c, m, sels, o);
    return o;
}

json_t *mk_gql_introspect(const mk_gql_schema_t *s, const mk_gql_doc_t *doc,
                          const mk_gql_sel_t *field, const json_t *vars)
{
    ictx_t c = {.s = s, .doc = doc, .vars = vars, .budget = INTROSPECTION_BUDGET};
    if (strcmp(field->name, "__schema") == 0)
        return exec(&c, (meta_t){.k = M_SCHEMA}, field->selections);
    if (strcmp(field->name, "__type") == 0) {
        for (const mk_gql_arg_t *a = field->args; a; a = a->next) {
            if (strcmp(a->name, "name") != 0)
                continue;
            json_t *v = mk_gql_value_to_json(a->value, vars);
            const stype_t *t = json_is_string(v) ? find_type(s, json_string_value(v)) : NULL;
            json_decref(v);
            return t ? exec(&c, (meta_t){.k = M_TYPE, .st = t}, field->selections) : json_null();
        }
    }
    return json_null();
}
