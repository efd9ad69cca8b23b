// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * rswap-testclient MODE: write | verify | release | connect | map.
 *
 *   map      ClientHello only; print the chunk map.
 *   connect  ClientHello (or --poold), open the queue pairs, receive and
 *            check the chunk table; no data moves.
 *   write    connect, then for every chunk RDMA WRITE a pattern derived from
 *            (client id, slot, offset), READ it back into another buffer and
 *            compare.
 *   verify   connect, READ and compare only: proves data survived whatever
 *            happened since the last write (e.g. a coordinator restart).
 *   release  ClientRelease: the coordinator frees every chunk of the id.
 *   steal    connect (an authenticated session of our own), then RDMA READ
 *            and WRITE another session's --steal-addr/--steal-rkey: both
 *            must be refused.
 *   register pose as a poold: PooldRegister --as ADDR:PORT with capacity
 *            --size, to check the coordinator's refusals.
 *   fake-coord  pose as the coordinator on --as ADDR:PORT for one poold and
 *            check its answers to commands a real coordinator rarely sends.
 *
 * Exit 0 on success, 1 on failure, 2 on bad usage.  With --expect-refusal
 * REASON, success means every poold refused with exactly that reason (for
 * AUTH after --forge-proof or --no-proof: disconnected us, no table); with
 * --expect-coord-error, that the coordinator refused the ClientHello.
 */
#include "testclient.h"
#include "auth.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rswap_util.h"

#define DEFAULT_QPS	2
#define DEFAULT_BLOCK	(64u << 10)
#define BATCH_BYTES	(16u << 20)	/* local buffer: blocks per batch */
#define SAMPLE_AUTO	UINT32_MAX	/* --sample not given */
#define FULL_CHUNK_MAX	(64ull << 20)	/* test bigger chunks by sampling */
#define SAMPLE_DEFAULT	1024u

static const struct {
	const char *name;
	const char *text;
} rej_names[] = {
	[RSWAP_REJ_NONE] = { "NONE", "no reason" },
	[RSWAP_REJ_BAD_REQUEST] = { "BAD_REQUEST", "bad request (wrong magic, short or bad fields)" },
	[RSWAP_REJ_VERSION] = { "VERSION", "no common protocol version" },
	[RSWAP_REJ_NO_CHUNKS] = { "NO_CHUNKS", "this poold holds nothing for the id" },
	[RSWAP_REJ_TOO_MANY_QPS] = { "TOO_MANY_QPS", "over the poold's per-session limit" },
	[RSWAP_REJ_NO_RESOURCES] = { "NO_RESOURCES", "PD, MR or QP could not be created" },
	[RSWAP_REJ_SHUTTING_DOWN] = { "SHUTTING_DOWN", "poold is shutting down" },
	[RSWAP_REJ_SESSION] = { "SESSION", "qp_count differs within a session" },
	[RSWAP_REJ_AUTH] = { "AUTH", "this poold requires authentication" },
};

#define NREJ ((int)(sizeof(rej_names) / sizeof(rej_names[0])))

