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

/*
 * A poold that registers holding one chunk of vm1 (age_ms as on the wire),
 * or none if handle is 0.
 */
static struct tpeer *poold_register(const char *addr, uint64_t cap, const char *zone,
				    uint64_t handle, uint32_t slot, uint64_t client_size,
				    uint64_t age_ms)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;
	Rswap__HeldChunk hc = RSWAP__HELD_CHUNK__INIT, *hcp = &hc;
	struct tpeer *tp = tp_new();

	hc.handle = handle;
	hc.client_id = "vm1";
	hc.slot = slot;
	hc.client_size = client_size;
	hc.age_ms = age_ms;
	reg.listen_addr = (char *)addr;
	reg.capacity = cap;
	reg.zone = (char *)zone;
	if (handle) {
		reg.chunk_size = CHUNK;
		reg.n_chunks = 1;
		reg.chunks = &hcp;
	}
	e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
	e.poold_register = &reg;
	tp_send(tp, &e);
	r = expect(tp, RSWAP__ENVELOPE__BODY_POOLD_REGISTERED);
	rswap__envelope__free_unpacked(r, NULL);
	return tp;
}

static struct tpeer *poold_holding(const char *addr, uint64_t cap, uint64_t handle,
				   uint32_t slot, uint64_t client_size, uint64_t age_ms)
{
	return poold_register(addr, cap, NULL, handle, slot, client_size, age_ms);
}

