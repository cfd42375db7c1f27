/*
 * log.c - one place where every message goes out: syslog or stderr.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>

#include "log.h"

static struct {
	bool use_syslog;
	int level;
	char ident[32];
} log_state = { false, LOG_INFO, "bulkwarden" };

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
bw_log_open(const char *ident, bool use_syslog, int facility, int level)
{
	snprintf(log_state.ident, sizeof(log_state.ident), "%s", ident);
	log_state.use_syslog = use_syslog;
	log_state.level = level;
	if (use_syslog)
		openlog(log_state.ident, LOG_PID | LOG_NDELAY, facility);
}

void
bw_log_set_level(int level)
{
	log_state.level = level;
}

int
bw_log_level(void)
{
	return log_state.level;
}

void
bw_log(int prio, const char *fmt, ...)
{
	va_list ap;

	if (prio > log_state.level)
		return;
	va_start(ap, fmt);
	if (log_state.use_syslog) {
		vsyslog(prio, fmt, ap);
	} else {
		static const char *names[] = { "emerg", "alert", "crit", "error",
		    "warning", "notice", "info", "debug" };
		char line[2048];

		vsnprintf(line, sizeof(line), fmt, ap);
		pthread_mutex_lock(&log_lock);
		fprintf(stderr, "%s[%ld]: %s: %s\n", log_state.ident, (long)getpid(),
		    names[prio & 7], line);
		pthread_mutex_unlock(&log_lock);
	}
	va_end(ap);
}

static const struct { const char *name; int val; } log_facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

int
bw_log_facility(const char *name)
{
	for (size_t i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++)
		if (strcasecmp(name, log_facilities[i].name) == 0)
			return log_facilities[i].val;
	return -1;
}

int
bw_log_levelnum(const char *name)
{
	static const struct { const char *name; int val; } levels[] = {
		{ "err", LOG_ERR }, { "error", LOG_ERR }, { "warning", LOG_WARNING },
		{ "notice", LOG_NOTICE }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcasecmp(name, levels[i].name) == 0)
			return levels[i].val;
	return -1;
}

void
bw_seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}
