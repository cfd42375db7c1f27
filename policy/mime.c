/*
 * mime.c - the streaming MIME walker (see mime.h).
 *
 * Three push machines, each fed by the one before:
 *   lines   splits the body into lines ending in LF or CRLF, whatever the
 *           chunking; only a line that begins with '-' while a boundary is
 *           active is held back (HOLD_MAX bytes at most) until it is known
 *           whether it is a delimiter. In a body, the lines up to the next
 *           one that begins with "--" (or the end of the chunk) go to the
 *           leaf in one piece; once no boundary is open, the rest of the
 *           input goes to it as it is;
 *   entity  header blocks (unfolding, the Content-* fields), the explicit
 *           stack of multipart and message/rfc822 containers, part begin
 *           and end, the bounds of mime_limits;
 *   leaf    transfer decoding (base64, quoted-printable) into a block,
 *           charset conversion of the block to UTF-8 into an output block,
 *           one part_text call per output block.
 *
 * The hot loops work on many bytes at a time: base64 eight letters per
 * step, quoted-printable sixteen bytes per step between its escapes and
 * line ends (with SSE2; byte-wise searches without), UTF-8 checked and
 * one-byte charsets passed through iconv only where a byte is no ASCII.
 * Their results do not depend on how the input was cut: a block is
 * converted when it is full and more follows, or when the part ends.
 *
 * Memory is the walker itself (two blocks, the hold buffer), one unfolded
 * header line, one frame per open container and the boundaries.
 *
 * Choices where the RFCs leave room (the same whatever the chunking):
 * - parts counted against MaxMimeParts are all entities, containers and the
 *   message itself included (what Python's Message.walk() yields);
 * - a delimiter is "--boundary", then "--" for the close one, then only
 *   spaces and tabs; a line longer than HOLD_MAX is never a delimiter;
 * - a line that is no header field ("word word", or one beginning with '-')
 *   ends a header block without its blank line and is the first body line;
 * - a multipart without a usable boundary (none, empty, longer than
 *   BOUNDARY_MAX) is read as one text/plain part;
 * - message/rfc822 with a base64 or quoted-printable encoding is an opaque
 *   leaf; children of multipart/digest default to message/rfc822;
 * - no charset and us-ascii are read as UTF-8 (a superset): 8-bit text in
 *   undeclared mail is mostly UTF-8; iso-8859-1 and iso-8859-9 are read as
 *   windows-1252 and windows-1254, like browsers do (WHATWG Encoding);
 * - a zero in mime_limits means the default value.
 */
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "bytepair.h"
#include "mime.h"
#include "pool.h"

#define MIME_BLOCK     8192 /* decoded block and UTF-8 output block */
#define CD_NAME        32   /* charset names whose converters are kept */
#define CD_KEPT        32   /* converters kept */
#define BOUNDARY_MAX   998  /* longest boundary parameter honoured */
#define HOLD_MAX       2048 /* longest line that may be a delimiter */
#define FIELD_NAME_MAX 998  /* longer "names" make a line no header field */
#define QP_WS_MAX      256  /* trailing white space QP holds back */
#define TYPE_MAX       127
#define CHARSET_MAX    63
#define ENCODING_MAX   31
#define FNAME_MAX      255
#define PARAM_SEGS     64   /* RFC 2231 continuations looked at */
#define UTF8_DIRECT    256  /* valid runs this long skip the output block */
#define ASCII_RUN      16   /* ASCII bytes that end a piece given to iconv */

static const mime_limits mime_defaults = {
	32, 1000, 16 * 1024, 64 * 1024, 10 * 1024 * 1024
};

enum { LS_START, LS_LINE, LS_HOLD, LS_RAW };     /* line machine */
enum { P_HDR, P_BODY };                          /* what lines are for */
enum { HK_START, HK_NAME, HK_NAMEWS, HK_VALUE, HK_CONT, HK_SKIP };
enum { FR_MULTI, FR_MESSAGE };
enum { TE_IDENT, TE_B64, TE_QP };
enum { CS_UTF8, CS_ICONV, CS_8BIT };            /* CS_8BIT: iconv, not for ASCII */
enum { QS_N, QS_EQ, QS_EQH, QS_EQW, QS_EQCR };  /* quoted-printable */

/* Content-* facts of the entity whose header block is being read. */
typedef struct mime_ent {
	char type[TYPE_MAX + 1];        /* "" when absent or invalid */
	char charset[CHARSET_MAX + 1];
	char encoding[ENCODING_MAX + 1];
	char fname_cd[FNAME_MAX + 1];   /* Content-Disposition filename */
	char fname_ct[FNAME_MAX + 1];   /* Content-Type name */
	char boundary[BOUNDARY_MAX + 2]; /* one more: a longer one is seen */
	size_t blen;                    /* 0: none usable */
	bool seen_ct, seen_cte, seen_cd;
	bool attachment;
} mime_ent;

typedef struct mime_frame {
	unsigned char kind;  /* FR_MULTI or FR_MESSAGE */
	bool alt;            /* a multipart/alternative here or above */
	bool rfc822;         /* a message/rfc822 here or above */
	bool digest;         /* multipart/digest */
	size_t boff, blen;   /* boundary in the arena */
} mime_frame;

typedef struct mime_leaf {
	mime_part part;
	bool open;
	bool text;
	int te, cs;
	iconv_t cd;
	char cdname[CD_NAME];  /* what cd was opened for */
	uint32_t b64acc;
	unsigned b64n;
	int qst;
	unsigned char qhex;
	bool qcr;
	size_t qwslen;
	char qws[QP_WS_MAX];
	size_t dlen, olen;
	char dec[MIME_BLOCK];
	char out[MIME_BLOCK];
	char type[TYPE_MAX + 1];
	char charset[CHARSET_MAX + 1];
	char encoding[ENCODING_MAX + 1];
	char filename[FNAME_MAX + 1];
} mime_leaf;

struct mime_walker {
	mime_limits lim;
	mime_cb cb;
	void *ud;
	const char *limit;     /* key of the first bound hit */
	bool stopped, started, finished, nomem;
	/* lines */
	int lstate;
	bool pcr;              /* a CR ended the last chunk */
	size_t holdlen;
	/* entities */
	int pstate;
	int pend_eol;          /* line end not yet given to the leaf: 0, 1 LF, 2 CRLF */
	mime_ent ent;
	char *hbuf;            /* the header field being unfolded */
	size_t hlen, hcap, hcolon, hnamelen, hdr_bytes;
	int hkind;
	bool hpending;         /* hbuf holds a field that may still continue */
	mime_frame *fr;
	unsigned nfr, frcap, nbnd;
	char *arena;           /* boundaries of the open multiparts */
	size_t aused, acap;
	unsigned nent;
	int nleaves;
	size_t scanned;
	mime_leaf leaf;
	char hold[HOLD_MAX];
};

static void leaf_close(mime_walker *);
static void ent_begin(mime_walker *);

/* ------------------------------------------------------------ small helpers */

