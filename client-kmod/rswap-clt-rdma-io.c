// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA backend, I/O side: rswap_rdma_route() finds a request's placement,
 * rswap_rdma_post_rep() checks and posts the RDMA READs or WRITEs of one
 * request to one copy, for either front-end (a block request: one SGE
 * per segment, in one chain of operations; a frontswap page: one SGE)
 * and for a move's copy; the completions; the
 * blk-mq timeout.
 *
 * What a request meets, by the state of its slot and sessions (with one
 * copy; with several, see below):
 *   slot lost            I/O error at once (no copy left: its poold lost
 *                        the memory)
 *   session LIVE         posted; a failed completion (a flush included)
 *                        enters error recovery and the request waits
 *   CONNECTING or
 *   RECONNECTING         waits (blk: parked on the session; frontswap: a
 *                        load sleeps, a store goes to the swap device)
 *   DEAD, DELETING       I/O error (down for longer than fail_io_tmo)
 *   chunk moving         reads go to the copies; a block write also goes
 *                        to the target (held while its window is
 *                        copied), a frontswap store goes to the swap
 *                        device
 * With several copies (replicas=N) a read goes to one copy in sync whose
 * session is LIVE and, if it fails, to another (failover); a write goes
 * to every copy in sync whose session is LIVE and stands when one took
 * it, the others turning stale (pages dirty) before it completes.  A
 * request waits or fails as above only when no copy in sync is LIVE.
 * Data is never reported read unless its READ completed successfully.

 * Every request counts itself in the placement it was posted under
 * (place->inflight) until it ends or waits, so that a move can tell when
 * no request uses an old placement any more.
 *
 * Contexts: queue_rq runs in atomic context; completions in the CQ's
 * softirq; rw_page sleeps; the timeout runs from the blk-mq timeout work.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bottom_half.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/percpu.h>
#include <linux/sched/clock.h>
#include <linux/scatterlist.h>

#include "rswap-clt-rdma.h"
#include "rswap-compat.h"

/* A frontswap load retries this often across reconnects, then fails. */
#define RSWAP_PAGE_TRIES	4

static enum dma_data_direction rswap_req_dir(const struct rswap_rdma_req *req)
{
	return req->write ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
}

/* Any context.  Undo the mapping rswap_rdma_post_rep() made, once. */
void rswap_rdma_unmap(struct rswap_rdma_req *req)
{
	if (!req->ibdev)
		return;
	ib_dma_unmap_sg(req->ibdev, req->sg, req->nents, rswap_req_dir(req));
	req->ibdev = NULL;
}

/* Any context.  A request posted under place has ended or waits. */
void rswap_place_put(struct rswap_dev *dev, struct rswap_place *place)
{
	if (atomic_dec_and_test(&place->inflight))
		wake_up_all(&dev->rdma->place_wq);
}

/*
 * Never sleeps.  Chain the RDMA operations of req's count mapped SGEs,
 * max_sge each, to consecutive remote addresses from raddr.  Only the
 * last is signalled and has a cqe: the send queue completes in order, so
 * its completion ends them all, and a failure of an earlier one flushes
 * it with an error (a completion without a cqe is dropped by the core).
 */
static void rswap_rdma_chain(struct ib_rdma_wr *wrs, unsigned int nr_wrs,
			     struct rswap_rdma_req *req, int count,
			     u32 max_sge, u64 raddr, u32 rkey)
{
	struct ib_rdma_wr *wr;
	unsigned int w, n;
	int i = 0;

	for (w = 0; w < nr_wrs; w++) {
		wr = &wrs[w];
		n = min_t(unsigned int, count - i, max_sge);
		*wr = (struct ib_rdma_wr) {
			.wr.opcode = req->write ? IB_WR_RDMA_WRITE :
						  IB_WR_RDMA_READ,
			.wr.sg_list = &req->sge[i],
			.wr.num_sge = n,
			.wr.next = w + 1 < nr_wrs ? &wrs[w + 1].wr : NULL,
			.remote_addr = raddr,
			.rkey = rkey,
		};
		for (; n; n--, i++)
			raddr += req->sge[i].length;
	}
	wr->wr.wr_cqe = &req->cqe;
	wr->wr.send_flags = IB_SEND_SIGNALED;
}

