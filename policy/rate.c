/*
 * rate.c - GCRA rate limits, the hourly complaint window and the sender
 * state machine (DESIGN.md 4, "Complaints and rates").
 *
 * Pure logic over values the caller reads from and writes to the store;
 * jansson for the JSON of the records. No clock, no I/O, no logging: the
 * same arguments always give the same result, which is what lets the
 * tests pin every boundary and lets a fleet of hosts share the records.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* strnlen */
#endif
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "clock.h"
#include "log.h"
#include "rate.h"
#include "store.h"

#define US_PER_MS 1000
#define HOUR_MAX (BW_TIME_MAX / BW_HOUR_MS) /* the last hour number */
#define POLICY_PERIOD_MIN 1000LL
#define POLICY_PERIOD_MAX (366 * BW_DAY_MS)
#define PPM 1000000u

/* ---------------------------------------------------------------- small helpers */

static bool
time_ok(bw_time_ms t)
{
	return t >= 0 && t <= BW_TIME_MAX;
}

/* "2h", "24h", "90m", "7d": a duration for a reason sentence (a day in
 * hours, as policies say "24 hours"). */
static void
fmt_dur(bw_time_ms ms, char *buf, size_t len)
{
	static const struct {
		bw_time_ms unit;
		const char *name;
	} u[] = {{BW_DAY_MS, "d"}, {BW_HOUR_MS, "h"}, {60000, "m"}, {1000, "s"}};

	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++)
		if (ms >= u[i].unit && ms % u[i].unit == 0 &&
		    !(u[i].unit == BW_DAY_MS && ms == BW_DAY_MS)) {
			snprintf(buf, len, "%lld%s", (long long)(ms / u[i].unit), u[i].name);
			return;
		}
	snprintf(buf, len, "%lldms", (long long)ms);
}

/* ppm as a percentage, exact, with two to four decimals: 1000 "0.10%",
 * 1313 "0.1313%". */
static void
fmt_ppm(uint64_t ppm, char *buf, size_t len)
{
	char frac[8];
	size_t n;

	snprintf(frac, sizeof(frac), "%04u", (unsigned)(ppm % 10000));
	for (n = 4; n > 2 && frac[n - 1] == '0'; n--)
		;
	frac[n] = '\0';
	snprintf(buf, len, "%llu.%s%%", (unsigned long long)(ppm / 10000), frac);
}

/* ---------------------------------------------------------------- GCRA */

/* Microseconds between events, rounded up (never above the rate). */
static int64_t
interval_us(const bw_gcra_limit *l)
{
	int64_t p = l->period * US_PER_MS;

	return (p + l->count - 1) / l->count;
}

bool
bw_gcra_limit_check(const bw_gcra_limit *l, char *err, size_t errlen)
{
	if (l == NULL) {
		bw_seterr(err, errlen, "no limit");
		return false;
	}
	if (l->count == 0) {
		bw_seterr(err, errlen, "rate count must be at least 1");
		return false;
	}
	if (l->period < 1 || l->period > BW_GCRA_PERIOD_MAX) {
		bw_seterr(err, errlen, "rate period must be 1 ms to %lld days",
		    (long long)(BW_GCRA_PERIOD_MAX / BW_DAY_MS));
		return false;
	}
	if (l->burst < 1 || l->burst > BW_GCRA_BURST_MAX) {
		bw_seterr(err, errlen, "burst must be 1 to %d", BW_GCRA_BURST_MAX);
		return false;
	}
	/* bounds the TAT to now plus this: no overflow anywhere below */
	if (interval_us(l) > BW_GCRA_PERIOD_MAX * US_PER_MS / l->burst) {
		bw_seterr(err, errlen, "burst %u at %u per %lld ms spans more than %lld days",
		    l->burst, l->count, (long long)l->period,
		    (long long)(BW_GCRA_PERIOD_MAX / BW_DAY_MS));
		return false;
	}
	return true;
}

