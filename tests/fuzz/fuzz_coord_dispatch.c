// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * The coordinator's connection handling on arbitrary input: the bytes go
 * through coord_peer_input(), the function rswap-coord runs on every
 * connection's input buffer, against a coordinator that already has three
 * poolds and a client with a map.
 *
 * The input is a list of operations, each a selector byte then arguments:
 *   raw bytes into a peer's stream, a frame with a fuzzed body, a message
 *   built from fuzzed fields (so deep states are reached without a corpus),
 *   fake-poold answers to what the coordinator asked, time passing, and
 *   connections going away.
 * After every operation: every frame the coordinator sent decodes, the
 * chunk accounting adds up, and the coordinator's heap has grown by no
 * more than the input it was fed justifies (a bounded amount per message
 * and per byte): state that a peer's claims inflate beyond what its frames
 * carry is a bug even when it fits in memory.  Slow inputs are caught by
 * libFuzzer's -timeout (see CMakeLists.txt): one operation may register a
 * poold with tens of thousands of chunks, but an input's budget of such
 * chunks keeps its total cost bounded when the coordinator is linear.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <event2/buffer.h>
#include <sanitizer/allocator_interface.h>
#include "dispatch.h"
#include "registry.h"
#include "rswap_frame.h"
#include "rswap_util.h"
#include "rswap.pb-c.h"

#define MB		(1ull << 20)
#define NPEERS		8
#define NSEQS		16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct in {
	const uint8_t *p;
	size_t n;
};

struct fpeer {
	struct peer *p;
	struct evbuffer *in, *out;
	uint64_t seqs[NSEQS];	/* recent requests the coordinator sent it */
	uint64_t handles[NSEQS];
	unsigned int nseq;
	struct {			/* requests not answered yet */
		uint64_t seq, handle;
		bool alloc;
	} pending[64];
	unsigned int npending;
	uint32_t mv_slot;		/* the last MoveChunk it got (a client) */
	uint64_t mv_handle, mv_from;
};

/* Held chunks all big registrations of one input may report. */
#define BIG_BUDGET	100000
/* Heap growth allowed: per byte fed, per message, and once. */
#define HEAP_PER_BYTE	64
#define HEAP_PER_MSG	(4u << 20)
#define HEAP_BASE	(16u << 20)

static struct coord *C;
static struct fpeer peers[NPEERS];
static uint64_t T;
static uint64_t next_handle;
static size_t big_left;
static size_t fed_bytes, fed_msgs;

/* Live heap bytes, from the sanitizer's allocation hooks. */
static volatile size_t heap_live;

static void malloc_hook(const volatile void *ptr, size_t size)
{
	heap_live += size;
}

static void free_hook(const volatile void *ptr)
{
	if (ptr)
		heap_live -= __sanitizer_get_allocated_size((const void *)ptr);
}

static uint8_t u8(struct in *in)
{
	uint8_t v;

	if (!in->n)
		return 0;
	v = *in->p++;
	in->n--;
	return v;
}

static uint64_t u64(struct in *in)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | u8(in);
	return v;
}

static void close_cb(void *glue)
{
	((struct fpeer *)glue)->p = NULL;
}

static void peer_open(struct fpeer *fp)
{
	if (!fp->in)
		fp->in = evbuffer_new();
	if (!fp->out)
		fp->out = evbuffer_new();
	evbuffer_drain(fp->in, evbuffer_get_length(fp->in));
	evbuffer_drain(fp->out, evbuffer_get_length(fp->out));
	fp->nseq = 0;
	fp->npending = 0;
	fp->mv_handle = fp->mv_from = 0;
	fp->p = coord_peer_new(C, "192.0.2.1:4000", fp->out, fp);
}

static void peer_feed(struct fpeer *fp)
{
	if (!fp->p)
		peer_open(fp);
	fed_bytes += evbuffer_get_length(fp->in);
	fed_msgs++;
	if (fp->p)
		coord_peer_input(C, fp->p, fp->in, T);
}

