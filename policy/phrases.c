/*
 * phrases.c - the unsubscribe phrase dictionary: loading the phrase file,
 * case folding, and matching short texts (link texts, ~400-byte windows).
 *
 * Phrases are stored folded; a text is folded once and every position is
 * tried against the phrases that start with the same byte.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "phrases.h"

#define PHRASE_LINE_MAX  256          /* bytes in one line of the file */
#define PHRASE_FILE_MAX  (1024 * 1024)
#define PHRASE_MIN_BYTES 2            /* folded */
#define FOLD_STACK       1024

struct bw_phrases {
	char *buf;          /* folded phrases, NUL separated */
	size_t *off;        /* offset of each phrase in buf */
	size_t *len;        /* folded length */
	size_t n;
	uint32_t start[257]; /* phrases by first byte: order[start[b] .. start[b+1]) */
	uint32_t *order;
	uint8_t pair[65536 / 8];   /* bit (b0 << 8 | b1): some phrase starts so */
};

/* ---------------------------------------------------------------- UTF-8 */

/* Decode one code point; returns its length, or 0 for an invalid sequence. */
static size_t
utf8_dec(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c;
	size_t n, i;

	if (len == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		c = s[0] & 0x07;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

static size_t
utf8_enc(uint32_t c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* ---------------------------------------------------------------- folding */

#define FOLD_SPACE  0xffffffffu   /* white space: collapse */
#define FOLD_DROP   0xfffffffeu   /* invisible: remove */

static bool
fold_is_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0xa0 || c == 0x1680 ||
	    (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
	    c == 0x205f || c == 0x3000;
}

/*
 * Lower case for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic.
 * Beyond plain case: dotless/dotted i fold to "i", Greek tonos and final
 * sigma are dropped (capitals are usually written without them), and
 * Cyrillic yo folds to ye, so that upper-case text matches its phrase.
 */
static uint32_t
fold_cp(uint32_t c)
{
	if (fold_is_space(c))
		return FOLD_SPACE;
	if (c < 0x80)
		return (c >= 'A' && c <= 'Z') ? c + 32 : c;
	if (c == 0xad || (c >= 0x200b && c <= 0x200d) || c == 0x2060 || c == 0xfeff)
		return FOLD_DROP;
	if (c < 0x100) {
		if (c >= 0xc0 && c <= 0xde && c != 0xd7)
			return c + 32;
		if (c == 0xb5)
			return 0x3bc;
		return c;
	}
	if (c < 0x180) {
		if (c == 0x130 || c == 0x131)
			return 'i';
		if (c == 0x178)
			return 0xff;
		if (c == 0x17f)
			return 's';
		if ((c <= 0x137 || (c >= 0x14a && c <= 0x177)) && c % 2 == 0)
			return c + 1;
		if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) && c % 2 == 1)
			return c + 1;
		return c;
	}
	if (c >= 0x370 && c < 0x400) {
		if (c == 0x386)
			c = 0x3ac;
		else if (c >= 0x388 && c <= 0x38a)
			c += 37;
		else if (c == 0x38c)
			c = 0x3cc;
		else if (c == 0x38e || c == 0x38f)
			c += 63;
		else if ((c >= 0x391 && c <= 0x3a1) || (c >= 0x3a3 && c <= 0x3ab))
			c += 32;
		switch (c) {
		case 0x3ac: return 0x3b1;
		case 0x3ad: return 0x3b5;
		case 0x3ae: return 0x3b7;
		case 0x3af: return 0x3b9;
		case 0x3cc: return 0x3bf;
		case 0x3cd: return 0x3c5;
		case 0x3ce: return 0x3c9;
		case 0x390: return 0x3ca;
		case 0x3b0: return 0x3cb;
		case 0x3c2: return 0x3c3;
		default: return c;
		}
	}
	if (c >= 0x400 && c < 0x530) {
		if (c <= 0x40f)
			c += 80;
		else if (c <= 0x42f)
			c += 32;
		else if (((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf) ||
		    (c >= 0x4d0 && c <= 0x52f)) && c % 2 == 0)
			c += 1;
		else if (c == 0x4c0)
			c = 0x4cf;
		else if (c >= 0x4c1 && c <= 0x4ce && c % 2 == 1)
			c += 1;
		return c == 0x451 ? 0x435 : c;
	}
	if (c >= 0xff21 && c <= 0xff3a)
		return c + 32;
	return c;
}

static bool
fold_ascii_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20;
}

