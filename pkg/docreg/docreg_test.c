/* Tests for the document registry over a real (in-memory SQLite) repository: rebuilds only when
 * the documents change, snapshots held by readers outlive reloads, notify re-reads at once. */
#include "docreg/docreg.h"
#include "sqlite/sqlite.h"
#include "testing/testing.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KIND "docreg_test"

/* A snapshot's data: "id=json;" for every document, in id order. */
static atomic_int adds, frees;

static int add_doc(void **data, const mk_repo_doc_t *d)
{
    if (strcmp(d->json, "unloadable") == 0)
        return 0;
    if (strcmp(d->json, "oom") == 0)
        return MK_ENOMEM;
    atomic_fetch_add(&adds, 1);
    size_t had = *data ? strlen(*data) : 0, more = strlen(d->id) + strlen(d->json) + 2;
    char *s = realloc(*data, had + more + 1);
    if (s == NULL)
        return MK_ENOMEM;
    snprintf(s + had, more + 1, "%s=%s;", d->id, d->json);
    *data = s;
    return 0;
}

static void free_data(void *data)
{
    if (data)
        atomic_fetch_add(&frees, 1);
    free(data);
}

static void put(mk_repo_t *repo, const char *kind, const char *id, const char *json, int64_t at)
{
    mk_repo_doc_t d = {.kind = kind, .id = id, .namespace_ = "", .json = json, .updated_at = at};
    mk_err_t err;
    MK_CHECK_INT(mk_repo_put_docs(repo, &d, 1, &err), 0);
}

static mk_repo_t *open_repo(void)
{
    mk_repo_t *repo = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_sqlite_repo_open(":memory:", &repo, &err), 0);
    return repo;
}

static mk_docreg_t *start(mk_repo_t *repo, int poll_ms, int grace_ms)
{
    mk_docreg_opts_t o = {.repo = repo,
                          .kind = KIND,
                          .poll_ms = poll_ms,
                          .grace_ms = grace_ms,
                          .add = add_doc,
                          .free = free_data};
    mk_docreg_t *r = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_docreg_start(&o, &r, &err), 0);
    return r;
}

/* The current snapshot's data, copied ("" for none). */
static void current(mk_docreg_t *r, char *buf, size_t size)
{
    const mk_docreg_snap_t *s = mk_docreg_acquire(r);
    const char *d = mk_docreg_data(s);
    snprintf(buf, size, "%s", d ? d : "");
    mk_docreg_release(s);
}

/* Reloads r, expecting rc and then the current data want. */
static void reload_expect(mk_docreg_t *r, int rc, const char *want)
{
    mk_err_t err = {0};
    MK_CHECK_INT(mk_docreg_reload(r, &err), rc);
    if (rc)
        MK_CHECK(strstr(err.msg, KIND) != NULL);
    char buf[256];
    current(r, buf, sizeof buf);
    MK_CHECK_STR(buf, want);
}

