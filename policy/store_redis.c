/*
 * store_redis.c - the shared store for a fleet of MTAs: Redis through
 * hiredis.
 *
 * Keys start with "bw:" and carry a hash tag naming the entity they belong
 * to, so that Redis Cluster puts each entity's keys in one slot and a
 * script or MULTI over them stays legal: the counters are one hash,
 * "bw:{counters}"; the schema version lives in "bw:{meta}".
 *
 * Records. A record key is split at its first space into SENDER and the
 * rest (" RCPT", with the space; empty when the key has none): the record
 * is the field REST of the hash "bw:TABLE:{SENDER}" ("bw:consent:{acme}"
 * field " bob@example.com"). So the key is SENDER followed by the field,
 * every record of a sender (consent and suppressions alike) is in one
 * Cluster slot, and the global suppressions ("*") are one hash. Since a
 * field is empty or starts with a space, the smallest byte a key may hold,
 * key byte order is sender order, then field order.
 *  get_many: MULTI, one HGET per key, EXEC, pipelined: one round trip and
 *   one snapshot. (In a Cluster, keys of several senders would be in
 *   several slots; this client speaks to one server.)
 *  write_many: one Lua script that checks that every hash it touches is a
 *   hash (or absent), then applies the writes in order, a run of writes of
 *   one kind to one hash as one HSET or HDEL; a script's only other
 *   failure, maxmemory, comes at its first write. All or nothing. A batch
 *   of more than REDIS_BIG_BATCH writes gets the restore timeout. (About
 *   10 s per million sorted records here, most of it in the server.)
 *  scan: the hashes of the senders the prefix allows (SCAN over the hash
 *   names when the prefix holds no space: cost in senders, not records),
 *   each read with HSCAN and sorted here; memory: the largest sender's
 *   records. It is not a snapshot: a record present throughout is seen
 *   once, one written or deleted meanwhile may or may not be.
 *  count: SCAN over the hash names, HLEN of each.
 *
 * A new record table needs no code here: its hashes are named after it.
 *
 * hiredis contexts are not thread-safe: a small locked pool lends one to
 * each call. Connect and command timeouts (200 ms unless set) keep a dead
 * or hung server from holding a milter callback; a broken connection is
 * dropped and the next call connects again. An idle pooled connection that
 * the server closed is noticed before use. SIGPIPE is blocked in the calling
 * thread while a call talks to the server.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "store.h"
#include "store_impl.h"

#define REDIS_POOL_MAX     32      /* connections per handle */
#define REDIS_DB_MAX       9999
#define REDIS_SCAN_COUNT   "500"   /* HSCAN batch hint */
#define REDIS_RESTORE_MS   60000   /* command timeout for one whole restore */
#define REDIS_KEY_META     "bw:{meta}"
#define REDIS_KEY_COUNTERS "bw:{counters}"
#define REDIS_HKEY_MAX     (BW_STORE_KEY_MAX + 64) /* "bw:TABLE:{SENDER}" */
#define REDIS_BIG_BATCH    1000    /* writes beyond which a batch gets REDIS_RESTORE_MS */
#define REDIS_KEYS_COUNT   "1000"  /* SCAN batch hint */
#define REDIS_RUN_MAX      1000    /* writes in one HSET/HDEL of a script (Lua's stack) */

/*
 * write_many. KEYS: the hashes; ARGV: runs of writes to one hash, in
 * order: "s", KEYS index, n, then n field-value pairs (one HSET), or "d",
 * KEYS index, n, then n fields (one HDEL). Types first, so that no write
 * fails after another was made (maxmemory stops only the first).
 */
static const char redis_write_many_lua[] =
    "for i = 1, #KEYS do\n"
    "  local t = redis.call('TYPE', KEYS[i])\n"
    "  if type(t) == 'table' then t = t.ok end\n"
    "  if t ~= 'hash' and t ~= 'none' then\n"
    "    return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' is not a hash')\n"
    "  end\n"
    "end\n"
    "local a, i = ARGV, 1\n"
    "while i <= #a do\n"
    "  local k, n = KEYS[tonumber(a[i + 1])], tonumber(a[i + 2])\n"
    "  if a[i] == 's' then\n"
    "    redis.call('HSET', k, unpack(a, i + 3, i + 2 + 2 * n))\n"
    "    i = i + 3 + 2 * n\n"
    "  else\n"
    "    redis.call('HDEL', k, unpack(a, i + 3, i + 2 + n))\n"
    "    i = i + 3 + n\n"
    "  end\n"
    "end\n"
    "return 1\n";

/*
 * Adds every (name, delta, -delta) triple to hash KEYS[1] at once. Redis
 * runs a script alone, so nobody sees a partial state; if one add fails
 * (overflow, wrong type) the earlier ones are undone and the error returned.
 */
static const char redis_add_many_lua[] =
    "local k = KEYS[1]\n"
    "local done = {}\n"
    "for i = 1, #ARGV, 3 do\n"
    "  local existed = redis.call('HEXISTS', k, ARGV[i])\n"
    "  local r = redis.pcall('HINCRBY', k, ARGV[i], ARGV[i + 1])\n"
    "  if type(r) == 'table' and r.err then\n"
    "    for j = #done, 1, -1 do\n"
    "      local d = done[j]\n"
    "      redis.call('HINCRBY', k, ARGV[d[1]], ARGV[d[1] + 2])\n"
    "      if d[2] == 0 then redis.call('HDEL', k, ARGV[d[1]]) end\n"
    "    end\n"
    "    return r\n"
    "  end\n"
    "  done[#done + 1] = { i, existed }\n"
    "end\n"
    "return #done\n";

typedef struct redis_be {
	char *host;             /* NULL for a unix socket */
	char *path;
	int port;
	int db;
	int readonly;
	unsigned timeout_ms;
	pthread_mutex_t lock;
	pthread_cond_t freed;   /* a connection went back or away */
	redisContext *idle[REDIS_POOL_MAX];
	unsigned nidle;
	unsigned nopen;         /* idle + lent out */
} redis_be;

/* One call's use of a connection, with SIGPIPE held back. */
typedef struct redis_op {
	redisContext *c;
	bool broken;            /* drop the connection at the end */
	sigset_t oldmask;
	bool pipe_pending;      /* SIGPIPE was pending before: leave it */
} redis_op;

/* ---------------------------------------------------------------- errors */

static bw_store_err
redis_conn_fail(bw_store *s, const redisContext *c, const char *what)
{
	redis_be *b = s->be;

	if (c != NULL && c->err == REDIS_ERR_IO && (strstr(c->errstr, "temporarily") != NULL
	    || strstr(c->errstr, "timed out") != NULL))
		return bw_store_fail(s, BW_STORE_UNAVAILABLE, "store %s: %s: no answer within %u ms",
		    s->spec, what, b->timeout_ms);
	return bw_store_fail(s, BW_STORE_UNAVAILABLE, "store %s: %s: %s", s->spec, what,
	    c == NULL ? "out of memory" : c->err == REDIS_ERR_EOF ? "server closed the connection"
	    : c->errstr);
}

