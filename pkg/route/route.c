/* The route index: a segment tree per method plus one for ANY, built once from a builder and then
 * read without locks; lookup walks the path once with backtracking and merges the matched leaves.
 */
#include "route/route.h"

#include <stdlib.h>
#include <string.h>

/* Trees in the index: slot 0 is ANY, then the common methods, then any other token by name. */
static const char *const std_methods[] = {"ANY",   "GET",    "POST", "PUT",
                                          "PATCH", "DELETE", "HEAD", "OPTIONS"};
#define N_STD_METHODS (sizeof std_methods / sizeof std_methods[0])
#define ANY_TREE      0

/* Tree walks recurse once per segment, so a route's depth bounds their stack use. */
#define MAX_SEGMENTS 256

/* One added route. names point into route (the normalized copy); both share one allocation,
 * which the entry owns (see entry_block). */
struct entry {
    void *value;
    int64_t priority;
    int64_t created_at;
    uint32_t seq;    /* insertion order, the last tiebreak */
    uint32_t method; /* tree slot */
    uint32_t nparams;
    char *route;
    mk_str_t *names;
};

/* The entries ending at one node, kept in match order (best first). */
struct leaf {
    uint32_t n;
    uint32_t cap;
    const struct entry *e[];
};

/* A literal edge; seg points into an entry's route, which lives as long as the index. Edges are
 * sorted by (len, key, remaining bytes), where key holds the first 8 bytes, so most probes compare
 * integers held in the edge array without following seg. */
struct edge {
    uint32_t len;
    uint64_t key;
    const char *seg;
    struct node *child;
};

/* A tree node: 40 bytes, as a route adds one per segment (memory per mock counts). While
 * building, lits has room for lits_cap(nlits) edges; once finished, exactly nlits, followed in
 * the same allocation by the hash of a wide node. */
struct node {
    struct edge *lits;
    uint32_t nlits;
    uint32_t hmask;     /* wide nodes only: hash size - 1; 0 = no hash */
    struct node *param; /* `:name`, any name: entries keep their own names */
    struct leaf *leaf;  /* routes ending here */
    struct leaf *wild;  /* routes ending here with `*` */
};

/* The hash of a finished wide node: open addressing, 1 + index into lits, 0 = empty. */
static const uint32_t *node_hash(const struct node *n)
{
    return n->hmask ? (const uint32_t *)(n->lits + n->nlits) : NULL;
}

struct tree {
    char *method;
    size_t mlen;
    struct node *root;
};

struct mk_route_builder {
    struct entry *entries;
    size_t n;
    size_t cap;
    char **methods; /* slot names; the first N_STD_METHODS are std_methods */
    size_t nmethods;
};

struct mk_route_index {
    struct entry *entries;
    size_t n;
    struct tree *trees;
    size_t ntrees;
};

/* ---- route syntax ---- */

/* The route's length once one trailing '/' is dropped ("/" stays "/"). */
static size_t normalized_len(const char *s, size_t len)
{
    if (len > 1 && s[len - 1] == '/')
        return len - 1;
    return len;
}

