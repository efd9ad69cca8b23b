// SPDX-License-Identifier: GPL-2.0
/*
 * frontswap front-end (kernels 5.10 .. 5.16): the kernel offers every
 * page it swaps out to store() before it writes the backing swap device,
 * and asks load() before it reads it.  Pages go through the same routing
 * core as the block device: swap offset N is pool byte offset
 * N << PAGE_SHIFT, routed to its chunk's poold (or the DRAM store).
 *
 * Only built where frontswap_register_ops() is exported (see
 * rswap-clt-frontswap.h for the stubs used elsewhere).
 *
 * Rules kept here:
 * - One swap type at a time: the first type that init()s is ours until
 *   its swapoff (invalidate_area); stores for any other type return -1,
 *   so those pages go to their own device.
 * - A store that cannot be done (offset past the pool, huge page, its
 *   poold reconnecting or down, send queue full, no memory, failed WRITE)
 *   returns -1: the kernel writes the page to the backing swap device,
 *   nothing is lost.  A load waits for a reconnect up to fail_io_tmo.
 * - store() and load() may sleep in 5.10: frontswap_store() runs from
 *   swap_writepage() in reclaim (process context, the page locked) and
 *   frontswap_load() from swap_readpage() (fault, readahead, swapoff;
 *   process context); zswap itself sleeps there on a mutex and on its
 *   compressor.  So each page is one RDMA READ or WRITE posted on the
 *   normal (softirq-polled) CQ and waited for on a per-request completion;
 *   no CQ polling of our own.
 * - A failed READ of a page we stored cannot be reported as an I/O error:
 *   a nonzero load() makes swap_readpage() read the backing device.  With
 *   writethrough=1 (the default) every stored page was also written there
 *   (frontswap_writethrough), so that copy is correct and nothing is lost
 *   (the Infiniswap way).  With writethrough=0 the backing device holds an
 *   older page: the failure is counted and logged loudly as lost data.
 * - invalidate_page() runs under the swap device's spinlock: it only
 *   clears a bit and frees DRAM store pages (irq-safe lock); never sleeps.
 * - frontswap in 5.10 has no unregister: once registered the module pins
 *   itself (rmmod says "in use") so that the ops never point into freed
 *   code.  Unloading needs a reboot.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/frontswap.h>
#include <linux/huge_mm.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/delay.h>

#include "rswap-clt.h"
#include "rswap-clt-frontswap.h"

/* Why a store went to the backing device instead. */
enum rswap_fs_store_fail {
	RSWAP_FS_FAIL_TYPE,	/* another swap type owns the front-end */
	RSWAP_FS_FAIL_RANGE,	/* offset past the end of the pool */
	RSWAP_FS_FAIL_HUGE,	/* a huge page: frontswap stores 4K pages */
	RSWAP_FS_FAIL_DOWN,	/* its poold is reconnecting or down */
	RSWAP_FS_FAIL_BUSY,	/* send queue full */
	RSWAP_FS_FAIL_NOMEM,	/* DRAM backend out of memory */
	RSWAP_FS_FAIL_IO,	/* failed WRITE or post */
	RSWAP_FS_FAIL_KINDS,
};

static const char *const rswap_fs_fail_names[RSWAP_FS_FAIL_KINDS] = {
	[RSWAP_FS_FAIL_TYPE] = "type",
	[RSWAP_FS_FAIL_RANGE] = "range",
	[RSWAP_FS_FAIL_HUGE] = "huge",
	[RSWAP_FS_FAIL_DOWN] = "down",
	[RSWAP_FS_FAIL_BUSY] = "busy",
	[RSWAP_FS_FAIL_NOMEM] = "nomem",
	[RSWAP_FS_FAIL_IO] = "io",
};

/*
 * A load retries a full send queue this many times, 100..200 us apart,
 * before it gives up (the page then counts as a failed load).
 */
#define RSWAP_FS_BUSY_RETRIES	1000

struct rswap_fs {
	struct rswap_dev *dev;
	atomic_t type;			/* the swap type served, or -1 */
	unsigned long npages;		/* pool pages: bits in stored */
	unsigned long *stored;		/* offset -> we hold its page */
	atomic_long_t nr_stored;
	struct kobject *kobj;		/* /sys/module/rswap_client/frontswap */

	atomic64_t stores;
	atomic64_t store_fails[RSWAP_FS_FAIL_KINDS];
	atomic64_t loads;
	atomic64_t load_misses;		/* not ours: the next backend's */
	atomic64_t load_fails;		/* READ failed: backing copy read */
	atomic64_t load_lost;		/* ... and writethrough was off */
	atomic64_t invalidates;
	atomic64_t invalidate_areas;
};

