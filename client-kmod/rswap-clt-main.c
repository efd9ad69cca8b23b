// SPDX-License-Identifier: GPL-2.0
/*
 * rswap-client: swap to remote memory over RDMA.
 *
 * Module parameters are read once, at load; everything is set up in
 * module init in this order and torn down in reverse in module exit:
 *   parameters -> (rdma) coordinator ChunkMap -> poold sessions
 *               -> (dram) page store
 *   -> /dev/rswap0 (frontend=blk) or frontswap (frontend=frontswap;
 *      once registered it cannot be undone, so the module stays loaded).
 * A failure at any step fails insmod with an errno and one pr_err line and
 * leaves nothing behind: chunks obtained from the coordinator are released
 * on the session that obtained them; a refused ClientHello (e.g. EBUSY:
 * another live host uses this client id) obtained nothing and releases
 * nothing, so the other host's memory is never touched.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/init.h>
#include <linux/log2.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/ctype.h>
#include <linux/cpumask.h>
#include <linux/utsname.h>
#include <linux/string.h>

#include "rswap-clt.h"
#include "rswap-clt-frontswap.h"
#include "rswap-clt-pb.h"
#include "rswap_frame.h"

static char *backend = "rdma";
module_param(backend, charp, 0444);
MODULE_PARM_DESC(backend, "Where pages go: \"rdma\" (remote pool through the coordinator) or \"dram\" (this module's memory, for debugging). Default: rdma");

static char *frontend = "blk";
module_param(frontend, charp, 0444);
MODULE_PARM_DESC(frontend, "How the kernel reaches the pool: \"blk\" (/dev/rswap0, for mkswap and swapon) or \"frontswap\" (a frontswap backend in front of the swap device already in use; kernels 5.10 to 5.16 only; the module can then never be unloaded). Default: blk");

static bool writethrough = true;
module_param(writethrough, bool, 0444);
MODULE_PARM_DESC(writethrough, "frontend=frontswap only: also write every page to the backing swap device, so that a failed remote read falls back to a correct copy (0: pages stored remotely skip the device; faster, but a failed read loses the page). Default: 1");

static char *size;
module_param(size, charp, 0444);
MODULE_PARM_DESC(size, "Size of /dev/rswap0 in bytes, suffixes K/M/G/T accepted, a multiple of 4K (e.g. 8G). Required. Default: none");

static char *coord;
module_param(coord, charp, 0444);
MODULE_PARM_DESC(coord, "Coordinator address IPV4:PORT or [IPV6]:PORT; required with backend=rdma. Default: none");

static char *name;
module_param(name, charp, 0444);
MODULE_PARM_DESC(name, "Client id the coordinator knows this host by, at most 31 printable bytes; the coordinator refuses it (EBUSY) while another live host uses it. Default: the host name, truncated to 31 bytes (rswapctl passes one derived from /etc/machine-id)");

static unsigned int queue_depth = 128;
module_param(queue_depth, uint, 0444);
MODULE_PARM_DESC(queue_depth, "Requests in flight per hardware queue, 16..1024. Default: 128");

static unsigned int timeout_ms = 10000;
module_param(timeout_ms, uint, 0444);
MODULE_PARM_DESC(timeout_ms, "Timeout of each connection step to the coordinator and the poolds, in ms, 100..120000. Default: 10000");

static unsigned int heartbeat_ms;
module_param(heartbeat_ms, uint, 0444);
MODULE_PARM_DESC(heartbeat_ms, "Heartbeat period on the coordinator session, in ms, 100..60000 and below timeout_ms (a coordinator silent for timeout_ms is reconnected to); 0: a third of timeout_ms, at most 1000. Default: 0");
static unsigned int fail_io_tmo = 30;
module_param(fail_io_tmo, uint, 0444);
MODULE_PARM_DESC(fail_io_tmo, "Seconds I/O waits for a poold that went away (network down, poold restarting or stuck) before it fails with an I/O error, 1..3600; reconnect attempts go on after it. Default: 30");

static unsigned int replicas = 1;
module_param(replicas, uint, 0444);
MODULE_PARM_DESC(replicas, "backend=rdma: copies of every chunk, each on a different poold (and zone), 1..3. A write goes to every copy; a read to one, re-issued on another if it fails; a dead poold's copies are rebuilt from the others. Default: 1");

static unsigned int max_io_kb = 1024;
module_param(max_io_kb, uint, 0444);
MODULE_PARM_DESC(max_io_kb, "Largest request in KiB, a power of two 128..2048; each costs (replicas + 1) * max_io_kb / 4 * 32 + max_io_kb / 4 * 16 bytes of scatterlists, for queue_depth requests per CPU. Default: 1024");

static bool synchronous;
module_param(synchronous, bool, 0444);
MODULE_PARM_DESC(synchronous, "frontend=blk: declare the device synchronous, as zram and brd are: a page mapped once is swapped in without the swap cache and without readahead (faster random faults; slower sequential swap-in, and from kernel 6.3 on swap-out waits for each page). Default: 0");

static unsigned int poll_us;
module_param(poll_us, uint, 0444);
MODULE_PARM_DESC(poll_us, "backend=rdma: a page read or written on its own (synchronous=1 swap-ins before kernel 6.3, frontswap) first polls for its completion for up to this many microseconds, 0..10000, before sleeping: lower fault latency for CPU time. Default: 0");

#define RSWAP_MAX_SIZE		BIT_ULL(50)

static struct rswap_dev *rswap_the_dev;

static int rswap_parse_size(const char *s, u64 *out)
{
	char *end;
	u64 v;

	if (!s || !*s) {
		pr_err("size= is required, e.g. size=8G\n");
		return -EINVAL;
	}
	if (!isdigit(*s)) {
		pr_err("size=%s is not a number with an optional K/M/G/T suffix\n",
		       s);
		return -EINVAL;
	}
	v = memparse(s, &end);
	if (*end && !(*end == '\n' && !end[1])) {
		pr_err("size=%s is not a number with an optional K/M/G/T suffix\n",
		       s);
		return -EINVAL;
	}
	if (!v || v > RSWAP_MAX_SIZE || !IS_ALIGNED(v, RSWAP_BLOCK_SIZE)) {
		pr_err("size=%s must be a non-zero multiple of 4K up to 1P\n", s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int rswap_parse_client_id(const char *s, char *id)
{
	size_t i, len;

	if (!s) {
		/* Truncate silently: the host name is only a default. */
		strscpy(id, utsname()->nodename, RSWAP_CLIENT_ID_LEN);
		s = id;
	}
	len = strlen(s);
	if (!len || len >= RSWAP_CLIENT_ID_LEN) {
		pr_err("name=%s must be 1..%d bytes\n", s,
		       RSWAP_CLIENT_ID_LEN - 1);
		return -EINVAL;
	}
	for (i = 0; i < len; i++) {
		if (!isgraph(s[i])) {
			pr_err("name=%s must be printable, without spaces\n",
			       s);
			return -EINVAL;
		}
	}
	strscpy(id, s, RSWAP_CLIENT_ID_LEN);
	return 0;
}

