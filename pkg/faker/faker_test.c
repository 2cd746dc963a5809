/* Tests for the fake data generators: formats and check digits, argument errors, reproducibility,
 * the listing, and a rough speed check. */
#include "faker/faker.h"
#include "testing/testing.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NOW_MS INT64_C(1700000000123) /* 2023-11-14T22:13:20.123Z */
#define ROUNDS 300

static const char *const all_names[] = {
    "UUID",
    "UUIDDigit",
    "IntBetween",
    "IntRange",
    "FloatRange",
    "Float64",
    "PositiveInt",
    "Bool",
    "Price",
    "Amount",
    "DateISO",
    "Date",
    "Timestamp",
    "UnixTime",
    "FirstName",
    "LastName",
    "Name",
    "Username",
    "Password",
    "Email",
    "Gender",
    "JobTitle",
    "Company",
    "CompanyName",
    "Word",
    "Sentence",
    "Paragraph",
    "City",
    "Country",
    "CountryCode",
    "State",
    "Address",
    "StreetAddress",
    "Zip",
    "ZipCode",
    "Latitude",
    "Longitude",
    "Phone",
    "PhoneNumber",
    "URL",
    "DomainName",
    "IPv4",
    "IPv6",
    "MacAddress",
    "UserAgent",
    "HexColor",
    "CreditCardNumber",
    "IBAN",
    "JWT",
    "ULID",
};
#define N_NAMES (sizeof all_names / sizeof all_names[0])

static const char *args_for(const char *name)
{
    if (strcasecmp(name, "IntBetween") == 0 || strcasecmp(name, "IntRange") == 0)
        return "1, 100";
    if (strcasecmp(name, "FloatRange") == 0)
        return "0.5, 2.5";
    return "";
}

static mk_faker_call_t *compile(const char *name, const char *args)
{
    mk_faker_call_t *c = NULL;
    mk_err_t err = {0};
    int rc = mk_faker_compile(mk_str_of(name), mk_str_of(args), &c, &err);
    mk_testing_record(rc == 0 && c != NULL, __FILE__, __LINE__, name, err.msg);
    return c;
}

/* Generates one value as a heap string (caller frees), or NULL. */
static char *gen_one(const mk_faker_call_t *c, mk_faker_rng_t *rng, int64_t now_ms)
{
    mk_buf_t b;
    mk_buf_init(&b, 0);
    if (c == NULL || mk_faker_gen(c, rng, now_ms, &b) != 0) {
        mk_buf_free(&b);
        return NULL;
    }
    return mk_buf_take(&b);
}

/* Runs check over ROUNDS values of one generator, recording the first value that fails. */
static void check_all(const char *name, const char *args, int64_t now_ms,
                      int (*check)(const char *v, int64_t now_ms))
{
    mk_faker_call_t *c = compile(name, args);
    mk_faker_rng_t rng;
    mk_faker_rng_seed(&rng, 7);
    for (int i = 0; i < ROUNDS && c != NULL; i++) {
        char *v = gen_one(c, &rng, now_ms);
        int ok = v != NULL && check(v, now_ms);
        if (!ok) {
            char what[128];
            snprintf(what, sizeof what, "%s(%s) format", name, args);
            mk_testing_record(false, __FILE__, __LINE__, what, v ? v : "(null)");
            free(v);
            break;
        }
        free(v);
    }
    mk_faker_call_free(c);
}

static int all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || strchr(set, s[i]) == NULL)
            return 0;
    return 1;
}

#define HEX   "0123456789abcdef"
#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define DIGIT "0123456789"

static void test_every_generator_produces_its_kind(void)
{
    for (size_t i = 0; i < N_NAMES; i++) {
        mk_faker_call_t *c = compile(all_names[i], args_for(all_names[i]));
        if (c == NULL)
            continue;
        MK_CHECK_STR(mk_faker_call_name(c), all_names[i]);
        for (uint64_t seed = 1; seed <= 5; seed++) {
            mk_faker_rng_t rng;
            mk_faker_rng_seed(&rng, seed);
            char *v = gen_one(c, &rng, NOW_MS);
            int ok = v != NULL && v[0] != '\0';
            if (ok && mk_faker_call_kind(c) == MK_FAKER_NUMBER) {
                char *end = NULL;
                strtod(v, &end);
                ok = *end == '\0' && (v[0] == '-' || isdigit((unsigned char)v[0]));
            } else if (ok && mk_faker_call_kind(c) == MK_FAKER_BOOL) {
                ok = strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
            }
            mk_testing_record(ok, __FILE__, __LINE__, all_names[i], v ? v : "(null)");
            free(v);
        }
        mk_faker_call_free(c);
    }
}

