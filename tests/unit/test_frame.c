// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/* proto/frame.c: length peeking, decoding and the round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include "rswap_frame.h"
#include "rswap.pb-c.h"

static void put_len(uint8_t *b, uint32_t len)
{
	b[0] = (uint8_t)(len >> 24);
	b[1] = (uint8_t)(len >> 16);
	b[2] = (uint8_t)(len >> 8);
	b[3] = (uint8_t)len;
}

static void peek_lengths(void **state)
{
	uint8_t b[16] = { 0 };
	uint32_t len = 12345;

	assert_int_equal(rswap_frame_peek(b, 0, &len), RSWAP_FRAME_NEED_MORE);
	assert_int_equal(rswap_frame_peek(b, 3, &len), RSWAP_FRAME_NEED_MORE);
	assert_int_equal(len, 12345);
	/* Zero length is never valid. */
	assert_int_equal(rswap_frame_peek(b, 4, &len), RSWAP_FRAME_BAD_LENGTH);
	put_len(b, 1);
	assert_int_equal(rswap_frame_peek(b, 4, &len), RSWAP_FRAME_NEED_MORE);
	assert_int_equal(len, 1);
	assert_int_equal(rswap_frame_peek(b, 5, &len), RSWAP_FRAME_READY);
	put_len(b, 10);
	assert_int_equal(rswap_frame_peek(b, 13, &len), RSWAP_FRAME_NEED_MORE);
	assert_int_equal(rswap_frame_peek(b, 14, &len), RSWAP_FRAME_READY);
	assert_int_equal(rswap_frame_peek(b, 16, &len), RSWAP_FRAME_READY);
	put_len(b, RSWAP_MAX_FRAME);
	assert_int_equal(rswap_frame_peek(b, 4, &len), RSWAP_FRAME_NEED_MORE);
	assert_int_equal(len, RSWAP_MAX_FRAME);
	put_len(b, RSWAP_MAX_FRAME + 1);
	assert_int_equal(rswap_frame_peek(b, 4, &len), RSWAP_FRAME_BAD_LENGTH);
	put_len(b, UINT32_MAX);
	assert_int_equal(rswap_frame_peek(b, 4, &len), RSWAP_FRAME_BAD_LENGTH);
}

static size_t pack(Rswap__Envelope *e, uint8_t *buf)
{
	return rswap__envelope__pack(e, buf);
}

static void decode_rejects(void **state)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t truncated_field[] = { 0x1a, 0x10, 0x08 };
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__AdminList l = RSWAP__ADMIN_LIST__INIT;
	const char *why = NULL;
	uint8_t buf[64];
	size_t n;

	assert_null(rswap_frame_decode(garbage, sizeof(garbage), &why));
	assert_string_equal(why, "frame is not a valid rswap.Envelope");
	why = NULL;
	assert_null(rswap_frame_decode(truncated_field, sizeof(truncated_field), &why));
	assert_non_null(why);

	/* Right version, no body. */
	e.version = RSWAP_PROTO_VERSION;
	n = pack(&e, buf);
	assert_null(rswap_frame_decode(buf, n, &why));
	assert_string_equal(why, "envelope carries no message");
	/* Empty input decodes to version 0. */
	assert_null(rswap_frame_decode(buf, 0, &why));
	assert_non_null(strstr(why, "version 0"));

	/* Wrong version: both named. */
	e.version = 7;
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_LIST;
	e.admin_list = &l;
	n = pack(&e, buf);
	assert_null(rswap_frame_decode(buf, n, &why));
	assert_string_equal(why, "peer speaks protocol version 7, this side speaks 1");
}

static void round_trip(void **state)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *d;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;
	struct evbuffer *eb = evbuffer_new();
	const char *why = NULL;
	uint32_t len;
	uint8_t *p;

	h.client_id = "vm-7";
	h.size = 5ull << 30;
	e.version = RSWAP_PROTO_VERSION;
	e.seq = 0x1122334455667788ull;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	assert_int_equal(rswap_frame_append(eb, &e), 0);
	p = evbuffer_pullup(eb, -1);
	assert_int_equal(rswap_frame_peek(p, evbuffer_get_length(eb), &len), RSWAP_FRAME_READY);
	assert_int_equal(len + RSWAP_FRAME_HDR, evbuffer_get_length(eb));
	d = rswap_frame_decode(p + RSWAP_FRAME_HDR, len, &why);
	assert_non_null(d);
	assert_int_equal(d->seq, e.seq);
	assert_int_equal(d->body_case, RSWAP__ENVELOPE__BODY_CLIENT_HELLO);
	assert_string_equal(d->client_hello->client_id, "vm-7");
	assert_int_equal(d->client_hello->size, 5ull << 30);
	rswap__envelope__free_unpacked(d, NULL);
	evbuffer_free(eb);
}

static void oversized_append_refused(void **state)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__Error err = RSWAP__ERROR__INIT;
	struct evbuffer *eb = evbuffer_new();
	char *big = malloc(RSWAP_MAX_FRAME + 1);

	memset(big, 'x', RSWAP_MAX_FRAME);
	big[RSWAP_MAX_FRAME] = '\0';
	err.reason = big;
	e.version = RSWAP_PROTO_VERSION;
	e.body_case = RSWAP__ENVELOPE__BODY_ERROR;
	e.error = &err;
	assert_int_equal(rswap_frame_append(eb, &e), -EMSGSIZE);
	assert_int_equal(evbuffer_get_length(eb), 0);
	free(big);
	evbuffer_free(eb);
}

static void fd_helpers(void **state)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *d = NULL;
	Rswap__AdminStatus s = RSWAP__ADMIN_STATUS__INIT;
	static const uint8_t bad_len[4] = { 0, 0x11, 0, 0 };
	const char *why;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s.client_id = "x";
	e.version = RSWAP_PROTO_VERSION;
	e.seq = 3;
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_STATUS;
	e.admin_status = &s;
	assert_int_equal(rswap_frame_send_fd(sv[0], &e), 0);
	assert_int_equal(rswap_frame_recv_fd(sv[1], &d, &why), 0);
	assert_string_equal(d->admin_status->client_id, "x");
	rswap__envelope__free_unpacked(d, NULL);

	assert_int_equal(write(sv[0], bad_len, 4), 4);
	assert_int_equal(rswap_frame_recv_fd(sv[1], &d, &why), -EPROTO);
	close(sv[0]);
	assert_int_equal(rswap_frame_recv_fd(sv[1], &d, &why), -ECONNRESET);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(peek_lengths),
		cmocka_unit_test(decode_rejects),
		cmocka_unit_test(round_trip),
		cmocka_unit_test(oversized_append_refused),
		cmocka_unit_test(fd_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
