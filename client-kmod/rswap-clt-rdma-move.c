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
 *      max_segments pages): hold new writes to the window, wait for the
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
 * Any context.  Post an operation's READ (from the old copy, rep 0) or
 * WRITE (to the new one, rep 1) at its offset.  0 or -errno (nothing
 * posted), as rswap_rdma_post_rep().
 */
static int rswap_move_post(struct rswap_move_op *op, unsigned int r)
{
	struct rswap_move *mv = op->move;
	struct rswap_slot *slot = &mv->dev->core.slots[mv->slot];
	int ret;

	op->req.write = r == 1;
	rcu_read_lock();
	ret = rswap_rdma_post_rep(mv->dev, &op->req,
				  &rcu_dereference(slot->place)->rep[r],
				  op->off, 0);
	rcu_read_unlock();
	return ret;
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
		   rswap_move_post(op, 1)) {
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
 * Sleeps.  Copy one window: every operation READs its pages from the old
 * copy and, from that READ's completion, WRITEs them to the new one.  0,
 * -EAGAIN (the old copy's session is reconnecting, or a READ failed: try
 * the window again once it is back), or another -errno with the move
 * failed.
 */
static int rswap_move_copy(struct rswap_move *mv, u32 win)
{
	unsigned int op_pages = mv->nr_pages / RSWAP_MOVE_WRS;
	unsigned int k, p;
	int ret = 0;

	mv->op_error = 0;
	mv->ops_stop = false;
	atomic_set(&mv->ops_left, 1);	/* ours, until all are posted */
	for (k = 0; k < RSWAP_MOVE_WRS; k++) {
		struct rswap_move_op *op = &mv->ops[k];

		op->off = ((u64)win << mv->win_shift) +
			  (u64)k * op_pages * PAGE_SIZE;
		sg_init_table(op->sg, op_pages);
		for (p = 0; p < op_pages; p++)
			sg_set_page(&op->sg[p], mv->pages[k * op_pages + p],
				    PAGE_SIZE, 0);
		op->move = mv;
		op->req.cqe.done = rswap_move_op_done;
		op->req.sg = op->sg;
		op->req.sge = op->sge;
		op->req.nents = op_pages;
		for (;;) {
			atomic_inc(&mv->ops_left);
			ret = rswap_move_post(op, 0);
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
	struct rswap_sess *from;
	unsigned int tries;
	int ret;

	rswap_move_set_win(mv, win);
	wait_event(mv->wq, rswap_move_win_idle(mv, win));
	for (tries = 0; tries < RSWAP_MOVE_TRIES; tries++) {
		if (rswap_move_error(mv))
			break;
		if (READ_ONCE(slot->lost)) {
			rswap_move_fail(mv, -EIO, "the old copy was lost");
			break;
		}
		ret = rswap_move_copy(mv, win);
		if (ret == -EAGAIN) {
			rcu_read_lock();
			from = rcu_dereference(slot->place)->rep[0].sess;
			rcu_read_unlock();
			if (rswap_sess_wait_ready(from))
				rswap_move_fail(mv, -ENOTCONN,
						"the old copy's poold is down past fail_io_tmo");
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

	noio = memalloc_noio_save();
	if (rswap_move_reach(mv, mv->to_poold))
		goto out_done;

	/* 2. Writes to both copies from now on. */
	mutex_lock(&rdma->map_lock);
	cur = rswap_slot_place(dev, slot);
	moving = rswap_place_alloc(cur);
	if (!moving) {
		mutex_unlock(&rdma->map_lock);
		rswap_move_fail(mv, -ENOMEM, "out of memory");
		goto out_done;
	}
	moving->nr = 2;
	moving->rep[1].sess = mv->to;
	moving->rep[1].handle = mv->to_handle;
	moving->rep[1].addr = mv->to_addr;
	moving->rep[1].rkey = mv->to_rkey;
	moving->move = mv;
	mv->copy_started = jiffies;
	rswap_place_replace(dev, slot, moving);

	/* 3. Copy. */
	for (win = 0; win < mv->nwin; win++) {
		if (rswap_move_window(mv, slot, win))
			break;
		atomic64_add(1ull << mv->win_shift, &mv->copied);
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
	/* Keep writing both copies until memory is back: nothing is lost. */
	while (!(next = rswap_place_alloc(rswap_slot_place(dev, slot)))) {
		mutex_unlock(&rdma->map_lock);
		msleep(20);
		mutex_lock(&rdma->map_lock);
	}
	moving = rswap_slot_place(dev, slot);
	next->nr = 1;
	if (!rswap_move_error(mv)) {
		from = moving->rep[0].sess;
		next->rep[0] = moving->rep[1];
		next->epoch = mv->epoch;
		rdma->epoch = mv->epoch;
		switched = true;
	}
	rswap_move_end(mv, slot, next);
	/* Nothing of ours left on a poold: let its session go idle. */
	if (switched && !rswap_sess_chunks(from))
		rswap_sess_error_recovery(from);
	if (!switched && !rswap_sess_chunks(mv->to))
		rswap_sess_error_recovery(mv->to);

out_done:
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

	mutex_lock(&rdma->map_lock);
	rdma->move = NULL;
	mutex_unlock(&rdma->map_lock);
	rswap_move_free(mv);
	memalloc_noio_restore(noio);
}

/* ---- start, cancel ------------------------------------------------------------- */

void rswap_move_init(struct rswap_rdma *rdma)
{
	INIT_WORK(&rdma->move_work, rswap_move_work);
}

static int rswap_move_alloc_buffers(struct rswap_move *mv)
{
	struct rswap_dev *dev = mv->dev;
	unsigned int op_pages, i;
	u64 win_bytes;

	/* An operation takes as many pages as a request has segments. */
	op_pages = rounddown_pow_of_two(max_t(unsigned int,
					      dev->max_segments, 1));
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
	mv->writes = kvcalloc(mv->nwin, sizeof(*mv->writes), GFP_KERNEL);
	mv->pages = kcalloc(mv->nr_pages, sizeof(*mv->pages), GFP_KERNEL);
	mv->ops = kvcalloc(RSWAP_MOVE_WRS, sizeof(*mv->ops), GFP_KERNEL);
	if (!mv->writes || !mv->pages || !mv->ops)
		return -ENOMEM;
	for (i = 0; i < mv->nr_pages; i++) {
		mv->pages[i] = alloc_page(GFP_KERNEL);
		if (!mv->pages[i])
			return -ENOMEM;
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
	mv = kzalloc(sizeof(*mv), GFP_KERNEL);
	if (!mv) {
		*why = "out of memory";
		return -ENOMEM;
	}
	mv->dev = dev;
	mv->slot = env->move.slot;
	mv->epoch = env->move.epoch;
	mv->from_handle = env->move.from_handle;
	mv->to_handle = env->move.to_handle;
	strscpy(mv->to_poold, env->move.to_poold, sizeof(mv->to_poold));
	spin_lock_init(&mv->lock);
	mv->win = RSWAP_MOVE_NO_WIN;
	INIT_LIST_HEAD(&mv->held);
	init_waitqueue_head(&mv->wq);
	mv->started = jiffies;
	ret = rswap_move_alloc_buffers(mv);
	if (ret) {
		*why = "out of memory for the copy buffers";
		goto out_free;
	}

	mutex_lock(&rdma->map_lock);
	place = rswap_slot_place(dev, &dev->core.slots[mv->slot]);
	if (rdma->move) {
		*why = "another move is under way";
		ret = -EBUSY;
	} else if (READ_ONCE(dev->core.slots[mv->slot].lost)) {
		*why = "the slot is lost";
		ret = -EIO;
	} else if (place->rep[0].handle != mv->from_handle) {
		*why = "the client uses another chunk for the slot";
		ret = -ESTALE;
	} else if (mv->epoch <= rdma->epoch) {
		*why = "the move's epoch is not newer than the client's map";
		ret = -ESTALE;
	} else if (!strcmp(place->rep[0].sess->addr_str, mv->to_poold)) {
		*why = "the target is the poold the chunk is on";
		ret = -EINVAL;
	} else {
		rdma->move = mv;
	}
	mutex_unlock(&rdma->map_lock);
	if (ret)
		goto out_free;
	rswap_info(dev, "moving slot %u from poold %s to %s (epoch %llu)\n",
		   mv->slot, place->rep[0].sess->addr_str, mv->to_poold,
		   mv->epoch);
	rswap_rdma_queue_work(&rdma->move_work);
	return 0;

out_free:
	rswap_move_free(mv);
	return ret;
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
	u64 *h = NULL;
	u32 *lost = NULL;
	u32 i, n = 0;

	memset(rep, 0, sizeof(*rep));
	if (!rswap_rdma_ready(rdma))
		return -EAGAIN;
	if (handles) {
		h = kvcalloc(core->nslots, sizeof(*h), GFP_KERNEL);
		if (!h)
			return -ENOMEM;
	}
	if (atomic_read(&rdma->nr_lost)) {
		lost = kcalloc(RSWAP_PB_MAX_LOST, sizeof(*lost), GFP_KERNEL);
		if (!lost) {
			kvfree(h);
			return -ENOMEM;
		}
	}
	mutex_lock(&rdma->map_lock);
	rep->epoch = rdma->epoch;
	for (i = 0; i < core->nslots; i++) {
		if (h)
			h[i] = rswap_slot_place(dev, &core->slots[i])->rep[0].handle;
		if (lost && n < RSWAP_PB_MAX_LOST &&
		    READ_ONCE(core->slots[i].lost))
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
	rep->lost = lost;
	rep->nlost = n;
	return 0;
}

void rswap_rdma_report_free(struct rswap_pb_report *rep)
{
	kvfree(rep->handles);
	kfree(rep->lost);
	rep->handles = NULL;
	rep->lost = NULL;
}

const char *rswap_sess_name(const struct rswap_sess *sess)
{
	return sess ? sess->addr_str : "?";
}

u64 rswap_move_copied(const struct rswap_move *mv)
{
	return atomic64_read(&mv->copied);
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
