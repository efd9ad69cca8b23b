/* SPDX-License-Identifier: GPL-2.0 */
/*
 * RDMA backend, private to its three files:
 *   rswap-clt-rdma-cm.c    rdma_cm, queue pair set-up and teardown, the
 *                          chunk table, one connect attempt of a session
 *   rswap-clt-rdma-sess.c  session state machine, error recovery,
 *                          reconnect, fail_io_tmo, device removal,
 *                          open/close
 *   rswap-clt-rdma-io.c    the one post function both front-ends use, its
 *                          completions, blk-mq timeout
 *   rswap-clt-rdma-move.c  live chunk moves: a chunk copied to another
 *                          poold while swap goes on, then switched to
 *
 * One session per poold the map names (a move to a new poold adds one),
 * one RC queue pair per hardware queue (CPU) in each session.  A session's state changes only
 * through rswap_sess_change_state(); queue pair bits stay below it.
 *
 * Lock order: rdma->map_lock (mutex: placements, sessions added, chunk
 * tables matched) before everything else; sess->lock and move->lock
 * (spinlocks, irq-safe: CQ softirq and QP events take them) are
 * innermost; nothing is called with them held but list and state
 * updates.  The I/O path reads sess->state and the QPs under
 * rcu_read_lock(); error recovery changes the state first, then
 * synchronize_rcu(), then drains and destroys the QPs.
 */
#ifndef RSWAP_CLT_RDMA_H
#define RSWAP_CLT_RDMA_H

#include <linux/completion.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <rdma/ib_verbs.h>
#include <rdma/rdma_cm.h>

#include "rswap-clt.h"
#include "rswap-clt-pb.h"

/* Queue pair state bits; test_and_clear_bit() keeps teardown idempotent. */
enum rswap_qp_bit {
	RSWAP_QP_ALLOCATED,	/* PD, CQ, QP and receive buffers exist */
	RSWAP_QP_CONNECTED,	/* reached ESTABLISHED once: drain before destroy */
	RSWAP_QP_LIVE,		/* connected now: I/O may be posted */
};

/*
 * Session states.  CONNECTING: first connect at load.  LIVE: I/O is
 * posted.  RECONNECTING: QPs torn down, requests wait (parked), reconnect
 * attempts run.  DEAD: down for longer than fail_io_tmo; its I/O fails,
 * reconnect attempts go on and LIVE is reached again when one succeeds;
 * or idle: the poold holds no chunk of ours any more (they moved away, or
 * were lost), so nothing reconnects until a move targets it again.
 * DELETING: module unload; final.
 */
enum rswap_sess_state {
	RSWAP_SESS_CONNECTING,
	RSWAP_SESS_LIVE,
	RSWAP_SESS_RECONNECTING,
	RSWAP_SESS_DEAD,
	RSWAP_SESS_DELETING,
	RSWAP_SESS_STATES,
};

struct rswap_qp;

/* A receive buffer for the chunk table (queue pair 0 only). */
struct rswap_recv {
	struct ib_cqe cqe;
	struct rswap_qp *qp;
	void *buf;
	u64 dma;
};

struct rswap_qp {
	struct rswap_sess *sess;
	u16 index;
	unsigned long flags;		/* enum rswap_qp_bit */
	struct rdma_cm_id *cm_id;
	struct ib_pd *pd;
	struct ib_cq *cq;
	u32 max_sge;

	/* One CM step at a time: the waiter re-arms, the handler completes. */
	struct completion cm_done;
	int cm_error;
	struct rswap_conn_acc acc;	/* valid once ESTABLISHED */
	u8 acc_len;			/* bytes of acc the poold sent */

	unsigned int nr_recvs;
	struct rswap_recv *recvs;
};

struct rswap_sess {
	struct rswap_dev *dev;
	char addr_str[RSWAP_PB_ADDR_MAX];
	struct sockaddr_storage addr;
	u64 cookie;			/* new for every connect attempt */
	u32 nr_slots;			/* chunks of ours on it, at the last connect */
	bool refresh;			/* reconnect to learn a new chunk: quiet */
	bool idle;			/* DEAD, no chunk of ours: not reconnecting */

