// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * End to end: a real rswap-coord on a free loopback port, fake poolds and
 * fake clients over TCP, rswap-admin run as a program.  The coordinator
 * runs --insecure here, so the fakes can be terse; test_coord_auth runs one
 * with a cluster key against an outsider's attacks.
 *
 *   test_coord_e2e RSWAP_COORD RSWAP_ADMIN LOGDIR
 *
 * Exit 0 pass, 1 fail.  The coordinator's log is LOGDIR/coord-N.log.
 */
#include "e2e.h"
#include "rswap_frame.h"
#include "rswap.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define MB		(1ull << 20)
#define CHUNK		(16 * MB)
#define HB_MS		500
#define TIMEOUT_MS	1000
#define CLIENT_TO_MS	1500	/* --client-timeout-ms: silent clients cut */

static const char *coord_bin, *admin_bin, *logdir;
static pid_t coord_pid;
static int coord_port, coord_runs;

/* ---- processes --------------------------------------------------------- */

/* Start rswap-coord on coord_port; false if it exited (port taken?). */
static bool coord_try_start(const char *grace_ms)
{
	char port[32], log[512];
	uint64_t t0;
	int fd, status;

	snprintf(port, sizeof(port), "127.0.0.1:%d", coord_port);
	snprintf(log, sizeof(log), "%s/coord-%d.log", logdir, ++coord_runs);
	coord_pid = fork();
	CHECK(coord_pid >= 0, "fork");
	if (!coord_pid) {
		char hb[16], to[16], cto[16];

		snprintf(hb, sizeof(hb), "%d", HB_MS);
		snprintf(to, sizeof(to), "%d", TIMEOUT_MS);
		snprintf(cto, sizeof(cto), "%d", CLIENT_TO_MS);
		if (!freopen(log, "w", stderr))
			_exit(127);
		execl(coord_bin, coord_bin, "--listen", port, "--chunk-size", "16M",
		      "--heartbeat-ms", hb, "--timeout-ms", to, "--restart-grace-ms", grace_ms,
		      "--hello-timeout-ms", "1500", "--client-timeout-ms", cto, "-v",
		      "--insecure", (char *)NULL);
		_exit(127);
	}
	for (t0 = now_ms(); now_ms() - t0 < 10000; usleep(20000)) {
		if (waitpid(coord_pid, &status, WNOHANG) == coord_pid) {
			fprintf(stderr, "    rswap-coord exited at start (status 0x%x); see %s\n",
				status, log);
			coord_pid = 0;
			return false;
		}
		fd = tcp_connect(coord_port);
		if (fd >= 0) {
			close(fd);
			return true;
		}
	}
	CHECK(0, "rswap-coord did not start listening; see %s", log);
	return false;
}

/* First start: on a free port, another one if it was taken meanwhile. */
static void coord_start_anywhere(void)
{
	int tries;

	for (tries = 0; tries < 5; tries++) {
		coord_port = free_port();
		if (coord_try_start("0"))
			return;
	}
	CHECK(0, "rswap-coord could not start on 5 free ports");
}

/* Restart on the same port (the poolds must find it again). */
static void coord_start(const char *grace_ms)
{
	CHECK(coord_try_start(grace_ms), "rswap-coord did not restart on port %d", coord_port);
}

/* SIGTERM must give a clean exit (under ASan: no leak reports). */
static void coord_stop(void)
{
	int status;

	CHECK(!kill(coord_pid, SIGTERM), "kill");
	CHECK(waitpid(coord_pid, &status, 0) == coord_pid, "waitpid");
	coord_pid = 0;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "rswap-coord did not exit cleanly on SIGTERM (status 0x%x); see %s/coord-%d.log",
	      status, logdir, coord_runs);
}

static void kill_coord_at_exit(void)
{
	if (coord_pid > 0)
		kill(coord_pid, SIGKILL);
}

/* ---- fake poolds ------------------------------------------------------- */

enum fmode { FM_OK, FM_REFUSE, FM_SILENT, FM_DROP };

struct held {
	uint64_t handle, size;
	char id[32];
	uint32_t slot;
	uint64_t born;		/* now_ms() at allocation; 0: age unknown */
};

struct fpoold {
	int fd;
	char addr[32];
	uint64_t capacity;
	enum fmode mode;
	bool beat;
	struct held held[64];
	int nheld;
	uint64_t next_handle;
	uint64_t silent_seq[64];	/* ChunkAllocs left unanswered */
	struct held silent[64];
	int nsilent;
	int frees;
};

#define NPOOLDS 8
static struct fpoold *fps[NPOOLDS];

static void fp_unlist(struct fpoold *fp)
{
	int i;

	for (i = 0; i < NPOOLDS; i++)
		if (fps[i] == fp)
			fps[i] = NULL;
}

static void fp_list(struct fpoold *fp)
{
	int i;

	for (i = 0; i < NPOOLDS; i++)
		if (!fps[i]) {
			fps[i] = fp;
			return;
		}
	CHECK(0, "too many fake poolds");
}

/* Connect and register with everything fp holds.  Returns the reply. */
static Rswap__Envelope *fp_register(struct fpoold *fp, uint64_t chunk_size)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;
	Rswap__HeldChunk hc[64], *hcp[64];
	int i;

	fp->fd = tcp_connect(coord_port);
	CHECK(fp->fd >= 0, "connect");
	for (i = 0; i < fp->nheld; i++) {
		rswap__held_chunk__init(&hc[i]);
		hc[i].handle = fp->held[i].handle;
		hc[i].client_id = fp->held[i].id;
		hc[i].slot = fp->held[i].slot;
		hc[i].client_size = fp->held[i].size;
		hc[i].age_ms = fp->held[i].born ? now_ms() - fp->held[i].born + 1 : 0;
		hcp[i] = &hc[i];
	}
	reg.listen_addr = fp->addr;
	reg.capacity = fp->capacity;
	reg.chunk_size = fp->nheld ? chunk_size : 0;
	reg.n_chunks = (size_t)fp->nheld;
	reg.chunks = hcp;
	e.seq = 1;
	e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
	e.poold_register = &reg;
	send_env(fp->fd, &e);
	r = recv_env(fp->fd);
	if (r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED) {
		CHECK(r->poold_registered->chunk_size == CHUNK, "chunk size");
		CHECK(r->poold_registered->heartbeat_ms == HB_MS, "heartbeat");
		fp->beat = true;
		fp_list(fp);
	}
	return r;
}

static struct fpoold *fp_new(int n, uint64_t capacity)
{
	struct fpoold *fp = calloc(1, sizeof(*fp));
	Rswap__Envelope *r;

	snprintf(fp->addr, sizeof(fp->addr), "127.0.0.1:%d", 19000 + n);
	fp->capacity = capacity;
	fp->next_handle = (uint64_t)n * 1000 + 1;
	r = fp_register(fp, CHUNK);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED,
	      "poold %s not registered", fp->addr);
	rswap__envelope__free_unpacked(r, NULL);
	return fp;
}

static void fp_disconnect(struct fpoold *fp)
{
	fp_unlist(fp);
	fp->beat = false;
	close(fp->fd);
	fp->fd = -1;
}

static void fp_reply(struct fpoold *fp, uint64_t seq, Rswap__Envelope *e)
{
	e->seq = seq;
	send_env(fp->fd, e);
}

static void fp_alloc_done(struct fpoold *fp, uint64_t seq, const struct held *h)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkAllocDone d = RSWAP__CHUNK_ALLOC_DONE__INIT;

	CHECK(fp->nheld < 64, "fake poold full");
	fp->held[fp->nheld++] = *h;
	d.handle = h->handle;
	e.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE;
	e.chunk_alloc_done = &d;
	fp_reply(fp, seq, &e);
}

static void fp_error(struct fpoold *fp, uint64_t seq, int code, const char *why)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__Error err = RSWAP__ERROR__INIT;

	err.code = code;
	err.reason = (char *)why;
	e.body_case = RSWAP__ENVELOPE__BODY_ERROR;
	e.error = &err;
	fp_reply(fp, seq, &e);
}

static void fp_serve_one(struct fpoold *fp)
{
	Rswap__Envelope *e = NULL, r = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkFreeDone fd = RSWAP__CHUNK_FREE_DONE__INIT;
	const char *why;
	struct held h;
	int i, ret;

	ret = rswap_frame_recv_fd(fp->fd, &e, &why);
	if (ret) {
		/* The coordinator closed us (a test provoked it). */
		fp_disconnect(fp);
		return;
	}
	switch (e->body_case) {
	case RSWAP__ENVELOPE__BODY_CHUNK_ALLOC:
		memset(&h, 0, sizeof(h));
		h.handle = fp->next_handle++;
		snprintf(h.id, sizeof(h.id), "%s", e->chunk_alloc->client_id);
		h.slot = e->chunk_alloc->slot;
		h.size = e->chunk_alloc->client_size;
		h.born = now_ms();
		if (fp->mode == FM_OK) {
			fp_alloc_done(fp, e->seq, &h);
		} else if (fp->mode == FM_REFUSE) {
			fp_error(fp, e->seq, ENOMEM, "fake poold out of memory");
		} else if (fp->mode == FM_SILENT) {
			fp->silent_seq[fp->nsilent] = e->seq;
			fp->silent[fp->nsilent++] = h;
		} else {
			fp_disconnect(fp);
		}
		break;
	case RSWAP__ENVELOPE__BODY_CHUNK_FREE:
		for (i = 0; i < fp->nheld; i++)
			if (fp->held[i].handle == e->chunk_free->handle)
				break;
		if (i == fp->nheld) {
			fp_error(fp, e->seq, ENOENT, "no such handle");
			break;
		}
		fp->held[i] = fp->held[--fp->nheld];
		fp->frees++;
		fd.handle = e->chunk_free->handle;
		r.body_case = RSWAP__ENVELOPE__BODY_CHUNK_FREE_DONE;
		r.chunk_free_done = &fd;
		fp_reply(fp, e->seq, &r);
		break;
	default:
		CHECK(0, "fake poold %s got unexpected message %d", fp->addr, e->body_case);
	}
	rswap__envelope__free_unpacked(e, NULL);
}

static void heartbeat_all(void)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__Heartbeat hb = RSWAP__HEARTBEAT__INIT;
	int i;

	e.body_case = RSWAP__ENVELOPE__BODY_HEARTBEAT;
	e.heartbeat = &hb;
	for (i = 0; i < NPOOLDS; i++) {
		if (!fps[i] || !fps[i]->beat)
			continue;
		hb.chunks_held = (uint32_t)fps[i]->nheld;
		send_env(fps[i]->fd, &e);
	}
}

