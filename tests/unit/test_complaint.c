/*
 * test_complaint.c - unit tests of complaint.c: ARF parsing of the reports
 * in tests/data/arf (every field), field syntax and bounds, robustness on
 * cut and damaged input, the dedupe key, and DKIM authentication with keys
 * made at test time (OpenSSL), reports signed here with libopendkim and
 * verified through the file query method.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* mkdtemp, u_char for dkim.h */
#endif
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opendkim/dkim.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "complaint.h"

#define NROWS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---------------------------------------------------------------- helpers */

struct buf {
	char *p;
	size_t n;
};

static struct buf
slurp(const char *name)
{
	char path[512];
	struct buf b = { NULL, 0 };
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/arf/%s", TEST_DATA, name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert(fseek(f, 0, SEEK_END) == 0);
	n = ftell(f);
	ck_assert(n > 0);
	rewind(f);
	b.p = malloc((size_t)n + 1);
	ck_assert(b.p != NULL);
	ck_assert(fread(b.p, 1, (size_t)n, f) == (size_t)n);
	b.p[n] = '\0';
	b.n = (size_t)n;
	fclose(f);
	return b;
}

/* a copy with every LF made CRLF */
static struct buf
crlf(struct buf in)
{
	struct buf b;
	size_t o = 0;

	b.p = malloc(in.n * 2 + 1);
	ck_assert(b.p != NULL);
	for (size_t i = 0; i < in.n; i++) {
		if (in.p[i] == '\n' && (i == 0 || in.p[i - 1] != '\r'))
			b.p[o++] = '\r';
		b.p[o++] = in.p[i];
	}
	b.p[o] = '\0';
	b.n = o;
	return b;
}

/* text with the first occurrence of from replaced by to (malloc'd) */
static char *
replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out;

	ck_assert_msg(at != NULL, "\"%s\" not in the text", from);
	ck_assert(asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) > 0);
	return out;
}

#define ck_assert_str_null(s) ck_assert_msg((s) == NULL, "%s is \"%s\", not NULL", #s, (s) ? (s) : "")

static bw_arf_err
parse_str(const char *msg, bw_arf *r, char *err, size_t errlen)
{
	return bw_arf_parse(msg, strlen(msg), r, err, errlen);
}

static bool
all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static void
sha256(const char *s, unsigned char out[32])
{
	unsigned int n = 0;

	ck_assert(EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL) == 1 && n == 32);
}

/* ---------------------------------------------------------------- the reports */

START_TEST(test_full_rfc822)
{
	struct buf m = slurp("abuse-rfc822.eml");
	bw_arf r;
	char err[256];
	bw_arf_err e = bw_arf_parse(m.p, m.n, &r, err, sizeof(err));

	ck_assert_msg(e == BW_ARF_OK, "%s: %s", bw_arf_err_name(e), err);
	ck_assert_str_eq(r.report_msgid, "<report-0001@fbl.example.net>");
	ck_assert_int_eq(r.ftype, BW_FT_ABUSE);
	ck_assert_str_eq(r.feedback_type, "abuse");
	ck_assert_str_eq(r.user_agent, "ExampleNetFBL/2.1");
	ck_assert_str_eq(r.version, "1");
	ck_assert_str_eq(r.mail_from, "bounce-42@mail.example.com");
	ck_assert_uint_eq(r.nrcpt, 1);
	ck_assert_str_eq(r.rcpt[0], "alice@example.net");
	ck_assert_str_eq(r.arrival_date, "Mon, 02 Mar 2026 21:04:33 -0800");
	ck_assert_int_eq(r.arrival, 1772514273); /* 2026-03-03T05:04:33Z */
	ck_assert_str_eq(r.source_ip, "192.0.2.25");
	ck_assert_uint_eq(r.ndomains, 1);
	ck_assert_str_eq(r.domains[0], "mail.example.com");
	ck_assert_int_eq(r.has_original, BW_ARF_ORIG_MESSAGE);
	ck_assert_str_eq(r.orig_msgid, "<20260303050430.7f3a@mail.example.com>");
	ck_assert_str_eq(r.orig_from, "Example Shop <news@example.com>");
	ck_assert_str_eq(r.trace, "v1.k1.mfrwgzlsnfxgo3tfoqqho2lunaqhg33nmu");
	ck_assert_str_eq(r.cfbl_id, "7f3a:shop");
	ck_assert_str_eq(r.feedback_id, "spring:shop:example.com:bw");
	ck_assert(!all_zero(r.orig_hash, sizeof(r.orig_hash)));
	ck_assert(r.conforming);
	ck_assert_str_eq(err, "");
	bw_arf_clear(&r);
	ck_assert_str_null(r.feedback_type);
	ck_assert_uint_eq(r.nrcpt, 0);
	free(m.p);
}
END_TEST

START_TEST(test_headers_part)
{
	struct buf m = slurp("abuse-headers.eml");
	bw_arf r;
	char err[256];
	bw_arf_err e = bw_arf_parse(m.p, m.n, &r, err, sizeof(err));

	/* Content-Type and its parameters in mixed case, a comment after the
	   boundary, a quoted-printable headers part with a soft line break, a
	   folded Message-ID, the null reverse path, a two-digit year, IPv6 */
	ck_assert_msg(e == BW_ARF_OK, "%s: %s", bw_arf_err_name(e), err);
	ck_assert_str_eq(r.report_msgid, "<fbl.7781@robot.example.net>");
	ck_assert_int_eq(r.ftype, BW_FT_ABUSE);
	ck_assert_str_eq(r.feedback_type, "abuse");
	ck_assert_str_eq(r.user_agent, "RobotFBL/0.9 (example.net)");
	ck_assert_str_eq(r.version, "1");
	ck_assert_str_eq(r.mail_from, "");
	ck_assert_uint_eq(r.nrcpt, 1);
	ck_assert_str_eq(r.rcpt[0], "bob@example.net");
	ck_assert_str_eq(r.arrival_date, "3 Mar 26 06:00 GMT");
	ck_assert_int_eq(r.arrival, 1772517600); /* 2026-03-03T06:00:00Z */
	ck_assert_str_eq(r.source_ip, "2001:db8::25");
	ck_assert_uint_eq(r.ndomains, 1);
	ck_assert_str_eq(r.domains[0], "example.com");
	ck_assert_int_eq(r.has_original, BW_ARF_ORIG_HEADERS);
	ck_assert_str_eq(r.orig_msgid, "<20260303060000.aa11@mail.example.com>");
	ck_assert_str_eq(r.orig_from, "\"Example Shop\" <news@example.com>");
	ck_assert_str_eq(r.trace, "v1.k1.bob-trace-token-0002");
	ck_assert_str_null(r.cfbl_id);
	ck_assert_str_eq(r.feedback_id, "spring:shop:example.com:bw");
	ck_assert(r.conforming);
	bw_arf_clear(&r);
	free(m.p);
}
END_TEST

START_TEST(test_sparse)
{
	struct buf m = slurp("sparse.eml");
	bw_arf r;
	char err[256];
	unsigned char want[32];
	bw_arf_err e = bw_arf_parse(m.p, m.n, &r, err, sizeof(err));

	ck_assert_msg(e == BW_ARF_OK, "%s: %s", bw_arf_err_name(e), err);
	ck_assert_str_null(r.report_msgid);
	ck_assert_int_eq(r.ftype, BW_FT_ABUSE);
	ck_assert_str_eq(r.feedback_type, "abuse");
	ck_assert_str_null(r.user_agent);
	ck_assert_str_null(r.version);
	ck_assert_str_null(r.mail_from);
	ck_assert_uint_eq(r.nrcpt, 0);
	ck_assert_str_null(r.arrival_date);
	ck_assert_int_eq(r.arrival, 0);
	ck_assert_str_eq(r.source_ip, "");
	ck_assert_uint_eq(r.ndomains, 0);
	ck_assert_int_eq(r.has_original, BW_ARF_ORIG_HEADERS);
	ck_assert_str_null(r.orig_msgid);
	ck_assert_str_eq(r.orig_from, "news@example.com");
	ck_assert_str_eq(r.trace, "v1.k1.sparse-0003");
	ck_assert_str_null(r.cfbl_id);
	ck_assert_str_null(r.feedback_id);
	ck_assert(!r.conforming);
	/* the header hash, worked out by hand */
	sha256("from:news@example.com\r\nsubject:Weekly letter\r\nx-bulkwarden-trace:v1.k1.sparse-0003\r\n",
	    want);
	ck_assert(memcmp(r.orig_hash, want, 32) == 0);
	bw_arf_clear(&r);
	free(m.p);
}
END_TEST

