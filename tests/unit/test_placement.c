// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/* Placement: the pure spreading rule and its application to a registry. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "placement.h"
#include "registry.h"

#define MB (1ull << 20)
#define CHUNK (16 * MB)

static void count(const size_t *out, uint32_t n, unsigned int *per, size_t ncand)
{
	uint32_t i;

	memset(per, 0, ncand * sizeof(*per));
	for (i = 0; i < n; i++)
		per[out[i]]++;
}

static void spread_equal_poolds(void **state)
{
	struct place_cand c[3] = { { "a", 4, 0 }, { "b", 4, 0 }, { "c", 4, 0 } };
	size_t out[6];
	unsigned int per[3];
	uint64_t free_total;

	assert_int_equal(placement_spread(c, 3, 6, out, &free_total), 0);
	assert_int_equal(free_total, 12);
	count(out, 6, per, 3);
	assert_int_equal(per[0], 2);
	assert_int_equal(per[1], 2);
	assert_int_equal(per[2], 2);
	/* Ties go by name: a, b, c, a, b, c. */
	assert_int_equal(out[0], 0);
	assert_int_equal(out[1], 1);
	assert_int_equal(out[2], 2);
	assert_int_equal(out[3], 0);
}

static void shares_follow_capacity(void **state)
{
	/* 8, 4 and 2 chunks, half the cluster asked: each gets half its size. */
	struct place_cand c[3] = { { "big", 8, 0 }, { "mid", 4, 0 }, { "small", 2, 0 } };
	size_t out[7];
	unsigned int per[3];
	uint64_t free_total;

	assert_int_equal(placement_spread(c, 3, 7, out, &free_total), 0);
	count(out, 7, per, 3);
	assert_int_equal(per[0], 4);
	assert_int_equal(per[1], 2);
	assert_int_equal(per[2], 1);
}

static void existing_load_is_counted(void **state)
{
	/* a is already 3/4 full: new chunks go to the emptier poolds first. */
	struct place_cand c[2] = { { "a", 4, 3 }, { "b", 4, 0 } };
	size_t out[3];
	unsigned int per[2];
	uint64_t free_total;

	assert_int_equal(placement_spread(c, 2, 3, out, &free_total), 0);
	assert_int_equal(free_total, 5);
	count(out, 3, per, 2);
	assert_int_equal(per[0], 0);
	assert_int_equal(per[1], 3);
}

static void no_share_overrun_while_others_have_room(void **state)
{
	struct place_cand c[4] = { { "a", 10, 0 }, { "b", 3, 0 }, { "c", 7, 1 }, { "d", 1, 0 } };
	uint32_t used[4] = { 0, 0, 1, 0 };
	size_t out[15];
	uint64_t free_total;
	unsigned int k, i, j;

	assert_int_equal(placement_spread(c, 4, 15, out, &free_total), 0);
	/* After each step, no candidate's fraction exceeds another's by more
	 * than one chunk's worth of its own share. */
	for (k = 0; k < 15; k++) {
		used[out[k]]++;
		for (i = 0; i < 4; i++)
			for (j = 0; j < 4; j++) {
				if (used[j] >= c[j].total)
					continue;
				/* (used_i - 1)/total_i <= used_j/total_j */
				assert_true((uint64_t)(used[i] - 1) * c[j].total <=
					    (uint64_t)used[j] * c[i].total || used[i] == 0 ||
					    i == j);
			}
	}
	for (i = 0; i < 4; i++)
		assert_true(used[i] <= c[i].total);
}

static void enospc_leaves_output_alone(void **state)
{
	struct place_cand c[2] = { { "a", 2, 1 }, { "b", 3, 1 } };
	size_t out[4] = { 99, 99, 99, 99 };
	uint64_t free_total;

	assert_int_equal(placement_spread(c, 2, 4, out, &free_total), -ENOSPC);
	assert_int_equal(free_total, 3);
	assert_int_equal(out[0], 99);
	assert_int_equal(placement_spread(NULL, 0, 1, out, &free_total), -ENOSPC);
	assert_int_equal(free_total, 0);
}

static void full_and_zero_poolds_skipped(void **state)
{
	struct place_cand c[3] = { { "a", 0, 0 }, { "b", 2, 2 }, { "c", 5, 6 } };
	size_t out[1];
	uint64_t free_total;

	/* c is over its capacity (it shrank): counts as no room, not negative. */
	assert_int_equal(placement_spread(c, 3, 1, out, &free_total), -ENOSPC);
	assert_int_equal(free_total, 0);
}

