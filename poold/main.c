// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * poold command line, start-up and shutdown.  Usage errors print one line
 * and exit 2; run-time failures at start-up exit 1; SIGINT/SIGTERM
 * disconnect every client, release all memory and exit 0.
 */
#include "poold.h"
#include "conn_validate.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <event2/event.h>
#include <infiniband/verbs.h>

#include "auth.h"
#include "rswap_frame.h"
#include "rswap_prom.h"
#include "rswap_util.h"

#define MAX_QPS_DEFAULT	RSWAP_MAX_QPS_PER_SESSION
/*
 * File descriptors poold needs: its own few (stdio, event loop, signals,
 * the coordinator socket, the rdma_cm channel) with room to spare, and per
 * RDMA device the verbs context's two plus one completion channel.  Queue
 * pairs, CQs, MRs and chunks take none.
 */
#define FDS_BASE	64
#define FDS_PER_DEVICE	4

static void usage(FILE *f)
{
	fprintf(f,
		"usage: poold --coord HOST:PORT --listen ADDR:PORT --capacity SIZE\n"
		"             (--key-file FILE | --insecure) [--max-qps N]\n"
		"             [--zone NAME] [--metrics ADDR:PORT] [-v]\n"
		"  --coord HOST:PORT   rswap-coord to register with (default port %d)\n"
		"  --listen ADDR:PORT  RDMA address clients connect to; must be a\n"
		"                      concrete address on an RDMA device (default port %d)\n"
		"  --capacity SIZE     memory this poold may hand out, e.g. 48G or 512M\n"
		"  --max-qps N         queue pairs one client session may open, 1..%d\n"
		"                      (default %d)\n"
		"  --key-file FILE     the cluster key (rswap-admin keygen > FILE, mode 0600):\n"
		"                      proves this poold to the coordinator and checks it\n"
		"  --insecure          no key, for throwaway test clusters only\n"
		"  --zone NAME         failure domain (rack, power feed), 1..%d printable\n"
		"                      bytes: copies of a chunk go to distinct zones\n"
		"  --metrics ADDR:PORT serve Prometheus metrics at\n"
		"                      http://ADDR:PORT/metrics (default: off)\n"
		"  -v, --verbose       debug logging\n",
		RSWAP_DEFAULT_COORD_PORT, RSWAP_DEFAULT_POOLD_PORT,
		RSWAP_MAX_QPS_PER_SESSION, MAX_QPS_DEFAULT, RSWAP_ZONE_MAX);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("poold: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see poold --help)\n", stderr);
	exit(2);
}

static bool is_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return false;
}

/* "ADDR:PORT" / "[V6]:PORT" with a numeric address: what clients dial. */
static int format_addr(const struct sockaddr_storage *ss, socklen_t len,
		       char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN], port[8];

	if (getnameinfo((const struct sockaddr *)ss, len, host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV))
		return -EINVAL;
	if (ss->ss_family == AF_INET6)
		snprintf(buf, size, "[%s]:%s", host, port);
	else
		snprintf(buf, size, "%s:%s", host, port);
	return 0;
}

