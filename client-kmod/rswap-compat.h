/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences, kept in this one header so that the .c files
 * carry no version #ifdefs.  Only 6.1 is exercised today; 5.10 .. 7.x are
 * the targets, and each helper below names the release that changed the
 * API it hides.
 */
#ifndef RSWAP_COMPAT_H
#define RSWAP_COMPAT_H

#include <linux/blkdev.h>
#include <linux/blk-mq.h>
#include <linux/highmem.h>
#include <linux/net.h>
#include <net/sock.h>

/* Queue limits, applied at allocation (6.9+) or right after (older). */
struct rswap_queue_limits {
	unsigned int block_size;	/* logical == physical */
	unsigned int max_hw_sectors;
	unsigned short max_segments;
	unsigned int max_discard_sectors;
	unsigned int chunk_sectors;
};

/* May sleep.  Returns the disk or an ERR_PTR. */
static inline struct gendisk *
rswap_compat_alloc_disk(struct blk_mq_tag_set *set,
			const struct rswap_queue_limits *lim, void *data)
{
	struct gendisk *disk;
	struct request_queue *q;

	disk = blk_mq_alloc_disk(set, data);
	if (IS_ERR(disk))
		return disk;
	q = disk->queue;
	blk_queue_logical_block_size(q, lim->block_size);
	blk_queue_physical_block_size(q, lim->block_size);
	blk_queue_io_min(q, lim->block_size);
	blk_queue_max_hw_sectors(q, lim->max_hw_sectors);
	blk_queue_max_segments(q, lim->max_segments);
	blk_queue_chunk_sectors(q, lim->chunk_sectors);
	if (lim->max_discard_sectors) {
		q->limits.discard_granularity = lim->block_size;
		blk_queue_max_discard_sectors(q, lim->max_discard_sectors);
	}
	blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, q);
	return disk;
}

/* Partitions make no sense on a swap device (GENHD_FL_NO_PART: 5.17+). */
static inline void rswap_compat_disk_no_part(struct gendisk *disk)
{
	disk->flags |= GENHD_FL_NO_PART;
}

/* Undo rswap_compat_alloc_disk() after a failed or before any add_disk. */
static inline void rswap_compat_put_disk(struct gendisk *disk)
{
	put_disk(disk);		/* blk_cleanup_disk() before 5.18 */
}

/* Remove an added disk: waits for I/O in flight.  May sleep. */
static inline void rswap_compat_remove_disk(struct gendisk *disk)
{
	del_gendisk(disk);
	put_disk(disk);
}

/* blk_rq_map_sg() lost its queue argument in 6.15. */
static inline int rswap_compat_map_sg(struct request *rq,
				      struct scatterlist *sg)
{
	return blk_rq_map_sg(rq->q, rq, sg);
}

/*
 * swap_slot_free_notify lived in block_device_operations until 6.7 dropped
 * it (swap sends discards instead); Kbuild greps the headers for it.
 */
#ifdef RSWAP_HAVE_SLOT_FREE_NOTIFY
#define RSWAP_FOPS_SLOT_FREE_NOTIFY(fn)	.swap_slot_free_notify = (fn),
#else
#define RSWAP_FOPS_SLOT_FREE_NOTIFY(fn)
#endif

/* Send and receive timeouts of a kernel socket; connect uses the former. */
static inline void rswap_compat_sock_timeouts(struct socket *sock,
					      unsigned int secs)
{
	sock_set_sndtimeo(sock->sk, secs);
	lock_sock(sock->sk);
	sock->sk->sk_rcvtimeo = (long)secs * HZ;
	release_sock(sock->sk);
}

#endif /* RSWAP_COMPAT_H */