/* An error reply from the server. */
static bw_store_err
redis_reply_fail(bw_store *s, const redisReply *r, const char *what)
{
	static const struct { const char *prefix; bw_store_err e; } map[] = {
		{ "OOM", BW_STORE_FULL },
		{ "WRONGTYPE", BW_STORE_CORRUPT },
		{ "ERR hash value is not an integer", BW_STORE_CORRUPT },
		{ "ERR increment or decrement would overflow", BW_STORE_INVALID },
		{ "LOADING", BW_STORE_UNAVAILABLE },
		{ "READONLY", BW_STORE_UNAVAILABLE },
		{ "MASTERDOWN", BW_STORE_UNAVAILABLE },
		{ "BUSY", BW_STORE_UNAVAILABLE },
		{ "NOAUTH", BW_STORE_UNAVAILABLE },
		{ "MOVED", BW_STORE_UNAVAILABLE },
		{ "CROSSSLOT", BW_STORE_INVALID },
	};
	const char *text = r->str ? r->str : "";
	bw_store_err e = BW_STORE_IO;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(text, map[i].prefix, strlen(map[i].prefix)) == 0) {
			e = map[i].e;
			break;
		}
	/* a script's error reads "ERR user_script:...: <the command's error>" */
	if (e == BW_STORE_IO && strstr(text, "would overflow") != NULL)
		e = BW_STORE_INVALID;
	else if (e == BW_STORE_IO && strstr(text, "OOM command not allowed") != NULL)
		e = BW_STORE_FULL;
	else if (e == BW_STORE_IO && strstr(text, "not an integer") != NULL)
		e = BW_STORE_CORRUPT;
	if (e == BW_STORE_FULL)
		return bw_store_fail(s, e, "store %s: %s: %.200s: raise the server's maxmemory",
		    s->spec, what, text);
	if (e == BW_STORE_CORRUPT)
		return bw_store_fail(s, e, "store %s: %s: %.200s: the data is damaged or not "
		    "bulkwarden's", s->spec, what, text);
	return bw_store_fail(s, e, "store %s: %s: %.200s", s->spec, what, text);
}

static bw_store_err
redis_unexpected(bw_store *s, const char *what)
{
	return bw_store_fail(s, BW_STORE_CORRUPT, "store %s: %s: unexpected reply: the data is "
	    "damaged or not bulkwarden's", s->spec, what);
}