/*
 * Serve the fake poolds (and beat) until fd has a frame or ms pass.
 * Returns the frame from fd, or NULL when fd < 0 or on timeout.
 */
static Rswap__Envelope *pump(int fd, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms, last_beat = 0;

	for (;;) {
		struct pollfd pfd[NPOOLDS + 1];
		struct fpoold *who[NPOOLDS + 1];
		int n = 0, i, left = (int)(end - now_ms());

		if (now_ms() >= end)
			return NULL;
		if (now_ms() - last_beat >= 100) {
			heartbeat_all();
			last_beat = now_ms();
		}
		if (fd >= 0) {
			pfd[n].fd = fd;
			pfd[n].events = POLLIN;
			who[n++] = NULL;
		}
		for (i = 0; i < NPOOLDS; i++) {
			if (!fps[i])
				continue;
			pfd[n].fd = fps[i]->fd;
			pfd[n].events = POLLIN;
			who[n++] = fps[i];
		}
		if (poll(pfd, (nfds_t)n, left < 100 ? left : 100) <= 0)
			continue;
		for (i = 0; i < n; i++) {
			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (!who[i])
				return recv_env(fd);
			fp_serve_one(who[i]);
		}
	}
}

/* ---- client and admin requests ----------------------------------------- */

static Rswap__Envelope *hello_on_r(int fd, const char *id, uint64_t size,
				   uint32_t replicas)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;

	h.client_id = (char *)id;
	h.size = size;
	h.replicas = replicas;
	e.seq = 77;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	send_env(fd, &e);
	r = pump(fd, 15000);
	CHECK(r, "no reply to ClientHello %s", id);
	CHECK(r->seq == 77, "reply seq %" PRIu64, r->seq);
	return r;
}

static Rswap__Envelope *hello_on(int fd, const char *id, uint64_t size)
{
	return hello_on_r(fd, id, size, 0);
}

/*
 * A reconnect hello on fd with the client's report: its epoch, the handle
 * it runs on per slot (from map), the move it copies (slot, handle) if
 * mv_handle, one lost slot if lost >= 0.
 */
static Rswap__Envelope *hello_report(int fd, const char *id, uint64_t size, uint64_t epoch,
				     const uint64_t *handles, size_t n, uint32_t mv_slot,
				     uint64_t mv_handle, int lost)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;
	Rswap__MoveState ms = RSWAP__MOVE_STATE__INIT;
	uint32_t lost_slot = (uint32_t)lost;

	h.client_id = (char *)id;
	h.size = size;
	h.reconnect = true;
	h.epoch = epoch;
	h.handles = (uint64_t *)handles;
	h.n_handles = n;
	if (mv_handle) {
		ms.slot = mv_slot;
		ms.to_handle = mv_handle;
		ms.copied = 4096;
		h.moving = &ms;
	}
	if (lost >= 0) {
		h.lost_slots = &lost_slot;
		h.n_lost_slots = 1;
	}
	e.seq = 79;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	send_env(fd, &e);
	r = pump(fd, 15000);
	CHECK(r && r->seq == 79, "no reply to a reporting ClientHello %s", id);
	return r;
}

/* A reconnecting client's hello (no report) on a new connection: never allocates. */
static Rswap__Envelope *hello_again(const char *id, uint64_t size)
{
	int fd = tcp_connect(coord_port);
	Rswap__Envelope *r;

	CHECK(fd >= 0, "connect");
	r = hello_report(fd, id, size, 0, NULL, 0, 0, 0, -1);
	close(fd);
	return r;
}

/* The handle of every slot of m, by index, into h[]; returns how many. */
static size_t map_handles(const Rswap__ChunkMap *m, uint64_t *h, size_t max)
{
	size_t i;

	for (i = 0; i < m->n_slots && i < max; i++) {
		CHECK(m->slots[i]->index == i, "map has a hole at slot %zu", i);
		h[i] = m->slots[i]->handle;
	}
	return i;
}

static Rswap__Envelope *hello(const char *id, uint64_t size)
{
	int fd = tcp_connect(coord_port);
	Rswap__Envelope *r;

	CHECK(fd >= 0, "connect");
	r = hello_on(fd, id, size);
	close(fd);
	return r;
}

static Rswap__Envelope *release_on(int fd, const char *id)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__ClientRelease rel = RSWAP__CLIENT_RELEASE__INIT;

	rel.client_id = (char *)id;
	e.seq = 5;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_RELEASE;
	e.client_release = &rel;
	send_env(fd, &e);
	r = pump(fd, 15000);
	CHECK(r, "no reply to ClientRelease %s", id);
	CHECK(r->seq == 5, "reply seq %" PRIu64, r->seq);
	return r;
}

static Rswap__Envelope *release(const char *id)
{
	int fd = tcp_connect(coord_port);
	Rswap__Envelope *r;

	CHECK(fd >= 0, "connect");
	r = release_on(fd, id);
	close(fd);
	return r;
}

/* ClientHeartbeat on fd; the coordinator must echo it with the same seq. */
static void client_beat(int fd, uint64_t seq)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__ClientHeartbeat hb = RSWAP__CLIENT_HEARTBEAT__INIT;

	e.seq = seq;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT;
	e.client_heartbeat = &hb;
	send_env(fd, &e);
	r = pump(fd, 2000);
	CHECK(r && r->body_case == RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT &&
	      r->seq == seq, "no ClientHeartbeat echo for seq %" PRIu64, seq);
	rswap__envelope__free_unpacked(r, NULL);
}

static void expect_error(Rswap__Envelope *r, int code, const char *needle)
{
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_ERROR, "expected Error %d, got message %d",
	      code, r->body_case);
	CHECK(r->error->code == code, "Error code %d, want %d (%s)", r->error->code, code,
	      r->error->reason);
	CHECK(!needle || strstr(r->error->reason, needle), "'%s' not in '%s'", needle,
	      r->error->reason);
	fprintf(stderr, "    refused as expected: %s\n", r->error->reason);
	rswap__envelope__free_unpacked(r, NULL);
}

static Rswap__ClusterState *admin_list(Rswap__Envelope **keep)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__AdminList l = RSWAP__ADMIN_LIST__INIT;
	int fd = tcp_connect(coord_port);

	CHECK(fd >= 0, "connect");
	e.seq = 9;
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_LIST;
	e.admin_list = &l;
	send_env(fd, &e);
	r = pump(fd, 5000);
	CHECK(r && r->body_case == RSWAP__ENVELOPE__BODY_CLUSTER_STATE, "AdminList");
	close(fd);
	*keep = r;
	return r->cluster_state;
}

static const Rswap__PooldInfo *find_poold(const Rswap__ClusterState *cs, const char *addr)
{
	size_t i;

	for (i = 0; i < cs->n_poolds; i++)
		if (!strcmp(cs->poolds[i]->listen_addr, addr))
			return cs->poolds[i];
	return NULL;
}

static uint64_t used_total(void)
{
	Rswap__Envelope *keep;
	uint64_t u = admin_list(&keep)->used_total;

	rswap__envelope__free_unpacked(keep, NULL);
	return u;
}

static Rswap__ChunkMap *status_map(const char *id, Rswap__Envelope **keep)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__AdminStatus s = RSWAP__ADMIN_STATUS__INIT;
	int fd = tcp_connect(coord_port);

	CHECK(fd >= 0, "connect");
	s.client_id = (char *)id;
	e.seq = 10;
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_STATUS;
	e.admin_status = &s;
	send_env(fd, &e);
	r = pump(fd, 5000);
	CHECK(r, "no reply to AdminStatus");
	close(fd);
	*keep = r;
	if (r->body_case != RSWAP__ENVELOPE__BODY_CLIENT_INFO)
		return NULL;
	return r->client_info->map;
}

/* A map as "slot:poold:handle;..." for comparisons. */
static void map_str(const Rswap__ChunkMap *m, char *buf, size_t len)
{
	size_t i, pos = 0;

	buf[0] = '\0';
	for (i = 0; i < m->n_slots && pos < len; i++)
		pos += (size_t)snprintf(buf + pos, len - pos, "%u:%s:%" PRIu64 ";",
					m->slots[i]->index, m->slots[i]->poold_addr,
					m->slots[i]->handle);
}

static int slots_on(const Rswap__ChunkMap *m, const char *addr)
{
	size_t i;
	int n = 0;

	for (i = 0; i < m->n_slots; i++)
		n += !strcmp(m->slots[i]->poold_addr, addr);
	return n;
}

/* ---- the scenarios ----------------------------------------------------- */

static void test_command_lines(void)
{
	step("bad command lines exit 2 with one clear line");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:9400", "the cluster key is required");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:9400 --key-file /nonexistent",
			   "cannot open key file /nonexistent");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:9400 --chunk-size 3M", "power of two");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:9400 --chunk-size 24M", "power of two");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:9400 --chunk-size lots", "not a size");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:9400 --chunk-size 0", "not a size");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:0", "port");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:70000", "port");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:http", "port");
	expect_usage_error(coord_bin, "--listen [::1", "'['");
	expect_usage_error(coord_bin, "--listen :9400", "host");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:9400 --heartbeat-ms 0", "milliseconds");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:9400 --heartbeat-ms 1s", "milliseconds");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:9400 --timeout-ms 99999999", "milliseconds");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:9400 --client-timeout-ms 100",
			   "milliseconds");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:9400 --frobnicate", "unknown option");
	expect_usage_error(coord_bin, "--listen", "needs a value");
	expect_usage_error(coord_bin, "", "--listen");
	expect_usage_error(coord_bin, "--listen 127.0.0.1:9400 extra", "unexpected argument");
	expect_usage_error(admin_bin, "list", "--coord");
	expect_usage_error(admin_bin, "--coord 127.0.0.1:0 list", "port");
	expect_usage_error(admin_bin, "--coord 127.0.0.1:1 --timeout 0 list", "seconds");
	expect_usage_error(admin_bin, "--coord 127.0.0.1:1", "missing command");
	expect_usage_error(admin_bin, "--coord 127.0.0.1:1 frob", "unknown command");
	expect_usage_error(admin_bin, "--coord 127.0.0.1:1 status", "CLIENT_ID");
	expect_usage_error(admin_bin, "--coord 127.0.0.1:1 status 'a b'", "invalid");
	expect_usage_error(admin_bin, "--coord 127.0.0.1:1 status 0123456789012345678901234567890123",
			   "invalid");
	expect_usage_error(admin_bin, "--coord 127.0.0.1:1 list more", "no argument");
}

