// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel module's protobuf codec (client-kmod/rswap-clt-pb.c), built
 * for the host and checked against protobuf-c: what it encodes must be
 * byte for byte what protobuf-c packs, what protobuf-c packs it must
 * decode, and malformed input must be refused without reading out of
 * bounds (run under RSWAP_SANITIZE=ON for the latter to mean much).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rswap.pb-c.h"
#include "rswap-clt-pb.h"

/* ---- helpers ------------------------------------------------------------ */

struct buf {
	uint8_t *data;
	size_t len;
};

static struct buf pack_env(const Rswap__Envelope *env)
{
	struct buf b;

	b.len = rswap__envelope__get_packed_size(env);
	b.data = malloc(b.len ? b.len : 1);
	assert_non_null(b.data);
	assert_int_equal(rswap__envelope__pack(env, b.data), b.len);
	return b;
}

static struct buf pack_map(uint64_t chunk_size, uint64_t size,
			   const uint32_t *idx, const char *const *addr,
			   const uint64_t *handle, size_t n, uint64_t seq)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkMap map = RSWAP__CHUNK_MAP__INIT;
	Rswap__Slot *slots = calloc(n ? n : 1, sizeof(*slots));
	Rswap__Slot **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	struct buf b;

	assert_non_null(slots);
	assert_non_null(ptrs);
	for (size_t i = 0; i < n; i++) {
		rswap__slot__init(&slots[i]);
		slots[i].index = idx[i];
		slots[i].poold_addr = (char *)addr[i];
		slots[i].handle = handle[i];
		slots[i].lost = handle[i] == 1ull << 40;
		ptrs[i] = &slots[i];
	}
	map.epoch = 6;
	map.chunk_size = chunk_size;
	map.size = size;
	map.n_slots = n;
	map.slots = ptrs;
	env.version = 1;
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_CHUNK_MAP;
	env.chunk_map = &map;
	b = pack_env(&env);
	free(ptrs);
	free(slots);
	return b;
}

static const uint32_t idx3[] = { 0, 1, 2 };
static const char *const addr3[] = { "10.0.0.1:9401", "10.0.0.2:9401",
				     "[fe80::1]:9401" };
static const uint64_t handle3[] = { 1, 0xffffffffffffffffull, 1ull << 40 };

static struct buf good_map(void)
{
	return pack_map(16ull << 20, 48ull << 20, idx3, addr3, handle3, 3, 77);
}

static int decode(const struct buf *b, struct rswap_pb_env *env)
{
	const char *why = NULL;
	int ret = rswap_pb_decode(b->data, b->len, env, &why);

	if (ret)
		assert_non_null(why);
	return ret;
}

/* Append raw bytes to a packed envelope (new top-level fields). */
static void append(struct buf *b, const uint8_t *bytes, size_t n)
{
	b->data = realloc(b->data, b->len + n);
	assert_non_null(b->data);
	memcpy(b->data + b->len, bytes, n);
	b->len += n;
}

/* ---- encoding: byte for byte ------------------------------------------ */

static void check_hello(uint32_t version, uint64_t seq, const char *id,
			uint64_t size, bool reconnect)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ClientHello hello = RSWAP__CLIENT_HELLO__INIT;
	Rswap__Envelope *back;
	uint8_t mine[RSWAP_PB_HELLO_MAX];
	struct buf ref;
	int len;

	hello.client_id = (char *)id;
	hello.size = size;
	hello.reconnect = reconnect;
	env.version = version;
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	env.client_hello = &hello;
	ref = pack_env(&env);

	len = rswap_pb_encode_hello(mine, sizeof(mine), version, seq, id, size,
				    reconnect, NULL);
	assert_true(len > 0);
	assert_int_equal(len, ref.len);
	assert_memory_equal(mine, ref.data, ref.len);

	back = rswap__envelope__unpack(NULL, len, mine);
	assert_non_null(back);
	assert_int_equal(back->version, version);
	assert_true(back->seq == seq);
	assert_int_equal(back->body_case, RSWAP__ENVELOPE__BODY_CLIENT_HELLO);
	assert_string_equal(back->client_hello->client_id, id);
	assert_true(back->client_hello->size == size);
	assert_int_equal(back->client_hello->reconnect, reconnect);
	rswap__envelope__free_unpacked(back, NULL);

	/* Every smaller buffer is refused, never overrun. */
	for (int cap = 0; cap < len; cap++)
		assert_int_equal(rswap_pb_encode_hello(mine, cap, version, seq,
						       id, size, reconnect, NULL),
				 -ENOSPC);
	free(ref.data);
}

