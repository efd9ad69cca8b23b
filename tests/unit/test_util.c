// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/* proto/util.c: size and HOST:PORT parsing, size formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "rswap_util.h"

static void sizes_good(void **state)
{
	static const struct { const char *s; uint64_t v; } ok[] = {
		{ "1", 1 }, { "4096", 4096 }, { "16M", 16ull << 20 }, { "16m", 16ull << 20 },
		{ "4G", 4ull << 30 }, { "4GiB", 4ull << 30 }, { "4GB", 4ull << 30 },
		{ "2K", 2048 }, { "1T", 1ull << 40 }, { "512B", 512 }, { "16777215T", 16777215ull << 40 },
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(rswap_parse_size(ok[i].s, &v), 0);
		assert_int_equal(v, ok[i].v);
	}
}

static void sizes_bad(void **state)
{
	static const char *const bad[] = {
		"", "0", "0M", "-1", "+1", " 1", "1 ", "M", "1X", "1MM", "1.5G", "1e3",
		"abc", "4Gi", "4GiBx", "0x10",
	};
	uint64_t v = 42;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(rswap_parse_size(bad[i], &v), -EINVAL);
	assert_int_equal(rswap_parse_size(NULL, &v), -EINVAL);
	assert_int_equal(rswap_parse_size("16777216T", &v), -ERANGE);
	assert_int_equal(rswap_parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(v, 42);
}

static void hostport_good(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *why;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	assert_int_equal(rswap_parse_hostport("127.0.0.1:9400", 0, &ss, &len, &why), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 9400);
	assert_int_equal(rswap_parse_hostport("10.1.2.3", 9401, &ss, &len, &why), 0);
	assert_int_equal(ntohs(sin->sin_port), 9401);
	assert_int_equal(rswap_parse_hostport("[::1]:65535", 0, &ss, &len, &why), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 65535);
	assert_int_equal(rswap_parse_hostport("[::1]", 7, &ss, &len, &why), 0);
	assert_int_equal(ntohs(sin6->sin6_port), 7);
	assert_int_equal(rswap_parse_hostport("localhost:1", 0, &ss, &len, &why), 0);
}

static void hostport_bad(void **state)
{
	static const struct { const char *s; uint16_t def; const char *why; } bad[] = {
		{ "", 0, "empty" }, { "1.2.3.4", 0, "missing :PORT" },
		{ "1.2.3.4:0", 0, "port" }, { "1.2.3.4:65536", 0, "port" },
		{ "1.2.3.4:-1", 0, "port" }, { "1.2.3.4:+80", 0, "port" },
		{ "1.2.3.4:80x", 0, "port" }, { "1.2.3.4:", 9400, "port" },
		{ ":80", 0, "host" }, { "[::1", 0, "'['" }, { "[::1]x", 0, "after ']'" },
		{ "::1:80", 0, "[ADDR]:PORT" }, { "[]:80", 0, "host" },
	};
	struct sockaddr_storage ss;
	socklen_t len;
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(rswap_parse_hostport(bad[i].s, bad[i].def, &ss, &len, &why), -EINVAL);
		assert_non_null(why);
		if (!strstr(why, bad[i].why))
			fail_msg("'%s': reason '%s' lacks '%s'", bad[i].s, why, bad[i].why);
	}
	assert_int_equal(rswap_parse_hostport(NULL, 0, &ss, &len, &why), -EINVAL);
}

static void size_format(void **state)
{
	char b[16];

	assert_string_equal(rswap_fmt_size(100, b, sizeof(b)), "100B");
	assert_string_equal(rswap_fmt_size(16ull << 20, b, sizeof(b)), "16M");
	assert_string_equal(rswap_fmt_size(4ull << 30, b, sizeof(b)), "4G");
	assert_string_equal(rswap_fmt_size(3ull << 29, b, sizeof(b)), "1.5G");
	assert_string_equal(rswap_fmt_size(0, b, sizeof(b)), "0B");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes_good),
		cmocka_unit_test(sizes_bad),
		cmocka_unit_test(hostport_good),
		cmocka_unit_test(hostport_bad),
		cmocka_unit_test(size_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
