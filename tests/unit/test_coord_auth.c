// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * A real rswap-coord with a cluster key, attacked as an outsider would:
 * peers without the key, with a wrong key, a replayed and a reflected
 * handshake, a poold or client acting beyond the identity it proved, an
 * admin without the key.  Each must be refused with a clear Error while
 * members are still served.
 *
 *   test_coord_auth RSWAP_COORD RSWAP_ADMIN LOGDIR
 */
#include "e2e.h"
#include "auth.h"
#include "rswap_frame.h"
#include "rswap.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MB (1ull << 20)

static const char *coord_bin, *admin_bin, *logdir;
static char key_path[512], bad_key_path[512];
static uint8_t key[RSWAP_KEY_LEN], bad_key[RSWAP_KEY_LEN];
static pid_t coord_pid;
static int port;

static void kill_coord(void)
{
	if (coord_pid > 0)
		kill(coord_pid, SIGKILL);
}

static void write_key(const char *path, uint8_t out[RSWAP_KEY_LEN])
{
	char hex[RSWAP_KEY_HEX_LEN + 2], why[256];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0 && !rswap_key_generate(hex), "key %s", path);
	CHECK(write(fd, hex, strlen(hex)) == (ssize_t)strlen(hex), "write key");
	close(fd);
	CHECK(!rswap_key_load(path, out, why, sizeof(why)), "%s", why);
}

static void coord_start(void)
{
	char listen[32], log[600];
	uint64_t t0;
	int fd;

	port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(log, sizeof(log), "%s/coord-auth.log", logdir);
	coord_pid = fork();
	CHECK(coord_pid >= 0, "fork");
	if (!coord_pid) {
		if (!freopen(log, "w", stderr))
			_exit(127);
		execl(coord_bin, coord_bin, "--listen", listen, "--chunk-size", "16M",
		      "--key-file", key_path, "--hello-timeout-ms", "2000", "-v", (char *)NULL);
		_exit(127);
	}
	for (t0 = now_ms(); now_ms() - t0 < 10000; usleep(20000)) {
		fd = tcp_connect(port);
		if (fd >= 0) {
			close(fd);
			return;
		}
	}
	CHECK(0, "rswap-coord with a key did not start; see %s", log);
}

/* A connection that has authenticated with k as (role, id). */
static int member(const uint8_t *k, enum rswap_auth_role role, const char *id)
{
	char why[300];
	int fd = tcp_connect(port), ret;

	CHECK(fd >= 0, "connect");
	ret = rswap_auth_handshake_fd(fd, k, role, id, why, sizeof(why));
	CHECK(!ret, "handshake as %s: %s", id, why);
	return fd;
}

static void send_hello(int fd, enum rswap_auth_role role, const char *id,
		       const uint8_t nonce[RSWAP_NONCE_LEN])
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__AuthHello h = RSWAP__AUTH_HELLO__INIT;

	h.role = (Rswap__PeerRole)role;
	h.id = (char *)id;
	h.nonce.data = (uint8_t *)nonce;
	h.nonce.len = RSWAP_NONCE_LEN;
	e.seq = 1;
	e.body_case = RSWAP__ENVELOPE__BODY_AUTH_HELLO;
	e.auth_hello = &h;
	send_env(fd, &e);
}

static void send_proof(int fd, const uint8_t mac[RSWAP_MAC_LEN])
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__AuthProof p = RSWAP__AUTH_PROOF__INIT;

	p.mac.data = (uint8_t *)mac;
	p.mac.len = RSWAP_MAC_LEN;
	e.seq = 2;
	e.body_case = RSWAP__ENVELOPE__BODY_AUTH_PROOF;
	e.auth_proof = &p;
	send_env(fd, &e);
}

static void send_register(int fd, const char *addr)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__PooldRegister r = RSWAP__POOLD_REGISTER__INIT;

	r.listen_addr = (char *)addr;
	r.capacity = 64 * MB;
	e.seq = 3;
	e.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTER;
	e.poold_register = &r;
	send_env(fd, &e);
}

static void send_client_hello(int fd, const char *id)
{
	Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
	Rswap__ClientHello h = RSWAP__CLIENT_HELLO__INIT;

	h.client_id = (char *)id;
	h.size = 16 * MB;
	e.seq = 4;
	e.body_case = RSWAP__ENVELOPE__BODY_CLIENT_HELLO;
	e.client_hello = &h;
	send_env(fd, &e);
}