static void test_encode_hello(void **state)
{
	(void)state;
	check_hello(1, 1, "host-a", 8ull << 30, false);
	check_hello(1, 0, "h", 0, false);
	check_hello(1, 0xffffffffffffffffull, "0123456789abcdef0123456789abcde",
		    0xffffffffffffffffull, false);
	check_hello(0, 127, "x", 128, false);
	check_hello(0xffffffffu, 16384, "node-17.example", 1ull << 50, false);
	check_hello(1, 2, "host-a", 8ull << 30, true);
	check_hello(0xffffffffu, 0xffffffffffffffffull,
		    "0123456789abcdef0123456789abcde", 0xffffffffffffffffull, true);
}

static void check_release(uint64_t seq, const char *id)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ClientRelease rel = RSWAP__CLIENT_RELEASE__INIT;
	Rswap__Envelope *back;
	uint8_t mine[RSWAP_PB_HELLO_MAX];
	struct buf ref;
	int len;

	rel.client_id = (char *)id;
	env.version = 1;
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_CLIENT_RELEASE;
	env.client_release = &rel;
	ref = pack_env(&env);

	len = rswap_pb_encode_release(mine, sizeof(mine), 1, seq, id);
	assert_int_equal(len, ref.len);
	assert_memory_equal(mine, ref.data, ref.len);
	back = rswap__envelope__unpack(NULL, len, mine);
	assert_non_null(back);
	assert_int_equal(back->body_case, RSWAP__ENVELOPE__BODY_CLIENT_RELEASE);
	assert_string_equal(back->client_release->client_id, id);
	rswap__envelope__free_unpacked(back, NULL);
	for (int cap = 0; cap < len; cap++)
		assert_int_equal(rswap_pb_encode_release(mine, cap, 1, seq, id),
				 -ENOSPC);
	free(ref.data);
}

static void test_encode_release(void **state)
{
	(void)state;
	check_release(2, "host-a");
	check_release(0, "0123456789abcdef0123456789abcde");
}

static void test_encode_bad_id(void **state)
{
	uint8_t b[RSWAP_PB_HELLO_MAX];

	(void)state;
	assert_int_equal(rswap_pb_encode_hello(b, sizeof(b), 1, 1, "", 1, false, NULL), -EINVAL);
	assert_int_equal(rswap_pb_encode_hello(b, sizeof(b), 1, 1, NULL, 1, false, NULL), -EINVAL);
	assert_int_equal(rswap_pb_encode_hello(b, sizeof(b), 1, 1,
					       "0123456789abcdef0123456789abcdef", 1,
					       false, NULL),
			 -EINVAL);
	assert_int_equal(rswap_pb_encode_release(b, sizeof(b), 1, 1, ""), -EINVAL);
}

/* A reconnecting hello and a heartbeat with a report, byte for byte. */
static void test_encode_report(void **state)
{
	static const u64 handles[] = { 0x1234000000000001ull, 7, 0,
				       0xffffffffffffffffull };
	static const u32 lost[] = { 2, 0, 300000 };
	struct rswap_pb_report rep = {
		.epoch = 3, .handles = handles, .nhandles = 4, .moving = true,
		.move_slot = 1, .move_to_handle = 0x55, .move_copied = 1 << 20,
		.lost = lost, .nlost = 3,
	};
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ClientHello hello = RSWAP__CLIENT_HELLO__INIT;
	Rswap__ClientHeartbeat hb = RSWAP__CLIENT_HEARTBEAT__INIT;
	Rswap__MoveState ms = RSWAP__MOVE_STATE__INIT;
	uint8_t mine[512];
	struct buf ref;
	int len;

	(void)state;
	ms.slot = 1;
	ms.to_handle = 0x55;
	ms.copied = 1 << 20;
	hello.client_id = "host-a";
	hello.size = 16ull << 30;
	hello.reconnect = true;
	hello.epoch = 3;
	hello.n_handles = 4;
	hello.handles = (uint64_t *)handles;
	hello.moving = &ms;
	hello.n_lost_slots = 3;
	hello.lost_slots = (uint32_t *)lost;
	env.version = 1;
	env.seq = 9;
	env.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	env.client_hello = &hello;
	ref = pack_env(&env);
	assert_true(rswap_pb_report_max(&rep) >= ref.len);
	len = rswap_pb_encode_hello(mine, sizeof(mine), 1, 9, "host-a",
				    16ull << 30, true, &rep);
	assert_int_equal(len, ref.len);
	assert_memory_equal(mine, ref.data, ref.len);
	for (int cap = 0; cap < len; cap++)
		assert_int_equal(rswap_pb_encode_hello(mine, cap, 1, 9, "host-a",
						       16ull << 30, true, &rep),
				 -ENOSPC);
	free(ref.data);

	hb.epoch = 3;
	hb.moving = &ms;
	hb.n_lost_slots = 3;
	hb.lost_slots = (uint32_t *)lost;
	env.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT;
	env.client_heartbeat = &hb;
	ref = pack_env(&env);
	len = rswap_pb_encode_heartbeat(mine, sizeof(mine), 1, 9, &rep);
	assert_int_equal(len, ref.len);
	assert_memory_equal(mine, ref.data, ref.len);
	free(ref.data);

	rep.nlost = RSWAP_PB_MAX_LOST + 1;
	assert_int_equal(rswap_pb_encode_heartbeat(mine, sizeof(mine), 1, 9, &rep),
			 -EINVAL);
}

