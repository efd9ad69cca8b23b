// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * The client's side of rswap_wire.h: open qp_count queue pairs to one
 * poold, receive the chunk table on qp_index 0, then move data with
 * one-sided RDMA WRITE and READ.  All queue pairs of a poold share one CQ:
 * QP_DEPTH work requests per QP plus TABLE_MSGS_MAX receives.
 */
#include "testclient.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "auth.h"
#include "rswap_frame.h"
#include "rswap_util.h"

#define QP_DEPTH	16
#define TABLE_MSGS_MAX	64		/* up to 64 * 127 chunks per poold */
#define WAIT_MS		30000		/* emulated RDMA is slow */
#define RECV_TAG	(1ull << 63)
#define PROOF_TAG	(1ull << 62)
#define STEAL_TAG	(1ull << 61)
#define AUTH_DROP_MS	15000		/* poold: RSWAP_AUTH_TIMEOUT_MS + slack */
/*
 * A refused access normally ends in a NAK at once; a responder that drops
 * it instead (rxe on 5.10) leaves the requester retrying for minutes:
 * after this long, no answer counts as refused.
 */
#define STEAL_WAIT_MS	20000

static int cm_wait(struct tc_poold *po, struct rdma_event_channel *ch,
		   struct rdma_cm_event **e)
{
	struct pollfd pfd = { .fd = ch->fd, .events = POLLIN };
	int n;

	n = poll(&pfd, 1, WAIT_MS);
	if (n == 0) {
		log_err("poold %s: no connection manager event within %d ms",
			po->addr, WAIT_MS);
		return -ETIMEDOUT;
	}
	if (n < 0 || rdma_get_cm_event(ch, e))
		return -errno;
	return 0;
}

static int cm_expect(struct tc_poold *po, struct rdma_event_channel *ch,
		     enum rdma_cm_event_type want, const char *what)
{
	struct rdma_cm_event *e;
	int ret;

	ret = cm_wait(po, ch, &e);
	if (ret)
		return ret;
	if (e->event != want) {
		log_err("poold %s: %s failed: %s (status %d)", po->addr, what,
			rdma_event_str(e->event), e->status);
		rdma_ack_cm_event(e);
		return -EHOSTUNREACH;
	}
	rdma_ack_cm_event(e);
	return 0;
}

static void report_reject(struct tc_poold *po, const struct rdma_cm_event *e)
{
	struct rswap_conn_rej rej;

	if (e->param.conn.private_data_len >= sizeof(rej) &&
	    e->param.conn.private_data) {
		memcpy(&rej, e->param.conn.private_data, sizeof(rej));
		if (le32toh(rej.magic) == RSWAP_WIRE_MAGIC) {
			po->refused = le16toh(rej.reason);
			log_info("poold %s refused: %s (reason %d; poold speaks "
				 "version %u)", po->addr,
				 rswap_rej_reason_name(po->refused), po->refused,
				 le16toh(rej.version));
			return;
		}
	}
	log_err("poold %s: connection rejected without a Remoteswap reason "
		"(status %d): is a poold listening there?", po->addr, e->status);
}

/*
 * A version-1 or -2 poold sends the first 32 bytes of struct rswap_conn_acc;
 * what it leaves out reads as zero.
 */
static int parse_acc(struct tc_poold *po, const struct rdma_cm_event *e,
		     unsigned int qpi)
{
	const size_t min = offsetof(struct rswap_conn_acc, nonce);
	uint32_t len = e->param.conn.private_data_len;
	struct rswap_conn_acc acc = { 0 };

	if (len < min || !e->param.conn.private_data) {
		log_err("poold %s: accept carries %u bytes of private data, need %zu",
			po->addr, len, min);
		return -EPROTO;
	}
	if (len > sizeof(acc))
		len = sizeof(acc);
	memcpy(&acc, e->param.conn.private_data, len);
	if (le32toh(acc.magic) != RSWAP_WIRE_MAGIC ||
	    le16toh(acc.version) < RSWAP_WIRE_VERSION_MIN ||
	    le16toh(acc.version) > RSWAP_WIRE_VERSION) {
		log_err("poold %s: accept has magic %#x version %u; this client "
			"speaks %u..%u", po->addr, le32toh(acc.magic),
			le16toh(acc.version), RSWAP_WIRE_VERSION_MIN, RSWAP_WIRE_VERSION);
		return -EPROTO;
	}
	if (qpi == 0) {
		po->acc = acc;
		po->acc_len = len;
		po->version = le16toh(acc.version);
		po->ndescs = le32toh(acc.chunk_count);
		po->max_qps = le32toh(acc.max_qps);
	} else if (le16toh(acc.version) != po->version) {
		log_err("poold %s: queue pairs disagree on the protocol version",
			po->addr);
		return -EPROTO;
	} else if (po->version < 3 && le32toh(acc.chunk_count) != po->ndescs) {
		/* Version 3: the table's total has the last word. */
		log_err("poold %s: queue pairs disagree on the chunk count", po->addr);
		return -EPROTO;
	}
	return 0;
}

