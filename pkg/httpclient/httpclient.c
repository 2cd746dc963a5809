/* One thread, one curl multi handle: a queue of jobs ordered by start time feeds at most
 * max_in_flight transfers; curl_multi_poll sleeps until a socket is ready, the next job is due or
 * mk_httpclient_send wakes it. */
#include "httpclient/httpclient.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_IN_FLIGHT  32
#define DEFAULT_QUEUED     10000
#define DEFAULT_TIMEOUT_MS 10000
#define IDLE_WAIT_MS       1000

typedef struct job {
    struct job *next;   /* in the queue */
    struct job *active; /* in the transfers list */
    int64_t due_ms;
    char *method, *url;
    char *body;
    size_t body_len;
    struct curl_slist *headers;
    int64_t timeout_ms;
    mk_httpclient_cb cb;
    void *ud;
    CURL *easy;
    char resp[MK_HTTPCLIENT_BODY_KEPT];
    size_t resp_len;
    char errbuf[CURL_ERROR_SIZE];
    int64_t started_ms;
} job_t;

struct mk_httpclient {
    pthread_t thread;
    pthread_mutex_t lock;
    job_t *queue; /* by due_ms; under lock */
    size_t queued, max_queued;
    bool stopping; /* under lock */
    CURLM *multi;
    job_t *transfers; /* started, not finished: the thread's own */
    unsigned in_flight, max_in_flight;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void job_free(job_t *j)
{
    if (j == NULL)
        return;
    free(j->method);
    free(j->url);
    free(j->body);
    curl_slist_free_all(j->headers);
    free(j);
}

static void job_end(job_t *j, int status, const char *error)
{
    mk_httpclient_result_t res = {
        .status = status,
        .error = error,
        .duration_ms = j->started_ms ? (double)(mono_ms() - j->started_ms) : 0,
        .body = j->resp,
        .body_len = j->resp_len,
    };
    j->cb(j->ud, &res);
    job_free(j);
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    job_t *j = ud;
    size_t len = size * n, room = sizeof j->resp - j->resp_len;
    memcpy(j->resp + j->resp_len, data, len < room ? len : room);
    j->resp_len += len < room ? len : room;
    return len; /* the rest is read and dropped */
}

static int job_start(mk_httpclient_t *c, job_t *j)
{
    j->easy = curl_easy_init();
    if (j->easy == NULL)
        return -1;
    CURL *e = j->easy;
    curl_easy_setopt(e, CURLOPT_URL, j->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(j->timeout_ms < 5000 ? j->timeout_ms : 5000));
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, j->method);
    if (strcasecmp(j->method, "GET") != 0 && strcasecmp(j->method, "HEAD") != 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body ? j->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
    } else if (strcasecmp(j->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    j->started_ms = mono_ms();
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        j->easy = NULL;
        return -1;
    }
    j->active = c->transfers;
    c->transfers = j;
    c->in_flight++;
    return 0;
}

static void job_finish(mk_httpclient_t *c, job_t *j, CURLcode rc, const char *stopped)
{
    long status = 0;
    curl_multi_remove_handle(c->multi, j->easy);
    if (stopped == NULL && rc == CURLE_OK)
        curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    const char *error = stopped          ? stopped
                        : rc == CURLE_OK ? ""
                        : j->errbuf[0]   ? j->errbuf
                                         : curl_easy_strerror(rc);
    curl_easy_cleanup(j->easy);
    j->easy = NULL;
    for (job_t **at = &c->transfers; *at; at = &(*at)->active) {
        if (*at == j) {
            *at = j->active;
            break;
        }
    }
    c->in_flight--;
    job_end(j, (int)status, error);
}

/* Takes the jobs due now (up to the free transfer slots) off the queue; returns the wait until
 * the next one. */
static long take_due(mk_httpclient_t *c, job_t **due)
{
    int64_t now = mono_ms();
    long wait = IDLE_WAIT_MS;
    pthread_mutex_lock(&c->lock);
    unsigned slots = c->max_in_flight - c->in_flight;
    while (c->queue && c->queue->due_ms <= now && slots > 0) {
        job_t *j = c->queue;
        c->queue = j->next;
        c->queued--;
        j->next = *due;
        *due = j;
        slots--;
    }
    if (c->queue && c->queue->due_ms > now && c->queue->due_ms - now < wait)
        wait = (long)(c->queue->due_ms - now);
    pthread_mutex_unlock(&c->lock);
    return wait;
}

static void *run(void *arg)
{
    mk_httpclient_t *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        bool stop = c->stopping;
        pthread_mutex_unlock(&c->lock);
        if (stop)
            break;
        job_t *due = NULL;
        long wait = take_due(c, &due);
        while (due) {
            job_t *j = due;
            due = j->next;
            if (job_start(c, j) != 0)
                job_end(j, 0, "could not start the transfer (out of memory)");
        }
        int running = 0;
        curl_multi_perform(c->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            job_t *j = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            job_finish(c, j, msg->data.result, NULL);
        }
        /* A job still due now (slots were full) needs no sleep beyond curl's own wakeups. */
        curl_multi_poll(c->multi, NULL, 0, (int)wait, NULL);
    }
    return NULL;
}

