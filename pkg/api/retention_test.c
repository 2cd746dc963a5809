/* Tests for the retention rule of finished runs and results: age, the newest N kept per group,
 * live ones never chosen nor counted, the batch limit taking the oldest first. */
#include "api/api_internal.h"
#include "testing/testing.h"

#define H 3600000LL

static size_t pick(const mk_api_retention_item_t *items, size_t n, int64_t max_age, size_t keep,
                   size_t limit, bool *prune)
{
    return mk_api_retention_select(items, n, 100 * H, max_age, keep, limit, prune);
}

static void test_age_and_keep(void)
{
    /* Group a: five finished runs 90..10 h old (shuffled), one live and very old; group b: one
     * finished run 99 h old. Retention 24 h, keep 2. */
    const mk_api_retention_item_t items[] = {
        {"a", 30 * H, false}, /* 70 h old */
        {"a", 90 * H, false}, /* 10 h old: young */
        {"a", 10 * H, false}, /* 90 h old */
        {"a", 1 * H, true},   /* live: stays, and not counted in keep */
        {"a", 50 * H, false}, /* 50 h old */
        {"a", 80 * H, false}, /* 20 h old: young */
        {"b", 1 * H, false},  /* only one of b: kept by keep */
    };
    bool prune[7];
    MK_CHECK_INT(pick(items, 7, 24 * H, 2, 100, prune), 3);
    const bool want[] = {true, false, true, false, true, false, false};
    for (size_t i = 0; i < 7; i++)
        MK_CHECK_INT(prune[i], want[i]);

    /* keep 4: only the oldest of a goes (its 5th newest finished). */
    MK_CHECK_INT(pick(items, 7, 24 * H, 4, 100, prune), 1);
    MK_CHECK(prune[2] && !prune[0] && !prune[4]);
    /* keep 0: b's lone run goes too. */
    MK_CHECK_INT(pick(items, 7, 24 * H, 0, 100, prune), 4);
    MK_CHECK(prune[6] && !prune[3]);
    /* A young run is never chosen however many there are. */
    MK_CHECK_INT(pick(items, 7, 95 * H, 0, 100, prune), 1);
    MK_CHECK(prune[6]);
    /* Retention 0: forever. */
    MK_CHECK_INT(pick(items, 7, 0, 0, 100, prune), 0);
    for (size_t i = 0; i < 7; i++)
        MK_CHECK(!prune[i]);
}

static void test_limit_oldest_first(void)
{
    mk_api_retention_item_t items[10];
    for (int i = 0; i < 10; i++)
        items[i] = (mk_api_retention_item_t){"g", (int64_t)((i * 7) % 10) * H, false};
    bool prune[10];
    /* All ten are over 24 h old; keep 0, a batch of 3: the three oldest (at 0, 1 and 2 h). */
    MK_CHECK_INT(pick(items, 10, 24 * H, 0, 3, prune), 3);
    for (int i = 0; i < 10; i++)
        MK_CHECK_INT(prune[i], items[i].at_ms < 3 * H);
    MK_CHECK_INT(pick(items, 0, 24 * H, 0, 3, prune), 0);
}

int main(void)
{
    MK_RUN(test_age_and_keep);
    MK_RUN(test_limit_oldest_first);
    return mk_testing_done();
}
