/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/* Parsing and logging shared by the userspace programs. */
#ifndef RSWAP_UTIL_H
#define RSWAP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Parse a byte size: a decimal number with an optional K, M, G or T suffix
 * (binary multiples; an optional trailing "iB" or "B" is accepted).
 * Rejects empty strings, signs, junk, zero and overflow.  0 or -EINVAL/-ERANGE.
 */
int rswap_parse_size(const char *s, uint64_t *out);

/*
 * Parse "HOST:PORT" or "[V6]:PORT" (numeric host, or a name resolved with
 * getaddrinfo) into a socket address.  Port 1..65535 required unless
 * default_port is nonzero and the ":PORT" part is absent.  0 or -errno;
 * *why gets a one-line reason on failure.
 */
int rswap_parse_hostport(const char *s, uint16_t default_port,
			 struct sockaddr_storage *ss, socklen_t *len,
			 const char **why);

/*
 * A failure-domain name (poold --zone, PooldRegister.zone): 1 to
 * RSWAP_ZONE_MAX printable bytes without spaces (a space would split the
 * column of `rswap-admin list`).
 */
#define RSWAP_ZONE_MAX	63
bool rswap_zone_valid(const char *zone);

/* Format a byte count as "4.0G", "512M", "12K" or "100B" into buf. */
const char *rswap_fmt_size(uint64_t bytes, char *buf, size_t len);

enum rswap_log_level { RSWAP_LOG_ERR, RSWAP_LOG_WARN, RSWAP_LOG_INFO, RSWAP_LOG_DEBUG };

/* Program name and verbosity for rswap_log(); call once from main(). */
void rswap_log_init(const char *prog, int verbose);
void rswap_log(enum rswap_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)	rswap_log(RSWAP_LOG_ERR, __VA_ARGS__)
#define log_warn(...)	rswap_log(RSWAP_LOG_WARN, __VA_ARGS__)
#define log_info(...)	rswap_log(RSWAP_LOG_INFO, __VA_ARGS__)
#define log_debug(...)	rswap_log(RSWAP_LOG_DEBUG, __VA_ARGS__)

#endif /* RSWAP_UTIL_H */