static struct tpeer *poold(const char *addr, uint64_t cap)
{
	return poold_holding(addr, cap, 0, 0, 0, 0);
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

static int setup_caps(void **state)
{
	static const struct coord_ops ops = { .close_peer = close_cb };
	struct coord_settings s = {
		.chunk_size = CHUNK, .heartbeat_ms = 1000, .timeout_ms = 5000,
		.out_limit = 64 * 1024, .max_poolds = 2, .max_clients = 1,
	};

	rswap_log_init("test_dispatch", 0);
	C = coord_new(&s, &ops);
	return C ? 0 : -1;
}

/* --max-poolds and --max-clients: a new one past the cap is refused. */
static void global_caps(void **state)
{
	struct tpeer *a = poold("a:1", 64 * MB), *b = poold("b:1", 64 * MB);
	struct tpeer *x = tp_new(), *c1 = tp_new(), *c2 = tp_new();
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;

	reg.listen_addr = "c:1";
	reg.capacity = 64 * MB;
	e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
	e.poold_register = &reg;
	tp_send(x, &e);
	expect_error(x, EUSERS, "--max-poolds");
	assert_true(x->closed);

	hello(c1, "vm1", 16 * MB, 1);
	alloc_done(a, 100);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	rswap__envelope__free_unpacked(r, NULL);
	hello(c2, "vm2", 16 * MB, 2);
	expect_error(c2, EUSERS, "--max-clients");
	assert_null(tp_recv(a));
	assert_null(tp_recv(b));
	/* The one it knows still gets its map. */
	tp_free(c1);
	c1 = tp_new();
	hello(c1, "vm1", 16 * MB, 3);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	rswap__envelope__free_unpacked(r, NULL);
	tp_free(c1);
	tp_free(c2);
	tp_free(x);
	tp_free(b);
	tp_free(a);
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
	Rswap__Envelope *r;

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
	b = poold_holding("b:1", 16 * MB, 20, 1, 32 * MB, 0);
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

/* The reply is a map of epoch whose slot 0 is (addr, handle). */
static void expect_map1(struct tpeer *tp, uint64_t epoch, const char *addr,
			uint64_t handle)
{
	Rswap__Envelope *r = expect(tp, RSWAP__ENVELOPE__BODY_CHUNK_MAP);

	assert_int_equal(r->chunk_map->epoch, epoch);
	assert_int_equal(r->chunk_map->slots[0]->handle, handle);
	assert_string_equal(r->chunk_map->slots[0]->poold_addr, addr);
	rswap__envelope__free_unpacked(r, NULL);
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
	expect_map1(c2, 1, "b:1", 200);
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

/*
 * After a restart three poolds report one slot: a stale copy, the one the
 * client runs on and the target it is copying to (the newest, so mapped).
 * Nothing is freed at registration; the client's report maps its copy,
 * resumes the move and frees only the stale one.
 */
static void restart_three_copies(void **state)
{
	struct tpeer *a = poold_holding("a:1", 64 * MB, 1, 0, 16 * MB, 1000001);
	struct tpeer *b = poold_holding("b:1", 64 * MB, 2, 0, 16 * MB, 100001);
	struct tpeer *c = poold_holding("c:1", 64 * MB, 3, 0, 16 * MB, 1001);
	struct tpeer *cl = tp_new();
	struct registry *reg = coord_registry(C);
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;
	Rswap__MoveState ms = RSWAP__MOVE_STATE__INIT;
	uint64_t handles[1] = { 2 };
	struct client *vm1 = registry_client_find(reg, "vm1");

	assert_non_null(vm1);
	assert_int_equal(registry_slot(vm1, 0)->handle, 3);
	assert_int_equal(registry_unresolved(vm1), 2);
	assert_null(tp_recv(a));
	assert_null(tp_recv(b));

	h.client_id = "vm1";
	h.size = 16 * MB;
	h.reconnect = true;
	h.epoch = 4;
	h.handles = handles;
	h.n_handles = 1;
	ms.slot = 0;
	ms.to_handle = 3;
	ms.copied = MB;
	h.moving = &ms;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	tp_send(cl, &e);
	expect_map1(cl, 4, "b:1", 2);
	free_done(a, 1);
	assert_null(tp_recv(b));
	assert_null(tp_recv(c));
	assert_int_equal(registry_unresolved(vm1), 0);
	assert_int_equal(vm1->nextra, 1);
	assert_true(vm1->extra[0].move);
	assert_int_equal(registry_poold_find(reg, "a:1")->chunks_used, 0);

	/* The resumed move commits like any other: epoch 5, b's copy freed. */
	move_done(cl, 0, 3, true);
	free_done(b, 2);
	assert_int_equal(registry_slot(vm1, 0)->handle, 3);
	assert_int_equal(vm1->epoch, 5);
	assert_int_equal(vm1->nextra, 0);
	tp_free(cl);
	tp_free(a);
	tp_free(b);
	tp_free(c);
}

/* ---- replicas ----------------------------------------------------------- */

static void hello_r(struct tpeer *tp, const char *id, uint64_t size, uint32_t replicas,
		    bool reconnect, const uint64_t *copy_handles, size_t ncopy,
		    const uint64_t *stale, size_t nstale)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;
	uint64_t handles[64];
	size_t i;

	h.client_id = (char *)id;
	h.size = size;
	h.replicas = replicas;
	h.reconnect = reconnect;
	if (ncopy) {
		/* handles: each slot's first copy in the list. */
		for (i = 0; i * replicas < ncopy; i++)
			handles[i] = copy_handles[i * replicas];
		h.handles = handles;
		h.n_handles = i;
		h.copy_handles = (uint64_t *)copy_handles;
		h.n_copy_handles = ncopy;
	}
	h.stale_handles = (uint64_t *)stale;
	h.n_stale_handles = nstale;
	e.seq = 1;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	tp_send(tp, &e);
}

/* Answer every ChunkAlloc pd has pending, handles from *next on. */
static unsigned int allocs_done(struct tpeer *pd, uint64_t *next)
{
	unsigned int n = 0;

	while (evbuffer_get_length(pd->out)) {
		alloc_done(pd, (*next)++);
		n++;
	}
	return n;
}

static void client_hb_stale(struct tpeer *tp, const uint64_t *stale, size_t n)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__ClientHeartbeat hb = RSWAP__CLIENT_HEARTBEAT__INIT;

	hb.stale_handles = (uint64_t *)stale;
	hb.n_stale_handles = n;
	e.seq = 3;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT;
	e.client_heartbeat = &hb;
	tp_send(tp, &e);
	r = expect(tp, RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT);
	rswap__envelope__free_unpacked(r, NULL);
}

/* AdminStatus of id: its ClientInfo (free the envelope *env). */
static Rswap__ClientInfo *status(const char *id, Rswap__Envelope **env)
{
	struct tpeer *ad = tp_new();
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__AdminStatus st = RSWAP__ADMIN_STATUS__INIT;

	st.client_id = (char *)id;
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_STATUS;
	e.admin_status = &st;
	tp_send(ad, &e);
	*env = expect(ad, RSWAP__ENVELOPE__BODY_CLIENT_INFO);
	tp_free(ad);
	return (*env)->client_info;
}

/* Every slot of a replicated map: copies[0] is the slot, copies on distinct poolds. */
static void check_map_copies(const Rswap__ChunkMap *m, uint32_t replicas)
{
	size_t i, j, k;

	assert_int_equal(m->replicas, replicas);
	for (i = 0; i < m->n_slots; i++) {
		const Rswap__Slot *s = m->slots[i];

		assert_int_equal(s->n_copies, replicas);
		assert_string_equal(s->copies[0]->poold_addr, s->poold_addr);
		assert_int_equal(s->copies[0]->handle, s->handle);
		for (j = 0; j < s->n_copies; j++)
			for (k = j + 1; k < s->n_copies; k++)
				assert_string_not_equal(s->copies[j]->poold_addr,
							s->copies[k]->poold_addr);
	}
}

/*
 * A replicated hello: every copy allocated on distinct poolds, the map
 * lists them; the client's stale reports make slots degraded and back;
 * its replicas cannot change; a reconnect's copy_handles decide.
 */
static void replicated_hello(void **state)
{
	struct tpeer *a = poold("a:1", 64 * MB), *b = poold("b:1", 64 * MB);
	struct tpeer *c = poold("c:1", 64 * MB), *c1 = tp_new(), *c2 = tp_new();
	struct registry *reg = coord_registry(C);
	Rswap__Envelope *r;
	Rswap__ClientInfo *ci;
	uint64_t next = 100, copies[4], stale[1];
	struct client *cl;
	size_t i;

	hello_r(c1, "vm1", 32 * MB, 4, false, NULL, 0, NULL, 0);
	expect_error(c1, EINVAL, "replicas=4; 1 to 3 copies");
	hello_r(c1, "vm1", 32 * MB, 2, false, NULL, 0, NULL, 0);
	assert_int_equal(allocs_done(a, &next) + allocs_done(b, &next) +
			 allocs_done(c, &next), 4);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	check_map_copies(r->chunk_map, 2);
	assert_int_equal(r->chunk_map->n_slots, 2);
	for (i = 0; i < 2; i++) {
		copies[i * 2] = r->chunk_map->slots[i]->copies[0]->handle;
		copies[i * 2 + 1] = r->chunk_map->slots[i]->copies[1]->handle;
		assert_false(r->chunk_map->slots[i]->copies[1]->lost);
	}
	rswap__envelope__free_unpacked(r, NULL);
	cl = registry_client_find(reg, "vm1");
	assert_int_equal(cl->replicas, 2);
	assert_int_equal(registry_poold_find(reg, "a:1")->chunks_used +
			 registry_poold_find(reg, "b:1")->chunks_used +
			 registry_poold_find(reg, "c:1")->chunks_used, 4);

	/* Healthy; one copy reported stale: degraded; no longer listed: healthy. */
	ci = status("vm1", &r);
	assert_int_equal(ci->replicas, 2);
	assert_int_equal(ci->degraded_chunks, 0);
	assert_int_equal(ci->map->slots[0]->health, RSWAP__SLOT_HEALTH__SLOT_HEALTHY);
	rswap__envelope__free_unpacked(r, NULL);
	stale[0] = copies[1];
	client_hb_stale(c1, stale, 1);
	ci = status("vm1", &r);
	assert_int_equal(ci->degraded_chunks, 1);
	assert_int_equal(ci->stale_copies, 1);
	assert_int_equal(ci->map->slots[0]->health, RSWAP__SLOT_HEALTH__SLOT_DEGRADED);
	assert_true(ci->map->slots[0]->copies[1]->stale);
	assert_int_equal(ci->map->slots[1]->health, RSWAP__SLOT_HEALTH__SLOT_HEALTHY);
	rswap__envelope__free_unpacked(r, NULL);
	client_hb_stale(c1, NULL, 0);
	ci = status("vm1", &r);
	assert_int_equal(ci->degraded_chunks, 0);
	assert_int_equal(ci->stale_copies, 0);
	rswap__envelope__free_unpacked(r, NULL);

	/* Another number of copies for the same client: refused. */
	tp_free(c1);
	hello_r(c2, "vm1", 32 * MB, 3, true, NULL, 0, NULL, 0);
	expect_error(c2, EINVAL, "has a map of 2 copies per chunk");
	hello_r(c2, "vm1", 32 * MB, 2, true, copies, 3, NULL, 0);
	expect_error(c2, EINVAL, "3 copy handles for 2 slots of 2 copies");

	/* Reconnect: slot 1 runs on one copy only (0 there): the other is freed. */
	copies[3] = 0;
	hello_r(c2, "vm1", 32 * MB, 2, true, copies, 4, NULL, 0);
	r = expect(c2, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	assert_int_equal(r->chunk_map->slots[1]->n_copies, 1);
	assert_int_equal(r->chunk_map->slots[0]->n_copies, 2);
	rswap__envelope__free_unpacked(r, NULL);
	assert_int_equal(cl->nextra, 1);
	assert_int_equal(registry_poold_find(reg, "a:1")->chunks_used +
			 registry_poold_find(reg, "b:1")->chunks_used +
			 registry_poold_find(reg, "c:1")->chunks_used, 3);
	/* Its ChunkFree went to one of the poolds. */
	assert_int_equal(!!evbuffer_get_length(a->out) + !!evbuffer_get_length(b->out) +
			 !!evbuffer_get_length(c->out), 1);
	ci = status("vm1", &r);
	assert_int_equal(ci->degraded_chunks, 1);
	assert_int_equal(ci->map->slots[1]->health, RSWAP__SLOT_HEALTH__SLOT_DEGRADED);
	rswap__envelope__free_unpacked(r, NULL);
	tp_free(c2);
	tp_free(a);
	tp_free(b);
	tp_free(c);
}

/* Too few poolds for the copies: ENOSPC naming both numbers, nothing sent. */
static void replicated_hello_enospc(void **state)
{
	struct tpeer *a = poold("a:1", 64 * MB), *c1 = tp_new();
	struct registry *reg = coord_registry(C);

	hello_r(c1, "vm1", 32 * MB, 2, false, NULL, 0, NULL, 0);
	expect_error(c1, ENOSPC, "replicas=2 asked for, only 1 placement possible (1 live poold, 1 zone)");
	assert_null(tp_recv(a));
	assert_null(registry_client_find(reg, "vm1"));
	assert_int_equal(registry_poold_find(reg, "a:1")->chunks_used, 0);
	tp_free(c1);
	tp_free(a);
}

/* A replica's poold refuses: the whole hello rolls back, every copy freed. */
static void replicated_hello_rollback(void **state)
{
	struct tpeer *a = poold("a:1", 64 * MB), *b = poold("b:1", 64 * MB);
	struct tpeer *c1 = tp_new();
	struct registry *reg = coord_registry(C);
	Rswap__Envelope *q, er = RSWAP__ENVELOPE__INIT;
	Rswap__Error err = RSWAP__ERROR__INIT;
	uint64_t next = 100;

	hello_r(c1, "vm1", 16 * MB, 2, false, NULL, 0, NULL, 0);
	allocs_done(a, &next);
	q = expect(b, RSWAP__ENVELOPE__BODY_CHUNK_ALLOC);
	err.code = ENOSPC;
	err.reason = "full";
	er.seq = q->seq;
	er.body_case = RSWAP__ENVELOPE__BODY_ERROR;
	er.error = &err;
	rswap__envelope__free_unpacked(q, NULL);
	tp_send(b, &er);
	expect_error(c1, ENOSPC, "full");
	free_done(a, 100);
	assert_null(registry_client_find(reg, "vm1"));
	assert_int_equal(registry_poold_find(reg, "a:1")->chunks_used, 0);
	assert_int_equal(registry_poold_find(reg, "b:1")->chunks_used, 0);
	tp_free(c1);
	tp_free(a);
	tp_free(b);
}

/* Time passes by ms in half-second steps; the live poolds beat. */
static void tick_beating(struct tpeer *const *pds, size_t n, uint64_t ms)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__Heartbeat hb = RSWAP__HEARTBEAT__INIT;
	uint64_t end = T + ms;
	size_t i;

	e.body_case = RSWAP__ENVELOPE__BODY_HEARTBEAT;
	e.heartbeat = &hb;
	while (T < end) {
		T = T + 500 < end ? T + 500 : end;
		for (i = 0; i < n; i++)
			if (pds[i] && pds[i]->p)
				tp_send(pds[i], &e);
		coord_tick(C, T);
	}
}

/* ClusterState by AdminList (free the envelope *env). */
static Rswap__ClusterState *cluster(Rswap__Envelope **env)
{
	struct tpeer *ad = tp_new();
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__AdminList al = RSWAP__ADMIN_LIST__INIT;

	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_LIST;
	e.admin_list = &al;
	tp_send(ad, &e);
	*env = expect(ad, RSWAP__ENVELOPE__BODY_CLUSTER_STATE);
	tp_free(ad);
	return (*env)->cluster_state;
}

static void move_done_code(struct tpeer *tp, uint32_t slot, uint64_t to, int code)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__MoveDone d = RSWAP__MOVE_DONE__INIT;