static int is_email(const char *v, int64_t now_ms)
{
    (void)now_ms;
    const char *at = strchr(v, '@');
    if (at == NULL || at == v || strchr(at + 1, '@') != NULL)
        return 0;
    size_t local = (size_t)(at - v);
    if (!all_of(v, local, LOWER DIGIT "._") || v[0] == '.' || v[local - 1] == '.' ||
        strstr(v, "..") != NULL)
        return 0;
    const char *domain = at + 1, *dot = strrchr(domain, '.');
    if (dot == NULL || dot == domain || strlen(dot + 1) < 2 ||
        !all_of(dot + 1, strlen(dot + 1), LOWER))
        return 0;
    return all_of(domain, (size_t)(dot - domain), LOWER DIGIT "-.") && domain[0] != '-';
}

static int iban_mod97(const char *v)
{
    char re[64];
    size_t n = strlen(v);
    if (n < 5 || n >= sizeof re)
        return -1;
    memcpy(re, v + 4, n - 4);
    memcpy(re + n - 4, v, 4);
    unsigned m = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = re[i];
        if (ch >= '0' && ch <= '9')
            m = (m * 10 + (unsigned)(ch - '0')) % 97;
        else if (ch >= 'A' && ch <= 'Z')
            m = (m * 100 + (unsigned)(ch - 'A' + 10)) % 97;
        else
            return -1;
    }
    return (int)m;
}

static int is_iban(const char *v, int64_t now_ms)
{
    (void)now_ms;
    size_t n = strlen(v), want;
    if (strncmp(v, "DE", 2) == 0)
        want = 22;
    else if (strncmp(v, "GB", 2) == 0)
        want = 22;
    else if (strncmp(v, "FR", 2) == 0)
        want = 27;
    else if (strncmp(v, "NL", 2) == 0)
        want = 18;
    else
        return 0;
    return n == want && all_of(v + 2, 2, DIGIT) && iban_mod97(v) == 1;
}

static void test_iban_check_digits_known_value(void)
{
    /* The worked example from the IBAN standard's documentation, and a corrupted copy. */
    MK_CHECK_INT(iban_mod97("GB82WEST12345698765432"), 1);
    MK_CHECK(iban_mod97("GB82WEST12345698765433") != 1);
}

static int luhn_ok(const char *v)
{
    size_t n = strlen(v);
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int d = v[n - 1 - i] - '0';
        if (i % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

static int is_card(const char *v, int64_t now_ms)
{
    (void)now_ms;
    size_t n = strlen(v);
    if (!all_of(v, n, DIGIT) || !luhn_ok(v))
        return 0;
    int p2 = (v[0] - '0') * 10 + (v[1] - '0');
    int p4 = atoi((char[5]){v[0], v[1], v[2], v[3], 0});
    if (v[0] == '4' || (p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720) || p4 == 6011 ||
        p2 == 65)
        return n == 16;
    if (p2 == 34 || p2 == 37)
        return n == 15;
    return 0;
}

static void test_luhn_helper_can_fail(void)
{
    MK_CHECK(luhn_ok("4111111111111111"));
    MK_CHECK(!luhn_ok("4111111111111112"));
}

static int is_uuid(const char *v, int64_t now_ms)
{
    (void)now_ms;
    if (strlen(v) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? v[i] != '-' : strchr(HEX, v[i]) == NULL)
            return 0;
    }
    return v[14] == '4' && strchr("89ab", v[19]) != NULL;
}

static int is_uuid_digit(const char *v, int64_t now_ms)
{
    (void)now_ms;
    return strlen(v) == 32 && all_of(v, 32, HEX) && v[12] == '4' && strchr("89ab", v[16]);
}

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static int is_ulid(const char *v, int64_t now_ms)
{
    if (strlen(v) != 26 || !all_of(v, 26, crockford) || v[0] > '7')
        return 0;
    uint64_t t = 0;
    for (int i = 0; i < 10; i++)
        t = t * 32 + (uint64_t)(strchr(crockford, v[i]) - crockford);
    return t == (uint64_t)now_ms;
}

static int is_ipv4(const char *v, int64_t now_ms)
{
    (void)now_ms;
    unsigned o[4];
    char tail;
    if (sscanf(v, "%u.%u.%u.%u%c", &o[0], &o[1], &o[2], &o[3], &tail) != 4)
        return 0;
    for (int i = 0; i < 4; i++)
        if (o[i] > 255)
            return 0;
    struct in_addr a;
    return all_of(v, strlen(v), DIGIT ".") && inet_pton(AF_INET, v, &a) == 1;
}

static int is_ipv6(const char *v, int64_t now_ms)
{
    (void)now_ms;
    int groups = 1;
    for (const char *p = v; *p; p++)
        groups += *p == ':';
    struct in6_addr a;
    return groups == 8 && strstr(v, "::") == NULL && all_of(v, strlen(v), HEX ":") &&
           inet_pton(AF_INET6, v, &a) == 1;
}

static int is_mac(const char *v, int64_t now_ms)
{
    (void)now_ms;
    if (strlen(v) != 17)
        return 0;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? v[i] != ':' : strchr(HEX, v[i]) == NULL)
            return 0;
    return 1;
}

