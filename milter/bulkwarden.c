/*
 * bulkwarden.c - the daemon: options, config, sockets, privileges, the filter
 * process (libmilter, and the one-click listener) and its reload and stop.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "callbacks.h"
#include "engine.h"
#include "log.h"
#include "oneclick.h"
#include "store.h"
#include "supervise.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

static const char *conf_path = BW_SYSCONFDIR "/bulkwarden/bulkwarden.conf";
static bw_conf boot;              /* the config the daemon started with */
static atomic_int stopping;
static int oneclick_fd = -1;        /* OneClickListen, bound before privileges go */
static _Atomic(oc_server *) oneclick; /* the filter process's listener */

static void
usage(void)
{
	fprintf(stderr, "usage: bulkwarden [-f] [-n] [-V] [-c config]\n"
	    "  -c FILE  configuration file (default %s)\n"
	    "  -f       stay in the foreground\n"
	    "  -n       check the configuration and the files it names, then exit\n"
	    "  -V       print the version and exit\n", conf_path);
	exit(2);
}

static void
print_errs(const bw_errs *e)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(stderr, "%s\n", e->msg[i]);
}

/* The line of the config file that sets key, for messages; 0 when none. */
static unsigned
conf_key_line(const char *path, const char *key)
{
	FILE *fp = fopen(path, "r");
	char line[8192];
	unsigned n = 0, found = 0;
	size_t kl = strlen(key);

	if (fp == NULL)
		return 0;
	while (found == 0 && fgets(line, sizeof(line), fp)) {
		const char *p = line;
		n++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == '\t' || p[kl] == '\n'
		    || p[kl] == 0))
			found = n;
	}
	fclose(fp);
	return found;
}

/* Keys only the daemon reads: checked at start and by -n. */
static void
check_daemon_keys(const bw_conf *c, bw_errs *errs)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[300];

	if (c->one_click_listen[0]
	    && !oc_listen_parse(c->one_click_listen, &ss, &len, err, sizeof(err)))
		bw_errs_add(errs, "%s:%u: OneClickListen: \"%.100s\": %s", conf_path,
		    conf_key_line(conf_path, "OneClickListen"), c->one_click_listen, err);
}

/* ---------------------------------------------------------------- privileges */