/* frontswap callbacks carry no context pointer. */
static struct rswap_fs rswap_fs;

static enum rswap_fs_store_fail rswap_fs_fail_kind(int err)
{
	switch (err) {
	case -ERANGE:
		return RSWAP_FS_FAIL_RANGE;
	case -ENOTCONN:
		return RSWAP_FS_FAIL_DOWN;
	case -EBUSY:
		return RSWAP_FS_FAIL_BUSY;
	case -ENOMEM:
		return RSWAP_FS_FAIL_NOMEM;
	default:
		return RSWAP_FS_FAIL_IO;
	}
}

static bool rswap_fs_ours(unsigned int type)
{
	return atomic_read(&rswap_fs.type) == (int)type;
}

/* May sleep (swapon, or frontswap_register_ops() for active types). */
static void rswap_fs_init(unsigned int type)
{
	struct rswap_dev *dev = rswap_fs.dev;
	int old = atomic_cmpxchg(&rswap_fs.type, -1, type);

	if (old != -1 && old != (int)type) {
		rswap_warn(dev, "frontswap: swap type %u is not served (this module serves swap type %d only); its pages go to its own device\n",
			   type, old);
		return;
	}
	bitmap_zero(rswap_fs.stored, rswap_fs.npages);
	atomic_long_set(&rswap_fs.nr_stored, 0);
	rswap_info(dev, "frontswap: serving swap type %u, %lu pages\n", type,
		   rswap_fs.npages);
}

/* May sleep (reclaim, swap_writepage()).  0 = stored, -1 = not stored. */
static int rswap_fs_store(unsigned int type, pgoff_t offset,
			  struct page *page)
{
	struct rswap_dev *dev = rswap_fs.dev;
	enum rswap_fs_store_fail why;
	int ret;

	if (!rswap_fs_ours(type)) {
		why = RSWAP_FS_FAIL_TYPE;
		goto out_refuse;
	}
	if (offset >= rswap_fs.npages) {
		why = RSWAP_FS_FAIL_RANGE;
		goto out_refuse;
	}
	if (PageTransHuge(page)) {
		why = RSWAP_FS_FAIL_HUGE;
		goto out_refuse;
	}
	ret = dev->ops->rw_page(dev, (u64)offset << PAGE_SHIFT, page, true);
	if (ret) {
		why = rswap_fs_fail_kind(ret);
		goto out_refuse;
	}
	if (!test_and_set_bit(offset, rswap_fs.stored))
		atomic_long_inc(&rswap_fs.nr_stored);
	rswap_stats_account(&dev->stats, true, PAGE_SIZE);
	atomic64_inc(&rswap_fs.stores);
	return 0;

out_refuse:
	atomic64_inc(&rswap_fs.store_fails[why]);
	return -1;
}

/* May sleep (swap_readpage()).  0 = page filled, nonzero = not filled. */
static int rswap_fs_load(unsigned int type, pgoff_t offset, struct page *page)
{
	struct rswap_dev *dev = rswap_fs.dev;
	unsigned int tries = 0;
	int ret;

	if (!rswap_fs_ours(type) || offset >= rswap_fs.npages ||
	    !test_bit(offset, rswap_fs.stored)) {
		atomic64_inc(&rswap_fs.load_misses);
		return -1;
	}
	do {
		ret = dev->ops->rw_page(dev, (u64)offset << PAGE_SHIFT, page,
					false);
		if (ret != -EBUSY)
			break;
		usleep_range(100, 200);
	} while (++tries < RSWAP_FS_BUSY_RETRIES);
	if (!ret) {
		rswap_stats_account(&dev->stats, false, PAGE_SIZE);
		atomic64_inc(&rswap_fs.loads);
		return 0;
	}
	atomic64_inc(&rswap_fs.load_fails);
	if (dev->cfg.writethrough) {
		pr_err_ratelimited("%s: frontswap: reading page %lu of swap type %u failed (%d); reading its write-through copy from the backing device\n",
				   dev->name, offset, type, ret);
	} else {
		atomic64_inc(&rswap_fs.load_lost);
		pr_err_ratelimited("%s: frontswap: reading page %lu of swap type %u failed (%d); DATA LOST: the backing device holds an older page (load with writethrough=1 to keep a copy there)\n",
				   dev->name, offset, type, ret);
	}
	return ret;
}

