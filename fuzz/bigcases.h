/* Big inputs for the replay tests, generated at test time (not stored): the depth, length and
 * size cases libFuzzer's -max_len keeps it from producing. */
#ifndef MK_FUZZ_BIGCASES_H
#define MK_FUZZ_BIGCASES_H

#include <stddef.h>
#include <stdint.h>

typedef void (*mk_fuzz_case_fn)(void *ud, const char *label, const uint8_t *data, size_t size);

/* Calls run once per generated input of harness ("template", "cond", ...); returns how many. */
size_t mk_fuzz_big_cases(const char *harness, mk_fuzz_case_fn run, void *ud);

#endif
