/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * The coordinator's whole state: poolds (keyed by listen address) and
 * clients (keyed by client id) with their slot -> (poold, handle) maps.
 * No sockets and no clock here: callers pass the time in, so that every
 * rule can be unit-tested.  Everything can be rebuilt from the poolds'
 * registrations after a restart.
 *
 * Chunk accounting: poold->chunks_used counts the slots that name the
 * poold, whether held (handle known) or reserved (ChunkAlloc in flight),
 * and the extra copies on it (a move's target, unresolved copies after a
 * restart); a lost slot is not counted (its memory is gone).  Only the
 * slot_*() and extra_*() functions below change it.
 *
 * Cost: every lookup is indexed (poolds and clients by name, slots by
 * index, held slots by poold and handle), so a message costs time linear
 * in its size, and memory follows what peers reported rather than what
 * they claim: a client adopted from a registration holds only the slots
 * reported for it, whatever pool size it is said to have.
 */
#ifndef RSWAP_COORD_REGISTRY_H
#define RSWAP_COORD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rswap_util.h"

#define RSWAP_ID_MAX		31	/* client id: 1..31 printable, no spaces */
#define RSWAP_ADDR_MAX		127	/* poold listen address "HOST:PORT" */
#define RSWAP_MAX_SLOTS		16384	/* a client's map must fit one frame */
#define RSWAP_MAX_REPLICAS	3	/* copies of a slot a client may ask for */
#define RSWAP_REREP_BACKOFF_MS	2000	/* first wait after a failed re-replication */
#define RSWAP_MIN_CHUNK		(16ull << 20)
#define RSWAP_SUSPECT_BEATS	3	/* missed heartbeats before suspect */
#define RSWAP_DEAD_BEATS	10	/* ... and before dead */
#define RSWAP_MAX_TOMBS		4096	/* per poold; oldest dropped first */
#define RSWAP_MAX_RELEASED	1024	/* remembered released client ids */
/*
 * Distinct client ids one poold may report holding chunks of.  A poold
 * holds at least one chunk per client it serves; this is far above what
 * a memory server holds (its memory / the chunk size), and keeps what one
 * registration may create bounded.
 */
#define RSWAP_MAX_CLIENTS_PER_POOLD	4096

enum poold_state {
	POOLD_ALIVE = 1,	/* values match rswap.PooldState */
	POOLD_SUSPECT = 2,
	POOLD_DEAD = 3,
};

/*
 * A chunk the coordinator dropped while its poold could not be told (dead,
 * or an allocation whose reply never came): freed when the poold registers
 * again and reports it.  any_handle: the handle was never learnt, match on
 * (client_id, slot) alone.
 */
struct tombstone {
	char client_id[RSWAP_ID_MAX + 1];
	uint32_t slot;
	bool any_handle;
	uint64_t handle;
};

struct handle_ent;

struct poold {
	struct poold *next;		/* registry list, unordered */
	struct poold *hnext;		/* registry's address index */
	char addr[RSWAP_ADDR_MAX + 1];
	uint64_t capacity;
	uint32_t chunks_total;		/* capacity / chunk size */
	uint32_t chunks_used;		/* held + reserved slots */
	enum poold_state state;
	enum poold_state logged_state;	/* last state the dispatcher logged */
	bool draining;			/* keeps its chunks, gets no new ones */
	bool connected;
	uint64_t incarnation;		/* as last registered; 0 unknown */
	char zone[RSWAP_ZONE_MAX + 1];	/* as last registered; "" none */
	uint64_t last_heartbeat_ms;
	uint32_t clients_connected;	/* as last reported */
	uint32_t chunks_reported;	/* as last reported */
	void *conn;			/* the dispatcher's peer while connected */
	/* Ring of tombstones, oldest at tomb_head; capacity grows to the max. */
	struct tombstone *tombs;
	size_t ntombs, tomb_head, tomb_cap;
	/*
	 * Held slots on this poold by handle (open addressing): a handle
	 * handed out twice is caught (two slots on one chunk would corrupt a
	 * client silently), and a re-registration finds the slots it must
	 * drop without a scan of every client.  Best effort: if it cannot
	 * grow, handles_lost is set and lookups say "not in use".
	 */
	struct handle_ent *handles;
	uint32_t handle_cap, handle_used;
	bool handles_lost;
};

