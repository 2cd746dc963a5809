/* Internal to pkg/redis: the master's address as Redis Sentinel reports it. One watcher per
 * (sentinels, master name, sentinel password), shared by every connection of the process that
 * names them: a thread asks the sentinels (SENTINEL get-master-addr-by-name) at start, every
 * second and whenever a connection suspects the master moved, and listens for +switch-master.
 * Each change of address bumps a generation number; connections made for an older generation
 * are dropped before their next command. */
#ifndef MK_REDIS_SENTINEL_H
#define MK_REDIS_SENTINEL_H

#include "redis/redis.h"

#include <stdint.h>

/* mk_redis_sentinel_open (redis.h) gives the shared watcher; connections hold a reference. */

/* The master's address now: 0 with host (NUL-terminated) and port, or MK_EUNAVAIL naming why
 * none is known. *gen (may be NULL) gets the generation of that address. */
int mk_redis_sentinel_master(mk_redis_sentinel_t *s, char *host, size_t size, int *port,
                             uint64_t *gen, mk_err_t *err);
uint64_t mk_redis_sentinel_gen(mk_redis_sentinel_t *s);
/* A connection found the master unreachable or not a master: ask the sentinels again now. */
void mk_redis_sentinel_suspect(mk_redis_sentinel_t *s);
/* Another reference to s (released with mk_redis_sentinel_close). */
mk_redis_sentinel_t *mk_redis_sentinel_ref(mk_redis_sentinel_t *s);

/* mk_redis_async_new with the watcher given (a reference is taken; NULL: opts's host and port,
 * or opts's sentinels). */
int mk_redis_async_open(const mk_redis_opts_t *opts, mk_redis_sentinel_t *sentinel,
                        mk_httpd_loop_t *loop, mk_redis_async_t **out, mk_err_t *err);

#endif
