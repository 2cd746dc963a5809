/* Settings, wiring, the upkeep loop and the shutdown order of a node. */
#include "boot/boot.h"

#include "api/api.h"
#include "catalog/catalog.h"
#include "composite/composite.h"
#include "config/config.h"
#include "coordinator/coordinator.h"
#include "follow/follow.h"
#include "grpcmock/grpcmock.h"
#include "httpd/httpd.h"
#include "journal/journal.h"
#include "metrics/metrics.h"
#include "node/node.h"
#include "pg/pg.h"
#include "redis/redis.h"
#include "serve/serve.h"
#include "serve/serve_graphql.h"
#include "serve/serve_proxy.h"
#include "sqlite/sqlite.h"
#include "store/store.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MOCKARTY_VERSION MK_API_VERSION

extern char **environ;

typedef struct settings {
    char *http_host;
    int http_port;
    int64_t http_workers;
    char *tls_cert;
    char *tls_key;
    size_t max_body;
    int64_t request_timeout_ms;
    size_t inflight_body;
    size_t client_inflight_body;
    int64_t admin_threads;
    char *db_use;
    char *db_path;
    char *db_dsn;
    int64_t db_pool;
    char *db_prepared;
    char *db_listen_dsn;
    char *db_read_dsn;
    int64_t db_read_wait_ms;
    char *cache_type;
    size_t cache_max;
    char *api_token;
    size_t journal_max;
    size_t journal_body_max;
    char *store_type;
    char *near_miss;
    char *ui_prefix;
    char *redis_host;
    int redis_port;
    char *redis_password;
    int64_t redis_db;
    char *redis_sentinels;
    char *redis_master_name;
    char *redis_sentinel_password;
    size_t store_max_value;
    int64_t history_ms;
    char *node_name;
    int64_t poll_ms;
    char *admin_password;
    char *auth_required;
    int64_t session_ttl_ms;
    int64_t audit_retention_days;
    int64_t test_run_retention_ms, test_run_keep, perf_result_retention_ms, perf_result_keep;
    int64_t login_rate;
    int64_t token_rate;
    int64_t runner_grpc_port;
    int64_t grpc_mock_port;
    char *grpc_mock_tls_cert;
    char *grpc_mock_tls_key;
    int64_t runner_heartbeat_ms;
    int64_t runner_task_ms;
    bool runner_tls;
    char *runner_tls_cert;
    char *runner_tls_key;
    char *runner_tls_client_ca;
    char *runner_tls_dir;
    char *coordinator_addr;
    int64_t shutdown_drain_ms;
    int64_t shutdown_timeout_ms;
} settings_t;

#define S(env, type, def, field, help, choices, min, max)                                          \
    {                                                                                              \
        env, type, def, offsetof(settings_t, field), help, choices, min, max                       \
    }
