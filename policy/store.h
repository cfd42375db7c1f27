/*
 * store.h - the store interface.
 *
 * Typed, atomic operations over the state bulkwarden keeps: counters
 * (statistics and, later, rate buckets), and the records of the consent,
 * suppression, sender and complaint tables. Every operation is one
 * transaction in the backend and returns a bw_store_err; nothing here logs
 * or exits. Backends: store_lmdb.c (the embedded default); store_redis.c
 * (a fleet of MTAs) when built --with-redis.
 *
 * A handle is shared by all threads of the daemon. Open it after any fork.
 */
#ifndef BW_STORE_H
#define BW_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
	BW_STORE_OK = 0,
	BW_STORE_NOTFOUND,    /* no such record */
	BW_STORE_CONFLICT,    /* compare-and-set lost */
	BW_STORE_FULL,        /* map full: raise MapSize */
	BW_STORE_CORRUPT,     /* the database is damaged or not ours */
	BW_STORE_UNAVAILABLE, /* cannot reach or open the store */
	BW_STORE_IO,          /* an I/O or system error */
	BW_STORE_INVALID,     /* bad argument or record */
	BW_STORE_NOMEM
} bw_store_err;

const char *bw_store_strerror(bw_store_err e);

typedef struct bw_store_opts {
	size_t map_size;      /* LMDB MapSize, bytes (1 GiB) */
	unsigned max_readers; /* LMDB reader slots (at least threads + a margin) */
	int readonly;         /* open for reading only (bulkwardenctl show/dump) */
} bw_store_opts;

typedef struct bw_store bw_store;

/*
 * spec: "lmdb:/var/lib/bulkwarden" (a directory, created if missing).
 * On failure returns NULL and writes a sentence into err naming the spec and
 * the cause (and what to do).
 */
bw_store *bw_store_open(const char *spec, const bw_store_opts *o, char *err, size_t errlen);
void bw_store_close(bw_store *s);
/* The spec it was opened with. */
const char *bw_store_spec(const bw_store *s);
/* Text of the last error on this thread for this handle (with LMDB's own words). */
const char *bw_store_last_error(bw_store *s);

/* Stale reader slots cleared (LMDB: mdb_reader_check); count in *cleared. */
bw_store_err bw_store_check(bw_store *s, int *cleared);

/* ---- counters: named 64-bit integers, added to atomically ---- */
bw_store_err bw_store_counter_add(bw_store *s, const char *name, int64_t delta, int64_t *newval);
bw_store_err bw_store_counter_get(bw_store *s, const char *name, int64_t *val);
/* Add several at once in one transaction (stats flush). */
typedef struct bw_counter_delta { const char *name; int64_t delta; } bw_counter_delta;
bw_store_err bw_store_counter_add_many(bw_store *s, const bw_counter_delta *d, size_t n);
/* Every counter whose name starts with prefix ("" for all), in name order. */
bw_store_err bw_store_counter_scan(bw_store *s, const char *prefix,
    int (*fn)(void *ud, const char *name, int64_t val), void *ud);

/* ---- dump / restore of everything, as JSON lines ----
 * One line per record: {"table":"counters","key":"...","value":...}
 * The format is the same for every backend, so a dump from one restores
 * into another. restore is all or nothing: one transaction; a bad line
 * aborts it with its line number in err. */
bw_store_err bw_store_dump(bw_store *s, int (*out)(void *ud, const char *line, size_t len), void *ud);
bw_store_err bw_store_restore(bw_store *s, int (*in)(void *ud, char **line, size_t *len), void *ud,
    char *err, size_t errlen);

#endif
