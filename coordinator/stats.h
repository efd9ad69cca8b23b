/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * Event counters of the protocol engine, for /metrics.  Monotonic from
 * start; the state itself (poolds, clients, chunks) is read from the
 * registry when a scrape asks.  Labels come from small fixed sets (the
 * peer's role, an errno name): never from what a peer sent.
 */
#ifndef RSWAP_COORD_STATS_H
#define RSWAP_COORD_STATS_H

#include <stdint.h>

struct coord;

/* Peer roles as dispatch.c names them; index 0 is "no role yet". */
#define COORD_STATS_ROLES	4
/* Error codes sent in Error replies; the last bucket is "other". */
#define COORD_STATS_CODES	17

struct coord_stats {
	uint64_t errors_sent[COORD_STATS_ROLES][COORD_STATS_CODES];
};

extern const char *const coord_stats_role_names[COORD_STATS_ROLES];

/* An Error reply with errno `code` went to a peer of this role. */
void coord_stats_error_sent(struct coord_stats *s, const char *role, int code);
/* Label of code bucket i ("EINVAL", ..., "other"). */
const char *coord_stats_code_name(unsigned int i);
/* Index of a role name in coord_stats_role_names (0 if unknown). */
unsigned int coord_stats_role_index(const char *role);

/* The engine's counters (dispatch.c). */
const struct coord_stats *coord_get_stats(const struct coord *c);
/* Open peers by role, into n[COORD_STATS_ROLES] (dispatch.c). */
void coord_count_peers(const struct coord *c, uint64_t *n);

#endif /* RSWAP_COORD_STATS_H */
