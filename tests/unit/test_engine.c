/*
 * test_engine.c - the engine end to end without an MTA: facts in SMTP
 * order, the verdict, the reply text, the added header, the counters.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dkimcov.h"
#include "engine.h"

static char tmpdir[] = "/tmp/bwtest-engine-XXXXXX";

static bw_policy *
policy_with(const char *extra)
{
	char path[600], text[2048];
	FILE *fp;
	bw_errs e = { 0 };
	bw_policy *p;

	snprintf(path, sizeof(path), "%s/policy", tmpdir);
	fp = fopen(path, "w");
	fputs("bulk-sender news@example.com\ntransactional-sender receipts@example.com\n"
	    "exempt-recipient abuse@example.org\n", fp);
	fclose(fp);
	snprintf(text, sizeof(text), "PhraseFile %s/unsubscribe-phrases\nPolicyFile %s\n"
	    "InternalHosts 127.0.0.1, 10.0.0.0/8\nBulkRecipients 3\n%s%s", TEST_CONF, path,
	    strstr(extra, "RequireConsent") ? "" : "RequireConsent no\n", extra);
	snprintf(path, sizeof(path), "%s/bulkwarden.conf", tmpdir);
	fp = fopen(path, "w");
	fputs(text, fp);
	fclose(fp);
	p = bw_policy_load(path, &e);
	ck_assert_msg(p != NULL, "policy: %s", e.n ? e.msg[0] : "?");
	return p;
}

#define HTML_OK \
	"<html><body><p>News of the week.</p>" \
	"<p style=\"font-size:12px;color:#666\">Don't want these? " \
	"<a href=\"https://example.com/u/abc\">Unsubscribe</a></p></body></html>"
#define TEXT_OK "News of the week.\n\nUnsubscribe: https://example.com/u/abc\n"
#define HTML_HIDDEN \
	"<html><body><p>News of the week.</p>" \
	"<div style=\"display:none\"><a href=\"https://example.com/u/abc\">Unsubscribe</a></div>" \
	"</body></html>"

typedef struct hdr { const char *name, *value; } hdr;

typedef struct run {
	const char *addr;
	const char *from;
	const char *auth;
	int nrcpt;
	const char *rcpt0;
	hdr hdrs[8];
	const char *body;
	/* results */
	bw_action at_from, at_eoh, at_eom;
	bw_verdict v;
	char header[600];
	char summary[1100];
} run;

/* A real store for drive(): the sender's state is read at MAIL FROM, and
 * no store is a store that is down. One per test process (CK_FORK). */
static bw_store *
drive_store(void)
{
	static bw_store *st;
	static pid_t owner;
	char spec[600], err[256];
	bw_store_opts so = { .map_size = 16 << 20, .max_readers = 32 };

	if (st != NULL && owner == getpid())
		return st;
	snprintf(spec, sizeof(spec), "lmdb:%s/drive.%d", tmpdir, (int)getpid());
	st = bw_store_open(spec, &so, err, sizeof(err));
	ck_assert_msg(st != NULL, "%s", err);
	owner = getpid();
	return st;
}