START_TEST(test_two_rcpt)
{
	struct buf m = slurp("two-rcpt.eml");
	bw_arf r;
	char err[256];
	bw_arf_err e = bw_arf_parse(m.p, m.n, &r, err, sizeof(err));

	/* base64 feedback-report with CRLF inside, Received-Date (the draft
	   name), a bracketed Source-IP, repeated Original-Rcpt-To and
	   Reported-Domain */
	ck_assert_msg(e == BW_ARF_OK, "%s: %s", bw_arf_err_name(e), err);
	ck_assert_str_eq(r.report_msgid, "<report-0002@fbl.example.net>");
	ck_assert_int_eq(r.ftype, BW_FT_FRAUD);
	ck_assert_str_eq(r.feedback_type, "fraud");
	ck_assert_str_eq(r.user_agent, "ExampleNetFBL/2.1");
	ck_assert_str_eq(r.version, "1");
	ck_assert_str_eq(r.mail_from, "bounce-77@mail.example.com");
	ck_assert_uint_eq(r.nrcpt, 2);
	ck_assert_str_eq(r.rcpt[0], "dave@example.net");
	ck_assert_str_eq(r.rcpt[1], "Erin@Example.NET");
	ck_assert_str_eq(r.arrival_date, "Wed, 4 Mar 2026 12:30:00 +0000 (UTC)");
	ck_assert_int_eq(r.arrival, 1772627400);
	ck_assert_str_eq(r.source_ip, "192.0.2.77");
	ck_assert_uint_eq(r.ndomains, 2);
	ck_assert_str_eq(r.domains[0], "mail.example.com");
	ck_assert_str_eq(r.domains[1], "example.com");
	ck_assert_int_eq(r.has_original, BW_ARF_ORIG_MESSAGE);
	ck_assert_str_eq(r.orig_msgid, "< 20260304123000.bb22@mail.example.com >");
	ck_assert_str_eq(r.orig_from, "\"Example Shop\" <news@example.com>");
	ck_assert_str_eq(r.trace, "v1.k1.two-recipients-0004");
	ck_assert_str_eq(r.cfbl_id, "bb22:shop");
	ck_assert_str_null(r.feedback_id);
	ck_assert(r.conforming);
	bw_arf_clear(&r);
	free(m.p);
}
END_TEST

START_TEST(test_dsn)
{
	struct buf m = slurp("dsn.eml");
	bw_arf r;
	char err[256];

	ck_assert_int_eq(bw_arf_parse(m.p, m.n, &r, err, sizeof(err)), BW_ARF_ENOTFEEDBACK);
	ck_assert_msg(strstr(err, "delivery-status") != NULL, "%s", err);
	ck_assert_str_null(r.feedback_type);
	ck_assert_int_eq(r.has_original, BW_ARF_ORIG_NONE);
	free(m.p);
}
END_TEST

START_TEST(test_malformed)
{
	struct buf m = slurp("malformed.eml");
	bw_arf r;
	char err[256];

	ck_assert_int_eq(bw_arf_parse(m.p, m.n, &r, err, sizeof(err)), BW_ARF_EFIELD);
	ck_assert_msg(strstr(err, "feedback-report") != NULL && strstr(err, "not a header field") != NULL,
	    "%s", err);
	/* nothing is left to free on error */
	ck_assert_str_null(r.feedback_type);
	ck_assert_str_null(r.user_agent);
	ck_assert_str_null(r.orig_msgid);
	free(m.p);
}
END_TEST

START_TEST(test_crlf_same)
{
	struct buf m = slurp("abuse-rfc822.eml"), c = crlf(m);
	bw_arf a, b;
	char err[256];

	ck_assert_int_eq(bw_arf_parse(m.p, m.n, &a, err, sizeof(err)), BW_ARF_OK);
	ck_assert_msg(bw_arf_parse(c.p, c.n, &b, err, sizeof(err)) == BW_ARF_OK, "%s", err);
	ck_assert_str_eq(a.trace, b.trace);
	ck_assert_str_eq(a.orig_msgid, b.orig_msgid);
	ck_assert_str_eq(a.rcpt[0], b.rcpt[0]);
	ck_assert_int_eq(a.arrival, b.arrival);
	ck_assert(memcmp(a.orig_hash, b.orig_hash, 32) == 0);
	bw_arf_clear(&a);
	bw_arf_clear(&b);
	free(m.p);
	free(c.p);
}
END_TEST

/* ---- not reports, and broken structure ---- */

#define HDR "From: fbl@example.net\nTo: complaints@example.com\nSubject: r\nMIME-Version: 1.0\n"
#define CT_ARF "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\n"
#define FB_PART(fields) "--b\nContent-Type: message/feedback-report\n\n" fields "\n"
#define ORIG_PART "--b\nContent-Type: text/rfc822-headers\n\nFrom: news@example.com\nMessage-ID: <o@example.com>\n"

static const struct {
	const char *msg;
	bw_arf_err want;
	const char *in_err;
} structure_cases[] = {
	{ "", BW_ARF_ENOTREPORT, "no Content-Type" },
	{ HDR "\nJust a letter.\n", BW_ARF_ENOTREPORT, "no Content-Type" },
	{ HDR "Content-Type: text/plain\n\nhello\n", BW_ARF_ENOTREPORT, "text/plain, not multipart/report" },
	{ HDR "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n", BW_ARF_ENOTREPORT,
	  "multipart/mixed" },
	{ HDR "Content-Type: message/feedback-report\n\nFeedback-Type: abuse\n", BW_ARF_ENOTREPORT,
	  "not multipart/report" },
	{ HDR "Content-Type: multipart/report; boundary=b\n\n--b\n\nx\n--b--\n", BW_ARF_ENOTFEEDBACK,
	  "without a report-type" },
	{ HDR "Content-Type: multipart/report; report-type=disposition-notification; boundary=b\n\n",
	  BW_ARF_ENOTFEEDBACK, "disposition-notification" },
	{ HDR "Content-Type: multipart/report; report-type=feedback-report\n\n--b\n", BW_ARF_EMIME,
	  "without a boundary" },
	{ HDR "Content-Type: multipart/report; report-type=feedback-report; boundary=\"\"\n\n", BW_ARF_EMIME,
	  "without a boundary" },
	{ HDR CT_ARF "\nno parts at all\n", BW_ARF_EMIME, "boundary does not occur" },
	{ HDR CT_ARF "\n--b\nContent-Type: text/plain\n\nonly text\n--b--\n", BW_ARF_ENOFEEDBACK,
	  "no message/feedback-report part" },
	{ HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\n") FB_PART("Feedback-Type: abuse\n") "--b--\n",
	  BW_ARF_ENOFEEDBACK, "two message/feedback-report" },
	{ HDR CT_ARF CT_ARF "\n" FB_PART("Feedback-Type: abuse\n") "--b--\n", BW_ARF_EHEADER,
	  "Content-Type appears twice" },
	{ HDR "this is no header line\n" CT_ARF "\n" FB_PART("Feedback-Type: abuse\n") "--b--\n",
	  BW_ARF_EHEADER, "report header" },
	{ " folded first line\n" HDR CT_ARF "\n", BW_ARF_EHEADER, "report header" },
	{ HDR "Bad Name: spaces are not allowed in a field name\n" CT_ARF "\n" FB_PART("Feedback-Type: abuse\n")
	  "--b--\n", BW_ARF_EHEADER, "report header" },
	{ HDR ": no name\n" CT_ARF "\n" FB_PART("Feedback-Type: abuse\n") "--b--\n", BW_ARF_EHEADER,
	  "report header" },
	{ HDR CT_ARF "\n--b\nContent-Type: message/feedback-report\nContent-Transfer-Encoding: x-uuencode\n\n"
	  "Feedback-Type: abuse\n--b--\n", BW_ARF_EMIME, "unknown transfer encoding x-uuencode" },
};

START_TEST(test_structure)
{
	bw_arf r;
	char err[256] = "x";
	bw_arf_err e = parse_str(structure_cases[_i].msg, &r, err, sizeof(err));

	ck_assert_msg(e == structure_cases[_i].want, "case %d: %s (%s), want %s", _i, bw_arf_err_name(e), err,
	    bw_arf_err_name(structure_cases[_i].want));
	ck_assert_msg(strstr(err, structure_cases[_i].in_err) != NULL, "case %d: \"%s\" lacks \"%s\"", _i, err,
	    structure_cases[_i].in_err);
	ck_assert_str_null(r.feedback_type);
}
END_TEST

/* ---- feedback-report fields ---- */