/* The settings of both roles; only the port and database defaults differ. */
#define SETTINGS(PORT, DB_USE_DEFAULT, GRPC_PORT)                                                           \
    S("HTTP_HOST", MK_CONFIG_STRING, "0.0.0.0", http_host, "listen address", NULL, 0, 0),          \
        S("HTTP_PORT", MK_CONFIG_PORT, PORT, http_port, "HTTP port", NULL, 0, 0),                  \
        S("HTTP_WORKERS", MK_CONFIG_INT, "0", http_workers,                                        \
          "event-loop threads (0: one per core)", NULL, 0, 256),                                   \
        S("HTTP_TLS_CERT_FILE", MK_CONFIG_STRING, NULL, tls_cert,                                  \
          "PEM certificate chain: enables TLS", NULL, 0, 0),                                       \
        S("HTTP_TLS_KEY_FILE", MK_CONFIG_STRING, NULL, tls_key, "PEM private key for TLS", NULL,   \
          0, 0),                                                                                   \
        S("HTTP_MAX_BODY_BYTES", MK_CONFIG_BYTES, "10MiB", max_body,                               \
          "largest request body accepted", NULL, 1024, 1LL << 31),                                 \
        S("HTTP_REQUEST_TIMEOUT", MK_CONFIG_DURATION_MS, "10s", request_timeout_ms,                \
          "time allowed to receive a whole request", NULL, 100, 3600000),                          \
        S("HTTP_MAX_INFLIGHT_BODY_BYTES", MK_CONFIG_BYTES, "256MiB", inflight_body,                \
          "request bodies buffered at once, all clients (over it: 503)", NULL, 65536, 1LL << 40),  \
        S("HTTP_MAX_CLIENT_INFLIGHT_BODY_BYTES", MK_CONFIG_BYTES, "0", client_inflight_body,       \
          "request bodies buffered at once per client address (0: 1/8 of the total, at least "    \
          "HTTP_MAX_BODY_BYTES)", NULL, 0, 1LL << 40),                                             \
        S("HTTP_ADMIN_THREADS", MK_CONFIG_INT, "2", admin_threads,                                 \
          "threads for admin work kept off the event loops (queries, lists, exports)", NULL, 1,    \
          64),                                                                                     \
        S("DB_USE", MK_CONFIG_ENUM, DB_USE_DEFAULT, db_use, "database backend", "sqlite|postgres", \
          0, 0),                                                                                   \
        S("DB_PATH", MK_CONFIG_STRING, "./mockarty.db", db_path, "SQLite database file", NULL, 0,  \
          0),                                                                                      \
        S("DB_DSN", MK_CONFIG_STRING, NULL, db_dsn,                                                \
          "PostgreSQL connection string or URL (DB_USE=postgres)", NULL, 0, 0),                    \
        S("DB_POOL_SIZE", MK_CONFIG_INT, "4", db_pool, "PostgreSQL connections", NULL, 1, 256),    \
        S("DB_PREPARED_STATEMENTS", MK_CONFIG_ENUM, "auto", db_prepared,                           \
          "protocol-level prepared statements (auto: off behind PgBouncer)", "auto|on|off", 0, 0), \
        S("DB_LISTEN_DSN", MK_CONFIG_STRING, NULL, db_listen_dsn,                                  \
          "direct PostgreSQL connection for the change feed's LISTEN (default: DB_DSN)", NULL, 0,  \
          0),                                                                                      \
        S("DB_READ_DSN", MK_CONFIG_STRING, NULL, db_read_dsn,                                      \
          "resolvers: read replica(s) for mock reads, comma-separated (default: DB_DSN)", NULL, 0, \
          0),                                                                                      \
        S("DB_READ_MAX_WAIT", MK_CONFIG_DURATION_MS, "5s", db_read_wait_ms,                        \
          "resolvers: how long a change waits for a lagging replica before the primary is read",  \
          NULL, 0, 600000),                                                                        \
        S("CACHE_TYPE", MK_CONFIG_ENUM, "inmemory", cache_type,                                    \
          "mock cache tiers: inmemory, or redis as a shared second tier", "inmemory|redis", 0, 0), \
        S("CACHE_MAX_BYTES", MK_CONFIG_BYTES, "64MiB", cache_max,                                  \
          "bound of the in-process mock cache", NULL, 65536, 1LL << 40),                           \
        S("API_TOKEN", MK_CONFIG_STRING, NULL, api_token, "token required on /api/ calls", NULL,   \
          0, 0),                                                                                   \
        S("JOURNAL_MAX_BYTES", MK_CONFIG_BYTES, "64MiB", journal_max,                              \
          "request journal size bound (oldest dropped first)", NULL, 4096, 1LL << 40),             \
        S("JOURNAL_BODY_MAX_BYTES", MK_CONFIG_BYTES, "64KiB", journal_body_max,                    \
          "request body bytes kept per journal entry", NULL, 0, 1LL << 30),                        \
        S("STORE_TYPE", MK_CONFIG_ENUM, "memory", store_type,                                      \
          "backend of the stores (gS, cS, mS) and history", "memory|redis", 0, 0),                 \
        S("NEAR_MISS_DETAILS", MK_CONFIG_ENUM, "token", near_miss,                                 \
          "who sees which mocks came close in a 404", "token|public|off", 0, 0),                  \
        S("UI_PATH_PREFIX", MK_CONFIG_STRING, "/ui", ui_prefix,                                    \
          "admin: path of the web UI (off: no UI)", NULL, 0, 0),                                  \
        S("REPO_REDIS_HOST", MK_CONFIG_STRING, "127.0.0.1", redis_host, "Redis host", NULL, 0, 0), \
        S("REPO_REDIS_PORT", MK_CONFIG_PORT, "6379", redis_port, "Redis port", NULL, 0, 0),        \
        S("REPO_REDIS_PASSWORD", MK_CONFIG_STRING, NULL, redis_password, "Redis password", NULL,   \
          0, 0),                                                                                   \
        S("REPO_REDIS_DB", MK_CONFIG_INT, "0", redis_db, "Redis database number", NULL, 0, 15),    \
        S("REPO_REDIS_SENTINELS", MK_CONFIG_STRING, NULL, redis_sentinels,                         \
          "Redis Sentinel host:port list, comma-separated: the master is found through them "     \
          "(REPO_REDIS_HOST/PORT then unused)", NULL, 0, 0),                                       \
        S("REPO_REDIS_MASTER_NAME", MK_CONFIG_STRING, "mymaster", redis_master_name,               \
          "the master's name at the sentinels", NULL, 0, 0),                                       \
        S("REPO_REDIS_SENTINEL_PASSWORD", MK_CONFIG_STRING, NULL, redis_sentinel_password,         \
          "password of the sentinels (their requirepass), if any", NULL, 0, 0),                    \
        S("STORE_MAX_VALUE_BYTES", MK_CONFIG_BYTES, "1MiB", store_max_value,                       \
          "largest value one store key may hold", NULL, 16, 1LL << 29),                            \
        S("HISTORY_DURATION", MK_CONFIG_DURATION_MS, "60m", history_ms,                            \
          "how long the history table keeps records", NULL, 1000, 365LL * 24 * 3600 * 1000),       \
        S("NODE_NAME", MK_CONFIG_STRING, NULL, node_name,                                          \
          "name sent as X-Mockarty-Node (default: the host name)", NULL, 0, 0),                    \
        S("RESYNC_INTERVAL", MK_CONFIG_DURATION_MS, "1s", poll_ms,                                 \
          "resolvers: resync from the database at least this often", NULL, 50, 3600000),         \
        S("ADMIN_PASSWORD", MK_CONFIG_STRING, NULL, admin_password,                                \
          "first start: password of the administrator \"admin\" (unset: generated, printed once)", \
          NULL, 0, 0),                                                                             \
        S("AUTH_REQUIRED", MK_CONFIG_ENUM, "auto", auth_required,                                  \
          "require credentials on the admin API (auto: when API_TOKEN or ADMIN_PASSWORD is set)", \
          "auto|true|false", 0, 0),                                                                \
        S("SESSION_TTL", MK_CONFIG_DURATION_MS, "12h", session_ttl_ms,                             \
          "lifetime of a login session", NULL, 1000, 366LL * 24 * 3600 * 1000),                    \
        S("AUDIT_RETENTION_DAYS", MK_CONFIG_INT, "90", audit_retention_days,                       \
          "days the audit log keeps its rows (0: forever)", NULL, 0, 36500),                       \
        S("TEST_RUN_RETENTION", MK_CONFIG_DURATION_MS, "30d", test_run_retention_ms,               \
          "admin: finished API test runs older than this are deleted (0: kept forever)", NULL, 0,  \
          36500LL * 86400000),                                                                     \
        S("TEST_RUN_KEEP", MK_CONFIG_INT, "20", test_run_keep,                                     \
          "admin: newest finished runs per collection kept whatever their age", NULL, 0, 1000000), \
        S("PERF_RESULT_RETENTION", MK_CONFIG_DURATION_MS, "30d", perf_result_retention_ms,         \
          "admin: finished load test results older than this are deleted (0: kept forever)",       \
          NULL, 0, 36500LL * 86400000),                                                            \
        S("PERF_RESULT_KEEP", MK_CONFIG_INT, "20", perf_result_keep,                               \
          "admin: newest finished results per config kept whatever their age", NULL, 0, 1000000),  \
        S("RATE_LIMIT_LOGIN_PER_MINUTE", MK_CONFIG_INT, "20", login_rate,                          \
          "login attempts per client address and minute (0: no limit)", NULL, 0, 1000000),        \
        S("RATE_LIMIT_TOKEN_PER_MINUTE", MK_CONFIG_INT, "0", token_rate,                           \
          "API calls per token and minute unless the token sets its own (0: no limit)", NULL, 0,  \
          100000000),                                                                              \
        S("RUNNER_GRPC_PORT", MK_CONFIG_INT, "5773", runner_grpc_port,                             \
          "admin: the coordinator's gRPC port for runners (0: no coordinator)", NULL, 0, 65535),  \
        S("RUNNER_HEARTBEAT_TIMEOUT", MK_CONFIG_DURATION_MS, "30s", runner_heartbeat_ms,           \
          "admin: a runner silent this long is offline and its tasks requeued", NULL, 1000,       \
          86400000),                                                                               \
        S("RUNNER_TASK_TIMEOUT", MK_CONFIG_DURATION_MS, "30m", runner_task_ms,                     \
          "admin: a task running longer is cancelled and timed_out", NULL, 1000,                  \
          7LL * 86400000),                                                                         \
        S("RUNNER_GRPC_TLS_ENABLED", MK_CONFIG_BOOL, "false", runner_tls,                          \
          "admin: TLS on the coordinator port (needs the cert and key files)", NULL, 0, 0),       \
        S("RUNNER_GRPC_TLS_CERT_FILE", MK_CONFIG_STRING, NULL, runner_tls_cert,                    \
          "admin: PEM certificate chain of the coordinator", NULL, 0, 0),                          \
        S("RUNNER_GRPC_TLS_KEY_FILE", MK_CONFIG_STRING, NULL, runner_tls_key,                      \
          "admin: PEM private key of the coordinator", NULL, 0, 0),                                \
        S("RUNNER_GRPC_TLS_CLIENT_CA_CERT", MK_CONFIG_STRING, NULL, runner_tls_client_ca,          \
          "admin: mTLS, runners must present a certificate signed by this CA", NULL, 0, 0),       \
        S("RUNNER_GRPC_TLS_DIR", MK_CONFIG_STRING, ".mockarty/tls", runner_tls_dir,                \
          "admin: TLS without cert and key files: a self-signed pair made here once, then reused", \
          NULL, 0, 0),                                                                             \
        S("COORDINATOR_ADDR", MK_CONFIG_STRING, NULL, coordinator_addr,                            \
          "resolvers: register with the coordinator at host:port (with API_TOKEN) for health "    \
          "tracking", NULL, 0, 0),       \
        S("SHUTDOWN_DRAIN", MK_CONFIG_DURATION_MS, "5s", shutdown_drain_ms,                        \
          "on SIGTERM: /health/ready fails and serving goes on this long before the node stops",  \
          NULL, 0, 3600000),                                                                       \
        S("SHUTDOWN_TIMEOUT", MK_CONFIG_DURATION_MS, "20s", shutdown_timeout_ms,                   \
          "after the drain: how long requests and streams in flight may take to finish", NULL, 0, \
          3600000),                                                                                \
        S("GRPC_MOCK_PORT", MK_CONFIG_INT, GRPC_PORT, grpc_mock_port,                              \
          "gRPC mocks port, h2c or TLS (0: no gRPC mocks)", NULL, 0, 65535),                      \
        S("GRPC_MOCK_TLS_CERT_FILE", MK_CONFIG_STRING, NULL, grpc_mock_tls_cert,                   \
          "PEM certificate chain: TLS on the gRPC mocks port", NULL, 0, 0),                        \
        S("GRPC_MOCK_TLS_KEY_FILE", MK_CONFIG_STRING, NULL, grpc_mock_tls_key,                     \
          "PEM private key of the gRPC mocks port", NULL, 0, 0)

