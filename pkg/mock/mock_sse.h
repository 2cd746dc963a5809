/* Server-Sent Events mocks (Mockarty's `sse` context and `response.sseEventChain`): parsing and
 * validation into a compiled chain, the chain's schedule (which event next, after how long), and
 * the event's wire format. Serving (timers, the stream) is pkg/serve/serve_sse.c.
 *
 * An SSE mock is a GET mock on `pathPrefix + sse.eventPath` (indexed like an HTTP mock; `sse`
 * `conditions` are body conditions and `headerConditions` header conditions, as the SDK's
 * BodyCondition/HeaderCondition write them) whose answer streams the chain. */
#ifndef MK_MOCK_SSE_H
#define MK_MOCK_SSE_H

#include "err/err.h"
#include "str/str.h"
#include "template/template.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct mk_mock;

#define MK_MOCK_SSE_MAX_EVENTS        1000
#define MK_MOCK_SSE_MAX_DATA_BYTES    (32 * 1024) /* one event's data, as defined */
#define MK_MOCK_SSE_MIN_LOOP_DELAY    100         /* ms, Mockarty's minimum */
#define MK_MOCK_SSE_DEFAULT_MAX_LOOPS 100
#define MK_MOCK_SSE_DEFAULT_MAX_TIME  1200  /* s (20 minutes), Mockarty's default */
#define MK_MOCK_SSE_MAX_TIME          86400 /* s */
#define MK_MOCK_SSE_MIN_HEARTBEAT     100   /* ms */

typedef struct mk_mock_sse_event {
    char *name; /* eventName, else the context's eventName; NULL: none (a "message") */
    char *id;   /* NULL: none */
    char *data; /* the data as text: a string as is, anything else as compact JSON */
    size_t data_len;
    mk_template_t *tpl; /* when the data holds placeholders; NULL otherwise */
    uint32_t delay_ms;  /* before this event */
    uint32_t retry_ms;  /* `retry:` field; 0: none */
} mk_mock_sse_event_t;

typedef struct mk_mock_sse {
    mk_mock_sse_event_t *events;
    size_t nevents;
    bool loop;
    uint32_t loop_delay_ms; /* between passes (at least MK_MOCK_SSE_MIN_LOOP_DELAY) */
    uint32_t max_loops;     /* passes when looping; 0: no limit but max_time */
    uint32_t max_time_ms;   /* the stream is closed cleanly then */
    uint32_t heartbeat_ms;  /* a comment line this often; 0: none */
} mk_mock_sse_t;

/* True when def is an SSE mock: an `sse` object with an eventPath (or, without one, any
 * non-empty `sse` when `http` has no route). The Go SDK's empty `"sse": {}` on other mocks and
 * `"http": {}` on SSE mocks are ignored. */
bool mk_mock_sse_is(const json_t *def);

/* Compiles an SSE mock's route and conditions through compile_http (mock.c's, given a copy of
 * def whose `http` is made from `sse`) and its chain into m->sse. Errors name the SDK's fields
 * ("sse.eventPath: ...", "response.sseEventChain.events[2].delay: ..."). */
typedef int (*mk_mock_sse_http_fn)(struct mk_mock *m, const json_t *def, mk_err_t *err);
int mk_mock_sse_compile(struct mk_mock *m, const json_t *def, mk_mock_sse_http_fn compile_http,
                        mk_err_t *err);
void mk_mock_sse_free(mk_mock_sse_t *sse);

/* Where a stream is in its chain. */
typedef struct mk_mock_sse_cursor {
    size_t next;   /* the event to send next */
    uint32_t pass; /* passes begun (1 for the first) */
    bool done;
} mk_mock_sse_cursor_t;

/* The start of a stream: at the first event, or after the event whose id is last_id (a
 * reconnecting client's Last-Event-ID; ids not in the chain start over). Returns false when
 * the chain has nothing after last_id (it ended there and does not loop). */
bool mk_mock_sse_start(const mk_mock_sse_t *sse, mk_str_t last_id, mk_mock_sse_cursor_t *c);
/* The next event to send and how long to wait before it (its delay, plus loopDelay when a new
 * pass begins); advances c. Returns NULL when the chain is over (not looping, or max_loops
 * passes done). */
const mk_mock_sse_event_t *mk_mock_sse_next(const mk_mock_sse_t *sse, mk_mock_sse_cursor_t *c,
                                            uint32_t *wait_ms);

/* Appends one event in the text/event-stream format to out: `id:`, `event:`, `retry:`, then one
 * `data:` line per line of data (CR, LF and CRLF all split lines, as the format reads them), and
 * a blank line. CR and LF in id and name become spaces (they would end the field). */
int mk_mock_sse_format(mk_buf_t *out, const mk_mock_sse_event_t *e, mk_str_t data);

#endif