static const struct {
	const char *fields;
	bw_arf_err want;
	const char *in_err;
} field_cases[] = {
	{ "User-Agent: x/1\nVersion: 1\n", BW_ARF_EFIELD, "Feedback-Type is missing" },
	{ "Feedback-Type: abuse\nFeedback-Type: fraud\n", BW_ARF_EFIELD, "Feedback-Type appears twice" },
	{ "Feedback-Type: ab use\n", BW_ARF_EFIELD, "is not a token" },
	{ "Feedback-Type:\n", BW_ARF_EFIELD, "is not a token" },
	{ "Feedback-Type: abuse\nVersion: 2\n", BW_ARF_EFIELD, "Version: \"2\" is not supported" },
	{ "Feedback-Type: abuse\nVersion: 1\nVersion: 1\n", BW_ARF_EFIELD, "Version appears twice" },
	{ "Feedback-Type: abuse\nUser-Agent:\n", BW_ARF_EFIELD, "User-Agent: empty" },
	{ "Feedback-Type: abuse\nUser-Agent: a\001b\n", BW_ARF_EFIELD, "User-Agent: empty, or control" },
	{ "Feedback-Type: abuse\nSource-IP: 192.0.2.300\n", BW_ARF_EFIELD, "\"192.0.2.300\" is not an IP" },
	{ "Feedback-Type: abuse\nSource-IP: mail.example.com\n", BW_ARF_EFIELD, "not an IP address" },
	{ "Feedback-Type: abuse\nSource-IP: 192.0.2.1\nSource-IP: 192.0.2.2\n", BW_ARF_EFIELD,
	  "Source-IP appears twice" },
	{ "Feedback-Type: abuse\nArrival-Date: yesterday\n", BW_ARF_EFIELD, "not an RFC 5322 date" },
	{ "Feedback-Type: abuse\nArrival-Date: Mon, 30 Feb 2026 10:00:00 +0000\n", BW_ARF_EFIELD,
	  "not an RFC 5322 date" },
	{ "Feedback-Type: abuse\nArrival-Date: Thu, 29 Feb 2024 10:00:00 +0000\nArrival-Date: Thu, 29 Feb "
	  "2024 10:00:00 +0000\n", BW_ARF_EFIELD, "Arrival-Date appears twice" },
	{ "Feedback-Type: abuse\nArrival-Date: Sun, 29 Feb 2026 10:00:00 +0000\n", BW_ARF_EFIELD, "RFC 5322" },
	{ "Feedback-Type: abuse\nArrival-Date: 1 Mar 2026 10:00:00\n", BW_ARF_EFIELD, "RFC 5322" },
	{ "Feedback-Type: abuse\nArrival-Date: 1 Mar 2026 24:00:00 +0000\n", BW_ARF_EFIELD, "RFC 5322" },
	{ "Feedback-Type: abuse\nArrival-Date: 1 Mar 2026 10:00:00 XYZ\n", BW_ARF_EFIELD, "RFC 5322" },
	{ "Feedback-Type: abuse\nArrival-Date: Fri, 1 Mar 2026 10:00:00 +0000 trailing\n", BW_ARF_EFIELD,
	  "RFC 5322" },
	{ "Feedback-Type: abuse\nOriginal-Rcpt-To:\n", BW_ARF_EFIELD, "Original-Rcpt-To: \"\" is not an address" },
	{ "Feedback-Type: abuse\nOriginal-Rcpt-To: <>\n", BW_ARF_EFIELD, "not an address" },
	{ "Feedback-Type: abuse\nOriginal-Rcpt-To: <bob@example.net\n", BW_ARF_EFIELD, "not an address" },
	{ "Feedback-Type: abuse\nOriginal-Rcpt-To: bob smith@example.net\n", BW_ARF_EFIELD, "not an address" },
	{ "Feedback-Type: abuse\nOriginal-Mail-From: <a@example.com> junk\n", BW_ARF_EFIELD,
	  "Original-Mail-From" },
	{ "Feedback-Type: abuse\nOriginal-Mail-From: <a@example.com>\nOriginal-Mail-From: <b@example.com>\n",
	  BW_ARF_EFIELD, "Original-Mail-From appears twice" },
	{ "Feedback-Type: abuse\nReported-Domain: bad..example.com\n", BW_ARF_EFIELD, "not a domain" },
	{ "Feedback-Type: abuse\nReported-Domain: exa mple.com\n", BW_ARF_EFIELD, "not a domain" },
	{ "Feedback-Type: abuse\nnot a field line\n", BW_ARF_EFIELD, "not a header field" },
	{ "Feedback-Type: abuse\nUser-Agent: a\n folded: continuation\nVersion: 1\n", BW_ARF_OK, "" },
	{ "Feedback-Type: abuse \t\nUser-Agent:   x/1  \nVersion:\t1 \n", BW_ARF_OK, "" },
};

START_TEST(test_fields)
{
	char *msg, err[256];
	bw_arf r;
	bw_arf_err e;

	ck_assert(asprintf(&msg, HDR CT_ARF "\n--b\nContent-Type: message/feedback-report\n\n%s\n" ORIG_PART
	    "--b--\n", field_cases[_i].fields) > 0);
	e = parse_str(msg, &r, err, sizeof(err));
	ck_assert_msg(e == field_cases[_i].want, "case %d: %s (%s)", _i, bw_arf_err_name(e), err);
	ck_assert_msg(strstr(err, field_cases[_i].in_err) != NULL, "case %d: \"%s\" lacks \"%s\"", _i, err,
	    field_cases[_i].in_err);
	bw_arf_clear(&r);
	free(msg);
}
END_TEST

static const struct {
	const char *date;
	int64_t want;
} date_cases[] = {
	{ "Tue, 3 Mar 2026 06:00:00 +0000", 1772517600 },
	{ "3 Mar 2026 06:00 +0000", 1772517600 },
	{ "3 Mar 2026 01:00:00 EST", 1772517600 },
	{ "2 Mar 2026 22:00:00 PST", 1772517600 },
	{ "3 Mar 2026 07:30:00 +0130", 1772517600 },
	{ "3 Mar 2026 06:00:00 UT", 1772517600 },
	{ "3 Mar 2026 06:00:00 UTC", 1772517600 },
	{ "3 Mar 2026 06:00:00 A", 1772517600 }, /* military: -0000 */
	{ "(sent) Tue , 3 mar 2026 06 : 00 : 00 (z) +0000 (UTC)", 1772517600 },
	{ "3 Mar 126 06:00:00 +0000", 1772517600 },  /* three-digit year: +1900 */
	{ "1 Jan 70 00:00:00 +0000", 0 },
	{ "31 Dec 1969 23:59:59 +0000", -1 },
	{ "29 Feb 2000 00:00:00 +0000", 951782400 },
	{ "1 Jan 49 00:00:00 +0000", 2493072000 },   /* two-digit year < 50: 20xx */
};

START_TEST(test_dates)
{
	char *msg, err[256];
	bw_arf r;

	ck_assert(asprintf(&msg, HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\nArrival-Date: %s\n") "--b--\n",
	    date_cases[_i].date) > 0);
	ck_assert_msg(parse_str(msg, &r, err, sizeof(err)) == BW_ARF_OK, "%s: %s", date_cases[_i].date, err);
	ck_assert_msg(r.arrival == date_cases[_i].want, "%s: %lld, want %lld", date_cases[_i].date,
	    (long long)r.arrival, (long long)date_cases[_i].want);
	ck_assert_str_eq(r.arrival_date, date_cases[_i].date);
	bw_arf_clear(&r);
	free(msg);
}
END_TEST

START_TEST(test_field_variants)
{
	char err[256];
	bw_arf r;

	/* Arrival-Date wins over Received-Date, in either order */
	ck_assert_int_eq(parse_str(HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\n"
	    "Received-Date: 1 Jan 2020 00:00:00 +0000\nArrival-Date: 3 Mar 2026 06:00:00 +0000\n") "--b--\n",
	    &r, err, sizeof(err)), BW_ARF_OK);
	ck_assert_int_eq(r.arrival, 1772517600);
	ck_assert_str_eq(r.arrival_date, "3 Mar 2026 06:00:00 +0000");
	bw_arf_clear(&r);
	ck_assert_int_eq(parse_str(HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\n"
	    "Arrival-Date: 3 Mar 2026 06:00:00 +0000\nReceived-Date: 1 Jan 2020 00:00:00 +0000\n") "--b--\n",
	    &r, err, sizeof(err)), BW_ARF_OK);
	ck_assert_int_eq(r.arrival, 1772517600);
	bw_arf_clear(&r);

	/* a leading empty line in the part, unknown feedback type, other
	   versions, IPv6 literal forms, a quoted local part, extension
	   fields ignored, a part with no closing delimiter */
	ck_assert_msg(parse_str(HDR CT_ARF "\n--b\nContent-Type: message/feedback-report\n\n\n"
	    "Feedback-Type: Opt-Out\nVersion: 0.1\nSource-IP: IPv6:2001:DB8::1\n"
	    "Original-Rcpt-To: <\"john smith\"@example.net>\nIncidents: 3\nX-Extension: yes\n"
	    "Reported-Domain: xn--bcher-kva.example\n", &r, err, sizeof(err)) == BW_ARF_OK, "%s", err);
	ck_assert_int_eq(r.ftype, BW_FT_UNKNOWN);
	ck_assert_str_eq(r.feedback_type, "opt-out");
	ck_assert_str_eq(r.version, "0.1");
	ck_assert_str_eq(r.source_ip, "2001:db8::1");
	ck_assert_str_eq(r.rcpt[0], "\"john smith\"@example.net");
	ck_assert_str_eq(r.domains[0], "xn--bcher-kva.example");
	ck_assert_int_eq(r.has_original, BW_ARF_ORIG_NONE);
	ck_assert(!r.conforming);
	bw_arf_clear(&r);

	/* each feedback type by name */
	static const char *const types[] = { "abuse", "fraud", "virus", "other", "not-spam", "auth-failure" };
	for (int i = 0; i < NROWS(types); i++) {
		char *msg;

		ck_assert(asprintf(&msg, HDR CT_ARF "\n" FB_PART("Feedback-Type: %s\n") "--b--\n", types[i]) > 0);
		ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_OK);
		ck_assert_int_eq(r.ftype, (bw_arf_ftype)i);
		ck_assert_str_eq(bw_arf_ftype_name(r.ftype), types[i]);
		bw_arf_clear(&r);
		free(msg);
	}

	/* Source-IP in brackets */
	ck_assert_int_eq(parse_str(HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\nSource-IP: [192.0.2.1]\n")
	    "--b--\n", &r, err, sizeof(err)), BW_ARF_OK);
	ck_assert_str_eq(r.source_ip, "192.0.2.1");
	bw_arf_clear(&r);

	/* message/global and message/global-headers count as the original;
	   an original part with no header field counts as none */
	ck_assert_int_eq(parse_str(HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\n")
	    "--b\nContent-Type: message/global\n\nFrom: a@example.com\n\nbody\n--b--\n", &r, err, sizeof(err)),
	    BW_ARF_OK);
	ck_assert_int_eq(r.has_original, BW_ARF_ORIG_MESSAGE);
	bw_arf_clear(&r);
	ck_assert_int_eq(parse_str(HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\n")
	    "--b\nContent-Type: message/global-headers\n\nFrom: a@example.com\n--b--\n", &r, err, sizeof(err)),
	    BW_ARF_OK);
	ck_assert_int_eq(r.has_original, BW_ARF_ORIG_HEADERS);
	bw_arf_clear(&r);
	ck_assert_int_eq(parse_str(HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\n")
	    "--b\nContent-Type: text/rfc822-headers\n\n\n--b--\n", &r, err, sizeof(err)), BW_ARF_OK);
	ck_assert_int_eq(r.has_original, BW_ARF_ORIG_NONE);
	ck_assert(all_zero(r.orig_hash, 32));
	bw_arf_clear(&r);

	/* a broken line in the original ends its header block, not the report */
	ck_assert_int_eq(parse_str(HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\n")
	    "--b\nContent-Type: message/rfc822\n\nFrom: a@example.com\n>From the body, really\n"
	    "Message-ID: <later@example.com>\n--b--\n", &r, err, sizeof(err)), BW_ARF_OK);
	ck_assert_str_eq(r.orig_from, "a@example.com");
	ck_assert_str_null(r.orig_msgid);
	bw_arf_clear(&r);

	/* the first of repeated original fields is kept */
	ck_assert_int_eq(parse_str(HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\n")
	    "--b\nContent-Type: message/rfc822\n\n" BW_TRACE_HEADER ": first\n" BW_TRACE_HEADER ": second\n"
	    "\nbody\n--b--\n", &r, err, sizeof(err)), BW_ARF_OK);
	ck_assert_str_eq(r.trace, "first");
	bw_arf_clear(&r);

	/* transport padding after a delimiter; preamble and epilogue ignored */
	ck_assert_int_eq(parse_str(HDR CT_ARF "\npreamble\n--b  \nContent-Type: message/feedback-report\n\n"
	    "Feedback-Type: virus\n--b-- \t\nepilogue\n--b\nContent-Type: message/feedback-report\n\n", &r, err,
	    sizeof(err)), BW_ARF_OK);
	ck_assert_int_eq(r.ftype, BW_FT_VIRUS);
	bw_arf_clear(&r);

	/* a boundary that is a prefix of a longer line does not split */
	ck_assert_int_eq(parse_str(HDR CT_ARF "\n--b\nContent-Type: message/feedback-report\n\n"
	    "Feedback-Type: abuse\n--bx not a delimiter\n--b--\n", &r, err, sizeof(err)), BW_ARF_EFIELD);
}
END_TEST

