/*
 * engine.c - a message's facts in SMTP order, one verdict out.
 *
 * Facts are recorded as the callbacks bring them; each step decides as
 * early as the facts allow (inbound and declared transactional mail is let
 * go at MAIL FROM, non-bulk mail at end of headers), so the MTA is asked for
 * no more than the policy needs.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "ascii.h"
#include "consent.h"
#include "dkimcov.h"
#include "clock.h"
#include "complaint.h"
#include "engine.h"
#include "feedback.h"
#include "limiter.h"
#include "log.h"
#include "netaddr.h"
#include "optout.h"
#include "pool.h"
#include "rules.h"
#include "sender.h"
#include "spf.h"
#include "unsub.h"
#include "utf8.h"

#define MSG_MAX_DKIM 8   /* DKIM-Signature headers looked at */
#define MSG_MAX_RCPTS 1000 /* recipients remembered for end-of-message checks */

/* One RCPT the MTA accepted (or that was refused at RCPT). */
typedef struct msg_rcpt {
	char *arg;                   /* as the MTA gave it (for smfi_delrcpt) */
	char norm[BW_ADDR_MAX + 1];  /* normalised; "" when it could not be */
	bool exempt;                 /* exempt-recipient */
	bool unsub;                  /* the unsubscribe address */
	bool complaint;              /* the complaint address */
	bool checked;                /* consent looked up */
	bool refused;                /* no consent: refused or to be removed */
	bool removed;                /* to be removed at end of message */
	char why[200];
} msg_rcpt;

struct bw_msg {
	bw_policy *pol;
	bw_store *st;
	time_t now;
	bw_time_ms now_ms;           /* the same, with the milliseconds of the wall clock */
	char addr[64];
	bool internal, authed, outbound;
	char *from, *auth;
	char qid[32];
	bw_sender_class sclass;
	unsigned nrcpt, nexempt;
	char sender[BW_SENDER_MAX + 1]; /* sender id consent is kept under; "" when none */
	bool sid_wait;               /* SenderIdentity: a later source may give the id */
	int sid_src;                 /* the bw_sid_source that gave it; BW_SID__N: none */
	bool upstream;               /* the client is in TrustedUpstreamHosts */
	char *sid_hdr;               /* SenderIdHeader, as the trusted upstream set it */
	bw_dkim_stream *dkim_s;      /* SenderIdentity dkim: the message's signatures */
	char from_dom[256];          /* the From header's domain, for DKIM alignment */
	const bw_class_policy *cls;  /* the sender's class in the policy file, or NULL */
	msg_rcpt *rcpts;
	size_t nrcpts, caprcpts;
	unsigned nrefused;           /* recipients refused at RCPT */
	unsigned nunsub;             /* recipients that are the unsubscribe address */
	unsigned ncomplaint;         /* recipients that are the complaint address */
	char *raw;                   /* a complaint report as received (ComplaintAddress) */
	size_t rawlen, rawcap;
	bool raw_big;                /* over BW_ARF_SIZE_MAX: not kept */
	char fbhdr[400];             /* the verdict header of a complaint report */
	char *subject;               /* for a token in an unsubscribe mail */
	const char **delrcpt;        /* after eom: recipients to remove, NULL-terminated */
	/* header facts */
	bool list_id, list_unsub, precedence;
	char *dkim_names[MSG_MAX_DKIM + 1];   /* DKIM-Signature headers and the From */
	char *dkim_values[MSG_MAX_DKIM + 1];
	size_t ndkim;
	bool dkim_seen;
	bool dkim_done;              /* dkim filled in (see msg_dkim) */
	dkimcov_result dkim;
	size_t hdr_bytes;
	const char *limit;           /* config key of a bound hit */
	bool force_set, force_bulk;
	bool keep_links;             /* a scan report lists the links */
	bool bulk;
	const char *bulk_why;
	bool checking;               /* body goes through unsub */
	unsub_scan *unsub;
	const unsub_result *res;
	bool decided;
	bw_verdict final;
	char reason[400];            /* why refused, for log/header/report */
	char hdrval[600];
	bw_addhdr add[8];            /* up to 7, NULL-terminated */
	char *msgid;                 /* the Message-ID header, for the trace token */
	char trace[BW_TOKEN_MAX + 1];
	char cfbl[400];
	char *listid;                /* the List-Id header, for Feedback-ID */
	bool has_fbid;               /* the message has a Feedback-ID of its own */
	char fbid[400];
	char lu_hdr[2 * BW_TOKEN_MAX + 600];
	char summary[1024];
	char *report;
	/* sender state and rates */
	bool hold;                   /* suspended, OnSuspended hold: held at end of message */
	double rate_factor;          /* ThrottleFactor when throttled or in grace, else 1 */
	bw_time_ms rate_reset_at;    /* the sender record's */
	char state_why[200];
};

const char *
bw_action_name(bw_action a)
{
	static const char *names[] = { "continue", "accept", "reject", "tempfail", "hold", "discard" };
	return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}

/* ---------------------------------------------------------------- stats */

static const char *stats_names[] = {
	"messages", "inbound", "outbound", "bulk", "accepted",
	"refused:unsubscribe", "refused:list-unsubscribe", "refused:one-click", "refused:limit",
	"tempfail:limit", "tempfail:internal",
	"monitor:would-refuse",
	"refused:consent", "removed:consent", "tempfail:store",
	"unsubscribe:mailto", "unsubscribe:one-click", "unsubscribe:invalid", "unsubscribe:stale",
	"list-unsubscribe:added",
	"held:suspended", "refused:suspended", "tempfail:suspended", "tempfail:rate",
	"refused:spf", "tempfail:spf", "tempfail:identity",
};
#define STATS_N (sizeof(stats_names) / sizeof(stats_names[0]))
static atomic_int_fast64_t stats_pending[STATS_N];

void
bw_stats_count(const char *name)
{
	for (size_t i = 0; i < STATS_N; i++)
		if (strcmp(stats_names[i], name) == 0) {
			atomic_fetch_add(&stats_pending[i], 1);
			return;
		}
}

bw_store_err
bw_stats_flush(bw_store *st)
{
	bw_counter_delta d[STATS_N];
	int64_t taken[STATS_N];
	size_t n = 0;
	bw_store_err e, fe = bw_feedback_flush(st);

	for (size_t i = 0; i < STATS_N; i++) {
		taken[i] = atomic_exchange(&stats_pending[i], 0);
		if (taken[i]) {
			d[n].name = stats_names[i];
			d[n].delta = taken[i];
			n++;
		}
	}
	if (n == 0)
		return fe;
	if ((e = bw_store_counter_add_many(st, d, n)) != BW_STORE_OK)
		for (size_t i = 0; i < STATS_N; i++)   /* keep them for the next flush */
			atomic_fetch_add(&stats_pending[i], taken[i]);
	return e != BW_STORE_OK ? e : fe;
}

/* ---------------------------------------------------------------- helpers */