static void
drive(bw_policy *p, run *r)
{
	bw_msg *m = bw_msg_new(p, drive_store(), 1700000000);
	bw_verdict v;
	char rcpt[64];

	ck_assert_ptr_nonnull(m);
	bw_msg_connect(m, r->addr, "client.example");
	r->at_eoh = r->at_eom = BW_ACT_CONTINUE;
	r->at_from = bw_msg_envfrom(m, r->from, r->auth, &v);
	if (r->at_from != BW_ACT_CONTINUE)
		goto out;
	for (int i = 0; i < (r->nrcpt ? r->nrcpt : 1); i++) {
		snprintf(rcpt, sizeof(rcpt), "<r%d@example.net>", i);
		ck_assert_int_eq(bw_msg_rcpt(m, i == 0 && r->rcpt0 ? r->rcpt0 : rcpt, &v), BW_ACT_CONTINUE);
	}
	for (int i = 0; i < 8 && r->hdrs[i].name; i++)
		bw_msg_header(m, r->hdrs[i].name, r->hdrs[i].value);
	r->at_eoh = bw_msg_eoh(m, &v);
	if (r->at_eoh == BW_ACT_CONTINUE && r->body) {
		size_t len = strlen(r->body);
		/* the MTA's chunks: odd sizes, to cross every boundary */
		for (size_t off = 0; off < len; off += 7)
			if (bw_msg_body(m, r->body + off, len - off < 7 ? len - off : 7) != BW_ACT_CONTINUE)
				break;
	}
	r->at_eom = bw_msg_eom(m, &r->v);
	if (bw_msg_add_headers(m)[0].name)
		snprintf(r->header, sizeof(r->header), "%s: %s", bw_msg_add_headers(m)[0].name,
		    bw_msg_add_headers(m)[0].value);
	snprintf(r->summary, sizeof(r->summary), "%s", bw_msg_summary(m));
out:
	bw_msg_free(m);
}

#define MULTIPART(html, text) \
	"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" text "\r\n" \
	"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" html "\r\n--b1--\r\n"
#define H_MULTI { "Content-Type", "multipart/alternative; boundary=\"b1\"" }
#define H_MIME { "MIME-Version", "1.0" }

START_TEST(inbound_passes_at_mail_from)
{
	bw_policy *p = policy_with("");
	run r = { .addr = "198.51.100.7", .from = "<news@example.com>",
	    .hdrs = { { "Precedence", "bulk" } }, .body = "no link at all\r\n" };

	drive(p, &r);
	ck_assert_int_eq(r.at_from, BW_ACT_ACCEPT);
	bw_policy_unref(p);
}
END_TEST

START_TEST(authenticated_outside_client_is_outbound)
{
	bw_policy *p = policy_with("");
	run r = { .addr = "198.51.100.7", .from = "<x@example.net>", .auth = "alice",
	    .hdrs = { { "Precedence", "bulk" } }, .body = "no link at all\r\n" };

	drive(p, &r);
	ck_assert_int_eq(r.at_from, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.at_eom, BW_ACT_REJECT);
	bw_policy_unref(p);
}
END_TEST

START_TEST(non_bulk_outbound_passes_at_eoh)
{
	bw_policy *p = policy_with("");
	run r = { .addr = "10.1.2.3", .from = "<bob@example.net>", .nrcpt = 3,
	    .hdrs = { { "Subject", "lunch?" } }, .body = "no link at all\r\n" };

	drive(p, &r);
	ck_assert_int_eq(r.at_from, BW_ACT_CONTINUE);
	ck_assert_int_eq(r.at_eoh, BW_ACT_ACCEPT);
	ck_assert_int_eq(r.at_eom, BW_ACT_ACCEPT);
	ck_assert_str_eq(r.header, "");
	bw_policy_unref(p);
}
END_TEST

/* each way of being bulk, with no unsubscribe evidence: 550 5.7.1 */
static const struct {
	const char *what;
	const char *from;
	int nrcpt;
	hdr h;
	const char *bulk_why;
} bulk_rows[] = {
	{ "declared bulk sender", "<news@example.com>", 1, { "Subject", "hi" }, "bulk-sender" },
	{ "List-Id header", "<a@example.net>", 1, { "List-Id", "<l.example.net>" }, "List-Id" },
	{ "Precedence: bulk", "<a@example.net>", 1, { "Precedence", " bulk" }, "Precedence" },
	{ "Precedence: list", "<a@example.net>", 1, { "precedence", "list" }, "Precedence" },
	{ "more recipients than BulkRecipients", "<a@example.net>", 4, { "Subject", "hi" }, "recipients" },
};