/* A decimal int64 with nothing around it. */
static bool
redis_parse_i64(const char *p, size_t len, int64_t *v)
{
	char buf[24], *end;
	long long x;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, p, len);
	buf[len] = 0;
	if (!(buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9')))
		return false;
	errno = 0;
	x = strtoll(buf, &end, 10);
	if (errno != 0 || *end != 0)
		return false;
	*v = x;
	return true;
}

/* ---------------------------------------------------------------- connections */

static struct timeval
redis_tv(unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	return tv;
}

/* Runs one command on c; the reply in *rp (free it) unless an error. */
static bw_store_err
redis_cmd(bw_store *s, redis_op *op, int argc, const char **argv, const size_t *lens,
    const char *what, redisReply **rp)
{
	redisReply *r = redisCommandArgv(op->c, argc, argv, lens);

	*rp = NULL;
	if (r == NULL) {
		op->broken = true;
		return redis_conn_fail(s, op->c, what);
	}
	if (r->type == REDIS_REPLY_ERROR) {
		bw_store_err e = redis_reply_fail(s, r, what);

		freeReplyObject(r);
		return e;
	}
	*rp = r;
	return BW_STORE_OK;
}

/* New connection: select the database, check (or write) the schema version. */
static bw_store_err
redis_connect(bw_store *s, redis_op *op)
{
	redis_be *b = s->be;
	struct timeval tv = redis_tv(b->timeout_ms);
	redisReply *r;
	char db[16];
	int64_t schema;
	bw_store_err e;

	op->c = b->host ? redisConnectWithTimeout(b->host, b->port, tv)
	    : redisConnectUnixWithTimeout(b->path, tv);
	if (op->c == NULL || op->c->err) {
		op->broken = true;
		return redis_conn_fail(s, op->c, "connect");
	}
	if (redisSetTimeout(op->c, tv) != REDIS_OK) {
		op->broken = true;
		return redis_conn_fail(s, op->c, "connect");
	}
	if (b->db != 0) {
		const char *argv[] = { "SELECT", db };

		snprintf(db, sizeof(db), "%d", b->db);
		if ((e = redis_cmd(s, op, 2, argv, NULL, "select", &r)) != BW_STORE_OK) {
			op->broken = true;
			return e;
		}
		freeReplyObject(r);
	}
	{
		const char *argv[] = { "HGET", REDIS_KEY_META, "schema" };

		if ((e = redis_cmd(s, op, 3, argv, NULL, "read schema", &r)) != BW_STORE_OK) {
			op->broken = true;
			return e;
		}
	}
	if (r->type == REDIS_REPLY_NIL) {
		freeReplyObject(r);
		if (!b->readonly) {
			char v[16];
			const char *argv[] = { "HSETNX", REDIS_KEY_META, "schema", v };

			snprintf(v, sizeof(v), "%d", BW_STORE_SCHEMA);
			if ((e = redis_cmd(s, op, 4, argv, NULL, "write schema", &r)) != BW_STORE_OK) {
				op->broken = true;
				return e;
			}
			freeReplyObject(r);
		}
		return BW_STORE_OK;
	}
	if (r->type != REDIS_REPLY_STRING || !redis_parse_i64(r->str, r->len, &schema)
	    || schema < 1) {
		freeReplyObject(r);
		op->broken = true;
		return redis_unexpected(s, "read schema");
	}
	freeReplyObject(r);
	if (schema > BW_STORE_SCHEMA) {
		op->broken = true;
		return bw_store_fail(s, BW_STORE_CORRUPT, "store %s: schema %lld is newer than this "
		    "program's (%d): use a newer bulkwarden", s->spec, (long long)schema,
		    BW_STORE_SCHEMA);
	}
	return BW_STORE_OK;
}

/* An idle connection with something to read was closed (or desynced). */
static bool
redis_idle_ok(redisContext *c)
{
	struct pollfd p = { c->fd, POLLIN, 0 };

	return poll(&p, 1, 0) == 0;
}

static void
redis_drop(redis_be *b, redisContext *c)
{
	if (c)
		redisFree(c);
	pthread_mutex_lock(&b->lock);
	b->nopen--;
	pthread_cond_signal(&b->freed);
	pthread_mutex_unlock(&b->lock);
}

/* Holds SIGPIPE back in this thread while it talks to the server. */
static void
redis_sigpipe_hold(redis_op *op)
{
	sigset_t pipeset, pend;

	sigemptyset(&pipeset);
	sigaddset(&pipeset, SIGPIPE);
	sigpending(&pend);
	op->pipe_pending = sigismember(&pend, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipeset, &op->oldmask);
}

/* Swallows a SIGPIPE raised meanwhile (not one that was pending before). */
static void
redis_sigpipe_release(redis_op *op)
{
	if (!op->pipe_pending) {
		sigset_t pipeset, pend;
		struct timespec zero = { 0, 0 };

		sigemptyset(&pipeset);
		sigaddset(&pipeset, SIGPIPE);
		sigpending(&pend);
		if (sigismember(&pend, SIGPIPE))
			sigtimedwait(&pipeset, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &op->oldmask, NULL);
}

/* Lends a connection to this call. */
static bw_store_err
redis_begin(bw_store *s, redis_op *op)
{
	redis_be *b = s->be;
	struct timespec until;
	bw_store_err e;

	memset(op, 0, sizeof(*op));
	redis_sigpipe_hold(op);

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += b->timeout_ms / 1000;
	until.tv_nsec += (long)(b->timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->lock);
	for (;;) {
		while (b->nidle > 0) {
			redisContext *c = b->idle[--b->nidle];

			if (redis_idle_ok(c)) {
				op->c = c;
				pthread_mutex_unlock(&b->lock);
				return BW_STORE_OK;
			}
			redisFree(c);
			b->nopen--;
		}
		if (b->nopen < REDIS_POOL_MAX)
			break;
		if (pthread_cond_timedwait(&b->freed, &b->lock, &until) == ETIMEDOUT
		    && b->nidle == 0 && b->nopen >= REDIS_POOL_MAX) {
			pthread_mutex_unlock(&b->lock);
			redis_sigpipe_release(op);
			return bw_store_fail(s, BW_STORE_UNAVAILABLE, "store %s: all %d connections "
			    "busy for %u ms", s->spec, REDIS_POOL_MAX, b->timeout_ms);
		}
	}
	b->nopen++;
	pthread_mutex_unlock(&b->lock);
	if ((e = redis_connect(s, op)) != BW_STORE_OK) {
		redis_drop(b, op->c);
		op->c = NULL;
		redis_sigpipe_release(op);
		return e;
	}
	return BW_STORE_OK;
}

/* Gives the connection back (or drops it if broken); restores the signal mask. */
static void
redis_end(bw_store *s, redis_op *op)
{
	redis_be *b = s->be;

	if (op->broken || op->c->err) {
		redis_drop(b, op->c);
	} else {
		pthread_mutex_lock(&b->lock);
		b->idle[b->nidle++] = op->c;
		pthread_cond_signal(&b->freed);
		pthread_mutex_unlock(&b->lock);
	}
	op->c = NULL;
	redis_sigpipe_release(op);
}

/* ---------------------------------------------------------------- open/close */

/*
 * where: "unix:/path.sock[/DB]", "HOST:PORT[/DB]" or "[V6ADDR]:PORT[/DB]".
 * Returns NULL or what is wrong.
 */
static const char *
redis_parse(redis_be *b, const char *where)
{
	const char *slash, *colon, *hend, *p;
	char *end;
	long v;

	b->db = 0;
	if (strncmp(where, "unix:", 5) == 0) {
		const char *path = where + 5;
		size_t plen = strlen(path);

		if (path[0] != '/')
			return "want redis:unix:/path/to/redis.sock";
		slash = strrchr(path, '/');
		if (slash != path && slash[1] != 0 && strspn(slash + 1, "0123456789") == strlen(slash + 1)) {
			v = strtol(slash + 1, &end, 10);
			if (v > REDIS_DB_MAX)
				return "database number out of range";
			b->db = (int)v;
			plen = (size_t)(slash - path);
		}
		if (plen >= 108)
			return "socket path too long";
		if ((b->path = strndup(path, plen)) == NULL)
			return "out of memory";
		return NULL;
	}
	if (where[0] == '[') {
		if ((hend = strchr(where, ']')) == NULL || hend[1] != ':')
			return "want redis:[ADDRESS]:PORT";
		colon = hend + 1;
		where++;
	} else {
		if ((colon = strchr(where, ':')) == NULL)
			return "want redis:HOST:PORT or redis:unix:/path";
		hend = colon;
	}
	if (hend == where || hend - where > 255)
		return "bad host";
	p = colon + 1;
	if (*p < '0' || *p > '9')
		return "bad port";
	v = strtol(p, &end, 10);
	if (v < 1 || v > 65535)
		return "port out of range";
	b->port = (int)v;
	if (*end == '/') {
		p = end + 1;
		if (*p < '0' || *p > '9')
			return "bad database number";
		v = strtol(p, &end, 10);
		if (v > REDIS_DB_MAX || *end != 0)
			return "bad database number";
		b->db = (int)v;
	} else if (*end != 0) {
		return "bad port";
	}
	if ((b->host = strndup(where, (size_t)(hend - where))) == NULL)
		return "out of memory";
	return NULL;
}

static void
redis_free(redis_be *b)
{
	for (unsigned i = 0; i < b->nidle; i++)
		redisFree(b->idle[i]);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->freed);
	free(b->host);
	free(b->path);
	free(b);
}

/*
 * A server that cannot be reached is not an open failure for the daemon:
 * every call says BW_STORE_UNAVAILABLE until it can be, and the schema is
 * checked on each new connection. A read-only open (a tool) wants an answer
 * now and fails.
 */
static bw_store_err
redis_open(bw_store *s, const char *where, const bw_store_opts *o, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	redis_be *b;
	redis_op op;
	const char *why;
	bw_store_err e;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "Store %.200s: out of memory", s->spec);
		return BW_STORE_NOMEM;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->freed, &ca);
	pthread_condattr_destroy(&ca);
	b->readonly = o->readonly;
	b->timeout_ms = o->timeout_ms;
	s->be = b;
	if ((why = redis_parse(b, where)) != NULL) {
		snprintf(err, errlen, "Store %.200s: %s", s->spec, why);
		redis_free(b);
		s->be = NULL;
		return BW_STORE_INVALID;
	}
	if ((e = redis_begin(s, &op)) == BW_STORE_OK) {
		redis_end(s, &op);
		return BW_STORE_OK;
	}
	if (e == BW_STORE_UNAVAILABLE && !o->readonly)
		return BW_STORE_OK;
	snprintf(err, errlen, "%s", bw_store_last_error(s));
	redis_free(b);
	s->be = NULL;
	return e;
}

static void
redis_close(bw_store *s)
{
	redis_free(s->be);
}

static bw_store_err
redis_check(bw_store *s, int *cleared)
{
	const char *argv[] = { "PING" };
	redisReply *r;
	redis_op op;
	bw_store_err e;

	*cleared = 0;
	if ((e = redis_begin(s, &op)) != BW_STORE_OK)
		return e;
	if ((e = redis_cmd(s, &op, 1, argv, NULL, "ping", &r)) == BW_STORE_OK)
		freeReplyObject(r);
	redis_end(s, &op);
	return e;
}

/* ---------------------------------------------------------------- counters */

static bw_store_err
redis_counter_add(bw_store *s, const char *name, int64_t delta, int64_t *newval)
{
	char d[24];
	const char *argv[] = { "HINCRBY", REDIS_KEY_COUNTERS, name, d };
	redisReply *r;
	redis_op op;
	bw_store_err e;

	snprintf(d, sizeof(d), "%lld", (long long)delta);
	if ((e = redis_begin(s, &op)) != BW_STORE_OK)
		return e;
	if ((e = redis_cmd(s, &op, 4, argv, NULL, "add", &r)) == BW_STORE_OK) {
		if (r->type == REDIS_REPLY_INTEGER)
			*newval = r->integer;
		else
			e = redis_unexpected(s, "add");
		freeReplyObject(r);
	}
	redis_end(s, &op);
	return e;
}

static bw_store_err
redis_counter_get(bw_store *s, const char *name, int64_t *val)
{
	const char *argv[] = { "HGET", REDIS_KEY_COUNTERS, name };
	redisReply *r;
	redis_op op;
	bw_store_err e;

	if ((e = redis_begin(s, &op)) != BW_STORE_OK)
		return e;
	if ((e = redis_cmd(s, &op, 3, argv, NULL, "read", &r)) == BW_STORE_OK) {
		if (r->type == REDIS_REPLY_NIL)
			e = bw_store_fail(s, BW_STORE_NOTFOUND, "store: no counter %.100s", name);
		else if (r->type != REDIS_REPLY_STRING || !redis_parse_i64(r->str, r->len, val))
			e = redis_unexpected(s, "read");
		freeReplyObject(r);
	}
	redis_end(s, &op);
	return e;
}

