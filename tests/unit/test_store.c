/*
 * test_store.c - the store's contract: the same cases run against every
 * backend (LMDB in a fresh directory; Redis, when built with it, against a
 * redis-server this program starts on a unix socket and kills at the end),
 * then each backend's own failures: a damaged LMDB file, permissions, stale
 * readers, a map grown by another process, a store older than the record
 * tables; a dead or hung Redis, a foreign key in the records' namespace.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>

#include <lmdb.h>
#ifdef HAVE_REDIS
#include <hiredis/hiredis.h>
#endif

#include "store.h"

/* ---------------------------------------------------------------- fixture */

typedef struct backend {
	const char *name;
	void (*start)(void);           /* a fresh empty store: sets fx.spec and fx.spec2 */
	void (*stop)(void);
	void (*set_schema)(long long); /* writes a schema version behind the store's back */
	void (*limit_space)(void);     /* the store runs out of space soon */
	const char *full_words;        /* what the "full" error must say */
} backend;

static struct {
	const backend *be;
	char dir[512];
	char store_dir[600];            /* LMDB: the store's directory */
	char spec[PATH_MAX + 64];      /* the store under test */
	char spec2[PATH_MAX + 64];     /* another, independent store of the same kind */
	char sock[PATH_MAX];
	pid_t redis;
	bw_store_opts opts;
} fx;