static void
verdict_set(bw_verdict *v, bw_action a, const char *rcode, const char *xcode, const char *rule,
    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void
verdict_set(bw_verdict *v, bw_action a, const char *rcode, const char *xcode, const char *rule,
    const char *fmt, ...)
{
	va_list ap;

	memset(v, 0, sizeof(*v));
	v->action = a;
	snprintf(v->rcode, sizeof(v->rcode), "%s", rcode);
	snprintf(v->xcode, sizeof(v->xcode), "%s", xcode);
	v->rule = rule;
	va_start(ap, fmt);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
	/* reply text must be printable ASCII without '%' */
	for (char *p = v->text; *p; p++)
		if (*p == '%' || (unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

static char *
msg_strip_addr(const char *a)
{
	size_t l;

	if (a == NULL)
		return strdup("");
	while (*a == ' ' || *a == '<')
		a++;
	l = strlen(a);
	while (l && (a[l - 1] == '>' || a[l - 1] == ' '))
		l--;
	return strndup(a, l);
}

/* a message is some 7 KB: freed ones wait in a pool (pool.h) */
static bw_pool msgs = BW_POOL_INIT;

bw_msg *
bw_msg_new(bw_policy *pol, bw_store *st, time_t now)
{
	bw_msg *m = bw_pool_take(&msgs);

	if (m != NULL)
		memset(m, 0, sizeof(*m));
	else if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->pol = bw_policy_ref(pol);
	m->st = st;
	m->now = now;
	m->now_ms = (bw_time_ms)now * 1000;
	{
		/* the clock's milliseconds, when now is the clock (tests pass a
		 * fixed now: whole seconds) */
		bw_time_ms ms = bw_clock_now_ms();
		if (ms / 1000 >= now - 1 && ms / 1000 <= now + 1)
			m->now_ms = ms;
	}
	m->rate_factor = 1;
	bw_stats_count("messages");
	return m;
}

void
bw_msg_set_store(bw_msg *m, bw_store *st)
{
	m->st = st;
}

void
bw_msg_free(bw_msg *m)
{
	if (m == NULL)
		return;
	unsub_free(m->unsub);
	bw_policy_unref(m->pol);
	free(m->from);
	free(m->auth);
	free(m->report);
	free(m->subject);
	free(m->raw);
	free(m->msgid);
	free(m->sid_hdr);
	free(m->listid);
	bw_dkim_stream_free(m->dkim_s);
	free(m->delrcpt);
	for (size_t i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i].arg);
	free(m->rcpts);
	for (size_t i = 0; i < m->ndkim; i++)
		free(m->dkim_names[i]), free(m->dkim_values[i]);
	free(bw_pool_give(&msgs, m));
}

void
bw_msg_connect(bw_msg *m, const char *addr, const char *hostname)
{
	(void)hostname;
	if (addr == NULL || *addr == 0) {
		/* local submission (sendmail -bs, pickup): always ours */
		snprintf(m->addr, sizeof(m->addr), "local");
		m->internal = true;
		return;
	}
	snprintf(m->addr, sizeof(m->addr), "%s", addr);
	m->internal = bw_netlist_match(m->pol->internal, addr);
	m->upstream = m->pol->upstream && bw_netlist_match(m->pol->upstream, addr);
}

void
bw_msg_queueid(bw_msg *m, const char *qid)
{
	if (qid)
		snprintf(m->qid, sizeof(m->qid), "%s", qid);
}

void
bw_msg_force_bulk(bw_msg *m, bool bulk)
{
	m->force_set = true;
	m->force_bulk = bulk;
	m->internal = true;
}

bool
bw_msg_is_bulk(const bw_msg *m)
{
	return m->bulk;
}

bool
bw_msg_is_outbound(const bw_msg *m)
{
	return m->outbound;
}

/* ---------------------------------------------------------------- identity */

/* When a SenderIdentity source is known (consent.h). */
enum { SID_AT_ENVFROM = 0, SID_AT_EOH, SID_AT_EOM };
enum { SID_WAIT = 0, SID_SETTLED, SID_TEMPFAIL };

/* The id of the message's DKIM signature that verifies (the From domain's
 * first), lower case: SID_SETTLED with m->sender set, or "" when none
 * verifies; SID_TEMPFAIL when the only telling answer is a key lookup that
 * failed for now (another source would give another sender). */
static int
msg_dkim_identity(bw_msg *m, char *why, size_t whylen)
{
	char dom[256];
	bw_arf_auth_status st;
	size_t n;

	if (m->dkim_s == NULL) {
		snprintf(why, whylen, "no DKIM signature");
		return SID_SETTLED;
	}
	st = bw_dkim_stream_finish(m->dkim_s, m->from_dom[0] ? m->from_dom : NULL, dom, why, whylen);
	if (st == BW_ARF_AUTH_TEMPFAIL)
		return SID_TEMPFAIL;
	if (st != BW_ARF_AUTH_OK) {
		bw_log(st == BW_ARF_AUTH_NOSIG ? LOG_DEBUG : LOG_INFO, "%s: from=<%.100s>: no sender id from "
		    "DKIM: %s", m->qid[0] ? m->qid : "-", m->from ? m->from : "", why);
		return SID_SETTLED;
	}
	n = strlen(dom);
	if (n && dom[n - 1] == '.')
		dom[--n] = 0;
	for (size_t i = 0; i < n; i++)
		dom[i] = (char)tolower((unsigned char)dom[i]);
	if (bw_sender_id_ok(dom))
		snprintf(m->sender, sizeof(m->sender), "%s", dom);
	return SID_SETTLED;
}

/*
 * The sender id, from the first source of SenderIdentity that gives one,
 * as far as stage lets it be known: SID_WAIT when a source known only
 * later comes first; SID_SETTLED with m->sender ("" when no source gave
 * one) and m->sid_src; SID_TEMPFAIL (DKIM key lookup) with why.
 */
static int
msg_resolve_sid(bw_msg *m, int stage, char *why, size_t whylen)
{
	const bw_sid_order *o = &m->pol->sid;

	m->sender[0] = 0;
	m->sid_src = BW_SID__N;
	for (unsigned i = 0; i < o->n; i++) {
		bw_sid_source src = (bw_sid_source)o->src[i];
		int r;

		switch (src) {
		case BW_SID_HEADER:
			if (stage < SID_AT_EOH)
				return SID_WAIT;
			if (m->sid_hdr && bw_sender_id_ok(m->sid_hdr))
				snprintf(m->sender, sizeof(m->sender), "%s", m->sid_hdr);
			break;
		case BW_SID_DKIM:
			if (stage < SID_AT_EOM)
				return SID_WAIT;
			if ((r = msg_dkim_identity(m, why, whylen)) != SID_SETTLED)
				return r;
			break;
		default:
			bw_sender_id_from(src, m->from, m->auth, m->sender);
			break;
		}
		if (m->sender[0]) {
			m->sid_src = src;
			return SID_SETTLED;
		}
	}
	return SID_SETTLED;
}

/* A header on its way in, for SenderIdentity header and dkim. */
static void
msg_identity_header(bw_msg *m, const char *name, const char *value)
{
	const bw_conf *c = &m->pol->conf;

	if (m->dkim_s == NULL && m->outbound && !m->force_set && bw_sid_order_has(&m->pol->sid, BW_SID_DKIM))
		m->dkim_s = bw_dkim_stream_new(m->pol->arf);
	bw_dkim_stream_header(m->dkim_s, name, value);
	if (m->upstream && m->sid_hdr == NULL && c->sender_id_header[0]
	    && strcasecmp(name, c->sender_id_header) == 0) {
		/* the first one: an upstream adds its own on top */
		size_t n;
		while (*value == ' ' || *value == '\t')
			value++;
		for (n = strlen(value); n && strchr(" \t\r\n", value[n - 1]); n--)
			;
		m->sid_hdr = strndup(value, n);
	}
	if (m->dkim_s && m->from_dom[0] == 0 && strcasecmp(name, "From") == 0) {
		/* the domain of the (first) address: after its last '@', up to
		   '>' or the end */
		const char *lt = strchr(value, '<'), *a = lt ? lt + 1 : value, *at = NULL, *e;
		for (e = a; *e && *e != '>' && *e != ',' && !(lt == NULL && *e == ' ' && at); e++)
			if (*e == '@')
				at = e;
		if (at && e > at + 1 && (size_t)(e - at - 1) < sizeof(m->from_dom))
			snprintf(m->from_dom, sizeof(m->from_dom), "%.*s", (int)(e - at - 1), at + 1);
	}
}

/* ---------------------------------------------------------------- sender state, rates */

static void msg_store_state_what(bw_msg *m, bw_store_err e, const char *what);

static bw_limiter *engine_limiter;
static pthread_once_t engine_limiter_once = PTHREAD_ONCE_INIT;

#define ENGINE_LIMITER_SENDERS 100000

static void
engine_limiter_init(void)
{
	engine_limiter = bw_limiter_new(ENGINE_LIMITER_SENDERS);
}

/* The limit of kind k for this message's sender, cut for its state; false
 * when there is none. */
static bool
msg_limit(const bw_msg *m, bw_lim_kind k, bw_gcra_limit *l)
{
	const bw_policy *p = m->pol;
	int set = m->cls ? (k == BW_LIM_MSG ? m->cls->msg_rate_set : m->cls->rcpt_rate_set) : -1;
	const bw_gcra_limit *base;

	if (set == 0)
		return false;
	if (set == 1)
		base = k == BW_LIM_MSG ? &m->cls->msg_rate : &m->cls->rcpt_rate;
	else if (k == BW_LIM_MSG ? p->msg_rate_on : p->rcpt_rate_on)
		base = k == BW_LIM_MSG ? &p->msg_rate : &p->rcpt_rate;
	else
		return false;
	*l = *base;
	if (m->rate_factor < 1 && !bw_gcra_scale(base, m->rate_factor, l))
		*l = *base;
	/* a message is one event: its burst is cut too, so that a throttled
	 * sender cannot send a burst at once (recipients keep theirs, or a
	 * message to many could never fit) */
	if (m->rate_factor < 1 && k == BW_LIM_MSG) {
		double b = l->burst * m->rate_factor;
		l->burst = b < 1 ? 1 : (uint32_t)b;
	}
	return true;
}

/* "3600/1h" of a limit, for a reply */
static void
limit_text(const bw_gcra_limit *l, char *buf, size_t len)
{
	bw_time_ms p = l->period;

	if (p % 86400000 == 0)
		snprintf(buf, len, "%u/%lldd", l->count, (long long)(p / 86400000));
	else if (p % 3600000 == 0)
		snprintf(buf, len, "%u/%lldh", l->count, (long long)(p / 3600000));
	else if (p % 60000 == 0)
		snprintf(buf, len, "%u/%lldm", l->count, (long long)(p / 60000));
	else
		snprintf(buf, len, "%u/%llds", l->count, (long long)((p + 999) / 1000));
}

static atomic_bool shared_rate_failing;   /* log a failure once per incident */

/*
 * The limiter a fleet shares, in a Redis store (the server's clock):
 * BW_LIM_UNTRACKED when the store keeps none (LMDB) or fails; the caller
 * then counts in this daemon's memory (rate counters fail open with a
 * local estimate, as DESIGN.md says).
 */
static bw_lim_result
msg_shared_rate(bw_msg *m, bw_lim_kind k, const bw_gcra_limit *l, unsigned n, bw_time_ms *retry)
{
	char key[BW_SENDER_MAX + 4];
	int64_t iv = (l->period * 1000 + l->count - 1) / l->count, wait = 0;
	int allowed = 1;
	bw_store_err e;

	if (m->st == NULL || strncmp(bw_store_spec(m->st), "redis:", 6) != 0)
		return BW_LIM_UNTRACKED;
	if (n > l->burst)
		return BW_LIM_NEVER;
	snprintf(key, sizeof(key), "%s:%c", m->sender, k == BW_LIM_MSG ? 'm' : 'r');
	e = bw_store_rate_take(m->st, key, iv, l->burst, n, &allowed, &wait);
	if (e != BW_STORE_OK) {
		if (!atomic_exchange(&shared_rate_failing, true))
			bw_log(LOG_ERR, "shared rate limiters: %s; counting in this daemon until the store "
			    "answers", bw_store_last_error(m->st));
		return BW_LIM_UNTRACKED;
	}
	if (atomic_exchange(&shared_rate_failing, false))
		bw_log(LOG_NOTICE, "shared rate limiters: the store answers again");
	*retry = wait;
	return allowed ? BW_LIM_OK : BW_LIM_WAIT;
}

/* Takes n from the sender's limiter of kind k: BW_ACT_CONTINUE, or a 451
 * 4.7.1 (a 550 5.7.1 when n can never fit) in v. */
static bw_action
msg_rate_take(bw_msg *m, bw_lim_kind k, unsigned n, bw_verdict *v)
{
	const char *what = k == BW_LIM_MSG ? "message" : "recipient";
	bw_gcra_limit l;
	bw_time_ms retry;
	bw_lim_result res;
	char lt[40];

	if (!msg_limit(m, k, &l))
		return BW_ACT_CONTINUE;
	res = msg_shared_rate(m, k, &l, n, &retry);
	if (res == BW_LIM_UNTRACKED) {
		/* one host (LMDB), or the shared store failing: this daemon's own count */
		pthread_once(&engine_limiter_once, engine_limiter_init);
		if (engine_limiter == NULL)
			return BW_ACT_CONTINUE;
		res = bw_limiter_take(engine_limiter, m->sender, k, &l, m->rate_reset_at, m->now_ms, n,
		    &retry);
	}
	if (res == BW_LIM_OK || res == BW_LIM_UNTRACKED)
		return BW_ACT_CONTINUE;
	limit_text(&l, lt, sizeof(lt));
	if (m->pol->conf.mode == BW_MODE_MONITOR) {
		bw_log(LOG_NOTICE, "%s: from=<%.100s> sender=%s would be deferred: over its %s rate %s",
		    m->qid[0] ? m->qid : "-", m->from ? m->from : "", m->sender, what, lt);
		return BW_ACT_CONTINUE;
	}
	bw_stats_count("tempfail:rate");
	if (res == BW_LIM_NEVER) {
		verdict_set(v, BW_ACT_REJECT, "550", "5.7.1", "rate",
		    "sender %.100s: more %ss at once than its %s rate %s allows", m->sender, what, what, lt);
		return BW_ACT_REJECT;
	}
	verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.7.1", "rate",
	    "sender %.100s is over its %s rate %s%s, try again in %lld seconds", m->sender, what, lt,
	    m->rate_factor < 1 ? " (throttled)" : "", (long long)((retry + 999) / 1000));
	bw_log(LOG_INFO, "%s: from=<%.100s> sender=%s deferred: %s", m->qid[0] ? m->qid : "-",
	    m->from ? m->from : "", m->sender, v->text);
	return BW_ACT_TEMPFAIL;
}

struct step_ud {
	const bw_sender_policy *pol;
	bw_time_ms now;
};

/* bw_sender_change: a deadline that ran out since the record was written */
static bool
step_fn(bw_sender_rec *r, void *ud)
{
	const struct step_ud *u = ud;

	if (!bw_sender_step(u->pol, &r->s, NULL, 0, u->now))
		return false;
	bw_sender_rec_note(r, u->now, "state", r->s.reason);
	return true;
}

/*
 * The sender's state at MAIL FROM: one store read. Suspended: as
 * OnSuspended says (a hold is done at end of message). A deadline that ran
 * out (grace) changes the record here. Then the message rate.
 */
static bw_action
msg_sender_state(bw_msg *m, bw_verdict *v)
{
	const bw_policy *p = m->pol;
	const bw_conf *c = &p->conf;
	bw_sender_rec r;
	char err[300];
	bw_store_err e;

	e = m->st ? bw_sender_load(m->st, m->sender, m->now_ms, &r, err, sizeof(err))
	    : BW_STORE_UNAVAILABLE;
	if (e != BW_STORE_OK && e != BW_STORE_NOTFOUND) {
		msg_store_state_what(m, e, "sender state");
		if (e == BW_STORE_CORRUPT)
			bw_log(LOG_ERR, "%s: %s", m->qid[0] ? m->qid : "-", err);
		if (c->on_store_error == BW_ON_ACCEPT)
			return msg_rate_take(m, BW_LIM_MSG, 1, v);
		bw_stats_count("tempfail:store");
		verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.3.0", "store",
		    "the sender's state cannot be checked now, try again later");
		return BW_ACT_TEMPFAIL;
	}
	if (e == BW_STORE_OK) {
		bw_sender s = r.s;
		if (bw_sender_step(&p->sender, &s, NULL, 0, m->now_ms)) {
			struct step_ud u = { &p->sender, m->now_ms };
			bw_sender_state old = r.s.state;
			if (bw_sender_change(m->st, m->sender, m->now_ms, step_fn, &u, &r, err,
			    sizeof(err)) != BW_STORE_OK) {
				bw_log(LOG_ERR, "sender %s: state change to %s not recorded: %s", m->sender,
				    bw_sender_state_name(s.state), err);
				r.s = s;  /* in force all the same */
			} else if (r.s.state != old)
				bw_feedback_notify(p, m->sender, old, r.s.state, r.s.reason);
		}
		m->rate_reset_at = r.rate_reset_at;
		m->rate_factor = bw_sender_rate_factor(&p->sender, &r.s);
	}
	if (e == BW_STORE_OK && r.s.state == BW_SS_SUSPENDED) {
		snprintf(m->state_why, sizeof(m->state_why), "%s", r.s.reason[0] ? r.s.reason : "by an admin");
		if (c->mode == BW_MODE_MONITOR) {
			bw_log(LOG_NOTICE, "%s: from=<%.100s> sender=%s is suspended (%s): would be %s",
			    m->qid[0] ? m->qid : "-", m->from ? m->from : "", m->sender, m->state_why,
			    c->on_suspended == BW_SUSP_HOLD ? "held" : c->on_suspended == BW_SUSP_REJECT
			    ? "refused" : "deferred");
			return BW_ACT_CONTINUE;
		}
		switch (c->on_suspended) {
		case BW_SUSP_REJECT:
			bw_stats_count("refused:suspended");
			verdict_set(v, BW_ACT_REJECT, "550", "5.7.1", "suspended",
			    "sender %.100s is suspended (%.150s)", m->sender, m->state_why);
			break;
		case BW_SUSP_TEMPFAIL:
			bw_stats_count("tempfail:suspended");
			verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.7.1", "suspended",
			    "sender %.100s is suspended (%.150s), try again later", m->sender, m->state_why);
			break;
		default:
			m->hold = true;
			return BW_ACT_CONTINUE;
		}
		bw_log(LOG_NOTICE, "%s: from=<%.100s> sender=%s %s: %s", m->qid[0] ? m->qid : "-",
		    m->from ? m->from : "", m->sender, v->action == BW_ACT_REJECT ? "refused" : "deferred",
		    v->text);
		return v->action;
	}
	return msg_rate_take(m, BW_LIM_MSG, 1, v);
}

