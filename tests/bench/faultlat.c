// SPDX-License-Identifier: GPL-2.0
/*
 * faultlat - swap fault latency and swap throughput of the active swap
 * device, measured on an anonymous region of this process.
 *
 *   faultlat lat  MIB [SEED]   first-touch latency, sequential then random
 *   faultlat tput MIB [SEED]   swap-out and sequential swap-in pages/s
 *
 * Prints one JSON object on stdout; exit 0 on success, 1 when the data read
 * back differs from what was written (the only failure a benchmark has),
 * 2 on bad usage or a setup error.
 *
 * The swap-cache pitfall: MADV_PAGEOUT starts the writes and unmaps the
 * pages, but on an asynchronous device each page stays in the swap cache
 * until writeback completes *and* reclaim runs again; touching it then is a
 * minor fault that never reaches the device.  So after the page-out we
 * wait until pswpout and nr_writeback settle, then ask our own cgroup to
 * reclaim (memory.reclaim) until mincore() - which on a swapped-out
 * anonymous page reports whether it is in the swap cache - says no page is
 * resident.  During the timed touches every page is classified again with
 * mincore() just before its touch: a page that is resident (swap-cache
 * hit, e.g. brought in by readahead) is counted apart, and the latency
 * percentiles are over the pages that really were read from the device.
 * ru_majflt and pswpin deltas are reported next to the count as a check.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define PAGE 4096UL
#define SETTLE_MS 60000		/* longest wait for writeback to finish */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Median cost of one back-to-back pair of now_ns() calls: every latency
 * sample includes it (a few ns with a vDSO clock, microseconds when the
 * clock source needs a system call, e.g. HPET in a VM).
 */
