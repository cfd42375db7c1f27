/*
 * store_impl.h - what a store backend provides, and what store.c gives it.
 *
 * Private to policy/store*.c. A backend is one file that fills a
 * bw_store_ops (a struct of function pointers, as Postfix's dict_* and
 * OpenSMTPD's queue_backend): typed, atomic operations, each one
 * transaction (LMDB) or one script/MULTI (Redis). store.c checks the
 * arguments before dispatching, so a backend may assume them valid.
 *
 * Tables. Every table that is dumped and restored has a line in
 * bw_store_tables[] (store.c): its name in dumps and the kind of its values.
 * Adding a table is: a bw_tbl value (store.h) and a line in the registry.
 * A table of BW_VAL_JSON records needs nothing else: the rec_* operations
 * and dump/restore serve every such table (LMDB: a named database per
 * registry line, created at open; Redis: the keys of store_redis.c's
 * scheme, named after the table). A new kind of value needs its typed
 * operations in the ops struct and its case in dump and restore_put. The
 * "meta" table (schema version) is each backend's own and is not in the
 * registry: store.c writes and checks the schema line of a dump itself.
 */
#ifndef BW_STORE_IMPL_H
#define BW_STORE_IMPL_H

#include <stdint.h>

#include "store.h"

#define BW_STORE_SCHEMA      1         /* layout version written into meta */
#define BW_STORE_NAME_MAX    255       /* bytes in a counter name (LMDB keys stop at 511) */
#define BW_STORE_LINE_MAX    65536     /* bytes in one line of a dump */
#define BW_STORE_ERR_MAX     512       /* bytes of last-error text */
#define BW_STORE_MAPSIZE_DEF ((size_t)1 << 30)
#define BW_STORE_READERS_DEF (126 + 16) /* LMDB's default slots plus tools */
#define BW_STORE_TIMEOUT_DEF 200       /* ms: Redis connect and command */

typedef enum {
	BW_VAL_INT64, /* a signed 64-bit integer; a JSON integer in dumps */
	BW_VAL_JSON   /* the text of a JSON object (BW_STORE_VAL_MAX bytes at most);
	               * the object itself in dumps, compact text in the store */
} bw_val_kind;

typedef struct bw_store_table {
	const char *name; /* in dumps; also the LMDB database name */
	bw_val_kind kind;
} bw_store_table;

extern const bw_store_table bw_store_tables[BW_TBL__N];

/* One record of a table, as dump hands it out and restore takes it in. */
typedef struct bw_store_rec {
	bw_tbl tbl;
	const char *key;  /* NUL-terminated; store.c checks it in dump and restore */
	int64_t ival;     /* BW_VAL_INT64 */
	const char *sval; /* BW_VAL_JSON: slen bytes, not NUL-terminated in a dump
	                   * (they may be the backend's own memory, valid during
	                   * the callback); compact JSON text in a restore */
	size_t slen;
} bw_store_rec;

typedef int (*bw_store_scan_fn)(void *ud, const char *name, int64_t val);
typedef int (*bw_store_rec_fn)(void *ud, const bw_store_rec *r);
typedef int (*bw_store_kv_fn)(void *ud, const char *key, const char *val);

typedef struct bw_store_ops {
	const char *name; /* "lmdb", "redis" */
	/* where: the spec after "name:". Fills s->be. On failure, a sentence in err. */
	bw_store_err (*open)(bw_store *s, const char *where, const bw_store_opts *o,
	    char *err, size_t errlen);
	void (*close)(bw_store *s);
	bw_store_err (*check)(bw_store *s, int *cleared);

	bw_store_err (*counter_add)(bw_store *s, const char *name, int64_t delta, int64_t *newval);
	bw_store_err (*counter_get)(bw_store *s, const char *name, int64_t *val);
	bw_store_err (*counter_add_many)(bw_store *s, const bw_counter_delta *d, size_t n);
	bw_store_err (*counter_del_many)(bw_store *s, const char *const *names, size_t n);
	/* fn is called with no transaction open: it may call the store. */
	bw_store_err (*counter_scan)(bw_store *s, const char *prefix, bw_store_scan_fn fn, void *ud);

	/*
	 * Records (tables of kind BW_VAL_JSON). store.c has checked every
	 * table, key and value, and that the handle is writable for the
	 * writes; n is at least 1. get_many: vals[] are NULL on entry, set
	 * to malloc'd copies of the values present; on an error store.c
	 * frees whatever was set. write_many: in the order given, all or
	 * nothing (put is a write_many of one). del: BW_STORE_NOTFOUND when
	 * absent. scan: fn gets NUL-terminated copies, in key byte order;
	 * it may read the store (not write); non-zero stops with BW_STORE_OK.
	 */
	bw_store_err (*rec_get_many)(bw_store *s, const bw_store_key *keys, size_t n, char **vals);
	bw_store_err (*rec_write_many)(bw_store *s, const bw_store_kv *kv, size_t n);
	bw_store_err (*rec_del)(bw_store *s, bw_tbl t, const char *key);
	/* shared rate limiters; NULL: not kept in this store */
	bw_store_err (*rate_take)(bw_store *s, const char *key, int64_t interval_us, uint32_t burst,
	    unsigned n, int *allowed, int64_t *retry_ms);
	bw_store_err (*rate_reset)(bw_store *s, const char *sender);
	/* expect or val NULL: absent; BW_STORE_CONFLICT when it is not expect */
	bw_store_err (*rec_cas)(bw_store *s, bw_tbl t, const char *key, const char *expect,
	    const char *val);
	bw_store_err (*rec_scan)(bw_store *s, bw_tbl t, const char *prefix, bw_store_kv_fn fn,
	    void *ud);
	bw_store_err (*rec_count)(bw_store *s, bw_tbl t, uint64_t *n);

	/* Every record of every registry table, table by table, keys in byte order.
	 * fn returning non-zero stops it with BW_STORE_IO. */
	bw_store_err (*dump)(bw_store *s, bw_store_rec_fn fn, void *ud);
	/* restore: begin, put each record (setting it to the value), then end with
	 * commit 1 (all written) or 0 (nothing written). end is always called once
	 * after a successful begin. store.c has read and checked every record
	 * before begin, so nothing waits on the input inside the transaction. */
	bw_store_err (*restore_begin)(bw_store *s, void **txn);
	bw_store_err (*restore_put)(bw_store *s, void *txn, const bw_store_rec *r);
	bw_store_err (*restore_end)(bw_store *s, void *txn, int commit);
} bw_store_ops;

/* All members are private to store*.c. */
struct bw_store {
	const bw_store_ops *ops;
	char *spec;
	uint64_t id;  /* tells handles apart in the per-thread error text */
	int readonly;
	void *be;     /* the backend's state */
};

extern const bw_store_ops bw_store_lmdb_ops;
#ifdef HAVE_REDIS
extern const bw_store_ops bw_store_redis_ops;
#endif

/*
 * store_lmdb_verify.c: checks every page of the current snapshot of an
 * open environment with pread. Returns 0 when sound, BW_STORE_LMDB_DAMAGED
 * with a sentence in why, or an LMDB or errno code.
 */
#define BW_STORE_LMDB_DAMAGED (-1)
struct MDB_env;
int bw_store_lmdb_verify(struct MDB_env *env, char *why, size_t whylen);

/* Set this thread's last-error text for s and return e. */
bw_store_err bw_store_fail(bw_store *s, bw_store_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A byte count as MapSize would be written: "1G", "64M", "300K", "12345". */
void bw_store_fmt_size(char *buf, size_t len, uint64_t n);

#endif