static void send_env(struct fpeer *fp, Rswap__Envelope *e)
{
	e->version = RSWAP_PROTO_VERSION;
	if (!fp->p)
		peer_open(fp);
	if (rswap_frame_append(fp->in, e))
		return;
	peer_feed(fp);
}

/* Read what the coordinator sent fp: it must all be valid frames. */
static void drain(struct fpeer *fp)
{
	for (;;) {
		size_t avail = evbuffer_get_length(fp->out);
		Rswap__Envelope *e;
		const char *why;
		uint32_t len;
		uint8_t *p;

		if (!avail)
			return;
		p = evbuffer_pullup(fp->out, -1);
		if (rswap_frame_peek(p, avail, &len) != RSWAP_FRAME_READY)
			__builtin_trap();
		e = rswap_frame_decode(p + RSWAP_FRAME_HDR, len, &why);
		if (!e)
			__builtin_trap();
		evbuffer_drain(fp->out, RSWAP_FRAME_HDR + len);
		if (e->body_case == RSWAP__ENVELOPE__BODY_CHUNK_ALLOC ||
		    e->body_case == RSWAP__ENVELOPE__BODY_CHUNK_FREE) {
			bool alloc = e->body_case == RSWAP__ENVELOPE__BODY_CHUNK_ALLOC;
			uint64_t handle = alloc ? 0 : e->chunk_free->handle;

			fp->seqs[fp->nseq % NSEQS] = e->seq;
			fp->handles[fp->nseq % NSEQS] = handle;
			fp->nseq++;
			if (fp->npending < 64) {
				fp->pending[fp->npending].seq = e->seq;
				fp->pending[fp->npending].handle = handle;
				fp->pending[fp->npending++].alloc = alloc;
			}
		}
		if (e->body_case == RSWAP__ENVELOPE__BODY_MOVE_CHUNK) {
			fp->mv_slot = e->move_chunk->slot;
			fp->mv_handle = e->move_chunk->to_handle;
			fp->mv_from = e->move_chunk->from_handle;
		}
		rswap__envelope__free_unpacked(e, NULL);
	}
}

/* Act as a poold: answer what fp was asked; refuse where mask says so. */
static void answer(struct fpeer *fp, uint8_t refuse_mask)
{
	unsigned int i, n = fp->npending;

	fp->npending = 0;
	for (i = 0; i < n && fp->p; i++) {
		Rswap__Envelope r = RSWAP__ENVELOPE__INIT;
		Rswap__ChunkAllocDone ad = RSWAP__CHUNK_ALLOC_DONE__INIT;
		Rswap__ChunkFreeDone fd = RSWAP__CHUNK_FREE_DONE__INIT;
		Rswap__Error err = RSWAP__ERROR__INIT;

		r.seq = fp->pending[i].seq;
		if (refuse_mask & (1u << (i % 8))) {
			err.code = ENOMEM;
			err.reason = "fuzz refuses";
			r.body_case = RSWAP__ENVELOPE__BODY_ERROR;
			r.error = &err;
		} else if (fp->pending[i].alloc) {
			ad.handle = ++next_handle;
			r.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE;
			r.chunk_alloc_done = &ad;
		} else {
			fd.handle = fp->pending[i].handle;
			r.body_case = RSWAP__ENVELOPE__BODY_CHUNK_FREE_DONE;
			r.chunk_free_done = &fd;
		}
		send_env(fp, &r);
	}
}

static void drain_all(void)
{
	int i;

	for (i = 0; i < NPEERS; i++)
		drain(&peers[i]);
}

/*
 * chunks_used must equal the slots that name each poold, every held slot
 * must be in its poold's handle index, and every index must find what the
 * lists hold.  One pass over the slots (the fuzzer has a few poolds).
 */
#define CHECK_POOLDS	32

