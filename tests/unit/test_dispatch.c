// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * The dispatcher without sockets: peers are pairs of evbuffers, time is a
 * variable.  Covers what the end-to-end test cannot time precisely:
 * timeouts, liveness, output limits, byte-at-a-time input, busy rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include "dispatch.h"
#include "registry.h"
#include "rswap_frame.h"
#include "rswap_util.h"
#include "rswap.pb-c.h"

#define MB (1ull << 20)
#define CHUNK (16 * MB)

struct tpeer {
	struct peer *p;
	struct evbuffer *in, *out;
	bool closed;
};

static struct coord *C;
static uint64_t T = 1000;

static void close_cb(void *glue)
{
	struct tpeer *tp = glue;

	tp->closed = true;
	tp->p = NULL;
}

static int setup(void **state)
{
	static const struct coord_ops ops = { .close_peer = close_cb };
	struct coord_settings s = {
		.chunk_size = CHUNK, .heartbeat_ms = 1000, .timeout_ms = 5000,
		.out_limit = 64 * 1024,
	};

	rswap_log_init("test_dispatch", 0);
	C = coord_new(&s, &ops);
	return C ? 0 : -1;
}

static int teardown(void **state)
{
	coord_free(C);
	return 0;
}

static struct tpeer *tp_new(void)
{
	struct tpeer *tp = calloc(1, sizeof(*tp));

	tp->in = evbuffer_new();
	tp->out = evbuffer_new();
	tp->p = coord_peer_new(C, "127.0.0.1:5555", tp->out, tp);
	return tp;
}

static void tp_free(struct tpeer *tp)
{
	if (tp->p)
		coord_peer_gone(C, tp->p, "test done", T);
	evbuffer_free(tp->in);
	evbuffer_free(tp->out);
	free(tp);
}

static void tp_feed(struct tpeer *tp)
{
	assert_non_null(tp->p);
	coord_peer_input(C, tp->p, tp->in, T);
}

static void tp_send(struct tpeer *tp, Rswap__Envelope *e)
{
	e->version = RSWAP_PROTO_VERSION;
	assert_int_equal(rswap_frame_append(tp->in, e), 0);
	tp_feed(tp);
}

static Rswap__Envelope *tp_recv(struct tpeer *tp)
{
	size_t avail = evbuffer_get_length(tp->out);
	Rswap__Envelope *e;
	const char *why;
	uint32_t len;
	uint8_t *p;

	if (!avail)
		return NULL;
	p = evbuffer_pullup(tp->out, -1);
	assert_int_equal(rswap_frame_peek(p, avail, &len), RSWAP_FRAME_READY);
	e = rswap_frame_decode(p + RSWAP_FRAME_HDR, len, &why);
	assert_non_null(e);
	evbuffer_drain(tp->out, RSWAP_FRAME_HDR + len);
	return e;
}

static Rswap__Envelope *expect(struct tpeer *tp, Rswap__Envelope__BodyCase bc)
{
	Rswap__Envelope *e = tp_recv(tp);

	assert_non_null(e);
	if (e->body_case != bc)
		fail_msg("got message %d, want %d%s%s", e->body_case, bc,
			 e->body_case == RSWAP__ENVELOPE__BODY_ERROR ? ": " : "",
			 e->body_case == RSWAP__ENVELOPE__BODY_ERROR ? e->error->reason : "");
	return e;
}

static void expect_error(struct tpeer *tp, int code, const char *needle)
{
	Rswap__Envelope *e = expect(tp, RSWAP__ENVELOPE__BODY_ERROR);

	assert_int_equal(e->error->code, code);
	if (needle && !strstr(e->error->reason, needle))
		fail_msg("'%s' not in '%s'", needle, e->error->reason);
	rswap__envelope__free_unpacked(e, NULL);
}

static struct tpeer *poold(const char *addr, uint64_t cap)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;
	struct tpeer *tp = tp_new();

	reg.listen_addr = (char *)addr;
	reg.capacity = cap;
	e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
	e.poold_register = &reg;
	tp_send(tp, &e);
	r = expect(tp, RSWAP__ENVELOPE__BODY_POOLD_REGISTERED);
	rswap__envelope__free_unpacked(r, NULL);
	return tp;
}