/* The recipients an accepted outbound message goes to, for the sender's
 * complaint rate (feedback.h). */
static size_t msg_remaining(const bw_msg *m, const struct msg_rcpt **last);

static void
msg_count_delivered(const bw_msg *m)
{
	size_t n;

	if (!m->outbound || m->sender[0] == 0 || m->force_set)
		return;
	n = msg_remaining(m, NULL);
	if (n)
		bw_feedback_delivered(m->sender, m->now_ms, (unsigned)n);
}

/* End of message of a suspended sender's mail under OnSuspended hold:
 * into the MTA's hold queue, its queue id kept for a release. */
static bw_action
msg_hold(bw_msg *m, bw_verdict *v)
{
	const char *qid = m->qid[0] ? m->qid : "-";
	bw_store_err e = BW_STORE_INVALID;

	if (m->st && bw_qid_ok(m->qid))
		e = bw_sender_held_add(m->st, m->sender, m->qid, m->now_ms);
	if (e != BW_STORE_OK)
		bw_log(LOG_ERR, "%s: held for suspended sender %s, but its queue id was not recorded "
		    "(%s): release it by hand", qid, m->sender,
		    m->st && bw_qid_ok(m->qid) ? bw_store_last_error(m->st) : "no queue id");
	bw_stats_count("held:suspended");
	verdict_set(v, BW_ACT_HOLD, "", "", "suspended", "bulkwarden: sender %.100s suspended",
	    m->sender);
	snprintf(m->summary, sizeof(m->summary),
	    "%s: client=%s from=<%.100s> sender=%s rcpt=%u outbound=yes action=hold reason=\"sender "
	    "suspended: %.200s\"", qid, m->addr, m->from ? m->from : "", m->sender, m->nrcpt,
	    m->state_why);
	return BW_ACT_HOLD;
}

/* ---------------------------------------------------------------- SPF */

static bw_spf *engine_spf;
static pthread_mutex_t engine_spf_mu = PTHREAD_MUTEX_INITIALIZER;

/*
 * The envelope domain as identity of mail from an unauthenticated client
 * is believed only when SPF lets the client send for it. Fail: SpfOnFail;
 * no answer (DNS, the helper): SpfOnError; "unknown" goes on without a
 * sender id (no state, no rates; bulk mail then lacks consent).
 */
static bw_action
msg_spf(bw_msg *m, bw_verdict *v)
{
	const bw_conf *c = &m->pol->conf;
	const char *qid = m->qid[0] ? m->qid : "-", *at, *word;
	char why[200];
	bw_spf_result r;
	int act;

	if (m->from == NULL || (at = strrchr(m->from, '@')) == NULL)
		return BW_ACT_CONTINUE;   /* the null sender: nothing to check */
	pthread_mutex_lock(&engine_spf_mu);
	if (engine_spf == NULL)
		engine_spf = bw_spf_new(c->spf_zone_file, c->spf_nameservers, c->spf_timeout * 1000);
	pthread_mutex_unlock(&engine_spf_mu);
	r = engine_spf ? bw_spf_check(engine_spf, m->addr, "", m->from, why, sizeof(why)) : BW_SPF_ERROR;
	switch (r) {
	case BW_SPF_FAIL:
		act = c->spf_on_fail;
		word = "failed";
		break;
	case BW_SPF_TEMPERROR:
	case BW_SPF_ERROR:
		act = c->spf_on_error;
		word = "could not be checked";
		break;
	case BW_SPF_PERMERROR:
		act = BW_SPFA_UNKNOWN;   /* a broken record proves nothing either way */
		word = "has a broken record";
		break;
	default:
		return BW_ACT_CONTINUE;
	}
	if (c->mode == BW_MODE_MONITOR || act == BW_SPFA_UNKNOWN) {
		bw_log(LOG_NOTICE, "%s: from=<%.100s> client=%s: SPF of %s %s (%s): %s", qid, m->from, m->addr,
		    at + 1, word, why, c->mode == BW_MODE_MONITOR ? "would act on it" : "no sender id");
		if (c->mode != BW_MODE_MONITOR)
			m->sender[0] = 0;
		return BW_ACT_CONTINUE;
	}
	bw_log(LOG_NOTICE, "%s: from=<%.100s> client=%s: SPF of %s %s (%s): %s", qid, m->from, m->addr,
	    at + 1, word, why, act == BW_SPFA_REJECT ? "refused" : "deferred");
	if (act == BW_SPFA_REJECT) {
		bw_stats_count("refused:spf");
		verdict_set(v, BW_ACT_REJECT, "550", "5.7.23", "spf",
		    "SPF check of %.100s failed for %.60s", at + 1, m->addr);
		if (r != BW_SPF_FAIL)
			snprintf(v->text, sizeof(v->text), "SPF check of %.100s could not be done for %.60s",
			    at + 1, m->addr);
	} else {
		bw_stats_count("tempfail:spf");
		verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.7.24", "spf",
		    "SPF check of %.100s %s for %.60s, try again later", at + 1, word, m->addr);
	}
	return v->action;
}

/* What MAIL FROM checks once the sender id is known: SPF of an envelope
 * domain from an unauthenticated client, the sender's state, the message
 * rate. */
static bw_action
msg_identity_checks(bw_msg *m, bw_verdict *v)
{
	bw_action a;

	if (m->sender[0] == 0 || m->force_set)
		return BW_ACT_CONTINUE;
	if (m->pol->conf.spf_check && !m->authed && m->addr[0]
	    && (m->sid_src == BW_SID_DOMAIN || m->sid_src == BW_SID_ADDRESS)
	    && (a = msg_spf(m, v)) != BW_ACT_CONTINUE)
		return a;
	if (m->sender[0] == 0)  /* SPF took it away */
		return BW_ACT_CONTINUE;
	return msg_sender_state(m, v);
}

static bw_action msg_identity_late(bw_msg *m, int stage, bw_verdict *v);

