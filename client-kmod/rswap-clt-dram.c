// SPDX-License-Identifier: GPL-2.0
/*
 * DRAM backend: pages kept in this module's own memory, for debugging the
 * front-end without any server.  Pages are allocated on first write, kept
 * in an xarray indexed by device page, and freed on discard and when swap
 * frees a slot.  A page never written reads as zeroes.
 *
 * Locking: the xarray's own lock, irq-safe because swap may free a slot
 * from a bio completion on older kernels.  A reader or writer takes a page
 * reference under it, so a concurrent discard only drops the xarray's
 * reference and the page lives until the copy is done.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blk-mq.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/xarray.h>

#include "rswap-clt.h"
#include "rswap-compat.h"

/* Never sleeps.  Returns the page with a reference held, or NULL. */
static struct page *rswap_dram_lookup(struct rswap_dev *dev, pgoff_t index)
{
	struct page *page;
	unsigned long flags;

	xa_lock_irqsave(&dev->dram_pages, flags);
	page = xa_load(&dev->dram_pages, index);
	if (page)
		get_page(page);
	xa_unlock_irqrestore(&dev->dram_pages, flags);
	return page;
}

/*
 * May sleep (the DRAM queue is BLK_MQ_F_BLOCKING).  GFP_NOIO: this runs
 * on swap-out, so reclaim must not start I/O that could come back to this
 * device and wait on the request we are serving.
 */
static struct page *rswap_dram_lookup_or_alloc(struct rswap_dev *dev,
					       pgoff_t index)
{
	struct page *page, *fresh;
	int ret;

	page = rswap_dram_lookup(dev, index);
	if (page)
		return page;

	fresh = alloc_page(GFP_NOIO | __GFP_NOWARN | __GFP_ZERO);
	if (!fresh)
		return NULL;
	get_page(fresh);	/* ours; the xarray keeps the first one */
	ret = xa_insert_irq(&dev->dram_pages, index, fresh, GFP_NOIO);
	if (!ret) {
		atomic64_inc(&dev->dram_nr_pages);
		return fresh;
	}
	put_page(fresh);
	put_page(fresh);
	if (ret != -EBUSY)
		return NULL;
	/* Another writer of the same page won the race: use its page. */
	return rswap_dram_lookup(dev, index);
}

static blk_status_t rswap_dram_copy(struct rswap_dev *dev, struct request *rq)
{
	bool write = rq_data_dir(rq) == WRITE;
	u64 pos = (u64)blk_rq_pos(rq) << RSWAP_SECTOR_SHIFT;
	struct req_iterator iter;
	struct bio_vec bv;

	rq_for_each_segment(bv, rq, iter) {
		unsigned int done = 0;

		while (done < bv.bv_len) {
			pgoff_t index = pos >> PAGE_SHIFT;
			unsigned int off = offset_in_page(pos);
			unsigned int n = min_t(unsigned int, bv.bv_len - done,
					       PAGE_SIZE - off);
			unsigned int boff = bv.bv_offset + done;
			struct page *page;

			if (write)
				page = rswap_dram_lookup_or_alloc(dev, index);
			else
				page = rswap_dram_lookup(dev, index);
			if (!page && write) {
				rswap_count_err(dev, RSWAP_ERR_NOMEM);
				rswap_warn_rl(dev, "no memory for page %lu\n",
					      index);
				return BLK_STS_RESOURCE;
			}
			if (write)
				rswap_compat_copy_page(page, off, bv.bv_page,
						       boff, n);
			else if (page)
				rswap_compat_copy_page(bv.bv_page, boff, page,
						       off, n);
			else
				rswap_compat_zero_page(bv.bv_page, boff, n);
			if (page)
				put_page(page);
			done += n;
			pos += n;
		}
	}
	return BLK_STS_OK;
}