bool
bw_gcra_scale(const bw_gcra_limit *l, double factor, bw_gcra_limit *out)
{
	bw_gcra_limit r;
	double d;

	if (l == NULL || out == NULL || !isfinite(factor) || factor <= 0 || factor > 1 ||
	    !bw_gcra_limit_check(l, NULL, 0))
		return false;
	d = ceil((double)l->period / factor);
	if (!(d <= (double)BW_GCRA_PERIOD_MAX))
		return false;
	r = *l;
	r.period = (bw_time_ms)d;
	if (!bw_gcra_limit_check(&r, NULL, 0))
		return false;
	*out = r;
	return true;
}

/*
 * GCRA with a tolerance of the whole burst: n events are admitted when
 * the TAT they would leave is at most burst intervals ahead of now. An
 * admitted take never leaves the TAT more than that ahead, so a stored
 * TAT further ahead means the clock went back: it is clamped to an empty
 * bucket at now, so a jump back costs one refill, not the jump. The clamp
 * is kept even when the take is refused: were it recomputed from each new
 * now, the bucket would stay empty until the clock caught up. The slack
 * is for hosts of a fleet whose clocks differ a little: were each host
 * behind the others to clamp, every turn between them would free that
 * difference again and the fleet would send faster than the limit.
 */
bool
bw_gcra_take(
    const bw_gcra_limit *l, int64_t *tat, bw_time_ms now, unsigned n, bw_time_ms *retry_after)
{
	int64_t t, span, now_us, base, next;

	if (retry_after != NULL)
		*retry_after = -1;
	if (!bw_gcra_limit_check(l, NULL, 0) || tat == NULL || !time_ok(now) || n > l->burst)
		return false;
	if (retry_after != NULL)
		*retry_after = 0;
	if (n == 0)
		return true;
	t = interval_us(l);
	span = t * l->burst;
	now_us = now * US_PER_MS;
	base = *tat;
	if (base < now_us)
		base = now_us;
	else if (base - now_us > span + BW_GCRA_CLOCK_SLACK * US_PER_MS)
		base = *tat = now_us + span + BW_GCRA_CLOCK_SLACK * US_PER_MS;
	next = base + t * (int64_t)n;
	if (next - now_us > span) {
		if (retry_after != NULL)
			*retry_after = (next - now_us - span + US_PER_MS - 1) / US_PER_MS;
		return false;
	}
	*tat = next;
	return true;
}

/* ---------------------------------------------------------------- complaint window */

void
bw_window_init(bw_window *w)
{
	for (size_t i = 0; i < BW_WINDOW_HOURS_MAX; i++)
		w->b[i] = (bw_window_bucket){-1, 0, 0};
}

static uint32_t
sat_add(uint32_t a, uint32_t b)
{
	uint64_t sum = (uint64_t)a + b;

	return sum > BW_WINDOW_COUNT_MAX ? BW_WINDOW_COUNT_MAX : (uint32_t)sum;
}

bool
bw_window_add(bw_window *w, bw_time_ms now, uint32_t delivered, uint32_t complaints)
{
	int64_t h;
	bw_window_bucket *b;

	if (w == NULL || !time_ok(now))
		return false;
	h = now / BW_HOUR_MS;
	b = &w->b[h % BW_WINDOW_HOURS_MAX];
	/* a later hour in the slot (the clock went back a month) keeps it */
	if (b->hour < h)
		*b = (bw_window_bucket){h, 0, 0};
	b->delivered = sat_add(b->delivered, delivered);
	b->complaints = sat_add(b->complaints, complaints);
	return true;
}

bool
bw_window_add_delivered(bw_window *w, bw_time_ms now, uint32_t n)
{
	return bw_window_add(w, now, n, 0);
}

bool
bw_window_add_complaint(bw_window *w, bw_time_ms now)
{
	return bw_window_add(w, now, 0, 1);
}

