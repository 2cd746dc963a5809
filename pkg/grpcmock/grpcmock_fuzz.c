/* Fuzz harness of the descriptor upload path: an input is the body of POST
 * /api/v1/grpc/descriptors. A set is stored exactly when it loads; what is stored lists with its
 * methods and decodes back to the same bytes; deleting it leaves nothing. Uses an in-memory
 * repository. */
#include "grpc/grpc_frame.h"
#include "grpcmock/grpcmock.h"
#include "protodyn/protodyn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A repository of at most one document. */
typedef struct memrepo {
    mk_repo_t base;
    char *id, *ns, *json;
    int64_t updated_at;
} memrepo_t;

static int mem_put(mk_repo_t *r, const mk_repo_doc_t *docs, size_t n, mk_err_t *err)
{
    (void)err;
    memrepo_t *m = (memrepo_t *)r;
    CHECK(n == 1 && strcmp(docs[0].kind, MK_GRPCMOCK_DOC_KIND) == 0);
    free(m->id);
    free(m->ns);
    free(m->json);
    m->id = strdup(docs[0].id);
    m->ns = strdup(docs[0].namespace_);
    m->json = strdup(docs[0].json);
    m->updated_at = docs[0].updated_at;
    return 0;
}

static int mem_list(mk_repo_t *r, const char *kind, const char *prefix, mk_repo_doc_cb cb, void *ud,
                    mk_err_t *err)
{
    (void)err;
    memrepo_t *m = (memrepo_t *)r;
    if (m->id == NULL || strcmp(kind, MK_GRPCMOCK_DOC_KIND) != 0 ||
        (prefix && strncmp(m->id, prefix, strlen(prefix)) != 0))
        return 0;
    mk_repo_doc_t d = {kind, m->id, m->ns, m->json, m->updated_at};
    return cb(ud, &d);
}

static int mem_delete(mk_repo_t *r, const char *kind, const char *const *ids, size_t n,
                      mk_err_t *err)
{
    (void)kind;
    (void)err;
    memrepo_t *m = (memrepo_t *)r;
    CHECK(n == 1 && m->id && strcmp(ids[0], m->id) == 0);
    free(m->id);
    free(m->ns);
    free(m->json);
    m->id = m->ns = m->json = NULL;
    return 0;
}

static const mk_repo_ops_t mem_ops = {
    .name = "memory", .put_docs = mem_put, .list_docs = mem_list, .delete_docs = mem_delete};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memrepo_t repo = {.base = {.ops = &mem_ops}};
    mk_err_t err = {0};
    json_t *info = NULL;
    mk_protodyn_pool_t *pool = NULL;
    int loads = mk_protodyn_pool_new(data, size, &pool, &err);
    size_t nmethods = pool ? mk_protodyn_method_count(pool) : 0;
    mk_protodyn_pool_free(pool);

    int rc = mk_grpcmock_descriptor_put(&repo.base, "ns", "fz", data, size, &info, &err);
    /* Refused: what protodyn refuses, an empty body, and names jansson cannot hold. */
    CHECK(rc == 0 || loads != 0 || size == 0 || strstr(err.msg, "not UTF-8") != NULL);
    CHECK(rc != 0 || loads == 0);
    if (rc != 0) {
        CHECK(info == NULL && repo.id == NULL && err.msg[0] != '\0');
        return 0;
    }
    CHECK(json_array_size(json_object_get(info, "methods")) == nmethods);
    json_decref(info);

    json_t *list = NULL;
    CHECK(mk_grpcmock_descriptor_list(&repo.base, "ns", &list, &err) == 0);
    CHECK(json_array_size(list) == 1 && json_object_get(json_array_get(list, 0), "data") == NULL);
    json_decref(list);

    /* The stored bytes are the uploaded bytes. */
    json_t *doc = json_loads(repo.json, 0, NULL);
    const char *b64 = json_string_value(json_object_get(doc, "data"));
    mk_buf_t back;
    mk_buf_init(&back, 0);
    CHECK(b64 && mk_grpc_base64_decode(&back, b64, strlen(b64)) == 0);
    CHECK(back.len == size && memcmp(back.data, data, size) == 0);
    mk_buf_free(&back);
    json_decref(doc);

    CHECK(mk_grpcmock_descriptor_delete(&repo.base, "ns", "fz", &err) == 0);
    CHECK(mk_grpcmock_descriptor_delete(&repo.base, "ns", "fz", &err) == MK_ENOTFOUND);
    return 0;
}