static int is_hex_color(const char *v, int64_t now_ms)
{
    (void)now_ms;
    return strlen(v) == 7 && v[0] == '#' && all_of(v + 1, 6, HEX);
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

/* Seconds since the epoch of a UTC calendar time, through timegm's independent implementation. */
static int64_t utc_seconds(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm);
}

static int date_in_past_five_years(int y, int mo, int d, int64_t t, int64_t now_ms)
{
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return 0;
    int64_t now = now_ms / 1000;
    return t <= now && t >= now - 1827 * 86400;
}

static int is_date(const char *v, int64_t now_ms)
{
    int y, mo, d, n = 0;
    if (strlen(v) != 10 || sscanf(v, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 ||
        v[4] != '-' || v[7] != '-')
        return 0;
    return date_in_past_five_years(y, mo, d, utc_seconds(y, mo, d, 0, 0, 0), now_ms);
}

static int is_date_iso(const char *v, int64_t now_ms)
{
    int y, mo, d, h, mi, s, n = 0;
    if (strlen(v) != 20 ||
        sscanf(v, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 || n != 20)
        return 0;
    if (h > 23 || mi > 59 || s > 59)
        return 0;
    return date_in_past_five_years(y, mo, d, utc_seconds(y, mo, d, h, mi, s), now_ms);
}

static int is_password(const char *v, int64_t now_ms)
{
    (void)now_ms;
    size_t n = strlen(v);
    int lower = 0, upper = 0, digit = 0, other = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        lower += islower(ch) != 0;
        upper += isupper(ch) != 0;
        digit += isdigit(ch) != 0;
        other += !isalnum(ch) && isprint(ch) && ch != '"' && ch != '\\' && ch != ' ';
    }
    return n >= 12 && n <= 16 && lower && upper && digit && other &&
           (size_t)(lower + upper + digit + other) == n;
}

static int is_country_code(const char *v, int64_t now_ms)
{
    (void)now_ms;
    return strlen(v) == 2 && all_of(v, 2, UPPER);
}

static int is_phone(const char *v, int64_t now_ms)
{
    (void)now_ms;
    /* "+1-NXX-NXX-XXXX" */
    return strlen(v) == 15 && strncmp(v, "+1-", 3) == 0 && v[3] >= '2' && v[6] == '-' &&
           v[7] >= '2' && v[10] == '-' && all_of(v + 3, 3, DIGIT) && all_of(v + 7, 3, DIGIT) &&
           all_of(v + 11, 4, DIGIT);
}

static int is_phone_number(const char *v, int64_t now_ms)
{
    (void)now_ms;
    return strlen(v) == 14 && v[0] == '(' && v[4] == ')' && v[5] == ' ' && v[9] == '-' &&
           all_of(v + 1, 3, DIGIT) && all_of(v + 6, 3, DIGIT) && all_of(v + 10, 4, DIGIT);
}

static int is_zip(const char *v, int64_t now_ms)
{
    (void)now_ms;
    return strlen(v) == 5 && all_of(v, 5, DIGIT);
}

static int is_url(const char *v, int64_t now_ms)
{
    (void)now_ms;
    if (strncmp(v, "https://", 8) != 0)
        return 0;
    const char *host = v + 8, *slash = strchr(host, '/');
    size_t n = slash ? (size_t)(slash - host) : strlen(host);
    return n > 3 && memchr(host, '.', n) != NULL && all_of(host, n, LOWER DIGIT "-.") &&
           all_of(v, strlen(v), LOWER DIGIT "-./:");
}

static int is_domain(const char *v, int64_t now_ms)
{
    (void)now_ms;
    const char *dot = strrchr(v, '.');
    return dot != NULL && dot != v && strlen(dot + 1) >= 2 && all_of(v, strlen(v), LOWER "-.");
}

static int is_sentence(const char *v, int64_t now_ms)
{
    (void)now_ms;
    size_t n = strlen(v);
    return n > 10 && isupper((unsigned char)v[0]) && v[n - 1] == '.' && strstr(v, "  ") == NULL;
}

static int is_address(const char *v, int64_t now_ms)
{
    (void)now_ms;
    /* "<number> <street>, <city>, <ST> <zip5>" */
    size_t n = strlen(v);
    return n > 20 && isdigit((unsigned char)v[0]) && all_of(v + n - 5, 5, DIGIT) &&
           v[n - 6] == ' ' && all_of(v + n - 8, 2, UPPER) && v[n - 9] == ' ' && v[n - 10] == ',';
}

static void test_formats(void)
{
    check_all("Email", "", NOW_MS, is_email);
    check_all("IBAN", "", NOW_MS, is_iban);
    check_all("CreditCardNumber", "", NOW_MS, is_card);
    check_all("UUID", "", NOW_MS, is_uuid);
    check_all("UUIDDigit", "", NOW_MS, is_uuid_digit);
    check_all("ULID", "", NOW_MS, is_ulid);
    check_all("IPv4", "", NOW_MS, is_ipv4);
    check_all("IPv6", "", NOW_MS, is_ipv6);
    check_all("MacAddress", "", NOW_MS, is_mac);
    check_all("HexColor", "", NOW_MS, is_hex_color);
    check_all("Date", "", NOW_MS, is_date);
    check_all("DateISO", "", NOW_MS, is_date_iso);
    check_all("Password", "", NOW_MS, is_password);
    check_all("CountryCode", "", NOW_MS, is_country_code);
    check_all("Phone", "", NOW_MS, is_phone);
    check_all("PhoneNumber", "", NOW_MS, is_phone_number);
    check_all("Zip", "", NOW_MS, is_zip);
    check_all("ZipCode", "", NOW_MS, is_zip);
    check_all("URL", "", NOW_MS, is_url);
    check_all("DomainName", "", NOW_MS, is_domain);
    check_all("Sentence", "", NOW_MS, is_sentence);
    check_all("Paragraph", "", NOW_MS, is_sentence);
    check_all("Address", "", NOW_MS, is_address);
}

static void test_all_brands_and_countries_appear(void)
{
    mk_faker_call_t *card = compile("CreditCardNumber", ""), *iban = compile("IBAN", "");
    mk_faker_rng_t rng;
    mk_faker_rng_seed(&rng, 3);
    int lens[17] = {0}, countries[4] = {0};
    for (int i = 0; i < 500 && card && iban; i++) {
        char *v = gen_one(card, &rng, NOW_MS);
        if (v && strlen(v) <= 16)
            lens[strlen(v)]++;
        free(v);
        v = gen_one(iban, &rng, NOW_MS);
        const char *cc[] = {"DE", "GB", "FR", "NL"};
        for (int k = 0; k < 4 && v; k++)
            countries[k] += strncmp(v, cc[k], 2) == 0;
        free(v);
    }
    MK_CHECK(lens[15] > 0 && lens[16] > 0);
    for (int k = 0; k < 4; k++)
        MK_CHECK(countries[k] > 0);
    mk_faker_call_free(card);
    mk_faker_call_free(iban);
}

/* Decodes unpadded base64url; returns the length or -1 on a character outside the alphabet. */
static int b64url_decode(const char *s, size_t n, unsigned char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    int bits = 0, len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = s[i] ? strchr(alphabet, s[i]) : NULL;
        if (p == NULL)
            return -1;
        acc = (acc << 6) | (uint32_t)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (unsigned char)(acc >> bits);
        }
    }
    return n % 4 == 1 ? -1 : len;
}