static void check_accounting(void)
{
	struct registry *r = coord_registry(C);
	struct poold *pd[CHECK_POOLDS], *p;
	uint32_t used[CHECK_POOLDS] = { 0 }, held[CHECK_POOLDS] = { 0 };
	unsigned int np = 0, k;
	struct client *c;
	uint32_t i;

	for (p = r->poolds; p; p = p->next) {
		if (np == CHECK_POOLDS || registry_poold_find(r, p->addr) != p ||
		    p->connected != (p->conn != NULL))
			__builtin_trap();
		pd[np++] = p;
	}
	for (c = r->clients; c; c = c->next) {
		uint32_t cused = 0, cheld = 0, clost = 0;

		if (registry_client_find(r, c->id) != c)
			__builtin_trap();
		for (i = 0; i < c->cap; i++) {
			const struct slot *s = &c->slots[i];

			if (s->state == SLOT_EMPTY)
				continue;
			if (!s->poold || s->index >= c->nslots ||
			    registry_slot(c, s->index) != s)
				__builtin_trap();
			for (k = 0; k < np && pd[k] != s->poold; k++)
				;
			if (k == np)
				__builtin_trap();
			cused++;
			if (s->state == SLOT_HELD)
				cheld++;
			/* Lost: its poold's books forgot it (memory gone). */
			if (s->lost) {
				if (s->state != SLOT_HELD)
					__builtin_trap();
				clost++;
				continue;
			}
			used[k]++;
			if (s->state != SLOT_HELD)
				continue;
			held[k]++;
			if (!registry_handle_in_use(s->poold, s->handle))
				__builtin_trap();
		}
		if (cused != c->nused || cheld != c->nheld || clost != c->nlost)
			__builtin_trap();
		/*
		 * Extra copies count on their poold and are in its index; a
		 * reserved replica (allocation in flight) counts but has no
		 * handle yet, a lost one neither (its memory is gone).
		 */
		for (i = 0; i < c->nextra; i++) {
			const struct copy *x = &c->extra[i];

			for (k = 0; k < np && pd[k] != x->poold; k++)
				;
			if (k == np || x->slot >= c->nslots ||
			    ((x->reserved || x->lost) && !x->replica))
				__builtin_trap();
			if (x->lost)
				continue;
			used[k]++;
			if (x->reserved)
				continue;
			if (!registry_handle_in_use(x->poold, x->handle))
				__builtin_trap();
			held[k]++;
		}
	}
	for (k = 0; k < np; k++)
		if (used[k] != pd[k]->chunks_used ||
		    (!pd[k]->handles_lost && held[k] != pd[k]->handle_used))
			__builtin_trap();
}

static const char *const ids[] = { "vm1", "vm2", "vm3", "a b", "", "0123456789012345678901234567890123" };
static const uint64_t big_sizes[] = { 16 * MB, 96 * MB, 1ull << 30, 16384 * 16 * MB,
				      16384 * 16 * MB + 1, 0 };
static const uint64_t big_caps[] = { 64 * MB, 1ull << 30, 1ull << 40, 1ull << 60 };

/*
 * A PooldRegister as large as one frame takes: n chunks of k distinct
 * client ids, slots from a base with a stride, handles with a stride (0:
 * all the same), all from a few fuzzed bytes.
 */