/* ---- bounds ---- */

static char *
repeat(const char *s, size_t times)
{
	size_t n = strlen(s);
	char *out = malloc(n * times + 1);

	ck_assert(out != NULL);
	for (size_t i = 0; i < times; i++)
		memcpy(out + i * n, s, n);
	out[n * times] = '\0';
	return out;
}

START_TEST(test_limits)
{
	char *msg, *fill, err[256];
	bw_arf r;
	size_t big = (size_t)BW_ARF_SIZE_MAX + 1;

	/* the whole message */
	msg = malloc(big);
	ck_assert(msg != NULL);
	memset(msg, 'a', big);
	ck_assert_int_eq(bw_arf_parse(msg, big, &r, err, sizeof(err)), BW_ARF_ETOOBIG);
	free(msg);

	/* one field over BW_ARF_LINE_MAX, folded or not */
	fill = repeat("x", BW_ARF_LINE_MAX);
	ck_assert(asprintf(&msg, HDR "X-Long: %s\n" CT_ARF "\n", fill) > 0);
	ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_ELIMIT);
	ck_assert_msg(strstr(err, "over 16384 bytes") != NULL, "%s", err);
	free(msg);
	free(fill);
	fill = repeat(" folded\n", BW_ARF_LINE_MAX / 8 + 1);
	ck_assert(asprintf(&msg, HDR "X-Long: a\n%s" CT_ARF "\n", fill) > 0);
	ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_ELIMIT);
	free(msg);
	free(fill);

	/* the block over BW_ARF_HDR_MAX with fields each within bounds */
	fill = repeat("X-Fill: 0123456789012345678901234567890123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890123456789\n", 500);
	ck_assert(asprintf(&msg, HDR "%s" CT_ARF "\n", fill) > 0);
	ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_ELIMIT);
	ck_assert_msg(strstr(err, "over 65536 bytes") != NULL, "%s", err);
	free(msg);
	free(fill);

	/* too many fields: in the report header, and in the feedback-report */
	fill = repeat("X: y\n", BW_ARF_FIELDS_MAX);
	ck_assert(asprintf(&msg, HDR "%s" CT_ARF "\n", fill) > 0);
	ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_ELIMIT);
	ck_assert_msg(strstr(err, "more than 500 fields") != NULL, "%s", err);
	free(msg);
	ck_assert(asprintf(&msg, HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\n%s") "--b--\n", fill) > 0);
	ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_ELIMIT);
	ck_assert_msg(strstr(err, "feedback-report: more than") != NULL, "%s", err);
	free(msg);
	free(fill);

	/* too many parts */
	fill = repeat("--b\n\ntext\n", BW_ARF_PARTS_MAX);
	ck_assert(asprintf(&msg, HDR CT_ARF "\n%s" FB_PART("Feedback-Type: abuse\n") "--b--\n", fill) > 0);
	ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_ELIMIT);
	ck_assert_msg(strstr(err, "more than 32 parts") != NULL, "%s", err);
	free(msg);
	free(fill);
	/* ... but exactly the maximum is fine */
	fill = repeat("--b\n\ntext\n", BW_ARF_PARTS_MAX - 1);
	ck_assert(asprintf(&msg, HDR CT_ARF "\n%s" FB_PART("Feedback-Type: abuse\n") "--b--\n", fill) > 0);
	ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_OK);
	bw_arf_clear(&r);
	free(msg);
	free(fill);

	/* a boundary over BW_ARF_BOUNDARY_MAX */
	fill = repeat("q", BW_ARF_BOUNDARY_MAX + 1);
	ck_assert(asprintf(&msg, HDR "Content-Type: multipart/report; report-type=feedback-report; "
	    "boundary=\"%s\"\n\n--%s\n", fill, fill) > 0);
	ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_ELIMIT);
	ck_assert_msg(strstr(err, "boundary is over 200 bytes") != NULL, "%s", err);
	free(msg);
	free(fill);
	fill = repeat("q", BW_ARF_BOUNDARY_MAX);
	ck_assert(asprintf(&msg, HDR "Content-Type: multipart/report; report-type=feedback-report; "
	    "boundary=\"%s\"\n\n--%s\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n--%s--\n",
	    fill, fill, fill) > 0);
	ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_OK);
	bw_arf_clear(&r);
	free(msg);
	free(fill);

	/* too many Original-Rcpt-To */
	fill = repeat("Original-Rcpt-To: a@example.net\n", BW_ARF_MULTI_MAX + 1);
	ck_assert(asprintf(&msg, HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\n%s") "--b--\n", fill) > 0);
	ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_ELIMIT);
	ck_assert_msg(strstr(err, "more than 16 Original-Rcpt-To") != NULL, "%s", err);
	free(msg);
	free(fill);
	fill = repeat("Original-Rcpt-To: a@example.net\n", BW_ARF_MULTI_MAX);
	ck_assert(asprintf(&msg, HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\n%s") "--b--\n", fill) > 0);
	ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_OK);
	ck_assert_uint_eq(r.nrcpt, BW_ARF_MULTI_MAX);
	bw_arf_clear(&r);
	free(msg);
	free(fill);

	/* the original's headers are bounded too */
	fill = repeat("Received: x\n", BW_ARF_FIELDS_MAX + 1);
	ck_assert(asprintf(&msg, HDR CT_ARF "\n" FB_PART("Feedback-Type: abuse\n")
	    "--b\nContent-Type: message/rfc822\n\n%s\nbody\n--b--\n", fill) > 0);
	ck_assert_int_eq(parse_str(msg, &r, err, sizeof(err)), BW_ARF_ELIMIT);
	ck_assert_msg(strstr(err, "original message header") != NULL, "%s", err);
	free(msg);
	free(fill);
}
END_TEST

/* Every prefix and many damaged copies of each report: an answer, never a
 * crash (run under the sanitizers), and an error always has a sentence. */
START_TEST(test_robust)
{
	static const char *const files[] = { "abuse-rfc822.eml", "abuse-headers.eml", "sparse.eml",
		"dsn.eml", "malformed.eml", "two-rcpt.eml" };
	struct buf m = slurp(files[_i]);
	uint32_t seed = 12345u + (uint32_t)_i;
	char err[256], *copy;
	bw_arf r;

	for (size_t n = 0; n <= m.n; n++) {
		/* an exact-size copy, so that reading past the end is caught */
		copy = malloc(n ? n : 1);
		ck_assert(copy != NULL);
		memcpy(copy, m.p, n);
		bw_arf_err e = bw_arf_parse(copy, n, &r, err, sizeof(err));
		ck_assert_msg(e == BW_ARF_OK || err[0] != '\0', "%s cut at %zu: %s without a sentence",
		    files[_i], n, bw_arf_err_name(e));
		bw_arf_clear(&r);
		free(copy);
	}
	for (int k = 0; k < 3000; k++) {
		static const char bytes[] = "\n\r:-;=<>\"( \t\001\200\377ab";

		copy = malloc(m.n);
		ck_assert(copy != NULL);
		memcpy(copy, m.p, m.n);
		for (int j = 0; j < 1 + k % 4; j++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = (seed >> 8) % m.n;
			seed = seed * 1103515245u + 12345u;
			copy[at] = bytes[(seed >> 8) % (sizeof(bytes) - 1)];
		}
		bw_arf_err e = bw_arf_parse(copy, m.n, &r, err, sizeof(err));
		ck_assert(e == BW_ARF_OK || err[0] != '\0');
		bw_arf_clear(&r);
		free(copy);
	}
	free(m.p);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(bw_arf_err_name(BW_ARF_OK), "ok");
	ck_assert_str_eq(bw_arf_err_name(BW_ARF_ENOMEM), "out of memory");
	ck_assert_str_eq(bw_arf_err_name((bw_arf_err)99), "?");
	ck_assert_str_eq(bw_arf_ftype_name(BW_FT_NOT_SPAM), "not-spam");
	ck_assert_str_eq(bw_arf_ftype_name(BW_FT_UNKNOWN), "unknown");
	ck_assert_str_eq(bw_arf_auth_status_name(BW_ARF_AUTH_SHORT_L), "short l=");
	ck_assert_str_eq(bw_arf_auth_status_name(BW_ARF_AUTH_ERROR), "error");
	ck_assert_str_eq(bw_arf_auth_status_name((bw_arf_auth_status)99), "?");
	/* NULL input is an empty message, not a crash */
	bw_arf r;
	char err[128];
	ck_assert_int_eq(bw_arf_parse(NULL, 10, &r, err, sizeof(err)), BW_ARF_ENOTREPORT);
	ck_assert_int_eq(bw_arf_parse("", 0, &r, NULL, 0), BW_ARF_ENOTREPORT);
}
END_TEST

/* ---------------------------------------------------------------- dedupe */

static bool
is_key(const char *k)
{
	if (strlen(k) != BW_ARF_KEY_LEN || strncmp(k, "arf1:", 5) != 0)
		return false;
	for (const char *p = k + 5; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

START_TEST(test_dedupe)
{
	struct buf m = slurp("abuse-rfc822.eml"), c = crlf(m);
	bw_arf a, b;
	char err[256], k1[BW_ARF_KEY_LEN + 1], k2[BW_ARF_KEY_LEN + 1], k3[BW_ARF_KEY_LEN + 1];

	ck_assert_int_eq(bw_arf_parse(m.p, m.n, &a, err, sizeof(err)), BW_ARF_OK);
	ck_assert_int_eq(bw_arf_parse(c.p, c.n, &b, err, sizeof(err)), BW_ARF_OK);
	/* the same report twice (here once with CRLF) */
	ck_assert(bw_arf_dedupe_key(&a, a.rcpt[0], k1));
	ck_assert(bw_arf_dedupe_key(&b, b.rcpt[0], k2));
	ck_assert_msg(is_key(k1), "%s", k1);
	ck_assert_str_eq(k1, k2);
	/* the recipient as written does not matter ... */
	ck_assert(bw_arf_dedupe_key(&a, "  <Alice@EXAMPLE.net> ", k2));
	ck_assert_str_eq(k1, k2);
	/* ... which recipient does */
	ck_assert(bw_arf_dedupe_key(&a, "bob@example.net", k3));
	ck_assert_str_ne(k1, k3);
	/* nor does the header hash when there is a Message-ID */
	b.orig_hash[0] ^= 1;
	ck_assert(bw_arf_dedupe_key(&b, "alice@example.net", k2));
	ck_assert_str_eq(k1, k2);
	/* another Message-ID is another message */
	free(b.orig_msgid);
	b.orig_msgid = strdup("<20260303050430.7f3b@mail.example.com>");
	ck_assert(bw_arf_dedupe_key(&b, "alice@example.net", k2));
	ck_assert_str_ne(k1, k2);
	/* white space inside the brackets, comments outside, do not count */
	free(b.orig_msgid);
	b.orig_msgid = strdup("(c) < 20260303050430.7f3a@mail.example.com\t> (d)");
	ck_assert(bw_arf_dedupe_key(&b, "alice@example.net", k2));
	ck_assert_str_eq(k1, k2);
	/* no recipient: no key */
	ck_assert(!bw_arf_dedupe_key(&a, "", k2));
	ck_assert_str_eq(k2, "");
	ck_assert(!bw_arf_dedupe_key(&a, " <> ", k2));
	ck_assert(!bw_arf_dedupe_key(&a, NULL, k2));
	bw_arf_clear(&a);
	bw_arf_clear(&b);
	free(m.p);
	free(c.p);
}
END_TEST

START_TEST(test_dedupe_by_headers)
{
	struct buf m = slurp("sparse.eml");
	char *refolded, *changed, err[256];
	char k1[BW_ARF_KEY_LEN + 1], k2[BW_ARF_KEY_LEN + 1], k3[BW_ARF_KEY_LEN + 1];
	bw_arf a, b, c;

	/* no Message-ID: the header hash stands in; re-folding and extra
	   white space do not change it, another value does */
	refolded = replace(m.p, "Subject: Weekly letter", "Subject:   Weekly\n\t letter  ");
	changed = replace(m.p, "Subject: Weekly letter", "Subject: Weekly letters");
	ck_assert_int_eq(parse_str(m.p, &a, err, sizeof(err)), BW_ARF_OK);
	ck_assert_int_eq(parse_str(refolded, &b, err, sizeof(err)), BW_ARF_OK);
	ck_assert_int_eq(parse_str(changed, &c, err, sizeof(err)), BW_ARF_OK);
	ck_assert(bw_arf_dedupe_key(&a, "carol@example.net", k1));
	ck_assert(bw_arf_dedupe_key(&b, "carol@example.net", k2));
	ck_assert(bw_arf_dedupe_key(&c, "carol@example.net", k3));
	ck_assert(is_key(k1));
	ck_assert_str_eq(k1, k2);
	ck_assert_str_ne(k1, k3);
	/* "<>" as Message-ID says nothing: the headers decide */
	a.orig_msgid = strdup("<>");
	ck_assert(bw_arf_dedupe_key(&a, "carol@example.net", k2));
	ck_assert_str_eq(k1, k2);
	/* neither Message-ID nor original: no key */
	a.has_original = BW_ARF_ORIG_NONE;
	ck_assert(!bw_arf_dedupe_key(&a, "carol@example.net", k2));
	ck_assert_str_eq(k2, "");
	/* a Message-ID alone is enough */
	free(a.orig_msgid);
	a.orig_msgid = strdup("<only@example.com>");
	ck_assert(bw_arf_dedupe_key(&a, "carol@example.net", k2));
	ck_assert_str_ne(k1, k2);
	bw_arf_clear(&a);
	bw_arf_clear(&b);
	bw_arf_clear(&c);
	free(refolded);
	free(changed);
	free(m.p);
}
END_TEST

/* ---------------------------------------------------------------- DKIM */

static struct {
	char dir[256];
	char keyfile[300];
	char *pem;        /* private key, PEM */
	char *pub;        /* public key, base64 DER */
	DKIM_LIB *signer;
	bw_arf_verifier *v;
} dk;

static const char *const trusted_list[] = { "example.net" };
static const bw_arf_trust trusted = { trusted_list, 1, false };
static const bw_arf_trust trusted_sub = { trusted_list, 1, true };

/* Keys are made once per test case run (in the parent: the forked tests
 * inherit them) and never written anywhere but the temporary directory. */
static void
dk_setup(void)
{
	EVP_PKEY *pk;
	BIO *b;
	char *data, err[256];
	long n;
	unsigned char *der = NULL;
	int dl;
	FILE *f;
	bw_arf_verifier_opts o = { BW_ARF_QUERY_FILE, NULL, 0, 0 };
	const char *tmp = getenv("TMPDIR");

	snprintf(dk.dir, sizeof(dk.dir), "%s/bw-arf-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
	ck_assert_msg(mkdtemp(dk.dir) != NULL, "mkdtemp: %s", strerror(errno));
	pk = EVP_RSA_gen(2048);
	ck_assert(pk != NULL);
	b = BIO_new(BIO_s_mem());
	ck_assert(PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) == 1);
	n = BIO_get_mem_data(b, &data);
	dk.pem = strndup(data, (size_t)n);
	BIO_free(b);
	dl = i2d_PUBKEY(pk, &der);
	ck_assert(dl > 0);
	dk.pub = malloc((size_t)dl * 2 + 4);
	EVP_EncodeBlock((unsigned char *)dk.pub, der, dl);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);

	snprintf(dk.keyfile, sizeof(dk.keyfile), "%s/keys", dk.dir);
	f = fopen(dk.keyfile, "w");
	ck_assert(f != NULL);
	fprintf(f, "# selector._domainkey.domain TXT\n");
	fprintf(f, "fbl._domainkey.example.net v=DKIM1; k=rsa; p=%s\n", dk.pub);
	fprintf(f, "fbl._domainkey.reports.example.net v=DKIM1; k=rsa; p=%s\n", dk.pub);
	fprintf(f, "fbl._domainkey.badexample.net v=DKIM1; k=rsa; p=%s\n", dk.pub);
	fprintf(f, "fbl._domainkey.example.com v=DKIM1; k=rsa; p=%s\n", dk.pub);
	fprintf(f, "revoked._domainkey.example.net v=DKIM1; k=rsa; p=\n");
	fclose(f);

	dk.signer = dkim_init(NULL, NULL);
	ck_assert(dk.signer != NULL);
	o.query_info = dk.keyfile;
	dk.v = bw_arf_verifier_new(&o, err, sizeof(err));
	ck_assert_msg(dk.v != NULL, "%s", err);
}

static void
dk_teardown(void)
{
	char path[400];

	bw_arf_verifier_free(dk.v);
	dkim_close(dk.signer);
	snprintf(path, sizeof(path), "%s/keys", dk.dir);
	unlink(path);
	rmdir(dk.dir);
	free(dk.pem);
	free(dk.pub);
	memset(&dk, 0, sizeof(dk));
}

/* msg with a DKIM-Signature by domain/selector on top (malloc'd). length:
 * -1 for the whole body, else l=length; fullsig: l= for the whole body. */
static char *
sign_as(const char *msg, const char *domain, const char *selector, ssize_t length, bool fullsig,
    dkim_canon_t bodycanon)
{
	DKIM *d;
	DKIM_STAT st;
	const char *p = msg, *end = msg + strlen(msg);
	unsigned char *sig = NULL;
	size_t siglen = 0;
	unsigned flags = DKIM_LIBFLAGS_FIXCRLF | (fullsig ? DKIM_LIBFLAGS_SIGNLEN : 0);
	char *out;

	ck_assert(dkim_options(dk.signer, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags)) == DKIM_STAT_OK);
	d = dkim_sign(dk.signer, (const unsigned char *)"test", NULL, (unsigned char *)dk.pem,
	    (const unsigned char *)selector, (const unsigned char *)domain, DKIM_CANON_RELAXED, bodycanon,
	    DKIM_SIGN_RSASHA256, length, &st);
	ck_assert_msg(d != NULL, "dkim_sign: %d", st);
	/* the header fields, each with its folds, without its line end */
	while (p < end && *p != '\n' && !(*p == '\r' && p + 1 < end && p[1] == '\n')) {
		const char *s = p, *e;

		do {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			p = nl ? nl + 1 : end;
		} while (p < end && (*p == ' ' || *p == '\t'));
		e = p;
		while (e > s && (e[-1] == '\n' || e[-1] == '\r'))
			e--;
		ck_assert(dkim_header(d, (unsigned char *)(uintptr_t)s, (size_t)(e - s)) == DKIM_STAT_OK);
	}
	p += *p == '\r' ? 2 : 1;
	ck_assert(dkim_eoh(d) == DKIM_STAT_OK);
	if (p < end)
		ck_assert(dkim_body(d, (unsigned char *)(uintptr_t)p, (size_t)(end - p)) == DKIM_STAT_OK);
	ck_assert_int_eq(dkim_eom(d, NULL), DKIM_STAT_OK);
	ck_assert(dkim_getsighdr_d(d, strlen("DKIM-Signature: "), &sig, &siglen) == DKIM_STAT_OK);
	ck_assert(asprintf(&out, "DKIM-Signature: %s\n%s", (char *)sig, msg) > 0);
	dkim_free(d);
	return out;
}

/* Does the first DKIM-Signature of msg carry an l= tag? Tags are looked
 * at up to b=, whose base64 could hold the letters. */
static bool
has_l_tag(const char *msg)
{
	for (const char *p = msg + strlen("DKIM-Signature:"); p[0] != '\0' && p[1] != '\0'; p++) {
		if (p[-1] != ' ' && p[-1] != '\t' && p[-1] != ';')
			continue;
		if (p[0] == 'b' && p[1] == '=')
			return false;
		if (p[0] == 'l' && p[1] == '=')
			return true;
	}
	return false;
}

static char *
sign(const char *msg, const char *domain)
{
	return sign_as(msg, domain, "fbl", -1, false, DKIM_CANON_RELAXED);
}

static bw_arf_auth
verify(const char *msg, const bw_arf_trust *t)
{
	bw_arf_auth a;

	bw_arf_authenticate(dk.v, t, msg, strlen(msg), &a);
	return a;
}

#define ck_assert_auth(a, st, dom) do { \
	ck_assert_msg((a).status == (st), "%s (%s), want %s", bw_arf_auth_status_name((a).status), (a).why, \
	    bw_arf_auth_status_name(st)); \
	ck_assert((a).authenticated == ((st) == BW_ARF_AUTH_OK)); \
	ck_assert_str_eq((a).domain, (dom)); \
	ck_assert((a).why[0] != '\0'); \
} while (0)

