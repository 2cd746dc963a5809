/* The follower against a real SQLite database written by a second repository handle, as an admin
 * and a resolver would share it: initial load, readiness, changes, purges (tombstones) applied by
 * the poll. The PostgreSQL feed path is exercised end to end by e2e/cluster. */
#include "follow/follow.h"
#include "sqlite/sqlite.h"
#include "testing/testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[256];

static void put(mk_repo_t *w, const char *id, const char *route)
{
    char json[256];
    snprintf(json, sizeof json,
             "{\"id\":\"%s\",\"namespace\":\"sandbox\",\"http\":{\"route\":\"%s\"},"
             "\"response\":{\"payload\":{\"id\":\"%s\"}},\"createdAt\":1,\"updatedAt\":1}",
             id, route, id);
    mk_repo_mock_t row = {
        .id = id, .namespace_ = "sandbox", .json = json, .created_at = 1, .updated_at = 1};
    mk_err_t err;
    MK_CHECK_INT(mk_repo_put_mocks(w, &row, 1, &err), 0);
}

/* Waits up to 3 s for the catalog to hold (want) or lack (!want) the mock id. */
static bool wait_for(mk_catalog_t *c, const char *id, bool want)
{
    for (int i = 0; i < 300; i++) {
        mk_mock_t *m = mk_catalog_get(c, id);
        bool has = m != NULL;
        mk_mock_unref(m);
        if (has == want)
            return true;
        usleep(10 * 1000);
    }
    return false;
}

static void test_follow_sqlite(void)
{
    mk_repo_t *writer = NULL, *reader = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_sqlite_repo_open(path, &writer, &err), 0);
    put(writer, "a", "/a");
    put(writer, "b", "/b");
    MK_CHECK_INT(mk_sqlite_repo_open(path, &reader, &err), 0);
    mk_catalog_t *catalog = mk_catalog_new(1);
    mk_follow_t *f = NULL;
    mk_follow_opts_t opts = {.poll_ms = 50};
    MK_CHECK_INT(mk_follow_start(reader, catalog, &opts, &f, &err), 0);
    MK_CHECK(wait_for(catalog, "a", true) && wait_for(catalog, "b", true));
    /* Readiness (and the applied seq) follow the snapshot's publication by a moment. */
    for (int i = 0; i < 300 && !mk_follow_ready(f); i++)
        usleep(10 * 1000);
    MK_CHECK(mk_follow_ready(f));
    MK_CHECK(mk_follow_db_up(f));
    int64_t seq = mk_follow_seq(f);
    MK_CHECK(seq >= 2);

    put(writer, "c", "/c");
    MK_CHECK(wait_for(catalog, "c", true));
    const char *ids[] = {"a"};
    MK_CHECK_INT(mk_repo_delete_mocks(writer, ids, 1, &err), 0);
    MK_CHECK(wait_for(catalog, "a", false));
    MK_CHECK(wait_for(catalog, "b", true));
    MK_CHECK(mk_follow_seq(f) > seq);
    /* A mock re-created after its purge comes back. */
    put(writer, "a", "/a2");
    MK_CHECK(wait_for(catalog, "a", true));

    mk_follow_stop(f);
    mk_repo_free(reader);
    mk_follow_free(f);
    mk_catalog_free(catalog);
    mk_repo_free(writer);
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/mk-follow-test-%d.db", (int)getpid());
    MK_RUN(test_follow_sqlite);
    char extra[300];
    unlink(path);
    snprintf(extra, sizeof extra, "%s-wal", path);
    unlink(extra);
    snprintf(extra, sizeof extra, "%s-shm", path);
    unlink(extra);
    return mk_testing_done();
}
