// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/block/rswapN/rswap/: one value per file, except the grouped
 * "errors", "chunk_map" and "poolds" tables (one line per item).  Sysfs is
 * ABI: add files, never change what an existing one prints.
 */
#include <linux/blkdev.h>
#include <linux/device.h>
#include <linux/sysfs.h>

#include "rswap-clt.h"

static struct rswap_dev *rswap_from_device(struct device *d)
{
	return dev_to_disk(d)->private_data;
}

struct rswap_stat_attr {
	struct device_attribute attr;
	size_t offset;		/* of an atomic64_t in struct rswap_stats */
};

static ssize_t rswap_stat_show(struct device *d, struct device_attribute *a,
			       char *buf)
{
	struct rswap_stat_attr *sa = container_of(a, struct rswap_stat_attr,
						  attr);
	struct rswap_dev *dev = rswap_from_device(d);
	atomic64_t *v = (void *)&dev->stats + sa->offset;

	return sysfs_emit(buf, "%lld\n", (long long)atomic64_read(v));
}

#define RSWAP_STAT_OFF(field)	offsetof(struct rswap_stats, field)

static struct rswap_stat_attr rswap_stat_attrs[] = {
	{ __ATTR(reads, 0444, rswap_stat_show, NULL), RSWAP_STAT_OFF(reads) },
	{ __ATTR(writes, 0444, rswap_stat_show, NULL), RSWAP_STAT_OFF(writes) },
	{ __ATTR(discards, 0444, rswap_stat_show, NULL), RSWAP_STAT_OFF(discards) },
	{ __ATTR(bytes_read, 0444, rswap_stat_show, NULL), RSWAP_STAT_OFF(bytes_read) },
	{ __ATTR(bytes_written, 0444, rswap_stat_show, NULL), RSWAP_STAT_OFF(bytes_written) },
};

static ssize_t inflight_show(struct device *d, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%d\n",
			  atomic_read(&rswap_from_device(d)->stats.inflight));
}
static DEVICE_ATTR_RO(inflight);

static ssize_t errors_show(struct device *d, struct device_attribute *attr,
			   char *buf)
{
	struct rswap_dev *dev = rswap_from_device(d);
	int i, len = 0;

	for (i = 0; i < RSWAP_ERR_KINDS; i++)
		len += sysfs_emit_at(buf, len, "%s %lld\n", rswap_err_names[i],
				     (long long)atomic64_read(&dev->stats.errors[i]));
	return len;
}
static DEVICE_ATTR_RO(errors);

static ssize_t backend_show(struct device *d, struct device_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%s\n", rswap_from_device(d)->ops->name);
}
static DEVICE_ATTR_RO(backend);

static ssize_t client_id_show(struct device *d, struct device_attribute *attr,
			      char *buf)
{
	return sysfs_emit(buf, "%s\n", rswap_from_device(d)->cfg.client_id);
}
static DEVICE_ATTR_RO(client_id);

static ssize_t chunk_size_show(struct device *d, struct device_attribute *attr,
			       char *buf)
{
	return sysfs_emit(buf, "%llu\n", rswap_from_device(d)->core.chunk_size);
}
static DEVICE_ATTR_RO(chunk_size);

static ssize_t nr_queues_show(struct device *d, struct device_attribute *attr,
			      char *buf)
{
	return sysfs_emit(buf, "%u\n", rswap_from_device(d)->nr_queues);
}
static DEVICE_ATTR_RO(nr_queues);

/*
 * One line per slot: index, then per copy its poold, handle and "ok",
 * "stale" (it missed writes: being brought in sync, or replaced) or
 * "lost" (its poold lost the memory; with one copy the slot's pages fail
 * with I/O errors), and while its chunk moves "moving POOLD HANDLE
 * COPIED/CHUNK_SIZE" ("resync" for a stale copy brought back in place).
 * The DRAM backend: "dram".  Truncated at PAGE_SIZE.
 */
static const char *rswap_copy_state(const struct rswap_slot *s,
				    unsigned int r)
{
	if (test_bit(r, &s->gone))
		return "lost";
	return test_bit(r, &s->stale) ? "stale" : "ok";
}

static ssize_t chunk_map_show(struct device *d, struct device_attribute *attr,
			      char *buf)
{
	struct rswap_dev *dev = rswap_from_device(d);
	int len = 0, n = 0;
	unsigned int r;
	u32 i;

	for (i = 0; i < dev->core.nslots; i++) {
		const struct rswap_slot *s = &dev->core.slots[i];
		const struct rswap_place *p;

		rcu_read_lock();
		p = rcu_dereference(s->place);
		if (!p) {
			n = sysfs_emit_at(buf, len, "%u dram %u ok\n", i, i);
			goto next;
		}
		n = sysfs_emit_at(buf, len, "%u", i);
		for (r = 0; n && r < p->nr; r++)
			n = sysfs_emit_at(buf, len += n, " %s %llu %s",
					  rswap_sess_name(p->rep[r].sess),
					  p->rep[r].handle,
					  p->nr == 1 && READ_ONCE(s->lost) ?
					  "lost" : rswap_copy_state(s, r));
		if (n && p->move)
			n = sysfs_emit_at(buf, len += n, " %s %s %llu %llu/%llu",
					  rswap_move_is_resync(p->move) ?
					  "resync" : "moving",
					  rswap_sess_name(p->rep[p->nr].sess),
					  p->rep[p->nr].handle,
					  rswap_move_copied(p->move),
					  dev->core.chunk_size);
		if (n)
			n = sysfs_emit_at(buf, len += n, "\n");
next:
		rcu_read_unlock();
		if (!n)
			break;
		len += n;
	}
	return len;
}
static DEVICE_ATTR_RO(chunk_map);