/* The replicated report: replicas, every copy's handle, stale copies. */
static void test_encode_report_copies(void **state)
{
	static const u64 handles[] = { 5, 0x70000000000000aaull };
	static const u64 copies[] = { 5, 6, 0x70000000000000aaull, 0 };
	static const u64 stale[] = { 6, 0xfffffffffffffffeull };
	struct rswap_pb_report rep = {
		.epoch = 2, .handles = handles, .nhandles = 2, .replicas = 2,
		.copy_handles = copies, .ncopy_handles = 4, .stale = stale,
		.nstale = 2,
	};
	struct rswap_pb_report first = { .replicas = 3 };
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ClientHello hello = RSWAP__CLIENT_HELLO__INIT;
	Rswap__ClientHeartbeat hb = RSWAP__CLIENT_HEARTBEAT__INIT;
	uint8_t mine[512];
	struct buf ref;
	int len;

	(void)state;
	hello.client_id = "host-r";
	hello.size = 1ull << 30;
	hello.reconnect = true;
	hello.epoch = 2;
	hello.n_handles = 2;
	hello.handles = (uint64_t *)handles;
	hello.replicas = 2;
	hello.n_copy_handles = 4;
	hello.copy_handles = (uint64_t *)copies;
	hello.n_stale_handles = 2;
	hello.stale_handles = (uint64_t *)stale;
	env.version = 1;
	env.seq = 4;
	env.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	env.client_hello = &hello;
	ref = pack_env(&env);
	assert_true(rswap_pb_report_max(&rep) >= ref.len);
	len = rswap_pb_encode_hello(mine, sizeof(mine), 1, 4, "host-r",
				    1ull << 30, true, &rep);
	assert_int_equal(len, ref.len);
	assert_memory_equal(mine, ref.data, ref.len);
	free(ref.data);

	/* A first hello carries only how many copies it wants. */
	rswap__client_hello__init(&hello);
	hello.client_id = "host-r";
	hello.size = 1ull << 30;
	hello.replicas = 3;
	ref = pack_env(&env);
	len = rswap_pb_encode_hello(mine, sizeof(mine), 1, 4, "host-r",
				    1ull << 30, false, &first);
	assert_int_equal(len, ref.len);
	assert_memory_equal(mine, ref.data, ref.len);
	free(ref.data);

	/* A heartbeat lists the stale copies, nothing of the rest. */
	hb.epoch = 2;
	hb.n_stale_handles = 2;
	hb.stale_handles = (uint64_t *)stale;
	env.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT;
	env.client_heartbeat = &hb;
	ref = pack_env(&env);
	len = rswap_pb_encode_heartbeat(mine, sizeof(mine), 1, 4, &rep);
	assert_int_equal(len, ref.len);
	assert_memory_equal(mine, ref.data, ref.len);
	free(ref.data);

	rep.nstale = RSWAP_PB_MAX_LOST + 1;
	assert_int_equal(rswap_pb_encode_heartbeat(mine, sizeof(mine), 1, 4, &rep),
			 -EINVAL);
}

static void check_move_done(bool switched, int32_t code, const char *reason)
{
	struct rswap_pb_move_done d = {
		.slot = 5, .to_handle = 0xabcdef, .switched = switched,
		.copied = 64ull << 20, .code = code, .reason = reason,
	};
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__MoveDone md = RSWAP__MOVE_DONE__INIT;
	uint8_t mine[256];
	struct buf ref;
	int len;

	md.slot = 5;
	md.to_handle = 0xabcdef;
	md.switched = switched;
	md.copied = 64ull << 20;
	md.code = code;
	md.reason = (char *)(reason ? reason : "");
	env.version = 1;
	env.seq = 77;
	env.body_case = RSWAP__ENVELOPE__BODY_MOVE_DONE;
	env.move_done = &md;
	ref = pack_env(&env);
	len = rswap_pb_encode_move_done(mine, sizeof(mine), 1, 77, &d);
	assert_int_equal(len, ref.len);
	assert_memory_equal(mine, ref.data, ref.len);
	for (int cap = 0; cap < len; cap++)
		assert_int_equal(rswap_pb_encode_move_done(mine, cap, 1, 77, &d),
				 -ENOSPC);
	free(ref.data);
}

static void test_encode_move_done(void **state)
{
	(void)state;
	check_move_done(true, 0, NULL);
	check_move_done(false, 5, "target poold unreachable");
	check_move_done(false, -1, "negative code");
}

