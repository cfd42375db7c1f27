/*
 * complaint.c - complaint reports (RFC 5965 ARF) and their authentication
 * (DESIGN.md 4, "Complaints and rates").
 *
 * Owns: a small MIME split of the report (top-level multipart only: the
 * parts of an ARF report are leaves, and the original is read for its
 * header block alone), the feedback-report fields, the original's headers,
 * DKIM verification with libopendkim against a trusted-reporters list, and
 * the dedupe key (OpenSSL SHA-256).
 *
 * Not mime.h: the streaming walker hands out decoded text of text leaves
 * and walks into message/rfc822, but an ARF report needs the raw fields of
 * the message/feedback-report part and the header block of the
 * encapsulated original, and the whole report is in memory anyway (it is
 * verified as one piece), so a split over the buffer is simpler and keeps
 * no state.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1 /* u_char and friends, which dkim.h uses */
#endif
#include <sys/types.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <resolv.h>

#include <opendkim/dkim.h>
#include <openssl/evp.h>

#include "log.h"
#include "complaint.h"
#include "dns.h"

#define ADDR_MAX 320      /* bytes of an address (64 + @ + 255) */
#define FTYPE_MAX 64      /* bytes of a Feedback-Type token */
#define TYPE_MAX 128      /* bytes of a type/subtype */
#define DOMAIN_MAX 253
#define LABEL_MAX 63
#define SHOW_MAX 64       /* bytes of a value quoted in an error */

/* ---------------------------------------------------------------- small helpers */

static bool
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 2045 token character */
static bool
is_tchar(int c)
{
	return c > 32 && c < 127 && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static void
str_lower(char *s)
{
	for (; *s; s++)
		*s = (char)lower((unsigned char)*s);
}

/* A value as it may go into an error sentence: printable ASCII only, cut. */
static const char *
shown(const char *v, char buf[SHOW_MAX + 4])
{
	size_t i;

	for (i = 0; i < SHOW_MAX && v[i]; i++)
		buf[i] = (unsigned char)v[i] >= 32 && (unsigned char)v[i] < 127 ? v[i] : '?';
	if (v[i])
		memcpy(buf + i, "...", 4);
	else
		buf[i] = '\0';
	return buf;
}

struct span {
	const char *p;
	size_t n;
};

/* One line from p: its end without the line ending in *le; returns where the
 * next line starts. A lone CR at the very end counts as a line ending. */
static const char *
line_next(const char *p, const char *end, const char **le)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	if (nl == NULL) {
		*le = end > p && end[-1] == '\r' ? end - 1 : end;
		return end;
	}
	*le = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
	return nl + 1;
}

/* Skip white space, line ends and (nested) comments. */
static const char *
skip_cfws(const char *p, const char *e)
{
	while (p < e) {
		if (is_wsp(*p) || *p == '\r' || *p == '\n') {
			p++;
		} else if (*p == '(') {
			int depth = 0;

			for (; p < e; p++) {
				if (*p == '\\' && p + 1 < e)
					p++;
				else if (*p == '(')
					depth++;
				else if (*p == ')' && --depth == 0) {
					p++;
					break;
				}
			}
		} else
			break;
	}
	return p;
}

/* Unfolded, trimmed copy of a field value; NULL when out of memory. */
static char *
unfold(struct span v)
{
	char *out = malloc(v.n + 1), *o, *s;

	if (out == NULL)
		return NULL;
	o = out;
	for (size_t i = 0; i < v.n; i++)
		if (v.p[i] != '\r' && v.p[i] != '\n')
			*o++ = v.p[i];
	while (o > out && is_wsp(o[-1]))
		o--;
	*o = '\0';
	for (s = out; is_wsp(*s); s++)
		;
	if (s != out)
		memmove(out, s, strlen(s) + 1);
	return out;
}

/* ---------------------------------------------------------------- header blocks */

/* A header block read field by field, with the bounds of complaint.h. */
struct hscan {
	const char *p;       /* the next line */
	const char *end;
	size_t bytes;        /* of this block so far */
	unsigned nfields;
	bool lenient;        /* a line that is not a field ends the block */
	const char *what;    /* "report header": for error sentences */
};

struct hfield {
	struct span name;    /* without white space before the colon */
	struct span raw;     /* the whole field, folds kept, no final line end */
	struct span val;     /* after the colon, folds kept */
};

static void
hs_init(struct hscan *s, struct span in, bool lenient, const char *what)
{
	memset(s, 0, sizeof(*s));
	s->p = in.p;
	s->end = in.p + in.n;
	s->lenient = lenient;
	s->what = what;
}

/* 1: a field in *f; 0: the end of the block, s->p is where the body starts
 * (after the empty line; at a non-field line when lenient; the end of
 * input when there is no body); -1: *code and err say why. */
static int
hs_next(struct hscan *s, struct hfield *f, bw_arf_err *code, char *err, size_t errlen)
{
	const char *ls = s->p, *le, *next, *colon, *ne;

	if (ls >= s->end)
		return 0;
	next = line_next(ls, s->end, &le);
	if (le == ls) {
		s->p = next;
		return 0;
	}
	colon = is_wsp(*ls) ? NULL : memchr(ls, ':', (size_t)(le - ls));
	ne = colon;
	while (ne != NULL && ne > ls && is_wsp(ne[-1]))
		ne--;
	if (ne != NULL && ne > ls) {
		for (const char *q = ls; q < ne; q++)
			if ((unsigned char)*q <= 32 || (unsigned char)*q >= 127) {
				ne = NULL;
				break;
			}
	}
	if (ne == NULL || ne == ls) {
		if (s->lenient)
			return 0;
		*code = BW_ARF_EHEADER;
		bw_seterr(err, errlen, "%s: a line after field %u is not a header field", s->what, s->nfields);
		return -1;
	}
	/* continuation lines; the bounds are checked once the field is known,
	   which is linear in the input all the same */
	while (next < s->end && is_wsp(*next))
		next = line_next(next, s->end, &le);
	s->bytes += (size_t)(next - ls);
	if ((size_t)(le - ls) > BW_ARF_LINE_MAX) {
		*code = BW_ARF_ELIMIT;
		bw_seterr(err, errlen, "%s: field %u is over %u bytes", s->what, s->nfields + 1,
		    (unsigned)BW_ARF_LINE_MAX);
		return -1;
	}
	if (s->bytes > BW_ARF_HDR_MAX) {
		*code = BW_ARF_ELIMIT;
		bw_seterr(err, errlen, "%s: over %u bytes", s->what, (unsigned)BW_ARF_HDR_MAX);
		return -1;
	}
	if (++s->nfields > BW_ARF_FIELDS_MAX) {
		*code = BW_ARF_ELIMIT;
		bw_seterr(err, errlen, "%s: more than %u fields", s->what, (unsigned)BW_ARF_FIELDS_MAX);
		return -1;
	}
	f->name.p = ls;
	f->name.n = (size_t)(ne - ls);
	f->raw.p = ls;
	f->raw.n = (size_t)(le - ls);
	f->val.p = colon + 1;
	f->val.n = (size_t)(le - colon - 1);
	s->p = next;
	return 1;
}

static bool
name_is(const struct hfield *f, const char *name)
{
	return strlen(name) == f->name.n && strncasecmp(f->name.p, name, f->name.n) == 0;
}

/* ---------------------------------------------------------------- Content-Type */

/* "type/subtype" lower-cased into type; *rest is where the parameters
 * start. False (type "") when it does not parse. */
static bool
ct_type(const char *v, char type[TYPE_MAX], const char **rest)
{
	const char *e = v + strlen(v), *p = skip_cfws(v, e);
	size_t n = 0;
	bool slash = false;

	type[0] = '\0';
	for (; p < e && (is_tchar((unsigned char)*p) || (*p == '/' && !slash)); p++) {
		if (*p == '/')
			slash = true;
		if (n + 1 >= TYPE_MAX)
			return false;
		type[n++] = (char)lower((unsigned char)*p);
	}
	type[n] = '\0';
	if (!slash || type[0] == '/' || type[n - 1] == '/') {
		type[0] = '\0';
		return false;
	}
	*rest = p;
	return true;
}

/* The value of parameter name in the parameter list p: 1 found, 0 not
 * there (or the list stops parsing before it), -1 longer than outlen - 1. */
