/* Dynamic protobuf <-> JSON codec driven by a FileDescriptorSet (see protodyn.h). The descriptor
 * set itself is read with the same wire reader: descriptor.proto's field numbers are below. */
#include "protodyn/protodyn.h"

#include "grpc/grpc_frame.h" /* base64 */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* FieldDescriptorProto.Type */
enum {
    T_DOUBLE = 1,
    T_FLOAT = 2,
    T_INT64 = 3,
    T_UINT64 = 4,
    T_INT32 = 5,
    T_FIXED64 = 6,
    T_FIXED32 = 7,
    T_BOOL = 8,
    T_STRING = 9,
    T_GROUP = 10,
    T_MESSAGE = 11,
    T_BYTES = 12,
    T_UINT32 = 13,
    T_ENUM = 14,
    T_SFIXED32 = 15,
    T_SFIXED64 = 16,
    T_SINT32 = 17,
    T_SINT64 = 18,
    T_MAX = 18,
};
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };
enum { LABEL_REPEATED = 3 };

/* The wire type each field type uses when not packed. */
static const int8_t type_wire[T_MAX + 1] = {
    [T_DOUBLE] = WT_I64,    [T_FLOAT] = WT_I32,     [T_INT64] = WT_VARINT, [T_UINT64] = WT_VARINT,
    [T_INT32] = WT_VARINT,  [T_FIXED64] = WT_I64,   [T_FIXED32] = WT_I32,  [T_BOOL] = WT_VARINT,
    [T_STRING] = WT_LEN,    [T_GROUP] = WT_SGROUP,  [T_MESSAGE] = WT_LEN,  [T_BYTES] = WT_LEN,
    [T_UINT32] = WT_VARINT, [T_ENUM] = WT_VARINT,   [T_SFIXED32] = WT_I32, [T_SFIXED64] = WT_I64,
    [T_SINT32] = WT_VARINT, [T_SINT64] = WT_VARINT,
};

typedef struct pd_enum {
    char *name;
    size_t n;
    char **names;
    int32_t *numbers;
} pd_enum_t;

typedef struct pd_field {
    char *name, *json_name, *type_name;
    int32_t number, oneof; /* oneof: index, or -1 */
    int label, type;
    bool packed, proto3_optional;
    const mk_protodyn_msg_t *msg;
    const pd_enum_t *en;
} pd_field_t;

typedef struct wkt wkt_t;

struct mk_protodyn_msg {
    char *name;
    pd_field_t *fields; /* sorted by number */
    size_t nfields;
    bool map_entry;
    const wkt_t *wkt; /* a well-known type with its own JSON form, or NULL */
    const mk_protodyn_pool_t *pool;
};

/* A method and, until resolve() looks them up, its type names. */
typedef struct pd_method {
    mk_protodyn_method_t pub;
    char *in_name, *out_name;
} pd_method_t;

typedef struct vec {
    void **items;
    size_t n, cap;
} vec_t;

struct mk_protodyn_pool {
    vec_t msgs, enums, methods; /* msgs and enums sorted by name after loading */
};

static int vec_push(vec_t *v, void *p)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void **items = realloc(v->items, cap * sizeof *items);
        if (items == NULL)
            return MK_ENOMEM;
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n++] = p;
    return 0;
}

/* ---- wire reading ---- */

typedef struct rd {
    const uint8_t *p, *end;
} rd_t;

typedef struct wf {
    uint32_t num;
    int wt;
    uint64_t v;          /* varint, i32, i64 */
    const uint8_t *data; /* LEN, and a group's contents */
    size_t len;
} wf_t;

static int rd_varint(rd_t *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return MK_EINVAL;
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return MK_EINVAL;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return MK_EINVAL;
}

static int rd_fixed(rd_t *r, int n, uint64_t *v)
{
    if (r->end - r->p < n)
        return MK_EINVAL;
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--)
        x = x << 8 | r->p[i];
    r->p += n;
    *v = x;
    return 0;
}

static int rd_skip_group(rd_t *r, uint32_t num, int depth);

/* Reads the next field; 1 when there is one, 0 at the end, MK_EINVAL when malformed. */
static int rd_next(rd_t *r, wf_t *f, int depth)
{
    if (r->p >= r->end)
        return 0;
    uint64_t key;
    if (rd_varint(r, &key) < 0 || key >> 3 == 0 || key >> 3 > 0x1fffffff)
        return MK_EINVAL;
    f->num = (uint32_t)(key >> 3);
    f->wt = (int)(key & 7);
    f->v = 0;
    f->data = NULL;
    f->len = 0;
    switch (f->wt) {
    case WT_VARINT:
        return rd_varint(r, &f->v) < 0 ? MK_EINVAL : 1;
    case WT_I64:
        return rd_fixed(r, 8, &f->v) < 0 ? MK_EINVAL : 1;
    case WT_I32:
        return rd_fixed(r, 4, &f->v) < 0 ? MK_EINVAL : 1;
    case WT_LEN: {
        uint64_t n;
        if (rd_varint(r, &n) < 0 || n > (uint64_t)(r->end - r->p))
            return MK_EINVAL;
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    case WT_SGROUP: {
        const uint8_t *start = r->p;
        if (rd_skip_group(r, f->num, depth + 1) < 0)
            return MK_EINVAL;
        f->data = start;
        f->len = (size_t)(r->p - start); /* includes the end-group key; not decoded further */
        return 1;
    }
    default:
        return MK_EINVAL; /* a stray end-group, or wire types 6 and 7 */
    }
}

static int rd_skip_group(rd_t *r, uint32_t num, int depth)
{
    if (depth > MK_PROTODYN_MAX_DEPTH)
        return MK_EINVAL;
    for (;;) {
        if (r->p >= r->end)
            return MK_EINVAL;
        const uint8_t *save = r->p;
        uint64_t key;
        if (rd_varint(r, &key) < 0)
            return MK_EINVAL;
        if ((key & 7) == WT_EGROUP)
            return key >> 3 == num ? 0 : MK_EINVAL;
        r->p = save;
        wf_t f;
        if (rd_next(r, &f, depth) != 1)
            return MK_EINVAL;
    }
}

static char *dup_len(const uint8_t *p, size_t n)
{
    return mk_str_dup((mk_str_t){(const char *)p, n});
}

/* ---- descriptor loading ---- */

static void enum_free(pd_enum_t *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->names[i]);
    free(e->names);
    free(e->numbers);
    free(e->name);
    free(e);
}

static void msg_free(mk_protodyn_msg_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfields; i++) {
        free(m->fields[i].name);
        free(m->fields[i].json_name);
        free(m->fields[i].type_name);
    }
    free(m->fields);
    free(m->name);
    free(m);
}

static void method_free(pd_method_t *m)
{
    if (m == NULL)
        return;
    free((char *)m->pub.path);
    free((char *)m->pub.service);
    free((char *)m->pub.name);
    free(m->in_name);
    free(m->out_name);
    free(m);
}

void mk_protodyn_pool_free(mk_protodyn_pool_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->msgs.n; i++)
        msg_free(p->msgs.items[i]);
    for (size_t i = 0; i < p->enums.n; i++)
        enum_free(p->enums.items[i]);
    for (size_t i = 0; i < p->methods.n; i++)
        method_free(p->methods.items[i]);
    free(p->msgs.items);
    free(p->enums.items);
    free(p->methods.items);
    free(p);
}

static char *join_name(const char *scope, const uint8_t *name, size_t len)
{
    size_t sl = strlen(scope);
    char *s = malloc(sl + 1 + len + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, scope, sl);
    size_t o = sl;
    if (sl)
        s[o++] = '.';
    memcpy(s + o, name, len);
    s[o + len] = '\0';
    return s;
}

/* lower_snake to lowerCamel, as protoc computes json_name when a descriptor lacks it. */
static char *camel(const char *name)
{
    char *s = malloc(strlen(name) + 1), *o = s;
    if (s == NULL)
        return NULL;
    bool up = false;
    for (const char *p = name; *p; p++) {
        if (*p == '_') {
            up = true;
            continue;
        }
        *o++ = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 32) : *p;
        up = false;
    }
    *o = '\0';
    return s;
}

