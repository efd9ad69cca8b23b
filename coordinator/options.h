/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/* rswap-coord's command line: one table of options with bounds. */
#ifndef RSWAP_COORD_OPTIONS_H
#define RSWAP_COORD_OPTIONS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include "dispatch.h"

/*
 * Default --restart-grace-ms: two of a poold's longest reconnect backoffs
 * (5 s), so that every poold that was waiting for the coordinator has
 * registered again before a new client may be created.
 */
#define COORD_GRACE_DEFAULT_MS	10000

struct coord_config {
	struct coord_settings s;
	const char *listen;		/* as given */
	struct sockaddr_storage addr;	/* resolved --listen */
	socklen_t addrlen;
	const char *metrics;		/* --metrics as given, or NULL */
	struct sockaddr_storage metrics_addr;
	socklen_t metrics_addrlen;
	uint32_t hello_timeout_ms;	/* new connection's first message */
	uint32_t max_conns;		/* open connections, all peers */
	uint32_t max_new_per_addr;	/* not yet identified, per remote address */
	const char *key_file;		/* --key-file, loaded into s.key */
	int insecure;			/* --insecure: no key, on purpose */
	int verbose;
};

/*
 * Parse argv into cfg (defaults first) and load the key file.  Returns 0 to
 * run, 1 if --help was printed to stdout, or -errno with a one-line reason
 * in err (exit 2).
 */
int coord_parse_args(int argc, char **argv, struct coord_config *cfg,
		     char *err, size_t errlen);
void coord_usage(FILE *f);

#endif /* RSWAP_COORD_OPTIONS_H */