static void build_big_register(struct fpeer *fp, struct in *in, uint64_t seq)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;
	Rswap__HeldChunk *hc, **hcp;
	char (*cid)[12], addr[32];
	size_t n = (size_t)(u8(in) % 48) * 1000 + u8(in), k, i;
	uint32_t slot0 = (uint32_t)(u8(in) << 8 | u8(in)) % 16384, slot_step = u8(in) % 4;
	uint64_t handle_step = u8(in) % 3, size = big_sizes[u8(in) % 6];
	uint64_t age = (uint64_t)u8(in) * 10007;
	size_t packed;

	k = 1 + (size_t)(u8(in) << 8 | u8(in)) % (n ? n : 1);
	snprintf(addr, sizeof(addr), "e%u:1", u8(in) % 4);
	reg.capacity = big_caps[u8(in) % 4];
	if (n > big_left)
		n = big_left;
	if (!n)
		return;
	big_left -= n;
	hc = calloc(n, sizeof(*hc));
	hcp = calloc(n, sizeof(*hcp));
	cid = calloc(k, sizeof(*cid));
	if (!hc || !hcp || !cid)
		goto out_free;
	for (i = 0; i < k; i++)
		snprintf(cid[i], sizeof(cid[i]), "z%zu", i);
	for (i = 0; i < n; i++) {
		rswap__held_chunk__init(&hc[i]);
		hc[i].handle = 1 + i * handle_step;
		hc[i].client_id = cid[i % k];
		hc[i].slot = (uint32_t)((slot0 + (i / k) * slot_step) % 16384);
		hc[i].client_size = size;
		hc[i].age_ms = age ? age + i % 7 : 0;
		hcp[i] = &hc[i];
	}
	reg.listen_addr = addr;
	reg.chunk_size = 16 * MB;
	reg.chunks = hcp;
	e.seq = seq;
	e.version = RSWAP_PROTO_VERSION;
	e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
	e.poold_register = &reg;
	/* Fit one frame: the coordinator never sees a larger one. */
	for (reg.n_chunks = n; reg.n_chunks; reg.n_chunks -= reg.n_chunks / 8 + 1) {
		packed = rswap__envelope__get_packed_size(&e);
		if (packed <= RSWAP_MAX_FRAME)
			break;
	}
	send_env(fp, &e);
out_free:
	free(hc);
	free(hcp);
	free(cid);
}

/* The coordinator keeps no more than its input carries (see the top). */
static void check_heap(size_t base)
{
	size_t bound = HEAP_BASE + HEAP_PER_BYTE * fed_bytes + HEAP_PER_MSG * fed_msgs;

	if (heap_live > base && heap_live - base > bound) {
		fprintf(stderr, "heap grew by %zu bytes after %zu messages of %zu bytes "
			"(bound %zu)\n", heap_live - base, fed_msgs, fed_bytes, bound);
		__builtin_trap();
	}
}
static const char *const addrs[] = { "a:1", "b:1", "c:1", "d:1", "nocolon", "[::1]:9" };
static const char *const zones[] = { "", "rackA", "rackB", "bad zone" };
static const uint64_t sizes[] = { 0, 1, 16 * MB, 32 * MB, 96 * MB, 1ull << 30, 1ull << 50, UINT64_MAX };