/* End of the segment starting at off: the next '/' or len. */
static size_t segment_end(const char *s, size_t off, size_t len)
{
    const char *p = off < len ? memchr(s + off, '/', len - off) : NULL;
    return p ? (size_t)(p - s) : len;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool is_wild(const char *seg, size_t len)
{
    return len == 1 && seg[0] == '*';
}

/* Checks route; when names is not NULL fills the parameter names (slices of route) and nparams. */
static int parse_route(const char *route, mk_str_t *names, uint32_t *nparams, mk_err_t *err)
{
    mk_str_t seen[MK_ROUTE_MAX_PARAMS];
    uint32_t np = 0, nsegs = 0;
    if (route == NULL || route[0] != '/')
        return mk_err_set(err, MK_EINVAL, "route \"%.200s\" must start with '/'",
                          route ? route : "(null)");
    size_t len = normalized_len(route, strlen(route));
    size_t off = 1;
    while (off <= len && len > 1) {
        size_t end = segment_end(route, off, len);
        const char *seg = route + off;
        size_t slen = end - off;
        if (++nsegs > MAX_SEGMENTS)
            return mk_err_set(err, MK_EINVAL,
                              "route \"%.200s\": more than %d segments (at offset %zu)", route,
                              MAX_SEGMENTS, off);
        if (slen > 0 && seg[0] == ':') {
            mk_str_t name = {seg + 1, slen - 1};
            if (name.len == 0)
                return mk_err_set(err, MK_EINVAL,
                                  "route \"%.200s\": empty parameter name at offset %zu", route,
                                  off);
            for (size_t i = 0; i < name.len; i++) {
                if (!is_name_char(name.base[i]))
                    return mk_err_set(err, MK_EINVAL,
                                      "route \"%.200s\": invalid character '%c' in parameter "
                                      "name at offset %zu (allowed: A-Z a-z 0-9 _ -)",
                                      route, name.base[i], off + 1 + i);
            }
            if (np == MK_ROUTE_MAX_PARAMS)
                return mk_err_set(err, MK_EINVAL,
                                  "route \"%.200s\": more than %d parameters (at offset %zu)",
                                  route, MK_ROUTE_MAX_PARAMS, off);
            for (uint32_t i = 0; i < np; i++) {
                if (mk_str_eq(seen[i], name))
                    return mk_err_set(err, MK_EINVAL,
                                      "route \"%.200s\": duplicate parameter name ':%.*s' at "
                                      "offset %zu",
                                      route, (int)name.len, name.base, off);
            }
            seen[np++] = name;
        } else if (is_wild(seg, slen) && end < len) {
            return mk_err_set(err, MK_EINVAL,
                              "route \"%.200s\": '*' at offset %zu must be the last segment", route,
                              off);
        }
        off = end + 1;
    }
    if (names) {
        memcpy(names, seen, np * sizeof *names);
        *nparams = np;
    }
    return 0;
}

int mk_route_validate(const char *route, mk_err_t *err)
{
    return parse_route(route, NULL, NULL, err);
}

/* ---- builder ---- */

mk_route_builder_t *mk_route_builder_new(void)
{
    mk_route_builder_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->methods = calloc(N_STD_METHODS, sizeof *b->methods);
    if (b->methods == NULL)
        goto fail;
    for (size_t i = 0; i < N_STD_METHODS; i++) {
        b->methods[i] = mk_str_dup(mk_str_of(std_methods[i]));
        if (b->methods[i] == NULL)
            goto fail;
        b->nmethods++;
    }
    return b;
fail:
    mk_route_builder_free(b);
    return NULL;
}

/* The allocation holding an entry's names (first, when it has any) and route. */
static void *entry_block(const struct entry *e)
{
    return e->nparams ? (void *)e->names : (void *)e->route;
}

static void free_entries(struct entry *entries, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(entry_block(&entries[i]));
    free(entries);
}

static void free_methods(char **methods, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(methods[i]);
    free(methods);
}

void mk_route_builder_free(mk_route_builder_t *b)
{
    if (b == NULL)
        return;
    free_entries(b->entries, b->n);
    free_methods(b->methods, b->nmethods);
    free(b);
}

static bool is_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The tree slot for method, adding a new one for an unknown token. */
static int method_slot(mk_route_builder_t *b, const char *method, uint32_t *slot, mk_err_t *err)
{
    size_t len = method ? strlen(method) : 0;
    if (len == 0)
        return mk_err_set(err, MK_EINVAL, "method must not be empty");
    for (size_t i = 0; i < len; i++) {
        if (!is_token_char((unsigned char)method[i]))
            return mk_err_set(err, MK_EINVAL, "method \"%.64s\": invalid character at offset %zu",
                              method, i);
    }
    mk_str_t m = {method, len};
    for (size_t i = 0; i < b->nmethods; i++) {
        if (mk_str_caseeq(m, mk_str_of(b->methods[i]))) {
            *slot = (uint32_t)i;
            return 0;
        }
    }
    char *name = mk_str_dup(m);
    char **grown = realloc(b->methods, (b->nmethods + 1) * sizeof *grown);
    if (name == NULL || grown == NULL) {
        free(name);
        if (grown)
            b->methods = grown;
        return mk_err_set(err, MK_ENOMEM, "out of memory adding method \"%.64s\"", method);
    }
    for (size_t i = 0; i < len; i++) {
        if (name[i] >= 'a' && name[i] <= 'z')
            name[i] = (char)(name[i] - 'a' + 'A');
    }
    b->methods = grown;
    b->methods[b->nmethods] = name;
    *slot = (uint32_t)b->nmethods++;
    return 0;
}

int mk_route_builder_add(mk_route_builder_t *b, const char *method, const char *route, void *value,
                         int64_t priority, int64_t created_at, mk_err_t *err)
{
    mk_str_t names[MK_ROUTE_MAX_PARAMS];
    struct entry e = {.value = value, .priority = priority, .created_at = created_at};
    int rc;
    if (b == NULL)
        return mk_err_set(err, MK_EINVAL, "route builder is NULL");
    if (b->n >= UINT32_MAX)
        return mk_err_set(err, MK_ETOOBIG, "route builder is full");
    rc = parse_route(route, names, &e.nparams, err);
    if (rc < 0)
        return rc;
    rc = method_slot(b, method, &e.method, err);
    if (rc < 0)
        return rc;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct entry *grown = realloc(b->entries, cap * sizeof *grown);
        if (grown == NULL)
            return mk_err_set(err, MK_ENOMEM, "out of memory adding route \"%.200s\"", route);
        b->entries = grown;
        b->cap = cap;
    }
    size_t rlen = strlen(route);
    char *block = malloc(e.nparams * sizeof *e.names + rlen + 1);
    if (block == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory adding route \"%.200s\"", route);
    e.names = e.nparams ? (mk_str_t *)block : NULL;
    e.route = block + e.nparams * sizeof *e.names;
    memcpy(e.route, route, rlen + 1);
    e.route[normalized_len(e.route, rlen)] = '\0';
    for (uint32_t i = 0; i < e.nparams; i++)
        e.names[i] = (mk_str_t){e.route + (names[i].base - route), names[i].len};
    e.seq = (uint32_t)b->n;
    b->entries[b->n++] = e;
    return 0;
}

