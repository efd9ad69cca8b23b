// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA backend, live chunk moves: the coordinator allocated a chunk on
 * another poold (the target) and asks us (MoveChunk) to move one slot's
 * chunk there while swap goes on.  One move at a time, in rswap_rdma's
 * move_work:
 *
 *   1. Reach the target: a session to it (connected now if it is a poold
 *      we had no chunk on), reconnected if needed so that it registers
 *      and lists the new chunk.
 *   2. Publish the moving placement {old, new}: writes go to both copies
 *      from now on (a block write ends when both have it), reads to the
 *      old one.  Wait until no request posted under the old placement is
 *      in flight: no write can reach the old copy alone any more.
 *   3. Copy window by window (RSWAP_MOVE_WRS operations of up to
 *      RSWAP_SGE_MAX pages): hold new writes to the window, wait for the
 *      writes to it in flight, READ it from the old copy and WRITE it to
 *      the new one (each operation's WRITE posted as its READ completes),
 *      release the held writes (they go to both).  So a window's copy
 *      never overwrites a newer write on the target.
 *   4. Switch: publish the placement {new} at the move's epoch, wait until
 *      nothing posted under the moving one is in flight, and tell the
 *      coordinator (MoveDone, switched): only then may it free the old
 *      copy, which revokes its rkey.
 *
 * Any failure -- the target's session fails or its chunk is gone, a
 * write to it fails, the old copy's poold is down past fail_io_tmo or
 * lost our memory, module unload -- aborts: publish {old} again, wait the
 * same way, MoveDone with switched = false; the coordinator frees the
 * target.  A read of the old copy that fails while its session
 * reconnects is retried once it is back.  No page is ever lost by a move:
 * until the switch the old copy has every write; after it, the new one.
 *
 * Lock order: map_lock (placements, rdma->move) before move->lock
 * (irq-safe: completions and queue_rq take it).  The work sleeps; it
 * runs with memalloc_noio_save(): swap may be waiting on it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/log2.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "rswap-clt-rdma.h"

/* Attempts to copy one window before the move gives up. */
#define RSWAP_MOVE_TRIES	8

/* ---- placements ------------------------------------------------------------ */

/* Sleeps (GFP_NOIO).  A copy of from, counting nothing in flight. */
struct rswap_place *rswap_place_alloc(const struct rswap_place *from)
{
	struct rswap_place *place;

	place = kmalloc(sizeof(*place), GFP_NOIO);
	if (!place)
		return NULL;
	*place = *from;
	place->move = NULL;
	atomic_set(&place->inflight, 0);
	return place;
}

/*
 * Sleeps; called with map_lock held, which it drops.  Publish place for
 * the slot, then wait until no request uses the old placement -- none
 * sees it after a grace period, none posted under it is in flight -- and
 * free it.  Requests in flight end on their own (or flushed by a
 * session's recovery), so this ends.
 */
void rswap_place_replace(struct rswap_dev *dev, struct rswap_slot *slot,
			 struct rswap_place *place)
{
	struct rswap_rdma *rdma = dev->rdma;
	struct rswap_place *old = rswap_slot_place(dev, slot);

	rcu_assign_pointer(slot->place, place);
	mutex_unlock(&rdma->map_lock);
	synchronize_rcu();
	wait_event(rdma->place_wq, !atomic_read(&old->inflight));
	kfree(old);
}

/* ---- the write side, from the I/O path --------------------------------------- */

/*
 * Atomic context, under rcu_read_lock().  A block write of [off, off +
 * len) of the moving chunk: hold it (true; it is dispatched again when
 * its window is copied) if its window is being copied, else count it in
 * its windows until it ends (rswap_move_write_end()).
 */
bool rswap_move_hold(struct rswap_move *mv, struct rswap_cmd *cmd, u64 off,
		     u32 len)
{
	u32 w0 = off >> mv->win_shift, w1 = (off + len - 1) >> mv->win_shift;
	unsigned long flags;

	spin_lock_irqsave(&mv->lock, flags);
	if (mv->win == w0 || mv->win == w1 || mv->win == RSWAP_MOVE_ALL_WIN) {
		list_add_tail(&cmd->park, &mv->held);
		WRITE_ONCE(cmd->parked, true);
		spin_unlock_irqrestore(&mv->lock, flags);
		return true;
	}
	mv->writes[w0]++;
	if (w1 != w0)
		mv->writes[w1]++;
	mv->writes_total++;
	cmd->win[0] = w0;
	cmd->win[1] = w1;
	cmd->counted = true;
	spin_unlock_irqrestore(&mv->lock, flags);
	return false;
}

/* Any context.  A write counted by rswap_move_hold() ended or waits. */
void rswap_move_write_end(struct rswap_move *mv, struct rswap_cmd *cmd)
{
	unsigned long flags;
	bool wake = false;

	spin_lock_irqsave(&mv->lock, flags);
	if (!--mv->writes[cmd->win[0]] && mv->win == cmd->win[0])
		wake = true;
	if (cmd->win[1] != cmd->win[0] &&
	    !--mv->writes[cmd->win[1]] && mv->win == cmd->win[1])
		wake = true;
	if (!--mv->writes_total && mv->win == RSWAP_MOVE_ALL_WIN)
		wake = true;
	cmd->counted = false;
	spin_unlock_irqrestore(&mv->lock, flags);
	if (wake)
		wake_up_all(&mv->wq);
}

/* Any context.  The move cannot complete; the first reason is kept. */
void rswap_move_fail(struct rswap_move *mv, int err, const char *why)
{
	unsigned long flags;

	spin_lock_irqsave(&mv->lock, flags);
	if (!mv->error) {
		mv->error = err;
		strscpy(mv->reason, why, sizeof(mv->reason));
	}
	spin_unlock_irqrestore(&mv->lock, flags);
	wake_up_all(&mv->wq);
}

/* Under map_lock: the target's chunk table lists the new chunk. */
void rswap_move_target_found(struct rswap_move *mv, u64 addr, u32 rkey)
{
	mv->to_addr = addr;
	mv->to_rkey = rkey;
	mv->to_found = true;
}

static int rswap_move_error(struct rswap_move *mv)
{
	unsigned long flags;
	int err;

	spin_lock_irqsave(&mv->lock, flags);
	err = mv->error;
	spin_unlock_irqrestore(&mv->lock, flags);
	return err;
}

/*
 * Process context.  Open or close window win for copying (RSWAP_MOVE_NO_WIN:
 * none); the writes held on the window closed are dispatched again.
 */
static void rswap_move_set_win(struct rswap_move *mv, u32 win)
{
	struct rswap_cmd *cmd, *next;
	unsigned long flags;
	LIST_HEAD(list);

	spin_lock_irqsave(&mv->lock, flags);
	mv->win = win;
	list_splice_init(&mv->held, &list);
	list_for_each_entry(cmd, &list, park)
		WRITE_ONCE(cmd->parked, false);
	spin_unlock_irqrestore(&mv->lock, flags);
	list_for_each_entry_safe(cmd, next, &list, park) {
		list_del_init(&cmd->park);
		rswap_blk_requeue(mv->dev, blk_mq_rq_from_pdu(cmd));
	}
}

static bool rswap_move_win_idle(struct rswap_move *mv, u32 win)
{
	unsigned long flags;
	bool idle;

	spin_lock_irqsave(&mv->lock, flags);
	if (win == RSWAP_MOVE_ALL_WIN)
		idle = !mv->writes_total;
	else
		idle = !mv->writes[win] || mv->error;
	spin_unlock_irqrestore(&mv->lock, flags);
	return idle;
}

/* ---- copying ------------------------------------------------------------------- */

/*
 * Any context.  Post an operation's READ (from the source copy) or WRITE
 * (to the target) at its offset.  0 or -errno (nothing posted), as
 * rswap_rdma_post_rep().
 */
static int rswap_move_post(struct rswap_move_op *op, bool write)
{
	struct rswap_move *mv = op->move;
	struct rswap_slot *slot = &mv->dev->core.slots[mv->slot];
	struct rswap_place *place;
	int ret;

	op->req.write = write;
	rcu_read_lock();
	place = rcu_dereference(slot->place);
	ret = rswap_rdma_post_rep(mv->dev, &op->req,
				  &place->rep[write ? place->nr :
						      READ_ONCE(mv->src)],
				  op->off, 0);
	rcu_read_unlock();
	return ret;
}

/*
 * Under rcu_read_lock() or map_lock.  A copy in sync the move can read
 * from: the one it replaces if that is LIVE, else another LIVE one, else
 * one reconnecting, else one down; -1 if none is in sync.
 */
static int rswap_move_pick_src(struct rswap_move *mv, struct rswap_slot *slot,
			       struct rswap_place *place)
{
	unsigned long stale = READ_ONCE(slot->stale);
	int r, rank, best = -1, best_rank = 4;

	for (r = 0; r < place->nr; r++) {
		if (stale & BIT(r))
			continue;
		switch (rswap_sess_state(place->rep[r].sess)) {
		case RSWAP_SESS_LIVE:
			rank = r == mv->from ? 0 : 1;
			break;
		case RSWAP_SESS_CONNECTING:
		case RSWAP_SESS_RECONNECTING:
			rank = 2;
			break;
		default:
			rank = 3;
			break;
		}
		if (rank < best_rank) {
			best = r;
			best_rank = rank;
		}
	}
	return best;
}

/*
 * Sleeps.  Before a window is copied: the source must still be in sync
 * (a write it missed would be copied over a newer one on the target);
 * else read from another copy.  0, or -errno with the move failed.
 */
static int rswap_move_check_src(struct rswap_move *mv, struct rswap_slot *slot)
{
	int src;

	if (!test_bit(mv->src, &slot->stale))
		return 0;
	rcu_read_lock();
	src = rswap_move_pick_src(mv, slot, rcu_dereference(slot->place));
	rcu_read_unlock();
	if (src < 0) {
		rswap_move_fail(mv, -EIO, "no copy in sync is left to copy from");
		return -EIO;
	}
	WRITE_ONCE(mv->src, src);
	return 0;
}

/* Softirq (CQ): one step (READ or WRITE) of a copy operation ended. */
static void rswap_move_op_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rswap_move_op *op = container_of(wc->wr_cqe,
						struct rswap_move_op, req.cqe);
	struct rswap_move *mv = op->move;
	bool write = op->req.write;

	rswap_rdma_unmap(&op->req);
	if (wc->status != IB_WC_SUCCESS) {
		if (wc->status != IB_WC_WR_FLUSH_ERR) {
			atomic64_inc(&op->req.sess->errors);
			rswap_sess_err_rl(op->req.sess, "move of slot %u: %s failed: %s\n",
					  mv->slot, write ? "WRITE" : "READ",
					  ib_wc_status_msg(wc->status));
			rswap_sess_error_recovery(op->req.sess);
		}
		WRITE_ONCE(mv->op_error, -EIO);
		WRITE_ONCE(mv->op_target, write);
		WRITE_ONCE(mv->ops_stop, true);
	} else if (!write && !READ_ONCE(mv->ops_stop) &&
		   rswap_move_post(op, true)) {
		/* The READ succeeded: WRITE the same pages to the new copy. */
		WRITE_ONCE(mv->op_error, -EIO);
		WRITE_ONCE(mv->op_target, true);
		WRITE_ONCE(mv->ops_stop, true);
	} else if (!write && !READ_ONCE(mv->ops_stop)) {
		return;		/* the WRITE is posted: it ends the op */
	}
	if (atomic_dec_and_test(&mv->ops_left))
		wake_up_all(&mv->wq);
}

