// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
/* The Prometheus text format writer (see rswap_prom.h). */
#include "rswap_prom.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <event2/buffer.h>

static void out_add(struct prom_out *o, const char *s, size_t len)
{
	if (!o->failed && evbuffer_add(o->buf, s, len))
		o->failed = true;
}

static void out_str(struct prom_out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

/*
 * Escape for a label value (quote true) or a HELP text: backslash and
 * newline always, '"' in label values.  Bytes that are not printable
 * ASCII become '?': the format wants UTF-8, and a peer-supplied string
 * must not be able to produce invalid output.
 */
static void out_escaped(struct prom_out *o, const char *s, bool quote)
{
	const char *run = s;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		const char *rep;

		if (ch == '\\')
			rep = "\\\\";
		else if (ch == '\n')
			rep = "\\n";
		else if (ch == '"' && quote)
			rep = "\\\"";
		else if (ch < 0x20 || ch >= 0x7f)
			rep = "?";
		else
			continue;
		out_add(o, run, (size_t)(s - run));
		out_str(o, rep);
		run = s + 1;
	}
	out_add(o, run, (size_t)(s - run));
}

bool prom_valid_name(const char *name)
{
	const char *p;

	if (!name || !*name || (*name >= '0' && *name <= '9'))
		return false;
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == ':'))
			return false;
	return true;
}

void prom_family(struct prom_out *o, const char *name, enum prom_type type,
		 const char *help)
{
	/* Names are ours: a bad one is a bug, and the scrape says so (500). */
	if (!prom_valid_name(name)) {
		o->failed = true;
		return;
	}
	out_str(o, "# HELP ");
	out_str(o, name);
	out_str(o, " ");
	out_escaped(o, help, false);
	out_str(o, "\n# TYPE ");
	out_str(o, name);
	out_str(o, type == PROM_COUNTER ? " counter\n" : " gauge\n");
}

void prom_sample(struct prom_out *o, const char *name,
		 const struct prom_label *labels, size_t nlabels,
		 uint64_t value)
{
	char num[24];
	size_t i;

	out_str(o, name);
	for (i = 0; i < nlabels; i++) {
		if (!prom_valid_name(labels[i].name) || strchr(labels[i].name, ':')) {
			o->failed = true;
			return;
		}
		out_str(o, i ? "," : "{");
		out_str(o, labels[i].name);
		out_str(o, "=\"");
		out_escaped(o, labels[i].value ? labels[i].value : "", true);
		out_str(o, "\"");
	}
	if (nlabels)
		out_str(o, "}");
	snprintf(num, sizeof(num), " %" PRIu64 "\n", value);
	out_str(o, num);
}

void prom_write_table(struct prom_out *o, const struct prom_metric *t,
		      size_t n, const void *snapshot)
{
	const char *prev = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		struct prom_label l = { t[i].label, t[i].label_value };
		uint64_t v;

		if (!prev || strcmp(prev, t[i].name))
			prom_family(o, t[i].name, t[i].type, t[i].help);
		prev = t[i].name;
		memcpy(&v, (const char *)snapshot + t[i].offset, sizeof(v));
		prom_sample(o, t[i].name, &l, t[i].label ? 1 : 0, v);
	}
}