static int load_enum(mk_protodyn_pool_t *pool, const char *scope, const uint8_t *d, size_t n)
{
    pd_enum_t *e = calloc(1, sizeof *e);
    if (e == NULL || vec_push(&pool->enums, e) < 0) {
        free(e);
        return MK_ENOMEM;
    }
    rd_t r = {d, d + n};
    wf_t f;
    int rc;
    while ((rc = rd_next(&r, &f, 0)) == 1) {
        if (f.num == 1 && f.wt == WT_LEN) {
            free(e->name);
            if ((e->name = join_name(scope, f.data, f.len)) == NULL)
                return MK_ENOMEM;
        } else if (f.num == 2 && f.wt == WT_LEN) {
            char **names = realloc(e->names, (e->n + 1) * sizeof *names);
            int32_t *nums = realloc(e->numbers, (e->n + 1) * sizeof *nums);
            if (names)
                e->names = names;
            if (nums)
                e->numbers = nums;
            if (names == NULL || nums == NULL)
                return MK_ENOMEM;
            e->names[e->n] = NULL;
            e->numbers[e->n] = 0;
            rd_t vr = {f.data, f.data + f.len};
            wf_t vf;
            while ((rc = rd_next(&vr, &vf, 0)) == 1) {
                if (vf.num == 1 && vf.wt == WT_LEN) {
                    free(e->names[e->n]);
                    e->names[e->n] = dup_len(vf.data, vf.len);
                } else if (vf.num == 2 && vf.wt == WT_VARINT) {
                    e->numbers[e->n] = (int32_t)vf.v;
                }
            }
            if (rc < 0 || e->names[e->n] == NULL) {
                free(e->names[e->n]);
                return MK_EINVAL;
            }
            e->n++;
        }
    }
    return rc < 0 || e->name == NULL ? MK_EINVAL : 0;
}

static int load_field(pd_field_t *fl, const uint8_t *d, size_t n, bool proto3)
{
    memset(fl, 0, sizeof *fl);
    fl->oneof = -1;
    bool packed_set = false, packed = false;
    rd_t r = {d, d + n};
    wf_t f;
    int rc;
    while ((rc = rd_next(&r, &f, 0)) == 1) {
        char **str = NULL;
        if (f.wt == WT_LEN && f.num == 1)
            str = &fl->name;
        else if (f.wt == WT_LEN && f.num == 6)
            str = &fl->type_name;
        else if (f.wt == WT_LEN && f.num == 10)
            str = &fl->json_name;
        if (str) {
            free(*str);
            if ((*str = dup_len(f.data, f.len)) == NULL)
                return MK_ENOMEM;
        } else if (f.wt == WT_VARINT) {
            if (f.num == 3)
                fl->number = (int32_t)f.v;
            else if (f.num == 4)
                fl->label = (int)f.v;
            else if (f.num == 5)
                fl->type = (int)f.v;
            else if (f.num == 9)
                fl->oneof = (int32_t)f.v;
            else if (f.num == 17)
                fl->proto3_optional = f.v != 0;
        } else if (f.wt == WT_LEN && f.num == 8) { /* FieldOptions: packed = 2 */
            rd_t orr = {f.data, f.data + f.len};
            wf_t of;
            while ((rc = rd_next(&orr, &of, 0)) == 1)
                if (of.num == 2 && of.wt == WT_VARINT) {
                    packed_set = true;
                    packed = of.v != 0;
                }
            if (rc < 0)
                return MK_EINVAL;
        }
    }
    if (rc < 0 || fl->name == NULL || fl->number <= 0 || fl->type < 1 || fl->type > T_MAX)
        return MK_EINVAL;
    if (fl->json_name == NULL && (fl->json_name = camel(fl->name)) == NULL)
        return MK_ENOMEM;
    bool scalar = type_wire[fl->type] != WT_LEN && fl->type != T_GROUP;
    fl->packed = fl->label == LABEL_REPEATED && scalar && (packed_set ? packed : proto3);
    return 0;
}

static int cmp_field(const void *a, const void *b)
{
    const pd_field_t *x = a, *y = b;
    return x->number < y->number ? -1 : x->number > y->number;
}

static int load_message(mk_protodyn_pool_t *pool, const char *scope, const uint8_t *d, size_t n,
                        bool proto3, int depth)
{
    if (depth > MK_PROTODYN_MAX_DEPTH)
        return MK_EINVAL;
    mk_protodyn_msg_t *m = calloc(1, sizeof *m);
    if (m == NULL || vec_push(&pool->msgs, m) < 0) {
        free(m);
        return MK_ENOMEM;
    }
    rd_t r = {d, d + n};
    wf_t f;
    int rc;
    /* The name comes first in protoc's output, but do not rely on it: find it before nesting. */
    while ((rc = rd_next(&r, &f, 0)) == 1)
        if (f.num == 1 && f.wt == WT_LEN) {
            free(m->name);
            if ((m->name = join_name(scope, f.data, f.len)) == NULL)
                return MK_ENOMEM;
        }
    if (rc < 0 || m->name == NULL)
        return MK_EINVAL;
    r = (rd_t){d, d + n};
    while ((rc = rd_next(&r, &f, 0)) == 1) {
        if (f.wt != WT_LEN)
            continue;
        if (f.num == 2) {
            pd_field_t *fs = realloc(m->fields, (m->nfields + 1) * sizeof *fs);
            if (fs == NULL)
                return MK_ENOMEM;
            m->fields = fs;
            rc = load_field(&fs[m->nfields], f.data, f.len, proto3);
            if (rc < 0) {
                free(fs[m->nfields].name);
                free(fs[m->nfields].json_name);
                free(fs[m->nfields].type_name);
                return rc;
            }
            m->nfields++;
        } else if (f.num == 3) {
            if ((rc = load_message(pool, m->name, f.data, f.len, proto3, depth + 1)) < 0)
                return rc;
        } else if (f.num == 4) {
            if ((rc = load_enum(pool, m->name, f.data, f.len)) < 0)
                return rc;
        } else if (f.num == 7) { /* MessageOptions: map_entry = 7 */
            rd_t orr = {f.data, f.data + f.len};
            wf_t of;
            while ((rc = rd_next(&orr, &of, 0)) == 1)
                if (of.num == 7 && of.wt == WT_VARINT)
                    m->map_entry = of.v != 0;
            if (rc < 0)
                return MK_EINVAL;
        }
    }
    if (rc < 0)
        return MK_EINVAL;
    if (m->nfields > 1)
        qsort(m->fields, m->nfields, sizeof *m->fields, cmp_field);
    for (size_t i = 1; i < m->nfields; i++)
        if (m->fields[i].number == m->fields[i - 1].number)
            return MK_EINVAL;
    return 0;
}

static int load_service(mk_protodyn_pool_t *pool, const char *pkg, const uint8_t *d, size_t n)
{
    char *svc = NULL;
    rd_t r = {d, d + n};
    wf_t f;
    int rc;
    while ((rc = rd_next(&r, &f, 0)) == 1)
        if (f.num == 1 && f.wt == WT_LEN) {
            free(svc);
            svc = join_name(pkg, f.data, f.len);
        }
    if (rc < 0 || svc == NULL) {
        free(svc);
        return MK_EINVAL;
    }
    r = (rd_t){d, d + n};
    while ((rc = rd_next(&r, &f, 0)) == 1) {
        if (f.num != 2 || f.wt != WT_LEN)
            continue;
        pd_method_t *pm = calloc(1, sizeof *pm);
        if (pm == NULL || vec_push(&pool->methods, pm) < 0) {
            free(pm);
            rc = MK_ENOMEM;
            break;
        }
        mk_protodyn_method_t *m = &pm->pub;
        m->service = strdup(svc);
        rd_t mr = {f.data, f.data + f.len};
        wf_t mf;
        while ((rc = rd_next(&mr, &mf, 0)) == 1) {
            if (mf.wt == WT_LEN && mf.num >= 1 && mf.num <= 3) {
                char **slot = mf.num == 1   ? (char **)&m->name
                              : mf.num == 2 ? &pm->in_name
                                            : &pm->out_name;
                free(*slot);
                *slot = dup_len(mf.data, mf.len);
            } else if (mf.wt == WT_VARINT && mf.num == 5) {
                m->client_streaming = mf.v != 0;
            } else if (mf.wt == WT_VARINT && mf.num == 6) {
                m->server_streaming = mf.v != 0;
            }
        }
        if (rc < 0 || m->name == NULL || m->service == NULL || pm->in_name == NULL ||
            pm->out_name == NULL) {
            rc = MK_EINVAL;
            break;
        }
        char *path = malloc(strlen(svc) + strlen(m->name) + 3);
        if (path == NULL) {
            rc = MK_ENOMEM;
            break;
        }
        sprintf(path, "/%s/%s", svc, m->name);
        m->path = path;
    }
    free(svc);
    return rc < 0 ? rc : 0;
}

