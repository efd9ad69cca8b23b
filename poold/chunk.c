// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * The chunk store: memory the coordinator allocated to clients.  Chunks are
 * mapped one by one (huge pages when the system has them reserved, normal
 * locked pages otherwise) so that a freed chunk goes straight back to the
 * kernel, which zeroes pages before it hands them to anyone again.
 */
#include "poold.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "rswap_util.h"

uint64_t poold_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void poold_chunks_init(struct poold *p)
{
	uint64_t r = 0;

	/*
	 * Handles are never reused within a process lifetime, and a random
	 * base makes a restarted poold very unlikely to repeat an old one: a
	 * stale handle held by a coordinator or client then names nothing.
	 */
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint64_t)time(NULL) << 32 ^ (uint64_t)clock();
	p->next_handle = (r & 0x7fffffffff000000ull) | 1;
}

static void *map_chunk(struct poold *p, uint64_t len, bool *huge)
{
	void *mem;

	/*
	 * Huge pages are tried on every allocation (a failing MAP_HUGETLB
	 * costs one syscall), so pages an operator reserves later get used.
	 */
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (mem != MAP_FAILED) {
		*huge = true;
		return mem;
	}
	if (!p->hugetlb_failed)
		log_info("no huge pages for a %llu-byte chunk (%s); using normal pages "
			 "(reserve some in /proc/sys/vm/nr_hugepages for less TLB "
			 "pressure); logged once", (unsigned long long)len,
			 strerror(errno));
	p->hugetlb_failed = true;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	/*
	 * Keep the pages resident while no client has them registered (an
	 * MR pins them only while it exists).  Failing that is not fatal.
	 */
	if (mlock(mem, len))
		log_debug("mlock of a chunk failed (%s); pages may be swapped out "
			  "while no client is connected", strerror(errno));
	*huge = false;
	return mem;
}

int poold_chunk_alloc(struct poold *p, const char *client_id, uint32_t slot,
		      uint64_t client_size, struct poold_chunk **out,
		      const char **why)
{
	struct poold_chunk *c;

	if (!p->chunk_size) {
		*why = "poold is not registered yet (no chunk size)";
		return -EAGAIN;
	}
	for (c = p->chunks; c; c = c->next) {
		if (c->slot == slot && !strcmp(c->client_id, client_id)) {
			*why = "this poold already holds that client's slot";
			return -EEXIST;
		}
	}
	if (p->used + p->chunk_size > p->set.capacity) {
		*why = "poold capacity exhausted";
		return -ENOSPC;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		*why = "out of memory for chunk bookkeeping";
		return -ENOMEM;
	}
	c->mem = map_chunk(p, p->chunk_size, &c->huge);
	if (!c->mem) {
		free(c);
		*why = "cannot map chunk memory (host out of memory?)";
		return -ENOMEM;
	}
	c->len = p->chunk_size;
	c->handle = p->next_handle++;
	snprintf(c->client_id, sizeof(c->client_id), "%s", client_id);
	c->slot = slot;
	c->client_size = client_size;
	c->born_ms = poold_now_ms();
	c->next = p->chunks;
	p->chunks = c;
	p->nchunks++;
	p->used += c->len;
	*out = c;
	return 0;
}

struct poold_chunk *poold_chunk_find(struct poold *p, uint64_t handle)
{
	struct poold_chunk *c;

	for (c = p->chunks; c; c = c->next)
		if (c->handle == handle)
			return c;
	return NULL;
}

void poold_chunk_free(struct poold *p, struct poold_chunk *c)
{
	struct poold_chunk **pp;

	/* No client may keep an rkey to memory that goes back to the kernel. */
	poold_rdma_revoke_chunk(p, c);
	for (pp = &p->chunks; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	/*
	 * munmap returns the pages to the kernel, which zeroes them before
	 * any reuse (by us or anyone): the next owner never sees this data.
	 */
	if (munmap(c->mem, c->len))
		log_warn("munmap of chunk %#llx failed: %s",
			 (unsigned long long)c->handle, strerror(errno));
	p->nchunks--;
	p->used -= c->len;
	free(c);
}

void poold_chunks_free_all(struct poold *p)
{
	while (p->chunks)
		poold_chunk_free(p, p->chunks);
}