/*
 * The pages operation k of window win copies: all of its share of the
 * window, or for a resync the span from its first to its last dirty
 * page (0 pages: nothing to copy).  *first: the window page it starts at.
 */
static unsigned int rswap_move_op_span(struct rswap_move *mv,
				       struct rswap_slot *slot, u32 win,
				       unsigned int k, unsigned int *first)
{
	unsigned int op_pages = mv->nr_pages / RSWAP_MOVE_WRS;
	unsigned long base = ((unsigned long)win << mv->win_shift >>
			      PAGE_SHIFT) + k * op_pages;
	unsigned long lo, hi, p;

	*first = k * op_pages;
	if (!mv->resync)
		return op_pages;
	lo = find_next_bit(slot->dirty, base + op_pages, base);
	if (lo >= base + op_pages)
		return 0;
	for (hi = lo, p = lo; p < base + op_pages; p++) {
		if (test_bit(p, slot->dirty)) {
			hi = p;
			mv->dirty_pages++;
		}
	}
	*first += lo - base;
	return hi - lo + 1;
}

/*
 * Sleeps.  Copy one window: every operation READs its pages from the
 * source copy and, from that READ's completion, WRITEs them to the
 * target.  0, -EAGAIN (the source's session is reconnecting, or a READ
 * failed: try the window again once a source is back), or another
 * -errno with the move failed.
 */