static int load_file(mk_protodyn_pool_t *pool, const uint8_t *d, size_t n, mk_err_t *err)
{
    char *pkg = NULL, *fname = NULL;
    bool proto3 = false;
    rd_t r = {d, d + n};
    wf_t f;
    int rc;
    while ((rc = rd_next(&r, &f, 0)) == 1) {
        if (f.num == 1 && f.wt == WT_LEN) {
            free(fname);
            fname = dup_len(f.data, f.len);
        } else if (f.num == 2 && f.wt == WT_LEN) {
            free(pkg);
            pkg = dup_len(f.data, f.len);
        } else if (f.num == 12 && f.wt == WT_LEN) {
            proto3 = f.len == 6 && memcmp(f.data, "proto3", 6) == 0;
        }
    }
    if (rc < 0) {
        rc = mk_err_set(err, MK_EINVAL, "descriptor set: malformed FileDescriptorProto");
        goto out;
    }
    r = (rd_t){d, d + n};
    while ((rc = rd_next(&r, &f, 0)) == 1) {
        if (f.wt != WT_LEN)
            continue;
        if (f.num == 4)
            rc = load_message(pool, pkg ? pkg : "", f.data, f.len, proto3, 0);
        else if (f.num == 5)
            rc = load_enum(pool, pkg ? pkg : "", f.data, f.len);
        else if (f.num == 6)
            rc = load_service(pool, pkg ? pkg : "", f.data, f.len);
        if (rc < 0)
            break;
    }
    if (rc < 0)
        rc = mk_err_set(err, rc, "descriptor set: %s in file %s",
                        rc == MK_ENOMEM ? "out of memory" : "malformed descriptor",
                        fname ? fname : "(unnamed)");
out:
    free(pkg);
    free(fname);
    return rc < 0 ? rc : 0;
}

static int cmp_msg(const void *a, const void *b)
{
    return strcmp((*(mk_protodyn_msg_t *const *)a)->name, (*(mk_protodyn_msg_t *const *)b)->name);
}

static int cmp_enum(const void *a, const void *b)
{
    return strcmp((*(pd_enum_t *const *)a)->name, (*(pd_enum_t *const *)b)->name);
}

static int cmp_key_msg(const void *k, const void *e)
{
    return strcmp(k, (*(mk_protodyn_msg_t *const *)e)->name);
}

static int cmp_key_enum(const void *k, const void *e)
{
    return strcmp(k, (*(pd_enum_t *const *)e)->name);
}

const mk_protodyn_msg_t *mk_protodyn_find_message(const mk_protodyn_pool_t *p, const char *name)
{
    if (name[0] == '.')
        name++;
    if (p->msgs.n == 0)
        return NULL;
    mk_protodyn_msg_t **m =
        bsearch(name, p->msgs.items, p->msgs.n, sizeof *p->msgs.items, cmp_key_msg);
    return m ? *m : NULL;
}

static const pd_enum_t *find_enum(const mk_protodyn_pool_t *p, const char *name)
{
    if (name[0] == '.')
        name++;
    if (p->enums.n == 0)
        return NULL;
    pd_enum_t **e = bsearch(name, p->enums.items, p->enums.n, sizeof *p->enums.items, cmp_key_enum);
    return e ? *e : NULL;
}

static const wkt_t *wkt_find(const char *name);

static int resolve(mk_protodyn_pool_t *pool, mk_err_t *err)
{
    if (pool->msgs.n > 1)
        qsort(pool->msgs.items, pool->msgs.n, sizeof *pool->msgs.items, cmp_msg);
    if (pool->enums.n > 1)
        qsort(pool->enums.items, pool->enums.n, sizeof *pool->enums.items, cmp_enum);
    for (size_t i = 1; i < pool->msgs.n; i++)
        if (cmp_msg(&pool->msgs.items[i - 1], &pool->msgs.items[i]) == 0)
            return mk_err_set(err, MK_EINVAL, "descriptor set: message %s defined twice",
                              ((mk_protodyn_msg_t *)pool->msgs.items[i])->name);
    for (size_t i = 0; i < pool->msgs.n; i++) {
        mk_protodyn_msg_t *m = pool->msgs.items[i];
        m->pool = pool;
        m->wkt = wkt_find(m->name);
        for (size_t j = 0; j < m->nfields; j++) {
            pd_field_t *f = &m->fields[j];
            if (f->type != T_MESSAGE && f->type != T_GROUP && f->type != T_ENUM)
                continue;
            if (f->type_name == NULL)
                return mk_err_set(err, MK_EINVAL, "descriptor set: %s.%s has no type name", m->name,
                                  f->name);
            if (f->type == T_ENUM)
                f->en = find_enum(pool, f->type_name);
            else
                f->msg = mk_protodyn_find_message(pool, f->type_name);
            if (f->en == NULL && f->msg == NULL)
                return mk_err_set(err, MK_EINVAL,
                                  "descriptor set: type %s of %s.%s is not in the set (use "
                                  "--include_imports)",
                                  f->type_name, m->name, f->name);
        }
    }
    for (size_t i = 0; i < pool->methods.n; i++) {
        pd_method_t *m = pool->methods.items[i];
        m->pub.input = mk_protodyn_find_message(pool, m->in_name);
        m->pub.output = mk_protodyn_find_message(pool, m->out_name);
        if (m->pub.input == NULL || m->pub.output == NULL)
            return mk_err_set(err, MK_EINVAL,
                              "descriptor set: type %s of method %s is not in the set",
                              m->pub.input == NULL ? m->in_name : m->out_name, m->pub.path);
    }
    return 0;
}

int mk_protodyn_pool_new(const uint8_t *data, size_t len, mk_protodyn_pool_t **out, mk_err_t *err)
{
    *out = NULL;
    mk_protodyn_pool_t *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    rd_t r = {data, data + len};
    wf_t f;
    int rc;
    size_t files = 0;
    while ((rc = rd_next(&r, &f, 0)) == 1) {
        if (f.num != 1 || f.wt != WT_LEN)
            continue;
        files++;
        if ((rc = load_file(pool, f.data, f.len, err)) < 0)
            goto fail;
    }
    if (rc < 0 || files == 0) {
        rc = mk_err_set(err, MK_EINVAL, "not a FileDescriptorSet (%s)",
                        rc < 0 ? "malformed wire data" : "no files");
        goto fail;
    }
    if ((rc = resolve(pool, err)) < 0)
        goto fail;
    *out = pool;
    return 0;
fail:
    mk_protodyn_pool_free(pool);
    return rc;
}

const mk_protodyn_method_t *mk_protodyn_find_method(const mk_protodyn_pool_t *p, const char *path)
{
    for (size_t i = 0; i < p->methods.n; i++) {
        const pd_method_t *m = p->methods.items[i];
        if (strcmp(m->pub.path, path) == 0)
            return &m->pub;
    }
    return NULL;
}

size_t mk_protodyn_method_count(const mk_protodyn_pool_t *p)
{
    return p->methods.n;
}

const mk_protodyn_method_t *mk_protodyn_method_at(const mk_protodyn_pool_t *p, size_t i)
{
    return i < p->methods.n ? &((pd_method_t *)p->methods.items[i])->pub : NULL;
}

const char *mk_protodyn_msg_name(const mk_protodyn_msg_t *m)
{
    return m->name;
}

/* ---- wire -> JSON ---- */

static const pd_field_t *find_field(const mk_protodyn_msg_t *m, uint32_t num)
{
    size_t lo = 0, hi = m->nfields;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if ((uint32_t)m->fields[mid].number == num)
            return &m->fields[mid];
        if ((uint32_t)m->fields[mid].number < num)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool is_packable(int type)
{
    return type_wire[type] != WT_LEN && type != T_GROUP;
}

static json_t *json_u64(uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%" PRIu64, v);
    return json_string(b);
}

static json_t *json_i64(int64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%" PRId64, v);
    return json_string(b);
}

static json_t *json_double(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    /* Integral values print as integers, as protobuf prints them (1, not 1.0). */
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
        return json_integer((json_int_t)d);
    return json_real(d);
}

/* The double nearest to the shortest decimal that reads back as x: protobuf prints a float
 * field 0.1f as 0.1, not as the double 0.10000000149011612. */
static double float_shortest(float x)
{
    if (isnan(x) || isinf(x))
        return x;
    char b[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, (double)x);
        if ((float)strtod(b, NULL) == x)
            break;
    }
    return strtod(b, NULL);
}

static json_t *enum_json(const pd_enum_t *e, int32_t v)
{
    for (size_t i = 0; e && i < e->n; i++)
        if (e->numbers[i] == v)
            return json_string(e->names[i]);
    return json_integer(v);
}

static json_t *bytes_json(const uint8_t *d, size_t n)
{
    mk_buf_t b;
    mk_buf_init(&b, 0);
    json_t *j = NULL;
    if (mk_grpc_base64_encode(&b, d, n) == 0 && mk_buf_append(&b, "==", (4 - b.len % 4) % 4) == 0)
        j = json_stringn(b.data ? b.data : "", b.len);
    mk_buf_free(&b);
    return j;
}

