// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * The client's side of the coordinator protocol: ClientHello, ClientRelease,
 * and (--hold-coord) a session kept open with ClientHeartbeat, as the
 * kernel module keeps it, so that the id stays owned by this process.
 */
#include "testclient.h"
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/time.h>

#include "rswap.pb-c.h"
#include "rswap_frame.h"
#include "rswap_util.h"

#define COORD_TIMEOUT_S 30

/* --hold-coord: the connection whose hello owns the id, until we exit. */
static int held_fd = -1;

static int coord_open(const char *hostport)
{
	struct sockaddr_storage ss;
	struct timeval tv = { .tv_sec = COORD_TIMEOUT_S };
	socklen_t len;
	const char *why;
	int fd;

	if (rswap_parse_hostport(hostport, RSWAP_DEFAULT_COORD_PORT, &ss, &len, &why)) {
		log_err("coordinator %s: %s", hostport, why);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		log_err("coordinator %s: cannot connect: %s", hostport, strerror(errno));
		close(fd);
		return -errno;
	}
	return fd;
}

/*
 * Send req, receive the reply; an Error reply is logged and -code returned.
 * keep: leave the connection open in *keep instead of closing it.
 */
static int coord_call(const struct tc_opts *o, Rswap__Envelope *req,
		      Rswap__Envelope **reply, int *keep)
{
	const char *why;
	int fd, ret;

	fd = coord_open(o->coord);
	if (fd < 0)
		return fd;
	if (o->have_key) {
		char awhy[300];
		bool poold = req->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTER;

		ret = rswap_auth_handshake_fd(fd, o->key,
					      poold ? RSWAP_AUTH_ROLE_POOLD : RSWAP_AUTH_ROLE_CLIENT,
					      poold ? o->as : o->id, awhy, sizeof(awhy));
		if (ret) {
			log_err("coordinator %s %s", o->coord, awhy);
			close(fd);
			return ret;
		}
	}
	req->version = RSWAP_PROTO_VERSION;
	req->seq = 1;
	ret = rswap_frame_send_fd(fd, req);
	if (!ret) {
		ret = rswap_frame_recv_fd(fd, reply, &why);
		if (ret)
			log_err("coordinator %s: no reply: %s (%s)", o->coord, why,
				strerror(-ret));
	} else {
		log_err("coordinator %s: cannot send: %s", o->coord, strerror(-ret));
	}
	if (keep && !ret)
		*keep = fd;
	else
		close(fd);
	if (ret)
		return ret;
	if ((*reply)->seq != req->seq) {
		log_err("coordinator %s: reply carries seq %llu, expected %llu",
			o->coord, (unsigned long long)(*reply)->seq,
			(unsigned long long)req->seq);
		rswap__envelope__free_unpacked(*reply, NULL);
		return -EPROTO;
	}
	if ((*reply)->body_case == RSWAP__ENVELOPE__BODY_ERROR) {
		const Rswap__Error *e = (*reply)->error;

		log_err("coordinator %s refused: %s (%s)", o->coord, e->reason,
			strerror(e->code > 0 ? e->code : EPROTO));
		ret = e->code > 0 ? -e->code : -EPROTO;
		rswap__envelope__free_unpacked(*reply, NULL);
		return ret;
	}
	return 0;
}

static int map_from_reply(const struct tc_opts *o, const Rswap__ChunkMap *m,
			  struct tc_map *map)
{
	uint64_t want;
	size_t i;

	if (!m->chunk_size || (m->chunk_size & (m->chunk_size - 1))) {
		log_err("chunk map: chunk size %llu is not a power of two",
			(unsigned long long)m->chunk_size);
		return -EPROTO;
	}
	want = m->size / m->chunk_size + !!(m->size % m->chunk_size);
	if (m->n_slots != want || m->n_slots > (1u << 20)) {
		log_err("chunk map: %zu slots for a pool of %llu bytes in chunks of "
			"%llu", m->n_slots, (unsigned long long)m->size,
			(unsigned long long)m->chunk_size);
		return -EPROTO;
	}
	map->chunk_size = m->chunk_size;
	map->size = m->size;
	map->nslots = (unsigned int)m->n_slots;
	map->slots = calloc(m->n_slots ? m->n_slots : 1, sizeof(*map->slots));
	if (!map->slots)
		return -ENOMEM;
	for (i = 0; i < m->n_slots; i++) {
		const Rswap__Slot *s = m->slots[i];
		size_t alen = strlen(s->poold_addr);

		if (s->index != i || !alen || alen >= sizeof(map->slots[i].poold_addr)) {
			log_err("chunk map: slot %zu is malformed (index %u, poold '%s')",
				i, s->index, s->poold_addr);
			return -EPROTO;
		}
		map->slots[i].index = s->index;
		map->slots[i].handle = s->handle;
		memcpy(map->slots[i].poold_addr, s->poold_addr, alen + 1);
	}
	(void)o;
	return 0;
}

