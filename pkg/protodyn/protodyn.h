/* A dynamic protobuf codec: loads a FileDescriptorSet (binary, as `protoc --descriptor_set_out
 * --include_imports` writes it) and converts messages of its types between wire format and JSON
 * following proto3's JSON mapping: lowerCamelCase names (json_name) out, either name in; 64-bit
 * integers as strings; bytes as base64; enums by name (numbers for values the descriptor does
 * not know); maps as objects; repeated fields as arrays; oneofs (last member on the wire wins;
 * two members in JSON are refused). Unknown wire fields are skipped; unknown JSON keys are
 * refused. Well-known types, recognised by full name, take their JSON forms: Timestamp (RFC 3339,
 * UTC out), Duration ("1.500s"), the wrappers (the bare value), Struct/Value/ListValue (plain
 * JSON), FieldMask ("a,fooBar"), Any ({"@type": url, ...} with the type looked up in the pool).
 * Doubles with integral values print as integers (1, not 1.0), as protobuf prints them.
 * Used by gRPC mocks (issue 13) for users' uploaded APIs; our own services use protobuf-c. */
#ifndef MK_PROTODYN_H
#define MK_PROTODYN_H

#include "err/err.h"
#include "str/str.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting deeper than this (messages in messages, groups) is refused in both directions. */
#define MK_PROTODYN_MAX_DEPTH 64

typedef struct mk_protodyn_pool mk_protodyn_pool_t;
typedef struct mk_protodyn_msg mk_protodyn_msg_t; /* a message type, owned by its pool */

typedef struct mk_protodyn_method {
    const char *path;    /* "/package.Service/Method", as gRPC puts it in :path */
    const char *service; /* "package.Service" */
    const char *name;    /* "Method" */
    const mk_protodyn_msg_t *input, *output;
    bool client_streaming, server_streaming;
} mk_protodyn_method_t;

/* Parses a FileDescriptorSet (copied as needed; data is borrowed for the call). Every type name
 * a field or method refers to must be in the set: MK_EINVAL names the first missing one. */
int mk_protodyn_pool_new(const uint8_t *data, size_t len, mk_protodyn_pool_t **out, mk_err_t *err);
void mk_protodyn_pool_free(mk_protodyn_pool_t *p); /* NULL is fine */

/* A message type by full name ("pkg.Msg"; a leading dot is accepted), or NULL. Borrowed. */
const mk_protodyn_msg_t *mk_protodyn_find_message(const mk_protodyn_pool_t *p, const char *name);
/* A method by gRPC path, or NULL. Borrowed. */
const mk_protodyn_method_t *mk_protodyn_find_method(const mk_protodyn_pool_t *p, const char *path);
size_t mk_protodyn_method_count(const mk_protodyn_pool_t *p);
const mk_protodyn_method_t *mk_protodyn_method_at(const mk_protodyn_pool_t *p, size_t i);
const char *mk_protodyn_msg_name(const mk_protodyn_msg_t *m); /* full name, no leading dot */

/* Wire bytes of a message of type m to JSON (*out: a new reference; an object, except for
 * well-known types with other JSON forms). MK_EINVAL with the field path on malformed input,
 * input deeper than MK_PROTODYN_MAX_DEPTH, out-of-range Timestamp/Duration, an Any whose type is
 * not in the pool. */
int mk_protodyn_decode(const mk_protodyn_msg_t *m, const uint8_t *data, size_t len, json_t **out,
                       mk_err_t *err);
/* JSON (borrowed) to wire bytes appended to out (which may have a max: MK_ETOOBIG). MK_EINVAL
 * with the field path for unknown keys, wrong JSON types, out-of-range numbers, bad base64,
 * unknown enum names, two members of one oneof, malformed well-known type strings. */
int mk_protodyn_encode(const mk_protodyn_msg_t *m, const json_t *in, mk_buf_t *out, mk_err_t *err);

/* An example message of type m in JSON form, for generated mocks: every field set once (strings
 * their JSON name, numbers 1 or 1.5, 64-bit integers "1", bools true, bytes "example", enums
 * their first value, repeated fields one element, maps one entry), the first member of each
 * oneof, nested messages four levels down; well-known types in their JSON forms (Any left out).
 * Encodes with mk_protodyn_encode. New reference. */
json_t *mk_protodyn_sample(const mk_protodyn_msg_t *m);

#endif