	d.slot = slot;
	d.to_handle = to;
	d.code = code;
	d.reason = "resyncing itself";
	e.body_case = RSWAP__ENVELOPE__BODY_MOVE_DONE;
	e.move_done = &d;
	tp_send(tp, &e);
}

/*
 * Re-replication: a copy's poold dies; the reconciler allocates a new
 * copy on the poold that holds none of the slot and sends MoveChunk from
 * the dead copy.  A refusal (EBUSY) frees the target and waits (>= 2 s)
 * before the next try; a switch puts the target in the dead copy's place
 * and the dead chunk is remembered for freeing when its poold returns.
 */
static void rereplicate_dead_poold(void **state)
{
	struct tpeer *pd[3] = { poold("a:1", 64 * MB), poold("b:1", 64 * MB),
				poold("c:1", 64 * MB) };
	const char *addr[3] = { "a:1", "b:1", "c:1" };
	struct tpeer *c1 = tp_new(), *dead, *spare = NULL;
	struct registry *reg = coord_registry(C);
	Rswap__Envelope *r;
	Rswap__ClusterState *cs;
	Rswap__ClientInfo *ci;
	uint64_t next = 100, dead_handle, to;
	struct poold *deadp;
	struct client *cl;
	int i, d = -1;

	hello_r(c1, "vm1", 16 * MB, 2, false, NULL, 0, NULL, 0);
	for (i = 0; i < 3; i++)
		allocs_done(pd[i], &next);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	check_map_copies(r->chunk_map, 2);
	dead_handle = r->chunk_map->slots[0]->copies[1]->handle;
	for (i = 0; i < 3; i++) {
		if (!strcmp(addr[i], r->chunk_map->slots[0]->copies[1]->poold_addr))
			d = i;
		else if (strcmp(addr[i], r->chunk_map->slots[0]->copies[0]->poold_addr))
			spare = pd[i];
	}
	rswap__envelope__free_unpacked(r, NULL);
	assert_true(d >= 0);
	assert_non_null(spare);
	dead = pd[d];
	deadp = registry_poold_find(reg, addr[d]);
	cl = registry_client_find(reg, "vm1");

	/* Nothing to do while every copy is fine. */
	tick_beating(pd, 3, 1500);
	assert_null(tp_recv(spare));

	/*
	 * The poold of copy 1 goes away: dead at once, the slot degraded,
	 * but replaced only once it has been silent for 10 heartbeats.
	 */
	tp_free(dead);
	pd[d] = NULL;
	ci = status("vm1", &r);
	assert_int_equal(ci->degraded_chunks, 1);
	assert_true(ci->map->slots[0]->copies[1]->lost);
	rswap__envelope__free_unpacked(r, NULL);
	tick_beating(pd, 3, 8000);
	assert_null(tp_recv(spare));
	tick_beating(pd, 3, 2500);
	to = next;
	alloc_done(spare, next++);
	r = expect(c1, RSWAP__ENVELOPE__BODY_MOVE_CHUNK);
	assert_int_equal(r->move_chunk->from_handle, dead_handle);
	assert_int_equal(r->move_chunk->to_handle, to);
	assert_int_equal(r->move_chunk->epoch, 1);
	rswap__envelope__free_unpacked(r, NULL);
	cs = cluster(&r);
	assert_int_equal(cs->n_moves, 1);
	assert_true(cs->moves[0]->resync);
	assert_int_equal(cs->n_jobs, 1);
	assert_string_equal(cs->jobs[0]->kind, "rereplicate");
	rswap__envelope__free_unpacked(r, NULL);

	/* The client is busy resyncing: target freed, no retry right away. */
	move_done_code(c1, 0, to, EBUSY);
	free_done(spare, to);
	tick_beating(pd, 3, 1000);
	assert_null(tp_recv(spare));
	tick_beating(pd, 3, 1500);
	to = next;
	alloc_done(spare, next++);
	r = expect(c1, RSWAP__ENVELOPE__BODY_MOVE_CHUNK);
	assert_int_equal(r->move_chunk->from_handle, dead_handle);
	rswap__envelope__free_unpacked(r, NULL);

	/* Switched: the target takes the dead copy's place, in sync. */
	move_done(c1, 0, to, true);
	assert_int_equal(cl->epoch, 1);
	ci = status("vm1", &r);
	assert_int_equal(ci->degraded_chunks, 0);
	assert_int_equal(ci->map->slots[0]->n_copies, 2);
	assert_int_equal(ci->map->slots[0]->copies[1]->handle, to);
	assert_false(ci->map->slots[0]->copies[1]->lost);
	assert_int_equal(ci->map->slots[0]->health, RSWAP__SLOT_HEALTH__SLOT_HEALTHY);
	rswap__envelope__free_unpacked(r, NULL);
	/* The dead poold's chunk: out of its books, freed when it returns. */
	assert_int_equal(deadp->chunks_used, 0);
	assert_non_null(registry_tomb(deadp, 0));
	assert_int_equal(registry_tomb(deadp, 0)->handle, dead_handle);
	/* Each pass of the reconciler that queues is a job: failed, then done. */
	cs = cluster(&r);
	assert_int_equal(cs->n_jobs, 2);
	assert_int_equal(cs->jobs[0]->failed, 1);
	assert_non_null(strstr(cs->jobs[0]->last_error, "resyncing itself"));
	assert_int_equal(cs->jobs[1]->done, 1);
	rswap__envelope__free_unpacked(r, NULL);
	tick_beating(pd, 3, 3000);
	assert_null(tp_recv(spare));
	tp_free(c1);
	for (i = 0; i < 3; i++)
		if (pd[i])
			tp_free(pd[i]);
}

