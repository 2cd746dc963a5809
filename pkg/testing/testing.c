/* Implementation of the unit-test harness in testing.h. */
#include "testing/testing.h"

#include <stdio.h>

static int passed, failed, failed_checks;
static int checks_failed_before;

void mk_testing_record(bool ok, const char *file, int line, const char *expr, const char *detail)
{
    if (ok)
        return;
    failed_checks++;
    fprintf(stderr, "%s:%d: check failed: %s%s%s\n", file, line, expr, detail ? " -- " : "",
            detail ? detail : "");
}

void mk_testing_run(const char *name, void (*fn)(void))
{
    checks_failed_before = failed_checks;
    fn();
    if (failed_checks == checks_failed_before) {
        passed++;
        fprintf(stderr, "ok   %s\n", name);
    } else {
        failed++;
        fprintf(stderr, "FAIL %s\n", name);
    }
}

int mk_testing_done(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && failed_checks == 0 ? 0 : 1;
}
