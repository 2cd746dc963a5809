/* gRPC's wire pieces that do not need a connection: the length-prefixed message framing,
 * grpc-timeout values, status names, grpc-message percent-encoding and -bin metadata base64.
 * Pure functions over buffers, so the fuzz harness and unit tests drive them directly. */
#ifndef MK_GRPC_FRAME_H
#define MK_GRPC_FRAME_H

#include "err/err.h"
#include "str/str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC status codes (grpc/doc/statuscodes.md). */
enum {
    MK_GRPC_OK = 0,
    MK_GRPC_CANCELLED = 1,
    MK_GRPC_UNKNOWN = 2,
    MK_GRPC_INVALID_ARGUMENT = 3,
    MK_GRPC_DEADLINE_EXCEEDED = 4,
    MK_GRPC_NOT_FOUND = 5,
    MK_GRPC_ALREADY_EXISTS = 6,
    MK_GRPC_PERMISSION_DENIED = 7,
    MK_GRPC_RESOURCE_EXHAUSTED = 8,
    MK_GRPC_FAILED_PRECONDITION = 9,
    MK_GRPC_ABORTED = 10,
    MK_GRPC_OUT_OF_RANGE = 11,
    MK_GRPC_UNIMPLEMENTED = 12,
    MK_GRPC_INTERNAL = 13,
    MK_GRPC_UNAVAILABLE = 14,
    MK_GRPC_DATA_LOSS = 15,
    MK_GRPC_UNAUTHENTICATED = 16,
};

/* The canonical upper-case name ("DEADLINE_EXCEEDED"); "UNKNOWN" for codes out of range. */
const char *mk_grpc_code_name(int code);
/* The status a failing MK_E* code maps to (MK_ENOTFOUND -> NOT_FOUND, ...). */
int mk_grpc_code_from_err(int mk_code);

/* gRPC's default receive limit (4 MiB), used when an option says 0. */
#define MK_GRPC_DEFAULT_MAX_MSG (4u * 1024 * 1024)
/* The prefix before each message: a compressed flag byte and a 4-byte big-endian length. */
#define MK_GRPC_PREFIX_LEN 5

/* Incremental decoder of length-prefixed messages from a stream's DATA bytes, which arrive cut
 * anywhere. A message is refused as soon as its prefix announces more than max bytes, before any
 * of it is buffered, so memory per stream stays below max + 5. */
typedef struct mk_grpc_decoder {
    size_t max;
    uint8_t prefix[MK_GRPC_PREFIX_LEN];
    size_t prefix_len;
    uint8_t *msg; /* current message, msg_len bytes long once complete */
    size_t msg_len, msg_have;
    bool gzip;  /* the stream's grpc-encoding is gzip: compressed messages are inflated */
    int status; /* after a failure: the gRPC status to answer with */
} mk_grpc_decoder_t;

/* Called for each complete message; msg is borrowed for the call. A negative return stops the
 * feed, which returns it. */
typedef int (*mk_grpc_msg_fn)(void *ud, const uint8_t *msg, size_t len);

void mk_grpc_decoder_init(mk_grpc_decoder_t *d, size_t max); /* max 0: the default */
void mk_grpc_decoder_free(mk_grpc_decoder_t *d);
/* Feeds len bytes, calling fn for each message completed (inflated when compressed). Returns 0,
 * the callback's negative value, or: MK_ETOOBIG (a message, compressed or inflated, over max:
 * d->status RESOURCE_EXHAUSTED), MK_EINVAL (compressed flag without gzip, a flag byte other than
 * 0/1, or gzip data that does not inflate: INTERNAL), MK_ENOMEM. After a failure the decoder
 * refuses further input. */
int mk_grpc_decoder_feed(mk_grpc_decoder_t *d, const uint8_t *data, size_t len, mk_grpc_msg_fn fn,
                         void *ud, mk_err_t *err);
/* True when bytes of an unfinished message are buffered (a stream ending now was truncated). */
bool mk_grpc_decoder_partial(const mk_grpc_decoder_t *d);

/* Appends the 5-byte prefix and the message to out. MK_ETOOBIG past out's max or 4 GiB. */
int mk_grpc_frame_encode(mk_buf_t *out, const uint8_t *msg, size_t len);

/* Parses a grpc-timeout value ("100m", "5S", up to 8 digits and a unit of H M S m u n) into
 * milliseconds, rounding sub-millisecond values up to 1. MK_EINVAL when malformed. */
int mk_grpc_timeout_parse(mk_str_t v, int64_t *ms);
/* Formats ms as a grpc-timeout value into out (at least 16 bytes). */
void mk_grpc_timeout_format(int64_t ms, char *out, size_t size);

/* Percent-encodes a grpc-message value (bytes outside 0x20..0x7E and '%'); appends to out. */
int mk_grpc_message_encode(mk_buf_t *out, const char *msg, size_t len);
/* Decodes %XX escapes (malformed ones are kept literally); appends to out. */
int mk_grpc_message_decode(mk_buf_t *out, const char *msg, size_t len);

/* Base64 for -bin metadata: encode without padding (as gRPC sends it), decode with or without
 * padding. Both append to out; decode returns MK_EINVAL on a character outside the alphabet. */
int mk_grpc_base64_encode(mk_buf_t *out, const uint8_t *data, size_t len);
int mk_grpc_base64_decode(mk_buf_t *out, const char *text, size_t len);

#endif
