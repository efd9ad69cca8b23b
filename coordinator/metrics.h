/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * rswap-coord's /metrics page: the registry's state (poolds, capacity,
 * clients, chunks) read at scrape time, the engine's counters (stats.h)
 * and the event loop's connection counters.  One pass over the registry:
 * the cost is linear in poolds + clients' slots.
 */
#ifndef RSWAP_COORD_METRICS_H
#define RSWAP_COORD_METRICS_H

#include <stdint.h>

struct coord;
struct prom_out;

/* Kept by the event loop (main.c). */
struct coord_conn_stats {
	uint64_t accepted;
	uint64_t open;
	uint64_t closed_by_peer;	/* EOF or a socket error */
	uint64_t closed_by_coord;	/* the dispatcher dropped it */
	uint64_t hello_timeouts;	/* no whole first message in time */
	uint64_t refused_max_conns;	/* --max-conns were open */
	uint64_t refused_per_addr;	/* --max-new-per-addr from that address */
	uint64_t max_conns;		/* the --max-conns in force */
};

/* Live chunk moves (dispatch.c). */
struct coord_move_stats {
	uint64_t queued, running;	/* now */
	uint64_t done, failed, bytes;	/* since start */
	uint64_t rerep_done, rerep_failed;	/* re-replications, since start */
};

void coord_move_stats(const struct coord *c, struct coord_move_stats *s);

void coord_metrics_render(struct prom_out *o, struct coord *c,
			  const struct coord_conn_stats *conns);

#endif /* RSWAP_COORD_METRICS_H */