static bw_store_err redis_one(bw_store *s, int argc, const char **argv, const size_t *lens,
    const char *what, long long *ival);

/* One HDEL of every name. */
static bw_store_err
redis_counter_del_many(bw_store *s, const char *const *names, size_t n)
{
	const char **argv;
	long long ndel;
	bw_store_err e;

	if (n > (size_t)INT_MAX - 2)
		return bw_store_fail(s, BW_STORE_INVALID, "store: too many counters at once");
	if ((argv = calloc(n + 2, sizeof(*argv))) == NULL)
		return bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
	argv[0] = "HDEL";
	argv[1] = REDIS_KEY_COUNTERS;
	memcpy(argv + 2, names, n * sizeof(*names));
	e = redis_one(s, (int)(n + 2), argv, NULL, "delete", &ndel);
	free(argv);
	return e;
}

static bw_store_err
redis_counter_add_many(bw_store *s, const bw_counter_delta *d, size_t n)
{
	const size_t fixed = 4; /* EVAL script numkeys key */
	const char **argv;
	char (*nums)[2][24];
	redisReply *r;
	redis_op op;
	bw_store_err e;

	if (n > (INT_MAX - fixed) / 3)
		return bw_store_fail(s, BW_STORE_INVALID, "store: too many counters at once");
	argv = calloc(fixed + 3 * n, sizeof(*argv));
	nums = calloc(n, sizeof(*nums));
	if (argv == NULL || nums == NULL) {
		free(argv);
		free(nums);
		return bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
	}
	argv[0] = "EVAL";
	argv[1] = redis_add_many_lua;
	argv[2] = "1";
	argv[3] = REDIS_KEY_COUNTERS;
	for (size_t i = 0; i < n; i++) {
		snprintf(nums[i][0], sizeof(nums[i][0]), "%lld", (long long)d[i].delta);
		snprintf(nums[i][1], sizeof(nums[i][1]), "%lld", -(long long)d[i].delta);
		argv[fixed + 3 * i] = d[i].name;
		argv[fixed + 3 * i + 1] = nums[i][0];
		argv[fixed + 3 * i + 2] = nums[i][1];
	}
	if ((e = redis_begin(s, &op)) == BW_STORE_OK) {
		if ((e = redis_cmd(s, &op, (int)(fixed + 3 * n), argv, NULL, "add", &r)) == BW_STORE_OK) {
			if (r->type != REDIS_REPLY_INTEGER || (size_t)r->integer != n)
				e = redis_unexpected(s, "add");
			freeReplyObject(r);
		}
		redis_end(s, &op);
	}
	free(argv);
	free(nums);
	return e;
}

typedef struct redis_ent {
	char *key;
	int64_t val;   /* BW_VAL_INT64 */
	char *sval;    /* BW_VAL_JSON: NUL-terminated */
	size_t slen;
} redis_ent;

typedef struct redis_ents {
	redis_ent *v;
	size_t n, cap;
} redis_ents;

static void
redis_ents_free(redis_ents *es)
{
	for (size_t i = 0; i < es->n; i++) {
		free(es->v[i].key);
		free(es->v[i].sval);
	}
	free(es->v);
	memset(es, 0, sizeof(*es));
}

static int
redis_ent_cmp(const void *a, const void *b)
{
	return strcmp(((const redis_ent *)a)->key, ((const redis_ent *)b)->key);
}

/* Escapes glob characters for HSCAN MATCH and appends '*'. */
static void
redis_glob(char *out, const char *prefix)
{
	for (; *prefix; prefix++) {
		if (strchr("*?[]\\", *prefix) != NULL)
			*out++ = '\\';
		*out++ = *prefix;
	}
	*out++ = '*';
	*out = 0;
}

/* A record value as read: 2 to VAL_MAX bytes, no NUL. */
static bool
redis_json_ok(const redisReply *v)
{
	return v->type == REDIS_REPLY_STRING && v->len >= 2 && v->len <= BW_STORE_VAL_MAX
	    && memchr(v->str, 0, v->len) == NULL;
}

/*
 * Every field of a hash starting with prefix, sorted by name, no
 * duplicates; values of the given kind (a JSON table's fields may be
 * empty: see the header).
 */
static bw_store_err
redis_hash_all(bw_store *s, const char *key, const char *prefix, bw_val_kind kind,
    const char *what, redis_ents *es)
{
	char cursor[32] = "0";
	char match[2 * BW_STORE_KEY_MAX + 2];
	const char *argv[] = { "HSCAN", key, cursor, "MATCH", match, "COUNT", REDIS_SCAN_COUNT };
	size_t plen = strlen(prefix), j;
	size_t fmax = kind == BW_VAL_INT64 ? BW_STORE_NAME_MAX : BW_STORE_KEY_MAX;
	size_t fmin = kind == BW_VAL_INT64 ? 1 : 0;
	redisReply *r;
	redis_op op;
	bw_store_err e;

	memset(es, 0, sizeof(*es));
	redis_glob(match, prefix);
	if ((e = redis_begin(s, &op)) != BW_STORE_OK)
		return e;
	do {
		redisReply *c, *kv;

		if ((e = redis_cmd(s, &op, 7, argv, NULL, what, &r)) != BW_STORE_OK)
			break;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
		    || (c = r->element[0])->type != REDIS_REPLY_STRING || c->len >= sizeof(cursor)
		    || (kv = r->element[1])->type != REDIS_REPLY_ARRAY || kv->elements % 2 != 0) {
			freeReplyObject(r);
			e = redis_unexpected(s, what);
			break;
		}
		memcpy(cursor, c->str, c->len);
		cursor[c->len] = 0;
		for (size_t i = 0; i < kv->elements && e == BW_STORE_OK; i += 2) {
			redisReply *f = kv->element[i], *v = kv->element[i + 1];
			redis_ent ent = { 0 };

			if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING
			    || f->len < fmin || f->len > fmax || memchr(f->str, 0, f->len)
			    || (kind == BW_VAL_INT64 ? !redis_parse_i64(v->str, v->len, &ent.val)
			    : !redis_json_ok(v))) {
				e = redis_unexpected(s, what);
				break;
			}
			if (f->len < plen || memcmp(f->str, prefix, plen) != 0)
				continue;
			if (es->n == es->cap) {
				size_t cap = es->cap ? es->cap * 2 : 64;
				redis_ent *nv = realloc(es->v, cap * sizeof(*nv));

				if (nv == NULL) {
					e = bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
					break;
				}
				es->v = nv;
				es->cap = cap;
			}
			if ((ent.key = strndup(f->str, f->len)) == NULL
			    || (kind == BW_VAL_JSON && (ent.sval = strndup(v->str, v->len)) == NULL)) {
				free(ent.key);
				e = bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
				break;
			}
			ent.slen = v->len;
			es->v[es->n++] = ent;
		}
		freeReplyObject(r);
	} while (e == BW_STORE_OK && strcmp(cursor, "0") != 0);
	redis_end(s, &op);
	if (e != BW_STORE_OK) {
		redis_ents_free(es);
		return e;
	}
	/* HSCAN may return a field twice: sort, keep one of each */
	if (es->n > 1)
		qsort(es->v, es->n, sizeof(*es->v), redis_ent_cmp);
	for (size_t i = j = 0; i < es->n; i++) {
		if (j > 0 && strcmp(es->v[j - 1].key, es->v[i].key) == 0) {
			free(es->v[i].key);
			free(es->v[i].sval);
			continue;
		}
		es->v[j++] = es->v[i];
	}
	es->n = j;
	return BW_STORE_OK;
}

