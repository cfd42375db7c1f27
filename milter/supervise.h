/*
 * supervise.h - the supervising parent: runs the filter in a child process,
 * turns SIGHUP into a reload (libmilter's own signal thread would stop on
 * it), forwards SIGUSR1 and SIGTERM, restarts a crashed child, rate-capped.
 */
#ifndef BW_SUPERVISE_H
#define BW_SUPERVISE_H

#include <stdbool.h>

typedef struct sup_opts {
	bool auto_restart;
	unsigned max_restarts;   /* in window seconds */
	unsigned window;
	const char *conf_path;   /* for the log */
	void (*reload)(bool quiet); /* the supervisor's own copy of the policy, for restarts */
} sup_opts;

/* Runs child_main() in a child process until told to stop. Returns the exit
 * status for the daemon. child_main never returns to the supervisor. */
int sup_run(const sup_opts *o, int (*child_main)(void));

#endif
