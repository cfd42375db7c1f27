/*
 * consent_io.c - consent and suppression import and export: a streaming
 * RFC 4180 CSV reader and a JSON-lines reader that turn rows into checked
 * records, the batch writer behind "bulkwardenctl consent|suppress import",
 * and the CSV / JSON-lines writers behind export and show.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "log.h"
#include "consent_io.h"

#define IO_BUF        65536 /* bytes read at a time */
#define IO_FIELDS_MAX 64    /* fields in one CSV record */
#define IO_ERR_MAX    512
#define IO_SHOW_MAX   60    /* bytes of a bad value quoted in an error */

/* ---------------------------------------------------------------- columns */

/* Consent columns, in export order. */
enum {
	CC_SENDER, CC_RECIPIENT, CC_GRANTED_AT, CC_METHOD, CC_SOURCE, CC_EVIDENCE,
	CC_SOURCE_IP, CC_CONFIRMED_AT, CC_CONFIRM_IP, CC_TEXT, CC_EXPIRES_AT,
	CC_WITHDRAWN_AT, CC_RECORDED_AT, CC__N
};
/* Suppression columns, in export order. */
enum { SC_SENDER, SC_RECIPIENT, SC_REASON, SC_AT, SC_SOURCE, SC_NOTE, SC__N };

#define IO_COLS_MAX CC__N

typedef struct io_col {
	const char *name;
	bool must; /* the column must be in a CSV header */
} io_col;

static const io_col io_consent_cols[CC__N] = {
	[CC_SENDER] = { "sender", true },
	[CC_RECIPIENT] = { "recipient", true },
	[CC_GRANTED_AT] = { "granted_at", true },
	[CC_METHOD] = { "method", true },
	[CC_SOURCE] = { "source", true },
	[CC_EVIDENCE] = { "evidence", true },
	[CC_SOURCE_IP] = { "source_ip", false },
	[CC_CONFIRMED_AT] = { "confirmed_at", false },
	[CC_CONFIRM_IP] = { "confirm_ip", false },
	[CC_TEXT] = { "text", false },
	[CC_EXPIRES_AT] = { "expires_at", false },
	[CC_WITHDRAWN_AT] = { "withdrawn_at", false },
	[CC_RECORDED_AT] = { "recorded_at", false },
};

static const io_col io_supp_cols[SC__N] = {
	[SC_SENDER] = { "sender", true },
	[SC_RECIPIENT] = { "recipient", true },
	[SC_REASON] = { "reason", true },
	[SC_AT] = { "at", true },
	[SC_SOURCE] = { "source", false },
	[SC_NOTE] = { "note", false },
};

static const io_col *
io_cols(bw_io_kind k, size_t *n)
{
	if (k == BW_IO_SUPPRESS) {
		*n = SC__N;
		return io_supp_cols;
	}
	*n = CC__N;
	return io_consent_cols;
}

/* Column index of name (ASCII case ignored), -1 when unknown. */
static int
io_col_find(bw_io_kind k, const char *name)
{
	size_t n;
	const io_col *c = io_cols(k, &n);

	for (size_t i = 0; i < n; i++)
		if (strcasecmp(c[i].name, name) == 0)
			return (int)i;
	return -1;
}

bool
bw_io_format_parse(const char *s, bw_io_format *f)
{
	if (strcasecmp(s, "csv") == 0)
		*f = BW_IO_CSV;
	else if (strcasecmp(s, "jsonl") == 0 || strcasecmp(s, "json") == 0)
		*f = BW_IO_JSONL;
	else
		return false;
	return true;
}

const char *
bw_io_format_name(bw_io_format f)
{
	switch (f) {
	case BW_IO_CSV: return "csv";
	case BW_IO_JSONL: return "jsonl";
	case BW_IO_AUTO: break;
	}
	return "auto";
}

const char *
bw_io_kind_name(bw_io_kind k)
{
	return k == BW_IO_SUPPRESS ? "suppression" : "consent";
}

/* ---------------------------------------------------------------- checks */

/* A bad value as it may be shown: at most IO_SHOW_MAX bytes, controls as '?'. */
static const char *
io_show(const char *v, char buf[IO_SHOW_MAX + 4])
{
	size_t i;

	for (i = 0; v[i] && i < IO_SHOW_MAX; i++)
		buf[i] = ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) ? '?' : v[i];
	if (v[i]) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = 0;
	return buf;
}

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static bool
io_utf8_ok(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s, n, cp;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else
			return false;
		for (unsigned i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		    || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		s += n + 1;
	}
	return true;
}

