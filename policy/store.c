/*
 * store.c - the store interface: picks the backend from the spec prefix,
 * checks arguments, keeps each thread's last-error text, and turns the
 * tables into the backend-independent dump format (JSON lines) and back.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "store.h"
#include "store_impl.h"
#include "utf8.h"

const bw_store_table bw_store_tables[BW_TBL__N] = {
	[BW_TBL_COUNTERS] = { "counters", BW_VAL_INT64 },
	[BW_TBL_CONSENT] = { "consent", BW_VAL_JSON },
	[BW_TBL_SUPPRESS] = { "suppress", BW_VAL_JSON },
	[BW_TBL_SENDER] = { "sender", BW_VAL_JSON },
	[BW_TBL_COMPLAINT] = { "complaint", BW_VAL_JSON },
};

static const struct {
	const char *prefix;
	const bw_store_ops *ops;
} store_backends[] = {
	{ "lmdb:", &bw_store_lmdb_ops },
#ifdef HAVE_REDIS
	{ "redis:", &bw_store_redis_ops },
#endif
};

static atomic_uint_fast64_t store_next_id = 1;

/* The last error, per thread; tagged with the handle it belongs to. */
static _Thread_local struct {
	uint64_t id;
	char text[BW_STORE_ERR_MAX];
} store_tls_err;

const char *
bw_store_strerror(bw_store_err e)
{
	switch (e) {
	case BW_STORE_OK: return "success";
	case BW_STORE_NOTFOUND: return "no such record";
	case BW_STORE_CONFLICT: return "record changed concurrently";
	case BW_STORE_FULL: return "store full";
	case BW_STORE_CORRUPT: return "store damaged or not a bulkwarden store";
	case BW_STORE_UNAVAILABLE: return "store unavailable";
	case BW_STORE_IO: return "store I/O error";
	case BW_STORE_INVALID: return "invalid argument or record";
	case BW_STORE_NOMEM: return "out of memory";
	}
	return "unknown store error";
}

bw_store_err
bw_store_fail(bw_store *s, bw_store_err e, const char *fmt, ...)
{
	va_list ap;

	store_tls_err.id = s->id;
	va_start(ap, fmt);
	vsnprintf(store_tls_err.text, sizeof(store_tls_err.text), fmt, ap);
	va_end(ap);
	return e;
}

const char *
bw_store_last_error(bw_store *s)
{
	if (s == NULL || store_tls_err.id != s->id)
		return "";
	return store_tls_err.text;
}

void
bw_store_fmt_size(char *buf, size_t len, uint64_t n)
{
	static const struct { char unit; uint64_t mult; } units[] = {
		{ 'T', 1ULL << 40 }, { 'G', 1ULL << 30 }, { 'M', 1ULL << 20 }, { 'K', 1ULL << 10 },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (n >= units[i].mult && n % units[i].mult == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(n / units[i].mult),
			    units[i].unit);
			return;
		}
	snprintf(buf, len, "%llu", (unsigned long long)n);
}

/* ---------------------------------------------------------------- open/close */