static const mk_config_spec_t admin_spec[] = {SETTINGS("5770", "sqlite", "5771")};
static const mk_config_spec_t resolver_spec[] = {SETTINGS("5780", "postgres", "5781")};
#undef SETTINGS
#undef S

/* Everything a running node holds, freed in reverse order of creation. */
typedef struct node_parts {
    mk_boot_role_t role;
    settings_t cfg;
    char hostname[256];
    mk_repo_t *repo;
    mk_store_t *store;
    mk_metrics_t *metrics;
    mk_catalog_t *catalog;
    mk_journal_t *journal;
    mk_api_t *api;
    mk_serve_t *serve;
    mk_webhook_sender_t *mock_hooks; /* per-mock webhooks */
    mk_node_t *node;
    mk_follow_t *follow;
    mk_httpd_t *httpd;
    bool auth_required;
    mk_coord_announce_t *announce; /* resolver: registration with the coordinator */
    mk_coord_t *coord; /* admin: the runners' coordinator; NULL when off or its port was taken */
    mk_grpcmock_t *grpcmock; /* gRPC mocks; NULL when GRPC_MOCK_PORT is 0 */
    mk_repo_t *pg;           /* the PostgreSQL repository inside repo (borrowed), for replicas */
    mk_redis_sentinel_t *sentinel; /* REPO_REDIS_SENTINELS: the master's watcher, for health */
    char replica_seen[512];  /* replicas up/down, as last logged */
    int db_seen, redis_seen; /* 1 up, 0 down, as last logged; -1 not yet */
    char sentinel_seen[600]; /* the sentinel state, as last logged */
} node_parts_t;

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

static const char *role_name(mk_boot_role_t role)
{
    return role == MK_BOOT_ADMIN ? "admin" : "resolver";
}

