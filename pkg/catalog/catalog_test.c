/* Tests for the catalog: publication, replacement, removal, and reclamation under readers. */
#include "catalog/catalog.h"
#include "testing/testing.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static mk_mock_t *make(const char *id, const char *ns, const char *route, int prio)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"id\":\"%s\",\"namespace\":\"%s\",\"priority\":%d,\"http\":{\"route\":\"%s\","
             "\"httpMethod\":\"GET\"},\"response\":{\"payload\":\"%s\"}}",
             id, ns, prio, route, id);
    json_t *def = json_loads(text, 0, NULL);
    mk_mock_t *m = NULL;
    mk_mock_parse_opts_t opts = {.now_ms = 1};
    mk_mock_parse(def, &opts, &m, NULL);
    json_decref(def);
    return m;
}

static const char *lookup(mk_catalog_t *c, const char *ns, const char *path)
{
    const mk_snapshot_t *s = mk_catalog_enter(c, 0);
    const mk_route_index_t *idx = mk_snapshot_index(s, mk_str_of(ns));
    const char *id = NULL;
    if (idx) {
        mk_route_iter_t it;
        mk_route_match_t m;
        mk_route_lookup(idx, MK_STR_LIT("GET"), mk_str_of(path), &it);
        if (mk_route_next(&it, &m))
            id = ((mk_mock_t *)m.value)->id;
    }
    mk_catalog_leave(c, 0);
    return id;
}

static void test_put_replace_remove(void)
{
    mk_catalog_t *c = mk_catalog_new(2);
    mk_mock_t *ms[] = {make("a", "n1", "/x", 0), make("b", "n2", "/x", 0)};
    bool replaced[2];
    MK_CHECK_INT(mk_catalog_put(c, ms, 2, replaced, NULL), 0);
    MK_CHECK(!replaced[0] && !replaced[1]);
    MK_CHECK_STR(lookup(c, "n1", "/x"), "a");
    MK_CHECK_STR(lookup(c, "n2", "/x"), "b");
    /* Replacing a moves it to another namespace: n1 is empty afterwards. */
    mk_mock_t *moved = make("a", "n2", "/y", 0);
    MK_CHECK_INT(mk_catalog_put(c, &moved, 1, replaced, NULL), 0);
    MK_CHECK(replaced[0]);
    MK_CHECK(lookup(c, "n1", "/x") == NULL);
    MK_CHECK_STR(lookup(c, "n2", "/y"), "a");
    const char *ids[] = {"b", "zz"};
    MK_CHECK_INT(mk_catalog_remove(c, ids, 2), 1);
    MK_CHECK(lookup(c, "n2", "/x") == NULL);
    json_t *counts = mk_catalog_counts(c);
    MK_CHECK_INT(json_integer_value(json_object_get(counts, "n2")), 1);
    json_decref(counts);
    mk_catalog_free(c);
}

static mk_catalog_t *shared;
static atomic_int running;

static void *reader(void *arg)
{
    (void)arg;
    unsigned slot = 1;
    long seen = 0;
    while (atomic_load(&running)) {
        const mk_snapshot_t *s = mk_catalog_enter(shared, slot);
        const mk_route_index_t *idx = mk_snapshot_index(s, MK_STR_LIT("ns"));
        if (idx) {
            mk_route_iter_t it;
            mk_route_match_t m;
            mk_route_lookup(idx, MK_STR_LIT("GET"), MK_STR_LIT("/r"), &it);
            while (mk_route_next(&it, &m))
                seen += ((mk_mock_t *)m.value)->responses[0].body_len > 0;
        }
        mk_catalog_leave(shared, slot);
    }
    return (void *)seen;
}

/* Writers republish while a reader walks snapshots; AddressSanitizer catches any early free. */
static void test_reclamation_under_reader(void)
{
    shared = mk_catalog_new(2);
    atomic_store(&running, 1);
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    for (int i = 0; i < 2000; i++) {
        char id[32];
        snprintf(id, sizeof id, "m%d", i % 50);
        mk_mock_t *m = make(id, "ns", "/r", i % 7);
        mk_catalog_put(shared, &m, 1, NULL, NULL);
        mk_catalog_reclaim(shared);
    }
    atomic_store(&running, 0);
    void *seen;
    pthread_join(t, &seen);
    MK_CHECK((long)seen > 0);
    json_t *counts = mk_catalog_counts(shared);
    MK_CHECK_INT(json_integer_value(json_object_get(counts, "ns")), 50);
    json_decref(counts);
    mk_catalog_free(shared);
}

