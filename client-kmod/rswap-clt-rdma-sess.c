// SPDX-License-Identifier: GPL-2.0
/*
 * RDMA backend, session side: the state machine, the one error-recovery
 * entry, reconnect with backoff, fail_io_tmo, RDMA device removal, and
 * the backend's open and close.
 *
 * A fault of any kind (failed work completion, QP event, CM DISCONNECTED
 * or DEVICE_REMOVAL, a blk-mq timeout, a failed post, the device going
 * away) calls rswap_sess_error_recovery().  Only the first one of a
 * session's LIVE period does anything: LIVE -> RECONNECTING, then in the
 * session's err_work: synchronize_rcu() (no poster still sees the QPs),
 * drain and destroy the QPs (what was in flight comes back flushed and
 * waits, parked), start the fail_io_tmo clock and the reconnect attempts.
 * A reconnect that succeeds makes the session LIVE and dispatches what
 * waited; after fail_io_tmo the session is DEAD: what waits and what
 * comes fails with an I/O error, and attempts go on so that it can come
 * back.  Requests are never completed with data they did not get.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/random.h>
#include <linux/seq_file.h>
#include <linux/sched/mm.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include "rswap-clt-rdma.h"
#include "rswap-compat.h"

/* Reconnect delays: 250 ms doubling up to 4 s, plus up to half again. */
#define RSWAP_RECONNECT_MIN_MS	250u
#define RSWAP_RECONNECT_MAX_MS	4000u

/* Reconnect attempts and recovery: it must make progress under reclaim. */
static struct workqueue_struct *rswap_rdma_wq;

static const char *const rswap_sess_state_names[RSWAP_SESS_STATES] = {
	[RSWAP_SESS_CONNECTING] = "connecting",
	[RSWAP_SESS_LIVE] = "live",
	[RSWAP_SESS_RECONNECTING] = "reconnecting",
	[RSWAP_SESS_DEAD] = "dead",
	[RSWAP_SESS_DELETING] = "deleting",
};

/* Allowed transitions: the states each state may change to. */
static const u8 rswap_sess_next[RSWAP_SESS_STATES] = {
	[RSWAP_SESS_CONNECTING] = BIT(RSWAP_SESS_LIVE) |
				  BIT(RSWAP_SESS_DELETING),
	[RSWAP_SESS_LIVE] = BIT(RSWAP_SESS_RECONNECTING) |
			    BIT(RSWAP_SESS_DELETING),
	[RSWAP_SESS_RECONNECTING] = BIT(RSWAP_SESS_LIVE) |
				    BIT(RSWAP_SESS_DEAD) |
				    BIT(RSWAP_SESS_DELETING),
	[RSWAP_SESS_DEAD] = BIT(RSWAP_SESS_LIVE) | BIT(RSWAP_SESS_DELETING),
	[RSWAP_SESS_DELETING] = 0,
};

const char *rswap_sess_state_name(enum rswap_sess_state state)
{
	return state < RSWAP_SESS_STATES ? rswap_sess_state_names[state] : "?";
}

/* Workqueue of recovery, reconnects and moves. */
void rswap_rdma_queue_work(struct work_struct *work)
{
	queue_work(rswap_rdma_wq, work);
}

/*
 * Any context.  The only place a session's state changes: false (and
 * nothing changed) unless the table allows old -> new.
 */
bool rswap_sess_change_state(struct rswap_sess *sess,
			     enum rswap_sess_state new)
{
	unsigned long flags;
	bool changed = false;

	spin_lock_irqsave(&sess->lock, flags);
	if (rswap_sess_next[sess->state] & BIT(new)) {
		/* Slots written before a LIVE are seen by whoever sees it. */
		smp_store_release(&sess->state, new);
		changed = true;
	}
	spin_unlock_irqrestore(&sess->lock, flags);
	if (changed)
		wake_up_all(&sess->state_wq);
	return changed;
}

/*
 * Any context, never sleeps: the one entry for every fault.  True if it
 * started recovery, false if the session was not LIVE (recovering
 * already, dead, or going away).
 */
bool rswap_sess_error_recovery(struct rswap_sess *sess)
{
	if (!rswap_sess_change_state(sess, RSWAP_SESS_RECONNECTING))
		return false;
	sess->down_since = jiffies;
	atomic64_inc(&sess->recoveries);
	queue_work(rswap_rdma_wq, &sess->err_work);
	return true;
}

