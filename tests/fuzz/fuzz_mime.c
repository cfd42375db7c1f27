/*
 * fuzz_mime.c - libFuzzer target for the streaming MIME walker.
 *
 * The input is a message: a header block, given through mime_header() as
 * an MTA would, then the body. The first bytes of the input also seed the
 * sizes of the chunks the body is fed in. The body is walked twice, in one
 * piece and in those chunks, and the two records of the callbacks must be
 * the same; every piece of text must be valid UTF-8 and the callbacks must
 * come in order. Now and then (chosen by the same bytes) the limits are
 * small, so that every bound is hit too, or the body is taken as one text
 * part in a charset and transfer encoding from a list, for iconv's sake.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct rec {
	uint64_t h;  /* FNV-1a of the callbacks */
	int open;    /* index of the open part, -1 */
	int next;    /* index the next part must have */
} rec;

static void
mix(rec *r, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++) {
		r->h ^= s[i];
		r->h *= 1099511628211ULL;
	}
}

static void
mix_str(rec *r, const char *s)
{
	mix(r, s ? s : "(null)", strlen(s ? s : "(null)") + 1);
}

static bool
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], len, k;
		unsigned char lo = 0x80, hi = 0xBF;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			len = 2;
		else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			lo = c == 0xE0 ? 0xA0 : 0x80;
			hi = c == 0xED ? 0x9F : 0xBF;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			lo = c == 0xF0 ? 0x90 : 0x80;
			hi = c == 0xF4 ? 0x8F : 0xBF;
		} else
			return false;
		if (i + len > n)
			return false;
		for (k = 1; k < len; k++) {
			unsigned char b = s[i + k];
			if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF))
				return false;
		}
		i += len;
	}
	return true;
}

static void
on_begin(void *ud, const mime_part *p)
{
	rec *r = ud;
	unsigned char fl = (unsigned char)(p->attachment | p->in_alternative << 1 | p->in_rfc822 << 2 |
	                                   p->view << 3 | p->charset_unknown << 4);

	if (r->open != -1 || p->index != r->next || p->depth < 0 || !p->type || !p->charset || !p->encoding)
		abort();
	r->open = r->next++;
	mix(r, "B", 1);
	mix(r, &p->index, sizeof p->index);
	mix(r, &p->depth, sizeof p->depth);
	mix_str(r, p->type);
	mix_str(r, p->charset);
	mix_str(r, p->encoding);
	mix_str(r, p->filename);
	mix(r, &fl, 1);
}

static void
on_text(void *ud, const mime_part *p, const char *s, size_t n)
{
	rec *r = ud;

	if (r->open == -1 || p->index != r->open || strncmp(p->type, "text/", 5) != 0)
		abort();
	if (!utf8_valid((const unsigned char *)s, n))
		abort();
	mix(r, s, n); /* pieces may differ between chunkings, the bytes may not */
}

static void
on_end(void *ud, const mime_part *p)
{
	rec *r = ud;

	if (r->open == -1 || p->index != r->open)
		abort();
	r->open = -1;
	mix(r, "E", 1);
}

static const mime_cb fuzz_cb = { on_begin, on_text, on_end };

/* The header block as an MTA gives it; returns where the body starts. */
static size_t
give_headers(mime_walker *w, const char *m, size_t n)
{
	char *field = malloc(n + 1);
	size_t off = 0, flen = 0;

	if (!field)
		return n;
	for (;;) {
		const char *l = m + off, *nl = memchr(l, '\n', n - off);
		size_t len = nl ? (size_t)(nl - l) : n - off, next = nl ? len + 1 : n - off;

		if (len > 0 && l[len - 1] == '\r')
			len--;
		if (flen > 0 && (off >= n || len == 0 || (l[0] != ' ' && l[0] != '\t'))) {
			char *colon, *v;
			field[flen] = '\0';
			colon = strchr(field, ':');
			if (colon) {
				*colon = '\0';
				for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
					;
				mime_header(w, field, v);
			}
			flen = 0;
		}
		if (off >= n)
			break;
		off += next;
		if (len == 0)
			break;
		memcpy(field + flen, l, len);
		flen += len;
	}
	free(field);
	return off;
}

/* Sometimes the message is forced to be one text part in one of these. */
static const char *const forced[] = {
	"utf-8", "gb2312", "gb18030", "big5", "shift_jis", "euc-jp", "iso-2022-jp", "koi8-u",
	"euc-kr", "ks_c_5601-1987", "windows-1258", "iso-8859-8", "utf-16", "utf-7", "x-none",
	"windows-1252", "iso-8859-2", "koi8-r",
};
static const char *const forced_te[] = { "8bit", "base64", "quoted-printable" };

static uint64_t
walk(const char *m, size_t n, const mime_limits *lim, uint64_t pick, uint64_t seed, size_t maxchunk)
{
	rec r = { 14695981039346656037ULL, -1, 0 };
	mime_walker *w = mime_new(lim, &fuzz_cb, &r);
	mime_status st = MIME_OK, fst;
	size_t off;
	const char *key;

	if (!w)
		abort();
	if (pick % 4 == 0) {
		char ct[64];
		snprintf(ct, sizeof ct, "text/plain; charset=%s", forced[pick / 4 % (sizeof forced / sizeof forced[0])]);
		mime_header(w, "Content-Type", ct);
		mime_header(w, "Content-Transfer-Encoding", forced_te[pick / 64 % 3]);
	}
	off = give_headers(w, m, n);
	while (off < n) {
		size_t c = n - off;
		if (maxchunk) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			c = 1 + (size_t)(seed >> 33) % maxchunk;
			if (c > n - off)
				c = n - off;
		}
		st = mime_feed(w, m + off, c);
		off += c;
		if (st == MIME_NOMEM)
			abort();
	}
	fst = mime_finish(w);
	if (r.open != -1 || (st == MIME_LIMIT && fst != MIME_LIMIT))
		abort();
	key = mime_limit_hit(w);
	if ((fst == MIME_LIMIT) != (key != NULL))
		abort();
	mix_str(&r, key);
	mix(&r, &fst, sizeof fst);
	mime_free(w);
	return r.h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t seed = 0;
	size_t i, maxchunk;
	mime_limits lim = { 0 }, *limp = NULL;

	for (i = 0; i < 8 && i < size; i++)
		seed = seed << 8 | data[i];
	/* byte-sized chunks for small inputs only: they cost a call per byte */
	maxchunk = seed % 3 == 0 && size <= 4096 ? 1 + seed % 7 : 1 + seed % 4096;
	if (seed % 5 == 0) {
		lim.max_depth = 1 + (unsigned)(seed >> 8) % 6;
		lim.max_parts = 1 + (unsigned)(seed >> 12) % 20;
		lim.max_header_line = 8 + (size_t)(seed >> 16) % 300;
		lim.max_header_bytes = 16 + (size_t)(seed >> 24) % 2000;
		lim.max_body_scan = 1 + (size_t)(seed >> 32) % 30000;
		limp = &lim;
	}
	if (walk((const char *)data, size, limp, seed >> 40, 0, 0) !=
	    walk((const char *)data, size, limp, seed >> 40, seed, maxchunk))
		abort();
	return 0;
}