/* ---- on a registry ----------------------------------------------------- */

static struct poold *add_zoned(struct registry *r, const char *addr,
			       uint64_t cap, const char *zone)
{
	struct poold_report rep = { .addr = addr, .capacity = cap, .zone = zone };
	struct reg_result res;
	struct poold *p;
	char why[256];

	assert_int_equal(registry_poold_register(r, &rep, 0, &res, why, sizeof(why)), 0);
	p = res.poold;
	registry_reg_result_free(&res);
	return p;
}

static struct poold *add_poold(struct registry *r, const char *addr, uint64_t cap)
{
	return add_zoned(r, addr, cap, NULL);
}

static void pool_bigger_than_any_poold(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct poold *a = add_poold(r, "h1:1", 64 * MB);
	struct poold *b = add_poold(r, "h2:1", 32 * MB);
	struct poold *c = add_poold(r, "h3:1", 48 * MB);
	struct client *cl;
	char why[256];

	assert_int_equal(placement_reserve(r, "vm1", 96 * MB, 1, &cl, why, sizeof(why)), 0);
	assert_int_equal(cl->nslots, 6);
	assert_int_equal(a->chunks_used, 3);
	assert_int_equal(b->chunks_used, 1);
	assert_int_equal(c->chunks_used, 2);
	assert_int_equal(registry_slot(cl, 0)->state, SLOT_RESERVED);
	assert_ptr_equal(registry_slot(cl, 0)->poold, a);
	registry_free(r);
}

static void enospc_allocates_nothing(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct poold *a = add_poold(r, "h1:1", 64 * MB);
	struct poold *b = add_poold(r, "h2:1", 32 * MB);
	struct client *cl = NULL;
	char why[256];

	assert_int_equal(placement_reserve(r, "vm1", 112 * MB, 1, &cl, why, sizeof(why)), -ENOSPC);
	assert_string_equal(why, "need 7 chunks of 16M, cluster has 6 free on 2 usable poolds");
	assert_null(cl);
	assert_null(registry_client_find(r, "vm1"));
	assert_int_equal(a->chunks_used, 0);
	assert_int_equal(b->chunks_used, 0);
	/* Exactly full works; then nothing is left. */
	assert_int_equal(placement_reserve(r, "vm1", 96 * MB, 1, &cl, why, sizeof(why)), 0);
	assert_int_equal(placement_reserve(r, "vm2", 1, 1, &cl, why, sizeof(why)), -ENOSPC);
	assert_string_equal(why, "need 1 chunk of 16M, cluster has 0 free on 2 usable poolds");
	registry_free(r);
}

static void draining_dead_suspect_excluded(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct poold *a = add_poold(r, "h1:1", 64 * MB);
	struct poold *b = add_poold(r, "h2:1", 64 * MB);
	struct poold *c = add_poold(r, "h3:1", 64 * MB);
	struct poold *d = add_poold(r, "h4:1", 64 * MB);
	struct client *cl;
	char why[256];

	b->draining = true;
	registry_poold_disconnect(r, c);
	d->state = POOLD_SUSPECT;
	assert_int_equal(placement_reserve(r, "vm1", 64 * MB, 1, &cl, why, sizeof(why)), 0);
	assert_int_equal(a->chunks_used, 4);
	assert_int_equal(b->chunks_used + c->chunks_used + d->chunks_used, 0);
	assert_int_equal(placement_reserve(r, "vm2", 16 * MB, 1, &cl, why, sizeof(why)), -ENOSPC);
	assert_non_null(strstr(why, "on 1 usable poold"));
	registry_free(r);
}

static void too_many_slots_rejected(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct client *cl;
	char why[256];

	add_poold(r, "h1:1", 1ull << 50);
	assert_int_equal(placement_reserve(r, "vm1", (uint64_t)(RSWAP_MAX_SLOTS + 1) * CHUNK,
					   1, &cl, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "more than"));
	assert_int_equal(placement_reserve(r, "vm1", (uint64_t)RSWAP_MAX_SLOTS * CHUNK,
					   1, &cl, why, sizeof(why)), 0);
	registry_free(r);
}