static void test_jwt(void)
{
    mk_faker_call_t *c = compile("JWT", "");
    mk_faker_rng_t rng;
    mk_faker_rng_seed(&rng, 11);
    for (int i = 0; i < 50 && c != NULL; i++) {
        char *v = gen_one(c, &rng, NOW_MS);
        MK_CHECK(v != NULL);
        if (v == NULL)
            break;
        char *d1 = strchr(v, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        MK_CHECK(d1 != NULL && d2 != NULL && strchr(d2 + 1, '.') == NULL);
        if (d1 == NULL || d2 == NULL) {
            free(v);
            break;
        }
        unsigned char part[512];
        int n = b64url_decode(v, (size_t)(d1 - v), part);
        MK_CHECK(n > 0);
        if (n > 0)
            MK_CHECK_STR((part[n] = 0, (char *)part), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
        n = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), part);
        MK_CHECK(n > 0);
        json_t *payload = n > 0 ? json_loadb((const char *)part, (size_t)n, 0, NULL) : NULL;
        MK_CHECK(json_is_string(json_object_get(payload, "sub")));
        const char *name = json_string_value(json_object_get(payload, "name"));
        MK_CHECK(name != NULL && strchr(name, ' ') != NULL);
        MK_CHECK_INT(json_integer_value(json_object_get(payload, "iat")), NOW_MS / 1000);
        json_decref(payload);
        n = b64url_decode(d2 + 1, strlen(d2 + 1), part);
        MK_CHECK_INT(n, 32);
        free(v);
    }
    mk_faker_call_free(c);
}