static bw_store_err
redis_counter_scan(bw_store *s, const char *prefix, bw_store_scan_fn fn, void *ud)
{
	redis_ents es;
	bw_store_err e;

	if ((e = redis_hash_all(s, REDIS_KEY_COUNTERS, prefix, BW_VAL_INT64, "scan", &es))
	    != BW_STORE_OK)
		return e;
	for (size_t i = 0; i < es.n; i++)
		if (fn(ud, es.v[i].key, es.v[i].val) != 0)
			break;
	redis_ents_free(&es);
	return BW_STORE_OK;
}

/* ---------------------------------------------------------------- records */

/* The hash of a record key and its field (a pointer into key). */
static void
redis_rec_hash(bw_tbl t, const char *key, char hkey[REDIS_HKEY_MAX], const char **field)
{
	size_t slen = strcspn(key, " ");

	snprintf(hkey, REDIS_HKEY_MAX, "bw:%s:{%.*s}", bw_store_tables[t].name, (int)slen, key);
	*field = key + slen;
}

/* The SENDER of a hash name "bw:TABLE:{SENDER}" into out; false when not one. */
static bool
redis_rec_sender(bw_tbl t, const char *name, size_t len, char out[BW_STORE_KEY_MAX + 1])
{
	const char *tn = bw_store_tables[t].name;
	size_t tl = strlen(tn), pl = 3 + tl + 2, sl;

	if (len < pl + 1 || memcmp(name, "bw:", 3) != 0 || memcmp(name + 3, tn, tl) != 0
	    || memcmp(name + 3 + tl, ":{", 2) != 0 || name[len - 1] != '}')
		return false;
	sl = len - pl - 1;
	if (sl > BW_STORE_KEY_MAX || memchr(name + pl, ' ', sl) || memchr(name + pl, 0, sl))
		return false;
	memcpy(out, name + pl, sl);
	out[sl] = 0;
	return true;
}

/* A single command that wants an integer reply, or OK for a status. */
static bw_store_err
redis_one(bw_store *s, int argc, const char **argv, const size_t *lens, const char *what,
    long long *ival)
{
	redisReply *r;
	redis_op op;
	bw_store_err e;

	if ((e = redis_begin(s, &op)) != BW_STORE_OK)
		return e;
	if ((e = redis_cmd(s, &op, argc, argv, lens, what, &r)) == BW_STORE_OK) {
		if (r->type == REDIS_REPLY_INTEGER)
			*ival = r->integer;
		else
			e = redis_unexpected(s, what);
		freeReplyObject(r);
	}
	redis_end(s, &op);
	return e;
}

/*
 * Compare-and-set of one field, in a script so that nothing runs between
 * the read and the write. ARGV: field, has-expect, expect, has-value, value.
 */
static const char redis_cas_lua[] =
    "local c = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if ARGV[2] == '0' then if c then return 0 end\n"
    "elseif c ~= ARGV[3] then return 0 end\n"
    "if ARGV[4] == '1' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])\n"
    "else redis.call('HDEL', KEYS[1], ARGV[1]) end\n"
    "return 1\n";

static bw_store_err
redis_rec_cas(bw_store *s, bw_tbl t, const char *key, const char *expect, const char *val)
{
	char h[REDIS_HKEY_MAX];
	const char *argv[9] = { "EVAL", redis_cas_lua, "1", h, NULL, expect ? "1" : "0",
	    expect ? expect : "", val ? "1" : "0", val ? val : "" };
	long long n = 0;
	bw_store_err e;

	redis_rec_hash(t, key, h, &argv[4]);
	if ((e = redis_one(s, 9, argv, NULL, "write", &n)) != BW_STORE_OK)
		return e;
	if (n != 1)
		return bw_store_fail(s, BW_STORE_CONFLICT, "store: %s record \"%.100s\" changed "
		    "meanwhile", bw_store_tables[t].name, key);
	return BW_STORE_OK;
}

/*
 * GCRA with the server's clock (TIME), in microseconds; the TAT is kept
 * with an expiry once it is in the past. ARGV: interval, burst, n.
 * Returns {1, 0} when admitted, {0, retry ms} when not.
 */
static const char redis_rate_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local iv, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local span = iv * burst\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if tat < now then tat = now end\n"
    "local nxt = tat + iv * n\n"
    "if nxt - now > span then return {0, math.ceil((nxt - now - span) / 1000)} end\n"
    "redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1000)\n"
    "return {1, 0}\n";

static bw_store_err
redis_rate_take(bw_store *s, const char *key, int64_t interval_us, uint32_t burst, unsigned n,
    int *allowed, int64_t *retry_ms)
{
	char k[256], iv[24], b[16], nn[16];
	const char *argv[] = { "EVAL", redis_rate_lua, "1", k, iv, b, nn };
	redisReply *r;
	redis_op op;
	bw_store_err e;
	char *sep;

	/* the sender as the hash tag: a fleet on Redis Cluster keeps a sender's keys together */
	snprintf(k, sizeof(k), "bw:rate:{%s", key);
	if ((sep = strrchr(k, ':')) != NULL && sep > k + 9)
		memmove(sep + 1, sep, strlen(sep) + 1), *sep = '}';
	snprintf(iv, sizeof(iv), "%lld", (long long)interval_us);
	snprintf(b, sizeof(b), "%u", burst);
	snprintf(nn, sizeof(nn), "%u", n);
	if ((e = redis_begin(s, &op)) != BW_STORE_OK)
		return e;
	if ((e = redis_cmd(s, &op, 7, argv, NULL, "rate", &r)) == BW_STORE_OK) {
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 2
		    && r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_INTEGER) {
			*allowed = (int)r->element[0]->integer;
			*retry_ms = r->element[1]->integer;
		} else
			e = redis_unexpected(s, "rate");
		freeReplyObject(r);
	}
	redis_end(s, &op);
	return e;
}

static bw_store_err
redis_rate_reset(bw_store *s, const char *sender)
{
	char k1[256], k2[256];
	const char *argv[] = { "DEL", k1, k2 };
	long long n = 0;

	snprintf(k1, sizeof(k1), "bw:rate:{%s}:m", sender);
	snprintf(k2, sizeof(k2), "bw:rate:{%s}:r", sender);
	return redis_one(s, 3, argv, NULL, "reset", &n);
}

/* Copies a reply to one HGET into *val (NULL when nil). */
static bw_store_err
redis_take_value(bw_store *s, const redisReply *v, char **val)
{
	if (v->type == REDIS_REPLY_NIL)
		return BW_STORE_OK;
	if (!redis_json_ok(v))
		return redis_unexpected(s, "read");
	if ((*val = strndup(v->str, v->len)) == NULL)
		return bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
	return BW_STORE_OK;
}

/*
 * MULTI, HGET per key, EXEC, sent at once; replies: +OK, +QUEUED per key,
 * then the array. One key is a plain HGET.
 */