static const backend backends[];

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
fx_begin(int i)
{
	const char *tmp = getenv("TMPDIR");

	memset(&fx, 0, sizeof(fx));
	fx.be = &backends[i];
	snprintf(fx.dir, sizeof(fx.dir), "%s/bw-store-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
	ck_assert_msg(mkdtemp(fx.dir) != NULL, "mkdtemp: %s", strerror(errno));
	fx.be->start();
}

static void
fx_end(void)
{
	fx.be->stop();
	chmod(fx.dir, 0700);
	nftw(fx.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bw_store *
fx_open_spec(const char *spec)
{
	char err[512] = "";
	bw_store *s = bw_store_open(spec, &fx.opts, err, sizeof(err));

	ck_assert_msg(s != NULL, "open %s: %s", spec, err);
	return s;
}

/* Opening spec fails with want, and says why in err. */
static void
open_fails(const char *spec, const bw_store_opts *o, bw_store_err want, char *err, size_t len)
{
	bw_store *s = NULL;
	bw_store_err e = bw_store_open_status(spec, o, &s, err, len);

	ck_assert_msg(e == want && s == NULL, "open %s: want %s, got %s: %s", spec,
	    bw_store_strerror(want), bw_store_strerror(e), err);
	ck_assert_msg(err[0] != 0, "open %s: no reason given", spec);
}

static bw_store *
fx_open(void)
{
	return fx_open_spec(fx.spec);
}

static void
assert_counter(bw_store *s, const char *name, int64_t want)
{
	int64_t v = -12345;
	bw_store_err e = bw_store_counter_get(s, name, &v);

	ck_assert_msg(e == BW_STORE_OK, "%s: get %s: %s", fx.be->name, name, bw_store_last_error(s));
	ck_assert_msg(v == want, "%s: %s is %lld, want %lld", fx.be->name, name, (long long)v,
	    (long long)want);
}

static void
assert_missing(bw_store *s, const char *name)
{
	int64_t v;
	bw_store_err e = bw_store_counter_get(s, name, &v);

	ck_assert_msg(e == BW_STORE_NOTFOUND, "%s: %s: want NOTFOUND, got %s", fx.be->name, name,
	    bw_store_strerror(e));
}

/* ---- LMDB ---- */

static void
lmdb_start(void)
{
	snprintf(fx.store_dir, sizeof(fx.store_dir), "%s/store", fx.dir);
	snprintf(fx.spec, sizeof(fx.spec), "lmdb:%s", fx.store_dir);
	snprintf(fx.spec2, sizeof(fx.spec2), "lmdb:%s/store2", fx.dir);
}

static void
lmdb_stop(void)
{
}

/* A raw environment on the store's directory (the store must be closed here). */
static MDB_env *
raw_env(size_t mapsize)
{
	MDB_env *env;
	int rc;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 32);
	if (mapsize)
		mdb_env_set_mapsize(env, mapsize);
	rc = mdb_env_open(env, fx.store_dir, 0, 0640);
	ck_assert_msg(rc == 0, "raw open: %s", mdb_strerror(rc));
	return env;
}

static void
lmdb_set_schema(long long v)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	unsigned char buf[8];
	MDB_val k = { 6, "schema" }, d = { 8, buf };

	bw_store_close(fx_open());   /* create it */
	env = raw_env(0);
	for (int i = 7; i >= 0; i--, v >>= 8)
		buf[i] = (unsigned char)v;
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &d, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void
lmdb_limit_space(void)
{
	fx.opts.map_size = 256 * 1024;
}

/* ---- Redis ---- */
#ifdef HAVE_REDIS

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static redisContext *
redis_raw(void)
{
	struct timeval tv = { 2, 0 };
	redisContext *c = redisConnectUnixWithTimeout(fx.sock, tv);

	ck_assert_msg(c != NULL && c->err == 0, "connect %s: %s", fx.sock, c ? c->errstr : "");
	return c;
}

static void
redis_spawn(void)
{
	char log[PATH_MAX + 16];
	pid_t parent = getpid();

	snprintf(log, sizeof(log), "%s/redis.log", fx.dir);
	fx.redis = fork();
	ck_assert_int_ne(fx.redis, -1);
	if (fx.redis == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
		if (getppid() != parent)
			_exit(1);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("redis-server", "redis-server", "--unixsocket", fx.sock, "--unixsocketperm",
		    "700", "--port", "0", "--save", "", "--appendonly", "no", "--dir", fx.dir,
		    "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		struct timeval tv = { 0, 100000 };
		redisContext *c = redisConnectUnixWithTimeout(fx.sock, tv);
		redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
		int up = r != NULL && r->type == REDIS_REPLY_STATUS;

		if (r)
			freeReplyObject(r);
		if (c)
			redisFree(c);
		if (up)
			return;
		usleep(10000);
	}
	ck_abort_msg("redis-server did not come up on %s (see %s)", fx.sock, log);
}

static void
redis_kill(void)
{
	if (fx.redis > 0) {
		kill(fx.redis, SIGCONT);
		kill(fx.redis, SIGKILL);
		waitpid(fx.redis, NULL, 0);
		fx.redis = 0;
		unlink(fx.sock);
	}
}

static void
redis_start(void)
{
	snprintf(fx.sock, sizeof(fx.sock), "%s/redis.sock", fx.dir);
	snprintf(fx.spec, sizeof(fx.spec), "redis:unix:%s", fx.sock);
	snprintf(fx.spec2, sizeof(fx.spec2), "redis:unix:%s/1", fx.sock);
	redis_spawn();
}

static void
redis_set_schema(long long v)
{
	redisContext *c = redis_raw();
	redisReply *r = redisCommand(c, "HSET bw:{meta} schema %lld", v);

	ck_assert(r != NULL && r->type == REDIS_REPLY_INTEGER);
	freeReplyObject(r);
	redisFree(c);
}

static void
redis_limit_space(void)
{
	redisContext *c = redis_raw();
	redisReply *r = redisCommand(c, "INFO memory");
	long long used;
	char *p;

	ck_assert(r != NULL && r->type == REDIS_REPLY_STRING);
	ck_assert((p = strstr(r->str, "used_memory:")) != NULL);
	used = atoll(p + strlen("used_memory:"));
	freeReplyObject(r);
	r = redisCommand(c, "CONFIG SET maxmemory-policy noeviction");
	freeReplyObject(r);
	r = redisCommand(c, "CONFIG SET maxmemory %lld", used + 512 * 1024);
	ck_assert(r != NULL && r->type == REDIS_REPLY_STATUS);
	freeReplyObject(r);
	redisFree(c);
}
#endif

static const backend backends[] = {
	{ "lmdb", lmdb_start, lmdb_stop, lmdb_set_schema, lmdb_limit_space,
	  "map full (MapSize 256K): raise MapSize" },
#ifdef HAVE_REDIS
	{ "redis", redis_start, redis_kill, redis_set_schema, redis_limit_space, "maxmemory" },
#endif
};
#define NBACKENDS ((int)(sizeof(backends) / sizeof(backends[0])))
#define BE_LMDB   0
#define BE_REDIS  1

/* ---- dumps in memory ---- */

typedef struct text {
	char *buf;
	size_t len;
	unsigned lines;
} text;

static int
text_out(void *ud, const char *line, size_t len)
{
	text *t = ud;
	char *nb = realloc(t->buf, t->len + len + 2);

	if (nb == NULL)
		return -1;
	t->buf = nb;
	memcpy(t->buf + t->len, line, len);
	t->len += len;
	t->buf[t->len++] = '\n';
	t->buf[t->len] = 0;
	t->lines++;
	return 0;
}

static text
dump_of(bw_store *s)
{
	text t = { 0 };
	bw_store_err e = bw_store_dump(s, text_out, &t);

	ck_assert_msg(e == BW_STORE_OK, "%s: dump: %s", fx.be->name, bw_store_last_error(s));
	return t;
}

/* Lines of a string for restore; they are handed out without a NUL. */
typedef struct src {
	const char *p;
	int fail_at;   /* report a read error at this line (0: never) */
	int n;
} src;

static int
src_in(void *ud, char **line, size_t *len)
{
	src *s = ud;
	const char *nl;
	size_t n;

	if (*s->p == 0)
		return 0;
	if (++s->n == s->fail_at)
		return -1;
	nl = strchr(s->p, '\n');
	n = nl ? (size_t)(nl - s->p) : strlen(s->p);
	*line = (char *)s->p;
	*len = n;
	s->p += n + (nl != NULL);
	return 1;
}

static bw_store_err
restore_str(bw_store *s, const char *input, char *err, size_t errlen)
{
	src in = { input, 0, 0 };

	return bw_store_restore(s, src_in, &in, err, errlen);
}

/* ---------------------------------------------------------------- contract */

START_TEST(test_counter_add_get)
{
	bw_store *s;
	int64_t nv = 0;

	fx_begin(_i);
	s = fx_open();
	ck_assert_str_eq(bw_store_spec(s), fx.spec);
	assert_missing(s, "messages");
	ck_assert_int_eq(bw_store_counter_add(s, "messages", 5, &nv), BW_STORE_OK);
	ck_assert_int_eq(nv, 5);
	ck_assert_int_eq(bw_store_counter_add(s, "messages", -2, &nv), BW_STORE_OK);
	ck_assert_int_eq(nv, 3);
	ck_assert_int_eq(bw_store_counter_add(s, "messages", 1, NULL), BW_STORE_OK);
	assert_counter(s, "messages", 4);
	ck_assert_int_eq(bw_store_counter_add(s, "zero", 0, &nv), BW_STORE_OK);
	assert_counter(s, "zero", 0);
	ck_assert_int_eq(bw_store_counter_add(s, "big", INT64_MAX, &nv), BW_STORE_OK);
	ck_assert(nv == INT64_MAX);
	/* overflow is refused and leaves the value */
	ck_assert_int_eq(bw_store_counter_add(s, "big", 1, &nv), BW_STORE_INVALID);
	assert_counter(s, "big", INT64_MAX);
	ck_assert_int_eq(bw_store_counter_add(s, "neg", INT64_MIN, &nv), BW_STORE_INVALID);
	assert_missing(s, "neg");
	ck_assert_int_eq(bw_store_counter_add(s, "neg", INT64_MIN + 1, &nv), BW_STORE_OK);
	assert_counter(s, "neg", INT64_MIN + 1);
	ck_assert_int_eq(bw_store_check(s, NULL), BW_STORE_OK);
	bw_store_close(s);
	/* and it is all still there after a reopen */
	s = fx_open();
	assert_counter(s, "messages", 4);
	bw_store_close(s);
	fx_end();
}
END_TEST

static const struct {
	const char *what;
	const char *name;
	bw_store_err want;
} name_rows[] = {
	{ "plain", "refused:unsubscribe", BW_STORE_OK },
	{ "UTF-8", "caf\xc3\xa9:\xe2\x82\xac", BW_STORE_OK },
	{ "space and glob characters", "a *?[]\\ b", BW_STORE_OK },
	{ "empty", "", BW_STORE_INVALID },
	{ "newline", "a\nb", BW_STORE_INVALID },
	{ "DEL", "a\x7f", BW_STORE_INVALID },
	{ "bare continuation byte", "a\x80", BW_STORE_INVALID },
	{ "overlong encoding", "\xc0\xaf", BW_STORE_INVALID },
	{ "surrogate", "\xed\xa0\x80", BW_STORE_INVALID },
	{ "past U+10FFFF", "\xf4\x90\x80\x80", BW_STORE_INVALID },
	{ "truncated sequence", "caf\xc3", BW_STORE_INVALID },
};

START_TEST(test_counter_names)
{
	char longest[256], toolong[257];
	bw_store *s;
	int64_t v;

	fx_begin(_i);
	s = fx_open();
	for (size_t i = 0; i < sizeof(name_rows) / sizeof(name_rows[0]); i++) {
		bw_store_err e = bw_store_counter_add(s, name_rows[i].name, 1, NULL);

		ck_assert_msg(e == name_rows[i].want, "%s: %s: got %s", fx.be->name, name_rows[i].what,
		    bw_store_strerror(e));
		if (e == BW_STORE_OK) {
			assert_counter(s, name_rows[i].name, 1);
		} else {
			ck_assert_msg(strstr(bw_store_last_error(s), "counter") != NULL, "%s: %s",
			    name_rows[i].what, bw_store_last_error(s));
			ck_assert_int_eq(bw_store_counter_get(s, name_rows[i].name, &v), BW_STORE_INVALID);
		}
	}
	memset(longest, 'a', 255);
	longest[255] = 0;
	memset(toolong, 'b', 256);
	toolong[256] = 0;
	ck_assert_int_eq(bw_store_counter_add(s, longest, 1, NULL), BW_STORE_OK);
	assert_counter(s, longest, 1);
	ck_assert_int_eq(bw_store_counter_add(s, toolong, 1, NULL), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_counter_add(s, NULL, 1, NULL), BW_STORE_INVALID);
	bw_store_close(s);
	fx_end();
}
END_TEST

typedef struct seen {
	char names[400][64];
	int64_t vals[400];
	int n;
	int stop_after;
} seen;

static int
collect(void *ud, const char *name, int64_t val)
{
	seen *c = ud;

	ck_assert_int_lt(c->n, 400);
	snprintf(c->names[c->n], sizeof(c->names[0]), "%s", name);
	c->vals[c->n++] = val;
	return c->stop_after && c->n == c->stop_after;
}

START_TEST(test_counter_scan)
{
	static const char *const names[] = { "refused:unsubscribe", "accepted", "refused:consent",
		"refusedx", "messages", "refused:", "a*b1", "axb2", "refuse" };
	static const char *const want_refused[] = { "refused:", "refused:consent",
		"refused:unsubscribe" };
	seen *c = calloc(1, sizeof(*c));
	bw_store *s;

	fx_begin(_i);
	s = fx_open();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ck_assert_int_eq(bw_store_counter_add(s, names[i], (int64_t)i + 1, NULL), BW_STORE_OK);

	ck_assert_int_eq(bw_store_counter_scan(s, "refused:", collect, c), BW_STORE_OK);
	ck_assert_int_eq(c->n, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_str_eq(c->names[i], want_refused[i]);
	ck_assert_int_eq(c->vals[1], 3);

	/* glob characters in a prefix are plain characters */
	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(bw_store_counter_scan(s, "a*b", collect, c), BW_STORE_OK);
	ck_assert_int_eq(c->n, 1);
	ck_assert_str_eq(c->names[0], "a*b1");

	/* everything, in byte order */
	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(bw_store_counter_scan(s, "", collect, c), BW_STORE_OK);
	ck_assert_int_eq(c->n, 9);
	for (int i = 1; i < c->n; i++)
		ck_assert_msg(strcmp(c->names[i - 1], c->names[i]) < 0, "%s before %s",
		    c->names[i - 1], c->names[i]);

	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(bw_store_counter_scan(s, "nothing", collect, c), BW_STORE_OK);
	ck_assert_int_eq(c->n, 0);

	/* more than one batch, and a callback that stops */
	{
		static char mnames[300][24];
		bw_counter_delta md[300];

		for (int i = 0; i < 300; i++) {
			snprintf(mnames[i], sizeof(mnames[i]), "many:%03d", i);
			md[i].name = mnames[i];
			md[i].delta = i;
		}
		ck_assert_int_eq(bw_store_counter_add_many(s, md, 300), BW_STORE_OK);
	}
	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(bw_store_counter_scan(s, "many:", collect, c), BW_STORE_OK);
	ck_assert_int_eq(c->n, 300);
	for (int i = 0; i < 300; i++) {
		char name[32];

		snprintf(name, sizeof(name), "many:%03d", i);
		ck_assert_str_eq(c->names[i], name);
		ck_assert_int_eq(c->vals[i], i);
	}
	memset(c, 0, sizeof(*c));
	c->stop_after = 130;
	ck_assert_int_eq(bw_store_counter_scan(s, "many:", collect, c), BW_STORE_OK);
	ck_assert_int_eq(c->n, 130);
	bw_store_close(s);
	free(c);
	fx_end();
}
END_TEST

START_TEST(test_counter_del_many)
{
	const char *const gone[] = { "delivered:a:1", "never-was", "delivered:a:2" };
	const char *const bad[] = { "delivered:a:3", "a\nb" };
	bw_store *s;

	fx_begin(_i);
	s = fx_open();
	for (int i = 1; i <= 3; i++) {
		char name[32];
		snprintf(name, sizeof(name), "delivered:a:%d", i);
		ck_assert_int_eq(bw_store_counter_add(s, name, i, NULL), BW_STORE_OK);
	}
	/* absent names are no error; the others go, the rest stay */
	ck_assert_int_eq(bw_store_counter_del_many(s, gone, 3), BW_STORE_OK);
	assert_missing(s, "delivered:a:1");
	assert_missing(s, "delivered:a:2");
	assert_counter(s, "delivered:a:3", 3);
	ck_assert_int_eq(bw_store_counter_del_many(s, NULL, 0), BW_STORE_OK);
	/* a bad name: nothing is tried */
	ck_assert_int_eq(bw_store_counter_del_many(s, bad, 2), BW_STORE_INVALID);
	assert_counter(s, "delivered:a:3", 3);
	bw_store_close(s);
	fx_end();
}
END_TEST

START_TEST(test_counter_add_many)
{
	bw_counter_delta d[] = { { "accepted", 3 }, { "refused:consent", 2 }, { "accepted", 4 } };
	bw_counter_delta over[] = { { "accepted", 1 }, { "fresh", 5 }, { "big", 2 } };
	bw_counter_delta bad[] = { { "accepted", 1 }, { "a\nb", 1 } };
	bw_counter_delta minval[] = { { "accepted", 1 }, { "x", INT64_MIN } };
	bw_store *s;

	fx_begin(_i);
	s = fx_open();
	ck_assert_int_eq(bw_store_counter_add_many(s, d, 3), BW_STORE_OK);
	assert_counter(s, "accepted", 7);
	assert_counter(s, "refused:consent", 2);
	ck_assert_int_eq(bw_store_counter_add_many(s, NULL, 0), BW_STORE_OK);

	/* one add that cannot be done undoes the whole batch */
	ck_assert_int_eq(bw_store_counter_add(s, "big", INT64_MAX - 1, NULL), BW_STORE_OK);
	ck_assert_int_eq(bw_store_counter_add_many(s, over, 3), BW_STORE_INVALID);
	assert_counter(s, "accepted", 7);
	assert_missing(s, "fresh");
	assert_counter(s, "big", INT64_MAX - 1);
	/* so does a bad name or delta, before anything is tried */
	ck_assert_int_eq(bw_store_counter_add_many(s, bad, 2), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_counter_add_many(s, minval, 2), BW_STORE_INVALID);
	assert_counter(s, "accepted", 7);
	bw_store_close(s);
	fx_end();
}
END_TEST

#define CONC_THREADS 8
#define CONC_ADDS    100  /* each a commit, and LMDB commits wait for the disk */
#define CONC_MANY    20

typedef struct conc {
	bw_store *s;
	int64_t got[CONC_ADDS];
	int errors;
} conc;

static void *
conc_run(void *arg)
{
	conc *c = arg;
	bw_counter_delta d[] = { { "pair:a", 1 }, { "pair:b", 2 } };

	for (int i = 0; i < CONC_ADDS; i++) {
		if (bw_store_counter_add(c->s, "hits", 1, &c->got[i]) != BW_STORE_OK)
			c->errors++;
		if (i < CONC_MANY && bw_store_counter_add_many(c->s, d, 2) != BW_STORE_OK)
			c->errors++;
	}
	return NULL;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

START_TEST(test_counter_concurrent)
{
	pthread_t t[CONC_THREADS];
	conc *c = calloc(CONC_THREADS, sizeof(*c));
	int64_t *all = calloc(CONC_THREADS * CONC_ADDS, sizeof(*all));
	bw_store *s;

	fx_begin(_i);
	s = fx_open();
	for (int i = 0; i < CONC_THREADS; i++) {
		c[i].s = s;
		ck_assert_int_eq(pthread_create(&t[i], NULL, conc_run, &c[i]), 0);
	}
	for (int i = 0; i < CONC_THREADS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(c[i].errors == 0, "%s: thread %d: %d errors", fx.be->name, i,
		    c[i].errors);
		memcpy(all + i * CONC_ADDS, c[i].got, sizeof(c[i].got));
	}
	assert_counter(s, "hits", CONC_THREADS * CONC_ADDS);
	assert_counter(s, "pair:a", CONC_THREADS * CONC_MANY);
	assert_counter(s, "pair:b", 2 * CONC_THREADS * CONC_MANY);
	/* every add saw its own value: 1, 2, ... n, each once */
	qsort(all, CONC_THREADS * CONC_ADDS, sizeof(*all), cmp_i64);
	for (int i = 0; i < CONC_THREADS * CONC_ADDS; i++)
		ck_assert_msg(all[i] == i + 1, "%s: value %d is %lld", fx.be->name, i,
		    (long long)all[i]);
	bw_store_close(s);
	free(c);
	free(all);
	fx_end();
}
END_TEST

static void
populate(bw_store *s)
{
	static const bw_counter_delta d[] = {
		{ "messages", 12 }, { "accepted", 9 }, { "refused:unsubscribe", 3 },
		{ "caf\xc3\xa9 \"quoted\" \\ back", -7 }, { "max", INT64_MAX }, { "min", INT64_MIN + 1 },
	};

	ck_assert_int_eq(bw_store_counter_add_many(s, d, sizeof(d) / sizeof(d[0])), BW_STORE_OK);
}

START_TEST(test_dump_restore_roundtrip)
{
	bw_store *s, *s2;
	text a, b;
	char err[512] = "x";

	fx_begin(_i);
	s = fx_open();
	populate(s);
	a = dump_of(s);
	ck_assert_int_eq(a.lines, 7);
	ck_assert_msg(strncmp(a.buf, "{\"table\":\"meta\",\"key\":\"schema\",\"value\":1}\n", 42) == 0,
	    "%s", a.buf);
	ck_assert_msg(strstr(a.buf, "{\"table\":\"counters\",\"key\":\"messages\",\"value\":12}\n"),
	    "%s", a.buf);
	ck_assert_msg(strstr(a.buf, "\"value\":9223372036854775807}"), "%s", a.buf);

	s2 = fx_open_spec(fx.spec2);
	ck_assert_int_eq(restore_str(s2, a.buf, err, sizeof(err)), BW_STORE_OK);
	ck_assert_str_eq(err, "");
	b = dump_of(s2);
	ck_assert_str_eq(a.buf, b.buf);
	assert_counter(s2, "caf\xc3\xa9 \"quoted\" \\ back", -7);
	bw_store_close(s);
	bw_store_close(s2);
	free(a.buf);
	free(b.buf);
	fx_end();
}
END_TEST

#define GOOD1 "{\"table\":\"counters\",\"key\":\"r1\",\"value\":1}"
#define GOOD2 "{\"table\":\"counters\",\"key\":\"kept\",\"value\":100}"

static const struct {
	const char *what;
	const char *line;
	const char *says;
} bad_rows[] = {
	{ "not JSON", "{\"table\":", "not JSON" },
	{ "trailing garbage", GOOD1 " x", "not JSON" },
	{ "an array", "[1,2,3]", "not a JSON object" },
	{ "no value", "{\"table\":\"counters\",\"key\":\"x\"}", "want exactly" },
	{ "an extra member", "{\"table\":\"counters\",\"key\":\"x\",\"value\":1,\"at\":2}",
	  "want exactly" },
	{ "a duplicate member", "{\"table\":\"counters\",\"table\":\"counters\",\"value\":1}",
	  "not JSON" },
	{ "an unknown table", "{\"table\":\"nope\",\"key\":\"x\",\"value\":1}",
	  "unknown table \"nope\"" },
	{ "a number table", "{\"table\":1,\"key\":\"x\",\"value\":1}", "must be strings" },
	{ "a string value", "{\"table\":\"counters\",\"key\":\"x\",\"value\":\"12\"}",
	  "must be an integer" },
	{ "a real value", "{\"table\":\"counters\",\"key\":\"x\",\"value\":1.5}",
	  "must be an integer" },
	{ "a value past int64", "{\"table\":\"counters\",\"key\":\"x\",\"value\":99999999999999999999}",
	  "not JSON" },
	{ "an empty key", "{\"table\":\"counters\",\"key\":\"\",\"value\":1}", "empty name" },
	{ "a NUL in the key", "{\"table\":\"counters\",\"key\":\"a\\u0000b\",\"value\":1}",
	  "not JSON" },
	{ "a control character", "{\"table\":\"counters\",\"key\":\"a\\u0001b\",\"value\":1}",
	  "control character" },
	{ "a newer schema", "{\"table\":\"meta\",\"key\":\"schema\",\"value\":2}", "dump schema 2" },
	{ "an unknown meta key", "{\"table\":\"meta\",\"key\":\"colour\",\"value\":2}",
	  "unknown meta key" },
};

START_TEST(test_restore_bad_line)
{
	char err[512], input[1024], *huge;
	bw_store *s;

	fx_begin(_i);
	s = fx_open();
	ck_assert_int_eq(bw_store_counter_add(s, "kept", 7, NULL), BW_STORE_OK);
	for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
		bw_store_err e;

		snprintf(input, sizeof(input), "%s\n%s\n%s\n%s\n", GOOD1, GOOD2, bad_rows[i].line, GOOD1);
		err[0] = 0;
		e = restore_str(s, input, err, sizeof(err));
		ck_assert_msg(e == BW_STORE_INVALID, "%s: %s: got %s", fx.be->name, bad_rows[i].what,
		    bw_store_strerror(e));
		ck_assert_msg(strncmp(err, "line 3: ", 8) == 0 && strstr(err, bad_rows[i].says),
		    "%s: %s: err \"%s\"", fx.be->name, bad_rows[i].what, err);
		/* nothing written */
		assert_missing(s, "r1");
		assert_counter(s, "kept", 7);
	}
	/* an overlong line */
	huge = malloc(70000 + 64);
	memset(huge, ' ', 70000);
	strcpy(huge + 70000, "\n");
	snprintf(input, sizeof(input), "%s\n", GOOD1);
	{
		size_t n = strlen(input);
		char *all = malloc(n + 70002);

		memcpy(all, input, n);
		memcpy(all + n, huge, 70002);
		ck_assert_int_eq(restore_str(s, all, err, sizeof(err)), BW_STORE_INVALID);
		ck_assert_msg(strstr(err, "line 2: longer than"), "%s", err);
		free(all);
	}
	free(huge);
	/* a read error */
	{
		src in = { GOOD1 "\n" GOOD1 "\n" GOOD1 "\n", 2, 0 };

		ck_assert_int_eq(bw_store_restore(s, src_in, &in, err, sizeof(err)), BW_STORE_IO);
		ck_assert_msg(strstr(err, "line 2: cannot read"), "%s", err);
	}
	assert_missing(s, "r1");
	assert_counter(s, "kept", 7);
	bw_store_close(s);
	fx_end();
}
END_TEST

START_TEST(test_restore_merges)
{
	char err[512];
	bw_store *s;

	fx_begin(_i);
	s = fx_open();
	ck_assert_int_eq(bw_store_counter_add(s, "kept", 7, NULL), BW_STORE_OK);
	ck_assert_int_eq(bw_store_counter_add(s, "other", 3, NULL), BW_STORE_OK);
	/* blank lines are skipped; records replace; the rest stays */
	ck_assert_int_eq(restore_str(s, GOOD1 "\n\n   \r\n" GOOD2 "\r\n", err, sizeof(err)),
	    BW_STORE_OK);
	assert_counter(s, "r1", 1);
	assert_counter(s, "kept", 100);
	assert_counter(s, "other", 3);
	ck_assert_int_eq(restore_str(s, "", err, sizeof(err)), BW_STORE_OK);
	bw_store_close(s);
	fx_end();
}
END_TEST

START_TEST(test_readonly)
{
	bw_store_opts ro = { .readonly = 1 };
	char err[512];
	bw_store *s;
	seen *c = calloc(1, sizeof(*c));
	text t;

	fx_begin(_i);
	s = fx_open();
	populate(s);
	bw_store_close(s);
	s = bw_store_open(fx.spec, &ro, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	assert_counter(s, "messages", 12);
	ck_assert_int_eq(bw_store_counter_scan(s, "", collect, c), BW_STORE_OK);
	ck_assert_int_eq(c->n, 6);
	t = dump_of(s);
	ck_assert_int_eq(t.lines, 7);
	ck_assert_int_eq(bw_store_counter_add(s, "messages", 1, NULL), BW_STORE_INVALID);
	ck_assert_msg(strstr(bw_store_last_error(s), "read-only"), "%s", bw_store_last_error(s));
	ck_assert_int_eq(restore_str(s, GOOD1, err, sizeof(err)), BW_STORE_INVALID);
	assert_counter(s, "messages", 12);
	bw_store_close(s);
	free(t.buf);
	free(c);
	fx_end();
}
END_TEST

START_TEST(test_survives_kill9)
{
	int status;
	pid_t pid;
	bw_store *s;

	fx_begin(_i);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		char err[512];
		bw_store *cs = bw_store_open(fx.spec, &fx.opts, err, sizeof(err));

		if (cs == NULL || bw_store_counter_add(cs, "survivor", 42, NULL) != BW_STORE_OK)
			_exit(1);
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %#x", status);
	s = fx_open();
	assert_counter(s, "survivor", 42);
	bw_store_close(s);
	fx_end();
}
END_TEST

START_TEST(test_schema_newer)
{
	char err[512] = "";

	fx_begin(_i);
	fx.be->set_schema(99);
	open_fails(fx.spec, &fx.opts, BW_STORE_CORRUPT, err, sizeof(err));
	ck_assert_msg(strstr(err, "schema 99 is newer"), "%s", err);
	fx_end();
}
END_TEST

START_TEST(test_full)
{
	bw_store_err e = BW_STORE_OK;
	char names[50][32];
	bw_counter_delta d[50];
	bw_store *s;
	int batch;

	fx_begin(_i);
	fx.be->limit_space();
	s = fx_open();
	for (batch = 0; batch < 5000 && e == BW_STORE_OK; batch++) {
		for (int j = 0; j < 50; j++) {
			snprintf(names[j], sizeof(names[j]), "fill:%05d:%02d", batch, j);
			d[j].name = names[j];
			d[j].delta = batch;
		}
		e = bw_store_counter_add_many(s, d, 50);
	}
	ck_assert_msg(e == BW_STORE_FULL, "%s: after %d batches: %s: %s", fx.be->name, batch,
	    bw_store_strerror(e), bw_store_last_error(s));
	ck_assert_msg(batch > 1, "%s: full at once", fx.be->name);
	ck_assert_msg(strstr(bw_store_last_error(s), fx.be->full_words), "%s: \"%s\"", fx.be->name,
	    bw_store_last_error(s));
	/* the failed batch left nothing; what is there still reads */
	assert_missing(s, names[0]);
	assert_counter(s, "fill:00000:00", 0);
	assert_counter(s, "fill:00001:49", 1);
	bw_store_close(s);
	fx_end();
}
END_TEST

typedef struct errthread {
	bw_store *s;
	char before[512], after[512];
} errthread;

static void *
err_run(void *arg)
{
	errthread *t = arg;

	snprintf(t->before, sizeof(t->before), "%s", bw_store_last_error(t->s));
	bw_store_counter_add(t->s, "", 1, NULL);
	snprintf(t->after, sizeof(t->after), "%s", bw_store_last_error(t->s));
	return NULL;
}

START_TEST(test_error_per_thread)
{
	errthread t = { 0 };
	pthread_t tid;
	bw_store *s, *s2;
	int64_t v;

	fx_begin(_i);
	s = fx_open();
	s2 = fx_open_spec(fx.spec2);
	ck_assert_int_eq(bw_store_counter_get(s, "missing", &v), BW_STORE_NOTFOUND);
	ck_assert_msg(strstr(bw_store_last_error(s), "missing"), "%s", bw_store_last_error(s));
	ck_assert_str_eq(bw_store_last_error(s2), "");   /* another handle */
	t.s = s;
	pthread_create(&tid, NULL, err_run, &t);
	pthread_join(tid, NULL);
	ck_assert_str_eq(t.before, "");                  /* another thread */
	ck_assert_msg(strstr(t.after, "empty name"), "%s", t.after);
	ck_assert_msg(strstr(bw_store_last_error(s), "missing"), "%s", bw_store_last_error(s));
	bw_store_close(s);
	bw_store_close(s2);
	fx_end();
}
END_TEST

/* ---------------------------------------------------------------- records */

#define V1 "{\"method\":\"double-opt-in\",\"granted_at\":\"2024-05-01T12:00:00Z\"}"
#define V2 "{\"reason\":\"unsubscribe\",\"at\":\"2025-01-02T03:04:05Z\",\"source\":\"one-click\"}"
#define V3 "{\"method\":\"import\",\"note\":\"caf\xc3\xa9 \\\"q\\\" \\\\ \\u0001\",\"n\":[1,2.5,{\"x\":null}]}"

static void
assert_rec(bw_store *s, bw_tbl t, const char *key, const char *want)
{
	char *v = NULL;
	bw_store_err e = bw_store_get(s, t, key, &v);

	ck_assert_msg(e == BW_STORE_OK, "%s: get %s \"%s\": %s: %s", fx.be->name,
	    bw_store_table_name(t), key, bw_store_strerror(e), bw_store_last_error(s));
	ck_assert_msg(v != NULL && strcmp(v, want) == 0, "%s: %s \"%s\" is %s, want %s",
	    fx.be->name, bw_store_table_name(t), key, v ? v : "NULL", want);
	free(v);
}

static void
assert_norec(bw_store *s, bw_tbl t, const char *key)
{
	char *v = (char *)"junk";
	bw_store_err e = bw_store_get(s, t, key, &v);

	ck_assert_msg(e == BW_STORE_NOTFOUND && v == NULL, "%s: %s \"%s\": want NOTFOUND, got "
	    "%s (%s)", fx.be->name, bw_store_table_name(t), key, bw_store_strerror(e),
	    e == BW_STORE_OK ? v : bw_store_last_error(s));
}

static uint64_t
count_of(bw_store *s, bw_tbl t)
{
	uint64_t n = 12345;
	bw_store_err e = bw_store_count(s, t, &n);

	ck_assert_msg(e == BW_STORE_OK, "%s: count %s: %s", fx.be->name, bw_store_table_name(t),
	    bw_store_last_error(s));
	return n;
}

/* What a record scan saw. */
typedef struct got {
	char **keys, **vals;
	int n, cap;
	int stop_after;       /* stop after this many (0: never) */
	bw_store *s;          /* when set: each callback reads read_key from s */
	const char *read_key;
	const char *read_want;
	int read_bad;
} got;

static int
got_rec(void *ud, const char *key, const char *val)
{
	got *g = ud;

	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 64;
		g->keys = realloc(g->keys, (size_t)g->cap * sizeof(*g->keys));
		g->vals = realloc(g->vals, (size_t)g->cap * sizeof(*g->vals));
		ck_assert(g->keys != NULL && g->vals != NULL);
	}
	g->keys[g->n] = strdup(key);
	g->vals[g->n] = strdup(val);
	g->n++;
	if (g->s != NULL) {
		char *v = NULL;

		if (bw_store_get(g->s, BW_TBL_SUPPRESS, g->read_key, &v) != BW_STORE_OK
		    || strcmp(v, g->read_want) != 0)
			g->read_bad++;
		free(v);
	}
	return g->stop_after && g->n == g->stop_after;
}

static void
got_free(got *g)
{
	for (int i = 0; i < g->n; i++) {
		free(g->keys[i]);
		free(g->vals[i]);
	}
	free(g->keys);
	free(g->vals);
	memset(g, 0, sizeof(*g));
}

static got
scan_of(bw_store *s, bw_tbl t, const char *prefix)
{
	got g = { 0 };
	bw_store_err e = bw_store_scan(s, t, prefix, got_rec, &g);

	ck_assert_msg(e == BW_STORE_OK, "%s: scan %s \"%s\": %s", fx.be->name,
	    bw_store_table_name(t), prefix, bw_store_last_error(s));
	return g;
}

/* n records of table t, keys PREFIX%07zu from "from" on (so in key order),
 * values ~150-byte JSON objects that name their number. */
typedef struct bulk {
	bw_store_kv *kv;
	char *mem;
	size_t n;
} bulk;

#define BULK_KEY 64
#define BULK_VAL 192

static bulk
bulk_make(bw_tbl t, const char *prefix, size_t n, size_t from)
{
	bulk b = { calloc(n, sizeof(bw_store_kv)), malloc(n * (BULK_KEY + BULK_VAL)), n };

	ck_assert(b.kv != NULL && b.mem != NULL);
	for (size_t i = 0; i < n; i++) {
		char *k = b.mem + i * (BULK_KEY + BULK_VAL), *v = k + BULK_KEY;

		snprintf(k, BULK_KEY, "%s%07zu", prefix, from + i);
		snprintf(v, BULK_VAL, "{\"granted_at\":\"2024-05-01T12:00:00Z\",\"method\":"
		    "\"double-opt-in\",\"source\":\"https://example.com/signup/form\","
		    "\"source_ip\":\"192.0.2.1\",\"n\":%zu}", from + i);
		b.kv[i].tbl = t;
		b.kv[i].key = k;
		b.kv[i].val = v;
	}
	return b;
}

static void
bulk_free(bulk *b)
{
	free(b->kv);
	free(b->mem);
}

START_TEST(test_rec_put_get_del)
{
	char *v = (char *)"junk";
	bw_store *s;

	fx_begin(_i);
	s = fx_open();
	ck_assert_str_eq(bw_store_table_name(BW_TBL_COUNTERS), "counters");
	ck_assert_str_eq(bw_store_table_name(BW_TBL_CONSENT), "consent");
	ck_assert_str_eq(bw_store_table_name(BW_TBL_SUPPRESS), "suppress");
	ck_assert_str_eq(bw_store_table_name(BW_TBL__N), "unknown");

	ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, "acme bob@example.com", &v),
	    BW_STORE_NOTFOUND);
	ck_assert_ptr_null(v);
	ck_assert_msg(strstr(bw_store_last_error(s), "bob@example.com"), "%s",
	    bw_store_last_error(s));
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme bob@example.com", V1), BW_STORE_OK);
	assert_rec(s, BW_TBL_CONSENT, "acme bob@example.com", V1);
	/* the tables are apart */
	assert_norec(s, BW_TBL_SUPPRESS, "acme bob@example.com");
	ck_assert_int_eq(bw_store_put(s, BW_TBL_SUPPRESS, "acme bob@example.com", V2), BW_STORE_OK);
	assert_rec(s, BW_TBL_SUPPRESS, "acme bob@example.com", V2);
	assert_rec(s, BW_TBL_CONSENT, "acme bob@example.com", V1);
	/* replace */
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme bob@example.com", V3), BW_STORE_OK);
	assert_rec(s, BW_TBL_CONSENT, "acme bob@example.com", V3);
	/* keys without a space, with several, UTF-8 */
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "nospace", "{}"), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme a b  c", V1), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme", V2), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme ", V3), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, " lead", V1), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_SUPPRESS, "* j\xc3\xbcrgen@b\xc3\xbc" "cher.de", V2),
	    BW_STORE_OK);
	assert_rec(s, BW_TBL_CONSENT, "nospace", "{}");
	assert_rec(s, BW_TBL_CONSENT, "acme a b  c", V1);
	assert_rec(s, BW_TBL_CONSENT, "acme", V2);
	assert_rec(s, BW_TBL_CONSENT, "acme ", V3);
	assert_rec(s, BW_TBL_CONSENT, " lead", V1);
	assert_rec(s, BW_TBL_SUPPRESS, "* j\xc3\xbcrgen@b\xc3\xbc" "cher.de", V2);
	assert_norec(s, BW_TBL_CONSENT, "acme a b");
	assert_norec(s, BW_TBL_CONSENT, "acme  ");
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), 6);
	ck_assert_uint_eq(count_of(s, BW_TBL_SUPPRESS), 2);
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), 6);

	/* delete */
	ck_assert_int_eq(bw_store_del(s, BW_TBL_CONSENT, "acme bob@example.com"), BW_STORE_OK);
	assert_norec(s, BW_TBL_CONSENT, "acme bob@example.com");
	assert_rec(s, BW_TBL_SUPPRESS, "acme bob@example.com", V2);
	ck_assert_int_eq(bw_store_del(s, BW_TBL_CONSENT, "acme bob@example.com"), BW_STORE_NOTFOUND);
	ck_assert_int_eq(bw_store_del(s, BW_TBL_SUPPRESS, "nobody here"), BW_STORE_NOTFOUND);
	ck_assert_int_eq(bw_store_del(s, BW_TBL_CONSENT, "acme"), BW_STORE_OK);
	assert_rec(s, BW_TBL_CONSENT, "acme ", V3);
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), 4);
	bw_store_close(s);
	/* and it is all still there after a reopen */
	s = fx_open();
	assert_rec(s, BW_TBL_CONSENT, "acme ", V3);
	assert_rec(s, BW_TBL_SUPPRESS, "acme bob@example.com", V2);
	assert_norec(s, BW_TBL_CONSENT, "acme bob@example.com");
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), 4);
	bw_store_close(s);
	fx_end();
}
END_TEST