static struct fpoold *A, *B, *C;
static char c1_map[4096];

static void test_spread(void)
{
	Rswap__Envelope *r, *keep;
	Rswap__ClusterState *cs;
	size_t i;

	step("three poolds; a pool bigger than any one of them spreads over all");
	A = fp_new(1, 64 * MB);	/* 4 chunks */
	B = fp_new(2, 32 * MB);	/* 2 chunks */
	C = fp_new(3, 48 * MB);	/* 3 chunks */
	r = hello("c1", 96 * MB);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "c1 hello got message %d (%s)",
	      r->body_case, r->body_case == RSWAP__ENVELOPE__BODY_ERROR ? r->error->reason : "");
	CHECK(r->chunk_map->n_slots == 6 && r->chunk_map->chunk_size == CHUNK &&
	      r->chunk_map->size == 96 * MB, "c1 map shape");
	for (i = 0; i < 6; i++)
		CHECK(r->chunk_map->slots[i]->index == i, "slot order");
	/* Lowest fill fraction first, ties by name: A B C A C A. */
	CHECK(slots_on(r->chunk_map, A->addr) == 3 && slots_on(r->chunk_map, B->addr) == 1 &&
	      slots_on(r->chunk_map, C->addr) == 2, "spread A%d B%d C%d",
	      slots_on(r->chunk_map, A->addr), slots_on(r->chunk_map, B->addr),
	      slots_on(r->chunk_map, C->addr));
	CHECK(A->nheld == 3 && B->nheld == 1 && C->nheld == 2, "fake poolds hold what the map says");
	map_str(r->chunk_map, c1_map, sizeof(c1_map));
	rswap__envelope__free_unpacked(r, NULL);

	step("same id and size again: the same map; another size: EEXIST");
	r = hello("c1", 96 * MB);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "second hello");
	{
		char again[4096];

		map_str(r->chunk_map, again, sizeof(again));
		CHECK(!strcmp(again, c1_map), "map changed: %s vs %s", again, c1_map);
	}
	rswap__envelope__free_unpacked(r, NULL);
	expect_error(hello("c1", 32 * MB), EEXIST, "already has a 96M pool");
	expect_error(hello("bad id", 32 * MB), EINVAL, "client id");
	expect_error(hello("c0", 0), EINVAL, "0 bytes");

	step("more than the cluster has: ENOSPC and nothing allocated");
	expect_error(hello("c2", 64 * MB), ENOSPC, "need 4 chunks of 16M, cluster has 3 free");
	cs = admin_list(&keep);
	CHECK(cs->used_total == 96 * MB, "used %" PRIu64, cs->used_total);
	CHECK(cs->n_clients == 1, "clients %zu", cs->n_clients);
	CHECK(find_poold(cs, A->addr)->chunks_used == 3, "A used");
	rswap__envelope__free_unpacked(keep, NULL);
	CHECK(A->nheld + B->nheld + C->nheld == 6, "no stray allocation on the poolds");
}

/* The c1 map is the same as at allocation, and the poolds still hold it. */
static void expect_c1_intact(void)
{
	Rswap__Envelope *keep;
	Rswap__ChunkMap *m;
	char now[4096];

	m = status_map("c1", &keep);
	CHECK(m, "c1 gone");
	map_str(m, now, sizeof(now));
	CHECK(!strcmp(now, c1_map), "c1 map changed: %s", now);
	rswap__envelope__free_unpacked(keep, NULL);
	CHECK(A->nheld + B->nheld + C->nheld == 6, "poolds hold %d chunks, not 6",
	      A->nheld + B->nheld + C->nheld);
}

/* Session of c1: "" if none, else the owner's ADDR:PORT (copied). */
static void c1_session(char *buf, size_t len)
{
	Rswap__Envelope *keep;

	CHECK(status_map("c1", &keep), "c1 gone");
	snprintf(buf, len, "%s", keep->client_info->session);
	rswap__envelope__free_unpacked(keep, NULL);
}

static void test_client_sessions(void)
{
	struct sockaddr_in me;
	socklen_t melen = sizeof(me);
	char want[256], got[4096], sess[64];
	Rswap__Envelope *r;
	int fd1, fd2, i;

	step("a live session owns its id: a second host with it is refused (EBUSY)");
	fd1 = tcp_connect(coord_port);
	CHECK(fd1 >= 0, "connect");
	r = hello_on(fd1, "c1", 96 * MB);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "owner's hello");
	map_str(r->chunk_map, got, sizeof(got));
	rswap__envelope__free_unpacked(r, NULL);
	CHECK(!strcmp(got, c1_map), "owner got another map: %s", got);
	CHECK(!getsockname(fd1, (struct sockaddr *)&me, &melen), "getsockname");
	snprintf(sess, sizeof(sess), "127.0.0.1:%d", ntohs(me.sin_port));
	snprintf(want, sizeof(want), "client id \"c1\" is in use by a live session from %s; give each host a unique client_id",
		 sess);
	expect_error(hello("c1", 96 * MB), EBUSY, want);
	expect_error(hello("c1", 32 * MB), EBUSY, want);
	c1_session(got, sizeof(got));
	CHECK(!strcmp(got, sess), "AdminStatus session '%s', want '%s'", got, sess);

	step("ClientRelease for another session's id is refused; nothing is freed");
	expect_error(release("c1"), EBUSY, want);
	expect_c1_intact();

	step("one connection serves one id: hello/release for another id refused");
	expect_error(hello_on(fd1, "c9", 16 * MB), EPERM, "one connection serves one client id");
	expect_error(release_on(fd1, "c6"), EPERM, "one connection serves one client id");
	CHECK(!status_map("c9", &r), "c9 was created");
	rswap__envelope__free_unpacked(r, NULL);

	step("heartbeats keep the session past --client-timeout-ms");
	for (i = 0; i < 8; i++) {
		client_beat(fd1, 1000 + (uint64_t)i);
		pump(-1, 300);
	}
	expect_error(hello("c1", 96 * MB), EBUSY, want);

	step("silence cuts the session off; the id is free and keeps its chunks");
	pump(-1, CLIENT_TO_MS + 600);
	expect_closed(fd1, NULL);
	c1_session(got, sizeof(got));
	CHECK(!got[0], "c1 still owned by '%s'", got);
	expect_c1_intact();
	r = hello("c1", 96 * MB);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "hello after the cut: %d",
	      r->body_case);
	map_str(r->chunk_map, got, sizeof(got));
	CHECK(!strcmp(got, c1_map), "map after the cut differs: %s", got);
	rswap__envelope__free_unpacked(r, NULL);

	step("the owner closing frees the id: the next host gets the same map");
	fd2 = tcp_connect(coord_port);
	r = hello_on(fd2, "c1", 96 * MB);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "fd2 hello");
	rswap__envelope__free_unpacked(r, NULL);
	expect_error(hello("c1", 96 * MB), EBUSY, "is in use by a live session");
	close(fd2);
	pump(-1, 200);
	r = hello("c1", 96 * MB);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "hello after close: %d",
	      r->body_case);
	map_str(r->chunk_map, got, sizeof(got));
	CHECK(!strcmp(got, c1_map), "map after close differs: %s", got);
	rswap__envelope__free_unpacked(r, NULL);

	step("a reconnecting client gets its map, and an unknown one EAGAIN, not chunks");
	r = hello_again("c1", 96 * MB);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "reconnect hello of c1: %d",
	      r->body_case);
	map_str(r->chunk_map, got, sizeof(got));
	CHECK(!strcmp(got, c1_map), "reconnect map differs: %s", got);
	rswap__envelope__free_unpacked(r, NULL);
	expect_error(hello_again("c8", 16 * MB), EAGAIN, "is not known (yet)");
	CHECK(!status_map("c8", &r), "a reconnect hello created c8");
	rswap__envelope__free_unpacked(r, NULL);
	expect_c1_intact();

	step("the owner releases on its own session; then it owns nothing");
	fd2 = tcp_connect(coord_port);
	r = hello_on(fd2, "c7", 16 * MB);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "c7 hello");
	rswap__envelope__free_unpacked(r, NULL);
	client_beat(fd2, 42);
	r = release_on(fd2, "c7");
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CLIENT_RELEASED &&
	      r->client_released->chunks_freed == 1, "c7 release on its session");
	rswap__envelope__free_unpacked(r, NULL);
	{
		Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
		Rswap__ClientHeartbeat hb = RSWAP__CLIENT_HEARTBEAT__INIT;

		e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT;
		e.client_heartbeat = &hb;
		send_env(fd2, &e);
		expect_closed(fd2, "owns no client id");
		fd2 = tcp_connect(coord_port);
		send_env(fd2, &e);
		expect_closed(fd2, "first message must be");
	}
	expect_c1_intact();
}

static void test_double_register(void)
{
	struct fpoold dup = { 0 };
	Rswap__Envelope *r;

	step("a second poold with a connected poold's address is refused");
	snprintf(dup.addr, sizeof(dup.addr), "%s", A->addr);
	dup.capacity = 64 * MB;
	r = fp_register(&dup, CHUNK);
	expect_error(r, EEXIST, "already connected");
	expect_closed(dup.fd, NULL);
}