static int setup_dev(struct tc_dev *dev, struct ibv_context *verbs)
{
	const int access = IBV_ACCESS_LOCAL_WRITE;

	if (dev->pd) {
		if (dev->pd->context != verbs) {
			log_err("poolds on more than one RDMA device: not supported here");
			return -EXDEV;
		}
		return 0;
	}
	dev->pd = ibv_alloc_pd(verbs);
	if (!dev->pd)
		return -errno;
	dev->wmr = ibv_reg_mr(dev->pd, dev->wbuf, dev->buflen, access);
	dev->rmr = ibv_reg_mr(dev->pd, dev->rbuf, dev->buflen, access);
	if (!dev->wmr || !dev->rmr) {
		log_err("cannot register %llu-byte buffers: %s", (unsigned long long)dev->buflen,
			strerror(errno));
		return -ENOMEM;
	}
	return 0;
}

/* Per-poold CQ and table receive buffers, on the first queue pair. */
static int setup_poold(struct tc_poold *po, struct tc_dev *dev,
		       struct ibv_context *verbs)
{
	int cqe = (int)(po->nqps * QP_DEPTH + TABLE_MSGS_MAX);

	po->cch = ibv_create_comp_channel(verbs);
	if (!po->cch)
		return -errno;
	po->cq = ibv_create_cq(verbs, cqe, po, po->cch, 0);
	if (!po->cq)
		return -errno;
	po->rbufs = calloc(TABLE_MSGS_MAX, RSWAP_MSG_MAX);
	if (!po->rbufs)
		return -ENOMEM;
	po->rbufs_mr = ibv_reg_mr(dev->pd, po->rbufs, TABLE_MSGS_MAX * RSWAP_MSG_MAX,
				  IBV_ACCESS_LOCAL_WRITE);
	return po->rbufs_mr ? 0 : -errno;
}

static int post_table_recvs(struct tc_poold *po, struct ibv_qp *qp)
{
	struct ibv_recv_wr wr = { 0 }, *bad;
	struct ibv_sge sge;
	unsigned int m;

	for (m = 0; m < TABLE_MSGS_MAX; m++) {
		sge.addr = (uintptr_t)(po->rbufs + (size_t)m * RSWAP_MSG_MAX);
		sge.length = RSWAP_MSG_MAX;
		sge.lkey = po->rbufs_mr->lkey;
		wr.wr_id = RECV_TAG | m;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		if (ibv_post_recv(qp, &wr, &bad))
			return -errno;
	}
	po->nrecv = TABLE_MSGS_MAX;
	return 0;
}