static void attacks(void)
{
	uint8_t nonce[RSWAP_NONCE_LEN], mac[RSWAP_MAC_LEN], recorded[RSWAP_MAC_LEN];
	Rswap__Envelope *r;
	char out[8192];
	int fd, poold_fd, st;

	step("a member poold registers; it stays registered through every attack");
	poold_fd = member(key, RSWAP_AUTH_ROLE_POOLD, "127.0.0.1:29001");
	send_register(poold_fd, "127.0.0.1:29001");
	r = recv_env(poold_fd);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED, "member poold: message %d",
	      r->body_case);
	rswap__envelope__free_unpacked(r, NULL);

	step("a poold without the key is refused");
	fd = tcp_connect(port);
	send_register(fd, "6.6.6.6:9401");
	expect_closed(fd, "PooldRegister before authenticating: this coordinator requires the cluster key");

	step("a poold with a wrong key: the coordinator's proof fails here, ours fails there");
	fd = tcp_connect(port);
	CHECK(rswap_auth_handshake_fd(fd, bad_key, RSWAP_AUTH_ROLE_POOLD, "6.6.6.6:9401", out,
				      sizeof(out)) == -EACCES &&
	      strstr(out, "failed to prove the cluster key"), "wrong key accepted: %s", out);
	close(fd);
	fd = tcp_connect(port);
	CHECK(!rswap_auth_nonce(nonce, sizeof(nonce)), "nonce");
	send_hello(fd, RSWAP_AUTH_ROLE_POOLD, "6.6.6.6:9401", nonce);
	r = recv_env(fd);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_AUTH_CHALLENGE &&
	      r->auth_challenge->nonce.len == RSWAP_NONCE_LEN, "challenge");
	CHECK(!rswap_auth_mac(bad_key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_POOLD, "6.6.6.6:9401",
			      12, r->auth_challenge->nonce.data, nonce, mac), "mac");
	rswap__envelope__free_unpacked(r, NULL);
	send_proof(fd, mac);
	send_register(fd, "6.6.6.6:9401");
	expect_closed(fd, "poold 6.6.6.6:9401: authentication failed (wrong cluster key?)");

	step("a replayed proof: a new challenge, so the recorded proof is worthless");
	fd = tcp_connect(port);
	send_hello(fd, RSWAP_AUTH_ROLE_POOLD, "127.0.0.1:29002", nonce);
	r = recv_env(fd);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_AUTH_CHALLENGE, "challenge 1");
	CHECK(!rswap_auth_mac(key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_POOLD, "127.0.0.1:29002",
			      15, r->auth_challenge->nonce.data, nonce, recorded), "mac");
	rswap__envelope__free_unpacked(r, NULL);
	send_proof(fd, recorded);
	send_register(fd, "127.0.0.1:29002");
	r = recv_env(fd);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_POOLD_REGISTERED, "the original session");
	rswap__envelope__free_unpacked(r, NULL);
	close(fd);
	fd = tcp_connect(port);
	send_hello(fd, RSWAP_AUTH_ROLE_POOLD, "127.0.0.1:29002", nonce);
	r = recv_env(fd);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_AUTH_CHALLENGE, "challenge 2");
	rswap__envelope__free_unpacked(r, NULL);
	send_proof(fd, recorded);
	send_register(fd, "127.0.0.1:29002");
	expect_closed(fd, "authentication failed");

	step("a reflected handshake: the coordinator's own MAC is no proof");
	fd = tcp_connect(port);
	send_hello(fd, RSWAP_AUTH_ROLE_ADMIN, "mallory", nonce);
	r = recv_env(fd);
	CHECK(r->body_case == RSWAP__ENVELOPE__BODY_AUTH_CHALLENGE &&
	      r->auth_challenge->mac.len == RSWAP_MAC_LEN, "challenge");
	memcpy(mac, r->auth_challenge->mac.data, RSWAP_MAC_LEN);
	rswap__envelope__free_unpacked(r, NULL);
	send_proof(fd, mac);
	expect_closed(fd, NULL);

	step("an authenticated poold cannot register another poold's address");
	fd = member(key, RSWAP_AUTH_ROLE_POOLD, "127.0.0.1:29003");
	send_register(fd, "127.0.0.1:29001");
	expect_closed(fd, "authenticated as poold 127.0.0.1:29003, cannot act as poold 127.0.0.1:29001");

	step("a client without the key, and one speaking for another id, are refused");
	fd = tcp_connect(port);
	send_client_hello(fd, "victim");
	expect_closed(fd, "ClientHello before authenticating");
	fd = member(key, RSWAP_AUTH_ROLE_CLIENT, "mallory");
	send_client_hello(fd, "victim");
	expect_closed(fd, "authenticated as client mallory, cannot act as client victim");
	fd = member(key, RSWAP_AUTH_ROLE_ADMIN, "rswap-admin");
	send_client_hello(fd, "victim");
	expect_closed(fd, "admin rswap-admin: authenticated as admin rswap-admin, cannot act as client");

	step("AdminList and drain without the key are refused; with it they work");
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d --key-file /dev/null list", admin_bin,
		 port);
	CHECK(st == 2 && strstr(out, "is not a regular file"), "admin bad key file (%d): %s",
	      st, out);
	st = run(out, sizeof(out), "cd / && %s --coord 127.0.0.1:%d list", admin_bin, port);
	CHECK(st == 1 && strstr(out, "AdminList before authenticating") && count_lines(out) == 1,
	      "admin without key (%d): %s", st, out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d drain 127.0.0.1:29001", admin_bin, port);
	CHECK(st == 1 && strstr(out, "before authenticating"), "drain without key (%d): %s", st,
	      out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d --key-file %s list", admin_bin, port,
		 bad_key_path);
	CHECK(st == 1 && strstr(out, "failed to prove the cluster key") && count_lines(out) == 1,
	      "admin with a wrong key (%d): %s", st, out);
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d --key-file %s list", admin_bin, port,
		 key_path);
	CHECK(st == 0 && strstr(out, "127.0.0.1:29001") && strstr(out, "127.0.0.1:29002"),
	      "admin with the key (%d): %s", st, out);

	step("the member poold was never disturbed: it still beats and is listed alive");
	{
		Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
		Rswap__Heartbeat hb = RSWAP__HEARTBEAT__INIT;

		e.body_case = RSWAP__ENVELOPE__BODY_HEARTBEAT;
		e.heartbeat = &hb;
		send_env(poold_fd, &e);
	}
	st = run(out, sizeof(out), "%s --coord 127.0.0.1:%d --key-file %s list", admin_bin, port,
		 key_path);
	CHECK(st == 0 && strstr(out, "127.0.0.1:29001          alive"), "member poold (%d): %s", st,
	      out);
	close(poold_fd);
}

