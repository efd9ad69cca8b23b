// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * rswap-admin: ask a running rswap-coord what the cluster looks like.
 *
 *   rswap-admin --coord HOST:PORT [--json] [--timeout SEC] list
 *   rswap-admin --coord HOST:PORT [--json] [--timeout SEC] status CLIENT_ID
 *   rswap-admin --coord HOST:PORT [--timeout SEC] drain POOLD [--wait]
 *   rswap-admin --coord HOST:PORT [--timeout SEC] undrain POOLD
 *   rswap-admin --coord HOST:PORT [--json] [--timeout SEC] rebalance [--dry-run] [--wait]
 *   rswap-admin keygen > /etc/rswap/cluster.key
 *
 * Exit status: 0 success, 1 error (coordinator unreachable, refused, timed
 * out, a move that failed under --wait), 2 bad usage.
 */
#include "auth.h"
#include "rswap_frame.h"
#include "rswap_util.h"
#include "rswap.pb-c.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#define PROG		"rswap-admin"
#define ID_MAX		31
#define DEFAULT_KEY_FILE	"/etc/rswap/cluster.key"

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

struct admin_opts {
	const char *coord;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool json;
	unsigned int timeout_s;
	const char *cmd;
	const char *client_id;
	const char *poold;	/* drain, undrain */
	bool wait;		/* drain, rebalance --wait */
	bool dry_run;		/* rebalance --dry-run */
	bool have_key;
	uint8_t key[RSWAP_KEY_LEN];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " --coord HOST:PORT [--json] [--timeout SEC] list\n"
		"       " PROG " --coord HOST:PORT [--json] [--timeout SEC] status CLIENT_ID\n"
		"       " PROG " --coord HOST:PORT [--timeout SEC] drain POOLD [--wait]\n"
		"       " PROG " --coord HOST:PORT [--timeout SEC] undrain POOLD\n"
		"       " PROG " --coord HOST:PORT [--json] [--timeout SEC] rebalance [--dry-run] [--wait]\n"
		"       " PROG " keygen > FILE\n\n"
		"  -c, --coord HOST:PORT   the coordinator (port defaults to %d)\n"
		"  -j, --json              machine-readable output\n"
		"  -t, --timeout SEC       give up on the coordinator after SEC seconds (1-3600). Default: 5\n"
		"  -k, --key-file FILE     the cluster key. Default: " DEFAULT_KEY_FILE " if it exists\n"
		"  -h, --help              show this help\n\n"
		"  list                    every poold, every client's chunk map (epoch, lost\n"
		"                          slots, unresolved copies), moves and their jobs\n"
		"  status CLIENT_ID        one client's chunk map\n"
		"  drain POOLD [--wait]    place no new chunks on POOLD (HOST:PORT as list\n"
		"                          shows it) and move its chunks, live, to the least\n"
		"                          used other poolds (each client copies its own)\n"
		"  undrain POOLD           POOLD takes new chunks again\n"
		"  rebalance [--dry-run]   move chunks so that every live poold is within one\n"
		"                          chunk of its share (draining poolds: none);\n"
		"                          --dry-run only shows the moves\n"
		"  --wait                  (drain, rebalance) follow the moves until they end:\n"
		"                          a progress line on a terminal, else a line every\n"
		"                          few seconds; exit 0 only if every move completed\n"
		"                          (drain: the poold holds nothing), else 1 with the\n"
		"                          reason\n"
		"  keygen                  a new cluster key on standard output (64 hex\n"
		"                          digits); a file it is redirected to is made 0600\n\n"
		"Maintenance of a memory node: drain POOLD --wait, stop and upgrade its\n"
		"poold, start it, undrain it, rebalance --wait.  Moves need each client's\n"
		"live session.  See docs/DEPLOY.md.\n",
		RSWAP_DEFAULT_COORD_PORT);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return EXIT_USAGE;
}

static bool valid_client_id(const char *id)
{
	size_t n;

	for (n = 0; id[n]; n++)
		if (n >= ID_MAX || !isgraph((unsigned char)id[n]))
			return false;
	return n > 0;
}

/* Strings from the network are printed only up to their first
 * non-printable byte, so a peer cannot garble the terminal. */