void
bw_window_totals_at(const bw_window *w, bw_time_ms now, unsigned hours, bw_window_totals *t)
{
	int64_t oldest;

	if (hours < 1)
		hours = 1;
	if (hours > BW_WINDOW_HOURS_MAX)
		hours = BW_WINDOW_HOURS_MAX;
	t->delivered = t->complaints = 0;
	t->hours = hours;
	if (w == NULL)
		return;
	if (now < 0)
		now = 0;
	oldest = now / BW_HOUR_MS - hours; /* this hour and older are out */
	for (size_t i = 0; i < BW_WINDOW_HOURS_MAX; i++)
		if (w->b[i].hour >= 0 && w->b[i].hour > oldest) {
			t->delivered += w->b[i].delivered;
			t->complaints += w->b[i].complaints;
		}
}

bool
bw_window_rate_ppm(const bw_window_totals *t, uint64_t min_volume, uint64_t *ppm)
{
	if (ppm != NULL)
		*ppm = 0;
	if (t == NULL || t->delivered == 0 || t->delivered < min_volume)
		return false;
	/* at most 744 * 1e8 complaints: times 1e6 stays below 2^64 */
	if (ppm != NULL)
		*ppm = t->complaints * PPM / t->delivered;
	return true;
}

static int
bucket_cmp(const void *a, const void *b)
{
	const bw_window_bucket *x = a, *y = b;

	return (x->hour > y->hour) - (x->hour < y->hour);
}

char *
bw_window_encode(const bw_window *w, bw_time_ms now)
{
	bw_window_bucket *v;
	size_t n = 0, off = 0, cap;
	char *text, *out = NULL;
	int64_t oldest, prev = 0;
	json_t *o;

	if (w == NULL || !time_ok(now))
		return NULL;
	oldest = now / BW_HOUR_MS - BW_WINDOW_HOURS_MAX;
	cap = BW_WINDOW_HOURS_MAX * 32 + 1; /* "HHHHHHHH:DDDDDDDD:CCCCCCCC;" fits in 32 */
	v = malloc(BW_WINDOW_HOURS_MAX * sizeof(*v));
	text = malloc(cap);
	if (v == NULL || text == NULL)
		goto out;
	for (size_t i = 0; i < BW_WINDOW_HOURS_MAX; i++)
		if (w->b[i].hour > oldest && w->b[i].hour <= HOUR_MAX &&
		    (w->b[i].delivered != 0 || w->b[i].complaints != 0))
			v[n++] = w->b[i];
	qsort(v, n, sizeof(*v), bucket_cmp);
	text[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		off += (size_t)snprintf(text + off, cap - off, "%s%lld:%u:%u", i ? ";" : "",
		    (long long)(v[i].hour - prev),
		    v[i].delivered < BW_WINDOW_COUNT_MAX ? v[i].delivered : BW_WINDOW_COUNT_MAX,
		    v[i].complaints < BW_WINDOW_COUNT_MAX ? v[i].complaints : BW_WINDOW_COUNT_MAX);
		prev = v[i].hour;
	}
	o = json_pack("{s:i,s:s}", "v", 1, "buckets", text);
	if (o != NULL) {
		out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
	}
out:
	free(v);
	free(text);
	return out;
}

/* Digits at *p, no sign and no leading zero, at most max; *p moves past. */
static bool
parse_num(const char **p, uint64_t max, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;

	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (x > (max - (uint64_t)(*s - '0')) / 10)
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*v = x;
	return true;
}

