/*
 * log.h - logging for the engine and the programs.
 *
 * One function for every message: to syslog when the daemon runs with
 * Syslog yes, else to stderr. The engine never exits on its own; callers
 * decide what an error means.
 */
#ifndef BW_LOG_H
#define BW_LOG_H

#include <syslog.h>
#include <stdbool.h>

void bw_log_open(const char *ident, bool use_syslog, int facility, int level);
void bw_log_set_level(int level);
int bw_log_level(void);
void bw_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The error sentence of a call that failed, into err (len bytes; nothing
 * when err is NULL or len 0): what every module's "err, errlen" gets. */
#include <stddef.h>
void bw_seterr(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* facility name ("mail", "local0"...) to LOG_*; -1 if unknown */
int bw_log_facility(const char *name);
/* level name ("err", "warning", "notice", "info", "debug") to LOG_*; -1 if unknown */
int bw_log_levelnum(const char *name);

#endif
