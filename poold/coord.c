// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * The session with rswap-coord.  Phases:
 *   DOWN        no connection; retry_timer pending (backoff 100 ms .. 5 s)
 *   CONNECTING  TCP connect under way; reg_timer (10 s) pending from here
 *               until REGISTERED
 *   AUTHENTICATING (with a cluster key) AuthHello sent; the coordinator's
 *               AuthChallenge must prove the key before we prove ours
 *   REGISTERING PooldRegister sent (with every chunk held, so that a
 *               restarted coordinator relearns them)
 *   REGISTERED  PooldRegistered received; Heartbeat every heartbeat_ms;
 *               ChunkAlloc / ChunkFree served
 * Any bad frame, error or timeout drops the connection and goes back to
 * DOWN.  RDMA clients are served in every phase: the data path never waits
 * on the coordinator.  While poold has no RDMA listener (its device was
 * removed) it stays DOWN without retrying, so that the coordinator places
 * nothing on it, and connects again when the listener is back.
 */
#include "poold.h"
#include "conn_validate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "auth.h"
#include "rswap.pb-c.h"
#include "rswap_frame.h"
#include "rswap_util.h"

#define BACKOFF_MIN_MS		100u
#define BACKOFF_MAX_MS		5000u
#define REGISTER_TIMEOUT_MS	10000u
#define OUTPUT_MAX		(4u * RSWAP_MAX_FRAME)

static void coord_connect(struct poold *p);

static struct timeval ms_to_tv(unsigned int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	return tv;
}

static void coord_drop(struct poold *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Close the connection, log why, and schedule the next attempt. */
static void coord_drop(struct poold *p, const char *fmt, ...)
{
	struct timeval tv;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (p->bev) {
		bufferevent_free(p->bev);
		p->bev = NULL;
	}
	evtimer_del(p->hb_timer);
	evtimer_del(p->reg_timer);
	p->auth_seq = 0;
	p->proof_seq = 0;
	if (p->registered || p->backoff_ms <= BACKOFF_MIN_MS)
		log_warn("coordinator %s: %s; retrying in %u ms", p->set.coord_str,
			 msg, p->backoff_ms);
	else
		log_debug("coordinator %s: %s; retrying in %u ms", p->set.coord_str,
			  msg, p->backoff_ms);
	p->registered = false;
	if (p->stopping)
		return;
	tv = ms_to_tv(p->backoff_ms);
	evtimer_add(p->retry_timer, &tv);
	p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
							      p->backoff_ms * 2;
}

static int coord_send(struct poold *p, Rswap__Envelope *env)
{
	struct evbuffer *out = bufferevent_get_output(p->bev);
	int ret;

	/* A coordinator that stops reading is as good as gone. */
	if (evbuffer_get_length(out) > OUTPUT_MAX) {
		coord_drop(p, "coordinator is not reading (%zu bytes queued)",
			   evbuffer_get_length(out));
		return -ETIMEDOUT;
	}
	env->version = RSWAP_PROTO_VERSION;
	ret = rswap_frame_append(out, env);
	if (ret)
		coord_drop(p, "cannot queue a frame: %s", strerror(-ret));
	return ret;
}

static int send_error(struct poold *p, uint64_t seq, int code, const char *reason)
{
	Rswap__Envelope env;
	Rswap__Error err;

	rswap_frame_error(&env, &err, seq, code, reason);
	return coord_send(p, &env);
}

static int send_register(struct poold *p)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;
	Rswap__HeldChunk *held = NULL, **ptrs = NULL;
	uint64_t now = poold_now_ms();
	struct poold_chunk *c;
	unsigned int i = 0;
	int ret;

	if (p->nchunks) {
		held = calloc(p->nchunks, sizeof(*held));
		ptrs = calloc(p->nchunks, sizeof(*ptrs));
		if (!held || !ptrs) {
			free(held);
			free(ptrs);
			coord_drop(p, "out of memory building PooldRegister");
			return -ENOMEM;
		}
	}
	for (c = p->chunks; c; c = c->next, i++) {
		rswap__held_chunk__init(&held[i]);
		held[i].handle = c->handle;
		held[i].client_id = c->client_id;
		held[i].slot = c->slot;
		held[i].client_size = c->client_size;
		/* Its age picks the copy a map shows until the client says. */
		held[i].age_ms = (now > c->born_ms ? now - c->born_ms : 0) + 1;
		ptrs[i] = &held[i];
	}
	reg.listen_addr = p->set.listen_str;
	reg.capacity = p->set.capacity;
	reg.chunk_size = p->nchunks ? p->chunk_size : 0;
	reg.n_chunks = p->nchunks;
	reg.chunks = ptrs;
	/* A new one tells the coordinator that what it placed here is gone. */
	reg.incarnation = p->incarnation;
	reg.zone = p->set.zone;
	env.seq = p->reg_seq = ++p->seq;
	env.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
	env.poold_register = &reg;
	ret = coord_send(p, &env);
	free(held);
	free(ptrs);
	return ret;
}

