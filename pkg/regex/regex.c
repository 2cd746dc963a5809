/* PCRE2 wrapper: compile once (JIT when the platform has it), match from any thread with match
 * data cached per thread and released by a pthread key destructor when the thread exits. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex/regex.h"
#include "str/str.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A bound on backtracking so one hostile pattern/subject pair cannot stall a worker thread
 * (PCRE2's default is ten times higher). The depth limit stays at its default: lowering it
 * breaks legitimate repetitions over long subjects in the interpreter. */
#define MATCH_LIMIT 1000000

struct mk_regex {
    pcre2_code *code;
    pcre2_match_context *mctx; /* read-only after compile, shared by all threads */
};

/* JIT-compiled code runs on its own stack; PCRE2's default (32 KiB of machine stack) fails a
 * simple `(?:ab)*` over a few thousand characters. Each thread gets one that grows to this size
 * (address space is reserved up front, pages are touched on use). */
#define JIT_STACK_START (32 * 1024)
#define JIT_STACK_MAX   (4 * 1024 * 1024)

/* What one thread keeps between matches. */
typedef struct thread_state {
    pcre2_match_data *md;
    pcre2_jit_stack *jit_stack; /* created on first JIT match */
} thread_state_t;

static pthread_key_t state_key;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;
static int state_key_rc;

static void state_destroy(void *p)
{
    thread_state_t *ts = p;
    pcre2_match_data_free(ts->md);
    pcre2_jit_stack_free(ts->jit_stack);
    free(ts);
}

static void state_key_create(void)
{
    state_key_rc = pthread_key_create(&state_key, state_destroy);
}

/* One ovector pair is enough: callers only ask whether there is a match, and PCRE2 reports a
 * match with a too-small ovector as rc == 0. */
static thread_state_t *thread_state(void)
{
    pthread_once(&state_once, state_key_create);
    if (state_key_rc != 0)
        return NULL;
    thread_state_t *ts = pthread_getspecific(state_key);
    if (ts != NULL)
        return ts;
    ts = calloc(1, sizeof *ts);
    if (ts == NULL)
        return NULL;
    ts->md = pcre2_match_data_create(1, NULL);
    if (ts->md == NULL || pthread_setspecific(state_key, ts) != 0) {
        state_destroy(ts);
        return NULL;
    }
    return ts;
}

/* Called by pcre2_match for JIT code: hands out the calling thread's stack, so one shared match
 * context serves every thread. NULL falls back to PCRE2's small machine-stack default. */
static pcre2_jit_stack *jit_stack_for_thread(void *unused)
{
    (void)unused;
    thread_state_t *ts = pthread_getspecific(state_key);
    if (ts == NULL)
        return NULL;
    if (ts->jit_stack == NULL)
        ts->jit_stack = pcre2_jit_stack_create(JIT_STACK_START, JIT_STACK_MAX, NULL);
    return ts->jit_stack;
}

void mk_regex_thread_release(void)
{
    pthread_once(&state_once, state_key_create);
    if (state_key_rc != 0)
        return;
    thread_state_t *ts = pthread_getspecific(state_key);
    if (ts == NULL)
        return;
    pthread_setspecific(state_key, NULL);
    state_destroy(ts);
}

/* Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF), as PCRE2_UTF requires. */
static bool valid_utf8(const unsigned char *s, size_t len)
{
    for (size_t i = 0, n; i < len; i += n)
        if ((n = mk_str_utf8_seq(s + i, len - i)) == 0)
            return false;
    return true;
}

int mk_regex_compile(const char *pattern, mk_regex_t **out, mk_err_t *err)
{
    int rc = 0;
    mk_regex_t *re = NULL;
    *out = NULL;
    if (pattern == NULL)
        return mk_err_set(err, MK_EINVAL, "no pattern");

    size_t len = strlen(pattern);
    uint32_t options = 0;
    /* A pattern that is valid UTF-8 gets Unicode semantics (`.` is one code point); subjects
     * that are not valid UTF-8 still match safely thanks to PCRE2_MATCH_INVALID_UTF. */
    if (valid_utf8((const unsigned char *)pattern, len))
        options |= PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;

    re = calloc(1, sizeof *re);
    if (re == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    int code = 0;
    PCRE2_SIZE offset = 0;
    re->code = pcre2_compile((PCRE2_SPTR)pattern, len, options, &code, &offset, NULL);
    if (re->code == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
            strcpy((char *)msg, "unknown error");
        rc = mk_err_set(err, MK_EINVAL, "%s at offset %zu", (const char *)msg, (size_t)offset);
        goto out;
    }
    /* Failure only means JIT is unavailable here; the interpreter still works. */
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);

    re->mctx = pcre2_match_context_create(NULL);
    if (re->mctx == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    pcre2_set_match_limit(re->mctx, MATCH_LIMIT);
    pcre2_jit_stack_assign(re->mctx, jit_stack_for_thread, NULL);
    *out = re;
    re = NULL;
out:
    mk_regex_free(re);
    return rc;
}

void mk_regex_free(mk_regex_t *re)
{
    if (re == NULL)
        return;
    pcre2_code_free(re->code);
    pcre2_match_context_free(re->mctx);
    free(re);
}

bool mk_regex_match(const mk_regex_t *re, mk_str_t subject)
{
    thread_state_t *ts = thread_state();
    if (ts == NULL)
        return false;
    /* PCRE2 accepts a NULL subject only in recent versions; an empty slice may carry one. */
    PCRE2_SPTR s = (PCRE2_SPTR)(subject.base ? subject.base : "");
    int rc = pcre2_match(re->code, s, subject.len, 0, 0, ts->md, re->mctx);
    /* Past the JIT stack the interpreter, which keeps its frames on the heap, may still decide. */
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re->code, s, subject.len, 0, PCRE2_NO_JIT, ts->md, re->mctx);
    return rc >= 0;
}

bool mk_regex_is_jit(const mk_regex_t *re)
{
    size_t size = 0;
    return pcre2_pattern_info(re->code, PCRE2_INFO_JITSIZE, &size) == 0 && size > 0;
}

bool mk_regex_is_utf(const mk_regex_t *re)
{
    uint32_t opts = 0;
    pcre2_pattern_info(re->code, PCRE2_INFO_ALLOPTIONS, &opts);
    return (opts & PCRE2_UTF) != 0;
}
