/* Tests for settings loading (every type, precedence, YAML file errors), usage text, command-line
 * parsing and YAML-to-JSON typing. */
#include "config/config.h"
#include "err/err.h"
#include "str/str.h"
#include "testing/testing.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct test_cfg {
    char *name;
    int64_t count;
    bool flag;
    size_t limit;
    int64_t timeout_ms;
    int port;
    char *db;
    char *token;
} test_cfg_t;

static const mk_config_spec_t spec[] = {
    {"NAME", MK_CONFIG_STRING, "mock", offsetof(test_cfg_t, name), "Instance name", NULL, 0, 0},
    {"COUNT", MK_CONFIG_INT, "5", offsetof(test_cfg_t, count), "Workers", NULL, 1, 100},
    {"FLAG", MK_CONFIG_BOOL, "false", offsetof(test_cfg_t, flag), "A switch", NULL, 0, 0},
    {"LIMIT", MK_CONFIG_BYTES, "1MiB", offsetof(test_cfg_t, limit), "Body limit", NULL, 0, 0},
    {"TIMEOUT", MK_CONFIG_DURATION_MS, "30s", offsetof(test_cfg_t, timeout_ms), "Timeout", NULL, 0,
     0},
    {"HTTP_PORT", MK_CONFIG_PORT, "5770", offsetof(test_cfg_t, port), "HTTP port", NULL, 0, 0},
    {"DB_USE", MK_CONFIG_ENUM, "sqlite", offsetof(test_cfg_t, db), "Database", "sqlite|postgres", 0,
     0},
    {"TOKEN", MK_CONFIG_STRING, NULL, offsetof(test_cfg_t, token), "API token", NULL, 0, 0},
};
#define NSPEC (sizeof spec / sizeof spec[0])

static char tmp_paths[16][64];
static int tmp_count;

/* Writes content to a fresh temporary file; removed at the end of the run. */
static const char *write_tmp(const char *content)
{
    char *path = tmp_paths[tmp_count++];
    snprintf(path, sizeof tmp_paths[0], "/tmp/mk_config_test_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return "/nonexistent";
    size_t len = strlen(content);
    MK_CHECK(write(fd, content, len) == (ssize_t)len);
    close(fd);
    return path;
}

/* Loads spec with one environment entry (or none) and no file. */
static int load_env(test_cfg_t *cfg, const char *entry, mk_err_t *err)
{
    char *envp[2] = {(char *)entry, NULL};
    mk_err_clear(err);
    return mk_config_load(spec, NSPEC, cfg, NULL, envp, err);
}

static void test_defaults(void)
{
    test_cfg_t cfg;
    mk_err_t err;
    memset(&cfg, 0xAB, sizeof cfg); /* load must not depend on a zeroed struct */
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, NULL, NULL, &err), 0);
    MK_CHECK_STR(cfg.name, "mock");
    MK_CHECK_INT(cfg.count, 5);
    MK_CHECK(!cfg.flag);
    MK_CHECK_INT(cfg.limit, 1048576);
    MK_CHECK_INT(cfg.timeout_ms, 30000);
    MK_CHECK_INT(cfg.port, 5770);
    MK_CHECK_STR(cfg.db, "sqlite");
    MK_CHECK(cfg.token == NULL);
    mk_config_free(spec, NSPEC, &cfg);
    MK_CHECK(cfg.name == NULL && cfg.db == NULL);
    mk_config_free(spec, NSPEC, NULL);
}

