/*
 * test_mime.c - unit tests of the streaming MIME walker (policy/mime.c).
 *
 * Messages live in TEST_DATA/mime (one .eml file each): one per transfer encoding and per
 * charset, the structures a sender builds, malformed ones. Each is run with
 * its header block given through mime_header() and its body fed in chunks of
 * many sizes; the callbacks are written down as a transcript that must not
 * depend on the chunking. Short messages are also cut at every place (in
 * two and three pieces), and long QP, base64 and one-byte-charset bodies
 * are generated with the text they must give, to cross the decoder's
 * blocks and the edges of its fast paths.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

#ifndef TEST_DATA
#error "TEST_DATA must name the tests/data directory"
#endif
#define MIME_DATA TEST_DATA "/mime"
#define MAXPARTS 16

/* ------------------------------------------------------------- harness */

typedef struct buf {
	char *s;
	size_t len, cap;
} buf;

static void
buf_add(buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->s = realloc(b->s, cap);
		ck_assert_ptr_nonnull(b->s);
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void buf_addf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
buf_addf(buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	ck_assert(n >= 0 && (size_t)n < sizeof tmp);
	buf_add(b, tmp, (size_t)n);
}

typedef struct gpart {
	mime_part p;          /* as given to part_begin (strings copied below) */
	char type[128], charset[64], encoding[32], filename[256];
	bool has_filename;
	buf text;
	int ntext;            /* part_text calls */
	bool ended;
} gpart;

typedef struct got {
	gpart parts[MAXPARTS];
	int n;
	int open;             /* index of the open part, -1 */
	int errors;           /* callback protocol errors */
	buf log;              /* transcript, compared between chunkings */
	mime_status feed_st, finish_st;
	const char *limit;
} got;

static void
flags_of(const mime_part *p, char *out)
{
	char *o = out;

	if (p->attachment)
		*o++ = 'a';
	if (p->in_alternative)
		*o++ = 'i';
	if (p->in_rfc822)
		*o++ = 'r';
	if (p->view)
		*o++ = 'v';
	if (p->charset_unknown)
		*o++ = 'u';
	*o = '\0';
}

static void
cb_begin(void *ud, const mime_part *p)
{
	got *g = ud;
	gpart *gp;
	char fl[8];

	if (g->open != -1 || g->n >= MAXPARTS || p->index != g->n) {
		g->errors++;
		return;
	}
	gp = &g->parts[g->n];
	memset(gp, 0, sizeof *gp);
	gp->p = *p;
	snprintf(gp->type, sizeof gp->type, "%s", p->type);
	snprintf(gp->charset, sizeof gp->charset, "%s", p->charset);
	snprintf(gp->encoding, sizeof gp->encoding, "%s", p->encoding);
	gp->has_filename = p->filename != NULL;
	snprintf(gp->filename, sizeof gp->filename, "%s", p->filename ? p->filename : "");
	g->open = g->n++;
	flags_of(p, fl);
	buf_addf(&g->log, "B%d d=%d t=%s cs=%s enc=%s fn=%s fl=%s\n", p->index, p->depth, p->type,
	         p->charset, p->encoding, p->filename ? p->filename : "-", fl);
}

static void
cb_text(void *ud, const mime_part *p, const char *s, size_t n)
{
	got *g = ud;

	if (g->open == -1 || p->index != g->open || !p->type || strncmp(p->type, "text/", 5) != 0) {
		g->errors++;
		return;
	}
	buf_add(&g->parts[g->open].text, s, n);
	g->parts[g->open].ntext++;
	buf_add(&g->log, s, n);
}

static void
cb_end(void *ud, const mime_part *p)
{
	got *g = ud;

	if (g->open == -1 || p->index != g->open) {
		g->errors++;
		return;
	}
	g->parts[g->open].ended = true;
	g->open = -1;
	buf_addf(&g->log, "\nE%d\n", p->index);
}

static const mime_cb test_cb = { cb_begin, cb_text, cb_end };

static void
got_free(got *g)
{
	int i;

	for (i = 0; i < g->n; i++)
		free(g->parts[i].text.s);
	free(g->log.s);
	memset(g, 0, sizeof *g);
}

static char *
load(const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	char *s;
	long n;

	snprintf(path, sizeof path, "%s/%s", MIME_DATA, name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(s);
	ck_assert(fread(s, 1, (size_t)n, f) == (size_t)n);
	s[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return s;
}

/* Length of the line at s (without its end) and where the next one starts. */
static size_t
line_at(const char *s, size_t n, size_t *next)
{
	const char *nl = memchr(s, '\n', n);
	size_t len = nl ? (size_t)(nl - s) : n;

	*next = nl ? len + 1 : n;
	if (len > 0 && s[len - 1] == '\r')
		len--;
	return len;
}

/*
 * Give the header block to mime_header() the way an MTA does (unfolded,
 * value without the leading blank); returns the offset of the body.
 */
static size_t
give_headers(mime_walker *w, const char *m, size_t n)
{
	size_t off = 0;
	buf field = { 0 };

	for (;;) {
		size_t next, len = line_at(m + off, n - off, &next);
		const char *l = m + off;

		if (field.len > 0 && (len == 0 || (l[0] != ' ' && l[0] != '\t') || off >= n)) {
			char *colon = strchr(field.s, ':');
			if (colon) {
				char *v = colon + 1;
				*colon = '\0';
				while (*v == ' ' || *v == '\t')
					v++;
				mime_header(w, field.s, v);
			}
			field.len = 0;
		}
		if (off >= n)
			break;
		off += next;
		if (len == 0)
			break;
		buf_add(&field, l, len);
	}
	free(field.s);
	return off;
}

/*
 * Run a whole message: chunk 0 means one feed; with `seed`, chunks of 1 to
 * `chunk` bytes at random.
 */
static void
run_seeded(got *g, const char *m, size_t n, size_t chunk, unsigned *seed, const mime_limits *lim)
{
	mime_walker *w;
	size_t off;

	memset(g, 0, sizeof *g);
	g->open = -1;
	w = mime_new(lim, &test_cb, g);
	ck_assert_ptr_nonnull(w);
	off = give_headers(w, m, n);
	g->feed_st = MIME_OK;
	if (off == n)
		g->feed_st = mime_feed(w, "", 0);
	while (off < n) {
		size_t c = chunk;
		if (seed) {
			*seed = *seed * 1103515245u + 12345u;
			c = 1 + (*seed >> 16) % chunk;
		}
		if (c == 0 || c > n - off)
			c = n - off;
		g->feed_st = mime_feed(w, m + off, c);
		off += c;
	}
	g->finish_st = mime_finish(w);
	g->limit = mime_limit_hit(w);
	buf_addf(&g->log, "L=%s feed=%d finish=%d open=%d errors=%d\n", g->limit ? g->limit : "-",
	         (int)g->feed_st, (int)g->finish_st, g->open, g->errors);
	mime_free(w);
}

static void
run(got *g, const char *m, size_t n, size_t chunk, const mime_limits *lim)
{
	run_seeded(g, m, n, chunk, NULL, lim);
}

static void
run_file(got *g, const char *name, size_t chunk, const mime_limits *lim)
{
	size_t n;
	char *m = load(name, &n);

	run(g, m, n, chunk, lim);
	free(m);
}

/* ------------------------------------------------------------ expectations */

typedef struct xpart {
	const char *type;
	int depth;
	const char *flags;    /* letters: a attachment, i in_alternative, r in_rfc822,
	                         v view, u charset_unknown */
	const char *filename; /* NULL: none */
	const char *charset;  /* NULL: not checked */
	const char *encoding; /* NULL: not checked */
	const char *text;     /* NULL: no part_text at all (not a text part) */
} xpart;

typedef struct xmsg {
	const char *file;
	int nparts;
	xpart p[8];
} xmsg;

static void
check_parts(const got *g, const xmsg *x)
{
	int i;

	ck_assert_msg(g->errors == 0, "%s: callback protocol errors", x->file);
	ck_assert_msg(g->open == -1, "%s: part left open", x->file);
	ck_assert_int_eq(g->feed_st, MIME_OK);
	ck_assert_int_eq(g->finish_st, MIME_OK);
	ck_assert_ptr_null(g->limit);
	ck_assert_msg(g->n == x->nparts, "%s: %d parts, expected %d", x->file, g->n, x->nparts);
	for (i = 0; i < x->nparts; i++) {
		const gpart *gp = &g->parts[i];
		const xpart *xp = &x->p[i];
		char fl[8];

		flags_of(&gp->p, fl);
		ck_assert_msg(gp->ended, "%s part %d: no part_end", x->file, i);
		ck_assert_msg(strcmp(gp->type, xp->type) == 0, "%s part %d: type %s, expected %s", x->file, i,
		              gp->type, xp->type);
		ck_assert_msg(gp->p.depth == xp->depth, "%s part %d: depth %d, expected %d", x->file, i,
		              gp->p.depth, xp->depth);
		ck_assert_msg(strcmp(fl, xp->flags) == 0, "%s part %d: flags '%s', expected '%s'", x->file, i, fl,
		              xp->flags);
		if (xp->filename)
			ck_assert_msg(gp->has_filename && strcmp(gp->filename, xp->filename) == 0,
			              "%s part %d: filename '%s'", x->file, i, gp->filename);
		else
			ck_assert_msg(!gp->has_filename, "%s part %d: unexpected filename '%s'", x->file, i,
			              gp->filename);
		if (xp->charset)
			ck_assert_str_eq(gp->charset, xp->charset);
		if (xp->encoding)
			ck_assert_str_eq(gp->encoding, xp->encoding);
		if (xp->text) {
			ck_assert_msg(gp->text.len == strlen(xp->text) &&
			                  (gp->text.len == 0 || memcmp(gp->text.s, xp->text, gp->text.len) == 0),
			              "%s part %d: text\n[%s]\nexpected\n[%s]", x->file, i,
			              gp->text.s ? gp->text.s : "", xp->text);
		} else {
			ck_assert_msg(gp->ntext == 0, "%s part %d: text for a non-text part", x->file, i);
		}
	}
}

/* ------------------------------------------------------------- charsets */

typedef struct xcs {
	const char *file, *charset, *text;
	bool unknown;
} xcs;

static const xcs charsets[] = {
	{ "cs-utf-8.eml", "utf-8", "Se désabonner · Отписаться · 退订 · 登録を取り消す · 구독 해지 · 🙂\n", false },
	{ "cs-us-ascii.eml", "us-ascii",
	  "To stop these mails, unsubscribe at https://example.com/u?id=7\n"
	  "Mislabelled 8-bit: café and a stray \xEF\xBF\xBD byte.\n", false },
	/* iso-8859-1 is read as windows-1252: 0x93/0x94 are quotes */
	{ "cs-iso-8859-1.eml", "iso-8859-1", "Désinscription: à bientôt, Ærøskøbing ÿ “cité”\n", false },
	{ "cs-iso-8859-2.eml", "iso-8859-2", "Zrušit odběr; Wypisz się; Leiratkozás\n", false },
	{ "cs-iso-8859-3.eml", "iso-8859-3", "Malaboni: ĉ ĝ ĥ ĵ ŝ ŭ; Maltese ħ ż\n", false },
	{ "cs-iso-8859-4.eml", "iso-8859-4", "Atsisakyti prenumeratos: ą č ę ė į š ų ū ž\n", false },
	{ "cs-iso-8859-5.eml", "iso-8859-5", "Отписаться от рассылки\n", false },
	{ "cs-iso-8859-6.eml", "iso-8859-6", "إلغاء الاشتراك\n", false },
	{ "cs-iso-8859-7.eml", "iso-8859-7", "Διαγραφή από τη λίστα\n", false },
	{ "cs-iso-8859-8.eml", "iso-8859-8", "הסרה מרשימת התפוצה\n", false },
	{ "cs-iso-8859-9.eml", "iso-8859-9", "Abonelikten çık: ğ ı ş İ Ö\n", false },
	{ "cs-iso-8859-10.eml", "iso-8859-10", "Avslutt abonnement: ð þ ŋ ĸ ą\n", false },
	{ "cs-iso-8859-11.eml", "iso-8859-11", "ยกเลิกการสมัคร\n", false },
	{ "cs-iso-8859-13.eml", "iso-8859-13", "Atteikties: ā ē ī ū ļ ņ ķ ģ „teksts”\n", false },
	{ "cs-iso-8859-14.eml", "iso-8859-14", "Dad-danysgrifio: ŵ ŷ ẁ ẃ ḃ\n", false },
	{ "cs-iso-8859-15.eml", "iso-8859-15", "Se désabonner: 5 € œuvre Ÿ\n", false },
	{ "cs-iso-8859-16.eml", "iso-8859-16", "Dezabonare: ș ț ă î â „ghilimele”\n", false },
	{ "cs-windows-1250.eml", "windows-1250", "Wypisz się – „cudzysłów” Zrušit\n", false },
	{ "cs-windows-1251.eml", "windows-1251", "Отписаться — «рассылка» №5\n", false },
	{ "cs-windows-1252.eml", "windows-1252", "Se désabonner – “quotes” € …\n", false },
	{ "cs-windows-1253.eml", "windows-1253", "Διαγραφή — 5 €\n", false },
	{ "cs-windows-1254.eml", "windows-1254", "Abonelikten çık — ğ ş ı İ\n", false },
	{ "cs-windows-1255.eml", "windows-1255", "הסרה מרשימה ₪\n", false },
	{ "cs-windows-1256.eml", "windows-1256", "إلغاء الاشتراك — پ گ\n", false },
	{ "cs-windows-1257.eml", "windows-1257", "Atsisakyti – ą č ę ė į š ų ū ž\n", false },
	/* written with combining marks; iconv composes them (NFC) */
	{ "cs-windows-1258.eml", "windows-1258", "H\xE1\xBB\xA7y \xC4\x91\xC4\x83ng k\xC3\xBD\n", false },
	/* gb2312 and gbk are read as gb18030: 訂 is outside GB 2312 */
	{ "cs-gb2312.eml", "gb2312", "退订邮件，请点击这里 (GBK: 退訂)\n", false },
	{ "cs-gbk.eml", "gbk", "退訂電子報 退订\n", false },
	{ "cs-gb18030.eml", "gb18030", "退订 🙂 𠀀 € ·\n", false },
	/* big5 is read as Big5-HKSCS */
	{ "cs-big5.eml", "big5", "取消訂閱電子報 (HKSCS: 嘅)\n", false },
	/* read as cp932: '~' and '\' stay ASCII in URLs */
	{ "cs-shift_jis.eml", "shift_jis", "登録を取り消す https://example.com/~user/ ～\n", false },
	{ "cs-cp932.eml", "cp932", "① ② 登録解除 ㈱\n", false },
	{ "cs-euc-jp.eml", "euc-jp", "配信停止はこちら\n", false },
	{ "cs-iso-2022-jp.eml", "iso-2022-jp", "配信停止はこちら\nｱｲ kana\n", false },
	{ "cs-koi8-r.eml", "koi8-r", "Отписаться от рассылки\n", false },
	{ "cs-koi8-u.eml", "koi8-u", "Відписатися від розсилки: ґ є ї і\n", false },
	{ "cs-euc-kr.eml", "euc-kr", "구독 해지\n", false },
	/* ks_c_5601-1987 is read as cp949: 똠 is outside EUC-KR */
	{ "cs-ks_c_5601-1987.eml", "ks_c_5601-1987", "구독 해지 똠방각하\n", false },
	{ "cs-unknown.eml", "x-klingon-42",
	  "qapla' café \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD end\n€ ok\n", true },
};
#define NCHARSETS ((int)(sizeof charsets / sizeof charsets[0]))

START_TEST(charset_to_utf8)
{
	const xcs *c = &charsets[_i];
	xmsg x = { c->file, 1, { { "text/plain", 0, c->unknown ? "vu" : "v", NULL, c->charset, NULL, c->text } } };
	got g;

	run_file(&g, c->file, 0, NULL);
	check_parts(&g, &x);
	got_free(&g);
	/* every byte on its own: multibyte sequences split everywhere */
	run_file(&g, c->file, 1, NULL);
	check_parts(&g, &x);
	got_free(&g);
}
END_TEST

/* ----------------------------------------------- encodings and structures */

#define SP16  "                "
#define SP256 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16 SP16

static const xmsg messages[] = {
	{ "enc-7bit.eml", 1,
	  { { "text/plain", 0, "v", NULL, "", "7bit",
	      "Hello,\n\nTo unsubscribe visit https://example.com/unsub?u=1\n-- \nThe Example team\n" } } },
	{ "enc-8bit.eml", 1,
	  { { "text/html", 0, "v", NULL, "utf-8", "8bit",
	      "<html><body><p>Grüße aus Köln</p>\r\n"
	      "<a href=\"https://example.com/abmelden\">Abmelden</a></body></html>\r\n" } } },
	{ "enc-base64-lf.eml", 1,
	  { { "text/html", 0, "v", NULL, "utf-8", "base64",
	      "<p>Hello from a base64 part with LF line ends.</p>\n"
	      "<a href=\"https://example.com/unsubscribe?id=42\">Unsubscribe</a>\n" } } },
	{ "enc-base64-crlf.eml", 1,
	  { { "text/html", 0, "v", NULL, "utf-8", "base64",
	      "<p>Line one of a CRLF payload.</p>\r\n"
	      "<p>Line two: <a href=\"https://example.com/u?x=1&amp;y=2\">unsubscribe</a></p>\r\n" } } },
	{ "enc-qp-url.eml", 1,
	  { { "text/html", 0, "v", NULL, "utf-8", "quoted-printable",
	      "<p style=\"color:#333\">Grüße</p> \n"
	      "<a href=\"https://example.com/unsubscribe?list=news&amp;id=12345\">Unsubscribe</a>\n"
	      "Price: 5 €, invalid =ZZ and =4 escape, trailing space\n"
	      "soft break at end" } } },
	{ "struct-deep4.eml", 4,
	  { { "text/plain", 4, "iv", NULL, "utf-8", "7bit", "Plain view. Unsubscribe: https://example.com/u/1" },
	    { "text/html", 4, "iv", NULL, "utf-8", "quoted-printable",
	      "<p>HTML view <a href=\"https://example.com/u/1\">Unsubscribe</a></p>" },
	    { "image/png", 3, "", "logo.png", "", "base64", NULL },
	    { "application/pdf", 1, "a", "terms.pdf", "", "base64", NULL } } },
	{ "struct-alt-reversed.eml", 2,
	  { { "text/html", 1, "iv", NULL, "utf-8", "7bit",
	      "<p>HTML first. <a href=\"https://example.com/u/2\">Unsubscribe</a></p>" },
	    { "text/plain", 1, "iv", NULL, "utf-8", "7bit", "Text second. Unsubscribe: https://example.com/u/2" } } },
	{ "struct-attachments.eml", 7,
	  { { "text/plain", 2, "iv", NULL, "us-ascii", NULL, "Body text" },
	    { "text/html", 2, "iv", "body.html", "us-ascii", NULL, "<p>Body html</p>" },
	    { "text/plain", 1, "a", "notes.txt", "utf-8", NULL, "attached text" },
	    { "text/html", 1, "", "page.html", "utf-8", NULL, "<p>inline named html</p>" },
	    { "text/html", 1, "a", NULL, "", NULL, "<p>attached html without a name</p>" },
	    { "image/gif", 1, "", NULL, "", "base64", NULL },
	    { "text/plain", 1, "v", NULL, "", NULL,
	      "Footer added by the list: unsubscribe at https://lists.example.org/u" } } },
	{ "struct-rfc822.eml", 4,
	  { { "text/plain", 1, "v", NULL, "", NULL, "See the forwarded messages." },
	    { "text/plain", 3, "ir", NULL, "iso-8859-1", "quoted-printable", "Inner text café" },
	    { "text/html", 3, "ir", NULL, "", NULL, "<p>Inner html</p>" },
	    { "text/plain", 2, "r", NULL, "", NULL, "Inner single part body" } } },
	{ "struct-params.eml", 2,
	  { { "text/plain", 1, "iv", NULL, "utf-8", NULL,
	      "first\n--=_b 1?xyz stays text\n--=_b 1?x-- is no close either" },
	    { "text/html", 1, "iv", NULL, "utf-8", NULL, "<p>second</p>" } } },
	{ "struct-no-boundary.eml", 1,
	  { { "text/plain", 0, "v", NULL, "utf-8", NULL,
	      "--whatever\nRead as text: unsubscribe at https://example.com/u/3\n" } } },
	{ "bad-no-close.eml", 2,
	  { { "text/plain", 1, "iv", NULL, NULL, NULL, "first" },
	    { "text/html", 1, "iv", NULL, NULL, NULL, "<p>last part, never closed</p>\n" } } },
	/* escapes, soft breaks and line ends on both sides of each 16-byte step */
	{ "qp-edges.eml", 1,
	  { { "text/plain", 0, "v", NULL, "utf-8", "quoted-printable",
	      "0123456789abcd=xy, an escape at fourteen\n"
	      "0123456789abcde=xy, at fifteen\n"
	      "0123456789abcdef=xy, at sixteen\n"
	      "0123456789abcdefg=, at seventeen\n"
	      "a soft break after sixteen bytes; joined\n"
	      "trailing spaces are dropped\n"
	      "trailing tab and space dropped\n"
	      "encoded trailing space kept \n"
	      "soft break with white space after it; joined too\n"
	      "café, and one character split by a soft break é.\n"
	      "invalid: =4G, =A, =ZZ, = x, =\t y stay as they are\n"
	      "an escape cut by the line end =4\n"
	      "an escape cut by white space =4\n"
	      "CRLF line with trailing space\r\n"
	      "CRLF soft break; joined\r\n"
	      "lone CR\rin a line\n"
	      "white space then a lone CR \r kept\n"
	      /* white space is held back 256 bytes at most */
	      "long white space" SP256 "\n"
	      "long white space after =" SP256 "\n"
	      "last line without its end=" } } },
	/* lines beginning with '-' around a delimiter, LF and CRLF */
	{ "struct-dash-lines.eml", 2,
	  { { "text/plain", 1, "v", NULL, "", NULL,
	      "- one dash\n-- two dashes and a space\n--\n-\n---=\n---=bb is longer than the boundary\n"
	      "---=b- is no close\n---=b  \tx has more after it\na line" },
	    { "text/html", 1, "v", NULL, "", NULL, "<p>\r\n-\r\n--\r\n---=b-\r\n</p>" } } },
	{ "bad-base64-garbage.eml", 1, { { "text/plain", 0, "v", NULL, "utf-8", "base64", "Hello worldHi" } } },
	{ "bad-header-no-colon.eml", 3,
	  { { "text/html", 1, "v", NULL, "", NULL, "this line is no header\n<p>body</p>" },
	    { "text/plain", 1, "v", NULL, "", NULL, "Content-Type text/plain\nSubject: not reached\n\nsecond" },
	    { "text/plain", 1, "v", NULL, "utf-8", NULL, "third" } } },
	/* "--b64b" inside base64 lines is junk to the decoder: b64b = 6F AE 1B */
	{ "bad-boundary-in-base64.eml", 2,
	  { { "text/plain", 1, "v", NULL, "", "base64",
	      "Helloo\xEF\xBF\xBD\x1Bo\xEF\xBF\xBD\x1BHelloworld" },
	    { "text/plain", 1, "v", NULL, "", NULL, "after" } } },
};
#define NMESSAGES ((int)(sizeof messages / sizeof messages[0]))

START_TEST(message_parts)
{
	got g;

	run_file(&g, messages[_i].file, 0, NULL);
	check_parts(&g, &messages[_i]);
	got_free(&g);
}
END_TEST

START_TEST(large_alternative)
{
	got g;
	const gpart *t, *h;

	run_file(&g, "large-alternative.eml", 65535, NULL);
	ck_assert_int_eq(g.errors, 0);
	ck_assert_int_eq(g.n, 2);
	t = &g.parts[0];
	h = &g.parts[1];
	ck_assert_str_eq(t->type, "text/plain");
	ck_assert_str_eq(h->type, "text/html");
	ck_assert(t->p.view && h->p.view && t->p.in_alternative && h->p.in_alternative);
	ck_assert_uint_eq(t->text.len, 11444);
	ck_assert_uint_eq(h->text.len, 19828);
	ck_assert_ptr_nonnull(strstr(t->text.s, "Änderungen am Fahrplan: die Linie 12 fährt"));
	ck_assert_ptr_nonnull(strstr(t->text.s, "\nUnsubscribe: https://example.com/unsubscribe?u=abcdef0123456789"
	                                        "&list=weekly-news\n"));
	ck_assert_ptr_nonnull(strstr(h->text.s, "<a href=\"https://example.com/unsubscribe?u=abcdef0123456789"
	                                        "&amp;list=weekly-news\">Unsubscribe</a>"));
	ck_assert_str_eq(h->text.s + h->text.len - 8, "</html>\n");
	/* delivered per block, not per byte or line */
	ck_assert_int_le(h->ntext, 8);
	got_free(&g);
}
END_TEST

/* ------------------------------------------------------ chunk invariance */

static const size_t chunk_sizes[] = { 1, 2, 3, 7, 64, 4096, 65535 };

/* Every message of the data directory, read when the suite is built. */
static char **eml_files;
static int eml_count;

static void
list_messages(void)
{
	DIR *d = opendir(MIME_DATA);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		char **v;

		if (l < 5 || strcmp(e->d_name + l - 4, ".eml") != 0)
			continue;
		v = realloc(eml_files, (size_t)(eml_count + 1) * sizeof *v);
		if (!v)
			break;
		eml_files = v;
		eml_files[eml_count++] = strdup(e->d_name);
	}
	closedir(d);
}

static void
check_invariance(const char *name, const mime_limits *lim)
{
	got whole, g;
	size_t i, n;
	char *m = load(name, &n);
	unsigned seed = 12345;

	run(&whole, m, n, 0, lim);
	ck_assert_msg(whole.errors == 0, "%s: callback protocol errors", name);
	for (i = 0; i < sizeof chunk_sizes / sizeof chunk_sizes[0]; i++) {
		run(&g, m, n, chunk_sizes[i], lim);
		ck_assert_msg(g.log.len == whole.log.len && memcmp(g.log.s, whole.log.s, g.log.len) == 0,
		              "%s: chunks of %zu differ from one feed:\n%s\n---- whole:\n%s", name, chunk_sizes[i],
		              g.log.s, whole.log.s);
		got_free(&g);
	}
	/* and uneven chunks */
	for (i = 0; i < 20; i++) {
		run_seeded(&g, m, n, i < 10 ? 13 : 700, &seed, lim);
		ck_assert_msg(g.log.len == whole.log.len && memcmp(g.log.s, whole.log.s, g.log.len) == 0,
		              "%s: random chunking %zu differs:\n%s\n---- whole:\n%s", name, i, g.log.s,
		              whole.log.s);
		got_free(&g);
	}
	got_free(&whole);
	free(m);
}

START_TEST(chunk_invariance)
{
	ck_assert_int_ge(eml_count, NCHARSETS + NMESSAGES);
	ck_assert_ptr_nonnull(eml_files[_i]);
	check_invariance(eml_files[_i], NULL);
}
END_TEST

/* ------------------------------------------------------------------ limits */

typedef struct xlimit {
	const char *what, *file;
	mime_limits lim;
	const char *key;      /* NULL: no bound hit */
	int nparts;           /* parts begun (and ended) before the stop */
} xlimit;

static const xlimit limits[] = {
	{ "depth 4 fits", "struct-deep4.eml", { 4, 0, 0, 0, 0 }, NULL, 4 },
	{ "depth 3 is too little", "struct-deep4.eml", { 3, 0, 0, 0, 0 }, "MaxMimeDepth", 0 },
	{ "rfc822 counts as a level", "struct-rfc822.eml", { 2, 0, 0, 0, 0 }, "MaxMimeDepth", 1 },
	{ "9 entities fit", "struct-attachments.eml", { 0, 9, 0, 0, 0 }, NULL, 7 },
	{ "5 entities", "struct-attachments.eml", { 0, 5, 0, 0, 0 }, "MaxMimeParts", 3 },
	{ "top-level Content-Type line", "struct-deep4.eml", { 0, 0, 40, 0, 0 }, "MaxHeaderLine", 0 },
	{ "folded part header line", "struct-deep4.eml", { 0, 0, 70, 0, 0 }, "MaxHeaderLine", 0 },
	{ "longest header line fits", "struct-deep4.eml", { 0, 0, 84, 0, 0 }, NULL, 4 },
	{ "part header block", "struct-deep4.eml", { 0, 0, 0, 150, 0 }, "MaxHeaderBytes", 2 },
	{ "top-level header line", "enc-7bit.eml", { 0, 0, 20, 0, 0 }, "MaxHeaderLine", 0 },
	{ "body scan", "struct-deep4.eml", { 0, 0, 0, 0, 500 }, "MaxBodyScan", 1 },
	{ "body scan exact", "enc-7bit.eml", { 0, 0, 0, 0, 80 }, NULL, 1 },
	{ "body scan one short", "enc-7bit.eml", { 0, 0, 0, 0, 79 }, "MaxBodyScan", 1 },
};
#define NLIMITS ((int)(sizeof limits / sizeof limits[0]))

START_TEST(limit_hit)
{
	const xlimit *x = &limits[_i];
	got g;
	int i;

	run_file(&g, x->file, 0, &x->lim);
	ck_assert_msg(g.errors == 0 && g.open == -1, "%s: callbacks unbalanced", x->what);
	if (x->key) {
		ck_assert_msg(g.limit && strcmp(g.limit, x->key) == 0, "%s: limit %s, expected %s", x->what,
		              g.limit ? g.limit : "none", x->key);
		ck_assert_int_eq(g.feed_st, MIME_LIMIT);
		ck_assert_int_eq(g.finish_st, MIME_LIMIT);
	} else {
		ck_assert_msg(g.limit == NULL, "%s: unexpected limit %s", x->what, g.limit);
		ck_assert_int_eq(g.finish_st, MIME_OK);
	}
	ck_assert_msg(g.n == x->nparts, "%s: %d parts, expected %d", x->what, g.n, x->nparts);
	for (i = 0; i < g.n; i++)
		ck_assert(g.parts[i].ended);
	got_free(&g);
	check_invariance(x->file, &x->lim);
}
END_TEST

START_TEST(limit_body_scan_text)
{
	/* the text stops exactly at the bound, whatever the chunking */
	static const char m[] = "Content-Type: text/plain\n\n0123456789abcdefghij";
	mime_limits lim = { 0, 0, 0, 0, 10 };
	size_t c;

	for (c = 0; c < 4; c++) {
		got g;
		run(&g, m, sizeof m - 1, c, &lim);
		ck_assert_str_eq(g.limit, "MaxBodyScan");
		ck_assert_int_eq(g.n, 1);
		ck_assert_str_eq(g.parts[0].text.s, "0123456789");
		ck_assert(g.parts[0].ended);
		got_free(&g);
	}
}
END_TEST

START_TEST(limit_after_hit_ignored)
{
	mime_limits lim = { 0, 0, 0, 0, 4 };
	got g;
	mime_walker *w;

	memset(&g, 0, sizeof g);
	g.open = -1;
	w = mime_new(&lim, &test_cb, &g);
	ck_assert_int_eq(mime_feed(w, "abcdef", 6), MIME_LIMIT);
	ck_assert_int_eq(mime_feed(w, "more", 4), MIME_LIMIT);
	ck_assert_int_eq(mime_finish(w), MIME_LIMIT);
	ck_assert_str_eq(mime_limit_hit(w), "MaxBodyScan");
	ck_assert_int_eq(g.n, 1);
	ck_assert_str_eq(g.parts[0].text.s, "abcd");
	mime_free(w);
	got_free(&g);
}
END_TEST

START_TEST(limit_many_parts_and_deep_nesting)
{
	/* 100000 empty parts and 10000 nested multiparts: bounded, no crash */
	buf b = { 0 };
	got g;
	int i;
	mime_limits lim = { 0 };

	buf_addf(&b, "Content-Type: multipart/mixed; boundary=p\n\n");
	for (i = 0; i < 100000; i++)
		buf_addf(&b, "--p\n\n");
	run(&g, b.s, b.len, 4096, &lim);
	ck_assert_str_eq(g.limit, "MaxMimeParts");
	ck_assert_int_eq(g.n, MAXPARTS); /* the harness keeps 16; more were begun */
	got_free(&g);
	b.len = 0;
	buf_addf(&b, "Content-Type: multipart/mixed; boundary=d0\n\n");
	for (i = 1; i < 10000; i++)
		buf_addf(&b, "--d%d\nContent-Type: multipart/mixed; boundary=d%d\n\n", i - 1, i);
	run(&g, b.s, b.len, 0, &lim);
	ck_assert_str_eq(g.limit, "MaxMimeDepth");
	ck_assert_int_eq(g.n, 0);
	got_free(&g);
	free(b.s);
}
END_TEST

/* ------------------------------------------------------- inline messages */

typedef struct xinline {
	const char *what, *msg;
	int nparts;
	xpart p[3];
} xinline;

static const xinline inlines[] = {
	{ "no headers at all: text/plain", "\nplain body\n", 1,
	  { { "text/plain", 0, "v", NULL, "", "7bit", "plain body\n" } } },
	{ "invalid Content-Type: text/plain", "Content-Type: garbage\n\nx", 1,
	  { { "text/plain", 0, "v", NULL, "", NULL, "x" } } },
	{ "comment after the type", "Content-Type: text/html (a comment); charset=utf-8\n\n<p>", 1,
	  { { "text/html", 0, "v", NULL, "utf-8", NULL, "<p>" } } },
	{ "empty boundary: one text part", "Content-Type: multipart/mixed; boundary=\"\"\n\n--\nx\n", 1,
	  { { "text/plain", 0, "v", NULL, "", NULL, "--\nx\n" } } },
	{ "named single part is no view", "Content-Type: text/html; name=\"a.html\"\n\n<p>x</p>", 1,
	  { { "text/html", 0, "", "a.html", "", NULL, "<p>x</p>" } } },
	{ "attachment single part", "Content-Disposition: attachment\n\nx", 1,
	  { { "text/plain", 0, "a", NULL, "", NULL, "x" } } },
	{ "RFC 2231 filename", "Content-Type: text/plain\n"
	  "Content-Disposition: attachment; filename*0*=utf-8''r%C3%A9; filename*1=\"sum\\\"e.txt\"\n\nx", 1,
	  { { "text/plain", 0, "a", "ré" "sum\"e.txt", "", NULL, "x" } } },
	{ "first Content-Type wins", "Content-Type: text/html\nContent-Type: text/plain\n\nx", 1,
	  { { "text/html", 0, "v", NULL, "", NULL, "x" } } },
	{ "text/calendar is text but no view", "Content-Type: text/calendar\n\nBEGIN", 1,
	  { { "text/calendar", 0, "", NULL, "", NULL, "BEGIN" } } },
	{ "digest children are messages",
	  "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nfirst\n--d\n"
	  "Content-Type: text/plain\n\nsecond\n--d--\n", 2,
	  { { "text/plain", 2, "r", NULL, "", NULL, "first" }, { "text/plain", 1, "v", NULL, "", NULL, "second" } } },
	{ "base64 message/rfc822 is opaque",
	  "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeAoKeQo=\n", 1,
	  { { "message/rfc822", 0, "", NULL, "", "base64", NULL } } },
	{ "top-level message/rfc822", "Content-Type: message/rfc822\n\nSubject: x\nContent-Type: text/html\n\n<p>", 1,
	  { { "text/html", 1, "r", NULL, "", NULL, "<p>" } } },
	{ "part headers end at a delimiter",
	  "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/html\n--b\n\nz\n--b--", 2,
	  { { "text/html", 1, "v", NULL, "", NULL, "" }, { "text/plain", 1, "v", NULL, "", NULL, "z" } } },
	{ "inner delimiter right after the part headers",
	  "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/alternative; boundary=i\n"
	  "--i\n\nalt text\n--i--\n--o--\n", 1,
	  { { "text/plain", 2, "iv", NULL, "", NULL, "alt text" } } },
	{ "outer delimiter closes an unclosed inner multipart",
	  "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/alternative; boundary=i\n\n"
	  "--i\n\ninner\n--o\n\nouter\n--o--\n", 2,
	  { { "text/plain", 2, "iv", NULL, "", NULL, "inner" }, { "text/plain", 1, "v", NULL, "", NULL, "outer" } } },
	{ "line beginning with '-' before a delimiter, CRLF",
	  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n-- \r\nsig\r\n- x\r\n--b--\r\n", 1,
	  { { "text/plain", 1, "v", NULL, "", NULL, "-- \r\nsig\r\n- x" } } },
	{ "alternative inherited through related",
	  "Content-Type: multipart/alternative; boundary=a\n\n--a\n\nplain\n--a\n"
	  "Content-Type: multipart/related; boundary=r\n\n--r\nContent-Type: text/html; name=x.html\n\n<p>\n"
	  "--r\nContent-Type: image/png\n\n--r--\n--a--\n", 3,
	  { { "text/plain", 1, "iv", NULL, "", NULL, "plain" }, { "text/html", 2, "iv", "x.html", "", NULL, "<p>" },
	    { "image/png", 2, "i", NULL, "", NULL, NULL } } },
	{ "stateful decoder flushed at the end of the part",
	  "Content-Type: text/plain; charset=windows-1258\n\nabc", 1,
	  { { "text/plain", 0, "v", NULL, "windows-1258", NULL, "abc" } } },
	{ "CRLF split from its LF and a lone CR kept",
	  "Content-Type: text/plain\r\n\r\na\rb\r\nc\r\n", 1,
	  { { "text/plain", 0, "v", NULL, "", NULL, "a\rb\r\nc\r\n" } } },
	{ "delimiter at the very end without a line end",
	  "Content-Type: multipart/mixed; boundary=e\n\n--e\n\nlast\n--e--", 1,
	  { { "text/plain", 1, "v", NULL, "", NULL, "last" } } },
	{ "QP soft break with white space after the =",
	  "Content-Type: text/plain\nContent-Transfer-Encoding: Quoted-Printable\n\nab= \t\r\ncd=\r\n=3d", 1,
	  { { "text/plain", 0, "v", NULL, "", "quoted-printable", "abcd=" } } },
	{ "base64 concatenated padded pieces",
	  "Content-Type: text/plain\nContent-Transfer-Encoding: BASE64\n\nYQ==Yg==\nYw", 1,
	  { { "text/plain", 0, "v", NULL, "", "base64", "abc" } } },
	{ "unsafe charset name is unknown",
	  "Content-Type: text/plain; charset=\"utf-8//TRANSLIT\"\n\nok \xff", 1,
	  { { "text/plain", 0, "vu", NULL, "utf-8//translit", NULL, "ok \xEF\xBF\xBD" } } },
	{ "invalid sequence in a known charset",
	  "Content-Type: text/plain; charset=euc-jp\n\n\xC7\xDB\xFF\xBF\xAEx", 1,
	  { { "text/plain", 0, "v", NULL, "euc-jp", NULL, "配\xEF\xBF\xBD信x" } } },
	{ "truncated multibyte at the end of a part",
	  "Content-Type: text/plain; charset=gb18030\n\nab\x81\x30", 1,
	  { { "text/plain", 0, "v", NULL, "gb18030", NULL, "ab\xEF\xBF\xBD" } } },
};
#define NINLINES ((int)(sizeof inlines / sizeof inlines[0]))

START_TEST(inline_messages)
{
	const xinline *x = &inlines[_i];
	xmsg xm;
	size_t c;

	memset(&xm, 0, sizeof xm);
	xm.file = x->what;
	xm.nparts = x->nparts;
	memcpy(xm.p, x->p, sizeof x->p);
	for (c = 0; c < 4; c++) {
		got g;
		run(&g, x->msg, strlen(x->msg), c, NULL);
		check_parts(&g, &xm);
		got_free(&g);
	}
}
END_TEST

/* a walker of a message whose Content-Type is ctype, writing to g */
static mime_walker *
walker_of(got *g, const char *ctype)
{
	mime_walker *w;

	memset(g, 0, sizeof *g);
	g->open = -1;
	w = mime_new(NULL, &test_cb, g);
	ck_assert_ptr_nonnull(w);
	mime_header(w, "Content-Type", ctype);
	return w;
}

START_TEST(api_edges)
{
	mime_walker *w;
	got g;

	/* no callbacks at all */
	w = mime_new(NULL, NULL, NULL);
	ck_assert_ptr_nonnull(w);
	mime_header(w, "Content-Type", "multipart/mixed; boundary=x");
	ck_assert_int_eq(mime_feed(w, "--x\n\nhello\n--x--\n", 17), MIME_OK);
	ck_assert_int_eq(mime_finish(w), MIME_OK);
	ck_assert_int_eq(mime_finish(w), MIME_OK);
	ck_assert_int_eq(mime_feed(w, "late", 4), MIME_OK);
	ck_assert_ptr_null(mime_limit_hit(w));
	mime_free(w);
	mime_free(NULL);

	/* finish without any feed: one empty text part */
	w = walker_of(&g, "text/html");
	ck_assert_int_eq(mime_finish(w), MIME_OK);
	ck_assert_int_eq(g.n, 1);
	ck_assert(g.parts[0].ended);
	ck_assert_uint_eq(g.parts[0].text.len, 0);
	mime_free(w);
	got_free(&g);

	/* freed in the middle of a part: no callback, no leak */
	w = walker_of(&g, "text/plain; charset=iso-2022-jp");
	ck_assert_int_eq(mime_feed(w, "\033$B", 3), MIME_OK);
	mime_free(w);
	ck_assert_int_eq(g.open, 0);
	got_free(&g);

	/* converters are kept for the next part in their charset: one left
	 * shifted to JIS X 0208 (a part cut short after a block of kanji was
	 * converted) comes back in its initial state, so "ab" is ASCII, not
	 * one kanji */
	{
		static char jis[12000];
		size_t n;

		memcpy(jis, "x\033$B", 4);
		for (n = 4; n + 2 <= sizeof jis; n += 2)
			jis[n] = 0x30, jis[n + 1] = 0x21;
		w = walker_of(&g, "text/plain; charset=iso-2022-jp");
		ck_assert_int_eq(mime_feed(w, jis, n), MIME_OK);
		ck_assert_uint_gt(g.parts[0].text.len, 8000);  /* converted */
		mime_free(w);
		got_free(&g);
		w = walker_of(&g, "text/plain; charset=iso-2022-jp");
		ck_assert_int_eq(mime_feed(w, "ab", 2), MIME_OK);
		ck_assert_int_eq(mime_finish(w), MIME_OK);
		ck_assert_int_eq(g.n, 1);
		ck_assert_str_eq(g.parts[0].text.s, "ab");
		mime_free(w);
		got_free(&g);
	}
}
END_TEST

/* -------------------------------------------- every split of a message */

/* The body of m fed in pieces cut at cuts[0..ncuts) (offsets into the body). */
static void
run_cut(got *g, const char *m, size_t n, const size_t *cuts, int ncuts)
{
	mime_walker *w;
	size_t off, at;
	int i;

	memset(g, 0, sizeof *g);
	g->open = -1;
	w = mime_new(NULL, &test_cb, g);
	ck_assert_ptr_nonnull(w);
	off = give_headers(w, m, n);
	g->feed_st = MIME_OK;
	for (i = 0, at = off; i <= ncuts; i++) {
		size_t end = i < ncuts ? off + cuts[i] : n;
		g->feed_st = mime_feed(w, m + at, end - at);
		at = end;
	}
	g->finish_st = mime_finish(w);
	g->limit = mime_limit_hit(w);
	buf_addf(&g->log, "L=%s feed=%d finish=%d open=%d errors=%d\n", g->limit ? g->limit : "-",
	         (int)g->feed_st, (int)g->finish_st, g->open, g->errors);
	mime_free(w);
}

static const struct {
	const char *what, *msg, *text0; /* the text of part 0 */
} splits[] = {
	{ "QP escapes, soft breaks and white space at the edges",
	  "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
	  "0123456789abcdef=3D=\n0123456789abcde =\r\n  x \t\r\ny=C3=A9z=\n=41 \n=\n",
	  "0123456789abcdef=0123456789abcde   x\r\nyézA\n" },
	{ "lines beginning with '-' and delimiters",
	  "Content-Type: multipart/mixed; boundary=b\n\n--b\n\n0123456789abcdef\n-\n--\n--b-\n--bx\n-- b\n"
	  "0123456789abcdef0123\r\n--b \r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	  "q=\r\n--b--\r\nepilogue\n--b\n",
	  "0123456789abcdef\n-\n--\n--b-\n--bx\n-- b\n0123456789abcdef0123" },
	{ "base64 of windows-1252",
	  "Content-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: base64\n\n"
	  "MDEyMzQ1Njc4OWFiY2Rl\nZumAIDAxMjM0NTY3ODlh\nYmNkZWZnaGlqgQ==\n",
	  "0123456789abcdefé€ 0123456789abcdefghij\xEF\xBF\xBD" },
};
#define NSPLITS ((int)(sizeof splits / sizeof splits[0]))

START_TEST(split_everywhere)
{
	const char *m = splits[_i].msg;
	size_t n = strlen(m), len, a, b;
	mime_walker *w = mime_new(NULL, NULL, NULL);
	got whole, g;

	len = n - give_headers(w, m, n); /* of the body */
	mime_free(w);
	run_cut(&whole, m, n, NULL, 0);
	ck_assert_msg(whole.n >= 1 && strcmp(whole.parts[0].text.s ? whole.parts[0].text.s : "", splits[_i].text0) == 0,
	              "%s: text\n[%s]", splits[_i].what, whole.parts[0].text.s ? whole.parts[0].text.s : "");
	/* in two pieces, and in three */
	for (a = 0; a <= len; a++) {
		for (b = a; b <= len; b++) {
			size_t cuts[2] = { a, b };
			run_cut(&g, m, n, cuts, b == a ? 1 : 2);
			ck_assert_msg(g.log.len == whole.log.len && memcmp(g.log.s, whole.log.s, g.log.len) == 0,
			              "%s: cut at %zu and %zu:\n%s\n---- whole:\n%s", splits[_i].what, a, b, g.log.s,
			              whole.log.s);
			got_free(&g);
		}
	}
	got_free(&whole);
}
END_TEST

/* ------------------------------------------ generated long bodies */

/*
 * Bodies of some 20 KB built piece by piece together with the text they
 * must decode to: long enough to cross the decoder's blocks, fed in chunks
 * around its 16-byte steps and 8 KB blocks. A tiny generator of its own
 * keeps them the same on every run.
 */
typedef struct gen {
	buf msg;           /* the message */
	buf text;          /* the text of its first part */
	unsigned seed;
	size_t line_ws;    /* literal white space ending the QP line so far */
} gen;

static unsigned
gen_rand(gen *g, unsigned n)
{
	g->seed = g->seed * 1103515245u + 12345u;
	return (g->seed >> 16) % n;
}

static void
gen_both(gen *g, const char *enc, const char *dec)
{
	buf_add(&g->msg, enc, strlen(enc));
	buf_add(&g->text, dec, strlen(dec));
}

/* A QP line end: the literal white space before it is dropped. */
static void
gen_qp_eol(gen *g, const char *eol)
{
	g->text.len -= g->line_ws;
	g->line_ws = 0;
	gen_both(g, eol, eol);
}

static const size_t gen_chunks[] = { 0, 1, 3, 15, 16, 17, 100, 4096, 8191, 8193 };

/* Part 0 of g's message gives g's text whatever the chunking. */
static void
gen_check(const char *what, const gen *g, const char *type)
{
	size_t i;
	unsigned seed = 99;

	for (i = 0; i < sizeof gen_chunks / sizeof gen_chunks[0] + 6; i++) {
		got r;
		if (i < sizeof gen_chunks / sizeof gen_chunks[0])
			run(&r, g->msg.s, g->msg.len, gen_chunks[i], NULL);
		else
			run_seeded(&r, g->msg.s, g->msg.len, i % 2 ? 40 : 3000, &seed, NULL);
		ck_assert_msg(r.errors == 0 && r.open == -1 && r.limit == NULL, "%s: callbacks or limit", what);
		ck_assert_msg(r.n >= 1 && strcmp(r.parts[0].type, type) == 0, "%s: no %s part", what, type);
		ck_assert_msg(r.parts[0].text.len == g->text.len &&
		                  memcmp(r.parts[0].text.s, g->text.s, g->text.len) == 0,
		              "%s, chunks of %zu: text differs (%zu bytes, expected %zu)", what,
		              i < sizeof gen_chunks / sizeof gen_chunks[0] ? gen_chunks[i] : 0,
		              r.parts[0].text.len, g->text.len);
		got_free(&r);
	}
}

/* Plain QP bytes: letters, digits, punctuation, spaces; no '='. */
static void
gen_qp_plain(gen *g, size_t n)
{
	static const char set[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 <>\"/:;.,-_?&#%\t";
	char tmp[2];

	tmp[1] = '\0';
	while (n-- > 0) {
		tmp[0] = set[gen_rand(g, sizeof set - 1)];
		gen_both(g, tmp, tmp);
		g->line_ws = (tmp[0] == ' ' || tmp[0] == '\t') ? g->line_ws + 1 : 0;
	}
}

static void
gen_qp(gen *g, bool crlf)
{
	const char *eol = crlf ? "\r\n" : "\n";

	buf_addf(&g->msg, "Content-Type: multipart/alternative; boundary=\"=_gen_=\"%s%s--=_gen_=%s"
	         "Content-Type: text/plain; charset=utf-8%sContent-Transfer-Encoding: quoted-printable%s%s",
	         eol, eol, eol, eol, eol, eol);
	while (g->text.len < 20000) {
		switch (gen_rand(g, 12)) {
		case 0:
			gen_qp_plain(g, 1 + gen_rand(g, 20));
			break;
		case 1:
			gen_qp_plain(g, 20 + gen_rand(g, 80));
			break;
		case 2: /* escapes, either case; multibyte ones may be cut by a soft break */
			gen_both(g, "=3D", "=");
			gen_both(g, gen_rand(g, 2) ? "=C3=A9" : "=c3=A9", "é");
			gen_both(g, "=E2=82=AC", "€");
			g->line_ws = 0;
			break;
		case 3: /* encoded white space is no trailing white space */
			if (gen_rand(g, 2))
				gen_both(g, "=20", " ");
			else
				gen_both(g, "=09", "\t");
			g->line_ws = 0;
			break;
		case 4: /* soft breaks, some with white space after the '=' */
			gen_both(g, gen_rand(g, 3) ? "=" : "= \t", "");
			gen_both(g, eol, "");
			g->line_ws = 0;
			break;
		case 5:
		case 6:
			gen_qp_eol(g, eol);
			break;
		case 7: /* white space at the end of a line */
			gen_qp_plain(g, 1 + gen_rand(g, 3));
			gen_both(g, " \t ", " \t ");
			g->line_ws += 3;
			gen_qp_eol(g, eol);
			break;
		case 8: /* invalid escapes stay */
			if (gen_rand(g, 2))
				gen_both(g, "=ZZ", "=ZZ");
			else
				gen_both(g, "=4G", "=4G");
			g->line_ws = 0;
			break;
		case 9: /* a lone CR */
			gen_both(g, "x\ry", "x\ry");
			g->line_ws = 0;
			break;
		case 10:
			if (gen_rand(g, 8) == 0)
				gen_qp_plain(g, 3000); /* a long line */
			break;
		default: { /* lines beginning with '-' */
			const char *dash = gen_rand(g, 2) ? "--" : "-";
			gen_qp_eol(g, eol);
			gen_both(g, dash, dash);
			gen_qp_plain(g, 1 + gen_rand(g, 10));
			break;
		}
		}
	}
	gen_both(g, "END", "END");
	buf_addf(&g->msg, "%s--=_gen_=%sContent-Type: text/html%s%s<p>%s--=_gen_=--%s", eol, eol, eol, eol, eol, eol);
}

START_TEST(qp_generated)
{
	gen g;
	int crlf;

	for (crlf = 0; crlf < 2; crlf++) {
		memset(&g, 0, sizeof g);
		g.seed = 7u + (unsigned)crlf;
		gen_qp(&g, crlf);
		gen_check(crlf ? "generated QP, CRLF" : "generated QP, LF", &g, "text/plain");
		free(g.msg.s);
		free(g.text.s);
	}
}
END_TEST

/*
 * Base64 of s[0..n) into g's message, padded, in lines of `width` letters,
 * now and then a byte out of the alphabet (skipped by the decoder).
 */
static void
gen_b64_encode(gen *g, const unsigned char *s, size_t n, unsigned width, const char *eol)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned col = 0;
	size_t i;

	for (i = 0; i < n; i += 3) {
		uint32_t q = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
		             (i + 2 < n ? s[i + 2] : 0);
		char quad[4] = { al[q >> 18], al[q >> 12 & 63], i + 1 < n ? al[q >> 6 & 63] : '=',
			         i + 2 < n ? al[q & 63] : '=' };
		int k;

		for (k = 0; k < 4; k++) {
			buf_add(&g->msg, &quad[k], 1);
			if (++col == width) {
				buf_add(&g->msg, eol, strlen(eol));
				col = 0;
			}
		}
		if (gen_rand(g, 50) == 0)
			buf_add(&g->msg, "*\t ", 1 + gen_rand(g, 3));
	}
	buf_add(&g->msg, eol, strlen(eol));
}

START_TEST(base64_generated)
{
	/* line widths that are and are not multiples of four */
	static const unsigned widths[] = { 76, 64, 77, 4, 1, 1000000 };
	unsigned k;

	for (k = 0; k < sizeof widths / sizeof widths[0]; k++) {
		const char *eol = k % 2 ? "\r\n" : "\n";
		gen g;
		size_t done = 0;
		char what[64];

		memset(&g, 0, sizeof g);
		g.seed = 11u + k;
		buf_addf(&g.msg, "Content-Type: text/html; charset=utf-8%sContent-Transfer-Encoding: base64%s%s", eol,
		         eol, eol);
		while (g.text.len < 20000) {
			static const char *const bits[] = { "<p>", "Grüße", "€", "a", "\r\n", "unsubscribe", " " };
			const char *b = bits[gen_rand(&g, sizeof bits / sizeof bits[0])];
			buf_add(&g.text, b, strlen(b));
			/* now and then a padded piece of its own: '=' ends a quad */
			if (gen_rand(&g, 200) == 0) {
				gen_b64_encode(&g, (const unsigned char *)g.text.s + done, g.text.len - done, widths[k], eol);
				done = g.text.len;
			}
		}
		gen_b64_encode(&g, (const unsigned char *)g.text.s + done, g.text.len - done, widths[k], eol);
		snprintf(what, sizeof what, "generated base64, lines of %u", widths[k]);
		gen_check(what, &g, "text/html");
		free(g.msg.s);
		free(g.text.s);
	}
}
END_TEST

/*
 * One-byte charsets: ASCII runs of every length around the 8- and 32-byte
 * steps between other bytes (unmapped ones included) give what iconv gives
 * for the whole text at once, an invalid byte replaced by U+FFFD.
 */
static void
iconv_whole(const char *conv, const char *s, size_t n, buf *out)
{
	iconv_t cd = iconv_open("UTF-8", conv);
	char *in = (char *)s;
	size_t inl = n;

	ck_assert_msg(cd != (iconv_t)-1, "iconv cannot open %s", conv);
	while (inl > 0) {
		char tmp[4096], *o = tmp;
		size_t ol = sizeof tmp;
		size_t r = iconv(cd, &in, &inl, &o, &ol);

		buf_add(out, tmp, (size_t)(o - tmp));
		if (r == (size_t)-1 && errno == EILSEQ) {
			buf_add(out, "\xEF\xBF\xBD", 3);
			in++;
			inl--;
		} else {
			ck_assert_msg(r != (size_t)-1 || errno == E2BIG, "iconv %s: %s", conv, strerror(errno));
		}
	}
	iconv_close(cd);
}

/* Quoted-printable of s[0..n): soft breaks after 70 columns. */
static void
gen_qp_encode(buf *out, const unsigned char *s, size_t n)
{
	size_t i, col = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\n') {
			buf_add(out, "\n", 1);
			col = 0;
			continue;
		}
		if (col >= 70) {
			buf_add(out, "=\n", 2);
			col = 0;
		}
		if (s[i] >= 0x80 || s[i] == '=') {
			buf_addf(out, "=%02X", s[i]);
			col += 3;
		} else {
			buf_add(out, (const char *)&s[i], 1);
			col++;
		}
	}
}

