/*
 * test_feedback.c - complaints against a real LMDB store: delivered counts
 * flushed to the store, the window read back, a complaint counted once,
 * the suppression it writes, and the state changes at the policy's
 * thresholds only with enough volume and distinct complainers.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "consent.h"
#include "feedback.h"
#include "sender.h"

static struct {
	char dir[256];
	bw_store *st;
	bw_policy *p;
} fx;

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* ThrottleAt 10%, GraceAt 25%, 10 delivered and 2 complainers needed */
static void
fx_begin(void)
{
	const char *tmp = getenv("TMPDIR");
	char spec[300], err[512] = "", path[300];
	bw_errs e = { 0 };
	FILE *fp;

	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "%s/bw-feedback-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
	ck_assert_msg(mkdtemp(fx.dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(spec, sizeof(spec), "lmdb:%s/db", fx.dir);
	fx.st = bw_store_open(spec, NULL, err, sizeof(err));
	ck_assert_msg(fx.st != NULL, "open %s: %s", spec, err);
	snprintf(path, sizeof(path), "%s/bulkwarden.conf", fx.dir);
	fp = fopen(path, "w");
	fprintf(fp, "PhraseFile %s/unsubscribe-phrases\nThrottleAt 10%%\nGraceAt 25 %%\n"
	    "ComplaintMinVolume 10\nComplaintMinRecipients 2\nComplaintWindow 2d\nGracePeriod 1h\n",
	    TEST_CONF);
	fclose(fp);
	fx.p = bw_policy_load(path, &e);
	ck_assert_msg(fx.p != NULL, "%s", e.n ? e.msg[0] : "");
}

static void
fx_end(void)
{
	bw_policy_unref(fx.p);
	bw_store_close(fx.st);
	nftw(fx.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */
#define H  3600000LL

static void
complain(const char *rcpt, const char *key, bw_time_ms at, bw_fb_result *r)
{
	char err[300] = "";

	ck_assert_msg(bw_feedback_apply(fx.p, fx.st, "acme", rcpt, key, "fbl.example.net", "abuse", at,
	    r, err, sizeof(err)) == BW_STORE_OK, "%s", err);
}

START_TEST(test_policy_numbers)
{
	uint32_t ppm;

	ck_assert_uint_eq(fx.p->sender.throttle_ppm, 100000);
	ck_assert_uint_eq(fx.p->sender.grace_ppm, 250000);
	ck_assert_uint_eq(fx.p->sender.window_hours, 48);
	ck_assert(bw_parse_percent_ppm("0.1%", &ppm));
	ck_assert_uint_eq(ppm, 1000);
	ck_assert(bw_parse_percent_ppm("0.3", &ppm));
	ck_assert_uint_eq(ppm, 3000);
	ck_assert(!bw_parse_percent_ppm("0.1%%", &ppm));
	ck_assert(!bw_parse_percent_ppm("101%", &ppm));
	ck_assert(!bw_parse_percent_ppm("lots", &ppm));
}
END_TEST

START_TEST(test_delivered_and_window)
{
	bw_window_totals t;
	unsigned d;
	int64_t v = 0;

	bw_feedback_delivered("acme", T0 + 10, 7);
	bw_feedback_delivered("acme", T0 + 20, 3);
	bw_feedback_delivered("acme", T0 + H, 5);
	bw_feedback_delivered("other", T0, 100);
	ck_assert_int_eq(bw_feedback_flush(fx.st), BW_STORE_OK);
	ck_assert_int_eq(bw_store_counter_get(fx.st, "delivered:acme:490896", &v), BW_STORE_OK);
	ck_assert_int_eq(v, 10);
	/* a second flush with nothing new writes nothing */
	ck_assert_int_eq(bw_feedback_flush(fx.st), BW_STORE_OK);
	ck_assert_int_eq(bw_store_counter_get(fx.st, "delivered:acme:490896", &v), BW_STORE_OK);
	ck_assert_int_eq(v, 10);
	ck_assert_int_eq(bw_feedback_window(fx.st, "acme", T0 + H, 48, &t, &d), BW_STORE_OK);
	ck_assert_uint_eq(t.delivered, 15);
	ck_assert_uint_eq(t.complaints, 0);
	ck_assert_uint_eq(d, 0);
	/* 48 hours on, the first hour has left the window */
	ck_assert_int_eq(bw_feedback_window(fx.st, "acme", T0 + 48 * H, 48, &t, &d), BW_STORE_OK);
	ck_assert_uint_eq(t.delivered, 5);
}
END_TEST

/* counters do not pile up: the hour a flush writes takes the one
 * BW_FEEDBACK_KEEP_HOURS before it away, a window read every older one */
START_TEST(test_old_counters_removed)
{
	const bw_time_ms keep = BW_FEEDBACK_KEEP_HOURS * H;
	bw_window_totals t;
	unsigned d;
	int64_t v = 0;

	bw_feedback_delivered("acme", T0, 10);
	bw_feedback_delivered("acme", T0 + H, 20);
	bw_feedback_delivered("acme", T0 + 5 * H, 30);
	ck_assert_int_eq(bw_store_counter_add(fx.st, "complaints:acme:490896", 1, NULL), BW_STORE_OK);
	ck_assert_int_eq(bw_feedback_flush(fx.st), BW_STORE_OK);
	/* a sender that goes on sending: hour 0 goes as hour 0 + KEEP comes */
	bw_feedback_delivered("acme", T0 + keep, 1);
	ck_assert_int_eq(bw_feedback_flush(fx.st), BW_STORE_OK);
	ck_assert_int_eq(bw_store_counter_get(fx.st, "delivered:acme:490896", &v), BW_STORE_NOTFOUND);
	ck_assert_int_eq(bw_store_counter_get(fx.st, "complaints:acme:490896", &v), BW_STORE_NOTFOUND);
	ck_assert_int_eq(bw_store_counter_get(fx.st, "delivered:acme:490897", &v), BW_STORE_OK);
	ck_assert_int_eq(v, 20);
	/* a window read long after removes what it finds too old; the window
	   itself counts the same */
	ck_assert_int_eq(bw_feedback_window(fx.st, "acme", T0 + keep + 6 * H, 48, &t, &d), BW_STORE_OK);
	ck_assert_uint_eq(t.delivered, 1);
	ck_assert_int_eq(bw_store_counter_get(fx.st, "delivered:acme:490897", &v), BW_STORE_NOTFOUND);
	ck_assert_int_eq(bw_store_counter_get(fx.st, "delivered:acme:490901", &v), BW_STORE_NOTFOUND);
	ck_assert_int_eq(bw_feedback_window(fx.st, "acme", T0 + keep + 6 * H, 48, &t, &d), BW_STORE_OK);
	ck_assert_uint_eq(t.delivered, 1);
}
END_TEST

START_TEST(test_thresholds_and_duplicates)
{
	bw_fb_result r;
	bw_sender_rec rec;
	char err[200], key[BW_STORE_KEY_MAX + 1], *v = NULL;

	bw_feedback_delivered("acme", T0, 20);
	ck_assert_int_eq(bw_feedback_flush(fx.st), BW_STORE_OK);

	/* 1 of 20 = 5 %: counted, still active, an incident open */
	complain("r1@example.net", "arf1:aa", T0 + 1000, &r);
	ck_assert_int_eq(r.outcome, BW_FB_APPLIED);
	ck_assert_uint_eq(r.totals.complaints, 1);
	ck_assert_uint_eq(r.totals.delivered, 20);
	ck_assert_uint_eq(r.distinct, 1);
	ck_assert_int_eq(r.after, BW_SS_ACTIVE);
	ck_assert_int_eq(bw_sender_load(fx.st, "acme", T0, &rec, err, sizeof(err)), BW_STORE_OK);
	ck_assert(rec.s.incident_open);
	/* the recipient is suppressed for the sender, as a complaint */
	ck_assert(bw_consent_key("acme", "r1@example.net", key, sizeof(key)));
	ck_assert_int_eq(bw_store_get(fx.st, BW_TBL_SUPPRESS, key, &v), BW_STORE_OK);
	ck_assert_msg(strstr(v, "\"reason\":\"complaint\""), "%s", v);
	free(v);

	/* the same report again: counted once */
	complain("r1@example.net", "arf1:aa", T0 + 2000, &r);
	ck_assert_int_eq(r.outcome, BW_FB_DUPLICATE);
	/* one recipient complaining twice about two messages: 10 %, but only one
	 * distinct complainer: no state change */
	complain("r1@example.net", "arf1:bb", T0 + 3000, &r);
	ck_assert_int_eq(r.outcome, BW_FB_APPLIED);
	ck_assert_uint_eq(r.totals.complaints, 2);
	ck_assert_uint_eq(r.distinct, 1);
	ck_assert_int_eq(r.after, BW_SS_ACTIVE);
	/* a second recipient: 3 of 20 = 15 % from 2: throttled */
	complain("r2@example.net", "arf1:cc", T0 + 4000, &r);
	ck_assert_int_eq(r.before, BW_SS_ACTIVE);
	ck_assert_int_eq(r.after, BW_SS_THROTTLED);
	ck_assert_msg(strstr(r.reason, "complaint rate 15.00"), "%s", r.reason);
	/* 5 of 20 = 25 %: grace */
	complain("r3@example.net", "arf1:dd", T0 + 5000, &r);
	ck_assert_int_eq(r.after, BW_SS_THROTTLED);
	complain("r4@example.net", "arf1:ee", T0 + 6000, &r);
	ck_assert_int_eq(r.after, BW_SS_GRACE);
	ck_assert_int_eq(bw_sender_load(fx.st, "acme", T0, &rec, err, sizeof(err)), BW_STORE_OK);
	ck_assert_int_eq(rec.s.grace_until, T0 + 6000 + H);
	ck_assert_msg(rec.nnotes >= 5 && strstr(rec.notes[rec.nnotes - 1].note, "complaint about mail to "
	    "r4@example.net: complaint rate 25.00"), "%s", rec.notes[rec.nnotes - 1].note);
}
END_TEST

START_TEST(test_min_volume)
{
	bw_fb_result r;

	/* 9 delivered: below ComplaintMinVolume, no rate however many complain */
	bw_feedback_delivered("acme", T0, 9);
	ck_assert_int_eq(bw_feedback_flush(fx.st), BW_STORE_OK);
	complain("r1@example.net", "k1", T0 + 1, &r);
	complain("r2@example.net", "k2", T0 + 2, &r);
	complain("r3@example.net", "k3", T0 + 3, &r);
	ck_assert_int_eq(r.after, BW_SS_ACTIVE);
	ck_assert_uint_eq(r.distinct, 3);
}
END_TEST

START_TEST(test_bad_arguments)
{
	bw_fb_result r;
	char err[200] = "";

	ck_assert_int_eq(bw_feedback_apply(fx.p, fx.st, "a b", "r@example.net", "k", NULL, NULL, T0, &r,
	    err, sizeof(err)), BW_STORE_INVALID);
	ck_assert_int_eq(bw_feedback_apply(fx.p, fx.st, "acme", "r@example.net", "two words", NULL, NULL,
	    T0, &r, err, sizeof(err)), BW_STORE_INVALID);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("feedback");
	TCase *tc = tcase_create("store");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, fx_begin, fx_end);
	tcase_add_test(tc, test_policy_numbers);
	tcase_add_test(tc, test_delivered_and_window);
	tcase_add_test(tc, test_old_counters_removed);
	tcase_add_test(tc, test_thresholds_and_duplicates);
	tcase_add_test(tc, test_min_volume);
	tcase_add_test(tc, test_bad_arguments);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
