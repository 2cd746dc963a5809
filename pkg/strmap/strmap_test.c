/* Tests for the string map, including deletion inside probe runs. */
#include "strmap/strmap.h"
#include "testing/testing.h"

#include <stdint.h>
#include <stdio.h>

static void test_set_get_del_many(void)
{
    mk_strmap_t *m = mk_strmap_new();
    char key[32];
    for (uintptr_t i = 1; i <= 5000; i++) {
        snprintf(key, sizeof key, "k%lu", (unsigned long)i);
        MK_CHECK_INT(mk_strmap_set(m, mk_str_of(key), (void *)i), 0);
    }
    MK_CHECK_INT(mk_strmap_size(m), 5000);
    for (uintptr_t i = 1; i <= 5000; i += 2) {
        snprintf(key, sizeof key, "k%lu", (unsigned long)i);
        MK_CHECK(mk_strmap_del(m, mk_str_of(key)) == (void *)i);
    }
    int bad = 0;
    for (uintptr_t i = 1; i <= 5000; i++) {
        snprintf(key, sizeof key, "k%lu", (unsigned long)i);
        void *v = mk_strmap_get(m, mk_str_of(key));
        if ((i % 2 == 1 && v != NULL) || (i % 2 == 0 && v != (void *)i))
            bad++;
    }
    MK_CHECK_INT(bad, 0);
    size_t pos = 0, seen = 0;
    mk_str_t k;
    void *v;
    while (mk_strmap_next(m, &pos, &k, &v))
        seen++;
    MK_CHECK_INT(seen, 2500);
    mk_strmap_free(m);
}

static void test_replace_and_slices(void)
{
    mk_strmap_t *m = mk_strmap_new();
    mk_strmap_set(m, (mk_str_t){"abcdef", 3}, (void *)1);
    mk_strmap_set(m, mk_str_of("abc"), (void *)2);
    MK_CHECK_INT(mk_strmap_size(m), 1);
    MK_CHECK(mk_strmap_get(m, mk_str_of("abc")) == (void *)2);
    MK_CHECK(mk_strmap_get(m, mk_str_of("ab")) == NULL);
    MK_CHECK(mk_strmap_del(m, mk_str_of("zz")) == NULL);
    mk_strmap_free(m);
}

int main(void)
{
    MK_RUN(test_set_get_del_many);
    MK_RUN(test_replace_and_slices);
    return mk_testing_done();
}