static int
lookup_user(const char *spec, uid_t *uid, gid_t *gid)
{
	char name[256], *colon;
	struct passwd *pw;

	snprintf(name, sizeof(name), "%s", spec);
	if ((colon = strchr(name, ':')) != NULL)
		*colon++ = 0;
	if ((pw = getpwnam(name)) == NULL) {
		fprintf(stderr, "bulkwarden: UserID: no such user \"%s\"\n", name);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (colon && *colon) {
		struct group *gr = getgrnam(colon);
		if (gr == NULL) {
			fprintf(stderr, "bulkwarden: UserID: no such group \"%s\"\n", colon);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

static int
drop_privileges(uid_t uid, gid_t gid)
{
	if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
		bw_log(LOG_CRIT, "cannot change to uid %ld gid %ld: %s", (long)uid, (long)gid,
		    strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		bw_log(LOG_CRIT, "root privileges could be regained: refusing to run");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- the filter process */

static void *
stats_thread(void *arg)
{
	bw_store **stp = arg;

	while (!atomic_load(&stopping)) {
		bw_policy *p = cb_policy();
		unsigned iv = p->conf.stats_interval;
		bw_policy_unref(p);
		for (unsigned i = 0; i < iv * 10 && !atomic_load(&stopping); i++)
			usleep(100000);
		if (*stp == NULL) {
			/* the store could not be opened at start: try again, quietly */
			bw_store_opts so = { .map_size = boot.map_size, .max_readers = boot.max_readers };
			char err[512];
			if ((*stp = bw_store_open(boot.store, &so, err, sizeof(err))) != NULL) {
				bw_log(LOG_NOTICE, "store: %s is open now", boot.store);
				cb_set_store(*stp);
			}
		}
		if (*stp) {
			bw_store_err e = bw_stats_flush(*stp);
			if (e != BW_STORE_OK)
				bw_log(LOG_WARNING, "store: cannot write the counters: %s",
				    bw_store_last_error(*stp));
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- one-click */

static bw_store *
oneclick_store(void)
{
	return cb_get_store();
}

static void
oneclick_start(void)
{
	oc_ops ops = { .policy = cb_policy, .store = oneclick_store };
	char err[300];
	oc_server *s;

	if (oneclick_fd < 0)
		return;
	/* the store may still be closed: requests get 503 until it opens */
	if ((s = oc_start(oneclick_fd, &ops, err, sizeof(err))) == NULL) {
		bw_log(LOG_ERR, "one-click: OneClickListen %s: %s: one-click unsubscribe is off",
		    boot.one_click_listen, err);
		return;
	}
	atomic_store(&oneclick, s);
	bw_log(LOG_INFO, "one-click: listening on %s", boot.one_click_listen);
}

/* Any thread, any number of times: the first call stops it. */
static void
oneclick_stop(void)
{
	oc_server *s = atomic_exchange(&oneclick, NULL);

	if (s) {
		oc_stop(s);
		bw_log(LOG_INFO, "one-click: stopped");
	}
}

/* quiet: the supervisor's own copy, kept for restarts; the filter process logs */
static void
reload(bool quiet)
{
	bw_errs errs = { 0 };
	bw_policy *p = bw_policy_load(conf_path, &errs);

	if (quiet) {
		if (p)
			cb_set_policy(p);
		bw_errs_free(&errs);
		return;
	}
	if (p == NULL) {
		bw_log(LOG_ERR, "reload: configuration has errors, the old one stays in force:");
		for (size_t i = 0; i < errs.n; i++)
			bw_log(LOG_ERR, "%s", errs.msg[i]);
		bw_errs_free(&errs);
		return;
	}
	bw_conf_diff_unreloadable(&boot, &p->conf, &errs);
	for (size_t i = 0; i < errs.n; i++)
		bw_log(LOG_WARNING, "reload: %s", errs.msg[i]);
	bw_errs_free(&errs);
	bw_log_set_level(bw_log_levelnum(p->conf.log_level));
	bw_log(LOG_NOTICE, "reload: configuration %s loaded (generation %llu)", conf_path,
	    (unsigned long long)p->generation);
	cb_set_policy(p);
}

/*
 * SIGUSR1: reload. SIGUSR2 (from the supervisor on SIGTERM): stop taking new
 * messages, let the ones in flight finish (30 s at most), then stop libmilter.
 * libmilter's own SIGTERM handling would drop the sessions in flight.
 */
static void *
signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGUSR1) {
			reload(false);
		} else if (sig == SIGUSR2) {
			cb_set_draining();
			bw_log(LOG_INFO, "stopping: %ld messages in flight", cb_inflight());
			for (int i = 0; i < 300 && cb_inflight() > 0; i++)
				usleep(100000);
			if (cb_inflight() > 0)
				bw_log(LOG_WARNING, "stopping with %ld messages still in flight "
				    "(the MTA retries them)", cb_inflight());
			oneclick_stop();
			smfi_stop();
			return NULL;
		}
	}
	return NULL;
}

static int
filter_main(void)
{
	static bw_store *st;
	static sigset_t ours;
	sigset_t all;
	pthread_t sig_tid, stats_tid;
	bw_store_opts so = { .map_size = boot.map_size, .max_readers = boot.max_readers };
	char err[512];
	int cleared = 0;

	/* LMDB is opened here, after the fork */
	if ((st = bw_store_open(boot.store, &so, err, sizeof(err))) == NULL) {
		bw_log(LOG_ERR, "store: %s: checks that need the store answer per OnStoreError", err);
	} else if (bw_store_check(st, &cleared) == BW_STORE_OK && cleared > 0) {
		bw_log(LOG_NOTICE, "store: cleared %d stale reader slots", cleared);
	}
	cb_set_store(st);
	/*
	 * Block every signal we or libmilter wait for before any thread starts, so
	 * that none lands in a thread that does not expect it. SIGUSR1 and SIGUSR2
	 * are ours; libmilter's signal thread takes SIGHUP, SIGTERM and SIGINT.
	 */
	sigemptyset(&all);
	sigaddset(&all, SIGUSR1);
	sigaddset(&all, SIGUSR2);
	sigaddset(&all, SIGHUP);
	sigaddset(&all, SIGTERM);
	sigaddset(&all, SIGINT);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	sigemptyset(&ours);
	sigaddset(&ours, SIGUSR1);
	sigaddset(&ours, SIGUSR2);
	oneclick_start();
	pthread_create(&sig_tid, NULL, signal_thread, &ours);
	pthread_detach(sig_tid);
	pthread_create(&stats_tid, NULL, stats_thread, &st);

	int r = smfi_main();
	atomic_store(&stopping, 1);
	oneclick_stop();
	pthread_join(stats_tid, NULL);
	if (st) {
		if (bw_stats_flush(st) != BW_STORE_OK)
			bw_log(LOG_WARNING, "store: counters not written at exit: %s", bw_store_last_error(st));
	}
	bw_log(LOG_INFO, "filter process exiting");
	/* the store is left open: threads of libmilter may still hold a context */
	return r == MI_SUCCESS ? 0 : 1;
}

/* ---------------------------------------------------------------- main */

static int
write_pidfile(const char *path)
{
	FILE *fp;

	if (path == NULL || *path == 0)
		return 0;
	if ((fp = fopen(path, "w")) == NULL) {
		bw_log(LOG_CRIT, "PidFile %s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	fclose(fp);
	return 0;
}

int
main(int argc, char **argv)
{
	int ch, check_only = 0, foreground = 0, status;
	bw_errs errs = { 0 };
	bw_policy *p;
	uid_t uid = 0;
	gid_t gid = 0;
	const char *sock;

#ifdef M_MXFAST
	/* A message makes and frees many small objects (headers, link
	 * texts, records). glibc keeps freed ones in "fast bins" and merges
	 * them all at the next large request: in a scan of the 40 KB bench
	 * newsletter some 35,000 instructions a message. Without fast bins
	 * (the thread caches stay) they are merged as they are freed. */
	mallopt(M_MXFAST, 0);
#endif
#ifdef M_ARENA_MAX
	/* libmilter runs each connection in a thread, and glibc lets threads
	 * spread over eight arenas per CPU: by a thread's next message, the
	 * memory its arena hands out has gone cold. As many arenas as CPUs
	 * (unless MALLOC_ARENA_MAX is set) keep freed memory warm for the
	 * next thread: make coldcount, 8 threads in turn, counts 267 -> 98
	 * second-level cache misses per message with two arenas. */
	if (getenv("MALLOC_ARENA_MAX") == NULL) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		mallopt(M_ARENA_MAX, ncpu > 0 ? (int)ncpu : 1);
	}
#endif
	while ((ch = getopt(argc, argv, "c:fnV")) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'f': foreground = 1; break;
		case 'n': check_only = 1; break;
		case 'V': printf("bulkwarden %s\n", PACKAGE_VERSION); return 0;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	/* reloads happen after chdir("/"): keep an absolute path */
	if (conf_path[0] != '/') {
		static char abs[4096];
		if (realpath(conf_path, abs) != NULL)
			conf_path = abs;
	}

	bw_log_open("bulkwarden", false, LOG_MAIL, LOG_INFO);
	p = bw_policy_load(conf_path, &errs);
	/* the start-time values of the keys a reload cannot change; a file
	 * with errors has them in errs already, from the load */
	bw_conf_defaults(&boot);
	{
		bw_errs again = { 0 };
		if (!bw_conf_read(&boot, conf_path, &again) && p != NULL)
			for (size_t i = 0; i < again.n; i++)
				bw_errs_add(&errs, "%s", again.msg[i]);
		bw_errs_free(&again);
	}
	check_daemon_keys(&boot, &errs);
	if (p == NULL || errs.n > 0) {
		print_errs(&errs);
		bw_errs_free(&errs);
		bw_policy_unref(p);
		return 1;
	}
	if (check_only) {
		printf("%s: configuration OK\n", conf_path);
		bw_policy_unref(p);
		return 0;
	}

	/* who we run as */
	if (geteuid() == 0) {
		if (lookup_user(boot.user_id, &uid, &gid) != 0)
			return 1;
		if (uid == 0) {
			fprintf(stderr, "bulkwarden: refusing to run as root: set UserID to an "
			    "unprivileged user\n");
			return 1;
		}
	}

	/* the socket, bound while we may still be root */
	sock = boot.socket;
	if (strncmp(sock, "unix:", 5) == 0 || strncmp(sock, "local:", 6) == 0 || sock[0] == '/') {
		const char *path = strchr(sock, ':') && sock[0] != '/' ? strchr(sock, ':') + 1 : sock;
		umask(0007);
		unlink(path);
	}
	if (smfi_register(bw_milter_desc) == MI_FAILURE || smfi_setconn((char *)sock) == MI_FAILURE) {
		fprintf(stderr, "bulkwarden: cannot register with libmilter (Socket %s)\n", sock);
		return 1;
	}
	smfi_settimeout(30);
	if (smfi_opensocket(true) == MI_FAILURE) {
		fprintf(stderr, "bulkwarden: cannot open Socket %s: %s\n", sock, strerror(errno));
		return 1;
	}
	if (geteuid() == 0 && (strncmp(sock, "unix:", 5) == 0 || strncmp(sock, "local:", 6) == 0
	    || sock[0] == '/')) {
		const char *path = sock[0] == '/' ? sock : strchr(sock, ':') + 1;
		if (chown(path, uid, gid) != 0)
			fprintf(stderr, "bulkwarden: cannot chown %s: %s\n", path, strerror(errno));
	}
	/* the one-click listener too, so that a port below 1024 works; the
	 * supervisor keeps it open for every filter process it starts */
	if (boot.one_click_listen[0]) {
		char err[300];
		if ((oneclick_fd = oc_listen_bind(boot.one_click_listen, err, sizeof(err))) < 0) {
			fprintf(stderr, "bulkwarden: cannot listen on OneClickListen %s\n", err);
			return 1;
		}
	}

	if (!foreground) {
		pid_t pid = fork();
		if (pid < 0) {
			fprintf(stderr, "bulkwarden: fork: %s\n", strerror(errno));
			return 1;
		}
		if (pid > 0)
			return 0;
		setsid();
		if (chdir("/") != 0)
			return 1;
		int fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
	}
	bw_log_open("bulkwarden", boot.syslog, bw_log_facility(boot.syslog_facility),
	    bw_log_levelnum(boot.log_level));
	if (write_pidfile(boot.pid_file) != 0)
		return 1;
	if (geteuid() == 0 && drop_privileges(uid, gid) != 0)
		return 1;
	if (geteuid() == 0) {
		bw_log(LOG_CRIT, "refusing to run as root");
		return 1;
	}
	cb_set_policy(p);
	bw_log(LOG_NOTICE, "bulkwarden %s starting: Socket %s, Store %s, Mode %s%s%s", PACKAGE_VERSION,
	    boot.socket, boot.store, boot.mode == BW_MODE_MONITOR ? "monitor" : "enforce",
	    boot.one_click_listen[0] ? ", OneClickListen " : "", boot.one_click_listen);

	sup_opts so = { .auto_restart = boot.auto_restart, .conf_path = conf_path, .reload = reload };
	{
		unsigned n = 10;
		char unit[32] = "1h";
		uint64_t secs = 3600;
		if (sscanf(boot.auto_restart_rate, "%u/%31s", &n, unit) == 2)
			bw_parse_seconds(unit, &secs);
		so.max_restarts = n;
		so.window = (unsigned)secs;
	}
	status = sup_run(&so, filter_main);
	if (boot.pid_file[0] && unlink(boot.pid_file) != 0 && errno != ENOENT)
		bw_log(LOG_WARNING, "cannot remove PidFile %s: %s", boot.pid_file, strerror(errno));
	bw_log(LOG_NOTICE, "bulkwarden stopped");
	return status;
}