static int
ct_param(const char *p, const char *name, char *out, size_t outlen)
{
	const char *e = p + strlen(p);

	for (;;) {
		const char *a, *ae;
		size_t n = 0;
		bool over = false;

		p = skip_cfws(p, e);
		if (p >= e || *p != ';')
			return 0;
		while (p < e && (*p == ';' || is_wsp(*p)))
			p++;
		p = skip_cfws(p, e);
		for (a = p; p < e && is_tchar((unsigned char)*p); p++)
			;
		ae = p;
		p = skip_cfws(p, e);
		if (a == ae || p >= e || *p != '=')
			return 0;
		p = skip_cfws(p + 1, e);
		if (p < e && *p == '"') {
			for (p++; p < e && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < e)
					p++;
				if (n + 1 < outlen)
					out[n++] = *p;
				else
					over = true;
			}
			if (p >= e)
				return 0;
			p++;
		} else {
			for (; p < e && *p != ';' && !is_wsp(*p) && *p != '('; p++) {
				if (n + 1 < outlen)
					out[n++] = *p;
				else
					over = true;
			}
		}
		out[n] = '\0';
		if ((size_t)(ae - a) == strlen(name) && strncasecmp(a, name, (size_t)(ae - a)) == 0)
			return over ? -1 : 1;
	}
}

/* ---------------------------------------------------------------- MIME split */

struct part {
	struct span all;     /* header and body */
	struct span body;
	char type[TYPE_MAX]; /* lower case; "text/plain" by default */
	char cte[32];        /* lower case; "7bit" by default */
};

/* Is [ls, le) a delimiter line for boundary b? *close for the last one.
 * Transport padding (white space) may follow (RFC 2046 5.1.1). */
static bool
delim_line(const char *ls, const char *le, const char *b, size_t bn, bool *close)
{
	if ((size_t)(le - ls) < bn + 2 || ls[0] != '-' || ls[1] != '-' || memcmp(ls + 2, b, bn) != 0)
		return false;
	ls += bn + 2;
	*close = le - ls >= 2 && ls[0] == '-' && ls[1] == '-';
	if (*close)
		ls += 2;
	for (; ls < le; ls++)
		if (!is_wsp(*ls))
			return false;
	return true;
}

/* The top-level parts of body. The line end before a delimiter belongs to
 * the delimiter. */
static bw_arf_err
split_parts(struct span body, const char *b, struct part *parts, size_t *np, char *err, size_t errlen)
{
	const char *p = body.p, *end = body.p + body.n, *start = NULL;
	size_t bn = strlen(b);
	bool close = false;

	*np = 0;
	while (p < end) {
		const char *ls = p, *le;

		p = line_next(p, end, &le);
		if (!delim_line(ls, le, b, bn, &close))
			continue;
		if (start != NULL) {
			const char *pe = ls;

			if (pe > start && pe[-1] == '\n')
				pe--;
			if (pe > start && pe[-1] == '\r')
				pe--;
			if (*np == BW_ARF_PARTS_MAX) {
				bw_seterr(err, errlen, "more than %u parts", (unsigned)BW_ARF_PARTS_MAX);
				return BW_ARF_ELIMIT;
			}
			parts[*np].all.p = start;
			parts[(*np)++].all.n = (size_t)(pe - start);
		}
		if (close) {
			start = NULL;
			break;
		}
		start = p;
	}
	if (start != NULL) {
		/* no closing delimiter: the last part runs to the end */
		if (*np == BW_ARF_PARTS_MAX) {
			bw_seterr(err, errlen, "more than %u parts", (unsigned)BW_ARF_PARTS_MAX);
			return BW_ARF_ELIMIT;
		}
		parts[*np].all.p = start;
		parts[(*np)++].all.n = (size_t)(end - start);
	}
	if (*np == 0) {
		bw_seterr(err, errlen, "no body part: the boundary does not occur");
		return BW_ARF_EMIME;
	}
	return BW_ARF_OK;
}

/* A part's Content-Type and Content-Transfer-Encoding, and where its body
 * starts. Part headers are read leniently: a line that is not a field
 * starts the body, as a reader would take it. */
static bw_arf_err
part_header(struct part *pt, unsigned i, char *err, size_t errlen)
{
	struct hscan s;
	struct hfield f;
	bw_arf_err code = BW_ARF_OK;
	char what[32];
	bool seen_ct = false, seen_cte = false;
	int rc;

	snprintf(what, sizeof(what), "part %u header", i + 1);
	strcpy(pt->type, "text/plain");
	strcpy(pt->cte, "7bit");
	hs_init(&s, pt->all, true, what);
	while ((rc = hs_next(&s, &f, &code, err, errlen)) == 1) {
		bool ct = name_is(&f, "Content-Type"), cte = name_is(&f, "Content-Transfer-Encoding");
		char *v;
		const char *rest;

		if ((!ct || seen_ct) && (!cte || seen_cte))
			continue;
		if ((v = unfold(f.val)) == NULL) {
			bw_seterr(err, errlen, "out of memory");
			return BW_ARF_ENOMEM;
		}
		if (ct) {
			seen_ct = true;
			if (!ct_type(v, pt->type, &rest))
				strcpy(pt->type, "text/plain"); /* RFC 2045 5.2 */
		} else {
			const char *e = v + strlen(v), *p = skip_cfws(v, e);
			size_t n = 0;

			seen_cte = true;
			for (; p < e && is_tchar((unsigned char)*p) && n + 1 < sizeof(pt->cte); p++)
				pt->cte[n++] = (char)lower((unsigned char)*p);
			pt->cte[n] = '\0';
		}
		free(v);
	}
	if (rc < 0)
		return code;
	pt->body.p = s.p;
	pt->body.n = (size_t)(pt->all.p + pt->all.n - s.p);
	return BW_ARF_OK;
}

static int
b64_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (is_digit(c))
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

static int
hex_val(int c)
{
	if (is_digit(c))
		return c - '0';
	c = lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The part's body without its transfer encoding: *out is the body itself
 * or a malloc'd copy in *buf (never longer than the input). */
static bw_arf_err
part_decode(const struct part *pt, struct span *out, char **buf, char *err, size_t errlen)
{
	const char *in = pt->body.p;
	size_t n = pt->body.n, o = 0;
	char *d;

	*buf = NULL;
	if (strcmp(pt->cte, "7bit") == 0 || strcmp(pt->cte, "8bit") == 0 ||
	    strcmp(pt->cte, "binary") == 0 || pt->cte[0] == '\0') {
		*out = pt->body;
		return BW_ARF_OK;
	}
	if (strcmp(pt->cte, "base64") != 0 && strcmp(pt->cte, "quoted-printable") != 0) {
		char sh[SHOW_MAX + 4];

		bw_seterr(err, errlen, "%s part: unknown transfer encoding %s", pt->type, shown(pt->cte, sh));
		return BW_ARF_EMIME;
	}
	if ((d = malloc(n + 1)) == NULL) {
		bw_seterr(err, errlen, "out of memory");
		return BW_ARF_ENOMEM;
	}
	if (pt->cte[0] == 'b') {
		unsigned acc = 0;
		int bits = 0;

		for (size_t i = 0; i < n && in[i] != '='; i++) {
			int v = b64_val((unsigned char)in[i]);

			if (v < 0)
				continue; /* line ends, white space, junk */
			acc = ((acc << 6) | (unsigned)v) & 0xffffu;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				d[o++] = (char)((acc >> bits) & 0xffu);
			}
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			int h, l;

			if (in[i] != '=') {
				d[o++] = in[i];
			} else if (i + 1 < n && in[i + 1] == '\n') {
				i++; /* soft line break */
			} else if (i + 2 < n && in[i + 1] == '\r' && in[i + 2] == '\n') {
				i += 2;
			} else if (i + 2 < n && (h = hex_val((unsigned char)in[i + 1])) >= 0 &&
			           (l = hex_val((unsigned char)in[i + 2])) >= 0) {
				d[o++] = (char)(h << 4 | l);
				i += 2;
			} else
				d[o++] = '=';
		}
	}
	d[o] = '\0';
	*buf = d;
	out->p = d;
	out->n = o;
	return BW_ARF_OK;
}

/* ---------------------------------------------------------------- field values */

static bool
digits(const char **pp, const char *e, int min, int max, long *v, int *nd)
{
	const char *p = *pp;
	int n = 0;

	*v = 0;
	while (p < e && is_digit(*p) && n < max) {
		*v = *v * 10 + (*p++ - '0');
		n++;
	}
	if (n < min || (p < e && is_digit(*p)))
		return false;
	if (nd != NULL)
		*nd = n;
	*pp = p;
	return true;
}

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* RFC 5322 3.3 date-time, with the obsolete forms of 4.3 (two-digit years,
 * zone names, comments); false when it does not parse. */
