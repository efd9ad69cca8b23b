// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "rswap_util.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>

int rswap_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "ib")))
		end += 2;
	else if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -EINVAL;
	if (v == 0)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int rswap_parse_hostport(const char *s, uint16_t default_port,
			 struct sockaddr_storage *ss, socklen_t *len,
			 const char **why)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	char host[256], port[8];
	const char *colon, *h = s;
	size_t hlen;
	unsigned long p;
	char *end;
	int ret;

	if (!s || !*s) {
		*why = "empty address (expected HOST:PORT)";
		return -EINVAL;
	}
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close) {
			*why = "unterminated '[' in address";
			return -EINVAL;
		}
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] && !colon) {
			*why = "junk after ']' in address";
			return -EINVAL;
		}
	} else {
		colon = strrchr(s, ':');
		hlen = colon ? (size_t)(colon - s) : strlen(s);
		if (colon && memchr(s, ':', hlen)) {
			*why = "IPv6 addresses must be written [ADDR]:PORT";
			return -EINVAL;
		}
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		*why = "missing or overlong host in address";
		return -EINVAL;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (colon) {
		errno = 0;
		p = strtoul(colon + 1, &end, 10);
		if (!isdigit((unsigned char)colon[1]) || *end || errno ||
		    p == 0 || p > 65535) {
			*why = "port must be a number from 1 to 65535";
			return -EINVAL;
		}
	} else if (default_port) {
		p = default_port;
	} else {
		*why = "missing :PORT in address";
		return -EINVAL;
	}
	snprintf(port, sizeof(port), "%lu", p);
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret) {
		*why = ret == EAI_NONAME ? "host name does not resolve" :
					   gai_strerror(ret);
		return -EHOSTUNREACH;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

bool rswap_zone_valid(const char *zone)
{
	size_t n = strlen(zone), i;

	if (!n || n > RSWAP_ZONE_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!isgraph((unsigned char)zone[i]))
			return false;
	return true;
}

const char *rswap_fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "BKMGTP";
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%lluB", (unsigned long long)bytes);
	else if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u]);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
	return buf;
}

static const char *log_prog = "rswap";
static int log_verbose;

void rswap_log_init(const char *prog, int verbose)
{
	log_prog = prog;
	log_verbose = verbose;
}

void rswap_log(enum rswap_log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	va_list ap;

	if (lvl == RSWAP_LOG_DEBUG && !log_verbose)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld %s: %s: ", stamp, ts.tv_nsec / 1000000,
		log_prog, names[lvl]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
