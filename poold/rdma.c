// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * The RDMA side of poold: an rdma_cm listener and the client sessions.
 *
 * A session is (client id, session cookie).  Its first queue pair creates a
 * protection domain and registers in it only the chunks the coordinator
 * allocated to that client id; every later queue pair of the session uses
 * the same PD.  So a client can never reach another client's memory, even
 * with a guessed rkey.  Phases of one queue pair (struct poold_conn):
 *   CONNECT_REQUEST  request validated (conn_validate.c); session found or
 *                    created; CQ + QP created; rdma_accept(rswap_conn_acc)
 *   ESTABLISHED      qp_index 0 SENDs the chunk table
 *   DISCONNECTED     QP, CQ torn down; the last QP of a session takes the
 *   (or any error)   MRs and the PD with it.  Chunks stay: only the
 *                    coordinator frees chunks.
 * Every rdma_cm event is copied and acknowledged before it is handled, so
 * that a handler may destroy the event's id.
 *
 * The listener's id has no context: its events are told apart by the id
 * itself, and only a queue pair's id ever carries a struct poold_conn.
 * When the device under --listen goes away (DEVICE_REMOVAL on the
 * listener), poold closes the listener, leaves the coordinator, and tries
 * again with backoff until a device serves the address again; sessions on
 * other devices go on.  Everything poold holds on a removed device (QPs,
 * CQs, MRs, PDs, the completion channel) is released at its events, and
 * librdmacm is told to forget the device, so the kernel can finish the
 * removal.
 *
 * File descriptors: one completion channel per RDMA device (struct
 * poold_dev) carries the events of every CQ on that device, so the number
 * of queue pairs does not count against RLIMIT_NOFILE.
 */
#include "poold.h"
#include "conn_validate.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <event2/event.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "auth.h"
#include "rswap_util.h"

#define LISTEN_BACKLOG	128
#define WC_BATCH	16
#define CQ_EVENTS_MAX	64	/* per wake-up of a completion channel */
#define LISTEN_RETRY_MIN_MS	100u
#define LISTEN_RETRY_MAX_MS	5000u
/*
 * Sessions one client id may hold at once: a reconnecting client can
 * overlap its old session for a while, but each session pins every chunk
 * of the client again (MRs), so an unbounded number would be a cheap way
 * to exhaust the device.
 */
#define SESSIONS_PER_CLIENT_MAX	4

struct poold_smr {
	const struct poold_chunk *chunk;
	struct ibv_mr *mr;		/* NULL once revoked */
};

struct poold_session {
	struct poold_session *next;
	struct poold *p;
	char client_id[RSWAP_CLIENT_ID_LEN + 1];
	uint64_t cookie;
	uint16_t qp_count;
	uint16_t version;		/* negotiated with the first QP */
	unsigned int nconns;
	bool opened;			/* every MR registered; logged */
	/*
	 * With a cluster key: nothing is registered until the client's proof
	 * (on qp_index 0) checks; auth_timer ends a session that sends none.
	 */
	bool authed;
	bool failed;			/* proof wrong or late: disconnecting */
	uint8_t nonce[RSWAP_NONCE_LEN];
	uint8_t mac[RSWAP_MAC_LEN];
	struct event *auth_timer;
	struct ibv_pd *pd;
	struct poold_smr *mrs;
	unsigned int nmrs;
	char peer[NI_MAXHOST];
};

/* One completion channel per device, shared by every CQ on it. */
struct poold_dev {
	struct poold_dev *next;
	struct poold *p;
	struct ibv_context *verbs;
	struct ibv_comp_channel *cch;
	struct event *ev;
	unsigned int ncqs;		/* CQs attached; freed at zero */
};

struct poold_conn {
	struct poold_conn *next;
	struct poold *p;
	struct rdma_cm_id *id;
	struct poold_session *s;
	uint16_t qp_index;
	struct poold_dev *dev;		/* set once cq exists */
	struct ibv_cq *cq;
	uint8_t *tbl;			/* chunk table messages (qp_index 0) */
	struct ibv_mr *tbl_mr;
	unsigned int tbl_msgs;
	unsigned int tbl_cap;		/* messages the send queue has room for */
	unsigned int tbl_sent;
	struct rswap_auth_proof *proof;	/* receive buffer (qp_index 0, keyed) */
	struct ibv_mr *proof_mr;
	/*
	 * rdma_cm said ESTABLISHED.  The client's proof can overtake the RTU:
	 * until then the table waits, and a disconnect would be lost (the CM
	 * sends no DREQ before it is established), so it is repeated then.
	 */
	bool established;
};

