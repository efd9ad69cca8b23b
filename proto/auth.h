/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/* The cluster key and the handshake MACs, for the userspace programs. */
#ifndef RSWAP_AUTH_USER_H
#define RSWAP_AUTH_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rswap_auth.h"

/*
 * Read a key file: 64 hex digits, optionally one trailing newline, in a
 * regular file nobody but its owner can read.  0 or -errno with a one-line
 * reason in why (never the key).
 */
int rswap_key_load(const char *path, uint8_t key[RSWAP_KEY_LEN], char *why,
		   size_t whylen);

/* 32 fresh random bytes as 64 hex digits and a newline, NUL-terminated. */
int rswap_key_generate(char hex[RSWAP_KEY_HEX_LEN + 2]);

/* Fresh random bytes (getrandom); 0 or -errno. */
int rswap_auth_nonce(uint8_t *buf, size_t len);

/*
 * The id an RDMA session authenticates as (rswap_auth.h): the client id's
 * bytes, then the session cookie, 8 bytes little-endian.  Returns its
 * length; out has room for RSWAP_CLIENT_ID_LEN + 8 bytes.
 */
size_t rswap_auth_rdma_id(uint8_t *out, const char *client_id, uint64_t cookie);

/*
 * mac = MAC(label, a, b) as rswap_auth.h defines it.  -EINVAL when id is
 * longer than RSWAP_AUTH_ID_MAX, else 0.
 */
int rswap_auth_mac(const uint8_t key[RSWAP_KEY_LEN], const char *label,
		   enum rswap_auth_role role, const void *id, size_t id_len,
		   const uint8_t a[RSWAP_NONCE_LEN],
		   const uint8_t b[RSWAP_NONCE_LEN],
		   uint8_t mac[RSWAP_MAC_LEN]);

/* Does mac equal MAC(label, a, b)?  Constant time in the MAC bytes. */
bool rswap_auth_check(const uint8_t key[RSWAP_KEY_LEN], const char *label,
		      enum rswap_auth_role role, const void *id, size_t id_len,
		      const uint8_t a[RSWAP_NONCE_LEN],
		      const uint8_t b[RSWAP_NONCE_LEN],
		      const uint8_t *mac, size_t mac_len);

/*
 * The initiator's side of the handshake on a blocking socket (the fd's
 * timeouts apply): AuthHello, check the coordinator's AuthChallenge, send
 * AuthProof.  With key NULL nothing is sent (the peer has no key; a
 * coordinator that needs one refuses its first request).  0, or -errno
 * with a one-line reason in why: -EACCES when the coordinator did not
 * prove the key or runs without one.
 */
int rswap_auth_handshake_fd(int fd, const uint8_t *key, enum rswap_auth_role role,
			    const char *id, char *why, size_t whylen);

#endif /* RSWAP_AUTH_USER_H */