static int
lc(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static bool
is_fws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* hex digit values plus one; 0 for any other byte */
static const unsigned char hex_tab[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
	['8'] = 9, ['9'] = 10, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

static int
hexval(unsigned char c)
{
	return hex_tab[c] - 1;
}

/* Copy s[0..n) into out (size outsz), lower-cased when asked; truncates. */
static void
copy_str(char *out, size_t outsz, const char *s, size_t n, bool lower)
{
	size_t i;

	if (n >= outsz)
		n = outsz - 1;
	for (i = 0; i < n; i++)
		out[i] = lower ? (char)lc((unsigned char)s[i]) : s[i];
	out[n] = '\0';
}

static void
hit(mime_walker *w, const char *key)
{
	if (w->stopped)
		return;
	w->limit = key;
	w->stopped = true;
	leaf_close(w);
}

static void
nomem(mime_walker *w)
{
	if (w->stopped)
		return;
	w->nomem = true;
	w->stopped = true;
	leaf_close(w);
}

static mime_status
status(const mime_walker *w)
{
	if (w->nomem)
		return MIME_NOMEM;
	return w->limit ? MIME_LIMIT : MIME_OK;
}

/* ------------------------------------------------------- header parameters */

/* One "name=value" of a parameter list: spans into the header value. */
typedef struct param {
	const char *name, *val;
	size_t nlen, vlen;
	bool quoted;
} param;

/* Next parameter after *pos (which points after a type token or a ';'). */
static bool
param_next(const char **pos, const char *end, param *p)
{
	const char *s = *pos;

	for (;;) {
		while (s < end && (is_fws((unsigned char)*s) || *s == ';'))
			s++;
		if (s >= end)
			return false;
		p->name = s;
		while (s < end && *s != '=' && *s != ';' && !is_fws((unsigned char)*s))
			s++;
		p->nlen = (size_t)(s - p->name);
		while (s < end && is_fws((unsigned char)*s))
			s++;
		if (s >= end || *s != '=') {
			/* a word without '=': skip to the next ';' */
			while (s < end && *s != ';')
				s++;
			continue;
		}
		s++;
		while (s < end && is_fws((unsigned char)*s))
			s++;
		if (s < end && *s == '"') {
			p->quoted = true;
			p->val = ++s;
			while (s < end && *s != '"') {
				if (*s == '\\' && s + 1 < end)
					s++;
				s++;
			}
			p->vlen = (size_t)(s - p->val);
			while (s < end && *s != ';')
				s++;
		} else {
			p->quoted = false;
			p->val = s;
			while (s < end && *s != ';')
				s++;
			p->vlen = (size_t)(s - p->val);
			while (p->vlen > 0 && is_fws((unsigned char)p->val[p->vlen - 1]))
				p->vlen--;
		}
		*pos = s;
		return true;
	}
}

/* Append a parameter value to out: unquote, or percent-decode (RFC 2231). */
static size_t
param_append(char *out, size_t outsz, size_t o, const param *p, bool ext, bool skip_cs)
{
	const char *v = p->val, *e = p->val + p->vlen;
	int n1, n2;

	if (ext && skip_cs) {
		/* charset'language'value */
		const char *q = memchr(v, '\'', p->vlen);
		const char *r = q ? memchr(q + 1, '\'', (size_t)(e - q - 1)) : NULL;
		if (r)
			v = r + 1;
	}
	while (v < e && o + 1 < outsz) {
		if (p->quoted && *v == '\\' && v + 1 < e) {
			out[o++] = v[1];
			v += 2;
		} else if (ext && *v == '%' && v + 2 < e && (n1 = hexval((unsigned char)v[1])) >= 0 &&
		           (n2 = hexval((unsigned char)v[2])) >= 0) {
			out[o++] = (char)(n1 * 16 + n2);
			v += 3;
		} else {
			out[o++] = *v++;
		}
	}
	out[o] = '\0';
	return o;
}

/*
 * Value of parameter `name` in s[0..n) into out, in one pass: the plain
 * form first, then name* (RFC 2231), then the continuations name*0,
 * name*1... (each maybe with a '*'). Returns whether it was found; *outlen
 * is its length (truncated to outsz - 1).
 */
static bool
param_get(const char *s, size_t n, const char *name, char *out, size_t outsz, size_t *outlen)
{
	const char *end = s + n, *pos = s;
	size_t nl = strlen(name), o = 0;
	param p, plain, ext, seg[PARAM_SEGS];
	unsigned char segkind[PARAM_SEGS] = { 0 }; /* 0 none, 1 plain, 2 extended */
	bool has_plain = false, has_ext = false;
	unsigned k;

	out[0] = '\0';
	*outlen = 0;
	while (param_next(&pos, end, &p)) {
		const char *r;
		size_t rl;
		unsigned num;

		if (p.nlen < nl || strncasecmp(p.name, name, nl) != 0)
			continue;
		r = p.name + nl;
		rl = p.nlen - nl;
		if (rl == 0) {
			if (!has_plain)
				plain = p;
			has_plain = true;
			continue;
		}
		if (r[0] != '*')
			continue;
		if (rl == 1) {
			if (!has_ext)
				ext = p;
			has_ext = true;
			continue;
		}
		/* "*N" or "*N*", N of one or two digits */
		if (r[1] < '0' || r[1] > '9')
			continue;
		num = (unsigned)(r[1] - '0');
		k = 2;
		if (k < rl && r[k] >= '0' && r[k] <= '9' && num > 0)
			num = num * 10 + (unsigned)(r[k++] - '0');
		if (num >= PARAM_SEGS || segkind[num] || !(k == rl || (k + 1 == rl && r[k] == '*')))
			continue;
		seg[num] = p;
		segkind[num] = k == rl ? 1 : 2;
	}
	if (has_plain) {
		*outlen = param_append(out, outsz, 0, &plain, false, false);
		return true;
	}
	if (has_ext) {
		*outlen = param_append(out, outsz, 0, &ext, true, true);
		return true;
	}
	for (k = 0; k < PARAM_SEGS && segkind[k]; k++)
		o = param_append(out, outsz, o, &seg[k], segkind[k] == 2, segkind[k] == 2 && k == 0);
	*outlen = o;
	return segkind[0] != 0;
}

/* First token of a field value (up to ';', white space or a comment). */
static size_t
field_token(const char *v, size_t n, const char **tok)
{
	size_t i = 0, j;

	while (i < n && is_fws((unsigned char)v[i]))
		i++;
	for (j = i; j < n && v[j] != ';' && v[j] != '(' && !is_fws((unsigned char)v[j]); j++)
		;
	*tok = v + i;
	return j - i;
}

static void
parse_ctype(mime_ent *e, const char *v, size_t n)
{
	const char *t, *slash;
	size_t tl, len;
	char buf[CHARSET_MAX + 1];

	tl = field_token(v, n, &t);
	slash = memchr(t, '/', tl);
	if (slash && slash > t && slash < t + tl - 1 && !memchr(slash + 1, '/', (size_t)(t + tl - slash - 1)) &&
	    tl <= TYPE_MAX)
		copy_str(e->type, sizeof e->type, t, tl, true);
	else
		e->type[0] = '\0';
	n -= (size_t)(t + tl - v);
	v = t + tl;
	if (param_get(v, n, "charset", buf, sizeof buf, &len)) {
		const char *c = buf;
		while (len > 0 && is_fws((unsigned char)c[len - 1]))
			len--;
		while (len > 0 && is_fws((unsigned char)*c)) {
			c++;
			len--;
		}
		if (len >= 2 && c[0] == '\'' && c[len - 1] == '\'') {
			c++;
			len -= 2;
		}
		copy_str(e->charset, sizeof e->charset, c, len, true);
	}
	if (param_get(v, n, "boundary", e->boundary, sizeof e->boundary, &len)) {
		while (len > 0 && is_fws((unsigned char)e->boundary[len - 1]))
			len--;
		e->boundary[len] = '\0';
		/* a truncated (too long) boundary would match the wrong lines */
		e->blen = len <= BOUNDARY_MAX ? len : 0;
	}
	param_get(v, n, "name", e->fname_ct, sizeof e->fname_ct, &len);
}

static void
parse_disposition(mime_ent *e, const char *v, size_t n)
{
	const char *t;
	size_t tl, len;

	tl = field_token(v, n, &t);
	e->attachment = tl == 10 && strncasecmp(t, "attachment", 10) == 0;
	param_get(t + tl, n - (size_t)(t + tl - v), "filename", e->fname_cd, sizeof e->fname_cd, &len);
}

/* A complete header field of the current entity. */
static void
hdr_field(mime_walker *w, const char *name, size_t nl, const char *v, size_t vl)
{
	mime_ent *e = &w->ent;

	if (nl == 12 && strncasecmp(name, "content-type", 12) == 0) {
		if (!e->seen_ct)
			parse_ctype(e, v, vl);
		e->seen_ct = true;
	} else if (nl == 25 && strncasecmp(name, "content-transfer-encoding", 25) == 0) {
		const char *t;
		size_t tl = field_token(v, vl, &t);
		if (!e->seen_cte)
			copy_str(e->encoding, sizeof e->encoding, t, tl, true);
		e->seen_cte = true;
	} else if (nl == 19 && strncasecmp(name, "content-disposition", 19) == 0) {
		if (!e->seen_cd)
			parse_disposition(e, v, vl);
		e->seen_cd = true;
	}
}

/* ------------------------------------------------------------------ output */

static void
out_emit(mime_walker *w)
{
	mime_leaf *L = &w->leaf;

	if (L->olen > 0 && w->cb.part_text)
		w->cb.part_text(w->ud, &L->part, L->out, L->olen);
	L->olen = 0;
}

/* One character (n <= 4): never split between two pieces. */
static void
out_char(mime_walker *w, const char *s, size_t n)
{
	mime_leaf *L = &w->leaf;

	if (MIME_BLOCK - L->olen < n)
		out_emit(w);
	memcpy(L->out + L->olen, s, n);
	L->olen += n;
}

static void
out_fffd(mime_walker *w)
{
	out_char(w, "\xEF\xBF\xBD", 3);
}

/* ------------------------------------------------------- charset to UTF-8 */

/* Known names to what glibc's iconv should open; others go as they are. */
static const struct {
	const char *label, *conv;
} cs_alias[] = {
	{ "gb2312", "GB18030" }, { "gbk", "GB18030" }, { "x-gbk", "GB18030" }, { "cp936", "GB18030" },
	{ "euc-cn", "GB18030" }, { "csgb2312", "GB18030" }, { "chinese", "GB18030" },
	{ "ks_c_5601-1987", "CP949" }, { "ks_c_5601-1989", "CP949" }, { "ksc5601", "CP949" },
	{ "ksc_5601", "CP949" }, { "euc-kr", "CP949" }, { "windows-949", "CP949" }, { "korean", "CP949" },
	{ "shift_jis", "CP932" }, { "shift-jis", "CP932" }, { "sjis", "CP932" }, { "x-sjis", "CP932" },
	{ "ms_kanji", "CP932" }, { "csshiftjis", "CP932" }, { "windows-31j", "CP932" }, { "cp932", "CP932" },
	{ "iso-2022-jp", "ISO-2022-JP-2" }, { "csiso2022jp", "ISO-2022-JP-2" },
	{ "big5", "BIG5-HKSCS" }, { "big-5", "BIG5-HKSCS" }, { "cn-big5", "BIG5-HKSCS" },
	{ "x-x-big5", "BIG5-HKSCS" }, { "csbig5", "BIG5-HKSCS" },
	{ "iso-8859-1", "CP1252" }, { "iso8859-1", "CP1252" }, { "iso_8859-1", "CP1252" },
	{ "latin1", "CP1252" }, { "l1", "CP1252" }, { "cp819", "CP1252" },
	{ "iso-8859-9", "CP1254" }, { "iso8859-9", "CP1254" }, { "latin5", "CP1254" },
};

static bool
cs_is_utf8(const char *cs)
{
	static const char *const names[] = {
		"", "utf-8", "utf8", "unicode-1-1-utf-8", "us-ascii", "ascii", "ansi_x3.4-1968",
		"iso646-us", "us", "csascii",
	};
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(cs, names[i]) == 0)
			return true;
	return false;
}

/*
 * glibc converters of one byte per character, without state, that map
 * bytes below 0x80 to ASCII: a block is converted the same whether it is
 * given whole or cut anywhere, so runs of ASCII need no iconv. Not
 * windows-1255 and -1258: their converters combine a letter with the
 * marks that follow it.
 */
static bool
cs_8bit(const char *name)
{
	static const char *const prefixes[] = { "iso-8859-", "iso8859-", "iso_8859-" };
	static const char *const names[] = {
		"cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1256", "cp1257",
		"windows-1250", "windows-1251", "windows-1252", "windows-1253", "windows-1254",
		"windows-1256", "windows-1257", "koi8-r", "koi8-u",
	};
	size_t i, n;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	for (i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
		const char *d;
		n = strlen(prefixes[i]);
		if (strncasecmp(name, prefixes[i], n) != 0)
			continue;
		/* ISO-8859-1 to -16 */
		d = name + n;
		if ((d[0] >= '1' && d[0] <= '9' && d[1] == '\0') ||
		    (d[0] == '1' && d[1] >= '0' && d[1] <= '6' && d[2] == '\0'))
			return true;
	}
	return false;
}

/*
 * Converters are kept for the next part in the same charset, in any
 * thread. glibc unloads a charset's module when its last converter is
 * closed and loads it again at the next iconv_open(): a 5 KB message with
 * parts in four charsets took six times as long as the same in UTF-8.
 */
static pthread_mutex_t cd_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char name[CD_NAME];
	iconv_t cd;
} cd_kept[CD_KEPT];
static unsigned cd_nkept;

