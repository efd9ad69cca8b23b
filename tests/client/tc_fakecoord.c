// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * fake-coord mode: play the coordinator towards one real poold and drive
 * it through what a real coordinator rarely does — fill its capacity,
 * free unknown and duplicate chunks, send a malformed command, refuse its
 * chunk size and its registration — checking every reply and that it reconnects and re-registers
 * the chunks it holds each time.
 */
#include "testclient.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/time.h>

#include "rswap.pb-c.h"
#include "rswap_frame.h"
#include "rswap_util.h"

#define FAKE_CHUNK	(16ull << 20)
#define FAKE_WAIT_MS	30000
#define FAKE_MAX_HELD	64

struct fake {
	int lfd, fd;
	uint64_t seq;
	uint64_t capacity;
	unsigned int nheld;
	uint64_t held[FAKE_MAX_HELD];
};

static int fake_accept(struct fake *f)
{
	struct pollfd pfd = { .fd = f->lfd, .events = POLLIN };
	struct timeval tv = { .tv_sec = FAKE_WAIT_MS / 1000 };

	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (poll(&pfd, 1, FAKE_WAIT_MS) != 1) {
		log_err("fake-coord: poold did not (re)connect within %d ms", FAKE_WAIT_MS);
		return -ETIMEDOUT;
	}
	f->fd = accept(f->lfd, NULL, NULL);
	if (f->fd < 0)
		return -errno;
	setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return 0;
}

/* Next frame that is not a Heartbeat; -ECONNRESET when poold hangs up. */
static int fake_recv(struct fake *f, Rswap__Envelope **env)
{
	const char *why;
	int ret;

	for (;;) {
		ret = rswap_frame_recv_fd(f->fd, env, &why);
		if (ret)
			return ret;
		if ((*env)->body_case != RSWAP__ENVELOPE__BODY_HEARTBEAT)
			return 0;
		rswap__envelope__free_unpacked(*env, NULL);
	}
}

static int fake_send(struct fake *f, Rswap__Envelope *env)
{
	env->version = RSWAP_PROTO_VERSION;
	env->seq = ++f->seq;
	return rswap_frame_send_fd(f->fd, env);
}

/* Accept, expect a PooldRegister holding `held` chunks, answer with cs. */
static int fake_register(struct fake *f, unsigned int held, uint64_t cs)
{
	Rswap__Envelope *env, out = RSWAP__ENVELOPE__INIT;
	Rswap__PooldRegistered reg = RSWAP__POOLD_REGISTERED__INIT;
	const Rswap__PooldRegister *r;
	int ret;

	ret = fake_accept(f);
	if (!ret)
		ret = fake_recv(f, &env);
	if (ret)
		return ret;
	if (env->body_case != RSWAP__ENVELOPE__BODY_POOLD_REGISTER) {
		log_err("fake-coord: first frame is message %d, not PooldRegister",
			env->body_case);
		rswap__envelope__free_unpacked(env, NULL);
		return -EPROTO;
	}
	r = env->poold_register;
	f->capacity = r->capacity;
	log_info("fake-coord: poold %s registers: capacity %llu, %zu chunks held",
		 r->listen_addr, (unsigned long long)r->capacity, r->n_chunks);
	ret = r->n_chunks == held && (!held || r->chunk_size == FAKE_CHUNK) ? 0 : -EPROTO;
	if (ret)
		log_err("fake-coord: expected %u held chunks of %llu bytes, got %zu of %llu",
			held, FAKE_CHUNK, r->n_chunks, (unsigned long long)r->chunk_size);
	reg.chunk_size = cs;
	reg.heartbeat_ms = 100;
	out.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTERED;
	out.poold_registered = &reg;
	out.version = RSWAP_PROTO_VERSION;
	out.seq = env->seq;		/* a reply echoes the request's seq */
	rswap__envelope__free_unpacked(env, NULL);
	return ret ? ret : rswap_frame_send_fd(f->fd, &out);
}