static bw_store_err
redis_rec_get_many(bw_store *s, const bw_store_key *keys, size_t n, char **vals)
{
	char (*hk)[REDIS_HKEY_MAX] = malloc(n * sizeof(*hk));
	const char *multi[] = { "MULTI" }, *exec[] = { "EXEC" };
	redisReply *r = NULL;
	redis_op op;
	bw_store_err e;

	if (hk == NULL)
		return bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
	if ((e = redis_begin(s, &op)) != BW_STORE_OK) {
		free(hk);
		return e;
	}
	if (n > 1 && redisAppendCommandArgv(op.c, 1, multi, NULL) != REDIS_OK)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		const char *argv[3] = { "HGET", hk[i], NULL };

		redis_rec_hash(keys[i].tbl, keys[i].key, hk[i], &argv[2]);
		if (redisAppendCommandArgv(op.c, 3, argv, NULL) != REDIS_OK)
			goto nomem;
	}
	if (n > 1 && redisAppendCommandArgv(op.c, 1, exec, NULL) != REDIS_OK)
		goto nomem;
	/* n == 1: the value; else +OK, n x +QUEUED, and the values */
	for (size_t i = 0; i < (n > 1 ? n + 2 : 1); i++) {
		if (redisGetReply(op.c, (void **)&r) != REDIS_OK || r == NULL) {
			op.broken = true;
			e = redis_conn_fail(s, op.c, "read");
			goto out;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			/* the rest of the replies are left unread: drop the connection */
			op.broken = true;
			e = redis_reply_fail(s, r, "read");
			goto out;
		}
		if (i + 1 < (n > 1 ? n + 2 : 1)) {
			if (r->type != REDIS_REPLY_STATUS) {
				op.broken = true;
				e = redis_unexpected(s, "read");
				goto out;
			}
			freeReplyObject(r);
			r = NULL;
		}
	}
	if (n == 1) {
		e = redis_take_value(s, r, &vals[0]);
	} else if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
		e = redis_unexpected(s, "read");
	} else {
		for (size_t i = 0; i < n && e == BW_STORE_OK; i++)
			e = r->element[i]->type == REDIS_REPLY_ERROR
			    ? redis_reply_fail(s, r->element[i], "read")
			    : redis_take_value(s, r->element[i], &vals[i]);
	}
	goto out;
nomem:
	op.broken = true;
	e = bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
out:
	if (r != NULL)
		freeReplyObject(r);
	redis_end(s, &op);
	free(hk);
	return e;
}

/* One write is one HSET or HDEL; more are one script (see the header). */
static bw_store_err
redis_rec_write_many(bw_store *s, const bw_store_kv *kv, size_t n)
{
	redis_be *b = s->be;
	const size_t fixed = 3; /* EVAL script numkeys */
	char (*hk)[REDIS_HKEY_MAX] = NULL, (*idx)[24] = NULL, (*cnt)[24] = NULL, nk[24];
	const char **argv = NULL;
	size_t nkeys = 0, argc = fixed, run = 0, at = 0;
	redisReply *r;
	redis_op op;
	bw_store_err e;

	if (n == 1) {
		char h[REDIS_HKEY_MAX];
		const char *argv1[4] = { kv[0].val ? "HSET" : "HDEL", h, NULL, kv[0].val };
		long long dummy;

		redis_rec_hash(kv[0].tbl, kv[0].key, h, &argv1[2]);
		return redis_one(s, kv[0].val ? 4 : 3, argv1, NULL, "write", &dummy);
	}
	if (n > (INT_MAX - fixed) / 6)
		return bw_store_fail(s, BW_STORE_INVALID, "store: too many records at once");
	hk = malloc(n * sizeof(*hk));
	idx = malloc(n * sizeof(*idx));
	cnt = malloc(n * sizeof(*cnt));
	argv = malloc((fixed + 6 * n) * sizeof(*argv));
	if (hk == NULL || idx == NULL || cnt == NULL || argv == NULL) {
		e = bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
		goto out;
	}
	/*
	 * KEYS: the hashes, each once in a row (sorted input names each once);
	 * then the runs: writes of one kind to one hash, in a row.
	 */
	for (size_t i = 0; i < n; i++) {
		const char *field;

		redis_rec_hash(kv[i].tbl, kv[i].key, hk[nkeys], &field);
		if (nkeys == 0 || strcmp(hk[nkeys], hk[nkeys - 1]) != 0) {
			argv[argc++] = hk[nkeys];
			nkeys++;
		}
		snprintf(idx[i], sizeof(idx[i]), "%zu", nkeys);
	}
	for (size_t i = 0; i < n; i++) {
		/* a new run: another hash, another kind, or a full one */
		if (i == 0 || strcmp(idx[i], idx[i - 1]) != 0 || !kv[i].val != !kv[i - 1].val
		    || run == REDIS_RUN_MAX) {
			if (i > 0)
				snprintf(cnt[at], sizeof(cnt[at]), "%zu", run);
			at = i;
			run = 0;
			argv[argc++] = kv[i].val ? "s" : "d";
			argv[argc++] = idx[i];
			argv[argc++] = cnt[i];
		}
		argv[argc++] = kv[i].key + strcspn(kv[i].key, " ");
		if (kv[i].val)
			argv[argc++] = kv[i].val;
		run++;
	}
	snprintf(cnt[at], sizeof(cnt[at]), "%zu", run);
	snprintf(nk, sizeof(nk), "%zu", nkeys);
	argv[0] = "EVAL";
	argv[1] = redis_write_many_lua;
	argv[2] = nk;
	if ((e = redis_begin(s, &op)) != BW_STORE_OK)
		goto out;
	if (n > REDIS_BIG_BATCH) {
		/* the connection is dropped afterwards: it carries the long timeout */
		op.broken = true;
		if (redisSetTimeout(op.c, redis_tv(b->timeout_ms > REDIS_RESTORE_MS ? b->timeout_ms
		    : REDIS_RESTORE_MS)) != REDIS_OK) {
			e = bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
			redis_end(s, &op);
			goto out;
		}
	}
	if ((e = redis_cmd(s, &op, (int)argc, argv, NULL, "write", &r)) == BW_STORE_OK) {
		if (r->type != REDIS_REPLY_INTEGER || r->integer != 1)
			e = redis_unexpected(s, "write");
		freeReplyObject(r);
	}
	redis_end(s, &op);
out:
	free(hk);
	free(idx);
	free(cnt);
	free(argv);
	return e;
}

static bw_store_err
redis_rec_del(bw_store *s, bw_tbl t, const char *key)
{
	char h[REDIS_HKEY_MAX];
	const char *argv[3] = { "HDEL", h, NULL };
	long long n = 0;
	bw_store_err e;

	redis_rec_hash(t, key, h, &argv[2]);
	if ((e = redis_one(s, 3, argv, NULL, "delete", &n)) != BW_STORE_OK)
		return e;
	if (n == 0)
		return bw_store_fail(s, BW_STORE_NOTFOUND, "store: no %s record \"%.100s\"",
		    bw_store_tables[t].name, key);
	return BW_STORE_OK;
}

typedef struct redis_names {
	char **v;
	size_t n, cap;
} redis_names;

static void
redis_names_free(redis_names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	memset(ns, 0, sizeof(*ns));
}

static int
redis_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The senders of table t whose name starts with prefix (which holds no
 * space): SCAN over the hash names, sorted, each once.
 */
