/* A minimal unit-test harness: checks record failures and keep going; mk_testing_done() prints
 * "N passed, N failed" and returns the process exit status. */
#ifndef MK_TESTING_H
#define MK_TESTING_H

#include <stdbool.h>
#include <string.h>

void mk_testing_record(bool ok, const char *file, int line, const char *expr, const char *detail);
int mk_testing_done(void);
/* Runs one named test function and reports it. */
void mk_testing_run(const char *name, void (*fn)(void));

#define MK_CHECK(cond) mk_testing_record((cond) ? true : false, __FILE__, __LINE__, #cond, NULL)

#define MK_CHECK_INT(a, b)                                                                        \
    do {                                                                                          \
        long long mk_a_ = (long long)(a), mk_b_ = (long long)(b);                                 \
        char mk_d_[96];                                                                           \
        snprintf(mk_d_, sizeof mk_d_, "%lld != %lld", mk_a_, mk_b_);                              \
        mk_testing_record(mk_a_ == mk_b_, __FILE__, __LINE__, #a " == " #b, mk_d_);               \
    } while (0)

#define MK_CHECK_STR(a, b)                                                                        \
    do {                                                                                          \
        const char *mk_a_ = (a), *mk_b_ = (b);                                                    \
        bool mk_ok_ = mk_a_ && mk_b_ && strcmp(mk_a_, mk_b_) == 0;                                \
        char mk_d_[1200];                                                                          \
        snprintf(mk_d_, sizeof mk_d_, "\"%s\" != \"%s\"", mk_a_ ? mk_a_ : "(null)",              \
                 mk_b_ ? mk_b_ : "(null)");                                                       \
        mk_testing_record(mk_ok_, __FILE__, __LINE__, #a " == " #b, mk_d_);                       \
    } while (0)

#define MK_RUN(fn) mk_testing_run(#fn, fn)

#include <stdio.h>

#endif
