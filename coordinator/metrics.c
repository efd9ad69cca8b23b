// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * The coordinator's metrics.  A scalar metric is one line in coord_table
 * (over struct coord_snap, filled in one pass), a per-poold one is one
 * line in poold_table (with a one-line getter).  Only what the registry
 * really knows is exported.
 */
#include "metrics.h"
#include "dispatch.h"
#include "registry.h"
#include "rswap_prom.h"
#include "stats.h"

#include <stddef.h>

struct coord_snap {
	uint64_t poolds_alive, poolds_suspect, poolds_dead, poolds_draining;
	uint64_t capacity, used, free_placeable, chunk_size, orphans;
	uint64_t clients, clients_incomplete, auth_failures;
	uint64_t chunks_healthy, chunks_unreachable, chunks_missing, chunks_allocating;
	uint64_t chunks_lost, copies_unresolved;
	uint64_t chunks_degraded, copies_stale;
	struct coord_move_stats moves;
	struct coord_conn_stats conns;
};

#define SNAP(f) offsetof(struct coord_snap, f)

static const struct prom_metric coord_table[] = {
	{ "rswap_coord_poolds", PROM_GAUGE, "Registered poolds by liveness (dead includes disconnected ones, whose chunk records are kept).", "state", "alive", SNAP(poolds_alive) },
	{ "rswap_coord_poolds", PROM_GAUGE, NULL, "state", "suspect", SNAP(poolds_suspect) },
	{ "rswap_coord_poolds", PROM_GAUGE, NULL, "state", "dead", SNAP(poolds_dead) },
	{ "rswap_coord_poolds_draining", PROM_GAUGE, "Poolds that keep their chunks but get no new ones.", NULL, NULL, SNAP(poolds_draining) },
	{ "rswap_coord_capacity_bytes", PROM_GAUGE, "Capacity of every registered poold, as reported at registration.", NULL, NULL, SNAP(capacity) },
	{ "rswap_coord_used_bytes", PROM_GAUGE, "Bytes in chunks held or being allocated, on every registered poold.", NULL, NULL, SNAP(used) },
	{ "rswap_coord_placeable_free_bytes", PROM_GAUGE, "Bytes in whole free chunks on poolds that may receive new chunks (alive, connected, not draining).", NULL, NULL, SNAP(free_placeable) },
	{ "rswap_coord_chunk_size_bytes", PROM_GAUGE, "Size of every chunk (--chunk-size).", NULL, NULL, SNAP(chunk_size) },
	{ "rswap_coord_clients", PROM_GAUGE, "Clients with a pool.", NULL, NULL, SNAP(clients) },
	{ "rswap_coord_clients_incomplete", PROM_GAUGE, "Clients with at least one slot that no poold holds (lost, or not re-registered yet).", NULL, NULL, SNAP(clients_incomplete) },
	{ "rswap_coord_chunks", PROM_GAUGE, "Clients' slots by health: healthy (held on an alive poold), unreachable (held on a suspect or dead poold), missing (no poold reported it), allocating (ChunkAlloc in flight), lost (its memory is gone).", "state", "healthy", SNAP(chunks_healthy) },
	{ "rswap_coord_chunks", PROM_GAUGE, NULL, "state", "unreachable", SNAP(chunks_unreachable) },
	{ "rswap_coord_chunks", PROM_GAUGE, NULL, "state", "missing", SNAP(chunks_missing) },
	{ "rswap_coord_chunks", PROM_GAUGE, NULL, "state", "allocating", SNAP(chunks_allocating) },
	{ "rswap_coord_chunks", PROM_GAUGE, NULL, "state", "lost", SNAP(chunks_lost) },
	{ "rswap_coord_degraded_chunks", PROM_GAUGE, "Slots of replicated clients with fewer in-sync copies than asked for, but at least one.", NULL, NULL, SNAP(chunks_degraded) },
	{ "rswap_coord_stale_copies", PROM_GAUGE, "Copies their clients report stale (they missed writes; resynced by the client or replaced).", NULL, NULL, SNAP(copies_stale) },
	{ "rswap_coord_rereplications_total", PROM_COUNTER, "Re-replications (a lost, dead or long-stale copy replaced) ended since start, by result.", "result", "done", SNAP(moves.rerep_done) },
	{ "rswap_coord_rereplications_total", PROM_COUNTER, NULL, "result", "failed", SNAP(moves.rerep_failed) },
	{ "rswap_coord_unresolved_copies", PROM_GAUGE, "Copies of a slot besides the mapped one, kept after a coordinator restart until the client reconnects.", NULL, NULL, SNAP(copies_unresolved) },
	{ "rswap_coord_moves", PROM_GAUGE, "Live chunk moves queued, or past the queue (allocating, copying, waiting for the client).", "state", "queued", SNAP(moves.queued) },
	{ "rswap_coord_moves", PROM_GAUGE, NULL, "state", "running", SNAP(moves.running) },
	{ "rswap_coord_moves_total", PROM_COUNTER, "Live chunk moves ended since start, by result.", "result", "done", SNAP(moves.done) },
	{ "rswap_coord_moves_total", PROM_COUNTER, NULL, "result", "failed", SNAP(moves.failed) },
	{ "rswap_coord_moved_bytes_total", PROM_COUNTER, "Bytes in chunks moved (committed moves times the chunk size).", NULL, NULL, SNAP(moves.bytes) },
	{ "rswap_coord_orphaned_chunks", PROM_GAUGE, "Chunks nobody owns that are freed when their poold registers again.", NULL, NULL, SNAP(orphans) },
	{ "rswap_coord_auth_failures_total", PROM_COUNTER, "Peers that failed the cluster key handshake (wrong key, no handshake, or acting beyond the role and id they proved).", NULL, NULL, SNAP(auth_failures) },
	{ "rswap_coord_connections_accepted_total", PROM_COUNTER, "TCP connections accepted.", NULL, NULL, SNAP(conns.accepted) },
	{ "rswap_coord_connections_open", PROM_GAUGE, "TCP connections open now.", NULL, NULL, SNAP(conns.open) },
	{ "rswap_coord_connections_max", PROM_GAUGE, "Open connections allowed (--max-conns, lowered to fit RLIMIT_NOFILE).", NULL, NULL, SNAP(conns.max_conns) },
	{ "rswap_coord_connections_refused_total", PROM_COUNTER, "TCP connections closed at accept: --max-conns were open, or --max-new-per-addr from that address had not sent a first message yet.", "reason", "max_conns", SNAP(conns.refused_max_conns) },
	{ "rswap_coord_connections_refused_total", PROM_COUNTER, NULL, "reason", "max_new_per_addr", SNAP(conns.refused_per_addr) },
	{ "rswap_coord_connections_closed_total", PROM_COUNTER, "TCP connections closed: by the peer (EOF, socket error), by the coordinator (protocol violation, unread replies) or for sending no first message in time.", "by", "peer", SNAP(conns.closed_by_peer) },
	{ "rswap_coord_connections_closed_total", PROM_COUNTER, NULL, "by", "coordinator", SNAP(conns.closed_by_coord) },
	{ "rswap_coord_connections_closed_total", PROM_COUNTER, NULL, "by", "hello_timeout", SNAP(conns.hello_timeouts) },
};

