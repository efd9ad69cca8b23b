// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "registry.h"
#include "rswap_util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A held slot on a poold, found by its handle. */
struct handle_ent {
	uint64_t handle;
	struct client *client;		/* NULL: a free bucket */
	uint32_t slot;
};

static size_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (size_t)(h ^ h >> 29);
}

/* Fibonacci hashing; cap is a power of two. */
static uint32_t handle_bucket(uint64_t h, uint32_t cap)
{
	return (uint32_t)((h * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t c = 1;

	while (c < n)
		c *= 2;
	return c;
}

struct registry *registry_new(uint64_t chunk_size)
{
	struct registry *r;

	if (chunk_size < RSWAP_MIN_CHUNK || (chunk_size & (chunk_size - 1)))
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->released = calloc(RSWAP_MAX_RELEASED, sizeof(*r->released));
	r->poold_buckets = r->client_buckets = 64;
	r->poold_index = calloc(r->poold_buckets, sizeof(*r->poold_index));
	r->client_index = calloc(r->client_buckets, sizeof(*r->client_index));
	if (!r->released || !r->poold_index || !r->client_index) {
		registry_free(r);
		return NULL;
	}
	r->chunk_size = chunk_size;
	r->chunk_shift = (unsigned int)__builtin_ctzll(chunk_size);
	return r;
}

/* ---- name indexes (hash chains) ---------------------------------------- */

/* Room for n entries at a load of at most one per bucket.  0 or -ENOMEM. */
static int poold_index_reserve(struct registry *r, size_t n)
{
	struct poold **tab, *p;
	size_t nb = r->poold_buckets;

	if (n <= nb)
		return 0;
	while (nb < n)
		nb *= 2;
	tab = calloc(nb, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (p = r->poolds; p; p = p->next) {
		size_t b = name_hash(p->addr) & (nb - 1);

		p->hnext = tab[b];
		tab[b] = p;
	}
	free(r->poold_index);
	r->poold_index = tab;
	r->poold_buckets = nb;
	return 0;
}

static int client_index_reserve(struct registry *r, size_t n)
{
	struct client **tab, *c;
	size_t nb = r->client_buckets;

	if (n <= nb)
		return 0;
	while (nb < n)
		nb *= 2;
	tab = calloc(nb, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (c = r->clients; c; c = c->next) {
		size_t b = name_hash(c->id) & (nb - 1);

		c->hnext = tab[b];
		tab[b] = c;
	}
	free(r->client_index);
	r->client_index = tab;
	r->client_buckets = nb;
	return 0;
}

struct poold *registry_poold_find(const struct registry *r, const char *addr)
{
	struct poold *p;

	for (p = r->poold_index[name_hash(addr) & (r->poold_buckets - 1)]; p; p = p->hnext)
		if (!strcmp(p->addr, addr))
			return p;
	return NULL;
}

struct client *registry_client_find(const struct registry *r, const char *id)
{
	struct client *c;

	for (c = r->client_index[name_hash(id) & (r->client_buckets - 1)]; c; c = c->hnext)
		if (!strcmp(c->id, id))
			return c;
	return NULL;
}

/* Link c into the list and the index; the index has room (reserved). */
static void client_link(struct registry *r, struct client *c)
{
	size_t b = name_hash(c->id) & (r->client_buckets - 1);

	c->hnext = r->client_index[b];
	r->client_index[b] = c;
	c->prev = NULL;
	c->next = r->clients;
	if (r->clients)
		r->clients->prev = c;
	r->clients = c;
	r->nclients++;
}

static void client_unlink(struct registry *r, struct client *c)
{
	struct client **pp = &r->client_index[name_hash(c->id) & (r->client_buckets - 1)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		r->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	r->nclients--;
}

/* ---- held slots of a poold, by handle ----------------------------------- */

bool registry_handle_in_use(const struct poold *p, uint64_t handle)
{
	uint32_t i;

	if (!p->handle_cap)
		return false;
	for (i = handle_bucket(handle, p->handle_cap); p->handles[i].client;
	     i = (i + 1) & (p->handle_cap - 1))
		if (p->handles[i].handle == handle)
			return true;
	return false;
}

static void handle_insert(struct poold *p, uint64_t handle, struct client *c,
			  uint32_t slot)
{
	uint32_t i = handle_bucket(handle, p->handle_cap);

	while (p->handles[i].client)
		i = (i + 1) & (p->handle_cap - 1);
	p->handles[i] = (struct handle_ent){ handle, c, slot };
	p->handle_used++;
}

/* Room for n more entries at a load of at most one half.  0 or -ENOMEM. */
static int handle_reserve(struct poold *p, uint32_t n)
{
	struct handle_ent *old = p->handles;
	uint32_t old_cap = p->handle_cap, cap = old_cap ? old_cap : 16, i;

	if ((uint64_t)(p->handle_used + n) * 2 <= old_cap)
		return 0;
	while ((uint64_t)(p->handle_used + n) * 2 > cap)
		cap *= 2;
	p->handles = calloc(cap, sizeof(*p->handles));
	if (!p->handles) {
		p->handles = old;
		return -ENOMEM;
	}
	p->handle_cap = cap;
	p->handle_used = 0;
	for (i = 0; i < old_cap; i++)
		if (old[i].client)
			handle_insert(p, old[i].handle, old[i].client, old[i].slot);
	free(old);
	return 0;
}

static void handle_add(struct poold *p, uint64_t handle, struct client *c,
		       uint32_t slot)
{
	if (handle_reserve(p, 1)) {
		p->handles_lost = true;
		return;
	}
	handle_insert(p, handle, c, slot);
}

/* Delete without tombstones: shift the rest of the probe run back. */
static void handle_del(struct poold *p, uint64_t handle)
{
	uint32_t mask = p->handle_cap - 1, i, j, k;

	if (!p->handle_cap)
		return;
	for (i = handle_bucket(handle, p->handle_cap); p->handles[i].client; i = (i + 1) & mask)
		if (p->handles[i].handle == handle)
			break;
	if (!p->handles[i].client)
		return;
	for (j = (i + 1) & mask; p->handles[j].client; j = (j + 1) & mask) {
		k = handle_bucket(p->handles[j].handle, p->handle_cap);
		/* Move j back to i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		p->handles[i] = p->handles[j];
		i = j;
	}
	p->handles[i].client = NULL;
	p->handle_used--;
}

/* ---- a client's slots, by index ----------------------------------------- */

/* The capacity at which slot i always sits in bucket i. */
static uint32_t slots_full_cap(const struct client *c)
{
	return pow2_at_least(c->nslots);
}

struct slot *registry_slot(const struct client *c, uint32_t i)
{
	uint32_t b;

	if (!c->cap || i >= c->nslots)
		return NULL;
	for (b = i & (c->cap - 1); c->slots[b].state != SLOT_EMPTY; b = (b + 1) & (c->cap - 1))
		if (c->slots[b].index == i)
			return &c->slots[b];
	return NULL;
}

static struct slot *slot_insert(struct client *c, uint32_t i)
{
	uint32_t b = i & (c->cap - 1);

	while (c->slots[b].state != SLOT_EMPTY)
		b = (b + 1) & (c->cap - 1);
	c->slots[b].index = i;
	c->nused++;
	return &c->slots[b];
}

/*
 * Room for n more slots: a load of at most one half, or the full capacity
 * (where no two slots share a home bucket).  0 or -ENOMEM.
 */
static int slots_reserve(struct client *c, uint32_t n)
{
	uint32_t full = slots_full_cap(c), cap = c->cap ? c->cap : 4, i;
	struct slot *old = c->slots, *s;
	uint32_t old_cap = c->cap;

	if (c->nused + n > c->nslots)
		n = c->nslots - c->nused;
	if (c->cap == full || (uint64_t)(c->nused + n) * 2 <= c->cap)
		return 0;
	while (cap < full && (uint64_t)(c->nused + n) * 2 > cap)
		cap *= 2;
	if (cap > full)
		cap = full;
	c->slots = calloc(cap, sizeof(*c->slots));
	if (!c->slots) {
		c->slots = old;
		return -ENOMEM;
	}
	c->cap = cap;
	c->nused = 0;
	for (i = 0; i < old_cap; i++) {
		if (old[i].state == SLOT_EMPTY)
			continue;
		s = slot_insert(c, old[i].index);
		*s = old[i];
	}
	free(old);
	return 0;
}

/*
 * Delete bucket b without tombstones (see handle_del).  At the full
 * capacity every slot sits in its own bucket and nothing moves (and the
 * table may have no empty bucket to stop at).
 */
static void slot_delete(struct client *c, uint32_t b)
{
	uint32_t mask = c->cap - 1, j, k;

	for (j = (b + 1) & mask; c->cap < slots_full_cap(c) &&
	     c->slots[j].state != SLOT_EMPTY; j = (j + 1) & mask) {
		k = c->slots[j].index & mask;
		if (b <= j ? (b < k && k <= j) : (b < k || k <= j))
			continue;
		c->slots[b] = c->slots[j];
		b = j;
	}
	memset(&c->slots[b], 0, sizeof(c->slots[b]));
	c->nused--;
}

/* ---- registry lifetime -------------------------------------------------- */

static void poold_free(struct poold *p)
{
	free(p->tombs);
	free(p->handles);
	free(p);
}

static void client_free(struct client *c)
{
	free(c->extra);
	free(c->slots);
	free(c);
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	while (r->clients) {
		struct client *c = r->clients;

		r->clients = c->next;
		client_free(c);
	}
	while (r->poolds) {
		struct poold *p = r->poolds;

		r->poolds = p->next;
		poold_free(p);
	}
	free(r->poold_index);
	free(r->client_index);
	free(r->released);
	free(r);
}

bool registry_valid_client_id(const char *id)
{
	size_t n = 0;

	if (!id)
		return false;
	for (; id[n]; n++)
		if (n >= RSWAP_ID_MAX || !isgraph((unsigned char)id[n]))
			return false;
	return n > 0;
}

/*
 * Syntax only ("HOST:PORT" or "[V6]:PORT", printable, port 1..65535): the
 * event loop must not block on name resolution, and clients resolve it.
 */
bool registry_valid_addr(const char *addr)
{
	const char *colon, *p;
	unsigned long port;
	char *end;
	size_t n;

	if (!addr)
		return false;
	n = strnlen(addr, RSWAP_ADDR_MAX + 1);
	if (n == 0 || n > RSWAP_ADDR_MAX)
		return false;
	for (p = addr; *p; p++)
		if (!isgraph((unsigned char)*p))
			return false;
	colon = strrchr(addr, ':');
	if (!colon || colon == addr)
		return false;
	if (addr[0] == '[') {
		if (colon[-1] != ']' || colon - addr < 3)
			return false;
	} else if (memchr(addr, ':', (size_t)(colon - addr))) {
		return false;
	}
	if (!isdigit((unsigned char)colon[1]))
		return false;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	return !*end && !errno && port >= 1 && port <= 65535;
}

uint32_t registry_slots_for(const struct registry *r, uint64_t size)
{
	uint64_t n;

	if (size == 0)
		return 0;
	n = (size >> r->chunk_shift) + !!(size & (r->chunk_size - 1));
	return n > RSWAP_MAX_SLOTS ? 0 : (uint32_t)n;
}

const char *registry_state_name(enum poold_state s)
{
	switch (s) {
	case POOLD_ALIVE: return "alive";
	case POOLD_SUSPECT: return "suspect";
	case POOLD_DEAD: return "dead";
	}
	return "unknown";
}


void registry_slot_assign(struct client *c, uint32_t slot, struct poold *p)
{
	struct slot *s = registry_slot(c, slot);

	if (s) {
		registry_slot_clear(c, slot);
		s = NULL;
	}
	/* Callers made room (client_add, the register's plan): no failure. */
	if (slots_reserve(c, 1))
		abort();
	s = slot_insert(c, slot);
	s->state = SLOT_RESERVED;
	s->poold = p;
	s->handle = 0;
	p->chunks_used++;
}

void registry_slot_set_handle(struct client *c, uint32_t slot, uint64_t handle,
			      uint64_t born_ms)
{
	struct slot *s = registry_slot(c, slot);

	if (!s)
		return;
	if (s->state == SLOT_HELD)
		handle_del(s->poold, s->handle);
	else
		c->nheld++;
	s->state = SLOT_HELD;
	s->handle = handle;
	s->born_ms = born_ms;
	handle_add(s->poold, handle, c, slot);
}

/* What a slot leaving c undoes in its poold's books. */
static void slot_unaccount(struct client *c, struct slot *s)
{
	if (s->state == SLOT_HELD)
		c->nheld--;
	if (s->lost) {
		c->nlost--;
		return;
	}
	if (s->state == SLOT_HELD)
		handle_del(s->poold, s->handle);
	s->poold->chunks_used--;
}

bool registry_slot_set_lost(struct client *c, uint32_t slot)
{
	struct slot *s = registry_slot(c, slot);

	if (!s || s->state != SLOT_HELD)
		return false;
	if (s->lost)
		return true;
	handle_del(s->poold, s->handle);
	s->poold->chunks_used--;
	s->lost = true;
	s->stale_since_ms = 0;
	c->nlost++;
	return true;
}

/* ---- extra copies of a slot --------------------------------------------- */

/* Room for n more extras.  0 or -ENOMEM. */
static int extras_reserve(struct client *c, uint32_t n)
{
	uint32_t cap = c->extra_cap ? c->extra_cap : 4;
	struct copy *x;

	if (c->nextra + n <= c->extra_cap)
		return 0;
	while (cap < c->nextra + n)
		cap *= 2;
	x = realloc(c->extra, cap * sizeof(*x));
	if (!x)
		return -ENOMEM;
	c->extra = x;
	c->extra_cap = cap;
	return 0;
}

/* Append with room reserved; the caller does the poold's books. */
static struct copy *extra_append(struct client *c, struct poold *p, uint32_t slot,
				 uint64_t handle, uint64_t born_ms, bool move)
{
	struct copy *x = &c->extra[c->nextra++];

	*x = (struct copy){ .poold = p, .slot = slot, .handle = handle,
			    .born_ms = born_ms, .move = move };
	return x;
}

int registry_extra_add(struct client *c, struct poold *p, uint32_t slot,
		       uint64_t handle, uint64_t born_ms, bool move)
{
	if (extras_reserve(c, 1))
		return -ENOMEM;
	extra_append(c, p, slot, handle, born_ms, move);
	p->chunks_used++;
	handle_add(p, handle, c, slot);
	return 0;
}

struct copy *registry_extra_find(const struct client *c, uint32_t slot,
				 uint64_t handle)
{
	uint32_t i;

	for (i = 0; i < c->nextra; i++)
		if (c->extra[i].slot == slot && c->extra[i].handle == handle)
			return &c->extra[i];
	return NULL;
}

/* Drop x from the array only (its books go with it, or elsewhere). */
static void extra_unlink(struct client *c, struct copy *x)
{
	*x = c->extra[--c->nextra];
}

void registry_extra_del(struct client *c, struct copy *x)
{
	if (!x->lost) {
		if (!x->reserved)
			handle_del(x->poold, x->handle);
		x->poold->chunks_used--;
	}
	extra_unlink(c, x);
}

uint32_t registry_unresolved(const struct client *c)
{
	uint32_t i, n = 0;

	for (i = 0; i < c->nextra; i++)
		n += !c->extra[i].move && !c->extra[i].replica;
	return n;
}

bool registry_copy_in_sync(const struct poold *p, bool lost,
			   uint64_t stale_since_ms)
{
	return !lost && !stale_since_ms && p->state != POOLD_DEAD;
}

int registry_client_health(const struct client *c, uint32_t *degraded,
			   uint32_t *stale)
{
	uint8_t *insync;
	uint32_t i;

	*degraded = *stale = 0;
	if (c->replicas < 2 || !c->nslots)
		return 0;
	insync = calloc(c->nslots, 1);
	if (!insync)
		return -ENOMEM;
	for (i = 0; i < c->nextra; i++) {
		const struct copy *x = &c->extra[i];

		if (!x->replica || x->reserved || x->slot >= c->nslots)
			continue;
		insync[x->slot] += registry_copy_in_sync(x->poold, x->lost, x->stale_since_ms);
		*stale += x->stale_since_ms && !x->lost;
	}
	for (i = 0; i < c->cap; i++) {
		const struct slot *s = &c->slots[i];
		uint32_t n;

		if (s->state != SLOT_HELD || s->index >= c->nslots)
			continue;
		*stale += s->stale_since_ms && !s->lost;
		n = insync[s->index] + registry_copy_in_sync(s->poold, s->lost,
							      s->stale_since_ms);
		*degraded += n && n < c->replicas;
	}
	free(insync);
	return 0;
}

struct copy *registry_replica_reserve(struct client *c, struct poold *p,
				      uint32_t slot)
{
	struct copy *x;

	if (extras_reserve(c, 1))
		return NULL;
	x = extra_append(c, p, slot, 0, 0, false);
	x->replica = true;
	x->reserved = true;
	p->chunks_used++;
	return x;
}

void registry_replica_set_handle(struct client *c, struct copy *x,
				 uint64_t handle, uint64_t born_ms)
{
	x->reserved = false;
	x->handle = handle;
	x->born_ms = born_ms;
	handle_add(x->poold, handle, c, x->slot);
}

struct copy *registry_replica_reserved(const struct client *c, uint32_t slot,
				       const struct poold *p)
{
	uint32_t i;

	for (i = 0; i < c->nextra; i++)
		if (c->extra[i].reserved && c->extra[i].slot == slot &&
		    c->extra[i].poold == p)
			return &c->extra[i];
	return NULL;
}

void registry_copy_set_lost(struct copy *x)
{
	if (x->lost)
		return;
	if (!x->reserved)
		handle_del(x->poold, x->handle);
	x->poold->chunks_used--;
	x->lost = true;
	x->stale_since_ms = 0;
}

bool registry_slot_promote(struct client *c, uint32_t slot)
{
	struct slot *s = registry_slot(c, slot);
	struct copy *x = NULL, t;
	uint32_t i;

	if (!s || s->state != SLOT_HELD || !s->lost)
		return false;
	/* Prefer a copy in sync, else any that lives. */
	for (i = 0; i < c->nextra; i++) {
		struct copy *y = &c->extra[i];

		if (y->slot != slot || !y->replica || y->lost || y->reserved)
			continue;
		if (!x || (x->stale_since_ms && !y->stale_since_ms))
			x = y;
	}
	if (!x)
		return false;
	/* The books stay with each poold and the handle index names the
	 * slot either way: only the records swap. */
	t = *x;
	x->poold = s->poold;
	x->handle = s->handle;
	x->born_ms = s->born_ms;
	x->stale_since_ms = 0;
	x->lost = true;
	s->poold = t.poold;
	s->handle = t.handle;
	s->born_ms = t.born_ms;
	s->stale_since_ms = t.stale_since_ms;
	s->lost = false;
	c->nlost--;
	return true;
}

void registry_replica_switch(struct client *c, struct copy *x,
			     struct copy *with, struct copy *old)
{
	*old = *x;
	if (x->lost)
		old->poold = NULL;
	else {
		handle_del(x->poold, x->handle);
		x->poold->chunks_used--;
	}
	/* with's books (chunks, handle index) carry over to x. */
	x->poold = with->poold;
	x->handle = with->handle;
	x->born_ms = with->born_ms;
	x->lost = false;
	x->reserved = false;
	x->stale_since_ms = 0;
	extra_unlink(c, with);
}

int registry_slot_switch(struct client *c, struct copy *x, struct copy *old)
{
	struct slot *s = registry_slot(c, x->slot);

	memset(old, 0, sizeof(*old));
	if (s && s->state == SLOT_RESERVED)
		return -EBUSY;
	if (!s) {
		/* No mapped copy to replace: x becomes the slot. */
		if (slots_reserve(c, 1))
			return -ENOMEM;
		s = slot_insert(c, x->slot);
		s->state = SLOT_HELD;
		c->nheld++;
	} else if (s->lost) {
		s->lost = false;
		c->nlost--;
	} else {
		*old = (struct copy){ .poold = s->poold, .slot = s->index,
				     .handle = s->handle, .born_ms = s->born_ms };
		handle_del(s->poold, s->handle);
		s->poold->chunks_used--;
	}
	/* x's books (chunks_used, handle index) carry over to the slot. */
	s->poold = x->poold;
	s->handle = x->handle;
	s->born_ms = x->born_ms;
	s->stale_since_ms = 0;
	s->moving = false;
	extra_unlink(c, x);
	return 0;
}

void registry_slot_clear(struct client *c, uint32_t slot)
{
	struct slot *s = registry_slot(c, slot);

	if (!s)
		return;
	slot_unaccount(c, s);
	slot_delete(c, (uint32_t)(s - c->slots));
}

static struct client *client_new(const char *id, uint64_t size, uint32_t nslots,
				 uint32_t room)
{
	struct client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->size = size;
	c->nslots = nslots;
	if (slots_reserve(c, room)) {
		free(c);
		return NULL;
	}
	return c;
}

struct client *registry_client_add(struct registry *r, const char *id,
				   uint64_t size)
{
	uint32_t nslots = registry_slots_for(r, size);
	struct client *c;

	if (!nslots || !registry_valid_client_id(id) ||
	    client_index_reserve(r, r->nclients + 1))
		return NULL;
	c = client_new(id, size, nslots, nslots);
	if (c)
		client_link(r, c);
	return c;
}

void registry_client_remove(struct registry *r, struct client *c)
{
	uint32_t b;

	/* The table goes with c: only the poolds' books need undoing. */
	for (b = 0; b < c->cap; b++)
		if (c->slots[b].state != SLOT_EMPTY)
			slot_unaccount(c, &c->slots[b]);
	while (c->nextra)
		registry_extra_del(c, &c->extra[0]);
	client_unlink(r, c);
	client_free(c);
}

bool registry_released_has(const struct registry *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->nreleased; i++)
		if (!strcmp(r->released[i], id))
			return true;
	return false;
}

void registry_released_forget(struct registry *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->nreleased; i++)
		if (!strcmp(r->released[i], id))
			r->released[i][0] = '\0';
}

void registry_released_add(struct registry *r, const char *id)
{
	if (registry_released_has(r, id))
		return;
	snprintf(r->released[r->released_head], sizeof(r->released[0]), "%s", id);
	r->released_head = (r->released_head + 1) % RSWAP_MAX_RELEASED;
	if (r->nreleased < RSWAP_MAX_RELEASED)
		r->nreleased++;
}

/* ---- tombstones ---------------------------------------------------------- */

const struct tombstone *registry_tomb(const struct poold *p, size_t i)
{
	return i < p->ntombs ? &p->tombs[(p->tomb_head + i) % p->tomb_cap] : NULL;
}

int registry_tomb_add(struct poold *p, const char *client_id, uint32_t slot,
		      bool any_handle, uint64_t handle)
{
	struct tombstone *t;
	size_t i;

	if (p->ntombs == p->tomb_cap && p->tomb_cap < RSWAP_MAX_TOMBS) {
		size_t cap = p->tomb_cap ? p->tomb_cap * 2 : 16;

		if (cap > RSWAP_MAX_TOMBS)
			cap = RSWAP_MAX_TOMBS;
		t = malloc(cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		for (i = 0; i < p->ntombs; i++)
			t[i] = *registry_tomb(p, i);
		free(p->tombs);
		p->tombs = t;
		p->tomb_cap = cap;
		p->tomb_head = 0;
	}
	if (p->ntombs == p->tomb_cap) {
		/* Forgetting the oldest only risks a chunk coming back as an
		 * incomplete client, which an admin can release. */
		p->tomb_head = (p->tomb_head + 1) % p->tomb_cap;
		p->ntombs--;
	}
	t = &p->tombs[(p->tomb_head + p->ntombs++) % p->tomb_cap];
	memset(t, 0, sizeof(*t));
	snprintf(t->client_id, sizeof(t->client_id), "%s", client_id);
	t->slot = slot;
	t->any_handle = any_handle;
	t->handle = handle;
	return 0;
}

static void tombs_clear(struct poold *p)
{
	free(p->tombs);
	p->tombs = NULL;
	p->ntombs = p->tomb_head = p->tomb_cap = 0;
}

/* ---- registration --------------------------------------------------------- */

static int cmp_held_slot(const void *a, const void *b)
{
	const struct held_chunk *x = *(const struct held_chunk *const *)a;
	const struct held_chunk *y = *(const struct held_chunk *const *)b;
	int d = strcmp(x->client_id, y->client_id);

	if (d)
		return d;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int cmp_held_handle(const void *a, const void *b)
{
	const struct held_chunk *x = *(const struct held_chunk *const *)a;
	const struct held_chunk *y = *(const struct held_chunk *const *)b;

	return x->handle < y->handle ? -1 : x->handle > y->handle;
}

static int cmp_tomb(const void *a, const void *b)
{
	const struct tombstone *x = *(const struct tombstone *const *)a;
	const struct tombstone *y = *(const struct tombstone *const *)b;
	int d = strcmp(x->client_id, y->client_id);

	if (d)
		return d;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool held_reported(const struct held_chunk **sorted, size_t n,
			  const char *id, uint32_t slot, uint64_t handle)
{
	struct held_chunk key = { .client_id = id, .slot = slot };
	const struct held_chunk *kp = &key, **hit;

	if (!n)
		return false;
	hit = bsearch(&kp, sorted, n, sizeof(*sorted), cmp_held_slot);
	return hit && (*hit)->handle == handle;
}

/*
 * The lookups a registration needs, sorted once so that each reported
 * chunk costs O(log n): the poold's tombstones and the released ids.
 */
struct reg_index {
	const struct tombstone **tombs;
	size_t ntombs;
	const char **released;
	size_t nreleased;
};

static int reg_index_build(const struct registry *r, const struct poold *p,
			   struct reg_index *ix)
{
	size_t i;

	memset(ix, 0, sizeof(*ix));
	if (p && p->ntombs) {
		ix->tombs = malloc(p->ntombs * sizeof(*ix->tombs));
		if (!ix->tombs)
			return -ENOMEM;
		for (i = 0; i < p->ntombs; i++)
			ix->tombs[i] = registry_tomb(p, i);
		ix->ntombs = p->ntombs;
		qsort(ix->tombs, ix->ntombs, sizeof(*ix->tombs), cmp_tomb);
	}
	if (r->nreleased) {
		ix->released = malloc(r->nreleased * sizeof(*ix->released));
		if (!ix->released) {
			free(ix->tombs);
			return -ENOMEM;
		}
		for (i = 0; i < r->nreleased; i++)
			if (r->released[i][0])
				ix->released[ix->nreleased++] = r->released[i];
		qsort(ix->released, ix->nreleased, sizeof(*ix->released), cmp_str);
	}
	return 0;
}

static bool reg_index_tomb(const struct reg_index *ix, const struct held_chunk *h)
{
	struct tombstone key;
	const struct tombstone *kp = &key, **hit;
	size_t lo, hi;

	if (!ix->ntombs)
		return false;
	snprintf(key.client_id, sizeof(key.client_id), "%s", h->client_id);
	key.slot = h->slot;
	hit = bsearch(&kp, ix->tombs, ix->ntombs, sizeof(*ix->tombs), cmp_tomb);
	if (!hit)
		return false;
	/* Several tombstones may name one slot: look at all of them. */
	lo = hi = (size_t)(hit - ix->tombs);
	while (lo > 0 && !cmp_tomb(&ix->tombs[lo - 1], &kp))
		lo--;
	while (hi + 1 < ix->ntombs && !cmp_tomb(&ix->tombs[hi + 1], &kp))
		hi++;
	for (; lo <= hi; lo++)
		if (ix->tombs[lo]->any_handle || ix->tombs[lo]->handle == h->handle)
			return true;
	return false;
}

static bool reg_index_released(const struct reg_index *ix, const char *id)
{
	return ix->nreleased &&
	       bsearch(&id, ix->released, ix->nreleased, sizeof(*ix->released), cmp_str);
}

static void reg_index_free(struct reg_index *ix)
{
	free(ix->tombs);
	free(ix->released);
}

/*
 * The records of p that its registration did not report, collected
 * before any is dropped.  From p's handle index when it covers every slot
 * on p (always, unless it could not grow or an allocation is in flight);
 * otherwise by a scan of every client.
 */
struct drop {
	struct client *c;
	uint32_t slot;
	uint64_t handle;
	bool extra;			/* an extra copy, not the mapped slot */
};

/* Is (slot, handle) on p c's mapped copy (and not lost)? */
static bool is_mapped(const struct client *c, const struct poold *p,
		      uint32_t slot, uint64_t handle)
{
	const struct slot *s = registry_slot(c, slot);

	return s && s->state == SLOT_HELD && !s->lost && s->poold == p &&
	       s->handle == handle;
}

static int collect_unreported(struct registry *r, struct poold *p,
			      const struct held_chunk **sorted, size_t n,
			      struct drop **out, size_t *nout)
{
	struct drop *d;
	struct client *c;
	size_t k = 0;
	uint32_t i;

	*out = NULL;
	*nout = 0;
	if (!p->chunks_used)
		return 0;
	d = calloc(p->chunks_used, sizeof(*d));
	if (!d)
		return -ENOMEM;
	if (!p->handles_lost && p->handle_used == p->chunks_used) {
		for (i = 0; i < p->handle_cap; i++) {
			const struct handle_ent *e = &p->handles[i];

			if (e->client && !held_reported(sorted, n, e->client->id,
							 e->slot, e->handle))
				d[k++] = (struct drop){
					e->client, e->slot, e->handle,
					!is_mapped(e->client, p, e->slot, e->handle) };
		}
	} else {
		for (c = r->clients; c; c = c->next) {
			for (i = 0; i < c->cap; i++) {
				const struct slot *s = &c->slots[i];

				if (s->state == SLOT_EMPTY || s->poold != p || s->lost)
					continue;
				if (s->state == SLOT_HELD &&
				    held_reported(sorted, n, c->id, s->index, s->handle))
					continue;
				if (k < p->chunks_used)
					d[k++] = (struct drop){ c, s->index, s->handle, false };
			}
			for (i = 0; i < c->nextra; i++) {
				const struct copy *x = &c->extra[i];

				if (x->poold != p || x->lost ||
				    (!x->reserved &&
				     held_reported(sorted, n, c->id, x->slot, x->handle)))
					continue;
				if (k < p->chunks_used)
					d[k++] = (struct drop){ c, x->slot, x->handle, true };
			}
		}
	}
	*out = d;
	*nout = k;
	return 0;
}

/*
 * What p no longer holds: a mapped slot is marked lost (the client reads
 * I/O errors there, and knows), a reserved one (its allocation never
 * came) and an extra copy are forgotten.
 */
static void drop_unreported(struct poold *p, const struct drop *d, size_t n,
			    bool new_incarnation)
{
	struct copy *x;
	size_t i;

	for (i = 0; i < n; i++) {
		struct slot *s = registry_slot(d[i].c, d[i].slot);

		if (d[i].extra) {
			x = registry_extra_find(d[i].c, d[i].slot, d[i].handle);
			if (!x)
				continue;
			if (x->replica && !x->reserved) {
				log_warn("poold %s came back without client %s slot %" PRIu32
					 " copy %" PRIu64 "; that copy is marked lost and will be replaced",
					 p->addr, d[i].c->id, d[i].slot, d[i].handle);
				registry_copy_set_lost(x);
				continue;
			}
			log_warn("poold %s came back without client %s slot %" PRIu32
				 " copy %" PRIu64 " (%s); that copy is forgotten",
				 p->addr, d[i].c->id, d[i].slot, d[i].handle,
				 x->move ? "a move's target" : "not the mapped one");
			registry_extra_del(d[i].c, x);
		} else if (s && s->state == SLOT_HELD) {
			log_warn("poold %s %s without client %s slot %" PRIu32
				 " (handle %" PRIu64 "); the slot is marked lost",
				 p->addr, new_incarnation ?
				 "restarted (new incarnation) and came back" :
				 "came back (same incarnation: it should not have lost it)",
				 d[i].c->id, d[i].slot, s->handle);
			registry_slot_set_lost(d[i].c, d[i].slot);
			if (registry_slot_promote(d[i].c, d[i].slot))
				log_warn("client %s: slot %" PRIu32 " goes on from its copy on poold %s",
					 d[i].c->id, d[i].slot, s->poold->addr);
		} else {
			log_warn("poold %s came back without client %s slot %" PRIu32
				 ", whose allocation was in flight; the record is dropped",
				 p->addr, d[i].c->id, d[i].slot);
			registry_slot_clear(d[i].c, d[i].slot);
		}
	}
}

/*
 * When the chunk h was allocated, on this coordinator's clock: its age as
 * the poold reports it (plus one; 0 is unknown, which counts as oldest).
 */
static uint64_t held_born(const struct held_chunk *h, uint64_t now_ms)
{
	uint64_t age;

	if (!h->age_ms)
		return 0;
	age = h->age_ms - 1;
	return now_ms > age ? now_ms - age : 1;
}

/* The end of the run of keep[] entries with keep[i]'s client id. */
static size_t id_run_end(const struct held_chunk **keep, size_t n, size_t i)
{
	size_t j = i + 1;

	while (j < n && !strcmp(keep[j]->client_id, keep[i]->client_id))
		j++;
	return j;
}

/*
 * What a registration does with each chunk it reports.  Two poolds may
 * report the same slot of a client (after a coordinator restart, one of
 * them holds a move's target, or a copy whose free was lost with the old
 * coordinator; or a fake poold was first): the newer chunk (by age) goes
 * into the map and the other is kept as an unresolved copy, since only
 * the client knows which one holds its data.  One pool of another size:
 * the newer pool stays, the older one is freed.  Nobody is refused for
 * it, so the real poold registers whoever came first.
 */
enum verdict {
	V_NEW,		/* adopt */
	V_SAME,		/* already recorded as this poold's */
	V_WINS,		/* newer than the mapped copy: mapped, that one extra */
	V_EXTRA,	/* another copy of a mapped slot: kept as extra */
	V_FREE,		/* older pool, orphan (tombstone, released id): freed */
};

/* One client id's run keep[first..end). */
struct reg_group {
	size_t first, end;
	struct client *known;		/* the registry's client with that id */
	bool replace;			/* known is an older pool of another size */
	bool older_size;		/* the run is an older pool of another size */
	struct client *fresh;		/* allocated: adopts the run */
	uint32_t nnew, nwins, nextra, nlost;
	const struct poold *other;	/* a poold it won or lost against */
};

/* A slot's old copy on another poold, which the caller frees. */
static void displace_chunk(struct reg_result *res, const struct client *c,
			   struct poold *p, uint32_t slot, uint64_t handle)
{
	struct displaced *d = &res->displaced[res->ndisplaced++];

	d->poold = p;
	snprintf(d->client_id, sizeof(d->client_id), "%s", c->id);
	d->slot = slot;
	d->handle = handle;
}

static void displace(struct reg_result *res, const struct client *c,
		     const struct slot *s)
{
	displace_chunk(res, c, s->poold, s->index, s->handle);
}

static void displace_copy(struct reg_result *res, const struct client *c,
			  const struct copy *x)
{
	displace_chunk(res, c, x->poold, x->slot, x->handle);
}

/*
 * Judge one client's run: the checks that need the registry.  -EBUSY
 * while that client has an allocation or release in flight (transient:
 * the poold retries).
 */
static int judge_group(struct registry *r, const struct poold *p, const char *addr,
		       const struct held_chunk **keep, struct reg_group *g,
		       enum verdict *v, const struct reg_index *ix, uint64_t now_ms,
		       char *why, size_t whylen)
{
	const struct held_chunk *h0 = keep[g->first];
	uint64_t newest_rep = 0, newest_known = 0;
	struct client *c = registry_client_find(r, h0->client_id);
	size_t j, live = 0;
	uint32_t b, others = 0;

	g->known = c;
	/* A chunk p should have freed (tombstone) is freed, clash or not. */
	for (j = g->first; j < g->end; j++) {
		v[j] = reg_index_tomb(ix, keep[j]) ? V_FREE : V_NEW;
		if (v[j] == V_NEW) {
			live++;
			if (held_born(keep[j], now_ms) > newest_rep)
				newest_rep = held_born(keep[j], now_ms);
		}
	}
	if (!c) {
		if (reg_index_released(ix, h0->client_id))
			for (j = g->first; j < g->end; j++)
				v[j] = V_FREE;
		return 0;
	}
	if (!live)
		return 0;
	if (c->busy) {
		snprintf(why, whylen,
			 "poold %s reports chunks of client %s, which has an allocation or release in flight; retry",
			 addr, c->id);
		return -EBUSY;
	}
	if (c->size != h0->client_size) {
		/*
		 * Two pools under one id: the one with the newest chunk stays.
		 * What p held of it before is p's to redefine.
		 */
		for (b = 0; b < c->cap; b++) {
			if (c->slots[b].state != SLOT_HELD || c->slots[b].poold == p)
				continue;
			others++;
			g->other = c->slots[b].poold;
			if (c->slots[b].born_ms > newest_known)
				newest_known = c->slots[b].born_ms;
		}
		if (!others || newest_rep > newest_known) {
			g->replace = true;
			return 0;
		}
		for (j = g->first; j < g->end; j++)
			if (v[j] == V_NEW) {
				v[j] = V_FREE;
				g->nlost++;
			}
		g->older_size = true;
		return 0;
	}
	for (j = g->first; j < g->end; j++) {
		const struct copy *x;
		const struct slot *s;

		if (v[j] != V_NEW)
			continue;
		x = registry_extra_find(c, keep[j]->slot, keep[j]->handle);
		if (x && x->poold == p) {
			v[j] = V_SAME;
			continue;
		}
		s = registry_slot(c, keep[j]->slot);
		if (!s)
			continue;
		if (s->poold == p) {
			if (s->state == SLOT_HELD && s->handle == keep[j]->handle) {
				v[j] = V_SAME;
				continue;
			}
			/* Another handle: the old record is marked lost as
			 * unreported; this one may be the client's. */
			v[j] = V_EXTRA;
			g->nextra++;
			continue;
		}
		g->other = s->poold;
		if (s->lost || held_born(keep[j], now_ms) > s->born_ms) {
			v[j] = V_WINS;
			g->nwins++;
		} else {
			v[j] = V_EXTRA;
			g->nextra++;
		}
	}
	return 0;
}

static void log_group(const struct poold *p, const struct reg_group *g,
		      const char *id, const char *other)
{
	if (g->replace)
		log_warn("client %s: poold %s reports a newer pool of another size; the older one's chunks are freed",
			 id, p->addr);
	if (g->older_size) {
		log_warn("client %s: poold %s reports an older pool of another size than poold %s has; its %" PRIu32
			 " chunk%s freed", id, p->addr, other, g->nlost,
			 g->nlost == 1 ? " is" : "s are");
		return;
	}
	if (g->nwins)
		log_warn("client %s: poold %s holds newer copies of %" PRIu32
			 " slot%s than poold %s; the map shows them, both kept until the client says which it runs on",
			 id, p->addr, g->nwins, g->nwins == 1 ? "" : "s", other);
	if (g->nextra)
		log_warn("client %s: poold %s holds other copies of %" PRIu32
			 " mapped slot%s; kept, unresolved, until the client says which it runs on",
			 id, p->addr, g->nextra, g->nextra == 1 ? "" : "s");
}

/*
 * Everything a registration creates, allocated before anything changes:
 * the poold (if new), each client it adopts with room for the slots
 * reported for it, and the list of displaced copies.  Existing clients
 * get room in their slot tables too (that changes nothing they hold).
 */
struct reg_plan {
	struct poold *newp;
	struct reg_group *groups;
	size_t ngroups, nnew;
	enum verdict *v;
	struct drop *drops;
	size_t ndrops;
};

static void reg_plan_free(struct reg_plan *pl)
{
	size_t i;

	for (i = 0; pl->groups && i < pl->ngroups; i++)
		if (pl->groups[i].fresh)
			client_free(pl->groups[i].fresh);
	free(pl->groups);
	free(pl->v);
	free(pl->newp);
	free(pl->drops);
	memset(pl, 0, sizeof(*pl));
}

static int reg_plan_alloc(struct registry *r, struct poold *p, const char *addr,
			  const struct held_chunk **keep, size_t nkeep,
			  struct reg_plan *pl, struct reg_result *res)
{
	const struct held_chunk **kept;
	size_t i, n = 0, ndisp = 0;
	int ret = 0;

	if (!p) {
		pl->newp = calloc(1, sizeof(*pl->newp));
		if (!pl->newp || poold_index_reserve(r, r->npoolds + 1))
			return -ENOMEM;
		snprintf(pl->newp->addr, sizeof(pl->newp->addr), "%s", addr);
		p = pl->newp;
	} else if (nkeep || p->chunks_used) {
		/* What p keeps (still sorted); a chunk to be freed is no record. */
		kept = calloc(nkeep + 1, sizeof(*kept));
		if (!kept)
			return -ENOMEM;
		for (i = 0; i < nkeep; i++)
			if (pl->v[i] != V_FREE)
				kept[n++] = keep[i];
		ret = collect_unreported(r, p, kept, n, &pl->drops, &pl->ndrops);
		free(kept);
		if (ret)
			return ret;
	}
	if (handle_reserve(p, (uint32_t)nkeep))
		return -ENOMEM;
	for (i = 0; i < pl->ngroups; i++) {
		struct reg_group *g = &pl->groups[i];

		if (g->known && g->replace)
			ndisp += g->known->nused + g->known->nextra;
		if (g->known && !g->replace) {
			if (slots_reserve(g->known, g->nnew + g->nwins) ||
			    extras_reserve(g->known, g->nwins + g->nextra))
				return -ENOMEM;
			continue;
		}
		if (!g->nnew)
			continue;
		g->fresh = client_new(keep[g->first]->client_id,
				      keep[g->first]->client_size,
				      registry_slots_for(r, keep[g->first]->client_size),
				      g->nnew);
		if (!g->fresh)
			return -ENOMEM;
		pl->nnew++;
	}
	if (ndisp) {
		res->displaced = calloc(ndisp, sizeof(*res->displaced));
		if (!res->displaced)
			return -ENOMEM;
	}
	return client_index_reserve(r, r->nclients + pl->nnew);
}

/* Apply one judged run (after the point of no return: cannot fail). */
static void apply_group(struct registry *r, struct poold *p,
			const struct held_chunk **keep, struct reg_group *g,
			const enum verdict *v, uint64_t now_ms, struct reg_result *res)
{
	struct client *c = g->known;
	char other[RSWAP_ADDR_MAX + 1] = "";
	size_t j;
	uint32_t b;

	if (g->other)
		snprintf(other, sizeof(other), "%s", g->other->addr);
	if (g->replace) {
		for (b = 0; b < c->cap; b++)
			if (c->slots[b].state == SLOT_HELD && !c->slots[b].lost &&
			    c->slots[b].poold != p)
				displace(res, c, &c->slots[b]);
		for (b = 0; b < c->nextra; b++)
			if (c->extra[b].poold != p && !c->extra[b].lost &&
			    !c->extra[b].reserved)
				displace_copy(res, c, &c->extra[b]);
		registry_client_remove(r, c);
		c = NULL;
	}
	if (g->fresh) {
		c = g->fresh;
		g->fresh = NULL;
		client_link(r, c);
	}
	log_group(p, g, keep[g->first]->client_id, other);
	for (j = g->first; j < g->end; j++) {
		const struct held_chunk *h = keep[j];
		struct slot *s;

		if (v[j] == V_EXTRA) {
			extra_append(c, p, h->slot, h->handle, held_born(h, now_ms), false);
			p->chunks_used++;
			handle_add(p, h->handle, c, h->slot);
			continue;
		}
		if (v[j] != V_NEW && v[j] != V_WINS)
			continue;
		s = registry_slot(c, h->slot);
		if (s && v[j] == V_WINS && !s->lost) {
			/* Its books (chunks, handle index) go with it. */
			extra_append(c, s->poold, s->index, s->handle, s->born_ms, false);
			c->nheld--;
			slot_delete(c, (uint32_t)(s - c->slots));
		} else if (s && v[j] == V_WINS) {
			registry_slot_clear(c, h->slot);
		} else if (s) {
			continue;
		}
		registry_slot_assign(c, h->slot, p);
		registry_slot_set_handle(c, h->slot, h->handle, held_born(h, now_ms));
	}
}

void registry_reg_result_free(struct reg_result *res)
{
	free(res->to_free);
	free(res->displaced);
	memset(res, 0, sizeof(*res));
}

int registry_poold_register(struct registry *r, const struct poold_report *rep,
			    uint64_t now_ms, struct reg_result *res,
			    char *why, size_t whylen)
{
	const struct held_chunk **keep = NULL;
	struct reg_plan plan = { 0 };
	struct reg_index ix = { 0 };
	struct poold *p;
	size_t i, j, nfree = 0, nids;
	char a[16], b[16];
	int ret;

	memset(res, 0, sizeof(*res));
	if (!registry_valid_addr(rep->addr)) {
		snprintf(why, whylen,
			 "listen address is not HOST:PORT (printable, at most %d bytes)",
			 RSWAP_ADDR_MAX);
		return -EINVAL;
	}
	if (rep->zone && rep->zone[0] && !rswap_zone_valid(rep->zone)) {
		snprintf(why, whylen,
			 "poold %s: zone must be 1 to %d printable characters without spaces",
			 rep->addr, RSWAP_ZONE_MAX);
		return -EINVAL;
	}
	p = registry_poold_find(r, rep->addr);
	if (p && p->connected) {
		snprintf(why, whylen,
			 "a poold with listen address %s is already connected; give each poold its own address",
			 rep->addr);
		return -EEXIST;
	}
	if (rep->nchunks && rep->chunk_size != r->chunk_size) {
		snprintf(why, whylen,
			 "poold %s holds chunks of %s, this coordinator uses %s; restart rswap-coord with --chunk-size %s or empty the poold",
			 rep->addr, rswap_fmt_size(rep->chunk_size, a, sizeof(a)),
			 rswap_fmt_size(r->chunk_size, b, sizeof(b)), a);
		return -EINVAL;
	}
	if (rep->nchunks > rep->capacity >> r->chunk_shift) {
		snprintf(why, whylen,
			 "poold %s reports %zu held chunks of %s, more than its capacity %s holds",
			 rep->addr, rep->nchunks, rswap_fmt_size(r->chunk_size, a, sizeof(a)),
			 rswap_fmt_size(rep->capacity, b, sizeof(b)));
		return -EINVAL;
	}
	if (rep->nchunks) {
		keep = calloc(rep->nchunks, sizeof(*keep));
		plan.v = calloc(rep->nchunks, sizeof(*plan.v));
		res->to_free = calloc(rep->nchunks, sizeof(*res->to_free));
		if (!keep || !plan.v || !res->to_free || reg_index_build(r, p, &ix)) {
			snprintf(why, whylen, "out of memory");
			ret = -ENOMEM;
			goto out_free;
		}
	}
	/* Every handle once, orphans included: freeing one must not free
	 * a chunk that is also reported for a live slot. */
	for (i = 0; i < rep->nchunks; i++)
		keep[i] = &rep->chunks[i];
	if (rep->nchunks)
		qsort(keep, rep->nchunks, sizeof(*keep), cmp_held_handle);
	for (i = 1; i < rep->nchunks; i++) {
		if (keep[i]->handle == keep[i - 1]->handle) {
			snprintf(why, whylen, "poold %s reports handle %" PRIu64
				 " twice", rep->addr, keep[i]->handle);
			ret = -EINVAL;
			goto out_free;
		}
	}
	/* What needs no registry: ids, slots, duplicates, sizes, counts. */
	for (i = 0; i < rep->nchunks; i++) {
		const struct held_chunk *h = &rep->chunks[i];
		uint32_t nslots;

		if (!registry_valid_client_id(h->client_id)) {
			snprintf(why, whylen,
				 "poold %s reports a chunk with an invalid client id",
				 rep->addr);
			ret = -EINVAL;
			goto out_free;
		}
		nslots = registry_slots_for(r, h->client_size);
		if (!nslots || h->slot >= nslots) {
			snprintf(why, whylen,
				 "poold %s reports client %s slot %" PRIu32 " of a %" PRIu64
				 "-byte pool, which has no such slot", rep->addr,
				 h->client_id, h->slot, h->client_size);
			ret = -EINVAL;
			goto out_free;
		}
	}
	if (rep->nchunks)
		qsort(keep, rep->nchunks, sizeof(*keep), cmp_held_slot);
	for (i = 0, nids = 0; i < rep->nchunks; i = j, nids++) {
		for (j = i + 1; j < rep->nchunks &&
		     !strcmp(keep[j]->client_id, keep[i]->client_id); j++) {
			if (keep[j]->slot == keep[j - 1]->slot) {
				snprintf(why, whylen, "poold %s reports client %s slot %"
					 PRIu32 " twice", rep->addr, keep[j]->client_id,
					 keep[j]->slot);
				ret = -EINVAL;
				goto out_free;
			}
			if (keep[j]->client_size != keep[i]->client_size) {
				snprintf(why, whylen, "poold %s reports client %s with two pool sizes",
					 rep->addr, keep[j]->client_id);
				ret = -EINVAL;
				goto out_free;
			}
		}
	}
	if (nids > RSWAP_MAX_CLIENTS_PER_POOLD) {
		snprintf(why, whylen,
			 "poold %s reports chunks of %zu client ids; one poold may hold chunks of at most %d",
			 rep->addr, nids, RSWAP_MAX_CLIENTS_PER_POOLD);
		ret = -E2BIG;
		goto out_free;
	}
	/* Each client's run against the registry. */
	if (nids) {
		plan.groups = calloc(nids, sizeof(*plan.groups));
		if (!plan.groups) {
			snprintf(why, whylen, "out of memory");
			ret = -ENOMEM;
			goto out_free;
		}
	}
	for (i = 0; i < rep->nchunks; i = plan.groups[plan.ngroups++].end) {
		struct reg_group *g = &plan.groups[plan.ngroups];

		g->first = i;
		g->end = id_run_end(keep, rep->nchunks, i);
		ret = judge_group(r, p, rep->addr, keep, g, plan.v, &ix, now_ms, why, whylen);
		if (ret)
			goto out_free;
		for (j = g->first; j < g->end; j++) {
			if (plan.v[j] == V_FREE)
				res->to_free[nfree++] = (size_t)(keep[j] - rep->chunks);
			else if (plan.v[j] == V_NEW)
				g->nnew++;
		}
	}
	ret = reg_plan_alloc(r, p, rep->addr, keep, rep->nchunks, &plan, res);
	if (ret) {
		snprintf(why, whylen, "out of memory");
		goto out_free;
	}

	/* Point of no return: everything below only applies the report. */
	if (!p) {
		p = plan.newp;
		plan.newp = NULL;
		p->next = r->poolds;
		r->poolds = p;
		i = name_hash(p->addr) & (r->poold_buckets - 1);
		p->hnext = r->poold_index[i];
		r->poold_index[i] = p;
		r->npoolds++;
	} else {
		drop_unreported(p, plan.drops, plan.ndrops,
				p->incarnation && rep->incarnation &&
				p->incarnation != rep->incarnation);
	}
	for (i = 0; i < plan.ngroups; i++)
		apply_group(r, p, keep, &plan.groups[i], plan.v, now_ms, res);
	p->capacity = rep->capacity;
	p->incarnation = rep->incarnation;
	snprintf(p->zone, sizeof(p->zone), "%s", rep->zone ? rep->zone : "");
	p->chunks_total = (rep->capacity >> r->chunk_shift) > UINT32_MAX ?
			  UINT32_MAX : (uint32_t)(rep->capacity >> r->chunk_shift);
	p->connected = true;
	p->state = POOLD_ALIVE;
	p->last_heartbeat_ms = now_ms;
	p->chunks_reported = (uint32_t)rep->nchunks;
	tombs_clear(p);
	res->poold = p;
	res->nto_free = nfree;
	ret = 0;
out_free:
	if (ret)
		registry_reg_result_free(res);
	reg_plan_free(&plan);
	reg_index_free(&ix);
	free(keep);
	return ret;
}

void registry_poold_disconnect(struct registry *r, struct poold *p)
{
	p->connected = false;
	p->conn = NULL;
	p->state = POOLD_DEAD;
}

void registry_poold_heartbeat(struct poold *p, uint64_t now_ms,
			      uint32_t chunks_held, uint32_t clients_connected)
{
	p->last_heartbeat_ms = now_ms;
	p->chunks_reported = chunks_held;
	p->clients_connected = clients_connected;
	p->state = POOLD_ALIVE;
}

void registry_update_liveness(struct registry *r, uint64_t now_ms,
			      uint32_t heartbeat_ms)
{
	struct poold *p;

	for (p = r->poolds; p; p = p->next) {
		uint64_t age;

		if (!p->connected) {
			p->state = POOLD_DEAD;
			continue;
		}
		age = now_ms > p->last_heartbeat_ms ? now_ms - p->last_heartbeat_ms : 0;
		if (age >= (uint64_t)heartbeat_ms * RSWAP_DEAD_BEATS)
			p->state = POOLD_DEAD;
		else if (age >= (uint64_t)heartbeat_ms * RSWAP_SUSPECT_BEATS)
			p->state = POOLD_SUSPECT;
		else
			p->state = POOLD_ALIVE;
	}
}

bool registry_poold_placeable(const struct poold *p)
{
	return p->connected && p->state == POOLD_ALIVE && !p->draining;
}

static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos += (size_t)n;
}

uint32_t registry_client_missing(const struct registry *r,
				 const struct client *c, char *why,
				 size_t whylen)
{
	const struct poold *p;
	uint32_t i, missing = c->nslots - c->nheld, listed = 0;
	size_t pos = 0;
	int down = 0;

	if (!missing || !why || !whylen)
		return missing;
	append(why, whylen, &pos, "client %s is incomplete: slot%s ", c->id,
	       missing > 1 ? "s" : "");
	for (i = 0; i < c->nslots; i++) {
		const struct slot *s = registry_slot(c, i);

		if (s && s->state == SLOT_HELD)
			continue;
		if (listed == 8) {
			append(why, whylen, &pos, ",...");
			break;
		}
		append(why, whylen, &pos, "%s%" PRIu32, listed ? "," : "", i);
		listed++;
	}
	append(why, whylen, &pos, " of %" PRIu32 " not reported yet", c->nslots);
	for (p = r->poolds; p && pos < whylen; p = p->next) {
		if (p->connected)
			continue;
		append(why, whylen, &pos, "%s%s", down ? ", " : "; down: poold ",
		       p->addr);
		down++;
	}
	if (!down)
		append(why, whylen, &pos, "; is a poold not registered yet?");
	return missing;
}