static void test_bad_frames(void)
{
	static const uint8_t zero_len[4] = { 0, 0, 0, 0 };
	static const uint8_t huge_len[4] = { 0, 0x20, 0, 0 };
	static const uint8_t garbage[12] = { 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff,
					     0xff, 0xff, 0xff, 0xff };
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *keep;
	Rswap__AdminList l = RSWAP__ADMIN_LIST__INIT;
	Rswap__Heartbeat hb = RSWAP__HEARTBEAT__INIT;
	Rswap__ChunkAllocDone ad = RSWAP__CHUNK_ALLOC_DONE__INIT;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;
	Rswap__ChunkMap *m;
	struct fpoold *D;
	uint8_t buf[64];
	char now[4096];
	size_t len;
	int fd;

	step("malformed frames close only the offending connection");
	fd = tcp_connect(coord_port);
	send_raw(fd, zero_len, sizeof(zero_len));
	expect_closed(fd, "frame length 0");

	fd = tcp_connect(coord_port);
	send_raw(fd, huge_len, sizeof(huge_len));
	expect_closed(fd, "frame length 2097152 is out of range");

	fd = tcp_connect(coord_port);
	send_raw(fd, garbage, sizeof(garbage));
	expect_closed(fd, "not a valid");

	/* An Envelope with a version and nothing in it. */
	fd = tcp_connect(coord_port);
	e.version = RSWAP_PROTO_VERSION;
	len = rswap__envelope__pack(&e, buf + 4);
	buf[0] = 0; buf[1] = 0; buf[2] = 0; buf[3] = (uint8_t)len;
	send_raw(fd, buf, 4 + len);
	expect_closed(fd, "no message");

	/* Wrong version: the Error names both. */
	fd = tcp_connect(coord_port);
	e.version = 99;
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_LIST;
	e.admin_list = &l;
	len = rswap__envelope__pack(&e, buf + 4);
	buf[3] = (uint8_t)len;
	send_raw(fd, buf, 4 + len);
	expect_closed(fd, "version 99, this side speaks 1");

	/* Truncated: half a frame, then the client gives up. */
	fd = tcp_connect(coord_port);
	buf[3] = 40;
	send_raw(fd, buf, 10);
	close(fd);

	/* Half a frame, then silence: dropped after --hello-timeout-ms. */
	fd = tcp_connect(coord_port);
	send_raw(fd, buf, 10);
	pump(-1, 1800);
	expect_closed(fd, NULL);

	step("out-of-order messages close only that connection");
	fd = tcp_connect(coord_port);
	e = (Rswap__Envelope)RSWAP__ENVELOPE__INIT;
	e.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE;
	e.chunk_alloc_done = &ad;
	send_env(fd, &e);
	expect_closed(fd, "first message must be");

	/* A client that then speaks like a poold. */
	fd = tcp_connect(coord_port);
	h.client_id = "c1";
	h.size = 96 * MB;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	e.seq = 3;
	send_env(fd, &e);
	keep = pump(fd, 5000);
	CHECK(keep && keep->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "hello before violation");
	rswap__envelope__free_unpacked(keep, NULL);
	e.body_case = RSWAP__ENVELOPE__BODY_HEARTBEAT;
	e.heartbeat = &hb;
	send_env(fd, &e);
	expect_closed(fd, "Heartbeat is not a client message");

	/* An admin that sends a client message. */
	fd = tcp_connect(coord_port);
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_LIST;
	e.admin_list = &l;
	send_env(fd, &e);
	keep = pump(fd, 5000);
	CHECK(keep && keep->body_case == RSWAP__ENVELOPE__BODY_CLUSTER_STATE, "admin list");
	rswap__envelope__free_unpacked(keep, NULL);
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	send_env(fd, &e);
	expect_closed(fd, "ClientHello is not an admin message");

	/* A poold answering a ChunkAlloc that was never sent. */
	D = fp_new(4, 16 * MB);
	fp_unlist(D);
	e.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE;
	e.chunk_alloc_done = &ad;
	e.seq = 123456;
	send_env(D->fd, &e);
	expect_closed(D->fd, "never sent");

	/* A poold registering twice on one connection. */
	free(D);
	D = fp_new(5, 16 * MB);
	fp_unlist(D);
	{
		Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;

		reg.listen_addr = D->addr;
		reg.capacity = 16 * MB;
		e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
		e.poold_register = &reg;
		send_env(D->fd, &e);
	}
	expect_closed(D->fd, "second PooldRegister");

	step("everyone else's state is intact");
	m = status_map("c1", &keep);
	CHECK(m, "c1 gone");
	map_str(m, now, sizeof(now));
	CHECK(!strcmp(now, c1_map), "c1 map changed: %s", now);
	rswap__envelope__free_unpacked(keep, NULL);
	{
		Rswap__ClusterState *cs = admin_list(&keep);

		CHECK(find_poold(cs, A->addr)->state == RSWAP__POOLD_STATE__POOLD_ALIVE, "A alive");
		CHECK(find_poold(cs, "127.0.0.1:19004")->state == RSWAP__POOLD_STATE__POOLD_DEAD,
		      "misbehaving poold is dead");
		rswap__envelope__free_unpacked(keep, NULL);
	}
	free(D);
}

static void test_rollback(void)
{
	Rswap__Envelope *r;
	uint64_t used = used_total();
	int held = A->nheld + B->nheld + C->nheld, i;

	step("a poold refusing ChunkAlloc: everything allocated is freed again");
	C->mode = FM_REFUSE;
	expect_error(hello("c3", 48 * MB), ENOMEM, "fake poold out of memory");
	pump(-1, 300);
	CHECK(A->nheld + B->nheld + C->nheld == held, "chunks left on the poolds: %d vs %d",
	      A->nheld + B->nheld + C->nheld, held);
	CHECK(used_total() == used, "coordinator still counts chunks");

	step("a poold not answering: timeout, rollback, and the late reply is freed");
	C->mode = FM_SILENT;
	expect_error(hello("c3", 48 * MB), ETIMEDOUT, "did not answer");
	pump(-1, 300);
	CHECK(C->nsilent == 1, "C saw %d silent allocs", C->nsilent);
	C->mode = FM_OK;
	i = C->frees;
	fp_alloc_done(C, C->silent_seq[0], &C->silent[0]);
	C->nsilent = 0;
	pump(-1, 500);
	CHECK(C->frees == i + 1, "late chunk not freed");
	CHECK(A->nheld + B->nheld + C->nheld == held, "chunks left after timeout");
	CHECK(used_total() == used, "coordinator still counts chunks");

	step("a poold dropping its connection mid-allocation: rollback, poold dead");
	C->mode = FM_DROP;
	r = hello("c3", 48 * MB);
	expect_error(r, EIO, "went away");
	pump(-1, 300);
	CHECK(A->nheld + B->nheld == held - C->nheld, "A/B chunks not freed");
	CHECK(used_total() == used, "coordinator still counts chunks");
	C->mode = FM_OK;
	r = fp_register(C, CHUNK);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED, "C back: %d", r->body_case);
	rswap__envelope__free_unpacked(r, NULL);
	CHECK(used_total() == used, "C's chunks back in the books");
}

static void test_client_leaves_midway(void)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *keep, *r;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;
	struct fpoold *all[3] = { A, B, C }, *got = NULL;
	Rswap__ChunkMap *m;
	int fd, i;

	step("a client closing while its hello is pending: allocation completes, no crash");
	for (i = 0; i < 3; i++)
		all[i]->mode = FM_SILENT;
	fd = tcp_connect(coord_port);
	h.client_id = "c4";
	h.size = 16 * MB;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	send_env(fd, &e);
	pump(-1, 300);
	close(fd);
	pump(-1, 100);
	for (i = 0; i < 3; i++) {
		all[i]->mode = FM_OK;
		if (all[i]->nsilent)
			got = all[i];
	}
	CHECK(got && got->nsilent == 1, "no poold got the ChunkAlloc");
	fp_alloc_done(got, got->silent_seq[0], &got->silent[0]);
	got->nsilent = 0;
	pump(-1, 300);
	m = status_map("c4", &keep);
	CHECK(m && m->n_slots == 1 && !strcmp(m->slots[0]->poold_addr, got->addr), "c4 map");
	rswap__envelope__free_unpacked(keep, NULL);

	step("release: ChunkFree everywhere, ClientReleased; unknown client ENOENT");
	i = got->frees;
	r = release("c4");
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CLIENT_RELEASED &&
	      r->client_released->chunks_freed == 1, "release c4");
	rswap__envelope__free_unpacked(r, NULL);
	CHECK(got->frees == i + 1, "%s did not free", got->addr);
	expect_error(release("c4"), ENOENT, "no client c4");
	m = status_map("c4", &keep);
	CHECK(!m && keep->body_case == RSWAP__ENVELOPE__BODY_ERROR &&
	      keep->error->code == ENOENT, "status of a released client");
	rswap__envelope__free_unpacked(keep, NULL);
}

static void test_liveness(void)
{
	Rswap__Envelope *keep, *r;
	Rswap__ClusterState *cs;

	step("a poold that stops beating turns suspect and gets no new chunks");
	B->beat = false;
	pump(-1, HB_MS * 3 + 400);
	cs = admin_list(&keep);
	CHECK(find_poold(cs, B->addr)->state == RSWAP__POOLD_STATE__POOLD_SUSPECT,
	      "B state %d", find_poold(cs, B->addr)->state);
	CHECK(find_poold(cs, A->addr)->state == RSWAP__POOLD_STATE__POOLD_ALIVE, "A alive");
	rswap__envelope__free_unpacked(keep, NULL);
	r = hello("c6", 16 * MB);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP &&
	      slots_on(r->chunk_map, B->addr) == 0, "c6 placed on suspect B");
	rswap__envelope__free_unpacked(r, NULL);
	B->beat = true;
	pump(-1, 300);
	cs = admin_list(&keep);
	CHECK(find_poold(cs, B->addr)->state == RSWAP__POOLD_STATE__POOLD_ALIVE, "B alive again");
	rswap__envelope__free_unpacked(keep, NULL);
	r = release("c6");
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CLIENT_RELEASED, "release c6");
	rswap__envelope__free_unpacked(r, NULL);
}

