// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA backend, connection side: rdma_cm events, queue pair set-up and
 * teardown, the chunk table, and one connect attempt of a whole session
 * (rswap_sess_connect()), used by the first connect at load and by every
 * reconnect (proto/rswap_wire.h has the protocol).
 *
 * Contexts: connect and teardown sleep (module init, or the session's
 * work items); CM events run in the rdma_cm workqueue, QP events in the
 * device's event context, receive completions in the CQ's softirq.  None
 * of the last three sleeps: they record, wake a waiter, or enter error
 * recovery (which only queues work).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bsearch.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "rswap-clt-rdma.h"
#include "rswap-compat.h"
#include "rswap_auth.h"

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
		rswap_conn_err(sess, "refused queue pair %u: %s; is poold listening there?\n",
			       qp->index, rdma_reject_msg(qp->cm_id, ev->status));
		qp->cm_error = -ECONNREFUSED;
		return;
	}
	if (len < sizeof(rej)) {
		rswap_conn_err(sess, "refused queue pair %u with %u bytes of reject data\n",
			       qp->index, len);
		qp->cm_error = -ECONNREFUSED;
		return;
	}
	memcpy(&rej, data, sizeof(rej));
	if (le32_to_cpu(rej.magic) != RSWAP_WIRE_MAGIC) {
		rswap_conn_err(sess, "refused queue pair %u (reject data without the rswap magic)\n",
			       qp->index);
		qp->cm_error = -ECONNREFUSED;
		return;
	}
	qp->cm_error = rswap_rej_errno(le16_to_cpu(rej.reason));
	if (le16_to_cpu(rej.reason) == RSWAP_REJ_NO_CHUNKS)
		sess->no_chunks = true;
	rswap_conn_err(sess, "refused queue pair %u/%u: %s (poold speaks protocol %u, this client %u)\n",
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

	if (!p->private_data ||
	    p->private_data_len < offsetof(struct rswap_conn_acc, nonce)) {
		rswap_conn_err(sess, "accepted queue pair %u with %u bytes of private data, expected %zu or more\n",
			       qp->index, p->private_data_len,
			       offsetof(struct rswap_conn_acc, nonce));
		qp->cm_error = -EPROTO;
		return;
	}
	memset(&qp->acc, 0, sizeof(qp->acc));
	qp->acc_len = min_t(u8, p->private_data_len, sizeof(qp->acc));
	memcpy(&qp->acc, p->private_data, qp->acc_len);
	version = le16_to_cpu(qp->acc.version);
	if (le32_to_cpu(qp->acc.magic) != RSWAP_WIRE_MAGIC ||
	    version < RSWAP_WIRE_VERSION_MIN || version > RSWAP_WIRE_VERSION) {
		rswap_conn_err(sess, "accepted queue pair %u with protocol %u (magic %#x); this client speaks %u..%u\n",
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
		rswap_conn_err(sess, "cannot resolve the address: %d; is an RDMA device up on that network?\n",
			       ev->status);
		qp->cm_error = -EHOSTUNREACH;
		break;
	case RDMA_CM_EVENT_ROUTE_ERROR:
		rswap_conn_err(sess, "no route: %d\n", ev->status);
		qp->cm_error = -ENETUNREACH;
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
		rswap_cm_established(qp, ev);
		break;
	case RDMA_CM_EVENT_REJECTED:
		rswap_cm_rejected(qp, ev);
		break;
	case RDMA_CM_EVENT_UNREACHABLE:
		rswap_conn_err(sess, "unreachable (queue pair %u): %d\n",
			       qp->index, ev->status);
		qp->cm_error = -EHOSTUNREACH;
		break;
	case RDMA_CM_EVENT_CONNECT_ERROR:
		rswap_conn_err(sess, "connect error on queue pair %u: %d\n",
			       qp->index, ev->status);
		qp->cm_error = -ECONNRESET;
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
		/* Recovery drains the QPs and requeues what was in flight. */
		if (test_and_clear_bit(RSWAP_QP_LIVE, &qp->flags))
			rswap_sess_warn_rl(sess, "queue pair %u disconnected; reconnecting\n",
					   qp->index);
		rswap_sess_error_recovery(sess);
		return 0;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		/*
		 * rdma_cm waits until this id is destroyed: never here (it
		 * would deadlock), but by recovery's work, or by the connect
		 * attempt this wakes up, which then fails and cleans up.
		 */
		clear_bit(RSWAP_QP_LIVE, &qp->flags);
		rswap_sess_warn_rl(sess, "RDMA device removed under queue pair %u\n",
				   qp->index);
		qp->cm_error = -ENODEV;
		if (!qp->index) {
			sess->table_error = -ENODEV;
			complete(&sess->table_done);
		}
		complete(&qp->cm_done);
		rswap_sess_error_recovery(sess);
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
		rswap_conn_err(qp->sess, "interrupted during %s of queue pair %u\n",
			       step, qp->index);
		return left;
	}
	if (!left) {
		rswap_conn_err(qp->sess, "no answer to %s of queue pair %u within %u ms\n",
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
		rswap_conn_err(sess, "chunk table message of %u bytes, shorter than its header\n",
			       len);
		return -EPROTO;
	}
	memcpy(&hdr, buf, sizeof(hdr));
	first = le32_to_cpu(hdr.first);
	count = le32_to_cpu(hdr.count);
	total = le32_to_cpu(hdr.total);
	if (le32_to_cpu(hdr.magic) != RSWAP_WIRE_MAGIC ||
	    le16_to_cpu(hdr.type) != RSWAP_MSG_CHUNK_TABLE) {
		rswap_conn_err(sess, "unexpected message (magic %#x, type %u) instead of the chunk table\n",
			       le32_to_cpu(hdr.magic), le16_to_cpu(hdr.type));
		return -EPROTO;
	}
	if (!count || count > RSWAP_DESCS_PER_MSG ||
	    len < sizeof(hdr) + (size_t)count * sizeof(struct rswap_chunk_desc)) {
		rswap_conn_err(sess, "chunk table message of %u bytes claims %u descriptors\n",
			       len, count);
		return -EPROTO;
	}
	if (first != sess->table_got ||
	    (sess->table_got && total != sess->table_total) ||
	    total > sess->desc_cap || count > total - first) {
		rswap_conn_err(sess, "chunk table out of order or too large: descriptors %u+%u of %u (have %u, room for %u)\n",
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
		rswap_sess_error_recovery(sess);
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

/* Device event context: must not sleep. */
static void rswap_qp_event(struct ib_event *ev, void *ctx)
{
	struct rswap_qp *qp = ctx;

	switch (ev->event) {
	case IB_EVENT_COMM_EST:
	case IB_EVENT_SQ_DRAINED:
	case IB_EVENT_QP_LAST_WQE_REACHED:
		return;
	default:
		rswap_sess_warn_rl(qp->sess, "queue pair %u: %s; reconnecting\n",
				   qp->index, ib_event_msg(ev->event));
		clear_bit(RSWAP_QP_LIVE, &qp->flags);
		rswap_sess_error_recovery(qp->sess);
	}
}

/*
 * Sleeps.  Send queue: a chain of RDMA READs or WRITEs per block request
 * (a request of max_io_kb in operations of max_sge SGEs), at most
 * queue_depth requests in flight per hardware queue, the copy operations
 * of a move, plus one for the drain work request of ib_drain_qp().
 * Receive queue: the chunk table buffers (queue pair 0), plus one for
 * the drain.  The CQ holds both: a failure completes every operation of
 * a chain, signalled or not.
 */
static int rswap_qp_alloc(struct rswap_qp *qp)
{
	struct rswap_sess *sess = qp->sess;
	struct ib_device *ibdev = qp->cm_id->device;
	unsigned int pages = sess->dev->cfg.max_io_kb / (PAGE_SIZE / 1024);
	unsigned int table_msgs = 0, recv_wr, send_wr;
	struct ib_qp_init_attr attr = {};
	int ret;

	qp->max_sge = min3((u32)ibdev->attrs.max_send_sge,
			   (u32)ibdev->attrs.max_sge_rd, RSWAP_SGE_MAX);
	if (!qp->max_sge) {
		rswap_conn_err(sess, "%s reports no SGEs for RDMA\n",
			       dev_name(&ibdev->dev));
		return -EINVAL;
	}
	send_wr = (sess->dev->cfg.queue_depth + RSWAP_MOVE_WRS) *
		  min(DIV_ROUND_UP(pages, qp->max_sge), RSWAP_CHAIN_MAX) + 1;
	if (!qp->index)
		table_msgs = sess->desc_cap / RSWAP_DESCS_PER_MSG;
	recv_wr = table_msgs + 1;
	if (send_wr > ibdev->attrs.max_qp_wr || recv_wr > ibdev->attrs.max_qp_wr) {
		rswap_conn_err(sess, "%s takes %d work requests per queue pair, %u needed: lower queue_depth or max_io_kb\n",
			       dev_name(&ibdev->dev), ibdev->attrs.max_qp_wr,
			       max(send_wr, recv_wr));
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
	rswap_conn_err(sess, "cannot set up queue pair %u on %s: %pe\n",
		       qp->index, dev_name(&ibdev->dev), ERR_PTR(ret));
	return ret;
}

/*
 * Sleeps.  Safe on a queue pair in any state, and twice.  Every work
 * request still posted completes (flushed) before the QP goes.
 */
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
	qp->acc_len = 0;
}

/*
 * Sleeps.  Is the port we would connect through up?  A connect request
 * sent through a port that is down is lost, and (seen with rxe) can leave
 * the device's CM unable to send any later one; waiting for the next
 * attempt costs nothing.
 */
static int rswap_qp_port_active(struct rswap_qp *qp)
{
	struct ib_port_attr attr;
	int ret;

	ret = ib_query_port(qp->cm_id->device, qp->cm_id->port_num, &attr);
	if (ret)
		return ret;
	if (attr.state != IB_PORT_ACTIVE) {
		rswap_conn_warn(qp->sess, "port %u of %s not active (state %d); waiting\n",
				qp->cm_id->port_num,
				dev_name(&qp->cm_id->device->dev), attr.state);
		return -ENETDOWN;
	}
	return 0;
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
		rswap_conn_err(sess, "cannot create an RDMA CM id: %pe\n", id);
		return PTR_ERR(id);
	}
	qp->cm_id = id;

	ret = rdma_resolve_addr(id, NULL, (struct sockaddr *)&sess->addr,
				dev->cfg.timeout_ms);
	if (ret) {
		rswap_conn_err(sess, "cannot resolve the address: %pe; is an RDMA device up on that network?\n",
			       ERR_PTR(ret));
		return ret;
	}
	ret = rswap_qp_wait(qp, "address resolution");
	if (ret)
		return ret;
	reinit_completion(&qp->cm_done);
	ret = rdma_resolve_route(id, dev->cfg.timeout_ms);
	if (ret) {
		rswap_conn_err(sess, "cannot resolve the route: %pe\n",
			       ERR_PTR(ret));
		return ret;
	}
	ret = rswap_qp_wait(qp, "route resolution");
	if (ret)
		return ret;
	ret = rswap_qp_port_active(qp);
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
		rswap_conn_err(sess, "cannot connect queue pair %u: %pe\n",
			       qp->index, ERR_PTR(ret));
		return ret;
	}
	return rswap_qp_wait(qp, "connect");
}

/* ---- authentication (proto/rswap_wire.h, step 3) ---------------------------- */

/* Softirq (CQ of queue pair 0): our proof was sent, or flushed. */
static void rswap_proof_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct rswap_sess *sess = container_of(wc->wr_cqe, struct rswap_sess,
					       proof_cqe);

	ib_dma_unmap_single(sess->proof_ibdev, sess->proof_dma,
			    sizeof(sess->proof), DMA_TO_DEVICE);
	sess->proof_status = wc->status;
	complete(&sess->proof_done);
}

/* The id an RDMA session authenticates as: client id | cookie (LE). */
static size_t rswap_sess_auth_id(const struct rswap_sess *sess, u8 *id)
{
	size_t n = strlen(sess->dev->cfg.client_id);
	__le64 cookie = cpu_to_le64(sess->cookie);

	memcpy(id, sess->dev->cfg.client_id, n);
	memcpy(id + n, &cookie, sizeof(cookie));
	return n + sizeof(cookie);
}

/*
 * Sleeps.  Queue pair 0 is established: check the poold's proof (it must
 * have one exactly when we have a key), then send ours, before any other
 * queue pair connects and before the poold registers anything for us.
 * 0 or -errno (-EACCES: a key is missing, differs, or was not proven).
 */
static int rswap_sess_auth(struct rswap_sess *sess)
{
	const struct rswap_auth *auth = &sess->dev->auth;
	struct rswap_qp *qp = &sess->qps[0];
	u8 id[RSWAP_CLIENT_ID_LEN + 8], zero[RSWAP_NONCE_LEN] = {};
	struct ib_send_wr wr = {};
	struct ib_sge sge;
	size_t id_len;
	bool keyed;
	int ret;

	keyed = le16_to_cpu(qp->acc.version) >= 3 &&
		(le16_to_cpu(qp->acc.flags) & RSWAP_ACC_F_AUTH) &&
		qp->acc_len >= sizeof(qp->acc);
	if (!keyed && !auth->have_key)
		return 0;
	if (!keyed) {
		rswap_conn_err(sess, "runs without a cluster key (or an old protocol) but this host has one: refusing it; give poold --key-file\n");
		return -EACCES;
	}
	if (!auth->have_key) {
		rswap_conn_err(sess, "requires the cluster key: give insmod a session keyring holding the user key \"%s\" (see client-kmod/README.md)\n",
			       RSWAP_KEYRING_DESC);
		return -EACCES;
	}
	id_len = rswap_sess_auth_id(sess, id);
	if (!rswap_auth_check(auth, RSWAP_AUTH_LABEL_R, RSWAP_AUTH_ROLE_RDMA,
			      id, id_len, zero, qp->acc.nonce, qp->acc.mac,
			      sizeof(qp->acc.mac))) {
		rswap_conn_err(sess, "authentication failed (wrong cluster key?)\n");
		return -EACCES;
	}
	memset(&sess->proof, 0, sizeof(sess->proof));
	sess->proof.hdr.magic = cpu_to_le32(RSWAP_WIRE_MAGIC);
	sess->proof.hdr.version = cpu_to_le16(3);
	sess->proof.hdr.type = cpu_to_le16(RSWAP_MSG_AUTH_PROOF);
	ret = rswap_auth_mac(auth, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_RDMA, id,
			     id_len, qp->acc.nonce, zero, sess->proof.mac);
	if (ret)
		return ret;
	sess->proof_ibdev = qp->pd->device;
	sess->proof_dma = ib_dma_map_single(sess->proof_ibdev, &sess->proof,
					    sizeof(sess->proof), DMA_TO_DEVICE);
	if (ib_dma_mapping_error(sess->proof_ibdev, sess->proof_dma))
		return -ENOMEM;
	sge.addr = sess->proof_dma;
	sge.length = sizeof(sess->proof);
	sge.lkey = qp->pd->local_dma_lkey;
	sess->proof_cqe.done = rswap_proof_done;
	wr.wr_cqe = &sess->proof_cqe;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IB_WR_SEND;
	wr.send_flags = IB_SEND_SIGNALED;
	reinit_completion(&sess->proof_done);
	ret = ib_post_send(qp->cm_id->qp, &wr, NULL);
	if (ret) {
		ib_dma_unmap_single(sess->proof_ibdev, sess->proof_dma,
				    sizeof(sess->proof), DMA_TO_DEVICE);
		rswap_conn_err(sess, "cannot send the authentication proof: %pe\n",
			       ERR_PTR(ret));
		return ret;
	}
	/* On a timeout the caller's teardown flushes it (and unmaps). */
	if (!wait_for_completion_timeout(&sess->proof_done,
					 msecs_to_jiffies(sess->dev->cfg.timeout_ms))) {
		rswap_conn_err(sess, "authentication proof not sent within %u ms\n",
			       sess->dev->cfg.timeout_ms);
		return -ETIMEDOUT;
	}
	if (sess->proof_status != IB_WC_SUCCESS) {
		rswap_conn_err(sess, "sending the authentication proof failed: %s\n",
			       ib_wc_status_msg(sess->proof_status));
		return -EIO;
	}
	return 0;
}

/* ---- sessions ------------------------------------------------------------ */

static int rswap_desc_cmp(const void *a, const void *b)
{
	u64 x = le64_to_cpu(((const struct rswap_chunk_desc *)a)->handle);
	u64 y = le64_to_cpu(((const struct rswap_chunk_desc *)b)->handle);

	return x < y ? -1 : x > y;
}

/* The poold's incarnation as queue pair qp heard it; 0 = unknown. */
static u64 rswap_qp_incarnation(const struct rswap_qp *qp)
{
	if (le16_to_cpu(qp->acc.version) < 2 ||
	    qp->acc_len < offsetofend(struct rswap_conn_acc, incarnation))
		return 0;
	return le64_to_cpu(qp->acc.incarnation);
}

/*
 * Sleeps.  Did the poold keep our memory since the last connect?  The
 * first connect records its incarnation.  A reconnect that finds another
 * one, or none (a version-1 poold cannot tell), marks every slot of this
 * poold lost: those pages are gone, and reading zeroes or a fresh chunk
 * in their place would be silent corruption.
 */
static int rswap_sess_check_incarnation(struct rswap_sess *sess)
{
	u64 inc = rswap_qp_incarnation(&sess->qps[0]);
	unsigned int i;
	u32 lost;

	for (i = 1; i < sess->nr_qps; i++) {
		if (rswap_qp_incarnation(&sess->qps[i]) != inc) {
			rswap_conn_warn(sess, "queue pairs accepted by two incarnations (restarted while connecting?); retrying\n");
			return -EAGAIN;
		}
	}
	if (!sess->ever_live) {
		sess->incarnation = inc;
		return 0;
	}
	if (inc && inc == sess->incarnation)
		return 0;
	lost = rswap_sess_lose_all(sess);
	if (lost)
		rswap_sess_err(sess, "restarted (incarnation %#llx, was %#llx): its %u chunks of ours are lost; %s\n",
			       inc, sess->incarnation, lost,
			       rswap_lost_effect(sess->dev));
	sess->incarnation = inc;
	return 0;
}

/* The descriptor of handle in the session's (sorted) chunk table. */
static const struct rswap_chunk_desc *rswap_sess_desc(struct rswap_sess *sess,
						      u64 handle)
{
	struct rswap_chunk_desc key;

	key.handle = cpu_to_le64(handle);
	return bsearch(&key, sess->descs, sess->table_total,
		       sizeof(*sess->descs), rswap_desc_cmp);
}

/*
 * Chunks of ours on this poold: every copy naming it that is not gone,
 * and a move's target.  Sizes the chunk table we take.
 */
u32 rswap_sess_chunks(struct rswap_sess *sess)
{
	struct rswap_dev *dev = sess->dev;
	struct rswap_core *core = &dev->core;
	u32 i, r, n = 0;

	mutex_lock(&dev->rdma->map_lock);
	for (i = 0; i < core->nslots; i++) {
		struct rswap_place *place = rswap_slot_place(dev,
							     &core->slots[i]);

		for (r = 0; r < place->nr + !!place->move; r++)
			n += place->rep[r].sess == sess &&
			     !test_bit(r, &core->slots[i].gone);
	}
	if (dev->rdma->move && dev->rdma->move->to == sess &&
	    !dev->rdma->move->to_found)
		n++;
	mutex_unlock(&dev->rdma->map_lock);
	return n;
}

/*
 * Sleeps.  Give every copy of ours on this poold its address and rkey
 * (new on every connect: the poold registers our chunks again per
 * session).  At load a chunk missing from the table fails the load; on a
 * reconnect it means the poold no longer holds it: the copy is lost, or
 * the move filling it fails (a move's target).
 */
static int rswap_sess_match(struct rswap_sess *sess)
{
	struct rswap_dev *dev = sess->dev;
	struct rswap_core *core = &dev->core;
	u32 i, r, chunks = le32_to_cpu(sess->qps[0].acc.chunk_count);
	struct rswap_move *mv;
	u32 missing = 0;
	int ret = 0;

	/* Version 3 may register chunks after the accept: the table wins. */
	if (le16_to_cpu(sess->qps[0].acc.version) < 3 &&
	    sess->table_total != chunks) {
		rswap_conn_err(sess, "accepted with %u chunks but its table lists %u\n",
			       chunks, sess->table_total);
		return -EPROTO;
	}
	sort(sess->descs, sess->table_total, sizeof(*sess->descs),
	     rswap_desc_cmp, NULL);
	for (i = 0; i < sess->table_total; i++) {
		if (le64_to_cpu(sess->descs[i].len) < core->chunk_size) {
			rswap_conn_err(sess, "chunk %llu is %llu bytes, smaller than the chunk size %llu\n",
				       le64_to_cpu(sess->descs[i].handle),
				       le64_to_cpu(sess->descs[i].len),
				       core->chunk_size);
			return -EPROTO;
		}
	}
	mutex_lock(&dev->rdma->map_lock);
	mv = dev->rdma->move;
	for (i = 0; i < core->nslots; i++) {
		struct rswap_slot *slot = &core->slots[i];
		struct rswap_place *place = rswap_slot_place(dev, slot);

		for (r = 0; r < place->nr + !!place->move; r++) {
			struct rswap_replica *rep = &place->rep[r];
			const struct rswap_chunk_desc *d;

			if (rep->sess != sess ||
			    (r < place->nr && test_bit(r, &slot->gone)))
				continue;
			d = rswap_sess_desc(sess, rep->handle);
			if (!d && !sess->ever_live) {
				rswap_conn_err(sess, "chunk %llu of slot %u is not in its chunk table\n",
					       rep->handle, i);
				ret = -EPROTO;
				goto out_unlock;
			}
			if (!d && r == place->nr) {
				rswap_move_fail(place->move, -ENOENT,
						"the target poold no longer lists the new chunk");
				continue;
			}
			if (!d) {
				missing += rswap_copy_lost(sess, slot, r);
				continue;
			}
			rep->addr = le64_to_cpu(d->addr);
			rep->rkey = le32_to_cpu(d->rkey);
		}
	}
	/* A move's target, before its copy is in the map. */
	if (mv && mv->to == sess && !mv->to_found) {
		const struct rswap_chunk_desc *d = rswap_sess_desc(sess,
								   mv->to_handle);

		if (d)
			rswap_move_target_found(mv, le64_to_cpu(d->addr),
						le32_to_cpu(d->rkey));
	}
out_unlock:
	mutex_unlock(&dev->rdma->map_lock);
	if (missing)
		rswap_sess_err(sess, "no longer holds %u chunks of ours: lost; %s\n",
			       missing, rswap_lost_effect(dev));
	return ret;
}

void rswap_sess_destroy_qps(struct rswap_sess *sess)
{
	unsigned int i;

	WRITE_ONCE(sess->ibdev, NULL);
	for (i = 0; i < sess->nr_qps; i++)
		rswap_qp_destroy(&sess->qps[i]);
}

/*
 * Sleeps.  One connect attempt: every queue pair (0 first, with the
 * chunk table's receives), the table, the incarnation check, the slots.
 * On failure the caller destroys what was built (rswap_sess_destroy_qps).
 * The caller runs with memalloc_noio_save() when swap may wait on it.
 */
int rswap_sess_connect(struct rswap_sess *sess)
{
	unsigned int ms = sess->dev->cfg.timeout_ms;
	unsigned int i;
	u32 cap;
	long left;
	int ret;

	/*
	 * Room for our chunks there and a few more: until the coordinator
	 * frees them, it may still hold a moved chunk's old copy or an
	 * aborted move's target.
	 */
	sess->nr_slots = rswap_sess_chunks(sess);
	cap = roundup(sess->nr_slots + RSWAP_TABLE_SLACK, RSWAP_DESCS_PER_MSG);
	if (cap > sess->desc_cap) {
		kvfree(sess->descs);
		sess->descs = kvcalloc(cap, sizeof(*sess->descs), GFP_KERNEL);
		if (!sess->descs) {
			sess->desc_cap = 0;
			return -ENOMEM;
		}
		sess->desc_cap = cap;
	}
	init_completion(&sess->table_done);
	sess->table_error = 0;
	sess->table_total = 0;
	sess->table_got = 0;
	/* A new session on the poold: its old one may linger half-closed. */
	do {
		sess->cookie = get_random_u64();
	} while (!sess->cookie);

	for (i = 0; i < sess->nr_qps; i++) {
		ret = rswap_qp_connect(&sess->qps[i]);
		if (!ret && !i)
			ret = rswap_sess_auth(sess);
		if (ret)
			return ret;
		/* The block queue's limits were set at load. */
		if (sess->dev->rdma->ready &&
		    sess->qps[i].max_sge * RSWAP_CHAIN_MAX <
		    sess->dev->max_segments) {
			rswap_conn_err(sess, "queue pair %u now takes %u SGEs, too few for the %u segments the device was set up with\n",
				       i, sess->qps[i].max_sge,
				       sess->dev->max_segments);
			return -EINVAL;
		}
	}
	if (le16_to_cpu(sess->qps[0].acc.version) < 3 &&
	    le32_to_cpu(sess->qps[0].acc.chunk_count) > sess->desc_cap) {
		rswap_conn_err(sess, "holds %u chunks for client %s, the map names %u there (and a few more may linger)\n",
			       le32_to_cpu(sess->qps[0].acc.chunk_count),
			       sess->dev->cfg.client_id, sess->nr_slots);
		return -EPROTO;
	}
	left = wait_for_completion_interruptible_timeout(&sess->table_done,
							 msecs_to_jiffies(ms));
	if (left < 0) {
		rswap_conn_err(sess, "interrupted while waiting for the chunk table\n");
		return left;
	}
	if (!left) {
		rswap_conn_err(sess, "no chunk table within %u ms (got %u of %u descriptors)\n",
			       ms, sess->table_got, sess->table_total);
		return -ETIMEDOUT;
	}
	if (sess->table_error)
		return sess->table_error;
	ret = rswap_sess_check_incarnation(sess);
	if (ret)
		return ret;
	ret = rswap_sess_match(sess);
	if (ret)
		return ret;
	WRITE_ONCE(sess->ibdev, sess->qps[0].cm_id->device);
	return 0;
}

/*
 * Sleeps.  Is the port under queue pair 0 (all QPs of a session share
 * it) known and not active?  Only while the QPs exist (error recovery).
 */
bool rswap_sess_port_down(struct rswap_sess *sess)
{
	struct rdma_cm_id *id = sess->qps[0].cm_id;
	struct ib_port_attr attr;

	if (!id || !id->device)
		return false;
	if (ib_query_port(id->device, id->port_num, &attr))
		return false;
	return attr.state != IB_PORT_ACTIVE;
}

/* Is every queue pair still connected?  Any context. */
bool rswap_sess_qps_live(struct rswap_sess *sess)
{
	unsigned int i;

	for (i = 0; i < sess->nr_qps; i++)
		if (!test_bit(RSWAP_QP_LIVE, &sess->qps[i].flags))
			return false;
	return true;
}
