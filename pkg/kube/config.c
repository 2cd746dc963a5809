/* Where the client finds the API server and its credentials: the in-cluster service account or
 * a kubeconfig file (parsed through pkg/config's YAML reader). */
#include "config/config.h"
#include "kube/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE (4u << 20)

void mk_kube_config_free(mk_kube_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->server);
    free(cfg->token);
    free(cfg->ca_pem);
    free(cfg->cert_pem);
    free(cfg->key_pem);
    free(cfg->namespace);
    free(cfg->user_agent);
    free(cfg);
}

/* Reads a whole file into a NUL-terminated buffer. */
static int read_file(const char *path, char **out, size_t *len, mk_err_t *err)
{
    int rc = 0;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = fopen(path, "rb");
    *out = NULL;
    if (!f)
        return mk_err_set(err, errno == ENOENT ? MK_ENOTFOUND : MK_EIO, "kube: %s: %s", path,
                          strerror(errno));
    buf = malloc(MAX_FILE + 1);
    if (!buf) {
        rc = mk_err_set(err, MK_ENOMEM, "kube: out of memory");
        goto out;
    }
    n = fread(buf, 1, MAX_FILE + 1, f);
    if (ferror(f)) {
        rc = mk_err_set(err, MK_EIO, "kube: %s: read error", path);
        goto out;
    }
    if (n > MAX_FILE) {
        rc = mk_err_set(err, MK_ETOOBIG, "kube: %s: larger than %u bytes", path, MAX_FILE);
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    if (len)
        *len = n;
out:
    free(buf);
    fclose(f);
    return rc;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

int mk_kube_config_in_cluster(const char *dir, mk_kube_config_t **out, mk_err_t *err)
{
    int rc = 0;
    char path[1024];
    *out = NULL;
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!dir)
        dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    if (!host || !host[0] || !port || !port[0])
        return mk_err_set(err, MK_ENOTFOUND,
                          "kube: not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)");
    mk_kube_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return mk_err_set(err, MK_ENOMEM, "kube: out of memory");
    size_t cap = strlen(host) + strlen(port) + 16;
    cfg->server = malloc(cap);
    if (!cfg->server) {
        rc = mk_err_set(err, MK_ENOMEM, "kube: out of memory");
        goto out;
    }
    /* An IPv6 service address needs brackets in a URL. */
    snprintf(cfg->server, cap, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
    snprintf(path, sizeof path, "%s/token", dir);
    rc = read_file(path, &cfg->token, NULL, err);
    if (rc != 0)
        goto out;
    trim(cfg->token);
    snprintf(path, sizeof path, "%s/ca.crt", dir);
    rc = read_file(path, &cfg->ca_pem, NULL, err);
    if (rc != 0)
        goto out;
    snprintf(path, sizeof path, "%s/namespace", dir);
    if (read_file(path, &cfg->namespace, NULL, NULL) == 0)
        trim(cfg->namespace);
    *out = cfg;
    cfg = NULL;
out:
    mk_kube_config_free(cfg);
    return rc;
}

/* The entry named name in a kubeconfig list ("clusters", "users", "contexts"), its inner object
 * ("cluster", "user", "context"); borrowed. */
static json_t *named(json_t *doc, const char *list, const char *name, const char *inner)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, list), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && strcmp(n, name) == 0)
            return json_object_get(e, inner);
    }
    return NULL;
}

/* Takes a PEM from "<key>-data" (base64) or from the file "<key>" (relative to base_dir). */
static int pem_from(json_t *obj, const char *key, const char *base_dir, char **out, mk_err_t *err)
{
    char data_key[128];
    snprintf(data_key, sizeof data_key, "%s-data", key);
    const char *data = json_string_value(json_object_get(obj, data_key));
    const char *file = json_string_value(json_object_get(obj, key));
    *out = NULL;
    if (data) {
        size_t n;
        if (kube_base64_decode(data, strlen(data), out, &n) != 0)
            return mk_err_set(err, MK_EINVAL, "kube: kubeconfig %s is not valid base64", data_key);
        return 0;
    }
    if (file) {
        char path[2048];
        if (file[0] != '/' && base_dir)
            snprintf(path, sizeof path, "%s/%s", base_dir, file);
        else
            snprintf(path, sizeof path, "%s", file);
        return read_file(path, out, NULL, err);
    }
    return 0;
}