static int rswap_move_copy(struct rswap_move *mv, struct rswap_slot *slot,
			   u32 win)
{
	unsigned int k, p, n, first;
	u64 bytes = 0;
	int ret = 0;

	mv->op_error = 0;
	mv->ops_stop = false;
	atomic_set(&mv->ops_left, 1);	/* ours, until all are posted */
	for (k = 0; k < RSWAP_MOVE_WRS; k++) {
		struct rswap_move_op *op = &mv->ops[k];

		n = rswap_move_op_span(mv, slot, win, k, &first);
		if (!n)
			continue;
		op->off = ((u64)win << mv->win_shift) + (u64)first * PAGE_SIZE;
		sg_init_table(op->sg, n);
		for (p = 0; p < n; p++)
			sg_set_page(&op->sg[p], mv->pages[first + p],
				    PAGE_SIZE, 0);
		op->move = mv;
		op->req.cqe.done = rswap_move_op_done;
		op->req.sg = op->sg;
		op->req.sge = op->sge;
		op->req.nents = n;
		bytes += (u64)n * PAGE_SIZE;
		for (;;) {
			atomic_inc(&mv->ops_left);
			ret = rswap_move_post(op, false);
			if (!ret)
				break;
			atomic_dec(&mv->ops_left);
			if (ret != -EBUSY)
				break;
			usleep_range(200, 400);	/* send queue full */
		}
		if (ret) {
			WRITE_ONCE(mv->ops_stop, true);
			break;
		}
	}
	if (!atomic_dec_and_test(&mv->ops_left))
		wait_event(mv->wq, !atomic_read(&mv->ops_left));
	if (!ret && READ_ONCE(mv->op_error))
		ret = READ_ONCE(mv->op_target) ? -EIO : -EAGAIN;
	if (!ret)
		atomic64_add(bytes, &mv->copied);
	if (ret == -EIO)
		rswap_move_fail(mv, -EIO, "a copy write to the target failed");
	if (ret == -ENOTCONN)
		rswap_move_fail(mv, -ENOTCONN,
				"the old copy's poold is down past fail_io_tmo");
	return ret;
}