static bool
date_parse(const char *s, int64_t *t)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	static const char days[] = "sunmontuewedthufrisat";
	static const struct {
		const char *name;
		int minutes;
	} zones[] = { { "UT", 0 }, { "GMT", 0 }, { "Z", 0 }, { "UTC", 0 } /* not RFC 5322; seen */,
		{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 }, { "MST", -420 },
		{ "MDT", -360 }, { "PST", -480 }, { "PDT", -420 } };
	static const unsigned char mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *e = s + strlen(s), *p = skip_cfws(s, e), *m;
	long day, year, hh, mm, ss = 0;
	int nd, mon, zone = 0;
	char w[4];

	if (p < e && is_alpha(*p)) {
		if (e - p < 3)
			return false;
		for (int i = 0; i < 3; i++)
			w[i] = (char)lower((unsigned char)p[i]);
		w[3] = '\0';
		if ((m = strstr(days, w)) == NULL || (m - days) % 3 != 0)
			return false;
		p = skip_cfws(p + 3, e);
		if (p >= e || *p != ',')
			return false;
		p = skip_cfws(p + 1, e);
	}
	if (!digits(&p, e, 1, 2, &day, NULL))
		return false;
	p = skip_cfws(p, e);
	if (e - p < 3)
		return false;
	for (int i = 0; i < 3; i++)
		w[i] = (char)lower((unsigned char)p[i]);
	w[3] = '\0';
	if ((m = strstr(months, w)) == NULL || (m - months) % 3 != 0 || (p + 3 < e && is_alpha(p[3])))
		return false;
	mon = (int)((m - months) / 3);
	p = skip_cfws(p + 3, e);
	if (!digits(&p, e, 2, 4, &year, &nd))
		return false;
	if (nd == 2)
		year += year < 50 ? 2000 : 1900;
	else if (nd == 3)
		year += 1900;
	p = skip_cfws(p, e);
	if (!digits(&p, e, 1, 2, &hh, NULL))
		return false;
	p = skip_cfws(p, e);
	if (p >= e || *p != ':')
		return false;
	p = skip_cfws(p + 1, e);
	if (!digits(&p, e, 2, 2, &mm, NULL))
		return false;
	p = skip_cfws(p, e);
	if (p < e && *p == ':') {
		p = skip_cfws(p + 1, e);
		if (!digits(&p, e, 2, 2, &ss, NULL))
			return false;
		p = skip_cfws(p, e);
	}
	if (p < e && (*p == '+' || *p == '-')) {
		long z;
		int sign = *p == '-' ? -1 : 1;

		p++;
		if (!digits(&p, e, 4, 4, &z, NULL) || z % 100 > 59)
			return false;
		zone = sign * (int)(z / 100 * 60 + z % 100);
	} else if (p < e && is_alpha(*p)) {
		const char *z = p;
		size_t zn;
		bool found = false;

		while (p < e && is_alpha(*p))
			p++;
		zn = (size_t)(p - z);
		for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
			if (strlen(zones[i].name) == zn && strncasecmp(zones[i].name, z, zn) == 0) {
				zone = zones[i].minutes;
				found = true;
			}
		/* military zones are ambiguous in practice: RFC 5322 4.3 says -0000 */
		if (!found && zn != 1)
			return false;
	} else
		return false;
	if (skip_cfws(p, e) != e)
		return false;
	if (year < 1900 || year > 9999 || day < 1 || day > mdays[mon] || hh > 23 || mm > 59 || ss > 60)
		return false;
	if (mon == 1 && day == 29 && !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
		return false;
	*t = days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss -
	     (int64_t)zone * 60;
	return true;
}

/* "<addr>" or "addr" into the address itself, in place. Quoted local parts
 * may hold spaces; nothing else may. */
static bool
addr_value(char *v, bool allow_empty)
{
	size_t n;
	bool q = false;

	if (v[0] == '<') {
		char *e = strchr(v + 1, '>');

		if (e == NULL)
			return false;
		for (const char *t = e + 1; *t; t++)
			if (!is_wsp(*t))
				return false;
		n = (size_t)(e - v - 1);
		memmove(v, v + 1, n);
		v[n] = '\0';
	}
	n = strlen(v);
	if (n == 0)
		return allow_empty;
	if (n > ADDR_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c < 32 || c == 127)
			return false;
		if (q && c == '\\' && i + 1 < n) {
			i++;
			continue;
		}
		if (c == '"')
			q = !q;
		else if (!q && (c == ' ' || c == '<' || c == '>' || c == ','))
			return false;
	}
	return !q;
}

/* A host name, lower-cased in place, a trailing dot dropped. 8-bit bytes
 * (U-labels) are let through as written: the reporter's business. */
static bool
domain_value(char *v)
{
	size_t n = strlen(v), label = 0;

	if (n > 0 && v[n - 1] == '.')
		v[--n] = '\0';
	if (n == 0 || n > DOMAIN_MAX)
		return false;
	str_lower(v);
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > LABEL_MAX)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '_' || c >= 0x80)
			label++;
		else
			return false;
	}
	return true;
}

/* Source-IP: IPv4 or IPv6, optionally in brackets or as "IPv6:..." (the
 * RFC 5321 literal forms), into its canonical text form. */
static bool
ip_value(const char *v, char out[46])
{
	char tmp[64];
	unsigned char bin[16];
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '[' && v[n - 1] == ']') {
		v++;
		n -= 2;
	}
	if (n > 5 && strncasecmp(v, "IPv6:", 5) == 0) {
		v += 5;
		n -= 5;
	}
	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, v, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, bin) == 1)
		return inet_ntop(AF_INET, bin, out, 46) != NULL;
	if (inet_pton(AF_INET6, tmp, bin) == 1)
		return inet_ntop(AF_INET6, bin, out, 46) != NULL;
	return false;
}

static bool
text_ok(const char *v)
{
	if (*v == '\0')
		return false;
	for (; *v; v++)
		if (((unsigned char)*v < 32 && *v != '\t') || *v == 127)
			return false;
	return true;
}

static const char *const ftype_names[] = { "abuse", "fraud", "virus", "other", "not-spam",
	"auth-failure", "unknown" };

const char *
bw_arf_ftype_name(bw_arf_ftype t)
{
	return (unsigned)t <= BW_FT_UNKNOWN ? ftype_names[t] : "?";
}

static bw_arf_ftype
ftype_parse(const char *s)
{
	for (int i = 0; i < BW_FT_UNKNOWN; i++)
		if (strcmp(s, ftype_names[i]) == 0)
			return (bw_arf_ftype)i;
	return BW_FT_UNKNOWN;
}

/* ---------------------------------------------------------------- the report */

static const char *const err_names[] = { "ok", "too big", "over a limit", "bad header",
	"not a report", "not a feedback report", "bad MIME structure", "no feedback-report part",
	"bad feedback-report field", "out of memory" };

const char *
bw_arf_err_name(bw_arf_err e)
{
	return (unsigned)e <= BW_ARF_ENOMEM ? err_names[e] : "?";
}

void
bw_arf_clear(bw_arf *r)
{
	if (r == NULL)
		return;
	free(r->report_msgid);
	free(r->feedback_type);
	free(r->user_agent);
	free(r->version);
	free(r->mail_from);
	for (size_t i = 0; i < r->nrcpt; i++)
		free(r->rcpt[i]);
	free(r->arrival_date);
	for (size_t i = 0; i < r->ndomains; i++)
		free(r->domains[i]);
	free(r->orig_msgid);
	free(r->orig_from);
	free(r->trace);
	free(r->cfbl_id);
	free(r->feedback_id);
	memset(r, 0, sizeof(*r));
}

#define SEEN_ARRIVAL 1u
#define SEEN_RECEIVED 2u