/* A scalar from its numeric wire value. */
static json_t *scalar_json(const pd_field_t *f, uint64_t v)
{
    switch (f->type) {
    case T_INT32:
    case T_SFIXED32:
        return json_integer((int32_t)(uint32_t)v);
    case T_UINT32:
    case T_FIXED32:
        return json_integer((uint32_t)v);
    case T_SINT32:
        return json_integer((int32_t)((uint32_t)v >> 1 ^ -(uint32_t)(v & 1)));
    case T_INT64:
    case T_SFIXED64:
        return json_i64((int64_t)v);
    case T_UINT64:
    case T_FIXED64:
        return json_u64(v);
    case T_SINT64:
        return json_i64((int64_t)(v >> 1 ^ -(v & 1)));
    case T_BOOL:
        return json_boolean(v != 0);
    case T_ENUM:
        return enum_json(f->en, (int32_t)v);
    case T_FLOAT: {
        uint32_t u = (uint32_t)v;
        float x;
        memcpy(&x, &u, sizeof x);
        return json_double(float_shortest(x));
    }
    case T_DOUBLE: {
        double x;
        memcpy(&x, &v, sizeof x);
        return json_double(x);
    }
    default:
        return NULL;
    }
}

static int decode_msg(const mk_protodyn_msg_t *m, const uint8_t *d, size_t n, json_t *obj,
                      int depth, mk_err_t *err);
static int msg_json(const mk_protodyn_msg_t *m, const uint8_t *d, size_t n, json_t *merge_into,
                    int depth, json_t **out, mk_err_t *err);

/* One value of field f from wire field w; *out is a new reference. merge_into: an existing
 * object of a singular message field, decoded into (protobuf merges repeated occurrences). */
static int value_json(const pd_field_t *f, const wf_t *w, json_t *merge_into, int depth,
                      json_t **out, mk_err_t *err)
{
    *out = NULL;
    if (w->wt != type_wire[f->type])
        return mk_err_set(err, MK_EINVAL, "wire type %d does not fit field type %d", w->wt,
                          f->type);
    switch (f->type) {
    case T_STRING:
        *out = json_stringn((const char *)w->data, w->len);
        return *out ? 0 : mk_err_set(err, MK_EINVAL, "string is not valid UTF-8");
    case T_BYTES:
        *out = bytes_json(w->data, w->len);
        return *out ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
    case T_MESSAGE:
        return msg_json(f->msg, w->data, w->len, merge_into, depth + 1, out, err);
    default:
        *out = scalar_json(f, w->v);
        return *out ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
    }
}

/* The JSON a field has when absent from a map entry. */
static json_t *default_json(const pd_field_t *f)
{
    switch (f->type) {
    case T_STRING:
        return json_string("");
    case T_BYTES:
        return json_string("");
    case T_MESSAGE:
        return json_object();
    case T_INT64:
    case T_UINT64:
    case T_SINT64:
    case T_FIXED64:
    case T_SFIXED64:
        return json_string("0");
    case T_FLOAT:
    case T_DOUBLE:
        return json_real(0);
    default:
        return scalar_json(f, 0);
    }
}

static int map_entry_json(const pd_field_t *f, const wf_t *w, json_t *map, int depth, mk_err_t *err)
{
    if (w->wt != WT_LEN)
        return mk_err_set(err, MK_EINVAL, "map entry is not length-delimited");
    const mk_protodyn_msg_t *em = f->msg;
    const pd_field_t *kf = find_field(em, 1), *vf = find_field(em, 2);
    if (kf == NULL || vf == NULL)
        return mk_err_set(err, MK_EINVAL, "map entry type %s lacks key or value", em->name);
    json_t *e = json_object();
    int rc = decode_msg(em, w->data, w->len, e, depth + 1, err);
    if (rc == 0) {
        json_t *k = json_object_get(e, kf->json_name);
        json_t *v = json_object_get(e, vf->json_name);
        char kb[24];
        const char *key = "";
        if (json_is_string(k))
            key = json_string_value(k);
        else if (json_is_integer(k))
            snprintf(kb, sizeof kb, "%" JSON_INTEGER_FORMAT, json_integer_value(k)), key = kb;
        else if (json_is_boolean(k))
            key = json_is_true(k) ? "true" : "false";
        else if (kf->type == T_BOOL) /* absent: the key type's default */
            key = "false";
        else if (kf->type != T_STRING)
            key = "0";
        json_t *dv = NULL;
        if (v == NULL && vf->type == T_MESSAGE) /* absent message value: its empty form */
            rc = msg_json(vf->msg, (const uint8_t *)"", 0, NULL, depth + 1, &dv, err);
        else if (v == NULL)
            dv = default_json(vf);
        if (rc == 0)
            json_object_set_new(map, key, v ? json_incref(v) : dv);
    }
    json_decref(e);
    return rc;
}

static void clear_oneof(const mk_protodyn_msg_t *m, const pd_field_t *f, json_t *obj)
{
    if (f->oneof < 0 || f->proto3_optional)
        return;
    for (size_t i = 0; i < m->nfields; i++)
        if (&m->fields[i] != f && m->fields[i].oneof == f->oneof)
            json_object_del(obj, m->fields[i].json_name);
}

static int decode_field(const mk_protodyn_msg_t *m, const pd_field_t *f, const wf_t *w, json_t *obj,
                        int depth, mk_err_t *err)
{
    int rc = 0;
    json_t *v;
    if (f->label != LABEL_REPEATED) {
        json_t *prev = f->type == T_MESSAGE ? json_object_get(obj, f->json_name) : NULL;
        if ((rc = value_json(f, w, json_is_object(prev) ? prev : NULL, depth, &v, err)) < 0)
            return rc;
        clear_oneof(m, f, obj);
        json_object_set_new(obj, f->json_name, v);
        return 0;
    }
    bool is_map = f->type == T_MESSAGE && f->msg->map_entry;
    json_t *c = json_object_get(obj, f->json_name);
    if (c == NULL) {
        c = is_map ? json_object() : json_array();
        json_object_set_new(obj, f->json_name, c);
    }
    if (is_map)
        return map_entry_json(f, w, c, depth, err);
    if (w->wt == WT_LEN && is_packable(f->type)) {
        /* Packed: a run of values without keys (accepted whatever the descriptor says). */
        rd_t r = {w->data, w->data + w->len};
        while (r.p < r.end) {
            wf_t e = {.wt = type_wire[f->type]};
            int x = e.wt == WT_VARINT ? rd_varint(&r, &e.v)
                                      : rd_fixed(&r, e.wt == WT_I32 ? 4 : 8, &e.v);
            if (x < 0)
                return mk_err_set(err, MK_EINVAL, "truncated packed values");
            json_array_append_new(c, scalar_json(f, e.v));
        }
        return 0;
    }
    if ((rc = value_json(f, w, NULL, depth, &v, err)) < 0)
        return rc;
    json_array_append_new(c, v);
    return 0;
}

static int decode_msg(const mk_protodyn_msg_t *m, const uint8_t *d, size_t n, json_t *obj,
                      int depth, mk_err_t *err)
{
    if (depth > MK_PROTODYN_MAX_DEPTH)
        return mk_err_set(err, MK_EINVAL, "nested deeper than %d", MK_PROTODYN_MAX_DEPTH);
    rd_t r = {d, d + n};
    wf_t w;
    int rc;
    while ((rc = rd_next(&r, &w, depth)) == 1) {
        const pd_field_t *f = find_field(m, w.num);
        if (f == NULL || f->type == T_GROUP)
            continue; /* unknown fields (and proto2 groups) are skipped */
        if ((rc = decode_field(m, f, &w, obj, depth, err)) < 0) {
            mk_err_prefix(err, "%s", f->json_name);
            return rc;
        }
    }
    if (rc < 0)
        return mk_err_set(err, MK_EINVAL, "malformed wire data in %s", m->name);
    return 0;
}

int mk_protodyn_decode(const mk_protodyn_msg_t *m, const uint8_t *data, size_t len, json_t **out,
                       mk_err_t *err)
{
    return msg_json(m, data, len, NULL, 0, out, err);
}

/* ---- JSON -> wire ---- */

static int put_varint(mk_buf_t *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n++] = (uint8_t)(v & 0x7f) | (v > 0x7f ? 0x80 : 0);
        v >>= 7;
    } while (v);
    return mk_buf_append(b, t, n);
}

