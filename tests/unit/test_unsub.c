/*
 * test_unsub.c - unit tests of the unsubscribe evidence (unsub.c) and the
 * phrase dictionary (phrases.c): List-Unsubscribe and one-click parsing,
 * link targets and merge tags, registrable domains, phrase folding, the
 * text/plain scanner, and whole messages from tests/data/unsub.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "phrases.h"
#include "unsub.h"

#ifndef TEST_DATA
#error "TEST_DATA must name the tests/data directory"
#endif
#ifndef TEST_CONF
#error "TEST_CONF must name the conf directory"
#endif

static bw_policy pol;

static void
setup_policy(void)
{
	bw_errs errs = { 0 };

	memset(&pol, 0, sizeof(pol));
	bw_conf_defaults(&pol.conf);
	pol.phrases = bw_phrases_load(TEST_CONF "/unsubscribe-phrases", &errs);
	if (pol.phrases == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		abort();
	}
	bw_errs_free(&errs);
}

/* ---------------------------------------------------------------- List-Unsubscribe */

static const struct lu_case {
	const char *name;
	const char *value;
	unsub_hdr want;
	bool https, mailto;
	const char *detail;   /* substring of the reason when malformed */
} lu_cases[] = {
	{ "mailto and https", "<mailto:unsubscribe@example.com?subject=unsubscribe>, <https://example.com/u/1>",
	  UNSUB_HDR_OK, true, true, NULL },
	{ "https only", "<https://example.com/list-unsubscribe/one-click/5c>", UNSUB_HDR_OK, true, false, NULL },
	{ "http only", "<http://example.com/u/1>", UNSUB_HDR_OK, false, false, NULL },
	{ "mailto only", "<mailto:unsub@example.com>", UNSUB_HDR_OK, false, true, NULL },
	{ "folded between items", "<https://example.com/u/1>,\r\n <mailto:u@example.com>", UNSUB_HDR_OK,
	  true, true, NULL },
	{ "folded inside brackets", "<https://example.com/list-uns\n ubscribe/one-click/61a9>", UNSUB_HDR_OK,
	  true, false, NULL },
	{ "spaces inside brackets", "< https://example.com/u/1 >", UNSUB_HDR_OK, true, false, NULL },
	{ "no space after comma", "<mailto:u@example.com>,<https://example.com/u>", UNSUB_HDR_OK, true, true,
	  NULL },
	{ "comment after the URI", "<https://example.com/u/1> (one click)", UNSUB_HDR_OK, true, false, NULL },
	{ "upper-case scheme", "<HTTPS://EXAMPLE.COM/U/1>", UNSUB_HDR_OK, true, false, NULL },
	{ "no angle brackets", "https://example.com/list-unsubscribe/one-click/eb42", UNSUB_HDR_MALFORMED,
	  false, false, "angle brackets" },
	{ "list without brackets", "mailto:u@example.com?subject=unsubscribe, https://example.com/u",
	  UNSUB_HDR_MALFORMED, false, false, "angle brackets" },
	{ "unclosed bracket", "<https://example.com/list-unsubscribe/one-click/43a1", UNSUB_HDR_MALFORMED,
	  false, false, "unclosed" },
	{ "bare address in brackets", "<unsubscribe+a96a@bounce.example.com>", UNSUB_HDR_MALFORMED, false,
	  false, "bare address" },
	{ "bare address", "unsubscribe@example.com", UNSUB_HDR_MALFORMED, false, false, "bare address" },
	{ "empty value", "", UNSUB_HDR_MALFORMED, false, false, "empty" },
	{ "blank value", "  \t ", UNSUB_HDR_MALFORMED, false, false, "empty" },
	{ "empty brackets", "<>", UNSUB_HDR_MALFORMED, false, false, "empty <>" },
	{ "relative URL", "</unsubscribe?u=7e12>", UNSUB_HDR_MALFORMED, false, false, "relative" },
	{ "semicolon separator", "<mailto:u@example.com>; <https://example.com/u>", UNSUB_HDR_MALFORMED,
	  false, false, "';'" },
	{ "RFC 2047 encoded-word", "=?utf-8?B?PGh0dHBzOi8vZXhhbXBsZS5jb20vdT4=?=", UNSUB_HDR_MALFORMED,
	  false, false, "2047" },
	{ "javascript URI", "<javascript:unsubscribe(df82)>", UNSUB_HDR_MALFORMED, false, false,
	  "javascript" },
	{ "mailto without address", "<mailto:>", UNSUB_HDR_MALFORMED, false, false, "mailto" },
	{ "mailto without domain", "<mailto:unsubscribe@>", UNSUB_HDR_MALFORMED, false, false, "mailto" },
	{ "https without host", "<https:///unsubscribe/795f>", UNSUB_HDR_MALFORMED, false, false, "host" },
	{ "raw merge tag", "<*|UNSUB|*>", UNSUB_HDR_MALFORMED, false, false, "merge tag" },
	{ "handlebars tag", "<{{ unsubscribe_url }}>", UNSUB_HDR_MALFORMED, false, false, "merge tag" },
	{ "merge tag in URL", "<https://example.com/u?e={{email}}>", UNSUB_HDR_MALFORMED, false, false,
	  "merge tag" },
	{ "trailing comma", "<https://example.com/u>,", UNSUB_HDR_MALFORMED, false, false, "empty item" },
	{ "other scheme", "<ftp://example.com/u>", UNSUB_HDR_MALFORMED, false, false, "scheme" },
	{ "good then bad", "<https://example.com/u>, <javascript:x()>", UNSUB_HDR_MALFORMED, false, false,
	  "javascript" },
	{ "text after the URI", "<https://example.com/u> click", UNSUB_HDR_MALFORMED, false, false, "after" },
};

START_TEST(test_list_unsubscribe)
{
	const struct lu_case *c = &lu_cases[_i];
	bool https = !c->https, mailto = !c->mailto;
	char det[160];
	unsub_hdr got = unsub_parse_list_unsubscribe(c->value, &https, &mailto, det, sizeof(det));

	ck_assert_msg(got == c->want, "%s: got %s, want %s (%s)", c->name, unsub_hdr_name(got),
	    unsub_hdr_name(c->want), det);
	ck_assert_msg(https == c->https, "%s: has_https %d", c->name, https);
	ck_assert_msg(mailto == c->mailto, "%s: has_mailto %d", c->name, mailto);
	if (c->detail)
		ck_assert_msg(strstr(det, c->detail) != NULL, "%s: detail \"%s\" lacks \"%s\"", c->name, det,
		    c->detail);
}
END_TEST