bw_action
bw_msg_envfrom(bw_msg *m, const char *from, const char *auth, bw_verdict *v)
{
	free(m->from);
	free(m->auth);
	m->from = msg_strip_addr(from);
	m->auth = auth && *auth ? strdup(auth) : NULL;
	m->authed = m->auth != NULL;
	m->outbound = m->internal || m->authed;
	m->sclass = bw_rules_sender(m->pol->rules, m->from, m->auth);
	m->cls = bw_rules_class(m->pol->rules, m->from, m->auth);
	m->sid_wait = msg_resolve_sid(m, SID_AT_ENVFROM, NULL, 0) == SID_WAIT;
	memset(v, 0, sizeof(*v));
	if (!m->outbound) {
		bw_stats_count("inbound");
		/* inbound mail is only read when it may be an unsubscribe */
		return v->action = m->pol->conf.unsubscribe_address[0] || m->pol->conf.complaint_address[0]
		    ? BW_ACT_CONTINUE : BW_ACT_ACCEPT;
	}
	bw_stats_count("outbound");
	if (!m->sid_wait) {
		bw_action a = msg_identity_checks(m, v);
		if (a != BW_ACT_CONTINUE)
			return a;
	}
	if (m->sclass == BW_SENDER_TRANSACTIONAL && !(m->force_set && m->force_bulk)
	    && m->pol->conf.unsubscribe_address[0] == 0 && m->pol->conf.complaint_address[0] == 0
	    && !m->hold && !m->sid_wait)
		return v->action = BW_ACT_ACCEPT;
	return BW_ACT_CONTINUE;
}

/* Recipients on the message that take from the recipient rate. */
static unsigned
msg_rate_rcpts(const bw_msg *m)
{
	unsigned n = 0;

	for (size_t i = 0; i < m->nrcpts; i++)
		if (!m->rcpts[i].unsub && !m->rcpts[i].complaint && !m->rcpts[i].removed)
			n++;
	return n;
}

/*
 * The sender id settles after RCPT (SenderIdentity header or dkim): the
 * checks of MAIL FROM, then the recipient rate for all recipients at once.
 * The whole message is deferred or refused; consent is looked up at end of
 * message (ConsentAtEnd). At end of message a DKIM key lookup that failed
 * for now defers it, since another source would name another sender.
 */
static bw_action
msg_identity_late(bw_msg *m, int stage, bw_verdict *v)
{
	const bw_conf *c = &m->pol->conf;
	char why[300] = "";
	int r = msg_resolve_sid(m, stage, why, sizeof(why));
	bw_action a;
	unsigned n;

	if (r == SID_WAIT)
		return BW_ACT_CONTINUE;
	m->sid_wait = false;
	if (r == SID_TEMPFAIL) {
		bw_log(LOG_NOTICE, "%s: from=<%.100s>: sender id from DKIM not known now: %s%s",
		    m->qid[0] ? m->qid : "-", m->from ? m->from : "", why,
		    c->mode == BW_MODE_MONITOR ? ": would defer" : "");
		if (c->mode != BW_MODE_MONITOR) {
			bw_stats_count("tempfail:identity");
			verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.4.3", "identity",
			    "the sender's DKIM key cannot be fetched now, try again later");
			return BW_ACT_TEMPFAIL;
		}
	}
	if (m->force_set)
		return BW_ACT_CONTINUE;
	bw_log(LOG_DEBUG, "%s: sender id %s (%s)", m->qid[0] ? m->qid : "-", m->sender[0] ? m->sender : "-",
	    m->sid_src < BW_SID__N ? bw_sid_source_name((bw_sid_source)m->sid_src) : "no source gave one");
	if ((a = msg_identity_checks(m, v)) != BW_ACT_CONTINUE)
		return a;
	if (m->sender[0] == 0 || m->hold || (n = msg_rate_rcpts(m)) == 0)
		return BW_ACT_CONTINUE;
	return msg_rate_take(m, BW_LIM_RCPT, n, v);
}

/* Is the normalised address the unsubscribe address, with or without a +TOKEN? */
static bool
msg_is_unsub_addr(const bw_conf *c, const char *norm)
{
	const char *ua = c->unsubscribe_address, *uat, *at;
	size_t ll;

	if (ua[0] == 0 || (uat = strchr(ua, '@')) == NULL || (at = strrchr(norm, '@')) == NULL)
		return false;
	ll = (size_t)(uat - ua);
	if (strcasecmp(at + 1, uat + 1) != 0 || strncasecmp(norm, ua, ll) != 0)
		return false;
	return norm + ll == at || norm[ll] == '+';
}

/* The consent policy of this message. */
static void
msg_consent_policy(const bw_msg *m, bw_consent_policy *cp)
{
	const bw_policy *p = m->pol;

	memset(cp, 0, sizeof(*cp));
	cp->max_age = m->cls && m->cls->consent_max_age >= 0 ? m->cls->consent_max_age
	    : (int64_t)p->conf.consent_max_age;
	cp->methods = m->cls && m->cls->methods >= 0 ? (unsigned)m->cls->methods : p->consent_methods;
	cp->lift = m->cls && m->cls->lift >= 0 ? (unsigned)m->cls->lift : p->consent_lift;
	cp->norm.fold_case = p->conf.fold_local_case;
	cp->norm.fold_plus = p->conf.fold_plus_tag;
	cp->erasure = p->erasure_key;
}

static atomic_bool store_failing;   /* log a store failure once per incident */

static void
msg_store_state_what(bw_msg *m, bw_store_err e, const char *what)
{
	if (e == BW_STORE_OK) {
		if (atomic_exchange(&store_failing, false))
			bw_log(LOG_NOTICE, "the store answers again");
		return;
	}
	if (!atomic_exchange(&store_failing, true))
		bw_log(LOG_ERR, "%s: %s lookup failed: %s; OnStoreError %s applies until it answers",
		    m->qid[0] ? m->qid : "-", what, m->st == NULL ? "the store is not open"
		    : bw_store_last_error(m->st)[0] ? bw_store_last_error(m->st) : bw_store_strerror(e),
		    m->pol->conf.on_store_error == BW_ON_ACCEPT ? "accept" : "tempfail");
}

static void
msg_store_state(bw_msg *m, bw_store_err e)
{
	msg_store_state_what(m, e, "consent");
}

/* Look up one recipient's consent. Returns BW_STORE_OK with r->refused and
 * r->why set, or the store's error. */
static bw_store_err
msg_check_rcpt(bw_msg *m, msg_rcpt *r)
{
	bw_consent_policy cp;
	bw_consent_result res;
	char why[160];
	bw_store_err e;

	r->checked = true;
	if (r->norm[0] == 0) {
		r->refused = true;
		snprintf(r->why, sizeof(r->why), "address not understood");
		return BW_STORE_OK;
	}
	if (m->sender[0] == 0) {
		r->refused = true;
		snprintf(r->why, sizeof(r->why), "no sender identity to look consent up for");
		return BW_STORE_OK;
	}
	if (m->st == NULL) {
		r->checked = false;
		msg_store_state(m, BW_STORE_UNAVAILABLE);
		return BW_STORE_UNAVAILABLE;
	}
	msg_consent_policy(m, &cp);
	e = bw_consent_check(m->st, &cp, m->sender, r->norm, (int64_t)m->now, &res, why, sizeof(why));
	msg_store_state(m, e);
	if (e != BW_STORE_OK) {
		r->checked = false;
		return e;
	}
	r->refused = res != BW_CONSENT_OK;
	snprintf(r->why, sizeof(r->why), "%s", why);
	return BW_STORE_OK;
}

static msg_rcpt *
msg_add_rcpt(bw_msg *m, const char *arg)
{
	msg_rcpt *r;

	if (m->nrcpts == m->caprcpts) {
		size_t nc = m->caprcpts ? m->caprcpts * 2 : 4;
		msg_rcpt *nr;
		if (nc > MSG_MAX_RCPTS || (nr = realloc(m->rcpts, nc * sizeof(*nr))) == NULL)
			return NULL;
		m->rcpts = nr;
		m->caprcpts = nc;
	}
	r = &m->rcpts[m->nrcpts];
	memset(r, 0, sizeof(*r));
	if ((r->arg = strdup(arg)) == NULL)
		return NULL;
	m->nrcpts++;
	return r;
}

static bool
msg_consent_applies(const bw_msg *m)
{
	bool req = m->cls && m->cls->require_consent >= 0 ? m->cls->require_consent
	    : m->pol->conf.require_consent;
	return req && m->outbound;
}

static bw_action
msg_rcpt_consent(bw_msg *m, const char *rcpt, bw_verdict *v)
{
	const bw_conf *c = &m->pol->conf;
	char *a = msg_strip_addr(rcpt), err[120];
	bw_norm_opts no = { c->fold_local_case, c->fold_plus_tag };
	msg_rcpt *r;
	bw_store_err e;

	memset(v, 0, sizeof(*v));
	if (a == NULL || (r = msg_add_rcpt(m, rcpt)) == NULL) {
		free(a);
		if (m->nrcpts >= MSG_MAX_RCPTS && a) {
			/* past what is remembered: the same as a bound */
			if (m->limit == NULL)
				m->limit = "recipients";
			m->nrcpt++;
			return BW_ACT_CONTINUE;
		}
		bw_stats_count("tempfail:internal");
		verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.3.0", "internal",
		    "bulkwarden: temporary failure, try again later");
		return BW_ACT_TEMPFAIL;
	}
	if (!bw_addr_normalise(a, &no, false, r->norm, sizeof(r->norm), err, sizeof(err)))
		r->norm[0] = 0;
	free(a);
	if (r->norm[0] && msg_is_unsub_addr(c, r->norm)) {
		r->unsub = true;
		m->nunsub++;
	} else if (r->norm[0] && c->complaint_address[0] && strcasecmp(r->norm, c->complaint_address) == 0) {
		r->complaint = true;
		m->ncomplaint++;
	}
	m->nrcpt++;
	if (!r->unsub && !r->complaint && r->norm[0] && bw_rules_exempt_rcpt(m->pol->rules, r->norm)) {
		r->exempt = true;
		m->nexempt++;
	}
	if (r->unsub || r->complaint || r->exempt || !msg_consent_applies(m) || m->sclass != BW_SENDER_BULK
	    || m->force_set || m->sid_wait)
		return BW_ACT_CONTINUE;   /* (the sender id not known yet: at end of message) */
	/* bulk is known here: one answer per recipient */
	if ((e = msg_check_rcpt(m, r)) != BW_STORE_OK) {
		if (c->on_store_error == BW_ON_ACCEPT)
			return BW_ACT_CONTINUE;
		bw_stats_count("tempfail:store");
		m->nrcpt--;
		m->nrcpts--;
		free(r->arg);
		verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.3.0", "store",
		    "consent cannot be checked now, try again later");
		return BW_ACT_TEMPFAIL;
	}
	if (!r->refused)
		return BW_ACT_CONTINUE;
	if (c->mode == BW_MODE_MONITOR) {
		bw_log(LOG_NOTICE, "%s: from=<%.100s> sender=%s rcpt=<%.200s> would be refused: %s",
		    m->qid[0] ? m->qid : "-", m->from, m->sender, r->norm, r->why);
		return BW_ACT_CONTINUE;
	}
	bw_log(LOG_NOTICE, "%s: from=<%.100s> sender=%s rcpt=<%.200s> refused: %s",
	    m->qid[0] ? m->qid : "-", m->from, m->sender, r->norm[0] ? r->norm : r->arg, r->why);
	bw_stats_count("refused:consent");
	verdict_set(v, BW_ACT_REJECT, "550", "5.7.1", "consent",
	    "<%.200s>: no consent for bulk mail from %.100s (%s)", r->norm[0] ? r->norm : r->arg,
	    m->sender[0] ? m->sender : "this sender", r->why);
	m->nrcpt--;
	m->nrefused++;
	m->nrcpts--;
	free(r->arg);
	return BW_ACT_REJECT;
}