/*
 * Any context.  Keep a block request until its session is LIVE again (or
 * fails for good).  False if the session is not reconnecting any more:
 * the caller looks at the state again.
 */
bool rswap_sess_park(struct rswap_sess *sess, struct rswap_cmd *cmd)
{
	unsigned long flags;
	bool parked = false;

	spin_lock_irqsave(&sess->lock, flags);
	if (sess->state == RSWAP_SESS_CONNECTING ||
	    sess->state == RSWAP_SESS_RECONNECTING) {
		list_add_tail(&cmd->park, &sess->parked);
		WRITE_ONCE(cmd->parked, true);
		parked = true;
	}
	spin_unlock_irqrestore(&sess->lock, flags);
	if (parked)
		atomic64_inc(&sess->requeued);
	return parked;
}

/*
 * Process context.  Hand back every parked request: to be dispatched
 * again (BLK_STS_OK, the session is LIVE) or failed.
 */
static void rswap_sess_unpark(struct rswap_sess *sess, blk_status_t status)
{
	struct rswap_dev *dev = sess->dev;
	struct rswap_cmd *cmd, *next;
	unsigned long flags;
	LIST_HEAD(list);

	spin_lock_irqsave(&sess->lock, flags);
	list_splice_init(&sess->parked, &list);
	list_for_each_entry(cmd, &list, park)
		WRITE_ONCE(cmd->parked, false);
	spin_unlock_irqrestore(&sess->lock, flags);

	list_for_each_entry_safe(cmd, next, &list, park) {
		struct request *rq = blk_mq_rq_from_pdu(cmd);

		list_del_init(&cmd->park);
		if (status == BLK_STS_OK) {
			rswap_blk_requeue(dev, rq);
			continue;
		}
		atomic64_inc(&sess->errors);
		rswap_count_err(dev, RSWAP_ERR_DOWN);
		rswap_blk_end(dev, rq, status);
	}
}

static bool rswap_sess_settled(struct rswap_sess *sess)
{
	return rswap_sess_state(sess) != RSWAP_SESS_CONNECTING &&
	       rswap_sess_state(sess) != RSWAP_SESS_RECONNECTING;
}

/*
 * Sleeps, at most about fail_io_tmo: 0 once the session is LIVE,
 * -ENOTCONN if it is DEAD or going away.
 */
int rswap_sess_wait_ready(struct rswap_sess *sess)
{
	unsigned long tmo = (sess->dev->cfg.fail_io_tmo + 1ul) * HZ;

	might_sleep();
	/* Idle: a long fail_io_tmo must not look like a hung task. */
	wait_event_idle_timeout(sess->state_wq, rswap_sess_settled(sess), tmo);
	return rswap_sess_state(sess) == RSWAP_SESS_LIVE ? 0 : -ENOTCONN;
}

/*
 * Process context, under map_lock (the session's connect or reconnect,
 * or the map at load).  Copy r of the slot, on sess, lost its memory: it
 * is stale for good (until the coordinator replaces it).  Once no copy
 * is in sync, every read and write of the slot fails; the coordinator
 * learns both from the next heartbeat (stale_handles, lost_slots).  True
 * if the copy was not gone before.
 */
bool rswap_copy_lost(struct rswap_sess *sess, struct rswap_slot *slot,
		     unsigned int r)
{
	struct rswap_dev *dev = sess->dev;
	struct rswap_place *place = rswap_slot_place(dev, slot);

	if (test_and_set_bit(r, &slot->gone))
		return false;
	rswap_copy_stale(dev, slot, r);
	atomic_inc(&sess->lost_slots);
	if (!READ_ONCE(slot->lost) &&
	    (READ_ONCE(slot->stale) & rswap_copies_mask(place->nr)) ==
	    rswap_copies_mask(place->nr)) {
		WRITE_ONCE(slot->lost, true);
		atomic_inc(&dev->rdma->nr_lost);
	}
	return true;
}

/*
 * Process context.  Mark every copy of ours on this poold lost, and fail
 * a move to it whose target copy was there before (it is gone); how
 * many were new.
 */
