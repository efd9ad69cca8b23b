/* SPDX-License-Identifier: (GPL-2.0 OR BSD-3-Clause) */
/*
 * The few types and allocators the protobuf wire codec needs, from the
 * kernel or from libc, so that rswap-clt-pb.c compiles unchanged in
 * rswap-client.ko and in the host unit test that checks it against
 * protobuf-c.
 */
#ifndef RSWAP_CLT_PB_SHIM_H
#define RSWAP_CLT_PB_SHIM_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/errno.h>
#include <linux/string.h>
#include <linux/slab.h>
#include <linux/mm.h>

/* Control path only (module init/exit): may sleep. */
#define rswap_pb_calloc(n, size)	kvcalloc(n, size, GFP_KERNEL)
#define rswap_pb_free(p)		kvfree(p)
#else
#include <linux/types.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef __u8 u8;
typedef __u32 u32;
typedef __s32 s32;
typedef __u64 u64;
typedef __s64 s64;

#define rswap_pb_calloc(n, size)	calloc(n, size)
#define rswap_pb_free(p)		free(p)
#endif

#endif /* RSWAP_CLT_PB_SHIM_H */