/* ---- build ---- */

/* Match order: priority desc, created_at desc, insertion order desc. <0 when a comes first. */
static int entry_order(const struct entry *a, const struct entry *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority ? -1 : 1;
    if (a->created_at != b->created_at)
        return a->created_at > b->created_at ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq > b->seq ? -1 : 1;
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return entry_order(a, b);
}

/* The first 8 bytes of a segment as an integer; only its consistency matters, not its order. */
static uint64_t seg_key(const char *seg, size_t len)
{
    uint64_t k = 0;
    memcpy(&k, seg, len < sizeof k ? len : sizeof k);
    return k;
}

/* Orders an edge against a segment by (len, key, bytes after the key). */
static int edge_cmp(const struct edge *e, const char *seg, size_t len, uint64_t key)
{
    if (e->len != len)
        return e->len < len ? -1 : 1;
    if (e->key != key)
        return e->key < key ? -1 : 1;
    return len > sizeof key ? memcmp(e->seg + sizeof key, seg + sizeof key, len - sizeof key) : 0;
}

static uint64_t seg_hash(const char *seg, size_t len, uint64_t key)
{
    const uint64_t mul = 0x9E3779B97F4A7C15ull;
    uint64_t h = (key ^ len) * mul;
    for (size_t i = sizeof key; i < len; i += sizeof key) {
        uint64_t w = 0;
        memcpy(&w, seg + i, len - i < sizeof w ? len - i : sizeof w);
        h = (h ^ w ^ (h >> 29)) * mul;
    }
    return h ^ (h >> 32);
}

/* Index of the edge equal to seg, or -(insertion point) - 1 (without a hash only: a hashed node
 * is finished and nothing is inserted any more). */
static long edge_find(const struct node *n, const char *seg, size_t len)
{
    uint64_t key = seg_key(seg, len);
    const uint32_t *hash = node_hash(n);
    if (hash) {
        for (uint32_t i = (uint32_t)seg_hash(seg, len, key) & n->hmask;; i = (i + 1) & n->hmask) {
            uint32_t at = hash[i];
            if (at == 0)
                return -1;
            if (edge_cmp(&n->lits[at - 1], seg, len, key) == 0)
                return (long)at - 1;
        }
    }
    size_t lo = 0, hi = n->nlits;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = edge_cmp(&n->lits[mid], seg, len, key);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* While a tree is built, literal children are found through one hash for the whole build, and
 * a node's edges are appended unsorted (node_finish sorts them): inserting each edge in order
 * moved half the array every time, quadratic in a wide node's width (a namespace of 3,000
 * /x/<n> routes spent most of each write in memmove). */
