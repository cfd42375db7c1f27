/*
 * test_rate.c - unit tests of rate.c: the GCRA limiter (exact admit and
 * refuse sequences, retry times, bursts, the throttle factor, clock jumps),
 * the hourly complaint window (expiry at the window's edge, minimum
 * volume, clock jumps, its text form) and the sender state machine (each
 * transition at its threshold, deadlines to the millisecond, clock jumps,
 * the record's JSON).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "rate.h"
#include "store.h"

#define SEC 1000LL
#define HOUR BW_HOUR_MS
#define DAY BW_DAY_MS
#define T0 1767225600000LL /* 2026-01-01T00:00:00.000Z, on an hour */

#define NROWS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---------------------------------------------------------------- GCRA */

/* 3600 an hour (one a second), ten at once */
static const bw_gcra_limit per_sec = {3600, HOUR, 10};

START_TEST(test_gcra_burst_then_rate)
{
	int64_t tat = 0, before;
	bw_time_ms ra = 99;

	for (int i = 0; i < 10; i++) {
		ck_assert_msg(bw_gcra_take(&per_sec, &tat, T0, 1, &ra), "take %d", i);
		ck_assert_int_eq(ra, 0);
	}
	before = tat;
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0, 1, &ra));
	ck_assert_int_eq(ra, 1000);
	ck_assert_int_eq(tat, before); /* a refusal changes nothing */
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0 + 999, 1, &ra));
	ck_assert_int_eq(ra, 1);
	ck_assert(bw_gcra_take(&per_sec, &tat, T0 + 1000, 1, &ra));
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0 + 1000, 1, &ra));
	ck_assert_int_eq(ra, 1000);
	/* 3.5 s later: three more (3.5 intervals refilled) */
	ck_assert(bw_gcra_take(&per_sec, &tat, T0 + 4500, 1, NULL));
	ck_assert(bw_gcra_take(&per_sec, &tat, T0 + 4500, 1, NULL));
	ck_assert(bw_gcra_take(&per_sec, &tat, T0 + 4500, 1, NULL));
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0 + 4500, 1, &ra));
	ck_assert_int_eq(ra, 500);
	/* a whole idle hour gives back the burst, not an hour's worth */
	for (int i = 0; i < 10; i++)
		ck_assert(bw_gcra_take(&per_sec, &tat, T0 + 2 * HOUR, 1, NULL));
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0 + 2 * HOUR, 1, &ra));
	ck_assert_int_eq(ra, 1000);
}
END_TEST

START_TEST(test_gcra_many)
{
	int64_t tat = 0, before;
	bw_time_ms ra = 0;

	ck_assert(bw_gcra_take(&per_sec, &tat, T0, 4, &ra));
	ck_assert(bw_gcra_take(&per_sec, &tat, T0, 4, &ra));
	before = tat;
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0, 4, &ra));
	ck_assert_int_eq(ra, 2000); /* two left, two more to wait for */
	ck_assert_int_eq(tat, before);
	ck_assert(bw_gcra_take(&per_sec, &tat, T0, 2, &ra)); /* what fits still goes */
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0 + 3999, 4, &ra));
	ck_assert_int_eq(ra, 1);
	ck_assert(bw_gcra_take(&per_sec, &tat, T0 + 4000, 4, &ra));
	/* n == 0: admitted, nothing changes */
	before = tat;
	ck_assert(bw_gcra_take(&per_sec, &tat, T0 + 4000, 0, &ra));
	ck_assert_int_eq(ra, 0);
	ck_assert_int_eq(tat, before);
	/* the whole burst from a full bucket; one more than the burst never */
	tat = 0;
	ck_assert(bw_gcra_take(&per_sec, &tat, T0, 10, &ra));
	tat = 0;
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0, 11, &ra));
	ck_assert_int_eq(ra, -1);
	ck_assert_int_eq(tat, 0);
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0 + 365 * DAY, 11, &ra));
	ck_assert_int_eq(ra, -1);
}
END_TEST

/* 7 an hour does not divide: the interval is rounded up to a microsecond */
START_TEST(test_gcra_fraction)
{
	const bw_gcra_limit l = {7, HOUR, 1};
	int64_t tat = 0;
	bw_time_ms ra = 0;
	int n;

	ck_assert(bw_gcra_take(&l, &tat, T0, 1, &ra));
	ck_assert(!bw_gcra_take(&l, &tat, T0, 1, &ra));
	ck_assert_int_eq(ra, 514286); /* 514285.715 ms */
	ck_assert(!bw_gcra_take(&l, &tat, T0 + 514285, 1, &ra));
	ck_assert_int_eq(ra, 1);
	ck_assert(bw_gcra_take(&l, &tat, T0 + 514286, 1, &ra));

	/* 3 a millisecond: 333.34 us each, so the next 3 wait for the 4 us over */
	const bw_gcra_limit fast = {3, 1, 3};
	tat = 0;
	ck_assert(bw_gcra_take(&fast, &tat, T0, 3, &ra));
	ck_assert(!bw_gcra_take(&fast, &tat, T0 + 1, 3, &ra));
	ck_assert_int_eq(ra, 1);
	ck_assert(bw_gcra_take(&fast, &tat, T0 + 2, 3, &ra));

	/* tried every second for ten hours: exactly 70, never 71 */
	tat = 0;
	n = 0;
	for (bw_time_ms t = T0; t < T0 + 10 * HOUR; t += SEC)
		n += bw_gcra_take(&l, &tat, t, 1, NULL);
	ck_assert_int_eq(n, 70);
}
END_TEST

START_TEST(test_gcra_scale)
{
	bw_gcra_limit q, keep = {1, 1, 1};
	int64_t tat = 0;
	bw_time_ms ra = 0;
	int n = 0;

	ck_assert(bw_gcra_scale(&per_sec, 0.25, &q));
	ck_assert_int_eq(q.count, 3600);
	ck_assert_int_eq(q.period, 4 * HOUR);
	ck_assert_int_eq(q.burst, 10);
	for (int i = 0; i < 10; i++)
		ck_assert(bw_gcra_take(&q, &tat, T0, 1, NULL));
	ck_assert(!bw_gcra_take(&q, &tat, T0, 1, &ra));
	ck_assert_int_eq(ra, 4000);
	ck_assert(bw_gcra_take(&q, &tat, T0 + 4000, 1, &ra));

	/* cut just after a full burst: burst * (1 - factor) more at most */
	tat = 0;
	for (int i = 0; i < 10; i++)
		ck_assert(bw_gcra_take(&per_sec, &tat, T0, 1, NULL));
	while (bw_gcra_take(&q, &tat, T0, 1, NULL))
		n++;
	ck_assert_int_eq(n, 7); /* 10 s used of 40 s: 7.5 intervals left */
	ck_assert(!bw_gcra_take(&q, &tat, T0, 1, &ra));
	ck_assert_int_eq(ra, 2000);
	ck_assert(!bw_gcra_take(&q, &tat, T0 + 1999, 1, &ra));
	ck_assert(bw_gcra_take(&q, &tat, T0 + 2000, 1, &ra));
	ck_assert(!bw_gcra_take(&q, &tat, T0 + 2000, 1, &ra));
	ck_assert_int_eq(ra, 4000);

	ck_assert(bw_gcra_scale(&per_sec, 1, &q));
	ck_assert_int_eq(q.period, HOUR);
	ck_assert(!bw_gcra_scale(&per_sec, 0, &keep));
	ck_assert(!bw_gcra_scale(&per_sec, -0.5, &keep));
	ck_assert(!bw_gcra_scale(&per_sec, 1.5, &keep));
	ck_assert(!bw_gcra_scale(&per_sec, NAN, &keep));
	ck_assert(!bw_gcra_scale(&(bw_gcra_limit){1, 3000 * DAY, 1}, 0.5, &keep));
	ck_assert_int_eq(keep.period, 1); /* untouched */
}
END_TEST

