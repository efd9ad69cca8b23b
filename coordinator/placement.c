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

int placement_reserve(struct registry *r, const char *id, uint64_t size,
		      struct client **out, char *why, size_t whylen)
{
	struct place_cand *cand = NULL;
	struct poold **who = NULL, *p;
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
	pick = calloc(need, sizeof(*pick));
	if (!cand || !who || !pick) {
		snprintf(why, whylen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	for (p = r->poolds; p; p = p->next) {
		if (!registry_poold_placeable(p))
			continue;
		cand[n] = (struct place_cand){ p->addr, p->chunks_total, p->chunks_used };
		who[n++] = p;
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
	c = registry_client_add(r, id, size);
	if (!c) {
		snprintf(why, whylen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < need; i++)
		registry_slot_assign(c, i, who[pick[i]]);
	*out = c;
out:
	free(cand);
	free(who);
	free(pick);
	return ret;
}
