/*
 * feedback.c - what complaints do to a sender (see feedback.h).
 */
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/wait.h>
#include <syslog.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "complaint.h"
#include "consent.h"
#include "feedback.h"
#include "log.h"
#include "sender.h"

extern char **environ;

/* ---------------------------------------------------------------- delivered */

#define DELIV_SLOTS 4096 /* sender-hours counted between two flushes */

typedef struct deliv_ent {
	char sender[BW_SENDER_MAX + 1]; /* "" = free */
	int64_t hour;
	int64_t n;
} deliv_ent;

static pthread_mutex_t deliv_mu = PTHREAD_MUTEX_INITIALIZER;
static deliv_ent deliv[DELIV_SLOTS];
static size_t deliv_used;
static uint64_t deliv_dropped;   /* counts no slot was free for (logged by the caller) */

static unsigned
deliv_hash(const char *s, int64_t hour)
{
	uint32_t h = 2166136261u ^ (uint32_t)hour;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h & (DELIV_SLOTS - 1);
}

void
bw_feedback_delivered(const char *sender, bw_time_ms now, unsigned n)
{
	int64_t hour = now / BW_HOUR_MS;
	unsigned i = deliv_hash(sender, hour);

	if (n == 0 || !sender[0] || strlen(sender) > BW_SENDER_MAX)
		return;
	pthread_mutex_lock(&deliv_mu);
	for (unsigned probe = 0; probe < DELIV_SLOTS; probe++, i = (i + 1) & (DELIV_SLOTS - 1)) {
		deliv_ent *e = &deliv[i];
		if (e->sender[0] == 0) {
			strcpy(e->sender, sender);
			e->hour = hour;
			e->n = n;
			deliv_used++;
			pthread_mutex_unlock(&deliv_mu);
			return;
		}
		if (e->hour == hour && strcmp(e->sender, sender) == 0) {
			e->n += n;
			pthread_mutex_unlock(&deliv_mu);
			return;
		}
	}
	deliv_dropped += n;
	pthread_mutex_unlock(&deliv_mu);
}

bw_store_err
bw_feedback_flush(bw_store *st)
{
	deliv_ent *taken;
	bw_counter_delta *d;
	char (*names)[BW_SENDER_MAX + 40];
	const char **old;
	size_t n = 0;
	bw_store_err e;

	pthread_mutex_lock(&deliv_mu);
	if (deliv_dropped) {
		bw_log(LOG_WARNING, "%llu delivered recipients were not counted for the complaint "
		    "rate: more than %d senders and hours between two flushes (lower StatsInterval)",
		    (unsigned long long)deliv_dropped, DELIV_SLOTS);
		deliv_dropped = 0;
	}
	if (deliv_used == 0) {
		pthread_mutex_unlock(&deliv_mu);
		return BW_STORE_OK;
	}
	taken = malloc(deliv_used * sizeof(*taken));
	if (taken == NULL) {
		pthread_mutex_unlock(&deliv_mu);
		return BW_STORE_NOMEM;
	}
	for (size_t i = 0; i < DELIV_SLOTS; i++)
		if (deliv[i].sender[0]) {
			taken[n++] = deliv[i];
			deliv[i].sender[0] = 0;
		}
	deliv_used = 0;
	pthread_mutex_unlock(&deliv_mu);

	d = malloc(n * sizeof(*d));
	names = malloc(3 * n * sizeof(*names));
	old = malloc(2 * n * sizeof(*old));
	if (d == NULL || names == NULL || old == NULL)
		e = BW_STORE_NOMEM;
	else {
		for (size_t i = 0; i < n; i++) {
			long long gone = (long long)taken[i].hour - BW_FEEDBACK_KEEP_HOURS;
			snprintf(names[i], sizeof(names[i]), "delivered:%s:%lld", taken[i].sender,
			    (long long)taken[i].hour);
			d[i].name = names[i];
			d[i].delta = taken[i].n;
			snprintf(names[n + 2 * i], sizeof(names[0]), "delivered:%s:%lld", taken[i].sender, gone);
			snprintf(names[n + 2 * i + 1], sizeof(names[0]), "complaints:%s:%lld", taken[i].sender, gone);
			old[2 * i] = names[n + 2 * i];
			old[2 * i + 1] = names[n + 2 * i + 1];
		}
		e = bw_store_counter_add_many(st, d, n);
		/* the hour that left the window: a failure here costs only space */
		if (e == BW_STORE_OK && bw_store_counter_del_many(st, old, 2 * n) != BW_STORE_OK)
			bw_log(LOG_NOTICE, "store: old delivered counters not removed: %s",
			    bw_store_last_error(st));
	}
	if (e != BW_STORE_OK)   /* keep them for the next flush */
		for (size_t i = 0; i < n; i++)
			bw_feedback_delivered(taken[i].sender, taken[i].hour * BW_HOUR_MS,
			    (unsigned)taken[i].n);
	free(d);
	free(names);
	free(old);
	free(taken);
	return e;
}