static void test_admin_tool(void)
{
	char out[16384];
	int st;

	step("rswap-admin list/status, human and JSON");
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d list", admin_bin, coord_port);
	CHECK(st == 0 && strstr(out, A->addr) && strstr(out, "client c1") &&
	      strstr(out, "total: "), "admin list (%d): %s", st, out);
	fprintf(stderr, "%s", out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d --json list", admin_bin, coord_port);
	CHECK(st == 0 && !strncmp(out, "{\"chunk_size\":16777216", 22) &&
	      strstr(out, "\"client_id\":\"c1\""), "admin --json list (%d): %s", st, out);
	fprintf(stderr, "%s", out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d status c1", admin_bin, coord_port);
	CHECK(st == 0 && strstr(out, "client c1: 96M in 6 chunks of 16M"), "status (%d): %s",
	      st, out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d --json status c1", admin_bin,
		 coord_port);
	CHECK(st == 0 && strstr(out, "\"slots\":[{\"index\":0"), "json status (%d): %s", st, out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d status nosuch", admin_bin, coord_port);
	CHECK(st == 1 && strstr(out, "no client nosuch") && count_lines(out) == 1,
	      "status of unknown (%d): %s", st, out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d list", admin_bin, free_port());
	CHECK(st == 1 && strstr(out, "cannot reach coordinator") &&
	      strstr(out, "Connection refused") && count_lines(out) == 1,
	      "unreachable (%d): %s", st, out);
	{
		/* Listening but never answering: the socket timeout fires. */
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t len = sizeof(sa);
		int lfd = socket(AF_INET, SOCK_STREAM, 0);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CHECK(!bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) && !listen(lfd, 4) &&
		      !getsockname(lfd, (struct sockaddr *)&sa, &len), "mute listener");
		st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d --timeout 1 list", admin_bin,
			 ntohs(sa.sin_port));
		close(lfd);
		CHECK(st == 1 && strstr(out, "did not answer within 1 s") && count_lines(out) == 1,
		      "mute coordinator (%d): %s", st, out);
	}
}

static int frees_total(void)
{
	int i, n = 0;

	for (i = 0; i < NPOOLDS; i++)
		n += fps[i] ? fps[i]->frees : 0;
	return n;
}

static void test_replicas(void)
{
	char out[16384];
	Rswap__Envelope *r;
	int fd = tcp_connect(coord_port), st, frees;

	step("replicas=2: every slot on two poolds; list shows copies and health; release frees both");
	CHECK(fd >= 0, "connect");
	r = hello_on_r(fd, "r1", 16 * MB, 4);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_ERROR && r->error->code == EINVAL,
	      "replicas=4 accepted");
	rswap__envelope__free_unpacked(r, NULL);
	/* 3 chunks free, one on each of A, B, C: 2 copies of 1 slot fit. */
	r = hello_on_r(fd, "r1", 16 * MB, 2);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP && r->chunk_map->replicas == 2 &&
	      r->chunk_map->n_slots == 1, "replicated map");
	for (st = 0; st < 1; st++) {
		const Rswap__Slot *sl = r->chunk_map->slots[st];

		CHECK(sl->n_copies == 2 && sl->copies[0]->handle == sl->handle &&
		      strcmp(sl->copies[0]->poold_addr, sl->copies[1]->poold_addr),
		      "slot %d copies", st);
	}
	rswap__envelope__free_unpacked(r, NULL);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d status r1", admin_bin, coord_port);
	CHECK(st == 0 && strstr(out, "replicas: 2 copies per chunk, 0 degraded chunks, 0 stale copies") &&
	      strstr(out, "slot 0     healthy  -> "), "status r1 (%d): %s", st, out);
	fprintf(stderr, "%s", out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d --json status r1", admin_bin,
		 coord_port);
	CHECK(st == 0 && strstr(out, "\"replicas\":2,\"degraded_chunks\":0,\"stale_copies\":0") &&
	      strstr(out, "\"health\":\"healthy\",\"copies\":[{\"poold\":"),
	      "json status r1 (%d): %s", st, out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d --json list", admin_bin, coord_port);
	CHECK(st == 0 && strstr(out, "\"zone\":\"\""), "json list zone (%d): %s", st, out);
	frees = frees_total();
	r = release_on(fd, "r1");
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CLIENT_RELEASED, "release r1");
	rswap__envelope__free_unpacked(r, NULL);
	pump(-1, 200);
	CHECK(frees_total() == frees + 2, "release freed %d of 2 copies", frees_total() - frees);
	close(fd);
}

static void test_drain_rebalance(void)
{
	Rswap__Envelope *keep, *r;
	Rswap__ClusterState *cs;
	char out[16384], *at;
	uint32_t on_c;
	int st, moves = 0;

	step("drain: no new chunks on the poold; rebalance --dry-run plans its chunks away");
	expect_usage_error(admin_bin, "--coord 127.0.0.1:1 rebalance --dry-run --wait", "moves nothing");
	expect_usage_error(admin_bin, "--coord 127.0.0.1:1 list --wait", "drain or rebalance only");
	expect_usage_error(admin_bin, "--coord 127.0.0.1:1 drain", "POOLD");
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d drain 10.9.9.9:1", admin_bin,
		 coord_port);
	CHECK(st == 1 && strstr(out, "no poold 10.9.9.9:1 is registered") && count_lines(out) == 1,
	      "drain of an unknown poold (%d): %s", st, out);
	/* A holds 3 of c1's 6 chunks; B and C have room for 5 in all. */
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d drain %s", admin_bin, coord_port,
		 A->addr);
	CHECK(st == 0 && strstr(out, "draining"), "drain A (%d): %s", st, out);
	/* Plans count live poolds only: keep the fake ones beating. */
	pump(-1, 150);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d rebalance --dry-run", admin_bin,
		 coord_port);
	CHECK(st == 1 && strstr(out, "6 chunks would need a place but the poolds that take chunks have room for 5") &&
	      count_lines(out) == 1, "rebalance without room (%d): %s", st, out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d undrain %s", admin_bin, coord_port,
		 A->addr);
	CHECK(st == 0 && strstr(out, "takes new chunks"), "undrain A (%d): %s", st, out);

	/* C's 2 chunks fit on A and B. */
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d drain %s", admin_bin, coord_port,
		 C->addr);
	CHECK(st == 0 && strstr(out, "draining"), "drain C (%d): %s", st, out);
	cs = admin_list(&keep);
	CHECK(find_poold(cs, C->addr)->draining, "C not draining");
	on_c = find_poold(cs, C->addr)->chunks_used;
	rswap__envelope__free_unpacked(keep, NULL);

	pump(-1, 150);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d --json rebalance --dry-run", admin_bin,
		 coord_port);
	CHECK(st == 0 && strstr(out, "\"moves\":["), "rebalance --dry-run (%d): %s", st, out);
	for (at = strstr(out, "\"from\":"); at; at = strstr(at + 1, "\"from\":")) {
		CHECK(at[7] == '"' && !strncmp(at + 8, C->addr, strlen(C->addr)),
		      "a move not off the draining poold: %s", out);
		moves++;
	}
	CHECK(moves == (int)on_c && moves == 2, "%d moves planned for %u chunks on C: %s", moves,
	      on_c, out);
	fprintf(stderr, "    plan: %s", out);

	r = hello("c3", CHUNK);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "c3 hello while A drains: %d",
	      r->body_case);
	CHECK(!slots_on(r->chunk_map, C->addr), "a new chunk went to the draining poold");
	rswap__envelope__free_unpacked(r, NULL);
	r = release("c3");
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CLIENT_RELEASED, "release c3");
	rswap__envelope__free_unpacked(r, NULL);

	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d undrain %s", admin_bin, coord_port,
		 C->addr);
	CHECK(st == 0 && strstr(out, "takes new chunks"), "undrain C (%d): %s", st, out);
	cs = admin_list(&keep);
	CHECK(!find_poold(cs, C->addr)->draining, "C still draining");
	rswap__envelope__free_unpacked(keep, NULL);

	/* c1's 3/1/2 on A/B/C (4/2/3 chunks) is within one chunk of even. */
	pump(-1, 150);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d rebalance --dry-run", admin_bin,
		 coord_port);
	CHECK(st == 0 && strstr(out, "0 moves; nothing moved"), "balanced cluster (%d): %s", st,
	      out);
}

/* ---- live moves -------------------------------------------------------- */

static uint64_t mv_seq = 1000;

/* A client beat on fd with a copy's progress and one lost slot (or -1). */
static void client_beat_report(int fd, uint64_t epoch, uint32_t slot, uint64_t to_handle,
			       uint64_t copied, int lost)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ClientHeartbeat hb = RSWAP__CLIENT_HEARTBEAT__INIT;
	Rswap__MoveState ms = RSWAP__MOVE_STATE__INIT;
	uint32_t l = (uint32_t)lost;

	hb.epoch = epoch;
	if (to_handle) {
		ms.slot = slot;
		ms.to_handle = to_handle;
		ms.copied = copied;
		hb.moving = &ms;
	}
	if (lost >= 0) {
		hb.lost_slots = &l;
		hb.n_lost_slots = 1;
	}
	e.seq = mv_seq++;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT;
	e.client_heartbeat = &hb;
	send_env(fd, &e);
}

/*
 * Serve the fake poolds and keep the client on fd beating until a frame
 * other than a heartbeat echo arrives there; NULL after ms.
 */
static Rswap__Envelope *client_wait(int fd, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms, beat = 0;
	Rswap__Envelope *r;

	while (now_ms() < end) {
		if (now_ms() - beat >= 300) {
			client_beat_report(fd, 0, 0, 0, 0, -1);
			beat = now_ms();
		}
		r = pump(fd, 100);
		if (!r)
			continue;
		if (r->body_case != RSWAP__ENVELOPE__BODY_CLIENT_HEARTBEAT)
			return r;
		rswap__envelope__free_unpacked(r, NULL);
	}
	return NULL;
}

static Rswap__MoveChunk *expect_move_chunk(int fd, Rswap__Envelope **keep)
{
	Rswap__Envelope *r = client_wait(fd, 5000);

	CHECK(r && r->body_case == RSWAP__ENVELOPE__BODY_MOVE_CHUNK, "no MoveChunk (got %d: %s)",
	      r ? (int)r->body_case : -1,
	      r && r->body_case == RSWAP__ENVELOPE__BODY_ERROR ? r->error->reason : "");
	*keep = r;
	fprintf(stderr, "    MoveChunk epoch %" PRIu64 " slot %u from %" PRIu64 " to %s/%" PRIu64 "\n",
		r->move_chunk->epoch, r->move_chunk->slot, r->move_chunk->from_handle,
		r->move_chunk->to_poold, r->move_chunk->to_handle);
	return r->move_chunk;
}

static void send_move_done(int fd, uint32_t slot, uint64_t to_handle, bool switched,
			   const char *reason)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__MoveDone d = RSWAP__MOVE_DONE__INIT;

	d.slot = slot;
	d.to_handle = to_handle;
	d.switched = switched;
	d.copied = CHUNK;
	if (!switched) {
		d.code = EIO;
		d.reason = (char *)reason;
	}
	e.seq = mv_seq++;
	e.body_case = RSWAP__ENVELOPE__BODY_MOVE_DONE;
	e.move_done = &d;
	send_env(fd, &e);
}

static bool fp_holds(const struct fpoold *fp, uint64_t handle)
{
	int i;

	for (i = 0; i < fp->nheld; i++)
		if (fp->held[i].handle == handle)
			return true;
	return false;
}