static int printable_len(const char *s)
{
	int n = 0;

	while (s && isprint((unsigned char)s[n]) && n < 512)
		n++;
	return n;
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct admin_opts *o)
{
	static const struct option lopts[] = {
		{ "coord", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "wait", no_argument, NULL, 'w' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *why;
	unsigned long v;
	char *end;
	int ch;

	memset(o, 0, sizeof(*o));
	o->timeout_s = 5;
	opterr = 0;
	const char *key_file = NULL;
	char kwhy[256];

	while ((ch = getopt_long(argc, argv, ":c:jt:hwnk:", lopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (rswap_parse_hostport(optarg, RSWAP_DEFAULT_COORD_PORT,
						 &o->addr, &o->addrlen, &why))
				return usage_error("--coord %s: %s", optarg, why);
			o->coord = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 't':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (!isdigit((unsigned char)optarg[0]) || *end || errno ||
			    v < 1 || v > 3600)
				return usage_error("--timeout %s: must be a number of seconds from 1 to 3600",
						   optarg);
			o->timeout_s = (unsigned int)v;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'w':
			o->wait = true;
			break;
		case 'n':
			o->dry_run = true;
			break;
		case 'k':
			key_file = optarg;
			break;
		case ':':
			return usage_error("%s needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option %s (see --help)",
					   argv[optind - 1]);
		}
	}
	if (!o->coord)
		return usage_error("--coord HOST:PORT is required");
	if (!key_file && !access(DEFAULT_KEY_FILE, F_OK))
		key_file = DEFAULT_KEY_FILE;
	if (key_file) {
		if (rswap_key_load(key_file, o->key, kwhy, sizeof(kwhy)))
			return usage_error("%s", kwhy);
		o->have_key = true;
	}
	if (optind >= argc)
		return usage_error("missing command: list, status, drain, undrain, rebalance or keygen");
	o->cmd = argv[optind++];
	if (o->wait && strcmp(o->cmd, "drain") && strcmp(o->cmd, "rebalance"))
		return usage_error("--wait goes with drain or rebalance only");
	if (o->dry_run && strcmp(o->cmd, "rebalance"))
		return usage_error("--dry-run goes with rebalance only");
	if (!strcmp(o->cmd, "keygen"))
		return usage_error("keygen takes no option: rswap-admin keygen > FILE");
	if (!strcmp(o->cmd, "list") || !strcmp(o->cmd, "rebalance")) {
		if (optind < argc)
			return usage_error("%s takes no argument, got '%s'", o->cmd, argv[optind]);
		if (o->dry_run && o->wait)
			return usage_error("--wait follows moves; a --dry-run moves nothing");
		return -1;
	}
	if (!strcmp(o->cmd, "drain") || !strcmp(o->cmd, "undrain")) {
		if (optind >= argc)
			return usage_error("%s needs a POOLD (HOST:PORT as list shows it)", o->cmd);
		o->poold = argv[optind++];
		if (!*o->poold || strlen(o->poold) > 127)
			return usage_error("poold address '%s' is not HOST:PORT", o->poold);
		if (optind < argc)
			return usage_error("%s takes one POOLD, got also '%s'", o->cmd, argv[optind]);
		return -1;
	}
	if (strcmp(o->cmd, "status"))
		return usage_error("unknown command '%s' (list, status, drain, undrain or rebalance)", o->cmd);
	if (optind >= argc)
		return usage_error("status needs a CLIENT_ID");
	o->client_id = argv[optind++];
	if (!valid_client_id(o->client_id))
		return usage_error("client id '%s' is invalid: 1 to %d printable characters without spaces",
				   o->client_id, ID_MAX);
	if (optind < argc)
		return usage_error("status takes one CLIENT_ID, got also '%s'", argv[optind]);
	return -1;
}

/* Connect with send/receive timeouts set first (Linux applies the send
 * timeout to connect() too).  Returns the fd or -1 after printing why. */
static int coord_connect(const struct admin_opts *o)
{
	struct timeval tv = { (time_t)o->timeout_s, 0 };
	char why[300];
	int fd, err;

	fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, PROG ": cannot create a socket: %s\n", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&o->addr, o->addrlen)) {
		err = errno;
		if (err == EINPROGRESS || err == EAGAIN || err == ETIMEDOUT)
			fprintf(stderr, PROG ": cannot reach coordinator %s: no answer within %u s — is the address right?\n",
				o->coord, o->timeout_s);
		else
			fprintf(stderr, PROG ": cannot reach coordinator %s: %s — is rswap-coord running?\n",
				o->coord, strerror(err));
		close(fd);
		return -1;
	}
	if (rswap_auth_handshake_fd(fd, o->have_key ? o->key : NULL, RSWAP_AUTH_ROLE_ADMIN,
				    PROG, why, sizeof(why))) {
		fprintf(stderr, PROG ": coordinator %s %s\n", o->coord, why);
		close(fd);
		return -1;
	}
	return fd;
}

/* One request, one reply of the expected kind.  NULL after printing why. */
static Rswap__Envelope *exchange(const struct admin_opts *o, int fd,
				 Rswap__Envelope *req,
				 Rswap__Envelope__BodyCase want)
{
	Rswap__Envelope *rep = NULL;
	const char *why;
	int ret;

	req->version = RSWAP_PROTO_VERSION;
	req->seq = 1;
	ret = rswap_frame_send_fd(fd, req);
	if (ret) {
		fprintf(stderr, PROG ": cannot send to coordinator %s: %s\n", o->coord,
			ret == -EAGAIN ? "timed out" : strerror(-ret));
		return NULL;
	}
	ret = rswap_frame_recv_fd(fd, &rep, &why);
	if (ret == -EAGAIN || ret == -EWOULDBLOCK) {
		fprintf(stderr, PROG ": coordinator %s did not answer within %u s\n",
			o->coord, o->timeout_s);
		return NULL;
	}
	if (ret) {
		fprintf(stderr, PROG ": bad reply from coordinator %s: %s\n", o->coord,
			ret == -EPROTO || ret == -ECONNRESET ? why : strerror(-ret));
		return NULL;
	}
	if (rep->body_case == RSWAP__ENVELOPE__BODY_ERROR) {
		int code = rep->error->code;

		fprintf(stderr, PROG ": coordinator %s refused: %.*s (%s)\n", o->coord,
			printable_len(rep->error->reason), rep->error->reason,
			code > 0 ? strerror(code) : "unknown error");
		goto out_free;
	}
	if (rep->body_case != want || rep->seq != req->seq) {
		fprintf(stderr, PROG ": coordinator %s sent an unexpected reply (message %d, seq %" PRIu64 ")\n",
			o->coord, (int)rep->body_case, rep->seq);
		goto out_free;
	}
	return rep;
out_free:
	rswap__envelope__free_unpacked(rep, NULL);
	return NULL;
}

/* ---- JSON -------------------------------------------------------------- */

static void json_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	putchar('"');
	for (; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", stdout); break;
		case '\\': fputs("\\\\", stdout); break;
		case '\n': fputs("\\n", stdout); break;
		case '\r': fputs("\\r", stdout); break;
		case '\t': fputs("\\t", stdout); break;
		default:
			/* Bytes >= 0x80 too: the output stays valid JSON
			 * whatever a peer put in a string. */
			if (*p < 0x20 || *p >= 0x7f)
				printf("\\u%04x", *p);
			else
				putchar(*p);
		}
	}
	putchar('"');
}

