// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "dispatch.h"
#include "auth.h"
#include "metrics.h"
#include "placement.h"
#include "registry.h"
#include "report.h"
#include "rswap_frame.h"
#include "rswap_util.h"
#include "rswap.pb-c.h"
#include "stats.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

/* A poold that leaves this many requests unanswered is dropped. */
#define MAX_POOLD_REQS		65536
/*
 * Frames per second a client, admin or new peer may send: far above what
 * any of them needs (a client beats once a second, an admin asks once),
 * low enough that one peer cannot keep the event loop busy.  Registered
 * poolds answer our own requests and are not limited.
 */
#define PEER_RATE_MAX		200

enum peer_role { ROLE_NEW, ROLE_POOLD, ROLE_CLIENT, ROLE_ADMIN };

enum preq_kind { PREQ_ALLOC, PREQ_FREE };

struct op;
struct move;

/* A request the coordinator sent to a poold and whose reply it awaits. */
struct preq {
	struct preq *next;
	uint64_t seq;
	enum preq_kind kind;
	struct op *op;		/* NULL once nobody waits: a late reply */
	struct move *move;	/* a move's target allocation, or NULL */
	uint32_t op_idx;	/* op: its index in op->preqs */
	bool replica;		/* OP_HELLO: a replica's allocation */
	char client_id[RSWAP_ID_MAX + 1];
	uint32_t slot;
	uint64_t handle;	/* PREQ_FREE */
	uint64_t deadline_ms;
	bool timed_out;
};

enum op_kind { OP_HELLO, OP_RELEASE };

/* A client request that waits on poolds. */
struct op {
	struct op *next, **pprev;	/* coord->inflight, so shutdown frees all */
	enum op_kind kind;
	struct peer *client_peer;	/* NULL if the client went away */
	uint64_t client_seq;
	struct client *client;
	/* While outstanding, npreqs entries: per slot, and for a replicated
	 * hello then one per replica (preq.op_idx is the index). */
	struct preq **preqs;
	uint32_t npreqs;
	uint32_t outstanding;
	uint32_t freed, dropped;	/* OP_RELEASE */
};

/*
 * A live move of one client slot from poold `from` (handle from_handle) to
 * poold `to`, copied by the client:
 *
 *   QUEUED --start--> ALLOCATING --ChunkAllocDone, MoveChunk sent--> COPYING
 *   COPYING --MoveDone switched--> done (slot on to, from freed)
 *   COPYING --MoveDone !switched--> failed (to freed)
 *   COPYING --session closes--> WAITING --reconnect hello--> done, COPYING
 *                                                            or failed
 *   QUEUED/ALLOCATING --client, poold or room missing--> failed
 *
 * The target's chunk is an extra copy of the slot in the registry (struct
 * copy, move = true) from ChunkAllocDone on; it is freed only when the
 * client says it does not run on it.  Moves name their client by id: a
 * client record may be replaced while a move is queued.
 */
enum move_step {
	MOVE_QUEUED = 1,	/* values match rswap.MoveStep */
	MOVE_ALLOCATING = 2,
	MOVE_COPYING = 3,
	MOVE_WAITING = 4,
};

struct move {
	struct move *next;
	char client_id[RSWAP_ID_MAX + 1];
	uint32_t slot;
	enum move_step step;
	struct poold *from, *to;	/* poolds are never freed */
	uint64_t from_handle, to_handle;
	uint64_t epoch;			/* the client's once it commits */
	uint64_t copied;		/* as the client last reported */
	uint64_t started_ms;		/* left the queue; 0 queued */
	struct preq *q;			/* ALLOCATING: the ChunkAlloc */
	uint64_t job;
	/*
	 * replace: a replicated client's move; (from, from_handle) is the
	 * copy replaced (the slot's own or a replica) and the target takes
	 * its place.  resync: a re-replication (that copy is lost, on a dead
	 * poold or long stale; the client copies from an in-sync copy).
	 */
	bool replace;
	bool resync;
};

#define MOVE_JOBS		16	/* jobs listed, the latest */
#define MOVES_LISTED		1024	/* ClusterState.moves at most (~120 KiB) */
#define MOVES_MAX		65536	/* queued and running at most */
#define LOST_SLOTS_MAX		1024	/* per ClientHello / ClientHeartbeat */
#define STALE_HANDLES_MAX	1024	/* ... and stale copies */

/* The moves one drain or rebalance request queued. */
struct move_job {
	uint64_t id;			/* 0: an empty entry */
	char kind[12];
	char poold[RSWAP_ADDR_MAX + 1];
	uint32_t total, done, failed;
	uint64_t bytes_moved;
	uint64_t start_ms;
	char last_error[200];
};

struct peer {
	struct peer *next;
	struct peer *close_next;
	char name[64];
	enum peer_role role;
	bool closing;
	struct evbuffer *out;
	void *glue;
	struct poold *poold;		/* ROLE_POOLD */
	struct preq *reqs;		/* ROLE_POOLD, oldest first */
	struct preq **reqs_tail;
	size_t nreqs;
	struct op *op;			/* ROLE_CLIENT: its request in flight */
	/* Authentication (with a cluster key): see handle_auth_*(). */
	enum { AUTH_NONE, AUTH_CHALLENGED, AUTH_OK } auth;
	enum rswap_auth_role auth_role;
	char auth_id[RSWAP_AUTH_ID_MAX + 1];
	uint8_t nonce_peer[RSWAP_NONCE_LEN], nonce_ours[RSWAP_NONCE_LEN];
	/* Frames in the current one-second window (see PEER_RATE_MAX). */
	uint64_t rate_window_ms;
	uint32_t rate_frames;
	struct client *client;		/* ROLE_CLIENT: the id it owns, or NULL */
	uint64_t last_rx_ms;		/* last whole frame received */
};

struct coord {
	struct coord_settings s;
	struct coord_ops ops;
	struct registry *reg;
	struct peer *peers;
	struct peer *closing;
	struct op *inflight;
	uint64_t next_seq;
	uint64_t now_ms;
	uint64_t start_ms;	/* first time seen, for grace_ms */
	bool started;
	struct coord_stats stats;	/* for /metrics */
	uint64_t auth_failures;
	/* Live chunk moves, oldest first: queued, then past the queue. */
	struct move *moves, **moves_tail;
	uint32_t nmoves, nactive;	/* all, and past the queue */
	uint64_t moves_done, moves_failed, bytes_moved;
	uint64_t rerep_done, rerep_failed;	/* resync moves that ended */
	uint64_t last_rerep_ms;			/* the reconciler's last look */
	struct move_job jobs[MOVE_JOBS];	/* ring, newest at jobs_head - 1 */
	size_t jobs_head;
	uint64_t next_job;
};

static void set_now(struct coord *c, uint64_t now_ms)
{
	c->now_ms = now_ms;
	if (!c->started) {
		c->started = true;
		c->start_ms = now_ms;
	}
}

struct coord *coord_new(const struct coord_settings *s,
			const struct coord_ops *ops)
{
	struct coord *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->s = *s;
	c->ops = *ops;
	c->reg = registry_new(s->chunk_size);
	if (!c->reg) {
		free(c);
		return NULL;
	}
	c->next_seq = 1;
	c->next_job = 1;
	c->moves_tail = &c->moves;
	if (!c->s.max_moves)
		c->s.max_moves = COORD_MAX_MOVES_DEFAULT;
	if (!c->s.max_poolds)
		c->s.max_poolds = COORD_MAX_POOLDS_DEFAULT;
	if (!c->s.max_clients)
		c->s.max_clients = COORD_MAX_CLIENTS_DEFAULT;
	return c;
}

struct registry *coord_registry(struct coord *c)
{
	return c->reg;
}

const struct coord_stats *coord_get_stats(const struct coord *c)
{
	return &c->stats;
}

static const char *body_name(Rswap__Envelope__BodyCase bc)
{
	switch (bc) {
	case RSWAP__ENVELOPE__BODY_ERROR: return "Error";
	case RSWAP__ENVELOPE__BODY_POOLD_REGISTER: return "PooldRegister";
	case RSWAP__ENVELOPE__BODY_POOLD_REGISTERED: return "PooldRegistered";
	case RSWAP__ENVELOPE__BODY_HEARTBEAT: return "Heartbeat";
	case RSWAP__ENVELOPE__BODY_CHUNK_ALLOC: return "ChunkAlloc";
	case RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE: return "ChunkAllocDone";
	case RSWAP__ENVELOPE__BODY_CHUNK_FREE: return "ChunkFree";
	case RSWAP__ENVELOPE__BODY_CHUNK_FREE_DONE: return "ChunkFreeDone";
	case RSWAP__ENVELOPE__BODY_CLIENT_HELLO: return "ClientHello";
	case RSWAP__ENVELOPE__BODY_CHUNK_MAP: return "ChunkMap";
	case RSWAP__ENVELOPE__BODY_CLIENT_RELEASE: return "ClientRelease";
	case RSWAP__ENVELOPE__BODY_CLIENT_RELEASED: return "ClientReleased";
	case RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT: return "ClientHeartbeat";
	case RSWAP__ENVELOPE__BODY_MOVE_CHUNK: return "MoveChunk";
	case RSWAP__ENVELOPE__BODY_MOVE_DONE: return "MoveDone";
	case RSWAP__ENVELOPE__BODY_ADMIN_LIST: return "AdminList";
	case RSWAP__ENVELOPE__BODY_CLUSTER_STATE: return "ClusterState";
	case RSWAP__ENVELOPE__BODY_ADMIN_STATUS: return "AdminStatus";
	case RSWAP__ENVELOPE__BODY_CLIENT_INFO: return "ClientInfo";
	case RSWAP__ENVELOPE__BODY_ADMIN_DRAIN: return "AdminDrain";
	case RSWAP__ENVELOPE__BODY_ADMIN_REBALANCE: return "AdminRebalance";
	case RSWAP__ENVELOPE__BODY_REBALANCE_PLAN: return "RebalancePlan";
	case RSWAP__ENVELOPE__BODY_AUTH_HELLO: return "AuthHello";
	case RSWAP__ENVELOPE__BODY_AUTH_CHALLENGE: return "AuthChallenge";
	case RSWAP__ENVELOPE__BODY_AUTH_PROOF: return "AuthProof";
	default: return "unknown message";
	}
}

static const char *role_name(enum peer_role r)
{
	switch (r) {
	case ROLE_POOLD: return "poold";
	case ROLE_CLIENT: return "client";
	case ROLE_ADMIN: return "admin";
	default: return "peer";
	}
}

void coord_count_peers(const struct coord *c, uint64_t *n)
{
	const struct peer *p;

	for (p = c->peers; p; p = p->next)
		if (!p->closing)
			n[coord_stats_role_index(role_name(p->role))]++;
}

/* "poold 10.0.0.3:9400 (from 10.0.0.3:41234)" or "client 10.0.0.9:5133" */
static const char *peer_label(const struct peer *p, char *buf, size_t len)
{
	if (p->poold)
		snprintf(buf, len, "poold %s (from %s)", p->poold->addr, p->name);
	else
		snprintf(buf, len, "%s %s", role_name(p->role), p->name);
	return buf;
}