static int rswap_parse_config(struct rswap_config *cfg)
{
	int ret;

	if (backend && !strcmp(backend, "dram")) {
		cfg->backend = RSWAP_BACKEND_DRAM;
	} else if (backend && !strcmp(backend, "rdma")) {
		cfg->backend = RSWAP_BACKEND_RDMA;
	} else {
		pr_err("backend=%s: use backend=rdma or backend=dram\n",
		       backend ? backend : "");
		return -EINVAL;
	}
	if (frontend && !strcmp(frontend, "blk")) {
		cfg->frontend = RSWAP_FRONTEND_BLK;
	} else if (frontend && !strcmp(frontend, "frontswap")) {
		cfg->frontend = RSWAP_FRONTEND_FRONTSWAP;
		/* Before any chunk is taken from the coordinator. */
		ret = rswap_frontswap_check();
		if (ret)
			return ret;
	} else {
		pr_err("frontend=%s: use frontend=blk or frontend=frontswap\n",
		       frontend ? frontend : "");
		return -EINVAL;
	}
	cfg->writethrough = writethrough;
	ret = rswap_parse_size(size, &cfg->size);
	if (ret)
		return ret;
	ret = rswap_parse_client_id(name, cfg->client_id);
	if (ret)
		return ret;
	if (queue_depth < 16 || queue_depth > 1024) {
		pr_err("queue_depth=%u is outside 16..1024\n", queue_depth);
		return -EINVAL;
	}
	cfg->queue_depth = queue_depth;
	if (max_io_kb < RSWAP_MIN_IO_KB || max_io_kb > RSWAP_MAX_IO_KB ||
	    !is_power_of_2(max_io_kb)) {
		pr_err("max_io_kb=%u is not a power of two in %u..%u\n",
		       max_io_kb, RSWAP_MIN_IO_KB, RSWAP_MAX_IO_KB);
		return -EINVAL;
	}
	cfg->max_io_kb = max_io_kb;
	cfg->synchronous = synchronous;
	if (poll_us > 10000) {
		pr_err("poll_us=%u is outside 0..10000\n", poll_us);
		return -EINVAL;
	}
	cfg->poll_us = poll_us;
	if (synchronous && cfg->frontend != RSWAP_FRONTEND_BLK)
		pr_warn("synchronous=1 is ignored with frontend=frontswap\n");
	if (timeout_ms < 100 || timeout_ms > 120000) {
		pr_err("timeout_ms=%u is outside 100..120000\n", timeout_ms);
		return -EINVAL;
	}
	cfg->timeout_ms = timeout_ms;
	if (heartbeat_ms && (heartbeat_ms < 100 || heartbeat_ms > 60000 ||
			     heartbeat_ms >= timeout_ms)) {
		pr_err("heartbeat_ms=%u must be 100..60000 and below timeout_ms=%u\n",
		       heartbeat_ms, timeout_ms);
		return -EINVAL;
	}
	/* By default several beats per timeout, whatever timeout_ms is. */
	cfg->heartbeat_ms = heartbeat_ms ?: min(timeout_ms / 3, 1000u);
	if (fail_io_tmo < 1 || fail_io_tmo > 3600) {
		pr_err("fail_io_tmo=%u is outside 1..3600 seconds\n",
		       fail_io_tmo);
		return -EINVAL;
	}
	cfg->fail_io_tmo = fail_io_tmo;
	if (replicas < 1 || replicas > RSWAP_MAX_COPIES) {
		pr_err("replicas=%u is outside 1..%u\n", replicas,
		       RSWAP_MAX_COPIES);
		return -EINVAL;
	}
	cfg->replicas = 1;

	if (cfg->backend == RSWAP_BACKEND_DRAM) {
		if (coord)
			pr_warn("coord= is ignored with backend=dram\n");
		if (replicas > 1)
			pr_warn("replicas=%u is ignored with backend=dram\n",
				replicas);
		return 0;
	}
	cfg->replicas = replicas;
	if (!coord || !*coord) {
		pr_err("coord=HOST:PORT is required with backend=rdma (or load with backend=dram)\n");
		return -EINVAL;
	}
	if (strscpy(cfg->coord_str, coord, sizeof(cfg->coord_str)) < 0 ||
	    rswap_parse_addr(coord, &cfg->coord)) {
		pr_err("coord=%s is not IPV4:PORT or [IPV6]:PORT\n", coord);
		return -EINVAL;
	}
	return 0;
}