static void handle_registered(struct poold *p, const Rswap__PooldRegistered *m)
{
	struct timeval tv;
	char a[16], b[16];

	if (p->registered) {
		coord_drop(p, "second PooldRegistered on one connection");
		return;
	}
	p->auth_logged = false;
	if (p->nchunks && m->chunk_size != p->chunk_size) {
		/* Our chunks cannot change size; the coordinator must adapt. */
		log_err("coordinator %s uses chunk size %s but this poold holds %u "
			"chunks of %s; restart the coordinator with --chunk-size %s",
			p->set.coord_str, rswap_fmt_size(m->chunk_size, a, sizeof(a)),
			p->nchunks, rswap_fmt_size(p->chunk_size, b, sizeof(b)), b);
		coord_drop(p, "chunk size mismatch");
		return;
	}
	p->chunk_size = m->chunk_size;
	p->heartbeat_ms = m->heartbeat_ms;
	p->registered = true;
	p->backoff_ms = BACKOFF_MIN_MS;
	evtimer_del(p->reg_timer);
	tv = ms_to_tv(p->heartbeat_ms);
	evtimer_add(p->hb_timer, &tv);
	log_info("registered with coordinator %s: chunk size %s, heartbeat %u ms, "
		 "%u chunks held", p->set.coord_str,
		 rswap_fmt_size(p->chunk_size, a, sizeof(a)), p->heartbeat_ms,
		 p->nchunks);
	if (p->set.capacity < p->chunk_size)
		log_warn("capacity %s is below the chunk size %s: this poold can "
			 "hold no chunk", rswap_fmt_size(p->set.capacity, b, sizeof(b)), a);
}

static void handle_alloc(struct poold *p, uint64_t seq, const Rswap__ChunkAlloc *m)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkAllocDone done = RSWAP__CHUNK_ALLOC_DONE__INIT;
	struct poold_chunk *c;
	const char *why;
	char reason[160], sz[16];
	int ret;

	ret = poold_chunk_alloc(p, m->client_id, m->slot, m->client_size, &c, &why);
	if (ret) {
		log_warn("chunk for client %s slot %u refused: %s", m->client_id,
			 m->slot, why);
		snprintf(reason, sizeof(reason), "poold %s: %s", p->set.listen_str, why);
		send_error(p, seq, -ret, reason);
		return;
	}
	log_info("chunk %#llx allocated for client %s slot %u (%s, %s pages)",
		 (unsigned long long)c->handle, c->client_id, c->slot,
		 rswap_fmt_size(c->len, sz, sizeof(sz)), c->huge ? "huge" : "normal");
	done.handle = c->handle;
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE;
	env.chunk_alloc_done = &done;
	coord_send(p, &env);
}

static void handle_free(struct poold *p, uint64_t seq, const Rswap__ChunkFree *m)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkFreeDone done = RSWAP__CHUNK_FREE_DONE__INIT;
	struct poold_chunk *c = poold_chunk_find(p, m->handle);
	char reason[128];

	if (!c) {
		log_warn("coordinator asked to free unknown chunk %#llx",
			 (unsigned long long)m->handle);
		snprintf(reason, sizeof(reason), "poold %s holds no chunk %#llx",
			 p->set.listen_str, (unsigned long long)m->handle);
		send_error(p, seq, ENOENT, reason);
		return;
	}
	log_info("chunk %#llx of client %s slot %u freed", (unsigned long long)c->handle,
		 c->client_id, c->slot);
	poold_chunk_free(p, c);
	done.handle = m->handle;
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_CHUNK_FREE_DONE;
	env.chunk_free_done = &done;
	coord_send(p, &env);
}

static void auth_failed(struct poold *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * One line for a failed authentication, then quiet until one succeeds:
 * the retries (with backoff) would only repeat it.
 */
static void auth_failed(struct poold *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->auth_logged) {
		log_debug("coordinator %s: %s", p->set.coord_str, msg);
	} else {
		log_err("coordinator %s: %s", p->set.coord_str, msg);
		p->auth_logged = true;
	}
	coord_drop(p, "not authenticated");
}

