/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * A small protobuf wire codec for the client's messages of rswap.proto:
 * it encodes Envelope{ClientHello | ClientRelease | ClientHeartbeat |
 * MoveDone | AuthHello | AuthProof} and decodes Envelope{ChunkMap |
 * ClientReleased | ClientHeartbeat | MoveChunk | AuthChallenge | Error};
 * any other body decodes to its field number only, for the caller to
 * dispatch or ignore.  Pure C on byte buffers,
 * built into the kernel module and, unchanged, into a host unit test that
 * checks it byte for byte against protobuf-c.
 *
 * Decoding trusts nothing: varints longer than 10 bytes, lengths past the
 * end, known fields with the wrong wire type, groups, two bodies and
 * oversized strings are errors; unknown fields are skipped.
 */
#ifndef RSWAP_CLT_PB_H
#define RSWAP_CLT_PB_H

#include "rswap-clt-pb-shim.h"

#define RSWAP_PB_ID_MAX		32	/* client id, NUL included */
#define RSWAP_PB_ADDR_MAX	64	/* poold "ADDR:PORT", NUL included */
#define RSWAP_PB_REASON_MAX	160	/* Error.reason kept, NUL included */
#define RSWAP_PB_MAX_SLOTS	65536u

/* Envelope body field numbers (rswap.proto). */
enum rswap_pb_body {
	RSWAP_PB_BODY_NONE = 0,
	RSWAP_PB_BODY_ERROR = 3,
	RSWAP_PB_BODY_CLIENT_HELLO = 20,
	RSWAP_PB_BODY_CHUNK_MAP = 21,
	RSWAP_PB_BODY_CLIENT_RELEASE = 22,
	RSWAP_PB_BODY_CLIENT_RELEASED = 23,
	RSWAP_PB_BODY_CLIENT_HEARTBEAT = 24,
	RSWAP_PB_BODY_MOVE_CHUNK = 25,
	RSWAP_PB_BODY_MOVE_DONE = 26,
	RSWAP_PB_BODY_AUTH_HELLO = 40,
	RSWAP_PB_BODY_AUTH_CHALLENGE = 41,
	RSWAP_PB_BODY_AUTH_PROOF = 42,
};

#define RSWAP_PB_NONCE_LEN	32	/* RSWAP_NONCE_LEN, RSWAP_MAC_LEN */

/* Copies a slot may have (ClientHello.replicas). */
#define RSWAP_PB_MAX_COPIES	3

struct rswap_pb_copy {
	char poold_addr[RSWAP_PB_ADDR_MAX];
	u64 handle;
	bool lost;
};

struct rswap_pb_slot {
	u32 index;
	u64 handle;
	char poold_addr[RSWAP_PB_ADDR_MAX];
	bool lost;
	/* After rswap_pb_check_map(): 1..replicas, copies[0] as above. */
	u32 ncopies;
	struct rswap_pb_copy copies[RSWAP_PB_MAX_COPIES];
};

struct rswap_pb_map {
	u64 chunk_size;
	u64 size;
	u64 epoch;
	u32 replicas;			/* 0 means 1 */
	u32 nslots;
	struct rswap_pb_slot *slots;	/* rswap_pb_map_free() */
};

struct rswap_pb_env {
	u32 version;
	u64 seq;
	u32 body;		/* field number of the body, or 0 */
	/* Valid according to body: */
	struct {
		s32 code;
		char reason[RSWAP_PB_REASON_MAX];	/* printable only */
	} error;
	struct rswap_pb_map map;
	u32 chunks_freed;
	struct {			/* MoveChunk */
		u64 epoch;
		u32 slot;
		u64 from_handle;
		u64 to_handle;
		char to_poold[RSWAP_PB_ADDR_MAX];
	} move;
	struct {			/* AuthChallenge */
		u8 nonce[RSWAP_PB_NONCE_LEN];
		u8 mac[RSWAP_PB_NONCE_LEN];
		u32 nonce_len, mac_len;	/* as received, at most 32 kept */
		bool insecure;
	} challenge;
};

/* Largest frame body of a hello, release or heartbeat. */
#define RSWAP_PB_HELLO_MAX	96
/* ... of a MoveDone (its reason cut to 96 bytes) ... */
#define RSWAP_PB_DONE_MAX	192
/* ... and of an AuthHello or AuthProof (id and a 32-byte nonce or MAC). */
#define RSWAP_PB_AUTH_MAX	96

/* Lost slots a hello or heartbeat lists at most (rswap.proto). */
#define RSWAP_PB_MAX_LOST	1024u