static const Rswap__Slot *map_slot(const Rswap__ChunkMap *m, uint32_t i)
{
	CHECK(i < m->n_slots && m->slots[i]->index == i, "map has no slot %u", i);
	return m->slots[i];
}

static void admin_ok(const char *what, const char *needle, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* rswap-admin with these arguments exits 0 and prints needle. */
static void admin_ok(const char *what, const char *needle, const char *fmt, ...)
{
	char args[512], out[16384];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d %s", admin_bin, coord_port, args);
	CHECK(st == 0 && (!needle || strstr(out, needle)), "%s (%d): %s", what, st, out);
}

static void test_moves(void)
{
	struct fpoold *D, *E;
	Rswap__Envelope *r, *keep, *mk;
	Rswap__MoveChunk *mc;
	Rswap__ClusterState *cs;
	const Rswap__PooldInfo *pi;
	uint64_t h0, h2, t0, handles[3];
	char out[16384];
	int fd, st, frees_d;

	step("moves: a client on two fresh poolds (the others drained; c1 has no session)");
	admin_ok("drain A", "draining", "drain %s", A->addr);
	admin_ok("drain B", "draining", "drain %s", B->addr);
	admin_ok("drain C", "draining", "drain %s", C->addr);
	D = fp_new(11, 64 * MB);
	E = fp_new(12, 64 * MB);
	fd = tcp_connect(coord_port);
	CHECK(fd >= 0, "connect");
	r = hello_on(fd, "m1", 3 * CHUNK);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP && r->chunk_map->epoch == 0,
	      "m1 hello: %d", r->body_case);
	/* D, E, D by fill fraction and name. */
	CHECK(!strcmp(map_slot(r->chunk_map, 0)->poold_addr, D->addr) &&
	      !strcmp(map_slot(r->chunk_map, 1)->poold_addr, E->addr) &&
	      !strcmp(map_slot(r->chunk_map, 2)->poold_addr, D->addr), "m1 spread");
	h0 = map_slot(r->chunk_map, 0)->handle;
	h2 = map_slot(r->chunk_map, 2)->handle;
	rswap__envelope__free_unpacked(r, NULL);

	step("drain D: MoveChunk to E with the next epoch, one slot at a time");
	admin_ok("drain D", "2 moves queued", "drain %s", D->addr);
	mc = expect_move_chunk(fd, &mk);
	CHECK(mc->epoch == 1 && mc->slot == 0 && mc->from_handle == h0 &&
	      !strcmp(mc->to_poold, E->addr) && fp_holds(E, mc->to_handle) &&
	      E->held[E->nheld - 1].slot == 0, "MoveChunk fields");
	client_beat_report(fd, 0, 0, mc->to_handle, 8 * MB, -1);
	rswap__envelope__free_unpacked(client_wait(fd, 300), NULL);
	cs = admin_list(&keep);
	CHECK(cs->moves_total == 2 && cs->n_moves == 2 && cs->n_jobs >= 1, "moves listed: %u",
	      cs->moves_total);
	CHECK(cs->moves[0]->state == RSWAP__MOVE_STEP__MOVE_COPYING &&
	      cs->moves[0]->copied == 8 * MB && !strcmp(cs->moves[0]->to_poold, E->addr) &&
	      cs->moves[1]->state == RSWAP__MOVE_STEP__MOVE_QUEUED, "move states");
	pi = find_poold(cs, D->addr);
	CHECK(pi->moves_out == 2 && pi->draining, "D moves_out %u", pi->moves_out);
	rswap__envelope__free_unpacked(keep, NULL);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d list", admin_bin, coord_port);
	CHECK(st == 0 && strstr(out, "move client m1 slot 0: 127.0.0.1:19011 -> 127.0.0.1:19012 copying 8M/16M (50%)") &&
	      strstr(out, "move client m1 slot 2: 127.0.0.1:19011 -> 127.0.0.1:19012 queued"),
	      "list moves (%d): %s", st, out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d status m1", admin_bin, coord_port);
	CHECK(st == 0 && strstr(out, "epoch 0") &&
	      strstr(out, "move client m1 slot 0: 127.0.0.1:19011 -> 127.0.0.1:19012 copying"),
	      "status moves (%d): %s", st, out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d --json status m1", admin_bin, coord_port);
	CHECK(st == 0 && strstr(out, "\"moves\":[{\"client_id\":\"m1\",\"slot\":0") &&
	      strstr(out, "\"state\":\"copying\",\"copied\":8388608"),
	      "status --json moves (%d): %s", st, out);

	step("MoveDone switched: the slot is on E, epoch 1, D frees the old chunk");
	frees_d = D->frees;
	send_move_done(fd, 0, mc->to_handle, true, NULL);
	handles[0] = mc->to_handle;
	rswap__envelope__free_unpacked(mk, NULL);
	mc = expect_move_chunk(fd, &mk);
	CHECK(D->frees == frees_d + 1 && !fp_holds(D, h0), "D did not free the source");
	CHECK(mc->epoch == 2 && mc->slot == 2 && mc->from_handle == h2, "second MoveChunk");
	r = NULL;
	{
		Rswap__ChunkMap *m = status_map("m1", &r);

		CHECK(m && m->epoch == 1 && !strcmp(map_slot(m, 0)->poold_addr, E->addr) &&
		      map_slot(m, 0)->handle == handles[0] && r->client_info->epoch == 1,
		      "m1 map after the commit");
		handles[1] = map_slot(m, 1)->handle;
	}
	rswap__envelope__free_unpacked(r, NULL);
	/* A stale MoveDone (wrong handle) is ignored. */
	send_move_done(fd, 2, 4242, true, NULL);

	step("MoveDone not switched: the target is freed on E, the slot stays on D");
	t0 = (uint64_t)E->frees;
	send_move_done(fd, 2, mc->to_handle, false, "copy failed");
	r = client_wait(fd, 400);
	CHECK(!r, "unexpected frame %d", r ? (int)r->body_case : -1);
	CHECK((uint64_t)E->frees == t0 + 1 && !fp_holds(E, mc->to_handle) && fp_holds(D, h2),
	      "abort did not free the target");
	rswap__envelope__free_unpacked(mk, NULL);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d list", admin_bin, coord_port);
	CHECK(st == 0 && strstr(out, "drain 127.0.0.1:19011: 1/2 done, 1 failed, 16M moved, finished; last error: client m1 slot 2: the client did not switch: copy failed"),
	      "job line (%d): %s", st, out);

	step("the session closes mid-copy: both copies kept; a reconnect hello with handles commits");
	admin_ok("drain D again", "1 move queued", "drain %s", D->addr);
	mc = expect_move_chunk(fd, &mk);
	CHECK(mc->slot == 2 && mc->epoch == 2, "third MoveChunk");
	close(fd);
	pump(-1, 300);
	cs = admin_list(&keep);
	CHECK(cs->n_moves == 1 && cs->moves[0]->state == RSWAP__MOVE_STEP__MOVE_WAITING,
	      "move not waiting for the client");
	rswap__envelope__free_unpacked(keep, NULL);
	CHECK(fp_holds(D, h2) && fp_holds(E, mc->to_handle), "a copy was freed while waiting");
	handles[2] = mc->to_handle;
	fd = tcp_connect(coord_port);
	CHECK(fd >= 0, "connect");
	r = hello_report(fd, "m1", 3 * CHUNK, 2, handles, 3, 0, 0, -1);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP && r->chunk_map->epoch == 2 &&
	      !strcmp(map_slot(r->chunk_map, 2)->poold_addr, E->addr) &&
	      map_slot(r->chunk_map, 2)->handle == handles[2], "reconciled map");
	rswap__envelope__free_unpacked(r, NULL);
	rswap__envelope__free_unpacked(mk, NULL);
	r = client_wait(fd, 300);
	CHECK(!r, "unexpected frame %d", r ? (int)r->body_case : -1);
	CHECK(!fp_holds(D, h2) && D->nheld == 0, "D still holds the source");
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d drain %s --wait", admin_bin, coord_port,
		 D->addr);
	CHECK(st == 0 && strstr(out, "holds no chunks: it can be stopped"), "drain --wait (%d): %s",
	      st, out);

	step("a client reports a lost slot: kept in the map, marked lost, never freed");
	client_beat_report(fd, 2, 0, 0, 0, 1);
	rswap__envelope__free_unpacked(client_wait(fd, 300), NULL);
	{
		Rswap__ChunkMap *m = status_map("m1", &r);

		CHECK(m && map_slot(m, 1)->lost && r->client_info->lost_chunks == 1, "slot 1 not lost");
	}
	rswap__envelope__free_unpacked(r, NULL);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d status m1", admin_bin, coord_port);
	CHECK(st == 0 && strstr(out, "epoch 2, 1 LOST") && strstr(out, "LOST (its memory is gone)"),
	      "status with a lost slot (%d): %s", st, out);
	cs = admin_list(&keep);
	CHECK(find_poold(cs, E->addr)->chunks_used == 2, "E counts the lost chunk");
	rswap__envelope__free_unpacked(keep, NULL);

	step("drain --wait fails with a reason when a move cannot run");
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d drain %s --wait", admin_bin, coord_port,
		 C->addr);
	CHECK(st == 1 && (strstr(out, "no live session") || strstr(out, "no chunk moved")),
	      "drain C --wait (%d): %s", st, out);

	step("the coordinator restarts mid-copy: both copies kept; the client's report resumes the move");
	admin_ok("undrain D", "takes new", "undrain %s", D->addr);
	admin_ok("drain E", "2 moves queued", "drain %s", E->addr);
	mc = expect_move_chunk(fd, &mk);
	CHECK(mc->slot == 0 && mc->epoch == 3 && mc->from_handle == handles[0] &&
	      !strcmp(mc->to_poold, D->addr), "MoveChunk off E");
	h0 = mc->to_handle;
	rswap__envelope__free_unpacked(mk, NULL);
	close(fd);
	coord_stop();
	fp_disconnect(A);
	fp_disconnect(B);
	fp_disconnect(C);
	fp_disconnect(D);
	fp_disconnect(E);
	frees_d = D->frees;
	t0 = (uint64_t)E->frees;
	coord_start("0");
	{
		struct fpoold *all[] = { A, B, C, D, E };
		unsigned int k;

		for (k = 0; k < 5; k++) {
			r = fp_register(all[k], CHUNK);
			CHECK(r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED,
			      "re-register %s", all[k]->addr);
			rswap__envelope__free_unpacked(r, NULL);
		}
	}
	pump(-1, 300);
	{
		Rswap__ChunkMap *m = status_map("m1", &r);

		/* The newer copy (the half-copied target) is shown; both kept. */
		CHECK(m && map_slot(m, 0)->handle == h0 && r->client_info->n_unresolved == 1 &&
		      r->client_info->unresolved[0]->handle == handles[0], "m1 after restart");
	}
	rswap__envelope__free_unpacked(r, NULL);
	CHECK(D->frees == frees_d && (uint64_t)E->frees == t0, "a copy was freed at registration");
	fd = tcp_connect(coord_port);
	CHECK(fd >= 0, "connect");
	r = hello_report(fd, "m1", 3 * CHUNK, 2, handles, 3, 0, h0, 1);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP && r->chunk_map->epoch == 2 &&
	      map_slot(r->chunk_map, 0)->handle == handles[0] && map_slot(r->chunk_map, 1)->lost,
	      "reconciled map after restart");
	rswap__envelope__free_unpacked(r, NULL);
	cs = admin_list(&keep);
	CHECK(cs->n_moves == 1 && cs->moves[0]->state == RSWAP__MOVE_STEP__MOVE_COPYING &&
	      cs->moves[0]->slot == 0 && !strcmp(cs->moves[0]->to_poold, D->addr),
	      "the move did not resume");
	rswap__envelope__free_unpacked(keep, NULL);
	CHECK(fp_holds(D, h0) && fp_holds(E, handles[0]), "a copy was freed at reconcile");
	send_move_done(fd, 0, h0, true, NULL);
	r = client_wait(fd, 400);
	CHECK(!r, "unexpected frame %d", r ? (int)r->body_case : -1);
	CHECK(!fp_holds(E, handles[0]) && fp_holds(D, h0), "commit after restart");
	{
		Rswap__ChunkMap *m = status_map("m1", &r);

		CHECK(m && m->epoch == 3 && map_slot(m, 0)->handle == h0, "epoch after restart");
	}
	rswap__envelope__free_unpacked(r, NULL);

	r = release_on(fd, "m1");
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CLIENT_RELEASED &&
	      r->client_released->chunks_freed == 2, "release m1");
	rswap__envelope__free_unpacked(r, NULL);
	close(fd);
	pump(-1, 300);
	CHECK(E->nheld == 1 && fp_holds(E, handles[1]) && D->nheld == 0,
	      "E: only the lost chunk stays (E %d, D %d)", E->nheld, D->nheld);
	fp_disconnect(D);
	fp_disconnect(E);
	free(D);
	free(E);
}

