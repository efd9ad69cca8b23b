// SPDX-License-Identifier: GPL-2.0
/*
 * rswap-client: swap to remote memory over RDMA.  Skeleton: loads and
 * unloads; the block device and the cluster session come next.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/init.h>

#include "rswap_wire.h"

static int __init rswap_init(void)
{
	pr_info("loaded (wire protocol %d)\n", RSWAP_WIRE_VERSION);
	return 0;
}

static void __exit rswap_exit(void)
{
	pr_info("unloaded\n");
}

module_init(rswap_init);
module_exit(rswap_exit);

MODULE_DESCRIPTION("Remoteswap client: swap to pooled remote memory over RDMA");
MODULE_LICENSE("GPL");
