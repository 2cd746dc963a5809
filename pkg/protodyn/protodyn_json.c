/* Test helper for protodyn_interop_test.py: converts one message per line with protodyn.
 *   protodyn_json DESCRIPTOR_SET TYPE decode   base64 wire bytes in, compact JSON out
 *   protodyn_json DESCRIPTOR_SET TYPE encode   JSON in, base64 wire bytes out
 * A line that fails prints "ERR <message>". */
#include "grpc/grpc_frame.h"
#include "protodyn/protodyn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    mk_buf_t b;
    mk_buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        mk_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return (uint8_t *)mk_buf_take(&b);
}

static void convert(const mk_protodyn_msg_t *m, bool decode, const char *line, size_t len)
{
    mk_err_t err = {0};
    mk_buf_t a, b;
    mk_buf_init(&a, 0);
    mk_buf_init(&b, 0);
    json_t *j = NULL;
    int rc;
    if (decode) {
        rc = mk_grpc_base64_decode(&a, line, len);
        if (rc == 0)
            rc = mk_protodyn_decode(m, (const uint8_t *)(a.data ? a.data : ""), a.len, &j, &err);
        if (rc == 0) {
            char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
            printf("%s\n", s);
            free(s);
        }
    } else {
        json_error_t je;
        j = json_loadb(line, len, JSON_DECODE_ANY, &je);
        rc = j ? mk_protodyn_encode(m, j, &a, &err) : mk_err_set(&err, MK_EINVAL, "%s", je.text);
        if (rc == 0) {
            mk_grpc_base64_encode(&b, (const uint8_t *)(a.data ? a.data : ""), a.len);
            printf("%s\n", b.data ? b.data : "");
        }
    }
    if (rc < 0)
        printf("ERR %s\n", err.msg);
    fflush(stdout);
    json_decref(j);
    mk_buf_free(&a);
    mk_buf_free(&b);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s DESCRIPTOR_SET TYPE decode|encode\n", argv[0]);
        return 2;
    }
    size_t n;
    uint8_t *d = read_all(argv[1], &n);
    mk_protodyn_pool_t *pool = NULL;
    mk_err_t err = {0};
    if (d == NULL || mk_protodyn_pool_new(d, n, &pool, &err) < 0) {
        fprintf(stderr, "%s: %s\n", argv[1], d ? err.msg : "cannot read");
        free(d);
        return 1;
    }
    free(d);
    const mk_protodyn_msg_t *m = mk_protodyn_find_message(pool, argv[2]);
    if (m == NULL) {
        fprintf(stderr, "no message %s\n", argv[2]);
        mk_protodyn_pool_free(pool);
        return 1;
    }
    bool decode = strcmp(argv[3], "decode") == 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        convert(m, decode, line, (size_t)len);
    }
    free(line);
    mk_protodyn_pool_free(pool);
    return 0;
}
