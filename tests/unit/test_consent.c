/*
 * test_consent.c - unit tests of consent.c: recipient normalisation, names
 * and keys, the JSON layout of records, RFC 3339 times, key files, signed
 * unsubscribe tokens, the erasure hash, and, over a real LMDB store in a
 * temporary directory, the consent decision, suppression writes and
 * erasure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* nftw */
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consent.h"
#include "store.h"

#define DAY  86400LL
#define YEAR (365 * DAY)

/* 000102...1f: a test secret with a known HMAC */
#define HEX32 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define B6432 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define HEXB  "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
#define HEXC  "5555555555555555555555555555555555555555555555555555555555555555"

static int64_t
T(const char *s)
{
	int64_t t = 0;

	ck_assert_msg(bw_time_parse(s, &t), "time %s", s);
	return t;
}

/* ---------------------------------------------------------------- fixture */

static struct {
	char dir[256];
	bw_store *st;
	bw_keyring *ring;  /* "k1 HEX32": tokens and erasure */
} fx;

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A file in the fixture directory with the given text and mode. */
static const char *
fx_file(const char *name, const char *text, mode_t mode)
{
	static char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	ck_assert(chmod(path, mode) == 0);
	return path;
}

static bw_keyring *
fx_ring(const char *name, const char *text)
{
	char err[512] = "";
	bw_keyring *k = bw_keyring_load(fx_file(name, text, 0600), err, sizeof(err));

	ck_assert_msg(k != NULL, "key file: %s", err);
	return k;
}

/* A temporary directory with a key file; no store. */
static void
fx_begin_keys(void)
{
	const char *tmp = getenv("TMPDIR");

	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "%s/bw-consent-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
	ck_assert_msg(mkdtemp(fx.dir) != NULL, "mkdtemp: %s", strerror(errno));
	fx.ring = fx_ring("keys", "k1 " HEX32 "\n");
}

/* The same and a real LMDB store in it. */
static void
fx_begin(void)
{
	char spec[300], err[512] = "";

	fx_begin_keys();
	snprintf(spec, sizeof(spec), "lmdb:%s/db", fx.dir);
	fx.st = bw_store_open(spec, NULL, err, sizeof(err));
	ck_assert_msg(fx.st != NULL, "open %s: %s", spec, err);
}