static void test_strings_and_enums(void)
{
    test_cfg_t cfg;
    mk_err_t err;
    MK_CHECK_INT(load_env(&cfg, "TOKEN=  s3cret ", &err), 0);
    MK_CHECK_STR(cfg.token, "  s3cret "); /* strings are taken verbatim */
    mk_config_free(spec, NSPEC, &cfg);

    MK_CHECK_INT(load_env(&cfg, "DB_USE=Postgres", &err), 0);
    MK_CHECK_STR(cfg.db, "postgres"); /* stored as the choice is spelled */
    mk_config_free(spec, NSPEC, &cfg);

    MK_CHECK_INT(load_env(&cfg, "DB_USE=mysql", &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "DB_USE: not one of sqlite|postgres: 'mysql' (from environment)");
    MK_CHECK(cfg.db == NULL && cfg.name == NULL); /* failure frees what was set */
    MK_CHECK_INT(load_env(&cfg, "DB_USE=sqlite|postgres", &err), MK_EINVAL);
    MK_CHECK_INT(load_env(&cfg, "DB_USE=sql", &err), MK_EINVAL);
}

static void test_ints(void)
{
    test_cfg_t cfg;
    mk_err_t err;
    MK_CHECK_INT(load_env(&cfg, "COUNT=42", &err), 0);
    MK_CHECK_INT(cfg.count, 42);
    mk_config_free(spec, NSPEC, &cfg);
    MK_CHECK_INT(load_env(&cfg, "COUNT= 100 ", &err), 0);
    MK_CHECK_INT(cfg.count, 100);
    mk_config_free(spec, NSPEC, &cfg);

    MK_CHECK_INT(load_env(&cfg, "COUNT=abc", &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "COUNT: not an integer: 'abc' (from environment)");
    MK_CHECK_INT(load_env(&cfg, "COUNT=101", &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "COUNT: out of range (1-100): '101' (from environment)");
    MK_CHECK_INT(load_env(&cfg, "COUNT=0", &err), MK_EINVAL);
    MK_CHECK_INT(load_env(&cfg, "COUNT=1.5", &err), MK_EINVAL);
    MK_CHECK_INT(load_env(&cfg, "COUNT=99999999999999999999", &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "COUNT: not an integer: '99999999999999999999' (from environment)");

    /* Unbounded: the whole int64 range. */
    int64_t v = 0;
    mk_config_spec_t wide = {"WIDE", MK_CONFIG_INT, "-9223372036854775808", 0, "", NULL, 0, 0};
    MK_CHECK_INT(mk_config_load(&wide, 1, &v, NULL, NULL, &err), 0);
    MK_CHECK(v == INT64_MIN);
    wide.def = "9223372036854775807";
    MK_CHECK_INT(mk_config_load(&wide, 1, &v, NULL, NULL, &err), 0);
    MK_CHECK(v == INT64_MAX);
    wide.def = "9223372036854775808";
    MK_CHECK_INT(mk_config_load(&wide, 1, &v, NULL, NULL, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "WIDE: not an integer: '9223372036854775808' (from default)");
}

static void test_bools(void)
{
    static const char *const yes[] = {"FLAG=true", "FLAG=1",    "FLAG=yes",
                                      "FLAG=on",   "FLAG=TRUE", "FLAG=Yes"};
    static const char *const no[] = {"FLAG=false", "FLAG=0", "FLAG=no", "FLAG=off", "FLAG=Off"};
    test_cfg_t cfg;
    mk_err_t err;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        MK_CHECK_INT(load_env(&cfg, yes[i], &err), 0);
        MK_CHECK(cfg.flag);
        mk_config_free(spec, NSPEC, &cfg);
    }
    bool on = true;
    mk_config_spec_t s = {"B", MK_CONFIG_BOOL, "true", 0, "", NULL, 0, 0};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        char *envp[2] = {(char *)no[i], NULL};
        s.env = "FLAG";
        on = true;
        MK_CHECK_INT(mk_config_load(&s, 1, &on, NULL, envp, &err), 0);
        MK_CHECK(!on);
    }
    MK_CHECK_INT(load_env(&cfg, "FLAG=maybe", &err), MK_EINVAL);
    MK_CHECK_STR(
        err.msg,
        "FLAG: not a boolean (true/false, yes/no, on/off, 1/0): 'maybe' (from environment)");
    MK_CHECK_INT(load_env(&cfg, "FLAG=2", &err), MK_EINVAL);
}

static void test_bytes(void)
{
    static const struct {
        const char *env;
        size_t want;
    } ok[] = {{"LIMIT=1048576", 1048576}, {"LIMIT=64MiB", 64u << 20},
              {"LIMIT=64MB", 64u << 20},  {"LIMIT=512KiB", 512u << 10},
              {"LIMIT=1G", 1u << 30},     {"LIMIT=64 mib", 64u << 20},
              {"LIMIT=12b", 12},          {"LIMIT=0", 0},
              {"LIMIT=2k", 2048}};
    test_cfg_t cfg;
    mk_err_t err;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        MK_CHECK_INT(load_env(&cfg, ok[i].env, &err), 0);
        MK_CHECK_INT(cfg.limit, ok[i].want);
        mk_config_free(spec, NSPEC, &cfg);
    }
    static const char *const bad[] = {"LIMIT=1.5G",         "LIMIT=-1",
                                      "LIMIT=10XB",         "LIMIT=MiB",
                                      "LIMIT=99999999999P", "LIMIT=18446744073709551616"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        MK_CHECK_INT(load_env(&cfg, bad[i], &err), MK_EINVAL);
    load_env(&cfg, "LIMIT=10XB", &err);
    MK_CHECK_STR(err.msg, "LIMIT: not a size (bytes, or a number with K/KiB/M/MiB/G/GiB/T): '10XB' "
                          "(from environment)");

    size_t sz = 0;
    mk_config_spec_t s = {"SZ", MK_CONFIG_BYTES, "2MiB", 0, "", NULL, 1024, 1048576};
    MK_CHECK_INT(mk_config_load(&s, 1, &sz, NULL, NULL, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "SZ: out of range (1024-1048576 bytes): '2MiB' (from default)");
    s.def = "1MiB";
    MK_CHECK_INT(mk_config_load(&s, 1, &sz, NULL, NULL, &err), 0);
    MK_CHECK_INT(sz, 1048576);
}

static void test_durations(void)
{
    static const struct {
        const char *env;
        int64_t want;
    } ok[] = {{"TIMEOUT=1500", 1500},       {"TIMEOUT=1.5s", 1500},    {"TIMEOUT=500ms", 500},
              {"TIMEOUT=2m", 120000},       {"TIMEOUT=1h", 3600000},   {"TIMEOUT=1h30m", 5400000},
              {"TIMEOUT=.5s", 500},         {"TIMEOUT=0", 0},          {"TIMEOUT=1m0.25s", 60250},
              {"TIMEOUT=0.001s", 1},        {"TIMEOUT=30m", 1800000},  {"TIMEOUT=30d", 2592000000},
              {"TIMEOUT=1d12h", 129600000}, {"TIMEOUT=0.5d", 43200000}};
    test_cfg_t cfg;
    mk_err_t err;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        MK_CHECK_INT(load_env(&cfg, ok[i].env, &err), 0);
        MK_CHECK_INT(cfg.timeout_ms, ok[i].want);
        mk_config_free(spec, NSPEC, &cfg);
    }
    static const char *const bad[] = {"TIMEOUT=-5",     "TIMEOUT=5x",
                                      "TIMEOUT=s",      "TIMEOUT=1.0005s",
                                      "TIMEOUT=0.5ms",  "TIMEOUT=1.5",
                                      "TIMEOUT=1h 30m", "TIMEOUT=-1s",
                                      "TIMEOUT=.s",     "TIMEOUT=9999999999999999h",
                                      "TIMEOUT=2D",     "TIMEOUT=999999999999999d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        MK_CHECK_INT(load_env(&cfg, bad[i], &err), MK_EINVAL);
        MK_CHECK(strstr(err.msg, "TIMEOUT: not a duration") == err.msg);
    }
    load_env(&cfg, "TIMEOUT=soon", &err);
    MK_CHECK_STR(err.msg, "TIMEOUT: not a duration in whole milliseconds (1500, 500ms, 1.5s, 2m, "
                          "1h, 30d): 'soon' (from environment)");

    int64_t ms = 0;
    mk_config_spec_t s = {"D", MK_CONFIG_DURATION_MS, "2h", 0, "", NULL, 100, 3600000};
    MK_CHECK_INT(mk_config_load(&s, 1, &ms, NULL, NULL, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "D: out of range (100-3600000 ms): '2h' (from default)");
}

static void test_ports(void)
{
    test_cfg_t cfg;
    mk_err_t err;
    MK_CHECK_INT(load_env(&cfg, "HTTP_PORT=1", &err), 0);
    MK_CHECK_INT(cfg.port, 1);
    mk_config_free(spec, NSPEC, &cfg);
    MK_CHECK_INT(load_env(&cfg, "HTTP_PORT=65535", &err), 0);
    MK_CHECK_INT(cfg.port, 65535);
    mk_config_free(spec, NSPEC, &cfg);

    MK_CHECK_INT(load_env(&cfg, "HTTP_PORT=abc", &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "HTTP_PORT: not a port number (1-65535): 'abc' (from environment)");
    MK_CHECK_INT(load_env(&cfg, "HTTP_PORT=0", &err), MK_EINVAL);
    MK_CHECK_INT(load_env(&cfg, "HTTP_PORT=65536", &err), MK_EINVAL);
    MK_CHECK_INT(load_env(&cfg, "HTTP_PORT=-80", &err), MK_EINVAL);
    MK_CHECK_INT(load_env(&cfg, "HTTP_PORT=80x", &err), MK_EINVAL);
}

static void test_long_value_is_cut_in_message(void)
{
    test_cfg_t cfg;
    mk_err_t err;
    char entry[400] = "HTTP_PORT=";
    memset(entry + 10, 'x', 300);
    entry[310] = '\0';
    MK_CHECK_INT(load_env(&cfg, entry, &err), MK_EINVAL);
    MK_CHECK(strstr(err.msg, "...' (from environment)") != NULL);
    MK_CHECK(strlen(err.msg) < 200);
}

static void test_precedence(void)
{
    const char *path = write_tmp("# settings\n"
                                 "count: 7\n"
                                 "HTTP_PORT: 8080\n"
                                 "Db_Use: postgres\n"
                                 "token: \"\"\n"
                                 "name:\n"
                                 "flag: yes\n");
    char *envp[] = {"HTTP_PORT=9090", "TIMEOUT=", "OTHER=1", "COUNT_X=3", NULL};
    test_cfg_t cfg;
    mk_err_t err;
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, path, envp, &err), 0);
    MK_CHECK_INT(cfg.port, 9090);        /* environment beats file */
    MK_CHECK_INT(cfg.count, 7);          /* file beats default */
    MK_CHECK_STR(cfg.db, "postgres");    /* key matched case-insensitively */
    MK_CHECK_STR(cfg.token, "");         /* quoted empty string is a value */
    MK_CHECK_STR(cfg.name, "mock");      /* YAML null keeps the default */
    MK_CHECK_INT(cfg.timeout_ms, 30000); /* empty environment variable counts as unset */
    MK_CHECK(cfg.flag);
    mk_config_free(spec, NSPEC, &cfg);

    /* A bad file value is reported even when the environment overrides it. */
    const char *bad = write_tmp("http_port: 99999\n");
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, bad, envp, &err), MK_EINVAL);
    char want[256];
    snprintf(want, sizeof want, "HTTP_PORT: not a port number (1-65535): '99999' (from %s:1)", bad);
    MK_CHECK_STR(err.msg, want);
}

static void test_file_errors(void)
{
    test_cfg_t cfg;
    mk_err_t err;
    char want[256];

    const char *unknown = write_tmp("name: a\ncount: 3\nhtp_port: 80\n");
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, unknown, NULL, &err), MK_EINVAL);
    snprintf(want, sizeof want, "%s:3: unknown setting 'htp_port'", unknown);
    MK_CHECK_STR(err.msg, want);
    MK_CHECK(cfg.name == NULL);

    const char *repeated = write_tmp("count: 3\n\nCOUNT: 4\n");
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, repeated, NULL, &err), MK_EINVAL);
    snprintf(want, sizeof want, "%s:3: setting 'COUNT' repeated (first on line 1)", repeated);
    MK_CHECK_STR(err.msg, want);

    const char *nested = write_tmp("count: 3\nname:\n  first: a\n");
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, nested, NULL, &err), MK_EINVAL);
    snprintf(want, sizeof want, "%s:3: setting 'name' must be a single value, not a mapping",
             nested);
    MK_CHECK_STR(err.msg, want);

    const char *list = write_tmp("name: [a, b]\n");
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, list, NULL, &err), MK_EINVAL);
    snprintf(want, sizeof want, "%s:1: setting 'name' must be a single value, not a list", list);
    MK_CHECK_STR(err.msg, want);

    const char *syntax = write_tmp("count: 3\nname: a\n  bad: indent\n");
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, syntax, NULL, &err), MK_EINVAL);
    snprintf(want, sizeof want, "%s:3: ", syntax);
    MK_CHECK(strncmp(err.msg, want, strlen(want)) == 0);

    const char *top = write_tmp("- count\n- name\n");
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, top, NULL, &err), MK_EINVAL);
    snprintf(want, sizeof want, "%s:1: expected a mapping of settings (KEY: value), found a list",
             top);
    MK_CHECK_STR(err.msg, want);

    const char *two = write_tmp("count: 3\n---\ncount: 4\n");
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, two, NULL, &err), MK_EINVAL);
    snprintf(want, sizeof want, "%s:2: only one YAML document is allowed", two);
    MK_CHECK_STR(err.msg, want);

    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, "/nonexistent/config.yaml", NULL, &err),
                 MK_ENOTFOUND);
    MK_CHECK_STR(err.msg, "/nonexistent/config.yaml: cannot open: No such file or directory");
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, "/tmp", NULL, &err), MK_EIO);
    MK_CHECK(strncmp(err.msg, "/tmp: cannot read", 17) == 0);
    MK_CHECK(cfg.name == NULL && cfg.db == NULL);

    /* Empty and comment-only files hold no settings: defaults stand. */
    const char *empty = write_tmp("");
    const char *comments = write_tmp("# nothing here\n---\n");
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, empty, NULL, &err), 0);
    MK_CHECK_INT(cfg.port, 5770);
    mk_config_free(spec, NSPEC, &cfg);
    MK_CHECK_INT(mk_config_load(spec, NSPEC, &cfg, comments, NULL, &err), 0);
    MK_CHECK_STR(cfg.db, "sqlite");
    mk_config_free(spec, NSPEC, &cfg);
}

