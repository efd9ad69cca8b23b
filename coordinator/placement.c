// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "placement.h"
#include "registry.h"
#include "rswap_util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Is a's fill fraction lower than b's (ties by name)?  No division. */
static int less_loaded(const struct place_cand *a, uint32_t a_used,
		       const struct place_cand *b, uint32_t b_used)
{
	uint64_t l = (uint64_t)a_used * b->total;
	uint64_t r = (uint64_t)b_used * a->total;

	if (l != r)
		return l < r;
	return strcmp(a->name, b->name) < 0;
}

int placement_spread(const struct place_cand *cand, size_t ncand,
		     uint32_t need, size_t *out, uint64_t *free_total)
{
	uint32_t *used;
	uint64_t avail = 0;
	size_t i;
	uint32_t k;

	for (i = 0; i < ncand; i++)
		if (cand[i].used < cand[i].total)
			avail += cand[i].total - cand[i].used;
	*free_total = avail;
	if (avail < need)
		return -ENOSPC;
	if (!need)
		return 0;
	used = malloc(ncand * sizeof(*used));
	if (!used)
		return -ENOMEM;
	for (i = 0; i < ncand; i++)
		used[i] = cand[i].used;
	for (k = 0; k < need; k++) {
		size_t best = ncand;

		for (i = 0; i < ncand; i++) {
			if (used[i] >= cand[i].total)
				continue;
			if (best == ncand ||
			    less_loaded(&cand[i], used[i], &cand[best], used[best]))
				best = i;
		}
		/* avail >= need guarantees a candidate with room. */
		out[k] = best;
		used[best]++;
	}
	free(used);
	return 0;
}

static bool same_domain(const char *const *zone, size_t i, size_t j)
{
	return i == j || (zone && zone[i] && zone[j] && zone[i][0] &&
			  !strcmp(zone[i], zone[j]));
}

/* The first candidate of i's domain: the domain's name in dom[]. */
static size_t domain_of(const char *const *zone, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (same_domain(zone, i, j))
			return j;
	return i;
}

size_t placement_domains(const char *const *zone, size_t ncand)
{
	size_t i, n = 0;

	for (i = 0; i < ncand; i++)
		n += domain_of(zone, i) == i;
	return n;
}

int placement_spread_copies(const struct place_cand *cand,
			    const char *const *zone, size_t ncand,
			    uint32_t nslots, uint32_t replicas, size_t *out,
			    uint64_t *placed)
{
	uint32_t *used = NULL;
	uint64_t *room = NULL;
	size_t *dom = NULL, i;
	uint32_t k, j, t;
	int ret = 0;

	*placed = 0;
	if (!ncand)
		return nslots && replicas ? -ENOSPC : 0;
	used = calloc(ncand, sizeof(*used));
	room = calloc(ncand, sizeof(*room));
	dom = calloc(ncand, sizeof(*dom));
	if (!used || !room || !dom) {
		ret = -ENOMEM;
		goto out;
	}
	/* room[d]: free chunks of domain d, kept at its first candidate. */
	for (i = 0; i < ncand; i++) {
		used[i] = cand[i].used;
		dom[i] = domain_of(zone, i);
		if (cand[i].used < cand[i].total)
			room[dom[i]] += cand[i].total - cand[i].used;
	}
	for (k = 0; k < nslots; k++) {
		size_t *slot_out = &out[(size_t)k * replicas];

		for (j = 0; j < replicas; j++) {
			size_t best = ncand;

			for (i = 0; i < ncand; i++) {
				if (used[i] >= cand[i].total)
					continue;
				for (t = 0; t < j; t++)
					if (dom[slot_out[t]] == dom[i])
						break;
				if (t < j)
					continue;	/* the slot is in that domain */
				if (best == ncand || room[dom[i]] > room[dom[best]] ||
				    (room[dom[i]] == room[dom[best]] &&
				     (dom[i] == dom[best] || dom[i] < dom[best]) &&
				     less_loaded(&cand[i], used[i], &cand[best], used[best])))
					best = i;
			}
			if (best == ncand) {
				ret = -ENOSPC;
				goto out;
			}
			slot_out[j] = best;
			used[best]++;
			room[dom[best]]--;
			(*placed)++;
		}
	}
out:
	free(used);
	free(room);
	free(dom);
	return ret;
}

/* The poolds of r that may take chunks (cand, who, zone filled).  n. */
static size_t placeable(struct registry *r, struct place_cand *cand,
			struct poold **who, const char **zone)
{
	struct poold *p;
	size_t n = 0;

	for (p = r->poolds; p; p = p->next) {
		if (!registry_poold_placeable(p))
			continue;
		cand[n] = (struct place_cand){ p->addr, p->chunks_total, p->chunks_used };
		zone[n] = p->zone;
		who[n++] = p;
	}
	return n;
}