static int open_repo(node_parts_t *p, mk_err_t *err)
{
    const settings_t *c = &p->cfg;
    mk_repo_t *db = NULL;
    int rc;
    if (strcmp(c->db_use, "postgres") == 0) {
        if (c->db_dsn == NULL || c->db_dsn[0] == '\0')
            return mk_err_set(err, MK_EINVAL, "DB_DSN: required with DB_USE=postgres");
        /* A resolver started beside a fresh admin waits for it to create the schema. */
        mk_pg_opts_t po = {.pool_size = (int)c->db_pool,
                           .migrate = p->role == MK_BOOT_ADMIN,
                           .schema_wait_ms = p->role == MK_BOOT_ADMIN ? 0 : 30000,
                           .listen_dsn = c->db_listen_dsn,
                           /* The admin reads its own writes: the primary only. */
                           .read_dsn = p->role == MK_BOOT_RESOLVER ? c->db_read_dsn : NULL,
                           .read_wait_ms = c->db_read_wait_ms > 0 ? (int)c->db_read_wait_ms : 1};
        if (strcmp(c->db_prepared, "on") == 0)
            po.prepared = MK_PG_PREPARED_ON;
        else if (strcmp(c->db_prepared, "off") == 0)
            po.prepared = MK_PG_PREPARED_OFF;
        rc = mk_pg_repo_open(c->db_dsn, &po, &db, err);
        p->pg = db;
    } else {
        rc = mk_sqlite_repo_open(c->db_path, &db, err);
    }
    if (rc != 0)
        return rc;
    mk_redis_opts_t ro = {.host = c->redis_host,
                          .port = c->redis_port,
                          .password = c->redis_password,
                          .db = (int)c->redis_db,
                          .sentinels = c->redis_sentinels,
                          .master_name = c->redis_master_name,
                          .sentinel_password = c->redis_sentinel_password};
    mk_composite_opts_t co = {.cache_max_bytes = c->cache_max,
                              .redis = strcmp(c->cache_type, "redis") == 0 ? &ro : NULL,
                              .no_l1_fill_on_write = p->role == MK_BOOT_ADMIN};
    return mk_composite_open(db, &co, &p->repo, err);
}

static int open_store(node_parts_t *p, mk_err_t *err)
{
    const settings_t *c = &p->cfg;
    mk_store_opts_t so = {
        .type = strcmp(c->store_type, "redis") == 0 ? MK_STORE_REDIS : MK_STORE_MEMORY,
        .redis_host = c->redis_host,
        .redis_port = c->redis_port,
        .redis_password = c->redis_password,
        .redis_db = (int)c->redis_db,
        .redis_sentinels = c->redis_sentinels,
        .redis_master_name = c->redis_master_name,
        .redis_sentinel_password = c->redis_sentinel_password,
        .max_value_bytes = c->store_max_value,
        .history_ms = c->history_ms,
    };
    return mk_store_open(&so, &p->store, err);
}

/* The coordinator on RUNNER_GRPC_PORT. A port already taken only disables it (with a warning):
 * several admins on one machine (tests, laptops) must not fail over a port none of them asked for;
 * bad TLS settings are an error. */
static int start_coordinator(node_parts_t *p)
{
    const settings_t *c = &p->cfg;
    if (c->runner_grpc_port == 0)
        return 0;
    if (c->runner_tls && (c->runner_tls_cert == NULL) != (c->runner_tls_key == NULL)) {
        fprintf(stderr, "mockarty admin: RUNNER_GRPC_TLS_CERT_FILE and RUNNER_GRPC_TLS_KEY_FILE "
                        "must be set together\n");
        return 1;
    }
    mk_err_t err;
    char cert[1100], key[1100];
    mk_grpc_tls_opts_t tls = {.cert_file = c->runner_tls_cert,
                              .key_file = c->runner_tls_key,
                              .ca_file = c->runner_tls_client_ca};
    if (c->runner_tls && c->runner_tls_cert == NULL) {
        if (mk_coord_selfsigned(c->runner_tls_dir, c->node_name, cert, key, sizeof cert, &err)) {
            fprintf(stderr, "mockarty admin: coordinator TLS: %s\n", err.msg);
            return 1;
        }
        tls.cert_file = cert;
        tls.key_file = key;
        printf("mockarty admin: coordinator TLS certificate %s (self-signed)\n", cert);
    }
    mk_coord_config_t cc = {
        .host = c->http_host,
        .port = (int)c->runner_grpc_port,
        .tls = c->runner_tls ? &tls : NULL,
        .api_token = c->api_token,
        .allow_anonymous = !p->auth_required,
        .queue = {.heartbeat_timeout_ms = c->runner_heartbeat_ms,
                  .task_timeout_ms = c->runner_task_ms},
    };
    if (mk_coord_new(&cc, p->repo, mk_api_identity(p->api), &p->coord, &err) != 0) {
        fprintf(stderr, "mockarty admin: coordinator: %s\n", err.msg);
        return 1;
    }
    if (mk_coord_start(p->coord, &err) != 0) {
        fprintf(stderr, "mockarty admin: coordinator disabled: %s\n", err.msg);
        mk_coord_free(p->coord);
        p->coord = NULL;
        return 0;
    }
    mk_api_set_coordinator(p->api, p->coord);
    printf("mockarty admin: coordinator (gRPC%s) on port %d\n", c->runner_tls ? ", TLS" : "",
           mk_coord_port(p->coord));
    return 0;
}

/* The gRPC mock server on GRPC_MOCK_PORT, reading the catalog and journal through the slot after
 * the HTTP workers'. */
static int start_grpcmock(node_parts_t *p, unsigned slot)
{
    const settings_t *c = &p->cfg;
    mk_grpc_tls_opts_t tls = {.cert_file = c->grpc_mock_tls_cert, .key_file = c->grpc_mock_tls_key};
    mk_grpcmock_opts_t go = {.host = c->http_host,
                             .port = (int)c->grpc_mock_port,
                             .tls = c->grpc_mock_tls_cert ? &tls : NULL,
                             .catalog = p->catalog,
                             .reader_slot = slot,
                             .journal = p->journal,
                             .journal_slot = slot,
                             .metrics = p->metrics,
                             .repo = p->repo,
                             .poll_ms = (int)c->poll_ms,
                             .details = strcmp(c->near_miss, "public") == 0
                                            ? MK_GRPCMOCK_DETAILS_PUBLIC
                                        : strcmp(c->near_miss, "off") == 0
                                            ? MK_GRPCMOCK_DETAILS_OFF
                                            : MK_GRPCMOCK_DETAILS_TOKEN,
                             .api_token = c->api_token};
    /* Credentials other than API_TOKEN (sessions, user tokens) are not checked over gRPC: an
     * admin that requires them keeps the details to itself. */
    if (go.details == MK_GRPCMOCK_DETAILS_TOKEN && (c->api_token == NULL || !c->api_token[0]) &&
        p->auth_required)
        go.details = MK_GRPCMOCK_DETAILS_OFF;
    mk_err_t err;
    if (mk_grpcmock_start(&go, &p->grpcmock, &err) != 0) {
        /* A taken port (another node on this host) costs the gRPC mocks, not the node. */
        fprintf(stderr, "mockarty %s: warning: no gRPC mocks on port %d: %s\n",
                role_name(p->role), (int)c->grpc_mock_port, err.msg);
        p->grpcmock = NULL;
    }
    return 0;
}

