// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * rswap-coord: the event loop around the dispatcher.  One bufferevent per
 * TCP connection; dispatch.c does the protocol.  A connection the
 * dispatcher is done with is flushed, half-closed, and drained for a
 * moment before close() so that its last Error frame is not lost to a RST.
 */
#include "dispatch.h"
#include "metrics.h"
#include "options.h"
#include "rswap_frame.h"
#include "rswap_prom.h"
#include "rswap_util.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#define TICK_MS		100
#define LINGER_SEC	2	/* flushing a closing connection */

struct server;

struct conn {
	struct conn *next, *prev;
	struct server *srv;
	struct bufferevent *bev;
	struct peer *peer;	/* NULL once the dispatcher let go */
	char name[64];		/* remote ADDR:PORT */
	char host[48];		/* remote address alone, for the per-address cap */
	bool identified;	/* it sent a whole first message */
};

struct server {
	struct event_base *base;
	struct coord *coord;
	struct evconnlistener *listener;
	struct event *tick, *sigint, *sigterm, *accept_again;
	struct timeval hello_timeout;	/* for a new connection's first message */
	struct conn *conns;
	uint32_t nconns, max_conns, max_new_per_addr;
	uint64_t refused_log_ms;	/* last "refusing connections" line */
	uint64_t refused_quiet;		/* refusals since that line */
	struct prom_http *metrics;	/* NULL without --metrics */
	struct coord_conn_stats conn_stats;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void conn_free(struct conn *cn)
{
	if (cn->prev)
		cn->prev->next = cn->next;
	else
		cn->srv->conns = cn->next;
	if (cn->next)
		cn->next->prev = cn->prev;
	cn->srv->nconns--;
	cn->srv->conn_stats.open--;
	bufferevent_free(cn->bev);
	free(cn);
}

static void linger_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	evbuffer_drain(in, evbuffer_get_length(in));
}

static void linger_event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn_free(arg);
}

/* Output is flushed: half-close and wait for the peer's EOF (bounded). */
static void linger_start(struct conn *cn)
{
	struct timeval tv = { LINGER_SEC, 0 };

	shutdown(bufferevent_getfd(cn->bev), SHUT_WR);
	bufferevent_setcb(cn->bev, linger_read_cb, NULL, linger_event_cb, cn);
	bufferevent_set_timeouts(cn->bev, &tv, NULL);
	bufferevent_setwatermark(cn->bev, EV_READ, 0, 0);
	bufferevent_enable(cn->bev, EV_READ);
}

static void flush_write_cb(struct bufferevent *bev, void *arg)
{
	if (!evbuffer_get_length(bufferevent_get_output(bev)))
		linger_start(arg);
}

static void close_peer(void *glue)
{
	struct conn *cn = glue;
	struct timeval tv = { LINGER_SEC, 0 };

	cn->peer = NULL;
	cn->srv->conn_stats.closed_by_coord++;
	if (!evbuffer_get_length(bufferevent_get_output(cn->bev))) {
		linger_start(cn);
		return;
	}
	bufferevent_setcb(cn->bev, linger_read_cb, flush_write_cb, linger_event_cb, cn);
	bufferevent_setwatermark(cn->bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(cn->bev, &tv, &tv);
	bufferevent_enable(cn->bev, EV_READ | EV_WRITE);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *cn = arg;

	if (!cn->peer)
		return;
	coord_peer_input(cn->srv->coord, cn->peer, bufferevent_get_input(bev), now_ms());
	/* Known peers: the dispatcher times out a silent one (coord_tick). */
	if (cn->peer && coord_peer_has_role(cn->peer)) {
		cn->identified = true;
		bufferevent_set_timeouts(bev, NULL, NULL);
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *cn = arg;
	const char *why = "connection closed";

	if (what & BEV_EVENT_ERROR)
		why = evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
	else if (what & BEV_EVENT_TIMEOUT)
		why = "no complete first message in time";
	if (what & BEV_EVENT_TIMEOUT)
		cn->srv->conn_stats.hello_timeouts++;
	else
		cn->srv->conn_stats.closed_by_peer++;
	if (cn->peer && (what & BEV_EVENT_TIMEOUT))
		log_info("dropping %s: %s", cn->name, why);
	if (cn->peer)
		coord_peer_gone(cn->srv->coord, cn->peer, why, now_ms());
	conn_free(cn);
}

static void format_peer(const struct sockaddr *sa, socklen_t len, char *buf,
			size_t buflen)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, buflen, "?");
		return;
	}
	snprintf(buf, buflen, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, port);
}

