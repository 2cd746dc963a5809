/* The cryptographic primitives identities need, over libsodium (the only file including it):
 * argon2id password hashes, SHA-256, HMAC-SHA256, random secrets, constant-time comparison. */
#include "identity/identity.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int ready(mk_err_t *err)
{
    /* sodium_init is idempotent and thread-safe; 1 means it had run already. */
    if (sodium_init() < 0)
        return mk_err_set(err, MK_EINTERNAL, "libsodium failed to initialise");
    return 0;
}

int mk_identity_hash_password(const char *password, char out[MK_IDENTITY_HASH_MAX], mk_err_t *err)
{
    _Static_assert(crypto_pwhash_STRBYTES <= MK_IDENTITY_HASH_MAX, "hash buffer too small");
    if (ready(err) != 0)
        return MK_EINTERNAL;
    if (crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return mk_err_set(err, MK_ENOMEM, "password hashing: out of memory");
    return 0;
}

bool mk_identity_verify_password(const char *hash, const char *password)
{
    if (ready(NULL) != 0 || hash == NULL || hash[0] == '\0')
        return false;
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

void mk_identity_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, data, len);
    hex(d, sizeof d, out);
}

void mk_identity_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
                                 char out[65])
{
    unsigned char d[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, data, len);
    crypto_auth_hmacsha256_final(&st, d);
    hex(d, sizeof d, out);
}

void mk_identity_random_hex(size_t nbytes, char *out)
{
    unsigned char b[64];
    ready(NULL);
    if (nbytes > sizeof b)
        nbytes = sizeof b;
    randombytes_buf(b, nbytes);
    hex(b, nbytes, out);
}

bool mk_identity_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    /* The lengths of our secrets are public; the content is compared in constant time. */
    return alen == blen && sodium_memcmp(a, b, alen) == 0;
}

void mk_identity_time_format(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int mk_identity_time_parse(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    const char *rest = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (rest == NULL)
        return MK_EINVAL;
    if (*rest == '.')
        while (*++rest >= '0' && *rest <= '9')
            ;
    int64_t offset = 0;
    if (*rest == 'Z' || *rest == 'z') {
        rest++;
    } else if (*rest == '+' || *rest == '-') {
        int hh, mm;
        if (sscanf(rest + 1, "%2d:%2d", &hh, &mm) != 2)
            return MK_EINVAL;
        offset = (*rest == '+' ? 1 : -1) * ((int64_t)hh * 3600 + mm * 60);
        rest += 6;
    } else {
        return MK_EINVAL;
    }
    if (*rest != '\0')
        return MK_EINVAL;
    *ms = ((int64_t)timegm(&tm) - offset) * 1000;
    return 0;
}
