/* Test support: callbacks for mk_repo_load_mocks / mk_repo_get_mock and mk_repo_list_namespaces
 * that keep a copy of every row they are handed, so tests of the repository backends (sqlite_test,
 * pg_test) can inspect them after the call. Uses only the mk_repo_mock_t type: nothing to link. */
#ifndef MK_TESTING_REPO_ROWS_H
#define MK_TESTING_REPO_ROWS_H

#include "repo/repo.h"

#include <stddef.h>
#include <stdint.h>

#define MK_TESTING_ROWS_MAX 1024

/* One copied row; the strings are owned (NULL where the row had NULL). */
typedef struct mk_testing_row {
    char *id, *ns, *chain, *json;
    int64_t created_at, updated_at, closed_at, uses, last_use, seq;
} mk_testing_row_t;

/* About 100 KiB: allocate it (calloc) rather than putting it on the stack. */
typedef struct mk_testing_rows {
    mk_testing_row_t rows[MK_TESTING_ROWS_MAX];
    size_t n;
    size_t stop_after; /* 0: never stop; else return 7 once this many rows are held */
} mk_testing_rows_t;

/* The callback; ud is a mk_testing_rows_t. Returns -100 when full, 7 when stop_after is reached,
 * else 0. */
int mk_testing_rows_collect(void *ud, const mk_repo_mock_t *m);
/* Frees the copied strings and zeroes everything (stop_after too). */
void mk_testing_rows_reset(mk_testing_rows_t *c);
/* The row with this id (borrowed from c), or NULL. */
const mk_testing_row_t *mk_testing_rows_find(const mk_testing_rows_t *c, const char *id);

/* Namespaces from mk_repo_list_namespaces, copied (truncated to 31 bytes). Zero it to start. */
typedef struct mk_testing_names {
    char name[8][32];
    int64_t created[8];
    int n;
} mk_testing_names_t;

/* The callback; ud is a mk_testing_names_t. Returns -100 when all 8 slots are taken, else 0. */
int mk_testing_names_collect(void *ud, const char *name, int64_t created_at);

#endif