/* A free-text field: NULL when absent; false with err when unusable. */
static bool
io_text(const char *name, const char *v, char **out, char *err, size_t errlen)
{
	*out = NULL;
	if (v == NULL || *v == 0)
		return true;
	if (strlen(v) > BW_CFIELD_MAX) {
		bw_seterr(err, errlen, "%s: longer than %d bytes", name, BW_CFIELD_MAX);
		return false;
	}
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if ((*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') || *p == 0x7f) {
			bw_seterr(err, errlen, "%s: control character 0x%02x", name, *p);
			return false;
		}
	if (!io_utf8_ok((const unsigned char *)v)) {
		bw_seterr(err, errlen, "%s: not valid UTF-8", name);
		return false;
	}
	if ((*out = strdup(v)) == NULL) {
		bw_seterr(err, errlen, "out of memory");
		return false;
	}
	return true;
}

/* An IP address, written back in its canonical form. */
static bool
io_ip(const char *name, const char *v, char **out, char *err, size_t errlen)
{
	unsigned char a[16];
	char buf[INET6_ADDRSTRLEN], show[IO_SHOW_MAX + 4];
	int af;

	*out = NULL;
	if (v == NULL || *v == 0)
		return true;
	af = strchr(v, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(af, v, a) != 1 || inet_ntop(af, a, buf, sizeof(buf)) == NULL) {
		bw_seterr(err, errlen, "%s: not an IP address (\"%s\")", name, io_show(v, show));
		return false;
	}
	if ((*out = strdup(buf)) == NULL) {
		bw_seterr(err, errlen, "out of memory");
		return false;
	}
	return true;
}

/* A time: 0 when absent (and not required); not before 1970-01-01T00:00:01Z
 * and, when future_ok is false, not more than BW_IO_FUTURE_SKEW after now. */
static bool
io_time(const char *name, const char *v, bool required, bool future_ok, int64_t now,
    int64_t *t, char *err, size_t errlen)
{
	char show[IO_SHOW_MAX + 4];

	*t = 0;
	if (v == NULL || *v == 0) {
		if (required)
			bw_seterr(err, errlen, "%s: missing", name);
		return !required;
	}
	if (!bw_time_parse(v, t)) {
		bw_seterr(err, errlen, "%s: not an RFC 3339 time (\"%s\")", name, io_show(v, show));
		return false;
	}
	if (*t <= 0) {
		bw_seterr(err, errlen, "%s: before 1970 (\"%s\")", name, io_show(v, show));
		return false;
	}
	if (!future_ok && *t > now + BW_IO_FUTURE_SKEW) {
		bw_seterr(err, errlen, "%s: in the future (\"%s\")", name, io_show(v, show));
		return false;
	}
	return true;
}

static bool
io_sender(const char *v, bool star_ok, char *out, char *err, size_t errlen)
{
	char show[IO_SHOW_MAX + 4];

	if (v == NULL || *v == 0) {
		bw_seterr(err, errlen, "sender: missing");
		return false;
	}
	if (strcmp(v, "*") == 0) {
		if (!star_ok) {
			bw_seterr(err, errlen, "sender: \"*\" (every sender) is for suppressions only");
			return false;
		}
	} else if (!bw_sender_id_ok(v)) {
		bw_seterr(err, errlen, "sender: not a sender id: 1 to %d printable ASCII characters "
		    "without spaces (\"%s\")", BW_SENDER_MAX, io_show(v, show));
		return false;
	}
	snprintf(out, BW_SENDER_MAX + 1, "%s", v);
	return true;
}

/* "#" and 64 hex digits: an erased address (lower-cased into out). */
static bool
io_hashed(const char *v, char *out)
{
	if (v[0] != '#' || strlen(v) != BW_ADDR_HASH_LEN)
		return false;
	out[0] = '#';
	for (size_t i = 1; i < BW_ADDR_HASH_LEN; i++) {
		char c = v[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		out[i] = c;
	}
	out[BW_ADDR_HASH_LEN] = 0;
	return true;
}

static bool
io_rcpt(const char *v, const bw_norm_opts *norm, bool wildcard, bool hashed, char *out,
    char *err, size_t errlen)
{
	char why[256], show[IO_SHOW_MAX + 4];

	if (v == NULL || *v == 0) {
		bw_seterr(err, errlen, "recipient: missing");
		return false;
	}
	if (v[0] == '#') {
		if (hashed && io_hashed(v, out))
			return true;
		bw_seterr(err, errlen, "recipient: %s (\"%s\")", hashed ?
		    "an erased address is \"#\" and 64 hex digits" : "not an address",
		    io_show(v, show));
		return false;
	}
	why[0] = 0;
	if (!bw_addr_normalise(v, norm, wildcard, out, BW_ADDR_MAX + 1, why, sizeof(why))) {
		bw_seterr(err, errlen, "recipient: %s (\"%s\")", why[0] ? why : "not an address",
		    io_show(v, show));
		return false;
	}
	return true;
}

static bool
io_key_fits(const char *sender, const char *rcpt, char *err, size_t errlen)
{
	char key[BW_STORE_KEY_MAX + 1];

	if (!bw_consent_key(sender, rcpt, key, sizeof(key))) {
		bw_seterr(err, errlen, "sender and recipient make a key longer than %d bytes",
		    BW_STORE_KEY_MAX);
		return false;
	}
	return true;
}

/* Values indexed by column -> a consent record. */
static bool
io_consent_build(const char *const *v, const bw_norm_opts *norm, int64_t now, bw_consent *c,
    char *err, size_t errlen)
{
	char show[IO_SHOW_MAX + 4];
	int m;

	memset(c, 0, sizeof(*c));
	if (!io_sender(v[CC_SENDER], false, c->sender, err, errlen)
	    || !io_rcpt(v[CC_RECIPIENT], norm, true, false, c->rcpt, err, errlen)
	    || !io_key_fits(c->sender, c->rcpt, err, errlen)
	    || !io_time("granted_at", v[CC_GRANTED_AT], true, false, now, &c->granted_at, err,
		errlen))
		goto bad;
	if (v[CC_METHOD] == NULL || *v[CC_METHOD] == 0) {
		bw_seterr(err, errlen, "method: missing");
		goto bad;
	}
	if ((m = bw_consent_method_parse(v[CC_METHOD])) < 0) {
		bw_seterr(err, errlen, "method: unknown (\"%s\"): double-opt-in, single-opt-in, "
		    "import or api", io_show(v[CC_METHOD], show));
		goto bad;
	}
	c->method = (bw_consent_method)m;
	if (!io_time("confirmed_at", v[CC_CONFIRMED_AT], false, false, now, &c->confirmed_at,
		err, errlen)
	    || !io_time("expires_at", v[CC_EXPIRES_AT], false, true, now, &c->expires_at, err,
		errlen)
	    || !io_time("withdrawn_at", v[CC_WITHDRAWN_AT], false, false, now, &c->withdrawn_at,
		err, errlen)
	    || !io_time("recorded_at", v[CC_RECORDED_AT], false, false, now, &c->recorded_at,
		err, errlen))
		goto bad;
	if (c->confirmed_at && c->confirmed_at < c->granted_at) {
		bw_seterr(err, errlen, "confirmed_at: before granted_at");
		goto bad;
	}
	if (c->expires_at && c->expires_at <= c->granted_at) {
		bw_seterr(err, errlen, "expires_at: not after granted_at");
		goto bad;
	}
	if (c->withdrawn_at && c->withdrawn_at < c->granted_at) {
		bw_seterr(err, errlen, "withdrawn_at: before granted_at");
		goto bad;
	}
	if (c->recorded_at == 0)
		c->recorded_at = now;
	if (!io_text("source", v[CC_SOURCE], &c->source, err, errlen)
	    || !io_text("evidence", v[CC_EVIDENCE], &c->evidence, err, errlen)
	    || !io_ip("source_ip", v[CC_SOURCE_IP], &c->source_ip, err, errlen)
	    || !io_ip("confirm_ip", v[CC_CONFIRM_IP], &c->confirm_ip, err, errlen)
	    || !io_text("text", v[CC_TEXT], &c->text, err, errlen))
		goto bad;
	return true;
bad:
	bw_consent_clear(c);
	return false;
}

static bool
io_supp_build(const char *const *v, const bw_norm_opts *norm, int64_t now, bw_suppression *s,
    char *err, size_t errlen)
{
	char show[IO_SHOW_MAX + 4];
	int r;

	memset(s, 0, sizeof(*s));
	if (!io_sender(v[SC_SENDER], true, s->sender, err, errlen)
	    || !io_rcpt(v[SC_RECIPIENT], norm, false, true, s->rcpt, err, errlen)
	    || !io_key_fits(s->sender, s->rcpt, err, errlen))
		goto bad;
	if (v[SC_REASON] == NULL || *v[SC_REASON] == 0) {
		bw_seterr(err, errlen, "reason: missing");
		goto bad;
	}
	if ((r = bw_supp_reason_parse(v[SC_REASON])) < 0) {
		bw_seterr(err, errlen, "reason: unknown (\"%s\"): unsubscribe, complaint, admin or "
		    "bounce", io_show(v[SC_REASON], show));
		goto bad;
	}
	s->reason = (bw_supp_reason)r;
	if (!io_time("at", v[SC_AT], true, false, now, &s->at, err, errlen)
	    || !io_text("source", v[SC_SOURCE], &s->source, err, errlen)
	    || !io_text("note", v[SC_NOTE], &s->note, err, errlen))
		goto bad;
	return true;
bad:
	bw_suppression_clear(s);
	return false;
}

/* names/values -> values by column; false on an unknown or repeated name. */
static bool
io_by_column(bw_io_kind k, const char *const *names, const char *const *values, size_t n,
    const char **v, char *err, size_t errlen)
{
	size_t ncol;
	char show[IO_SHOW_MAX + 4];

	io_cols(k, &ncol);
	for (size_t i = 0; i < ncol; i++)
		v[i] = NULL;
	for (size_t i = 0; i < n; i++) {
		int c = io_col_find(k, names[i]);
		if (c < 0) {
			bw_seterr(err, errlen, "unknown field \"%s\"", io_show(names[i], show));
			return false;
		}
		if (v[c] != NULL) {
			bw_seterr(err, errlen, "field %s given twice", names[i]);
			return false;
		}
		v[c] = values[i] ? values[i] : "";
	}
	return true;
}

bool
bw_io_consent_from_fields(const char *const *names, const char *const *values, size_t n,
    const bw_norm_opts *norm, int64_t now, bw_consent *c, char *err, size_t errlen)
{
	const char *v[IO_COLS_MAX];

	memset(c, 0, sizeof(*c));
	if (!io_by_column(BW_IO_CONSENT, names, values, n, v, err, errlen))
		return false;
	return io_consent_build(v, norm, now, c, err, errlen);
}

bool
bw_io_suppression_from_fields(const char *const *names, const char *const *values, size_t n,
    const bw_norm_opts *norm, int64_t now, bw_suppression *s, char *err, size_t errlen)
{
	const char *v[IO_COLS_MAX];

	memset(s, 0, sizeof(*s));
	if (!io_by_column(BW_IO_SUPPRESS, names, values, n, v, err, errlen))
		return false;
	return io_supp_build(v, norm, now, s, err, errlen);
}

/* ---------------------------------------------------------------- reader */

#define IO_EOF (-1)
#define IO_RDERR (-2)

struct bw_import {
	bw_io_kind kind;
	bw_io_format fmt;
	bw_norm_opts norm;
	int64_t now;
	bw_io_read_fn rd;
	void *ud;
	/* input buffer */
	char *buf;
	size_t pos, len;
	bool eof;
	int rd_errno;
	unsigned long line; /* line of the next byte, from 1 */
	bool started;
	bool failed;
	char fail[IO_ERR_MAX];
	/* CSV: header column -> record column (-1: none) */
	int colmap[IO_FIELDS_MAX];
	unsigned ncols;
	/* the current record: fields NUL-terminated in data */
	char *data;
	size_t dlen;
	size_t off[IO_FIELDS_MAX];
	bool quoted[IO_FIELDS_MAX];
	unsigned nf;
	size_t fstart;
	bool fquoted;
	unsigned long rec_line, rec_end;
	char bad[IO_ERR_MAX]; /* first problem of the current record */
};

bw_import *
bw_import_new(bw_io_kind kind, bw_io_format fmt, const bw_norm_opts *norm, int64_t now,
    bw_io_read_fn rd, void *ud)
{
	bw_import *im = calloc(1, sizeof(*im));

	if (im == NULL)
		return NULL;
	if ((im->buf = malloc(IO_BUF)) == NULL || (im->data = malloc(BW_IO_RECORD_MAX + 1)) == NULL) {
		bw_import_free(im);
		return NULL;
	}
	im->kind = kind;
	im->fmt = fmt;
	if (norm)
		im->norm = *norm;
	im->now = now;
	im->rd = rd;
	im->ud = ud;
	im->line = 1;
	return im;
}

void
bw_import_free(bw_import *im)
{
	if (im == NULL)
		return;
	free(im->buf);
	free(im->data);
	free(im);
}

bw_io_format
bw_import_format(const bw_import *im)
{
	return im->fmt;
}

/* Read more input after what is buffered (keeping it when keep is true,
 * else replacing it). Returns false at the end or on an error. */
static bool
io_fill(bw_import *im, bool keep)
{
	ssize_t n;

	if (im->eof)
		return false;
	if (!keep) {
		im->pos = im->len = 0;
	} else if (im->len == IO_BUF) {
		return false;
	}
	do
		n = im->rd(im->ud, im->buf + im->len, IO_BUF - im->len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		im->rd_errno = errno ? errno : EIO;
		im->eof = true;
		return false;
	}
	if (n == 0) {
		im->eof = true;
		return false;
	}
	im->len += (size_t)n;
	return true;
}

static inline int
io_getc(bw_import *im)
{
	if (im->pos == im->len && !io_fill(im, false))
		return im->rd_errno ? IO_RDERR : IO_EOF;
	return (unsigned char)im->buf[im->pos++];
}

/* The rest of the physical line (for a record that went wrong). */
static int
io_skip_line(bw_import *im)
{
	int ch;

	while ((ch = io_getc(im)) >= 0)
		if (ch == '\n') {
			im->line++;
			return 0;
		}
	return ch == IO_RDERR ? -1 : 0;
}

/* Skip a UTF-8 byte-order mark; pick the format from the first non-blank
 * byte when it is not given. */
static void
io_detect(bw_import *im)
{
	size_t i;

	while (im->len < 3 && io_fill(im, true))
		;
	if (im->len >= 3 && memcmp(im->buf, "\xef\xbb\xbf", 3) == 0)
		im->pos = 3;
	if (im->fmt != BW_IO_AUTO)
		return;
	for (i = im->pos;; i++) {
		if (i == im->len && !io_fill(im, true))
			break;
		if (!strchr(" \t\r\n", im->buf[i]))
			break;
	}
	im->fmt = (i < im->len && im->buf[i] == '{') ? BW_IO_JSONL : BW_IO_CSV;
}

static void
rec_reset(bw_import *im)
{
	im->dlen = 0;
	im->nf = 0;
	im->fstart = 0;
	im->fquoted = false;
	im->bad[0] = 0;
	im->rec_line = im->rec_end = im->line;
}

static void
rec_bad(bw_import *im, const char *fmt, ...)
{
	va_list ap;

	if (im->bad[0])
		return;
	va_start(ap, fmt);
	vsnprintf(im->bad, sizeof(im->bad), fmt, ap);
	va_end(ap);
}

static inline void
rec_put(bw_import *im, int ch)
{
	if (im->dlen >= BW_IO_RECORD_MAX) {
		rec_bad(im, "record longer than %d bytes", BW_IO_RECORD_MAX);
		return;
	}
	im->data[im->dlen++] = (char)ch;
}

/* End of a field: trim an unquoted one, terminate it. */
static void
rec_field_end(bw_import *im)
{
	if (im->nf >= IO_FIELDS_MAX) {
		rec_bad(im, "more than %d fields", IO_FIELDS_MAX);
		im->dlen = im->fstart;
	} else {
		if (!im->fquoted)
			while (im->dlen > im->fstart
			    && (im->data[im->dlen - 1] == ' ' || im->data[im->dlen - 1] == '\t'))
				im->dlen--;
		im->data[im->dlen] = 0; /* data has BW_IO_RECORD_MAX + 1 bytes */
		im->off[im->nf] = im->fstart;
		im->quoted[im->nf] = im->fquoted;
		im->nf++;
		if (im->dlen < BW_IO_RECORD_MAX)
			im->dlen++;
	}
	im->fstart = im->dlen;
	im->fquoted = false;
}

/*
 * One CSV record (RFC 4180, with LF or CRLF line ends, white space around
 * fields ignored unless quoted). Returns 1 with a record (im->bad set when
 * it is malformed), 0 at the end of the input, -1 on a read error.
 */
static int
csv_record(bw_import *im)
{
	enum { F_START, F_PLAIN, F_QUOTED, F_QUOTE } st = F_START;
	bool any = false;
	unsigned long qline = 0;
	int ch;

	rec_reset(im);
	for (;;) {
		ch = io_getc(im);
		if (ch < 0) {
			if (ch == IO_RDERR)
				return -1;
			if (!any)
				return 0;
			if (st == F_QUOTED)
				rec_bad(im, "quoted field opened on line %lu is not closed", qline);
			rec_field_end(im);
			im->rec_end = im->line;
			return 1;
		}
		any = true;
		if (ch == 0) {
			rec_bad(im, "NUL byte");
			if (st == F_QUOTED)
				continue;
			im->rec_end = im->line;
			return io_skip_line(im) < 0 ? -1 : 1;
		}
		switch (st) {
		case F_START:
			if (ch == ' ' || ch == '\t' || ch == '\r')
				break;
			if (ch == '"') {
				st = F_QUOTED;
				im->fquoted = true;
				qline = im->line;
			} else if (ch == ',') {
				rec_field_end(im);
			} else if (ch == '\n') {
				rec_field_end(im);
				im->rec_end = im->line++;
				return 1;
			} else {
				st = F_PLAIN;
				rec_put(im, ch);
			}
			break;
		case F_PLAIN:
			if (ch == ',') {
				rec_field_end(im);
				st = F_START;
			} else if (ch == '\n') {
				rec_field_end(im);
				im->rec_end = im->line++;
				return 1;
			} else if (ch == '"') {
				rec_bad(im, "a quote inside an unquoted field (quote the field and "
				    "double the quote)");
				im->rec_end = im->line;
				return io_skip_line(im) < 0 ? -1 : 1;
			} else if (ch != '\r') {
				rec_put(im, ch);
			}
			break;
		case F_QUOTED:
			if (ch == '"') {
				st = F_QUOTE;
			} else {
				if (ch == '\n')
					im->line++;
				rec_put(im, ch);
			}
			break;
		case F_QUOTE:
			if (ch == '"') {
				rec_put(im, '"');
				st = F_QUOTED;
			} else if (ch == ',') {
				rec_field_end(im);
				st = F_START;
			} else if (ch == '\n') {
				rec_field_end(im);
				im->rec_end = im->line++;
				return 1;
			} else if (ch != ' ' && ch != '\t' && ch != '\r') {
				rec_bad(im, "text after the closing quote of a field");
				im->rec_end = im->line;
				return io_skip_line(im) < 0 ? -1 : 1;
			}
			break;
		}
	}
}

/* A record that is one empty unquoted field: a blank line. */
static bool
rec_blank(const bw_import *im)
{
	return im->bad[0] == 0 && im->nf == 1 && !im->quoted[0] && im->data[im->off[0]] == 0;
}

/* One JSON line into im->data. Returns 1, 0 at the end, -1 on a read error. */
static int
jsonl_record(bw_import *im)
{
	bool any = false;
	int ch;

	rec_reset(im);
	for (;;) {
		ch = io_getc(im);
		if (ch == IO_RDERR)
			return -1;
		if (ch == IO_EOF) {
			if (!any)
				return 0;
			break;
		}
		any = true;
		if (ch == '\n') {
			im->line++;
			break;
		}
		rec_put(im, ch);
	}
	while (im->dlen > 0 && strchr(" \t\r", im->data[im->dlen - 1]))
		im->dlen--;
	im->data[im->dlen] = 0;
	return 1;
}

static bw_import_status
io_fail(bw_import *im, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(im->fail, sizeof(im->fail), fmt, ap);
	va_end(ap);
	im->failed = true;
	bw_seterr(err, errlen, "%s", im->fail);
	return BW_IMPORT_FAIL;
}

static bw_import_status
io_read_fail(bw_import *im, char *err, size_t errlen)
{
	return io_fail(im, err, errlen, "line %lu: read error: %s", im->line,
	    strerror(im->rd_errno));
}

/* The header row: every name known, none twice, every required one there. */
static bw_import_status
csv_header(bw_import *im, char *err, size_t errlen)
{
	size_t ncol;
	const io_col *cols = io_cols(im->kind, &ncol);
	bool seen[IO_COLS_MAX] = { false };
	char show[IO_SHOW_MAX + 4];
	int r;

	do
		r = csv_record(im);
	while (r == 1 && rec_blank(im));
	if (r < 0)
		return io_read_fail(im, err, errlen);
	if (r == 0)
		return io_fail(im, err, errlen, "no header row: the input is empty");
	if (im->bad[0])
		return io_fail(im, err, errlen, "line %lu: header: %s", im->rec_line, im->bad);
	for (unsigned i = 0; i < im->nf; i++) {
		const char *name = im->data + im->off[i];
		int c = io_col_find(im->kind, name);
		if (*name == 0)
			return io_fail(im, err, errlen, "line %lu: header: column %u has no name",
			    im->rec_line, i + 1);
		if (c < 0)
			return io_fail(im, err, errlen, "line %lu: header: unknown column \"%s\"",
			    im->rec_line, io_show(name, show));
		if (seen[c])
			return io_fail(im, err, errlen, "line %lu: header: column \"%s\" given twice",
			    im->rec_line, cols[c].name);
		seen[c] = true;
		im->colmap[i] = c;
	}
	im->ncols = im->nf;
	for (size_t c = 0; c < ncol; c++)
		if (cols[c].must && !seen[c])
			return io_fail(im, err, errlen, "line %lu: header: no column \"%s\" "
			    "(a %s import needs %s)", im->rec_line, cols[c].name,
			    bw_io_kind_name(im->kind),
			    im->kind == BW_IO_CONSENT ?
				"sender, recipient, granted_at, method, source, evidence" :
				"sender, recipient, reason, at");
	return BW_IMPORT_ROW;
}

static bool
io_build(bw_import *im, const char *const *v, bw_import_row *row, char *err, size_t errlen)
{
	if (im->kind == BW_IO_SUPPRESS)
		return io_supp_build(v, &im->norm, im->now, &row->s, err, errlen);
	return io_consent_build(v, &im->norm, im->now, &row->c, err, errlen);
}

static bw_import_status
io_bad(bw_import *im, bw_import_row *row, char *err, size_t errlen, const char *what)
{
	row->line = im->rec_line;
	row->line_end = im->rec_end;
	bw_seterr(err, errlen, "line %lu: %s", im->rec_line, what);
	return BW_IMPORT_BAD;
}

static bw_import_status
csv_next(bw_import *im, bw_import_row *row, char *err, size_t errlen)
{
	const char *v[IO_COLS_MAX] = { NULL };
	char why[IO_ERR_MAX];
	int r;

	do
		r = csv_record(im);
	while (r == 1 && rec_blank(im));
	if (r < 0)
		return io_read_fail(im, err, errlen);
	if (r == 0)
		return BW_IMPORT_END;
	if (im->bad[0])
		return io_bad(im, row, err, errlen, im->bad);
	if (im->nf != im->ncols) {
		snprintf(why, sizeof(why), "%u fields, the header has %u", im->nf, im->ncols);
		return io_bad(im, row, err, errlen, why);
	}
	for (unsigned i = 0; i < im->nf; i++)
		v[im->colmap[i]] = im->data + im->off[i];
	if (!io_build(im, v, row, why, sizeof(why)))
		return io_bad(im, row, err, errlen, why);
	row->line = im->rec_line;
	row->line_end = im->rec_end;
	return BW_IMPORT_ROW;
}

static bw_import_status
jsonl_next(bw_import *im, bw_import_row *row, char *err, size_t errlen)
{
	const char *v[IO_COLS_MAX] = { NULL };
	bool seen[IO_COLS_MAX] = { false };
	char why[IO_ERR_MAX], show[IO_SHOW_MAX + 4];
	json_error_t jerr;
	json_t *o, *val;
	const char *name;
	bool ok;
	int r;

	do
		r = jsonl_record(im);
	while (r == 1 && im->bad[0] == 0 && im->dlen == 0);
	if (r < 0)
		return io_read_fail(im, err, errlen);
	if (r == 0)
		return BW_IMPORT_END;
	if (im->bad[0])
		return io_bad(im, row, err, errlen, im->bad);
	if ((o = json_loadb(im->data, im->dlen, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		snprintf(why, sizeof(why), "not JSON: %s (column %d)", jerr.text, jerr.column);
		return io_bad(im, row, err, errlen, why);
	}
	if (!json_is_object(o)) {
		json_decref(o);
		return io_bad(im, row, err, errlen, "not a JSON object");
	}
	json_object_foreach(o, name, val) {
		int c = io_col_find(im->kind, name);
		if (c < 0 || seen[c]) {
			snprintf(why, sizeof(why), c < 0 ? "unknown member \"%s\"" :
			    "member \"%s\" given twice", io_show(name, show));
			json_decref(o);
			return io_bad(im, row, err, errlen, why);
		}
		seen[c] = true;
		if (json_is_string(val)) {
			v[c] = json_string_value(val);
		} else if (!json_is_null(val)) {
			snprintf(why, sizeof(why), "%s: not a string", name);
			json_decref(o);
			return io_bad(im, row, err, errlen, why);
		}
	}
	ok = io_build(im, v, row, why, sizeof(why));
	json_decref(o);
	if (!ok)
		return io_bad(im, row, err, errlen, why);
	row->line = im->rec_line;
	row->line_end = im->rec_end;
	return BW_IMPORT_ROW;
}

bw_import_status
bw_import_next(bw_import *im, bw_import_row *row, char *err, size_t errlen)
{
	memset(row, 0, sizeof(*row));
	if (errlen)
		err[0] = 0;
	if (im->failed) {
		bw_seterr(err, errlen, "%s", im->fail);
		return BW_IMPORT_FAIL;
	}
	if (!im->started) {
		im->started = true;
		io_detect(im);
		if (im->fmt == BW_IO_CSV && csv_header(im, err, errlen) != BW_IMPORT_ROW)
			return BW_IMPORT_FAIL;
	}
	if (im->fmt == BW_IO_JSONL)
		return jsonl_next(im, row, err, errlen);
	return csv_next(im, row, err, errlen);
}

/* ---------------------------------------------------------------- batches */

typedef struct io_item {
	char *key, *val;
	unsigned long seq, line, line_end;
} io_item;

typedef struct io_batch {
	io_item *it;
	size_t n, cap;
	bw_store_kv *kv;
} io_batch;

static void
io_batch_clear(io_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->it[i].key);
		free(b->it[i].val);
	}
	b->n = 0;
}

static int
io_item_cmp(const void *a, const void *b)
{
	const io_item *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort, drop all but the last row of each key, write in one transaction. */
static bw_store_err
io_batch_write(bw_store *st, bw_tbl tbl, io_batch *b, size_t *written, unsigned long *dups)
{
	size_t n = 0;

	qsort(b->it, b->n, sizeof(*b->it), io_item_cmp);
	for (size_t i = 0; i < b->n; i++) {
		if (i + 1 < b->n && strcmp(b->it[i].key, b->it[i + 1].key) == 0) {
			(*dups)++;
			continue;
		}
		b->kv[n].tbl = tbl;
		b->kv[n].key = b->it[i].key;
		b->kv[n].val = b->it[i].val;
		n++;
	}
	*written = n;
	return bw_store_write_many(st, b->kv, n);
}

/* The row as key and JSON value; false with err (no memory, too long). */
static bool
io_row_kv(bw_io_kind kind, const bw_import_row *row, char **key, char **val, bool *nomem,
    char *err, size_t errlen)
{
	char k[BW_STORE_KEY_MAX + 1];
	const char *sender = kind == BW_IO_SUPPRESS ? row->s.sender : row->c.sender;
	const char *rcpt = kind == BW_IO_SUPPRESS ? row->s.rcpt : row->c.rcpt;

	*key = *val = NULL;
	*nomem = false;
	if (!bw_consent_key(sender, rcpt, k, sizeof(k))) {
		bw_seterr(err, errlen, "line %lu: sender and recipient make a key longer than %d bytes",
		    row->line, BW_STORE_KEY_MAX);
		return false;
	}
	*val = kind == BW_IO_SUPPRESS ? bw_suppression_to_json(&row->s) : bw_consent_to_json(&row->c);
	if (*val == NULL || (*key = strdup(k)) == NULL) {
		free(*val);
		*val = NULL;
		*nomem = true;
		bw_seterr(err, errlen, "out of memory");
		return false;
	}
	if (strlen(*val) > BW_STORE_VAL_MAX) {
		bw_seterr(err, errlen, "line %lu: the record is longer than %d bytes as JSON",
		    row->line, BW_STORE_VAL_MAX);
		free(*key);
		free(*val);
		*key = *val = NULL;
		return false;
	}
	return true;
}

static void
io_row_clear(bw_io_kind kind, bw_import_row *row)
{
	if (kind == BW_IO_SUPPRESS)
		bw_suppression_clear(&row->s);
	else
		bw_consent_clear(&row->c);
}

static bw_import_status
io_flush(bw_store *st, bw_tbl tbl, io_batch *b, const bw_import_hooks *h,
    bw_import_report *rep, char *err, size_t errlen)
{
	unsigned long first, last;
	size_t written;
	bw_store_err e;

	if (b->n == 0)
		return BW_IMPORT_ROW;
	first = b->it[0].line;
	last = b->it[b->n - 1].line_end;
	e = io_batch_write(st, tbl, b, &written, &rep->duplicates);
	io_batch_clear(b);
	if (e != BW_STORE_OK) {
		rep->store_err = e;
		rep->failed_from = first;
		rep->failed_to = last;
		bw_seterr(err, errlen, "writing input lines %lu-%lu: %s", first, last,
		    bw_store_last_error(st));
		return BW_IMPORT_FAIL;
	}
	rep->imported += written;
	rep->batches++;
	rep->committed_line = last;
	if (h && h->committed)
		h->committed(h->ud, first, last, written);
	return BW_IMPORT_ROW;
}

bw_import_status
bw_import_run(bw_import *im, bw_store *st, size_t batch, const bw_import_hooks *h,
    bw_import_report *rep, char *err, size_t errlen)
{
	bw_tbl tbl = im->kind == BW_IO_SUPPRESS ? BW_TBL_SUPPRESS : BW_TBL_CONSENT;
	io_batch b = { 0 };
	bw_import_row row;
	bw_import_status r, ret = BW_IMPORT_END;
	char msg[IO_ERR_MAX];
	unsigned long seq = 0;

	memset(rep, 0, sizeof(*rep));
	if (errlen)
		err[0] = 0;
	if (batch == 0)
		batch = BW_IO_BATCH_DEF;
	if (st != NULL) {
		b.cap = batch;
		b.it = malloc(batch * sizeof(*b.it));
		b.kv = malloc(batch * sizeof(*b.kv));
		if (b.it == NULL || b.kv == NULL) {
			free(b.it);
			free(b.kv);
			bw_seterr(err, errlen, "out of memory for a batch of %zu rows", batch);
			return BW_IMPORT_FAIL;
		}
	}
	for (;;) {
		char *key = NULL, *val = NULL;
		bool nomem;

		r = bw_import_next(im, &row, msg, sizeof(msg));
		if (r == BW_IMPORT_END)
			break;
		if (r == BW_IMPORT_FAIL) {
			bw_seterr(err, errlen, "%s", msg);
			ret = BW_IMPORT_FAIL;
			break;
		}
		rep->rows++;
		if (r == BW_IMPORT_ROW && !io_row_kv(im->kind, &row, &key, &val, &nomem, msg,
		    sizeof(msg))) {
			io_row_clear(im->kind, &row);
			if (nomem) {
				bw_seterr(err, errlen, "%s", msg);
				ret = BW_IMPORT_FAIL;
				break;
			}
			r = BW_IMPORT_BAD;
		}
		if (r == BW_IMPORT_BAD) {
			rep->skipped++;
			if (h && h->bad && h->bad(h->ud, row.line, msg) != 0) {
				ret = BW_IMPORT_BAD;
				break;
			}
			continue;
		}
		io_row_clear(im->kind, &row);
		if (st == NULL) {
			free(key);
			free(val);
			rep->imported++;
			rep->committed_line = row.line_end;
			continue;
		}
		b.it[b.n++] = (io_item){ key, val, seq++, row.line, row.line_end };
		if (b.n == b.cap && io_flush(st, tbl, &b, h, rep, err, errlen) != BW_IMPORT_ROW) {
			ret = BW_IMPORT_FAIL;
			break;
		}
	}
	if (ret == BW_IMPORT_END && st != NULL
	    && io_flush(st, tbl, &b, h, rep, err, errlen) != BW_IMPORT_ROW)
		ret = BW_IMPORT_FAIL;
	io_batch_clear(&b);
	free(b.it);
	free(b.kv);
	return ret;
}

/* ---------------------------------------------------------------- writers */

typedef struct io_sbuf {
	char *s;
	size_t len, cap;
	bool nomem;
} io_sbuf;

static void
sb_add(io_sbuf *b, const char *p, size_t n)
{
	if (b->nomem)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *s;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((s = realloc(b->s, cap)) == NULL) {
			b->nomem = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = 0;
}

static void
sb_str(io_sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static char *
sb_done(io_sbuf *b)
{
	if (b->nomem) {
		free(b->s);
		return NULL;
	}
	return b->s;
}

/* A CSV field: quoted when it holds a comma, quote, line break or has
 * white space at either end (which the reader would trim). */
static void
csv_field(io_sbuf *b, const char *v, bool first)
{
	size_t n;

	if (!first)
		sb_add(b, ",", 1);
	if (v == NULL || *v == 0)
		return;
	n = strlen(v);
	if (strpbrk(v, ",\"\r\n") == NULL && v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' '
	    && v[n - 1] != '\t') {
		sb_add(b, v, n);
		return;
	}
	sb_add(b, "\"", 1);
	for (const char *p = v; *p; p++) {
		const char *q = strchr(p, '"');
		if (q == NULL) {
			sb_str(b, p);
			break;
		}
		sb_add(b, p, (size_t)(q - p));
		sb_add(b, "\"\"", 2);
		p = q;
	}
	sb_add(b, "\"", 1);
}

static void
json_str(io_sbuf *b, const char *v)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = v;

	sb_add(b, "\"", 1);
	for (const char *p = v; *p; p++) {
		unsigned char c = (unsigned char)*p;
		char esc[7];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_add(b, run, (size_t)(p - run));
		run = p + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': sb_add(b, "\\\"", 2); break;
		case '\\': sb_add(b, "\\\\", 2); break;
		case '\n': sb_add(b, "\\n", 2); break;
		case '\r': sb_add(b, "\\r", 2); break;
		case '\t': sb_add(b, "\\t", 2); break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			sb_add(b, esc, 6);
		}
	}
	sb_str(b, run);
	sb_add(b, "\"", 1);
}

static void
json_member(io_sbuf *b, const char *name, const char *v, bool first)
{
	if (v == NULL || *v == 0)
		return;
	if (!first)
		sb_add(b, ",", 1);
	json_str(b, name);
	sb_add(b, ":", 1);
	json_str(b, v);
}

/* The fields of a record by column as text (times formatted into tbuf). */
static const char *
io_tfmt(int64_t t, char *buf, size_t len)
{
	if (t == 0)
		return NULL;
	bw_time_fmt(t, buf, len);
	return buf;
}

static char *
io_line(bw_io_kind kind, const char *const *v, bw_io_format f)
{
	size_t n;
	const io_col *cols = io_cols(kind, &n);
	io_sbuf b = { 0 };

	if (f == BW_IO_JSONL) {
		sb_add(&b, "{", 1);
		for (size_t i = 0; i < n; i++)
			json_member(&b, cols[i].name, v[i], i == 0);
		sb_add(&b, "}\n", 2);
	} else {
		for (size_t i = 0; i < n; i++)
			csv_field(&b, v[i], i == 0);
		sb_add(&b, "\n", 1);
	}
	return sb_done(&b);
}

char *
bw_io_consent_line(const bw_consent *c, bw_io_format f)
{
	const char *v[CC__N];
	char t[5][40];

	v[CC_SENDER] = c->sender;
	v[CC_RECIPIENT] = c->rcpt;
	v[CC_GRANTED_AT] = io_tfmt(c->granted_at, t[0], sizeof(t[0]));
	v[CC_METHOD] = bw_consent_method_name(c->method);
	v[CC_SOURCE] = c->source;
	v[CC_EVIDENCE] = c->evidence;
	v[CC_SOURCE_IP] = c->source_ip;
	v[CC_CONFIRMED_AT] = io_tfmt(c->confirmed_at, t[1], sizeof(t[1]));
	v[CC_CONFIRM_IP] = c->confirm_ip;
	v[CC_TEXT] = c->text;
	v[CC_EXPIRES_AT] = io_tfmt(c->expires_at, t[2], sizeof(t[2]));
	v[CC_WITHDRAWN_AT] = io_tfmt(c->withdrawn_at, t[3], sizeof(t[3]));
	v[CC_RECORDED_AT] = io_tfmt(c->recorded_at, t[4], sizeof(t[4]));
	return io_line(BW_IO_CONSENT, v, f);
}

char *
bw_io_suppression_line(const bw_suppression *s, bw_io_format f)
{
	const char *v[SC__N];
	char t[40];

	v[SC_SENDER] = s->sender;
	v[SC_RECIPIENT] = s->rcpt;
	v[SC_REASON] = bw_supp_reason_name(s->reason);
	v[SC_AT] = io_tfmt(s->at, t, sizeof(t));
	v[SC_SOURCE] = s->source;
	v[SC_NOTE] = s->note;
	return io_line(BW_IO_SUPPRESS, v, f);
}

const char *
bw_io_csv_header(bw_io_kind kind)
{
	if (kind == BW_IO_SUPPRESS)
		return "sender,recipient,reason,at,source,note\n";
	return "sender,recipient,granted_at,method,source,evidence,source_ip,confirmed_at,"
	       "confirm_ip,text,expires_at,withdrawn_at,recorded_at\n";
}
