// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/*
 * GET /metrics on the daemon's own event loop (see rswap_prom.h).  The
 * page is rendered from the daemon's state when it is asked for, so a
 * scrape costs one pass over that state and nothing in between.
 */
#include "rswap_prom.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#define PROM_HTTP_BACKLOG	16
#define PROM_HTTP_MAX_HEADERS	8192
#define PROM_HTTP_TIMEOUT_SEC	10
#define PROM_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

struct prom_http {
	struct prom_http *next;		/* in endpoints */
	struct evhttp *http;
	struct evconnlistener *listener;
	struct event *accept_again;
	prom_render_fn render;
	void *arg;
};

static void request_cb(struct evhttp_request *req, void *arg)
{
	struct prom_http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);
	struct prom_out o = { 0 };

	if (!path || strcmp(path, "/metrics")) {
		evhttp_send_error(req, HTTP_NOTFOUND, "Not Found");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(hdrs, "Allow", "GET");
		evhttp_send_error(req, HTTP_BADMETHOD, "Method Not Allowed");
		return;
	}
	o.buf = evbuffer_new();
	if (!o.buf) {
		evhttp_send_error(req, HTTP_INTERNAL, "Internal Server Error");
		return;
	}
	h->render(&o, h->arg);
	if (o.failed) {
		evhttp_send_error(req, HTTP_INTERNAL, "Internal Server Error");
	} else {
		evhttp_add_header(hdrs, "Content-Type", PROM_CONTENT_TYPE);
		evhttp_send_reply(req, HTTP_OK, "OK", o.buf);
	}
	evbuffer_free(o.buf);
}

/*
 * evhttp owns the listener's callback argument, so the error callback
 * finds its endpoint here (a daemon has one or two).
 */
static struct prom_http *endpoints;

static void accept_again_cb(evutil_socket_t fd, short what, void *arg)
{
	struct prom_http *h = arg;

	evconnlistener_enable(h->listener);
}

/*
 * Out of descriptors: the pending connection stays readable, so pause
 * accepting for a second instead of spinning (the daemon's work goes on).
 */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct timeval pause = { 1, 0 };
	struct prom_http *h;

	for (h = endpoints; h && h->listener != l; h = h->next)
		;
	if (!h)
		return;
	evconnlistener_disable(l);
	event_add(h->accept_again, &pause);
}

struct prom_http *prom_http_start(struct event_base *base,
				  const struct sockaddr *sa, socklen_t salen,
				  prom_render_fn render, void *arg, int *err)
{
	struct evconnlistener *l;
	struct prom_http *h;

	h = calloc(1, sizeof(*h));
	if (!h) {
		*err = -ENOMEM;
		return NULL;
	}
	h->render = render;
	h->arg = arg;
	h->http = evhttp_new(base);
	h->accept_again = evtimer_new(base, accept_again_cb, h);
	if (!h->http || !h->accept_again) {
		*err = -ENOMEM;
		goto out_free;
	}
	/* Every method reaches request_cb, which answers 405 with Allow. */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
				   EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
				   EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
				   EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
				   EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(h->http, PROM_HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(h->http, 0);
	evhttp_set_timeout(h->http, PROM_HTTP_TIMEOUT_SEC);
	evhttp_set_gencb(h->http, request_cb, h);
	l = evconnlistener_new_bind(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE |
				    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
				    PROM_HTTP_BACKLOG, sa, (int)salen);
	if (!l) {
		*err = errno ? -errno : -EADDRNOTAVAIL;
		goto out_free;
	}
	if (!evhttp_bind_listener(h->http, l)) {
		evconnlistener_free(l);
		*err = -ENOMEM;
		goto out_free;
	}
	h->listener = l;
	/* evhttp sets the accept callback only; the error one is ours. */
	evconnlistener_set_error_cb(l, accept_error_cb);
	h->next = endpoints;
	endpoints = h;
	return h;

out_free:
	if (h->accept_again)
		event_free(h->accept_again);
	if (h->http)
		evhttp_free(h->http);
	free(h);
	return NULL;
}

void prom_http_free(struct prom_http *h)
{
	struct prom_http **pp;

	if (!h)
		return;
	for (pp = &endpoints; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	}
	evhttp_free(h->http);	/* with its listener */
	event_free(h->accept_again);
	free(h);
}
