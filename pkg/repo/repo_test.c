/* Tests for the dispatch of repo.h over a fake backend: what it checks and answers itself so that
 * backends need not (empty batches, NULL ids, seqs of a failed put, ping's status), and the
 * helpers the SQL backends share. */
#include "repo/repo.h"
#include "testing/testing.h"

#include <stdio.h>
#include <string.h>

typedef struct fake {
    mk_repo_t base;
    int calls;
    size_t last_n;
    int fail_at; /* put_mocks fails at this row (-1: never) */
} fake_t;

static int fake_put(mk_repo_t *r, mk_repo_mock_t *rows, size_t n, mk_err_t *err)
{
    fake_t *f = (fake_t *)r;
    f->calls++;
    for (size_t i = 0; i < n; i++) {
        if ((int)i == f->fail_at)
            return mk_err_set(err, MK_EINVAL, "fake: row %zu refused", i);
        rows[i].seq = 100 + (int64_t)i;
    }
    return 0;
}

/* The other writes only count that they were reached, and with how many items. */
static int reached(mk_repo_t *r, const void *items, size_t n)
{
    fake_t *f = (fake_t *)r;
    f->calls++;
    f->last_n = items ? n : 0;
    return 0;
}

static int fake_ids(mk_repo_t *r, const char *const *ids, size_t n, mk_err_t *err)
{
    return err ? reached(r, ids, n) : MK_EINVAL;
}

static int fake_usage(mk_repo_t *r, const mk_repo_usage_t *rows, size_t n, mk_err_t *err)
{
    return err ? reached(r, rows, n) : MK_EINVAL;
}

static int fake_docs(mk_repo_t *r, const mk_repo_doc_t *docs, size_t n, mk_err_t *err)
{
    return err ? reached(r, docs, n) : MK_EINVAL;
}

static int fake_doc_ids(mk_repo_t *r, const char *kind, const char *const *ids, size_t n,
                        mk_err_t *err)
{
    return kind ? fake_ids(r, ids, n, err) : MK_EINVAL;
}

static int fake_ping(mk_repo_t *r, mk_err_t *err)
{
    ((fake_t *)r)->calls++;
    return mk_err_set(err, MK_EINTERNAL, "fake: no answer");
}

static const mk_repo_ops_t fake_ops = {
    .name = "fake",
    .put_mocks = fake_put,
    .delete_mocks = fake_ids,
    .update_usage = fake_usage,
    .ping = fake_ping,
    .put_docs = fake_docs,
    .delete_docs = fake_doc_ids,
};

static void test_put_seqs(void)
{
    fake_t f = {.base = {.ops = &fake_ops}, .fail_at = -1};
    mk_err_t err = {0};
    mk_repo_mock_t rows[3] = {{.id = "a", .seq = 7}, {.id = "b", .seq = 8}, {.id = "c", .seq = 9}};
    MK_CHECK_INT(mk_repo_put_mocks(&f.base, rows, 3, &err), 0);
    MK_CHECK(rows[0].seq == 100 && rows[1].seq == 101 && rows[2].seq == 102);

    /* The backend wrote row 0's seq before row 1 failed: the caller sees the old ones. */
    f.fail_at = 1;
    rows[0].seq = 7;
    rows[1].seq = 8;
    rows[2].seq = 9;
    MK_CHECK_INT(mk_repo_put_mocks(&f.base, rows, 3, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "fake: row 1 refused");
    MK_CHECK(rows[0].seq == 7 && rows[1].seq == 8 && rows[2].seq == 9);
    MK_CHECK_INT(f.calls, 2);
}

static void test_checked_before_the_backend(void)
{
    fake_t f = {.base = {.ops = &fake_ops}, .fail_at = -1};
    mk_err_t err = {0};
    /* Empty batches are answered here. */
    MK_CHECK_INT(mk_repo_put_mocks(&f.base, NULL, 0, &err), 0);
    MK_CHECK_INT(mk_repo_delete_mocks(&f.base, NULL, 0, &err), 0);
    MK_CHECK_INT(mk_repo_update_usage(&f.base, NULL, 0, &err), 0);
    MK_CHECK_INT(mk_repo_put_docs(&f.base, NULL, 0, &err), 0);
    MK_CHECK_INT(mk_repo_delete_docs(&f.base, "k", NULL, 0, &err), 0);
    MK_CHECK_INT(f.calls, 0);

    /* A NULL id anywhere in the batch. */
    const char *ids[] = {"a", NULL};
    MK_CHECK_INT(mk_repo_delete_mocks(&f.base, ids, 2, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "repo delete_mocks: id 1 is NULL");
    mk_repo_usage_t usage[] = {{.id = "a"}, {.id = NULL}};
    MK_CHECK_INT(mk_repo_update_usage(&f.base, usage, 2, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "repo update_usage: id 1 is NULL");
    MK_CHECK_INT(f.calls, 0);
    MK_CHECK_INT(mk_repo_delete_mocks(&f.base, ids, 1, &err), 0);
    MK_CHECK_INT(mk_repo_update_usage(&f.base, usage, 1, &err), 0);
    MK_CHECK_INT(f.calls, 2);
    MK_CHECK_INT(f.last_n, 1);

    /* Whatever the backend's failure, ping reports the database unavailable, with its message. */
    MK_CHECK_INT(mk_repo_ping(&f.base, &err), MK_EUNAVAIL);
    MK_CHECK_INT(err.code, MK_EUNAVAIL);
    MK_CHECK_STR(err.msg, "fake: no answer");
}

static void test_helpers(void)
{
    char buf[160];
    mk_repo_mock_t m = {.id = "a-mock"};
    mk_repo_what_mock(buf, sizeof buf, 2, &m);
    MK_CHECK_STR(buf, "put mock 2 (id \"a-mock\")");
    m.id = NULL;
    mk_repo_what_mock(buf, sizeof buf, 0, &m);
    MK_CHECK_STR(buf, "put mock 0 (id \"(null)\")");
    mk_repo_doc_t d = {.kind = "template", .id = "t1"};
    mk_repo_what_doc(buf, sizeof buf, 1, &d);
    MK_CHECK_STR(buf, "put document 1 (template \"t1\")");

    mk_err_t err = {0};
    MK_CHECK_INT(mk_repo_newer_schema(&err, "sqlite", 9, 3), MK_ECONFLICT);
    MK_CHECK(strncmp(err.msg, "sqlite: database schema version 9 is newer", 42) == 0);
    MK_CHECK(strstr(err.msg, "supports (3)") != NULL);
    MK_CHECK(mk_repo_now_ms() > 1700000000000LL);
}

int main(void)
{
    MK_RUN(test_put_seqs);
    MK_RUN(test_checked_before_the_backend);
    MK_RUN(test_helpers);
    return mk_testing_done();
}