static int put_fixed(mk_buf_t *b, uint64_t v, int n)
{
    uint8_t t[8];
    for (int i = 0; i < n; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    return mk_buf_append(b, t, (size_t)n);
}

static int put_key(mk_buf_t *b, int32_t num, int wt)
{
    return put_varint(b, (uint64_t)num << 3 | (uint64_t)wt);
}

static int put_len(mk_buf_t *b, int32_t num, const void *d, size_t n)
{
    int rc = put_key(b, num, WT_LEN);
    if (rc == 0)
        rc = put_varint(b, n);
    if (rc == 0 && n)
        rc = mk_buf_append(b, d, n);
    return rc;
}

/* An integer from a JSON number or numeric string, checked against [lo, hi] (signed) or
 * [0, uhi] (unsigned). */
static int json_int(const json_t *v, bool is_signed, int64_t lo, int64_t hi, uint64_t uhi,
                    uint64_t *out, mk_err_t *err)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (is_signed ? (x < lo || x > hi) : (x < 0 || (uint64_t)x > uhi))
            return mk_err_set(err, MK_EINVAL, "%" JSON_INTEGER_FORMAT " is out of range", x);
        *out = (uint64_t)x;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) ||
            (is_signed ? (d < (double)lo || d > (double)hi) : (d < 0 || d > (double)uhi)))
            return mk_err_set(err, MK_EINVAL, "%g is not an integer in range", d);
        *out = is_signed ? (uint64_t)(int64_t)d : (uint64_t)d;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        if (is_signed) {
            long long x = strtoll(s, &end, 10);
            if (*s == '\0' || *end != '\0' || errno || x < lo || x > hi)
                return mk_err_set(err, MK_EINVAL, "\"%.40s\" is not an integer in range", s);
            *out = (uint64_t)x;
        } else {
            if (*s == '-')
                return mk_err_set(err, MK_EINVAL, "\"%.40s\" is negative", s);
            unsigned long long x = strtoull(s, &end, 10);
            if (*s == '\0' || *end != '\0' || errno || x > uhi)
                return mk_err_set(err, MK_EINVAL, "\"%.40s\" is not an integer in range", s);
            *out = x;
        }
        return 0;
    }
    return mk_err_set(err, MK_EINVAL, "expected an integer");
}

static int json_float(const json_t *v, double *out, mk_err_t *err)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "NaN") == 0)
            *out = NAN;
        else if (strcmp(s, "Infinity") == 0)
            *out = INFINITY;
        else if (strcmp(s, "-Infinity") == 0)
            *out = -INFINITY;
        else {
            char *end;
            *out = strtod(s, &end);
            if (*s == '\0' || *end != '\0')
                return mk_err_set(err, MK_EINVAL, "\"%.40s\" is not a number", s);
        }
        return 0;
    }
    return mk_err_set(err, MK_EINVAL, "expected a number");
}

static int encode_msg(const mk_protodyn_msg_t *m, const json_t *obj, mk_buf_t *out, int depth,
                      mk_err_t *err);
static int msg_wire(const mk_protodyn_msg_t *m, const json_t *v, mk_buf_t *out, int depth,
                    mk_err_t *err);

/* A scalar's wire value (no key): varint or fixed bytes appended to b. */
static int scalar_wire(const pd_field_t *f, const json_t *v, mk_buf_t *b, mk_err_t *err)
{
    uint64_t u = 0;
    double d;
    int rc;
    switch (f->type) {
    case T_INT32:
    case T_SFIXED32:
    case T_SINT32:
        if ((rc = json_int(v, true, INT32_MIN, INT32_MAX, 0, &u, err)) < 0)
            return rc;
        if (f->type == T_SINT32) {
            int32_t x = (int32_t)u;
            return put_varint(b, (uint32_t)((uint32_t)x << 1 ^ (uint32_t)(x >> 31)));
        }
        /* int32 negatives are sign-extended to 10 bytes on the wire */
        return f->type == T_INT32 ? put_varint(b, (uint64_t)(int64_t)(int32_t)u)
                                  : put_fixed(b, u, 4);
    case T_INT64:
    case T_SFIXED64:
    case T_SINT64:
        if ((rc = json_int(v, true, INT64_MIN, INT64_MAX, 0, &u, err)) < 0)
            return rc;
        if (f->type == T_SINT64) {
            int64_t x = (int64_t)u;
            return put_varint(b, (uint64_t)x << 1 ^ (uint64_t)(x >> 63));
        }
        return f->type == T_INT64 ? put_varint(b, u) : put_fixed(b, u, 8);
    case T_UINT32:
    case T_FIXED32:
        if ((rc = json_int(v, false, 0, 0, UINT32_MAX, &u, err)) < 0)
            return rc;
        return f->type == T_UINT32 ? put_varint(b, u) : put_fixed(b, u, 4);
    case T_UINT64:
    case T_FIXED64:
        if ((rc = json_int(v, false, 0, 0, UINT64_MAX, &u, err)) < 0)
            return rc;
        return f->type == T_UINT64 ? put_varint(b, u) : put_fixed(b, u, 8);
    case T_BOOL:
        if (!json_is_boolean(v))
            return mk_err_set(err, MK_EINVAL, "expected true or false");
        return put_varint(b, json_is_true(v));
    case T_ENUM:
        if (json_is_string(v)) {
            const char *name = json_string_value(v);
            for (size_t i = 0; i < f->en->n; i++)
                if (strcmp(f->en->names[i], name) == 0)
                    return put_varint(b, (uint64_t)(int64_t)f->en->numbers[i]);
            return mk_err_set(err, MK_EINVAL, "\"%.60s\" is not a value of enum %s", name,
                              f->en->name);
        }
        if ((rc = json_int(v, true, INT32_MIN, INT32_MAX, 0, &u, err)) < 0)
            return rc;
        return put_varint(b, (uint64_t)(int64_t)(int32_t)u);
    case T_FLOAT: {
        if ((rc = json_float(v, &d, err)) < 0)
            return rc;
        float x = (float)d;
        uint32_t bits;
        memcpy(&bits, &x, sizeof bits);
        return put_fixed(b, bits, 4);
    }
    case T_DOUBLE: {
        if ((rc = json_float(v, &d, err)) < 0)
            return rc;
        memcpy(&u, &d, sizeof u);
        return put_fixed(b, u, 8);
    }
    default:
        return mk_err_set(err, MK_EINTERNAL, "not a scalar type");
    }
}

/* One value of f with its key. */
static int value_wire(const pd_field_t *f, const json_t *v, mk_buf_t *b, int depth, mk_err_t *err)
{
    int rc;
    switch (f->type) {
    case T_STRING:
        if (!json_is_string(v))
            return mk_err_set(err, MK_EINVAL, "expected a string");
        return put_len(b, f->number, json_string_value(v), json_string_length(v));
    case T_BYTES: {
        if (!json_is_string(v))
            return mk_err_set(err, MK_EINVAL, "expected a base64 string");
        mk_buf_t raw;
        mk_buf_init(&raw, 0);
        rc = mk_grpc_base64_decode(&raw, json_string_value(v), json_string_length(v));
        if (rc == MK_EINVAL)
            mk_err_set(err, rc, "not valid base64");
        if (rc == 0)
            rc = put_len(b, f->number, raw.data, raw.len);
        mk_buf_free(&raw);
        return rc;
    }
    case T_MESSAGE: {
        mk_buf_t sub;
        mk_buf_init(&sub, b->max);
        rc = msg_wire(f->msg, v, &sub, depth + 1, err);
        if (rc == 0)
            rc = put_len(b, f->number, sub.data, sub.len);
        mk_buf_free(&sub);
        return rc;
    }
    case T_GROUP:
        return mk_err_set(err, MK_EINVAL, "proto2 groups are not supported");
    default:
        if ((rc = put_key(b, f->number, type_wire[f->type])) < 0)
            return rc;
        return scalar_wire(f, v, b, err);
    }
}

static int map_wire(const pd_field_t *f, const json_t *v, mk_buf_t *b, int depth, mk_err_t *err)
{
    if (!json_is_object(v))
        return mk_err_set(err, MK_EINVAL, "expected an object (map)");
    const pd_field_t *kf = find_field(f->msg, 1), *vf = find_field(f->msg, 2);
    if (kf == NULL || vf == NULL)
        return mk_err_set(err, MK_EINVAL, "map entry type %s lacks key or value", f->msg->name);
    const char *key;
    json_t *val;
    mk_buf_t e;
    mk_buf_init(&e, b->max);
    int rc = 0;
    json_object_foreach((json_t *)v, key, val)
    {
        mk_buf_reset(&e);
        json_t *k;
        if (kf->type == T_BOOL) {
            if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0) {
                rc = mk_err_set(err, MK_EINVAL, "map key \"%.40s\" is not true or false", key);
                break;
            }
            k = json_boolean(strcmp(key, "true") == 0);
        } else {
            k = json_string(key);
        }
        rc = k ? value_wire(kf, k, &e, depth + 1, err) : MK_EINVAL;
        json_decref(k);
        /* null is the default (no value on the wire), except where it is a value of its own */
        if (rc == 0 && (!json_is_null(val) || (vf->type == T_MESSAGE && vf->msg->wkt)))
            rc = value_wire(vf, val, &e, depth + 1, err);
        if (rc == 0)
            rc = put_len(b, f->number, e.data, e.len);
        if (rc < 0) {
            mk_err_prefix(err, "[\"%.40s\"]", key);
            break;
        }
    }
    mk_buf_free(&e);
    return rc;
}