/* The clock goes back an hour after a full burst: the bucket is empty as of
 * the new now (plus the slack) and refills at the rate, not after the hour. */
START_TEST(test_gcra_clock_back)
{
	const bw_time_ms back = T0 - HOUR;
	int64_t tat = 0, before;
	bw_time_ms ra = 0;
	int n = 0;

	for (int i = 0; i < 10; i++)
		ck_assert(bw_gcra_take(&per_sec, &tat, T0, 1, NULL));
	ck_assert(!bw_gcra_take(&per_sec, &tat, back, 1, &ra));
	ck_assert_int_eq(ra, BW_GCRA_CLOCK_SLACK + 1000);
	ck_assert_int_eq(tat, (back + 10000 + BW_GCRA_CLOCK_SLACK) * 1000); /* clamp kept */
	/* tried every ms for 6 s: one a second after the slack, never a burst */
	for (bw_time_ms t = back + 1; t < back + 6000; t++)
		n += bw_gcra_take(&per_sec, &tat, t, 1, NULL);
	ck_assert_int_eq(n, 3); /* at 3, 4 and 5 s */
	/* a TAT from far ahead (a bad record) */
	tat = INT64_MAX;
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0, 1, &ra));
	ck_assert_int_eq(ra, BW_GCRA_CLOCK_SLACK + 1000);
	ck_assert(bw_gcra_take(&per_sec, &tat, T0 + BW_GCRA_CLOCK_SLACK + 1000, 1, &ra));
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0 + BW_GCRA_CLOCK_SLACK + 1000, 1, &ra));
	/* another host 1.5 s ahead took a full burst: within the slack, no
	 * clamp, so it frees nothing */
	tat = 0;
	for (int i = 0; i < 10; i++)
		ck_assert(bw_gcra_take(&per_sec, &tat, T0 + 1500, 1, NULL));
	before = tat;
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0, 1, &ra));
	ck_assert_int_eq(ra, 2500);
	ck_assert_int_eq(tat, before);
	ck_assert(!bw_gcra_take(&per_sec, &tat, T0 + 2499, 1, &ra));
	ck_assert(bw_gcra_take(&per_sec, &tat, T0 + 2500, 1, &ra));
	/* a TAT from long ago or negative is a full bucket */
	tat = INT64_MIN;
	n = 0;
	while (bw_gcra_take(&per_sec, &tat, T0, 1, NULL))
		n++;
	ck_assert_int_eq(n, 10);
}
END_TEST

START_TEST(test_gcra_clock_forward)
{
	int64_t tat = 0;
	int n = 0;

	for (int i = 0; i < 10; i++)
		ck_assert(bw_gcra_take(&per_sec, &tat, T0, 1, NULL));
	/* a day ahead: the burst again, not a day's worth */
	for (int i = 0; i < 100; i++)
		n += bw_gcra_take(&per_sec, &tat, T0 + DAY, 1, NULL);
	ck_assert_int_eq(n, 10);
}
END_TEST

START_TEST(test_gcra_bad)
{
	static const bw_gcra_limit bad[] = {{0, HOUR, 1}, {1, 0, 1}, {1, -5, 1},
	    {1, BW_GCRA_PERIOD_MAX + 1, 1}, {1, HOUR, 0}, {1, HOUR, BW_GCRA_BURST_MAX + 1},
	    {1, BW_GCRA_PERIOD_MAX, 2}};
	int64_t tat = 0;
	bw_time_ms ra = 0;
	char err[160];

	for (int i = 0; i < NROWS(bad); i++) {
		err[0] = '\0';
		ck_assert_msg(!bw_gcra_limit_check(&bad[i], err, sizeof(err)), "row %d", i);
		ck_assert_msg(err[0] != '\0', "row %d", i);
		ck_assert(!bw_gcra_take(&bad[i], &tat, T0, 1, &ra));
		ck_assert_int_eq(ra, -1);
	}
	ck_assert(bw_gcra_limit_check(&per_sec, err, sizeof(err)));
	ck_assert(!bw_gcra_take(&per_sec, NULL, T0, 1, &ra));
	ck_assert_int_eq(ra, -1);
	ck_assert(!bw_gcra_take(&per_sec, &tat, -1, 1, &ra));
	ck_assert(!bw_gcra_take(&per_sec, &tat, BW_TIME_MAX + 1, 1, &ra));
	ck_assert_int_eq(ra, -1);
	ck_assert_int_eq(tat, 0);
	ck_assert(bw_gcra_take(&per_sec, &tat, BW_TIME_MAX, 10, &ra));
}
END_TEST

/* ---------------------------------------------------------------- window */

static bw_window win; /* 12 KB: static rather than on the stack */

static bw_window_totals
totals(bw_time_ms now, unsigned hours)
{
	bw_window_totals t;

	bw_window_totals_at(&win, now, hours, &t);
	return t;
}

START_TEST(test_window_expiry)
{
	bw_window_totals t;

	bw_window_init(&win);
	ck_assert(bw_window_add_delivered(&win, T0, 1000));
	ck_assert(bw_window_add_complaint(&win, T0 + 59 * 60 * SEC));
	ck_assert(bw_window_add_delivered(&win, T0 + 30 * HOUR, 5));
	t = totals(T0, 168); /* the later bucket counts too */
	ck_assert_int_eq(t.delivered, 1005);
	ck_assert_int_eq(t.complaints, 1);
	ck_assert_int_eq(t.hours, 168);
	/* the first hour's bucket counts until 7 days after the hour began */
	t = totals(T0 + 7 * DAY - 1, 168);
	ck_assert_int_eq(t.delivered, 1005);
	ck_assert_int_eq(t.complaints, 1);
	t = totals(T0 + 7 * DAY, 168);
	ck_assert_int_eq(t.delivered, 5);
	ck_assert_int_eq(t.complaints, 0);
	t = totals(T0 + 30 * HOUR + 7 * DAY, 168);
	ck_assert_int_eq(t.delivered, 0);
	/* another window length over the same buckets */
	t = totals(T0 + 24 * HOUR - 1, 24);
	ck_assert_int_eq(t.delivered, 1005);
	t = totals(T0 + 24 * HOUR, 24);
	ck_assert_int_eq(t.delivered, 5);
	/* lengths out of range are clamped */
	ck_assert_int_eq(totals(T0, 0).hours, 1);
	ck_assert_int_eq(totals(T0, 100000).hours, BW_WINDOW_HOURS_MAX);
	ck_assert(!bw_window_add_delivered(&win, -1, 1));
	ck_assert(!bw_window_add_delivered(&win, BW_TIME_MAX + 1, 1));
}
END_TEST