START_TEST(test_dkim_trusted)
{
	struct buf m = slurp("abuse-rfc822.eml");
	char *s = sign(m.p, "example.net");
	bw_arf_auth a = verify(s, &trusted);
	bw_arf r;
	char err[256];

	ck_assert_auth(a, BW_ARF_AUTH_OK, "example.net");
	ck_assert_msg(strstr(a.why, "verified") != NULL, "%s", a.why);
	/* the signed report still parses (the signature is just a field) */
	ck_assert_int_eq(parse_str(s, &r, err, sizeof(err)), BW_ARF_OK);
	ck_assert_str_eq(r.trace, "v1.k1.mfrwgzlsnfxgo3tfoqqho2lunaqhg33nmu");
	bw_arf_clear(&r);
	/* the domain is matched without regard to case or a trailing dot */
	static const char *const upper[] = { "EXAMPLE.NET." };
	bw_arf_trust tu = { upper, 1, false };
	a = verify(s, &tu);
	ck_assert_auth(a, BW_ARF_AUTH_OK, "example.net");
	free(s);
	free(m.p);
}
END_TEST

START_TEST(test_dkim_crlf)
{
	struct buf m = slurp("abuse-headers.eml");
	char *s = sign(m.p, "example.net");
	struct buf in = { s, strlen(s) }, c = crlf(in);
	bw_arf_auth a;

	/* as it comes over SMTP: CRLF everywhere */
	bw_arf_authenticate(dk.v, &trusted, c.p, c.n, &a);
	ck_assert_auth(a, BW_ARF_AUTH_OK, "example.net");
	free(c.p);
	free(s);
	free(m.p);
}
END_TEST