/*
 * Never sleeps; under rcu_read_lock() (error recovery waits for us before
 * it destroys the QPs).  Post the RDMA READs or WRITEs of req's pages to
 * replica rep at chunk_off, on queue pair qidx (modulo their count) of
 * its session.  0: posted, req->cqe.done will run.  Otherwise nothing is
 * posted, or what was is on a queue pair being recovered, whose drain
 * flushes it: -EAGAIN (the session is reconnecting: wait for it,
 * req->sess names it), -ENOTCONN (down for longer than fail_io_tmo),
 * -EBUSY (send queue full or no DMA mapping: retry soon), -EIO (more
 * segments than the queue pair chains, which a connect refuses).
 */
int rswap_rdma_post_rep(struct rswap_dev *dev, struct rswap_rdma_req *req,
			const struct rswap_replica *rep, u64 chunk_off,
			unsigned int qidx)
{
	enum dma_data_direction dir = rswap_req_dir(req);
	struct rswap_sess *sess = rep->sess;
	struct ib_rdma_wr wrs[RSWAP_CHAIN_MAX];
	const struct ib_send_wr *bad_wr;
	unsigned int nr_wrs;
	struct scatterlist *sg;
	struct ib_device *ibdev;
	struct rswap_qp *qp;
	int i, count, ret;

	req->ibdev = NULL;
	req->sess = sess;
	switch (rswap_sess_state(sess)) {
	case RSWAP_SESS_LIVE:
		break;
	case RSWAP_SESS_CONNECTING:
	case RSWAP_SESS_RECONNECTING:
		return -EAGAIN;
	default:
		return -ENOTCONN;
	}
	qp = &sess->qps[qidx % sess->nr_qps];
	if (unlikely(!test_bit(RSWAP_QP_LIVE, &qp->flags))) {
		rswap_sess_error_recovery(sess);
		return -EAGAIN;
	}
	ibdev = qp->pd->device;
	count = ib_dma_map_sg(ibdev, req->sg, req->nents, dir);
	if (unlikely(!count))
		return -EBUSY;
	req->ibdev = ibdev;
	nr_wrs = DIV_ROUND_UP(count, qp->max_sge);
	if (unlikely(nr_wrs > RSWAP_CHAIN_MAX)) {
		rswap_rdma_unmap(req);
		rswap_sess_err_rl(sess, "%d segments need more than %u operations of %u SGEs\n",
				  count, RSWAP_CHAIN_MAX, qp->max_sge);
		return -EIO;
	}
	for_each_sg(req->sg, sg, count, i) {
		req->sge[i].addr = sg_dma_address(sg);
		req->sge[i].length = sg_dma_len(sg);
		req->sge[i].lkey = qp->pd->local_dma_lkey;
	}
	rswap_rdma_chain(wrs, nr_wrs, req, count, qp->max_sge,
			 rep->addr + chunk_off, rep->rkey);

	ret = ib_post_send(qp->cm_id->qp, &wrs[0].wr, &bad_wr);
	if (likely(!ret))
		return 0;
	rswap_rdma_unmap(req);
	/*
	 * A full queue refuses the first operation.  Operations of the
	 * chain taken already have no cqe to report to: recover, and the
	 * drain flushes them.
	 */
	if ((ret == -ENOMEM || ret == -EAGAIN) && bad_wr == &wrs[0].wr)
		return -EBUSY;
	atomic64_inc(&sess->errors);
	rswap_count_err(dev, RSWAP_ERR_POST);
	rswap_sess_err_rl(sess, "cannot post on queue pair %u: %d; reconnecting\n",
			  qp->index, ret);
	rswap_sess_error_recovery(sess);
	return -EAGAIN;
}

/*
 * Under rcu_read_lock().  The slot and placement of [off, off + len)
 * with *chunk_off set, or NULL with *err: -ERANGE (outside the pool or
 * across a chunk), -EIO (the slot is lost: no copy left).  *sess names
 * the slot's first copy, for messages.
 */
static struct rswap_place *rswap_rdma_route(struct rswap_dev *dev, u64 off,
					    u32 len, u64 *chunk_off,
					    struct rswap_slot **slotp,
					    struct rswap_sess **sess, int *err)
{
	struct rswap_place *place;
	struct rswap_slot *slot;