int tc_coord_hello(const struct tc_opts *o, struct tc_map *map)
{
	Rswap__Envelope req = RSWAP__ENVELOPE__INIT, *reply;
	Rswap__ClientHello hello = RSWAP__CLIENT_HELLO__INIT;
	int ret;

	hello.client_id = (char *)o->id;
	hello.size = o->size;
	req.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	req.client_hello = &hello;
	ret = coord_call(o, &req, &reply, o->hold_coord_s ? &held_fd : NULL);
	if (ret)
		return ret;
	if (reply->body_case != RSWAP__ENVELOPE__BODY_CHUNK_MAP) {
		log_err("coordinator %s answered ClientHello with message %d",
			o->coord, reply->body_case);
		ret = -EPROTO;
	} else {
		ret = map_from_reply(o, reply->chunk_map, map);
	}
	rswap__envelope__free_unpacked(reply, NULL);
	return ret;
}

int tc_coord_release(const struct tc_opts *o, unsigned int *freed)
{
	Rswap__Envelope req = RSWAP__ENVELOPE__INIT, *reply;
	Rswap__ClientRelease rel = RSWAP__CLIENT_RELEASE__INIT;
	int ret;

	rel.client_id = (char *)o->id;
	req.body_case = RSWAP__ENVELOPE__BODY_CLIENT_RELEASE;
	req.client_release = &rel;
	ret = coord_call(o, &req, &reply, NULL);
	if (ret)
		return ret;
	if (reply->body_case != RSWAP__ENVELOPE__BODY_CLIENT_RELEASED) {
		log_err("coordinator %s answered ClientRelease with message %d",
			o->coord, reply->body_case);
		ret = -EPROTO;
	} else {
		*freed = reply->client_released->chunks_freed;
	}
	rswap__envelope__free_unpacked(reply, NULL);
	return ret;
}

int tc_coord_register(const struct tc_opts *o)
{
	Rswap__Envelope req = RSWAP__ENVELOPE__INIT, *reply;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;
	int ret;

	reg.listen_addr = (char *)o->as;
	reg.capacity = o->size;
	req.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
	req.poold_register = &reg;
	ret = coord_call(o, &req, &reply, NULL);
	if (ret)
		return ret;
	if (reply->body_case != RSWAP__ENVELOPE__BODY_POOLD_REGISTERED) {
		log_err("coordinator %s answered PooldRegister with message %d",
			o->coord, reply->body_case);
		ret = -EPROTO;
	}
	rswap__envelope__free_unpacked(reply, NULL);
	return ret;
}

/*
 * The next frame on the held session; a MoveChunk (a drain or rebalance
 * while we hold the id) is answered at once with a MoveDone that did not
 * switch, as the protocol asks of a client that cannot copy.
 */
static int recv_skipping_moves(const struct tc_opts *o, Rswap__Envelope **reply,
			       const char **why)
{
	Rswap__Envelope out = RSWAP__ENVELOPE__INIT;
	Rswap__MoveDone md = RSWAP__MOVE_DONE__INIT;
	int ret;

	for (;;) {
		ret = rswap_frame_recv_fd(held_fd, reply, why);
		if (ret || (*reply)->body_case != RSWAP__ENVELOPE__BODY_MOVE_CHUNK)
			return ret;
		log_info("coordinator %s: MoveChunk for slot %u refused: this client copies no chunks",
			 o->coord, (*reply)->move_chunk->slot);
		md.slot = (*reply)->move_chunk->slot;
		md.to_handle = (*reply)->move_chunk->to_handle;
		md.code = EOPNOTSUPP;
		md.reason = "rswap-testclient copies no chunks";
		out.version = RSWAP_PROTO_VERSION;
		out.seq = (*reply)->seq;
		out.body_case = RSWAP__ENVELOPE__BODY_MOVE_DONE;
		out.move_done = &md;
		rswap__envelope__free_unpacked(*reply, NULL);
		ret = rswap_frame_send_fd(held_fd, &out);
		if (ret)
			return ret;
	}
}

int tc_coord_hold(const struct tc_opts *o)
{
	Rswap__Envelope req = RSWAP__ENVELOPE__INIT, *reply;
	Rswap__ClientHeartbeat hb = RSWAP__CLIENT_HEARTBEAT__INIT;
	const char *why;
	unsigned int i;
	int ret = 0;

	if (held_fd < 0)
		return -ENOTCONN;
	log_info("holding client id %s at coordinator %s for %u s (a heartbeat a second)",
		 o->id, o->coord, o->hold_coord_s);
	req.version = RSWAP_PROTO_VERSION;
	req.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT;
	req.client_heartbeat = &hb;
	for (i = 0; i < o->hold_coord_s && !ret; i++) {
		req.seq = 100 + i;
		ret = rswap_frame_send_fd(held_fd, &req);
		if (!ret)
			ret = recv_skipping_moves(o, &reply, &why);
		if (ret) {
			log_err("coordinator %s: session lost while holding: %s",
				o->coord, strerror(-ret));
			break;
		}
		if (reply->body_case != RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT ||
		    reply->seq != req.seq) {
			log_err("coordinator %s answered ClientHeartbeat with message %d seq %llu",
				o->coord, reply->body_case,
				(unsigned long long)reply->seq);
			ret = -EPROTO;
		}
		rswap__envelope__free_unpacked(reply, NULL);
		if (!ret)
			sleep(1);
	}
	close(held_fd);
	held_fd = -1;
	return ret;
}