static void test_decode_move_chunk(void **state)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__MoveChunk mc = RSWAP__MOVE_CHUNK__INIT;
	struct rswap_pb_env back;
	struct buf ref;

	(void)state;
	mc.epoch = 12;
	mc.slot = 3;
	mc.from_handle = 0x100000001ull;
	mc.to_poold = "10.0.0.2:7471";
	mc.to_handle = 0x200000005ull;
	env.version = 1;
	env.seq = 40;
	env.body_case = RSWAP__ENVELOPE__BODY_MOVE_CHUNK;
	env.move_chunk = &mc;
	ref = pack_env(&env);
	assert_int_equal(decode(&ref, &back), 0);
	assert_int_equal(back.body, RSWAP_PB_BODY_MOVE_CHUNK);
	assert_true(back.seq == 40);
	assert_true(back.move.epoch == 12);
	assert_int_equal(back.move.slot, 3);
	assert_true(back.move.from_handle == 0x100000001ull);
	assert_true(back.move.to_handle == 0x200000005ull);
	assert_string_equal(back.move.to_poold, "10.0.0.2:7471");
	rswap_pb_env_free(&back);
	free(ref.data);
}

/* ---- decoding what protobuf-c packs ----------------------------------- */

static void test_decode_map(void **state)
{
	struct rswap_pb_env env;
	struct buf b = good_map();
	const char *why = NULL;

	(void)state;
	assert_int_equal(decode(&b, &env), 0);
	assert_int_equal(env.version, 1);
	assert_true(env.seq == 77);
	assert_int_equal(env.body, RSWAP_PB_BODY_CHUNK_MAP);
	assert_true(env.map.chunk_size == 16ull << 20);
	assert_true(env.map.size == 48ull << 20);
	assert_int_equal(env.map.nslots, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(env.map.slots[i].index, idx3[i]);
		assert_string_equal(env.map.slots[i].poold_addr, addr3[i]);
		assert_true(env.map.slots[i].handle == handle3[i]);
		assert_int_equal(env.map.slots[i].lost, i == 2);
	}
	assert_true(env.map.epoch == 6);
	assert_int_equal(rswap_pb_check_map(&env.map, 48ull << 20, &why), 0);
	rswap_pb_env_free(&env);
	free(b.data);
}

static void test_decode_map_sorts(void **state)
{
	static const uint32_t idx[] = { 2, 0, 3, 1 };
	static const char *const addr[] = { "a:1", "b:1", "c:1", "d:1" };
	static const uint64_t h[] = { 12, 10, 13, 11 };
	struct buf b = pack_map(1u << 24, (3u << 24) + 4096, idx, addr, h, 4, 1);
	struct rswap_pb_env env;
	const char *why = NULL;

	(void)state;
	assert_int_equal(decode(&b, &env), 0);
	assert_int_equal(rswap_pb_check_map(&env.map, (3u << 24) + 4096, &why), 0);
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(env.map.slots[i].index, i);
		assert_true(env.map.slots[i].handle == 10 + i);
	}
	rswap_pb_env_free(&env);
	free(b.data);
}

/* A map of two copies per slot; which_bad breaks it one way. */
static struct buf pack_map2(int which_bad)
{
	static const char *const addr[] = { "a:1", "b:1", "c:1" };
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkMap map = RSWAP__CHUNK_MAP__INIT;
	Rswap__Slot slots[2], *sp[2];
	Rswap__Copy copies[2][3], *cp[2][3];
	struct buf b;

	for (int i = 0; i < 2; i++) {
		rswap__slot__init(&slots[i]);
		slots[i].index = 1 - i;
		slots[i].poold_addr = (char *)addr[i];
		slots[i].handle = 100 + i;
		for (int c = 0; c < 3; c++) {
			rswap__copy__init(&copies[i][c]);
			copies[i][c].poold_addr = (char *)addr[(i + c) % 3];
			copies[i][c].handle = 100 + i + 10 * c;
			copies[i][c].lost = i == 1 && c == 1;
			cp[i][c] = &copies[i][c];
		}
		slots[i].n_copies = which_bad == 1 && i == 1 ? 3 : 2;
		slots[i].copies = cp[i];
		sp[i] = &slots[i];
	}
	if (which_bad == 2)
		copies[0][1].poold_addr = (char *)addr[0];
	if (which_bad == 3)
		copies[1][0].handle = 7;
	map.chunk_size = 1u << 24;
	map.size = 2u << 24;
	map.replicas = which_bad == 4 ? 4 : 2;
	map.n_slots = 2;
	map.slots = sp;
	env.version = 1;
	env.seq = 3;
	env.body_case = RSWAP__ENVELOPE__BODY_CHUNK_MAP;
	env.chunk_map = &map;
	b = pack_env(&env);
	return b;
}

