/* A JavaScript sandbox over Debian's Duktape (the only module that includes duktape.h).
 *
 * Debian's libduktape is built without DUK_USE_EXEC_TIMEOUT_CHECK and DUK_USE_INTERRUPT_COUNTER
 * (see /usr/include/duk_config.h), so nothing inside the engine ever hands control back during a
 * `for (;;) {}`; its fatal handler only runs on fatal errors. So the engine runs in a worker
 * process forked on the first call: the parent waits for each call with a deadline and SIGKILLs
 * the worker past it, a capped allocator refuses memory past the limit, a crash of the engine
 * only ends the worker, and scripts never touch the parent's memory. Scripts see plain
 * ECMAScript (Duktape 2.7: ES5.1 plus parts of ES2015), no file, network or module access; the
 * embedder may expose one host function, __mk_host(name, arg), that runs in the worker. */
#ifndef MK_JS_H
#define MK_JS_H

#include <stddef.h>

#include "err/err.h"

typedef struct mk_js mk_js_t;

typedef struct mk_js_limits {
    long timeout_ms;         /* wall time of one mk_js_call; 0: 5000 */
    size_t max_heap_bytes;   /* engine heap, prelude included; 0: 64 MiB */
    size_t max_output_bytes; /* the string a call returns; 0: 16 MiB */
    int isolate_calls;       /* nonzero: every call starts from the prelude's state */
} mk_js_limits_t;

/* Starts the fork server that every engine's worker is then forked from. Call it early in main,
 * before any thread exists: a worker forked straight from a threaded process can inherit a lock
 * another thread held (an allocator's, OpenSSL's) and hang. Without it workers fork directly
 * from the caller, which is fine in single-threaded programs. Idempotent. */
int mk_js_init(mk_err_t *err);

/* Called in the worker when a script calls __mk_host(name, arg) (both strings), with the copy of
 * host_ctx given to mk_js_new. Returns 0 with
 * *out (malloc'd, freed by the caller, NUL-terminated, length in *out_len) which the script gets
 * as a string, or a negative MK_E* code with err filled: the script gets an Error whose message
 * is err->msg. */
typedef int (*mk_js_host_fn)(const void *ctx, const char *name, const char *arg, size_t arg_len,
                             char **out, size_t *out_len, mk_err_t *err);

/* Creates an engine and evaluates prelude (trusted code: it runs in this process, unguarded)
 * whose global functions mk_js_call can call. lim may be NULL (defaults); host may be NULL.
 * prelude and host_ctx (plain bytes without pointers: the worker may be the fork server's child)
 * are copied; name names the prelude in error messages. */
int mk_js_new(const mk_js_limits_t *lim, const char *prelude, size_t prelude_len, const char *name,
              mk_js_host_fn host, const void *host_ctx, size_t host_ctx_len, mk_js_t **out,
              mk_err_t *err);
void mk_js_free(mk_js_t *js);

/* Calls the prelude's global function func with arg as its one string argument, in the
 * worker, and returns the string it returns in *out (caller frees with free(); NUL-terminated;
 * length in *out_len, which may be NULL). What a call leaves in the engine (globals, changed
 * prototypes) is there for the next call, as in one Postman run, unless lim.isolate_calls is set;
 * after a timeout, a memory failure or a crash the next call starts from the prelude's state in
 * a new worker. Failures, with err->cause set to the kind:
 *   MK_EINVAL   "exception": func threw (or does not exist); msg is the error's text
 *   MK_EUNAVAIL "timeout":   still running after timeout_ms; msg says the limit
 *   MK_ETOOBIG  "memory":    the heap reached max_heap_bytes, or the result max_output_bytes
 *   MK_EINTERNAL "crash":    the engine died (fatal error, signal) or could not be started
 * Not safe to call concurrently on one mk_js_t; different engines are independent. */
int mk_js_call(mk_js_t *js, const char *func, const char *arg, size_t arg_len, char **out,
               size_t *out_len, mk_err_t *err);

#endif
