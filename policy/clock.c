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
