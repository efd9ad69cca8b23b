// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "registry.h"
#include "rswap_util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct registry *registry_new(uint64_t chunk_size)
{
	struct registry *r;

	if (chunk_size < RSWAP_MIN_CHUNK || (chunk_size & (chunk_size - 1)))
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->released = calloc(RSWAP_MAX_RELEASED, sizeof(*r->released));
	if (!r->released) {
		free(r);
		return NULL;
	}
	r->chunk_size = chunk_size;
	r->chunk_shift = (unsigned int)__builtin_ctzll(chunk_size);
	return r;
}

static void poold_free(struct poold *p)
{
	free(p->tombs);
	free(p->handles);
	free(p->handle_state);
	free(p);
}

enum { HANDLE_FREE, HANDLE_USED, HANDLE_GONE };

static uint32_t handle_bucket(uint64_t h, uint32_t cap)
{
	/* Fibonacci hashing; cap is a power of two. */
	return (uint32_t)((h * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

bool registry_handle_in_use(const struct poold *p, uint64_t handle)
{
	uint32_t i, n;

	if (!p->handle_cap)
		return false;
	for (i = handle_bucket(handle, p->handle_cap), n = 0; n < p->handle_cap;
	     i = (i + 1) & (p->handle_cap - 1), n++) {
		if (p->handle_state[i] == HANDLE_FREE)
			return false;
		if (p->handle_state[i] == HANDLE_USED && p->handles[i] == handle)
			return true;
	}
	return false;
}

static void handle_insert(struct poold *p, uint64_t handle)
{
	uint32_t i = handle_bucket(handle, p->handle_cap);

	while (p->handle_state[i] == HANDLE_USED)
		i = (i + 1) & (p->handle_cap - 1);
	if (p->handle_state[i] == HANDLE_GONE)
		p->handle_gone--;
	p->handle_state[i] = HANDLE_USED;
	p->handles[i] = handle;
	p->handle_used++;
}

/* Keep the table at most half full (tombstones count) and rehash. */
static int handle_grow(struct poold *p)
{
	uint32_t old_cap = p->handle_cap, cap = old_cap ? old_cap : 16, i;
	uint64_t *old = p->handles;
	uint8_t *old_state = p->handle_state;

	while ((p->handle_used + 1) * 2 > cap)
		cap *= 2;
	p->handles = calloc(cap, sizeof(*p->handles));
	p->handle_state = calloc(cap, 1);
	if (!p->handles || !p->handle_state) {
		free(p->handles);
		free(p->handle_state);
		p->handles = old;
		p->handle_state = old_state;
		return -ENOMEM;
	}
	p->handle_cap = cap;
	p->handle_used = 0;
	p->handle_gone = 0;
	for (i = 0; i < old_cap; i++)
		if (old_state[i] == HANDLE_USED)
			handle_insert(p, old[i]);
	free(old);
	free(old_state);
	return 0;
}

static void handle_add(struct poold *p, uint64_t handle)
{
	if ((p->handle_used + p->handle_gone + 1) * 2 > p->handle_cap &&
	    handle_grow(p)) {
		p->handles_lost = true;
		return;
	}
	handle_insert(p, handle);
}

static void handle_del(struct poold *p, uint64_t handle)
{
	uint32_t i, n;

	if (!p->handle_cap)
		return;
	for (i = handle_bucket(handle, p->handle_cap), n = 0; n < p->handle_cap;
	     i = (i + 1) & (p->handle_cap - 1), n++) {
		if (p->handle_state[i] == HANDLE_FREE)
			return;
		if (p->handle_state[i] == HANDLE_USED && p->handles[i] == handle) {
			p->handle_state[i] = HANDLE_GONE;
			p->handle_used--;
			p->handle_gone++;
			return;
		}
	}
}

static void client_free(struct client *c)
{
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

struct poold *registry_poold_find(const struct registry *r, const char *addr)
{
	struct poold *p;

	for (p = r->poolds; p; p = p->next)
		if (!strcmp(p->addr, addr))
			return p;
	return NULL;
}

struct client *registry_client_find(const struct registry *r, const char *id)
{
	struct client *c;

	for (c = r->clients; c; c = c->next)
		if (!strcmp(c->id, id))
			return c;
	return NULL;
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
	struct slot *s = &c->slots[slot];

	if (s->state != SLOT_EMPTY)
		registry_slot_clear(c, slot);
	s->state = SLOT_RESERVED;
	s->poold = p;
	s->handle = 0;
	p->chunks_used++;
}

void registry_slot_set_handle(struct client *c, uint32_t slot, uint64_t handle)
{
	struct slot *s = &c->slots[slot];

	if (s->state == SLOT_HELD)
		handle_del(s->poold, s->handle);
	s->state = SLOT_HELD;
	s->handle = handle;
	handle_add(s->poold, handle);
}

void registry_slot_clear(struct client *c, uint32_t slot)
{
	struct slot *s = &c->slots[slot];

	if (s->state == SLOT_EMPTY)
		return;
	if (s->state == SLOT_HELD)
		handle_del(s->poold, s->handle);
	s->poold->chunks_used--;
	s->state = SLOT_EMPTY;
	s->poold = NULL;
	s->handle = 0;
}

struct client *registry_client_add(struct registry *r, const char *id,
				   uint64_t size)
{
	uint32_t nslots = registry_slots_for(r, size);
	struct client *c, **pp;

	if (!nslots || !registry_valid_client_id(id))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->slots = calloc(nslots, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return NULL;
	}
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->size = size;
	c->nslots = nslots;
	for (pp = &r->clients; *pp && strcmp((*pp)->id, id) < 0; pp = &(*pp)->next)
		;
	c->next = *pp;
	*pp = c;
	r->nclients++;
	return c;
}

void registry_client_remove(struct registry *r, struct client *c)
{
	struct client **pp;
	uint32_t i;

	for (i = 0; i < c->nslots; i++)
		registry_slot_clear(c, i);
	for (pp = &r->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			r->nclients--;
			break;
		}
	}
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

int registry_tomb_add(struct poold *p, const char *client_id, uint32_t slot,
		      bool any_handle, uint64_t handle)
{
	struct tombstone *t;

	if (p->ntombs == RSWAP_MAX_TOMBS) {
		/* Forgetting the oldest only risks a chunk coming back as an
		 * incomplete client, which an admin can release. */
		memmove(p->tombs, p->tombs + 1, (p->ntombs - 1) * sizeof(*t));
		p->ntombs--;
	}
	t = realloc(p->tombs, (p->ntombs + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	p->tombs = t;
	t = &p->tombs[p->ntombs++];
	memset(t, 0, sizeof(*t));
	snprintf(t->client_id, sizeof(t->client_id), "%s", client_id);
	t->slot = slot;
	t->any_handle = any_handle;
	t->handle = handle;
	return 0;
}

static bool poold_tomb_match(const struct poold *p, const struct held_chunk *h)
{
	size_t i;

	for (i = 0; p && i < p->ntombs; i++) {
		const struct tombstone *t = &p->tombs[i];

		if (t->slot == h->slot && !strcmp(t->client_id, h->client_id) &&
		    (t->any_handle || t->handle == h->handle))
			return true;
	}
	return false;
}

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

/* Checks one held chunk against the report's rules and the known maps. */
static int check_held(const struct registry *r, const struct poold *existing,
		      const char *addr, const struct held_chunk *h,
		      char *why, size_t whylen)
{
	const struct client *c;
	const struct slot *s;
	uint32_t nslots;

	if (!registry_valid_client_id(h->client_id)) {
		snprintf(why, whylen, "poold %s reports a chunk with an invalid client id",
			 addr);
		return -EINVAL;
	}
	nslots = registry_slots_for(r, h->client_size);
	if (!nslots || h->slot >= nslots) {
		snprintf(why, whylen,
			 "poold %s reports client %s slot %" PRIu32 " of a %" PRIu64
			 "-byte pool, which has no such slot", addr, h->client_id,
			 h->slot, h->client_size);
		return -EINVAL;
	}
	c = registry_client_find(r, h->client_id);
	if (!c)
		return 0;
	if (c->size != h->client_size) {
		snprintf(why, whylen,
			 "poold %s reports client %s with pool size %" PRIu64
			 ", known size is %" PRIu64, addr, c->id, h->client_size,
			 c->size);
		return -EEXIST;
	}
	s = &c->slots[h->slot];
	if (s->state == SLOT_EMPTY)
		return 0;
	if (s->state == SLOT_HELD && s->poold == existing && s->handle == h->handle)
		return 0;
	snprintf(why, whylen,
		 "poold %s claims client %s slot %" PRIu32 ", already held by poold %s",
		 addr, c->id, h->slot, s->poold->addr);
	return -EEXIST;
}

static struct poold *poold_insert(struct registry *r, const char *addr)
{
	struct poold *p = calloc(1, sizeof(*p)), **pp;

	if (!p)
		return NULL;
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	for (pp = &r->poolds; *pp && strcmp((*pp)->addr, addr) < 0; pp = &(*pp)->next)
		;
	p->next = *pp;
	*pp = p;
	r->npoolds++;
	return p;
}

/* Forget the records of p that its registration did not report. */
static void drop_unreported(struct registry *r, struct poold *p,
			    const struct held_chunk **sorted, size_t n)
{
	struct client *c;
	uint32_t i;

	for (c = r->clients; c; c = c->next) {
		for (i = 0; i < c->nslots; i++) {
			struct slot *s = &c->slots[i];

			if (s->poold != p)
				continue;
			if (s->state == SLOT_HELD &&
			    held_reported(sorted, n, c->id, i, s->handle))
				continue;
			log_warn("poold %s came back without client %s slot %" PRIu32
				 " (handle %" PRIu64 "); that slot's data is lost",
				 p->addr, c->id, i, s->handle);
			registry_slot_clear(c, i);
		}
	}
}

int registry_poold_register(struct registry *r, const struct poold_report *rep,
			    uint64_t now_ms, struct poold **out,
			    size_t **to_free, size_t *nto_free,
			    char *why, size_t whylen)
{
	const struct held_chunk **keep = NULL;
	struct poold *p;
	size_t *frees = NULL;
	size_t i, nkeep = 0, nfree = 0;
	char a[16], b[16];
	int ret;

	*to_free = NULL;
	*nto_free = 0;
	if (!registry_valid_addr(rep->addr)) {
		snprintf(why, whylen,
			 "listen address is not HOST:PORT (printable, at most %d bytes)",
			 RSWAP_ADDR_MAX);
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
	if (rep->nchunks) {
		keep = calloc(rep->nchunks, sizeof(*keep));
		frees = calloc(rep->nchunks, sizeof(*frees));
		if (!keep || !frees) {
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
	for (i = 0; i < rep->nchunks; i++) {
		const struct held_chunk *h = &rep->chunks[i];
		bool orphan;

		ret = check_held(r, p, rep->addr, h, why, whylen);
		orphan = poold_tomb_match(p, h) ||
			 (!registry_client_find(r, h->client_id) &&
			  registry_released_has(r, h->client_id));
		/* A tombstoned chunk may clash with a newer owner: free it. */
		if (orphan && ret != -EINVAL) {
			frees[nfree++] = i;
			continue;
		}
		if (ret)
			goto out_free;
		keep[nkeep++] = h;
	}
	if (nkeep) {
		qsort(keep, nkeep, sizeof(*keep), cmp_held_slot);
		for (i = 1; i < nkeep; i++) {
			const struct held_chunk *x = keep[i - 1], *y = keep[i];

			if (strcmp(x->client_id, y->client_id))
				continue;
			if (x->slot == y->slot) {
				snprintf(why, whylen, "poold %s reports client %s slot %"
					 PRIu32 " twice", rep->addr, x->client_id, x->slot);
				ret = -EINVAL;
				goto out_free;
			}
			if (x->client_size != y->client_size) {
				snprintf(why, whylen, "poold %s reports client %s with two pool sizes",
					 rep->addr, x->client_id);
				ret = -EINVAL;
				goto out_free;
			}
		}
	}
	/* Point of no return: everything below only applies the report. */
	if (!p) {
		p = poold_insert(r, rep->addr);
		if (!p) {
			snprintf(why, whylen, "out of memory");
			ret = -ENOMEM;
			goto out_free;
		}
	} else {
		drop_unreported(r, p, keep, nkeep);
	}
	for (i = 0; i < nkeep; i++) {
		const struct held_chunk *h = keep[i];
		struct client *c = registry_client_find(r, h->client_id);

		if (!c)
			c = registry_client_add(r, h->client_id, h->client_size);
		if (!c) {
			/* Not adopted: it comes back at the next registration. */
			log_err("out of memory adopting client %s from poold %s",
				h->client_id, p->addr);
			continue;
		}
		if (c->slots[h->slot].state == SLOT_EMPTY) {
			registry_slot_assign(c, h->slot, p);
			registry_slot_set_handle(c, h->slot, h->handle);
		}
	}
	p->capacity = rep->capacity;
	p->chunks_total = (rep->capacity >> r->chunk_shift) > UINT32_MAX ?
			  UINT32_MAX : (uint32_t)(rep->capacity >> r->chunk_shift);
	p->connected = true;
	p->state = POOLD_ALIVE;
	p->last_heartbeat_ms = now_ms;
	p->chunks_reported = (uint32_t)rep->nchunks;
	free(p->tombs);
	p->tombs = NULL;
	p->ntombs = 0;
	*out = p;
	if (nfree) {
		*to_free = frees;
		*nto_free = nfree;
		frees = NULL;
	}
	ret = 0;
out_free:
	free(keep);
	free(frees);
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
	uint32_t i, missing = 0, listed = 0;
	size_t pos = 0;
	int down = 0;

	for (i = 0; i < c->nslots; i++)
		if (c->slots[i].state != SLOT_HELD)
			missing++;
	if (!missing || !why || !whylen)
		return missing;
	append(why, whylen, &pos, "client %s is incomplete: slot%s ", c->id,
	       missing > 1 ? "s" : "");
	for (i = 0; i < c->nslots; i++) {
		if (c->slots[i].state == SLOT_HELD)
			continue;
		if (listed == 8) {
			append(why, whylen, &pos, ",...");
			break;
		}
		append(why, whylen, &pos, "%s%" PRIu32, listed ? "," : "", i);
		listed++;
	}
	append(why, whylen, &pos, " of %" PRIu32 " not reported yet", c->nslots);
	for (p = r->poolds; p; p = p->next) {
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
