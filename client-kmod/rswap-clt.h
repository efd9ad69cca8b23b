/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rswap-client: objects shared by the front-end, the backends and the
 * control path.
 *
 * Lifetime: everything is built in module init (params -> coordinator map
 * -> poold sessions -> block device or frontswap, in that order) and torn
 * down in the reverse order in module exit; a frontswap registration is
 * never torn down (the module pins itself).  The number of slots is fixed
 * at load; each slot's placement changes when its chunk moves, and a
 * session is added when a move targets a new poold (rswap-clt-core.h,
 * rswap-clt-rdma.h have the rules).  A session's queue pairs come and go
 * as it fails and reconnects, and a slot can become lost (its poold
 * restarted) but never comes back.
 */
#ifndef RSWAP_CLT_H
#define RSWAP_CLT_H

#include <linux/blk-mq.h>
#include <linux/xarray.h>
#include <linux/scatterlist.h>
#include <linux/socket.h>
#include <rdma/ib_verbs.h>

#include "rswap-clt-core.h"
#include "rswap_wire.h"

#define RSWAP_SECTOR_SHIFT	9
#define RSWAP_BLOCK_SIZE	4096u
/*
 * One SGE per segment.  A request goes out as one chain of RDMA
 * operations of up to RSWAP_SGE_MAX SGEs each (soft-RoCE takes 32),
 * RSWAP_CHAIN_MAX of them, only the last one signalled; max_io_kb bounds
 * a request below that, and the block layer splits for us.
 */
#define RSWAP_SGE_MAX		32u
#define RSWAP_CHAIN_MAX		16u
#define RSWAP_MIN_IO_KB		128u
#define RSWAP_MAX_IO_KB		2048u
#define RSWAP_DRAM_CHUNK_SIZE	(16ull << 20)
/*
 * A coordinator's map may name at most this many poolds, and insmod spends
 * at most max(this budget, 2 * timeout_ms) connecting to them: a hostile
 * or broken map cannot keep insmod busy for hours.
 */
#define RSWAP_MAX_POOLDS	256u
#define RSWAP_OPEN_BUDGET_MS	60000u
/*
 * blk-mq timeout of one request in flight.  An RC queue pair reports a
 * silent peer by itself (retry exhaustion, a few seconds); this catches
 * what it does not, generously enough for a slow emulated machine.
 */
#define RSWAP_RQ_TIMEOUT_SECS	30

enum rswap_backend_kind {
	RSWAP_BACKEND_DRAM,
	RSWAP_BACKEND_RDMA,
};

enum rswap_frontend {
	RSWAP_FRONTEND_BLK,		/* /dev/rswap0 */
	RSWAP_FRONTEND_FRONTSWAP,	/* frontswap backend (5.10 .. 5.16) */
};

/* Validated module parameters. */
struct rswap_config {
	enum rswap_backend_kind backend;
	enum rswap_frontend frontend;
	bool writethrough;			/* frontswap: also to the device */
	u64 size;
	char client_id[RSWAP_CLIENT_ID_LEN];	/* NUL-terminated, <= 31 */
	char coord_str[64];			/* as given, for messages */
	struct sockaddr_storage coord;
	unsigned int queue_depth;
	unsigned int timeout_ms;		/* each connect/handshake step */
	unsigned int heartbeat_ms;		/* coordinator session beat */
	unsigned int fail_io_tmo;		/* s a session may be down before its I/O fails */
	unsigned int replicas;			/* copies of every chunk, 1..3 */
	unsigned int max_io_kb;			/* largest request */
	bool synchronous;			/* swap-ins skip the swap cache */
	unsigned int poll_us;			/* page transfers poll first */
};

struct rswap_dev;
struct rswap_rdma;
struct rswap_coord;

/* The coordinator link (sysfs coord_state). */
enum rswap_coord_state {
	RSWAP_COORD_CONNECTING,		/* connect and hello under way */
	RSWAP_COORD_LIVE,		/* hello answered, heartbeats flowing */
	RSWAP_COORD_RECONNECTING,	/* link lost, waiting to retry */
	RSWAP_COORD_STOPPED,
};