/* A fake coordinator that answers one AdminStatus with hostile strings. */
static void test_admin_escaping(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), st;
	char out[4096];
	pid_t pid;

	step("rswap-admin escapes what a coordinator sends (JSON and terminal)");
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(!bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) && !listen(lfd, 4) &&
	      !getsockname(lfd, (struct sockaddr *)&sa, &len), "fake coordinator");
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid) {
		Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *req;
		Rswap__ClientInfo ci = RSWAP__CLIENT_INFO__INIT;
		Rswap__ChunkMap m = RSWAP__CHUNK_MAP__INIT;
		Rswap__Slot sl = RSWAP__SLOT__INIT, *slp = &sl;
		const char *why;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0 || rswap_frame_recv_fd(fd, &req, &why))
			_exit(1);
		sl.index = 0;
		sl.poold_addr = "q\"uote\\back\x1b[31mred";
		sl.handle = 5;
		m.chunk_size = CHUNK;
		m.size = CHUNK;
		m.n_slots = 1;
		m.slots = &slp;
		ci.client_id = "x\n\t\xc3\xa9";
		ci.map = &m;
		e.version = RSWAP_PROTO_VERSION;
		e.seq = req->seq;
		e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_INFO;
		e.client_info = &ci;
		rswap__envelope__free_unpacked(req, NULL);
		_exit(rswap_frame_send_fd(fd, &e) ? 1 : 0);
	}
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d --json status x", admin_bin,
		 ntohs(sa.sin_port));
	waitpid(pid, NULL, 0);
	CHECK(st == 0, "admin --json status against the fake (%d): %s", st, out);
	CHECK(strstr(out, "\"client_id\":\"x\\n\\t\\u00c3\\u00a9\"") &&
	      strstr(out, "\"poold\":\"q\\\"uote\\\\back\\u001b[31mred\""),
	      "JSON escaping: %s", out);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid) {
		/* Same fake again for the human output. */
		Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *req;
		Rswap__ClientInfo ci = RSWAP__CLIENT_INFO__INIT;
		Rswap__ChunkMap m = RSWAP__CHUNK_MAP__INIT;
		const char *why;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0 || rswap_frame_recv_fd(fd, &req, &why))
			_exit(1);
		ci.client_id = "evil\x1b]0;title\x07";
		ci.map = &m;
		e.version = RSWAP_PROTO_VERSION;
		e.seq = req->seq;
		e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_INFO;
		e.client_info = &ci;
		rswap__envelope__free_unpacked(req, NULL);
		_exit(rswap_frame_send_fd(fd, &e) ? 1 : 0);
	}
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d status x", admin_bin,
		 ntohs(sa.sin_port));
	waitpid(pid, NULL, 0);
	close(lfd);
	CHECK(st == 0 && strstr(out, "client evil:") && !strchr(out, '\x1b'),
	      "terminal output not sanitized (%d): %s", st, out);
}

static void test_restart(void)
{
	struct fpoold *F, saved_c;
	Rswap__Envelope *r, *keep;
	Rswap__ChunkMap *m;
	uint64_t handles[64];
	char now[4096];
	size_t nh;
	int fd;

	step("restart: a stale copy of a slot registers first; the real poold still registers and wins");
	coord_stop();
	fp_disconnect(A);
	fp_disconnect(B);
	fp_disconnect(C);
	coord_start("5000");

	/* An hour-old copy of A's first chunk whose free the old coordinator
	 * lost, or an impostor's claim: it comes first. */
	F = calloc(1, sizeof(*F));
	snprintf(F->addr, sizeof(F->addr), "127.0.0.1:19006");
	F->capacity = 64 * MB;
	F->held[0] = A->held[0];
	F->held[0].handle = 999;
	F->held[0].born = now_ms() - 3600 * 1000;
	F->nheld = 1;
	r = fp_register(F, CHUNK);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED, "stale poold: %d",
	      r->body_case);
	rswap__envelope__free_unpacked(r, NULL);
	/* The real poold is not refused: its newer chunk takes the slot back. */
	r = fp_register(A, CHUNK);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED, "A re-register: %s",
	      r->body_case == RSWAP__ENVELOPE__BODY_ERROR ? r->error->reason : "");
	rswap__envelope__free_unpacked(r, NULL);
	pump(-1, 300);
	CHECK(F->frees == 0 && F->nheld == 1,
	      "a copy was freed before the client said which one it runs on (%d frees)", F->frees);
	fp_disconnect(F);
	expect_error(hello("c1", 96 * MB), EAGAIN, "not reported yet");
	expect_error(hello("newcomer", 16 * MB), EAGAIN, "waits 5000 ms for poolds");

	/* A poold with chunks of another size. */
	memset(F, 0, sizeof(*F));
	snprintf(F->addr, sizeof(F->addr), "127.0.0.1:19007");
	F->capacity = 64 * MB;
	F->held[0] = (struct held){ .handle = 1, .size = 64 * MB, .slot = 0, .id = "x" };
	F->nheld = 1;
	r = fp_register(F, 2 * CHUNK);
	expect_error(r, EINVAL, "chunks of 32M, this coordinator uses 16M");
	expect_closed(F->fd, NULL);

	step("a stale copy coming after the real one: registered and kept, unresolved");
	F->held[0] = A->held[1];
	F->held[0].handle = 998;
	F->held[0].born = now_ms() - 3600 * 1000;
	r = fp_register(F, CHUNK);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED, "late stale poold: %s",
	      r->body_case == RSWAP__ENVELOPE__BODY_ERROR ? r->error->reason : "");
	rswap__envelope__free_unpacked(r, NULL);
	pump(-1, 300);
	CHECK(F->frees == 0 && F->nheld == 1, "the late copy was freed before the client spoke");

	r = fp_register(B, CHUNK);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED, "B re-register");
	rswap__envelope__free_unpacked(r, NULL);
	saved_c = *C;
	r = fp_register(C, CHUNK);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED, "C re-register");
	rswap__envelope__free_unpacked(r, NULL);

	m = status_map("c1", &keep);
	CHECK(m, "c1 not rebuilt");
	map_str(m, now, sizeof(now));
	CHECK(!strcmp(now, c1_map), "rebuilt map differs:\n  %s\n  %s", now, c1_map);
	/* The first stale copy (its poold down now) and the late one. */
	CHECK(keep->client_info->n_unresolved == 2, "%zu copies listed unresolved, want 2",
	      keep->client_info->n_unresolved);
	nh = map_handles(m, handles, 64);
	rswap__envelope__free_unpacked(keep, NULL);

	step("the client's reconnect hello says which copy it runs on: the other one is freed");
	fd = tcp_connect(coord_port);
	CHECK(fd >= 0, "connect");
	r = hello_report(fd, "c1", 96 * MB, 0, handles, nh, 0, 0, -1);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "reconciling hello: %s",
	      r->body_case == RSWAP__ENVELOPE__BODY_ERROR ? r->error->reason : "");
	map_str(r->chunk_map, now, sizeof(now));
	CHECK(!strcmp(now, c1_map), "reconciled map differs");
	rswap__envelope__free_unpacked(r, NULL);
	close(fd);
	pump(-1, 300);
	CHECK(F->frees == 1 && F->nheld == 0, "the copy the client does not run on was not freed");
	m = status_map("c1", &keep);
	CHECK(m && keep->client_info->n_unresolved == 0, "still unresolved");
	rswap__envelope__free_unpacked(keep, NULL);
	fp_disconnect(F);
	free(F);

	r = hello("c1", 96 * MB);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "hello after rebuild");
	map_str(r->chunk_map, now, sizeof(now));
	CHECK(!strcmp(now, c1_map), "hello map differs after restart");
	rswap__envelope__free_unpacked(r, NULL);
	(void)saved_c;

	step("release with a dead poold: its record is dropped, the rest freed");
	fp_disconnect(C);
	pump(-1, 200);
	r = release("c1");
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CLIENT_RELEASED &&
	      r->client_released->chunks_freed == 4, "release c1 freed %u",
	      r->body_case == RSWAP__ENVELOPE__BODY_CLIENT_RELEASED ?
	      r->client_released->chunks_freed : 0);
	rswap__envelope__free_unpacked(r, NULL);
	CHECK(A->nheld == 0 && B->nheld == 0, "A/B still hold chunks");
	CHECK(used_total() == 0, "records left");

	step("the dead poold comes back: its orphaned chunks are freed, not adopted");
	r = fp_register(C, CHUNK);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED, "C back");
	rswap__envelope__free_unpacked(r, NULL);
	pump(-1, 300);
	CHECK(C->nheld == 0, "C still holds %d", C->nheld);
	CHECK(used_total() == 0, "orphans adopted");
	m = status_map("c1", &keep);
	CHECK(!m, "c1 resurrected");
	rswap__envelope__free_unpacked(keep, NULL);
}