static void hello(struct tpeer *tp, const char *id, uint64_t size, uint64_t seq)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;

	h.client_id = (char *)id;
	h.size = size;
	e.seq = seq;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	tp_send(tp, &e);
}

static void release(struct tpeer *tp, const char *id)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ClientRelease r = RSWAP__CLIENT_RELEASE__INIT;

	r.client_id = (char *)id;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_RELEASE;
	e.client_release = &r;
	tp_send(tp, &e);
}

/* Answer the next ChunkAlloc on pd with handle; returns its seq. */
static uint64_t alloc_done(struct tpeer *pd, uint64_t handle)
{
	Rswap__Envelope *a = expect(pd, RSWAP__ENVELOPE__BODY_CHUNK_ALLOC);
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkAllocDone d = RSWAP__CHUNK_ALLOC_DONE__INIT;
	uint64_t seq = a->seq;

	rswap__envelope__free_unpacked(a, NULL);
	d.handle = handle;
	e.seq = seq;
	e.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE;
	e.chunk_alloc_done = &d;
	tp_send(pd, &e);
	return seq;
}

static void free_done(struct tpeer *pd, uint64_t want_handle)
{
	Rswap__Envelope *f = expect(pd, RSWAP__ENVELOPE__BODY_CHUNK_FREE);
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkFreeDone d = RSWAP__CHUNK_FREE_DONE__INIT;

	assert_int_equal(f->chunk_free->handle, want_handle);
	d.handle = want_handle;
	e.seq = f->seq;
	e.body_case = RSWAP__ENVELOPE__BODY_CHUNK_FREE_DONE;
	e.chunk_free_done = &d;
	rswap__envelope__free_unpacked(f, NULL);
	tp_send(pd, &e);
}

static void byte_at_a_time(void **state)
{
	struct tpeer *pd = poold("a:1", 64 * MB), *cl = tp_new();
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;
	struct evbuffer *whole = evbuffer_new();
	uint8_t byte;

	h.client_id = "vm1";
	h.size = 20 * MB;
	e.version = RSWAP_PROTO_VERSION;
	e.seq = 42;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	assert_int_equal(rswap_frame_append(whole, &e), 0);
	while (evbuffer_remove(whole, &byte, 1) == 1) {
		assert_null(tp_recv(pd));
		evbuffer_add(cl->in, &byte, 1);
		tp_feed(cl);
	}
	evbuffer_free(whole);
	alloc_done(pd, 100);
	alloc_done(pd, 101);
	r = expect(cl, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	assert_int_equal(r->seq, 42);
	assert_int_equal(r->chunk_map->n_slots, 2);
	assert_int_equal(r->chunk_map->slots[1]->handle, 101);
	rswap__envelope__free_unpacked(r, NULL);
	tp_free(cl);
	tp_free(pd);
}

static void busy_rules(void **state)
{
	struct tpeer *pd = poold("a:1", 64 * MB), *c1 = tp_new(), *c2 = tp_new();
	Rswap__Envelope *r;

	hello(c1, "vm1", 16 * MB, 1);
	/* Same connection again before the reply, other connection same id. */
	hello(c1, "vm1", 16 * MB, 2);
	expect_error(c1, EBUSY, "one request at a time");
	/* c1's connection owns vm1 from its hello on. */
	hello(c2, "vm1", 16 * MB, 3);
	expect_error(c2, EBUSY, "in use by a live session");
	release(c2, "vm1");
	expect_error(c2, EBUSY, "in use by a live session");
	assert_false(c1->closed || c2->closed);
	alloc_done(pd, 7);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	assert_int_equal(r->seq, 1);
	rswap__envelope__free_unpacked(r, NULL);
	release(c2, "vm1");
	expect_error(c2, EBUSY, "in use by a live session");
	release(c1, "vm1");
	free_done(pd, 7);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CLIENT_RELEASED);
	assert_int_equal(r->client_released->chunks_freed, 1);
	rswap__envelope__free_unpacked(r, NULL);
	tp_free(c1);
	tp_free(c2);
	tp_free(pd);
}

