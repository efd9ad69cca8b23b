// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "report.h"
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmp_slot_index(const void *a, const void *b)
{
	const Rswap__Slot *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

/* Per slot index, the replica extras of c linked into lists (see copies_of). */
struct copy_lists {
	uint32_t *head;		/* by slot index; UINT32_MAX: none */
	uint32_t *next;		/* by extra index */
};

static int copy_lists_build(const struct client *c, struct copy_lists *l)
{
	uint32_t i;

	l->head = malloc((size_t)c->nslots * sizeof(*l->head));
	l->next = malloc(((size_t)c->nextra + 1) * sizeof(*l->next));
	if (!l->head || !l->next) {
		free(l->head);
		free(l->next);
		return -ENOMEM;
	}
	memset(l->head, 0xff, (size_t)c->nslots * sizeof(*l->head));
	for (i = c->nextra; i--; ) {
		const struct copy *x = &c->extra[i];

		if (!x->replica || x->slot >= c->nslots)
			continue;
		l->next[i] = l->head[x->slot];
		l->head[x->slot] = i;
	}
	return 0;
}

static void copy_lists_free(struct copy_lists *l)
{
	free(l->head);
	free(l->next);
}

static void fill_copy(Rswap__Copy *o, const struct poold *p, uint64_t handle,
		      bool lost, uint64_t stale_since_ms, bool admin)
{
	rswap__copy__init(o);
	o->poold_addr = (char *)p->addr;
	o->handle = handle;
	o->lost = lost || p->state == POOLD_DEAD;
	o->stale = admin && stale_since_ms && !lost;
}

/*
 * Slot out's copies (replicated maps), from *used on in cblock/cptr: the
 * slot's own copy first.  In-sync copies counted into *insync.
 */
static void fill_copies(const struct client *c, const struct slot *s,
			const struct copy_lists *l, Rswap__Slot *out,
			Rswap__Copy *cblock, Rswap__Copy **cptr, size_t *used,
			size_t ncopies, bool admin, uint32_t *insync, uint32_t *stale)
{
	uint32_t x;

	out->copies = &cptr[*used];
	fill_copy(&cblock[*used], s->poold, s->handle, s->lost, s->stale_since_ms, admin);
	cptr[*used] = &cblock[*used];
	(*used)++;
	out->n_copies = 1;
	for (x = l->head[s->index]; x != UINT32_MAX && *used < ncopies; x = l->next[x]) {
		const struct copy *y = &c->extra[x];

		if (y->reserved)
			continue;	/* no copy yet */
		fill_copy(&cblock[*used], y->poold, y->handle, y->lost,
			  y->stale_since_ms, admin);
		cptr[*used] = &cblock[*used];
		(*used)++;
		out->n_copies++;
		*insync += registry_copy_in_sync(y->poold, y->lost, y->stale_since_ms);
		*stale += y->stale_since_ms && !y->lost;
	}
}

/*
 * The map, and for admins (ClientInfo) each slot's health, with the
 * degraded slots and stale copies counted.  A replicated map's copies
 * are two blocks, slots[0]->copies (pointers) and its [0] (copies), in
 * slot order.
 */
static int chunk_map(const struct registry *r, const struct client *c,
		     Rswap__ChunkMap *m, bool admin, uint32_t *degraded,
		     uint32_t *stale)
{
	struct copy_lists l = { 0 };
	Rswap__Copy *cblock = NULL, **cptr = NULL;
	size_t ncopies = 0, used = 0;
	Rswap__Slot *block;
	uint32_t b, i;

	rswap__chunk_map__init(m);
	m->chunk_size = r->chunk_size;
	m->size = c->size;
	m->epoch = c->epoch;
	m->replicas = c->replicas;
	if (!c->nheld)
		return 0;
	if (c->replicas > 1) {
		if (copy_lists_build(c, &l))
			return -ENOMEM;
		ncopies = c->nheld;
		for (i = 0; i < c->nextra; i++)
			ncopies += c->extra[i].replica;
		cblock = calloc(ncopies, sizeof(*cblock));
		cptr = calloc(ncopies, sizeof(*cptr));
	}
	m->slots = calloc(c->nheld, sizeof(*m->slots));
	block = calloc(c->nheld, sizeof(*block));
	if (!m->slots || !block || (c->replicas > 1 && (!cblock || !cptr))) {
		free(m->slots);
		free(block);
		free(cblock);
		free(cptr);
		copy_lists_free(&l);
		m->slots = NULL;
		return -ENOMEM;
	}
	for (b = 0; b < c->cap && m->n_slots < c->nheld; b++) {
		const struct slot *s = &c->slots[b];
		Rswap__Slot *out;

		if (s->state != SLOT_HELD)
			continue;
		out = &block[m->n_slots++];
		rswap__slot__init(out);
		out->index = s->index;
		out->poold_addr = (char *)s->poold->addr;
		out->handle = s->handle;
		out->lost = s->lost;
	}
	/* Buckets are in index order only when every slot has its own. */
	if (c->cap < c->nslots)
		qsort(block, m->n_slots, sizeof(*block), cmp_slot_index);
	/* slots[0] stays the block's start: report_chunk_map_free() frees it. */
	for (b = 0; b < m->n_slots; b++) {
		const struct slot *s = registry_slot(c, block[b].index);
		uint32_t insync = registry_copy_in_sync(s->poold, s->lost,
							s->stale_since_ms);
		uint32_t want = c->replicas ? c->replicas : 1;

		m->slots[b] = &block[b];
		*stale += s->stale_since_ms && !s->lost;
		if (c->replicas > 1)
			fill_copies(c, s, &l, &block[b], cblock, cptr, &used, ncopies,
				    admin, &insync, stale);
		if (!admin)
			continue;
		block[b].health = insync >= want ? RSWAP__SLOT_HEALTH__SLOT_HEALTHY :
				  insync ? RSWAP__SLOT_HEALTH__SLOT_DEGRADED :
				  RSWAP__SLOT_HEALTH__SLOT_LOST;
		*degraded += block[b].health == RSWAP__SLOT_HEALTH__SLOT_DEGRADED;
	}
	copy_lists_free(&l);
	return 0;
}

int report_chunk_map(const struct registry *r, const struct client *c,
		     Rswap__ChunkMap *m)
{
	uint32_t degraded = 0, stale = 0;

	return chunk_map(r, c, m, false, &degraded, &stale);
}

size_t report_chunk_map_bound(const struct client *c)
{
	/* Envelope, version, seq and the map's own fields. */
	size_t n = 64;
	uint32_t b;

	/* Per slot: tag+length of the Slot (<= 3), index (<= 6), address
	 * (tag, length <= 2, text), handle (<= 11), lost (2); an empty slot
	 * may get the longest address. */
	n += (size_t)(c->nslots - c->nused) * (3 + 6 + 3 + RSWAP_ADDR_MAX + 11 + 2);
	for (b = 0; b < c->cap; b++)
		if (c->slots[b].state != SLOT_EMPTY)
			n += 3 + 6 + 3 + strlen(c->slots[b].poold->addr) + 11 + 2;
	if (c->replicas <= 1)
		return n;
	/* Copies: tag+length (<= 3), address, handle, lost (2); the slot's
	 * own copy once more, then every replica. */
	n += (size_t)(c->nslots - c->nused) * (3 + 3 + RSWAP_ADDR_MAX + 11 + 2);
	for (b = 0; b < c->cap; b++)
		if (c->slots[b].state != SLOT_EMPTY)
			n += 3 + 3 + strlen(c->slots[b].poold->addr) + 11 + 2;
	for (b = 0; b < c->nextra; b++)
		if (c->extra[b].replica)
			n += 3 + 3 + strlen(c->extra[b].poold->addr) + 11 + 2;
	return n;
}

void report_chunk_map_free(Rswap__ChunkMap *m)
{
	if (m->n_slots && m->slots[0]->n_copies) {
		free(m->slots[0]->copies[0]);
		free(m->slots[0]->copies);
	}
	if (m->n_slots)
		free(m->slots[0]);
	free(m->slots);
	m->slots = NULL;
	m->n_slots = 0;
}

int report_client_info(const struct registry *r, const struct client *c,
		       Rswap__ClientInfo *ci, Rswap__ChunkMap *map)
{
	Rswap__Slot *block;
	uint32_t i, n = registry_unresolved(c);

	rswap__client_info__init(ci);
	if (chunk_map(r, c, map, true, &ci->degraded_chunks, &ci->stale_copies))
		return -ENOMEM;
	ci->replicas = c->replicas ? c->replicas : 1;
	ci->client_id = (char *)c->id;
	ci->map = map;
	ci->session = c->owner_name ? (char *)c->owner_name : "";
	ci->epoch = c->epoch;
	ci->lost_chunks = c->nlost;
	if (!n)
		return 0;
	ci->unresolved = calloc(n, sizeof(*ci->unresolved));
	block = calloc(n, sizeof(*block));
	if (!ci->unresolved || !block) {
		free(ci->unresolved);
		free(block);
		ci->unresolved = NULL;
		report_chunk_map_free(map);
		return -ENOMEM;
	}
	for (i = 0; i < c->nextra && ci->n_unresolved < n; i++) {
		Rswap__Slot *out = &block[ci->n_unresolved];

		if (c->extra[i].move || c->extra[i].replica)
			continue;
		rswap__slot__init(out);
		out->index = c->extra[i].slot;
		out->poold_addr = (char *)c->extra[i].poold->addr;
		out->handle = c->extra[i].handle;
		ci->unresolved[ci->n_unresolved++] = out;
	}
	return 0;
}

void report_client_info_free(Rswap__ClientInfo *ci)
{
	if (ci->n_unresolved)
		free(ci->unresolved[0]);
	free(ci->unresolved);
	ci->unresolved = NULL;
	ci->n_unresolved = 0;
	if (ci->map)
		report_chunk_map_free(ci->map);
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
		report_client_info_free(&a->cinfo[i]);
	free(a->pinfo);
	free(a->cinfo);
	free(a->maps);
	free(cs->poolds);
	free(cs->clients);
	free(a);
}

static int cmp_poold_addr(const void *a, const void *b)
{
	return strcmp((*(const struct poold *const *)a)->addr,
		      (*(const struct poold *const *)b)->addr);
}

static int cmp_client_id(const void *a, const void *b)
{
	return strcmp((*(const struct client *const *)a)->id,
		      (*(const struct client *const *)b)->id);
}

/* Poolds sorted by address and clients by id (the registry keeps neither). */
int report_cluster_state(const struct registry *r, uint64_t now_ms,
			 Rswap__ClusterState **out)
{
	struct cs_alloc *a = calloc(1, sizeof(*a));
	const struct poold **ps = NULL, *p;
	const struct client **cl = NULL, *c;
	Rswap__ClusterState *cs;
	size_t i, np = 0, nc = 0;

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
	ps = calloc(r->npoolds + 1, sizeof(*ps));
	cl = calloc(r->nclients + 1, sizeof(*cl));
	if (!a->pinfo || !cs->poolds || !a->cinfo || !a->maps || !cs->clients ||
	    !ps || !cl)
		goto out_nomem;
	for (p = r->poolds; p && np < r->npoolds; p = p->next)
		ps[np++] = p;
	qsort(ps, np, sizeof(*ps), cmp_poold_addr);
	for (c = r->clients; c && nc < r->nclients; c = c->next)
		cl[nc++] = c;
	qsort(cl, nc, sizeof(*cl), cmp_client_id);
	for (i = 0; i < np; i++) {
		Rswap__PooldInfo *pi = &a->pinfo[cs->n_poolds];
		uint64_t age;

		p = ps[i];
		age = now_ms > p->last_heartbeat_ms ? now_ms - p->last_heartbeat_ms : 0;
		rswap__poold_info__init(pi);
		pi->listen_addr = (char *)p->addr;
		pi->capacity = p->capacity;
		pi->chunks_total = p->chunks_total;
		pi->chunks_used = p->chunks_used;
		pi->state = (Rswap__PooldState)p->state;
		pi->draining = p->draining;
		pi->ms_since_heartbeat = age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
		pi->clients_connected = p->clients_connected;
		pi->incarnation = p->incarnation;
		pi->zone = (char *)p->zone;
		cs->poolds[cs->n_poolds++] = pi;
		cs->capacity_total += (uint64_t)p->chunks_total * r->chunk_size;
		cs->used_total += (uint64_t)p->chunks_used * r->chunk_size;
	}
	for (i = 0; i < nc; i++) {
		Rswap__ClientInfo *ci = &a->cinfo[cs->n_clients];

		c = cl[i];
		if (report_client_info(r, c, ci, &a->maps[cs->n_clients]))
			goto out_nomem;
		cs->clients[cs->n_clients++] = ci;
	}
	free(ps);
	free(cl);
	*out = cs;
	return 0;
out_nomem:
	free(ps);
	free(cl);
	report_cluster_state_free(cs);
	return -ENOMEM;
}