static void
fx_end(void)
{
	bw_keyring_free(fx.ring);
	bw_store_close(fx.st);
	nftw(fx.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
put(bw_tbl t, const char *key, const char *json)
{
	bw_store_err e = bw_store_put(fx.st, t, key, json);

	ck_assert_msg(e == BW_STORE_OK, "put %s: %s", key, bw_store_strerror(e));
}

/* The value of a record, or NULL; free it. */
static char *
get(bw_tbl t, const char *key)
{
	char *v = NULL;
	bw_store_err e = bw_store_get(fx.st, t, key, &v);

	ck_assert_msg(e == BW_STORE_OK || e == BW_STORE_NOTFOUND, "get %s: %s", key,
	    bw_store_strerror(e));
	return v;
}

/* ---------------------------------------------------------------- normalisation */

enum { FC = 1, FP = 2, WILD = 4 };

static const struct norm_case {
	const char *in;
	int flags;
	const char *want; /* NULL: refused */
	const char *err;  /* substring of the reason when refused */
} norm_cases[] = {
	{ "bob@example.com", 0, "bob@example.com", NULL },
	{ "Bob@Example.COM", 0, "Bob@example.com", NULL },
	{ "Bob@Example.COM", FC, "bob@example.com", NULL },
	{ "<bob@example.com>", 0, "bob@example.com", NULL },
	{ "  < bob@example.com >\r\n", 0, "bob@example.com", NULL },
	{ "bob@example.com.", 0, "bob@example.com", NULL },
	{ "bob@bücher.example", 0, "bob@xn--bcher-kva.example", NULL },
	{ "bob@BÜCHER.Example.", 0, "bob@xn--bcher-kva.example", NULL },
	{ "bob@XN--BCHER-KVA.example", 0, "bob@xn--bcher-kva.example", NULL },
	{ "bob@straße.de", 0, "bob@xn--strae-oqa.de", NULL }, /* non-transitional */
	{ "bob@例え.テスト", 0, "bob@xn--r8jz45g.xn--zckzah", NULL },
	{ "bob@ａｂｃ.example", 0, "bob@abc.example", NULL }, /* UTS#46 width mapping */
	{ "bob+news@example.com", 0, "bob+news@example.com", NULL },
	{ "bob+news@example.com", FP, "bob@example.com", NULL },
	{ "bob+news+x@example.com", FP, "bob@example.com", NULL },
	{ "Bob+News@example.com", FP | FC, "bob@example.com", NULL },
	{ "+tag@example.com", FP, "+tag@example.com", NULL },
	{ "*+tag@example.com", FP, "*+tag@example.com", NULL },
	{ "*+tag@example.com", FP | WILD, "*+tag@example.com", NULL },
	{ "bob.smith@example.com", FP | FC, "bob.smith@example.com", NULL },
	{ "\"bob\"@example.com", 0, "bob@example.com", NULL },
	{ "\"Bob+x\"@example.com", FP | FC, "bob@example.com", NULL },
	{ "\"a\\b\"@example.com", 0, "ab@example.com", NULL },
	{ "\"Bob Smith\"@example.com", FP | FC, "\"Bob Smith\"@example.com", NULL },
	{ "\"bob+x y\"@example.com", FP, "\"bob+x y\"@example.com", NULL },
	{ "\"a\\\"b\"@example.com", 0, "\"a\\\"b\"@example.com", NULL },
	{ "\"a@b\"@example.com", 0, "\"a@b\"@example.com", NULL },
	{ "\"a..b\"@example.com", 0, "a..b@example.com", NULL },
	{ "a..b@example.com", 0, "a..b@example.com", NULL },
	{ "José@example.com", 0, "José@example.com", NULL },
	{ "bob@[192.0.2.1]", 0, "bob@[192.0.2.1]", NULL },
	{ "bob@[IPv6:2001:DB8::1]", 0, "bob@[ipv6:2001:db8::1]", NULL },
	{ "*@Example.com", WILD, "*@example.com", NULL },
	{ "*@example.com", FP | FC, NULL, "domain-wide" },
	{ "", 0, NULL, "empty" },
	{ "   ", 0, NULL, "empty" },
	{ "<>", 0, NULL, "empty" },
	{ "bob", 0, NULL, "no @" },
	{ "bob.example.com", 0, NULL, "no @" },
	{ "bob@x@example.com", 0, NULL, "more than one @" },
	{ "\"bob\"@x@example.com", 0, NULL, "more than one @" },
	{ "@example.com", 0, NULL, "empty local part" },
	{ "\"\"@example.com", 0, NULL, "empty local part" },
	{ "bob@", 0, NULL, "empty domain" },
	{ "bob@.", 0, NULL, "empty domain" },
	{ "bob smith@example.com", 0, NULL, "space" },
	{ "bob@exa mple.com", 0, NULL, "space" },
	{ "Bob <bob@example.com>", 0, NULL, NULL },
	{ "bob\x01@example.com", 0, NULL, "control" },
	{ "\"bob\tx\"@example.com", 0, NULL, "control" },
	{ "bob@example.com\x7f", 0, NULL, "control" },
	{ "bob(x)@example.com", 0, NULL, "character '('" },
	{ "bob@a..example", 0, NULL, "empty label" },
	{ "bob@example.com..", 0, NULL, "empty label" },
	{ "bob@exa!mple.com", 0, NULL, "bad domain" },
	{ "bob@☃.example", 0, NULL, "bad domain" },
	{ "bob@\xff.example", 0, NULL, "not UTF-8" },
	{ "bob\xc3@example.com", 0, NULL, "not UTF-8" },
	{ "<bob@example.com", 0, NULL, "angle" },
	{ "bob@example.com>", 0, NULL, "angle" },
	{ "\"bob@example.com", 0, NULL, "unterminated" },
	{ "\"bob\"x@example.com", 0, NULL, "after quoted" },
	{ "bob@[192.0.2.1", 0, NULL, "literal" },
};

START_TEST(test_normalise)
{
	const struct norm_case *c = &norm_cases[_i];
	bw_norm_opts o = { .fold_case = c->flags & FC, .fold_plus = c->flags & FP };
	char out[BW_ADDR_MAX + 1], err[200] = "";
	bool ok = bw_addr_normalise(c->in, &o, c->flags & WILD, out, sizeof(out), err, sizeof(err));

	if (c->want != NULL) {
		ck_assert_msg(ok, "'%s': refused: %s", c->in, err);
		ck_assert_str_eq(out, c->want);
	} else {
		ck_assert_msg(!ok, "'%s': accepted as '%s'", c->in, out);
		ck_assert_msg(err[0] != '\0', "'%s': no reason", c->in);
		if (c->err != NULL)
			ck_assert_msg(strstr(err, c->err) != NULL, "'%s': reason '%s', want '%s'", c->in,
			    err, c->err);
		ck_assert_str_eq(out, "");
	}
}
END_TEST

START_TEST(test_normalise_lengths)
{
	char in[1200], out[BW_ADDR_MAX + 1], err[200];
	char label[70];

	/* local part: 128 octets accepted (VERP), 129 refused */
	memset(in, 'a', 128);
	strcpy(in + 128, "@example.com");
	ck_assert_msg(bw_addr_normalise(in, NULL, false, out, sizeof(out), err, sizeof(err)), "%s", err);
	ck_assert_uint_eq(strlen(out), 128 + 12);
	memset(in, 'a', 129);
	strcpy(in + 129, "@example.com");
	ck_assert(!bw_addr_normalise(in, NULL, false, out, sizeof(out), err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "local part too long"));

	/* a label of 63 octets accepted, 64 refused */
	memset(label, 'b', 63);
	label[63] = '\0';
	snprintf(in, sizeof(in), "bob@%s.example", label);
	ck_assert(bw_addr_normalise(in, NULL, false, out, sizeof(out), err, sizeof(err)));
	snprintf(in, sizeof(in), "bob@%sb.example", label);
	ck_assert(!bw_addr_normalise(in, NULL, false, out, sizeof(out), err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "label"));

	/* 128 + @ + 4 labels of 63 (255 with dots): over BW_ADDR_MAX */
	memset(in, 'a', 128);
	snprintf(in + 128, sizeof(in) - 128, "@%s.%s.%s.%.59s", label, label, label, label);
	ck_assert(!bw_addr_normalise(in, NULL, false, out, sizeof(out), err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "too long"));

	/* longer than the input bound */
	memset(in, 'a', 1100);
	strcpy(in + 1100, "@example.com");
	ck_assert(!bw_addr_normalise(in, NULL, false, out, sizeof(out), err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "too long"));

	/* a result that does not fit the caller's buffer */
	ck_assert(!bw_addr_normalise("bob@example.com", NULL, false, out, 10, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "too long"));
	ck_assert(bw_addr_normalise("bob@example.com", NULL, false, out, 16, err, sizeof(err)));
	ck_assert(!bw_addr_normalise("bob@example.com", NULL, false, out, 15, err, sizeof(err)));
	/* err may be omitted */
	ck_assert(!bw_addr_normalise("bob", NULL, false, out, sizeof(out), NULL, 0));
}
END_TEST

/* Normalising twice changes nothing. */
START_TEST(test_normalise_idempotent)
{
	for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
		const struct norm_case *c = &norm_cases[i];
		bw_norm_opts o = { .fold_case = c->flags & FC, .fold_plus = c->flags & FP };
		char a[BW_ADDR_MAX + 1], b[BW_ADDR_MAX + 1], err[200];

		if (c->want == NULL)
			continue;
		ck_assert(bw_addr_normalise(c->in, &o, c->flags & WILD, a, sizeof(a), err, sizeof(err)));
		ck_assert_msg(bw_addr_normalise(a, &o, c->flags & WILD, b, sizeof(b), err, sizeof(err)),
		    "'%s': %s", a, err);
		ck_assert_str_eq(a, b);
	}
}
END_TEST

/* ---------------------------------------------------------------- names and keys */

START_TEST(test_sender_ids)
{
	char s129[130];

	ck_assert(bw_sender_id_ok("acme"));
	ck_assert(bw_sender_id_ok("acme.example/news-1"));
	ck_assert(bw_sender_id_ok("a"));
	ck_assert(!bw_sender_id_ok(""));
	ck_assert(!bw_sender_id_ok(NULL));
	ck_assert(!bw_sender_id_ok("*"));
	ck_assert(!bw_sender_id_ok("ac me"));
	ck_assert(!bw_sender_id_ok("acme\t"));
	ck_assert(!bw_sender_id_ok("acmé"));
	memset(s129, 'x', 128);
	s129[128] = '\0';
	ck_assert(bw_sender_id_ok(s129));
	s129[128] = 'x';
	s129[129] = '\0';
	ck_assert(!bw_sender_id_ok(s129));
}
END_TEST

START_TEST(test_names)
{
	unsigned mask = 99;
	char err[200] = "";

	for (int m = 0; m < BW_CM__N; m++)
		ck_assert_int_eq(bw_consent_method_parse(bw_consent_method_name(m)), m);
	for (int r = 0; r < BW_SR__N; r++)
		ck_assert_int_eq(bw_supp_reason_parse(bw_supp_reason_name(r)), r);
	ck_assert_str_eq(bw_consent_method_name(BW_CM_DOUBLE_OPT_IN), "double-opt-in");
	ck_assert_str_eq(bw_consent_method_name(BW_CM_API), "api");
	ck_assert_ptr_null(bw_consent_method_name(BW_CM__N));
	ck_assert_str_eq(bw_supp_reason_name(BW_SR_BOUNCE), "bounce");
	ck_assert_int_eq(bw_consent_method_parse("Double-Opt-In"), BW_CM_DOUBLE_OPT_IN);
	ck_assert_int_eq(bw_consent_method_parse("opt-in"), -1);
	ck_assert_int_eq(bw_supp_reason_parse("spam"), -1);
	ck_assert_str_eq(bw_consent_result_name(BW_CONSENT_SUPPRESSED), "suppressed");
	ck_assert_str_eq(bw_token_status_name(BW_TOKEN_FORGED), "forged");

	ck_assert(bw_consent_methods_parse("double-opt-in,single-opt-in", &mask, err, sizeof(err)));
	ck_assert_uint_eq(mask, 1u << BW_CM_DOUBLE_OPT_IN | 1u << BW_CM_SINGLE_OPT_IN);
	ck_assert(bw_consent_methods_parse(" api ,  import,", &mask, err, sizeof(err)));
	ck_assert_uint_eq(mask, 1u << BW_CM_API | 1u << BW_CM_IMPORT);
	ck_assert(bw_consent_methods_parse("", &mask, err, sizeof(err)));
	ck_assert_uint_eq(mask, 0);
	mask = 7;
	ck_assert(!bw_consent_methods_parse("api,opt-in", &mask, err, sizeof(err)));
	ck_assert_uint_eq(mask, 7);
	ck_assert_ptr_nonnull(strstr(err, "'opt-in'"));
	ck_assert(!bw_consent_methods_parse("double-opt-in-and-a-very-long-word-indeed", &mask, err,
	    sizeof(err)));
}
END_TEST

START_TEST(test_keys)
{
	char key[BW_STORE_KEY_MAX + 1], s[BW_SENDER_MAX + 1], r[BW_ADDR_MAX + 1];
	char hash[BW_ADDR_HASH_LEN + 1];

	ck_assert(bw_consent_key("acme", "bob@example.com", key, sizeof(key)));
	ck_assert_str_eq(key, "acme bob@example.com");
	ck_assert(bw_consent_key_split(key, s, sizeof(s), r, sizeof(r)));
	ck_assert_str_eq(s, "acme");
	ck_assert_str_eq(r, "bob@example.com");
	ck_assert(bw_consent_key("*", "\"bob smith\"@example.com", key, sizeof(key)));
	ck_assert(bw_consent_key_split(key, s, sizeof(s), r, sizeof(r)));
	ck_assert_str_eq(s, "*");
	ck_assert_str_eq(r, "\"bob smith\"@example.com");
	bw_addr_hash(fx.ring, "bob@example.com", hash);
	ck_assert(bw_consent_key("acme", hash, key, sizeof(key)));
	ck_assert(bw_consent_key_split(key, s, sizeof(s), r, sizeof(r)));
	ck_assert_str_eq(r, hash);

	ck_assert(!bw_consent_key("ac me", "bob@example.com", key, sizeof(key)));
	ck_assert(!bw_consent_key("acme", "bob", key, sizeof(key)));
	ck_assert(!bw_consent_key("acme", "", key, sizeof(key)));
	ck_assert(!bw_consent_key("acme", "#abc", key, sizeof(key)));
	ck_assert(!bw_consent_key("acme", "bob@example.com", key, 20));
	ck_assert(!bw_consent_key_split("acme", s, sizeof(s), r, sizeof(r)));
	ck_assert(!bw_consent_key_split(" bob@example.com", s, sizeof(s), r, sizeof(r)));
	ck_assert(!bw_consent_key_split("acme ", s, sizeof(s), r, sizeof(r)));
	ck_assert(!bw_consent_key_split("acme bob", s, sizeof(s), r, sizeof(r)));
	ck_assert(!bw_consent_key_split("acme bob@example.com", s, 4, r, sizeof(r)));
	ck_assert_str_eq(s, "");
}
END_TEST

/* ---------------------------------------------------------------- JSON */

START_TEST(test_json_consent_roundtrip)
{
	bw_consent c, d;
	char err[200] = "", *js, *js2;

	memset(&c, 0, sizeof(c));
	c.method = BW_CM_DOUBLE_OPT_IN;
	c.granted_at = T("2025-01-02T03:04:05Z");
	c.confirmed_at = T("2025-01-02T03:10:00Z");
	c.expires_at = T("2030-01-01T00:00:00Z");
	c.withdrawn_at = T("2026-02-01T00:00:00Z");
	c.recorded_at = T("2025-01-02T03:10:01Z");
	c.source = strdup("https://acme.example/signup?list=news");
	c.source_ip = strdup("2001:db8::7");
	c.confirm_ip = strdup("192.0.2.7");
	c.text = strdup("v3 \"you agree\" — ünïcode\n");
	c.evidence = strdup("acme-crm:4711");
	js = bw_consent_to_json(&c);
	ck_assert_ptr_nonnull(js);
	ck_assert_ptr_null(strstr(js, "sender"));
	ck_assert_ptr_nonnull(strstr(js, "\"granted_at\":\"2025-01-02T03:04:05Z\""));
	ck_assert_msg(bw_consent_from_json("acme bob@example.com", js, &d, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(d.sender, "acme");
	ck_assert_str_eq(d.rcpt, "bob@example.com");
	ck_assert_int_eq(d.method, c.method);
	ck_assert_int_eq(d.granted_at, c.granted_at);
	ck_assert_int_eq(d.confirmed_at, c.confirmed_at);
	ck_assert_int_eq(d.expires_at, c.expires_at);
	ck_assert_int_eq(d.withdrawn_at, c.withdrawn_at);
	ck_assert_int_eq(d.recorded_at, c.recorded_at);
	ck_assert_str_eq(d.source, c.source);
	ck_assert_str_eq(d.source_ip, c.source_ip);
	ck_assert_str_eq(d.confirm_ip, c.confirm_ip);
	ck_assert_str_eq(d.text, c.text);
	ck_assert_str_eq(d.evidence, c.evidence);
	js2 = bw_consent_to_json(&d);
	ck_assert_str_eq(js, js2);
	free(js);
	free(js2);
	bw_consent_clear(&d);

	/* optional fields are left out */
	free(c.source_ip);
	free(c.confirm_ip);
	free(c.text);
	free(c.evidence);
	free(c.source);
	c.source = c.source_ip = c.confirm_ip = c.text = c.evidence = NULL;
	c.confirmed_at = c.expires_at = c.withdrawn_at = c.recorded_at = 0;
	c.method = BW_CM_IMPORT;
	js = bw_consent_to_json(&c);
	ck_assert_str_eq(js, "{\"granted_at\":\"2025-01-02T03:04:05Z\",\"method\":\"import\"}");
	free(js);

	/* a string that is not UTF-8 cannot be stored */
	c.source = strdup("\xff\xfe");
	ck_assert_ptr_null(bw_consent_to_json(&c));
	bw_consent_clear(&c);
	ck_assert_ptr_null(c.source);
	ck_assert_int_eq(c.granted_at, 0);

	/* without a key, sender and rcpt stay empty */
	ck_assert(bw_consent_from_json(NULL, "{\"method\":\"api\",\"granted_at\":\"2024-05-01T14:00:00+02:00\","
	    "\"source\":null}", &d, err, sizeof(err)));
	ck_assert_str_eq(d.sender, "");
	ck_assert_int_eq(d.method, BW_CM_API);
	ck_assert_int_eq(d.granted_at, 1714564800);
	ck_assert_ptr_null(d.source);
	bw_consent_clear(&d);
}
END_TEST

START_TEST(test_json_suppression_roundtrip)
{
	bw_suppression s, d;
	char err[200] = "", *js;

	memset(&s, 0, sizeof(s));
	s.reason = BW_SR_COMPLAINT;
	s.at = T("2026-01-02T03:04:05Z");
	js = bw_suppression_to_json(&s);
	ck_assert_str_eq(js, "{\"reason\":\"complaint\",\"at\":\"2026-01-02T03:04:05Z\"}");
	free(js);
	s.source = strdup("arf:1234@reports.example");
	s.note = strdup("via FBL");
	js = bw_suppression_to_json(&s);
	ck_assert_msg(bw_suppression_from_json("* bob@example.com", js, &d, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(d.sender, "*");
	ck_assert_str_eq(d.rcpt, "bob@example.com");
	ck_assert_int_eq(d.reason, BW_SR_COMPLAINT);
	ck_assert_int_eq(d.at, s.at);
	ck_assert_str_eq(d.source, s.source);
	ck_assert_str_eq(d.note, s.note);
	free(js);
	bw_suppression_clear(&d);
	bw_suppression_clear(&s);
	ck_assert_ptr_null(s.note);
}
END_TEST

static const struct json_bad {
	int supp; /* 0: consent, 1: suppression */
	const char *key, *json, *err;
} json_bad[] = {
	{ 0, "acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"colour\":\"red\"}",
	  "unknown field 'colour'" },
	{ 0, "acme bob@example.com", "{\"granted_at\":1735689600,\"method\":\"api\"}",
	  "field 'granted_at': expected a string" },
	{ 0, "acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":[\"api\"]}",
	  "field 'method': expected a string" },
	{ 0, "acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"source\":7}",
	  "field 'source': expected a string" },
	{ 0, "acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"expires_at\":true}",
	  "field 'expires_at': expected a string" },
	{ 0, "acme bob@example.com", "{\"method\":\"api\"}", "missing field 'granted_at'" },
	{ 0, "acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\"}", "missing field 'method'" },
	{ 0, "acme bob@example.com", "{\"granted_at\":null,\"method\":\"api\"}", "'granted_at'" },
	{ 0, "acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"opt-in\"}",
	  "unknown method" },
	{ 0, "acme bob@example.com", "{\"granted_at\":\"2025-01-01\",\"method\":\"api\"}",
	  "field 'granted_at': not an RFC 3339 time" },
	{ 0, "acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"method\":\"api\"}",
	  "bad JSON" },
	{ 0, "acme bob@example.com", "[\"api\"]", "not a JSON object" },
	{ 0, "acme bob@example.com", "{\"granted_at\":", "bad JSON" },
	{ 0, "acme bob@example.com", "", "bad JSON" },
	{ 0, "acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"text\":\"a\\u0000b\"}",
	  "bad JSON" },
	{ 0, "acmebob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\"}", "bad key" },
	{ 0, "* bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\"}", "sender id" },
	{ 1, "acme bob@example.com", "{\"reason\":\"unsubscribe\"}", "missing field 'at'" },
	{ 1, "acme bob@example.com", "{\"at\":\"2025-01-01T00:00:00Z\"}", "missing field 'reason'" },
	{ 1, "acme bob@example.com", "{\"reason\":\"spam\",\"at\":\"2025-01-01T00:00:00Z\"}", "unknown reason" },
	{ 1, "acme bob@example.com", "{\"reason\":\"admin\",\"at\":\"2025-01-01T00:00:00Z\",\"granted_at\":\"x\"}",
	  "unknown field 'granted_at'" },
	{ 1, "acme bob@example.com", "{\"reason\":\"admin\",\"at\":\"2025-01-01T00:00:00Z\",\"note\":{}}",
	  "field 'note': expected a string" },
	{ 1, "acme #0123", "{\"reason\":\"admin\",\"at\":\"2025-01-01T00:00:00Z\"}", "bad key" },
};

START_TEST(test_json_strict)
{
	const struct json_bad *b = &json_bad[_i];
	char err[300] = "";
	bool ok;

	if (b->supp) {
		bw_suppression s;

		ok = bw_suppression_from_json(b->key, b->json, &s, err, sizeof(err));
		ck_assert_ptr_null(s.source);
		ck_assert_ptr_null(s.note);
	} else {
		bw_consent c;

		ok = bw_consent_from_json(b->key, b->json, &c, err, sizeof(err));
		ck_assert_ptr_null(c.source);
	}
	ck_assert_msg(!ok, "accepted: %s", b->json);
	ck_assert_msg(strstr(err, b->err) != NULL, "%s: reason '%s', want '%s'", b->json, err, b->err);
}
END_TEST

/*
 * Records without escapes are read by a short path, others by the JSON
 * library. Each text below is read as it is and with the first letter of
 * its first name written as a \u escape (the same JSON, which only the
 * library reads): both readings must agree on the outcome and the record.
 */
static const char *const json_same[] = {
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\"}",
	" {\n\t\"granted_at\" : \"2025-01-01T00:00:00+02:00\" ,\r\n \"method\":\"Double-Opt-In\" } \n",
	"{\"method\":\"single-opt-in\",\"granted_at\":\"2024-02-29T23:59:60Z\",\"source\":\"https://a.example/f?x=1\","
	    "\"source_ip\":\"192.0.2.1\",\"confirmed_at\":\"2024-03-01T00:00:00Z\",\"confirm_ip\":\"2001:db8::1\","
	    "\"text\":\"v2\",\"evidence\":\"crm:1\",\"expires_at\":\"2030-01-01T00:00:00Z\","
	    "\"withdrawn_at\":\"2029-01-01T00:00:00Z\",\"recorded_at\":\"2024-03-01T00:00:01Z\"}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"source\":null,\"text\":null}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"source\":\"\"}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"source\":null,\"source\":\"x\"}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"source\":\"x\",\"source\":null}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"text\":\"caf\xc3\xa9\"}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"text\":\"caf\xe9\"}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"text\":\"a\tb\"}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\"}x",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\" \"text\":\"a\"}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"text\":nul}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"text\":nullx}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"text\":\"a}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"text\" \"a\"}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\"",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"\":\"a\"}",
	"{\"granted_at\":\"2025-13-01T00:00:00Z\",\"method\":\"api\"}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"API \"}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"expires_at\":null}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":null}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"granted\":\"x\"}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"granted_at2\":\"x\"}",
	"{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"recorded_at\":"
	    "\"2025-01-01T00:00:00.123456789012345678901234567890123456789012345678901234567890Z\"}",
	"{\"reason\":\"unsubscribe\",\"at\":\"2025-01-01T00:00:00Z\",\"source\":\"list-unsubscribe\"}",
	"{\"reason\":\"Complaint\",\"at\":\"2025-01-01T00:00:00Z\",\"note\":null}",
	"{\"reason\":\"complaint\",\"at\":\"2025-01-01T00:00:00Z\",\"note\":\"x\",\"note\":\"y\"}",
	"{\"reason\":\"spam\",\"at\":\"2025-01-01T00:00:00Z\"}",
};

/* text with the first letter of its first name as "\u00XX"; NULL when there is no such name */
static char *
json_escaped(const char *js)
{
	const char *q = strchr(js, '"');
	char *out;
	size_t at;

	if (q == NULL || q[1] == '"' || q[1] == 0 || (unsigned char)q[1] >= 0x80 || q[1] == '\\')
		return NULL;
	at = (size_t)(q + 1 - js);
	out = malloc(strlen(js) + 8);
	ck_assert_ptr_nonnull(out);
	memcpy(out, js, at);
	sprintf(out + at, "\\u%04x%s", (unsigned char)js[at], js + at + 1);
	return out;
}

static bool
str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

START_TEST(test_json_fast_same)
{
	const char *js = json_same[_i];
	char *esc = json_escaped(js), err1[300] = "", err2[300] = "";
	bool ok1, ok2;

	ck_assert_ptr_nonnull(esc);
	if (strstr(js, "\"reason\"") != NULL) {
		bw_suppression a, b;

		ok1 = bw_suppression_from_json("acme bob@example.com", js, &a, err1, sizeof(err1));
		ok2 = bw_suppression_from_json("acme bob@example.com", esc, &b, err2, sizeof(err2));
		ck_assert_msg(ok1 == ok2, "%s: %d (%s) against %d (%s)", js, ok1, err1, ok2, err2);
		if (ok1) {
			ck_assert_int_eq(a.reason, b.reason);
			ck_assert_int_eq(a.at, b.at);
			ck_assert(str_same(a.source, b.source));
			ck_assert(str_same(a.note, b.note));
			bw_suppression_clear(&a);
			bw_suppression_clear(&b);
		}
	} else {
		bw_consent a, b;

		ok1 = bw_consent_from_json("acme bob@example.com", js, &a, err1, sizeof(err1));
		ok2 = bw_consent_from_json("acme bob@example.com", esc, &b, err2, sizeof(err2));
		ck_assert_msg(ok1 == ok2, "%s: %d (%s) against %d (%s)", js, ok1, err1, ok2, err2);
		if (ok1) {
			ck_assert_int_eq(a.method, b.method);
			ck_assert_int_eq(a.granted_at, b.granted_at);
			ck_assert_int_eq(a.confirmed_at, b.confirmed_at);
			ck_assert_int_eq(a.expires_at, b.expires_at);
			ck_assert_int_eq(a.withdrawn_at, b.withdrawn_at);
			ck_assert_int_eq(a.recorded_at, b.recorded_at);
			ck_assert(str_same(a.source, b.source));
			ck_assert(str_same(a.source_ip, b.source_ip));
			ck_assert(str_same(a.confirm_ip, b.confirm_ip));
			ck_assert(str_same(a.text, b.text));
			ck_assert(str_same(a.evidence, b.evidence));
			bw_consent_clear(&a);
			bw_consent_clear(&b);
		} else {
			ck_assert_ptr_null(a.source);
			ck_assert_ptr_null(a.text);
		}
	}
	free(esc);
}
END_TEST

START_TEST(test_json_limits)
{
	char *big = malloc(BW_CFIELD_MAX + 200), err[200] = "";
	bw_consent c;
	int n;

	n = snprintf(big, 100, "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\",\"evidence\":\"");
	memset(big + n, 'e', BW_CFIELD_MAX);
	strcpy(big + n + BW_CFIELD_MAX, "\"}");
	ck_assert_msg(bw_consent_from_json("acme bob@example.com", big, &c, err, sizeof(err)), "%s", err);
	ck_assert_uint_eq(strlen(c.evidence), BW_CFIELD_MAX);
	bw_consent_clear(&c);
	strcpy(big + n + BW_CFIELD_MAX, "e\"}");
	ck_assert(!bw_consent_from_json("acme bob@example.com", big, &c, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "'evidence': longer than"));
	free(big);

	big = malloc(BW_STORE_VAL_MAX + 10);
	memset(big, ' ', BW_STORE_VAL_MAX + 1);
	big[0] = '{';
	strcpy(big + BW_STORE_VAL_MAX, "}");
	ck_assert(!bw_consent_from_json("acme bob@example.com", big, &c, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "longer than"));
	free(big);
}
END_TEST

/* ---------------------------------------------------------------- times */

static const struct time_case {
	const char *s;
	bool ok;
	int64_t t;
} time_cases[] = {
	{ "2024-05-01T12:00:00Z", true, 1714564800 },
	{ "2024-05-01t12:00:00z", true, 1714564800 },
	{ "2024-05-01 12:00:00Z", true, 1714564800 },
	{ "2024-05-01T14:00:00+02:00", true, 1714564800 },
	{ "2024-05-01T07:00:00-05:00", true, 1714564800 },
	{ "2024-05-01T12:00:00-00:00", true, 1714564800 },
	{ "2024-05-02T01:30:00+13:30", true, 1714564800 },
	{ "2024-05-01T12:00:00.999Z", true, 1714564800 },
	{ "2024-05-01T12:00:00.123456789+00:00", true, 1714564800 },
	{ "1970-01-01T00:00:00Z", true, 0 },
	{ "1969-12-31T23:59:59Z", true, -1 },
	{ "2024-02-29T00:00:00Z", true, 1709164800 },
	{ "2000-02-29T00:00:00Z", true, 951782400 },
	{ "9999-12-31T23:59:59Z", true, 253402300799LL },
	{ "2016-12-31T23:59:60Z", true, 1483228800 }, /* leap second: next minute */
	{ "2023-02-29T00:00:00Z", false, 0 },
	{ "1900-02-29T00:00:00Z", false, 0 },
	{ "2024-04-31T00:00:00Z", false, 0 },
	{ "2024-13-01T00:00:00Z", false, 0 },
	{ "2024-00-01T00:00:00Z", false, 0 },
	{ "2024-05-00T00:00:00Z", false, 0 },
	{ "2024-05-01T24:00:00Z", false, 0 },
	{ "2024-05-01T12:60:00Z", false, 0 },
	{ "2024-05-01T12:00:61Z", false, 0 },
	{ "2024-05-01T12:00:00", false, 0 },
	{ "2024-05-01T12:00:00+0200", false, 0 },
	{ "2024-05-01T12:00:00+02", false, 0 },
	{ "2024-05-01T12:00:00+02:0", false, 0 },
	{ "2024-05-01T12:00:00+24:00", false, 0 },
	{ "2024-05-01T12:00:00.Z", false, 0 },
	{ "2024-05-01T12:00:00ZZ", false, 0 },
	{ "2024-05-01T12:00:00Z ", false, 0 },
	{ "2024-05-01X12:00:00Z", false, 0 },
	{ "2024-5-01T12:00:00Z", false, 0 },
	{ "24-05-01T12:00:00Z", false, 0 },
	{ "2024-05-01", false, 0 },
	{ "", false, 0 },
	{ "1714564800", false, 0 },
};

START_TEST(test_time_parse)
{
	const struct time_case *c = &time_cases[_i];
	int64_t t = 42;
	bool ok = bw_time_parse(c->s, &t);

	ck_assert_msg(ok == c->ok, "'%s': %s", c->s, ok ? "accepted" : "refused");
	if (ok)
		ck_assert_msg(t == c->t, "'%s': %lld, want %lld", c->s, (long long)t, (long long)c->t);
}
END_TEST

START_TEST(test_time_fmt)
{
	static const int64_t ts[] = { 0, -1, 1, 1714564800, 951782400, 253402300799LL,
		-62167219200LL, 4102444800LL };
	char buf[32];
	int64_t t;

	bw_time_fmt(1714564800, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2024-05-01T12:00:00Z");
	bw_time_fmt(-1, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1969-12-31T23:59:59Z");
	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		bw_time_fmt(ts[i], buf, sizeof(buf));
		ck_assert_msg(bw_time_parse(buf, &t) && t == ts[i], "%lld -> %s", (long long)ts[i], buf);
	}
	/* outside what RFC 3339 can write: clamped */
	bw_time_fmt(INT64_MAX, buf, sizeof(buf));
	ck_assert_str_eq(buf, "9999-12-31T23:59:59Z");
	bw_time_fmt(INT64_MIN, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0000-01-01T00:00:00Z");
	/* a short buffer is cut, not overrun */
	memset(buf, 'x', sizeof(buf));
	bw_time_fmt(0, buf, 5);
	ck_assert_str_eq(buf, "1970");
}
END_TEST

/* ---------------------------------------------------------------- keyring */

START_TEST(test_keyring_good)
{
	static const char *const files[] = {
		"k1 " HEX32 "\n",
		"k1 " B6432 "\n",
		"k1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",        /* no padding */
		"# bulkwarden token keys\n\n   \nk1\t" HEX32 "   # newest first\r\nold " HEXB "\n",
		"k1 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", /* no newline */
	};
	char want[BW_ADDR_HASH_LEN + 1], got[BW_ADDR_HASH_LEN + 1];

	bw_addr_hash(fx.ring, "bob@example.com", want);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		bw_keyring *k = fx_ring("good", files[i]);

		bw_addr_hash(k, "bob@example.com", got);
		ck_assert_msg(strcmp(got, want) == 0, "file %zu: another secret", i);
		bw_keyring_free(k);
	}
	/* 0640 (the daemon's group may read it) is fine */
	{
		char err[300] = "";
		bw_keyring *k = bw_keyring_load(fx_file("g", "k1 " HEX32 "\n", 0640), err, sizeof(err));

		ck_assert_msg(k != NULL, "%s", err);
		bw_keyring_free(k);
	}
	bw_keyring_free(NULL);
}
END_TEST

static const struct key_bad {
	const char *text;
	mode_t mode;
	const char *err;
} key_bad[] = {
	{ "", 0600, "no key" },
	{ "# only a comment\n\n", 0600, "no key" },
	{ "k1 " HEX32 "\n", 0644, "unsafe permissions 0644" },
	{ "k1 " HEX32 "\n", 0604, "unsafe permissions" },
	{ "k1 " HEX32 "\n", 0660, "unsafe permissions" },
	{ "k1 " HEX32 "\n", 0602, "unsafe permissions" },
	{ "k1\n", 0600, ":1: no secret" },
	{ "k1 # " HEX32 "\n", 0600, ":1: no secret" },
	{ "# keys\nkey-1 " HEX32 "\n", 0600, ":2: bad key id 'key-1'" },
	{ "toolongid " HEX32 "\n", 0600, ":1: bad key id" },
	{ "k1 00010203\n", 0600, ":1: the secret is 4 bytes; at least 32" },
	{ "k1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n", 0600, "31 bytes" },
	{ "k1 not*base64*at*all*not*base64*at*all*not*base64*at*all\n", 0600, "neither hex nor base64" },
	{ "k1 " HEX32 " extra\n", 0600, ":1: text after the secret" },
	{ "k1 " HEX32 "\nk2 " HEXB "\nk1 " HEXC "\n", 0600, ":3: key id 'k1' given twice" },
};

START_TEST(test_keyring_bad)
{
	const struct key_bad *b = &key_bad[_i];
	char err[400] = "";
	const char *path = fx_file("bad", b->text, b->mode);
	bw_keyring *k = bw_keyring_load(path, err, sizeof(err));

	ck_assert_msg(k == NULL, "accepted: %s", b->text);
	ck_assert_msg(strstr(err, b->err) != NULL, "reason '%s', want '%s'", err, b->err);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "reason '%s' does not name the file", err);
}
END_TEST

START_TEST(test_keyring_limits)
{
	char *text = malloc(20 * 80), err[400] = "", *p;
	bw_keyring *k;

	/* 16 keys are fine, 17 are not */
	p = text;
	for (int i = 0; i < 16; i++)
		p += sprintf(p, "k%d %s\n", i, HEX32);
	k = bw_keyring_load(fx_file("many", text, 0600), err, sizeof(err));
	ck_assert_msg(k != NULL, "%s", err);
	bw_keyring_free(k);
	sprintf(p, "k16 %s\n", HEX32);
	ck_assert_ptr_null(bw_keyring_load(fx_file("many", text, 0600), err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, ":17: more than 16 keys"));
	free(text);

	/* a very long line */
	text = malloc(5000);
	memset(text, 'a', 4999);
	memcpy(text, "k1 ", 3);
	text[4999] = '\0';
	ck_assert_ptr_null(bw_keyring_load(fx_file("long", text, 0600), err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, ":1: line longer than"));
	free(text);

	/* missing, not a regular file */
	ck_assert_ptr_null(bw_keyring_load("/nonexistent/bulkwarden.keys", err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/bulkwarden.keys: "));
	ck_assert_ptr_null(bw_keyring_load(fx.dir, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
}
END_TEST

/* ---------------------------------------------------------------- tokens */

static const int64_t NOW = 1772323200; /* 2026-03-01T00:00:00Z */

static bw_token_status
verify(const bw_keyring *k, const char *tok, int64_t now, int64_t max_age, char *s, char *r,
    int64_t *issued)
{
	static char s0[BW_SENDER_MAX + 1], r0[BW_ADDR_MAX + 1];
	int64_t i0;

	return bw_token_verify(k, tok, now, max_age, s ? s : s0, BW_SENDER_MAX + 1, r ? r : r0,
	    BW_ADDR_MAX + 1, issued ? issued : &i0);
}

START_TEST(test_token_roundtrip)
{
	char tok[BW_TOKEN_MAX], tok2[BW_TOKEN_MAX], up[BW_TOKEN_MAX];
	char s[BW_SENDER_MAX + 1], r[BW_ADDR_MAX + 1];
	int64_t issued = 0;

	ck_assert(bw_token_make(fx.ring, "acme", "Bob.Smith@example.com", NOW, tok, sizeof(tok)));
	for (const char *p = tok; *p; p++)
		ck_assert_msg((*p >= 'a' && *p <= 'z') || (*p >= '2' && *p <= '7'), "char '%c'", *p);
	ck_assert_int_eq(verify(fx.ring, tok, NOW, 30 * DAY, s, r, &issued), BW_TOKEN_OK);
	ck_assert_str_eq(s, "acme");
	ck_assert_str_eq(r, "Bob.Smith@example.com");
	ck_assert_int_eq(issued, NOW);

	/* deterministic: the same inputs make the same token, verified the same way twice */
	ck_assert(bw_token_make(fx.ring, "acme", "Bob.Smith@example.com", NOW, tok2, sizeof(tok2)));
	ck_assert_str_eq(tok, tok2);
	ck_assert_int_eq(verify(fx.ring, tok, NOW, 30 * DAY, NULL, NULL, NULL), BW_TOKEN_OK);
	ck_assert(bw_token_make(fx.ring, "acme", "Bob.Smith@example.com", NOW + 1, tok2, sizeof(tok2)));
	ck_assert_str_ne(tok, tok2);

	/* an MTA that upper-cases the local part does not break it */
	for (size_t i = 0; i <= strlen(tok); i++)
		up[i] = (char)(tok[i] >= 'a' && tok[i] <= 'z' ? tok[i] - 32 : tok[i]);
	ck_assert_int_eq(verify(fx.ring, up, NOW, 30 * DAY, s, r, NULL), BW_TOKEN_OK);
	ck_assert_str_eq(r, "Bob.Smith@example.com");

	/* a quoted local part and a long VERP-style address still fit */
	ck_assert(bw_token_make(fx.ring, "acme-news", "\"bob smith\"@xn--bcher-kva.example", 0, tok,
	    sizeof(tok)));
	ck_assert_int_eq(verify(fx.ring, tok, 100, 0, s, r, &issued), BW_TOKEN_OK);
	ck_assert_str_eq(r, "\"bob smith\"@xn--bcher-kva.example");
	ck_assert_int_eq(issued, 0);
}
END_TEST

START_TEST(test_token_refuses_to_make)
{
	char tok[BW_TOKEN_MAX], big[400];

	ck_assert(!bw_token_make(fx.ring, "*", "bob@example.com", NOW, tok, sizeof(tok)));
	ck_assert_str_eq(tok, "");
	ck_assert(!bw_token_make(fx.ring, "ac me", "bob@example.com", NOW, tok, sizeof(tok)));
	ck_assert(!bw_token_make(fx.ring, "acme", "bob", NOW, tok, sizeof(tok)));
	ck_assert(!bw_token_make(fx.ring, "acme", "bob@example.com", -1, tok, sizeof(tok)));
	ck_assert(!bw_token_make(fx.ring, "acme", "bob@example.com", (int64_t)1 << 40, tok, sizeof(tok)));
	ck_assert(bw_token_make(fx.ring, "acme", "bob@example.com", ((int64_t)1 << 40) - 1, tok,
	    sizeof(tok)));
	ck_assert(!bw_token_make(NULL, "acme", "bob@example.com", NOW, tok, sizeof(tok)));
	ck_assert(!bw_token_make(fx.ring, "acme", "bob@example.com", NOW, tok, 20));
	/* sender + rcpt too long for BW_TOKEN_MAX */
	memset(big, 'a', 300);
	strcpy(big + 300, "@example.com");
	ck_assert(!bw_token_make(fx.ring, "acme", big, NOW, tok, sizeof(tok)));
	strcpy(big + 240, "@example.com");
	ck_assert(bw_token_make(fx.ring, "acme", big, NOW, tok, sizeof(tok)));
	ck_assert_uint_lt(strlen(tok), BW_TOKEN_MAX);
	ck_assert_int_eq(verify(fx.ring, tok, NOW, 0, NULL, NULL, NULL), BW_TOKEN_OK);
}
END_TEST

/* Changing any one character to another symbol, cutting or extending the
 * token never yields OK. */
/* trace tokens: bound to sender, recipient and Message-ID; never an
 * unsubscribe token; a single change is refused */
START_TEST(test_trace_token)
{
	char tok[BW_TOKEN_MAX], t[BW_TOKEN_MAX], s[BW_SENDER_MAX + 1], r[BW_ADDR_MAX + 1];
	size_t n, refused = 0;

	ck_assert(bw_trace_make(fx.ring, "acme", "bob@example.com", "<a1@news.example>", NOW, tok,
	    sizeof(tok)));
	ck_assert_int_eq(bw_trace_verify(fx.ring, tok, " <a1@news.example> ", s, sizeof(s), r, sizeof(r)),
	    BW_TOKEN_OK);
	ck_assert_str_eq(s, "acme");
	ck_assert_str_eq(r, "bob@example.com");
	/* copied into another message: not ours */
	ck_assert_int_eq(bw_trace_verify(fx.ring, tok, "<a2@news.example>", s, sizeof(s), r, sizeof(r)),
	    BW_TOKEN_FORGED);
	ck_assert_str_eq(s, "");
	ck_assert_int_eq(bw_trace_verify(fx.ring, tok, NULL, s, sizeof(s), r, sizeof(r)), BW_TOKEN_FORGED);
	/* neither is ever taken for the other */
	ck_assert_int_eq(bw_token_verify(fx.ring, tok, NOW, 0, s, sizeof(s), r, sizeof(r), NULL),
	    BW_TOKEN_MALFORMED);
	ck_assert(bw_token_make(fx.ring, "acme", "bob@example.com", NOW, t, sizeof(t)));
	ck_assert_int_eq(bw_trace_verify(fx.ring, t, "<a1@news.example>", s, sizeof(s), r, sizeof(r)),
	    BW_TOKEN_MALFORMED);
	/* a message to several names no recipient */
	ck_assert(bw_trace_make(fx.ring, "acme", NULL, "<a1@news.example>", NOW, tok, sizeof(tok)));
	ck_assert_int_eq(bw_trace_verify(fx.ring, tok, "<a1@news.example>", s, sizeof(s), r, sizeof(r)),
	    BW_TOKEN_OK);
	ck_assert_str_eq(r, "*");
	/* no Message-ID, no token */
	ck_assert(!bw_trace_make(fx.ring, "acme", NULL, "", NOW, t, sizeof(t)));
	ck_assert(!bw_trace_make(fx.ring, "acme", NULL, "<>", NOW, t, sizeof(t)));
	/* every single change is refused */
	n = strlen(tok);
	for (size_t i = 0; i < n; i++) {
		strcpy(t, tok);
		t[i] = t[i] == 'a' ? 'b' : 'a';
		ck_assert_int_ne(bw_trace_verify(fx.ring, t, "<a1@news.example>", s, sizeof(s), r, sizeof(r)),
		    BW_TOKEN_OK);
		refused++;
	}
	ck_assert_uint_eq(refused, n);
}
END_TEST

START_TEST(test_token_forgery)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
	char tok[BW_TOKEN_MAX], t[BW_TOKEN_MAX + 2];
	size_t n, forged = 0;

	ck_assert(bw_token_make(fx.ring, "acme", "bob@example.com", NOW, tok, sizeof(tok)));
	n = strlen(tok);
	for (size_t i = 0; i < n; i++) {
		for (const char *a = alpha; *a; a++) {
			bw_token_status st;

			if (*a == tok[i])
				continue;
			strcpy(t, tok);
			t[i] = *a;
			st = verify(fx.ring, t, NOW, 0, NULL, NULL, NULL);
			ck_assert_msg(st == BW_TOKEN_FORGED || st == BW_TOKEN_MALFORMED || st == BW_TOKEN_BADKEY,
			    "pos %zu '%c': %s", i, *a, bw_token_status_name(st));
			forged += st == BW_TOKEN_FORGED;
		}
		for (const char *a = "018=!- "; *a; a++) {
			strcpy(t, tok);
			t[i] = *a;
			ck_assert_int_eq(verify(fx.ring, t, NOW, 0, NULL, NULL, NULL), BW_TOKEN_MALFORMED);
		}
	}
	/* most single changes reach the MAC, which refuses them */
	ck_assert_uint_gt(forged, n * 10);
	for (size_t i = 0; i < n; i++) {
		memcpy(t, tok, i);
		t[i] = '\0';
		ck_assert_int_ne(verify(fx.ring, t, NOW, 0, NULL, NULL, NULL), BW_TOKEN_OK);
	}
	for (const char *a = alpha; *a; a++) {
		snprintf(t, sizeof(t), "%s%c", tok, *a);
		ck_assert_int_ne(verify(fx.ring, t, NOW, 0, NULL, NULL, NULL), BW_TOKEN_OK);
	}
	/* every token length: zero bits appended ('a', "aa", ...) are not the same token */
	for (int len = 0; len < 8; len++) {
		char rcpt[40];

		snprintf(rcpt, sizeof(rcpt), "%.*sbob@example.com", len, "xxxxxxxx");
		ck_assert(bw_token_make(fx.ring, "acme", rcpt, NOW, t, sizeof(t)));
		for (int k = 1; k <= 3; k++) {
			strcat(t, "a");
			ck_assert_int_eq(verify(fx.ring, t, NOW, 0, NULL, NULL, NULL), BW_TOKEN_MALFORMED);
		}
	}
	snprintf(t, sizeof(t), "%s=", tok);
	ck_assert_int_eq(verify(fx.ring, t, NOW, 0, NULL, NULL, NULL), BW_TOKEN_MALFORMED);
	ck_assert_int_eq(verify(fx.ring, "", NOW, 0, NULL, NULL, NULL), BW_TOKEN_MALFORMED);
	ck_assert_int_eq(verify(fx.ring, NULL, NOW, 0, NULL, NULL, NULL), BW_TOKEN_MALFORMED);
	ck_assert_int_eq(verify(fx.ring, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NOW, 0, NULL, NULL,
	    NULL), BW_TOKEN_MALFORMED);
	/* the outputs are empty when the MAC does not hold */
	{
		char s[BW_SENDER_MAX + 1], r[BW_ADDR_MAX + 1];
		int64_t issued = 7;

		strcpy(t, tok);
		t[n - 5] = t[n - 5] == 'a' ? 'b' : 'a';
		ck_assert_int_eq(verify(fx.ring, t, NOW, 0, s, r, &issued), BW_TOKEN_FORGED);
		ck_assert_str_eq(s, "");
		ck_assert_str_eq(r, "");
		ck_assert_int_eq(issued, 0);
	}
}
END_TEST

START_TEST(test_token_keys)
{
	bw_keyring *other_id = fx_ring("k2", "k2 " HEX32 "\n");
	bw_keyring *other_secret = fx_ring("k1b", "k1 " HEXB "\n");
	bw_keyring *rotated = fx_ring("rot", "k2 " HEXB "\nk1 " HEX32 "\n");
	char tok[BW_TOKEN_MAX], s[BW_SENDER_MAX + 1], r[BW_ADDR_MAX + 1];

	ck_assert(bw_token_make(fx.ring, "acme", "bob@example.com", NOW, tok, sizeof(tok)));
	ck_assert_int_eq(verify(other_id, tok, NOW, 0, NULL, NULL, NULL), BW_TOKEN_BADKEY);
	ck_assert_int_eq(verify(other_secret, tok, NOW, 0, NULL, NULL, NULL), BW_TOKEN_FORGED);
	/* rotation: the old key, now second, still verifies what it signed */
	ck_assert_int_eq(verify(rotated, tok, NOW, 0, s, r, NULL), BW_TOKEN_OK);
	ck_assert_str_eq(r, "bob@example.com");
	/* the new first key signs; the old ring does not know it */
	ck_assert(bw_token_make(rotated, "acme", "bob@example.com", NOW, tok, sizeof(tok)));
	ck_assert_int_eq(verify(rotated, tok, NOW, 0, NULL, NULL, NULL), BW_TOKEN_OK);
	ck_assert_int_eq(verify(fx.ring, tok, NOW, 0, NULL, NULL, NULL), BW_TOKEN_BADKEY);
	bw_keyring_free(other_id);
	bw_keyring_free(other_secret);
	bw_keyring_free(rotated);
}
END_TEST

START_TEST(test_token_times)
{
	char tok[BW_TOKEN_MAX], s[BW_SENDER_MAX + 1], r[BW_ADDR_MAX + 1];
	int64_t issued = 0;

	ck_assert(bw_token_make(fx.ring, "acme", "bob@example.com", NOW, tok, sizeof(tok)));
	ck_assert_int_eq(verify(fx.ring, tok, NOW + 30 * DAY, 30 * DAY, NULL, NULL, NULL), BW_TOKEN_OK);
	ck_assert_int_eq(verify(fx.ring, tok, NOW + 30 * DAY + 1, 30 * DAY, s, r, &issued),
	    BW_TOKEN_EXPIRED);
	ck_assert_str_eq(s, "acme"); /* said, for the log */
	ck_assert_int_eq(issued, NOW);
	ck_assert_int_eq(verify(fx.ring, tok, NOW + 20 * YEAR, 0, NULL, NULL, NULL), BW_TOKEN_OK);
	/* 300 s of clock skew are allowed */
	ck_assert_int_eq(verify(fx.ring, tok, NOW - 300, 30 * DAY, NULL, NULL, NULL), BW_TOKEN_OK);
	ck_assert_int_eq(verify(fx.ring, tok, NOW - 301, 30 * DAY, NULL, NULL, NULL), BW_TOKEN_FUTURE);
	ck_assert_int_eq(verify(fx.ring, tok, NOW - YEAR, 0, NULL, NULL, NULL), BW_TOKEN_FUTURE);
}
END_TEST

/* ---------------------------------------------------------------- erasure hash */

START_TEST(test_addr_hash)
{
	char h[BW_ADDR_HASH_LEN + 1], h2[BW_ADDR_HASH_LEN + 1];
	bw_keyring *other = fx_ring("other", "e1 " HEXB "\n");

	/* HMAC-SHA256(000102..1f, "bob@example.com"): stable across releases */
	bw_addr_hash(fx.ring, "bob@example.com", h);
	ck_assert_str_eq(h, "#efb36d74c2dc5e69902fc691ff37c14dfdbbd19ee58cb44cfe8d268ccee757ed");
	ck_assert_uint_eq(strlen(h), BW_ADDR_HASH_LEN);
	bw_addr_hash(fx.ring, "bob@example.com", h2);
	ck_assert_str_eq(h, h2);
	bw_addr_hash(fx.ring, "Bob@example.com", h2);
	ck_assert_str_ne(h, h2);
	bw_addr_hash(other, "bob@example.com", h2);
	ck_assert_str_ne(h, h2);
	bw_addr_hash(NULL, "bob@example.com", h2);
	ck_assert_str_eq(h2, "");
	bw_keyring_free(other);
}
END_TEST

/* ---------------------------------------------------------------- the decision */

#define C(k, j) { BW_TBL_CONSENT, k, j }
#define S(k, j) { BW_TBL_SUPPRESS, k, j }
#define DOI(g)  "{\"granted_at\":\"" g "\",\"method\":\"double-opt-in\"}"
#define SUP(r, a) "{\"reason\":\"" r "\",\"at\":\"" a "\"}"

enum { P_STD = 0, P_IMPORT_COUNTS = 1, P_NO_AGE = 2, P_NO_ERASURE = 4, P_CASEFOLD = 8 };

/* In keys, "#" alone stands for the erasure hash of bob@example.com. */
static const struct check_case {
	const char *name;
	struct { bw_tbl t; const char *key, *json; } rec[4];
	int pol;
	bw_consent_result want;
	const char *why;
} check_cases[] = {
	{ "no record", { { 0 } }, P_STD, BW_CONSENT_NONE, "no consent record" },
	{ "consent of another sender", { C("beta bob@example.com", DOI("2025-01-01T00:00:00Z")) }, P_STD,
	  BW_CONSENT_NONE, "no consent record" },
	{ "ok", { C("acme bob@example.com", DOI("2025-01-01T00:00:00Z")) }, P_STD, BW_CONSENT_OK,
	  "consent double-opt-in 2025-01-01T00:00:00Z" },
	{ "ok, confirmed later", { C("acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\","
	  "\"method\":\"double-opt-in\",\"confirmed_at\":\"2025-01-01T00:05:00Z\"}") }, P_STD,
	  BW_CONSENT_OK, "consent double-opt-in 2025-01-01T00:05:00Z" },
	{ "expired by age", { C("acme bob@example.com", DOI("2020-01-01T00:00:00Z")) }, P_STD,
	  BW_CONSENT_EXPIRED, "consent expired 2024-12-30T00:00:00Z" },
	{ "exactly the maximum age", { C("acme bob@example.com", DOI("2021-03-02T00:00:00Z")) }, P_STD,
	  BW_CONSENT_OK, "consent double-opt-in" },
	{ "one second over the maximum age", { C("acme bob@example.com", DOI("2021-03-01T23:59:59Z")) }, P_STD,
	  BW_CONSENT_EXPIRED, "consent expired 2026-02-28T23:59:59Z" },
	{ "no age limit", { C("acme bob@example.com", DOI("2000-01-01T00:00:00Z")) }, P_NO_AGE,
	  BW_CONSENT_OK, "consent double-opt-in" },
	{ "expired by expires_at", { C("acme bob@example.com", "{\"granted_at\":\"2025-06-01T00:00:00Z\","
	  "\"method\":\"single-opt-in\",\"expires_at\":\"2026-01-01T00:00:00Z\"}") }, P_STD,
	  BW_CONSENT_EXPIRED, "consent expired 2026-01-01T00:00:00Z" },
	{ "expires_at now", { C("acme bob@example.com", "{\"granted_at\":\"2025-06-01T00:00:00Z\","
	  "\"method\":\"single-opt-in\",\"expires_at\":\"2026-03-01T00:00:00Z\"}") }, P_STD,
	  BW_CONSENT_EXPIRED, "consent expired 2026-03-01T00:00:00Z" },
	{ "expires_at before the maximum age", { C("acme bob@example.com", "{\"granted_at\":\"2020-01-01T00:00:00Z\","
	  "\"method\":\"single-opt-in\",\"expires_at\":\"2022-01-01T00:00:00Z\"}") }, P_STD,
	  BW_CONSENT_EXPIRED, "consent expired 2022-01-01T00:00:00Z" },
	{ "maximum age before expires_at", { C("acme bob@example.com", "{\"granted_at\":\"2020-01-01T00:00:00Z\","
	  "\"method\":\"single-opt-in\",\"expires_at\":\"2025-06-01T00:00:00Z\"}") }, P_STD,
	  BW_CONSENT_EXPIRED, "consent expired 2024-12-30T00:00:00Z" },
	{ "expires_at still ahead", { C("acme bob@example.com", "{\"granted_at\":\"2025-06-01T00:00:00Z\","
	  "\"method\":\"single-opt-in\",\"expires_at\":\"2026-03-01T00:00:01Z\"}") }, P_STD,
	  BW_CONSENT_OK, "consent single-opt-in" },
	{ "withdrawn", { C("acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\","
	  "\"method\":\"double-opt-in\",\"withdrawn_at\":\"2026-02-01T00:00:00Z\"}") }, P_STD,
	  BW_CONSENT_WITHDRAWN, "consent withdrawn 2026-02-01T00:00:00Z" },
	{ "method not counted", { C("acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\","
	  "\"method\":\"import\"}") }, P_STD, BW_CONSENT_METHOD, "consent method import not accepted" },
	{ "method counted", { C("acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\","
	  "\"method\":\"import\"}") }, P_IMPORT_COUNTS, BW_CONSENT_OK, "consent import" },
	{ "withdrawn beats method and age", { C("acme bob@example.com", "{\"granted_at\":\"2010-01-01T00:00:00Z\","
	  "\"method\":\"import\",\"withdrawn_at\":\"2011-01-01T00:00:00Z\"}") }, P_STD,
	  BW_CONSENT_WITHDRAWN, "withdrawn 2011" },
	{ "method beats age", { C("acme bob@example.com", "{\"granted_at\":\"2010-01-01T00:00:00Z\","
	  "\"method\":\"import\"}") }, P_STD, BW_CONSENT_METHOD, "import not accepted" },
	{ "suppressed by the sender", { C("acme bob@example.com", DOI("2025-01-01T00:00:00Z")),
	  S("acme bob@example.com", SUP("unsubscribe", "2026-02-15T00:00:00Z")) }, P_STD,
	  BW_CONSENT_SUPPRESSED, "unsubscribed 2026-02-15T00:00:00Z" },
	{ "suppressed without consent", { S("acme bob@example.com", SUP("complaint", "2026-02-15T00:00:00Z")) },
	  P_STD, BW_CONSENT_SUPPRESSED, "suppressed (complaint) 2026-02-15T00:00:00Z" },
	{ "suppression beats withdrawn", { C("acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\","
	  "\"method\":\"double-opt-in\",\"withdrawn_at\":\"2026-02-01T00:00:00Z\"}"),
	  S("acme bob@example.com", SUP("unsubscribe", "2026-02-01T00:00:00Z")) }, P_STD,
	  BW_CONSENT_SUPPRESSED, "unsubscribed 2026-02-01" },
	{ "suppressed globally", { C("acme bob@example.com", DOI("2025-01-01T00:00:00Z")),
	  S("* bob@example.com", SUP("bounce", "2025-06-01T00:00:00Z")) }, P_STD, BW_CONSENT_SUPPRESSED,
	  "suppressed for all senders (bounce) 2025-06-01T00:00:00Z" },
	{ "suppression of another sender", { C("acme bob@example.com", DOI("2025-01-01T00:00:00Z")),
	  S("beta bob@example.com", SUP("complaint", "2025-06-01T00:00:00Z")) }, P_STD, BW_CONSENT_OK,
	  "consent double-opt-in" },
	{ "lifted by a newer double opt-in", { C("acme bob@example.com", DOI("2025-01-01T00:00:00Z")),
	  S("acme bob@example.com", SUP("unsubscribe", "2024-01-01T00:00:00Z")) }, P_STD, BW_CONSENT_OK,
	  "consent double-opt-in 2025-01-01" },
	{ "global lifted by a newer double opt-in", { C("acme bob@example.com", DOI("2025-01-01T00:00:00Z")),
	  S("* bob@example.com", SUP("bounce", "2024-01-01T00:00:00Z")) }, P_STD, BW_CONSENT_OK,
	  "consent double-opt-in" },
	{ "not lifted by an older double opt-in", { C("acme bob@example.com", DOI("2025-01-01T00:00:00Z")),
	  S("acme bob@example.com", SUP("complaint", "2025-01-01T00:00:00Z")) }, P_STD,
	  BW_CONSENT_SUPPRESSED, "suppressed (complaint)" },
	{ "lifted by a later confirmation", { C("acme bob@example.com", "{\"granted_at\":\"2023-01-01T00:00:00Z\","
	  "\"method\":\"double-opt-in\",\"confirmed_at\":\"2025-01-01T00:00:00Z\"}"),
	  S("acme bob@example.com", SUP("unsubscribe", "2024-01-01T00:00:00Z")) }, P_STD, BW_CONSENT_OK,
	  "consent double-opt-in 2025-01-01" },
	{ "not lifted by a newer import", { C("acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\","
	  "\"method\":\"import\"}"), S("acme bob@example.com", SUP("complaint", "2024-01-01T00:00:00Z")) },
	  P_IMPORT_COUNTS, BW_CONSENT_SUPPRESSED, "suppressed (complaint) 2024-01-01T00:00:00Z" },
	{ "not lifted by an expired consent", { C("acme bob@example.com", DOI("2020-06-01T00:00:00Z")),
	  S("acme bob@example.com", SUP("admin", "2020-01-01T00:00:00Z")) }, P_STD,
	  BW_CONSENT_SUPPRESSED, "suppressed (admin) 2020-01-01" },
	{ "not lifted when one of two suppressions is newer", {
	  C("acme bob@example.com", DOI("2025-01-01T00:00:00Z")),
	  S("acme bob@example.com", SUP("unsubscribe", "2024-01-01T00:00:00Z")),
	  S("* bob@example.com", SUP("bounce", "2025-09-01T00:00:00Z")) }, P_STD, BW_CONSENT_SUPPRESSED,
	  "suppressed for all senders (bounce) 2025-09-01" },
	{ "domain-wide consent", { C("acme *@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\","
	  "\"method\":\"api\",\"source\":\"contract 17\"}") }, P_STD, BW_CONSENT_OK,
	  "domain-wide consent api 2025-01-01" },
	{ "domain-wide consent of another domain", { C("acme *@example.org", DOI("2025-01-01T00:00:00Z")) },
	  P_STD, BW_CONSENT_NONE, "no consent record" },
	{ "exact wins over domain-wide", { C("acme bob@example.com", DOI("2025-02-01T00:00:00Z")),
	  C("acme *@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\"}") },
	  P_STD, BW_CONSENT_OK, "consent double-opt-in 2025-02-01" },
	{ "domain-wide when exact expired", { C("acme bob@example.com", DOI("2019-01-01T00:00:00Z")),
	  C("acme *@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\"}") },
	  P_STD, BW_CONSENT_OK, "domain-wide consent api" },
	{ "exact when domain-wide withdrawn", { C("acme bob@example.com", DOI("2025-02-01T00:00:00Z")),
	  C("acme *@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\","
	  "\"withdrawn_at\":\"2025-06-01T00:00:00Z\"}") }, P_STD, BW_CONSENT_OK, "consent double-opt-in" },
	{ "exact withdrawal beats domain-wide", { C("acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\","
	  "\"method\":\"double-opt-in\",\"withdrawn_at\":\"2025-03-01T00:00:00Z\"}"),
	  C("acme *@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"api\"}") },
	  P_STD, BW_CONSENT_WITHDRAWN, "consent withdrawn 2025-03-01" },
	{ "worse of two invalid", { C("acme bob@example.com", DOI("2019-01-01T00:00:00Z")),
	  C("acme *@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\",\"method\":\"import\"}") },
	  P_STD, BW_CONSENT_METHOD, "domain-wide consent method import" },
	{ "domain-wide never lifts", { C("acme *@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\","
	  "\"method\":\"double-opt-in\"}"), S("acme bob@example.com", SUP("unsubscribe", "2024-01-01T00:00:00Z")) },
	  P_STD, BW_CONSENT_SUPPRESSED, "unsubscribed 2024-01-01" },
	{ "erased address, sender", { C("acme bob@example.com", DOI("2025-01-01T00:00:00Z")),
	  S("acme #", SUP("unsubscribe", "2025-06-01T00:00:00Z")) }, P_STD, BW_CONSENT_SUPPRESSED,
	  "unsubscribed 2025-06-01" },
	{ "erased address, global", { C("acme bob@example.com", DOI("2025-01-01T00:00:00Z")),
	  S("* #", SUP("complaint", "2025-06-01T00:00:00Z")) }, P_STD, BW_CONSENT_SUPPRESSED,
	  "suppressed for all senders (complaint)" },
	{ "erased address lifted by a newer double opt-in", { C("acme bob@example.com", DOI("2025-07-01T00:00:00Z")),
	  S("acme #", SUP("unsubscribe", "2025-06-01T00:00:00Z")) }, P_STD, BW_CONSENT_OK, "consent" },
	{ "erased address without an erasure key", { C("acme bob@example.com", DOI("2025-01-01T00:00:00Z")),
	  S("acme #", SUP("unsubscribe", "2025-06-01T00:00:00Z")) }, P_NO_ERASURE, BW_CONSENT_OK, "consent" },
};

static void
policy_for(int pol, bw_consent_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->max_age = pol & P_NO_AGE ? 0 : 5 * YEAR;
	p->methods = 1u << BW_CM_DOUBLE_OPT_IN | 1u << BW_CM_SINGLE_OPT_IN | 1u << BW_CM_API;
	if (pol & P_IMPORT_COUNTS)
		p->methods |= 1u << BW_CM_IMPORT;
	p->lift = 1u << BW_CM_DOUBLE_OPT_IN;
	p->erasure = pol & P_NO_ERASURE ? NULL : fx.ring;
}

START_TEST(test_check)
{
	const struct check_case *c = &check_cases[_i];
	char hash[BW_ADDR_HASH_LEN + 1], key[BW_STORE_KEY_MAX + 1], why[200] = "x";
	bw_consent_policy p;
	bw_consent_result res = (bw_consent_result)99;
	bw_store_err e;

	bw_addr_hash(fx.ring, "bob@example.com", hash);
	for (int i = 0; i < 4 && c->rec[i].key != NULL; i++) {
		size_t n = strlen(c->rec[i].key);

		if (c->rec[i].key[n - 1] == '#')
			snprintf(key, sizeof(key), "%.*s%s", (int)n - 1, c->rec[i].key, hash);
		else
			snprintf(key, sizeof(key), "%s", c->rec[i].key);
		put(c->rec[i].t, key, c->rec[i].json);
	}
	policy_for(c->pol, &p);
	e = bw_consent_check(fx.st, &p, "acme", "bob@example.com", NOW, &res, why, sizeof(why));
	ck_assert_msg(e == BW_STORE_OK, "%s: %s (%s)", c->name, bw_store_strerror(e), why);
	ck_assert_msg(res == c->want, "%s: %s (%s), want %s", c->name, bw_consent_result_name(res), why,
	    bw_consent_result_name(c->want));
	ck_assert_msg(strstr(why, c->why) != NULL, "%s: why '%s', want '%s'", c->name, why, c->why);
}
END_TEST

START_TEST(test_check_errors)
{
	bw_consent_policy p;
	bw_consent_result res;
	char why[300] = "";

	policy_for(P_STD, &p);
	ck_assert_int_eq(bw_consent_check(fx.st, &p, "ac me", "bob@example.com", NOW, &res, why,
	    sizeof(why)), BW_STORE_INVALID);
	ck_assert_int_eq(bw_consent_check(fx.st, &p, "acme", "bob", NOW, &res, why, sizeof(why)),
	    BW_STORE_INVALID);
	ck_assert_int_eq(bw_consent_check(fx.st, NULL, "acme", "bob@example.com", NOW, &res, why,
	    sizeof(why)), BW_STORE_INVALID);
	/* a damaged record fails the check (the engine then fails closed) */
	put(BW_TBL_SUPPRESS, "* bob@example.com", "{\"reason\":\"spam\",\"at\":\"2025-01-01T00:00:00Z\"}");
	ck_assert_int_eq(bw_consent_check(fx.st, &p, "acme", "bob@example.com", NOW, &res, why,
	    sizeof(why)), BW_STORE_CORRUPT);
	ck_assert_ptr_nonnull(strstr(why, "* bob@example.com"));
	/* why may be left out */
	ck_assert_int_eq(bw_consent_check(fx.st, &p, "acme", "alice@example.com", NOW, &res, NULL, 0),
	    BW_STORE_OK);
	ck_assert_int_eq(res, BW_CONSENT_NONE);
}
END_TEST

/* ---------------------------------------------------------------- suppress */

/* Every record of both tables as one string, for comparing states. */
static int
dump_one(void *ud, const char *key, const char *val)
{
	char **acc = ud;
	size_t n = strlen(*acc);

	*acc = realloc(*acc, n + strlen(key) + strlen(val) + 4);
	sprintf(*acc + n, "%s=%s\n", key, val);
	return 0;
}

static char *
dump_all(void)
{
	char *acc = calloc(1, 1);

	ck_assert_int_eq(bw_store_scan(fx.st, BW_TBL_CONSENT, "", dump_one, &acc), BW_STORE_OK);
	acc = realloc(acc, strlen(acc) + 4);
	strcat(acc, "--\n");
	ck_assert_int_eq(bw_store_scan(fx.st, BW_TBL_SUPPRESS, "", dump_one, &acc), BW_STORE_OK);
	return acc;
}

static bw_suppression
supp(const char *sender, const char *rcpt, bw_supp_reason r, const char *at)
{
	bw_suppression s;

	memset(&s, 0, sizeof(s));
	snprintf(s.sender, sizeof(s.sender), "%s", sender);
	snprintf(s.rcpt, sizeof(s.rcpt), "%s", rcpt);
	s.reason = r;
	s.at = T(at);
	return s;
}

static bw_consent_result
check(const char *sender, const char *rcpt, char *why, size_t whylen)
{
	bw_consent_policy p;
	bw_consent_result res;
	char w[200];

	policy_for(P_STD, &p);
	ck_assert_int_eq(bw_consent_check(fx.st, &p, sender, rcpt, NOW, &res, why ? why : w,
	    why ? whylen : sizeof(w)), BW_STORE_OK);
	return res;
}

START_TEST(test_suppress)
{
	bw_suppression s = supp("acme", "bob@example.com", BW_SR_UNSUBSCRIBE, "2026-02-01T00:00:00Z");
	bw_suppression d;
	bw_consent c;
	char *v, *before, *after, err[200], why[200];

	put(BW_TBL_CONSENT, "acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\","
	    "\"method\":\"double-opt-in\",\"source\":\"https://acme.example/join\",\"evidence\":\"crm:1\"}");
	put(BW_TBL_CONSENT, "beta bob@example.com", DOI("2025-01-01T00:00:00Z"));
	ck_assert_int_eq(check("acme", "bob@example.com", NULL, 0), BW_CONSENT_OK);

	s.source = (char *)"one-click";
	ck_assert_int_eq(bw_suppress(fx.st, &s), BW_STORE_OK);
	/* the very next check sees it */
	ck_assert_int_eq(check("acme", "bob@example.com", why, sizeof(why)), BW_CONSENT_SUPPRESSED);
	ck_assert_str_eq(why, "unsubscribed 2026-02-01T00:00:00Z");
	ck_assert_int_eq(check("beta", "bob@example.com", NULL, 0), BW_CONSENT_OK);
	v = get(BW_TBL_SUPPRESS, "acme bob@example.com");
	ck_assert_str_eq(v, "{\"reason\":\"unsubscribe\",\"at\":\"2026-02-01T00:00:00Z\",\"source\":\"one-click\"}");
	free(v);
	/* the consent is kept, withdrawn */
	v = get(BW_TBL_CONSENT, "acme bob@example.com");
	ck_assert(bw_consent_from_json("acme bob@example.com", v, &c, err, sizeof(err)));
	ck_assert_int_eq(c.withdrawn_at, T("2026-02-01T00:00:00Z"));
	ck_assert_int_eq(c.granted_at, T("2025-01-01T00:00:00Z"));
	ck_assert_str_eq(c.evidence, "crm:1");
	ck_assert_str_eq(c.source, "https://acme.example/join");
	bw_consent_clear(&c);
	free(v);
	v = get(BW_TBL_CONSENT, "beta bob@example.com");
	ck_assert_ptr_null(strstr(v, "withdrawn_at"));
	free(v);

	/* idempotent: the same again, or a later one, changes nothing */
	before = dump_all();
	ck_assert_int_eq(bw_suppress(fx.st, &s), BW_STORE_OK);
	s.at = T("2026-02-10T00:00:00Z");
	s.source = (char *)"mailto";
	ck_assert_int_eq(bw_suppress(fx.st, &s), BW_STORE_OK);
	after = dump_all();
	ck_assert_str_eq(before, after);
	free(before);
	free(after);

	/* an earlier one (an import of history) takes its place */
	s.at = T("2026-01-15T00:00:00Z");
	s.source = NULL;
	ck_assert_int_eq(bw_suppress(fx.st, &s), BW_STORE_OK);
	v = get(BW_TBL_SUPPRESS, "acme bob@example.com");
	ck_assert(bw_suppression_from_json("acme bob@example.com", v, &d, err, sizeof(err)));
	ck_assert_int_eq(d.at, T("2026-01-15T00:00:00Z"));
	bw_suppression_clear(&d);
	free(v);
	v = get(BW_TBL_CONSENT, "acme bob@example.com");
	ck_assert_ptr_nonnull(strstr(v, "\"withdrawn_at\":\"2026-02-01T00:00:00Z\""));
	free(v);
}
END_TEST

START_TEST(test_suppress_other_reasons)
{
	bw_suppression s = supp("acme", "bob@example.com", BW_SR_COMPLAINT, "2026-02-01T00:00:00Z");
	char *v, why[200];

	put(BW_TBL_CONSENT, "acme bob@example.com", DOI("2025-01-01T00:00:00Z"));
	ck_assert_int_eq(bw_suppress(fx.st, &s), BW_STORE_OK);
	ck_assert_int_eq(check("acme", "bob@example.com", why, sizeof(why)), BW_CONSENT_SUPPRESSED);
	ck_assert_str_eq(why, "suppressed (complaint) 2026-02-01T00:00:00Z");
	/* a complaint does not withdraw the consent (the record of what was given stays) */
	v = get(BW_TBL_CONSENT, "acme bob@example.com");
	ck_assert_ptr_null(strstr(v, "withdrawn_at"));
	free(v);

	/* re-subscribed by double opt-in after it: lifted; a new complaint counts again */
	put(BW_TBL_CONSENT, "acme bob@example.com", DOI("2026-02-10T00:00:00Z"));
	ck_assert_int_eq(check("acme", "bob@example.com", NULL, 0), BW_CONSENT_OK);
	s.at = T("2026-02-20T00:00:00Z");
	ck_assert_int_eq(bw_suppress(fx.st, &s), BW_STORE_OK);
	ck_assert_int_eq(check("acme", "bob@example.com", why, sizeof(why)), BW_CONSENT_SUPPRESSED);
	ck_assert_str_eq(why, "suppressed (complaint) 2026-02-20T00:00:00Z");

	/* global: every sender, no consent touched */
	put(BW_TBL_CONSENT, "beta carol@example.net", DOI("2025-01-01T00:00:00Z"));
	s = supp("*", "carol@example.net", BW_SR_BOUNCE, "2026-01-01T00:00:00Z");
	ck_assert_int_eq(bw_suppress(fx.st, &s), BW_STORE_OK);
	ck_assert_int_eq(check("beta", "carol@example.net", why, sizeof(why)), BW_CONSENT_SUPPRESSED);
	ck_assert_str_eq(why, "suppressed for all senders (bounce) 2026-01-01T00:00:00Z");
	ck_assert_int_eq(check("gamma", "carol@example.net", NULL, 0), BW_CONSENT_SUPPRESSED);
	v = get(BW_TBL_CONSENT, "beta carol@example.net");
	ck_assert_str_eq(v, DOI("2025-01-01T00:00:00Z"));
	free(v);
	s = supp("*", "carol@example.net", BW_SR_UNSUBSCRIBE, "2026-01-05T00:00:00Z");
	ck_assert_int_eq(bw_suppress(fx.st, &s), BW_STORE_OK);
	v = get(BW_TBL_SUPPRESS, "* carol@example.net");
	ck_assert_str_eq(v, SUP("bounce", "2026-01-01T00:00:00Z"));
	free(v);

	/* bad arguments */
	s = supp("ac me", "bob@example.com", BW_SR_ADMIN, "2026-01-01T00:00:00Z");
	ck_assert_int_eq(bw_suppress(fx.st, &s), BW_STORE_INVALID);
	s = supp("acme", "bob", BW_SR_ADMIN, "2026-01-01T00:00:00Z");
	ck_assert_int_eq(bw_suppress(fx.st, &s), BW_STORE_INVALID);
	s = supp("acme", "bob@example.com", BW_SR__N, "2026-01-01T00:00:00Z");
	ck_assert_int_eq(bw_suppress(fx.st, &s), BW_STORE_INVALID);
	ck_assert_int_eq(bw_suppress(fx.st, NULL), BW_STORE_INVALID);
}
END_TEST

/* ---------------------------------------------------------------- forget */

static int
find_text(void *ud, const char *key, const char *val)
{
	const char *needle = ud;

	ck_assert_msg(strstr(key, needle) == NULL && strstr(val, needle) == NULL,
	    "'%s' left in %s = %s", needle, key, val);
	return 0;
}

START_TEST(test_forget)
{
	char hash[BW_ADDR_HASH_LEN + 1], key[BW_STORE_KEY_MAX + 1], err[300] = "", why[200];
	bw_suppression s;
	size_t n = 99;
	char *v;

	put(BW_TBL_CONSENT, "acme bob@example.com", "{\"granted_at\":\"2025-01-01T00:00:00Z\","
	    "\"method\":\"double-opt-in\",\"source\":\"form bob@example.com\"}");
	put(BW_TBL_CONSENT, "beta bob@example.com", DOI("2025-01-01T00:00:00Z"));
	put(BW_TBL_CONSENT, "acme alice@example.com", DOI("2025-01-01T00:00:00Z"));
	put(BW_TBL_CONSENT, "acme *@example.com", DOI("2025-01-01T00:00:00Z"));
	put(BW_TBL_SUPPRESS, "acme bob@example.com", "{\"reason\":\"unsubscribe\","
	    "\"at\":\"2026-01-01T00:00:00Z\",\"note\":\"bob@example.com asked by phone\"}");
	put(BW_TBL_SUPPRESS, "* bob@example.com", SUP("bounce", "2025-03-01T00:00:00Z"));
	put(BW_TBL_SUPPRESS, "gamma bobby@example.com", SUP("admin", "2025-03-01T00:00:00Z"));

	ck_assert_int_eq(bw_forget(fx.st, fx.ring, "bob@example.com", &n, err, sizeof(err)), BW_STORE_OK);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(bw_store_scan(fx.st, BW_TBL_CONSENT, "", find_text, (void *)"bob@example.com"),
	    BW_STORE_OK);
	ck_assert_int_eq(bw_store_scan(fx.st, BW_TBL_SUPPRESS, "", find_text, (void *)"bob@example.com"),
	    BW_STORE_OK);

	/* the opt-outs still hold, through the hash */
	bw_addr_hash(fx.ring, "bob@example.com", hash);
	snprintf(key, sizeof(key), "acme %s", hash);
	v = get(BW_TBL_SUPPRESS, key);
	ck_assert_str_eq(v, "{\"reason\":\"unsubscribe\",\"at\":\"2026-01-01T00:00:00Z\",\"source\":\"erasure\"}");
	free(v);
	snprintf(key, sizeof(key), "* %s", hash);
	v = get(BW_TBL_SUPPRESS, key);
	ck_assert_ptr_nonnull(strstr(v, "\"reason\":\"bounce\",\"at\":\"2025-03-01T00:00:00Z\""));
	free(v);
	ck_assert_int_eq(check("acme", "bob@example.com", why, sizeof(why)), BW_CONSENT_SUPPRESSED);
	ck_assert_str_eq(why, "unsubscribed 2026-01-01T00:00:00Z");
	ck_assert_int_eq(check("delta", "bob@example.com", NULL, 0), BW_CONSENT_SUPPRESSED);

	/* other addresses are untouched (bobby@ too) */
	ck_assert_int_eq(check("acme", "alice@example.com", NULL, 0), BW_CONSENT_OK);
	v = get(BW_TBL_SUPPRESS, "gamma bobby@example.com");
	ck_assert_ptr_nonnull(v);
	free(v);
	v = get(BW_TBL_CONSENT, "acme *@example.com");
	ck_assert_ptr_nonnull(v);
	free(v);

	/* again: nothing left to delete */
	ck_assert_int_eq(bw_forget(fx.st, fx.ring, "bob@example.com", &n, err, sizeof(err)), BW_STORE_OK);
	ck_assert_uint_eq(n, 0);

	/* bob comes back and unsubscribes again: a later erasure keeps the earlier time */
	s = supp("acme", "bob@example.com", BW_SR_UNSUBSCRIBE, "2026-02-01T00:00:00Z");
	ck_assert_int_eq(bw_suppress(fx.st, &s), BW_STORE_OK);
	ck_assert_int_eq(bw_forget(fx.st, fx.ring, "bob@example.com", &n, err, sizeof(err)), BW_STORE_OK);
	ck_assert_uint_eq(n, 1);
	snprintf(key, sizeof(key), "acme %s", hash);
	v = get(BW_TBL_SUPPRESS, key);
	ck_assert_ptr_nonnull(strstr(v, "2026-01-01T00:00:00Z"));
	free(v);
	ck_assert_int_eq(bw_store_scan(fx.st, BW_TBL_SUPPRESS, "", find_text, (void *)"bob@example.com"),
	    BW_STORE_OK);
}
END_TEST

START_TEST(test_forget_errors)
{
	char err[300] = "";
	size_t n = 5;

	ck_assert_int_eq(bw_forget(fx.st, NULL, "bob@example.com", &n, err, sizeof(err)), BW_STORE_INVALID);
	ck_assert_ptr_nonnull(strstr(err, "erasure key"));
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(bw_forget(fx.st, fx.ring, "bob", &n, err, sizeof(err)), BW_STORE_INVALID);
	ck_assert_int_eq(bw_forget(fx.st, fx.ring, "*@example.com", &n, err, sizeof(err)), BW_STORE_INVALID);
	/* a damaged suppression of the address stops it, naming the record; nothing is written */
	put(BW_TBL_CONSENT, "acme bob@example.com", DOI("2025-01-01T00:00:00Z"));
	put(BW_TBL_SUPPRESS, "acme bob@example.com", "{\"reason\":\"unsubscribe\"}");
	ck_assert_int_eq(bw_forget(fx.st, fx.ring, "bob@example.com", &n, err, sizeof(err)),
	    BW_STORE_CORRUPT);
	ck_assert_ptr_nonnull(strstr(err, "acme bob@example.com"));
	{
		char *v = get(BW_TBL_CONSENT, "acme bob@example.com"); /* still there */

		ck_assert_ptr_nonnull(v);
		free(v);
	}
}
END_TEST

/* ---------------------------------------------------------------- main */

#define NROWS(a) ((int)(sizeof(a) / sizeof((a)[0])))

int
main(void)
{
	Suite *s = suite_create("consent");
	TCase *tc;
	SRunner *sr;
	int failed;

	tc = tcase_create("normalise");
	tcase_add_loop_test(tc, test_normalise, 0, NROWS(norm_cases));
	tcase_add_test(tc, test_normalise_lengths);
	tcase_add_test(tc, test_normalise_idempotent);
	tcase_add_test(tc, test_sender_ids);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("records");
	tcase_add_checked_fixture(tc, fx_begin_keys, fx_end);
	tcase_add_test(tc, test_keys);
	tcase_add_test(tc, test_json_consent_roundtrip);
	tcase_add_test(tc, test_json_suppression_roundtrip);
	tcase_add_loop_test(tc, test_json_strict, 0, NROWS(json_bad));
	tcase_add_loop_test(tc, test_json_fast_same, 0, NROWS(json_same));
	tcase_add_test(tc, test_json_limits);
	tcase_add_loop_test(tc, test_time_parse, 0, NROWS(time_cases));
	tcase_add_test(tc, test_time_fmt);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys and tokens");
	tcase_add_checked_fixture(tc, fx_begin_keys, fx_end);
	tcase_add_test(tc, test_keyring_good);
	tcase_add_loop_test(tc, test_keyring_bad, 0, NROWS(key_bad));
	tcase_add_test(tc, test_keyring_limits);
	tcase_add_test(tc, test_token_roundtrip);
	tcase_add_test(tc, test_token_refuses_to_make);
	tcase_add_test(tc, test_token_forgery);
	tcase_add_test(tc, test_trace_token);
	tcase_add_test(tc, test_token_keys);
	tcase_add_test(tc, test_token_times);
	tcase_add_test(tc, test_addr_hash);
	suite_add_tcase(s, tc);

	tc = tcase_create("store");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, fx_begin, fx_end);
	tcase_add_loop_test(tc, test_check, 0, NROWS(check_cases));
	tcase_add_test(tc, test_check_errors);
	tcase_add_test(tc, test_suppress);
	tcase_add_test(tc, test_suppress_other_reasons);
	tcase_add_test(tc, test_forget);
	tcase_add_test(tc, test_forget_errors);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
