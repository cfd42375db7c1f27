/*
 * store_lmdb_verify.c - checks an LMDB file's pages before LMDB walks them.
 *
 * LMDB trusts its pages: a damaged page makes it follow a wild pointer
 * (SIGBUS, SIGSEGV) or fail one of its assertions (abort), which under
 * libmilter would take every connection with it, and a damaged leaf can
 * also just hide its records. So a page is checked against the layout of
 * LMDB data version 1 (liblmdb 0.9) before LMDB reads it: page number,
 * type, bounds of the pointer array and of every node, child and overflow
 * page numbers inside the file, two keys at least in a branch page of a
 * table (LMDB asserts it), each page reached once, bounded depth.
 *
 * At open, under a read transaction that pins the snapshot, pages are read
 * with pread, never through the map: the meta page, the free-page tree and
 * its lists (each list well formed and in order, each page in the file, in
 * no tree and on one list only), the main tree, and the tables. A data
 * file of up to BW_LMDB_FULL_MAX bytes is read whole. A bigger one (ten
 * million consent records take 2 GB: reading them cost seconds from the
 * page cache and over a minute from disk) has every branch page read, and
 * every page of the tables of up to V_SMALL_DB pages, but not the leaves of
 * the big tables nor their overflow pages: those are left to a guard,
 * which the store asks, inside each transaction, to check the pages an
 * operation will reach (the leaf of a key, the leaves next to it that a
 * put or a delete may touch, the next leaf of a scan) through LMDB's own
 * map before LMDB reads them. A page checked stays checked; a page written
 * since the open is LMDB's own work. The guard routes a key the way LMDB's
 * branch search does, in the default key order.
 *
 * BW_STORE_VERIFY_FULL_MAX in the environment replaces BW_LMDB_FULL_MAX
 * (bytes): for tests only, to make a small store take the big store's path.
 *
 * bulkwarden's tables are plain (no MDB_DUPSORT, default key order); any
 * other table is reported as "not ours". A table that needs more must
 * teach this file first.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <lmdb.h>

#include "store.h"
#include "store_impl.h"
#include "store_lmdb_verify.h"

/* LMDB 0.9 on-disk layout (mdb.c, MDB_DATA_VERSION 1) */
#define V_MAGIC         0xBEEFC0DEu
#define V_DATA_VERSION  1u
#define V_PAGEHDRSZ     16u      /* pgno 8, pad 2, flags 2, lower 2, upper 2 */
#define V_NODESIZE      8u       /* lo 2, hi 2, flags 2, ksize 2 */
#define V_DBSIZE        48u      /* MDB_db */
#define V_META_DBS      (V_PAGEHDRSZ + 24u) /* magic, version, address, mapsize */
#define V_META_LASTPG   (V_META_DBS + 2 * V_DBSIZE)
#define V_META_TXNID    (V_META_LASTPG + 8u)
#define V_DB_PAD        0u       /* the free DB's pad holds the page size */
#define V_DB_FLAGS      4u
#define V_DB_DEPTH      6u
#define V_DB_PAGES      8u       /* branch, leaf and overflow page counts */
#define V_DB_ROOT       40u
#define V_DB_KEYFLAGS   (MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED \
                         | MDB_INTEGERDUP | MDB_REVERSEDUP)
#define P_BRANCH        0x01u
#define P_LEAF          0x02u
#define P_OVERFLOW      0x04u
#define P_META          0x08u
#define P_LEAF2         0x20u
#define P_SUBP          0x40u
#define P_TYPES         (P_BRANCH | P_LEAF | P_OVERFLOW | P_META | P_LEAF2 | P_SUBP)
#define F_BIGDATA       0x01u
#define F_SUBDATA       0x02u
#define F_DUPDATA       0x04u
#define V_INVALID       UINT64_MAX
#define V_DEPTH_MAX     32u      /* LMDB's cursor stack */
#define V_SMALL_DB      64u      /* tables this small are checked whole at open */

/* which tree a page belongs to */
enum { T_FREE, T_MAIN, T_NAMED };