/* The client placement creates; NULL (why set) on ENOMEM. */
static struct client *client_new(struct registry *r, const char *id,
				 uint64_t size, uint32_t replicas, char *why,
				 size_t whylen)
{
	struct client *c = registry_client_add(r, id, size);

	if (!c) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	c->replicas = replicas;
	return c;
}

/* Reserve every copy of a replicated client.  As placement_reserve(). */
static int reserve_copies(struct registry *r, const char *id, uint64_t size,
			  uint32_t need, uint32_t replicas,
			  struct place_cand *cand, struct poold **who,
			  const char **zone, size_t n, struct client **out,
			  char *why, size_t whylen)
{
	size_t ndom = placement_domains(zone, n), zoned = 0, i, *pick;
	uint64_t placed, free_total = 0;
	struct client *c;
	uint32_t k, j;
	char a[16];
	int ret;

	for (i = 0; i < n; i++) {
		zoned += zone[i][0] != '\0';
		if (cand[i].used < cand[i].total)
			free_total += cand[i].total - cand[i].used;
	}
	if (ndom < replicas) {
		snprintf(why, whylen,
			 "replicas=%" PRIu32 " asked for, only %zu placement%s possible (%zu live poold%s, %zu zone%s%s)",
			 replicas, ndom, ndom == 1 ? "" : "s", n, n == 1 ? "" : "s",
			 ndom, ndom == 1 ? "" : "s",
			 zoned ? "; copies of a chunk go to distinct zones" : "");
		return -ENOSPC;
	}
	pick = calloc((size_t)need * replicas, sizeof(*pick));
	if (!pick) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	ret = placement_spread_copies(cand, zone, n, need, replicas, pick, &placed);
	if (ret == -ENOSPC) {
		snprintf(why, whylen,
			 "replicas=%" PRIu32 " needs %" PRIu64 " chunks of %s in %zu placements (poolds, zones) per chunk; only %" PRIu64
			 " could be placed (%" PRIu64 " free on %zu usable poold%s in %zu zone%s)",
			 replicas, (uint64_t)need * replicas,
			 rswap_fmt_size(r->chunk_size, a, sizeof(a)), (size_t)replicas,
			 placed, free_total, n, n == 1 ? "" : "s", ndom, ndom == 1 ? "" : "s");
		goto out;
	}
	if (ret) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	c = client_new(r, id, size, replicas, why, whylen);
	if (!c) {
		ret = -ENOMEM;
		goto out;
	}
	for (k = 0; k < need; k++) {
		registry_slot_assign(c, k, who[pick[(size_t)k * replicas]]);
		for (j = 1; j < replicas; j++) {
			if (registry_replica_reserve(c, who[pick[(size_t)k * replicas + j]], k))
				continue;
			registry_client_remove(r, c);
			snprintf(why, whylen, "out of memory");
			ret = -ENOMEM;
			goto out;
		}
	}
	*out = c;
out:
	free(pick);
	return ret;
}