static bool
parse_buckets(const char *s, bw_window *w, char *err, size_t errlen)
{
	int64_t hour = -1;
	unsigned i = 0;

	while (*s != '\0') {
		uint64_t g, d, c;
		bw_window_bucket *b;

		i++;
		if (i > 1 && *s++ != ';')
			goto bad;
		if (!parse_num(&s, (uint64_t)HOUR_MAX, &g) || *s++ != ':' ||
		    !parse_num(&s, BW_WINDOW_COUNT_MAX, &d) || *s++ != ':' ||
		    !parse_num(&s, BW_WINDOW_COUNT_MAX, &c))
			goto bad;
		if (i > 1 && g == 0) {
			bw_seterr(err, errlen, "buckets: bucket %u: hours not ascending", i);
			return false;
		}
		if (hour >= 0 && (int64_t)g > HOUR_MAX - hour) {
			bw_seterr(err, errlen, "buckets: bucket %u: hour out of range", i);
			return false;
		}
		hour = hour < 0 ? (int64_t)g : hour + (int64_t)g;
		b = &w->b[hour % BW_WINDOW_HOURS_MAX];
		if (b->hour >= 0) {
			bw_seterr(err, errlen, "buckets: hours %lld and %lld share a slot",
			    (long long)b->hour, (long long)hour);
			return false;
		}
		*b = (bw_window_bucket){hour, (uint32_t)d, (uint32_t)c};
	}
	return true;
bad:
	bw_seterr(err, errlen, "buckets: bucket %u: expected HOURS:DELIVERED:COMPLAINTS", i);
	return false;
}

bool
bw_window_decode(const char *json, bw_window *w, char *err, size_t errlen)
{
	json_t *o, *v;
	const char *name, *text = NULL;
	bool ok = false, have_v = false;

	if (w == NULL)
		return false;
	bw_window_init(w);
	if ((o = bw_store_json_object(json, err, errlen)) == NULL)
		return false;
	json_object_foreach(o, name, v)
	{
		if (strcmp(name, "v") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) != 1) {
				bw_seterr(err, errlen, "field 'v': version 1 expected");
				goto out;
			}
			have_v = true;
		} else if (strcmp(name, "buckets") == 0) {
			if (!json_is_string(v) ||
			    strlen(json_string_value(v)) != json_string_length(v)) {
				bw_seterr(err, errlen, "field 'buckets': expected a string");
				goto out;
			}
			text = json_string_value(v);
		} else {
			bw_seterr(err, errlen, "unknown field '%.64s'", name);
			goto out;
		}
	}
	if (!have_v || text == NULL) {
		bw_seterr(err, errlen, "missing field '%s'", have_v ? "buckets" : "v");
		goto out;
	}
	ok = parse_buckets(text, w, err, errlen);
out:
	json_decref(o);
	if (!ok)
		bw_window_init(w);
	return ok;
}

/* ---------------------------------------------------------------- sender states */

static const char *const state_names[BW_SS__N] = {
    [BW_SS_ACTIVE] = "active",
    [BW_SS_THROTTLED] = "throttled",
    [BW_SS_GRACE] = "grace",
    [BW_SS_SUSPENDED] = "suspended",
};

const char *
bw_sender_state_name(bw_sender_state s)
{
	return (unsigned)s < BW_SS__N ? state_names[s] : NULL;
}

int
bw_sender_state_parse(const char *s)
{
	for (int i = 0; s != NULL && i < BW_SS__N; i++)
		if (strcmp(s, state_names[i]) == 0)
			return i;
	return -1;
}

void
bw_sender_policy_default(bw_sender_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->throttle_ppm = 1000;
	p->grace_ppm = 3000;
	p->min_volume = 1000;
	p->min_complainers = 3;
	p->grace_period = 2 * BW_HOUR_MS;
	p->incident_deadline = 24 * BW_HOUR_MS;
	p->throttle_factor = 0.25;
	p->window_hours = BW_WINDOW_HOURS_DEFAULT;
}

bool
bw_sender_policy_check(const bw_sender_policy *p, char *err, size_t errlen)
{
	if (p == NULL) {
		bw_seterr(err, errlen, "no policy");
		return false;
	}
	if (p->throttle_ppm < 1 || p->throttle_ppm > PPM || p->grace_ppm < 1 ||
	    p->grace_ppm > PPM) {
		bw_seterr(err, errlen, "complaint rate thresholds must be above 0 and at most 100%%");
		return false;
	}
	if (p->grace_ppm < p->throttle_ppm) {
		bw_seterr(err, errlen, "the grace threshold is below the throttle threshold");
		return false;
	}
	if (p->grace_period < POLICY_PERIOD_MIN || p->grace_period > POLICY_PERIOD_MAX ||
	    p->incident_deadline < POLICY_PERIOD_MIN || p->incident_deadline > POLICY_PERIOD_MAX) {
		bw_seterr(err, errlen, "grace period and incident deadline must be 1 s to 366 days");
		return false;
	}
	if (!isfinite(p->throttle_factor) || p->throttle_factor <= 0 || p->throttle_factor > 1) {
		bw_seterr(err, errlen, "throttle factor must be above 0 and at most 1");
		return false;
	}
	if (p->window_hours < 1 || p->window_hours > BW_WINDOW_HOURS_MAX) {
		bw_seterr(err, errlen, "complaint window must be 1 to %d hours", BW_WINDOW_HOURS_MAX);
		return false;
	}
	return true;
}