bw_store_err
bw_store_open_status(const char *spec, const bw_store_opts *o, bw_store **sp, char *err,
    size_t errlen)
{
	bw_store_opts opts = { 0 };
	const bw_store_ops *ops = NULL;
	size_t plen = 0;
	bw_store_err e;
	bw_store *s;
	char dummy[1];

	*sp = NULL;
	if (err == NULL || errlen == 0)
		err = dummy, errlen = sizeof(dummy);
	err[0] = 0;
	if (spec == NULL)
		spec = "";
	for (size_t i = 0; i < sizeof(store_backends) / sizeof(store_backends[0]); i++)
		if (strncmp(spec, store_backends[i].prefix, strlen(store_backends[i].prefix)) == 0) {
			ops = store_backends[i].ops;
			plen = strlen(store_backends[i].prefix);
		}
	if (ops == NULL) {
		if (strncmp(spec, "redis:", 6) == 0)
			snprintf(err, errlen, "Store %.200s: this bulkwarden was built without Redis "
			    "support (configure --with-redis)", spec);
		else
			snprintf(err, errlen, "Store \"%.200s\": not lmdb:/directory or "
			    "redis:host:port", spec);
		return BW_STORE_INVALID;
	}
	if (o != NULL)
		opts = *o;
	if (opts.map_size == 0)
		opts.map_size = BW_STORE_MAPSIZE_DEF;
	if (opts.max_readers == 0)
		opts.max_readers = BW_STORE_READERS_DEF;
	if (opts.timeout_ms == 0)
		opts.timeout_ms = BW_STORE_TIMEOUT_DEF;

	if ((s = calloc(1, sizeof(*s))) == NULL || (s->spec = strdup(spec)) == NULL) {
		free(s);
		snprintf(err, errlen, "Store %.200s: out of memory", spec);
		return BW_STORE_NOMEM;
	}
	s->ops = ops;
	s->id = atomic_fetch_add(&store_next_id, 1);
	s->readonly = opts.readonly;
	if ((e = ops->open(s, spec + plen, &opts, err, errlen)) != BW_STORE_OK) {
		free(s->spec);
		free(s);
		return e;
	}
	*sp = s;
	return BW_STORE_OK;
}

bw_store *
bw_store_open(const char *spec, const bw_store_opts *o, char *err, size_t errlen)
{
	bw_store *s;

	bw_store_open_status(spec, o, &s, err, errlen);
	return s;
}

void
bw_store_close(bw_store *s)
{
	if (s == NULL)
		return;
	s->ops->close(s);
	free(s->spec);
	free(s);
}

const char *
bw_store_spec(const bw_store *s)
{
	return s->spec;
}

bw_store_err
bw_store_check(bw_store *s, int *cleared)
{
	int dummy;

	return s->ops->check(s, cleared ? cleared : &dummy);
}

/* ---------------------------------------------------------------- arguments */

/* What a table calls its keys, and how long they may be. */
static const char *
store_key_noun(bw_tbl t)
{
	return bw_store_tables[t].kind == BW_VAL_INT64 ? "name" : "key";
}

static size_t
store_key_max(bw_tbl t)
{
	return bw_store_tables[t].kind == BW_VAL_INT64 ? BW_STORE_NAME_MAX : BW_STORE_KEY_MAX;
}

/*
 * A key of table t: 1 to store_key_max(t) bytes of UTF-8 without control
 * characters, checked in one pass (it runs for every key of every lookup).
 * Returns true, or false with why in buf ("empty name", "key longer than
 * 480 bytes", ...).
 */
static bool
store_key_ok(bw_tbl t, const char *k, char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)k;
	size_t max = store_key_max(t), i = 0;
	enum { KEY_OK, KEY_CONTROL, KEY_UTF8 } bad = KEY_OK;

	if (k == NULL || k[0] == 0) {
		snprintf(buf, len, "empty %s", store_key_noun(t));
		return false;
	}
	for (;;) {
		size_t n;

		/* printable ASCII, the common case, in a tight loop */
		while ((unsigned)(p[i] - 0x20) < 0x5f)
			i++;
		if (i > max || p[i] == 0)
			break;
		if (p[i] < 0x80) {
			bad = KEY_CONTROL;
			break;
		}
		if ((n = bw_utf8_seq(p + i, SIZE_MAX)) == 0) {
			bad = KEY_UTF8;
			break;
		}
		i += n;
	}
	if (i > max) {
		snprintf(buf, len, "%s longer than %zu bytes", store_key_noun(t), max);
		return false;
	}
	if (bad == KEY_CONTROL)
		snprintf(buf, len, "control character in %s", store_key_noun(t));
	else if (bad == KEY_UTF8)
		snprintf(buf, len, "%s is not UTF-8", store_key_noun(t));
	return bad == KEY_OK;
}

