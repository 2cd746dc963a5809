/* The embedded English-locale word lists the generators pick from (private to pkg/faker). Every
 * string is plain ASCII; names hold only letters so they can go into email addresses. */
#ifndef MK_FAKER_DATA_H
#define MK_FAKER_DATA_H

#include <stddef.h>

typedef struct mk_faker_pool {
    const char *const *items;
    size_t n;
} mk_faker_pool_t;

typedef struct mk_faker_pair {
    const char *name;
    const char *code;
} mk_faker_pair_t;

extern const mk_faker_pool_t mk_faker_first_names;
extern const mk_faker_pool_t mk_faker_last_names;
extern const mk_faker_pool_t mk_faker_cities;
extern const mk_faker_pool_t mk_faker_words;
extern const mk_faker_pool_t mk_faker_job_titles;
extern const mk_faker_pool_t mk_faker_company_suffixes;
extern const mk_faker_pool_t mk_faker_company_adjectives;
extern const mk_faker_pool_t mk_faker_company_nouns;
extern const mk_faker_pool_t mk_faker_user_agents;
extern const mk_faker_pool_t mk_faker_street_names;
extern const mk_faker_pool_t mk_faker_street_suffixes;
extern const mk_faker_pool_t mk_faker_email_domains;
extern const mk_faker_pool_t mk_faker_tlds;
extern const mk_faker_pool_t mk_faker_genders;

/* Countries with their ISO 3166-1 alpha-2 codes; US states with their postal abbreviations. */
extern const mk_faker_pair_t mk_faker_countries[];
extern const size_t mk_faker_countries_n;
extern const mk_faker_pair_t mk_faker_states[];
extern const size_t mk_faker_states_n;

#endif
