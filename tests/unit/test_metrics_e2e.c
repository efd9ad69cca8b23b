// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * A real rswap-coord --metrics: a fake poold registers, a fake client gets
 * chunks, an admin drains and undrains the poold, a client is refused, a
 * peer breaks the protocol, the poold goes away; after each step GET
 * /metrics must show it.  A coordinator with a cluster key counts a peer
 * that skips the handshake as an authentication failure.  The last page must
 * pass promtool.  Also the --metrics usage and bind errors of rswap-coord
 * and poold (poold binds its metrics port before it needs RDMA, so that
 * part runs without an RDMA device).
 *
 *   test_metrics_e2e RSWAP_COORD POOLD WORKDIR
 *
 * Exit 0 pass, 1 fail, 77 skip (only promtool is missing: every other
 * check passed).  The coordinator's log is WORKDIR/metrics-coord.log.
 */
#include "e2e.h"
#include "rswap_frame.h"
#include "rswap.pb-c.h"

#include <errno.h>
#include <fcntl.h>
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

#define CHUNK	(16ull << 20)

static const char *coord_bin, *poold_bin, *workdir;
static pid_t coord_pid;
static int coord_port, metrics_port;

/* ---- HTTP -------------------------------------------------------------- */

/* One HTTP/1.0 request; returns the status code, the body in body. */
static int http(const char *method, const char *path, char *body, size_t len)
{
	char req[256], *resp, *p;
	size_t got = 0, cap = 1 << 20;
	int fd = tcp_connect(metrics_port), code = 0;
	ssize_t n;

	CHECK(fd >= 0, "connect to the metrics port %d: %s", metrics_port, strerror(errno));
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n", method, path);
	CHECK(write(fd, req, strlen(req)) == (ssize_t)strlen(req), "write");
	resp = malloc(cap);
	CHECK(resp, "malloc");
	while (got < cap - 1 && (n = read(fd, resp + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	resp[got] = '\0';
	CHECK(sscanf(resp, "HTTP/1.%*d %d", &code) == 1, "not an HTTP response: %.80s", resp);
	p = strstr(resp, "\r\n\r\n");
	snprintf(body, len, "%s", p ? p + 4 : "");
	if (code == 200)
		CHECK(strstr(resp, "Content-Type: text/plain; version=0.0.4"),
		      "no Prometheus content type in: %.300s", resp);
	free(resp);
	return code;
}

static char page[1 << 20];

static void scrape(void)
{
	int code = http("GET", "/metrics", page, sizeof(page));

	CHECK(code == 200, "GET /metrics: %d", code);
}

static bool has_line(const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = page; (p = strstr(p, line)); p++)
		if ((p == page || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

/* The page has exactly this line. */
static void expect(const char *line)
{
	CHECK(has_line(line), "line '%s' not on the page:\n%s", line, page);
}

/* Scrape until the line shows (the daemon handles a close a bit later). */
static void expect_soon(const char *line)
{
	int i;

	for (i = 0; i < 100; i++, usleep(50000)) {
		scrape();
		if (has_line(line))
			return;
	}
	expect(line);
}

/* ---- coordinator ------------------------------------------------------- */

static void kill_coord_at_exit(void)
{
	if (coord_pid > 0)
		kill(coord_pid, SIGKILL);
}

/* With key_file NULL the coordinator runs --insecure (terse fakes). */
static bool coord_try_start(const char *key_file)
{
	char listen[32], metrics[32], log[4096];
	int fd, status, i;

	coord_port = free_port();
	metrics_port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", coord_port);
	snprintf(metrics, sizeof(metrics), "127.0.0.1:%d", metrics_port);
	snprintf(log, sizeof(log), "%s/metrics-coord.log", workdir);
	coord_pid = fork();
	CHECK(coord_pid >= 0, "fork");
	if (!coord_pid) {
		if (!freopen(log, "w", stderr))
			_exit(127);
		execl(coord_bin, coord_bin, "--listen", listen, "--metrics", metrics,
		      "--chunk-size", "16M", "--heartbeat-ms", "60000",
		      "--hello-timeout-ms", "2000", "--max-conns", "100",
		      "--max-new-per-addr", "2", "--restart-grace-ms", "0", "-v",
		      key_file ? "--key-file" : "--insecure", key_file, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500; i++, usleep(20000)) {
		if (waitpid(coord_pid, &status, WNOHANG) == coord_pid) {
			fprintf(stderr, "    rswap-coord exited at start (status 0x%x); see %s\n",
				status, log);
			coord_pid = 0;
			return false;
		}
		fd = tcp_connect(metrics_port);
		if (fd >= 0) {
			close(fd);
			return true;
		}
	}
	CHECK(0, "rswap-coord did not serve metrics; see %s", log);
	return false;
}

static void coord_stop(void)
{
	int status;

	CHECK(!kill(coord_pid, SIGTERM), "kill");
	CHECK(waitpid(coord_pid, &status, 0) == coord_pid, "waitpid");
	coord_pid = 0;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "rswap-coord did not exit cleanly on SIGTERM (status 0x%x); see %s/metrics-coord.log",
	      status, workdir);
}

/* Start a connection without waiting: a full backlog delays connect(). */
static int tcp_connect_nowait(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0, "socket");
	CHECK(!connect(fd, (struct sockaddr *)&sa, sizeof(sa)) || errno == EINPROGRESS,
	      "connect: %s", strerror(errno));
	return fd;
}

/* utime + stime of pid, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	long ut = -1, st = -1;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	CHECK(f, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	CHECK(p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
			  &ut, &st) == 2, "cannot parse %s", path);
	return ut + st;
}

/*
 * With its descriptors used up by metrics connections, the daemon must
 * pause accepting rather than spin on the listener, and serve again once
 * they are closed.
 */
static void test_out_of_fds(void)
{
	char cmd[1024], log[4096];
	int fds[40], i, nfds = 0, status;
	long ticks;
	pid_t pid;

	step("out of descriptors: the metrics listener pauses, no busy loop");
	coord_port = free_port();
	metrics_port = free_port();
	snprintf(log, sizeof(log), "%s/metrics-coord-fds.log", workdir);
	snprintf(cmd, sizeof(cmd), "ulimit -n 24 && exec %s --insecure --listen 127.0.0.1:%d --metrics 127.0.0.1:%d",
		 coord_bin, coord_port, metrics_port);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid) {
		if (!freopen(log, "w", stderr))
			_exit(127);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	coord_pid = pid;
	for (i = 0; i < 250 && (fds[0] = tcp_connect(metrics_port)) < 0; i++)
		usleep(20000);
	CHECK(fds[0] >= 0, "rswap-coord under ulimit -n 24 did not serve metrics; see %s", log);
	for (nfds = 1; nfds < 40; nfds++)
		fds[nfds] = tcp_connect_nowait(metrics_port);
	/* Paused it sleeps (0 ms here); spinning took 360+ ms even when
	 * sharing a loaded CPU. */
	usleep(300000);
	ticks = cpu_ticks(pid);
	usleep(2000000);
	ticks = cpu_ticks(pid) - ticks;
	CHECK(ticks * 1000 / sysconf(_SC_CLK_TCK) < 150,
	      "rswap-coord used %ld ms of CPU in 2 s with its descriptors used up: is the metrics listener spinning on accept()?",
	      ticks * 1000 / sysconf(_SC_CLK_TCK));
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	for (i = 0; i < 100; i++, usleep(50000)) {
		char body[256];

		if (http("GET", "/metrics", body, sizeof(body)) == 200)
			break;
	}
	CHECK(i < 100, "no metrics after the connections were closed");
	CHECK(!kill(pid, SIGTERM) && waitpid(pid, &status, 0) == pid, "stop");
	coord_pid = 0;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status 0x%x; see %s",
	      status, log);
}

/* ---- frames ------------------------------------------------------------ */

static Rswap__Envelope *recv_body(int fd, Rswap__Envelope__BodyCase want)
{
	Rswap__Envelope *e = NULL;
	const char *why;
	int ret = rswap_frame_recv_fd(fd, &e, &why);

	CHECK(!ret, "recv: %s (%s)", strerror(-ret), why);
	CHECK(e->body_case == want, "got message %d, want %d%s%s", e->body_case, want,
	      e->body_case == RSWAP__ENVELOPE__BODY_ERROR ? ": " : "",
	      e->body_case == RSWAP__ENVELOPE__BODY_ERROR ? e->error->reason : "");
	return e;
}

static int poold_register(const char *addr, uint64_t capacity)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;
	int fd = tcp_connect(coord_port);

	CHECK(fd >= 0, "connect");
	reg.listen_addr = (char *)addr;
	reg.capacity = capacity;
	e.seq = 1;
	e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
	e.poold_register = &reg;
	send_env(fd, &e);
	r = recv_body(fd, RSWAP__ENVELOPE__BODY_POOLD_REGISTERED);
	rswap__envelope__free_unpacked(r, NULL);
	return fd;
}

static int client_hello(const char *id, uint64_t size)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;
	int fd = tcp_connect(coord_port);

	CHECK(fd >= 0, "connect");
	h.client_id = (char *)id;
	h.size = size;
	e.seq = 7;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	send_env(fd, &e);
	return fd;
}

/* rswap-admin drain (or undrain) addr, as its message. */
static void admin_drain(const char *addr, bool undrain)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__AdminDrain d = RSWAP__ADMIN_DRAIN__INIT;
	int fd = tcp_connect(coord_port);

	CHECK(fd >= 0, "connect");
	d.poold_addr = (char *)addr;
	d.undrain = undrain;
	e.seq = 3;
	e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_DRAIN;
	e.admin_drain = &d;
	send_env(fd, &e);
	r = recv_body(fd, RSWAP__ENVELOPE__BODY_CLUSTER_STATE);
	rswap__envelope__free_unpacked(r, NULL);
	close(fd);
}

