/* Fake data generators for `$.fake.<Name>` and `$.fake.<Name>(args)` templates, with embedded
 * English-locale data. A call is compiled once (name looked up case-insensitively, arguments parsed
 * and checked) and generated many times from a caller-owned random state, so the same seed gives
 * the same output. No allocation while generating except growth of the output buffer. */
#ifndef MK_FAKER_H
#define MK_FAKER_H

#include "err/err.h"
#include "str/str.h"

#include <jansson.h>
#include <stdint.h>

/* The random state (xoshiro256** seeded through splitmix64). Plain value; copy freely. */
typedef struct mk_faker_rng {
    uint64_t s[4];
} mk_faker_rng_t;

void mk_faker_rng_seed(mk_faker_rng_t *rng, uint64_t seed);
uint64_t mk_faker_rng_next(mk_faker_rng_t *rng);
/* Uniform in [lo, hi] (inclusive); lo <= hi. */
int64_t mk_faker_rng_between(mk_faker_rng_t *rng, int64_t lo, int64_t hi);
/* Uniform in [0, 1). */
double mk_faker_rng_double(mk_faker_rng_t *rng);

/* The JSON type of what a generator produces. A NUMBER or BOOL is written as its JSON text
 * ("42", "3.14", "true"); a STRING as its raw characters (not quoted, not escaped). */
typedef enum mk_faker_kind {
    MK_FAKER_STRING,
    MK_FAKER_NUMBER,
    MK_FAKER_BOOL,
} mk_faker_kind_t;

typedef struct mk_faker_call mk_faker_call_t;

/* Compiles one call. name is the generator name (any case); args is the text between the
 * parentheses (e.g. "5, 10"), or an empty slice when there were none. Fails with MK_EINVAL and a
 * message naming the problem: "unknown faker 'Foo'", "IntBetween: min 5 is greater than max 1",
 * "IntBetween: expects 2 arguments". Caller frees with mk_faker_call_free(). IntBetween(min,max)
 * and IntRange(a,b) take two 64-bit integers, FloatRange(a,b) two finite numbers; all three are
 * inclusive of both ends. *out is NULL on failure. */
int mk_faker_compile(mk_str_t name, mk_str_t args, mk_faker_call_t **out, mk_err_t *err);
void mk_faker_call_free(mk_faker_call_t *call);
mk_faker_kind_t mk_faker_call_kind(const mk_faker_call_t *call);
/* The generator's canonical name ("IntBetween" however it was spelled): static, not freed. */
const char *mk_faker_call_name(const mk_faker_call_t *call);
/* "string", "number" or "boolean": static, not freed. */
const char *mk_faker_kind_name(mk_faker_kind_t kind);

/* Appends one generated value to out. now_ms anchors dates and timestamps: Timestamp, UnixTime,
 * ULID's time part and JWT's "iat" are now itself; DateISO and Date are random instants within the
 * five years before now. Returns 0, or MK_ETOOBIG (MK_ENOMEM) when out refuses the bytes, in which
 * case out is left as it was. Thread-safe (the call is immutable; the rng is the caller's). */
int mk_faker_gen(const mk_faker_call_t *call, mk_faker_rng_t *rng, int64_t now_ms, mk_buf_t *out);

/* Every generator as [{"name", "args" (e.g. "(min,max)" or ""), "kind", "example"}], sorted by
 * name ignoring case: a new reference (NULL when out of memory). "kind" is mk_faker_kind_name();
 * "example" is always a JSON string holding the generated text, made from a fixed seed and a fixed
 * now (2025-01-01T00:00:00Z) so it is the same on every call. */
json_t *mk_faker_list(void);

#endif
