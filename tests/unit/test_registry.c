// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/* Registry: registration, re-registration, rebuild after a restart,
 * conflicts, tombstones, liveness and input validation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "registry.h"
#include "report.h"

#define MB (1ull << 20)
#define CHUNK (16 * MB)

static char why[512];

static struct reg_result last;	/* of the last reg() */
static uint64_t now = 1000000;

static int reg(struct registry *r, const char *addr, uint64_t cap,
	       const struct held_chunk *h, size_t n, struct poold **out,
	       size_t *nfree)
{
	struct poold_report rep = { .addr = addr, .capacity = cap,
				    .chunk_size = n ? CHUNK : 0, .chunks = h, .nchunks = n };
	int ret;

	why[0] = '\0';
	registry_reg_result_free(&last);
	ret = registry_poold_register(r, &rep, now, &last, why, sizeof(why));
	if (out)
		*out = last.poold;
	if (nfree)
		*nfree = last.nto_free;
	return ret;
}

static void validators(void **state)
{
	assert_true(registry_valid_client_id("vm-1.example"));
	assert_true(registry_valid_client_id("0123456789012345678901234567890"));
	assert_false(registry_valid_client_id("01234567890123456789012345678901"));
	assert_false(registry_valid_client_id(""));
	assert_false(registry_valid_client_id("a b"));
	assert_false(registry_valid_client_id("a\tb"));
	assert_false(registry_valid_client_id("caf\xc3\xa9"));
	assert_false(registry_valid_client_id(NULL));

	assert_true(registry_valid_addr("10.0.0.3:9401"));
	assert_true(registry_valid_addr("node-7:1"));
	assert_true(registry_valid_addr("[fe80::1]:65535"));
	assert_false(registry_valid_addr("10.0.0.3"));
	assert_false(registry_valid_addr("10.0.0.3:0"));
	assert_false(registry_valid_addr("10.0.0.3:65536"));
	assert_false(registry_valid_addr("10.0.0.3:-1"));
	assert_false(registry_valid_addr("10.0.0.3:9x"));
	assert_false(registry_valid_addr(":9401"));
	assert_false(registry_valid_addr("fe80::1:9401"));
	assert_false(registry_valid_addr("[]:9401"));
	assert_false(registry_valid_addr("a b:1"));
	assert_false(registry_valid_addr(""));
}

static void chunk_size_rules(void **state)
{
	struct registry *r;

	assert_null(registry_new(8 * MB));
	assert_null(registry_new(24 * MB));
	r = registry_new(CHUNK);
	assert_non_null(r);
	assert_int_equal(registry_slots_for(r, 0), 0);
	assert_int_equal(registry_slots_for(r, 1), 1);
	assert_int_equal(registry_slots_for(r, CHUNK), 1);
	assert_int_equal(registry_slots_for(r, CHUNK + 1), 2);
	assert_int_equal(registry_slots_for(r, (uint64_t)RSWAP_MAX_SLOTS * CHUNK), RSWAP_MAX_SLOTS);
	assert_int_equal(registry_slots_for(r, (uint64_t)RSWAP_MAX_SLOTS * CHUNK + 1), 0);
	assert_int_equal(registry_slots_for(r, UINT64_MAX), 0);
	registry_free(r);
}

static void register_and_double_register(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct poold *p, *q;

	assert_int_equal(reg(r, "h1:9401", 100 * MB, NULL, 0, &p, NULL), 0);
	assert_int_equal(p->chunks_total, 6);	/* 100M / 16M, rounded down */
	assert_int_equal(p->state, POOLD_ALIVE);
	assert_true(p->connected);
	assert_int_equal(reg(r, "h1:9401", 100 * MB, NULL, 0, &q, NULL), -EEXIST);
	assert_non_null(strstr(why, "already connected"));
	assert_int_equal(reg(r, "bad", 100 * MB, NULL, 0, &q, NULL), -EINVAL);
	assert_int_equal(r->npoolds, 1);

	/* After a disconnect the same address may come back (with new size). */
	registry_poold_disconnect(r, p);
	assert_int_equal(p->state, POOLD_DEAD);
	assert_int_equal(reg(r, "h1:9401", 200 * MB, NULL, 0, &q, NULL), 0);
	assert_ptr_equal(p, q);
	assert_int_equal(q->chunks_total, 12);
	assert_int_equal(r->npoolds, 1);
	registry_free(r);
}

