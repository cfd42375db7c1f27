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
	unsigned timeout_ms;  /* Redis connect and command timeout, ms (200) */
} bw_store_opts;

typedef struct bw_store bw_store;

/*
 * spec: "lmdb:/var/lib/bulkwarden" (a directory, created if missing), or
 * "redis:HOST:PORT[/DB]", "redis:[V6ADDR]:PORT[/DB]", "redis:unix:/path.sock[/DB]".
 * Zero members of o take their defaults. An unreachable Redis fails the
 * open only when readonly (a tool); the daemon gets a handle whose calls
 * say BW_STORE_UNAVAILABLE until the server answers.
 * On failure returns NULL and writes a sentence into err naming the spec and
 * the cause (and what to do).
 */
bw_store *bw_store_open(const char *spec, const bw_store_opts *o, char *err, size_t errlen);
/* The same, saying what kind of failure it was: BW_STORE_CORRUPT (damaged,
 * not ours, or a newer schema), BW_STORE_UNAVAILABLE (missing, permissions,
 * unreachable), BW_STORE_INVALID (a bad spec), ... *sp is NULL on failure. */
bw_store_err bw_store_open_status(const char *spec, const bw_store_opts *o, bw_store **sp,
    char *err, size_t errlen);
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
/* Delete the counters named, in one transaction; absent ones are no error. */
bw_store_err bw_store_counter_del_many(bw_store *s, const char *const *names, size_t n);
/* Every counter whose name starts with prefix ("" for all), in name order.
 * fn returns 0 to go on, non-zero to stop; it runs outside any transaction.
 * Names: 1 to 255 bytes of UTF-8, no control characters (else BW_STORE_INVALID). */
bw_store_err bw_store_counter_scan(bw_store *s, const char *prefix,
    int (*fn)(void *ud, const char *name, int64_t val), void *ud);

/* ---- record tables: keyed JSON objects ----
 * The consent, suppression, sender and complaint tables hold
 * records: a key of 1..BW_STORE_KEY_MAX bytes of UTF-8 without control
 * characters, and a value that is the text of one JSON object of
 * 2..BW_STORE_VAL_MAX bytes. The store does not parse a value on the
 * message path (put checks only its size and its outer braces; restore
 * checks that it is a JSON object and stores it compact); policy/consent.c
 * owns the layout of consent and suppression records and their keys
 * ("SENDER RCPT", see consent.h). A bad table, key or value is
 * BW_STORE_INVALID, found before anything is written.
 */
typedef enum {
	BW_TBL_COUNTERS = 0, /* named 64-bit integers (the calls above) */
	BW_TBL_CONSENT,      /* consent records */
	BW_TBL_SUPPRESS,     /* suppressions */
	BW_TBL_SENDER,       /* sender state: "SENDER" -> state, incident, held mail */
	BW_TBL_COMPLAINT,    /* counted complaints: "SENDER KEY" -> when, whom (feedback.h) */
	BW_TBL__N
} bw_tbl;

#define BW_STORE_KEY_MAX 480   /* bytes in a record key (LMDB keys stop at 511) */
#define BW_STORE_VAL_MAX 16384 /* bytes in a record value */

/* *val: a malloc'd NUL-terminated copy of the value (free it), or NULL with
 * BW_STORE_NOTFOUND. */
bw_store_err bw_store_get(bw_store *s, bw_tbl t, const char *key, char **val);
/* A record's value parsed: a JSON object (a new reference, json_decref
 * it), or NULL with a sentence in err (no value, longer than
 * BW_STORE_VAL_MAX, not JSON, not an object). Duplicate names are refused. */
struct json_t;
struct json_t *bw_store_json_object(const char *val, char *err, size_t errlen);
/* Several lookups from one snapshot: one read transaction (LMDB), one
 * round trip (Redis). vals[i] is a malloc'd value or NULL when absent.
 * BW_STORE_OK even when some are absent; on any error every vals[i] is NULL. */