/* ---------------------------------------------------------------- headers of a message */

#define NOHDR NULL
static const struct oc_case {
	const char *name;
	const char *h[6];      /* name, value pairs */
	unsub_hdr lu, oc;
	const char *oc_detail;
} oc_cases[] = {
	{ "https and post", { "List-Unsubscribe", "<mailto:u@example.com>, <https://example.com/u>",
	  "List-Unsubscribe-Post", "List-Unsubscribe=One-Click" }, UNSUB_HDR_OK, UNSUB_HDR_OK, NULL },
	{ "lower-case names", { "list-unsubscribe", "<https://example.com/u>", "list-unsubscribe-post",
	  "List-Unsubscribe=One-Click" }, UNSUB_HDR_OK, UNSUB_HDR_OK, NULL },
	{ "white space around the value", { "List-Unsubscribe", "<https://example.com/u>",
	  "List-Unsubscribe-Post", "  List-Unsubscribe=One-Click \t" }, UNSUB_HDR_OK, UNSUB_HDR_OK, NULL },
	{ "no post header", { "List-Unsubscribe", "<https://example.com/u>" }, UNSUB_HDR_OK,
	  UNSUB_HDR_ABSENT, NULL },
	{ "no headers at all", { NOHDR }, UNSUB_HDR_ABSENT, UNSUB_HDR_ABSENT, NULL },
	{ "value One-Click", { "List-Unsubscribe", "<https://example.com/u>", "List-Unsubscribe-Post",
	  "One-Click" }, UNSUB_HDR_OK, UNSUB_HDR_MALFORMED, "value" },
	{ "typo OneClick", { "List-Unsubscribe", "<https://example.com/u>", "List-Unsubscribe-Post",
	  "List-Unsubscribe=OneClick" }, UNSUB_HDR_OK, UNSUB_HDR_MALFORMED, "value" },
	{ "extra parameter", { "List-Unsubscribe", "<https://example.com/u>", "List-Unsubscribe-Post",
	  "List-Unsubscribe=One-Click; list=53682c" }, UNSUB_HDR_OK, UNSUB_HDR_MALFORMED, "value" },
	{ "empty value", { "List-Unsubscribe", "<https://example.com/u>", "List-Unsubscribe-Post", "" },
	  UNSUB_HDR_OK, UNSUB_HDR_MALFORMED, "value" },
	{ "other case", { "List-Unsubscribe", "<https://example.com/u>", "List-Unsubscribe-Post",
	  "list-unsubscribe=one-click" }, UNSUB_HDR_OK, UNSUB_HDR_MALFORMED, "value" },
	{ "mailto only", { "List-Unsubscribe", "<mailto:u@example.com>", "List-Unsubscribe-Post",
	  "List-Unsubscribe=One-Click" }, UNSUB_HDR_OK, UNSUB_HDR_MALFORMED, "https" },
	{ "http only", { "List-Unsubscribe", "<http://example.com/u>", "List-Unsubscribe-Post",
	  "List-Unsubscribe=One-Click" }, UNSUB_HDR_OK, UNSUB_HDR_MALFORMED, "https" },
	{ "no List-Unsubscribe", { "List-Unsubscribe-Post", "List-Unsubscribe=One-Click" },
	  UNSUB_HDR_ABSENT, UNSUB_HDR_MALFORMED, "no List-Unsubscribe" },
	{ "malformed List-Unsubscribe", { "List-Unsubscribe", "<*|UNSUB|*>", "List-Unsubscribe-Post",
	  "List-Unsubscribe=One-Click" }, UNSUB_HDR_MALFORMED, UNSUB_HDR_MALFORMED, "malformed" },
	{ "post twice", { "List-Unsubscribe", "<https://example.com/u>", "List-Unsubscribe-Post",
	  "List-Unsubscribe=One-Click", "List-Unsubscribe-Post", "List-Unsubscribe=One-Click" },
	  UNSUB_HDR_OK, UNSUB_HDR_MALFORMED, "2 times" },
	{ "List-Unsubscribe twice", { "List-Unsubscribe", "<https://example.com/u>", "List-Unsubscribe",
	  "<https://example.com/v>", "List-Unsubscribe-Post", "List-Unsubscribe=One-Click" },
	  UNSUB_HDR_MALFORMED, UNSUB_HDR_MALFORMED, "malformed" },
};

START_TEST(test_one_click)
{
	const struct oc_case *c = &oc_cases[_i];
	unsub_scan *s = unsub_new(&pol);
	const unsub_result *r;

	ck_assert_ptr_nonnull(s);
	unsub_header(s, "Content-Type", "text/plain; charset=us-ascii");
	for (int k = 0; k < 6 && c->h[k]; k += 2)
		unsub_header(s, c->h[k], c->h[k + 1]);
	unsub_body_feed(s, "hello\r\n", 7);
	r = unsub_finish(s);
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(r->list_unsubscribe == c->lu, "%s: List-Unsubscribe %s", c->name,
	    unsub_hdr_name(r->list_unsubscribe));
	ck_assert_msg(r->one_click == c->oc, "%s: one-click %s (%s)", c->name, unsub_hdr_name(r->one_click),
	    r->oc_detail ? r->oc_detail : "-");
	if (c->oc_detail)
		ck_assert_msg(r->oc_detail && strstr(r->oc_detail, c->oc_detail), "%s: oc detail %s", c->name,
		    r->oc_detail ? r->oc_detail : "(none)");
	else
		ck_assert_ptr_null(r->oc_detail);
	unsub_free(s);
}
END_TEST

/* ---------------------------------------------------------------- targets */

