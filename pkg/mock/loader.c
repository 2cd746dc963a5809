/* Compiling many stored mocks at once (a node's start, a resolver's resync): parsing and
 * compiling is most of a start's CPU, and each row is independent, so rows are split over
 * threads. */
#include "mock/mock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct row {
    char *json;
    int64_t uses, last_use;
    mk_mock_t *out;
} row_t;

struct mk_mock_loader {
    row_t *rows;
    size_t n, cap;
};

mk_mock_loader_t *mk_mock_loader_new(void)
{
    return calloc(1, sizeof(mk_mock_loader_t));
}

void mk_mock_loader_free(mk_mock_loader_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->rows[i].json);
        mk_mock_unref(l->rows[i].out);
    }
    free(l->rows);
    free(l);
}

int mk_mock_loader_add(mk_mock_loader_t *l, const char *json, int64_t uses, int64_t last_use)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        row_t *grown = realloc(l->rows, cap * sizeof *grown);
        if (grown == NULL)
            return MK_ENOMEM;
        l->rows = grown;
        l->cap = cap;
    }
    char *copy = strdup(json);
    if (copy == NULL)
        return MK_ENOMEM;
    l->rows[l->n++] = (row_t){copy, uses, last_use, NULL};
    return 0;
}

size_t mk_mock_loader_count(const mk_mock_loader_t *l)
{
    return l->n;
}

typedef struct slice {
    mk_mock_loader_t *l;
    size_t from, to;
} slice_t;

static void *compile_slice(void *arg)
{
    slice_t *s = arg;
    for (size_t i = s->from; i < s->to; i++) {
        row_t *r = &s->l->rows[i];
        json_t *def = json_loads(r->json, 0, NULL);
        mk_err_t err;
        /* A row this binary cannot compile is skipped (out stays NULL): the rest must serve. */
        if (def != NULL && mk_mock_load(def, r->uses, r->last_use, &r->out, &err) != 0)
            r->out = NULL;
        json_decref(def);
        free(r->json);
        r->json = NULL;
    }
    return NULL;
}

int mk_mock_loader_run(mk_mock_loader_t *l, unsigned nthreads, mk_mock_t ***out, size_t *n,
                       size_t *failed)
{
    enum { MAX_THREADS = 16, MIN_ROWS_PER_THREAD = 512 };
    *out = NULL;
    *n = 0;
    if (failed)
        *failed = 0;
    if (nthreads > MAX_THREADS)
        nthreads = MAX_THREADS;
    while (nthreads > 1 && l->n / nthreads < MIN_ROWS_PER_THREAD)
        nthreads--;
    if (nthreads == 0)
        nthreads = 1;
    pthread_t tids[MAX_THREADS];
    slice_t slices[MAX_THREADS];
    size_t per = (l->n + nthreads - 1) / nthreads, started = 0;
    for (unsigned t = 0; t < nthreads; t++) {
        size_t from = t * per, to = from + per < l->n ? from + per : l->n;
        slices[t] = (slice_t){l, from < l->n ? from : l->n, to};
        /* The first slice runs on this thread; so does any a thread could not be made for. */
        if (t == 0 || pthread_create(&tids[t], NULL, compile_slice, &slices[t]) != 0)
            continue;
        started |= 1u << t;
    }
    compile_slice(&slices[0]);
    for (unsigned t = 1; t < nthreads; t++) {
        if (started & (1u << t))
            pthread_join(tids[t], NULL);
        else
            compile_slice(&slices[t]);
    }
    mk_mock_t **list = malloc((l->n ? l->n : 1) * sizeof *list);
    if (list == NULL)
        return MK_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->rows[i].out != NULL) {
            list[k++] = l->rows[i].out;
            l->rows[i].out = NULL;
        } else if (failed) {
            (*failed)++;
        }
    }
    *out = list;
    *n = k;
    return 0;
}
