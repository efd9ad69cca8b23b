/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * The registry as protobuf messages: a client's ChunkMap, ClientInfo and
 * the ClusterState for admins.  The messages point into the registry
 * (strings are not copied): send them before the registry changes, then
 * free them with the matching *_free().
 */
#ifndef RSWAP_COORD_REPORT_H
#define RSWAP_COORD_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include "rswap.pb-c.h"

struct registry;
struct client;

/* Held slots only, in index order.  0 or -ENOMEM. */
int report_chunk_map(const struct registry *r, const struct client *c,
		     Rswap__ChunkMap *m);
void report_chunk_map_free(Rswap__ChunkMap *m);
/* Upper bound of the framed ChunkMap reply once every slot is held. */
size_t report_chunk_map_bound(const struct client *c);

/*
 * A client's ClientInfo with its map in *map (epoch, lost slots, the
 * unresolved copies).  0 or -ENOMEM (nothing to free).
 */
int report_client_info(const struct registry *r, const struct client *c,
		       Rswap__ClientInfo *ci, Rswap__ChunkMap *map);
void report_client_info_free(Rswap__ClientInfo *ci);

int report_cluster_state(const struct registry *r, uint64_t now_ms,
			 Rswap__ClusterState **out);
void report_cluster_state_free(Rswap__ClusterState *cs);

#endif /* RSWAP_COORD_REPORT_H */
