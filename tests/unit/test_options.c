// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/* rswap-coord's option table: defaults, bounds, messages. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "options.h"

#define END ((char *)NULL)

static int parse(struct coord_config *cfg, char *err, size_t errlen, ...)
{
	char *argv[16] = { "rswap-coord" };
	int argc = 1;
	va_list ap;
	char *a;

	va_start(ap, errlen);
	while ((a = va_arg(ap, char *)) && argc < 15)
		argv[argc++] = a;
	va_end(ap);
	err[0] = '\0';
	return coord_parse_args(argc, argv, cfg, err, errlen);
}

static void defaults(void **state)
{
	struct coord_config cfg;
	char err[256];

	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:9400", "--insecure",
			       END), 0);
	assert_int_equal(cfg.insecure, 1);
	assert_false(cfg.s.have_key);
	assert_int_equal(cfg.s.chunk_size, 4ull << 30);
	assert_int_equal(cfg.s.heartbeat_ms, 1000);
	assert_int_equal(cfg.s.timeout_ms, 10000);
	assert_int_equal(cfg.s.grace_ms, 10000);
	assert_int_equal(cfg.hello_timeout_ms, 10000);
	assert_int_equal(cfg.max_conns, 1024);
	assert_int_equal(cfg.max_new_per_addr, 16);
	assert_int_equal(cfg.s.stale_replace_ms, 30000);
	assert_true(cfg.s.out_limit >= (1u << 20));
	assert_int_equal(cfg.verbose, 0);
	assert_string_equal(cfg.listen, "127.0.0.1:9400");
}

static void all_options(void **state)
{
	struct coord_config cfg;
	char err[256];

	assert_int_equal(parse(&cfg, err, sizeof(err), "-l", "127.0.0.1", "-c", "16M",
			       "--heartbeat-ms", "250", "--timeout-ms=100", "-v", "-v", "--insecure",
			       END), 0);
	assert_int_equal(cfg.s.chunk_size, 16ull << 20);
	assert_int_equal(cfg.s.heartbeat_ms, 250);
	assert_int_equal(cfg.s.timeout_ms, 100);
	assert_int_equal(cfg.verbose, 2);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "[::1]:1", "--chunk-size",
			       "1T", "--insecure", END), 0);
	assert_int_equal(cfg.s.chunk_size, 1ull << 40);
	/* 0: a stale copy is never replaced (only lost and dead ones are). */
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1", "--insecure",
			       "--stale-replace-ms", "0", END), 0);
	assert_int_equal(cfg.s.stale_replace_ms, 0);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1", "--insecure",
			       "-S", "86400000", END), 0);
	assert_int_equal(cfg.s.stale_replace_ms, 86400000);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1", "--insecure",
			       "--stale-replace-ms", "86400001", END), -EINVAL);
	assert_non_null(strstr(err, "--stale-replace-ms 86400001: must be a number of milliseconds from 0 to 86400000"));
	assert_int_equal(parse(&cfg, err, sizeof(err), "--help", END), 1);
}

static void bad_values(void **state)
{
	static const struct { const char *opt, *val, *msg; } bad[] = {
		{ "--chunk-size", "8M", "--chunk-size 8M: must be a power of two from 16M to 1T" },
		{ "--chunk-size", "48M", "--chunk-size 48M: must be a power of two from 16M to 1T" },
		{ "--chunk-size", "2T", "--chunk-size 2T: must be a power of two from 16M to 1T" },
		{ "--chunk-size", "4Q", "--chunk-size 4Q: not a size (use e.g. 16M, 4G)" },
		{ "--heartbeat-ms", "9", "--heartbeat-ms 9: must be a number of milliseconds from 10 to 60000" },
		{ "--heartbeat-ms", "-5", "--heartbeat-ms -5: must be a number of milliseconds from 10 to 60000" },
		{ "--timeout-ms", "600001", "--timeout-ms 600001: must be a number of milliseconds from 100 to 600000" },
		{ "--timeout-ms", "99999999999999999999999", "--timeout-ms 99999999999999999999999: must be a number of milliseconds from 100 to 600000" },
		{ "--listen", "1.2.3.4:0", "--listen 1.2.3.4:0: port must be a number from 1 to 65535" },
		{ "--max-conns", "8", "--max-conns 8: must be a number from 16 to 65536" },
		{ "--max-new-per-addr", "0", "--max-new-per-addr 0: must be a number from 1 to 4096" },
		{ "--max-new-per-addr", "x", "--max-new-per-addr x: must be a number from 1 to 4096" },
	};
	struct coord_config cfg;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1",
				       "--insecure", bad[i].opt, bad[i].val, END), -EINVAL);
		assert_string_equal(err, bad[i].msg);
	}
	assert_int_equal(parse(&cfg, err, sizeof(err), END), -EINVAL);
	assert_string_equal(err, "--listen ADDR:PORT is required (e.g. --listen 0.0.0.0:9400)");
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1", "-x", END), -EINVAL);
	assert_string_equal(err, "unknown option -x (see --help)");
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1", "--chunk-size", END),
			 -EINVAL);
	assert_string_equal(err, "--chunk-size needs a value");
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1", "now", END), -EINVAL);
	assert_string_equal(err, "unexpected argument 'now' (see --help)");
}

static void the_key(void **state)
{
	char path[] = "/tmp/rswap-opt-key-XXXXXX", err[256];
	static const char hex[] =
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	struct coord_config cfg;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, hex, sizeof(hex) - 1), (ssize_t)sizeof(hex) - 1);
	close(fd);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1", END), -EINVAL);
	assert_non_null(strstr(err, "the cluster key is required: --key-file FILE"));
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1", "--insecure",
			       "--key-file", path, END), -EINVAL);
	assert_string_equal(err, "--key-file and --insecure exclude each other");
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1", "--key-file",
			       path, END), 0);
	assert_true(cfg.s.have_key);
	assert_int_equal(cfg.s.key[0], 0);
	assert_int_equal(cfg.s.key[31], 0x1f);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1", "--key-file",
			       path, END), -EPERM);
	assert_non_null(strstr(err, "chmod 600"));
	unlink(path);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1", "--key-file",
			       path, END), -ENOENT);
}

/* --metrics: off by default, ADDR:PORT with the port required. */
static void metrics_option(void **state)
{
	struct sockaddr_in *sin;
	struct coord_config cfg;
	char err[256];

	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1", "--insecure",
			       END), 0);
	assert_null(cfg.metrics);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1", "--insecure",
			       "--metrics", "127.0.0.2:9410", END), 0);
	assert_string_equal(cfg.metrics, "127.0.0.2:9410");
	sin = (struct sockaddr_in *)&cfg.metrics_addr;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 9410);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000002);
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1", "--insecure",
			       "--metrics", "127.0.0.1", END), -EINVAL);
	assert_non_null(strstr(err, "--metrics 127.0.0.1: "));
	assert_non_null(strstr(err, "PORT"));
	assert_int_equal(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:1", "--insecure",
			       "--metrics", END),
			 -EINVAL);
	assert_string_equal(err, "--metrics needs a value");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults),
		cmocka_unit_test(all_options),
		cmocka_unit_test(bad_values),
		cmocka_unit_test(the_key),
		cmocka_unit_test(metrics_option),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