/* Under the swap device's spinlock: must not sleep. */
static void rswap_fs_invalidate_page(unsigned int type, pgoff_t offset)
{
	struct rswap_dev *dev = rswap_fs.dev;

	if (!rswap_fs_ours(type) || offset >= rswap_fs.npages)
		return;
	if (!test_and_clear_bit(offset, rswap_fs.stored))
		return;
	atomic_long_dec(&rswap_fs.nr_stored);
	atomic64_inc(&rswap_fs.invalidates);
	if (dev->ops->discard)
		dev->ops->discard(dev, offset, 1);
}

/* swapoff, after every page came back: the type is free again. */
static void rswap_fs_invalidate_area(unsigned int type)
{
	struct rswap_dev *dev = rswap_fs.dev;

	if (!rswap_fs_ours(type))
		return;
	atomic64_inc(&rswap_fs.invalidate_areas);
	if (dev->ops->discard)
		dev->ops->discard(dev, 0, rswap_fs.npages);
	bitmap_zero(rswap_fs.stored, rswap_fs.npages);
	atomic_long_set(&rswap_fs.nr_stored, 0);
	atomic_set(&rswap_fs.type, -1);
	rswap_info(dev, "frontswap: swap type %u released\n", type);
}

/* Not const: frontswap_register_ops() chains it through ->next. */
static struct frontswap_ops rswap_fs_ops = {
	.init = rswap_fs_init,
	.store = rswap_fs_store,
	.load = rswap_fs_load,
	.invalidate_page = rswap_fs_invalidate_page,
	.invalidate_area = rswap_fs_invalidate_area,
};

/* ---- /sys/module/rswap_client/frontswap/ ------------------------------ */

struct rswap_fs_stat_attr {
	struct kobj_attribute attr;
	atomic64_t *v;
};

static ssize_t rswap_fs_stat_show(struct kobject *kobj,
				  struct kobj_attribute *a, char *buf)
{
	struct rswap_fs_stat_attr *sa = container_of(a, struct rswap_fs_stat_attr,
						     attr);

	return sysfs_emit(buf, "%lld\n", (long long)atomic64_read(sa->v));
}

static struct rswap_fs_stat_attr rswap_fs_stat_attrs[] = {
	{ __ATTR(stores, 0444, rswap_fs_stat_show, NULL), &rswap_fs.stores },
	{ __ATTR(loads, 0444, rswap_fs_stat_show, NULL), &rswap_fs.loads },
	{ __ATTR(load_misses, 0444, rswap_fs_stat_show, NULL),
	  &rswap_fs.load_misses },
	{ __ATTR(load_fails, 0444, rswap_fs_stat_show, NULL),
	  &rswap_fs.load_fails },
	{ __ATTR(load_lost, 0444, rswap_fs_stat_show, NULL),
	  &rswap_fs.load_lost },
	{ __ATTR(invalidates, 0444, rswap_fs_stat_show, NULL),
	  &rswap_fs.invalidates },
	{ __ATTR(invalidate_areas, 0444, rswap_fs_stat_show, NULL),
	  &rswap_fs.invalidate_areas },
};

/* One line per reason: "type N", "range N", ... */
static ssize_t store_fails_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	int i, len = 0;

	for (i = 0; i < RSWAP_FS_FAIL_KINDS; i++)
		len += sysfs_emit_at(buf, len, "%s %lld\n",
				     rswap_fs_fail_names[i],
				     (long long)atomic64_read(&rswap_fs.store_fails[i]));
	return len;
}

static struct kobj_attribute rswap_fs_store_fails = __ATTR_RO(store_fails);

static ssize_t stored_pages_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%ld\n", atomic_long_read(&rswap_fs.nr_stored));
}

static struct kobj_attribute rswap_fs_stored_pages = __ATTR_RO(stored_pages);

static ssize_t swap_type_show(struct kobject *kobj,
			      struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&rswap_fs.type));
}

static struct kobj_attribute rswap_fs_swap_type = __ATTR_RO(swap_type);

static ssize_t writethrough_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", rswap_fs.dev->cfg.writethrough);
}

static struct kobj_attribute rswap_fs_writethrough = __ATTR_RO(writethrough);

static ssize_t backend_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%s\n", rswap_fs.dev->ops->name);
}

static struct kobj_attribute rswap_fs_backend = __ATTR_RO(backend);

