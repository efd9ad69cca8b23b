// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * Protobuf wire codec for the client side of rswap.proto.  See
 * rswap-clt-pb.h.  Only the wire format is implemented: varint (0),
 * fixed64 (1), length-delimited (2) and fixed32 (5); groups are refused.
 * Encoding follows protobuf-c for proto3: fields in number order, zero
 * scalars and empty strings omitted, the oneof body always present.
 */
#include "rswap-clt-pb.h"

enum {
	PB_WT_VARINT = 0,
	PB_WT_I64 = 1,
	PB_WT_LEN = 2,
	PB_WT_I32 = 5,
};

#define PB_MAX_FIELD	((1u << 29) - 1)

/* ---- encoding ---------------------------------------------------------- */

struct pb_wr {
	u8 *p;
	u8 *end;
	bool overflow;
};

static size_t pb_varint_len(u64 v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static void pb_put_byte(struct pb_wr *w, u8 b)
{
	if (w->p >= w->end) {
		w->overflow = true;
		return;
	}
	*w->p++ = b;
}

static void pb_put_varint(struct pb_wr *w, u64 v)
{
	while (v >= 0x80) {
		pb_put_byte(w, (u8)(v | 0x80));
		v >>= 7;
	}
	pb_put_byte(w, (u8)v);
}

static void pb_put_tag(struct pb_wr *w, u32 field, u32 wt)
{
	pb_put_varint(w, ((u64)field << 3) | wt);
}

static size_t pb_tag_len(u32 field)
{
	return pb_varint_len((u64)field << 3);
}

static void pb_put_bytes(struct pb_wr *w, const void *data, size_t len)
{
	if ((size_t)(w->end - w->p) < len) {
		w->overflow = true;
		w->p = w->end;
		return;
	}
	memcpy(w->p, data, len);
	w->p += len;
}

/* Size of a proto3 string field: omitted when empty. */
static size_t pb_string_field_len(u32 field, size_t len)
{
	return len ? pb_tag_len(field) + pb_varint_len(len) + len : 0;
}

static void pb_put_string_field(struct pb_wr *w, u32 field, const char *s,
				size_t len)
{
	if (!len)
		return;
	pb_put_tag(w, field, PB_WT_LEN);
	pb_put_varint(w, len);
	pb_put_bytes(w, s, len);
}

static size_t pb_varint_field_len(u32 field, u64 v)
{
	return v ? pb_tag_len(field) + pb_varint_len(v) : 0;
}

static void pb_put_varint_field(struct pb_wr *w, u32 field, u64 v)
{
	if (!v)
		return;
	pb_put_tag(w, field, PB_WT_VARINT);
	pb_put_varint(w, v);
}

/* Envelope{version, seq, <body_field> = <body of body_len bytes>} head. */
static void pb_put_envelope_head(struct pb_wr *w, u32 version, u64 seq,
				 u32 body_field, size_t body_len)
{
	pb_put_varint_field(w, 1, version);
	pb_put_varint_field(w, 2, seq);
	pb_put_tag(w, body_field, PB_WT_LEN);
	pb_put_varint(w, body_len);
}

static int pb_id_len(const char *id, size_t *len)
{
	size_t n = 0;

	if (!id)
		return -EINVAL;
	while (n < RSWAP_PB_ID_MAX && id[n])
		n++;
	if (!n || n >= RSWAP_PB_ID_MAX)
		return -EINVAL;
	*len = n;
	return 0;
}

static int pb_finish(struct pb_wr *w, u8 *buf)
{
	if (w->overflow)
		return -ENOSPC;
	return (int)(w->p - buf);
}

static void pb_put_fixed64(struct pb_wr *w, u64 v)
{
	unsigned int i;

	for (i = 0; i < 8; i++)
		pb_put_byte(w, (u8)(v >> (8 * i)));
}

/* Payload of a packed repeated uint32 field. */
static size_t pb_packed_u32_len(const u32 *v, u32 n)
{
	size_t len = 0;
	u32 i;

	for (i = 0; i < n; i++)
		len += pb_varint_len(v[i]);
	return len;
}

static size_t pb_len_field_len(u32 field, size_t len)
{
	return pb_tag_len(field) + pb_varint_len(len) + len;
}

/* MoveState{slot, to_handle, copied}. */
static size_t pb_move_state_len(const struct rswap_pb_report *rep)
{
	return pb_varint_field_len(1, rep->move_slot) +
	       pb_varint_field_len(2, rep->move_to_handle) +
	       pb_varint_field_len(3, rep->move_copied);
}

/* A packed repeated fixed64 field, omitted when empty. */
static size_t pb_fixed64s(struct pb_wr *w, u32 field, const u64 *v, u32 nr)
{
	size_t len = (size_t)nr * 8;
	u32 i;

	if (!nr)
		return 0;
	if (w) {
		pb_put_tag(w, field, PB_WT_LEN);
		pb_put_varint(w, len);
		for (i = 0; i < nr; i++)
			pb_put_fixed64(w, v[i]);
	}
	return pb_len_field_len(field, len);
}

/* Field numbers of a report's fields in one message; 0: not sent. */
struct pb_report_fields {
	u32 epoch, handles, moving, lost, replicas, copies, stale;
};

static const struct pb_report_fields pb_hello_fields = {
	.epoch = 4, .handles = 5, .moving = 6, .lost = 7, .replicas = 8,
	.copies = 9, .stale = 10,
};

static const struct pb_report_fields pb_beat_fields = {
	.epoch = 1, .moving = 2, .lost = 3, .stale = 4,
};

/*
 * The report's fields as numbered in ClientHello or ClientHeartbeat, in
 * field order.  Returns the payload length; with w, writes it.
 */
static size_t pb_report(struct pb_wr *w, const struct rswap_pb_report *rep,
			const struct pb_report_fields *f)
{
	u32 moving_field = f->moving, lost_field = f->lost;
	size_t len, n = 0;
	u32 i;

	n += pb_varint_field_len(f->epoch, rep->epoch);
	if (w)
		pb_put_varint_field(w, f->epoch, rep->epoch);
	if (f->handles)
		n += pb_fixed64s(w, f->handles, rep->handles, rep->nhandles);
	if (rep->moving) {
		len = pb_move_state_len(rep);
		n += pb_len_field_len(moving_field, len);
		if (w) {
			pb_put_tag(w, moving_field, PB_WT_LEN);
			pb_put_varint(w, len);
			pb_put_varint_field(w, 1, rep->move_slot);
			pb_put_varint_field(w, 2, rep->move_to_handle);
			pb_put_varint_field(w, 3, rep->move_copied);
		}
	}
	if (rep->nlost) {
		len = pb_packed_u32_len(rep->lost, rep->nlost);
		n += pb_len_field_len(lost_field, len);
		if (w) {
			pb_put_tag(w, lost_field, PB_WT_LEN);
			pb_put_varint(w, len);
			for (i = 0; i < rep->nlost; i++)
				pb_put_varint(w, rep->lost[i]);
		}
	}
	if (f->replicas) {
		n += pb_varint_field_len(f->replicas, rep->replicas);
		if (w)
			pb_put_varint_field(w, f->replicas, rep->replicas);
	}
	if (f->copies)
		n += pb_fixed64s(w, f->copies, rep->copy_handles,
				 rep->ncopy_handles);
	n += pb_fixed64s(w, f->stale, rep->stale, rep->nstale);
	return n;
}

size_t rswap_pb_report_max(const struct rswap_pb_report *rep)
{
	/* Envelope head, id, size, reconnect, and the report's fields. */
	return 96 + (rep ? pb_report(NULL, rep, &pb_hello_fields) : 0);
}

int rswap_pb_encode_hello(u8 *buf, size_t cap, u32 version, u64 seq,
			  const char *client_id, u64 size, bool reconnect,
			  const struct rswap_pb_report *rep)
{
	struct pb_wr w = { .p = buf, .end = buf + cap };
	size_t id_len, body;

	if (pb_id_len(client_id, &id_len) ||
	    (rep && (rep->nlost > RSWAP_PB_MAX_LOST ||
		     rep->nstale > RSWAP_PB_MAX_LOST)))
		return -EINVAL;
	body = pb_string_field_len(1, id_len) + pb_varint_field_len(2, size) +
	       pb_varint_field_len(3, reconnect);
	if (rep)
		body += pb_report(NULL, rep, &pb_hello_fields);
	pb_put_envelope_head(&w, version, seq, RSWAP_PB_BODY_CLIENT_HELLO,
			     body);
	pb_put_string_field(&w, 1, client_id, id_len);
	pb_put_varint_field(&w, 2, size);
	pb_put_varint_field(&w, 3, reconnect);
	if (rep)
		pb_report(&w, rep, &pb_hello_fields);
	return pb_finish(&w, buf);
}

int rswap_pb_encode_release(u8 *buf, size_t cap, u32 version, u64 seq,
			    const char *client_id)
{
	struct pb_wr w = { .p = buf, .end = buf + cap };
	size_t id_len;

	if (pb_id_len(client_id, &id_len))
		return -EINVAL;
	pb_put_envelope_head(&w, version, seq, RSWAP_PB_BODY_CLIENT_RELEASE,
			     pb_string_field_len(1, id_len));
	pb_put_string_field(&w, 1, client_id, id_len);
	return pb_finish(&w, buf);
}

int rswap_pb_encode_heartbeat(u8 *buf, size_t cap, u32 version, u64 seq,
			      const struct rswap_pb_report *rep)
{
	struct pb_wr w = { .p = buf, .end = buf + cap };

	if (rep && (rep->nlost > RSWAP_PB_MAX_LOST ||
		    rep->nstale > RSWAP_PB_MAX_LOST))
		return -EINVAL;
	pb_put_envelope_head(&w, version, seq, RSWAP_PB_BODY_CLIENT_HEARTBEAT,
			     rep ? pb_report(NULL, rep, &pb_beat_fields) : 0);
	if (rep)
		pb_report(&w, rep, &pb_beat_fields);
	return pb_finish(&w, buf);
}

int rswap_pb_encode_move_done(u8 *buf, size_t cap, u32 version, u64 seq,
			      const struct rswap_pb_move_done *d)
{
	struct pb_wr w = { .p = buf, .end = buf + cap };
	size_t rlen = d->reason ? strlen(d->reason) : 0, body;

	body = pb_varint_field_len(1, d->slot) +
	       pb_varint_field_len(2, d->to_handle) +
	       pb_varint_field_len(3, d->switched) +
	       pb_varint_field_len(4, d->copied) +
	       pb_varint_field_len(5, (u64)(s64)d->code) +
	       pb_string_field_len(6, rlen);
	pb_put_envelope_head(&w, version, seq, RSWAP_PB_BODY_MOVE_DONE, body);
	pb_put_varint_field(&w, 1, d->slot);
	pb_put_varint_field(&w, 2, d->to_handle);
	pb_put_varint_field(&w, 3, d->switched);
	pb_put_varint_field(&w, 4, d->copied);
	pb_put_varint_field(&w, 5, (u64)(s64)d->code);
	pb_put_string_field(&w, 6, d->reason, rlen);
	return pb_finish(&w, buf);
}

int rswap_pb_encode_auth_hello(u8 *buf, size_t cap, u32 version, u64 seq,
			       u32 role, const char *id, const u8 *nonce)
{
	struct pb_wr w = { .p = buf, .end = buf + cap };
	size_t id_len, body;

	if (pb_id_len(id, &id_len))
		return -EINVAL;
	body = pb_varint_field_len(1, role) + pb_string_field_len(2, id_len) +
	       pb_string_field_len(3, RSWAP_PB_NONCE_LEN);
	pb_put_envelope_head(&w, version, seq, RSWAP_PB_BODY_AUTH_HELLO, body);
	pb_put_varint_field(&w, 1, role);
	pb_put_string_field(&w, 2, id, id_len);
	pb_put_string_field(&w, 3, (const char *)nonce, RSWAP_PB_NONCE_LEN);
	return pb_finish(&w, buf);
}

int rswap_pb_encode_auth_proof(u8 *buf, size_t cap, u32 version, u64 seq,
			       const u8 *mac)
{
	struct pb_wr w = { .p = buf, .end = buf + cap };

	pb_put_envelope_head(&w, version, seq, RSWAP_PB_BODY_AUTH_PROOF,
			     pb_string_field_len(1, RSWAP_PB_NONCE_LEN));
	pb_put_string_field(&w, 1, (const char *)mac, RSWAP_PB_NONCE_LEN);
	return pb_finish(&w, buf);
}

/* ---- decoding ---------------------------------------------------------- */

struct pb_rd {
	const u8 *p;
	const u8 *end;
	const char *why;
};

static int pb_fail(struct pb_rd *r, const char *why)
{
	if (!r->why)
		r->why = why;
	return -EBADMSG;
}

static int pb_get_varint(struct pb_rd *r, u64 *out)
{
	u64 v = 0;
	unsigned int i;

	for (i = 0; i < 10; i++) {
		u8 b;

		if (r->p >= r->end)
			return pb_fail(r, "varint runs past the end");
		b = *r->p++;
		/* The 10th byte may only carry bit 63. */
		if (i == 9 && b > 1)
			return pb_fail(r, "varint overflows 64 bits");
		v |= (u64)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return pb_fail(r, "varint longer than 10 bytes");
}

static int pb_get_tag(struct pb_rd *r, u32 *field, u32 *wt)
{
	u64 v = 0;
	int ret;

	ret = pb_get_varint(r, &v);
	if (ret)
		return ret;
	if ((v >> 3) == 0 || (v >> 3) > PB_MAX_FIELD)
		return pb_fail(r, "field number out of range");
	*field = (u32)(v >> 3);
	*wt = (u32)(v & 7);
	return 0;
}

static int pb_get_len(struct pb_rd *r, struct pb_rd *sub)
{
	u64 n;
	int ret;

	ret = pb_get_varint(r, &n);
	if (ret)
		return ret;
	if (n > (u64)(r->end - r->p))
		return pb_fail(r, "length runs past the end");
	sub->p = r->p;
	sub->end = r->p + n;
	sub->why = NULL;
	r->p += n;
	return 0;
}

static int pb_skip(struct pb_rd *r, u32 wt)
{
	struct pb_rd sub;
	u64 v = 0;

	switch (wt) {
	case PB_WT_VARINT:
		return pb_get_varint(r, &v);
	case PB_WT_I64:
		if (r->end - r->p < 8)
			return pb_fail(r, "fixed64 runs past the end");
		r->p += 8;
		return 0;
	case PB_WT_LEN:
		return pb_get_len(r, &sub);
	case PB_WT_I32:
		if (r->end - r->p < 4)
			return pb_fail(r, "fixed32 runs past the end");
		r->p += 4;
		return 0;
	default:
		return pb_fail(r, "unsupported wire type (group?)");
	}
}

static int pb_expect(struct pb_rd *r, u32 wt, u32 want)
{
	if (wt != want)
		return pb_fail(r, "known field with the wrong wire type");
	return 0;
}

/* Copy a string field; refuse embedded NULs and strings that don't fit. */
static int pb_get_string(struct pb_rd *r, char *dst, size_t cap)
{
	struct pb_rd s;
	size_t n;
	int ret;

	ret = pb_get_len(r, &s);
	if (ret)
		return ret;
	n = s.end - s.p;
	if (n >= cap)
		return pb_fail(r, "string too long");
	if (memchr(s.p, 0, n))
		return pb_fail(r, "string holds a NUL byte");
	memcpy(dst, s.p, n);
	dst[n] = '\0';
	return 0;
}

/* A known varint field: its wire type checked, then its value. */
static int pb_field_varint(struct pb_rd *r, u32 wt, u64 *out)
{
	return pb_expect(r, wt, PB_WT_VARINT) ?: pb_get_varint(r, out);
}

/* A known string field: its wire type checked, then pb_get_string(). */
static int pb_field_string(struct pb_rd *r, u32 wt, char *dst, size_t cap)
{
	return pb_expect(r, wt, PB_WT_LEN) ?: pb_get_string(r, dst, cap);
}

/* Copy a human-readable reason, truncated, control bytes replaced. */
static int pb_get_reason(struct pb_rd *r, char *dst, size_t cap)
{
	struct pb_rd s;
	size_t n, i;
	int ret;

	ret = pb_get_len(r, &s);
	if (ret)
		return ret;
	n = s.end - s.p;
	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++)
		dst[i] = (s.p[i] < 0x20 || s.p[i] == 0x7f) ? '?' : s.p[i];
	dst[n] = '\0';
	return 0;
}

static int pb_decode_error(struct pb_rd *r, struct rswap_pb_env *env)
{
	u32 field, wt;
	u64 v = 0;
	int ret;

	while (r->p < r->end) {
		ret = pb_get_tag(r, &field, &wt);
		if (ret)
			return ret;
		switch (field) {
		case 1:
			ret = pb_field_varint(r, wt, &v);
			env->error.code = (s32)(u32)v;
			break;
		case 2:
			ret = pb_expect(r, wt, PB_WT_LEN) ?:
			      pb_get_reason(r, env->error.reason,
					    sizeof(env->error.reason));
			break;
		default:
			ret = pb_skip(r, wt);
			break;
		}
		if (ret)
			return ret;
	}
	return 0;
}

/* Slot.copies[]: Copy{poold_addr, handle, stale (ignored), lost}. */
static int pb_decode_copy(struct pb_rd *r, struct rswap_pb_copy *c)
{
	u32 field, wt;
	u64 v = 0;
	int ret;

	while (r->p < r->end) {
		ret = pb_get_tag(r, &field, &wt);
		if (ret)
			return ret;
		switch (field) {
		case 1:
			ret = pb_field_string(r, wt, c->poold_addr,
					      sizeof(c->poold_addr));
			break;
		case 2:
			ret = pb_field_varint(r, wt, &c->handle);
			break;
		case 4:
			ret = pb_field_varint(r, wt, &v);
			c->lost = v != 0;
			break;
		default:
			ret = pb_skip(r, wt);
			break;
		}
		if (ret)
			return ret;
	}
	return 0;
}

static int pb_decode_slot(struct pb_rd *r, struct rswap_pb_slot *slot)
{
	struct pb_rd sub;
	u32 field, wt;
	u64 v = 0;
	int ret;

	while (r->p < r->end) {
		ret = pb_get_tag(r, &field, &wt);
		if (ret)
			return ret;
		switch (field) {
		case 1:
			ret = pb_field_varint(r, wt, &v);
			if (!ret && v > 0xffffffffull)
				ret = pb_fail(r, "slot index over 32 bits");
			slot->index = (u32)v;
			break;
		case 2:
			ret = pb_field_string(r, wt, slot->poold_addr,
					      sizeof(slot->poold_addr));
			break;
		case 3:
			ret = pb_field_varint(r, wt, &slot->handle);
			break;
		case 4:
			ret = pb_field_varint(r, wt, &v);
			slot->lost = v != 0;
			break;
		case 5:
			if (slot->ncopies == RSWAP_PB_MAX_COPIES)
				return pb_fail(r, "a slot with more than 3 copies");
			ret = pb_expect(r, wt, PB_WT_LEN) ?:
			      pb_get_len(r, &sub);
			if (ret)
				break;
			ret = pb_decode_copy(&sub, &slot->copies[slot->ncopies]);
			if (ret)
				return pb_fail(r, sub.why);
			slot->ncopies++;
			break;
		default:
			ret = pb_skip(r, wt);
			break;
		}
		if (ret)
			return ret;
	}
	return 0;
}

/* Two passes: count the slots, allocate once, then decode them. */
static int pb_decode_map(struct pb_rd *r, struct rswap_pb_map *map)
{
	struct pb_rd scan = *r, sub;
	u32 field, wt, n = 0, i = 0;
	u64 v = 0;
	int ret;

	while (scan.p < scan.end) {
		ret = pb_get_tag(&scan, &field, &wt);
		if (ret)
			return pb_fail(r, scan.why);
		if (field == 3 && wt == PB_WT_LEN && ++n > RSWAP_PB_MAX_SLOTS)
			return pb_fail(r, "more slots than the client supports");
		ret = pb_skip(&scan, wt);
		if (ret)
			return pb_fail(r, scan.why);
	}
	if (n) {
		map->slots = rswap_pb_calloc(n, sizeof(*map->slots));
		if (!map->slots)
			return -ENOMEM;
	}

	while (r->p < r->end) {
		ret = pb_get_tag(r, &field, &wt);
		if (ret)
			return ret;
		switch (field) {
		case 1:
			ret = pb_field_varint(r, wt, &map->chunk_size);
			break;
		case 2:
			ret = pb_field_varint(r, wt, &map->size);
			break;
		case 3:
			ret = pb_expect(r, wt, PB_WT_LEN) ?:
			      pb_get_len(r, &sub);
			if (ret)
				break;
			ret = pb_decode_slot(&sub, &map->slots[i]);
			if (ret)
				return pb_fail(r, sub.why);
			map->nslots = ++i;
			break;
		case 4:
			ret = pb_field_varint(r, wt, &map->epoch);
			break;
		case 5:
			ret = pb_field_varint(r, wt, &v);
			if (!ret && v > RSWAP_PB_MAX_COPIES)
				ret = pb_fail(r, "more than 3 copies per slot");
			map->replicas = (u32)v;
			break;
		default:
			ret = pb_skip(r, wt);
			break;
		}
		if (ret)
			return ret;
	}
	return 0;
}

static int pb_decode_released(struct pb_rd *r, struct rswap_pb_env *env)
{
	u32 field, wt;
	u64 v = 0;
	int ret;

	while (r->p < r->end) {
		ret = pb_get_tag(r, &field, &wt);
		if (ret)
			return ret;
		if (field == 1) {
			ret = pb_field_varint(r, wt, &v);
			env->chunks_freed = (u32)v;
		} else {
			ret = pb_skip(r, wt);
		}
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * A bytes field of at most cap bytes is kept in dst; a longer one is
 * skipped and only its length recorded, for the caller to refuse.
 */
static int pb_get_blob(struct pb_rd *r, u8 *dst, size_t cap, u32 *len)
{
	struct pb_rd sub;
	int ret;

	ret = pb_get_len(r, &sub);
	if (ret)
		return ret;
	*len = sub.end - sub.p;
	if (*len <= cap)
		memcpy(dst, sub.p, *len);
	return 0;
}

static int pb_decode_challenge(struct pb_rd *r, struct rswap_pb_env *env)
{
	u32 field, wt;
	u64 v = 0;
	int ret;

	while (r->p < r->end) {
		ret = pb_get_tag(r, &field, &wt);
		if (ret)
			return ret;
		if (field == 1)
			ret = pb_expect(r, wt, PB_WT_LEN) ?:
			      pb_get_blob(r, env->challenge.nonce,
					  sizeof(env->challenge.nonce),
					  &env->challenge.nonce_len);
		else if (field == 2)
			ret = pb_expect(r, wt, PB_WT_LEN) ?:
			      pb_get_blob(r, env->challenge.mac,
					  sizeof(env->challenge.mac),
					  &env->challenge.mac_len);
		else if (field == 3)
			ret = pb_field_varint(r, wt, &v);
		else
			ret = pb_skip(r, wt);
		if (ret)
			return ret;
		if (field == 3)
			env->challenge.insecure = v != 0;
	}
	return 0;
}

static int pb_decode_move(struct pb_rd *r, struct rswap_pb_env *env)
{
	u32 field, wt;
	u64 v = 0;
	int ret;

	while (r->p < r->end) {
		ret = pb_get_tag(r, &field, &wt);
		if (ret)
			return ret;
		switch (field) {
		case 1:
			ret = pb_field_varint(r, wt, &env->move.epoch);
			break;
		case 2:
			ret = pb_field_varint(r, wt, &v);
			if (!ret && v > 0xffffffffull)
				ret = pb_fail(r, "slot index over 32 bits");
			env->move.slot = (u32)v;
			break;
		case 3:
			ret = pb_field_varint(r, wt, &env->move.from_handle);
			break;
		case 4:
			ret = pb_field_string(r, wt, env->move.to_poold,
					      sizeof(env->move.to_poold));
			break;
		case 5:
			ret = pb_field_varint(r, wt, &env->move.to_handle);
			break;
		default:
			ret = pb_skip(r, wt);
			break;
		}
		if (ret)
			return ret;
	}
	return 0;
}

static int pb_decode_body(struct pb_rd *r, u32 field,
			  struct rswap_pb_env *env)
{
	struct pb_rd sub;
	int ret;

	ret = pb_get_len(r, &sub);
	if (ret)
		return ret;
	if (env->body)
		return pb_fail(r, "envelope carries two bodies");
	env->body = field;
	switch (field) {
	case RSWAP_PB_BODY_ERROR:
		ret = pb_decode_error(&sub, env);
		break;
	case RSWAP_PB_BODY_CHUNK_MAP:
		ret = pb_decode_map(&sub, &env->map);
		break;
	case RSWAP_PB_BODY_CLIENT_RELEASED:
		ret = pb_decode_released(&sub, env);
		break;
	case RSWAP_PB_BODY_AUTH_CHALLENGE:
		ret = pb_decode_challenge(&sub, env);
		break;
	case RSWAP_PB_BODY_MOVE_CHUNK:
		ret = pb_decode_move(&sub, env);
		break;
	default:
		/* A body this client never expects: the caller refuses it. */
		ret = 0;
		break;
	}
	if (ret == -EBADMSG)
		return pb_fail(r, sub.why);
	return ret;
}

static bool pb_is_body(u32 field)
{
	return field == 3 || (field >= 10 && field <= 16) ||
	       (field >= 20 && field <= 26) || (field >= 30 && field <= 36) ||
	       (field >= 40 && field <= 42);
}

int rswap_pb_decode(const u8 *buf, size_t len, struct rswap_pb_env *env,
		    const char **why)
{
	struct pb_rd r = { .p = buf, .end = buf + len };
	u32 field, wt;
	u64 v = 0;
	int ret = 0;

	memset(env, 0, sizeof(*env));
	while (r.p < r.end) {
		ret = pb_get_tag(&r, &field, &wt);
		if (ret)
			break;
		if (field == 1) {
			ret = pb_expect(&r, wt, PB_WT_VARINT) ?:
			      pb_get_varint(&r, &v);
			env->version = (u32)v;
		} else if (field == 2) {
			ret = pb_expect(&r, wt, PB_WT_VARINT) ?:
			      pb_get_varint(&r, &env->seq);
		} else if (pb_is_body(field)) {
			ret = pb_expect(&r, wt, PB_WT_LEN) ?:
			      pb_decode_body(&r, field, env);
		} else {
			ret = pb_skip(&r, wt);
		}
		if (ret)
			break;
	}
	if (ret) {
		rswap_pb_env_free(env);
		*why = ret == -ENOMEM ? "out of memory" :
		       (r.why ? r.why : "malformed envelope");
	}
	return ret;
}

void rswap_pb_map_free(struct rswap_pb_map *map)
{
	rswap_pb_free(map->slots);
	map->slots = NULL;
	map->nslots = 0;
}

void rswap_pb_env_free(struct rswap_pb_env *env)
{
	rswap_pb_map_free(&env->map);
}

/*
 * A slot names `replicas` copies on distinct poolds, the first one being
 * poold_addr/handle; a map of one copy per slot may list none, and gets
 * that one as copies[0].
 */
static int pb_check_copies(const struct rswap_pb_map *map,
			   struct rswap_pb_slot *s, const char **why)
{
	u32 a, b;

	if (!s->poold_addr[0]) {
		*why = "slot without a poold address";
		return -EBADMSG;
	}
	if (!s->ncopies && map->replicas <= 1) {
		memcpy(s->copies[0].poold_addr, s->poold_addr,
		       sizeof(s->poold_addr));
		s->copies[0].handle = s->handle;
		s->copies[0].lost = s->lost;
		s->ncopies = 1;
	}
	if (s->ncopies != (map->replicas ? map->replicas : 1)) {
		*why = "a slot's copies differ from the map's replicas";
		return -EBADMSG;
	}
	if (strcmp(s->copies[0].poold_addr, s->poold_addr) ||
	    s->copies[0].handle != s->handle) {
		*why = "a slot's first copy is not its poold and handle";
		return -EBADMSG;
	}
	for (a = 0; a < s->ncopies; a++) {
		if (!s->copies[a].poold_addr[0]) {
			*why = "a copy without a poold address";
			return -EBADMSG;
		}
		for (b = 0; b < a; b++) {
			if (!strcmp(s->copies[a].poold_addr,
				    s->copies[b].poold_addr)) {
				*why = "two copies of a slot on one poold";
				return -EBADMSG;
			}
		}
	}
	return 0;
}

int rswap_pb_check_map(struct rswap_pb_map *map, u64 size, const char **why)
{
	u64 want;
	u32 i;
	int ret;

	if (!map->chunk_size || (map->chunk_size & (map->chunk_size - 1))) {
		*why = "chunk size is not a power of two";
		return -EBADMSG;
	}
	if (map->size != size) {
		*why = "map size differs from the size asked for";
		return -EBADMSG;
	}
	want = size / map->chunk_size + !!(size % map->chunk_size);
	if (map->nslots != want) {
		*why = "slot count is not ceil(size / chunk size)";
		return -EBADMSG;
	}
	/* Cycle sort: each slot moves to its index; a clash is a duplicate. */
	for (i = 0; i < map->nslots; i++) {
		while (map->slots[i].index != i) {
			u32 j = map->slots[i].index;
			struct rswap_pb_slot tmp;

			if (j >= map->nslots) {
				*why = "slot index out of range";
				return -EBADMSG;
			}
			if (map->slots[j].index == j) {
				*why = "slot index appears twice";
				return -EBADMSG;
			}
			tmp = map->slots[j];
			map->slots[j] = map->slots[i];
			map->slots[i] = tmp;
		}
		ret = pb_check_copies(map, &map->slots[i], why);
		if (ret)
			return ret;
	}
	return 0;
}

int rswap_pb_frame_len(const u8 hdr[4], u32 max, u32 *len)
{
	u32 n = ((u32)hdr[0] << 24) | ((u32)hdr[1] << 16) |
		((u32)hdr[2] << 8) | hdr[3];

	if (!n || n > max)
		return -EBADMSG;
	*len = n;
	return 0;
}

void rswap_pb_frame_put_len(u8 hdr[4], u32 len)
{
	hdr[0] = (u8)(len >> 24);
	hdr[1] = (u8)(len >> 16);
	hdr[2] = (u8)(len >> 8);
	hdr[3] = (u8)len;
}
