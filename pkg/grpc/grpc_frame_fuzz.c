/* libFuzzer harness for the gRPC message decoder and the header value parsers (grpc-timeout,
 * grpc-message, -bin base64): input cut into chunks at sizes taken from the input itself, so
 * message boundaries fall anywhere. Invariants: no message above the limit is delivered, a
 * failure sets a status and a message, and nothing leaks or overreads (ASan). */
#include "grpc/grpc_frame.h"

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

typedef struct seen {
    size_t max, total;
} seen_t;

static int on_msg(void *ud, const uint8_t *msg, size_t len)
{
    seen_t *s = ud;
    CHECK(len <= s->max);
    CHECK(msg != NULL);
    volatile uint8_t sink = len ? msg[len - 1] : 0; /* touch the last byte: ASan checks bounds */
    (void)sink;
    s->total += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* data[0]: chunk size - 1; data[1]: high bit gzip, low 7 bits the limit / 256. */
    size_t chunk = (size_t)data[0] + 1;
    seen_t s = {.max = ((size_t)(data[1] & 0x7f) << 8) + 16};
    bool gzip = data[1] & 0x80;
    data += 2;
    size -= 2;

    mk_grpc_decoder_t d;
    mk_grpc_decoder_init(&d, s.max);
    d.gzip = gzip;
    mk_err_t err = {0};
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        int rc = mk_grpc_decoder_feed(&d, data + off, n, on_msg, &s, &err);
        if (rc < 0) {
            CHECK(d.status != 0);
            CHECK(err.msg[0] != '\0');
            CHECK(mk_grpc_decoder_feed(&d, data, size, on_msg, &s, &err) < 0);
            break;
        }
    }
    CHECK(s.total <= size);
    mk_grpc_decoder_free(&d);

    int64_t ms;
    if (mk_grpc_timeout_parse((mk_str_t){(const char *)data, size < 16 ? size : 16}, &ms) == 0)
        CHECK(ms >= 0);
    mk_buf_t b;
    mk_buf_init(&b, 0);
    CHECK(mk_grpc_message_decode(&b, (const char *)data, size) == 0);
    CHECK(b.len <= size);
    mk_buf_reset(&b);
    if (mk_grpc_base64_decode(&b, (const char *)data, size) == 0)
        CHECK(b.len <= size * 3 / 4 + 1);
    mk_buf_reset(&b);
    CHECK(mk_grpc_message_encode(&b, (const char *)data, size) == 0);
    mk_buf_free(&b);
    return 0;
}

/* For the replay (grpc_fuzz_replay.c): many tiny messages; one message of the largest limit the
 * harness can set, fed byte by byte; 4 GiB - 1 announced. */
void mk_fuzz_big_cases(void);
void mk_fuzz_big_cases(void)
{
    /* 200,000 empty messages in 255-byte chunks; limit 16 + 0x7f00. */
    size_t n = 2 + 5 * 200000;
    uint8_t *b = calloc(n, 1);
    b[0] = 254;
    b[1] = 0x7f;
    LLVMFuzzerTestOneInput(b, n);
    /* One message just under the largest limit the harness can set, fed byte by byte. */
    size_t len = 0x7f00 + 16;
    free(b);
    n = 2 + 5 + len;
    b = calloc(n, 1);
    b[0] = 0;
    b[1] = 0x7f;
    b[4] = (uint8_t)(len >> 16);
    b[5] = (uint8_t)(len >> 8);
    b[6] = (uint8_t)len;
    LLVMFuzzerTestOneInput(b, n);
    /* Announced 4 GiB - 1 with a tiny limit. */
    uint8_t huge[] = {3, 0, 0, 0xff, 0xff, 0xff, 0xff, 'x'};
    LLVMFuzzerTestOneInput(huge, sizeof huge);
    free(b);
}