/* shared rate limiters: Redis keeps them (its clock), LMDB does not */
START_TEST(test_rate_shared)
{
	bw_store *s;
	int allowed = -1;
	int64_t retry = -1;

	fx_begin(_i);
	s = fx_open();
	if (_i == BE_LMDB) {
		ck_assert_int_eq(bw_store_rate_take(s, "acme:m", 1000000, 3, 1, &allowed, &retry),
		    BW_STORE_INVALID);
		ck_assert_int_eq(allowed, 1);
		ck_assert_int_eq(bw_store_rate_reset(s, "acme"), BW_STORE_OK);
		bw_store_close(s);
		fx_end();
		return;
	}
	/* one an hour, three at once: three pass, the fourth waits about an hour */
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(bw_store_rate_take(s, "acme:m", 3600000000LL, 3, 1, &allowed, &retry),
		    BW_STORE_OK);
		ck_assert_int_eq(allowed, 1);
	}
	ck_assert_int_eq(bw_store_rate_take(s, "acme:m", 3600000000LL, 3, 1, &allowed, &retry), BW_STORE_OK);
	ck_assert_int_eq(allowed, 0);
	ck_assert_msg(retry > 3590000 && retry <= 3600000, "retry %lld", (long long)retry);
	/* another sender, another kind: their own */
	ck_assert_int_eq(bw_store_rate_take(s, "acme:r", 3600000000LL, 3, 2, &allowed, &retry), BW_STORE_OK);
	ck_assert_int_eq(allowed, 1);
	ck_assert_int_eq(bw_store_rate_take(s, "beta:m", 3600000000LL, 3, 1, &allowed, &retry), BW_STORE_OK);
	ck_assert_int_eq(allowed, 1);
	/* a second handle (another MTA of the fleet) sees the same limiter */
	{
		bw_store *s2 = fx_open();
		ck_assert_int_eq(bw_store_rate_take(s2, "acme:m", 3600000000LL, 3, 1, &allowed, &retry),
		    BW_STORE_OK);
		ck_assert_int_eq(allowed, 0);
		bw_store_close(s2);
	}
	/* reset: full again */
	ck_assert_int_eq(bw_store_rate_reset(s, "acme"), BW_STORE_OK);
	ck_assert_int_eq(bw_store_rate_take(s, "acme:m", 3600000000LL, 3, 1, &allowed, &retry), BW_STORE_OK);
	ck_assert_int_eq(allowed, 1);
	/* bad arguments */
	ck_assert_int_eq(bw_store_rate_take(s, "a b", 1000, 3, 1, &allowed, &retry), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_rate_take(s, "acme:m", 1000, 3, 4, &allowed, &retry), BW_STORE_INVALID);
	bw_store_close(s);
	fx_end();
}
END_TEST

/* compare-and-set: the contract every backend keeps; the sender table */
START_TEST(test_rec_cas)
{
	bw_store *s;

	fx_begin(_i);
	s = fx_open();
	ck_assert_str_eq(bw_store_table_name(BW_TBL_SENDER), "sender");
	/* create only when absent */
	ck_assert_int_eq(bw_store_cas(s, BW_TBL_SENDER, "acme", NULL, V1), BW_STORE_OK);
	assert_rec(s, BW_TBL_SENDER, "acme", V1);
	ck_assert_int_eq(bw_store_cas(s, BW_TBL_SENDER, "acme", NULL, V2), BW_STORE_CONFLICT);
	ck_assert_msg(strstr(bw_store_last_error(s), "changed meanwhile"), "%s",
	    bw_store_last_error(s));
	assert_rec(s, BW_TBL_SENDER, "acme", V1);
	/* replace only what was read */
	ck_assert_int_eq(bw_store_cas(s, BW_TBL_SENDER, "acme", V2, V3), BW_STORE_CONFLICT);
	assert_rec(s, BW_TBL_SENDER, "acme", V1);
	ck_assert_int_eq(bw_store_cas(s, BW_TBL_SENDER, "acme", V1, V3), BW_STORE_OK);
	assert_rec(s, BW_TBL_SENDER, "acme", V3);
	/* a prefix of the value is not the value */
	ck_assert_int_eq(bw_store_cas(s, BW_TBL_SENDER, "acme", "{", V1), BW_STORE_CONFLICT);
	/* delete only what was read; deleting what is absent */
	ck_assert_int_eq(bw_store_cas(s, BW_TBL_SENDER, "acme", V1, NULL), BW_STORE_CONFLICT);
	assert_rec(s, BW_TBL_SENDER, "acme", V3);
	ck_assert_int_eq(bw_store_cas(s, BW_TBL_SENDER, "acme", V3, NULL), BW_STORE_OK);
	assert_norec(s, BW_TBL_SENDER, "acme");
	ck_assert_int_eq(bw_store_cas(s, BW_TBL_SENDER, "acme", NULL, NULL), BW_STORE_OK);
	assert_norec(s, BW_TBL_SENDER, "acme");
	/* the other tables are apart; bad values are refused before anything */
	ck_assert_int_eq(bw_store_cas(s, BW_TBL_CONSENT, "acme", NULL, V1), BW_STORE_OK);
	assert_norec(s, BW_TBL_SENDER, "acme");
	ck_assert_int_eq(bw_store_cas(s, BW_TBL_SENDER, "acme", NULL, "[1]"), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_cas(s, BW_TBL_COUNTERS, "acme", NULL, V1), BW_STORE_INVALID);
	assert_norec(s, BW_TBL_SENDER, "acme");
	ck_assert_int_eq(bw_store_cas(s, BW_TBL_SENDER, "acme", NULL, V2), BW_STORE_OK);
	bw_store_close(s);
	s = fx_open();
	assert_rec(s, BW_TBL_SENDER, "acme", V2);
	assert_rec(s, BW_TBL_CONSENT, "acme", V1);
	bw_store_close(s);
	fx_end();
}
END_TEST

static const struct {
	const char *what;
	const char *key;
} bad_key_rows[] = {
	{ "empty", "" },
	{ "newline", "acme a\nb" },
	{ "tab", "acme\tb" },
	{ "DEL", "acme a\x7f" },
	{ "bare continuation byte", "acme a\x80" },
	{ "overlong encoding", "acme \xc0\xaf" },
	{ "surrogate", "acme \xed\xa0\x80" },
	{ "truncated sequence", "acme caf\xc3" },
};

static const struct {
	const char *what;
	const char *val;
} bad_val_rows[] = {
	{ "empty", "" },
	{ "one brace", "{" },
	{ "an array", "[1]" },
	{ "a string", "\"{}\"" },
	{ "a number", "12" },
	{ "unclosed", "{\"a\":1" },
	{ "leading space", " {}" },
};

START_TEST(test_rec_invalid)
{
	char longest[BW_STORE_KEY_MAX + 1], toolong[BW_STORE_KEY_MAX + 2];
	char *bigval = malloc(BW_STORE_VAL_MAX + 2), *v = (char *)"junk";
	bw_store_key gk[2] = { { BW_TBL_CONSENT, "acme x" }, { BW_TBL_CONSENT, "" } };
	char *vals[2] = { (char *)"junk", (char *)"junk" };
	uint64_t n;
	bw_store *s;

	fx_begin(_i);
	s = fx_open();
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme x", V1), BW_STORE_OK);
	for (size_t i = 0; i < sizeof(bad_key_rows) / sizeof(bad_key_rows[0]); i++) {
		const char *k = bad_key_rows[i].key;

		ck_assert_msg(bw_store_put(s, BW_TBL_CONSENT, k, V1) == BW_STORE_INVALID, "%s: put %s",
		    fx.be->name, bad_key_rows[i].what);
		ck_assert_msg(strstr(bw_store_last_error(s), "consent key"), "%s: %s",
		    bad_key_rows[i].what, bw_store_last_error(s));
		v = (char *)"junk";
		ck_assert_msg(bw_store_get(s, BW_TBL_CONSENT, k, &v) == BW_STORE_INVALID && v == NULL,
		    "%s: get %s", fx.be->name, bad_key_rows[i].what);
		ck_assert_msg(bw_store_del(s, BW_TBL_SUPPRESS, k) == BW_STORE_INVALID, "%s: del %s",
		    fx.be->name, bad_key_rows[i].what);
	}
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, NULL, V1), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, "acme x", NULL), BW_STORE_INVALID);
	for (size_t i = 0; i < sizeof(bad_val_rows) / sizeof(bad_val_rows[0]); i++) {
		ck_assert_msg(bw_store_put(s, BW_TBL_CONSENT, "acme x", bad_val_rows[i].val)
		    == BW_STORE_INVALID, "%s: value %s", fx.be->name, bad_val_rows[i].what);
		assert_rec(s, BW_TBL_CONSENT, "acme x", V1);
	}
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme x", NULL), BW_STORE_INVALID);
	/* the longest key and value, and one byte more */
	memset(longest, 'k', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = 0;
	memcpy(longest, "acme ", 5);
	memset(toolong, 'k', sizeof(toolong) - 1);
	toolong[sizeof(toolong) - 1] = 0;
	memset(bigval, ' ', BW_STORE_VAL_MAX);
	bigval[0] = '{';
	bigval[BW_STORE_VAL_MAX - 1] = '}';
	bigval[BW_STORE_VAL_MAX] = 0;
	ck_assert_int_eq(bw_store_put(s, BW_TBL_SUPPRESS, longest, bigval), BW_STORE_OK);
	assert_rec(s, BW_TBL_SUPPRESS, longest, bigval);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_SUPPRESS, toolong, V1), BW_STORE_INVALID);
	ck_assert_msg(strstr(bw_store_last_error(s), "longer than 480"), "%s", bw_store_last_error(s));
	bigval[BW_STORE_VAL_MAX - 1] = ' ';
	bigval[BW_STORE_VAL_MAX] = '}';
	bigval[BW_STORE_VAL_MAX + 1] = 0;
	ck_assert_int_eq(bw_store_put(s, BW_TBL_SUPPRESS, "acme big", bigval), BW_STORE_INVALID);
	/* tables that hold no records */
	ck_assert_int_eq(bw_store_put(s, BW_TBL_COUNTERS, "acme x", V1), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_get(s, BW_TBL__N, "acme x", &v), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_get(s, (bw_tbl)-1, "acme x", &v), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_del(s, BW_TBL_COUNTERS, "acme x"), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_count(s, BW_TBL_COUNTERS, &n), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_count(s, BW_TBL_CONSENT, NULL), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_scan(s, BW_TBL__N, "", got_rec, NULL), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_scan(s, BW_TBL_CONSENT, "", NULL, NULL), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_scan(s, BW_TBL_CONSENT, toolong, got_rec, NULL), BW_STORE_INVALID);
	/* get_many: one bad key fails it all, every value NULL */
	ck_assert_int_eq(bw_store_get_many(s, gk, 2, vals), BW_STORE_INVALID);
	ck_assert(vals[0] == NULL && vals[1] == NULL);
	gk[1].key = "acme y";
	gk[1].tbl = BW_TBL_COUNTERS;
	ck_assert_int_eq(bw_store_get_many(s, gk, 2, vals), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_get_many(s, NULL, 2, vals), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_get_many(s, gk, 0, NULL), BW_STORE_OK);
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), 1);
	ck_assert_uint_eq(count_of(s, BW_TBL_SUPPRESS), 1);
	bw_store_close(s);
	free(bigval);
	fx_end();
}
END_TEST

START_TEST(test_rec_get_many)
{
	bw_store_key k[] = {
		{ BW_TBL_CONSENT, "acme bob@example.com" },    /* present */
		{ BW_TBL_CONSENT, "acme *@example.com" },      /* absent */
		{ BW_TBL_SUPPRESS, "acme bob@example.com" },   /* present */
		{ BW_TBL_SUPPRESS, "* bob@example.com" },      /* present */
		{ BW_TBL_CONSENT, "other bob@example.com" },   /* absent */
		{ BW_TBL_CONSENT, "acme bob@example.com" },    /* present, asked twice */
		{ BW_TBL_SUPPRESS, "nospace" },                /* absent */
	};
	const char *want[] = { V1, NULL, V2, V3, NULL, V1, NULL };
	enum { N = sizeof(k) / sizeof(k[0]) };
	char *vals[N], *many[300];
	bw_store_key mk[300];
	char names[300][32];
	bw_store *s;

	fx_begin(_i);
	s = fx_open();
	/* an empty store: all absent */
	for (int i = 0; i < N; i++)
		vals[i] = (char *)"junk";
	ck_assert_int_eq(bw_store_get_many(s, k, N, vals), BW_STORE_OK);
	for (int i = 0; i < N; i++)
		ck_assert_ptr_null(vals[i]);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme bob@example.com", V1), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_SUPPRESS, "acme bob@example.com", V2), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_SUPPRESS, "* bob@example.com", V3), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme *@example.org", V3), BW_STORE_OK);
	ck_assert_int_eq(bw_store_get_many(s, k, N, vals), BW_STORE_OK);
	for (int i = 0; i < N; i++) {
		if (want[i] == NULL)
			ck_assert_msg(vals[i] == NULL, "%s: %d: %s", fx.be->name, i, vals[i]);
		else
			ck_assert_msg(vals[i] != NULL && strcmp(vals[i], want[i]) == 0, "%s: %d: %s",
			    fx.be->name, i, vals[i] ? vals[i] : "NULL");
		free(vals[i]);
	}
	/* one key */
	ck_assert_int_eq(bw_store_get_many(s, k + 3, 1, vals), BW_STORE_OK);
	ck_assert_str_eq(vals[0], V3);
	free(vals[0]);
	ck_assert_int_eq(bw_store_get_many(s, k + 1, 1, vals), BW_STORE_OK);
	ck_assert_ptr_null(vals[0]);
	/* many keys, every other one present */
	for (int i = 0; i < 300; i++) {
		snprintf(names[i], sizeof(names[i]), "s%d r%03d", i % 7, i);
		mk[i].tbl = i % 3 ? BW_TBL_CONSENT : BW_TBL_SUPPRESS;
		mk[i].key = names[i];
		if (i % 2 == 0)
			ck_assert_int_eq(bw_store_put(s, mk[i].tbl, names[i], "{\"i\":1}"), BW_STORE_OK);
	}
	ck_assert_int_eq(bw_store_get_many(s, mk, 300, many), BW_STORE_OK);
	for (int i = 0; i < 300; i++) {
		if (i % 2 == 0)
			ck_assert_msg(many[i] && strcmp(many[i], "{\"i\":1}") == 0, "%d", i);
		else
			ck_assert_ptr_null(many[i]);
		free(many[i]);
	}
	bw_store_close(s);
	fx_end();
}
END_TEST