/* A connection from 127.0.0.2 (another address on the loopback). */
static int connect_from_other_addr(void)
{
	struct sockaddr_in src = { .sin_family = AF_INET };
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	src.sin_addr.s_addr = htonl(0x7f000002);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 && !bind(fd, (struct sockaddr *)&src, sizeof(src)), "bind 127.0.0.2");
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Has the coordinator closed fd (EOF or reset), waiting up to ms? */
static bool closed_within(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char b;

	return poll(&pfd, 1, ms) == 1 && recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

static void hostile_load(void)
{
	static int fds[2000];
	struct rlimit rl = { 4096, 4096 };
	int i, open_ = 0, cut = 0, fd;
	char out[8192];
	uint64_t t0;

	step("2000 idle connections from one address: refused or cut off; members still served");
	CHECK(!setrlimit(RLIMIT_NOFILE, &rl), "setrlimit: %s", strerror(errno));
	t0 = now_ms();
	for (i = 0; i < 2000; i++)
		fds[i] = connect_from_other_addr();
	/*
	 * The kernel completes a connect before the coordinator accepts it;
	 * give it time to accept and refuse the excess, but less than the
	 * 2 s hello timeout that ends the ones it keeps.
	 */
	do {
		usleep(100000);
		for (open_ = 0, i = 0; i < 2000; i++)
			open_ += fds[i] >= 0 && !closed_within(fds[i], 0);
	} while (open_ > 16 && now_ms() - t0 < 1500);
	CHECK(open_ <= 16, "%d idle connections from one address still open (cap 16)", open_);
	t0 = now_ms();
	CHECK(!run(out, sizeof(out), "%s --coord 127.0.0.1:%d --key-file %s list", admin_bin, port,
		   key_path), "a member was not served under the flood: %s", out);
	fprintf(stderr, "    %d of 2000 held open, a member served in %llu ms\n", open_,
		(unsigned long long)(now_ms() - t0));
	for (i = 0; i < 2000; i++)
		if (fds[i] >= 0)
			cut += closed_within(fds[i], 3000);
	CHECK(cut == 2000 - (int)(fds[0] < 0), "only %d idle connections were cut off", cut);
	for (i = 0; i < 2000; i++)
		if (fds[i] >= 0)
			close(fds[i]);

	step("a member that floods requests is cut off; the coordinator goes on");
	fd = member(key, RSWAP_AUTH_ROLE_ADMIN, "flooder");
	for (i = 0; i < 300; i++) {
		Rswap__Envelope e = RSWAP__ENVELOPE__INIT;
		Rswap__AdminList l = RSWAP__ADMIN_LIST__INIT;

		e.seq = (uint64_t)i + 10;
		e.body_case = RSWAP__ENVELOPE__BODY_ADMIN_LIST;
		e.admin_list = &l;
		e.version = RSWAP_PROTO_VERSION;
		if (rswap_frame_send_fd(fd, &e))
			break;
	}
	for (;;) {
		Rswap__Envelope *r = NULL;
		const char *why;

		if (rswap_frame_recv_fd(fd, &r, &why))
			break;
		if (r->body_case == RSWAP__ENVELOPE__BODY_ERROR) {
			CHECK(strstr(r->error->reason, "more than 200 messages in one second"),
			      "flood refused with: %s", r->error->reason);
			fprintf(stderr, "    closed with: %s\n", r->error->reason);
			rswap__envelope__free_unpacked(r, NULL);
			break;
		}
		rswap__envelope__free_unpacked(r, NULL);
	}
	CHECK(closed_within(fd, 3000), "a flooding peer stayed connected");
	close(fd);
	CHECK(!run(out, sizeof(out), "%s --coord 127.0.0.1:%d --key-file %s list", admin_bin, port,
		   key_path), "the coordinator stopped serving after a flood: %s", out);
}

/* A peer with a key must not trust a coordinator that has none. */
static void keyed_admin_against_insecure(void)
{
	char listen[32], out[4096], log[600];
	pid_t pid;
	int p = free_port(), st, fd;
	uint64_t t0;

	step("rswap-admin with a key refuses a coordinator started --insecure");
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", p);
	snprintf(log, sizeof(log), "%s/coord-insecure.log", logdir);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (!pid) {
		if (!freopen(log, "w", stderr))
			_exit(127);
		execl(coord_bin, coord_bin, "--listen", listen, "--insecure", (char *)NULL);
		_exit(127);
	}
	for (t0 = now_ms(); now_ms() - t0 < 10000; usleep(20000)) {
		fd = tcp_connect(p);
		if (fd >= 0) {
			close(fd);
			break;
		}
	}
	st = run(out, sizeof(out), "%s --coord %s --key-file %s list", admin_bin, listen, key_path);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	CHECK(st == 1 && strstr(out, "runs without a cluster key (--insecure)"),
	      "keyed admin vs insecure coordinator (%d): %s", st, out);
	st = run(out, sizeof(out), "grep -c 'running without a cluster key (--insecure)' %s", log);
	CHECK(st == 0, "no warning at start of an insecure coordinator: %s", out);
}

int main(int argc, char **argv)
{
	int status;

	if (argc != 4) {
		fprintf(stderr, "usage: %s RSWAP_COORD RSWAP_ADMIN LOGDIR\n", argv[0]);
		return 2;
	}
	coord_bin = argv[1];
	admin_bin = argv[2];
	logdir = argv[3];
	signal(SIGPIPE, SIG_IGN);
	atexit(kill_coord);
	snprintf(key_path, sizeof(key_path), "%s/auth-test.key", logdir);
	snprintf(bad_key_path, sizeof(bad_key_path), "%s/auth-test-wrong.key", logdir);
	write_key(key_path, key);
	write_key(bad_key_path, bad_key);
	coord_start();
	attacks();
	hostile_load();
	keyed_admin_against_insecure();
	CHECK(!kill(coord_pid, SIGTERM) && waitpid(coord_pid, &status, 0) == coord_pid, "stop");
	coord_pid = 0;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "rswap-coord did not exit cleanly (0x%x); see %s/coord-auth.log", status, logdir);
	fprintf(stderr, "PASS\n");
	return 0;
}