static void test_reload_only_on_change(void)
{
    mk_repo_t *repo = open_repo();
    mk_docreg_t *r = start(repo, 60000, -1);
    char buf[256];
    current(r, buf, sizeof buf);
    MK_CHECK_STR(buf, "");
    MK_CHECK(mk_docreg_data(mk_docreg_acquire(NULL)) == NULL);

    put(repo, KIND, "a", "1", 100);
    put(repo, KIND, "b", "2", 100);
    put(repo, "other", "c", "3", 100); /* another kind is not this registry's */
    atomic_store(&adds, 0);
    mk_err_t err;
    MK_CHECK_INT(mk_docreg_reload(r, &err), 0);
    MK_CHECK_INT(atomic_load(&adds), 2);
    current(r, buf, sizeof buf);
    MK_CHECK_STR(buf, "a=1;b=2;");
    const mk_docreg_snap_t *before = mk_docreg_acquire(r);
    mk_docreg_release(before);

    /* Unchanged documents: no rebuild, the same snapshot. */
    MK_CHECK_INT(mk_docreg_reload(r, &err), 0);
    MK_CHECK_INT(mk_docreg_reload(r, &err), 0);
    MK_CHECK_INT(atomic_load(&adds), 2);
    const mk_docreg_snap_t *after = mk_docreg_acquire(r);
    MK_CHECK(after == before);
    mk_docreg_release(after);
    put(repo, "other", "c", "4", 200);
    MK_CHECK_INT(mk_docreg_reload(r, &err), 0);
    MK_CHECK_INT(atomic_load(&adds), 2);

    /* An update (a new time), an addition and a removal each rebuild. */
    put(repo, KIND, "b", "22", 200);
    reload_expect(r, 0, "a=1;b=22;");
    MK_CHECK_INT(atomic_load(&adds), 4);
    put(repo, KIND, "c", "3", 200);
    reload_expect(r, 0, "a=1;b=22;c=3;");
    const char *ids[] = {"a"};
    MK_CHECK_INT(mk_repo_delete_docs(repo, KIND, ids, 1, &err), 0);
    reload_expect(r, 0, "b=22;c=3;");

    /* A document add skips is left out; one add fails on keeps the last good snapshot, and the
     * next reload tries again. */
    put(repo, KIND, "d", "unloadable", 300);
    reload_expect(r, 0, "b=22;c=3;");
    put(repo, KIND, "e", "oom", 300);
    reload_expect(r, MK_ENOMEM, "b=22;c=3;");
    put(repo, KIND, "e", "5", 400);
    reload_expect(r, 0, "b=22;c=3;e=5;");

    mk_docreg_free(r);
    mk_docreg_free(NULL);
    mk_repo_free(repo);
}