START_TEST(charset_8bit_runs)
{
	static const struct {
		const char *label, *conv;
	} cs[] = {
		{ "windows-1252", "CP1252" }, { "iso-8859-1", "CP1252" }, { "iso-8859-2", "ISO-8859-2" },
		{ "iso-8859-15", "ISO-8859-15" }, { "koi8-r", "KOI8-R" }, { "windows-1251", "CP1251" },
		{ "windows-1257", "CP1257" }, { "iso-8859-7", "ISO-8859-7" },
	};
	static const char *const encodings[] = { "8bit", "quoted-printable", "base64" };
	static const size_t runs[] = { 0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 300 };
	size_t k, e;

	for (k = 0; k < sizeof cs / sizeof cs[0]; k++) {
		for (e = 0; e < sizeof encodings / sizeof encodings[0]; e++) {
			gen g;
			buf raw = { 0 };
			char what[64];
			size_t i = 0, off;

			memset(&g, 0, sizeof g);
			g.seed = 5u + (unsigned)k;
			buf_addf(&g.msg, "Content-Type: text/plain; charset=%s\nContent-Transfer-Encoding: %s\n\n",
			         cs[k].label, encodings[e]);
			while (raw.len < 20000) {
				size_t n = runs[i++ % (sizeof runs / sizeof runs[0])], j;
				unsigned char hi = (unsigned char)(0x80 + gen_rand(&g, 128));

				for (j = 0; j < n; j++) {
					char c = (char)('a' + (j + raw.len) % 26);
					buf_add(&raw, j % 61 == 60 ? "\n" : &c, 1);
				}
				for (j = gen_rand(&g, 4); j-- > 0; hi++)
					buf_add(&raw, (const char *)&hi, 1);
			}
			buf_add(&raw, "\xE9", 1); /* the part ends in a byte that is no ASCII */
			if (e == 0)
				buf_add(&g.msg, raw.s, raw.len);
			else if (e == 1)
				gen_qp_encode(&g.msg, (const unsigned char *)raw.s, raw.len);
			else /* in padded pieces: the decoded block fills unevenly */
				for (off = 0; off < raw.len; off += 100) {
					size_t n = raw.len - off < 100 ? raw.len - off : 100;
					size_t m = n > 2 ? gen_rand(&g, 3) : 0;
					gen_b64_encode(&g, (const unsigned char *)raw.s + off, n - m, 76, "\n");
					gen_b64_encode(&g, (const unsigned char *)raw.s + off + n - m, m, 76, "\n");
				}
			iconv_whole(cs[k].conv, raw.s, raw.len, &g.text);
			snprintf(what, sizeof what, "%s, %s", cs[k].label, encodings[e]);
			gen_check(what, &g, "text/plain");
			free(raw.s);
			free(g.msg.s);
			free(g.text.s);
		}
	}
}
END_TEST

