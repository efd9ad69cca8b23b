// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA backend, I/O side: rswap_rdma_route() finds a request's placement,
 * rswap_rdma_post_rep() checks and posts one RDMA READ or WRITE to one
 * copy, for either front-end (a block request: one SGE per segment; a
 * frontswap page: one SGE) and for a move's copy; the completions; the
 * blk-mq timeout.
 *
 * What a request meets, by the state of its slot and session:
 *   slot lost            I/O error at once (its poold lost the memory)
 *   session LIVE         posted; a failed completion (a flush included)
 *                        enters error recovery and the request waits
 *   CONNECTING or
 *   RECONNECTING         waits (blk: parked on the session; frontswap: a
 *                        load sleeps, a store goes to the swap device)
 *   DEAD, DELETING       I/O error (down for longer than fail_io_tmo)
 *   chunk moving         reads go to the old copy; a block write goes to
 *                        both copies (held while its window is copied),
 *                        a frontswap store goes to the swap device
 * Data is never reported read unless its READ completed successfully.
 *
 * Every request counts itself in the placement it was posted under
 * (place->inflight) until it ends or waits, so that a move can tell when
 * no request uses an old placement any more.
 *
 * Contexts: queue_rq runs in atomic context; completions in the CQ's
 * softirq; rw_page sleeps; the timeout runs from the blk-mq timeout work.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

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
 * Never sleeps; under rcu_read_lock() (error recovery waits for us before
 * it destroys the QPs).  Post one RDMA READ or WRITE of req's pages to
 * replica rep at chunk_off, on queue pair qidx (modulo their count) of
 * its session.  0: posted, req->cqe.done will run.  Otherwise nothing is
 * posted: -EAGAIN (the session is reconnecting: wait for it, req->sess
 * names it), -ENOTCONN (down for longer than fail_io_tmo), -EBUSY (send
 * queue full or no DMA mapping: retry soon).
 */
int rswap_rdma_post_rep(struct rswap_dev *dev, struct rswap_rdma_req *req,
			const struct rswap_replica *rep, u64 chunk_off,
			unsigned int qidx)
{
	enum dma_data_direction dir = rswap_req_dir(req);
	struct rswap_sess *sess = rep->sess;
	struct ib_rdma_wr wr = {};
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
	for_each_sg(req->sg, sg, count, i) {
		req->sge[i].addr = sg_dma_address(sg);
		req->sge[i].length = sg_dma_len(sg);
		req->sge[i].lkey = qp->pd->local_dma_lkey;
	}
	wr.wr.wr_cqe = &req->cqe;
	wr.wr.opcode = req->write ? IB_WR_RDMA_WRITE : IB_WR_RDMA_READ;
	wr.wr.send_flags = IB_SEND_SIGNALED;
	wr.wr.sg_list = req->sge;
	wr.wr.num_sge = count;
	wr.remote_addr = rep->addr + chunk_off;
	wr.rkey = rep->rkey;

	ret = ib_post_send(qp->cm_id->qp, &wr.wr, NULL);
	if (likely(!ret))
		return 0;
	rswap_rdma_unmap(req);
	if (ret == -ENOMEM || ret == -EAGAIN)
		return -EBUSY;
	/* Anything else means the QP is broken: recover, and wait. */
	atomic64_inc(&sess->errors);
	rswap_count_err(dev, RSWAP_ERR_POST);
	rswap_sess_err_rl(sess, "cannot post on queue pair %u: %d; reconnecting\n",
			  qp->index, ret);
	rswap_sess_error_recovery(sess);
	return -EAGAIN;
}

/*
 * Under rcu_read_lock().  The placement of [off, off + len) with
 * *chunk_off set, or NULL with *err: -ERANGE (outside the pool or across
 * a chunk), -EIO (the slot is lost).  req->sess names its first copy.
 */
static struct rswap_place *rswap_rdma_route(struct rswap_dev *dev,
					    struct rswap_rdma_req *req,
					    u64 off, u32 len, u64 *chunk_off,
					    int *err)
{
	struct rswap_place *place;
	struct rswap_slot *slot;

	req->ibdev = NULL;
	req->sess = NULL;
	slot = rswap_core_route(&dev->core, off, len, chunk_off);
	if (unlikely(!slot)) {
		*err = -ERANGE;
		return NULL;
	}
	place = rcu_dereference(slot->place);
	req->sess = place->rep[0].sess;
	if (unlikely(READ_ONCE(slot->lost))) {
		*err = -EIO;
		return NULL;
	}
	return place;
}

/* Any context.  The session of the copy that serves off now. */
static struct rswap_sess *rswap_rdma_first_sess(struct rswap_dev *dev, u64 off)
{
	struct rswap_slot *slot;
	struct rswap_sess *sess;
	u64 chunk_off;