/* results besides 0 (sound) and errno or LMDB codes */
#define V_DAMAGED       BW_STORE_LMDB_DAMAGED
#define V_RACED         (-2)     /* the snapshot's meta page was rewritten */

struct bw_lmdb_guard {
	uint32_t psize;
	MDB_dbi main;             /* the main database: the tables' records */
	uint64_t npages;          /* pages 0 .. npages - 1 were in the file at open */
	unsigned char *sound;     /* bit per page: checked (read and set atomically) */
	pthread_mutex_t lock;     /* over the map as write transactions see it: */
	const unsigned char *wmap;
	size_t wmapsize;
};

typedef struct verify {
	int fd;                   /* the open walk reads pages with pread ... */
	const unsigned char *map; /* ... a guard reads them in LMDB's map */
	uint32_t psize;
	uint64_t last_pg;
	bw_lmdb_guard *g;         /* the pages checked here are marked in it */
	uint64_t full_max;        /* open walk: bigger files are not read whole */
	uint64_t skipped;         /* open walk: leaves left to the guard */
	unsigned char *page;      /* open walk: one page buffer */
	unsigned char *seen;      /* open walk: bitmap over pages 0..last_pg */
	uint64_t *stack;          /* pending: pgno << 16 | leaf level << 8 | tree << 6 | depth */
	size_t nstack, capstack;
	uint64_t *freepg;         /* pages named by the free lists */
	size_t nfree, capfree;
	char *why;
	size_t whylen;
} verify;

