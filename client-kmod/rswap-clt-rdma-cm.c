// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA backend: one session per poold named in the chunk map, one RC queue
 * pair per block hardware queue in each session (proto/rswap_wire.h has
 * the connection protocol).  Set up entirely in module init, before the
 * block device exists; torn down in module exit after the block device is
 * gone, so the I/O path never races with setup or teardown.
 *
 * I/O: a block request is one RDMA READ or WRITE, one SGE per segment, on
 * the queue pair of its hardware queue to the poold holding its chunk.  A
 * failed work completion fails the request (BLK_STS_IOERR); data is never
 * reported read unless the READ completed successfully.
 *
 * Contexts: setup and teardown sleep; queue_rq runs in atomic context;
 * completions run in the CQ's softirq; CM events in the rdma_cm workqueue.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bsearch.h>
#include <linux/completion.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <rdma/ib_verbs.h>
#include <rdma/rdma_cm.h>

#include "rswap-clt.h"
#include "rswap-clt-pb.h"
#include "rswap-compat.h"

/* Queue pair state bits; test_and_clear_bit() keeps teardown idempotent. */
enum rswap_qp_bit {
	RSWAP_QP_ALLOCATED,	/* PD, CQ, QP and receive buffers exist */
	RSWAP_QP_CONNECTED,	/* reached ESTABLISHED once: drain before destroy */
	RSWAP_QP_LIVE,		/* connected now: I/O may be posted */
};

struct rswap_qp;

/* A receive buffer for the chunk table (queue pair 0 only). */
struct rswap_recv {
	struct ib_cqe cqe;
	struct rswap_qp *qp;
	void *buf;
	u64 dma;
};

struct rswap_qp {
	struct rswap_sess *sess;
	u16 index;
	unsigned long flags;
	struct rdma_cm_id *cm_id;
	struct ib_pd *pd;
	struct ib_cq *cq;
	u32 max_sge;

	/* One CM step at a time: the waiter re-arms, the handler completes. */
	struct completion cm_done;
	int cm_error;
	struct rswap_conn_acc acc;	/* valid once ESTABLISHED */

	unsigned int nr_recvs;
	struct rswap_recv *recvs;
};

struct rswap_sess {
	struct rswap_dev *dev;
	char addr_str[RSWAP_PB_ADDR_MAX];
	struct sockaddr_storage addr;
	u64 cookie;
	u32 nr_slots;			/* slots of our map on this poold */

	/* Chunk table, filled by the receive completions of queue pair 0. */
	struct completion table_done;
	int table_error;
	u32 table_total;
	u32 table_got;
	u32 desc_cap;
	struct rswap_chunk_desc *descs;

	atomic64_t reads;
	atomic64_t writes;
	atomic64_t bytes_read;
	atomic64_t bytes_written;
	atomic64_t errors;

	unsigned int nr_qps;
	struct rswap_qp qps[];
};

struct rswap_rdma {
	unsigned int nr_sess;
	struct rswap_sess *sess[];
};

