// SPDX-License-Identifier: GPL-2.0
/*
 * Routing core: the slot table every front-end routes through.
 */
#include <linux/slab.h>
#include <linux/log2.h>
#include <linux/mm.h>

#include "rswap-clt-core.h"

const char *const rswap_err_names[RSWAP_ERR_KINDS] = {
	[RSWAP_ERR_IO] = "io",
	[RSWAP_ERR_NOMEM] = "nomem",
	[RSWAP_ERR_BUSY] = "busy",
	[RSWAP_ERR_RANGE] = "range",
	[RSWAP_ERR_POST] = "post",
	[RSWAP_ERR_LOST] = "lost",
	[RSWAP_ERR_DOWN] = "down",
};

int rswap_core_init(struct rswap_core *core, u64 size, u64 chunk_size)
{
	u64 n;

	if (!size || !is_power_of_2(chunk_size))
		return -EINVAL;
	n = DIV64_U64_ROUND_UP(size, chunk_size);
	if (n > U32_MAX)
		return -E2BIG;
	core->slots = kvcalloc(n, sizeof(*core->slots), GFP_KERNEL);
	if (!core->slots)
		return -ENOMEM;
	core->size = size;
	core->chunk_size = chunk_size;
	core->chunk_shift = ilog2(chunk_size);
	core->nslots = n;
	return 0;
}

int rswap_core_track_dirty(struct rswap_core *core)
{
	size_t longs = BITS_TO_LONGS(core->chunk_size >> PAGE_SHIFT);
	u32 i;

	for (i = 0; i < core->nslots; i++) {
		core->slots[i].dirty = kvcalloc(longs, sizeof(long),
						GFP_KERNEL);
		if (!core->slots[i].dirty)
			return -ENOMEM;
	}
	return 0;
}

void rswap_core_free(struct rswap_core *core)
{
	u32 i;

	for (i = 0; core->slots && i < core->nslots; i++)
		kvfree(core->slots[i].dirty);
	kvfree(core->slots);
	core->slots = NULL;
	core->nslots = 0;
}

void rswap_stats_account(struct rswap_stats *st, bool write, u32 bytes)
{
	if (write) {
		atomic64_inc(&st->writes);
		atomic64_add(bytes, &st->bytes_written);
	} else {
		atomic64_inc(&st->reads);
		atomic64_add(bytes, &st->bytes_read);
	}
}
