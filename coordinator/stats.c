// SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause)
#include "stats.h"

#include <errno.h>
#include <string.h>

const char *const coord_stats_role_names[COORD_STATS_ROLES] = {
	"peer", "poold", "client", "admin",
};

/*
 * The codes the coordinator sends (its own refusals, and a poold's code
 * passed on to a client); anything else, a poold's odd code included,
 * counts as "other" so that a peer cannot grow the label set.
 */
static const struct {
	int code;
	const char *name;
} codes[COORD_STATS_CODES - 1] = {
	{ EINVAL, "EINVAL" }, { EEXIST, "EEXIST" }, { EAGAIN, "EAGAIN" },
	{ EBUSY, "EBUSY" }, { ENOENT, "ENOENT" }, { ENOMEM, "ENOMEM" },
	{ ENOSPC, "ENOSPC" }, { EMSGSIZE, "EMSGSIZE" }, { EPROTO, "EPROTO" },
	{ EIO, "EIO" }, { ETIMEDOUT, "ETIMEDOUT" }, { EPERM, "EPERM" },
	{ EACCES, "EACCES" }, { ERANGE, "ERANGE" }, { ENODEV, "ENODEV" },
	{ ECONNRESET, "ECONNRESET" },
};

const char *coord_stats_code_name(unsigned int i)
{
	return i < COORD_STATS_CODES - 1 ? codes[i].name : "other";
}

static unsigned int code_index(int code)
{
	unsigned int i;

	for (i = 0; i < COORD_STATS_CODES - 1; i++)
		if (codes[i].code == code)
			return i;
	return COORD_STATS_CODES - 1;
}

unsigned int coord_stats_role_index(const char *role)
{
	unsigned int i;

	for (i = 1; i < COORD_STATS_ROLES; i++)
		if (!strcmp(role, coord_stats_role_names[i]))
			return i;
	return 0;
}

void coord_stats_error_sent(struct coord_stats *s, const char *role, int code)
{
	s->errors_sent[coord_stats_role_index(role)][code_index(code)]++;
}