START_TEST(test_window_clock_jumps)
{
	bw_window_totals t;

	bw_window_init(&win);
	bw_window_add(&win, T0 + 10 * HOUR, 100, 2);
	/* back 10 hours: the "future" bucket still counts */
	t = totals(T0, 168);
	ck_assert_int_eq(t.delivered, 100);
	ck_assert_int_eq(t.complaints, 2);
	bw_window_add(&win, T0, 50, 1);
	t = totals(T0, 168);
	ck_assert_int_eq(t.delivered, 150);
	ck_assert_int_eq(t.complaints, 3);
	/* forward: old buckets expire, the later one last */
	t = totals(T0 + 7 * DAY, 168);
	ck_assert_int_eq(t.delivered, 100);
	t = totals(T0 + 10 * HOUR + 7 * DAY, 168);
	ck_assert_int_eq(t.delivered, 0);
	/* a slot reused after it expired starts again */
	bw_window_add(&win, T0 + 31 * DAY, 7, 0);
	t = totals(T0 + 31 * DAY, 168);
	ck_assert_int_eq(t.delivered, 7);
	ck_assert_int_eq(t.complaints, 0);

	/* back by more than the ring: the later bucket in the slot keeps the counts */
	bw_window_init(&win);
	bw_window_add(&win, T0 + 800 * HOUR, 10, 1);
	bw_window_add(&win, T0 + 56 * HOUR, 20, 2); /* (800 - 56) % 744 == 0 */
	t = totals(T0 + 56 * HOUR, 168);
	ck_assert_int_eq(t.delivered, 30);
	ck_assert_int_eq(t.complaints, 3);
	t = totals(T0 + 800 * HOUR + 7 * DAY - 1, 168);
	ck_assert_int_eq(t.delivered, 30);
}
END_TEST

START_TEST(test_window_rate)
{
	bw_window_totals t = {999, 1, 168};
	uint64_t ppm = 7;

	ck_assert(!bw_window_rate_ppm(&t, 1000, &ppm)); /* not enough volume */
	ck_assert_int_eq(ppm, 0);
	t.delivered = 1000;
	ck_assert(bw_window_rate_ppm(&t, 1000, &ppm));
	ck_assert_int_eq(ppm, 1000);
	t.delivered = 1001;
	ck_assert(bw_window_rate_ppm(&t, 1000, &ppm));
	ck_assert_int_eq(ppm, 999); /* rounded down */
	t = (bw_window_totals){1523, 2, 168};
	ck_assert(bw_window_rate_ppm(&t, 1000, &ppm));
	ck_assert_int_eq(ppm, 1313);
	t = (bw_window_totals){0, 0, 168};
	ck_assert(!bw_window_rate_ppm(&t, 0, &ppm));
	t = (bw_window_totals){10, 20, 168};
	ck_assert(bw_window_rate_ppm(&t, 0, &ppm));
	ck_assert_int_eq(ppm, 2000000);

	/* counts saturate */
	bw_window_init(&win);
	bw_window_add(&win, T0, UINT32_MAX, 0);
	bw_window_add(&win, T0, 5, BW_WINDOW_COUNT_MAX);
	bw_window_add(&win, T0, 0, 1);
	t = totals(T0, 168);
	ck_assert_int_eq(t.delivered, BW_WINDOW_COUNT_MAX);
	ck_assert_int_eq(t.complaints, BW_WINDOW_COUNT_MAX);
}
END_TEST

static bw_window win2;

START_TEST(test_window_codec)
{
	const int64_t h0 = T0 / HOUR;
	char want[128], err[160] = "";
	char *s;

	bw_window_init(&win);
	s = bw_window_encode(&win, T0);
	ck_assert_str_eq(s, "{\"v\":1,\"buckets\":\"\"}");
	bw_window_init(&win2);
	bw_window_add(&win2, T0, 1, 1);
	ck_assert(bw_window_decode(s, &win2, err, sizeof(err)));
	for (int i = 0; i < BW_WINDOW_HOURS_MAX; i++)
		ck_assert_int_eq(win2.b[i].hour, -1);
	free(s);

	bw_window_add(&win, T0 + 3 * HOUR, 7, 1);
	bw_window_add(&win, T0, 5, 0);
	bw_window_add(&win, T0 + 4 * HOUR + 1, 0, 2);
	bw_window_add(&win, T0 - 800 * HOUR, 9, 9); /* expired for any window: left out */
	s = bw_window_encode(&win, T0 + 4 * HOUR);
	snprintf(
	    want, sizeof(want), "{\"v\":1,\"buckets\":\"%lld:5:0;3:7:1;1:0:2\"}", (long long)h0);
	ck_assert_str_eq(s, want);
	ck_assert_msg(bw_window_decode(s, &win2, err, sizeof(err)), "%s", err);
	free(s);
	for (int i = 0; i < BW_WINDOW_HOURS_MAX; i++) {
		if (win.b[i].hour == h0 - 800) {
			ck_assert_int_eq(win2.b[i].hour, -1);
			continue;
		}
		ck_assert_int_eq(win2.b[i].hour, win.b[i].hour);
		ck_assert_int_eq(win2.b[i].delivered, win.b[i].delivered);
		ck_assert_int_eq(win2.b[i].complaints, win.b[i].complaints);
	}

	/* the edge of the ring: kept 743 hours on, left out at 744 */
	bw_window_init(&win);
	bw_window_add(&win, T0, 1, 0);
	s = bw_window_encode(&win, T0 + 743 * HOUR + HOUR - 1);
	ck_assert(strstr(s, ":1:0") != NULL);
	free(s);
	s = bw_window_encode(&win, T0 + 744 * HOUR);
	ck_assert_str_eq(s, "{\"v\":1,\"buckets\":\"\"}");
	free(s);
	ck_assert(bw_window_encode(&win, -1) == NULL);
}
END_TEST

/* Every hour of the ring full to the brim still fits a store value. */
START_TEST(test_window_codec_full)
{
	const bw_time_ms now = BW_TIME_MAX;
	bw_window_totals a, b;
	char err[160] = "";
	char *s;

	bw_window_init(&win);
	for (int i = 0; i < BW_WINDOW_HOURS_MAX; i++)
		bw_window_add(&win, now - i * HOUR, UINT32_MAX, UINT32_MAX);
	s = bw_window_encode(&win, now);
	ck_assert(s != NULL);
	ck_assert_msg(strlen(s) <= BW_STORE_VAL_MAX, "%zu bytes", strlen(s));
	ck_assert_msg(bw_window_decode(s, &win2, err, sizeof(err)), "%s", err);
	free(s);
	bw_window_totals_at(&win, now, BW_WINDOW_HOURS_MAX, &a);
	bw_window_totals_at(&win2, now, BW_WINDOW_HOURS_MAX, &b);
	ck_assert_int_eq(a.delivered, (uint64_t)BW_WINDOW_HOURS_MAX * BW_WINDOW_COUNT_MAX);
	ck_assert_int_eq(a.delivered, b.delivered);
	ck_assert_int_eq(a.complaints, b.complaints);
}
END_TEST