/* One feedback-report field into r; v is taken over (stored or freed). */
static bw_arf_err
feedback_field(const struct hfield *f, char *v, bw_arf *r, unsigned *seen, char *err,
    size_t errlen)
{
	char sh[SHOW_MAX + 4];
	int64_t t;
	char **once = NULL;
	const char *name = NULL;

	if (name_is(f, "Feedback-Type")) {
		once = &r->feedback_type;
		name = "Feedback-Type";
	} else if (name_is(f, "User-Agent")) {
		once = &r->user_agent;
		name = "User-Agent";
	} else if (name_is(f, "Version")) {
		once = &r->version;
		name = "Version";
	} else if (name_is(f, "Original-Mail-From")) {
		once = &r->mail_from;
		name = "Original-Mail-From";
	} else if (name_is(f, "Arrival-Date") || name_is(f, "Received-Date")) {
		/* Received-Date is the draft name: it counts when Arrival-Date is
		   not there; each may appear once */
		unsigned bit = name_is(f, "Received-Date") ? SEEN_RECEIVED : SEEN_ARRIVAL;

		name = bit == SEEN_RECEIVED ? "Received-Date" : "Arrival-Date";
		if (*seen & bit) {
			bw_seterr(err, errlen, "%s appears twice", name);
			goto bad;
		}
		*seen |= bit;
		if (!date_parse(v, &t)) {
			bw_seterr(err, errlen, "%s: \"%s\" is not an RFC 5322 date", name, shown(v, sh));
			goto bad;
		}
		if (bit == SEEN_RECEIVED && (*seen & SEEN_ARRIVAL)) {
			free(v);
			return BW_ARF_OK;
		}
		free(r->arrival_date);
		r->arrival_date = v;
		r->arrival = t;
		return BW_ARF_OK;
	} else if (name_is(f, "Source-IP")) {
		if (r->source_ip[0] != '\0') {
			bw_seterr(err, errlen, "Source-IP appears twice");
			goto bad;
		}
		if (!ip_value(v, r->source_ip)) {
			bw_seterr(err, errlen, "Source-IP: \"%s\" is not an IP address", shown(v, sh));
			goto bad;
		}
		free(v);
		return BW_ARF_OK;
	} else if (name_is(f, "Original-Rcpt-To")) {
		if (!addr_value(v, false)) {
			bw_seterr(err, errlen, "Original-Rcpt-To: \"%s\" is not an address", shown(v, sh));
			goto bad;
		}
		if (r->nrcpt == BW_ARF_MULTI_MAX) {
			bw_seterr(err, errlen, "more than %u Original-Rcpt-To fields", (unsigned)BW_ARF_MULTI_MAX);
			free(v);
			return BW_ARF_ELIMIT;
		}
		r->rcpt[r->nrcpt++] = v;
		return BW_ARF_OK;
	} else if (name_is(f, "Reported-Domain")) {
		if (!domain_value(v)) {
			bw_seterr(err, errlen, "Reported-Domain: \"%s\" is not a domain", shown(v, sh));
			goto bad;
		}
		if (r->ndomains == BW_ARF_MULTI_MAX) {
			bw_seterr(err, errlen, "more than %u Reported-Domain fields", (unsigned)BW_ARF_MULTI_MAX);
			free(v);
			return BW_ARF_ELIMIT;
		}
		r->domains[r->ndomains++] = v;
		return BW_ARF_OK;
	} else {
		free(v); /* Authentication-Results, Incidents, Reported-URI, extensions */
		return BW_ARF_OK;
	}

	if (*once != NULL) {
		bw_seterr(err, errlen, "%s appears twice", name);
		goto bad;
	}
	if (once == &r->feedback_type) {
		size_t n = strlen(v);

		for (size_t i = 0; i < n; i++)
			if (!is_tchar((unsigned char)v[i]))
				n = 0;
		if (n == 0 || n > FTYPE_MAX) {
			bw_seterr(err, errlen, "Feedback-Type: \"%s\" is not a token", shown(v, sh));
			goto bad;
		}
		str_lower(v);
		r->ftype = ftype_parse(v);
	} else if (once == &r->version) {
		if (strcmp(v, "1") != 0 && strcmp(v, "1.0") != 0 && strcmp(v, "0.1") != 0) {
			bw_seterr(err, errlen, "Version: \"%s\" is not supported (1 is)", shown(v, sh));
			goto bad;
		}
	} else if (once == &r->mail_from) {
		if (!addr_value(v, true)) {
			bw_seterr(err, errlen, "Original-Mail-From: \"%s\" is not an address", shown(v, sh));
			goto bad;
		}
	} else if (!text_ok(v)) {
		bw_seterr(err, errlen, "%s: empty, or control characters", name);
		goto bad;
	}
	*once = v;
	return BW_ARF_OK;
bad:
	free(v);
	return BW_ARF_EFIELD;
}

static bw_arf_err
feedback_fields(struct span body, bw_arf *r, char *err, size_t errlen)
{
	struct hscan s;
	struct hfield f;
	bw_arf_err code = BW_ARF_OK;
	const char *p = body.p, *end = body.p + body.n;
	unsigned seen = 0;
	int rc;

	/* some reporters start the part with an empty line */
	while (p < end) {
		const char *le, *next = line_next(p, end, &le);

		if (le != p)
			break;
		p = next;
	}
	body.n = (size_t)(end - p);
	body.p = p;
	hs_init(&s, body, false, "feedback-report");
	while ((rc = hs_next(&s, &f, &code, err, errlen)) == 1) {
		char *v = unfold(f.val);

		if (v == NULL) {
			bw_seterr(err, errlen, "out of memory");
			return BW_ARF_ENOMEM;
		}
		if ((code = feedback_field(&f, v, r, &seen, err, errlen)) != BW_ARF_OK)
			return code;
	}
	if (rc < 0) /* a line that is not a field is a field syntax error here */
		return code == BW_ARF_EHEADER ? BW_ARF_EFIELD : code;
	if (r->feedback_type == NULL) {
		bw_seterr(err, errlen, "Feedback-Type is missing");
		return BW_ARF_EFIELD;
	}
	return BW_ARF_OK;
}

/* The value as DKIM relaxed canonicalisation has it: unfolded, runs of
 * white space one space, trimmed. */
static size_t
relaxed_value(struct span v, char *out)
{
	size_t o = 0;
	bool sp = false;

	for (size_t i = 0; i < v.n; i++) {
		char c = v.p[i];

		if (c == '\r' || c == '\n')
			continue;
		if (is_wsp(c)) {
			sp = true;
			continue;
		}
		if (sp && o > 0)
			out[o++] = ' ';
		sp = false;
		out[o++] = c;
	}
	return o;
}

static bw_arf_err
original_headers(struct span body, bw_arf_orig kind, bw_arf *r, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		size_t off;
	} keep[] = {
		{ "Message-ID", offsetof(bw_arf, orig_msgid) },
		{ "From", offsetof(bw_arf, orig_from) },
		{ BW_TRACE_HEADER, offsetof(bw_arf, trace) },
		{ "CFBL-Feedback-ID", offsetof(bw_arf, cfbl_id) },
		{ "Feedback-ID", offsetof(bw_arf, feedback_id) },
	};
	struct hscan s;
	struct hfield f;
	bw_arf_err code = BW_ARF_OK;
	EVP_MD_CTX *md;
	char *canon = NULL;
	int rc;

	if ((md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    (canon = malloc(BW_ARF_LINE_MAX + 3)) == NULL) {
		EVP_MD_CTX_free(md);
		bw_seterr(err, errlen, "out of memory");
		return BW_ARF_ENOMEM;
	}
	hs_init(&s, body, true, "original message header");
	while ((rc = hs_next(&s, &f, &code, err, errlen)) == 1) {
		size_t n = 0;

		for (size_t i = 0; i < f.name.n; i++)
			canon[n++] = (char)lower((unsigned char)f.name.p[i]);
		canon[n++] = ':';
		n += relaxed_value(f.val, canon + n);
		canon[n++] = '\r';
		canon[n++] = '\n';
		EVP_DigestUpdate(md, canon, n);
		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
			char **slot = (char **)(void *)((char *)r + keep[i].off);

			if (*slot != NULL || !name_is(&f, keep[i].name))
				continue;
			if ((*slot = unfold(f.val)) == NULL) {
				code = BW_ARF_ENOMEM;
				bw_seterr(err, errlen, "out of memory");
				rc = -1;
			}
			break;
		}
		if (rc < 0)
			break;
	}
	if (rc == 0 && s.nfields > 0) {
		EVP_DigestFinal_ex(md, r->orig_hash, NULL);
		r->has_original = kind;
	}
	/* with no field at all there is nothing to map back: as if absent */
	EVP_MD_CTX_free(md);
	free(canon);
	return rc < 0 ? code : BW_ARF_OK;
}

static bool
is_original_type(const char *t, bw_arf_orig *kind)
{
	if (strcmp(t, "message/rfc822") == 0 || strcmp(t, "message/global") == 0)
		*kind = BW_ARF_ORIG_MESSAGE;
	else if (strcmp(t, "text/rfc822-headers") == 0 || strcmp(t, "message/global-headers") == 0)
		*kind = BW_ARF_ORIG_HEADERS;
	else
		return false;
	return true;
}