/* The same table as /sys/block/rswapN/rswap/errors. */
static ssize_t errors_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	struct rswap_dev *dev = rswap_fs.dev;
	int i, len = 0;

	for (i = 0; i < RSWAP_ERR_KINDS; i++)
		len += sysfs_emit_at(buf, len, "%s %lld\n", rswap_err_names[i],
				     (long long)atomic64_read(&dev->stats.errors[i]));
	return len;
}

static struct kobj_attribute rswap_fs_errors = __ATTR_RO(errors);

/* The same table as /sys/block/rswapN/rswap/poolds. */
static ssize_t poolds_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	struct rswap_dev *dev = rswap_fs.dev;

	return dev->ops->show_poolds ? dev->ops->show_poolds(dev, buf) : 0;
}

static struct kobj_attribute rswap_fs_poolds = __ATTR_RO(poolds);

/* The same line as /sys/block/rswapN/rswap/replicas. */
static ssize_t replicas_show(struct kobject *kobj, struct kobj_attribute *attr,
			     char *buf)
{
	return rswap_rdma_show_replicas(rswap_fs.dev, buf);
}

static struct kobj_attribute rswap_fs_replicas = __ATTR_RO(replicas);

/* Debugging: fail the next N remote reads as a failed completion would. */
static ssize_t fail_reads_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&rswap_fs.dev->fail_reads));
}

static ssize_t fail_reads_store(struct kobject *kobj,
				struct kobj_attribute *attr,
				const char *buf, size_t len)
{
	return rswap_fail_reads_set(rswap_fs.dev, buf) ?: len;
}

static struct kobj_attribute rswap_fs_fail_reads = __ATTR_RW(fail_reads);

static struct attribute *rswap_fs_attrs[] = {
	&rswap_fs_stat_attrs[0].attr.attr,
	&rswap_fs_stat_attrs[1].attr.attr,
	&rswap_fs_stat_attrs[2].attr.attr,
	&rswap_fs_stat_attrs[3].attr.attr,
	&rswap_fs_stat_attrs[4].attr.attr,
	&rswap_fs_stat_attrs[5].attr.attr,
	&rswap_fs_stat_attrs[6].attr.attr,
	&rswap_fs_store_fails.attr,
	&rswap_fs_stored_pages.attr,
	&rswap_fs_swap_type.attr,
	&rswap_fs_writethrough.attr,
	&rswap_fs_backend.attr,
	&rswap_fs_errors.attr,
	&rswap_fs_poolds.attr,
	&rswap_fs_replicas.attr,
	&rswap_fs_fail_reads.attr,
	NULL,
};

static const struct attribute_group rswap_fs_attr_group = {
	.attrs = rswap_fs_attrs,
};

/* ---- registration ------------------------------------------------------ */

int rswap_frontswap_add(struct rswap_dev *dev)
{
	struct rswap_fs *fs = &rswap_fs;
	int ret;

	if (!dev->ops->rw_page) {
		rswap_err(dev, "backend %s cannot serve frontswap\n",
			  dev->ops->name);
		return -EOPNOTSUPP;
	}
	fs->dev = dev;
	atomic_set(&fs->type, -1);
	fs->npages = dev->core.size >> PAGE_SHIFT;
	fs->stored = kvcalloc(BITS_TO_LONGS(fs->npages), sizeof(long),
			      GFP_KERNEL);
	if (!fs->stored)
		return -ENOMEM;
	fs->kobj = kobject_create_and_add("frontswap", &THIS_MODULE->mkobj.kobj);
	if (!fs->kobj) {
		ret = -ENOMEM;
		goto out_free_stored;
	}
	ret = sysfs_create_group(fs->kobj, &rswap_fs_attr_group);
	if (ret)
		goto out_put_kobj;

	/*
	 * Point of no return: 5.10 cannot unregister frontswap ops, so the
	 * module holds a reference to itself from here on and can never be
	 * unloaded (rmmod: "Module rswap_client is in use").
	 */
	__module_get(THIS_MODULE);
	/* Also write every page to the backing device: see the top. */
	if (dev->cfg.writethrough)
		frontswap_writethrough(true);
	frontswap_register_ops(&rswap_fs_ops);
	rswap_info(dev, "frontswap: registered (writethrough %s); this module can no longer be unloaded\n",
		   dev->cfg.writethrough ? "on" : "off");
	return 0;

out_put_kobj:
	kobject_put(fs->kobj);
	fs->kobj = NULL;
out_free_stored:
	kvfree(fs->stored);
	fs->stored = NULL;
	rswap_err(dev, "frontswap: cannot create its sysfs files: %d\n", ret);
	return ret;
}
