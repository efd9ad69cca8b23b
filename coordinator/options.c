// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "options.h"
#include "auth.h"
#include "registry.h"
#include "rswap_frame.h"
#include "rswap_util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum opt_kind { OPT_ADDR, OPT_HTTP, OPT_SIZE, OPT_MS, OPT_COUNT, OPT_FLAG, OPT_PATH, OPT_HELP };

struct opt {
	const char *name;
	int short_name;
	enum opt_kind kind;
	size_t offset;		/* into struct coord_config */
	uint64_t min, max;	/* bounds for OPT_SIZE and OPT_MS */
	const char *arg, *help;
};

#define CFG(f) offsetof(struct coord_config, f)

static const struct opt opts[] = {
	{ "listen", 'l', OPT_ADDR, CFG(listen), 0, 0, "ADDR:PORT",
	  "address to listen on (required; port defaults to 9400)" },
	{ "chunk-size", 'c', OPT_SIZE, CFG(s.chunk_size), RSWAP_MIN_CHUNK, 1ull << 40,
	  "SIZE", "chunk size, a power of two from 16M to 1T. Default: 4G" },
	{ "heartbeat-ms", 'b', OPT_MS, CFG(s.heartbeat_ms), 10, 60000, "N",
	  "poolds' heartbeat period; suspect after 3 missed, dead after 10. Default: 1000" },
	{ "timeout-ms", 't', OPT_MS, CFG(s.timeout_ms), 100, 600000, "N",
	  "how long to wait for a poold's reply before rolling back. Default: 10000" },
	{ "restart-grace-ms", 'g', OPT_MS, CFG(s.grace_ms), 0, 600000, "N",
	  "after start, answer new clients EAGAIN for N ms so poolds can re-register existing ones (0: a new cluster). Default: 10000" },
	{ "client-timeout-ms", 'C', OPT_MS, CFG(s.client_timeout_ms), 500, 600000, "N",
	  "close a client or admin connection silent for N ms (a client missing its heartbeats); its client id is free again. Default: 10000" },
	{ "max-moves", 'X', OPT_COUNT, CFG(s.max_moves), 1, 1024, "N",
	  "live chunk moves (drain, rebalance) running at once, one per client at most. Default: 4" },
	{ "stale-replace-ms", 'S', OPT_MS, CFG(s.stale_replace_ms), 0, 86400000, "N",
	  "replace a copy (replicas > 1) its client reports stale for N ms with a new one, copied from an in-sync copy (0: never; the client resyncs it when its poold is back). Default: 30000" },
	{ "max-poolds", 'P', OPT_COUNT, CFG(s.max_poolds), 1, 65536, "N",
	  "poolds (listen addresses) the coordinator keeps at most; a new one past it is refused. Default: 1024" },
	{ "max-clients", 'L', OPT_COUNT, CFG(s.max_clients), 1, 1048576, "N",
	  "client ids the coordinator keeps at most; a new one past it is refused. Default: 65536" },
	{ "hello-timeout-ms", 'H', OPT_MS, CFG(hello_timeout_ms), 100, 600000, "N",
	  "drop a new connection that sends no whole first message in N ms. Default: 10000" },
	{ "max-conns", 'm', OPT_COUNT, CFG(max_conns), 16, 65536, "N",
	  "open connections at most; more are refused at once. Default: 1024" },
	{ "max-new-per-addr", 'n', OPT_COUNT, CFG(max_new_per_addr), 1, 4096, "N",
	  "connections from one address that have not yet said who they are. Default: 16" },
	{ "key-file", 'k', OPT_PATH, CFG(key_file), 0, 0, "FILE",
	  "the cluster key (rswap-admin keygen > FILE; mode 0600): every peer must prove it" },
	{ "insecure", 'I', OPT_FLAG, CFG(insecure), 0, 0, NULL,
	  "run without a key: anyone who reaches the port joins (throwaway test clusters only)" },
	{ "metrics", 'M', OPT_HTTP, CFG(metrics), 0, 0, "ADDR:PORT",
	  "serve Prometheus metrics at http://ADDR:PORT/metrics. Default: off" },
	{ "verbose", 'v', OPT_FLAG, CFG(verbose), 0, 0, NULL, "log debug messages" },
	{ "help", 'h', OPT_HELP, 0, 0, 0, NULL, "show this help" },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

void coord_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: rswap-coord --listen ADDR:PORT (--key-file FILE | --insecure)\n"
		   "                   [--chunk-size SIZE] [--heartbeat-ms N] [--timeout-ms N]\n"
		   "                   [--restart-grace-ms N] [--client-timeout-ms N] [--max-moves N]\n"
		   "                   [--stale-replace-ms N]\n"
		   "                   [--max-poolds N] [--max-clients N] [--hello-timeout-ms N]\n"
		   "                   [--max-conns N] [--max-new-per-addr N]\n"
		   "                   [--metrics ADDR:PORT] [-v]\n\n");
	for (i = 0; i < NOPTS; i++) {
		char left[48];

		snprintf(left, sizeof(left), "-%c, --%s%s%s", opts[i].short_name,
			 opts[i].name, opts[i].arg ? " " : "",
			 opts[i].arg ? opts[i].arg : "");
		fprintf(f, "  %-32s %s\n", left, opts[i].help);
	}
}

