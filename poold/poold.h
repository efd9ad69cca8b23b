/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * poold: one memory server of a Remoteswap cluster.
 *
 * It owns chunks of memory that the coordinator allocates on its behalf for
 * clients, and serves them to those clients over RDMA.  Three parts share
 * one libevent loop and the struct poold below:
 *   chunk.c  - the chunk store (allocation, capacity accounting, handles);
 *   coord.c  - the session with rswap-coord (register, heartbeat, commands,
 *              reconnect with backoff);
 *   rdma.c   - the rdma_cm listener and the client sessions (one protection
 *              domain per session, one CQ per queue pair, one completion
 *              channel per RDMA device).
 */
#ifndef POOLD_H
#define POOLD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rswap_auth.h"
#include "rswap_wire.h"
#include "rswap_util.h"

/* Counters per enum rswap_rej_reason value; room for reasons to come. */
#define POOLD_REJ_SLOTS		16

struct event_base;
struct event;
struct bufferevent;
struct rdma_event_channel;
struct rdma_cm_id;
struct poold_session;
struct poold_conn;
struct prom_http;
struct poold_dev;

/* Settings from the command line; each has its default here or in main.c. */
struct poold_settings {
	char coord_str[300];		/* --coord, as given */
	struct sockaddr_storage coord_ss;
	socklen_t coord_len;
	char listen_str[80];		/* --listen, canonical numeric ADDR:PORT */
	struct sockaddr_storage listen_ss;
	socklen_t listen_len;
	uint64_t capacity;		/* --capacity: bytes poold may hand out */
	unsigned int max_qps;		/* --max-qps: per-session QP limit */
	char metrics_str[300];		/* --metrics, as given; "" = off */
	struct sockaddr_storage metrics_ss;
	socklen_t metrics_len;
	bool have_key;			/* --key-file loaded into key */
	uint8_t key[RSWAP_KEY_LEN];
	int insecure;			/* --insecure: no key, on purpose */
	char zone[RSWAP_ZONE_MAX + 1];	/* --zone: failure domain; "" none */
	int verbose;
};

struct poold_chunk {
	struct poold_chunk *next;
	uint64_t handle;		/* poold-assigned, never reused */
	char client_id[RSWAP_CLIENT_ID_LEN + 1];
	uint32_t slot;
	uint64_t client_size;
	uint64_t born_ms;		/* CLOCK_MONOTONIC at allocation */
	void *mem;
	uint64_t len;
	bool huge;			/* backed by MAP_HUGETLB pages */
};

struct poold {
	struct event_base *base;
	struct poold_settings set;
	int exit_code;

	/* chunk store */
	struct poold_chunk *chunks;
	unsigned int nchunks;
	uint64_t used;			/* bytes held in chunks */
	uint64_t chunk_size;		/* 0 until a coordinator names it */
	uint64_t next_handle;
	bool hugetlb_failed;		/* the fallback was logged */

	/* coordinator session */
	struct bufferevent *bev;
	struct event *retry_timer;
	struct event *hb_timer;
	struct event *reg_timer;
	unsigned int backoff_ms;
	bool registered;
	uint32_t heartbeat_ms;
	uint64_t seq;			/* our requests' sequence numbers */
	uint64_t reg_seq;
	uint64_t auth_seq;		/* our AuthHello until its challenge came */
	uint64_t proof_seq;		/* our AuthProof on this connection */
	uint8_t nonce[RSWAP_NONCE_LEN];	/* AuthHello's nonce */
	bool auth_logged;		/* an auth failure was logged; quiet retries */

	/* RDMA side */
	uint64_t incarnation;		/* random, nonzero, new at every start */
	struct rdma_event_channel *cm_ch;
	struct rdma_cm_id *listen_id;	/* NULL while no device serves --listen */
	struct event *listen_timer;	/* re-creates a lost listener */
	unsigned int listen_backoff_ms;
	bool no_device_warned;		/* once per lost listener */
	struct event *cm_ev;
	struct poold_dev *devs;		/* devices with queue pairs on them */
	struct poold_session *sessions;
	unsigned int nsessions;
	struct poold_conn *conns;
	bool stopping;

	/* metrics */
	struct prom_http *metrics;
	uint64_t rejects[POOLD_REJ_SLOTS];	/* by enum rswap_rej_reason */
};

/* A connect request was refused (slot 0, never a refusal, is "other"). */
static inline void poold_count_reject(struct poold *p, unsigned int reason)
{
	p->rejects[reason < POOLD_REJ_SLOTS ? reason : 0]++;
}

/* chunk.c */
uint64_t poold_now_ms(void);	/* CLOCK_MONOTONIC */
void poold_chunks_init(struct poold *p);
int poold_chunk_alloc(struct poold *p, const char *client_id, uint32_t slot,
		      uint64_t client_size, struct poold_chunk **out,
		      const char **why);
struct poold_chunk *poold_chunk_find(struct poold *p, uint64_t handle);
void poold_chunk_free(struct poold *p, struct poold_chunk *c);
void poold_chunks_free_all(struct poold *p);

/* coord.c */
int poold_coord_start(struct poold *p);
void poold_coord_stop(struct poold *p);
/*
 * The RDMA listener is gone (its device was removed) or back: a poold that
 * clients cannot reach leaves the coordinator, so that no new chunk is
 * placed on it, and registers again (with every chunk held) once it
 * listens again.
 */
void poold_coord_listener_down(struct poold *p);
void poold_coord_listener_up(struct poold *p);

/* rdma.c */
int poold_rdma_start(struct poold *p);
void poold_rdma_stop(struct poold *p);
/* Revoke every session's access to c (before c's memory goes away). */
void poold_rdma_revoke_chunk(struct poold *p, const struct poold_chunk *c);

struct poold_rdma_stats {
	uint64_t sessions;
	uint64_t queue_pairs;
	uint64_t registered_bytes;	/* chunk bytes in sessions' MRs */
};
void poold_rdma_stats(const struct poold *p, struct poold_rdma_stats *st);

/* metrics.c: the /metrics page from p and the RDMA side's numbers. */
struct prom_out;
void poold_metrics_render(struct prom_out *o, const struct poold *p,
			  const struct poold_rdma_stats *rs);

#endif /* POOLD_H */