	slot = rswap_core_route(&dev->core, off, PAGE_SIZE, &chunk_off);
	if (!slot)
		return NULL;
	rcu_read_lock();
	sess = rcu_dereference(slot->place)->rep[0].sess;
	rcu_read_unlock();
	return sess;
}

/* Count why a request was not posted; -EAGAIN is not a failure. */
static void rswap_rdma_count_refusal(struct rswap_dev *dev,
				     struct rswap_rdma_req *req, int err,
				     u64 off, u32 len)
{
	switch (err) {
	case -ERANGE:
		rswap_count_err(dev, RSWAP_ERR_RANGE);
		rswap_err_rl(dev, "request at %llu of %u bytes crosses a chunk or the end\n",
			     off, len);
		break;
	case -EIO:
		rswap_count_err(dev, RSWAP_ERR_LOST);
		rswap_sess_err_rl(req->sess, "%s at %llu: chunk lost (poold restarted)\n",
				  req->write ? "write" : "read", off);
		break;
	case -ENOTCONN:
		atomic64_inc(&req->sess->errors);
		rswap_count_err(dev, RSWAP_ERR_DOWN);
		rswap_sess_err_rl(req->sess, "down for longer than fail_io_tmo; failing I/O\n");
		break;
	case -EBUSY:
		rswap_count_err(dev, RSWAP_ERR_BUSY);
		break;
	}
}

/*
 * Any context.  The request's session is not LIVE: park it until it is,
 * or hand it back for dispatch if it already is again, or fail it.
 */
static void rswap_rdma_wait(struct rswap_dev *dev, struct rswap_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct rswap_sess *sess = cmd->req.sess;

	if (rswap_sess_park(sess, cmd))
		return;
	if (rswap_sess_state(sess) == RSWAP_SESS_LIVE) {
		rswap_blk_requeue(dev, rq);
		return;
	}
	rswap_rdma_count_refusal(dev, &cmd->req, -ENOTCONN, 0, 0);
	rswap_blk_end(dev, rq, BLK_STS_IOERR);
}

/* Any context: both halves of a block request have ended. */
static void rswap_cmd_finish(struct rswap_cmd *cmd)
{
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct rswap_place *place = cmd->place;
	struct rswap_sess *sess = cmd->req.sess;
	struct rswap_dev *dev = sess->dev;

	if (cmd->counted)
		rswap_move_write_end(place->move, cmd);
	cmd->place = NULL;
	rswap_place_put(dev, place);
	if (cmd->failed) {
		rswap_rdma_wait(dev, cmd);
		return;
	}
	if (!cmd->req.write && rswap_inject_read_error(dev)) {
		/* Never report unknown data as read. */
		atomic64_inc(&sess->errors);
		rswap_count_err(dev, RSWAP_ERR_IO);
		rswap_blk_end(dev, rq, BLK_STS_IOERR);
		return;
	}
	if (cmd->req.write) {
		atomic64_inc(&sess->writes);
		atomic64_add(blk_rq_bytes(rq), &sess->bytes_written);
	} else {
		atomic64_inc(&sess->reads);
		atomic64_add(blk_rq_bytes(rq), &sess->bytes_read);
	}
	rswap_blk_end(dev, rq, BLK_STS_OK);
}

/* Softirq (CQ): the RDMA READ or WRITE of one block request ended. */
static void rswap_io_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rswap_cmd *cmd = container_of(wc->wr_cqe, struct rswap_cmd,
					     req.cqe);
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct rswap_sess *sess = cmd->req.sess;

	rswap_rdma_unmap(&cmd->req);
	if (unlikely(wc->status != IB_WC_SUCCESS)) {
		/* Flushes are what recovery's drain hands back. */
		if (wc->status != IB_WC_WR_FLUSH_ERR) {
			atomic64_inc(&sess->errors);
			rswap_sess_err_rl(sess, "%s of %u bytes at %llu failed: %s; reconnecting\n",
					  cmd->req.write ? "WRITE" : "READ",
					  blk_rq_bytes(rq),
					  (u64)blk_rq_pos(rq) << RSWAP_SECTOR_SHIFT,
					  ib_wc_status_msg(wc->status));
		}
		rswap_sess_error_recovery(sess);
		cmd->failed = true;
	}
	if (atomic_dec_and_test(&cmd->pending))
		rswap_cmd_finish(cmd);
}

/*
 * Softirq (CQ): the WRITE of a block request to a move's target ended.
 * It decides nothing for the request: the first copy holds the data; a
 * failure ends the move (aborted, the target copy is dropped).
 */