/* Sleeps.  Copy one window; 0 or -errno with the move failed. */
static int rswap_move_window(struct rswap_move *mv, struct rswap_slot *slot,
			     u32 win)
{
	unsigned long first = (unsigned long)win << mv->win_shift >> PAGE_SHIFT;
	struct rswap_place *place;
	struct rswap_sess *from;
	unsigned int tries;
	int ret, src;

	/*
	 * A resync skips a window nothing was written to while its copy was
	 * stale: every write since went to the copy too.
	 */
	if (mv->resync &&
	    find_next_bit(slot->dirty, first + mv->nr_pages, first) >=
	    first + mv->nr_pages)
		return rswap_move_error(mv);
	rswap_move_set_win(mv, win);
	wait_event(mv->wq, rswap_move_win_idle(mv, win));
	for (tries = 0; tries < RSWAP_MOVE_TRIES; tries++) {
		if (rswap_move_error(mv))
			break;
		if (READ_ONCE(slot->lost)) {
			rswap_move_fail(mv, -EIO, "every copy was lost");
			break;
		}
		if (rswap_move_check_src(mv, slot))
			break;
		ret = rswap_move_copy(mv, slot, win);
		if (ret == -EAGAIN) {
			/* Read from another copy in sync, or wait for one. */
			rcu_read_lock();
			place = rcu_dereference(slot->place);
			src = rswap_move_pick_src(mv, slot, place);
			from = src < 0 ? NULL : place->rep[src].sess;
			rcu_read_unlock();
			if (src < 0) {
				rswap_move_fail(mv, -EIO, "no copy in sync is left to copy from");
				break;
			}
			WRITE_ONCE(mv->src, src);
			if (rswap_sess_wait_ready(from))
				rswap_move_fail(mv, -ENOTCONN,
						"the source copy's poold is down past fail_io_tmo");
			continue;
		}
		break;
	}
	if (tries == RSWAP_MOVE_TRIES)
		rswap_move_fail(mv, -EIO, "reading the old copy kept failing");
	rswap_move_set_win(mv, RSWAP_MOVE_NO_WIN);
	return rswap_move_error(mv);
}

/* ---- the move work ----------------------------------------------------------- */

static void rswap_move_free(struct rswap_move *mv)
{
	unsigned int i;

	for (i = 0; mv->pages && i < mv->nr_pages; i++)
		if (mv->pages[i])
			__free_page(mv->pages[i]);
	kfree(mv->pages);
	kvfree(mv->ops);
	kvfree(mv->writes);
	kfree(mv);
}

/* Sleeps.  Get the target session to list the new chunk. */
static int rswap_move_reach(struct rswap_move *mv, const char *to_poold)
{
	struct rswap_dev *dev = mv->dev;
	struct rswap_sess *sess;
	bool found;
	int ret;

	sess = rswap_sess_get(dev, to_poold);
	if (IS_ERR(sess)) {
		rswap_move_fail(mv, PTR_ERR(sess), "too many poolds");
		return PTR_ERR(sess);
	}
	mutex_lock(&dev->rdma->map_lock);
	mv->to = sess;
	mutex_unlock(&dev->rdma->map_lock);
	/* A first connect lists it; a live session learns it by reconnecting. */
	if (!sess->ever_live || sess->idle)
		ret = rswap_sess_open(sess);
	else
		ret = rswap_sess_refresh(sess);
	mutex_lock(&dev->rdma->map_lock);
	found = mv->to_found;
	mutex_unlock(&dev->rdma->map_lock);
	if (ret) {
		rswap_move_fail(mv, -ENOTCONN, "the target poold is unreachable");
		return -ENOTCONN;
	}
	if (!found) {
		rswap_move_fail(mv, -ENOENT, "the target poold does not list the new chunk");
		return -ENOENT;
	}
	return 0;
}

/*
 * Sleeps; map_lock held, dropped.  End the move on the slot: switched
 * (the new copy alone) or not (the old one alone), whichever placement
 * is published now.
 */
static void rswap_move_end(struct rswap_move *mv, struct rswap_slot *slot,
			   struct rswap_place *next)
{
	rswap_place_replace(mv->dev, slot, next);
	/* Nothing can be held any more: no placement names the move. */
	rswap_move_set_win(mv, RSWAP_MOVE_NO_WIN);
}

/*
 * Under map_lock, no write in flight.  The switch: the target takes the
 * place of the copy it replaces, in sync.  With no copy stale any more,
 * the pages written meanwhile are forgotten.
 */
static void rswap_move_switch(struct rswap_move *mv, struct rswap_slot *slot,
			      struct rswap_place *moving,
			      struct rswap_place *next)
{
	struct rswap_rdma *rdma = mv->dev->rdma;

	next->rep[mv->from] = moving->rep[moving->nr];
	clear_bit(mv->from, &slot->gone);
	clear_bit(mv->from, &slot->stale);
	if (slot->dirty && !(READ_ONCE(slot->stale) &
			     rswap_copies_mask(moving->nr)))
		bitmap_zero(slot->dirty,
			    mv->dev->core.chunk_size >> PAGE_SHIFT);
	if (mv->resync)
		return;
	next->epoch = mv->epoch;
	rdma->epoch = mv->epoch;
}

static void rswap_resync_done(struct rswap_dev *dev, struct rswap_move *mv,
			      bool switched);