static void timeout_then_late_reply(void **state)
{
	struct tpeer *a = poold("a:1", 16 * MB), *b = poold("b:1", 16 * MB), *cl = tp_new();
	Rswap__Envelope *r, e = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkAllocDone d = RSWAP__CHUNK_ALLOC_DONE__INIT;
	Rswap__Heartbeat hb = RSWAP__HEARTBEAT__INIT;
	uint64_t b_seq;

	hello(cl, "vm1", 32 * MB, 9);
	alloc_done(a, 1);
	r = expect(b, RSWAP__ENVELOPE__BODY_CHUNK_ALLOC);
	b_seq = r->seq;
	rswap__envelope__free_unpacked(r, NULL);
	/* Keep both alive by heartbeats; only the request times out. */
	e.body_case = RSWAP__ENVELOPE__BODY_HEARTBEAT;
	e.heartbeat = &hb;
	T += 4999;
	tp_send(a, &e);
	tp_send(b, &e);
	coord_tick(C, T);
	assert_null(tp_recv(cl));
	T += 1;
	coord_tick(C, T);
	expect_error(cl, ETIMEDOUT, "did not answer ChunkAlloc");
	/* a's chunk was freed at once. */
	free_done(a, 1);
	assert_null(registry_client_find(coord_registry(C), "vm1"));
	/* b's late answer: freed, not adopted. */
	d.handle = 55;
	e.seq = b_seq;
	e.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE;
	e.chunk_alloc_done = &d;
	tp_send(b, &e);
	free_done(b, 55);
	assert_false(b->closed);
	assert_int_equal(registry_poold_find(coord_registry(C), "b:1")->chunks_used, 0);
	tp_free(cl);
	tp_free(a);
	tp_free(b);
}

static void liveness_by_tick(void **state)
{
	struct tpeer *a = poold("a:1", 16 * MB), *cl = tp_new();
	struct poold *pa = registry_poold_find(coord_registry(C), "a:1");

	T += 3000;
	coord_tick(C, T);
	assert_int_equal(pa->state, POOLD_SUSPECT);
	hello(cl, "vm1", 1, 1);
	expect_error(cl, ENOSPC, "0 free on 0 usable poolds");
	T += 7000;
	coord_tick(C, T);
	assert_int_equal(pa->state, POOLD_DEAD);
	assert_false(a->closed);
	tp_free(cl);
	tp_free(a);
	assert_int_equal(pa->state, POOLD_DEAD);
	assert_false(pa->connected);
}

