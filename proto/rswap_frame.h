/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * Framing of the control plane (TCP to rswap-coord): a 4-byte big-endian
 * length, then that many bytes holding one serialized rswap.Envelope.
 * Shared by userspace and, through these constants only, the kernel module.
 */
#ifndef RSWAP_FRAME_H
#define RSWAP_FRAME_H

#define RSWAP_PROTO_VERSION	1
#define RSWAP_FRAME_HDR		4
#define RSWAP_MAX_FRAME		(1u << 20)	/* body bytes, header excluded */
#define RSWAP_DEFAULT_COORD_PORT 9400
#define RSWAP_DEFAULT_POOLD_PORT 9401

#ifndef __KERNEL__
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct Rswap__Envelope;
struct Rswap__Error;

/*
 * Outcome of looking for one frame in a buffer: a whole frame is there
 * (its body length is stored), more bytes are needed, or the length prefix
 * is invalid and the connection must be closed.
 */
enum rswap_frame_status {
	RSWAP_FRAME_READY,
	RSWAP_FRAME_NEED_MORE,
	RSWAP_FRAME_BAD_LENGTH,
};

enum rswap_frame_status rswap_frame_peek(const uint8_t *buf, size_t avail,
					 uint32_t *body_len);

/*
 * Decode one frame body into an Envelope and check what every receiver
 * must: a supported version and a body.  Returns the envelope (free with
 * rswap__envelope__free_unpacked(e, NULL)) or NULL with *why set to a
 * one-line reason that stays valid until the thread's next decode (a
 * version mismatch names both versions).
 */
struct Rswap__Envelope *rswap_frame_decode(const uint8_t *body, size_t len,
					    const char **why);

/*
 * Make env an Error reply to request seq, with err as its body.  reason
 * is referenced, not copied: it must outlive env.
 */
void rswap_frame_error(struct Rswap__Envelope *env, struct Rswap__Error *err,
		       uint64_t seq, int code, const char *reason);

/* Serialize env with its length prefix into out.  0 or -errno. */
int rswap_frame_append(struct evbuffer *out, const struct Rswap__Envelope *env);

/* Blocking helpers for simple clients (rswap-admin, tests). 0 or -errno. */
int rswap_frame_send_fd(int fd, const struct Rswap__Envelope *env);
int rswap_frame_recv_fd(int fd, struct Rswap__Envelope **env, const char **why);
#endif

#endif /* RSWAP_FRAME_H */