struct build_slot {
    const struct node *parent; /* NULL: empty */
    struct node *child;
    const char *seg;
    uint64_t key;
    uint32_t len;
};

struct build_map {
    struct build_slot *slots;
    size_t mask, used;
};

static size_t build_slot_of(const struct build_map *m, const struct node *parent, const char *seg,
                            size_t len, uint64_t key)
{
    uint64_t h = seg_hash(seg, len, key) ^ ((uint64_t)(uintptr_t)parent * 0x9E3779B97F4A7C15ull);
    size_t i = (size_t)(h ^ (h >> 32)) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        const struct build_slot *sl = &m->slots[i];
        if (sl->parent == NULL)
            return i;
        if (sl->parent == parent && sl->len == len && sl->key == key &&
            (len <= sizeof key ||
             memcmp(sl->seg + sizeof key, seg + sizeof key, len - sizeof key) == 0))
            return i;
    }
}

static int build_map_grow(struct build_map *m)
{
    size_t cap = m->slots ? (m->mask + 1) * 2 : 1024;
    struct build_map bigger = {calloc(cap, sizeof *bigger.slots), cap - 1, m->used};
    if (bigger.slots == NULL)
        return MK_ENOMEM;
    for (size_t i = 0; m->slots && i <= m->mask; i++) {
        const struct build_slot *sl = &m->slots[i];
        if (sl->parent != NULL)
            bigger.slots[build_slot_of(&bigger, sl->parent, sl->seg, sl->len, sl->key)] = *sl;
    }
    free(m->slots);
    *m = bigger;
    return 0;
}

