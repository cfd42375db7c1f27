/*
 * turns.c - the engine's per-message path run by threads that take turns,
 * for a cache simulator to count what a message finds cold.
 *
 * libmilter gives each connection a thread, so under load the next message
 * of a thread comes after the other threads' messages: what the thread left
 * in the caches has gone. THREADS threads scan MESSAGE in turn (thread 0,
 * 1, ..., THREADS - 1, 0, ...), MESSAGES scans in all, each as "bulkwardenctl
 * scan" does (bw_msg_new, the headers and the body in pieces of 65535
 * bytes, end of message, bw_msg_free). It prints nothing: coldcount.sh runs
 * it under callgrind's cache simulation and divides by MESSAGES. (Timing
 * it is of no use: the turns are handed over through a mutex.)
 *
 * usage: turns CONF MESSAGE [THREADS [MESSAGES]]   (defaults 8 and 160)
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "engine.h"

static bw_policy *pol;
static const char *msg;
static size_t msglen;
static int nthreads = 8, total = 160, turn;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void
scan_once(void)
{
	bw_verdict v;
	bw_msg *m = bw_msg_new(pol, NULL, bw_clock_now());

	if (m == NULL) {
		fprintf(stderr, "turns: out of memory\n");
		exit(1);
	}
	bw_msg_connect(m, "", NULL);
	bw_msg_force_bulk(m, true);
	bw_msg_feed_file(m, msg, msglen, 65535, &v);
	bw_msg_free(m);
}

static void *
worker(void *arg)
{
	int id = (int)(long)arg;

	for (;;) {
		pthread_mutex_lock(&mu);
		while (turn < total && turn % nthreads != id)
			pthread_cond_wait(&cv, &mu);
		if (turn >= total) {
			pthread_mutex_unlock(&mu);
			return NULL;
		}
		pthread_mutex_unlock(&mu);
		scan_once();
		pthread_mutex_lock(&mu);
		turn++;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
	}
}

int
main(int argc, char **argv)
{
	bw_errs errs = { 0 };
	pthread_t th[64];
	struct stat sb;
	int fd;

	if (argc < 3 || argc > 5) {
		fprintf(stderr, "usage: turns CONF MESSAGE [THREADS [MESSAGES]]\n");
		return 2;
	}
	if (argc > 3)
		nthreads = atoi(argv[3]);
	if (argc > 4)
		total = atoi(argv[4]);
	if (nthreads < 1 || nthreads > 64 || total < 1) {
		fprintf(stderr, "turns: THREADS is 1 to 64, MESSAGES at least 1\n");
		return 2;
	}
	if ((pol = bw_policy_load(argv[1], &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		return 1;
	}
	if ((fd = open(argv[2], O_RDONLY)) < 0 || fstat(fd, &sb) != 0 || sb.st_size == 0 ||
	    (msg = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
		perror(argv[2]);
		return 1;
	}
	msglen = (size_t)sb.st_size;
	for (long i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)i) != 0) {
			fprintf(stderr, "turns: cannot start a thread\n");
			return 1;
		}
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	return 0;
}