static uint16_t
v_u16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t
v_u32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t
v_u64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static int v_bad(verify *v, uint64_t pg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Says what is wrong with page pg; returns V_DAMAGED. */
static int
v_bad(verify *v, uint64_t pg, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(v->why, v->whylen, "page %llu: %s", (unsigned long long)pg, what);
	return V_DAMAGED;
}

static bool
g_is_sound(const bw_lmdb_guard *g, uint64_t pg)
{
	if (pg >= g->npages)
		return true; /* written since the open, by LMDB */
	return (__atomic_load_n(&g->sound[pg / 8], __ATOMIC_ACQUIRE) >> (pg % 8)) & 1;
}

static void
g_set_sound(bw_lmdb_guard *g, uint64_t pg)
{
	if (pg < g->npages)
		__atomic_fetch_or(&g->sound[pg / 8], (unsigned char)(1u << (pg % 8)), __ATOMIC_RELEASE);
}

/* Reads len bytes of page pg into buf: 0, V_DAMAGED (past the end), or an errno. */
static int
v_read(verify *v, uint64_t pg, unsigned char *buf, size_t len)
{
	ssize_t n = pread(v->fd, buf, len, (off_t)(pg * v->psize));

	if (n < 0)
		return errno ? errno : EIO;
	if ((size_t)n != len)
		return v_bad(v, pg, "past the end of the file (%llu bytes there)",
		    (unsigned long long)n);
	return 0;
}

/* Marks pages [pg, pg + n) seen; V_DAMAGED if one is out of range or seen before. */
static int
v_mark(verify *v, uint64_t pg, uint64_t n)
{
	if (pg < 2 || pg > v->last_pg || n > v->last_pg - pg + 1)
		return v_bad(v, pg, "page number out of range (last page %llu)",
		    (unsigned long long)v->last_pg);
	for (uint64_t i = pg; i < pg + n; i++) {
		if (v->seen[i / 8] & (1u << (i % 8)))
			return v_bad(v, i, "reached twice (a loop in the tree)");
		v->seen[i / 8] |= (unsigned char)(1u << (i % 8));
	}
	return 0;
}

/* Queues page pg of tree at depth; leaves at level leaf (root 1) are not read (0: all are). */
static int
v_push(verify *v, uint64_t pg, unsigned tree, unsigned depth, unsigned leaf)
{
	int r;

	if (pg == V_INVALID)
		return 0;
	if (depth >= V_DEPTH_MAX)
		return v_bad(v, pg, "tree deeper than %u levels", V_DEPTH_MAX);
	if ((r = v_mark(v, pg, 1)) != 0)
		return r;
	if (v->nstack == v->capstack) {
		size_t cap = v->capstack ? v->capstack * 2 : 64;
		uint64_t *s = realloc(v->stack, cap * sizeof(*s));

		if (s == NULL)
			return ENOMEM;
		v->stack = s;
		v->capstack = cap;
	}
	v->stack[v->nstack++] = pg << 16 | (uint64_t)leaf << 8 | (uint64_t)tree << 6 | depth;
	return 0;
}

/* The overflow run a big node points at (only its header is read). */
static int
v_overflow(verify *v, uint64_t pg, uint64_t dsize)
{
	unsigned char buf[V_PAGEHDRSZ];
	const unsigned char *h = buf;
	uint32_t npages;
	int r;

	if (pg < 2 || pg > v->last_pg)
		return v_bad(v, pg, "overflow page number out of range");
	if (v->map != NULL)
		h = v->map + pg * v->psize;
	else if ((r = v_read(v, pg, buf, sizeof(buf))) != 0)
		return r;
	npages = v_u32(h + 12);
	if (v_u64(h) != pg || (v_u16(h + 10) & P_TYPES) != P_OVERFLOW || npages == 0)
		return v_bad(v, pg, "not the overflow page a node points at");
	if (dsize > (uint64_t)npages * v->psize - V_PAGEHDRSZ)
		return v_bad(v, pg, "overflow run of %u pages too short for its data", npages);
	if (npages - 1 > v->last_pg - pg)
		return v_bad(v, pg, "overflow run of %u pages past the last page", npages);
	return v->map != NULL ? 0 : v_mark(v, pg, npages);
}

/*
 * One free list: a count, then that many page numbers (an IDL). Inline
 * (data) or on the overflow run at ovpg. The pages are checked after the
 * walk, when every tree page is known.
 */
static int
v_freelist(verify *v, uint64_t pg, const unsigned char *data, uint64_t ovpg, uint64_t dsize)
{
	unsigned char *buf = NULL;
	uint64_t n;
	int r = 0;

	if (dsize < 8 || dsize % 8 != 0)
		return v_bad(v, pg, "free list of %llu bytes", (unsigned long long)dsize);
	if (data == NULL) {
		ssize_t got;

		if ((buf = malloc(dsize)) == NULL)
			return ENOMEM;
		got = pread(v->fd, buf, dsize, (off_t)(ovpg * v->psize + V_PAGEHDRSZ));
		if (got < 0 || (uint64_t)got != dsize) {
			free(buf);
			return got < 0 ? errno : v_bad(v, ovpg, "free list past the end of the file");
		}
		data = buf;
	}
	n = v_u64(data);
	if (n != dsize / 8 - 1) {
		r = v_bad(v, pg, "free list counts %llu pages in %llu bytes", (unsigned long long)n,
		    (unsigned long long)dsize);
		goto out;
	}
	if (n > SIZE_MAX / 8 - v->nfree) {
		r = ENOMEM;
		goto out;
	}
	if (v->nfree + n > v->capfree) {
		size_t cap = v->capfree ? v->capfree : 256;
		uint64_t *f;

		while (cap < v->nfree + n)
			cap *= 2;
		if ((f = realloc(v->freepg, cap * sizeof(*f))) == NULL) {
			r = ENOMEM;
			goto out;
		}
		v->freepg = f;
		v->capfree = cap;
	}
	/* LMDB keeps each list sorted, highest page first */
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t f = v_u64(data + 8 * i);

		if (i > 1 && f >= v->freepg[v->nfree - 1]) {
			r = v_bad(v, pg, "free list out of order at entry %llu", (unsigned long long)i);
			goto out;
		}
		v->freepg[v->nfree++] = f;
	}
out:
	free(buf);
	return r;
}

/*
 * A table's record in the main tree: queues its root. A big table in a
 * big file has the leaves below its last branch level left to the guard.
 */