START_TEST(test_rec_write_many)
{
	bw_store_kv first[] = {
		{ BW_TBL_CONSENT, "acme a@x", V1 },
		{ BW_TBL_CONSENT, "acme b@x", V1 },
		{ BW_TBL_SUPPRESS, "* c@x", V2 },
		{ BW_TBL_CONSENT, "zed a@x", V3 },
		{ BW_TBL_CONSENT, "acme gone@x", V1 },
		{ BW_TBL_CONSENT, "acme gone@x", NULL },   /* put, then delete */
		{ BW_TBL_CONSENT, "acme back@x", NULL },   /* delete (absent), then put */
		{ BW_TBL_CONSENT, "acme back@x", V2 },
		{ BW_TBL_SUPPRESS, "acme twice@x", V1 },   /* the last write wins */
		{ BW_TBL_SUPPRESS, "acme twice@x", V3 },
		{ BW_TBL_SUPPRESS, "never there", NULL },
	};
	bw_store_kv second[] = {
		{ BW_TBL_CONSENT, "acme a@x", NULL },
		{ BW_TBL_SUPPRESS, "* c@x", V1 },
		{ BW_TBL_CONSENT, "aaa first", V2 },       /* below every key there */
	};
	/* a bad record in the middle: nothing of the batch is written */
	bw_store_kv badkey[] = {
		{ BW_TBL_CONSENT, "acme new1@x", V1 },
		{ BW_TBL_CONSENT, "acme b@x", NULL },
		{ BW_TBL_CONSENT, "acme bad\n@x", V1 },
		{ BW_TBL_SUPPRESS, "* new2@x", V1 },
	};
	bw_store_kv badval[] = {
		{ BW_TBL_CONSENT, "acme new1@x", V1 },
		{ BW_TBL_CONSENT, "acme b@x", NULL },
		{ BW_TBL_SUPPRESS, "* new2@x", "[]" },
	};
	bw_store_kv badtbl[] = {
		{ BW_TBL_CONSENT, "acme new1@x", V1 },
		{ BW_TBL_COUNTERS, "acme new3@x", V1 },
	};
	bw_store *s;

	fx_begin(_i);
	s = fx_open();
	ck_assert_int_eq(bw_store_write_many(s, NULL, 0), BW_STORE_OK);
	ck_assert_int_eq(bw_store_write_many(s, NULL, 2), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_write_many(s, first, sizeof(first) / sizeof(first[0])), BW_STORE_OK);
	assert_rec(s, BW_TBL_CONSENT, "acme a@x", V1);
	assert_rec(s, BW_TBL_CONSENT, "acme b@x", V1);
	assert_rec(s, BW_TBL_SUPPRESS, "* c@x", V2);
	assert_rec(s, BW_TBL_CONSENT, "zed a@x", V3);
	assert_norec(s, BW_TBL_CONSENT, "acme gone@x");
	assert_rec(s, BW_TBL_CONSENT, "acme back@x", V2);
	assert_rec(s, BW_TBL_SUPPRESS, "acme twice@x", V3);
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), 4);
	ck_assert_uint_eq(count_of(s, BW_TBL_SUPPRESS), 2);

	ck_assert_int_eq(bw_store_write_many(s, second, 3), BW_STORE_OK);
	assert_norec(s, BW_TBL_CONSENT, "acme a@x");
	assert_rec(s, BW_TBL_SUPPRESS, "* c@x", V1);
	assert_rec(s, BW_TBL_CONSENT, "aaa first", V2);

	ck_assert_int_eq(bw_store_write_many(s, badkey, 4), BW_STORE_INVALID);
	ck_assert_msg(strstr(bw_store_last_error(s), "control character"), "%s",
	    bw_store_last_error(s));
	ck_assert_int_eq(bw_store_write_many(s, badval, 3), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_write_many(s, badtbl, 2), BW_STORE_INVALID);
	assert_norec(s, BW_TBL_CONSENT, "acme new1@x");
	assert_rec(s, BW_TBL_CONSENT, "acme b@x", V1);
	assert_norec(s, BW_TBL_SUPPRESS, "* new2@x");
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), 4);
	ck_assert_uint_eq(count_of(s, BW_TBL_SUPPRESS), 2);
	bw_store_close(s);
	fx_end();
}
END_TEST

/* Large batches in key order, out of order, overlapping: every value right. */
START_TEST(test_rec_bulk)
{
	bulk a = bulk_make(BW_TBL_CONSENT, "acme r", 3000, 0);        /* 0..2999, sorted */
	bulk b = bulk_make(BW_TBL_CONSENT, "acme r", 2000, 6000);     /* above: appends */
	bulk c = bulk_make(BW_TBL_CONSENT, "acme r", 3000, 2500);     /* overlaps both */
	bulk d = bulk_make(BW_TBL_CONSENT, "aaa r", 500, 0);          /* below all */
	bw_store *s;
	got g;

	/* c: shuffled, every tenth a delete */
	for (size_t i = 0; i < c.n; i++) {
		size_t j = (i * 7919) % c.n;
		bw_store_kv t = c.kv[i];

		c.kv[i] = c.kv[j];
		c.kv[j] = t;
	}
	for (size_t i = 0; i < c.n; i++)
		if (strtoul(c.kv[i].key + 6, NULL, 10) % 10 == 0)
			c.kv[i].val = NULL;
	fx_begin(_i);
	s = fx_open();
	ck_assert_int_eq(bw_store_write_many(s, a.kv, a.n), BW_STORE_OK);
	ck_assert_int_eq(bw_store_write_many(s, b.kv, b.n), BW_STORE_OK);
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), 5000);
	ck_assert_int_eq(bw_store_write_many(s, c.kv, c.n), BW_STORE_OK);
	ck_assert_int_eq(bw_store_write_many(s, d.kv, d.n), BW_STORE_OK);
	g = scan_of(s, BW_TBL_CONSENT, "");
	{
		/* expected: aaa 0..499; acme 0..2499, 2500..5499 without multiples of 10, 6000..7999 */
		int at = 0;

		for (int i = 0; i < 500; i++, at++) {
			char k[32];

			snprintf(k, sizeof(k), "aaa r%07d", i);
			ck_assert_str_eq(g.keys[at], k);
		}
		for (int i = 0; i < 8000; i++) {
			char k[32], n[32];

			if ((i >= 5500 && i < 6000) || (i >= 2500 && i < 5500 && i % 10 == 0))
				continue;
			ck_assert_int_lt(at, g.n);
			snprintf(k, sizeof(k), "acme r%07d", i);
			snprintf(n, sizeof(n), "\"n\":%d}", i);
			ck_assert_str_eq(g.keys[at], k);
			ck_assert_msg(strstr(g.vals[at], n), "%s: %s", k, g.vals[at]);
			at++;
		}
		ck_assert_int_eq(at, g.n);
		ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), (uint64_t)g.n);
	}
	got_free(&g);
	bw_store_close(s);
	bulk_free(&a);
	bulk_free(&b);
	bulk_free(&c);
	bulk_free(&d);
	fx_end();
}
END_TEST

START_TEST(test_rec_scan)
{
	/* in byte order; ' ' sorts below every other character a key may hold */
	static const char *const sorted[] = {
		" lead", "a", "a  b", "a b", "a b c", "a!b", "a*b x", "ab", "ab z", "acme",
		"acme ", "acme a@x", "acme b@x", "acme b@y", "acme2 a@x", "acme\xc3\xa9 x",
		"axb x", "b\xc3\xa9\x62", "zed q",
	};
	enum { N = sizeof(sorted) / sizeof(sorted[0]) };
	static const struct {
		const char *prefix;
		const char *first;  /* NULL: nothing */
		int n;
	} rows[] = {
		{ "", " lead", N },
		{ "acme ", "acme ", 4 },
		{ "acme", "acme", 7 },
		{ "acme b@", "acme b@x", 2 },
		{ "a ", "a  b", 3 },
		{ "a", "a", 16 },
		{ "a*b", "a*b x", 1 },    /* glob characters are plain */
		{ "a?b", NULL, 0 },
		{ "acme z", NULL, 0 },
		{ "nothing", NULL, 0 },
		{ " ", " lead", 1 },
		{ "b\xc3\xa9", "b\xc3\xa9" "b", 1 },
	};
	bw_store *s;
	got g;

	fx_begin(_i);
	s = fx_open();
	g = scan_of(s, BW_TBL_CONSENT, "");
	ck_assert_int_eq(g.n, 0);
	got_free(&g);
	/* written out of order, half through write_many */
	for (int i = N - 1; i >= 0; i -= 2) {
		char v[64];

		snprintf(v, sizeof(v), "{\"i\":%d}", i);
		ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, sorted[i], v), BW_STORE_OK);
	}
	{
		bw_store_kv kv[N];
		char v[N][32];
		size_t n = 0;

		for (int i = N - 2; i >= 0; i -= 2) {
			snprintf(v[n], sizeof(v[n]), "{\"i\":%d}", i);
			kv[n] = (bw_store_kv){ BW_TBL_CONSENT, sorted[i], v[n] };
			n++;
		}
		ck_assert_int_eq(bw_store_write_many(s, kv, n), BW_STORE_OK);
	}
	ck_assert_int_eq(bw_store_put(s, BW_TBL_SUPPRESS, "acme a@x", V2), BW_STORE_OK);
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		int from = 0;

		g = scan_of(s, BW_TBL_CONSENT, rows[r].prefix);
		ck_assert_msg(g.n == rows[r].n, "%s: prefix \"%s\": %d records, want %d", fx.be->name,
		    rows[r].prefix, g.n, rows[r].n);
		if (rows[r].first != NULL) {
			while (strcmp(sorted[from], rows[r].first) != 0)
				from++;
			for (int i = 0; i < g.n; i++) {
				char v[64];

				snprintf(v, sizeof(v), "{\"i\":%d}", from + i);
				ck_assert_msg(strcmp(g.keys[i], sorted[from + i]) == 0, "%s: prefix \"%s\": "
				    "record %d is \"%s\", want \"%s\"", fx.be->name, rows[r].prefix, i,
				    g.keys[i], sorted[from + i]);
				ck_assert_str_eq(g.vals[i], v);
			}
		}
		got_free(&g);
	}
	g = scan_of(s, BW_TBL_SUPPRESS, "");
	ck_assert_int_eq(g.n, 1);
	ck_assert_str_eq(g.keys[0], "acme a@x");
	ck_assert_str_eq(g.vals[0], V2);
	got_free(&g);

	/* stopping early, and reading from inside the callback */
	g.stop_after = 5;
	g.s = s;
	g.read_key = "acme a@x";
	g.read_want = V2;
	ck_assert_int_eq(bw_store_scan(s, BW_TBL_CONSENT, "", got_rec, &g), BW_STORE_OK);
	ck_assert_int_eq(g.n, 5);
	ck_assert_int_eq(g.read_bad, 0);
	got_free(&g);
	bw_store_close(s);
	fx_end();
}
END_TEST

/* Several senders with many records: scan across batches and senders. */
START_TEST(test_rec_scan_many)
{
	static const char *const senders[] = { "s1", "s10", "s2" };
	bw_store *s;
	got g;

	fx_begin(_i);
	s = fx_open();
	for (size_t i = 0; i < 3; i++) {
		char p[16];
		bulk b;

		snprintf(p, sizeof(p), "%s r", senders[i]);
		b = bulk_make(BW_TBL_SUPPRESS, p, 1200, 0);
		ck_assert_int_eq(bw_store_write_many(s, b.kv, b.n), BW_STORE_OK);
		bulk_free(&b);
	}
	g = scan_of(s, BW_TBL_SUPPRESS, "");
	ck_assert_int_eq(g.n, 3600);
	for (int i = 1; i < g.n; i++)
		ck_assert_msg(strcmp(g.keys[i - 1], g.keys[i]) < 0, "%s before %s", g.keys[i - 1],
		    g.keys[i]);
	ck_assert_str_eq(g.keys[0], "s1 r0000000");
	ck_assert_str_eq(g.keys[1200], "s10 r0000000");
	got_free(&g);
	g = scan_of(s, BW_TBL_SUPPRESS, "s1 r00011");
	ck_assert_int_eq(g.n, 100);
	ck_assert_str_eq(g.keys[99], "s1 r0001199");
	got_free(&g);
	g = scan_of(s, BW_TBL_SUPPRESS, "s1");
	ck_assert_int_eq(g.n, 2400);
	got_free(&g);
	g.stop_after = 1500;
	ck_assert_int_eq(bw_store_scan(s, BW_TBL_SUPPRESS, "", got_rec, &g), BW_STORE_OK);
	ck_assert_int_eq(g.n, 1500);
	ck_assert_str_eq(g.keys[1499], "s10 r0000299");
	got_free(&g);
	ck_assert_uint_eq(count_of(s, BW_TBL_SUPPRESS), 3600);
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), 0);
	bw_store_close(s);
	fx_end();
}
END_TEST

static void
populate_recs(bw_store *s)
{
	bw_store_kv kv[] = {
		{ BW_TBL_CONSENT, "acme bob@example.com", V1 },
		{ BW_TBL_CONSENT, "acme *@example.org", V3 },
		{ BW_TBL_CONSENT, "b\xc3\xa9ta \"q\" \\ x", "{\"b\":1,\"a\":2}" },
		{ BW_TBL_SUPPRESS, "* bob@example.com", V2 },
		{ BW_TBL_SUPPRESS, "acme #0123456789abcdef", "{}" },
	};

	ck_assert_int_eq(bw_store_write_many(s, kv, sizeof(kv) / sizeof(kv[0])), BW_STORE_OK);
}

START_TEST(test_rec_dump_restore)
{
	char err[512] = "x";
	bw_store *s, *s2;
	text a, b;

	fx_begin(_i);
	s = fx_open();
	populate(s);
	populate_recs(s);
	a = dump_of(s);
	ck_assert_int_eq(a.lines, 12);
	/* values are the objects themselves; key order kept */
	ck_assert_msg(strstr(a.buf, "{\"table\":\"consent\",\"key\":\"acme bob@example.com\",\"value\":"
	    V1 "}\n"), "%s", a.buf);
	ck_assert_msg(strstr(a.buf, "{\"table\":\"consent\",\"key\":\"b\xc3\xa9ta \\\"q\\\" \\\\ x\","
	    "\"value\":{\"b\":1,\"a\":2}}\n"), "%s", a.buf);
	ck_assert_msg(strstr(a.buf, "{\"table\":\"suppress\",\"key\":\"acme #0123456789abcdef\","
	    "\"value\":{}}\n"), "%s", a.buf);
	/* tables in registry order, each in key order */
	ck_assert(strstr(a.buf, "\"counters\"") < strstr(a.buf, "\"consent\""));
	ck_assert(strstr(a.buf, "\"consent\"") < strstr(a.buf, "\"suppress\""));
	ck_assert(strstr(a.buf, "acme *@example.org") < strstr(a.buf, "acme bob@example.com"));

	s2 = fx_open_spec(fx.spec2);
	ck_assert_int_eq(restore_str(s2, a.buf, err, sizeof(err)), BW_STORE_OK);
	ck_assert_str_eq(err, "");
	b = dump_of(s2);
	ck_assert_str_eq(a.buf, b.buf);
	assert_rec(s2, BW_TBL_CONSENT, "acme *@example.org", V3);
	assert_rec(s2, BW_TBL_SUPPRESS, "acme #0123456789abcdef", "{}");
	ck_assert_uint_eq(count_of(s2, BW_TBL_CONSENT), 3);
	free(b.buf);

	/* restore keeps other records, replaces, and stores compact text */
	ck_assert_int_eq(restore_str(s2, "{\"table\":\"consent\",\"key\":\"new x\",\"value\":"
	    "{ \"z\" : [ 1, 2 ] ,\t\"a\" : \"\\u00e9\\/\" }}\n"
	    "{\"table\":\"suppress\",\"key\":\"* bob@example.com\",\"value\":{\"r\":1}}\n",
	    err, sizeof(err)), BW_STORE_OK);
	assert_rec(s2, BW_TBL_CONSENT, "new x", "{\"z\":[1,2],\"a\":\"\xc3\xa9/\"}");
	assert_rec(s2, BW_TBL_SUPPRESS, "* bob@example.com", "{\"r\":1}");
	assert_rec(s2, BW_TBL_CONSENT, "acme bob@example.com", V1);
	ck_assert_uint_eq(count_of(s2, BW_TBL_CONSENT), 4);
	bw_store_close(s);
	bw_store_close(s2);
	free(a.buf);
	fx_end();
}
END_TEST

#define GOODREC "{\"table\":\"consent\",\"key\":\"acme r1\",\"value\":{\"a\":1}}"

static const struct {
	const char *what;
	const char *line;
	const char *says;
} bad_rec_rows[] = {
	{ "a string value", "{\"table\":\"consent\",\"key\":\"acme x\",\"value\":\"{}\"}",
	  "must be a JSON object" },
	{ "an array value", "{\"table\":\"suppress\",\"key\":\"acme x\",\"value\":[1]}",
	  "must be a JSON object" },
	{ "an integer value", "{\"table\":\"consent\",\"key\":\"acme x\",\"value\":1}",
	  "must be a JSON object" },
	{ "null", "{\"table\":\"consent\",\"key\":\"acme x\",\"value\":null}",
	  "must be a JSON object" },
	{ "a duplicate member in the value",
	  "{\"table\":\"consent\",\"key\":\"acme x\",\"value\":{\"a\":1,\"a\":2}}", "not JSON" },
	{ "an empty key", "{\"table\":\"consent\",\"key\":\"\",\"value\":{}}", "empty key" },
	{ "a control character", "{\"table\":\"consent\",\"key\":\"a\\tb\",\"value\":{}}",
	  "control character in key" },
	{ "an object for a counter", "{\"table\":\"counters\",\"key\":\"x\",\"value\":{}}",
	  "must be an integer" },
};