static int connect_qp(const struct tc_opts *o, struct tc_dev *dev,
		      struct tc_poold *po, unsigned int qpi,
		      const struct sockaddr *sa)
{
	struct tc_qp *q = &po->qps[qpi];
	struct ibv_qp_init_attr qa = { 0 };
	struct rdma_conn_param prm = { 0 };
	struct rswap_conn_req req = { 0 };
	struct ibv_device_attr da;
	struct rdma_cm_event *e;
	uint16_t count;
	int ret;

	q->ch = rdma_create_event_channel();
	if (!q->ch) {
		log_err("cannot open the RDMA CM: %s (is there an RDMA device?)",
			strerror(errno));
		return -errno;
	}
	if (rdma_create_id(q->ch, &q->id, NULL, RDMA_PS_TCP))
		return -errno;
	if (rdma_resolve_addr(q->id, NULL, (struct sockaddr *)sa, 5000)) {
		log_err("poold %s: cannot resolve: %s", po->addr, strerror(errno));
		return -errno;
	}
	ret = cm_expect(po, q->ch, RDMA_CM_EVENT_ADDR_RESOLVED, "address resolution");
	if (ret)
		return ret;
	if (rdma_resolve_route(q->id, 5000))
		return -errno;
	ret = cm_expect(po, q->ch, RDMA_CM_EVENT_ROUTE_RESOLVED, "route resolution");
	if (ret)
		return ret;
	ret = setup_dev(dev, q->id->verbs);
	if (!ret && qpi == 0)
		ret = setup_poold(po, dev, q->id->verbs);
	if (ret)
		return ret;
	qa.send_cq = po->cq;
	qa.recv_cq = po->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = QP_DEPTH;
	qa.cap.max_recv_wr = qpi == 0 ? TABLE_MSGS_MAX : 1;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	if (rdma_create_qp(q->id, dev->pd, &qa)) {
		log_err("poold %s: cannot create a queue pair: %s", po->addr, strerror(errno));
		return -errno;
	}
	if (qpi == 0) {
		ret = post_table_recvs(po, q->id->qp);
		if (ret)
			return ret;
	}

	count = o->qp_count >= 0 ? (uint16_t)o->qp_count : (uint16_t)po->nqps;
	if (o->session_mismatch && qpi == 1)
		count++;
	req.magic = htole32(o->magic);
	req.version = htole16(o->version);
	req.flags = htole16(o->flags);
	req.qp_index = htole16((uint16_t)qpi);
	req.qp_count = htole16(count);
	req.session = htole64(po->session);
	memcpy(req.client_id, o->id, strnlen(o->id, RSWAP_CLIENT_ID_LEN));
	prm.private_data = &req;
	prm.private_data_len = sizeof(req);
	prm.initiator_depth = 16;
	if (!ibv_query_device(q->id->verbs, &da) && da.max_qp_init_rd_atom < 16)
		prm.initiator_depth = (uint8_t)da.max_qp_init_rd_atom;
	prm.retry_count = 7;
	prm.rnr_retry_count = 7;
	if (rdma_connect(q->id, &prm)) {
		log_err("poold %s: rdma_connect failed: %s", po->addr, strerror(errno));
		return -errno;
	}
	ret = cm_wait(po, q->ch, &e);
	if (ret)
		return ret;
	if (e->event == RDMA_CM_EVENT_ESTABLISHED) {
		ret = parse_acc(po, e, qpi);
	} else if (e->event == RDMA_CM_EVENT_REJECTED) {
		report_reject(po, e);
		ret = -ECONNREFUSED;
	} else {
		log_err("poold %s: connect failed: %s (status %d)", po->addr,
			rdma_event_str(e->event), e->status);
		ret = -EHOSTUNREACH;
	}
	rdma_ack_cm_event(e);
	return ret;
}

/*
 * Wait up to ms for at least one completion; returns how many are in wc,
 * or -errno.
 */
static int cq_wait_ms(struct tc_poold *po, struct ibv_wc *wc, int max, int ms,
		      bool loud)
{
	struct pollfd pfd = { .fd = po->cch->fd, .events = POLLIN };
	struct ibv_cq *cq;
	void *ctx;
	int n;

	for (;;) {
		n = ibv_poll_cq(po->cq, max, wc);
		if (n)
			return n < 0 ? -EIO : n;
		if (ibv_req_notify_cq(po->cq, 0))
			return -EIO;
		n = ibv_poll_cq(po->cq, max, wc);
		if (n)
			return n < 0 ? -EIO : n;
		n = poll(&pfd, 1, ms);
		if (n == 0) {
			if (loud)
				log_err("poold %s: no completion within %d ms", po->addr, ms);
			return -ETIMEDOUT;
		}
		if (n < 0 || ibv_get_cq_event(po->cch, &cq, &ctx))
			return -errno;
		ibv_ack_cq_events(cq, 1);
	}
}

static int cq_wait(struct tc_poold *po, struct ibv_wc *wc, int max)
{
	return cq_wait_ms(po, wc, max, WAIT_MS, true);
}

/* The most descriptors the receive buffers hold. */
#define TABLE_DESCS_MAX	(TABLE_MSGS_MAX * RSWAP_DESCS_PER_MSG)

/*
 * One chunk table message.  Before version 3 the accept announced the
 * count; from version 3 on the first message's total does (chunks may
 * have come or gone between the accept and our proof).
 */
