/* The shared checks of the repository's documents (see repo_docs.h). */
#include "testing/repo_docs.h"

#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BIG_DOC_BYTES (1024 * 1024)
#define BATCH_DOCS    300

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Copies of the documents one list_docs call handed out. */
typedef struct doc_list {
    mk_repo_doc_t *docs; /* strings owned */
    size_t n, cap;
    size_t stop_after; /* 0: never; else the callback returns 7 once this many are held */
} doc_list_t;

static int collect(void *ud, const mk_repo_doc_t *d)
{
    doc_list_t *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap > 0 ? l->cap * 2 : 16;
        mk_repo_doc_t *grown = realloc(l->docs, cap * sizeof *grown);
        if (grown == NULL)
            return -100;
        l->docs = grown;
        l->cap = cap;
    }
    l->docs[l->n++] = (mk_repo_doc_t){
        .kind = strdup(d->kind),
        .id = strdup(d->id),
        .namespace_ = strdup(d->namespace_),
        .json = strdup(d->json),
        .updated_at = d->updated_at,
    };
    if (l->stop_after != 0 && l->n >= l->stop_after)
        return 7;
    return 0;
}

static void list_reset(doc_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free((char *)l->docs[i].kind);
        free((char *)l->docs[i].id);
        free((char *)l->docs[i].namespace_);
        free((char *)l->docs[i].json);
    }
    free(l->docs);
    *l = (doc_list_t){0};
}

/* Lists kind/prefix into l (emptied first); returns list_docs' result. */
static int list(mk_repo_t *r, const char *kind, const char *prefix, doc_list_t *l)
{
    list_reset(l);
    mk_err_t err = {0};
    int rc = mk_repo_list_docs(r, kind, prefix, collect, l, &err);
    if (rc != 0 && rc != 7)
        fprintf(stderr, "list_docs(%s, %s): %s [%s]\n", kind, prefix ? prefix : "NULL", err.msg,
                err.cause);
    return rc;
}

/* The listed ids joined with ',' (at most len - 1 bytes), for one comparison per listing. */
static const char *ids_of(const doc_list_t *l, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->n && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i > 0 ? "," : "", l->docs[i].id);
    return buf;
}

static int put(mk_repo_t *r, const mk_repo_doc_t *docs, size_t n)
{
    mk_err_t err = {0};
    int rc = mk_repo_put_docs(r, docs, n, &err);
    if (rc != 0)
        fprintf(stderr, "put_docs: %s [%s]\n", err.msg, err.cause);
    return rc;
}

long mk_testing_repo_docs_count(mk_repo_t *r, const char *kind, const char *prefix)
{
    doc_list_t l = {0};
    int rc = list(r, kind, prefix, &l);
    long n = rc == 0 ? (long)l.n : -1;
    list_reset(&l);
    return n;
}

