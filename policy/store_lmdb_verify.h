/*
 * store_lmdb_verify.h - the check of an LMDB file (store_lmdb_verify.c):
 * at open, and, on a store too big to read whole at every open, on the
 * pages an operation is about to make LMDB visit.
 *
 * Every function returns 0 when the pages are sound, BW_STORE_LMDB_DAMAGED
 * (store_impl.h) with a sentence in why, or an LMDB or errno code.
 */
#ifndef BW_STORE_LMDB_VERIFY_H
#define BW_STORE_LMDB_VERIFY_H

#include <stddef.h>

#include <lmdb.h>

/*
 * Data files up to this size are checked page by page at open. Above it
 * the open checks the meta pages, the free-page tree and lists, the main
 * tree, every branch page and every small table, and the leaf and overflow
 * pages of the big tables are checked when an operation first needs them.
 * The environment variable overrides it (bytes), for tests only.
 */
#define BW_LMDB_FULL_MAX     ((unsigned long long)256 << 20)
#define BW_LMDB_FULL_MAX_ENV "BW_STORE_VERIFY_FULL_MAX"

/* The pages not checked at open, and which of them have been since. */
typedef struct bw_lmdb_guard bw_lmdb_guard;

/* What an operation on one table will make LMDB read. */
typedef enum bw_lmdb_op {
	BW_LMDB_GET,    /* mdb_get of key */
	BW_LMDB_PUT,    /* a plain put of key, in a write transaction */
	BW_LMDB_DEL,    /* a delete of key, and the rebalance that may follow */
	BW_LMDB_APPEND, /* a put with MDB_APPEND: the last leaf */
	BW_LMDB_FIRST,  /* a cursor's MDB_FIRST */
	BW_LMDB_RANGE,  /* a cursor's MDB_SET_RANGE to key */
} bw_lmdb_op;

/*
 * Checks the current snapshot of env. *guard is NULL when every page was
 * checked; else it is to be passed to the calls below before LMDB reads a
 * table, and freed after the environment is closed.
 */
int bw_store_lmdb_check(MDB_env *env, bw_lmdb_guard **guard, char *why, size_t whylen);

/*
 * Checks the pages op on table (a named database) reaches in txn's
 * snapshot. txn must not have created or dropped a table.
 */
int bw_lmdb_guard_op(bw_lmdb_guard *g, MDB_txn *txn, const char *table, const MDB_val *key,
    bw_lmdb_op op, char *why, size_t whylen);

/*
 * A cursor of a read transaction on table has just returned key: when it
 * is its leaf's last, checks the leaf an MDB_NEXT moves to.
 */
int bw_lmdb_guard_next(bw_lmdb_guard *g, MDB_txn *txn, const char *table, const MDB_val *key,
    char *why, size_t whylen);

void bw_lmdb_guard_free(bw_lmdb_guard *g);

#endif