	*sess = NULL;
	slot = rswap_core_route(&dev->core, off, len, chunk_off);
	if (unlikely(!slot)) {
		*err = -ERANGE;
		return NULL;
	}
	place = rcu_dereference(slot->place);
	*sess = place->rep[0].sess;
	*slotp = slot;
	if (unlikely(READ_ONCE(slot->lost))) {
		*err = -EIO;
		return NULL;
	}
	return place;
}

/*
 * Reads take turns between copies: a counter per CPU, so that one task
 * faulting pages one after the other spreads them too (a request's tag
 * does not change between its requests), with no shared cache line.
 */
static DEFINE_PER_CPU(unsigned int, rswap_read_rr);

static unsigned int rswap_read_turn(void)
{
	return this_cpu_inc_return(rswap_read_rr);
}

/*
 * Under rcu_read_lock().  The copy a read goes to: one in sync whose
 * session is LIVE, looking from hint % nr on so that reads alternate
 * between copies.  Else -EAGAIN with *sess the first copy in sync still
 * connecting (wait for it), -ENOTCONN (every copy in sync down past
 * fail_io_tmo) or -EIO (none in sync).
 */
static int rswap_read_pick(struct rswap_slot *slot, struct rswap_place *place,
			   unsigned int hint, struct rswap_sess **sess)
{
	unsigned long stale = READ_ONCE(slot->stale);
	unsigned int i, r, nr = place->nr;
	int ret = -EIO;

	for (i = 0; i < nr; i++) {
		r = (hint + i) % nr;
		if (stale & BIT(r))
			continue;
		switch (rswap_sess_state(place->rep[r].sess)) {
		case RSWAP_SESS_LIVE:
			*sess = place->rep[r].sess;
			return r;
		case RSWAP_SESS_CONNECTING:
		case RSWAP_SESS_RECONNECTING:
			if (ret != -EAGAIN)
				*sess = place->rep[r].sess;
			ret = -EAGAIN;
			break;
		default:
			if (ret == -EIO)
				*sess = place->rep[r].sess;
			if (ret != -EAGAIN)
				ret = -ENOTCONN;
			break;
		}
	}
	return ret;
}

/* Any context.  A read served by another copy ended, t0 ns after it began. */
static void rswap_failover_done(struct rswap_dev *dev, u64 t0)
{
	u64 us = div_u64(ktime_get_ns() - t0, NSEC_PER_USEC);

	atomic64_inc(&dev->rdma->failover_reads);
	atomic64_inc(&dev->rdma->failover_us[min_t(unsigned int,
						   us ? ilog2(us) + 1 : 0,
						   RSWAP_LAT_BUCKETS - 1)]);
}

/* Any context.  Copy r of the slot missed a write: stale, pages dirty. */
void rswap_copy_stale(struct rswap_dev *dev, struct rswap_slot *slot,
		      unsigned int r)
{
	if (!test_and_set_bit(r, &slot->stale))
		atomic64_inc(&dev->rdma->stale_marks);
}

/* Count why a request was not posted; -EAGAIN is not a failure. */
static void rswap_rdma_count_refusal(struct rswap_dev *dev,
				     struct rswap_sess *sess, bool write,
				     int err, u64 off, u32 len)
{
	switch (err) {
	case -ERANGE:
		rswap_count_err(dev, RSWAP_ERR_RANGE);
		rswap_err_rl(dev, "request at %llu of %u bytes crosses a chunk or the end\n",
			     off, len);
		break;
	case -EIO:
		rswap_count_err(dev, RSWAP_ERR_LOST);
		rswap_sess_err_rl(sess, "%s at %llu: chunk lost (no copy left)\n",
				  write ? "write" : "read", off);
		break;
	case -ENOTCONN:
		atomic64_inc(&sess->errors);
		rswap_count_err(dev, RSWAP_ERR_DOWN);
		rswap_sess_err_rl(sess, "down for longer than fail_io_tmo; failing I/O\n");
		break;
	case -EBUSY:
		rswap_count_err(dev, RSWAP_ERR_BUSY);
		break;
	}
}

/* Any context.  Can another copy in sync of rq's slot serve it now? */
static bool rswap_rdma_other_copy(struct rswap_dev *dev, struct request *rq)
{
	u64 off = (u64)blk_rq_pos(rq) << RSWAP_SECTOR_SHIFT;
	struct rswap_sess *sess = NULL;
	struct rswap_place *place;
	struct rswap_slot *slot;
	u64 chunk_off;
	int ret;

	rcu_read_lock();
	place = rswap_rdma_route(dev, off, blk_rq_bytes(rq), &chunk_off, &slot,
				 &sess, &ret);
	ret = place ? rswap_read_pick(slot, place, 0, &sess) : -EIO;
	rcu_read_unlock();
	return ret >= 0;
}