/* a converter from name to UTF-8 in its initial state, or (iconv_t)-1 */
static iconv_t
cd_take(const char *name)
{
	iconv_t cd = (iconv_t)-1;

	pthread_mutex_lock(&cd_mu);
	for (unsigned i = cd_nkept; i-- > 0;)
		if (strcmp(cd_kept[i].name, name) == 0) {
			cd = cd_kept[i].cd;
			cd_kept[i] = cd_kept[--cd_nkept];
			break;
		}
	pthread_mutex_unlock(&cd_mu);
	if (cd == (iconv_t)-1)
		return iconv_open("UTF-8", name);
	iconv(cd, NULL, NULL, NULL, NULL);
	return cd;
}

/* keep the converter of a leaf (when there is room), or close it */
static void
cd_give(mime_leaf *L)
{
	iconv_t cd = L->cd;

	L->cd = (iconv_t)-1;
	if (cd == (iconv_t)-1)
		return;
	if (L->cdname[0]) {
		pthread_mutex_lock(&cd_mu);
		if (cd_nkept < CD_KEPT) {
			memcpy(cd_kept[cd_nkept].name, L->cdname, sizeof(L->cdname));
			cd_kept[cd_nkept++].cd = cd;
			cd = (iconv_t)-1;
		}
		pthread_mutex_unlock(&cd_mu);
	}
	if (cd != (iconv_t)-1)
		iconv_close(cd);
}

/* open the converter of a leaf from name; false when iconv cannot */
static bool
cd_open(mime_leaf *L, const char *name)
{
	size_t n = strlen(name);

	if ((L->cd = cd_take(name)) == (iconv_t)-1)
		return false;
	/* a longer name: the converter is closed at the end */
	if (n < sizeof(L->cdname))
		memcpy(L->cdname, name, n + 1);
	else
		L->cdname[0] = 0;
	return true;
}

/* Set up the converter of a text leaf; false when the charset is unknown. */
static bool
cs_open(mime_leaf *L)
{
	const char *cs = L->charset, *conv = cs, *p;
	size_t i;

	L->cs = CS_UTF8;
	if (cs_is_utf8(cs))
		return true;
	/* only plain names reach iconv_open: no "//TRANSLIT" suffixes, no paths */
	for (p = cs; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-_.:+", *p)))
			return false;
	for (i = 0; i < sizeof cs_alias / sizeof cs_alias[0]; i++)
		if (strcmp(cs, cs_alias[i].label) == 0) {
			conv = cs_alias[i].conv;
			break;
		}
	if (!cd_open(L, conv)) {
		if (conv == cs || !cd_open(L, cs))
			return false;
		conv = cs;
	}
	L->cs = cs_8bit(conv) ? CS_8BIT : CS_ICONV;
	return true;
}

/* Length of the ASCII run at the start of s[0..n). */
static size_t
ascii_span(const unsigned char *s, size_t n)
{
	size_t i = 0;

	/* 32 and then 8 bytes at a time */
	while (n - i >= 32) {
		uint64_t v[4];
		memcpy(v, s + i, 32);
		if ((v[0] | v[1] | v[2] | v[3]) & 0x8080808080808080ULL)
			break;
		i += 32;
	}
	while (n - i >= 8) {
		uint64_t v;
		memcpy(&v, s + i, 8);
		if (v & 0x8080808080808080ULL)
			break;
		i += 8;
	}
	while (i < n && s[i] < 0x80)
		i++;
	return i;
}

/*
 * A valid UTF-8 run: a long one goes out as it is, a short one is gathered
 * in the output block, never cut.
 */
static void
utf8_run(mime_walker *w, const unsigned char *s, size_t n)
{
	mime_leaf *L = &w->leaf;

	if (n == 0)
		return;
	if (n >= UTF8_DIRECT) {
		out_emit(w);
		if (w->cb.part_text)
			w->cb.part_text(w->ud, &L->part, (const char *)s, n);
		return;
	}
	if (MIME_BLOCK - L->olen < n)
		out_emit(w);
	memcpy(L->out + L->olen, s, n);
	L->olen += n;
}

/*
 * UTF-8 given as UTF-8 (or unknown): copy, each maximal ill-formed subpart
 * replaced by U+FFFD (Unicode 3.9, as the WHATWG decoder does). An
 * incomplete sequence at the end waits for more unless `final`.
 */
static size_t
utf8_scrub(mime_walker *w, const unsigned char *s, size_t n, bool final)
{
	size_t i = 0, run = 0; /* s[run..i) is valid, not yet given out */

	while (i < n) {
		size_t len, k;
		unsigned c;
		unsigned char lo = 0x80, hi = 0xBF;

		i += ascii_span(s + i, n - i);
		if (i == n)
			break;
		c = s[i];
		if (c >= 0xC2 && c <= 0xDF)
			len = 2;
		else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		} else {
			len = 0;
		}
		for (k = 1; k < len && i + k < n; k++) {
			unsigned char b = s[i + k];
			if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF))
				break;
		}
		if (len > 0 && k == len) {
			i += len;
			continue;
		}
		utf8_run(w, s + run, i - run);
		if (len > 0 && i + k == n && !final)
			return i; /* incomplete: the rest comes with the next block */
		out_fffd(w);
		i += len > 0 ? k : 1;
		run = i;
	}
	utf8_run(w, s + run, i - run);
	return i;
}

/*
 * iconv over in[0..inl): converted text to the output block, an invalid
 * byte replaced by U+FFFD. Stops early only at an incomplete character
 * that may be completed by the next block (never when final).
 */
