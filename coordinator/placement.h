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
 * Create client id with every slot reserved on placeable poolds.  Returns
 * 0 with *out set, or -ENOSPC/-EINVAL/-ENOMEM with *why set and nothing
 * changed in the registry.
 */
int placement_reserve(struct registry *r, const char *id, uint64_t size,
		      struct client **out, char *why, size_t whylen);

#endif /* RSWAP_COORD_PLACEMENT_H */