/* A resolver holds its port but answers nothing until its first full snapshot is loaded
 * (connections wait in the backlog), so a load balancer without readiness checks never gets a
 * 404 for a mock that exists from a node still loading. Bounded: after 30 s it serves while the
 * load goes on (the database went away meanwhile), as before. */
static double elapsed_ms(const struct timespec *a);

static void first_load(node_parts_t *p)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (p->follow != NULL && !mk_follow_ready(p->follow) && !stop) {
        if (elapsed_ms(&t0) > 30000) {
            fprintf(stderr, "mockarty resolver: snapshot not loaded after 30 s; serving while it "
                            "loads (/health/ready stays 503)\n");
            return;
        }
        usleep(5 * 1000);
    }
}

/* Builds every module; returns 0 or prints why not and returns 1. */
static int assemble(node_parts_t *p, mk_httpd_config_t *hc)
{
    mk_err_t err;
    settings_t *c = &p->cfg;
    const char *who = role_name(p->role);
    if (open_repo(p, &err) != 0) {
        fprintf(stderr, "mockarty %s: database: %s\n", who, err.msg);
        return 1;
    }
    if (open_store(p, &err) != 0) {
        fprintf(stderr, "mockarty %s: store: %s\n", who, err.msg);
        return 1;
    }
    if (c->redis_sentinels && c->redis_sentinels[0] &&
        (strcmp(c->cache_type, "redis") == 0 || strcmp(c->store_type, "redis") == 0)) {
        mk_redis_opts_t ro = {.sentinels = c->redis_sentinels,
                              .master_name = c->redis_master_name,
                              .sentinel_password = c->redis_sentinel_password};
        if (mk_redis_sentinel_open(&ro, &p->sentinel, &err) != 0) {
            fprintf(stderr, "mockarty %s: redis sentinel: %s\n", who, err.msg);
            return 1;
        }
    }
    /* One metrics shard, reader and journal slot more than HTTP workers: the gRPC mock server's
     * loop. */
    p->metrics = mk_metrics_new(hc->workers + 1);
    p->catalog = mk_catalog_new(hc->workers + 1);
    p->journal = mk_journal_new(c->journal_max, c->journal_body_max, hc->workers + 1);
    if (p->journal != NULL)
        mk_journal_share(p->journal, p->store);
    if (p->role == MK_BOOT_ADMIN) {
        bool auth = strcmp(c->auth_required, "true") == 0 ||
                    (strcmp(c->auth_required, "auto") == 0 &&
                     ((c->api_token && c->api_token[0]) ||
                      (c->admin_password && c->admin_password[0])));
        p->auth_required = auth;
        mk_api_config_t ac = {.api_token = c->api_token,
                              .admin_password = c->admin_password,
                              .auth_required = auth,
                              .session_ttl_ms = c->session_ttl_ms,
                              .audit_retention_days = c->audit_retention_days,
                              .login_rate_per_minute = c->login_rate,
                              .token_rate_per_minute = c->token_rate,
                              .test_run_retention_ms = c->test_run_retention_ms,
                              .test_run_keep = c->test_run_keep,
                              .perf_result_retention_ms = c->perf_result_retention_ms,
                              .perf_result_keep = c->perf_result_keep};
        p->api = mk_api_new(&ac, p->catalog, p->repo, p->journal, p->store);
    }
    p->serve = mk_serve_new(p->catalog, p->journal, p->store);
    if (p->serve != NULL && mk_serve_graphql_start(p->repo, (int)c->poll_ms, &err) != 0)
        fprintf(stderr, "mockarty %s: GraphQL schemas unavailable: %s\n", who, err.msg);
    if (p->serve != NULL && mk_webhook_sender_new(0, &p->mock_hooks, &err) == 0)
        mk_serve_set_webhooks(p->serve, p->mock_hooks);
    /* Recording sessions are the admin's (resolvers proxy without recording). */
    if (p->serve != NULL && p->api != NULL)
        mk_serve_set_recorder(p->serve, mk_api_recorder_record, p->api);
    if (c->node_name == NULL && gethostname(p->hostname, sizeof p->hostname - 1) == 0)
        c->node_name = strdup(p->hostname);
    mk_node_config_t nc = {
        .release_id = MOCKARTY_VERSION,
        .role = who,
        .node_name = c->node_name,
        .api_token = c->api_token,
        .details = strcmp(c->near_miss, "public") == 0 ? MK_SERVE_DETAILS_PUBLIC
                   : strcmp(c->near_miss, "off") == 0  ? MK_SERVE_DETAILS_OFF
                                                       : MK_SERVE_DETAILS_TOKEN,
        .ui_prefix = c->ui_prefix,
    };
    p->node = mk_node_new(&nc, p->serve, p->api, p->catalog, p->journal, p->metrics, p->repo);
    if (!p->metrics || !p->catalog || !p->journal || !p->serve || !p->node ||
        (p->role == MK_BOOT_ADMIN && !p->api)) {
        fprintf(stderr, "mockarty %s: out of memory\n", who);
        return 1;
    }
    mk_repo_set_observer(p->repo, observe_db, p->metrics);
    if (p->role == MK_BOOT_ADMIN) {
        if (mk_api_load(p->api, &err) != 0) {
            fprintf(stderr, "mockarty admin: loading mocks: %s\n", err.msg);
            return 1;
        }
        char pw[33];
        if (mk_api_take_generated_password(p->api, pw)) {
            /* Once, on standard output only: it is stored as a hash and never logged again. */
            printf("mockarty admin: first start: created user \"admin\" with password %s "
                   "(shown once)\n",
                   pw);
            fflush(stdout);
            memset(pw, 0, sizeof pw);
        }
        if (start_coordinator(p) != 0)
            return 1;
    } else {
        mk_follow_opts_t fo = {.poll_ms = c->poll_ms};
        if (mk_follow_start(p->repo, p->catalog, &fo, &p->follow, &err) != 0) {
            fprintf(stderr, "mockarty resolver: following changes: %s\n", err.msg);
            return 1;
        }
        if (c->coordinator_addr && c->coordinator_addr[0]) {
            char addr[300];
            snprintf(addr, sizeof addr, "%s:%d", c->node_name ? c->node_name : "", c->http_port);
            mk_coord_announce_opts_t ao = {.target = c->coordinator_addr,
                                           .token = c->api_token,
                                           .name = c->node_name,
                                           .address = addr};
            if (mk_coord_announce_start(&ao, &p->announce, &err) != 0) {
                fprintf(stderr, "mockarty resolver: coordinator: %s\n", err.msg);
                return 1;
            }
        }
    }
    if (mk_httpd_new(hc, mk_node_handle, p->node, &p->httpd, &err) != 0) {
        fprintf(stderr, "mockarty %s: %s\n", who, err.msg);
        return 1;
    }
    first_load(p);
    /* After the first load: a gRPC call never meets a resolver that has not loaded its mocks
     * (it would answer UNIMPLEMENTED for a mock that exists). */
    if (c->grpc_mock_port > 0 && start_grpcmock(p, hc->workers) != 0)
        return 1;
    if (mk_httpd_start(p->httpd, &err) != 0) {
        fprintf(stderr, "mockarty %s: %s\n", who, err.msg);
        return 1;
    }
    return 0;
}