/* Accept, refuse the PooldRegister with an Error; poold must hang up. */
static int fake_refuse_register(struct fake *f)
{
	Rswap__Envelope *env, out = RSWAP__ENVELOPE__INIT;
	Rswap__Error err = RSWAP__ERROR__INIT;
	int ret;

	ret = fake_accept(f);
	if (!ret)
		ret = fake_recv(f, &env);
	if (ret)
		return ret;
	err.code = EEXIST;
	err.reason = "fake-coord refuses this registration";
	out.body_case = RSWAP__ENVELOPE__BODY_ERROR;
	out.error = &err;
	out.version = RSWAP_PROTO_VERSION;
	out.seq = env->seq;
	rswap__envelope__free_unpacked(env, NULL);
	ret = rswap_frame_send_fd(f->fd, &out);
	if (ret)
		return ret;
	ret = fake_recv(f, &env);
	if (ret == -ECONNRESET) {
		log_info("fake-coord: poold hung up on a refused registration");
		return 0;
	}
	if (!ret)
		rswap__envelope__free_unpacked(env, NULL);
	log_err("fake-coord: poold carried on after its registration was refused");
	return -EPROTO;
}

/* Send one command, receive its reply; check the seq and the expected body. */
static int fake_call(struct fake *f, Rswap__Envelope *cmd, int want_body,
		     int want_errno, uint64_t *handle)
{
	Rswap__Envelope *env;
	int ret;

	ret = fake_send(f, cmd);
	if (!ret)
		ret = fake_recv(f, &env);
	if (ret)
		return ret;
	ret = -EPROTO;
	if (env->seq != f->seq)
		log_err("fake-coord: reply has seq %llu, request had %llu",
			(unsigned long long)env->seq, (unsigned long long)f->seq);
	else if ((int)env->body_case != want_body)
		log_err("fake-coord: reply is message %d, expected %d%s%s", env->body_case,
			want_body, env->error ? ": " : "", env->error ? env->error->reason : "");
	else if (want_errno && env->error->code != want_errno)
		log_err("fake-coord: error code %d, expected %d (%s)", env->error->code,
			want_errno, env->error->reason);
	else
		ret = 0;
	if (!ret && handle && env->body_case == RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE)
		*handle = env->chunk_alloc_done->handle;
	if (!ret && env->body_case == RSWAP__ENVELOPE__BODY_ERROR)
		log_info("fake-coord: refused as expected: %s", env->error->reason);
	rswap__envelope__free_unpacked(env, NULL);
	return ret;
}

static int fake_alloc(struct fake *f, const char *id, uint32_t slot, int want_errno,
		      uint64_t *handle)
{
	Rswap__Envelope cmd = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkAlloc a = RSWAP__CHUNK_ALLOC__INIT;

	a.client_id = (char *)id;
	a.slot = slot;
	a.client_size = FAKE_CHUNK * FAKE_MAX_HELD;
	cmd.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC;
	cmd.chunk_alloc = &a;
	return fake_call(f, &cmd, want_errno ? RSWAP__ENVELOPE__BODY_ERROR :
			 RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE, want_errno, handle);
}

static int fake_free(struct fake *f, uint64_t handle, int want_errno)
{
	Rswap__Envelope cmd = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkFree c = RSWAP__CHUNK_FREE__INIT;

	c.handle = handle;
	cmd.body_case = RSWAP__ENVELOPE__BODY_CHUNK_FREE;
	cmd.chunk_free = &c;
	return fake_call(f, &cmd, want_errno ? RSWAP__ENVELOPE__BODY_ERROR :
			 RSWAP__ENVELOPE__BODY_CHUNK_FREE_DONE, want_errno, NULL);
}

