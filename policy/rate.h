/*
 * rate.h - sending rates, the complaint window and the sender state
 * machine (DESIGN.md 4, "Complaints and rates").
 *
 * Pure logic: nothing here reads the clock, touches the store or logs.
 * Every function is deterministic in its arguments: the caller owns the
 * one clock and passes it in as now, reads a record from the store,
 * steps it here, and writes it back (compare-and-set) when it changed.
 *
 * Times are milliseconds since the epoch (bw_time_ms), 0..BW_TIME_MAX.
 * A now outside that range is refused (the calls say so and change
 * nothing).
 *
 * The daemon's clock (clock.h) does not follow a step of the system clock
 * while it runs; the clock may still differ from the last run's after a
 * restart, and hosts of a fleet share records. What each part does when
 * now jumps:
 *   rate limiter: never admits more than the burst at once, whichever
 *     way the clock jumps (a jump back empties the bucket as of now);
 *   complaint window: buckets dated in the "future" keep counting until
 *     they expire from that date; a jump forward expires old buckets;
 *   sender states: deadlines (grace, incident) are absolute times fixed
 *     when they start and compared with now as given, never moved; a
 *     jump back therefore makes them later, never earlier, and a
 *     suspension never ends by time at all. Here a jump forward cannot
 *     be told from time passing; clock.h keeps the daemon's now from
 *     jumping forward, so only a restart onto a clock that is ahead (or a
 *     host of a fleet whose clock is) can end a grace period or an
 *     incident's answer time early.
 */
#ifndef BW_RATE_H
#define BW_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int64_t bw_time_ms;

#define BW_TIME_MAX 253402300799999LL /* 9999-12-31T23:59:59.999Z */
#define BW_HOUR_MS 3600000LL
#define BW_DAY_MS (24 * BW_HOUR_MS)

/* ---- GCRA rate limiter ----
 * A limit admits count events per period on average and at most burst at
 * once. Its state is one int64 "theoretical arrival time" (TAT), which the
 * caller keeps (a counter in the store) and passes by pointer: 0 for a
 * limiter never used. The TAT is in microseconds since the epoch, not
 * milliseconds, so that the interval of a fast rate (3.6 ms at a million
 * an hour) is kept exactly instead of being rounded to whole ms; treat it
 * as opaque.
 *
 * The interval between events is period / count, rounded up to a whole
 * microsecond (the rate admitted is never above the one configured).
 * The factor of a throttled sender is applied with bw_gcra_scale. */
typedef struct bw_gcra_limit {
	uint32_t count;    /* events per period, >= 1 */
	bw_time_ms period; /* ms, 1..BW_GCRA_PERIOD_MAX */
	uint32_t burst;    /* events admitted at once, 1..BW_GCRA_BURST_MAX */
} bw_gcra_limit;

#define BW_GCRA_PERIOD_MAX (3660 * BW_DAY_MS) /* ten years */
#define BW_GCRA_BURST_MAX 1000000
#define BW_GCRA_CLOCK_SLACK 2000 /* ms: clocks of a fleet may differ by this */

/* True when l is usable (see the ranges above, and burst times the
 * interval at most BW_GCRA_PERIOD_MAX); false with a sentence in err. */
bool bw_gcra_limit_check(const bw_gcra_limit *l, char *err, size_t errlen);

/* The limit with its rate multiplied by factor (0 < factor <= 1; 0.25 is a
 * quarter of the rate): the period is divided by factor, rounded up; count
 * and burst stay, so a message that fits the burst while active still
 * fits while throttled: it only waits longer. The same TAT goes on with
 * the new limit. It holds time used, not events, and the new interval is
 * longer, so a sender cut just after a full burst may send up to
 * burst * (1 - factor) more at once (never more than the burst), then the
 * lower rate holds.
 * False (out unchanged) for a bad factor or when the period would pass
 * BW_GCRA_PERIOD_MAX. */
bool bw_gcra_scale(const bw_gcra_limit *l, double factor, bw_gcra_limit *out);

