/* libFuzzer harness for the postman importer (see importer_fuzz.h for the invariants). */
#include "importer/importer_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return mk_importer_fuzz_doc(data, size, mk_import_postman);
}
