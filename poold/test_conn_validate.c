// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/* cmocka: poold's checks of connect requests and coordinator messages. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "conn_validate.h"
#include "rswap.pb-c.h"

static struct rswap_conn_req good_req(void)
{
	struct rswap_conn_req r;

	memset(&r, 0, sizeof(r));
	r.magic = htole32(RSWAP_WIRE_MAGIC);
	r.version = htole16(RSWAP_WIRE_VERSION);
	r.qp_index = htole16(1);
	r.qp_count = htole16(4);
	r.session = htole64(0x1122334455667788ull);
	memcpy(r.client_id, "host-1", 6);
	return r;
}

static enum rswap_rej_reason check(const struct rswap_conn_req *r, unsigned int max_qps,
				   struct poold_conn_params *cp)
{
	const char *why = NULL;
	enum rswap_rej_reason ret = poold_conn_validate(r, sizeof(*r), max_qps, cp, &why);

	if (ret != RSWAP_REJ_NONE)
		assert_non_null(why);
	return ret;
}

static void test_accepts_good_request(void **state)
{
	struct rswap_conn_req r = good_req();
	struct poold_conn_params cp;

	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_NONE);
	assert_int_equal(cp.version, RSWAP_WIRE_VERSION);
	assert_int_equal(cp.qp_index, 1);
	assert_int_equal(cp.qp_count, 4);
	assert_true(cp.session == 0x1122334455667788ull);
	assert_string_equal(cp.client_id, "host-1");
}

static void test_negotiates_down_from_newer_client(void **state)
{
	struct rswap_conn_req r = good_req();
	struct poold_conn_params cp;

	r.version = htole16(RSWAP_WIRE_VERSION + 7);
	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_NONE);
	assert_int_equal(cp.version, RSWAP_WIRE_VERSION);
}

/* A version-1 client gets version 1: it reads the incarnation as reserved. */
static void test_keeps_older_client_version(void **state)
{
	struct rswap_conn_req r = good_req();
	struct poold_conn_params cp;

	r.version = htole16(1);
	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_NONE);
	assert_int_equal(cp.version, 1);
	assert_true(RSWAP_WIRE_VERSION >= 2);
}

static void test_rejects_short_or_missing(void **state)
{
	struct rswap_conn_req r = good_req();
	struct poold_conn_params cp;
	const char *why;

	assert_int_equal(poold_conn_validate(NULL, 0, 8, &cp, &why), RSWAP_REJ_BAD_REQUEST);
	assert_int_equal(poold_conn_validate(&r, sizeof(r) - 1, 8, &cp, &why),
			 RSWAP_REJ_BAD_REQUEST);
	assert_string_equal(cp.client_id, "?");
}

static void test_accepts_longer_and_unaligned(void **state)
{
	struct rswap_conn_req r = good_req();
	uint8_t buf[1 + sizeof(r) + 16] = { 0 };
	struct poold_conn_params cp;
	const char *why;

	memcpy(buf + 1, &r, sizeof(r));
	assert_int_equal(poold_conn_validate(buf + 1, sizeof(r) + 16, 8, &cp, &why),
			 RSWAP_REJ_NONE);
	assert_string_equal(cp.client_id, "host-1");
}

static void test_rejects_bad_fields(void **state)
{
	struct poold_conn_params cp;
	struct rswap_conn_req r;

	r = good_req();
	r.magic = htole32(0xdeadbeef);
	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_BAD_REQUEST);
	assert_string_equal(cp.client_id, "host-1");	/* still named in the log */

	r = good_req();
	r.version = 0;
	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_VERSION);

	r = good_req();
	r.flags = htole16(1);
	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_BAD_REQUEST);

	r = good_req();
	r.qp_count = 0;
	r.qp_index = 0;
	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_BAD_REQUEST);

	r = good_req();
	r.qp_index = htole16(4);
	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_BAD_REQUEST);

	r = good_req();
	assert_int_equal(check(&r, 3, &cp), RSWAP_REJ_TOO_MANY_QPS);
	r.qp_count = htole16(RSWAP_MAX_QPS_PER_SESSION + 1);
	assert_int_equal(check(&r, 65535, &cp), RSWAP_REJ_TOO_MANY_QPS);
}

static void test_client_id_rules(void **state)
{
	struct poold_conn_params cp;
	struct rswap_conn_req r;

	r = good_req();
	memset(r.client_id, 0, sizeof(r.client_id));
	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_BAD_REQUEST);	/* empty */

	r = good_req();
	memcpy(r.client_id, "a b", 3);
	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_BAD_REQUEST);	/* space */

	r = good_req();
	r.client_id[10] = 'x';						/* not NUL-padded */
	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_BAD_REQUEST);

	r = good_req();
	r.client_id[2] = 0x7f;
	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_BAD_REQUEST);
	assert_string_equal(cp.client_id, "ho?t-1");	/* sanitized for the log */

	r = good_req();
	memset(r.client_id, 'z', sizeof(r.client_id));			/* full, no NUL */
	assert_int_equal(check(&r, 8, &cp), RSWAP_REJ_NONE);
	assert_int_equal(strlen(cp.client_id), RSWAP_CLIENT_ID_LEN);
}