static void rswap_move_work(struct work_struct *work)
{
	struct rswap_rdma *rdma = container_of(work, struct rswap_rdma,
					       move_work);
	struct rswap_dev *dev = rdma->dev;
	struct rswap_move *mv = rdma->move;
	struct rswap_slot *slot = &dev->core.slots[mv->slot];
	struct rswap_pb_move_done done = {};
	struct rswap_place *cur, *moving = NULL, *next;
	struct rswap_sess *from = NULL;
	bool switched = false;
	unsigned int noio;
	u32 win;
	int src;

	noio = memalloc_noio_save();
	if (!mv->resync && rswap_move_reach(mv, mv->to_poold))
		goto out_done;

	/* 2. Writes to the copies and the target from now on. */
	mutex_lock(&rdma->map_lock);
	cur = rswap_slot_place(dev, slot);
	src = rswap_move_pick_src(mv, slot, cur);
	moving = src < 0 ? NULL : rswap_place_alloc(cur);
	if (!moving) {
		mutex_unlock(&rdma->map_lock);
		if (src < 0)
			rswap_move_fail(mv, -EIO, "no copy in sync to copy from");
		else
			rswap_move_fail(mv, -ENOMEM, "out of memory");
		goto out_done;
	}
	mv->src = src;
	if (mv->resync) {
		/* The stale copy itself, as its session has it now. */
		mv->to = cur->rep[mv->from].sess;
		moving->rep[cur->nr] = cur->rep[mv->from];
	} else {
		moving->rep[cur->nr].sess = mv->to;
		moving->rep[cur->nr].handle = mv->to_handle;
		moving->rep[cur->nr].addr = mv->to_addr;
		moving->rep[cur->nr].rkey = mv->to_rkey;
	}
	moving->move = mv;
	mv->copy_started = jiffies;
	rswap_place_replace(dev, slot, moving);

	/* 3. Copy. */
	for (win = 0; win < mv->nwin; win++) {
		if (rswap_move_window(mv, slot, win))
			break;
		if (READ_ONCE(rdma->move_delay_ms))
			msleep(READ_ONCE(rdma->move_delay_ms));
	}

	/*
	 * 4. Switch, or go back.  Hold every write and let those in flight
	 * end first: one whose write to the target fails after the last
	 * window was copied must still turn the switch into an abort.
	 */
	rswap_move_set_win(mv, RSWAP_MOVE_ALL_WIN);
	wait_event(mv->wq, rswap_move_win_idle(mv, RSWAP_MOVE_ALL_WIN));
	mutex_lock(&rdma->map_lock);
	/* Keep writing the target too until memory is back: nothing is lost. */
	while (!(next = rswap_place_alloc(rswap_slot_place(dev, slot)))) {
		mutex_unlock(&rdma->map_lock);
		msleep(20);
		mutex_lock(&rdma->map_lock);
	}
	moving = rswap_slot_place(dev, slot);
	if (!rswap_move_error(mv)) {
		from = moving->rep[mv->from].sess;
		rswap_move_switch(mv, slot, moving, next);
		switched = true;
	}
	rswap_move_end(mv, slot, next);
	/* Nothing of ours left on a poold: let its session go idle. */
	if (switched && !mv->resync && !rswap_sess_chunks(from))
		rswap_sess_error_recovery(from);
	if (!switched && !mv->resync && !rswap_sess_chunks(mv->to))
		rswap_sess_error_recovery(mv->to);

out_done:
	if (mv->resync) {
		rswap_resync_done(dev, mv, switched);
		goto out_free;
	}
	if (switched) {
		atomic64_inc(&rdma->moves_done);
		atomic64_add(dev->core.chunk_size, &rdma->bytes_moved);
		rswap_info(dev, "slot %u moved to poold %s in %u ms (copy %u ms, epoch %llu)\n",
			   mv->slot, mv->to->addr_str,
			   jiffies_to_msecs(jiffies - mv->started),
			   jiffies_to_msecs(jiffies - mv->copy_started), mv->epoch);
	} else {
		atomic64_inc(&rdma->moves_failed);
		rswap_warn(dev, "move of slot %u to poold %s aborted after %llu bytes: %s; it stays where it was\n",
			   mv->slot, mv->to_poold,
			   (u64)atomic64_read(&mv->copied), mv->reason);
	}
	done.slot = mv->slot;
	done.to_handle = mv->to_handle;
	done.switched = switched;
	done.copied = atomic64_read(&mv->copied);
	done.code = switched ? 0 : -mv->error;
	done.reason = switched ? NULL : mv->reason;
	rswap_coord_move_done(dev, &done);

out_free:
	mutex_lock(&rdma->map_lock);
	rdma->move = NULL;
	mutex_unlock(&rdma->map_lock);
	rswap_move_free(mv);
	memalloc_noio_restore(noio);
	/* Another stale copy may be waiting. */
	if (dev->core.replicas > 1)
		rswap_resync_kick(dev);
}

/* ---- start, cancel ------------------------------------------------------------- */

void rswap_move_init(struct rswap_rdma *rdma)
{
	INIT_WORK(&rdma->move_work, rswap_move_work);
}

static int rswap_move_alloc_buffers(struct rswap_move *mv, gfp_t gfp)
{
	struct rswap_dev *dev = mv->dev;
	unsigned int op_pages, i;
	u64 win_bytes;

	/* An operation takes as many pages as one work request has SGEs. */
	op_pages = rounddown_pow_of_two(clamp_t(unsigned int,
						dev->max_segments, 1,
						RSWAP_SGE_MAX));
	win_bytes = (u64)op_pages * RSWAP_MOVE_WRS * PAGE_SIZE;
	while (win_bytes > dev->core.chunk_size) {
		op_pages /= 2;
		win_bytes /= 2;
	}
	if (!op_pages)
		return -EINVAL;
	mv->win_shift = ilog2(win_bytes);
	mv->nwin = dev->core.chunk_size >> mv->win_shift;
	mv->nr_pages = op_pages * RSWAP_MOVE_WRS;
	mv->writes = kvcalloc(mv->nwin, sizeof(*mv->writes), gfp);
	mv->pages = kcalloc(mv->nr_pages, sizeof(*mv->pages), gfp);
	mv->ops = kvcalloc(RSWAP_MOVE_WRS, sizeof(*mv->ops), gfp);
	if (!mv->writes || !mv->pages || !mv->ops)
		return -ENOMEM;
	for (i = 0; i < mv->nr_pages; i++) {
		mv->pages[i] = alloc_page(gfp);
		if (!mv->pages[i])
			return -ENOMEM;
	}
	return 0;
}