static bw_store_err
store_check_name(bw_store *s, const char *name)
{
	char why[64];

	if (!store_key_ok(BW_TBL_COUNTERS, name, why, sizeof(why)))
		return bw_store_fail(s, BW_STORE_INVALID, "store: counter \"%.100s\": %s",
		    name ? name : "", why);
	return BW_STORE_OK;
}

/* t names a table of records. */
static bw_store_err
store_check_tbl(bw_store *s, bw_tbl t)
{
	if ((unsigned)t >= BW_TBL__N || bw_store_tables[t].kind != BW_VAL_JSON)
		return bw_store_fail(s, BW_STORE_INVALID, "store: table %d holds no records", (int)t);
	return BW_STORE_OK;
}

/* t names a table of records and key is one of its keys. */
static bw_store_err
store_check_key(bw_store *s, bw_tbl t, const char *key)
{
	char why[64];
	bw_store_err e;

	if ((e = store_check_tbl(s, t)) != BW_STORE_OK)
		return e;
	if (!store_key_ok(t, key, why, sizeof(why)))
		return bw_store_fail(s, BW_STORE_INVALID, "store: %s key \"%.100s\": %s",
		    bw_store_tables[t].name, key ? key : "", why);
	return BW_STORE_OK;
}

/*
 * A record's value: 2 to BW_STORE_VAL_MAX bytes, "{" to "}". The store
 * does not parse it on the message path (restore does); the braces catch
 * a caller that passed something else.
 */
static bw_store_err
store_check_val(bw_store *s, bw_tbl t, const char *key, const char *val)
{
	size_t n;

	if (val == NULL)
		return bw_store_fail(s, BW_STORE_INVALID, "store: %s \"%.100s\": no value",
		    bw_store_tables[t].name, key);
	n = strlen(val);
	if (n < 2 || n > BW_STORE_VAL_MAX)
		return bw_store_fail(s, BW_STORE_INVALID, "store: %s \"%.100s\": value of %zu "
		    "bytes (2 to %d)", bw_store_tables[t].name, key, n, BW_STORE_VAL_MAX);
	if (val[0] != '{' || val[n - 1] != '}')
		return bw_store_fail(s, BW_STORE_INVALID, "store: %s \"%.100s\": value is not a "
		    "JSON object", bw_store_tables[t].name, key);
	return BW_STORE_OK;
}

static bw_store_err
store_check_write(bw_store *s)
{
	if (s->readonly)
		return bw_store_fail(s, BW_STORE_INVALID, "store %.200s: opened read-only", s->spec);
	return BW_STORE_OK;
}

/* INT64_MIN has no negation; refusing it lets every backend undo an add. */
static bw_store_err
store_check_delta(bw_store *s, const char *name, int64_t delta)
{
	if (delta == INT64_MIN)
		return bw_store_fail(s, BW_STORE_INVALID, "store: counter %.100s: delta out of range",
		    name);
	return BW_STORE_OK;
}

/* ---------------------------------------------------------------- counters */

bw_store_err
bw_store_counter_add(bw_store *s, const char *name, int64_t delta, int64_t *newval)
{
	int64_t dummy;
	bw_store_err e;

	if ((e = store_check_write(s)) != BW_STORE_OK || (e = store_check_name(s, name)) != BW_STORE_OK
	    || (e = store_check_delta(s, name, delta)) != BW_STORE_OK)
		return e;
	return s->ops->counter_add(s, name, delta, newval ? newval : &dummy);
}

bw_store_err
bw_store_counter_get(bw_store *s, const char *name, int64_t *val)
{
	int64_t dummy;
	bw_store_err e;

	if ((e = store_check_name(s, name)) != BW_STORE_OK)
		return e;
	return s->ops->counter_get(s, name, val ? val : &dummy);
}