int mk_httpclient_new(const mk_httpclient_config_t *cfg, mk_httpclient_t **out, mk_err_t *err)
{
    pthread_once(&global_once, global_init);
    *out = NULL;
    mk_httpclient_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    c->max_in_flight = cfg && cfg->max_in_flight ? cfg->max_in_flight : DEFAULT_IN_FLIGHT;
    c->max_queued = cfg && cfg->max_queued ? cfg->max_queued : DEFAULT_QUEUED;
    pthread_mutex_init(&c->lock, NULL);
    c->multi = curl_multi_init();
    if (c->multi == NULL || pthread_create(&c->thread, NULL, run, c) != 0) {
        if (c->multi)
            curl_multi_cleanup(c->multi);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return mk_err_set(err, MK_ENOMEM, "http client: could not start its thread");
    }
    *out = c;
    return 0;
}

void mk_httpclient_free(mk_httpclient_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_mutex_unlock(&c->lock);
    curl_multi_wakeup(c->multi);
    pthread_join(c->thread, NULL);
    /* The thread is gone: what it left is ended here, with callbacks that must not resend. */
    while (c->transfers)
        job_finish(c, c->transfers, CURLE_OK, "stopped");
    for (;;) {
        pthread_mutex_lock(&c->lock);
        job_t *j = c->queue;
        if (j)
            c->queue = j->next;
        pthread_mutex_unlock(&c->lock);
        if (j == NULL)
            break;
        job_end(j, 0, "stopped");
    }
    curl_multi_cleanup(c->multi);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int mk_httpclient_send(mk_httpclient_t *c, const mk_httpclient_req_t *req, mk_httpclient_cb cb,
                       void *ud, mk_err_t *err)
{
    if (req->url == NULL ||
        (strncasecmp(req->url, "http://", 7) != 0 && strncasecmp(req->url, "https://", 8) != 0))
        return mk_err_set(err, MK_EINVAL, "url: must start with http:// or https://");
    job_t *j = calloc(1, sizeof *j);
    if (j == NULL)
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    j->method = strdup(req->method ? req->method : "POST");
    j->url = strdup(req->url);
    j->body_len = req->body_len;
    j->body = malloc(req->body_len + 1);
    if (j->body)
        memcpy(j->body, req->body ? req->body : "", req->body_len);
    bool ok = j->method && j->url && j->body;
    for (size_t i = 0; ok && req->headers && req->headers[i]; i++) {
        struct curl_slist *h = curl_slist_append(j->headers, req->headers[i]);
        ok = h != NULL;
        if (ok)
            j->headers = h;
    }
    /* curl adds "Expect: 100-continue" to larger POSTs, a round trip webhook targets don't need. */
    struct curl_slist *h = ok ? curl_slist_append(j->headers, "Expect:") : NULL;
    if (h == NULL) {
        job_free(j);
        return mk_err_set(err, MK_ENOMEM, "out of memory");
    }
    j->headers = h;
    j->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    j->due_ms = mono_ms() + (req->delay_ms > 0 ? req->delay_ms : 0);
    j->cb = cb;
    j->ud = ud;
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    if (c->stopping) {
        rc = mk_err_set(err, MK_EUNAVAIL, "http client: stopping");
    } else if (c->queued >= c->max_queued) {
        rc =
            mk_err_set(err, MK_EUNAVAIL, "http client: %zu requests already queued", c->max_queued);
    } else {
        job_t **at = &c->queue;
        while (*at && (*at)->due_ms <= j->due_ms)
            at = &(*at)->next;
        j->next = *at;
        *at = j;
        c->queued++;
    }
    pthread_mutex_unlock(&c->lock);
    if (rc != 0) {
        job_free(j);
        return rc;
    }
    curl_multi_wakeup(c->multi);
    return 0;
}