static void test_bad_spec(void)
{
    char *s = NULL;
    mk_err_t err;
    mk_config_spec_t no_choices = {"DB", MK_CONFIG_ENUM, NULL, 0, "", NULL, 0, 0};
    MK_CHECK_INT(mk_config_load(&no_choices, 1, &s, NULL, NULL, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "DB: an enum setting needs choices");

    int64_t pair[2];
    mk_config_spec_t twice[] = {
        {"X", MK_CONFIG_INT, NULL, 0, "", NULL, 0, 0},
        {"x", MK_CONFIG_INT, NULL, sizeof(int64_t), "", NULL, 0, 0},
    };
    MK_CHECK_INT(mk_config_load(twice, 2, pair, NULL, NULL, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "x: declared twice");

    mk_config_spec_t inverted = {"N", MK_CONFIG_INT, NULL, 0, "", NULL, 10, 1};
    MK_CHECK_INT(mk_config_load(&inverted, 1, pair, NULL, NULL, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "N: min 10 is above max 1");
}

static void test_usage(void)
{
    static const mk_config_spec_t small[] = {
        {"HTTP_PORT", MK_CONFIG_PORT, "5770", 0, "HTTP listen port", NULL, 0, 0},
        {"DB_USE", MK_CONFIG_ENUM, "sqlite", 0, "Database", "sqlite|postgres", 0, 0},
        {"WORKERS", MK_CONFIG_INT, NULL, 0, "Worker threads", NULL, 1, 64},
        {"API_TOKEN", MK_CONFIG_STRING, NULL, 0, NULL, NULL, 0, 0},
    };
    mk_buf_t b;
    mk_buf_init(&b, 0);
    MK_CHECK_INT(mk_config_usage(small, 4, &b), 0);
    MK_CHECK_STR(b.data, "  HTTP_PORT  port             HTTP listen port (default: 5770)\n"
                         "  DB_USE     sqlite|postgres  Database (default: sqlite)\n"
                         "  WORKERS    integer 1..64    Worker threads\n"
                         "  API_TOKEN  string           \n");
    mk_buf_free(&b);

    mk_buf_init(&b, 20);
    MK_CHECK_INT(mk_config_usage(small, 4, &b), MK_ETOOBIG);
    mk_buf_free(&b);
}

static void test_args(void)
{
    const char *path;
    bool help;
    mk_err_t err;

    char *none[] = {"mockarty", NULL};
    MK_CHECK_INT(mk_config_parse_args(1, none, &path, &help, &err), 0);
    MK_CHECK(path == NULL && !help);

    char *sep[] = {"mockarty", "--config", "a.yaml", NULL};
    MK_CHECK_INT(mk_config_parse_args(3, sep, &path, &help, &err), 0);
    MK_CHECK_STR(path, "a.yaml");
    MK_CHECK(!help);

    char *eq[] = {"mockarty", "--config=b.yaml", "-h", NULL};
    MK_CHECK_INT(mk_config_parse_args(3, eq, &path, &help, &err), 0);
    MK_CHECK_STR(path, "b.yaml");
    MK_CHECK(help);

    char *longhelp[] = {"mockarty", "--help", NULL};
    MK_CHECK_INT(mk_config_parse_args(2, longhelp, &path, &help, &err), 0);
    MK_CHECK(help);

    char *missing[] = {"mockarty", "--config", NULL};
    MK_CHECK_INT(mk_config_parse_args(2, missing, &path, &help, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "--config needs a file path");

    char *empty[] = {"mockarty", "--config=", NULL};
    MK_CHECK_INT(mk_config_parse_args(2, empty, &path, &help, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "--config needs a file path");

    char *twice[] = {"mockarty", "--config", "a", "--config=b", NULL};
    MK_CHECK_INT(mk_config_parse_args(4, twice, &path, &help, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "--config given twice ('a' and 'b')");

    char *unknown[] = {"mockarty", "--port", "80", NULL};
    MK_CHECK_INT(mk_config_parse_args(3, unknown, &path, &help, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "unknown argument '--port' (accepted: --config FILE, --help)");

    char *positional[] = {"mockarty", "config.yaml", NULL};
    MK_CHECK_INT(mk_config_parse_args(2, positional, &path, &help, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "unknown argument 'config.yaml' (accepted: --config FILE, --help)");

    char *prefix[] = {"mockarty", "--configx", NULL};
    MK_CHECK_INT(mk_config_parse_args(2, prefix, &path, &help, &err), MK_EINVAL);
}

/* Converts yaml and compares it with the JSON text want (decoded with integers and reals kept). */
static void check_yaml(const char *yaml, const char *want)
{
    json_t *got = NULL;
    mk_err_t err = {0};
    int rc = mk_config_yaml_to_json(yaml, strlen(yaml), &got, &err);
    MK_CHECK_INT(rc, 0);
    if (rc)
        fprintf(stderr, "  yaml error: %s\n", err.msg);
    json_t *expect = json_loads(want, JSON_DECODE_ANY, NULL);
    MK_CHECK(expect != NULL);
    bool same = got && expect && json_equal(got, expect);
    if (!same) {
        char *dump = got ? json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
        fprintf(stderr, "  got %s, want %s\n", dump ? dump : "(null)", want);
        free(dump);
    }
    MK_CHECK(same);
    json_decref(got);
    json_decref(expect);
}

static void check_yaml_error(const char *yaml, const char *want)
{
    json_t *got = (json_t *)1;
    mk_err_t err = {0};
    MK_CHECK_INT(mk_config_yaml_to_json(yaml, strlen(yaml), &got, &err), MK_EINVAL);
    MK_CHECK(got == NULL);
    MK_CHECK_STR(err.msg, want);
}

static void test_yaml_to_json_typing(void)
{
    check_yaml("null_a: ~\nnull_b:\nnull_c: null\nnull_d: NULL\n",
               "{\"null_a\":null,\"null_b\":null,\"null_c\":null,\"null_d\":null}");
    check_yaml("t: true\nT: True\nf: FALSE\nyes_is_text: yes\non_is_text: on\n",
               "{\"t\":true,\"T\":true,\"f\":false,\"yes_is_text\":\"yes\",\"on_is_text\":\"on\"}");
    check_yaml("a: 42\nb: -7\nc: +3\nd: 0x1F\ne: 0o17\nf: 007\ng: 9223372036854775807\n",
               "{\"a\":42,\"b\":-7,\"c\":3,\"d\":31,\"e\":15,\"f\":7,\"g\":9223372036854775807}");
    check_yaml("a: 1.5\nb: .5\nc: 1e3\nd: -2.5E-1\ne: 3.\n",
               "{\"a\":1.5,\"b\":0.5,\"c\":1000.0,\"d\":-0.25,\"e\":3.0}");
    /* Quoted, block and !!str scalars stay strings; so do things that only look like numbers. */
    check_yaml("a: \"123\"\nb: '1.5'\nc: !!str 42\nd: ! true\ne: |\n  line\nf: 1_000\ng: 0x\n"
               "h: 1.2.3\ni: \"null\"\nj: 0b101\n",
               "{\"a\":\"123\",\"b\":\"1.5\",\"c\":\"42\",\"d\":\"true\",\"e\":\"line\\n\","
               "\"f\":\"1_000\",\"g\":\"0x\",\"h\":\"1.2.3\",\"i\":\"null\",\"j\":\"0b101\"}");
    check_yaml("list:\n  - 1\n  - two\n  - [3, {x: y}]\nmap: {a: {b: []}}\n",
               "{\"list\":[1,\"two\",[3,{\"x\":\"y\"}]],\"map\":{\"a\":{\"b\":[]}}}");
    check_yaml(
        "base: &b {port: 80}\ncopy: *b\nname: &n web\nagain: *n\n",
        "{\"base\":{\"port\":80},\"copy\":{\"port\":80},\"name\":\"web\",\"again\":\"web\"}");
    check_yaml("", "null");
    check_yaml("# only a comment\n", "null");
    check_yaml("---\n- a\n...\n", "[\"a\"]");
    check_yaml("42", "42");
    check_yaml("k: \"caf\\u00e9\"\n", "{\"k\":\"caf\\u00e9\"}");

    /* A kubeconfig-shaped document, as the Kubernetes loader will feed it. */
    check_yaml("apiVersion: v1\nkind: Config\ncurrent-context: dev\nclusters:\n"
               "- name: dev\n  cluster:\n    server: https://127.0.0.1:6443\n"
               "    insecure-skip-tls-verify: true\n",
               "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"dev\","
               "\"clusters\":[{\"name\":\"dev\",\"cluster\":{\"server\":\"https://127.0.0.1:6443\","
               "\"insecure-skip-tls-verify\":true}}]}");
}

static void test_yaml_to_json_errors(void)
{
    check_yaml_error("a: 1\nb: 2\na: 3\n", "line 3: duplicate key 'a'");
    check_yaml_error("a: 1\n---\nb: 2\n", "line 2: only one YAML document is allowed");
    check_yaml_error("a: .inf\n", "line 1: '.inf' has no JSON representation");
    check_yaml_error("a:\n  b: .NaN\n", "line 2: '.NaN' has no JSON representation");
    check_yaml_error("n: 9223372036854775808\n",
                     "line 1: integer out of 64-bit range: '9223372036854775808'");
    check_yaml_error("n: 1e999\n", "line 1: number out of range: '1e999'");
    check_yaml_error("a: *nowhere\n", "line 1: unknown alias '*nowhere'");
    check_yaml_error("? [a]\n: b\n", "line 1: mapping keys must be scalars, not a list");

    json_t *got = NULL;
    mk_err_t err = {0};
    const char *bad = "a: 1\nb: [1, 2\nc: 3\n";
    MK_CHECK_INT(mk_config_yaml_to_json(bad, strlen(bad), &got, &err), MK_EINVAL);
    MK_CHECK(strncmp(err.msg, "line ", 5) == 0 && strstr(err.msg, "flow sequence") != NULL);
    MK_CHECK(got == NULL);

    /* Deep nesting is refused before it can exhaust the stack. */
    char deep[1200];
    memset(deep, '[', 600);
    memset(deep + 600, ']', 600);
    MK_CHECK_INT(mk_config_yaml_to_json(deep, sizeof deep, &got, &err), MK_EINVAL);
    MK_CHECK_STR(err.msg, "line 1: nested deeper than 256 levels");

    /* The length bounds the input: no NUL terminator needed. */
    const char *part = "a: 1\nb: 2";
    MK_CHECK_INT(mk_config_yaml_to_json(part, 4, &got, &err), 0);
    MK_CHECK(json_is_object(got) && json_object_size(got) == 1);
    json_decref(got);
}

int main(void)
{
    MK_RUN(test_defaults);
    MK_RUN(test_strings_and_enums);
    MK_RUN(test_ints);
    MK_RUN(test_bools);
    MK_RUN(test_bytes);
    MK_RUN(test_durations);
    MK_RUN(test_ports);
    MK_RUN(test_long_value_is_cut_in_message);
    MK_RUN(test_precedence);
    MK_RUN(test_file_errors);
    MK_RUN(test_bad_spec);
    MK_RUN(test_usage);
    MK_RUN(test_args);
    MK_RUN(test_yaml_to_json_typing);
    MK_RUN(test_yaml_to_json_errors);
    for (int i = 0; i < tmp_count; i++)
        unlink(tmp_paths[i]);
    return mk_testing_done();
}