/*
 * What a client reports about the map it runs on: in a reconnecting
 * ClientHello (all of it; a first hello only replicas) and in every
 * ClientHeartbeat (no handles, replicas or copy handles).
 */
struct rswap_pb_report {
	u64 epoch;
	const u64 *handles;	/* per slot index; NULL: none */
	u32 nhandles;
	bool moving;		/* a move is being copied: */
	u32 move_slot;
	u64 move_to_handle;
	u64 move_copied;
	const u32 *lost;	/* lost slot indexes, at most RSWAP_PB_MAX_LOST */
	u32 nlost;
	u32 replicas;		/* copies per slot asked for */
	const u64 *copy_handles;	/* slot-major, replicas per slot */
	u32 ncopy_handles;
	const u64 *stale;	/* stale copies, at most RSWAP_PB_MAX_LOST */
	u32 nstale;
};

/* A move ended (MoveDone). */
struct rswap_pb_move_done {
	u32 slot;
	u64 to_handle;
	bool switched;
	u64 copied;
	s32 code;		/* positive errno when !switched */
	const char *reason;	/* one line when !switched, or NULL */
};

/* Bytes a hello or heartbeat carrying rep needs at most. */
size_t rswap_pb_report_max(const struct rswap_pb_report *rep);

/*
 * Encode one Envelope into buf (no frame length prefix).  Returns the
 * number of bytes, -ENOSPC if cap is too small, -EINVAL for an id that is
 * empty or longer than RSWAP_PB_ID_MAX - 1 (or too many lost slots).
 * rep may be NULL: nothing reported.
 */
int rswap_pb_encode_hello(u8 *buf, size_t cap, u32 version, u64 seq,
			  const char *client_id, u64 size, bool reconnect,
			  const struct rswap_pb_report *rep);
int rswap_pb_encode_release(u8 *buf, size_t cap, u32 version, u64 seq,
			    const char *client_id);
/* Envelope{ClientHeartbeat{epoch, moving, lost_slots}}: bytes, -ENOSPC. */
int rswap_pb_encode_heartbeat(u8 *buf, size_t cap, u32 version, u64 seq,
			      const struct rswap_pb_report *rep);
/* Envelope{MoveDone}: bytes or -ENOSPC. */
int rswap_pb_encode_move_done(u8 *buf, size_t cap, u32 version, u64 seq,
			      const struct rswap_pb_move_done *d);
/* Envelope{AuthHello{role, id, nonce (32 bytes)}}: bytes, -ENOSPC, -EINVAL. */
int rswap_pb_encode_auth_hello(u8 *buf, size_t cap, u32 version, u64 seq,
			       u32 role, const char *id, const u8 *nonce);
/* Envelope{AuthProof{mac (32 bytes)}}: bytes or -ENOSPC. */
int rswap_pb_encode_auth_proof(u8 *buf, size_t cap, u32 version, u64 seq,
			       const u8 *mac);

/*
 * Decode one Envelope.  0, -EBADMSG with *why set to a static one-line
 * reason, or -ENOMEM.  On success free with rswap_pb_env_free().
 */
int rswap_pb_decode(const u8 *buf, size_t len, struct rswap_pb_env *env,
		    const char **why);
void rswap_pb_env_free(struct rswap_pb_env *env);
void rswap_pb_map_free(struct rswap_pb_map *map);

/*
 * Check a ChunkMap against the size asked for: chunk_size a power of two,
 * size equal, slot count == ceil(size / chunk_size), indexes 0..n-1 each
 * exactly once, every poold address set, replicas copies per slot on
 * distinct poolds (a one-copy slot gets copies[0] filled in).  Sorts the
 * slots by index.
 * 0 or -EBADMSG with *why set.
 */
int rswap_pb_check_map(struct rswap_pb_map *map, u64 size, const char **why);

/* Is handle one of the slot's copies (after rswap_pb_check_map())? */
static inline bool rswap_pb_slot_has(const struct rswap_pb_slot *s, u64 handle)
{
	u32 c;

	for (c = 0; c < s->ncopies; c++)
		if (s->copies[c].handle == handle)
			return true;
	return false;
}

/*
 * Frame length prefix: 4 bytes big-endian.  0 with *len set if it is
 * 1..max, else -EBADMSG.
 */
int rswap_pb_frame_len(const u8 hdr[4], u32 max, u32 *len);
void rswap_pb_frame_put_len(u8 hdr[4], u32 len);

#endif /* RSWAP_CLT_PB_H */