/* Sleeps.  A move of slot with its copy buffers, or NULL. */
static struct rswap_move *rswap_move_alloc(struct rswap_dev *dev, u32 slot,
					   gfp_t gfp)
{
	struct rswap_move *mv;

	mv = kzalloc(sizeof(*mv), gfp);
	if (!mv)
		return NULL;
	mv->dev = dev;
	mv->slot = slot;
	spin_lock_init(&mv->lock);
	mv->win = RSWAP_MOVE_NO_WIN;
	INIT_LIST_HEAD(&mv->held);
	init_waitqueue_head(&mv->wq);
	mv->started = jiffies;
	if (rswap_move_alloc_buffers(mv, gfp)) {
		rswap_move_free(mv);
		return NULL;
	}
	return mv;
}

/*
 * Under map_lock.  Can the move a MoveChunk asks for start?  0 with
 * mv->from set (the copy it replaces), or -errno with *why set.
 */
static int rswap_move_check(struct rswap_dev *dev, struct rswap_move *mv,
			    struct rswap_place *place, const char **why)
{
	struct rswap_slot *slot = &dev->core.slots[mv->slot];
	unsigned int r;

	if (dev->rdma->move) {
		*why = "another move or a resync is under way";
		return -EBUSY;
	}
	if (READ_ONCE(slot->lost)) {
		*why = "the slot is lost";
		return -EIO;
	}
	for (r = 0; r < place->nr; r++)
		if (place->rep[r].handle == mv->from_handle)
			break;
	if (r == place->nr) {
		*why = "the client has no copy of the slot with that handle";
		return -ESTALE;
	}
	mv->from = r;
	if (mv->epoch <= dev->rdma->epoch) {
		*why = "the move's epoch is not newer than the client's map";
		return -ESTALE;
	}
	/*
	 * Copies stay on distinct poolds; the one replaced may share the
	 * target's poold only if its memory is gone there (the poold came
	 * back empty and takes the new copy).
	 */
	for (r = 0; r < place->nr; r++) {
		if (strcmp(place->rep[r].sess->addr_str, mv->to_poold))
			continue;
		if (r == mv->from && test_bit(r, &slot->gone))
			continue;
		*why = "the target poold holds a copy of the slot already";
		return -EINVAL;
	}
	return 0;
}

/*
 * The coordinator thread: start the move a MoveChunk asks for, or refuse
 * it (-errno, *why set) if it cannot be: the caller answers MoveDone with
 * switched = false at once.  Never waits for the copy.
 */
int rswap_move_start(struct rswap_dev *dev, const struct rswap_pb_env *env,
		     const char **why)
{
	struct rswap_rdma *rdma = dev->rdma;
	struct sockaddr_storage ss;
	struct rswap_place *place;
	struct rswap_move *mv;
	int ret;

	if (!rswap_rdma_ready(rdma)) {
		*why = "the client is not serving swap yet";
		return -EAGAIN;
	}
	if (env->move.slot >= dev->core.nslots) {
		*why = "no such slot";
		return -EINVAL;
	}
	if (!env->move.to_handle || rswap_parse_addr(env->move.to_poold, &ss)) {
		*why = "bad target poold address or handle";
		return -EINVAL;
	}
	mv = rswap_move_alloc(dev, env->move.slot, GFP_KERNEL);
	if (!mv) {
		*why = "out of memory for the copy buffers";
		return -ENOMEM;
	}
	mv->epoch = env->move.epoch;
	mv->from_handle = env->move.from_handle;
	mv->to_handle = env->move.to_handle;
	strscpy(mv->to_poold, env->move.to_poold, sizeof(mv->to_poold));

	mutex_lock(&rdma->map_lock);
	place = rswap_slot_place(dev, &dev->core.slots[mv->slot]);
	ret = rswap_move_check(dev, mv, place, why);
	if (!ret)
		rdma->move = mv;
	mutex_unlock(&rdma->map_lock);
	if (ret) {
		rswap_move_free(mv);
		return ret;
	}
	rswap_info(dev, "moving slot %u from poold %s to %s (epoch %llu)\n",
		   mv->slot, place->rep[mv->from].sess->addr_str, mv->to_poold,
		   mv->epoch);
	rswap_rdma_queue_work(&rdma->move_work);
	return 0;
}

/*
 * Any context.  Look for a stale copy worth bringing back in place: its
 * memory is still there (not gone) and its session is LIVE again, and a
 * copy in sync exists to read from.  The slot and copy, or false.
 */
static bool rswap_resync_find(struct rswap_dev *dev, u32 *slotp,
			      unsigned int *copy)
{
	struct rswap_core *core = &dev->core;
	u32 i;
	unsigned int r;

	for (i = 0; i < core->nslots; i++) {
		struct rswap_slot *slot = &core->slots[i];
		struct rswap_place *place = rswap_slot_place(dev, slot);
		unsigned long stale = READ_ONCE(slot->stale) &
				      ~READ_ONCE(slot->gone) &
				      rswap_copies_mask(place->nr);

		if (!stale || READ_ONCE(slot->lost) ||
		    stale == rswap_copies_mask(place->nr))
			continue;
		for_each_set_bit(r, &stale, place->nr) {
			if (rswap_sess_state(place->rep[r].sess) ==
			    RSWAP_SESS_LIVE) {
				*slotp = i;
				*copy = r;
				return true;
			}
		}
	}
	return false;
}