static double elapsed_ms(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

static void tier_gauges(mk_metrics_t *m, const char *tier, const mk_composite_tier_stats_t *t)
{
    uint64_t total = t->hits + t->misses;
    mk_metrics_gauge_set(m, "cache_hit_ratio", "Hits over lookups of the mock cache tiers", "tier",
                         tier, total ? (double)t->hits / (double)total : 0);
    mk_metrics_gauge_set(m, "cache_hits", "Hits of the mock cache tiers since start", "tier", tier,
                         (double)t->hits);
    mk_metrics_gauge_set(m, "cache_misses", "Misses of the mock cache tiers since start", "tier",
                         tier, (double)t->misses);
}

static void publish_cache_metrics(node_parts_t *p)
{
    mk_composite_tier_stats_t memory, redis;
    mk_composite_stats(p->repo, &memory, &redis);
    tier_gauges(p->metrics, "memory", &memory);
    if (strcmp(p->cfg.cache_type, "redis") == 0)
        tier_gauges(p->metrics, "redis", &redis);
}

/* The coordinator's queue as the seed's gauges, per namespace (a namespace whose tasks are all
 * done drops out). */
static void publish_runner_metrics(node_parts_t *p)
{
    if (p->coord == NULL)
        return;
    json_t *depths = mk_queue_depths(mk_coord_queue(p->coord));
    mk_metrics_gauge_clear(p->metrics, "runner_queue_depth");
    mk_metrics_gauge_clear(p->metrics, "runner_active_tasks");
    const char *ns;
    json_t *d;
    json_object_foreach(depths, ns, d)
    {
        mk_metrics_gauge_set(p->metrics, "runner_queue_depth", "Tasks waiting for a runner",
                             "namespace", ns,
                             (double)json_integer_value(json_object_get(d, "queued")));
        mk_metrics_gauge_set(p->metrics, "runner_active_tasks",
                             "Tasks assigned to or run by runners", "namespace", ns,
                             (double)json_integer_value(json_object_get(d, "active")));
    }
    json_decref(depths);
}

/* The coordinator component of /health: the admin's own (with the runners online), or a
 * resolver's registration with it; none when neither is configured. */
static void coordinator_status(node_parts_t *p, mk_node_status_t *st)
{
    if (p->coord != NULL) {
        json_t *nodes = mk_queue_runners(mk_coord_queue(p->coord), "runner");
        size_t i;
        json_t *r;
        json_array_foreach(nodes, i, r)
        {
            const char *state = json_string_value(json_object_get(r, "state"));
            st->runners_online += state && strcmp(state, "online") == 0;
        }
        json_decref(nodes);
        st->coordinator = "up";
    } else if (p->announce != NULL) {
        st->coordinator = mk_coord_announce_status(p->announce, st->coordinator_error,
                                                   sizeof st->coordinator_error)
                              ? "up"
                              : "down";
    } else if (p->role == MK_BOOT_ADMIN) {
        st->coordinator = "disabled";
    }
}

/* On SIGTERM: not ready, still serving for SHUTDOWN_DRAIN so load balancers take the node out;
 * keep-alive connections close after their next answer. A second signal ends it early. */
static void drain(node_parts_t *p, const char *binary)
{
    int64_t ms = p->cfg.shutdown_drain_ms;
    mk_node_set_draining(p->node);
    mk_httpd_drain(p->httpd);
    fprintf(stderr, "%s: shutting down: not ready, serving %lld ms more (SHUTDOWN_DRAIN)\n",
            binary, (long long)ms);
    stop = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!stop && elapsed_ms(&t0) < (double)ms) {
        usleep(50 * 1000);
        if (p->api)
            mk_api_maintain(p->api);
        else
            mk_catalog_reclaim(p->catalog);
    }
}

