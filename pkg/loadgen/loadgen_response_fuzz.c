/* libFuzzer harness for the response codec: any bytes from a target must be handled without a
 * crash, and how the bytes are split over reads must not change the outcome. The first input
 * byte picks the read size and whether the request was HEAD. */
#include "loadgen/response.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int feed_split(const char *p, size_t n, size_t step, bool head, int *status)
{
    lg_resp_t r = {0};
    lg_resp_reset(&r, head);
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += step)
        rc = lg_resp_feed(&r, p + off, n - off < step ? n - off : step);
    *status = r.status;
    lg_resp_free(&r);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 23;
    bool head = data[0] & 0x80;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    int s1, s2;
    int whole = feed_split(p, n, n ? n : 1, head, &s1);
    int split = feed_split(p, n, step, head, &s2);
    /* a head over the limit is only seen when it arrives split; anything else must agree */
    if (whole != -2 && split != -2 && (whole != split || (whole == 1 && s1 != s2)))
        abort();
    return 0;
}
