/* Table naming and template callbacks for the gS/cS/mS stores. */
#include "stores/stores.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t mk_stores_table(mk_template_store_t which, mk_str_t scope, char *buf, size_t size)
{
    int n;
    switch (which) {
    case MK_TEMPLATE_GLOBAL:
        n = snprintf(buf, size, "global");
        break;
    case MK_TEMPLATE_CHAIN:
        n = snprintf(buf, size, "chain:%.*s", (int)scope.len, scope.base);
        break;
    default:
        n = snprintf(buf, size, "mock:%.*s", (int)scope.len, scope.base);
        break;
    }
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

size_t mk_stores_ctx_table(const mk_stores_ctx_t *ctx, mk_template_store_t which, char *buf,
                           size_t size)
{
    /* A mock without chainId uses the chain store of the empty chainId, as Mockarty does. */
    mk_str_t scope = which == MK_TEMPLATE_CHAIN ? ctx->chain_id : ctx->mock_id;
    return mk_stores_table(which, scope, buf, size);
}

int mk_stores_seed(const mk_stores_ctx_t *ctx, mk_str_t key, mk_buf_t *out)
{
    if (ctx->mock_seed == NULL)
        return MK_ENOTFOUND;
    char name[256];
    if (key.len >= sizeof name)
        return MK_ENOTFOUND;
    memcpy(name, key.base, key.len);
    name[key.len] = '\0';
    json_t *v = json_object_get(ctx->mock_seed, name);
    if (v == NULL)
        return MK_ENOTFOUND;
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (text == NULL)
        return MK_ENOMEM;
    int rc = mk_buf_append_str(out, text);
    free(text);
    return rc;
}

static void memo_put(mk_stores_ctx_t *ctx, mk_template_store_t which, mk_str_t key, mk_str_t value)
{
    if (key.len > sizeof ctx->memo[0].key || value.len > sizeof ctx->memo[0].value)
        return;
    size_t i = 0;
    while (i < ctx->nmemo && !(ctx->memo[i].which == which &&
                               mk_str_eq((mk_str_t){ctx->memo[i].key, ctx->memo[i].key_len}, key)))
        i++;
    if (i == sizeof ctx->memo / sizeof ctx->memo[0])
        return;
    if (i == ctx->nmemo)
        ctx->nmemo++;
    ctx->memo[i].which = which;
    memcpy(ctx->memo[i].key, key.base, key.len);
    ctx->memo[i].key_len = key.len;
    memcpy(ctx->memo[i].value, value.base, value.len);
    ctx->memo[i].value_len = value.len;
}

static bool memo_get(const mk_stores_ctx_t *ctx, mk_template_store_t which, mk_str_t key,
                     mk_buf_t *out)
{
    for (size_t i = 0; i < ctx->nmemo; i++)
        if (ctx->memo[i].which == which &&
            mk_str_eq((mk_str_t){ctx->memo[i].key, ctx->memo[i].key_len}, key))
            return mk_buf_append(out, ctx->memo[i].value, ctx->memo[i].value_len) == 0;
    return false;
}

int mk_stores_get(void *ud, mk_template_store_t which, mk_str_t key, mk_buf_t *out, mk_err_t *err)
{
    mk_stores_ctx_t *ctx = ud;
    if (memo_get(ctx, which, key, out))
        return 0;
    char table[300];
    if (mk_stores_ctx_table(ctx, which, table, sizeof table) == 0)
        return MK_ENOTFOUND;
    int rc = mk_store_get(ctx->store, ctx->ns, mk_str_of(table), key, out, err);
    if (rc == MK_ENOTFOUND && which == MK_TEMPLATE_MOCK)
        return mk_stores_seed(ctx, key, out);
    return rc;
}

int mk_stores_incr(void *ud, mk_template_store_t which, mk_str_t key, int64_t by, int64_t *result,
                   mk_err_t *err)
{
    mk_stores_ctx_t *ctx = ud;
    char table[300];
    if (mk_stores_ctx_table(ctx, which, table, sizeof table) == 0)
        return mk_err_set(err, MK_EINVAL, "cS: the mock has no chainId");
    if (which == MK_TEMPLATE_MOCK && ctx->mock_seed != NULL) {
        /* A counter seeded by mStore starts from its seed, not from 0. */
        mk_buf_t cur;
        mk_buf_init(&cur, 64);
        int rc = mk_store_get(ctx->store, ctx->ns, mk_str_of(table), key, &cur, err);
        if (rc == MK_ENOTFOUND && mk_stores_seed(ctx, key, &cur) == 0)
            rc = mk_store_set(ctx->store, ctx->ns, mk_str_of(table), key,
                              (mk_str_t){cur.data, cur.len}, 0, err);
        mk_buf_free(&cur);
        if (rc != 0 && rc != MK_ENOTFOUND)
            return rc;
    }
    int64_t sum = 0;
    int rc = mk_store_incr(ctx->store, ctx->ns, mk_str_of(table), key, by, &sum, err);
    if (rc == 0) {
        char text[32];
        int n = snprintf(text, sizeof text, "%lld", (long long)sum);
        memo_put(ctx, which, key, (mk_str_t){text, (size_t)n});
        if (result)
            *result = sum;
    }
    return rc;
}

int mk_stores_set(mk_stores_ctx_t *ctx, mk_template_store_t which, mk_str_t key, mk_str_t value,
                  mk_err_t *err)
{
    char table[300];
    if (mk_stores_ctx_table(ctx, which, table, sizeof table) == 0)
        return mk_err_set(err, MK_EINVAL, "cStore: the mock has no chainId");
    int rc = mk_store_set(ctx->store, ctx->ns, mk_str_of(table), key, value, 0, err);
    if (rc == 0)
        memo_put(ctx, which, key, value);
    return rc;
}

static int dump_one(void *ud, mk_str_t key, mk_str_t value)
{
    json_t *v = json_loadb(value.base, value.len, JSON_DECODE_ANY, NULL);
    if (v == NULL) /* written by something else than us: keep it as text */
        v = json_stringn(value.base, value.len);
    char *k = mk_str_dup(key);
    if (k == NULL || v == NULL) {
        free(k);
        json_decref(v);
        return MK_ENOMEM;
    }
    json_object_set_new(ud, k, v);
    free(k);
    return 0;
}

int mk_stores_dump(mk_store_t *store, mk_str_t ns, mk_template_store_t which, mk_str_t scope,
                   json_t **out, mk_err_t *err)
{
    char table[300];
    if (mk_stores_table(which, scope, table, sizeof table) == 0)
        return mk_err_set(err, MK_EINVAL, "store scope too long");
    json_t *obj = json_object();
    if (obj == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    int rc = mk_store_each(store, ns, mk_str_of(table), dump_one, obj, err);
    if (rc != 0) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}