static const char *const window_bad[] = {
    "",
    "not json",
    "[]",
    "{}",
    "{\"v\":1}",
    "{\"buckets\":\"\"}",
    "{\"v\":2,\"buckets\":\"\"}",
    "{\"v\":\"1\",\"buckets\":\"\"}",
    "{\"v\":1,\"buckets\":\"\",\"x\":1}",
    "{\"v\":1,\"buckets\":\"\",\"v\":1}",
    "{\"v\":1,\"buckets\":5}",
    "{\"v\":1,\"buckets\":\"x\"}",
    "{\"v\":1,\"buckets\":\"1:2\"}",
    "{\"v\":1,\"buckets\":\"1:2:3;\"}",
    "{\"v\":1,\"buckets\":\";1:2:3\"}",
    "{\"v\":1,\"buckets\":\"1:2:3;0:1:1\"}",
    "{\"v\":1,\"buckets\":\"01:2:3\"}",
    "{\"v\":1,\"buckets\":\"-1:2:3\"}",
    "{\"v\":1,\"buckets\":\"+1:2:3\"}",
    "{\"v\":1,\"buckets\":\"1:100000000:0\"}",
    "{\"v\":1,\"buckets\":\"1:0:100000000\"}",
    "{\"v\":1,\"buckets\":\"1:2:3;744:1:1\"}",
    "{\"v\":1,\"buckets\":\"70389528:1:1\"}",
    "{\"v\":1,\"buckets\":\"70389527:1:1;1:1:1\"}",
    "{\"v\":1,\"buckets\":\"1: 2:3\"}",
    "{\"v\":1,\"buckets\":\"1:2:3:4\"}",
    "{\"v\":1,\"buckets\":\"1:2:3\\u0000\"}",
    "{\"v\":1,\"buckets\":\"99999999999999999999999:1:1\"}",
};

START_TEST(test_window_decode_bad)
{
	char err[160] = "";

	bw_window_init(&win2);
	bw_window_add(&win2, T0, 3, 3);
	ck_assert_msg(!bw_window_decode(window_bad[_i], &win2, err, sizeof(err)), "accepted: %s",
	    window_bad[_i]);
	ck_assert_msg(err[0] != '\0', "no reason for %s", window_bad[_i]);
	for (int i = 0; i < BW_WINDOW_HOURS_MAX; i++)
		ck_assert_int_eq(win2.b[i].hour, -1); /* left empty */
	ck_assert(!bw_window_decode(NULL, &win2, err, sizeof(err)));
}
END_TEST

START_TEST(test_window_decode_good)
{
	char err[160] = "";

	/* the last hour there is, and two hours 743 apart (different slots) */
	ck_assert_msg(
	    bw_window_decode("{\"buckets\":\"70389527:1:1\",\"v\":1}", &win2, err, sizeof(err)),
	    "%s", err);
	ck_assert_msg(bw_window_decode("{\"v\":1,\"buckets\":\"5:0:0;743:99999999:0\"}", &win2, err,
	                  sizeof(err)),
	    "%s", err);
	ck_assert_int_eq(win2.b[5].hour, 5);
	ck_assert_int_eq(win2.b[4].hour, 748);
	ck_assert_int_eq(win2.b[4].delivered, 99999999);
	/* the sentence says what is wrong */
	ck_assert(
	    !bw_window_decode("{\"v\":1,\"buckets\":\"7:1:1;0:1:1\"}", &win2, err, sizeof(err)));
	ck_assert_str_eq(err, "buckets: bucket 2: hours not ascending");
	ck_assert(!bw_window_decode("{\"v\":1,\"buckets\":\"7:1:1;x\"}", &win2, err, sizeof(err)));
	ck_assert_str_eq(err, "buckets: bucket 2: expected HOURS:DELIVERED:COMPLAINTS");
}
END_TEST

/* ---------------------------------------------------------------- sender states */

static bw_sender_policy pol;
static bw_sender snd;

static void
sender_setup(void)
{
	bw_sender_policy_default(&pol);
	bw_sender_init(&snd, T0);
}

static bw_window_totals
tot(uint64_t delivered, uint64_t complaints)
{
	return (bw_window_totals){delivered, complaints, 168};
}

/* One step with these totals. */
static bool
step(uint64_t delivered, uint64_t complaints, unsigned distinct, bw_time_ms now)
{
	bw_window_totals t = tot(delivered, complaints);

	return bw_sender_step(&pol, &snd, &t, distinct, now);
}

START_TEST(test_state_defaults)
{
	char err[160] = "";

	ck_assert(bw_sender_policy_check(&pol, err, sizeof(err)));
	ck_assert_int_eq(pol.throttle_ppm, 1000);
	ck_assert_int_eq(pol.grace_ppm, 3000);
	ck_assert_int_eq(pol.min_volume, 1000);
	ck_assert_int_eq(pol.min_complainers, 3);
	ck_assert_int_eq(pol.grace_period, 2 * HOUR);
	ck_assert_int_eq(pol.incident_deadline, 24 * HOUR);
	ck_assert(pol.throttle_factor == 0.25);
	ck_assert_int_eq(pol.window_hours, 168);
	ck_assert_int_eq(snd.state, BW_SS_ACTIVE);
	ck_assert_int_eq(snd.since, T0);
	ck_assert_str_eq(bw_sender_state_name(BW_SS_GRACE), "grace");
	ck_assert(bw_sender_state_name(BW_SS__N) == NULL);
	ck_assert_int_eq(bw_sender_state_parse("suspended"), BW_SS_SUSPENDED);
	ck_assert_int_eq(bw_sender_state_parse("Suspended"), -1);
	ck_assert_int_eq(bw_sender_state_parse(NULL), -1);
}
END_TEST

START_TEST(test_state_policy_bad)
{
	bw_sender_policy p;
	bw_window_totals t = tot(1000, 500);
	char err[160];

	for (int i = 0; i < 11; i++) {
		bw_sender_policy_default(&p);
		switch (i) {
		case 0:
			p.throttle_ppm = 0;
			break;
		case 1:
			p.grace_ppm = 1000001;
			break;
		case 2:
			p.grace_ppm = 999; /* below throttle */
			break;
		case 3:
			p.grace_period = 999;
			break;
		case 4:
			p.incident_deadline = 367 * DAY;
			break;
		case 5:
			p.throttle_factor = 0;
			break;
		case 6:
			p.throttle_factor = 1.01;
			break;
		case 7:
			p.throttle_factor = NAN;
			break;
		case 8:
			p.window_hours = 0;
			break;
		case 9:
			p.window_hours = BW_WINDOW_HOURS_MAX + 1;
			break;
		default:
			p.grace_period = -HOUR;
			break;
		}
		err[0] = '\0';
		ck_assert_msg(!bw_sender_policy_check(&p, err, sizeof(err)), "case %d", i);
		ck_assert_msg(err[0] != '\0', "case %d", i);
		/* a bad policy steps nothing */
		bw_sender_init(&snd, T0);
		ck_assert(!bw_sender_step(&p, &snd, &t, 100, T0 + 1));
		ck_assert_int_eq(snd.state, BW_SS_ACTIVE);
	}
}
END_TEST

