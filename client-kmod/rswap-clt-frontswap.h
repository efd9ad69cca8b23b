/* SPDX-License-Identifier: GPL-2.0 */
/*
 * frontswap front-end.  Modules can register a frontswap backend only on
 * kernels that export frontswap_register_ops() with the old chained ops
 * (5.10 .. 5.16, CONFIG_FRONTSWAP=y); 5.17 removed the exports and 6.6
 * frontswap itself.  Kbuild defines RSWAP_HAVE_FRONTSWAP and builds
 * rswap-clt-frontswap.c only there; elsewhere these stubs refuse the
 * front-end, so no .c file needs an #ifdef.
 */
#ifndef RSWAP_CLT_FRONTSWAP_H
#define RSWAP_CLT_FRONTSWAP_H

#include <linux/errno.h>
#include <linux/printk.h>

struct rswap_dev;

#ifdef RSWAP_HAVE_FRONTSWAP
/* Can frontend=frontswap work here?  0, or -errno after one pr_err line. */
static inline int rswap_frontswap_check(void)
{
	return 0;
}

/*
 * May sleep.  Registers the frontswap backend on dev's routing core.  On
 * success the module is pinned for good: 5.10 has no way to unregister.
 */
int rswap_frontswap_add(struct rswap_dev *dev);
#else
static inline int rswap_frontswap_check(void)
{
	pr_err("frontswap is not available on this kernel (removed from module use in 5.17); the block device works here: use frontend=blk\n");
	return -EOPNOTSUPP;
}

static inline int rswap_frontswap_add(struct rswap_dev *dev)
{
	return -EOPNOTSUPP;
}
#endif

#endif /* RSWAP_CLT_FRONTSWAP_H */