/* Connected, with a key: AuthHello, then wait for the coordinator's proof. */
static void send_auth_hello(struct poold *p)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__AuthHello hello = RSWAP__AUTH_HELLO__INIT;

	if (rswap_auth_nonce(p->nonce, sizeof(p->nonce))) {
		coord_drop(p, "no random bytes for the authentication");
		return;
	}
	hello.role = RSWAP__PEER_ROLE__PEER_POOLD;
	hello.id = p->set.listen_str;
	hello.nonce.data = p->nonce;
	hello.nonce.len = sizeof(p->nonce);
	p->auth_seq = ++p->seq;
	env.seq = p->auth_seq;
	env.body_case = RSWAP__ENVELOPE__BODY_AUTH_HELLO;
	env.auth_hello = &hello;
	coord_send(p, &env);
}

/*
 * The coordinator proved the key (or says it has none, which a poold with
 * a key refuses): prove ours, then register right away.
 */
static void handle_challenge(struct poold *p, uint64_t seq,
			     const Rswap__AuthChallenge *ch)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__AuthProof proof = RSWAP__AUTH_PROOF__INIT;
	const char *id = p->set.listen_str;
	uint8_t mac[RSWAP_MAC_LEN];

	if (!p->auth_seq || seq != p->auth_seq) {
		coord_drop(p, "AuthChallenge for request %llu, not our AuthHello",
			   (unsigned long long)seq);
		return;
	}
	p->auth_seq = 0;
	if (ch->insecure) {
		auth_failed(p, "runs without a cluster key (--insecure) but this poold has one: not registering; give the coordinator --key-file");
		return;
	}
	if (ch->nonce.len != RSWAP_NONCE_LEN ||
	    !rswap_auth_check(p->set.key, RSWAP_AUTH_LABEL_R, RSWAP_AUTH_ROLE_POOLD, id,
			      strlen(id), p->nonce, ch->nonce.data, ch->mac.data, ch->mac.len)) {
		auth_failed(p, "authentication failed (wrong cluster key?)");
		return;
	}
	if (rswap_auth_mac(p->set.key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_POOLD, id,
			   strlen(id), ch->nonce.data, p->nonce, mac)) {
		coord_drop(p, "cannot compute the authentication proof");
		return;
	}
	proof.mac.data = mac;
	proof.mac.len = sizeof(mac);
	p->proof_seq = ++p->seq;
	env.seq = p->proof_seq;
	env.body_case = RSWAP__ENVELOPE__BODY_AUTH_PROOF;
	env.auth_proof = &proof;
	if (!coord_send(p, &env))
		send_register(p);
}

/* Handle one validated envelope.  May drop the connection (p->bev NULL). */
static void handle_envelope(struct poold *p, const Rswap__Envelope *env)
{
	switch (env->body_case) {
	case RSWAP__ENVELOPE__BODY_AUTH_CHALLENGE:
		handle_challenge(p, env->seq, env->auth_challenge);
		return;
	case RSWAP__ENVELOPE__BODY_POOLD_REGISTERED:
		if (env->seq != p->reg_seq) {
			coord_drop(p, "PooldRegistered answers request %llu, not our "
				   "PooldRegister %llu", (unsigned long long)env->seq,
				   (unsigned long long)p->reg_seq);
			return;
		}
		handle_registered(p, env->poold_registered);
		return;
	case RSWAP__ENVELOPE__BODY_ERROR:
		if ((p->auth_seq && env->seq == p->auth_seq) ||
		    (p->proof_seq && env->seq == p->proof_seq)) {
			auth_failed(p, "refused the authentication: %s", env->error->reason);
			return;
		}
		if (!p->registered && env->seq == p->reg_seq) {
			log_err("coordinator %s refused registration: %s (%s)",
				p->set.coord_str, env->error->reason,
				strerror(env->error->code > 0 ? env->error->code : EPROTO));
			coord_drop(p, "registration refused");
			return;
		}
		log_warn("coordinator %s reports an error for request %llu: %s",
			 p->set.coord_str, (unsigned long long)env->seq,
			 env->error->reason);
		return;
	default:
		break;
	}
	if (!p->registered) {
		coord_drop(p, "command received before PooldRegistered");
		return;
	}
	if (env->body_case == RSWAP__ENVELOPE__BODY_CHUNK_ALLOC)
		handle_alloc(p, env->seq, env->chunk_alloc);
	else
		handle_free(p, env->seq, env->chunk_free);
}