/* ASCII lower case, what fold_cp gives below 0x80 (white space aside) */
static const char fold_ascii[128] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
	' ', '!', '"', '#', '$', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'@', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '[', '\\', ']', '^', '_',
	'`', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '{', '|', '}', '~', 0x7f,
};

size_t
bw_fold(const char *in, size_t len, char *out, size_t outsz)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0;
	bool space = false;

	if (outsz == 0)
		return 0;
	while (i < len) {
		uint32_t c;
		size_t n;
		char enc[4];
		size_t m;

		if (s[i] < 0x80) {
			/* ASCII: the common case, a run of it folded in place */
			size_t room = outsz - 1 - o;

			if (!space) {
#ifdef __SSE2__
				/* sixteen bytes at a time while they are ASCII with no
				 * white space but single spaces inside: they fold to
				 * themselves in lower case */
				while (len - i >= 16 && room >= 16) {
					__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
					__m128i ctl = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(0x08)),
					    _mm_cmplt_epi8(v, _mm_set1_epi8(0x0e)));
					unsigned sp = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v,
					    _mm_set1_epi8(' ')));

					if (_mm_movemask_epi8(_mm_or_si128(v, ctl)) != 0 || (sp & (sp >> 1)) != 0 ||
					    (sp & 0x8001) != 0)
						break;
					__m128i up = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)),
					    _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
					_mm_storeu_si128((__m128i *)(void *)(out + o),
					    _mm_add_epi8(v, _mm_and_si128(up, _mm_set1_epi8(0x20))));
					i += 16;
					o += 16;
					room -= 16;
				}
#endif
				while (i < len && room > 0 && s[i] < 0x80 && !fold_ascii_space(s[i])) {
					out[o++] = fold_ascii[s[i++]];
					room--;
				}
				if (i == len || s[i] >= 0x80)
					continue;
				if (room == 0)
					break;
			}
			c = s[i++];
			if (fold_ascii_space(c)) {
				space = true;
				continue;
			}
			if (o + 1 >= outsz)
				break;
			out[o++] = ' ';
			space = false;
			if (o + 1 >= outsz)
				break;
			out[o++] = fold_ascii[c];
			continue;
		}
		n = utf8_dec(s + i, len - i, &c);
		if (n == 0) {
			c = '?';
			n = 1;
		}
		i += n;
		c = fold_cp(c);
		if (c == FOLD_DROP)
			continue;
		if (c == FOLD_SPACE) {
			space = true;
			continue;
		}
		if (space) {
			if (o + 1 >= outsz)
				break;
			out[o++] = ' ';
			space = false;
		}
		m = utf8_enc(c, enc);
		if (o + m >= outsz)
			break;
		memcpy(out + o, enc, m);
		o += m;
	}
	if (space && o + 1 < outsz)
		out[o++] = ' ';
	out[o] = 0;
	return o;
}

/* ---------------------------------------------------------------- loading */