static int repeated_wire(const pd_field_t *f, const json_t *v, mk_buf_t *b, int depth,
                         mk_err_t *err)
{
    if (!json_is_array(v))
        return mk_err_set(err, MK_EINVAL, "expected an array");
    size_t i;
    json_t *x;
    int rc = 0;
    if (f->packed) {
        mk_buf_t p;
        mk_buf_init(&p, b->max);
        json_array_foreach(v, i, x)
        {
            if ((rc = scalar_wire(f, x, &p, err)) < 0) {
                mk_err_prefix(err, "[%zu]", i);
                break;
            }
        }
        if (rc == 0 && p.len > 0)
            rc = put_len(b, f->number, p.data, p.len);
        mk_buf_free(&p);
        return rc;
    }
    json_array_foreach(v, i, x)
    {
        if ((rc = value_wire(f, x, b, depth, err)) < 0) {
            mk_err_prefix(err, "[%zu]", i);
            return rc;
        }
    }
    return 0;
}

static int encode_msg(const mk_protodyn_msg_t *m, const json_t *obj, mk_buf_t *out, int depth,
                      mk_err_t *err)
{
    if (depth > MK_PROTODYN_MAX_DEPTH)
        return mk_err_set(err, MK_EINVAL, "nested deeper than %d", MK_PROTODYN_MAX_DEPTH);
    if (!json_is_object(obj))
        return mk_err_set(err, MK_EINVAL, "expected an object for %s", m->name);
    size_t matched = 0;
    int rc = 0;
    /* Which oneof each field index set, to refuse a second member. */
    const pd_field_t **oneof_set = calloc(m->nfields ? m->nfields : 1, sizeof *oneof_set);
    if (oneof_set == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->nfields && rc == 0; i++) {
        const pd_field_t *f = &m->fields[i];
        json_t *v = json_object_get(obj, f->json_name);
        json_t *alt = strcmp(f->name, f->json_name) ? json_object_get(obj, f->name) : NULL;
        if (v && alt) {
            rc = mk_err_set(err, MK_EINVAL, "%s given twice (as %s and %s)", f->name, f->json_name,
                            f->name);
            break;
        }
        if (v == NULL)
            v = alt;
        if (v == NULL)
            continue;
        matched++;
        if (json_is_null(v))
            continue; /* null: the default, nothing on the wire */
        if (f->oneof >= 0 && !f->proto3_optional && (size_t)f->oneof < m->nfields) {
            if (oneof_set[f->oneof]) {
                rc = mk_err_set(err, MK_EINVAL, "%s and %s are members of one oneof",
                                oneof_set[f->oneof]->json_name, f->json_name);
                break;
            }
            oneof_set[f->oneof] = f;
        }
        if (f->label == LABEL_REPEATED)
            rc = f->type == T_MESSAGE && f->msg->map_entry ? map_wire(f, v, out, depth, err)
                                                           : repeated_wire(f, v, out, depth, err);
        else
            rc = value_wire(f, v, out, depth, err);
        if (rc < 0)
            mk_err_prefix(err, "%s", f->json_name);
    }
    free(oneof_set);
    if (rc == 0 && matched < json_object_size(obj)) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)obj, key, val)
        {
            bool known = false;
            for (size_t i = 0; i < m->nfields && !known; i++)
                known =
                    strcmp(key, m->fields[i].json_name) == 0 || strcmp(key, m->fields[i].name) == 0;
            if (!known)
                return mk_err_set(err, MK_EINVAL, "unknown field \"%.60s\" in %s", key, m->name);
        }
    }
    if (rc == MK_ETOOBIG)
        mk_err_prefix(err, "message over the size limit");
    return rc;
}

int mk_protodyn_encode(const mk_protodyn_msg_t *m, const json_t *in, mk_buf_t *out, mk_err_t *err)
{
    return msg_wire(m, in, out, 0, err);
}

/* ---- well-known types: their JSON forms, as transforms over the generic codec ---- */

/* dec: generic JSON of the message (borrowed) -> the type's JSON (*out, new reference).
 * enc: the type's JSON (borrowed) -> generic JSON (*out, new reference). */
typedef int (*wkt_dec_fn)(const mk_protodyn_msg_t *m, json_t *g, int depth, json_t **out,
                          mk_err_t *err);
typedef int (*wkt_enc_fn)(const mk_protodyn_msg_t *m, const json_t *v, int depth, json_t **out,
                          mk_err_t *err);

struct wkt {
    const char *name;
    wkt_dec_fn dec;
    wkt_enc_fn enc;
};

#define MAX_TS_SECONDS  253402300799LL /* 9999-12-31T23:59:59Z */
#define MIN_TS_SECONDS  -62135596800LL /* 0001-01-01T00:00:00Z */
#define MAX_DUR_SECONDS 315576000000LL /* 10,000 years */

