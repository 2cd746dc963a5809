/* The body shared by the importer's libFuzzer harnesses (<kind>_fuzz.c): the input is a document,
 * parsed then translated. Invariants: no crash, leak or overread (ASan); on success every mock has
 * an id and a route starting with '/'; on failure there is a message. */
#ifndef MK_IMPORTER_FUZZ_H
#define MK_IMPORTER_FUZZ_H

#include "importer/importer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*mk_importer_fuzz_fn)(json_t *doc, const mk_import_opts_t *o, mk_import_result_t *r,
                                   mk_err_t *err);

static inline void mk_importer_fuzz_check(int rc, const mk_err_t *err, const mk_import_result_t *r)
{
    size_t i;
    json_t *m;
    if (rc != 0 && err->msg[0] == 0) {
        fprintf(stderr, "failure %d without a message\n", rc);
        abort();
    }
    json_array_foreach(r->mocks, i, m)
    {
        const char *id = json_string_value(json_object_get(m, "id"));
        const char *route = json_string_value(json_object_get(json_object_get(m, "http"), "route"));
        if (id == NULL || route == NULL || route[0] != '/') {
            fprintf(stderr, "mock %zu without an id or a route\n", i);
            abort();
        }
    }
}

static inline int mk_importer_fuzz_doc(const uint8_t *data, size_t size, mk_importer_fuzz_fn fn)
{
    json_t *doc = NULL;
    mk_err_t err = {0};
    mk_import_result_t r;
    mk_import_result_init(&r);
    json_t *tags = json_pack("[s]", "fuzz");
    mk_import_opts_t o = {.id_seed = "ns", .path_prefix = "/p", .tags = tags};
    int rc = mk_import_parse((const char *)data, size, &doc, &err);
    if (rc == 0)
        rc = fn(doc, &o, &r, &err);
    mk_importer_fuzz_check(rc, &err, &r);
    json_decref(doc);
    json_decref(tags);
    mk_import_result_free(&r);
    return 0;
}

#endif
