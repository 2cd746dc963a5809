/* Replays a libFuzzer harness without libFuzzer, under the build's sanitizers: every file of the
 * given directories, then generated big inputs a fuzzer's length cap would not produce (many
 * tiny messages; a message of maximum announced size; a long stream cut in 1-byte chunks).
 *   grpc_frame_fuzz_replay DIR...   */
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

static void big_cases(void)
{
    /* 200,000 empty messages in 255-byte chunks; limit 16 + 0xff00. */
    size_t n = 2 + 5 * 200000;
    uint8_t *b = calloc(n, 1);
    b[0] = 254;
    b[1] = 0xff;
    LLVMFuzzerTestOneInput(b, n);
    /* One message just under the largest limit the harness can set, fed byte by byte. */
    size_t len = 0xff00 + 16;
    free(b);
    n = 2 + 5 + len;
    b = calloc(n, 1);
    b[0] = 0;
    b[1] = 0xff;
    b[4] = (uint8_t)(len >> 16);
    b[5] = (uint8_t)(len >> 8);
    b[6] = (uint8_t)len;
    LLVMFuzzerTestOneInput(b, n);
    /* Announced 4 GiB - 1 with a tiny limit. */
    uint8_t huge[] = {3, 0, 0, 0xff, 0xff, 0xff, 0xff, 'x'};
    LLVMFuzzerTestOneInput(huge, sizeof huge);
    free(b);
}

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
    big_cases();
    printf("replayed %d files and the big cases\n", files);
    return failed || files == 0;
}