START_TEST(test_state_throttle_threshold)
{
	/* just below 0.1 %, not enough volume, too few complainers: nothing */
	ck_assert(!step(1001, 1, 3, T0 + 1));
	ck_assert(!step(999, 1, 3, T0 + 2));
	ck_assert(!step(3000, 3, 2, T0 + 3));
	ck_assert_int_eq(snd.state, BW_SS_ACTIVE);
	ck_assert_int_eq(snd.last_seen, T0 + 3);
	/* exactly 0.1 % with the minimums */
	ck_assert(step(3000, 3, 3, T0 + 4));
	ck_assert_int_eq(snd.state, BW_SS_THROTTLED);
	ck_assert_int_eq(snd.since, T0 + 4);
	ck_assert_int_eq(snd.grace_until, 0);
	ck_assert_str_eq(snd.reason, "complaint rate 0.10% >= 0.10% over 7d "
	                             "(3000 delivered, 3 complaints from 3 recipients)");
	ck_assert(!step(3000, 3, 3, T0 + 5)); /* stays */
	ck_assert_int_eq(snd.since, T0 + 4);
	ck_assert_uint_eq((unsigned)(bw_sender_rate_factor(&pol, &snd) * 100), 25);
}
END_TEST

START_TEST(test_state_throttle_recovers)
{
	bw_window_totals t = tot(2000, 1);

	ck_assert(step(1523, 2, 3, T0 + 1));
	ck_assert_str_eq(snd.reason, "complaint rate 0.1313% >= 0.10% over 7d "
	                             "(1523 delivered, 2 complaints from 3 recipients)");
	/* no rate known: stays */
	ck_assert(!bw_sender_step(&pol, &snd, NULL, 0, T0 + 2));
	ck_assert_int_eq(snd.state, BW_SS_THROTTLED);
	/* below the threshold: back to active */
	ck_assert(bw_sender_step(&pol, &snd, &t, 3, T0 + 3));
	ck_assert_int_eq(snd.state, BW_SS_ACTIVE);
	ck_assert_str_eq(snd.reason, "complaint rate 0.05% < 0.10% over 7d "
	                             "(2000 delivered, 1 complaints from 3 recipients)");
	ck_assert(step(1000, 1, 3, T0 + 4));
	/* the window emptied (volume under the minimum): back to active */
	ck_assert(step(10, 1, 3, T0 + 5));
	ck_assert_int_eq(snd.state, BW_SS_ACTIVE);
	ck_assert_str_eq(snd.reason, "too little volume over 7d to count (10 < 1000 delivered)");
	ck_assert(step(1000, 1, 3, T0 + 6));
	ck_assert(step(1000, 1, 2, T0 + 7));
	ck_assert_int_eq(snd.state, BW_SS_ACTIVE);
	ck_assert_str_eq(snd.reason, "only 2 distinct complainers over 7d (3 needed)");
	ck_assert(bw_sender_rate_factor(&pol, &snd) == 1);
}
END_TEST

START_TEST(test_state_grace_threshold)
{
	/* 0.2997 %: throttled, not grace */
	ck_assert(step(1001, 3, 3, T0 + 1));
	ck_assert_int_eq(snd.state, BW_SS_THROTTLED);
	/* exactly 0.3 %: grace, from throttled */
	ck_assert(step(1000, 3, 3, T0 + 2));
	ck_assert_int_eq(snd.state, BW_SS_GRACE);
	ck_assert_int_eq(snd.grace_until, T0 + 2 + 2 * HOUR);
	ck_assert_str_eq(snd.reason, "complaint rate 0.30% >= 0.30% over 7d "
	                             "(1000 delivered, 3 complaints from 3 recipients)");
	ck_assert(bw_sender_rate_factor(&pol, &snd) == 0.25);
	/* straight from active too, but the minimums hold for grace as well */
	bw_sender_init(&snd, T0);
	ck_assert(!step(1000, 300, 2, T0 + 1));
	ck_assert(!step(999, 300, 3, T0 + 1));
	ck_assert(step(1000, 300, 3, T0 + 1));
	ck_assert_int_eq(snd.state, BW_SS_GRACE);
}
END_TEST

START_TEST(test_state_grace_runs_out)
{
	const bw_time_ms g = T0 + HOUR;

	ck_assert(step(1000, 3, 3, g));
	/* the rate staying high does not push grace_until on */
	ck_assert(!step(1000, 10, 10, g + 1));
	ck_assert_int_eq(snd.grace_until, g + 2 * HOUR);
	ck_assert_int_eq(snd.since, g);
	/* the rate falling does not end grace */
	ck_assert(!step(100000, 0, 0, g + HOUR));
	ck_assert(!bw_sender_step(&pol, &snd, NULL, 0, g + 2 * HOUR - 1));
	ck_assert_int_eq(snd.state, BW_SS_GRACE);
	ck_assert(step(100000, 0, 0, g + 2 * HOUR));
	ck_assert_int_eq(snd.state, BW_SS_SUSPENDED);
	ck_assert_int_eq(snd.since, g + 2 * HOUR);
	ck_assert_int_eq(snd.grace_until, 0);
	ck_assert_str_eq(snd.reason, "grace period ran out");
	ck_assert(bw_sender_rate_factor(&pol, &snd) == 0);
	/* suspended stays, whatever the rate or the time */
	ck_assert(!step(100000, 0, 0, g + 365 * DAY));
	ck_assert(!step(1000, 1000, 1000, g + 366 * DAY));
	ck_assert_int_eq(snd.state, BW_SS_SUSPENDED);
}
END_TEST

/* A clock that goes back must not end grace early, nor may a record from
 * a clock that ran ahead (last_seen far on). */
START_TEST(test_state_grace_clock_back)
{
	const bw_time_ms g = T0 + 10 * HOUR;

	ck_assert(step(1000, 3, 3, g));
	ck_assert(!bw_sender_step(&pol, &snd, NULL, 0, g + HOUR));
	ck_assert(!bw_sender_step(&pol, &snd, NULL, 0, g - 5 * HOUR));
	ck_assert_int_eq(snd.state, BW_SS_GRACE);
	ck_assert_int_eq(snd.last_seen, g + HOUR);
	ck_assert_int_eq(bw_sender_clock_lag(&snd, g - 5 * HOUR), 6 * HOUR);
	ck_assert_int_eq(bw_sender_clock_lag(&snd, g + 3 * HOUR), 0);
	/* a host whose clock ran a day ahead touched the record */
	snd.last_seen = g + DAY;
	ck_assert(!bw_sender_step(&pol, &snd, NULL, 0, g + 2 * HOUR - 1));
	ck_assert_int_eq(snd.state, BW_SS_GRACE);
	ck_assert_int_eq(snd.last_seen, g + DAY);
	ck_assert(bw_sender_step(&pol, &snd, NULL, 0, g + 2 * HOUR));
	ck_assert_int_eq(snd.state, BW_SS_SUSPENDED);
}
END_TEST