static const char *state_name(Rswap__PooldState s)
{
	switch (s) {
	case RSWAP__POOLD_STATE__POOLD_ALIVE: return "alive";
	case RSWAP__POOLD_STATE__POOLD_SUSPECT: return "suspect";
	case RSWAP__POOLD_STATE__POOLD_DEAD: return "dead";
	default: return "unknown";
	}
}

static void json_move(size_t i, const Rswap__MoveInfo *m);

static const char *health_name(Rswap__SlotHealth h)
{
	switch (h) {
	case RSWAP__SLOT_HEALTH__SLOT_HEALTHY: return "healthy";
	case RSWAP__SLOT_HEALTH__SLOT_DEGRADED: return "degraded";
	case RSWAP__SLOT_HEALTH__SLOT_LOST: return "lost";
	default: return "unknown";
	}
}

/* ",\"health\":...,\"copies\":[...]" of a slot. */
static void json_copies(const Rswap__Slot *sl)
{
	size_t j;

	printf(",\"health\":\"%s\",\"copies\":[", health_name(sl->health));
	for (j = 0; j < sl->n_copies; j++) {
		printf("%s{\"poold\":", j ? "," : "");
		json_str(sl->copies[j]->poold_addr);
		printf(",\"handle\":%" PRIu64 ",\"stale\":%s,\"lost\":%s}",
		       sl->copies[j]->handle, sl->copies[j]->stale ? "true" : "false",
		       sl->copies[j]->lost ? "true" : "false");
	}
	putchar(']');
}

static void json_client(const Rswap__ClientInfo *ci)
{
	const Rswap__ChunkMap *m = ci->map;
	size_t i;

	printf("{\"client_id\":");
	json_str(ci->client_id);
	printf(",\"session\":");
	json_str(ci->session ? ci->session : "");
	printf(",\"size\":%" PRIu64 ",\"chunk_size\":%" PRIu64 ",\"epoch\":%" PRIu64
	       ",\"lost_chunks\":%" PRIu32 ",\"replicas\":%" PRIu32
	       ",\"degraded_chunks\":%" PRIu32 ",\"stale_copies\":%" PRIu32 ",\"slots\":[",
	       m ? m->size : 0, m ? m->chunk_size : 0, ci->epoch, ci->lost_chunks,
	       ci->replicas ? ci->replicas : 1, ci->degraded_chunks, ci->stale_copies);
	for (i = 0; m && i < m->n_slots; i++) {
		printf("%s{\"index\":%" PRIu32 ",\"poold\":", i ? "," : "",
		       m->slots[i]->index);
		json_str(m->slots[i]->poold_addr);
		printf(",\"handle\":%" PRIu64 ",\"lost\":%s", m->slots[i]->handle,
		       m->slots[i]->lost ? "true" : "false");
		json_copies(m->slots[i]);
		putchar('}');
	}
	printf("],\"unresolved\":[");
	for (i = 0; i < ci->n_unresolved; i++) {
		printf("%s{\"index\":%" PRIu32 ",\"poold\":", i ? "," : "",
		       ci->unresolved[i]->index);
		json_str(ci->unresolved[i]->poold_addr);
		printf(",\"handle\":%" PRIu64 "}", ci->unresolved[i]->handle);
	}
	printf("],\"moves\":[");
	for (i = 0; i < ci->n_moves; i++)
		json_move(i, ci->moves[i]);
	printf("]}");
}

static const char *move_step_name(Rswap__MoveStep st)
{
	switch (st) {
	case RSWAP__MOVE_STEP__MOVE_QUEUED: return "queued";
	case RSWAP__MOVE_STEP__MOVE_ALLOCATING: return "allocating";
	case RSWAP__MOVE_STEP__MOVE_COPYING: return "copying";
	case RSWAP__MOVE_STEP__MOVE_WAITING: return "waiting-for-client";
	default: return "unknown";
	}
}

/* The i-th move of a JSON list, open for more fields. */
static void json_move_head(size_t i, const char *client_id, uint32_t slot,
			   const char *from, const char *to)
{
	printf("%s{\"client_id\":", i ? "," : "");
	json_str(client_id);
	printf(",\"slot\":%" PRIu32 ",\"from\":", slot);
	json_str(from);
	printf(",\"to\":");
	json_str(to);
}