enum slot_state { SLOT_EMPTY, SLOT_RESERVED, SLOT_HELD };

struct slot {
	uint32_t index;			/* valid unless SLOT_EMPTY */
	enum slot_state state;
	struct poold *poold;		/* set unless SLOT_EMPTY */
	uint64_t handle;		/* valid when SLOT_HELD */
	uint64_t born_ms;		/* SLOT_HELD: when its chunk was allocated
					 * (this process's clock; 0 unknown) */
	/*
	 * SLOT_HELD whose memory is gone (its poold restarted without it,
	 * or the client found it so): kept in the map so the client knows,
	 * not counted in the poold's chunks, not in its handle index (a new
	 * incarnation may hand the handle out again), never moved or freed.
	 */
	bool lost;
	bool moving;			/* a move of it is queued or running */
	/* The client reports this copy stale since then (this process's
	 * clock, at least 1); 0: in sync.  Replicated clients only. */
	uint64_t stale_since_ms;
};

/*
 * A copy of a slot that is not the one in the map: a move's target
 * (move), a further copy of a replicated slot (replica), or a copy a
 * registration found besides the mapped one, kept until the client says
 * which it runs on (unresolved: neither move nor replica).
 *
 * A replica is in the client's map (Slot.copies) next to the slot's own
 * copy, always on another poold.  reserved: its ChunkAlloc is in flight
 * (no handle yet, counted in the poold's chunks, not in its handle
 * index).  lost: its poold lost the memory, or the client found the
 * slot lost; like a lost slot it is neither counted nor indexed.
 */
struct copy {
	struct poold *poold;
	uint32_t slot;
	uint64_t handle;
	uint64_t born_ms;
	bool move;
	bool replica;
	bool reserved;
	bool lost;
	uint64_t stale_since_ms;	/* as struct slot's */
};

struct client {
	struct client *next, *prev;	/* registry list, unordered */
	struct client *hnext;		/* registry's id index */
	char id[RSWAP_ID_MAX + 1];
	uint64_t size;
	uint32_t nslots;
	uint32_t nheld;			/* slots in SLOT_HELD */
	bool busy;			/* allocation or release in flight */
	/*
	 * The slots that are not empty, found by index with linear probing
	 * from index & (cap - 1); use registry_slot().  A client placed by a
	 * ClientHello has cap >= nslots, so slot i is in bucket i.  One
	 * adopted from registrations holds only the slots reported for it.
	 */
	struct slot *slots;
	/*
	 * The dispatcher's peer of the live session that owns this id, and
	 * its "ADDR:PORT" (valid while owner is set); NULL when no
	 * connection holds the id.  Only dispatch.c sets them.
	 */
	void *owner;
	const char *owner_name;
	uint32_t cap, nused;
	void *move;			/* dispatch.c: its move past the queue */
	uint64_t epoch;			/* grows by one per committed move */
	uint32_t nlost;			/* held slots marked lost */
	/*
	 * Copies of every slot the client asked for (1..RSWAP_MAX_REPLICAS);
	 * 0: not known yet (adopted from registrations after a restart; its
	 * reconnect hello says).  Slot i's copies: the slot itself, then the
	 * extras of slot i marked replica.
	 */
	uint32_t replicas;
	/* Re-replication (dispatch.c): a resync move of it is queued or
	 * running; after a failed one, not before rerep_after_ms. */
	bool rerep_queued;
	bool rerep_stuck_logged;	/* "no target" said once until it works */
	uint8_t rerep_fails;
	uint64_t rerep_after_ms;
	uint32_t rerep_cursor;		/* where the reconciler's next scan starts */
	struct copy *extra;		/* see struct copy; unordered */
	uint32_t nextra, extra_cap;
};

struct registry {
	uint64_t chunk_size;
	unsigned int chunk_shift;
	struct poold *poolds;
	struct client *clients;
	size_t npoolds, nclients;
	/* Hash indexes (chains), by address and by client id. */
	struct poold **poold_index;
	struct client **client_index;
	size_t poold_buckets, client_buckets;
	/* Ring of released client ids whose late-reported chunks are freed. */
	char (*released)[RSWAP_ID_MAX + 1];
	size_t nreleased, released_head;
};
/* What a poold reports at registration (rswap.PooldRegister, decoded). */
struct held_chunk {
	uint64_t handle;
	const char *client_id;
	uint32_t slot;
	uint64_t client_size;
	uint64_t age_ms;		/* since allocation, plus one; 0 unknown */
};