static void test_decode_map_copies(void **state)
{
	static const char *const bad[] = {
		NULL, "a slot's copies differ from the map's replicas",
		"two copies of a slot on one poold",
		"a slot's first copy is not its poold and handle",
	};
	struct rswap_pb_env env;
	const char *why = NULL;
	struct buf b = pack_map2(0);

	(void)state;
	assert_int_equal(decode(&b, &env), 0);
	assert_int_equal(env.map.replicas, 2);
	assert_int_equal(rswap_pb_check_map(&env.map, 2u << 24, &why), 0);
	for (uint32_t i = 0; i < 2; i++) {
		const struct rswap_pb_slot *s = &env.map.slots[i];

		assert_int_equal(s->index, i);
		assert_int_equal(s->ncopies, 2);
		assert_true(s->copies[0].handle == 101 - i);
		assert_true(s->copies[1].handle == 111 - i);
		assert_int_equal(s->copies[1].lost, i == 0);
		assert_int_equal(s->copies[0].lost, false);
	}
	assert_string_equal(env.map.slots[0].copies[1].poold_addr, "c:1");
	rswap_pb_env_free(&env);
	free(b.data);

	for (int k = 1; k < 4; k++) {
		b = pack_map2(k);
		assert_int_equal(decode(&b, &env), 0);
		assert_int_equal(rswap_pb_check_map(&env.map, 2u << 24, &why),
				 -EBADMSG);
		assert_string_equal(why, bad[k]);
		rswap_pb_env_free(&env);
		free(b.data);
	}
	b = pack_map2(4);
	assert_int_equal(decode(&b, &env), -EBADMSG);
	free(b.data);
}

static void test_decode_error(void **state)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__Error err = RSWAP__ERROR__INIT;
	char longr[400];
	struct rswap_pb_env env;
	struct buf b;

	(void)state;
	e.version = 1;
	e.seq = 5;
	e.body_case = RSWAP__ENVELOPE__BODY_ERROR;
	e.error = &err;
	err.code = 28;
	err.reason = "not enough free memory: asked 8G, 2G free";
	b = pack_env(&e);
	assert_int_equal(decode(&b, &env), 0);
	assert_int_equal(env.body, RSWAP_PB_BODY_ERROR);
	assert_int_equal(env.error.code, 28);
	assert_string_equal(env.error.reason, err.reason);
	rswap_pb_env_free(&env);
	free(b.data);

	/* Negative codes are 10-byte varints; long reasons are truncated. */
	memset(longr, 'r', sizeof(longr) - 1);
	longr[sizeof(longr) - 1] = '\0';
	longr[3] = '\n';
	err.code = -5;
	err.reason = longr;
	b = pack_env(&e);
	assert_int_equal(decode(&b, &env), 0);
	assert_int_equal(env.error.code, -5);
	assert_int_equal(strlen(env.error.reason), RSWAP_PB_REASON_MAX - 1);
	assert_int_equal(env.error.reason[3], '?');
	rswap_pb_env_free(&env);
	free(b.data);
}

static void test_decode_released(void **state)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ClientReleased rel = RSWAP__CLIENT_RELEASED__INIT;
	struct rswap_pb_env env;
	struct buf b;

	(void)state;
	e.version = 1;
	e.seq = 9;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_RELEASED;
	e.client_released = &rel;
	rel.chunks_freed = 300;
	b = pack_env(&e);
	assert_int_equal(decode(&b, &env), 0);
	assert_int_equal(env.body, RSWAP_PB_BODY_CLIENT_RELEASED);
	assert_int_equal(env.chunks_freed, 300);
	rswap_pb_env_free(&env);
	free(b.data);

	/* Empty body (chunks_freed == 0 is omitted) still names the body. */
	rel.chunks_freed = 0;
	b = pack_env(&e);
	assert_int_equal(decode(&b, &env), 0);
	assert_int_equal(env.body, RSWAP_PB_BODY_CLIENT_RELEASED);
	assert_int_equal(env.chunks_freed, 0);
	free(b.data);
}

static void check_heartbeat(uint32_t version, uint64_t seq)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ClientHeartbeat hb = RSWAP__CLIENT_HEARTBEAT__INIT;
	struct rswap_pb_env back;
	uint8_t mine[RSWAP_PB_HELLO_MAX];
	struct buf ref;
	int len;

	env.version = version;
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT;
	env.client_heartbeat = &hb;
	ref = pack_env(&env);

	len = rswap_pb_encode_heartbeat(mine, sizeof(mine), version, seq, NULL);
	assert_int_equal(len, ref.len);
	assert_memory_equal(mine, ref.data, ref.len);
	for (int cap = 0; cap < len; cap++)
		assert_int_equal(rswap_pb_encode_heartbeat(mine, cap, version, seq, NULL),
				 -ENOSPC);

	/* The coordinator's echo, as protobuf-c packs it, decodes. */
	assert_int_equal(decode(&ref, &back), 0);
	assert_int_equal(back.body, RSWAP_PB_BODY_CLIENT_HEARTBEAT);
	assert_int_equal(back.version, version);
	assert_true(back.seq == seq);
	rswap_pb_env_free(&back);
	free(ref.data);
}

