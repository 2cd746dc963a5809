/* Runs a libFuzzer harness without libFuzzer, for `make test` under the sanitizers: every file of
 * the given corpus and regression directories, then the big generated inputs of the harness
 * (fuzz/bigcases.c), which libFuzzer's -max_len keeps it from producing.
 *   fuzz_<name>_replay <name> DIR...   */
#include "bigcases.h"
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <time.h>

/* One input may take this long (seconds) before the replay fails: catches quadratic slowdowns
 * without being flaky on a loaded machine. FUZZ_REPLAY_MAX_SECONDS overrides it. */
static double max_seconds = 20.0;
static size_t ran;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_one(const char *label, const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, as libFuzzer gives it, so ASan catches overreads. */
    uint8_t *copy = malloc(size ? size : 1);
    FZ_ASSERT(copy != NULL);
    memcpy(copy, data, size);
    double t0 = now_s();
    LLVMFuzzerTestOneInput(copy, size);
    double took = now_s() - t0;
    free(copy);
    ran++;
    if (took > max_seconds) {
        fprintf(stderr, "%s: %.2f s (limit %.0f s)\n", label, took, max_seconds);
        return 1;
    }
    return 0;
}

static void big_case(void *ud, const char *label, const uint8_t *data, size_t size)
{
    int *failed = ud;
    printf("big: %s (%zu bytes)\n", label, size);
    fflush(stdout);
    *failed |= run_one(label, data, size);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    mk_buf_t buf;
    mk_buf_init(&buf, 0);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        FZ_ASSERT(mk_buf_append(&buf, chunk, n) == 0);
    fclose(f);
    printf("file: %s\n", path);
    fflush(stdout);
    int failed = run_one(path, (const uint8_t *)(buf.data ? buf.data : ""), buf.len);
    mk_buf_free(&buf);
    return failed;
}

static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : (fprintf(stderr, "%s: %s\n", dir, strerror(errno)), 1);
    char **names = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        names = realloc(names, (count + 1) * sizeof *names);
        FZ_ASSERT(names != NULL);
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    if (count > 1)
        qsort(names, count, sizeof *names, cmp_names);
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        failed |= run_file(path);
        free(names[i]);
    }
    free(names);
    return failed;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s HARNESS [DIR|FILE]...\n", argv[0]);
        return 2;
    }
    const char *limit = getenv("FUZZ_REPLAY_MAX_SECONDS");
    if (limit != NULL && atof(limit) > 0)
        max_seconds = atof(limit);
    int failed = 0;
    for (int i = 2; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (d != NULL) {
            closedir(d);
            failed |= run_dir(argv[i]);
        } else if (errno != ENOENT) { /* a harness may have no reproducers yet */
            failed |= run_file(argv[i]);
        }
    }
    double t0 = now_s();
    size_t nbig = mk_fuzz_big_cases(argv[1], big_case, &failed);
    printf("%s: %zu inputs replayed (%zu generated, %.2f s for those)%s\n", argv[1], ran, nbig,
           now_s() - t0, failed ? ", FAILED" : "");
    return failed ? 1 : 0;
}
