/* Internal to pkg/pg: the change-feed follower behind subscribe. A thread with its own connection
 * doing LISTEN, reconnecting with backoff. */
#ifndef MK_PG_LISTEN_H
#define MK_PG_LISTEN_H

#include "err/err.h"
#include "repo/repo.h"

typedef struct mk_pg_listener mk_pg_listener_t;

/* Connects and LISTENs once before returning (a failure there is not an error: the thread keeps
 * trying), then starts the thread, which calls cb(ud, 0, NULL) after every (re)connection and
 * cb(ud, seq, id) per notification on channel. dsn and channel are copied. */
int mk_pg_listener_start(const char *dsn, int timeout_ms, const char *channel, mk_repo_change_cb cb,
                         void *ud, mk_pg_listener_t **out, mk_err_t *err);
/* Stops and joins the thread (no callback runs after it returns) and frees. NULL is fine. */
void mk_pg_listener_stop(mk_pg_listener_t *l);

#endif