static int
v_table(verify *v, uint64_t pg, unsigned i, const unsigned char *db)
{
	uint64_t pages = 0;
	unsigned depth = v_u16(db + V_DB_DEPTH), leaf = 0;

	if (v_u16(db + V_DB_FLAGS) & V_DB_KEYFLAGS)
		return v_bad(v, pg, "node %u: a table with sorted duplicates or its own key "
		    "order: not a bulkwarden store", i);
	for (unsigned k = 0; k < 3; k++) {
		uint64_t n = v_u64(db + V_DB_PAGES + 8 * k);

		pages = n > UINT64_MAX - pages ? UINT64_MAX : pages + n;
	}
	/* (the depth only saves reads: a leaf taken for a branch is read, a branch
	 * taken for a leaf is checked by the guard before LMDB reads it) */
	if (v->g != NULL && pages > V_SMALL_DB && depth > 1 && depth <= V_DEPTH_MAX)
		leaf = depth;
	return v_push(v, v_u64(db + V_DB_ROOT), T_NAMED, 0, leaf);
}

/*
 * Checks tree page pg at p. The open walk queues its children and tables;
 * a guard (v->map) only checks that they are in the file.
 */
static int
v_page(verify *v, uint64_t pg, const unsigned char *p, unsigned tree, unsigned depth,
    unsigned leaf)
{
	uint16_t flags = v_u16(p + 10) & P_TYPES, lower = v_u16(p + 12), upper = v_u16(p + 14);
	unsigned nkeys;
	int r;

	if (v_u64(p) != pg)
		return v_bad(v, pg, "says it is page %llu", (unsigned long long)v_u64(p));
	if (flags != P_BRANCH && flags != P_LEAF)
		return v_bad(v, pg, "not a branch or leaf page (flags %#x)", flags);
	if (lower < V_PAGEHDRSZ || (lower - V_PAGEHDRSZ) % 2 != 0 || lower > upper
	    || upper > v->psize)
		return v_bad(v, pg, "bad free-space bounds (lower %u)", lower);
	nkeys = (lower - V_PAGEHDRSZ) / 2;
	if (flags == P_BRANCH && nkeys < (tree == T_FREE ? 1u : 2u))
		return v_bad(v, pg, "branch page with %u keys", nkeys);
	for (unsigned i = 0; i < nkeys; i++) {
		uint16_t off = v_u16(p + V_PAGEHDRSZ + 2 * i);
		const unsigned char *n = p + off, *data;
		uint64_t lo, hi, nflags, ksize, end, dsize;

		if (off < upper || off % 2 != 0 || (size_t)off + V_NODESIZE > v->psize)
			return v_bad(v, pg, "node %u outside the node area", i);
		lo = v_u16(n);
		hi = v_u16(n + 2);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		lo = v_u16(n + 2);
		hi = v_u16(n);
#endif
		nflags = v_u16(n + 4);
		ksize = v_u16(n + 6);
		end = off + V_NODESIZE + ksize;
		data = n + V_NODESIZE + ksize;
		if (end > v->psize)
			return v_bad(v, pg, "key of node %u runs past the page", i);
		if (flags == P_BRANCH) {
			uint64_t child = lo | hi << 16 | nflags << 32;

			if (child < 2 || child > v->last_pg)
				return v_bad(v, pg, "node %u: child page %llu out of range", i,
				    (unsigned long long)child);
			if (v->map != NULL)
				continue;
			if (leaf != 0 && depth + 2 == leaf) {
				if ((r = v_mark(v, child, 1)) != 0)
					return r;
				v->skipped++;
			} else if ((r = v_push(v, child, tree, depth + 1, leaf)) != 0) {
				return r;
			}
			continue;
		}
		dsize = lo | hi << 16;
		if (nflags & F_DUPDATA)
			return v_bad(v, pg, "node %u has sorted duplicates: not a bulkwarden store", i);
		if (nflags & F_BIGDATA) {
			if (nflags & F_SUBDATA)
				return v_bad(v, pg, "node %u: misplaced table", i);
			if (end + 8 > v->psize)
				return v_bad(v, pg, "node %u runs past the page", i);
			if ((r = v_overflow(v, v_u64(data), dsize)) != 0)
				return r;
			if (tree == T_FREE && (r = v_freelist(v, pg, NULL, v_u64(data), dsize)) != 0)
				return r;
			continue;
		}
		if (end + dsize > v->psize)
			return v_bad(v, pg, "data of node %u runs past the page", i);
		if (tree == T_FREE && (r = v_freelist(v, pg, data, 0, dsize)) != 0)
			return r;
		if (nflags & F_SUBDATA) {
			if (tree != T_MAIN || dsize != V_DBSIZE)
				return v_bad(v, pg, "node %u: misplaced table", i);
			if ((r = v_table(v, pg, i, data)) != 0)
				return r;
		}
	}
	return 0;
}