static void check_put_replace_list_delete(mk_repo_t *r)
{
    mk_repo_doc_t docs[] = {
        {.kind = "template", .id = "ns/b", .namespace_ = "ns", .json = "B", .updated_at = 2},
        {.kind = "template",
         .id = "ns/a",
         .namespace_ = "ns",
         .json = "{\"a\":1}",
         .updated_at = 1},
        {.kind = "template", .id = "ns2/x", .namespace_ = "ns2", .json = "X", .updated_at = 3},
        {.kind = "tag",
         .id = "ns/a",
         .namespace_ = "ns",
         .json = "{\"tag\":true}",
         .updated_at = 4},
        {.kind = "folder", .id = "f1", .namespace_ = NULL, .json = "{}", .updated_at = 5},
    };
    MK_CHECK_INT(put(r, docs, 5), 0);
    doc_list_t l = {0};
    char ids[512];
    MK_CHECK_INT(list(r, "template", NULL, &l), 0);
    MK_CHECK_STR(ids_of(&l, ids, sizeof ids), "ns/a,ns/b,ns2/x");
    if (l.n == 3) {
        MK_CHECK_STR(l.docs[0].kind, "template");
        MK_CHECK_STR(l.docs[0].namespace_, "ns");
        MK_CHECK_STR(l.docs[0].json, "{\"a\":1}");
        MK_CHECK_INT(l.docs[0].updated_at, 1);
        MK_CHECK_STR(l.docs[2].namespace_, "ns2");
        MK_CHECK_INT(l.docs[2].updated_at, 3);
    }
    MK_CHECK_INT(list(r, "template", "", &l), 0);
    MK_CHECK_INT(l.n, 3);
    MK_CHECK_INT(list(r, "template", "ns/", &l), 0);
    MK_CHECK_STR(ids_of(&l, ids, sizeof ids), "ns/a,ns/b");
    MK_CHECK_INT(list(r, "template", "ns/a", &l), 0);
    MK_CHECK_STR(ids_of(&l, ids, sizeof ids), "ns/a");
    MK_CHECK_INT(list(r, "template", "nope", &l), 0);
    MK_CHECK_INT(l.n, 0);
    MK_CHECK_INT(list(r, "no_such_kind", NULL, &l), 0);
    MK_CHECK_INT(l.n, 0);
    /* A NULL namespace is stored as "" (no namespace). */
    MK_CHECK_INT(list(r, "folder", NULL, &l), 0);
    MK_CHECK_INT(l.n, 1);
    if (l.n == 1)
        MK_CHECK_STR(l.docs[0].namespace_, "");

    /* Replace: same key, every field new; the other kind's document with the same id stays. */
    mk_repo_doc_t again = {
        .kind = "template", .id = "ns/a", .namespace_ = "other", .json = "v2", .updated_at = 9};
    MK_CHECK_INT(put(r, &again, 1), 0);
    MK_CHECK_INT(list(r, "template", "ns/a", &l), 0);
    MK_CHECK_INT(l.n, 1);
    if (l.n == 1) {
        MK_CHECK_STR(l.docs[0].json, "v2");
        MK_CHECK_STR(l.docs[0].namespace_, "other");
        MK_CHECK_INT(l.docs[0].updated_at, 9);
    }
    MK_CHECK_INT(mk_testing_repo_docs_count(r, "template", NULL), 3);
    MK_CHECK_INT(list(r, "tag", NULL, &l), 0);
    MK_CHECK_INT(l.n, 1);
    if (l.n == 1)
        MK_CHECK_STR(l.docs[0].json, "{\"tag\":true}");

    /* Delete: missing ids and kinds are not errors; kinds are isolated. */
    mk_err_t err = {0};
    const char *gone[] = {"ns/a", "missing", "ns/a"};
    MK_CHECK_INT(mk_repo_delete_docs(r, "template", gone, 3, &err), 0);
    MK_CHECK_INT(list(r, "template", NULL, &l), 0);
    MK_CHECK_STR(ids_of(&l, ids, sizeof ids), "ns/b,ns2/x");
    MK_CHECK_INT(mk_testing_repo_docs_count(r, "tag", "ns/a"), 1);
    MK_CHECK_INT(mk_repo_delete_docs(r, "template", gone, 3, &err), 0);
    MK_CHECK_INT(mk_repo_delete_docs(r, "no_such_kind", gone, 1, &err), 0);
    MK_CHECK_INT(mk_repo_delete_docs(r, "template", NULL, 0, &err), 0);
    MK_CHECK_INT(mk_repo_put_docs(r, NULL, 0, &err), 0);
    MK_CHECK_INT(mk_testing_repo_docs_count(r, "template", NULL), 2);

    /* A callback's non-zero return stops the listing and is returned. */
    list_reset(&l);
    l.stop_after = 1;
    MK_CHECK_INT(mk_repo_list_docs(r, "template", NULL, collect, &l, &err), 7);
    MK_CHECK_INT(l.n, 1);
    list_reset(&l);
}

static void check_invalid_arguments(mk_repo_t *r)
{
    mk_err_t err = {0};
    mk_repo_doc_t no_kind = {.kind = "", .id = "x", .json = "{}"};
    MK_CHECK_INT(mk_repo_put_docs(r, &no_kind, 1, &err), MK_EINVAL);
    mk_repo_doc_t no_id = {.kind = "template", .id = NULL, .json = "{}"};
    MK_CHECK_INT(mk_repo_put_docs(r, &no_id, 1, &err), MK_EINVAL);
    mk_repo_doc_t no_json = {.kind = "template", .id = "x", .json = NULL};
    MK_CHECK_INT(mk_repo_put_docs(r, &no_json, 1, &err), MK_EINVAL);
    MK_CHECK_INT(mk_repo_put_docs(r, NULL, 1, &err), MK_EINVAL);
    const char *ids[] = {NULL};
    MK_CHECK_INT(mk_repo_delete_docs(r, "template", ids, 1, &err), MK_EINVAL);
    MK_CHECK_INT(mk_repo_delete_docs(r, NULL, ids, 0, &err), MK_EINVAL);
    MK_CHECK_INT(mk_repo_list_docs(r, "template", NULL, NULL, NULL, &err), MK_EINVAL);
    MK_CHECK_INT(mk_repo_list_docs(r, "", NULL, collect, NULL, &err), MK_EINVAL);
    MK_CHECK_INT(mk_testing_repo_docs_count(r, "template", "x"), 0);
}