bw_arf_err
bw_arf_parse(const char *msg, size_t len, bw_arf *r, char *err, size_t errlen)
{
	struct hscan s;
	struct hfield f;
	struct part *parts = NULL;
	struct span top = { msg, len }, body, dec;
	bw_arf_err code = BW_ARF_OK;
	char *ct = NULL, *buf = NULL, type[TYPE_MAX], rtype[64], sh[SHOW_MAX + 4];
	char boundary[BW_ARF_BOUNDARY_MAX + 1];
	const char *params;
	size_t np = 0;
	int fb = -1, orig = -1, rc;
	bw_arf_orig kind = BW_ARF_ORIG_NONE;

	memset(r, 0, sizeof(*r));
	bw_seterr(err, errlen, "%s", "");
	if (msg == NULL)
		top.n = 0;
	if (top.n > BW_ARF_SIZE_MAX) {
		bw_seterr(err, errlen, "the report is over %u bytes", (unsigned)BW_ARF_SIZE_MAX);
		return BW_ARF_ETOOBIG;
	}
	hs_init(&s, top, false, "report header");
	while ((rc = hs_next(&s, &f, &code, err, errlen)) == 1) {
		char **slot = name_is(&f, "Content-Type") ? &ct : name_is(&f, "Message-ID") ? &r->report_msgid : NULL;

		if (slot == NULL)
			continue;
		if (*slot != NULL) {
			/* two Content-Types: which one a reader takes is anyone's guess */
			if (slot == &ct) {
				bw_seterr(err, errlen, "report header: Content-Type appears twice");
				code = BW_ARF_EHEADER;
				goto fail;
			}
			continue;
		}
		if ((*slot = unfold(f.val)) == NULL)
			goto nomem;
	}
	if (rc < 0)
		goto fail;
	body.p = s.p;
	body.n = (size_t)(top.p + top.n - s.p);

	if (ct == NULL || !ct_type(ct, type, &params)) {
		bw_seterr(err, errlen, "no Content-Type: not a multipart/report");
		code = BW_ARF_ENOTREPORT;
		goto fail;
	}
	if (strcmp(type, "multipart/report") != 0) {
		bw_seterr(err, errlen, "Content-Type is %s, not multipart/report", shown(type, sh));
		code = BW_ARF_ENOTREPORT;
		goto fail;
	}
	if ((rc = ct_param(params, "report-type", rtype, sizeof(rtype))) == 0) {
		bw_seterr(err, errlen, "multipart/report without a report-type");
		code = BW_ARF_ENOTFEEDBACK;
		goto fail;
	}
	if (rc < 0 || strcasecmp(rtype, "feedback-report") != 0) {
		bw_seterr(err, errlen, "report-type is %s, not feedback-report", shown(rtype, sh));
		code = BW_ARF_ENOTFEEDBACK;
		goto fail;
	}
	if ((rc = ct_param(params, "boundary", boundary, sizeof(boundary))) <= 0 || boundary[0] == '\0') {
		if (rc < 0)
			bw_seterr(err, errlen, "the boundary is over %u bytes", (unsigned)BW_ARF_BOUNDARY_MAX);
		else
			bw_seterr(err, errlen, "multipart/report without a boundary");
		code = rc < 0 ? BW_ARF_ELIMIT : BW_ARF_EMIME;
		goto fail;
	}
	if ((parts = calloc(BW_ARF_PARTS_MAX, sizeof(*parts))) == NULL)
		goto nomem;
	if ((code = split_parts(body, boundary, parts, &np, err, errlen)) != BW_ARF_OK)
		goto fail;
	for (size_t i = 0; i < np; i++) {
		bw_arf_orig k;

		if ((code = part_header(&parts[i], (unsigned)i, err, errlen)) != BW_ARF_OK)
			goto fail;
		if (strcmp(parts[i].type, "message/feedback-report") == 0) {
			if (fb >= 0) {
				bw_seterr(err, errlen, "two message/feedback-report parts");
				code = BW_ARF_ENOFEEDBACK;
				goto fail;
			}
			fb = (int)i;
		} else if (orig < 0 && is_original_type(parts[i].type, &k)) {
			orig = (int)i;
			kind = k;
		}
	}
	if (fb < 0) {
		bw_seterr(err, errlen, "no message/feedback-report part");
		code = BW_ARF_ENOFEEDBACK;
		goto fail;
	}
	if ((code = part_decode(&parts[fb], &dec, &buf, err, errlen)) != BW_ARF_OK ||
	    (code = feedback_fields(dec, r, err, errlen)) != BW_ARF_OK)
		goto fail;
	free(buf);
	buf = NULL;
	if (orig >= 0) {
		if ((code = part_decode(&parts[orig], &dec, &buf, err, errlen)) != BW_ARF_OK ||
		    (code = original_headers(dec, kind, r, err, errlen)) != BW_ARF_OK)
			goto fail;
	}
	r->conforming = r->user_agent != NULL && r->version != NULL && r->has_original != BW_ARF_ORIG_NONE;
	free(buf);
	free(parts);
	free(ct);
	return BW_ARF_OK;
nomem:
	bw_seterr(err, errlen, "out of memory");
	code = BW_ARF_ENOMEM;
fail:
	free(buf);
	free(parts);
	free(ct);
	bw_arf_clear(r);
	return code;
}

/* ---------------------------------------------------------------- the dedupe key */