/* ---------------------------------------------------------------- window */

#define WIN_PRUNE_MAX 256   /* old counters removed per window read */

typedef struct win_walk {
	bw_window *w;
	size_t plen;
	bool complaints;
	long long cutoff;           /* hours before this are removed */
	char (*old)[BW_SENDER_MAX + 40];
	size_t nold;
} win_walk;

static int
win_counter(void *ud, const char *name, int64_t val)
{
	win_walk *ww = ud;
	char *end;
	long long hour;

	errno = 0;
	hour = strtoll(name + ww->plen, &end, 10);
	if (errno || *end || hour < 0)
		return 0;
	if (hour < ww->cutoff) {
		if (ww->old && ww->nold < WIN_PRUNE_MAX && strlen(name) < sizeof(ww->old[0]))
			strcpy(ww->old[ww->nold++], name);
		return 0;
	}
	if (val <= 0)
		return 0;
	if (val > (int64_t)BW_WINDOW_COUNT_MAX)
		val = BW_WINDOW_COUNT_MAX;
	if (ww->complaints)
		bw_window_add(ww->w, (bw_time_ms)hour * BW_HOUR_MS, 0, (uint32_t)val);
	else
		bw_window_add(ww->w, (bw_time_ms)hour * BW_HOUR_MS, (uint32_t)val, 0);
	return 0;
}

typedef struct distinct_walk {
	bw_time_ms since;
	char (*rcpt)[BW_ADDR_MAX + 1];
	size_t n, cap;
} distinct_walk;

static int
distinct_one(void *ud, const char *key, const char *val)
{
	distinct_walk *dw = ud;
	json_error_t je;
	json_t *o = json_loads(val, 0, &je);
	const char *rcpt = o ? json_string_value(json_object_get(o, "rcpt")) : NULL;
	const char *at = o ? json_string_value(json_object_get(o, "at")) : NULL;
	bw_time_ms t;

	(void)key;
	if (rcpt && at && bw_time_ms_parse(at, &t) && t >= dw->since && strlen(rcpt) <= BW_ADDR_MAX) {
		size_t i;
		for (i = 0; i < dw->n; i++)
			if (strcmp(dw->rcpt[i], rcpt) == 0)
				break;
		if (i == dw->n) {
			if (dw->n == dw->cap) {
				size_t nc = dw->cap ? dw->cap * 2 : 16;
				void *nr = realloc(dw->rcpt, nc * sizeof(*dw->rcpt));
				if (nr == NULL) {
					json_decref(o);
					return 1;
				}
				dw->rcpt = nr;
				dw->cap = nc;
			}
			strcpy(dw->rcpt[dw->n++], rcpt);
		}
	}
	json_decref(o);
	return 0;
}