/* A jump forward is time passing: grace runs out at once (fails closed). */
START_TEST(test_state_grace_clock_forward)
{
	ck_assert(step(1000, 3, 3, T0));
	ck_assert(bw_sender_step(&pol, &snd, NULL, 0, T0 + 30 * DAY));
	ck_assert_int_eq(snd.state, BW_SS_SUSPENDED);
	/* and a jump back afterwards does not undo it */
	ck_assert(!bw_sender_step(&pol, &snd, NULL, 0, T0));
	ck_assert_int_eq(snd.state, BW_SS_SUSPENDED);
}
END_TEST

START_TEST(test_state_incident)
{
	const bw_time_ms o = T0 + HOUR;

	ck_assert(!bw_sender_ack_incident(&snd, o)); /* none open */
	ck_assert(bw_sender_open_incident(&snd, o));
	ck_assert(!bw_sender_open_incident(&snd, o + HOUR)); /* one at a time */
	ck_assert_int_eq(snd.incident_opened_at, o);
	ck_assert(!step(100, 1, 1, o + 24 * HOUR - 1));
	ck_assert_int_eq(snd.state, BW_SS_ACTIVE);
	ck_assert(step(100, 1, 1, o + 24 * HOUR));
	ck_assert_int_eq(snd.state, BW_SS_SUSPENDED);
	ck_assert_str_eq(snd.reason, "incident unanswered for 24h");
	ck_assert(snd.incident_open);

	/* acknowledged a millisecond before the deadline: never suspended */
	bw_sender_init(&snd, T0);
	ck_assert(bw_sender_open_incident(&snd, o));
	ck_assert(bw_sender_ack_incident(&snd, o + 24 * HOUR - 1));
	ck_assert(!bw_sender_ack_incident(&snd, o + 24 * HOUR)); /* once */
	ck_assert_int_eq(snd.incident_acked_at, o + 24 * HOUR - 1);
	ck_assert(!step(100, 1, 1, o + 30 * DAY));
	ck_assert_int_eq(snd.state, BW_SS_ACTIVE);
	ck_assert(!bw_sender_open_incident(&snd, o + 30 * DAY)); /* stays acknowledged */

	/* acknowledged at the deadline: too late, even if no step ran before */
	bw_sender_init(&snd, T0);
	ck_assert(bw_sender_open_incident(&snd, o));
	ck_assert(bw_sender_ack_incident(&snd, o + 24 * HOUR));
	ck_assert(step(100, 1, 1, o + 24 * HOUR + 1));
	ck_assert_int_eq(snd.state, BW_SS_SUSPENDED);

	/* from throttled too; the clock going back never brings it forward */
	bw_sender_init(&snd, T0);
	ck_assert(step(1000, 1, 3, o));
	ck_assert(bw_sender_open_incident(&snd, o));
	ck_assert(!step(1000, 1, 3, o + 23 * HOUR));
	ck_assert(!step(1000, 1, 3, o - 5 * HOUR));
	ck_assert(!step(1000, 1, 3, o + 24 * HOUR - 1));
	ck_assert_int_eq(snd.state, BW_SS_THROTTLED);
	ck_assert(step(1000, 1, 3, o + 24 * HOUR));
	ck_assert_int_eq(snd.state, BW_SS_SUSPENDED);
}
END_TEST

/* In grace with an incident: whichever deadline came first is the reason. */
START_TEST(test_state_incident_and_grace)
{
	ck_assert(bw_sender_open_incident(&snd, T0));
	ck_assert(step(1000, 3, 3, T0 + 23 * HOUR)); /* grace until T0 + 25 h */
	ck_assert(step(1000, 3, 3, T0 + 26 * HOUR));
	ck_assert_str_eq(snd.reason, "incident unanswered for 24h");

	bw_sender_init(&snd, T0);
	ck_assert(step(1000, 3, 3, T0));                     /* grace until T0 + 2 h */
	ck_assert(bw_sender_open_incident(&snd, T0 + HOUR)); /* answer by T0 + 25 h */
	ck_assert(step(1000, 3, 3, T0 + 46 * HOUR));
	ck_assert_str_eq(snd.reason, "grace period ran out");
}
END_TEST

START_TEST(test_state_admin)
{
	/* flag: grace at the next step, with or without rates */
	ck_assert(bw_sender_flag_grace(&snd, T0 + 1));
	ck_assert(!bw_sender_flag_grace(&snd, T0 + 2));
	ck_assert_int_eq(snd.state, BW_SS_ACTIVE);
	ck_assert(bw_sender_step(&pol, &snd, NULL, 0, T0 + 3));
	ck_assert_int_eq(snd.state, BW_SS_GRACE);
	ck_assert_int_eq(snd.grace_until, T0 + 3 + 2 * HOUR);
	ck_assert_str_eq(snd.reason, "flagged by an admin");
	ck_assert(bw_sender_step(&pol, &snd, NULL, 0, T0 + 3 + 2 * HOUR));
	ck_assert_int_eq(snd.state, BW_SS_SUSPENDED);
	ck_assert(!bw_sender_flag_grace(&snd, T0 + 4 * HOUR));
	ck_assert(!bw_sender_suspend(&snd, T0 + 4 * HOUR));

	/* resolve: active, incident closed, flag cleared */
	ck_assert(bw_sender_open_incident(&snd, T0 + 4 * HOUR));
	ck_assert(bw_sender_resolve(&snd, T0 + 5 * HOUR));
	ck_assert_int_eq(snd.state, BW_SS_ACTIVE);
	ck_assert_int_eq(snd.since, T0 + 5 * HOUR);
	ck_assert(!snd.incident_open);
	ck_assert_int_eq(snd.incident_opened_at, 0);
	ck_assert(!snd.admin_flag);
	ck_assert_str_eq(snd.reason, "resolved by an admin");
	ck_assert(!bw_sender_resolve(&snd, T0 + 6 * HOUR)); /* nothing to do */
	ck_assert(!bw_sender_step(&pol, &snd, NULL, 0, T0 + 7 * HOUR));

	/* admin suspension from active; only resolve ends it */
	ck_assert(bw_sender_suspend(&snd, T0 + 8 * HOUR));
	ck_assert_int_eq(snd.state, BW_SS_SUSPENDED);
	ck_assert_str_eq(snd.reason, "suspended by an admin");
	ck_assert(!step(1000000, 0, 0, T0 + 100 * DAY));
	ck_assert(bw_sender_resolve(&snd, T0 + 100 * DAY));
	ck_assert_int_eq(snd.state, BW_SS_ACTIVE);

	/* bad times change nothing */
	ck_assert(!bw_sender_suspend(&snd, -1));
	ck_assert(!bw_sender_open_incident(&snd, BW_TIME_MAX + 1));
	ck_assert(!step(1000, 300, 3, -1));
	ck_assert_int_eq(snd.state, BW_SS_ACTIVE);
}
END_TEST

/* ---------------------------------------------------------------- times and JSON */