static int table_msg(struct tc_poold *po, const struct ibv_wc *wc)
{
	const uint8_t *buf = po->rbufs + (wc->wr_id & ~RECV_TAG) * RSWAP_MSG_MAX;
	struct rswap_msg_hdr h;
	uint32_t first, count, total, i;

	if (wc->status != IBV_WC_SUCCESS) {
		log_err("poold %s: receiving the chunk table failed: %s",
			po->addr, ibv_wc_status_str(wc->status));
		return -EIO;
	}
	if (wc->byte_len < sizeof(h)) {
		log_err("poold %s: %u-byte message is shorter than its header",
			po->addr, wc->byte_len);
		return -EPROTO;
	}
	memcpy(&h, buf, sizeof(h));
	first = le32toh(h.first);
	count = le32toh(h.count);
	total = le32toh(h.total);
	if (!po->descs && le32toh(h.magic) == RSWAP_WIRE_MAGIC &&
	    le16toh(h.type) == RSWAP_MSG_CHUNK_TABLE) {
		if (po->version >= 3)
			po->ndescs = total;
		if (po->ndescs > TABLE_DESCS_MAX) {
			log_err("poold %s: %u chunks exceed this client's table limit "
				"(%zu)", po->addr, po->ndescs, (size_t)TABLE_DESCS_MAX);
			return -E2BIG;
		}
		po->descs = calloc(po->ndescs ? po->ndescs : 1, sizeof(*po->descs));
		if (!po->descs)
			return -ENOMEM;
	}
	if (le32toh(h.magic) != RSWAP_WIRE_MAGIC ||
	    le16toh(h.type) != RSWAP_MSG_CHUNK_TABLE ||
	    total != po->ndescs || first != po->tbl_got ||
	    count > RSWAP_DESCS_PER_MSG || count > po->ndescs - first ||
	    wc->byte_len < sizeof(h) + count * sizeof(struct rswap_chunk_desc)) {
		log_err("poold %s: malformed chunk table message (type %u, first %u, "
			"count %u, total %u, %u bytes)", po->addr, le16toh(h.type),
			first, count, total, wc->byte_len);
		return -EPROTO;
	}
	for (i = 0; i < count; i++) {
		struct rswap_chunk_desc d;

		memcpy(&d, buf + sizeof(h) + i * sizeof(d), sizeof(d));
		po->descs[first + i].handle = le64toh(d.handle);
		po->descs[first + i].addr = le64toh(d.addr);
		po->descs[first + i].len = le64toh(d.len);
		po->descs[first + i].rkey = le32toh(d.rkey);
	}
	po->tbl_got += count;
	return 0;
}

static bool table_done(const struct tc_poold *po)
{
	return po->descs && po->tbl_got >= po->ndescs;
}