START_TEST(test_rec_restore_bad)
{
	char err[512], input[2048], *line;
	size_t n;
	bw_store *s;

	fx_begin(_i);
	s = fx_open();
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme kept", V1), BW_STORE_OK);
	for (size_t i = 0; i < sizeof(bad_rec_rows) / sizeof(bad_rec_rows[0]); i++) {
		bw_store_err e;

		snprintf(input, sizeof(input), "%s\n%s\n%s\n", GOODREC, bad_rec_rows[i].line, GOOD1);
		err[0] = 0;
		e = restore_str(s, input, err, sizeof(err));
		ck_assert_msg(e == BW_STORE_INVALID, "%s: %s: got %s", fx.be->name,
		    bad_rec_rows[i].what, bw_store_strerror(e));
		ck_assert_msg(strncmp(err, "line 2: ", 8) == 0 && strstr(err, bad_rec_rows[i].says),
		    "%s: %s: err \"%s\"", fx.be->name, bad_rec_rows[i].what, err);
		assert_norec(s, BW_TBL_CONSENT, "acme r1");
		assert_missing(s, "r1");
	}
	/* a key too long, a value too long */
	line = malloc(BW_STORE_VAL_MAX + 200);
	n = (size_t)snprintf(line, 100, "{\"table\":\"consent\",\"key\":\"");
	memset(line + n, 'k', BW_STORE_KEY_MAX + 1);
	strcpy(line + n + BW_STORE_KEY_MAX + 1, "\",\"value\":{}}\n");
	ck_assert_int_eq(restore_str(s, line, err, sizeof(err)), BW_STORE_INVALID);
	ck_assert_msg(strstr(err, "line 1: key") && strstr(err, "longer than 480"), "%s", err);
	n = (size_t)snprintf(line, 100, "{\"table\":\"consent\",\"key\":\"acme big\",\"value\":{\"v\":\"");
	memset(line + n, 'v', BW_STORE_VAL_MAX);
	strcpy(line + n + BW_STORE_VAL_MAX, "\"}}\n");
	ck_assert_int_eq(restore_str(s, line, err, sizeof(err)), BW_STORE_INVALID);
	ck_assert_msg(strstr(err, "line 1: value of consent \"acme big\" is"), "%s", err);
	free(line);
	assert_rec(s, BW_TBL_CONSENT, "acme kept", V1);
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), 1);
	bw_store_close(s);
	fx_end();
}
END_TEST

START_TEST(test_rec_readonly)
{
	bw_store_opts ro = { .readonly = 1 };
	bw_store_key k[] = { { BW_TBL_CONSENT, "acme bob@example.com" },
		{ BW_TBL_SUPPRESS, "nobody x" } };
	bw_store_kv kv[] = { { BW_TBL_CONSENT, "acme new", V1 } };
	char err[512], *vals[2];
	bw_store *s;
	got g;
	text t;

	fx_begin(_i);
	s = fx_open();
	populate_recs(s);
	bw_store_close(s);
	s = bw_store_open(fx.spec, &ro, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	assert_rec(s, BW_TBL_CONSENT, "acme bob@example.com", V1);
	ck_assert_int_eq(bw_store_get_many(s, k, 2, vals), BW_STORE_OK);
	ck_assert_str_eq(vals[0], V1);
	ck_assert_ptr_null(vals[1]);
	free(vals[0]);
	g = scan_of(s, BW_TBL_CONSENT, "");
	ck_assert_int_eq(g.n, 3);
	got_free(&g);
	ck_assert_uint_eq(count_of(s, BW_TBL_SUPPRESS), 2);
	t = dump_of(s);
	ck_assert_int_eq(t.lines, 6);
	free(t.buf);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme new", V1), BW_STORE_INVALID);
	ck_assert_msg(strstr(bw_store_last_error(s), "read-only"), "%s", bw_store_last_error(s));
	ck_assert_int_eq(bw_store_del(s, BW_TBL_CONSENT, "acme bob@example.com"), BW_STORE_INVALID);
	ck_assert_int_eq(bw_store_write_many(s, kv, 1), BW_STORE_INVALID);
	assert_norec(s, BW_TBL_CONSENT, "acme new");
	assert_rec(s, BW_TBL_CONSENT, "acme bob@example.com", V1);
	bw_store_close(s);
	fx_end();
}
END_TEST

/* The store fills up: a batch that does not fit leaves nothing; the error names the setting. */
START_TEST(test_rec_full)
{
	bw_store_err e = BW_STORE_OK;
	bw_store *s;
	bulk b;
	int batch;
	char p[32];

	fx_begin(_i);
	fx.be->limit_space();
	s = fx_open();
	for (batch = 0; batch < 2000 && e == BW_STORE_OK; batch++) {
		snprintf(p, sizeof(p), "fill%04d r", batch);
		b = bulk_make(batch % 2 ? BW_TBL_CONSENT : BW_TBL_SUPPRESS, p, 100, 0);
		e = bw_store_write_many(s, b.kv, b.n);
		bulk_free(&b);
	}
	ck_assert_msg(e == BW_STORE_FULL, "%s: after %d batches: %s: %s", fx.be->name, batch,
	    bw_store_strerror(e), bw_store_last_error(s));
	ck_assert_msg(batch > 1, "%s: full at once", fx.be->name);
	ck_assert_msg(strstr(bw_store_last_error(s), fx.be->full_words), "%s: \"%s\"", fx.be->name,
	    bw_store_last_error(s));
	/* the failed batch left nothing; what is there still reads */
	snprintf(p, sizeof(p), "fill%04d r0000000", batch - 1);
	assert_norec(s, (batch - 1) % 2 ? BW_TBL_CONSENT : BW_TBL_SUPPRESS, p);
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT) + count_of(s, BW_TBL_SUPPRESS),
	    (uint64_t)(batch - 1) * 100);
	/* and one big batch, far larger than the room left */
	b = bulk_make(BW_TBL_CONSENT, "big r", 5000, 0);
	ck_assert_int_eq(bw_store_write_many(s, b.kv, b.n), BW_STORE_FULL);
	ck_assert_msg(strstr(bw_store_last_error(s), fx.be->full_words), "%s: \"%s\"", fx.be->name,
	    bw_store_last_error(s));
	bulk_free(&b);
	assert_norec(s, BW_TBL_CONSENT, "big r0000000");
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT) + count_of(s, BW_TBL_SUPPRESS),
	    (uint64_t)(batch - 1) * 100);
	{
		char *v = NULL;

		ck_assert_int_eq(bw_store_get(s, BW_TBL_SUPPRESS, "fill0000 r0000099", &v), BW_STORE_OK);
		ck_assert_msg(strstr(v, "\"n\":99}"), "%s", v);
		free(v);
	}
	bw_store_close(s);
	fx_end();
}
END_TEST

/*
 * A process killed in the middle of a large write_many: the store opens,
 * holds all of the batch or none of it, and takes writes again. The first
 * round lets the batch finish and times it; the others kill the writer at
 * a quarter, a half and three quarters of that time.
 */
#define KILL_BATCH 100000

START_TEST(test_rec_kill9_batch)
{
	double took = 0;
	int all = 0, none = 0;

	fx_begin(_i);
	bw_store_close(fx_open());   /* create it */
	for (int round = 0; round < 4; round++) {
		char p[32], first[48], last[48], c;
		int status, fds[2];
		uint64_t before, after;
		struct timespec t0, t1;
		pid_t pid;
		bw_store *s;

		snprintf(p, sizeof(p), "k%d r", round);
		s = fx_open();
		before = count_of(s, BW_TBL_CONSENT);
		bw_store_close(s);
		ck_assert_int_eq(pipe(fds), 0);
		pid = fork();
		ck_assert_int_ne(pid, -1);
		if (pid == 0) {
			char err[512];
			bulk b = bulk_make(BW_TBL_CONSENT, p, KILL_BATCH, 0);
			bw_store *cs = bw_store_open(fx.spec, &fx.opts, err, sizeof(err));

			close(fds[0]);
			if (cs == NULL || write(fds[1], "g", 1) != 1)
				_exit(1);
			if (bw_store_write_many(cs, b.kv, b.n) != BW_STORE_OK)
				_exit(3);
			if (write(fds[1], "d", 1) != 1)
				_exit(4);
			pause();
			_exit(2);
		}
		close(fds[1]);
		ck_assert_int_eq(read(fds[0], &c, 1), 1);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (round == 0) {
			ck_assert_msg(read(fds[0], &c, 1) == 1 && c == 'd', "%s: the batch failed",
			    fx.be->name);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		} else {
			usleep((useconds_t)(took * 1e6 * round / 4));
		}
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		close(fds[0]);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %#x",
		    status);
		s = fx_open();
		after = count_of(s, BW_TBL_CONSENT);
		snprintf(first, sizeof(first), "%s%07d", p, 0);
		snprintf(last, sizeof(last), "%s%07d", p, KILL_BATCH - 1);
		if (after == before) {
			ck_assert_msg(round > 0, "%s: a finished batch is gone", fx.be->name);
			assert_norec(s, BW_TBL_CONSENT, first);
			assert_norec(s, BW_TBL_CONSENT, last);
			none++;
		} else {
			char *v = NULL;

			ck_assert_msg(after == before + KILL_BATCH, "%s: round %d: %llu records, want "
			    "%llu or %llu", fx.be->name, round, (unsigned long long)after,
			    (unsigned long long)before, (unsigned long long)before + KILL_BATCH);
			ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, first, &v), BW_STORE_OK);
			free(v);
			ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, last, &v), BW_STORE_OK);
			free(v);
			all++;
		}
		/* the writer the child held is free again */
		ck_assert_int_eq(bw_store_put(s, BW_TBL_SUPPRESS, first, V1), BW_STORE_OK);
		assert_rec(s, BW_TBL_SUPPRESS, first, V1);
		bw_store_close(s);
	}
	ck_assert_int_eq(all + none, 4);
	ck_assert_int_ge(all, 1);
	fx_end();
}
END_TEST

/* ---------------------------------------------------------------- no backend */

START_TEST(test_strerror_and_specs)
{
	static const char *const bad[] = { "", "nope:x", "lmdb:", "lmdb:relative/dir",
#ifndef HAVE_REDIS
		"redis:unix:/nowhere/redis.sock",
#endif
	};
	char err[512];

	for (int e = BW_STORE_OK; e <= BW_STORE_NOMEM; e++) {
		ck_assert(bw_store_strerror((bw_store_err)e)[0] != 0);
		for (int f = BW_STORE_OK; f < e; f++)
			ck_assert_str_ne(bw_store_strerror((bw_store_err)e),
			    bw_store_strerror((bw_store_err)f));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		open_fails(bad[i], NULL, BW_STORE_INVALID, err, sizeof(err));
		ck_assert_msg(strstr(err, bad[i]) && strlen(err) > strlen(bad[i]) + 10, "%s: %s",
		    bad[i], err);
	}
#ifndef HAVE_REDIS
	open_fails("redis:127.0.0.1:6379", NULL, BW_STORE_INVALID, err, sizeof(err));
	ck_assert_msg(strstr(err, "without Redis support"), "%s", err);
#endif
}
END_TEST

/* ---------------------------------------------------------------- LMDB only */

START_TEST(test_lmdb_directory)
{
	bw_store_opts ro = { .readonly = 1 };
	char err[512], spec[PATH_MAX + 64], file[PATH_MAX + 16];
	struct stat sb;
	bw_store *s;
	int fd;

	fx_begin(BE_LMDB);
	umask(022);
	/* a read-only open creates nothing */
	open_fails(fx.spec, &ro, BW_STORE_UNAVAILABLE, err, sizeof(err));
	ck_assert_msg(strstr(err, "no store"), "%s", err);
	ck_assert_int_ne(stat(fx.store_dir, &sb), 0);

	s = fx_open();
	ck_assert_int_eq(stat(fx.store_dir, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 07777, 0750);
	/* one environment, once per process */
	open_fails(fx.spec, &fx.opts, BW_STORE_UNAVAILABLE, err, sizeof(err));
	ck_assert_msg(strstr(err, "already open"), "%s", err);
	bw_store_close(s);
	s = fx_open();
	bw_store_close(s);

	snprintf(file, sizeof(file), "%s/file", fx.dir);
	ck_assert_int_ge(fd = open(file, O_CREAT | O_WRONLY, 0600), 0);
	close(fd);
	snprintf(spec, sizeof(spec), "lmdb:%s", file);
	open_fails(spec, &fx.opts, BW_STORE_UNAVAILABLE, err, sizeof(err));
	ck_assert_msg(strstr(err, "not a directory") && strstr(err, file), "%s", err);
	snprintf(spec, sizeof(spec), "lmdb:%s/no/such/parent", fx.dir);
	open_fails(spec, &fx.opts, BW_STORE_UNAVAILABLE, err, sizeof(err));
	ck_assert_msg(strstr(err, "cannot create the directory") && strstr(err, "No such file"),
	    "%s", err);
	fx_end();
}
END_TEST

/* How a store's data.mdb gets damaged, after 2000 counters went in. */
typedef enum { DMG_TEXT, DMG_HEAD, DMG_META2, DMG_PAGES, DMG_TRUNCATE, DMG_ONE_PAGE } dmg;

static const struct {
	const char *what;
	dmg how;
} damage_rows[] = {
	{ "a text file instead of the database", DMG_TEXT },
	{ "garbage over the first meta page", DMG_HEAD },
	{ "garbage over both meta pages", DMG_META2 },
	{ "garbage over every data page", DMG_PAGES },
	{ "the file cut short", DMG_TRUNCATE },
	{ "garbage over one page in the middle", DMG_ONE_PAGE },
};

/* n counters "fill:NNNNN" = NNNNN, in commits of up to 50. */
static void
fill_store(int n)
{
	bw_store *s = fx_open();
	char names[50][32];
	bw_counter_delta d[50];

	for (int i = 0; i < n; i += 50) {
		int k = n - i < 50 ? n - i : 50;

		for (int j = 0; j < k; j++) {
			snprintf(names[j], sizeof(names[j]), "fill:%05d", i + j);
			d[j].name = names[j];
			d[j].delta = i + j;
		}
		ck_assert_int_eq(bw_store_counter_add_many(s, d, (size_t)k), BW_STORE_OK);
	}
	bw_store_close(s);
}

static void
data_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/data.mdb", fx.store_dir);
}

/* Rewrites the store without free pages: then every page is in a tree. */
static void
compact_store(void)
{
	char tmp[sizeof(fx.dir) + 16], from[sizeof(fx.dir) + 32], to[sizeof(fx.store_dir) + 16];
	MDB_env *env = raw_env(0);

	snprintf(tmp, sizeof(tmp), "%s/compact", fx.dir);
	ck_assert_int_eq(mkdir(tmp, 0700), 0);
	ck_assert_int_eq(mdb_env_copy2(env, tmp, MDB_CP_COMPACT), 0);
	mdb_env_close(env);
	snprintf(from, sizeof(from), "%s/data.mdb", tmp);
	data_path(to, sizeof(to));
	ck_assert_int_eq(rename(from, to), 0);
	rmdir(tmp);
}

static void
garbage(int fd, off_t off, size_t len, unsigned seed)
{
	unsigned char *g = malloc(len);

	for (size_t i = 0; i < len; i++)
		g[i] = (unsigned char)(rand_r(&seed) >> 7);
	ck_assert_int_eq(pwrite(fd, g, len, off), (ssize_t)len);
	free(g);
}

START_TEST(test_lmdb_damaged)
{
	char path[sizeof(fx.store_dir) + 16], err[512];
	struct stat sb;
	int fd;

	fx_begin(BE_LMDB);
	if (damage_rows[_i].how == DMG_TEXT) {
		ck_assert_int_eq(mkdir(fx.store_dir, 0750), 0);
		data_path(path, sizeof(path));
		fd = open(path, O_CREAT | O_WRONLY, 0640);
		ck_assert_int_eq(write(fd, "not a database\n", 15), 15);
		close(fd);
	} else {
		fill_store(2000);
		compact_store();
		data_path(path, sizeof(path));
		ck_assert_int_ge(fd = open(path, O_RDWR), 0);
		ck_assert_int_eq(fstat(fd, &sb), 0);
		switch (damage_rows[_i].how) {
		case DMG_HEAD: garbage(fd, 0, 4096, 1); break;
		case DMG_META2: garbage(fd, 0, 8192, 2); break;
		case DMG_PAGES: garbage(fd, 8192, (size_t)sb.st_size - 8192, 3); break;
		case DMG_TRUNCATE: ck_assert_int_eq(ftruncate(fd, sb.st_size / 2), 0); break;
		case DMG_ONE_PAGE: garbage(fd, (sb.st_size / 4096 / 2) * 4096, 4096, 4); break;
		case DMG_TEXT: break;
		}
		close(fd);
	}
	err[0] = 0;
	open_fails(fx.spec, &fx.opts, BW_STORE_CORRUPT, err, sizeof(err));
	ck_assert_msg(strstr(err, fx.store_dir) && strstr(err, "damaged"), "%s: %s",
	    damage_rows[_i].what, err);
	/* and read-only as the tools open it */
	{
		bw_store_opts ro = { .readonly = 1 };

		open_fails(fx.spec, &ro, BW_STORE_CORRUPT, err, sizeof(err));
		ck_assert_msg(strstr(err, "damaged"), "%s", err);
	}
	fx_end();
}
END_TEST

static int
ignore_line(void *ud, const char *line, size_t len)
{
	(void)ud;
	(void)line;
	(void)len;
	return 0;
}

static int
ignore_counter(void *ud, const char *name, int64_t val)
{
	(void)ud;
	(void)name;
	(void)val;
	return 0;
}