struct poold_report {
	const char *addr;
	uint64_t capacity;
	uint64_t chunk_size;		/* 0 if it holds none */
	const struct held_chunk *chunks;
	size_t nchunks;
	uint64_t incarnation;		/* 0 unknown */
	const char *zone;		/* NULL or "": none */
};

/* chunk_size: a power of two >= RSWAP_MIN_CHUNK.  NULL on bad size/ENOMEM. */
struct registry *registry_new(uint64_t chunk_size);
void registry_free(struct registry *r);

bool registry_valid_client_id(const char *id);
bool registry_valid_addr(const char *addr);
/* Slots a client of this size needs, or 0 if size is 0 or too large. */
uint32_t registry_slots_for(const struct registry *r, uint64_t size);

struct poold *registry_poold_find(const struct registry *r, const char *addr);
struct client *registry_client_find(const struct registry *r, const char *id);

/* A chunk that lost its slot to a newer copy: the caller frees it. */
struct displaced {
	struct poold *poold;
	char client_id[RSWAP_ID_MAX + 1];
	uint32_t slot;
	uint64_t handle;
};

struct reg_result {
	struct poold *poold;		/* connected and alive */
	/* Indexes in rep->chunks of chunks nobody owns any more (tombstones,
	 * released clients, older copies of a slot): free them on poold. */
	size_t *to_free;
	size_t nto_free;
	/* Older copies on other poolds, displaced by this registration. */
	struct displaced *displaced;
	size_t ndisplaced;
};

/*
 * Register (or re-register) a poold.  Validates the whole report, and
 * allocates all it needs, before changing anything: on error nothing
 * changed, *why says why.  Errors: -EINVAL bad report (held chunks beyond
 * the capacity, a handle or slot twice, two sizes for a client, ...) or
 * chunk size mismatch, -E2BIG chunks of more than
 * RSWAP_MAX_CLIENTS_PER_POOLD client ids, -EEXIST a poold with this
 * address is connected, -EBUSY a reported client has an allocation or
 * release in flight (retry), -ENOMEM.
 *
 * A slot another poold holds is not a refusal, and frees nothing: the
 * newer chunk (by the ages the poolds report) goes into the map and the
 * other becomes an unresolved extra copy (struct copy), until the client
 * reconciles (registry_client_resolve()).  A pool of another size under
 * a known id: the newer pool stays, the older one's chunks are freed.
 * So a real poold is never locked out by one that came first.
 *
 * A held slot the registry placed on this poold that it no longer reports
 * is marked lost (a new incarnation lost its memory; the same one should
 * not lose a chunk, and is logged as such); an extra copy it no longer
 * reports is forgotten.
 *
 * On success fill *res (free it with registry_reg_result_free()).
 * O(n log n) in the report's chunks, plus the poold's own held slots on a
 * re-registration and the slots of clients it displaces.
 */
int registry_poold_register(struct registry *r, const struct poold_report *rep,
			    uint64_t now_ms, struct reg_result *res,
			    char *why, size_t whylen);
void registry_reg_result_free(struct reg_result *res);

/* The poold's connection is gone: dead, no conn, chunk records kept. */
void registry_poold_disconnect(struct registry *r, struct poold *p);
void registry_poold_heartbeat(struct poold *p, uint64_t now_ms,
			      uint32_t chunks_held, uint32_t clients_connected);
/* Recompute liveness of connected poolds from heartbeat age. */
void registry_update_liveness(struct registry *r, uint64_t now_ms,
			      uint32_t heartbeat_ms);
/* Alive, connected and not draining: may receive new chunks. */
bool registry_poold_placeable(const struct poold *p);
const char *registry_state_name(enum poold_state s);

/* Remember that p still holds a chunk nobody owns (see struct tombstone). */
int registry_tomb_add(struct poold *p, const char *client_id, uint32_t slot,
		      bool any_handle, uint64_t handle);
/* p's i-th tombstone, oldest first; NULL past the last. */
const struct tombstone *registry_tomb(const struct poold *p, size_t i);

/*
 * New client with every slot empty, not yet in any poold's books, with
 * room for all its slots (registry_slot_assign() cannot fail on it).
 */