/* The fake poold answers one ChunkAlloc. */
static void poold_serve_alloc(int fd, uint64_t handle)
{
	Rswap__Envelope *r = recv_body(fd, RSWAP__ENVELOPE__BODY_CHUNK_ALLOC);
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkAllocDone d = RSWAP__CHUNK_ALLOC_DONE__INIT;

	d.handle = handle;
	e.seq = r->seq;
	e.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC_DONE;
	e.chunk_alloc_done = &d;
	send_env(fd, &e);
	rswap__envelope__free_unpacked(r, NULL);
}

/* ---- tests ------------------------------------------------------------- */

/* Exactly one line of output, ending in a newline. */
static bool one_line(const char *out)
{
	const char *nl = strchr(out, '\n');

	return nl && !nl[1];
}

static void test_usage_errors(void)
{
	char out[4096];
	int st;

	step("--metrics needs ADDR:PORT (exit 2, one line)");
	st = run(out, sizeof(out), "%s --insecure --listen 127.0.0.1:9400 --metrics 127.0.0.1", coord_bin);
	CHECK(st == 2 && strstr(out, "--metrics 127.0.0.1:") && one_line(out),
	      "rswap-coord: exit %d: %s", st, out);
	st = run(out, sizeof(out), "%s --insecure --coord 127.0.0.1:9400 --listen 127.0.0.1:9401 --capacity 1G --metrics '[::1'",
		 poold_bin);
	CHECK(st == 2 && strstr(out, "--metrics [::1") && one_line(out),
	      "poold: exit %d: %s", st, out);
	step("poold --zone: printable, no spaces, at most 63 bytes (exit 2, one line)");
	st = run(out, sizeof(out), "%s --insecure --coord 127.0.0.1:9400 --listen 127.0.0.1:9401 --capacity 1G --zone 'rack 3'",
		 poold_bin);
	CHECK(st == 2 && strstr(out, "--zone 'rack 3': expected 1 to 63 printable characters") &&
	      one_line(out), "poold: exit %d: %s", st, out);
	st = run(out, sizeof(out), "%s --insecure --coord 127.0.0.1:9400 --listen 127.0.0.1:9401 --capacity 1G --zone %064d",
		 poold_bin, 0);
	CHECK(st == 2 && strstr(out, "--zone '0000") && one_line(out), "poold: exit %d: %s", st, out);
	st = run(out, sizeof(out), "%s --help", coord_bin);
	CHECK(st == 0 && strstr(out, "--metrics ADDR:PORT") && strstr(out, "--stale-replace-ms"),
	      "rswap-coord --help: %s", out);
	st = run(out, sizeof(out), "%s --help", poold_bin);
	CHECK(st == 0 && strstr(out, "--metrics ADDR:PORT"), "poold --help: %s", out);
}