START_TEST(test_dkim_body_altered)
{
	struct buf m = slurp("abuse-rfc822.eml");
	char *s = sign(m.p, "example.net"), *t = replace(s, "Original-Rcpt-To: <alice@example.net>",
	    "Original-Rcpt-To: <mallory@example.net>");
	bw_arf_auth a = verify(t, &trusted);

	ck_assert_auth(a, BW_ARF_AUTH_BODYHASH, "example.net");
	ck_assert_msg(strstr(a.why, "body hash") != NULL, "%s", a.why);
	free(t);
	free(s);
	free(m.p);
}
END_TEST

START_TEST(test_dkim_header_altered)
{
	struct buf m = slurp("abuse-rfc822.eml");
	char *s = sign(m.p, "example.net"), *t = replace(s, "Subject: Abuse report", "Subject: Abuse rep0rt");
	bw_arf_auth a = verify(t, &trusted);

	ck_assert_auth(a, BW_ARF_AUTH_BADSIG, "example.net");
	free(t);
	free(s);
	free(m.p);
}
END_TEST

START_TEST(test_dkim_untrusted)
{
	struct buf m = slurp("abuse-rfc822.eml");
	char *s = sign(m.p, "example.com");
	bw_arf_auth a = verify(s, &trusted);

	/* a valid signature, by a domain not on the list */
	ck_assert_auth(a, BW_ARF_AUTH_UNTRUSTED, "example.com");
	free(s);
	/* a suffix that is not a subdomain never matches */
	s = sign(m.p, "badexample.net");
	a = verify(s, &trusted_sub);
	ck_assert_auth(a, BW_ARF_AUTH_UNTRUSTED, "badexample.net");
	free(s);
	/* an empty list trusts no one */
	bw_arf_trust none = { NULL, 0, true };
	s = sign(m.p, "example.net");
	a = verify(s, &none);
	ck_assert_auth(a, BW_ARF_AUTH_UNTRUSTED, "example.net");
	free(s);
	free(m.p);
}
END_TEST

START_TEST(test_dkim_subdomain)
{
	struct buf m = slurp("abuse-rfc822.eml");
	char *s = sign(m.p, "reports.example.net");
	bw_arf_auth a;

	a = verify(s, &trusted_sub);
	ck_assert_auth(a, BW_ARF_AUTH_OK, "reports.example.net");
	a = verify(s, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_UNTRUSTED, "reports.example.net");
	free(s);
	free(m.p);
}
END_TEST

START_TEST(test_dkim_nosig)
{
	struct buf m = slurp("abuse-rfc822.eml");
	bw_arf_auth a = verify(m.p, &trusted);

	ck_assert_auth(a, BW_ARF_AUTH_NOSIG, "");
	/* a message that is all header */
	a = verify("From: a@example.net\nSubject: x\n", &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_NOSIG, "");
	a = verify("", &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_NOSIG, "");
	free(m.p);
}
END_TEST