bw_store_err
bw_feedback_window(bw_store *st, const char *sender, bw_time_ms now, unsigned hours,
    bw_window_totals *t, unsigned *distinct)
{
	bw_window *w = malloc(sizeof(*w));
	char prefix[BW_SENDER_MAX + 32];
	win_walk ww;
	distinct_walk dw = { 0 };
	bw_store_err e;

	if (w == NULL)
		return BW_STORE_NOMEM;
	bw_window_init(w);
	memset(&ww, 0, sizeof(ww));
	ww.w = w;
	ww.cutoff = (long long)(now / BW_HOUR_MS) - BW_FEEDBACK_KEEP_HOURS;
	ww.old = malloc(WIN_PRUNE_MAX * sizeof(*ww.old));
	snprintf(prefix, sizeof(prefix), "delivered:%s:", sender);
	ww.plen = strlen(prefix);
	ww.complaints = false;
	e = bw_store_counter_scan(st, prefix, win_counter, &ww);
	if (e == BW_STORE_OK) {
		snprintf(prefix, sizeof(prefix), "complaints:%s:", sender);
		ww.plen = strlen(prefix);
		ww.complaints = true;
		e = bw_store_counter_scan(st, prefix, win_counter, &ww);
	}
	if (e == BW_STORE_OK)
		bw_window_totals_at(w, now, hours, t);
	if (e == BW_STORE_OK && ww.nold) {
		/* best effort: a read-only store (the admin tool's show) keeps them */
		const char *old[WIN_PRUNE_MAX];
		for (size_t i = 0; i < ww.nold; i++)
			old[i] = ww.old[i];
		(void)bw_store_counter_del_many(st, old, ww.nold);
	}
	free(ww.old);
	free(w);
	if (e != BW_STORE_OK)
		return e;
	/* distinct recipients: the hours of the window up to now */
	dw.since = (now / BW_HOUR_MS - (bw_time_ms)t->hours + 1) * BW_HOUR_MS;
	snprintf(prefix, sizeof(prefix), "%s ", sender);
	e = bw_store_scan(st, BW_TBL_COMPLAINT, prefix, distinct_one, &dw);
	*distinct = (unsigned)dw.n;
	free(dw.rcpt);
	return e;
}

/* ---------------------------------------------------------------- apply */

typedef struct apply_ud {
	const bw_sender_policy *pol;
	const bw_window_totals *t;
	unsigned distinct;
	bw_time_ms now;
	const char *rcpt;
	bw_sender_state before;
	bool changed;
} apply_ud;

static bool
apply_fn(bw_sender_rec *r, void *ud)
{
	apply_ud *u = ud;
	char note[BW_SENDER_NOTE_MAX + 1];

	u->before = r->s.state;
	bw_sender_open_incident(&r->s, u->now);
	u->changed = bw_sender_step(u->pol, &r->s, u->t, u->distinct, u->now);
	snprintf(note, sizeof(note), "complaint about mail to %s%s%s", u->rcpt,
	    u->changed ? ": " : "", u->changed ? r->s.reason : "");
	bw_sender_rec_note(r, u->now, "complaint", note);
	return true;
}

