/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * rswap-testclient: a userspace stand-in for rswap-client.ko that speaks
 * both of its protocols (ClientHello to the coordinator, rswap_wire.h to
 * every poold) and checks data end to end with RDMA WRITE and READ.
 */
#ifndef TESTCLIENT_H
#define TESTCLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rswap_wire.h"

struct ibv_pd;
struct ibv_mr;
struct ibv_cq;
struct ibv_comp_channel;
struct rdma_cm_id;
struct rdma_event_channel;

/* Options; each default is set in testclient.c:parse_args(). */
struct tc_opts {
	const char *coord;		/* --coord HOST:PORT */
	const char *poold;		/* --poold ADDR:PORT: skip the coordinator */
	const char *id;			/* --id */
	const char *as;			/* --as ADDR:PORT (register mode) */
	uint64_t size;			/* --size */
	unsigned int qps;		/* --qps, default 2 */
	uint64_t block;			/* --block, default 64K */
	unsigned int sample;		/* --sample N blocks per chunk, 0 = all */
					/* (UINT32_MAX: chosen by chunk size) */
	/* malformed requests */
	uint32_t magic;			/* --bad-magic */
	uint16_t version;		/* --version N / --bad-version */
	uint16_t flags;			/* --bad-flags */
	int qp_count;			/* --qp-count N (forged), -1 = honest */
	bool session_mismatch;		/* --session-mismatch */
	int expect_refusal;		/* --expect-refusal REASON, -1 = none */
	bool expect_coord_error;	/* --expect-coord-error */
	unsigned int hold_s;		/* --hold SEC: stay connected, then re-read */
	bool expect_revoked;		/* --expect-revoked: access must end */
	unsigned int hold_coord_s;	/* --hold-coord SEC: keep the id owned */
	bool have_key;			/* --key-file: authenticate with it */
	uint8_t key[32];
	/* attacks on the RDMA authentication (version 3) */
	bool forge_proof;		/* --forge-proof: random bytes as proof */
	bool no_proof;			/* --no-proof: never send a proof */
	bool steal;			/* steal mode: --steal-addr/--steal-rkey */
	uint64_t steal_addr;
	uint32_t steal_rkey;
	int verbose;
};

/* One slot of the chunk map, and where the poold put the chunk. */
struct tc_slot {
	uint32_t index;
	uint64_t handle;
	char poold_addr[80];
	struct tc_poold *poold;
	uint64_t addr;			/* from the chunk table */
	uint32_t rkey;
};

struct tc_map {
	uint64_t chunk_size;
	uint64_t size;
	unsigned int nslots;
	struct tc_slot *slots;
};

struct tc_qp {
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	unsigned int inflight;
};

struct tc_desc {
	uint64_t handle, addr, len;
	uint32_t rkey;
};

/* The session with one poold. */
struct tc_poold {
	char addr[80];
	unsigned int nqps;
	struct tc_qp *qps;
	struct ibv_comp_channel *cch;
	struct ibv_cq *cq;
	uint64_t session;
	uint16_t version;		/* negotiated */
	uint32_t max_qps;
	struct rswap_conn_acc acc;	/* qp_index 0's, zero beyond acc_len */
	uint32_t acc_len;
	struct rswap_auth_proof *proof;	/* our proof, registered in the PD */
	struct ibv_mr *proof_mr;
	unsigned int slots_here;	/* map slots on this poold */
	struct tc_desc *descs;		/* chunk table as received */
	unsigned int ndescs;		/* version 3: known with the first message */
	unsigned int tbl_got;		/* descriptors received so far */
	uint8_t *rbufs;			/* receive buffers for the table */
	struct ibv_mr *rbufs_mr;
	unsigned int nrecv;
	int refused;			/* rej reason, -1 if not refused */
};

/* Process-wide RDMA state: one device, one PD, the data buffers. */
struct tc_dev {
	struct ibv_pd *pd;
	uint8_t *wbuf, *rbuf;
	uint64_t buflen;
	struct ibv_mr *wmr, *rmr;
};

/* testclient.c: "BAD_REQUEST" and "bad request (wrong magic, ...)". */
const char *rswap_rej_reason_name(int reason);

/* tc_coord.c */
int tc_coord_hello(const struct tc_opts *o, struct tc_map *map);
int tc_coord_release(const struct tc_opts *o, unsigned int *freed);
/* --hold-coord: beat on the hello's connection for SEC s, then close. */
int tc_coord_hold(const struct tc_opts *o);
/* Pose as a poold registering --as with capacity --size (refusal tests). */
int tc_coord_register(const struct tc_opts *o);

/* tc_fakecoord.c: play the coordinator on --as for one poold. */
int tc_fake_coord(const struct tc_opts *o);

/* tc_rdma.c */
int tc_poold_connect(const struct tc_opts *o, struct tc_dev *dev,
		     struct tc_poold *po);
void tc_poold_close(struct tc_poold *po);
/* True once any queue pair of po saw DISCONNECTED (non-blocking check). */
bool tc_poold_disconnected(struct tc_poold *po);
/* RDMA WRITE (write) or READ n blocks: local dev buffer j <-> remote rofs[j]. */
int tc_poold_io(const struct tc_opts *o, struct tc_dev *dev, struct tc_poold *po,
		const struct tc_slot *s, const uint64_t *rofs, unsigned int n,
		bool write);
void tc_dev_free(struct tc_dev *dev);
/*
 * Steal mode: on an authenticated session, one RDMA READ (qp 0) and one
 * RDMA WRITE (qp 1, or qp 0 if there is only one) of len bytes at another
 * session's (addr, rkey).  0 if both completed in error (a remote access
 * error, a flush after it, or no answer at all: none of these returned
 * data, and the victim checks that the WRITE did not land); -EPERM if
 * either succeeded, another -errno if the test could not run.
 */
int tc_poold_steal(const struct tc_opts *o, struct tc_dev *dev,
		   struct tc_poold *po, uint64_t len);

#endif /* TESTCLIENT_H */