static const struct target_case {
	const char *href;
	bool works, unrendered;
} target_cases[] = {
	{ "https://example.com/unsubscribe?u=1", true, false },
	{ "http://example.com", true, false },
	{ "HTTPS://EXAMPLE.COM/U", true, false },
	{ "  https://example.com/u  ", true, false },
	{ "https://user@example.com:8443/u", true, false },
	{ "http://[2001:db8::1]/u", true, false },
	{ "https://example.com/u?e=a%40b.example&x=%5B1%5D", true, false },
	{ "https://example.com/u?filter[name]=x", true, false },
	{ "mailto:unsubscribe@example.com", true, false },
	{ "mailto:unsubscribe@example.com?subject=unsubscribe", true, false },
	{ "mailto:?to=unsubscribe@example.com", true, false },
	{ "#", false, false },
	{ "", false, false },
	{ "javascript:void(0)", false, false },
	{ "/unsubscribe", false, false },
	{ "unsubscribe.html", false, false },
	{ "//example.com/u", false, false },
	{ "https:///unsubscribe", false, false },
	{ "https://", false, false },
	{ "https://:80/u", false, false },
	{ "mailto:", false, false },
	{ "mailto:unsubscribe", false, false },
	{ "mailto:@example.com", false, false },
	{ "ftp://example.com/u", false, false },
	{ "*|UNSUB|*", false, true },
	{ "{{unsubscribe_url}}", false, true },
	{ "{{ UnsubscribeURL }}", false, true },
	{ "{% unsubscribe_url %}", false, true },
	{ "%%unsubscribe%%", false, true },
	{ "%unsubscribe_url%", false, true },
	{ "[unsubscribe]", false, true },
	{ "[Unsubscribe_Preferences]", false, true },
	{ "<%asm_global_unsubscribe_raw_url%>", false, true },
	{ "<unsubscribe>", false, true },
	{ "${unsubscribe_link}", false, true },
	{ "https://example.com/unsubscribe?emailAddress={{data.love_email}}", false, true },
	{ "https://example.com/u?e=*|EMAIL|*", false, true },
	{ "https://example.com/u?e=%%email%%", false, true },
	{ "https://example.com/u?id=%recipient.id%", false, true },
	{ "https://example.com/u?e=[EMAIL]", false, true },
	{ "https://example.com/u/{id}", false, true },
};

START_TEST(test_targets)
{
	const struct target_case *c = &target_cases[_i];

	ck_assert_msg(unsub_target_works(c->href) == c->works, "works(\"%s\") != %d", c->href, c->works);
	ck_assert_msg(unsub_target_unrendered(c->href) == c->unrendered, "unrendered(\"%s\") != %d",
	    c->href, c->unrendered);
}
END_TEST

static const struct domain_case {
	const char *host, *want;
} domain_cases[] = {
	{ "example.com", "example.com" },
	{ "www.example.com", "example.com" },
	{ "a.b.c.example.com", "example.com" },
	{ "Example.COM.", "Example.COM" },
	{ "news.example.co.uk", "example.co.uk" },
	{ "example.co.uk", "example.co.uk" },
	{ "co.uk", "co.uk" },
	{ "shop.example.com.au", "example.com.au" },
	{ "mail.example.co.jp", "example.co.jp" },
	{ "news.example.com.br", "example.com.br" },
	{ "x.y.example.org.uk", "example.org.uk" },
	{ "u8221179.ct.sendgrid.net", "sendgrid.net" },
	{ "us12.list-manage.com", "list-manage.com" },
	{ "alice.github.io", "alice.github.io" },
	{ "localhost", "localhost" },
	{ "192.0.2.1", "192.0.2.1" },
	{ "[2001:db8::1]", "[2001:db8::1]" },
};

START_TEST(test_registrable_domain)
{
	const struct domain_case *c = &domain_cases[_i];
	const char *start = NULL;
	size_t n = unsub_registrable_domain(c->host, strlen(c->host), &start);

	ck_assert_msg(n == strlen(c->want) && strncmp(start, c->want, n) == 0, "%s: got \"%.*s\", want %s",
	    c->host, (int)n, start ? start : "", c->want);
}
END_TEST

/* ---------------------------------------------------------------- phrases */

static const struct fold_case {
	const char *in, *want;
} fold_cases[] = {
	{ "UNSUBSCRIBE", "unsubscribe" },
	{ "ABMELDEN ÄÖÜ", "abmelden äöü" },
	{ "SE DÉSABONNER", "se désabonner" },
	{ "ZRUŠIT ODBĚR", "zrušit odběr" },
	{ "ŁÓDŹ ŻÓŁĆ", "łódź żółć" },
	{ "ОТПИСАТЬСЯ ЁЖ", "отписаться еж" },
	{ "ВІДПИСАТИСЯ", "відписатися" },
	{ "ΔΙΑΓΡΑΦΗ", "διαγραφη" },
	{ "Διαγραφή", "διαγραφη" },
	{ "ΑΠΕΓΓΡΑΦΉ ΧΡΉΣΤΗΣ τους", "απεγγραφη χρηστησ τουσ" },
	{ "ÜYELİĞİ SONLANDIR", "üyeliği sonlandir" },
	{ "opt\xc2\xa0 \t\r\n out", "opt out" },
	{ "  lead and trail  ", " lead and trail " },
	{ "soft\xc2\xadhyphen", "softhyphen" },
	{ "退订", "退订" },
	{ "bad \xff byte", "bad ? byte" },
};

START_TEST(test_fold)
{
	const struct fold_case *c = &fold_cases[_i];
	char out[128];
	size_t n = bw_fold(c->in, strlen(c->in), out, sizeof(out));

	ck_assert_str_eq(out, c->want);
	ck_assert_uint_eq(n, strlen(c->want));
}
END_TEST