const char *rswap_rej_reason_name(int reason)
{
	static char buf[96];

	if (reason < 0 || reason >= NREJ) {
		snprintf(buf, sizeof(buf), "UNKNOWN(%d)", reason);
		return buf;
	}
	snprintf(buf, sizeof(buf), "%s: %s", rej_names[reason].name,
		 rej_names[reason].text);
	return buf;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rswap-testclient [options] write|verify|release|connect|map|steal|\n"
		"                                  register|fake-coord\n"
		"  --coord HOST:PORT    coordinator\n"
		"  --id ID              client id (1..32 printable characters)\n"
		"  --size SIZE          pool size to ask for, e.g. 96M\n"
		"  --qps N              queue pairs per poold (default %d)\n"
		"  --block SIZE         RDMA transfer size (default 64K)\n"
		"  --sample N           test N evenly spread blocks per chunk; 0 = all\n"
		"                       (default: all up to 64M chunks, else 1024)\n"
		"  --poold ADDR:PORT    connect to this poold directly (connect, steal)\n"
		"  --key-file FILE      the cluster key, to authenticate to the coordinator\n"
		"                       and to every poold\n"
		"  --as ADDR:PORT       listen address to register as (register mode),\n"
		"                       or to listen on as a coordinator (fake-coord)\n"
		"bad input, to check refusals:\n"
		"  --bad-magic  --bad-version  --version N  --bad-flags  --qp-count N\n"
		"  --session-mismatch   second queue pair claims another qp_count\n"
		"  --expect-refusal R   succeed only if refused with R (BAD_REQUEST,\n"
		"                       VERSION, NO_CHUNKS, TOO_MANY_QPS, SESSION, AUTH, ...)\n"
		"  --expect-coord-error succeed only if the coordinator refuses\n"
		"  --hold SEC           after write/verify stay connected up to SEC seconds\n"
		"                       (until a poold disconnects), then read again\n"
		"  --expect-revoked     with --hold: succeed only if access ended\n"
		"  --hold-coord SEC     keep the coordinator session (and so the client\n"
		"                       id) for SEC seconds after the work, with heartbeats\n"
		"attacks on the RDMA authentication (wire version 3):\n"
		"  --forge-proof        send a proof of random bytes, unchecked poold proof;\n"
		"                       with --expect-refusal AUTH succeed only if the poold\n"
		"                       disconnects and sends no chunk table\n"
		"  --no-proof           send no proof (same expectation, within 15 s)\n"
		"  --steal-addr ADDR --steal-rkey RKEY   (steal mode, hex or decimal)\n"
		"                       READ (qp 0) and WRITE (qp 1) another session's\n"
		"                       memory; succeed only if both are refused\n",
		DEFAULT_QPS);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("rswap-testclient: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see rswap-testclient --help)\n", stderr);
	exit(2);
}

static unsigned long parse_num(const char *opt, const char *s, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || v > max)
		usage_error("%s %s: expected a number from 0 to %lu", opt, s, max);
	return v;
}

/* Hex with 0x, else decimal. */
static uint64_t parse_u64(const char *opt, const char *s, uint64_t max)
{
	bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	const char *d = hex ? s + 2 : s;
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(d, &end, hex ? 16 : 10);
	if (!*d || *d == '-' || *d == '+' || *end || errno || v > max)
		usage_error("%s %s: expected a number (0x... for hex) up to %#llx",
			    opt, s, (unsigned long long)max);
	return v;
}

static int parse_reason(const char *s)
{
	int i;

	for (i = 1; i < NREJ; i++)
		if (!strcasecmp(s, rej_names[i].name))
			return i;
	usage_error("--expect-refusal %s: unknown reason", s);
}