static void peer_close(struct coord *c, struct peer *p, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Mark p for closing; the state forgets it at the end of this event. */
static void peer_close(struct coord *c, struct peer *p, const char *fmt, ...)
{
	char reason[384], label[256];
	va_list ap;

	if (p->closing)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	log_warn("closing %s: %s", peer_label(p, label, sizeof(label)), reason);
	p->closing = true;
	p->close_next = c->closing;
	c->closing = p;
}

static int peer_send(struct coord *c, struct peer *p, Rswap__Envelope *env)
{
	size_t queued;
	int ret;

	if (p->closing)
		return -EPIPE;
	env->version = RSWAP_PROTO_VERSION;
	ret = rswap_frame_append(p->out, env);
	if (ret) {
		peer_close(c, p, "cannot queue %s: %s", body_name(env->body_case),
			   strerror(-ret));
		return ret;
	}
	queued = evbuffer_get_length(p->out);
	if (queued > c->s.out_limit) {
		peer_close(c, p, "it does not read its replies (%zu bytes queued)",
			   queued);
		return -ENOBUFS;
	}
	return 0;
}

static void send_error(struct coord *c, struct peer *p, uint64_t seq, int code,
		       const char *reason)
{
	Rswap__Envelope env;
	Rswap__Error err;

	rswap_frame_error(&env, &err, seq, code, reason);
	coord_stats_error_sent(&c->stats, role_name(p->role), code);
	peer_send(c, p, &env);
}

static void refuse(struct coord *c, struct peer *p, uint64_t seq, int code,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Error reply for a request that was well-formed but cannot be served. */
static void refuse(struct coord *c, struct peer *p, uint64_t seq, int code,
		   const char *fmt, ...)
{
	char reason[512], label[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	log_info("%s: refused: %s", peer_label(p, label, sizeof(label)), reason);
	send_error(c, p, seq, code, reason);
}

/* Protocol violation: Error (if the peer can use one) and close. */
static void violation(struct coord *c, struct peer *p, uint64_t seq, int code,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void violation(struct coord *c, struct peer *p, uint64_t seq, int code,
		      const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	send_error(c, p, seq, code, reason);
	peer_close(c, p, "%s", reason);
}

/*
 * A peer's free text, made safe for a log line or a reason we pass on:
 * at most 200 bytes, anything unprintable shown as '?'.
 */
static const char *printable(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s && s[i] && i + 1 < len && i < 200; i++)
		buf[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* ---- requests to poolds ------------------------------------------------ */

static bool poold_reachable(const struct poold *pd)
{
	const struct peer *pp = pd->conn;

	return pd->connected && pp && !pp->closing;
}

static struct preq *preq_send(struct coord *c, struct poold *pd,
			      enum preq_kind kind, struct op *op,
			      const char *client_id, uint32_t slot,
			      uint64_t client_size, uint64_t handle)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkAlloc alloc = RSWAP__CHUNK_ALLOC__INIT;
	Rswap__ChunkFree cfree = RSWAP__CHUNK_FREE__INIT;
	struct peer *pp = pd->conn;
	struct preq *q;

	if (pp->nreqs >= MAX_POOLD_REQS) {
		peer_close(c, pp, "%d requests unanswered", MAX_POOLD_REQS);
		return NULL;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		peer_close(c, pp, "out of memory for a request");
		return NULL;
	}
	q->seq = c->next_seq++;
	q->kind = kind;
	q->op = op;
	snprintf(q->client_id, sizeof(q->client_id), "%s", client_id);
	q->slot = slot;
	q->handle = handle;
	q->deadline_ms = c->now_ms + c->s.timeout_ms;
	*pp->reqs_tail = q;
	pp->reqs_tail = &q->next;
	pp->nreqs++;

	env.seq = q->seq;
	if (kind == PREQ_ALLOC) {
		alloc.client_id = q->client_id;
		alloc.slot = slot;
		alloc.client_size = client_size;
		env.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC;
		env.chunk_alloc = &alloc;
	} else {
		cfree.handle = handle;
		env.body_case = RSWAP__ENVELOPE__BODY_CHUNK_FREE;
		env.chunk_free = &cfree;
	}
	/* On failure pp is closing; closing fails q with the others. */
	peer_send(c, pp, &env);
	return q;
}

/* Give a chunk back to its poold, or remember it if the poold is away. */
static void chunk_free(struct coord *c, struct poold *pd, const char *client_id,
		       uint32_t slot, uint64_t handle)
{
	if (poold_reachable(pd) &&
	    preq_send(c, pd, PREQ_FREE, NULL, client_id, slot, 0, handle))
		return;
	if (registry_tomb_add(pd, client_id, slot, false, handle))
		log_err("out of memory: poold %s keeps client %s slot %" PRIu32
			" handle %" PRIu64 " until it is restarted",
			pd->addr, client_id, slot, handle);
}

static struct preq *preq_take(struct peer *pp, uint64_t seq,
			      enum preq_kind kind)
{
	struct preq **qq, *q;

	for (qq = &pp->reqs; (q = *qq); qq = &q->next) {
		if (q->seq != seq)
			continue;
		if (q->kind != kind)
			return NULL;
		*qq = q->next;
		if (pp->reqs_tail == &q->next)
			pp->reqs_tail = qq;
		pp->nreqs--;
		return q;
	}
	return NULL;
}

/* ---- live chunk moves --------------------------------------------------- */

void coord_move_stats(const struct coord *c, struct coord_move_stats *s)
{
	s->running = c->nactive;
	s->queued = c->nmoves - c->nactive;
	s->done = c->moves_done;
	s->failed = c->moves_failed;
	s->bytes = c->bytes_moved;
	s->rerep_done = c->rerep_done;
	s->rerep_failed = c->rerep_failed;
}

static const char *move_step_name(enum move_step st)
{
	switch (st) {
	case MOVE_QUEUED: return "queued";
	case MOVE_ALLOCATING: return "allocating";
	case MOVE_COPYING: return "copying";
	case MOVE_WAITING: return "waiting-for-client";
	}
	return "unknown";
}

static struct move_job *job_find(struct coord *c, uint64_t id)
{
	size_t i;

	for (i = 0; id && i < MOVE_JOBS; i++)
		if (c->jobs[i].id == id)
			return &c->jobs[i];
	return NULL;
}

/* A new job (the oldest listed one is forgotten). */
static struct move_job *job_new(struct coord *c, const char *kind,
				const char *poold)
{
	struct move_job *j = &c->jobs[c->jobs_head];

	c->jobs_head = (c->jobs_head + 1) % MOVE_JOBS;
	memset(j, 0, sizeof(*j));
	j->id = c->next_job++;
	snprintf(j->kind, sizeof(j->kind), "%s", kind);
	snprintf(j->poold, sizeof(j->poold), "%s", poold ? poold : "");
	j->start_ms = c->now_ms;
	return j;
}

/* The mapped, healthy copy m moves, or NULL if the slot changed meanwhile. */
static struct slot *move_source(struct coord *c, const struct move *m,
				struct client **clp)
{
	struct client *cl = registry_client_find(c->reg, m->client_id);
	struct slot *s = cl ? registry_slot(cl, m->slot) : NULL;

	*clp = cl;
	if (!s || s->state != SLOT_HELD || s->lost || s->poold != m->from ||
	    s->handle != m->from_handle)
		return NULL;
	return s;
}

/*
 * The copy a resync move replaces, if it is still one of the slot's:
 * *own says whether it is the slot's own copy (else *rx is the replica).
 */
static bool resync_source(struct coord *c, const struct move *m,
			  struct client **clp, bool *own, struct copy **rx)
{
	struct client *cl = registry_client_find(c->reg, m->client_id);
	struct slot *s = cl ? registry_slot(cl, m->slot) : NULL;
	uint32_t i;

	*clp = cl;
	*rx = NULL;
	*own = false;
	if (!s || s->state != SLOT_HELD)
		return false;
	if (s->poold == m->from && s->handle == m->from_handle) {
		*own = true;
		return true;
	}
	for (i = 0; i < cl->nextra; i++) {
		struct copy *x = &cl->extra[i];

		if (x->replica && x->slot == m->slot && x->poold == m->from &&
		    x->handle == m->from_handle && !x->reserved) {
			*rx = x;
			return true;
		}
	}
	return false;
}

/* Is what m moves still there (and, resync, a copy to copy from)? */
static bool move_valid(struct coord *c, const struct move *m, struct client **clp)
{
	struct copy *rx;
	bool own;

	if (!m->replace)
		return move_source(c, m, clp) != NULL;
	return resync_source(c, m, clp, &own, &rx);
}

static void move_unlink(struct coord *c, struct move *m)
{
	struct move **mm;

	for (mm = &c->moves; *mm; mm = &(*mm)->next) {
		if (*mm != m)
			continue;
		*mm = m->next;
		if (c->moves_tail == &m->next)
			c->moves_tail = mm;
		break;
	}
	c->nmoves--;
	if (m->step != MOVE_QUEUED)
		c->nactive--;
}

/*
 * After a resync move: success clears the client's backoff; a failure
 * (the client refused, EBUSY while it resyncs itself, a poold gone) waits
 * 2 s, doubling up to 64 s, before the reconciler tries that client again.
 */
static void rerep_backoff(struct coord *c, struct client *cl, bool ok)
{
	uint64_t wait;

	if (ok) {
		cl->rerep_fails = 0;
		cl->rerep_after_ms = 0;
		return;
	}
	wait = RSWAP_REREP_BACKOFF_MS << (cl->rerep_fails < 5 ? cl->rerep_fails : 5);
	if (cl->rerep_fails < 255)
		cl->rerep_fails++;
	cl->rerep_after_ms = c->now_ms + wait;
}

/* m is over, either way: forget it and let the next ones run. */
static void move_end(struct coord *c, struct move *m, bool ok, const char *reason)
{
	struct move_job *j = job_find(c, m->job);
	struct client *cl = registry_client_find(c->reg, m->client_id);
	struct slot *s = cl ? registry_slot(cl, m->slot) : NULL;

	move_unlink(c, m);
	if (m->q)
		m->q->move = NULL;	/* a late ChunkAllocDone is freed */
	if (s)
		s->moving = false;
	if (cl && cl->move == m)
		cl->move = NULL;
	if (m->resync && cl) {
		cl->rerep_queued = false;
		rerep_backoff(c, cl, ok);
	}
	if (m->resync)
		ok ? c->rerep_done++ : c->rerep_failed++;
	if (ok) {
		c->moves_done++;
		c->bytes_moved += c->s.chunk_size;
		log_info("client %s: slot %" PRIu32 " moved from poold %s to %s (handle %"
			 PRIu64 "), epoch %" PRIu64, m->client_id, m->slot,
			 m->from->addr, m->to->addr, m->to_handle, m->epoch);
	} else {
		c->moves_failed++;
		log_warn("client %s: move of slot %" PRIu32 " from poold %s to %s failed (%s): %s",
			 m->client_id, m->slot, m->from->addr, m->to->addr,
			 move_step_name(m->step), reason);
	}
	if (j) {
		if (ok) {
			j->done++;
			j->bytes_moved += c->s.chunk_size;
		} else {
			j->failed++;
			snprintf(j->last_error, sizeof(j->last_error), "client %s slot %" PRIu32
				 ": %s", m->client_id, m->slot, reason);
		}
	}
	free(m);
}

static void move_fail(struct coord *c, struct move *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void move_fail(struct coord *c, struct move *m, const char *fmt, ...)
{
	char reason[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	move_end(c, m, false, reason);
}

/*
 * Queue a move of copy (from, from_handle) of cl's slot s to poold `to`
 * for job j: the slot's own copy, or with replace any copy of a
 * replicated client (see struct move).  0, or -ENOMEM / -E2BIG (too many
 * moves queued).
 */
static int copy_move_queue(struct coord *c, struct client *cl, struct slot *s,
			   struct poold *from, uint64_t from_handle,
			   struct poold *to, struct move_job *j, bool replace,
			   bool resync)
{
	struct move *m;

	if (c->nmoves >= MOVES_MAX)
		return -E2BIG;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	snprintf(m->client_id, sizeof(m->client_id), "%s", cl->id);
	m->slot = s->index;
	m->step = MOVE_QUEUED;
	m->from = from;
	m->from_handle = from_handle;
	m->to = to;
	m->replace = replace;
	m->resync = resync;
	m->job = j ? j->id : 0;
	s->moving = true;
	*c->moves_tail = m;
	c->moves_tail = &m->next;
	c->nmoves++;
	if (j)
		j->total++;
	return 0;
}

/* Queue a move of cl's slot s (its own copy) to `to` for job j. */
static int move_queue(struct coord *c, struct client *cl, struct slot *s,
		      struct poold *to, struct move_job *j)
{
	return copy_move_queue(c, cl, s, s->poold, s->handle, to, j, false, false);
}

static void send_move_chunk(struct coord *c, struct peer *p, const struct move *m)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__MoveChunk mc = RSWAP__MOVE_CHUNK__INIT;

	mc.epoch = m->epoch;
	mc.slot = m->slot;
	mc.from_handle = m->from_handle;
	mc.to_poold = m->to->addr;
	mc.to_handle = m->to_handle;
	env.seq = c->next_seq++;
	env.body_case = RSWAP__ENVELOPE__BODY_MOVE_CHUNK;
	env.move_chunk = &mc;
	peer_send(c, p, &env);
}

/* Do poolds a and b share a failure domain (see placement_domains())? */
static bool same_zone(const struct poold *a, const struct poold *b)
{
	return a == b || (a->zone[0] && !strcmp(a->zone, b->zone));
}

/*
 * May `to` take a copy of cl's slot in place of the copy (from,
 * from_handle)?  Not if it holds another copy of the slot, or shares a
 * zone with one; a lost copy holds nothing and binds nothing (it is
 * replaced in turn), so its own poold (a new incarnation) may take its
 * replacement, while a copy that lives keeps its poold out.
 */
static bool target_fits(const struct client *cl, uint32_t slot, const struct poold *to,
			const struct poold *from, uint64_t from_handle, bool from_lost)
{
	const struct slot *s = registry_slot(cl, slot);
	uint32_t i;

	if (to == from && !from_lost)
		return false;
	if (s && s->state != SLOT_EMPTY && !s->lost &&
	    !(s->poold == from && s->handle == from_handle) && same_zone(s->poold, to))
		return false;
	for (i = 0; i < cl->nextra; i++) {
		const struct copy *x = &cl->extra[i];

		if (x->slot != slot || !x->replica || x->lost ||
		    (x->poold == from && x->handle == from_handle))
			continue;
		if (same_zone(x->poold, to))
			return false;
	}
	return true;
}

/* Is the copy m replaces lost (its poold holds nothing of it)? */
static bool move_from_lost(struct coord *c, const struct move *m)
{
	struct client *cl;
	struct copy *rx;
	bool own;

	if (!m->replace || !resync_source(c, m, &cl, &own, &rx))
		return false;
	return own ? registry_slot(cl, m->slot)->lost : rx->lost;
}

/* Take m out of the queue: allocate its target.  May end m. */
static void move_start(struct coord *c, struct move *m)
{
	struct client *cl;
	struct preq *q;

	if (!move_valid(c, m, &cl)) {
		move_fail(c, m, "the slot is no longer held by handle %" PRIu64
			  " on poold %s (released, moved or lost meanwhile)",
			  m->from_handle, m->from->addr);
		return;
	}
	if (!cl->owner) {
		move_fail(c, m, "client %s has no live session (the client copies its chunks; retry when it is connected)",
			  cl->id);
		return;
	}
	if (registry_unresolved(cl)) {
		move_fail(c, m, "client %s has copies unresolved since a restart; its reconnect settles them",
			  cl->id);
		return;
	}
	if (!m->resync && (!poold_reachable(m->from) || m->from->state != POOLD_ALIVE)) {
		move_fail(c, m, "source poold %s is %s", m->from->addr,
			  registry_state_name(m->from->state));
		return;
	}
	if (cl->replicas > 1 &&
	    !target_fits(cl, m->slot, m->to, m->from, m->from_handle, move_from_lost(c, m))) {
		move_fail(c, m, "target poold %s holds another copy of the slot, or one in its zone",
			  m->to->addr);
		return;
	}
	if (!poold_reachable(m->to) || !registry_poold_placeable(m->to)) {
		move_fail(c, m, "target poold %s is %s%s", m->to->addr,
			  registry_state_name(m->to->state),
			  m->to->draining ? " and draining" : "");
		return;
	}
	if (m->to->chunks_used >= m->to->chunks_total) {
		move_fail(c, m, "target poold %s is full (%" PRIu32 " chunks)",
			  m->to->addr, m->to->chunks_total);
		return;
	}
	m->step = MOVE_ALLOCATING;
	m->started_ms = c->now_ms;
	c->nactive++;
	cl->move = m;
	q = preq_send(c, m->to, PREQ_ALLOC, NULL, cl->id, m->slot, cl->size, 0);
	if (!q) {
		move_fail(c, m, "could not send ChunkAlloc to poold %s", m->to->addr);
		return;
	}
	q->move = m;
	m->q = q;
}

/* ---- re-replication ------------------------------------------------------ */

/* How often the reconciler looks (it runs on the tick). */
#define REREP_PERIOD_MS		1000

/*
 * Must this copy be replaced: lost, on a dead poold, or stale too long?
 * A poold counts as dead here once it has been silent for RSWAP_DEAD_BEATS
 * heartbeats, also when its connection dropped sooner: a blip of the
 * coordinator link (memory intact, the same incarnation back within
 * seconds) should cost no whole-chunk copies.
 */
static bool copy_needs_replacing(const struct coord *c, const struct poold *pd,
				 bool lost, uint64_t stale_since_ms)
{
	uint64_t silent = c->now_ms > pd->last_heartbeat_ms ?
			  c->now_ms - pd->last_heartbeat_ms : 0;

	return lost ||
	       (pd->state == POOLD_DEAD &&
		silent >= (uint64_t)c->s.heartbeat_ms * RSWAP_DEAD_BEATS) ||
	       (c->s.stale_replace_ms && stale_since_ms &&
		c->now_ms - stale_since_ms >= c->s.stale_replace_ms);
}

/* Has the slot an in-sync copy other than (pd, handle) to copy from? */
static bool slot_has_source(const struct client *cl, const struct slot *s,
			    const struct poold *pd, uint64_t handle)
{
	uint32_t i;

	if (!(s->poold == pd && s->handle == handle) &&
	    registry_copy_in_sync(s->poold, s->lost, s->stale_since_ms))
		return true;
	for (i = 0; i < cl->nextra; i++) {
		const struct copy *x = &cl->extra[i];

		if (x->slot == s->index && x->replica && !x->reserved &&
		    !(x->poold == pd && x->handle == handle) &&
		    registry_copy_in_sync(x->poold, x->lost, x->stale_since_ms))
			return true;
	}
	return false;
}

/* The least loaded live poold that may take the replacement, or NULL. */
static struct poold *rerep_target(struct coord *c, const struct client *cl,
				  uint32_t slot, const struct poold *from,
				  uint64_t from_handle, bool from_lost)
{
	struct poold *p, *best = NULL;

	for (p = c->reg->poolds; p; p = p->next) {
		if (!registry_poold_placeable(p) || !poold_reachable(p) ||
		    p->chunks_used >= p->chunks_total ||
		    !target_fits(cl, slot, p, from, from_handle, from_lost))
			continue;
		if (!best || (uint64_t)p->chunks_used * best->chunks_total <
			     (uint64_t)best->chunks_used * p->chunks_total ||
		    ((uint64_t)p->chunks_used * best->chunks_total ==
		     (uint64_t)best->chunks_used * p->chunks_total &&
		     strcmp(p->addr, best->addr) < 0))
			best = p;
	}
	return best;
}

/* A re-replication of that copy, in the reconciler's job *jp. */
static int rerep_queue(struct coord *c, struct client *cl, struct slot *s,
		       struct poold *from, uint64_t from_handle, struct poold *to,
		       struct move_job **jp)
{
	int ret;

	if (!*jp)
		*jp = job_new(c, "rereplicate", NULL);
	ret = copy_move_queue(c, cl, s, from, from_handle, to, *jp, true, true);
	if (ret)
		return ret;
	cl->rerep_queued = true;
	cl->rerep_stuck_logged = false;
	log_info("client %s: slot %" PRIu32 " copy on poold %s (handle %" PRIu64
		 ") is %s; a new copy goes to poold %s", cl->id, s->index, from->addr,
		 from_handle, from->state == POOLD_DEAD ? "on a dead poold" : "lost or long stale",
		 to->addr);
	return 0;
}

enum rerep_verdict { REREP_FINE, REREP_QUEUED, REREP_NOWHERE };

/* Consider one copy of cl's slot s for replacement. */
static enum rerep_verdict rerep_consider(struct coord *c, struct client *cl,
					 struct slot *s, struct poold *pd,
					 uint64_t handle, bool lost,
					 uint64_t stale_since_ms, struct move_job **jp)
{
	struct poold *to;

	if (!copy_needs_replacing(c, pd, lost, stale_since_ms) ||
	    !slot_has_source(cl, s, pd, handle))
		return REREP_FINE;
	to = rerep_target(c, cl, s->index, pd, handle, lost);
	if (!to) {
		if (!cl->rerep_stuck_logged)
			log_warn("client %s: slot %" PRIu32 " stays degraded: no live poold with room outside the zones of its other copies for the copy on poold %s; retrying",
				 cl->id, s->index, pd->addr);
		cl->rerep_stuck_logged = true;
		return REREP_NOWHERE;
	}
	return rerep_queue(c, cl, s, pd, handle, to, jp) ? REREP_NOWHERE : REREP_QUEUED;
}

/* Copies with nowhere to go a pass looks at per client, at most. */
#define REREP_TRIES		16

/*
 * One resync move for cl if a copy needs replacing.  Position i of the
 * scan is slot bucket i, then extra i - cap; a pass starts where the last
 * one gave up, so copies with nowhere to go cannot hide the others, and
 * looks at REREP_TRIES of those at most.  O(slots + extras) plus the
 * target searches.
 */
static void rerep_client(struct coord *c, struct client *cl, struct move_job **jp)
{
	uint32_t n = cl->cap + cl->nextra, k, i, tries = 0;
	enum rerep_verdict v;

	for (k = 0; k < n; k++) {
		i = (cl->rerep_cursor + k) % n;
		if (i < cl->cap) {
			struct slot *s = &cl->slots[i];

			if (s->state != SLOT_HELD || s->moving)
				continue;
			v = rerep_consider(c, cl, s, s->poold, s->handle, s->lost,
					   s->stale_since_ms, jp);
		} else {
			struct copy *x = &cl->extra[i - cl->cap];
			struct slot *s = registry_slot(cl, x->slot);

			if (!x->replica || x->reserved || !s || s->state != SLOT_HELD ||
			    s->moving)
				continue;
			/* rerep_queue does not change the extras: x stays valid. */
			v = rerep_consider(c, cl, s, x->poold, x->handle, x->lost,
					   x->stale_since_ms, jp);
		}
		if (v == REREP_QUEUED)
			return;
		if (v == REREP_NOWHERE && ++tries == REREP_TRIES) {
			cl->rerep_cursor = (i + 1) % n;
			return;
		}
	}
}

/*
 * The reconciler: for every replicated client with a live session and
 * nothing else in progress, queue the replacement of one copy that is
 * lost, on a dead poold or stale beyond --stale-replace-ms.  The move
 * executor runs it like any move (one per client, --max-moves).
 */
static void rereplicate(struct coord *c)
{
	struct move_job *j = NULL;
	struct client *cl;

	if (c->now_ms - c->last_rerep_ms < REREP_PERIOD_MS && c->last_rerep_ms)
		return;
	c->last_rerep_ms = c->now_ms;
	for (cl = c->reg->clients; cl; cl = cl->next) {
		if (cl->replicas < 2 || cl->busy || !cl->owner || cl->move ||
		    cl->rerep_queued || c->now_ms < cl->rerep_after_ms ||
		    registry_unresolved(cl))
			continue;
		rerep_client(c, cl, &j);
	}
}

/*
 * Start what the limits allow: at most max_moves past the queue, one per
 * client, in queue order.  Called after every event that may free a place
 * and every tick.  O(moves).
 */
static void moves_pump(struct coord *c)
{
	struct move *m, *next;
	struct client *cl;

	for (m = c->moves; m; m = next) {
		next = m->next;
		cl = registry_client_find(c->reg, m->client_id);
		if (m->step != MOVE_QUEUED) {
			/* A registration replaced the client (a pool of another
			 * size) and freed its copies: nothing left to move. */
			if (!cl || cl->move != m)
				move_fail(c, m, "the client's record was replaced");
			continue;
		}
		if ((cl && cl->move) || c->nactive >= c->s.max_moves)
			continue;
		move_start(c, m);
	}
}

/* The target's ChunkAlloc was answered: tell the client to copy. */
static void move_alloc_done(struct coord *c, struct move *m, uint64_t handle)
{
	struct client *cl;
	bool valid = move_valid(c, m, &cl);

	m->q = NULL;
	m->to_handle = handle;
	if (!valid || !cl->owner) {
		chunk_free(c, m->to, m->client_id, m->slot, handle);
		move_fail(c, m, "%s before the copy began; target freed",
			  !valid ? "the slot changed" : "the client's session ended");
		return;
	}
	if (registry_extra_add(cl, m->to, m->slot, handle, c->now_ms, true)) {
		chunk_free(c, m->to, m->client_id, m->slot, handle);
		move_fail(c, m, "coordinator out of memory");
		return;
	}
	m->epoch = cl->epoch + 1;
	m->step = MOVE_COPYING;
	log_info("client %s: %s slot %" PRIu32 " from poold %s (handle %" PRIu64
		 ") to %s (handle %" PRIu64 "), epoch %" PRIu64, cl->id,
		 m->resync ? "replacing the copy of" : "moving", m->slot,
		 m->from->addr, m->from_handle, m->to->addr, handle, m->epoch);
	send_move_chunk(c, cl->owner, m);
}

/*
 * The switch of m's slot to its target was recorded (ret 0): m commits,
 * the copy it replaced (*old) is freed.  Else nothing is freed: both
 * copies stay, the target as unresolved.
 */
static void move_switched(struct coord *c, struct move *m, struct client *cl,
			  struct copy *x, int ret, const struct copy *old,
			  uint64_t copied)
{
	if (ret) {
		x->move = false;
		move_fail(c, m, "cannot record the switch (%s); both copies kept",
			  strerror(-ret));
		return;
	}
	if (m->epoch > cl->epoch)
		cl->epoch = m->epoch;
	m->copied = copied;
	if (old->poold) {
		if (m->replace)
			log_info("client %s: slot %" PRIu32 " replaced copy %" PRIu64
				 " on poold %s (%s) is freed", cl->id, m->slot, old->handle,
				 old->poold->addr, registry_state_name(old->poold->state));
		chunk_free(c, old->poold, cl->id, m->slot, old->handle);
	}
	move_end(c, m, true, NULL);
}

/*
 * A re-replication switched: the target takes the replaced copy's place,
 * in sync; the replaced chunk is freed (on a poold that is away, a
 * tombstone frees it when it registers again; a lost one is not freed).
 */
static void resync_commit(struct coord *c, struct move *m, struct client *cl,
			  struct copy *x, uint64_t copied)
{
	struct copy *rx, old;
	struct client *cl2;
	bool own;
	int ret = 0;

	if (!x || !x->move) {
		move_fail(c, m, "the target chunk is gone");
		return;
	}
	if (!resync_source(c, m, &cl2, &own, &rx)) {
		/* The replaced copy went meanwhile (the slot was reconciled):
		 * the target stays as an unresolved copy for the client to settle. */
		x->move = false;
		move_fail(c, m, "the copy it replaces is no longer the slot's; target kept unresolved");
		return;
	}
	if (own)
		ret = registry_slot_switch(cl, x, &old);
	else
		registry_replica_switch(cl, rx, x, &old);
	/* After a replica switch x is gone, but ret is 0. */
	move_switched(c, m, cl, x, ret, &old, copied);
}

/* The client runs on the target now: it becomes the slot, the source goes. */
static void move_commit(struct coord *c, struct move *m, uint64_t copied)
{
	struct client *cl = registry_client_find(c->reg, m->client_id);
	struct copy *x = cl ? registry_extra_find(cl, m->slot, m->to_handle) : NULL;
	struct copy old;
	int ret;

	if (m->replace) {
		resync_commit(c, m, cl, x, copied);
		return;
	}
	if (!x) {
		struct slot *s = cl ? registry_slot(cl, m->slot) : NULL;

		/*
		 * Its poold came back without it: what the client wrote since
		 * the switch is gone, and the source is stale.  The slot is
		 * lost; the source, which nobody will read, is freed.
		 */
		if (s && s->state == SLOT_HELD && !s->lost && s->poold == m->from &&
		    s->handle == m->from_handle) {
			registry_slot_set_lost(cl, m->slot);
			chunk_free(c, m->from, cl->id, m->slot, m->from_handle);
			log_warn("client %s: slot %" PRIu32 " switched to handle %" PRIu64
				 " on poold %s, which no longer holds it; the slot is marked lost",
				 cl->id, m->slot, m->to_handle, m->to->addr);
		}
		move_fail(c, m, "the target chunk is gone");
		return;
	}
	ret = registry_slot_switch(cl, x, &old);
	move_switched(c, m, cl, x, ret, &old, copied);
}

/* The client stays on the source: the target is freed. */
static void move_abort(struct coord *c, struct move *m, const char *reason)
{
	struct client *cl = registry_client_find(c->reg, m->client_id);
	struct copy *x = cl ? registry_extra_find(cl, m->slot, m->to_handle) : NULL;

	if (x) {
		chunk_free(c, x->poold, cl->id, m->slot, x->handle);
		registry_extra_del(cl, x);
	}
	move_end(c, m, false, reason);
}

/* cl's move past the queue, if it is m's slot and target. */
static struct move *client_move(struct client *cl, uint32_t slot, uint64_t to_handle)
{
	struct move *m = cl->move;

	return m && m->slot == slot && m->to_handle == to_handle &&
	       (m->step == MOVE_COPYING || m->step == MOVE_WAITING) ? m : NULL;
}

static void handle_move_done(struct coord *c, struct peer *p, uint64_t seq,
			     const Rswap__MoveDone *d)
{
	char text[256];
	struct move *m;

	if (!p->client) {
		violation(c, p, seq, EPROTO,
			  "MoveDone on a connection that owns no client id; send ClientHello first");
		return;
	}
	if (d->slot >= p->client->nslots) {
		violation(c, p, seq, EINVAL, "MoveDone for slot %" PRIu32 " of a %" PRIu32
			  "-slot map", d->slot, p->client->nslots);
		return;
	}
	m = client_move(p->client, d->slot, d->to_handle);
	if (!m || m->step != MOVE_COPYING) {
		log_info("client %s: stale MoveDone for slot %" PRIu32 " handle %" PRIu64
			 " (no such move in progress); ignored", p->client->id,
			 d->slot, d->to_handle);
		return;
	}
	if (d->switched) {
		move_commit(c, m, d->copied);
	} else {
		char reason[320];

		snprintf(reason, sizeof(reason), "the client did not switch: %s (%s)",
			 printable(d->reason, text, sizeof(text)),
			 strerror(d->code > 0 ? d->code : EIO));
		move_abort(c, m, reason);
	}
	moves_pump(c);
}

/* cl's session ended: a copy in progress waits for its reconnect. */
static void moves_session_ended(struct client *cl)
{
	struct move *m = cl->move;

	if (!m || m->step != MOVE_COPYING)
		return;
	m->step = MOVE_WAITING;
	log_warn("client %s: session ended while copying slot %" PRIu32
		 " to poold %s; both copies kept until it says hello again",
		 cl->id, m->slot, m->to->addr);
}

/* Forget every move of cl (released): its copies are freed by the caller. */
static void moves_cancel_client(struct coord *c, struct client *cl,
				const char *reason)
{
	struct move *m, *next;

	for (m = c->moves; m; m = next) {
		next = m->next;
		if (!strcmp(m->client_id, cl->id))
			move_end(c, m, false, reason);
	}
}

/* Free every extra copy of cl (release, fresh hello): nobody runs on them. */
static void free_extra_copies(struct coord *c, struct client *cl, bool moves_too)
{
	uint32_t i = cl->nextra;

	while (i--) {
		struct copy *x = &cl->extra[i];

		if ((x->move || x->replica) && !moves_too)
			continue;
		if (!x->lost && !x->reserved) {
			log_info("client %s: freeing copy %" PRIu64 " of slot %" PRIu32
				 " on poold %s", cl->id, x->handle, x->slot, x->poold->addr);
			chunk_free(c, x->poold, cl->id, x->slot, x->handle);
		}
		registry_extra_del(cl, x);
	}
}

/*
 * A restarted coordinator finds a client copying slot x->slot to x: it
 * becomes a move again (not in any job).  False if it cannot.
 */
static bool move_adopt(struct coord *c, struct client *cl, struct copy *x,
		       uint64_t copied)
{
	struct slot *s = registry_slot(cl, x->slot);
	struct move *m;

	if (cl->move || !s || s->state != SLOT_HELD || s->lost || c->nmoves >= MOVES_MAX)
		return false;
	m = calloc(1, sizeof(*m));
	if (!m)
		return false;
	snprintf(m->client_id, sizeof(m->client_id), "%s", cl->id);
	m->slot = x->slot;
	m->step = MOVE_COPYING;
	m->from = s->poold;
	m->from_handle = s->handle;
	m->to = x->poold;
	m->to_handle = x->handle;
	m->epoch = cl->epoch + 1;
	m->copied = copied;
	m->started_ms = c->now_ms;
	x->move = true;
	s->moving = true;
	cl->move = m;
	*c->moves_tail = m;
	c->moves_tail = &m->next;
	c->nmoves++;
	c->nactive++;
	log_info("client %s: still copying slot %" PRIu32 " to poold %s (handle %" PRIu64
		 "); the move goes on", cl->id, x->slot, x->poold->addr, x->handle);
	return true;
}

/* Validate the reconnect report of a ClientHello against cl.  0 or -EINVAL. */
static int check_client_report(const struct client *cl, size_t nhandles,
			       const Rswap__MoveState *mv, const uint32_t *lost,
			       size_t nlost, char *why, size_t whylen)
{
	size_t i;

	if (nhandles && nhandles != cl->nslots) {
		snprintf(why, whylen, "client %s reports %zu handles for a %" PRIu32
			 "-slot map", cl->id, nhandles, cl->nslots);
		return -EINVAL;
	}
	if (mv && mv->slot >= cl->nslots) {
		snprintf(why, whylen, "client %s reports moving slot %" PRIu32
			 " of a %" PRIu32 "-slot map", cl->id, mv->slot, cl->nslots);
		return -EINVAL;
	}
	if (nlost > LOST_SLOTS_MAX) {
		snprintf(why, whylen, "client %s reports %zu lost slots; at most %d",
			 cl->id, nlost, LOST_SLOTS_MAX);
		return -EINVAL;
	}
	for (i = 0; i < nlost; i++) {
		if (lost[i] >= cl->nslots) {
			snprintf(why, whylen, "client %s reports slot %" PRIu32
				 " lost in a %" PRIu32 "-slot map", cl->id, lost[i],
				 cl->nslots);
			return -EINVAL;
		}
	}
	return 0;
}

/* The copies part of a hello (or, ncopy 0, a heartbeat).  0 or -EINVAL. */
static int check_copy_report(const struct client *cl, uint32_t replicas,
			     size_t ncopy, size_t nstale, char *why, size_t whylen)
{
	if (ncopy && (replicas < 2 || ncopy != (size_t)cl->nslots * replicas)) {
		snprintf(why, whylen, "client %s reports %zu copy handles for %" PRIu32
			 " slots of %" PRIu32 " cop%s", cl->id, ncopy, cl->nslots,
			 replicas, replicas == 1 ? "y" : "ies");
		return -EINVAL;
	}
	if (nstale > STALE_HANDLES_MAX) {
		snprintf(why, whylen, "client %s reports %zu stale copies; at most %d",
			 cl->id, nstale, STALE_HANDLES_MAX);
		return -EINVAL;
	}
	return 0;
}

/*
 * The client found these slots lost: every copy of each (a replicated
 * client reports a slot only when no copy is left).
 */
static void mark_lost(struct client *cl, const uint32_t *lost, size_t n)
{
	struct slot *s;
	size_t i;
	uint32_t k;

	for (i = 0; i < n; i++) {
		s = registry_slot(cl, lost[i]);
		if (!s || s->state != SLOT_HELD || s->lost)
			continue;
		log_warn("client %s: reports slot %" PRIu32 " (poold %s, handle %" PRIu64
			 ") lost", cl->id, lost[i], s->poold->addr, s->handle);
		registry_slot_set_lost(cl, lost[i]);
		for (k = 0; cl->replicas > 1 && k < cl->nextra; k++)
			if (cl->extra[k].replica && cl->extra[k].slot == lost[i] &&
			    !cl->extra[k].reserved)
				registry_copy_set_lost(&cl->extra[k]);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* One copy's stale mark from the client's latest list (sorted). */
static void copy_stale_update(struct coord *c, const struct client *cl,
			      uint32_t slot, const struct poold *pd, uint64_t handle,
			      uint64_t *since, const uint64_t *sorted, size_t n)
{
	bool listed = n && bsearch(&handle, sorted, n, sizeof(*sorted), cmp_u64);

	if (listed && !*since) {
		*since = c->now_ms ? c->now_ms : 1;
		log_warn("client %s: copy of slot %" PRIu32 " on poold %s (handle %" PRIu64
			 ") is stale", cl->id, slot, pd->addr, handle);
	} else if (!listed && *since) {
		*since = 0;
		log_info("client %s: copy of slot %" PRIu32 " on poold %s (handle %" PRIu64
			 ") is in sync again", cl->id, slot, pd->addr, handle);
	}
}

/*
 * The client's stale copies (hello, heartbeat): the listed ones are
 * stale from now on (their first report), every other one is in sync
 * again (the client resynced it).  Replicated clients only.
 */
static void mark_stale(struct coord *c, struct client *cl, const uint64_t *stale,
		       size_t n)
{
	uint64_t *sorted = NULL;
	uint32_t b;

	if (cl->replicas < 2)
		return;
	if (n) {
		sorted = malloc(n * sizeof(*sorted));
		if (!sorted) {
			log_err("out of memory: client %s's stale copies not recorded", cl->id);
			return;
		}
		memcpy(sorted, stale, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), cmp_u64);
	}
	for (b = 0; b < cl->cap; b++) {
		struct slot *s = &cl->slots[b];

		if (s->state == SLOT_HELD && !s->lost)
			copy_stale_update(c, cl, s->index, s->poold, s->handle,
					  &s->stale_since_ms, sorted, n);
	}
	for (b = 0; b < cl->nextra; b++) {
		struct copy *x = &cl->extra[b];

		if (x->replica && !x->lost && !x->reserved)
			copy_stale_update(c, cl, x->slot, x->poold, x->handle,
					  &x->stale_since_ms, sorted, n);
	}
	free(sorted);
}

/* Does the hello say the client runs slot on handle? */
static bool runs_on(const struct client *cl, const Rswap__ClientHello *h,
		    uint32_t slot, uint64_t handle)
{
	size_t j, r = cl->replicas;

	if (h->n_handles && h->handles[slot] == handle)
		return true;
	for (j = 0; h->n_copy_handles && handle && j < r; j++)
		if (h->copy_handles[slot * r + j] == handle)
			return true;
	return false;
}

/* Has slot a copy (itself or a replica) on pd, other than `but`? */
static bool slot_has_copy_on(const struct client *cl, uint32_t slot,
			     const struct poold *pd, const struct copy *but)
{
	const struct slot *s = registry_slot(cl, slot);
	uint32_t i;

	if (s && s->state != SLOT_EMPTY && s->poold == pd)
		return true;
	for (i = 0; i < cl->nextra; i++)
		if (&cl->extra[i] != but && cl->extra[i].slot == slot &&
		    cl->extra[i].replica && cl->extra[i].poold == pd)
			return true;
	return false;
}

static uint32_t slot_ncopies(const struct client *cl, uint32_t slot)
{
	uint32_t i, n = 1;

	for (i = 0; i < cl->nextra; i++)
		n += cl->extra[i].slot == slot && cl->extra[i].replica;
	return n;
}

static bool is_moving(const Rswap__MoveState *mv, uint32_t slot, uint64_t handle)
{
	return mv && mv->slot == slot && mv->to_handle == handle;
}

/*
 * A replica the reconnect hello does not list (copy_handles) is no copy
 * of the client's: freed (a lost one is only forgotten, its handle may
 * be handed out again).
 */
static void reconcile_replica(struct coord *c, struct client *cl,
			      const Rswap__ClientHello *h, struct copy *x)
{
	if (!h->n_copy_handles || x->reserved || runs_on(cl, h, x->slot, x->handle))
		return;
	log_info("client %s: does not run slot %" PRIu32 " on its copy on poold %s handle %"
		 PRIu64 "; %s", cl->id, x->slot, x->poold->addr, x->handle,
		 x->lost ? "forgotten (lost)" : "freed");
	if (!x->lost)
		chunk_free(c, x->poold, cl->id, x->slot, x->handle);
	registry_extra_del(cl, x);
}

/*
 * A reconnecting client says what it runs on (validated): its handles
 * (and a replicated client's copy_handles) decide every move that
 * waited for it and every unresolved copy.
 */
static void client_reconcile(struct coord *c, struct client *cl,
			     const Rswap__ClientHello *h)
{
	const Rswap__MoveState *mv = h->moving;
	struct move *m = cl->move;
	struct copy old;
	uint32_t i;

	mark_lost(cl, h->lost_slots, h->n_lost_slots);
	if (h->epoch > cl->epoch)
		cl->epoch = h->epoch;
	if (m && (m->step == MOVE_COPYING || m->step == MOVE_WAITING)) {
		if (runs_on(cl, h, m->slot, m->to_handle)) {
			move_commit(c, m, mv ? mv->copied : 0);
		} else if (is_moving(mv, m->slot, m->to_handle)) {
			m->step = MOVE_COPYING;
			m->copied = mv->copied;
			log_info("client %s: back, still copying slot %" PRIu32,
				 cl->id, m->slot);
		} else if (h->n_handles) {
			move_abort(c, m, "the client came back on the source copy");
		} else {
			log_warn("client %s: reconnect hello without handles; move of slot %"
				 PRIu32 " keeps waiting", cl->id, m->slot);
		}
	}
	if (!h->n_handles)
		return;
	/*
	 * First the copies it runs on become the map, then the others are
	 * judged against that map.  Downwards: a copy that leaves the array
	 * is replaced by a later one, already seen.
	 */
	for (i = cl->nextra; i--; ) {
		struct copy *x = &cl->extra[i];
		struct poold *xp = x->poold;
		uint32_t slot = x->slot;

		if (x->move || x->replica || h->handles[slot] != x->handle)
			continue;
		if (registry_slot_switch(cl, x, &old)) {
			log_err("client %s: cannot switch slot %" PRIu32
				" to the copy it runs on; kept unresolved", cl->id, slot);
			continue;
		}
		log_info("client %s: runs slot %" PRIu32 " on poold %s handle %" PRIu64
			 "; mapped", cl->id, slot, xp->addr, h->handles[slot]);
		if (!old.poold)
			continue;
		/* The former mapped copy: judged below with the others. */
		if (registry_extra_add(cl, old.poold, old.slot, old.handle, old.born_ms,
				       false))
			log_err("client %s: out of memory; slot %" PRIu32 " copy %" PRIu64
				" on poold %s is forgotten, not freed", cl->id, old.slot,
				old.handle, old.poold->addr);
	}
	for (i = cl->nextra; i--; ) {
		struct copy *x = &cl->extra[i];
		struct slot *s = registry_slot(cl, x->slot);
		uint64_t want = h->handles[x->slot];

		if (x->move)
			continue;
		if (x->replica) {
			reconcile_replica(c, cl, h, x);
			continue;
		}
		if (h->n_copy_handles && s && s->state == SLOT_HELD &&
		    runs_on(cl, h, x->slot, x->handle) &&
		    slot_ncopies(cl, x->slot) < cl->replicas &&
		    !slot_has_copy_on(cl, x->slot, x->poold, x)) {
			x->replica = true;
			log_info("client %s: runs slot %" PRIu32 " on poold %s handle %" PRIu64
				 " too; a copy of the map again", cl->id, x->slot,
				 x->poold->addr, x->handle);
			continue;
		}
		if (!s || s->state != SLOT_HELD ||
		    (s->handle != want && !runs_on(cl, h, x->slot, s->handle))) {
			log_warn("client %s: runs slot %" PRIu32 " on handle %" PRIu64
				 ", which no copy has; its copies stay unresolved",
				 cl->id, x->slot, want);
		} else if (is_moving(mv, x->slot, x->handle)) {
			if (!move_adopt(c, cl, x, mv->copied))
				log_warn("client %s: copies slot %" PRIu32
					 " but another move is on; the copy stays unresolved",
					 cl->id, x->slot);
		} else {
			log_info("client %s: does not run slot %" PRIu32 " on poold %s handle %"
				 PRIu64 "; freed", cl->id, x->slot, x->poold->addr, x->handle);
			chunk_free(c, x->poold, cl->id, x->slot, x->handle);
			registry_extra_del(cl, x);
		}
	}
}

/*
 * A fresh hello (not a reconnect) for a known id from a new session: a
 * newly loaded client has no old data, so the copies nobody may run on
 * are freed; the mapped ones stay its map.
 */
static void client_fresh(struct coord *c, struct client *cl,
			 const Rswap__ClientHello *h)
{
	struct move *m = cl->move;

	mark_lost(cl, h->lost_slots, h->n_lost_slots);
	if (m && (m->step == MOVE_COPYING || m->step == MOVE_WAITING))
		move_abort(c, m, "the client said hello afresh (it has no old data)");
	free_extra_copies(c, cl, false);
}

/* ---- client operations ------------------------------------------------- */

static struct op *op_new(struct coord *c, enum op_kind kind, struct peer *cp,
			 uint64_t seq, struct client *cl)
{
	struct op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->npreqs = cl->nslots * (kind == OP_HELLO && cl->replicas > 1 ? cl->replicas : 1);
	op->preqs = calloc(op->npreqs, sizeof(*op->preqs));
	if (!op->preqs) {
		free(op);
		return NULL;
	}
	op->next = c->inflight;
	if (c->inflight)
		c->inflight->pprev = &op->next;
	c->inflight = op;
	op->pprev = &c->inflight;
	op->kind = kind;
	op->client_peer = cp;
	op->client_seq = seq;
	op->client = cl;
	cl->busy = true;
	cp->op = op;
	return op;
}

static void op_free(struct op *op)
{
	uint32_t i;

	if (op->next)
		op->next->pprev = op->pprev;
	*op->pprev = op->next;
	for (i = 0; i < op->npreqs; i++)
		if (op->preqs[i])
			op->preqs[i]->op = NULL;
	if (op->client_peer)
		op->client_peer->op = NULL;
	free(op->preqs);
	free(op);
}

/* p's connection now owns cl's id: nobody else may use it while p lives. */
static void client_bind(struct peer *p, struct client *cl)
{
	if (cl->owner == p)
		return;
	p->client = cl;
	cl->owner = p;
	cl->owner_name = p->name;
}

/* The id is free again; the client and its chunks stay. */
static void client_unbind(struct client *cl)
{
	struct peer *o = cl->owner;

	if (!o)
		return;
	o->client = NULL;
	cl->owner = NULL;
	cl->owner_name = NULL;
}

/* Forget a client for good: unbound first, so no peer points at it. */
static void client_remove(struct coord *c, struct client *cl)
{
	client_unbind(cl);
	registry_client_remove(c->reg, cl);
}

static void send_chunk_map(struct coord *c, struct peer *p, uint64_t seq,
			   const struct client *cl)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkMap map;

	if (report_chunk_map(c->reg, cl, &map)) {
		refuse(c, p, seq, ENOMEM, "coordinator out of memory");
		return;
	}
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_CHUNK_MAP;
	env.chunk_map = &map;
	peer_send(c, p, &env);
	report_chunk_map_free(&map);
}

/* Undo a hello: every chunk allocated so far goes back, nothing is kept. */
static void hello_fail(struct coord *c, struct op *op, int code,
		       const char *reason)
{
	struct client *cl = op->client;
	uint32_t i;

	/* Outstanding: the late reply is freed when it comes. */
	for (i = 0; i < op->npreqs; i++) {
		if (op->preqs[i]) {
			op->preqs[i]->op = NULL;
			op->preqs[i] = NULL;
		}
	}
	for (i = 0; i < cl->nslots; i++) {
		struct slot *s = registry_slot(cl, i);

		if (s && s->state == SLOT_HELD)
			chunk_free(c, s->poold, cl->id, i, s->handle);
	}
	for (i = 0; i < cl->nextra; i++)
		if (!cl->extra[i].reserved && !cl->extra[i].lost)
			chunk_free(c, cl->extra[i].poold, cl->id, cl->extra[i].slot,
				   cl->extra[i].handle);
	log_warn("client %s: allocation rolled back: %s", cl->id, reason);
	if (op->client_peer)
		send_error(c, op->client_peer, op->client_seq, code, reason);
	op_free(op);
	client_remove(c, cl);
}

static void hello_done(struct coord *c, struct op *op)
{
	struct client *cl = op->client;
	char sz[16];

	cl->busy = false;
	log_info("client %s: %s in %" PRIu32 " chunks allocated", cl->id,
		 rswap_fmt_size(cl->size, sz, sizeof(sz)), cl->nslots);
	if (op->client_peer)
		send_chunk_map(c, op->client_peer, op->client_seq, cl);
	op_free(op);
}

static void release_done(struct coord *c, struct op *op)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ClientReleased rel = RSWAP__CLIENT_RELEASED__INIT;
	struct client *cl = op->client;

	if (op->dropped)
		log_warn("client %s: released; %" PRIu32 " chunk record%s dropped without a confirmed free (poold down or refused); a returning poold frees them",
			 cl->id, op->dropped, op->dropped == 1 ? "" : "s");
	else
		log_info("client %s: released, %" PRIu32 " chunks freed", cl->id,
			 op->freed);
	if (op->client_peer) {
		rel.chunks_freed = op->freed;
		env.seq = op->client_seq;
		env.body_case = RSWAP__ENVELOPE__BODY_CLIENT_RELEASED;
		env.client_released = &rel;
		peer_send(c, op->client_peer, &env);
	}
	registry_released_add(c->reg, cl->id);
	op_free(op);
	client_remove(c, cl);
}

/*
 * A request to a poold will not succeed (refused, timed out, poold gone):
 * a hello rolls back, a release drops that slot's record.
 */
static void preq_failed(struct coord *c, struct preq *q, int code,
			const char *reason)
{
	struct op *op = q->op;
	struct client *cl;

	if (q->move) {
		struct move *m = q->move;

		q->move = NULL;
		m->q = NULL;
		move_fail(c, m, "%s", reason);
		moves_pump(c);
		return;
	}
	if (!op)
		return;
	cl = op->client;
	q->op = NULL;
	op->preqs[q->op_idx] = NULL;
	op->outstanding--;
	if (op->kind == OP_HELLO) {
		hello_fail(c, op, code, reason);
		return;
	}
	log_warn("client %s: dropping slot %" PRIu32 " record: %s", cl->id,
		 q->slot, reason);
	registry_slot_clear(cl, q->slot);
	op->dropped++;
	if (!op->outstanding)
		release_done(c, op);
}

/* Refuse a request for an id bound to another live session. */
static void refuse_in_use(struct coord *c, struct peer *p, uint64_t seq,
			  const struct client *cl)
{
	refuse(c, p, seq, EBUSY,
	       "client id \"%s\" is in use by a live session from %s; give each host a unique client_id",
	       cl->id, cl->owner_name);
}

/* One connection speaks for one client id: false (refused) for another. */
static bool client_id_usable(struct coord *c, struct peer *p, uint64_t seq,
			     const char *what, const char *id)
{
	if (!p->client || !strcmp(p->client->id, id))
		return true;
	refuse(c, p, seq, EPERM,
	       "%s for client %s on the connection of client %s: one connection serves one client id",
	       what, id, p->client->id);
	return false;
}

static void handle_hello(struct coord *c, struct peer *p, uint64_t seq,
			 const Rswap__ClientHello *m)
{
	uint32_t replicas = m->replicas ? m->replicas : 1;
	struct client *cl;
	struct op *op;
	char why[512], a[16], b[16];
	uint32_t i, k;
	int ret;

	if (!registry_valid_client_id(m->client_id)) {
		refuse(c, p, seq, EINVAL,
		       "client id must be 1 to %d printable characters without spaces",
		       RSWAP_ID_MAX);
		return;
	}
	if (!m->size) {
		refuse(c, p, seq, EINVAL, "client %s asks for a pool of 0 bytes",
		       m->client_id);
		return;
	}
	if (replicas > RSWAP_MAX_REPLICAS) {
		refuse(c, p, seq, EINVAL,
		       "client %s asks for replicas=%" PRIu32 "; 1 to %d copies of a chunk are supported",
		       m->client_id, m->replicas, RSWAP_MAX_REPLICAS);
		return;
	}
	if (!client_id_usable(c, p, seq, "ClientHello", m->client_id))
		return;
	cl = registry_client_find(c->reg, m->client_id);
	if (cl) {
		if (cl->owner && cl->owner != p) {
			refuse_in_use(c, p, seq, cl);
		} else if (cl->replicas && cl->replicas != replicas) {
			refuse(c, p, seq, EINVAL,
			       "client %s has a map of %" PRIu32 " cop%s per chunk, the hello asks for replicas=%" PRIu32
			       "; load it with replicas=%" PRIu32 " or release it first",
			       cl->id, cl->replicas, cl->replicas == 1 ? "y" : "ies", replicas,
			       cl->replicas);
		} else if (check_client_report(cl, m->n_handles, m->moving, m->lost_slots,
					       m->n_lost_slots, why, sizeof(why)) ||
			   check_copy_report(cl, replicas, m->n_copy_handles,
					     m->n_stale_handles, why, sizeof(why))) {
			refuse(c, p, seq, EINVAL, "%s", why);
		} else if (cl->busy) {
			refuse(c, p, seq, EBUSY,
			       "client %s has an allocation or release in progress; retry",
			       cl->id);
		} else if (cl->size != m->size) {
			refuse(c, p, seq, EEXIST,
			       "client %s already has a %s pool, not %s; ask for %s or release it first",
			       cl->id, rswap_fmt_size(cl->size, a, sizeof(a)),
			       rswap_fmt_size(m->size, b, sizeof(b)), a);
		} else if (registry_client_missing(c->reg, cl, why, sizeof(why))) {
			refuse(c, p, seq, EAGAIN, "%s", why);
		} else {
			if (cl->owner != p)
				log_info("client %s: session from %s, existing map returned",
					 cl->id, p->name);
			if (!cl->replicas)
				cl->replicas = replicas;	/* adopted: now known */
			if (m->reconnect)
				client_reconcile(c, cl, m);
			else if (cl->owner != p)
				client_fresh(c, cl, m);
			mark_stale(c, cl, m->stale_handles, m->n_stale_handles);
			client_bind(p, cl);
			send_chunk_map(c, p, seq, cl);
			moves_pump(c);
		}
		return;
	}
	if (c->now_ms - c->start_ms < c->s.grace_ms) {
		refuse(c, p, seq, EAGAIN,
		       "coordinator started %" PRIu64 " ms ago and waits %" PRIu32
		       " ms for poolds to report existing chunks before creating client %s; retry",
		       c->now_ms - c->start_ms, c->s.grace_ms, m->client_id);
		return;
	}
	if (m->reconnect) {
		/* Its chunks exist on poolds that have not registered yet:
		 * a new allocation would clash with them when they do. */
		refuse(c, p, seq, EAGAIN,
		       "client %s is not known (yet): the poolds holding its chunks have not registered; retry",
		       m->client_id);
		return;
	}
	if (c->reg->nclients >= c->s.max_clients) {
		refuse(c, p, seq, EUSERS,
		       "client %s refused: the coordinator holds %zu client ids, the most --max-clients allows",
		       m->client_id, c->reg->nclients);
		return;
	}
	ret = placement_reserve(c->reg, m->client_id, m->size, replicas, &cl, why,
				sizeof(why));
	if (ret) {
		refuse(c, p, seq, -ret, "client %s: %s", m->client_id, why);
		return;
	}
	if (report_chunk_map_bound(cl) > RSWAP_MAX_FRAME) {
		client_remove(c, cl);
		refuse(c, p, seq, EMSGSIZE,
		       "client %s: a map of %s in chunks of %s does not fit one frame; use a larger --chunk-size",
		       m->client_id, rswap_fmt_size(m->size, a, sizeof(a)),
		       rswap_fmt_size(c->s.chunk_size, b, sizeof(b)));
		return;
	}
	registry_released_forget(c->reg, cl->id);
	op = op_new(c, OP_HELLO, p, seq, cl);
	if (!op) {
		client_remove(c, cl);
		refuse(c, p, seq, ENOMEM, "coordinator out of memory");
		return;
	}
	/* Owned from now on: a second host with this id is refused even
	 * while the chunks are being allocated. */
	client_bind(p, cl);
	for (i = 0; i < cl->nslots; i++) {
		op->preqs[i] = preq_send(c, registry_slot(cl, i)->poold, PREQ_ALLOC, op,
					 cl->id, i, cl->size, 0);
		if (!op->preqs[i]) {
			hello_fail(c, op, EIO, "could not reach a poold");
			return;
		}
		op->preqs[i]->op_idx = i;
		op->outstanding++;
	}
	/* The replicas' allocations follow the slots' in op->preqs. */
	for (i = 0, k = cl->nslots; i < cl->nextra && k < op->npreqs; i++, k++) {
		struct copy *x = &cl->extra[i];

		op->preqs[k] = preq_send(c, x->poold, PREQ_ALLOC, op, cl->id, x->slot,
					 cl->size, 0);
		if (!op->preqs[k]) {
			hello_fail(c, op, EIO, "could not reach a poold");
			return;
		}
		op->preqs[k]->op_idx = k;
		op->preqs[k]->replica = true;
		op->outstanding++;
	}
}

static void handle_release(struct coord *c, struct peer *p, uint64_t seq,
			   const Rswap__ClientRelease *m)
{
	struct client *cl;
	struct op *op;
	uint32_t i;

	if (!registry_valid_client_id(m->client_id)) {
		refuse(c, p, seq, EINVAL,
		       "client id must be 1 to %d printable characters without spaces",
		       RSWAP_ID_MAX);
		return;
	}
	if (!client_id_usable(c, p, seq, "ClientRelease", m->client_id))
		return;
	cl = registry_client_find(c->reg, m->client_id);
	if (!cl) {
		refuse(c, p, seq, ENOENT, "no client %s is known", m->client_id);
		return;
	}
	if (cl->owner && cl->owner != p) {
		refuse_in_use(c, p, seq, cl);
		return;
	}
	if (cl->busy) {
		refuse(c, p, seq, EBUSY,
		       "client %s has an allocation or release in progress; retry",
		       cl->id);
		return;
	}
	/* Every copy goes: the target of a move as much as its source. */
	moves_cancel_client(c, cl, "the client is released");
	free_extra_copies(c, cl, true);
	op = op_new(c, OP_RELEASE, p, seq, cl);
	if (!op) {
		refuse(c, p, seq, ENOMEM, "coordinator out of memory");
		return;
	}
	client_bind(p, cl);	/* nobody takes the id while it is released */
	for (i = 0; i < cl->nslots; i++) {
		struct slot *s = registry_slot(cl, i);

		if (!s || s->state != SLOT_HELD)
			continue;
		if (s->lost) {
			/* Its poold may hand the handle out again: never freed. */
			registry_slot_clear(cl, i);
			continue;
		}
		if (poold_reachable(s->poold)) {
			op->preqs[i] = preq_send(c, s->poold, PREQ_FREE, op,
						 cl->id, i, 0, s->handle);
			if (op->preqs[i]) {
				op->preqs[i]->op_idx = i;
				op->outstanding++;
				continue;
			}
		}
		log_warn("client %s: slot %" PRIu32 " is on poold %s, which is down; dropping the record",
			 cl->id, i, s->poold->addr);
		chunk_free(c, s->poold, cl->id, i, s->handle);
		registry_slot_clear(cl, i);
		op->dropped++;
	}
	if (!op->outstanding)
		release_done(c, op);
}

/* ---- admin ------------------------------------------------------------- */

/* What moves_report() allocates. */
struct moves_alloc {
	Rswap__MoveInfo *info;
	Rswap__MoveJob *jobs;
};

static int cmp_pinfo_addr(const void *key, const void *elem)
{
	return strcmp(key, (*(Rswap__PooldInfo *const *)elem)->listen_addr);
}

static Rswap__PooldInfo *pinfo_find(Rswap__ClusterState *cs, const char *addr)
{
	Rswap__PooldInfo **hit;

	if (!cs->n_poolds)
		return NULL;
	hit = bsearch(addr, cs->poolds, cs->n_poolds, sizeof(*cs->poolds),
		      cmp_pinfo_addr);
	return hit ? *hit : NULL;
}

/* m as a MoveInfo (pointing into m). */
static void move_info(const struct coord *c, const struct move *m, Rswap__MoveInfo *mi)
{
	rswap__move_info__init(mi);
	mi->client_id = (char *)m->client_id;
	mi->slot = m->slot;
	mi->from_poold = m->from->addr;
	mi->to_poold = m->to->addr;
	mi->state = (Rswap__MoveStep)m->step;
	mi->copied = m->copied;
	mi->chunk_size = c->s.chunk_size;
	mi->running_ms = m->started_ms ? c->now_ms - m->started_ms : 0;
	mi->job = m->job;
	mi->resync = m->resync;
}

/* The moves, jobs and counters, into cs (its poolds sorted by address). */
static int moves_report(struct coord *c, Rswap__ClusterState *cs,
			struct moves_alloc *a)
{
	size_t n = c->nmoves < MOVES_LISTED ? c->nmoves : MOVES_LISTED, i, k;
	Rswap__PooldInfo *pi;
	const struct move *m;

	memset(a, 0, sizeof(*a));
	a->info = calloc(n + 1, sizeof(*a->info));
	cs->moves = calloc(n + 1, sizeof(*cs->moves));
	a->jobs = calloc(MOVE_JOBS, sizeof(*a->jobs));
	cs->jobs = calloc(MOVE_JOBS, sizeof(*cs->jobs));
	if (!a->info || !cs->moves || !a->jobs || !cs->jobs)
		return -ENOMEM;
	cs->moves_total = c->nmoves;
	cs->moves_done = c->moves_done;
	cs->moves_failed = c->moves_failed;
	cs->bytes_moved = c->bytes_moved;
	for (m = c->moves; m; m = m->next) {
		Rswap__MoveInfo *mi;

		pi = pinfo_find(cs, m->from->addr);
		if (pi)
			pi->moves_out++;
		pi = pinfo_find(cs, m->to->addr);
		if (pi)
			pi->moves_in++;
		if (cs->n_moves == n)
			continue;
		mi = &a->info[cs->n_moves];
		move_info(c, m, mi);
		cs->moves[cs->n_moves++] = mi;
	}
	/* Oldest first. */
	for (i = 0; i < MOVE_JOBS; i++) {
		const struct move_job *j = &c->jobs[(c->jobs_head + i) % MOVE_JOBS];
		Rswap__MoveJob *mj;

		if (!j->id)
			continue;
		k = cs->n_jobs;
		mj = &a->jobs[k];
		rswap__move_job__init(mj);
		mj->id = j->id;
		mj->kind = (char *)j->kind;
		mj->poold = (char *)j->poold;
		mj->total = j->total;
		mj->done = j->done;
		mj->failed = j->failed;
		mj->bytes_moved = j->bytes_moved;
		mj->last_error = (char *)j->last_error;
		mj->running_ms = c->now_ms - j->start_ms;
		cs->jobs[cs->n_jobs++] = mj;
	}
	return 0;
}

static void moves_report_free(Rswap__ClusterState *cs, struct moves_alloc *a)
{
	free(a->info);
	free(a->jobs);
	free(cs->moves);
	free(cs->jobs);
	cs->moves = NULL;
	cs->jobs = NULL;
	cs->n_moves = cs->n_jobs = 0;
}

/* The ClusterState; job: the MoveJob this request queued, or 0. */
static void send_cluster_state(struct coord *c, struct peer *p, uint64_t seq,
			       uint64_t job)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ClusterState *cs;
	struct moves_alloc ma;

	if (report_cluster_state(c->reg, c->now_ms, &cs)) {
		refuse(c, p, seq, ENOMEM, "coordinator out of memory");
		return;
	}
	if (moves_report(c, cs, &ma)) {
		moves_report_free(cs, &ma);
		report_cluster_state_free(cs);
		refuse(c, p, seq, ENOMEM, "coordinator out of memory");
		return;
	}
	cs->job = job;
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_CLUSTER_STATE;
	env.cluster_state = cs;
	if (rswap__envelope__get_packed_size(&env) > RSWAP_MAX_FRAME)
		refuse(c, p, seq, EMSGSIZE,
		       "cluster state is larger than one frame; ask for clients one at a time with status");
	else
		peer_send(c, p, &env);
	moves_report_free(cs, &ma);
	report_cluster_state_free(cs);
}

static void handle_admin_list(struct coord *c, struct peer *p, uint64_t seq)
{
	send_cluster_state(c, p, seq, 0);
}

static void handle_admin_status(struct coord *c, struct peer *p, uint64_t seq,
				const Rswap__AdminStatus *m)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ClientInfo info = RSWAP__CLIENT_INFO__INIT;
	Rswap__MoveInfo *mi = NULL;
	const struct move *mv;
	Rswap__ChunkMap map;
	struct client *cl;
	size_t n = 0;

	if (!registry_valid_client_id(m->client_id)) {
		refuse(c, p, seq, EINVAL,
		       "client id must be 1 to %d printable characters without spaces",
		       RSWAP_ID_MAX);
		return;
	}
	cl = registry_client_find(c->reg, m->client_id);
	if (!cl) {
		refuse(c, p, seq, ENOENT, "no client %s is known", m->client_id);
		return;
	}
	if (report_client_info(c->reg, cl, &info, &map)) {
		refuse(c, p, seq, ENOMEM, "coordinator out of memory");
		return;
	}
	for (mv = c->moves; mv && n < MOVES_LISTED; mv = mv->next)
		n += !strcmp(mv->client_id, cl->id);
	if (n) {
		mi = calloc(n, sizeof(*mi));
		info.moves = calloc(n, sizeof(*info.moves));
		if (!mi || !info.moves) {
			refuse(c, p, seq, ENOMEM, "coordinator out of memory");
			goto out;
		}
		for (mv = c->moves; mv && info.n_moves < n; mv = mv->next) {
			if (strcmp(mv->client_id, cl->id))
				continue;
			move_info(c, mv, &mi[info.n_moves]);
			info.moves[info.n_moves] = &mi[info.n_moves];
			info.n_moves++;
		}
	}
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_CLIENT_INFO;
	env.client_info = &info;
	peer_send(c, p, &env);
out:
	free(info.moves);
	info.moves = NULL;
	info.n_moves = 0;
	free(mi);
	report_client_info_free(&info);
}

/*
 * Queue a move of every chunk of pd (lost ones and those already moving
 * aside) to the poolds that take chunks, least used first, as one job in
 * *jp; if they do not fit, nothing is queued and the job failed at once.
 * 0, -E2BIG or -ENOMEM (no job).
 */
/*
 * The candidate (cand[k] counts chunks already promised) with the lowest
 * fill that may take a copy of cl's slot in place of (from, handle): the
 * distinct-poold and zone rules.  ncand if none.
 */
static size_t copy_target(const struct client *cl, uint32_t slot,
			  const struct poold *from, uint64_t handle,
			  const struct place_cand *cand, struct poold *const *cp,
			  size_t ncand)
{
	size_t k, best = ncand;

	for (k = 0; k < ncand; k++) {
		if (cand[k].used >= cand[k].total ||
		    !target_fits(cl, slot, cp[k], from, handle, false))
			continue;
		if (best == ncand ||
		    (uint64_t)cand[k].used * cand[best].total <
		    (uint64_t)cand[best].used * cand[k].total)
			best = k;
	}
	return best;
}

/* Queue (or fail in j) the move of one copy of a replicated client off pd. */
static void drain_copy(struct coord *c, struct client *cl, struct slot *s,
		       struct poold *pd, uint64_t handle, struct place_cand *cand,
		       struct poold *const *cp, size_t ncand, struct move_job *j)
{
	size_t k = copy_target(cl, s->index, pd, handle, cand, cp, ncand);

	if (k < ncand && !copy_move_queue(c, cl, s, pd, handle, cp[k], j, true, false)) {
		cand[k].used++;
		return;
	}
	j->total++;
	j->failed++;
	snprintf(j->last_error, sizeof(j->last_error), "client %s slot %" PRIu32
		 ": %s", cl->id, s->index, k < ncand ? "coordinator out of memory" :
		 "no live poold with room outside the zones of its other copies");
}

/* Every copy of replicated cl on pd. */
static void drain_copies(struct coord *c, struct client *cl, struct poold *pd,
			 struct place_cand *cand, struct poold *const *cp,
			 size_t ncand, struct move_job *j)
{
	uint32_t b;

	for (b = 0; b < cl->cap; b++) {
		struct slot *s = &cl->slots[b];

		if (s->state == SLOT_HELD && !s->lost && !s->moving && s->poold == pd)
			drain_copy(c, cl, s, pd, s->handle, cand, cp, ncand, j);
	}
	for (b = 0; b < cl->nextra; b++) {
		struct copy *x = &cl->extra[b];
		struct slot *s = registry_slot(cl, x->slot);

		if (x->replica && !x->lost && !x->reserved && x->poold == pd && s &&
		    s->state == SLOT_HELD && !s->moving)
			drain_copy(c, cl, s, pd, x->handle, cand, cp, ncand, j);
	}
}

static int drain_queue(struct coord *c, struct poold *pd, struct move_job **jp,
		       char *why, size_t whylen)
{
	struct registry *r = c->reg;
	struct place_cand *cand = NULL;
	struct poold **cp = NULL, *q;
	size_t *out = NULL, ncand = 0, k = 0;
	uint32_t need = 0, b;
	struct move_job *j;
	const struct move *m;
	struct client *cl;
	uint64_t free_total;
	int ret = -ENOMEM;

	/* Replicated clients' copies are placed one by one afterwards. */
	for (cl = r->clients; cl; cl = cl->next)
		for (b = 0; cl->replicas <= 1 && b < cl->cap; b++)
			need += cl->slots[b].state == SLOT_HELD && !cl->slots[b].lost &&
				!cl->slots[b].moving && cl->slots[b].poold == pd;
	cand = calloc(r->npoolds + 1, sizeof(*cand));
	cp = calloc(r->npoolds + 1, sizeof(*cp));
	out = calloc(need + 1, sizeof(*out));
	if (!cand || !cp || !out) {
		snprintf(why, whylen, "coordinator out of memory");
		goto out;
	}
	if (c->nmoves + need > MOVES_MAX) {
		snprintf(why, whylen, "%" PRIu32 " moves would pass the limit of %d queued",
			 need, MOVES_MAX);
		ret = -E2BIG;
		goto out;
	}
	for (q = r->poolds; q; q = q->next) {
		if (q == pd || !registry_poold_placeable(q))
			continue;
		cp[ncand] = q;
		cand[ncand++] = (struct place_cand){ q->addr, q->chunks_total, q->chunks_used };
	}
	/* Chunks already on their way there count as used. */
	for (m = c->moves; m; m = m->next)
		for (k = 0; m->step <= MOVE_ALLOCATING && k < ncand; k++)
			if (cp[k] == m->to && cand[k].used < cand[k].total)
				cand[k].used++;
	j = job_new(c, "drain", pd->addr);
	*jp = j;
	if (need && placement_spread(cand, ncand, need, out, &free_total)) {
		/* Still draining: a job that failed at once says why. */
		j->total = j->failed = need;
		snprintf(j->last_error, sizeof(j->last_error),
			 "its %" PRIu32 " chunk%s need a place, the other live poolds have room for %"
			 PRIu64 "; add or undrain a poold and drain again", need,
			 need == 1 ? "" : "s", free_total);
		log_warn("poold %s: nothing moved: %s", pd->addr, j->last_error);
		ret = 0;
		goto out;
	}
	k = 0;
	for (cl = r->clients; cl; cl = cl->next) {
		if (cl->replicas > 1) {
			drain_copies(c, cl, pd, cand, cp, ncand, j);
			continue;
		}
		for (b = 0; b < cl->cap && k < need; b++) {
			struct slot *s = &cl->slots[b];

			if (s->state != SLOT_HELD || s->lost || s->moving || s->poold != pd)
				continue;
			if (move_queue(c, cl, s, cp[out[k++]], j)) {
				snprintf(j->last_error, sizeof(j->last_error),
					 "coordinator out of memory: only %" PRIu32 " of %" PRIu32
					 " moves queued", j->total, need);
				break;
			}
		}
	}
	ret = 0;
out:
	free(out);
	free(cp);
	free(cand);
	return ret;
}

static void handle_admin_drain(struct coord *c, struct peer *p, uint64_t seq,
			       const Rswap__AdminDrain *m)
{
	char buf[RSWAP_ADDR_MAX + 1], why[256];
	struct move_job *job;
	struct poold *pd;
	int ret;

	if (!registry_valid_addr(m->poold_addr)) {
		refuse(c, p, seq, EINVAL, "poold address \"%s\" is not HOST:PORT",
		       printable(m->poold_addr, buf, sizeof(buf)));
		return;
	}
	pd = registry_poold_find(c->reg, m->poold_addr);
	if (!pd) {
		refuse(c, p, seq, ENOENT,
		       "no poold %s is registered (rswap-admin list shows them)",
		       m->poold_addr);
		return;
	}
	if (pd->draining != !m->undrain)
		log_info("poold %s: %s at the request of %s; it holds %" PRIu32 " chunk%s",
			 pd->addr, m->undrain ? "undrained, takes new chunks again" :
			 "draining, gets no new chunks", p->name, pd->chunks_used,
			 pd->chunks_used == 1 ? "" : "s");
	pd->draining = !m->undrain;
	if (m->undrain) {
		send_cluster_state(c, p, seq, 0);
		return;
	}
	ret = drain_queue(c, pd, &job, why, sizeof(why));
	if (ret) {
		refuse(c, p, seq, -ret, "poold %s is draining (no new chunks), but no move was queued: %s",
		       pd->addr, why);
		return;
	}
	if (!job->failed)
		log_info("poold %s: %" PRIu32 " move%s queued (job %" PRIu64 ")", pd->addr,
			 job->total, job->total == 1 ? "" : "s", job->id);
	moves_pump(c);
	send_cluster_state(c, p, seq, job->id);
}

static int poold_by_addr(const void *a, const void *b)
{
	return strcmp((*(struct poold *const *)a)->addr,
		      (*(struct poold *const *)b)->addr);
}

/* Index of the poold named addr in the array sorted by address, or n. */
static size_t poold_index(struct poold *const *by_addr, size_t n,
			  const struct poold *pd)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(by_addr[mid]->addr, pd->addr);

		if (!cmp)
			return mid;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return n;
}

static int move_by_source(const void *a, const void *b)
{
	const struct rebal_move *x = a, *y = b;

	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	return x != y ? (x < y ? -1 : 1) : 0;
}

#define REBALANCE_PLAN_MAX	4096	/* moves listed in one reply */

/*
 * The plan, as chunks: each move names a held chunk of its source poold.
 * Cost: O(poolds + slots * log(poolds) + moves * log(moves)).
 */
/*
 * Rebalance: give the copy (slot, on poold pd as handle) of cl the next
 * planned move out of pd, if any is left and its target fits the slot
 * (a replicated slot's copies stay apart); a slot is named once in the
 * plan.  plan's moves of cl start at cl_first.  The planned moves out of
 * poold i are mv[first[i]] .. mv[first[i + 1] - 1]; cur[i] is the next
 * one not given yet.
 */
static void plan_copy(Rswap__RebalancePlan *plan, Rswap__ChunkMove *moves,
		      const struct client *cl, size_t cl_first, uint32_t slot,
		      struct poold *pd, uint64_t handle, struct poold **by_addr,
		      size_t n, const struct rebal_move *mv, const size_t *first,
		      size_t *cur)
{
	size_t from = poold_index(by_addr, n, pd), k;
	Rswap__ChunkMove *out;

	/* What is not given a chunk stays in place. */
	if (from == n || cur[from] == first[from + 1])
		return;
	if (cl->replicas > 1 &&
	    !target_fits(cl, slot, by_addr[mv[cur[from]].to], pd, handle, false))
		return;
	for (k = cl_first; k < plan->n_moves; k++)
		if (plan->moves[k]->slot == slot)
			return;
	k = cur[from]++;
	out = &moves[plan->n_moves];
	rswap__chunk_move__init(out);
	out->client_id = (char *)cl->id;
	out->slot = slot;
	out->from_poold = by_addr[from]->addr;
	out->to_poold = by_addr[mv[k].to]->addr;
	plan->moves[plan->n_moves++] = out;
}

/*
 * Queue a planned rebalance move of whichever copy sits on from_poold; a
 * replicated client's copy moves as drain moves it (in that copy's
 * place).
 */
static int rebalance_queue(struct coord *c, struct client *cl,
			   const Rswap__ChunkMove *cm, struct move_job *j)
{
	struct registry *r = c->reg;
	struct slot *s = registry_slot(cl, cm->slot);
	struct poold *to = registry_poold_find(r, cm->to_poold);
	uint32_t i;

	if (cl->replicas <= 1)
		return move_queue(c, cl, s, to, j);
	if (!strcmp(s->poold->addr, cm->from_poold))
		return copy_move_queue(c, cl, s, s->poold, s->handle, to, j,
				       true, false);
	for (i = 0; i < cl->nextra; i++) {
		const struct copy *x = &cl->extra[i];

		if (x->slot == cm->slot && x->replica && !x->lost &&
		    !x->reserved && !strcmp(x->poold->addr, cm->from_poold))
			return copy_move_queue(c, cl, s, x->poold, x->handle,
					       to, j, true, false);
	}
	return -ENOENT;
}

static void handle_admin_rebalance(struct coord *c, struct peer *p,
				   uint64_t seq, const Rswap__AdminRebalance *m)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__RebalancePlan plan = RSWAP__REBALANCE_PLAN__INIT;
	struct registry *r = c->reg;
	struct rebal_poold *rp = NULL;
	struct poold **by_addr = NULL, *pd;
	struct rebal_move *mv = NULL;
	size_t *first = NULL, *cur = NULL, nmv = 0, n = 0, i, k;
	Rswap__ChunkMove *moves = NULL;
	char why[256];
	struct client *cl;
	int ret;

	if (!m->dry_run && c->nmoves) {
		refuse(c, p, seq, EBUSY,
		       "%" PRIu32 " moves are queued or running; wait for them (rswap-admin list) and plan again",
		       c->nmoves);
		return;
	}
	rp = calloc(r->npoolds + 1, sizeof(*rp));
	by_addr = calloc(r->npoolds + 1, sizeof(*by_addr));
	first = calloc(r->npoolds + 2, sizeof(*first));
	cur = calloc(r->npoolds + 2, sizeof(*cur));
	if (!rp || !by_addr || !first || !cur)
		goto out_nomem;
	/* The registry keeps no order: sort by address (poold_index). */
	for (pd = r->poolds; pd && n < r->npoolds; pd = pd->next)
		by_addr[n++] = pd;
	qsort(by_addr, n, sizeof(*by_addr), poold_by_addr);
	for (i = 0; i < n; i++) {
		pd = by_addr[i];
		rp[i] = (struct rebal_poold){
			.name = pd->addr,
			.total = pd->chunks_total,
			.used = pd->chunks_used,
			.live = pd->connected && pd->state == POOLD_ALIVE,
			.draining = pd->draining,
		};
		if (!rp[i].live)
			plan.chunks_on_down_poolds += pd->chunks_used;
	}
	ret = placement_rebalance(rp, n, &mv, &nmv, why, sizeof(why));
	if (ret == -ENOMEM)
		goto out_nomem;
	if (ret) {
		refuse(c, p, seq, -ret, "%s", why);
		goto out;
	}
	plan.moves_total = (uint32_t)nmv;
	if (nmv > REBALANCE_PLAN_MAX)
		nmv = REBALANCE_PLAN_MAX;
	moves = calloc(nmv + 1, sizeof(*moves));
	plan.moves = calloc(nmv + 1, sizeof(*plan.moves));
	if (!moves || !plan.moves)
		goto out_nomem;
	/* first[i]..first[i+1]: the listed moves out of poold i. */
	if (nmv)
		qsort(mv, nmv, sizeof(*mv), move_by_source);
	for (k = 0; k < nmv; k++)
		first[mv[k].from + 1]++;
	for (i = 0; i < n; i++)
		first[i + 1] += first[i];
	memcpy(cur, first, (n + 1) * sizeof(*cur));
	for (cl = r->clients; cl; cl = cl->next) {
		size_t cl_first = plan.n_moves;
		uint32_t b;

		/* Every bucket of the client's slot table, in no slot order. */
		for (b = 0; b < cl->cap; b++) {
			const struct slot *sl = &cl->slots[b];

			if (sl->state != SLOT_HELD || sl->lost || sl->moving)
				continue;
			plan_copy(&plan, moves, cl, cl_first, sl->index, sl->poold,
				  sl->handle, by_addr, n, mv, first, cur);
		}
		/* A replicated client's further copies move as well. */
		for (i = 0; cl->replicas > 1 && i < cl->nextra; i++) {
			const struct copy *x = &cl->extra[i];
			const struct slot *sl = registry_slot(cl, x->slot);

			if (!x->replica || x->reserved || x->lost || !sl ||
			    sl->moving)
				continue;
			plan_copy(&plan, moves, cl, cl_first, x->slot, x->poold,
				  x->handle, by_addr, n, mv, first, cur);
		}
	}
	if (!m->dry_run) {
		struct move_job *j = job_new(c, "rebalance", NULL);

		plan.job = j->id;
		/* A chunk is named once: a planned move holds it. */
		for (k = 0; k < plan.n_moves; k++) {
			Rswap__ChunkMove *cm = plan.moves[k];
			struct client *mc = registry_client_find(r, cm->client_id);

			if (rebalance_queue(c, mc, cm, j))
				break;
		}
		log_info("rebalance at the request of %s: %" PRIu32 " move%s queued (job %" PRIu64 ")",
			 p->name, j->total, j->total == 1 ? "" : "s", j->id);
		moves_pump(c);
	}
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_REBALANCE_PLAN;
	env.rebalance_plan = &plan;
	peer_send(c, p, &env);
	goto out;
out_nomem:
	refuse(c, p, seq, ENOMEM, "coordinator out of memory");
out:
	free(plan.moves);
	free(moves);
	free(mv);
	free(first);
	free(cur);
	free(by_addr);
	free(rp);
}