u32 rswap_sess_lose_all(struct rswap_sess *sess)
{
	struct rswap_dev *dev = sess->dev;
	struct rswap_core *core = &dev->core;
	u32 i, n = 0;

	mutex_lock(&dev->rdma->map_lock);
	for (i = 0; i < core->nslots; i++) {
		struct rswap_place *place = rswap_slot_place(dev,
							     &core->slots[i]);
		unsigned int r;

		for (r = 0; r < place->nr; r++)
			if (place->rep[r].sess == sess)
				n += rswap_copy_lost(sess, &core->slots[i], r);
	}
	/* A target chunk allocated by the new incarnation is fine. */
	if (dev->rdma->move && dev->rdma->move->to == sess &&
	    dev->rdma->move->to_found)
		rswap_move_fail(dev->rdma->move, -EIO,
				"the target poold restarted");
	mutex_unlock(&dev->rdma->map_lock);
	return n;
}

static unsigned long rswap_sess_backoff(struct rswap_sess *sess)
{
	unsigned int ms = RSWAP_RECONNECT_MIN_MS << min(sess->attempts, 4u);

	ms = min(ms, RSWAP_RECONNECT_MAX_MS);
	/* Jitter: sessions that failed together do not retry in step. */
	ms += get_random_u32() % (ms / 2 + 1);
	return msecs_to_jiffies(ms);
}

/*
 * Workqueue.  Tearing a connection down sends the poold a disconnect
 * request; sent through a port that is down it is lost (the poold keeps a
 * stale session), and on rxe a connection-management message sent while
 * the port is down leaves the device unable to reach any listener that
 * had connections through it (seen on 6.1), so that nothing could
 * reconnect.  So wait for the port first, unless the module or the
 * device is going away.  Requests keep waiting meanwhile, bounded by
 * fail_io_tmo as always (after it the session is DEAD and its I/O fails
 * at once while this goes on waiting: an attempt would fail anyway).
 */
static void rswap_sess_wait_port(struct rswap_sess *sess)
{
	while (rswap_sess_state(sess) != RSWAP_SESS_DELETING &&
	       !READ_ONCE(sess->dev_removing) && rswap_sess_port_down(sess))
		msleep(100);
}

/*
 * Workqueue: nothing of ours is on this poold any more: disconnect and
 * stay so (DEAD, idle) -- a drained poold may be stopped for good without
 * this client retrying it forever.  A move to it connects it again.
 */
static void rswap_sess_idle(struct rswap_sess *sess)
{
	unsigned int noio = memalloc_noio_save();

	synchronize_rcu();
	rswap_sess_wait_port(sess);
	rswap_sess_destroy_qps(sess);
	sess->idle = true;
	if (rswap_sess_change_state(sess, RSWAP_SESS_DEAD))
		rswap_sess_info(sess, "holds no chunk of ours any more: disconnected\n");
	/* What waited routes again: to a lost slot's error, or elsewhere. */
	rswap_sess_unpark(sess, BLK_STS_OK);
	memalloc_noio_restore(noio);
}

/* Workqueue: tear the failed session down and start reconnecting. */
static void rswap_sess_err_work(struct work_struct *work)
{
	struct rswap_sess *sess = container_of(work, struct rswap_sess,
					       err_work);
	unsigned int tmo = sess->dev->cfg.fail_io_tmo;
	unsigned int noio;

	if (rswap_sess_state(sess) != RSWAP_SESS_RECONNECTING)
		return;		/* DELETING: close tears down */
	if (!rswap_sess_chunks(sess)) {
		rswap_sess_idle(sess);
		return;
	}
	if (sess->refresh)
		rswap_sess_info(sess, "reconnecting to learn its new chunk\n");
	else
		rswap_sess_warn(sess, "connection lost; its I/O waits up to %u s (fail_io_tmo) while it reconnects\n",
				tmo);
	queue_delayed_work(rswap_rdma_wq, &sess->failfast_work,
			   (unsigned long)tmo * HZ);
	/* Swap may be waiting on us: no allocation may recurse into it. */
	noio = memalloc_noio_save();
	/* After this no poster sees the old QPs: they may go. */
	synchronize_rcu();
	rswap_sess_wait_port(sess);
	/* In-flight requests complete flushed here, and park. */
	rswap_sess_destroy_qps(sess);
	sess->attempts = 0;
	queue_delayed_work(rswap_rdma_wq, &sess->reconnect_work,
			   rswap_sess_backoff(sess));
	memalloc_noio_restore(noio);
}

