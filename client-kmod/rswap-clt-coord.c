// SPDX-License-Identifier: GPL-2.0
/*
 * Session with the coordinator, kept open for the module's whole life.
 *
 *   load:   connect, ClientHello -> ChunkMap on the new connection; the
 *           connection now owns the client id at the coordinator (a
 *           second host with the same id is refused with EBUSY).  A
 *           kthread ("rswap-coord") takes the socket over.
 *   life:   the kthread sends ClientHeartbeat every heartbeat_ms (with
 *           the map epoch, a move's progress and the lost slots), the
 *           coordinator echoes each; frames are dispatched by type
 *           (rswap_coord_handlers[]), unknown ones logged and ignored.
 *           MoveChunk starts a move (rswap-clt-rdma-move.c); its
 *           MoveDone goes out from here when the move work posts it.
 *           A dead link (error, EOF, nothing heard for timeout_ms) is
 *           closed and re-opened with exponential backoff and jitter; a
 *           reconnect's hello reports the map the client runs on (epoch,
 *           a handle per slot, the move under way, lost slots), so that a
 *           restarted coordinator, or one that missed a MoveDone, learns
 *           the client again and settles every move.
 *   unload: the kthread stops (kthread_stop() interrupts its receive;
 *           the session stays up), ClientRelease goes out on the live
 *           session (or on a fresh connection if the link is down), then
 *           close.
 *
 * The data path never waits on any of this: swap I/O goes to the poolds
 * whatever state the coordinator link is in.  Everything here runs in
 * module init/exit or in the kthread and may sleep.
 *
 * Ownership: co->sock and the receive state belong to whoever runs the
 * session: module init until the kthread starts, the kthread while it
 * runs, module exit after kthread_stop().  sysfs reads only the atomics
 * and last_error (under err_lock).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/inet.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/net.h>
#include <linux/random.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uio.h>
#include <net/net_namespace.h>
#include <net/sock.h>

#include "rswap-clt.h"
#include "rswap-clt-pb.h"
#include "rswap-compat.h"
#include "rswap_auth.h"
#include "rswap_frame.h"

#define RSWAP_COORD_BACKOFF_MIN_MS	500
#define RSWAP_COORD_BACKOFF_MAX_MS	10000
#define RSWAP_COORD_ERR_LEN		200

struct rswap_coord {
	struct rswap_dev *dev;
	const struct rswap_config *cfg;
	struct task_struct *worker;
	struct socket *sock;		/* NULL while the link is down */
	u64 seq;
	unsigned int backoff_ms;
	unsigned long last_rx;		/* jiffies of the last whole frame */
	unsigned long next_beat;

	/* Receive state: one frame may arrive across several timeouts. */
	u8 rx_hdr[RSWAP_FRAME_HDR];
	u32 rx_hdr_got;
	u32 rx_len;			/* body length, once the header is in */
	u32 rx_got;
	u8 *rx_body;

	/* A MoveDone the move work posted, for the kthread to send. */
	spinlock_t done_lock;
	bool done_pending;
	struct rswap_pb_move_done done;
	char done_reason[96];

	/* Read by sysfs. */
	atomic_t state;			/* enum rswap_coord_state */
	atomic64_t reconnects;
	atomic64_t heartbeats;		/* echoes received */
	spinlock_t err_lock;
	char last_error[RSWAP_COORD_ERR_LEN];
};

static const char *const rswap_coord_state_names[] = {
	[RSWAP_COORD_CONNECTING] = "connecting",
	[RSWAP_COORD_LIVE] = "live",
	[RSWAP_COORD_RECONNECTING] = "reconnecting",
	[RSWAP_COORD_STOPPED] = "stopped",
};

int rswap_parse_addr(const char *s, struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *hend, *port;
	unsigned short af;
	size_t hlen;

	if (s[0] == '[') {
		hend = strchr(s, ']');
		if (!hend || hend[1] != ':')
			return -EINVAL;
		s++;
		port = hend + 2;
		af = AF_INET6;
	} else {
		hend = strchr(s, ':');
		if (!hend || strchr(hend + 1, ':'))
			return -EINVAL;
		port = hend + 1;
		af = AF_INET;
	}
	hlen = hend - s;
	if (!hlen || hlen >= sizeof(host) || !*port)
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton_with_scope(&init_net, af, host, port, ss))
		return -EINVAL;
	/* Port 0 parses but cannot be connected to. */
	if ((af == AF_INET && !((struct sockaddr_in *)ss)->sin_port) ||
	    (af == AF_INET6 && !((struct sockaddr_in6 *)ss)->sin6_port))
		return -EINVAL;
	return 0;
}

/* ---- link state, for sysfs and the log ---------------------------------- */

static void rswap_coord_set_state(struct rswap_coord *co,
				  enum rswap_coord_state s)
{
	atomic_set(&co->state, s);
}

static void rswap_coord_set_error(struct rswap_coord *co, const char *fmt, ...)
	__printf(2, 3);