/* ---- poold ------------------------------------------------------------- */

static void handle_register(struct coord *c, struct peer *p, uint64_t seq,
			    const Rswap__PooldRegister *m)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__PooldRegistered reg = RSWAP__POOLD_REGISTERED__INIT;
	struct poold_report rep = {
		.addr = m->listen_addr,
		.capacity = m->capacity,
		.chunk_size = m->chunk_size,
		.nchunks = m->n_chunks,
		.incarnation = m->incarnation,
		.zone = m->zone,
	};
	struct held_chunk *held = NULL;
	struct reg_result res;
	struct poold *pd;
	char why[512], cap[16];
	size_t i;
	int ret;

	if (!registry_poold_find(c->reg, m->listen_addr) &&
	    c->reg->npoolds >= c->s.max_poolds) {
		violation(c, p, seq, EUSERS,
			  "registration refused: the cluster has %zu poolds, the most --max-poolds allows",
			  c->reg->npoolds);
		return;
	}
	if (m->n_chunks) {
		held = calloc(m->n_chunks, sizeof(*held));
		if (!held) {
			violation(c, p, seq, ENOMEM, "coordinator out of memory");
			return;
		}
	}
	for (i = 0; i < m->n_chunks; i++) {
		held[i].handle = m->chunks[i]->handle;
		held[i].client_id = m->chunks[i]->client_id;
		held[i].slot = m->chunks[i]->slot;
		held[i].client_size = m->chunks[i]->client_size;
		held[i].age_ms = m->chunks[i]->age_ms;
	}
	rep.chunks = held;
	ret = registry_poold_register(c->reg, &rep, c->now_ms, &res, why, sizeof(why));
	if (ret) {
		violation(c, p, seq, -ret, "registration refused: %s", why);
		free(held);
		return;
	}
	pd = res.poold;
	p->role = ROLE_POOLD;
	p->poold = pd;
	pd->conn = p;
	pd->logged_state = POOLD_ALIVE;
	log_info("poold %s registered from %s: capacity %s, %" PRIu32
		 " chunks, %zu held, %zu orphaned chunk%s to free",
		 pd->addr, p->name, rswap_fmt_size(pd->capacity, cap, sizeof(cap)),
		 pd->chunks_total, m->n_chunks - res.nto_free, res.nto_free,
		 res.nto_free == 1 ? "" : "s");
	reg.chunk_size = c->s.chunk_size;
	reg.heartbeat_ms = c->s.heartbeat_ms;
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTERED;
	env.poold_registered = &reg;
	if (!peer_send(c, p, &env))
		for (i = 0; i < res.nto_free; i++)
			chunk_free(c, pd, held[res.to_free[i]].client_id,
				   held[res.to_free[i]].slot, held[res.to_free[i]].handle);
	/* Older copies on other poolds: freed there, or when they return. */
	for (i = 0; i < res.ndisplaced; i++)
		chunk_free(c, res.displaced[i].poold, res.displaced[i].client_id,
			   res.displaced[i].slot, res.displaced[i].handle);
	registry_reg_result_free(&res);
	free(held);
	moves_pump(c);
}