START_TEST(test_time_ms)
{
	static const struct {
		bw_time_ms t;
		const char *s;
	} rows[] = {
	    {0, "1970-01-01T00:00:00.000Z"},
	    {T0, "2026-01-01T00:00:00.000Z"},
	    {T0 + 1, "2026-01-01T00:00:00.001Z"},
	    {1709251199999LL, "2024-02-29T23:59:59.999Z"},
	    {951782400000LL, "2000-02-29T00:00:00.000Z"},
	    {BW_TIME_MAX, "9999-12-31T23:59:59.999Z"},
	};
	static const char *const bad[] = {"", "2026-01-01T00:00:00.000", "2026-01-01 00:00:00.000Z",
	    "2026-01-01T00:00:00.00Z", "2026-01-01T00:00:00.0000Z", "2026-01-01T00:00:00.000+00:00",
	    "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "1969-12-31T23:59:59.999Z",
	    "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:60Z",
	    "2026-01-01t00:00:00Z", "2026-01-01T00:00:00.000Zx", "+026-01-01T00:00:00Z",
	    " 026-01-01T00:00:00Z", "2026-01-01T00:00:00.12aZ", "2026-01-01T00:00:00.-12Z",
	    "2026-01-01T00:00:00x123Z"};
	char buf[BW_TIME_MS_LEN];
	bw_time_ms t;

	for (int i = 0; i < NROWS(rows); i++) {
		bw_time_ms_fmt(rows[i].t, buf, sizeof(buf));
		ck_assert_str_eq(buf, rows[i].s);
		ck_assert_msg(bw_time_ms_parse(rows[i].s, &t), "%s", rows[i].s);
		ck_assert_int_eq(t, rows[i].t);
	}
	ck_assert(bw_time_ms_parse("2026-01-01T00:00:01Z", &t));
	ck_assert_int_eq(t, T0 + 1000);
	for (int i = 0; i < NROWS(bad); i++)
		ck_assert_msg(!bw_time_ms_parse(bad[i], &t), "accepted %s", bad[i]);
	/* every day for 30 years and back */
	for (bw_time_ms x = T0 - 30 * 365 * DAY + 12345; x < T0; x += DAY + 7) {
		bw_time_ms_fmt(x, buf, sizeof(buf));
		ck_assert(bw_time_ms_parse(buf, &t));
		ck_assert_int_eq(t, x);
	}
}
END_TEST

START_TEST(test_sender_json)
{
	bw_sender b;
	char err[160] = "";
	char *s;

	s = bw_sender_to_json(&snd);
	ck_assert_str_eq(s, "{\"state\":\"active\",\"since\":\"2026-01-01T00:00:00.000Z\","
	                    "\"last_seen\":\"2026-01-01T00:00:00.000Z\"}");
	ck_assert(bw_sender_from_json(s, &b, err, sizeof(err)));
	ck_assert_int_eq(b.state, BW_SS_ACTIVE);
	ck_assert_int_eq(b.since, T0);
	ck_assert_int_eq(b.grace_until, 0);
	ck_assert(!b.incident_open);
	ck_assert_str_eq(b.reason, "");
	free(s);

	/* every field */
	ck_assert(bw_sender_open_incident(&snd, T0 + 1));
	ck_assert(bw_sender_ack_incident(&snd, T0 + 2));
	ck_assert(bw_sender_flag_grace(&snd, T0 + 3));
	ck_assert(bw_sender_step(&pol, &snd, NULL, 0, T0 + 4));
	snd.last_seen = T0 + DAY + 5;
	s = bw_sender_to_json(&snd);
	ck_assert_str_eq(s, "{\"state\":\"grace\",\"since\":\"2026-01-01T00:00:00.004Z\","
	                    "\"grace_until\":\"2026-01-01T02:00:00.004Z\",\"incident_open\":true,"
	                    "\"incident_opened_at\":\"2026-01-01T00:00:00.001Z\","
	                    "\"incident_acked_at\":\"2026-01-01T00:00:00.002Z\","
	                    "\"admin_flag\":true,\"last_seen\":\"2026-01-02T00:00:00.005Z\","
	                    "\"reason\":\"flagged by an admin\"}");
	ck_assert_msg(bw_sender_from_json(s, &b, err, sizeof(err)), "%s", err);
	free(s);
	ck_assert_int_eq(b.state, snd.state);
	ck_assert_int_eq(b.since, snd.since);
	ck_assert_int_eq(b.grace_until, snd.grace_until);
	ck_assert(b.incident_open);
	ck_assert_int_eq(b.incident_opened_at, snd.incident_opened_at);
	ck_assert_int_eq(b.incident_acked_at, snd.incident_acked_at);
	ck_assert(b.admin_flag);
	ck_assert_int_eq(b.last_seen, snd.last_seen);
	ck_assert_str_eq(b.reason, snd.reason);
	/* and once more gives the same text */
	s = bw_sender_to_json(&b);
	ck_assert(strstr(s, "\"reason\":\"flagged by an admin\"") != NULL);
	free(s);

	/* nulls are absent; order does not matter */
	ck_assert(bw_sender_from_json("{\"since\":\"2026-01-01T00:00:00Z\",\"reason\":null,"
	                              "\"state\":\"suspended\",\"admin_flag\":false}",
	    &b, err, sizeof(err)));
	ck_assert_int_eq(b.state, BW_SS_SUSPENDED);
	ck_assert(!b.admin_flag);

	/* what cannot be written */
	b = snd;
	b.state = BW_SS__N;
	ck_assert(bw_sender_to_json(&b) == NULL);
	b = snd;
	b.since = -1;
	ck_assert(bw_sender_to_json(&b) == NULL);
	b = snd;
	memset(b.reason, 'x', sizeof(b.reason));
	ck_assert(bw_sender_to_json(&b) == NULL);
}
END_TEST

#define SINCE "\"since\":\"2026-01-01T00:00:00.000Z\""
#define R170                                                                                       \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"       \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static const struct {
	const char *json, *err;
} sender_bad[] = {
    {"", "bad JSON"},
    {"[1]", "not a JSON object"},
    {"{\"state\":\"active\"," SINCE ",\"x\":1}", "unknown field 'x'"},
    {"{\"state\":\"paused\"," SINCE "}", "unknown state 'paused'"},
    {"{\"state\":\"Active\"," SINCE "}", "unknown state"},
    {"{\"state\":1," SINCE "}", "field 'state': expected a string"},
    {"{\"state\":null," SINCE "}", "field 'state'"},
    {"{" SINCE "}", "missing field 'state'"},
    {"{\"state\":\"active\"}", "missing field 'since'"},
    {"{\"state\":\"active\",\"since\":1767225600000}", "field 'since': expected a string"},
    {"{\"state\":\"active\",\"since\":\"2026-01-01 00:00:00Z\"}", "field 'since': not a time"},
    {"{\"state\":\"active\",\"since\":\"2026-01-01T00:00:00+01:00\"}", "field 'since'"},
    {"{\"state\":\"active\",\"since\":\"1960-01-01T00:00:00Z\"}", "field 'since'"},
    {"{\"state\":\"active\"," SINCE ",\"state\":\"active\"}", "bad JSON"},
    {"{\"state\":\"active\"," SINCE ",\"incident_open\":\"yes\"}", "expected true or false"},
    {"{\"state\":\"active\"," SINCE ",\"admin_flag\":1}", "expected true or false"},
    {"{\"state\":\"grace\"," SINCE "}", "field 'grace_until': missing in state grace"},
    {"{\"state\":\"active\"," SINCE ",\"grace_until\":\"2026-01-01T02:00:00Z\"}",
        "only in state grace"},
    {"{\"state\":\"active\"," SINCE ",\"incident_acked_at\":\"2026-01-01T02:00:00Z\"}",
        "without an open incident"},
    {"{\"state\":\"active\"," SINCE ",\"reason\":\"" R170 "\"}", "field 'reason'"},
    {"{\"state\":\"active\"," SINCE ",\"reason\":\"a\\u0000b\"}", "bad JSON"},
    {"{\"state\":\"active\"," SINCE ",\"reason\":5}", "field 'reason': expected a string"},
};

