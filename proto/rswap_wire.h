/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * Remoteswap data-plane wire format, shared verbatim by rswap-client.ko and
 * poold.  Everything here crosses an RDMA connection between a client and a
 * memory server; the control plane (coordinator) uses rswap.proto instead.
 *
 * Connection protocol, one session per (client, poold):
 *
 *  1. The client opens qp_count RC queue pairs to the poold with rdma_cm.
 *     Each rdma_connect() carries a struct rswap_conn_req as private data
 *     (at most RSWAP_CONN_REQ_MAX bytes: what IB CM leaves to rdma_cm users).
 *     All queue pairs of one session carry the same session cookie.
 *  2. The poold validates it.  It refuses with struct rswap_conn_rej as the
 *     reject private data and a reason from enum rswap_rej_reason, or
 *     accepts with struct rswap_conn_acc.  The first queue pair of a session
 *     makes the poold create a protection domain for it and register in it
 *     only the chunks the coordinator allocated to that client.
 *  3. Authentication (version 3, a poold with the cluster key; RSWAP_ACC_F_AUTH
 *     in the accept).  The accept carries the poold's fresh nonce and its
 *     proof, mac = MAC(RSWAP_AUTH_LABEL_R, zeros, nonce) over role
 *     RSWAP_AUTH_ROLE_RDMA and id = client id | session cookie (8 bytes,
 *     little-endian; rswap_auth.h): the client checks it, then SENDs its
 *     own on qp_index 0, struct rswap_auth_proof with mac =
 *     MAC(RSWAP_AUTH_LABEL_I, nonce, zeros), before it connects any other
 *     queue pair.  The cookie, new for every session, is the client's
 *     fresh value (the REQ has no room for a nonce).  Until the proof
 *     checks, the poold registers nothing in the session's protection
 *     domain and sends no table; a wrong proof, or none within
 *     RSWAP_AUTH_TIMEOUT_MS, disconnects the session.  A client holding
 *     a key refuses a poold that does not authenticate, and the reverse.
 *  4. On the queue pair with qp_index 0, once established (and
 *     authenticated), the poold SENDs
 *     the chunk table: one or more messages of at most RSWAP_MSG_MAX bytes,
 *     each a struct rswap_msg_hdr followed by struct rswap_chunk_desc
 *     entries.  The client posts receives for them before connecting.
 *     Version 3 addresses are chunk-relative: every chunk's MR starts at
 *     I/O virtual address 0 (desc.addr is 0), so no poold address leaks.
 *  5. From then on the client uses one-sided RDMA READ and WRITE only.
 *
 * All fields are little-endian.  A newer peer negotiates
 * min(its version, peer's version) and reads a field added after version 1
 * only if that version and the received length both cover it.  Unused bytes
 * are reserved, sent as zero and ignored on receipt; a retired field is
 * renamed reserved_<name>, never removed, so that offsets never move.
 */
#ifndef RSWAP_WIRE_H
#define RSWAP_WIRE_H

#include <linux/types.h>
#ifdef __KERNEL__
#include <linux/build_bug.h>
#include <linux/stddef.h>
#else
#include <assert.h>
#include <stddef.h>
#endif

#define RSWAP_WIRE_MAGIC	0x50575352u	/* "RSWP" read as little-endian */
/*
 * Version history:
 *  1  first version
 *  2  struct rswap_conn_acc carries the poold's incarnation
 *  3  authentication (step 3 above); chunk-relative addresses
 */
#define RSWAP_WIRE_VERSION	3
#define RSWAP_WIRE_VERSION_MIN	1

#define RSWAP_CLIENT_ID_LEN	32	/* NUL-padded; not necessarily terminated */
#define RSWAP_CONN_REQ_MAX	56	/* IB CM REQ private data less rdma_cm's */
#define RSWAP_CONN_REP_MAX	196	/* IB CM REP private data */
#define RSWAP_MSG_MAX		4096	/* largest SEND on a session */
#define RSWAP_MAX_QPS_PER_SESSION 256
#define RSWAP_AUTH_TIMEOUT_MS	10000	/* accept to proof, at most */

/* client -> poold: rdma_connect() private data. */
struct rswap_conn_req {
	__le32 magic;
	__le16 version;		/* highest version the client speaks */
	__le16 flags;		/* none defined; must be zero */
	__le16 qp_index;	/* 0 .. qp_count - 1 */
	__le16 qp_count;	/* queue pairs the client opens in this session */
	__le32 reserved;
	__le64 session;		/* random cookie shared by a session's QPs */
	__u8 client_id[RSWAP_CLIENT_ID_LEN];
};

/* poold -> client: rdma_accept() private data. */
struct rswap_conn_acc {
	__le32 magic;
	__le16 version;		/* negotiated: min of both sides */
	__le16 flags;
	__le32 chunk_count;	/* descriptors that follow on qp_index 0 */
	__le32 max_qps;		/* the poold's per-session limit */
	/*
	 * Version 2: random, nonzero, picked at poold start.  The same value
	 * on a reconnect means the poold's memory (and the client's pages in
	 * it) survived; another value means that memory is gone.  Zero (or
	 * version 1) says nothing: the client must assume the memory is gone.
	 */
	__le64 incarnation;
	__le64 reserved;
	/* Version 3, with RSWAP_ACC_F_AUTH: the poold's nonce and proof. */
	__u8 nonce[32];
	__u8 mac[32];
};

/* rswap_conn_acc.flags */
#define RSWAP_ACC_F_AUTH	0x0001	/* the poold has a key: prove yours */

enum rswap_rej_reason {
	RSWAP_REJ_NONE = 0,
	RSWAP_REJ_BAD_REQUEST = 1,	/* wrong magic, short or bad fields */
	RSWAP_REJ_VERSION = 2,		/* no common protocol version */
	RSWAP_REJ_NO_CHUNKS = 3,	/* this poold holds nothing for the id */
	RSWAP_REJ_TOO_MANY_QPS = 4,	/* over the poold's per-session limit */
	RSWAP_REJ_NO_RESOURCES = 5,	/* PD, MR or QP could not be created */
	RSWAP_REJ_SHUTTING_DOWN = 6,
	RSWAP_REJ_SESSION = 7,		/* qp_count differs within a session */
	RSWAP_REJ_AUTH = 8,		/* this poold requires authentication */
};

/* poold -> client: rdma_reject() private data. */
struct rswap_conn_rej {
	__le32 magic;
	__le16 version;		/* the highest version the poold speaks */
	__le16 reason;		/* enum rswap_rej_reason */
	__le64 reserved;
};

enum rswap_msg_type {
	RSWAP_MSG_CHUNK_TABLE = 1,	/* poold -> client */
	RSWAP_MSG_AUTH_PROOF = 2,	/* client -> poold, version 3 */
};

/* Header of every SEND on a session. */
struct rswap_msg_hdr {
	__le32 magic;
	__le16 version;
	__le16 type;		/* enum rswap_msg_type */
	__le32 first;		/* index of the first descriptor in this message */
	__le32 count;		/* descriptors in this message */
	__le32 total;		/* descriptors in the whole table */
	__le32 reserved[3];
};

/* One chunk the client may access: [addr, addr + len) under rkey. */
struct rswap_chunk_desc {
	__le64 handle;		/* the coordinator's chunk handle */
	__le64 addr;
	__le64 len;
	__le32 rkey;
	__le32 reserved;
};

/* client -> poold on qp_index 0: the client's proof (version 3). */
struct rswap_auth_proof {
	struct rswap_msg_hdr hdr;	/* type RSWAP_MSG_AUTH_PROOF, counts 0 */
	__u8 mac[32];
};

#define RSWAP_DESCS_PER_MSG \
	((RSWAP_MSG_MAX - sizeof(struct rswap_msg_hdr)) / \
	 sizeof(struct rswap_chunk_desc))

static_assert(sizeof(struct rswap_conn_req) == RSWAP_CONN_REQ_MAX,
	      "rswap_conn_req must fill exactly the REQ private data");
static_assert(sizeof(struct rswap_conn_acc) == 96,
	      "rswap_conn_acc size is ABI");
static_assert(offsetof(struct rswap_conn_acc, nonce) == 32,
	      "rswap_conn_acc version 3 fields follow version 2's");
static_assert(sizeof(struct rswap_auth_proof) == 64,
	      "rswap_auth_proof size is ABI");
static_assert(sizeof(struct rswap_conn_acc) <= RSWAP_CONN_REP_MAX,
	      "rswap_conn_acc must fit the REP private data");
static_assert(offsetof(struct rswap_conn_acc, incarnation) == 16,
	      "rswap_conn_acc.incarnation took the first reserved word");
static_assert(sizeof(struct rswap_conn_rej) == 16,
	      "rswap_conn_rej size is ABI");
static_assert(sizeof(struct rswap_msg_hdr) == 32,
	      "rswap_msg_hdr size is ABI");
static_assert(sizeof(struct rswap_chunk_desc) == 32,
	      "rswap_chunk_desc size is ABI");

#endif /* RSWAP_WIRE_H */
