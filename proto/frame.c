// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "rswap_frame.h"
#include "rswap.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/buffer.h>

enum rswap_frame_status rswap_frame_peek(const uint8_t *buf, size_t avail,
					 uint32_t *body_len)
{
	uint32_t len;

	if (avail < RSWAP_FRAME_HDR)
		return RSWAP_FRAME_NEED_MORE;
	len = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
	      (uint32_t)buf[2] << 8 | buf[3];
	if (len == 0 || len > RSWAP_MAX_FRAME)
		return RSWAP_FRAME_BAD_LENGTH;
	*body_len = len;
	if (avail - RSWAP_FRAME_HDR < len)
		return RSWAP_FRAME_NEED_MORE;
	return RSWAP_FRAME_READY;
}

Rswap__Envelope *rswap_frame_decode(const uint8_t *body, size_t len,
				    const char **why)
{
	/* Per thread, so that *why stays valid until the next decode. */
	static __thread char version_why[80];
	Rswap__Envelope *env;

	env = rswap__envelope__unpack(NULL, len, body);
	if (!env) {
		*why = "frame is not a valid rswap.Envelope";
		return NULL;
	}
	if (env->version != RSWAP_PROTO_VERSION) {
		snprintf(version_why, sizeof(version_why),
			 "peer speaks protocol version %u, this side speaks %u",
			 env->version, RSWAP_PROTO_VERSION);
		*why = version_why;
		rswap__envelope__free_unpacked(env, NULL);
		return NULL;
	}
	if (env->body_case == RSWAP__ENVELOPE__BODY__NOT_SET) {
		*why = "envelope carries no message";
		rswap__envelope__free_unpacked(env, NULL);
		return NULL;
	}
	return env;
}

void rswap_frame_error(Rswap__Envelope *env, Rswap__Error *err, uint64_t seq,
		       int code, const char *reason)
{
	rswap__envelope__init(env);
	rswap__error__init(err);
	err->code = code;
	err->reason = (char *)reason;
	env->seq = seq;
	env->body_case = RSWAP__ENVELOPE__BODY_ERROR;
	env->error = err;
}

static int frame_pack(const Rswap__Envelope *env, uint8_t **out, size_t *out_len)
{
	size_t len = rswap__envelope__get_packed_size(env);
	uint8_t *buf;

	if (len == 0 || len > RSWAP_MAX_FRAME)
		return -EMSGSIZE;
	buf = malloc(RSWAP_FRAME_HDR + len);
	if (!buf)
		return -ENOMEM;
	buf[0] = len >> 24;
	buf[1] = len >> 16;
	buf[2] = len >> 8;
	buf[3] = len;
	rswap__envelope__pack(env, buf + RSWAP_FRAME_HDR);
	*out = buf;
	*out_len = RSWAP_FRAME_HDR + len;
	return 0;
}

int rswap_frame_append(struct evbuffer *out, const Rswap__Envelope *env)
{
	uint8_t *buf;
	size_t len;
	int ret;

	ret = frame_pack(env, &buf, &len);
	if (ret)
		return ret;
	ret = evbuffer_add(out, buf, len) ? -ENOMEM : 0;
	free(buf);
	return ret;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int rswap_frame_send_fd(int fd, const Rswap__Envelope *env)
{
	uint8_t *buf;
	size_t len;
	int ret;

	ret = frame_pack(env, &buf, &len);
	if (ret)
		return ret;
	ret = write_all(fd, buf, len);
	free(buf);
	return ret;
}

int rswap_frame_recv_fd(int fd, Rswap__Envelope **env, const char **why)
{
	uint8_t hdr[RSWAP_FRAME_HDR];
	uint32_t len;
	uint8_t *body;
	int ret;

	*why = "connection closed by peer";
	ret = read_all(fd, hdr, sizeof(hdr));
	if (ret)
		return ret;
	if (rswap_frame_peek(hdr, sizeof(hdr), &len) == RSWAP_FRAME_BAD_LENGTH) {
		*why = "frame length is zero or above the maximum";
		return -EPROTO;
	}
	body = malloc(len);
	if (!body)
		return -ENOMEM;
	ret = read_all(fd, body, len);
	if (!ret) {
		*env = rswap_frame_decode(body, len, why);
		if (!*env)
			ret = -EPROTO;
	}
	free(body);
	return ret;
}