	spinlock_t lock;		/* state, parked */
	enum rswap_sess_state state;	/* rswap_sess_change_state() only */
	wait_queue_head_t state_wq;	/* woken on every state change */
	struct list_head parked;	/* blk requests waiting for LIVE */
	unsigned long down_since;	/* jiffies when it left LIVE */

	struct work_struct err_work;		/* LIVE -> RECONNECTING */
	struct delayed_work reconnect_work;	/* attempts, with backoff */
	struct delayed_work failfast_work;	/* RECONNECTING -> DEAD */
	unsigned int attempts;		/* failed attempts since LIVE */
	bool no_chunks;			/* this attempt: rejected, NO_CHUNKS */

	u64 incarnation;		/* the poold's, from the first connect */
	bool ever_live;
	struct ib_device *ibdev;	/* of the live QPs; compared, never used */
	bool dev_removing;		/* ibdev is going away: do not wait on it */

	/* Our authentication proof, sent on queue pair 0 (version 3). */
	struct rswap_auth_proof proof;
	u64 proof_dma;
	struct ib_device *proof_ibdev;
	struct ib_cqe proof_cqe;
	struct completion proof_done;
	enum ib_wc_status proof_status;

	/* Chunk table, filled by the receive completions of queue pair 0. */
	struct completion table_done;
	int table_error;
	u32 table_total;
	u32 table_got;
	u32 desc_cap;
	struct rswap_chunk_desc *descs;

	atomic64_t reads;
	atomic64_t writes;
	atomic64_t bytes_read;
	atomic64_t bytes_written;
	atomic64_t errors;		/* failed completions and posts */
	atomic64_t recoveries;		/* entries into error recovery */
	atomic64_t reconnects;		/* RECONNECTING/DEAD -> LIVE */
	atomic64_t requeued;		/* requests that waited for LIVE */
	atomic_t lost_slots;

	unsigned int nr_qps;
	struct rswap_qp qps[];
};

#define RSWAP_LAT_BUCKETS	32

/* Writes of one window in flight are counted; a window is copied alone. */
#define RSWAP_MOVE_WRS		16u	/* RDMA ops of a window in flight */
/* Chunks a poold may list for us beyond those in our map, for a while. */
#define RSWAP_TABLE_SLACK	16u
#define RSWAP_MOVE_NO_WIN	U32_MAX
#define RSWAP_MOVE_ALL_WIN	(U32_MAX - 1)	/* hold every write: switching */

/*
 * One copy operation of a move: up to RSWAP_SGE_MAX pages, READ from a
 * copy in sync, then (posted from the READ's completion) WRITTEN to the
 * target.
 */
struct rswap_move_op {
	struct rswap_rdma_req req;
	struct rswap_move *move;
	u64 off;			/* in the chunk */
	struct scatterlist sg[RSWAP_SGE_MAX];
	struct ib_sge sge[RSWAP_SGE_MAX];
};

/*
 * A chunk being moved (rswap-clt-rdma-move.c).  The copy goes window by
 * window: while window win is copied, writes to it are held (a blk
 * request on held, a frontswap store refused); before it is, the writes
 * to it already posted end (writes[win] == 0).  So a window's copy never
 * overwrites a newer write on the target, and every write after it goes
 * to both copies.
 */
struct rswap_move {
	struct rswap_dev *dev;
	u32 slot;
	u64 epoch;			/* the map epoch once it commits */
	unsigned int from;		/* the copy it replaces (index) */
	unsigned int src;		/* the copy in sync it reads from */
	/*
	 * A stale copy brought back in place (ours, not the coordinator's):
	 * the target is that copy itself, only its dirty pages are copied,
	 * and the coordinator hears of it from the stale list alone.
	 */
	bool resync;
	u64 from_handle;
	u64 to_handle;
	char to_poold[RSWAP_PB_ADDR_MAX];
	struct rswap_sess *to;
	/* The target chunk, as the target's chunk table gave it. */
	bool to_found;
	u64 to_addr;
	u32 to_rkey;