static void peer_str(struct rdma_cm_id *id, char *buf, size_t len)
{
	struct sockaddr *sa = rdma_get_peer_addr(id);
	socklen_t salen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
						      sizeof(struct sockaddr_in);

	if (getnameinfo(sa, salen, buf, len, NULL, 0, NI_NUMERICHOST))
		snprintf(buf, len, "?");
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

static unsigned int table_msgs(unsigned int ndesc)
{
	return (ndesc + RSWAP_DESCS_PER_MSG - 1) / RSWAP_DESCS_PER_MSG;
}

static unsigned int chunks_of(struct poold *p, const char *client_id)
{
	const struct poold_chunk *c;
	unsigned int n = 0;

	for (c = p->chunks; c; c = c->next)
		n += !strcmp(c->client_id, client_id);
	return n;
}

static unsigned int client_sessions(struct poold *p, const char *client_id)
{
	const struct poold_session *s;
	unsigned int n = 0;

	for (s = p->sessions; s; s = s->next)
		n += !strcmp(s->client_id, client_id);
	return n;
}

/* For /metrics: one pass over sessions and queue pairs. */
void poold_rdma_stats(const struct poold *p, struct poold_rdma_stats *st)
{
	const struct poold_session *s;
	const struct poold_conn *c;
	unsigned int i;

	memset(st, 0, sizeof(*st));
	for (s = p->sessions; s; s = s->next) {
		st->sessions++;
		for (i = 0; i < s->nmrs; i++)
			if (s->mrs[i].mr && s->mrs[i].chunk)
				st->registered_bytes += s->mrs[i].chunk->len;
	}
	for (c = p->conns; c; c = c->next)
		st->queue_pairs++;
}

static struct poold_session *session_find(struct poold *p, const char *client_id,
					  uint64_t cookie)
{
	struct poold_session *s;

	for (s = p->sessions; s; s = s->next)
		if (s->cookie == cookie && !strcmp(s->client_id, client_id))
			return s;
	return NULL;
}

static void session_destroy(struct poold *p, struct poold_session *s)
{
	struct poold_session **pp;
	unsigned int i;

	for (i = 0; i < s->nmrs; i++)
		if (s->mrs[i].mr && ibv_dereg_mr(s->mrs[i].mr))
			log_warn("client %s: deregistering an MR failed", s->client_id);
	free(s->mrs);
	if (s->auth_timer)
		event_free(s->auth_timer);
	if (s->pd && ibv_dealloc_pd(s->pd))
		log_warn("client %s: deallocating the PD failed", s->client_id);
	for (pp = &p->sessions; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			p->nsessions--;
			break;
		}
	}
	if (s->opened)
		log_info("client %s %s: session %#llx closed", s->client_id, s->peer,
			 (unsigned long long)s->cookie);
	free(s);
}

/*
 * Register every chunk of the session's client in its PD, each at I/O
 * virtual address 0: the table then carries chunk-relative addresses, and
 * no address of poold's own memory leaves it.  0, or -1 with *why set.
 */
static int session_register(struct poold *p, struct poold_session *s,
			    const char **why)
{
	const int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
			   IBV_ACCESS_REMOTE_WRITE;
	struct poold_chunk *c;
	unsigned int n = chunks_of(p, s->client_id);

	s->mrs = calloc(n ? n : 1, sizeof(*s->mrs));
	if (!s->mrs) {
		*why = "out of memory";
		return -1;
	}
	for (c = p->chunks; c; c = c->next) {
		if (strcmp(c->client_id, s->client_id))
			continue;
		s->mrs[s->nmrs].chunk = c;
		s->mrs[s->nmrs].mr = ibv_reg_mr_iova(s->pd, c->mem, c->len, 0,
						     access);
		if (!s->mrs[s->nmrs].mr) {
			log_err("client %s %s: registering chunk %#llx failed: %s "
				"(is RLIMIT_MEMLOCK large enough?)", s->client_id,
				s->peer, (unsigned long long)c->handle, strerror(errno));
			*why = "cannot register a chunk";
			return -1;
		}
		s->nmrs++;
	}
	s->opened = true;
	log_info("client %s %s: session %#llx opened: %u queue pairs, %u chunks, "
		 "protocol version %u%s", s->client_id, s->peer,
		 (unsigned long long)s->cookie, s->qp_count, s->nmrs, s->version,
		 p->set.have_key ? ", authenticated" : "");
	return 0;
}

static void session_disconnect(struct poold *p, struct poold_session *s);

/* The client did not prove the key in time. */
static void session_auth_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct poold_session *s = arg;

	(void)fd;
	(void)what;
	log_warn("client %s %s: no authentication within %u ms; disconnecting "
		 "session %#llx", s->client_id, s->peer, RSWAP_AUTH_TIMEOUT_MS,
		 (unsigned long long)s->cookie);
	poold_count_reject(s->p, RSWAP_REJ_AUTH);
	session_disconnect(s->p, s);
}

/*
 * A session: a PD that holds MRs of exactly this client's chunks -- at
 * once without a cluster key, after the client's proof with one.
 */
static struct poold_session *session_create(struct poold *p,
					    const struct poold_conn_params *cp,
					    struct ibv_context *verbs,
					    const char *peer, const char **why)
{
	uint8_t id[RSWAP_CLIENT_ID_LEN + 8], zero[RSWAP_NONCE_LEN] = { 0 };
	struct timeval tv = {
		.tv_sec = RSWAP_AUTH_TIMEOUT_MS / 1000,
		.tv_usec = (RSWAP_AUTH_TIMEOUT_MS % 1000) * 1000,
	};
	struct poold_session *s;

	s = calloc(1, sizeof(*s));
	if (!s) {
		*why = "out of memory";
		return NULL;
	}
	s->p = p;
	snprintf(s->client_id, sizeof(s->client_id), "%s", cp->client_id);
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	s->cookie = cp->session;
	s->qp_count = cp->qp_count;
	s->version = cp->version;
	s->pd = ibv_alloc_pd(verbs);
	if (!s->pd) {
		*why = "cannot allocate a protection domain";
		free(s);
		return NULL;
	}
	s->next = p->sessions;
	p->sessions = s;
	p->nsessions++;
	if (!p->set.have_key) {
		s->authed = true;
		if (session_register(p, s, why))
			goto out_destroy_session;
		return s;
	}
	if (rswap_auth_nonce(s->nonce, sizeof(s->nonce)) ||
	    rswap_auth_mac(p->set.key, RSWAP_AUTH_LABEL_R, RSWAP_AUTH_ROLE_RDMA, id,
			   rswap_auth_rdma_id(id, s->client_id, s->cookie), zero,
			   s->nonce, s->mac)) {
		*why = "cannot compute the authentication challenge";
		goto out_destroy_session;
	}
	s->auth_timer = evtimer_new(p->base, session_auth_timeout, s);
	if (!s->auth_timer || evtimer_add(s->auth_timer, &tv)) {
		*why = "out of memory";
		goto out_destroy_session;
	}
	return s;

out_destroy_session:
	session_destroy(p, s);
	return NULL;
}