static void test_port_taken(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port, st;
	char out[8192];

	step("a --metrics port in use: exit 1 and say so");
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(!bind(fd, (struct sockaddr *)&sa, sizeof(sa)) && !listen(fd, 1), "bind");
	CHECK(!getsockname(fd, (struct sockaddr *)&sa, &len), "getsockname");
	port = ntohs(sa.sin_port);
	st = run(out, sizeof(out), "%s --insecure --listen 127.0.0.1:%d --metrics 127.0.0.1:%d",
		 coord_bin, free_port(), port);
	CHECK(st == 1 && strstr(out, "cannot serve metrics on 127.0.0.1:") &&
	      strstr(out, "in use"), "rswap-coord: exit %d: %s", st, out);
	/* Bound before RDMA: this works on a machine without RDMA too. */
	st = run(out, sizeof(out), "%s --insecure --coord 127.0.0.1:9 --listen 127.0.0.1:9401 --capacity 16M --metrics 127.0.0.1:%d",
		 poold_bin, port);
	CHECK(st == 1 && strstr(out, "cannot serve metrics on 127.0.0.1:") &&
	      strstr(out, "in use") && !strstr(out, "RDMA"), "poold: exit %d: %s", st, out);
	close(fd);
}

/* 20 KB of headers: refused (the endpoint takes 8 KiB), daemon unharmed. */
static void big_headers_refused(void)
{
	static char req[20480 + 128];
	char resp[64] = "";
	int fd = tcp_connect(metrics_port), code = 0;
	size_t n;

	CHECK(fd >= 0, "connect");
	n = (size_t)snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nX-Big: ");
	memset(req + n, 'a', 20480);
	n += 20480;
	n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n\r\n");
	/* The daemon may close before reading it all. */
	if (write(fd, req, n) > 0 && read(fd, resp, sizeof(resp) - 1) > 0)
		sscanf(resp, "HTTP/1.%*d %d", &code);
	close(fd);
	CHECK(code == 0 || (code >= 400 && code < 500), "20 KB of headers: %d", code);
}