void
bw_sender_init(bw_sender *s, bw_time_ms now)
{
	memset(s, 0, sizeof(*s));
	s->state = BW_SS_ACTIVE;
	s->since = s->last_seen = time_ok(now) ? now : 0;
}

/* Every call notes the highest now it was given. */
static bool
seen(bw_sender *s, bw_time_ms now)
{
	if (s == NULL || !time_ok(now) || (unsigned)s->state >= BW_SS__N)
		return false;
	if (now > s->last_seen)
		s->last_seen = now;
	return true;
}

static void __attribute__((format(printf, 4, 5)))
set_state(bw_sender *s, bw_sender_state st, bw_time_ms now, const char *fmt, ...)
{
	va_list ap;

	s->state = st;
	s->since = now;
	s->grace_until = 0;
	va_start(ap, fmt);
	vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
	va_end(ap);
}

/* "complaint rate 0.1313% >= 0.10% over 7d (1523 delivered, 2 complaints
 * from 2 recipients)", or why the rate does not count. */
static void
rate_why(char *buf, size_t len, const bw_sender_policy *p, const bw_window_totals *w,
    unsigned distinct, uint64_t ppm, bool counts, uint32_t threshold)
{
	char win[16], r[32], th[32];

	if (w->hours % 24 == 0)
		snprintf(win, sizeof(win), "%ud", w->hours / 24);
	else
		snprintf(win, sizeof(win), "%uh", w->hours);
	if (w->delivered < p->min_volume || w->delivered == 0) {
		snprintf(buf, len, "too little volume over %s to count (%llu < %llu delivered)",
		    win, (unsigned long long)w->delivered, (unsigned long long)p->min_volume);
		return;
	}
	if (!counts) {
		snprintf(buf, len, "only %u distinct complainers over %s (%u needed)", distinct,
		    win, p->min_complainers);
		return;
	}
	fmt_ppm(ppm, r, sizeof(r));
	fmt_ppm(threshold, th, sizeof(th));
	snprintf(buf, len,
	    "complaint rate %s %s %s over %s (%llu delivered, %llu complaints from %u recipients)",
	    r, ppm >= threshold ? ">=" : "<", th, win, (unsigned long long)w->delivered,
	    (unsigned long long)w->complaints, distinct);
}

/*
 * Deadlines are absolute and compared with now as given, never with
 * last_seen: after a clock that ran ahead comes back, max(now, last_seen)
 * would end a grace period at once, and moving a deadline by the jump
 * would, between hosts whose clocks differ, shorten it a little more at
 * every step. As they are, a jump back can only make them later.
 */
