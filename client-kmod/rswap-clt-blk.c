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

static const struct blk_mq_ops rswap_mq_ops = {
	/* No .init_request: the RDMA backend initialises cmd->sg per request. */
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

/* May sleep.  On success the disk is live and I/O may arrive. */
int rswap_blk_add(struct rswap_dev *dev)
{
	struct rswap_queue_limits lim = {
		.block_size = RSWAP_BLOCK_SIZE,
		.max_hw_sectors = RSWAP_MAX_IO_BYTES >> RSWAP_SECTOR_SHIFT,
		.max_segments = dev->max_segments,
		.max_discard_sectors = UINT_MAX >> RSWAP_SECTOR_SHIFT,
		.chunk_sectors = dev->core.chunk_size >> RSWAP_SECTOR_SHIFT,
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
	set->cmd_size = struct_size((struct rswap_cmd *)NULL, half,
				    dev->cfg.replicas + 1);
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
	disk->fops = &rswap_fops;
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