/* Picks the meta page of snapshot txnid: 0, V_DAMAGED, V_RACED (none is), or an errno. */
static int
v_meta(verify *v, uint64_t txnid, uint64_t roots[2])
{
	unsigned char m[V_META_TXNID + 8];
	int r;

	for (uint64_t pg = 0; pg < 2; pg++) {
		if ((r = v_read(v, pg, m, sizeof(m))) != 0)
			return r;
		if (v_u32(m + V_PAGEHDRSZ) != V_MAGIC || v_u32(m + V_PAGEHDRSZ + 4) != V_DATA_VERSION)
			continue;
		if (v_u64(m + V_META_TXNID) != txnid)
			continue;
		if (v_u32(m + V_META_DBS + V_DB_PAD) != v->psize)
			return v_bad(v, pg, "meta page with page size %u",
			    v_u32(m + V_META_DBS + V_DB_PAD));
		v->last_pg = v_u64(m + V_META_LASTPG);
		if (v->last_pg < 1 || v->last_pg > ((uint64_t)1 << 48))
			return v_bad(v, pg, "meta page with last page %llu",
			    (unsigned long long)v->last_pg);
		roots[0] = v_u64(m + V_META_DBS + V_DB_ROOT);
		roots[1] = v_u64(m + V_META_DBS + V_DBSIZE + V_DB_ROOT);
		return 0;
	}
	return V_RACED;
}

/* One pass over the snapshot of txnid: 0 sound, V_DAMAGED, V_RACED, or an errno. */
static int
v_walk(verify *v, uint64_t txnid)
{
	uint64_t roots[2] = { V_INVALID, V_INVALID };
	long os_page = sysconf(_SC_PAGESIZE);
	int r;

	if ((r = v_meta(v, txnid, roots)) != 0)
		return r;
	free(v->seen);
	if ((v->seen = calloc(v->last_pg / 8 + 1, 1)) == NULL)
		return ENOMEM;
	bw_lmdb_guard_free(v->g);
	v->g = NULL;
	v->skipped = 0;
	/* a guard finds LMDB's map from a pointer into it: the map's pages must be the OS's */
	if ((v->last_pg + 1) * v->psize > v->full_max && os_page == (long)v->psize) {
		if ((v->g = calloc(1, sizeof(*v->g))) == NULL
		    || (v->g->sound = calloc(v->last_pg / 8 + 1, 1)) == NULL)
			return ENOMEM;
		v->g->psize = v->psize;
		v->g->npages = v->last_pg + 1;
		pthread_mutex_init(&v->g->lock, NULL);
	}
	v->nstack = 0;
	v->nfree = 0;
	if ((r = v_push(v, roots[0], T_FREE, 0, 0)) != 0
	    || (r = v_push(v, roots[1], T_MAIN, 0, 0)) != 0)
		return r;
	while (v->nstack > 0) {
		uint64_t e = v->stack[--v->nstack], pg = e >> 16;

		if ((r = v_read(v, pg, v->page, v->psize)) != 0
		    || (r = v_page(v, pg, v->page, (e >> 6) & 3, (unsigned)(e & 0x3f),
		    (unsigned)(e >> 8) & 0xff)) != 0)
			return r;
		if (v->g != NULL)
			g_set_sound(v->g, pg);
	}
	for (size_t i = 0; i < v->nfree; i++) {
		uint64_t f = v->freepg[i];

		if (f < 2 || f > v->last_pg)
			return v_bad(v, f, "on a free list but outside the file (last page %llu)",
			    (unsigned long long)v->last_pg);
		if (v->seen[f / 8] & (1u << (f % 8)))
			return v_bad(v, f, "on a free list twice, or free and in use");
		v->seen[f / 8] |= (unsigned char)(1u << (f % 8));
	}
	return 0;
}