bool
bw_sender_step(const bw_sender_policy *p, bw_sender *s, const bw_window_totals *w,
    unsigned distinct_complainers, bw_time_ms now)
{
	bw_time_ms due = -1, grace_due = -1;
	char why[BW_SENDER_REASON_MAX], d[24];
	uint64_t ppm = 0;
	bool counts;

	if (!bw_sender_policy_check(p, NULL, 0) || !seen(s, now) || s->state == BW_SS_SUSPENDED)
		return false;
	if (s->incident_open) {
		bw_time_ms t = s->incident_opened_at + p->incident_deadline;

		if (now >= t && (s->incident_acked_at == 0 || s->incident_acked_at >= t))
			due = t;
	}
	if (s->state == BW_SS_GRACE && now >= s->grace_until)
		grace_due = s->grace_until;
	if (due >= 0 && (grace_due < 0 || due <= grace_due)) {
		fmt_dur(p->incident_deadline, d, sizeof(d));
		set_state(s, BW_SS_SUSPENDED, now, "incident unanswered for %s", d);
		return true;
	}
	if (grace_due >= 0) {
		set_state(s, BW_SS_SUSPENDED, now, "grace period ran out");
		return true;
	}
	if (s->state == BW_SS_GRACE)
		return false;

	counts = w != NULL && bw_window_rate_ppm(w, p->min_volume, &ppm) &&
	         distinct_complainers >= p->min_complainers;
	if (counts && ppm >= p->grace_ppm) {
		rate_why(why, sizeof(why), p, w, distinct_complainers, ppm, counts, p->grace_ppm);
		set_state(s, BW_SS_GRACE, now, "%s", why);
		s->grace_until = now + p->grace_period;
		return true;
	}
	if (s->admin_flag) {
		set_state(s, BW_SS_GRACE, now, "flagged by an admin");
		s->grace_until = now + p->grace_period;
		return true;
	}
	if (w == NULL)
		return false;
	if (s->state == BW_SS_ACTIVE && counts && ppm >= p->throttle_ppm) {
		rate_why(
		    why, sizeof(why), p, w, distinct_complainers, ppm, counts, p->throttle_ppm);
		set_state(s, BW_SS_THROTTLED, now, "%s", why);
		return true;
	}
	if (s->state == BW_SS_THROTTLED && !(counts && ppm >= p->throttle_ppm)) {
		rate_why(
		    why, sizeof(why), p, w, distinct_complainers, ppm, counts, p->throttle_ppm);
		set_state(s, BW_SS_ACTIVE, now, "%s", why);
		return true;
	}
	return false;
}

bool
bw_sender_open_incident(bw_sender *s, bw_time_ms now)
{
	if (!seen(s, now) || s->incident_open)
		return false;
	s->incident_open = true;
	s->incident_opened_at = now;
	s->incident_acked_at = 0;
	return true;
}

bool
bw_sender_ack_incident(bw_sender *s, bw_time_ms now)
{
	if (!seen(s, now) || !s->incident_open || s->incident_acked_at != 0)
		return false;
	/* 0 means "not acknowledged": an ack at the epoch itself is taken as 1 ms */
	s->incident_acked_at = now > 0 ? now : 1;
	return true;
}

bool
bw_sender_suspend(bw_sender *s, bw_time_ms now)
{
	if (!seen(s, now) || s->state == BW_SS_SUSPENDED)
		return false;
	set_state(s, BW_SS_SUSPENDED, now, "suspended by an admin");
	return true;
}

bool
bw_sender_flag_grace(bw_sender *s, bw_time_ms now)
{
	if (!seen(s, now) || s->state == BW_SS_SUSPENDED || s->admin_flag)
		return false;
	s->admin_flag = true;
	return true;
}

bool
bw_sender_resolve(bw_sender *s, bw_time_ms now)
{
	if (!seen(s, now))
		return false;
	if (s->state == BW_SS_ACTIVE && !s->incident_open && !s->admin_flag)
		return false;
	set_state(s, BW_SS_ACTIVE, now, "resolved by an admin");
	s->incident_open = false;
	s->incident_opened_at = s->incident_acked_at = 0;
	s->admin_flag = false;
	return true;
}

double
bw_sender_rate_factor(const bw_sender_policy *p, const bw_sender *s)
{
	if (p == NULL || s == NULL)
		return 0;
	switch (s->state) {
	case BW_SS_ACTIVE:
		return 1;
	case BW_SS_THROTTLED:
	case BW_SS_GRACE:
		return p->throttle_factor;
	default:
		return 0;
	}
}

bw_time_ms
bw_sender_clock_lag(const bw_sender *s, bw_time_ms now)
{
	return s != NULL && now < s->last_seen ? s->last_seen - now : 0;
}

