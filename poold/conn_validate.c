// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "conn_validate.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "rswap.pb-c.h"

bool poold_client_id_ok(const char *id, size_t len)
{
	size_t i;

	if (len == 0 || len > RSWAP_CLIENT_ID_LEN)
		return false;
	for (i = 0; i < len; i++)
		if (id[i] <= ' ' || id[i] > '~')
			return false;
	return true;
}

const char *poold_rej_reason_str(unsigned int reason)
{
	switch (reason) {
	case RSWAP_REJ_NONE: return "no reason given";
	case RSWAP_REJ_BAD_REQUEST: return "bad request";
	case RSWAP_REJ_VERSION: return "no common protocol version";
	case RSWAP_REJ_NO_CHUNKS: return "no chunks for this client";
	case RSWAP_REJ_TOO_MANY_QPS: return "too many queue pairs";
	case RSWAP_REJ_NO_RESOURCES: return "out of resources";
	case RSWAP_REJ_SHUTTING_DOWN: return "shutting down";
	case RSWAP_REJ_SESSION: return "inconsistent session";
	case RSWAP_REJ_AUTH: return "authentication required or failed";
	default: return "unknown reason";
	}
}

/* Copy the id for logging, replacing anything unprintable by '?'. */
static void copy_client_id(char *dst, const uint8_t *src)
{
	size_t n = strnlen((const char *)src, RSWAP_CLIENT_ID_LEN), i;

	for (i = 0; i < n; i++)
		dst[i] = src[i] > ' ' && src[i] <= '~' ? (char)src[i] : '?';
	dst[n] = '\0';
}

static bool client_id_field_ok(const uint8_t *f)
{
	size_t n = strnlen((const char *)f, RSWAP_CLIENT_ID_LEN), i;

	if (!poold_client_id_ok((const char *)f, n))
		return false;
	for (i = n; i < RSWAP_CLIENT_ID_LEN; i++)	/* NUL padding only */
		if (f[i])
			return false;
	return true;
}

enum rswap_rej_reason poold_conn_validate(const void *data, size_t len,
					  unsigned int max_qps,
					  struct poold_conn_params *out,
					  const char **why)
{
	struct rswap_conn_req req;
	uint16_t version, qp_index, qp_count;

	memset(out, 0, sizeof(*out));
	strcpy(out->client_id, "?");
	if (!data || len < sizeof(req)) {
		*why = "connect request shorter than struct rswap_conn_req";
		return RSWAP_REJ_BAD_REQUEST;
	}
	/* The bytes may be unaligned; copy before reading fields. */
	memcpy(&req, data, sizeof(req));
	copy_client_id(out->client_id, req.client_id);
	if (!out->client_id[0])
		strcpy(out->client_id, "?");

	if (le32toh(req.magic) != RSWAP_WIRE_MAGIC) {
		*why = "wrong magic (not a Remoteswap client?)";
		return RSWAP_REJ_BAD_REQUEST;
	}
	version = le16toh(req.version);
	if (version < RSWAP_WIRE_VERSION_MIN) {
		*why = "client protocol version is older than this poold supports";
		return RSWAP_REJ_VERSION;
	}
	if (le16toh(req.flags) != 0) {
		*why = "unknown flags set in connect request";
		return RSWAP_REJ_BAD_REQUEST;
	}
	qp_index = le16toh(req.qp_index);
	qp_count = le16toh(req.qp_count);
	if (qp_count == 0) {
		*why = "qp_count is zero";
		return RSWAP_REJ_BAD_REQUEST;
	}
	if (qp_index >= qp_count) {
		*why = "qp_index is not below qp_count";
		return RSWAP_REJ_BAD_REQUEST;
	}
	if (qp_count > max_qps || qp_count > RSWAP_MAX_QPS_PER_SESSION) {
		*why = "qp_count is above this poold's per-session limit";
		return RSWAP_REJ_TOO_MANY_QPS;
	}
	if (!client_id_field_ok(req.client_id)) {
		*why = "client id is empty, unprintable or not NUL-padded";
		return RSWAP_REJ_BAD_REQUEST;
	}
	/* Versions above ours are fine: we speak ours, the client adapts. */
	out->version = version < RSWAP_WIRE_VERSION ? version : RSWAP_WIRE_VERSION;
	out->qp_index = qp_index;
	out->qp_count = qp_count;
	out->session = le64toh(req.session);
	*why = NULL;
	return RSWAP_REJ_NONE;
}

static bool string_ok(const char *s, size_t max)
{
	return s && strnlen(s, max + 1) <= max;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int check_registered(const Rswap__PooldRegistered *m, const char **why)
{
	if (!is_pow2(m->chunk_size) || m->chunk_size < POOLD_CHUNK_MIN ||
	    m->chunk_size > POOLD_CHUNK_MAX) {
		*why = "PooldRegistered.chunk_size is not a power of two from 16M to 1T";
		return -EPROTO;
	}
	if (m->heartbeat_ms < POOLD_HEARTBEAT_MIN_MS ||
	    m->heartbeat_ms > POOLD_HEARTBEAT_MAX_MS) {
		*why = "PooldRegistered.heartbeat_ms is outside 10..600000";
		return -EPROTO;
	}
	return 0;
}

static int check_alloc(const Rswap__ChunkAlloc *m, uint64_t chunk_size,
		       const char **why)
{
	if (!string_ok(m->client_id, RSWAP_CLIENT_ID_LEN) ||
	    !poold_client_id_ok(m->client_id, strlen(m->client_id))) {
		*why = "ChunkAlloc.client_id is empty, too long or unprintable";
		return -EPROTO;
	}
	if (m->client_size == 0) {
		*why = "ChunkAlloc.client_size is zero";
		return -EPROTO;
	}
	/* The slot must lie inside the client's pool. */
	if (chunk_size && (uint64_t)m->slot >= m->client_size / chunk_size +
			  !!(m->client_size % chunk_size)) {
		*why = "ChunkAlloc.slot lies beyond ChunkAlloc.client_size";
		return -EPROTO;
	}
	return 0;
}

int poold_coord_msg_check(const Rswap__Envelope *env, uint64_t chunk_size,
			  const char **why)
{
	switch (env->body_case) {
	case RSWAP__ENVELOPE__BODY_POOLD_REGISTERED:
		if (!env->poold_registered)
			break;
		return check_registered(env->poold_registered, why);
	case RSWAP__ENVELOPE__BODY_CHUNK_ALLOC:
		if (!env->chunk_alloc)
			break;
		return check_alloc(env->chunk_alloc, chunk_size, why);
	case RSWAP__ENVELOPE__BODY_CHUNK_FREE:
		if (!env->chunk_free)
			break;
		return 0;
	case RSWAP__ENVELOPE__BODY_AUTH_CHALLENGE:
		if (!env->auth_challenge)
			break;
		return 0;	/* lengths are checked where they are used */
	case RSWAP__ENVELOPE__BODY_ERROR:
		if (!env->error)
			break;
		if (!string_ok(env->error->reason, POOLD_REASON_MAX)) {
			*why = "Error.reason is longer than 1024 bytes";
			return -EPROTO;
		}
		return 0;
	default:
		*why = "message type is not one a coordinator sends to a poold";
		return -EPROTO;
	}
	*why = "envelope names a body but carries none";
	return -EPROTO;
}