static void poold_gone_mid_release(void **state)
{
	struct tpeer *a = poold("a:1", 16 * MB), *b = poold("b:1", 16 * MB), *cl = tp_new();
	Rswap__Envelope *r, e = RSWAP__ENVELOPE__INIT;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;
	Rswap__HeldChunk hc = RSWAP__HELD_CHUNK__INIT, *hcp = &hc;

	hello(cl, "vm1", 32 * MB, 1);
	alloc_done(a, 10);
	alloc_done(b, 20);
	r = expect(cl, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	rswap__envelope__free_unpacked(r, NULL);
	release(cl, "vm1");
	free_done(a, 10);
	r = expect(b, RSWAP__ENVELOPE__BODY_CHUNK_FREE);
	rswap__envelope__free_unpacked(r, NULL);
	coord_peer_gone(C, b->p, "test kills b", T);
	b->p = NULL;
	r = expect(cl, RSWAP__ENVELOPE__BODY_CLIENT_RELEASED);
	assert_int_equal(r->client_released->chunks_freed, 1);
	rswap__envelope__free_unpacked(r, NULL);
	assert_null(registry_client_find(coord_registry(C), "vm1"));

	/* b comes back still holding the chunk: it is told to free it. */
	tp_free(b);
	b = tp_new();
	hc.handle = 20;
	hc.client_id = "vm1";
	hc.slot = 1;
	hc.client_size = 32 * MB;
	reg.listen_addr = "b:1";
	reg.capacity = 16 * MB;
	reg.chunk_size = CHUNK;
	reg.n_chunks = 1;
	reg.chunks = &hcp;
	e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
	e.poold_register = &reg;
	tp_send(b, &e);
	r = expect(b, RSWAP__ENVELOPE__BODY_POOLD_REGISTERED);
	rswap__envelope__free_unpacked(r, NULL);
	free_done(b, 20);
	assert_null(registry_client_find(coord_registry(C), "vm1"));
	tp_free(cl);
	tp_free(a);
	tp_free(b);
}

static void output_limit(void **state)
{
	char addr[128];
	struct tpeer *a, *cl = tp_new(), *adm;
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__AdminList l = RSWAP__ADMIN_LIST__INIT;
	uint64_t h;

	/* 1000 slots naming a 100-byte poold address: a map bigger than
	 * the 64K output limit, while the ChunkAllocs stay below it. */
	memset(addr, 'h', 100);
	strcpy(addr + 100, ":1");
	a = poold(addr, 1ull << 40);
	hello(cl, "big", 1000 * CHUNK, 1);
	for (h = 0; h < 1000; h++)
		alloc_done(a, h + 1);
	assert_true(cl->closed);
	assert_false(a->closed);
	adm = tp_new();
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_LIST;
	e.admin_list = &l;
	tp_send(adm, &e);
	assert_true(adm->closed);
	/* The allocation itself stands: a reconnecting client gets it. */
	assert_non_null(registry_client_find(coord_registry(C), "big"));
	tp_free(cl);
	tp_free(adm);
	tp_free(a);
}

static void map_must_fit_a_frame(void **state)
{
	char addr[128];
	struct tpeer *a, *cl = tp_new();

	memset(addr, 'h', 125);
	strcpy(addr + 125, ":1");
	a = poold(addr, 1ull << 50);
	hello(cl, "huge", (uint64_t)RSWAP_MAX_SLOTS * CHUNK, 1);
	expect_error(cl, EMSGSIZE, "does not fit one frame");
	assert_null(tp_recv(a));
	assert_null(registry_client_find(coord_registry(C), "huge"));
	assert_int_equal(registry_poold_find(coord_registry(C), addr)->chunks_used, 0);
	tp_free(cl);
	tp_free(a);
}

static void duplicate_handle_from_poold(void **state)
{
	struct tpeer *a = poold("a:1", 64 * MB), *c1 = tp_new(), *c2 = tp_new();
	Rswap__Envelope *r;

	hello(c1, "vm1", 16 * MB, 1);
	alloc_done(a, 42);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	rswap__envelope__free_unpacked(r, NULL);
	/* The poold hands out 42 again: vm2 rolls back, nobody frees 42. */
	hello(c2, "vm2", 32 * MB, 2);
	alloc_done(a, 43);
	alloc_done(a, 42);
	expect_error(c2, EIO, "already holds another slot");
	r = expect(a, RSWAP__ENVELOPE__BODY_CHUNK_FREE);
	assert_int_equal(r->chunk_free->handle, 43);
	rswap__envelope__free_unpacked(r, NULL);
	expect_error(a, EPROTO, "already holds another slot");
	assert_true(a->closed);
	assert_null(registry_client_find(coord_registry(C), "vm2"));
	assert_non_null(registry_client_find(coord_registry(C), "vm1"));
	assert_true(registry_handle_in_use(registry_poold_find(coord_registry(C), "a:1"), 42));
	tp_free(c1);
	tp_free(c2);
	tp_free(a);
}

static void stray_replies(void **state)
{
	struct tpeer *a = poold("a:1", 16 * MB), *b = poold("b:1", 16 * MB);
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__Error err = RSWAP__ERROR__INIT;
	Rswap__ChunkFreeDone fd = RSWAP__CHUNK_FREE_DONE__INIT;

	/* An Error for nothing we sent is logged, not fatal. */
	err.code = EIO;
	err.reason = "whatever";
	e.seq = 999;
	e.body_case = RSWAP__ENVELOPE__BODY_ERROR;
	e.error = &err;
	tp_send(a, &e);
	assert_false(a->closed);
	/* A ChunkFreeDone for nothing we sent closes that poold only. */
	e.body_case = RSWAP__ENVELOPE__BODY_CHUNK_FREE_DONE;
	e.chunk_free_done = &fd;
	tp_send(a, &e);
	expect_error(a, EPROTO, "never sent");
	assert_true(a->closed);
	assert_false(b->closed);
	assert_false(registry_poold_find(coord_registry(C), "a:1")->connected);
	assert_true(registry_poold_find(coord_registry(C), "b:1")->connected);
	tp_free(a);
	tp_free(b);
}

static void hello_pending_client_leaves_then_poold_refuses(void **state)
{
	struct tpeer *a = poold("a:1", 16 * MB), *b = poold("b:1", 16 * MB), *cl = tp_new();
	Rswap__Envelope *r, e = RSWAP__ENVELOPE__INIT;
	Rswap__Error err = RSWAP__ERROR__INIT;

	hello(cl, "vm1", 32 * MB, 1);
	tp_free(cl);
	alloc_done(a, 5);
	r = expect(b, RSWAP__ENVELOPE__BODY_CHUNK_ALLOC);
	err.code = ENOMEM;
	err.reason = "full";
	e.seq = r->seq;
	e.body_case = RSWAP__ENVELOPE__BODY_ERROR;
	e.error = &err;
	rswap__envelope__free_unpacked(r, NULL);
	tp_send(b, &e);
	free_done(a, 5);
	assert_null(registry_client_find(coord_registry(C), "vm1"));
	tp_free(a);
	tp_free(b);
}

static void admin_drain(const char *addr)
{
	struct tpeer *ad = tp_new();
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__AdminDrain d = RSWAP__ADMIN_DRAIN__INIT;

	d.poold_addr = (char *)addr;
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_DRAIN;
	e.admin_drain = &d;
	tp_send(ad, &e);
	r = expect(ad, RSWAP__ENVELOPE__BODY_CLUSTER_STATE);
	assert_true(r->cluster_state->job > 0);
	rswap__envelope__free_unpacked(r, NULL);
	tp_free(ad);
}

static void client_hb(struct tpeer *tp, const uint32_t *lost, size_t nlost,
		      const Rswap__MoveState *mv)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ClientHeartbeat hb = RSWAP__CLIENT_HEARTBEAT__INIT;

	hb.lost_slots = (uint32_t *)lost;
	hb.n_lost_slots = nlost;
	hb.moving = (Rswap__MoveState *)mv;
	e.seq = 3;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT;
	e.client_heartbeat = &hb;
	tp_send(tp, &e);
}

