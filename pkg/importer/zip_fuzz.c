/* libFuzzer harness for the zip reader behind WireMock folder uploads: damaged archives, lying
 * sizes and bombs must fail cleanly (ASan), and a success gives mappings and files. */
#include "importer/importer_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = NULL, *files = NULL;
    mk_err_t err = {0};
    int rc = mk_import_wiremock_zip(data, size, &doc, &files, &err);
    if ((rc == 0) != (doc != NULL && files != NULL) || (rc != 0 && err.msg[0] == 0))
        abort();
    json_decref(doc);
    json_decref(files);
    return 0;
}