/* '%', '_' and '\' are LIKE's wildcards and escape: a prefix holding them matches literally.
 * Order is bytewise, like the SQLite backend's BINARY collation, whatever the server's locale. */
static void check_prefix_is_literal_and_order_bytewise(mk_repo_t *r)
{
    static const char *const ids[] = {"a%b/1",      "a_b/1",      "axb/1",  "aXb/2", "a%c",
                                      "ab",         "a\\b/1",     "a\\\\b", "B",     "b",
                                      "\xc3\xa9/1", "\xc3\xaa/1", "a"};
    enum { N = sizeof ids / sizeof ids[0] };
    mk_repo_doc_t docs[N];
    for (size_t i = 0; i < N; i++)
        docs[i] = (mk_repo_doc_t){.kind = "folder2", .id = ids[i], .namespace_ = "", .json = "{}"};
    MK_CHECK_INT(put(r, docs, N), 0);
    doc_list_t l = {0};
    char buf[512];
    MK_CHECK_INT(list(r, "folder2", "a%b", &l), 0);
    MK_CHECK_STR(ids_of(&l, buf, sizeof buf), "a%b/1");
    MK_CHECK_INT(list(r, "folder2", "a%", &l), 0);
    MK_CHECK_STR(ids_of(&l, buf, sizeof buf), "a%b/1,a%c");
    MK_CHECK_INT(list(r, "folder2", "a_b", &l), 0);
    MK_CHECK_STR(ids_of(&l, buf, sizeof buf), "a_b/1");
    MK_CHECK_INT(list(r, "folder2", "a\\", &l), 0);
    MK_CHECK_STR(ids_of(&l, buf, sizeof buf), "a\\\\b,a\\b/1");
    MK_CHECK_INT(list(r, "folder2", "a\\b", &l), 0);
    MK_CHECK_STR(ids_of(&l, buf, sizeof buf), "a\\b/1");
    MK_CHECK_INT(list(r, "folder2", "\xc3\xa9", &l), 0);
    MK_CHECK_STR(ids_of(&l, buf, sizeof buf), "\xc3\xa9/1");
    MK_CHECK_INT(list(r, "folder2", NULL, &l), 0);
    MK_CHECK_STR(ids_of(&l, buf, sizeof buf),
                 "B,a,a%b/1,a%c,aXb/2,a\\\\b,a\\b/1,a_b/1,ab,axb/1,b,\xc3\xa9/1,\xc3\xaa/1");

    /* Prefixes whose last code point is the highest (U+10FFFF) or changes UTF-8 length when one
     * higher (U+007F): a bound computed from the prefix must still be exact. */
    static const char *const edge[] = {"x\xf4\x8f\xbf\xbf",
                                       "x\xf4\x8f\xbf\xbf/1",
                                       "x/1",
                                       "y",
                                       "\xf4\x8f\xbf\xbf",
                                       "\xf4\x8f\xbf\xbf"
                                       "a",
                                       "a\x7f"
                                       "1",
                                       "a\xc2\x80"};
    enum { NE = sizeof edge / sizeof edge[0] };
    mk_repo_doc_t edocs[NE];
    for (size_t i = 0; i < NE; i++)
        edocs[i] = (mk_repo_doc_t){.kind = "edge", .id = edge[i], .namespace_ = "", .json = "{}"};
    MK_CHECK_INT(put(r, edocs, NE), 0);
    MK_CHECK_INT(list(r, "edge", "x\xf4\x8f\xbf\xbf", &l), 0);
    MK_CHECK_STR(ids_of(&l, buf, sizeof buf), "x\xf4\x8f\xbf\xbf,x\xf4\x8f\xbf\xbf/1");
    MK_CHECK_INT(list(r, "edge", "\xf4\x8f\xbf\xbf", &l), 0);
    MK_CHECK_STR(ids_of(&l, buf, sizeof buf), "\xf4\x8f\xbf\xbf,\xf4\x8f\xbf\xbf"
                                              "a");
    MK_CHECK_INT(list(r, "edge", "a\x7f", &l), 0);
    MK_CHECK_STR(ids_of(&l, buf, sizeof buf), "a\x7f"
                                              "1");
    MK_CHECK_INT(list(r, "edge", "x", &l), 0);
    MK_CHECK_INT(l.n, 3);
    list_reset(&l);
}

