/* The SQLite repository backend: the embedded default for a single node. The only module that
 * includes sqlite3.h; callers use it through repo/repo.h. */
#ifndef MK_SQLITE_H
#define MK_SQLITE_H

#include "err/err.h"
#include "repo/repo.h"

/* Opens (creating if needed) the database at path (":memory:" for a private in-memory database),
 * sets WAL, synchronous=NORMAL, a busy timeout and foreign keys, and applies pending schema
 * migrations, each in its own transaction. On success *out is a repository the caller frees with
 * mk_repo_free(). Fails with MK_ECONFLICT when the database's schema is newer than this binary
 * knows, MK_EIO when the file is not a database, MK_EUNAVAIL when it cannot be opened (for
 * instance a missing directory); err->cause carries SQLite's extended result code.
 *
 * Notes on the backend's behaviour under the repo.h contract:
 * - put_mocks replaces every column of an existing row, assigns it a new seq (written back into
 *   rows[i].seq once committed) and removes the id's tombstone, if any.
 * - delete_mocks gives each mock that existed a tombstone (table mock_tombstones: id and a new
 *   seq); load_mocks(after_seq > 0) reports it as a row with only id and seq set (namespace_,
 *   chain_id and json NULL). Deleting a missing id consumes no seq.
 * - get_mock returns MK_ENOTFOUND for a missing or purged id.
 * - subscribe is not supported (MK_EINVAL): one process owns the file.
 * - update_usage sets uses and last_use to the given values (not increments) and leaves seq alone;
 *   ids that do not exist are skipped.
 * - Documents (table docs, migration 3) are stored byte for byte, a NULL namespace_ as "".
 *   list_docs matches id_prefix literally ('%' and '_' are not wildcards) and orders ids
 *   bytewise; a batch of put_docs or delete_docs is one transaction.
 * - load_mocks, get_mock, list_namespaces and list_docs hold the connection during the callback:
 *   strings in a row are valid only during the call, and the callback must not call back into the
 *   same repository.
 */
int mk_sqlite_repo_open(const char *path, mk_repo_t **out, mk_err_t *err);

/* The schema version this binary migrates to (the number of migrations it knows). */
int mk_sqlite_repo_schema_version(void);

#endif
