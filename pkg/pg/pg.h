/* The PostgreSQL repository backend, for several nodes sharing one database: the admin writes and
 * migrates, resolvers read and follow the change feed (LISTEN/NOTIFY). The only module that
 * includes libpq-fe.h; callers use it through repo/repo.h. */
#ifndef MK_PG_H
#define MK_PG_H

#include "err/err.h"
#include "repo/repo.h"

#include <stdbool.h>

/* The NOTIFY channel every write publishes on, payload "<seq> <id>". */
#define MK_PG_CHANNEL "mockarty_changes"

/* Whether calls use protocol-level prepared statements. A pooler in transaction mode (PgBouncer
 * before 1.21) hands each transaction any server connection, where a statement prepared on another
 * does not exist; off sends every call as an unnamed statement (PQexecParams), which works there.
 * AUTO turns them off on a connection whose server process id differs from the one the
 * connection reported at startup, which is how a pooler shows (it makes up its own). */
typedef enum mk_pg_prepared {
    MK_PG_PREPARED_AUTO = 0,
    MK_PG_PREPARED_ON,
    MK_PG_PREPARED_OFF,
} mk_pg_prepared_t;

typedef struct mk_pg_opts {
    int pool_size;          /* connections serving calls; 0 = 4 */
    bool migrate;           /* true (the admin): apply pending migrations, each under an
                             * advisory lock; false (resolvers): only check the schema is current */
    int connect_timeout_ms; /* per connection attempt; 0 = 3000 */
    int schema_wait_ms;     /* with migrate false: how long open waits for the admin to create
                             * or upgrade the schema; 0 = fail at once */
    mk_pg_prepared_t prepared;
    const char *listen_dsn; /* the change feed's LISTEN connection, which needs a session of its
                             * own: direct to PostgreSQL, not through a transaction pooler;
                             * NULL or "": dsn. Borrowed, copied by open. */
    /* Read replicas (streaming standbys of dsn's server), for load_mocks, get_mock,
     * list_namespaces and list_docs: one DSN or several separated by commas (a comma starts a
     * new DSN when what follows is a URI scheme or a key=value pair, so a URI's own host list
     * stays whole). NULL or "": every call on dsn. Borrowed, copied by open. */
    const char *read_dsn;
    /* With read_dsn: a read waits up to this long (polling every 20 ms) for a replica to have
     * replayed every change the feed has announced, then reads the primary; 0 = 5000. */
    int read_wait_ms;
} mk_pg_opts_t;

/* Connects to dsn (a libpq connection string or URI, copied), then migrates or checks the schema
 * as opts says (NULL: all defaults, so migrate false). On success *out is a repository the
 * caller frees with mk_repo_free(). Fails with MK_EINVAL for a malformed dsn, MK_EUNAVAIL when
 * the server cannot be reached or (migrate false) the schema is not current within
 * schema_wait_ms, MK_ECONFLICT when the schema is newer than this binary knows.
 *
 * Behaviour under the repo.h contract (identical to the SQLite backend where both apply):
 * - The change seq is a single-row counter incremented inside each writing transaction, so a
 *   writer holds it until COMMIT: seqs are handed out in commit order and a reader that sees
 *   seq N also sees every change below N. put_mocks writes each row's seq back once committed.
 * - delete_mocks gives each mock that existed a tombstone (id and a new seq) reported by
 *   load_mocks(after_seq > 0) as a row with namespace_, chain_id and json NULL; a full load has
 *   none. Re-putting the id removes its tombstone. Deleting a missing id consumes no seq.
 * - Every put and purge is published with pg_notify(MK_PG_CHANNEL, "<seq> <id>") inside its
 *   transaction, so subscribers hear of it on commit. update_usage neither bumps seq nor
 *   notifies.
 * - No session state is relied on, so dsn may name a PgBouncer in transaction pooling mode (with
 *   prepared OFF or AUTO): each migration is one transaction under a transaction-scoped advisory
 *   lock, and LISTEN runs on listen_dsn.
 * - Calls take a pooled connection (statements prepared once per connection, unless prepared
 *   statements are off). A lost server
 *   makes calls fail with MK_EUNAVAIL ("postgres: cannot connect: ... Connection refused ...");
 *   reconnection is tried by later calls at most every 200 ms, failing fast in between, so the
 *   repository recovers by itself when the server is back. Serialization failures and deadlocks
 *   (SQLSTATE 40001, 40P01) are retried 3 times, then reported as MK_EUNAVAIL. err->cause
 *   carries the SQLSTATE.
 * - subscribe starts a thread with its own connection (to listen_dsn) doing LISTEN; it returns once
 * listening when the server is reachable (else the thread keeps trying). The callback gets (0,
 * NULL) after every (re)connection, then (seq, id) per committed change; reconnection backs off
 *   from 100 ms to 2 s. mk_repo_free stops and joins the thread.
 * - Documents (table docs, migration 2) behave as in the SQLite backend: json is BYTEA, sent
 *   and read as raw bytes, so any bytes round-trip (PostgreSQL refuses kinds, ids or namespaces
 *   that are not UTF-8: MK_EINVAL, SQLSTATE 22021); ids collate "C", so list_docs orders them
 *   bytewise whatever the database's locale, and matches id_prefix literally by a key range.
 *   put_docs and delete_docs are one transaction each, retried like the other writes; documents
 *   have no seq and no NOTIFY.
 * - With read_dsn, reads go to the replicas in turn. A read first checks the replica has
 *   replayed the highest seq the change feed announced (a subscriber told of seq N then reads
 *   N or newer, never an older state); a replica behind is skipped, and when none is caught up
 *   the read retries every 20 ms for read_wait_ms, then goes to the primary. A replica that
 *   is down is skipped (fail fast, retried by later calls); with none up, the primary serves.
 * - load_mocks, get_mock, list_namespaces and list_docs hold a connection during the callback:
 *   strings in a row are valid only during the call. load_mocks and list_docs stream rows
 *   (single-row mode). */
int mk_pg_repo_open(const char *dsn, const mk_pg_opts_t *opts, mk_repo_t **out, mk_err_t *err);

/* One read replica as last measured by mk_pg_repo_replicas. */
typedef struct mk_pg_replica_status {
    char name[160];    /* host:port/dbname (no credentials) */
    bool up;           /* answered the last check */
    int64_t seq;       /* its change seq then */
    int64_t lag_seq;   /* the primary's change seq minus its own (0 when caught up) */
    double lag_ms;     /* replay delay (now - last replayed commit) while behind; 0 caught up */
    char error[300];   /* why it did not answer; "" when up */
    int64_t fallbacks; /* reads sent to the primary because no replica was caught up or up */
} mk_pg_replica_status_t;

/* Measures every read replica of r (a PostgreSQL repository opened with read_dsn; r may also be
 * a repository that wraps it, as long as the caller kept the PostgreSQL one) against the primary:
 * fills out[0..*n) with at most max entries. 0 replicas when read_dsn was not given. */
int mk_pg_repo_replicas(mk_repo_t *r, mk_pg_replica_status_t *out, int max, int *n);

/* The schema version this binary migrates to (the number of migrations it knows). */
int mk_pg_repo_schema_version(void);

#endif