int placement_reserve(struct registry *r, const char *id, uint64_t size,
		      uint32_t replicas, struct client **out, char *why,
		      size_t whylen)
{
	struct place_cand *cand = NULL;
	struct poold **who = NULL;
	const char **zone = NULL;
	size_t *pick = NULL, n = 0;
	uint64_t free_total;
	struct client *c;
	uint32_t need, i;
	char a[16], b[16];
	int ret;

	need = registry_slots_for(r, size);
	if (!need) {
		snprintf(why, whylen, "pool size %s needs more than %d chunks of %s",
			 rswap_fmt_size(size, a, sizeof(a)), RSWAP_MAX_SLOTS,
			 rswap_fmt_size(r->chunk_size, b, sizeof(b)));
		return -EINVAL;
	}
	cand = calloc(r->npoolds + 1, sizeof(*cand));
	who = calloc(r->npoolds + 1, sizeof(*who));
	zone = calloc(r->npoolds + 1, sizeof(*zone));
	pick = calloc(need, sizeof(*pick));
	if (!cand || !who || !zone || !pick) {
		snprintf(why, whylen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	n = placeable(r, cand, who, zone);
	if (replicas > 1) {
		ret = reserve_copies(r, id, size, need, replicas, cand, who, zone, n,
				     out, why, whylen);
		goto out;
	}
	ret = placement_spread(cand, n, need, pick, &free_total);
	if (ret == -ENOSPC) {
		snprintf(why, whylen,
			 "need %" PRIu32 " chunk%s of %s, cluster has %" PRIu64
			 " free on %zu usable poold%s",
			 need, need == 1 ? "" : "s", rswap_fmt_size(r->chunk_size, a, sizeof(a)),
			 free_total, n, n == 1 ? "" : "s");
		goto out;
	}
	if (ret) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	c = client_new(r, id, size, 1, why, whylen);
	if (!c) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < need; i++)
		registry_slot_assign(c, i, who[pick[i]]);
	*out = c;
out:
	free(cand);
	free(who);
	free(zone);
	free(pick);
	return ret;
}

/* Fill fraction of i after the moves planned so far, compared as a/b < c/d. */
static bool fuller(const struct rebal_poold *p, const uint32_t *used,
		   size_t a, size_t b)
{
	uint64_t l = (uint64_t)used[a] * p[b].total;
	uint64_t r = (uint64_t)used[b] * p[a].total;

	if (l != r)
		return l > r;
	return strcmp(p[a].name, p[b].name) < 0;
}

/* The most loaded poold with used > floor[], or n. */
static size_t pick_source(const struct rebal_poold *p, size_t n,
			  const uint32_t *used, const uint32_t *floor_)
{
	size_t i, best = n;

	for (i = 0; i < n; i++) {
		if (!p[i].live || used[i] <= floor_[i])
			continue;
		if (best == n || fuller(p, used, i, best))
			best = i;
	}
	return best;
}

/* The least loaded poold that may take chunks with used < ceil_[], or n. */
static size_t pick_target(const struct rebal_poold *p, size_t n,
			  const uint32_t *used, const uint32_t *ceil_)
{
	size_t i, best = n;

	for (i = 0; i < n; i++) {
		if (!p[i].live || p[i].draining || used[i] >= ceil_[i])
			continue;
		if (best == n || fuller(p, used, best, i))
			best = i;
	}
	return best;
}

int placement_rebalance(const struct rebal_poold *p, size_t n,
			struct rebal_move **moves, size_t *nmoves,
			char *why, size_t whylen)
{
	uint32_t *used = NULL, *lo = NULL, *hi = NULL;
	uint64_t movable = 0, room = 0, excess = 0, deficit = 0, k, want;
	struct rebal_move *mv = NULL;
	size_t i, s, t;
	int ret = 0;

	*moves = NULL;
	*nmoves = 0;
	for (i = 0; i < n; i++) {
		if (!p[i].live)
			continue;
		movable += p[i].used;
		if (!p[i].draining)
			room += p[i].total;
	}
	if (movable > room) {
		snprintf(why, whylen,
			 "%" PRIu64 " chunks would need a place but the poolds that take chunks have room for %" PRIu64,
			 movable, room);
		return -ENOSPC;
	}
	if (!movable)
		return 0;
	used = calloc(n, sizeof(*used));
	lo = calloc(n, sizeof(*lo));
	hi = calloc(n, sizeof(*hi));
	if (!used || !lo || !hi) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		used[i] = p[i].used;
		if (!p[i].live) {
			/* Left alone: its bounds are what it holds. */
			lo[i] = hi[i] = p[i].used;
			continue;
		}
		if (p[i].draining)
			continue;	/* share 0 */
		/* share = movable * total / room, exactly, in 64 bits:
		 * movable <= room < 2^32 * npoolds. */
		lo[i] = (uint32_t)(movable * p[i].total / room);
		hi[i] = lo[i] + (movable * p[i].total % room != 0);
	}
	for (i = 0; i < n; i++) {
		if (!p[i].live)
			continue;
		if (used[i] > hi[i])
			excess += used[i] - hi[i];
		if (used[i] < lo[i])
			deficit += lo[i] - used[i];
	}
	want = excess > deficit ? excess : deficit;
	if (!want)
		goto out;
	mv = calloc(want, sizeof(*mv));
	if (!mv) {
		ret = -ENOMEM;
		goto out;
	}
	for (k = 0; k < want; k++) {
		/*
		 * While someone is above its ceiling, it gives: to a poold
		 * below its floor if there is one (that move removes a unit
		 * of excess and one of deficit), else to one below its
		 * ceiling.  Afterwards poolds below their floor take from
		 * anyone above its floor.  Every move removes a unit of the
		 * larger of excess and deficit, so want moves are enough.
		 */
		s = pick_source(p, n, used, hi);
		if (s < n) {
			t = pick_target(p, n, used, lo);
			if (t == n)
				t = pick_target(p, n, used, hi);
		} else {
			t = pick_target(p, n, used, lo);
			s = pick_source(p, n, used, lo);
		}
		if (s == n || t == n)
			break;	/* cannot happen: sum(lo) <= movable <= sum(hi) */
		mv[k] = (struct rebal_move){ s, t };
		used[s]--;
		used[t]++;
	}
	*moves = mv;
	*nmoves = k;
	mv = NULL;
out:
	if (ret == -ENOMEM)
		snprintf(why, whylen, "out of memory");
	free(mv);
	free(used);
	free(lo);
	free(hi);
	return ret;
}