static void test_b64url_decoder_can_fail(void)
{
    unsigned char out[8];
    MK_CHECK_INT(b64url_decode("aGk", 3, out), 2);
    MK_CHECK(memcmp(out, "hi", 2) == 0);
    MK_CHECK_INT(b64url_decode("aG+k", 4, out), -1);
}

/* Draws ROUNDS numbers and checks each parses fully and lies in [lo, hi]. */
static void check_numbers(const char *name, const char *args, double lo, double hi, int decimals)
{
    mk_faker_call_t *c = compile(name, args);
    mk_faker_rng_t rng;
    mk_faker_rng_seed(&rng, 5);
    for (int i = 0; i < ROUNDS && c != NULL; i++) {
        char *v = gen_one(c, &rng, NOW_MS);
        char *end = NULL;
        double x = v ? strtod(v, &end) : 0;
        int ok = v && *end == '\0' && x >= lo && x <= hi;
        if (ok && decimals >= 0) {
            const char *dot = strchr(v, '.');
            ok = dot != NULL && strlen(dot + 1) == (size_t)decimals;
        }
        if (!ok) {
            mk_testing_record(false, __FILE__, __LINE__, name, v ? v : "(null)");
            free(v);
            break;
        }
        free(v);
    }
    mk_faker_call_free(c);
}