static double clock_overhead_ns(void)
{
	uint64_t d[1001], t0;
	size_t i;

	for (i = 0; i < 1001; i++) {
		t0 = now_ns();
		d[i] = now_ns() - t0;
	}
	for (i = 1; i < 1001; i++) {
		uint64_t v = d[i];
		size_t j = i;

		while (j > 0 && d[j - 1] > v) {
			d[j] = d[j - 1];
			j--;
		}
		d[j] = v;
	}
	return (double)d[500];
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A /proc/vmstat counter, or -1 when it cannot be read. */
static long long vmstat(const char *key)
{
	char line[128];
	size_t klen = strlen(key);
	long long v = -1;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			v = strtoll(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static long majflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_majflt;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* Incompressible content (zram would store a same-filled page for free),
 * derived from the page index so that it can be checked after swap-in.
 */
static void fill_page(uint64_t *p, size_t idx, uint64_t seed)
{
	uint64_t s = (seed * 0x9E3779B97F4A7C15ULL) ^ (idx + 1) * 0xBF58476D1CE4E5B9ULL;
	size_t i;

	if (!s)
		s = 1;
	for (i = 0; i < PAGE / sizeof(*p); i++)
		p[i] = xorshift(&s);
}

static int check_page(const uint64_t *p, size_t idx, uint64_t seed)
{
	uint64_t want[PAGE / sizeof(uint64_t)];

	fill_page(want, idx, seed);
	return memcmp(p, want, PAGE) == 0;
}

/* Pages of the region that are resident (mapped or in the swap cache). */
static size_t resident_pages(char *buf, size_t pages, unsigned char *vec)
{
	size_t i, n = 0;

	if (mincore(buf, pages * PAGE, vec) != 0)
		return pages;
	for (i = 0; i < pages; i++)
		n += vec[i] & 1;
	return n;
}

/* The memory.reclaim file of our own cgroup (v2), or "" without one. */
static void own_reclaim_file(char *out, size_t len)
{
	char line[512];
	FILE *f = fopen("/proc/self/cgroup", "r");

	out[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, len, "/sys/fs/cgroup%s/memory.reclaim",
				 strcmp(line + 3, "/") ? line + 3 : "");
			break;
		}
	}
	fclose(f);
}

static void cgroup_reclaim(const char *file, size_t bytes)
{
	char v[32];
	int fd, n;

	if (!file[0])
		return;
	fd = open(file, O_WRONLY);
	if (fd < 0)
		return;
	n = snprintf(v, sizeof(v), "%zu", bytes);
	/* EAGAIN when less than asked could be reclaimed: fine. */
	if (write(fd, v, (size_t)n) < 0 && errno != EAGAIN)
		fprintf(stderr, "faultlat: write %s: %s\n", file, strerror(errno));
	close(fd);
}

/* Wait until the swap-out started by MADV_PAGEOUT is on the device:
 * pswpout no longer grows and nothing is under writeback.
 */
static void wait_writeback(void)
{
	long long last = vmstat("pswpout"), cur;
	int stable = 0, waited = 0;

	while (waited < SETTLE_MS) {
		sleep_ms(20);
		waited += 20;
		cur = vmstat("pswpout");
		if (cur == last && vmstat("nr_writeback") == 0)
			stable++;
		else
			stable = 0;
		last = cur;
		if (stable >= 3)
			return;
	}
	fprintf(stderr, "faultlat: writeback did not settle in %d ms\n", SETTLE_MS);
}

struct pageout_result {
	long long pswpout;	/* pages written by the page-out */
	double secs;		/* MADV_PAGEOUT until writeback settled */
	size_t left_cached;	/* pages still resident after the reclaim loop */
	int reclaim_rounds;
};

/* Push the whole region to the device and out of the swap cache. */
static int page_out(char *buf, size_t pages, unsigned char *vec,
		    const char *reclaim, struct pageout_result *r)
{
	long long out0 = vmstat("pswpout");
	uint64_t t0 = now_ns();
	size_t left, prev = (size_t)-1;
	int round, stuck = 0;

	if (madvise(buf, pages * PAGE, MADV_PAGEOUT) != 0) {
		fprintf(stderr, "faultlat: MADV_PAGEOUT: %s (needs Linux 5.4+)\n",
			strerror(errno));
		return -1;
	}
	wait_writeback();
	r->secs = (double)(now_ns() - t0) / 1e9;
	r->pswpout = vmstat("pswpout") - out0;
	/* Second chance for what the first pass skipped, then reclaim the
	 * clean swap-cache copies that writeback left behind.
	 */
	for (round = 0; round < 50; round++) {
		left = resident_pages(buf, pages, vec);
		if (left == 0)
			break;
		/* No swap, or nothing more will go: stop after a while. */
		stuck = left == prev ? stuck + 1 : 0;
		if (stuck >= 5)
			break;
		prev = left;
		madvise(buf, pages * PAGE, MADV_PAGEOUT);
		cgroup_reclaim(reclaim, left * PAGE + (1UL << 20));
		wait_writeback();
	}
	r->reclaim_rounds = round;
	r->left_cached = resident_pages(buf, pages, vec);
	return 0;
}

static const double cdf_points[] = {
	1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 99.5, 99.9, 100
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const uint64_t *sorted, size_t n, double p)
{
	size_t i;

	if (!n)
		return -1;
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return (double)sorted[i] / 1000.0;
}

/* One pass of first touches in ORDER; prints its JSON member. */
static int touch_pass(const char *name, char *buf, size_t pages,
		      const size_t *order, uint64_t seed, unsigned char *vec,
		      uint64_t *lat, const struct pageout_result *po, int last)
{
	long long in0 = vmstat("pswpin");
	long maj0 = majflt();
	size_t i, real = 0, hits = 0, bad = 0;
	uint64_t t0, t1, total0 = now_ns(), sum = 0;
	volatile uint64_t sink = 0;
	unsigned char v;
	double secs;

	for (i = 0; i < pages; i++) {
		char *p = buf + order[i] * PAGE;

		v = 0;
		mincore(p, PAGE, &v);
		t0 = now_ns();
		sink += *(volatile uint64_t *)p;
		t1 = now_ns();
		if (v & 1) {
			hits++;
		} else {
			lat[real++] = t1 - t0;
			sum += t1 - t0;
		}
	}
	secs = (double)(now_ns() - total0) / 1e9;
	(void)sink;
	for (i = 0; i < pages; i++)
		if (!check_page((uint64_t *)(buf + order[i] * PAGE), order[i], seed))
			bad++;
	qsort(lat, real, sizeof(*lat), cmp_u64);
	(void)vec;
	printf("\"%s\":{\"pages\":%zu,\"device_reads\":%zu,\"swapcache_hits\":%zu,"
	       "\"swapcache_hit_ratio\":%.4f,\"majflt\":%ld,\"pswpin\":%lld,"
	       "\"left_cached_before\":%zu,\"secs\":%.4f,"
	       "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
	       "\"min_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,\"bad_pages\":%zu",
	       name, pages, real, hits, pages ? (double)hits / (double)pages : 0,
	       majflt() - maj0, vmstat("pswpin") - in0, po->left_cached, secs,
	       pct_us(lat, real, 50), pct_us(lat, real, 90), pct_us(lat, real, 99),
	       pct_us(lat, real, 99.9), real ? (double)lat[0] / 1000 : -1,
	       real ? (double)lat[real - 1] / 1000 : -1,
	       real ? (double)sum / (double)real / 1000 : -1, bad);
	/* Percentile points for a distribution plot. */
	printf(",\"cdf_pct\":[");
	for (i = 0; i < sizeof(cdf_points) / sizeof(cdf_points[0]); i++)
		printf("%s%g", i ? "," : "", cdf_points[i]);
	printf("],\"cdf_us\":[");
	for (i = 0; i < sizeof(cdf_points) / sizeof(cdf_points[0]); i++)
		printf("%s%.1f", i ? "," : "", pct_us(lat, real, cdf_points[i]));
	printf("]}%s", last ? "" : ",");
	return bad ? -1 : 0;
}

static void fill_region(char *buf, size_t pages, uint64_t seed)
{
	size_t i;

	for (i = 0; i < pages; i++)
		fill_page((uint64_t *)(buf + i * PAGE), i, seed);
}

static void print_pageout(const char *name, const struct pageout_result *r)
{
	printf("\"%s\":{\"pswpout\":%lld,\"secs\":%.4f,\"pages_per_s\":%.1f,"
	       "\"left_cached\":%zu,\"reclaim_rounds\":%d},",
	       name, r->pswpout, r->secs,
	       r->secs > 0 ? (double)r->pswpout / r->secs : 0,
	       r->left_cached, r->reclaim_rounds);
}

int main(int argc, char **argv)
{
	struct pageout_result po;
	unsigned char *vec;
	size_t mib, pages, i, *order;
	uint64_t seed = 1, rs, *lat;
	char reclaim[600], *buf, *end;
	int rc = 0, lat_mode;

	if (argc < 3 || (strcmp(argv[1], "lat") && strcmp(argv[1], "tput"))) {
		fprintf(stderr, "usage: faultlat lat|tput MIB [SEED]\n");
		return 2;
	}
	lat_mode = !strcmp(argv[1], "lat");
	errno = 0;
	mib = strtoul(argv[2], &end, 10);
	if (errno || *end || mib < 1 || mib > 65536) {
		fprintf(stderr, "faultlat: MIB must be 1..65536, got '%s'\n", argv[2]);
		return 2;
	}
	if (argc > 3)
		seed = strtoull(argv[3], NULL, 10);
	pages = mib * (1UL << 20) / PAGE;
	buf = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	vec = malloc(pages);
	order = malloc(pages * sizeof(*order));
	lat = malloc(pages * sizeof(*lat));
	if (buf == MAP_FAILED || !vec || !order || !lat) {
		fprintf(stderr, "faultlat: cannot allocate %zu MiB\n", mib);
		return 2;
	}
	/* No THP: a huge page would be split or swapped as a unit. */
	madvise(buf, pages * PAGE, MADV_NOHUGEPAGE);
	/* Our bookkeeping must stay resident while the region goes out. */
	if (mlock(vec, pages) || mlock(order, pages * sizeof(*order)) ||
	    mlock(lat, pages * sizeof(*lat)))
		fprintf(stderr, "faultlat: mlock of the bookkeeping failed: %s\n",
			strerror(errno));
	own_reclaim_file(reclaim, sizeof(reclaim));

	fill_region(buf, pages, seed);
	printf("{\"mode\":\"%s\",\"mib\":%zu,\"pages\":%zu,\"clock_overhead_ns\":%.0f,",
	       argv[1], mib, pages, clock_overhead_ns());
	if (page_out(buf, pages, vec, reclaim, &po))
		return 2;
	print_pageout("pageout", &po);
	for (i = 0; i < pages; i++)
		order[i] = i;
	if (touch_pass(lat_mode ? "seq" : "swapin", buf, pages, order, seed,
		       vec, lat, &po, !lat_mode))
		rc = 1;
	if (lat_mode) {
		if (page_out(buf, pages, vec, reclaim, &po))
			return 2;
		print_pageout("pageout2", &po);
		rs = seed * 2654435761ULL + 7;
		for (i = pages - 1; i > 0; i--) {
			size_t j = (size_t)(xorshift(&rs) % (i + 1)), t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		if (touch_pass("rand", buf, pages, order, seed, vec, lat, &po, 1))
			rc = 1;
	}
	printf(",\"ok\":%s}\n", rc ? "false" : "true");
	if (rc)
		fprintf(stderr, "faultlat: DATA MISMATCH after swap-in\n");
	return rc;
}