	spinlock_t lock;		/* win, writes, held */
	u32 win;			/* being copied, or RSWAP_MOVE_*_WIN */
	u32 nwin;
	u32 writes_total;		/* writes in flight, all windows */
	unsigned int win_shift;		/* window bytes = 1 << win_shift */
	u32 *writes;			/* per window: writes in flight */
	struct list_head held;		/* blk writes to win, waiting */
	wait_queue_head_t wq;		/* writes[win] reached 0; op done */

	int error;			/* first failure (-errno), or 0 */
	char reason[96];		/* ... in words */
	atomic64_t copied;		/* bytes copied */
	u64 dirty_pages;		/* resync: pages found dirty */
	unsigned long started;		/* jiffies */
	unsigned long copy_started;	/* jiffies: the placement {old, new} */

	atomic_t ops_left;		/* of the window in flight */
	int op_error;			/* a failed op of the window */
	bool op_target;			/* ... failed on the target */
	bool ops_stop;			/* an op failed: chain no more WRITEs */
	unsigned int nr_pages;
	struct page **pages;		/* one window's worth */
	struct rswap_move_op *ops;	/* RSWAP_MOVE_WRS */
};

struct rswap_rdma {
	struct rswap_dev *dev;
	struct mutex map_lock;		/* see "Lock order" */
	wait_queue_head_t place_wq;	/* a retired placement's last request */
	u64 epoch;			/* map epoch (under map_lock) */
	struct rswap_move *move;	/* the one move under way (map_lock) */
	struct work_struct move_work;	/* runs it */
	bool ready;			/* open finished: moves may start */
	atomic_t nr_lost;		/* slots lost */
	u32 move_delay_ms;		/* debugfs: sleep after each window */
	atomic64_t moves_done;
	atomic64_t moves_failed;
	atomic64_t bytes_moved;
	/* Copies (replicas > 1), for sysfs "replicas". */
	atomic64_t failover_reads;	/* reads re-issued on another copy */
	atomic64_t stale_marks;		/* a copy turned stale */
	atomic64_t resyncs;		/* stale copies brought back in place */
	atomic64_t resync_pages;	/* ... dirty pages they took */
	atomic64_t resync_bytes;	/* ... bytes copied for them */
	/* Failover reads by latency: bucket b counts < 2^b us, to 2^31. */
	atomic64_t failover_us[RSWAP_LAT_BUCKETS];
	/* Sessions are added (a move to a new poold), never removed. */
	unsigned int nr_sess;		/* smp_store_release() after sess[] */
	struct rswap_sess *sess[RSWAP_MAX_POOLDS];
};

