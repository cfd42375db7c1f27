/*
 * test_enforce.c - consent and unsubscribe through the engine, with a real
 * LMDB store: per-recipient refusals at RCPT, removal or refusal at end of
 * message, store failures, unsubscribe by mail, and the List-Unsubscribe
 * headers bulkwarden adds.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consent.h"
#include "engine.h"
#include "sender.h"
#include "store.h"

#define NOW 1790000000   /* 2026-09-21 */
#define DAY 86400

static char tmpdir[] = "/tmp/bw-enforce-XXXXXX";
static int seq;

static bw_store *
store_new(void)
{
	char spec[300], err[300];
	bw_store_opts o = { 0 };
	bw_store *st;

	/* each test runs in its own process (CK_FORK): the pid keeps stores apart */
	snprintf(spec, sizeof(spec), "lmdb:%s/store%d.%d", tmpdir, (int)getpid(), ++seq);
	st = bw_store_open(spec, &o, err, sizeof(err));
	ck_assert_msg(st != NULL, "%s", err);
	return st;
}

/* A policy: bulk-sender news@example.com, one key file, and extra lines. */
static bw_policy *
policy_full(const char *extra, const char *policy_lines, bw_errs *errs);

static bw_policy *
policy_with(const char *extra)
{
	bw_errs e = { 0 };
	bw_policy *p = policy_full(extra, "", &e);

	ck_assert_msg(p != NULL, "policy: %s", e.n ? e.msg[0] : "?");
	return p;
}