static const char *parse_args(int argc, char **argv, struct tc_opts *o)
{
	enum { O_COORD = 256, O_POOLD, O_ID, O_SIZE, O_QPS, O_BLOCK, O_SAMPLE,
	       O_BAD_MAGIC, O_BAD_VERSION, O_VERSION, O_BAD_FLAGS, O_QP_COUNT,
	       O_SESSION_MISMATCH, O_EXPECT_REFUSAL, O_EXPECT_COORD_ERROR, O_AS,
	       O_HOLD, O_EXPECT_REVOKED, O_HOLD_COORD, O_KEY_FILE, O_FORGE_PROOF,
	       O_NO_PROOF, O_STEAL_ADDR, O_STEAL_RKEY };
	bool have_addr = false, have_rkey = false;
	static const struct option opts[] = {
		{ "coord", required_argument, NULL, O_COORD },
		{ "poold", required_argument, NULL, O_POOLD },
		{ "id", required_argument, NULL, O_ID },
		{ "size", required_argument, NULL, O_SIZE },
		{ "qps", required_argument, NULL, O_QPS },
		{ "block", required_argument, NULL, O_BLOCK },
		{ "sample", required_argument, NULL, O_SAMPLE },
		{ "bad-magic", no_argument, NULL, O_BAD_MAGIC },
		{ "bad-version", no_argument, NULL, O_BAD_VERSION },
		{ "version", required_argument, NULL, O_VERSION },
		{ "bad-flags", no_argument, NULL, O_BAD_FLAGS },
		{ "qp-count", required_argument, NULL, O_QP_COUNT },
		{ "session-mismatch", no_argument, NULL, O_SESSION_MISMATCH },
		{ "expect-refusal", required_argument, NULL, O_EXPECT_REFUSAL },
		{ "expect-coord-error", no_argument, NULL, O_EXPECT_COORD_ERROR },
		{ "as", required_argument, NULL, O_AS },
		{ "hold", required_argument, NULL, O_HOLD },
		{ "expect-revoked", no_argument, NULL, O_EXPECT_REVOKED },
		{ "hold-coord", required_argument, NULL, O_HOLD_COORD },
		{ "key-file", required_argument, NULL, O_KEY_FILE },
		{ "forge-proof", no_argument, NULL, O_FORGE_PROOF },
		{ "no-proof", no_argument, NULL, O_NO_PROOF },
		{ "steal-addr", required_argument, NULL, O_STEAL_ADDR },
		{ "steal-rkey", required_argument, NULL, O_STEAL_RKEY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mode;
	int c;

	o->qps = DEFAULT_QPS;
	o->sample = SAMPLE_AUTO;
	o->block = DEFAULT_BLOCK;
	o->magic = RSWAP_WIRE_MAGIC;
	o->version = RSWAP_WIRE_VERSION;
	o->qp_count = -1;
	o->expect_refusal = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
		switch (c) {
		case O_COORD: o->coord = optarg; break;
		case O_POOLD: o->poold = optarg; break;
		case O_ID: o->id = optarg; break;
		case O_AS: o->as = optarg; break;
		case O_KEY_FILE: {
			char why[300];

			if (rswap_key_load(optarg, o->key, why, sizeof(why)))
				usage_error("%s", why);
			o->have_key = true;
			break;
		}
		case O_HOLD: o->hold_s = (unsigned int)parse_num("--hold", optarg, 3600); break;
		case O_EXPECT_REVOKED: o->expect_revoked = true; break;
		case O_FORGE_PROOF: o->forge_proof = true; break;
		case O_NO_PROOF: o->no_proof = true; break;
		case O_STEAL_ADDR:
			o->steal_addr = parse_u64("--steal-addr", optarg, UINT64_MAX);
			have_addr = true;
			break;
		case O_STEAL_RKEY:
			o->steal_rkey = (uint32_t)parse_u64("--steal-rkey", optarg, UINT32_MAX);
			have_rkey = true;
			break;
		case O_HOLD_COORD:
			o->hold_coord_s = (unsigned int)parse_num("--hold-coord", optarg, 3600);
			break;
		case O_SIZE:
			if (rswap_parse_size(optarg, &o->size))
				usage_error("--size %s: not a size (e.g. 96M)", optarg);
			break;
		case O_QPS:
			o->qps = (unsigned int)parse_num("--qps", optarg, RSWAP_MAX_QPS_PER_SESSION);
			if (!o->qps)
				usage_error("--qps 0: need at least one queue pair");
			break;
		case O_BLOCK:
			if (rswap_parse_size(optarg, &o->block) || o->block % 4096 ||
			    o->block > BATCH_BYTES)
				usage_error("--block %s: expected a multiple of 4K up to 16M",
					    optarg);
			break;
		case O_SAMPLE: o->sample = (unsigned int)parse_num("--sample", optarg, 1u << 20); break;
		case O_BAD_MAGIC: o->magic = 0xdeadbeef; break;
		case O_BAD_VERSION: o->version = 0; break;
		case O_VERSION: o->version = (uint16_t)parse_num("--version", optarg, 65535); break;
		case O_BAD_FLAGS: o->flags = 0x8000; break;
		case O_QP_COUNT: o->qp_count = (int)parse_num("--qp-count", optarg, 65535); break;
		case O_SESSION_MISMATCH: o->session_mismatch = true; break;
		case O_EXPECT_REFUSAL: o->expect_refusal = parse_reason(optarg); break;
		case O_EXPECT_COORD_ERROR: o->expect_coord_error = true; break;
		case 'v': o->verbose = 1; break;
		case 'h': usage(stdout); exit(0);
		case ':': usage_error("%s needs a value", argv[optind - 1]);
		default: usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		usage_error("expected exactly one mode: write, verify, release, connect, map, "
			    "steal, register or fake-coord");
	mode = argv[optind];
	if (strcmp(mode, "write") && strcmp(mode, "verify") && strcmp(mode, "release") &&
	    strcmp(mode, "connect") && strcmp(mode, "map") && strcmp(mode, "register") &&
	    strcmp(mode, "fake-coord") && strcmp(mode, "steal"))
		usage_error("unknown mode '%s'", mode);
	if (!strcmp(mode, "fake-coord")) {
		if (!o->as)
			usage_error("fake-coord needs --as ADDR:PORT to listen on");
		return mode;
	}
	if (!strcmp(mode, "register")) {
		if (!o->as || !o->coord || !o->size)
			usage_error("register needs --coord, --as ADDR:PORT and --size");
		return mode;
	}
	if (!o->id || !*o->id || strlen(o->id) > RSWAP_CLIENT_ID_LEN)
		usage_error("--id ID (1..%d characters) is required", RSWAP_CLIENT_ID_LEN);
	if (o->expect_revoked && !o->hold_s)
		usage_error("--expect-revoked needs --hold SEC");
	o->steal = !strcmp(mode, "steal");
	if (o->steal != (have_addr && have_rkey) || (!o->steal && (have_addr || have_rkey)))
		usage_error("the steal mode needs --steal-addr and --steal-rkey, and only it");
	if (o->forge_proof && o->no_proof)
		usage_error("--forge-proof and --no-proof exclude each other");
	if ((o->forge_proof || o->no_proof) && strcmp(mode, "connect"))
		usage_error("--forge-proof and --no-proof go with the connect mode");
	if (o->poold && strcmp(mode, "connect") && !o->steal)
		usage_error("--poold only goes with the connect and steal modes");
	if (!o->poold && !o->coord)
		usage_error("--coord HOST:PORT is required");
	if (!o->poold && strcmp(mode, "release") && !o->size)
		usage_error("--size SIZE is required");
	/* A READ on queue pair 0, a WRITE on queue pair 1. */
	if (o->steal && o->qps < 2)
		o->qps = 2;
	/* A forged count still opens one queue pair: the first is what is refused. */
	if (o->qp_count >= 0 && !o->session_mismatch)
		o->qps = 1;
	if (o->session_mismatch && o->qps < 2)
		o->qps = 2;
	return mode;
}

/* A 64-bit mix (splitmix64's finalizer): every word differs, none repeats. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t id_seed(const char *id)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */

	while (*id) {
		h ^= (uint8_t)*id++;
		h *= 0x100000001b3ull;
	}
	return h;
}

static void fill_pattern(uint64_t seed, uint32_t slot, uint64_t off, uint8_t *buf,
			 uint64_t len)
{
	uint64_t base = seed ^ mix64(slot + 1ull), i, w;

	for (i = 0; i < len; i += 8) {
		w = mix64(base ^ (off + i));
		memcpy(buf + i, &w, 8);
	}
}

static int check_pattern(uint64_t seed, const struct tc_slot *s, uint64_t off,
			 const uint8_t *buf, uint64_t len)
{
	uint64_t base = seed ^ mix64(s->index + 1ull), i, w, got;

	for (i = 0; i < len; i += 8) {
		w = mix64(base ^ (off + i));
		memcpy(&got, buf + i, 8);
		if (got != w) {
			log_err("data mismatch in slot %u (poold %s) at offset %#llx: "
				"expected %016llx, read %016llx", s->index, s->poold_addr,
				(unsigned long long)(off + i), (unsigned long long)w,
				(unsigned long long)got);
			return -EIO;
		}
	}
	return 0;
}

/* Remote offsets to test in one chunk: all blocks, or an even sample. */
static uint64_t *chunk_offsets(const struct tc_opts *o, uint64_t chunk_size,
			       unsigned int *n)
{
	uint64_t nblocks = chunk_size / o->block, i;
	unsigned int sample = o->sample;
	uint64_t *offs;

	if (sample == SAMPLE_AUTO)
		sample = chunk_size > FULL_CHUNK_MAX ? SAMPLE_DEFAULT : 0;
	*n = (unsigned int)(sample && sample < nblocks ? sample : nblocks);
	offs = calloc(*n, sizeof(*offs));
	if (!offs)
		return NULL;
	for (i = 0; i < *n; i++)
		offs[i] = (*n == nblocks ? i : i * (nblocks - 1) / (*n > 1 ? *n - 1 : 1)) *
			  o->block;
	return offs;
}

static int test_slot(const struct tc_opts *o, struct tc_dev *dev,
		     const struct tc_map *map, const struct tc_slot *s, bool write)
{
	uint64_t seed = id_seed(o->id), *offs;
	unsigned int n, first, batch = (unsigned int)(dev->buflen / o->block), j, k;
	int ret = 0;

	offs = chunk_offsets(o, map->chunk_size, &n);
	if (!offs)
		return -ENOMEM;
	for (first = 0; first < n && !ret; first += batch) {
		k = n - first < batch ? n - first : batch;
		if (write) {
			for (j = 0; j < k; j++)
				fill_pattern(seed, s->index, offs[first + j],
					     dev->wbuf + j * o->block, o->block);
			ret = tc_poold_io(o, dev, s->poold, s, offs + first, k, true);
			if (ret)
				break;
		}
		memset(dev->rbuf, 0, (size_t)k * o->block);
		ret = tc_poold_io(o, dev, s->poold, s, offs + first, k, false);
		for (j = 0; j < k && !ret; j++)
			ret = check_pattern(seed, s, offs[first + j],
					    dev->rbuf + j * o->block, o->block);
	}
	free(offs);
	return ret;
}

/* Distinct poolds of the map, in first-appearance order. */
static struct tc_poold *group_poolds(const struct tc_opts *o, struct tc_map *map,
				     unsigned int *npoolds)
{
	struct tc_poold *pos = calloc(map->nslots ? map->nslots : 1, sizeof(*pos));
	unsigned int i, j, n = 0;

	if (!pos)
		return NULL;
	for (i = 0; i < map->nslots; i++) {
		for (j = 0; j < n; j++)
			if (!strcmp(pos[j].addr, map->slots[i].poold_addr))
				break;
		if (j == n) {
			snprintf(pos[n].addr, sizeof(pos[n].addr), "%s",
				 map->slots[i].poold_addr);
			pos[n].nqps = o->qps;
			n++;
		}
		pos[j].slots_here++;
	}
	*npoolds = n;
	return pos;
}

/* Find every slot's chunk in its poold's table. */
static int match_slots(struct tc_map *map, struct tc_poold *pos, unsigned int npoolds)
{
	unsigned int i, j, d;

	for (i = 0; i < map->nslots; i++) {
		struct tc_slot *s = &map->slots[i];

		for (j = 0; j < npoolds; j++)
			if (!strcmp(pos[j].addr, s->poold_addr))
				break;
		s->poold = &pos[j];
		for (d = 0; d < pos[j].ndescs; d++)
			if (pos[j].descs[d].handle == s->handle)
				break;
		if (d == pos[j].ndescs) {
			log_err("slot %u: poold %s did not list chunk %#llx in its table",
				i, s->poold_addr, (unsigned long long)s->handle);
			return -ENOENT;
		}
		if (pos[j].descs[d].len != map->chunk_size) {
			log_err("slot %u: poold %s gives chunk %#llx %llu bytes, the map "
				"says %llu", i, s->poold_addr, (unsigned long long)s->handle,
				(unsigned long long)pos[j].descs[d].len,
				(unsigned long long)map->chunk_size);
			return -EPROTO;
		}
		s->addr = pos[j].descs[d].addr;
		s->rkey = pos[j].descs[d].rkey;
	}
	return 0;
}

static int connect_all(const struct tc_opts *o, struct tc_dev *dev,
		       struct tc_poold *pos, unsigned int npoolds)
{
	unsigned int i, refused = 0;
	int ret, first_err = 0;

	for (i = 0; i < npoolds; i++) {
		ret = tc_poold_connect(o, dev, &pos[i]);
		if (ret && pos[i].refused >= 0)
			refused++;
		if (ret && !first_err)
			first_err = ret;
		if (ret && o->expect_refusal < 0)
			return ret;
	}
	if (o->expect_refusal < 0)
		return 0;
	for (i = 0; i < npoolds; i++) {
		if (pos[i].refused != o->expect_refusal) {
			log_err("poold %s: expected refusal %s, got %s", pos[i].addr,
				rej_names[o->expect_refusal].name,
				pos[i].refused < 0 ? (first_err ? "another failure" : "accepted") :
				rswap_rej_reason_name(pos[i].refused));
			return -EPROTO;
		}
	}
	log_info("every poold (%u) refused as expected: %s", refused,
		 rej_names[o->expect_refusal].name);
	return 1;	/* refused as expected: nothing more to do */
}

/* An Error reply (a positive errno from the coordinator) is what we want. */
static int expect_coord_refusal(int ret)
{
	if (ret && ret != -ECONNREFUSED && ret != -ECONNRESET &&
	    ret != -ETIMEDOUT && ret != -EPROTO && ret != -EAGAIN) {
		log_info("coordinator refused as expected");
		return 0;
	}
	log_err("expected the coordinator to refuse, but %s",
		ret ? "the request failed otherwise" : "it accepted");
	return -EPROTO;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * --hold: stay connected until a poold disconnects us or the time is up,
 * then, if still connected, read every chunk again.  With --expect-revoked, success is that
 * access ended (a disconnect, or the reads fail): a read of one block of
 * every slot, twice a second, tells it early (a poold that frees a chunk
 * revokes its rkey and keeps the session).
 */
static int hold_and_reread(const struct tc_opts *o, struct tc_dev *dev,
			   struct tc_map *map, struct tc_poold *pos,
			   unsigned int npoolds)
{
	double end = now_s() + o->hold_s;
	struct timespec nap = { .tv_nsec = 100 * 1000 * 1000 };
	bool gone = false, failed = false;
	unsigned int i, tick = 0;
	uint64_t zero = 0;
	int ret = 0;

	log_info("holding the connections for up to %u s", o->hold_s);
	while (!gone && !failed && now_s() < end) {
		for (i = 0; i < npoolds; i++) {
			if (tc_poold_disconnected(&pos[i])) {
				log_info("poold %s disconnected the session", pos[i].addr);
				gone = true;
			}
		}
		for (i = 0; o->expect_revoked && !gone && !(++tick % 5) &&
			    i < map->nslots && !failed; i++)
			failed = tc_poold_io(o, dev, map->slots[i].poold, &map->slots[i],
					     &zero, 1, false) != 0;
		nanosleep(&nap, NULL);
	}
	if (failed) {
		log_info("access ended as expected (reads fail)");
		return 0;
	}
	/* A disconnected QP has nothing more to say; read only if still up. */
	for (i = 0; i < map->nslots && !ret && !gone; i++)
		ret = test_slot(o, dev, map, &map->slots[i], false);
	if (!o->expect_revoked) {
		if (gone)
			return -ECONNRESET;
		if (!ret)
			log_info("still connected after %u s: data intact", o->hold_s);
		return ret;
	}
	if (gone || ret) {
		log_info("access ended as expected (%s)", gone ? "disconnected" : "reads fail");
		return 0;
	}
	log_err("access to the chunks was not revoked within %u s", o->hold_s);
	return -EPROTO;
}

static int run_data(const struct tc_opts *o, const char *mode)
{
	struct tc_map map = { 0 };
	struct tc_dev dev = { 0 };
	struct tc_poold *pos = NULL;
	unsigned int npoolds = 0, i;
	bool write = !strcmp(mode, "write");
	char a[16], b[16];
	double t0;
	int ret;

	/* steal --poold with --coord and --size: get chunks there first. */
	if (!o->poold || (o->steal && o->coord && o->size)) {
		ret = tc_coord_hello(o, &map);
		if (o->expect_coord_error) {
			free(map.slots);
			return expect_coord_refusal(ret);
		}
		if (ret)
			return ret;
		log_info("map for %s: %s in %u chunks of %s", o->id,
			 rswap_fmt_size(map.size, a, sizeof(a)), map.nslots,
			 rswap_fmt_size(map.chunk_size, b, sizeof(b)));
		for (i = 0; i < map.nslots; i++)
			rswap_log(strcmp(mode, "map") ? RSWAP_LOG_DEBUG : RSWAP_LOG_INFO,
				  "  slot %u: poold %s chunk %#llx", i,
				  map.slots[i].poold_addr,
				  (unsigned long long)map.slots[i].handle);
		if (!strcmp(mode, "map")) {
			free(map.slots);
			return o->hold_coord_s ? tc_coord_hold(o) : 0;
		}
	}
	if (o->poold) {
		pos = calloc(1, sizeof(*pos));
		if (!pos) {
			free(map.slots);
			return -ENOMEM;
		}
		snprintf(pos->addr, sizeof(pos->addr), "%s", o->poold);
		pos->nqps = o->qps;
		npoolds = 1;
	} else {
		pos = group_poolds(o, &map, &npoolds);
		if (!pos) {
			free(map.slots);
			return -ENOMEM;
		}
	}
	dev.buflen = map.chunk_size && map.chunk_size < BATCH_BYTES ? map.chunk_size :
								    BATCH_BYTES;
	if (dev.buflen < o->block)
		dev.buflen = o->block;
	dev.wbuf = aligned_alloc(4096, dev.buflen);
	dev.rbuf = aligned_alloc(4096, dev.buflen);
	if (!dev.wbuf || !dev.rbuf) {
		ret = -ENOMEM;
		goto out_close;
	}
	ret = connect_all(o, &dev, pos, npoolds);
	if (ret)
		goto out_close;
	if (o->steal) {
		for (i = 0; i < npoolds; i++) {
			int r = tc_poold_steal(o, &dev, &pos[i], o->block);

			if (r && !ret)
				ret = r;
		}
		goto out_close;
	}
	if (o->poold || !strcmp(mode, "connect")) {
		ret = o->poold ? 0 : match_slots(&map, pos, npoolds);
		if (!ret)
			log_info("connected: %u poolds, every chunk found in its table", npoolds);
		goto out_close;
	}
	ret = match_slots(&map, pos, npoolds);
	if (ret)
		goto out_close;
	t0 = now_s();
	for (i = 0; i < map.nslots && !ret; i++) {
		ret = test_slot(o, &dev, &map, &map.slots[i], write);
		if (!ret)
			log_debug("slot %u on %s %s", i, map.slots[i].poold_addr,
				  write ? "written and verified" : "verified");
	}
	if (!ret)
		log_info("%s %u chunks (%s) on %u poolds in %.1f s: data intact",
			 write ? "wrote and verified" : "verified", map.nslots,
			 rswap_fmt_size(map.size, a, sizeof(a)), npoolds, now_s() - t0);
	if (!ret && o->hold_s)
		ret = hold_and_reread(o, &dev, &map, pos, npoolds);
	if (!ret && o->hold_coord_s)
		ret = tc_coord_hold(o);

out_close:
	for (i = 0; i < npoolds; i++)
		tc_poold_close(&pos[i]);
	tc_dev_free(&dev);
	free(pos);
	free(map.slots);
	return ret == 1 ? 0 : ret;
}

int main(int argc, char **argv)
{
	struct tc_opts o = { 0 };
	const char *mode = parse_args(argc, argv, &o);
	unsigned int freed;
	int ret;

	rswap_log_init("rswap-testclient", o.verbose);
	if (!strcmp(mode, "fake-coord")) {
		ret = tc_fake_coord(&o);
	} else if (!strcmp(mode, "register")) {
		ret = tc_coord_register(&o);
		if (o.expect_coord_error)
			ret = expect_coord_refusal(ret);
		else if (!ret)
			log_info("registered as poold %s", o.as);
	} else if (!strcmp(mode, "release")) {
		ret = tc_coord_release(&o, &freed);
		if (!ret)
			log_info("released %s: %u chunks freed", o.id, freed);
	} else {
		ret = run_data(&o, mode);
	}
	if (ret)
		log_err("%s%s%s: FAILED", mode, o.id ? " " : "", o.id ? o.id : "");
	return ret ? 1 : 0;
}
