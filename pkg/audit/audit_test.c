/* Audit rows: recorded, filtered newest first, limited, pruned by age (SQLite repository). */
#include "audit/audit.h"
#include "sqlite/sqlite.h"
#include "testing/testing.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char db_path[64];

static void test_record_query_prune(void)
{
    mk_repo_t *r = NULL;
    mk_err_t err;
    MK_CHECK_INT(mk_sqlite_repo_open(db_path, &r, &err), 0);
    mk_audit_t *a = mk_audit_new(r, 1);
    int64_t day = 24LL * 3600 * 1000, now = 1800000000000LL;
    json_t *sum = json_pack("{s:s}", "id", "m1");
    for (int i = 0; i < 10; i++) {
        mk_audit_entry_t e = {.at_ms = now - (i < 4 ? 2 * day : 0) + i,
                              .actor = i % 2 ? "ann" : "bob",
                              .action = i == 9 ? "login.failed" : "POST /api/v1/mocks",
                              .namespace_ = i % 3 ? "team-a" : "team-b",
                              .kind = "mocks",
                              .status = 201,
                              .summary = sum};
        MK_CHECK_INT(mk_audit_record(a, &e, &err), 0);
    }
    json_decref(sum);
    json_t *rows;
    MK_CHECK_INT(mk_audit_query(a, &(mk_audit_filter_t){0}, &rows, &err), 0);
    MK_CHECK_INT(json_array_size(rows), 10);
    /* Newest first. */
    MK_CHECK_STR(json_string_value(json_object_get(json_array_get(rows, 0), "action")),
                 "login.failed");
    MK_CHECK_STR(json_string_value(
                     json_object_get(json_object_get(json_array_get(rows, 1), "summary"), "id")),
                 "m1");
    json_decref(rows);
    MK_CHECK_INT(mk_audit_query(a, &(mk_audit_filter_t){.actor = "ann", .namespace_ = "team-a"},
                                &rows, &err),
                 0);
    /* i odd and i % 3 != 0: 1, 5, 7 */
    MK_CHECK_INT(json_array_size(rows), 3);
    json_decref(rows);
    MK_CHECK_INT(
        mk_audit_query(a, &(mk_audit_filter_t){.action = "login", .limit = 5}, &rows, &err), 0);
    MK_CHECK_INT(json_array_size(rows), 1);
    json_decref(rows);
    MK_CHECK_INT(
        mk_audit_query(a, &(mk_audit_filter_t){.since_ms = now - day, .limit = 2}, &rows, &err), 0);
    MK_CHECK_INT(json_array_size(rows), 2);
    json_decref(rows);
    /* Rows 0..3 are two days old: a one-day retention removes them. */
    MK_CHECK_INT(mk_audit_prune(a, now + 10, &err), 4);
    MK_CHECK_INT(mk_audit_prune(a, now + 10, &err), 0);
    MK_CHECK_INT(mk_audit_query(a, &(mk_audit_filter_t){0}, &rows, &err), 0);
    MK_CHECK_INT(json_array_size(rows), 6);
    json_decref(rows);
    mk_audit_free(a);
    mk_repo_free(r);
}

int main(void)
{
    snprintf(db_path, sizeof db_path, "/tmp/audit-test-%d.db", (int)getpid());
    MK_RUN(test_record_query_prune);
    unlink(db_path);
    return mk_testing_done();
}