struct client *registry_client_add(struct registry *r, const char *id,
				   uint64_t size);
/* Drop every slot record and the client itself. */
void registry_client_remove(struct registry *r, struct client *c);
/* Remember a released id; forget it when the id is used again. */
void registry_released_add(struct registry *r, const char *id);
void registry_released_forget(struct registry *r, const char *id);
bool registry_released_has(const struct registry *r, const char *id);

/* Is handle held by a slot on p? */
bool registry_handle_in_use(const struct poold *p, uint64_t handle);

/* Slot i of c, or NULL while it is empty.  O(1) expected. */
struct slot *registry_slot(const struct client *c, uint32_t i);

/* Reserve slot on p; c has room for it (it came from client_add). */
void registry_slot_assign(struct client *c, uint32_t slot, struct poold *p);
/* The slot holds chunk handle, allocated at born_ms (0 unknown). */
void registry_slot_set_handle(struct client *c, uint32_t slot, uint64_t handle,
			      uint64_t born_ms);
void registry_slot_clear(struct client *c, uint32_t slot);

/* Mark a held slot lost (see struct slot).  False if it is not held. */
bool registry_slot_set_lost(struct client *c, uint32_t slot);

/* Extra copies (struct copy).  add: 0 or -ENOMEM. */
int registry_extra_add(struct client *c, struct poold *p, uint32_t slot,
		       uint64_t handle, uint64_t born_ms, bool move);
struct copy *registry_extra_find(const struct client *c, uint32_t slot,
				 uint64_t handle);
/* Forget x (the caller frees or already freed its chunk). */
void registry_extra_del(struct client *c, struct copy *x);
/*
 * A copy counts as in sync (for a slot's health) unless it is lost, the
 * client reports it stale, or its poold is dead (missed heartbeats: the
 * client cannot reach it and the reconciler replaces it).
 */
bool registry_copy_in_sync(const struct poold *p, bool lost,
			   uint64_t stale_since_ms);
/*
 * A replicated client's slots with fewer in-sync copies than it asked
 * for but at least one (*degraded), and its copies reported stale
 * (*stale).  0 or -ENOMEM.  O(slots + extras).
 */
int registry_client_health(const struct client *c, uint32_t *degraded,
			   uint32_t *stale);
/* Extras neither a move's nor a replica. */
uint32_t registry_unresolved(const struct client *c);

/*
 * A replica of slot on p, reserved (ChunkAlloc in flight): counted in p's
 * chunks.  NULL on -ENOMEM.  The pointer is valid until extras change.
 */
struct copy *registry_replica_reserve(struct client *c, struct poold *p,
				      uint32_t slot);
/* The reserved replica of slot on p got its chunk. */
void registry_replica_set_handle(struct client *c, struct copy *x,
				 uint64_t handle, uint64_t born_ms);
/* The reserved replica of slot on p, or NULL. */
struct copy *registry_replica_reserved(const struct client *c, uint32_t slot,
				       const struct poold *p);
/* Mark a replica lost (see struct copy): out of p's books. */
void registry_copy_set_lost(struct copy *x);
/*
 * The slot's own copy is lost but a replica is not: they swap places, so
 * that the map's copy (Slot.poold_addr/handle) is one that lives and a
 * slot is lost only when every copy is.  True if they swapped.
 */
bool registry_slot_promote(struct client *c, uint32_t slot);
/*
 * Replace the replica x by extra copy `with` (a move's target), which
 * leaves the extras as x takes its place, in sync.  *old gets x's former
 * copy (old->poold NULL if it was lost: nothing to free).
 */
void registry_replica_switch(struct client *c, struct copy *x,
			     struct copy *with, struct copy *old);
/*
 * The slot now runs on extra copy x, which leaves the extras.  *old gets
 * the copy the slot had (the caller frees its chunk); old->poold is NULL
 * if that one was lost or there was none (nothing to free).  -EBUSY (an
 * allocation in flight) or -ENOMEM: nothing changed.
 */
int registry_slot_switch(struct client *c, struct copy *x, struct copy *old);

/*
 * Number of slots without a held chunk.  If nonzero and why is not NULL,
 * a one-line reason names the slots and any poold that is down.
 */
uint32_t registry_client_missing(const struct registry *r,
				 const struct client *c, char *why,
				 size_t whylen);

#endif /* RSWAP_COORD_REGISTRY_H */
