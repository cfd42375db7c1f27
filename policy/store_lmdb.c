/*
 * store_lmdb.c - the embedded store: one LMDB environment in a directory,
 * a named database per table plus "meta" (schema version).
 *
 * Each operation is one short transaction; values are copied out before it
 * ends and no transaction outlives a call. MDB_NOTLS, so any thread may use
 * the shared handle; default sync flags, so a committed write survives a
 * crash. At open the file is checked page by page (store_lmdb_verify.c),
 * so a damaged file is an error, not a crash; in a big file the leaves are
 * checked instead as operations first reach them (lmdb_guard, before each
 * LMDB call that reads a table). A map grown by another
 * process (one with a larger MapSize) is adopted under a lock that waits
 * for the handle's transactions to end.
 *
 * Records (consent, suppress): key bytes as given, value the JSON text
 * without a NUL. get_many is one read transaction. write_many is one write
 * transaction that puts with MDB_APPEND while the keys of a table keep
 * coming above its last one (a sorted import into an empty table fills
 * its pages instead of splitting them), and with a plain put from the
 * first key that does not. A record scan calls its callback inside its
 * read transaction: one snapshot, which also keeps LMDB from reusing the
 * pages freed meanwhile, so a scan should not be long in the daemon.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* pthread_rwlockattr_setkind_np */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "store.h"
#include "store_impl.h"
#include "store_lmdb_verify.h"

#define LMDB_SCAN_BATCH 128 /* entries copied out per read transaction in a scan */
#define LMDB_MAXDBS     32  /* named databases: meta + tables, with room to grow */

typedef struct lmdb_be {
	MDB_env *env;
	bw_lmdb_guard *guard;      /* leaves not checked at open (a big file), or NULL */
	char *path;
	MDB_dbi meta;
	MDB_dbi dbi[BW_TBL__N];
	bool have[BW_TBL__N];      /* false: read-only open of a store without it */
	pthread_rwlock_t resize;   /* held shared by every transaction */
	atomic_int cleared;        /* stale readers cleared at open, not yet reported */
	unsigned max_readers;
	dev_t dev;
	ino_t ino;
	struct lmdb_be *next;      /* in lmdb_open_envs */
} lmdb_be;

/* LMDB must not open one environment twice in a process (its locks would
 * be lost at the first close): the environments open here. */
static pthread_mutex_t lmdb_open_lock = PTHREAD_MUTEX_INITIALIZER;
static lmdb_be *lmdb_open_envs;

/*
 * The resize locks this thread holds, and how often: a scan's callback may
 * read the store, and a second read lock taken behind a waiting resize
 * (the lock prefers writers) would wait for ever.
 */
#define LMDB_HELD_MAX 8
static _Thread_local struct {
	lmdb_be *b;
	unsigned n;
} lmdb_held[LMDB_HELD_MAX];

/* ---------------------------------------------------------------- helpers */

static void
lmdb_enc(unsigned char *p, int64_t v)
{
	uint64_t u = (uint64_t)v;

	for (int i = 7; i >= 0; i--, u >>= 8)
		p[i] = (unsigned char)u;
}

static int64_t
lmdb_dec(const unsigned char *p)
{
	uint64_t u = 0;

	for (int i = 0; i < 8; i++)
		u = (u << 8) | p[i];
	return (int64_t)u;
}

static bw_store_err
lmdb_fail(bw_store *s, int rc, const char *what)
{
	lmdb_be *b = s->be;
	char size[32];
	MDB_envinfo info;

	switch (rc) {
	case MDB_MAP_FULL:
		if (mdb_env_info(b->env, &info) != 0)
			info.me_mapsize = 0;
		bw_store_fmt_size(size, sizeof(size), info.me_mapsize);
		return bw_store_fail(s, BW_STORE_FULL, "store: map full (MapSize %s): raise MapSize",
		    size);
	case MDB_TXN_FULL:
		return bw_store_fail(s, BW_STORE_FULL, "store %s: %s: %s (too many changes at once)",
		    b->path, what, mdb_strerror(rc));
	case MDB_READERS_FULL:
		return bw_store_fail(s, BW_STORE_UNAVAILABLE,
		    "store %s: reader table full (MaxReaders %u): raise MaxReaders",
		    b->path, b->max_readers);
	case MDB_INVALID:
	case MDB_CORRUPTED:
	case MDB_VERSION_MISMATCH:
	case MDB_PAGE_NOTFOUND:
	case MDB_INCOMPATIBLE:
		return bw_store_fail(s, BW_STORE_CORRUPT,
		    "store %s: %s: %s: the database is damaged or not a bulkwarden store",
		    b->path, what, mdb_strerror(rc));
	case EACCES:
	case EPERM:
	case EROFS:
		return bw_store_fail(s, BW_STORE_UNAVAILABLE, "store %s: %s: %s", b->path, what,
		    strerror(rc));
	case ENOMEM:
		return bw_store_fail(s, BW_STORE_NOMEM, "store %s: %s: out of memory", b->path, what);
	default:
		return bw_store_fail(s, BW_STORE_IO, "store %s: %s: %s", b->path, what,
		    mdb_strerror(rc));
	}
}

/* Takes the resize lock shared; true when this thread held it already. */
static bool
lmdb_lock_shared(lmdb_be *b)
{
	int free_slot = -1;

	for (int i = 0; i < LMDB_HELD_MAX; i++) {
		if (lmdb_held[i].b == b && lmdb_held[i].n > 0) {
			lmdb_held[i].n++;
			return true;
		}
		if (lmdb_held[i].n == 0 && free_slot < 0)
			free_slot = i;
	}
	pthread_rwlock_rdlock(&b->resize);
	if (free_slot >= 0) {
		lmdb_held[free_slot].b = b;
		lmdb_held[free_slot].n = 1;
	}
	return false;
}