/* Workqueue: fail_io_tmo passed without a reconnect. */
static void rswap_sess_failfast_work(struct work_struct *work)
{
	struct rswap_sess *sess = container_of(to_delayed_work(work),
					       struct rswap_sess,
					       failfast_work);

	if (!rswap_sess_change_state(sess, RSWAP_SESS_DEAD))
		return;
	rswap_sess_err(sess, "unreachable for %u s (fail_io_tmo): its I/O fails until it reconnects; still trying\n",
		       sess->dev->cfg.fail_io_tmo);
	rswap_sess_unpark(sess, BLK_STS_IOERR);
}

/* Log the first failed attempts, then only every power of two. */
static void rswap_sess_attempt_failed(struct rswap_sess *sess, int ret,
				      unsigned long delay)
{
	if (sess->attempts & (sess->attempts - 1))
		return;
	rswap_sess_warn(sess, "reconnect attempt %u failed: %pe; next in %u ms\n",
			sess->attempts, ERR_PTR(ret), jiffies_to_msecs(delay));
}

/* Workqueue: one reconnect attempt; the next one is scheduled on failure. */
static void rswap_sess_reconnect_work(struct work_struct *work)
{
	struct rswap_sess *sess = container_of(to_delayed_work(work),
					       struct rswap_sess,
					       reconnect_work);
	enum rswap_sess_state state = rswap_sess_state(sess);
	unsigned long delay;
	unsigned int noio;
	u32 lost;
	int ret;

	if (state != RSWAP_SESS_RECONNECTING && state != RSWAP_SESS_DEAD)
		return;
	/* Its last chunk of ours moved away (or a move to it aborted). */
	if (!rswap_sess_chunks(sess)) {
		cancel_delayed_work(&sess->failfast_work);
		sess->idle = true;
		if (rswap_sess_change_state(sess, RSWAP_SESS_DEAD))
			rswap_sess_info(sess, "holds no chunk of ours any more: not reconnecting\n");
		rswap_sess_unpark(sess, BLK_STS_OK);
		return;
	}
	noio = memalloc_noio_save();
	sess->no_chunks = false;
	ret = rswap_sess_connect(sess);
	/*
	 * Before LIVE: once LIVE, a new failure's err_work arms its own
	 * fail_io_tmo, which must not be cancelled here.
	 */
	if (!ret)
		cancel_delayed_work(&sess->failfast_work);
	if (!ret && !rswap_sess_change_state(sess, RSWAP_SESS_LIVE))
		ret = -ESHUTDOWN;	/* DELETING meanwhile */
	if (ret) {
		rswap_sess_destroy_qps(sess);
		if (ret == -ESHUTDOWN)
			goto out;
		if (sess->no_chunks) {
			lost = rswap_sess_lose_all(sess);
			if (lost)
				rswap_sess_err(sess, "no longer holds chunks for this client: its %u chunks of ours are lost; %s\n",
					       lost, rswap_lost_effect(sess->dev));
		}
		sess->attempts++;
		delay = rswap_sess_backoff(sess);
		rswap_sess_attempt_failed(sess, ret, delay);
		queue_delayed_work(rswap_rdma_wq, &sess->reconnect_work, delay);
		goto out;
	}
	WRITE_ONCE(sess->dev_removing, false);
	atomic64_inc(&sess->reconnects);
	rswap_sess_info(sess, "reconnected after %u ms (%u failed attempts)\n",
			jiffies_to_msecs(jiffies - sess->down_since),
			sess->attempts);
	sess->refresh = false;
	sess->attempts = 0;
	rswap_sess_unpark(sess, BLK_STS_OK);
	/* Copies of ours it missed writes for are brought in sync. */
	rswap_resync_kick(sess->dev);
	/* A queue pair that died while we connected was not recovered. */
	if (!rswap_sess_qps_live(sess))
		rswap_sess_error_recovery(sess);
out:
	memalloc_noio_restore(noio);
}

/* ---- RDMA device removal ------------------------------------------------ */

/* Sessions of the one device this module drives, for the ib_client. */
static struct rswap_rdma *rswap_rdma_cur;

/*
 * Sleeps.  ib_core is removing ibdev (rmmod rdma_rxe, rdma link del, a
 * NIC gone): tear down every session on it before returning, so that the
 * removal never waits on us.  They then try to reconnect, failing until a
 * device is back; their I/O fails after fail_io_tmo.  A reconnect attempt
 * racing with this gets rdma_cm's DEVICE_REMOVAL on its ids instead.
 */