/* The read replicas: a /health component, gauges, and a log line when one goes down or up. */
static json_t *replica_status(node_parts_t *p)
{
    mk_pg_replica_status_t st[16];
    int n = 0;
    mk_pg_repo_replicas(p->pg, st, 16, &n);
    if (n == 0)
        return NULL;
    json_t *list = json_array();
    char seen[sizeof p->replica_seen] = "";
    for (int i = 0; i < n; i++) {
        json_t *r = json_pack("{s:s, s:s, s:I, s:I, s:f}", "name", st[i].name, "status",
                              st[i].up ? "up" : "down", "changeSeq", (json_int_t)st[i].seq,
                              "lagSeq", (json_int_t)st[i].lag_seq, "lagMs", st[i].lag_ms);
        if (!st[i].up)
            json_object_set_new(r, "error", json_string(st[i].error));
        json_array_append_new(list, r);
        mk_metrics_gauge_set(p->metrics, "db_replica_up", "Read replica answering (1) or not (0)",
                             "replica", st[i].name, st[i].up);
        mk_metrics_gauge_set(p->metrics, "db_replica_lag_seq",
                             "Changes the primary has that the read replica has not replayed",
                             "replica", st[i].name, (double)st[i].lag_seq);
        mk_metrics_gauge_set(p->metrics, "db_replica_lag_seconds",
                             "Replay delay of the read replica while it is behind", "replica",
                             st[i].name, st[i].lag_ms / 1000.0);
        char mark[200];
        snprintf(mark, sizeof mark, "%s%s ", st[i].name, st[i].up ? "+" : "-");
        /* Logged on a change, and at the first check only when down. */
        if (strstr(p->replica_seen, mark) == NULL && (p->replica_seen[0] != '\0' || !st[i].up))
            fprintf(stderr, "mockarty resolver: read replica %s %s %s\n", st[i].name,
                    st[i].up ? "is up" : "is down, reads go to the others or the primary:",
                    st[i].up ? "" : st[i].error);
        size_t room = sizeof seen - strlen(seen);
        strncat(seen, mark, room - 1);
    }
    mk_metrics_gauge_set(p->metrics, "db_replica_primary_reads",
                         "Reads sent to the primary since start because no replica was caught "
                         "up or up",
                         NULL, NULL, (double)st[0].fallbacks);
    snprintf(p->replica_seen, sizeof p->replica_seen, "%s", seen);
    return list;
}

/* Redis Sentinel: a /health component and a log line when the master or the sentinels change. */
static json_t *sentinel_status(node_parts_t *p)
{
    if (p->sentinel == NULL)
        return NULL;
    mk_redis_sentinel_info_t in;
    mk_redis_sentinel_info(p->sentinel, &in);
    const char *who = role_name(p->role);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "status", in.sentinels_up ? "up" : "down",
                          "master", in.known ? in.master : "", "masterName",
                          p->cfg.redis_master_name, "sentinels", p->cfg.redis_sentinels,
                          "failovers", (json_int_t)in.switches);
    if (!in.sentinels_up)
        json_object_set_new(o, "error", json_string(in.error));
    char seen[sizeof p->sentinel_seen];
    snprintf(seen, sizeof seen, "%s|%s", in.master, in.sentinels_up ? "" : in.error);
    if (strcmp(seen, p->sentinel_seen) != 0) {
        if (!in.sentinels_up)
            fprintf(stderr, "mockarty %s: redis sentinels: %s%s%s\n", who, in.error,
                    in.known ? "; keeping master " : "", in.known ? in.master : "");
        else
            fprintf(stderr, "mockarty %s: redis master \"%s\" is %s (from the sentinels)\n", who,
                    p->cfg.redis_master_name, in.master);
        snprintf(p->sentinel_seen, sizeof p->sentinel_seen, "%s", seen);
    }
    mk_metrics_gauge_set(p->metrics, "redis_master_switches",
                         "Changes of Redis master seen through the sentinels", NULL, NULL,
                         (double)in.switches);
    return o;
}

/* The health of the dependencies, measured here (off the request path) and handed to the node. */
static void refresh_status(node_parts_t *p)
{
    mk_node_status_t st = {.redis = "not_configured"};
    struct timespec t0;
    mk_err_t err;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st.db_up = mk_repo_ping(p->repo, &err) == 0;
    if (st.db_up)
        snprintf(err.msg, sizeof err.msg, "the last read of the changes failed");
    st.db_latency_ms = elapsed_ms(&t0);
    if (p->follow != NULL) {
        st.ready = mk_follow_ready(p->follow);
        st.db_up = st.db_up && mk_follow_db_up(p->follow);
        st.change_seq = mk_follow_seq(p->follow);
    } else {
        st.ready = true;
    }
    /* A database (or PgBouncer) that refuses is logged once when it goes and once when it is
     * back; the node keeps serving what it has meanwhile. */
    if (st.db_up != (p->db_seen == 1) && (p->db_seen != -1 || !st.db_up)) {
        if (st.db_up)
            fprintf(stderr, "mockarty %s: database is back up\n", role_name(p->role));
        else
            fprintf(stderr, "mockarty %s: database is down, serving what is loaded: %s\n",
                    role_name(p->role), err.msg);
    }
    p->db_seen = st.db_up;
    double cache_ms = 0, store_ms = 0;
    const char *cache = mk_composite_redis_status(p->repo, &cache_ms);
    const char *store = "not_configured";
    if (strcmp(mk_store_backend(p->store), "redis") == 0)
        store = mk_store_ping(p->store, &store_ms, &err) == 0 ? "up" : "down";
    if (strcmp(cache, "down") == 0 || strcmp(store, "down") == 0)
        st.redis = "down";
    else if (strcmp(cache, "up") == 0 || strcmp(store, "up") == 0)
        st.redis = "up";
    st.redis_latency_ms = cache_ms > store_ms ? cache_ms : store_ms;
    if (strcmp(st.redis, "not_configured") != 0) {
        bool up = strcmp(st.redis, "up") == 0;
        if (up != (p->redis_seen == 1) && (p->redis_seen != -1 || !up))
            fprintf(stderr, "mockarty %s: redis is %s\n", role_name(p->role),
                    up ? "back up" : "down: store operations answer 503 until it returns");
        p->redis_seen = up;
    }
    coordinator_status(p, &st);
    mk_node_set_status(p->node, &st);
    json_t *extra = json_object();
    json_t *replicas = p->pg ? replica_status(p) : NULL;
    json_t *sentinel = sentinel_status(p);
    if (replicas != NULL)
        json_object_set_new(extra, "readReplicas", replicas);
    if (sentinel != NULL)
        json_object_set_new(extra, "redisSentinel", sentinel);
    mk_node_set_components(p->node, extra);
    publish_cache_metrics(p);
    publish_runner_metrics(p);
}

