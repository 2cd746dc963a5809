/* Server-Sent Events mocks: the answer of a matched SSE mock is a stream that follows the
 * mock's event chain on the worker's loop (timers, never blocking), closed cleanly when the chain
 * ends or at maxTime, paced by a slow client and dropped, with bounded memory, when the client
 * stops reading. */
#ifndef MK_SERVE_SSE_H
#define MK_SERVE_SSE_H

#include "httpd/httpd.h"
#include "journal/journal.h"
#include "mock/mock.h"
#include "route/route.h"

/* Bytes an SSE stream may hold unread by its client (past the kernel's socket buffer): past
 * half of it the chain waits for the client; one event's rendered data is at most half of it. */
#define MK_SERVE_SSE_MAX_BUFFER (128 * 1024)
/* A client that takes nothing of what was sent for this long is dropped. */
#define MK_SERVE_SSE_STALL_MS 10000

/* Answers req with the chain of mock (an SSE mock; a use already claimed; match its route
 * captures; both borrowed for the call only), continuing rng's sequence for the fakers of event
 * data. A Last-Event-ID header resumes after that event; when the chain has nothing after it, the
 * answer is 204 (an EventSource then stops reconnecting). Journals the call in journal (with
 * worker's producer). Returns the status sent. */
int mk_serve_sse(mk_journal_t *journal, mk_httpd_req_t *req, mk_request_t *view, mk_str_t ns,
                 mk_mock_t *mock, const mk_mock_response_t *response, const mk_route_match_t *match,
                 mk_faker_rng_t *rng, int64_t now_ms);

/* Open SSE mock streams on this process (all workers). */
size_t mk_serve_sse_open(void);

#endif