static void rswap_rdma_remove_one(struct ib_device *ibdev, void *client_data)
{
	struct rswap_rdma *rdma = rswap_rdma_cur;
	unsigned int i;

	if (!rdma)
		return;
	for (i = 0; i < rswap_rdma_nr_sess(rdma); i++) {
		struct rswap_sess *sess = rdma->sess[i];

		if (READ_ONCE(sess->ibdev) != ibdev)
			continue;
		WRITE_ONCE(sess->dev_removing, true);
		if (rswap_sess_error_recovery(sess))
			rswap_sess_warn(sess, "RDMA device %s is going away; reconnecting\n",
					dev_name(&ibdev->dev));
		flush_work(&sess->err_work);
	}
}

static struct ib_client rswap_ib_client = {
	.name = "rswap_client",
	.remove = rswap_rdma_remove_one,
};

/* ---- sessions ------------------------------------------------------------ */

static struct rswap_sess *rswap_sess_alloc(struct rswap_dev *dev,
					   const char *addr)
{
	struct rswap_sess *sess;
	unsigned int i;

	sess = kzalloc(struct_size(sess, qps, dev->nr_queues), GFP_KERNEL);
	if (!sess)
		return ERR_PTR(-ENOMEM);
	sess->dev = dev;
	strscpy(sess->addr_str, addr, sizeof(sess->addr_str));
	if (rswap_parse_addr(addr, &sess->addr)) {
		pr_err("coordinator %s names poold \"%s\", which is not IPV4:PORT or [IPV6]:PORT\n",
		       dev->cfg.coord_str, addr);
		kfree(sess);
		return ERR_PTR(-EPROTO);
	}
	spin_lock_init(&sess->lock);
	sess->state = RSWAP_SESS_CONNECTING;
	init_waitqueue_head(&sess->state_wq);
	init_completion(&sess->proof_done);
	INIT_LIST_HEAD(&sess->parked);
	INIT_WORK(&sess->err_work, rswap_sess_err_work);
	INIT_DELAYED_WORK(&sess->reconnect_work, rswap_sess_reconnect_work);
	INIT_DELAYED_WORK(&sess->failfast_work, rswap_sess_failfast_work);
	sess->nr_qps = dev->nr_queues;
	for (i = 0; i < sess->nr_qps; i++) {
		sess->qps[i].sess = sess;
		sess->qps[i].index = i;
	}
	return sess;
}

/* Sleeps.  The session is DELETING: nothing restarts its work. */
static void rswap_sess_free(struct rswap_sess *sess)
{
	cancel_work_sync(&sess->err_work);
	cancel_delayed_work_sync(&sess->reconnect_work);
	cancel_delayed_work_sync(&sess->failfast_work);
	rswap_sess_destroy_qps(sess);
	rswap_sess_unpark(sess, BLK_STS_IOERR);
	kvfree(sess->descs);
	kfree(sess);
}

/* Under map_lock, or before anything else runs (load). */
static struct rswap_sess *rswap_sess_lookup(struct rswap_rdma *rdma,
					    const char *addr)
{
	unsigned int i;

	for (i = 0; i < rdma->nr_sess; i++)
		if (!strcmp(rdma->sess[i]->addr_str, addr))
			return rdma->sess[i];
	return NULL;
}

/* Under map_lock, or at load.  Published to lockless readers last. */
static struct rswap_sess *rswap_sess_add(struct rswap_dev *dev,
					 const char *addr)
{
	struct rswap_rdma *rdma = dev->rdma;
	struct rswap_sess *sess;

	if (rdma->nr_sess >= RSWAP_MAX_POOLDS) {
		pr_err("coordinator %s names more than %u poolds in one map (%s is one too many); refusing it (a broken or hostile coordinator?)\n",
		       dev->cfg.coord_str, RSWAP_MAX_POOLDS, addr);
		return ERR_PTR(-EPROTO);
	}
	sess = rswap_sess_alloc(dev, addr);
	if (IS_ERR(sess))
		return sess;
	rdma->sess[rdma->nr_sess] = sess;
	/* sess[] before the count: see rswap_rdma_nr_sess(). */
	smp_store_release(&rdma->nr_sess, rdma->nr_sess + 1);
	return sess;
}

