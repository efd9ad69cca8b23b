// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * poold's metrics page without RDMA: poold/metrics.c over a struct poold
 * and the numbers the RDMA side would report.
 *
 *   test_metrics_poold             run the tests
 *   test_metrics_poold --dump DIR  also write DIR/poold.prom (ctest runs
 *                                  promtool on it)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "poold.h"
#include "metrics_text.h"

#define CHUNK	(16ull << 20)

static void poold_page(void **state)
{
	struct poold p = { 0 };
	struct poold_rdma_stats rs = { .sessions = 2, .queue_pairs = 5,
				       .registered_bytes = 3 * CHUNK };
	struct prom_out o = new_out();
	char *t;

	p.set.capacity = 8 * CHUNK;
	p.used = 2 * CHUNK;
	p.nchunks = 2;
	p.chunk_size = CHUNK;
	p.registered = true;
	poold_count_reject(&p, RSWAP_REJ_NO_CHUNKS);
	poold_count_reject(&p, RSWAP_REJ_NO_CHUNKS);
	poold_count_reject(&p, RSWAP_REJ_VERSION);
	poold_count_reject(&p, 12);	/* a reason this build has no name for */
	poold_count_reject(&p, 60000);	/* out of range */
	poold_metrics_render(&o, &p, &rs);
	assert_false(o.failed);
	t = take_text(&o);
	dump("poold.prom", t);
	expect_line(t, "rswap_poold_capacity_bytes 134217728");
	expect_line(t, "rswap_poold_used_bytes 33554432");
	expect_line(t, "rswap_poold_chunks 2");
	expect_line(t, "rswap_poold_chunk_size_bytes 16777216");
	expect_line(t, "rswap_poold_coordinator_registered 1");
	expect_line(t, "rswap_poold_sessions 2");
	expect_line(t, "rswap_poold_queue_pairs 5");
	expect_line(t, "rswap_poold_registered_bytes 50331648");
	expect_line(t, "rswap_poold_connections_refused_total{reason=\"no_chunks\"} 2");
	expect_line(t, "rswap_poold_connections_refused_total{reason=\"version\"} 1");
	expect_line(t, "rswap_poold_connections_refused_total{reason=\"bad_request\"} 0");
	expect_line(t, "rswap_poold_connections_refused_total{reason=\"other\"} 2");
	assert_int_equal(count(t, "reason=\"other\""), 1);
	assert_int_equal(count(t, "# TYPE rswap_poold_connections_refused_total counter"), 1);
	free(t);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(poold_page),
	};

	if (parse_dump_arg(argc, argv))
		return 2;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