/* Every copy of every slot of cl: on distinct poolds, in distinct zones. */
static void check_copies(const struct client *cl, bool zones)
{
	uint32_t i, k, n;

	for (i = 0; i < cl->nslots; i++) {
		const struct poold *on[RSWAP_MAX_REPLICAS];

		on[0] = registry_slot(cl, i)->poold;
		n = 1;
		for (k = 0; k < cl->nextra; k++) {
			if (cl->extra[k].slot != i)
				continue;
			assert_true(cl->extra[k].replica);
			assert_true(n < RSWAP_MAX_REPLICAS);
			on[n++] = cl->extra[k].poold;
		}
		assert_int_equal(n, cl->replicas);
		for (k = 1; k < n; k++) {
			assert_ptr_not_equal(on[k], on[0]);
			if (zones && on[k]->zone[0])
				assert_string_not_equal(on[k]->zone, on[0]->zone);
			if (k == 2) {
				assert_ptr_not_equal(on[2], on[1]);
				if (zones && on[2]->zone[0])
					assert_string_not_equal(on[2]->zone, on[1]->zone);
			}
		}
	}
}

static void replicas_on_distinct_poolds(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct poold *a = add_poold(r, "h1:1", 64 * MB);
	struct poold *b = add_poold(r, "h2:1", 64 * MB);
	struct poold *c = add_poold(r, "h3:1", 32 * MB);
	struct client *cl;
	char why[256];

	/* 5 slots x 2 copies = 10 of 10 chunks: only a careful spread fits. */
	assert_int_equal(placement_reserve(r, "vm1", 80 * MB, 2, &cl, why, sizeof(why)), 0);
	assert_int_equal(cl->replicas, 2);
	assert_int_equal(cl->nextra, 5);
	assert_int_equal(registry_unresolved(cl), 0);
	check_copies(cl, false);
	assert_int_equal(a->chunks_used + b->chunks_used + c->chunks_used, 10);
	assert_true(cl->extra[0].reserved);
	registry_free(r);
}

static void replicas_in_distinct_zones(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct poold *a1 = add_zoned(r, "a1:1", 64 * MB, "rackA");
	struct poold *a2 = add_zoned(r, "a2:1", 64 * MB, "rackA");
	struct poold *b1 = add_zoned(r, "b1:1", 64 * MB, "rackB");
	struct client *cl = NULL;
	char why[256];

	/* Two zones: 3 copies impossible although there are 3 poolds. */
	assert_int_equal(placement_reserve(r, "vm1", 16 * MB, 3, &cl, why, sizeof(why)),
			 -ENOSPC);
	assert_string_equal(why, "replicas=3 asked for, only 2 placements possible (3 live poolds, 2 zones; copies of a chunk go to distinct zones)");
	assert_null(registry_client_find(r, "vm1"));
	/* 2 copies: one in each rack; rack B (4 chunks) bounds it at 4 slots. */
	assert_int_equal(placement_reserve(r, "vm1", 80 * MB, 2, &cl, why, sizeof(why)),
			 -ENOSPC);
	assert_non_null(strstr(why, "only 9 could be placed"));
	assert_int_equal(a1->chunks_used + a2->chunks_used + b1->chunks_used, 0);
	assert_null(registry_client_find(r, "vm1"));
	assert_int_equal(placement_reserve(r, "vm1", 64 * MB, 2, &cl, why, sizeof(why)), 0);
	check_copies(cl, true);
	assert_int_equal(b1->chunks_used, 4);
	assert_int_equal(a1->chunks_used, 2);
	assert_int_equal(a2->chunks_used, 2);
	/* A poold without a zone is a zone of its own. */
	add_zoned(r, "c1:1", 64 * MB, NULL);
	/* ... but rack B is full: 3 zones, 2 with room. */
	assert_int_equal(placement_reserve(r, "vm2", 16 * MB, 3, &cl, why, sizeof(why)),
			 -ENOSPC);
	assert_string_equal(why, "replicas=3 needs 3 chunks of 16M in 3 placements (poolds, zones) per chunk; only 2 could be placed (8 free on 4 usable poolds in 3 zones)");
	registry_client_remove(r, registry_client_find(r, "vm1"));
	assert_int_equal(placement_reserve(r, "vm2", 16 * MB, 3, &cl, why, sizeof(why)), 0);
	check_copies(cl, true);
	registry_client_remove(r, cl);
	assert_int_equal(a1->chunks_used + a2->chunks_used + b1->chunks_used, 0);
	registry_free(r);
}