/*
 * Sleeps.  First connect of a session, or of an idle one: CONNECTING or
 * DEAD -> LIVE, or -errno with nothing left connected (the state stays;
 * a later call tries again).  At load the device's segment limit follows
 * the queue pairs (RSWAP_CHAIN_MAX operations of their SGEs); later a
 * session must take at least as many.
 */
int rswap_sess_open(struct rswap_sess *sess)
{
	struct rswap_dev *dev = sess->dev;
	unsigned int j;
	int ret;

	ret = rswap_sess_connect(sess);
	if (ret) {
		rswap_sess_destroy_qps(sess);
		return ret;
	}
	for (j = 0; j < sess->nr_qps && !dev->rdma->ready; j++)
		dev->max_segments = min_t(u32, dev->max_segments,
					  sess->qps[j].max_sge *
					  RSWAP_CHAIN_MAX);
	sess->ever_live = true;
	if (!rswap_sess_change_state(sess, RSWAP_SESS_LIVE)) {
		rswap_sess_destroy_qps(sess);
		return -ESHUTDOWN;
	}
	sess->idle = false;
	rswap_sess_info(sess, "%u chunks, %u queue pairs, incarnation %#llx\n",
			sess->nr_slots, sess->nr_qps, sess->incarnation);
	return 0;
}

/*
 * Sleeps.  The session to the poold at addr ("ADDR:PORT"), added if there
 * is none: a move's target may be a poold this client had no chunk on.
 * The move work connects it (rswap_sess_open()), and only it.
 */
struct rswap_sess *rswap_sess_get(struct rswap_dev *dev, const char *addr)
{
	struct rswap_rdma *rdma = dev->rdma;
	struct rswap_sess *sess;

	mutex_lock(&rdma->map_lock);
	sess = rswap_sess_lookup(rdma, addr);
	if (!sess)
		sess = rswap_sess_add(dev, addr);
	mutex_unlock(&rdma->map_lock);
	return sess;
}

/*
 * Sleeps, up to about fail_io_tmo.  Reconnect a session so that the
 * poold registers and lists a chunk it allocated for us since (a move's
 * target); its requests wait meanwhile, as on any reconnect.  0 once it
 * is LIVE again, or -ENOTCONN.
 */
int rswap_sess_refresh(struct rswap_sess *sess)
{
	sess->refresh = true;
	rswap_sess_error_recovery(sess);
	return rswap_sess_wait_ready(sess);
}

ssize_t rswap_rdma_show_poolds(struct rswap_dev *dev, char *buf)
{
	struct rswap_rdma *rdma = dev->rdma;
	unsigned int i, j, live;
	int len = 0;

	for (i = 0; i < rswap_rdma_nr_sess(rdma); i++) {
		struct rswap_sess *s = rdma->sess[i];

		for (live = 0, j = 0; j < s->nr_qps; j++)
			live += test_bit(RSWAP_QP_LIVE, &s->qps[j].flags);
		len += sysfs_emit_at(buf, len,
				     "%s chunks=%u qps=%u/%u reads=%lld writes=%lld bytes_read=%lld bytes_written=%lld errors=%lld state=%s reconnects=%lld recoveries=%lld requeued=%lld lost_chunks=%d\n",
				     s->addr_str, s->nr_slots, live, s->nr_qps,
				     (long long)atomic64_read(&s->reads),
				     (long long)atomic64_read(&s->writes),
				     (long long)atomic64_read(&s->bytes_read),
				     (long long)atomic64_read(&s->bytes_written),
				     (long long)atomic64_read(&s->errors),
				     s->idle ? "idle" :
				     rswap_sess_state_name(rswap_sess_state(s)),
				     (long long)atomic64_read(&s->reconnects),
				     (long long)atomic64_read(&s->recoveries),
				     (long long)atomic64_read(&s->requeued),
				     atomic_read(&s->lost_slots));
	}
	return len;
}

/* ---- fault injection (debugfs) --------------------------------------------- */

/*
 * /sys/kernel/debug/rswap_client/inject_fault: write a poold's ADDR:PORT
 * (as in the poolds file) and its session fails as on a transport error:
 * error recovery drains what is in flight and reconnects.  Tests use it
 * with a stopped poold to make the client reconnect to one that does not
 * answer.
 */
