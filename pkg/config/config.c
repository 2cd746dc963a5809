/* Settings tables filled from defaults, a flat YAML file and the environment; command-line parsing;
 * YAML-to-JSON conversion for modules that read YAML documents (kubeconfig). Wraps libyaml. */
#include "config/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define CONFIG_FILE_MAX (1024 * 1024)
#define YAML_DEPTH_MAX  256
#define SHOWN_VALUE_MAX 80 /* longest value quoted back in an error message */

/* ---- value parsing ---- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static mk_str_t trim(const char *text)
{
    mk_str_t s = mk_str_of(text);
    while (s.len && is_space(s.base[0])) {
        s.base++;
        s.len--;
    }
    while (s.len && is_space(s.base[s.len - 1]))
        s.len--;
    return s;
}

static bool parse_bool(mk_str_t s, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (mk_str_caseeq(s, mk_str_of(yes[i]))) {
            *out = true;
            return true;
        }
        if (mk_str_caseeq(s, mk_str_of(no[i]))) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Unsigned decimal digits at s[*i...]; advances *i. False when there are none or on overflow. */
static bool parse_digits(mk_str_t s, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    size_t start = *i;
    for (; *i < s.len && is_digit(s.base[*i]); (*i)++) {
        uint64_t d = (uint64_t)(s.base[*i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return *i > start;
}

/* A byte count with an optional unit. Every unit is binary (K = KB = KiB = 1024), as in Docker's
 * and nginx's size settings: a memory limit written "64MB" almost always means 64 MiB. */
static bool parse_bytes(mk_str_t s, uint64_t *out)
{
    static const struct {
        const char *name;
        unsigned shift;
    } units[] = {{"", 0},    {"b", 0},    {"k", 10}, {"kb", 10}, {"kib", 10}, {"m", 20},
                 {"mb", 20}, {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40},
                 {"tb", 40}, {"tib", 40}, {"p", 50}, {"pb", 50}, {"pib", 50}};
    size_t i = 0;
    uint64_t v;
    if (!parse_digits(s, &i, &v))
        return false;
    while (i < s.len && s.base[i] == ' ')
        i++;
    mk_str_t unit = {s.base + i, s.len - i};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        if (!mk_str_caseeq(unit, mk_str_of(units[u].name)))
            continue;
        if (v > (UINT64_MAX >> units[u].shift))
            return false;
        *out = v << units[u].shift;
        return true;
    }
    return false;
}

/* Milliseconds: a bare integer, or one or more <number><unit> parts with units ms, s, m, h
 * ("1.5s", "1h30m"), as Go's time.ParseDuration reads them, which Mockarty users already write,
 * plus d (24 h, "30d"), which Go lacks but retention settings want. Fractions must come out as
 * whole milliseconds. */
static bool parse_duration(mk_str_t s, int64_t *out)
{
    int64_t bare;
    if (mk_str_to_i64(s, &bare)) {
        if (bare < 0)
            return false;
        *out = bare;
        return true;
    }
    size_t i = 0;
    int64_t total = 0;
    if (s.len == 0)
        return false;
    while (i < s.len) {
        uint64_t whole = 0, frac = 0, scale = 1;
        bool have_whole = parse_digits(s, &i, &whole);
        bool have_frac = false;
        if (i < s.len && s.base[i] == '.') {
            i++;
            for (; i < s.len && is_digit(s.base[i]); i++) {
                if (scale >= 1000000000u)
                    return false;
                frac = frac * 10 + (uint64_t)(s.base[i] - '0');
                scale *= 10;
                have_frac = true;
            }
        }
        if (!have_whole && !have_frac)
            return false;
        int64_t mult;
        if (s.len - i >= 2 && s.base[i] == 'm' && s.base[i + 1] == 's') {
            mult = 1;
            i += 2;
        } else if (i < s.len && s.base[i] == 's') {
            mult = 1000;
            i++;
        } else if (i < s.len && s.base[i] == 'm') {
            mult = 60 * 1000;
            i++;
        } else if (i < s.len && s.base[i] == 'h') {
            mult = 60 * 60 * 1000;
            i++;
        } else if (i < s.len && s.base[i] == 'd') {
            mult = 24 * 60 * 60 * 1000;
            i++;
        } else {
            return false;
        }
        /* frac < 1e9 and mult <= 8.64e7, so frac * mult fits comfortably. */
        uint64_t frac_ms = frac * (uint64_t)mult;
        if (frac_ms % scale != 0)
            return false;
        if (whole > (uint64_t)(INT64_MAX / mult))
            return false;
        int64_t part = (int64_t)whole * mult + (int64_t)(frac_ms / scale);
        if (part > INT64_MAX - total)
            return false;
        total += part;
    }
    *out = total;
    return true;
}

/* The choice in "a|b|c" equal (ignoring case) to value, or an empty slice. */
static mk_str_t find_choice(const char *choices, mk_str_t value)
{
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        mk_str_t choice = {p, len};
        if (len && mk_str_caseeq(choice, value))
            return choice;
        if (bar == NULL)
            break;
        p = bar + 1;
    }
    return (mk_str_t){NULL, 0};
}

/* ---- applying values to the struct ---- */

static int bad_value(const mk_config_spec_t *s, const char *text, const char *source, mk_err_t *err,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int bad_value(const mk_config_spec_t *s, const char *text, const char *source, mk_err_t *err,
                     const char *fmt, ...)
{
    char problem[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    size_t len = strlen(text);
    int shown = len > SHOWN_VALUE_MAX ? SHOWN_VALUE_MAX : (int)len;
    return mk_err_set(err, MK_EINVAL, "%s: %s: '%.*s%s' (from %s)", s->env, problem, shown, text,
                      len > SHOWN_VALUE_MAX ? "..." : "", source);
}

static bool has_bounds(const mk_config_spec_t *s)
{
    return s->min != 0 || s->max != 0;
}

static bool in_bounds(const mk_config_spec_t *s, int64_t v)
{
    return !has_bounds(s) || (v >= s->min && v <= s->max);
}

static int set_string(void *field, mk_str_t value, mk_err_t *err)
{
    char *copy = mk_str_dup(value);
    if (copy == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    char **slot = field;
    free(*slot);
    *slot = copy;
    return 0;
}

/* Parses text as setting s and stores it; source ("environment", "default", "file.yaml:3") only
 * goes into error messages. */
static int apply(const mk_config_spec_t *s, void *cfg, const char *text, const char *source,
                 mk_err_t *err)
{
    void *field = (char *)cfg + s->offset;
    mk_str_t v = trim(text);
    switch (s->type) {
    case MK_CONFIG_STRING:
        return set_string(field, mk_str_of(text), err);
    case MK_CONFIG_ENUM: {
        mk_str_t choice = find_choice(s->choices, v);
        if (choice.base == NULL)
            return bad_value(s, text, source, err, "not one of %s", s->choices);
        return set_string(field, choice, err);
    }
    case MK_CONFIG_INT: {
        int64_t n;
        if (!mk_str_to_i64(v, &n))
            return bad_value(s, text, source, err, "not an integer");
        if (!in_bounds(s, n))
            return bad_value(s, text, source, err, "out of range (%lld-%lld)", (long long)s->min,
                             (long long)s->max);
        *(int64_t *)field = n;
        return 0;
    }
    case MK_CONFIG_BOOL: {
        bool b;
        if (!parse_bool(v, &b))
            return bad_value(s, text, source, err,
                             "not a boolean (true/false, yes/no, on/off, 1/0)");
        *(bool *)field = b;
        return 0;
    }
    case MK_CONFIG_BYTES: {
        uint64_t n;
        if (!parse_bytes(v, &n) || n > SIZE_MAX)
            return bad_value(s, text, source, err,
                             "not a size (bytes, or a number with K/KiB/M/MiB/G/GiB/T)");
        if (has_bounds(s) && (n > INT64_MAX || !in_bounds(s, (int64_t)n)))
            return bad_value(s, text, source, err, "out of range (%lld-%lld bytes)",
                             (long long)s->min, (long long)s->max);
        *(size_t *)field = (size_t)n;
        return 0;
    }
    case MK_CONFIG_DURATION_MS: {
        int64_t ms;
        if (!parse_duration(v, &ms))
            return bad_value(
                s, text, source, err,
                "not a duration in whole milliseconds (1500, 500ms, 1.5s, 2m, 1h, 30d)");
        if (!in_bounds(s, ms))
            return bad_value(s, text, source, err, "out of range (%lld-%lld ms)", (long long)s->min,
                             (long long)s->max);
        *(int64_t *)field = ms;
        return 0;
    }
    case MK_CONFIG_PORT: {
        int64_t port;
        if (!mk_str_to_i64(v, &port) || port < 1 || port > 65535)
            return bad_value(s, text, source, err, "not a port number (1-65535)");
        *(int *)field = (int)port;
        return 0;
    }
    }
    return mk_err_set(err, MK_EINVAL, "%s: unknown setting type %d", s->env, (int)s->type);
}

static void zero_field(const mk_config_spec_t *s, void *cfg)
{
    void *field = (char *)cfg + s->offset;
    switch (s->type) {
    case MK_CONFIG_STRING:
    case MK_CONFIG_ENUM:
        *(char **)field = NULL;
        break;
    case MK_CONFIG_INT:
    case MK_CONFIG_DURATION_MS:
        *(int64_t *)field = 0;
        break;
    case MK_CONFIG_BOOL:
        *(bool *)field = false;
        break;
    case MK_CONFIG_BYTES:
        *(size_t *)field = 0;
        break;
    case MK_CONFIG_PORT:
        *(int *)field = 0;
        break;
    }
}

static int check_spec(const mk_config_spec_t *spec, size_t n, mk_err_t *err)
{
    for (size_t i = 0; i < n; i++) {
        const mk_config_spec_t *s = &spec[i];
        if (s->env == NULL || s->env[0] == '\0')
            return mk_err_set(err, MK_EINVAL, "config spec %zu has no name", i);
        if (s->type < MK_CONFIG_STRING || s->type > MK_CONFIG_ENUM)
            return mk_err_set(err, MK_EINVAL, "%s: unknown setting type %d", s->env, (int)s->type);
        if (s->type == MK_CONFIG_ENUM && (s->choices == NULL || s->choices[0] == '\0'))
            return mk_err_set(err, MK_EINVAL, "%s: an enum setting needs choices", s->env);
        if (s->min > s->max)
            return mk_err_set(err, MK_EINVAL, "%s: min %lld is above max %lld", s->env,
                              (long long)s->min, (long long)s->max);
        for (size_t j = 0; j < i; j++) {
            if (strcasecmp(spec[j].env, s->env) == 0)
                return mk_err_set(err, MK_EINVAL, "%s: declared twice", s->env);
        }
    }
    return 0;
}

static const char *env_lookup(char *const *envp, const char *name)
{
    size_t len = strlen(name);
    for (char *const *p = envp; p && *p; p++) {
        if (strncmp(*p, name, len) == 0 && (*p)[len] == '=')
            return *p + len + 1;
    }
    return NULL;
}

/* ---- libyaml helpers ---- */

/* Sets an error located at line (1-based): "where:line: msg" for a file, "line N: msg" without. */
static int yaml_fail(mk_err_t *err, const char *where, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int yaml_fail(mk_err_t *err, const char *where, size_t line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (where)
        return mk_err_set(err, MK_EINVAL, "%s:%zu: %s", where, line, msg);
    return mk_err_set(err, MK_EINVAL, "line %zu: %s", line, msg);
}

static size_t event_line(const yaml_event_t *ev)
{
    return ev->start_mark.line + 1;
}

/* Fetches the next event; on a syntax error fills err with the parser's problem and line. */
static int next_event(yaml_parser_t *p, yaml_event_t *ev, const char *where, mk_err_t *err)
{
    if (yaml_parser_parse(p, ev))
        return 0;
    if (p->error == YAML_MEMORY_ERROR)
        return mk_err_set(err, MK_ENOMEM, "out of memory parsing YAML");
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->context)
        return yaml_fail(err, where, p->problem_mark.line + 1, "%s (%s)", problem, p->context);
    return yaml_fail(err, where, p->problem_mark.line + 1, "%s", problem);
}

static const char *node_kind(yaml_event_type_t t)
{
    switch (t) {
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_ALIAS_EVENT:
        return "an alias";
    default:
        return "not a single value";
    }
}

static bool scalar_is_null(const yaml_event_t *ev)
{
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)ev->data.scalar.value;
    return ev->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* ---- the flat settings file ---- */

typedef struct file_value {
    char *text;  /* NULL when absent or null */
    size_t line; /* 0 when the key did not appear */
} file_value_t;

static int read_file(const char *path, char **data, size_t *len, mk_err_t *err)
{
    int rc = 0;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int code = errno == ENOENT ? MK_ENOTFOUND : MK_EIO;
        return mk_err_set(err, code, "%s: cannot open: %s", path, strerror(errno));
    }
    buf = malloc(CONFIG_FILE_MAX + 1);
    if (buf == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    size_t n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
    if (ferror(f)) {
        rc = mk_err_set(err, MK_EIO, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (n > CONFIG_FILE_MAX) {
        rc = mk_err_set(err, MK_ETOOBIG, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
        goto out;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

static int find_setting(const mk_config_spec_t *spec, size_t n, mk_str_t key)
{
    for (size_t i = 0; i < n; i++) {
        if (mk_str_caseeq(key, mk_str_of(spec[i].env)))
            return (int)i;
    }
    return -1;
}

/* Reads the pairs of the settings mapping whose start event was just consumed. */
static int read_pairs(yaml_parser_t *p, const char *path, const mk_config_spec_t *spec, size_t n,
                      file_value_t *vals, mk_err_t *err)
{
    int rc = 0;
    yaml_event_t key, val;
    bool have_key = false, have_val = false;
    for (;;) {
        rc = next_event(p, &key, path, err);
        if (rc)
            goto out;
        have_key = true;
        if (key.type == YAML_MAPPING_END_EVENT)
            break;
        if (key.type != YAML_SCALAR_EVENT) {
            rc = yaml_fail(err, path, event_line(&key), "setting names must be plain words, not %s",
                           node_kind(key.type));
            goto out;
        }
        const char *name = (const char *)key.data.scalar.value;
        int idx = find_setting(spec, n, (mk_str_t){name, key.data.scalar.length});
        if (idx < 0) {
            rc = yaml_fail(err, path, event_line(&key), "unknown setting '%.*s'", SHOWN_VALUE_MAX,
                           name);
            goto out;
        }
        file_value_t *fv = &vals[idx];
        if (fv->line) {
            rc = yaml_fail(err, path, event_line(&key), "setting '%s' repeated (first on line %zu)",
                           name, fv->line);
            goto out;
        }
        rc = next_event(p, &val, path, err);
        if (rc)
            goto out;
        have_val = true;
        if (val.type != YAML_SCALAR_EVENT) {
            rc =
                yaml_fail(err, path, event_line(&val),
                          "setting '%s' must be a single value, not %s", name, node_kind(val.type));
            goto out;
        }
        if (memchr(val.data.scalar.value, '\0', val.data.scalar.length)) {
            rc = yaml_fail(err, path, event_line(&val), "setting '%s' contains a NUL byte", name);
            goto out;
        }
        fv->line = event_line(&val);
        if (!scalar_is_null(&val)) {
            fv->text = strdup((const char *)val.data.scalar.value);
            if (fv->text == NULL) {
                rc = mk_err_set(err, MK_ENOMEM, "out of memory");
                goto out;
            }
        }
        yaml_event_delete(&val);
        have_val = false;
        yaml_event_delete(&key);
        have_key = false;
    }
out:
    if (have_val)
        yaml_event_delete(&val);
    if (have_key)
        yaml_event_delete(&key);
    return rc;
}

/* Parses a settings file: one document holding one flat mapping (or nothing at all). */
static int read_settings_file(const char *path, const mk_config_spec_t *spec, size_t n,
                              file_value_t *vals, mk_err_t *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, err);
    if (rc)
        return rc;
    yaml_parser_t p;
    yaml_event_t ev;
    bool have_ev = false;
    if (!yaml_parser_initialize(&p)) {
        free(text);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    /* Expected: STREAM-START [DOCUMENT-START (MAPPING ... | null) DOCUMENT-END] STREAM-END. */
    enum { AT_STREAM, AT_DOC, AT_ROOT, AT_DOC_END, AT_END } state = AT_STREAM;
    for (;;) {
        rc = next_event(&p, &ev, path, err);
        if (rc)
            goto out;
        have_ev = true;
        yaml_event_type_t t = ev.type;
        if (state == AT_STREAM) {
            state = AT_DOC;
        } else if (state == AT_DOC && t == YAML_STREAM_END_EVENT) {
            break;
        } else if (state == AT_DOC) {
            state = AT_ROOT;
        } else if (state == AT_ROOT) {
            if (t == YAML_MAPPING_START_EVENT) {
                rc = read_pairs(&p, path, spec, n, vals, err);
                if (rc)
                    goto out;
            } else if (t != YAML_SCALAR_EVENT || !scalar_is_null(&ev)) {
                rc = yaml_fail(err, path, event_line(&ev),
                               "expected a mapping of settings (KEY: value), found %s",
                               t == YAML_SCALAR_EVENT ? "a single value" : node_kind(t));
                goto out;
            }
            state = AT_DOC_END;
        } else if (state == AT_DOC_END) {
            state = AT_END;
        } else if (t == YAML_STREAM_END_EVENT) {
            break;
        } else {
            rc = yaml_fail(err, path, event_line(&ev), "only one YAML document is allowed");
            goto out;
        }
        yaml_event_delete(&ev);
        have_ev = false;
    }
out:
    if (have_ev)
        yaml_event_delete(&ev);
    yaml_parser_delete(&p);
    free(text);
    return rc;
}

/* ---- loading ---- */

int mk_config_load(const mk_config_spec_t *spec, size_t n, void *cfg, const char *yaml_path,
                   char *const *envp, mk_err_t *err)
{
    int rc = 0;
    file_value_t *vals = NULL;
    for (size_t i = 0; i < n; i++)
        zero_field(&spec[i], cfg);
    rc = check_spec(spec, n, err);
    if (rc)
        goto out;
    if (yaml_path) {
        vals = calloc(n ? n : 1, sizeof *vals);
        if (vals == NULL) {
            rc = mk_err_set(err, MK_ENOMEM, "out of memory");
            goto out;
        }
        rc = read_settings_file(yaml_path, spec, n, vals, err);
        if (rc)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const mk_config_spec_t *s = &spec[i];
        if (s->def) {
            rc = apply(s, cfg, s->def, "default", err);
            if (rc)
                goto out;
        }
        if (vals && vals[i].text) {
            char source[300];
            snprintf(source, sizeof source, "%s:%zu", yaml_path, vals[i].line);
            rc = apply(s, cfg, vals[i].text, source, err);
            if (rc)
                goto out;
        }
        const char *env = env_lookup(envp, s->env);
        if (env && env[0]) {
            rc = apply(s, cfg, env, "environment", err);
            if (rc)
                goto out;
        }
    }
out:
    if (vals) {
        for (size_t i = 0; i < n; i++)
            free(vals[i].text);
        free(vals);
    }
    if (rc)
        mk_config_free(spec, n, cfg);
    return rc;
}

void mk_config_free(const mk_config_spec_t *spec, size_t n, void *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (spec[i].type != MK_CONFIG_STRING && spec[i].type != MK_CONFIG_ENUM)
            continue;
        char **slot = (char **)((char *)cfg + spec[i].offset);
        free(*slot);
        *slot = NULL;
    }
}

/* ---- usage and arguments ---- */

static void type_desc(const mk_config_spec_t *s, char *buf, size_t size)
{
    switch (s->type) {
    case MK_CONFIG_STRING:
        snprintf(buf, size, "string");
        break;
    case MK_CONFIG_INT:
        if (has_bounds(s))
            snprintf(buf, size, "integer %lld..%lld", (long long)s->min, (long long)s->max);
        else
            snprintf(buf, size, "integer");
        break;
    case MK_CONFIG_BOOL:
        snprintf(buf, size, "bool");
        break;
    case MK_CONFIG_BYTES:
        snprintf(buf, size, "size");
        break;
    case MK_CONFIG_DURATION_MS:
        snprintf(buf, size, "duration");
        break;
    case MK_CONFIG_PORT:
        snprintf(buf, size, "port");
        break;
    case MK_CONFIG_ENUM:
        snprintf(buf, size, "%s", s->choices ? s->choices : "");
        break;
    default:
        snprintf(buf, size, "?");
        break;
    }
}

int mk_config_usage(const mk_config_spec_t *spec, size_t n, mk_buf_t *out)
{
    size_t name_w = 0, type_w = 0;
    char desc[128];
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(spec[i].env);
        name_w = l > name_w ? l : name_w;
        type_desc(&spec[i], desc, sizeof desc);
        l = strlen(desc);
        type_w = l > type_w ? l : type_w;
    }
    for (size_t i = 0; i < n; i++) {
        const mk_config_spec_t *s = &spec[i];
        type_desc(s, desc, sizeof desc);
        int rc = mk_buf_appendf(out, "  %-*s  %-*s  %s", (int)name_w, s->env, (int)type_w, desc,
                                s->help ? s->help : "");
        if (rc == 0 && s->def)
            rc = mk_buf_appendf(out, "%s(default: %s)", s->help ? " " : "", s->def);
        if (rc == 0)
            rc = mk_buf_append_str(out, "\n");
        if (rc)
            return rc;
    }
    return 0;
}

int mk_config_parse_args(int argc, char **argv, const char **config_path, bool *help, mk_err_t *err)
{
    *config_path = NULL;
    *help = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *path = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *help = true;
            continue;
        }
        if (strcmp(a, "--config") == 0) {
            if (i + 1 >= argc)
                return mk_err_set(err, MK_EINVAL, "--config needs a file path");
            path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            path = a + 9;
        } else {
            return mk_err_set(err, MK_EINVAL,
                              "unknown argument '%s' (accepted: --config FILE, --help)", a);
        }
        if (path[0] == '\0')
            return mk_err_set(err, MK_EINVAL, "--config needs a file path");
        if (*config_path)
            return mk_err_set(err, MK_EINVAL, "--config given twice ('%s' and '%s')", *config_path,
                              path);
        *config_path = path;
    }
    return 0;
}

/* ---- YAML to JSON ---- */

typedef struct y2j {
    yaml_parser_t parser;
    json_t *anchors; /* anchor name -> value */
    mk_err_t *err;
} y2j_t;

static bool match_int(const char *v, size_t len)
{
    size_t i = (len && (v[0] == '-' || v[0] == '+')) ? 1 : 0;
    if (i == len)
        return false;
    for (; i < len; i++) {
        if (!is_digit(v[i]))
            return false;
    }
    return true;
}

static bool match_prefixed(const char *v, size_t len, const char *prefix, const char *digits)
{
    size_t pl = strlen(prefix);
    if (len <= pl || strncmp(v, prefix, pl) != 0)
        return false;
    for (size_t i = pl; i < len; i++) {
        if (strchr(digits, v[i]) == NULL || v[i] == '\0')
            return false;
    }
    return true;
}

/* 10, 16 or 8 when v is a core-schema integer (decimal, 0x..., 0o...), else 0. */
static int int_base(const char *v, size_t len)
{
    if (match_int(v, len))
        return 10;
    if (match_prefixed(v, len, "0x", "0123456789abcdefABCDEF"))
        return 16;
    if (match_prefixed(v, len, "0o", "01234567"))
        return 8;
    return 0;
}

/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?  (YAML 1.2 core schema) */
static bool match_float(const char *v, size_t len)
{
    size_t i = 0, digits = 0;
    if (i < len && (v[i] == '-' || v[i] == '+'))
        i++;
    for (; i < len && is_digit(v[i]); i++)
        digits++;
    if (i < len && v[i] == '.') {
        size_t before = digits;
        for (i++; i < len && is_digit(v[i]); i++)
            digits++;
        if (before == 0 && digits == 0)
            return false;
    }
    if (digits == 0)
        return false;
    if (i < len && (v[i] == 'e' || v[i] == 'E')) {
        i++;
        if (i < len && (v[i] == '-' || v[i] == '+'))
            i++;
        size_t exp = 0;
        for (; i < len && is_digit(v[i]); i++)
            exp++;
        if (exp == 0)
            return false;
    }
    return i == len;
}

static bool match_any(const char *v, const char *const *words)
{
    for (; *words; words++) {
        if (strcmp(v, *words) == 0)
            return true;
    }
    return false;
}

static int y2j_scalar(y2j_t *c, const yaml_event_t *ev, json_t **out)
{
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const nonfinite[] = {".inf",  ".Inf",  ".INF",  "+.inf", "+.Inf",
                                            "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
                                            ".NaN",  ".NAN",  NULL};
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    size_t line = event_line(ev);
    bool as_string = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
                     (tag && (strcmp(tag, "!") == 0 || strcmp(tag, YAML_STR_TAG) == 0));
    /* Number patterns exclude NUL, so from here on v can be read as a C string. */
    bool plain_text = !as_string && memchr(v, '\0', len) == NULL;
    if (plain_text && scalar_is_null(ev)) {
        *out = json_null();
    } else if (plain_text && match_any(v, trues)) {
        *out = json_true();
    } else if (plain_text && match_any(v, falses)) {
        *out = json_false();
    } else if (plain_text && int_base(v, len)) {
        int base = int_base(v, len);
        const char *digits = base == 10 ? v : v + 2;
        errno = 0;
        long long n = strtoll(digits, NULL, base);
        if (errno == ERANGE)
            return yaml_fail(c->err, NULL, line, "integer out of 64-bit range: '%.*s'",
                             SHOWN_VALUE_MAX, v);
        *out = json_integer(n);
    } else if (plain_text && match_float(v, len)) {
        errno = 0;
        double d = strtod(v, NULL);
        if (errno == ERANGE && (d > 1 || d < -1))
            return yaml_fail(c->err, NULL, line, "number out of range: '%.*s'", SHOWN_VALUE_MAX, v);
        *out = json_real(d);
    } else if (plain_text && match_any(v, nonfinite)) {
        return yaml_fail(c->err, NULL, line, "'%s' has no JSON representation", v);
    } else {
        *out = json_stringn(v, len);
        if (*out == NULL)
            return yaml_fail(c->err, NULL, line, "string is not valid UTF-8");
    }
    if (*out == NULL)
        return mk_err_set(c->err, MK_ENOMEM, "out of memory");
    return 0;
}

static int y2j_node(y2j_t *c, const yaml_event_t *ev, int depth, json_t **out);

static int y2j_children(y2j_t *c, json_t *parent, bool mapping, int depth)
{
    int rc = 0;
    yaml_event_t key, val;
    bool have_key = false, have_val = false;
    json_t *child = NULL;
    for (;;) {
        rc = next_event(&c->parser, &key, NULL, c->err);
        if (rc)
            goto out;
        have_key = true;
        if (key.type == YAML_MAPPING_END_EVENT || key.type == YAML_SEQUENCE_END_EVENT)
            break;
        if (!mapping) {
            rc = y2j_node(c, &key, depth + 1, &child);
            if (rc)
                goto out;
            if (json_array_append_new(parent, child)) {
                child = NULL;
                rc = mk_err_set(c->err, MK_ENOMEM, "out of memory");
                goto out;
            }
            child = NULL;
            yaml_event_delete(&key);
            have_key = false;
            continue;
        }
        if (key.type != YAML_SCALAR_EVENT) {
            rc = yaml_fail(c->err, NULL, event_line(&key), "mapping keys must be scalars, not %s",
                           node_kind(key.type));
            goto out;
        }
        const char *k = (const char *)key.data.scalar.value;
        size_t klen = key.data.scalar.length;
        if (json_object_getn(parent, k, klen)) {
            rc = yaml_fail(c->err, NULL, event_line(&key), "duplicate key '%.*s'", SHOWN_VALUE_MAX,
                           k);
            goto out;
        }
        if (key.data.scalar.anchor) {
            json_t *ks = json_stringn(k, klen);
            if (ks)
                json_object_set_new(c->anchors, (const char *)key.data.scalar.anchor, ks);
        }
        rc = next_event(&c->parser, &val, NULL, c->err);
        if (rc)
            goto out;
        have_val = true;
        rc = y2j_node(c, &val, depth + 1, &child);
        if (rc)
            goto out;
        if (json_object_setn_new(parent, k, klen, child)) {
            child = NULL;
            rc = yaml_fail(c->err, NULL, event_line(&key), "key is not valid UTF-8");
            goto out;
        }
        child = NULL;
        yaml_event_delete(&val);
        have_val = false;
        yaml_event_delete(&key);
        have_key = false;
    }
out:
    json_decref(child);
    if (have_val)
        yaml_event_delete(&val);
    if (have_key)
        yaml_event_delete(&key);
    return rc;
}

/* Builds the value that starts with ev; the caller still owns (and deletes) ev. */
static int y2j_node(y2j_t *c, const yaml_event_t *ev, int depth, json_t **out)
{
    int rc = 0;
    json_t *v = NULL;
    const yaml_char_t *anchor = NULL;
    *out = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        v = json_incref(json_object_get(c->anchors, name));
        if (v == NULL)
            return yaml_fail(c->err, NULL, event_line(ev), "unknown alias '*%s'", name);
        break;
    }
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        rc = y2j_scalar(c, ev, &v);
        if (rc)
            return rc;
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool mapping = ev->type == YAML_MAPPING_START_EVENT;
        if (depth >= YAML_DEPTH_MAX)
            return yaml_fail(c->err, NULL, event_line(ev), "nested deeper than %d levels",
                             YAML_DEPTH_MAX);
        anchor = mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
        v = mapping ? json_object() : json_array();
        if (v == NULL)
            return mk_err_set(c->err, MK_ENOMEM, "out of memory");
        rc = y2j_children(c, v, mapping, depth);
        if (rc)
            goto out;
        break;
    }
    default:
        return yaml_fail(c->err, NULL, event_line(ev), "unexpected YAML event %d", (int)ev->type);
    }
    /* Registered only once the node is complete, so a node cannot contain an alias of itself. */
    if (anchor && json_object_set(c->anchors, (const char *)anchor, v)) {
        rc = mk_err_set(c->err, MK_ENOMEM, "out of memory");
        goto out;
    }
    *out = v;
    v = NULL;
out:
    json_decref(v);
    return rc;
}

int mk_config_yaml_to_json(const char *text, size_t len, json_t **out, mk_err_t *err)
{
    int rc = 0;
    y2j_t c = {.err = err};
    yaml_event_t ev;
    bool have_ev = false;
    json_t *result = NULL;
    *out = NULL;
    if (!yaml_parser_initialize(&c.parser))
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)(text ? text : ""), len);
    c.anchors = json_object();
    if (c.anchors == NULL) {
        rc = mk_err_set(err, MK_ENOMEM, "out of memory");
        goto out;
    }
    /* STREAM-START, then DOCUMENT-START node DOCUMENT-END or nothing, then STREAM-END. */
    for (int step = 0;; step++) {
        rc = next_event(&c.parser, &ev, NULL, err);
        if (rc)
            goto out;
        have_ev = true;
        if (ev.type == YAML_STREAM_END_EVENT)
            break;
        if (ev.type == YAML_DOCUMENT_START_EVENT && result) {
            rc = yaml_fail(err, NULL, event_line(&ev), "only one YAML document is allowed");
            goto out;
        }
        if (step == 2) {
            rc = y2j_node(&c, &ev, 0, &result);
            if (rc)
                goto out;
        }
        yaml_event_delete(&ev);
        have_ev = false;
    }
    *out = result ? result : json_null();
    result = NULL;
out:
    if (have_ev)
        yaml_event_delete(&ev);
    json_decref(result);
    json_decref(c.anchors);
    yaml_parser_delete(&c.parser);
    return rc;
}