/*
 * A poold back as a new incarnation without its copy: the copy is lost
 * (the slot goes on from the other), and is replaced; with nowhere to put
 * it (every other poold holds a copy) the slot stays degraded.
 */
static void rereplicate_new_incarnation(void **state)
{
	struct tpeer *pd[3] = { poold("a:1", 64 * MB), poold("b:1", 64 * MB), NULL };
	struct tpeer *c1 = tp_new();
	struct registry *reg = coord_registry(C);
	Rswap__Envelope *r;
	Rswap__ClientInfo *ci;
	uint64_t next = 100, own;
	struct client *cl;
	int o;

	hello_r(c1, "vm1", 16 * MB, 2, false, NULL, 0, NULL, 0);
	allocs_done(pd[0], &next);
	allocs_done(pd[1], &next);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	o = strcmp(r->chunk_map->slots[0]->poold_addr, "a:1") ? 1 : 0;
	own = r->chunk_map->slots[0]->handle;
	rswap__envelope__free_unpacked(r, NULL);
	cl = registry_client_find(reg, "vm1");

	/* The slot's own poold restarts empty: lost; the other copy goes on. */
	tp_free(pd[o]);
	pd[o] = poold(o ? "b:1" : "a:1", 64 * MB);
	assert_false(registry_slot(cl, 0)->lost);
	assert_string_equal(registry_slot(cl, 0)->poold->addr, o ? "a:1" : "b:1");
	assert_true(cl->extra[0].lost);
	ci = status("vm1", &r);
	assert_int_equal(ci->lost_chunks, 0);
	assert_int_equal(ci->degraded_chunks, 1);
	assert_true(ci->map->slots[0]->copies[1]->lost);
	rswap__envelope__free_unpacked(r, NULL);

	/* That poold holds nothing of the slot now: it takes the new copy. */
	tick_beating(pd, 3, 1500);
	alloc_done(pd[o], 300);
	r = expect(c1, RSWAP__ENVELOPE__BODY_MOVE_CHUNK);
	assert_int_equal(r->move_chunk->from_handle, own);
	assert_string_equal(r->move_chunk->to_poold, o ? "b:1" : "a:1");
	rswap__envelope__free_unpacked(r, NULL);
	move_done(c1, 0, 300, true);
	assert_null(tp_recv(pd[o]));	/* a lost copy is never freed */
	ci = status("vm1", &r);
	assert_int_equal(ci->degraded_chunks, 0);
	rswap__envelope__free_unpacked(r, NULL);

	/* The other dies with 2 poolds only: nowhere to go; stays degraded. */
	tp_free(pd[!o]);
	pd[!o] = NULL;
	tick_beating(pd, 3, 11000);
	assert_null(tp_recv(pd[o]));
	assert_int_equal(cl->nextra, 1);
	/* A third poold: the copy goes there. */
	pd[2] = poold("c:1", 64 * MB);
	tick_beating(pd, 3, 1500);
	alloc_done(pd[2], 400);
	r = expect(c1, RSWAP__ENVELOPE__BODY_MOVE_CHUNK);
	assert_string_equal(r->move_chunk->to_poold, "c:1");
	rswap__envelope__free_unpacked(r, NULL);
	tp_free(c1);
	tp_free(pd[o]);
	tp_free(pd[2]);
}

