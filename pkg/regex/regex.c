/* PCRE2 wrapper: compile once (JIT when the platform has it), match from any thread with match
 * data cached per thread and released by a pthread key destructor when the thread exits. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex/regex.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on backtracking so one hostile pattern/subject pair cannot stall a worker thread. */
#define MATCH_LIMIT 1000000
#define DEPTH_LIMIT 10000

struct mk_regex {
    pcre2_code *code;
    pcre2_match_context *mctx; /* read-only after compile, shared by all threads */
};

static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static int md_key_rc;

static void md_destroy(void *md)
{
    pcre2_match_data_free(md);
}

static void md_key_create(void)
{
    md_key_rc = pthread_key_create(&md_key, md_destroy);
}

/* One ovector pair is enough: callers only ask whether there is a match, and PCRE2 reports a
 * match with a too-small ovector as rc == 0. */
static pcre2_match_data *thread_match_data(void)
{
    pthread_once(&md_once, md_key_create);
    if (md_key_rc != 0)
        return NULL;
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (md != NULL)
        return md;
    md = pcre2_match_data_create(1, NULL);
    if (md == NULL)
        return NULL;
    if (pthread_setspecific(md_key, md) != 0) {
        pcre2_match_data_free(md);
        return NULL;
    }
    return md;
}

void mk_regex_thread_release(void)
{
    pthread_once(&md_once, md_key_create);
    if (md_key_rc != 0)
        return;
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (md == NULL)
        return;
    pthread_setspecific(md_key, NULL);
    pcre2_match_data_free(md);
}

/* Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF), as PCRE2_UTF requires. */
static bool valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned int cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
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
    pcre2_set_depth_limit(re->mctx, DEPTH_LIMIT);
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
    pcre2_match_data *md = thread_match_data();
    if (md == NULL)
        return false;
    /* PCRE2 accepts a NULL subject only in recent versions; an empty slice may carry one. */
    PCRE2_SPTR s = (PCRE2_SPTR)(subject.base ? subject.base : "");
    int rc = pcre2_match(re->code, s, subject.len, 0, 0, md, re->mctx);
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