static int64_t jget_i64(const json_t *g, const char *key)
{
    const json_t *v = json_object_get(g, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

/* ".5", ".500123", ".000000001": 0, 3, 6 or 9 digits as protobuf prints them. */
static void frac_format(char *out, size_t size, int32_t nanos)
{
    if (nanos == 0)
        out[0] = '\0';
    else if (nanos % 1000000 == 0)
        snprintf(out, size, ".%03d", nanos / 1000000);
    else if (nanos % 1000 == 0)
        snprintf(out, size, ".%06d", nanos / 1000);
    else
        snprintf(out, size, ".%09d", nanos);
}

/* Parses ".ddd" (1 to 9 digits) at *p into nanoseconds; advances *p. No dot: 0. */
static int frac_parse(const char **p, int32_t *nanos)
{
    *nanos = 0;
    if (**p != '.')
        return 0;
    (*p)++;
    int digits = 0;
    int32_t n = 0;
    while (**p >= '0' && **p <= '9' && digits < 9) {
        n = n * 10 + (**p - '0');
        (*p)++;
        digits++;
    }
    if (digits == 0 || (**p >= '0' && **p <= '9'))
        return MK_EINVAL;
    while (digits++ < 9)
        n *= 10;
    *nanos = n;
    return 0;
}

static json_t *seconds_nanos(int64_t s, int32_t n)
{
    char b[24];
    snprintf(b, sizeof b, "%" PRId64, s);
    return json_pack("{s:s,s:i}", "seconds", b, "nanos", (int)n);
}

static int ts_dec(const mk_protodyn_msg_t *m, json_t *g, int depth, json_t **out, mk_err_t *err)
{
    (void)m;
    (void)depth;
    int64_t s = jget_i64(g, "seconds"), n = jget_i64(g, "nanos");
    if (s < MIN_TS_SECONDS || s > MAX_TS_SECONDS || n < 0 || n > 999999999)
        return mk_err_set(err, MK_EINVAL, "Timestamp out of range (%" PRId64 " s, %" PRId64 " ns)",
                          s, n);
    time_t t = (time_t)s;
    struct tm tm;
    gmtime_r(&t, &tm);
    char frac[16], b[64];
    frac_format(frac, sizeof frac, (int32_t)n);
    snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    *out = json_string(b);
    return 0;
}

static bool digits_at(const char *s, const int *pos, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[pos[i]] < '0' || s[pos[i]] > '9')
            return false;
    return true;
}

static int num_at(const char *s, int at, int len)
{
    int v = 0;
    for (int i = 0; i < len; i++)
        v = v * 10 + (s[at + i] - '0');
    return v;
}

/* RFC 3339: 1972-01-01T10:00:20.021Z or with an offset (+01:00). */
static int ts_enc(const mk_protodyn_msg_t *m, const json_t *v, int depth, json_t **out,
                  mk_err_t *err)
{
    (void)m;
    (void)depth;
    const char *s = json_string_value(v);
    static const int dpos[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
    if (s == NULL || strlen(s) < 20 || !digits_at(s, dpos, 14) || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        return mk_err_set(err, MK_EINVAL, "expected an RFC 3339 timestamp string");
    struct tm tm = {.tm_year = num_at(s, 0, 4) - 1900,
                    .tm_mon = num_at(s, 5, 2) - 1,
                    .tm_mday = num_at(s, 8, 2),
                    .tm_hour = num_at(s, 11, 2),
                    .tm_min = num_at(s, 14, 2),
                    .tm_sec = num_at(s, 17, 2)};
    const char *p = s + 19;
    int32_t nanos;
    if (frac_parse(&p, &nanos) < 0)
        return mk_err_set(err, MK_EINVAL, "bad fraction of a second in \"%.40s\"", s);
    int64_t offset = 0;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        offset = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
               digits_at(p, (const int[]){1, 2, 4, 5}, 4)) {
        offset = (num_at(p, 1, 2) * 3600 + num_at(p, 4, 2) * 60) * (*p == '-' ? -1 : 1);
    } else {
        return mk_err_set(err, MK_EINVAL, "bad time zone in \"%.40s\"", s);
    }
    struct tm check = tm;
    int64_t secs = (int64_t)timegm(&check);
    /* timegm normalises 02-30 into March: refuse dates that moved. */
    if (check.tm_mday != tm.tm_mday || check.tm_mon != tm.tm_mon || check.tm_hour != tm.tm_hour ||
        check.tm_min != tm.tm_min || check.tm_sec != tm.tm_sec)
        return mk_err_set(err, MK_EINVAL, "no such date or time: \"%.40s\"", s);
    secs -= offset;
    if (secs < MIN_TS_SECONDS || secs > MAX_TS_SECONDS)
        return mk_err_set(err, MK_EINVAL, "Timestamp out of range: \"%.40s\"", s);
    *out = seconds_nanos(secs, nanos);
    return 0;
}

static int dur_dec(const mk_protodyn_msg_t *m, json_t *g, int depth, json_t **out, mk_err_t *err)
{
    (void)m;
    (void)depth;
    int64_t s = jget_i64(g, "seconds"), n = jget_i64(g, "nanos");
    if (s < -MAX_DUR_SECONDS || s > MAX_DUR_SECONDS || n < -999999999 || n > 999999999 ||
        (s > 0 && n < 0) || (s < 0 && n > 0))
        return mk_err_set(err, MK_EINVAL, "Duration out of range (%" PRId64 " s, %" PRId64 " ns)",
                          s, n);
    bool neg = s < 0 || n < 0;
    char frac[16], b[48];
    frac_format(frac, sizeof frac, (int32_t)(n < 0 ? -n : n));
    snprintf(b, sizeof b, "%s%" PRId64 "%ss", neg ? "-" : "", s < 0 ? -s : s, frac);
    *out = json_string(b);
    return 0;
}

/* "1.5s", "-0.000001s" */
static int dur_enc(const mk_protodyn_msg_t *m, const json_t *v, int depth, json_t **out,
                   mk_err_t *err)
{
    (void)m;
    (void)depth;
    const char *s = json_string_value(v);
    if (s == NULL)
        return mk_err_set(err, MK_EINVAL, "expected a duration string like \"1.5s\"");
    const char *p = s;
    bool neg = *p == '-';
    if (neg)
        p++;
    int64_t secs = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 13) {
        secs = secs * 10 + (*p++ - '0');
        digits++;
    }
    int32_t nanos;
    if (digits == 0 || frac_parse(&p, &nanos) < 0 || p[0] != 's' || p[1] != '\0' ||
        secs > MAX_DUR_SECONDS)
        return mk_err_set(err, MK_EINVAL, "expected a duration string like \"1.5s\", got \"%.40s\"",
                          s);
    *out = seconds_nanos(neg ? -secs : secs, neg ? -nanos : nanos);
    return 0;
}

static int wrap_dec(const mk_protodyn_msg_t *m, json_t *g, int depth, json_t **out, mk_err_t *err)
{
    (void)depth;
    json_t *v = json_object_get(g, "value");
    const pd_field_t *f = find_field(m, 1);
    *out = v ? json_incref(v) : f ? default_json(f) : json_null();
    return *out ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
}

static int wrap_enc(const mk_protodyn_msg_t *m, const json_t *v, int depth, json_t **out,
                    mk_err_t *err)
{
    (void)m;
    (void)depth;
    (void)err;
    *out = json_pack("{s:O}", "value", v);
    return 0;
}

/* Struct <-> object, ListValue <-> array: the generic form's one field. */
static int one_field_dec(json_t *g, const char *key, bool array, json_t **out)
{
    json_t *v = json_object_get(g, key);
    *out = v ? json_incref(v) : array ? json_array() : json_object();
    return 0;
}

static int struct_dec(const mk_protodyn_msg_t *m, json_t *g, int depth, json_t **out, mk_err_t *err)
{
    (void)m;
    (void)depth;
    (void)err;
    return one_field_dec(g, "fields", false, out);
}

static int struct_enc(const mk_protodyn_msg_t *m, const json_t *v, int depth, json_t **out,
                      mk_err_t *err)
{
    (void)m;
    (void)depth;
    if (!json_is_object(v))
        return mk_err_set(err, MK_EINVAL, "expected an object (Struct)");
    *out = json_pack("{s:O}", "fields", v);
    return 0;
}

static int list_dec(const mk_protodyn_msg_t *m, json_t *g, int depth, json_t **out, mk_err_t *err)
{
    (void)m;
    (void)depth;
    (void)err;
    return one_field_dec(g, "values", true, out);
}

static int list_enc(const mk_protodyn_msg_t *m, const json_t *v, int depth, json_t **out,
                    mk_err_t *err)
{
    (void)m;
    (void)depth;
    if (!json_is_array(v))
        return mk_err_set(err, MK_EINVAL, "expected an array (ListValue)");
    *out = json_pack("{s:O}", "values", v);
    return 0;
}

/* Value: whichever member is set, as plain JSON. */
static int value_dec(const mk_protodyn_msg_t *m, json_t *g, int depth, json_t **out, mk_err_t *err)
{
    (void)m;
    (void)depth;
    (void)err;
    static const char *const members[] = {"numberValue", "stringValue", "boolValue", "structValue",
                                          "listValue"};
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        json_t *v = json_object_get(g, members[i]);
        if (v) {
            *out = json_incref(v);
            return 0;
        }
    }
    *out = json_null(); /* nullValue, or nothing set */
    return 0;
}

static int value_enc(const mk_protodyn_msg_t *m, const json_t *v, int depth, json_t **out,
                     mk_err_t *err)
{
    (void)m;
    (void)depth;
    (void)err;
    const char *key = json_is_null(v)      ? "nullValue"
                      : json_is_boolean(v) ? "boolValue"
                      : json_is_number(v)  ? "numberValue"
                      : json_is_string(v)  ? "stringValue"
                      : json_is_object(v)  ? "structValue"
                                           : "listValue";
    *out = json_is_null(v) ? json_pack("{s:s}", key, "NULL_VALUE") : json_pack("{s:O}", key, v);
    return 0;
}

/* FieldMask: paths ["a_b", "c.d_e"] <-> "aB,c.dE". */
static int mask_dec(const mk_protodyn_msg_t *m, json_t *g, int depth, json_t **out, mk_err_t *err)
{
    (void)m;
    (void)depth;
    mk_buf_t b;
    mk_buf_init(&b, 0);
    json_t *paths = json_object_get(g, "paths"), *p;
    size_t i;
    int rc = 0;
    json_array_foreach(paths, i, p)
    {
        char *c = camel(json_string_value(p) ? json_string_value(p) : "");
        if (c == NULL || (i && mk_buf_append(&b, ",", 1) < 0) || mk_buf_append_str(&b, c) < 0)
            rc = MK_ENOMEM;
        free(c);
        if (rc < 0)
            break;
    }
    *out = rc == 0 ? json_stringn(b.data ? b.data : "", b.len) : NULL;
    mk_buf_free(&b);
    return *out ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
}

static int mask_enc(const mk_protodyn_msg_t *m, const json_t *v, int depth, json_t **out,
                    mk_err_t *err)
{
    (void)m;
    (void)depth;
    const char *s = json_string_value(v);
    if (s == NULL)
        return mk_err_set(err, MK_EINVAL, "expected a FieldMask string like \"a,bC\"");
    json_t *paths = json_array();
    mk_buf_t b;
    mk_buf_init(&b, 0);
    for (const char *p = s;; p++) {
        if (*p == ',' || *p == '\0') {
            if (b.len > 0)
                json_array_append_new(paths, json_stringn(b.data, b.len));
            mk_buf_reset(&b);
            if (*p == '\0')
                break;
        } else if (*p >= 'A' && *p <= 'Z') {
            char low[2] = {'_', (char)(*p + 32)};
            mk_buf_append(&b, low, 2);
        } else {
            mk_buf_append(&b, p, 1);
        }
    }
    mk_buf_free(&b);
    *out = json_pack("{s:o}", "paths", paths);
    return 0;
}

/* Any: {"@type": url, ...fields} or, for a type with its own JSON form, {"@type", "value"}. */
static const mk_protodyn_msg_t *any_type(const mk_protodyn_msg_t *m, const char *url, mk_err_t *err)
{
    const char *slash = strrchr(url, '/');
    const mk_protodyn_msg_t *t = mk_protodyn_find_message(m->pool, slash ? slash + 1 : url);
    if (t == NULL)
        mk_err_set(err, MK_EINVAL, "Any: type %.120s is not in the descriptor set", url);
    return t;
}

static int any_dec(const mk_protodyn_msg_t *m, json_t *g, int depth, json_t **out, mk_err_t *err)
{
    const char *url = json_string_value(json_object_get(g, "typeUrl"));
    const char *b64 = json_string_value(json_object_get(g, "value"));
    if (url == NULL || url[0] == '\0') {
        *out = json_object();
        return 0;
    }
    const mk_protodyn_msg_t *t = any_type(m, url, err);
    if (t == NULL)
        return MK_EINVAL;
    mk_buf_t raw;
    mk_buf_init(&raw, 0);
    json_t *inner = NULL;
    int rc = mk_grpc_base64_decode(&raw, b64 ? b64 : "", b64 ? strlen(b64) : 0);
    if (rc == 0)
        rc = msg_json(t, (const uint8_t *)(raw.data ? raw.data : ""), raw.len, NULL, depth + 1,
                      &inner, err);
    mk_buf_free(&raw);
    if (rc < 0)
        return rc;
    json_t *o = json_pack("{s:s}", "@type", url);
    if (t->wkt)
        json_object_set_new(o, "value", inner);
    else {
        json_object_update(o, inner);
        json_decref(inner);
    }
    *out = o;
    return 0;
}

