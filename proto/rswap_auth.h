/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * Cluster membership by a shared key: the mutual challenge-response that
 * starts every control (TCP) and data (RDMA) session.  Shared verbatim by
 * rswap-client.ko and the userspace programs, which must build exactly the
 * same bytes to MAC.
 *
 * The cluster key is 32 random bytes, written as 64 hex digits (one line)
 * in a file of mode 0600 (`rswap-admin keygen`).
 *
 * Handshake, initiator I (poold, client, admin; or a client's RDMA
 * session) and responder R (the coordinator; or the poold):
 *
 *   I -> R  hello:     role, id, nonce_i (32 fresh random bytes)
 *   R -> I  challenge: nonce_r, mac_r = MAC(RSWAP_AUTH_LABEL_R, nonce_i, nonce_r)
 *   I -> R  proof:     mac_i = MAC(RSWAP_AUTH_LABEL_I, nonce_r, nonce_i)
 *
 * MAC(label, a, b) = HMAC-SHA256(key, label[16] | role | len(id) | id | a | b),
 * role and len(id) one byte each, id at most RSWAP_AUTH_ID_MAX bytes.
 * R proves itself first, bound to I's fresh nonce (a recorded challenge is
 * useless later); I proves itself bound to R's fresh nonce.  The labels
 * differ by direction, so a peer's own challenge reflected back is no
 * proof; role and id are inside the MAC, so an authenticated session is
 * bound to the role and id it claimed.  An RDMA session puts its 8-byte
 * session cookie (little-endian) after the client id in the id field.
 */
#ifndef RSWAP_AUTH_H
#define RSWAP_AUTH_H

#define RSWAP_KEY_LEN		32
#define RSWAP_KEY_HEX_LEN	(2 * RSWAP_KEY_LEN)
#define RSWAP_NONCE_LEN		32
#define RSWAP_MAC_LEN		32
#define RSWAP_AUTH_LABEL_LEN	16
#define RSWAP_AUTH_ID_MAX	160
/* label + role + id length + id + two nonces */
#define RSWAP_AUTH_MSG_MAX	(RSWAP_AUTH_LABEL_LEN + 2 + RSWAP_AUTH_ID_MAX + \
				 2 * RSWAP_NONCE_LEN)

/* 16 bytes each, no terminating NUL counted. */
#define RSWAP_AUTH_LABEL_R	"rswap-auth-v1 R:"
#define RSWAP_AUTH_LABEL_I	"rswap-auth-v1 I:"

/* Who is authenticating; values are on the wire (and in rswap.proto). */
enum rswap_auth_role {
	RSWAP_AUTH_ROLE_POOLD = 1,
	RSWAP_AUTH_ROLE_CLIENT = 2,
	RSWAP_AUTH_ROLE_ADMIN = 3,
	RSWAP_AUTH_ROLE_RDMA = 4,	/* a client's session to a poold */
};

#endif /* RSWAP_AUTH_H */