/*
 * Any context.  The request could not be served by cmd->sess: dispatch
 * it again at once if another copy in sync can serve it (a failover),
 * else park it until its session is LIVE, or hand it back for dispatch
 * if it already is again, or fail it.
 */
static void rswap_rdma_wait(struct rswap_dev *dev, struct rswap_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct rswap_sess *sess = cmd->sess;

	if (dev->core.replicas > 1 && rswap_rdma_other_copy(dev, rq)) {
		if (!cmd->write)
			cmd->failover = true;
		rswap_blk_requeue(dev, rq);
		return;
	}
	if (rswap_sess_park(sess, cmd))
		return;
	if (rswap_sess_state(sess) == RSWAP_SESS_LIVE) {
		rswap_blk_requeue(dev, rq);
		return;
	}
	rswap_rdma_count_refusal(dev, sess, cmd->write, -ENOTCONN, 0, 0);
	rswap_blk_end(dev, rq, BLK_STS_IOERR);
}

/*
 * Any context: every half of a block request has ended.  A write stands
 * if a copy took it: the copies that did not are stale from now on (set
 * before the request ends, so that no later read goes to them).  A
 * request no copy took, and a failed read, are served again.
 */
static void rswap_cmd_finish(struct rswap_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct rswap_place *place = cmd->place;
	struct rswap_dev *dev = cmd->sess->dev;
	/* The placement may be freed once put: what is needed, first. */
	unsigned int r, nr = place->nr;
	unsigned long ok = cmd->posted & ~cmd->failed & rswap_copies_mask(nr);
	u64 off = (u64)blk_rq_pos(rq) << RSWAP_SECTOR_SHIFT;

	if (cmd->write && ok) {
		struct rswap_slot *slot = &dev->core.slots[off >>
							   dev->core.chunk_shift];

		for_each_set_bit(r, &cmd->failed, nr) {
			rswap_slot_dirty(&dev->core, slot,
					 off & (dev->core.chunk_size - 1),
					 blk_rq_bytes(rq));
			rswap_copy_stale(dev, slot, r);
		}
	}
	if (cmd->counted)
		rswap_move_write_end(place->move, cmd);
	cmd->place = NULL;
	rswap_place_put(dev, place);
	if (!ok) {
		rswap_rdma_wait(dev, cmd);
		return;
	}
	if (!cmd->write && rswap_inject_read_error(dev)) {
		/* Never report unknown data as read. */
		atomic64_inc(&cmd->sess->errors);
		rswap_count_err(dev, RSWAP_ERR_IO);
		rswap_blk_end(dev, rq, BLK_STS_IOERR);
		return;
	}
	for_each_set_bit(r, &ok, nr) {
		struct rswap_sess *sess = cmd->half[cmd->write ? r : 0].req.sess;

		if (cmd->write) {
			atomic64_inc(&sess->writes);
			atomic64_add(blk_rq_bytes(rq), &sess->bytes_written);
		} else {
			atomic64_inc(&sess->reads);
			atomic64_add(blk_rq_bytes(rq), &sess->bytes_read);
		}
	}
	if (cmd->failover)
		rswap_failover_done(dev, cmd->t0);
	rswap_blk_end(dev, rq, BLK_STS_OK);
}

/* Softirq (CQ): the RDMA READ or WRITE of one half of a request ended. */
static void rswap_io_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rswap_half *half = container_of(wc->wr_cqe, struct rswap_half,
					       req.cqe);
	struct rswap_cmd *cmd = half->cmd;
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct rswap_sess *sess = half->req.sess;

	rswap_rdma_unmap(&half->req);
	if (unlikely(wc->status != IB_WC_SUCCESS)) {
		/* Flushes are what recovery's drain hands back. */
		if (wc->status != IB_WC_WR_FLUSH_ERR) {
			atomic64_inc(&sess->errors);
			rswap_sess_err_rl(sess, "%s of %u bytes at %llu failed: %s; reconnecting\n",
					  cmd->write ? "WRITE" : "READ",
					  blk_rq_bytes(rq),
					  (u64)blk_rq_pos(rq) << RSWAP_SECTOR_SHIFT,
					  ib_wc_status_msg(wc->status));
		}
		rswap_sess_error_recovery(sess);
		/* A move's target: the move fails, the copies hold the data. */
		if (half->rep == cmd->place->nr)
			rswap_move_fail(cmd->place->move, -EIO,
					"a write to the target failed");
		set_bit(half->rep, &cmd->failed);
	}
	set_bit(half->rep, &cmd->ended);
	if (atomic_dec_and_test(&cmd->pending))
		rswap_cmd_finish(cmd);
}

