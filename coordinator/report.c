// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "report.h"
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int report_chunk_map(const struct registry *r, const struct client *c,
		     Rswap__ChunkMap *m)
{
	Rswap__Slot *block;
	uint32_t i, n = 0;

	rswap__chunk_map__init(m);
	m->chunk_size = r->chunk_size;
	m->size = c->size;
	for (i = 0; i < c->nslots; i++)
		n += c->slots[i].state == SLOT_HELD;
	if (!n)
		return 0;
	m->slots = calloc(n, sizeof(*m->slots));
	block = calloc(n, sizeof(*block));
	if (!m->slots || !block) {
		free(m->slots);
		free(block);
		m->slots = NULL;
		return -ENOMEM;
	}
	for (i = 0; i < c->nslots; i++) {
		const struct slot *s = &c->slots[i];
		Rswap__Slot *out;

		if (s->state != SLOT_HELD)
			continue;
		out = &block[m->n_slots];
		rswap__slot__init(out);
		out->index = i;
		out->poold_addr = (char *)s->poold->addr;
		out->handle = s->handle;
		m->slots[m->n_slots++] = out;
	}
	return 0;
}

size_t report_chunk_map_bound(const struct client *c)
{
	/* Envelope, version, seq and the map's own fields. */
	size_t n = 64;
	uint32_t i;

	/* Per slot: tag+length of the Slot (<= 3), index (<= 6), address
	 * (tag, length <= 2, text), handle (<= 11). */
	for (i = 0; i < c->nslots; i++)
		n += 3 + 6 + 3 + (c->slots[i].poold ? strlen(c->slots[i].poold->addr) : 0) + 11;
	return n;
}

void report_chunk_map_free(Rswap__ChunkMap *m)
{
	if (m->n_slots)
		free(m->slots[0]);
	free(m->slots);
	m->slots = NULL;
	m->n_slots = 0;
}

/* Everything a ClusterState owns, allocated as a handful of blocks. */
struct cs_alloc {
	Rswap__ClusterState cs;
	Rswap__PooldInfo *pinfo;
	Rswap__ClientInfo *cinfo;
	Rswap__ChunkMap *maps;
};

void report_cluster_state_free(Rswap__ClusterState *cs)
{
	struct cs_alloc *a = (struct cs_alloc *)cs;
	size_t i;

	if (!a)
		return;
	for (i = 0; i < cs->n_clients; i++)
		report_chunk_map_free(&a->maps[i]);
	free(a->pinfo);
	free(a->cinfo);
	free(a->maps);
	free(cs->poolds);
	free(cs->clients);
	free(a);
}

int report_cluster_state(const struct registry *r, uint64_t now_ms,
			 Rswap__ClusterState **out)
{
	struct cs_alloc *a = calloc(1, sizeof(*a));
	const struct poold *p;
	const struct client *c;
	Rswap__ClusterState *cs;

	if (!a)
		return -ENOMEM;
	cs = &a->cs;
	rswap__cluster_state__init(cs);
	cs->chunk_size = r->chunk_size;
	a->pinfo = calloc(r->npoolds + 1, sizeof(*a->pinfo));
	cs->poolds = calloc(r->npoolds + 1, sizeof(*cs->poolds));
	a->cinfo = calloc(r->nclients + 1, sizeof(*a->cinfo));
	a->maps = calloc(r->nclients + 1, sizeof(*a->maps));
	cs->clients = calloc(r->nclients + 1, sizeof(*cs->clients));
	if (!a->pinfo || !cs->poolds || !a->cinfo || !a->maps || !cs->clients)
		goto out_nomem;
	for (p = r->poolds; p; p = p->next) {
		Rswap__PooldInfo *pi = &a->pinfo[cs->n_poolds];
		uint64_t age = now_ms > p->last_heartbeat_ms ?
			       now_ms - p->last_heartbeat_ms : 0;

		rswap__poold_info__init(pi);
		pi->listen_addr = (char *)p->addr;
		pi->capacity = p->capacity;
		pi->chunks_total = p->chunks_total;
		pi->chunks_used = p->chunks_used;
		pi->state = (Rswap__PooldState)p->state;
		pi->draining = p->draining;
		pi->ms_since_heartbeat = age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
		pi->clients_connected = p->clients_connected;
		cs->poolds[cs->n_poolds++] = pi;
		cs->capacity_total += (uint64_t)p->chunks_total * r->chunk_size;
		cs->used_total += (uint64_t)p->chunks_used * r->chunk_size;
	}
	for (c = r->clients; c; c = c->next) {
		Rswap__ClientInfo *ci = &a->cinfo[cs->n_clients];

		rswap__client_info__init(ci);
		if (report_chunk_map(r, c, &a->maps[cs->n_clients]))
			goto out_nomem;
		ci->client_id = (char *)c->id;
		ci->map = &a->maps[cs->n_clients];
		ci->session = c->owner_name ? (char *)c->owner_name : "";
		cs->clients[cs->n_clients++] = ci;
	}
	*out = cs;
	return 0;
out_nomem:
	report_cluster_state_free(cs);
	return -ENOMEM;
}