/* ---------------------------------------------------------------- times */

void
bw_time_ms_fmt(bw_time_ms t, char *buf, size_t len)
{
	char out[BW_TIME_MS_LEN];
	size_t n = BW_TIME_MS_LEN - 1;

	if (buf == NULL || len == 0)
		return;
	t = t < 0 ? 0 : t > BW_TIME_MAX ? BW_TIME_MAX : t;
	bw_time_put(t / 1000, out);
	out[19] = '.';
	out[20] = (char)('0' + t % 1000 / 100);
	out[21] = (char)('0' + t % 100 / 10);
	out[22] = (char)('0' + t % 10);
	out[23] = 'Z';
	if (n > len - 1)
		n = len - 1;
	memcpy(buf, out, n);
	buf[n] = '\0';
}

/*
 * Strict: exactly what bw_time_ms_fmt writes (or that without ".000"), so
 * no sign, space, 30 February or leap second gets through.
 */
bool
bw_time_ms_parse(const char *s, bw_time_ms *t)
{
	int64_t secs;
	size_t n;
	int ms = 0;

	if (s == NULL || ((n = strnlen(s, BW_TIME_MS_LEN)) != 20 && n != 24) || !bw_time_get(s, &secs))
		return false;
	if (n == 20 && s[19] != 'Z')
		return false;
	if (n == 24 && (s[19] != '.' || s[23] != 'Z' || (ms = bw_time_digits(s + 20, 3)) < 0))
		return false;
	if (!time_ok(secs * 1000 + ms))
		return false;
	*t = secs * 1000 + ms;
	return true;
}

/* ---------------------------------------------------------------- sender JSON */

typedef enum { F_STATE, F_TIME, F_BOOL, F_REASON } field_kind;

typedef struct field {
	const char *name;
	field_kind kind;
	bool required;
	size_t off;
} field;

#define SF(n, k, r)                                                                                \
	{                                                                                          \
#n, k, r, offsetof(bw_sender, n)                                                   \
	}
static const field sender_fields[] = {
    SF(state, F_STATE, true),
    SF(since, F_TIME, true),
    SF(grace_until, F_TIME, false),
    SF(incident_open, F_BOOL, false),
    SF(incident_opened_at, F_TIME, false),
    SF(incident_acked_at, F_TIME, false),
    SF(admin_flag, F_BOOL, false),
    SF(last_seen, F_TIME, false),
    SF(reason, F_REASON, false),
};
#undef SF
#define NFIELDS (sizeof(sender_fields) / sizeof(sender_fields[0]))

char *
bw_sender_to_json(const bw_sender *s)
{
	json_t *o;
	char *out = NULL;

	if (s == NULL || (unsigned)s->state >= BW_SS__N || (o = json_object()) == NULL)
		return NULL;
	for (size_t i = 0; i < NFIELDS; i++) {
		const field *f = &sender_fields[i];
		const char *base = (const char *)s + f->off;
		char tbuf[BW_TIME_MS_LEN];
		json_t *v = NULL;
		bw_time_ms t;
		bool b;

		switch (f->kind) {
		case F_STATE:
			v = json_string(bw_sender_state_name(s->state));
			break;
		case F_TIME:
			memcpy(&t, base, sizeof(t));
			if (t == 0 && !f->required)
				continue;
			if (!time_ok(t))
				goto out;
			bw_time_ms_fmt(t, tbuf, sizeof(tbuf));
			v = json_string(tbuf);
			break;
		case F_BOOL:
			memcpy(&b, base, sizeof(b));
			if (!b)
				continue;
			v = json_true();
			break;
		case F_REASON:
			if (s->reason[0] == '\0')
				continue;
			if (strnlen(s->reason, sizeof(s->reason)) == sizeof(s->reason))
				goto out;
			v = json_string(s->reason);
			break;
		}
		if (v == NULL || json_object_set_new(o, f->name, v) != 0)
			goto out;
	}
	out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(o);
	return out;
}