/* Random damage, many times: the store says CORRUPT or works; it never crashes. */
START_TEST(test_lmdb_damage_random)
{
	char path[sizeof(fx.store_dir) + 16], err[512];
	unsigned char *orig;
	unsigned seed = 20240601;
	struct stat sb;
	int fd, corrupt = 0, opened = 0;
	bw_store_err e;

	fx_begin(BE_LMDB);
	fill_store(3000);
	data_path(path, sizeof(path));
	ck_assert_int_ge(fd = open(path, O_RDWR), 0);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	orig = malloc((size_t)sb.st_size);
	ck_assert_int_eq(pread(fd, orig, (size_t)sb.st_size, 0), sb.st_size);
	for (int round = 0; round < 90; round++) {
		bw_store *s;
		off_t pages = sb.st_size / 4096;

		ck_assert_int_eq(pwrite(fd, orig, (size_t)sb.st_size, 0), sb.st_size);
		switch (round % 3) {
		case 0: /* a few flipped bits in the data pages */
			for (int k = 0; k < 4; k++) {
				off_t at = 8192 + rand_r(&seed) % (sb.st_size - 8192);
				unsigned char b;

				pread(fd, &b, 1, at);
				b ^= (unsigned char)(1u << (rand_r(&seed) % 8));
				pwrite(fd, &b, 1, at);
			}
			break;
		case 1: /* a page header */
			garbage(fd, (2 + rand_r(&seed) % (pages - 2)) * 4096 + rand_r(&seed) % 16, 2,
			    (unsigned)round);
			break;
		case 2: /* a short run */
			garbage(fd, 8192 + rand_r(&seed) % (sb.st_size - 8192 - 64), 1 + rand_r(&seed) % 64,
			    (unsigned)round);
			break;
		}
		e = bw_store_open_status(fx.spec, &fx.opts, &s, err, sizeof(err));
		if (e != BW_STORE_OK) {
			ck_assert_msg(e == BW_STORE_CORRUPT && strstr(err, "damaged"), "round %d: %s: %s",
			    round, bw_store_strerror(e), err);
			corrupt++;
			continue;
		}
		opened++;
		bw_store_counter_scan(s, "", ignore_counter, NULL);
		bw_store_dump(s, ignore_line, NULL);
		bw_store_counter_add(s, "fill:01500", 1, NULL);
		bw_store_counter_add(s, "new", 1, NULL);
		bw_store_close(s);
	}
	close(fd);
	free(orig);
	ck_assert_int_gt(corrupt, 0);
	ck_assert_int_gt(opened, 0);
	fx_end();
}
END_TEST

/* Two keys swapped on disk: the pages are sound, the order is not. */
START_TEST(test_lmdb_keys_out_of_order)
{
	char path[sizeof(fx.store_dir) + 16];
	unsigned char *buf, *a, *b;
	struct stat sb;
	bw_store *s;
	int fd;

	fx_begin(BE_LMDB);
	fill_store(300);
	compact_store();
	data_path(path, sizeof(path));
	ck_assert_int_ge(fd = open(path, O_RDWR), 0);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	buf = malloc((size_t)sb.st_size);
	ck_assert_int_eq(pread(fd, buf, (size_t)sb.st_size, 0), sb.st_size);
	a = memmem(buf, (size_t)sb.st_size, "fill:00010", 10);
	b = memmem(buf, (size_t)sb.st_size, "fill:00200", 10);
	ck_assert(a != NULL && b != NULL);
	memcpy(a, "fill:00200", 10);
	memcpy(b, "fill:00010", 10);
	ck_assert_int_eq(pwrite(fd, buf, (size_t)sb.st_size, 0), sb.st_size);
	close(fd);
	free(buf);

	s = fx_open();
	ck_assert_int_eq(bw_store_counter_scan(s, "", ignore_counter, NULL), BW_STORE_CORRUPT);
	ck_assert_msg(strstr(bw_store_last_error(s), "out of order"), "%s", bw_store_last_error(s));
	ck_assert_int_eq(bw_store_counter_scan(s, "fill:001", ignore_counter, NULL), BW_STORE_OK);
	bw_store_close(s);
	fx_end();
}
END_TEST

/* ---- a store too big to be read whole at every open ---- */

/*
 * Above BW_STORE_VERIFY_FULL_MAX bytes (a test-only override of 256 MB) an
 * open checks the branch pages but leaves the leaves of the big tables to
 * be checked when an operation first reaches them. These stores are 5 MB:
 * BIG_N consent records "c:NNNNNNN" in about 1,300 leaves under 3 levels,
 * BIG_KEY with a value long enough for overflow pages.
 */
#define BIG_N       20000
#define BIG_KEY     "c:0010000"
#define BIG_VAL_LEN 6000

static void
big_threshold(void)
{
	ck_assert_int_eq(setenv("BW_STORE_VERIFY_FULL_MAX", "65536", 1), 0);
}

static void
big_store(void)
{
	bulk b = bulk_make(BW_TBL_CONSENT, "c:", BIG_N, 0);
	char *big = malloc(BIG_VAL_LEN + 1);
	bw_store *s;

	ck_assert(big != NULL);
	memset(big, 'x', BIG_VAL_LEN);
	memcpy(big, "{\"pad\":\"", 8);
	memcpy(big + BIG_VAL_LEN - 2, "\"}", 3);
	b.kv[10000].val = big;
	s = fx_open();
	ck_assert_int_eq(bw_store_write_many(s, b.kv, b.n), BW_STORE_OK);
	bw_store_close(s);
	compact_store();
	bulk_free(&b);
	free(big);
}

/* The page size, and a page of data.mdb at a time. */
typedef struct rawpage {
	int fd;
	long psize;
	off_t size;
	unsigned char *p;
} rawpage;

static rawpage
raw_open(void)
{
	char path[sizeof(fx.store_dir) + 16];
	rawpage r = { .psize = sysconf(_SC_PAGESIZE) };
	struct stat sb;

	data_path(path, sizeof(path));
	ck_assert_int_ge(r.fd = open(path, O_RDWR), 0);
	ck_assert_int_eq(fstat(r.fd, &sb), 0);
	r.size = sb.st_size;
	ck_assert((r.p = malloc((size_t)r.psize)) != NULL);
	return r;
}

static void
raw_read(rawpage *r, uint64_t pg)
{
	ck_assert_int_eq(pread(r->fd, r->p, (size_t)r->psize, (off_t)pg * r->psize), r->psize);
}

static void
raw_write(rawpage *r, uint64_t pg)
{
	ck_assert_int_eq(pwrite(r->fd, r->p, (size_t)r->psize, (off_t)pg * r->psize), r->psize);
}

static void
raw_close(rawpage *r)
{
	close(r->fd);
	free(r->p);
}

static uint16_t
raw_u16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static void
raw_set16(unsigned char *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

#define RAW_BRANCH 0x01
#define RAW_LEAF   0x02

/* The page of a compacted store of type (RAW_*) holding key (NULL: any, the
 * last one), read into r->p. */
static uint64_t
raw_find(rawpage *r, unsigned type, const char *key)
{
	uint64_t found = 0;

	for (uint64_t pg = 2; (off_t)(pg + 1) * r->psize <= r->size; pg++) {
		uint64_t no;

		raw_read(r, pg);
		memcpy(&no, r->p, 8);
		if (no != pg || (raw_u16(r->p + 10) & 0x7f) != type)
			continue;
		if (key != NULL && memmem(r->p, (size_t)r->psize, key, strlen(key)) != NULL)
			return pg;
		if (key == NULL)
			found = pg;
	}
	ck_assert_msg(found != 0, "no page of type %u holding %s", type, key ? key : "anything");
	raw_read(r, found);
	return found;
}

/* The node of the page in r->p whose key is key. */
static unsigned char *
raw_node(rawpage *r, const char *key)
{
	unsigned nkeys = (raw_u16(r->p + 12) - 16u) / 2;

	for (unsigned i = 0; i < nkeys; i++) {
		unsigned char *n = r->p + raw_u16(r->p + 16 + 2 * i);

		if (raw_u16(n + 6) == strlen(key) && memcmp(n + 8, key, strlen(key)) == 0)
			return n;
	}
	ck_abort_msg("no node %s", key);
	return NULL;
}

static int
count_rec(void *ud, const char *key, const char *val)
{
	(void)key;
	(void)val;
	(*(int *)ud)++;
	return 0;
}

static int
count_line(void *ud, const char *line, size_t len)
{
	(void)line;
	(void)len;
	(*(int *)ud)++;
	return 0;
}

/* e is CORRUPT and the error names the damage. */
static void
assert_damaged(bw_store *s, bw_store_err e, const char *what, const char *op)
{
	ck_assert_msg(e == BW_STORE_CORRUPT && strstr(bw_store_last_error(s), "damaged"),
	    "%s: %s: want CORRUPT, got %s: %s", what, op, bw_store_strerror(e),
	    bw_store_last_error(s));
}

/* An undamaged big store works as a small one: every read, write, delete, scan. */
START_TEST(test_lmdb_big_store)
{
	char key[32], val[64], *v = NULL;
	bw_store_kv kv[600];
	char keys[600][32];
	int n = 0;
	bw_store *s;

	fx_begin(BE_LMDB);
	big_threshold();
	big_store();
	s = fx_open();
	ck_assert_int_eq(bw_store_scan(s, BW_TBL_CONSENT, "", count_rec, &n), BW_STORE_OK);
	ck_assert_int_eq(n, BIG_N);
	ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, BIG_KEY, &v), BW_STORE_OK);
	ck_assert_int_eq(strlen(v), BIG_VAL_LEN);
	free(v);
	for (int i = 0; i < BIG_N; i += 997) {
		snprintf(key, sizeof(key), "c:%07d", i);
		ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, key, &v), BW_STORE_OK);
		snprintf(val, sizeof(val), "\"n\":%d}", i);
		ck_assert_msg(strstr(v, val) != NULL, "%s: %s", key, v);
		free(v);
	}
	/* deletes, one by one and in a batch with puts, empty whole leaves */
	for (int i = 3000; i < 3300; i++) {
		snprintf(key, sizeof(key), "c:%07d", i);
		ck_assert_int_eq(bw_store_del(s, BW_TBL_CONSENT, key), BW_STORE_OK);
	}
	for (int i = 0; i < 600; i++) {
		snprintf(keys[i], sizeof(keys[i]), "c:%07d%s", 12000 + i / 2 * 7, i % 2 ? "b" : "");
		kv[i].tbl = BW_TBL_CONSENT;
		kv[i].key = keys[i];
		kv[i].val = i % 2 ? "{\"new\":1}" : NULL;
	}
	ck_assert_int_eq(bw_store_write_many(s, kv, 600), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "c:9999999", "{\"last\":1}"), BW_STORE_OK);
	ck_assert_int_eq(bw_store_counter_add(s, "x", 1, NULL), BW_STORE_OK);
	bw_store_close(s);

	s = fx_open();
	n = 0;
	ck_assert_int_eq(bw_store_scan(s, BW_TBL_CONSENT, "", count_rec, &n), BW_STORE_OK);
	ck_assert_int_eq(n, BIG_N - 300 - 300 + 300 + 1);
	n = 0;
	ck_assert_int_eq(bw_store_scan(s, BW_TBL_CONSENT, "c:001", count_rec, &n), BW_STORE_OK);
	ck_assert_int_eq(n, 10000); /* 300 deleted, 300 new */
	n = 0;
	ck_assert_int_eq(bw_store_dump(s, count_line, &n), BW_STORE_OK);
	ck_assert_int_ge(n, BIG_N - 299);
	ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, "c:0003100", &v), BW_STORE_NOTFOUND);
	ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, "c:0012007b", &v), BW_STORE_OK);
	free(v);
	bw_store_close(s);
	fx_end();
}
END_TEST

/* How a branch page goes bad. */
typedef enum { BD_GARBAGE, BD_ONE_KEY, BD_CHILD } branch_dmg;

static const struct {
	const char *what;
	branch_dmg how;
} branch_rows[] = {
	{ "garbage over a branch page", BD_GARBAGE },
	{ "a branch page with one key (LMDB asserts two)", BD_ONE_KEY },
	{ "a branch node pointing past the file", BD_CHILD },
};

/* A damaged branch page: the open refuses the store, read-write or read-only. */
START_TEST(test_lmdb_big_branch_damaged)
{
	bw_store_opts ro = { .readonly = 1 };
	char err[512], want[64];
	uint64_t pg;
	rawpage r;

	fx_begin(BE_LMDB);
	big_threshold();
	big_store();
	r = raw_open();
	pg = raw_find(&r, RAW_BRANCH, NULL);
	switch (branch_rows[_i].how) {
	case BD_GARBAGE:
		garbage(r.fd, (off_t)pg * r.psize, (size_t)r.psize, 7);
		break;
	case BD_ONE_KEY:
		raw_set16(r.p + 12, 16 + 2);
		raw_write(&r, pg);
		break;
	case BD_CHILD: {
		unsigned char *n = r.p + raw_u16(r.p + 16 + 2);

		raw_set16(n, 0xfff0);
		raw_set16(n + 2, 0x7fff);
		raw_write(&r, pg);
		break;
	}
	}
	raw_close(&r);
	snprintf(want, sizeof(want), "page %llu", (unsigned long long)pg);
	open_fails(fx.spec, &fx.opts, BW_STORE_CORRUPT, err, sizeof(err));
	ck_assert_msg(strstr(err, "damaged") && strstr(err, want), "%s: %s", branch_rows[_i].what, err);
	open_fails(fx.spec, &ro, BW_STORE_CORRUPT, err, sizeof(err));
	ck_assert_msg(strstr(err, "damaged") && strstr(err, want), "%s: %s", branch_rows[_i].what, err);
	fx_end();
}
END_TEST

/* How the leaf holding BIG_KEY goes bad (or its overflow page). */
typedef enum {
	LD_ZERO, LD_GARBAGE, LD_BODY, LD_PTRS, LD_LOWER, LD_DUPDATA, LD_SUBDATA, LD_DSIZE,
	LD_OVPGNO, LD_OVERFLOW, LD_PGNO
} leaf_dmg;

static const struct {
	const char *what;
	leaf_dmg how;
} leaf_rows[] = {
	{ "the leaf zeroed", LD_ZERO },
	{ "garbage over the leaf", LD_GARBAGE },
	{ "garbage behind a sound leaf header", LD_BODY },
	{ "the pointer array scrambled", LD_PTRS },
	{ "a free-space bound inside the header (LMDB: SIGSEGV)", LD_LOWER },
	{ "a node flagged as sorted duplicates (LMDB: SIGSEGV)", LD_DUPDATA },
	{ "a node flagged as a table", LD_SUBDATA },
	{ "a node's data size past the page", LD_DSIZE },
	{ "a big node pointing past the file", LD_OVPGNO },
	{ "garbage over the overflow page", LD_OVERFLOW },
	{ "the leaf says it is another page", LD_PGNO },
};

/*
 * A damaged leaf: the open does not see it; each operation that reaches it
 * says CORRUPT (never a crash, nor records silently missing), the rest of
 * the store still works, and a full check at open refuses it.
 */
START_TEST(test_lmdb_big_leaf_damaged)
{
	const char *what = leaf_rows[_i].what;
	bw_store_opts ro = { .readonly = 1 };
	bw_store_key gk[2] = { { BW_TBL_CONSENT, "c:0000005" }, { BW_TBL_CONSENT, BIG_KEY } };
	char *vals[2] = { NULL, NULL }, *v = NULL, err[512];
	unsigned char *node;
	unsigned seed = 11;
	uint64_t pg, ov;
	int n = 0;
	rawpage r;
	bw_store *s;

	fx_begin(BE_LMDB);
	big_threshold();
	big_store();
	r = raw_open();
	pg = raw_find(&r, RAW_LEAF, BIG_KEY);
	node = raw_node(&r, BIG_KEY);
	ck_assert(raw_u16(node + 4) & 1); /* F_BIGDATA */
	memcpy(&ov, node + 8 + raw_u16(node + 6), 8);
	switch (leaf_rows[_i].how) {
	case LD_ZERO: memset(r.p, 0, (size_t)r.psize); break;
	case LD_GARBAGE: for (long i = 0; i < r.psize; i++) r.p[i] = (unsigned char)rand_r(&seed); break;
	case LD_BODY: for (long i = 16; i < r.psize; i++) r.p[i] = (unsigned char)rand_r(&seed); break;
	case LD_PTRS:
		for (unsigned i = 16; i < raw_u16(r.p + 12); i++)
			r.p[i] = (unsigned char)rand_r(&seed);
		break;
	case LD_LOWER: raw_set16(r.p + 12, 2); break;
	case LD_DUPDATA: node[4] |= 0x04; break;
	case LD_SUBDATA: node[4] = 0x02; break;
	case LD_DSIZE: {
		unsigned char *first = r.p + raw_u16(r.p + 16);

		if (first == node)
			first = r.p + raw_u16(r.p + 18);
		raw_set16(first, 0xffff);
		raw_set16(first + 2, 0x00ff);
		break;
	}
	case LD_OVPGNO: ov = (uint64_t)1 << 40; memcpy(node + 8 + raw_u16(node + 6), &ov, 8); break;
	case LD_OVERFLOW: pg = ov; garbage(r.fd, (off_t)ov * r.psize, (size_t)r.psize, 5); break;
	case LD_PGNO: r.p[0] ^= 1; break;
	}
	if (leaf_rows[_i].how != LD_OVERFLOW)
		raw_write(&r, pg);
	raw_close(&r);

	s = fx_open(); /* the leaf is not read at open */
	assert_damaged(s, bw_store_get(s, BW_TBL_CONSENT, BIG_KEY, &v), what, "get");
	ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, "c:0000005", &v), BW_STORE_OK);
	free(v);
	ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, "c:0019990", &v), BW_STORE_OK);
	free(v);
	assert_damaged(s, bw_store_get_many(s, gk, 2, vals), what, "get_many");
	ck_assert(vals[0] == NULL && vals[1] == NULL);
	assert_damaged(s, bw_store_scan(s, BW_TBL_CONSENT, "", count_rec, &n), what, "scan");
	assert_damaged(s, bw_store_scan(s, BW_TBL_CONSENT, "c:001", count_rec, &n), what,
	    "prefix scan");
	n = 0;
	ck_assert_int_eq(bw_store_scan(s, BW_TBL_CONSENT, "c:000000", count_rec, &n), BW_STORE_OK);
	ck_assert_int_eq(n, 10);
	assert_damaged(s, bw_store_dump(s, count_line, &n), what, "dump");
	assert_damaged(s, bw_store_put(s, BW_TBL_CONSENT, BIG_KEY "a", "{}"), what, "put");
	assert_damaged(s, bw_store_del(s, BW_TBL_CONSENT, BIG_KEY), what, "delete");
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "c:9999999", "{}"), BW_STORE_OK);
	ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, "c:9999999", &v), BW_STORE_OK);
	free(v);
	bw_store_close(s);

	s = bw_store_open(fx.spec, &ro, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s: read-only open: %s", what, err);
	assert_damaged(s, bw_store_get(s, BW_TBL_CONSENT, BIG_KEY, &v), what, "read-only get");
	bw_store_close(s);

	/* checked whole at open, the store is refused */
	ck_assert_int_eq(unsetenv("BW_STORE_VERIFY_FULL_MAX"), 0);
	open_fails(fx.spec, &fx.opts, BW_STORE_CORRUPT, err, sizeof(err));
	ck_assert_msg(strstr(err, "damaged"), "%s: %s", what, err);
	fx_end();
}
END_TEST

/*
 * Random damage to a big store, many times: the open refuses it, or every
 * operation after works or says CORRUPT; nothing crashes (a crash fails
 * the test).
 */
