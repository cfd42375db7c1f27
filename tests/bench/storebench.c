/*
 * storebench.c - the store's speed on consent-like records: a sorted bulk
 * import through bw_store_write_many, and the lookup of one recipient at
 * RCPT time (bw_store_get_many of 6 keys, mostly absent).
 *
 * usage: storebench [-a] [-b BATCH] [-m MAPSIZE_MB] [-n LOOKUPS] [-s SENDERS] STORE COUNT MODE
 *   STORE  a directory (an LMDB store; import wants it new or empty unless
 *          -a) or a store spec ("lmdb:/dir", "redis:host:port")
 *   COUNT  records in the store (import writes them; lookup assumes them)
 *   MODE   import | lookup | both | shuffled (an import in random order)
 * Keys are "senderNNNN uNNNNNNNNNN@mailNN.example.com" (about 40 bytes),
 * recipient numbers rising with a random stride of 1 to 16, so a sender's
 * keys come in order and a random recipient has consent one time in 16.
 * Values are about 150 bytes of JSON. Defaults: 100,000 records per
 * transaction, MapSize 8 GiB (the map is sparse), 100,000 lookups, 1,000
 * senders. Only the store calls are timed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define KEY_LEN 64
#define VAL_LEN 192

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
	    + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* splitmix64: the same stream on every run */
static uint64_t
mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The j-th recipient number of sender i. */
static uint64_t
rcpt_no(unsigned i, uint64_t j)
{
	return j * 16 + (mix(((uint64_t)i << 40) ^ j) & 15);
}