static void
cs_iconv(mime_walker *w, char **in, size_t *inl, bool final)
{
	mime_leaf *L = &w->leaf;

	while (*inl > 0) {
		char *o = L->out + L->olen;
		size_t ol = MIME_BLOCK - L->olen, r;

		r = iconv(L->cd, in, inl, &o, &ol);
		L->olen = MIME_BLOCK - ol;
		if (r != (size_t)-1)
			break;
		if (errno == E2BIG && L->olen > 0) {
			out_emit(w);
		} else if (errno == EINVAL && !final && *inl < MIME_BLOCK / 2) {
			break; /* incomplete: wait for the rest */
		} else if (errno == EINVAL && final) {
			out_fffd(w);
			*inl = 0;
		} else {
			/* EILSEQ (or anything else): one byte replaced, go on;
			 * glibc's UHC (CP949) may already have skipped the bytes */
			out_fffd(w);
			if (*inl > 0) {
				(*in)++;
				(*inl)--;
			}
		}
	}
}

/*
 * One-byte charsets (CS_8BIT): ASCII runs go out as they are, iconv sees
 * the rest, in pieces that end where ASCII_RUN ASCII bytes follow.
 */
static size_t
cs_convert_8bit(mime_walker *w, bool final)
{
	mime_leaf *L = &w->leaf;
	const unsigned char *s = (const unsigned char *)L->dec;
	size_t n = L->dlen, i = 0;

	while (i < n) {
		size_t a = ascii_span(s + i, n - i), j, run = 0;
		char *in;
		size_t inl;

		utf8_run(w, s + i, a);
		i += a;
		if (i == n)
			break;
		for (j = i; j < n; j++) {
			if (s[j] >= 0x80)
				run = 0;
			else if (++run == ASCII_RUN)
				break;
		}
		j = j < n ? j + 1 - ASCII_RUN : n;
		in = L->dec + i;
		inl = j - i;
		cs_iconv(w, &in, &inl, final);
		i = j - inl;
		if (inl > 0)
			break;
	}
	return i;
}

/* Convert the decoded block; keeps an incomplete character unless final. */
static void
cs_convert(mime_walker *w, bool final)
{
	mime_leaf *L = &w->leaf;
	size_t used;

	if (L->cs == CS_UTF8) {
		used = utf8_scrub(w, (const unsigned char *)L->dec, L->dlen, final);
	} else if (L->cs == CS_8BIT) {
		used = cs_convert_8bit(w, final);
	} else {
		char *in = L->dec;
		size_t inl = L->dlen;

		cs_iconv(w, &in, &inl, final);
		used = L->dlen - inl;
	}
	if (final && L->cs != CS_UTF8) {
		for (;;) {
			char *o = L->out + L->olen;
			size_t ol = MIME_BLOCK - L->olen;
			size_t r = iconv(L->cd, NULL, NULL, &o, &ol);
			L->olen = MIME_BLOCK - ol;
			if (r != (size_t)-1 || errno != E2BIG || L->olen == 0)
				break;
			out_emit(w);
		}
	}
	if (used < L->dlen)
		memmove(L->dec, L->dec + used, L->dlen - used);
	L->dlen -= used;
}

/* --------------------------------------------------------- transfer codings */

/* Offset of the first '=' or LF in s[0..n), n when there is none. */
static size_t
find_eq_nl(const unsigned char *s, size_t n)
{
	size_t i = 0;

#ifdef __SSE2__
	const __m128i eq = _mm_set1_epi8('='), lf = _mm_set1_epi8('\n');

	for (; n - i >= 16; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(s + i));
		int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, eq), _mm_cmpeq_epi8(v, lf)));
		if (m)
			return i + (size_t)__builtin_ctz((unsigned)m);
	}
#else
	/* eight bytes at a time: a zero byte in v ^ '=' or in v ^ LF */
	for (; n - i >= 8; i += 8) {
		const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
		uint64_t v, a, b;
		memcpy(&v, s + i, 8);
		a = v ^ (ones * '=');
		b = v ^ (ones * '\n');
		if (((a - ones) & ~a & high) | ((b - ones) & ~b & high))
			break;
	}
#endif
	while (i < n && s[i] != '=' && s[i] != '\n')
		i++;
	return i;
}

static void
dec_put_slow(mime_walker *w, const char *s, size_t n)
{
	mime_leaf *L = &w->leaf;

	while (n > 0) {
		size_t room, m;

		if (L->dlen == MIME_BLOCK)
			cs_convert(w, false);
		room = MIME_BLOCK - L->dlen;
		m = n < room ? n : room;
		memcpy(L->dec + L->dlen, s, m);
		L->dlen += m;
		s += m;
		n -= m;
	}
}

/* Decoded bytes into the block; a full block is converted first. */
static inline void
dec_put(mime_walker *w, const char *s, size_t n)
{
	mime_leaf *L = &w->leaf;

	if (n <= MIME_BLOCK - L->dlen) {
		memcpy(L->dec + L->dlen, s, n);
		L->dlen += n;
	} else {
		dec_put_slow(w, s, n);
	}
}

static void
dec_put1(mime_walker *w, char c)
{
	mime_leaf *L = &w->leaf;

	if (L->dlen == MIME_BLOCK)
		cs_convert(w, false);
	L->dec[L->dlen++] = c;
}

#define XX 0xFF /* not in the alphabet: ignored */
#define PD 0xFE /* '=' */
static const unsigned char b64tab[256] = {
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, 62, XX, XX, XX, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, XX, XX, XX, PD, XX, XX,
	XX, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, XX, XX, XX, XX, XX,
	XX, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
	XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX, XX,
};

/*
 * The same for whole quads: the four letters' tables ORed together give a
 * 32-bit word whose first three bytes in memory are the decoded ones (the
 * bits of each letter already in place for the byte order), or a word with
 * B64_BAD set when a byte is no letter of the alphabet.
 */