static struct dentry *rswap_rdma_debugfs;

static ssize_t rswap_inject_fault_write(struct file *file,
					const char __user *ubuf, size_t len,
					loff_t *ppos)
{
	struct rswap_rdma *rdma = file->private_data;
	char buf[RSWAP_PB_ADDR_MAX], *addr;
	unsigned int i;

	if (!len || len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	addr = strim(buf);
	for (i = 0; i < rswap_rdma_nr_sess(rdma); i++) {
		struct rswap_sess *sess = rdma->sess[i];

		if (strcmp(sess->addr_str, addr))
			continue;
		if (!rswap_sess_error_recovery(sess))
			return -EAGAIN;		/* not LIVE now */
		rswap_sess_warn(sess, "fault injected through debugfs\n");
		return len;
	}
	return -ENOENT;
}

static const struct file_operations rswap_inject_fault_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = rswap_inject_fault_write,
	.llseek = noop_llseek,
};

/*
 * /sys/kernel/debug/rswap_client/chunk_keys (root only): one line per
 * slot, "SLOT POOLD HANDLE ADDR RKEY" (hex), the remote address and rkey
 * of the chunk in use.  Tests hand them to a rogue client to show that
 * another session cannot use them.
 */
static int rswap_chunk_keys_show(struct seq_file *m, void *unused)
{
	struct rswap_rdma *rdma = m->private;
	struct rswap_dev *dev = rdma->dev;
	u32 i;

	mutex_lock(&rdma->map_lock);
	for (i = 0; i < dev->core.nslots; i++) {
		const struct rswap_replica *rep =
			&rswap_slot_place(dev, &dev->core.slots[i])->rep[0];

		seq_printf(m, "%u %s %llu %#llx %#x\n", i,
			   rswap_sess_name(rep->sess), rep->handle, rep->addr,
			   rep->rkey);
	}
	mutex_unlock(&rdma->map_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(rswap_chunk_keys);

/* Debugging aids only: a failure here is not worth failing the load. */
static void rswap_rdma_debugfs_add(struct rswap_rdma *rdma)
{
	rswap_rdma_debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("inject_fault", 0200, rswap_rdma_debugfs, rdma,
			    &rswap_inject_fault_fops);
	debugfs_create_file("chunk_keys", 0400, rswap_rdma_debugfs, rdma,
			    &rswap_chunk_keys_fops);
	/* Slows a move's copy down, so that tests can fault it midway. */
	debugfs_create_u32("move_window_delay_ms", 0600, rswap_rdma_debugfs,
			   &rdma->move_delay_ms);
}

/* ---- open / close ---------------------------------------------------------- */

void rswap_rdma_close(struct rswap_dev *dev)
{
	struct rswap_rdma *rdma = dev->rdma;
	unsigned int i;

	if (!rdma)
		return;
	debugfs_remove_recursive(rswap_rdma_debugfs);
	rswap_rdma_debugfs = NULL;
	for (i = 0; i < rdma->nr_sess; i++)
		rswap_sess_change_state(rdma->sess[i], RSWAP_SESS_DELETING);
	/* A move under way fails on the sessions going away, and ends. */
	rswap_move_cancel(dev);
	if (rswap_rdma_cur) {
		ib_unregister_client(&rswap_ib_client);
		rswap_rdma_cur = NULL;
	}
	for (i = 0; i < rdma->nr_sess; i++)
		rswap_sess_free(rdma->sess[i]);
	if (rswap_rdma_wq) {
		destroy_workqueue(rswap_rdma_wq);
		rswap_rdma_wq = NULL;
	}
	for (i = 0; dev->core.slots && i < dev->core.nslots; i++)
		kfree(rcu_dereference_protected(dev->core.slots[i].place, 1));
	kfree(rdma);
	dev->rdma = NULL;
	rswap_core_free(&dev->core);
}

/* Sleeps.  The first placement of slot i: its copies, as the map says. */
static int rswap_rdma_place_slot(struct rswap_dev *dev, u32 i,
				 const struct rswap_pb_slot *ms, u64 epoch)
{
	struct rswap_slot *slot = &dev->core.slots[i];
	struct rswap_place *place;
	struct rswap_sess *sess;
	unsigned int r;

	place = kzalloc(sizeof(*place), GFP_KERNEL);
	if (!place)
		return -ENOMEM;
	place->epoch = epoch;
	RCU_INIT_POINTER(slot->place, place);
	/* nr counts the copies filled in: a failure leaves no empty one. */
	for (r = 0; r < ms->ncopies; r++) {
		sess = rswap_sess_lookup(dev->rdma, ms->copies[r].poold_addr);
		if (!sess)
			sess = rswap_sess_add(dev, ms->copies[r].poold_addr);
		if (IS_ERR(sess))
			return PTR_ERR(sess);
		place->rep[r].sess = sess;
		place->rep[r].handle = ms->copies[r].handle;
		place->nr = r + 1;
	}
	/* The coordinator knows these are gone; no table will list them. */
	mutex_lock(&dev->rdma->map_lock);
	for (r = 0; r < ms->ncopies; r++)
		if (ms->copies[r].lost || ms->lost)
			rswap_copy_lost(place->rep[r].sess, slot, r);
	mutex_unlock(&dev->rdma->map_lock);
	return 0;
}

/* Sleeps.  The map has passed rswap_pb_check_map(). */
int rswap_rdma_open(struct rswap_dev *dev, const struct rswap_pb_map *map)
{
	struct rswap_rdma *rdma;
	unsigned long deadline;
	unsigned int i;
	int ret;

	if (map->chunk_size < SZ_256K ||
	    (map->chunk_size >> RSWAP_SECTOR_SHIFT) > UINT_MAX) {
		pr_err("coordinator %s uses chunks of %llu bytes; this client needs 256K..2T\n",
		       dev->cfg.coord_str, map->chunk_size);
		return -EPROTO;
	}
	ret = rswap_core_init(&dev->core, map->size, map->chunk_size);
	if (ret)
		return ret;
	rdma = kzalloc(sizeof(*rdma), GFP_KERNEL);
	if (!rdma) {
		ret = -ENOMEM;
		goto out_free_core;
	}
	rdma->dev = dev;
	mutex_init(&rdma->map_lock);
	init_waitqueue_head(&rdma->place_wq);
	rswap_move_init(rdma);
	rdma->epoch = map->epoch;
	dev->rdma = rdma;
	rswap_rdma_wq = alloc_workqueue("rswap_rdma", WQ_MEM_RECLAIM |
					WQ_UNBOUND, 0);
	if (!rswap_rdma_wq) {
		ret = -ENOMEM;
		goto out_close;
	}

	dev->core.replicas = dev->cfg.replicas;
	if (dev->core.replicas > 1) {
		ret = rswap_core_track_dirty(&dev->core);
		if (ret)
			goto out_close;
	}
	for (i = 0; i < map->nslots; i++) {
		ret = rswap_rdma_place_slot(dev, i, &map->slots[i], map->epoch);
		if (ret)
			goto out_close;
	}

	dev->max_segments = dev->cfg.max_io_kb / (PAGE_SIZE / 1024);
	/* However many poolds the map names, insmod ends in bounded time. */
	deadline = jiffies + msecs_to_jiffies(max(RSWAP_OPEN_BUDGET_MS,
						  2 * dev->cfg.timeout_ms));
	for (i = 0; i < rdma->nr_sess; i++) {
		if (time_after(jiffies, deadline)) {
			pr_err("connecting to the %u poolds of the map took too long (%u connected); giving up\n",
			       rdma->nr_sess, i);
			ret = -ETIMEDOUT;
			goto out_close;
		}
		/* Only lost chunks there: nothing to connect for. */
		if (!rswap_sess_chunks(rdma->sess[i]))
			continue;
		/* Every failure below has logged its one line already. */
		ret = rswap_sess_open(rdma->sess[i]);
		if (ret)
			goto out_close;
	}
	rswap_rdma_cur = rdma;
	ret = ib_register_client(&rswap_ib_client);
	if (ret) {
		rswap_rdma_cur = NULL;
		pr_err("cannot watch RDMA devices for removal: %pe\n",
		       ERR_PTR(ret));
		goto out_close;
	}
	rswap_rdma_debugfs_add(rdma);
	dev->ops = &rswap_rdma_ops;
	/* The coordinator thread may start moves from now on. */
	smp_store_release(&rdma->ready, true);
	return 0;

out_close:
	rswap_rdma_close(dev);
	return ret;
out_free_core:
	rswap_core_free(&dev->core);
	return ret;
}
