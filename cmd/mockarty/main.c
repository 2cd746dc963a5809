/* mockarty: the admin node. Reads configuration, wires the modules together, runs until SIGINT
 * or SIGTERM, then shuts down cleanly. */
#include "api/api.h"
#include "catalog/catalog.h"
#include "config/config.h"
#include "httpd/httpd.h"
#include "journal/journal.h"
#include "metrics/metrics.h"
#include "node/node.h"
#include "serve/serve.h"
#include "sqlite/sqlite.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOCKARTY_VERSION "0.1.0"

extern char **environ;

typedef struct settings {
    char *http_host;
    int http_port;
    int64_t http_workers;
    char *tls_cert;
    char *tls_key;
    size_t max_body;
    int64_t request_timeout_ms;
    char *db_use;
    char *db_path;
    char *db_dsn;
    char *api_token;
    size_t journal_max;
    size_t journal_body_max;
} settings_t;

#define S(env, type, def, field, help, choices, min, max)                                         \
    {env, type, def, offsetof(settings_t, field), help, choices, min, max}
static const mk_config_spec_t spec[] = {
    S("HTTP_HOST", MK_CONFIG_STRING, "0.0.0.0", http_host, "listen address", NULL, 0, 0),
    S("HTTP_PORT", MK_CONFIG_PORT, "5770", http_port, "HTTP port (API, UI, mocks)", NULL, 0, 0),
    S("HTTP_WORKERS", MK_CONFIG_INT, "0", http_workers, "event-loop threads (0: one per core)",
      NULL, 0, 256),
    S("HTTP_TLS_CERT_FILE", MK_CONFIG_STRING, NULL, tls_cert, "PEM certificate chain: enables TLS",
      NULL, 0, 0),
    S("HTTP_TLS_KEY_FILE", MK_CONFIG_STRING, NULL, tls_key, "PEM private key for TLS", NULL, 0, 0),
    S("HTTP_MAX_BODY_BYTES", MK_CONFIG_BYTES, "10MiB", max_body, "largest request body accepted",
      NULL, 1024, 1LL << 31),
    S("HTTP_REQUEST_TIMEOUT", MK_CONFIG_DURATION_MS, "10s", request_timeout_ms,
      "time allowed to receive a whole request", NULL, 100, 3600000),
    S("DB_USE", MK_CONFIG_ENUM, "sqlite", db_use, "database backend", "sqlite", 0, 0),
    S("DB_PATH", MK_CONFIG_STRING, "./mockarty.db", db_path, "SQLite database file", NULL, 0, 0),
    S("DB_DSN", MK_CONFIG_STRING, NULL, db_dsn, "PostgreSQL connection string (later)", NULL, 0, 0),
    S("API_TOKEN", MK_CONFIG_STRING, NULL, api_token, "token required on /api/ calls", NULL, 0, 0),
    S("JOURNAL_MAX_BYTES", MK_CONFIG_BYTES, "64MiB", journal_max,
      "request journal size bound (oldest dropped first)", NULL, 4096, 1LL << 40),
    S("JOURNAL_BODY_MAX_BYTES", MK_CONFIG_BYTES, "64KiB", journal_body_max,
      "request body bytes kept per journal entry", NULL, 0, 1LL << 30),
};
#undef S
#define NSPEC (sizeof spec / sizeof *spec)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void observe_db(void *ud, const char *operation, double seconds)
{
    mk_metrics_db(ud, operation, seconds);
}