/* BW_LMDB_FULL_MAX, or the test-only override from the environment. */
static uint64_t
v_full_max(void)
{
	const char *e = getenv(BW_LMDB_FULL_MAX_ENV);
	char *end;
	unsigned long long n;

	if (e == NULL || *e < '0' || *e > '9')
		return BW_LMDB_FULL_MAX;
	errno = 0;
	n = strtoull(e, &end, 10);
	return errno != 0 || *end != 0 ? BW_LMDB_FULL_MAX : n;
}

int
bw_store_lmdb_check(MDB_env *env, bw_lmdb_guard **guard, char *why, size_t whylen)
{
	verify v = { .why = why, .whylen = whylen, .full_max = v_full_max() };
	MDB_stat st;
	MDB_txn *txn;
	int r = 0;

	*guard = NULL;
	if (SIZE_MAX != UINT64_MAX)
		return 0; /* the layout above is the 64-bit one */
	if ((r = mdb_env_stat(env, &st)) != 0 || (r = mdb_env_get_fd(env, &v.fd)) != 0)
		return r;
	v.psize = st.ms_psize;
	if ((v.page = malloc(v.psize)) == NULL)
		return ENOMEM;
	/* a writer may overwrite the snapshot's meta page two commits on: try again */
	for (int attempt = 0; attempt < 3; attempt++) {
		if ((r = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0)
			break;
		r = v_walk(&v, mdb_txn_id(txn));
		if (r == 0 && v.g != NULL && v.skipped > 0)
			r = mdb_dbi_open(txn, NULL, 0, &v.g->main);
		mdb_txn_abort(txn);
		if (r != V_RACED)
			break;
	}
	if (r == V_RACED)
		r = 0; /* still racing, or a data version this walk does not know: leave it to LMDB */
	if (r == 0 && v.g != NULL && v.skipped > 0) {
		*guard = v.g;
		v.g = NULL;
	}
	bw_lmdb_guard_free(v.g);
	free(v.page);
	free(v.seen);
	free(v.stack);
	free(v.freepg);
	return r;
}

void
bw_lmdb_guard_free(bw_lmdb_guard *g)
{
	if (g != NULL) {
		if (g->sound != NULL)
			pthread_mutex_destroy(&g->lock);
		free(g->sound);
		free(g);
	}
}

/* ---------------------------------------------------------------- the guard */

/* The branch pages from a table's root to a leaf, and the child taken in each. */
typedef struct g_path {
	const unsigned char *pg[V_DEPTH_MAX];
	unsigned idx[V_DEPTH_MAX];
	unsigned n;
} g_path;

enum { G_KEY, G_FIRST, G_LAST };

static unsigned
g_nkeys(const unsigned char *p)
{
	return (unsigned)(v_u16(p + 12) - V_PAGEHDRSZ) / 2;
}

static const unsigned char *
g_node(const unsigned char *p, unsigned i)
{
	return p + v_u16(p + V_PAGEHDRSZ + 2 * i);
}

static uint64_t
g_child(const unsigned char *p, unsigned i)
{
	const unsigned char *n = g_node(p, i);
	uint64_t lo = v_u16(n), hi = v_u16(n + 2);

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	lo = v_u16(n + 2);
	hi = v_u16(n);
#endif
	return lo | hi << 16 | (uint64_t)v_u16(n + 4) << 32;
}

/* LMDB's default order: bytes, then the shorter first. */
static int
g_cmp(const MDB_val *a, const unsigned char *b, size_t blen)
{
	int c = memcmp(a->mv_data, b, a->mv_size < blen ? a->mv_size : blen);

	return c != 0 ? c : (a->mv_size > blen) - (a->mv_size < blen);
}

/* The child of a checked branch page LMDB takes for key (mdb_node_search). */
static unsigned
g_route(const unsigned char *p, const MDB_val *key)
{
	unsigned nkeys = g_nkeys(p), i = 0;
	int low = 1, high = (int)nkeys - 1, c = 0;

	while (low <= high) {
		const unsigned char *n;

		i = (unsigned)(low + high) >> 1;
		n = g_node(p, i);
		if ((c = g_cmp(key, n + V_NODESIZE, v_u16(n + 6))) == 0)
			break;
		if (c > 0)
			low = (int)i + 1;
		else
			high = (int)i - 1;
	}
	if (c > 0)
		i++;
	if (i >= nkeys)
		return nkeys - 1;
	return c == 0 ? i : i - 1;
}

/* Page pg of the snapshot, checked unless it is known sound. */
static int
g_get(verify *v, uint64_t pg, const unsigned char **pp)
{
	const unsigned char *p;
	int r;

	if (pg < 2 || pg > v->last_pg)
		return v_bad(v, pg, "page number out of range (last page %llu)",
		    (unsigned long long)v->last_pg);
	p = v->map + pg * v->psize;
	if (!g_is_sound(v->g, pg)) {
		if ((r = v_page(v, pg, p, T_NAMED, 0, 0)) != 0)
			return r;
		g_set_sound(v->g, pg);
	}
	*pp = p;
	return 0;
}

/* From page pg down to a leaf: by key, or along the first or last children. */
static int
g_descend(verify *v, uint64_t pg, const MDB_val *key, int how, g_path *path)
{
	const unsigned char *p = NULL;
	int r;

	path->n = 0;
	for (;;) {
		unsigned j;

		if (path->n >= V_DEPTH_MAX)
			return v_bad(v, pg, "tree deeper than %u levels", V_DEPTH_MAX);
		if ((r = g_get(v, pg, &p)) != 0)
			return r;
		if ((v_u16(p + 10) & P_TYPES) == P_LEAF)
			return 0;
		j = how == G_FIRST ? 0 : how == G_LAST ? g_nkeys(p) - 1 : g_route(p, key);
		path->pg[path->n] = p;
		path->idx[path->n++] = j;
		pg = g_child(p, j);
	}
}

/* The leaf after (dir 1) or before (dir -1) the one path leads to. */
static int
g_beside(verify *v, const g_path *path, int dir)
{
	g_path sub;

	for (unsigned i = path->n; i-- > 0;) {
		long j = (long)path->idx[i] + dir;

		if (j >= 0 && j < (long)g_nkeys(path->pg[i]))
			return g_descend(v, g_child(path->pg[i], (unsigned)j), NULL,
			    dir > 0 ? G_FIRST : G_LAST, &sub);
	}
	return 0;
}

/*
 * What a delete's rebalance may read: at each level of the path, the
 * first and last leaves below the child taken and its two neighbours.
 */
static int
g_around(verify *v, const g_path *path)
{
	g_path sub;
	int r;

	for (unsigned i = 0; i < path->n; i++) {
		unsigned n = g_nkeys(path->pg[i]), j = path->idx[i];

		for (unsigned c = j > 0 ? j - 1 : 0; c <= j + 1 && c < n; c++) {
			uint64_t child = g_child(path->pg[i], c);

			if ((r = g_descend(v, child, NULL, G_FIRST, &sub)) != 0
			    || (r = g_descend(v, child, NULL, G_LAST, &sub)) != 0)
				return r;
		}
	}
	return 0;
}

/*
 * LMDB's map: found from rec, a table's record in a page of the main tree
 * (checked at open or written by LMDB since) that a read transaction sees
 * in the map. A write transaction's first write to a table copies that
 * page out of the map, so its first call (before any write) finds the map
 * and the later ones reuse it; the map moves only when it is resized.
 */
static int
g_map(bw_lmdb_guard *g, MDB_txn *txn, const MDB_envinfo *info, const void *rec, uint64_t last,
    const unsigned char **map)
{
	bool writer = mdb_txn_id(txn) > info->me_last_txnid;
	uintptr_t at = (uintptr_t)rec & ~(uintptr_t)(g->psize - 1), pgno;
	int r = 0;

	if (writer) {
		pthread_mutex_lock(&g->lock);
		if (g->wmap != NULL && g->wmapsize == info->me_mapsize) {
			*map = g->wmap;
			pthread_mutex_unlock(&g->lock);
			return 0;
		}
	}
	pgno = (uintptr_t)v_u64((const unsigned char *)at);
	if (pgno < 2 || pgno > last || at / g->psize < pgno)
		r = MDB_BAD_TXN; /* not in the map */
	else
		*map = (const unsigned char *)(at - pgno * g->psize);
	if (writer) {
		if (r == 0) {
			g->wmap = *map;
			g->wmapsize = info->me_mapsize;
		}
		pthread_mutex_unlock(&g->lock);
	}
	return r;
}

/* Sets v up for table in txn: the map, the last page, and the table's root. */
static int
g_begin(bw_lmdb_guard *g, MDB_txn *txn, const char *table, verify *v, uint64_t *root,
    char *why, size_t whylen)
{
	MDB_val name = { strlen(table), (void *)table }, rec;
	MDB_envinfo info;
	uint64_t last;
	int r;

	memset(v, 0, sizeof(*v));
	v->fd = -1;
	v->g = g;
	v->psize = g->psize;
	v->why = why;
	v->whylen = whylen;
	if ((r = mdb_get(txn, g->main, &name, &rec)) != 0)
		return r;
	if (rec.mv_size != V_DBSIZE)
		return MDB_INCOMPATIBLE;
	if ((r = mdb_env_info(mdb_txn_env(txn), &info)) != 0)
		return r;
	last = info.me_last_pgno;
	if (info.me_mapsize / g->psize - 1 < last)
		last = info.me_mapsize / g->psize - 1;
	if ((r = g_map(g, txn, &info, rec.mv_data, last, &v->map)) != 0)
		return r;
	v->last_pg = last;
	*root = v_u64((const unsigned char *)rec.mv_data + V_DB_ROOT);
	return 0;
}

int
bw_lmdb_guard_op(bw_lmdb_guard *g, MDB_txn *txn, const char *table, const MDB_val *key,
    bw_lmdb_op op, char *why, size_t whylen)
{
	verify v;
	g_path path;
	uint64_t root;
	int r;

	if ((r = g_begin(g, txn, table, &v, &root, why, whylen)) != 0)
		return r == MDB_NOTFOUND ? 0 : r; /* no such table: LMDB says so */
	if (root == V_INVALID)
		return 0;
	switch (op) {
	case BW_LMDB_GET:
		return g_descend(&v, root, key, G_KEY, &path);
	case BW_LMDB_FIRST:
		return g_descend(&v, root, NULL, G_FIRST, &path);
	case BW_LMDB_RANGE: /* past the leaf's last key LMDB steps to the next leaf */
		if ((r = g_descend(&v, root, key, G_KEY, &path)) != 0)
			return r;
		return g_beside(&v, &path, 1);
	case BW_LMDB_PUT:
		/* a delete earlier in the transaction can move a key's place to the leaf before */
		if ((r = g_descend(&v, root, key, G_KEY, &path)) != 0)
			return r;
		return g_beside(&v, &path, -1);
	case BW_LMDB_APPEND:
		if ((r = g_descend(&v, root, NULL, G_LAST, &path)) != 0)
			return r;
		return g_beside(&v, &path, -1);
	case BW_LMDB_DEL:
		if ((r = g_descend(&v, root, key, G_KEY, &path)) != 0)
			return r;
		return g_around(&v, &path);
	}
	return EINVAL;
}

int
bw_lmdb_guard_next(bw_lmdb_guard *g, MDB_txn *txn, const char *table, const MDB_val *key,
    char *why, size_t whylen)
{
	const unsigned char *k = key->mv_data, *p;
	verify v;
	g_path path;
	uint64_t root;
	unsigned nkeys;
	int r;

	/* key lies in the leaf the cursor is on, which was checked before LMDB went there */
	p = (const unsigned char *)((uintptr_t)k & ~(uintptr_t)(g->psize - 1));
	nkeys = g_nkeys(p);
	if (nkeys == 0 || k != g_node(p, nkeys - 1) + V_NODESIZE)
		return 0;
	if ((r = g_begin(g, txn, table, &v, &root, why, whylen)) != 0)
		return r == MDB_NOTFOUND ? 0 : r;
	if (root == V_INVALID || (r = g_descend(&v, root, key, G_KEY, &path)) != 0)
		return r;
	return g_beside(&v, &path, 1);
}