bool
bw_arf_dedupe_key(const bw_arf *r, const char *rcpt, char out[BW_ARF_KEY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	const char *rs, *re, *ms = NULL, *me = NULL;
	unsigned char md[32], zero = 0;
	EVP_MD_CTX *ctx;
	bool ok;

	out[0] = '\0';
	if (r == NULL || rcpt == NULL)
		return false;
	rs = rcpt;
	re = rcpt + strlen(rcpt);
	while (rs < re && is_wsp(*rs))
		rs++;
	while (re > rs && is_wsp(re[-1]))
		re--;
	if (re - rs >= 2 && *rs == '<' && re[-1] == '>') {
		rs++;
		re--;
	}
	if (rs == re)
		return false;
	if (r->orig_msgid != NULL) {
		const char *lt = strchr(r->orig_msgid, '<'), *gt = lt ? strchr(lt, '>') : NULL;
		bool blank = true;

		if (lt != NULL && gt != NULL) {
			ms = lt + 1;
			me = gt;
		} else {
			ms = r->orig_msgid;
			me = ms + strlen(ms);
		}
		for (const char *p = ms; p < me; p++)
			if (!is_wsp(*p))
				blank = false;
		if (blank) /* "<>" says nothing: the headers do */
			ms = me = NULL;
	}
	if (ms == NULL && r->has_original == BW_ARF_ORIG_NONE)
		return false;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return false;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	if (ms != NULL) {
		ok = ok && EVP_DigestUpdate(ctx, "m", 1) == 1;
		for (const char *p = ms; p < me; p++)
			if (!is_wsp(*p) && *p != '\r' && *p != '\n')
				ok = ok && EVP_DigestUpdate(ctx, p, 1) == 1;
	} else {
		ok = ok && EVP_DigestUpdate(ctx, "h", 1) == 1;
		ok = ok && EVP_DigestUpdate(ctx, r->orig_hash, sizeof(r->orig_hash)) == 1;
	}
	ok = ok && EVP_DigestUpdate(ctx, &zero, 1) == 1;
	for (const char *p = rs; p < re; p++) {
		char c = (char)lower((unsigned char)*p);

		ok = ok && EVP_DigestUpdate(ctx, &c, 1) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return false;
	memcpy(out, "arf1:", 5);
	for (size_t i = 0; i < sizeof(md); i++) {
		out[5 + 2 * i] = hex[md[i] >> 4];
		out[6 + 2 * i] = hex[md[i] & 15];
	}
	out[BW_ARF_KEY_LEN] = '\0';
	return true;
}

/* ---------------------------------------------------------------- DKIM */

struct bw_arf_verifier {
	DKIM_LIB *lib;
	bw_dns_servers ns;   /* name servers of the configuration, or none */
};

/* What the prescreen saw, for the outcome when no trusted reporter signed. */
struct auth_ctx {
	const bw_arf_trust *trust;
	unsigned untrusted;
	char untrusted_domain[256];
};

/* Called by libopendkim after the header: signatures by domains not on the
 * list are ignored before their key is looked up. */
static DKIM_CBSTAT
arf_prescreen(DKIM *d, DKIM_SIGINFO **sigs, int nsigs)
{
	struct auth_ctx *c = dkim_get_user_context(d);

	for (int i = 0; c != NULL && i < nsigs; i++) {
		const char *dom = (const char *)dkim_sig_getdomain(sigs[i]);

		if (dom == NULL || bw_arf_trusted(c->trust, dom))
			continue; /* no d=: it fails on its own, without a lookup */
		dkim_sig_ignore(sigs[i]);
		if (c->untrusted++ == 0)
			snprintf(c->untrusted_domain, sizeof(c->untrusted_domain), "%s", dom);
	}
	return DKIM_CBSTAT_CONTINUE;
}

/*
 * Key lookups at name servers of the configuration's choice (dns.h):
 * libopendkim's resolver cannot be pointed elsewhere; these hooks ask
 * them at once in start() and hand the reply over in waitreply().
 */
typedef struct arf_q {
	int len;      /* reply bytes, or -1 */
} arf_q;

static int
arf_q_start(void *srv, int type, unsigned char *query, unsigned char *buf, size_t buflen, void **qh)
{
	arf_q *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return DKIM_DNS_ERROR;
	h->len = bw_dns_query(srv, (const char *)query, type, buf, buflen);
	*qh = h;
	return DKIM_DNS_SUCCESS;
}

static int
arf_q_wait(void *srv, void *qh, struct timeval *to, size_t *bytes, int *error, int *dnssec)
{
	const arf_q *h = qh;

	(void)srv;
	(void)to;
	if (dnssec != NULL)
		*dnssec = DKIM_DNSSEC_UNKNOWN;
	if (h->len < 0) {
		if (error != NULL)
			*error = ETIMEDOUT;
		return DKIM_DNS_ERROR;
	}
	*bytes = (size_t)h->len;
	return DKIM_DNS_SUCCESS;
}

static void
arf_ns_close(void *srv)
{
	(void)srv;   /* part of the verifier: freed with it */
}

static int
arf_q_cancel(void *srv, void *qh)
{
	(void)srv;
	free(qh);
	return DKIM_DNS_SUCCESS;
}

bw_arf_verifier *
bw_arf_verifier_new(const bw_arf_verifier_opts *o, char *err, size_t errlen)
{
	bw_arf_verifier *v;
	unsigned flags = DKIM_LIBFLAGS_FIXCRLF | DKIM_LIBFLAGS_BADSIGHANDLES;
	bw_arf_verifier_opts none = { BW_ARF_QUERY_DNS, NULL, 0, 0, NULL };

	if (o == NULL)
		o = &none;
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		bw_seterr(err, errlen, "out of memory");
		return NULL;
	}
	if ((v->lib = dkim_init(NULL, NULL)) == NULL) {
		bw_seterr(err, errlen, "libopendkim could not be set up");
		free(v);
		return NULL;
	}
	/* FIXCRLF: a report handed over with bare LF verifies as the CRLF
	   message it was; BADSIGHANDLES: a signature that does not parse is
	   still listed, so that it can be told apart from no signature */
	if (dkim_options(v->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags)) != DKIM_STAT_OK) {
		bw_seterr(err, errlen, "libopendkim: cannot set flags");
		goto fail;
	}
	if (o->query == BW_ARF_QUERY_FILE) {
		dkim_query_t qm = DKIM_QUERY_FILE;

		if (o->query_info == NULL || o->query_info[0] == '\0') {
			bw_seterr(err, errlen, "the file query method needs a key file");
			goto fail;
		}
		if (dkim_options(v->lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qm, sizeof(qm)) != DKIM_STAT_OK ||
		    dkim_options(v->lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, (void *)(uintptr_t)o->query_info,
		        strlen(o->query_info)) != DKIM_STAT_OK) {
			bw_seterr(err, errlen, "libopendkim: cannot use key file %s", o->query_info);
			goto fail;
		}
	} else if (o->query != BW_ARF_QUERY_DNS) {
		bw_seterr(err, errlen, "unknown key query method");
		goto fail;
	} else if (o->nameservers != NULL && o->nameservers[0] != '\0') {
		if (!bw_dns_servers_parse(o->nameservers, &v->ns)) {
			bw_seterr(err, errlen, "name servers \"%.100s\": want IPv4 addresses, separated by "
			    "commas", o->nameservers);
			goto fail;
		}
		/* the service is ours: libopendkim must neither set it up nor free it */
		dkim_dns_set_init(v->lib, NULL);
		dkim_dns_set_close(v->lib, arf_ns_close);
		dkim_dns_set_query_service(v->lib, &v->ns);
		dkim_dns_set_query_start(v->lib, arf_q_start);
		dkim_dns_set_query_waitreply(v->lib, arf_q_wait);
		dkim_dns_set_query_cancel(v->lib, arf_q_cancel);
	}
	if (o->timeout > 0) {
		unsigned t = o->timeout;

		if (dkim_options(v->lib, DKIM_OP_SETOPT, DKIM_OPTS_TIMEOUT, &t, sizeof(t)) != DKIM_STAT_OK) {
			bw_seterr(err, errlen, "libopendkim: cannot set the DNS timeout");
			goto fail;
		}
	}
	if (o->min_key_bits > 0) {
		unsigned b = o->min_key_bits;

		if (dkim_options(v->lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &b, sizeof(b)) != DKIM_STAT_OK) {
			bw_seterr(err, errlen, "libopendkim: cannot set the minimum key size");
			goto fail;
		}
	}
	dkim_set_prescreen(v->lib, arf_prescreen);
	return v;
fail:
	dkim_close(v->lib);
	free(v);
	return NULL;
}

void
bw_arf_verifier_free(bw_arf_verifier *v)
{
	if (v == NULL)
		return;
	if (v->lib != NULL)
		dkim_close(v->lib);
	free(v);
}

/* d equal to, or (subdomains) below, a listed domain; no case, trailing
 * dots ignored. */
bool
bw_arf_trusted(const bw_arf_trust *t, const char *domain)
{
	size_t dn;

	if (t == NULL || domain == NULL)
		return false;
	dn = strlen(domain);
	if (dn > 0 && domain[dn - 1] == '.')
		dn--;
	if (dn == 0)
		return false;
	for (size_t i = 0; i < t->n; i++) {
		const char *l = t->domains[i];
		size_t ln = l ? strlen(l) : 0;

		if (ln > 0 && l[ln - 1] == '.')
			ln--;
		if (ln == 0)
			continue;
		if (dn == ln && strncasecmp(domain, l, ln) == 0)
			return true;
		if (t->subdomains && dn > ln + 1 && domain[dn - ln - 1] == '.' &&
		    strncasecmp(domain + dn - ln, l, ln) == 0)
			return true;
	}
	return false;
}

static const char *const auth_names[] = { "ok", "no signature", "untrusted", "bad signature",
	"body hash mismatch", "short l=", "no key", "key lookup failed", "too big", "malformed",
	"error" };

const char *
bw_arf_auth_status_name(bw_arf_auth_status s)
{
	return (unsigned)s <= BW_ARF_AUTH_ERROR ? auth_names[s] : "?";
}

/* Length of the body as a DKIM body canonicalisation gives it (RFC 6376
 * 3.4.3, 3.4.4), with bare LF taken as CRLF as the library is told to. A
 * bare CR is counted as a line end too: that errs on the long side, so a
 * signature is never taken for whole when it is not. */
static uint64_t
canon_body_len(const char *b, size_t n, bool relaxed)
{
	uint64_t total = 0, empty = 0;
	const char *p = b, *end = b + n;

	while (p < end) {
		const char *le, *next = line_next(p, end, &le);
		uint64_t cl = 0;

		if (relaxed) {
			bool sp = false;

			for (const char *q = p; q < le; q++) {
				if (is_wsp(*q)) {
					sp = true;
					continue;
				}
				/* a run of white space is one space, also at the
				   start of a line; at its end it goes */
				cl += (sp ? 1 : 0) + (*q == '\r' ? 2 : 1);
				sp = false;
			}
		} else {
			for (const char *q = p; q < le; q++)
				cl += *q == '\r' ? 2 : 1;
		}
		if (cl == 0) {
			empty++;
		} else {
			total += empty * 2 + cl + 2;
			empty = 0;
		}
		p = next;
	}
	if (total == 0 && !relaxed)
		total = 2; /* simple: an empty body is one CRLF */
	return total;
}

static int
auth_rank(bw_arf_auth_status s)
{
	switch (s) {
	case BW_ARF_AUTH_TEMPFAIL:
		return 1;
	case BW_ARF_AUTH_SHORT_L:
		return 2;
	case BW_ARF_AUTH_BODYHASH:
		return 3;
	case BW_ARF_AUTH_BADSIG:
		return 4;
	case BW_ARF_AUTH_NOKEY:
		return 5;
	default:
		return 9;
	}
}