/*
 * Refuse a connection at once: too many open, or too many from its address
 * that have not said who they are.  One log line a second at most, with
 * the count of the ones not logged.
 */
static void refuse_conn(struct server *srv, evutil_socket_t fd, const char *name,
			const char *why)
{
	uint64_t now = now_ms();

	evutil_closesocket(fd);
	if (now - srv->refused_log_ms < 1000) {
		srv->refused_quiet++;
		return;
	}
	log_warn("refusing connection from %s: %s (and %llu more since the last such line)",
		 name, why, (unsigned long long)srv->refused_quiet);
	srv->refused_log_ms = now;
	srv->refused_quiet = 0;
}

/* Connections from host that have not sent a whole first message yet. */
static uint32_t new_conns_from(const struct server *srv, const char *host)
{
	const struct conn *cn;
	uint32_t n = 0;

	for (cn = srv->conns; cn; cn = cn->next)
		n += !cn->identified && cn->peer && !strcmp(cn->host, host);
	return n;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct server *srv = arg;
	char name[64], host[48];
	struct conn *cn;
	int one = 1;

	format_peer(sa, (socklen_t)salen, name, sizeof(name));
	if (getnameinfo(sa, (socklen_t)salen, host, sizeof(host), NULL, 0, NI_NUMERICHOST))
		snprintf(host, sizeof(host), "?");
	if (srv->nconns >= srv->max_conns) {
		srv->conn_stats.refused_max_conns++;
		refuse_conn(srv, fd, name, "--max-conns connections are open");
		return;
	}
	if (new_conns_from(srv, host) >= srv->max_new_per_addr) {
		srv->conn_stats.refused_per_addr++;
		refuse_conn(srv, fd, name,
			    "--max-new-per-addr connections from that address have not said who they are yet");
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	cn = calloc(1, sizeof(*cn));
	if (!cn) {
		log_err("out of memory accepting %s", name);
		evutil_closesocket(fd);
		return;
	}
	cn->srv = srv;
	snprintf(cn->name, sizeof(cn->name), "%s", name);
	snprintf(cn->host, sizeof(cn->host), "%s", host);
	cn->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!cn->bev) {
		log_err("out of memory accepting %s", name);
		evutil_closesocket(fd);
		free(cn);
		return;
	}
	cn->peer = coord_peer_new(srv->coord, name, bufferevent_get_output(cn->bev), cn);
	if (!cn->peer) {
		log_err("out of memory accepting %s", name);
		bufferevent_free(cn->bev);
		free(cn);
		return;
	}
	cn->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = cn;
	srv->conns = cn;
	srv->nconns++;
	srv->conn_stats.accepted++;
	srv->conn_stats.open++;
	/* Never buffer more than one whole frame of unread input. */
	bufferevent_setwatermark(cn->bev, EV_READ, 0, RSWAP_FRAME_HDR + RSWAP_MAX_FRAME);
	bufferevent_setcb(cn->bev, read_cb, NULL, event_cb, cn);
	bufferevent_set_timeouts(cn->bev, &srv->hello_timeout, NULL);
	bufferevent_enable(cn->bev, EV_READ | EV_WRITE);
	log_debug("connection from %s", name);
}

static void accept_again_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	evconnlistener_enable(srv->listener);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct server *srv = arg;
	struct timeval pause = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	/* Out of descriptors: the pending connection stays readable, so
	 * stop accepting for a second rather than spin; serve the rest. */
	log_err("accept failed: %s; pausing new connections for 1 s",
		evutil_socket_error_to_string(err));
	evconnlistener_disable(l);
	event_add(srv->accept_again, &pause);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	coord_tick(srv->coord, now_ms());
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	log_info("%s received, shutting down", strsignal((int)sig));
	event_base_loopbreak(srv->base);
}

static void metrics_render(struct prom_out *o, void *arg)
{
	struct server *srv = arg;

	coord_metrics_render(o, srv->coord, &srv->conn_stats);
}

static void server_free(struct server *srv)
{
	prom_http_free(srv->metrics);
	while (srv->conns)
		conn_free(srv->conns);
	coord_free(srv->coord);
	if (srv->listener)
		evconnlistener_free(srv->listener);
	if (srv->tick)
		event_free(srv->tick);
	if (srv->accept_again)
		event_free(srv->accept_again);
	if (srv->sigint)
		event_free(srv->sigint);
	if (srv->sigterm)
		event_free(srv->sigterm);
	if (srv->base)
		event_base_free(srv->base);
}