static void
make_key(char *buf, unsigned sender, uint64_t r)
{
	snprintf(buf, KEY_LEN, "sender%04u u%010" PRIu64 "@mail%02u.example.com", sender, r,
	    (unsigned)(r % 100));
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static bw_store *
open_store(const char *spec, size_t mapsize)
{
	bw_store_opts o = { .map_size = mapsize };
	char err[512];
	double t0 = now();
	bw_store *s = bw_store_open(spec, &o, err, sizeof(err));

	if (s == NULL) {
		fprintf(stderr, "storebench: %s\n", err);
		exit(1);
	}
	printf("open: %.3f s%s\n", now() - t0, strncmp(spec, "lmdb:", 5) == 0
	    ? " (LMDB checks every page of the file at open)" : "");
	return s;
}

static void
make_record(char *k, unsigned i, uint64_t j)
{
	char *v = k + KEY_LEN;
	uint64_t r = rcpt_no(i, j);

	make_key(k, i, r);
	snprintf(v, VAL_LEN, "{\"granted_at\":\"2024-05-01T12:00:00Z\",\"method\":"
	    "\"double-opt-in\",\"source\":\"https://example.com/signup\",\"source_ip\":"
	    "\"192.0.2.%u\",\"recorded_at\":\"2024-05-01T12:00:%02uZ\"}",
	    (unsigned)(r % 250) + 1, (unsigned)(r % 60));
}

/*
 * count records, sender by sender (key order), in write_many batches;
 * shuffled: all of them made first, then written in a random order.
 */
static int
import(bw_store *s, uint64_t count, unsigned senders, size_t batch, int shuffled)
{
	uint64_t per = (count + senders - 1) / senders, n_consent = 0, before = 0;
	size_t slots = shuffled ? count : batch, n = 0;
	bw_store_kv *kv = calloc(slots, sizeof(*kv));
	char *mem = malloc(slots * (KEY_LEN + VAL_LEN));
	double in_store = 0, worst = 0, t0 = now(), c0 = cpu();

	if (kv == NULL || mem == NULL) {
		fprintf(stderr, "storebench: out of memory\n");
		return 1;
	}
	bw_store_count(s, BW_TBL_CONSENT, &before);
	for (uint64_t done = 0; done < count;) {
		size_t m = 0, at;

		/* the next batch (shuffled: everything, once) */
		if (shuffled && done == 0) {
			for (uint64_t x = 0; x < count; x++) {
				kv[x].tbl = BW_TBL_CONSENT;
				kv[x].key = mem + x * (KEY_LEN + VAL_LEN);
				kv[x].val = kv[x].key + KEY_LEN;
				make_record(mem + x * (KEY_LEN + VAL_LEN), (unsigned)(x / per), x % per);
			}
			for (uint64_t x = count - 1; x > 0; x--) {
				uint64_t y = mix(x) % (x + 1);
				bw_store_kv t = kv[x];

				kv[x] = kv[y];
				kv[y] = t;
			}
		}
		if (shuffled) {
			at = (size_t)done;
			m = count - done < batch ? (size_t)(count - done) : batch;
		} else {
			at = 0;
			for (; m < batch && done + m < count; m++) {
				kv[m].tbl = BW_TBL_CONSENT;
				kv[m].key = mem + m * (KEY_LEN + VAL_LEN);
				kv[m].val = kv[m].key + KEY_LEN;
				make_record(mem + m * (KEY_LEN + VAL_LEN), (unsigned)((done + m) / per),
				    (done + m) % per);
			}
		}
		{
			double b0 = now(), took;
			bw_store_err e = bw_store_write_many(s, kv + at, m);

			took = now() - b0;
			if (e != BW_STORE_OK) {
				fprintf(stderr, "storebench: write_many: %s: %s\n", bw_store_strerror(e),
				    bw_store_last_error(s));
				return 1;
			}
			in_store += took;
			if (took > worst)
				worst = took;
		}
		done += m;
		n += m;
	}
	if (bw_store_count(s, BW_TBL_CONSENT, &n_consent) != BW_STORE_OK) {
		fprintf(stderr, "storebench: count: %s\n", bw_store_last_error(s));
		return 1;
	}
	printf("import%s: %zu records in batches of %zu: store %.2f s (%.0f records/s, "
	    "%.2f M records/min; slowest batch %.3f s); with generation %.2f s, CPU %.2f s\n",
	    shuffled ? " (shuffled)" : "", n, batch, in_store, (double)n / in_store,
	    (double)n / in_store * 60 / 1e6, worst, now() - t0, cpu() - c0);
	printf("import: count went from %" PRIu64 " to %" PRIu64 "\n", before, n_consent);
	free(kv);
	free(mem);
	return n_consent >= n ? 0 : 1;
}

/*
 * What the consent check asks for one recipient: consent for (sender,
 * rcpt) and (sender, *@domain); suppressions for (sender, rcpt), (*, rcpt)
 * and both again for the erased-address hash.
 */
static int
lookup(bw_store *s, uint64_t count, unsigned senders, unsigned lookups)
{
	uint64_t per = (count + senders - 1) / senders, hits = 0;
	double *lat = malloc(lookups * sizeof(*lat)), total = 0;
	char k[6][KEY_LEN * 2];
	bw_store_key keys[6];
	char *vals[6];
	uint64_t seed = 42;

	if (lat == NULL)
		return 1;
	for (unsigned n = 0; n < lookups; n++) {
		unsigned i = (unsigned)(mix(seed++) % senders);
		uint64_t r = mix(seed++) % (per * 16);
		double t0;
		bw_store_err e;

		make_key(k[0], i, r);
		snprintf(k[1], sizeof(k[1]), "sender%04u *@mail%02u.example.com", i, (unsigned)(r % 100));
		snprintf(k[2], sizeof(k[2]), "%s", k[0]);
		snprintf(k[3], sizeof(k[3]), "* u%010" PRIu64 "@mail%02u.example.com", r,
		    (unsigned)(r % 100));
		snprintf(k[4], sizeof(k[4]), "sender%04u #%016" PRIx64 "%016" PRIx64 "%016" PRIx64
		    "%016" PRIx64, i, mix(r), mix(r + 1), mix(r + 2), mix(r + 3));
		snprintf(k[5], sizeof(k[5]), "* #%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
		    mix(r), mix(r + 1), mix(r + 2), mix(r + 3));
		for (int x = 0; x < 6; x++) {
			keys[x].tbl = x < 2 ? BW_TBL_CONSENT : BW_TBL_SUPPRESS;
			keys[x].key = k[x];
		}
		t0 = now();
		e = bw_store_get_many(s, keys, 6, vals);
		lat[n] = now() - t0;
		if (e != BW_STORE_OK) {
			fprintf(stderr, "storebench: get_many: %s: %s\n", bw_store_strerror(e),
			    bw_store_last_error(s));
			return 1;
		}
		total += lat[n];
		for (int x = 0; x < 6; x++) {
			hits += vals[x] != NULL;
			free(vals[x]);
		}
	}
	qsort(lat, lookups, sizeof(*lat), cmp_double);
	printf("lookup: %u x get_many of 6 keys over %" PRIu64 " records: mean %.2f us, p50 %.2f us, "
	    "p99 %.2f us, max %.2f us; %" PRIu64 " of %u keys present\n", lookups, count,
	    total / lookups * 1e6, lat[lookups / 2] * 1e6, lat[lookups * 99 / 100] * 1e6,
	    lat[lookups - 1] * 1e6, hits, 6 * lookups);
	free(lat);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: storebench [-a] [-b BATCH] [-m MAPSIZE_MB] [-n LOOKUPS] [-s SENDERS] "
	    "STORE COUNT import|lookup|both|shuffled\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	size_t batch = 100000, mapsize = (size_t)8 << 30;
	unsigned lookups = 100000, senders = 1000;
	char spec[4096];
	const char *mode;
	uint64_t count;
	bw_store *s;
	int c, rc = 0, any = 0;

	while ((c = getopt(argc, argv, "ab:m:n:s:")) != -1) {
		switch (c) {
		case 'a': any = 1; break;
		case 'b': batch = strtoul(optarg, NULL, 10); break;
		case 'm': mapsize = strtoull(optarg, NULL, 10) << 20; break;
		case 'n': lookups = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': senders = (unsigned)strtoul(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (argc - optind != 3 || batch == 0 || lookups == 0 || senders == 0 || senders > 10000)
		usage();
	if (strncmp(argv[optind], "lmdb:", 5) == 0 || strncmp(argv[optind], "redis:", 6) == 0)
		snprintf(spec, sizeof(spec), "%s", argv[optind]);
	else
		snprintf(spec, sizeof(spec), "lmdb:%s", argv[optind]);
	count = strtoull(argv[optind + 1], NULL, 10);
	mode = argv[optind + 2];
	if (count == 0 || (strcmp(mode, "import") && strcmp(mode, "lookup") && strcmp(mode, "both")
	    && strcmp(mode, "shuffled")))
		usage();

	s = open_store(spec, mapsize);
	if (strcmp(mode, "lookup") != 0) {
		uint64_t have = 0;

		if (bw_store_count(s, BW_TBL_CONSENT, &have) != BW_STORE_OK || (have != 0 && !any)) {
			fprintf(stderr, "storebench: import wants an empty store (%s has %" PRIu64
			    " consent records)\n", spec, have);
			bw_store_close(s);
			return 1;
		}
		rc = import(s, count, senders, batch, strcmp(mode, "shuffled") == 0);
	}
	if (rc == 0 && (strcmp(mode, "lookup") == 0 || strcmp(mode, "both") == 0))
		rc = lookup(s, count, senders, lookups);
	bw_store_close(s);
	return rc;
}
