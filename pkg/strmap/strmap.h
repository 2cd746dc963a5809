/* A hash map from strings to pointers (open addressing, linear probing). Keys are copied; values
 * are borrowed. Not thread-safe for writes; a map nobody writes may be read from many threads. */
#ifndef MK_STRMAP_H
#define MK_STRMAP_H

#include "str/str.h"

typedef struct mk_strmap mk_strmap_t;

mk_strmap_t *mk_strmap_new(void);
void mk_strmap_free(mk_strmap_t *m);
/* Sets key to value (replacing); returns 0 or MK_ENOMEM. */
int mk_strmap_set(mk_strmap_t *m, mk_str_t key, void *value);
void *mk_strmap_get(const mk_strmap_t *m, mk_str_t key);
/* Removes key; returns its value or NULL. */
void *mk_strmap_del(mk_strmap_t *m, mk_str_t key);
size_t mk_strmap_size(const mk_strmap_t *m);

/* Iteration: start with *pos = 0; returns false at the end. Order is unspecified. */
bool mk_strmap_next(const mk_strmap_t *m, size_t *pos, mk_str_t *key, void **value);

#endif
