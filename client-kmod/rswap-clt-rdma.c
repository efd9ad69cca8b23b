// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA backend: placeholder until the poold sessions land.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include "rswap-clt.h"
#include "rswap-clt-pb.h"

const char *rswap_slot_poold_name(const struct rswap_slot *slot)
{
	return "dram";
}

int rswap_rdma_open(struct rswap_dev *dev, const struct rswap_pb_map *map)
{
	pr_err("backend=rdma is not implemented yet; use backend=dram\n");
	return -EOPNOTSUPP;
}

void rswap_rdma_close(struct rswap_dev *dev)
{
}
