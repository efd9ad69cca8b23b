/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * Helpers of the end-to-end tests that drive a real rswap-coord over TCP:
 * processes, sockets, frames.  Every check failure prints one line and
 * exits 1.
 */
#ifndef RSWAP_TEST_E2E_H
#define RSWAP_TEST_E2E_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "rswap.pb-c.h"

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__);				\
		fprintf(stderr, "\n");					\
		exit(1);						\
	}								\
} while (0)

void step(const char *what);
uint64_t now_ms(void);
/* A loopback TCP port nobody listens on right now. */
int free_port(void);
/* Connected to 127.0.0.1:port (5 s receive timeout), or -1. */
int tcp_connect(int port);
/* Run a command line; returns the exit status, stdout+stderr in out. */
int run(char *out, size_t outlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int count_lines(const char *s);
/* Bad usage: exit 2 and exactly one line that contains needle. */
void expect_usage_error(const char *bin, const char *args, const char *needle);
void send_env(int fd, Rswap__Envelope *e);
Rswap__Envelope *recv_env(int fd);
/* The coordinator closed fd, after at most one Error frame (with needle). */
void expect_closed(int fd, const char *needle);
void send_raw(int fd, const void *buf, size_t len);

#endif /* RSWAP_TEST_E2E_H */