static void coord_read_cb(struct bufferevent *bev, void *arg)
{
	struct poold *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (p->bev == bev) {
		size_t avail = evbuffer_get_length(in);
		Rswap__Envelope *env;
		const char *why;
		uint8_t *buf;
		uint32_t len;

		buf = evbuffer_pullup(in, avail < RSWAP_FRAME_HDR ? -1 : RSWAP_FRAME_HDR);
		switch (rswap_frame_peek(buf, avail, &len)) {
		case RSWAP_FRAME_NEED_MORE:
			return;
		case RSWAP_FRAME_BAD_LENGTH:
			coord_drop(p, "bad frame: length is zero or above %u bytes",
				   RSWAP_MAX_FRAME);
			return;
		case RSWAP_FRAME_READY:
			break;
		}
		buf = evbuffer_pullup(in, RSWAP_FRAME_HDR + len);
		env = rswap_frame_decode(buf + RSWAP_FRAME_HDR, len, &why);
		evbuffer_drain(in, RSWAP_FRAME_HDR + len);
		if (!env) {
			coord_drop(p, "bad frame: %s", why);
			return;
		}
		if (poold_coord_msg_check(env, p->chunk_size, &why)) {
			rswap__envelope__free_unpacked(env, NULL);
			coord_drop(p, "bad frame: %s", why);
			return;
		}
		handle_envelope(p, env);
		rswap__envelope__free_unpacked(env, NULL);
	}
}

static void coord_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct poold *p = arg;

	if (what & BEV_EVENT_CONNECTED) {
		log_debug("connected to coordinator %s", p->set.coord_str);
		if (p->set.have_key)
			send_auth_hello(p);
		else
			send_register(p);
		return;
	}
	if (what & BEV_EVENT_EOF)
		coord_drop(p, "connection closed by the coordinator");
	else if (what & BEV_EVENT_ERROR)
		coord_drop(p, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else
		coord_drop(p, "unexpected connection event %#x", (unsigned int)what);
}

static void coord_connect(struct poold *p)
{
	/* Covers the TCP connect too: a silent peer must not stall us. */
	struct timeval tv = ms_to_tv(REGISTER_TIMEOUT_MS);

	evtimer_add(p->reg_timer, &tv);
	p->bev = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!p->bev) {
		coord_drop(p, "cannot create a socket");
		return;
	}
	bufferevent_setcb(p->bev, coord_read_cb, NULL, coord_event_cb, p);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(p->bev, (struct sockaddr *)&p->set.coord_ss,
				       (int)p->set.coord_len) < 0)
		coord_drop(p, "connect failed: %s", strerror(errno));
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct poold *p = arg;

	/* Without a listener we rejoin when it is back, not before. */
	if (p->listen_id)
		coord_connect(p);
}

static void reg_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	coord_drop(arg, "not registered within %u ms of connecting", REGISTER_TIMEOUT_MS);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	struct poold *p = arg;
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__Heartbeat hb = RSWAP__HEARTBEAT__INIT;
	struct timeval tv = ms_to_tv(p->heartbeat_ms);

	if (!p->registered)
		return;
	hb.chunks_held = p->nchunks;
	hb.clients_connected = p->nsessions;
	env.seq = ++p->seq;
	env.body_case = RSWAP__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	if (coord_send(p, &env))
		return;
	evtimer_add(p->hb_timer, &tv);
}

int poold_coord_start(struct poold *p)
{
	p->retry_timer = evtimer_new(p->base, retry_cb, p);
	p->hb_timer = evtimer_new(p->base, heartbeat_cb, p);
	p->reg_timer = evtimer_new(p->base, reg_timeout_cb, p);
	if (!p->retry_timer || !p->hb_timer || !p->reg_timer)
		return -ENOMEM;
	p->backoff_ms = BACKOFF_MIN_MS;
	coord_connect(p);
	return 0;
}

void poold_coord_listener_down(struct poold *p)
{
	if (p->bev)
		log_debug("leaving coordinator %s while clients cannot reach this poold",
			  p->set.coord_str);
	evtimer_del(p->retry_timer);
	evtimer_del(p->hb_timer);
	evtimer_del(p->reg_timer);
	if (p->bev) {
		bufferevent_free(p->bev);
		p->bev = NULL;
	}
	p->registered = false;
}

void poold_coord_listener_up(struct poold *p)
{
	if (p->bev || p->stopping)
		return;
	evtimer_del(p->retry_timer);
	p->backoff_ms = BACKOFF_MIN_MS;
	coord_connect(p);
}

void poold_coord_stop(struct poold *p)
{
	if (p->bev) {
		bufferevent_free(p->bev);
		p->bev = NULL;
	}
	if (p->retry_timer)
		event_free(p->retry_timer);
	if (p->hb_timer)
		event_free(p->hb_timer);
	if (p->reg_timer)
		event_free(p->reg_timer);
	p->retry_timer = p->hb_timer = p->reg_timer = NULL;
	p->registered = false;
}
