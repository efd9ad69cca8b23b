// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * rswap-admin: ask a running rswap-coord what the cluster looks like.
 *
 *   rswap-admin --coord HOST:PORT [--json] [--timeout SEC] list
 *   rswap-admin --coord HOST:PORT [--json] [--timeout SEC] status CLIENT_ID
 *
 * Exit status: 0 success, 1 error (coordinator unreachable, refused, timed
 * out), 2 bad usage.
 */
#include "rswap_frame.h"
#include "rswap_util.h"
#include "rswap.pb-c.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>

#define PROG		"rswap-admin"
#define ID_MAX		31

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

struct admin_opts {
	const char *coord;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool json;
	unsigned int timeout_s;
	const char *cmd;
	const char *client_id;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " --coord HOST:PORT [--json] [--timeout SEC] list\n"
		"       " PROG " --coord HOST:PORT [--json] [--timeout SEC] status CLIENT_ID\n\n"
		"  -c, --coord HOST:PORT   the coordinator (port defaults to %d)\n"
		"  -j, --json              machine-readable output\n"
		"  -t, --timeout SEC       give up on the coordinator after SEC seconds (1-3600). Default: 5\n"
		"  -h, --help              show this help\n\n"
		"  list                    every poold, every client's chunk map, totals\n"
		"  status CLIENT_ID        one client's chunk map\n",
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
		{ NULL, 0, NULL, 0 },
	};
	const char *why;
	unsigned long v;
	char *end;
	int ch;

	memset(o, 0, sizeof(*o));
	o->timeout_s = 5;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:jt:h", lopts, NULL)) != -1) {
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
		case ':':
			return usage_error("%s needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option %s (see --help)",
					   argv[optind - 1]);
		}
	}
	if (!o->coord)
		return usage_error("--coord HOST:PORT is required");
	if (optind >= argc)
		return usage_error("missing command: list or status CLIENT_ID");
	o->cmd = argv[optind++];
	if (!strcmp(o->cmd, "list")) {
		if (optind < argc)
			return usage_error("list takes no argument, got '%s'", argv[optind]);
		return -1;
	}
	if (strcmp(o->cmd, "status"))
		return usage_error("unknown command '%s' (list or status CLIENT_ID)", o->cmd);
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

static void json_client(const Rswap__ClientInfo *ci)
{
	const Rswap__ChunkMap *m = ci->map;
	size_t i;

	printf("{\"client_id\":");
	json_str(ci->client_id);
	printf(",\"session\":");
	json_str(ci->session ? ci->session : "");
	printf(",\"size\":%" PRIu64 ",\"chunk_size\":%" PRIu64 ",\"slots\":[",
	       m ? m->size : 0, m ? m->chunk_size : 0);
	for (i = 0; m && i < m->n_slots; i++) {
		printf("%s{\"index\":%" PRIu32 ",\"poold\":", i ? "," : "",
		       m->slots[i]->index);
		json_str(m->slots[i]->poold_addr);
		printf(",\"handle\":%" PRIu64 "}", m->slots[i]->handle);
	}
	printf("]}");
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
		       ",\"ms_since_heartbeat\":%" PRIu32 ",\"clients_connected\":%" PRIu32 "}",
		       p->capacity, p->chunks_total, p->chunks_used, state_name(p->state),
		       p->draining ? "true" : "false", p->ms_since_heartbeat,
		       p->clients_connected);
	}
	printf("],\"clients\":[");
	for (i = 0; i < cs->n_clients; i++) {
		if (i)
			putchar(',');
		json_client(cs->clients[i]);
	}
	printf("]}\n");
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
	printf("client %.*s: %s in %" PRIu64 " chunk%s of %s, %zu known%s\n",
	       printable_len(ci->client_id), ci->client_id,
	       rswap_fmt_size(m->size, sz, sizeof(sz)), need, need == 1 ? "" : "s",
	       rswap_fmt_size(m->chunk_size, csz, sizeof(csz)), m->n_slots,
	       m->n_slots < need ? " (INCOMPLETE)" : "");
	if (ci->session && *ci->session)
		printf("  session: live, from %.*s\n", printable_len(ci->session),
		       ci->session);
	else
		printf("  session: none (chunks kept for the host's return)\n");
	for (i = 0; i < m->n_slots; i++)
		printf("  slot %-5" PRIu32 " -> %-24.*s handle %" PRIu64 "\n",
		       m->slots[i]->index, printable_len(m->slots[i]->poold_addr),
		       m->slots[i]->poold_addr, m->slots[i]->handle);
	print_spread(m);
}

static void print_cluster(const Rswap__ClusterState *cs)
{
	unsigned int alive = 0;
	char a[16], b[16], c[16];
	size_t i;

	printf("%-24s %-8s %-9s %6s %6s %-18s %10s %7s\n", "POOLD", "STATE",
	       "CAPACITY", "CHUNKS", "USED", "LOAD", "HEARTBEAT", "CLIENTS");
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
		printf("%-24.*s %-8s %-9s %6" PRIu32 " %6" PRIu32 " [%s] %3u%% %8.1fs %7" PRIu32 "\n",
		       printable_len(p->listen_addr), p->listen_addr, state,
		       rswap_fmt_size(p->capacity, a, sizeof(a)), p->chunks_total,
		       p->chunks_used, bar, pct, p->ms_since_heartbeat / 1000.0,
		       p->clients_connected);
	}
	if (!cs->n_poolds)
		printf("(no poold registered)\n");
	printf("\n");
	for (i = 0; i < cs->n_clients; i++)
		print_map(cs->clients[i]);
	if (!cs->n_clients)
		printf("(no client)\n");
	printf("\ntotal: %zu poold%s (%u alive), capacity %s, used %s (%u%%), %zu client%s, chunk size %s\n",
	       cs->n_poolds, cs->n_poolds == 1 ? "" : "s", alive,
	       rswap_fmt_size(cs->capacity_total, a, sizeof(a)),
	       rswap_fmt_size(cs->used_total, b, sizeof(b)),
	       cs->capacity_total ?
			(unsigned int)(cs->used_total * 100 / cs->capacity_total) : 0,
	       cs->n_clients, cs->n_clients == 1 ? "" : "s",
	       rswap_fmt_size(cs->chunk_size, c, sizeof(c)));
}

int main(int argc, char **argv)
{
	Rswap__Envelope req = RSWAP__ENVELOPE__INIT, *rep;
	Rswap__AdminList list = RSWAP__ADMIN_LIST__INIT;
	Rswap__AdminStatus status = RSWAP__ADMIN_STATUS__INIT;
	struct admin_opts o;
	int fd, ret;

	ret = parse_args(argc, argv, &o);
	if (ret >= 0)
		return ret;
	fd = coord_connect(&o);
	if (fd < 0)
		return EXIT_ERR;
	if (o.client_id) {
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
	if (o.client_id && o.json) {
		json_client(rep->client_info);
		putchar('\n');
	} else if (o.client_id) {
		print_map(rep->client_info);
	} else if (o.json) {
		json_cluster(rep->cluster_state);
	} else {
		print_cluster(rep->cluster_state);
	}
	rswap__envelope__free_unpacked(rep, NULL);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, PROG ": cannot write output: %s\n", strerror(errno));
		return EXIT_ERR;
	}
	return EXIT_OK;
}