/* A backend serves a routed request; a front-end owns the request. */
struct rswap_backend_ops {
	const char *name;
	bool blocking;		/* queue_rq may sleep (BLK_MQ_F_BLOCKING) */
	/*
	 * queue_rq maps each request once per copy: struct rswap_cmd with
	 * its halves, a scatterlist per half and one SGE array in the pdu.
	 */
	bool map_sg;
	/* Must not sleep unless .blocking. */
	blk_status_t (*queue_rq)(struct rswap_dev *dev, unsigned int qidx,
				 struct request *rq);
	/*
	 * One page at pool byte offset off, synchronously (frontswap).
	 * Sleeps.  0, -ERANGE (past the pool), -ENOTCONN (its poold is
	 * unreachable: a write is refused at once, a read waits up to
	 * fail_io_tmo for a reconnect first), -EBUSY (send queue full),
	 * -ENOMEM, -ENOENT (read of a page never written, DRAM) or -EIO
	 * (failed, or the page was lost).  Never fills the page on failure.
	 */
	int (*rw_page)(struct rswap_dev *dev, u64 off, struct page *page,
		       bool write);
	/* blk-mq .timeout of a request it accepted; optional. */
	enum blk_eh_timer_return (*timeout)(struct rswap_dev *dev,
					    struct request *rq);
	/* Free the backing store of nr pages; atomic context; optional. */
	void (*discard)(struct rswap_dev *dev, pgoff_t first, pgoff_t nr);
	/* Extra sysfs text: one line per poold, or nothing. */
	ssize_t (*show_poolds)(struct rswap_dev *dev, char *buf);
};

/*
 * One RDMA READ or WRITE as the RDMA backend's post function takes it,
 * from either front-end: the caller fills cqe.done, sg, nents, sge and
 * write; the backend fills the rest.
 */
struct rswap_rdma_req {
	struct ib_cqe cqe;		/* RDMA completion -> this request */
	struct rswap_sess *sess;	/* routed to; set even when not posted */
	struct ib_device *ibdev;	/* non-NULL while sg is DMA mapped */
	struct scatterlist *sg;
	struct ib_sge *sge;		/* room for nents entries */
	int nents;
	bool write;
};

struct rswap_cmd;

/* A block request's RDMA operation on one replica of its placement. */
struct rswap_half {
	struct rswap_rdma_req req;
	struct rswap_cmd *cmd;
	unsigned int rep;		/* index in the placement */
	struct scatterlist *sg;		/* max_segments, in the pdu */
};

/*
 * Per block request state (blk-mq pdu).  A read is one half (half[0], to
 * the copy it picked); a write has a half per copy in sync and one for a
 * move's target, half[r] going to replica r.  The request ends when
 * every half posted has (pending).  cmd_size leaves room for
 * cfg.replicas + 1 halves, then their scatterlists and the SGEs
 * (rswap_init_request()).
 */
struct rswap_cmd {
	struct rswap_place *place;	/* posted under; counted in its inflight */
	struct rswap_sess *sess;	/* waited for, or blamed by a timeout */
	bool write;
	bool failover;			/* a read re-issued on another copy */
	u64 t0;				/* ns, first dispatch (replicas > 1) */
	atomic_t pending;		/* halves posted and not ended, + 1 */
	unsigned long posted;		/* halves posted, by replica index */
	unsigned long failed;		/* ... whose completion failed */
	unsigned long ended;		/* ... whose completion ran */
	bool counted;			/* in the move's per-window write count */
	u32 win[2];			/* ... of these windows */
	/* On its session's parked list, or on a move's held list. */
	struct list_head park;
	bool parked;			/* under that list's lock */
	int nents;			/* of half[0].sg, the request's pages */
	/*
	 * max_segments SGEs, in the pdu, shared by the halves: they are
	 * posted one after the other, and a post copies its SGEs.
	 */
	struct ib_sge *sge;
	struct rswap_half half[];
};

/* The cluster key (rswap-clt-auth.c, rswap_auth.h). */
#define RSWAP_KEYRING_DESC	"rswap:cluster"

struct crypto_shash;

struct rswap_auth {
	bool have_key;
	u8 key[32];			/* RSWAP_KEY_LEN; wiped at unload */
	struct crypto_shash *tfm;	/* hmac(sha256) keyed with key */
};

struct rswap_dev {
	char name[DISK_NAME_LEN];
	struct rswap_config cfg;
	const struct rswap_backend_ops *ops;
	struct rswap_core core;
	struct rswap_stats stats;
	unsigned int nr_queues;		/* num_online_cpus() at load */
	unsigned short max_segments;

	struct xarray dram_pages;	/* DRAM: page index -> struct page */
	atomic64_t dram_nr_pages;
	struct rswap_rdma *rdma;	/* RDMA: sessions to the poolds */
	struct rswap_coord *coord;	/* RDMA: the coordinator session */
	struct rswap_auth auth;		/* RDMA: the cluster key, if given */

	/* Fault injection (sysfs fail_reads): reads left to fail. */
	atomic_t fail_reads;