#define rswap_sess_err(s, fmt, ...) \
	pr_err("poold %s: " fmt, (s)->addr_str, ##__VA_ARGS__)
#define rswap_sess_warn(s, fmt, ...) \
	pr_warn("poold %s: " fmt, (s)->addr_str, ##__VA_ARGS__)
#define rswap_sess_info(s, fmt, ...) \
	pr_info("poold %s: " fmt, (s)->addr_str, ##__VA_ARGS__)
#define rswap_sess_err_rl(s, fmt, ...) \
	pr_err_ratelimited("poold %s: " fmt, (s)->addr_str, ##__VA_ARGS__)
#define rswap_sess_warn_rl(s, fmt, ...) \
	pr_warn_ratelimited("poold %s: " fmt, (s)->addr_str, ##__VA_ARGS__)

/*
 * Errors of one connect step (rswap_conn_err/warn): every one at load; on
 * a reconnect only in the attempts whose failure rswap-clt-rdma-sess.c
 * logs (the 1st, 2nd, 4th, 8th, ...), so that a poold down for hours does
 * not flood the log.
 */
static inline bool rswap_sess_loud(const struct rswap_sess *sess)
{
	return !sess->ever_live || !(sess->attempts & (sess->attempts + 1));
}

#define rswap_conn_err(s, fmt, ...) do {				\
	const struct rswap_sess *__s = (s);				\
	if (rswap_sess_loud(__s))					\
		pr_err("poold %s: " fmt, __s->addr_str, ##__VA_ARGS__);	\
} while (0)
#define rswap_conn_warn(s, fmt, ...) do {				\
	const struct rswap_sess *__s = (s);				\
	if (rswap_sess_loud(__s))					\
		pr_warn("poold %s: " fmt, __s->addr_str, ##__VA_ARGS__);	\
} while (0)

/* What losing copies means for their pages, for the message saying so. */
static inline const char *rswap_lost_effect(const struct rswap_dev *dev)
{
	return dev->core.replicas > 1 ?
	       "the other copies serve their pages until new copies are made" :
	       "their pages now fail with I/O errors";
}

/* rswap-clt-rdma-cm.c */
int rswap_sess_connect(struct rswap_sess *sess);
u32 rswap_sess_chunks(struct rswap_sess *sess);
void rswap_sess_destroy_qps(struct rswap_sess *sess);
bool rswap_sess_qps_live(struct rswap_sess *sess);
bool rswap_sess_port_down(struct rswap_sess *sess);

/* rswap-clt-rdma-sess.c */
bool rswap_sess_change_state(struct rswap_sess *sess,
			     enum rswap_sess_state new);
bool rswap_sess_error_recovery(struct rswap_sess *sess);
bool rswap_sess_park(struct rswap_sess *sess, struct rswap_cmd *cmd);
int rswap_sess_wait_ready(struct rswap_sess *sess);
bool rswap_copy_lost(struct rswap_sess *sess, struct rswap_slot *slot,
		     unsigned int r);
void rswap_copy_stale(struct rswap_dev *dev, struct rswap_slot *slot,
		      unsigned int r);
u32 rswap_sess_lose_all(struct rswap_sess *sess);
const char *rswap_sess_state_name(enum rswap_sess_state state);
struct rswap_sess *rswap_sess_get(struct rswap_dev *dev, const char *addr);
int rswap_sess_open(struct rswap_sess *sess);
int rswap_sess_refresh(struct rswap_sess *sess);
void rswap_rdma_queue_work(struct work_struct *work);

/* The placement a slot has now; under rcu_read_lock() or map_lock. */
static inline struct rswap_place *rswap_slot_place(struct rswap_dev *dev,
						   struct rswap_slot *slot)
{
	return rcu_dereference_check(slot->place,
				     lockdep_is_held(&dev->rdma->map_lock));
}

struct rswap_place *rswap_place_alloc(const struct rswap_place *from);
void rswap_place_replace(struct rswap_dev *dev, struct rswap_slot *slot,
			 struct rswap_place *place);

/* Sessions published so far; others read sess[] without map_lock. */
static inline unsigned int rswap_rdma_nr_sess(struct rswap_rdma *rdma)
{
	/* Pairs with smp_store_release() in rswap_sess_add(). */
	return smp_load_acquire(&rdma->nr_sess);
}

/* Open finished: moves may start, reports be made. */
static inline bool rswap_rdma_ready(struct rswap_rdma *rdma)
{
	/* Pairs with smp_store_release() in rswap_rdma_open(). */
	return rdma && smp_load_acquire(&rdma->ready);
}

static inline enum rswap_sess_state rswap_sess_state(struct rswap_sess *sess)
{
	/* Pairs with smp_store_release() in rswap_sess_change_state(). */
	return smp_load_acquire(&sess->state);
}

ssize_t rswap_rdma_show_poolds(struct rswap_dev *dev, char *buf);

/* rswap-clt-rdma-io.c */
extern const struct rswap_backend_ops rswap_rdma_ops;
int rswap_rdma_post_rep(struct rswap_dev *dev, struct rswap_rdma_req *req,
			const struct rswap_replica *rep, u64 chunk_off,
			unsigned int qidx);
void rswap_rdma_unmap(struct rswap_rdma_req *req);
void rswap_place_put(struct rswap_dev *dev, struct rswap_place *place);

/* rswap-clt-rdma-move.c */
void rswap_move_write_end(struct rswap_move *mv, struct rswap_cmd *cmd);
bool rswap_move_hold(struct rswap_move *mv, struct rswap_cmd *cmd, u64 off,
		     u32 len);
void rswap_move_fail(struct rswap_move *mv, int err, const char *why);
void rswap_move_target_found(struct rswap_move *mv, u64 addr, u32 rkey);
void rswap_move_init(struct rswap_rdma *rdma);
void rswap_move_cancel(struct rswap_dev *dev);

#endif /* RSWAP_CLT_RDMA_H */