static void replicas_need_live_poolds(void **state)
{
	struct registry *r = registry_new(CHUNK);
	struct poold *b;
	struct client *cl = NULL;
	char why[256];

	add_poold(r, "h1:1", 64 * MB);
	b = add_poold(r, "h2:1", 64 * MB);
	b->draining = true;
	assert_int_equal(placement_reserve(r, "vm1", 16 * MB, 2, &cl, why, sizeof(why)),
			 -ENOSPC);
	assert_string_equal(why, "replicas=2 asked for, only 1 placement possible (1 live poold, 1 zone)");
	assert_int_equal(b->chunks_used, 0);
	registry_free(r);
}

/* The pure rule: domains, and the scarce one kept for who needs it. */
static void spread_copies_rule(void **state)
{
	/* x and y share zone z; w has none.  Domains: {x,y}, {w}. */
	struct place_cand c[3] = { { "w", 2, 0 }, { "x", 4, 0 }, { "y", 4, 0 } };
	const char *zone[3] = { "", "z", "z" };
	size_t out[6];
	uint64_t placed;

	(void)state;
	assert_int_equal(placement_domains(zone, 3), 2);
	assert_int_equal(placement_domains(NULL, 3), 3);
	assert_int_equal(placement_spread_copies(c, zone, 3, 2, 2, out, &placed), 0);
	assert_int_equal(placed, 4);
	assert_true(out[0] != 0 || out[1] != 0);
	assert_true((out[0] == 0) != (out[1] == 0));
	assert_true((out[2] == 0) != (out[3] == 0));
	/* Third slot: w is full. */
	assert_int_equal(placement_spread_copies(c, zone, 3, 3, 2, out, &placed), -ENOSPC);
	assert_int_equal(placed, 5);
}

/* Apply a plan; check it reaches floor(share) <= used <= ceil(share). */
static void apply_and_check(struct rebal_poold *p, size_t n,
			    const struct rebal_move *mv, size_t nmv)
{
	uint64_t movable = 0, room = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!p[i].live)
			continue;
		movable += p[i].used;
		if (!p[i].draining)
			room += p[i].total;
	}
	for (i = 0; i < nmv; i++) {
		assert_true(mv[i].from < n && mv[i].to < n);
		assert_true(p[mv[i].from].live && p[mv[i].to].live);
		assert_false(p[mv[i].to].draining);
		assert_true(p[mv[i].from].used > 0);
		p[mv[i].from].used--;
		p[mv[i].to].used++;
		assert_true(p[mv[i].to].used <= p[mv[i].to].total);
	}
	for (i = 0; i < n; i++) {
		uint64_t num = movable * p[i].total;

		if (!p[i].live)
			continue;
		if (p[i].draining) {
			assert_int_equal(p[i].used, 0);
			continue;
		}
		assert_true((uint64_t)p[i].used * room >= num - num % room);
		assert_true((uint64_t)p[i].used * room <= num + (room - num % room) % room);
	}
}

static void rebalance_grow(void **state)
{
	/* Two full halves, a third poold added: 2 moves make it 3/3/2. */
	struct rebal_poold p[3] = { { "a", 8, 4, true, false },
				    { "b", 8, 4, true, false },
				    { "c", 8, 0, true, false } };
	struct rebal_move *mv;
	size_t nmv;
	char why[128];

	assert_int_equal(placement_rebalance(p, 3, &mv, &nmv, why, sizeof(why)), 0);
	assert_int_equal(nmv, 2);
	assert_int_equal(mv[0].to, 2);
	assert_int_equal(mv[1].to, 2);
	apply_and_check(p, 3, mv, nmv);
	assert_int_equal(p[2].used, 2);
	free(mv);
}

static void rebalance_drain(void **state)
{
	struct rebal_poold p[3] = { { "a", 4, 3, true, true },
				    { "b", 4, 1, true, false },
				    { "c", 4, 1, true, false } };
	struct rebal_move *mv;
	size_t nmv, i;
	char why[128];

	assert_int_equal(placement_rebalance(p, 3, &mv, &nmv, why, sizeof(why)), 0);
	assert_int_equal(nmv, 3);
	for (i = 0; i < nmv; i++)
		assert_int_equal(mv[i].from, 0);
	apply_and_check(p, 3, mv, nmv);
	free(mv);
}