#define B64V(c)                                                                                  \
	((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                  \
	 : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                             \
	 : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                             \
	 : (c) == '+'               ? 62                                                         \
	 : (c) == '/'               ? 63                                                         \
	                            : -1)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define B64_BAD 0x1u
#define B64P(v, k) ((uint32_t)(v) << (26 - 6 * (k)))
#else
#define B64_BAD 0x80000000u
/* letter k of the quad: its bits in bytes 0..2, least significant first */
#define B64P(v, k)                                                                               \
	((k) == 0   ? (uint32_t)(v) << 2                                                         \
	 : (k) == 1 ? (uint32_t)(v) >> 4 | ((uint32_t)(v)&0xF) << 12                             \
	 : (k) == 2 ? (uint32_t)(v) >> 2 << 8 | ((uint32_t)(v)&0x3) << 22                        \
	            : (uint32_t)(v) << 16)
#endif
#define B64S(c, k)    (B64V(c) < 0 ? B64_BAD : B64P(B64V(c), k))
#define B64R4(c, k)   B64S(c, k), B64S(c + 1, k), B64S(c + 2, k), B64S(c + 3, k)
#define B64R16(c, k)  B64R4(c, k), B64R4(c + 4, k), B64R4(c + 8, k), B64R4(c + 12, k)
#define B64R64(c, k)  B64R16(c, k), B64R16(c + 16, k), B64R16(c + 32, k), B64R16(c + 48, k)
#define B64TAB(k)     { B64R64(0, k), B64R64(64, k), B64R64(128, k), B64R64(192, k) }
static const uint32_t b64quad[4][256] = { B64TAB(0), B64TAB(1), B64TAB(2), B64TAB(3) };

static uint32_t
b64_quad(const unsigned char *s)
{
	return b64quad[0][s[0]] | b64quad[1][s[1]] | b64quad[2][s[2]] | b64quad[3][s[3]];
}

/* Bytes of an unfinished quad: 2 or 3 letters give 1 or 2 bytes. */
static void
b64_flush(mime_walker *w)
{
	mime_leaf *L = &w->leaf;

	if (L->b64n == 2) {
		dec_put1(w, (char)(L->b64acc >> 4));
	} else if (L->b64n == 3) {
		dec_put1(w, (char)(L->b64acc >> 10));
		dec_put1(w, (char)(L->b64acc >> 2));
	}
	L->b64n = 0;
	L->b64acc = 0;
}

/*
 * Base64: letters outside the alphabet are skipped; '=' ends the current
 * quad (so concatenated padded pieces decode), missing padding is fine.
 */
static void
b64_decode(mime_walker *w, const unsigned char *s, size_t n)
{
	mime_leaf *L = &w->leaf;
	const unsigned char *e = s + n;
	uint32_t acc = L->b64acc;
	unsigned cnt = L->b64n;

	while (s < e) {
		unsigned char v;

		/* whole quads straight into the block */
		if (cnt == 0) {
			unsigned char *o = (unsigned char *)L->dec + L->dlen;
			const unsigned char *oend = (unsigned char *)L->dec + MIME_BLOCK;

			/* eight letters at a time; four bytes stored for three:
			   one more byte of room */
			size_t k = (size_t)(e - s) / 8, room = (size_t)(oend - o);
			const unsigned char *slim;

			if (room < 7)
				k = 0;
			else if (k > (room - 1) / 6)
				k = (room - 1) / 6;
			for (slim = s + 8 * k; s < slim;) {
				uint32_t q = b64_quad(s), r = b64_quad(s + 4);
				if ((q | r) & B64_BAD)
					break;
				memcpy(o, &q, 4);
				memcpy(o + 3, &r, 4);
				o += 6;
				s += 8;
			}
			while (e - s >= 4 && oend - o >= 4) {
				uint32_t q = b64_quad(s);
				if (q & B64_BAD)
					break;
				memcpy(o, &q, 4);
				o += 3;
				s += 4;
			}
			L->dlen = (size_t)(o - (unsigned char *)L->dec);
			if (s == e)
				break;
		}
		v = b64tab[*s++];
		if (v < 64) {
			acc = acc << 6 | v;
			if (++cnt == 4) {
				dec_put1(w, (char)(acc >> 16));
				dec_put1(w, (char)(acc >> 8));
				dec_put1(w, (char)acc);
				cnt = 0;
				acc = 0;
			}
		} else if (v == PD) {
			L->b64acc = acc;
			L->b64n = cnt;
			b64_flush(w);
			acc = 0;
			cnt = 0;
		}
	}
	L->b64acc = acc;
	L->b64n = cnt;
}

static void
qp_ws_flush(mime_walker *w)
{
	mime_leaf *L = &w->leaf;

	if (L->qwslen > 0)
		dec_put(w, L->qws, L->qwslen);
	L->qwslen = 0;
}

/*
 * The fast path of qp_plain(), from s[i] on with nothing pending: sixteen
 * bytes at a time stored straight into the block while it has room, line
 * ends, "=XX" escapes and soft breaks without white space handled in place.
 * It stops at anything else, near the end of the piece or of the block;
 * the white space and CR just before where it stops are given back (a line
 * end that follows may drop them). Returns where it stopped: s[..i) is in
 * the block.
 */
static size_t
qp_fast(mime_walker *w, const unsigned char *s, size_t i, size_t n)
{
#ifdef __SSE2__
	mime_leaf *L = &w->leaf;
	unsigned char *o = (unsigned char *)L->dec + L->dlen;
	const unsigned char *oend = (unsigned char *)L->dec + MIME_BLOCK - 16;
	const __m128i eq = _mm_set1_epi8('='), lf = _mm_set1_epi8('\n');
	size_t lo = i, t; /* s[lo..i) is in the block as it is */

	while (n - i >= 16 && o <= oend) {
		__m128i v = _mm_loadu_si128((const __m128i *)(s + i));
		int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, eq), _mm_cmpeq_epi8(v, lf)));
		int h1, h2;

		_mm_storeu_si128((__m128i *)o, v);
		if (m == 0) {
			i += 16;
			o += 16;
			continue;
		}
		t = (size_t)__builtin_ctz((unsigned)m);
		i += t;
		o += t;
		if (s[i] == '\n') {
			/* white space before a line end (and its CR) is dropped */
			t = i;
			if (t > lo && s[t - 1] == '\r')
				t--;
			if (t > lo && is_wsp(s[t - 1])) {
				size_t wend = t;
				while (t > lo && is_wsp(s[t - 1]))
					t--;
				if (wend - t > QP_WS_MAX)
					break;
				o -= i - t;
				if (wend < i)
					*o++ = '\r';
			}
			*o++ = '\n';
			lo = ++i;
		} else if (n - i < 3) {
			break;
		} else if ((h1 = hexval(s[i + 1])) >= 0 && (h2 = hexval(s[i + 2])) >= 0) {
			*o++ = (unsigned char)(h1 * 16 + h2);
			lo = i += 3;
		} else if (s[i + 1] == '\n') {
			lo = i += 2; /* soft break */
		} else if (s[i + 1] == '\r' && s[i + 2] == '\n') {
			lo = i += 3;
		} else {
			break;
		}
	}
	t = i;
	while (t > lo && (is_wsp(s[t - 1]) || s[t - 1] == '\r'))
		t--;
	L->dlen = (size_t)(o - (unsigned char *)L->dec) - (i - t);
	return t;
#else
	(void)w;
	(void)s;
	(void)n;
	return i;
#endif
}

/*
 * Plain QP from s[i] on, with no white space held and no CR pending, over
 * as many lines as the piece holds: qp_fast() where it can, one event at a
 * time where it cannot. Returns where the state machine must go on: an "="
 * too near the end of its line or of the piece for anything but a soft
 * break, or the white space (and CR) ending a piece that may continue.
 */
static size_t
qp_plain(mime_walker *w, const unsigned char *s, size_t i, size_t n)
{
	size_t run, t, wend; /* s[run..i) decodes to itself, not yet in the block */

	for (;;) {
		const unsigned char *nl;
		int h1, h2;

		i = qp_fast(w, s, i, n);
		run = i;
		i += find_eq_nl(s + i, n - i);
		if (i == n)
			break;
		if (s[i] == '\n') {
			/* a line end drops the white space before it (and its CR) */
			t = i;
			if (t > run && s[t - 1] == '\r')
				t--;
			if (t > run && is_wsp(s[t - 1])) {
				wend = t;
				while (t > run && is_wsp(s[t - 1]))
					t--;
				dec_put(w, (const char *)s + run, t - run);
				if (wend - t > QP_WS_MAX)
					return t;
				run = wend;
			}
			i++;
			dec_put(w, (const char *)s + run, i - run);
			continue;
		}
		/* '=': an escape, or a soft break without white space */
		if (n - i >= 3 && (h1 = hexval(s[i + 1])) >= 0 && (h2 = hexval(s[i + 2])) >= 0) {
			dec_put(w, (const char *)s + run, i - run);
			dec_put1(w, (char)(h1 * 16 + h2));
			i += 3;
			continue;
		}
		dec_put(w, (const char *)s + run, i - run);
		if (n - i >= 2 && s[i + 1] == '\n') {
			i += 2;
			continue;
		}
		if (n - i >= 3 && s[i + 1] == '\r' && s[i + 2] == '\n') {
			i += 3;
			continue;
		}
		/* anything else: the end of its line decides */
		nl = memchr(s + i, '\n', n - i);
		t = nl ? (size_t)(nl - s) : n;
		if (s[t - 1] == '\r')
			t--;
		wend = t;
		while (is_wsp(s[t - 1]))
			t--;
		if (i + 3 <= t) {
			dec_put1(w, '='); /* an invalid escape: kept */
			i++;
			continue;
		}
		if (i + 1 < t || !nl || wend - t > QP_WS_MAX)
			return i; /* an escape cut by the line or the piece */
		/* a soft break: "=", white space, the line end */
		i = (size_t)(nl - s) + 1;
	}
	/* the end of the piece: white space or a CR may end a line */
	t = n;
	if (t > run && s[t - 1] == '\r')
		t--;
	while (t > run && is_wsp(s[t - 1]))
		t--;
	dec_put(w, (const char *)s + run, t - run);
	return t;
}

/*
 * Quoted-printable as a byte stream, line ends included: "=XX" (either
 * case), soft breaks "=" [WSP] (CR)LF, trailing white space dropped, an
 * invalid escape kept as it is.
 */