static bw_store_err
redis_rec_senders(bw_store *s, bw_tbl t, const char *prefix, const char *what, redis_names *ns)
{
	char cursor[32] = "0", sender[BW_STORE_KEY_MAX + 1];
	char match[2 * BW_STORE_KEY_MAX + 64];
	const char *argv[] = { "SCAN", cursor, "MATCH", match, "COUNT", REDIS_KEYS_COUNT };
	size_t plen = strlen(prefix), j, at;
	redisReply *r;
	redis_op op;
	bw_store_err e;

	memset(ns, 0, sizeof(*ns));
	at = (size_t)snprintf(match, sizeof(match), "bw:%s:{", bw_store_tables[t].name);
	redis_glob(match + at, prefix);
	if ((e = redis_begin(s, &op)) != BW_STORE_OK)
		return e;
	do {
		redisReply *c, *ks;

		if ((e = redis_cmd(s, &op, 6, argv, NULL, what, &r)) != BW_STORE_OK)
			break;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
		    || (c = r->element[0])->type != REDIS_REPLY_STRING || c->len >= sizeof(cursor)
		    || (ks = r->element[1])->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			e = redis_unexpected(s, what);
			break;
		}
		memcpy(cursor, c->str, c->len);
		cursor[c->len] = 0;
		for (size_t i = 0; i < ks->elements && e == BW_STORE_OK; i++) {
			redisReply *k = ks->element[i];

			if (k->type != REDIS_REPLY_STRING
			    || !redis_rec_sender(t, k->str, k->len, sender)) {
				e = redis_unexpected(s, what);
				break;
			}
			if (strncmp(sender, prefix, plen) != 0)
				continue;
			if (ns->n == ns->cap) {
				size_t cap = ns->cap ? ns->cap * 2 : 64;
				char **nv = realloc(ns->v, cap * sizeof(*nv));

				if (nv == NULL) {
					e = bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
					break;
				}
				ns->v = nv;
				ns->cap = cap;
			}
			if ((ns->v[ns->n] = strdup(sender)) == NULL) {
				e = bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
				break;
			}
			ns->n++;
		}
		freeReplyObject(r);
	} while (e == BW_STORE_OK && strcmp(cursor, "0") != 0);
	redis_end(s, &op);
	if (e != BW_STORE_OK) {
		redis_names_free(ns);
		return e;
	}
	/* SCAN may return a name twice */
	if (ns->n > 1)
		qsort(ns->v, ns->n, sizeof(*ns->v), redis_name_cmp);
	for (size_t i = j = 0; i < ns->n; i++) {
		if (j > 0 && strcmp(ns->v[j - 1], ns->v[i]) == 0) {
			free(ns->v[i]);
			continue;
		}
		ns->v[j++] = ns->v[i];
	}
	ns->n = j;
	return BW_STORE_OK;
}

/*
 * Every record of t starting with prefix, in key order: sender by sender,
 * each sender's hash read and sorted before fn sees its records (fn runs
 * with no connection held, so it may read the store). fn returns non-zero
 * to stop; *stopped says so.
 */
typedef int (*redis_walk_fn)(void *ud, const char *key, const redis_ent *ent);

static bw_store_err
redis_rec_walk(bw_store *s, bw_tbl t, const char *prefix, const char *what, redis_walk_fn fn,
    void *ud, bool *stopped)
{
	size_t slen = strcspn(prefix, " ");
	redis_names ns = { 0 };
	bw_store_err e = BW_STORE_OK;
	char key[2 * BW_STORE_KEY_MAX + 2];

	*stopped = false;
	if (prefix[slen] == ' ') {
		/* one sender */
		if ((ns.v = malloc(sizeof(*ns.v))) == NULL
		    || (ns.v[0] = strndup(prefix, slen)) == NULL) {
			free(ns.v);
			return bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
		}
		ns.n = ns.cap = 1;
	} else if ((e = redis_rec_senders(s, t, prefix, what, &ns)) != BW_STORE_OK) {
		return e;
	}
	for (size_t i = 0; i < ns.n && e == BW_STORE_OK && !*stopped; i++) {
		const char *fprefix = prefix[slen] == ' ' ? prefix + slen : "";
		char h[REDIS_HKEY_MAX];
		const char *field;
		size_t sl = strlen(ns.v[i]);
		redis_ents es;

		redis_rec_hash(t, ns.v[i], h, &field);
		if ((e = redis_hash_all(s, h, fprefix, BW_VAL_JSON, what, &es)) != BW_STORE_OK)
			break;
		for (size_t k = 0; k < es.n; k++) {
			size_t fl = strlen(es.v[k].key);

			if ((fl > 0 && es.v[k].key[0] != ' ') || sl + fl == 0
			    || sl + fl > BW_STORE_KEY_MAX) {
				e = redis_unexpected(s, what);
				break;
			}
			memcpy(key, ns.v[i], sl);
			memcpy(key + sl, es.v[k].key, fl + 1);
			if (strncmp(key, prefix, strlen(prefix)) != 0)
				continue;
			if (fn(ud, key, &es.v[k]) != 0) {
				*stopped = true;
				break;
			}
		}
		redis_ents_free(&es);
	}
	redis_names_free(&ns);
	return e;
}

typedef struct redis_scan_ctx {
	bw_store_kv_fn fn;
	void *ud;
} redis_scan_ctx;

static int
redis_scan_one(void *ud, const char *key, const redis_ent *ent)
{
	redis_scan_ctx *c = ud;

	return c->fn(c->ud, key, ent->sval);
}

static bw_store_err
redis_rec_scan(bw_store *s, bw_tbl t, const char *prefix, bw_store_kv_fn fn, void *ud)
{
	redis_scan_ctx c = { fn, ud };
	bool stopped;

	return redis_rec_walk(s, t, prefix, "scan", redis_scan_one, &c, &stopped);
}