/* The outcome of one processed signature by a trusted domain. */
static bw_arf_auth_status
sig_status(DKIM *d, DKIM_SIGINFO *sig, const char *dom, struct span body, char *why, size_t whylen)
{
	unsigned flags = dkim_sig_getflags(sig);
	int bh = dkim_sig_getbh(sig), e = dkim_sig_geterror(sig);
	const char *sel = (const char *)dkim_sig_getselector(sig), *es;

	if ((flags & DKIM_SIGFLAG_PASSED) != 0 && bh == DKIM_SIGBH_MATCH) {
		ssize_t signlen = -1;
		dkim_canon_t hc = DKIM_CANON_SIMPLE, bc = DKIM_CANON_SIMPLE;
		dkim_alg_t alg = DKIM_SIGN_UNKNOWN;

		/* RFC 8301: verifiers must not count rsa-sha1 */
		if (dkim_sig_getsignalg(sig, &alg) != DKIM_STAT_OK || alg == DKIM_SIGN_RSASHA1) {
			bw_seterr(why, whylen, "signature by %s uses rsa-sha1, which RFC 8301 retired", dom);
			return BW_ARF_AUTH_BADSIG;
		}

		if (dkim_sig_getcanonlen(d, sig, NULL, NULL, &signlen) != DKIM_STAT_OK ||
		    dkim_sig_getcanons(sig, &hc, &bc) != DKIM_STAT_OK) {
			bw_seterr(why, whylen, "signature by %s: its body length is unknown", dom);
			return BW_ARF_AUTH_BADSIG;
		}
		if (signlen >= 0 && body.p == NULL) {
			/* streamed: the body is gone, so any l= is refused */
			bw_seterr(why, whylen, "signature by %s has l=: part of the body may be unsigned", dom);
			return BW_ARF_AUTH_SHORT_L;
		}
		if (signlen >= 0) {
			uint64_t full = canon_body_len(body.p, body.n, bc == DKIM_CANON_RELAXED);

			if ((uint64_t)signlen < full) {
				bw_seterr(why, whylen, "signature by %s covers %lld of %llu body bytes (l=)", dom,
				    (long long)signlen, (unsigned long long)full);
				return BW_ARF_AUTH_SHORT_L;
			}
		}
		bw_seterr(why, whylen, "DKIM signature by %s verified", dom);
		return BW_ARF_AUTH_OK;
	}
	if ((flags & DKIM_SIGFLAG_PASSED) != 0 && bh == DKIM_SIGBH_MISMATCH) {
		bw_seterr(why, whylen, "signature by %s: the body hash does not match", dom);
		return BW_ARF_AUTH_BODYHASH;
	}
	es = e != DKIM_SIGERROR_OK && e != DKIM_SIGERROR_UNKNOWN ? dkim_sig_geterrorstr(e) : NULL;
	switch (e) {
	case DKIM_SIGERROR_NOKEY:
		bw_seterr(why, whylen, "signature by %s: no key at %s._domainkey.%s", dom, sel ? sel : "?", dom);
		return BW_ARF_AUTH_NOKEY;
	case DKIM_SIGERROR_KEYFAIL:
		bw_seterr(why, whylen, "signature by %s: key lookup failed", dom);
		return BW_ARF_AUTH_TEMPFAIL;
	case DKIM_SIGERROR_KEYREVOKED:
	case DKIM_SIGERROR_DNSSYNTAX:
	case DKIM_SIGERROR_MULTIREPLY:
	case DKIM_SIGERROR_KEYVERSION:
	case DKIM_SIGERROR_KEYUNKNOWNHASH:
	case DKIM_SIGERROR_KEYHASHMISMATCH:
	case DKIM_SIGERROR_NOTEMAILKEY:
	case DKIM_SIGERROR_KEYTYPEMISSING:
	case DKIM_SIGERROR_KEYTYPEUNKNOWN:
	case DKIM_SIGERROR_KEYDECODE:
	case DKIM_SIGERROR_KEYTOOSMALL:
		bw_seterr(why, whylen, "signature by %s: key unusable: %s", dom, es ? es : "?");
		return BW_ARF_AUTH_NOKEY;
	default:
		bw_seterr(why, whylen, "signature by %s does not verify%s%s", dom, es ? ": " : "", es ? es : "");
		return BW_ARF_AUTH_BADSIG;
	}
}