/* Remember why the link failed; the caller decides whether to log it. */
static void rswap_coord_set_error(struct rswap_coord *co, const char *fmt, ...)
{
	char buf[RSWAP_COORD_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vscnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	spin_lock(&co->err_lock);
	strscpy(co->last_error, buf, sizeof(co->last_error));
	spin_unlock(&co->err_lock);
}

const char *rswap_coord_state_name(struct rswap_dev *dev)
{
	int s;

	if (!dev->coord)
		return "none";
	s = atomic_read(&dev->coord->state);
	if (s < 0 || s >= ARRAY_SIZE(rswap_coord_state_names))
		return "unknown";
	return rswap_coord_state_names[s];
}

u64 rswap_coord_reconnects(struct rswap_dev *dev)
{
	return dev->coord ? atomic64_read(&dev->coord->reconnects) : 0;
}

u64 rswap_coord_heartbeats(struct rswap_dev *dev)
{
	return dev->coord ? atomic64_read(&dev->coord->heartbeats) : 0;
}

ssize_t rswap_coord_show_last_error(struct rswap_dev *dev, char *buf)
{
	char err[RSWAP_COORD_ERR_LEN] = "";

	if (dev->coord) {
		spin_lock(&dev->coord->err_lock);
		strscpy(err, dev->coord->last_error, sizeof(err));
		spin_unlock(&dev->coord->err_lock);
	}
	return sysfs_emit(buf, "%s\n", err);
}

/* ---- socket ------------------------------------------------------------- */

static int rswap_addr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
					   sizeof(struct sockaddr_in);
}

static int rswap_coord_connect(const struct rswap_config *cfg,
			       struct socket **out)
{
	struct socket *sock;
	int ret;

	ret = sock_create_kern(&init_net, cfg->coord.ss_family, SOCK_STREAM,
			       IPPROTO_TCP, &sock);
	if (ret)
		return ret;
	/*
	 * The swap device's own control socket: its buffers must not wait on
	 * reclaim, which may be writing to this very device.
	 */
	sock->sk->sk_allocation = GFP_NOIO;
	/* kernel_connect() waits at most the send timeout. */
	rswap_compat_sock_timeouts(sock, DIV_ROUND_UP(cfg->timeout_ms, 1000));
	ret = rswap_compat_connect(sock, (struct sockaddr_storage *)&cfg->coord,
				   rswap_addr_len(&cfg->coord));
	if (ret == -EINPROGRESS || ret == -EALREADY)
		ret = -ETIMEDOUT;
	if (ret) {
		sock_release(sock);
		return ret;
	}
	*out = sock;
	return 0;
}

/* Wait at most until jiffies `until` in a receive, at least one tick. */
static void rswap_coord_rcvtimeo(struct socket *sock, unsigned long until)
{
	long left = (long)(until - jiffies);

	lock_sock(sock->sk);
	sock->sk->sk_rcvtimeo = max(left, 1L);
	release_sock(sock->sk);
}

static int rswap_coord_send(struct socket *sock, const void *buf, size_t len)
{
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
	struct kvec iov;
	int ret;

	while (len) {
		iov.iov_base = (void *)buf;
		iov.iov_len = len;
		ret = kernel_sendmsg(sock, &msg, &iov, 1, len);
		if (ret == -EAGAIN)
			return -ETIMEDOUT;
		if (ret < 0)
			return ret;
		if (!ret)
			return -ECONNRESET;
		buf += ret;
		len -= ret;
	}
	return 0;
}

/*
 * Bytes read (> 0), 0 if the receive timeout passed first, or -errno (a
 * signal to insmod ends the wait: -EINTR).
 */
static int rswap_coord_read_some(struct socket *sock, void *buf, size_t len)
{
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
	struct kvec iov = { .iov_base = buf, .iov_len = len };
	int ret;

	ret = kernel_recvmsg(sock, &msg, &iov, 1, len, 0);
	if (ret == -EAGAIN)
		return 0;
	if (ret == -ERESTARTSYS)
		return -EINTR;
	if (!ret)
		return -ECONNRESET;	/* the coordinator closed */
	return ret;
}

static void rswap_coord_rx_reset(struct rswap_coord *co)
{
	kvfree(co->rx_body);
	co->rx_body = NULL;
	co->rx_hdr_got = 0;
	co->rx_len = 0;
	co->rx_got = 0;
}

/*
 * Receive one frame, waiting at most the socket's receive timeout.
 * 1 with *env decoded (free it), 0 if no whole frame came in time (the
 * part received is kept for the next call), or -errno with *why set.
 */
static int rswap_coord_recv_frame(struct rswap_coord *co,
				  struct rswap_pb_env *env, const char **why)
{
	int ret;