bw_store_err
bw_feedback_apply(const bw_policy *p, bw_store *st, const char *sender, const char *rcpt,
    const char *dedupe, const char *source, const char *type, bw_time_ms now, bw_fb_result *r,
    char *err, size_t errlen)
{
	char key[BW_STORE_KEY_MAX + 1], name[BW_SENDER_MAX + 40], t[BW_TIME_MS_LEN], *val;
	bw_suppression s;
	bw_sender_rec rec;
	apply_ud u;
	json_t *o;
	bw_store_err e;

	memset(r, 0, sizeof(*r));
	if (!bw_sender_id_ok(sender) || strchr(dedupe, ' ') || !*dedupe
	    || (size_t)snprintf(key, sizeof(key), "%s %s", sender, dedupe) >= sizeof(key)) {
		snprintf(err, errlen, "bad sender \"%.100s\" or dedupe key", sender);
		return BW_STORE_INVALID;
	}
	bw_time_ms_fmt(now, t, sizeof(t));
	o = json_pack("{s:s, s:s, s:s, s:s}", "at", t, "rcpt", rcpt, "source", source ? source : "",
	    "type", type ? type : "abuse");
	val = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (val == NULL) {
		snprintf(err, errlen, "out of memory");
		return BW_STORE_NOMEM;
	}
	/* claim it: a second copy finds it there */
	e = bw_store_cas(st, BW_TBL_COMPLAINT, key, NULL, val);
	if (e == BW_STORE_CONFLICT) {
		free(val);
		r->outcome = BW_FB_DUPLICATE;
		if (bw_sender_load(st, sender, now, &rec, err, errlen) == BW_STORE_OK)
			r->before = r->after = rec.s.state;
		return BW_STORE_OK;
	}
	if (e != BW_STORE_OK) {
		free(val);
		snprintf(err, errlen, "%s", bw_store_last_error(st));
		return e;
	}
	memset(&s, 0, sizeof(s));
	snprintf(s.sender, sizeof(s.sender), "%s", sender);
	snprintf(s.rcpt, sizeof(s.rcpt), "%s", rcpt);
	s.reason = BW_SR_COMPLAINT;
	s.at = now / 1000;
	s.source = (char *)(source ? source : "complaint");
	snprintf(name, sizeof(name), "complaints:%s:%lld", sender, (long long)(now / BW_HOUR_MS));
	if ((e = bw_suppress(st, &s)) != BW_STORE_OK
	    || (e = bw_store_counter_add(st, name, 1, NULL)) != BW_STORE_OK) {
		snprintf(err, errlen, "%s", bw_store_last_error(st));
		goto undo;
	}
	if ((e = bw_feedback_window(st, sender, now, p->sender.window_hours, &r->totals, &r->distinct))
	    != BW_STORE_OK) {
		snprintf(err, errlen, "%s", bw_store_last_error(st));
		goto undo_counter;
	}
	u = (apply_ud){ &p->sender, &r->totals, r->distinct, now, rcpt, BW_SS_ACTIVE, false };
	if ((e = bw_sender_change(st, sender, now, apply_fn, &u, &rec, err, errlen)) != BW_STORE_OK)
		goto undo_counter;
	r->outcome = BW_FB_APPLIED;
	r->before = u.before;
	r->after = rec.s.state;
	if (u.changed)
		snprintf(r->reason, sizeof(r->reason), "%s", rec.s.reason);
	free(val);
	return BW_STORE_OK;
undo_counter:
	bw_store_counter_add(st, name, -1, NULL);
undo:
	/* the suppression stays: the recipient did complain */
	bw_store_cas(st, BW_TBL_COMPLAINT, key, val, NULL);
	free(val);
	return e;
}

/* ---------------------------------------------------------------- reports */

