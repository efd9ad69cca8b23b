// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * rswap_frame_peek + rswap_frame_decode on arbitrary bytes: the first
 * thing every control-plane receiver runs on network input.
 *
 * Round trip: re-encoding a decoded envelope need not decode again
 * (protobuf-c 1.4 keeps an unknown field numbered 0 if its tag was a
 * non-canonical varint, and refuses it once canonical), but when it does,
 * encoding is then stable: pack(decode(y)) == y.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <event2/buffer.h>
#include "rswap_frame.h"
#include "rswap.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Frame env into a new buffer; NULL if it is too big for a frame. */
static struct evbuffer *frame(const Rswap__Envelope *env)
{
	struct evbuffer *eb = evbuffer_new();
	size_t n = rswap__envelope__get_packed_size(env);
	uint32_t len;
	uint8_t *p;

	if (!eb)
		return NULL;
	if (rswap_frame_append(eb, env)) {
		/* Only a message too big for one frame may be refused. */
		if (n <= RSWAP_MAX_FRAME)
			__builtin_trap();
		evbuffer_free(eb);
		return NULL;
	}
	p = evbuffer_pullup(eb, -1);
	if (rswap_frame_peek(p, evbuffer_get_length(eb), &len) != RSWAP_FRAME_READY ||
	    len != n || evbuffer_get_length(eb) != RSWAP_FRAME_HDR + n)
		__builtin_trap();
	return eb;
}

static void check_round_trip(const Rswap__Envelope *env)
{
	struct evbuffer *y = frame(env), *z;
	Rswap__Envelope *again;
	const char *why = NULL;
	size_t len;

	if (!y)
		return;
	len = evbuffer_get_length(y);
	again = rswap_frame_decode(evbuffer_pullup(y, -1) + RSWAP_FRAME_HDR,
				   len - RSWAP_FRAME_HDR, &why);
	if (again) {
		if (again->body_case != env->body_case || again->seq != env->seq)
			__builtin_trap();
		z = frame(again);
		if (!z || evbuffer_get_length(z) != len ||
		    memcmp(evbuffer_pullup(z, -1), evbuffer_pullup(y, -1), len))
			__builtin_trap();
		evbuffer_free(z);
		rswap__envelope__free_unpacked(again, NULL);
	}
	evbuffer_free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Rswap__Envelope *env;
	const char *why = NULL;
	uint32_t len = 0;

	switch (rswap_frame_peek(data, size, &len)) {
	case RSWAP_FRAME_READY:
		if (len == 0 || len > RSWAP_MAX_FRAME || size < RSWAP_FRAME_HDR + len)
			__builtin_trap();
		break;
	case RSWAP_FRAME_NEED_MORE:
		if (size >= RSWAP_FRAME_HDR && size - RSWAP_FRAME_HDR >= len)
			__builtin_trap();
		break;
	case RSWAP_FRAME_BAD_LENGTH:
		if (size < RSWAP_FRAME_HDR)
			__builtin_trap();
		break;
	}
	/* The body alone, as the receivers pass it. */
	env = rswap_frame_decode(data, size, &why);
	if (!env) {
		if (!why || !*why || strlen(why) > 200)
			__builtin_trap();
		return 0;
	}
	if (env->version != RSWAP_PROTO_VERSION ||
	    env->body_case == RSWAP__ENVELOPE__BODY__NOT_SET)
		__builtin_trap();
	check_round_trip(env);
	rswap__envelope__free_unpacked(env, NULL);
	return 0;
}
