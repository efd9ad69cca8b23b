// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * The kernel module's own protobuf decoder (client-kmod/rswap-clt-pb.c,
 * built here unchanged as the host unit test builds it) on arbitrary
 * bytes: it runs in the kernel on what the coordinator sends, so any
 * input must decode or fail cleanly, without reading past the buffer or
 * leaking.  A ChunkMap that decodes is then checked as the module checks
 * it, and a map that passes must have the shape the module relies on:
 * slot i at index i, 1..3 copies each, the first one the slot's own, no
 * two on one poold, every string terminated.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../client-kmod/rswap-clt-pb.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t cap)
{
	if (!memchr(s, '\0', cap))
		__builtin_trap();
}

static void check_map(struct rswap_pb_map *map)
{
	const char *why = NULL;
	uint32_t i, a, b, want;

	if (rswap_pb_check_map(map, map->size, &why)) {
		if (!why)
			__builtin_trap();
		return;
	}
	want = map->replicas ? map->replicas : 1;
	for (i = 0; i < map->nslots; i++) {
		const struct rswap_pb_slot *s = &map->slots[i];

		if (s->index != i || s->ncopies != want ||
		    s->ncopies > RSWAP_PB_MAX_COPIES)
			__builtin_trap();
		check_str(s->poold_addr, sizeof(s->poold_addr));
		if (strcmp(s->copies[0].poold_addr, s->poold_addr) ||
		    s->copies[0].handle != s->handle)
			__builtin_trap();
		for (a = 0; a < s->ncopies; a++) {
			check_str(s->copies[a].poold_addr,
				  sizeof(s->copies[a].poold_addr));
			if (!rswap_pb_slot_has(s, s->copies[a].handle))
				__builtin_trap();
			for (b = 0; b < a; b++)
				if (!strcmp(s->copies[a].poold_addr,
					    s->copies[b].poold_addr))
					__builtin_trap();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rswap_pb_env env;
	const char *why = NULL;

	if (rswap_pb_decode(data, size, &env, &why)) {
		if (!why)
			__builtin_trap();
		return 0;
	}
	check_str(env.error.reason, sizeof(env.error.reason));
	check_str(env.move.to_poold, sizeof(env.move.to_poold));
	if (env.body == RSWAP_PB_BODY_CHUNK_MAP)
		check_map(&env.map);
	rswap_pb_env_free(&env);
	return 0;
}