static void handle_alloc_done(struct coord *c, struct peer *p, uint64_t seq,
			      const Rswap__ChunkAllocDone *m)
{
	struct preq *q = preq_take(p, seq, PREQ_ALLOC);
	char reason[256];
	struct op *op;

	if (!q) {
		violation(c, p, seq, EPROTO,
			  "ChunkAllocDone for seq %" PRIu64 ", which was never sent as a ChunkAlloc",
			  seq);
		return;
	}
	if (registry_handle_in_use(p->poold, m->handle)) {
		/* Never free it: it is someone else's chunk.  The poold is
		 * confused; roll back and drop it. */
		snprintf(reason, sizeof(reason),
			 "ChunkAllocDone for client %s slot %" PRIu32 " names handle %" PRIu64
			 ", which already holds another slot", q->client_id, q->slot, m->handle);
		preq_failed(c, q, EIO, reason);
		free(q);
		violation(c, p, seq, EPROTO, "%s", reason);
		return;
	}
	if (q->move) {
		move_alloc_done(c, q->move, m->handle);
		free(q);
		return;
	}
	op = q->op;
	if (!op) {
		log_info("poold %s: late ChunkAllocDone for client %s slot %" PRIu32
			 " (handle %" PRIu64 "); freeing it", p->poold->addr,
			 q->client_id, q->slot, m->handle);
		chunk_free(c, p->poold, q->client_id, q->slot, m->handle);
		free(q);
		return;
	}
	op->preqs[q->op_idx] = NULL;
	if (q->replica) {
		struct copy *x = registry_replica_reserved(op->client, q->slot, p->poold);

		if (x)
			registry_replica_set_handle(op->client, x, m->handle, c->now_ms);
		else
			chunk_free(c, p->poold, q->client_id, q->slot, m->handle);
	} else {
		registry_slot_set_handle(op->client, q->slot, m->handle, c->now_ms);
	}
	free(q);
	if (!--op->outstanding)
		hello_done(c, op);
}

