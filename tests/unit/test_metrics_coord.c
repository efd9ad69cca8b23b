// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * The coordinator's metrics page without a daemon: proto/prom.c (format,
 * escaping, misuse) and coordinator/metrics.c over a registry set up by
 * hand (every chunk health and poold state).
 *
 *   test_metrics_coord             run the tests
 *   test_metrics_coord --dump DIR  also write DIR/coord.prom (ctest runs
 *                                  promtool on it)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dispatch.h"
#include "metrics.h"
#include "registry.h"
#include "metrics_text.h"

#define CHUNK	(16ull << 20)

/* ---- the writer -------------------------------------------------------- */

static void label_escaping(void **state)
{
	struct prom_out o = new_out();
	struct prom_label l[2] = {
		{ "addr", "a\"b\\c\nd\x01\xc3" },
		{ "x", "" },
	};
	char *t;

	prom_family(&o, "m_total", PROM_COUNTER, "back\\slash and\nnewline");
	prom_sample(&o, "m_total", l, 2, 18446744073709551615ull);
	assert_false(o.failed);
	t = take_text(&o);
	expect_line(t, "# HELP m_total back\\\\slash and\\nnewline");
	expect_line(t, "# TYPE m_total counter");
	expect_line(t, "m_total{addr=\"a\\\"b\\\\c\\nd??\",x=\"\"} 18446744073709551615");
	free(t);
}

struct two {
	uint64_t a, b;
};

static void table_groups_families(void **state)
{
	static const struct prom_metric t[] = {
		{ "fam", PROM_GAUGE, "A family.", "k", "one", offsetof(struct two, a) },
		{ "fam", PROM_GAUGE, NULL, "k", "two", offsetof(struct two, b) },
		{ "plain", PROM_GAUGE, "No labels.", NULL, NULL, offsetof(struct two, b) },
	};
	struct two v = { 7, 9 };
	struct prom_out o = new_out();
	char *s;

	prom_write_table(&o, t, 3, &v);
	assert_false(o.failed);
	s = take_text(&o);
	assert_int_equal(count(s, "# HELP fam "), 1);
	assert_int_equal(count(s, "# TYPE fam gauge"), 1);
	expect_line(s, "fam{k=\"one\"} 7");
	expect_line(s, "fam{k=\"two\"} 9");
	expect_line(s, "# TYPE plain gauge");
	expect_line(s, "plain 9");
	free(s);
}

static void bad_names_fail(void **state)
{
	struct prom_label bad = { "no-dash", "v" }, colon = { "a:b", "v" };
	struct prom_out o = new_out();

	assert_true(prom_valid_name("rswap_x:y_1"));
	assert_false(prom_valid_name("1abc"));
	assert_false(prom_valid_name(""));
	assert_false(prom_valid_name("a b"));
	prom_family(&o, "bad name", PROM_GAUGE, "x");
	assert_true(o.failed);
	o.failed = false;
	prom_sample(&o, "ok", &bad, 1, 1);
	assert_true(o.failed);
	o.failed = false;
	prom_sample(&o, "ok", &colon, 1, 1);
	assert_true(o.failed);
	evbuffer_free(o.buf);
}

/* ---- the coordinator's page -------------------------------------------- */

static void close_peer(void *glue)
{
}

static struct poold *reg_poold(struct registry *r, const char *addr, uint64_t cap)
{
	struct poold_report rep = { .addr = addr, .capacity = cap };
	struct reg_result res;
	struct poold *p;
	char why[256];

	assert_int_equal(registry_poold_register(r, &rep, 1000, &res, why, sizeof(why)), 0);
	p = res.poold;
	registry_reg_result_free(&res);
	return p;
}

