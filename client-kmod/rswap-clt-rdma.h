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
 *
 * One session per poold named in the chunk map, one RC queue pair per
 * hardware queue (CPU) in each session.  A session's state changes only
 * through rswap_sess_change_state(); queue pair bits stay below it.
 *
 * Lock order: sess->lock (spinlock, irq-safe: CQ softirq and QP events
 * take it) is innermost; nothing is called with it held but list and
 * state updates.  The I/O path reads sess->state and the QPs under
 * rcu_read_lock(); error recovery changes the state first, then
 * synchronize_rcu(), then drains and destroys the QPs.
 */
#ifndef RSWAP_CLT_RDMA_H
#define RSWAP_CLT_RDMA_H

#include <linux/completion.h>
#include <linux/list.h>
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
 * reconnect attempts go on and LIVE is reached again when one succeeds.
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
	u32 nr_slots;			/* slots of our map on this poold */

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

struct rswap_rdma {
	struct rswap_dev *dev;
	unsigned int nr_sess;
	struct rswap_sess *sess[];
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

/* rswap-clt-rdma-cm.c */
int rswap_sess_connect(struct rswap_sess *sess);
void rswap_sess_destroy_qps(struct rswap_sess *sess);
bool rswap_sess_qps_live(struct rswap_sess *sess);
bool rswap_sess_port_down(struct rswap_sess *sess);

/* rswap-clt-rdma-sess.c */
bool rswap_sess_change_state(struct rswap_sess *sess,
			     enum rswap_sess_state new);
bool rswap_sess_error_recovery(struct rswap_sess *sess);
bool rswap_sess_park(struct rswap_sess *sess, struct rswap_cmd *cmd);
int rswap_sess_wait_ready(struct rswap_sess *sess);
bool rswap_slot_mark_lost(struct rswap_sess *sess, struct rswap_slot *slot);
u32 rswap_sess_lose_all(struct rswap_sess *sess);
const char *rswap_sess_state_name(enum rswap_sess_state state);

static inline enum rswap_sess_state rswap_sess_state(struct rswap_sess *sess)
{
	/* Pairs with smp_store_release() in rswap_sess_change_state(). */
	return smp_load_acquire(&sess->state);
}

ssize_t rswap_rdma_show_poolds(struct rswap_dev *dev, char *buf);

/* rswap-clt-rdma-io.c */
extern const struct rswap_backend_ops rswap_rdma_ops;

#endif /* RSWAP_CLT_RDMA_H */