/*
 * Take n events (recipients of one message) at now. True: admitted, *tat
 * advanced, *retry_after 0. False: refused, *tat unchanged (but for the
 * clamp below), *retry_after
 * = ms from now until n would be admitted (if nothing else is taken
 * meanwhile), at least 1; or -1 when it never will: n larger than the
 * burst, a bad limit, a NULL tat or a now out of range. n == 0 is
 * admitted and changes nothing. retry_after may be NULL.
 *
 * Clock: a stored TAT behind now (idle, or the clock jumped forward)
 * counts as now: a full bucket, never more than the burst. A stored TAT
 * further ahead of now than a full burst plus BW_GCRA_CLOCK_SLACK (the
 * clock went back, or another host's clock is well ahead) is pulled back
 * to that: an empty bucket that starts to refill BW_GCRA_CLOCK_SLACK
 * after now, instead of refusing everything until the clock catches up.
 * That clamp is written to *tat even when the take is refused; the
 * caller writes *tat back whenever it changed. Within the slack nothing
 * is clamped, so hosts whose clocks differ by less never free capacity
 * between them.
 */
bool bw_gcra_take(
    const bw_gcra_limit *l, int64_t *tat, bw_time_ms now, unsigned n, bw_time_ms *retry_after);

/* ---- complaint window ----
 * A rolling window of hourly buckets of delivered messages (recipients)
 * and complaints, for the complaint rate of one sender. The ring holds
 * BW_WINDOW_HOURS_MAX hours; a bucket lives in slot hour % that, so the
 * window length (a policy number, 1..BW_WINDOW_HOURS_MAX hours) may change
 * without losing data. Hour numbers are now / BW_HOUR_MS.
 *
 * A bucket of hour h counts at now while h > now / BW_HOUR_MS - hours,
 * that is while now < (h + hours) * BW_HOUR_MS: an event at 10:00 on day
 * 0 counts until 09:59:59.999 on day 7 (for 168 hours), one at 10:59 for
 * the same time, as they share a bucket. Buckets of hours after now (the
 * clock went back) count too: they are never dropped early. Adding into
 * a slot that holds an older hour replaces it (it expired at least
 * BW_WINDOW_HOURS_MAX hours ago); adding into a slot that holds a later
 * hour (the clock went back by 31 days or more) adds to that later
 * bucket, so the counts last longer rather than vanish.
 *
 * Counts in one bucket saturate at BW_WINDOW_COUNT_MAX (27,000 a second
 * for an hour), which keeps the encoded window within BW_STORE_VAL_MAX
 * and every sum in 64 bits. sizeof(bw_window) is about 12 KB.
 */
#define BW_WINDOW_HOURS_MAX (24 * 31)
#define BW_WINDOW_HOURS_DEFAULT (24 * 7)
#define BW_WINDOW_COUNT_MAX 99999999u

typedef struct bw_window_bucket {
	int64_t hour; /* -1: empty */
	uint32_t delivered;
	uint32_t complaints;
} bw_window_bucket;

typedef struct bw_window {
	bw_window_bucket b[BW_WINDOW_HOURS_MAX];
} bw_window;

typedef struct bw_window_totals {
	uint64_t delivered;
	uint64_t complaints;
	unsigned hours; /* the window they were summed over */
} bw_window_totals;

void bw_window_init(bw_window *w);
/* False (nothing added) when now is out of range. */
bool bw_window_add(bw_window *w, bw_time_ms now, uint32_t delivered, uint32_t complaints);
bool bw_window_add_delivered(bw_window *w, bw_time_ms now, uint32_t n);
bool bw_window_add_complaint(bw_window *w, bw_time_ms now);
/* Sums over the hours up to now (clamped to 1..BW_WINDOW_HOURS_MAX) and
 * every later hour. */
void bw_window_totals_at(const bw_window *w, bw_time_ms now, unsigned hours, bw_window_totals *t);

/* Complaint rate in parts per million (1000 = 0.1 %), rounded down, into
 * *ppm. False ("not enough volume", *ppm 0) when fewer than min_volume
 * were delivered, or none. Rounding down keeps comparisons with a whole
 * ppm threshold exact: ppm >= T exactly when complaints/delivered >= T/1e6. */