static void rswap_io2_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rswap_cmd *cmd = container_of(wc->wr_cqe, struct rswap_cmd,
					     req2.cqe);
	struct rswap_sess *sess = cmd->req2.sess;

	rswap_rdma_unmap(&cmd->req2);
	if (unlikely(wc->status != IB_WC_SUCCESS)) {
		if (wc->status != IB_WC_WR_FLUSH_ERR) {
			atomic64_inc(&sess->errors);
			rswap_sess_error_recovery(sess);
		}
		rswap_move_fail(cmd->place->move, -EIO,
				"a write to the target failed");
	}
	if (atomic_dec_and_test(&cmd->pending))
		rswap_cmd_finish(cmd);
}

/*
 * Atomic context, under rcu_read_lock().  Also write the request to the
 * move's target.  A target that cannot take it ends the move; the write
 * to the first copy goes on.
 */
static void rswap_rdma_post_copy(struct rswap_dev *dev, struct rswap_cmd *cmd,
				 struct rswap_place *place, u64 chunk_off,
				 unsigned int qidx)
{
	int ret;

	cmd->req2.cqe.done = rswap_io2_done;
	cmd->req2.sg = cmd->sg2;
	cmd->req2.sge = cmd->sge2;
	cmd->req2.write = true;
	cmd->req2.nents = cmd->req.nents;
	/* Mapped apart: the target may sit behind another RDMA device. */
	memcpy(cmd->sg2, cmd->sg, cmd->req.nents * sizeof(cmd->sg[0]));
	atomic_inc(&cmd->pending);
	ret = rswap_rdma_post_rep(dev, &cmd->req2, &place->rep[1], chunk_off,
				  qidx);
	if (likely(!ret))
		return;
	rswap_move_fail(place->move, ret == -EBUSY ? -EBUSY : -ENOTCONN,
			ret == -EBUSY ? "the target's send queue was full" :
					"the target is not connected");
	atomic_dec(&cmd->pending);	/* never the last: queue_rq holds one */
}

/* Atomic context: no allocation, nothing that sleeps. */
static blk_status_t rswap_rdma_queue_rq(struct rswap_dev *dev,
					unsigned int qidx, struct request *rq)
{
	struct rswap_cmd *cmd = blk_mq_rq_to_pdu(rq);
	u64 off = (u64)blk_rq_pos(rq) << RSWAP_SECTOR_SHIFT;
	u32 len = blk_rq_bytes(rq);
	struct rswap_place *place;
	bool copy = false;
	u64 chunk_off;
	int ret;

	cmd->req.cqe.done = rswap_io_done;
	cmd->req.sg = cmd->sg;
	cmd->req.sge = cmd->sge;
	cmd->req.write = rq_data_dir(rq) == WRITE;
	cmd->parked = false;
	cmd->failed = false;
	cmd->counted = false;
	sg_init_table(cmd->sg, RSWAP_MAX_SEGMENTS);
	cmd->req.nents = rswap_compat_map_sg(rq, cmd->sg);

	rcu_read_lock();
	place = rswap_rdma_route(dev, &cmd->req, off, len, &chunk_off, &ret);
	if (unlikely(!place))
		goto out_refused;
	if (unlikely(place->move) && cmd->req.write) {
		/* Its window is being copied: wait for the next one. */
		if (rswap_move_hold(place->move, cmd, chunk_off, len)) {
			rcu_read_unlock();
			return BLK_STS_OK;
		}
		copy = true;
	}
	cmd->place = place;
	atomic_inc(&place->inflight);
	/* One for the first copy's half, one for us until both are posted. */
	atomic_set(&cmd->pending, 2);
	ret = rswap_rdma_post_rep(dev, &cmd->req, &place->rep[0], chunk_off,
				  qidx);
	if (likely(!ret)) {
		if (copy)
			rswap_rdma_post_copy(dev, cmd, place, chunk_off, qidx);
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
		rswap_rdma_count_refusal(dev, &cmd->req, ret, off, 0);
		return BLK_STS_RESOURCE;
	default:
		rswap_rdma_count_refusal(dev, &cmd->req, ret, off, len);
		return BLK_STS_IOERR;
	}
}

/*
 * blk-mq timeout work: a request not completed after
 * RSWAP_RQ_TIMEOUT_SECS.  A parked or held one waits for its session
 * (bounded by fail_io_tmo) or its window; a posted one means the queue
 * pair is stuck: recover, and recovery's drain completes it (flushed,
 * then it waits or fails).
 */
static enum blk_eh_timer_return rswap_rdma_timeout(struct rswap_dev *dev,
						   struct request *rq)
{
	struct rswap_cmd *cmd = blk_mq_rq_to_pdu(rq);
	struct rswap_sess *sess = cmd->req.sess;