static void handle_free_done(struct coord *c, struct peer *p, uint64_t seq,
			     const Rswap__ChunkFreeDone *m)
{
	struct preq *q = preq_take(p, seq, PREQ_FREE);
	struct op *op;

	if (!q) {
		violation(c, p, seq, EPROTO,
			  "ChunkFreeDone for seq %" PRIu64 ", which was never sent as a ChunkFree",
			  seq);
		return;
	}
	if (m->handle != q->handle)
		log_warn("poold %s: ChunkFreeDone names handle %" PRIu64
			 ", ChunkFree asked for %" PRIu64, p->poold->addr,
			 m->handle, q->handle);
	op = q->op;
	if (op) {
		op->preqs[q->op_idx] = NULL;
		registry_slot_clear(op->client, q->slot);
		op->freed++;
		if (!--op->outstanding)
			release_done(c, op);
	}
	free(q);
}

static void handle_poold_error(struct coord *c, struct peer *p, uint64_t seq,
			       const Rswap__Error *m)
{
	struct preq *q = preq_take(p, seq, PREQ_ALLOC);
	char reason[512], text[256];

	if (!q)
		q = preq_take(p, seq, PREQ_FREE);
	if (!q) {
		log_warn("poold %s: Error %d for no request of ours (seq %" PRIu64
			 "): %s", p->poold->addr, m->code, seq,
			 printable(m->reason, text, sizeof(text)));
		return;
	}
	snprintf(reason, sizeof(reason), "poold %s refused %s for client %s slot %"
		 PRIu32 ": %s (%s)", p->poold->addr,
		 q->kind == PREQ_ALLOC ? "ChunkAlloc" : "ChunkFree", q->client_id,
		 q->slot, printable(m->reason, text, sizeof(text)),
		 strerror(m->code > 0 ? m->code : EIO));
	if (!q->op)
		log_warn("%s", reason);
	preq_failed(c, q, m->code > 0 ? m->code : EIO, reason);
	free(q);
}