static uint64_t pd_capacity(const struct registry *r, const struct poold *p)
{
	return p->capacity;
}

static uint64_t pd_used(const struct registry *r, const struct poold *p)
{
	return (uint64_t)p->chunks_used * r->chunk_size;
}

static uint64_t pd_chunks(const struct registry *r, const struct poold *p)
{
	return p->chunks_used;
}

static uint64_t pd_chunks_total(const struct registry *r, const struct poold *p)
{
	return p->chunks_total;
}

static uint64_t pd_draining(const struct registry *r, const struct poold *p)
{
	return p->draining;
}

static uint64_t pd_clients(const struct registry *r, const struct poold *p)
{
	return p->clients_connected;
}

static uint64_t pd_orphans(const struct registry *r, const struct poold *p)
{
	return p->ntombs;
}

static const struct {
	const char *name, *help;
	uint64_t (*get)(const struct registry *r, const struct poold *p);
} poold_table[] = {
	{ "rswap_coord_poold_capacity_bytes", "The poold's capacity, as reported at registration.", pd_capacity },
	{ "rswap_coord_poold_used_bytes", "Bytes in chunks the poold holds or is allocating.", pd_used },
	{ "rswap_coord_poold_chunks", "Chunks the poold holds or is allocating.", pd_chunks },
	{ "rswap_coord_poold_chunks_capacity", "Whole chunks that fit the poold's capacity.", pd_chunks_total },
	{ "rswap_coord_poold_draining", "1 if the poold gets no new chunks.", pd_draining },
	{ "rswap_coord_poold_clients_connected", "RDMA client sessions, as the poold last reported.", pd_clients },
	{ "rswap_coord_poold_orphaned_chunks", "Chunks to free on the poold when it registers again.", pd_orphans },
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void snap_poolds(const struct registry *r, struct coord_snap *s)
{
	const struct poold *p;

	for (p = r->poolds; p; p = p->next) {
		s->poolds_alive += p->state == POOLD_ALIVE;
		s->poolds_suspect += p->state == POOLD_SUSPECT;
		s->poolds_dead += p->state != POOLD_ALIVE && p->state != POOLD_SUSPECT;
		s->poolds_draining += p->draining;
		s->capacity += p->capacity;
		s->used += (uint64_t)p->chunks_used * r->chunk_size;
		s->orphans += p->ntombs;
		if (registry_poold_placeable(p) && p->chunks_total > p->chunks_used)
			s->free_placeable += (uint64_t)(p->chunks_total - p->chunks_used) *
					     r->chunk_size;
	}
}

static void snap_clients(const struct registry *r, struct coord_snap *s)
{
	const struct client *c;
	uint32_t i;

	for (c = r->clients; c; c = c->next) {
		uint64_t missing = c->nslots;

		uint32_t degraded, stale;

		s->clients++;
		s->copies_unresolved += registry_unresolved(c);
		if (!registry_client_health(c, &degraded, &stale)) {
			s->chunks_degraded += degraded;
			s->copies_stale += stale;
		}
		/* Every bucket of the slot table; empty buckets are no slot. */
		for (i = 0; i < c->cap; i++) {
			const struct slot *sl = &c->slots[i];

			if (sl->state == SLOT_EMPTY)
				continue;
			missing--;
			if (sl->lost)
				s->chunks_lost++;
			else if (sl->state == SLOT_RESERVED)
				s->chunks_allocating++;
			else if (sl->poold->state == POOLD_ALIVE && sl->poold->connected)
				s->chunks_healthy++;
			else
				s->chunks_unreachable++;
		}
		/* A client being released empties its slots on purpose. */
		if (c->busy)
			continue;
		s->chunks_missing += missing;
		s->clients_incomplete += missing > 0;
	}
}

static void render_poolds(struct prom_out *o, const struct registry *r)
{
	static const enum poold_state states[] = { POOLD_ALIVE, POOLD_SUSPECT, POOLD_DEAD };
	const struct poold *p;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(poold_table); i++) {
		prom_family(o, poold_table[i].name, PROM_GAUGE, poold_table[i].help);
		for (p = r->poolds; p; p = p->next) {
			struct prom_label l = { "addr", p->addr };

			prom_sample(o, poold_table[i].name, &l, 1, poold_table[i].get(r, p));
		}
	}
	prom_family(o, "rswap_coord_poold_state", PROM_GAUGE,
		    "1 for the poold's liveness state, 0 for the others.");
	for (p = r->poolds; p; p = p->next) {
		for (i = 0; i < ARRAY_SIZE(states); i++) {
			struct prom_label l[2] = {
				{ "addr", p->addr },
				{ "state", registry_state_name(states[i]) },
			};

			prom_sample(o, "rswap_coord_poold_state", l, 2, p->state == states[i]);
		}
	}
}

