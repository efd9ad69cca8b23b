// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * Fuzz what poold accepts from the network without a device or a daemon:
 * rdma_cm connect private data (poold_conn_validate) and frames from the
 * coordinator (rswap_frame_decode + poold_coord_msg_check).
 *
 * The validation source is compiled in directly so that this target needs
 * only rswap_common, whatever else the fuzz build links.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../poold/conn_validate.c"
#include "rswap_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_conn_req(const uint8_t *data, size_t size)
{
	struct poold_conn_params cp;
	const char *why = NULL;
	enum rswap_rej_reason r;
	unsigned int max_qps = size ? data[0] + 1u : 1u;

	r = poold_conn_validate(data, size, max_qps, &cp, &why);
	/* What the poold logs must always be a printable, bounded id. */
	if (strlen(cp.client_id) > RSWAP_CLIENT_ID_LEN)
		__builtin_trap();
	if (r == RSWAP_REJ_NONE) {
		if (cp.qp_count == 0 || cp.qp_index >= cp.qp_count ||
		    cp.qp_count > max_qps || cp.version > RSWAP_WIRE_VERSION ||
		    cp.version < RSWAP_WIRE_VERSION_MIN ||
		    !poold_client_id_ok(cp.client_id, strlen(cp.client_id)))
			__builtin_trap();
	} else if (!why) {
		__builtin_trap();
	}
	(void)poold_rej_reason_str(r);
}

static void check_coord_frame(const uint8_t *data, size_t size)
{
	static const uint64_t chunk_sizes[] = { 0, 16ull << 20, 4ull << 30 };
	Rswap__Envelope *env;
	const char *why;
	uint32_t len;
	size_t i;

	if (rswap_frame_peek(data, size, &len) != RSWAP_FRAME_READY)
		return;
	env = rswap_frame_decode(data + RSWAP_FRAME_HDR, len, &why);
	if (!env)
		return;
	for (i = 0; i < sizeof(chunk_sizes) / sizeof(chunk_sizes[0]); i++)
		(void)poold_coord_msg_check(env, chunk_sizes[i], &why);
	rswap__envelope__free_unpacked(env, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_conn_req(data, size);
	check_coord_frame(data, size);
	return 0;
}