START_TEST(bulk_without_link_refused)
{
	bw_policy *p = policy_with("");
	run r = { .addr = "127.0.0.1", .from = bulk_rows[_i].from, .nrcpt = bulk_rows[_i].nrcpt,
	    .hdrs = { bulk_rows[_i].h }, .body = "Big sale this week.\r\n" };
	char want[128];

	drive(p, &r);
	ck_assert_msg(r.at_eom == BW_ACT_REJECT, "%s: %s", bulk_rows[_i].what, bw_action_name(r.at_eom));
	ck_assert_str_eq(r.v.rcode, "550");
	ck_assert_str_eq(r.v.xcode, "5.7.1");
	ck_assert_str_eq(r.v.text, "bulk mail must show a visible unsubscribe link "
	    "(text/plain part: no unsubscribe link)");
	ck_assert_str_eq(r.v.rule, "unsubscribe");
	snprintf(want, sizeof(want), "bulk=%s ", bulk_rows[_i].bulk_why);
	ck_assert_msg(strstr(r.summary, want) != NULL, "summary: %s", r.summary);
	bw_policy_unref(p);
}
END_TEST

START_TEST(visible_link_accepted_with_header)
{
	bw_policy *p = policy_with("");
	run r = { .addr = "127.0.0.1", .from = "<news@example.com>",
	    .hdrs = { H_MIME, H_MULTI, { "List-Unsubscribe", "<https://example.com/u/abc>" } },
	    .body = MULTIPART(HTML_OK, TEXT_OK) };

	drive(p, &r);
	ck_assert_int_eq(r.at_eom, BW_ACT_ACCEPT);
	ck_assert_str_eq(r.header, "X-Bulkwarden: pass unsub=visible list-unsubscribe=ok one-click=absent");
	bw_policy_unref(p);
}
END_TEST

/* a hidden HTML link beside a visible text one is refused, naming the
 * part and the trick */
static void
hidden_link_refused(const char *conf)
{
	bw_policy *p = policy_with(conf);
	run r = { .addr = "127.0.0.1", .from = "<news@example.com>",
	    .hdrs = { H_MIME, H_MULTI }, .body = MULTIPART(HTML_HIDDEN, TEXT_OK) };

	drive(p, &r);
	ck_assert_int_eq(r.at_eom, BW_ACT_REJECT);
	ck_assert_str_eq(r.v.text, "bulk mail must show a visible unsubscribe link "
	    "(text/html part: link hidden by display:none)");
	bw_policy_unref(p);
}

START_TEST(hidden_link_refused_naming_part_and_trick)
{
	hidden_link_refused("");
}
END_TEST

/* the smallest MaxHtmlDepth: the HTML view is still checked (the parser
 * once could not be made under 31, and the text view alone passed) */
START_TEST(small_html_depth_still_checks_html)
{
	hidden_link_refused("MaxHtmlDepth 8\n");
}
END_TEST

START_TEST(list_unsubscribe_alone_is_not_a_visible_link)
{
	bw_policy *p = policy_with("");
	run r = { .addr = "127.0.0.1", .from = "<a@example.net>",
	    .hdrs = { { "List-Unsubscribe", "<mailto:u@example.net>" } }, .body = "Sale!\r\n" };

	drive(p, &r);
	ck_assert_int_eq(r.at_eom, BW_ACT_REJECT);
	bw_policy_unref(p);
}
END_TEST

START_TEST(list_unsubscribe_alone_enough_when_body_link_not_required)
{
	bw_policy *p = policy_with("RequireBodyLink no\nRequireListUnsubscribe yes\n");
	run r = { .addr = "127.0.0.1", .from = "<a@example.net>",
	    .hdrs = { { "List-Unsubscribe", "<mailto:u@example.net>" } }, .body = "Sale!\r\n" };
	run bad = { .addr = "127.0.0.1", .from = "<a@example.net>",
	    .hdrs = { { "List-Unsubscribe", "mailto:u@example.net" } }, .body = "Sale!\r\n" };

	drive(p, &r);
	ck_assert_int_eq(r.at_eom, BW_ACT_ACCEPT);
	drive(p, &bad);
	ck_assert_int_eq(bad.at_eom, BW_ACT_REJECT);
	ck_assert_str_eq(bad.v.rule, "list-unsubscribe");
	ck_assert_msg(strncmp(bad.v.text, "bulk mail must carry a valid List-Unsubscribe header, "
	    "RFC 2369 (List-Unsubscribe malformed", 85) == 0, "%s", bad.v.text);
	bw_policy_unref(p);
}
END_TEST