START_TEST(test_fold_bounds)
{
	char out[8];
	/* "ДДДД" is 8 bytes: only three characters fit with the NUL */
	size_t n = bw_fold("ДДДД", 8, out, sizeof(out));

	ck_assert_uint_eq(n, 6);
	ck_assert_str_eq(out, "ддд");
	ck_assert_uint_eq(bw_fold("abc", 3, out, 1), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

/*
 * Long texts against a fold written out here for a small alphabet: ASCII
 * letters, digits, punctuation and white space, no-break space (white),
 * soft hyphen and zero-width space (dropped), "É" and "Д" (lowered).
 * Random texts of up to 300 bytes, each folded into outputs of every
 * size, cover the runs folded sixteen bytes at a time and their edges.
 */
static const char *const fold_units[] = {
	"a", "B", "c", "Z", "x", "Q", "0", "9", ".", "-", "'", ":", "/", " ", " ", " ", " ", "  ",
	"\t", "\r\n", "\n", "\xc2\xa0", "\xc2\xad", "\xe2\x80\x8b", "\xc3\x89", "\xd0\x94",
	"word", "WORD", "Mixed", "unsubscribe", "UNSUBSCRIBE ",
};

static size_t
fold_ref(const char *in, char *out)
{
	size_t o = 0;
	bool pending = false;

	for (const char *p = in; *p;) {
		const char *u = NULL, *fold = NULL;
		size_t ul = 0;

		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			ul = 1, fold = " ";
		else if (strncmp(p, "\xc2\xa0", 2) == 0)
			ul = 2, fold = " ";
		else if (strncmp(p, "\xc2\xad", 2) == 0 || strncmp(p, "\xe2\x80\x8b", 3) == 0)
			ul = p[0] == '\xc2' ? 2 : 3, fold = "";
		else if (strncmp(p, "\xc3\x89", 2) == 0)
			ul = 2, u = "\xc3\xa9";
		else if (strncmp(p, "\xd0\x94", 2) == 0)
			ul = 2, u = "\xd0\xb4";
		else {
			static char one[2];
			one[0] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
			ul = 1, u = one;
		}
		p += ul;
		if (fold != NULL) {
			if (*fold == ' ')
				pending = true;
			continue;
		}
		if (pending)
			out[o++] = ' ', pending = false;
		memcpy(out + o, u, strlen(u));
		o += strlen(u);
	}
	if (pending)
		out[o++] = ' ';
	out[o] = 0;
	return o;
}

START_TEST(test_fold_long)
{
	uint32_t seed = 12345;
	char in[400], want[400], got[400];

	for (int round = 0; round < 400; round++) {
		size_t il = 0, wl;

		while (il < 300) {
			seed = seed * 1103515245u + 12345u;
			const char *u = fold_units[(seed >> 16) % (sizeof(fold_units) / sizeof(fold_units[0]))];
			/* long ASCII words often, so that whole blocks fold at once */
			if ((seed >> 8) % 3 == 0)
				u = (seed >> 4) % 2 ? "Dear Reader, " : "to stop these emails";
			memcpy(in + il, u, strlen(u));
			il += strlen(u);
		}
		in[il] = 0;
		wl = fold_ref(in, want);
		for (size_t outsz = 1; outsz <= wl + 2; outsz++) {
			/* what fits: whole characters, the first that does not ends it */
			size_t cut = 0;
			while (cut < wl) {
				size_t cl = 1;
				while (cut + cl < wl && ((unsigned char)want[cut + cl] & 0xc0) == 0x80)
					cl++;
				if (cut + cl > outsz - 1)
					break;
				cut += cl;
			}
			size_t n = bw_fold(in, il, got, outsz);
			ck_assert_msg(n == cut && memcmp(got, want, cut) == 0 && got[n] == 0,
			    "round %d, size %zu: \"%s\" gave \"%s\", want \"%.*s\"", round, outsz, in, got,
			    (int)cut, want);
		}
	}
}
END_TEST

static const struct match_case {
	const char *text;
	bool match;
} match_cases[] = {
	{ "UNSUBSCRIBE FROM THIS LIST", true },
	{ "Click to opt\xc2\xa0out", true },
	{ "NEWSLETTER ABBESTELLEN", true },
	{ "SE DÉSABONNER", true },
	{ "Darse de baja", true },
	{ "Annulla l'iscrizione", true },
	{ "Cancelar inscrição", true },
	{ "Uitschrijven", true },
	{ "ZRUŠIT ODBĚR", true },
	{ "Wypisz się", true },
	{ "ОТПИСАТЬСЯ ОТ РАССЫЛКИ", true },
	{ "ΔΙΑΓΡΑΦΗ", true },
	{ "退订", true },
	{ "取消訂閱", true },
	{ "配信停止はこちら", true },
	{ "登録を取り消す", true },
	{ "구독 해지", true },
	{ "수신거부", true },
	{ "Poistu postituslistalta", true },
	{ "ABONELİKTEN ÇIK", true },
	{ "إلغاء الاشتراك", true },
	{ "ביטול רישום", true },
	{ "Hủy đăng ký", true },
	{ "Update your preferences", false },
	{ "Manage subscription", false },
	{ "Manage your email preferences", false },
	{ "Subscription settings", false },
	{ "Einstellungen verwalten", false },
	{ "Gérer mes préférences", false },
	{ "View in browser", false },
	{ "Cancellation policy", false },
	{ "Vahvista postituslistalle liittyminen", false },
	{ "", false },
};

START_TEST(test_phrase_match)
{
	const struct match_case *c = &match_cases[_i];

	ck_assert_msg(bw_phrases_match(pol.phrases, c->text, strlen(c->text)) == c->match,
	    "\"%s\" should %smatch", c->text, c->match ? "" : "not ");
}
END_TEST

static const struct perr_case {
	const char *name;
	const char *text;
	const char *err;     /* NULL: loads */
	size_t count;
} perr_cases[] = {
	{ "comments and sections", "# phrases\n[en]\nunsubscribe\n\n[de]\nAbmelden\r\n  opt out  \n", NULL, 3 },
	{ "byte order mark", "\xef\xbb\xbfunsubscribe\n", NULL, 1 },
	{ "duplicates once", "Unsubscribe\nUNSUBSCRIBE\nunsubscribe\n", NULL, 1 },
	{ "invalid UTF-8", "# ok\nunsubscribe\nabmel\xe4" "den\n", "p:3: invalid UTF-8", 0 },
	{ "overlong encoding", "\xc0\xafx\n", "p:1: invalid UTF-8", 0 },
	{ "bad section", "[en\nunsubscribe\n", "p:1: bad section line", 0 },
	{ "phrase too short", "unsubscribe\nx\n", "p:2: phrase too short", 0 },
	{ "no phrases", "# nothing\n[en]\n", "no phrases", 0 },
};

START_TEST(test_phrase_file)
{
	const struct perr_case *c = &perr_cases[_i];
	bw_errs errs = { 0 };
	bw_phrases *p = bw_phrases_parse(c->text, strlen(c->text), "p", &errs);

	if (c->err == NULL) {
		ck_assert_msg(p != NULL, "%s: %s", c->name, errs.n ? errs.msg[0] : "?");
		ck_assert_uint_eq(bw_phrases_count(p), c->count);
	} else {
		ck_assert_msg(p == NULL, "%s: loaded", c->name);
		ck_assert_uint_ge(errs.n, 1);
		ck_assert_msg(strstr(errs.msg[0], c->err) != NULL, "%s: \"%s\"", c->name, errs.msg[0]);
	}
	bw_phrases_free(p);
	bw_errs_free(&errs);
}
END_TEST

START_TEST(test_phrase_long_line)
{
	char text[600];
	bw_errs errs = { 0 };
	bw_phrases *p;

	memset(text, 'a', sizeof(text));
	memcpy(text, "unsubscribe\n", 12);
	text[sizeof(text) - 1] = '\n';
	p = bw_phrases_parse(text, sizeof(text), "long", &errs);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_str_eq(errs.msg[0], "long:2: line too long (more than 256 bytes)");
	bw_errs_free(&errs);
}
END_TEST

START_TEST(test_phrase_shipped_file)
{
	/* every language the corpus and the design name has phrases */
	ck_assert_uint_ge(bw_phrases_count(pol.phrases), 150);
}
END_TEST

/* ---------------------------------------------------------------- messages */

static const unsub_result *
scan_buf(unsub_scan *s, const char *data, size_t len, size_t chunk)
{
	const char *p = data, *end = data + len;
	char name[128], *val = NULL;
	size_t vlen = 0;
	bool have = false;

	/* headers, unfolded the way the MTA passes them */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = (size_t)((nl ? nl : end) - p);

		if (ll && p[ll - 1] == '\r')
			ll--;
		if (ll == 0) {
			p = nl ? nl + 1 : end;
			break;
		}
		if ((*p == ' ' || *p == '\t') && have) {
			val = realloc(val, vlen + ll + 2);
			ck_assert_ptr_nonnull(val);
			val[vlen++] = '\n';
			memcpy(val + vlen, p, ll);
			vlen += ll;
			val[vlen] = 0;
		} else {
			const char *colon = memchr(p, ':', ll);
			if (have)
				unsub_header(s, name, val);
			have = false;
			if (colon && (size_t)(colon - p) < sizeof(name)) {
				const char *vs = colon + 1;
				memcpy(name, p, (size_t)(colon - p));
				name[colon - p] = 0;
				while (vs < p + ll && (*vs == ' ' || *vs == '\t'))
					vs++;
				vlen = (size_t)(p + ll - vs);
				free(val);
				val = malloc(vlen + 1);
				ck_assert_ptr_nonnull(val);
				memcpy(val, vs, vlen);
				val[vlen] = 0;
				have = true;
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (have)
		unsub_header(s, name, val);
	free(val);
	while (p < end) {
		size_t n = (size_t)(end - p) < chunk ? (size_t)(end - p) : chunk;
		if (!unsub_body_feed(s, p, n))
			break;
		p += n;
	}
	return unsub_finish(s);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	ck_assert_msg(fp != NULL, "cannot open %s", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	buf[n] = 0;
	*len = (size_t)n;
	return buf;
}

static const struct msg_case {
	const char *file;
	unsub_body want;
	const char *part;     /* the part named in the reason, when not visible */
	const char *detail;   /* substring of its detail */
} msg_cases[] = {
	/* visible */
	{ "visible-footer", UNSUB_VISIBLE, NULL, NULL },
	{ "visible-mailto", UNSUB_VISIBLE, NULL, NULL },
	{ "visible-url-text", UNSUB_VISIBLE, NULL, NULL },
	{ "click-here-before", UNSUB_VISIBLE, NULL, NULL },
	{ "click-here-after", UNSUB_VISIBLE, NULL, NULL },
	{ "image-alt", UNSUB_VISIBLE, NULL, NULL },
	{ "decoy-plus-visible", UNSUB_VISIBLE, NULL, NULL },
	{ "text-only", UNSUB_VISIBLE, NULL, NULL },
	{ "html-only", UNSUB_VISIBLE, NULL, NULL },
	{ "qp-soft-break", UNSUB_VISIBLE, NULL, NULL },
	{ "base64-crlf", UNSUB_VISIBLE, NULL, NULL },
	{ "reversed-alternative", UNSUB_VISIBLE, NULL, NULL },
	{ "attachments-ignored", UNSUB_VISIBLE, NULL, NULL },
	{ "deep-nested", UNSUB_VISIBLE, NULL, NULL },
	/* hidden tricks */
	{ "hidden-display-none", UNSUB_HIDDEN, "text/html", "link hidden by display:none" },
	{ "hidden-class-display-none", UNSUB_HIDDEN, "text/html", "link hidden by" },
	{ "hidden-wrapper", UNSUB_HIDDEN, "text/html", "display" },
	{ "hidden-visibility", UNSUB_HIDDEN, "text/html", "visibility" },
	{ "hidden-opacity", UNSUB_HIDDEN, "text/html", "opacity" },
	{ "hidden-css-comment", UNSUB_HIDDEN, "text/html", "display:none" },
	{ "hidden-clip", UNSUB_HIDDEN, "text/html", "clip:rect" },
	{ "hidden-clip-path", UNSUB_HIDDEN, "text/html", "clip-path" },
	{ "hidden-transform", UNSUB_HIDDEN, "text/html", "transform:scale" },
	{ "hidden-details", UNSUB_HIDDEN, "text/html", "closed <details>" },
	{ "hidden-dialog", UNSUB_HIDDEN, "text/html", "closed <dialog>" },
	{ "hidden-height-1px", UNSUB_HIDDEN, "text/html", "tiny height" },
	{ "hidden-style-after", UNSUB_HIDDEN, "text/html", "display:none" },
	{ "hidden-font-size-0", UNSUB_HIDDEN, "text/html", "font" },
	{ "hidden-font-size-1px", UNSUB_HIDDEN, "text/html", "font" },
	{ "hidden-color-bg", UNSUB_HIDDEN, "text/html", "link hidden by" },
	{ "hidden-color-near", UNSUB_HIDDEN, "text/html", "link hidden by" },
	{ "hidden-color-css", UNSUB_HIDDEN, "text/html", "link hidden by" },
	{ "hidden-transparent", UNSUB_HIDDEN, "text/html", "link hidden by" },
	{ "hidden-max-height", UNSUB_HIDDEN, "text/html", "link hidden by" },
	{ "hidden-zero-size", UNSUB_HIDDEN, "text/html", "link hidden by" },
	{ "hidden-offscreen", UNSUB_HIDDEN, "text/html", "link hidden by" },
	{ "hidden-mso-hide", UNSUB_HIDDEN, "text/html", "mso-hide" },
	{ "hidden-attribute", UNSUB_HIDDEN, "text/html", "hidden" },
	{ "hidden-comment", UNSUB_HIDDEN, "text/html", "link hidden inside comment" },
	{ "hidden-mso-conditional", UNSUB_HIDDEN, "text/html", "comment" },
	{ "hidden-noscript", UNSUB_HIDDEN, "text/html", "noscript" },
	{ "hidden-title", UNSUB_HIDDEN, "text/html", "link hidden" },
	{ "hidden-style-comment", UNSUB_HIDDEN, "text/html", "link hidden" },
	{ "hidden-head-link", UNSUB_HIDDEN, "text/html", "link hidden" },
	{ "hidden-image-no-alt", UNSUB_HIDDEN, "text/html", "image without alt" },
	{ "hidden-label", UNSUB_HIDDEN, "text/html", "wording of the link is hidden" },
	{ "ml-ko-hidden", UNSUB_HIDDEN, "text/html", "display" },
	/* unrendered merge tags */
	{ "unrendered-mailchimp", UNSUB_UNRENDERED, "text/html", "unrendered merge tag" },
	{ "unrendered-handlebars", UNSUB_UNRENDERED, "text/html", "unrendered merge tag" },
	{ "unrendered-sendgrid", UNSUB_UNRENDERED, "text/html", "unrendered merge tag" },
	{ "unrendered-brackets", UNSUB_UNRENDERED, "text/html", "unrendered merge tag" },
	{ "unrendered-cm-tag", UNSUB_UNRENDERED, "text/html", "unrendered merge tag" },
	{ "unrendered-url-param", UNSUB_UNRENDERED, "text/html", "unrendered merge tag" },
	{ "text-unrendered", UNSUB_UNRENDERED, "text/plain", "unrendered merge tag" },
	/* absent */
	{ "absent-href-hash", UNSUB_ABSENT, "text/html", "no working target" },
	{ "absent-javascript", UNSUB_ABSENT, "text/html", "no working target" },
	{ "absent-href-empty", UNSUB_ABSENT, "text/html", "no working target" },
	{ "absent-no-href", UNSUB_ABSENT, "text/html", "no working target" },
	{ "absent-text-not-link", UNSUB_ABSENT, "text/html", "no unsubscribe link" },
	{ "deceptive-domain", UNSUB_ABSENT, "text/html", "another domain" },
	{ "preference-only", UNSUB_ABSENT, "text/html", "no unsubscribe link" },
	{ "click-here-preferences", UNSUB_ABSENT, "text/html", "no unsubscribe link" },
	{ "link-only-in-text", UNSUB_ABSENT, "text/html", "no unsubscribe link" },
	{ "text-missing-link", UNSUB_ABSENT, "text/plain", "no unsubscribe link" },
	{ "text-only-absent", UNSUB_ABSENT, "text/plain", "no unsubscribe link" },
	{ "attachment-only-link", UNSUB_ABSENT, "text/plain", "no unsubscribe link" },
	{ "transactional", UNSUB_ABSENT, "text/plain", "no unsubscribe link" },
	/* languages and charsets */
	{ "ml-de", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-fr", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-es", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-ru-koi8", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-uk", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-zh-gb2312", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-zh-tw-big5", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-ja-iso2022", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-ko-euckr", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-el-upper", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-cs-upper", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-pl", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-tr", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-ar", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-he", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-vi", UNSUB_VISIBLE, NULL, NULL },
	{ "ml-sv-here", UNSUB_VISIBLE, NULL, NULL },
};

static void
check_message(const struct msg_case *c, size_t chunk)
{
	char path[512];
	size_t len;
	char *data;
	unsub_scan *s = unsub_new(&pol);
	const unsub_result *r;

	snprintf(path, sizeof(path), "%s/unsub/%s.eml", TEST_DATA, c->file);
	data = read_file(path, &len);
	ck_assert_ptr_nonnull(s);
	r = scan_buf(s, data, len, chunk);
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(r->limit == NULL, "%s: limit %s", c->file, r->limit);
	ck_assert_msg(r->body == c->want, "%s (chunk %zu): got %s (%s: %s), want %s", c->file, chunk,
	    unsub_body_name(r->body), r->worst ? r->worst->part : "-",
	    r->worst && r->worst->detail ? r->worst->detail : "-", unsub_body_name(c->want));
	if (c->part) {
		ck_assert_ptr_nonnull(r->worst);
		ck_assert_str_eq(r->worst->part, c->part);
		ck_assert_msg(r->worst->detail && strstr(r->worst->detail, c->detail), "%s: detail \"%s\"",
		    c->file, r->worst->detail ? r->worst->detail : "(none)");
		ck_assert_msg(strchr(r->worst->detail, '%') == NULL, "%s: '%%' in detail", c->file);
	}
	unsub_free(s);
	free(data);
}

START_TEST(test_message)
{
	check_message(&msg_cases[_i], 65535);
}
END_TEST

/* the same, body in pieces of 7 bytes: splits inside tags, URLs and characters */
START_TEST(test_message_chunked)
{
	check_message(&msg_cases[_i], 7);
}
END_TEST

/* without the list of links (the milter's scan) every message of the
   table gets the same verdict and detail, and no link is listed */
START_TEST(test_message_skip_links)
{
	const struct msg_case *c = &msg_cases[_i];
	char path[512];
	size_t len;
	char *data;
	unsub_scan *a = unsub_new(&pol), *b = unsub_new(&pol);
	const unsub_result *ra, *rb;

	snprintf(path, sizeof(path), "%s/unsub/%s.eml", TEST_DATA, c->file);
	data = read_file(path, &len);
	unsub_skip_links(b);
	ra = scan_buf(a, data, len, 4096);
	rb = scan_buf(b, data, len, 4096);
	ck_assert_ptr_nonnull(ra);
	ck_assert_ptr_nonnull(rb);
	ck_assert_uint_eq(rb->nlinks, 0);
	ck_assert_int_eq(rb->body, ra->body);
	ck_assert_uint_eq(rb->nviews, ra->nviews);
	for (size_t i = 0; i < ra->nviews; i++) {
		ck_assert_int_eq(rb->views[i].result, ra->views[i].result);
		ck_assert_str_eq(rb->views[i].detail, ra->views[i].detail);
	}
	ck_assert_int_eq(rb->list_unsubscribe, ra->list_unsubscribe);
	ck_assert_int_eq(rb->one_click, ra->one_click);
	unsub_free(a);
	unsub_free(b);
	free(data);
}
END_TEST

START_TEST(test_message_links_reported)
{
	char path[512];
	size_t len, nunsub = 0;
	char *data;
	unsub_scan *s = unsub_new(&pol);
	const unsub_result *r;

	snprintf(path, sizeof(path), "%s/unsub/decoy-plus-visible.eml", TEST_DATA);
	data = read_file(path, &len);
	r = scan_buf(s, data, len, 4096);
	ck_assert_uint_ge(r->nlinks, 3);
	for (size_t i = 0; i < r->nlinks; i++) {
		const unsub_link *l = &r->links[i];
		if (!l->unsubscribe)
			continue;
		nunsub++;
		if (strcmp(l->part, "text/html") == 0 && strstr(l->href, "/decoy/")) {
			ck_assert(!l->visible);
			ck_assert_ptr_nonnull(l->why);
		}
	}
	ck_assert_uint_eq(nunsub, 3);   /* the decoy, the footer link, the text/plain URL */
	ck_assert_uint_eq(r->nviews, 2);
	unsub_free(s);
	free(data);
}
END_TEST

/* ---------------------------------------------------------------- text/plain scanner */

static const struct text_case {
	const char *name;
	const char *body;
	unsub_body want;
} text_cases[] = {
	{ "same line", "Thanks.\nTo unsubscribe: https://example.com/u/1\n", UNSUB_VISIBLE },
	{ "previous line", "Unsubscribe here:\nhttps://example.com/u/1\n", UNSUB_VISIBLE },
	{ "angle brackets", "Unsubscribe\n<https://example.com/u/1>\n", UNSUB_VISIBLE },
	{ "blank line between", "Unsubscribe\n\n<https://example.com/u/1>\n", UNSUB_VISIBLE },
	{ "question then wording", "Don't like these emails? Unsubscribe <https://example.com/u/1>.\n",
	  UNSUB_VISIBLE },
	{ "sentence over two lines", "To stop receiving these emails, you can unsubscribe\n"
	  "<https://example.com/u/1>\nat any time.\n", UNSUB_VISIBLE },
	{ "no space before URL", "unsubscribe:https://example.com/u/1\n", UNSUB_VISIBLE },
	{ "mailto", "Unsubscribe: mailto:unsubscribe@example.com?subject=stop\n", UNSUB_VISIBLE },
	{ "CRLF lines", "Hello\r\n\r\nUnsubscribe:\r\nhttps://example.com/u/1\r\n", UNSUB_VISIBLE },
	{ "Chinese", "如果您不想再收到邮件，请点击退订：https://example.com/u/1\n", UNSUB_VISIBLE },
	{ "German upper case", "NEWSLETTER ABBESTELLEN: https://example.com/u/1\n", UNSUB_VISIBLE },
	{ "after a preference URL", "Preferences <https://example.com/p> or unsubscribe\n"
	  "<https://example.com/u/1>\n", UNSUB_VISIBLE },
	{ "no wording", "Visit our shop https://shop.example.com\nThanks\n", UNSUB_ABSENT },
	{ "wording after the URL only", "https://example.com/u/1 unsubscribe\n", UNSUB_ABSENT },
	{ "preference link", "Manage preferences: https://example.com/prefs\n", UNSUB_ABSENT },
	{ "wording in an earlier sentence", "You can unsubscribe at any time.\nShop: https://shop.example.com/\n",
	  UNSUB_ABSENT },
	{ "wording two lines up", "Unsubscribe\nView in browser\n<https://example.com/v/1>\n", UNSUB_ABSENT },
	{ "URL right after another", "Unsubscribe\n<https://example.com/v/1>\n<https://example.com/w/2>\n",
	  UNSUB_VISIBLE },
	{ "not a working URL", "Unsubscribe: https:///u/1\n", UNSUB_ABSENT },
	{ "wording without URL", "To unsubscribe, reply STOP.\n", UNSUB_ABSENT },
	{ "mailchimp tag", "unsubscribe from this list\n<*|UNSUB|*>\n", UNSUB_UNRENDERED },
	{ "handlebars tag", "退訂 <{{ UnsubscribeURL }}> 在瀏覽器中查看\n", UNSUB_UNRENDERED },
	{ "sendgrid tag", "Unsubscribe <<%asm_global_unsubscribe_raw_url%>>\n", UNSUB_UNRENDERED },
	{ "bracket tag", "you can unsubscribe <[unsubscribe]> at any time.\n", UNSUB_UNRENDERED },
	{ "footnote brackets are text", "See [1] to unsubscribe: https://example.com/u/1\n", UNSUB_VISIBLE },
	{ "URL in brackets", "Unsubscribe [https://example.com/u/1]\n", UNSUB_VISIBLE },
	{ "mailto in brackets", "Unsubscribe [mailto:unsubscribe@example.com]\n", UNSUB_VISIBLE },
	{ "parentheses", "Unsubscribe (https://example.com/u/1).\n", UNSUB_VISIBLE },
	{ "tag without wording", "Profile: *|UPDATE_PROFILE|*\n", UNSUB_ABSENT },
	{ "wording too far back", "unsubscribe "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
	  "aaaaaaaaaaaaaaaaaaaa https://example.com/x\n", UNSUB_ABSENT },
};

START_TEST(test_text_plain)
{
	const struct text_case *c = &text_cases[_i];
	unsub_scan *s;
	const unsub_result *r;
	size_t bl = strlen(c->body);
	const size_t chunks[] = { 1, 2, 3, 5, bl };

	for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		size_t chunk = chunks[k];

		s = unsub_new(&pol);
		unsub_header(s, "Content-Type", "text/plain; charset=utf-8");
		unsub_header(s, "Content-Transfer-Encoding", "8bit");
		for (size_t off = 0; off < bl; off += chunk)
			unsub_body_feed(s, c->body + off, bl - off < chunk ? bl - off : chunk);
		r = unsub_finish(s);
		ck_assert_uint_eq(r->nviews, 1);
		ck_assert_msg(r->body == c->want, "%s (chunk %zu): got %s, want %s", c->name, chunk,
		    unsub_body_name(r->body), unsub_body_name(c->want));
		unsub_free(s);
	}
}
END_TEST

/* Campaign Monitor's raw <unsubscribe> tag in the HTML source is found at
   any offset and across any split of the body, in any letter case; other
   tags that start with "<u" are not it */
START_TEST(test_html_raw_tag)
{
	const size_t chunks[] = { 1, 2, 7, 16, 17, 4096 };

	for (int tag = 0; tag < 2; tag++)
		for (size_t pad = 0; pad < 40; pad++)
			for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
				char body[512];
				size_t bl;
				unsub_scan *s = unsub_new(&pol);
				const unsub_result *r;

				bl = (size_t)snprintf(body, sizeof(body),
				    "<html><body><p>%.*s<ul><u>news</u></ul>%s</p></body></html>\n", (int)pad,
				    "0123456789012345678901234567890123456789",
				    tag ? "<UnSubscribe style=\"color:#666\">Unsubscribe</UnSubscribe>" :
				    "<u>Unsubscribe</u>");
				unsub_header(s, "Content-Type", "text/html; charset=utf-8");
				unsub_header(s, "Content-Transfer-Encoding", "8bit");
				for (size_t off = 0; off < bl; off += chunks[k])
					unsub_body_feed(s, body + off, bl - off < chunks[k] ? bl - off : chunks[k]);
				r = unsub_finish(s);
				ck_assert_ptr_nonnull(r);
				ck_assert_msg(r->body == (tag ? UNSUB_UNRENDERED : UNSUB_ABSENT),
				    "tag %d, pad %zu, chunk %zu: %s", tag, pad, chunks[k],
				    unsub_body_name(r->body));
				unsub_free(s);
			}
}
END_TEST

/* a URL longer than MaxUrlLength is cut, and still a working target */
START_TEST(test_text_long_url)
{
	size_t n = 20000;
	char *body = malloc(n + 64);
	unsub_scan *s = unsub_new(&pol);
	const unsub_result *r;
	size_t len;

	ck_assert_ptr_nonnull(body);
	len = (size_t)sprintf(body, "Unsubscribe: https://example.com/u?x=");
	memset(body + len, 'a', n);
	len += n;
	body[len++] = '\n';
	unsub_header(s, "Content-Type", "text/plain; charset=utf-8");
	unsub_body_feed(s, body, len);
	r = unsub_finish(s);
	ck_assert_int_eq(r->body, UNSUB_VISIBLE);
	ck_assert_uint_eq(r->nlinks, 1);
	ck_assert_uint_eq(strlen(r->links[0].href), pol.conf.max_url_length);
	unsub_free(s);
	free(body);
}
END_TEST

/* a bound of the MIME walker reaches the result as its config key */
START_TEST(test_limit_reported)
{
	char body[8192];
	size_t len = 0;
	unsub_scan *s = unsub_new(&pol);
	const unsub_result *r;

	unsub_header(s, "Content-Type", "multipart/mixed; boundary=b0");
	for (int d = 0; d < 40; d++)
		len += (size_t)snprintf(body + len, sizeof(body) - len,
		    "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", d, d + 1);
	len += (size_t)snprintf(body + len, sizeof(body) - len,
	    "--b40\r\nContent-Type: text/plain\r\n\r\nUnsubscribe: https://example.com/u\r\n--b40--\r\n");
	unsub_body_feed(s, body, len);
	r = unsub_finish(s);
	ck_assert_ptr_nonnull(r->limit);
	ck_assert_str_eq(r->limit, "MaxMimeDepth");
	unsub_free(s);
}
END_TEST

START_TEST(test_no_views)
{
	unsub_scan *s = unsub_new(&pol);
	const unsub_result *r;
	static const char body[] = "--b\r\nContent-Type: application/pdf\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";

	unsub_header(s, "Content-Type", "multipart/mixed; boundary=b");
	unsub_body_feed(s, body, sizeof(body) - 1);
	r = unsub_finish(s);
	ck_assert_int_eq(r->body, UNSUB_ABSENT);
	ck_assert_ptr_null(r->worst);
	ck_assert_uint_eq(r->nviews, 0);
	unsub_free(s);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(unsub_body_name(UNSUB_VISIBLE), "visible");
	ck_assert_str_eq(unsub_body_name(UNSUB_UNRENDERED), "unrendered");
	ck_assert_str_eq(unsub_body_name(UNSUB_HIDDEN), "hidden");
	ck_assert_str_eq(unsub_body_name(UNSUB_ABSENT), "absent");
	ck_assert_str_eq(unsub_hdr_name(UNSUB_HDR_OK), "ok");
	ck_assert_str_eq(unsub_hdr_name(UNSUB_HDR_ABSENT), "absent");
	ck_assert_str_eq(unsub_hdr_name(UNSUB_HDR_MALFORMED), "malformed");
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *
unsub_suite(void)
{
	Suite *s = suite_create("unsub");
	TCase *tc;

	tc = tcase_create("headers");
	tcase_add_loop_test(tc, test_list_unsubscribe, 0, N(lu_cases));
	tcase_add_loop_test(tc, test_one_click, 0, N(oc_cases));
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("targets");
	tcase_add_loop_test(tc, test_targets, 0, N(target_cases));
	tcase_add_loop_test(tc, test_registrable_domain, 0, N(domain_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("phrases");
	tcase_add_loop_test(tc, test_fold, 0, N(fold_cases));
	tcase_add_test(tc, test_fold_bounds);
	tcase_add_test(tc, test_fold_long);
	tcase_add_loop_test(tc, test_phrase_match, 0, N(match_cases));
	tcase_add_loop_test(tc, test_phrase_file, 0, N(perr_cases));
	tcase_add_test(tc, test_phrase_long_line);
	tcase_add_test(tc, test_phrase_shipped_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("text");
	tcase_add_loop_test(tc, test_text_plain, 0, N(text_cases));
	tcase_add_test(tc, test_no_views);
	tcase_add_test(tc, test_text_long_url);
	tcase_add_test(tc, test_limit_reported);
	suite_add_tcase(s, tc);

	tc = tcase_create("messages");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_message, 0, N(msg_cases));
	tcase_add_loop_test(tc, test_message_chunked, 0, N(msg_cases));
	tcase_add_test(tc, test_html_raw_tag);
	tcase_add_loop_test(tc, test_message_skip_links, 0, N(msg_cases));
	tcase_add_test(tc, test_message_links_reported);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	setup_policy();
	sr = srunner_create(unsub_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	bw_phrases_free(pol.phrases);
	bw_conf_free(&pol.conf);
	return failed ? 1 : 0;
}