static int receive_table(struct tc_poold *po)
{
	struct ibv_wc wc[8];
	int n, i, ret;

	if (po->version < 3) {
		if (po->ndescs > TABLE_DESCS_MAX) {
			log_err("poold %s: %u chunks exceed this client's table limit",
				po->addr, po->ndescs);
			return -E2BIG;
		}
		/* Nothing will come for an empty table. */
		if (!po->ndescs && !po->descs) {
			po->descs = calloc(1, sizeof(*po->descs));
			if (!po->descs)
				return -ENOMEM;
		}
	}
	while (!table_done(po)) {
		n = cq_wait(po, wc, 8);
		if (n < 0) {
			log_err("poold %s: waiting for the chunk table: %u of %u "
				"descriptors received", po->addr, po->tbl_got,
				po->descs ? po->ndescs : 0);
			return n;
		}
		for (i = 0; i < n; i++) {
			if (!(wc[i].wr_id & RECV_TAG)) {
				if (wc[i].status != IBV_WC_SUCCESS) {
					log_err("poold %s: a send failed while waiting for "
						"the chunk table: %s", po->addr,
						ibv_wc_status_str(wc[i].status));
					return -EIO;
				}
				continue;
			}
			ret = table_msg(po, &wc[i]);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/*
 * SEND our proof (mac) on qp_index 0 from a buffer registered in the PD
 * and wait for its completion.  A table message that overtakes the
 * completion is taken in.  forged: a failure is only reported (the
 * poold is expected to drop us), not an error.
 */
static int send_proof(struct tc_poold *po, struct tc_dev *dev,
		      const uint8_t mac[RSWAP_MAC_LEN], bool forged)
{
	struct ibv_send_wr wr = { 0 }, *bad;
	struct ibv_sge sge;
	struct ibv_wc wc[8];
	bool sent = false;
	int n, i, ret = 0;

	po->proof = calloc(1, sizeof(*po->proof));
	if (!po->proof)
		return -ENOMEM;
	po->proof->hdr.magic = htole32(RSWAP_WIRE_MAGIC);
	po->proof->hdr.version = htole16(3);
	po->proof->hdr.type = htole16(RSWAP_MSG_AUTH_PROOF);
	memcpy(po->proof->mac, mac, RSWAP_MAC_LEN);
	po->proof_mr = ibv_reg_mr(dev->pd, po->proof, sizeof(*po->proof), 0);
	if (!po->proof_mr) {
		log_err("poold %s: cannot register the proof buffer: %s", po->addr,
			strerror(errno));
		return -errno;
	}
	sge.addr = (uintptr_t)po->proof;
	sge.length = sizeof(*po->proof);
	sge.lkey = po->proof_mr->lkey;
	wr.wr_id = PROOF_TAG;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	if (ibv_post_send(po->qps[0].id->qp, &wr, &bad)) {
		log_err("poold %s: cannot post the authentication proof: %s",
			po->addr, strerror(errno));
		return -EIO;
	}
	/* Every completion of a batch counts: the table may come with ours. */
	while (!sent) {
		n = cq_wait(po, wc, 8);
		if (n < 0) {
			log_err("poold %s: the authentication proof's SEND did not "
				"complete", po->addr);
			return n;
		}
		for (i = 0; i < n; i++) {
			if (wc[i].wr_id == PROOF_TAG) {
				sent = true;
				if (wc[i].status == IBV_WC_SUCCESS)
					continue;
				if (forged) {
					log_info("poold %s: the forged proof was not "
						 "delivered: %s", po->addr,
						 ibv_wc_status_str(wc[i].status));
					continue;
				}
				log_err("poold %s: sending the authentication proof "
					"failed: %s", po->addr,
					ibv_wc_status_str(wc[i].status));
				ret = ret ? ret : -EIO;
				continue;
			}
			if (!(wc[i].wr_id & RECV_TAG))
				continue;
			if (forged && wc[i].status != IBV_WC_SUCCESS)
				continue;	/* flushed: the poold dropped us */
			if (!ret)
				ret = table_msg(po, &wc[i]);
		}
		if (ret)
			return ret;
	}
	return 0;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * --forge-proof, --no-proof: the poold must disconnect the session within
 * AUTH_DROP_MS and send no chunk table.  Then po->refused is
 * RSWAP_REJ_AUTH and the result -ECONNREFUSED, as for a refused connect.
 */
static int expect_auth_drop(struct tc_poold *po, const char *after)
{
	struct tc_qp *q = &po->qps[0];
	double t0 = mono_s(), end = t0 + AUTH_DROP_MS / 1000.0;
	struct rdma_cm_event *e;
	struct ibv_wc wc[8];
	bool gone = false;
	int n, i;

	while (!gone && mono_s() < end) {
		struct pollfd pfd = { .fd = q->ch->fd, .events = POLLIN };

		/* Anything that arrives on qp 0 could only be the table. */
		while ((n = ibv_poll_cq(po->cq, 8, wc)) > 0)
			for (i = 0; i < n; i++)
				if ((wc[i].wr_id & RECV_TAG) &&
				    wc[i].status == IBV_WC_SUCCESS)
					table_msg(po, &wc[i]);
		if (po->descs) {
			log_err("poold %s: sent its chunk table (%u of %u descriptors) "
				"after %s: authentication broken", po->addr,
				po->tbl_got, po->ndescs, after);
			return -EPERM;
		}
		if (poll(&pfd, 1, 100) != 1 || rdma_get_cm_event(q->ch, &e))
			continue;
		if (e->event == RDMA_CM_EVENT_DISCONNECTED ||
		    e->event == RDMA_CM_EVENT_DEVICE_REMOVAL)
			gone = true;
		else
			log_debug("poold %s: %s while waiting to be dropped", po->addr,
				  rdma_event_str(e->event));
		rdma_ack_cm_event(e);
	}
	if (!gone) {
		log_err("poold %s: still connected %d s after %s", po->addr,
			AUTH_DROP_MS / 1000, after);
		return -ETIMEDOUT;
	}
	po->refused = RSWAP_REJ_AUTH;
	log_info("poold %s disconnected the session %.1f s after %s, no chunk "
		 "table: refused (AUTH)", po->addr, mono_s() - t0, after);
	return -ECONNREFUSED;
}

/*
 * Queue pair 0 is up: authenticate (rswap_wire.h step 3) before any other
 * queue pair connects.  The poold must prove the key exactly when we hold
 * one; then we send our proof.  --forge-proof and --no-proof attack it.
 */
static int session_auth(const struct tc_opts *o, struct tc_dev *dev,
			struct tc_poold *po)
{
	uint8_t id[RSWAP_CLIENT_ID_LEN + 8], zero[RSWAP_NONCE_LEN] = { 0 };
	uint8_t mac[RSWAP_MAC_LEN];
	size_t id_len;
	bool keyed;
	int ret;

	keyed = po->version >= 3 && (le16toh(po->acc.flags) & RSWAP_ACC_F_AUTH) &&
		po->acc_len >= sizeof(po->acc);
	if (o->forge_proof || o->no_proof) {
		if (!keyed) {
			log_err("poold %s does not authenticate (no key in its accept): "
				"nothing to attack", po->addr);
			return -EPROTO;
		}
		if (o->no_proof)
			return expect_auth_drop(po, "no proof");
		if (getrandom(mac, sizeof(mac), 0) != sizeof(mac))
			return -EIO;
		ret = send_proof(po, dev, mac, true);
		return ret ? ret : expect_auth_drop(po, "a forged proof");
	}
	if (!keyed && !o->have_key)
		return 0;
	if (!keyed) {
		log_err("poold %s runs without a cluster key (or an old protocol) but "
			"this client has one: refusing it", po->addr);
		return -EACCES;
	}
	if (!o->have_key) {
		log_err("poold %s requires the cluster key: give --key-file", po->addr);
		return -EACCES;
	}
	id_len = rswap_auth_rdma_id(id, o->id, po->session);
	if (!rswap_auth_check(o->key, RSWAP_AUTH_LABEL_R, RSWAP_AUTH_ROLE_RDMA,
			      id, id_len, zero, po->acc.nonce, po->acc.mac,
			      sizeof(po->acc.mac))) {
		log_err("poold %s: authentication failed: the poold did not prove "
			"our cluster key (wrong key?); refusing it", po->addr);
		return -EACCES;
	}
	if (rswap_auth_mac(o->key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_RDMA, id,
			   id_len, po->acc.nonce, zero, mac))
		return -EINVAL;
	ret = send_proof(po, dev, mac, false);
	if (!ret)
		log_debug("poold %s: authenticated, proof sent", po->addr);
	return ret;
}

int tc_poold_connect(const struct tc_opts *o, struct tc_dev *dev,
		     struct tc_poold *po)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *why;
	unsigned int i;
	int ret;

	po->refused = -1;
	if (rswap_parse_hostport(po->addr, RSWAP_DEFAULT_POOLD_PORT, &ss, &len, &why)) {
		log_err("poold %s: %s", po->addr, why);
		return -EINVAL;
	}
	if (getrandom(&po->session, sizeof(po->session), 0) != sizeof(po->session))
		return -EIO;
	po->qps = calloc(po->nqps, sizeof(*po->qps));
	if (!po->qps)
		return -ENOMEM;
	for (i = 0; i < po->nqps; i++) {
		ret = connect_qp(o, dev, po, i, (struct sockaddr *)&ss);
		if (!ret && i == 0)
			ret = session_auth(o, dev, po);
		if (ret)
			return ret;
	}
	ret = receive_table(po);
	if (ret)
		return ret;
	log_info("poold %s: %u queue pairs up, %u chunks in its table, protocol "
		 "version %u, per-session limit %u queue pairs", po->addr, po->nqps,
		 po->ndescs, po->version, po->max_qps);
	return 0;
}

int tc_poold_io(const struct tc_opts *o, struct tc_dev *dev, struct tc_poold *po,
		const struct tc_slot *s, const uint64_t *rofs, unsigned int n,
		bool write)
{
	struct ibv_wc wc[16];
	unsigned int next = 0, done = 0, qpi = 0, spins;
	int k, i;

	while (done < n) {
		for (spins = 0; next < n && spins < po->nqps; qpi = (qpi + 1) % po->nqps) {
			struct tc_qp *q = &po->qps[qpi];
			struct ibv_send_wr wr = { 0 }, *bad;
			struct ibv_sge sge;

			if (q->inflight >= QP_DEPTH) {
				spins++;
				continue;
			}
			spins = 0;
			sge.addr = (uintptr_t)((write ? dev->wbuf : dev->rbuf) + next * o->block);
			sge.length = (uint32_t)o->block;
			sge.lkey = write ? dev->wmr->lkey : dev->rmr->lkey;
			wr.wr_id = (uint64_t)qpi << 32 | next;
			wr.sg_list = &sge;
			wr.num_sge = 1;
			wr.opcode = write ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ;
			wr.send_flags = IBV_SEND_SIGNALED;
			wr.wr.rdma.remote_addr = s->addr + rofs[next];
			wr.wr.rdma.rkey = s->rkey;
			if (ibv_post_send(q->id->qp, &wr, &bad)) {
				log_err("poold %s: cannot post an RDMA %s: %s", po->addr,
					write ? "WRITE" : "READ", strerror(errno));
				return -EIO;
			}
			q->inflight++;
			log_debug("posted %s wr %#llx len %u raddr %#llx rkey %#x lkey %#x",
				  write ? "WRITE" : "READ", (unsigned long long)wr.wr_id,
				  sge.length, (unsigned long long)wr.wr.rdma.remote_addr,
				  s->rkey, sge.lkey);
			next++;
		}
		k = cq_wait(po, wc, 16);
		if (k < 0)
			return k;
		for (i = 0; i < k; i++) {
			unsigned int j = (unsigned int)wc[i].wr_id;

			if (wc[i].wr_id & RECV_TAG)
				continue;
			if (wc[i].status != IBV_WC_SUCCESS) {
				log_err("poold %s: RDMA %s of slot %u offset %#llx failed: %s",
					po->addr, write ? "WRITE" : "READ", s->index,
					(unsigned long long)rofs[j],
					ibv_wc_status_str(wc[i].status));
				return -EIO;
			}
			po->qps[wc[i].wr_id >> 32].inflight--;
			done++;
		}
	}
	return 0;
}

static const char *steal_status(enum ibv_wc_status st)
{
	switch (st) {
	case IBV_WC_REM_ACCESS_ERR:
		return "remote access error";
	case IBV_WC_WR_FLUSH_ERR:
		return "flushed after the queue pair failed";
	case IBV_WC_RETRY_EXC_ERR:
		return "no answer, transport retries exceeded";
	case IBV_WC_RESP_TIMEOUT_ERR:
		return "no answer within the wait: the responder dropped it";
	default:
		return ibv_wc_status_str(st);
	}
}

int tc_poold_steal(const struct tc_opts *o, struct tc_dev *dev,
		   struct tc_poold *po, uint64_t len)
{
	static const char *const op[2] = { "READ", "WRITE" };
	enum ibv_wc_status st[2];
	bool done[2] = { false, false };
	struct ibv_wc wc[8];
	unsigned int k, ndone = 0;
	uint64_t i;
	int n, j;

	if (len > dev->buflen)
		len = dev->buflen;
	/* Our own bytes, unlike anything the victim wrote. */
	for (i = 0; i < len; i++)
		dev->wbuf[i] = (uint8_t)(0xa5 ^ i ^ (i >> 8));
	memset(dev->rbuf, 0, len);
	for (k = 0; k < 2; k++) {
		struct tc_qp *q = &po->qps[k < po->nqps ? k : 0];
		struct ibv_send_wr wr = { 0 }, *bad;
		struct ibv_sge sge;

		sge.addr = (uintptr_t)(k ? dev->wbuf : dev->rbuf);
		sge.length = (uint32_t)len;
		sge.lkey = k ? dev->wmr->lkey : dev->rmr->lkey;
		wr.wr_id = STEAL_TAG | k;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.opcode = k ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ;
		wr.send_flags = IBV_SEND_SIGNALED;
		wr.wr.rdma.remote_addr = o->steal_addr;
		wr.wr.rdma.rkey = o->steal_rkey;
		if (ibv_post_send(q->id->qp, &wr, &bad)) {
			log_err("poold %s: cannot post the RDMA %s: %s", po->addr,
				op[k], strerror(errno));
			return -EIO;
		}
		log_debug("steal: posted %s of %llu bytes at %#llx rkey %#x on qp %u",
			  op[k], (unsigned long long)len,
			  (unsigned long long)o->steal_addr, o->steal_rkey,
			  k < po->nqps ? k : 0);
	}
	while (ndone < 2) {
		n = cq_wait_ms(po, wc, 8, STEAL_WAIT_MS, false);
		if (n == -ETIMEDOUT) {
			/*
			 * Some responders (rxe on 5.10) drop an access with a
			 * foreign rkey without a NAK, and the requester's
			 * retries then take minutes: nothing crossed either
			 * way (the caller checks the victim's data too).
			 */
			for (k = 0; k < 2; k++) {
				if (done[k])
					continue;
				done[k] = true;
				st[k] = IBV_WC_RESP_TIMEOUT_ERR;
				ndone++;
			}
			break;
		}
		if (n < 0) {
			for (k = 0; k < 2; k++)
				log_err("steal: %s %s", op[k], done[k] ?
					ibv_wc_status_str(st[k]) : "never completed");
			return n;
		}
		for (j = 0; j < n; j++) {
			if ((wc[j].wr_id & ~1ull) != STEAL_TAG)
				continue;
			k = wc[j].wr_id & 1;
			if (!done[k]) {
				done[k] = true;
				st[k] = wc[j].status;
				ndone++;
			}
		}
	}
	for (k = 0; k < 2; k++)
		if (st[k] == IBV_WC_SUCCESS)
			log_err("steal: %s at %#llx rkey %#x on poold %s succeeded: "
				"isolation broken", op[k],
				(unsigned long long)o->steal_addr, o->steal_rkey,
				po->addr);
	if (st[0] == IBV_WC_SUCCESS || st[1] == IBV_WC_SUCCESS)
		return -EPERM;
	log_info("steal: READ refused (%s), WRITE refused (%s) at %#llx rkey %#x "
		 "on poold %s", steal_status(st[0]), steal_status(st[1]),
		 (unsigned long long)o->steal_addr, o->steal_rkey, po->addr);
	return 0;
}

bool tc_poold_disconnected(struct tc_poold *po)
{
	struct rdma_cm_event *e;
	bool gone = false;
	unsigned int i;

	for (i = 0; i < po->nqps; i++) {
		struct pollfd pfd = { .fd = po->qps[i].ch->fd, .events = POLLIN };

		while (poll(&pfd, 1, 0) == 1 && !rdma_get_cm_event(po->qps[i].ch, &e)) {
			/* A removed device ends the session as a disconnect does. */
			if (e->event == RDMA_CM_EVENT_DISCONNECTED ||
			    e->event == RDMA_CM_EVENT_DEVICE_REMOVAL)
				gone = true;
			rdma_ack_cm_event(e);
		}
	}
	return gone;
}

void tc_poold_close(struct tc_poold *po)
{
	unsigned int i;

	for (i = 0; po->qps && i < po->nqps; i++) {
		struct tc_qp *q = &po->qps[i];

		if (q->id) {
			if (q->id->qp) {
				rdma_disconnect(q->id);
				rdma_destroy_qp(q->id);
			}
			rdma_destroy_id(q->id);
		}
		if (q->ch)
			rdma_destroy_event_channel(q->ch);
	}
	free(po->qps);
	po->qps = NULL;
	if (po->cq)
		ibv_destroy_cq(po->cq);
	if (po->cch)
		ibv_destroy_comp_channel(po->cch);
	if (po->rbufs_mr)
		ibv_dereg_mr(po->rbufs_mr);
	free(po->rbufs);
	free(po->descs);
	if (po->proof_mr)
		ibv_dereg_mr(po->proof_mr);
	free(po->proof);
	po->proof_mr = NULL;
	po->proof = NULL;
	po->cq = NULL;
	po->cch = NULL;
	po->rbufs_mr = NULL;
	po->rbufs = NULL;
	po->descs = NULL;
}

void tc_dev_free(struct tc_dev *dev)
{
	if (dev->wmr)
		ibv_dereg_mr(dev->wmr);
	if (dev->rmr)
		ibv_dereg_mr(dev->rmr);
	if (dev->pd)
		ibv_dealloc_pd(dev->pd);
	free(dev->wbuf);
	free(dev->rbuf);
}
