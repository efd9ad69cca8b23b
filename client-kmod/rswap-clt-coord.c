// SPDX-License-Identifier: GPL-2.0
/*
 * Session with the coordinator: one short TCP exchange at load (ClientHello
 * -> ChunkMap) and one at unload or after a failed load (ClientRelease ->
 * ClientReleased).  The data path never waits on the coordinator, so no
 * connection is kept in between.  Everything here runs in module init or
 * exit and may sleep.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/inet.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/kernel.h>
#include <linux/net.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uio.h>
#include <net/net_namespace.h>

#include "rswap-clt.h"
#include "rswap-clt-pb.h"
#include "rswap-compat.h"
#include "rswap_frame.h"

static atomic64_t rswap_coord_seq = ATOMIC64_INIT(0);

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

static int rswap_coord_recv(struct socket *sock, void *buf, size_t len)
{
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
	struct kvec iov;
	int ret;

	while (len) {
		iov.iov_base = buf;
		iov.iov_len = len;
		ret = kernel_recvmsg(sock, &msg, &iov, 1, len, MSG_WAITALL);
		if (ret == -EAGAIN)
			return -ETIMEDOUT;
		if (ret < 0)
			return ret;
		if (!ret)
			return -ECONNRESET;	/* closed before a whole frame */
		buf += ret;
		len -= ret;
	}
	return 0;
}

/* A positive errno from the peer, or -EPROTO for anything else. */
static int rswap_coord_errno(s32 code)
{
	return code > 0 && code < MAX_ERRNO ? -code : -EPROTO;
}

/*
 * One request, one reply.  0 with *env decoded (free it), or -errno after
 * logging one line that names the coordinator and what went wrong.
 */
static int rswap_coord_call(const struct rswap_config *cfg, const char *what,
			    const u8 *req, size_t req_len, u64 seq,
			    struct rswap_pb_env *env)
{
	struct socket *sock;
	const char *why;
	u8 hdr[RSWAP_FRAME_HDR];
	u32 len;
	u8 *body;
	int ret;

	ret = rswap_coord_connect(cfg, &sock);
	if (ret) {
		pr_err("cannot reach coordinator %s for %s: %pe; is rswap-coord running there?\n",
		       cfg->coord_str, what, ERR_PTR(ret));
		return ret;
	}
	ret = rswap_coord_send(sock, req, req_len);
	if (!ret)
		ret = rswap_coord_recv(sock, hdr, sizeof(hdr));
	if (ret) {
		pr_err("coordinator %s: %s failed: %pe\n", cfg->coord_str,
		       what, ERR_PTR(ret));
		goto out_release_sock;
	}
	ret = rswap_pb_frame_len(hdr, RSWAP_MAX_FRAME, &len);
	if (ret) {
		pr_err("coordinator %s: %s reply has a bad frame length %u (limit %u)\n",
		       cfg->coord_str, what, be32_to_cpup((__be32 *)hdr),
		       RSWAP_MAX_FRAME);
		ret = -EPROTO;
		goto out_release_sock;
	}
	body = kvmalloc(len, GFP_KERNEL);
	if (!body) {
		ret = -ENOMEM;
		goto out_release_sock;
	}
	ret = rswap_coord_recv(sock, body, len);
	if (ret) {
		pr_err("coordinator %s: %s reply cut short: %pe\n",
		       cfg->coord_str, what, ERR_PTR(ret));
		goto out_free_body;
	}
	ret = rswap_pb_decode(body, len, env, &why);
	if (ret) {
		pr_err("coordinator %s: malformed %s reply: %s\n",
		       cfg->coord_str, what, why);
		if (ret == -EBADMSG)
			ret = -EPROTO;
		goto out_free_body;
	}
	if (env->body == RSWAP_PB_BODY_ERROR) {
		ret = rswap_coord_errno(env->error.code);
		pr_err("coordinator %s refused %s of client %s: %s (%pe)\n",
		       cfg->coord_str, what, cfg->client_id, env->error.reason,
		       ERR_PTR(ret));
	} else if (env->version != RSWAP_PROTO_VERSION) {
		pr_err("coordinator %s speaks protocol version %u, this client speaks %u\n",
		       cfg->coord_str, env->version, RSWAP_PROTO_VERSION);
		ret = -EPROTO;
	} else if (env->seq != seq) {
		pr_err("coordinator %s answered %s with seq %llu, expected %llu\n",
		       cfg->coord_str, what, env->seq, seq);
		ret = -EPROTO;
	}
	if (ret)
		rswap_pb_env_free(env);

out_free_body:
	kvfree(body);
out_release_sock:
	sock_release(sock);
	return ret;
}

int rswap_coord_hello(const struct rswap_config *cfg, struct rswap_pb_map *map)
{
	u8 req[RSWAP_FRAME_HDR + RSWAP_PB_HELLO_MAX];
	u64 seq = atomic64_inc_return(&rswap_coord_seq);
	struct rswap_pb_env env;
	const char *why;
	int len, ret;

	len = rswap_pb_encode_hello(req + RSWAP_FRAME_HDR, RSWAP_PB_HELLO_MAX,
				    RSWAP_PROTO_VERSION, seq, cfg->client_id,
				    cfg->size);
	if (len < 0)
		return len;
	rswap_pb_frame_put_len(req, len);
	ret = rswap_coord_call(cfg, "ClientHello", req, RSWAP_FRAME_HDR + len,
			       seq, &env);
	if (ret)
		return ret;
	if (env.body != RSWAP_PB_BODY_CHUNK_MAP) {
		pr_err("coordinator %s answered ClientHello with body %u, not a ChunkMap\n",
		       cfg->coord_str, env.body);
		ret = -EPROTO;
		goto out_free_env;
	}
	ret = rswap_pb_check_map(&env.map, cfg->size, &why);
	if (ret) {
		pr_err("coordinator %s sent a bad ChunkMap: %s\n",
		       cfg->coord_str, why);
		ret = -EPROTO;
		goto out_free_env;
	}
	*map = env.map;		/* ownership of the slots moves to map */
	pr_info("coordinator %s: client %s gets %u chunks of %llu bytes\n",
		cfg->coord_str, cfg->client_id, map->nslots, map->chunk_size);
	return 0;

out_free_env:
	rswap_pb_env_free(&env);
	return ret;
}

/* Best effort: a coordinator that is down relearns from the poolds. */
void rswap_coord_release(const struct rswap_config *cfg)
{
	u8 req[RSWAP_FRAME_HDR + RSWAP_PB_HELLO_MAX];
	u64 seq = atomic64_inc_return(&rswap_coord_seq);
	struct rswap_pb_env env;
	int len;

	len = rswap_pb_encode_release(req + RSWAP_FRAME_HDR,
				      RSWAP_PB_HELLO_MAX, RSWAP_PROTO_VERSION,
				      seq, cfg->client_id);
	if (len < 0)
		return;
	rswap_pb_frame_put_len(req, len);
	if (rswap_coord_call(cfg, "ClientRelease", req, RSWAP_FRAME_HDR + len,
			     seq, &env)) {
		pr_warn("client %s: chunks not released; run rswap-admin to free them\n",
			cfg->client_id);
		return;
	}
	if (env.body == RSWAP_PB_BODY_CLIENT_RELEASED)
		pr_info("coordinator %s: released %u chunks of client %s\n",
			cfg->coord_str, env.chunks_freed, cfg->client_id);
	else
		pr_warn("coordinator %s answered ClientRelease with body %u\n",
			cfg->coord_str, env.body);
	rswap_pb_env_free(&env);
}