/*
 * Sleeps (GFP_NOIO).  Start bringing back one stale copy whose poold is
 * reachable again, if no move runs: only the pages written while it was
 * stale are copied to it, from a copy in sync.  Called after every
 * heartbeat, after a move, and when a session comes back.
 */
void rswap_resync_kick(struct rswap_dev *dev)
{
	struct rswap_rdma *rdma = dev->rdma;
	struct rswap_move *mv = NULL;
	unsigned int copy;
	u32 slot;

	if (!rswap_rdma_ready(rdma) || dev->core.replicas < 2)
		return;
	mutex_lock(&rdma->map_lock);
	if (rdma->move || !rswap_resync_find(dev, &slot, &copy))
		goto out_unlock;
	mutex_unlock(&rdma->map_lock);
	mv = rswap_move_alloc(dev, slot, GFP_NOIO);
	if (!mv)
		return;
	mutex_lock(&rdma->map_lock);
	/* Looked again: the map may have changed while we allocated. */
	if (rdma->move || !rswap_resync_find(dev, &slot, &copy) ||
	    slot != mv->slot)
		goto out_unlock;
	mv->resync = true;
	mv->from = copy;
	mv->to_found = true;
	mv->from_handle = rswap_slot_place(dev,
					   &dev->core.slots[slot])->rep[copy].handle;
	mv->to_handle = mv->from_handle;
	strscpy(mv->to_poold,
		rswap_slot_place(dev, &dev->core.slots[slot])->rep[copy].sess->addr_str,
		sizeof(mv->to_poold));
	rdma->move = mv;
	mv = NULL;
	rswap_rdma_queue_work(&rdma->move_work);
out_unlock:
	mutex_unlock(&rdma->map_lock);
	if (mv)
		rswap_move_free(mv);
}

/* The move work: a resync ended, either way; the stale list tells. */
static void rswap_resync_done(struct rswap_dev *dev, struct rswap_move *mv,
			      bool switched)
{
	struct rswap_rdma *rdma = dev->rdma;

	if (!switched) {
		rswap_warn(dev, "resync of copy %u of slot %u on poold %s failed: %s; it stays stale\n",
			   mv->from, mv->slot, mv->to_poold, mv->reason);
		return;
	}
	atomic64_inc(&rdma->resyncs);
	atomic64_add(mv->dirty_pages, &rdma->resync_pages);
	atomic64_add(atomic64_read(&mv->copied), &rdma->resync_bytes);
	rswap_info(dev, "copy %u of slot %u on poold %s is in sync again: %llu dirty pages, %lld bytes copied in %u ms\n",
		   mv->from, mv->slot, mv->to_poold, mv->dirty_pages,
		   (long long)atomic64_read(&mv->copied),
		   jiffies_to_msecs(jiffies - mv->started));
}

/* Sleeps.  Module unload: fail a move under way and wait for its end. */
void rswap_move_cancel(struct rswap_dev *dev)
{
	struct rswap_rdma *rdma = dev->rdma;

	mutex_lock(&rdma->map_lock);
	if (rdma->move)
		rswap_move_fail(rdma->move, -ESHUTDOWN, "the module is unloading");
	mutex_unlock(&rdma->map_lock);
	flush_work(&rdma->move_work);
}

/* ---- what the coordinator hears ---------------------------------------------- */

/*
 * Sleeps.  The map as this client runs it, for a heartbeat or (with
 * handles) a reconnecting hello.  0, -EAGAIN (not serving yet: report
 * nothing) or -ENOMEM.  Free with rswap_rdma_report_free().
 */
int rswap_rdma_report(struct rswap_dev *dev, struct rswap_pb_report *rep,
		      bool handles)
{
	struct rswap_rdma *rdma = dev->rdma;
	struct rswap_core *core = &dev->core;
	unsigned int nc = core->replicas;
	u64 *h = NULL, *copies = NULL, *stale = NULL;
	u32 *lost = NULL;
	u32 i, n = 0, ns = 0;
	unsigned int r;

	memset(rep, 0, sizeof(*rep));
	rep->replicas = nc;
	if (!rswap_rdma_ready(rdma))
		return -EAGAIN;
	if (handles) {
		h = kvcalloc(core->nslots, sizeof(*h), GFP_KERNEL);
		if (nc > 1)
			copies = kvcalloc((size_t)core->nslots * nc,
					  sizeof(*copies), GFP_KERNEL);
		if (!h || (nc > 1 && !copies))
			goto out_nomem;
	}
	if (atomic_read(&rdma->nr_lost)) {
		lost = kcalloc(RSWAP_PB_MAX_LOST, sizeof(*lost), GFP_KERNEL);
		if (!lost)
			goto out_nomem;
	}
	if (nc > 1) {
		stale = kcalloc(RSWAP_PB_MAX_LOST, sizeof(*stale), GFP_KERNEL);
		if (!stale)
			goto out_nomem;
	}
	mutex_lock(&rdma->map_lock);
	rep->epoch = rdma->epoch;
	for (i = 0; i < core->nslots; i++) {
		struct rswap_slot *slot = &core->slots[i];
		struct rswap_place *place = rswap_slot_place(dev, slot);
		unsigned long st = READ_ONCE(slot->stale);

		/* The copy it reads from: the first one in sync. */
		if (h)
			h[i] = place->rep[(~st & rswap_copies_mask(place->nr)) ?
					  __ffs(~st) : 0].handle;
		for (r = 0; copies && r < place->nr; r++)
			copies[(size_t)i * nc + r] = place->rep[r].handle;
		for_each_set_bit(r, &st, place->nr)
			if (stale && ns < RSWAP_PB_MAX_LOST)
				stale[ns++] = place->rep[r].handle;
		if (lost && n < RSWAP_PB_MAX_LOST && READ_ONCE(slot->lost))
			lost[n++] = i;
	}
	if (rdma->move) {
		rep->moving = true;
		rep->move_slot = rdma->move->slot;
		rep->move_to_handle = rdma->move->to_handle;
		rep->move_copied = atomic64_read(&rdma->move->copied);
	}
	mutex_unlock(&rdma->map_lock);
	rep->handles = h;
	rep->nhandles = h ? core->nslots : 0;
	rep->copy_handles = copies;
	rep->ncopy_handles = copies ? core->nslots * nc : 0;
	rep->lost = lost;
	rep->nlost = n;
	rep->stale = stale;
	rep->nstale = ns;
	return 0;

out_nomem:
	kvfree(h);
	kvfree(copies);
	kfree(lost);
	return -ENOMEM;
}

