/* Replays a libFuzzer harness without libFuzzer, under the build's sanitizers: every file of the
 * given directories, then the harness's mk_fuzz_big_cases() when it has one (inputs a fuzzer's
 * length cap would not produce). Shared by pkg/grpc and pkg/protodyn.
 *   <harness>_replay DIR...   */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

/* A harness may add inputs too big for a fuzzer's length cap (see grpc_frame_fuzz.c). */
void mk_fuzz_big_cases(void) __attribute__((weak));

int main(int argc, char **argv)
{
    int failed = 0, files = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (d == NULL)
            continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            failed |= run_file(path);
            files++;
        }
        closedir(d);
    }
    if (mk_fuzz_big_cases)
        mk_fuzz_big_cases();
    printf("replayed %d files%s\n", files, mk_fuzz_big_cases ? " and the big cases" : "");
    return failed || files == 0;
}