typedef struct bw_store_key { bw_tbl tbl; const char *key; } bw_store_key;
bw_store_err bw_store_get_many(bw_store *s, const bw_store_key *keys, size_t n, char **vals);
/* Set (insert or replace) one record; delete one (BW_STORE_NOTFOUND when absent). */
bw_store_err bw_store_put(bw_store *s, bw_tbl t, const char *key, const char *val);
bw_store_err bw_store_del(bw_store *s, bw_tbl t, const char *key);
/* ---- rate limiters shared by a fleet ----
 * GCRA kept in the store with the store's own clock, so that the MTAs of
 * a fleet share one limiter per sender and their clocks do not matter:
 * Redis only. LMDB says BW_STORE_INVALID ("not kept in this store"): one
 * host's daemon keeps its limiters in memory (limiter.h).
 * key: 1..200 bytes without spaces ("SENDER:m"). Takes n events when they
 * fit the limit (events interval_us apart, burst at once): *allowed 1;
 * else *allowed 0 and *retry_ms the wait. rate_reset forgets the
 * limiters whose keys start with "SENDER:". */
bw_store_err bw_store_rate_take(bw_store *s, const char *key, int64_t interval_us, uint32_t burst,
    unsigned n, int *allowed, int64_t *retry_ms);
bw_store_err bw_store_rate_reset(bw_store *s, const char *sender);

/* Compare-and-set: when the record is byte for byte expect (NULL: when
 * there is none), set it to val (NULL: delete it), atomically; else
 * BW_STORE_CONFLICT and nothing changes (read it again and retry). */
bw_store_err bw_store_cas(bw_store *s, bw_tbl t, const char *key, const char *expect,
    const char *val);
/* Several writes as one transaction: all or nothing, applied in the order
 * given (the last write of a key wins). val NULL deletes (absent keys are
 * not an error). Writes given in key order within each table load fastest
 * (an import sorts them); any order is correct. Keep a batch to about
 * 100,000 writes: LMDB limits the pages one transaction may change
 * (BW_STORE_FULL "too many changes at once"), and Redis runs a batch as
 * one script that holds the server meanwhile. */
typedef struct bw_store_kv { bw_tbl tbl; const char *key; const char *val; } bw_store_kv;
bw_store_err bw_store_write_many(bw_store *s, const bw_store_kv *kv, size_t n);
/* Every record of t whose key starts with prefix ("" for all), in key byte
 * order. fn returns 0 to go on, non-zero to stop (the call then returns
 * BW_STORE_OK). fn runs inside the scan's snapshot and must not write to
 * the store; it may read. (LMDB: one read transaction, so keep scans in
 * the daemon short. Redis has no snapshot across calls: a record present
 * throughout is seen once, one written meanwhile may or may not be.) */
bw_store_err bw_store_scan(bw_store *s, bw_tbl t, const char *prefix,
    int (*fn)(void *ud, const char *key, const char *val), void *ud);
/* Number of records in t (LMDB: from the database statistics). */
bw_store_err bw_store_count(bw_store *s, bw_tbl t, uint64_t *n);
/* The table's name in dumps ("counters", "consent", "suppress", "sender",
 * "complaint"); "unknown"
 * for a value that is not a table. */
const char *bw_store_table_name(bw_tbl t);

/* ---- dump / restore of everything, as JSON lines ----
 * One line per record: {"table":"counters","key":"...","value":...}
 * (value: an integer for counters, the record's JSON object otherwise).
 * The format is the same for every backend, so a dump from one restores
 * into another. restore is all or nothing: one transaction; a bad line
 * aborts it with its line number in err. A restored record replaces the
 * one with the same key; other records are kept.
 * out gets one line without its newline and returns 0, or non-zero to stop
 * (BW_STORE_IO); it runs inside the dump's snapshot and must not call the
 * store. in sets *line and *len (trailing newline allowed) and returns 1,
 * 0 at the end of the input, -1 on a read error; the whole input is read
 * and checked before anything is written. */
bw_store_err bw_store_dump(bw_store *s, int (*out)(void *ud, const char *line, size_t len), void *ud);
bw_store_err bw_store_restore(bw_store *s, int (*in)(void *ud, char **line, size_t *len), void *ud,
    char *err, size_t errlen);

#endif
