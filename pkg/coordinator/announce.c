/* A node that takes no tasks (a resolver) registering with the coordinator for health tracking:
 * a thread registers, heartbeats, and registers again (with backoff) whenever the coordinator is
 * lost or has forgotten it. */
#include "coordinator/coordinator.h"

#include "coordinator.pb-c.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SVC "/mockarty.coordinator.v1.Coordinator/"

struct mk_coord_announce {
    char *name, *address;
    mk_grpc_channel_t *ch;
    mk_grpc_mdlist_t md;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stopping;
    bool registered;
    char error[256];
};

/* Copies src into dst (size bytes), cut if longer. */
static void copy_cut(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Sleeps ms unless stopped; true when stopping. */
static bool pause_ms(mk_coord_announce_t *a, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->mu);
    while (!a->stopping && pthread_cond_timedwait(&a->cond, &a->mu, &ts) == 0)
        ;
    bool stop = a->stopping;
    pthread_mutex_unlock(&a->mu);
    return stop;
}

static void set_state(mk_coord_announce_t *a, bool registered, const char *error)
{
    pthread_mutex_lock(&a->mu);
    a->registered = registered;
    copy_cut(a->error, sizeof a->error, error ? error : "");
    pthread_mutex_unlock(&a->mu);
}

/* One unary call; the gRPC code (UNAVAILABLE when it could not start), *resp on OK. */
static int call(mk_coord_announce_t *a, const char *method, const ProtobufCMessage *req,
                uint8_t **resp, size_t *len, char *msg, size_t size)
{
    size_t n = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        return MK_GRPC_RESOURCE_EXHAUSTED;
    protobuf_c_message_pack(req, buf);
    char path[96];
    snprintf(path, sizeof path, SVC "%s", method);
    mk_grpc_status_t st = {0};
    mk_err_t err;
    *resp = NULL;
    int code = mk_grpc_unary(a->ch, path, &a->md, buf, n, 10000, resp, len, &st, &err);
    copy_cut(msg, size, code < 0 ? err.msg : st.message ? st.message : "");
    mk_grpc_status_clear(&st);
    free(buf);
    return code < 0 ? MK_GRPC_UNAVAILABLE : code;
}

static void *announce_main(void *ud)
{
    mk_coord_announce_t *a = ud;
    int backoff = 500;
    while (!a->stopping) {
        Mockarty__Coordinator__V1__RegisterRequest rq =
            MOCKARTY__COORDINATOR__V1__REGISTER_REQUEST__INIT;
        rq.name = a->name;
        rq.shared = true;
        rq.kind = MOCKARTY__COORDINATOR__V1__NODE_KIND__NODE_KIND_RESOLVER;
        rq.address = a->address;
        rq.version = (char *)"";
        uint8_t *resp;
        size_t len;
        char msg[300];
        int code = call(a, "RegisterNode", &rq.base, &resp, &len, msg, sizeof msg);
        Mockarty__Coordinator__V1__RegisterResponse *rs =
            code == MK_GRPC_OK
                ? mockarty__coordinator__v1__register_response__unpack(NULL, len, resp)
                : NULL;
        free(resp);
        if (rs == NULL) {
            set_state(a, false, msg);
            if (pause_ms(a, backoff))
                break;
            backoff = backoff < 10000 ? backoff * 2 : 10000;
            continue;
        }
        backoff = 500;
        char id[40];
        snprintf(id, sizeof id, "%s", rs->runner_id);
        int every = rs->heartbeat_interval_ms > 0 ? rs->heartbeat_interval_ms : 5000;
        mockarty__coordinator__v1__register_response__free_unpacked(rs, NULL);
        set_state(a, true, NULL);
        while (!pause_ms(a, every)) {
            Mockarty__Coordinator__V1__HeartbeatRequest hb =
                MOCKARTY__COORDINATOR__V1__HEARTBEAT_REQUEST__INIT;
            hb.runner_id = id;
            code = call(a, "Heartbeat", &hb.base, &resp, &len, msg, sizeof msg);
            free(resp);
            if (code != MK_GRPC_OK) {
                set_state(a, false, msg);
                break;
            }
        }
    }
    return NULL;
}

int mk_coord_announce_start(const mk_coord_announce_opts_t *o, mk_coord_announce_t **out,
                            mk_err_t *err)
{
    *out = NULL;
    mk_coord_announce_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    a->name = strdup(o->name ? o->name : "resolver");
    a->address = strdup(o->address ? o->address : "");
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cond, NULL);
    int rc = a->name && a->address ? 0 : mk_err_set(err, MK_ENOMEM, "out of memory");
    if (rc == 0 && o->token && o->token[0]) {
        char v[600];
        snprintf(v, sizeof v, "Bearer %s", o->token);
        rc = mk_grpc_md_add(&a->md, "authorization", v, strlen(v));
    }
    mk_grpc_channel_opts_t co = {.target = o->target, .tls = o->tls};
    if (rc == 0)
        rc = mk_grpc_channel_new(&co, &a->ch, err);
    if (rc == 0 && pthread_create(&a->thread, NULL, announce_main, a) != 0)
        rc = mk_err_set(err, MK_ENOMEM, "cannot start the announcing thread");
    if (rc != 0) {
        mk_grpc_channel_free(a->ch);
        mk_grpc_md_clear(&a->md);
        free(a->name);
        free(a->address);
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

bool mk_coord_announce_status(mk_coord_announce_t *a, char *error, size_t size)
{
    pthread_mutex_lock(&a->mu);
    bool ok = a->registered;
    snprintf(error, size, "%s", a->error);
    pthread_mutex_unlock(&a->mu);
    return ok;
}

void mk_coord_announce_stop(mk_coord_announce_t *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
    /* A call in flight ends by its own deadline (10 s) at worst. */
    pthread_join(a->thread, NULL);
    mk_grpc_channel_free(a->ch);
    mk_grpc_md_clear(&a->md);
    free(a->name);
    free(a->address);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cond);
    free(a);
}
