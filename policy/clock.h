/*
 * clock.h - the one clock of bulkwarden and bulkwardenctl.
 *
 * Every "now" of the policy comes from here (the engine, the sender
 * states and rates, tokens, the one-click listener, the admin tool), and
 * the policy code below it takes now as an argument, so that tests drive
 * time by passing it.
 *
 * The clock is the wall clock read once, at the first call, advanced by
 * the monotonic clock (CLOCK_BOOTTIME: it goes on through a suspend). A
 * step of the system clock while the process runs (an admin's date, an
 * NTP step) therefore moves nothing: it can neither end a grace period or
 * an incident's answer time early nor stretch them. The step is logged
 * once (warning) and taken on the next start. A short-lived process (the
 * admin tool) reads the wall clock as it is.
 */
#ifndef BW_CLOCK_H
#define BW_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds since the epoch. */
int64_t bw_clock_now_ms(void);
/* Seconds since the epoch. */
time_t bw_clock_now(void);

/* The step the clock would pass over: wall and mono are this instant's
 * wall and monotonic readings, wall0 and mono0 those of the first call
 * (all ms). The clock reads wall0 + (mono - mono0); the result is wall
 * minus that, 0 when the wall clock kept pace. */
int64_t bw_clock_skew(int64_t wall0, int64_t mono0, int64_t wall, int64_t mono);

/* How far the wall clock may move before it is logged (ms). */
#define BW_CLOCK_SKEW_LOG 60000

/*
 * The calendar of the stored times: proleptic Gregorian, UTC, without the
 * C library (no time zone, no locale, no formatted I/O on the path of
 * every message).
 */
/* Days from 1970-01-01 to y-m-d (m 1..12, d 1..31; not checked). */
int64_t bw_days_from_civil(int64_t y, int m, int d);
/* Is y-m-d a day of the calendar (y 0..9999)? */
bool bw_civil_ok(int y, int m, int d);
/* "YYYY-MM-DDTHH:MM:SS" of secs since the epoch, in out[0..19) (no NUL);
 * secs must fall in the years 0..9999. */
void bw_time_put(int64_t secs, char out[19]);
/* The number the n decimal digits at s write; -1 when one is not a digit. */
int bw_time_digits(const char *s, int n);
/* Reads exactly that form (four-digit year, 'T', seconds 0..59) from
 * s[0..19): false on anything else. */
bool bw_time_get(const char *s, int64_t *secs);

#endif
