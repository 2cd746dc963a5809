/* Fuzzes the YAML configuration: the YAML-to-JSON converter, and a settings table of every type
 * loaded from the input as the --config file (through a memfd, so no file is left behind). */
#include "config/config.h"
#include "fuzz.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct cfg {
    char *str;
    int64_t num;
    bool flag;
    size_t bytes;
    int64_t dur;
    int port;
    char *choice;
} cfg_t;

static const mk_config_spec_t spec[] = {
    {"STR", MK_CONFIG_STRING, NULL, offsetof(cfg_t, str), "a string", NULL, 0, 0},
    {"NUM", MK_CONFIG_INT, "3", offsetof(cfg_t, num), "an int", NULL, -1000, 1000},
    {"FLAG", MK_CONFIG_BOOL, "false", offsetof(cfg_t, flag), "a bool", NULL, 0, 0},
    {"BYTES", MK_CONFIG_BYTES, "1KiB", offsetof(cfg_t, bytes), "a size", NULL, 0, 0},
    {"DUR", MK_CONFIG_DURATION_MS, "1s", offsetof(cfg_t, dur), "a duration", NULL, 0, 86400000},
    {"PORT", MK_CONFIG_PORT, "80", offsetof(cfg_t, port), "a port", NULL, 0, 0},
    {"CHOICE", MK_CONFIG_ENUM, "a", offsetof(cfg_t, choice), "an enum", "a|b|sqlite", 0, 0},
};
#define NSPEC (sizeof spec / sizeof spec[0])

/* Visits at most *budget nodes: aliases share values, so a few hundred bytes of YAML can stand for
 * a billion nodes when expanded (a dump would never end; the converter itself never expands). */
static void walk(json_t *v, size_t *budget)
{
    if (*budget == 0)
        return;
    (*budget)--;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v) && *budget > 0; i++)
            walk(json_array_get(v, i), budget);
    } else if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child)
        {
            FZ_ASSERT(key != NULL);
            walk(child, budget);
        }
    } else if (json_is_string(v)) {
        FZ_ASSERT(json_string_value(v) != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = NULL;
    mk_err_t err;
    int rc = mk_config_yaml_to_json((const char *)data, size, &j, &err);
    if (rc == 0) {
        FZ_ASSERT(j != NULL);
        size_t budget = 100000;
        walk(j, &budget);
        json_decref(j);
    } else {
        FZ_ASSERT(err.code == rc && err.msg[0] != '\0');
    }

    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-config", 0);
        FZ_ASSERT(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FZ_ASSERT(ftruncate(fd, 0) == 0);
    FZ_ASSERT(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size);
    char *envp[] = {"PORT=8080", "NUM=", NULL};
    cfg_t cfg;
    memset(&cfg, 0xa5, sizeof cfg); /* the loader must not read what it did not write */
    rc = mk_config_load(spec, NSPEC, &cfg, path, envp, &err);
    if (rc == 0) {
        FZ_ASSERT(cfg.port == 8080);
        FZ_ASSERT(cfg.num >= -1000 && cfg.num <= 1000);
        FZ_ASSERT(cfg.choice != NULL);
    } else {
        FZ_ASSERT(err.code == rc && err.msg[0] != '\0');
        FZ_ASSERT(cfg.str == NULL && cfg.choice == NULL);
    }
    mk_config_free(spec, NSPEC, &cfg);
    return 0;
}