static int any_enc(const mk_protodyn_msg_t *m, const json_t *v, int depth, json_t **out,
                   mk_err_t *err)
{
    if (!json_is_object(v))
        return mk_err_set(err, MK_EINVAL, "expected an object (Any)");
    if (json_object_size(v) == 0) {
        *out = json_object();
        return 0;
    }
    const char *url = json_string_value(json_object_get(v, "@type"));
    if (url == NULL)
        return mk_err_set(err, MK_EINVAL, "Any needs \"@type\"");
    const mk_protodyn_msg_t *t = any_type(m, url, err);
    if (t == NULL)
        return MK_EINVAL;
    json_t *inner;
    if (t->wkt) {
        inner = json_incref(json_object_get(v, "value"));
        if (inner == NULL)
            return mk_err_set(err, MK_EINVAL, "Any of %.80s needs \"value\"", url);
    } else {
        inner = json_copy((json_t *)v);
        json_object_del(inner, "@type");
    }
    mk_buf_t sub;
    mk_buf_init(&sub, 0);
    int rc = msg_wire(t, inner, &sub, depth + 1, err);
    json_decref(inner);
    if (rc == 0) {
        json_t *b = bytes_json((const uint8_t *)(sub.data ? sub.data : ""), sub.len);
        *out = json_pack("{s:s,s:o}", "typeUrl", url, "value", b);
    }
    mk_buf_free(&sub);
    return rc;
}

static const wkt_t wkts[] = {
    {"google.protobuf.Any", any_dec, any_enc},
    {"google.protobuf.BoolValue", wrap_dec, wrap_enc},
    {"google.protobuf.BytesValue", wrap_dec, wrap_enc},
    {"google.protobuf.DoubleValue", wrap_dec, wrap_enc},
    {"google.protobuf.Duration", dur_dec, dur_enc},
    {"google.protobuf.FieldMask", mask_dec, mask_enc},
    {"google.protobuf.FloatValue", wrap_dec, wrap_enc},
    {"google.protobuf.Int32Value", wrap_dec, wrap_enc},
    {"google.protobuf.Int64Value", wrap_dec, wrap_enc},
    {"google.protobuf.ListValue", list_dec, list_enc},
    {"google.protobuf.StringValue", wrap_dec, wrap_enc},
    {"google.protobuf.Struct", struct_dec, struct_enc},
    {"google.protobuf.Timestamp", ts_dec, ts_enc},
    {"google.protobuf.UInt32Value", wrap_dec, wrap_enc},
    {"google.protobuf.UInt64Value", wrap_dec, wrap_enc},
    {"google.protobuf.Value", value_dec, value_enc},
};

static const wkt_t *wkt_find(const char *name)
{
    for (size_t i = 0; i < sizeof wkts / sizeof wkts[0]; i++)
        if (strcmp(wkts[i].name, name) == 0)
            return &wkts[i];
    return NULL;
}

static int msg_json(const mk_protodyn_msg_t *m, const uint8_t *d, size_t n, json_t *merge_into,
                    int depth, json_t **out, mk_err_t *err)
{
    *out = NULL;
    json_t *g = m->wkt == NULL && merge_into ? json_incref(merge_into) : json_object();
    int rc = decode_msg(m, d, n, g, depth, err);
    if (rc == 0 && m->wkt) {
        rc = m->wkt->dec(m, g, depth, out, err);
        json_decref(g);
        return rc;
    }
    if (rc < 0) {
        json_decref(g);
        return rc;
    }
    *out = g;
    return 0;
}

static int msg_wire(const mk_protodyn_msg_t *m, const json_t *v, mk_buf_t *out, int depth,
                    mk_err_t *err)
{
    if (m->wkt == NULL)
        return encode_msg(m, v, out, depth, err);
    if (depth > MK_PROTODYN_MAX_DEPTH)
        return mk_err_set(err, MK_EINVAL, "nested deeper than %d", MK_PROTODYN_MAX_DEPTH);
    json_t *g = NULL;
    int rc = m->wkt->enc(m, v, depth, &g, err);
    if (rc == 0)
        rc = g ? encode_msg(m, g, out, depth, err) : mk_err_set(err, MK_ENOMEM, "out of memory");
    json_decref(g);
    return rc;
}

/* ---- example messages ---- */

#define SAMPLE_DEPTH 4
/* Values in one example at most: a hostile set (a message of a hundred fields of its own type)
 * would otherwise ask for 100^4 of them. Past it, nested messages are left out. */
#define SAMPLE_BUDGET 10000

static json_t *sample_msg(const mk_protodyn_msg_t *m, int depth, size_t *budget);

static void spend(size_t *budget)
{
    if (*budget > 0)
        --*budget;
}

/* A value of field f's type in JSON form (NULL: leave the field out). */
static json_t *sample_value(const pd_field_t *f, int depth, size_t *budget)
{
    switch (f->type) {
    case T_STRING:
        return json_string(f->json_name);
    case T_BOOL:
        return json_true();
    case T_DOUBLE:
    case T_FLOAT:
        return json_real(1.5);
    case T_INT64:
    case T_UINT64:
    case T_FIXED64:
    case T_SFIXED64:
    case T_SINT64:
        return json_string("1"); /* 64-bit integers are strings in proto3 JSON */
    case T_BYTES:
        return json_string("ZXhhbXBsZQ=="); /* "example" */
    case T_ENUM:
        return f->en && f->en->n ? json_string(f->en->names[0]) : json_integer(0);
    case T_MESSAGE:
    case T_GROUP:
        if (f->msg == NULL || depth >= SAMPLE_DEPTH || *budget == 0)
            return NULL;
        return sample_msg(f->msg, depth + 1, budget);
    default:
        return json_integer(1);
    }
}

/* Well-known types in their own JSON forms. */
static json_t *sample_wkt(const mk_protodyn_msg_t *m, int depth, size_t *budget)
{
    const char *n = m->name + strlen("google.protobuf.");
    if (strcmp(n, "Timestamp") == 0)
        return json_string("2024-01-02T03:04:05Z");
    if (strcmp(n, "Duration") == 0)
        return json_string("1.500s");
    if (strcmp(n, "FieldMask") == 0)
        return json_string("name");
    if (strcmp(n, "Struct") == 0)
        return json_pack("{s:s}", "key", "value");
    if (strcmp(n, "Value") == 0)
        return json_string("value");
    if (strcmp(n, "ListValue") == 0)
        return json_pack("[s]", "value");
    if (strcmp(n, "Any") == 0)
        return NULL; /* needs a type of the caller's choosing */
    /* The wrappers: their one field's value, bare. */
    return m->nfields == 1 ? sample_value(&m->fields[0], depth, budget) : json_object();
}

static json_t *sample_msg(const mk_protodyn_msg_t *m, int depth, size_t *budget)
{
    if (m->wkt != NULL)
        return sample_wkt(m, depth, budget);
    json_t *o = json_object();
    /* Every field is visited (scalars cost nothing to keep); nested messages stop when the
     * budget is spent. */
    for (size_t i = 0; i < m->nfields; i++, spend(budget)) {
        const pd_field_t *f = &m->fields[i];
        /* One member per oneof: the first. */
        bool taken = false;
        for (size_t k = 0; f->oneof >= 0 && !f->proto3_optional && k < i; k++)
            taken = taken || m->fields[k].oneof == f->oneof;
        if (taken)
            continue;
        json_t *v;
        if (f->type == T_MESSAGE && f->msg && f->msg->map_entry && f->msg->nfields == 2) {
            json_t *key = sample_value(&f->msg->fields[0], depth, budget);
            json_t *val = sample_value(&f->msg->fields[1], depth, budget);
            const char *ks = json_is_string(key) ? json_string_value(key)
                             : json_is_true(key) ? "true"
                                                 : "1";
            v = val ? json_pack("{s:o}", ks, val) : NULL;
            json_decref(key);
        } else {
            v = sample_value(f, depth, budget);
            if (v && f->label == LABEL_REPEATED)
                v = json_pack("[o]", v);
        }
        if (v)
            json_object_set_new(o, f->json_name, v);
    }
    return o;
}

json_t *mk_protodyn_sample(const mk_protodyn_msg_t *m)
{
    size_t budget = SAMPLE_BUDGET;
    json_t *v = sample_msg(m, 0, &budget);
    return v ? v : json_object();
}
