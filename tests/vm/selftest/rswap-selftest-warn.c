// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only module: raises one kernel WARNING when loaded, so that the VM
 * harness can prove it fails a script whose kernel log shows one.
 */
#include <linux/module.h>
#include <linux/init.h>

static int __init rswap_selftest_warn_init(void)
{
	WARN(1, "rswap-selftest-warn: deliberate warning for the VM harness self-test\n");
	return 0;
}

static void __exit rswap_selftest_warn_exit(void)
{
}

module_init(rswap_selftest_warn_init);
module_exit(rswap_selftest_warn_exit);

MODULE_DESCRIPTION("Remoteswap VM harness self-test: one deliberate WARNING");
MODULE_LICENSE("GPL");