bool
bw_sender_from_json(const char *json, bw_sender *s, char *err, size_t errlen)
{
	json_t *o;
	bool ok;

	if (s == NULL)
		return false;
	memset(s, 0, sizeof(*s));
	if ((o = bw_store_json_object(json, err, errlen)) == NULL)
		return false;
	ok = bw_sender_from_jobj(o, NULL, s, err, errlen);
	json_decref(o);
	return ok;
}

bool
bw_sender_from_jobj(const struct json_t *jo, const char *const *extra, bw_sender *s, char *err,
    size_t errlen)
{
	json_t *o = (json_t *)(uintptr_t)jo, *v;
	const char *name;
	bool seen_f[NFIELDS] = {false}, ok = false;

	memset(s, 0, sizeof(*s));
	if (!json_is_object(o)) {
		bw_seterr(err, errlen, "not a JSON object");
		goto out;
	}
	json_object_foreach(o, name, v)
	{
		const field *f = NULL;
		char *base;
		bw_time_ms t;
		bool b, other = false;
		int st;

		for (const char *const *x = extra; x && *x && !other; x++)
			other = strcmp(name, *x) == 0;
		if (other)
			continue;   /* the caller's */
		for (size_t i = 0; i < NFIELDS && f == NULL; i++)
			if (strcmp(name, sender_fields[i].name) == 0) {
				f = &sender_fields[i];
				seen_f[i] = true; /* null for a required field fails below */
			}
		if (f == NULL) {
			bw_seterr(err, errlen, "unknown field '%.64s'", name);
			goto out;
		}
		if (json_is_null(v) && !f->required)
			continue; /* the same as absent */
		base = (char *)s + f->off;
		if (f->kind == F_BOOL) {
			if (!json_is_boolean(v)) {
				bw_seterr(err, errlen, "field '%s': expected true or false", name);
				goto out;
			}
			b = json_is_true(v);
			memcpy(base, &b, sizeof(b));
			continue;
		}
		if (!json_is_string(v)) {
			bw_seterr(err, errlen, "field '%s': expected a string", name);
			goto out;
		}
		switch (f->kind) {
		case F_STATE:
			if ((st = bw_sender_state_parse(json_string_value(v))) < 0) {
				bw_seterr(err, errlen, "field 'state': unknown state '%.40s'",
				    json_string_value(v));
				goto out;
			}
			s->state = (bw_sender_state)st;
			break;
		case F_TIME:
			if (!bw_time_ms_parse(json_string_value(v), &t) || !time_ok(t)) {
				bw_seterr(err, errlen,
				    "field '%s': not a time of the form "
				    "YYYY-MM-DDTHH:MM:SS.mmmZ: '%.40s'",
				    name, json_string_value(v));
				goto out;
			}
			memcpy(base, &t, sizeof(t));
			break;
		default:
			if (json_string_length(v) >= sizeof(s->reason) ||
			    strlen(json_string_value(v)) != json_string_length(v)) {
				bw_seterr(err, errlen,
				    "field 'reason': longer than %d bytes or not text",
				    BW_SENDER_REASON_MAX - 1);
				goto out;
			}
			memcpy(s->reason, json_string_value(v), json_string_length(v) + 1);
			break;
		}
	}
	for (size_t i = 0; i < NFIELDS; i++)
		if (sender_fields[i].required && !seen_f[i]) {
			bw_seterr(err, errlen, "missing field '%s'", sender_fields[i].name);
			goto out;
		}
	if ((s->state == BW_SS_GRACE) != (s->grace_until != 0)) {
		bw_seterr(err, errlen, "field 'grace_until': %s",
		    s->state == BW_SS_GRACE ? "missing in state grace" : "only in state grace");
		goto out;
	}
	if (!s->incident_open && (s->incident_opened_at != 0 || s->incident_acked_at != 0)) {
		bw_seterr(
		    err, errlen, "field 'incident_open': incident times without an open incident");
		goto out;
	}
	ok = true;
out:
	if (!ok)
		memset(s, 0, sizeof(*s));
	return ok;
}