/* A copy reported stale beyond --stale-replace-ms is replaced. */
static int setup_stale(void **state)
{
	static const struct coord_ops ops = { .close_peer = close_cb };
	struct coord_settings s = {
		.chunk_size = CHUNK, .heartbeat_ms = 1000, .timeout_ms = 5000,
		.out_limit = 64 * 1024, .stale_replace_ms = 5000,
	};

	rswap_log_init("test_dispatch", 0);
	C = coord_new(&s, &ops);
	return C ? 0 : -1;
}

static void rereplicate_long_stale(void **state)
{
	struct tpeer *pds[3] = { poold("a:1", 64 * MB), poold("b:1", 64 * MB),
				 poold("c:1", 64 * MB) };
	const char *addr[3] = { "a:1", "b:1", "c:1" };
	struct tpeer *c1 = tp_new(), *holder = NULL, *spare = NULL;
	Rswap__Envelope *r;
	uint64_t next = 100, stale[1];
	int i;

	hello_r(c1, "vm1", 16 * MB, 2, false, NULL, 0, NULL, 0);
	for (i = 0; i < 3; i++)
		allocs_done(pds[i], &next);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	stale[0] = r->chunk_map->slots[0]->copies[1]->handle;
	for (i = 0; i < 3; i++) {
		if (!strcmp(addr[i], r->chunk_map->slots[0]->copies[1]->poold_addr))
			holder = pds[i];
		else if (strcmp(addr[i], r->chunk_map->slots[0]->poold_addr))
			spare = pds[i];
	}
	rswap__envelope__free_unpacked(r, NULL);
	client_hb_stale(c1, stale, 1);
	tick_beating(pds, 3, 3000);
	assert_null(tp_recv(spare));
	client_hb_stale(c1, stale, 1);	/* still stale: since the first report */
	tick_beating(pds, 3, 2500);
	alloc_done(spare, 500);
	r = expect(c1, RSWAP__ENVELOPE__BODY_MOVE_CHUNK);
	assert_int_equal(r->move_chunk->from_handle, stale[0]);
	rswap__envelope__free_unpacked(r, NULL);
	/* Switched: the stale chunk, on a live poold, is freed there. */
	move_done(c1, 0, 500, true);
	free_done(holder, stale[0]);
	tp_free(c1);
	for (i = 0; i < 3; i++)
		tp_free(pds[i]);
}