static void test_numbers_in_range(void)
{
    check_numbers("IntBetween", "5, 10", 5, 10, -1);
    check_numbers("IntRange", "-20,-10", -20, -10, -1);
    check_numbers("IntBetween", "-3, -3", -3, -3, -1);
    check_numbers("FloatRange", "1.5, 2.5", 1.5, 2.5, -1);
    check_numbers("FloatRange", "-1e308, 1e308", -1e308, 1e308, -1);
    check_numbers("FloatRange", "0.1, 0.1", 0.1, 0.1, -1);
    check_numbers("Float64", "", 0, 1000, -1);
    check_numbers("PositiveInt", "", 1, 2147483647, -1);
    check_numbers("Price", "", 0.99, 999.99, 2);
    check_numbers("Amount", "", 1, 10000, 2);
    check_numbers("Latitude", "", -90, 90, 6);
    check_numbers("Longitude", "", -180, 180, 6);

    /* Both ends of a small range come up, and nothing else. */
    mk_faker_call_t *c = compile("IntBetween", " 1 , 3 ");
    mk_faker_rng_t rng;
    mk_faker_rng_seed(&rng, 9);
    int seen[5] = {0};
    for (int i = 0; i < 300 && c != NULL; i++) {
        char *v = gen_one(c, &rng, NOW_MS);
        int x = v ? atoi(v) : 0;
        seen[x >= 0 && x <= 4 ? x : 0]++;
        free(v);
    }
    MK_CHECK(seen[1] > 0 && seen[2] > 0 && seen[3] > 0);
    MK_CHECK_INT(seen[0] + seen[4], 0);
    mk_faker_call_free(c);

    /* The widest range does not overflow (UBSan would stop the test) and stays signed. */
    c = compile("IntBetween", "-9223372036854775808, 9223372036854775807");
    int neg = 0, pos = 0;
    for (int i = 0; i < 200 && c != NULL; i++) {
        char *v = gen_one(c, &rng, NOW_MS);
        char *end = NULL;
        long long x = v ? strtoll(v, &end, 10) : 0;
        MK_CHECK(v != NULL && *end == '\0');
        neg += x < 0;
        pos += x > 0;
        free(v);
    }
    MK_CHECK(neg > 0 && pos > 0);
    mk_faker_call_free(c);

    c = compile("IntBetween", "9223372036854775806, 9223372036854775807");
    for (int i = 0; i < 50 && c != NULL; i++) {
        char *v = gen_one(c, &rng, NOW_MS);
        MK_CHECK(v &&
                 (strcmp(v, "9223372036854775806") == 0 || strcmp(v, "9223372036854775807") == 0));
        free(v);
    }
    mk_faker_call_free(c);

    /* The rng directly: inclusive bounds and the wide ranges. */
    MK_CHECK_INT(mk_faker_rng_between(&rng, 4, 4), 4);
    MK_CHECK_INT(mk_faker_rng_between(&rng, INT64_MIN, INT64_MIN), INT64_MIN);
    for (int i = 0; i < 1000; i++) {
        int64_t x = mk_faker_rng_between(&rng, INT64_MIN, INT64_MIN + 2);
        MK_CHECK(x >= INT64_MIN && x <= INT64_MIN + 2);
        double d = mk_faker_rng_double(&rng);
        MK_CHECK(d >= 0 && d < 1);
    }
}

static void test_time_generators(void)
{
    mk_faker_rng_t rng;
    mk_faker_rng_seed(&rng, 1);
    mk_faker_call_t *ts = compile("Timestamp", ""), *ut = compile("UnixTime", "");
    char *v = gen_one(ts, &rng, NOW_MS);
    MK_CHECK_STR(v, "2023-11-14T22:13:20.123Z");
    free(v);
    v = gen_one(ts, &rng, INT64_C(951782400000)); /* a leap day */
    MK_CHECK_STR(v, "2000-02-29T00:00:00.000Z");
    free(v);
    v = gen_one(ts, &rng, INT64_C(1709251199999));
    MK_CHECK_STR(v, "2024-02-29T23:59:59.999Z");
    free(v);
    v = gen_one(ut, &rng, NOW_MS);
    MK_CHECK_STR(v, "1700000000");
    free(v);
    v = gen_one(ut, &rng, -1500);
    MK_CHECK_STR(v, "-2");
    free(v);
    mk_faker_call_free(ts);
    mk_faker_call_free(ut);
    /* Dates still in range when now is near the epoch or far in the future. */
    check_all("Date", "", INT64_C(86400000) * 366 * 6, is_date);
    check_all("DateISO", "", INT64_C(4102444800000), is_date_iso); /* 2100 */
}

