// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/* The cluster key file and the handshake MACs (proto/rswap_auth.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "auth.h"

static uint8_t key[RSWAP_KEY_LEN], ni[RSWAP_NONCE_LEN], nr[RSWAP_NONCE_LEN];

static void setup_vectors(void)
{
	int i;

	for (i = 0; i < 32; i++) {
		key[i] = (uint8_t)i;
		ni[i] = (uint8_t)(0xa0 + i % 16);
		nr[i] = (uint8_t)(0x50 + i % 7);
	}
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/*
 * The expected MACs were computed with Python's hmac module over the byte
 * layout rswap_auth.h specifies: they pin that layout, which the kernel's
 * implementation must produce too.
 */
static void mac_matches_the_specified_layout(void **state)
{
	uint8_t mac[RSWAP_MAC_LEN];
	char h[2 * RSWAP_MAC_LEN + 1];

	setup_vectors();
	assert_int_equal(rswap_auth_mac(key, RSWAP_AUTH_LABEL_R, RSWAP_AUTH_ROLE_CLIENT,
					"host17", 6, ni, nr, mac), 0);
	hex(mac, sizeof(mac), h);
	assert_string_equal(h, "8afa798ec7083f3fcfd154a4ddadb2ef3efd01c5238efc76bbe7a28161983a8a");
	assert_int_equal(rswap_auth_mac(key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_CLIENT,
					"host17", 6, nr, ni, mac), 0);
	hex(mac, sizeof(mac), h);
	assert_string_equal(h, "a6538d388ee159d34a353b8871bd13c491bf5d9a105343949481453d3761b106");
}

static void check_refuses_every_mismatch(void **state)
{
	uint8_t mac[RSWAP_MAC_LEN], other[RSWAP_KEY_LEN];

	setup_vectors();
	assert_int_equal(rswap_auth_mac(key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_POOLD,
					"10.0.0.3:9401", 13, nr, ni, mac), 0);
	assert_true(rswap_auth_check(key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_POOLD,
				     "10.0.0.3:9401", 13, nr, ni, mac, sizeof(mac)));
	/* Reflection: the responder's label is not the initiator's. */
	assert_false(rswap_auth_check(key, RSWAP_AUTH_LABEL_R, RSWAP_AUTH_ROLE_POOLD,
				      "10.0.0.3:9401", 13, nr, ni, mac, sizeof(mac)));
	/* Nonces in the other order, another role, another id. */
	assert_false(rswap_auth_check(key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_POOLD,
				      "10.0.0.3:9401", 13, ni, nr, mac, sizeof(mac)));
	assert_false(rswap_auth_check(key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_CLIENT,
				      "10.0.0.3:9401", 13, nr, ni, mac, sizeof(mac)));
	assert_false(rswap_auth_check(key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_POOLD,
				      "10.0.0.4:9401", 13, nr, ni, mac, sizeof(mac)));
	/* Another key, a short or absent MAC, a flipped bit. */
	memcpy(other, key, sizeof(other));
	other[31] ^= 1;
	assert_false(rswap_auth_check(other, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_POOLD,
				      "10.0.0.3:9401", 13, nr, ni, mac, sizeof(mac)));
	assert_false(rswap_auth_check(key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_POOLD,
				      "10.0.0.3:9401", 13, nr, ni, mac, sizeof(mac) - 1));
	assert_false(rswap_auth_check(key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_POOLD,
				      "10.0.0.3:9401", 13, nr, ni, NULL, 0));
	mac[0] ^= 0x80;
	assert_false(rswap_auth_check(key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_POOLD,
				      "10.0.0.3:9401", 13, nr, ni, mac, sizeof(mac)));
	/* An id longer than the layout allows is refused, not truncated. */
	{
		char longid[RSWAP_AUTH_ID_MAX + 2];

		memset(longid, 'x', sizeof(longid));
		assert_int_equal(rswap_auth_mac(key, RSWAP_AUTH_LABEL_I, RSWAP_AUTH_ROLE_ADMIN,
						longid, sizeof(longid), nr, ni, mac), -EINVAL);
	}
}

static char tmpdir[] = "/tmp/rswap-auth-XXXXXX";

static const char *write_file(const char *name, const char *text, mode_t mode)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void key_files(void **state)
{
	char hexkey[RSWAP_KEY_HEX_LEN + 4], why[256], again[RSWAP_KEY_HEX_LEN + 2];
	uint8_t k[RSWAP_KEY_LEN];
	const char *p;
	int i;

	assert_non_null(mkdtemp(tmpdir));
	assert_int_equal(rswap_key_generate(hexkey), 0);
	assert_int_equal(strlen(hexkey), RSWAP_KEY_HEX_LEN + 1);
	assert_int_equal(rswap_key_generate(again), 0);
	assert_string_not_equal(hexkey, again);

	p = write_file("good", hexkey, 0600);
	assert_int_equal(rswap_key_load(p, k, why, sizeof(why)), 0);
	for (i = 0; i < RSWAP_KEY_LEN; i++) {
		unsigned int b;

		assert_int_equal(sscanf(hexkey + 2 * i, "%2x", &b), 1);
		assert_int_equal(k[i], b);
	}
	hexkey[RSWAP_KEY_HEX_LEN] = '\0';	/* no newline is fine too */
	p = write_file("nonl", hexkey, 0400);
	assert_int_equal(rswap_key_load(p, k, why, sizeof(why)), 0);

	p = write_file("open", hexkey, 0644);
	assert_int_equal(rswap_key_load(p, k, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "chmod 600"));
	assert_null(strstr(why, hexkey));

	p = write_file("short", "abcdef\n", 0600);
	assert_int_equal(rswap_key_load(p, k, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "64 hex digits"));
	hexkey[5] = 'g';
	p = write_file("nothex", hexkey, 0600);
	assert_int_equal(rswap_key_load(p, k, why, sizeof(why)), -EINVAL);
	hexkey[5] = 'a';
	strcat(hexkey, "\n\n");
	p = write_file("twolines", hexkey, 0600);
	assert_int_equal(rswap_key_load(p, k, why, sizeof(why)), -EINVAL);

	snprintf(why, sizeof(why), "%s/none", tmpdir);
	assert_int_equal(rswap_key_load(why, k, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "keygen"));
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		assert_int_equal(system(cmd), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mac_matches_the_specified_layout),
		cmocka_unit_test(check_refuses_every_mismatch),
		cmocka_unit_test(key_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