static void
qp_decode(mime_walker *w, const unsigned char *s, size_t n)
{
	mime_leaf *L = &w->leaf;
	size_t i = 0;

	if (L->qst == QS_N && L->qwslen == 0 && !L->qcr) {
		/* the usual case: a line's bytes, or its end */
		if (n <= 2 && s[n - 1] == '\n' && (n == 1 || s[0] == '\r')) {
			dec_put(w, (const char *)s, n);
			return;
		}
		i = qp_plain(w, s, 0, n);
	}
	while (i < n) {
		unsigned char c;
		int h;

		switch (L->qst) {
		case QS_N:
			if (L->qwslen == 0 && !L->qcr) {
				i = qp_plain(w, s, i, n);
				if (i == n)
					break;
			}
			c = s[i];
			if (L->qcr) {
				/* white space, then CR: a line end drops the white space */
				L->qcr = false;
				if (c == '\n') {
					L->qwslen = 0;
					dec_put(w, "\r\n", 2);
					i++;
				} else {
					qp_ws_flush(w);
					dec_put1(w, '\r');
				}
				break;
			}
			if (c == ' ' || c == '\t') {
				if (L->qwslen == QP_WS_MAX)
					qp_ws_flush(w);
				L->qws[L->qwslen++] = (char)c;
				i++;
			} else if (c == '\r') {
				L->qcr = true;
				i++;
			} else if (c == '\n') {
				L->qwslen = 0;
				dec_put1(w, '\n');
				i++;
			} else {
				qp_ws_flush(w);
				if (c == '=')
					L->qst = QS_EQ;
				else
					dec_put1(w, (char)c);
				i++;
			}
			break;
		case QS_EQ:
			c = s[i];
			if (hexval(c) >= 0) {
				L->qhex = c;
				L->qst = QS_EQH;
				i++;
			} else if (c == ' ' || c == '\t') {
				L->qws[0] = (char)c;
				L->qwslen = 1;
				L->qst = QS_EQW;
				i++;
			} else if (c == '\r') {
				L->qst = QS_EQCR;
				i++;
			} else if (c == '\n') {
				L->qst = QS_N; /* soft line break */
				i++;
			} else {
				dec_put1(w, '=');
				L->qst = QS_N;
			}
			break;
		case QS_EQH:
			c = s[i];
			h = hexval(c);
			if (h >= 0) {
				dec_put1(w, (char)(hexval(L->qhex) * 16 + h));
				i++;
			} else {
				dec_put1(w, '=');
				dec_put1(w, (char)L->qhex);
			}
			L->qst = QS_N;
			break;
		case QS_EQW:
			c = s[i];
			if ((c == ' ' || c == '\t') && L->qwslen < QP_WS_MAX) {
				L->qws[L->qwslen++] = (char)c;
				i++;
			} else if (c == '\r') {
				L->qst = QS_EQCR;
				i++;
			} else if (c == '\n') {
				L->qwslen = 0;
				L->qst = QS_N;
				i++;
			} else {
				dec_put1(w, '=');
				qp_ws_flush(w);
				L->qst = QS_N;
			}
			break;
		case QS_EQCR:
			c = s[i];
			if (c == '\n') {
				L->qwslen = 0;
				i++;
			} else {
				dec_put1(w, '=');
				qp_ws_flush(w);
				dec_put1(w, '\r');
			}
			L->qst = QS_N;
			break;
		}
	}
}

/* End of a QP part: "=" at the very end is a soft break, white space goes. */
static void
qp_finish(mime_walker *w)
{
	mime_leaf *L = &w->leaf;

	if (L->qst == QS_EQH) {
		dec_put1(w, '=');
		dec_put1(w, (char)L->qhex);
	} else if (L->qst == QS_N && L->qcr) {
		qp_ws_flush(w);
		dec_put1(w, '\r');
	}
	L->qwslen = 0;
	L->qcr = false;
	L->qst = QS_N;
}

/* ------------------------------------------------------------------ leaves */

static bool
te_identity(const char *enc)
{
	return enc[0] == '\0' || strcmp(enc, "7bit") == 0 || strcmp(enc, "8bit") == 0 ||
	       strcmp(enc, "binary") == 0;
}

static void
leaf_open(mime_walker *w, const char *type)
{
	mime_leaf *L = &w->leaf;
	mime_ent *e = &w->ent;
	const mime_frame *top = w->nfr ? &w->fr[w->nfr - 1] : NULL;
	mime_part *p = &L->part;
	const char *fname = e->fname_cd[0] ? e->fname_cd : e->fname_ct[0] ? e->fname_ct : NULL;
	const char *enc = e->encoding[0] ? e->encoding : "7bit";

	copy_str(L->type, sizeof L->type, type, strlen(type), false);
	copy_str(L->charset, sizeof L->charset, e->charset, strlen(e->charset), false);
	copy_str(L->encoding, sizeof L->encoding, enc, strlen(enc), false);
	if (fname)
		copy_str(L->filename, sizeof L->filename, fname, strlen(fname), false);
	memset(p, 0, sizeof *p);
	p->index = w->nleaves++;
	p->depth = (int)w->nfr;
	p->type = L->type;
	p->charset = L->charset;
	p->encoding = L->encoding;
	p->filename = fname ? L->filename : NULL;
	p->attachment = e->attachment;
	p->in_alternative = top && top->alt;
	p->in_rfc822 = top && top->rfc822;
	p->view = (strcmp(type, "text/html") == 0 || strcmp(type, "text/plain") == 0) && !p->attachment &&
	          !p->in_rfc822 && !(fname && !p->in_alternative);
	L->text = strncmp(type, "text/", 5) == 0;
	L->te = strcmp(L->encoding, "base64") == 0             ? TE_B64
	        : strcmp(L->encoding, "quoted-printable") == 0 ? TE_QP
	                                                       : TE_IDENT;
	L->cs = CS_UTF8;
	L->cd = (iconv_t)-1;
	L->b64acc = 0;
	L->b64n = 0;
	L->qst = QS_N;
	L->qcr = false;
	L->qwslen = 0;
	L->dlen = 0;
	L->olen = 0;
	if (L->text && !cs_open(L))
		p->charset_unknown = true;
	L->open = true;
	if (w->cb.part_begin)
		w->cb.part_begin(w->ud, p);
}

/* Raw body bytes of the open leaf. */
static void
leaf_put(mime_walker *w, const char *s, size_t n)
{
	mime_leaf *L = &w->leaf;

	if (!L->open || !L->text || n == 0)
		return;
	switch (L->te) {
	case TE_B64:
		b64_decode(w, (const unsigned char *)s, n);
		break;
	case TE_QP:
		qp_decode(w, (const unsigned char *)s, n);
		break;
	default:
		dec_put(w, s, n);
		break;
	}
}

/*
 * Hand over what is decoded so far (the end of a mime_feed() call). iconv
 * only ever sees whole blocks: some of glibc's decoders (UHC, UTF-7) do not
 * give the same result for an input cut in two, so a block is converted only
 * when it is full or the part ends, wherever the chunks were cut.
 */
static void
leaf_flush(mime_walker *w)
{
	mime_leaf *L = &w->leaf;

	if (!L->open || !L->text)
		return;
	if (L->dlen > 0 && L->cs == CS_UTF8)
		cs_convert(w, false);
	out_emit(w);
}

static void
leaf_close(mime_walker *w)
{
	mime_leaf *L = &w->leaf;

	if (!L->open)
		return;
	L->open = false;
	if (L->text) {
		if (L->te == TE_B64)
			b64_flush(w);
		else if (L->te == TE_QP)
			qp_finish(w);
		cs_convert(w, true);
		out_emit(w);
		cd_give(L);
	}
	if (w->cb.part_end)
		w->cb.part_end(w->ud, &L->part);
}

/* ---------------------------------------------------------------- entities */

/* A new entity (part, or an encapsulated message) starts with its headers. */
static void
ent_start(mime_walker *w)
{
	if (w->nent >= w->lim.max_parts) {
		hit(w, "MaxMimeParts");
		return;
	}
	w->nent++;
	memset(&w->ent, 0, sizeof w->ent);
	w->pstate = P_HDR;
	w->hkind = HK_START;
	w->hpending = false;
	w->hlen = 0;
	w->hdr_bytes = 0;
	w->pend_eol = 0;
}

static bool
fr_push(mime_walker *w, int kind)
{
	bool up_alt = w->nfr && w->fr[w->nfr - 1].alt;
	bool up_rfc822 = w->nfr && w->fr[w->nfr - 1].rfc822;
	mime_ent *e = &w->ent;
	mime_frame *f;

	if (w->nfr >= w->lim.max_depth) {
		hit(w, "MaxMimeDepth");
		return false;
	}
	if (w->nfr == w->frcap) {
		unsigned cap = w->frcap ? w->frcap * 2 : 8;
		mime_frame *nf;
		if (cap > w->lim.max_depth)
			cap = w->lim.max_depth;
		nf = realloc(w->fr, cap * sizeof *nf);
		if (!nf) {
			nomem(w);
			return false;
		}
		w->fr = nf;
		w->frcap = cap;
	}
	f = &w->fr[w->nfr];
	memset(f, 0, sizeof *f);
	f->kind = (unsigned char)kind;
	f->alt = up_alt;
	f->rfc822 = up_rfc822 || kind == FR_MESSAGE;
	if (kind == FR_MULTI) {
		if (w->aused + e->blen > w->acap) {
			size_t cap = w->acap ? w->acap : 256;
			char *na;
			while (cap < w->aused + e->blen)
				cap *= 2;
			na = realloc(w->arena, cap);
			if (!na) {
				nomem(w);
				return false;
			}
			w->arena = na;
			w->acap = cap;
		}
		memcpy(w->arena + w->aused, e->boundary, e->blen);
		f->boff = w->aused;
		f->blen = e->blen;
		w->aused += e->blen;
		f->alt = f->alt || strcmp(e->type, "multipart/alternative") == 0;
		f->digest = strcmp(e->type, "multipart/digest") == 0;
		w->nbnd++;
	}
	w->nfr++;
	return true;
}