static void test_heartbeat(void **state)
{
	(void)state;
	check_heartbeat(1, 1);
	check_heartbeat(1, 0);
	check_heartbeat(1, 0xffffffffffffffffull);
	check_heartbeat(0xffffffffu, 300);
}

/* AuthHello and AuthProof byte for byte as protobuf-c packs them. */
static void test_encode_auth(void **state)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__AuthHello h = RSWAP__AUTH_HELLO__INIT;
	Rswap__AuthProof p = RSWAP__AUTH_PROOF__INIT;
	uint8_t nonce[32], mine[160];
	struct buf ref;
	int len, i;

	(void)state;
	for (i = 0; i < 32; i++)
		nonce[i] = (uint8_t)(i * 7 + 1);
	env.version = 1;
	env.seq = 77;
	env.body_case = RSWAP__ENVELOPE__BODY_AUTH_HELLO;
	env.auth_hello = &h;
	h.role = RSWAP__PEER_ROLE__PEER_CLIENT;
	h.id = "m-0123456789abcdef01234567";
	h.nonce.data = nonce;
	h.nonce.len = 32;
	ref = pack_env(&env);
	len = rswap_pb_encode_auth_hello(mine, sizeof(mine), 1, 77, 2, h.id, nonce);
	assert_int_equal(len, ref.len);
	assert_memory_equal(mine, ref.data, ref.len);
	for (int cap = 0; cap < len; cap++)
		assert_int_equal(rswap_pb_encode_auth_hello(mine, cap, 1, 77, 2, h.id,
							    nonce), -ENOSPC);
	assert_int_equal(rswap_pb_encode_auth_hello(mine, sizeof(mine), 1, 77, 2, "",
						    nonce), -EINVAL);
	free(ref.data);

	env.body_case = RSWAP__ENVELOPE__BODY_AUTH_PROOF;
	env.auth_proof = &p;
	p.mac.data = nonce;
	p.mac.len = 32;
	ref = pack_env(&env);
	len = rswap_pb_encode_auth_proof(mine, sizeof(mine), 1, 77, nonce);
	assert_int_equal(len, ref.len);
	assert_memory_equal(mine, ref.data, ref.len);
	free(ref.data);
}

/* AuthChallenge as the coordinator packs it; lengths are reported as sent. */
static void test_decode_challenge(void **state)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__AuthChallenge ch = RSWAP__AUTH_CHALLENGE__INIT;
	uint8_t nonce[40], mac[32];
	struct rswap_pb_env env;
	struct buf b;
	int i;

	(void)state;
	for (i = 0; i < 40; i++)
		nonce[i] = (uint8_t)(0xa0 + i);
	for (i = 0; i < 32; i++)
		mac[i] = (uint8_t)(0x10 + i);
	e.version = 1;
	e.seq = 5;
	e.body_case = RSWAP__ENVELOPE__BODY_AUTH_CHALLENGE;
	e.auth_challenge = &ch;
	ch.nonce.data = nonce;
	ch.nonce.len = 32;
	ch.mac.data = mac;
	ch.mac.len = 32;
	b = pack_env(&e);
	assert_int_equal(decode(&b, &env), 0);
	assert_int_equal(env.body, RSWAP_PB_BODY_AUTH_CHALLENGE);
	assert_int_equal(env.challenge.nonce_len, 32);
	assert_int_equal(env.challenge.mac_len, 32);
	assert_memory_equal(env.challenge.nonce, nonce, 32);
	assert_memory_equal(env.challenge.mac, mac, 32);
	assert_false(env.challenge.insecure);
	rswap_pb_env_free(&env);
	free(b.data);

	/* Insecure, no MAC; and a nonce too long to keep. */
	ch.mac.len = 0;
	ch.insecure = 1;
	ch.nonce.len = 40;
	b = pack_env(&e);
	assert_int_equal(decode(&b, &env), 0);
	assert_true(env.challenge.insecure);
	assert_int_equal(env.challenge.mac_len, 0);
	assert_int_equal(env.challenge.nonce_len, 40);
	rswap_pb_env_free(&env);
	free(b.data);
}

/* A body the client has no decoder for names itself, for the dispatcher. */
static void test_decode_other_body(void **state)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__AdminStatus st = RSWAP__ADMIN_STATUS__INIT;
	struct rswap_pb_env env;
	struct buf b;

	(void)state;
	e.version = 1;
	e.seq = 4;
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_STATUS;
	e.admin_status = &st;
	st.client_id = "h";
	b = pack_env(&e);
	assert_int_equal(decode(&b, &env), 0);
	assert_int_equal(env.body, RSWAP__ENVELOPE__BODY_ADMIN_STATUS);
	assert_true(env.seq == 4);
	rswap_pb_env_free(&env);
	free(b.data);
}