#define rswap_sess_err(s, fmt, ...) \
	pr_err("poold %s: " fmt, (s)->addr_str, ##__VA_ARGS__)
#define rswap_sess_warn(s, fmt, ...) \
	pr_warn("poold %s: " fmt, (s)->addr_str, ##__VA_ARGS__)
#define rswap_sess_err_rl(s, fmt, ...) \
	pr_err_ratelimited("poold %s: " fmt, (s)->addr_str, ##__VA_ARGS__)
#define rswap_sess_warn_rl(s, fmt, ...) \
	pr_warn_ratelimited("poold %s: " fmt, (s)->addr_str, ##__VA_ARGS__)

const char *rswap_slot_poold_name(const struct rswap_slot *slot)
{
	return slot->sess ? slot->sess->addr_str : "dram";
}

/* ---- connection management ----------------------------------------------- */

static int rswap_rej_errno(u16 reason)
{
	switch (reason) {
	case RSWAP_REJ_VERSION:
		return -EPROTONOSUPPORT;
	case RSWAP_REJ_NO_CHUNKS:
		return -ENOENT;
	case RSWAP_REJ_TOO_MANY_QPS:
		return -EUSERS;
	case RSWAP_REJ_NO_RESOURCES:
		return -ENOBUFS;
	case RSWAP_REJ_SHUTTING_DOWN:
		return -ESHUTDOWN;
	case RSWAP_REJ_BAD_REQUEST:
	case RSWAP_REJ_SESSION:
		return -EPROTO;
	default:
		return -ECONNREFUSED;
	}
}

static const char *rswap_rej_str(u16 reason)
{
	static const char *const names[] = {
		[RSWAP_REJ_NONE] = "no reason given",
		[RSWAP_REJ_BAD_REQUEST] = "bad connect request",
		[RSWAP_REJ_VERSION] = "no common protocol version",
		[RSWAP_REJ_NO_CHUNKS] = "it holds no chunks for this client",
		[RSWAP_REJ_TOO_MANY_QPS] = "too many queue pairs",
		[RSWAP_REJ_NO_RESOURCES] = "out of resources",
		[RSWAP_REJ_SHUTTING_DOWN] = "shutting down",
		[RSWAP_REJ_SESSION] = "inconsistent session",
	};

	return reason < ARRAY_SIZE(names) ? names[reason] : "unknown reason";
}

/* CM event in the rdma_cm workqueue: log, decode, wake the waiter. */
static void rswap_cm_rejected(struct rswap_qp *qp, struct rdma_cm_event *ev)
{
	struct rswap_sess *sess = qp->sess;
	struct rswap_conn_rej rej;
	const void *data;
	u8 len = 0;

	data = rdma_consumer_reject_data(qp->cm_id, ev, &len);
	if (!data) {
		rswap_sess_err(sess, "refused queue pair %u: %s; is poold listening there?\n",
			       qp->index, rdma_reject_msg(qp->cm_id, ev->status));
		qp->cm_error = -ECONNREFUSED;
		return;
	}
	if (len < sizeof(rej)) {
		rswap_sess_err(sess, "refused queue pair %u with %u bytes of reject data\n",
			       qp->index, len);
		qp->cm_error = -ECONNREFUSED;
		return;
	}
	memcpy(&rej, data, sizeof(rej));
	if (le32_to_cpu(rej.magic) != RSWAP_WIRE_MAGIC) {
		rswap_sess_err(sess, "refused queue pair %u (reject data without the rswap magic)\n",
			       qp->index);
		qp->cm_error = -ECONNREFUSED;
		return;
	}
	qp->cm_error = rswap_rej_errno(le16_to_cpu(rej.reason));
	rswap_sess_err(sess, "refused queue pair %u/%u: %s (poold speaks protocol %u, this client %u)\n",
		       qp->index, qp->sess->nr_qps,
		       rswap_rej_str(le16_to_cpu(rej.reason)),
		       le16_to_cpu(rej.version), RSWAP_WIRE_VERSION);
}

static void rswap_cm_established(struct rswap_qp *qp,
				 struct rdma_cm_event *ev)
{
	const struct rdma_conn_param *p = &ev->param.conn;
	struct rswap_sess *sess = qp->sess;
	u16 version;

	if (!p->private_data || p->private_data_len < sizeof(qp->acc)) {
		rswap_sess_err(sess, "accepted queue pair %u with %u bytes of private data, expected %zu\n",
			       qp->index, p->private_data_len, sizeof(qp->acc));
		qp->cm_error = -EPROTO;
		return;
	}
	memcpy(&qp->acc, p->private_data, sizeof(qp->acc));
	version = le16_to_cpu(qp->acc.version);
	if (le32_to_cpu(qp->acc.magic) != RSWAP_WIRE_MAGIC ||
	    version < RSWAP_WIRE_VERSION_MIN || version > RSWAP_WIRE_VERSION) {
		rswap_sess_err(sess, "accepted queue pair %u with protocol %u (magic %#x); this client speaks %u..%u\n",
			       qp->index, version, le32_to_cpu(qp->acc.magic),
			       RSWAP_WIRE_VERSION_MIN, RSWAP_WIRE_VERSION);
		qp->cm_error = -EPROTO;
		return;
	}
	set_bit(RSWAP_QP_CONNECTED, &qp->flags);
	set_bit(RSWAP_QP_LIVE, &qp->flags);
	qp->cm_error = 0;
}

static int rswap_cm_handler(struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	struct rswap_qp *qp = id->context;
	struct rswap_sess *sess = qp->sess;

	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		qp->cm_error = 0;
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
		rswap_sess_err(sess, "cannot resolve the address: %d; is an RDMA device up on that network?\n",
			       ev->status);
		qp->cm_error = -EHOSTUNREACH;
		break;
	case RDMA_CM_EVENT_ROUTE_ERROR:
		rswap_sess_err(sess, "no route: %d\n", ev->status);
		qp->cm_error = -ENETUNREACH;
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		rswap_cm_established(qp, ev);
		break;
	case RDMA_CM_EVENT_REJECTED:
		rswap_cm_rejected(qp, ev);
		break;
	case RDMA_CM_EVENT_UNREACHABLE:
		rswap_sess_err(sess, "unreachable (queue pair %u): %d\n",
			       qp->index, ev->status);
		qp->cm_error = -EHOSTUNREACH;
		break;
	case RDMA_CM_EVENT_CONNECT_ERROR:
		rswap_sess_err(sess, "connect error on queue pair %u: %d\n",
			       qp->index, ev->status);
		qp->cm_error = -ECONNRESET;
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
		/* Requests in flight fail with flush errors; new ones fail. */
		if (test_and_clear_bit(RSWAP_QP_LIVE, &qp->flags))
			rswap_sess_warn(sess, "disconnected queue pair %u; its I/O now fails\n",
					qp->index);
		return 0;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		clear_bit(RSWAP_QP_LIVE, &qp->flags);
		rswap_sess_warn(sess, "RDMA device removed under queue pair %u\n",
				qp->index);
		return 0;
	default:
		return 0;
	}
	complete(&qp->cm_done);
	return 0;
}

/* Sleeps: wait for the CM step just started to end. */
static int rswap_qp_wait(struct rswap_qp *qp, const char *step)
{
	unsigned int ms = qp->sess->dev->cfg.timeout_ms;
	long left;

	left = wait_for_completion_interruptible_timeout(&qp->cm_done,
							 msecs_to_jiffies(ms));
	if (left < 0) {
		rswap_sess_err(qp->sess, "interrupted during %s of queue pair %u\n",
			       step, qp->index);
		return left;
	}
	if (!left) {
		rswap_sess_err(qp->sess, "no answer to %s of queue pair %u within %u ms\n",
			       step, qp->index, ms);
		return -ETIMEDOUT;
	}
	return qp->cm_error;
}

/* ---- chunk table --------------------------------------------------------- */

static int rswap_table_msg(struct rswap_sess *sess, const u8 *buf, u32 len)
{
	struct rswap_msg_hdr hdr;
	u32 first, count, total;

	if (len < sizeof(hdr)) {
		rswap_sess_err(sess, "chunk table message of %u bytes, shorter than its header\n",
			       len);
		return -EPROTO;
	}
	memcpy(&hdr, buf, sizeof(hdr));
	first = le32_to_cpu(hdr.first);
	count = le32_to_cpu(hdr.count);
	total = le32_to_cpu(hdr.total);
	if (le32_to_cpu(hdr.magic) != RSWAP_WIRE_MAGIC ||
	    le16_to_cpu(hdr.type) != RSWAP_MSG_CHUNK_TABLE) {
		rswap_sess_err(sess, "unexpected message (magic %#x, type %u) instead of the chunk table\n",
			       le32_to_cpu(hdr.magic), le16_to_cpu(hdr.type));
		return -EPROTO;
	}
	if (!count || count > RSWAP_DESCS_PER_MSG ||
	    len < sizeof(hdr) + (size_t)count * sizeof(struct rswap_chunk_desc)) {
		rswap_sess_err(sess, "chunk table message of %u bytes claims %u descriptors\n",
			       len, count);
		return -EPROTO;
	}
	if (first != sess->table_got ||
	    (sess->table_got && total != sess->table_total) ||
	    total > sess->desc_cap || count > total - first) {
		rswap_sess_err(sess, "chunk table out of order or too large: descriptors %u+%u of %u (have %u, room for %u)\n",
			       first, count, total, sess->table_got,
			       sess->desc_cap);
		return -EPROTO;
	}
	sess->table_total = total;
	memcpy(&sess->descs[first], buf + sizeof(hdr),
	       (size_t)count * sizeof(struct rswap_chunk_desc));
	sess->table_got += count;
	return 0;
}

/* Softirq (CQ of queue pair 0). */
static void rswap_recv_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rswap_recv *r = container_of(wc->wr_cqe, struct rswap_recv, cqe);
	struct rswap_sess *sess = r->qp->sess;
	struct ib_device *ibdev = r->qp->pd->device;
	int ret;

	if (wc->status != IB_WC_SUCCESS) {
		/* Flushes are how teardown returns our receive buffers. */
		if (wc->status == IB_WC_WR_FLUSH_ERR)
			return;
		rswap_sess_err_rl(sess, "chunk table receive failed: %s\n",
				  ib_wc_status_msg(wc->status));
		ret = -EIO;
		goto out_complete;
	}
	if (sess->table_error || (sess->table_total &&
				  sess->table_got == sess->table_total)) {
		rswap_sess_warn_rl(sess, "unexpected message after the chunk table ignored\n");
		return;
	}
	ib_dma_sync_single_for_cpu(ibdev, r->dma, RSWAP_MSG_MAX,
				   DMA_FROM_DEVICE);
	ret = rswap_table_msg(sess, r->buf, wc->byte_len);
	if (!ret && sess->table_got < sess->table_total)
		return;

out_complete:
	sess->table_error = ret;
	complete(&sess->table_done);
}

static void rswap_qp_free_recvs(struct rswap_qp *qp)
{
	struct ib_device *ibdev = qp->pd->device;
	unsigned int i;

	for (i = 0; i < qp->nr_recvs; i++) {
		struct rswap_recv *r = &qp->recvs[i];

		if (r->dma)
			ib_dma_unmap_single(ibdev, r->dma, RSWAP_MSG_MAX,
					    DMA_FROM_DEVICE);
		kfree(r->buf);
	}
	kfree(qp->recvs);
	qp->recvs = NULL;
	qp->nr_recvs = 0;
}

/* Sleeps.  Receive buffers for the whole table, posted before connect. */
static int rswap_qp_post_recvs(struct rswap_qp *qp, unsigned int n)
{
	struct ib_device *ibdev = qp->pd->device;
	unsigned int i;
	int ret;

	qp->recvs = kcalloc(n, sizeof(*qp->recvs), GFP_KERNEL);
	if (!qp->recvs)
		return -ENOMEM;
	qp->nr_recvs = n;
	for (i = 0; i < n; i++) {
		struct rswap_recv *r = &qp->recvs[i];
		struct ib_recv_wr wr = {};
		struct ib_sge sge;

		r->qp = qp;
		r->cqe.done = rswap_recv_done;
		r->buf = kmalloc(RSWAP_MSG_MAX, GFP_KERNEL);
		if (!r->buf)
			return -ENOMEM;
		r->dma = ib_dma_map_single(ibdev, r->buf, RSWAP_MSG_MAX,
					   DMA_FROM_DEVICE);
		if (ib_dma_mapping_error(ibdev, r->dma)) {
			r->dma = 0;
			return -ENOMEM;
		}
		sge.addr = r->dma;
		sge.length = RSWAP_MSG_MAX;
		sge.lkey = qp->pd->local_dma_lkey;
		wr.wr_cqe = &r->cqe;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		ret = ib_post_recv(qp->cm_id->qp, &wr, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- queue pair setup and teardown ---------------------------------------- */

static void rswap_qp_event(struct ib_event *ev, void *ctx)
{
	struct rswap_qp *qp = ctx;

	rswap_sess_warn_rl(qp->sess, "queue pair %u: %s\n", qp->index,
			   ib_event_msg(ev->event));
}

/*
 * Sleeps.  Send queue: one RDMA READ or WRITE per block request, at most
 * queue_depth requests in flight per hardware queue, plus one for the
 * drain work request of ib_drain_qp().  Receive queue: the chunk table
 * buffers (queue pair 0), plus one for the drain.  The CQ holds both.
 */
static int rswap_qp_alloc(struct rswap_qp *qp)
{
	struct rswap_sess *sess = qp->sess;
	struct ib_device *ibdev = qp->cm_id->device;
	unsigned int send_wr = sess->dev->cfg.queue_depth + 1;
	unsigned int table_msgs = 0, recv_wr;
	struct ib_qp_init_attr attr = {};
	int ret;

	if (!qp->index)
		table_msgs = DIV_ROUND_UP(sess->nr_slots, RSWAP_DESCS_PER_MSG);
	recv_wr = table_msgs + 1;
	if (send_wr > ibdev->attrs.max_qp_wr || recv_wr > ibdev->attrs.max_qp_wr) {
		rswap_sess_err(sess, "%s takes %d work requests per queue pair, %u needed: lower queue_depth\n",
			       dev_name(&ibdev->dev), ibdev->attrs.max_qp_wr,
			       max(send_wr, recv_wr));
		return -EINVAL;
	}
	qp->max_sge = min3((u32)ibdev->attrs.max_send_sge,
			   (u32)ibdev->attrs.max_sge_rd, RSWAP_MAX_SEGMENTS);
	if (!qp->max_sge) {
		rswap_sess_err(sess, "%s reports no SGEs for RDMA\n",
			       dev_name(&ibdev->dev));
		return -EINVAL;
	}

	qp->pd = ib_alloc_pd(ibdev, 0);
	if (IS_ERR(qp->pd)) {
		ret = PTR_ERR(qp->pd);
		goto out_clear_pd;
	}
	qp->cq = ib_alloc_cq(ibdev, qp, send_wr + recv_wr,
			     qp->index % ibdev->num_comp_vectors,
			     IB_POLL_SOFTIRQ);
	if (IS_ERR(qp->cq)) {
		ret = PTR_ERR(qp->cq);
		goto out_dealloc_pd;
	}
	attr.event_handler = rswap_qp_event;
	attr.qp_context = qp;
	attr.send_cq = qp->cq;
	attr.recv_cq = qp->cq;
	attr.cap.max_send_wr = send_wr;
	attr.cap.max_recv_wr = recv_wr;
	attr.cap.max_send_sge = qp->max_sge;
	attr.cap.max_recv_sge = 1;
	attr.sq_sig_type = IB_SIGNAL_REQ_WR;
	attr.qp_type = IB_QPT_RC;
	ret = rdma_create_qp(qp->cm_id, qp->pd, &attr);
	if (ret)
		goto out_free_cq;
	if (table_msgs) {
		ret = rswap_qp_post_recvs(qp, table_msgs);
		if (ret)
			goto out_free_recvs;
	}
	set_bit(RSWAP_QP_ALLOCATED, &qp->flags);
	return 0;

out_free_recvs:
	rswap_qp_free_recvs(qp);
	rdma_destroy_qp(qp->cm_id);
out_free_cq:
	ib_free_cq(qp->cq);
out_dealloc_pd:
	ib_dealloc_pd(qp->pd);
out_clear_pd:
	qp->pd = NULL;
	rswap_sess_err(sess, "cannot set up queue pair %u on %s: %pe\n",
		       qp->index, dev_name(&ibdev->dev), ERR_PTR(ret));
	return ret;
}

/* Sleeps.  Safe on a queue pair in any state, and twice. */
static void rswap_qp_destroy(struct rswap_qp *qp)
{
	if (test_and_clear_bit(RSWAP_QP_LIVE, &qp->flags))
		rdma_disconnect(qp->cm_id);
	if (test_and_clear_bit(RSWAP_QP_ALLOCATED, &qp->flags)) {
		/* Only a queue pair that reached RTS can be drained. */
		if (test_and_clear_bit(RSWAP_QP_CONNECTED, &qp->flags))
			ib_drain_qp(qp->cm_id->qp);
		rdma_destroy_qp(qp->cm_id);
		ib_free_cq(qp->cq);
		rswap_qp_free_recvs(qp);
		ib_dealloc_pd(qp->pd);
		qp->pd = NULL;
	}
	if (qp->cm_id) {
		rdma_destroy_id(qp->cm_id);
		qp->cm_id = NULL;
	}
}

/* Sleeps.  Resolve, create, connect one queue pair; wait for ESTABLISHED. */
static int rswap_qp_connect(struct rswap_qp *qp)
{
	struct rswap_sess *sess = qp->sess;
	struct rswap_dev *dev = sess->dev;
	struct rdma_conn_param param = {};
	struct rswap_conn_req req = {};
	struct rdma_cm_id *id;
	int ret;

	init_completion(&qp->cm_done);
	id = rdma_create_id(&init_net, rswap_cm_handler, qp, RDMA_PS_TCP,
			    IB_QPT_RC);
	if (IS_ERR(id)) {
		rswap_sess_err(sess, "cannot create an RDMA CM id: %pe\n", id);
		return PTR_ERR(id);
	}
	qp->cm_id = id;

	ret = rdma_resolve_addr(id, NULL, (struct sockaddr *)&sess->addr,
				dev->cfg.timeout_ms);
	if (ret) {
		rswap_sess_err(sess, "cannot resolve the address: %pe; is an RDMA device up on that network?\n",
			       ERR_PTR(ret));
		return ret;
	}
	ret = rswap_qp_wait(qp, "address resolution");
	if (ret)
		return ret;
	reinit_completion(&qp->cm_done);
	ret = rdma_resolve_route(id, dev->cfg.timeout_ms);
	if (ret) {
		rswap_sess_err(sess, "cannot resolve the route: %pe\n",
			       ERR_PTR(ret));
		return ret;
	}
	ret = rswap_qp_wait(qp, "route resolution");
	if (ret)
		return ret;

	ret = rswap_qp_alloc(qp);
	if (ret)
		return ret;

	req.magic = cpu_to_le32(RSWAP_WIRE_MAGIC);
	req.version = cpu_to_le16(RSWAP_WIRE_VERSION);
	req.qp_index = cpu_to_le16(qp->index);
	req.qp_count = cpu_to_le16(sess->nr_qps);
	req.session = cpu_to_le64(sess->cookie);
	memcpy(req.client_id, dev->cfg.client_id, strlen(dev->cfg.client_id));
	param.private_data = &req;
	param.private_data_len = sizeof(req);
	/*
	 * We issue RDMA READs and answer none, so responder_resources could
	 * be 0; but a passive side that (wrongly) sizes its responder
	 * resources from the event's initiator_depth -- which is our
	 * responder_resources seen from its side -- would then give our
	 * READs zero credits and they would never be sent.  Offer the same
	 * depth both ways.
	 */
	param.initiator_depth = min_t(int, id->device->attrs.max_qp_init_rd_atom,
				      16);
	param.responder_resources = min_t(int, id->device->attrs.max_qp_rd_atom,
					  param.initiator_depth);
	param.retry_count = 7;
	param.rnr_retry_count = 7;
	reinit_completion(&qp->cm_done);
	ret = rdma_connect(id, &param);
	if (ret) {
		rswap_sess_err(sess, "cannot connect queue pair %u: %pe\n",
			       qp->index, ERR_PTR(ret));
		return ret;
	}
	return rswap_qp_wait(qp, "connect");
}

/* ---- sessions ------------------------------------------------------------ */

static int rswap_desc_cmp(const void *a, const void *b)
{
	u64 x = le64_to_cpu(((const struct rswap_chunk_desc *)a)->handle);
	u64 y = le64_to_cpu(((const struct rswap_chunk_desc *)b)->handle);

	return x < y ? -1 : x > y;
}

/* Sleeps.  Give every slot of this poold its address and rkey. */
static int rswap_sess_match(struct rswap_sess *sess)
{
	struct rswap_core *core = &sess->dev->core;
	u32 i, chunks = le32_to_cpu(sess->qps[0].acc.chunk_count);

	if (sess->table_total != chunks) {
		rswap_sess_err(sess, "accepted with %u chunks but its table lists %u\n",
			       chunks, sess->table_total);
		return -EPROTO;
	}
	sort(sess->descs, sess->table_total, sizeof(*sess->descs),
	     rswap_desc_cmp, NULL);
	for (i = 0; i < core->nslots; i++) {
		struct rswap_slot *slot = &core->slots[i];
		struct rswap_chunk_desc key, *d;

		if (slot->sess != sess)
			continue;
		key.handle = cpu_to_le64(slot->handle);
		d = bsearch(&key, sess->descs, sess->table_total,
			    sizeof(*sess->descs), rswap_desc_cmp);
		if (!d) {
			rswap_sess_err(sess, "chunk %llu of slot %u is not in its chunk table\n",
				       slot->handle, i);
			return -EPROTO;
		}
		if (le64_to_cpu(d->len) < core->chunk_size) {
			rswap_sess_err(sess, "chunk %llu is %llu bytes, smaller than the chunk size %llu\n",
				       slot->handle, le64_to_cpu(d->len),
				       core->chunk_size);
			return -EPROTO;
		}
		slot->addr = le64_to_cpu(d->addr);
		slot->rkey = le32_to_cpu(d->rkey);
	}
	return 0;
}

static void rswap_sess_free(struct rswap_sess *sess)
{
	unsigned int i;

	for (i = 0; i < sess->nr_qps; i++)
		rswap_qp_destroy(&sess->qps[i]);
	kvfree(sess->descs);
	kfree(sess);
}

/* Sleeps.  All queue pairs (0 first), then the chunk table, then match. */
static int rswap_sess_connect(struct rswap_sess *sess)
{
	unsigned int ms = sess->dev->cfg.timeout_ms;
	unsigned int i;
	long left;
	int ret;

	sess->desc_cap = DIV_ROUND_UP(sess->nr_slots, RSWAP_DESCS_PER_MSG) *
			 RSWAP_DESCS_PER_MSG;
	sess->descs = kvcalloc(sess->desc_cap, sizeof(*sess->descs),
			       GFP_KERNEL);
	if (!sess->descs)
		return -ENOMEM;
	init_completion(&sess->table_done);

	for (i = 0; i < sess->nr_qps; i++) {
		ret = rswap_qp_connect(&sess->qps[i]);
		if (ret)
			return ret;
	}
	if (le32_to_cpu(sess->qps[0].acc.chunk_count) > sess->desc_cap) {
		rswap_sess_err(sess, "holds %u chunks for client %s, the map names %u there\n",
			       le32_to_cpu(sess->qps[0].acc.chunk_count),
			       sess->dev->cfg.client_id, sess->nr_slots);
		return -EPROTO;
	}
	left = wait_for_completion_interruptible_timeout(&sess->table_done,
							 msecs_to_jiffies(ms));
	if (left < 0) {
		rswap_sess_err(sess, "interrupted while waiting for the chunk table\n");
		return left;
	}
	if (!left) {
		rswap_sess_err(sess, "no chunk table within %u ms (got %u of %u descriptors)\n",
			       ms, sess->table_got, sess->table_total);
		return -ETIMEDOUT;
	}
	if (sess->table_error)
		return sess->table_error;
	return rswap_sess_match(sess);
}

static struct rswap_sess *rswap_sess_alloc(struct rswap_dev *dev,
					   const char *addr)
{
	struct rswap_sess *sess;
	unsigned int i;

	sess = kzalloc(struct_size(sess, qps, dev->nr_queues), GFP_KERNEL);
	if (!sess)
		return ERR_PTR(-ENOMEM);
	sess->dev = dev;
	strscpy(sess->addr_str, addr, sizeof(sess->addr_str));
	if (rswap_parse_addr(addr, &sess->addr)) {
		pr_err("coordinator %s names poold \"%s\", which is not IPV4:PORT or [IPV6]:PORT\n",
		       dev->cfg.coord_str, addr);
		kfree(sess);
		return ERR_PTR(-EPROTO);
	}
	do {
		sess->cookie = get_random_u64();
	} while (!sess->cookie);
	sess->nr_qps = dev->nr_queues;
	for (i = 0; i < sess->nr_qps; i++) {
		sess->qps[i].sess = sess;
		sess->qps[i].index = i;
	}
	return sess;
}

static struct rswap_sess *rswap_sess_lookup(struct rswap_rdma *rdma,
					    const char *addr)
{
	unsigned int i;

	for (i = 0; i < rdma->nr_sess; i++)
		if (!strcmp(rdma->sess[i]->addr_str, addr))
			return rdma->sess[i];
	return NULL;
}

/* ---- I/O ----------------------------------------------------------------- */

static enum dma_data_direction rswap_rq_dir(struct request *rq)
{
	return rq_data_dir(rq) == WRITE ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
}

/* Softirq (CQ): the RDMA READ or WRITE of one block request ended. */
static void rswap_io_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rswap_cmd *cmd = container_of(wc->wr_cqe, struct rswap_cmd, cqe);
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct rswap_sess *sess = cmd->sess;
	struct rswap_dev *dev = sess->dev;
	bool write = rq_data_dir(rq) == WRITE;
	enum ib_wc_status status = wc->status;

	ib_dma_unmap_sg(cmd->ibdev, cmd->sg, cmd->nents, rswap_rq_dir(rq));
	cmd->ibdev = NULL;
	if (!write && status == IB_WC_SUCCESS && rswap_inject_read_error(dev))
		status = IB_WC_GENERAL_ERR;
	if (unlikely(status != IB_WC_SUCCESS)) {
		if (status != IB_WC_WR_FLUSH_ERR)
			rswap_sess_err_rl(sess, "%s of %u bytes at %llu failed: %s\n",
					  write ? "WRITE" : "READ",
					  blk_rq_bytes(rq),
					  (u64)blk_rq_pos(rq) << RSWAP_SECTOR_SHIFT,
					  ib_wc_status_msg(status));
		atomic64_inc(&sess->errors);
		rswap_count_err(dev, RSWAP_ERR_IO);
		/* Never report unknown data as read. */
		rswap_blk_end(dev, rq, BLK_STS_IOERR);
		return;
	}
	if (write) {
		atomic64_inc(&sess->writes);
		atomic64_add(blk_rq_bytes(rq), &sess->bytes_written);
	} else {
		atomic64_inc(&sess->reads);
		atomic64_add(blk_rq_bytes(rq), &sess->bytes_read);
	}
	rswap_blk_end(dev, rq, BLK_STS_OK);
}

/* Atomic context: no allocation, nothing that sleeps. */
static blk_status_t rswap_rdma_queue_rq(struct rswap_dev *dev,
					unsigned int qidx, struct request *rq)
{
	struct rswap_cmd *cmd = blk_mq_rq_to_pdu(rq);
	u64 off = (u64)blk_rq_pos(rq) << RSWAP_SECTOR_SHIFT;
	enum dma_data_direction dir = rswap_rq_dir(rq);
	struct ib_rdma_wr wr = {};
	struct scatterlist *sg;
	struct rswap_slot *slot;
	struct rswap_qp *qp;
	u64 chunk_off;
	int i, count, ret;

	slot = rswap_core_route(&dev->core, off, blk_rq_bytes(rq), &chunk_off);
	if (unlikely(!slot)) {
		rswap_count_err(dev, RSWAP_ERR_RANGE);
		rswap_err_rl(dev, "request at %llu of %u bytes crosses a chunk or the end\n",
			     off, blk_rq_bytes(rq));
		return BLK_STS_IOERR;
	}
	qp = &slot->sess->qps[qidx];
	if (unlikely(!test_bit(RSWAP_QP_LIVE, &qp->flags))) {
		atomic64_inc(&slot->sess->errors);
		rswap_count_err(dev, RSWAP_ERR_IO);
		rswap_sess_err_rl(slot->sess, "queue pair %u is down; failing I/O\n",
				  qidx);
		return BLK_STS_IOERR;
	}

	sg_init_table(cmd->sg, RSWAP_MAX_SEGMENTS);
	cmd->nents = rswap_compat_map_sg(rq, cmd->sg);
	cmd->sess = slot->sess;
	cmd->ibdev = qp->pd->device;
	count = ib_dma_map_sg(cmd->ibdev, cmd->sg, cmd->nents, dir);
	if (unlikely(!count)) {
		cmd->ibdev = NULL;
		rswap_count_err(dev, RSWAP_ERR_BUSY);
		return BLK_STS_RESOURCE;
	}
	for_each_sg(cmd->sg, sg, count, i) {
		cmd->sge[i].addr = sg_dma_address(sg);
		cmd->sge[i].length = sg_dma_len(sg);
		cmd->sge[i].lkey = qp->pd->local_dma_lkey;
	}
	cmd->cqe.done = rswap_io_done;
	wr.wr.wr_cqe = &cmd->cqe;
	wr.wr.opcode = dir == DMA_TO_DEVICE ? IB_WR_RDMA_WRITE : IB_WR_RDMA_READ;
	wr.wr.send_flags = IB_SEND_SIGNALED;
	wr.wr.sg_list = cmd->sge;
	wr.wr.num_sge = count;
	wr.remote_addr = slot->addr + chunk_off;
	wr.rkey = slot->rkey;

	ret = ib_post_send(qp->cm_id->qp, &wr.wr, NULL);
	if (likely(!ret))
		return BLK_STS_OK;

	ib_dma_unmap_sg(cmd->ibdev, cmd->sg, cmd->nents, dir);
	cmd->ibdev = NULL;
	if (ret == -ENOMEM || ret == -EAGAIN) {
		/* Send queue full: blk-mq retries once a request completes. */
		rswap_count_err(dev, RSWAP_ERR_BUSY);
		return BLK_STS_RESOURCE;
	}
	rswap_count_err(dev, RSWAP_ERR_POST);
	rswap_sess_err_rl(slot->sess, "cannot post on queue pair %u: %d\n",
			  qidx, ret);
	return BLK_STS_IOERR;
}

/* One synchronous page transfer (frontswap), waited for on the stack. */
struct rswap_page_io {
	struct ib_cqe cqe;
	struct completion done;
	enum ib_wc_status status;
};

/* Softirq (CQ). */
static void rswap_page_io_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rswap_page_io *io = container_of(wc->wr_cqe,
						struct rswap_page_io, cqe);

	io->status = wc->status;
	complete(&io->done);
}

/*
 * Sleeps: posts one RDMA READ or WRITE of the page on this CPU's queue
 * pair to the poold holding off, then waits for its completion.  The wait
 * is not interruptible and has no timeout of its own: the work request
 * points at this stack frame and the page, so it must end (success, RC
 * retry exhaustion or a flush on disconnect) before we return.
 */
static int rswap_rdma_rw_page(struct rswap_dev *dev, u64 off,
			      struct page *page, bool write)
{
	enum dma_data_direction dir = write ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
	struct rswap_page_io io;
	struct ib_rdma_wr wr = {};
	struct rswap_slot *slot;
	struct rswap_sess *sess;
	struct ib_device *ibdev;
	struct rswap_qp *qp;
	struct ib_sge sge;
	u64 chunk_off, dma;
	int ret;

	slot = rswap_core_route(&dev->core, off, PAGE_SIZE, &chunk_off);
	if (unlikely(!slot)) {
		rswap_count_err(dev, RSWAP_ERR_RANGE);
		return -ERANGE;
	}
	sess = slot->sess;
	qp = &sess->qps[raw_smp_processor_id() % sess->nr_qps];
	if (unlikely(!test_bit(RSWAP_QP_LIVE, &qp->flags))) {
		atomic64_inc(&sess->errors);
		rswap_count_err(dev, RSWAP_ERR_IO);
		rswap_sess_err_rl(sess, "queue pair %u is down; failing I/O\n",
				  qp->index);
		return -ENOTCONN;
	}
	ibdev = qp->pd->device;
	dma = ib_dma_map_page(ibdev, page, 0, PAGE_SIZE, dir);
	if (unlikely(ib_dma_mapping_error(ibdev, dma))) {
		rswap_count_err(dev, RSWAP_ERR_NOMEM);
		return -ENOMEM;
	}
	sge.addr = dma;
	sge.length = PAGE_SIZE;
	sge.lkey = qp->pd->local_dma_lkey;
	io.cqe.done = rswap_page_io_done;
	init_completion(&io.done);
	wr.wr.wr_cqe = &io.cqe;
	wr.wr.opcode = write ? IB_WR_RDMA_WRITE : IB_WR_RDMA_READ;
	wr.wr.send_flags = IB_SEND_SIGNALED;
	wr.wr.sg_list = &sge;
	wr.wr.num_sge = 1;
	wr.remote_addr = slot->addr + chunk_off;
	wr.rkey = slot->rkey;

	ret = ib_post_send(qp->cm_id->qp, &wr.wr, NULL);
	if (unlikely(ret)) {
		ib_dma_unmap_page(ibdev, dma, PAGE_SIZE, dir);
		if (ret == -ENOMEM || ret == -EAGAIN) {
			rswap_count_err(dev, RSWAP_ERR_BUSY);
			return -EBUSY;
		}
		rswap_count_err(dev, RSWAP_ERR_POST);
		rswap_sess_err_rl(sess, "cannot post on queue pair %u: %d\n",
				  qp->index, ret);
		return -EIO;
	}
	wait_for_completion_io(&io.done);
	ib_dma_unmap_page(ibdev, dma, PAGE_SIZE, dir);

	if (!write && io.status == IB_WC_SUCCESS && rswap_inject_read_error(dev))
		io.status = IB_WC_GENERAL_ERR;
	if (unlikely(io.status != IB_WC_SUCCESS)) {
		if (io.status != IB_WC_WR_FLUSH_ERR)
			rswap_sess_err_rl(sess, "%s of a page at %llu failed: %s\n",
					  write ? "WRITE" : "READ", off,
					  ib_wc_status_msg(io.status));
		atomic64_inc(&sess->errors);
		rswap_count_err(dev, RSWAP_ERR_IO);
		return -EIO;
	}
	if (write) {
		atomic64_inc(&sess->writes);
		atomic64_add(PAGE_SIZE, &sess->bytes_written);
	} else {
		atomic64_inc(&sess->reads);
		atomic64_add(PAGE_SIZE, &sess->bytes_read);
	}
	return 0;
}

static ssize_t rswap_rdma_show_poolds(struct rswap_dev *dev, char *buf)
{
	struct rswap_rdma *rdma = dev->rdma;
	unsigned int i, j, live;
	int len = 0;

	for (i = 0; i < rdma->nr_sess; i++) {
		struct rswap_sess *s = rdma->sess[i];

		for (live = 0, j = 0; j < s->nr_qps; j++)
			live += test_bit(RSWAP_QP_LIVE, &s->qps[j].flags);
		len += sysfs_emit_at(buf, len,
				     "%s chunks=%u qps=%u/%u reads=%lld writes=%lld bytes_read=%lld bytes_written=%lld errors=%lld\n",
				     s->addr_str, s->nr_slots, live, s->nr_qps,
				     (long long)atomic64_read(&s->reads),
				     (long long)atomic64_read(&s->writes),
				     (long long)atomic64_read(&s->bytes_read),
				     (long long)atomic64_read(&s->bytes_written),
				     (long long)atomic64_read(&s->errors));
	}
	return len;
}

static const struct rswap_backend_ops rswap_rdma_ops = {
	.name = "rdma",
	.queue_rq = rswap_rdma_queue_rq,
	.rw_page = rswap_rdma_rw_page,
	/* Discard: the chunk stays the client's; nothing to free remotely. */
	.show_poolds = rswap_rdma_show_poolds,
};

/* ---- open / close ---------------------------------------------------------- */

void rswap_rdma_close(struct rswap_dev *dev)
{
	struct rswap_rdma *rdma = dev->rdma;
	unsigned int i;

	if (!rdma)
		return;
	for (i = 0; i < rdma->nr_sess; i++)
		rswap_sess_free(rdma->sess[i]);
	kfree(rdma);
	dev->rdma = NULL;
	rswap_core_free(&dev->core);
}

/* Sleeps.  The map has passed rswap_pb_check_map(). */
int rswap_rdma_open(struct rswap_dev *dev, const struct rswap_pb_map *map)
{
	struct rswap_rdma *rdma;
	unsigned int i, j;
	int ret;

	if (map->chunk_size < RSWAP_MAX_IO_BYTES ||
	    (map->chunk_size >> RSWAP_SECTOR_SHIFT) > UINT_MAX) {
		pr_err("coordinator %s uses chunks of %llu bytes; this client needs 256K..2T\n",
		       dev->cfg.coord_str, map->chunk_size);
		return -EPROTO;
	}
	ret = rswap_core_init(&dev->core, map->size, map->chunk_size);
	if (ret)
		return ret;
	rdma = kzalloc(struct_size(rdma, sess, map->nslots), GFP_KERNEL);
	if (!rdma) {
		ret = -ENOMEM;
		goto out_free_core;
	}
	dev->rdma = rdma;

	for (i = 0; i < map->nslots; i++) {
		const struct rswap_pb_slot *ms = &map->slots[i];
		struct rswap_sess *sess;

		sess = rswap_sess_lookup(rdma, ms->poold_addr);
		if (!sess) {
			sess = rswap_sess_alloc(dev, ms->poold_addr);
			if (IS_ERR(sess)) {
				ret = PTR_ERR(sess);
				goto out_close;
			}
			rdma->sess[rdma->nr_sess++] = sess;
		}
		sess->nr_slots++;
		dev->core.slots[i].sess = sess;
		dev->core.slots[i].handle = ms->handle;
	}

	dev->max_segments = RSWAP_MAX_SEGMENTS;
	for (i = 0; i < rdma->nr_sess; i++) {
		struct rswap_sess *sess = rdma->sess[i];

		/* Every failure below has logged its one line already. */
		ret = rswap_sess_connect(sess);
		if (ret)
			goto out_close;
		for (j = 0; j < sess->nr_qps; j++)
			dev->max_segments = min_t(u32, dev->max_segments,
						  sess->qps[j].max_sge);
		pr_info("poold %s: %u chunks, %u queue pairs\n",
			sess->addr_str, sess->nr_slots, sess->nr_qps);
	}
	dev->ops = &rswap_rdma_ops;
	return 0;

out_close:
	rswap_rdma_close(dev);
	return ret;
out_free_core:
	rswap_core_free(&dev->core);
	return ret;
}