/*
 * Atomic context, under rcu_read_lock().  Post half h of the request to
 * replica r of its placement; 0 or the -errno of rswap_rdma_post_rep().
 */
static int rswap_cmd_post(struct rswap_dev *dev, struct rswap_cmd *cmd,
			  unsigned int h, unsigned int r, u64 chunk_off,
			  unsigned int qidx)
{
	struct rswap_half *half = &cmd->half[h];
	int ret;

	half->cmd = cmd;
	half->rep = r;
	half->req.cqe.done = rswap_io_done;
	half->req.write = cmd->write;
	half->req.nents = cmd->nents;
	half->req.sge = cmd->sge;
	half->req.sg = half->sg;
	/* Each half is mapped apart: copies may sit behind other devices. */
	if (h)
		memcpy(half->sg, cmd->half[0].sg,
		       cmd->nents * sizeof(half->sg[0]));
	atomic_inc(&cmd->pending);
	ret = rswap_rdma_post_rep(dev, &half->req, &cmd->place->rep[r],
				  chunk_off, qidx);
	if (likely(!ret)) {
		__set_bit(r, &cmd->posted);
		return 0;
	}
	atomic_dec(&cmd->pending);	/* never the last: queue_rq holds one */
	return ret;
}

/*
 * Atomic context, under rcu_read_lock().  Post a block write to every
 * copy in sync whose session is LIVE and to a move's target.  The copies
 * that cannot take it now are stale, their pages dirty -- if another copy
 * took it; if none could, the first refusal is returned (0: posted) and
 * cmd->sess names the session to wait for.
 */
static int rswap_rdma_write(struct rswap_dev *dev, struct rswap_cmd *cmd,
			    struct rswap_slot *slot, u64 chunk_off, u32 len,
			    unsigned int qidx)
{
	struct rswap_place *place = cmd->place;
	unsigned long stale = READ_ONCE(slot->stale), missed = 0;
	int ret, first = -EIO;
	unsigned int r;

	for (r = 0; r < place->nr; r++) {
		if (stale & BIT(r))
			continue;
		ret = rswap_cmd_post(dev, cmd, r, r, chunk_off, qidx);
		if (!ret)
			continue;
		missed |= BIT(r);
		/* The one to wait for: reconnecting rather than dead. */
		if (first == -EIO || (first != -EAGAIN && ret == -EAGAIN)) {
			first = ret;
			cmd->sess = place->rep[r].sess;
		}
	}
	if (!cmd->posted)
		return first;
	cmd->sess = place->rep[__ffs(cmd->posted)].sess;
	/* A copy that does not get this write must get these pages later. */
	if (missed || (stale & rswap_copies_mask(place->nr)))
		rswap_slot_dirty(&dev->core, slot, chunk_off, len);
	for_each_set_bit(r, &missed, place->nr)
		rswap_copy_stale(dev, slot, r);
	if (unlikely(place->move)) {
		ret = rswap_cmd_post(dev, cmd, place->nr, place->nr, chunk_off,
				     qidx);
		if (ret)
			rswap_move_fail(place->move, ret == -EBUSY ? -EBUSY : -ENOTCONN,
					ret == -EBUSY ? "the target's send queue was full" :
							"the target is not connected");
	}
	return 0;
}