	while (co->rx_hdr_got < RSWAP_FRAME_HDR) {
		ret = rswap_coord_read_some(co->sock, co->rx_hdr + co->rx_hdr_got,
					    RSWAP_FRAME_HDR - co->rx_hdr_got);
		if (ret <= 0) {
			*why = ret == -EINTR ? "interrupted" : "connection lost";
			return ret;
		}
		co->rx_hdr_got += ret;
		if (co->rx_hdr_got < RSWAP_FRAME_HDR)
			continue;
		if (rswap_pb_frame_len(co->rx_hdr, RSWAP_MAX_FRAME,
				       &co->rx_len)) {
			*why = "bad frame length";
			return -EPROTO;
		}
		co->rx_body = kvmalloc(co->rx_len, GFP_KERNEL);
		if (!co->rx_body) {
			*why = "out of memory for a frame";
			return -ENOMEM;
		}
	}
	while (co->rx_got < co->rx_len) {
		ret = rswap_coord_read_some(co->sock, co->rx_body + co->rx_got,
					    co->rx_len - co->rx_got);
		if (ret <= 0) {
			*why = ret == -EINTR ? "interrupted" : "connection lost";
			return ret;
		}
		co->rx_got += ret;
	}
	ret = rswap_pb_decode(co->rx_body, co->rx_len, env, why);
	rswap_coord_rx_reset(co);
	if (ret)
		return ret == -EBADMSG ? -EPROTO : ret;
	co->last_rx = jiffies;
	return 1;
}

/* Drop the link; the kthread reconnects (module exit: nothing more). */
static void rswap_coord_drop(struct rswap_coord *co)
{
	if (co->sock) {
		kernel_sock_shutdown(co->sock, SHUT_RDWR);
		sock_release(co->sock);
		co->sock = NULL;
	}
	rswap_coord_rx_reset(co);
}

/* ---- messages the coordinator sends on its own ---------------------------- */

static void rswap_coord_on_heartbeat(struct rswap_coord *co,
				     const struct rswap_pb_env *env)
{
	atomic64_inc(&co->heartbeats);
}

static void rswap_coord_on_error(struct rswap_coord *co,
				 const struct rswap_pb_env *env)
{
	/* It closes the link after an Error out of turn: say why. */
	pr_warn("coordinator %s: %s (error %d)\n", co->cfg->coord_str,
		env->error.reason, env->error.code);
	rswap_coord_set_error(co, "coordinator said: %s", env->error.reason);
}

static void rswap_coord_send_done(struct rswap_coord *co,
				  const struct rswap_pb_move_done *d);

/* MoveChunk: start the move, or refuse it at once with a MoveDone. */
static void rswap_coord_on_move(struct rswap_coord *co,
				const struct rswap_pb_env *env)
{
	struct rswap_pb_move_done d = {};
	const char *why = "";
	int ret;

	ret = rswap_move_start(co->dev, env, &why);
	if (!ret)
		return;
	pr_warn("coordinator %s: cannot move slot %u to poold %s: %s\n",
		co->cfg->coord_str, env->move.slot, env->move.to_poold, why);
	d.slot = env->move.slot;
	d.to_handle = env->move.to_handle;
	d.code = -ret;
	d.reason = why;
	rswap_coord_send_done(co, &d);
}

static const struct {
	u32 body;
	void (*handle)(struct rswap_coord *co, const struct rswap_pb_env *env);
} rswap_coord_handlers[] = {
	{ RSWAP_PB_BODY_CLIENT_HEARTBEAT, rswap_coord_on_heartbeat },
	{ RSWAP_PB_BODY_ERROR, rswap_coord_on_error },
	{ RSWAP_PB_BODY_MOVE_CHUNK, rswap_coord_on_move },
};

static void rswap_coord_dispatch(struct rswap_coord *co,
				 const struct rswap_pb_env *env)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(rswap_coord_handlers); i++) {
		if (rswap_coord_handlers[i].body == env->body) {
			rswap_coord_handlers[i].handle(co, env);
			return;
		}
	}
	pr_warn_ratelimited("coordinator %s sent message type %u, which this client does not handle; ignored\n",
			    co->cfg->coord_str, env->body);
}

/* ---- request and reply ---------------------------------------------------- */

/* A positive errno from the peer, or -EPROTO for anything else. */
static int rswap_coord_errno(s32 code)
{
	return code > 0 && code < MAX_ERRNO ? -code : -EPROTO;
}

/*
 * Send one request on the session and wait (timeout_ms) for the reply with
 * its seq; frames in between (heartbeat echoes, pushes) are dispatched.
 * 0 with *env decoded (free it), or -errno with last_error set and, if
 * loud, one line logged.  An Error reply returns the peer's errno with
 * env->body == RSWAP_PB_BODY_ERROR and the reason in env->error, which
 * the caller words (nothing to free); on any other failure env->body is
 * RSWAP_PB_BODY_NONE.
 */
