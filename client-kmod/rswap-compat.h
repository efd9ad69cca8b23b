/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences, kept in this one header so that the .c files
 * carry no #ifdefs.  Features are detected by Kbuild from the headers
 * (RSWAP_HAVE_*), not from version numbers, because distribution kernels
 * backport.  VM-tested (10-kmod-dram, 30-swap-rdma): 5.10, 6.1, 6.12, 7.2.
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
	bool synchronous;		/* see RSWAP_SYNC_BY_QUEUE */
};

/*
 * synchronous=1: the kernel swaps a page mapped once in without the swap
 * cache when the device says it completes in the submitter's context.
 * Before 6.3 a device says so by having .rw_page (the block front-end
 * then serves reads there and declines writes); 6.3 .. 6.10 by a queue
 * flag; from 6.11 by a queue feature.
 */
#if defined(RSWAP_HAVE_BLK_FEAT_SYNCHRONOUS) || \
	defined(RSWAP_HAVE_QUEUE_FLAG_SYNCHRONOUS)
#define RSWAP_SYNC_BY_QUEUE	1
#elif defined(RSWAP_HAVE_RW_PAGE)
#define RSWAP_SYNC_BY_QUEUE	0
#ifdef RSWAP_HAVE_RW_PAGE_REQ_OP
#define RSWAP_RW_PAGE_OP	enum req_op
#else
#define RSWAP_RW_PAGE_OP	unsigned int
#endif
#else
#error "this kernel has no way to declare a block device synchronous"
#endif

/* A queue flag only (6.3 .. 6.10); features come with the limits. */
static inline void rswap_compat_set_sync(struct request_queue *q,
					 const struct rswap_queue_limits *lim)
{
#ifdef RSWAP_HAVE_QUEUE_FLAG_SYNCHRONOUS
	if (lim->synchronous)
		blk_queue_flag_set(QUEUE_FLAG_SYNCHRONOUS, q);
#endif
}

#ifdef RSWAP_HAVE_ALLOC_DISK_LIMITS
/* May sleep.  Returns the disk or an ERR_PTR.  6.9+ */
static inline struct gendisk *
rswap_compat_alloc_disk(struct blk_mq_tag_set *set,
			const struct rswap_queue_limits *rl, void *data)
{
	struct queue_limits lim = {
		.logical_block_size = rl->block_size,
		.physical_block_size = rl->block_size,
		.io_min = rl->block_size,
		.max_hw_sectors = rl->max_hw_sectors,
		.max_segments = rl->max_segments,
		.chunk_sectors = rl->chunk_sectors,
		.max_hw_discard_sectors = rl->max_discard_sectors,
		.discard_granularity = rl->max_discard_sectors ?
				       rl->block_size : 0,
#ifdef RSWAP_HAVE_BLK_FEAT_SYNCHRONOUS
		.features = rl->synchronous ? BLK_FEAT_SYNCHRONOUS : 0,
#endif
	};
	struct gendisk *disk;

	/* Without BLK_FEAT_ROTATIONAL (6.11+) the queue is non-rotational. */
	disk = blk_mq_alloc_disk(set, &lim, data);
#ifndef BLK_FEAT_ROTATIONAL
	if (!IS_ERR(disk))
		blk_queue_flag_set(QUEUE_FLAG_NONROT, disk->queue);
#endif
	if (!IS_ERR(disk))
		rswap_compat_set_sync(disk->queue, rl);
	return disk;
}
#else
static inline void rswap_compat_set_limits(struct request_queue *q,
					   const struct rswap_queue_limits *lim)
{
	blk_queue_logical_block_size(q, lim->block_size);
	blk_queue_physical_block_size(q, lim->block_size);
	blk_queue_io_min(q, lim->block_size);
	blk_queue_max_hw_sectors(q, lim->max_hw_sectors);
	blk_queue_max_segments(q, lim->max_segments);
	blk_queue_chunk_sectors(q, lim->chunk_sectors);
	if (lim->max_discard_sectors) {
		q->limits.discard_granularity = lim->block_size;
		blk_queue_max_discard_sectors(q, lim->max_discard_sectors);
#ifdef QUEUE_FLAG_DISCARD
		/* Before 5.19 discard also needs the queue flag. */
		blk_queue_flag_set(QUEUE_FLAG_DISCARD, q);
#endif
	}
	blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, q);
	rswap_compat_set_sync(q, lim);
}

#ifdef RSWAP_HAVE_MQ_ALLOC_DISK
/* May sleep.  Returns the disk or an ERR_PTR.  5.14 .. 6.8 */
static inline struct gendisk *
rswap_compat_alloc_disk(struct blk_mq_tag_set *set,
			const struct rswap_queue_limits *lim, void *data)
{
	struct gendisk *disk = blk_mq_alloc_disk(set, data);

	if (!IS_ERR(disk))
		rswap_compat_set_limits(disk->queue, lim);
	return disk;
}
#else
/* May sleep.  Returns the disk or an ERR_PTR.  Before 5.14 */
static inline struct gendisk *
rswap_compat_alloc_disk(struct blk_mq_tag_set *set,
			const struct rswap_queue_limits *lim, void *data)
{
	struct request_queue *q;
	struct gendisk *disk;

	q = blk_mq_init_queue_data(set, data);
	if (IS_ERR(q))
		return ERR_CAST(q);
	disk = alloc_disk(1);
	if (!disk) {
		blk_cleanup_queue(q);
		return ERR_PTR(-ENOMEM);
	}
	disk->queue = q;
	rswap_compat_set_limits(q, lim);
	return disk;
}
#endif
#endif