static void test_compile_errors(void)
{
    static const struct {
        const char *name, *args, *msg;
    } cases[] = {
        {"Nope", "", "unknown faker 'Nope'"},
        {"IntBetween", "5, 1", "IntBetween: min 5 is greater than max 1"},
        {"IntRange", "0,-1", "IntRange: min 0 is greater than max -1"},
        {"IntBetween", "5", "IntBetween: expects 2 arguments (min,max), got 1"},
        {"IntBetween", "", "IntBetween: expects 2 arguments (min,max), got 0"},
        {"IntBetween", "1,2,3", "IntBetween: expects 2 arguments (min,max), got 3"},
        {"IntBetween", "a, 2", "IntBetween: argument 1 'a' is not an integer"},
        {"IntBetween", "1, 2.5", "IntBetween: argument 2 '2.5' is not an integer"},
        {"IntBetween", "1, ", "IntBetween: argument 2 '' is not an integer"},
        {"IntBetween", "1 0, 20", "IntBetween: argument 1 '1 0' is not an integer"},
        {"IntBetween", "99999999999999999999, 1",
         "IntBetween: argument 1 '99999999999999999999' is out of the 64-bit range"},
        {"FloatRange", "x, 1", "FloatRange: argument 1 'x' is not a number"},
        {"FloatRange", "1, nan", "FloatRange: argument 2 'nan' is not a finite number"},
        {"FloatRange", "2.5, 1", "FloatRange: min 2.5 is greater than max 1"},
        {"FloatRange", "1", "FloatRange: expects 2 arguments (a,b), got 1"},
        {"UUID", "1", "UUID: takes no arguments"},
        {"name", "x", "Name: takes no arguments"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mk_faker_call_t *c = (mk_faker_call_t *)1;
        mk_err_t err = {0};
        int rc = mk_faker_compile(mk_str_of(cases[i].name), mk_str_of(cases[i].args), &c, &err);
        MK_CHECK_INT(rc, MK_EINVAL);
        MK_CHECK(c == NULL);
        MK_CHECK_STR(err.msg, cases[i].msg);
    }
    /* A NULL error object is allowed. */
    mk_faker_call_t *c = NULL;
    MK_CHECK_INT(mk_faker_compile(MK_STR_LIT("Nope"), MK_STR_LIT(""), &c, NULL), MK_EINVAL);
}

static void test_names_ignore_case_and_whitespace(void)
{
    static const struct {
        const char *name, *args, *canonical;
    } cases[] = {
        {"uuid", "", "UUID"},
        {"Uuid", "  ", "UUID"},
        {"intbetween", " 1 ,2 ", "IntBetween"},
        {"INTRANGE", "\t-5,\t5\n", "IntRange"},
        {"ipV4", "", "IPv4"},
        {"creditcardnumber", "", "CreditCardNumber"},
        {"floatrange", "1e-3 , 2E2", "FloatRange"},
        {" Name ", "", "Name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mk_faker_call_t *c = compile(cases[i].name, cases[i].args);
        if (c != NULL)
            MK_CHECK_STR(mk_faker_call_name(c), cases[i].canonical);
        mk_faker_call_free(c);
    }
}

static void test_kinds(void)
{
    static const char *const numbers[] = {"IntBetween",  "IntRange", "FloatRange", "Float64",
                                          "PositiveInt", "Price",    "Amount",     "UnixTime",
                                          "Latitude",    "Longitude"};
    for (size_t i = 0; i < N_NAMES; i++) {
        mk_faker_kind_t want = MK_FAKER_STRING;
        for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; k++)
            if (strcmp(all_names[i], numbers[k]) == 0)
                want = MK_FAKER_NUMBER;
        if (strcmp(all_names[i], "Bool") == 0)
            want = MK_FAKER_BOOL;
        mk_faker_call_t *c = compile(all_names[i], args_for(all_names[i]));
        if (c != NULL)
            mk_testing_record(mk_faker_call_kind(c) == want, __FILE__, __LINE__, all_names[i],
                              "wrong kind");
        mk_faker_call_free(c);
    }
}

static void test_reproducible(void)
{
    int differ = 0;
    for (size_t i = 0; i < N_NAMES; i++) {
        mk_faker_call_t *c = compile(all_names[i], args_for(all_names[i]));
        mk_faker_rng_t a, b, other;
        mk_faker_rng_seed(&a, 42);
        mk_faker_rng_seed(&b, 42);
        mk_faker_rng_seed(&other, 43);
        int same = 1, changed = 0;
        for (int k = 0; k < 5 && c != NULL; k++) {
            char *x = gen_one(c, &a, NOW_MS), *y = gen_one(c, &b, NOW_MS);
            char *z = gen_one(c, &other, NOW_MS);
            same = same && x && y && strcmp(x, y) == 0;
            changed = changed || (x && z && strcmp(x, z) != 0);
            free(x);
            free(y);
            free(z);
        }
        mk_testing_record(same, __FILE__, __LINE__, all_names[i], "same seed, different output");
        differ += changed;
        mk_faker_call_free(c);
    }
    /* Only Timestamp and UnixTime ignore the seed entirely. */
    MK_CHECK_INT(differ, (int)N_NAMES - 2);
}

static void test_list(void)
{
    json_t *list = mk_faker_list();
    MK_CHECK(json_is_array(list));
    MK_CHECK_INT(json_array_size(list), N_NAMES);
    const char *prev = "";
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        const char *name = json_string_value(json_object_get(item, "name"));
        const char *args = json_string_value(json_object_get(item, "args"));
        const char *kind = json_string_value(json_object_get(item, "kind"));
        const char *example = json_string_value(json_object_get(item, "example"));
        MK_CHECK(name && args && kind && example);
        if (!name || !args || !kind || !example)
            continue;
        mk_testing_record(strcasecmp(prev, name) < 0, __FILE__, __LINE__, "sorted", name);
        mk_testing_record(example[0] != '\0', __FILE__, __LINE__, "example", name);
        mk_faker_call_t *c = compile(name, args_for(name));
        if (c != NULL)
            MK_CHECK_STR(kind, mk_faker_kind_name(mk_faker_call_kind(c)));
        mk_faker_call_free(c);
        prev = name;
    }
    for (size_t k = 0; k < N_NAMES; k++) {
        int found = 0;
        json_array_foreach(list, i, item)
        {
            found += strcmp(json_string_value(json_object_get(item, "name")), all_names[k]) == 0;
        }
        mk_testing_record(found == 1, __FILE__, __LINE__, "listed", all_names[k]);
    }
    json_t *ib = NULL;
    json_array_foreach(list, i, item)
    {
        if (strcmp(json_string_value(json_object_get(item, "name")), "IntBetween") == 0)
            ib = item;
    }
    MK_CHECK_STR(json_string_value(json_object_get(ib, "args")), "(min,max)");
    MK_CHECK_STR(json_string_value(json_object_get(ib, "kind")), "number");
    json_t *again = mk_faker_list();
    MK_CHECK(json_equal(list, again));
    json_decref(again);
    json_decref(list);
}

