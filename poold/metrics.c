// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * poold's /metrics page.  Pure: it reads struct poold and the RDMA side's
 * numbers (poold_rdma_stats()), so a host unit test renders it without an
 * RDMA device.  A scalar metric is one line in the table.
 */
#include "poold.h"
#include "rswap_prom.h"

#include <stddef.h>

struct poold_snap {
	uint64_t capacity, used, chunks, chunk_size, registered;
	struct poold_rdma_stats rs;
};

#define SNAP(f) offsetof(struct poold_snap, f)

static const struct prom_metric poold_table[] = {
	{ "rswap_poold_capacity_bytes", PROM_GAUGE, "Memory this poold may hand out (--capacity).", NULL, NULL, SNAP(capacity) },
	{ "rswap_poold_used_bytes", PROM_GAUGE, "Bytes in chunks held for clients.", NULL, NULL, SNAP(used) },
	{ "rswap_poold_chunks", PROM_GAUGE, "Chunks held for clients.", NULL, NULL, SNAP(chunks) },
	{ "rswap_poold_chunk_size_bytes", PROM_GAUGE, "Chunk size the coordinator named (0 before the first registration).", NULL, NULL, SNAP(chunk_size) },
	{ "rswap_poold_coordinator_registered", PROM_GAUGE, "1 while registered with rswap-coord.", NULL, NULL, SNAP(registered) },
	{ "rswap_poold_sessions", PROM_GAUGE, "Client sessions (one protection domain each).", NULL, NULL, SNAP(rs.sessions) },
	{ "rswap_poold_queue_pairs", PROM_GAUGE, "Client queue pairs.", NULL, NULL, SNAP(rs.queue_pairs) },
	{ "rswap_poold_registered_bytes", PROM_GAUGE, "Chunk bytes registered for RDMA in client sessions (a chunk counts once per session that maps it).", NULL, NULL, SNAP(rs.registered_bytes) },
};

/* Label per enum rswap_rej_reason; unnamed values count as "other". */
static const char *const reject_names[POOLD_REJ_SLOTS] = {
	[RSWAP_REJ_BAD_REQUEST] = "bad_request",
	[RSWAP_REJ_VERSION] = "version",
	[RSWAP_REJ_NO_CHUNKS] = "no_chunks",
	[RSWAP_REJ_TOO_MANY_QPS] = "too_many_qps",
	[RSWAP_REJ_NO_RESOURCES] = "no_resources",
	[RSWAP_REJ_SHUTTING_DOWN] = "shutting_down",
	[RSWAP_REJ_SESSION] = "session",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void render_rejects(struct prom_out *o, const struct poold *p)
{
	static const char name[] = "rswap_poold_connections_refused_total";
	uint64_t other = 0;
	unsigned int i;

	prom_family(o, name, PROM_COUNTER,
		    "RDMA connect requests refused, by the reason sent to the client.");
	for (i = 0; i < POOLD_REJ_SLOTS; i++) {
		struct prom_label l = { "reason", reject_names[i] };

		if (!reject_names[i]) {
			other += p->rejects[i];
			continue;
		}
		prom_sample(o, name, &l, 1, p->rejects[i]);
	}
	prom_sample(o, name, &(struct prom_label){ "reason", "other" }, 1, other);
}

void poold_metrics_render(struct prom_out *o, const struct poold *p,
			  const struct poold_rdma_stats *rs)
{
	struct poold_snap s = {
		.capacity = p->set.capacity,
		.used = p->used,
		.chunks = p->nchunks,
		.chunk_size = p->chunk_size,
		.registered = p->registered,
		.rs = *rs,
	};

	prom_write_table(o, poold_table, ARRAY_SIZE(poold_table), &s);
	render_rejects(o, p);
}