static struct node *literal_child(struct build_map *m, struct node *n, const char *seg, size_t len)
{
    uint64_t key = seg_key(seg, len);
    if ((m->used + 1) * 2 > (m->slots ? m->mask + 1 : 0) && build_map_grow(m) != 0)
        return NULL;
    size_t at = build_slot_of(m, n, seg, len, key);
    if (m->slots[at].parent != NULL)
        return m->slots[at].child;
    /* Capacity doubles from 2: full when nlits is 0 or a power of two from 2 on. */
    if (n->nlits == 0 || (n->nlits >= 2 && (n->nlits & (n->nlits - 1)) == 0)) {
        uint32_t cap = n->nlits ? n->nlits * 2 : 2;
        struct edge *grown = realloc(n->lits, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        n->lits = grown;
    }
    struct node *child = calloc(1, sizeof *child);
    if (child == NULL)
        return NULL;
    n->lits[n->nlits++] = (struct edge){(uint32_t)len, key, seg, child};
    m->slots[at] = (struct build_slot){n, child, seg, key, (uint32_t)len};
    m->used++;
    return child;
}

static int leaf_append(struct leaf **lp, const struct entry *e)
{
    struct leaf *l = *lp;
    if (l == NULL || l->n == l->cap) {
        uint32_t cap = l ? l->cap * 2 : 1;
        struct leaf *grown = realloc(l, sizeof *grown + cap * sizeof grown->e[0]);
        if (grown == NULL)
            return MK_ENOMEM;
        if (l == NULL)
            grown->n = 0;
        grown->cap = cap;
        *lp = l = grown;
    }
    l->e[l->n++] = e;
    return 0;
}

/* Entries arrive in match order, so appending keeps every leaf sorted. */
static int tree_insert(struct build_map *m, struct node *root, const struct entry *e)
{
    const char *r = e->route;
    size_t len = strlen(r);
    struct node *n = root;
    size_t off = 1;
    while (off <= len && len > 1) {
        size_t end = segment_end(r, off, len);
        const char *seg = r + off;
        size_t slen = end - off;
        if (is_wild(seg, slen))
            return leaf_append(&n->wild, e);
        if (slen > 0 && seg[0] == ':') {
            if (n->param == NULL)
                n->param = calloc(1, sizeof *n->param);
            n = n->param;
        } else {
            n = literal_child(m, n, seg, slen);
        }
        if (n == NULL)
            return MK_ENOMEM;
        off = end + 1;
    }
    return leaf_append(&n->leaf, e);
}

/* From this many literal children on, a node gets a hash: one probe instead of log2(n). */
#define HASH_MIN_CHILDREN 8

/* Once every route is in: trims growth slack and indexes wide nodes. Recursion depth is the
 * tree's depth, bounded by the longest route. */
static int edge_order(const void *a, const void *b)
{
    const struct edge *y = b;
    return edge_cmp(a, y->seg, y->len, y->key);
}

static int node_finish(struct node *n)
{
    uint32_t size = 0;
    /* Edges came in unsorted; lookups binary-search narrow nodes. */
    if (n->nlits > 1)
        qsort(n->lits, n->nlits, sizeof *n->lits, edge_order);
    if (n->nlits >= HASH_MIN_CHILDREN) {
        size = 16;
        while (size < 2 * n->nlits)
            size *= 2;
    }
    if (n->nlits) {
        /* Exactly nlits edges, then the hash in the same block. */
        struct edge *sized = realloc(n->lits, n->nlits * sizeof *sized + size * sizeof(uint32_t));
        if (sized == NULL) {
            if (size)
                return MK_ENOMEM;
        } else {
            n->lits = sized;
        }
    }
    if (size) {
        uint32_t *hash = (uint32_t *)(n->lits + n->nlits);
        memset(hash, 0, size * sizeof *hash);
        n->hmask = size - 1;
        for (uint32_t k = 0; k < n->nlits; k++) {
            const struct edge *e = &n->lits[k];
            uint32_t i = (uint32_t)seg_hash(e->seg, e->len, e->key) & n->hmask;
            while (hash[i] != 0)
                i = (i + 1) & n->hmask;
            hash[i] = k + 1;
        }
    }
    for (uint32_t i = 0; i < n->nlits; i++) {
        if (node_finish(n->lits[i].child) < 0)
            return MK_ENOMEM;
    }
    return n->param ? node_finish(n->param) : 0;
}

static void node_free(struct node *n)
{
    if (n == NULL)
        return;
    for (uint32_t i = 0; i < n->nlits; i++)
        node_free(n->lits[i].child);
    free(n->lits);
    node_free(n->param);
    free(n->leaf);
    free(n->wild);
    free(n);
}

void mk_route_index_free(mk_route_index_t *idx)
{
    if (idx == NULL)
        return;
    for (size_t i = 0; i < idx->ntrees; i++) {
        node_free(idx->trees[i].root);
        free(idx->trees[i].method);
    }
    free(idx->trees);
    free_entries(idx->entries, idx->n);
    free(idx);
}

mk_route_index_t *mk_route_builder_build(mk_route_builder_t *b)
{
    if (b == NULL)
        return NULL;
    mk_route_index_t *idx = calloc(1, sizeof *idx);
    if (idx == NULL)
        goto fail;
    idx->trees = calloc(b->nmethods, sizeof *idx->trees);
    if (idx->trees == NULL)
        goto fail;
    /* The index takes the builder's strings over; the builder keeps nothing it would free. */
    idx->ntrees = b->nmethods;
    for (size_t i = 0; i < b->nmethods; i++) {
        idx->trees[i].method = b->methods[i];
        idx->trees[i].mlen = strlen(b->methods[i]);
    }
    free(b->methods);
    b->methods = NULL;
    b->nmethods = 0;
    idx->entries = b->entries;
    idx->n = b->n;
    b->entries = NULL;
    b->n = b->cap = 0;
    mk_route_builder_free(b);
    b = NULL;

    if (idx->n > 1)
        qsort(idx->entries, idx->n, sizeof *idx->entries, entry_cmp);
    if (idx->n) {
        struct entry *shrunk = realloc(idx->entries, idx->n * sizeof *shrunk);
        if (shrunk)
            idx->entries = shrunk;
    }
    struct build_map map = {0};
    for (size_t i = 0; i < idx->n; i++) {
        struct tree *t = &idx->trees[idx->entries[i].method];
        if (t->root == NULL)
            t->root = calloc(1, sizeof *t->root);
        if (t->root == NULL || tree_insert(&map, t->root, &idx->entries[i]) < 0) {
            free(map.slots);
            goto fail;
        }
    }
    free(map.slots);
    for (size_t i = 0; i < idx->ntrees; i++) {
        if (idx->trees[i].root && node_finish(idx->trees[i].root) < 0)
            goto fail;
    }
    return idx;
fail:
    mk_route_builder_free(b);
    mk_route_index_free(idx);
    return NULL;
}

size_t mk_route_index_count(const mk_route_index_t *idx)
{
    return idx ? idx->n : 0;
}

/* ---- lookup ---- */

static const struct node *tree_root(const mk_route_index_t *idx, mk_str_t method, size_t *slot)
{
    for (size_t i = 1; i < idx->ntrees; i++) {
        const struct tree *t = &idx->trees[i];
        if (t->mlen == method.len && mk_str_caseeq(method, (mk_str_t){t->method, t->mlen})) {
            if (slot)
                *slot = i;
            return idx->trees[i].root;
        }
    }
    return NULL;
}

/* The path with one trailing '/' dropped, or false when it cannot match any route. An empty
 * path is the root. */
static bool normalize_path(mk_str_t *path)
{
    if (path->len == 0) {
        *path = (mk_str_t){"/", 1};
        return true;
    }
    if (path->base[0] != '/')
        return false;
    path->len = normalized_len(path->base, path->len);
    return true;
}

struct walk {
    mk_route_iter_t *it;
    const char *p;
    size_t len;
    size_t nvalues;
    mk_str_t values[MK_ROUTE_MAX_PARAMS];
};

/* A cursor's current entry, or NULL when it is exhausted. */
static const struct entry *cursor_head(const mk_route_iter_t *it, size_t i)
{
    const struct leaf *l = it->cursors_[i].leaf;
    return it->cursors_[i].pos < l->n ? l->e[it->cursors_[i].pos] : NULL;
}

/* Past MK_ROUTE_MAX_CURSORS matched leaves, a new leaf replaces the cursor with the worst head
 * when its own head is better, so the best match overall is never lost. */
static void add_cursor(struct walk *w, const struct leaf *l, mk_str_t wildcard)
{
    mk_route_iter_t *it = w->it;
    size_t slot = it->ncursors_;
    if (slot == MK_ROUTE_MAX_CURSORS) {
        size_t worst = 0;
        for (size_t i = 1; i < MK_ROUTE_MAX_CURSORS; i++) {
            if (entry_order(cursor_head(it, i), cursor_head(it, worst)) > 0)
                worst = i;
        }
        if (entry_order(l->e[0], cursor_head(it, worst)) > 0)
            return;
        slot = worst;
    } else {
        it->ncursors_++;
    }
    it->cursors_[slot].leaf = l;
    it->cursors_[slot].pos = 0;
    it->cursors_[slot].nvalues = w->nvalues;
    memcpy(it->cursors_[slot].values, w->values, w->nvalues * sizeof w->values[0]);
    it->cursors_[slot].wildcard = wildcard;
}

/* off is where the next segment starts, or SIZE_MAX when the path is used up. Recursion depth is
 * bounded by the tree's depth, not by the path. */
static void walk(struct walk *w, const struct node *n, size_t off)
{
    size_t end, next;
    mk_str_t seg;
    if (off == SIZE_MAX) {
        if (n->leaf)
            add_cursor(w, n->leaf, (mk_str_t){w->p + w->len, 0});
        if (n->wild)
            add_cursor(w, n->wild, (mk_str_t){w->p + w->len, 0});
        return;
    }
    end = segment_end(w->p, off, w->len);
    seg = (mk_str_t){w->p + off, end - off};
    next = end < w->len ? end + 1 : SIZE_MAX;
    if (n->nlits) {
        long at = edge_find(n, seg.base, seg.len);
        if (at >= 0)
            walk(w, n->lits[at].child, next);
    }
    if (n->param && seg.len > 0 && w->nvalues < MK_ROUTE_MAX_PARAMS) {
        w->values[w->nvalues++] = seg;
        walk(w, n->param, next);
        w->nvalues--;
    }
    if (n->wild)
        add_cursor(w, n->wild, (mk_str_t){w->p + off, w->len - off});
}

void mk_route_lookup(const mk_route_index_t *idx, mk_str_t method, mk_str_t path,
                     mk_route_iter_t *it)
{
    struct walk w;
    it->idx_ = idx;
    it->path_ = path;
    it->ncursors_ = 0;
    if (idx == NULL || idx->ntrees == 0 || !normalize_path(&path))
        return;
    w.it = it;
    w.p = path.base;
    w.len = path.len;
    w.nvalues = 0;
    size_t first = path.len > 1 ? 1 : SIZE_MAX;
    const struct node *root = tree_root(idx, method, NULL);
    if (root)
        walk(&w, root, first);
    if (idx->trees[ANY_TREE].root)
        walk(&w, idx->trees[ANY_TREE].root, first);
}

bool mk_route_next(mk_route_iter_t *it, mk_route_match_t *m)
{
    const struct entry *best = NULL;
    size_t bi = 0;
    for (size_t i = 0; i < it->ncursors_; i++) {
        const struct entry *e = cursor_head(it, i);
        if (e && (best == NULL || entry_order(e, best) < 0)) {
            best = e;
            bi = i;
        }
    }
    if (best == NULL)
        return false;
    it->cursors_[bi].pos++;
    m->value = best->value;
    m->nparams = best->nparams;
    for (uint32_t i = 0; i < best->nparams; i++) {
        m->names[i] = best->names[i];
        m->values[i] = i < it->cursors_[bi].nvalues ? it->cursors_[bi].values[i] : (mk_str_t){0};
    }
    m->wildcard = it->cursors_[bi].wildcard;
    return true;
}

/* ---- nearest ---- */

/* The node that path's leading literal segments reach, and how many segments that took. */
static const struct node *literal_reach(const struct node *n, mk_str_t path, size_t *depth)
{
    size_t off = path.len > 1 ? 1 : SIZE_MAX;
    *depth = 0;
    while (off != SIZE_MAX) {
        size_t end = segment_end(path.base, off, path.len);
        long at = n->nlits ? edge_find(n, path.base + off, end - off) : -1;
        if (at < 0)
            break;
        n = n->lits[at].child;
        (*depth)++;
        off = end < path.len ? end + 1 : SIZE_MAX;
    }
    return n;
}

struct collect {
    void **out;
    size_t n;
    size_t max;
};

static void collect_leaf(struct collect *c, const struct leaf *l)
{
    for (uint32_t i = 0; l && i < l->n && c->n < c->max; i++)
        c->out[c->n++] = l->e[i]->value;
}

/* Collects entries of nodes exactly level steps below n; returns how many such nodes exist, so
 * the caller knows when the subtree is exhausted. Levels go shallow first: closest routes first. */
static size_t collect_level(struct collect *c, const struct node *n, size_t level)
{
    if (c->n >= c->max)
        return 0;
    if (level == 0) {
        collect_leaf(c, n->leaf);
        collect_leaf(c, n->wild);
        return 1;
    }
    size_t found = 0;
    for (uint32_t i = 0; i < n->nlits; i++)
        found += collect_level(c, n->lits[i].child, level - 1);
    if (n->param)
        found += collect_level(c, n->param, level - 1);
    return found;
}

static void collect_subtree(struct collect *c, const struct node *n)
{
    for (size_t level = 0; c->n < c->max; level++) {
        if (collect_level(c, n, level) == 0)
            break;
    }
}

size_t mk_route_nearest(const mk_route_index_t *idx, mk_str_t method, mk_str_t path, void **out,
                        size_t max)
{
    size_t slot = SIZE_MAX, deepest = 0, depth;
    struct collect c = {out, 0, max};
    if (idx == NULL || out == NULL || max == 0 || !normalize_path(&path))
        return 0;
    tree_root(idx, method, &slot);
    /* The deepest node over all trees decides; a tree that does not reach as deep adds nothing.
     * Walking twice is cheaper to read than remembering each tree's node, and this is no hot path.
     */
    for (size_t i = 0; i < idx->ntrees; i++) {
        if (idx->trees[i].root == NULL)
            continue;
        literal_reach(idx->trees[i].root, path, &depth);
        if (depth > deepest)
            deepest = depth;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < idx->ntrees; i++) {
            bool own = i == ANY_TREE || i == slot;
            if (idx->trees[i].root == NULL || own != (pass == 0))
                continue;
            const struct node *n = literal_reach(idx->trees[i].root, path, &depth);
            if (depth == deepest)
                collect_subtree(&c, n);
        }
    }
    return c.n;
}