bw_store_err
bw_store_counter_add_many(bw_store *s, const bw_counter_delta *d, size_t n)
{
	bw_store_err e;

	if ((e = store_check_write(s)) != BW_STORE_OK)
		return e;
	if (n == 0)
		return BW_STORE_OK;
	if (d == NULL)
		return bw_store_fail(s, BW_STORE_INVALID, "store: no counters given");
	for (size_t i = 0; i < n; i++)
		if ((e = store_check_name(s, d[i].name)) != BW_STORE_OK
		    || (e = store_check_delta(s, d[i].name, d[i].delta)) != BW_STORE_OK)
			return e;
	return s->ops->counter_add_many(s, d, n);
}

bw_store_err
bw_store_counter_del_many(bw_store *s, const char *const *names, size_t n)
{
	bw_store_err e;

	if ((e = store_check_write(s)) != BW_STORE_OK)
		return e;
	if (n == 0)
		return BW_STORE_OK;
	if (names == NULL)
		return bw_store_fail(s, BW_STORE_INVALID, "store: no counters given");
	for (size_t i = 0; i < n; i++)
		if ((e = store_check_name(s, names[i])) != BW_STORE_OK)
			return e;
	return s->ops->counter_del_many(s, names, n);
}

bw_store_err
bw_store_counter_scan(bw_store *s, const char *prefix,
    int (*fn)(void *ud, const char *name, int64_t val), void *ud)
{
	if (fn == NULL)
		return bw_store_fail(s, BW_STORE_INVALID, "store: scan without a callback");
	if (prefix == NULL)
		prefix = "";
	if (strlen(prefix) > BW_STORE_NAME_MAX)
		return bw_store_fail(s, BW_STORE_INVALID, "store: scan prefix longer than 255 bytes");
	return s->ops->counter_scan(s, prefix, fn, ud);
}

/* ---------------------------------------------------------------- records */

const char *
bw_store_table_name(bw_tbl t)
{
	return (unsigned)t < BW_TBL__N ? bw_store_tables[t].name : "unknown";
}

bw_store_err
bw_store_get(bw_store *s, bw_tbl t, const char *key, char **val)
{
	bw_store_key k = { t, key };
	bw_store_err e;

	if (val == NULL)
		return bw_store_fail(s, BW_STORE_INVALID, "store: get without a result");
	*val = NULL;
	if ((e = store_check_key(s, t, key)) != BW_STORE_OK
	    || (e = s->ops->rec_get_many(s, &k, 1, val)) != BW_STORE_OK)
		return e;
	if (*val == NULL)
		return bw_store_fail(s, BW_STORE_NOTFOUND, "store: no %s record \"%.100s\"",
		    bw_store_tables[t].name, key);
	return BW_STORE_OK;
}

bw_store_err
bw_store_get_many(bw_store *s, const bw_store_key *keys, size_t n, char **vals)
{
	bw_store_err e;

	if (n == 0)
		return BW_STORE_OK;
	if (keys == NULL || vals == NULL)
		return bw_store_fail(s, BW_STORE_INVALID, "store: no keys given");
	for (size_t i = 0; i < n; i++)
		vals[i] = NULL;
	for (size_t i = 0; i < n; i++)
		if ((e = store_check_key(s, keys[i].tbl, keys[i].key)) != BW_STORE_OK)
			return e;
	if ((e = s->ops->rec_get_many(s, keys, n, vals)) != BW_STORE_OK)
		for (size_t i = 0; i < n; i++) {
			free(vals[i]);
			vals[i] = NULL;
		}
	return e;
}

bw_store_err
bw_store_put(bw_store *s, bw_tbl t, const char *key, const char *val)
{
	bw_store_kv kv = { t, key, val };
	bw_store_err e;

	if ((e = store_check_write(s)) != BW_STORE_OK || (e = store_check_key(s, t, key)) != BW_STORE_OK
	    || (e = store_check_val(s, t, key, val)) != BW_STORE_OK)
		return e;
	return s->ops->rec_write_many(s, &kv, 1);
}