static void json_move(size_t i, const Rswap__MoveInfo *m)
{
	json_move_head(i, m->client_id, m->slot, m->from_poold, m->to_poold);
	printf(",\"state\":\"%s\",\"copied\":%" PRIu64 ",\"chunk_size\":%" PRIu64
	       ",\"running_ms\":%" PRIu64 ",\"job\":%" PRIu64 ",\"resync\":%s}",
	       move_step_name(m->state), m->copied, m->chunk_size, m->running_ms, m->job,
	       m->resync ? "true" : "false");
}

static void json_moves(const Rswap__ClusterState *cs)
{
	size_t i;

	printf(",\"moves_total\":%" PRIu32 ",\"moves_done\":%" PRIu64
	       ",\"moves_failed\":%" PRIu64 ",\"bytes_moved\":%" PRIu64 ",\"moves\":[",
	       cs->moves_total, cs->moves_done, cs->moves_failed, cs->bytes_moved);
	for (i = 0; i < cs->n_moves; i++)
		json_move(i, cs->moves[i]);
	printf("],\"jobs\":[");
	for (i = 0; i < cs->n_jobs; i++) {
		const Rswap__MoveJob *j = cs->jobs[i];

		printf("%s{\"id\":%" PRIu64 ",\"kind\":", i ? "," : "", j->id);
		json_str(j->kind);
		printf(",\"poold\":");
		json_str(j->poold);
		printf(",\"total\":%" PRIu32 ",\"done\":%" PRIu32 ",\"failed\":%" PRIu32
		       ",\"bytes_moved\":%" PRIu64 ",\"running_ms\":%" PRIu64 ",\"last_error\":",
		       j->total, j->done, j->failed, j->bytes_moved, j->running_ms);
		json_str(j->last_error);
		putchar('}');
	}
	putchar(']');
}

static void json_cluster(const Rswap__ClusterState *cs)
{
	size_t i;

	printf("{\"chunk_size\":%" PRIu64 ",\"capacity_total\":%" PRIu64
	       ",\"used_total\":%" PRIu64 ",\"poolds\":[",
	       cs->chunk_size, cs->capacity_total, cs->used_total);
	for (i = 0; i < cs->n_poolds; i++) {
		const Rswap__PooldInfo *p = cs->poolds[i];

		printf("%s{\"listen_addr\":", i ? "," : "");
		json_str(p->listen_addr);
		printf(",\"capacity\":%" PRIu64 ",\"chunks_total\":%" PRIu32
		       ",\"chunks_used\":%" PRIu32 ",\"state\":\"%s\",\"draining\":%s"
		       ",\"ms_since_heartbeat\":%" PRIu32 ",\"clients_connected\":%" PRIu32
		       ",\"incarnation\":\"%016" PRIx64 "\",\"moves_out\":%" PRIu32
		       ",\"moves_in\":%" PRIu32 ",\"zone\":",
		       p->capacity, p->chunks_total, p->chunks_used, state_name(p->state),
		       p->draining ? "true" : "false", p->ms_since_heartbeat,
		       p->clients_connected, p->incarnation, p->moves_out, p->moves_in);
		json_str(p->zone ? p->zone : "");
		putchar('}');
	}
	printf("],\"clients\":[");
	for (i = 0; i < cs->n_clients; i++) {
		if (i)
			putchar(',');
		json_client(cs->clients[i]);
	}
	putchar(']');
	json_moves(cs);
	printf("}\n");
}

/* ---- human ------------------------------------------------------------- */

/* "chunks per poold: A 3, B 2" in map order.  A slot counts towards the
 * first slot with the same poold, so no allocation is needed. */
static void print_spread(const Rswap__ChunkMap *m)
{
	size_t i, j, n;

	if (!m->n_slots)
		return;
	printf("  chunks per poold:");
	for (i = 0; i < m->n_slots; i++) {
		const char *a = m->slots[i]->poold_addr ? m->slots[i]->poold_addr : "";

		for (j = 0; j < i; j++)
			if (m->slots[j]->poold_addr &&
			    !strcmp(m->slots[j]->poold_addr, a))
				break;
		if (j < i)
			continue;	/* counted with its first slot */
		for (n = 0, j = i; j < m->n_slots; j++)
			n += m->slots[j]->poold_addr &&
			     !strcmp(m->slots[j]->poold_addr, a);
		printf("%s %.*s %zu", i ? "," : "", printable_len(a), a, n);
	}
	printf("\n");
}

static void print_move(const Rswap__MoveInfo *m);

/* "  slot 3     degraded  -> A handle 7, B handle 9 STALE" */
static void print_copies(const Rswap__Slot *sl)
{
	size_t j;

	printf("  slot %-5" PRIu32 " %-8s ->", sl->index, health_name(sl->health));
	for (j = 0; j < sl->n_copies; j++) {
		const Rswap__Copy *cp = sl->copies[j];

		printf("%s %.*s handle %" PRIu64 "%s", j ? "," : "",
		       printable_len(cp->poold_addr), cp->poold_addr, cp->handle,
		       cp->lost ? " LOST" : cp->stale ? " STALE" : "");
	}
	printf("\n");
}