/* Atomic context: no allocation, nothing that sleeps. */
static blk_status_t rswap_rdma_queue_rq(struct rswap_dev *dev,
					unsigned int qidx, struct request *rq)
{
	struct rswap_cmd *cmd = blk_mq_rq_to_pdu(rq);
	u64 off = (u64)blk_rq_pos(rq) << RSWAP_SECTOR_SHIFT;
	u32 len = blk_rq_bytes(rq);
	struct rswap_place *place;
	struct rswap_slot *slot;
	u64 chunk_off;
	int ret, r;

	cmd->write = rq_data_dir(rq) == WRITE;
	/* A failover's latency counts from its first dispatch. */
	if (dev->core.replicas > 1 && !cmd->failover)
		cmd->t0 = ktime_get_ns();
	cmd->parked = false;
	cmd->counted = false;
	cmd->posted = 0;
	cmd->failed = 0;
	cmd->ended = 0;
	sg_init_table(cmd->half[0].sg, blk_rq_nr_phys_segments(rq));
	cmd->nents = rswap_compat_map_sg(rq, cmd->half[0].sg);

	rcu_read_lock();
	place = rswap_rdma_route(dev, off, len, &chunk_off, &slot, &cmd->sess,
				 &ret);
	if (unlikely(!place))
		goto out_refused;
	if (unlikely(place->move) && cmd->write &&
	    rswap_move_hold(place->move, cmd, chunk_off, len)) {
		/* Its window is being copied: wait for the next one. */
		rcu_read_unlock();
		return BLK_STS_OK;
	}
	cmd->place = place;
	atomic_inc(&place->inflight);
	/* One for us until every half is posted. */
	atomic_set(&cmd->pending, 1);
	if (cmd->write) {
		ret = rswap_rdma_write(dev, cmd, slot, chunk_off, len, qidx);
	} else {
		r = rswap_read_pick(slot, place, rswap_read_turn(), &cmd->sess);
		ret = r < 0 ? r : rswap_cmd_post(dev, cmd, 0, r, chunk_off,
						 qidx);
	}
	if (likely(!ret)) {
		/* The halves' completions may have run already. */
		if (atomic_dec_and_test(&cmd->pending))
			rswap_cmd_finish(cmd);
		rcu_read_unlock();
		return BLK_STS_OK;
	}
	if (cmd->counted)
		rswap_move_write_end(place->move, cmd);
	cmd->place = NULL;
	rswap_place_put(dev, place);
out_refused:
	rcu_read_unlock();
	switch (ret) {
	case -EAGAIN:
		rswap_rdma_wait(dev, cmd);
		return BLK_STS_OK;
	case -EBUSY:
		/* blk-mq dispatches it again once a request completes. */
		rswap_rdma_count_refusal(dev, cmd->sess, cmd->write, ret, off,
					 0);
		return BLK_STS_RESOURCE;
	default:
		rswap_rdma_count_refusal(dev, cmd->sess, cmd->write, ret, off,
					 len);
		return BLK_STS_IOERR;
	}
}

/* A half of rq is stuck on sess: recover the session. */
static void rswap_rdma_stuck(struct request *rq, struct rswap_sess *sess)
{
	rswap_sess_warn_rl(sess, "%s of %u bytes at %llu not done after %u s; reconnecting\n",
			   rq_data_dir(rq) == WRITE ? "WRITE" : "READ",
			   blk_rq_bytes(rq),
			   (u64)blk_rq_pos(rq) << RSWAP_SECTOR_SHIFT,
			   RSWAP_RQ_TIMEOUT_SECS);
	rswap_sess_error_recovery(sess);
}

/*
 * blk-mq timeout work: a request not completed after
 * RSWAP_RQ_TIMEOUT_SECS.  A parked or held one waits for its session
 * (bounded by fail_io_tmo) or its window; a posted one means a queue
 * pair is stuck: recover every session with a half still out, and
 * recovery's drain completes it (flushed, then another copy serves it,
 * or it waits, or fails).
 */
static enum blk_eh_timer_return rswap_rdma_timeout(struct rswap_dev *dev,
						   struct request *rq)
{
	struct rswap_cmd *cmd = blk_mq_rq_to_pdu(rq);
	unsigned long out = READ_ONCE(cmd->posted) & ~READ_ONCE(cmd->ended);
	unsigned int r;

	if (!cmd->sess || READ_ONCE(cmd->parked))
		return BLK_EH_RESET_TIMER;
	for_each_set_bit(r, &out, RSWAP_MAX_REPLICAS)
		rswap_rdma_stuck(rq, cmd->half[cmd->write ? r : 0].req.sess);
	return BLK_EH_RESET_TIMER;
}

/* One synchronous page transfer (frontswap), waited for on the stack. */
struct rswap_page_io {
	struct rswap_rdma_req req;
	struct completion done;
	enum ib_wc_status status;
	struct scatterlist sg;
	struct ib_sge sge;
	int ret;			/* of the post */
};