static int coord_check(Rswap__Envelope *env, uint64_t chunk_size)
{
	const char *why = NULL;
	int ret = poold_coord_msg_check(env, chunk_size, &why);

	if (ret)
		assert_non_null(why);
	return ret;
}

static void test_coord_registered(void **state)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__PooldRegistered m = RSWAP__POOLD_REGISTERED__INIT;

	env.body_case = RSWAP__ENVELOPE__BODY_POOLD_REGISTERED;
	env.poold_registered = &m;
	m.heartbeat_ms = 1000;
	m.chunk_size = 16ull << 20;
	assert_int_equal(coord_check(&env, 0), 0);
	m.chunk_size = 4ull << 30;
	assert_int_equal(coord_check(&env, 0), 0);
	m.chunk_size = 8ull << 20;
	assert_int_equal(coord_check(&env, 0), -EPROTO);
	m.chunk_size = 48ull << 20;
	assert_int_equal(coord_check(&env, 0), -EPROTO);
	m.chunk_size = 0;
	assert_int_equal(coord_check(&env, 0), -EPROTO);
	m.chunk_size = 16ull << 20;
	m.heartbeat_ms = 0;
	assert_int_equal(coord_check(&env, 0), -EPROTO);
	m.heartbeat_ms = 700000;
	assert_int_equal(coord_check(&env, 0), -EPROTO);
	env.poold_registered = NULL;
	assert_int_equal(coord_check(&env, 0), -EPROTO);
}

static void test_coord_alloc(void **state)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkAlloc m = RSWAP__CHUNK_ALLOC__INIT;
	const uint64_t cs = 16ull << 20;
	char longid[40];

	env.body_case = RSWAP__ENVELOPE__BODY_CHUNK_ALLOC;
	env.chunk_alloc = &m;
	m.client_id = "h1";
	m.client_size = 96ull << 20;
	m.slot = 5;
	assert_int_equal(coord_check(&env, cs), 0);
	m.slot = 6;
	assert_int_equal(coord_check(&env, cs), -EPROTO);	/* beyond the pool */
	m.client_size = (96ull << 20) + 1;			/* partial last chunk */
	assert_int_equal(coord_check(&env, cs), 0);
	m.client_size = UINT64_MAX;				/* no overflow */
	m.slot = UINT32_MAX;
	assert_int_equal(coord_check(&env, cs), 0);
	m.slot = 0;
	m.client_size = 0;
	assert_int_equal(coord_check(&env, cs), -EPROTO);
	m.client_size = cs;
	m.client_id = "";
	assert_int_equal(coord_check(&env, cs), -EPROTO);
	m.client_id = "has space";
	assert_int_equal(coord_check(&env, cs), -EPROTO);
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	m.client_id = longid;
	assert_int_equal(coord_check(&env, cs), -EPROTO);
}

static void test_coord_other_messages(void **state)
{
	Rswap__Envelope env = RSWAP__ENVELOPE__INIT;
	Rswap__ChunkFree f = RSWAP__CHUNK_FREE__INIT;
	Rswap__Error e = RSWAP__ERROR__INIT;
	Rswap__Heartbeat hb = RSWAP__HEARTBEAT__INIT;
	static char reason[POOLD_REASON_MAX + 2];

	env.body_case = RSWAP__ENVELOPE__BODY_CHUNK_FREE;
	env.chunk_free = &f;
	assert_int_equal(coord_check(&env, 0), 0);

	env.body_case = RSWAP__ENVELOPE__BODY_ERROR;
	env.error = &e;
	e.reason = "no";
	assert_int_equal(coord_check(&env, 0), 0);
	memset(reason, 'r', sizeof(reason) - 1);
	e.reason = reason;
	assert_int_equal(coord_check(&env, 0), -EPROTO);

	/* Messages a coordinator never sends to a poold. */
	env.body_case = RSWAP__ENVELOPE__BODY_HEARTBEAT;
	env.heartbeat = &hb;
	assert_int_equal(coord_check(&env, 0), -EPROTO);
	env.body_case = RSWAP__ENVELOPE__BODY__NOT_SET;
	assert_int_equal(coord_check(&env, 0), -EPROTO);
}

static void test_reason_strings(void **state)
{
	unsigned int r;

	for (r = 0; r <= RSWAP_REJ_SESSION; r++)
		assert_string_not_equal(poold_rej_reason_str(r), "unknown reason");
	assert_string_equal(poold_rej_reason_str(999), "unknown reason");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts_good_request),
		cmocka_unit_test(test_negotiates_down_from_newer_client),
		cmocka_unit_test(test_keeps_older_client_version),
		cmocka_unit_test(test_rejects_short_or_missing),
		cmocka_unit_test(test_accepts_longer_and_unaligned),
		cmocka_unit_test(test_rejects_bad_fields),
		cmocka_unit_test(test_client_id_rules),
		cmocka_unit_test(test_coord_registered),
		cmocka_unit_test(test_coord_alloc),
		cmocka_unit_test(test_coord_other_messages),
		cmocka_unit_test(test_reason_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
