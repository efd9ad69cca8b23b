/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * Helpers for the metrics page tests (cmocka): capture what a writer
 * produced, look for whole lines, and dump the page for promtool.
 */
#ifndef RSWAP_TEST_METRICS_TEXT_H
#define RSWAP_TEST_METRICS_TEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "rswap_prom.h"

static const char *dump_dir;

static struct prom_out new_out(void)
{
	struct prom_out o = { evbuffer_new(), false };

	assert_non_null(o.buf);
	return o;
}

/* Whatever o holds, as a NUL-terminated string the caller frees. */
static char *take_text(struct prom_out *o)
{
	size_t n = evbuffer_get_length(o->buf);
	char *s = malloc(n + 1);

	assert_non_null(s);
	evbuffer_remove(o->buf, s, n);
	s[n] = '\0';
	evbuffer_free(o->buf);
	o->buf = NULL;
	return s;
}

/* text has exactly this line. */
static void expect_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("line '%s' not in:\n%s", line, text);
}

static int count(const char *text, const char *needle)
{
	int n = 0;

	for (; (text = strstr(text, needle)); text++)
		n++;
	return n;
}

/* With --dump DIR: DIR/name gets text, for promtool-check.sh. */
static void dump(const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	if (!dump_dir)
		return;
	snprintf(path, sizeof(path), "%s/%s", dump_dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* argv: [--dump DIR].  0, or 2 after a usage line. */
static int parse_dump_arg(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--dump")) {
		dump_dir = argv[2];
		return 0;
	}
	if (argc == 1)
		return 0;
	fprintf(stderr, "usage: %s [--dump DIR]\n", argv[0]);
	return 2;
}

#endif /* RSWAP_TEST_METRICS_TEXT_H */