static int server_start(struct server *srv, const struct coord_config *cfg)
{
	static const struct coord_ops ops = { .close_peer = close_peer };
	struct timeval tick = { 0, TICK_MS * 1000 };

	srv->max_conns = cfg->max_conns;
	srv->conn_stats.max_conns = cfg->max_conns;
	srv->max_new_per_addr = cfg->max_new_per_addr;
	srv->hello_timeout.tv_sec = cfg->hello_timeout_ms / 1000;
	srv->hello_timeout.tv_usec = (cfg->hello_timeout_ms % 1000) * 1000;
	srv->base = event_base_new();
	if (!srv->base) {
		log_err("cannot create the event loop");
		return -ENOMEM;
	}
	srv->coord = coord_new(&cfg->s, &ops);
	srv->tick = event_new(srv->base, -1, EV_PERSIST, tick_cb, srv);
	srv->accept_again = evtimer_new(srv->base, accept_again_cb, srv);
	srv->sigint = evsignal_new(srv->base, SIGINT, signal_cb, srv);
	srv->sigterm = evsignal_new(srv->base, SIGTERM, signal_cb, srv);
	if (!srv->coord || !srv->tick || !srv->accept_again || !srv->sigint || !srv->sigterm ||
	    event_add(srv->tick, &tick) || event_add(srv->sigint, NULL) ||
	    event_add(srv->sigterm, NULL)) {
		log_err("out of memory setting up the coordinator");
		return -ENOMEM;
	}
	coord_tick(srv->coord, now_ms());	/* the clock starts now */
	srv->listener = evconnlistener_new_bind(srv->base, accept_cb, srv,
						LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						LEV_OPT_CLOSE_ON_EXEC, 128,
						(const struct sockaddr *)&cfg->addr,
						(int)cfg->addrlen);
	if (!srv->listener) {
		log_err("cannot listen on %s: %s; is another rswap-coord running there?",
			cfg->listen, strerror(errno));
		return -errno;
	}
	evconnlistener_set_error_cb(srv->listener, accept_error_cb);
	if (cfg->metrics) {
		int err;

		srv->metrics = prom_http_start(srv->base,
					       (const struct sockaddr *)&cfg->metrics_addr,
					       cfg->metrics_addrlen, metrics_render, srv, &err);
		if (!srv->metrics) {
			log_err("cannot serve metrics on %s: %s; pick a free --metrics port",
				cfg->metrics, strerror(-err));
			return err;
		}
		log_info("metrics at http://%s/metrics", cfg->metrics);
	}
	return 0;
}

/*
 * Every connection is a descriptor: raise the soft limit to the hard one,
 * and if that is still short of --max-conns plus room for the rest, say
 * so once and serve fewer connections rather than fail accept() later.
 */
static void fit_fd_limit(struct coord_config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_conns + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want) {
		log_warn("open files limited to %llu (ulimit -n): serving at most %llu connections, not --max-conns %u; raise LimitNOFILE",
			 (unsigned long long)rl.rlim_cur,
			 (unsigned long long)(rl.rlim_cur > 80 ? rl.rlim_cur - 64 : 16),
			 cfg->max_conns);
		cfg->max_conns = rl.rlim_cur > 80 ? (uint32_t)(rl.rlim_cur - 64) : 16;
	}
}

int main(int argc, char **argv)
{
	struct coord_config cfg;
	struct server srv = { 0 };
	char err[512], sz[16];
	int ret;

	ret = coord_parse_args(argc, argv, &cfg, err, sizeof(err));
	if (ret == 1) {
		coord_usage(stdout);
		return 0;
	}
	if (ret) {
		fprintf(stderr, "rswap-coord: %s\n", err);
		return 2;
	}
	rswap_log_init("rswap-coord", cfg.verbose);
	if (cfg.insecure)
		log_warn("running without a cluster key (--insecure): anyone who reaches %s can join, read and free chunks; for throwaway test clusters only",
			 cfg.listen);
	signal(SIGPIPE, SIG_IGN);
	fit_fd_limit(&cfg);
	ret = server_start(&srv, &cfg);
	if (!ret) {
		log_info("listening on %s, chunk size %s, heartbeat %u ms; new clients "
			 "wait %u ms for poolds to re-register (--restart-grace-ms)",
			 cfg.listen, rswap_fmt_size(cfg.s.chunk_size, sz, sizeof(sz)),
			 cfg.s.heartbeat_ms, cfg.s.grace_ms);
		if (event_base_dispatch(srv.base) < 0) {
			log_err("event loop failed");
			ret = -EIO;
		}
	}
	server_free(&srv);
	libevent_global_shutdown();
	return ret ? 1 : 0;
}
