/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * The coordinator's protocol engine: connections ("peers"), their roles,
 * message handling, in-flight requests to poolds, rollback and timeouts.
 * It reads from and writes to evbuffers only; the event loop (main.c), the
 * tests and the fuzzer drive it through the coord_* entry points below and
 * pass the monotonic time in.
 *
 * Roles: a peer's first request decides what it is.  PooldRegister -> poold,
 * ClientHello/ClientRelease -> client, AdminList/AdminStatus/... -> admin.
 * With a cluster key, the authentication handshake comes first and binds
 * the role and id the peer may then use.  A client connection owns the
 * client id it said hello for until it closes; see rswap.proto
 * (ClientHello, ClientHeartbeat).
 * Anything out of place closes that peer only, with a logged reason and,
 * where it makes sense, an Error frame.
 *
 * Closing is deferred: coord_peer_close() marks the peer, and before an
 * entry point returns every marked peer is detached from the state (its
 * requests failed and rolled back), handed to ops->close_peer() and freed.
 * After that callback the caller must not use the peer pointer again.
 */
#ifndef RSWAP_COORD_DISPATCH_H
#define RSWAP_COORD_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rswap_auth.h"

struct evbuffer;
struct registry;
struct coord;
struct peer;

struct coord_settings {
	uint64_t chunk_size;	/* power of two >= 16M; default 4G */
	uint32_t heartbeat_ms;	/* poolds' heartbeat period; default 1000 */
	uint32_t timeout_ms;	/* wait for a poold's reply; default 10000 */
	/*
	 * After a (re)start, refuse new clients with EAGAIN for this long so
	 * that poolds can re-register the chunks of clients that already
	 * exist: a client created before its poolds are back would get a new
	 * map over its old data.  0 disables it (a cluster with no past).
	 * Time counts from the first entry point called.
	 */
	uint32_t grace_ms;
	/*
	 * A client or admin connection that sends nothing for this long (a
	 * client that misses its heartbeats) is closed, and the client id
	 * it owned is free again.  Not while a request of it is in flight.
	 */
	uint32_t client_timeout_ms;
	/*
	 * Live chunk moves (drain, rebalance) running at once; a client runs
	 * one at a time.  0: COORD_MAX_MOVES_DEFAULT.
	 */
	uint32_t max_moves;
	/*
	 * Re-replication (clients with replicas > 1): a copy its client
	 * reports stale for this long is replaced by a new one; 0: never
	 * (copies that are lost or on a dead poold are replaced anyway).
	 */
	uint32_t stale_replace_ms;
	/*
	 * The most poolds (listen addresses) and client ids the coordinator
	 * keeps: a new one past it is refused (EUSERS).  Chunks poolds
	 * report for client ids it does not know yet are always adopted.
	 * 0: the defaults below.
	 */
	uint32_t max_poolds;
	uint32_t max_clients;
	size_t out_limit;	/* queued output bytes before a peer is dropped */
	/*
	 * The cluster key.  With one, every peer must authenticate before
	 * anything else (rswap.proto, AuthHello); without (--insecure),
	 * peers are taken at their word.
	 */
	bool have_key;
	uint8_t key[RSWAP_KEY_LEN];
};

#define COORD_MAX_MOVES_DEFAULT	4
#define COORD_STALE_REPLACE_DEFAULT_MS	30000
#define COORD_MAX_POOLDS_DEFAULT	1024
#define COORD_MAX_CLIENTS_DEFAULT	65536

struct coord_ops {
	/*
	 * The coordinator is done with this peer: send what is queued in
	 * its output buffer, then close.  Must not call back into coord.
	 */
	void (*close_peer)(void *glue);
};

struct coord *coord_new(const struct coord_settings *s,
			const struct coord_ops *ops);
/* Free everything, peers included (without close_peer callbacks). */
void coord_free(struct coord *c);
struct registry *coord_registry(struct coord *c);

/* name: "ADDR:PORT" of the remote end, for log lines. */
struct peer *coord_peer_new(struct coord *c, const char *name,
			    struct evbuffer *out, void *glue);
/* Consume every whole frame in `in`; leaves a partial frame there. */
void coord_peer_input(struct coord *c, struct peer *p, struct evbuffer *in,
		      uint64_t now_ms);
/* Has p sent its first whole message (and so chosen a role)? */
bool coord_peer_has_role(const struct peer *p);
/* The connection went away (EOF, error): detach and free p now. */
void coord_peer_gone(struct coord *c, struct peer *p, const char *why,
		     uint64_t now_ms);
/* Handshakes that failed since start (wrong key, replay, wrong role). */
uint64_t coord_auth_failures(const struct coord *c);
/* Liveness and request timeouts; call every ~100 ms. */
void coord_tick(struct coord *c, uint64_t now_ms);

#endif /* RSWAP_COORD_DISPATCH_H */