/* --------------------------------------------------------------- threads */

static void *
thread_walk(void *arg)
{
	const char *name = arg;
	int k;

	for (k = 0; k < 20; k++) {
		got a, b;
		run_file(&a, name, 0, NULL);
		run_file(&b, name, 3, NULL);
		if (a.log.len != b.log.len || memcmp(a.log.s, b.log.s, a.log.len) != 0)
			return (void *)1;
		got_free(&a);
		got_free(&b);
	}
	return NULL;
}

START_TEST(threads)
{
	static const char *files[] = { "large-alternative.eml", "cs-iso-2022-jp.eml", "cs-gb18030.eml",
		                       "struct-rfc822.eml" };
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, thread_walk, (void *)files[i]), 0);
	for (i = 0; i < 4; i++) {
		void *r;
		ck_assert_int_eq(pthread_join(t[i], &r), 0);
		ck_assert_ptr_null(r);
	}
}
END_TEST

static Suite *
mime_suite(void)
{
	Suite *s = suite_create("mime");
	TCase *tc;

	tc = tcase_create("charsets");
	tcase_add_loop_test(tc, charset_to_utf8, 0, NCHARSETS);
	suite_add_tcase(s, tc);

	tc = tcase_create("messages");
	tcase_add_loop_test(tc, message_parts, 0, NMESSAGES);
	tcase_add_loop_test(tc, inline_messages, 0, NINLINES);
	tcase_add_test(tc, large_alternative);
	tcase_add_test(tc, api_edges);
	suite_add_tcase(s, tc);

	tc = tcase_create("chunking");
	tcase_set_timeout(tc, 120);
	list_messages();
	/* at least one run, which fails when the directory cannot be read */
	tcase_add_loop_test(tc, chunk_invariance, 0, eml_count > 0 ? eml_count : 1);
	tcase_add_test(tc, threads);
	tcase_add_loop_test(tc, split_everywhere, 0, NSPLITS);
	tcase_add_test(tc, qp_generated);
	tcase_add_test(tc, base64_generated);
	tcase_add_test(tc, charset_8bit_runs);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, limit_hit, 0, NLIMITS);
	tcase_add_test(tc, limit_body_scan_text);
	tcase_add_test(tc, limit_after_hit_ignored);
	tcase_add_test(tc, limit_many_parts_and_deep_nesting);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(mime_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	while (eml_count > 0)
		free(eml_files[--eml_count]);
	free(eml_files);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
