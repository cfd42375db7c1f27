/*
 * clock.c - wall time at the first call, advanced by the monotonic clock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"

static int64_t clock_wall0, clock_mono0;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;
static atomic_bool clock_stepped;   /* logged; again once the two agree */

static int64_t
read_ms(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0 && (id != CLOCK_BOOTTIME || clock_gettime(CLOCK_MONOTONIC, &ts) != 0))
		abort();   /* no clock at all: nothing here can go on */
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
clock_init(void)
{
	clock_mono0 = read_ms(CLOCK_BOOTTIME);
	clock_wall0 = read_ms(CLOCK_REALTIME);
}

int64_t
bw_clock_skew(int64_t wall0, int64_t mono0, int64_t wall, int64_t mono)
{
	return wall - (wall0 + (mono - mono0));
}

int64_t
bw_clock_now_ms(void)
{
	int64_t mono, skew;

	pthread_once(&clock_once, clock_init);
	mono = read_ms(CLOCK_BOOTTIME);
	skew = bw_clock_skew(clock_wall0, clock_mono0, read_ms(CLOCK_REALTIME), mono);
	if (skew > BW_CLOCK_SKEW_LOG || skew < -BW_CLOCK_SKEW_LOG) {
		if (!atomic_exchange(&clock_stepped, true))
			bw_log(LOG_WARNING, "the system clock was set %s by %lld s while bulkwarden ran; its "
			    "deadlines and rates keep counting from its own start (restart to take the new time)",
			    skew > 0 ? "forward" : "back", (long long)((skew > 0 ? skew : -skew) / 1000));
	} else if (atomic_load(&clock_stepped))
		atomic_store(&clock_stepped, false);
	return clock_wall0 + (mono - clock_mono0);
}

time_t
bw_clock_now(void)
{
	return (time_t)(bw_clock_now_ms() / 1000);
}

/* ---------------------------------------------------------------- calendar */

/* days_from_civil and civil_from_days: the era arithmetic of the proleptic
 * Gregorian calendar (400-year eras of 146097 days, years from March) */
int64_t
bw_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

bool
bw_civil_ok(int y, int m, int d)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return y >= 0 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 &&
	    d <= mdays[m - 1] + (m == 2 && leap);
}

static void
put_digits(char *out, int64_t v, int n)
{
	while (n-- > 0) {
		out[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

void
bw_time_put(int64_t secs, char out[19])
{
	int64_t days = (secs >= 0 ? secs : secs - 86399) / 86400, sod = secs - days * 86400, y;
	int m, d;

	civil_from_days(days, &y, &m, &d);
	put_digits(out, y, 4);
	out[4] = '-';
	put_digits(out + 5, m, 2);
	out[7] = '-';
	put_digits(out + 8, d, 2);
	out[10] = 'T';
	put_digits(out + 11, sod / 3600, 2);
	out[13] = ':';
	put_digits(out + 14, sod / 60 % 60, 2);
	out[16] = ':';
	put_digits(out + 17, sod % 60, 2);
}

int
bw_time_digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

bool
bw_time_get(const char *s, int64_t *secs)
{
	int y = bw_time_digits(s, 4), m = bw_time_digits(s + 5, 2), d = bw_time_digits(s + 8, 2);
	int h = bw_time_digits(s + 11, 2), mi = bw_time_digits(s + 14, 2), se = bw_time_digits(s + 17, 2);

	if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
	    !bw_civil_ok(y, m, d) || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59)
		return false;
	*secs = bw_days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + se;
	return true;
}