static int rswap_coord_call(struct rswap_coord *co, bool loud,
			    const char *what, const u8 *req, size_t req_len,
			    u64 seq, struct rswap_pb_env *env)
{
	const struct rswap_config *cfg = co->cfg;
	unsigned long deadline = jiffies + msecs_to_jiffies(cfg->timeout_ms);
	const char *why = "";
	int ret;

	memset(env, 0, sizeof(*env));
	ret = rswap_coord_send(co->sock, req, req_len);
	if (ret) {
		why = "cannot send";
		goto out_fail;
	}
	for (;;) {
		if (time_after_eq(jiffies, deadline)) {
			why = "no reply in time";
			ret = -ETIMEDOUT;
			goto out_fail;
		}
		rswap_coord_rcvtimeo(co->sock, deadline);
		ret = rswap_coord_recv_frame(co, env, &why);
		if (ret < 0)
			goto out_fail;
		if (!ret)
			continue;
		if (env->seq == seq)
			break;
		rswap_coord_dispatch(co, env);
		rswap_pb_env_free(env);
	}
	if (env->body == RSWAP_PB_BODY_ERROR) {
		ret = rswap_coord_errno(env->error.code);
		rswap_coord_set_error(co, "%s refused: %s", what,
				      env->error.reason);
		return ret;
	}
	if (env->version != RSWAP_PROTO_VERSION) {
		rswap_coord_set_error(co, "protocol version %u, this client speaks %u",
				      env->version, RSWAP_PROTO_VERSION);
		if (loud)
			pr_err("coordinator %s speaks protocol version %u, this client speaks %u\n",
			       cfg->coord_str, env->version,
			       RSWAP_PROTO_VERSION);
		rswap_pb_env_free(env);
		return -EPROTO;
	}
	return 0;

out_fail:
	env->body = RSWAP_PB_BODY_NONE;
	rswap_coord_set_error(co, "%s: %s (%pe)", what, why, ERR_PTR(ret));
	if (loud)
		pr_err("coordinator %s: %s failed: %s (%pe)\n", cfg->coord_str,
		       what, why, ERR_PTR(ret));
	return ret;
}

/*
 * With a cluster key, prove it right after connecting (rswap_auth.h): the
 * coordinator proves the key first, bound to our fresh nonce; then we
 * prove it, bound to its nonce, and say hello.  0, or -EACCES after one
 * line (if loud) when the coordinator did not prove the key or runs
 * without one, or another -errno.
 */
static int rswap_coord_auth(struct rswap_coord *co, bool loud)
{
	const struct rswap_auth *auth = &co->dev->auth;
	const struct rswap_config *cfg = co->cfg;
	u8 req[RSWAP_FRAME_HDR + RSWAP_PB_AUTH_MAX];
	size_t id_len = strlen(cfg->client_id);
	u8 nonce[RSWAP_NONCE_LEN], mac[RSWAP_MAC_LEN];
	struct rswap_pb_env env;
	u64 seq;
	int len, ret;

	if (!auth->have_key)
		return 0;
	seq = ++co->seq;
	get_random_bytes(nonce, sizeof(nonce));
	len = rswap_pb_encode_auth_hello(req + RSWAP_FRAME_HDR, RSWAP_PB_AUTH_MAX,
					 RSWAP_PROTO_VERSION, seq,
					 RSWAP_AUTH_ROLE_CLIENT, cfg->client_id,
					 nonce);
	if (len < 0)
		return len;
	rswap_pb_frame_put_len(req, len);
	ret = rswap_coord_call(co, loud, "AuthHello", req, RSWAP_FRAME_HDR + len,
			       seq, &env);
	if (ret) {
		if (loud && env.body == RSWAP_PB_BODY_ERROR)
			pr_err("coordinator %s refused the authentication of client %s: %s\n",
			       cfg->coord_str, cfg->client_id, env.error.reason);
		return ret;
	}
	ret = -EACCES;
	if (env.body != RSWAP_PB_BODY_AUTH_CHALLENGE) {
		rswap_coord_set_error(co, "AuthHello answered with message type %u",
				      env.body);
		ret = -EPROTO;
	} else if (env.challenge.insecure) {
		rswap_coord_set_error(co, "coordinator runs without a cluster key");
		if (loud)
			pr_err("coordinator %s runs without a cluster key (--insecure) but this host has one (%s): refusing it; give rswap-coord --key-file\n",
			       cfg->coord_str, RSWAP_KEYRING_DESC);
	} else if (env.challenge.nonce_len != RSWAP_NONCE_LEN ||
		   !rswap_auth_check(auth, RSWAP_AUTH_LABEL_R,
				     RSWAP_AUTH_ROLE_CLIENT, cfg->client_id,
				     id_len, nonce, env.challenge.nonce,
				     env.challenge.mac, env.challenge.mac_len)) {
		rswap_coord_set_error(co, "authentication failed (wrong cluster key?)");
		if (loud)
			pr_err("coordinator %s: authentication failed (wrong cluster key?)\n",
			       cfg->coord_str);
	} else {
		ret = rswap_auth_mac(auth, RSWAP_AUTH_LABEL_I,
				     RSWAP_AUTH_ROLE_CLIENT, cfg->client_id,
				     id_len, env.challenge.nonce, nonce, mac);
	}
	rswap_pb_env_free(&env);
	if (ret)
		return ret;
	len = rswap_pb_encode_auth_proof(req + RSWAP_FRAME_HDR, RSWAP_PB_AUTH_MAX,
					 RSWAP_PROTO_VERSION, ++co->seq, mac);
	memzero_explicit(mac, sizeof(mac));
	if (len < 0)
		return len;
	rswap_pb_frame_put_len(req, len);
	ret = rswap_coord_send(co->sock, req, RSWAP_FRAME_HDR + len);
	if (ret)
		rswap_coord_set_error(co, "cannot send the authentication proof: %pe",
				      ERR_PTR(ret));
	return ret;
}