/* The consent of the recipient, then the sender's recipient rate (one
 * recipient refused for the rate is not counted). Held mail is not sent:
 * its recipients take nothing from the rate. */
bw_action
bw_msg_rcpt(bw_msg *m, const char *rcpt, bw_verdict *v)
{
	size_t before = m->nrcpts;
	bw_action a = msg_rcpt_consent(m, rcpt, v);
	msg_rcpt *r;

	if (a != BW_ACT_CONTINUE || !m->outbound || m->sender[0] == 0 || m->hold || m->force_set
	    || m->nrcpts != before + 1)
		return a;
	r = &m->rcpts[m->nrcpts - 1];
	if (r->unsub || r->complaint || (a = msg_rate_take(m, BW_LIM_RCPT, 1, v)) == BW_ACT_CONTINUE)
		return a;
	if (r->exempt)
		m->nexempt--;
	m->nrcpt--;
	m->nrcpts--;
	free(r->arg);
	return a;
}

/* Appends to the complaint report kept (lf: bare LFs become CRLF, as in
 * a header value from the MTA); past BW_ARF_SIZE_MAX nothing is kept. */
static void
msg_raw_add(bw_msg *m, const char *s, size_t n, bool lf)
{
	size_t need = m->rawlen + (lf ? 2 * n : n);

	if (m->raw_big)
		return;
	if (need > BW_ARF_SIZE_MAX) {
		m->raw_big = true;
		free(m->raw);
		m->raw = NULL;
		return;
	}
	if (need > m->rawcap) {
		size_t nc = m->rawcap ? m->rawcap : 16384;
		char *nr;
		while (nc < need)
			nc *= 2;
		if ((nr = realloc(m->raw, nc)) == NULL) {
			m->raw_big = true;
			free(m->raw);
			m->raw = NULL;
			return;
		}
		m->raw = nr;
		m->rawcap = nc;
	}
	for (size_t i = 0; i < n; i++) {
		if (lf && s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			m->raw[m->rawlen++] = '\r';
		m->raw[m->rawlen++] = s[i];
	}
}

/* the unsubscribe scan of the message; the milter's verdict needs no list
 * of the links, only a scan report does */
static void
msg_unsub_start(bw_msg *m)
{
	if ((m->unsub = unsub_new(m->pol)) != NULL && !m->keep_links)
		unsub_skip_links(m->unsub);
}

void
bw_msg_header(bw_msg *m, const char *name, const char *value)
{
	size_t l = strlen(name) + strlen(value) + 4;

	m->hdr_bytes += l;
	if (m->ncomplaint) {
		msg_raw_add(m, name, strlen(name), false);
		msg_raw_add(m, ": ", 2, false);
		msg_raw_add(m, value, strlen(value), true);
		msg_raw_add(m, "\r\n", 2, false);
	}
	if (l > m->pol->conf.max_header_line && m->limit == NULL)
		m->limit = "MaxHeaderLine";
	if (m->hdr_bytes > m->pol->conf.max_header_bytes && m->limit == NULL)
		m->limit = "MaxHeaderBytes";
	if (m->nunsub && bw_ascii_caseeq(name, "Subject") && m->subject == NULL)
		m->subject = strndup(value, 1000);
	if (bw_ascii_caseeq(name, "Message-ID") && m->msgid == NULL)
		m->msgid = strndup(value, 998);
	if (bw_ascii_caseeq(name, "Feedback-ID"))
		m->has_fbid = true;
	if (bw_ascii_caseeq(name, "List-Id")) {
		m->list_id = true;
		if (m->listid == NULL)
			m->listid = strndup(value, 300);
	}
	else if (bw_ascii_caseeq(name, "List-Unsubscribe"))
		m->list_unsub = true;
	else if (bw_ascii_caseeq(name, "Precedence")) {
		const char *p = value;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, "bulk", 4) == 0 || strncasecmp(p, "list", 4) == 0)
			m->precedence = true;
	}
	if ((bw_ascii_caseeq(name, "DKIM-Signature") || bw_ascii_caseeq(name, "From"))
	    && m->ndkim < MSG_MAX_DKIM + 1 && m->limit == NULL) {
		if (bw_ascii_caseeq(name, "DKIM-Signature"))
			m->dkim_seen = true;
		m->dkim_names[m->ndkim] = strdup(name);
		m->dkim_values[m->ndkim] = strdup(value);
		if (m->dkim_names[m->ndkim] && m->dkim_values[m->ndkim])
			m->ndkim++;
		else
			free(m->dkim_names[m->ndkim]), free(m->dkim_values[m->ndkim]);
	}
	if (m->sid_wait)
		msg_identity_header(m, name, value);
	if (m->unsub == NULL && m->limit == NULL)
		msg_unsub_start(m);
	if (m->unsub && m->limit == NULL)
		unsub_header(m->unsub, name, value);
}

/* Is it bulk? Sets m->bulk and m->bulk_why. */
static void
msg_classify(bw_msg *m)
{
	if (m->force_set) {
		m->bulk = m->force_bulk;
		m->bulk_why = m->force_bulk ? "forced" : NULL;
	} else if (m->sclass == BW_SENDER_BULK) {
		m->bulk = true, m->bulk_why = "bulk-sender";
	} else if (m->list_id) {
		m->bulk = true, m->bulk_why = "List-Id";
	} else if (m->list_unsub) {
		m->bulk = true, m->bulk_why = "List-Unsubscribe";
	} else if (m->precedence) {
		m->bulk = true, m->bulk_why = "Precedence";
	} else if (m->nrcpt > m->pol->conf.bulk_recipients) {
		m->bulk = true, m->bulk_why = "recipients";
	}
}

bw_action
bw_msg_eoh(bw_msg *m, bw_verdict *v)
{
	/* an unsubscribe mail goes on to end of message, without its body; a
	 * complaint report with it */
	bw_action done = m->nunsub || m->ncomplaint ? BW_ACT_CONTINUE : BW_ACT_ACCEPT;

	memset(v, 0, sizeof(*v));
	if (m->ncomplaint)
		msg_raw_add(m, "\r\n", 2, false);
	if (m->force_set)
		m->outbound = true;
	if (!m->outbound)
		return v->action = done;
	if (m->sid_wait) {
		bw_action a;
		bw_dkim_stream_eoh(m->dkim_s);
		if ((a = msg_identity_late(m, SID_AT_EOH, v)) != BW_ACT_CONTINUE)
			return a;
		/* a hold, or an id still to come (dkim), is for end of message */
		if (m->hold || m->sid_wait)
			done = BW_ACT_CONTINUE;
	}
	if (m->sclass == BW_SENDER_TRANSACTIONAL && !m->force_set)
		return v->action = done;
	msg_classify(m);
	if (!m->bulk)
		return v->action = done;
	bw_stats_count("bulk");
	if (m->nrcpt > 0 && m->nexempt + m->nunsub + m->ncomplaint >= m->nrcpt)
		return v->action = done;
	m->checking = true;
	if (m->unsub == NULL && m->limit == NULL)
		msg_unsub_start(m);
	if (m->unsub == NULL && m->limit == NULL) {
		const bw_conf *c = &m->pol->conf;
		bw_log(LOG_ERR, "%s: out of memory starting the message scan", m->qid[0] ? m->qid : "-");
		bw_stats_count("tempfail:internal");
		if (c->on_internal_error == BW_ON_ACCEPT)
			return v->action = BW_ACT_ACCEPT;
		verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.3.0", "internal",
		    "bulkwarden: temporary failure, try again later");
		return BW_ACT_TEMPFAIL;
	}
	return BW_ACT_CONTINUE;
}

bw_action
bw_msg_body(bw_msg *m, const char *buf, size_t len)
{
	/* a complaint report is kept whole, up to its bound */
	bw_action more = m->ncomplaint && !m->raw_big ? BW_ACT_CONTINUE : BW_ACT_ACCEPT;

	if (more == BW_ACT_CONTINUE)
		msg_raw_add(m, buf, len, false);
	if (m->sid_wait && bw_dkim_stream_wants_body(m->dkim_s)) {
		bw_dkim_stream_body(m->dkim_s, buf, len);
		more = BW_ACT_CONTINUE;
	}
	if (!m->checking || m->limit || m->unsub == NULL)
		return more;
	if (!unsub_body_feed(m->unsub, buf, len))
		return more;
	return BW_ACT_CONTINUE;
}

/* The reason text for a failed body view: "text/html part: link hidden by display:none" */
static void
msg_view_reason(const unsub_result *r, char *out, size_t outsz)
{
	if (r->worst && r->worst->detail)
		snprintf(out, outsz, "%s part: %s", r->worst->part, r->worst->detail);
	else if (r->worst)
		snprintf(out, outsz, "%s part: %s", r->worst->part, unsub_body_name(r->body));
	else
		snprintf(out, outsz, "no text/plain or text/html body");
}

static size_t msg_remaining(const bw_msg *m, const struct msg_rcpt **last);

/* the DKIM h= coverage, looked up once and only when wanted */
static void
msg_dkim(bw_msg *m)
{
	if (m->dkim_seen && !m->dkim_done)
		dkimcov_check((const char *const *)m->dkim_names, (const char *const *)m->dkim_values,
		    m->ndkim, &m->dkim);
	m->dkim_done = true;
}