static void
lmdb_unlock_shared(lmdb_be *b)
{
	for (int i = 0; i < LMDB_HELD_MAX; i++)
		if (lmdb_held[i].b == b && lmdb_held[i].n > 0) {
			if (--lmdb_held[i].n > 0)
				return;
			lmdb_held[i].b = NULL;
			break;
		}
	pthread_rwlock_unlock(&b->resize);
}

/* Begins a transaction; on success the resize lock is held until lmdb_end. */
static int
lmdb_begin(lmdb_be *b, unsigned flags, MDB_txn **txn)
{
	bool nested = lmdb_lock_shared(b);
	int rc = mdb_txn_begin(b->env, NULL, flags, txn);

	if (rc == MDB_MAP_RESIZED && !nested) {
		/* another process grew the map: adopt its size with no transaction open here */
		lmdb_unlock_shared(b);
		pthread_rwlock_wrlock(&b->resize);
		rc = mdb_env_set_mapsize(b->env, 0);
		pthread_rwlock_unlock(&b->resize);
		if (rc != 0)
			return rc;
		lmdb_lock_shared(b);
		rc = mdb_txn_begin(b->env, NULL, flags, txn);
	}
	/* (nested, inside a scan's transaction, the map cannot be adopted: an error) */
	if (rc != 0)
		lmdb_unlock_shared(b);
	return rc;
}

static int
lmdb_commit(lmdb_be *b, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);

	lmdb_unlock_shared(b);
	return rc;
}

static void
lmdb_abort(lmdb_be *b, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	lmdb_unlock_shared(b);
}

static MDB_val
lmdb_key(const char *name)
{
	MDB_val k = { strlen(name), (void *)name };

	return k;
}

/* Reads an int64 value; MDB_NOTFOUND or 0 or -1 (not 8 bytes). */
static int
lmdb_get_i64(MDB_txn *txn, MDB_dbi dbi, const char *name, int64_t *val)
{
	MDB_val k = lmdb_key(name), v;
	int rc = mdb_get(txn, dbi, &k, &v);

	if (rc != 0)
		return rc;
	if (v.mv_size != 8)
		return -1;
	*val = lmdb_dec(v.mv_data);
	return 0;
}

static bw_store_err
lmdb_bad_value(bw_store *s, const char *table, const char *name)
{
	lmdb_be *b = s->be;

	return bw_store_fail(s, BW_STORE_CORRUPT, "store %s: %s \"%.100s\": value is not 8 bytes: "
	    "the database is damaged or not a bulkwarden store", b->path, table, name);
}

/*
 * In a file too big to check whole at open, checks the pages op on table t
 * will make LMDB read, before it does (store_lmdb_verify.c).
 */
static bw_store_err
lmdb_guard(bw_store *s, MDB_txn *txn, bw_tbl t, const MDB_val *key, bw_lmdb_op op)
{
	lmdb_be *b = s->be;
	char why[256];
	int rc;

	if (b->guard == NULL)
		return BW_STORE_OK;
	rc = bw_lmdb_guard_op(b->guard, txn, bw_store_tables[t].name, key, op, why, sizeof(why));
	if (rc == BW_STORE_LMDB_DAMAGED)
		return bw_store_fail(s, BW_STORE_CORRUPT, "store %s: data.mdb: %s: the database is "
		    "damaged (restore a dump into a fresh directory)", b->path, why);
	return rc == 0 ? BW_STORE_OK : lmdb_fail(s, rc, "check");
}

/* The same for the leaf a scan's MDB_NEXT goes to after key. */
static bw_store_err
lmdb_guard_next(bw_store *s, MDB_txn *txn, bw_tbl t, const MDB_val *key)
{
	lmdb_be *b = s->be;
	char why[256];
	int rc;

	if (b->guard == NULL)
		return BW_STORE_OK;
	rc = bw_lmdb_guard_next(b->guard, txn, bw_store_tables[t].name, key, why, sizeof(why));
	if (rc == BW_STORE_LMDB_DAMAGED)
		return bw_store_fail(s, BW_STORE_CORRUPT, "store %s: data.mdb: %s: the database is "
		    "damaged (restore a dump into a fresh directory)", b->path, why);
	return rc == 0 ? BW_STORE_OK : lmdb_fail(s, rc, "check");
}

/* Adds delta to a counter inside txn. */
static bw_store_err
lmdb_add_in(bw_store *s, MDB_txn *txn, const char *name, int64_t delta, int64_t *newval)
{
	lmdb_be *b = s->be;
	MDB_val k = lmdb_key(name), v;
	unsigned char buf[8];
	int64_t cur = 0;
	bw_store_err e = lmdb_guard(s, txn, BW_TBL_COUNTERS, &k, BW_LMDB_PUT);
	int rc;

	if (e != BW_STORE_OK)
		return e;
	rc = lmdb_get_i64(txn, b->dbi[BW_TBL_COUNTERS], name, &cur);
	if (rc == -1)
		return lmdb_bad_value(s, "counter", name);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_fail(s, rc, "read");
	if (__builtin_add_overflow(cur, delta, newval))
		return bw_store_fail(s, BW_STORE_INVALID, "store: counter %.100s: %lld%+lld overflows",
		    name, (long long)cur, (long long)delta);
	lmdb_enc(buf, *newval);
	v.mv_size = sizeof(buf);
	v.mv_data = buf;
	if ((rc = mdb_put(txn, b->dbi[BW_TBL_COUNTERS], &k, &v, 0)) != 0)
		return lmdb_fail(s, rc, "write");
	return BW_STORE_OK;
}