static void build_msg(struct fpeer *fp, struct in *in)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;
	Rswap__HeldChunk hc[4], *hcp[4];
	Rswap__Heartbeat hb = RSWAP__HEARTBEAT__INIT;
	Rswap__ChunkAllocDone ad = RSWAP__CHUNK_ALLOC_DONE__INIT;
	Rswap__ChunkFreeDone fd = RSWAP__CHUNK_FREE_DONE__INIT;
	Rswap__Error err = RSWAP__ERROR__INIT;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;
	Rswap__ClientRelease rel = RSWAP__CLIENT_RELEASE__INIT;
	Rswap__AdminList al = RSWAP__ADMIN_LIST__INIT;
	Rswap__AdminStatus as = RSWAP__ADMIN_STATUS__INIT;
	Rswap__ChunkMap map = RSWAP__CHUNK_MAP__INIT;
	Rswap__ClientHeartbeat chb = RSWAP__CLIENT_HEARTBEAT__INIT;
	Rswap__MoveState ms = RSWAP__MOVE_STATE__INIT;
	Rswap__MoveDone md = RSWAP__MOVE_DONE__INIT;
	Rswap__AdminDrain ad2 = RSWAP__ADMIN_DRAIN__INIT;
	Rswap__AdminRebalance ar = RSWAP__ADMIN_REBALANCE__INIT;
	uint64_t handles[8];
	uint32_t lost[2];
	uint8_t kind = u8(in), s = u8(in);
	unsigned int i, n;

	/* A seq the coordinator really used, or an arbitrary one. */
	e.seq = (s & 0x80) && fp->nseq ? fp->seqs[s % NSEQS % (fp->nseq < NSEQS ? fp->nseq : NSEQS)]
				       : s;
	/* The client's report: handles (its MoveChunk's two), progress, lost. */
	if (kind & 0x80) {
		ms.slot = u8(in) & 8 ? fp->mv_slot : u8(in) % 8;
		ms.to_handle = u8(in) & 1 ? fp->mv_handle : u8(in);
		ms.copied = (uint64_t)u8(in) << 17;
		lost[0] = u8(in) % 9;
		lost[1] = fp->mv_slot;
		n = u8(in) % 9;
		for (i = 0; i < n; i++)
			handles[i] = i == fp->mv_slot ? (s & 2 ? fp->mv_handle : fp->mv_from)
						      : u8(in);
	}
	switch (kind % 16) {
	case 0:
		reg.listen_addr = (char *)addrs[u8(in) % 6];
		reg.capacity = sizes[u8(in) % 8];
		reg.chunk_size = (u8(in) & 1) ? 16 * MB : 32 * MB;
		n = u8(in) % 5;
		for (i = 0; i < n; i++) {
			rswap__held_chunk__init(&hc[i]);
			hc[i].handle = u8(in);
			hc[i].client_id = (char *)ids[u8(in) % 6];
			hc[i].slot = u8(in) % 8;
			hc[i].client_size = sizes[u8(in) % 8];
			hc[i].age_ms = (uint64_t)u8(in) * 997;	/* 0: unknown */
			hcp[i] = &hc[i];
		}
		reg.n_chunks = n;
		reg.chunks = hcp;
		reg.zone = (char *)zones[(s >> 4) % 4];
		e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
		e.poold_register = &reg;
		break;
	case 1:
		hb.chunks_held = u8(in);
		e.body_case = RSWAP__ENVELOPE__BODY_HEARTBEAT;
		e.heartbeat = &hb;
		break;
	case 2:
		ad.handle = u8(in);
		e.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE;
		e.chunk_alloc_done = &ad;
		break;
	case 3:
		fd.handle = fp->nseq ? fp->handles[(fp->nseq - 1) % NSEQS] : u8(in);
		e.body_case = RSWAP__ENVELOPE__BODY_CHUNK_FREE_DONE;
		e.chunk_free_done = &fd;
		break;
	case 4:
		err.code = (int8_t)u8(in);
		err.reason = "fuzz";
		e.body_case = RSWAP__ENVELOPE__BODY_ERROR;
		e.error = &err;
		break;
	case 5:
		h.client_id = (char *)ids[u8(in) % 6];
		h.size = sizes[u8(in) % 8];
		h.reconnect = s & 1;
		h.replicas = (s >> 4) % 5;	/* 4: refused */
		if (kind & 0x80) {
			h.epoch = u8(in);
			h.moving = s & 4 ? &ms : NULL;
			h.handles = handles;
			h.n_handles = n;
			h.lost_slots = lost;
			h.n_lost_slots = s & 8 ? 2 : 0;
			/* The same handles as copies (two per slot: n even fits
			 * a map of n / 2 slots) and as stale copies. */
			h.copy_handles = handles;
			h.n_copy_handles = s & 0x40 ? n : 0;
			h.stale_handles = handles;
			h.n_stale_handles = s & 2 ? n : 0;
		}
		e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
		e.client_hello = &h;
		break;
	case 6:
		rel.client_id = (char *)ids[u8(in) % 6];
		e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_RELEASE;
		e.client_release = &rel;
		break;
	case 7:
		e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_LIST;
		e.admin_list = &al;
		break;
	case 8:
		as.client_id = (char *)ids[u8(in) % 6];
		e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_STATUS;
		e.admin_status = &as;
		break;
	case 9:
		if (kind & 0x80) {
			chb.epoch = u8(in);
			chb.moving = s & 4 ? &ms : NULL;
			chb.lost_slots = lost;
			chb.n_lost_slots = s & 8 ? 2 : 0;
			chb.stale_handles = handles;
			chb.n_stale_handles = s & 2 ? n : 0;
		}
		e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT;
		e.client_heartbeat = &chb;
		break;
	case 12:
		md.slot = u8(in) & 1 ? fp->mv_slot : u8(in) % 9;
		md.to_handle = u8(in) & 1 ? fp->mv_handle : u8(in);
		md.switched = s & 1;
		md.code = (int8_t)u8(in);
		md.reason = "fuzz";
		e.body_case = RSWAP__ENVELOPE__BODY_MOVE_DONE;
		e.move_done = &md;
		break;
	case 13:
		ad2.poold_addr = (char *)addrs[u8(in) % 6];
		ad2.undrain = s & 1;
		e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_DRAIN;
		e.admin_drain = &ad2;
		break;
	case 14:
		ar.dry_run = s & 1;
		e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_REBALANCE;
		e.admin_rebalance = &ar;
		break;
	case 10:
		e.body_case = RSWAP__ENVELOPE__BODY_CHUNK_MAP;
		e.chunk_map = &map;
		break;
	default:
		build_big_register(fp, in, e.seq);
		return;
	}
	send_env(fp, &e);
}