/*
 * Coordinator session and map, then sessions to every poold in it.  May
 * sleep.  Only a session whose hello got a map releases on failure.
 */
static int rswap_open_rdma(struct rswap_dev *dev)
{
	struct rswap_pb_map map;
	int ret;

	/* Here, in insmod's context: its keyrings hold the key, if any. */
	ret = rswap_auth_load_key(&dev->auth);
	if (ret && ret != -ENOKEY)
		return ret;
	ret = rswap_coord_open(dev, &map);
	if (ret)
		goto out_free_auth;	/* nothing obtained, nothing to release */
	ret = rswap_rdma_open(dev, &map);
	rswap_pb_map_free(&map);
	if (ret)
		goto out_release_chunks;
	return 0;

out_release_chunks:
	rswap_coord_close(dev, true);
out_free_auth:
	rswap_auth_free(&dev->auth);
	return ret;
}

static void rswap_close_backend(struct rswap_dev *dev)
{
	if (dev->cfg.backend == RSWAP_BACKEND_DRAM) {
		rswap_dram_close(dev);
		return;
	}
	/* No MoveChunk may reach the backend while it closes. */
	rswap_coord_stop(dev);
	rswap_rdma_close(dev);
	rswap_coord_close(dev, true);
	rswap_auth_free(&dev->auth);
}

static int __init rswap_init(void)
{
	struct rswap_dev *dev;
	int ret;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	strscpy(dev->name, "rswap0", sizeof(dev->name));
	/* One hardware queue (and QP per poold) per CPU online now. */
	dev->nr_queues = num_online_cpus();

	ret = rswap_parse_config(&dev->cfg);
	if (ret)
		goto out_free_dev;

	if (dev->cfg.backend == RSWAP_BACKEND_DRAM)
		ret = rswap_dram_open(dev);
	else
		ret = rswap_open_rdma(dev);
	if (ret)
		goto out_free_dev;

	if (dev->cfg.frontend == RSWAP_FRONTEND_FRONTSWAP)
		ret = rswap_frontswap_add(dev);	/* pins the module on success */
	else
		ret = rswap_blk_add(dev);
	if (ret)
		goto out_close_backend;

	rswap_the_dev = dev;
	rswap_info(dev, "%llu bytes on %s via %s, %u queues, chunk %llu, client %s\n",
		   dev->core.size, dev->ops->name,
		   dev->cfg.frontend == RSWAP_FRONTEND_FRONTSWAP ?
		   "frontswap" : "/dev/rswap0", dev->nr_queues,
		   dev->core.chunk_size, dev->cfg.client_id);
	return 0;

out_close_backend:
	rswap_close_backend(dev);
out_free_dev:
	kfree(dev);
	return ret;
}

/* Never runs with frontend=frontswap: that front-end pins the module. */
static void __exit rswap_exit(void)
{
	struct rswap_dev *dev = rswap_the_dev;

	rswap_blk_remove(dev);
	rswap_close_backend(dev);
	rswap_info(dev, "removed\n");
	kfree(dev);
}

module_init(rswap_init);
module_exit(rswap_exit);

MODULE_DESCRIPTION("Remoteswap client: swap to pooled remote memory over RDMA");
MODULE_LICENSE("GPL");
