/*
 * test_consent_io.c - the import readers (CSV and JSON lines), the checks
 * that turn a row into a consent or suppression record, the batch writer,
 * and the export writers (round trip through the reader).
 *
 * Most cases are a table row: an input, and the transcript the reader must
 * give for it ("ROW 2 acme bob@example.com", "BAD line 3: ...", "END"),
 * read once whole and once a byte at a time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consent.h"
#include "consent_io.h"
#include "store.h"

/* 2025-06-01T00:00:00Z: the "now" of every test */
#define NOW 1748736000

/* ---------------------------------------------------------------- input */

typedef struct mem_in {
	const char *s;
	size_t len, pos, chunk;
	bool fail_at_end; /* a read error instead of the end */
} mem_in;

static ssize_t
mem_read(void *ud, char *buf, size_t len)
{
	mem_in *m = ud;
	size_t n = m->len - m->pos;

	if (n == 0 && m->fail_at_end) {
		errno = EIO;
		return -1;
	}
	if (n > len)
		n = len;
	if (m->chunk && n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->s + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

/* The reader's transcript for input: one line per bw_import_next result. */
static char *
transcript(bw_io_kind kind, bw_io_format fmt, const bw_norm_opts *norm, const char *input,
    size_t chunk)
{
	mem_in m = { input, strlen(input), 0, chunk, false };
	bw_import *im = bw_import_new(kind, fmt, norm, NOW, mem_read, &m);
	char *out = NULL, err[512];
	size_t outlen = 0;
	FILE *fp = open_memstream(&out, &outlen);
	bw_import_row row;
	bw_import_status st;

	ck_assert_ptr_nonnull(im);
	ck_assert_ptr_nonnull(fp);
	for (int guard = 0; guard < 1000; guard++) {
		st = bw_import_next(im, &row, err, sizeof(err));
		if (st == BW_IMPORT_ROW) {
			if (kind == BW_IO_CONSENT) {
				fprintf(fp, "ROW %lu %s %s\n", row.line, row.c.sender, row.c.rcpt);
				bw_consent_clear(&row.c);
			} else {
				fprintf(fp, "ROW %lu %s %s\n", row.line, row.s.sender, row.s.rcpt);
				bw_suppression_clear(&row.s);
			}
		} else if (st == BW_IMPORT_BAD) {
			fprintf(fp, "BAD %s\n", err);
		} else if (st == BW_IMPORT_FAIL) {
			fprintf(fp, "FAIL %s\n", err);
			break;
		} else {
			fprintf(fp, "END\n");
			break;
		}
	}
	fclose(fp);
	bw_import_free(im);
	return out;
}

/* ---------------------------------------------------------------- table */

#define CH "sender,recipient,granted_at,method,source,evidence\n"
#define SH "sender,recipient,reason,at,source,note\n"

typedef struct io_case {
	const char *name;
	bw_io_kind kind;
	bw_io_format fmt;
	const char *input;
	const char *want;
} io_case;

static const io_case cases[] = {
	{ "good CSV, two rows", BW_IO_CONSENT, BW_IO_AUTO,
	  CH "acme,bob@example.com,2024-05-01T12:00:00Z,double-opt-in,form,ev1\n"
	     "acme,alice@example.com,2024-05-02T00:00:00Z,import,list,ev2\n",
	  "ROW 2 acme bob@example.com\nROW 3 acme alice@example.com\nEND\n" },
	{ "columns in any order, optional ones, case of names", BW_IO_CONSENT, BW_IO_CSV,
	  "Evidence,method,Recipient,source_ip,sender,source,granted_at,expires_at\n"
	  "ev,api,<Bob@Example.COM>,192.0.2.1,acme,api-client,2024-05-01T12:00:00+02:00,"
	  "2030-01-01T00:00:00Z\n",
	  "ROW 2 acme Bob@example.com\nEND\n" },
	{ "CRLF line ends, blank lines, no final line end", BW_IO_CONSENT, BW_IO_AUTO,
	  "\r\n" "sender,recipient,granted_at,method,source,evidence\r\n"
	  "\r\n"
	  "acme,a@example.com,2024-05-01T12:00:00Z,api,,\r\n"
	  "   \r\n"
	  "acme,b@example.com,2024-05-01T12:00:00Z,api,,",
	  "ROW 4 acme a@example.com\nROW 6 acme b@example.com\nEND\n" },
	{ "quoted fields: commas, quotes, line breaks; line numbers after them",
	  BW_IO_CONSENT, BW_IO_AUTO,
	  CH "acme,\"bob@example.com\",2024-05-01T12:00:00Z,single-opt-in,\"form, page 2\","
	     "\"he said \"\"yes\"\"\"\n"
	     "acme,carol@example.com,2024-05-01T12:00:00Z,api,\"line one\nline two\n"
	     "line three\",ev\n"
	     "acme,dave@example.com,not-a-time,api,s,e\n",
	  "ROW 2 acme bob@example.com\nROW 3 acme carol@example.com\n"
	  "BAD line 6: granted_at: not an RFC 3339 time (\"not-a-time\")\nEND\n" },
	{ "UTF-8 byte-order mark before the header", BW_IO_CONSENT, BW_IO_AUTO,
	  "\xef\xbb\xbf" CH "acme,bob@example.com,2024-05-01T12:00:00Z,api,s,e\n",
	  "ROW 2 acme bob@example.com\nEND\n" },
	{ "missing required column", BW_IO_CONSENT, BW_IO_AUTO,
	  "sender,recipient,granted_at,method,source\n"
	  "acme,bob@example.com,2024-05-01T12:00:00Z,api,s\n",
	  "FAIL line 1: header: no column \"evidence\" (a consent import needs sender, "
	  "recipient, granted_at, method, source, evidence)\n" },
	{ "unknown column", BW_IO_CONSENT, BW_IO_AUTO,
	  "sender,recipient,granted_at,method,source,evidence,colour\n"
	  "acme,bob@example.com,2024-05-01T12:00:00Z,api,s,e,red\n",
	  "FAIL line 1: header: unknown column \"colour\"\n" },
	{ "column twice", BW_IO_CONSENT, BW_IO_AUTO,
	  "sender,recipient,granted_at,method,source,evidence,Sender\n",
	  "FAIL line 1: header: column \"sender\" given twice\n" },
	{ "empty input", BW_IO_CONSENT, BW_IO_AUTO, "\n\n",
	  "FAIL no header row: the input is empty\n" },
	{ "bad rows are reported with their line and skipped", BW_IO_CONSENT, BW_IO_AUTO,
	  CH "acme,bob@example.com,2024-13-01T00:00:00Z,api,s,e\n"
	     "acme,bob@example.com,2024-05-01T12:00:00Z,carrier-pigeon,s,e\n"
	     "acme,bob.example.com,2024-05-01T12:00:00Z,api,s,e\n"
	     "acme,bob@,2024-05-01T12:00:00Z,api,s,e\n"
	     ",bob@example.com,2024-05-01T12:00:00Z,api,s,e\n"
	     "a cme,bob@example.com,2024-05-01T12:00:00Z,api,s,e\n"
	     "*,bob@example.com,2024-05-01T12:00:00Z,api,s,e\n"
	     "acme,bob@example.com,,api,s,e\n"
	     "acme,bob@example.com,2024-05-01T12:00:00Z,,s,e\n"
	     "acme,bob@example.com,2099-05-01T12:00:00Z,api,s,e\n"
	     "acme,bob@example.com,2024-05-01T12:00:00Z,api,s\n"
	     "acme,zed@example.com,2024-05-01T12:00:00Z,api,s,e\n",
	  "BAD line 2: granted_at: not an RFC 3339 time (\"2024-13-01T00:00:00Z\")\n"
	  "BAD line 3: method: unknown (\"carrier-pigeon\"): double-opt-in, single-opt-in, "
	  "import or api\n"
	  "BAD line 4: recipient: no @ (\"bob.example.com\")\n"
	  "BAD line 5: recipient: *\n"
	  "BAD line 6: sender: missing\n"
	  "BAD line 7: sender: not a sender id: 1 to 128 printable ASCII characters without "
	  "spaces (\"a cme\")\n"
	  "BAD line 8: sender: \"*\" (every sender) is for suppressions only\n"
	  "BAD line 9: granted_at: missing\n"
	  "BAD line 10: method: missing\n"
	  "BAD line 11: granted_at: in the future (\"2099-05-01T12:00:00Z\")\n"
	  "BAD line 12: 5 fields, the header has 6\n"
	  "ROW 13 acme zed@example.com\nEND\n" },
	{ "CSV syntax errors skip to the next line", BW_IO_CONSENT, BW_IO_AUTO,
	  CH "acme,bo\"b@example.com,2024-05-01T12:00:00Z,api,s,e\n"
	     "acme,\"bob@example.com\"x,2024-05-01T12:00:00Z,api,s,e\n"
	     "acme,bob@example.com,2024-05-01T12:00:00Z,api,s,e\n"
	     "acme,\"carol@example.com,2024-05-01T12:00:00Z,api,s,e\n",
	  "BAD line 2: a quote inside an unquoted field (quote the field and double the quote)\n"
	  "BAD line 3: text after the closing quote of a field\n"
	  "ROW 4 acme bob@example.com\n"
	  "BAD line 5: quoted field opened on line 5 is not closed\nEND\n" },
	{ "times: offsets, confirmed before granted, expiry not after grant", BW_IO_CONSENT,
	  BW_IO_AUTO,
	  "sender,recipient,granted_at,method,source,evidence,confirmed_at,expires_at,"
	  "source_ip,confirm_ip\n"
	  "acme,a@example.com,2024-05-01T12:00:00Z,double-opt-in,s,e,2024-05-01T11:00:00Z,,,\n"
	  "acme,b@example.com,2024-05-01T12:00:00Z,double-opt-in,s,e,,2024-05-01T12:00:00Z,,\n"
	  "acme,c@example.com,2024-05-01T12:00:00Z,double-opt-in,s,e,,,300.1.1.1,\n"
	  "acme,d@example.com,2024-05-01T12:00:00Z,double-opt-in,s,e,,,,2001:db8::1\n",
	  "BAD line 2: confirmed_at: before granted_at\n"
	  "BAD line 3: expires_at: not after granted_at\n"
	  "BAD line 4: source_ip: not an IP address (\"300.1.1.1\")\n"
	  "ROW 5 acme d@example.com\nEND\n" },
	{ "domain-wide consent", BW_IO_CONSENT, BW_IO_AUTO,
	  CH "acme,*@Example.COM,2024-05-01T12:00:00Z,api,s,e\n",
	  "ROW 2 acme *@example.com\nEND\n" },
	{ "IDN domain becomes its A-label", BW_IO_CONSENT, BW_IO_AUTO,
	  CH "acme,Jörg@Bücher.Example,2024-05-01T12:00:00Z,api,s,e\n",
	  "ROW 2 acme Jörg@xn--bcher-kva.example\nEND\n" },
	{ "free text: control characters and bad UTF-8 refused", BW_IO_CONSENT, BW_IO_AUTO,
	  CH "acme,a@example.com,2024-05-01T12:00:00Z,api,s\x01x,e\n"
	     "acme,b@example.com,2024-05-01T12:00:00Z,api,s,\xc3\x28\n"
	     "acme,c@example.com,2024-05-01T12:00:00Z,api,\"tab\there\",e\n",
	  "BAD line 2: source: control character 0x01\n"
	  "BAD line 3: evidence: not valid UTF-8\n"
	  "ROW 4 acme c@example.com\nEND\n" },
	{ "JSON lines, detected", BW_IO_CONSENT, BW_IO_AUTO,
	  "\n  {\"sender\":\"acme\",\"recipient\":\"bob@example.com\",\"granted_at\":"
	  "\"2024-05-01T12:00:00Z\",\"method\":\"api\",\"source\":null}\n"
	  "\n"
	  "{\"sender\":\"acme\",\"recipient\":\"x@example.com\",\"granted_at\":\"soon\","
	  "\"method\":\"api\"}\n"
	  "{\"sender\":\"acme\",\"recipient\":\"x@example.com\",\"colour\":\"red\"}\n"
	  "{\"sender\":\"acme\",\"recipient\":\"x@example.com\",\"granted_at\":12}\n"
	  "{\"sender\":\"acme\",\n"
	  "[1,2]\n"
	  "{\"sender\":\"acme\",\"recipient\":\"c@example.com\",\"granted_at\":"
	  "\"2024-05-01T12:00:00Z\",\"method\":\"import\"}",
	  "ROW 2 acme bob@example.com\n"
	  "BAD line 4: granted_at: not an RFC 3339 time (\"soon\")\n"
	  "BAD line 5: unknown member \"colour\"\n"
	  "BAD line 6: granted_at: not a string\n"
	  "BAD line 7: not JSON: *\n"
	  "BAD line 8: not a JSON object\n"
	  "ROW 9 acme c@example.com\nEND\n" },
	{ "JSON lines, format given, duplicate member", BW_IO_CONSENT, BW_IO_JSONL,
	  "{\"sender\":\"acme\",\"sender\":\"acme2\"}\n"
	  "{\"sender\":\"acme\",\"Sender\":\"acme2\"}\n",
	  "BAD line 1: not JSON: duplicate*\n"
	  "BAD line 2: member \"Sender\" given twice\n"
	  "END\n" },
	{ "CSV forced on JSON input", BW_IO_CONSENT, BW_IO_CSV,
	  "{\"sender\":\"acme\"}\n",
	  "FAIL line 1: header: a quote inside an unquoted field (quote the field and double "
	  "the quote)\n" },
	{ "suppressions: global, erased address, bad reason, no wildcard", BW_IO_SUPPRESS,
	  BW_IO_AUTO,
	  SH "acme,bob@example.com,unsubscribe,2024-05-01T12:00:00Z,one-click,\n"
	     "*,bob@example.com,complaint,2024-05-01T12:00:00Z,,\"reported by ISP\"\n"
	     "acme,#0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef,admin,"
	     "2024-05-01T12:00:00Z,,\n"
	     "acme,#0123,admin,2024-05-01T12:00:00Z,,\n"
	     "acme,bob@example.com,bored,2024-05-01T12:00:00Z,,\n"
	     "acme,*@example.com,admin,2024-05-01T12:00:00Z,,\n"
	     "acme,bob@example.com,bounce,,,\n",
	  "ROW 2 acme bob@example.com\n"
	  "ROW 3 * bob@example.com\n"
	  "ROW 4 acme #0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
	  "BAD line 5: recipient: an erased address is \"#\" and 64 hex digits (\"#0123\")\n"
	  "BAD line 6: reason: unknown (\"bored\"): unsubscribe, complaint, admin or bounce\n"
	  "BAD line 7: recipient: *\n"
	  "BAD line 8: at: missing\nEND\n" },
	{ "suppression header without reason", BW_IO_SUPPRESS, BW_IO_AUTO,
	  "sender,recipient,at\n",
	  "FAIL line 1: header: no column \"reason\" (a suppression import needs sender, "
	  "recipient, reason, at)\n" },
	{ "suppression JSON lines", BW_IO_SUPPRESS, BW_IO_AUTO,
	  "{\"sender\":\"*\",\"recipient\":\"bob@example.com\",\"reason\":\"bounce\","
	  "\"at\":\"2024-05-01T12:00:00Z\",\"note\":\"5.1.1\"}\n",
	  "ROW 1 * bob@example.com\nEND\n" },
};

/* A line of the table ending in '*' matches any text from there on: the
 * address checker's and the JSON parser's wording are their own. */
static bool
transcript_matches(const char *got, const char *want)
{
	while (*got && *want) {
		const char *ge = strchr(got, '\n'), *we = strchr(want, '\n');
		size_t gl = ge ? (size_t)(ge - got) : strlen(got);
		size_t wl = we ? (size_t)(we - want) : strlen(want);
		if (wl > 0 && want[wl - 1] == '*') {
			if (gl < wl - 1 || memcmp(got, want, wl - 1) != 0)
				return false;
		} else if (gl != wl || memcmp(got, want, wl) != 0) {
			return false;
		}
		got += gl + (ge != NULL);
		want += wl + (we != NULL);
	}
	return *got == 0 && *want == 0;
}

START_TEST(reader_table)
{
	const io_case *c = &cases[_i];
	static const size_t chunks[] = { 0, 1, 7 };

	for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		char *got = transcript(c->kind, c->fmt, NULL, c->input, chunks[k]);
		ck_assert_msg(transcript_matches(got, c->want),
		    "%s (read %zu bytes at a time):\n--- got:\n%s--- want:\n%s", c->name,
		    chunks[k], got, c->want);
		free(got);
	}
}
END_TEST

/* ---------------------------------------------------------------- fields */

/* The first good row of a consent input. */
static void
first_consent(const char *input, const bw_norm_opts *norm, bw_consent *c, bw_import_row *row)
{
	mem_in m = { input, strlen(input), 0, 0, false };
	bw_import *im = bw_import_new(BW_IO_CONSENT, BW_IO_AUTO, norm, NOW, mem_read, &m);
	char err[512];

	ck_assert_int_eq(bw_import_next(im, row, err, sizeof(err)), BW_IMPORT_ROW);
	*c = row->c;
	bw_import_free(im);
}

START_TEST(consent_fields)
{
	bw_import_row row;
	bw_consent c;
	char t[40];

	first_consent("sender,recipient,granted_at,method,source,evidence,source_ip,confirmed_at,"
	    "confirm_ip,text,expires_at,withdrawn_at,recorded_at\n"
	    "acme,bob@EXAMPLE.com.,2024-05-01T14:00:00+02:00,double-opt-in,\"https://acme.example/"
	    "join, form 3\",\"ticket \"\"42\"\"\",2001:DB8:0::1,2024-05-01T12:05:00.5Z,192.0.2.7,"
	    "v3,2030-01-01T00:00:00Z,2025-01-01T00:00:00Z,2024-05-01T12:06:00Z\n", NULL, &c, &row);
	ck_assert_uint_eq(row.line, 2);
	ck_assert_str_eq(c.sender, "acme");
	ck_assert_str_eq(c.rcpt, "bob@example.com");
	ck_assert_int_eq(c.method, BW_CM_DOUBLE_OPT_IN);
	bw_time_fmt(c.granted_at, t, sizeof(t));
	ck_assert_str_eq(t, "2024-05-01T12:00:00Z");
	bw_time_fmt(c.confirmed_at, t, sizeof(t));
	ck_assert_str_eq(t, "2024-05-01T12:05:00Z");
	bw_time_fmt(c.expires_at, t, sizeof(t));
	ck_assert_str_eq(t, "2030-01-01T00:00:00Z");
	bw_time_fmt(c.withdrawn_at, t, sizeof(t));
	ck_assert_str_eq(t, "2025-01-01T00:00:00Z");
	bw_time_fmt(c.recorded_at, t, sizeof(t));
	ck_assert_str_eq(t, "2024-05-01T12:06:00Z");
	ck_assert_str_eq(c.source, "https://acme.example/join, form 3");
	ck_assert_str_eq(c.evidence, "ticket \"42\"");
	ck_assert_str_eq(c.source_ip, "2001:db8::1"); /* canonical form */
	ck_assert_str_eq(c.confirm_ip, "192.0.2.7");
	ck_assert_str_eq(c.text, "v3");
	bw_consent_clear(&c);

	/* absent fields: NULL and 0; recorded_at is the import's "now" */
	first_consent(CH "acme,bob@example.com,2024-05-01T12:00:00Z,import,,\n", NULL, &c, &row);
	ck_assert_ptr_null(c.source);
	ck_assert_ptr_null(c.evidence);
	ck_assert_ptr_null(c.source_ip);
	ck_assert_int_eq(c.confirmed_at, 0);
	ck_assert_int_eq(c.expires_at, 0);
	ck_assert_int_eq(c.recorded_at, NOW);
	bw_consent_clear(&c);
}
END_TEST

START_TEST(norm_options_apply)
{
	bw_norm_opts fold = { .fold_case = true, .fold_plus = true };
	bw_import_row row;
	bw_consent c;

	first_consent(CH "acme,Bob+News@Example.com,2024-05-01T12:00:00Z,api,s,e\n", NULL, &c,
	    &row);
	ck_assert_str_eq(c.rcpt, "Bob+News@example.com");
	bw_consent_clear(&c);
	first_consent(CH "acme,Bob+News@Example.com,2024-05-01T12:00:00Z,api,s,e\n", &fold, &c,
	    &row);
	ck_assert_str_eq(c.rcpt, "bob@example.com");
	bw_consent_clear(&c);
	first_consent(CH "acme,Jörg@BÜCHER.example,2024-05-01T12:00:00Z,api,s,e\n", &fold, &c,
	    &row);
	ck_assert_str_eq(c.rcpt, "jörg@xn--bcher-kva.example");
	bw_consent_clear(&c);
}
END_TEST

START_TEST(long_record_and_field)
{
	size_t big = BW_IO_RECORD_MAX + 100;
	char *in = malloc(big + 400), *p, *got;

	/* a record past BW_IO_RECORD_MAX: bad, and the next one is still read */
	p = in + sprintf(in, CH "acme,a@example.com,2024-05-01T12:00:00Z,api,s,\"");
	memset(p, 'x', big);
	p += big;
	strcpy(p, "\"\nacme,b@example.com,2024-05-01T12:00:00Z,api,s,e\n");
	got = transcript(BW_IO_CONSENT, BW_IO_AUTO, NULL, in, 0);
	ck_assert_str_eq(got, "BAD line 2: record longer than 65536 bytes\n"
			      "ROW 3 acme b@example.com\nEND\n");
	free(got);
	/* a free-text field past BW_CFIELD_MAX */
	p = in + sprintf(in, CH "acme,a@example.com,2024-05-01T12:00:00Z,api,s,");
	memset(p, 'y', BW_CFIELD_MAX + 1);
	strcpy(p + BW_CFIELD_MAX + 1, "\n");
	got = transcript(BW_IO_CONSENT, BW_IO_AUTO, NULL, in, 0);
	ck_assert_str_eq(got, "BAD line 2: evidence: longer than 2048 bytes\nEND\n");
	free(got);
	free(in);
}
END_TEST

START_TEST(read_error_fails)
{
	const char *in = CH "acme,a@example.com,2024-05-01T12:00:00Z,api,s,e\n";
	mem_in m = { in, strlen(in), 0, 0, true };
	bw_import *im = bw_import_new(BW_IO_CONSENT, BW_IO_AUTO, NULL, NOW, mem_read, &m);
	bw_import_row row;
	char err[512];

	ck_assert_int_eq(bw_import_next(im, &row, err, sizeof(err)), BW_IMPORT_ROW);
	bw_consent_clear(&row.c);
	ck_assert_int_eq(bw_import_next(im, &row, err, sizeof(err)), BW_IMPORT_FAIL);
	ck_assert_msg(strstr(err, "line 3: read error") != NULL, "%s", err);
	/* and it stays failed */
	ck_assert_int_eq(bw_import_next(im, &row, err, sizeof(err)), BW_IMPORT_FAIL);
	bw_import_free(im);
}
END_TEST

START_TEST(from_fields)
{
	const char *n1[] = { "sender", "recipient", "method", "granted_at", "source" };
	const char *v1[] = { "acme", "Bob@Example.com", "api", "2024-05-01T12:00:00Z", "cli" };
	const char *n2[] = { "sender", "recipient", "method", "granted_at", "colour" };
	const char *n3[] = { "sender", "recipient", "method", "granted_at", "method" };
	const char *sn[] = { "sender", "recipient", "reason", "at" };
	const char *sv[] = { "*", "bob@example.com", "admin", "2024-05-01T12:00:00Z" };
	bw_consent c;
	bw_suppression s;
	char err[256];

	ck_assert(bw_io_consent_from_fields(n1, v1, 5, NULL, NOW, &c, err, sizeof(err)));
	ck_assert_str_eq(c.rcpt, "Bob@example.com");
	ck_assert_str_eq(c.source, "cli");
	bw_consent_clear(&c);
	ck_assert(!bw_io_consent_from_fields(n2, v1, 5, NULL, NOW, &c, err, sizeof(err)));
	ck_assert_str_eq(err, "unknown field \"colour\"");
	ck_assert(!bw_io_consent_from_fields(n3, v1, 5, NULL, NOW, &c, err, sizeof(err)));
	ck_assert_str_eq(err, "field method given twice");
	ck_assert(!bw_io_consent_from_fields(n1, v1, 3, NULL, NOW, &c, err, sizeof(err)));
	ck_assert_str_eq(err, "granted_at: missing");
	ck_assert(bw_io_suppression_from_fields(sn, sv, 4, NULL, NOW, &s, err, sizeof(err)));
	ck_assert_str_eq(s.sender, "*");
	ck_assert_int_eq(s.reason, BW_SR_ADMIN);
	bw_suppression_clear(&s);
}
END_TEST

/* ---------------------------------------------------------------- writers */

START_TEST(export_lines)
{
	bw_consent c = { .method = BW_CM_SINGLE_OPT_IN, .granted_at = 1714564800,
		.recorded_at = 1714564801 };
	bw_suppression s = { .reason = BW_SR_COMPLAINT, .at = 1714564800 };
	char *line;

	strcpy(c.sender, "acme");
	strcpy(c.rcpt, "bob@example.com");
	c.source = (char *)"form, \"B\"";
	c.evidence = (char *)"two\nlines";
	c.text = (char *)" padded ";
	line = bw_io_consent_line(&c, BW_IO_CSV);
	ck_assert_str_eq(line, "acme,bob@example.com,2024-05-01T12:00:00Z,single-opt-in,"
			       "\"form, \"\"B\"\"\",\"two\nlines\",,,,\" padded \",,,"
			       "2024-05-01T12:00:01Z\n");
	free(line);
	line = bw_io_consent_line(&c, BW_IO_JSONL);
	ck_assert_str_eq(line, "{\"sender\":\"acme\",\"recipient\":\"bob@example.com\","
			       "\"granted_at\":\"2024-05-01T12:00:00Z\",\"method\":\"single-opt-in\","
			       "\"source\":\"form, \\\"B\\\"\",\"evidence\":\"two\\nlines\","
			       "\"text\":\" padded \",\"recorded_at\":\"2024-05-01T12:00:01Z\"}\n");
	free(line);
	strcpy(s.sender, "*");
	strcpy(s.rcpt, "bob@example.com");
	s.note = (char *)"tab\there \\ back";
	line = bw_io_suppression_line(&s, BW_IO_JSONL);
	ck_assert_str_eq(line, "{\"sender\":\"*\",\"recipient\":\"bob@example.com\","
			       "\"reason\":\"complaint\",\"at\":\"2024-05-01T12:00:00Z\","
			       "\"note\":\"tab\\there \\\\ back\"}\n");
	free(line);
	line = bw_io_suppression_line(&s, BW_IO_CSV);
	ck_assert_str_eq(line, "*,bob@example.com,complaint,2024-05-01T12:00:00Z,,tab\there \\ back\n");
	free(line);
}
END_TEST

/* export -> import -> export gives the same text, in both formats */
START_TEST(export_round_trip)
{
	static const char *input =
	    "sender,recipient,granted_at,method,source,evidence,source_ip,confirmed_at,"
	    "confirm_ip,text,expires_at,withdrawn_at,recorded_at\n"
	    "acme,bob@example.com,2024-05-01T12:00:00Z,double-opt-in,\"a, \"\"b\"\"\","
	    "\"x\ny\",192.0.2.1,2024-05-01T12:01:00Z,::1,\" v1 \",2030-01-01T00:00:00Z,,"
	    "2024-05-01T12:02:00Z\n"
	    "acme,*@example.org,2024-05-01T12:00:00Z,api,ünïcode ✓,,,,,,,2024-06-01T00:00:00Z,"
	    "2024-05-01T12:02:00Z\n";
	bw_io_format fmts[] = { BW_IO_CSV, BW_IO_JSONL };

	for (size_t f = 0; f < 2; f++) {
		char *text[2] = { NULL, NULL };
		const char *in = input;
		for (int pass = 0; pass < 2; pass++) {
			mem_in m = { in, strlen(in), 0, 0, false };
			bw_import *im = bw_import_new(BW_IO_CONSENT, BW_IO_AUTO, NULL, NOW, mem_read,
			    &m);
			size_t len = 0;
			FILE *fp = open_memstream(&text[pass], &len);
			bw_import_row row;
			char err[512];
			int rows = 0;
			if (fmts[f] == BW_IO_CSV)
				fputs(bw_io_csv_header(BW_IO_CONSENT), fp);
			while (bw_import_next(im, &row, err, sizeof(err)) == BW_IMPORT_ROW) {
				char *l = bw_io_consent_line(&row.c, fmts[f]);
				fputs(l, fp);
				free(l);
				bw_consent_clear(&row.c);
				rows++;
			}
			ck_assert_int_eq(rows, 2);
			fclose(fp);
			bw_import_free(im);
			in = text[pass];
		}
		ck_assert_str_eq(text[0], text[1]);
		free(text[0]);
		free(text[1]);
	}
}
END_TEST

/* ---------------------------------------------------------------- batches */

static char store_dir[1024]; /* a fresh directory under $TMPDIR */

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

typedef struct hook_log {
	char text[2048];
	size_t len;
} hook_log;

static int
hook_bad(void *ud, unsigned long line, const char *msg)
{
	hook_log *h = ud;
	h->len += (size_t)snprintf(h->text + h->len, sizeof(h->text) - h->len, "bad %lu: %s\n",
	    line, msg);
	return 0;
}

static void
hook_committed(void *ud, unsigned long first, unsigned long last, size_t rows)
{
	hook_log *h = ud;
	h->len += (size_t)snprintf(h->text + h->len, sizeof(h->text) - h->len,
	    "committed %lu-%lu %zu\n", first, last, rows);
}

static bw_store *
fresh_store(void)
{
	char spec[sizeof(store_dir) + 8], err[512];
	bw_store *st;

	nftw(store_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	ck_assert_int_eq(mkdir(store_dir, 0700), 0);
	snprintf(spec, sizeof(spec), "lmdb:%s", store_dir);
	st = bw_store_open(spec, &(bw_store_opts){ 0 }, err, sizeof(err));
	ck_assert_msg(st != NULL, "%s", err);
	return st;
}

static bw_import_status
run_import(bw_store *st, const char *input, size_t batch, hook_log *log, bw_import_report *rep)
{
	mem_in m = { input, strlen(input), 0, 3, false };
	bw_import *im = bw_import_new(BW_IO_CONSENT, BW_IO_AUTO, NULL, NOW, mem_read, &m);
	bw_import_hooks h = { hook_bad, hook_committed, log };
	char err[512];
	bw_import_status r = bw_import_run(im, st, batch, &h, rep, err, sizeof(err));

	bw_import_free(im);
	return r;
}

#define ROWL(r) "acme," r "@example.com,2024-05-01T12:00:00Z,api,s,e\n"

START_TEST(batches_sorted_and_committed)
{
	bw_store *st = fresh_store();
	const char *in = CH ROWL("g") ROWL("c") "acme,x,,api,s,e\n" ROWL("a") ROWL("f")
	    "acme,f@example.com,2024-05-01T12:00:00Z,double-opt-in,s,later\n" ROWL("b") ROWL("e");
	hook_log log = { "", 0 };
	bw_import_report rep;
	uint64_t n = 0;
	char *val = NULL;
	bw_consent c;
	char err[256];

	ck_assert_int_eq(run_import(st, in, 3, &log, &rep), BW_IMPORT_END);
	/* 8 rows: 1 bad, 7 good; batches of 3 good rows: lines 2-3+5, 6-8 (f twice:
	 * the later row won), 9 */
	ck_assert_uint_eq(rep.rows, 8);
	ck_assert_uint_eq(rep.skipped, 1);
	ck_assert_uint_eq(rep.imported, 6);
	ck_assert_uint_eq(rep.duplicates, 1);
	ck_assert_uint_eq(rep.batches, 3);
	ck_assert_uint_eq(rep.committed_line, 9);
	ck_assert_str_eq(log.text, "bad 4: line 4: recipient: no @ (\"x\")\n"
				   "committed 2-5 3\n"
				   "committed 6-8 2\n"
				   "committed 9-9 1\n");
	ck_assert_int_eq(bw_store_count(st, BW_TBL_CONSENT, &n), BW_STORE_OK);
	ck_assert_uint_eq(n, 6);
	ck_assert_int_eq(bw_store_get(st, BW_TBL_CONSENT, "acme f@example.com", &val), BW_STORE_OK);
	ck_assert(bw_consent_from_json("acme f@example.com", val, &c, err, sizeof(err)));
	ck_assert_str_eq(c.evidence, "later");
	ck_assert_int_eq(c.method, BW_CM_DOUBLE_OPT_IN);
	bw_consent_clear(&c);
	free(val);

	/* the same rows again in one batch: the duplicate is counted, nothing new */
	log.len = 0;
	log.text[0] = 0;
	ck_assert_int_eq(run_import(st, in, 0, &log, &rep), BW_IMPORT_END);
	ck_assert_uint_eq(rep.imported, 6);
	ck_assert_uint_eq(rep.duplicates, 1);
	ck_assert_uint_eq(rep.batches, 1);
	ck_assert_int_eq(bw_store_count(st, BW_TBL_CONSENT, &n), BW_STORE_OK);
	ck_assert_uint_eq(n, 6);
	bw_store_close(st);
}
END_TEST

START_TEST(dry_run_writes_nothing)
{
	bw_store *st = fresh_store();
	hook_log log = { "", 0 };
	bw_import_report rep;
	uint64_t n = 1;

	ck_assert_int_eq(run_import(NULL, CH ROWL("a") "acme,b@example.com,x,api,s,e\n", 0, &log,
			     &rep), BW_IMPORT_END);
	ck_assert_uint_eq(rep.rows, 2);
	ck_assert_uint_eq(rep.imported, 1);
	ck_assert_uint_eq(rep.skipped, 1);
	ck_assert_uint_eq(rep.batches, 0);
	ck_assert_int_eq(bw_store_count(st, BW_TBL_CONSENT, &n), BW_STORE_OK);
	ck_assert_uint_eq(n, 0);
	bw_store_close(st);
}
END_TEST

START_TEST(bad_header_writes_nothing)
{
	bw_store *st = fresh_store();
	hook_log log = { "", 0 };
	bw_import_report rep;
	uint64_t n = 1;

	ck_assert_int_eq(run_import(st, "sender,recipient,when\n" ROWL("a"), 0, &log, &rep),
	    BW_IMPORT_FAIL);
	ck_assert_uint_eq(rep.batches, 0);
	ck_assert_int_eq(bw_store_count(st, BW_TBL_CONSENT, &n), BW_STORE_OK);
	ck_assert_uint_eq(n, 0);
	bw_store_close(st);
}
END_TEST

static Suite *
consent_io_suite(void)
{
	Suite *s = suite_create("consent_io");
	TCase *t = tcase_create("readers");

	tcase_add_loop_test(t, reader_table, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(t, consent_fields);
	tcase_add_test(t, norm_options_apply);
	tcase_add_test(t, long_record_and_field);
	tcase_add_test(t, read_error_fails);
	tcase_add_test(t, from_fields);
	suite_add_tcase(s, t);
	t = tcase_create("writers");
	tcase_add_test(t, export_lines);
	tcase_add_test(t, export_round_trip);
	suite_add_tcase(s, t);
	t = tcase_create("batches");
	tcase_add_test(t, batches_sorted_and_committed);
	tcase_add_test(t, dry_run_writes_nothing);
	tcase_add_test(t, bad_header_writes_nothing);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;
	const char *tmp = getenv("TMPDIR");

	snprintf(store_dir, sizeof(store_dir), "%s/bwtest-consent-io-XXXXXX",
	    tmp && *tmp ? tmp : P_tmpdir);
	if (mkdtemp(store_dir) == NULL)
		return 1;
	sr = srunner_create(consent_io_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(store_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return failed ? 1 : 0;
}
