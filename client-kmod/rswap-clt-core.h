/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Front-end agnostic routing core: a swap byte offset names a slot
 * (offset >> chunk_shift), the slot names the poold session that holds the
 * chunk, the chunk's remote address and its rkey.  The block front-end
 * uses it today; a frontswap front-end will sit on the same core.
 *
 * The map is built once at load, before any front-end exists.  Afterwards
 * only a reconnect changes a slot: it writes addr and rkey (new MRs on the
 * poold) while the session is not LIVE and no I/O can read them, or marks
 * the slot lost for good.  The I/O path reads it without locks.
 */
#ifndef RSWAP_CLT_CORE_H
#define RSWAP_CLT_CORE_H

#include <linux/types.h>
#include <linux/atomic.h>

struct rswap_sess;

struct rswap_slot {
	struct rswap_sess *sess;	/* NULL on the DRAM backend */
	u64 handle;			/* the coordinator's chunk handle */
	u64 addr;			/* remote address of the chunk */
	u32 rkey;
	/*
	 * Its poold lost the chunk (restarted): every read and write of it
	 * fails with an I/O error from then on, never zeroes or stale data.
	 * Set once (WRITE_ONCE), never cleared.
	 */
	bool lost;
};

struct rswap_core {
	u64 size;		/* bytes the front-end exposes */
	u64 chunk_size;		/* power of two */
	unsigned int chunk_shift;
	u32 nslots;		/* DIV_ROUND_UP(size, chunk_size) */
	struct rswap_slot *slots;
};

/* I/O statistics, shared by all front-ends and backends. */
enum rswap_err_kind {
	RSWAP_ERR_IO,		/* failed work completion or backend error */
	RSWAP_ERR_NOMEM,	/* DRAM backend could not get a page */
	RSWAP_ERR_BUSY,		/* send queue full, request retried later */
	RSWAP_ERR_RANGE,	/* request past the end or across a chunk */
	RSWAP_ERR_POST,		/* posting the work request failed */
	RSWAP_ERR_LOST,		/* its chunk was lost (poold restarted) */
	RSWAP_ERR_DOWN,		/* its poold down for longer than fail_io_tmo */
	RSWAP_ERR_KINDS,
};

struct rswap_stats {
	atomic64_t reads;
	atomic64_t writes;
	atomic64_t discards;
	atomic64_t bytes_read;
	atomic64_t bytes_written;
	atomic64_t errors[RSWAP_ERR_KINDS];
	atomic_t inflight;
};

extern const char *const rswap_err_names[RSWAP_ERR_KINDS];

/* May sleep.  0 or -errno; chunk_size must be a power of two. */
int rswap_core_init(struct rswap_core *core, u64 size, u64 chunk_size);
void rswap_core_free(struct rswap_core *core);

/*
 * The slot holding [off, off + len), or NULL if the range leaves the device
 * or crosses a chunk boundary.  *chunk_off is the offset inside the chunk.
 * Never sleeps.
 */
static inline struct rswap_slot *
rswap_core_route(const struct rswap_core *core, u64 off, u32 len,
		 u64 *chunk_off)
{
	u64 idx = off >> core->chunk_shift;

	if (off >= core->size || len > core->size - off)
		return NULL;
	if (((off + len - 1) >> core->chunk_shift) != idx)
		return NULL;
	*chunk_off = off & (core->chunk_size - 1);
	return &core->slots[idx];
}

void rswap_stats_account(struct rswap_stats *st, bool write, u32 bytes);

#endif /* RSWAP_CLT_CORE_H */