static void test_decode_unknown_skipped(void **state)
{
	/* field 99 varint, field 100 fixed64, field 101 len, field 102 fixed32 */
	static const uint8_t unknown[] = {
		0x98, 0x06, 0x96, 0x01,
		0xa1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8,
		0xaa, 0x06, 0x03, 'a', 'b', 'c',
		0xb5, 0x06, 1, 2, 3, 4,
	};
	struct rswap_pb_env env;
	struct buf b = good_map();

	(void)state;
	append(&b, unknown, sizeof(unknown));
	assert_int_equal(decode(&b, &env), 0);
	assert_int_equal(env.map.nslots, 3);
	assert_true(env.seq == 77);
	rswap_pb_env_free(&env);
	free(b.data);
}

/* ---- malformed input ---------------------------------------------------- */

static void expect_bad(const uint8_t *bytes, size_t n)
{
	struct buf b = { malloc(n ? n : 1), n };
	struct rswap_pb_env env;

	memcpy(b.data, bytes, n);
	assert_int_equal(decode(&b, &env), -EBADMSG);
	assert_null(env.map.slots);
	free(b.data);
}

static void test_malformed(void **state)
{
	(void)state;
	/* varint of 11 bytes */
	expect_bad((const uint8_t[]){ 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				      0xff, 0xff, 0xff, 0xff, 0x01 }, 12);
	/* 10-byte varint whose last byte carries more than bit 63 */
	expect_bad((const uint8_t[]){ 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				      0xff, 0xff, 0xff, 0x02 }, 11);
	/* varint cut short */
	expect_bad((const uint8_t[]){ 0x10, 0x80 }, 2);
	/* version sent as length-delimited */
	expect_bad((const uint8_t[]){ 0x0a, 0x01, 0x01 }, 3);
	/* chunk_map sent as varint */
	expect_bad((const uint8_t[]){ 0xa8, 0x01, 0x01 }, 3);
	/* chunk_map length past the end */
	expect_bad((const uint8_t[]){ 0xaa, 0x01, 0x05, 0x08, 0x01 }, 5);
	/* group wire types */
	expect_bad((const uint8_t[]){ 0x9b, 0x06 }, 2);
	expect_bad((const uint8_t[]){ 0x9c, 0x06 }, 2);
	/* field number 0 */
	expect_bad((const uint8_t[]){ 0x00, 0x01 }, 2);
	/* fixed64 / fixed32 cut short */
	expect_bad((const uint8_t[]){ 0xa1, 0x06, 1, 2, 3 }, 5);
	expect_bad((const uint8_t[]){ 0xb5, 0x06, 1, 2 }, 4);
	/* two bodies: ClientReleased then Error */
	expect_bad((const uint8_t[]){ 0xba, 0x01, 0x00, 0x1a, 0x00 }, 5);
	/* slot index as fixed32 inside a chunk map */
	expect_bad((const uint8_t[]){ 0xaa, 0x01, 0x07, 0x1a, 0x05, 0x0d, 1, 0, 0, 0 }, 10);
	/* slot index over 32 bits */
	expect_bad((const uint8_t[]){ 0xaa, 0x01, 0x08, 0x1a, 0x06, 0x08, 0x80, 0x80,
				      0x80, 0x80, 0x10 }, 11);
	/* Error.reason length past the end of the Error */
	expect_bad((const uint8_t[]){ 0x1a, 0x03, 0x12, 0x05, 'x' }, 5);
}

static void test_bad_strings(void **state)
{
	char addr[RSWAP_PB_ADDR_MAX + 1];
	const char *a[1] = { addr };
	uint32_t i0 = 0;
	uint64_t h = 1;
	struct rswap_pb_env env;
	struct buf b;

	(void)state;
	memset(addr, 'a', sizeof(addr) - 1);
	addr[sizeof(addr) - 1] = '\0';
	b = pack_map(1u << 24, 1u << 24, &i0, a, &h, 1, 1);
	assert_int_equal(decode(&b, &env), -EBADMSG);	/* too long */
	free(b.data);
	addr[RSWAP_PB_ADDR_MAX - 1] = '\0';
	b = pack_map(1u << 24, 1u << 24, &i0, a, &h, 1, 1);
	assert_int_equal(decode(&b, &env), 0);		/* longest that fits */
	rswap_pb_env_free(&env);
	free(b.data);
	/* a NUL inside the address */
	expect_bad((const uint8_t[]){ 0xaa, 0x01, 0x06, 0x1a, 0x04, 0x12, 0x02, 'a', 0 }, 9);
}