json_t *
bw_store_json_object(const char *val, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o;

	if (val == NULL) {
		bw_seterr(err, errlen, "no value");
		return NULL;
	}
	if (strnlen(val, BW_STORE_VAL_MAX + 1) > BW_STORE_VAL_MAX) {
		bw_seterr(err, errlen, "record longer than %d bytes", BW_STORE_VAL_MAX);
		return NULL;
	}
	if ((o = json_loads(val, JSON_REJECT_DUPLICATES, &je)) == NULL) {
		bw_seterr(err, errlen, "bad JSON at column %d: %.100s", je.column, je.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		bw_seterr(err, errlen, "not a JSON object");
		json_decref(o);
		return NULL;
	}
	return o;
}

bw_store_err
bw_store_del(bw_store *s, bw_tbl t, const char *key)
{
	bw_store_err e;

	if ((e = store_check_write(s)) != BW_STORE_OK || (e = store_check_key(s, t, key)) != BW_STORE_OK)
		return e;
	return s->ops->rec_del(s, t, key);
}

bw_store_err
bw_store_cas(bw_store *s, bw_tbl t, const char *key, const char *expect, const char *val)
{
	bw_store_err e;

	if ((e = store_check_write(s)) != BW_STORE_OK || (e = store_check_key(s, t, key)) != BW_STORE_OK
	    || (val != NULL && (e = store_check_val(s, t, key, val)) != BW_STORE_OK))
		return e;
	return s->ops->rec_cas(s, t, key, expect, val);
}

bw_store_err
bw_store_rate_take(bw_store *s, const char *key, int64_t interval_us, uint32_t burst, unsigned n,
    int *allowed, int64_t *retry_ms)
{
	*allowed = 1;
	*retry_ms = 0;
	if (s->ops->rate_take == NULL)
		return bw_store_fail(s, BW_STORE_INVALID, "store %.200s: rate limiters are not kept here",
		    s->spec);
	if (key == NULL || !*key || strlen(key) > 200 || strchr(key, ' ') || interval_us <= 0
	    || burst == 0 || n == 0 || n > burst)
		return bw_store_fail(s, BW_STORE_INVALID, "store: bad rate limiter \"%.100s\"",
		    key ? key : "");
	return s->ops->rate_take(s, key, interval_us, burst, n, allowed, retry_ms);
}

bw_store_err
bw_store_rate_reset(bw_store *s, const char *sender)
{
	if (s->ops->rate_reset == NULL)
		return BW_STORE_OK;
	if (sender == NULL || !*sender || strlen(sender) > 190 || strchr(sender, ' '))
		return bw_store_fail(s, BW_STORE_INVALID, "store: bad sender \"%.100s\"",
		    sender ? sender : "");
	return s->ops->rate_reset(s, sender);
}

/* Every write is checked before the first one is tried: a bad one in the
 * middle leaves the store as it was. */
bw_store_err
bw_store_write_many(bw_store *s, const bw_store_kv *kv, size_t n)
{
	bw_store_err e;

	if ((e = store_check_write(s)) != BW_STORE_OK)
		return e;
	if (n == 0)
		return BW_STORE_OK;
	if (kv == NULL)
		return bw_store_fail(s, BW_STORE_INVALID, "store: no records given");
	for (size_t i = 0; i < n; i++)
		if ((e = store_check_key(s, kv[i].tbl, kv[i].key)) != BW_STORE_OK
		    || (kv[i].val != NULL
		    && (e = store_check_val(s, kv[i].tbl, kv[i].key, kv[i].val)) != BW_STORE_OK))
			return e;
	return s->ops->rec_write_many(s, kv, n);
}

bw_store_err
bw_store_scan(bw_store *s, bw_tbl t, const char *prefix,
    int (*fn)(void *ud, const char *key, const char *val), void *ud)
{
	bw_store_err e;

	if (fn == NULL)
		return bw_store_fail(s, BW_STORE_INVALID, "store: scan without a callback");
	if ((e = store_check_tbl(s, t)) != BW_STORE_OK)
		return e;
	if (prefix == NULL)
		prefix = "";
	if (strlen(prefix) > BW_STORE_KEY_MAX)
		return bw_store_fail(s, BW_STORE_INVALID, "store: scan prefix longer than %d bytes",
		    BW_STORE_KEY_MAX);
	return s->ops->rec_scan(s, t, prefix, fn, ud);
}

bw_store_err
bw_store_count(bw_store *s, bw_tbl t, uint64_t *n)
{
	bw_store_err e;

	if (n == NULL)
		return bw_store_fail(s, BW_STORE_INVALID, "store: count without a result");
	*n = 0;
	if ((e = store_check_tbl(s, t)) != BW_STORE_OK)
		return e;
	return s->ops->rec_count(s, t, n);
}

/* ---------------------------------------------------------------- dump */

typedef struct store_dump {
	bw_store *s;
	int (*out)(void *ud, const char *line, size_t len);
	void *ud;
	bw_store_err err;       /* why a record stopped the dump */
	char text[BW_STORE_ERR_MAX];
} store_dump;

static int
store_dump_line(store_dump *d, const char *table, const char *key, int64_t val)
{
	json_t *o = json_pack("{s:s, s:s, s:I}", "table", table, "key", key, "value",
	    (json_int_t)val);
	char *line;
	int r;

	if (o == NULL)
		return -1;
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (line == NULL)
		return -1;
	r = d->out(d->ud, line, strlen(line));
	free(line);
	return r;
}

/* A line whose value is the record's JSON object, re-encoded compact (so a
 * value never spans lines). Returns 0, -1 (output or memory), -2 (not an object). */
static int
store_dump_json(store_dump *d, const char *table, const char *key, const char *val, size_t len)
{
	json_t *v = json_loadb(val, len, JSON_REJECT_DUPLICATES, NULL), *o;
	char *line;
	int r;

	if (v == NULL || !json_is_object(v)) {
		json_decref(v);
		return -2;
	}
	if ((o = json_pack("{s:s, s:s, s:o}", "table", table, "key", key, "value", v)) == NULL)
		return -1;
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (line == NULL)
		return -1;
	r = d->out(d->ud, line, strlen(line));
	free(line);
	return r == 0 ? 0 : -1;
}

static int
store_dump_rec(void *ud, const bw_store_rec *r)
{
	store_dump *d = ud;
	const char *table = bw_store_tables[r->tbl].name;
	char why[64];
	int rc = -1;

	if (!store_key_ok(r->tbl, r->key, why, sizeof(why))) {
		d->err = BW_STORE_CORRUPT;
		snprintf(d->text, sizeof(d->text), "store %.200s: %s record \"%.100s\": %s: the "
		    "database is damaged", d->s->spec, table, r->key, why);
		return -1;
	}
	switch (bw_store_tables[r->tbl].kind) {
	case BW_VAL_INT64:
		rc = store_dump_line(d, table, r->key, r->ival);
		break;
	case BW_VAL_JSON:
		rc = store_dump_json(d, table, r->key, r->sval, r->slen);
		break;
	}
	if (rc == 0)
		return 0;
	if (rc == -2) {
		d->err = BW_STORE_CORRUPT;
		snprintf(d->text, sizeof(d->text), "store %.200s: %s record \"%.100s\": value is "
		    "not a JSON object: the database is damaged", d->s->spec, table, r->key);
		return -1;
	}
	d->err = BW_STORE_IO;
	snprintf(d->text, sizeof(d->text), "store: dump: cannot write the output");
	return -1;
}

bw_store_err
bw_store_dump(bw_store *s, int (*out)(void *ud, const char *line, size_t len), void *ud)
{
	store_dump d = { .s = s, .out = out, .ud = ud };
	bw_store_err e;

	if (out == NULL)
		return bw_store_fail(s, BW_STORE_INVALID, "store: dump without an output");
	if (store_dump_line(&d, "meta", "schema", BW_STORE_SCHEMA) != 0)
		return bw_store_fail(s, BW_STORE_IO, "store: dump: cannot write the output");
	e = s->ops->dump(s, store_dump_rec, &d);
	if (e != BW_STORE_OK && d.err != BW_STORE_OK)
		return bw_store_fail(s, d.err, "%s", d.text);
	return e;
}

/* ---------------------------------------------------------------- restore */

/* Parses one line into r (key points into *obj). Returns NULL or why not. */
static const char *
store_restore_parse(const char *line, size_t len, json_t **obj, bw_store_rec *r, int *meta,
    char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *t, *k, *v;
	const char *tname;
	char kwhy[64];
	size_t i;

	if ((*obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		snprintf(why, whylen, "not JSON: %s", jerr.text);
		return why;
	}
	if (!json_is_object(*obj))
		return "not a JSON object";
	if (json_object_size(*obj) != 3 || !(t = json_object_get(*obj, "table"))
	    || !(k = json_object_get(*obj, "key")) || !(v = json_object_get(*obj, "value")))
		return "want exactly \"table\", \"key\" and \"value\"";
	if (!json_is_string(t) || !json_is_string(k))
		return "\"table\" and \"key\" must be strings";
	tname = json_string_value(t);
	r->key = json_string_value(k);
	*meta = strcmp(tname, "meta") == 0;
	if (*meta) {
		if (strcmp(r->key, "schema") != 0) {
			snprintf(why, whylen, "unknown meta key \"%.100s\"", r->key);
			return why;
		}
		if (!json_is_integer(v))
			return "schema must be an integer";
		if (json_integer_value(v) < 1 || json_integer_value(v) > BW_STORE_SCHEMA) {
			snprintf(why, whylen, "dump schema %lld is not one this store reads (1 to %d)",
			    (long long)json_integer_value(v), BW_STORE_SCHEMA);
			return why;
		}
		return NULL;
	}
	for (i = 0; i < BW_TBL__N; i++)
		if (strcmp(tname, bw_store_tables[i].name) == 0)
			break;
	if (i == BW_TBL__N) {
		snprintf(why, whylen, "unknown table \"%.60s\"", tname);
		return why;
	}
	r->tbl = (bw_tbl)i;
	/* (jansson refuses \u0000 in strings: a key is one C string) */
	if (!store_key_ok(r->tbl, r->key, kwhy, sizeof(kwhy))) {
		snprintf(why, whylen, "key \"%.100s\": %s", r->key, kwhy);
		return why;
	}
	switch (bw_store_tables[i].kind) {
	case BW_VAL_INT64:
		if (!json_is_integer(v)) {
			snprintf(why, whylen, "value of %s \"%.100s\" must be an integer",
			    tname, r->key);
			return why;
		}
		r->ival = json_integer_value(v);
		break;
	case BW_VAL_JSON: {
		char *text;

		if (!json_is_object(v)) {
			snprintf(why, whylen, "value of %s \"%.100s\" must be a JSON object",
			    tname, r->key);
			return why;
		}
		/* compact, members in the order given */
		if ((text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
			return "out of memory";
		r->sval = text;
		r->slen = strlen(text);
		if (r->slen > BW_STORE_VAL_MAX) {
			snprintf(why, whylen, "value of %s \"%.100s\" is %zu bytes (at most %d)",
			    tname, r->key, r->slen, BW_STORE_VAL_MAX);
			return why;
		}
		break;
	}
	}
	return NULL;
}

static bool
store_blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/* The records of a restore, parsed before anything is written. */
typedef struct store_recs {
	bw_store_rec *v;
	size_t n, cap;
} store_recs;

static void
store_recs_free(store_recs *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free((char *)rs->v[i].key);
		free((char *)rs->v[i].sval);
	}
	free(rs->v);
}

/* Adds a copy of r's key; r's value text (sval) passes to rs, or is freed. */
static bool
store_recs_add(store_recs *rs, const bw_store_rec *r)
{
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 256;
		bw_store_rec *v = realloc(rs->v, cap * sizeof(*v));

		if (v == NULL) {
			free((char *)r->sval);
			return false;
		}
		rs->v = v;
		rs->cap = cap;
	}
	rs->v[rs->n] = *r;
	if ((rs->v[rs->n].key = strdup(r->key)) == NULL) {
		free((char *)r->sval);
		return false;
	}
	rs->n++;
	return true;
}

/* Reads and checks every line; nothing is written. */
static bw_store_err
store_restore_read(bw_store *s, int (*in)(void *ud, char **line, size_t *len), void *ud,
    store_recs *rs)
{
	unsigned long lineno = 0;
	char why[256];

	for (;;) {
		char *line = NULL;
		size_t len = 0;
		json_t *obj = NULL;
		bw_store_rec r = { 0 };
		const char *bad;
		int meta = 0, got = in(ud, &line, &len);

		if (got == 0)
			return BW_STORE_OK;
		lineno++;
		if (got < 0 || line == NULL)
			return bw_store_fail(s, BW_STORE_IO, "line %lu: cannot read the input", lineno);
		if (len > BW_STORE_LINE_MAX)
			return bw_store_fail(s, BW_STORE_INVALID, "line %lu: longer than %d bytes",
			    lineno, BW_STORE_LINE_MAX);
		if (store_blank(line, len))
			continue;
		bad = store_restore_parse(line, len, &obj, &r, &meta, why, sizeof(why));
		if (bad != NULL) {
			bw_store_fail(s, BW_STORE_INVALID, "line %lu: %s", lineno, bad);
			free((char *)r.sval);
			json_decref(obj);
			return BW_STORE_INVALID;
		}
		if (!meta && !store_recs_add(rs, &r)) {
			json_decref(obj);
			return bw_store_fail(s, BW_STORE_NOMEM, "line %lu: out of memory", lineno);
		}
		json_decref(obj);
	}
}

/*
 * The whole input is read and checked first, then written in one
 * transaction: a slow or bad input never holds the store's writers.
 */
bw_store_err
bw_store_restore(bw_store *s, int (*in)(void *ud, char **line, size_t *len), void *ud,
    char *err, size_t errlen)
{
	store_recs rs = { 0 };
	bw_store_err e;
	void *txn;
	char dummy[1];

	if (err == NULL || errlen == 0)
		err = dummy, errlen = sizeof(dummy);
	if ((e = store_check_write(s)) == BW_STORE_OK && in == NULL)
		e = bw_store_fail(s, BW_STORE_INVALID, "store: restore without an input");
	if (e == BW_STORE_OK)
		e = store_restore_read(s, in, ud, &rs);
	if (e == BW_STORE_OK && (e = s->ops->restore_begin(s, &txn)) == BW_STORE_OK) {
		for (size_t i = 0; i < rs.n && e == BW_STORE_OK; i++)
			e = s->ops->restore_put(s, txn, &rs.v[i]);
		if (e == BW_STORE_OK)
			e = s->ops->restore_end(s, txn, 1);
		else {
			char text[BW_STORE_ERR_MAX];

			snprintf(text, sizeof(text), "%s", bw_store_last_error(s));
			s->ops->restore_end(s, txn, 0);
			bw_store_fail(s, e, "%s", text);
		}
	}
	store_recs_free(&rs);
	snprintf(err, errlen, "%s", e == BW_STORE_OK ? "" : bw_store_last_error(s));
	return e;
}