static void test_http(void)
{
	char body[4096];

	step("only GET /metrics");
	CHECK(http("GET", "/", body, sizeof(body)) == 404, "GET /");
	CHECK(http("GET", "/metricsx", body, sizeof(body)) == 404, "GET /metricsx");
	CHECK(http("POST", "/metrics", body, sizeof(body)) == 405, "POST /metrics");
	CHECK(http("DELETE", "/metrics", body, sizeof(body)) == 405, "DELETE /metrics");
	CHECK(http("GET", "/metrics?x=1", body, sizeof(body)) == 200, "GET /metrics?x=1");
	big_headers_refused();
}

static int test_coordinator(void)
{
	Rswap__Envelope *r;
	char path[4096], out[8192];
	int pfd, cfd, bad, st, quiet[2];
	FILE *f;

	step("empty coordinator");
	scrape();
	expect("rswap_coord_poolds{state=\"alive\"} 0");
	expect("rswap_coord_clients 0");
	expect("rswap_coord_chunk_size_bytes 16777216");

	step("a poold registers: 1 alive, its capacity");
	pfd = poold_register("127.0.0.1:19401", 4 * CHUNK);
	scrape();
	expect("rswap_coord_poolds{state=\"alive\"} 1");
	expect("rswap_coord_capacity_bytes 67108864");
	expect("rswap_coord_poold_capacity_bytes{addr=\"127.0.0.1:19401\"} 67108864");
	expect("rswap_coord_poold_state{addr=\"127.0.0.1:19401\",state=\"alive\"} 1");
	expect("rswap_coord_placeable_free_bytes 67108864");

	step("a client gets 2 chunks");
	cfd = client_hello("host-a", 2 * CHUNK);
	poold_serve_alloc(pfd, 101);
	poold_serve_alloc(pfd, 102);
	r = recv_body(cfd, RSWAP__ENVELOPE__BODY_CHUNK_MAP);
	CHECK(r->chunk_map->n_slots == 2, "map of %zu slots", r->chunk_map->n_slots);
	rswap__envelope__free_unpacked(r, NULL);
	scrape();
	expect("rswap_coord_clients 1");
	expect("rswap_coord_peers{role=\"client\"} 1");
	expect("rswap_coord_peers{role=\"poold\"} 1");
	expect("rswap_coord_chunks{state=\"healthy\"} 2");
	expect("rswap_coord_used_bytes 33554432");
	expect("rswap_coord_poold_used_bytes{addr=\"127.0.0.1:19401\"} 33554432");
	expect("rswap_coord_placeable_free_bytes 33554432");

	step("draining the poold: no placeable room left; undrain gives it back");
	admin_drain("127.0.0.1:19401", false);
	scrape();
	expect("rswap_coord_poolds_draining 1");
	expect("rswap_coord_poold_draining{addr=\"127.0.0.1:19401\"} 1");
	expect("rswap_coord_placeable_free_bytes 0");
	admin_drain("127.0.0.1:19401", true);
	scrape();
	expect("rswap_coord_poolds_draining 0");
	expect("rswap_coord_placeable_free_bytes 33554432");

	step("a client asking for too much is refused: ENOSPC");
	close(cfd);
	cfd = client_hello("host-b", 100 * CHUNK);
	r = recv_body(cfd, RSWAP__ENVELOPE__BODY_ERROR);
	CHECK(r->error->code == ENOSPC, "code %d", r->error->code);
	rswap__envelope__free_unpacked(r, NULL);
	close(cfd);
	scrape();
	expect("rswap_coord_errors_sent_total{role=\"client\",reason=\"ENOSPC\"} 1");

	step("a bad first frame: EMSGSIZE, closed by the coordinator");
	bad = tcp_connect(coord_port);
	CHECK(bad >= 0, "connect");
	CHECK(write(bad, "\xff\xff\xff\xff", 4) == 4, "write");
	r = recv_body(bad, RSWAP__ENVELOPE__BODY_ERROR);
	rswap__envelope__free_unpacked(r, NULL);
	close(bad);
	/* poold, host-a, 2 admins, host-b and the bad one: the poold is left */
	expect_soon("rswap_coord_connections_open 1");
	expect("rswap_coord_errors_sent_total{role=\"peer\",reason=\"EMSGSIZE\"} 1");
	expect("rswap_coord_connections_closed_total{by=\"coordinator\"} 1");
	expect("rswap_coord_connections_accepted_total 6");

	step("the poold goes away: dead, its chunks unreachable");
	close(pfd);
	expect_soon("rswap_coord_connections_open 0");
	expect("rswap_coord_peers{role=\"poold\"} 0");
	expect("rswap_coord_poolds{state=\"alive\"} 0");
	expect("rswap_coord_poolds{state=\"dead\"} 1");
	expect("rswap_coord_chunks{state=\"unreachable\"} 2");
	expect("rswap_coord_chunks{state=\"healthy\"} 0");
	expect("rswap_coord_placeable_free_bytes 0");

	step("a third silent connection from one address is refused (--max-new-per-addr 2)");
	expect("rswap_coord_connections_max 100");
	expect("rswap_coord_connections_refused_total{reason=\"max_new_per_addr\"} 0");
	quiet[0] = tcp_connect(coord_port);
	quiet[1] = tcp_connect(coord_port);
	CHECK(quiet[0] >= 0 && quiet[1] >= 0, "connect");
	expect_soon("rswap_coord_connections_open 2");
	bad = tcp_connect(coord_port);
	CHECK(bad >= 0, "connect");
	CHECK(read(bad, out, 1) == 0, "the third connection was not closed at once");
	close(bad);
	scrape();
	expect("rswap_coord_connections_refused_total{reason=\"max_new_per_addr\"} 1");
	expect("rswap_coord_connections_refused_total{reason=\"max_conns\"} 0");
	expect("rswap_coord_connections_open 2");
	close(quiet[0]);
	close(quiet[1]);

	step("promtool check metrics on the last page");
	snprintf(path, sizeof(path), "%s/metrics-e2e.prom", workdir);
	f = fopen(path, "w");
	CHECK(f && fputs(page, f) >= 0 && !fclose(f), "writing %s", path);
	st = run(out, sizeof(out), "command -v promtool");
	if (st) {
		fprintf(stderr, "SKIP: promtool not found: run scripts/install-deps (Debian package prometheus)\n");
		return 77;
	}
	st = run(out, sizeof(out), "promtool check metrics < %s", path);
	CHECK(st == 0, "promtool check metrics < %s: %s", path, out);
	return 0;
}