static void
fr_pop(mime_walker *w)
{
	mime_frame *f = &w->fr[--w->nfr];

	if (f->kind == FR_MULTI) {
		w->aused = f->boff;
		w->nbnd--;
	}
}

/* The header block of the current entity is complete: begin its body. */
static void
ent_begin(mime_walker *w)
{
	mime_ent *e = &w->ent;
	const mime_frame *top = w->nfr ? &w->fr[w->nfr - 1] : NULL;
	const char *type;

	if (e->type[0])
		type = e->type;
	else if (!e->seen_ct && top && top->digest)
		type = "message/rfc822";
	else
		type = "text/plain";
	w->pstate = P_BODY;
	w->pend_eol = 0;
	if (strncmp(type, "multipart/", 10) == 0) {
		if (e->blen > 0) {
			fr_push(w, FR_MULTI); /* preamble follows: no leaf */
			return;
		}
		type = "text/plain";
	} else if ((strcmp(type, "message/rfc822") == 0 || strcmp(type, "message/global") == 0) &&
	           te_identity(e->encoding)) {
		if (fr_push(w, FR_MESSAGE))
			ent_start(w);
		return;
	}
	leaf_open(w, type);
}

static void
hdr_complete(mime_walker *w)
{
	if (!w->hpending)
		return;
	w->hpending = false;
	hdr_field(w, w->hbuf, w->hnamelen, w->hbuf + w->hcolon + 1, w->hlen - w->hcolon - 1);
}

/*
 * The header block ends without its blank line (a delimiter, the end of
 * input, a line that is no field): the entity begins with what it has. An
 * encapsulated message so begun has an empty header block too.
 */
static void
hdr_end_abrupt(mime_walker *w)
{
	hdr_complete(w);
	ent_begin(w);
	if (!w->stopped && w->pstate == P_HDR)
		ent_begin(w);
}

/* Header bytes: both bounds, the one reached first in the input wins. */
static bool
hdr_room(mime_walker *w, size_t n, bool line)
{
	size_t lroom = w->lim.max_header_line > w->hlen ? w->lim.max_header_line - w->hlen : 0;
	size_t broom = w->lim.max_header_bytes > w->hdr_bytes ? w->lim.max_header_bytes - w->hdr_bytes : 0;

	if (line && n > lroom && lroom <= broom) {
		hit(w, "MaxHeaderLine");
		return false;
	}
	if (n > broom) {
		hit(w, "MaxHeaderBytes");
		return false;
	}
	w->hdr_bytes += n;
	return true;
}

static bool
hdr_append(mime_walker *w, const char *s, size_t n)
{
	if (!hdr_room(w, n, true))
		return false;
	if (w->hlen + n > w->hcap) {
		size_t cap = w->hcap ? w->hcap : 256;
		char *nb;
		while (cap < w->hlen + n)
			cap *= 2;
		nb = realloc(w->hbuf, cap);
		if (!nb) {
			nomem(w);
			return false;
		}
		w->hbuf = nb;
		w->hcap = cap;
	}
	memcpy(w->hbuf + w->hlen, s, n);
	w->hlen += n;
	return true;
}

static void body_line_start(mime_walker *);

/* The line being read is no header field: it starts the body. */
static void
hdr_to_body(mime_walker *w)
{
	size_t keep = w->hlen;

	hdr_end_abrupt(w);
	if (w->stopped)
		return;
	body_line_start(w);
	leaf_put(w, w->hbuf, keep);
}

static bool
is_name_char(unsigned char c)
{
	return c > 32 && c < 127 && c != ':';
}

static void
hdr_data(mime_walker *w, const char *s, size_t n)
{
	while (n > 0 && !w->stopped) {
		unsigned char c = (unsigned char)*s;

		switch (w->hkind) {
		case HK_START:
			if (is_wsp(c)) {
				w->hkind = w->hpending ? HK_CONT : HK_SKIP;
				continue;
			}
			hdr_complete(w);
			w->hlen = 0;
			w->hnamelen = 0;
			if (c == '-' || !is_name_char(c)) {
				hdr_to_body(w);
				leaf_put(w, s, n);
				return;
			}
			w->hkind = HK_NAME;
			continue;
		case HK_NAME:
		case HK_NAMEWS:
			if (c == ':') {
				if (!hdr_append(w, s, 1))
					return;
				w->hcolon = w->hlen - 1;
				w->hkind = HK_VALUE;
				w->hpending = true;
			} else if (w->hkind == HK_NAME && is_name_char(c) && w->hnamelen < FIELD_NAME_MAX) {
				if (!hdr_append(w, s, 1))
					return;
				w->hnamelen++;
			} else if (is_wsp(c)) {
				if (!hdr_append(w, s, 1))
					return;
				w->hkind = HK_NAMEWS;
			} else {
				hdr_to_body(w);
				leaf_put(w, s, n);
				return;
			}
			s++;
			n--;
			break;
		case HK_VALUE:
		case HK_CONT:
			hdr_append(w, s, n);
			return;
		default: /* HK_SKIP: a continuation of nothing */
			hdr_room(w, n, false);
			return;
		}
	}
}

static void
hdr_eol(mime_walker *w, bool crlf)
{
	switch (w->hkind) {
	case HK_START: /* the blank line */
		hdr_complete(w);
		ent_begin(w);
		break;
	case HK_NAME:
	case HK_NAMEWS: /* a line without a colon */
		hdr_to_body(w);
		if (!w->stopped)
			w->pend_eol = crlf ? 2 : 1;
		break;
	default:
		if (hdr_room(w, crlf ? 2 : 1, false))
			w->hkind = HK_START;
		break;
	}
}

/* ------------------------------------------------- lines to the consumers */

static void
body_line_start(mime_walker *w)
{
	if (w->pend_eol)
		leaf_put(w, w->pend_eol == 2 ? "\r\n" : "\n", (size_t)w->pend_eol);
	w->pend_eol = 0;
}

static void
c_line_start(mime_walker *w)
{
	if (w->pstate == P_BODY)
		body_line_start(w);
}

static void
c_data(mime_walker *w, const char *s, size_t n)
{
	if (n == 0 || w->stopped)
		return;
	if (w->pstate == P_HDR)
		hdr_data(w, s, n);
	else
		leaf_put(w, s, n);
}

static void
c_eol(mime_walker *w, bool crlf)
{
	if (w->stopped)
		return;
	if (w->pstate == P_HDR)
		hdr_eol(w, crlf);
	else
		w->pend_eol = crlf ? 2 : 1; /* belongs to a delimiter that may follow */
}

/* A whole line s[0..n) (no line end): is it a delimiter? Innermost first. */
static bool
bnd_full(const mime_walker *w, const char *s, size_t n, unsigned *k, bool *close)
{
	unsigned i;

	if (n < 2 || s[0] != '-' || s[1] != '-')
		return false;
	for (i = w->nfr; i-- > 0;) {
		const mime_frame *f = &w->fr[i];
		size_t j;
		bool c = false;

		if (f->kind != FR_MULTI || n < 2 + f->blen || memcmp(s + 2, w->arena + f->boff, f->blen) != 0)
			continue;
		j = 2 + f->blen;
		if (n - j >= 2 && s[j] == '-' && s[j + 1] == '-') {
			c = true;
			j += 2;
		}
		while (j < n && is_wsp((unsigned char)s[j]))
			j++;
		if (j == n) {
			*k = i;
			*close = c;
			return true;
		}
	}
	return false;
}

/* Can a line beginning with s[0..n) (no LF seen yet) still be a delimiter? */
static bool
bnd_maybe(const mime_walker *w, const char *s, size_t n)
{
	unsigned i, k;
	bool c;

	if (n > 0 && s[n - 1] == '\r')
		return bnd_full(w, s, n - 1, &k, &c);
	for (i = w->nfr; i-- > 0;) {
		const mime_frame *f = &w->fr[i];
		size_t L = 2 + f->blen, m = n < L ? n : L, j;

		if (f->kind != FR_MULTI)
			continue;
		if ((m >= 1 && s[0] != '-') || (m >= 2 && s[1] != '-') ||
		    (m > 2 && memcmp(s + 2, w->arena + f->boff, m - 2) != 0))
			continue;
		if (n <= L)
			return true;
		j = L;
		if (s[j] == '-') {
			if (n == j + 1)
				return true;
			if (s[j + 1] != '-')
				continue;
			j += 2;
		}
		while (j < n && is_wsp((unsigned char)s[j]))
			j++;
		if (j == n)
			return true;
	}
	return false;
}

static void
on_delim(mime_walker *w, unsigned k, bool close)
{
	w->pend_eol = 0; /* the line end before a delimiter is part of it */
	if (w->pstate == P_HDR)
		hdr_end_abrupt(w);
	if (w->stopped)
		return;
	leaf_close(w);
	while (w->nfr > k + 1)
		fr_pop(w);
	if (close) {
		fr_pop(w); /* the epilogue follows: no leaf */
		w->pstate = P_BODY;
	} else {
		ent_start(w);
	}
}