/* Every prefix of a valid frame either decodes or is refused, cleanly. */
static void test_truncations(void **state)
{
	struct buf b = good_map();
	struct rswap_pb_env env;

	(void)state;
	for (size_t n = 0; n < b.len; n++) {
		struct buf p = { malloc(n ? n : 1), n };

		memcpy(p.data, b.data, n);
		if (decode(&p, &env) == 0)
			rswap_pb_env_free(&env);
		free(p.data);
	}
	free(b.data);
}

/* Random corruption never crashes nor leaks (ASan/UBSan builds). */
static void test_mutations(void **state)
{
	struct buf b = good_map();
	struct rswap_pb_env env;
	unsigned int seed = 12345;

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		struct buf m = { malloc(b.len), b.len };
		int flips = 1 + iter % 4;

		memcpy(m.data, b.data, b.len);
		while (flips--) {
			seed = seed * 1103515245u + 12345u;
			m.data[(seed >> 8) % m.len] ^= (uint8_t)(seed >> 20);
		}
		if (decode(&m, &env) == 0) {
			const char *why;

			(void)rswap_pb_check_map(&env.map, 48ull << 20, &why);
			rswap_pb_env_free(&env);
		}
		free(m.data);
	}
	free(b.data);
}

/* ---- map checks ---------------------------------------------------------- */

static int check(uint64_t chunk, uint64_t size, uint64_t want_size,
		 const uint32_t *idx, const char *const *addr, size_t n)
{
	static const uint64_t h[8];
	struct buf b = pack_map(chunk, size, idx, addr, h, n, 1);
	struct rswap_pb_env env;
	const char *why = NULL;
	int ret;

	assert_int_equal(decode(&b, &env), 0);
	ret = rswap_pb_check_map(&env.map, want_size, &why);
	if (ret)
		assert_non_null(why);
	rswap_pb_env_free(&env);
	free(b.data);
	return ret;
}

static void test_check_map(void **state)
{
	static const uint32_t dup[] = { 0, 1, 1 };
	static const uint32_t out[] = { 0, 1, 3 };
	static const char *const noaddr[] = { "a:1", "", "c:1" };
	const uint64_t c = 16ull << 20;

	(void)state;
	assert_int_equal(check(c, 3 * c, 3 * c, idx3, addr3, 3), 0);
	assert_int_equal(check(c, 3 * c - 4096, 3 * c - 4096, idx3, addr3, 3), 0);
	assert_int_equal(check(c + 4096, 3 * c, 3 * c, idx3, addr3, 3), -EBADMSG);
	assert_int_equal(check(0, 3 * c, 3 * c, idx3, addr3, 3), -EBADMSG);
	assert_int_equal(check(c, 3 * c, 2 * c, idx3, addr3, 3), -EBADMSG);
	assert_int_equal(check(c, 4 * c, 4 * c, idx3, addr3, 3), -EBADMSG);
	assert_int_equal(check(c, 2 * c, 2 * c, idx3, addr3, 3), -EBADMSG);
	assert_int_equal(check(c, 3 * c, 3 * c, dup, addr3, 3), -EBADMSG);
	assert_int_equal(check(c, 3 * c, 3 * c, out, addr3, 3), -EBADMSG);
	assert_int_equal(check(c, 3 * c, 3 * c, idx3, noaddr, 3), -EBADMSG);
	assert_int_equal(check(c, 0, 0, idx3, addr3, 0), 0);
}

static void test_frame_len(void **state)
{
	uint8_t h[4];
	uint32_t len = 0;

	(void)state;
	rswap_pb_frame_put_len(h, 0x01020304);
	assert_memory_equal(h, ((uint8_t[]){ 1, 2, 3, 4 }), 4);
	assert_int_equal(rswap_pb_frame_len(h, 1u << 30, &len), 0);
	assert_int_equal(len, 0x01020304);
	assert_int_equal(rswap_pb_frame_len(h, 0x01020303, &len), -EBADMSG);
	rswap_pb_frame_put_len(h, 0);
	assert_int_equal(rswap_pb_frame_len(h, 1u << 20, &len), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_hello),
		cmocka_unit_test(test_encode_report),
		cmocka_unit_test(test_encode_move_done),
		cmocka_unit_test(test_decode_move_chunk),
		cmocka_unit_test(test_encode_release),
		cmocka_unit_test(test_encode_bad_id),
		cmocka_unit_test(test_decode_map),
		cmocka_unit_test(test_decode_map_sorts),
		cmocka_unit_test(test_decode_map_copies),
		cmocka_unit_test(test_encode_report_copies),
		cmocka_unit_test(test_decode_error),
		cmocka_unit_test(test_decode_released),
		cmocka_unit_test(test_heartbeat),
		cmocka_unit_test(test_decode_other_body),
		cmocka_unit_test(test_decode_unknown_skipped),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bad_strings),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_check_map),
		cmocka_unit_test(test_frame_len),
		cmocka_unit_test(test_encode_auth),
		cmocka_unit_test(test_decode_challenge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