/* Decide from the unsubscribe findings. v gets the enforce verdict. */
static void
msg_decide(bw_msg *m, bw_verdict *v)
{
	const bw_conf *c = &m->pol->conf;
	const unsub_result *r = m->res;
	char why[300];
	const char *lim = m->limit ? m->limit : (r ? r->limit : NULL);
	/* headers bulkwarden adds itself are not asked of the sender */
	bool add_lu = c->add_list_unsubscribe && !m->list_unsub && m->pol->token_keys
	    && m->sender[0] && msg_remaining(m, NULL) == 1;

	if (lim) {
		snprintf(m->reason, sizeof(m->reason), "limit:%s", lim);
		if (c->on_limit == BW_ON_ACCEPT) {
			verdict_set(v, BW_ACT_ACCEPT, "", "", "limit", "accepted over %s", lim);
		} else if (c->on_limit == BW_ON_REJECT) {
			verdict_set(v, BW_ACT_REJECT, "550", "5.7.1", "limit",
			    "message exceeds %s: bulkwarden cannot check it", lim);
		} else {
			verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.7.1", "limit",
			    "message exceeds %s: bulkwarden cannot check it now", lim);
		}
		return;
	}
	if (c->require_body_link && r->body != UNSUB_VISIBLE) {
		msg_view_reason(r, why, sizeof(why));
		snprintf(m->reason, sizeof(m->reason), "%s", why);
		verdict_set(v, BW_ACT_REJECT, "550", "5.7.1", "unsubscribe",
		    "bulk mail must show a visible unsubscribe link (%s)", why);
		return;
	}
	if (c->require_list_unsubscribe && r->list_unsubscribe != UNSUB_HDR_OK
	    && !(add_lu && r->list_unsubscribe == UNSUB_HDR_ABSENT)) {
		snprintf(m->reason, sizeof(m->reason), "List-Unsubscribe %s%s%s",
		    unsub_hdr_name(r->list_unsubscribe), r->lu_detail ? ": " : "",
		    r->lu_detail ? r->lu_detail : "");
		verdict_set(v, BW_ACT_REJECT, "550", "5.7.1", "list-unsubscribe",
		    "bulk mail must carry a valid List-Unsubscribe header, RFC 2369 (%s)", m->reason);
		return;
	}
	if (c->require_one_click && r->one_click == UNSUB_HDR_OK && m->dkim.nsigs > 0
	    && !(m->dkim.covers_lu && m->dkim.covers_post)) {
		snprintf(m->reason, sizeof(m->reason), "DKIM signature d=%.100s does not cover %s",
		    m->dkim.domain, m->dkim.covers_lu ? "List-Unsubscribe-Post"
		    : "List-Unsubscribe and List-Unsubscribe-Post");
		verdict_set(v, BW_ACT_REJECT, "550", "5.7.1", "one-click",
		    "bulk mail must offer one-click unsubscribe, RFC 8058 (%s)", m->reason);
		return;
	}
	if (c->require_one_click && r->one_click != UNSUB_HDR_OK
	    && !(add_lu && c->one_click_url[0] && r->one_click == UNSUB_HDR_ABSENT)) {
		snprintf(m->reason, sizeof(m->reason), "one-click %s%s%s",
		    unsub_hdr_name(r->one_click), r->oc_detail ? ": " : "",
		    r->oc_detail ? r->oc_detail : "");
		verdict_set(v, BW_ACT_REJECT, "550", "5.7.1", "one-click",
		    "bulk mail must offer one-click unsubscribe, RFC 8058 (%s)", m->reason);
		return;
	}
	verdict_set(v, BW_ACT_ACCEPT, "", "", NULL, "ok");
}

/* The token of an unsubscribe mail: the +extension of the address, else
 * the first word of the Subject that is long enough to be one. */
static bool
msg_unsub_token(const bw_msg *m, const msg_rcpt *r, char *tok, size_t len)
{
	const char *plus = strchr(r->norm, '+'), *at = strrchr(r->norm, '@');

	if (plus && at && plus < at && (size_t)(at - plus - 1) < len) {
		memcpy(tok, plus + 1, (size_t)(at - plus - 1));
		tok[at - plus - 1] = 0;
		return true;
	}
	for (const char *p = m->subject; p && *p;) {
		size_t n;
		while (*p && !isalnum((unsigned char)*p))
			p++;
		for (n = 0; isalnum((unsigned char)p[n]); n++)
			;
		if (n >= 24 && n < len) {
			memcpy(tok, p, n);
			tok[n] = 0;
			return true;
		}
		p += n;
	}
	return false;
}

/* Act on mail to the unsubscribe address. A recipient whose token worked is
 * consumed (removed; the message is discarded when nothing is left). A
 * store failure tempfails the message so that the request is not lost. */
static bw_action
msg_unsub_requests(bw_msg *m, bw_verdict *v)
{
	const char *qid = m->qid[0] ? m->qid : "-";

	for (size_t i = 0; i < m->nrcpts; i++) {
		msg_rcpt *r = &m->rcpts[i];
		char tok[BW_TOKEN_MAX + 1], why[400];
		bw_optout_result res;

		if (!r->unsub)
			continue;
		if (!msg_unsub_token(m, r, tok, sizeof(tok))) {
			bw_stats_count("unsubscribe:invalid");
			bw_log(LOG_NOTICE, "%s: unsubscribe mail from <%.100s> without a token: delivered as is",
			    qid, m->from ? m->from : "");
			continue;
		}
		res = bw_optout_token(m->pol, m->st, tok, "mailto", (int64_t)m->now, NULL, 0, NULL, 0,
		    why, sizeof(why));
		bw_log(res == BW_OPTOUT_DONE ? LOG_INFO : LOG_NOTICE, "%s: unsubscribe by mail from <%.100s>: %s (%s)",
		    qid, m->from ? m->from : "", bw_optout_name(res), why);
		switch (res) {
		case BW_OPTOUT_DONE:
		case BW_OPTOUT_ALREADY:
			bw_stats_count("unsubscribe:mailto");
			r->removed = true;
			break;
		case BW_OPTOUT_STALE:
			bw_stats_count("unsubscribe:stale");
			r->removed = true;
			break;
		case BW_OPTOUT_INVALID:
			bw_stats_count("unsubscribe:invalid");
			break;
		case BW_OPTOUT_STORE:
		case BW_OPTOUT_NOKEY:
			msg_store_state(m, BW_STORE_UNAVAILABLE);
			bw_stats_count("tempfail:store");
			verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.3.0", "store",
			    "the unsubscribe cannot be recorded now, try again later");
			return BW_ACT_TEMPFAIL;
		}
	}
	return BW_ACT_CONTINUE;
}

/* Recipients still on the message (not removed). */
static size_t
msg_remaining(const bw_msg *m, const msg_rcpt **last)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nrcpts; i++)
		if (!m->rcpts[i].removed) {
			n++;
			if (last)
				*last = &m->rcpts[i];
		}
	return n;
}

/* Consent for bulk mail that was classified only after RCPT. Fills v with
 * a refusal or leaves it; marks recipients to remove. */
static void
msg_consent_eom(bw_msg *m, bw_verdict *v)
{
	const bw_conf *c = &m->pol->conf;
	const char *qid = m->qid[0] ? m->qid : "-";
	msg_rcpt *first = NULL;
	unsigned nref = 0, nleft = 0;

	if (!msg_consent_applies(m))
		return;
	for (size_t i = 0; i < m->nrcpts; i++) {
		msg_rcpt *r = &m->rcpts[i];
		bw_store_err e;

		if (r->unsub || r->exempt || r->removed)
			continue;
		if (!r->checked && (e = msg_check_rcpt(m, r)) != BW_STORE_OK) {
			if (c->on_store_error == BW_ON_ACCEPT)
				continue;
			bw_stats_count("tempfail:store");
			snprintf(m->reason, sizeof(m->reason), "store: %s", bw_store_strerror(e));
			verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.3.0", "store",
			    "consent cannot be checked now, try again later");
			return;
		}
		if (!r->refused) {
			nleft++;
			continue;
		}
		nref++;
		if (first == NULL)
			first = r;
		bw_log(LOG_NOTICE, "%s: from=<%.100s> sender=%s rcpt=<%.200s> %s: %s", qid,
		    m->from ? m->from : "", m->sender, r->norm[0] ? r->norm : r->arg,
		    c->mode == BW_MODE_MONITOR ? "would be refused"
		    : c->consent_at_end == BW_AT_END_REJECT ? "refuses the message" : "removed",
		    r->why);
	}
	if (nref == 0)
		return;
	snprintf(m->reason, sizeof(m->reason), "<%.200s>: %.150s%s", first->norm[0] ? first->norm : first->arg,
	    first->why, nref > 1 ? " (and more)" : "");
	if (c->consent_at_end == BW_AT_END_REJECT || nleft == 0 || c->mode == BW_MODE_MONITOR) {
		const char *who = first->norm[0] ? first->norm : first->arg;
		const char *snd = m->sender[0] ? m->sender : "this sender";
		if (nref > 1)
			verdict_set(v, BW_ACT_REJECT, "550", "5.7.1", "consent",
			    "%u recipients lack consent for bulk mail from %.100s, first <%.200s> (%s)",
			    nref, snd, who, first->why);
		else
			verdict_set(v, BW_ACT_REJECT, "550", "5.7.1", "consent",
			    "<%.200s>: no consent for bulk mail from %.100s (%s)", who, snd, first->why);
		return;
	}
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].refused && m->rcpts[i].checked && !m->rcpts[i].unsub && !m->rcpts[i].exempt)
			m->rcpts[i].removed = true;
	for (unsigned i = 0; i < nref; i++)
		bw_stats_count("removed:consent");
}

/* List-Unsubscribe with fresh tokens for a one-recipient bulk message that
 * has none (AddListUnsubscribe). */
/* The trace header (and CFBL-Address, CFBL-Feedback-ID, RFC 9477) of an
 * outbound bulk message: its sender, its recipient when it has one, and its
 * Message-ID, signed, so that a complaint maps back to them. */
static void
msg_add_trace(bw_msg *m, size_t *nadd)
{
	const bw_conf *c = &m->pol->conf;
	const msg_rcpt *r = NULL;

	if (!c->add_trace_header || m->pol->token_keys == NULL || m->sender[0] == 0 || m->msgid == NULL)
		return;
	if (msg_remaining(m, &r) != 1 || r == NULL || r->norm[0] == 0)
		r = NULL;
	if (!bw_trace_make(m->pol->token_keys, m->sender, r ? r->norm : NULL, m->msgid, (int64_t)m->now,
	    m->trace, sizeof(m->trace)))
		return;
	m->add[*nadd].name = BW_TRACE_HEADER;
	m->add[(*nadd)++].value = m->trace;
	if (c->cfbl_address[0]) {
		snprintf(m->cfbl, sizeof(m->cfbl), "%s; report=arf", c->cfbl_address);
		m->add[*nadd].name = "CFBL-Address";
		m->add[(*nadd)++].value = m->cfbl;
		m->add[*nadd].name = "CFBL-Feedback-ID";
		m->add[(*nadd)++].value = m->trace;
	}
}

/* Copies a Feedback-ID field: ':' and what is not printable ASCII
 * become '_'. Returns the new offset. */