int main(int argc, char **argv)
{
    settings_t cfg;
    mk_err_t err;
    const char *config_path = NULL;
    bool help = false;
    int status = 1;
    mk_repo_t *repo = NULL;
    mk_catalog_t *catalog = NULL;
    mk_journal_t *journal = NULL;
    mk_metrics_t *metrics = NULL;
    mk_api_t *api = NULL;
    mk_serve_t *serve = NULL;
    mk_node_t *node = NULL;
    mk_httpd_t *httpd = NULL;

    memset(&cfg, 0, sizeof cfg);
    if (mk_config_parse_args(argc, argv, &config_path, &help, &err) != 0) {
        fprintf(stderr, "mockarty: %s\n", err.msg);
        return 2;
    }
    if (help) {
        mk_buf_t out;
        mk_buf_init(&out, 0);
        mk_config_usage(spec, NSPEC, &out);
        printf("Usage: mockarty [--config FILE]\n\nSettings (environment or YAML file):\n%s",
               out.data ? out.data : "");
        mk_buf_free(&out);
        return 0;
    }
    if (mk_config_load(spec, NSPEC, &cfg, config_path, environ, &err) != 0) {
        fprintf(stderr, "mockarty: configuration: %s\n", err.msg);
        return 2;
    }
    if ((cfg.tls_cert == NULL) != (cfg.tls_key == NULL)) {
        fprintf(stderr, "mockarty: configuration: HTTP_TLS_CERT_FILE and HTTP_TLS_KEY_FILE must "
                        "be set together\n");
        status = 2;
        goto out;
    }

    mk_httpd_config_t hc = {
        .host = cfg.http_host,
        .port = cfg.http_port,
        .workers = (unsigned)cfg.http_workers,
        .tls_cert = cfg.tls_cert,
        .tls_key = cfg.tls_key,
        .max_body_bytes = cfg.max_body,
        .req_timeout_ms = (uint64_t)cfg.request_timeout_ms,
    };
    unsigned workers = hc.workers ? hc.workers : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    hc.workers = workers ? workers : 1;

    if (mk_sqlite_repo_open(cfg.db_path, &repo, &err) != 0) {
        fprintf(stderr, "mockarty: database: %s\n", err.msg);
        goto out;
    }
    metrics = mk_metrics_new(hc.workers);
    catalog = mk_catalog_new(hc.workers);
    journal = mk_journal_new(cfg.journal_max, cfg.journal_body_max, hc.workers);
    mk_api_config_t ac = {.api_token = cfg.api_token};
    api = mk_api_new(&ac, catalog, repo, journal);
    serve = mk_serve_new(catalog, journal);
    mk_node_config_t nc = {.release_id = MOCKARTY_VERSION, .role = "admin"};
    node = mk_node_new(&nc, serve, api, catalog, journal, metrics, repo);
    if (!metrics || !catalog || !journal || !api || !serve || !node) {
        fprintf(stderr, "mockarty: out of memory\n");
        goto out;
    }
    mk_repo_set_observer(repo, observe_db, metrics);
    if (mk_api_load(api, &err) != 0) {
        fprintf(stderr, "mockarty: loading mocks: %s\n", err.msg);
        goto out;
    }
    if (mk_httpd_new(&hc, mk_node_handle, node, &httpd, &err) != 0 ||
        mk_httpd_start(httpd, &err) != 0) {
        fprintf(stderr, "mockarty: %s\n", err.msg);
        goto out;
    }

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int port = mk_httpd_port(httpd);
    printf("mockarty %s: admin node listening on %s://%s:%d (%u workers, SQLite at %s)\n",
           MOCKARTY_VERSION, cfg.tls_cert ? "https" : "http", cfg.http_host, port, hc.workers,
           cfg.db_path);
    printf("create a mock:  curl -X POST localhost:%d/api/v1/mocks -d "
           "'{\"http\":{\"route\":\"/hello\",\"httpMethod\":\"GET\"},"
           "\"response\":{\"statusCode\":200,\"payload\":{\"hello\":\"world\"}}}'\n"
           "then call it:   curl localhost:%d/hello\n",
           port, port);
    fflush(stdout);

    /* Off-the-hot-path upkeep: usage counters to the database, retired snapshots freed. */
    while (!stop) {
        usleep(100 * 1000);
        mk_api_maintain(api);
    }
    status = 0;
    fprintf(stderr, "mockarty: shutting down\n");

out:
    mk_httpd_stop(httpd);
    if (api)
        mk_api_maintain(api);
    mk_httpd_free(httpd);
    mk_node_free(node);
    mk_serve_free(serve);
    mk_api_free(api);
    mk_journal_free(journal);
    mk_catalog_free(catalog);
    mk_metrics_free(metrics);
    mk_repo_free(repo);
    mk_config_free(spec, NSPEC, &cfg);
    return status;
}