START_TEST(test_lmdb_big_damage_random)
{
	char path[sizeof(fx.store_dir) + 16], err[512], keys[8][32];
	unsigned char *orig;
	unsigned seed = 20240917;
	int refused = 0, opened = 0, corrupt = 0;
	struct stat sb;
	int fd;

	fx_begin(BE_LMDB);
	big_threshold();
	big_store();
	data_path(path, sizeof(path));
	ck_assert_int_ge(fd = open(path, O_RDWR), 0);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	orig = malloc((size_t)sb.st_size);
	ck_assert_int_eq(pread(fd, orig, (size_t)sb.st_size, 0), sb.st_size);
	for (int round = 0; round < 60; round++) {
		off_t psize = sysconf(_SC_PAGESIZE), pages = sb.st_size / psize;
		bw_store_key gk[8];
		bw_store_kv kv[8];
		char *vals[8];
		bw_store_err e;
		int n = 0;
		bw_store *s;

		ck_assert_int_eq(pwrite(fd, orig, (size_t)sb.st_size, 0), sb.st_size);
		for (int k = 0; k < 3; k++) {
			off_t pg = 2 + rand_r(&seed) % (pages - 2);

			switch ((round + k) % 3) {
			case 0: garbage(fd, pg * psize, (size_t)psize, (unsigned)round); break;
			case 1: garbage(fd, pg * psize + rand_r(&seed) % 16, 2, (unsigned)round); break;
			case 2: garbage(fd, pg * psize + 16 + rand_r(&seed) % (psize - 80),
			    1 + rand_r(&seed) % 64, (unsigned)round); break;
			}
		}
		if (bw_store_open_status(fx.spec, &fx.opts, &s, err, sizeof(err)) != BW_STORE_OK) {
			ck_assert_msg(strstr(err, "damaged"), "round %d: %s", round, err);
			refused++;
			continue;
		}
		opened++;
		for (int i = 0; i < 8; i++) {
			snprintf(keys[i], sizeof(keys[i]), "c:%07d", (int)(rand_r(&seed) % (BIG_N + 100)));
			gk[i].tbl = kv[i].tbl = BW_TBL_CONSENT;
			gk[i].key = kv[i].key = keys[i];
			kv[i].val = i % 3 ? "{\"again\":1}" : NULL;
		}
		for (int op = 0; op < 8; op++) {
			switch (op) {
			case 0:
				e = bw_store_get_many(s, gk, 8, vals);
				for (int i = 0; e == BW_STORE_OK && i < 8; i++)
					free(vals[i]);
				break;
			case 1: e = bw_store_scan(s, BW_TBL_CONSENT, "", count_rec, &n); break;
			case 2: e = bw_store_scan(s, BW_TBL_CONSENT, keys[0], count_rec, &n); break;
			case 3: e = bw_store_dump(s, count_line, &n); break;
			case 4: e = bw_store_write_many(s, kv, 8); break;
			case 5: e = bw_store_del(s, BW_TBL_CONSENT, keys[1]); break;
			case 6: e = bw_store_put(s, BW_TBL_CONSENT, keys[2], "{\"n\":1}"); break;
			default: e = bw_store_counter_add(s, "new", 1, NULL); break;
			}
			ck_assert_msg(e == BW_STORE_OK || e == BW_STORE_NOTFOUND
			    || (e == BW_STORE_CORRUPT && strstr(bw_store_last_error(s), "damaged")),
			    "round %d op %d: %s: %s", round, op, bw_store_strerror(e),
			    bw_store_last_error(s));
			corrupt += e == BW_STORE_CORRUPT;
		}
		bw_store_close(s);
	}
	close(fd);
	free(orig);
	ck_assert_int_gt(refused, 0);
	ck_assert_int_gt(opened, 0);
	ck_assert_int_gt(corrupt, 0);
	fx_end();
}
END_TEST

START_TEST(test_lmdb_permission)
{
	char path[sizeof(fx.store_dir) + 16], msg[600] = "";
	int pfd[2], status;
	ssize_t n;
	pid_t pid;

	fx_begin(BE_LMDB);
	fill_store(10);
	/* the daemon's user may reach the directory but not write its files */
	chmod(fx.dir, 0711);
	chmod(fx.store_dir, 0755);
	snprintf(path, sizeof(path), "%s/data.mdb", fx.store_dir);
	chmod(path, 0400);
	snprintf(path, sizeof(path), "%s/lock.mdb", fx.store_dir);
	chmod(path, 0400);
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	if (pid == 0) {
		char err[512] = "";
		bw_store *s;
		bw_store_err e;

		close(pfd[0]);
		if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0
		    || setuid(65534) != 0))
			_exit(3);
		e = bw_store_open_status(fx.spec, &fx.opts, &s, err, sizeof(err));
		dprintf(pfd[1], "%d %s", (int)e, err);
		_exit(0);
	}
	close(pfd[1]);
	n = read(pfd[0], msg, sizeof(msg) - 1);
	close(pfd[0]);
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	ck_assert_int_gt(n, 0);
	msg[n] = 0;
	ck_assert_msg(atoi(msg) == BW_STORE_UNAVAILABLE, "want UNAVAILABLE: %s", msg);
	ck_assert_msg(strstr(msg, fx.store_dir) && strstr(msg, "Permission denied"), "%s", msg);
	fx_end();
}
END_TEST

/* A process that dies inside a read transaction leaves its reader slot behind. */
static void
die_reading(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		MDB_env *env;
		MDB_txn *txn;

		if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 32) != 0
		    || mdb_env_open(env, fx.store_dir, MDB_RDONLY, 0) != 0
		    || mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
			_exit(1);
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFSIGNALED(status), "child status %#x", status);
}

START_TEST(test_lmdb_stale_readers)
{
	int status, cleared = -1, ready[2], hold[2];
	char c;
	pid_t holder;
	bw_store *s;

	fx_begin(BE_LMDB);
	fill_store(1);
	/* another process keeps the environment open, so LMDB does not reset its
	 * reader table at the next open: a stale slot has to be cleared */
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(hold), 0);
	holder = fork();
	if (holder == 0) {
		MDB_env *env;

		close(ready[0]);
		close(hold[1]);
		if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 32) != 0
		    || mdb_env_open(env, fx.store_dir, MDB_RDONLY, 0) != 0
		    || write(ready[1], "r", 1) != 1)
			_exit(1);
		_exit(read(hold[0], &c, 1) == 0 ? 0 : 2); /* until the parent closes its end */
	}
	close(ready[1]);
	close(hold[0]);
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	die_reading();
	/* cleared at open, reported by the first check */
	s = fx_open();
	ck_assert_int_eq(bw_store_check(s, &cleared), BW_STORE_OK);
	ck_assert_int_eq(cleared, 1);
	ck_assert_int_eq(bw_store_check(s, &cleared), BW_STORE_OK);
	ck_assert_int_eq(cleared, 0);
	/* cleared by a check while open */
	die_reading();
	ck_assert_int_eq(bw_store_check(s, &cleared), BW_STORE_OK);
	ck_assert_int_eq(cleared, 1);
	bw_store_close(s);
	close(hold[1]);
	waitpid(holder, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "holder status %#x", status);
	fx_end();
}
END_TEST

/* Another process (bulkwardenctl with a larger MapSize) grows the map. */
START_TEST(test_lmdb_map_grown_elsewhere)
{
	int status;
	int64_t nv;
	pid_t pid;
	bw_store *s;

	fx_begin(BE_LMDB);
	fx.opts.map_size = 1024 * 1024;
	s = fx_open();
	ck_assert_int_eq(bw_store_counter_add(s, "a", 1, NULL), BW_STORE_OK);
	pid = fork();
	if (pid == 0) {
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		char val[1024] = { 0 };

		if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 32) != 0
		    || mdb_env_set_mapsize(env, 64 * 1024 * 1024) != 0
		    || mdb_env_open(env, fx.store_dir, 0, 0640) != 0
		    || mdb_txn_begin(env, NULL, 0, &txn) != 0
		    || mdb_dbi_open(txn, "filler", MDB_CREATE, &dbi) != 0)
			_exit(1);
		for (int i = 0; i < 3000; i++) {
			char key[16];
			MDB_val k = { (size_t)snprintf(key, sizeof(key), "%06d", i), key };
			MDB_val d = { sizeof(val), val };

			if (mdb_put(txn, dbi, &k, &d, 0) != 0)
				_exit(2);
		}
		_exit(mdb_txn_commit(txn) == 0 ? 0 : 3);
	}
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	ck_assert_int_eq(bw_store_counter_add(s, "a", 1, &nv), BW_STORE_OK);
	ck_assert_int_eq(nv, 2);
	assert_counter(s, "a", 2);
	bw_store_close(s);
	fx_end();
}
END_TEST

/* A store written before the record tables existed: meta and counters only. */
START_TEST(test_lmdb_old_store)
{
	bw_store_opts ro = { .readonly = 1 };
	bw_store_key k[] = { { BW_TBL_CONSENT, "acme x" }, { BW_TBL_SUPPRESS, "* x" } };
	char err[512], *vals[2] = { (char *)"junk", (char *)"junk" }, *v;
	unsigned char buf[8] = { 0, 0, 0, 0, 0, 0, 0, 1 }, twelve[8] = { 0, 0, 0, 0, 0, 0, 0, 12 };
	MDB_val sk = { 6, "schema" }, sv = { 8, buf }, ck = { 8, "messages" }, cv = { 8, twelve };
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta, counters, dbi;
	bw_store *s;
	got g = { 0 };
	text t;

	fx_begin(BE_LMDB);
	ck_assert_int_eq(mkdir(fx.store_dir, 0750), 0);
	env = raw_env(0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "counters", MDB_CREATE, &counters), 0);
	ck_assert_int_eq(mdb_put(txn, meta, &sk, &sv, 0), 0);
	ck_assert_int_eq(mdb_put(txn, counters, &ck, &cv, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	s = bw_store_open(fx.spec, &ro, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	assert_counter(s, "messages", 12);
	assert_norec(s, BW_TBL_CONSENT, "acme x");
	ck_assert_int_eq(bw_store_get_many(s, k, 2, vals), BW_STORE_OK);
	ck_assert(vals[0] == NULL && vals[1] == NULL);
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), 0);
	ck_assert_uint_eq(count_of(s, BW_TBL_SUPPRESS), 0);
	ck_assert_int_eq(bw_store_scan(s, BW_TBL_SUPPRESS, "", got_rec, &g), BW_STORE_OK);
	ck_assert_int_eq(g.n, 0);
	t = dump_of(s);
	ck_assert_int_eq(t.lines, 2);
	free(t.buf);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme x", V1), BW_STORE_INVALID);
	bw_store_close(s);
	/* nothing was created by the read-only open */
	env = raw_env(0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "consent", 0, &dbi), MDB_NOTFOUND);
	mdb_txn_abort(txn);
	mdb_env_close(env);

	/* a writable open adds the tables */
	s = fx_open();
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme x", V1), BW_STORE_OK);
	bw_store_close(s);
	s = bw_store_open(fx.spec, &ro, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	assert_rec(s, BW_TBL_CONSENT, "acme x", V1);
	assert_counter(s, "messages", 12);
	ck_assert_uint_eq(count_of(s, BW_TBL_CONSENT), 1);
	v = NULL;
	ck_assert_int_eq(bw_store_get(s, BW_TBL_SUPPRESS, "* x", &v), BW_STORE_NOTFOUND);
	bw_store_close(s);
	fx_end();
}
END_TEST

/* Leaf pages of a table, read with LMDB itself. */
static size_t
leaf_pages(const char *dir, const char *table)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 32);
	ck_assert_int_eq(mdb_env_open(env, dir, MDB_RDONLY, 0), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, table, 0, &dbi), 0);
	ck_assert_int_eq(mdb_stat(txn, dbi, &st), 0);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return st.ms_leaf_pages;
}

/* A sorted import appends: full pages, where the same records shuffled split them. */
START_TEST(test_lmdb_sorted_import_appends)
{
	char dir2[sizeof(fx.dir) + 16];
	bulk b = bulk_make(BW_TBL_CONSENT, "acme r", 8000, 0);
	bw_store_kv *shuf = malloc(b.n * sizeof(*shuf));
	size_t sorted_pages, shuffled_pages;
	bw_store *s, *s2;
	got g1, g2;

	fx_begin(BE_LMDB);
	snprintf(dir2, sizeof(dir2), "%s/store2", fx.dir);
	for (size_t i = 0; i < b.n; i++)
		shuf[i] = b.kv[(i * 7919) % b.n];   /* 7919 is prime: a permutation */
	s = fx_open();
	s2 = fx_open_spec(fx.spec2);
	for (size_t i = 0; i < b.n; i += 2000) {
		ck_assert_int_eq(bw_store_write_many(s, b.kv + i, 2000), BW_STORE_OK);
		ck_assert_int_eq(bw_store_write_many(s2, shuf + i, 2000), BW_STORE_OK);
	}
	g1 = scan_of(s, BW_TBL_CONSENT, "");
	g2 = scan_of(s2, BW_TBL_CONSENT, "");
	ck_assert_int_eq(g1.n, 8000);
	ck_assert_int_eq(g2.n, 8000);
	for (int i = 0; i < g1.n; i++) {
		ck_assert_str_eq(g1.keys[i], b.kv[i].key);
		ck_assert_str_eq(g1.vals[i], b.kv[i].val);
		ck_assert_str_eq(g2.keys[i], b.kv[i].key);
		ck_assert_str_eq(g2.vals[i], b.kv[i].val);
	}
	got_free(&g1);
	got_free(&g2);
	bw_store_close(s);
	bw_store_close(s2);
	sorted_pages = leaf_pages(fx.store_dir, "consent");
	shuffled_pages = leaf_pages(dir2, "consent");
	ck_assert_msg(sorted_pages * 10 < shuffled_pages * 8, "leaf pages: sorted %zu, shuffled %zu",
	    sorted_pages, shuffled_pages);
	free(shuf);
	bulk_free(&b);
	fx_end();
}
END_TEST

/*
 * A scan's callback reads while another thread waits to adopt a map that
 * another process grew: the read must not wait behind it (that would never
 * end); it may fail. After the scan the waiting thread goes on.
 */
typedef struct resize_ctx {
	bw_store *s;
	pthread_t writer;
	int started;
	bw_store_err writer_err;
	bw_store_err nested_err;
	int calls;
} resize_ctx;

static void *
resize_writer(void *arg)
{
	resize_ctx *c = arg;

	c->writer_err = bw_store_counter_add(c->s, "after", 1, NULL);
	return NULL;
}

static void
grow_map_elsewhere(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		char val[1024] = { 0 };

		if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 32) != 0
		    || mdb_env_set_mapsize(env, 64 * 1024 * 1024) != 0
		    || mdb_env_open(env, fx.store_dir, 0, 0640) != 0
		    || mdb_txn_begin(env, NULL, 0, &txn) != 0
		    || mdb_dbi_open(txn, "filler", MDB_CREATE, &dbi) != 0)
			_exit(1);
		for (int i = 0; i < 3000; i++) {
			char key[16];
			MDB_val k = { (size_t)snprintf(key, sizeof(key), "%06d", i), key };
			MDB_val d = { sizeof(val), val };

			if (mdb_put(txn, dbi, &k, &d, 0) != 0)
				_exit(2);
		}
		_exit(mdb_txn_commit(txn) == 0 ? 0 : 3);
	}
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}

static int
resize_scan_fn(void *ud, const char *key, const char *val)
{
	resize_ctx *c = ud;
	char *v = NULL;

	(void)key;
	(void)val;
	if (c->calls++ > 0)
		return 0;
	grow_map_elsewhere();
	pthread_create(&c->writer, NULL, resize_writer, c);
	c->started = 1;
	usleep(300000);   /* the writer is now waiting to resize */
	c->nested_err = bw_store_get(c->s, BW_TBL_CONSENT, "acme r0000001", &v);
	free(v);
	return 0;
}

START_TEST(test_lmdb_scan_reads_during_resize)
{
	resize_ctx c = { 0 };
	bulk b = bulk_make(BW_TBL_CONSENT, "acme r", 50, 0);

	fx_begin(BE_LMDB);
	fx.opts.map_size = 1024 * 1024;
	c.s = fx_open();
	ck_assert_int_eq(bw_store_write_many(c.s, b.kv, b.n), BW_STORE_OK);
	ck_assert_int_eq(bw_store_scan(c.s, BW_TBL_CONSENT, "", resize_scan_fn, &c), BW_STORE_OK);
	ck_assert_int_eq(c.calls, 50);
	ck_assert(c.started);
	/* the nested read found the record, or said why not; it did not hang */
	ck_assert_msg(c.nested_err == BW_STORE_OK || c.nested_err == BW_STORE_IO, "nested: %s",
	    bw_store_strerror(c.nested_err));
	pthread_join(c.writer, NULL);
	ck_assert_int_eq(c.writer_err, BW_STORE_OK);
	assert_counter(c.s, "after", 1);
	assert_rec(c.s, BW_TBL_CONSENT, "acme r0000049", b.kv[49].val);
	bw_store_close(c.s);
	bulk_free(&b);
	fx_end();
}
END_TEST

/* ---------------------------------------------------------------- Redis only */
#ifdef HAVE_REDIS

START_TEST(test_redis_keys)
{
	redisContext *c;
	redisReply *r;
	bw_store *s;
	char err[512];

	fx_begin(BE_REDIS);
	s = fx_open();
	populate(s);
	ck_assert_int_eq(restore_str(s, GOOD1, err, sizeof(err)), BW_STORE_OK);
	c = redis_raw();
	r = redisCommand(c, "KEYS *");
	ck_assert(r != NULL && r->type == REDIS_REPLY_ARRAY);
	ck_assert_int_eq(r->elements, 2);
	for (size_t i = 0; i < r->elements; i++)
		ck_assert_msg(strncmp(r->element[i]->str, "bw:{", 4) == 0
		    && strchr(r->element[i]->str, '}'), "key %s", r->element[i]->str);
	freeReplyObject(r);
	/* another database of the same server is another store */
	r = redisCommand(c, "SELECT 1");
	freeReplyObject(r);
	r = redisCommand(c, "KEYS *");
	ck_assert_int_eq(r->elements, 0);
	freeReplyObject(r);
	redisFree(c);
	bw_store_close(s);
	fx_end();
}
END_TEST