static void print_map(const Rswap__ClientInfo *ci)
{
	const Rswap__ChunkMap *m = ci->map;
	uint64_t need = 0;
	char sz[16], csz[16];
	size_t i;

	if (!m) {
		printf("client %.*s: no map\n", printable_len(ci->client_id), ci->client_id);
		return;
	}
	if (m->chunk_size)
		need = m->size / m->chunk_size + !!(m->size % m->chunk_size);
	printf("client %.*s: %s in %" PRIu64 " chunk%s of %s, %zu known%s, epoch %" PRIu64 "%s",
	       printable_len(ci->client_id), ci->client_id,
	       rswap_fmt_size(m->size, sz, sizeof(sz)), need, need == 1 ? "" : "s",
	       rswap_fmt_size(m->chunk_size, csz, sizeof(csz)), m->n_slots,
	       m->n_slots < need ? " (INCOMPLETE)" : "", ci->epoch,
	       ci->lost_chunks ? ", " : "\n");
	if (ci->lost_chunks)
		printf("%" PRIu32 " LOST\n", ci->lost_chunks);
	if (ci->replicas > 1)
		printf("  replicas: %" PRIu32 " copies per chunk, %" PRIu32 " degraded chunk%s, %"
		       PRIu32 " stale cop%s\n", ci->replicas, ci->degraded_chunks,
		       ci->degraded_chunks == 1 ? "" : "s", ci->stale_copies,
		       ci->stale_copies == 1 ? "y" : "ies");
	if (ci->session && *ci->session)
		printf("  session: live, from %.*s\n", printable_len(ci->session),
		       ci->session);
	else
		printf("  session: none (chunks kept for the host's return)\n");
	for (i = 0; i < m->n_slots; i++) {
		const Rswap__Slot *sl = m->slots[i];

		if (sl->n_copies) {
			print_copies(sl);
			continue;
		}
		printf("  slot %-5" PRIu32 " -> %-24.*s handle %" PRIu64 "%s\n",
		       sl->index, printable_len(sl->poold_addr), sl->poold_addr,
		       sl->handle, sl->lost ? "  LOST (its memory is gone)" : "");
	}
	for (i = 0; i < ci->n_unresolved; i++)
		printf("  slot %-5" PRIu32 "    %-24.*s handle %" PRIu64
		       "  UNRESOLVED copy (kept until the client reconnects)\n",
		       ci->unresolved[i]->index,
		       printable_len(ci->unresolved[i]->poold_addr),
		       ci->unresolved[i]->poold_addr, ci->unresolved[i]->handle);
	print_spread(m);
	for (i = 0; i < ci->n_moves; i++)
		print_move(ci->moves[i]);
}

/* "  move client c1 slot 3: A -> B copying 4M/16M (25%) for 3.2s, job 1" */
static void print_move(const Rswap__MoveInfo *m)
{
	char a[16], b[16];

	printf("  %s client %.*s slot %" PRIu32 ": %.*s -> %.*s %s",
	       m->resync ? "resync" : "move", printable_len(m->client_id), m->client_id,
	       m->slot, printable_len(m->from_poold), m->from_poold,
	       printable_len(m->to_poold), m->to_poold, move_step_name(m->state));
	if (m->state == RSWAP__MOVE_STEP__MOVE_COPYING ||
	    m->state == RSWAP__MOVE_STEP__MOVE_WAITING)
		printf(" %s/%s (%u%%)", rswap_fmt_size(m->copied, a, sizeof(a)),
		       rswap_fmt_size(m->chunk_size, b, sizeof(b)),
		       m->chunk_size ? (unsigned int)(m->copied * 100 / m->chunk_size) : 0);
	if (m->running_ms)
		printf(" for %.1fs", m->running_ms / 1000.0);
	printf(", job %" PRIu64 "\n", m->job);
}

/*
 * The moves and "  job 1 drain A: 3/5 done, 1 failed, 48M moved, finished;
 * last error: ..."
 */
static void print_moves(const Rswap__ClusterState *cs)
{
	char a[16];
	size_t i;

	if (!cs->moves_total && !cs->n_jobs && !cs->moves_done && !cs->moves_failed)
		return;
	printf("\nmoves: %" PRIu32 " queued or running, %" PRIu64 " done, %" PRIu64
	       " failed, %s moved since the coordinator started\n", cs->moves_total,
	       cs->moves_done, cs->moves_failed,
	       rswap_fmt_size(cs->bytes_moved, a, sizeof(a)));
	for (i = 0; i < cs->n_moves; i++)
		print_move(cs->moves[i]);
	if (cs->n_moves < cs->moves_total)
		printf("  ... %zu of %" PRIu32 " moves listed\n", cs->n_moves, cs->moves_total);
	for (i = 0; i < cs->n_jobs; i++) {
		const Rswap__MoveJob *j = cs->jobs[i];

		printf("  job %" PRIu64 " %.*s%s%.*s: %" PRIu32 "/%" PRIu32 " done, %" PRIu32
		       " failed, %s moved%s", j->id, printable_len(j->kind), j->kind,
		       j->poold && *j->poold ? " " : "", printable_len(j->poold), j->poold,
		       j->done, j->total, j->failed,
		       rswap_fmt_size(j->bytes_moved, a, sizeof(a)),
		       j->done + j->failed >= j->total ? ", finished" : "");
		if (j->last_error && *j->last_error)
			printf("; last error: %.*s", printable_len(j->last_error), j->last_error);
		printf("\n");
	}
}

