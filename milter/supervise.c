/*
 * supervise.c - the parent that keeps the filter process running.
 *
 * The parent holds the listening sockets (the milter's and OneClickListen's,
 * opened by main before privileges are dropped), so a restarted child serves
 * the same sockets without needing root again; connections that arrive
 * between two children wait in the sockets' backlogs.
 * Signals: SIGHUP, SIGUSR1 -> the child reloads (SIGUSR1); SIGTERM, SIGINT ->
 * the child (told with SIGUSR2) finishes what is in flight and exits, then the
 * parent exits with the child's status.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "supervise.h"

static volatile sig_atomic_t sup_got_reload, sup_got_stop, sup_got_child;

static void
sup_handler(int sig)
{
	switch (sig) {
	case SIGHUP:
	case SIGUSR1:
		sup_got_reload = 1;
		break;
	case SIGTERM:
	case SIGINT:
		sup_got_stop = 1;
		break;
	case SIGCHLD:
		sup_got_child = 1;
		break;
	}
}

static pid_t
sup_spawn(int (*child_main)(void), const sigset_t *orig)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGHUP, &sa, NULL);
		sigaction(SIGUSR1, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGCHLD, &sa, NULL);
		/* signals stay blocked: child_main decides which thread takes them */
		(void)orig;
		_exit(child_main());
	}
	if (pid < 0)
		bw_log(LOG_ERR, "cannot start the filter process: %s", strerror(errno));
	else
		bw_log(LOG_INFO, "filter process %ld started", (long)pid);
	return pid;
}

/* May we restart now? Keeps the times of the restarts in the window. */
static bool
sup_may_restart(const sup_opts *o, time_t *times, unsigned *n, time_t now)
{
	unsigned k = 0;

	for (unsigned i = 0; i < *n; i++)
		if (now - times[i] < (time_t)o->window)
			times[k++] = times[i];
	*n = k;
	if (k >= o->max_restarts)
		return false;
	times[(*n)++] = now;
	return true;
}

int
sup_run(const sup_opts *o, int (*child_main)(void))
{
	struct sigaction sa;
	sigset_t block, orig;
	pid_t child;
	time_t *restarts = calloc(o->max_restarts + 1, sizeof(time_t));
	unsigned nrestarts = 0;
	int status = 0;

	if (restarts == NULL)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sup_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &orig);

	if ((child = sup_spawn(child_main, &orig)) < 0) {
		free(restarts);
		return 1;
	}
	for (;;) {
		sigset_t wait = orig;

		sigdelset(&wait, SIGHUP);
		sigdelset(&wait, SIGUSR1);
		sigdelset(&wait, SIGTERM);
		sigdelset(&wait, SIGINT);
		sigdelset(&wait, SIGCHLD);
		if (!sup_got_reload && !sup_got_stop && !sup_got_child)
			sigsuspend(&wait);
		if (sup_got_reload) {
			sup_got_reload = 0;
			bw_log(LOG_INFO, "reload requested: the filter process reads %s", o->conf_path);
			if (o->reload)
				o->reload(true);
			if (child > 0)
				kill(child, SIGUSR1);
		}
		if (sup_got_stop) {
			sup_got_stop = 0;
			bw_log(LOG_INFO, "stopping: waiting for messages in flight");
			if (child < 0) {
				free(restarts);
				return 0;
			}
			/* SIGUSR2: the child drains what is in flight, then stops */
			kill(child, SIGUSR2);
			while (waitpid(child, &status, 0) < 0 && errno == EINTR)
				;
			free(restarts);
			if (WIFSIGNALED(status)) {
				bw_log(LOG_ERR, "filter process %ld killed by signal %d while stopping",
				    (long)child, WTERMSIG(status));
				return 1;
			}
			return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
		}
		if (sup_got_child) {
			pid_t pid;

			sup_got_child = 0;
			while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
				if (pid != child)
					continue;
				if (WIFEXITED(status))
					bw_log(WEXITSTATUS(status) ? LOG_ERR : LOG_NOTICE,
					    "filter process %ld exited with status %d", (long)pid,
					    WEXITSTATUS(status));
				else if (WIFSIGNALED(status))
					bw_log(LOG_ERR, "filter process %ld killed by signal %d", (long)pid,
					    WTERMSIG(status));
				child = -1;
				if (!o->auto_restart) {
					free(restarts);
					return 1;
				}
				if (!sup_may_restart(o, restarts, &nrestarts, time(NULL))) {
					bw_log(LOG_CRIT, "filter process died %u times in %us: giving up "
					    "(AutoRestartRate)", o->max_restarts, o->window);
					free(restarts);
					return 1;
				}
				sleep(1);   /* a child that dies at once must not spin */
				if ((child = sup_spawn(child_main, &orig)) < 0) {
					free(restarts);
					return 1;
				}
			}
		}
	}
}