int mk_kube_config_parse_kubeconfig(const char *text, size_t len, const char *base_dir,
                                    const char *context, mk_kube_config_t **out, mk_err_t *err)
{
    int rc = 0;
    json_t *doc = NULL;
    mk_kube_config_t *cfg = NULL;
    *out = NULL;
    rc = mk_config_yaml_to_json(text, len, &doc, err);
    if (rc != 0) {
        mk_err_prefix(err, "kube: kubeconfig");
        goto out;
    }
    if (!context)
        context = json_string_value(json_object_get(doc, "current-context"));
    if (!context || !context[0]) {
        rc = mk_err_set(err, MK_EINVAL, "kube: kubeconfig has no current-context");
        goto out;
    }
    json_t *ctx = named(doc, "contexts", context, "context");
    if (!ctx) {
        rc = mk_err_set(err, MK_EINVAL, "kube: kubeconfig has no context \"%s\"", context);
        goto out;
    }
    const char *cluster_name = json_string_value(json_object_get(ctx, "cluster"));
    const char *user_name = json_string_value(json_object_get(ctx, "user"));
    json_t *cluster = cluster_name ? named(doc, "clusters", cluster_name, "cluster") : NULL;
    json_t *user = user_name ? named(doc, "users", user_name, "user") : NULL;
    const char *server = json_string_value(json_object_get(cluster, "server"));
    if (!server) {
        rc = mk_err_set(err, MK_EINVAL,
                        "kube: kubeconfig context \"%s\": cluster \"%s\" has no "
                        "server",
                        context, cluster_name ? cluster_name : "");
        goto out;
    }
    cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        rc = mk_err_set(err, MK_ENOMEM, "kube: out of memory");
        goto out;
    }
    cfg->server = strdup(server);
    cfg->insecure = json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"));
    const char *ns = json_string_value(json_object_get(ctx, "namespace"));
    cfg->namespace = strdup(ns && ns[0] ? ns : "default");
    if (!cfg->server || !cfg->namespace) {
        rc = mk_err_set(err, MK_ENOMEM, "kube: out of memory");
        goto out;
    }
    rc = pem_from(cluster, "certificate-authority", base_dir, &cfg->ca_pem, err);
    if (rc == 0 && user)
        rc = pem_from(user, "client-certificate", base_dir, &cfg->cert_pem, err);
    if (rc == 0 && user)
        rc = pem_from(user, "client-key", base_dir, &cfg->key_pem, err);
    if (rc != 0)
        goto out;
    const char *token = json_string_value(json_object_get(user, "token"));
    const char *token_file = json_string_value(json_object_get(user, "tokenFile"));
    if (token) {
        cfg->token = strdup(token);
    } else if (token_file) {
        char path[2048];
        if (token_file[0] != '/' && base_dir)
            snprintf(path, sizeof path, "%s/%s", base_dir, token_file);
        else
            snprintf(path, sizeof path, "%s", token_file);
        rc = read_file(path, &cfg->token, NULL, err);
        if (rc != 0)
            goto out;
        trim(cfg->token);
    }
    *out = cfg;
    cfg = NULL;
out:
    mk_kube_config_free(cfg);
    json_decref(doc);
    return rc;
}

int mk_kube_config_from_kubeconfig(const char *path, const char *context, mk_kube_config_t **out,
                                   mk_err_t *err)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = read_file(path, &text, &len, err);
    if (rc != 0)
        return rc;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    rc = mk_kube_config_parse_kubeconfig(text, len, slash ? dir : ".", context, out, err);
    if (rc != 0)
        mk_err_prefix(err, "%s", path);
    free(text);
    return rc;
}

int mk_kube_config_load(const char *kubeconfig_path, mk_kube_config_t **out, mk_err_t *err)
{
    if (kubeconfig_path && kubeconfig_path[0])
        return mk_kube_config_from_kubeconfig(kubeconfig_path, NULL, out, err);
    int rc = mk_kube_config_in_cluster(NULL, out, err);
    if (rc != MK_ENOTFOUND)
        return rc;
    const char *home = getenv("HOME");
    if (!home)
        return rc;
    char path[1024];
    snprintf(path, sizeof path, "%s/.kube/config", home);
    return mk_kube_config_from_kubeconfig(path, NULL, out, err);
}

int kube_base64_decode(const char *in, size_t len, char **out, size_t *out_len)
{
    unsigned char *buf = malloc(len / 4 * 3 + 4);
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    *out = NULL;
    if (!buf)
        return MK_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+' || c == '-')
            v = 62;
        else if (c == '/' || c == '_')
            v = 63;
        else if (c == '=' || c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        else {
            free(buf);
            return MK_EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    buf[n] = '\0';
    *out = (char *)buf;
    if (out_len)
        *out_len = n;
    return 0;
}