static int set_opt(const struct opt *o, const char *arg, struct coord_config *cfg,
		   char *err, size_t errlen)
{
	char *field = (char *)cfg + o->offset, a[16], b[16];
	const char *why;
	uint64_t v;
	char *end;

	switch (o->kind) {
	case OPT_ADDR:
		if (rswap_parse_hostport(arg, RSWAP_DEFAULT_COORD_PORT, &cfg->addr,
					 &cfg->addrlen, &why)) {
			snprintf(err, errlen, "--%s %s: %s", o->name, arg, why);
			return -EINVAL;
		}
		*(const char **)field = arg;
		return 0;
	case OPT_HTTP:
		if (rswap_parse_hostport(arg, 0, &cfg->metrics_addr,
					 &cfg->metrics_addrlen, &why)) {
			snprintf(err, errlen, "--%s %s: %s", o->name, arg, why);
			return -EINVAL;
		}
		*(const char **)field = arg;
		return 0;
	case OPT_SIZE:
		if (rswap_parse_size(arg, &v)) {
			snprintf(err, errlen, "--%s %s: not a size (use e.g. 16M, 4G)",
				 o->name, arg);
			return -EINVAL;
		}
		if (v < o->min || v > o->max || (v & (v - 1))) {
			snprintf(err, errlen, "--%s %s: must be a power of two from %s to %s",
				 o->name, arg, rswap_fmt_size(o->min, a, sizeof(a)),
				 rswap_fmt_size(o->max, b, sizeof(b)));
			return -EINVAL;
		}
		*(uint64_t *)field = v;
		return 0;
	case OPT_MS:
		errno = 0;
		v = strtoull(arg, &end, 10);
		if (arg[0] < '0' || arg[0] > '9' || *end || errno ||
		    v < o->min || v > o->max) {
			snprintf(err, errlen, "--%s %s: must be a number of milliseconds from %"
				 PRIu64 " to %" PRIu64, o->name, arg, o->min, o->max);
			return -EINVAL;
		}
		*(uint32_t *)field = (uint32_t)v;
		return 0;
	case OPT_COUNT:
		errno = 0;
		v = strtoull(arg, &end, 10);
		if (arg[0] < '0' || arg[0] > '9' || *end || errno ||
		    v < o->min || v > o->max) {
			snprintf(err, errlen, "--%s %s: must be a number from %" PRIu64
				 " to %" PRIu64, o->name, arg, o->min, o->max);
			return -EINVAL;
		}
		*(uint32_t *)field = (uint32_t)v;
		return 0;
	case OPT_FLAG:
		(*(int *)field)++;
		return 0;
	case OPT_PATH:
		if (!*arg) {
			snprintf(err, errlen, "--%s needs a file name", o->name);
			return -EINVAL;
		}
		*(const char **)field = arg;
		return 0;
	case OPT_HELP:
		return 1;
	}
	return -EINVAL;
}

int coord_parse_args(int argc, char **argv, struct coord_config *cfg,
		     char *err, size_t errlen)
{
	struct option lopts[NOPTS + 1];
	char sopts[NOPTS * 2 + 2], *sp = sopts;
	size_t i;
	int ch, ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->s.chunk_size = 4ull << 30;
	cfg->s.heartbeat_ms = 1000;
	cfg->s.timeout_ms = 10000;
	cfg->s.grace_ms = COORD_GRACE_DEFAULT_MS;
	cfg->hello_timeout_ms = 10000;
	cfg->max_conns = 1024;
	cfg->max_new_per_addr = 16;
	cfg->s.client_timeout_ms = 10000;
	cfg->s.max_moves = COORD_MAX_MOVES_DEFAULT;
	cfg->s.stale_replace_ms = COORD_STALE_REPLACE_DEFAULT_MS;
	cfg->s.max_poolds = COORD_MAX_POOLDS_DEFAULT;
	cfg->s.max_clients = COORD_MAX_CLIENTS_DEFAULT;
	/* The largest reply is one frame; two in flight is plenty. */
	cfg->s.out_limit = 2 * (size_t)RSWAP_MAX_FRAME;
	memset(lopts, 0, sizeof(lopts));
	*sp++ = ':';	/* report a missing argument as ':' */
	for (i = 0; i < NOPTS; i++) {
		lopts[i].name = opts[i].name;
		lopts[i].has_arg = opts[i].arg ? required_argument : no_argument;
		lopts[i].val = opts[i].short_name;
		*sp++ = (char)opts[i].short_name;
		if (opts[i].arg)
			*sp++ = ':';
	}
	*sp = '\0';
	optind = 0;	/* glibc: restart scanning (tests parse many times) */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, sopts, lopts, NULL)) != -1) {
		const struct opt *o = NULL;

		if (ch == '?' || ch == ':') {
			const char *bad = argv[optind - 1] ? argv[optind - 1] : "?";

			snprintf(err, errlen, ch == ':' ? "%s needs a value" :
				 "unknown option %s (see --help)", bad);
			return -EINVAL;
		}
		for (i = 0; i < NOPTS; i++)
			if (opts[i].short_name == ch)
				o = &opts[i];
		if (!o)
			continue;
		ret = set_opt(o, optarg, cfg, err, errlen);
		if (ret)
			return ret;
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	if (!cfg->listen) {
		snprintf(err, errlen, "--listen ADDR:PORT is required (e.g. --listen 0.0.0.0:9400)");
		return -EINVAL;
	}
	if (cfg->key_file && cfg->insecure) {
		snprintf(err, errlen, "--key-file and --insecure exclude each other");
		return -EINVAL;
	}
	if (!cfg->key_file && !cfg->insecure) {
		snprintf(err, errlen,
			 "the cluster key is required: --key-file FILE (rswap-admin keygen > FILE makes one), or --insecure for a throwaway test cluster");
		return -EINVAL;
	}
	if (cfg->key_file) {
		ret = rswap_key_load(cfg->key_file, cfg->s.key, err, errlen);
		if (ret)
			return ret;
		cfg->s.have_key = true;
	}
	return 0;
}
