/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * Prometheus text exposition format (version 0.0.4), written into an
 * evbuffer, and the evhttp endpoint that serves it as GET /metrics.
 * Shared by rswap-coord and poold.
 *
 * A daemon describes its scalar metrics as a table of struct prom_metric
 * (one line per series) over a snapshot struct of uint64_t fields, and
 * writes labelled families (per poold, per reason) with prom_family() and
 * prom_sample().  Every sample of a family must follow its HELP/TYPE lines
 * without another family in between: that is what the format requires.
 */
#ifndef RSWAP_PROM_H
#define RSWAP_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct evbuffer;
struct event_base;

enum prom_type { PROM_GAUGE, PROM_COUNTER };

/* Where the text goes; failed is set (and stays set) on ENOMEM or misuse. */
struct prom_out {
	struct evbuffer *buf;
	bool failed;
};

struct prom_label {
	const char *name;	/* [a-zA-Z_][a-zA-Z0-9_]*, ours */
	const char *value;	/* any bytes; escaped on output */
};

/* "# HELP name help" and "# TYPE name type".  help is escaped. */
void prom_family(struct prom_out *o, const char *name, enum prom_type type,
		 const char *help);
/* name{l="v",...} value */
void prom_sample(struct prom_out *o, const char *name,
		 const struct prom_label *labels, size_t nlabels,
		 uint64_t value);

/*
 * One series of a scalar table.  Consecutive entries with the same name
 * form one family (HELP and TYPE are taken from the first); label is NULL
 * for an unlabelled series.  offset: a uint64_t in the snapshot struct.
 */
struct prom_metric {
	const char *name;
	enum prom_type type;
	const char *help;
	const char *label, *label_value;
	size_t offset;
};

void prom_write_table(struct prom_out *o, const struct prom_metric *t,
		      size_t n, const void *snapshot);

/* Is name a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)? */
bool prom_valid_name(const char *name);

/*
 * The endpoint: GET /metrics answers 200 with what render() wrote (500 if
 * it failed); another path is 404, another method 405.  Requests are
 * bounded (8 KiB of headers, no body, 10 s timeout).
 */
typedef void (*prom_render_fn)(struct prom_out *o, void *arg);
struct prom_http;

/* NULL with *err = -errno if the address cannot be bound. */
struct prom_http *prom_http_start(struct event_base *base,
				  const struct sockaddr *sa, socklen_t salen,
				  prom_render_fn render, void *arg, int *err);
void prom_http_free(struct prom_http *h);

#endif /* RSWAP_PROM_H */