/*
 * Connect and, with a key, authenticate.  0 with co->sock set, or -errno
 * with last_error set and, if loud, one line logged.
 */
static int rswap_coord_connect_auth(struct rswap_coord *co, bool loud)
{
	int ret;

	ret = rswap_coord_connect(co->cfg, &co->sock);
	if (ret) {
		co->sock = NULL;
		rswap_coord_set_error(co, "cannot connect: %pe", ERR_PTR(ret));
		if (loud)
			pr_err("cannot reach coordinator %s: %pe; is rswap-coord running there?\n",
			       co->cfg->coord_str, ERR_PTR(ret));
		return ret;
	}
	ret = rswap_coord_auth(co, loud);
	if (ret)
		rswap_coord_drop(co);
	return ret;
}

/*
 * ClientHello on co->sock.  0 with *map set (the connection owns the id
 * now), or -errno; -EBUSY: another live session owns the id.  A reconnect
 * (rep set) reports the map the client runs on and never makes the
 * coordinator allocate: it answers EAGAIN until the poolds holding our
 * chunks have re-registered them.
 */
static int rswap_coord_hello(struct rswap_coord *co, bool loud,
			     const struct rswap_pb_report *rep,
			     struct rswap_pb_map *map)
{
	const struct rswap_config *cfg = co->cfg;
	size_t cap = rswap_pb_report_max(rep);
	struct rswap_pb_env env;
	u64 seq = ++co->seq;
	const char *why;
	int len, ret;
	u8 *req;