/* ---------------------------------------------------------------- open/close */

/* Opens meta and the tables and checks or writes the schema version. */
static bw_store_err
lmdb_open_tables(bw_store *s, bool readonly)
{
	lmdb_be *b = s->be;
	unsigned create = readonly ? 0 : MDB_CREATE;
	MDB_txn *txn;
	int64_t schema = 0;
	bool have_meta;
	int rc;

	if ((rc = lmdb_begin(b, readonly ? MDB_RDONLY : 0, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	rc = mdb_dbi_open(txn, "meta", create, &b->meta);
	have_meta = rc == 0;
	if (rc != 0 && !(readonly && rc == MDB_NOTFOUND)) {
		lmdb_abort(b, txn);
		return lmdb_fail(s, rc, "open table meta");
	}
	for (size_t i = 0; i < BW_TBL__N; i++) {
		rc = mdb_dbi_open(txn, bw_store_tables[i].name, create, &b->dbi[i]);
		b->have[i] = rc == 0;
		if (rc != 0 && !(readonly && rc == MDB_NOTFOUND)) {
			lmdb_abort(b, txn);
			return lmdb_fail(s, rc, bw_store_tables[i].name);
		}
	}
	if (have_meta) {
		rc = lmdb_get_i64(txn, b->meta, "schema", &schema);
		if (rc == -1 || (rc == 0 && schema < 1)) {
			lmdb_abort(b, txn);
			return bw_store_fail(s, BW_STORE_CORRUPT, "store %s: bad schema record: the "
			    "database is damaged or not a bulkwarden store", b->path);
		}
		if (rc != 0 && rc != MDB_NOTFOUND) {
			lmdb_abort(b, txn);
			return lmdb_fail(s, rc, "read schema");
		}
	}
	if (schema > BW_STORE_SCHEMA) {
		lmdb_abort(b, txn);
		return bw_store_fail(s, BW_STORE_CORRUPT, "store %s: schema %lld is newer than this "
		    "program's (%d): use a newer bulkwarden", b->path, (long long)schema,
		    BW_STORE_SCHEMA);
	}
	if (schema == 0 && !readonly) {
		MDB_val k = lmdb_key("schema"), v;
		unsigned char buf[8];

		lmdb_enc(buf, BW_STORE_SCHEMA);
		v.mv_size = sizeof(buf);
		v.mv_data = buf;
		if ((rc = mdb_put(txn, b->meta, &k, &v, 0)) != 0) {
			lmdb_abort(b, txn);
			return lmdb_fail(s, rc, "write schema");
		}
	}
	/* commit, not abort: handles opened in a transaction live on only after a commit */
	if ((rc = lmdb_commit(b, txn)) != 0)
		return lmdb_fail(s, rc, "commit");
	return BW_STORE_OK;
}

static void
lmdb_unregister(lmdb_be *b)
{
	pthread_mutex_lock(&lmdb_open_lock);
	for (lmdb_be **pp = &lmdb_open_envs; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	pthread_mutex_unlock(&lmdb_open_lock);
}

/* Records b as open; false when its directory is open already. */
static bool
lmdb_register(lmdb_be *b)
{
	bool ok = true;

	pthread_mutex_lock(&lmdb_open_lock);
	for (lmdb_be *o = lmdb_open_envs; o; o = o->next)
		if (o->dev == b->dev && o->ino == b->ino)
			ok = false;
	if (ok) {
		b->next = lmdb_open_envs;
		lmdb_open_envs = b;
	}
	pthread_mutex_unlock(&lmdb_open_lock);
	return ok;
}

static void
lmdb_free(lmdb_be *b)
{
	if (b->env)
		mdb_env_close(b->env);
	bw_lmdb_guard_free(b->guard);
	pthread_rwlock_destroy(&b->resize);
	free(b->path);
	free(b);
}

/* err: "Store SPEC: " and the last error, without its own "store PATH: ". */
static void
lmdb_open_err(bw_store *s, char *err, size_t errlen)
{
	lmdb_be *b = s->be;
	const char *t = bw_store_last_error(s);
	size_t n = strlen(b->path);

	if (strncmp(t, "store ", 6) == 0 && strncmp(t + 6, b->path, n) == 0
	    && strncmp(t + 6 + n, ": ", 2) == 0)
		t += 6 + n + 2;
	snprintf(err, errlen, "Store %.200s: %s", s->spec, t);
}

static bw_store_err
lmdb_open(bw_store *s, const char *where, const bw_store_opts *o, char *err, size_t errlen)
{
	pthread_rwlockattr_t ra;
	struct stat st;
	char why[256];
	lmdb_be *b;
	int rc, dead = 0;
	bw_store_err e;

	if (where[0] != '/') {
		snprintf(err, errlen, "Store %.200s: want lmdb:/directory (an absolute path)", s->spec);
		return BW_STORE_INVALID;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL || (b->path = strdup(where)) == NULL) {
		free(b);
		snprintf(err, errlen, "Store %.200s: out of memory", s->spec);
		return BW_STORE_NOMEM;
	}
	pthread_rwlockattr_init(&ra);
	/* a pending resize must not starve behind a stream of transactions */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&b->resize, &ra);
	pthread_rwlockattr_destroy(&ra);
	b->max_readers = o->max_readers;
	s->be = b;

	if (!o->readonly && mkdir(where, 0750) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "Store %.200s: cannot create the directory %.200s: %s",
		    s->spec, where, strerror(errno));
		e = BW_STORE_UNAVAILABLE;
		goto fail;
	}
	if (stat(where, &st) != 0) {
		if (errno == ENOENT && o->readonly)
			snprintf(err, errlen, "Store %.200s: no store in %.200s yet (the daemon "
			    "creates it)", s->spec, where);
		else
			snprintf(err, errlen, "Store %.200s: %.200s: %s", s->spec, where,
			    strerror(errno));
		e = BW_STORE_UNAVAILABLE;
		goto fail;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "Store %.200s: %.200s is not a directory", s->spec, where);
		e = BW_STORE_UNAVAILABLE;
		goto fail;
	}
	b->dev = st.st_dev;
	b->ino = st.st_ino;

	if ((rc = mdb_env_create(&b->env)) != 0 || (rc = mdb_env_set_maxdbs(b->env, LMDB_MAXDBS)) != 0
	    || (rc = mdb_env_set_maxreaders(b->env, o->max_readers)) != 0
	    || (rc = mdb_env_set_mapsize(b->env, o->map_size)) != 0) {
		snprintf(err, errlen, "Store %.200s: %s", s->spec, mdb_strerror(rc));
		e = BW_STORE_IO;
		goto fail;
	}
	if (!lmdb_register(b)) {
		snprintf(err, errlen, "Store %.200s: already open in this process", s->spec);
		e = BW_STORE_UNAVAILABLE;
		goto fail;
	}
	rc = mdb_env_open(b->env, where, MDB_NOTLS | (o->readonly ? MDB_RDONLY : 0), 0640);
	if (rc == ENOENT && o->readonly) {
		snprintf(err, errlen, "Store %.200s: no store in %.200s yet (the daemon creates it)",
		    s->spec, where);
		e = BW_STORE_UNAVAILABLE;
		goto fail_reg;
	}
	if (rc != 0) {
		e = lmdb_fail(s, rc, "open");
		if (e == BW_STORE_UNAVAILABLE && (rc == EACCES || rc == EPERM))
			snprintf(err, errlen, "Store %.200s: cannot open %.200s: %s (it must be "
			    "writable by the UserID)", s->spec, where, strerror(rc));
		else
			lmdb_open_err(s, err, errlen);
		goto fail_reg;
	}
	if ((rc = mdb_reader_check(b->env, &dead)) != 0) {
		e = lmdb_fail(s, rc, "reader check");
		lmdb_open_err(s, err, errlen);
		goto fail_reg;
	}
	atomic_store(&b->cleared, dead);
	rc = bw_store_lmdb_check(b->env, &b->guard, why, sizeof(why));
	if (rc == BW_STORE_LMDB_DAMAGED) {
		snprintf(err, errlen, "Store %.200s: %.200s/data.mdb: %s: the database is damaged "
		    "(restore a dump into a fresh directory)", s->spec, where, why);
		e = BW_STORE_CORRUPT;
		goto fail_reg;
	}
	if (rc != 0) {
		e = lmdb_fail(s, rc, "check");
		lmdb_open_err(s, err, errlen);
		goto fail_reg;
	}
	if ((e = lmdb_open_tables(s, o->readonly)) != BW_STORE_OK) {
		lmdb_open_err(s, err, errlen);
		goto fail_reg;
	}
	return BW_STORE_OK;

fail_reg:
	lmdb_unregister(b);
fail:
	lmdb_free(b);
	s->be = NULL;
	return e;
}

static void
lmdb_close(bw_store *s)
{
	lmdb_be *b = s->be;

	lmdb_unregister(b);
	lmdb_free(b);
}

static bw_store_err
lmdb_check(bw_store *s, int *cleared)
{
	lmdb_be *b = s->be;
	int dead = 0, rc = mdb_reader_check(b->env, &dead);

	if (rc != 0)
		return lmdb_fail(s, rc, "reader check");
	*cleared = dead + atomic_exchange(&b->cleared, 0);
	return BW_STORE_OK;
}

/* ---------------------------------------------------------------- counters */

static bw_store_err
lmdb_counter_add(bw_store *s, const char *name, int64_t delta, int64_t *newval)
{
	lmdb_be *b = s->be;
	MDB_txn *txn;
	int64_t v;
	bw_store_err e;
	int rc;

	if ((rc = lmdb_begin(b, 0, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	if ((e = lmdb_add_in(s, txn, name, delta, &v)) != BW_STORE_OK) {
		lmdb_abort(b, txn);
		return e;
	}
	if ((rc = lmdb_commit(b, txn)) != 0)
		return lmdb_fail(s, rc, "commit");
	*newval = v;
	return BW_STORE_OK;
}

static bw_store_err
lmdb_counter_add_many(bw_store *s, const bw_counter_delta *d, size_t n)
{
	lmdb_be *b = s->be;
	MDB_txn *txn;
	int64_t v;
	bw_store_err e;
	int rc;

	if ((rc = lmdb_begin(b, 0, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	for (size_t i = 0; i < n; i++)
		if ((e = lmdb_add_in(s, txn, d[i].name, d[i].delta, &v)) != BW_STORE_OK) {
			lmdb_abort(b, txn);
			return e;
		}
	if ((rc = lmdb_commit(b, txn)) != 0)
		return lmdb_fail(s, rc, "commit");
	return BW_STORE_OK;
}

static bw_store_err
lmdb_counter_del_many(bw_store *s, const char *const *names, size_t n)
{
	lmdb_be *b = s->be;
	MDB_txn *txn;
	bw_store_err e;
	int rc;

	if (!b->have[BW_TBL_COUNTERS])
		return BW_STORE_OK;
	if ((rc = lmdb_begin(b, 0, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	for (size_t i = 0; i < n; i++) {
		MDB_val k = lmdb_key(names[i]);
		if ((e = lmdb_guard(s, txn, BW_TBL_COUNTERS, &k, BW_LMDB_DEL)) != BW_STORE_OK) {
			lmdb_abort(b, txn);
			return e;
		}
		if ((rc = mdb_del(txn, b->dbi[BW_TBL_COUNTERS], &k, NULL)) != 0 && rc != MDB_NOTFOUND) {
			lmdb_abort(b, txn);
			return lmdb_fail(s, rc, "delete");
		}
	}
	if ((rc = lmdb_commit(b, txn)) != 0)
		return lmdb_fail(s, rc, "commit");
	return BW_STORE_OK;
}

static bw_store_err
lmdb_counter_get(bw_store *s, const char *name, int64_t *val)
{
	lmdb_be *b = s->be;
	MDB_val k = lmdb_key(name);
	MDB_txn *txn;
	int64_t v;
	bw_store_err e;
	int rc;

	if (!b->have[BW_TBL_COUNTERS])
		return bw_store_fail(s, BW_STORE_NOTFOUND, "store: no counter %.100s", name);
	if ((rc = lmdb_begin(b, MDB_RDONLY, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	if ((e = lmdb_guard(s, txn, BW_TBL_COUNTERS, &k, BW_LMDB_GET)) != BW_STORE_OK) {
		lmdb_abort(b, txn);
		return e;
	}
	rc = lmdb_get_i64(txn, b->dbi[BW_TBL_COUNTERS], name, &v);
	lmdb_abort(b, txn);
	if (rc == MDB_NOTFOUND)
		return bw_store_fail(s, BW_STORE_NOTFOUND, "store: no counter %.100s", name);
	if (rc == -1)
		return lmdb_bad_value(s, "counter", name);
	if (rc != 0)
		return lmdb_fail(s, rc, "read");
	*val = v;
	return BW_STORE_OK;
}

/* LMDB's default key order: bytes, then the shorter first. */
static int
lmdb_keycmp(const void *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c != 0 ? c : (alen > blen) - (alen < blen);
}

typedef struct lmdb_ent {
	char key[BW_STORE_NAME_MAX + 1];
	int64_t val;
} lmdb_ent;

/*
 * Copies up to LMDB_SCAN_BATCH counters starting with prefix and after
 * "after" (or from the prefix when after is empty) into ents. Each key must
 * come after the one before: in a damaged tree they may not, and a scan
 * that resumes from its last key would go round for ever.
 */
static bw_store_err
lmdb_scan_batch(bw_store *s, const char *prefix, const char *after, lmdb_ent *ents, size_t *n)
{
	lmdb_be *b = s->be;
	size_t plen = strlen(prefix);
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	bw_store_err e = BW_STORE_OK;
	int rc;

	*n = 0;
	if ((rc = lmdb_begin(b, MDB_RDONLY, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	if ((rc = mdb_cursor_open(txn, b->dbi[BW_TBL_COUNTERS], &cur)) != 0) {
		lmdb_abort(b, txn);
		return lmdb_fail(s, rc, "cursor");
	}
	k = lmdb_key(after[0] ? after : prefix);
	if ((e = lmdb_guard(s, txn, BW_TBL_COUNTERS, &k, k.mv_size ? BW_LMDB_RANGE
	    : BW_LMDB_FIRST)) != BW_STORE_OK) {
		mdb_cursor_close(cur);
		lmdb_abort(b, txn);
		return e;
	}
	rc = k.mv_size ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
	    : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	if (rc == 0 && after[0] && k.mv_size == strlen(after) && memcmp(k.mv_data, after, k.mv_size) == 0
	    && (e = lmdb_guard_next(s, txn, BW_TBL_COUNTERS, &k)) == BW_STORE_OK)
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	while (e == BW_STORE_OK && rc == 0 && *n < LMDB_SCAN_BATCH) {
		const char *last = *n > 0 ? ents[*n - 1].key : after;

		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if (last[0] && lmdb_keycmp(k.mv_data, k.mv_size, last) <= 0) {
			e = bw_store_fail(s, BW_STORE_CORRUPT, "store %s: counters out of order after "
			    "\"%.100s\": the database is damaged", b->path, last);
			break;
		}
		if (k.mv_size > BW_STORE_NAME_MAX || v.mv_size != 8) {
			e = bw_store_fail(s, BW_STORE_CORRUPT, "store %s: counter record of %zu/%zu "
			    "bytes: the database is damaged or not a bulkwarden store", b->path,
			    k.mv_size, v.mv_size);
			break;
		}
		memcpy(ents[*n].key, k.mv_data, k.mv_size);
		ents[*n].key[k.mv_size] = 0;
		ents[*n].val = lmdb_dec(v.mv_data);
		(*n)++;
		if ((e = lmdb_guard_next(s, txn, BW_TBL_COUNTERS, &k)) != BW_STORE_OK)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (e == BW_STORE_OK && rc != 0 && rc != MDB_NOTFOUND)
		e = lmdb_fail(s, rc, "scan");
	mdb_cursor_close(cur);
	lmdb_abort(b, txn);
	return e;
}

static bw_store_err
lmdb_counter_scan(bw_store *s, const char *prefix, bw_store_scan_fn fn, void *ud)
{
	lmdb_be *b = s->be;
	char after[BW_STORE_NAME_MAX + 1] = "";
	lmdb_ent *ents;
	bw_store_err e;
	size_t n;

	if (!b->have[BW_TBL_COUNTERS])
		return BW_STORE_OK;
	if ((ents = malloc(LMDB_SCAN_BATCH * sizeof(*ents))) == NULL)
		return bw_store_fail(s, BW_STORE_NOMEM, "store: scan: out of memory");
	do {
		if ((e = lmdb_scan_batch(s, prefix, after, ents, &n)) != BW_STORE_OK)
			break;
		for (size_t i = 0; i < n; i++)
			if (fn(ud, ents[i].key, ents[i].val) != 0) {
				n = 0;
				break;
			}
		if (n > 0)
			memcpy(after, ents[n - 1].key, sizeof(after));
	} while (n == LMDB_SCAN_BATCH);
	free(ents);
	return e;
}

/* ---------------------------------------------------------------- records */

/* A record as stored is sound: key 1..KEY_MAX bytes, value 2..VAL_MAX, no NULs. */
static bool
lmdb_rec_sane(const MDB_val *k, const MDB_val *v)
{
	return k->mv_size > 0 && k->mv_size <= BW_STORE_KEY_MAX && v->mv_size >= 2
	    && v->mv_size <= BW_STORE_VAL_MAX && memchr(k->mv_data, 0, k->mv_size) == NULL
	    && memchr(v->mv_data, 0, v->mv_size) == NULL;
}

static bw_store_err
lmdb_rec_bad(bw_store *s, bw_tbl t, const MDB_val *k, const MDB_val *v)
{
	lmdb_be *b = s->be;

	return bw_store_fail(s, BW_STORE_CORRUPT, "store %s: %s record of %zu/%zu bytes: the "
	    "database is damaged or not a bulkwarden store", b->path, bw_store_tables[t].name,
	    k->mv_size, v->mv_size);
}

static bw_store_err
lmdb_rec_get_many(bw_store *s, const bw_store_key *keys, size_t n, char **vals)
{
	lmdb_be *b = s->be;
	bw_store_err e = BW_STORE_OK;
	MDB_txn *txn;
	int rc;

	if ((rc = lmdb_begin(b, MDB_RDONLY, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	for (size_t i = 0; i < n && e == BW_STORE_OK; i++) {
		MDB_val k = lmdb_key(keys[i].key), v;

		if (!b->have[keys[i].tbl])
			continue;
		if ((e = lmdb_guard(s, txn, keys[i].tbl, &k, BW_LMDB_GET)) != BW_STORE_OK)
			break;
		rc = mdb_get(txn, b->dbi[keys[i].tbl], &k, &v);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			e = lmdb_fail(s, rc, "read");
		else if (!lmdb_rec_sane(&k, &v))
			e = lmdb_rec_bad(s, keys[i].tbl, &k, &v);
		else if ((vals[i] = malloc(v.mv_size + 1)) == NULL)
			e = bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
		else {
			memcpy(vals[i], v.mv_data, v.mv_size);
			vals[i][v.mv_size] = 0;
		}
	}
	lmdb_abort(b, txn);
	return e;
}

/*
 * Puts with MDB_APPEND while it works: LMDB itself compares the key with
 * the table's last one and says MDB_KEYEXIST, changing nothing, when it is
 * not greater; from then on that table gets plain puts in this transaction.
 */
static bw_store_err
lmdb_rec_write_many(bw_store *s, const bw_store_kv *kv, size_t n)
{
	lmdb_be *b = s->be;
	MDB_cursor *cur[BW_TBL__N] = { 0 };
	bool append[BW_TBL__N], last_checked[BW_TBL__N] = { 0 };
	bw_store_err e = BW_STORE_OK;
	MDB_txn *txn;
	int rc = 0;

	for (size_t t = 0; t < BW_TBL__N; t++)
		append[t] = true;
	if ((rc = lmdb_begin(b, 0, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	for (size_t i = 0; i < n && rc == 0 && e == BW_STORE_OK; i++) {
		bw_tbl t = kv[i].tbl;
		MDB_val k = lmdb_key(kv[i].key), v;

		if (kv[i].val == NULL) {
			/* (a rebalance may bring a page not yet checked to the end) */
			last_checked[t] = false;
			if ((e = lmdb_guard(s, txn, t, &k, BW_LMDB_DEL)) != BW_STORE_OK)
				break;
			rc = mdb_del(txn, b->dbi[t], &k, NULL);
			if (rc == MDB_NOTFOUND)
				rc = 0;
			continue;
		}
		if (cur[t] == NULL && (rc = mdb_cursor_open(txn, b->dbi[t], &cur[t])) != 0)
			break;
		v.mv_size = strlen(kv[i].val);
		v.mv_data = (void *)kv[i].val;
		if (append[t]) {
			/* appends stay on the last leaf: it is LMDB's own copy after the first */
			if (!last_checked[t] && (e = lmdb_guard(s, txn, t, &k, BW_LMDB_APPEND))
			    != BW_STORE_OK)
				break;
			last_checked[t] = true;
			rc = mdb_cursor_put(cur[t], &k, &v, MDB_APPEND);
			if (rc != MDB_KEYEXIST)
				continue;
			append[t] = false;
		}
		if ((e = lmdb_guard(s, txn, t, &k, BW_LMDB_PUT)) != BW_STORE_OK)
			break;
		rc = mdb_cursor_put(cur[t], &k, &v, 0);
	}
	if (e == BW_STORE_OK && rc != 0)
		e = lmdb_fail(s, rc, "write");
	for (size_t t = 0; t < BW_TBL__N; t++)
		if (cur[t] != NULL)
			mdb_cursor_close(cur[t]);
	if (e != BW_STORE_OK) {
		lmdb_abort(b, txn);
		return e;
	}
	if ((rc = lmdb_commit(b, txn)) != 0)
		return lmdb_fail(s, rc, "commit");
	return BW_STORE_OK;
}

static bw_store_err
lmdb_rec_del(bw_store *s, bw_tbl t, const char *key)
{
	lmdb_be *b = s->be;
	MDB_val k = lmdb_key(key);
	MDB_txn *txn;
	bw_store_err e;
	int rc;

	if ((rc = lmdb_begin(b, 0, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	if ((e = lmdb_guard(s, txn, t, &k, BW_LMDB_DEL)) != BW_STORE_OK) {
		lmdb_abort(b, txn);
		return e;
	}
	if ((rc = mdb_del(txn, b->dbi[t], &k, NULL)) != 0) {
		lmdb_abort(b, txn);
		if (rc == MDB_NOTFOUND)
			return bw_store_fail(s, BW_STORE_NOTFOUND, "store: no %s record \"%.100s\"",
			    bw_store_tables[t].name, key);
		return lmdb_fail(s, rc, "delete");
	}
	if ((rc = lmdb_commit(b, txn)) != 0)
		return lmdb_fail(s, rc, "commit");
	return BW_STORE_OK;
}

/* One write transaction: read, compare, write. */
static bw_store_err
lmdb_rec_cas(bw_store *s, bw_tbl t, const char *key, const char *expect, const char *val)
{
	lmdb_be *b = s->be;
	MDB_val k = lmdb_key(key), v;
	MDB_txn *txn;
	bw_store_err e;
	bool same;
	int rc;

	if ((rc = lmdb_begin(b, 0, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	if ((e = lmdb_guard(s, txn, t, &k, BW_LMDB_PUT)) != BW_STORE_OK) {
		lmdb_abort(b, txn);
		return e;
	}
	rc = mdb_get(txn, b->dbi[t], &k, &v);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		lmdb_abort(b, txn);
		return lmdb_fail(s, rc, "read");
	}
	if (rc == 0 && !lmdb_rec_sane(&k, &v)) {
		e = lmdb_rec_bad(s, t, &k, &v);
		lmdb_abort(b, txn);
		return e;
	}
	same = rc == MDB_NOTFOUND ? expect == NULL : expect != NULL && strlen(expect) == v.mv_size
	    && memcmp(expect, v.mv_data, v.mv_size) == 0;
	if (!same) {
		lmdb_abort(b, txn);
		return bw_store_fail(s, BW_STORE_CONFLICT, "store: %s record \"%.100s\" changed "
		    "meanwhile", bw_store_tables[t].name, key);
	}
	if (val != NULL) {
		v.mv_size = strlen(val);
		v.mv_data = (void *)val;
		rc = mdb_put(txn, b->dbi[t], &k, &v, 0);
	} else if (expect != NULL)
		rc = mdb_del(txn, b->dbi[t], &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		lmdb_abort(b, txn);
		return lmdb_fail(s, rc, "write");
	}
	if ((rc = lmdb_commit(b, txn)) != 0)
		return lmdb_fail(s, rc, "commit");
	return BW_STORE_OK;
}

/*
 * One read transaction; fn gets NUL-terminated copies. Each key must come
 * after the one before: in a damaged tree they may not.
 */
static bw_store_err
lmdb_rec_scan(bw_store *s, bw_tbl t, const char *prefix, bw_store_kv_fn fn, void *ud)
{
	lmdb_be *b = s->be;
	size_t plen = strlen(prefix);
	char *kbuf, *vbuf;
	size_t klast = 0;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	bw_store_err e = BW_STORE_OK;
	int rc;

	if (!b->have[t])
		return BW_STORE_OK;
	kbuf = malloc(2 * (BW_STORE_KEY_MAX + 1) + BW_STORE_VAL_MAX + 1);
	if (kbuf == NULL)
		return bw_store_fail(s, BW_STORE_NOMEM, "store: scan: out of memory");
	vbuf = kbuf + 2 * (BW_STORE_KEY_MAX + 1);
	if ((rc = lmdb_begin(b, MDB_RDONLY, &txn)) != 0) {
		free(kbuf);
		return lmdb_fail(s, rc, "begin");
	}
	if ((rc = mdb_cursor_open(txn, b->dbi[t], &cur)) != 0) {
		lmdb_abort(b, txn);
		free(kbuf);
		return lmdb_fail(s, rc, "cursor");
	}
	k = lmdb_key(prefix);
	if ((e = lmdb_guard(s, txn, t, &k, plen ? BW_LMDB_RANGE : BW_LMDB_FIRST)) == BW_STORE_OK)
		rc = plen ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
		    : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	for (; e == BW_STORE_OK && rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		/* kbuf: this key; kbuf + KEY_MAX + 1: the one before */
		char *prev = kbuf + BW_STORE_KEY_MAX + 1;

		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if (!lmdb_rec_sane(&k, &v)) {
			e = lmdb_rec_bad(s, t, &k, &v);
			break;
		}
		if (klast > 0 && lmdb_keycmp(k.mv_data, k.mv_size, prev) <= 0) {
			e = bw_store_fail(s, BW_STORE_CORRUPT, "store %s: %s records out of order after "
			    "\"%.100s\": the database is damaged", b->path, bw_store_tables[t].name, prev);
			break;
		}
		memcpy(kbuf, k.mv_data, k.mv_size);
		kbuf[k.mv_size] = 0;
		memcpy(vbuf, v.mv_data, v.mv_size);
		vbuf[v.mv_size] = 0;
		if (fn(ud, kbuf, vbuf) != 0)
			break;
		memcpy(prev, kbuf, k.mv_size + 1);
		klast = k.mv_size;
		if ((e = lmdb_guard_next(s, txn, t, &k)) != BW_STORE_OK)
			break;
	}
	if (e == BW_STORE_OK && rc != 0 && rc != MDB_NOTFOUND)
		e = lmdb_fail(s, rc, "scan");
	mdb_cursor_close(cur);
	lmdb_abort(b, txn);
	free(kbuf);
	return e;
}

static bw_store_err
lmdb_rec_count(bw_store *s, bw_tbl t, uint64_t *n)
{
	lmdb_be *b = s->be;
	MDB_txn *txn;
	MDB_stat st;
	int rc;

	if (!b->have[t])
		return BW_STORE_OK;
	if ((rc = lmdb_begin(b, MDB_RDONLY, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	rc = mdb_stat(txn, b->dbi[t], &st);
	lmdb_abort(b, txn);
	if (rc != 0)
		return lmdb_fail(s, rc, "count");
	*n = st.ms_entries;
	return BW_STORE_OK;
}

/* ---------------------------------------------------------------- dump/restore */

/* One read transaction over every table: a consistent snapshot. */
static bw_store_err
lmdb_dump(bw_store *s, bw_store_rec_fn fn, void *ud)
{
	lmdb_be *b = s->be;
	char key[BW_STORE_KEY_MAX + 1];
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	bw_store_err e = BW_STORE_OK;
	int rc;

	if ((rc = lmdb_begin(b, MDB_RDONLY, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	for (size_t t = 0; t < BW_TBL__N && e == BW_STORE_OK; t++) {
		if (!b->have[t])
			continue;
		if ((rc = mdb_cursor_open(txn, b->dbi[t], &cur)) != 0) {
			e = lmdb_fail(s, rc, "cursor");
			break;
		}
		if ((e = lmdb_guard(s, txn, (bw_tbl)t, NULL, BW_LMDB_FIRST)) != BW_STORE_OK) {
			mdb_cursor_close(cur);
			break;
		}
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
		    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			bw_store_rec r = { .tbl = (bw_tbl)t, .key = key };
			bool json = bw_store_tables[t].kind == BW_VAL_JSON;

			if (json ? !lmdb_rec_sane(&k, &v) : (k.mv_size == 0
			    || k.mv_size > BW_STORE_NAME_MAX || v.mv_size != 8
			    || memchr(k.mv_data, 0, k.mv_size) != NULL)) {
				e = bw_store_fail(s, BW_STORE_CORRUPT, "store %s: %s record of %zu/%zu "
				    "bytes: the database is damaged or not a bulkwarden store",
				    b->path, bw_store_tables[t].name, k.mv_size, v.mv_size);
				break;
			}
			memcpy(key, k.mv_data, k.mv_size);
			key[k.mv_size] = 0;
			if (json) {
				r.sval = v.mv_data;
				r.slen = v.mv_size;
			} else {
				r.ival = lmdb_dec(v.mv_data);
			}
			if (fn(ud, &r) != 0) {
				e = bw_store_fail(s, BW_STORE_IO, "store: dump: cannot write the output");
				break;
			}
			if ((e = lmdb_guard_next(s, txn, (bw_tbl)t, &k)) != BW_STORE_OK)
				break;
		}
		if (e == BW_STORE_OK && rc != MDB_NOTFOUND)
			e = lmdb_fail(s, rc, "dump");
		mdb_cursor_close(cur);
	}
	lmdb_abort(b, txn);
	return e;
}

static bw_store_err
lmdb_restore_begin(bw_store *s, void **txnp)
{
	lmdb_be *b = s->be;
	MDB_txn *txn;
	int rc;

	for (size_t t = 0; t < BW_TBL__N; t++)
		if (!b->have[t])
			return bw_store_fail(s, BW_STORE_INVALID, "store %s: table %s missing",
			    b->path, bw_store_tables[t].name);
	if ((rc = lmdb_begin(b, 0, &txn)) != 0)
		return lmdb_fail(s, rc, "begin");
	*txnp = txn;
	return BW_STORE_OK;
}

static bw_store_err
lmdb_restore_put(bw_store *s, void *txn, const bw_store_rec *r)
{
	lmdb_be *b = s->be;
	MDB_val k = lmdb_key(r->key), v;
	unsigned char buf[8];
	bw_store_err e;
	int rc;

	if ((e = lmdb_guard(s, txn, r->tbl, &k, BW_LMDB_PUT)) != BW_STORE_OK)
		return e;
	switch (bw_store_tables[r->tbl].kind) {
	case BW_VAL_INT64:
		lmdb_enc(buf, r->ival);
		v.mv_size = sizeof(buf);
		v.mv_data = buf;
		break;
	case BW_VAL_JSON:
		v.mv_size = r->slen;
		v.mv_data = (void *)r->sval;
		break;
	}
	if ((rc = mdb_put(txn, b->dbi[r->tbl], &k, &v, 0)) != 0)
		return lmdb_fail(s, rc, "write");
	return BW_STORE_OK;
}

static bw_store_err
lmdb_restore_end(bw_store *s, void *txn, int commit)
{
	lmdb_be *b = s->be;
	int rc;

	if (!commit) {
		lmdb_abort(b, txn);
		return BW_STORE_OK;
	}
	if ((rc = lmdb_commit(b, txn)) != 0)
		return lmdb_fail(s, rc, "commit");
	return BW_STORE_OK;
}

const bw_store_ops bw_store_lmdb_ops = {
	.name = "lmdb",
	.open = lmdb_open,
	.close = lmdb_close,
	.check = lmdb_check,
	.counter_add = lmdb_counter_add,
	.counter_get = lmdb_counter_get,
	.counter_add_many = lmdb_counter_add_many,
	.counter_scan = lmdb_counter_scan,
	.counter_del_many = lmdb_counter_del_many,
	.rec_get_many = lmdb_rec_get_many,
	.rec_write_many = lmdb_rec_write_many,
	.rec_del = lmdb_rec_del,
	.rec_cas = lmdb_rec_cas,
	.rec_scan = lmdb_rec_scan,
	.rec_count = lmdb_rec_count,
	.dump = lmdb_dump,
	.restore_begin = lmdb_restore_begin,
	.restore_put = lmdb_restore_put,
	.restore_end = lmdb_restore_end,
};