void rswap_rdma_report_free(struct rswap_pb_report *rep)
{
	kvfree(rep->handles);
	kvfree(rep->copy_handles);
	kfree(rep->lost);
	kfree(rep->stale);
	rep->handles = NULL;
	rep->copy_handles = NULL;
	rep->lost = NULL;
	rep->stale = NULL;
}

const char *rswap_sess_name(const struct rswap_sess *sess)
{
	return sess ? sess->addr_str : "?";
}

u64 rswap_move_copied(const struct rswap_move *mv)
{
	return atomic64_read(&mv->copied);
}

/*
 * Failover reads by latency, from their first dispatch to their end: one
 * "LE_US COUNT" line per bucket that counted any (LE_US: the bucket's
 * upper bound in microseconds, powers of two).
 */
ssize_t rswap_rdma_show_failover_latency(struct rswap_dev *dev, char *buf)
{
	unsigned int b;
	int len = 0;
	s64 n;

	for (b = 0; dev->rdma && b < RSWAP_LAT_BUCKETS; b++) {
		n = atomic64_read(&dev->rdma->failover_us[b]);
		if (n)
			len += sysfs_emit_at(buf, len, "%llu %lld\n", 1ull << b,
					     (long long)n);
	}
	return len;
}

bool rswap_move_is_resync(const struct rswap_move *mv)
{
	return mv->resync;
}

/*
 * Copies: "replicas=N healthy=H degraded=D lost=L stale_copies=S
 * failover_reads=F stale_marks=M resyncs=R resync_pages=P
 * resync_bytes=B".  A slot is healthy with every copy in sync, degraded
 * with fewer, lost with none.
 */
ssize_t rswap_rdma_show_replicas(struct rswap_dev *dev, char *buf)
{
	struct rswap_rdma *rdma = dev->rdma;
	u32 i, healthy = 0, degraded = 0, lost = 0, stale = 0;
	int len;

	if (!rdma)
		return sysfs_emit(buf, "replicas=1\n");
	rcu_read_lock();
	for (i = 0; i < dev->core.nslots; i++) {
		struct rswap_slot *slot = &dev->core.slots[i];
		unsigned long st = READ_ONCE(slot->stale) &
			rswap_copies_mask(rcu_dereference(slot->place)->nr);

		stale += hweight_long(st);
		if (READ_ONCE(slot->lost))
			lost++;
		else if (st)
			degraded++;
		else
			healthy++;
	}
	rcu_read_unlock();
	len = sysfs_emit(buf, "replicas=%u healthy=%u degraded=%u lost=%u stale_copies=%u",
			 dev->core.replicas, healthy, degraded, lost, stale);
	len += sysfs_emit_at(buf, len, " failover_reads=%lld stale_marks=%lld",
			     (long long)atomic64_read(&rdma->failover_reads),
			     (long long)atomic64_read(&rdma->stale_marks));
	return len + sysfs_emit_at(buf, len, " resyncs=%lld resync_pages=%lld resync_bytes=%lld\n",
				   (long long)atomic64_read(&rdma->resyncs),
				   (long long)atomic64_read(&rdma->resync_pages),
				   (long long)atomic64_read(&rdma->resync_bytes));
}

ssize_t rswap_rdma_show_moves(struct rswap_dev *dev, char *buf)
{
	struct rswap_rdma *rdma = dev->rdma;
	int len;

	if (!rdma)
		return sysfs_emit(buf, "epoch=0 done=0 failed=0 bytes=0\n");
	mutex_lock(&rdma->map_lock);
	len = sysfs_emit(buf, "epoch=%llu done=%lld failed=%lld bytes=%lld",
			 rdma->epoch,
			 (long long)atomic64_read(&rdma->moves_done),
			 (long long)atomic64_read(&rdma->moves_failed),
			 (long long)atomic64_read(&rdma->bytes_moved));
	if (rdma->move)
		len += sysfs_emit_at(buf, len, " moving=%u to=%s copied=%lld",
				     rdma->move->slot, rdma->move->to_poold,
				     (long long)atomic64_read(&rdma->move->copied));
	mutex_unlock(&rdma->map_lock);
	return len + sysfs_emit_at(buf, len, "\n");
}