static void test_reader_keeps_snapshot(void)
{
    mk_repo_t *repo = open_repo();
    put(repo, KIND, "a", "old", 100);
    mk_docreg_t *r = start(repo, 60000, -1);
    mk_err_t err;
    const mk_docreg_snap_t *held = mk_docreg_acquire(r);
    MK_CHECK_STR(mk_docreg_data(held), "a=old;");
    atomic_store(&frees, 0);

    put(repo, KIND, "a", "new", 200);
    MK_CHECK_INT(mk_docreg_reload(r, &err), 0);
    char buf[64];
    current(r, buf, sizeof buf);
    MK_CHECK_STR(buf, "a=new;");
    /* Replaced but held: still readable (ASan would catch a use after free), not freed. */
    MK_CHECK_STR(mk_docreg_data(held), "a=old;");
    MK_CHECK_INT(mk_docreg_reload(r, &err), 0);
    MK_CHECK_INT(atomic_load(&frees), 0);
    MK_CHECK_STR(mk_docreg_data(held), "a=old;");

    /* Released: the next reload reclaims it (no grace period here). */
    mk_docreg_release(held);
    MK_CHECK_INT(mk_docreg_reload(r, &err), 0);
    MK_CHECK_INT(atomic_load(&frees), 1);
    mk_docreg_free(r);
    MK_CHECK_INT(atomic_load(&frees), 2);

    /* With the default grace period a released snapshot waits, and free reclaims it. */
    r = start(repo, 60000, 0);
    atomic_store(&frees, 0);
    held = mk_docreg_acquire(r);
    put(repo, KIND, "a", "newer", 300);
    MK_CHECK_INT(mk_docreg_reload(r, &err), 0);
    mk_docreg_release(held);
    MK_CHECK_INT(mk_docreg_reload(r, &err), 0);
    MK_CHECK_INT(atomic_load(&frees), 0);
    mk_docreg_free(r);
    MK_CHECK_INT(atomic_load(&frees), 2);
    mk_repo_free(repo);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void test_notify_and_poll(void)
{
    mk_repo_t *repo = open_repo();
    put(repo, KIND, "a", "1", 100);
    mk_docreg_t *r = start(repo, 60000, 0);
    char buf[64];

    /* A write of another kind wakes nobody here: the next poll is a minute away. */
    put(repo, KIND, "a", "2", 200);
    mk_docreg_notify("another_kind");
    sleep_ms(300);
    current(r, buf, sizeof buf);
    MK_CHECK_STR(buf, "a=1;");

    /* Notify re-reads before it returns. */
    mk_docreg_notify(KIND);
    current(r, buf, sizeof buf);
    MK_CHECK_STR(buf, "a=2;");
    mk_docreg_free(r);
    mk_docreg_notify(KIND); /* a freed registry is no longer reached */

    /* Without notify, the poller finds the change on its own. */
    r = start(repo, 50, 0);
    put(repo, KIND, "a", "3", 300);
    for (int i = 0; i < 300 && (current(r, buf, sizeof buf), strcmp(buf, "a=3;") != 0); i++)
        sleep_ms(10);
    MK_CHECK_STR(buf, "a=3;");
    mk_docreg_free(r);
    mk_repo_free(repo);
}

/* A repository that cannot be read fails start, leaving nothing behind. */
static void test_start_fails(void)
{
    mk_repo_t *repo = open_repo();
    put(repo, KIND, "a", "oom", 100);
    mk_docreg_opts_t o = {.repo = repo, .kind = KIND, .add = add_doc, .free = free_data};
    mk_docreg_t *r = (mk_docreg_t *)&o;
    mk_err_t err;
    MK_CHECK_INT(mk_docreg_start(&o, &r, &err), MK_ENOMEM);
    MK_CHECK(r == NULL);
    mk_repo_free(repo);
}

/* Summaries: a namespace's documents (or all) without the bulky member, not-JSON ones left out. */
static void test_list(void)
{
    mk_repo_t *repo = open_repo();
    put(repo, KIND, "ns1/a", "{\"name\":\"a\",\"big\":\"xxxx\"}", 100);
    put(repo, KIND, "ns1/b", "not json", 100);
    put(repo, KIND, "ns10/c", "{\"name\":\"c\"}", 100);
    put(repo, "other", "ns1/d", "{\"name\":\"d\"}", 100);
    json_t *out = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_docreg_list(repo, KIND, "ns1", "big", &out, &err), 0);
    char *text = json_dumps(out, JSON_COMPACT);
    MK_CHECK_STR(text, "[{\"name\":\"a\"}]");
    free(text);
    json_decref(out);
    MK_CHECK_INT(mk_docreg_list(repo, KIND, NULL, "big", &out, &err), 0);
    MK_CHECK_INT(json_array_size(out), 2);
    json_decref(out);
    MK_CHECK_INT(mk_docreg_list(repo, "", NULL, "big", &out, &err), MK_EINVAL);
    MK_CHECK(out == NULL);
    mk_repo_free(repo);
}

/* Two writes of a document in the same millisecond (a PUT right after another, or two nodes):
 * the second content must be served, not the snapshot of the first with the same time. */
static void test_rewrite_same_ms(void)
{
    mk_repo_t *repo = open_repo();
    put(repo, KIND, "a", "first", 500);
    mk_docreg_t *r = start(repo, 60000, -1);
    char buf[256];
    current(r, buf, sizeof buf);
    MK_CHECK_STR(buf, "a=first;");
    put(repo, KIND, "a", "second", 500);
    reload_expect(r, 0, "a=second;");
    mk_docreg_free(r);
    mk_repo_free(repo);
}

int main(void)
{
    MK_RUN(test_reload_only_on_change);
    MK_RUN(test_reader_keeps_snapshot);
    MK_RUN(test_notify_and_poll);
    MK_RUN(test_start_fails);
    MK_RUN(test_list);
    MK_RUN(test_rewrite_same_ms);
    return mk_testing_done();
}