/* ---- authentication ----------------------------------------------------- */

uint64_t coord_auth_failures(const struct coord *c)
{
	return c->auth_failures;
}

static const char *auth_role_name(enum rswap_auth_role r)
{
	switch (r) {
	case RSWAP_AUTH_ROLE_POOLD: return "poold";
	case RSWAP_AUTH_ROLE_CLIENT: return "client";
	case RSWAP_AUTH_ROLE_ADMIN: return "admin";
	default: return "peer";
	}
}

/* A failed handshake: counted, logged once, Error and close. */
static void auth_fail(struct coord *c, struct peer *p, uint64_t seq,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void auth_fail(struct coord *c, struct peer *p, uint64_t seq,
		      const char *fmt, ...)
{
	char reason[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	c->auth_failures++;
	/* violation() logs it, with the connection's address. */
	if (p->auth_id[0])
		violation(c, p, seq, EACCES, "%s %s: %s", auth_role_name(p->auth_role),
			  p->auth_id, reason);
	else
		violation(c, p, seq, EACCES, "%s", reason);
}

/* Is id acceptable for role?  Checked before it goes into a MAC or a log. */
static bool auth_id_valid(enum rswap_auth_role role, const char *id)
{
	size_t n;

	switch (role) {
	case RSWAP_AUTH_ROLE_POOLD:
		return registry_valid_addr(id);
	case RSWAP_AUTH_ROLE_CLIENT:
		return registry_valid_client_id(id);
	case RSWAP_AUTH_ROLE_ADMIN:
		for (n = 0; id[n]; n++)
			if (n >= 64 || !isgraph((unsigned char)id[n]))
				return false;
		return n > 0;
	default:
		return false;
	}
}

static void handle_auth_hello(struct coord *c, struct peer *p, uint64_t seq,
			      const Rswap__AuthHello *m)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__AuthChallenge ch = RSWAP__AUTH_CHALLENGE__INIT;
	uint8_t mac[RSWAP_MAC_LEN];
	char buf[80];

	if (p->role != ROLE_NEW || p->auth != AUTH_NONE) {
		violation(c, p, seq, EPROTO, "AuthHello after the handshake began");
		return;
	}
	p->auth_role = (enum rswap_auth_role)m->role;
	if (!auth_id_valid(p->auth_role, m->id)) {
		violation(c, p, seq, EINVAL,
			  "AuthHello: role %d with id \"%s\" (a poold names its listen address, a client its id)",
			  (int)m->role, printable(m->id, buf, sizeof(buf)));
		return;
	}
	snprintf(p->auth_id, sizeof(p->auth_id), "%s", m->id);
	if (m->nonce.len != RSWAP_NONCE_LEN) {
		violation(c, p, seq, EINVAL, "AuthHello nonce of %zu bytes, want %d",
			  m->nonce.len, RSWAP_NONCE_LEN);
		return;
	}
	memcpy(p->nonce_peer, m->nonce.data, RSWAP_NONCE_LEN);
	if (rswap_auth_nonce(p->nonce_ours, RSWAP_NONCE_LEN)) {
		refuse(c, p, seq, EAGAIN, "coordinator has no random bytes; retry");
		return;
	}
	ch.nonce.data = p->nonce_ours;
	ch.nonce.len = RSWAP_NONCE_LEN;
	if (c->s.have_key) {
		if (rswap_auth_mac(c->s.key, RSWAP_AUTH_LABEL_R, p->auth_role,
				   p->auth_id, strlen(p->auth_id), p->nonce_peer,
				   p->nonce_ours, mac)) {
			refuse(c, p, seq, EIO, "coordinator cannot compute a MAC");
			return;
		}
		ch.mac.data = mac;
		ch.mac.len = RSWAP_MAC_LEN;
		p->auth = AUTH_CHALLENGED;
	} else {
		/* Nothing to prove either way: a peer with a key refuses. */
		ch.insecure = true;
		p->auth = AUTH_OK;
	}
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_AUTH_CHALLENGE;
	env.auth_challenge = &ch;
	peer_send(c, p, &env);
}

static void handle_auth_proof(struct coord *c, struct peer *p, uint64_t seq,
			      const Rswap__AuthProof *m)
{
	if (p->auth != AUTH_CHALLENGED) {
		violation(c, p, seq, EPROTO, "AuthProof without an AuthChallenge");
		return;
	}
	/* Fresh nonces both ways: a recorded proof never matches again. */
	if (!rswap_auth_check(c->s.key, RSWAP_AUTH_LABEL_I, p->auth_role, p->auth_id,
			      strlen(p->auth_id), p->nonce_ours, p->nonce_peer,
			      m->mac.data, m->mac.len)) {
		auth_fail(c, p, seq, "authentication failed (wrong cluster key?)");
		return;
	}
	p->auth = AUTH_OK;
	log_debug("%s %s authenticated as %s", auth_role_name(p->auth_role), p->name,
		  p->auth_id);
}

/*
 * May an authenticated peer take this role and speak for this id?  A peer
 * that did no handshake on a coordinator without a key may do anything.
 */
static bool auth_allows(struct coord *c, struct peer *p, uint64_t seq,
			enum rswap_auth_role role, const char *id)
{
	if (p->auth == AUTH_NONE && !c->s.have_key)
		return true;
	if (p->auth_role == role && (!id || !strcmp(id, p->auth_id)))
		return true;
	auth_fail(c, p, seq, "authenticated as %s %s, cannot act as %s%s%s",
		  auth_role_name(p->auth_role), p->auth_id, auth_role_name(role),
		  id ? " " : "", id ? id : "");
	return false;
}

/* ---- input ------------------------------------------------------------- */

static void dispatch_new(struct coord *c, struct peer *p, Rswap__Envelope *e)
{
	switch (e->body_case) {
	case RSWAP__ENVELOPE__BODY_POOLD_REGISTER:
		if (auth_allows(c, p, e->seq, RSWAP_AUTH_ROLE_POOLD,
				e->poold_register->listen_addr))
			handle_register(c, p, e->seq, e->poold_register);
		return;
	case RSWAP__ENVELOPE__BODY_CLIENT_HELLO:
	case RSWAP__ENVELOPE__BODY_CLIENT_RELEASE:
		if (!auth_allows(c, p, e->seq, RSWAP_AUTH_ROLE_CLIENT, NULL))
			return;
		p->role = ROLE_CLIENT;
		break;
	case RSWAP__ENVELOPE__BODY_ADMIN_LIST:
	case RSWAP__ENVELOPE__BODY_ADMIN_STATUS:
	case RSWAP__ENVELOPE__BODY_ADMIN_DRAIN:
	case RSWAP__ENVELOPE__BODY_ADMIN_REBALANCE:
		if (!auth_allows(c, p, e->seq, RSWAP_AUTH_ROLE_ADMIN, NULL))
			return;
		p->role = ROLE_ADMIN;
		break;
	default:
		violation(c, p, e->seq, EPROTO,
			  "first message must be PooldRegister, ClientHello, ClientRelease or an admin request, not %s",
			  body_name(e->body_case));
		return;
	}
	log_debug("%s connected as %s", p->name, role_name(p->role));
}

static void dispatch_poold(struct coord *c, struct peer *p, Rswap__Envelope *e)
{
	switch (e->body_case) {
	case RSWAP__ENVELOPE__BODY_HEARTBEAT:
		registry_poold_heartbeat(p->poold, c->now_ms,
					 e->heartbeat->chunks_held,
					 e->heartbeat->clients_connected);
		return;
	case RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE:
		handle_alloc_done(c, p, e->seq, e->chunk_alloc_done);
		return;
	case RSWAP__ENVELOPE__BODY_CHUNK_FREE_DONE:
		handle_free_done(c, p, e->seq, e->chunk_free_done);
		return;
	case RSWAP__ENVELOPE__BODY_ERROR:
		handle_poold_error(c, p, e->seq, e->error);
		return;
	default:
		violation(c, p, e->seq, EPROTO, "%s is not a poold message here",
			  body_name(e->body_case));
	}
}

static void handle_client_heartbeat(struct coord *c, struct peer *p,
				    uint64_t seq, const Rswap__ClientHeartbeat *m)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ClientHeartbeat hb = RSWAP__CLIENT_HEARTBEAT__INIT;
	struct client *cl = p->client;
	struct move *mv;
	char why[256];

	if (!cl) {
		violation(c, p, seq, EPROTO,
			  "ClientHeartbeat on a connection that owns no client id; send ClientHello first");
		return;
	}
	if (check_client_report(cl, 0, m->moving, m->lost_slots, m->n_lost_slots,
				why, sizeof(why)) ||
	    check_copy_report(cl, cl->replicas, 0, m->n_stale_handles, why, sizeof(why))) {
		violation(c, p, seq, EINVAL, "ClientHeartbeat: %s", why);
		return;
	}
	mark_lost(cl, m->lost_slots, m->n_lost_slots);
	mark_stale(c, cl, m->stale_handles, m->n_stale_handles);
	if (m->epoch > cl->epoch)
		cl->epoch = m->epoch;
	if (m->moving) {
		mv = client_move(cl, m->moving->slot, m->moving->to_handle);
		if (mv && m->moving->copied <= c->s.chunk_size)
			mv->copied = m->moving->copied;
	}
	env.seq = seq;
	env.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT;
	env.client_heartbeat = &hb;
	peer_send(c, p, &env);
}