bool bw_window_rate_ppm(const bw_window_totals *t, uint64_t min_volume, uint64_t *ppm);

/*
 * The window as the JSON object stored as a record value:
 *   {"v":1,"buckets":"H:D:C;G:D:C;..."}
 * buckets in ascending hour order, empty ones left out: H the first hour
 * number, G for each later one the hours since the one before (>= 1), D
 * and C delivered and complaints. Buckets expired for the longest window
 * at now are left out. Returns a malloc'd string, or NULL when now is out
 * of range or memory is short.
 * decode is strict: anything else (another version, unknown or missing
 * fields, a bad number, a gap of 0, a count over BW_WINDOW_COUNT_MAX, two
 * hours that share a slot) is false with a sentence in err; *w is then
 * left empty.
 */
char *bw_window_encode(const bw_window *w, bw_time_ms now);
bool bw_window_decode(const char *json, bw_window *w, char *err, size_t errlen);

/* ---- sender state machine ---- */
typedef enum {
	BW_SS_ACTIVE = 0, /* "active": the base rate */
	BW_SS_THROTTLED,  /* "throttled": the rate cut by throttle_factor */
	BW_SS_GRACE,      /* "grace": throttled, until grace_until, then suspended */
	BW_SS_SUSPENDED,  /* "suspended": held until an admin resolves */
	BW_SS__N
} bw_sender_state;
const char *bw_sender_state_name(bw_sender_state s);
/* -1 when unknown */
int bw_sender_state_parse(const char *s);

/* Every number from the policy. Rates in parts per million of delivered
 * (1000 = 0.1 %), so that thresholds compare exactly. */
typedef struct bw_sender_policy {
	uint32_t throttle_ppm;        /* rate >= this: throttled (1000 = 0.1 %) */
	uint32_t grace_ppm;           /* rate >= this: grace (3000 = 0.3 %) */
	uint64_t min_volume;          /* delivered in the window before a rate counts (1000) */
	unsigned min_complainers;     /* distinct complaining recipients needed (3) */
	bw_time_ms grace_period;      /* grace before suspension (2 h) */
	bw_time_ms incident_deadline; /* time to acknowledge an incident (24 h) */
	double throttle_factor;       /* rate multiplier when throttled or in grace (0.25) */
	unsigned window_hours;        /* complaint window (168) */
} bw_sender_policy;

void bw_sender_policy_default(bw_sender_policy *p);
/* Thresholds 1..1000000 ppm with grace >= throttle; periods 1 s..366 days;
 * 0 < factor <= 1; window 1..BW_WINDOW_HOURS_MAX hours. */
bool bw_sender_policy_check(const bw_sender_policy *p, char *err, size_t errlen);

#define BW_SENDER_REASON_MAX 160

/* One sender's record (table of senders, keyed by sender id). */
typedef struct bw_sender {
	bw_sender_state state;
	bw_time_ms since;       /* when it entered state */
	bw_time_ms grace_until; /* grace: when it becomes suspended; else 0 */
	bool incident_open;
	bw_time_ms incident_opened_at;     /* 0 unless open */
	bw_time_ms incident_acked_at;      /* 0: not acknowledged */
	bool admin_flag;                   /* an admin sent it to grace */
	bw_time_ms last_seen;              /* the highest now any call was given */
	char reason[BW_SENDER_REASON_MAX]; /* why it entered state */
} bw_sender;

/* Active since now. */
void bw_sender_init(bw_sender *s, bw_time_ms now);