/* The coordinator's resident memory in MiB (VmRSS). */
static long coord_rss_mb(void)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)coord_pid);
	f = fopen(path, "r");
	CHECK(f, "cannot read %s", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb / 1024;
}

/*
 * Send a PooldRegister from addr holding nclients x per_client chunks:
 * client ids of 4 characters, slots slot0.. of a pool of client_size.
 * Returns the connection; the frame is as large as one frame may be.
 */
static int send_big_register(const char *addr, uint64_t capacity, int nclients,
			     int per_client, uint32_t slot0, uint64_t client_size)
{
	static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;
	size_t n = (size_t)nclients * (size_t)per_client, i;
	Rswap__HeldChunk *hc = calloc(n, sizeof(*hc)), **hcp = calloc(n, sizeof(*hcp));
	char (*ids)[8] = calloc((size_t)nclients, sizeof(*ids));
	int fd, c, k;

	CHECK(hc && hcp && ids, "out of memory");
	for (c = 0; c < nclients; c++)
		snprintf(ids[c], sizeof(ids[c]), "%c%c%c%c", abc[c / (62 * 62 * 62) % 62],
			 abc[c / (62 * 62) % 62], abc[c / 62 % 62], abc[c % 62]);
	for (i = 0, c = 0; c < nclients; c++) {
		for (k = 0; k < per_client; k++, i++) {
			rswap__held_chunk__init(&hc[i]);
			hc[i].handle = i + 1;
			hc[i].client_id = ids[c];
			hc[i].slot = slot0 + (uint32_t)k;
			hc[i].client_size = client_size;
			hcp[i] = &hc[i];
		}
	}
	reg.listen_addr = (char *)addr;
	reg.capacity = capacity;
	reg.chunk_size = CHUNK;
	reg.n_chunks = n;
	reg.chunks = hcp;
	e.seq = 1;
	e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
	e.poold_register = &reg;
	e.version = RSWAP_PROTO_VERSION;
	fprintf(stderr, "    PooldRegister from %s: %zu held chunks of %d clients, %zu bytes\n",
		addr, n, nclients, rswap__envelope__get_packed_size(&e));
	CHECK(rswap__envelope__get_packed_size(&e) <= RSWAP_MAX_FRAME, "frame too large");
	fd = tcp_connect(coord_port);
	CHECK(fd >= 0, "connect");
	send_env(fd, &e);
	free(hc);
	free(hcp);
	free(ids);
	return fd;
}

/*
 * While the coordinator digests a big register on one connection, a new
 * client on another is placed on a real poold within bound_ms (so those
 * are alive and placeable) and released again.  Returns how long the
 * client waited.
 */
static uint64_t served_meanwhile(uint64_t t0, uint64_t bound_ms, const char *id)
{
	Rswap__Envelope *r;
	uint64_t waited;

	r = hello(id, 16 * MB);
	waited = now_ms() - t0;
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "%s not served: %d (%s)", id,
	      r->body_case, r->body_case == RSWAP__ENVELOPE__BODY_ERROR ? r->error->reason : "");
	CHECK(slots_on(r->chunk_map, A->addr) + slots_on(r->chunk_map, B->addr) +
	      slots_on(r->chunk_map, C->addr) == 1, "%s not placed on a real poold", id);
	rswap__envelope__free_unpacked(r, NULL);
	CHECK(waited < bound_ms, "a client waited %" PRIu64 " ms (bound %" PRIu64 ")",
	      waited, bound_ms);
	r = release(id);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CLIENT_RELEASED, "release %s", id);
	rswap__envelope__free_unpacked(r, NULL);
	return waited;
}

/* An adopted client's map has n held slots, in index order. */
static void m_check_status(const char *id, size_t n)
{
	Rswap__Envelope *keep;
	Rswap__ChunkMap *m = status_map(id, &keep);
	size_t i;

	CHECK(m && m->n_slots == n, "%s: %zu slots, want %zu", id, m ? m->n_slots : 0, n);
	for (i = 1; i < n; i++)
		CHECK(m->slots[i]->index > m->slots[i - 1]->index, "%s: slots out of order", id);
	rswap__envelope__free_unpacked(keep, NULL);
}

#define BIG_BOUND_MS	10000	/* generous: ASan, a loaded machine */
#define BIG_RSS_MB	256	/* growth allowed for one frame's worth of state */

static void test_oversized_register(void)
{
	Rswap__Envelope *r, *keep;
	Rswap__ClusterState *cs;
	uint64_t t0, waited;
	long rss0, rss;
	int fd;

	step("one huge PooldRegister: bounded time and memory, others still served");
	/* The restarted coordinator's grace period (5 s) must be over. */
	while ((r = hello("c9", 16 * MB))->body_case == RSWAP__ENVELOPE__BODY_ERROR &&
	       r->error->code == EAGAIN) {
		rswap__envelope__free_unpacked(r, NULL);
		pump(-1, 500);
	}
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CHUNK_MAP, "c9 hello");
	rswap__envelope__free_unpacked(r, NULL);
	rss0 = coord_rss_mb();

	/* 45,000 chunks, each for a new client with a 256G pool (16384 slots). */
	t0 = now_ms();
	fd = send_big_register("10.66.0.1:9401", 1ull << 60, 45000, 1, 16383, 16384 * CHUNK);
	waited = served_meanwhile(t0, BIG_BOUND_MS, "c10");
	r = pump(fd, BIG_BOUND_MS);
	CHECK(r, "no answer to the huge PooldRegister within %d ms", BIG_BOUND_MS);
	expect_error(r, E2BIG, "client ids");
	expect_closed(fd, NULL);
	rss = coord_rss_mb();
	fprintf(stderr, "    refused; a client waited %" PRIu64 " ms, RSS %ld -> %ld MiB\n",
		waited, rss0, rss);
	CHECK(rss - rss0 < BIG_RSS_MB, "RSS grew by %ld MiB", rss - rss0);
	cs = admin_list(&keep);
	CHECK(find_poold(cs, A->addr)->state == RSWAP__POOLD_STATE__POOLD_ALIVE &&
	      find_poold(cs, B->addr)->state == RSWAP__POOLD_STATE__POOLD_ALIVE &&
	      !find_poold(cs, "10.66.0.1:9401") && cs->n_clients == 1,
	      "the refused register left a trace or a poold died");
	rswap__envelope__free_unpacked(keep, NULL);

	/* Held chunks beyond the declared capacity. */
	fd = send_big_register("10.66.0.2:9401", 100 * CHUNK, 10, 11, 0, 16384 * CHUNK);
	r = pump(fd, BIG_BOUND_MS);
	CHECK(r, "no answer to an over-capacity PooldRegister");
	expect_error(r, EINVAL, "capacity");
	expect_closed(fd, NULL);

	/* As large as the rules allow: 4000 clients x 11 chunks, adopted. */
	t0 = now_ms();
	fd = send_big_register("10.66.0.3:9401", 1ull << 40, 4000, 11, 16373, 16384 * CHUNK);
	waited = served_meanwhile(t0, BIG_BOUND_MS, "c11");
	r = pump(fd, BIG_BOUND_MS);
	CHECK(r && r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED,
	      "the largest valid PooldRegister was not accepted within %d ms (%d: %s)",
	      BIG_BOUND_MS, r ? (int)r->body_case : -1,
	      r && r->body_case == RSWAP__ENVELOPE__BODY_ERROR ? r->error->reason : "");
	rswap__envelope__free_unpacked(r, NULL);
	rss = coord_rss_mb();
	fprintf(stderr, "    accepted in %" PRIu64 " ms; a client waited %" PRIu64
		" ms, RSS %ld -> %ld MiB\n", now_ms() - t0, waited, rss0, rss);
	CHECK(rss - rss0 < BIG_RSS_MB, "RSS grew by %ld MiB", rss - rss0);

	/* It goes away and comes back: its records are found by handle. */
	close(fd);
	served_meanwhile(now_ms(), BIG_BOUND_MS, "c12");
	t0 = now_ms();
	fd = send_big_register("10.66.0.3:9401", 1ull << 40, 4000, 11, 16373, 16384 * CHUNK);
	r = pump(fd, BIG_BOUND_MS);
	CHECK(r && r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED,
	      "the big poold could not register again within %d ms", BIG_BOUND_MS);
	rswap__envelope__free_unpacked(r, NULL);
	fprintf(stderr, "    registered again in %" PRIu64 " ms\n", now_ms() - t0);
	m_check_status("aaab", 11);
	close(fd);
	r = release("c9");
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_CLIENT_RELEASED, "release c9");
	rswap__envelope__free_unpacked(r, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s RSWAP_COORD RSWAP_ADMIN LOGDIR\n", argv[0]);
		return 2;
	}
	coord_bin = argv[1];
	admin_bin = argv[2];
	logdir = argv[3];
	signal(SIGPIPE, SIG_IGN);
	atexit(kill_coord_at_exit);
	test_command_lines();
	coord_start_anywhere();
	test_spread();
	test_client_sessions();
	test_double_register();
	test_bad_frames();
	test_rollback();
	test_client_leaves_midway();
	test_liveness();
	test_admin_tool();
	test_replicas();
	test_drain_rebalance();
	test_moves();
	test_admin_escaping();
	test_restart();
	test_oversized_register();
	coord_stop();
	fprintf(stderr, "PASS\n");
	return 0;
}
