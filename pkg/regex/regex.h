/* Regular expressions (PCRE2, JIT-compiled when available). The only module that includes
 * pcre2.h. A compiled expression is immutable and may be matched from many threads at once. */
#ifndef MK_REGEX_H
#define MK_REGEX_H

#include "err/err.h"
#include "str/str.h"

typedef struct mk_regex mk_regex_t;

/* Compiles pattern. On failure returns MK_EINVAL with PCRE2's message and the offset
 * ("missing closing parenthesis at offset 4"). Caller frees with mk_regex_free(). */
int mk_regex_compile(const char *pattern, mk_regex_t **out, mk_err_t *err);
void mk_regex_free(mk_regex_t *re);

/* True when the pattern matches anywhere in subject (unanchored search, like Go's MatchString).
 * Thread-safe; uses per-thread match data. */
bool mk_regex_match(const mk_regex_t *re, mk_str_t subject);

/* Frees the calling thread's cached match data now. Optional: a thread's cache is freed when it
 * exits anyway; this is for threads that outlive their use of regexes (the main thread). */
void mk_regex_thread_release(void);

/* Whether re was JIT-compiled, and whether it has Unicode (UTF-8) semantics. For tests and
 * diagnostics. */
bool mk_regex_is_jit(const mk_regex_t *re);
bool mk_regex_is_utf(const mk_regex_t *re);

#endif