static void test_buffer_limit(void)
{
    mk_faker_call_t *c = compile("Paragraph", "");
    mk_faker_rng_t rng;
    mk_faker_rng_seed(&rng, 1);
    mk_buf_t b;
    mk_buf_init(&b, 40);
    mk_buf_append_str(&b, "prefix:");
    MK_CHECK_INT(mk_faker_gen(c, &rng, NOW_MS, &b), MK_ETOOBIG);
    MK_CHECK_INT(b.len, 7);
    MK_CHECK_STR(b.data, "prefix:");
    mk_buf_free(&b);
    mk_faker_call_free(c);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_speed(void)
{
    mk_faker_call_t *c = compile("Name", "");
    mk_faker_rng_t rng;
    mk_faker_rng_seed(&rng, 1);
    mk_buf_t b;
    mk_buf_init(&b, 0);
    size_t total = 0;
    double t0 = now_seconds();
    for (int i = 0; i < 1000000 && c != NULL; i++) {
        mk_buf_reset(&b);
        mk_faker_gen(c, &rng, NOW_MS, &b);
        total += b.len;
    }
    double dt = now_seconds() - t0;
    printf("1e6 Name values in %.3f s (%zu bytes)\n", dt, total);
    MK_CHECK(total > 5000000);
    MK_CHECK(dt < 3.0);
    mk_buf_free(&b);
    mk_faker_call_free(c);
}

int main(void)
{
    MK_RUN(test_every_generator_produces_its_kind);
    MK_RUN(test_iban_check_digits_known_value);
    MK_RUN(test_luhn_helper_can_fail);
    MK_RUN(test_b64url_decoder_can_fail);
    MK_RUN(test_formats);
    MK_RUN(test_all_brands_and_countries_appear);
    MK_RUN(test_jwt);
    MK_RUN(test_numbers_in_range);
    MK_RUN(test_time_generators);
    MK_RUN(test_compile_errors);
    MK_RUN(test_names_ignore_case_and_whitespace);
    MK_RUN(test_kinds);
    MK_RUN(test_reproducible);
    MK_RUN(test_list);
    MK_RUN(test_buffer_limit);
    MK_RUN(test_speed);
    return mk_testing_done();
}