START_TEST(test_dkim_short_l)
{
	struct buf m = slurp("abuse-rfc822.eml");
	char *s, *t;
	bw_arf_auth a;

	/* l= well short of the body */
	s = sign_as(m.p, "example.net", "fbl", 200, false, DKIM_CANON_RELAXED);
	ck_assert_msg(has_l_tag(s) && strstr(s, "l=200;") != NULL, "%s", s);
	a = verify(s, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_SHORT_L, "example.net");
	ck_assert_msg(strstr(a.why, "covers 200 of") != NULL, "%s", a.why);
	free(s);
	/* l= for the whole body, both canonicalisations, with trailing white
	   space and empty lines that the canonical length leaves out: whole */
	for (int c = 0; c < 2; c++) {
		dkim_canon_t bc = c ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
		char *withtail;

		ck_assert(asprintf(&withtail, "%s  trailer\t with  spaces  \t\n\n \n\n", m.p) > 0);
		s = sign_as(withtail, "example.net", "fbl", -1, true, bc);
		ck_assert_msg(has_l_tag(s), "%s", s);
		a = verify(s, &trusted);
		ck_assert_auth(a, BW_ARF_AUTH_OK, "example.net");
		/* ... and then text added after the signed body: the signature
		   still verifies, the report must not count */
		ck_assert(asprintf(&t, "%sOriginal-Rcpt-To: <mallory@example.net>\n", s) > 0);
		a = verify(t, &trusted);
		ck_assert_auth(a, BW_ARF_AUTH_SHORT_L, "example.net");
		free(t);
		/* even one short line counts, empty lines before it included */
		ck_assert(asprintf(&t, "%sx\n", s) > 0);
		a = verify(t, &trusted);
		ck_assert_auth(a, BW_ARF_AUTH_SHORT_L, "example.net");
		free(t);
		free(s);
		free(withtail);
	}
	/* an empty body: simple makes it one CRLF, which l=0 leaves out;
	   relaxed makes it nothing */
	s = sign_as("From: fbl@example.net\nSubject: x\n\n", "example.net", "fbl", 0, false, DKIM_CANON_SIMPLE);
	a = verify(s, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_SHORT_L, "example.net");
	free(s);
	s = sign_as("From: fbl@example.net\nSubject: x\n\n", "example.net", "fbl", 0, false, DKIM_CANON_RELAXED);
	a = verify(s, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_OK, "example.net");
	free(s);
	free(m.p);
}
END_TEST

START_TEST(test_dkim_nokey)
{
	struct buf m = slurp("sparse.eml");
	char *s = sign_as(m.p, "example.net", "gone", -1, false, DKIM_CANON_RELAXED);
	bw_arf_auth a = verify(s, &trusted);

	ck_assert_auth(a, BW_ARF_AUTH_NOKEY, "example.net");
	ck_assert_msg(strstr(a.why, "gone._domainkey.example.net") != NULL, "%s", a.why);
	free(s);
	/* a revoked key (empty p=) */
	s = sign_as(m.p, "example.net", "revoked", -1, false, DKIM_CANON_RELAXED);
	a = verify(s, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_NOKEY, "example.net");
	free(s);
	free(m.p);
}
END_TEST

START_TEST(test_dkim_tempfail)
{
	struct buf m = slurp("sparse.eml");
	char *s = sign(m.p, "example.net"), err[256], path[400];
	bw_arf_verifier_opts o = { BW_ARF_QUERY_FILE, path, 0, 0 };
	bw_arf_verifier *v;
	bw_arf_auth a;

	/* the key source cannot be read: try again later */
	snprintf(path, sizeof(path), "%s/missing", dk.dir);
	v = bw_arf_verifier_new(&o, err, sizeof(err));
	ck_assert_msg(v != NULL, "%s", err);
	bw_arf_authenticate(v, &trusted, s, strlen(s), &a);
	ck_assert_auth(a, BW_ARF_AUTH_TEMPFAIL, "example.net");
	bw_arf_verifier_free(v);
	free(s);
	free(m.p);
}
END_TEST

START_TEST(test_dkim_several)
{
	struct buf m = slurp("abuse-rfc822.eml");
	char *s1, *s2, *t;
	bw_arf_auth a;

	/* an untrusted and a trusted signature: the trusted one counts */
	s1 = sign(m.p, "example.com");
	s2 = sign(s1, "example.net");
	a = verify(s2, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_OK, "example.net");
	/* the body changed: the trusted reporter's outcome is told, not
	   "untrusted" */
	t = replace(s2, "ten per cent", "fifty per cent");
	a = verify(t, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_BODYHASH, "example.net");
	free(t);
	free(s2);
	/* two trusted signatures, one without a key, one whose body hash
	   fails: the body hash is the better story */
	s2 = sign_as(s1, "example.net", "gone", -1, false, DKIM_CANON_RELAXED);
	t = sign(s2, "example.net");
	free(s2);
	s2 = replace(t, "ten per cent", "fifty per cent");
	a = verify(s2, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_BODYHASH, "example.net");
	free(t);
	free(s2);
	/* a trusted signature with a missing key and one that verifies */
	s2 = sign_as(s1, "example.net", "gone", -1, false, DKIM_CANON_RELAXED);
	t = sign(s2, "example.net");
	a = verify(t, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_OK, "example.net");
	free(t);
	free(s2);
	free(s1);
	free(m.p);
}
END_TEST

START_TEST(test_dkim_bounds)
{
	struct buf m = slurp("sparse.eml");
	char *s = sign(m.p, "example.net"), *t, *fill;
	bw_arf_auth a;

	/* a header field over BW_ARF_LINE_MAX: the library is not asked */
	fill = repeat("x", BW_ARF_LINE_MAX);
	ck_assert(asprintf(&t, "X-Long: %s\n%s", fill, s) > 0);
	a = verify(t, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_TOOBIG, "");
	free(t);
	free(fill);
	/* the header block over BW_ARF_HDR_MAX */
	fill = repeat("X-Fill: 0123456789012345678901234567890123456789012345678901234567890123456789\n", 1000);
	ck_assert(asprintf(&t, "%s%s", fill, s) > 0);
	a = verify(t, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_TOOBIG, "");
	free(t);
	free(fill);
	/* more than BW_ARF_SIGS_MAX signatures */
	fill = repeat("DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x; h=from; bh=YQ==; b=YQ==\n",
	    BW_ARF_SIGS_MAX);
	ck_assert(asprintf(&t, "%s%s", fill, s) > 0);
	a = verify(t, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_TOOBIG, "");
	ck_assert_msg(strstr(a.why, "more than 8") != NULL, "%s", a.why);
	free(t);
	free(fill);
	/* a header that does not parse */
	ck_assert(asprintf(&t, "not a field\n%s", s) > 0);
	a = verify(t, &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_MALFORMED, "");
	free(t);
	/* the whole message over BW_ARF_SIZE_MAX */
	bw_arf_authenticate(dk.v, &trusted, s, (size_t)BW_ARF_SIZE_MAX + 1, &a);
	ck_assert_auth(a, BW_ARF_AUTH_TOOBIG, "");
	free(s);
	free(m.p);
}
END_TEST

START_TEST(test_dkim_garbage_sig)
{
	bw_arf_auth a;

	a = verify("DKIM-Signature: garbage\nFrom: a@example.net\n\nbody\n", &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_BADSIG, "");
	ck_assert_msg(strstr(a.why, "does not parse") != NULL, "%s", a.why);
	/* d= present but the rest broken: the trusted reporter's failure */
	a = verify("DKIM-Signature: v=1; a=rsa-sha256; d=example.net; s=fbl; h=from; b=YQ==\n"
	    "From: a@example.net\n\nbody\n", &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_BADSIG, "example.net");
	/* a forged signature by a trusted domain */
	a = verify("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=fbl; h=from; "
	    "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=YWJjZGVm\nFrom: a@example.net\n\n",
	    &trusted);
	ck_assert_auth(a, BW_ARF_AUTH_BADSIG, "example.net");
}
END_TEST

START_TEST(test_trusted_match)
{
	static const char *const list[] = { "example.net", "Example.COM.", "", NULL };
	bw_arf_trust exact = { list, 4, false }, sub = { list, 4, true };

	ck_assert(bw_arf_trusted(&exact, "example.net"));
	ck_assert(bw_arf_trusted(&exact, "EXAMPLE.NET."));
	ck_assert(bw_arf_trusted(&exact, "example.com"));
	ck_assert(!bw_arf_trusted(&exact, "fbl.example.net"));
	ck_assert(bw_arf_trusted(&sub, "fbl.example.net"));
	ck_assert(bw_arf_trusted(&sub, "a.b.example.com."));
	ck_assert(!bw_arf_trusted(&sub, "badexample.net"));
	ck_assert(!bw_arf_trusted(&sub, ".example.net"));
	ck_assert(!bw_arf_trusted(&sub, "example.org"));
	ck_assert(!bw_arf_trusted(&sub, "net"));
	ck_assert(!bw_arf_trusted(&sub, ""));
	ck_assert(!bw_arf_trusted(&sub, "."));
	ck_assert(!bw_arf_trusted(&sub, NULL));
	ck_assert(!bw_arf_trusted(NULL, "example.net"));
}
END_TEST