static void move_done(struct tpeer *tp, uint32_t slot, uint64_t to, bool switched)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__MoveDone d = RSWAP__MOVE_DONE__INIT;

	d.slot = slot;
	d.to_handle = to;
	d.switched = switched;
	d.code = switched ? 0 : EIO;
	d.reason = switched ? "" : "test";
	e.body_case = RSWAP__ENVELOPE__BODY_MOVE_DONE;
	e.move_done = &d;
	tp_send(tp, &e);
}

/* A move's messages from a client are validated; its steps by poold answers. */
static void move_state_machine(void **state)
{
	struct tpeer *a = poold("a:1", 64 * MB), *b = poold("b:1", 64 * MB);
	struct tpeer *c1 = tp_new(), *c2 = tp_new();
	struct registry *reg = coord_registry(C);
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;
	Rswap__MoveState ms = RSWAP__MOVE_STATE__INIT;
	uint64_t handles[3] = { 100, 0, 0 };
	uint32_t lost[1025] = { 0 };
	struct client *cl;

	hello(c1, "vm1", 16 * MB, 1);
	alloc_done(a, 100);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	rswap__envelope__free_unpacked(r, NULL);
	cl = registry_client_find(reg, "vm1");

	/* A heartbeat naming a slot the map does not have closes the session. */
	lost[0] = 5;
	client_hb(c1, lost, 1, NULL);
	expect_error(c1, EINVAL, "slot 5 lost in a 1-slot map");
	assert_true(c1->closed);
	assert_null(cl->owner);

	/* A reconnect report with the wrong number of handles is refused. */
	h.client_id = "vm1";
	h.size = 16 * MB;
	h.reconnect = true;
	h.handles = handles;
	h.n_handles = 3;
	e.seq = 2;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	tp_send(c2, &e);
	expect_error(c2, EINVAL, "reports 3 handles for a 1-slot map");
	assert_false(c2->closed);
	h.n_handles = 1;
	tp_send(c2, &e);
	r = expect(c2, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	rswap__envelope__free_unpacked(r, NULL);

	/* The target's ChunkAlloc refused: the move fails, the client hears nothing. */
	admin_drain("a:1");
	r = expect(b, RSWAP__ENVELOPE__BODY_CHUNK_ALLOC);
	{
		Rswap__Envelope er = RSWAP__ENVELOPE__INIT;
		Rswap__Error err = RSWAP__ERROR__INIT;

		err.code = ENOSPC;
		err.reason = "full";
		er.seq = r->seq;
		er.body_case = RSWAP__ENVELOPE__BODY_ERROR;
		er.error = &err;
		tp_send(b, &er);
	}
	rswap__envelope__free_unpacked(r, NULL);
	assert_null(tp_recv(c2));
	assert_false(registry_slot(cl, 0)->moving);

	/* Again; allocated: MoveChunk with the next epoch. */
	admin_drain("a:1");
	alloc_done(b, 200);
	r = expect(c2, RSWAP__ENVELOPE__BODY_MOVE_CHUNK);
	assert_int_equal(r->move_chunk->epoch, 1);
	assert_int_equal(r->move_chunk->slot, 0);
	assert_int_equal(r->move_chunk->from_handle, 100);
	assert_string_equal(r->move_chunk->to_poold, "b:1");
	assert_int_equal(r->move_chunk->to_handle, 200);
	rswap__envelope__free_unpacked(r, NULL);
	assert_int_equal(registry_poold_find(reg, "b:1")->chunks_used, 1);

	/* Progress is recorded; a stale MoveDone is ignored. */
	ms.slot = 0;
	ms.to_handle = 200;
	ms.copied = 4 * MB;
	client_hb(c2, NULL, 0, &ms);
	r = expect(c2, RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT);
	assert_int_equal(r->seq, 3);
	assert_null(r->client_heartbeat->moving);
	rswap__envelope__free_unpacked(r, NULL);
	move_done(c2, 0, 999, true);
	assert_null(tp_recv(a));
	assert_false(c2->closed);
	/* Too many lost slots in one beat: closed; the move waits, both kept. */
	client_hb(c2, lost + 1, 1025, NULL);
	expect_error(c2, EINVAL, "1025 lost slots; at most 1024");
	assert_true(c2->closed);
	assert_null(tp_recv(a));
	assert_null(tp_recv(b));
	assert_int_equal(registry_slot(cl, 0)->handle, 100);

	/* Back with the target as its handle: committed, the source freed. */
	tp_free(c2);
	c2 = tp_new();
	handles[0] = 200;
	h.epoch = 1;
	tp_send(c2, &e);
	r = expect(c2, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	assert_int_equal(r->chunk_map->epoch, 1);
	assert_int_equal(r->chunk_map->slots[0]->handle, 200);
	assert_string_equal(r->chunk_map->slots[0]->poold_addr, "b:1");
	rswap__envelope__free_unpacked(r, NULL);
	free_done(a, 100);
	assert_int_equal(registry_poold_find(reg, "a:1")->chunks_used, 0);
	assert_int_equal(cl->epoch, 1);

	/* A MoveDone for a slot the map does not have is a violation. */
	move_done(c2, 1, 200, true);
	expect_error(c2, EINVAL, "MoveDone for slot 1 of a 1-slot map");
	assert_true(c2->closed);
	tp_free(c1);
	tp_free(c2);
	tp_free(a);
	tp_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(byte_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(busy_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(timeout_then_late_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(liveness_by_tick, setup, teardown),
		cmocka_unit_test_setup_teardown(poold_gone_mid_release, setup, teardown),
		cmocka_unit_test_setup_teardown(output_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(map_must_fit_a_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(duplicate_handle_from_poold, setup, teardown),
		cmocka_unit_test_setup_teardown(stray_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(move_state_machine, setup, teardown),
		cmocka_unit_test_setup_teardown(hello_pending_client_leaves_then_poold_refuses,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