const char *
bw_fbr_status_name(bw_fbr_status s)
{
	static const char *const names[] = { "applied", "duplicate", "unauthenticated", "ignored",
		"malformed" };
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* The sender and recipient the trace header of the original names (the
 * recipient stays empty for a message to several); false, with why, when
 * the token is not one bulkwarden made for that message. */
static bool
report_trace(const bw_policy *p, const bw_arf *r, bw_fb_report *out)
{
	char rcpt[BW_ADDR_MAX + 1];
	bw_token_status st;

	if (p->token_keys == NULL) {
		snprintf(out->why, sizeof(out->why), "the original has a trace token and there is no "
		    "TokenKeyFile to check it");
		return false;
	}
	st = bw_trace_verify(p->token_keys, r->trace, r->orig_msgid, out->sender, sizeof(out->sender),
	    rcpt, sizeof(rcpt));
	if (st != BW_TOKEN_OK) {
		snprintf(out->why, sizeof(out->why), "the trace token of the original is %s: not mail "
		    "bulkwarden sent", bw_token_status_name(st));
		out->sender[0] = 0;
		return false;
	}
	if (strcmp(rcpt, "*") != 0)
		snprintf(out->rcpt, sizeof(out->rcpt), "%s", rcpt);
	return true;
}

bw_store_err
bw_feedback_report(const bw_policy *p, bw_store *st, const char *msg, size_t len, bw_time_ms now,
    bw_fb_report *out)
{
	bw_norm_opts no = { p->conf.fold_local_case, p->conf.fold_plus_tag };
	bw_arf_trust trust = { p->trusted, p->ntrusted, true };
	char err[300], key[BW_ARF_KEY_LEN + 1];
	bw_store_err e = BW_STORE_OK;
	bw_arf_auth a;
	bw_arf r;

	memset(out, 0, sizeof(*out));
	if (bw_arf_parse(msg, len, &r, err, sizeof(err)) != BW_ARF_OK) {
		out->status = BW_FBR_MALFORMED;
		snprintf(out->why, sizeof(out->why), "%s", err);
		return BW_STORE_OK;
	}
	if (p->arf == NULL) {
		out->status = BW_FBR_UNAUTH;
		snprintf(out->why, sizeof(out->why), "TrustedReporters is empty");
	} else {
		bw_arf_authenticate(p->arf, &trust, msg, len, &a);
		if (!a.authenticated) {
			out->status = BW_FBR_UNAUTH;
			snprintf(out->why, sizeof(out->why), "%s: %s", bw_arf_auth_status_name(a.status),
			    a.why);
		}
	}
	if (out->status == BW_FBR_UNAUTH) {
		if ((e = bw_store_counter_add(st, "complaints:unauthenticated", 1, NULL)) != BW_STORE_OK)
			snprintf(out->why, sizeof(out->why), "%s", bw_store_last_error(st));
	} else if (r.ftype != BW_FT_ABUSE) {
		out->status = BW_FBR_IGNORED;
		snprintf(out->why, sizeof(out->why), "feedback type %s", r.feedback_type ? r.feedback_type
		    : "-");
	} else if (r.trace != NULL && !report_trace(p, &r, out)) {
		out->status = BW_FBR_IGNORED;  /* out->why says why */
	} else if ((r.trace == NULL /* no login in a report: its domain stands in */
	    && !bw_sender_id_of(&p->sid, r.mail_from, NULL, out->sender))
	    || (out->rcpt[0] == 0 && (r.nrcpt == 0 || !bw_addr_normalise(r.rcpt[0], &no, false,
	    out->rcpt, sizeof(out->rcpt), err, sizeof(err))))
	    || !bw_arf_dedupe_key(&r, out->rcpt, key)) {
		out->status = BW_FBR_IGNORED;
		snprintf(out->why, sizeof(out->why), "no sender (Original-Mail-From) or recipient "
		    "(Original-Rcpt-To) to count it for");
	} else if ((e = bw_feedback_apply(p, st, out->sender, out->rcpt, key, a.domain, "abuse", now,
	    &out->r, out->why, sizeof(out->why))) == BW_STORE_OK) {
		out->status = out->r.outcome == BW_FB_DUPLICATE ? BW_FBR_DUPLICATE : BW_FBR_APPLIED;
		snprintf(out->why, sizeof(out->why), "signed by %s", a.domain);
	}
	bw_arf_clear(&r);
	return e;
}

/* ---------------------------------------------------------------- notify */

static void *
notify_reap(void *arg)
{
	pid_t pid = (pid_t)(intptr_t)arg;
	int status;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		bw_log(LOG_WARNING, "NotifyCommand (pid %d) failed: %s %d", (int)pid,
		    WIFEXITED(status) ? "exit status" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return NULL;
}

void
bw_feedback_notify(const bw_policy *p, const char *sender, bw_sender_state from, bw_sender_state to,
    const char *reason)
{
	char *cmd, *save = NULL, *argv[40];
	size_t argc = 0;
	pthread_t th;
	pid_t pid;

	bw_log(LOG_WARNING, "sender %s: %s -> %s: %s", sender, bw_sender_state_name(from),
	    bw_sender_state_name(to), reason);
	if (p->conf.notify_command[0] == 0 || (cmd = strdup(p->conf.notify_command)) == NULL)
		return;
	for (char *w = strtok_r(cmd, " \t", &save); w && argc < 35; w = strtok_r(NULL, " \t", &save))
		argv[argc++] = w;
	argv[argc++] = (char *)sender;
	argv[argc++] = (char *)bw_sender_state_name(from);
	argv[argc++] = (char *)bw_sender_state_name(to);
	argv[argc++] = (char *)reason;
	argv[argc] = NULL;
	if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
		bw_log(LOG_ERR, "NotifyCommand %s: cannot start: %s", argv[0], strerror(errno));
	else if (pthread_create(&th, NULL, notify_reap, (void *)(intptr_t)pid) == 0)
		pthread_detach(th);
	else
		waitpid(pid, NULL, 0);
	free(cmd);
}

bool
bw_parse_percent_ppm(const char *s, uint32_t *ppm)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (end == s || errno || !(d >= 0 && d <= 100))
		return false;
	while (*end == ' ')
		end++;
	if (*end == '%')
		end++;
	if (*end)
		return false;
	*ppm = (uint32_t)(d * 10000 + 0.5);
	return true;
}