START_TEST(test_verifier_opts)
{
	char err[256] = "";
	bw_arf_verifier_opts o = { BW_ARF_QUERY_FILE, NULL, 0, 0 };
	bw_arf_verifier *v;
	bw_arf_auth a;

	ck_assert(bw_arf_verifier_new(&o, err, sizeof(err)) == NULL);
	ck_assert_msg(strstr(err, "needs a key file") != NULL, "%s", err);
	o.query = (bw_arf_query)7;
	ck_assert(bw_arf_verifier_new(&o, err, sizeof(err)) == NULL);
	ck_assert_msg(strstr(err, "unknown key query method") != NULL, "%s", err);
	/* DNS with options: set up, nothing looked up here */
	o.query = BW_ARF_QUERY_DNS;
	o.timeout = 5;
	o.min_key_bits = 2048;
	v = bw_arf_verifier_new(&o, err, sizeof(err));
	ck_assert_msg(v != NULL, "%s", err);
	bw_arf_verifier_free(v);
	v = bw_arf_verifier_new(NULL, err, sizeof(err));
	ck_assert(v != NULL);
	bw_arf_verifier_free(v);
	bw_arf_verifier_free(NULL);
	bw_arf_authenticate(NULL, &trusted, "x", 1, &a);
	ck_assert_int_eq(a.status, BW_ARF_AUTH_ERROR);
	ck_assert(!a.authenticated);
}
END_TEST

/* ---- a message's own signatures, streamed as an MTA hands them over ---- */

#define OUT_MSG \
	"From: News <news@lists.example.net>\n" \
	"To: ann@example.org\n" \
	"Subject: the news\n" \
	"Message-ID: <n1@lists.example.net>\n" \
	"\n" \
	"News of the week.\n" \
	"Unsubscribe: https://lists.example.net/u/abc\n"

/* Feeds msg to a stream the milter's way: each field as name and value
 * without the space after the colon (folds kept, LF line ends), then the
 * body in chunks of chunk bytes with CRLF line ends. */
static bw_arf_auth_status
stream(const char *msg, size_t chunk, char dom[256], char *why, size_t whylen)
{
	bw_dkim_stream *s = bw_dkim_stream_new(dk.v);
	const char *p = msg;
	struct buf in, c;
	bw_arf_auth_status st;

	ck_assert_ptr_nonnull(s);
	while (*p && *p != '\n') {
		const char *colon = strchr(p, ':'), *e = p;
		char *name, *value;

		do {
			e = strchr(e, '\n') + 1;
		} while (*e == ' ' || *e == '\t');
		name = strndup(p, (size_t)(colon - p));
		colon++;
		if (*colon == ' ')
			colon++;
		value = strndup(colon, (size_t)(e - 1 - colon));
		/* as Postfix hands folds over: bare LF (libopendkim misreads the
		   b= tag across one unless it is made CRLF again) */
		for (char *r = value, *w = value;; r++)
			if (*r != '\r' && (*w++ = *r) == '\0')
				break;
		bw_dkim_stream_header(s, name, value);
		free(name);
		free(value);
		p = e;
	}
	bw_dkim_stream_eoh(s);
	in.p = (char *)(uintptr_t)(p + 1);
	in.n = strlen(p + 1);
	c = crlf(in);
	for (size_t o = 0; o < c.n && bw_dkim_stream_wants_body(s); o += chunk)
		bw_dkim_stream_body(s, c.p + o, c.n - o < chunk ? c.n - o : chunk);
	st = bw_dkim_stream_finish(s, "lists.example.net", dom, why, whylen);
	bw_dkim_stream_free(s);
	free(c.p);
	return st;
}

START_TEST(test_stream_verifies)
{
	char *s = sign(OUT_MSG, "example.net"), dom[256], why[256];

	/* any chunking gives the same answer */
	for (size_t chunk = 1; chunk < 100; chunk += 33) {
		ck_assert_int_eq(stream(s, chunk, dom, why, sizeof(why)), BW_ARF_AUTH_OK);
		ck_assert_str_eq(dom, "example.net");
		ck_assert_str_eq(why, "DKIM signature by example.net verified");
	}
	free(s);
}
END_TEST

START_TEST(test_stream_failures)
{
	char *s = sign(OUT_MSG, "example.net"), *t, dom[256], why[256];

	/* the body changed after signing */
	t = replace(s, "News of the week.", "News of the weak.");
	ck_assert_int_eq(stream(t, 4096, dom, why, sizeof(why)), BW_ARF_AUTH_BODYHASH);
	ck_assert_str_eq(dom, "example.net");
	ck_assert_str_eq(why, "signature by example.net: the body hash does not match");
	free(t);
	/* a signed header changed */
	t = replace(s, "Subject: the news", "Subject: the views");
	ck_assert_int_eq(stream(t, 4096, dom, why, sizeof(why)), BW_ARF_AUTH_BADSIG);
	free(t);
	free(s);
	/* no signature at all */
	ck_assert_int_eq(stream(OUT_MSG, 4096, dom, why, sizeof(why)), BW_ARF_AUTH_NOSIG);
	ck_assert_str_eq(dom, "");
	ck_assert_str_eq(why, "no DKIM signature");
	/* l=: the body is not kept, so any l= is refused, even a whole one */
	s = sign_as(OUT_MSG, "example.net", "fbl", -1, true, DKIM_CANON_RELAXED);
	ck_assert(has_l_tag(s));
	ck_assert_int_eq(stream(s, 4096, dom, why, sizeof(why)), BW_ARF_AUTH_SHORT_L);
	ck_assert_str_eq(why, "signature by example.net has l=: part of the body may be unsigned");
	free(s);
	/* a revoked key */
	s = sign_as(OUT_MSG, "example.net", "revoked", -1, false, DKIM_CANON_RELAXED);
	ck_assert_int_eq(stream(s, 4096, dom, why, sizeof(why)), BW_ARF_AUTH_NOKEY);
	free(s);
}
END_TEST

START_TEST(test_stream_prefers_aligned)
{
	/* an ESP's signature on top of the author domain's: the From domain
	   (lists.example.net, aligned with example.net) wins, in either order */
	char *a = sign(OUT_MSG, "example.net"), *b = sign(a, "example.com"), dom[256], why[256];
	char *c = sign(OUT_MSG, "example.com"), *d = sign(c, "example.net");

	ck_assert_int_eq(stream(b, 4096, dom, why, sizeof(why)), BW_ARF_AUTH_OK);
	ck_assert_str_eq(dom, "example.net");
	ck_assert_int_eq(stream(d, 4096, dom, why, sizeof(why)), BW_ARF_AUTH_OK);
	ck_assert_str_eq(dom, "example.net");
	/* the aligned one (on top, so the other does not cover it) broken:
	   the other verifies and counts */
	free(a);
	a = replace(d, "d=example.net", "d=example.org");
	ck_assert_int_eq(stream(a, 4096, dom, why, sizeof(why)), BW_ARF_AUTH_OK);
	ck_assert_str_eq(dom, "example.com");
	free(a);
	free(b);
	free(c);
	free(d);
}
END_TEST

START_TEST(test_dkim_min_key_bits)
{
	struct buf m = slurp("sparse.eml");
	char *s = sign(m.p, "example.net"), err[256];
	bw_arf_verifier_opts o = { BW_ARF_QUERY_FILE, dk.keyfile, 0, 4096 };
	bw_arf_verifier *v = bw_arf_verifier_new(&o, err, sizeof(err));
	bw_arf_auth a;

	/* the test key has 2048 bits: under a 4096-bit minimum it is unusable */
	ck_assert_msg(v != NULL, "%s", err);
	bw_arf_authenticate(v, &trusted, s, strlen(s), &a);
	ck_assert_auth(a, BW_ARF_AUTH_NOKEY, "example.net");
	bw_arf_verifier_free(v);
	free(s);
	free(m.p);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("complaint");
	TCase *tc;
	SRunner *sr;
	int failed;

	tc = tcase_create("parse");
	tcase_add_test(tc, test_full_rfc822);
	tcase_add_test(tc, test_headers_part);
	tcase_add_test(tc, test_sparse);
	tcase_add_test(tc, test_two_rcpt);
	tcase_add_test(tc, test_dsn);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_crlf_same);
	tcase_add_loop_test(tc, test_structure, 0, NROWS(structure_cases));
	tcase_add_loop_test(tc, test_fields, 0, NROWS(field_cases));
	tcase_add_loop_test(tc, test_dates, 0, NROWS(date_cases));
	tcase_add_test(tc, test_field_variants);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("robust");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_robust, 0, 6);
	suite_add_tcase(s, tc);

	tc = tcase_create("dedupe");
	tcase_add_test(tc, test_dedupe);
	tcase_add_test(tc, test_dedupe_by_headers);
	suite_add_tcase(s, tc);

	tc = tcase_create("dkim");
	tcase_set_timeout(tc, 60);
	tcase_add_unchecked_fixture(tc, dk_setup, dk_teardown);
	tcase_add_test(tc, test_trusted_match);
	tcase_add_test(tc, test_verifier_opts);
	tcase_add_test(tc, test_dkim_trusted);
	tcase_add_test(tc, test_stream_verifies);
	tcase_add_test(tc, test_stream_failures);
	tcase_add_test(tc, test_stream_prefers_aligned);
	tcase_add_test(tc, test_dkim_crlf);
	tcase_add_test(tc, test_dkim_body_altered);
	tcase_add_test(tc, test_dkim_header_altered);
	tcase_add_test(tc, test_dkim_untrusted);
	tcase_add_test(tc, test_dkim_subdomain);
	tcase_add_test(tc, test_dkim_nosig);
	tcase_add_test(tc, test_dkim_short_l);
	tcase_add_test(tc, test_dkim_nokey);
	tcase_add_test(tc, test_dkim_tempfail);
	tcase_add_test(tc, test_dkim_several);
	tcase_add_test(tc, test_dkim_bounds);
	tcase_add_test(tc, test_dkim_garbage_sig);
	tcase_add_test(tc, test_dkim_min_key_bits);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