static void parse_args(int argc, char **argv, struct poold_settings *set)
{
	static const struct option opts[] = {
		{ "coord", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "capacity", required_argument, NULL, 's' },
		{ "max-qps", required_argument, NULL, 'q' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "zone", required_argument, NULL, 'z' },
		{ NULL, 0, NULL, 0 },
	};
	const char *coord = NULL, *listen = NULL, *cap = NULL, *why, *key_file = NULL;
	const char *metrics = NULL;
	char kwhy[300];
	unsigned long qps;
	char *end;
	int o, ret;

	set->max_qps = MAX_QPS_DEFAULT;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
		switch (o) {
		case 'c': coord = optarg; break;
		case 'l': listen = optarg; break;
		case 's': cap = optarg; break;
		case 'm': metrics = optarg; break;
		case 'q':
			errno = 0;
			qps = strtoul(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end || errno ||
			    qps < 1 || qps > RSWAP_MAX_QPS_PER_SESSION)
				usage_error("--max-qps %s: expected a number from 1 to %d",
					    optarg, RSWAP_MAX_QPS_PER_SESSION);
			set->max_qps = (unsigned int)qps;
			break;
		case 'v': set->verbose = 1; break;
		case 'k': key_file = optarg; break;
		case 'I': set->insecure = 1; break;
		case 'z':
			if (!rswap_zone_valid(optarg))
				usage_error("--zone '%s': expected 1 to %d printable characters without spaces",
					    optarg, RSWAP_ZONE_MAX);
			snprintf(set->zone, sizeof(set->zone), "%s", optarg);
			break;
		case 'h': usage(stdout); exit(0);
		case ':': usage_error("%s needs a value", argv[optind - 1]);
		default: usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if (!coord)
		usage_error("--coord HOST:PORT is required");
	if (!listen)
		usage_error("--listen ADDR:PORT is required");
	if (!cap)
		usage_error("--capacity SIZE is required");

	ret = rswap_parse_size(cap, &set->capacity);
	if (ret)
		usage_error("--capacity %s: %s (expected e.g. 48G or 512M)", cap,
			    ret == -ERANGE ? "too large" : "not a size");
	if (set->capacity < POOLD_CHUNK_MIN)
		usage_error("--capacity %s: below the smallest chunk (16M)", cap);
	if (rswap_parse_hostport(coord, RSWAP_DEFAULT_COORD_PORT, &set->coord_ss,
				 &set->coord_len, &why))
		usage_error("--coord %s: %s", coord, why);
	snprintf(set->coord_str, sizeof(set->coord_str), "%s", coord);
	if (rswap_parse_hostport(listen, RSWAP_DEFAULT_POOLD_PORT, &set->listen_ss,
				 &set->listen_len, &why))
		usage_error("--listen %s: %s", listen, why);
	if (is_wildcard(&set->listen_ss))
		usage_error("--listen %s: give the address clients reach, not a wildcard",
			    listen);
	if (format_addr(&set->listen_ss, set->listen_len, set->listen_str,
			sizeof(set->listen_str)))
		usage_error("--listen %s: cannot format the address", listen);
	if (metrics) {
		if (rswap_parse_hostport(metrics, 0, &set->metrics_ss,
					 &set->metrics_len, &why))
			usage_error("--metrics %s: %s", metrics, why);
		snprintf(set->metrics_str, sizeof(set->metrics_str), "%s", metrics);
	}
	/* Last, so that a typo elsewhere is reported as itself. */
	if (key_file && set->insecure)
		usage_error("--key-file and --insecure exclude each other");
	if (!key_file && !set->insecure)
		usage_error("the cluster key is required: --key-file FILE (rswap-admin keygen > FILE makes one), or --insecure for a throwaway test cluster");
	if (key_file) {
		if (rswap_key_load(key_file, set->key, kwhy, sizeof(kwhy)))
			usage_error("%s", kwhy);
		set->have_key = true;
	}
}

static void metrics_render(struct prom_out *o, void *arg)
{
	struct poold_rdma_stats rs;
	struct poold *p = arg;

	poold_rdma_stats(p, &rs);
	poold_metrics_render(o, p, &rs);
}

/* Before RDMA: a taken metrics port is reported even where RDMA fails. */
static int metrics_start(struct poold *p)
{
	int err;

	if (!p->set.metrics_str[0])
		return 0;
	p->metrics = prom_http_start(p->base, (const struct sockaddr *)&p->set.metrics_ss,
				     p->set.metrics_len, metrics_render, p, &err);
	if (!p->metrics) {
		log_err("cannot serve metrics on %s: %s; pick a free --metrics port",
			p->set.metrics_str, strerror(-err));
		return err;
	}
	log_info("metrics at http://%s/metrics", p->set.metrics_str);
	return 0;
}

/*
 * Raise the soft RLIMIT_NOFILE to the hard limit (a service manager's soft
 * default of 1024 is an accident, not a decision), then check it is enough.
 */
static int raise_nofile(void)
{
	struct ibv_device **devs;
	struct rlimit rl;
	rlim_t need, old;
	int ndev = 0;

	devs = ibv_get_device_list(&ndev);
	if (devs)
		ibv_free_device_list(devs);
	need = FDS_BASE + FDS_PER_DEVICE * (rlim_t)(ndev > 0 ? ndev : 1);
	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		log_err("cannot read RLIMIT_NOFILE: %s", strerror(errno));
		return -errno;
	}
	old = rl.rlim_cur;
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl)) {
			log_warn("cannot raise RLIMIT_NOFILE from %llu to %llu: %s",
				 (unsigned long long)old, (unsigned long long)rl.rlim_max,
				 strerror(errno));
			rl.rlim_cur = old;
		} else {
			log_debug("RLIMIT_NOFILE raised from %llu to %llu",
				  (unsigned long long)old, (unsigned long long)rl.rlim_cur);
		}
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		log_err("the open file limit is %llu (hard limit %llu) but poold needs "
			"%llu file descriptors for %d RDMA device%s: raise it "
			"(LimitNOFILE= in the systemd unit, or ulimit -Hn)",
			(unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
			(unsigned long long)need, ndev, ndev == 1 ? "" : "s");
		return -EMFILE;
	}
	return 0;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct poold *p = arg;

	log_info("%s received; disconnecting clients and releasing memory",
		 strsignal((int)sig));
	event_base_loopbreak(p->base);
}

int main(int argc, char **argv)
{
	struct poold p = { 0 };
	struct event *sigint = NULL, *sigterm = NULL;
	char cap[16];

	parse_args(argc, argv, &p.set);
	rswap_log_init("poold", p.set.verbose);
	if (p.set.insecure)
		log_warn("running without a cluster key (--insecure): any coordinator at %s is trusted; for throwaway test clusters only",
			 p.set.coord_str);
	signal(SIGPIPE, SIG_IGN);
	if (raise_nofile())
		return 1;

	p.base = event_base_new();
	if (!p.base) {
		log_err("cannot create the event loop");
		return 1;
	}
	sigint = evsignal_new(p.base, SIGINT, signal_cb, &p);
	sigterm = evsignal_new(p.base, SIGTERM, signal_cb, &p);
	if (!sigint || !sigterm || event_add(sigint, NULL) || event_add(sigterm, NULL)) {
		log_err("cannot install signal handlers");
		p.exit_code = 1;
		goto out_free_base;
	}
	poold_chunks_init(&p);
	log_info("starting: capacity %s, coordinator %s, zone %s",
		 rswap_fmt_size(p.set.capacity, cap, sizeof(cap)), p.set.coord_str,
		 p.set.zone[0] ? p.set.zone : "(none)");
	if (metrics_start(&p)) {
		p.exit_code = 1;
		goto out_free_base;
	}
	if (poold_rdma_start(&p)) {
		p.exit_code = 1;
		goto out_stop_rdma;
	}
	if (poold_coord_start(&p)) {
		log_err("cannot set up the coordinator session (out of memory)");
		p.exit_code = 1;
		goto out_stop_coord;
	}
	event_base_dispatch(p.base);

out_stop_coord:
	p.stopping = true;
	poold_coord_stop(&p);
out_stop_rdma:
	poold_rdma_stop(&p);
	poold_chunks_free_all(&p);
out_free_base:
	prom_http_free(p.metrics);
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	event_base_free(p.base);
	log_info("stopped");
	return p.exit_code;
}