/* Softirq (CQ). */
static void rswap_page_io_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rswap_page_io *io = container_of(wc->wr_cqe,
						struct rswap_page_io, req.cqe);

	io->status = wc->status;
	complete(&io->done);
}

/* Under rcu_read_lock().  Post the page to replica r; io->ret says. */
static void rswap_page_post(struct rswap_dev *dev, struct rswap_page_io *io,
			    struct page *page, bool write,
			    struct rswap_place *place, unsigned int r,
			    u64 chunk_off)
{
	sg_init_table(&io->sg, 1);
	sg_set_page(&io->sg, page, PAGE_SIZE, 0);
	memset(&io->req, 0, sizeof(io->req));
	io->req.cqe.done = rswap_page_io_done;
	io->req.sg = &io->sg;
	io->req.sge = &io->sge;
	io->req.nents = 1;
	io->req.write = write;
	io->status = IB_WC_WR_FLUSH_ERR;	/* until a completion says */
	init_completion(&io->done);
	atomic_inc(&place->inflight);
	io->ret = rswap_rdma_post_rep(dev, &io->req, &place->rep[r], chunk_off,
				      raw_smp_processor_id());
	if (io->ret)
		rswap_place_put(dev, place);
}

/*
 * Sleeps.  poll_us: before sleeping on a page transfer, wait for up to
 * that long in this task, running the softirqs pending on this CPU (the
 * RDMA device's tasks, the CQ's irq_poll) as they are raised, rather than
 * letting the CPU go idle and the completion wake us.  It trades CPU time
 * for the fault's latency; it stops early when another task needs the
 * CPU.
 */
static void rswap_page_poll(struct rswap_dev *dev, struct rswap_page_io *io)
{
	u64 end;

	if (!dev->cfg.poll_us)
		return;
	end = local_clock() + (u64)dev->cfg.poll_us * NSEC_PER_USEC;
	while (!completion_done(&io->done) && !need_resched() &&
	       local_clock() < end) {
		local_bh_disable();
		local_bh_enable();	/* runs what is pending */
		cpu_relax();
	}
}

/*
 * Sleeps.  Wait for a posted page transfer; true if it succeeded.  The
 * wait is not interruptible and has no timeout of its own: the work
 * request points at this stack frame and the page, so it must end
 * (success, RC retry exhaustion, or the flush of error recovery's drain)
 * before we return.
 */
static bool rswap_page_wait(struct rswap_dev *dev, struct rswap_page_io *io,
			    struct rswap_place *place, u64 off)
{
	rswap_page_poll(dev, io);
	wait_for_completion_io(&io->done);
	rswap_rdma_unmap(&io->req);
	rswap_place_put(dev, place);
	if (io->status == IB_WC_SUCCESS)
		return true;
	if (io->status != IB_WC_WR_FLUSH_ERR) {
		atomic64_inc(&io->req.sess->errors);
		rswap_sess_err_rl(io->req.sess, "%s of a page at %llu: %s; reconnecting\n",
				  io->req.write ? "WRITE" : "READ", off,
				  ib_wc_status_msg(io->status));
	}
	rswap_sess_error_recovery(io->req.sess);
	return false;
}

/*
 * Sleeps.  A frontswap store: to every copy in sync whose session is
 * LIVE, at once, never waiting for a reconnect nor going to a chunk that
 * is moving (frontswap then writes the page to the swap device).  It
 * stands if a copy took it; the copies that did not are stale.
 */
static int rswap_rdma_store_page(struct rswap_dev *dev, u64 off,
				 struct page *page)
{
	struct rswap_page_io io[RSWAP_MAX_COPIES];
	unsigned long posted = 0, ok = 0, missed = 0;
	int first = -ENOTCONN;
	bool skipped = false;
	struct rswap_sess *sess = NULL;
	struct rswap_place *place;
	struct rswap_slot *slot;
	unsigned int r, nr;
	u64 chunk_off;
	int ret;