static void dispatch_client(struct coord *c, struct peer *p, Rswap__Envelope *e)
{
	if (e->body_case == RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT) {
		handle_client_heartbeat(c, p, e->seq, e->client_heartbeat);
		return;
	}
	if (e->body_case == RSWAP__ENVELOPE__BODY_MOVE_DONE) {
		handle_move_done(c, p, e->seq, e->move_done);
		return;
	}
	if (e->body_case != RSWAP__ENVELOPE__BODY_CLIENT_HELLO &&
	    e->body_case != RSWAP__ENVELOPE__BODY_CLIENT_RELEASE) {
		violation(c, p, e->seq, EPROTO, "%s is not a client message",
			  body_name(e->body_case));
		return;
	}
	if (p->op) {
		refuse(c, p, e->seq, EBUSY,
		       "one request at a time: wait for the reply to the previous one");
		return;
	}
	/* An authenticated client speaks only for the id it proved. */
	if (!auth_allows(c, p, e->seq, RSWAP_AUTH_ROLE_CLIENT,
			 e->body_case == RSWAP__ENVELOPE__BODY_CLIENT_HELLO ?
			 e->client_hello->client_id : e->client_release->client_id))
		return;
	if (e->body_case == RSWAP__ENVELOPE__BODY_CLIENT_HELLO)
		handle_hello(c, p, e->seq, e->client_hello);
	else
		handle_release(c, p, e->seq, e->client_release);
}