START_TEST(one_click_required)
{
	bw_policy *p = policy_with("RequireOneClick yes\n");
	run r = { .addr = "127.0.0.1", .from = "<news@example.com>",
	    .hdrs = { H_MIME, H_MULTI, { "List-Unsubscribe", "<https://example.com/u/abc>" } },
	    .body = MULTIPART(HTML_OK, TEXT_OK) };
	run ok = { .addr = "127.0.0.1", .from = "<news@example.com>",
	    .hdrs = { H_MIME, H_MULTI, { "List-Unsubscribe", "<https://example.com/u/abc>" },
		{ "List-Unsubscribe-Post", "List-Unsubscribe=One-Click" } },
	    .body = MULTIPART(HTML_OK, TEXT_OK) };

	drive(p, &r);
	ck_assert_int_eq(r.at_eom, BW_ACT_REJECT);
	ck_assert_str_eq(r.v.rule, "one-click");
	drive(p, &ok);
	ck_assert_int_eq(ok.at_eom, BW_ACT_ACCEPT);
	bw_policy_unref(p);
}
END_TEST

#define SIG(h) "v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;\r\n\th=" h \
	"; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA=="

/* RFC 8058 section 4: a signature must cover both headers (read by libopendkim) */
START_TEST(one_click_needs_dkim_coverage)
{
	bw_policy *p = policy_with("RequireOneClick yes\n");
	run r = { .addr = "127.0.0.1", .from = "<news@example.com>",
	    .hdrs = { H_MIME, H_MULTI, { "From", "news@example.com" },
		{ "DKIM-Signature", SIG("from:to:subject:list-unsubscribe") },
		{ "List-Unsubscribe", "<https://example.com/u/abc>" },
		{ "List-Unsubscribe-Post", "List-Unsubscribe=One-Click" } },
	    .body = MULTIPART(HTML_OK, TEXT_OK) };
	run ok = r;

	drive(p, &r);
	ck_assert_int_eq(r.at_eom, BW_ACT_REJECT);
	ck_assert_str_eq(r.v.text, "bulk mail must offer one-click unsubscribe, RFC 8058 "
	    "(DKIM signature d=example.com does not cover List-Unsubscribe-Post)");
	ok.hdrs[3].value = SIG("from:to:subject:List-Unsubscribe : list-unsubscribe-post");
	drive(p, &ok);
	ck_assert_int_eq(ok.at_eom, BW_ACT_ACCEPT);
	bw_policy_unref(p);
}
END_TEST

static const struct {
	const char *name;
	const char *sig;
	unsigned nsigs;
	bool lu, post;
} dkim_rows[] = {
	{ "both covered", "v=1; a=rsa-sha256; d=example.com; s=s1; "
	  "h=From:To:Subject:List-Unsubscribe:List-Unsubscribe-Post; bh=abc=; b=def=", 1, true, true },
	{ "folded, lower case", "v=1; a=rsa-sha256; d=example.com; s=s1;\r\n\th=from : to :\r\n\t"
	  "list-unsubscribe : list-unsubscribe-post:date; bh=abc=; b=def=", 1, true, true },
	{ "only List-Unsubscribe", "v=1; a=rsa-sha256; d=example.com; s=s1; h=From:List-Unsubscribe; "
	  "bh=a=; b=b=", 1, true, false },
	{ "a prefix is not the name", "v=1; a=rsa-sha256; d=example.com; s=s1; "
	  "h=From:List-Unsubscribe-Posting; bh=a=; b=b=", 1, false, false },
	{ "no h= tag: not a signature", "v=1; a=rsa-sha256; d=example.com; s=s1; bh=a=; b=b=", 0, false, false },
	{ "garbage", "not a signature", 0, false, false },
};