static bw_policy *
policy_full(const char *extra, const char *policy_lines, bw_errs *errs)
{
	char path[300], text[2000];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/policy", tmpdir);
	fp = fopen(path, "w");
	fputs("bulk-sender news@example.com\nexempt-recipient abuse@example.org\n", fp);
	fputs(policy_lines, fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/tokens.key", tmpdir);
	fp = fopen(path, "w");
	fputs("k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", fp);
	fclose(fp);
	chmod(path, 0600);
	snprintf(text, sizeof(text), "PhraseFile %s/unsubscribe-phrases\nPolicyFile %s/policy\n"
	    "InternalHosts 127.0.0.1, 10.0.0.0/8\nBulkRecipients 50\nTokenKeyFile %s\n"
	    "UnsubscribeAddress unsubscribe@lists.example.com\n%s", TEST_CONF, tmpdir, path, extra);
	snprintf(path, sizeof(path), "%s/bulkwarden.conf", tmpdir);
	fp = fopen(path, "w");
	fputs(text, fp);
	fclose(fp);
	return bw_policy_load(path, errs);
}

/* A configuration that must be refused, with want in its first error. */
static void
refused(const char *extra, const char *policy_lines, const char *want)
{
	bw_errs e = { 0 };

	ck_assert_ptr_null(policy_full(extra, policy_lines, &e));
	ck_assert_msg(e.n && strstr(e.msg[0], want), "%s: %s", want, e.n ? e.msg[0] : "(no error)");
	bw_errs_free(&e);
}

static void
consent_put(bw_store *st, const char *sender, const char *rcpt, bw_consent_method m, int64_t at)
{
	bw_consent c;
	char key[BW_STORE_KEY_MAX + 1], *json;

	memset(&c, 0, sizeof(c));
	snprintf(c.sender, sizeof(c.sender), "%s", sender);
	snprintf(c.rcpt, sizeof(c.rcpt), "%s", rcpt);
	c.method = m;
	c.granted_at = at;
	c.source = "https://example.com/signup";
	ck_assert(bw_consent_key(sender, rcpt, key, sizeof(key)));
	json = bw_consent_to_json(&c);
	ck_assert_ptr_nonnull(json);
	ck_assert_int_eq(bw_store_put(st, BW_TBL_CONSENT, key, json), BW_STORE_OK);
	free(json);
}

static void
suppress_put(bw_store *st, const char *sender, const char *rcpt, int64_t at)
{
	bw_suppression s;

	memset(&s, 0, sizeof(s));
	snprintf(s.sender, sizeof(s.sender), "%s", sender);
	snprintf(s.rcpt, sizeof(s.rcpt), "%s", rcpt);
	s.reason = BW_SR_UNSUBSCRIBE;
	s.at = at;
	s.source = "cli";
	ck_assert_int_eq(bw_suppress(st, &s), BW_STORE_OK);
}

static bool
suppressed(bw_store *st, const char *sender, const char *rcpt)
{
	char key[BW_STORE_KEY_MAX + 1], *v = NULL;
	bw_store_err e;

	ck_assert(bw_consent_key(sender, rcpt, key, sizeof(key)));
	e = bw_store_get(st, BW_TBL_SUPPRESS, key, &v);
	ck_assert(e == BW_STORE_OK || e == BW_STORE_NOTFOUND);
	free(v);
	return e == BW_STORE_OK;
}

#define BODY_OK \
	"News of the week.\r\n\r\nUnsubscribe: https://example.com/u/abc\r\n"

typedef struct result {
	bw_action from, rcpt[8], eoh, eom;
	bw_verdict rv[8], v;
	char del[8][80];
	int ndel;
	char hdr[4][2 * BW_TOKEN_MAX + 700];
} result;

/* One message: client addr, MAIL FROM, recipients (NULL-terminated),
 * headers as "Name: value" strings (NULL-terminated), body. */
static bool lose_store;   /* send(): the store goes down after MAIL FROM */

static void
send(bw_policy *p, bw_store *st, const char *addr, const char *from, const char *const *rcpts,
    const char *const *hdrs, const char *body, result *r)
{
	bw_msg *m = bw_msg_new(p, st, NOW);
	bw_verdict v;
	int i;

	memset(r, 0, sizeof(*r));
	bw_msg_connect(m, addr, "client.example");
	bw_msg_queueid(m, "4XyQ7" "0000");
	r->from = bw_msg_envfrom(m, from, NULL, &v);
	r->v = v;
	if (r->from != BW_ACT_CONTINUE)
		goto out;
	if (lose_store)
		bw_msg_set_store(m, NULL);
	for (i = 0; rcpts[i]; i++)
		r->rcpt[i] = bw_msg_rcpt(m, rcpts[i], &r->rv[i]);
	for (i = 0; hdrs && hdrs[i]; i++) {
		char name[64];
		const char *colon = strchr(hdrs[i], ':');
		snprintf(name, sizeof(name), "%.*s", (int)(colon - hdrs[i]), hdrs[i]);
		bw_msg_header(m, name, colon + 2);
	}
	r->eoh = bw_msg_eoh(m, &v);
	if (r->eoh == BW_ACT_REJECT || r->eoh == BW_ACT_TEMPFAIL) {
		r->v = v;   /* the MTA asks no more */
		goto out;
	}
	if (r->eoh == BW_ACT_CONTINUE && body)
		bw_msg_body(m, body, strlen(body));
	r->eom = bw_msg_eom(m, &r->v);
	for (const char *const *d = bw_msg_del_rcpts(m); d && *d; d++)
		snprintf(r->del[r->ndel++], sizeof(r->del[0]), "%s", *d);
	for (i = 0; i < 4 && bw_msg_add_headers(m)[i].name; i++)
		snprintf(r->hdr[i], sizeof(r->hdr[i]), "%s: %s", bw_msg_add_headers(m)[i].name,
		    bw_msg_add_headers(m)[i].value);
out:
	bw_msg_free(m);
}

static const char *const list_hdrs[] = { "List-Id: <news.example.net>", "Subject: news", NULL };

START_TEST(rcpt_time_refusal_per_recipient)
{
	bw_policy *p = policy_with("");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", "<bob@example.net>", "<cat@example.net>",
	    "<abuse@example.org>", NULL };
	result r;

	consent_put(st, "example.com", "ann@example.net", BW_CM_DOUBLE_OPT_IN, NOW - 10 * DAY);
	consent_put(st, "example.com", "cat@example.net", BW_CM_SINGLE_OPT_IN, NOW - 10 * DAY);
	suppress_put(st, "example.com", "cat@example.net", NOW - DAY);
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.rcpt[0], BW_ACT_CONTINUE);
	ck_assert_int_eq(r.rcpt[1], BW_ACT_REJECT);
	ck_assert_str_eq(r.rv[1].rcode, "550");
	ck_assert_str_eq(r.rv[1].xcode, "5.7.1");
	ck_assert_str_eq(r.rv[1].text,
	    "<bob@example.net>: no consent for bulk mail from example.com (no consent record)");
	ck_assert_int_eq(r.rcpt[2], BW_ACT_REJECT);
	ck_assert_msg(strstr(r.rv[2].text, "<cat@example.net>: no consent for bulk mail from example.com (unsubscribed")
	    != NULL, "%s", r.rv[2].text);
	ck_assert_int_eq(r.rcpt[3], BW_ACT_CONTINUE);   /* exempt */
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	ck_assert_int_eq(r.ndel, 0);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(sasl_login_is_the_sender_id)
{
	bw_policy *p = policy_with("");
	bw_store *st = store_new();
	bw_msg *m = bw_msg_new(p, st, NOW);
	bw_verdict v;

	consent_put(st, "acme", "ann@example.net", BW_CM_API, NOW - DAY);
	bw_msg_connect(m, "198.51.100.9", "client.example");
	ck_assert_int_eq(bw_msg_envfrom(m, "<news@example.com>", "acme", &v), BW_ACT_CONTINUE);
	ck_assert_int_eq(bw_msg_rcpt(m, "<ann@example.net>", &v), BW_ACT_CONTINUE);
	ck_assert_int_eq(bw_msg_rcpt(m, "<bob@example.net>", &v), BW_ACT_REJECT);
	ck_assert_msg(strstr(v.text, "from acme (") != NULL, "%s", v.text);
	bw_msg_free(m);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(store_down_tempfails_at_mail_from)
{
	bw_policy *p = policy_with("");
	const char *rc[] = { "<ann@example.net>", NULL };
	result r;

	/* the sender's state cannot be read: fail closed before anything */
	send(p, NULL, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_TEMPFAIL);
	ck_assert_str_eq(r.v.rcode, "451");
	ck_assert_str_eq(r.v.xcode, "4.3.0");
	ck_assert_str_eq(r.v.text, "the sender's state cannot be checked now, try again later");
	bw_policy_unref(p);
}
END_TEST

START_TEST(store_down_tempfails_recipient)
{
	bw_policy *p = policy_with("");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	result r;

	lose_store = true;
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.rcpt[0], BW_ACT_TEMPFAIL);
	ck_assert_str_eq(r.rv[0].rcode, "451");
	ck_assert_str_eq(r.rv[0].xcode, "4.3.0");
	bw_policy_unref(p);
	p = policy_with("OnStoreError accept\n");
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.rcpt[0], BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(late_bulk_removes_recipients_without_consent)
{
	bw_policy *p = policy_with("");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", "<Bob@Example.NET>", "<cat@example.net>", NULL };
	result r;

	consent_put(st, "example.org", "ann@example.net", BW_CM_DOUBLE_OPT_IN, NOW - DAY);
	send(p, st, "127.0.0.1", "<letters@example.org>", rc, list_hdrs, BODY_OK, &r);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(r.rcpt[i], BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	ck_assert_int_eq(r.ndel, 2);
	ck_assert_str_eq(r.del[0], "<Bob@Example.NET>");
	ck_assert_str_eq(r.del[1], "<cat@example.net>");
	ck_assert_msg(strstr(r.hdr[0], "consent=partial") != NULL, "%s", r.hdr[0]);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(late_bulk_without_any_consent_refused)
{
	bw_policy *p = policy_with("");
	bw_store *st = store_new();
	const char *rc[] = { "<bob@example.net>", "<cat@example.net>", NULL };
	result r;

	send(p, st, "127.0.0.1", "<letters@example.org>", rc, list_hdrs, BODY_OK, &r);
	ck_assert_int_eq(r.eom, BW_ACT_REJECT);
	ck_assert_str_eq(r.v.rcode, "550");
	ck_assert_str_eq(r.v.text, "2 recipients lack consent for bulk mail from example.org, "
	    "first <bob@example.net> (no consent record)");
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(late_bulk_reject_policy)
{
	bw_policy *p = policy_with("ConsentAtEnd reject\n");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", "<bob@example.net>", NULL };
	result r;

	consent_put(st, "example.org", "ann@example.net", BW_CM_DOUBLE_OPT_IN, NOW - DAY);
	send(p, st, "127.0.0.1", "<letters@example.org>", rc, list_hdrs, BODY_OK, &r);
	ck_assert_int_eq(r.eom, BW_ACT_REJECT);
	ck_assert_str_eq(r.v.text, "<bob@example.net>: no consent for bulk mail from example.org "
	    "(no consent record)");
	ck_assert_int_eq(r.ndel, 0);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(late_bulk_store_down_tempfails_message)
{
	bw_policy *p = policy_with("");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	result r;

	lose_store = true;
	send(p, st, "127.0.0.1", "<letters@example.org>", rc, list_hdrs, BODY_OK, &r);
	ck_assert_int_eq(r.eom, BW_ACT_TEMPFAIL);
	ck_assert_str_eq(r.v.rcode, "451");
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(monitor_mode_removes_nobody)
{
	bw_policy *p = policy_with("Mode monitor\n");
	bw_store *st = store_new();
	const char *rc[] = { "<bob@example.net>", NULL };
	result r;

	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.rcpt[0], BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	ck_assert_int_eq(r.ndel, 0);
	ck_assert_msg(strstr(r.hdr[0], "would-refuse rule=consent (<bob@example.net>: no consent record)")
	    != NULL, "%s", r.hdr[0]);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(consent_off_checks_nothing)
{
	bw_policy *p = policy_with("RequireConsent no\n");
	bw_store *st = store_new();
	const char *rc[] = { "<bob@example.net>", NULL };
	result r;

	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.rcpt[0], BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

/* ---- sender states and rates ---- */

#define NOW_MS ((bw_time_ms)NOW * 1000)

/* the sender record of example.com (news@example.com from an internal host) */
static void
sender_put_as(bw_store *st, const char *id, const char *state, bw_time_ms grace_until)
{
	bw_sender_rec r;
	char *js;

	bw_sender_rec_init(&r, NOW_MS - 3600000);
	if (strcmp(state, "suspended") == 0)
		ck_assert(bw_sender_suspend(&r.s, NOW_MS - 3600000));
	else if (strcmp(state, "grace") == 0) {
		bw_sender_policy pol;
		bw_sender_policy_default(&pol);
		pol.grace_period = grace_until - (NOW_MS - 3600000);
		ck_assert(bw_sender_flag_grace(&r.s, NOW_MS - 3600000));
		ck_assert(bw_sender_step(&pol, &r.s, NULL, 0, NOW_MS - 3600000));
		ck_assert_int_eq(r.s.state, BW_SS_GRACE);
	} else if (strcmp(state, "throttled") == 0) {
		r.s.state = BW_SS_THROTTLED;
		snprintf(r.s.reason, sizeof(r.s.reason), "test");
	}
	js = bw_sender_rec_to_json(&r);
	ck_assert_ptr_nonnull(js);
	ck_assert_int_eq(bw_store_put(st, BW_TBL_SENDER, id, js), BW_STORE_OK);
	free(js);
}

static void
sender_put(bw_store *st, const char *state, bw_time_ms grace_until)
{
	sender_put_as(st, "example.com", state, grace_until);
}

static int
held_count(void *ud, const char *qid, bw_time_ms at)
{
	ck_assert_str_eq(qid, "4XyQ70000");
	ck_assert_int_eq(at, NOW_MS);
	(*(int *)ud)++;
	return 0;
}

START_TEST(suspended_sender_is_held)
{
	bw_policy *p = policy_with("RequireConsent no\n");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	result r;
	int n = 0;

	sender_put(st, "suspended", 0);
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.rcpt[0], BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_HOLD);
	ck_assert_str_eq(r.v.text, "bulkwarden: sender example.com suspended");
	ck_assert_int_eq(bw_sender_held_scan(st, "example.com", held_count, &n), BW_STORE_OK);
	ck_assert_int_eq(n, 1);
	/* another sender goes on */
	send(p, st, "127.0.0.1", "<news@example.org>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(suspended_transactional_mail_is_held_too)
{
	bw_errs e = { 0 };
	bw_policy *p = policy_full("RequireConsent no\n", "transactional-sender receipts@example.com\n", &e);
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	result r;

	ck_assert_ptr_nonnull(p);
	sender_put(st, "suspended", 0);
	send(p, st, "127.0.0.1", "<receipts@example.com>", rc, NULL, "Your receipt.\r\n", &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_HOLD);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(on_suspended_reject_and_tempfail)
{
	bw_policy *p = policy_with("RequireConsent no\nOnSuspended reject\n");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	result r;

	sender_put(st, "suspended", 0);
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_REJECT);
	ck_assert_str_eq(r.v.rcode, "550");
	ck_assert_str_eq(r.v.xcode, "5.7.1");
	ck_assert_str_eq(r.v.text, "sender example.com is suspended (suspended by an admin)");
	bw_policy_unref(p);
	p = policy_with("RequireConsent no\nOnSuspended tempfail\n");
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_TEMPFAIL);
	ck_assert_str_eq(r.v.rcode, "451");
	ck_assert_str_eq(r.v.xcode, "4.7.1");
	ck_assert_str_eq(r.v.text, "sender example.com is suspended (suspended by an admin), try again later");
	bw_policy_unref(p);
	/* monitor: nothing held or refused */
	p = policy_with("RequireConsent no\nMode monitor\n");
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(grace_runs_out_into_suspension)
{
	bw_policy *p = policy_with("RequireConsent no\n");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	bw_sender_rec rec;
	char err[200];
	result r;

	/* still in grace: goes on (throttled) */
	sender_put(st, "grace", NOW_MS + 1);
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	/* ran out a millisecond ago: suspended, recorded, held */
	sender_put(st, "grace", NOW_MS);
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.eom, BW_ACT_HOLD);
	ck_assert_int_eq(bw_sender_load(st, "example.com", NOW_MS, &rec, err, sizeof(err)), BW_STORE_OK);
	ck_assert_int_eq(rec.s.state, BW_SS_SUSPENDED);
	ck_assert_uint_eq(rec.nnotes, 1);
	ck_assert_str_eq(rec.notes[0].action, "state");
	ck_assert_msg(strstr(rec.notes[0].note, "grace"), "%s", rec.notes[0].note);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(damaged_sender_record_fails_closed)
{
	bw_policy *p = policy_with("RequireConsent no\n");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	result r;

	ck_assert_int_eq(bw_store_put(st, BW_TBL_SENDER, "example.com", "{\"state\":\"gone\"}"),
	    BW_STORE_OK);
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_TEMPFAIL);
	ck_assert_str_eq(r.v.rcode, "451");
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(message_rate)
{
	bw_policy *p = policy_with("RequireConsent no\nMessageRate 2/1h\n");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	result r;

	for (int i = 0; i < 2; i++) {
		send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
		ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
		ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	}
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_TEMPFAIL);
	ck_assert_str_eq(r.v.rcode, "451");
	ck_assert_str_eq(r.v.xcode, "4.7.1");
	ck_assert_str_eq(r.v.text,
	    "sender example.com is over its message rate 2/1h, try again in 1800 seconds");
	/* another sender has its own */
	send(p, st, "127.0.0.1", "<news@example.org>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	/* an admin's reset (rate_reset_at in the record) gives a full bucket again */
	{
		bw_sender_rec rec;
		char *js;
		bw_sender_rec_init(&rec, NOW_MS);
		rec.rate_reset_at = NOW_MS;
		js = bw_sender_rec_to_json(&rec);
		ck_assert_int_eq(bw_store_put(st, BW_TBL_SENDER, "example.com", js), BW_STORE_OK);
		free(js);
	}
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(recipient_rate_per_recipient)
{
	bw_policy *p = policy_with("RequireConsent no\nRecipientRate 3/1h\n");
	bw_store *st = store_new();
	const char *rc[] = { "<a@example.net>", "<b@example.net>", "<c@example.net>",
	    "<d@example.net>", "<e@example.net>", NULL };
	result r;

	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(r.rcpt[i], BW_ACT_CONTINUE);
	for (int i = 3; i < 5; i++) {
		ck_assert_int_eq(r.rcpt[i], BW_ACT_TEMPFAIL);
		ck_assert_str_eq(r.rv[i].rcode, "451");
		ck_assert_str_eq(r.rv[i].xcode, "4.7.1");
		ck_assert_msg(strstr(r.rv[i].text, "over its recipient rate 3/1h, try again in 1200 seconds"),
		    "%s", r.rv[i].text);
	}
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(throttled_sender_waits_longer)
{
	bw_policy *p = policy_with("RequireConsent no\nMessageRate 2/1h:1\nThrottleFactor 0.25\n");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	result r;

	sender_put(st, "throttled", 0);
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_TEMPFAIL);
	/* 1800 s between messages when active; four times that when throttled */
	ck_assert_str_eq(r.v.text,
	    "sender example.com is over its message rate 2/4h (throttled), try again in 7200 seconds");
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(sender_class_rates)
{
	bw_errs e = { 0 };
	bw_policy *p = policy_full("RequireConsent no\nMessageRate 1/1h\n",
	    "sender-class big message-rate=100/1m\nsender @example.com class=big\n", &e);
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	result r;

	ck_assert_msg(p != NULL, "%s", e.n ? e.msg[0] : "");
	for (int i = 0; i < 5; i++) {
		send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
		ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	}
	send(p, st, "127.0.0.1", "<news@example.org>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	send(p, st, "127.0.0.1", "<news@example.org>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_TEMPFAIL);
	bw_store_close(st);
	bw_policy_unref(p);
	/* a bad rate in the policy file is an error naming the line */
	bw_errs_free(&e);
	refused("", "sender-class big message-rate=lots\n", "message-rate");
}
END_TEST

START_TEST(rate_config_errors)
{
	refused("MessageRate 10\n", "", "MessageRate: \"10\" is not N/TIME");
	refused("RecipientRate 10/0s\n", "", "RecipientRate");
	refused("ThrottleFactor 1.5\n", "", "ThrottleFactor");
	refused("OnSuspended drop\n", "", "OnSuspended");
}
END_TEST

START_TEST(complaint_report_intake)
{
	bw_policy *p = policy_with("RequireConsent no\nComplaintAddress complaints@example.com\n"
	    "TrustedReporters fbl.example.net\n");
	bw_store *st = store_new();
	const char *rc[] = { "<complaints@example.com>", NULL };
	static const char *const hdrs[] = { "From: fbl@fbl.example.net",
	    "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"", NULL };
	static const char body[] = "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
	    "Feedback-Type: abuse\r\nOriginal-Mail-From: <news@example.com>\r\n"
	    "Original-Rcpt-To: <ann@example.net>\r\n\r\n--b--\r\n";
	result r;
	int64_t n = 0;

	/* unsigned: delivered, marked, counted as unauthenticated only */
	send(p, st, "198.51.100.7", "<fbl@fbl.example.net>", rc, hdrs, body, &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	ck_assert_str_eq(r.hdr[0], "X-Bulkwarden: complaint=unauthenticated");
	ck_assert_int_eq(bw_store_counter_get(st, "complaints:unauthenticated", &n), BW_STORE_OK);
	ck_assert_int_eq(n, 1);
	ck_assert(!suppressed(st, "example.com", "ann@example.net"));
	/* the store lost: deferred, so that the reporter sends it again */
	lose_store = true;
	send(p, st, "198.51.100.7", "<fbl@fbl.example.net>", rc, hdrs, body, &r);
	ck_assert_int_eq(r.eom, BW_ACT_TEMPFAIL);
	ck_assert_str_eq(r.v.rcode, "451");
	ck_assert_str_eq(r.v.text, "the complaint cannot be recorded now, try again later");
	bw_store_close(st);
	bw_policy_unref(p);
	/* ComplaintAddress without TrustedReporters: a configuration error */
	refused("ComplaintAddress complaints@example.com\n", "", "ComplaintAddress needs TrustedReporters");
}
END_TEST

START_TEST(spf_of_the_envelope_domain)
{
	char zone[300], extra[600];
	FILE *fp;
	bw_policy *p;
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	result r;

	snprintf(zone, sizeof(zone), "%s/spf.zone", tmpdir);
	fp = fopen(zone, "w");
	fputs("example.com v=spf1 ip4:10.1.2.3 -all\n", fp);
	fclose(fp);
	consent_put(st, "example.com", "ann@example.net", BW_CM_DOUBLE_OPT_IN, NOW - DAY);
	snprintf(extra, sizeof(extra), "SpfCheck yes\nSpfZoneFile %s\n", zone);
	p = policy_with(extra);
	/* an internal host the domain does not name: refused at MAIL FROM */
	send(p, st, "10.0.0.5", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_REJECT);
	ck_assert_str_eq(r.v.rcode, "550");
	ck_assert_str_eq(r.v.xcode, "5.7.23");
	ck_assert_str_eq(r.v.text, "SPF check of example.com failed for 10.0.0.5");
	/* the host it names: goes on, as example.com */
	send(p, st, "10.1.2.3", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.rcpt[0], BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	bw_policy_unref(p);
	/* SpfOnFail unknown: no sender id, so no consent can be found */
	snprintf(extra, sizeof(extra), "SpfCheck yes\nSpfZoneFile %s\nSpfOnFail unknown\n", zone);
	p = policy_with(extra);
	send(p, st, "10.0.0.5", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.rcpt[0], BW_ACT_REJECT);
	ck_assert_msg(strstr(r.rv[0].text, "no sender identity"), "%s", r.rv[0].text);
	bw_policy_unref(p);
	/* monitor: nothing refused */
	snprintf(extra, sizeof(extra), "SpfCheck yes\nSpfZoneFile %s\nMode monitor\n", zone);
	p = policy_with(extra);
	send(p, st, "10.0.0.5", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

/* mail to unsubscribe+TOKEN@: the suppression is written at end of message,
 * the request is consumed, and the next campaign is refused at RCPT */
START_TEST(unsubscribe_by_mail_then_next_message_refused)
{
	bw_policy *p = policy_with("");
	bw_store *st = store_new();
	char tok[BW_TOKEN_MAX + 1], to[BW_TOKEN_MAX + 100];
	const char *urc[] = { to, NULL };
	const char *rc[] = { "<ann@example.net>", NULL };
	const char *hdrs[] = { "Subject: unsubscribe", NULL };
	result r;

	consent_put(st, "example.com", "ann@example.net", BW_CM_DOUBLE_OPT_IN, NOW - 10 * DAY);
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.rcpt[0], BW_ACT_CONTINUE);

	ck_assert(bw_token_make(p->token_keys, "example.com", "ann@example.net", NOW - DAY, tok, sizeof(tok)));
	snprintf(to, sizeof(to), "<unsubscribe+%s@lists.example.com>", tok);
	send(p, st, "203.0.113.5", "<ann@example.net>", urc, hdrs, "please\r\n", &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_DISCARD);
	ck_assert(suppressed(st, "example.com", "ann@example.net"));

	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.rcpt[0], BW_ACT_REJECT);
	ck_assert_msg(strstr(r.rv[0].text, "(unsubscribed ") != NULL, "%s", r.rv[0].text);

	/* the same request again: nothing changes, still consumed */
	send(p, st, "203.0.113.5", "<ann@example.net>", urc, hdrs, "please\r\n", &r);
	ck_assert_int_eq(r.eom, BW_ACT_DISCARD);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(unsubscribe_token_in_subject)
{
	bw_policy *p = policy_with("");
	bw_store *st = store_new();
	char tok[BW_TOKEN_MAX + 1], subj[BW_TOKEN_MAX + 40];
	const char *urc[] = { "<unsubscribe@lists.example.com>", "<other@example.net>", NULL };
	const char *hdrs[] = { subj, NULL };
	result r;

	ck_assert(bw_token_make(p->token_keys, "example.com", "bob@example.net", NOW, tok, sizeof(tok)));
	snprintf(subj, sizeof(subj), "Subject: unsubscribe %s", tok);
	send(p, st, "203.0.113.5", "<bob@example.net>", urc, hdrs, "x\r\n", &r);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);   /* the other recipient still gets it */
	ck_assert_int_eq(r.ndel, 1);
	ck_assert_str_eq(r.del[0], "<unsubscribe@lists.example.com>");
	ck_assert(suppressed(st, "example.com", "bob@example.net"));
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(unsubscribe_forged_token_changes_nothing)
{
	bw_policy *p = policy_with("");
	bw_store *st = store_new();
	char tok[BW_TOKEN_MAX + 1], to[BW_TOKEN_MAX + 100];
	const char *urc[] = { to, NULL };
	result r;

	ck_assert(bw_token_make(p->token_keys, "example.com", "bob@example.net", NOW, tok, sizeof(tok)));
	tok[strlen(tok) / 2] = tok[strlen(tok) / 2] == 'a' ? 'b' : 'a';
	snprintf(to, sizeof(to), "<unsubscribe+%s@lists.example.com>", tok);
	send(p, st, "203.0.113.5", "<bob@example.net>", urc, NULL, "x\r\n", &r);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);   /* delivered as is, for a person to read */
	ck_assert_int_eq(r.ndel, 0);
	ck_assert(!suppressed(st, "example.com", "bob@example.net"));
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(unsubscribe_store_down_tempfails)
{
	bw_policy *p = policy_with("");
	char tok[BW_TOKEN_MAX + 1], to[BW_TOKEN_MAX + 100];
	const char *urc[] = { to, NULL };
	result r;

	ck_assert(bw_token_make(p->token_keys, "example.com", "bob@example.net", NOW, tok, sizeof(tok)));
	snprintf(to, sizeof(to), "<unsubscribe+%s@lists.example.com>", tok);
	send(p, NULL, "203.0.113.5", "<bob@example.net>", urc, NULL, "x\r\n", &r);
	ck_assert_int_eq(r.eom, BW_ACT_TEMPFAIL);
	ck_assert_str_eq(r.v.rcode, "451");
	bw_policy_unref(p);
}
END_TEST

/* a token issued before a newer consent cannot undo it */
START_TEST(stale_token_does_not_undo_newer_consent)
{
	bw_policy *p = policy_with("");
	bw_store *st = store_new();
	char tok[BW_TOKEN_MAX + 1], to[BW_TOKEN_MAX + 100];
	const char *urc[] = { to, NULL };
	result r;

	ck_assert(bw_token_make(p->token_keys, "example.com", "ann@example.net", NOW - 30 * DAY, tok,
	    sizeof(tok)));
	consent_put(st, "example.com", "ann@example.net", BW_CM_DOUBLE_OPT_IN, NOW - DAY);
	snprintf(to, sizeof(to), "<unsubscribe+%s@lists.example.com>", tok);
	send(p, st, "203.0.113.5", "<ann@example.net>", urc, NULL, "x\r\n", &r);
	ck_assert_int_eq(r.eom, BW_ACT_DISCARD);
	ck_assert(!suppressed(st, "example.com", "ann@example.net"));
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(list_unsubscribe_added_with_a_working_token)
{
	bw_policy *p = policy_with("AddListUnsubscribe yes\nRequireListUnsubscribe yes\n"
	    "RequireOneClick yes\nOneClickURL https://unsub.example.com/u/\n");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	const char *rc2[] = { "<ann@example.net>", "<bob@example.net>", NULL };
	char s[BW_SENDER_MAX + 1], rcpt[BW_ADDR_MAX + 1], tok[BW_TOKEN_MAX + 1];
	const char *lu, *q;
	int64_t issued;
	result r;

	consent_put(st, "example.com", "ann@example.net", BW_CM_DOUBLE_OPT_IN, NOW - DAY);
	consent_put(st, "example.com", "bob@example.net", BW_CM_DOUBLE_OPT_IN, NOW - DAY);
	send(p, st, "127.0.0.1", "<news@example.com>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	ck_assert_msg(strncmp(r.hdr[1], "List-Unsubscribe: <https://unsub.example.com/u/", 47) == 0,
	    "%s", r.hdr[1]);
	ck_assert_str_eq(r.hdr[2], "List-Unsubscribe-Post: List-Unsubscribe=One-Click");
	lu = r.hdr[1] + 47;
	q = strchr(lu, '>');
	ck_assert_ptr_nonnull(q);
	snprintf(tok, sizeof(tok), "%.*s", (int)(q - lu), lu);
	ck_assert_int_eq(bw_token_verify(p->token_keys, tok, NOW, 400 * DAY, s, sizeof(s), rcpt,
	    sizeof(rcpt), &issued), BW_TOKEN_OK);
	ck_assert_str_eq(s, "example.com");
	ck_assert_str_eq(rcpt, "ann@example.net");
	ck_assert_msg(strstr(r.hdr[1], "<mailto:unsubscribe+") != NULL, "%s", r.hdr[1]);

	/* two recipients: a token names one, so nothing is added and the rule holds */
	send(p, st, "127.0.0.1", "<news@example.com>", rc2, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.eom, BW_ACT_REJECT);
	ck_assert_msg(strstr(r.v.text, "List-Unsubscribe") != NULL, "%s", r.v.text);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(config_needs_token_key)
{
	char path[300];
	bw_errs e = { 0 };
	FILE *fp;

	snprintf(path, sizeof(path), "%s/nokey.conf", tmpdir);
	fp = fopen(path, "w");
	fprintf(fp, "PhraseFile %s/unsubscribe-phrases\nUnsubscribeAddress u@example.com\n"
	    "OneClickURL http://insecure.example/u/\nConsentMethods double-opt-in, telepathy\n", TEST_CONF);
	fclose(fp);
	ck_assert_ptr_null(bw_policy_load(path, &e));
	ck_assert_int_ge(e.n, 3);
	{
		bool key = false, url = false, meth = false;
		for (size_t i = 0; i < e.n; i++) {
			key |= strstr(e.msg[i], "TokenKeyFile") != NULL;
			url |= strstr(e.msg[i], "OneClickURL") != NULL;
			meth |= strstr(e.msg[i], "telepathy") != NULL;
		}
		ck_assert(key && url && meth);
	}
	bw_errs_free(&e);
}
END_TEST

/* sender classes of the policy file override the consent keys */
START_TEST(sender_class_policy)
{
	bw_errs e = { 0 };
	bw_policy *p = policy_full("", "sender-class strict consent-methods=double-opt-in consent-max-age=30d\n"
	    "sender-class open require-consent=no\n"
	    "bulk-sender @strict.example class=strict\n"
	    "sender auth:freeform class=open\n", &e);
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", "<bob@example.net>", "<cat@example.net>", NULL };
	result r;

	ck_assert_msg(p != NULL, "%s", e.n ? e.msg[0] : "?");
	consent_put(st, "strict.example", "ann@example.net", BW_CM_DOUBLE_OPT_IN, NOW - DAY);
	consent_put(st, "strict.example", "bob@example.net", BW_CM_IMPORT, NOW - DAY);
	consent_put(st, "strict.example", "cat@example.net", BW_CM_DOUBLE_OPT_IN, NOW - 60 * DAY);
	send(p, st, "127.0.0.1", "<news@strict.example>", rc, NULL, BODY_OK, &r);
	ck_assert_int_eq(r.rcpt[0], BW_ACT_CONTINUE);
	ck_assert_int_eq(r.rcpt[1], BW_ACT_REJECT);
	ck_assert_msg(strstr(r.rv[1].text, "import") != NULL, "%s", r.rv[1].text);
	ck_assert_int_eq(r.rcpt[2], BW_ACT_REJECT);
	ck_assert_msg(strstr(r.rv[2].text, "expired") != NULL, "%s", r.rv[2].text);
	{
		bw_msg *m = bw_msg_new(p, st, NOW);
		bw_verdict v;
		bw_msg_connect(m, "127.0.0.1", "client.example");
		ck_assert_int_eq(bw_msg_envfrom(m, "<x@freeform.example>", "freeform", &v), BW_ACT_CONTINUE);
		ck_assert_int_eq(bw_msg_rcpt(m, "<nobody@example.net>", &v), BW_ACT_CONTINUE);
		bw_msg_header(m, "List-Id", "<l.example>");
		ck_assert_int_eq(bw_msg_eoh(m, &v), BW_ACT_CONTINUE);
		bw_msg_body(m, BODY_OK, strlen(BODY_OK));
		ck_assert_int_eq(bw_msg_eom(m, &v), BW_ACT_ACCEPT);
		ck_assert_ptr_null(bw_msg_del_rcpts(m)[0]);
		bw_msg_free(m);
	}
	bw_store_close(st);
	bw_policy_unref(p);
	p = policy_full("", "bulk-sender @x.example class=nosuch\nsender-class bad consent-methods=carrier-pigeon\n", &e);
	ck_assert_ptr_null(p);
	{
		bool unknown = false, method = false;
		for (size_t i = 0; i < e.n; i++) {
			unknown |= strstr(e.msg[i], "policy:3: no sender-class named \"nosuch\"") != NULL;
			method |= strstr(e.msg[i], "policy:4: sender-class bad: consent-methods") != NULL;
		}
		ck_assert_msg(unknown && method, "%s / %s", e.n ? e.msg[0] : "", e.n > 1 ? e.msg[1] : "");
	}
	bw_errs_free(&e);
}
END_TEST

/* ---- SenderIdentity: a header of a trusted upstream ---- */

#define HDR_ID "SenderIdentity header domain\nSenderIdHeader X-Customer\nTrustedUpstreamHosts 10.9.0.0/16\n"

START_TEST(identity_from_trusted_header)
{
	bw_policy *p = policy_with(HDR_ID);
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", "<bob@example.net>", NULL };
	const char *hdrs[] = { "X-Customer:  cust-42 ", "X-Customer: cust-7", "List-Id: <l.example>", NULL };
	result r;

	consent_put(st, "cust-42", "ann@example.net", BW_CM_DOUBLE_OPT_IN, NOW - 86400);
	consent_put(st, "example.com", "bob@example.net", BW_CM_DOUBLE_OPT_IN, NOW - 86400);
	/* from the upstream: the first header names the sender; consent waits
	   for it, so every RCPT goes on and bob (no consent for cust-42) is
	   removed at the end */
	send(p, st, "10.9.1.2", "<news@example.com>", rc, hdrs, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.rcpt[0], BW_ACT_CONTINUE);
	ck_assert_int_eq(r.rcpt[1], BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	ck_assert_int_eq(r.ndel, 1);
	ck_assert_str_eq(r.del[0], "<bob@example.net>");
	/* the same header from a client that is internal but no upstream: not
	   believed, the envelope domain is the sender (ann has no consent) */
	send(p, st, "10.1.2.3", "<news@example.com>", rc, hdrs, BODY_OK, &r);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	ck_assert_int_eq(r.ndel, 1);
	ck_assert_str_eq(r.del[0], "<ann@example.net>");
	/* from the upstream without the header: the next source, the domain */
	send(p, st, "10.9.1.2", "<news@example.com>", rc, list_hdrs, BODY_OK, &r);
	ck_assert_int_eq(r.ndel, 1);
	ck_assert_str_eq(r.del[0], "<ann@example.net>");
	/* a header that is no sender id (white space inside) gives none */
	{
		const char *bad[] = { "X-Customer: cust 42", "List-Id: <l.example>", NULL };
		bw_policy *p2 = policy_with("SenderIdentity header\nSenderIdHeader X-Customer\n"
		    "TrustedUpstreamHosts 10.9.0.0/16\nConsentAtEnd reject\n");
		send(p2, st, "10.9.1.2", "<news@example.com>", rc, bad, BODY_OK, &r);
		ck_assert_int_eq(r.eom, BW_ACT_REJECT);
		ck_assert_str_eq(r.v.text, "2 recipients lack consent for bulk mail from this sender, first "
		    "<ann@example.net> (no sender identity to look consent up for)");
		bw_policy_unref(p2);
	}
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(identity_header_state_and_rates)
{
	bw_policy *p = policy_with(HDR_ID "RequireConsent no\nMessageRate 1/1h\nRecipientRate 3/1h\n");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", "<bob@example.net>", NULL };
	const char *rc1[] = { "<cy@example.net>", NULL };
	const char *h42[] = { "X-Customer: cust-42", "List-Id: <l.example>", NULL };
	const char *h7[] = { "X-Customer: cust-7", "List-Id: <l.example>", NULL };
	const char *h9[] = { "X-Customer: cust-9", "Subject: hi", NULL };
	result r;
	int n = 0;

	/* the rates are the header's sender's, taken at end of headers */
	send(p, st, "10.9.1.2", "<news@example.com>", rc, h42, BODY_OK, &r);
	ck_assert_int_eq(r.eoh, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	send(p, st, "10.9.1.2", "<news@example.com>", rc1, h42, BODY_OK, &r);
	ck_assert_int_eq(r.from, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eoh, BW_ACT_TEMPFAIL);
	ck_assert_str_eq(r.v.rcode, "451");
	ck_assert_str_eq(r.v.xcode, "4.7.1");
	ck_assert_str_eq(r.v.text, "sender cust-42 is over its message rate 1/1h, try again in 3600 seconds");
	/* another customer behind the same envelope has its own; four
	   recipients at once never fit a burst of three */
	{
		const char *rc4[] = { "<a@example.net>", "<b@example.net>", "<c@example.net>", "<d@example.net>",
		    NULL };
		send(p, st, "10.9.1.2", "<news@example.com>", rc4, h7, BODY_OK, &r);
		ck_assert_int_eq(r.eoh, BW_ACT_REJECT);
		ck_assert_str_eq(r.v.rcode, "550");
		ck_assert_str_eq(r.v.text, "sender cust-7: more recipients at once than its recipient rate 3/1h "
		    "allows");
	}
	/* a suspended customer's mail is held, even when it is not bulk */
	sender_put_as(st, "cust-9", "suspended", 0);
	send(p, st, "10.9.1.2", "<news@example.com>", rc1, h9, "hello\r\n", &r);
	ck_assert_int_eq(r.eoh, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.eom, BW_ACT_HOLD);
	ck_assert_str_eq(r.v.text, "bulkwarden: sender cust-9 suspended");
	ck_assert_int_eq(bw_sender_held_scan(st, "cust-9", held_count, &n), BW_STORE_OK);
	ck_assert_int_eq(n, 1);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(identity_login_before_header)
{
	bw_policy *p = policy_with("SenderIdentity login header domain\nSenderIdHeader X-Customer\n"
	    "TrustedUpstreamHosts 10.9.0.0/16\nRequireConsent no\nMessageRate 1/1h\n");
	bw_store *st = store_new();
	bw_msg *m;
	bw_verdict v;

	/* a login settles it at MAIL FROM: the rate applies there */
	for (int i = 0; i < 2; i++) {
		m = bw_msg_new(p, st, NOW);
		bw_msg_connect(m, "10.9.1.2", "client.example");
		ck_assert_int_eq(bw_msg_envfrom(m, "<news@example.com>", "alice", &v),
		    i == 0 ? BW_ACT_CONTINUE : BW_ACT_TEMPFAIL);
		if (i == 1)
			ck_assert_str_eq(v.text, "sender alice is over its message rate 1/1h, try again in 3600 "
			    "seconds");
		bw_msg_free(m);
	}
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

START_TEST(identity_config_errors)
{
	static const struct { const char *conf, *err; } bad[] = {
		{ "SenderIdentity header\nTrustedUpstreamHosts 10.0.0.1\n",
		  "SenderIdentity header needs SenderIdHeader, a header name (\"\" is not one)" },
		{ "SenderIdentity header\nSenderIdHeader X-C\n",
		  "SenderIdentity header needs TrustedUpstreamHosts: no client would be believed" },
		{ "SenderIdentity header\nSenderIdHeader X:C\nTrustedUpstreamHosts 10.0.0.1\n",
		  "SenderIdHeader, a header name (\"X:C\" is not one)" },
		{ "SenderIdentity login sasl\n",
		  "SenderIdentity \"login sasl\": unknown source \"sasl\"" },
		{ "SenderIdentity domain, login-or-domain\n", "SenderIdentity \"domain, login-or-domain\": domain "
		  "named twice" },
		{ "SenderIdentity \"\"\n", "SenderIdentity \"\": no source named" },
		{ "SenderIdentity header\nSenderIdHeader X-C\nTrustedUpstreamHosts 10.0.0.300\n",
		  "TrustedUpstreamHosts" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(bad[i].conf, "", bad[i].err);
}
END_TEST

START_TEST(feedback_id_header)
{
	bw_policy *p = policy_with("RequireConsent no\nFeedbackID esp-1\n");
	bw_store *st = store_new();
	const char *rc[] = { "<ann@example.net>", NULL };
	const char *own[] = { "List-Id: <news.example.net>", "Feedback-ID: c1:x:y:z", NULL };
	const char *odd[] = { "List-Id: Odd <a:b c.example>", NULL };
	const char *none[] = { "Precedence: bulk", NULL };
	result r;

	send(p, st, "127.0.0.1", "<news@example.com>", rc, list_hdrs, BODY_OK, &r);
	ck_assert_int_eq(r.eom, BW_ACT_ACCEPT);
	ck_assert_str_eq(r.hdr[1], "Feedback-ID: news.example.net:example.com:bulk:esp-1");
	/* colons and blanks in a field would shift the fields: '_' */
	send(p, st, "127.0.0.1", "<news@example.com>", rc, odd, BODY_OK, &r);
	ck_assert_str_eq(r.hdr[1], "Feedback-ID: a_b_c.example:example.com:bulk:esp-1");
	send(p, st, "127.0.0.1", "<news@example.com>", rc, none, BODY_OK, &r);
	ck_assert_str_eq(r.hdr[1], "Feedback-ID: 0:example.com:bulk:esp-1");
	/* the sender's own stays alone */
	send(p, st, "127.0.0.1", "<news@example.com>", rc, own, BODY_OK, &r);
	ck_assert_str_eq(r.hdr[1], "");
	bw_store_close(st);
	bw_policy_unref(p);
	refused("FeedbackID a:b\n", "", "FeedbackID \"a:b\": want one word without colons");
}
END_TEST

static Suite *
enforce_suite(void)
{
	Suite *s = suite_create("enforce");
	TCase *t = tcase_create("consent");

	tcase_add_test(t, rcpt_time_refusal_per_recipient);
	tcase_add_test(t, sasl_login_is_the_sender_id);
	tcase_add_test(t, store_down_tempfails_recipient);
	tcase_add_test(t, late_bulk_removes_recipients_without_consent);
	tcase_add_test(t, late_bulk_without_any_consent_refused);
	tcase_add_test(t, late_bulk_reject_policy);
	tcase_add_test(t, late_bulk_store_down_tempfails_message);
	tcase_add_test(t, store_down_tempfails_at_mail_from);
	tcase_add_test(t, monitor_mode_removes_nobody);
	tcase_add_test(t, consent_off_checks_nothing);
	tcase_add_test(t, unsubscribe_by_mail_then_next_message_refused);
	tcase_add_test(t, unsubscribe_token_in_subject);
	tcase_add_test(t, unsubscribe_forged_token_changes_nothing);
	tcase_add_test(t, unsubscribe_store_down_tempfails);
	tcase_add_test(t, stale_token_does_not_undo_newer_consent);
	tcase_add_test(t, list_unsubscribe_added_with_a_working_token);
	tcase_add_test(t, config_needs_token_key);
	tcase_add_test(t, sender_class_policy);
	tcase_add_test(t, suspended_sender_is_held);
	tcase_add_test(t, identity_from_trusted_header);
	tcase_add_test(t, identity_header_state_and_rates);
	tcase_add_test(t, identity_login_before_header);
	tcase_add_test(t, identity_config_errors);
	tcase_add_test(t, feedback_id_header);
	tcase_add_test(t, suspended_transactional_mail_is_held_too);
	tcase_add_test(t, on_suspended_reject_and_tempfail);
	tcase_add_test(t, grace_runs_out_into_suspension);
	tcase_add_test(t, damaged_sender_record_fails_closed);
	tcase_add_test(t, message_rate);
	tcase_add_test(t, recipient_rate_per_recipient);
	tcase_add_test(t, throttled_sender_waits_longer);
	tcase_add_test(t, sender_class_rates);
	tcase_add_test(t, rate_config_errors);
	tcase_add_test(t, complaint_report_intake);
	tcase_add_test(t, spf_of_the_envelope_domain);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;
	char cmd[400];

	if (mkdtemp(tmpdir) == NULL)
		return 99;
	sr = srunner_create(enforce_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return failed ? 1 : 0;
}
