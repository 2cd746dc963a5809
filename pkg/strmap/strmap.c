/* Open-addressing string map with backward-shift deletion (no tombstones). */
#include "strmap/strmap.h"
#include "err/err.h"

#include <stdlib.h>
#include <string.h>

typedef struct slot {
    char *key; /* NULL = empty */
    size_t len;
    uint64_t hash;
    void *value;
} slot_t;

struct mk_strmap {
    slot_t *slots;
    size_t cap; /* power of two */
    size_t size;
};

static uint64_t hash_of(mk_str_t k)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < k.len; i++) {
        h ^= (unsigned char)k.base[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

mk_strmap_t *mk_strmap_new(void)
{
    mk_strmap_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->cap = 16;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void mk_strmap_free(mk_strmap_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    free(m);
}

static size_t find(const mk_strmap_t *m, mk_str_t key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const slot_t *s = &m->slots[i];
        if (s->key == NULL)
            return i;
        if (s->hash == h && s->len == key.len && memcmp(s->key, key.base, key.len) == 0)
            return i;
    }
}

static int grow(mk_strmap_t *m)
{
    size_t cap = m->cap * 2;
    slot_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return MK_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == NULL)
            continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int mk_strmap_set(mk_strmap_t *m, mk_str_t key, void *value)
{
    if ((m->size + 1) * 10 > m->cap * 7 && grow(m) != 0)
        return MK_ENOMEM;
    uint64_t h = hash_of(key);
    slot_t *s = &m->slots[find(m, key, h)];
    if (s->key) {
        s->value = value;
        return 0;
    }
    s->key = malloc(key.len + 1);
    if (s->key == NULL)
        return MK_ENOMEM;
    if (key.len)
        memcpy(s->key, key.base, key.len);
    s->key[key.len] = '\0';
    s->len = key.len;
    s->hash = h;
    s->value = value;
    m->size++;
    return 0;
}

void *mk_strmap_get(const mk_strmap_t *m, mk_str_t key)
{
    const slot_t *s = &m->slots[find(m, key, hash_of(key))];
    return s->key ? s->value : NULL;
}

void *mk_strmap_del(mk_strmap_t *m, mk_str_t key)
{
    size_t mask = m->cap - 1;
    size_t i = find(m, key, hash_of(key));
    if (m->slots[i].key == NULL)
        return NULL;
    void *value = m->slots[i].value;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->size--;
    /* Shift later members of the probe run back so lookups never stop early. */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->slots[i] = m->slots[j];
            m->slots[j].key = NULL;
            i = j;
        }
    }
    return value;
}

size_t mk_strmap_size(const mk_strmap_t *m)
{
    return m->size;
}

bool mk_strmap_next(const mk_strmap_t *m, size_t *pos, mk_str_t *key, void **value)
{
    while (*pos < m->cap) {
        const slot_t *s = &m->slots[(*pos)++];
        if (s->key) {
            *key = (mk_str_t){s->key, s->len};
            *value = s->value;
            return true;
        }
    }
    return false;
}