	if (!sess || READ_ONCE(cmd->parked))
		return BLK_EH_RESET_TIMER;
	rswap_sess_warn_rl(sess, "%s of %u bytes at %llu not done after %u s; reconnecting\n",
			   cmd->req.write ? "WRITE" : "READ", blk_rq_bytes(rq),
			   (u64)blk_rq_pos(rq) << RSWAP_SECTOR_SHIFT,
			   RSWAP_RQ_TIMEOUT_SECS);
	rswap_sess_error_recovery(sess);
	return BLK_EH_RESET_TIMER;
}

/* One synchronous page transfer (frontswap), waited for on the stack. */
struct rswap_page_io {
	struct rswap_rdma_req req;
	struct completion done;
	enum ib_wc_status status;
};

/* Softirq (CQ). */
static void rswap_page_io_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rswap_page_io *io = container_of(wc->wr_cqe,
						struct rswap_page_io, req.cqe);

	io->status = wc->status;
	complete(&io->done);
}

/*
 * Sleeps: one RDMA READ or WRITE of the page on this CPU's queue pair to
 * the poold holding off, then its completion.  The completion wait is not
 * interruptible and has no timeout of its own: the work request points at
 * this stack frame and the page, so it must end (success, RC retry
 * exhaustion, or the flush of error recovery's drain) before we return.
 * A store never waits for a reconnect, nor goes to a chunk that is moving
 * (frontswap then writes the page to the swap device); a load waits for
 * a reconnect up to fail_io_tmo.
 */
static int rswap_rdma_rw_page(struct rswap_dev *dev, u64 off,
			      struct page *page, bool write)
{
	struct rswap_place *place;
	struct rswap_page_io io;
	struct scatterlist sg;
	struct ib_sge sge;
	unsigned int tries;
	u64 chunk_off;
	int ret;

	for (tries = 0; tries < RSWAP_PAGE_TRIES; tries++) {
		sg_init_table(&sg, 1);
		sg_set_page(&sg, page, PAGE_SIZE, 0);
		memset(&io.req, 0, sizeof(io.req));
		io.req.cqe.done = rswap_page_io_done;
		io.req.sg = &sg;
		io.req.sge = &sge;
		io.req.nents = 1;
		io.req.write = write;
		io.status = IB_WC_WR_FLUSH_ERR;	/* until a completion says */
		init_completion(&io.done);

		rcu_read_lock();
		place = rswap_rdma_route(dev, &io.req, off, PAGE_SIZE,
					 &chunk_off, &ret);
		if (place && write && place->move) {
			place = NULL;
			ret = -EBUSY;
		}
		if (place) {
			atomic_inc(&place->inflight);
			ret = rswap_rdma_post_rep(dev, &io.req, &place->rep[0],
						  chunk_off,
						  raw_smp_processor_id());
			if (ret)
				rswap_place_put(dev, place);
		}
		rcu_read_unlock();
		if (ret == -EAGAIN) {
			if (write)
				return -ENOTCONN;
			ret = rswap_sess_wait_ready(io.req.sess);
			/* Back, or the chunk is elsewhere now (moved, idle). */
			if (!ret || rswap_rdma_first_sess(dev, off) != io.req.sess)
				continue;
		}
		if (ret) {
			rswap_rdma_count_refusal(dev, &io.req, ret, off,
						 PAGE_SIZE);
			return ret;
		}
		wait_for_completion_io(&io.done);
		rswap_rdma_unmap(&io.req);
		rswap_place_put(dev, place);
		if (io.status == IB_WC_SUCCESS)
			break;
		if (io.status != IB_WC_WR_FLUSH_ERR) {
			atomic64_inc(&io.req.sess->errors);
			rswap_sess_err_rl(io.req.sess, "%s of a page at %llu: %s; reconnecting\n",
					  write ? "WRITE" : "READ", off,
					  ib_wc_status_msg(io.status));
		}
		rswap_sess_error_recovery(io.req.sess);
		if (write)
			break;
	}
	if (io.status != IB_WC_SUCCESS ||
	    (!write && rswap_inject_read_error(dev))) {
		rswap_count_err(dev, RSWAP_ERR_IO);
		return -EIO;
	}
	if (write) {
		atomic64_inc(&io.req.sess->writes);
		atomic64_add(PAGE_SIZE, &io.req.sess->bytes_written);
	} else {
		atomic64_inc(&io.req.sess->reads);
		atomic64_add(PAGE_SIZE, &io.req.sess->bytes_read);
	}
	return 0;
}

const struct rswap_backend_ops rswap_rdma_ops = {
	.name = "rdma",
	.queue_rq = rswap_rdma_queue_rq,
	.rw_page = rswap_rdma_rw_page,
	.timeout = rswap_rdma_timeout,
	/* Discard: the chunk stays the client's; nothing to free remotely. */
	.show_poolds = rswap_rdma_show_poolds,
};