	rcu_read_lock();
	place = rswap_rdma_route(dev, off, PAGE_SIZE, &chunk_off, &slot, &sess,
				 &ret);
	if (place && place->move) {
		place = NULL;
		ret = -EBUSY;
	}
	if (!place) {
		rcu_read_unlock();
		rswap_rdma_count_refusal(dev, sess, true, ret, off, PAGE_SIZE);
		return ret;
	}
	/*
	 * Ours until the stale marks and dirty pages are set: a resync
	 * waits for every request of the placement before it looks.
	 */
	atomic_inc(&place->inflight);
	nr = place->nr;
	for (r = 0; r < nr; r++) {
		if (test_bit(r, &slot->stale)) {
			skipped = true;
			continue;
		}
		rswap_page_post(dev, &io[r], page, true, place, r, chunk_off);
		if (!io[r].ret) {
			posted |= BIT(r);
			continue;
		}
		/* Queue full on the first copy refused: retry, as before. */
		if (!missed && io[r].ret == -EBUSY)
			first = -EBUSY;
		missed |= BIT(r);
	}
	rcu_read_unlock();
	/* No copy reachable now: the page goes to the swap device. */
	if (!posted) {
		ret = first;
		goto out_put;
	}
	for_each_set_bit(r, &posted, nr) {
		if (rswap_page_wait(dev, &io[r], place, off))
			ok |= BIT(r);
		else
			missed |= BIT(r);
	}
	if (!ok) {
		rswap_count_err(dev, RSWAP_ERR_IO);
		ret = -EIO;
		goto out_put;
	}
	if (missed || skipped)
		rswap_slot_dirty(&dev->core, slot, chunk_off, PAGE_SIZE);
	for_each_set_bit(r, &missed, nr)
		rswap_copy_stale(dev, slot, r);
	for_each_set_bit(r, &ok, nr) {
		atomic64_inc(&io[r].req.sess->writes);
		atomic64_add(PAGE_SIZE, &io[r].req.sess->bytes_written);
	}
	ret = 0;
out_put:
	rswap_place_put(dev, place);
	return ret;
}

/*
 * Sleeps.  A frontswap load from one copy in sync, re-issued on another
 * one if it fails; it waits for a reconnect (up to fail_io_tmo) only
 * when no copy in sync is LIVE.
 */
static int rswap_rdma_load_page(struct rswap_dev *dev, u64 off,
				struct page *page)
{
	struct rswap_sess *sess = NULL;
	struct rswap_page_io io;
	struct rswap_place *place;
	struct rswap_slot *slot;
	unsigned int tries;
	bool failed = false;
	u64 chunk_off, t0;
	int ret, r;

	io.status = IB_WC_WR_FLUSH_ERR;
	t0 = ktime_get_ns();
	for (tries = 0; tries < RSWAP_PAGE_TRIES * RSWAP_MAX_COPIES; tries++) {
		rcu_read_lock();
		place = rswap_rdma_route(dev, off, PAGE_SIZE, &chunk_off, &slot,
					 &sess, &ret);
		r = place ? rswap_read_pick(slot, place, rswap_read_turn(),
					    &sess) :
			    ret;
		if (r >= 0) {
			rswap_page_post(dev, &io, page, false, place, r,
					chunk_off);
			r = io.ret;
		}
		rcu_read_unlock();
		if (r == -EAGAIN) {
			/* Back, down for good, or the chunk is elsewhere now. */
			rswap_sess_wait_ready(sess);
			continue;
		}
		if (r) {
			rswap_rdma_count_refusal(dev, sess, false, r, off,
						 PAGE_SIZE);
			return r;
		}
		if (rswap_page_wait(dev, &io, place, off))
			break;
		failed = true;
	}
	if (io.status != IB_WC_SUCCESS || rswap_inject_read_error(dev)) {
		rswap_count_err(dev, RSWAP_ERR_IO);
		return -EIO;
	}
	if (failed)
		rswap_failover_done(dev, t0);
	atomic64_inc(&io.req.sess->reads);
	atomic64_add(PAGE_SIZE, &io.req.sess->bytes_read);
	return 0;
}

static int rswap_rdma_rw_page(struct rswap_dev *dev, u64 off,
			      struct page *page, bool write)
{
	return write ? rswap_rdma_store_page(dev, off, page) :
		       rswap_rdma_load_page(dev, off, page);
}

const struct rswap_backend_ops rswap_rdma_ops = {
	.name = "rdma",
	.map_sg = true,
	.queue_rq = rswap_rdma_queue_rq,
	.rw_page = rswap_rdma_rw_page,
	.timeout = rswap_rdma_timeout,
	/* Discard: the chunk stays the client's; nothing to free remotely. */
	.show_poolds = rswap_rdma_show_poolds,
};
