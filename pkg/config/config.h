/* Configuration for every binary: a table of typed settings filled from defaults, an optional flat
 * YAML file and the environment (in that order of precedence). The only module that includes
 * yaml.h. */
#ifndef MK_CONFIG_H
#define MK_CONFIG_H

#include "err/err.h"
#include "str/str.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MK_CONFIG_STRING,      /* char *, heap, owned by the struct; NULL when unset */
    MK_CONFIG_INT,         /* int64_t; min/max apply */
    MK_CONFIG_BOOL,        /* bool: true/false, 1/0, yes/no, on/off (any case) */
    MK_CONFIG_BYTES,       /* size_t: 1048576, 512KiB, 64MB, 1G; every unit is binary (K = 1024) */
    MK_CONFIG_DURATION_MS, /* int64_t ms: 1500, 500ms, 1.5s, 2m, 1h, 1h30m; min/max apply */
    MK_CONFIG_PORT,        /* int, 1..65535 */
    MK_CONFIG_ENUM,        /* char *, heap, owned; one of `choices`, stored as spelled there */
} mk_config_type_t;

/* A binary declares its table once; give every field (-Wextra rejects a short positional
 * initializer) or use designated ones:
 *     static const mk_config_spec_t spec[] = {
 *         {"HTTP_PORT", MK_CONFIG_PORT, "5770", offsetof(admin_cfg_t, http_port), "HTTP port",
 *          NULL, 0, 0},
 *         {.env = "DB_USE", .type = MK_CONFIG_ENUM, .def = "sqlite",
 *          .offset = offsetof(admin_cfg_t, db_use), .help = "Database",
 *          .choices = "sqlite|postgres"},
 *     };
 * then main calls mk_config_parse_args, mk_config_load(spec, n, &cfg, path, environ, &err) and,
 * at exit, mk_config_free. */
typedef struct mk_config_spec {
    /* The environment variable ("HTTP_PORT"); also the YAML key, matched case-insensitively, so
     * "http_port" works in the file. */
    const char *env;
    mk_config_type_t type;
    const char *def; /* default as text; NULL leaves the field unset (NULL / 0 / false) */
    size_t offset;   /* offsetof() of the field in the binary's struct */
    const char *help;
    const char *choices; /* ENUM only: "sqlite|postgres" (matched case-insensitively) */
    int64_t min, max;    /* INT, DURATION_MS (ms) and BYTES bounds, inclusive; 0,0 = unbounded */
} mk_config_spec_t;

/* Fills the fields of cfg that spec names. Each setting takes its default, then the YAML file's
 * value, then the environment's; every value given is checked, even one a later source overrides,
 * so a typo never hides. An empty environment variable counts as unset (shells and compose files
 * produce them for "not set"); a YAML null (`key:`, `~`, `null`) likewise keeps the default.
 *
 * yaml_path (may be NULL) names a file holding one flat mapping of setting to scalar; unknown or
 * repeated keys are errors naming the file and line. envp is a NULL-terminated "NAME=value" array
 * such as environ; NULL means no environment. Fields are overwritten without being freed, so cfg
 * should be fresh (zeroed or uninitialised). On failure every string field is freed and left NULL,
 * err says which setting, which source and which value, and mk_config_free is still safe.
 * Returns 0, MK_EINVAL (bad value, bad file content, bad spec), MK_ENOTFOUND (missing file),
 * MK_EIO (unreadable file), MK_ETOOBIG (file over 1 MiB) or MK_ENOMEM. */
int mk_config_load(const mk_config_spec_t *spec, size_t n, void *cfg, const char *yaml_path,
                   char *const *envp, mk_err_t *err);

/* Frees the string fields spec names and sets them to NULL. cfg may be NULL. */
void mk_config_free(const mk_config_spec_t *spec, size_t n, void *cfg);

/* Appends a help listing (one line per setting: name, type, help, default) to out. Returns 0 or
 * the buffer's MK_ETOOBIG / MK_ENOMEM. */
int mk_config_usage(const mk_config_spec_t *spec, size_t n, mk_buf_t *out);

/* Parses a binary's command line: `--config FILE`, `--config=FILE`, `-h`, `--help`. Anything else,
 * a missing FILE or a repeated --config is MK_EINVAL with a message naming the argument.
 * *config_path borrows from argv (NULL when not given); *help is set when -h/--help was seen. */
int mk_config_parse_args(int argc, char **argv, const char **config_path, bool *help,
                         mk_err_t *err);

/* Converts one YAML document (text need not be NUL-terminated) to jansson: mappings become objects,
 * sequences arrays; plain scalars are typed by the YAML 1.2 core schema (null, true/false, decimal,
 * 0x and 0o integers, floats); quoted and block scalars, and those tagged !!str or !, stay strings.
 * An alias shares the anchored value (one reference, not a copy). Empty input gives JSON null.
 * *out is a new reference the caller releases with json_decref. Errors (MK_EINVAL) give the line:
 * syntax, several documents, non-scalar or repeated mapping keys, unknown aliases, integers beyond
 * 64 bits, .inf/.nan (no JSON form), nesting deeper than 256. */
int mk_config_yaml_to_json(const char *text, size_t len, json_t **out, mk_err_t *err);

#endif