/* One put over many namespaces (a load) gives every namespace exactly its own mocks, and a
 * later put rebuilds only the namespaces it touches while the others keep serving. */
static void test_many_namespaces_in_one_put(void)
{
    enum { NNS = 50, PER = 20 };
    mk_catalog_t *c = mk_catalog_new(1);
    mk_mock_t *ms[NNS * PER];
    char id[32], ns[16], route[32];
    for (int i = 0; i < NNS * PER; i++) {
        snprintf(id, sizeof id, "m%d", i);
        snprintf(ns, sizeof ns, "ns%d", i % NNS);
        snprintf(route, sizeof route, "/r%d", i / NNS);
        ms[i] = make(id, ns, route, 0);
    }
    MK_CHECK_INT(mk_catalog_put(c, ms, NNS * PER, NULL, NULL), 0);
    const mk_snapshot_t *s = mk_catalog_enter(c, 0);
    MK_CHECK_INT(mk_snapshot_mock_count(s), NNS * PER);
    for (int n = 0; n < NNS; n++) {
        snprintf(ns, sizeof ns, "ns%d", n);
        const mk_route_index_t *idx = mk_snapshot_index(s, mk_str_of(ns));
        MK_CHECK(idx != NULL && mk_route_index_count(idx) == PER);
    }
    mk_catalog_leave(c, 0);
    MK_CHECK_STR(lookup(c, "ns7", "/r3"), "m157");
    MK_CHECK(lookup(c, "ns7", "/r20") == NULL);
    mk_mock_t *more = make("extra", "ns7", "/r20", 0);
    MK_CHECK_INT(mk_catalog_put(c, &more, 1, NULL, NULL), 0);
    MK_CHECK_STR(lookup(c, "ns7", "/r20"), "extra");
    MK_CHECK_STR(lookup(c, "ns7", "/r3"), "m157");
    MK_CHECK_STR(lookup(c, "ns8", "/r3"), "m158");
    mk_catalog_free(c);
}

/* Lookups by id stay exact through growth and removals (the id table's deletions shift
 * entries back; a wrong shift loses or duplicates ids). */
static void test_ids_through_removals(void)
{
    enum { N = 3000 };
    mk_catalog_t *c = mk_catalog_new(1);
    static mk_mock_t *ms[N];
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        ms[i] = make(id, "n", "/x", 0);
    }
    MK_CHECK_INT(mk_catalog_put(c, ms, N, NULL, NULL), 0);
    static char names[N / 3 + 1][32];
    const char *gone[N / 3 + 1];
    size_t ngone = 0;
    for (int i = 0; i < N; i += 3) {
        snprintf(names[ngone], sizeof names[ngone], "id-%d", i);
        gone[ngone] = names[ngone];
        ngone++;
    }
    MK_CHECK_INT(mk_catalog_remove(c, gone, ngone), ngone);
    MK_CHECK_INT(mk_catalog_remove(c, gone, ngone), 0);
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        mk_mock_t *m = mk_catalog_get(c, id);
        if ((m != NULL) != (i % 3 != 0) || (m && strcmp(m->id, id) != 0))
            wrong++;
        mk_mock_unref(m);
    }
    MK_CHECK_INT(wrong, 0);
    bool replaced = true;
    mk_mock_t *again = make("id-0", "n", "/y", 0);
    MK_CHECK_INT(mk_catalog_put(c, &again, 1, &replaced, NULL), 0);
    MK_CHECK(!replaced);
    again = make("id-1", "n", "/z", 0);
    MK_CHECK_INT(mk_catalog_put(c, &again, 1, &replaced, NULL), 0);
    MK_CHECK(replaced);
    MK_CHECK_STR(lookup(c, "n", "/z"), "id-1");
    mk_catalog_free(c);
}

int main(void)
{
    MK_RUN(test_put_replace_remove);
    MK_RUN(test_many_namespaces_in_one_put);
    MK_RUN(test_ids_through_removals);
    MK_RUN(test_reclamation_under_reader);
    return mk_testing_done();
}
