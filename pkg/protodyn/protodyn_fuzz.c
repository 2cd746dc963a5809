/* libFuzzer harness for protodyn: input = 4-byte little-endian length, a FileDescriptorSet of
 * that length, then message bytes. Loads the set (fuzzing the descriptor reader), decodes the
 * bytes as each message type (up to 32), and for every success encodes the JSON back and decodes
 * that again, which must succeed. Failures must carry a message. */
#include "protodyn/protodyn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void roundtrip(const mk_protodyn_msg_t *m, const uint8_t *msg, size_t len)
{
    json_t *j = NULL;
    mk_err_t err = {0};
    if (mk_protodyn_decode(m, msg, len, &j, &err) < 0) {
        CHECK(j == NULL && err.msg[0] != '\0');
        return;
    }
    mk_buf_t out;
    mk_buf_init(&out, 1 << 24);
    err.msg[0] = '\0';
    int rc = mk_protodyn_encode(m, j, &out, &err);
    if (rc < 0) {
        CHECK(err.msg[0] != '\0' || rc == MK_ETOOBIG);
    } else {
        json_t *again = NULL;
        rc = mk_protodyn_decode(m, (const uint8_t *)(out.data ? out.data : ""), out.len, &again,
                                &err);
        if (rc < 0)
            fprintf(stderr, "re-decode of our own encoding failed: %s\n", err.msg);
        CHECK(rc == 0);
        json_decref(again);
    }
    mk_buf_free(&out);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t dlen =
        (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
    if (dlen > size - 4)
        dlen = size - 4;
    const uint8_t *desc = data + 4, *msg = desc + dlen;
    size_t mlen = size - 4 - dlen;
    mk_protodyn_pool_t *pool = NULL;
    mk_err_t err = {0};
    if (mk_protodyn_pool_new(desc, dlen, &pool, &err) < 0) {
        CHECK(pool == NULL && err.msg[0] != '\0');
        return 0;
    }
    size_t n = mk_protodyn_method_count(pool);
    for (size_t i = 0; i < n && i < 16; i++) {
        const mk_protodyn_method_t *m = mk_protodyn_method_at(pool, i);
        CHECK(m->input != NULL && m->output != NULL && m->path[0] == '/');
        roundtrip(m->input, msg, mlen);
        roundtrip(m->output, msg, mlen);
    }
    mk_protodyn_pool_free(pool);
    return 0;
}