START_TEST(test_sender_json_bad)
{
	bw_sender b;
	char err[200] = "";

	memset(&b, 0x55, sizeof(b));
	ck_assert_msg(!bw_sender_from_json(sender_bad[_i].json, &b, err, sizeof(err)),
	    "accepted %s", sender_bad[_i].json);
	ck_assert_msg(strstr(err, sender_bad[_i].err) != NULL, "%s: got '%s', want '%s'",
	    sender_bad[_i].json, err, sender_bad[_i].err);
	ck_assert_int_eq(b.state, 0); /* left zeroed */
	ck_assert_int_eq(b.since, 0);
}
END_TEST

/* ---------------------------------------------------------------- main */

/* ---- the clock ---- */

START_TEST(test_clock_ignores_steps)
{
	int64_t wall0 = 1796600000000LL, mono0 = 5000;

	/* ten seconds on: the wall clock kept pace */
	ck_assert_int_eq(bw_clock_skew(wall0, mono0, wall0 + 10000, mono0 + 10000), 0);
	/* an hour's step forward (an admin's date): the clock reads ten
	   seconds on, not an hour; a grace period ends no earlier */
	ck_assert_int_eq(bw_clock_skew(wall0, mono0, wall0 + 10000 + BW_HOUR_MS, mono0 + 10000), BW_HOUR_MS);
	/* a step back likewise */
	ck_assert_int_eq(bw_clock_skew(wall0, mono0, wall0 - 50000, mono0 + 10000), -60000);
}
END_TEST

/* the calendar against the C library's, over every day of the years the
   stored times can take */
START_TEST(test_calendar)
{
	char mine[20], libc[64];
	int64_t back;

	/* 13 days a step: every day of the four-year cycle comes round */
	for (int64_t day = -719528; day <= 2932896; day += 13) {
		int64_t secs = day * 86400 + (day % 86400 + 86400) % 86400;
		time_t tt = (time_t)secs;
		struct tm tm;

		ck_assert(gmtime_r(&tt, &tm) != NULL);
		snprintf(libc, sizeof(libc), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		bw_time_put(secs, mine);
		mine[19] = 0;
		if (strcmp(mine, libc) != 0 || !bw_time_get(mine, &back) || back != secs ||
		    bw_days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) != day)
			ck_abort_msg("day %lld: %s, the C library %s", (long long)day, mine, libc);
	}
	/* what a day of the calendar is */
	ck_assert(bw_civil_ok(2024, 2, 29));
	ck_assert(bw_civil_ok(2000, 2, 29));
	ck_assert(!bw_civil_ok(1900, 2, 29));
	ck_assert(!bw_civil_ok(2026, 2, 29));
	ck_assert(!bw_civil_ok(2026, 4, 31));
	ck_assert(!bw_civil_ok(2026, 0, 1));
	ck_assert(!bw_civil_ok(2026, 13, 1));
	ck_assert(!bw_civil_ok(2026, 1, 0));
	ck_assert(!bw_civil_ok(-1, 1, 1));
	ck_assert(!bw_civil_ok(10000, 1, 1));
	ck_assert(!bw_time_get("2026-01-01T00:00:60", &back));
	ck_assert(!bw_time_get("2026-01-01t00:00:00", &back));
	ck_assert(!bw_time_get("2026-01-01T24:00:00", &back));
	ck_assert(!bw_time_get("2026-01-01T00:60:00", &back));
	ck_assert(!bw_time_get("2026-01-01T0a:00:00", &back));
	ck_assert(!bw_time_get("2026/01-01T00:00:00", &back));
}
END_TEST

START_TEST(test_clock_now)
{
	struct timespec ts;
	int64_t a = bw_clock_now_ms(), b, wall;

	clock_gettime(CLOCK_REALTIME, &ts);
	wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	b = bw_clock_now_ms();
	ck_assert(b >= a);
	/* with the system clock left alone, it is the wall clock */
	ck_assert_msg(wall - a >= -5 && wall - a <= 1000, "clock %lld, wall %lld", (long long)a, (long long)wall);
	ck_assert_int_eq(bw_clock_now(), (time_t)(bw_clock_now_ms() / 1000));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("rate");
	TCase *tc;
	SRunner *sr;
	int failed;

	tc = tcase_create("clock");
	tcase_add_test(tc, test_clock_ignores_steps);
	tcase_add_test(tc, test_calendar);
	tcase_add_test(tc, test_clock_now);
	suite_add_tcase(s, tc);
	tc = tcase_create("gcra");
	tcase_add_test(tc, test_gcra_burst_then_rate);
	tcase_add_test(tc, test_gcra_many);
	tcase_add_test(tc, test_gcra_fraction);
	tcase_add_test(tc, test_gcra_scale);
	tcase_add_test(tc, test_gcra_clock_back);
	tcase_add_test(tc, test_gcra_clock_forward);
	tcase_add_test(tc, test_gcra_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("window");
	tcase_add_test(tc, test_window_expiry);
	tcase_add_test(tc, test_window_clock_jumps);
	tcase_add_test(tc, test_window_rate);
	tcase_add_test(tc, test_window_codec);
	tcase_add_test(tc, test_window_codec_full);
	tcase_add_loop_test(tc, test_window_decode_bad, 0, NROWS(window_bad));
	tcase_add_test(tc, test_window_decode_good);
	suite_add_tcase(s, tc);

	tc = tcase_create("sender");
	tcase_add_checked_fixture(tc, sender_setup, NULL);
	tcase_add_test(tc, test_state_defaults);
	tcase_add_test(tc, test_state_policy_bad);
	tcase_add_test(tc, test_state_throttle_threshold);
	tcase_add_test(tc, test_state_throttle_recovers);
	tcase_add_test(tc, test_state_grace_threshold);
	tcase_add_test(tc, test_state_grace_runs_out);
	tcase_add_test(tc, test_state_grace_clock_back);
	tcase_add_test(tc, test_state_grace_clock_forward);
	tcase_add_test(tc, test_state_incident);
	tcase_add_test(tc, test_state_incident_and_grace);
	tcase_add_test(tc, test_state_admin);
	tcase_add_test(tc, test_time_ms);
	tcase_add_test(tc, test_sender_json);
	tcase_add_loop_test(tc, test_sender_json_bad, 0, NROWS(sender_bad));
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