/*
 * After a coordinator restart two poolds report one slot of a replicated
 * client: one is mapped, the other unresolved until the reconnect hello's
 * copy_handles name both: a replica again, nothing freed.  A copy it does
 * not list is freed.
 */
static void restart_replicated(void **state)
{
	struct tpeer *a = poold_holding("a:1", 64 * MB, 1, 0, 16 * MB, 2001);
	struct tpeer *b = poold_holding("b:1", 64 * MB, 2, 0, 16 * MB, 1001);
	struct tpeer *c = poold_holding("c:1", 64 * MB, 3, 0, 16 * MB, 3001);
	struct tpeer *c1 = tp_new();
	struct registry *reg = coord_registry(C);
	struct client *cl = registry_client_find(reg, "vm1");
	uint64_t copies[2] = { 2, 1 };
	Rswap__Envelope *r;

	assert_non_null(cl);
	assert_int_equal(cl->replicas, 0);
	assert_int_equal(registry_unresolved(cl), 2);
	hello_r(c1, "vm1", 16 * MB, 2, true, copies, 2, NULL, 0);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	assert_int_equal(r->chunk_map->replicas, 2);
	check_map_copies(r->chunk_map, 2);
	assert_int_equal(r->chunk_map->slots[0]->handle, 2);
	assert_int_equal(r->chunk_map->slots[0]->copies[1]->handle, 1);
	rswap__envelope__free_unpacked(r, NULL);
	assert_int_equal(cl->replicas, 2);
	assert_int_equal(registry_unresolved(cl), 0);
	/* c's copy (3) is none of the client's: freed. */
	free_done(c, 3);
	assert_null(tp_recv(a));
	assert_null(tp_recv(b));
	tp_free(c1);
	tp_free(a);
	tp_free(b);
	tp_free(c);
}