static void dev_cq_cb(evutil_socket_t fd, short what, void *arg);

/* The device's completion channel, created with its first CQ. */
static struct poold_dev *dev_get(struct poold *p, struct ibv_context *verbs)
{
	struct poold_dev *d;

	for (d = p->devs; d; d = d->next)
		if (d->verbs == verbs)
			return d;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->p = p;
	d->verbs = verbs;
	d->cch = ibv_create_comp_channel(verbs);
	if (!d->cch || set_nonblock(d->cch->fd))
		goto out_free;
	d->ev = event_new(p->base, d->cch->fd, EV_READ | EV_PERSIST, dev_cq_cb, d);
	if (!d->ev || event_add(d->ev, NULL))
		goto out_free;
	d->next = p->devs;
	p->devs = d;
	log_debug("completion channel for RDMA device %s opened",
		  ibv_get_device_name(verbs->device));
	return d;

out_free:
	if (d->ev)
		event_free(d->ev);
	if (d->cch)
		ibv_destroy_comp_channel(d->cch);
	free(d);
	return NULL;
}

/*
 * The last CQ on a device closes its channel: a removed device can only go
 * once nothing of ours refers to it.
 */
static void dev_put(struct poold_dev *d)
{
	struct poold_dev **pp;

	if (--d->ncqs)
		return;
	for (pp = &d->p->devs; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	event_free(d->ev);
	if (ibv_destroy_comp_channel(d->cch))
		log_warn("destroying the completion channel of RDMA device %s failed",
			 ibv_get_device_name(d->verbs->device));
	free(d);
}

/*
 * Release everything a queue pair holds except its rdma_cm id; the last
 * queue pair of a session takes the session (MRs, PD) with it.
 */
static void conn_free(struct poold_conn *c)
{
	struct poold *p = c->p;
	struct poold_conn **pp;

	if (c->id->qp)
		rdma_destroy_qp(c->id);
	if (c->cq && ibv_destroy_cq(c->cq))
		log_warn("client %s: destroying a CQ failed", c->s->client_id);
	if (c->dev)
		dev_put(c->dev);
	if (c->tbl_mr)
		ibv_dereg_mr(c->tbl_mr);
	free(c->tbl);
	if (c->proof_mr)
		ibv_dereg_mr(c->proof_mr);
	free(c->proof);
	for (pp = &p->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	c->id->context = NULL;
	if (--c->s->nconns == 0)
		session_destroy(p, c->s);
	free(c);
}

static void conn_destroy(struct poold_conn *c)
{
	struct rdma_cm_id *id = c->id;

	log_debug("client %s %s: queue pair %u closed", c->s->client_id,
		  c->s->peer, c->qp_index);
	conn_free(c);
	rdma_destroy_id(id);
}

/* Lay out the chunk table as SEND messages in c->tbl, little-endian. */
static int conn_build_table(struct poold_conn *c)
{
	struct poold_session *s = c->s;
	unsigned int m, i, first;

	c->tbl_msgs = table_msgs(s->nmrs);
	if (!c->tbl_msgs)
		return 0;
	if (c->tbl_msgs > c->tbl_cap)
		return -ENOSPC;	/* chunks came between accept and proof */
	c->tbl = calloc(c->tbl_msgs, RSWAP_MSG_MAX);
	if (!c->tbl)
		return -ENOMEM;
	for (m = 0; m < c->tbl_msgs; m++) {
		uint8_t *buf = c->tbl + (size_t)m * RSWAP_MSG_MAX;
		struct rswap_msg_hdr hdr = { 0 };
		unsigned int count;

		first = m * RSWAP_DESCS_PER_MSG;
		count = s->nmrs - first < RSWAP_DESCS_PER_MSG ? s->nmrs - first :
								 RSWAP_DESCS_PER_MSG;
		hdr.magic = htole32(RSWAP_WIRE_MAGIC);
		hdr.version = htole16(s->version);
		hdr.type = htole16(RSWAP_MSG_CHUNK_TABLE);
		hdr.first = htole32(first);
		hdr.count = htole32(count);
		hdr.total = htole32(s->nmrs);
		memcpy(buf, &hdr, sizeof(hdr));
		for (i = 0; i < count; i++) {
			const struct poold_smr *smr = &s->mrs[first + i];
			struct rswap_chunk_desc d = { 0 };

			d.handle = htole64(smr->chunk->handle);
			d.addr = 0;	/* every MR starts at I/O address 0 */
			d.len = htole64(smr->chunk->len);
			d.rkey = htole32(smr->mr->rkey);
			memcpy(buf + sizeof(hdr) + i * sizeof(d), &d, sizeof(d));
		}
	}
	c->tbl_mr = ibv_reg_mr(s->pd, c->tbl, (size_t)c->tbl_msgs * RSWAP_MSG_MAX, 0);
	return c->tbl_mr ? 0 : -errno;
}

static void conn_send_table(struct poold_conn *c)
{
	struct ibv_send_wr *wrs, *bad;
	struct ibv_sge *sges;
	unsigned int m;
	int ret;

	if (!c->tbl_msgs)
		return;
	wrs = calloc(c->tbl_msgs, sizeof(*wrs));
	sges = calloc(c->tbl_msgs, sizeof(*sges));
	if (!wrs || !sges) {
		ret = ENOMEM;
		goto out_disconnect;
	}
	for (m = 0; m < c->tbl_msgs; m++) {
		unsigned int first = m * RSWAP_DESCS_PER_MSG;
		unsigned int count = c->s->nmrs - first < RSWAP_DESCS_PER_MSG ?
				     c->s->nmrs - first : RSWAP_DESCS_PER_MSG;

		sges[m].addr = (uintptr_t)(c->tbl + (size_t)m * RSWAP_MSG_MAX);
		sges[m].length = sizeof(struct rswap_msg_hdr) +
				 count * sizeof(struct rswap_chunk_desc);
		sges[m].lkey = c->tbl_mr->lkey;
		wrs[m].wr_id = m;
		wrs[m].sg_list = &sges[m];
		wrs[m].num_sge = 1;
		wrs[m].opcode = IBV_WR_SEND;
		wrs[m].send_flags = IBV_SEND_SIGNALED;
		wrs[m].next = m + 1 < c->tbl_msgs ? &wrs[m + 1] : NULL;
	}
	ret = ibv_post_send(c->id->qp, wrs, &bad);
	free(wrs);
	free(sges);
	if (!ret) {
		log_debug("client %s %s: chunk table posted (%u descriptors in %u messages)",
			  c->s->client_id, c->s->peer, c->s->nmrs, c->tbl_msgs);
		return;
	}
out_disconnect:
	free(wrs);
	free(sges);
	log_warn("client %s %s: cannot post the chunk table: %s; disconnecting",
		 c->s->client_id, c->s->peer, strerror(ret));
	rdma_disconnect(c->id);
}

/* Disconnect every queue pair of a session; their events free it. */
static void session_disconnect(struct poold *p, struct poold_session *s)
{
	struct poold_conn *c;

	s->failed = true;
	if (s->auth_timer)
		evtimer_del(s->auth_timer);
	for (c = p->conns; c; c = c->next)
		if (c->s == s)
			rdma_disconnect(c->id);
}

/*
 * The client's proof arrived on qp_index 0 (len bytes): check it, then
 * register the chunks and send the table -- or disconnect the session.
 */
static void conn_on_proof(struct poold_conn *c, uint32_t len)
{
	struct poold_session *s = c->s;
	struct poold *p = c->p;
	uint8_t id[RSWAP_CLIENT_ID_LEN + 8], zero[RSWAP_NONCE_LEN] = { 0 };
	const struct rswap_auth_proof *pr = c->proof;
	const char *why = NULL;

	if (s->authed || s->failed) {
		log_warn("client %s %s: unexpected message after authentication; "
			 "disconnecting", s->client_id, s->peer);
		session_disconnect(p, s);
		return;
	}
	if (len != sizeof(*pr) || le32toh(pr->hdr.magic) != RSWAP_WIRE_MAGIC ||
	    le16toh(pr->hdr.type) != RSWAP_MSG_AUTH_PROOF)
		why = "malformed authentication message";
	else if (!rswap_auth_check(p->set.key, RSWAP_AUTH_LABEL_I,
				   RSWAP_AUTH_ROLE_RDMA, id,
				   rswap_auth_rdma_id(id, s->client_id, s->cookie),
				   s->nonce, zero, pr->mac, sizeof(pr->mac)))
		why = "authentication failed (wrong cluster key?)";
	if (why) {
		log_warn("client %s %s: %s; disconnecting session %#llx",
			 s->client_id, s->peer, why, (unsigned long long)s->cookie);
		poold_count_reject(p, RSWAP_REJ_AUTH);
		session_disconnect(p, s);
		return;
	}
	evtimer_del(s->auth_timer);
	s->authed = true;
	if (session_register(p, s, &why) || conn_build_table(c)) {
		log_warn("client %s %s: %s; disconnecting session %#llx",
			 s->client_id, s->peer, why ? why : "cannot build the chunk table",
			 (unsigned long long)s->cookie);
		session_disconnect(p, s);
		return;
	}
	/* Else ESTABLISHED sends it. */
	if (c->established)
		conn_send_table(c);
}

static void conn_poll_cq(struct poold_conn *c)
{
	struct ibv_wc wc[WC_BATCH];
	struct ibv_cq *cq = c->cq;
	int n, i;

	if (ibv_req_notify_cq(cq, 0))
		log_warn("client %s: cannot re-arm a CQ", c->s->client_id);
	while ((n = ibv_poll_cq(cq, WC_BATCH, wc)) > 0) {
		for (i = 0; i < n; i++) {
			if (wc[i].status == IBV_WC_SUCCESS &&
			    wc[i].opcode == IBV_WC_RECV) {
				conn_on_proof(c, wc[i].byte_len);
				continue;
			}
			if (wc[i].status == IBV_WC_SUCCESS) {
				if (wc[i].opcode == IBV_WC_SEND &&
				    ++c->tbl_sent == c->tbl_msgs)
					log_debug("client %s %s: chunk table delivered",
						  c->s->client_id, c->s->peer);
				continue;
			}
			/* Flushes are what a QP in error (teardown) produces. */
			if (wc[i].status == IBV_WC_WR_FLUSH_ERR) {
				log_debug("client %s: work request flushed", c->s->client_id);
				continue;
			}
			log_warn("client %s %s: queue pair %u: work request failed: %s; "
				 "disconnecting", c->s->client_id, c->s->peer,
				 c->qp_index, ibv_wc_status_str(wc[i].status));
			rdma_disconnect(c->id);
		}
	}
}

/*
 * Completion events of every CQ on one device.  Polling never frees a
 * queue pair (only rdma_cm events do), and a destroyed CQ's pending events
 * leave the channel with it, so each event's context is a live conn.
 */
static void dev_cq_cb(evutil_socket_t fd, short what, void *arg)
{
	struct poold_dev *d = arg;
	struct ibv_cq *cq;
	void *ctx;
	int n;

	/* Bounded: the loop gets back to rdma_cm and the coordinator. */
	for (n = 0; n < CQ_EVENTS_MAX; n++) {
		if (ibv_get_cq_event(d->cch, &cq, &ctx))
			return;		/* EAGAIN: nothing more */
		ibv_ack_cq_events(cq, 1);
		conn_poll_cq(ctx);
	}
}

/*
 * Sizes and the proof's buffer.  Keyed, qp_index 0 receives the client's
 * proof into a buffer registered in the session's PD (local write only).
 * 0, or -1 with *why set.
 */
static int conn_post_proof_recv(struct poold_conn *c, const char **why)
{
	struct ibv_recv_wr wr = { 0 }, *bad;
	struct ibv_sge sge;

	c->proof = calloc(1, sizeof(*c->proof));
	if (!c->proof) {
		*why = "out of memory";
		return -1;
	}
	c->proof_mr = ibv_reg_mr(c->s->pd, c->proof, sizeof(*c->proof),
				 IBV_ACCESS_LOCAL_WRITE);
	if (!c->proof_mr) {
		*why = "cannot register the authentication buffer";
		return -1;
	}
	sge.addr = (uintptr_t)c->proof;
	sge.length = sizeof(*c->proof);
	sge.lkey = c->proof_mr->lkey;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	if (ibv_post_recv(c->id->qp, &wr, &bad)) {
		*why = "cannot post the authentication receive";
		return -1;
	}
	return 0;
}

/*
 * Queue pair and CQ sizes: qp_index 0 SENDs the chunk table (tbl_cap work
 * requests: its size now, or, before authentication, room for the
 * client's chunks and a few more that may come until the proof); + 1
 * keeps every queue non-empty.  It receives the client's proof (keyed);
 * a receive queue of one stays valid on every provider otherwise.  The CQ
 * holds every send and receive completion: send_wr + recv_wr.
 */
static int conn_create(struct poold *p, struct poold_session *s,
		       struct rdma_cm_id *id, uint16_t qp_index,
		       struct poold_conn **out, const char **why)
{
	struct ibv_qp_init_attr qa = { 0 };
	struct poold_dev *dev;
	struct poold_conn *c;
	unsigned int send_wr, recv_wr = 1;

	c = calloc(1, sizeof(*c));
	if (!c) {
		*why = "out of memory";
		return -ENOMEM;
	}
	c->p = p;
	c->id = id;
	c->s = s;
	c->qp_index = qp_index;
	s->nconns++;
	c->next = p->conns;
	p->conns = c;
	id->context = c;

	if (qp_index == 0) {
		c->tbl_cap = table_msgs(s->authed ? s->nmrs :
					chunks_of(p, s->client_id) + 16);
		if (s->authed && conn_build_table(c)) {
			*why = "cannot register the chunk table buffer";
			goto out_free_conn;
		}
		recv_wr += !s->authed;
	}
	send_wr = c->tbl_cap + 1;
	dev = dev_get(p, id->verbs);
	if (!dev) {
		*why = "cannot create a completion channel";
		goto out_free_conn;
	}
	c->cq = ibv_create_cq(id->verbs, (int)(send_wr + recv_wr), c, dev->cch, 0);
	if (c->cq) {
		c->dev = dev;
		dev->ncqs++;
	} else if (!dev->ncqs) {
		dev->ncqs = 1;
		dev_put(dev);	/* created for this CQ: nobody else uses it */
	}
	if (!c->cq || ibv_req_notify_cq(c->cq, 0)) {
		*why = "cannot create a completion queue";
		goto out_free_conn;
	}
	qa.send_cq = c->cq;
	qa.recv_cq = c->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = send_wr;
	qa.cap.max_recv_wr = recv_wr;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	if (rdma_create_qp(id, s->pd, &qa)) {
		*why = "cannot create a queue pair";
		goto out_free_conn;
	}
	if (qp_index == 0 && !s->authed && conn_post_proof_recv(c, why))
		goto out_free_conn;
	*out = c;
	return 0;

out_free_conn:
	conn_free(c);	/* the caller rejects and destroys the id */
	return -ENOMEM;
}

static void reject(struct poold *p, struct rdma_cm_id *id,
		   const struct poold_conn_params *cp, const char *peer,
		   enum rswap_rej_reason reason, const char *why)
{
	struct rswap_conn_rej rej = { 0 };

	log_warn("client %s %s: refused: %s (%s)", cp->client_id, peer, why,
		 poold_rej_reason_str(reason));
	poold_count_reject(p, reason);
	rej.magic = htole32(RSWAP_WIRE_MAGIC);
	rej.version = htole16(RSWAP_WIRE_VERSION);
	rej.reason = htole16(reason);
	if (rdma_reject(id, &rej, sizeof(rej)))
		log_debug("rdma_reject failed: %s", strerror(errno));
	rdma_destroy_id(id);
}

static bool session_has_qp(struct poold *p, const struct poold_session *s,
			   uint16_t qp_index)
{
	const struct poold_conn *c;

	for (c = p->conns; c; c = c->next)
		if (c->s == s && c->qp_index == qp_index)
			return true;
	return false;
}

static void on_connect_request(struct poold *p, struct rdma_cm_id *id,
			       const void *pdata, size_t plen,
			       uint8_t rd_atom)
{
	struct poold_conn_params cp;
	struct rdma_conn_param prm = { 0 };
	struct rswap_conn_acc acc = { 0 };
	struct ibv_device_attr dev;
	struct poold_session *s;
	struct poold_conn *c;
	enum rswap_rej_reason r;
	char peer[NI_MAXHOST];
	const char *why;

	peer_str(id, peer, sizeof(peer));
	r = poold_conn_validate(pdata, plen, p->set.max_qps, &cp, &why);
	if (r == RSWAP_REJ_NONE && p->stopping) {
		r = RSWAP_REJ_SHUTTING_DOWN;
		why = "poold is shutting down";
	}
	if (r == RSWAP_REJ_NONE && p->set.have_key && cp.version < 3) {
		r = RSWAP_REJ_AUTH;
		why = "this poold requires the cluster key; the client's protocol "
		      "(older than version 3) cannot authenticate";
	}
	if (r) {
		reject(p, id, &cp, peer, r, why);
		return;
	}
	s = session_find(p, cp.client_id, cp.session);
	if (s) {
		if (s->qp_count != cp.qp_count) {
			why = "qp_count differs from the session's first queue pair";
			r = RSWAP_REJ_SESSION;
		} else if (session_has_qp(p, s, cp.qp_index)) {
			why = "qp_index is already connected in this session";
			r = RSWAP_REJ_SESSION;
		} else if (s->pd->context != id->verbs) {
			why = "queue pair arrived on another RDMA device than its session";
			r = RSWAP_REJ_SESSION;
		} else if (s->failed) {
			why = "session failed authentication";
			r = RSWAP_REJ_AUTH;
		}
	} else if (!chunks_of(p, cp.client_id)) {
		why = "this poold holds no chunks for that client id";
		r = RSWAP_REJ_NO_CHUNKS;
	} else if (client_sessions(p, cp.client_id) >= SESSIONS_PER_CLIENT_MAX) {
		why = "too many open sessions for this client id";
		r = RSWAP_REJ_NO_RESOURCES;
	} else {
		s = session_create(p, &cp, id->verbs, peer, &why);
		if (!s)
			r = RSWAP_REJ_NO_RESOURCES;
	}
	if (r) {
		reject(p, id, &cp, peer, r, why);
		return;
	}
	if (conn_create(p, s, id, cp.qp_index, &c, &why)) {
		reject(p, id, &cp, peer, RSWAP_REJ_NO_RESOURCES, why);
		return;
	}

	acc.magic = htole32(RSWAP_WIRE_MAGIC);
	acc.version = htole16(s->version);
	/* Before the proof: what there is now (the table has the last word). */
	acc.chunk_count = htole32(s->authed ? s->nmrs : chunks_of(p, s->client_id));
	if (p->set.have_key) {
		acc.flags = htole16(RSWAP_ACC_F_AUTH);
		memcpy(acc.nonce, s->nonce, sizeof(acc.nonce));
		memcpy(acc.mac, s->mac, sizeof(acc.mac));
	}
	acc.max_qps = htole32(p->set.max_qps);
	/* A version-1 client reads these bytes as reserved: send zero. */
	if (s->version >= 2)
		acc.incarnation = htole64(p->incarnation);
	prm.private_data = &acc;
	/* A version-2 client takes the 32 bytes it knows. */
	prm.private_data_len = s->version >= 3 ? sizeof(acc) :
			       offsetof(struct rswap_conn_acc, nonce);
	/*
	 * We only answer READs: take as many in flight as the client asks for
	 * (its initiator depth, which rdma_cm hands us as the responder
	 * resources to use) and the device allows.
	 */
	prm.responder_resources = rd_atom;
	if (!ibv_query_device(id->verbs, &dev) && dev.max_qp_rd_atom < rd_atom)
		prm.responder_resources = (uint8_t)dev.max_qp_rd_atom;
	prm.initiator_depth = 0;
	prm.retry_count = 7;
	prm.rnr_retry_count = 7;	/* the client may post receives late */
	if (rdma_accept(id, &prm)) {
		log_warn("client %s %s: rdma_accept failed: %s", cp.client_id, peer,
			 strerror(errno));
		conn_destroy(c);
		return;
	}
	log_debug("client %s %s: queue pair %u/%u accepted", cp.client_id, peer,
		  cp.qp_index, cp.qp_count);
}

static void listener_retry_cb(evutil_socket_t fd, short what, void *arg);
static int listener_open(struct poold *p, bool quiet);

static void listener_close(struct poold *p)
{
	if (p->listen_id) {
		rdma_destroy_id(p->listen_id);
		p->listen_id = NULL;
	}
}

static void listener_retry_later(struct poold *p)
{
	struct timeval tv = {
		.tv_sec = p->listen_backoff_ms / 1000,
		.tv_usec = (p->listen_backoff_ms % 1000) * 1000,
	};

	evtimer_add(p->listen_timer, &tv);
	p->listen_backoff_ms = p->listen_backoff_ms * 2 > LISTEN_RETRY_MAX_MS ?
			       LISTEN_RETRY_MAX_MS : p->listen_backoff_ms * 2;
}

/*
 * An event on the listener's own id (never a queue pair's).  The device
 * under --listen is gone: stop listening, leave the coordinator (clients
 * cannot reach us) and listen again as soon as a device serves the
 * address.  Queue pairs on that device get their own DEVICE_REMOVAL.
 */
static void on_listener_event(struct poold *p, const struct rdma_cm_event *ev)
{
	if (ev->event != RDMA_CM_EVENT_DEVICE_REMOVAL) {
		log_debug("rdma_cm event %s on the listener ignored",
			  rdma_event_str(ev->event));
		return;
	}
	log_err("the RDMA device under %s was removed: not accepting clients and "
		"left the coordinator until a device serves that address again "
		"(retrying with backoff up to %u ms); sessions on other devices go on",
		p->set.listen_str, LISTEN_RETRY_MAX_MS);
	listener_close(p);
	poold_coord_listener_down(p);
	p->listen_backoff_ms = LISTEN_RETRY_MIN_MS;
	listener_retry_later(p);
}

static void on_cm_event(struct poold *p, const struct rdma_cm_event *ev,
			const void *pdata, size_t plen)
{
	struct poold_conn *c;

	if (ev->id == p->listen_id) {
		on_listener_event(p, ev);
		return;
	}
	/* Only a queue pair's id carries a conn; a new id has none yet. */
	c = ev->event == RDMA_CM_EVENT_CONNECT_REQUEST ? NULL : ev->id->context;
	switch (ev->event) {
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		on_connect_request(p, ev->id, pdata, plen,
				   ev->param.conn.responder_resources);
		return;
	case RDMA_CM_EVENT_ESTABLISHED:
		if (!c)
			return;
		c->established = true;
		/* A proof that overtook the RTU failed: disconnect now. */
		if (c->s->failed) {
			rdma_disconnect(c->id);
			return;
		}
		/* Keyed, the table goes out once the client's proof checks. */
		if (c->qp_index == 0 && c->s->authed)
			conn_send_table(c);
		return;
	case RDMA_CM_EVENT_DISCONNECTED:
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_REJECTED:
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		if (!c) {
			log_debug("rdma_cm event %s for no queue pair ignored",
				  rdma_event_str(ev->event));
			return;
		}
		if (ev->event == RDMA_CM_EVENT_DEVICE_REMOVAL && c->qp_index == 0)
			log_warn("client %s %s: RDMA device removed; closing session %#llx",
				 c->s->client_id, c->s->peer,
				 (unsigned long long)c->s->cookie);
		else if (ev->event != RDMA_CM_EVENT_DISCONNECTED &&
			 ev->event != RDMA_CM_EVENT_DEVICE_REMOVAL)
			log_warn("client %s %s: queue pair %u: %s",
				 c->s->client_id, c->s->peer, c->qp_index,
				 rdma_event_str(ev->event));
		conn_destroy(c);
		return;
	default:
		log_debug("rdma_cm event %s ignored", rdma_event_str(ev->event));
		return;
	}
}

/*
 * librdmacm keeps a device's verbs context open until it notices that the
 * device is gone, and the kernel waits for that close before it finishes
 * the removal (on drivers that cannot disassociate a context, such as rxe
 * and siw).  Listing the devices makes it notice; the context closes now,
 * or when the last id on it is destroyed.  librdmacm cannot notice the
 * loss of a process's last device: say so, since the removal then waits
 * for poold to stop.
 */
static void forget_removed_devices(struct poold *p)
{
	struct ibv_context **list;
	int n = 0;

	list = rdma_get_devices(&n);
	if (list)
		rdma_free_devices(list);
	if (!n && !p->no_device_warned) {
		p->no_device_warned = true;
		log_warn("no RDMA device is left: librdmacm keeps the removed one "
			 "open, so on drivers that cannot disassociate it (rxe, siw) "
			 "its removal completes only when poold stops");
	}
}

static void cm_cb(evutil_socket_t fd, short what, void *arg)
{
	struct poold *p = arg;
	struct rdma_cm_event *e;
	bool removal = false;

	while (!rdma_get_cm_event(p->cm_ch, &e)) {
		struct rdma_cm_event ev = *e;
		uint8_t pdata[256];
		size_t plen = 0;

		if (e->event == RDMA_CM_EVENT_CONNECT_REQUEST &&
		    e->param.conn.private_data) {
			plen = e->param.conn.private_data_len;
			if (plen > sizeof(pdata))
				plen = sizeof(pdata);
			memcpy(pdata, e->param.conn.private_data, plen);
		}
		ev.param.conn.private_data = NULL;
		rdma_ack_cm_event(e);
		removal |= ev.event == RDMA_CM_EVENT_DEVICE_REMOVAL;
		on_cm_event(p, &ev, pdata, plen);
		if (p->stopping)
			return;
	}
	if (removal)
		forget_removed_devices(p);
}

/*
 * quiet: a retry after a device removal; failing is expected until a
 * device serves the address, and is not logged.
 */
static int listener_open(struct poold *p, bool quiet)
{
	bool bound = false;
	int ret;

	/* No context: the listener is recognised by its id (on_cm_event). */
	if (rdma_create_id(p->cm_ch, &p->listen_id, NULL, RDMA_PS_TCP)) {
		ret = -errno;
		p->listen_id = NULL;
		if (!quiet)
			log_err("cannot create an RDMA CM id: %s", strerror(-ret));
		return ret;
	}
	if (rdma_bind_addr(p->listen_id, (struct sockaddr *)&p->set.listen_ss))
		goto out_err;
	bound = true;
	if (rdma_listen(p->listen_id, LISTEN_BACKLOG))
		goto out_err;
	return 0;

out_err:
	ret = -errno;
	if (quiet)
		log_debug("cannot %s on %s yet: %s", bound ? "listen" : "bind",
			  p->set.listen_str, strerror(-ret));
	else if (ret == -EADDRINUSE)
		log_err("cannot listen on %s: address already in use (another "
			"poold?)", p->set.listen_str);
	else if (!bound)
		log_err("cannot listen on %s: %s (is the address on an RDMA "
			"device? see rdma link show)", p->set.listen_str,
			strerror(-ret));
	else
		log_err("cannot listen on %s: %s", p->set.listen_str, strerror(-ret));
	listener_close(p);
	return ret;
}

static void listener_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct poold *p = arg;

	if (p->stopping || p->listen_id)
		return;
	if (listener_open(p, true)) {
		listener_retry_later(p);
		return;
	}
	log_info("listening for RDMA clients on %s again", p->set.listen_str);
	p->no_device_warned = false;
	poold_coord_listener_up(p);
}

/*
 * A random incarnation, new at every start: a client that reconnects and
 * finds another one knows that this process's memory (its pages) is gone.
 */
static int pick_incarnation(struct poold *p)
{
	do {
		if (getrandom(&p->incarnation, sizeof(p->incarnation), 0) !=
		    sizeof(p->incarnation)) {
			log_err("cannot pick an incarnation id: getrandom: %s",
				strerror(errno));
			return -errno;
		}
	} while (!p->incarnation);
	return 0;
}

int poold_rdma_start(struct poold *p)
{
	int ret;

	ret = pick_incarnation(p);
	if (ret)
		return ret;

	p->cm_ch = rdma_create_event_channel();
	if (!p->cm_ch) {
		log_err("cannot open the RDMA CM (%s): is rdma_cm loaded and is "
			"there an RDMA device (rdma link show)?", strerror(errno));
		return -errno;
	}
	ret = set_nonblock(p->cm_ch->fd);
	if (ret)
		return ret;
	p->listen_timer = evtimer_new(p->base, listener_retry_cb, p);
	if (!p->listen_timer)
		return -ENOMEM;
	ret = listener_open(p, false);
	if (ret)
		return ret;
	p->cm_ev = event_new(p->base, p->cm_ch->fd, EV_READ | EV_PERSIST, cm_cb, p);
	if (!p->cm_ev || event_add(p->cm_ev, NULL))
		return -ENOMEM;
	log_info("listening for RDMA clients on %s; per-session queue pair limit %u; "
		 "incarnation %#llx", p->set.listen_str, p->set.max_qps,
		 (unsigned long long)p->incarnation);
	return 0;
}

/*
 * Deregistering a chunk's MR in every session invalidates its rkey: from
 * here on an RDMA access to it fails on the client's side (a remote
 * access error, which makes it reconnect and find the chunk gone).  The
 * sessions stay: a client whose chunk moved away goes on using its other
 * chunks here, undisturbed.  The chunk leaves the table a reconnect gets.
 */
void poold_rdma_revoke_chunk(struct poold *p, const struct poold_chunk *chunk)
{
	struct poold_session *s;
	unsigned int i;

	for (s = p->sessions; s; s = s->next) {
		for (i = 0; i < s->nmrs; i++) {
			if (s->mrs[i].chunk != chunk)
				continue;
			if (s->mrs[i].mr && ibv_dereg_mr(s->mrs[i].mr))
				log_warn("client %s: deregistering chunk %#llx failed",
					 s->client_id, (unsigned long long)chunk->handle);
			log_info("client %s %s: chunk %#llx freed while connected; its rkey "
				 "is revoked in session %#llx", s->client_id, s->peer,
				 (unsigned long long)chunk->handle,
				 (unsigned long long)s->cookie);
			/* Keep the table dense: the last entry takes its place. */
			s->mrs[i] = s->mrs[--s->nmrs];
			break;
		}
	}
}

void poold_rdma_stop(struct poold *p)
{
	p->stopping = true;
	listener_close(p);
	if (p->listen_timer) {
		event_free(p->listen_timer);
		p->listen_timer = NULL;
	}
	while (p->conns) {
		rdma_disconnect(p->conns->id);
		conn_destroy(p->conns);
	}
	if (p->cm_ev) {
		event_free(p->cm_ev);
		p->cm_ev = NULL;
	}
	if (p->cm_ch) {
		rdma_destroy_event_channel(p->cm_ch);
		p->cm_ch = NULL;
	}
}