static bool
utf8_valid(const char *s, size_t len)
{
	size_t i = 0;
	uint32_t c;

	while (i < len) {
		size_t n = utf8_dec((const unsigned char *)s + i, len - i, &c);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static bool
section_line(const char *s, size_t len)
{
	if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len > 34)
		return false;
	for (size_t i = 1; i + 1 < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_'))
			return false;
	}
	return true;
}

typedef struct phrase_build {
	char *buf;
	size_t blen, bcap;
	size_t *off, *len;
	size_t n, cap;
} phrase_build;

static bool
build_add(phrase_build *b, const char *f, size_t flen)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->len[i] == flen && memcmp(b->buf + b->off[i], f, flen) == 0)
			return true;   /* same phrase twice: keep one */
	if (b->n == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 64;
		size_t *no = realloc(b->off, nc * sizeof(*no));
		if (no == NULL)
			return false;
		b->off = no;
		no = realloc(b->len, nc * sizeof(*no));
		if (no == NULL)
			return false;
		b->len = no;
		b->cap = nc;
	}
	if (b->blen + flen + 1 > b->bcap) {
		size_t nc = b->bcap ? b->bcap * 2 : 4096;
		char *nb;

		while (nc < b->blen + flen + 1)
			nc *= 2;
		nb = realloc(b->buf, nc);
		if (nb == NULL)
			return false;
		b->buf = nb;
		b->bcap = nc;
	}
	memcpy(b->buf + b->blen, f, flen);
	b->buf[b->blen + flen] = 0;
	b->off[b->n] = b->blen;
	b->len[b->n] = flen;
	b->n++;
	b->blen += flen + 1;
	return true;
}

static bw_phrases *
build_finish(phrase_build *b)
{
	bw_phrases *p = calloc(1, sizeof(*p));
	uint32_t fill[256];

	if (p == NULL || (p->order = calloc(b->n ? b->n : 1, sizeof(*p->order))) == NULL) {
		free(p);
		return NULL;
	}
	p->buf = b->buf;
	p->off = b->off;
	p->len = b->len;
	p->n = b->n;
	for (size_t i = 0; i < b->n; i++)
		p->start[(unsigned char)b->buf[b->off[i]] + 1]++;
	for (int c = 0; c < 256; c++)
		p->start[c + 1] += p->start[c];
	memcpy(fill, p->start, sizeof(fill));
	for (size_t i = 0; i < b->n; i++)
		p->order[fill[(unsigned char)b->buf[b->off[i]]]++] = (uint32_t)i;
	/* first two bytes of every phrase; a one-byte phrase allows any second */
	for (size_t i = 0; i < b->n; i++) {
		const unsigned char *f = (const unsigned char *)b->buf + b->off[i];

		if (b->len[i] >= 2)
			p->pair[(f[0] << 8 | f[1]) >> 3] |= (uint8_t)(1u << (f[1] & 7));
		else if (b->len[i] == 1)
			memset(p->pair + (f[0] << 8 >> 3), 0xff, 256 / 8);
	}
	return p;
}

bw_phrases *
bw_phrases_parse(const char *text, size_t len, const char *name, bw_errs *errs)
{
	phrase_build b = { 0 };
	size_t nerr = errs->n;
	unsigned lineno = 0;
	size_t i = 0;
	bw_phrases *p;

	/* a byte order mark at the start is not part of the first phrase */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < len) {
		const char *line = text + i;
		const char *nl = memchr(line, '\n', len - i);
		size_t ll = nl ? (size_t)(nl - line) : len - i;
		char folded[PHRASE_LINE_MAX + 1];
		size_t fl, a = 0, z = ll;

		i += ll + (nl ? 1 : 0);
		lineno++;
		while (z > 0 && (line[z - 1] == '\r' || line[z - 1] == ' ' || line[z - 1] == '\t'))
			z--;
		while (a < z && (line[a] == ' ' || line[a] == '\t'))
			a++;
		if (ll > PHRASE_LINE_MAX) {
			bw_errs_add(errs, "%s:%u: line too long (more than %d bytes)", name, lineno,
			    PHRASE_LINE_MAX);
			continue;
		}
		if (!utf8_valid(line, ll)) {
			bw_errs_add(errs, "%s:%u: invalid UTF-8", name, lineno);
			continue;
		}
		if (a == z || line[a] == '#')
			continue;
		if (line[a] == '[') {
			if (!section_line(line + a, z - a))
				bw_errs_add(errs, "%s:%u: bad section line (want \"[xx]\")", name, lineno);
			continue;
		}
		fl = bw_fold(line + a, z - a, folded, sizeof(folded));
		while (fl > 0 && folded[fl - 1] == ' ')
			fl--;
		if (fl < PHRASE_MIN_BYTES) {
			bw_errs_add(errs, "%s:%u: phrase too short", name, lineno);
			continue;
		}
		if (!build_add(&b, folded, fl)) {
			bw_errs_add(errs, "%s:%u: out of memory", name, lineno);
			break;
		}
	}
	if (errs->n == nerr && b.n == 0)
		bw_errs_add(errs, "%s:%u: no phrases in the file", name, lineno);
	if (errs->n != nerr || (p = build_finish(&b)) == NULL) {
		if (errs->n == nerr)
			bw_errs_add(errs, "%s: out of memory", name);
		free(b.buf);
		free(b.off);
		free(b.len);
		return NULL;
	}
	return p;
}

