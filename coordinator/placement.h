/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * Where a new client's chunks go.  placement_spread() is the pure rule;
 * placement_reserve() applies it to the registry.
 *
 * Rule: each next chunk goes to the candidate with the lowest used/total
 * fraction (counting chunks already given out in this round), ties broken
 * by name.  So poolds fill in proportion to their size, none holds more
 * than its share while another has room, and a pool may span every poold.
 */
#ifndef RSWAP_COORD_PLACEMENT_H
#define RSWAP_COORD_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct registry;
struct client;

struct place_cand {
	const char *name;
	uint32_t total;
	uint32_t used;
};

/*
 * Choose a candidate index for each of need chunks into out[need].
 * Returns 0, or -ENOSPC if the candidates have fewer than need free chunks
 * in all (then out is untouched and *free_total says how many there are).
 */
int placement_spread(const struct place_cand *cand, size_t ncand,
		     uint32_t need, size_t *out, uint64_t *free_total);

/*
 * Failure domains: candidates i and j share one when both carry the same
 * non-empty zone; a candidate without a zone is a domain of its own.
 * zone may be NULL (no candidate has a zone).  The number of domains is
 * the number of copies one slot can have.
 */
size_t placement_domains(const char *const *zone, size_t ncand);

/*
 * Place `replicas` copies of each of nslots slots: out[slot * replicas +
 * j] gets a candidate index.  The copies of one slot go to distinct
 * domains.  Each copy goes to the domain with the most free chunks left
 * among those the slot does not use yet (so a scarce domain is kept for
 * the slots that need it: this places every copy whenever any placement
 * can), and there to the candidate with the lowest used/total fraction,
 * ties by name.  0, -ENOSPC (*placed: copies placed before it failed;
 * out is then partly written), or -ENOMEM.
 */
int placement_spread_copies(const struct place_cand *cand,
			    const char *const *zone, size_t ncand,
			    uint32_t nslots, uint32_t replicas, size_t *out,
			    uint64_t *placed);

/*
 * Create client id with every slot reserved on placeable poolds, and for
 * replicas > 1 the further copies reserved as replicas (struct copy) on
 * other poolds in other zones.  Returns 0 with *out set, or
 * -ENOSPC/-EINVAL/-ENOMEM with *why set and nothing changed in the
 * registry.
 */
int placement_reserve(struct registry *r, const char *id, uint64_t size,
		      uint32_t replicas, struct client **out, char *why,
		      size_t whylen);

/*
 * Rebalancing: a poold that may take chunks (alive, connected, not
 * draining) should hold its share of the chunks that can move, share_i =
 * U * total_i / T, where U counts the chunks on every live poold (draining
 * or not) and T the totals of the poolds that may take chunks; a draining
 * poold's share is 0.  "Balanced" means floor(share) <= used <= ceil(share)
 * everywhere, i.e. within one chunk of even.  The plan has the fewest moves
 * that reach it: max(chunks above ceil, chunks missing below floor), each
 * move from the most to the least loaded.  Chunks on poolds that are down
 * cannot be copied and are left where they are.
 */
struct rebal_poold {
	const char *name;
	uint32_t total;
	uint32_t used;
	bool live;		/* alive and connected: its chunks can be read */
	bool draining;		/* must end empty */
};

struct rebal_move {
	size_t from, to;	/* indexes into the rebal_poold array */
};

/*
 * Plan into a malloc()ed *moves (NULL when *nmoves is 0).  0, -ENOSPC when
 * the poolds that may take chunks have too little room for the ones that
 * must leave draining poolds (nothing planned, *why says how much is
 * missing), or -ENOMEM.
 */
int placement_rebalance(const struct rebal_poold *p, size_t n,
			struct rebal_move **moves, size_t *nmoves,
			char *why, size_t whylen);

#endif /* RSWAP_COORD_PLACEMENT_H */