static void chunk_size_mismatch(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct held_chunk h = { 7, "vm1", 0, 32 * MB, 0 };
	struct poold_report rep = { "h1:1", 64 * MB, 32 * MB, &h, 1, 0, NULL };
	struct reg_result res;

	assert_int_equal(registry_poold_register(r, &rep, 0, &res, why, sizeof(why)),
			 -EINVAL);
	assert_string_equal(why, "poold h1:1 holds chunks of 32M, this coordinator uses 16M; restart rswap-coord with --chunk-size 32M or empty the poold");
	/* Without chunks, its chunk_size does not matter. */
	rep.nchunks = 0;
	assert_int_equal(registry_poold_register(r, &rep, 0, &res, why, sizeof(why)), 0);
	registry_reg_result_free(&res);
	registry_free(r);
}

/* A zone is kept as registered; a bad one refuses the registration. */
static void zones(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct poold_report rep = { .addr = "z:1", .capacity = 64 * MB,
				    .zone = "rack 3" };
	char long_zone[RSWAP_ZONE_MAX + 2];
	struct reg_result res;

	assert_int_equal(registry_poold_register(r, &rep, 0, &res, why, sizeof(why)),
			 -EINVAL);
	assert_string_equal(why, "poold z:1: zone must be 1 to 63 printable characters without spaces");
	memset(long_zone, 'a', sizeof(long_zone) - 1);
	long_zone[sizeof(long_zone) - 1] = '\0';
	rep.zone = long_zone;
	assert_int_equal(registry_poold_register(r, &rep, 0, &res, why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(r->npoolds, 0);
	long_zone[RSWAP_ZONE_MAX] = '\0';
	assert_int_equal(registry_poold_register(r, &rep, 0, &res, why, sizeof(why)), 0);
	assert_string_equal(res.poold->zone, long_zone);
	registry_reg_result_free(&res);
	/* Registering again without a zone clears it. */
	registry_poold_disconnect(r, registry_poold_find(r, "z:1"));
	rep.zone = NULL;
	assert_int_equal(registry_poold_register(r, &rep, 0, &res, why, sizeof(why)), 0);
	assert_string_equal(res.poold->zone, "");
	registry_reg_result_free(&res);
	registry_free(r);
}

static void rebuild_after_restart(void **state)
{
	struct registry *r = registry_new(CHUNK);
	/* vm1: 4 slots on two poolds; vm2: 1 slot. */
	struct held_chunk a[] = { { 11, "vm1", 0, 64 * MB, 0 }, { 12, "vm1", 2, 64 * MB, 0 },
				  { 13, "vm2", 0, 10 * MB, 0 } };
	struct held_chunk b[] = { { 21, "vm1", 1, 64 * MB, 0 }, { 22, "vm1", 3, 64 * MB, 0 } };
	struct poold *pa, *pb;
	struct client *c;

	assert_int_equal(reg(r, "a:1", 64 * MB, a, 3, &pa, NULL), 0);
	c = registry_client_find(r, "vm1");
	assert_non_null(c);
	assert_int_equal(c->nslots, 4);
	assert_int_equal(pa->chunks_used, 3);
	assert_int_equal(registry_client_missing(r, c, why, sizeof(why)), 2);
	assert_string_equal(why, "client vm1 is incomplete: slots 1,3 of 4 not reported yet; is a poold not registered yet?");
	assert_int_equal(registry_client_missing(r, registry_client_find(r, "vm2"), NULL, 0), 0);

	assert_int_equal(reg(r, "b:1", 64 * MB, b, 2, &pb, NULL), 0);
	assert_int_equal(registry_client_missing(r, c, why, sizeof(why)), 0);
	assert_ptr_equal(registry_slot(c, 1)->poold, pb);
	assert_int_equal(registry_slot(c, 3)->handle, 22);
	assert_int_equal(registry_slot(c, 2)->handle, 12);
	assert_int_equal(pb->chunks_used, 2);

	/* pb drops: records stay, the reason names it when a slot is missing. */
	registry_poold_disconnect(r, pb);
	assert_int_equal(registry_slot(c, 1)->state, SLOT_HELD);
	registry_slot_clear(c, 1);
	registry_client_missing(r, c, why, sizeof(why));
	assert_string_equal(why, "client vm1 is incomplete: slot 1 of 4 not reported yet; down: poold b:1");

	/* pb re-registers without slot 3 (its memory was lost): marked lost,
	 * kept in the map, no longer counted on pb nor in its handle index. */
	assert_int_equal(reg(r, "b:1", 64 * MB, b, 1, &pb, NULL), 0);
	assert_int_equal(registry_slot(c, 1)->handle, 21);
	assert_true(registry_slot(c, 3)->lost);
	assert_int_equal(registry_slot(c, 3)->handle, 22);
	assert_false(registry_handle_in_use(pb, 22));
	assert_int_equal(c->nlost, 1);
	assert_int_equal(pb->chunks_used, 1);
	assert_int_equal(registry_client_missing(r, c, NULL, 0), 0);
	/* Still lost after another registration; removal undoes the books. */
	registry_poold_disconnect(r, pb);
	assert_int_equal(reg(r, "b:1", 64 * MB, b, 1, &pb, NULL), 0);
	assert_true(registry_slot(c, 3)->lost);
	assert_int_equal(pb->chunks_used, 1);
	registry_client_remove(r, c);
	assert_int_equal(pb->chunks_used, 0);
	assert_int_equal(pa->chunks_used, 1);
	registry_free(r);
}

static void bad_reports_refused(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct held_chunk a[] = { { 11, "vm1", 0, 32 * MB, 0 } };
	struct held_chunk dup_slot[] = { { 1, "x", 0, CHUNK, 0 }, { 2, "x", 0, CHUNK, 0 } };
	struct held_chunk dup_handle[] = { { 1, "x", 0, 2 * CHUNK, 0 }, { 1, "x", 1, 2 * CHUNK, 0 } };
	struct held_chunk two_sizes[] = { { 1, "x", 0, 2 * CHUNK, 0 }, { 2, "x", 1, 3 * CHUNK, 0 } };
	struct held_chunk bad_slot[] = { { 1, "x", 2, 2 * CHUNK, 0 } };
	struct held_chunk bad_id[] = { { 1, "a b", 0, CHUNK, 0 } };
	struct held_chunk zero_size[] = { { 1, "x", 0, 0, 0 } };

	assert_int_equal(reg(r, "a:1", 64 * MB, a, 1, NULL, NULL), 0);
	assert_int_equal(reg(r, "b:1", 64 * MB, dup_slot, 2, NULL, NULL), -EINVAL);
	assert_non_null(strstr(why, "slot 0 twice"));
	assert_int_equal(reg(r, "b:1", 64 * MB, dup_handle, 2, NULL, NULL), -EINVAL);
	assert_non_null(strstr(why, "handle 1 twice"));
	assert_int_equal(reg(r, "b:1", 64 * MB, two_sizes, 2, NULL, NULL), -EINVAL);
	assert_int_equal(reg(r, "b:1", 64 * MB, bad_slot, 1, NULL, NULL), -EINVAL);
	assert_non_null(strstr(why, "no such slot"));
	assert_int_equal(reg(r, "b:1", 64 * MB, bad_id, 1, NULL, NULL), -EINVAL);
	assert_int_equal(reg(r, "b:1", 64 * MB, zero_size, 1, NULL, NULL), -EINVAL);
	/* Refused means nothing changed. */
	assert_null(registry_poold_find(r, "b:1"));
	assert_int_equal(r->nclients, 1);
	registry_free(r);
}

/*
 * Two poolds report one slot (after a restart, one holds a move's target
 * or a copy whose free was lost; or an impostor came first): nobody is
 * refused and nothing is freed: the newer chunk is mapped, every other
 * copy kept (unresolved) until the client says which one it runs on.
 * A pool of another size: the newer pool stays, the older is freed.
 */
static void conflicts_keep_every_copy(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct held_chunk a[] = { { 11, "vm1", 0, 32 * MB, 0 } };
	/* Ages unknown on both sides: the first stays mapped. */
	struct held_chunk b[] = { { 99, "vm1", 0, 32 * MB, 0 }, { 98, "vm1", 1, 32 * MB, 0 } };
	/* 5 ms old: newer than a's (unknown) copy: mapped. */
	struct held_chunk c[] = { { 77, "vm1", 0, 32 * MB, 6 } };
	/* 1000 s old: older than c's. */
	struct held_chunk d[] = { { 66, "vm1", 0, 32 * MB, 1000001 } };
	/* A newer pool of another size under the same id replaces it. */
	struct held_chunk e[] = { { 55, "vm1", 2, 48 * MB, 2 } };
	/* An older one is freed. */
	struct held_chunk f[] = { { 44, "vm1", 0, 64 * MB, 900001 } };
	struct held_chunk g[] = { { 33, "vm1", 1, 48 * MB, 1 } };
	struct poold *pa, *pb, *pc;
	struct client *cl;
	struct copy old;
	size_t nfree;

	assert_int_equal(reg(r, "a:1", 64 * MB, a, 1, &pa, NULL), 0);
	cl = registry_client_find(r, "vm1");
	assert_int_equal(registry_slot(cl, 0)->born_ms, 0);

	assert_int_equal(reg(r, "b:1", 64 * MB, b, 2, &pb, &nfree), 0);
	assert_int_equal(nfree, 0);
	assert_int_equal(last.ndisplaced, 0);
	assert_ptr_equal(registry_slot(cl, 0)->poold, pa);
	assert_int_equal(registry_slot(cl, 1)->handle, 98);
	assert_int_equal(registry_unresolved(cl), 1);
	assert_non_null(registry_extra_find(cl, 0, 99));
	assert_int_equal(pb->chunks_used, 2);
	assert_true(registry_handle_in_use(pb, 99));

	assert_int_equal(reg(r, "c:1", 64 * MB, c, 1, &pc, &nfree), 0);
	assert_int_equal(nfree, 0);
	assert_int_equal(last.ndisplaced, 0);
	assert_ptr_equal(registry_slot(cl, 0)->poold, pc);
	assert_int_equal(registry_slot(cl, 0)->born_ms, now - 5);
	assert_int_equal(registry_unresolved(cl), 2);
	assert_non_null(registry_extra_find(cl, 0, 11));
	assert_int_equal(pa->chunks_used, 1);
	assert_true(registry_handle_in_use(pa, 11));
	assert_true(registry_handle_in_use(pc, 77));
	assert_int_equal(cl->nheld, 2);

	assert_int_equal(reg(r, "d:1", 64 * MB, d, 1, NULL, &nfree), 0);
	assert_int_equal(nfree, 0);
	assert_int_equal(last.ndisplaced, 0);
	assert_ptr_equal(registry_slot(cl, 0)->poold, pc);
	assert_int_equal(registry_unresolved(cl), 3);

	/* a registers again with the same copy: still one extra, not two. */
	registry_poold_disconnect(r, pa);
	assert_int_equal(reg(r, "a:1", 64 * MB, a, 1, &pa, &nfree), 0);
	assert_int_equal(registry_unresolved(cl), 3);
	assert_int_equal(pa->chunks_used, 1);

	/* The client runs on a's copy: it is switched in, c's comes out. */
	assert_int_equal(registry_slot_switch(cl, registry_extra_find(cl, 0, 11), &old), 0);
	assert_ptr_equal(old.poold, pc);
	assert_int_equal(old.handle, 77);
	assert_ptr_equal(registry_slot(cl, 0)->poold, pa);
	assert_int_equal(pc->chunks_used, 0);
	assert_false(registry_handle_in_use(pc, 77));
	assert_int_equal(pa->chunks_used, 1);
	assert_int_equal(registry_unresolved(cl), 2);
	registry_extra_del(cl, registry_extra_find(cl, 0, 99));
	assert_int_equal(pb->chunks_used, 1);
	assert_false(registry_handle_in_use(pb, 99));

	/* Busy: transient refusal, nothing changed. */
	cl->busy = true;
	assert_int_equal(reg(r, "e:1", 64 * MB, e, 1, NULL, NULL), -EBUSY);
	assert_non_null(strstr(why, "in flight; retry"));
	assert_null(registry_poold_find(r, "e:1"));
	cl->busy = false;

	/* The older pool goes: slots 0 (a) and 1 (b), and d's extra copy. */
	assert_int_equal(reg(r, "e:1", 64 * MB, e, 1, NULL, &nfree), 0);
	assert_int_equal(nfree, 0);
	assert_int_equal(last.ndisplaced, 3);
	cl = registry_client_find(r, "vm1");
	assert_int_equal(cl->size, 48 * MB);
	assert_int_equal(cl->nused, 1);
	assert_int_equal(cl->nextra, 0);
	assert_int_equal(registry_slot(cl, 2)->handle, 55);
	assert_int_equal(pa->chunks_used, 0);
	assert_int_equal(pb->chunks_used, 0);
	assert_int_equal(registry_poold_find(r, "d:1")->chunks_used, 0);

	assert_int_equal(reg(r, "f:1", 64 * MB, f, 1, NULL, &nfree), 0);
	assert_int_equal(nfree, 1);
	assert_int_equal(registry_client_find(r, "vm1")->size, 48 * MB);
	/* Same size, another slot: simply adopted. */
	assert_int_equal(reg(r, "g:1", 64 * MB, g, 1, NULL, &nfree), 0);
	assert_int_equal(nfree, 0);
	assert_int_equal(cl->nheld, 2);
	registry_free(r);
}

/*
 * A poold that comes back as a new incarnation without a slot: lost.  A
 * move's target it no longer holds is forgotten.  A lost slot is never
 * counted, and a copy switched in over it frees nothing.
 */
static void incarnation_and_lost(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct held_chunk a[] = { { 11, "vm1", 0, 32 * MB, 0 }, { 12, "vm1", 1, 32 * MB, 0 } };
	struct poold_report rep = { .addr = "a:1", .capacity = 64 * MB,
				    .chunk_size = CHUNK, .chunks = a, .nchunks = 2,
				    .incarnation = 7 };
	struct poold *pa, *pb;
	struct client *cl;
	struct reg_result res;
	struct copy old;

	assert_int_equal(registry_poold_register(r, &rep, now, &res, why, sizeof(why)), 0);
	pa = res.poold;
	registry_reg_result_free(&res);
	assert_int_equal(pa->incarnation, 7);
	assert_int_equal(reg(r, "b:1", 64 * MB, NULL, 0, &pb, NULL), 0);
	cl = registry_client_find(r, "vm1");
	/* A move of slot 1 to b has its target allocated. */
	assert_int_equal(registry_extra_add(cl, pb, 1, 500, now, true), 0);
	assert_int_equal(pb->chunks_used, 1);
	assert_int_equal(registry_unresolved(cl), 0);

	/* a restarts as incarnation 8 holding only slot 1. */
	registry_poold_disconnect(r, pa);
	rep.chunks = &a[1];
	rep.nchunks = 1;
	rep.incarnation = 8;
	assert_int_equal(registry_poold_register(r, &rep, now, &res, why, sizeof(why)), 0);
	registry_reg_result_free(&res);
	assert_true(registry_slot(cl, 0)->lost);
	assert_false(registry_slot(cl, 1)->lost);
	assert_int_equal(pa->chunks_used, 1);
	assert_int_equal(cl->nlost, 1);
	assert_false(registry_slot_set_lost(cl, 5));

	/* b comes back without the target: forgotten. */
	registry_poold_disconnect(r, pb);
	assert_int_equal(reg(r, "b:1", 64 * MB, NULL, 0, &pb, NULL), 0);
	assert_int_equal(cl->nextra, 0);
	assert_int_equal(pb->chunks_used, 0);

	/* A copy switched in over a lost slot: nothing to free. */
	assert_int_equal(registry_extra_add(cl, pb, 0, 600, now, true), 0);
	assert_int_equal(registry_slot_switch(cl, registry_extra_find(cl, 0, 600), &old), 0);
	assert_null(old.poold);
	assert_false(registry_slot(cl, 0)->lost);
	assert_int_equal(cl->nlost, 0);
	assert_int_equal(pb->chunks_used, 1);
	assert_true(registry_handle_in_use(pb, 600));
	/* The client reports slot 1 lost. */
	assert_true(registry_slot_set_lost(cl, 1));
	assert_int_equal(pa->chunks_used, 0);
	assert_false(registry_handle_in_use(pa, 12));
	registry_free(r);
}

static void tombstones_and_released(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct held_chunk a[] = { { 11, "vm1", 0, 32 * MB, 0 }, { 12, "vm1", 1, 32 * MB, 0 },
				  { 13, "vm9", 0, 16 * MB, 0 } };
	struct poold *p;
	struct client *c;
	size_t nfree;

	assert_int_equal(reg(r, "a:1", 64 * MB, a, 3, &p, &nfree), 0);
	assert_int_equal(nfree, 0);
	registry_poold_disconnect(r, p);
	/* vm1 released while a was down; vm9 slot 0 was an allocation whose
	 * reply never came (handle unknown). */
	c = registry_client_find(r, "vm1");
	registry_tomb_add(p, "vm1", 0, false, 11);
	registry_tomb_add(p, "vm1", 1, false, 12);
	registry_client_remove(r, c);
	registry_released_add(r, "vm1");
	registry_client_remove(r, registry_client_find(r, "vm9"));
	registry_tomb_add(p, "vm9", 0, true, 0);
	assert_int_equal(p->chunks_used, 0);

	assert_int_equal(reg(r, "a:1", 64 * MB, a, 3, &p, &nfree), 0);
	assert_int_equal(nfree, 3);
	assert_null(registry_client_find(r, "vm1"));
	assert_null(registry_client_find(r, "vm9"));
	assert_int_equal(p->chunks_used, 0);
	assert_int_equal(p->ntombs, 0);

	/* A released id is forgotten once used again. */
	assert_true(registry_released_has(r, "vm1"));
	registry_released_forget(r, "vm1");
	assert_false(registry_released_has(r, "vm1"));
	registry_free(r);
}

static void liveness(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct poold *p;

	assert_int_equal(reg(r, "a:1", 64 * MB, NULL, 0, &p, NULL), 0);
	registry_poold_heartbeat(p, 10000, 0, 2);
	registry_update_liveness(r, 10000 + 2999, 1000);
	assert_int_equal(p->state, POOLD_ALIVE);
	assert_true(registry_poold_placeable(p));
	registry_update_liveness(r, 10000 + 3000, 1000);
	assert_int_equal(p->state, POOLD_SUSPECT);
	assert_false(registry_poold_placeable(p));
	registry_update_liveness(r, 10000 + 10000, 1000);
	assert_int_equal(p->state, POOLD_DEAD);
	registry_poold_heartbeat(p, 20001, 0, 2);
	assert_int_equal(p->state, POOLD_ALIVE);
	assert_int_equal(p->clients_connected, 2);
	p->draining = true;
	assert_false(registry_poold_placeable(p));
	p->draining = false;
	registry_poold_disconnect(r, p);
	registry_update_liveness(r, 20002, 1000);
	assert_int_equal(p->state, POOLD_DEAD);
	assert_false(registry_poold_placeable(p));
	assert_string_equal(registry_state_name(POOLD_SUSPECT), "suspect");
	registry_free(r);
}

static void tombstone_ring_is_bounded(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct poold *p;
	uint32_t i;

	assert_int_equal(reg(r, "a:1", 64 * MB, NULL, 0, &p, NULL), 0);
	for (i = 0; i < RSWAP_MAX_TOMBS + 10; i++)
		assert_int_equal(registry_tomb_add(p, "x", i, false, i), 0);
	assert_int_equal(p->ntombs, RSWAP_MAX_TOMBS);
	assert_int_equal(registry_tomb(p, 0)->slot, 10);
	for (i = 0; i < RSWAP_MAX_RELEASED + 5; i++) {
		char id[16];

		snprintf(id, sizeof(id), "c%u", i);
		registry_released_add(r, id);
	}
	assert_false(registry_released_has(r, "c0"));
	assert_true(registry_released_has(r, "c5"));
	registry_free(r);
}

static void handle_index(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct held_chunk h[] = { { 7, "vm1", 0, 2 * CHUNK, 0 }, { 8, "vm1", 1, 2 * CHUNK, 0 } };
	struct held_chunk dup_orphan[] = { { 7, "vm1", 0, 2 * CHUNK, 0 }, { 7, "gone", 0, CHUNK, 0 } };
	struct poold *p;
	struct client *c;
	uint32_t i;

	assert_int_equal(reg(r, "a:1", 1ull << 40, h, 2, &p, NULL), 0);
	assert_true(registry_handle_in_use(p, 7));
	assert_true(registry_handle_in_use(p, 8));
	assert_false(registry_handle_in_use(p, 9));
	c = registry_client_add(r, "big", 1000 * CHUNK);
	for (i = 0; i < 1000; i++) {
		registry_slot_assign(c, i, p);
		registry_slot_set_handle(c, i, 100000 + i * 7919ull, now);
	}
	assert_int_equal(p->handle_used, 1002);
	assert_false(p->handles_lost);
	for (i = 0; i < 1000; i += 2)
		registry_slot_clear(c, i);
	assert_false(registry_handle_in_use(p, 100000));
	assert_true(registry_handle_in_use(p, 100000 + 7919ull));
	registry_client_remove(r, c);
	assert_int_equal(p->handle_used, 2);
	assert_int_equal(p->chunks_used, 2);
	c = registry_client_find(r, "vm1");
	registry_slot_clear(c, 0);
	assert_false(registry_handle_in_use(p, 7));

	/* A handle reported twice is refused even if one copy is an orphan. */
	registry_poold_disconnect(r, p);
	registry_released_add(r, "gone");
	assert_int_equal(reg(r, "a:1", 1ull << 40, dup_orphan, 2, &p, NULL), -EINVAL);
	assert_non_null(strstr(why, "handle 7 twice"));
	registry_free(r);
}

static void registration_limits(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct held_chunk *h = calloc(RSWAP_MAX_CLIENTS_PER_POOLD + 1, sizeof(*h));
	char (*ids)[16] = calloc(RSWAP_MAX_CLIENTS_PER_POOLD + 1, sizeof(*ids));
	struct held_chunk three[] = { { 1, "x", 0, 4 * CHUNK, 0 }, { 2, "x", 1, 4 * CHUNK, 0 },
				      { 3, "x", 2, 4 * CHUNK, 0 } };
	uint32_t i;

	/* Held chunks must fit the declared capacity. */
	assert_int_equal(reg(r, "a:1", 2 * CHUNK + CHUNK / 2, three, 3, NULL, NULL), -EINVAL);
	assert_string_equal(why, "poold a:1 reports 3 held chunks of 16M, more than its capacity 40M holds");
	assert_int_equal(reg(r, "a:1", 3 * CHUNK, three, 3, NULL, NULL), 0);

	/* One chunk each of 4097 clients: too many ids for one poold. */
	for (i = 0; i <= RSWAP_MAX_CLIENTS_PER_POOLD; i++) {
		snprintf(ids[i], sizeof(ids[i]), "c%u", i);
		h[i] = (struct held_chunk){ 100 + i, ids[i], 0, CHUNK, 0 };
	}
	assert_int_equal(reg(r, "b:1", 1ull << 40, h, RSWAP_MAX_CLIENTS_PER_POOLD + 1,
			     NULL, NULL), -E2BIG);
	assert_non_null(strstr(why, "4097 client ids"));
	assert_null(registry_poold_find(r, "b:1"));
	assert_int_equal(r->nclients, 1);
	/* At the limit it is fine, and every client is found by its id. */
	assert_int_equal(reg(r, "b:1", 1ull << 40, h, RSWAP_MAX_CLIENTS_PER_POOLD, NULL, NULL), 0);
	assert_int_equal(r->nclients, RSWAP_MAX_CLIENTS_PER_POOLD + 1);
	for (i = 0; i < RSWAP_MAX_CLIENTS_PER_POOLD; i++)
		assert_non_null(registry_client_find(r, ids[i]));
	assert_null(registry_client_find(r, ids[RSWAP_MAX_CLIENTS_PER_POOLD]));
	free(h);
	free(ids);
	registry_free(r);
}

/* An adopted client holds what was reported, not the pool it claims. */
static void adopted_client_is_sparse(void **state)
{
	struct registry *r = registry_new(CHUNK);
	const uint64_t huge = (uint64_t)RSWAP_MAX_SLOTS * CHUNK;
	struct held_chunk one[] = { { 1, "big", RSWAP_MAX_SLOTS - 1, huge, 0 } };
	struct held_chunk many[64];
	struct poold *pa, *pb;
	struct client *c;
	uint32_t i;

	assert_int_equal(reg(r, "a:1", 1ull << 40, one, 1, &pa, NULL), 0);
	c = registry_client_find(r, "big");
	assert_int_equal(c->nslots, RSWAP_MAX_SLOTS);
	assert_true(c->cap <= 4);
	assert_int_equal(registry_slot(c, RSWAP_MAX_SLOTS - 1)->handle, 1);
	assert_null(registry_slot(c, 0));
	assert_null(registry_slot(c, RSWAP_MAX_SLOTS));
	assert_int_equal(registry_client_missing(r, c, NULL, 0), RSWAP_MAX_SLOTS - 1);

	/* Slots whose home buckets collide: probing and deletion keep all. */
	for (i = 0; i < 64; i++)
		many[i] = (struct held_chunk){ 1000 + i, "big", i * 256, huge, 0 };
	assert_int_equal(reg(r, "b:1", 1ull << 40, many, 64, &pb, NULL), 0);
	assert_true(c->cap <= 256);
	assert_int_equal(c->nused, 65);
	for (i = 0; i < 64; i++)
		assert_int_equal(registry_slot(c, i * 256)->handle, 1000 + i);
	for (i = 0; i < 64; i += 3)
		registry_slot_clear(c, i * 256);
	for (i = 0; i < 64; i++) {
		if (i % 3)
			assert_int_equal(registry_slot(c, i * 256)->handle, 1000 + i);
		else
			assert_null(registry_slot(c, i * 256));
	}
	assert_int_equal(registry_slot(c, RSWAP_MAX_SLOTS - 1)->handle, 1);
	assert_int_equal(pb->chunks_used, 64 - 22);
	{
		/* The map comes out in index order whatever the buckets. */
		Rswap__ChunkMap m;
		size_t k;

		assert_int_equal(report_chunk_map(r, c, &m), 0);
		assert_int_equal(m.n_slots, 64 - 22 + 1);
		for (k = 1; k < m.n_slots; k++)
			assert_true(m.slots[k]->index > m.slots[k - 1]->index);
		assert_int_equal(m.slots[m.n_slots - 1]->index, RSWAP_MAX_SLOTS - 1);
		report_chunk_map_free(&m);
	}

	/* b comes back without its first ten: found by handle, marked lost. */
	registry_poold_disconnect(r, pb);
	assert_int_equal(reg(r, "b:1", 1ull << 40, many + 10, 54, &pb, NULL), 0);
	for (i = 0; i < 64; i++) {
		if (i < 10 && i % 3 == 0)
			assert_null(registry_slot(c, i * 256));
		else if (i < 10)
			assert_true(registry_slot(c, i * 256)->lost);
		else
			assert_int_equal(registry_slot(c, i * 256)->handle, 1000 + i);
	}
	assert_int_equal(pb->chunks_used, 54);
	assert_int_equal(pb->handle_used, 54);
	assert_int_equal(c->nheld - c->nlost, 55);
	assert_int_equal(c->nlost, 6);
	registry_client_remove(r, c);
	assert_int_equal(pa->chunks_used, 0);
	assert_int_equal(pb->chunks_used, 0);
	assert_int_equal(pb->handle_used, 0);

	/* Slot 4 in bucket 0, slot 1 in bucket 1: the map still sorts. */
	{
		struct held_chunk two[] = { { 7, "two", 4, 8 * CHUNK, 0 }, { 8, "two", 1, 8 * CHUNK, 0 } };
		Rswap__ChunkMap m;

		assert_int_equal(reg(r, "c:1", 1ull << 40, two, 2, NULL, NULL), 0);
		c = registry_client_find(r, "two");
		assert_int_equal(c->cap, 4);
		assert_int_equal(c->slots[0].index, 4);
		assert_int_equal(report_chunk_map(r, c, &m), 0);
		assert_int_equal(m.n_slots, 2);
		assert_int_equal(m.slots[0]->index, 1);
		assert_int_equal(m.slots[1]->index, 4);
		report_chunk_map_free(&m);
	}
	registry_free(r);
}

/* The name indexes grow, and removing clients keeps the rest findable. */
static void many_clients_and_poolds(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct poold *p = NULL;
	struct client *c;
	char id[16];
	uint32_t i;

	for (i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "p%u:1", i);
		assert_int_equal(reg(r, id, 64 * MB, NULL, 0, &p, NULL), 0);
	}
	for (i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "p%u:1", i);
		assert_non_null(registry_poold_find(r, id));
	}
	for (i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "vm%u", i);
		c = registry_client_add(r, id, 2 * CHUNK);
		assert_non_null(c);
		assert_int_equal(c->cap, 2);
		registry_slot_assign(c, 1, p);
	}
	assert_int_equal(p->chunks_used, 5000);
	for (i = 0; i < 5000; i += 2) {
		snprintf(id, sizeof(id), "vm%u", i);
		registry_client_remove(r, registry_client_find(r, id));
	}
	assert_int_equal(r->nclients, 2500);
	assert_int_equal(p->chunks_used, 2500);
	for (i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "vm%u", i);
		if (i % 2)
			assert_non_null(registry_client_find(r, id));
		else
			assert_null(registry_client_find(r, id));
	}
	registry_free(r);
}

static int teardown(void **state)
{
	registry_reg_result_free(&last);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(validators),
		cmocka_unit_test(chunk_size_rules),
		cmocka_unit_test(register_and_double_register),
		cmocka_unit_test(chunk_size_mismatch),
		cmocka_unit_test(zones),
		cmocka_unit_test(rebuild_after_restart),
		cmocka_unit_test(bad_reports_refused),
		cmocka_unit_test(conflicts_keep_every_copy),
		cmocka_unit_test(incarnation_and_lost),
		cmocka_unit_test(tombstones_and_released),
		cmocka_unit_test(liveness),
		cmocka_unit_test(tombstone_ring_is_bounded),
		cmocka_unit_test(handle_index),
		cmocka_unit_test(registration_limits),
		cmocka_unit_test(adopted_client_is_sparse),
		cmocka_unit_test(many_clients_and_poolds),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