/* HLEN of every hash of t, pipelined. */
static bw_store_err
redis_rec_count(bw_store *s, bw_tbl t, uint64_t *n)
{
	redis_names ns;
	redisReply *r;
	redis_op op;
	bw_store_err e;

	if ((e = redis_rec_senders(s, t, "", "count", &ns)) != BW_STORE_OK)
		return e;
	if (ns.n == 0) {
		redis_names_free(&ns);
		return BW_STORE_OK;
	}
	if ((e = redis_begin(s, &op)) != BW_STORE_OK) {
		redis_names_free(&ns);
		return e;
	}
	for (size_t i = 0; i < ns.n; i++) {
		char h[REDIS_HKEY_MAX];
		const char *argv[2] = { "HLEN", h }, *field;

		redis_rec_hash(t, ns.v[i], h, &field);
		if (redisAppendCommandArgv(op.c, 2, argv, NULL) != REDIS_OK) {
			op.broken = true;
			e = bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < ns.n && e == BW_STORE_OK; i++) {
		if (redisGetReply(op.c, (void **)&r) != REDIS_OK || r == NULL) {
			op.broken = true;
			e = redis_conn_fail(s, op.c, "count");
			break;
		}
		if (r->type == REDIS_REPLY_ERROR)
			e = redis_reply_fail(s, r, "count");
		else if (r->type != REDIS_REPLY_INTEGER || r->integer < 0)
			e = redis_unexpected(s, "count");
		else
			*n += (uint64_t)r->integer;
		freeReplyObject(r);
		if (e != BW_STORE_OK)
			op.broken = true; /* replies left unread */
	}
out:
	redis_end(s, &op);
	redis_names_free(&ns);
	if (e != BW_STORE_OK)
		*n = 0;
	return e;
}

/* ---------------------------------------------------------------- dump/restore */

typedef struct redis_dump_ctx {
	bw_tbl t;
	bw_store_rec_fn fn;
	void *ud;
} redis_dump_ctx;

static int
redis_dump_one(void *ud, const char *key, const redis_ent *ent)
{
	redis_dump_ctx *c = ud;
	bw_store_rec r = { .tbl = c->t, .key = key, .sval = ent->sval, .slen = ent->slen };

	return c->fn(c->ud, &r);
}

static bw_store_err
redis_dump(bw_store *s, bw_store_rec_fn fn, void *ud)
{
	for (size_t t = 0; t < BW_TBL__N; t++) {
		redis_ents es;
		bw_store_err e;

		if (bw_store_tables[t].kind == BW_VAL_JSON) {
			redis_dump_ctx c = { (bw_tbl)t, fn, ud };
			bool stopped;

			e = redis_rec_walk(s, (bw_tbl)t, "", "dump", redis_dump_one, &c, &stopped);
			if (e != BW_STORE_OK)
				return e;
			if (stopped)
				return bw_store_fail(s, BW_STORE_IO, "store: dump: cannot write the output");
			continue;
		}
		/* the one table of integers */
		if ((e = redis_hash_all(s, REDIS_KEY_COUNTERS, "", BW_VAL_INT64, "dump", &es))
		    != BW_STORE_OK)
			return e;
		for (size_t i = 0; i < es.n; i++) {
			bw_store_rec r = { .tbl = (bw_tbl)t, .key = es.v[i].key, .ival = es.v[i].val };

			if (fn(ud, &r) != 0) {
				redis_ents_free(&es);
				return bw_store_fail(s, BW_STORE_IO, "store: dump: cannot write the output");
			}
		}
		redis_ents_free(&es);
	}
	return BW_STORE_OK;
}

/*
 * A restore is MULTI, one HSET per record, EXEC, all pipelined on one
 * connection: nothing reaches the server before the commit, and the server
 * applies the whole transaction or, if the connection breaks first, none.
 */
typedef struct redis_restore {
	redis_op op;
	size_t queued;
} redis_restore;

static bw_store_err
redis_restore_begin(bw_store *s, void **txn)
{
	redis_restore *rs = calloc(1, sizeof(*rs));
	const char *argv[] = { "MULTI" };
	bw_store_err e;

	if (rs == NULL)
		return bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
	if ((e = redis_begin(s, &rs->op)) != BW_STORE_OK) {
		free(rs);
		return e;
	}
	if (redisAppendCommandArgv(rs->op.c, 1, argv, NULL) != REDIS_OK) {
		rs->op.broken = true;
		redis_end(s, &rs->op);
		free(rs);
		return bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
	}
	*txn = rs;
	return BW_STORE_OK;
}

static bw_store_err
redis_restore_put(bw_store *s, void *txn, const bw_store_rec *r)
{
	redis_restore *rs = txn;
	char v[24], h[REDIS_HKEY_MAX];
	const char *argv[] = { "HSET", REDIS_KEY_COUNTERS, r->key, v };
	size_t lens[4];

	switch (bw_store_tables[r->tbl].kind) {
	case BW_VAL_INT64:
		snprintf(v, sizeof(v), "%lld", (long long)r->ival);
		break;
	case BW_VAL_JSON:
		redis_rec_hash(r->tbl, r->key, h, &argv[2]);
		argv[1] = h;
		argv[3] = r->sval;
		break;
	}
	for (size_t i = 0; i < 4; i++)
		lens[i] = strlen(argv[i]);
	if (redisAppendCommandArgv(rs->op.c, 4, argv, lens) != REDIS_OK)
		return bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
	rs->queued++;
	return BW_STORE_OK;
}

static bw_store_err
redis_restore_end(bw_store *s, void *txn, int commit)
{
	redis_be *b = s->be;
	redis_restore *rs = txn;
	const char *argv[] = { "EXEC" };
	struct timeval tv = redis_tv(b->timeout_ms > REDIS_RESTORE_MS ? b->timeout_ms
	    : REDIS_RESTORE_MS);
	bw_store_err e = BW_STORE_OK;
	redisReply *r;

	if (!commit) {
		/* nothing was sent: dropping the connection drops the queue */
		rs->op.broken = true;
		redis_end(s, &rs->op);
		free(rs);
		return BW_STORE_OK;
	}
	/* the connection is dropped afterwards: it carries the long timeout */
	rs->op.broken = true;
	if (redisAppendCommandArgv(rs->op.c, 1, argv, NULL) != REDIS_OK
	    || redisSetTimeout(rs->op.c, tv) != REDIS_OK) {
		e = bw_store_fail(s, BW_STORE_NOMEM, "store: out of memory");
		goto out;
	}
	/*
	 * MULTI's +OK and a +QUEUED per record, then EXEC's array. A command
	 * refused while queueing makes EXEC answer EXECABORT and apply nothing,
	 * so on an error the rest is left unread and the connection dropped.
	 */
	for (size_t i = 0; i <= rs->queued && e == BW_STORE_OK; i++) {
		if (redisGetReply(rs->op.c, (void **)&r) != REDIS_OK || r == NULL) {
			e = redis_conn_fail(s, rs->op.c, "restore");
			goto out;
		}
		if (r->type == REDIS_REPLY_ERROR)
			e = redis_reply_fail(s, r, "restore");
		else if (r->type != REDIS_REPLY_STATUS)
			e = redis_unexpected(s, "restore");
		freeReplyObject(r);
	}
	if (e != BW_STORE_OK)
		goto out;
	if (redisGetReply(rs->op.c, (void **)&r) != REDIS_OK || r == NULL) {
		e = redis_conn_fail(s, rs->op.c, "restore");
		goto out;
	}
	if (r->type == REDIS_REPLY_ERROR)
		e = redis_reply_fail(s, r, "restore");
	else if (r->type != REDIS_REPLY_ARRAY || r->elements != rs->queued)
		e = redis_unexpected(s, "restore");
	else
		for (size_t i = 0; i < r->elements && e == BW_STORE_OK; i++)
			if (r->element[i]->type == REDIS_REPLY_ERROR)
				e = redis_reply_fail(s, r->element[i], "restore");
	freeReplyObject(r);
out:
	redis_end(s, &rs->op);
	free(rs);
	return e;
}

const bw_store_ops bw_store_redis_ops = {
	.name = "redis",
	.open = redis_open,
	.close = redis_close,
	.check = redis_check,
	.counter_add = redis_counter_add,
	.counter_get = redis_counter_get,
	.counter_add_many = redis_counter_add_many,
	.counter_del_many = redis_counter_del_many,
	.counter_scan = redis_counter_scan,
	.rec_get_many = redis_rec_get_many,
	.rec_write_many = redis_rec_write_many,
	.rec_del = redis_rec_del,
	.rec_cas = redis_rec_cas,
	.rate_take = redis_rate_take,
	.rate_reset = redis_rate_reset,
	.rec_scan = redis_rec_scan,
	.rec_count = redis_rec_count,
	.dump = redis_dump,
	.restore_begin = redis_restore_begin,
	.restore_put = redis_restore_put,
	.restore_end = redis_restore_end,
};