/* A coordinator with a cluster key: a peer that skips the handshake. */
static void test_auth_failures(void)
{
	static const char hex[] =
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT, *r;
	Rswap__PooldRegister reg = RSWAP__POOLD_REGISTER__INIT;
	char key_file[4096];
	int fd, tries;
	FILE *f;

	step("with a cluster key: a poold that does not authenticate is an auth failure");
	snprintf(key_file, sizeof(key_file), "%s/metrics-e2e.key", workdir);
	unlink(key_file);
	fd = open(key_file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && (f = fdopen(fd, "w")) && fputs(hex, f) >= 0 && !fclose(f),
	      "writing %s", key_file);
	for (tries = 0; tries < 5 && !coord_try_start(key_file); tries++)
		;
	CHECK(coord_pid > 0, "rswap-coord with a key could not start");
	scrape();
	expect("rswap_coord_auth_failures_total 0");
	fd = tcp_connect(coord_port);
	CHECK(fd >= 0, "connect");
	reg.listen_addr = "127.0.0.1:19402";
	reg.capacity = CHUNK;
	e.seq = 1;
	e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
	e.poold_register = &reg;
	send_env(fd, &e);
	r = recv_body(fd, RSWAP__ENVELOPE__BODY_ERROR);
	CHECK(r->error->code == EACCES, "code %d: %s", r->error->code, r->error->reason);
	rswap__envelope__free_unpacked(r, NULL);
	close(fd);
	scrape();
	expect("rswap_coord_auth_failures_total 1");
	expect("rswap_coord_errors_sent_total{role=\"peer\",reason=\"EACCES\"} 1");
	expect("rswap_coord_poolds{state=\"alive\"} 0");
	coord_stop();
	unlink(key_file);
}

int main(int argc, char **argv)
{
	int tries, ret;

	if (argc != 4) {
		fprintf(stderr, "usage: test_metrics_e2e RSWAP_COORD POOLD WORKDIR\n");
		return 2;
	}
	coord_bin = argv[1];
	poold_bin = argv[2];
	workdir = argv[3];
	signal(SIGPIPE, SIG_IGN);
	atexit(kill_coord_at_exit);
	test_usage_errors();
	test_port_taken();
	test_out_of_fds();
	for (tries = 0; tries < 5 && !coord_try_start(NULL); tries++)
		;
	CHECK(coord_pid > 0, "rswap-coord could not start on 5 pairs of free ports");
	test_http();
	ret = test_coordinator();
	coord_stop();
	test_auth_failures();
	fprintf(stderr, ret ? "skipped (promtool missing); everything else passed\n" : "passed\n");
	return ret;
}