static void print_cluster(const Rswap__ClusterState *cs)
{
	unsigned int alive = 0;
	char a[16], b[16], c[16];
	size_t i;

	printf("%-24s %-8s %-9s %6s %6s %-18s %10s %7s %-16s %s\n", "POOLD", "STATE",
	       "CAPACITY", "CHUNKS", "USED", "LOAD", "HEARTBEAT", "CLIENTS",
	       "INCARNATION", "ZONE");
	for (i = 0; i < cs->n_poolds; i++) {
		const Rswap__PooldInfo *p = cs->poolds[i];
		unsigned int pct = p->chunks_total ?
			(unsigned int)((uint64_t)p->chunks_used * 100 / p->chunks_total) : 0;
		char bar[11], state[16];
		unsigned int k, fill = pct > 100 ? 10 : pct / 10;

		for (k = 0; k < 10; k++)
			bar[k] = k < fill ? '#' : '.';
		bar[10] = '\0';
		snprintf(state, sizeof(state), "%s%s", state_name(p->state),
			 p->draining ? ",drain" : "");
		alive += p->state == RSWAP__POOLD_STATE__POOLD_ALIVE;
		printf("%-24.*s %-8s %-9s %6" PRIu32 " %6" PRIu32 " [%s] %3u%% %8.1fs %7" PRIu32
		       " %016" PRIx64 " %.*s\n",
		       printable_len(p->listen_addr), p->listen_addr, state,
		       rswap_fmt_size(p->capacity, a, sizeof(a)), p->chunks_total,
		       p->chunks_used, bar, pct, p->ms_since_heartbeat / 1000.0,
		       p->clients_connected, p->incarnation,
		       p->zone && *p->zone ? printable_len(p->zone) : 1,
		       p->zone && *p->zone ? p->zone : "-");
	}
	if (!cs->n_poolds)
		printf("(no poold registered)\n");
	printf("\n");
	for (i = 0; i < cs->n_clients; i++)
		print_map(cs->clients[i]);
	if (!cs->n_clients)
		printf("(no client)\n");
	print_moves(cs);
	printf("\ntotal: %zu poold%s (%u alive), capacity %s, used %s (%u%%), %zu client%s, chunk size %s\n",
	       cs->n_poolds, cs->n_poolds == 1 ? "" : "s", alive,
	       rswap_fmt_size(cs->capacity_total, a, sizeof(a)),
	       rswap_fmt_size(cs->used_total, b, sizeof(b)),
	       cs->capacity_total ?
			(unsigned int)(cs->used_total * 100 / cs->capacity_total) : 0,
	       cs->n_clients, cs->n_clients == 1 ? "" : "s",
	       rswap_fmt_size(cs->chunk_size, c, sizeof(c)));
}

static void print_plan(const Rswap__RebalancePlan *pl, bool json)
{
	size_t i;

	if (json) {
		printf("{\"moves_total\":%" PRIu32 ",\"chunks_on_down_poolds\":%" PRIu32
		       ",\"job\":%" PRIu64 ",\"moves\":[", pl->moves_total,
		       pl->chunks_on_down_poolds, pl->job);
		for (i = 0; i < pl->n_moves; i++) {
			const Rswap__ChunkMove *m = pl->moves[i];

			json_move_head(i, m->client_id, m->slot, m->from_poold, m->to_poold);
			putchar('}');
		}
		printf("]}\n");
		return;
	}
	for (i = 0; i < pl->n_moves; i++) {
		const Rswap__ChunkMove *m = pl->moves[i];

		printf("move client %.*s slot %" PRIu32 ": %.*s -> %.*s\n",
		       printable_len(m->client_id), m->client_id, m->slot,
		       printable_len(m->from_poold), m->from_poold,
		       printable_len(m->to_poold), m->to_poold);
	}
	if (pl->n_moves < pl->moves_total)
		printf("... %zu of %" PRIu32 " moves listed\n", pl->n_moves, pl->moves_total);
	if (pl->job)
		printf("%zu move%s queued (job %" PRIu64 ")%s\n", pl->n_moves,
		       pl->n_moves == 1 ? "" : "s", pl->job,
		       pl->chunks_on_down_poolds ? "; chunks on poolds that are down stay where they are" : "");
	else
		printf("%" PRIu32 " move%s; nothing moved (dry run)%s\n", pl->moves_total,
		       pl->moves_total == 1 ? "" : "s",
		       pl->chunks_on_down_poolds ? "; chunks on poolds that are down stay where they are" : "");
}