static size_t
fbid_field(char *out, size_t o, size_t len, const char *s, size_t n)
{
	for (size_t i = 0; i < n && o + 1 < len; i++)
		out[o++] = s[i] == ':' || (unsigned char)s[i] <= ' ' || (unsigned char)s[i] > '~' ? '_' : s[i];
	out[o] = 0;
	return o;
}

/* Feedback-ID: LIST:SENDER:bulk:FeedbackID (the part of List-Id in angle
 * brackets, or 0). */
static void
msg_add_feedback_id(bw_msg *m, size_t *nadd)
{
	const char *fb = m->pol->conf.feedback_id, *lt, *gt;
	size_t o;

	if (fb[0] == 0 || m->has_fbid || m->sender[0] == 0)
		return;
	if (m->listid && (lt = strchr(m->listid, '<')) && (gt = strchr(lt, '>')) && gt > lt + 1)
		o = fbid_field(m->fbid, 0, sizeof(m->fbid), lt + 1, (size_t)(gt - lt - 1));
	else
		o = fbid_field(m->fbid, 0, sizeof(m->fbid), "0", 1);
	m->fbid[o++] = ':';
	o = fbid_field(m->fbid, o, sizeof(m->fbid), m->sender, strlen(m->sender));
	o += (size_t)snprintf(m->fbid + o, sizeof(m->fbid) - o, ":bulk:");
	if (o >= sizeof(m->fbid))
		return;
	fbid_field(m->fbid, o, sizeof(m->fbid), fb, strlen(fb));
	m->add[*nadd].name = "Feedback-ID";
	m->add[(*nadd)++].value = m->fbid;
}

static void
msg_add_list_unsubscribe(bw_msg *m, size_t *nadd)
{
	const bw_conf *c = &m->pol->conf;
	const msg_rcpt *r = NULL;
	char tok[BW_TOKEN_MAX + 1];
	size_t o = 0;

	if (!c->add_list_unsubscribe || m->list_unsub || m->pol->token_keys == NULL || m->sender[0] == 0)
		return;
	if (msg_remaining(m, &r) != 1 || r == NULL || r->norm[0] == 0 || r->unsub) {
		bw_log(LOG_INFO, "%s: List-Unsubscribe not added: the message has %zu recipients, "
		    "a token names one", m->qid[0] ? m->qid : "-", msg_remaining(m, NULL));
		return;
	}
	if (!bw_token_make(m->pol->token_keys, m->sender, r->norm, (int64_t)m->now, tok, sizeof(tok)))
		return;
	if (c->one_click_url[0])
		o += (size_t)snprintf(m->lu_hdr + o, sizeof(m->lu_hdr) - o, "<%s%s>", c->one_click_url, tok);
	if (c->unsubscribe_address[0] && o < sizeof(m->lu_hdr)) {
		const char *at = strchr(c->unsubscribe_address, '@');
		o += (size_t)snprintf(m->lu_hdr + o, sizeof(m->lu_hdr) - o, "%s<mailto:%.*s+%s%s>",
		    o ? ",\n\t" : "", (int)(at - c->unsubscribe_address), c->unsubscribe_address, tok, at);
	}
	if (o == 0 || o >= sizeof(m->lu_hdr))
		return;
	m->add[*nadd].name = "List-Unsubscribe";
	m->add[(*nadd)++].value = m->lu_hdr;
	if (c->one_click_url[0]) {
		m->add[*nadd].name = "List-Unsubscribe-Post";
		m->add[(*nadd)++].value = "List-Unsubscribe=One-Click";
	}
	bw_stats_count("list-unsubscribe:added");
}

/* After the verdict: the recipients the milter must remove. */
static void
msg_collect_delrcpt(bw_msg *m)
{
	size_t n = 0;

	free(m->delrcpt);
	if ((m->delrcpt = calloc(m->nrcpts + 1, sizeof(*m->delrcpt))) == NULL)
		return;
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].removed)
			m->delrcpt[n++] = m->rcpts[i].arg;
}

static void
msg_summary_unchecked(bw_msg *m, const char *action)
{
	snprintf(m->summary, sizeof(m->summary),
	    "%s: client=%s from=<%.100s> rcpt=%u outbound=%s bulk=no action=%s", m->qid[0] ? m->qid : "-",
	    m->addr, m->from ? m->from : "", m->nrcpt, m->outbound ? "yes" : "no", action);
}

/* A complaint report to ComplaintAddress: counted (feedback.h) at end of
 * message and delivered with a header that says what became of it. A store
 * failure defers it, so that the reporter sends it again. */
static bw_action
msg_complaint_report(bw_msg *m, bw_verdict *v)
{
	const char *qid = m->qid[0] ? m->qid : "-";
	bw_fb_report rep;
	bw_store_err e;

	if (m->raw_big || m->raw == NULL) {
		bw_log(LOG_NOTICE, "%s: complaint report from <%.100s> not read: over %u bytes", qid,
		    m->from ? m->from : "", (unsigned)BW_ARF_SIZE_MAX);
		snprintf(m->fbhdr, sizeof(m->fbhdr), "complaint=not-read (too big)");
		return BW_ACT_CONTINUE;
	}
	e = m->st ? bw_feedback_report(m->pol, m->st, m->raw, m->rawlen, m->now_ms, &rep)
	    : BW_STORE_UNAVAILABLE;
	if (e != BW_STORE_OK) {
		msg_store_state_what(m, e, "complaint");
		bw_stats_count("tempfail:store");
		verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.3.0", "store",
		    "the complaint cannot be recorded now, try again later");
		return BW_ACT_TEMPFAIL;
	}
	if (rep.status == BW_FBR_APPLIED || rep.status == BW_FBR_DUPLICATE) {
		bw_log(LOG_NOTICE, "%s: complaint from <%.100s> %s: sender=%s rcpt=<%s> %s window=%llu/%llu "
		    "state=%s%s%s", qid, m->from ? m->from : "", bw_fbr_status_name(rep.status), rep.sender,
		    rep.rcpt, rep.why, (unsigned long long)rep.r.totals.complaints,
		    (unsigned long long)rep.r.totals.delivered, bw_sender_state_name(rep.r.before),
		    rep.r.after != rep.r.before ? "->" : "",
		    rep.r.after != rep.r.before ? bw_sender_state_name(rep.r.after) : "");
		if (rep.r.after != rep.r.before)
			bw_feedback_notify(m->pol, rep.sender, rep.r.before, rep.r.after, rep.r.reason);
		snprintf(m->fbhdr, sizeof(m->fbhdr), "complaint=%s sender=%s", bw_fbr_status_name(rep.status),
		    rep.sender);
	} else {
		bw_log(LOG_NOTICE, "%s: complaint from <%.100s> not counted: %s: %s", qid,
		    m->from ? m->from : "", bw_fbr_status_name(rep.status), rep.why);
		snprintf(m->fbhdr, sizeof(m->fbhdr), "complaint=%s", bw_fbr_status_name(rep.status));
	}
	return BW_ACT_CONTINUE;
}