/* poold must hang up on a malformed command rather than answer it. */
static int fake_expect_hangup(struct fake *f)
{
	Rswap__Envelope cmd = RSWAP__ENVELOPE__INIT, *env;
	Rswap__ChunkAlloc a = RSWAP__CHUNK_ALLOC__INIT;
	int ret;

	a.client_id = "bad id";		/* a space: not a client id */
	a.slot = 0;
	a.client_size = FAKE_CHUNK;
	cmd.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC;
	cmd.chunk_alloc = &a;
	ret = fake_send(f, &cmd);
	if (ret)
		return ret;
	ret = fake_recv(f, &env);
	if (ret == -ECONNRESET) {
		log_info("fake-coord: poold hung up on a malformed ChunkAlloc");
		return 0;
	}
	if (!ret)
		rswap__envelope__free_unpacked(env, NULL);
	log_err("fake-coord: poold answered a malformed ChunkAlloc instead of hanging up");
	return -EPROTO;
}

static int fake_script(struct fake *f)
{
	Rswap__Envelope *env;
	unsigned int cap, i;
	uint64_t h;
	int ret;

	ret = fake_register(f, 0, FAKE_CHUNK);
	if (ret)
		return ret;
	cap = (unsigned int)(f->capacity / FAKE_CHUNK);
	if (cap == 0 || cap >= FAKE_MAX_HELD) {
		log_err("fake-coord: start the poold with a capacity of 16M to %lluM",
			(FAKE_MAX_HELD - 1) * (FAKE_CHUNK >> 20));
		return -EINVAL;
	}
	for (i = 0; i < cap; i++) {
		ret = fake_alloc(f, "fake", i, 0, &f->held[f->nheld]);
		if (ret)
			return ret;
		f->nheld++;
	}
	log_info("fake-coord: %u chunks allocated, the whole capacity", cap);
	if ((ret = fake_alloc(f, "fake", cap, ENOSPC, NULL)) ||
	    (ret = fake_alloc(f, "fake", 0, EEXIST, NULL)) ||
	    (ret = fake_free(f, 0x5eed, ENOENT)) ||
	    (ret = fake_free(f, f->held[0], 0)) ||
	    (ret = fake_free(f, f->held[0], ENOENT)) ||
	    (ret = fake_alloc(f, "fake", 0, 0, &h)))
		return ret;
	for (i = 0; i < f->nheld; i++) {
		if (h == f->held[i]) {
			log_err("fake-coord: handle %#llx was reused", (unsigned long long)h);
			return -EPROTO;
		}
	}
	f->held[0] = h;
	log_info("fake-coord: ENOSPC, EEXIST, ENOENT as expected; handles never reused");

	ret = fake_expect_hangup(f);
	if (!ret)
		ret = fake_register(f, f->nheld, 32ull << 20);	/* wrong chunk size */
	if (ret)
		return ret;
	ret = fake_recv(f, &env);
	if (!ret)
		rswap__envelope__free_unpacked(env, NULL);
	if (ret != -ECONNRESET) {
		log_err("fake-coord: poold accepted a chunk size it holds no chunks of");
		return -EPROTO;
	}
	log_info("fake-coord: poold refused a different chunk size and reconnected");
	ret = fake_refuse_register(f);
	if (!ret)
		ret = fake_register(f, f->nheld, FAKE_CHUNK);
	for (i = 0; !ret && i < f->nheld; i++)
		ret = fake_free(f, f->held[i], 0);
	if (!ret)
		log_info("fake-coord: poold re-registered its %u chunks each time; all freed",
			 f->nheld);
	return ret;
}

int tc_fake_coord(const struct tc_opts *o)
{
	struct fake f = { .lfd = -1, .fd = -1 };
	struct sockaddr_storage ss;
	socklen_t len;
	const char *why;
	int one = 1, ret;

	if (rswap_parse_hostport(o->as, 0, &ss, &len, &why)) {
		log_err("--as %s: %s", o->as, why);
		return -EINVAL;
	}
	f.lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f.lfd < 0)
		return -errno;
	setsockopt(f.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(f.lfd, (struct sockaddr *)&ss, len) || listen(f.lfd, 4)) {
		ret = -errno;
		log_err("fake-coord: cannot listen on %s: %s", o->as, strerror(errno));
		close(f.lfd);
		return ret;
	}
	log_info("fake-coord: listening on %s", o->as);
	ret = fake_script(&f);
	if (f.fd >= 0)
		close(f.fd);
	close(f.lfd);
	return ret;
}
