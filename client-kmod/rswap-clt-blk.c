// SPDX-License-Identifier: GPL-2.0
/*
 * Block front-end: /dev/rswapN on blk-mq, one hardware queue per online
 * CPU counted at load.  It checks and routes nothing itself beyond the
 * request type; the backend behind dev->ops does the data movement.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/blkdev.h>
#include <linux/blk-mq.h>
#include <linux/pagemap.h>

#include "rswap-clt.h"
#include "rswap-compat.h"

/*
 * Complete a request a backend accepted.  Any context, including the CQ's
 * softirq.  A failed request is never accounted as data transferred.
 */
void rswap_blk_end(struct rswap_dev *dev, struct request *rq,
		   blk_status_t status)
{
	/* The next request on this tag starts afresh. */
	((struct rswap_cmd *)blk_mq_rq_to_pdu(rq))->failover = false;
	if (status == BLK_STS_OK)
		rswap_stats_account(&dev->stats, rq_data_dir(rq) == WRITE,
				    blk_rq_bytes(rq));
	atomic_dec(&dev->stats.inflight);
	blk_mq_end_request(rq, status);
}

/*
 * Give back a request a backend accepted, to be dispatched again (its
 * session came back).  Any context.
 */
void rswap_blk_requeue(struct rswap_dev *dev, struct request *rq)
{
	atomic_dec(&dev->stats.inflight);
	blk_mq_requeue_request(rq, true);
}

static void rswap_blk_discard(struct rswap_dev *dev, struct request *rq)
{
	pgoff_t first = blk_rq_pos(rq) >> (PAGE_SHIFT - RSWAP_SECTOR_SHIFT);
	pgoff_t nr = blk_rq_bytes(rq) >> PAGE_SHIFT;

	atomic64_inc(&dev->stats.discards);
	if (dev->ops->discard && nr)
		dev->ops->discard(dev, first, nr);
}

/* May sleep only if the backend asked for BLK_MQ_F_BLOCKING. */
static blk_status_t rswap_queue_rq(struct blk_mq_hw_ctx *hctx,
				   const struct blk_mq_queue_data *bd)
{
	struct rswap_dev *dev = hctx->queue->queuedata;
	struct request *rq = bd->rq;
	blk_status_t status;

	blk_mq_start_request(rq);
	switch (req_op(rq)) {
	case REQ_OP_READ:
	case REQ_OP_WRITE:
		atomic_inc(&dev->stats.inflight);
		status = dev->ops->queue_rq(dev, hctx->queue_num, rq);
		if (status != BLK_STS_OK)
			atomic_dec(&dev->stats.inflight);
		return status;
	case REQ_OP_DISCARD:
		rswap_blk_discard(dev, rq);
		blk_mq_end_request(rq, BLK_STS_OK);
		return BLK_STS_OK;
	case REQ_OP_FLUSH:
		/* No volatile cache: everything written is already durable. */
		blk_mq_end_request(rq, BLK_STS_OK);
		return BLK_STS_OK;
	default:
		rswap_warn_rl(dev, "unsupported request op %u\n", req_op(rq));
		return BLK_STS_NOTSUPP;
	}
}

/*
 * A request in flight for longer than RSWAP_RQ_TIMEOUT_SECS: the backend
 * decides (the RDMA backend starts error recovery, whose drain completes
 * the request).  Timer context.
 */
static RSWAP_TIMEOUT_FN(rswap_timeout)
{
	struct rswap_dev *dev = rq->q->queuedata;

	if (!dev->ops->timeout)
		return BLK_EH_RESET_TIMER;
	return dev->ops->timeout(dev, rq);
}

/*
 * A mapping backend's pdu: struct rswap_cmd and its halves, then each
 * half's scatterlist, then the SGEs, max_segments of each.  About 20 KiB
 * per request with one copy and max_io_kb=1024 (rswap_cmd_size()).
 */
static size_t rswap_cmd_size(const struct rswap_dev *dev)
{
	unsigned int nh = dev->cfg.replicas + 1;

	if (!dev->ops->map_sg)
		return 0;
	return struct_size((struct rswap_cmd *)NULL, half, nh) +
	       array3_size(nh, dev->max_segments, sizeof(struct scatterlist)) +
	       array_size(dev->max_segments, sizeof(struct ib_sge));
}

/* May sleep: once per request, when the tag set is allocated. */
static int rswap_init_request(struct blk_mq_tag_set *set, struct request *rq,
			      unsigned int hctx_idx,
			      RSWAP_NUMA_NODE_T numa_node)
{
	struct rswap_dev *dev = set->driver_data;
	struct rswap_cmd *cmd = blk_mq_rq_to_pdu(rq);
	unsigned int h, nh = dev->cfg.replicas + 1;
	struct scatterlist *sg = (struct scatterlist *)&cmd->half[nh];

	if (!dev->ops->map_sg)
		return 0;
	for (h = 0; h < nh; h++)
		cmd->half[h].sg = sg + h * dev->max_segments;
	cmd->sge = (struct ib_sge *)(sg + nh * dev->max_segments);
	return 0;
}

static const struct blk_mq_ops rswap_mq_ops = {
	.init_request = rswap_init_request,
	.queue_rq = rswap_queue_rq,
	.timeout = rswap_timeout,
};

/*
 * Swap tells us a slot is free: drop its backing page now rather than
 * keeping garbage until the next write.  Called under the swap device's
 * spinlock, so it must not sleep.
 */