static void setup_state(void)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;
	static const uint64_t caps[3] = { 64 * MB, 32 * MB, 48 * MB };
	int i;

	for (i = 0; i < 3; i++) {
		reg.listen_addr = (char *)addrs[i];
		reg.capacity = caps[i];
		e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
		e.poold_register = &reg;
		send_env(&peers[i], &e);
	}
	h.client_id = "vm1";
	h.size = 96 * MB;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	send_env(&peers[3], &e);
	for (i = 0; i < 4; i++) {
		drain_all();
		answer(&peers[0], 0);
		answer(&peers[1], 0);
		answer(&peers[2], 0);
	}
	drain_all();
}

/* Refusals are logged by the thousand: run with -close_fd_mask=2. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	rswap_log_init("fuzz", 0);
	__sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct coord_ops ops = { .close_peer = close_cb };
	struct coord_settings s = {
		.chunk_size = 16 * MB, .heartbeat_ms = 1000, .timeout_ms = 5000,
		.client_timeout_ms = 3000, .out_limit = 256 * 1024,
	};
	struct in in = { data, size };
	size_t heap0 = heap_live;
	int i;

	T = 100000000;	/* chunk ages (up to ~40 min) fit before it */
	next_handle = 1000;
	big_left = BIG_BUDGET;
	fed_bytes = fed_msgs = 0;
	C = coord_new(&s, &ops);
	if (!C)
		return 0;
	for (i = 0; i < NPEERS; i++)
		peer_open(&peers[i]);
	setup_state();
	check_accounting();

	while (in.n) {
		uint8_t op = u8(&in);
		struct fpeer *fp = &peers[(op >> 3) % NPEERS];
		size_t len;

		switch (op & 7) {
		case 0:		/* raw stream bytes */
			len = u8(&in);
			len = len < in.n ? len : in.n;
			if (!fp->p)
				peer_open(fp);
			evbuffer_add(fp->in, in.p, len);
			in.p += len;
			in.n -= len;
			peer_feed(fp);
			break;
		case 1: {	/* a correctly framed, fuzzed body */
			uint8_t hdr[4];

			len = u8(&in);
			len = len < in.n ? len : in.n;
			hdr[0] = 0;
			hdr[1] = 0;
			hdr[2] = (uint8_t)(len >> 8);
			hdr[3] = (uint8_t)len;
			if (!fp->p)
				peer_open(fp);
			evbuffer_add(fp->in, hdr, 4);
			evbuffer_add(fp->in, in.p, len);
			in.p += len;
			in.n -= len;
			peer_feed(fp);
			break;
		}
		case 2:
		case 3:
			build_msg(fp, &in);
			break;
		case 4:
			answer(fp, u8(&in));
			break;
		case 5:
			T += (uint64_t)u8(&in) * 100;
			coord_tick(C, T);
			break;
		case 6:
			if (fp->p)
				coord_peer_gone(C, fp->p, "fuzz", T);
			fp->p = NULL;
			break;
		default:
			T += u64(&in) % 100000;
			coord_tick(C, T);
			break;
		}
		drain_all();
		check_accounting();
		check_heap(heap0);
	}
	coord_free(C);
	C = NULL;
	for (i = 0; i < NPEERS; i++)
		peers[i].p = NULL;
	return 0;
}