static void
auth_set(bw_arf_auth *a, bw_arf_auth_status st, const char *dom, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
auth_set(bw_arf_auth *a, bw_arf_auth_status st, const char *dom, const char *fmt, ...)
{
	va_list ap;

	a->status = st;
	a->authenticated = st == BW_ARF_AUTH_OK;
	snprintf(a->domain, sizeof(a->domain), "%s", dom ? dom : "");
	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
}

void
bw_arf_authenticate(bw_arf_verifier *v, const bw_arf_trust *t, const char *msg, size_t len,
    bw_arf_auth *a)
{
	struct hscan s;
	struct hfield f;
	struct span body, all = { msg, msg ? len : 0 };
	struct auth_ctx ctx;
	bw_arf_err code = BW_ARF_OK;
	char err[256];
	unsigned nsig = 0;
	int rc, n = 0;
	DKIM *d;
	DKIM_STAT st;
	DKIM_SIGINFO **sigs = NULL;
	bw_arf_auth_status best = BW_ARF_AUTH_NOSIG;
	char best_dom[256] = "", best_why[256] = "", unparsed[256] = "";

	memset(a, 0, sizeof(*a));
	if (v == NULL || v->lib == NULL) {
		auth_set(a, BW_ARF_AUTH_ERROR, NULL, "no verifier");
		return;
	}
	if (all.n > BW_ARF_SIZE_MAX) {
		auth_set(a, BW_ARF_AUTH_TOOBIG, NULL, "the report is over %u bytes", (unsigned)BW_ARF_SIZE_MAX);
		return;
	}
	/* the bounds first: the library sees nothing over them */
	hs_init(&s, all, false, "report header");
	while ((rc = hs_next(&s, &f, &code, err, sizeof(err))) == 1)
		if (name_is(&f, "DKIM-Signature"))
			nsig++;
	if (rc < 0) {
		auth_set(a, code == BW_ARF_ELIMIT ? BW_ARF_AUTH_TOOBIG : BW_ARF_AUTH_MALFORMED, NULL, "%s", err);
		return;
	}
	if (nsig == 0) {
		auth_set(a, BW_ARF_AUTH_NOSIG, NULL, "no DKIM signature");
		return;
	}
	if (nsig > BW_ARF_SIGS_MAX) {
		auth_set(a, BW_ARF_AUTH_TOOBIG, NULL, "more than %u DKIM signatures", (unsigned)BW_ARF_SIGS_MAX);
		return;
	}
	body.p = s.p;
	body.n = (size_t)(all.p + all.n - s.p);

	memset(&ctx, 0, sizeof(ctx));
	ctx.trust = t;
	if ((d = dkim_verify(v->lib, (const unsigned char *)"arf", NULL, &st)) == NULL) {
		auth_set(a, BW_ARF_AUTH_ERROR, NULL, "libopendkim: %s", dkim_getresultstr(st));
		return;
	}
	dkim_set_user_context(d, &ctx);
	hs_init(&s, all, false, "report header");
	while (hs_next(&s, &f, &code, err, sizeof(err)) == 1) {
		/* the library copies the field; SYNTAX is a signature it could
		   not parse, which it keeps (BADSIGHANDLES) and fails later */
		st = dkim_header(d, (unsigned char *)(uintptr_t)f.raw.p, f.raw.n);
		if (st != DKIM_STAT_OK && st != DKIM_STAT_SYNTAX) {
			auth_set(a, BW_ARF_AUTH_ERROR, NULL, "libopendkim: %s", dkim_getresultstr(st));
			goto done;
		}
	}
	st = dkim_eoh(d);
	if (st != DKIM_STAT_OK && st != DKIM_STAT_NOSIG) {
		auth_set(a, BW_ARF_AUTH_ERROR, NULL, "libopendkim: %s", dkim_getresultstr(st));
		goto done;
	}
	if (st == DKIM_STAT_OK) {
		/* NOSIG here: every signature was ignored by the prescreen */
		if (body.n > 0 && (st = dkim_body(d, (unsigned char *)(uintptr_t)body.p, body.n)) != DKIM_STAT_OK) {
			auth_set(a, BW_ARF_AUTH_ERROR, NULL, "libopendkim: %s", dkim_getresultstr(st));
			goto done;
		}
		st = dkim_eom(d, NULL);
		if (st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL) {
			auth_set(a, BW_ARF_AUTH_ERROR, NULL, "libopendkim: %s", dkim_getresultstr(st));
			goto done;
		}
	}
	if (dkim_getsiglist(d, &sigs, &n) != DKIM_STAT_OK)
		n = 0;
	for (int i = 0; i < n; i++) {
		const char *dom = (const char *)dkim_sig_getdomain(sigs[i]);
		char why[256];
		bw_arf_auth_status ss;

		if ((dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE) != 0)
			continue;
		if (dom == NULL) {
			int e = dkim_sig_geterror(sigs[i]);

			if (unparsed[0] == '\0')
				snprintf(unparsed, sizeof(unparsed), "a DKIM signature does not parse%s%s",
				    e > 0 ? ": " : "", e > 0 ? dkim_sig_geterrorstr(e) : "");
			continue;
		}
		if (!bw_arf_trusted(t, dom))
			continue; /* the prescreen saw to it; never count one anyway */
		ss = sig_status(d, sigs[i], dom, body, why, sizeof(why));
		if (ss == BW_ARF_AUTH_OK) {
			auth_set(a, ss, dom, "%s", why);
			goto done;
		}
		if (best == BW_ARF_AUTH_NOSIG || auth_rank(ss) < auth_rank(best)) {
			best = ss;
			snprintf(best_dom, sizeof(best_dom), "%s", dom);
			snprintf(best_why, sizeof(best_why), "%s", why);
		}
	}
	if (best != BW_ARF_AUTH_NOSIG)
		auth_set(a, best, best_dom, "%s", best_why);
	else if (ctx.untrusted > 0)
		auth_set(a, BW_ARF_AUTH_UNTRUSTED, ctx.untrusted_domain, "signed by %s, not a trusted reporter",
		    ctx.untrusted_domain);
	else if (unparsed[0] != '\0')
		auth_set(a, BW_ARF_AUTH_BADSIG, NULL, "%s", unparsed);
	else
		auth_set(a, BW_ARF_AUTH_BADSIG, NULL, "no DKIM signature libopendkim could use");
done:
	dkim_free(d);
}

/* ---------------------------------------------------------------- a message's own signatures */

struct bw_dkim_stream {
	DKIM *d;
	bool failed;        /* the library failed, or a bound was hit: no identity */
	bool body;          /* past end of headers */
	unsigned nsig;
	size_t hdr_bytes;
	char why[256];
};

bw_dkim_stream *
bw_dkim_stream_new(bw_arf_verifier *v)
{
	bw_dkim_stream *s;
	DKIM_STAT st;

	if (v == NULL || v->lib == NULL || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	/* no user context: the prescreen lets every d= through (any sender
	   domain may be the identity) */
	if ((s->d = dkim_verify(v->lib, (const unsigned char *)"msg", NULL, &st)) == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

static void
stream_fail(bw_dkim_stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
stream_fail(bw_dkim_stream *s, const char *fmt, ...)
{
	va_list ap;

	if (s->failed)
		return;
	s->failed = true;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
}

void
bw_dkim_stream_header(bw_dkim_stream *s, const char *name, const char *value)
{
	char stack[1024], *f = stack;
	size_t nn, vn, n, nlf = 0, o;
	DKIM_STAT st;

	if (s == NULL || s->failed || s->body)
		return;
	nn = strlen(name);
	vn = strlen(value);
	for (size_t i = 0; i < vn; i++)
		nlf += value[i] == '\n' && (i == 0 || value[i - 1] != '\r');
	n = nn + 2 + vn + nlf;
	s->hdr_bytes += n + 2;
	if (s->hdr_bytes > BW_ARF_HDR_MAX || n > BW_ARF_LINE_MAX) {
		stream_fail(s, "header over %u bytes", (unsigned)(n > BW_ARF_LINE_MAX ? BW_ARF_LINE_MAX
		    : BW_ARF_HDR_MAX));
		return;
	}
	if (strcasecmp(name, "DKIM-Signature") == 0 && ++s->nsig > BW_ARF_SIGS_MAX) {
		stream_fail(s, "more than %u DKIM signatures", (unsigned)BW_ARF_SIGS_MAX);
		return;
	}
	if (n + 1 > sizeof(stack) && (f = malloc(n + 1)) == NULL) {
		stream_fail(s, "out of memory");
		return;
	}
	/* the MTA drops the space after the colon; put it back, as a
	   signer's relaxed and most simple canonicalisations saw it */
	memcpy(f, name, nn);
	f[nn] = ':';
	f[nn + 1] = ' ';
	/* and folds come with bare LF: libopendkim reads the tags of a
	   signature (b=) wrongly across a bare LF, so make them CRLF */
	o = nn + 2;
	for (size_t i = 0; i < vn; i++) {
		if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
			f[o++] = '\r';
		f[o++] = value[i];
	}
	f[n] = 0;
	st = dkim_header(s->d, (unsigned char *)f, n);
	if (f != stack)
		free(f);
	if (st != DKIM_STAT_OK && st != DKIM_STAT_SYNTAX)
		stream_fail(s, "libopendkim: %s", dkim_getresultstr(st));
}

void
bw_dkim_stream_eoh(bw_dkim_stream *s)
{
	DKIM_STAT st;

	if (s == NULL || s->failed || s->body)
		return;
	s->body = true;
	if (s->nsig == 0) {
		stream_fail(s, "no DKIM signature");
		return;
	}
	st = dkim_eoh(s->d);
	if (st == DKIM_STAT_NOSIG)
		stream_fail(s, "no DKIM signature libopendkim could use");
	else if (st != DKIM_STAT_OK)
		stream_fail(s, "libopendkim: %s", dkim_getresultstr(st));
}

bool
bw_dkim_stream_wants_body(const bw_dkim_stream *s)
{
	return s != NULL && !s->failed && s->body;
}

void
bw_dkim_stream_body(bw_dkim_stream *s, const char *p, size_t n)
{
	DKIM_STAT st;

	if (!bw_dkim_stream_wants_body(s) || n == 0)
		return;
	st = dkim_body(s->d, (unsigned char *)(uintptr_t)p, n);
	if (st != DKIM_STAT_OK)
		stream_fail(s, "libopendkim: %s", dkim_getresultstr(st));
}

/* d is from_dom or a parent domain of it (relaxed alignment, RFC 7489 3.1.1,
 * without the public suffix list: a d= of a bare TLD never signs here) */
static bool
dom_aligned(const char *d, const char *from_dom)
{
	size_t dn = strlen(d), fn = from_dom ? strlen(from_dom) : 0;

	if (dn == 0 || fn < dn || strchr(d, '.') == NULL)
		return false;
	return strcasecmp(from_dom + fn - dn, d) == 0 && (fn == dn || from_dom[fn - dn - 1] == '.');
}

bw_arf_auth_status
bw_dkim_stream_finish(bw_dkim_stream *s, const char *from_dom, char dom[256], char *why, size_t whylen)
{
	DKIM_SIGINFO **sigs = NULL;
	DKIM_STAT st;
	struct span none = { NULL, 0 };
	bw_arf_auth_status best = BW_ARF_AUTH_NOSIG;
	int n = 0, pick = -1;
	char w[256];

	dom[0] = 0;
	if (s == NULL) {
		bw_seterr(why, whylen, "no DKIM verification");
		return BW_ARF_AUTH_ERROR;
	}
	if (!s->failed && !s->body)
		bw_dkim_stream_eoh(s);
	if (s->failed) {
		bw_seterr(why, whylen, "%s", s->why);
		return s->nsig == 0 ? BW_ARF_AUTH_NOSIG : BW_ARF_AUTH_BADSIG;
	}
	st = dkim_eom(s->d, NULL);
	if (st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL) {
		bw_seterr(why, whylen, "libopendkim: %s", dkim_getresultstr(st));
		return BW_ARF_AUTH_ERROR;
	}
	if (dkim_getsiglist(s->d, &sigs, &n) != DKIM_STAT_OK)
		n = 0;
	bw_seterr(why, whylen, "no DKIM signature verifies");
	/* a signature aligned with the From domain first, else the first that
	   verifies; failing both, the most telling failure (TEMPFAIL first) */
	for (int pass = 0; pass < 2 && pick < 0; pass++)
		for (int i = 0; i < n && pick < 0; i++) {
			const char *d = (const char *)dkim_sig_getdomain(sigs[i]);
			bw_arf_auth_status ss;

			if (d == NULL || (pass == 0 && !dom_aligned(d, from_dom)))
				continue;
			ss = sig_status(s->d, sigs[i], d, none, w, sizeof(w));
			if (ss == BW_ARF_AUTH_OK)
				pick = i;
			if (ss == BW_ARF_AUTH_OK || best == BW_ARF_AUTH_NOSIG || auth_rank(ss) < auth_rank(best)) {
				best = ss;
				snprintf(dom, 256, "%s", d);
				bw_seterr(why, whylen, "%s", w);
			}
		}
	if (best == BW_ARF_AUTH_NOSIG)
		best = BW_ARF_AUTH_BADSIG;
	return best;
}

void
bw_dkim_stream_free(bw_dkim_stream *s)
{
	if (s == NULL)
		return;
	if (s->d != NULL)
		dkim_free(s->d);
	free(s);
}