static void __maybe_unused rswap_slot_free_notify(struct block_device *bdev,
						  unsigned long index)
{
	struct rswap_dev *dev = bdev->bd_disk->private_data;

	if (dev->ops->discard)
		dev->ops->discard(dev, index, 1);
}

static const struct block_device_operations rswap_fops = {
	.owner = THIS_MODULE,
	RSWAP_FOPS_SLOT_FREE_NOTIFY(rswap_slot_free_notify)
};

#if !RSWAP_SYNC_BY_QUEUE
/*
 * synchronous=1 before 6.3 (rswap-compat.h).  Sleeps.  A read of one page
 * is served here, whole, on the backend's page path, and the page
 * unlocked; a write, or a read that fails, returns an error with the
 * page untouched, and the kernel sends it down the block path instead
 * (which retries, fails over, or fails it as usual).
 */
static int rswap_rw_page(struct block_device *bdev, sector_t sector,
			 struct page *page, RSWAP_RW_PAGE_OP op)
{
	struct rswap_dev *dev = bdev->bd_disk->private_data;
	int ret;

	if (op_is_write(op) || PageTransHuge(page))
		return -EOPNOTSUPP;
	ret = dev->ops->rw_page(dev, (u64)sector << RSWAP_SECTOR_SHIFT, page,
				false);
	if (ret)
		return ret;
	rswap_stats_account(&dev->stats, false, PAGE_SIZE);
	page_endio(page, false, 0);
	return 0;
}

static const struct block_device_operations rswap_sync_fops = {
	.owner = THIS_MODULE,
	.rw_page = rswap_rw_page,
	RSWAP_FOPS_SLOT_FREE_NOTIFY(rswap_slot_free_notify)
};
#endif

static const struct block_device_operations *
rswap_blk_fops(const struct rswap_dev *dev)
{
#if !RSWAP_SYNC_BY_QUEUE
	if (dev->cfg.synchronous)
		return &rswap_sync_fops;
#endif
	return &rswap_fops;
}

/* May sleep.  On success the disk is live and I/O may arrive. */
int rswap_blk_add(struct rswap_dev *dev)
{
	struct rswap_queue_limits lim = {
		.block_size = RSWAP_BLOCK_SIZE,
		.max_hw_sectors = dev->cfg.max_io_kb << (10 - RSWAP_SECTOR_SHIFT),
		.max_segments = dev->max_segments,
		.max_discard_sectors = UINT_MAX >> RSWAP_SECTOR_SHIFT,
		.chunk_sectors = dev->core.chunk_size >> RSWAP_SECTOR_SHIFT,
		.synchronous = dev->cfg.synchronous,
	};
	struct blk_mq_tag_set *set = &dev->tag_set;
	struct gendisk *disk;
	int ret;

	ret = register_blkdev(0, "rswap");
	if (ret < 0) {
		rswap_err(dev, "cannot register a block major: %d\n", ret);
		return ret;
	}
	dev->major = ret;

	memset(set, 0, sizeof(*set));
	set->ops = &rswap_mq_ops;
	set->nr_hw_queues = dev->nr_queues;
	set->queue_depth = dev->cfg.queue_depth;
	set->numa_node = NUMA_NO_NODE;
	set->cmd_size = rswap_cmd_size(dev);
	set->timeout = RSWAP_RQ_TIMEOUT_SECS * HZ;
	set->flags = RSWAP_MQ_F_SHOULD_MERGE;
	if (dev->ops->blocking)
		set->flags |= BLK_MQ_F_BLOCKING;
	set->driver_data = dev;
	ret = blk_mq_alloc_tag_set(set);
	if (ret) {
		rswap_err(dev, "cannot allocate %u queues of depth %u: %d\n",
			  set->nr_hw_queues, set->queue_depth, ret);
		goto out_unregister_blkdev;
	}

	disk = rswap_compat_alloc_disk(set, &lim, dev);
	if (IS_ERR(disk)) {
		ret = PTR_ERR(disk);
		rswap_err(dev, "cannot allocate the disk: %d\n", ret);
		goto out_free_tag_set;
	}
	disk->major = dev->major;
	disk->first_minor = 0;
	disk->minors = 1;
	disk->fops = rswap_blk_fops(dev);
	disk->private_data = dev;
	rswap_compat_disk_no_part(disk);
	strscpy(disk->disk_name, dev->name, sizeof(disk->disk_name));
	set_capacity(disk, dev->core.size >> RSWAP_SECTOR_SHIFT);

	/* Point of no return for the backend: I/O may start once added. */
	ret = rswap_compat_add_disk(disk, rswap_disk_groups);
	if (ret) {
		rswap_err(dev, "cannot add the disk: %d\n", ret);
		goto out_put_disk;
	}
	dev->disk = disk;
	return 0;

out_put_disk:
	rswap_compat_put_disk(disk);
out_free_tag_set:
	blk_mq_free_tag_set(set);
out_unregister_blkdev:
	unregister_blkdev(dev->major, "rswap");
	return ret;
}

/* May sleep: waits for every request in flight to complete. */
void rswap_blk_remove(struct rswap_dev *dev)
{
	if (!dev->disk)
		return;
	rswap_compat_remove_disk(dev->disk);
	dev->disk = NULL;
	blk_mq_free_tag_set(&dev->tag_set);
	unregister_blkdev(dev->major, "rswap");
}
