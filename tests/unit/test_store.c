/*
 * test_store.c - the store's contract: the same cases run against every
 * backend (LMDB in a fresh directory; Redis, when built with it, against a
 * redis-server this program starts on a unix socket and kills at the end),
 * then each backend's own failures: a damaged LMDB file, permissions, stale
 * readers, a map grown by another process; a dead or hung Redis.
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
		static char mnames[300][16];
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
	tcase_add_loop_test(tc, test_counter_concurrent, 0, nb);
	tcase_add_loop_test(tc, test_dump_restore_roundtrip, 0, nb);
	tcase_add_loop_test(tc, test_restore_bad_line, 0, nb);
	tcase_add_loop_test(tc, test_restore_merges, 0, nb);
	tcase_add_loop_test(tc, test_readonly, 0, nb);
	tcase_add_loop_test(tc, test_survives_kill9, 0, nb);
	tcase_add_loop_test(tc, test_schema_newer, 0, nb);
	tcase_add_loop_test(tc, test_full, 0, nb);
	tcase_add_loop_test(tc, test_error_per_thread, 0, nb);
	tcase_add_test(tc, test_strerror_and_specs);
	suite_add_tcase(s, tc);

	tc = tcase_create("lmdb");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_lmdb_directory);
	tcase_add_loop_test(tc, test_lmdb_damaged, 0,
	    (int)(sizeof(damage_rows) / sizeof(damage_rows[0])));
	tcase_add_test(tc, test_lmdb_damage_random);
	tcase_add_test(tc, test_lmdb_keys_out_of_order);
	tcase_add_test(tc, test_lmdb_permission);
	tcase_add_test(tc, test_lmdb_stale_readers);
	tcase_add_test(tc, test_lmdb_map_grown_elsewhere);
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