bw_phrases *
bw_phrases_load(const char *path, bw_errs *errs)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;
	char *text;
	size_t got;
	bw_phrases *p;

	if (fp == NULL) {
		bw_errs_add(errs, "%s: cannot open phrase file: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
		bw_errs_add(errs, "%s: not a regular file", path);
		fclose(fp);
		return NULL;
	}
	if (st.st_size > PHRASE_FILE_MAX) {
		bw_errs_add(errs, "%s: phrase file larger than %d bytes", path, PHRASE_FILE_MAX);
		fclose(fp);
		return NULL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL) {
		bw_errs_add(errs, "%s: out of memory", path);
		fclose(fp);
		return NULL;
	}
	got = fread(text, 1, (size_t)st.st_size, fp);
	if (ferror(fp)) {
		bw_errs_add(errs, "%s: read error: %s", path, strerror(errno));
		free(text);
		fclose(fp);
		return NULL;
	}
	fclose(fp);
	p = bw_phrases_parse(text, got, path, errs);
	free(text);
	return p;
}

void
bw_phrases_free(bw_phrases *p)
{
	if (p) {
		free(p->buf);
		free(p->off);
		free(p->len);
		free(p->order);
		free(p);
	}
}

size_t
bw_phrases_count(const bw_phrases *p)
{
	return p ? p->n : 0;
}

/* ---------------------------------------------------------------- matching */

static bool
match_folded(const bw_phrases *p, const char *f, size_t fl)
{
	for (size_t i = 0; i < fl; i++) {
		unsigned char c = (unsigned char)f[i];

		if (p->start[c] == p->start[c + 1])
			continue;
		if (i + 1 < fl) {
			unsigned pr = (unsigned)c << 8 | (unsigned char)f[i + 1];
			if (!(p->pair[pr >> 3] & (1u << (pr & 7))))
				continue;
		}
		for (uint32_t k = p->start[c]; k < p->start[c + 1]; k++) {
			uint32_t ph = p->order[k];
			size_t pl = p->len[ph];

			if (pl <= fl - i && f[i + pl - 1] == p->buf[p->off[ph] + pl - 1] &&
			    memcmp(f + i, p->buf + p->off[ph], pl) == 0)
				return true;
		}
	}
	return false;
}

bool
bw_phrases_match_folded(const bw_phrases *p, const char *f, size_t fl)
{
	return p != NULL && p->n != 0 && f != NULL && match_folded(p, f, fl);
}

bool
bw_phrases_match(const bw_phrases *p, const char *text, size_t len)
{
	char stack[FOLD_STACK];
	char *f = stack;
	size_t fl;
	bool hit;

	if (p == NULL || p->n == 0 || text == NULL || len == 0)
		return false;
	/* folding never makes a text longer */
	if (len + 1 > sizeof(stack) && (f = malloc(len + 1)) == NULL)
		return false;
	f[0] = '\0';   /* (bw_fold writes it; the compiler cannot tell) */
	fl = bw_fold(text, len, f, len + 1);
	hit = match_folded(p, f, fl);
	if (f != stack)
		free(f);
	return hit;
}