static struct tpeer *poold_zone(const char *addr, uint64_t cap, const char *zone)
{
	return poold_register(addr, cap, zone, 0, 0, 0, 0);
}

/*
 * Many stale copies with nowhere to go (no other poold in their zone)
 * come first in the reconciler's scan; the one copy that has a target
 * (another poold of its zone) is still replaced: a pass gives up after a
 * bounded number and the next one starts where it stopped.
 */
static void rereplicate_nowhere_does_not_hide(void **state)
{
	struct tpeer *pds[3] = { poold_zone("a:1", 2048 * MB, "X"),
				 poold_zone("b:1", 1024 * MB, "Y"), NULL };
	struct tpeer *c1 = tp_new();
	struct registry *reg = coord_registry(C);
	uint64_t next = 100, stale[19];
	Rswap__Envelope *r;
	struct client *cl;
	uint32_t i;

	hello_r(c1, "vm1", 20 * 16 * MB, 2, false, NULL, 0, NULL, 0);
	allocs_done(pds[0], &next);
	allocs_done(pds[1], &next);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	check_map_copies(r->chunk_map, 2);
	cl = registry_client_find(reg, "vm1");
	/* Zone X has the most room: every slot's own copy is on a. */
	for (i = 0; i < 20; i++)
		assert_string_equal(r->chunk_map->slots[i]->poold_addr, "a:1");
	for (i = 0; i < 18; i++)
		stale[i] = r->chunk_map->slots[i]->handle;
	stale[18] = r->chunk_map->slots[19]->copies[1]->handle;
	rswap__envelope__free_unpacked(r, NULL);
	/* c is a second poold of zone Y: only b's copies may go there. */
	pds[2] = poold_zone("c:1", 1024 * MB, "Y");
	client_hb_stale(c1, stale, 19);
	tick_beating(pds, 3, 5500);
	assert_null(tp_recv(pds[2]));
	tick_beating(pds, 3, 2000);
	alloc_done(pds[2], 900);
	r = expect(c1, RSWAP__ENVELOPE__BODY_MOVE_CHUNK);
	assert_int_equal(r->move_chunk->slot, 19);
	assert_int_equal(r->move_chunk->from_handle, stale[18]);
	rswap__envelope__free_unpacked(r, NULL);
	assert_true(cl->rerep_queued);
	tp_free(c1);
	for (i = 0; i < 3; i++)
		tp_free(pds[i]);
}

/* A drain moves a replicated client's copies only where the rules allow. */
static void drain_replicated(void **state)
{
	struct tpeer *a = poold("a:1", 64 * MB), *b = poold("b:1", 64 * MB);
	struct tpeer *c = poold("c:1", 64 * MB), *c1 = tp_new();
	Rswap__Envelope *r;
	uint64_t next = 100;

	hello_r(c1, "vm1", 16 * MB, 3, false, NULL, 0, NULL, 0);
	allocs_done(a, &next);
	allocs_done(b, &next);
	allocs_done(c, &next);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	check_map_copies(r->chunk_map, 3);
	rswap__envelope__free_unpacked(r, NULL);
	/* Every other poold holds a copy: nothing may move. */
	admin_drain("b:1");
	assert_null(tp_recv(a));
	assert_null(tp_recv(c));
	{
		Rswap__ClusterState *cs = cluster(&r);

		assert_int_equal(cs->moves_total, 0);
		assert_int_equal(cs->jobs[0]->failed, 1);
		assert_non_null(strstr(cs->jobs[0]->last_error, "outside the zones"));
		rswap__envelope__free_unpacked(r, NULL);
	}
	tp_free(c1);
	tp_free(a);
	tp_free(b);
	tp_free(c);
}

/*
 * Rebalance moves a replicated client's further copies too, not only each
 * slot's own: poold b is above its share whichever copies it holds, and
 * its chunk goes to the new poold c, which holds no copy of that slot.
 */
static void rebalance_replicated(void **state)
{
	struct tpeer *a = poold("a:1", 128 * MB), *b = poold("b:1", 64 * MB);
	struct tpeer *c1 = tp_new(), *c, *ad = tp_new();
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__AdminRebalance rb = RSWAP__ADMIN_REBALANCE__INIT;
	Rswap__RebalancePlan *plan;
	uint64_t next = 100;

	(void)state;
	hello_r(c1, "vm1", 32 * MB, 2, false, NULL, 0, NULL, 0);
	allocs_done(a, &next);
	allocs_done(b, &next);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	check_map_copies(r->chunk_map, 2);
	rswap__envelope__free_unpacked(r, NULL);
	c = poold("c:1", 64 * MB);
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_REBALANCE;
	e.admin_rebalance = &rb;
	tp_send(ad, &e);
	r = expect(ad, RSWAP__ENVELOPE__BODY_REBALANCE_PLAN);
	plan = r->rebalance_plan;
	assert_int_equal(plan->moves_total, 1);
	assert_int_equal(plan->n_moves, 1);
	assert_string_equal(plan->moves[0]->from_poold, "b:1");
	assert_string_equal(plan->moves[0]->to_poold, "c:1");
	assert_true(plan->job > 0);
	rswap__envelope__free_unpacked(r, NULL);
	/* It is under way: the target got its ChunkAlloc. */
	r = expect(c, RSWAP__ENVELOPE__BODY_CHUNK_ALLOC);
	rswap__envelope__free_unpacked(r, NULL);
	tp_free(ad);
	tp_free(c1);
	tp_free(a);
	tp_free(b);
	tp_free(c);
}