bw_action
bw_msg_eom(bw_msg *m, bw_verdict *v)
{
	const bw_conf *c = &m->pol->conf;
	bw_verdict ev;
	const char *qid = m->qid[0] ? m->qid : "-";
	size_t nadd = 0, nremoved = 0;

	memset(v, 0, sizeof(*v));
	memset(m->add, 0, sizeof(m->add));
	if (m->sid_wait && m->outbound) {
		bw_action a = msg_identity_late(m, SID_AT_EOM, v);
		if (a != BW_ACT_CONTINUE) {
			msg_summary_unchecked(m, bw_action_name(a));
			return a;
		}
	}
	if (m->hold)
		return msg_hold(m, v);
	if (m->ncomplaint && msg_complaint_report(m, v) == BW_ACT_TEMPFAIL) {
		msg_summary_unchecked(m, "tempfail");
		return v->action;
	}
	if (m->nunsub && msg_unsub_requests(m, v) == BW_ACT_TEMPFAIL) {
		msg_summary_unchecked(m, "tempfail");
		return v->action;
	}
	if (!m->checking) {
		msg_collect_delrcpt(m);
		if (m->nunsub && m->nrcpts && msg_remaining(m, NULL) == 0) {
			msg_summary_unchecked(m, "discard");
			return v->action = BW_ACT_DISCARD;
		}
		bw_stats_count("accepted");
		msg_summary_unchecked(m, "accept");
		msg_count_delivered(m);
		if (m->fbhdr[0] && c->verdict_header[0]) {
			m->add[0].name = c->verdict_header;
			m->add[0].value = m->fbhdr;
		}
		return v->action = BW_ACT_ACCEPT;
	}
	if (m->unsub && m->res == NULL)
		m->res = unsub_finish(m->unsub);
	/* libopendkim costs more than the rest of end of message: only when
	 * the verdict needs it (the reports fetch it themselves) */
	if (c->require_one_click)
		msg_dkim(m);
	if (m->res == NULL && m->limit == NULL) {
		bw_stats_count("tempfail:internal");
		if (c->on_internal_error == BW_ON_ACCEPT)
			return v->action = BW_ACT_ACCEPT;
		verdict_set(v, BW_ACT_TEMPFAIL, "451", "4.3.0", "internal",
		    "bulkwarden: temporary failure, try again later");
		return BW_ACT_TEMPFAIL;
	}
	msg_decide(m, &ev);
	if (ev.action == BW_ACT_ACCEPT)
		msg_consent_eom(m, &ev);
	m->final = ev;
	if (ev.action == BW_ACT_REJECT || ev.action == BW_ACT_TEMPFAIL) {
		char stat[64];
		snprintf(stat, sizeof(stat), "%s:%s",
		    ev.action == BW_ACT_REJECT ? "refused" : "tempfail", ev.rule);
		if (c->mode == BW_MODE_MONITOR) {
			bw_stats_count("monitor:would-refuse");
			*v = ev;
			v->would = true;
			v->action = BW_ACT_ACCEPT;
		} else {
			bw_stats_count(stat);
			*v = ev;
		}
	} else {
		bw_stats_count("accepted");
		*v = ev;
		v->action = BW_ACT_ACCEPT;
	}
	if (v->action == BW_ACT_ACCEPT) {
		msg_collect_delrcpt(m);
		for (size_t i = 0; m->delrcpt && m->delrcpt[i]; i++)
			nremoved++;
		msg_count_delivered(m);
	}
	/* the verdict header on checked mail that goes on */
	if (v->action == BW_ACT_ACCEPT && c->verdict_header[0]) {
		if (v->would)
			snprintf(m->hdrval, sizeof(m->hdrval), "would-refuse rule=%s (%s)", ev.rule,
			    m->reason);
		else if (m->res)
			snprintf(m->hdrval, sizeof(m->hdrval), "pass unsub=%s list-unsubscribe=%s one-click=%s%s",
			    unsub_body_name(m->res->body), unsub_hdr_name(m->res->list_unsubscribe),
			    unsub_hdr_name(m->res->one_click), nremoved ? " consent=partial" : "");
		else
			snprintf(m->hdrval, sizeof(m->hdrval), "pass (%s)", m->reason);
		for (char *p = m->hdrval; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				*p = '?';
		m->add[nadd].name = c->verdict_header;
		m->add[nadd++].value = m->hdrval;
	}
	if (v->action == BW_ACT_ACCEPT && !v->would) {
		msg_add_list_unsubscribe(m, &nadd);
		msg_add_trace(m, &nadd);
		msg_add_feedback_id(m, &nadd);
	}
	snprintf(m->summary, sizeof(m->summary),
	    "%s: client=%s from=<%.100s> sender=%s rcpt=%u outbound=yes bulk=%s unsub=%s list-unsubscribe=%s "
	    "one-click=%s removed=%zu action=%s%s%s%s%s", qid, m->addr, m->from ? m->from : "",
	    m->sender[0] ? m->sender : "-", m->nrcpt,
	    m->bulk_why ? m->bulk_why : "yes",
	    m->res ? unsub_body_name(m->res->body) : "-",
	    m->res ? unsub_hdr_name(m->res->list_unsubscribe) : "-",
	    m->res ? unsub_hdr_name(m->res->one_click) : "-", nremoved,
	    v->would ? "would-" : "", bw_action_name(ev.action == BW_ACT_ACCEPT ? BW_ACT_ACCEPT : ev.action),
	    m->reason[0] ? " reason=\"" : "", m->reason, m->reason[0] ? "\"" : "");
	return v->action;
}

const char *const *
bw_msg_del_rcpts(bw_msg *m)
{
	return m->delrcpt;
}

const bw_addhdr *
bw_msg_add_headers(bw_msg *m)
{
	return m->add;
}

const char *
bw_msg_summary(bw_msg *m)
{
	return m->summary;
}

/* ---------------------------------------------------------------- files */

bw_action
bw_msg_feed_file(bw_msg *m, const char *data, size_t len, size_t chunk, bw_verdict *v)
{
	const char *p = data, *end = data + len;
	char *name = NULL, *val = NULL;
	size_t vlen = 0;
	bw_action a;

	if (chunk == 0)
		chunk = 65535;
	m->keep_links = true;   /* the scan's report lists them */
	if ((a = bw_msg_envfrom(m, "", NULL, v)) != BW_ACT_CONTINUE && !m->force_set)
		return a;
	/* headers: unfold continuation lines, stop at the first empty line */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t ll = (size_t)(le - p);

		if (ll && p[ll - 1] == '\r')
			ll--;
		if (ll == 0) {
			p = nl ? nl + 1 : end;
			break;
		}
		if ((*p == ' ' || *p == '\t') && name) {
			char *nv = realloc(val, vlen + ll + 2);
			if (nv) {
				val = nv;
				val[vlen++] = '\n';
				memcpy(val + vlen, p, ll);
				vlen += ll;
				val[vlen] = 0;
			}
		} else {
			const char *colon = memchr(p, ':', ll);
			if (name) {
				bw_msg_header(m, name, val ? val : "");
				free(name), free(val);
				name = val = NULL;
			}
			if (colon) {
				const char *vs = colon + 1;
				while (vs < p + ll && (*vs == ' ' || *vs == '\t'))
					vs++;
				name = strndup(p, (size_t)(colon - p));
				vlen = (size_t)(p + ll - vs);
				val = strndup(vs, vlen);
			} else if (p == data && ll > 5 && memcmp(p, "From ", 5) == 0) {
				/* mbox separator line: not a header */
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (name)
		bw_msg_header(m, name, val ? val : "");
	free(name);
	free(val);
	if ((a = bw_msg_eoh(m, v)) != BW_ACT_CONTINUE)
		goto eom;
	while (p < end) {
		size_t n = (size_t)(end - p) < chunk ? (size_t)(end - p) : chunk;
		if (bw_msg_body(m, p, n) != BW_ACT_CONTINUE)
			break;
		p += n;
	}
eom:
	return bw_msg_eom(m, v);
}

/* ---------------------------------------------------------------- reports */

/*
 * A JSON string of s (NULL: ""). The scanner reports UTF-8; should a byte
 * that is not slip through, it is written as U+FFFD rather than leaving a
 * string that no JSON encoder takes (the whole report would be lost).
 */
static json_t *
json_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), i = 0, o, k;
	json_t *j;
	char *d;

	while (i < n && (k = bw_utf8_seq(p + i, n - i)) > 0)
		i += k;
	if (i == n)
		return json_stringn_nocheck((const char *)p, n);
	if ((d = malloc(3 * n + 1)) == NULL)
		return json_string("");
	memcpy(d, p, i);   /* the valid start, as it is */
	for (o = i; i < n; i += k) {
		if ((k = bw_utf8_seq(p + i, n - i)) > 0) {
			memcpy(d + o, p + i, k);
			o += k;
		} else {
			memcpy(d + o, "\xef\xbf\xbd", 3);
			o += 3;
			k = 1;
		}
	}
	j = json_stringn_nocheck(d, o);
	free(d);
	return j;
}

/* json_text() of a formatted string */
static json_t *
json_textf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *
json_textf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	json_t *j;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return json_string("");
	j = json_text(s);
	free(s);
	return j;
}

static json_t *
msg_report_obj(bw_msg *m, const char *file)
{
	const unsub_result *r = m->res;
	json_t *o = json_object(), *links = json_array(), *reasons = json_array();
	bool refused = m->final.action == BW_ACT_REJECT || m->final.action == BW_ACT_TEMPFAIL;

	msg_dkim(m);
	json_object_set_new(o, "file", json_text(file ? file : "-"));
	json_object_set_new(o, "verdict", json_string(refused ? "refuse" : "accept"));
	json_object_set_new(o, "bulk", json_boolean(m->bulk));
	if (m->final.rule)
		json_object_set_new(o, "rule", json_string(m->final.rule));
	if (refused)
		json_object_set_new(o, "reply", json_textf("%s %s %s", m->final.rcode,
		    m->final.xcode, m->final.text));
	json_object_set_new(o, "body_link", json_string(r ? unsub_body_name(r->body) : "absent"));
	json_object_set_new(o, "list_unsubscribe",
	    json_string(r ? unsub_hdr_name(r->list_unsubscribe) : "absent"));
	json_object_set_new(o, "one_click", json_string(r ? unsub_hdr_name(r->one_click) : "absent"));
	if (m->dkim.nsigs > 0) {
		json_t *d = json_object();
		json_object_set_new(d, "domain", json_text(m->dkim.domain));
		json_object_set_new(d, "covers_list_unsubscribe", json_boolean(m->dkim.covers_lu));
		json_object_set_new(d, "covers_list_unsubscribe_post", json_boolean(m->dkim.covers_post));
		json_object_set_new(o, "dkim", d);
	}
	if (r) {
		for (size_t i = 0; i < r->nlinks; i++) {
			const unsub_link *l = &r->links[i];
			json_t *lo = json_object();
			json_object_set_new(lo, "part", json_string(l->part ? l->part : ""));
			json_object_set_new(lo, "href", json_text(l->href));
			json_object_set_new(lo, "text", json_text(l->text));
			json_object_set_new(lo, "unsubscribe", json_boolean(l->unsubscribe));
			json_object_set_new(lo, "visible", json_boolean(l->visible));
			if (l->why)
				json_object_set_new(lo, "why", json_string(l->why));
			json_array_append_new(links, lo);
		}
		for (size_t i = 0; i < r->nviews; i++)
			if (r->views[i].result != UNSUB_VISIBLE)
				json_array_append_new(reasons, json_textf("%s part: %s", r->views[i].part,
				    r->views[i].detail ? r->views[i].detail : unsub_body_name(r->views[i].result)));
		if (r->list_unsubscribe == UNSUB_HDR_MALFORMED && r->lu_detail)
			json_array_append_new(reasons, json_textf("List-Unsubscribe: %s", r->lu_detail));
		if (r->one_click == UNSUB_HDR_MALFORMED && r->oc_detail)
			json_array_append_new(reasons, json_textf("List-Unsubscribe-Post: %s", r->oc_detail));
	}
	if (m->limit || (r && r->limit))
		json_array_append_new(reasons, json_textf("limit:%s", m->limit ? m->limit : r->limit));
	json_object_set_new(o, "links", links);
	json_object_set_new(o, "reasons", reasons);
	return o;
}

const char *
bw_msg_report_json(bw_msg *m, const char *file)
{
	json_t *o = msg_report_obj(m, file);

	free(m->report);
	m->report = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	return m->report;
}

const char *
bw_msg_report_text(bw_msg *m, const char *file)
{
	const unsub_result *r = m->res;
	char *buf = NULL;
	size_t sz = 0;
	FILE *fp = open_memstream(&buf, &sz);
	bool refused = m->final.action == BW_ACT_REJECT || m->final.action == BW_ACT_TEMPFAIL;

	if (fp == NULL)
		return "";
	fprintf(fp, "%s: %s\n", file ? file : "-", refused ? "REFUSE" : "accept");
	if (refused)
		fprintf(fp, "  reply:            %s %s %s\n", m->final.rcode, m->final.xcode, m->final.text);
	fprintf(fp, "  bulk:             %s\n", m->bulk ? "yes" : "no");
	fprintf(fp, "  body link:        %s\n", r ? unsub_body_name(r->body) : "absent");
	fprintf(fp, "  List-Unsubscribe: %s%s%s\n", r ? unsub_hdr_name(r->list_unsubscribe) : "absent",
	    r && r->lu_detail ? " - " : "", r && r->lu_detail ? r->lu_detail : "");
	fprintf(fp, "  one-click:        %s%s%s\n", r ? unsub_hdr_name(r->one_click) : "absent",
	    r && r->oc_detail ? " - " : "", r && r->oc_detail ? r->oc_detail : "");
	for (size_t i = 0; r && i < r->nviews; i++)
		fprintf(fp, "  view %-13s %s%s%s\n", r->views[i].part, unsub_body_name(r->views[i].result),
		    r->views[i].detail ? " - " : "", r->views[i].detail ? r->views[i].detail : "");
	for (size_t i = 0; r && i < r->nlinks; i++)
		if (r->links[i].unsubscribe)
			fprintf(fp, "  unsubscribe link  [%s] %s %.200s%s%s\n", r->links[i].part,
			    r->links[i].visible ? "visible" : "hidden", r->links[i].href ? r->links[i].href : "",
			    r->links[i].why ? " - " : "", r->links[i].why ? r->links[i].why : "");
	fclose(fp);
	free(m->report);
	m->report = buf;
	return m->report;
}