static void render_peers(struct prom_out *o, const struct coord *c)
{
	uint64_t n[COORD_STATS_ROLES] = { 0 };
	unsigned int role;

	coord_count_peers(c, n);
	prom_family(o, "rswap_coord_peers", PROM_GAUGE,
		    "Open connections by the role their first message chose (peer: none yet).");
	for (role = 0; role < COORD_STATS_ROLES; role++) {
		struct prom_label l = { "role", coord_stats_role_names[role] };

		prom_sample(o, "rswap_coord_peers", &l, 1, n[role]);
	}
}

static void render_errors(struct prom_out *o, const struct coord_stats *st)
{
	unsigned int role, code;

	prom_family(o, "rswap_coord_errors_sent_total", PROM_COUNTER,
		    "Error replies sent (refused requests and protocol violations), by the peer's role and the error code.");
	for (role = 0; role < COORD_STATS_ROLES; role++) {
		for (code = 0; code < COORD_STATS_CODES; code++) {
			struct prom_label l[2] = {
				{ "role", coord_stats_role_names[role] },
				{ "reason", coord_stats_code_name(code) },
			};

			prom_sample(o, "rswap_coord_errors_sent_total", l, 2,
				    st->errors_sent[role][code]);
		}
	}
}

void coord_metrics_render(struct prom_out *o, struct coord *c,
			  const struct coord_conn_stats *conns)
{
	const struct registry *r = coord_registry(c);
	struct coord_snap s = { 0 };

	s.chunk_size = r->chunk_size;
	s.auth_failures = coord_auth_failures(c);
	s.conns = *conns;
	coord_move_stats(c, &s.moves);
	snap_poolds(r, &s);
	snap_clients(r, &s);
	prom_write_table(o, coord_table, ARRAY_SIZE(coord_table), &s);
	render_poolds(o, r);
	render_peers(o, c);
	render_errors(o, coord_get_stats(c));
}