/*
 * After a poold died and its copies were re-made on the others, a new
 * poold gets its share of a rebalance: the copies re-made by moves are
 * movable like the first ones (VM test 36 saw 0 moves here).
 */
static void rebalance_after_rereplication(void **state)
{
	struct tpeer *pd[4] = { poold("a:1", 80 * MB), poold("b:1", 80 * MB),
				poold("c:1", 80 * MB), NULL };
	struct tpeer *c1 = tp_new(), *ad = tp_new();
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__AdminRebalance rb = RSWAP__ADMIN_REBALANCE__INIT;
	uint64_t next = 100;
	int i, moves = 0;

	(void)state;
	hello_r(c1, "vm1", 64 * MB, 2, false, NULL, 0, NULL, 0);
	for (i = 0; i < 3; i++)
		allocs_done(pd[i], &next);
	r = expect(c1, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	check_map_copies(r->chunk_map, 2);
	rswap__envelope__free_unpacked(r, NULL);
	/* a dies; its copies are re-made on b and c, one move at a time. */
	tp_free(pd[0]);
	pd[0] = NULL;
	tick_beating(pd, 3, 12000);
	for (int idle = 0; idle < 10; idle++) {
		Rswap__Envelope *m;
		uint64_t to = next;

		for (i = 1; i < 3; i++)
			if (allocs_done(pd[i], &next))
				break;
		if (i < 3) {
			m = expect(c1, RSWAP__ENVELOPE__BODY_MOVE_CHUNK);
			move_done(c1, m->move_chunk->slot, to, true);
			rswap__envelope__free_unpacked(m, NULL);
			moves++;
			idle = 0;
		}
		tick_beating(pd, 3, 1500);
	}
	assert_true(moves >= 1);
	{
		Rswap__ClientInfo *ci = status("vm1", &r);

		assert_int_equal(ci->degraded_chunks, 0);
		rswap__envelope__free_unpacked(r, NULL);
	}
	/* b and c hold 4 chunks each; d is new and empty. */
	pd[3] = poold("d:1", 80 * MB);
	rb.dry_run = true;
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_REBALANCE;
	e.admin_rebalance = &rb;
	tp_send(ad, &e);
	r = expect(ad, RSWAP__ENVELOPE__BODY_REBALANCE_PLAN);
	assert_true(r->rebalance_plan->moves_total >= 2);
	assert_int_equal(r->rebalance_plan->n_moves, r->rebalance_plan->moves_total);
	for (i = 0; i < (int)r->rebalance_plan->n_moves; i++)
		assert_string_equal(r->rebalance_plan->moves[i]->to_poold, "d:1");
	rswap__envelope__free_unpacked(r, NULL);
	tp_free(ad);
	tp_free(c1);
	for (i = 0; i < 4; i++)
		if (pd[i])
			tp_free(pd[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(byte_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(global_caps, setup_caps, teardown),
		cmocka_unit_test_setup_teardown(busy_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(timeout_then_late_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(liveness_by_tick, setup, teardown),
		cmocka_unit_test_setup_teardown(poold_gone_mid_release, setup, teardown),
		cmocka_unit_test_setup_teardown(output_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(map_must_fit_a_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(duplicate_handle_from_poold, setup, teardown),
		cmocka_unit_test_setup_teardown(stray_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(move_state_machine, setup, teardown),
		cmocka_unit_test_setup_teardown(restart_three_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(replicated_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(replicated_hello_enospc, setup, teardown),
		cmocka_unit_test_setup_teardown(replicated_hello_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(rereplicate_dead_poold, setup, teardown),
		cmocka_unit_test_setup_teardown(rereplicate_new_incarnation, setup, teardown),
		cmocka_unit_test_setup_teardown(rereplicate_long_stale, setup_stale, teardown),
		cmocka_unit_test_setup_teardown(drain_replicated, setup, teardown),
		cmocka_unit_test_setup_teardown(rebalance_replicated, setup, teardown),
		cmocka_unit_test_setup_teardown(rebalance_after_rereplication, setup, teardown),
		cmocka_unit_test_setup_teardown(restart_replicated, setup, teardown),
		cmocka_unit_test_setup_teardown(rereplicate_nowhere_does_not_hide, setup_stale,
						teardown),
		cmocka_unit_test_setup_teardown(hello_pending_client_leaves_then_poold_refuses,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