static void dispatch_admin(struct coord *c, struct peer *p, Rswap__Envelope *e)
{
	if (e->body_case == RSWAP__ENVELOPE__BODY_ADMIN_LIST)
		handle_admin_list(c, p, e->seq);
	else if (e->body_case == RSWAP__ENVELOPE__BODY_ADMIN_STATUS)
		handle_admin_status(c, p, e->seq, e->admin_status);
	else if (e->body_case == RSWAP__ENVELOPE__BODY_ADMIN_DRAIN)
		handle_admin_drain(c, p, e->seq, e->admin_drain);
	else if (e->body_case == RSWAP__ENVELOPE__BODY_ADMIN_REBALANCE)
		handle_admin_rebalance(c, p, e->seq, e->admin_rebalance);
	else
		violation(c, p, e->seq, EPROTO, "%s is not an admin message",
			  body_name(e->body_case));
}

static void dispatch(struct coord *c, struct peer *p, Rswap__Envelope *e)
{
	if (e->body_case == RSWAP__ENVELOPE__BODY_AUTH_HELLO) {
		handle_auth_hello(c, p, e->seq, e->auth_hello);
		return;
	}
	if (e->body_case == RSWAP__ENVELOPE__BODY_AUTH_PROOF) {
		handle_auth_proof(c, p, e->seq, e->auth_proof);
		return;
	}
	if (c->s.have_key && p->auth != AUTH_OK) {
		auth_fail(c, p, e->seq,
			  "%s before authenticating: this coordinator requires the cluster key (--key-file)",
			  body_name(e->body_case));
		return;
	}
	if (p->role == ROLE_NEW) {
		dispatch_new(c, p, e);
		if (p->role == ROLE_POOLD || p->closing)
			return;
	}
	switch (p->role) {
	case ROLE_POOLD:
		if (e->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTER)
			violation(c, p, e->seq, EPROTO,
				  "second PooldRegister on one connection");
		else
			dispatch_poold(c, p, e);
		break;
	case ROLE_CLIENT:
		dispatch_client(c, p, e);
		break;
	case ROLE_ADMIN:
		dispatch_admin(c, p, e);
		break;
	default:
		break;
	}
}

/* Detach a closing or vanished peer from all state. */
static void peer_detach(struct coord *c, struct peer *p, const char *why)
{
	struct preq *q, *reqs;
	char reason[512];

	if (p->auth == AUTH_CHALLENGED && !p->closing) {
		/* It saw our proof and left: it did not find our key valid. */
		c->auth_failures++;
		log_warn("%s %s from %s: authentication failed (it left after our challenge; wrong cluster key?)",
			 auth_role_name(p->auth_role), p->auth_id, p->name);
	}
	if (p->role == ROLE_CLIENT && p->op) {
		p->op->client_peer = NULL;
		p->op = NULL;
	}
	if (p->client) {
		log_info("client %s: session from %s ended (%s); the id is free, its chunks are kept",
			 p->client->id, p->name, why);
		moves_session_ended(p->client);
		client_unbind(p->client);
	}
	if (p->role != ROLE_POOLD || !p->poold)
		return;
	registry_poold_disconnect(c->reg, p->poold);
	p->poold->logged_state = POOLD_DEAD;
	log_warn("poold %s is down (%s); its chunk records are kept", p->poold->addr,
		 why);
	reqs = p->reqs;
	p->reqs = NULL;
	p->reqs_tail = &p->reqs;
	p->nreqs = 0;
	while ((q = reqs)) {
		reqs = q->next;
		/* The poold may hold it (or get it): free it when it returns. */
		registry_tomb_add(p->poold, q->client_id, q->slot,
				  q->kind == PREQ_ALLOC, q->handle);
		snprintf(reason, sizeof(reason), "poold %s went away (%s)",
			 p->poold->addr, why);
		preq_failed(c, q, EIO, reason);
		free(q);
	}
}

static void peer_unlink_free(struct coord *c, struct peer *p)
{
	struct peer **pp;

	for (pp = &c->peers; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	free(p);
}

/* Finish every close requested during this event. */
static void reap(struct coord *c)
{
	struct peer *p;

	while ((p = c->closing)) {
		c->closing = p->close_next;
		peer_detach(c, p, "connection closed by the coordinator");
		c->ops.close_peer(p->glue);
		peer_unlink_free(c, p);
	}
}

struct peer *coord_peer_new(struct coord *c, const char *name,
			    struct evbuffer *out, void *glue)
{
	struct peer *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->out = out;
	p->glue = glue;
	p->reqs_tail = &p->reqs;
	p->last_rx_ms = c->now_ms;
	p->next = c->peers;
	c->peers = p;
	return p;
}

void coord_peer_input(struct coord *c, struct peer *p, struct evbuffer *in,
		      uint64_t now_ms)
{
	set_now(c, now_ms);
	while (!p->closing) {
		size_t avail = evbuffer_get_length(in);
		Rswap__Envelope *env;
		const char *why;
		uint8_t *buf;
		uint32_t len;

		if (avail < RSWAP_FRAME_HDR)
			break;
		buf = evbuffer_pullup(in, RSWAP_FRAME_HDR);
		if (rswap_frame_peek(buf, RSWAP_FRAME_HDR, &len) ==
		    RSWAP_FRAME_BAD_LENGTH) {
			len = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
			      (uint32_t)buf[2] << 8 | buf[3];
			violation(c, p, 0, EMSGSIZE,
				  "frame length %" PRIu32 " is out of range (1 to %u bytes)",
				  len, RSWAP_MAX_FRAME);
			break;
		}
		if (avail - RSWAP_FRAME_HDR < len)
			break;
		if (p->role != ROLE_POOLD) {
			if (now_ms - p->rate_window_ms >= 1000) {
				p->rate_window_ms = now_ms;
				p->rate_frames = 0;
			}
			if (++p->rate_frames > PEER_RATE_MAX) {
				violation(c, p, 0, EBUSY,
					  "more than %d messages in one second; slow down",
					  PEER_RATE_MAX);
				break;
			}
		}
		buf = evbuffer_pullup(in, RSWAP_FRAME_HDR + (ssize_t)len);
		if (!buf) {
			peer_close(c, p, "out of memory reading a frame");
			break;
		}
		env = rswap_frame_decode(buf + RSWAP_FRAME_HDR, len, &why);
		evbuffer_drain(in, RSWAP_FRAME_HDR + (size_t)len);
		if (!env) {
			violation(c, p, 0, EPROTO, "bad frame: %s", why);
			break;
		}
		p->last_rx_ms = now_ms;
		dispatch(c, p, env);
		rswap__envelope__free_unpacked(env, NULL);
	}
	reap(c);
}

bool coord_peer_has_role(const struct peer *p)
{
	return p->role != ROLE_NEW;
}

void coord_peer_gone(struct coord *c, struct peer *p, const char *why,
		     uint64_t now_ms)
{
	char label[256];

	set_now(c, now_ms);
	if (p->role == ROLE_POOLD || p->op)
		log_info("%s disconnected: %s", peer_label(p, label, sizeof(label)), why);
	else
		log_debug("%s disconnected: %s", peer_label(p, label, sizeof(label)), why);
	peer_detach(c, p, why);
	peer_unlink_free(c, p);
	reap(c);
}

static void check_timeouts(struct coord *c, struct peer *p)
{
	char reason[512];
	struct preq *q;

	for (q = p->reqs; q; q = q->next) {
		if (q->timed_out || c->now_ms < q->deadline_ms)
			continue;
		q->timed_out = true;
		if (!q->op && !q->move)
			continue;
		snprintf(reason, sizeof(reason),
			 "poold %s did not answer %s for client %s slot %" PRIu32
			 " within %" PRIu32 " ms", p->poold->addr,
			 q->kind == PREQ_ALLOC ? "ChunkAlloc" : "ChunkFree",
			 q->client_id, q->slot, c->s.timeout_ms);
		/* The request stays listed: a late reply is still handled. */
		preq_failed(c, q, ETIMEDOUT, reason);
	}
}

/* A client that misses its heartbeats (or an idle admin) is cut off. */
static void check_idle(struct coord *c, struct peer *p)
{
	if (p->closing || p->op || !c->s.client_timeout_ms ||
	    c->now_ms - p->last_rx_ms < c->s.client_timeout_ms)
		return;
	if (p->client)
		peer_close(c, p, "client %s sent no heartbeat for %" PRIu64 " ms (limit %" PRIu32 " ms); its id is free again",
			   p->client->id, c->now_ms - p->last_rx_ms,
			   c->s.client_timeout_ms);
	else
		peer_close(c, p, "idle for %" PRIu64 " ms (limit %" PRIu32 " ms)",
			   c->now_ms - p->last_rx_ms, c->s.client_timeout_ms);
}

void coord_tick(struct coord *c, uint64_t now_ms)
{
	struct poold *pd;
	struct peer *p;

	set_now(c, now_ms);
	registry_update_liveness(c->reg, now_ms, c->s.heartbeat_ms);
	for (pd = c->reg->poolds; pd; pd = pd->next) {
		if (pd->state == pd->logged_state)
			continue;
		log_warn("poold %s is now %s (last heartbeat %" PRIu64 " ms ago)",
			 pd->addr, registry_state_name(pd->state),
			 now_ms - pd->last_heartbeat_ms);
		pd->logged_state = pd->state;
	}
	for (p = c->peers; p; p = p->next) {
		if (p->role == ROLE_POOLD && !p->closing)
			check_timeouts(c, p);
		else if (p->role != ROLE_NEW)
			check_idle(c, p);
	}
	rereplicate(c);
	moves_pump(c);
	reap(c);
}

void coord_free(struct coord *c)
{
	struct peer *p;
	struct preq *q;

	if (!c)
		return;
	while (c->inflight)
		op_free(c->inflight);
	while (c->moves) {
		struct move *m = c->moves;

		c->moves = m->next;
		free(m);
	}
	while ((p = c->peers)) {
		c->peers = p->next;
		while ((q = p->reqs)) {
			p->reqs = q->next;
			free(q);
		}
		free(p);
	}
	registry_free(c->reg);
	free(c);
}
