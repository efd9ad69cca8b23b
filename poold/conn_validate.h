/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * Pure checks of what peers send to poold: a client's rdma_cm connect
 * request (struct rswap_conn_req) and the coordinator's control messages.
 * No I/O, no global state: the fuzz target calls these on arbitrary bytes.
 */
#ifndef POOLD_CONN_VALIDATE_H
#define POOLD_CONN_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rswap_wire.h"

struct Rswap__Envelope;

/* Smallest and largest chunk size poold accepts from a coordinator. */
#define POOLD_CHUNK_MIN		(16ull << 20)
#define POOLD_CHUNK_MAX		(1ull << 40)
#define POOLD_HEARTBEAT_MIN_MS	10u
#define POOLD_HEARTBEAT_MAX_MS	600000u
#define POOLD_REASON_MAX	1024	/* longest Error.reason we log */

/* A connect request that passed validation, in host byte order. */
struct poold_conn_params {
	uint16_t version;	/* negotiated: min(ours, theirs) */
	uint16_t qp_index;
	uint16_t qp_count;
	uint64_t session;
	char client_id[RSWAP_CLIENT_ID_LEN + 1];	/* NUL-terminated */
};

/*
 * Validate len bytes of rdma_cm private data as a struct rswap_conn_req.
 * Returns RSWAP_REJ_NONE and fills *out, or the reason to reject with and
 * a static one-line explanation in *why.  out->client_id is filled (possibly
 * with a sanitized "?" form) whenever the bytes are long enough to hold one,
 * so that the caller can name the client in its log line.
 */
enum rswap_rej_reason poold_conn_validate(const void *data, size_t len,
					  unsigned int max_qps,
					  struct poold_conn_params *out,
					  const char **why);

/*
 * A client id is 1..RSWAP_CLIENT_ID_LEN printable ASCII characters without
 * spaces (it appears in log lines and in the admin listing).
 */
bool poold_client_id_ok(const char *id, size_t len);

/* Human-readable name of a reject reason ("bad request", ...). */
const char *poold_rej_reason_str(unsigned int reason);

/*
 * Check one decoded envelope from the coordinator: it must be a message the
 * coordinator may send to a poold, with every field in range.  chunk_size
 * is the chunk size the poold runs with (0 before registration).
 * 0, or -EPROTO with *why set to a static one-line reason.
 */
int poold_coord_msg_check(const struct Rswap__Envelope *env,
			  uint64_t chunk_size, const char **why);

#endif /* POOLD_CONN_VALIDATE_H */