START_TEST(dkim_coverage_rows)
{
	const char *names[] = { "From", "DKIM-Signature" };
	const char *values[] = { "news@example.com", dkim_rows[_i].sig };
	dkimcov_result r;

	dkimcov_check(names, values, 2, &r);
	ck_assert_msg(r.nsigs == dkim_rows[_i].nsigs, "%s: nsigs %u", dkim_rows[_i].name, r.nsigs);
	ck_assert_msg(r.covers_lu == dkim_rows[_i].lu, "%s: List-Unsubscribe", dkim_rows[_i].name);
	ck_assert_msg(r.covers_post == dkim_rows[_i].post, "%s: -Post", dkim_rows[_i].name);
}
END_TEST

START_TEST(transactional_sender_not_checked)
{
	bw_policy *p = policy_with("");
	run r = { .addr = "127.0.0.1", .from = "<receipts@example.com>",
	    .hdrs = { { "Precedence", "bulk" } }, .body = "no link\r\n" };

	drive(p, &r);
	ck_assert_int_eq(r.at_from, BW_ACT_ACCEPT);
	bw_policy_unref(p);
}
END_TEST

START_TEST(exempt_recipients_only_not_checked)
{
	bw_policy *p = policy_with("");
	run r = { .addr = "127.0.0.1", .from = "<news@example.com>", .nrcpt = 1,
	    .rcpt0 = "<Abuse@example.org>", .hdrs = { { "Subject", "x" } }, .body = "no link\r\n" };

	drive(p, &r);
	ck_assert_int_eq(r.at_eoh, BW_ACT_ACCEPT);
	bw_policy_unref(p);
}
END_TEST

START_TEST(monitor_mode_refuses_nothing)
{
	bw_policy *p = policy_with("Mode monitor\n");
	run r = { .addr = "127.0.0.1", .from = "<news@example.com>",
	    .hdrs = { H_MIME, H_MULTI }, .body = MULTIPART(HTML_HIDDEN, TEXT_OK) };

	drive(p, &r);
	ck_assert_int_eq(r.at_eom, BW_ACT_ACCEPT);
	ck_assert(r.v.would);
	ck_assert_str_eq(r.header, "X-Bulkwarden: would-refuse rule=unsubscribe "
	    "(text/html part: link hidden by display:none)");
	ck_assert_msg(strstr(r.summary, "action=would-reject") != NULL, "%s", r.summary);
	bw_policy_unref(p);
}
END_TEST

START_TEST(limit_gives_onlimit_action)
{
	bw_policy *p = policy_with("MaxHeaderBytes 1K\n");
	bw_policy *q = policy_with("MaxHeaderBytes 1K\nOnLimit reject\n");
	char big[900];
	run r = { .addr = "127.0.0.1", .from = "<news@example.com>", .body = "x\r\n" };
	run s;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	r.hdrs[0] = (hdr){ "X-One", big };
	r.hdrs[1] = (hdr){ "X-Two", big };
	s = r;
	drive(p, &r);
	ck_assert_int_eq(r.at_eom, BW_ACT_TEMPFAIL);
	ck_assert_str_eq(r.v.rcode, "451");
	ck_assert_str_eq(r.v.xcode, "4.7.1");
	ck_assert_str_eq(r.v.text, "message exceeds MaxHeaderBytes: bulkwarden cannot check it now");
	drive(q, &s);
	ck_assert_int_eq(s.at_eom, BW_ACT_REJECT);
	ck_assert_str_eq(s.v.rcode, "550");
	bw_policy_unref(p);
	bw_policy_unref(q);
}
END_TEST

