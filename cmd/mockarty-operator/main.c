/* mockarty-operator: reconciles MockartyCluster and MockartyRunnerPool resources. Reads its
 * settings, connects to the Kubernetes API, runs the controller until SIGINT/SIGTERM. */
#include "config/config.h"
#include "controller/controller.h"
#include "kube/kube.h"

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OPERATOR_VERSION "0.1.0"

extern char **environ;

typedef struct settings {
    char *kubeconfig;
    char *watch_namespace;
    int health_port;
    bool leader_election;
    char *lease_namespace;
    char *lease_name;
    char *pod_name;
    int64_t resync_ms;
    char *log_level;
} settings_t;

#define S(env, type, def, field, help, choices, min, max)                                          \
    {                                                                                              \
        env, type, def, offsetof(settings_t, field), help, choices, min, max                       \
    }
static const mk_config_spec_t spec[] = {
    S("KUBECONFIG", MK_CONFIG_STRING, NULL, kubeconfig,
      "kubeconfig file (default: in-cluster service account, then ~/.kube/config)", NULL, 0, 0),
    S("WATCH_NAMESPACE", MK_CONFIG_STRING, NULL, watch_namespace,
      "only reconcile resources in this namespace (default: all)", NULL, 0, 0),
    S("HEALTH_PORT", MK_CONFIG_PORT, "8080", health_port, "port of /healthz, /readyz, /metrics",
      NULL, 0, 0),
    S("LEADER_ELECTION", MK_CONFIG_BOOL, "true", leader_election,
      "hold a Lease so that only one replica reconciles", NULL, 0, 0),
    S("LEADER_ELECTION_NAMESPACE", MK_CONFIG_STRING, NULL, lease_namespace,
      "namespace of the Lease (default: the operator's own namespace)", NULL, 0, 0),
    S("LEADER_ELECTION_ID", MK_CONFIG_STRING, "mockarty-operator-leader", lease_name,
      "name of the Lease", NULL, 0, 0),
    S("POD_NAME", MK_CONFIG_STRING, NULL, pod_name,
      "this replica's identity in the Lease (default: hostname-pid)", NULL, 0, 0),
    S("RESYNC_PERIOD", MK_CONFIG_DURATION_MS, "10m", resync_ms, "requeue every resource this often",
      NULL, 1000, 86400000),
    S("LOG_LEVEL", MK_CONFIG_ENUM, "info", log_level, "least severe level logged",
      "debug|info|warn|error", 0, 0),
};
#undef S
#define NSPEC (sizeof spec / sizeof *spec)

static volatile int stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int level_rank(const char *level)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(levels[i], level) == 0)
            return i;
    return 1;
}

/* One JSON object per line on stderr, so log collectors need no parser of ours. */
static void log_line(void *ud, const char *level, const char *msg)
{
    const settings_t *cfg = ud;
    if (level_rank(level) < level_rank(cfg->log_level))
        return;
    char now[40];
    mk_kube_time_now(now, sizeof now, true);
    json_t *line = json_pack("{s:s, s:s, s:s}", "time", now, "level", level, "msg", msg);
    char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text)
        fprintf(stderr, "%s\n", text);
    free(text);
    json_decref(line);
}

int main(int argc, char **argv)
{
    settings_t cfg;
    mk_err_t err = {0};
    const char *config_path = NULL;
    bool help = false;
    int status = 1;
    mk_kube_config_t *kc = NULL;
    mk_kube_t *kube = NULL;
    mk_controller_t *ctl = NULL;
    char identity[256];

    memset(&cfg, 0, sizeof cfg);
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("mockarty-operator " OPERATOR_VERSION "\n");
        return 0;
    }
    if (mk_config_parse_args(argc, argv, &config_path, &help, &err) != 0) {
        fprintf(stderr, "mockarty-operator: %s\n", err.msg);
        return 2;
    }
    if (help) {
        mk_buf_t out;
        mk_buf_init(&out, 0);
        mk_config_usage(spec, NSPEC, &out);
        printf("Usage: mockarty-operator [--config FILE]\n\nSettings (environment or YAML "
               "file):\n%s",
               out.data ? out.data : "");
        mk_buf_free(&out);
        return 0;
    }
    if (mk_config_load(spec, NSPEC, &cfg, config_path, environ, &err) != 0) {
        fprintf(stderr, "mockarty-operator: configuration: %s\n", err.msg);
        return 2;
    }
    if (mk_kube_config_load(cfg.kubeconfig, &kc, &err) != 0) {
        fprintf(stderr, "mockarty-operator: kubernetes configuration: %s\n", err.msg);
        goto out;
    }
    if (cfg.pod_name && cfg.pod_name[0]) {
        snprintf(identity, sizeof identity, "%s", cfg.pod_name);
    } else {
        char host[200] = "mockarty-operator";
        gethostname(host, sizeof host - 1);
        snprintf(identity, sizeof identity, "%s-%ld", host, (long)getpid());
    }
    char ua[320];
    snprintf(ua, sizeof ua, "mockarty-operator/" OPERATOR_VERSION " (%s)", identity);
    free(kc->user_agent);
    kc->user_agent = strdup(ua);
    if (mk_kube_new(kc, &kube, &err) != 0) {
        fprintf(stderr, "mockarty-operator: %s\n", err.msg);
        goto out;
    }
    mk_controller_opts_t opts = {
        .watch_namespace = cfg.watch_namespace,
        .leader_election = cfg.leader_election,
        .lease_namespace =
            cfg.lease_namespace && cfg.lease_namespace[0] ? cfg.lease_namespace : kc->namespace,
        .lease_name = cfg.lease_name,
        .identity = identity,
        .health_port = cfg.health_port,
        .resync_ms = (long)cfg.resync_ms,
        .log = log_line,
        .log_ud = &cfg,
    };
    if (mk_controller_new(kube, &opts, &ctl, &err) != 0) {
        fprintf(stderr, "mockarty-operator: %s\n", err.msg);
        goto out;
    }

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char msg[512];
    snprintf(msg, sizeof msg,
             "mockarty-operator %s starting: server %s, namespace %s, leader election %s, "
             "health port %d, identity %s",
             OPERATOR_VERSION, kc->server,
             cfg.watch_namespace && cfg.watch_namespace[0] ? cfg.watch_namespace : "(all)",
             cfg.leader_election ? "on" : "off", cfg.health_port, identity);
    log_line(&cfg, "info", msg);
    if (mk_controller_run(ctl, &stop, &err) != 0) {
        log_line(&cfg, "error", err.msg);
        goto out;
    }
    log_line(&cfg, "info", "stopped");
    status = 0;
out:
    mk_controller_free(ctl);
    mk_kube_free(kube);
    mk_kube_config_free(kc);
    mk_config_free(spec, NSPEC, &cfg);
    return status;
}