START_TEST(test_redis_dead)
{
	bw_store_err e;
	bw_store *s;
	double t0, took;
	int64_t v;

	fx_begin(BE_REDIS);
	s = fx_open();
	ck_assert_int_eq(bw_store_counter_add(s, "x", 1, NULL), BW_STORE_OK);
	redis_kill();
	t0 = now_s();
	e = bw_store_counter_add(s, "x", 1, NULL);
	took = now_s() - t0;
	ck_assert_msg(e == BW_STORE_UNAVAILABLE, "got %s", bw_store_strerror(e));
	ck_assert_msg(took < 2.0, "took %.3f s", took);
	ck_assert_msg(strstr(bw_store_last_error(s), fx.sock), "%s", bw_store_last_error(s));
	ck_assert_int_eq(bw_store_counter_get(s, "x", &v), BW_STORE_UNAVAILABLE);
	ck_assert_int_eq(bw_store_check(s, NULL), BW_STORE_UNAVAILABLE);
	{
		bw_store_key k[] = { { BW_TBL_CONSENT, "acme x" }, { BW_TBL_SUPPRESS, "* x" } };
		bw_store_kv kv[] = { { BW_TBL_CONSENT, "acme x", V1 }, { BW_TBL_SUPPRESS, "* x", NULL } };
		char *vals[2] = { NULL, NULL }, *val = NULL;
		uint64_t n;

		t0 = now_s();
		ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, "acme x", &val), BW_STORE_UNAVAILABLE);
		ck_assert_int_eq(bw_store_get_many(s, k, 2, vals), BW_STORE_UNAVAILABLE);
		ck_assert(vals[0] == NULL && vals[1] == NULL);
		ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme x", V1), BW_STORE_UNAVAILABLE);
		ck_assert_int_eq(bw_store_del(s, BW_TBL_CONSENT, "acme x"), BW_STORE_UNAVAILABLE);
		ck_assert_int_eq(bw_store_write_many(s, kv, 2), BW_STORE_UNAVAILABLE);
		ck_assert_int_eq(bw_store_scan(s, BW_TBL_CONSENT, "", got_rec, NULL),
		    BW_STORE_UNAVAILABLE);
		ck_assert_int_eq(bw_store_count(s, BW_TBL_CONSENT, &n), BW_STORE_UNAVAILABLE);
		ck_assert_msg(now_s() - t0 < 2.0, "took %.3f s", now_s() - t0);
		ck_assert_msg(strstr(bw_store_last_error(s), fx.sock), "%s", bw_store_last_error(s));
	}
	/* the handle recovers once the server is back (empty: no persistence here) */
	redis_spawn();
	ck_assert_int_eq(bw_store_counter_add(s, "x", 5, &v), BW_STORE_OK);
	ck_assert_int_eq(v, 5);
	/* and again, with no call in between: idle connections that died are noticed */
	redis_kill();
	redis_spawn();
	ck_assert_int_eq(bw_store_counter_add(s, "x", 1, &v), BW_STORE_OK);
	ck_assert_int_eq(v, 1);
	bw_store_close(s);
	fx_end();
}
END_TEST

START_TEST(test_redis_hung)
{
	bw_store_err e;
	bw_store *s;
	double t0, took;
	int64_t v;

	fx_begin(BE_REDIS);
	fx.opts.timeout_ms = 200;
	s = fx_open();
	ck_assert_int_eq(bw_store_counter_add(s, "x", 1, NULL), BW_STORE_OK);
	kill(fx.redis, SIGSTOP);
	for (int i = 0; i < 2; i++) {   /* a pooled connection, then a new one */
		t0 = now_s();
		e = bw_store_counter_get(s, "x", &v);
		took = now_s() - t0;
		ck_assert_msg(e == BW_STORE_UNAVAILABLE, "got %s", bw_store_strerror(e));
		ck_assert_msg(took >= 0.15 && took < 2.0, "took %.3f s", took);
		ck_assert_msg(strstr(bw_store_last_error(s), "no answer within 200 ms"), "%s",
		    bw_store_last_error(s));
	}
	{
		bw_store_key k[] = { { BW_TBL_CONSENT, "acme x" }, { BW_TBL_SUPPRESS, "* x" } };
		char *vals[2] = { NULL, NULL };

		t0 = now_s();
		e = bw_store_get_many(s, k, 2, vals);
		took = now_s() - t0;
		ck_assert_msg(e == BW_STORE_UNAVAILABLE, "got %s", bw_store_strerror(e));
		ck_assert_msg(took >= 0.15 && took < 2.0, "took %.3f s", took);
	}
	kill(fx.redis, SIGCONT);
	assert_counter(s, "x", 1);
	bw_store_close(s);
	fx_end();
}
END_TEST

START_TEST(test_redis_down_at_open)
{
	bw_store_opts ro = { .readonly = 1 };
	char err[512];
	bw_store *s;

	fx_begin(BE_REDIS);
	redis_kill();
	/* a tool wants an answer now */
	open_fails(fx.spec, &ro, BW_STORE_UNAVAILABLE, err, sizeof(err));
	ck_assert_msg(strstr(err, fx.sock) && strstr(err, "connect"), "%s", err);
	/* the daemon gets a handle that works once the server does */
	s = fx_open();
	ck_assert_int_eq(bw_store_counter_add(s, "x", 1, NULL), BW_STORE_UNAVAILABLE);
	redis_spawn();
	ck_assert_int_eq(bw_store_counter_add(s, "x", 1, NULL), BW_STORE_OK);
	assert_counter(s, "x", 1);
	bw_store_close(s);
	fx_end();
}
END_TEST

START_TEST(test_redis_specs)
{
	static const char *const bad[] = {
		"redis:", "redis:host", "redis:host:", "redis:host:0", "redis:host:70000",
		"redis:host:6379/x", "redis:host:6379/1/2", "redis:host:63x9", "redis:[::1]6379",
		"redis:[::1", "redis::6379", "redis:unix:relative.sock", "redis:unix:",
		"redis:host:6379/100000",
	};
	/* they parse; nothing listens there */
	static const char *const good[] = {
		"redis:127.0.0.1:1", "redis:127.0.0.1:1/3", "redis:[::1]:1", "redis:[::1]:1/15",
		"redis:localhost:1", "redis:unix:/nonexistent/redis.sock",
		"redis:unix:/nonexistent/redis.sock/2",
	};
	char err[512];

	fx.be = &backends[BE_REDIS];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		open_fails(bad[i], NULL, BW_STORE_INVALID, err, sizeof(err));
		ck_assert_msg(strstr(err, bad[i]), "%s: %s", bad[i], err);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		bw_store_opts ro = { .readonly = 1 };
		bw_store *s = bw_store_open(good[i], NULL, err, sizeof(err));
		double t0;

		ck_assert_msg(s != NULL, "%s: %s", good[i], err);
		ck_assert_str_eq(bw_store_spec(s), good[i]);
		t0 = now_s();
		ck_assert_int_eq(bw_store_counter_add(s, "x", 1, NULL), BW_STORE_UNAVAILABLE);
		ck_assert_msg(now_s() - t0 < 2.0, "%s: slow", good[i]);
		bw_store_close(s);
		open_fails(good[i], &ro, BW_STORE_UNAVAILABLE, err, sizeof(err));
		ck_assert_msg(strstr(err, "connect"), "%s: %s", good[i], err);
	}
}
END_TEST

/* A dump from LMDB restores into Redis, and Redis's dump back into LMDB. */
START_TEST(test_cross_backend)
{
	char spec_l1[PATH_MAX + 64], spec_l2[PATH_MAX + 64], err[512];
	bw_store *l1, *r, *l2;
	text a, b, c;

	fx_begin(BE_REDIS);
	snprintf(spec_l1, sizeof(spec_l1), "lmdb:%s/lmdb1", fx.dir);
	snprintf(spec_l2, sizeof(spec_l2), "lmdb:%s/lmdb2", fx.dir);
	l1 = fx_open_spec(spec_l1);
	populate(l1);
	populate_recs(l1);
	{
		bulk bk = bulk_make(BW_TBL_SUPPRESS, "s2 r", 700, 0);

		ck_assert_int_eq(bw_store_write_many(l1, bk.kv, bk.n), BW_STORE_OK);
		bulk_free(&bk);
	}
	for (int i = 0; i < 200; i++) {
		char name[32];

		snprintf(name, sizeof(name), "many:%03d", i);
		ck_assert_int_eq(bw_store_counter_add(l1, name, i * 1000003LL, NULL), BW_STORE_OK);
	}
	a = dump_of(l1);
	r = fx_open();
	ck_assert_int_eq(restore_str(r, a.buf, err, sizeof(err)), BW_STORE_OK);
	b = dump_of(r);
	ck_assert_str_eq(a.buf, b.buf);
	l2 = fx_open_spec(spec_l2);
	ck_assert_int_eq(restore_str(l2, b.buf, err, sizeof(err)), BW_STORE_OK);
	c = dump_of(l2);
	ck_assert_str_eq(a.buf, c.buf);
	ck_assert_int_eq(a.lines, 1 + 6 + 200 + 5 + 700);
	assert_rec(r, BW_TBL_CONSENT, "acme *@example.org", V3);
	ck_assert_uint_eq(count_of(r, BW_TBL_SUPPRESS), 702);
	bw_store_close(l1);
	bw_store_close(l2);
	bw_store_close(r);
	free(a.buf);
	free(b.buf);
	free(c.buf);
	fx_end();
}
END_TEST

/*
 * A fake server that answers the two commands of a new connection (the
 * schema read and write), then reads a little of the next one and hangs up
 * while the client is still writing.
 */
static void *
hangup_server(void *arg)
{
	int lfd = *(int *)arg, fd;
	char buf[4096];

	if ((fd = accept(lfd, NULL, NULL)) < 0)
		return NULL;
	if (read(fd, buf, sizeof(buf)) > 0 && write(fd, "$-1\r\n", 5) == 5
	    && read(fd, buf, sizeof(buf)) > 0 && write(fd, ":1\r\n", 4) == 4)
		(void)read(fd, buf, 100);
	close(fd);
	return NULL;
}

/* A connection that breaks under a write must not raise SIGPIPE in the caller. */
START_TEST(test_redis_no_sigpipe)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char spec[PATH_MAX + 64], err[512];
	size_t cap = 1024 * 1024, len = 0;
	char *input = malloc(cap);
	pthread_t tid;
	bw_store *s;
	int lfd;

	fx_begin(BE_LMDB);   /* a directory; no server */
	fx.be = &backends[BE_REDIS];
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%.90s/fake.sock", fx.dir);
	ck_assert_int_ge(lfd = socket(AF_UNIX, SOCK_STREAM, 0), 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	pthread_create(&tid, NULL, hangup_server, &lfd);
	snprintf(spec, sizeof(spec), "redis:unix:%s", sun.sun_path);
	s = fx_open_spec(spec);
	for (int i = 0; len + 128 < cap; i++)
		len += (size_t)snprintf(input + len, cap - len,
		    "{\"table\":\"counters\",\"key\":\"k%07d\",\"value\":%d}\n", i, i);
	ck_assert_int_eq(restore_str(s, input, err, sizeof(err)), BW_STORE_UNAVAILABLE);
	pthread_join(tid, NULL);
	close(lfd);
	bw_store_close(s);
	free(input);
	fx_end();
}
END_TEST

START_TEST(test_redis_record_keys)
{
	static const char *const want[] = { "bw:{meta}", "bw:consent:{acme}", "bw:consent:{nospace}",
		"bw:suppress:{*}", "bw:suppress:{acme}", "bw:consent:{}" };
	redisContext *c;
	redisReply *r;
	bw_store *s;

	fx_begin(BE_REDIS);
	s = fx_open();
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme bob@example.com", V1), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "acme *@example.com", V2), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, "nospace", V2), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_CONSENT, " lead", V2), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_SUPPRESS, "acme bob@example.com", V2), BW_STORE_OK);
	ck_assert_int_eq(bw_store_put(s, BW_TBL_SUPPRESS, "* bob@example.com", V3), BW_STORE_OK);
	c = redis_raw();
	r = redisCommand(c, "KEYS *");
	ck_assert(r != NULL && r->type == REDIS_REPLY_ARRAY);
	ck_assert_int_eq(r->elements, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		size_t j;

		for (j = 0; j < r->elements; j++)
			if (strcmp(r->element[j]->str, want[i]) == 0)
				break;
		ck_assert_msg(j < r->elements, "no key %s", want[i]);
	}
	freeReplyObject(r);
	/* a sender's records are one hash: one Cluster slot */
	r = redisCommand(c, "HGET bw:consent:{acme} %s", " bob@example.com");
	ck_assert(r != NULL && r->type == REDIS_REPLY_STRING);
	ck_assert_str_eq(r->str, V1);
	freeReplyObject(r);
	r = redisCommand(c, "HLEN bw:consent:{acme}");
	ck_assert_int_eq(r->integer, 2);
	freeReplyObject(r);
	r = redisCommand(c, "HGET bw:consent:{nospace} %s", "");
	ck_assert(r != NULL && r->type == REDIS_REPLY_STRING);
	freeReplyObject(r);
	redisFree(c);
	bw_store_close(s);
	fx_end();
}
END_TEST

/* A key in the records' namespace that is not a hash: the batch writes nothing. */
START_TEST(test_redis_foreign_key)
{
	bw_store_kv kv[] = {
		{ BW_TBL_CONSENT, "acme a@x", V1 },
		{ BW_TBL_CONSENT, "evil b@x", V1 },
		{ BW_TBL_SUPPRESS, "zed c@x", V2 },
	};
	redisContext *c;
	redisReply *r;
	bw_store *s;
	char *v = NULL;
	got g = { 0 };

	fx_begin(BE_REDIS);
	s = fx_open();
	c = redis_raw();
	r = redisCommand(c, "SET bw:consent:{evil} x");
	freeReplyObject(r);
	redisFree(c);
	ck_assert_int_eq(bw_store_write_many(s, kv, 3), BW_STORE_CORRUPT);
	ck_assert_msg(strstr(bw_store_last_error(s), "bw:consent:{evil}"), "%s",
	    bw_store_last_error(s));
	assert_norec(s, BW_TBL_CONSENT, "acme a@x");
	assert_norec(s, BW_TBL_SUPPRESS, "zed c@x");
	ck_assert_int_eq(bw_store_get(s, BW_TBL_CONSENT, "evil b@x", &v), BW_STORE_CORRUPT);
	ck_assert_int_eq(bw_store_scan(s, BW_TBL_CONSENT, "", got_rec, &g), BW_STORE_CORRUPT);
	got_free(&g);
	bw_store_close(s);
	fx_end();
}
END_TEST

static int
have_redis_server(void)
{
	return system("redis-server --version >/dev/null 2>&1") == 0;
}
#endif

/* ---------------------------------------------------------------- main */

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("contract");
	int nb = NBACKENDS;

#ifdef HAVE_REDIS
	if (!have_redis_server()) {
		fprintf(stderr, "test_store: redis-server not found: Redis cases not run\n");
		nb = 1;
	}
#endif
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_counter_add_get, 0, nb);
	tcase_add_loop_test(tc, test_counter_names, 0, nb);
	tcase_add_loop_test(tc, test_counter_scan, 0, nb);
	tcase_add_loop_test(tc, test_counter_add_many, 0, nb);
	tcase_add_loop_test(tc, test_counter_del_many, 0, nb);
	tcase_add_loop_test(tc, test_counter_concurrent, 0, nb);
	tcase_add_loop_test(tc, test_dump_restore_roundtrip, 0, nb);
	tcase_add_loop_test(tc, test_restore_bad_line, 0, nb);
	tcase_add_loop_test(tc, test_restore_merges, 0, nb);
	tcase_add_loop_test(tc, test_readonly, 0, nb);
	tcase_add_loop_test(tc, test_survives_kill9, 0, nb);
	tcase_add_loop_test(tc, test_schema_newer, 0, nb);
	tcase_add_loop_test(tc, test_full, 0, nb);
	tcase_add_loop_test(tc, test_error_per_thread, 0, nb);
	tcase_add_loop_test(tc, test_rec_put_get_del, 0, nb);
	tcase_add_loop_test(tc, test_rec_cas, 0, nb);
	tcase_add_loop_test(tc, test_rate_shared, 0, nb);
	tcase_add_loop_test(tc, test_rec_invalid, 0, nb);
	tcase_add_loop_test(tc, test_rec_get_many, 0, nb);
	tcase_add_loop_test(tc, test_rec_write_many, 0, nb);
	tcase_add_loop_test(tc, test_rec_bulk, 0, nb);
	tcase_add_loop_test(tc, test_rec_scan, 0, nb);
	tcase_add_loop_test(tc, test_rec_scan_many, 0, nb);
	tcase_add_loop_test(tc, test_rec_dump_restore, 0, nb);
	tcase_add_loop_test(tc, test_rec_restore_bad, 0, nb);
	tcase_add_loop_test(tc, test_rec_readonly, 0, nb);
	tcase_add_loop_test(tc, test_rec_full, 0, nb);
	tcase_add_loop_test(tc, test_rec_kill9_batch, 0, nb);
	tcase_add_test(tc, test_strerror_and_specs);
	suite_add_tcase(s, tc);

	tc = tcase_create("lmdb");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_lmdb_directory);
	tcase_add_loop_test(tc, test_lmdb_damaged, 0,
	    (int)(sizeof(damage_rows) / sizeof(damage_rows[0])));
	tcase_add_test(tc, test_lmdb_damage_random);
	tcase_add_test(tc, test_lmdb_keys_out_of_order);
	tcase_add_test(tc, test_lmdb_big_store);
	tcase_add_loop_test(tc, test_lmdb_big_branch_damaged, 0,
	    (int)(sizeof(branch_rows) / sizeof(branch_rows[0])));
	tcase_add_loop_test(tc, test_lmdb_big_leaf_damaged, 0,
	    (int)(sizeof(leaf_rows) / sizeof(leaf_rows[0])));
	tcase_add_test(tc, test_lmdb_big_damage_random);
	tcase_add_test(tc, test_lmdb_permission);
	tcase_add_test(tc, test_lmdb_stale_readers);
	tcase_add_test(tc, test_lmdb_map_grown_elsewhere);
	tcase_add_test(tc, test_lmdb_old_store);
	tcase_add_test(tc, test_lmdb_sorted_import_appends);
	tcase_add_test(tc, test_lmdb_scan_reads_during_resize);
	suite_add_tcase(s, tc);

#ifdef HAVE_REDIS
	if (nb > 1) {
		tc = tcase_create("redis");
		tcase_set_timeout(tc, 120);
		tcase_add_test(tc, test_redis_keys);
		tcase_add_test(tc, test_redis_dead);
		tcase_add_test(tc, test_redis_hung);
		tcase_add_test(tc, test_redis_down_at_open);
		tcase_add_test(tc, test_redis_specs);
		tcase_add_test(tc, test_cross_backend);
		tcase_add_test(tc, test_redis_record_keys);
		tcase_add_test(tc, test_redis_foreign_key);
		suite_add_tcase(s, tc);
	}
	tc = tcase_create("redis-client");
	tcase_add_test(tc, test_redis_no_sigpipe);
	suite_add_tcase(s, tc);
#endif
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
