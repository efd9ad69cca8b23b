/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Front-end agnostic routing core: a swap byte offset names a slot
 * (offset >> chunk_shift), the slot's placement names the poold sessions
 * that hold the chunk's copies, their remote addresses and rkeys.  The
 * block and frontswap front-ends both route through it.
 *
 * The map.  Each slot publishes its placement (struct rswap_place: the
 * map epoch it was installed at and its replicas) under RCU; the I/O path
 * reads it in rcu_read_lock() and takes no lock.  A placement changes
 * only by replacement (a chunk move starts, switches or aborts, under
 * rswap_rdma's map_lock): publish the new one, synchronize_rcu(), wait
 * until no request posted under the old one is in flight (inflight), free
 * it.  A replica's addr and rkey are written in place only by a
 * (re)connect of its session, while that session is not LIVE and no
 * request can use them.  The DRAM backend has no placements.
 *
 * Copies (replicas=N).  A slot has N copies on distinct poolds, rep[0 ..
 * nr - 1]; a copy keeps its index in every placement of the slot (a
 * move's switch puts its target in the place of the copy it replaces),
 * so per-copy state lives in the slot, by index: stale (the copy missed
 * a write: reads avoid it, writes skip it and dirty the pages) and gone
 * (its poold lost the memory).  A copy turns stale only when another
 * copy took the write it missed, so some copy is always in sync until
 * every copy is gone: then the slot is lost.  Stale bits are set from
 * any context; they are cleared (and the dirty pages forgotten) only by
 * a move's switch, under map_lock, while no write is in flight.
 */
#ifndef RSWAP_CLT_CORE_H
#define RSWAP_CLT_CORE_H

#include <linux/types.h>
#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/rcupdate.h>
#include <asm/page.h>

/* Copies of a chunk a host may ask for (replicas=). */
#define RSWAP_MAX_COPIES	3
/* Replicas a placement names: the copies, and a move's target. */
#define RSWAP_MAX_REPLICAS	(RSWAP_MAX_COPIES + 1)

struct rswap_sess;
struct rswap_move;

/* One copy of a chunk. */
struct rswap_replica {
	struct rswap_sess *sess;
	u64 handle;			/* the coordinator's chunk handle */
	u64 addr;			/* remote address of the chunk */
	u32 rkey;
};

/*
 * A slot's placement at one map epoch: its copies rep[0 .. nr - 1] and,
 * while a move fills it (move set), the move's target rep[nr].  Reads go
 * to one copy in sync; writes to every copy in sync and to the target.
 */
struct rswap_place {
	u64 epoch;
	unsigned int nr;		/* copies */
	struct rswap_replica rep[RSWAP_MAX_REPLICAS];
	struct rswap_move *move;
	atomic_t inflight;		/* requests posted under it, not ended */
};

struct rswap_slot {
	struct rswap_place __rcu *place;	/* NULL on the DRAM backend */
	unsigned long stale;		/* bit r: copy r is not in sync */
	unsigned long gone;		/* bit r: copy r's memory is gone */
	/*
	 * replicas > 1: a bit per page written while a copy was stale, so
	 * that a copy back from a blip gets only those pages again.
	 */
	unsigned long *dirty;
	/*
	 * No copy in sync (every poold holding it lost the memory): every
	 * read and write of it fails with an I/O error from then on, never
	 * zeroes or stale data.  Set once (WRITE_ONCE), never cleared.
	 */
	bool lost;
};

struct rswap_core {
	u64 size;		/* bytes the front-end exposes */
	u64 chunk_size;		/* power of two */
	unsigned int chunk_shift;
	u32 nslots;		/* DIV_ROUND_UP(size, chunk_size) */
	unsigned int replicas;	/* copies per slot */
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
/* May sleep.  Give every slot its dirty page bitmap; 0 or -ENOMEM. */
int rswap_core_track_dirty(struct rswap_core *core);
void rswap_core_free(struct rswap_core *core);

/* Any context.  The pages of [off, off + len) of the slot were written. */
static inline void rswap_slot_dirty(const struct rswap_core *core,
				    struct rswap_slot *slot, u64 off, u32 len)
{
	unsigned long p, last;

	if (!slot->dirty || !len)
		return;
	last = (off + len - 1) >> PAGE_SHIFT;
	for (p = off >> PAGE_SHIFT; p <= last; p++)
		set_bit(p, slot->dirty);
}

/* Copies 0 .. nr - 1 as a mask. */
static inline unsigned long rswap_copies_mask(unsigned int nr)
{
	return (1ul << nr) - 1;
}

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