/*
 * Chunk moves: "epoch=E done=N failed=N bytes=B" and, while one runs,
 * " moving=SLOT to=POOLD copied=C".
 */
static ssize_t moves_show(struct device *d, struct device_attribute *attr,
			  char *buf)
{
	return rswap_rdma_show_moves(rswap_from_device(d), buf);
}
static DEVICE_ATTR_RO(moves);

static ssize_t replicas_show(struct device *d, struct device_attribute *attr,
			     char *buf)
{
	return rswap_rdma_show_replicas(rswap_from_device(d), buf);
}
static DEVICE_ATTR_RO(replicas);

static ssize_t failover_latency_show(struct device *d,
				     struct device_attribute *attr, char *buf)
{
	return rswap_rdma_show_failover_latency(rswap_from_device(d), buf);
}
static DEVICE_ATTR_RO(failover_latency);

static ssize_t poolds_show(struct device *d, struct device_attribute *attr,
			   char *buf)
{
	struct rswap_dev *dev = rswap_from_device(d);

	return dev->ops->show_poolds ? dev->ops->show_poolds(dev, buf) : 0;
}
static DEVICE_ATTR_RO(poolds);

/* The coordinator link: connecting, live, reconnecting, stopped, none. */
static ssize_t coord_state_show(struct device *d, struct device_attribute *attr,
				char *buf)
{
	return sysfs_emit(buf, "%s\n",
			  rswap_coord_state_name(rswap_from_device(d)));
}
static DEVICE_ATTR_RO(coord_state);

static ssize_t coord_reconnects_show(struct device *d,
				     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  rswap_coord_reconnects(rswap_from_device(d)));
}
static DEVICE_ATTR_RO(coord_reconnects);

static ssize_t coord_heartbeats_show(struct device *d,
				     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n",
			  rswap_coord_heartbeats(rswap_from_device(d)));
}
static DEVICE_ATTR_RO(coord_heartbeats);

static ssize_t coord_last_error_show(struct device *d,
				     struct device_attribute *attr, char *buf)
{
	return rswap_coord_show_last_error(rswap_from_device(d), buf);
}
static DEVICE_ATTR_RO(coord_last_error);

/* Debugging: fail the next N reads as a failed work completion would. */
static ssize_t fail_reads_show(struct device *d, struct device_attribute *attr,
			       char *buf)
{
	return sysfs_emit(buf, "%d\n",
			  atomic_read(&rswap_from_device(d)->fail_reads));
}

/* Parse a fail_reads write for either front-end's sysfs file.  0 or -errno. */
int rswap_fail_reads_set(struct rswap_dev *dev, const char *buf)
{
	unsigned int n;
	int ret;

	ret = kstrtouint(buf, 0, &n);
	if (ret)
		return ret;
	if (n > INT_MAX)
		return -ERANGE;
	atomic_set(&dev->fail_reads, n);
	return 0;
}

static ssize_t fail_reads_store(struct device *d,
				struct device_attribute *attr,
				const char *buf, size_t len)
{
	return rswap_fail_reads_set(rswap_from_device(d), buf) ?: len;
}
static DEVICE_ATTR_RW(fail_reads);

static struct attribute *rswap_attrs[] = {
	&rswap_stat_attrs[0].attr.attr,
	&rswap_stat_attrs[1].attr.attr,
	&rswap_stat_attrs[2].attr.attr,
	&rswap_stat_attrs[3].attr.attr,
	&rswap_stat_attrs[4].attr.attr,
	&dev_attr_inflight.attr,
	&dev_attr_errors.attr,
	&dev_attr_backend.attr,
	&dev_attr_client_id.attr,
	&dev_attr_chunk_size.attr,
	&dev_attr_nr_queues.attr,
	&dev_attr_chunk_map.attr,
	&dev_attr_moves.attr,
	&dev_attr_replicas.attr,
	&dev_attr_failover_latency.attr,
	&dev_attr_poolds.attr,
	&dev_attr_fail_reads.attr,
	&dev_attr_coord_state.attr,
	&dev_attr_coord_reconnects.attr,
	&dev_attr_coord_heartbeats.attr,
	&dev_attr_coord_last_error.attr,
	NULL,
};

static const struct attribute_group rswap_attr_group = {
	.name = "rswap",
	.attrs = rswap_attrs,
};

const struct attribute_group *rswap_disk_groups[] = {
	&rswap_attr_group,
	NULL,
};
