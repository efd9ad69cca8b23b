// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "e2e.h"
#include "rswap_frame.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

void step(const char *what)
{
	fprintf(stderr, "--- %s\n", what);
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}


int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(!bind(fd, (struct sockaddr *)&sa, sizeof(sa)), "bind: %s", strerror(errno));
	CHECK(!getsockname(fd, (struct sockaddr *)&sa, &len), "getsockname");
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

int tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}



/* Run a command line; returns the exit status, stdout+stderr in out. */
int run(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	size_t n = 0;
	FILE *f;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	f = popen(cmd, "r");
	CHECK(f, "popen");
	n = fread(out, 1, outlen - 1, f);
	out[n] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Bad usage: exit 2 and exactly one line that starts with the program. */
void expect_usage_error(const char *bin, const char *args, const char *needle)
{
	char out[4096];
	int st = run(out, sizeof(out), "%s %s", bin, args);

	CHECK(st == 2, "'%s %s' exited %d, want 2: %s", bin, args, st, out);
	CHECK(count_lines(out) == 1, "'%s %s' printed %d lines: %s", bin, args,
	      count_lines(out), out);
	CHECK(strstr(out, needle), "'%s %s': '%s' not in: %s", bin, args, needle, out);
}

/* ---- frames ------------------------------------------------------------ */

void send_env(int fd, Rswap__Envelope *e)
{
	int ret;

	e->version = RSWAP_PROTO_VERSION;
	ret = rswap_frame_send_fd(fd, e);
	CHECK(!ret, "send: %s", strerror(-ret));
}

Rswap__Envelope *recv_env(int fd)
{
	Rswap__Envelope *e = NULL;
	const char *why;
	int ret = rswap_frame_recv_fd(fd, &e, &why);

	CHECK(!ret, "recv: %s (%s)", strerror(-ret), why);
	return e;
}

/* The coordinator closed fd, after at most one Error frame. */
void expect_closed(int fd, const char *needle)
{
	Rswap__Envelope *e = NULL;
	const char *why;
	int ret = rswap_frame_recv_fd(fd, &e, &why);

	if (!ret) {
		CHECK(e->body_case == RSWAP__ENVELOPE__BODY_ERROR,
		      "expected Error before close, got message %d", e->body_case);
		CHECK(!needle || strstr(e->error->reason, needle),
		      "'%s' not in Error '%s'", needle, e->error->reason);
		fprintf(stderr, "    closed with: %s\n", e->error->reason);
		rswap__envelope__free_unpacked(e, NULL);
		ret = rswap_frame_recv_fd(fd, &e, &why);
	} else {
		CHECK(!needle, "connection closed without the Error '%s'", needle);
	}
	CHECK(ret == -ECONNRESET, "connection still open after a violation (%d)", ret);
	close(fd);
}

void send_raw(int fd, const void *buf, size_t len)
{
	CHECK(write(fd, buf, len) == (ssize_t)len, "write");
}

