/* Test support: the checks of the documents part of repo/repo.h (put_docs, delete_docs,
 * list_docs) that every repository backend must pass, so sqlite_test, pg_test and composite_test
 * hold each backend to the same behaviour. Failures are recorded through testing/testing.h. */
#ifndef MK_TESTING_REPO_DOCS_H
#define MK_TESTING_REPO_DOCS_H

#include "repo/repo.h"

/* Runs every check on r, which must hold no documents yet. Leaves documents behind (kinds
 * "template", "tag", "folder", "mock_version", "big", "batch"). */
void mk_testing_repo_docs_check(mk_repo_t *r);

/* How many documents of kind whose id starts with prefix r lists; -1 when listing fails. */
long mk_testing_repo_docs_count(mk_repo_t *r, const char *kind, const char *prefix);

#endif
