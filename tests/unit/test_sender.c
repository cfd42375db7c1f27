/*
 * test_sender.c - the sender record in a real LMDB store: JSON layout,
 * notes, compare-and-set changes that do not undo each other, held mail.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <pthread.h>

#include "sender.h"

static struct {
	char dir[256];
	bw_store *st;
} fx;

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void
fx_begin(void)
{
	const char *tmp = getenv("TMPDIR");
	char spec[300], err[512] = "";

	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "%s/bw-sender-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
	ck_assert_msg(mkdtemp(fx.dir) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(spec, sizeof(spec), "lmdb:%s/db", fx.dir);
	fx.st = bw_store_open(spec, NULL, err, sizeof(err));
	ck_assert_msg(fx.st != NULL, "open %s: %s", spec, err);
}

static void
fx_end(void)
{
	bw_store_close(fx.st);
	nftw(fx.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */

START_TEST(test_json_roundtrip)
{
	bw_sender_rec r, back;
	char err[200], *js;

	bw_sender_rec_init(&r, T0);
	ck_assert(bw_sender_suspend(&r.s, T0 + 1000));
	r.rate_reset_at = T0 + 500;
	bw_sender_rec_note(&r, T0 + 1000, "suspend", "bounced batch\nof 4000");
	js = bw_sender_rec_to_json(&r);
	ck_assert_ptr_nonnull(js);
	ck_assert_msg(strstr(js, "\"state\":\"suspended\""), "%s", js);
	ck_assert_msg(strstr(js, "\"rate_reset_at\":\"2026-01-01T00:00:00.500Z\""), "%s", js);
	ck_assert_msg(strstr(js, "\"notes\":[{\"at\":\"2026-01-01T00:00:01.000Z\",\"action\":"
	    "\"suspend\",\"note\":\"bounced batch of 4000\"}]"), "%s", js);
	ck_assert_msg(bw_sender_rec_from_json(js, &back, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(back.s.state, BW_SS_SUSPENDED);
	ck_assert_int_eq(back.s.since, T0 + 1000);
	ck_assert_int_eq(back.rate_reset_at, T0 + 500);
	ck_assert_uint_eq(back.nnotes, 1);
	ck_assert_str_eq(back.notes[0].note, "bounced batch of 4000");
	free(js);
}
END_TEST

static const char *const bad_json[] = {
	"[]",
	"{\"state\":\"active\",\"since\":\"2026-01-01T00:00:00.000Z\",\"notes\":{}}",
	"{\"state\":\"active\",\"since\":\"2026-01-01T00:00:00.000Z\",\"notes\":[{\"action\":\"x\"}]}",
	"{\"state\":\"active\",\"since\":\"2026-01-01T00:00:00.000Z\",\"notes\":[{\"at\":\"x\",\"action\":\"x\"}]}",
	"{\"state\":\"active\",\"since\":\"2026-01-01T00:00:00.000Z\",\"notes\":[{\"at\":\"2026-01-01T00:00:00Z\",\"action\":\"x\",\"who\":\"y\"}]}",
	"{\"state\":\"active\",\"since\":\"2026-01-01T00:00:00.000Z\",\"rate_reset_at\":5}",
	"{\"state\":\"paused\",\"since\":\"2026-01-01T00:00:00.000Z\"}",
	"{\"state\":\"active\",\"since\":\"2026-01-01T00:00:00.000Z\",\"colour\":\"red\"}",
};

START_TEST(test_json_bad)
{
	bw_sender_rec r;
	char err[200] = "";

	ck_assert_msg(!bw_sender_rec_from_json(bad_json[_i], &r, err, sizeof(err)), "%s", bad_json[_i]);
	ck_assert_msg(err[0], "no reason for %s", bad_json[_i]);
	ck_assert_int_eq(r.nnotes, 0);
}
END_TEST

/* the same text decoded again (a sender's every message) gives the same
   record; a changed text, even of the same length, is decoded afresh, and
   a broken one is refused after a good one */
static void *
decode_in_thread(void *arg)
{
	static bw_sender_rec r;
	char err[200];

	return bw_sender_rec_from_json(arg, &r, err, sizeof(err)) ? &r : NULL;
}

START_TEST(test_json_memo)
{
	static const char a[] = "{\"state\":\"suspended\",\"since\":\"2026-01-01T00:00:01.000Z\","
	    "\"rate_reset_at\":\"2026-01-01T00:00:00.500Z\",\"notes\":[{\"at\":\"2026-01-01T00:00:01.000Z\","
	    "\"action\":\"suspend\",\"note\":\"first\"}]}";
	static const char b[] = "{\"state\":\"suspended\",\"since\":\"2026-01-01T00:00:02.000Z\","
	    "\"rate_reset_at\":\"2026-01-01T00:00:00.500Z\",\"notes\":[{\"at\":\"2026-01-01T00:00:01.000Z\","
	    "\"action\":\"suspend\",\"note\":\"other\"}]}";
	bw_sender_rec r, first;
	char err[200] = "";
	pthread_t th;
	void *res;

	ck_assert_uint_eq(strlen(a), strlen(b));
	ck_assert_msg(bw_sender_rec_from_json(a, &first, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(first.s.since, T0 + 1000);
	ck_assert_str_eq(first.notes[0].note, "first");
	memset(&r, 0x55, sizeof(r));
	ck_assert_msg(bw_sender_rec_from_json(a, &r, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(memcmp(&r, &first, sizeof(r)), 0);
	ck_assert_msg(bw_sender_rec_from_json(b, &r, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(r.s.since, T0 + 2000);
	ck_assert_str_eq(r.notes[0].note, "other");
	ck_assert_msg(bw_sender_rec_from_json(a, &r, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(r.s.since, T0 + 1000);
	ck_assert_str_eq(r.notes[0].note, "first");
	err[0] = 0;
	ck_assert(!bw_sender_rec_from_json(bad_json[1], &r, err, sizeof(err)));
	ck_assert_msg(err[0], "no reason");
	ck_assert_int_eq(r.nnotes, 0);
	/* another thread decodes for itself */
	ck_assert_int_eq(pthread_create(&th, NULL, decode_in_thread, (void *)b), 0);
	ck_assert_int_eq(pthread_join(th, &res), 0);
	ck_assert_ptr_nonnull(res);
	ck_assert_int_eq(((bw_sender_rec *)res)->s.since, T0 + 2000);
	ck_assert_msg(bw_sender_rec_from_json(a, &r, err, sizeof(err)), "%s", err);
	ck_assert_int_eq(memcmp(&r, &first, sizeof(r)), 0);
}
END_TEST

START_TEST(test_notes_keep_the_last)
{
	bw_sender_rec r;
	char text[300];

	bw_sender_rec_init(&r, T0);
	for (int i = 0; i < BW_SENDER_NOTES + 5; i++) {
		snprintf(text, sizeof(text), "note %d", i);
		bw_sender_rec_note(&r, T0 + i, "resume", text);
	}
	ck_assert_uint_eq(r.nnotes, BW_SENDER_NOTES);
	ck_assert_str_eq(r.notes[0].note, "note 5");
	ck_assert_str_eq(r.notes[BW_SENDER_NOTES - 1].note, "note 20");
	/* cut at a character boundary: 199 x + a two-byte letter does not fit */
	memset(text, 'x', 199);
	strcpy(text + 199, "\xc3\xa9tc");
	bw_sender_rec_note(&r, T0, "resume", text);
	ck_assert_uint_eq(strlen(r.notes[BW_SENDER_NOTES - 1].note), 199);
}
END_TEST

static bool
do_suspend(bw_sender_rec *r, void *ud)
{
	bw_time_ms now = *(bw_time_ms *)ud;

	if (!bw_sender_suspend(&r->s, now))
		return false;
	bw_sender_rec_note(r, now, "suspend", "test");
	return true;
}

static int racer_calls;

/* writes behind the caller's back the first time, as another process would */
static bool
do_resolve_raced(bw_sender_rec *r, void *ud)
{
	(void)ud;
	if (racer_calls++ == 0) {
		bw_sender_rec other;
		char err[200];
		bw_time_ms now = T0 + 5;
		ck_assert_int_eq(bw_sender_change(fx.st, "acme", T0 + 5, do_suspend, &now, &other,
		    err, sizeof(err)), BW_STORE_OK);
	}
	bw_sender_rec_note(r, T0 + 9, "ack-incident", "seen");
	return true;
}

START_TEST(test_change_cas)
{
	bw_sender_rec r;
	char err[200] = "";
	bw_time_ms now = T0 + 1;

	/* absent: active, not written by a load */
	ck_assert_int_eq(bw_sender_load(fx.st, "acme", T0, &r, err, sizeof(err)), BW_STORE_NOTFOUND);
	ck_assert_int_eq(r.s.state, BW_SS_ACTIVE);
	/* a change creates it */
	ck_assert_int_eq(bw_sender_change(fx.st, "acme", now, do_suspend, &now, &r, err, sizeof(err)),
	    BW_STORE_OK);
	ck_assert_int_eq(r.s.state, BW_SS_SUSPENDED);
	ck_assert_int_eq(bw_sender_load(fx.st, "acme", T0, &r, err, sizeof(err)), BW_STORE_OK);
	ck_assert_int_eq(r.s.state, BW_SS_SUSPENDED);
	ck_assert_uint_eq(r.nnotes, 1);
	/* declined: nothing written */
	ck_assert_int_eq(bw_sender_change(fx.st, "acme", now, do_suspend, &now, &r, err, sizeof(err)),
	    BW_STORE_OK);
	ck_assert_uint_eq(r.nnotes, 1);
	/* another writer between read and write: the change is made again on
	 * top of what it wrote, so both notes are kept */
	ck_assert(bw_store_del(fx.st, BW_TBL_SENDER, "acme") == BW_STORE_OK);
	racer_calls = 0;
	ck_assert_int_eq(bw_sender_change(fx.st, "acme", T0 + 9, do_resolve_raced, NULL, &r, err,
	    sizeof(err)), BW_STORE_OK);
	ck_assert_int_eq(racer_calls, 2);
	ck_assert_int_eq(bw_sender_load(fx.st, "acme", T0, &r, err, sizeof(err)), BW_STORE_OK);
	ck_assert_int_eq(r.s.state, BW_SS_SUSPENDED);
	ck_assert_uint_eq(r.nnotes, 2);
	ck_assert_str_eq(r.notes[0].action, "suspend");
	ck_assert_str_eq(r.notes[1].action, "ack-incident");
	/* a damaged record is an error that names it, never a silent "active" */
	ck_assert(bw_store_put(fx.st, BW_TBL_SENDER, "acme", "{\"state\":1}") == BW_STORE_OK);
	ck_assert_int_eq(bw_sender_load(fx.st, "acme", T0, &r, err, sizeof(err)), BW_STORE_CORRUPT);
	ck_assert_msg(strstr(err, "sender record \"acme\""), "%s", err);
	ck_assert_int_eq(bw_sender_change(fx.st, "acme", now, do_suspend, &now, &r, err, sizeof(err)),
	    BW_STORE_CORRUPT);
	/* bad ids */
	ck_assert_int_eq(bw_sender_load(fx.st, "a b", T0, &r, err, sizeof(err)), BW_STORE_INVALID);
}
END_TEST

static int
collect(void *ud, const char *qid, bw_time_ms at)
{
	char *out = ud;

	snprintf(out + strlen(out), 200 - strlen(out), "%s@%lld ", qid, (long long)(at - T0));
	return 0;
}

START_TEST(test_held)
{
	char got[200] = "", err[200];
	bw_sender_rec r;

	ck_assert_int_eq(bw_sender_held_add(fx.st, "acme", "4F3xyZ1", T0 + 7), BW_STORE_OK);
	ck_assert_int_eq(bw_sender_held_add(fx.st, "acme", "2AB", T0 + 8), BW_STORE_OK);
	ck_assert_int_eq(bw_sender_held_add(fx.st, "acme", "2AB", T0 + 9), BW_STORE_OK);
	ck_assert_int_eq(bw_sender_held_add(fx.st, "acmex", "99", T0), BW_STORE_OK);
	ck_assert_int_eq(bw_sender_held_add(fx.st, "acme", "bad id", T0), BW_STORE_INVALID);
	ck_assert_int_eq(bw_sender_held_add(fx.st, "acme", "", T0), BW_STORE_INVALID);
	ck_assert_int_eq(bw_sender_held_scan(fx.st, "acme", collect, got), BW_STORE_OK);
	ck_assert_str_eq(got, "2AB@9 4F3xyZ1@7 ");
	/* held entries are no sender record */
	ck_assert_int_eq(bw_sender_load(fx.st, "acme", T0, &r, err, sizeof(err)), BW_STORE_NOTFOUND);
	ck_assert_int_eq(bw_sender_held_del(fx.st, "acme", "2AB"), BW_STORE_OK);
	ck_assert_int_eq(bw_sender_held_del(fx.st, "acme", "2AB"), BW_STORE_NOTFOUND);
	got[0] = 0;
	ck_assert_int_eq(bw_sender_held_scan(fx.st, "acme", collect, got), BW_STORE_OK);
	ck_assert_str_eq(got, "4F3xyZ1@7 ");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sender");
	TCase *tc = tcase_create("record");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_json_roundtrip);
	tcase_add_loop_test(tc, test_json_bad, 0, (int)(sizeof(bad_json) / sizeof(bad_json[0])));
	tcase_add_test(tc, test_json_memo);
	tcase_add_test(tc, test_notes_keep_the_last);
	suite_add_tcase(s, tc);

	tc = tcase_create("store");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, fx_begin, fx_end);
	tcase_add_test(tc, test_change_cas);
	tcase_add_test(tc, test_held);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