/*
 * Apply the rules at now; true when s->state changed (s->since and
 * s->reason then say when and why, e.g. "complaint rate 0.1313% >= 0.10%
 * over 7d (1523 delivered, 2 complaints from 2 recipients)"). w may be
 * NULL (no rate known: only the admin flag and the deadlines apply);
 * distinct_complainers are the different recipients who complained in
 * the same window. The rate "counts" when w->delivered >= min_volume and
 * distinct_complainers >= min_complainers, so one reporter cannot sink a
 * sender alone. In order:
 *   suspended: stays (only bw_sender_resolve ends it);
 *   an incident open and not acknowledged before incident_opened_at +
 *     incident_deadline, at or after that time: suspended (an
 *     acknowledgement that came later does not count);
 *   grace: suspended at or after grace_until; otherwise stays (it does
 *     not go back as the rate falls);
 *   active or throttled, rate counts and >= grace_ppm, or the admin flag:
 *     grace, grace_until = now + grace_period;
 *   active, rate counts and >= throttle_ppm: throttled;
 *   throttled, and the rate no longer counts or is below throttle_ppm:
 *     active (no hysteresis: the window is the damping; a sender near the
 *     threshold may go back and forth, one record write each time).
 * When the incident and grace deadlines have both passed, the reason
 * names the earlier. Deadlines are compared with now as given (see the
 * top of this file), and s->last_seen rises to now. A bad policy, a NULL
 * s or a now out of range change nothing (false).
 */
bool bw_sender_step(const bw_sender_policy *p, bw_sender *s, const bw_window_totals *w,
    unsigned distinct_complainers, bw_time_ms now);

/* A complaint opens an incident unless one is open (an acknowledged one
 * stays acknowledged until resolved). True when it opened one. */
bool bw_sender_open_incident(bw_sender *s, bw_time_ms now);
/* The sender answered: true when an open, unacknowledged incident was
 * marked acknowledged at now (whether in time is for bw_sender_step). */
bool bw_sender_ack_incident(bw_sender *s, bw_time_ms now);
/* Admin: to suspended now; false when suspended already. */
bool bw_sender_suspend(bw_sender *s, bw_time_ms now);
/* Admin: set the flag that sends it to grace at the next bw_sender_step
 * (call it with w NULL to apply it at once); false when set already or
 * suspended. */
bool bw_sender_flag_grace(bw_sender *s, bw_time_ms now);
/* Admin: from any state back to active, the incident closed and the flag
 * cleared; true when anything changed. */
bool bw_sender_resolve(bw_sender *s, bw_time_ms now);

/* The factor for bw_gcra_scale: 1 active, throttle_factor throttled or in
 * grace, 0 suspended (nothing is sent: the caller holds the mail). */
double bw_sender_rate_factor(const bw_sender_policy *p, const bw_sender *s);
/* How far now is behind s->last_seen (the clock went back), else 0; for
 * a log line. */
bw_time_ms bw_sender_clock_lag(const bw_sender *s, bw_time_ms now);

/*
 * The record as the JSON object stored as its value: "state" (a name
 * above), "since", "grace_until", "incident_opened_at",
 * "incident_acked_at", "last_seen" (RFC 3339 UTC with milliseconds,
 * "2026-01-02T03:04:05.678Z"), "incident_open", "admin_flag" (booleans),
 * "reason" (string). Zero times, false flags and an empty reason are left
 * out. to_json returns a malloc'd string or NULL (no memory, a state out
 * of range, a time out of range, a reason not UTF-8).
 * from_json overwrites *s and is strict: an unknown field, a field of the
 * wrong type, an unknown state, a time that is not in the form written,
 * a missing state or since, duplicate names, a reason too long, grace
 * without grace_until, or incident times without an open incident is
 * false with a sentence naming the field; JSON null counts as absent for
 * an optional field.
 */
char *bw_sender_to_json(const bw_sender *s);
bool bw_sender_from_json(const char *json, bw_sender *s, char *err, size_t errlen);
/* The same from a parsed object (jansson's json_t), skipping the fields
 * named in extra (a NULL-terminated list, or NULL): a record that holds
 * more than the state (sender.h) is parsed once. */
struct json_t;
bool bw_sender_from_jobj(const struct json_t *o, const char *const *extra, bw_sender *s, char *err,
    size_t errlen);

/* Milliseconds to and from "YYYY-MM-DDTHH:MM:SS.mmmZ" (fmt needs 25
 * bytes; parse accepts exactly that form, the fraction optional, and
 * 0..BW_TIME_MAX). */
#define BW_TIME_MS_LEN 25
void bw_time_ms_fmt(bw_time_ms t, char *buf, size_t len);
bool bw_time_ms_parse(const char *s, bw_time_ms *t);

#endif
