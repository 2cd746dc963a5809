/* libFuzzer harness for the GraphQL SDL importer (see importer_fuzz.h for the invariants). */
#include "importer/importer_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mk_err_t err = {0};
    mk_import_result_t r;
    mk_import_result_init(&r);
    int rc = mk_import_graphql((const char *)data, size, NULL, &r, &err);
    mk_importer_fuzz_check(rc, &err, &r);
    mk_import_result_free(&r);
    return 0;
}