static void rebalance_balanced_is_empty(void **state)
{
	/* 5 chunks over 2 equal poolds: 3/2 is within one chunk of even. */
	struct rebal_poold p[2] = { { "a", 4, 3, true, false },
				    { "b", 4, 2, true, false } };
	struct rebal_move *mv;
	size_t nmv;
	char why[128];

	assert_int_equal(placement_rebalance(p, 2, &mv, &nmv, why, sizeof(why)), 0);
	assert_int_equal(nmv, 0);
	assert_null(mv);
}

static void rebalance_drain_without_room(void **state)
{
	struct rebal_poold p[2] = { { "a", 4, 3, true, true },
				    { "b", 4, 2, true, false } };
	struct rebal_move *mv;
	size_t nmv;
	char why[128] = "";

	assert_int_equal(placement_rebalance(p, 2, &mv, &nmv, why, sizeof(why)), -ENOSPC);
	assert_int_equal(nmv, 0);
	assert_non_null(strstr(why, "room for 4"));
}

static void rebalance_leaves_dead_poolds(void **state)
{
	struct rebal_poold p[3] = { { "a", 4, 4, false, false },
				    { "b", 4, 4, true, false },
				    { "c", 4, 0, true, false } };
	struct rebal_move *mv;
	size_t nmv;
	char why[128];

	assert_int_equal(placement_rebalance(p, 3, &mv, &nmv, why, sizeof(why)), 0);
	assert_int_equal(nmv, 2);
	apply_and_check(p, 3, mv, nmv);
	assert_int_equal(p[0].used, 4);
	free(mv);
}

/* Random clusters: the plan always balances, with the fewest moves. */
static void rebalance_random(void **state)
{
	unsigned int seed = 12345, round;

	for (round = 0; round < 2000; round++) {
		struct rebal_poold p[6];
		uint64_t movable = 0, room = 0, excess = 0, deficit = 0;
		struct rebal_move *mv;
		size_t n = 1 + rand_r(&seed) % 6, i, nmv;
		char why[128];
		int ret;

		for (i = 0; i < n; i++) {
			p[i].name = (const char *[]){ "a", "b", "c", "d", "e", "f" }[i];
			p[i].total = 1 + rand_r(&seed) % 20;
			p[i].used = rand_r(&seed) % (p[i].total + 1);
			p[i].live = rand_r(&seed) % 8 != 0;
			p[i].draining = rand_r(&seed) % 5 == 0;
			if (p[i].live) {
				movable += p[i].used;
				room += p[i].draining ? 0 : p[i].total;
			}
		}
		ret = placement_rebalance(p, n, &mv, &nmv, why, sizeof(why));
		if (movable > room) {
			assert_int_equal(ret, -ENOSPC);
			continue;
		}
		assert_int_equal(ret, 0);
		for (i = 0; i < n && movable; i++) {
			uint64_t num = movable * p[i].total, lo, hi;

			if (!p[i].live)
				continue;
			lo = p[i].draining ? 0 : num / room;
			hi = p[i].draining ? 0 : lo + (num % room != 0);
			excess += p[i].used > hi ? p[i].used - hi : 0;
			deficit += p[i].used < lo ? lo - p[i].used : 0;
		}
		assert_int_equal(nmv, excess > deficit ? excess : deficit);
		apply_and_check(p, n, mv, nmv);
		free(mv);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(spread_equal_poolds),
		cmocka_unit_test(shares_follow_capacity),
		cmocka_unit_test(existing_load_is_counted),
		cmocka_unit_test(no_share_overrun_while_others_have_room),
		cmocka_unit_test(enospc_leaves_output_alone),
		cmocka_unit_test(full_and_zero_poolds_skipped),
		cmocka_unit_test(pool_bigger_than_any_poold),
		cmocka_unit_test(enospc_allocates_nothing),
		cmocka_unit_test(draining_dead_suspect_excluded),
		cmocka_unit_test(too_many_slots_rejected),
		cmocka_unit_test(rebalance_grow),
		cmocka_unit_test(rebalance_drain),
		cmocka_unit_test(rebalance_balanced_is_empty),
		cmocka_unit_test(rebalance_drain_without_room),
		cmocka_unit_test(rebalance_leaves_dead_poolds),
		cmocka_unit_test(rebalance_random),
		cmocka_unit_test(replicas_on_distinct_poolds),
		cmocka_unit_test(replicas_in_distinct_zones),
		cmocka_unit_test(replicas_need_live_poolds),
		cmocka_unit_test(spread_copies_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
