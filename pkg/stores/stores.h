/* Mockarty's three stores on the storage layer (pkg/store): the global store (gS) of a
 * namespace, the chain store (cS) shared by mocks with one chainId, the mock store (mS) of one
 * mock, seeded from its mStore object. This module names their tables and adapts them to the
 * template renderer's store callbacks; the REST API and the serving path both go through it. */
#ifndef MK_STORES_H
#define MK_STORES_H

#include "store/store.h"
#include "template/template.h"

#include <jansson.h>

/* Table name of a store: "global", "chain:<scope>" or "mock:<scope>" into buf (NUL-terminated);
 * returns its length, or 0 when buf is too small. */
size_t mk_stores_table(mk_template_store_t which, mk_str_t scope, char *buf, size_t size);

/* What a render reads and writes: the namespace, the chain and mock of the matched mock, and the
 * mock's mStore seed values (borrowed object, may be NULL). */
typedef struct mk_stores_ctx {
    mk_store_t *store;
    mk_str_t ns;
    mk_str_t chain_id; /* empty when the mock has none */
    mk_str_t mock_id;
    const json_t *mock_seed;
    /* Small values this request wrote or incremented, read back by the same request without
     * another round trip to the storage layer (a counter extracted, then rendered). */
    struct {
        mk_template_store_t which;
        size_t key_len, value_len;
        char key[64];
        char value[64];
    } memo[4];
    size_t nmemo;
} mk_stores_ctx_t;

/* The table of which for ctx into buf (as mk_stores_table); 0 when buf is too small. The cS of
 * a mock without chainId is "chain:" (the empty chainId's, shared by such mocks). */
size_t mk_stores_ctx_table(const mk_stores_ctx_t *ctx, mk_template_store_t which, char *buf,
                           size_t size);
/* Appends the mStore seed value of key (JSON text); MK_ENOTFOUND when the mock seeds none. */
int mk_stores_seed(const mk_stores_ctx_t *ctx, mk_str_t key, mk_buf_t *out);

/* Store callbacks for mk_template_env_t (ud is an mk_stores_ctx_t). A mock-store key never
 * written falls back to the mStore seed. */
int mk_stores_get(void *ud, mk_template_store_t which, mk_str_t key, mk_buf_t *out, mk_err_t *err);
int mk_stores_incr(void *ud, mk_template_store_t which, mk_str_t key, int64_t by, int64_t *result,
                   mk_err_t *err);
/* Writes value (JSON text) to the store; MK_EINVAL for a chain store without chainId. */
int mk_stores_set(mk_stores_ctx_t *ctx, mk_template_store_t which, mk_str_t key, mk_str_t value,
                  mk_err_t *err);

/* The whole store as a flat JSON object {key: value} (a new reference in *out). */
int mk_stores_dump(mk_store_t *store, mk_str_t ns, mk_template_store_t which, mk_str_t scope,
                   json_t **out, mk_err_t *err);

#endif