/* Register the disk; returns 0 or -errno (void before 5.15). */
static inline int rswap_compat_add_disk(struct gendisk *disk,
					const struct attribute_group **groups)
{
#ifdef RSWAP_HAVE_ADD_DISK_INT
	return device_add_disk(NULL, disk, groups);
#else
	device_add_disk(NULL, disk, groups);
	return 0;
#endif
}

/* Merging became unconditional when 6.14 dropped the flag. */
#ifdef RSWAP_HAVE_MQ_F_SHOULD_MERGE
#define RSWAP_MQ_F_SHOULD_MERGE		BLK_MQ_F_SHOULD_MERGE
#else
#define RSWAP_MQ_F_SHOULD_MERGE		0
#endif

/* Partitions make no sense on a swap device (GENHD_FL_NO_PART: 5.17+). */
static inline void rswap_compat_disk_no_part(struct gendisk *disk)
{
#ifdef RSWAP_HAVE_GENHD_FL_NO_PART
	disk->flags |= GENHD_FL_NO_PART;
#else
	disk->flags |= GENHD_FL_NO_PART_SCAN;
#endif
}

/* Undo rswap_compat_alloc_disk() when add_disk was not reached or failed. */
static inline void rswap_compat_put_disk(struct gendisk *disk)
{
#if defined(RSWAP_HAVE_BLK_CLEANUP_DISK)
	blk_cleanup_disk(disk);			/* 5.14 .. 5.19 */
#elif !defined(RSWAP_HAVE_MQ_ALLOC_DISK)
	blk_cleanup_queue(disk->queue);		/* before 5.14 */
	put_disk(disk);
#else
	put_disk(disk);
#endif
}

/* Remove an added disk: waits for I/O in flight.  May sleep. */
static inline void rswap_compat_remove_disk(struct gendisk *disk)
{
	del_gendisk(disk);
	rswap_compat_put_disk(disk);
}

/* memcpy_page()/memzero_page() appeared in 5.14/5.12. */
static inline void rswap_compat_copy_page(struct page *dst, size_t doff,
					  struct page *src, size_t soff,
					  size_t len)
{
#ifdef RSWAP_HAVE_MEMCPY_PAGE
	memcpy_page(dst, doff, src, soff, len);
#else
	/*
	 * One side is always a DRAM store page, allocated without
	 * __GFP_HIGHMEM and so permanently mapped.
	 */
	if (!PageHighMem(src))
		memcpy_to_page(dst, doff, page_address(src) + soff, len);
	else
		memcpy_from_page(page_address(dst) + doff, src, soff, len);
#endif
}

static inline void rswap_compat_zero_page(struct page *page, size_t off,
					  size_t len)
{
#ifdef RSWAP_HAVE_MEMCPY_PAGE
	memzero_page(page, off, len);
#else
	zero_user(page, off, len);
#endif
}

/* blk_rq_map_sg() lost its queue argument in 6.15. */
static inline int rswap_compat_map_sg(struct request *rq,
				      struct scatterlist *sg)
{
#ifdef RSWAP_HAVE_MAP_SG_NO_QUEUE
	return blk_rq_map_sg(rq, sg);
#else
	return blk_rq_map_sg(rq->q, rq, sg);
#endif
}

/* blk-mq's .init_request: the NUMA node is an int from 7.x. */
#ifdef RSWAP_HAVE_INIT_REQUEST_INT_NODE
#define RSWAP_NUMA_NODE_T	int
#else
#define RSWAP_NUMA_NODE_T	unsigned int
#endif

/* blk-mq's .timeout lost its "reserved" argument in 5.19. */
#ifdef RSWAP_HAVE_TIMEOUT_RESERVED
#define RSWAP_TIMEOUT_FN(name) \
	enum blk_eh_timer_return name(struct request *rq, bool reserved)
#else
#define RSWAP_TIMEOUT_FN(name) \
	enum blk_eh_timer_return name(struct request *rq)
#endif

/* swap_slot_free_notify is not in every kernel's block_device_operations. */
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

/* kernel_connect() takes a struct sockaddr_unsized since 7.x. */
static inline int rswap_compat_connect(struct socket *sock,
				       struct sockaddr_storage *ss, int len)
{
#ifdef RSWAP_HAVE_SOCKADDR_UNSIZED
	return kernel_connect(sock, (struct sockaddr_unsized *)ss, len, 0);
#else
	return kernel_connect(sock, (struct sockaddr *)ss, len, 0);
#endif
}

#endif /* RSWAP_COMPAT_H */