static void coord_page(void **state)
{
	static const struct coord_ops ops = { .close_peer = close_peer };
	struct coord_settings s = { .chunk_size = CHUNK, .heartbeat_ms = 1000,
				    .timeout_ms = 1000, .out_limit = 1 << 20 };
	struct coord_conn_stats cs = { .accepted = 5, .open = 2, .closed_by_peer = 1,
				       .closed_by_coord = 1, .hello_timeouts = 1,
				       .refused_max_conns = 4, .max_conns = 64 };
	struct prom_out o = new_out();
	struct poold *a, *b, *q;
	struct registry *r;
	struct client *c;
	struct coord *co;
	char *t;

	co = coord_new(&s, &ops);
	assert_non_null(co);
	r = coord_registry(co);
	a = reg_poold(r, "10.0.0.1:9401", 10 * CHUNK);
	b = reg_poold(r, "10.0.0.2:9401", 4 * CHUNK);
	q = reg_poold(r, "q\"uote\\d:9401", 2 * CHUNK + 5);
	q->draining = true;
	/* c1: 2 chunks on a, 1 on b (which dies), 1 being allocated on a */
	c = registry_client_add(r, "c1", 4 * CHUNK);
	assert_non_null(c);
	registry_slot_assign(c, 0, a);
	registry_slot_set_handle(c, 0, 11, 0);
	registry_slot_assign(c, 1, a);
	registry_slot_set_handle(c, 1, 12, 0);
	registry_slot_assign(c, 2, b);
	registry_slot_set_handle(c, 2, 21, 0);
	registry_slot_assign(c, 3, a);
	c->busy = true;
	/* c2: one slot held, one that no poold reported */
	c = registry_client_add(r, "c2", 2 * CHUNK);
	assert_non_null(c);
	registry_slot_assign(c, 0, a);
	registry_slot_set_handle(c, 0, 13, 0);
	registry_poold_disconnect(r, b);
	assert_int_equal(registry_tomb_add(b, "gone", 0, false, 99), 0);
	registry_update_liveness(r, 1000, 1000);

	coord_metrics_render(&o, co, &cs);
	assert_false(o.failed);
	t = take_text(&o);
	dump("coord.prom", t);
	expect_line(t, "rswap_coord_poolds{state=\"alive\"} 2");
	expect_line(t, "rswap_coord_poolds{state=\"suspect\"} 0");
	expect_line(t, "rswap_coord_poolds{state=\"dead\"} 1");
	expect_line(t, "rswap_coord_poolds_draining 1");
	expect_line(t, "rswap_coord_capacity_bytes 268435461");	/* 16 chunks + 5 */
	expect_line(t, "rswap_coord_used_bytes 83886080");	/* 5 chunks */
	/* only a may get new chunks: 10 - 4 */
	expect_line(t, "rswap_coord_placeable_free_bytes 100663296");
	expect_line(t, "rswap_coord_chunk_size_bytes 16777216");
	expect_line(t, "rswap_coord_clients 2");
	expect_line(t, "rswap_coord_clients_incomplete 1");
	expect_line(t, "rswap_coord_chunks{state=\"healthy\"} 3");
	expect_line(t, "rswap_coord_chunks{state=\"unreachable\"} 1");
	expect_line(t, "rswap_coord_chunks{state=\"missing\"} 1");
	expect_line(t, "rswap_coord_chunks{state=\"allocating\"} 1");
	expect_line(t, "rswap_coord_orphaned_chunks 1");
	expect_line(t, "rswap_coord_auth_failures_total 0");
	expect_line(t, "rswap_coord_connections_accepted_total 5");
	expect_line(t, "rswap_coord_connections_open 2");
	expect_line(t, "rswap_coord_connections_max 64");
	expect_line(t, "rswap_coord_connections_refused_total{reason=\"max_conns\"} 4");
	expect_line(t, "rswap_coord_connections_refused_total{reason=\"max_new_per_addr\"} 0");
	expect_line(t, "rswap_coord_connections_closed_total{by=\"hello_timeout\"} 1");
	expect_line(t, "rswap_coord_poold_capacity_bytes{addr=\"10.0.0.1:9401\"} 167772160");
	expect_line(t, "rswap_coord_poold_used_bytes{addr=\"10.0.0.1:9401\"} 67108864");
	expect_line(t, "rswap_coord_poold_chunks{addr=\"10.0.0.2:9401\"} 1");
	expect_line(t, "rswap_coord_poold_draining{addr=\"q\\\"uote\\\\d:9401\"} 1");
	expect_line(t, "rswap_coord_poold_orphaned_chunks{addr=\"10.0.0.2:9401\"} 1");
	expect_line(t, "rswap_coord_poold_state{addr=\"10.0.0.2:9401\",state=\"dead\"} 1");
	expect_line(t, "rswap_coord_poold_state{addr=\"10.0.0.2:9401\",state=\"alive\"} 0");
	expect_line(t, "rswap_coord_peers{role=\"client\"} 0");
	expect_line(t, "rswap_coord_errors_sent_total{role=\"client\",reason=\"ENOSPC\"} 0");
	expect_line(t, "rswap_coord_errors_sent_total{role=\"peer\",reason=\"other\"} 0");
	/* one HELP per family, however many poolds */
	assert_int_equal(count(t, "# HELP rswap_coord_poold_used_bytes "), 1);
	expect_line(t, "rswap_coord_degraded_chunks 0");
	expect_line(t, "rswap_coord_rereplications_total{result=\"done\"} 0");
	free(t);

	/* c3, 2 copies: slot 0 whole; slot 1's copy on b (dead); slot 2's stale. */
	c = registry_client_add(r, "c3", 3 * CHUNK);
	assert_non_null(c);
	c->replicas = 2;
	registry_slot_assign(c, 0, a);
	registry_slot_set_handle(c, 0, 31, 0);
	assert_int_equal(registry_extra_add(c, q, 0, 41, 0, false), 0);
	c->extra[0].replica = true;
	registry_slot_assign(c, 1, a);
	registry_slot_set_handle(c, 1, 32, 0);
	assert_int_equal(registry_extra_add(c, b, 1, 42, 0, false), 0);
	c->extra[1].replica = true;
	registry_slot_assign(c, 2, a);
	registry_slot_set_handle(c, 2, 33, 0);
	assert_int_equal(registry_extra_add(c, q, 2, 43, 0, false), 0);
	c->extra[2].replica = true;
	c->extra[2].stale_since_ms = 5;
	o = new_out();
	coord_metrics_render(&o, co, &cs);
	assert_false(o.failed);
	t = take_text(&o);
	expect_line(t, "rswap_coord_degraded_chunks 2");
	expect_line(t, "rswap_coord_stale_copies 1");
	free(t);
	coord_free(co);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(label_escaping),
		cmocka_unit_test(table_groups_families),
		cmocka_unit_test(bad_names_fail),
		cmocka_unit_test(coord_page),
	};

	if (parse_dump_arg(argc, argv))
		return 2;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