/* The held line is no delimiter: give it to the consumer. */
static void
lines_unhold(mime_walker *w, bool at_end)
{
	size_t len = w->holdlen;

	w->lstate = LS_LINE;
	w->holdlen = 0;
	if (at_end && len > 0 && w->hold[len - 1] == '\r') {
		len--;
		w->pcr = true;
	}
	c_line_start(w);
	c_data(w, w->hold, len);
}

/*
 * The first line end of p[0..n) that may belong to a delimiter: one that
 * the chunk ends after, or that is followed by "--" (or by a '-' that ends
 * the chunk). The line ends before it are body bytes like any other. NULL
 * when there is none.
 */
static const char *
body_span(const char *p, size_t n)
{
	const char *e = p + n, *nl = p;

	/* "\n-" is rare in a body: look for the pair, not for every line end */
	for (;;) {
		size_t i = bw_find_pair(nl, (size_t)(e - nl), '\n', '-', 0);

		if (i == (size_t)(e - nl))
			break;
		nl += i;
		if (nl + 2 == e || nl[2] == '-')
			return nl;
		nl++;
	}
	return n > 0 && e[-1] == '\n' ? e - 1 : NULL;
}

static void
lines_feed(mime_walker *w, const char *p, size_t n)
{
	while (n > 0 && !w->stopped) {
		const char *nl;
		size_t seg;

		switch (w->lstate) {
		case LS_START:
			if (*p == '-' && w->pstate == P_HDR)
				hdr_end_abrupt(w); /* no field begins with '-' */
			if (w->stopped)
				return;
			if (w->nbnd == 0 && w->pstate == P_BODY) {
				/* no delimiter can come: the rest is this body */
				c_line_start(w);
				w->lstate = LS_RAW;
			} else if (*p == '-' && w->nbnd > 0) {
				w->lstate = LS_HOLD;
				w->holdlen = 0;
			} else {
				w->lstate = LS_LINE;
				c_line_start(w);
			}
			break;
		case LS_LINE:
			if (w->pcr) {
				w->pcr = false;
				if (*p == '\n') {
					c_eol(w, true);
					p++;
					n--;
					w->lstate = LS_START;
				} else {
					c_data(w, "\r", 1);
				}
				break;
			}
			/* a body takes the lines that cannot come before a
			   delimiter in one piece; a header block line by line */
			nl = w->pstate == P_BODY ? body_span(p, n) : memchr(p, '\n', n);
			if (nl) {
				bool crlf;
				seg = (size_t)(nl - p);
				crlf = seg > 0 && p[seg - 1] == '\r';
				c_data(w, p, seg - crlf);
				c_eol(w, crlf);
				p += seg + 1;
				n -= seg + 1;
				w->lstate = LS_START;
			} else {
				seg = n;
				if (p[seg - 1] == '\r') {
					seg--;
					w->pcr = true;
				}
				c_data(w, p, seg);
				n = 0;
			}
			break;
		case LS_RAW:
			leaf_put(w, p, n);
			n = 0;
			break;
		default: { /* LS_HOLD */
			size_t room = HOLD_MAX - w->holdlen;

			nl = memchr(p, '\n', n);
			seg = nl ? (size_t)(nl - p) : n;
			if (seg > room) {
				memcpy(w->hold + w->holdlen, p, room);
				w->holdlen += room;
				p += room;
				n -= room;
				lines_unhold(w, false);
				break;
			}
			memcpy(w->hold + w->holdlen, p, seg);
			w->holdlen += seg;
			p += seg;
			n -= seg;
			if (nl) {
				size_t len = w->holdlen;
				bool crlf = len > 0 && w->hold[len - 1] == '\r', close;
				unsigned k;

				p++;
				n--;
				len -= crlf;
				w->lstate = LS_START;
				w->holdlen = 0;
				if (bnd_full(w, w->hold, len, &k, &close)) {
					on_delim(w, k, close);
				} else {
					c_line_start(w);
					c_data(w, w->hold, len);
					c_eol(w, crlf);
				}
			} else if (!bnd_maybe(w, w->hold, w->holdlen)) {
				lines_unhold(w, true);
			}
			break;
		}
		}
	}
}

/* End of input: the last line has no line end. */
static void
lines_eof(mime_walker *w)
{
	if (w->lstate == LS_HOLD) {
		size_t len = w->holdlen;
		unsigned k;
		bool close;

		if (len > 0 && w->hold[len - 1] == '\r')
			len--;
		w->holdlen = 0;
		if (bnd_full(w, w->hold, len, &k, &close)) {
			on_delim(w, k, close);
		} else {
			c_line_start(w);
			c_data(w, w->hold, len);
		}
	}
	w->pcr = false; /* a lone CR at the very end is taken as a line end */
	w->lstate = LS_START;
}

/* -------------------------------------------------------------------- API */

/*
 * A walker is some 20 KB, most of it the blocks that decoding writes:
 * freed ones wait in a pool (pool.h). mime_new() sets every field that a
 * walker reads, as it must for new memory.
 */
static bw_pool walkers = BW_POOL_INIT;

mime_walker *
mime_new(const mime_limits *lim, const mime_cb *cb, void *ud)
{
	mime_walker *w;
	mime_leaf *L;

	if (!(w = bw_pool_take(&walkers)) && !(w = malloc(sizeof *w)))
		return NULL;
	/* all zero but the buffers, which are only read up to their lengths */
	L = &w->leaf;
	memset(w, 0, offsetof(mime_walker, leaf));
	memset(L, 0, offsetof(mime_leaf, qws));
	memset(&L->dlen, 0, offsetof(mime_leaf, dec) - offsetof(mime_leaf, dlen));
	memset(L->type, 0, sizeof *L - offsetof(mime_leaf, type));
	w->lim = mime_defaults;
	if (lim) {
		if (lim->max_depth)
			w->lim.max_depth = lim->max_depth;
		if (lim->max_parts)
			w->lim.max_parts = lim->max_parts;
		if (lim->max_header_line)
			w->lim.max_header_line = lim->max_header_line;
		if (lim->max_header_bytes)
			w->lim.max_header_bytes = lim->max_header_bytes;
		if (lim->max_body_scan)
			w->lim.max_body_scan = lim->max_body_scan;
	}
	if (cb)
		w->cb = *cb;
	w->ud = ud;
	w->leaf.cd = (iconv_t)-1;
	w->nent = 1; /* the message itself */
	w->pstate = P_HDR;
	w->hkind = HK_START;
	return w;
}

void
mime_header(mime_walker *w, const char *name, const char *value)
{
	size_t nl, vl;

	if (!w || w->started || w->stopped || !name)
		return;
	if (!value)
		value = "";
	nl = strlen(name);
	vl = strlen(value);
	/* counted as the unfolded line "Name: value" and its CRLF */
	w->hlen = 0;
	if (!hdr_room(w, nl + 2 + vl, true) || !hdr_room(w, 2, false))
		return;
	hdr_field(w, name, nl, value, vl);
}

static void
mime_start(mime_walker *w)
{
	w->started = true;
	w->hlen = 0;
	ent_begin(w);
}

mime_status
mime_feed(mime_walker *w, const char *buf, size_t len)
{
	size_t room;
	bool over;

	if (!w)
		return MIME_NOMEM;
	if (w->stopped || w->finished)
		return status(w);
	if (!w->started)
		mime_start(w);
	room = w->lim.max_body_scan - w->scanned;
	over = len > room;
	if (over)
		len = room;
	w->scanned += len;
	if (len > 0 && !w->stopped)
		lines_feed(w, buf, len);
	if (over)
		hit(w, "MaxBodyScan");
	else if (!w->stopped)
		leaf_flush(w);
	return status(w);
}

mime_status
mime_finish(mime_walker *w)
{
	if (!w)
		return MIME_NOMEM;
	if (w->stopped || w->finished)
		return status(w);
	w->finished = true;
	if (!w->started)
		mime_start(w);
	if (!w->stopped)
		lines_eof(w);
	if (!w->stopped && w->pstate == P_HDR)
		hdr_end_abrupt(w);
	if (!w->stopped) {
		body_line_start(w);
		leaf_close(w);
	}
	while (w->nfr > 0)
		fr_pop(w);
	return status(w);
}

const char *
mime_limit_hit(const mime_walker *w)
{
	return w ? w->limit : NULL;
}

void
mime_free(mime_walker *w)
{
	if (!w)
		return;
	cd_give(&w->leaf);
	free(w->hbuf);
	free(w->fr);
	free(w->arena);
	free(bw_pool_give(&walkers, w));
}