/* the same file gives the same report for any chunk size */
START_TEST(feed_file_chunk_invariance)
{
	bw_policy *p = policy_with("");
	static const char msg[] =
	    "From: News <news@example.com>\nTo: r@example.net\nSubject: weekly\n"
	    "MIME-Version: 1.0\nContent-Type: multipart/alternative;\n boundary=\"b1\"\n"
	    "\n" MULTIPART(HTML_HIDDEN, TEXT_OK);
	char *first = NULL;
	static const size_t chunks[] = { 1, 2, 5, 64, 4096, 65535 };

	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		bw_msg *m = bw_msg_new(p, NULL, 0);
		bw_verdict v;

		bw_msg_connect(m, "", NULL);
		bw_msg_force_bulk(m, true);
		ck_assert_int_eq(bw_msg_feed_file(m, msg, sizeof(msg) - 1, chunks[i], &v), BW_ACT_REJECT);
		if (first == NULL)
			first = strdup(bw_msg_report_json(m, "f.eml"));
		else
			ck_assert_str_eq(bw_msg_report_json(m, "f.eml"), first);
		bw_msg_free(m);
	}
	ck_assert_msg(strstr(first, "\"verdict\":\"refuse\"") && strstr(first, "\"body_link\":\"hidden\""),
	    "%s", first);
	free(first);
	bw_policy_unref(p);
}
END_TEST

START_TEST(stats_reach_the_store)
{
	char spec[600], err[256];
	bw_store_opts so = { .map_size = 16 << 20, .max_readers = 32 };
	bw_store *st;
	int64_t before = 0, after = 0;
	bw_policy *p = policy_with("");
	run r = { .addr = "127.0.0.1", .from = "<news@example.com>", .body = "no link\r\n" };

	snprintf(spec, sizeof(spec), "lmdb:%s/store", tmpdir);
	st = bw_store_open(spec, &so, err, sizeof(err));
	ck_assert_msg(st != NULL, "%s", err);
	ck_assert_int_eq(bw_stats_flush(st), BW_STORE_OK);
	bw_store_counter_get(st, "refused:unsubscribe", &before);
	drive(p, &r);
	drive(p, &r);
	ck_assert_int_eq(bw_stats_flush(st), BW_STORE_OK);
	ck_assert_int_eq(bw_store_counter_get(st, "refused:unsubscribe", &after), BW_STORE_OK);
	ck_assert_int_eq(after - before, 2);
	bw_store_close(st);
	bw_policy_unref(p);
}
END_TEST

static Suite *
engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *t = tcase_create("engine");

	tcase_add_test(t, inbound_passes_at_mail_from);
	tcase_add_test(t, authenticated_outside_client_is_outbound);
	tcase_add_test(t, non_bulk_outbound_passes_at_eoh);
	tcase_add_test(t, small_html_depth_still_checks_html);
	tcase_add_loop_test(t, bulk_without_link_refused, 0, sizeof(bulk_rows) / sizeof(bulk_rows[0]));
	tcase_add_test(t, visible_link_accepted_with_header);
	tcase_add_test(t, hidden_link_refused_naming_part_and_trick);
	tcase_add_test(t, list_unsubscribe_alone_is_not_a_visible_link);
	tcase_add_test(t, list_unsubscribe_alone_enough_when_body_link_not_required);
	tcase_add_test(t, one_click_required);
	tcase_add_test(t, one_click_needs_dkim_coverage);
	tcase_add_loop_test(t, dkim_coverage_rows, 0, sizeof(dkim_rows) / sizeof(dkim_rows[0]));
	tcase_add_test(t, transactional_sender_not_checked);
	tcase_add_test(t, exempt_recipients_only_not_checked);
	tcase_add_test(t, monitor_mode_refuses_nothing);
	tcase_add_test(t, limit_gives_onlimit_action);
	tcase_add_test(t, feed_file_chunk_invariance);
	tcase_add_test(t, stats_reach_the_store);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;
	char cmd[600];

	if (mkdtemp(tmpdir) == NULL)
		return 1;
	sr = srunner_create(engine_suite());
	/* counters are process-wide: run the cases in one process, in order */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return failed ? 1 : 0;
}