	req = kvmalloc(RSWAP_FRAME_HDR + cap, GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	len = rswap_pb_encode_hello(req + RSWAP_FRAME_HDR, cap,
				    RSWAP_PROTO_VERSION, seq, cfg->client_id,
				    cfg->size, !loud, rep);
	if (len < 0) {
		kvfree(req);
		return len;
	}
	rswap_pb_frame_put_len(req, len);
	ret = rswap_coord_call(co, loud, "ClientHello", req,
			       RSWAP_FRAME_HDR + len, seq, &env);
	kvfree(req);
	if (ret == -EBUSY) {
		rswap_coord_set_error(co, "client id \"%s\" refused: %s",
				      cfg->client_id, env.error.reason);
		if (loud)
			pr_err("coordinator %s refused client id \"%s\": %s; set name= to an id no other host uses\n",
			       cfg->coord_str, cfg->client_id,
			       env.error.reason);
		return ret;
	}
	if (ret == -EACCES && !co->dev->auth.have_key) {
		if (loud)
			pr_err("coordinator %s requires the cluster key: give insmod a session keyring holding the user key \"%s\" (rswapctl install does; see client-kmod/README.md)\n",
			       cfg->coord_str, RSWAP_KEYRING_DESC);
		return ret;
	}
	if (ret) {
		if (loud && env.body == RSWAP_PB_BODY_ERROR)
			pr_err("coordinator %s refused ClientHello of client %s: %s (%pe)\n",
			       cfg->coord_str, cfg->client_id,
			       env.error.reason, ERR_PTR(ret));
		return ret;
	}
	if (env.body != RSWAP_PB_BODY_CHUNK_MAP) {
		rswap_coord_set_error(co, "ClientHello answered with message type %u",
				      env.body);
		if (loud)
			pr_err("coordinator %s answered ClientHello with body %u, not a ChunkMap\n",
			       cfg->coord_str, env.body);
		ret = -EPROTO;
		goto out_free_env;
	}
	ret = rswap_pb_check_map(&env.map, cfg->size, &why);
	if (!ret && max(env.map.replicas, 1u) != cfg->replicas) {
		why = "its copies per slot differ from replicas=";
		ret = -EBADMSG;
	}
	if (ret) {
		rswap_coord_set_error(co, "bad ChunkMap: %s", why);
		if (loud)
			pr_err("coordinator %s sent a bad ChunkMap: %s\n",
			       cfg->coord_str, why);
		ret = -EPROTO;
		goto out_free_env;
	}
	*map = env.map;		/* ownership of the slots moves to map */
	return 0;

out_free_env:
	rswap_pb_env_free(&env);
	return ret;
}

/*
 * ClientRelease on co->sock; best effort, logged.  Returns -EBUSY without
 * a word when the coordinator says another session owns the id and !loud;
 * with lost_ok, -ENOTCONN without a word when the session turns out to be
 * gone (the coordinator cut it, say, for heartbeats that came late under
 * memory pressure): the caller releases on a fresh connection.  Else 0.
 */
static int rswap_coord_release_on(struct rswap_coord *co, bool loud,
				  bool lost_ok)
{
	const struct rswap_config *cfg = co->cfg;
	u8 req[RSWAP_FRAME_HDR + RSWAP_PB_HELLO_MAX];
	struct rswap_pb_env env;
	u64 seq = ++co->seq;
	int len, ret;

	len = rswap_pb_encode_release(req + RSWAP_FRAME_HDR,
				      RSWAP_PB_HELLO_MAX, RSWAP_PROTO_VERSION,
				      seq, cfg->client_id);
	if (len < 0)
		return 0;
	rswap_pb_frame_put_len(req, len);
	ret = rswap_coord_call(co, !lost_ok, "ClientRelease", req,
			       RSWAP_FRAME_HDR + len, seq, &env);
	if (ret == -EBUSY && !loud)
		return ret;	/* the caller retries */
	if (ret && lost_ok && env.body != RSWAP_PB_BODY_ERROR)
		return -ENOTCONN;	/* the caller tries a fresh connection */
	if (ret) {
		if (env.body == RSWAP_PB_BODY_ERROR)
			pr_warn("coordinator %s refused ClientRelease of client %s: %s (%pe)\n",
				cfg->coord_str, cfg->client_id,
				env.error.reason, ERR_PTR(ret));
		pr_warn("client %s: chunks not released; rswap-admin --coord %s list shows them\n",
			cfg->client_id, cfg->coord_str);
		return 0;
	}
	if (env.body == RSWAP_PB_BODY_CLIENT_RELEASED)
		pr_info("coordinator %s: released %u chunks of client %s\n",
			cfg->coord_str, env.chunks_freed, cfg->client_id);
	else
		pr_warn("coordinator %s answered ClientRelease with body %u\n",
			cfg->coord_str, env.body);
	rswap_pb_env_free(&env);
	return 0;
}

/* ---- the session kthread ---------------------------------------------------- */

/* Sleep for the backoff with jitter; true if the module is going away. */
static bool rswap_coord_backoff(struct rswap_coord *co)
{
	unsigned int ms = co->backoff_ms / 2 +
			  get_random_u32() % (co->backoff_ms / 2 + 1);

	co->backoff_ms = min(co->backoff_ms * 2, RSWAP_COORD_BACKOFF_MAX_MS);
	set_current_state(TASK_INTERRUPTIBLE);
	if (!kthread_should_stop())
		schedule_timeout(msecs_to_jiffies(ms));
	__set_current_state(TASK_RUNNING);
	return kthread_should_stop();
}

static void rswap_coord_reconnect(struct rswap_coord *co)
{
	const struct rswap_config *cfg = co->cfg;
	char prev[RSWAP_COORD_ERR_LEN];
	struct rswap_pb_report rep;
	struct rswap_pb_map map;
	bool have_rep;
	int ret;

	spin_lock(&co->err_lock);
	strscpy(prev, co->last_error, sizeof(prev));
	spin_unlock(&co->err_lock);

	ret = rswap_coord_connect_auth(co, false);
	if (ret)
		goto out_log;
	/* A failure only leaves the coordinator without our report. */
	have_rep = !rswap_rdma_report(co->dev, &rep, true);
	ret = rswap_coord_hello(co, false, have_rep ? &rep : NULL, &map);
	if (ret) {
		if (have_rep)
			rswap_rdma_report_free(&rep);
		rswap_coord_drop(co);
		goto out_log;
	}
	if (have_rep) {
		u32 i, differ = 0;

		for (i = 0; i < map.nslots && i < rep.nhandles; i++)
			differ += !rswap_pb_slot_has(&map.slots[i],
						     rep.handles[i]);
		if (differ)
			pr_err("coordinator %s names another chunk than the one in use for %u slots of client %s; swap goes on with ours, check rswap-admin --coord %s list\n",
			       cfg->coord_str, differ, cfg->client_id,
			       cfg->coord_str);
		rswap_rdma_report_free(&rep);
	}
	rswap_pb_map_free(&map);
	atomic64_inc(&co->reconnects);
	co->backoff_ms = RSWAP_COORD_BACKOFF_MIN_MS;
	co->next_beat = jiffies + msecs_to_jiffies(cfg->heartbeat_ms);
	rswap_coord_set_state(co, RSWAP_COORD_LIVE);
	pr_info("coordinator %s: session of client %s is back\n",
		cfg->coord_str, cfg->client_id);
	return;

out_log:
	/* One line per new reason, not one per attempt. */
	spin_lock(&co->err_lock);
	ret = strcmp(prev, co->last_error);
	strscpy(prev, co->last_error, sizeof(prev));
	spin_unlock(&co->err_lock);
	if (ret)
		pr_warn("coordinator %s: still reconnecting: %s; swap I/O is not affected\n",
			cfg->coord_str, prev);
}

static void rswap_coord_link_down(struct rswap_coord *co, const char *why,
				  int err)
{
	rswap_coord_set_error(co, "%s (%pe)", why, ERR_PTR(err));
	pr_warn("coordinator %s: session lost: %s (%pe); reconnecting, swap I/O is not affected\n",
		co->cfg->coord_str, why, ERR_PTR(err));
	rswap_coord_drop(co);
	rswap_coord_set_state(co, RSWAP_COORD_RECONNECTING);
	co->backoff_ms = RSWAP_COORD_BACKOFF_MIN_MS;
}

/*
 * The kthread: send a MoveDone now, on the live link.  Lost with the link
 * if it breaks: the next hello's report tells the same.
 */
static void rswap_coord_send_done(struct rswap_coord *co,
				  const struct rswap_pb_move_done *d)
{
	u8 req[RSWAP_FRAME_HDR + RSWAP_PB_DONE_MAX];
	int len;

	len = rswap_pb_encode_move_done(req + RSWAP_FRAME_HDR,
					RSWAP_PB_DONE_MAX, RSWAP_PROTO_VERSION,
					++co->seq, d);
	if (len < 0 || !co->sock)
		return;
	rswap_pb_frame_put_len(req, len);
	if (rswap_coord_send(co->sock, req, RSWAP_FRAME_HDR + len))
		pr_warn("coordinator %s: MoveDone of slot %u not sent; the next hello reports it\n",
			co->cfg->coord_str, d->slot);
}

/* The move work: a move ended; the kthread tells the coordinator. */
void rswap_coord_move_done(struct rswap_dev *dev,
			   const struct rswap_pb_move_done *d)
{
	struct rswap_coord *co = dev->coord;

	if (!co)
		return;
	spin_lock(&co->done_lock);
	co->done = *d;
	strscpy(co->done_reason, d->reason ? d->reason : "",
		sizeof(co->done_reason));
	co->done.reason = co->done_reason;
	co->done_pending = true;
	spin_unlock(&co->done_lock);
}

static void rswap_coord_flush_done(struct rswap_coord *co)
{
	struct rswap_pb_move_done d;
	char reason[sizeof(co->done_reason)];
	bool pending;

	spin_lock(&co->done_lock);
	pending = co->done_pending;
	co->done_pending = false;
	d = co->done;
	strscpy(reason, co->done_reason, sizeof(reason));
	spin_unlock(&co->done_lock);
	if (!pending)
		return;
	d.reason = reason;
	rswap_coord_send_done(co, &d);
}

/* The kthread: a heartbeat with what the client reports.  0 or -errno. */
static int rswap_coord_beat(struct rswap_coord *co)
{
	struct rswap_pb_report rep;
	bool have_rep = !rswap_rdma_report(co->dev, &rep, false);
	size_t cap = rswap_pb_report_max(have_rep ? &rep : NULL);
	int len, ret = 0;
	u8 *req;

	req = kmalloc(RSWAP_FRAME_HDR + cap, GFP_KERNEL);
	if (!req) {
		ret = -ENOMEM;
		goto out_free_rep;
	}
	len = rswap_pb_encode_heartbeat(req + RSWAP_FRAME_HDR, cap,
					RSWAP_PROTO_VERSION, ++co->seq,
					have_rep ? &rep : NULL);
	if (len >= 0) {
		rswap_pb_frame_put_len(req, len);
		ret = rswap_coord_send(co->sock, req, RSWAP_FRAME_HDR + len);
	}
	kfree(req);
out_free_rep:
	if (have_rep)
		rswap_rdma_report_free(&rep);
	return ret;
}

/* One step of a live session: beat if due, then receive until the next. */
static void rswap_coord_serve(struct rswap_coord *co)
{
	const struct rswap_config *cfg = co->cfg;
	struct rswap_pb_env env;
	const char *why;
	int ret;

	if (time_after(jiffies, co->last_rx +
		       msecs_to_jiffies(cfg->timeout_ms))) {
		rswap_coord_link_down(co, "nothing heard for timeout_ms",
				      -ETIMEDOUT);
		return;
	}
	rswap_coord_flush_done(co);
	if (time_after_eq(jiffies, co->next_beat)) {
		ret = rswap_coord_beat(co);
		if (ret == -ENOMEM)
			return;		/* try again on the next step */
		if (ret) {
			if (!kthread_should_stop())
				rswap_coord_link_down(co, "cannot send a heartbeat",
						      ret);
			return;
		}
		co->next_beat = jiffies + msecs_to_jiffies(cfg->heartbeat_ms);
		/* A stale copy whose poold is back: bring it in sync. */
		rswap_resync_kick(co->dev);
	}
	rswap_coord_rcvtimeo(co->sock, co->next_beat);
	ret = rswap_coord_recv_frame(co, &env, &why);
	if (ret < 0) {
		/*
		 * kthread_stop() interrupts the receive (-EINTR): the session
		 * stays up for module exit to release the chunks on it.
		 */
		if (!kthread_should_stop())
			rswap_coord_link_down(co, why, ret);
		return;
	}
	if (ret) {
		rswap_coord_dispatch(co, &env);
		rswap_pb_env_free(&env);
	}
}

static int rswap_coord_worker(void *arg)
{
	struct rswap_coord *co = arg;

	/*
	 * Under memory pressure this thread must keep beating: no reclaim I/O
	 * from its allocations (swap may be going to our device).
	 */
	memalloc_noio_save();
	while (!kthread_should_stop()) {
		if (co->sock) {
			rswap_coord_serve(co);
			continue;
		}
		if (rswap_coord_backoff(co))
			break;
		rswap_coord_set_state(co, RSWAP_COORD_CONNECTING);
		rswap_coord_reconnect(co);
		if (!co->sock)
			rswap_coord_set_state(co, RSWAP_COORD_RECONNECTING);
	}
	return 0;
}

/* ---- load and unload ---------------------------------------------------------- */

/*
 * Open the session: ClientHello -> ChunkMap on a connection that stays
 * open, then start the kthread.  0 with *map set (free it) and
 * dev->coord set, or -errno after one logged line; nothing is left
 * behind and nothing was released (a refused hello owns nothing).
 */
int rswap_coord_open(struct rswap_dev *dev, struct rswap_pb_map *map)
{
	const struct rswap_config *cfg = &dev->cfg;
	struct rswap_pb_report first = {};
	struct rswap_coord *co;
	int ret;

	co = kzalloc(sizeof(*co), GFP_KERNEL);
	if (!co)
		return -ENOMEM;
	co->dev = dev;
	co->cfg = cfg;
	spin_lock_init(&co->err_lock);
	spin_lock_init(&co->done_lock);
	co->backoff_ms = RSWAP_COORD_BACKOFF_MIN_MS;
	rswap_coord_set_state(co, RSWAP_COORD_CONNECTING);

	ret = rswap_coord_connect_auth(co, true);
	if (ret)
		goto out_free_co;
	first.replicas = cfg->replicas;
	ret = rswap_coord_hello(co, true, &first, map);
	if (ret)
		goto out_drop;
	co->next_beat = jiffies + msecs_to_jiffies(cfg->heartbeat_ms);
	rswap_coord_set_state(co, RSWAP_COORD_LIVE);

	co->worker = kthread_run(rswap_coord_worker, co, "rswap-coord");
	if (IS_ERR(co->worker)) {
		ret = PTR_ERR(co->worker);
		co->worker = NULL;
		pr_err("cannot start the coordinator session thread: %pe\n",
		       ERR_PTR(ret));
		/* The id is ours on this session: give the chunks back. */
		rswap_coord_release_on(co, true, false);
		rswap_pb_map_free(map);
		goto out_drop;
	}
	dev->coord = co;
	pr_info("coordinator %s: client %s gets %u chunks of %llu bytes; session kept open\n",
		cfg->coord_str, cfg->client_id, map->nslots, map->chunk_size);
	return 0;

out_drop:
	rswap_coord_drop(co);
out_free_co:
	kfree(co);
	return ret;
}

/*
 * The link is down at unload: release on a fresh connection.  The
 * coordinator refuses it (EBUSY) while another session owns the id -- also
 * our own lost one until it notices the close -- so retry a few times.
 */
static void rswap_coord_release_fresh(struct rswap_coord *co)
{
	int ret, tries;

	for (tries = 1; ; tries++) {
		ret = rswap_coord_connect_auth(co, false);
		if (ret) {
			pr_warn("cannot reach coordinator %s to release client %s: %pe; a restarted coordinator relearns its chunks from the poolds, free them with a later load and unload\n",
				co->cfg->coord_str, co->cfg->client_id,
				ERR_PTR(ret));
			return;
		}
		ret = rswap_coord_release_on(co, tries == 3, false);
		rswap_coord_drop(co);
		if (ret != -EBUSY || tries == 3)
			return;
		msleep(500);
	}
}

/*
 * Stop the kthread and close the session; with release, first free the
 * client's chunks: on the live session, or on a fresh connection if the
 * link is down (the coordinator refuses it if another host owns the id).
 */
/*
 * Stop the kthread: nothing from the coordinator (a MoveChunk) reaches
 * the backend any more.  The session stays up for the release.
 */
void rswap_coord_stop(struct rswap_dev *dev)
{
	struct rswap_coord *co = dev->coord;

	if (!co || !co->worker)
		return;
	kthread_stop(co->worker);
	co->worker = NULL;
}

void rswap_coord_close(struct rswap_dev *dev, bool release)
{
	struct rswap_coord *co = dev->coord;

	if (!co)
		return;
	rswap_coord_stop(dev);
	if (release && co->sock &&
	    rswap_coord_release_on(co, true, true) == -ENOTCONN) {
		rswap_coord_drop(co);
		rswap_coord_release_fresh(co);
	} else if (release && !co->sock) {
		rswap_coord_release_fresh(co);
	}
	rswap_coord_drop(co);
	rswap_coord_set_state(co, RSWAP_COORD_STOPPED);
	dev->coord = NULL;
	kfree(co);
}