	int major;
	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
};

#define rswap_err(dev, fmt, ...) \
	pr_err("%s: " fmt, (dev)->name, ##__VA_ARGS__)
#define rswap_warn(dev, fmt, ...) \
	pr_warn("%s: " fmt, (dev)->name, ##__VA_ARGS__)
#define rswap_info(dev, fmt, ...) \
	pr_info("%s: " fmt, (dev)->name, ##__VA_ARGS__)
#define rswap_err_rl(dev, fmt, ...) \
	pr_err_ratelimited("%s: " fmt, (dev)->name, ##__VA_ARGS__)
#define rswap_warn_rl(dev, fmt, ...) \
	pr_warn_ratelimited("%s: " fmt, (dev)->name, ##__VA_ARGS__)

static inline void rswap_count_err(struct rswap_dev *dev,
				   enum rswap_err_kind kind)
{
	atomic64_inc(&dev->stats.errors[kind]);
}

/*
 * Should this read fail on purpose?  Lets tests check that a failed read
 * reaches the reader as an error (SIGBUS on swap-in), never as data.
 */
static inline bool rswap_inject_read_error(struct rswap_dev *dev)
{
	return unlikely(atomic_read(&dev->fail_reads)) &&
	       atomic_add_unless(&dev->fail_reads, -1, 0);
}

/* rswap-clt-blk.c */
void rswap_blk_end(struct rswap_dev *dev, struct request *rq,
		   blk_status_t status);
void rswap_blk_requeue(struct rswap_dev *dev, struct request *rq);
int rswap_blk_add(struct rswap_dev *dev);
void rswap_blk_remove(struct rswap_dev *dev);

/* rswap-clt-dram.c */
int rswap_dram_open(struct rswap_dev *dev);
void rswap_dram_close(struct rswap_dev *dev);

/* rswap-clt-rdma-sess.c */
struct rswap_pb_map;
int rswap_rdma_open(struct rswap_dev *dev, const struct rswap_pb_map *map);
void rswap_rdma_close(struct rswap_dev *dev);

/* rswap-clt-rdma-move.c */
struct rswap_pb_report;
struct rswap_pb_env;
int rswap_move_start(struct rswap_dev *dev, const struct rswap_pb_env *env,
		     const char **why);
int rswap_rdma_report(struct rswap_dev *dev, struct rswap_pb_report *rep,
		      bool handles);
void rswap_rdma_report_free(struct rswap_pb_report *rep);
const char *rswap_sess_name(const struct rswap_sess *sess);
u64 rswap_move_copied(const struct rswap_move *mv);
void rswap_resync_kick(struct rswap_dev *dev);
bool rswap_move_is_resync(const struct rswap_move *mv);
ssize_t rswap_rdma_show_replicas(struct rswap_dev *dev, char *buf);
ssize_t rswap_rdma_show_failover_latency(struct rswap_dev *dev, char *buf);
ssize_t rswap_rdma_show_moves(struct rswap_dev *dev, char *buf);

/* rswap-clt-coord.c */
struct rswap_pb_move_done;
int rswap_parse_addr(const char *s, struct sockaddr_storage *ss);
void rswap_coord_move_done(struct rswap_dev *dev,
			   const struct rswap_pb_move_done *d);
void rswap_coord_stop(struct rswap_dev *dev);
int rswap_coord_open(struct rswap_dev *dev, struct rswap_pb_map *map);
void rswap_coord_close(struct rswap_dev *dev, bool release);
const char *rswap_coord_state_name(struct rswap_dev *dev);
u64 rswap_coord_reconnects(struct rswap_dev *dev);
u64 rswap_coord_heartbeats(struct rswap_dev *dev);
ssize_t rswap_coord_show_last_error(struct rswap_dev *dev, char *buf);

/* rswap-clt-auth.c */
int rswap_auth_load_key(struct rswap_auth *auth);
void rswap_auth_free(struct rswap_auth *auth);
int rswap_auth_mac(const struct rswap_auth *auth, const char *label, u8 role,
		   const void *id, size_t id_len, const u8 *a, const u8 *b,
		   u8 *mac);
bool rswap_auth_check(const struct rswap_auth *auth, const char *label, u8 role,
		      const void *id, size_t id_len, const u8 *a, const u8 *b,
		      const u8 *mac, size_t mac_len);

/* rswap-clt-sysfs.c */
extern const struct attribute_group *rswap_disk_groups[];
int rswap_fail_reads_set(struct rswap_dev *dev, const char *buf);

#endif /* RSWAP_CLT_H */