/* A 1 MiB document and one that is not UTF-8 come back byte for byte. */
static void check_big_and_binary_documents(mk_repo_t *r)
{
    char *big = malloc(BIG_DOC_BYTES + 1);
    if (big == NULL) {
        MK_CHECK(big != NULL);
        return;
    }
    /* Quotes, backslashes, newlines, "\x41"-like escapes: nothing may be decoded on the way. */
    static const char pattern[] = "{\"k\":\"\\x41\\\\n\"}\n\t'%_\xc3\xa9";
    for (size_t i = 0; i < BIG_DOC_BYTES; i++)
        big[i] = pattern[i % (sizeof pattern - 1)];
    big[BIG_DOC_BYTES] = '\0';
    static const char binary[] = "\xff\xfe\x80 not utf-8 \xc3(";
    mk_repo_doc_t docs[] = {
        {.kind = "big", .id = "t/big", .namespace_ = "t", .json = big, .updated_at = 1},
        {.kind = "big", .id = "t/binary", .namespace_ = "t", .json = binary, .updated_at = 2},
    };
    double t0 = now_ms();
    MK_CHECK_INT(put(r, docs, 2), 0);
    double t1 = now_ms();
    doc_list_t l = {0};
    MK_CHECK_INT(list(r, "big", "t/", &l), 0);
    fprintf(stderr, "     %s: 1 MiB document put in %.1f ms, listed in %.1f ms\n",
            mk_repo_backend(r), t1 - t0, now_ms() - t1);
    MK_CHECK_INT(l.n, 2);
    if (l.n == 2) {
        MK_CHECK_INT(strlen(l.docs[0].json), BIG_DOC_BYTES);
        MK_CHECK(strcmp(l.docs[0].json, big) == 0);
        MK_CHECK(strcmp(l.docs[1].json, binary) == 0);
    }
    list_reset(&l);
    free(big);
}

/* A batch is one transaction: when its last document fails in the database, none of the batch
 * is stored and the document it would have replaced is unchanged. The failure is provoked by
 * calling the backend directly with a NULL json, which the dispatcher would have refused. */
static void check_batch_all_or_nothing(mk_repo_t *r)
{
    mk_repo_doc_t old = {.kind = "batch", .id = "v/0000", .namespace_ = "v", .json = "old"};
    MK_CHECK_INT(put(r, &old, 1), 0);
    mk_repo_doc_t *docs = calloc(BATCH_DOCS, sizeof *docs);
    char(*ids)[16] = calloc(BATCH_DOCS, sizeof *ids);
    if (docs == NULL || ids == NULL)
        goto out;
    for (int i = 0; i < BATCH_DOCS; i++) {
        snprintf(ids[i], sizeof ids[i], "v/%04d", i);
        docs[i] = (mk_repo_doc_t){
            .kind = "batch", .id = ids[i], .namespace_ = "v", .json = "new", .updated_at = i};
    }
    docs[BATCH_DOCS - 1].json = NULL;
    mk_err_t err = {0};
    int rc = r->ops->put_docs(r, docs, BATCH_DOCS, &err);
    MK_CHECK(rc < 0);
    MK_CHECK(err.msg[0] != '\0');
    doc_list_t l = {0};
    MK_CHECK_INT(list(r, "batch", NULL, &l), 0);
    MK_CHECK_INT(l.n, 1);
    if (l.n == 1)
        MK_CHECK_STR(l.docs[0].json, "old");

    docs[BATCH_DOCS - 1].json = "new";
    double t0 = now_ms();
    MK_CHECK_INT(put(r, docs, BATCH_DOCS), 0);
    fprintf(stderr, "     %s: %d documents put in one transaction in %.1f ms\n", mk_repo_backend(r),
            BATCH_DOCS, now_ms() - t0);
    MK_CHECK_INT(list(r, "batch", "v/", &l), 0);
    MK_CHECK_INT(l.n, BATCH_DOCS);
    if (l.n == BATCH_DOCS) {
        MK_CHECK_STR(l.docs[0].json, "new");
        MK_CHECK_STR(l.docs[BATCH_DOCS - 1].id, ids[BATCH_DOCS - 1]);
        MK_CHECK_INT(l.docs[BATCH_DOCS - 1].updated_at, BATCH_DOCS - 1);
    }
    /* Mock versions are listed per mock by the "<mockId>/" prefix. */
    MK_CHECK_INT(mk_testing_repo_docs_count(r, "batch", "v/01"), 100);
    list_reset(&l);
out:
    free(ids);
    free(docs);
}

void mk_testing_repo_docs_check(mk_repo_t *r)
{
    check_put_replace_list_delete(r);
    check_invalid_arguments(r);
    check_prefix_is_literal_and_order_bytewise(r);
    check_big_and_binary_documents(r);
    check_batch_all_or_nothing(r);
}