/* May sleep (BLK_MQ_F_BLOCKING). */
static blk_status_t rswap_dram_queue_rq(struct rswap_dev *dev,
					unsigned int qidx, struct request *rq)
{
	u64 off = (u64)blk_rq_pos(rq) << RSWAP_SECTOR_SHIFT;
	u64 chunk_off;
	blk_status_t status;

	if (!rswap_core_route(&dev->core, off, blk_rq_bytes(rq), &chunk_off)) {
		rswap_count_err(dev, RSWAP_ERR_RANGE);
		rswap_err_rl(dev, "request at %llu of %u bytes crosses a chunk or the end\n",
			     off, blk_rq_bytes(rq));
		return BLK_STS_IOERR;
	}
	if (rq_data_dir(rq) == READ && rswap_inject_read_error(dev)) {
		rswap_count_err(dev, RSWAP_ERR_IO);
		rswap_err_rl(dev, "injected read error at %llu\n", off);
		return BLK_STS_IOERR;
	}
	status = rswap_dram_copy(dev, rq);
	if (status != BLK_STS_OK)
		return status;
	rswap_blk_end(dev, rq, BLK_STS_OK);
	return BLK_STS_OK;
}

/* May sleep (frontswap store/load).  One page, synchronously. */
static int rswap_dram_rw_page(struct rswap_dev *dev, u64 off,
			      struct page *page, bool write)
{
	pgoff_t index = off >> PAGE_SHIFT;
	struct page *store;
	u64 chunk_off;

	if (!rswap_core_route(&dev->core, off, PAGE_SIZE, &chunk_off))
		return -ERANGE;
	if (!write && rswap_inject_read_error(dev)) {
		rswap_count_err(dev, RSWAP_ERR_IO);
		return -EIO;
	}
	if (write)
		store = rswap_dram_lookup_or_alloc(dev, index);
	else
		store = rswap_dram_lookup(dev, index);
	if (!store) {
		if (!write)
			return -ENOENT;
		rswap_count_err(dev, RSWAP_ERR_NOMEM);
		return -ENOMEM;
	}
	if (write)
		rswap_compat_copy_page(store, 0, page, 0, PAGE_SIZE);
	else
		rswap_compat_copy_page(page, 0, store, 0, PAGE_SIZE);
	put_page(store);
	return 0;
}

/*
 * Never sleeps: also called under the swap device's spinlock, and by
 * kernels before 5.19 from the swap-in bio completion (interrupt context).
 */
static void rswap_dram_discard(struct rswap_dev *dev, pgoff_t first,
			       pgoff_t nr)
{
	unsigned long index, flags;
	struct page *page;

	xa_lock_irqsave(&dev->dram_pages, flags);
	xa_for_each_range(&dev->dram_pages, index, page, first,
			  first + nr - 1) {
		__xa_erase(&dev->dram_pages, index);
		atomic64_dec(&dev->dram_nr_pages);
		put_page(page);
	}
	xa_unlock_irqrestore(&dev->dram_pages, flags);
}

static ssize_t rswap_dram_show_poolds(struct rswap_dev *dev, char *buf)
{
	return sysfs_emit(buf, "dram pages=%lld\n",
			  (long long)atomic64_read(&dev->dram_nr_pages));
}

static const struct rswap_backend_ops rswap_dram_ops = {
	.name = "dram",
	.blocking = true,
	.queue_rq = rswap_dram_queue_rq,
	.rw_page = rswap_dram_rw_page,
	.discard = rswap_dram_discard,
	.show_poolds = rswap_dram_show_poolds,
};

/* May sleep. */
int rswap_dram_open(struct rswap_dev *dev)
{
	int ret;

	ret = rswap_core_init(&dev->core, dev->cfg.size, RSWAP_DRAM_CHUNK_SIZE);
	if (ret)
		return ret;
	xa_init_flags(&dev->dram_pages, XA_FLAGS_LOCK_IRQ);
	atomic64_set(&dev->dram_nr_pages, 0);
	dev->max_segments = dev->cfg.max_io_kb / (PAGE_SIZE / 1024);
	dev->ops = &rswap_dram_ops;
	return 0;
}

/* May sleep.  The front-end is gone: no I/O can race with this. */
void rswap_dram_close(struct rswap_dev *dev)
{
	rswap_dram_discard(dev, 0, ULONG_MAX);
	xa_destroy(&dev->dram_pages);
	rswap_core_free(&dev->core);
}