static void announce(const node_parts_t *p, const mk_httpd_config_t *hc)
{
    const settings_t *c = &p->cfg;
    int port = mk_httpd_port(p->httpd);
    printf("mockarty %s: %s node listening on %s://%s:%d (%u workers, %s%s%s, stores: %s, "
           "cache: %s)\n",
           MOCKARTY_VERSION, role_name(p->role), c->tls_cert ? "https" : "http", c->http_host, port,
           hc->workers, strcmp(c->db_use, "postgres") == 0 ? "PostgreSQL" : "SQLite at ",
           strcmp(c->db_use, "postgres") == 0 ? "" : c->db_path, "", c->store_type, c->cache_type);
    if (p->role == MK_BOOT_ADMIN)
        printf("create a mock:  curl -X POST localhost:%d/api/v1/mocks -d "
               "'{\"http\":{\"route\":\"/hello\",\"httpMethod\":\"GET\"},"
               "\"response\":{\"statusCode\":200,\"payload\":{\"hello\":\"world\"}}}'\n"
               "then call it:   curl localhost:%d/hello\n",
               port, port);
    fflush(stdout);
}

static void teardown(node_parts_t *p, const mk_config_spec_t *spec, size_t nspec)
{
    mk_httpd_stop(p->httpd);
    /* Mock webhooks still out end now ("stopped"), while the worker loops' state is alive. */
    mk_webhook_sender_free(p->mock_hooks);
    if (p->api)
        mk_api_maintain(p->api);
    mk_httpd_free(p->httpd);
    mk_grpcmock_free(p->grpcmock);
    /* The change feed lives in the repository: stop the follower, then the feed, then free. */
    mk_follow_stop(p->follow);
    mk_coord_announce_stop(p->announce);
    if (p->api)
        mk_api_set_coordinator(p->api, NULL);
    mk_coord_free(p->coord);
    mk_node_free(p->node);
    mk_serve_free(p->serve);
    mk_api_free(p->api);
    mk_journal_free(p->journal);
    mk_serve_graphql_stop(); /* its poller reads the repository */
    mk_repo_free(p->repo);
    mk_follow_free(p->follow);
    mk_catalog_free(p->catalog);
    mk_metrics_free(p->metrics);
    mk_store_free(p->store);
    mk_redis_sentinel_close(p->sentinel);
    mk_config_free(spec, nspec, &p->cfg);
}

int mk_boot_main(mk_boot_role_t role, int argc, char **argv)
{
    const mk_config_spec_t *spec = role == MK_BOOT_ADMIN ? admin_spec : resolver_spec;
    size_t nspec = role == MK_BOOT_ADMIN ? sizeof admin_spec / sizeof *admin_spec
                                         : sizeof resolver_spec / sizeof *resolver_spec;
    const char *binary = role == MK_BOOT_ADMIN ? "mockarty" : "mockarty-resolver";
    node_parts_t p;
    mk_err_t err;
    const char *config_path = NULL;
    bool help = false;

    memset(&p, 0, sizeof p);
    p.role = role;
    p.db_seen = p.redis_seen = -1;
    if (mk_config_parse_args(argc, argv, &config_path, &help, &err) != 0) {
        fprintf(stderr, "%s: %s\n", binary, err.msg);
        return 2;
    }
    if (help) {
        mk_buf_t out;
        mk_buf_init(&out, 0);
        mk_config_usage(spec, nspec, &out);
        printf("Usage: %s [--config FILE]\n\nSettings (environment or YAML file):\n%s", binary,
               out.data ? out.data : "");
        mk_buf_free(&out);
        return 0;
    }
    if (mk_config_load(spec, nspec, &p.cfg, config_path, environ, &err) != 0) {
        fprintf(stderr, "%s: configuration: %s\n", binary, err.msg);
        return 2;
    }
    if ((p.cfg.tls_cert == NULL) != (p.cfg.tls_key == NULL)) {
        fprintf(stderr,
                "%s: configuration: HTTP_TLS_CERT_FILE and HTTP_TLS_KEY_FILE must be set "
                "together\n",
                binary);
        mk_config_free(spec, nspec, &p.cfg);
        return 2;
    }
    mk_httpd_config_t hc = {
        .host = p.cfg.http_host,
        .port = p.cfg.http_port,
        .workers = (unsigned)p.cfg.http_workers,
        .tls_cert = p.cfg.tls_cert,
        .tls_key = p.cfg.tls_key,
        .max_body_bytes = p.cfg.max_body,
        .req_timeout_ms = (uint64_t)p.cfg.request_timeout_ms,
        .max_inflight_body_bytes = p.cfg.inflight_body,
        .max_client_inflight_body_bytes = p.cfg.client_inflight_body,
        .offload_threads = (unsigned)p.cfg.admin_threads,
        .stop_grace_ms = (uint64_t)p.cfg.shutdown_timeout_ms,
    };
    unsigned workers = hc.workers ? hc.workers : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    hc.workers = workers ? workers : 1;

    signal(SIGPIPE, SIG_IGN);
    int status = assemble(&p, &hc);
    if (status == 0) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        refresh_status(&p);
        announce(&p, &hc);
        /* Upkeep off the hot path: usage counters to the database (admin), retired snapshots
         * freed, dependency health measured. */
        for (int tick = 0; !stop; tick++) {
            usleep(100 * 1000);
            if (p.api)
                mk_api_maintain(p.api);
            else
                mk_catalog_reclaim(p.catalog);
            if (tick % 5 == 0 || (p.follow && !mk_follow_ready(p.follow)))
                refresh_status(&p);
        }
        drain(&p, binary);
        fprintf(stderr, "%s: shutting down: finishing requests in flight\n", binary);
    }
    teardown(&p, spec, nspec);
    return status;
}
