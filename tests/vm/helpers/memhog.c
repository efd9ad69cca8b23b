// SPDX-License-Identifier: GPL-2.0
/*
 * memhog: make a working set, then prove it survived swapping.
 *
 *   memhog MIB [SEED]
 *
 * Maps MIB MiB of anonymous memory, writes into every 8-byte word a value
 * derived from (seed, page index, word index), then reads everything back
 * twice and checks it.  Run it under a cgroup memory.max smaller than MIB
 * and the pages must make a round trip through swap.  Exit 0 when all data
 * matched, 1 on the first mismatch (which is printed), 2 on usage or
 * setup errors.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t pattern(uint64_t seed, uint64_t page, uint64_t word)
{
	uint64_t x = seed ^ (page * 0x9e3779b97f4a7c15ull) ^ (word << 48);

	/* splitmix64 finaliser: neighbouring pages differ in every byte. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static int verify(const uint64_t *mem, size_t pages, size_t words_pp,
		  uint64_t seed, int pass)
{
	for (size_t p = 0; p < pages; p++) {
		for (size_t w = 0; w < words_pp; w++) {
			uint64_t want = pattern(seed, p, w);
			uint64_t got = mem[p * words_pp + w];

			if (got != want) {
				fprintf(stderr,
					"memhog: pass %d: page %zu word %zu is %016" PRIx64 ", expected %016" PRIx64 "\n",
					pass, p, w, got, want);
				return 1;
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	long page_size = sysconf(_SC_PAGESIZE);
	unsigned long mib;
	uint64_t seed = 1;
	size_t bytes, pages, words_pp;
	uint64_t *mem;
	char *end;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: memhog MIB [SEED]\n");
		return 2;
	}
	errno = 0;
	mib = strtoul(argv[1], &end, 10);
	if (errno || *end || !mib || mib > (1ul << 20)) {
		fprintf(stderr, "memhog: MIB must be 1..1048576, got '%s'\n", argv[1]);
		return 2;
	}
	if (argc == 3) {
		seed = strtoull(argv[2], &end, 0);
		if (*end) {
			fprintf(stderr, "memhog: SEED must be a number, got '%s'\n", argv[2]);
			return 2;
		}
	}
	bytes = (size_t)mib << 20;
	pages = bytes / (size_t)page_size;
	words_pp = (size_t)page_size / sizeof(uint64_t);
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "memhog: mmap of %lu MiB failed: %s\n", mib, strerror(errno));
		return 2;
	}
	for (size_t p = 0; p < pages; p++)
		for (size_t w = 0; w < words_pp; w++)
			mem[p * words_pp + w] = pattern(seed, p, w);
	for (int pass = 1; pass <= 2; pass++)
		if (verify(mem, pages, words_pp, seed, pass))
			return 1;
	printf("memhog: %lu MiB seed %" PRIu64 " verified twice\n", mib, seed);
	munmap(mem, bytes);
	return 0;
}
