/*
 * store_lmdb_verify.c - checks an LMDB file before LMDB walks it.
 *
 * LMDB trusts its pages: a damaged page makes it follow a wild pointer
 * (SIGBUS, SIGSEGV), which under libmilter would take every connection
 * with it. So at open, under a read transaction that pins the snapshot,
 * every page reachable from it (free-page tree, main tree, named
 * databases) is read with pread, never through the map, and checked
 * against the layout of LMDB data version 1 (liblmdb 0.9): page number,
 * type, bounds of the pointer array and of every node, child and overflow
 * page numbers inside the file, each page reached once, bounded depth;
 * and the free-page lists, whose pages LMDB hands out to writers: each
 * list well formed and in order, each page in the file, in no tree and on
 * one list only. Pages written after open come from LMDB itself.
 *
 * bulkwarden's tables are plain (no MDB_DUPSORT); a duplicate-sorted
 * node is reported as "not ours". A table that needs MDB_DUPSORT must
 * teach this walk its sub-pages first.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "store.h"
#include "store_impl.h"

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
#define V_DB_ROOT       40u
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

/* which tree a page belongs to */
enum { T_FREE, T_MAIN, T_NAMED };

/* results besides 0 (sound) and errno or LMDB codes */
#define V_DAMAGED       BW_STORE_LMDB_DAMAGED
#define V_RACED         (-2)     /* the snapshot's meta page was rewritten */

typedef struct verify {
	int fd;
	uint32_t psize;
	uint64_t last_pg;
	unsigned char *page;      /* one page buffer */
	unsigned char *seen;      /* bitmap over pages 0..last_pg */
	uint64_t *stack;          /* pending pages: pgno << 8 | tree << 6 | depth */
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

static int
v_push(verify *v, uint64_t pg, unsigned tree, unsigned depth)
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
	v->stack[v->nstack++] = pg << 8 | (uint64_t)tree << 6 | depth;
	return 0;
}

/* The overflow run a big node points at (only its header is read). */
static int
v_overflow(verify *v, uint64_t pg, uint64_t dsize)
{
	unsigned char h[V_PAGEHDRSZ];
	uint32_t npages;
	int r;

	if (pg < 2 || pg > v->last_pg)
		return v_bad(v, pg, "overflow page number out of range");
	if ((r = v_read(v, pg, h, sizeof(h))) != 0)
		return r;
	npages = v_u32(h + 12);
	if (v_u64(h) != pg || (v_u16(h + 10) & P_TYPES) != P_OVERFLOW || npages == 0)
		return v_bad(v, pg, "not the overflow page a node points at");
	if (dsize > (uint64_t)npages * v->psize - V_PAGEHDRSZ)
		return v_bad(v, pg, "overflow run of %u pages too short for its data", npages);
	return v_mark(v, pg, npages);
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

/* Checks the tree page in v->page and queues its children and named databases. */
static int
v_page(verify *v, uint64_t pg, unsigned tree, unsigned depth)
{
	const unsigned char *p = v->page;
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
	if (flags == P_BRANCH && nkeys == 0)
		return v_bad(v, pg, "branch page without keys");
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
			if ((r = v_push(v, lo | hi << 16 | nflags << 32, tree, depth + 1)) != 0)
				return r;
			continue;
		}
		dsize = lo | hi << 16;
		if (nflags & F_DUPDATA)
			return v_bad(v, pg, "node %u has sorted duplicates: not a bulkwarden store", i);
		if (nflags & F_BIGDATA) {
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
				return v_bad(v, pg, "node %u: misplaced named database", i);
			if (v_u16(data + V_DB_FLAGS) & MDB_DUPSORT)
				return v_bad(v, pg, "node %u: sorted-duplicate database: not a "
				    "bulkwarden store", i);
			if ((r = v_push(v, v_u64(data + V_DB_ROOT), T_NAMED, 0)) != 0)
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
	int r;

	if ((r = v_meta(v, txnid, roots)) != 0)
		return r;
	free(v->seen);
	if ((v->seen = calloc(v->last_pg / 8 + 1, 1)) == NULL)
		return ENOMEM;
	v->nstack = 0;
	v->nfree = 0;
	if ((r = v_push(v, roots[0], T_FREE, 0)) != 0 || (r = v_push(v, roots[1], T_MAIN, 0)) != 0)
		return r;
	while (v->nstack > 0) {
		uint64_t e = v->stack[--v->nstack], pg = e >> 8;

		if ((r = v_read(v, pg, v->page, v->psize)) != 0
		    || (r = v_page(v, pg, (e >> 6) & 3, (unsigned)(e & 0x3f))) != 0)
			return r;
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

int
bw_store_lmdb_verify(MDB_env *env, char *why, size_t whylen)
{
	verify v = { .why = why, .whylen = whylen };
	MDB_stat st;
	MDB_txn *txn;
	int r = 0;

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
		mdb_txn_abort(txn);
		if (r != V_RACED)
			break;
	}
	if (r == V_RACED)
		r = 0; /* still racing, or a data version this walk does not know: leave it to LMDB */
	free(v.page);
	free(v.seen);
	free(v.stack);
	free(v.freepg);
	return r;
}