static const Rswap__PooldInfo *find_poold(const Rswap__ClusterState *cs,
					  const char *addr)
{
	size_t i;

	for (i = 0; i < cs->n_poolds; i++)
		if (cs->poolds[i]->listen_addr &&
		    !strcmp(cs->poolds[i]->listen_addr, addr))
			return cs->poolds[i];
	return NULL;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static const Rswap__MoveJob *find_job(const Rswap__ClusterState *cs, uint64_t id)
{
	size_t i;

	for (i = 0; i < cs->n_jobs; i++)
		if (cs->jobs[i]->id == id)
			return cs->jobs[i];
	return NULL;
}

/* The cluster state on a new connection; NULL after printing why. */
static Rswap__Envelope *fetch_state(const struct admin_opts *o)
{
	Rswap__AdminList list = RSWAP__ADMIN_LIST__INIT;
	Rswap__Envelope req = RSWAP__ENVELOPE__INIT, *rep;
	int fd = coord_connect(o);

	if (fd < 0)
		return NULL;
	req.body_case = RSWAP__ENVELOPE__BODY_ADMIN_LIST;
	req.admin_list = &list;
	rep = exchange(o, fd, &req, RSWAP__ENVELOPE__BODY_CLUSTER_STATE);
	close(fd);
	return rep;
}

/* Progress of a job: whole chunks moved plus what running moves copied. */
struct progress {
	uint32_t total, done, failed;
	uint64_t bytes, chunk_size;
};

static void job_progress(const Rswap__ClusterState *cs, const Rswap__MoveJob *j,
			 struct progress *pr)
{
	size_t i;

	pr->total = j->total;
	pr->done = j->done;
	pr->failed = j->failed;
	pr->bytes = j->bytes_moved;
	pr->chunk_size = cs->chunk_size;
	for (i = 0; i < cs->n_moves; i++)
		if (cs->moves[i]->job == j->id && cs->moves[i]->copied <= cs->chunk_size)
			pr->bytes += cs->moves[i]->copied;
}

/* "[#####.....] 3/10 chunks, 48M of 160M, 12M/s, about 9 s to go" */
static void show_progress(const struct progress *pr, double secs, bool tty)
{
	uint64_t all = (uint64_t)pr->total * pr->chunk_size;
	double rate = secs > 0 ? pr->bytes / secs : 0;
	unsigned int k, fill = all ? (unsigned int)(pr->bytes * 20 / all) : 20;
	char a[16], b[16], r[16], bar[21];

	for (k = 0; k < 20; k++)
		bar[k] = k < fill ? '#' : '.';
	bar[20] = '\0';
	fprintf(stderr, "%s[%s] %" PRIu32 "/%" PRIu32 " chunks moved%s, %s of %s, %s/s",
		tty ? "\r" : "", bar, pr->done, pr->total,
		pr->failed ? " (some failed)" : "",
		rswap_fmt_size(pr->bytes, a, sizeof(a)), rswap_fmt_size(all, b, sizeof(b)),
		rswap_fmt_size((uint64_t)rate, r, sizeof(r)));
	if (rate > 0 && all > pr->bytes)
		fprintf(stderr, ", about %.0f s to go", (all - pr->bytes) / rate);
	fprintf(stderr, tty ? "   " : "\n");
}

#define PLAIN_PROGRESS_S	5	/* seconds between lines off a terminal */

/*
 * --wait: ask for the cluster state every second until job `id` ends.
 * Drain (poold set): also the poold must end holding nothing.  On a
 * terminal (stderr) one progress line is redrawn; otherwise a line at
 * most every PLAIN_PROGRESS_S seconds.
 */
static int job_wait(const struct admin_opts *o, uint64_t id, const char *poold)
{
	bool tty = isatty(STDERR_FILENO);
	struct timespec t0, now;
	struct progress pr = { 0 };
	double secs, last_line = -PLAIN_PROGRESS_S;
	char err[300] = "";
	uint32_t held = 0;
	bool shown = false;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!interrupted) {
		const Rswap__PooldInfo *pi = NULL;
		const Rswap__MoveJob *j;
		Rswap__Envelope *rep = fetch_state(o);

		if (!rep)
			return EXIT_ERR;
		j = find_job(rep->cluster_state, id);
		if (poold) {
			pi = find_poold(rep->cluster_state, poold);
			if (!pi || !pi->draining) {
				if (shown && tty)
					fputc('\n', stderr);
				fprintf(stderr, PROG ": poold %s %s while draining\n", poold,
					pi ? "was undrained" : "is no longer registered");
				rswap__envelope__free_unpacked(rep, NULL);
				return EXIT_ERR;
			}
			held = pi->chunks_used;
		}
		if (!j) {
			rswap__envelope__free_unpacked(rep, NULL);
			if (shown && tty)
				fputc('\n', stderr);
			if (poold && !held)
				break;	/* the coordinator restarted; the poold is empty */
			fprintf(stderr, PROG ": job %" PRIu64 " is no longer listed (did the coordinator restart?); %s\n",
				id, poold ? "drain again" : "rebalance again");
			return EXIT_ERR;
		}
		job_progress(rep->cluster_state, j, &pr);
		if (j->last_error && *j->last_error)
			snprintf(err, sizeof(err), "%.*s", printable_len(j->last_error),
				 j->last_error);
		rswap__envelope__free_unpacked(rep, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		secs = (double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
		if (tty || secs - last_line >= PLAIN_PROGRESS_S ||
		    pr.done + pr.failed >= pr.total) {
			show_progress(&pr, secs, tty);
			last_line = secs;
			shown = true;
		}
		if (pr.done + pr.failed >= pr.total)
			break;
		sleep(1);
	}
	if (shown && tty)
		fputc('\n', stderr);
	if (interrupted) {
		fprintf(stderr, PROG ": interrupted; %" PRIu32 " of %" PRIu32
			" moves done, the rest go on without this command\n", pr.done, pr.total);
		return EXIT_ERR;
	}
	if (pr.failed) {
		fprintf(stderr, PROG ": %" PRIu32 " of %" PRIu32 " moves failed; last: %s\n",
			pr.failed, pr.total, err);
		return EXIT_ERR;
	}
	if (poold && held) {
		fprintf(stderr, PROG ": poold %s still holds %" PRIu32 " chunk%s (moves of another job, or copies a reconnecting client must settle); wait and drain again\n",
			poold, held, held == 1 ? "" : "s");
		return EXIT_ERR;
	}
	if (poold)
		printf("poold %s holds no chunks: it can be stopped\n", poold);
	else
		printf("rebalance done: %" PRIu32 " move%s\n", pr.done, pr.done == 1 ? "" : "s");
	return EXIT_OK;
}

/*
 * keygen: the key on stdout.  When stdout is a file (the usual "keygen >
 * FILE"), make it 0600 before the key is in it.
 */
static int keygen(void)
{
	char hex[RSWAP_KEY_HEX_LEN + 2];
	struct stat st;
	int ret;

	if (!fstat(STDOUT_FILENO, &st) && S_ISREG(st.st_mode) &&
	    fchmod(STDOUT_FILENO, 0600)) {
		fprintf(stderr, PROG ": cannot make the key file mode 0600: %s\n",
			strerror(errno));
		return EXIT_ERR;
	}
	if (isatty(STDOUT_FILENO))
		fprintf(stderr, PROG ": writing a key to a terminal; redirect it to a file: keygen > cluster.key\n");
	ret = rswap_key_generate(hex);
	if (ret) {
		fprintf(stderr, PROG ": cannot get random bytes: %s\n", strerror(-ret));
		return EXIT_ERR;
	}
	if (fputs(hex, stdout) == EOF || fflush(stdout)) {
		fprintf(stderr, PROG ": cannot write the key: %s\n", strerror(errno));
		return EXIT_ERR;
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	Rswap__Envelope req = RSWAP__ENVELOPE__INIT, *rep;
	Rswap__AdminList list = RSWAP__ADMIN_LIST__INIT;
	Rswap__AdminStatus status = RSWAP__ADMIN_STATUS__INIT;
	Rswap__AdminDrain drain = RSWAP__ADMIN_DRAIN__INIT;
	Rswap__AdminRebalance rebal = RSWAP__ADMIN_REBALANCE__INIT;
	struct admin_opts o;
	int fd, ret;

	if (argc == 2 && !strcmp(argv[1], "keygen"))
		return keygen();
	ret = parse_args(argc, argv, &o);
	if (ret >= 0)
		return ret;
	fd = coord_connect(&o);
	if (fd < 0)
		return EXIT_ERR;
	if (o.poold) {
		drain.poold_addr = (char *)o.poold;
		drain.undrain = !strcmp(o.cmd, "undrain");
		req.body_case = RSWAP__ENVELOPE__BODY_ADMIN_DRAIN;
		req.admin_drain = &drain;
		rep = exchange(&o, fd, &req, RSWAP__ENVELOPE__BODY_CLUSTER_STATE);
	} else if (!strcmp(o.cmd, "rebalance")) {
		rebal.dry_run = o.dry_run;
		req.body_case = RSWAP__ENVELOPE__BODY_ADMIN_REBALANCE;
		req.admin_rebalance = &rebal;
		rep = exchange(&o, fd, &req, RSWAP__ENVELOPE__BODY_REBALANCE_PLAN);
	} else if (o.client_id) {
		status.client_id = (char *)o.client_id;
		req.body_case = RSWAP__ENVELOPE__BODY_ADMIN_STATUS;
		req.admin_status = &status;
		rep = exchange(&o, fd, &req, RSWAP__ENVELOPE__BODY_CLIENT_INFO);
	} else {
		req.body_case = RSWAP__ENVELOPE__BODY_ADMIN_LIST;
		req.admin_list = &list;
		rep = exchange(&o, fd, &req, RSWAP__ENVELOPE__BODY_CLUSTER_STATE);
	}
	close(fd);
	if (!rep)
		return EXIT_ERR;
	if (o.poold) {
		const Rswap__ClusterState *cs = rep->cluster_state;
		const Rswap__PooldInfo *pi = find_poold(cs, o.poold);
		const Rswap__MoveJob *j = find_job(cs, cs->job);
		uint32_t held = pi ? pi->chunks_used : 0;
		uint64_t job = cs->job;
		bool nothing = j && j->failed == j->total && j->total;

		printf("poold %s: %s, holds %" PRIu32 " chunk%s", o.poold,
		       drain.undrain ? "takes new chunks" : "draining, gets no new chunks",
		       held, held == 1 ? "" : "s");
		if (j && !nothing)
			printf("; %" PRIu32 " move%s queued (job %" PRIu64 ")", j->total,
			       j->total == 1 ? "" : "s", j->id);
		printf("\n");
		if (nothing)
			fprintf(stderr, PROG ": no chunk moved: %.*s\n",
				printable_len(j->last_error), j->last_error);
		rswap__envelope__free_unpacked(rep, NULL);
		if (o.wait && nothing)
			return EXIT_ERR;
		if (o.wait && job)
			return job_wait(&o, job, o.poold);
	} else if (!strcmp(o.cmd, "rebalance")) {
		uint64_t job = rep->rebalance_plan->job;

		print_plan(rep->rebalance_plan, o.json);
		rswap__envelope__free_unpacked(rep, NULL);
		if (o.wait && job)
			return job_wait(&o, job, NULL);
	} else if (o.client_id && o.json) {
		json_client(rep->client_info);
		putchar('\n');
	} else if (o.client_id) {
		print_map(rep->client_info);
	} else if (o.json) {
		json_cluster(rep->cluster_state);
	} else {
		print_cluster(rep->cluster_state);
	}
	if (!o.poold && strcmp(o.cmd, "rebalance"))
		rswap__envelope__free_unpacked(rep, NULL);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, PROG ": cannot write output: %s\n", strerror(errno));
		return EXIT_ERR;
	}
	return EXIT_OK;
}
