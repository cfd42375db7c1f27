/*
 * unsub.c - unsubscribe evidence (DESIGN.md 4, "Visible unsubscribe").
 *
 * Owns: per body view, whether a working, labelled, visible and honest
 * unsubscribe link exists (HTML links come from html.c with their facts,
 * text/plain links from the scanner here); List-Unsubscribe (RFC 2369) and
 * List-Unsubscribe-Post (RFC 8058) parsed strictly (whether a DKIM
 * signature covers them is dkimcov.c's). Only facts are kept while the
 * body streams through; the view results are decided in unsub_finish(),
 * where a URL labelled in one view also identifies the unlabelled or
 * hidden copy of it in another (an image link without alt, a <link> in
 * the head, a URL left in <title> or a style comment).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* memmem */
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ascii.h"
#include "bytepair.h"
#include "html.h"
#include "mime.h"
#include "pool.h"
#include "unsub.h"

#define UNSUB_CTX_CAP    1024  /* text scanner: bytes of text kept before a URL */
#define UNSUB_CTX_LOOK   400   /* bytes of that looked at for a phrase */
#define UNSUB_TAG_MAX    200   /* longest merge tag recognised in text */
#define UNSUB_TEXT_KEEP  256   /* bytes of link text kept for the report */
#define UNSUB_GENERIC_MAX 64   /* longest "click here" style link text */
#define UNSUB_FOLD_STACK 1100  /* link texts folded on the stack (HTML ones are 1024 at most) */
#define UNSUB_TAG_TAIL   12    /* bytes kept between pieces to see "<unsubscribe" */

/* ---------------------------------------------------------------- small helpers */

static bool
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* s trimmed of white space at both ends: [*a, *z) */
static void
trim_ws(const char *s, size_t *a, size_t *z)
{
	*a = 0;
	*z = strlen(s);
	while (*a < *z && is_ws((unsigned char)s[*a]))
		(*a)++;
	while (*z > *a && is_ws((unsigned char)s[*z - 1]))
		(*z)--;
}

static bool
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int
lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* case-insensitive ASCII search of needle in s[0..len) */
static const char *
memcasemem(const char *s, size_t len, const char *needle)
{
	size_t nl = strlen(needle);

	if (nl == 0 || nl > len)
		return NULL;
	for (size_t i = 0; i + nl <= len; i++) {
		size_t k = 0;
		while (k < nl && lower((unsigned char)s[i + k]) == needle[k])
			k++;
		if (k == nl)
			return s + i;
	}
	return NULL;
}

/* s[0..len) starts with pfx (lower case ASCII), in either case */
static inline bool
prefix_ci(const char *s, size_t len, const char *pfx)
{
	size_t i;

	for (i = 0; pfx[i]; i++)
		if (i >= len || lower((unsigned char)s[i]) != pfx[i])
			return false;
	return true;
}

static uint64_t
hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* hash of an href with surrounding white space removed */
static uint64_t
hash_href(const char *href)
{
	size_t a, z;

	trim_ws(href, &a, &z);
	return hash_bytes(href + a, z - a);
}

/* copy at most max bytes, cut at a UTF-8 character boundary */
static char *
dup_cut(const char *s, size_t len, size_t max)
{
	char *d;

	if (len > max) {
		len = max;
		while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	if ((d = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(d, s, len);
	d[len] = 0;
	return d;
}

static const char *
nz(const char *s)
{
	return s ? s : "";
}

static bool
blank(const char *s)
{
	for (; s && *s; s++)
		if (!is_ws((unsigned char)*s))
			return false;
	return true;
}

/* A bounded set of 64-bit hashes, each with an optional static reason. */
typedef struct hvec {
	uint64_t *h;
	const char **why;
	size_t n, cap;
} hvec;

static void
hvec_add(hvec *v, uint64_t h, const char *why, size_t max)
{
	if (v->n >= max)
		return;
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 16;
		uint64_t *nh;
		const char **nw;

		if (nc > max)
			nc = max;
		if ((nh = realloc(v->h, nc * sizeof(*nh))) == NULL)
			return;
		v->h = nh;
		if ((nw = realloc(v->why, nc * sizeof(*nw))) == NULL)
			return;
		v->why = nw;
		v->cap = nc;
	}
	v->h[v->n] = h;
	v->why[v->n] = why;
	v->n++;
}

static void
hvec_free(hvec *v)
{
	free(v->h);
	free(v->why);
	memset(v, 0, sizeof(*v));
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* v must be sorted */
static bool
hvec_has(const hvec *v, uint64_t h)
{
	return v->n && bsearch(&h, v->h, v->n, sizeof(uint64_t), cmp_u64) != NULL;
}

/* ---------------------------------------------------------------- names */

const char *
unsub_body_name(unsub_body b)
{
	switch (b) {
	case UNSUB_VISIBLE: return "visible";
	case UNSUB_UNRENDERED: return "unrendered";
	case UNSUB_HIDDEN: return "hidden";
	case UNSUB_ABSENT: return "absent";
	}
	return "absent";
}

const char *
unsub_hdr_name(unsub_hdr h)
{
	switch (h) {
	case UNSUB_HDR_OK: return "ok";
	case UNSUB_HDR_MALFORMED: return "malformed";
	case UNSUB_HDR_ABSENT: return "absent";
	}
	return "absent";
}

/* ---------------------------------------------------------------- targets */

/*
 * Host part of an http(s) URL: after "//", before "/?#", without userinfo
 * and port. Returns false when there is no host or it has characters a
 * host cannot have.
 */
/* 1: an ASCII byte a host may have (letters, digits, . - _); any
 * non-ASCII byte may be in a host too */
static const unsigned char host_char[256] = {
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
	['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
	['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
	['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
	['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	['8'] = 1, ['9'] = 1, ['.'] = 1, ['-'] = 1, ['_'] = 1,
};

static bool
url_host(const char *u, size_t len, const char **host, size_t *hlen)
{
	size_t i, a, z, colon;
	bool bad;

	if (prefix_ci(u, len, "https://"))
		i = 8;
	else if (prefix_ci(u, len, "http://"))
		i = 7;
	else
		return false;
	/* one pass over the authority: the host starts after the last '@'
	 * and ends at the first ':' after it; note a bad host byte */
	a = i;
	colon = 0;
	bad = false;
	for (; i < len; i++) {
		unsigned char c = (unsigned char)u[i];

		if (host_char[c] || c >= 0x80)
			continue;
		if (c == '/' || c == '?' || c == '#' || c == '\\')
			break;
		if (c == '@') {
			a = i + 1;
			colon = 0;
			bad = false;
		} else if (c == ':') {
			if (colon == 0)
				colon = i;
		} else if (colon == 0)
			bad = true;
	}
	z = i;
	if (a < z && u[a] == '[') {             /* IPv6 literal */
		const char *rb = memchr(u + a, ']', z - a);
		if (rb == NULL || rb == u + a + 1)
			return false;
		*host = u + a;
		*hlen = (size_t)(rb - (u + a)) + 1;
		return true;
	}
	if (colon)
		z = colon;
	if (z == a || bad)
		return false;
	if (u[a] == '.' || (z - a == 1 && u[a] == '.'))
		return false;
	*host = u + a;
	*hlen = z - a;
	return true;
}

/* Domain of the first address of a mailto: URI (RFC 6068), also "?to=". */
static bool
mailto_domain(const char *u, size_t len, const char **dom, size_t *dlen)
{
	size_t i = 7, a, at = 0, z;

	if (!prefix_ci(u, len, "mailto:"))
		return false;
	a = i;
	while (i < len && u[i] != '?' && u[i] != ',')
		i++;
	z = i;
	if (z == a) {
		/* mailto:?to=addr */
		const char *to = memcasemem(u + i, len - i, "to=");
		if (to == NULL || (to != u + i + 1 && to[-1] != '&'))
			return false;
		a = (size_t)(to - u) + 3;
		z = a;
		while (z < len && u[z] != '&' && u[z] != ',')
			z++;
	}
	for (size_t k = a; k < z; k++)
		if (u[k] == '@' || (u[k] == '%' && k + 2 < z && u[k + 1] == '4' && u[k + 2] == '0'))
			at = k;
	if (at == 0 || at == a)
		return false;
	at += (u[at] == '@') ? 1 : 3;
	if (at >= z)
		return false;
	for (size_t k = at; k < z; k++) {
		unsigned char c = (unsigned char)u[k];
		if (!(is_alnum(c) || c == '.' || c == '-' || c == '_' || c == '[' || c == ']' ||
		    c == ':' || c >= 0x80))
			return false;
	}
	*dom = u + at;
	*dlen = z - at;
	return true;
}

/* Is there a "[...]" template tag in s: the whole value, or an upper-case
 * or unsubscribe-ish name in brackets inside a URL. */
static bool
has_bracket_tag(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		const char *rb;
		size_t n;
		bool upper = true, word = true;

		if (s[i] != '[')
			continue;
		if ((rb = memchr(s + i + 1, ']', len - i - 1)) == NULL)
			return false;
		n = (size_t)(rb - (s + i + 1));
		if (n == 0)
			continue;
		for (size_t k = 0; k < n; k++) {
			unsigned char c = (unsigned char)s[i + 1 + k];
			if (c >= 'a' && c <= 'z')
				upper = false;
			if (!(is_alnum(c) || c == '_' || c == '-' || c == '.' || c == ':' || c == ' '))
				word = false;
		}
		if (!word)
			continue;
		if (i == 0 && rb == s + len - 1)
			return true;
		if (memcasemem(s + i + 1, n, "unsub") || (upper && !(s[i + 1] >= '0' && s[i + 1] <= '9')))
			return true;
	}
	return false;
}

static bool
is_hex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* "%name%" (Mailgun style) or "%%name%%": not valid percent-encoding */
static bool
has_percent_tag(const char *s, size_t len)
{
	for (size_t i = 0; i + 2 < len; i++) {
		size_t k = i + 1;

		if (s[i] != '%')
			continue;
		if (s[k] == '%')
			k++;
		if (k + 1 < len && is_hex((unsigned char)s[k]) && is_hex((unsigned char)s[k + 1]))
			continue;   /* %41 and the like */
		if (k >= len || !((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') || s[k] == '_'))
			continue;
		while (k < len && (is_alnum((unsigned char)s[k]) || s[k] == '_' || s[k] == '.' || s[k] == ':'))
			k++;
		if (k < len && s[k] == '%')
			return true;
	}
	return false;
}

bool
unsub_target_unrendered(const char *href)
{
	const char *s = href;
	size_t len;

	if (href == NULL)
		return false;
	while (is_ws((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && is_ws((unsigned char)s[len - 1]))
		len--;
	if (len == 0 || strpbrk(s, "{}|<>%[$") == NULL)
		return false;
	if (memmem(s, len, "*|", 2) && memmem(s, len, "|*", 2))
		return true;
	if (memmem(s, len, "{{", 2) || memmem(s, len, "}}", 2) || memmem(s, len, "{%", 2) ||
	    memmem(s, len, "%}", 2) || memmem(s, len, "${", 2))
		return true;
	if (memmem(s, len, "<%", 2) || memmem(s, len, "%>", 2))
		return true;
	if (memcasemem(s, len, "<unsubscribe") || memcasemem(s, len, "</unsubscribe"))
		return true;
	if (has_percent_tag(s, len))
		return true;
	if (has_bracket_tag(s, len))
		return true;
	/* a "{name}" placeholder: braces are never valid in a URL */
	for (size_t i = 0; i < len; i++)
		if (s[i] == '{' && memchr(s + i, '}', len - i))
			return true;
	return false;
}

/* unsub_target_works(), and the host (or mailto: domain) in *host when the
 * href had no white space around it to trim (else NULL) */
static bool
target_works_host(const char *href, const char **host, size_t *hlen)
{
	const char *s = href, *h;
	size_t len, full, hl;
	bool ok;

	*host = NULL;
	if (href == NULL)
		return false;
	while (is_ws((unsigned char)*s))
		s++;
	len = full = strlen(s);
	while (len > 0 && is_ws((unsigned char)s[len - 1]))
		len--;
	if (len == 0 || unsub_target_unrendered(s))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == ' ' || s[i] == '<' || s[i] == '>' || s[i] == '"')
			return false;
	if (prefix_ci(s, len, "http://") || prefix_ci(s, len, "https://"))
		ok = url_host(s, len, &h, &hl);
	else if (prefix_ci(s, len, "mailto:"))
		ok = mailto_domain(s, len, &h, &hl);
	else
		return false;
	if (ok && s == href && len == full)
		*host = h, *hlen = hl;
	return ok;
}

bool
unsub_target_works(const char *href)
{
	const char *h;
	size_t hl;

	return target_works_host(href, &h, &hl);
}

/* Does the href look like an unsubscribe URL (path or query)? */
static bool
href_unsubish(const char *href)
{
	static const char *const words[] = { "unsub", "optout", "opt-out", "opt_out", "abmelden",
	    "abbestellen", "desinscri", "desabonn", "uitschrijven", "afmelden", "list-unsubscribe" };
	size_t len = strlen(href);
	const char *h, *rest;
	size_t hl;

	if (url_host(href, len, &h, &hl))
		rest = h + hl;
	else if (prefix_ci(href, len, "mailto:"))
		rest = href + 7;   /* unsubscribe@..., ?subject=unsubscribe */
	else
		return false;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (memcasemem(rest, len - (size_t)(rest - href), words[i]))
			return true;
	return false;
}

/* ---------------------------------------------------------------- domains */

/* Multi-label public suffixes common in mail (ICANN and a few private). */
static const char *const unsub_suffixes[] = {
	"co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "net.uk", "ltd.uk", "plc.uk", "sch.uk",
	"nhs.uk", "police.uk",
	"com.au", "net.au", "org.au", "edu.au", "gov.au", "asn.au", "id.au",
	"co.nz", "org.nz", "net.nz", "govt.nz", "ac.nz", "school.nz", "geek.nz",
	"co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp", "gr.jp", "ad.jp", "ed.jp", "lg.jp",
	"com.br", "net.br", "org.br", "gov.br", "edu.br", "art.br", "blog.br",
	"com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "ac.cn",
	"com.tw", "org.tw", "net.tw", "edu.tw", "gov.tw", "idv.tw",
	"com.hk", "org.hk", "net.hk", "edu.hk", "gov.hk", "idv.hk",
	"co.kr", "or.kr", "ne.kr", "go.kr", "ac.kr", "re.kr", "pe.kr",
	"co.in", "net.in", "org.in", "firm.in", "gen.in", "ind.in", "ac.in", "edu.in", "gov.in",
	"co.za", "org.za", "net.za", "gov.za", "ac.za", "web.za",
	"com.mx", "org.mx", "net.mx", "gob.mx", "edu.mx",
	"com.ar", "org.ar", "net.ar", "gob.ar", "edu.ar",
	"com.tr", "org.tr", "net.tr", "gov.tr", "edu.tr", "gen.tr", "biz.tr", "k12.tr",
	"com.sg", "org.sg", "net.sg", "edu.sg", "gov.sg",
	"com.my", "org.my", "net.my", "edu.my", "gov.my",
	"co.id", "or.id", "web.id", "ac.id", "go.id", "my.id",
	"co.th", "or.th", "in.th", "ac.th", "go.th",
	"com.vn", "net.vn", "org.vn", "edu.vn", "gov.vn",
	"com.ua", "org.ua", "net.ua", "in.ua", "kiev.ua",
	"co.il", "org.il", "net.il", "ac.il", "gov.il", "muni.il",
	"com.sa", "net.sa", "org.sa", "gov.sa", "edu.sa",
	"com.eg", "org.eg", "com.pk", "org.pk", "com.ph", "org.ph", "com.bd", "com.lk",
	"com.co", "org.co", "net.co", "com.pe", "org.pe", "com.ve", "co.ve", "com.ec", "com.uy",
	"com.py", "com.bo", "com.do", "com.gt", "com.pa", "com.sv", "com.ni", "com.hn", "co.cr",
	"com.ng", "org.ng", "co.ke", "or.ke", "co.tz", "co.ug", "com.gh", "co.zw", "co.ma",
	"com.pl", "net.pl", "org.pl", "co.at", "or.at", "gv.at", "co.hu", "com.gr", "com.cy",
	"com.mt", "com.ro", "org.ro", "com.es", "org.es", "nom.es", "com.pt", "org.pt",
	"co.no", "com.hr", "com.ru", "org.ru", "net.ru", "spb.ru", "msk.ru", "com.by",
	"com.kz", "co.rs", "org.rs", "co.me", "com.qa", "com.kw", "com.om", "com.bh", "co.ae",
	"com.lb", "com.jo", "com.tn", "com.dz", "co.nl", "co.ca", "qc.ca", "on.ca", "bc.ca",
	"ab.ca", "com.fj", "com.np", "com.mm", "com.kh", "com.mo",
	/* private suffixes where each label is a different owner */
	"github.io", "gitlab.io", "blogspot.com", "wordpress.com", "herokuapp.com",
	"appspot.com", "azurewebsites.net", "cloudfront.net", "netlify.app", "vercel.app",
	"pages.dev", "workers.dev", "web.app", "firebaseapp.com", "s3.amazonaws.com",
	"elasticbeanstalk.com", "myshopify.com", "wixsite.com", "squarespace.com", "substack.com",
	"ngrok.io", "ngrok-free.app", "glitch.me", "repl.co", "onrender.com", "fly.dev",
};

static bool
suffix_known(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(unsub_suffixes) / sizeof(unsub_suffixes[0]); i++)
		if (strlen(unsub_suffixes[i]) == len && strncasecmp(unsub_suffixes[i], s, len) == 0)
			return true;
	return false;
}

size_t
unsub_registrable_domain(const char *host, size_t len, const char **start)
{
	size_t dots[8], nd = 0, sfx;
	bool numeric = true;

	while (len > 0 && host[len - 1] == '.')
		len--;
	*start = host;
	if (len == 0 || host[0] == '[')
		return len;
	for (size_t i = 0; i < len; i++)
		if (!((host[i] >= '0' && host[i] <= '9') || host[i] == '.'))
			numeric = false;
	if (numeric)
		return len;
	/* positions of the last dots, right to left */
	for (size_t i = len; i > 0 && nd < 8; i--)
		if (host[i - 1] == '.')
			dots[nd++] = i - 1;
	if (nd == 0)
		return len;
	/* longest known suffix ending the host, at a label boundary */
	sfx = len - (dots[0] + 1);   /* the TLD */
	for (size_t k = nd; k > 1; k--) {
		size_t from = dots[k - 1] + 1;
		if (suffix_known(host + from, len - from)) {
			sfx = len - from;
			break;
		}
	}
	if (sfx == len - (dots[0] + 1) && nd >= 1 && suffix_known(host, len))
		return len;   /* the host is itself a suffix */
	for (size_t k = 0; k < nd; k++) {
		if (dots[k] < len - sfx - 1) {
			*start = host + dots[k] + 1;
			return len - (dots[k] + 1);
		}
	}
	return len;   /* one label before the suffix: the whole host */
}

static bool
same_registrable(const char *a, size_t al, const char *b, size_t bl)
{
	const char *ra, *rb;
	size_t la = unsub_registrable_domain(a, al, &ra);
	size_t lb = unsub_registrable_domain(b, bl, &rb);

	return la == lb && strncasecmp(ra, rb, la) == 0;
}

/* ---------------------------------------------------------------- honesty */

static bool
domain_char(int c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c >= 0x80;
}

/* Is s[0..len) a host name with a letter TLD ("example.com")? */
static bool
looks_like_domain(const char *s, size_t len)
{
	size_t dot = 0, tld = 0;

	if (len < 4)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!domain_char((unsigned char)s[i]))
			return false;
		if (s[i] == '.')
			dot = i + 1;
	}
	if (dot == 0 || dot == 1)
		return false;
	for (size_t i = dot; i < len; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
		tld++;
	}
	return tld >= 2;
}

/*
 * Link text that shows a URL or a domain must name the href's registrable
 * domain. Shown: "http(s)://host...", "www.host...", or the whole text a
 * host, "host/path" or an address "x@host".
 */
static bool
link_honest(const char *text, const char *href, const char *hh, size_t hhl)
{
	const char *th;
	size_t tl, thl;
	size_t a = 0, z;

	/* hh: the href's host or mailto: domain when the caller has it */
	if (hh == NULL && !url_host(href, strlen(href), &hh, &hhl) &&
	    !mailto_domain(href, strlen(href), &hh, &hhl))
		return true;
	tl = strlen(text);
	for (size_t i = 0; i < tl; i++) {
		size_t k = i, e;

		if (i > 0 && (is_alnum((unsigned char)text[i - 1]) || text[i - 1] == '.'))
			continue;
		if (prefix_ci(text + i, tl - i, "http://") || prefix_ci(text + i, tl - i, "https://")) {
			if (url_host(text + i, tl - i, &th, &thl) && !same_registrable(th, thl, hh, hhl))
				return false;
			continue;
		}
		if (prefix_ci(text + i, tl - i, "www.")) {
			e = k;
			while (e < tl && domain_char((unsigned char)text[e]))
				e++;
			while (e > k && text[e - 1] == '.')
				e--;
			if (looks_like_domain(text + k, e - k) && !same_registrable(text + k, e - k, hh, hhl))
				return false;
		}
	}
	/* the whole text a domain, "domain/path" or an address */
	z = tl;
	while (a < z && (is_ws((unsigned char)text[a]) || text[a] == '<' || text[a] == '('))
		a++;
	while (z > a && (is_ws((unsigned char)text[z - 1]) || text[z - 1] == '>' || text[z - 1] == ')' ||
	    text[z - 1] == '.'))
		z--;
	if (z > a && memchr(text + a, ' ', z - a) == NULL) {
		const char *t = text + a, *at = memchr(t, '@', z - a);
		size_t e = 0, n = z - a;

		if (at) {
			t = at + 1;
			n = (size_t)(text + z - t);
		}
		while (e < n && t[e] != '/' && t[e] != '?' && t[e] != ':')
			e++;
		if (looks_like_domain(t, e) && !same_registrable(t, e, hh, hhl))
			return false;
	}
	return true;
}

/* ---------------------------------------------------------------- labels */

/* Link texts that say "follow this link" and need a phrase around them. */
static const char *const unsub_generic[] = {
	"here", "click here", "click", "tap here", "clicking here", "click this link", "this link",
	"link", "go here", "press here", "follow this link",
	"hier", "klicken sie hier", "hier klicken", "klick hier", "hier abmelden",
	"ici", "cliquez ici", "cliquer ici", "cliquant ici", "ce lien",
	"aquí", "aqui", "haz clic aquí", "haga clic aquí", "clic aquí", "pulse aquí", "pincha aquí",
	"este enlace", "enlace",
	"qui", "clicca qui", "clicca", "questo link",
	"clique aqui", "clique", "este link", "neste link",
	"klik hier", "klik", "deze link",
	"zde", "sem", "klikněte zde", "klikněte sem", "klikněte", "tady", "odkaz", "tento odkaz",
	"tu", "tutaj", "kliknij tutaj", "kliknij", "ten link",
	"здесь", "сюда", "тут", "по ссылке", "ссылке", "ссылка", "нажмите здесь", "нажмите",
	"тут", "тут.", "тиць", "натисніть тут", "посилання",
	"这里", "此处", "点击这里", "点击此处", "点击", "這裡", "此處", "點擊這裡", "點擊此處", "點擊",
	"ここ", "こちら", "こちらから", "ここをクリック", "こちらをクリック",
	"여기", "여기를 클릭", "이곳", "클릭",
	"här", "klicka här", "her", "klik her", "klikk her", "tästä", "täältä", "klikkaa tästä",
	"buraya", "buradan", "tıklayın", "buraya tıklayın", "tıklayınız",
	"aici", "click aici", "faceți clic aici", "apăsați aici",
	"εδώ", "πατήστε εδώ", "κάντε κλικ εδώ",
	"כאן", "לחץ כאן", "לחצו כאן", "לחצי כאן",
	"هنا", "اضغط هنا", "انقر هنا",
	"tại đây", "nhấn vào đây", "ở đây", "bấm vào đây",
	"itt", "ide", "kattintson ide", "kattints ide",
	"di sini", "klik di sini", "sini",
	/* the imperative alone, for "Want to unsubscribe? Click <a>here</a>" */
	"please click", "simply click", "just click", "click on", "please click on", "tap",
	"klicken", "klicken sie", "bitte klicken sie", "cliquez", "cliquer", "veuillez cliquer",
	"haga clic", "haz clic", "pulse", "clicca", "klikt u", "kliknij", "нажмите", "натисніть",
	"klicka", "klikk", "klikkaa", "tıklayın", "kattintson", "nhấn", "点击", "請點擊", "请点击",
};

/* white space and punctuation stripped from both ends of a generic text */
static const unsigned char generic_trim[256] = {
	[' '] = 1, ['\t'] = 1, ['\r'] = 1, ['\n'] = 1, ['\f'] = 1, ['\v'] = 1,
	['!'] = 1, ['"'] = 1, ['#'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1, [','] = 1,
	['-'] = 1, ['.'] = 1, ['/'] = 1, [':'] = 1, [';'] = 1, ['>'] = 1, ['?'] = 1, ['['] = 1,
	[']'] = 1, ['_'] = 1, ['|'] = 1, ['~'] = 1, ['<'] = 1,
};

/*
 * Lengths of the generic texts by first byte: bit n (n < 63) of
 * generic_len[b] says some text starting with b is n bytes long, bit 63
 * stands for every length from 63 up. Written once, then only read.
 */
static uint64_t generic_len[256];
static pthread_once_t generic_once = PTHREAD_ONCE_INIT;

static void
generic_index(void)
{
	for (size_t i = 0; i < sizeof(unsub_generic) / sizeof(unsub_generic[0]); i++) {
		size_t n = strlen(unsub_generic[i]);

		generic_len[(unsigned char)unsub_generic[i][0]] |= 1ULL << (n < 63 ? n : 63);
	}
}

/* ends that are not part of a generic text: every one starts with a lead
 * byte and ends with a continuation byte */
static const struct {
	const char s[4];
	unsigned char n;
} trim_u8[] = {
	{"»", 2}, {"«", 2}, {"›", 3}, {"‹", 3}, {"→", 3}, {"←", 3}, {"。", 3}, {"！", 3}, {"：", 3},
	{"…", 3}, {"“", 3}, {"”", 3}, {"„", 3}, {"’", 3}, {"‘", 3}, {"、", 3}, {"，", 3},
};

/* is the folded f[0..fl) a generic text, once white space and punctuation
 * are stripped from both ends? */
static bool
generic_folded(const char *f, size_t fl)
{
	size_t a = 0;

	for (;;) {
		bool cut = false;

		while (a < fl && generic_trim[(unsigned char)f[a]])
			a++, cut = true;
		while (fl > a && generic_trim[(unsigned char)f[fl - 1]])
			fl--, cut = true;
		if (fl > a && ((unsigned char)f[a] >= 0x80 || (unsigned char)f[fl - 1] >= 0x80))
			for (size_t i = 0; i < sizeof(trim_u8) / sizeof(trim_u8[0]); i++) {
				size_t tl = trim_u8[i].n;
				if (fl - a >= tl && f[a] == trim_u8[i].s[0] &&
				    memcmp(f + a, trim_u8[i].s, tl) == 0)
					a += tl, cut = true;
				if (fl - a >= tl && f[fl - tl] == trim_u8[i].s[0] &&
				    memcmp(f + fl - tl, trim_u8[i].s, tl) == 0)
					fl -= tl, cut = true;
			}
		if (!cut)
			break;
	}
	if (fl <= a)
		return false;
	pthread_once(&generic_once, generic_index);
	if (!(generic_len[(unsigned char)f[a]] & (1ULL << (fl - a < 63 ? fl - a : 63))))
		return false;
	for (size_t i = 0; i < sizeof(unsub_generic) / sizeof(unsub_generic[0]); i++) {
		const char *g = unsub_generic[i];
		if (g[0] == f[a] && strncmp(g, f + a, fl - a) == 0 && g[fl - a] == 0)
			return true;
	}
	return false;
}

/* a generic text, as a reader writes it: any case, any spacing */
static bool
text_generic(const char *text)
{
	char f[UNSUB_GENERIC_MAX * 2 + 1];
	size_t len = strlen(text);

	if (len == 0 || len > UNSUB_GENERIC_MAX * 2)
		return false;
	return generic_folded(f, bw_fold(text, len, f, sizeof(f)));
}

/* Link text that is itself a URL or a domain: the label is around it. */
static bool
text_is_url(const char *text)
{
	size_t a, z;

	trim_ws(text, &a, &z);
	if (z == a || memchr(text + a, ' ', z - a))
		return false;
	if (prefix_ci(text + a, z - a, "http://") || prefix_ci(text + a, z - a, "https://") ||
	    prefix_ci(text + a, z - a, "www.") || prefix_ci(text + a, z - a, "mailto:"))
		return true;
	for (size_t i = a; i < z; i++)
		if (text[i] == '/' || text[i] == '@') {
			z = i;
			break;
		}
	return looks_like_domain(text + a, z - a);
}

/* end of a sentence at s[i]: ". " "! " "? " and the CJK full stops */
static size_t
sentence_end(const char *s, size_t len, size_t i)
{
	unsigned char c = (unsigned char)s[i];

	if ((c == '.' || c == '!' || c == '?') && i + 1 < len && is_ws((unsigned char)s[i + 1]))
		return 1;
	if (c == '\n' && i + 1 < len && s[i + 1] == '\n')
		return 2;
	if (c == '|')
		return 1;
	if (c == 0xe3 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 && (unsigned char)s[i + 2] == 0x82)
		return 3;   /* 。 */
	if (c == 0xef && i + 2 < len && (unsigned char)s[i + 1] == 0xbc &&
	    ((unsigned char)s[i + 2] == 0x81 || (unsigned char)s[i + 2] == 0x9f))
		return 3;   /* ！ ？ */
	return 0;
}

/* offset where the last sentence of s[0..len) starts (trailing stops ignored) */
static size_t
sentence_tail(const char *s, size_t len)
{
	size_t z = len, start = 0;

	while (z > 0 && (is_ws((unsigned char)s[z - 1]) || s[z - 1] == '.' || s[z - 1] == '!' ||
	    s[z - 1] == '?' || s[z - 1] == ':'))
		z--;
	for (size_t i = 0; i < z; i++) {
		size_t n = sentence_end(s, z, i);
		if (n) {
			start = i + n;
			i += n - 1;
		}
	}
	return start;
}

/* length of the first sentence of s[0..len) */
static size_t
sentence_head(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (sentence_end(s, len, i))
			return i;
	return len;
}

static bool
phrase_in(const bw_phrases *ph, const char *s, size_t len)
{
	return len > 0 && bw_phrases_match(ph, s, len);
}

/* Labelled: phrase in the text or alt, or a "click here" text (or the URL
 * itself) with the phrase in the sentence before or after it. */
static bool
link_labelled(const bw_phrases *ph, const char *text, const char *alt, const char *before,
    const char *after)
{
	char tf[UNSUB_FOLD_STACK];
	size_t bl, al, txl = strlen(text), tfl;
	bool generic;

	/* the text is folded once for both lookups, when it is not too long */
	if (txl < sizeof(tf)) {
		tfl = bw_fold(text, txl, tf, txl + 1);
		if (bw_phrases_match_folded(ph, tf, tfl))
			return true;
		generic = txl <= UNSUB_GENERIC_MAX * 2 && tfl > 0 && generic_folded(tf, tfl);
	} else {
		if (phrase_in(ph, text, txl))
			return true;
		generic = false;   /* longer than any generic text */
	}
	if (phrase_in(ph, alt, strlen(alt)))
		return true;
	if (!(generic || text_is_url(text) || (blank(text) && text_generic(alt))))
		return false;
	bl = strlen(before);
	if (bl > UNSUB_CTX_LOOK) {
		size_t cut = bl - UNSUB_CTX_LOOK;
		while (cut < bl && ((unsigned char)before[cut] & 0xc0) == 0x80)
			cut++;
		before += cut;
		bl -= cut;
	}
	{
		size_t st = sentence_tail(before, bl);
		char tail[UNSUB_GENERIC_MAX * 2 + 1];
		size_t tl = bl - st < sizeof(tail) - 1 ? bl - st : 0;

		if (phrase_in(ph, before + st, bl - st))
			return true;
		/* "Want to unsubscribe? Click <a>here</a>": the sentence before */
		if (st > 0 && (tl > 0 || blank(before + st))) {
			memcpy(tail, before + st, tl);
			tail[tl] = 0;
			if (blank(tail) || text_generic(tail)) {
				size_t st2 = sentence_tail(before, st);
				if (phrase_in(ph, before + st2, st - st2))
					return true;
			}
		}
	}
	al = strlen(after);
	if (al > UNSUB_CTX_LOOK)
		al = UNSUB_CTX_LOOK;
	while (al > 0 && al < strlen(after) && ((unsigned char)after[al] & 0xc0) == 0x80)
		al--;
	return phrase_in(ph, after, sentence_head(after, al));
}

/* ---------------------------------------------------------------- the scan */

enum { TS_TEXT = 0, TS_URL, TS_TAG };

/*
 * Text scanner: finds http(s)://, mailto: URLs and merge tags in decoded
 * text/plain, with the text before each (the previous non-blank line and
 * the current line) to see whether a phrase labels it.
 */
typedef struct tscan {
	int state;
	char ctx[UNSUB_CTX_CAP];
	size_t clen;      /* bytes in ctx */
	size_t base;      /* where the previous non-blank line starts in ctx
	                     (what is before it no longer counts) */
	size_t line0;     /* where the current line starts in ctx */
	bool line_text;   /* the current line has non-space text */
	char *tok;
	size_t tlen, tcap;   /* tok is cut at MaxUrlLength */
	const char *close;   /* TS_TAG: closing sequence */
	size_t openlen;
	bool label;       /* phrase before the token */
} tscan;

typedef struct vstate {
	bool html;
	int index;
	char *part;
	html_parser *hp;
	tscan ts;
	/* facts */
	bool ok;              /* labelled, working, honest, visible */
	bool unrendered;      /* labelled, visible, target an unrendered tag */
	const char *hidden;   /* labelled or unsubscribe-looking working link not shown */
	bool dishonest;       /* labelled working visible link showing another domain */
	bool broken;          /* labelled visible link without a working target */
	bool rawtag;          /* raw <unsubscribe> tag in the HTML source */
	char rtail[UNSUB_TAG_TAIL];   /* end of the previous piece of HTML */
	size_t rtlen;
	bool notext_unsub;    /* visible unsubscribe-looking link with no text or alt */
	bool label_hidden;    /* shown working link whose wording is in hidden text */
	hvec notext;          /* visible working links with no text or alt */
	hvec invis;           /* working links not shown, with why */
} vstate;

struct unsub_scan {
	const bw_policy *pol;
	const bw_phrases *ph;
	mime_walker *mw;
	bool mime_stopped;
	size_t maxlinks;
	vstate *views;
	size_t nviews, capviews;
	bool view_lost;       /* a view could not be set up (no memory): no verdict */
	vstate *cur;
	hvec known;           /* labelled working URLs from every view */
	/* headers */
	unsigned lu_count, lup_count;
	char *lu_value, *lup_value;
	bool finished;
	unsub_result r;
	size_t caplinks;
	bool skip_links;      /* links are not listed (unsub_skip_links) */
	char lu_det[160], oc_det[160];
};

static void
link_record(unsub_scan *s, const char *part, const char *href, const char *text, bool visible,
    const char *why, bool unsub)
{
	unsub_link *l;
	size_t pl, hl, tl, wl;
	char *blk;

	if (s->r.nlinks >= s->maxlinks || s->skip_links)
		return;
	if (s->r.nlinks == s->caplinks) {
		size_t nc = s->caplinks ? s->caplinks * 2 : 16;
		unsub_link *nl;

		if (nc > s->maxlinks)
			nc = s->maxlinks;
		if ((nl = realloc(s->r.links, nc * sizeof(*nl))) == NULL)
			return;
		s->r.links = nl;
		s->caplinks = nc;
	}
	/* one block per link: part, href, text, why; l->part owns it */
	pl = strlen(part) + 1;
	hl = href ? strlen(href) + 1 : 0;
	tl = strlen(text);
	if (tl > UNSUB_TEXT_KEEP) {
		tl = UNSUB_TEXT_KEEP;
		while (tl > 0 && ((unsigned char)text[tl] & 0xc0) == 0x80)
			tl--;
	}
	wl = (!visible && why) ? strlen(why) + 1 : 0;
	if ((blk = malloc(pl + hl + tl + 1 + wl)) == NULL)
		return;
	l = &s->r.links[s->r.nlinks];
	memset(l, 0, sizeof(*l));
	l->part = memcpy(blk, part, pl);
	blk += pl;
	if (href) {
		l->href = memcpy(blk, href, hl);
		blk += hl;
	}
	l->text = memcpy(blk, text, tl);
	l->text[tl] = 0;
	blk += tl + 1;
	if (wl)
		l->why = memcpy(blk, why, wl);
	l->visible = visible;
	l->unsubscribe = unsub;
	s->r.nlinks++;
}

/* ---- text scanner ---- */

/* ctx is full: keep the newer half, cut at a character boundary */
static void
ts_ctx_shift(tscan *t)
{
	size_t drop = sizeof(t->ctx) / 2;

	while (drop < t->clen && ((unsigned char)t->ctx[drop] & 0xc0) == 0x80)
		drop++;
	memmove(t->ctx, t->ctx + drop, t->clen - drop);
	t->clen -= drop;
	t->base = t->base > drop ? t->base - drop : 0;
	t->line0 = t->line0 > drop ? t->line0 - drop : 0;
}

/* ctx was cut back: no line starts after its end */
static void
ts_ctx_clamp(tscan *t)
{
	if (t->line0 > t->clen)
		t->line0 = t->clen;
	if (t->base > t->clen)
		t->base = t->clen;
}

static void
ts_ctx_put(tscan *t, char c)
{
	if (t->clen == sizeof(t->ctx))
		ts_ctx_shift(t);
	t->ctx[t->clen++] = c;
}

/* a run of plain text: no newline and nothing that starts a token */
static void
ts_ctx_append(tscan *t, const char *p, size_t n)
{
	for (size_t k = 0; k < n && !t->line_text; k++)
		if (!is_ws((unsigned char)p[k]))
			t->line_text = true;
	if (n > sizeof(t->ctx) / 2) {
		/* only the end can matter */
		size_t cut = n - sizeof(t->ctx) / 2;
		while (cut < n && ((unsigned char)p[cut] & 0xc0) == 0x80)
			cut++;
		t->clen = 0;
		t->base = t->line0 = 0;
		p += cut;
		n -= cut;
	}
	while (n > 0) {
		size_t room, m;

		if (t->clen == sizeof(t->ctx))
			ts_ctx_shift(t);
		room = sizeof(t->ctx) - t->clen;
		m = n < room ? n : room;
		memcpy(t->ctx + t->clen, p, m);
		t->clen += m;
		p += m;
		n -= m;
	}
}

static bool
ts_ctx_ends(const tscan *t, const char *s)
{
	size_t n = strlen(s);

	if (t->clen - t->base < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)t->ctx[t->clen - n + i]) != s[i])
			return false;
	/* a word boundary before the scheme: not "xhttp://" */
	if (is_alnum((unsigned char)s[0]) && t->clen - t->base > n &&
	    is_alnum((unsigned char)t->ctx[t->clen - n - 1]))
		return false;
	return true;
}

static void
ts_tok_put(unsub_scan *s, tscan *t, char c)
{
	size_t max = (size_t)s->pol->conf.max_url_length;

	if (max < 64)
		max = 64;
	if (t->tlen >= max)
		return;
	if (t->tlen + 1 >= t->tcap) {
		size_t nc = t->tcap ? t->tcap * 2 : 128;
		char *nt;

		if (nc > max + 1)
			nc = max + 1;
		if ((nt = realloc(t->tok, nc)) == NULL)
			return;
		t->tok = nt;
		t->tcap = nc;
	}
	t->tok[t->tlen++] = c;
	t->tok[t->tlen] = 0;
}

static void
ts_tok_append(unsub_scan *s, tscan *t, const char *p, size_t n)
{
	size_t max = (size_t)s->pol->conf.max_url_length;

	if (max < 64)
		max = 64;
	if (n > (t->tlen < max ? max - t->tlen : 0))
		n = t->tlen < max ? max - t->tlen : 0;
	if (n == 0)
		return;
	if (t->tlen + n + 1 > t->tcap) {
		size_t nc = t->tcap ? t->tcap : 128;
		char *nt;

		while (nc < t->tlen + n + 1)
			nc *= 2;
		if (nc > max + 1)
			nc = max + 1;
		if ((nt = realloc(t->tok, nc)) == NULL)
			return;
		t->tok = nt;
		t->tcap = nc;
	}
	memcpy(t->tok + t->tlen, p, n);
	t->tlen += n;
	t->tok[t->tlen] = 0;
}

static bool
line_has_words(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (is_alnum((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/* does the text end with a full stop (white space ignored)? */
static bool
ends_sentence(const char *s, size_t len)
{
	while (len > 0 && is_ws((unsigned char)s[len - 1]))
		len--;
	if (len == 0)
		return false;
	if (s[len - 1] == '.' || s[len - 1] == '!' || s[len - 1] == '?')
		return true;
	return len >= 3 && (memcmp(s + len - 3, "\xe3\x80\x82", 3) == 0 ||
	    memcmp(s + len - 3, "\xef\xbc\x81", 3) == 0 || memcmp(s + len - 3, "\xef\xbc\x9f", 3) == 0);
}

/* Is a phrase in the text before the token? (text scanner) */
static bool
ts_label(unsub_scan *s, const tscan *t, size_t end)
{
	const char *c = t->ctx + t->base;
	size_t st, cur;

	end -= t->base;
	cur = t->line0 - t->base <= end ? t->line0 - t->base : 0;

	/* the current line's last sentence, or the previous line's last
	 * sentence and the current line when the latter has no full stop */
	st = sentence_tail(c + cur, end - cur);
	if (st > 0)
		st += cur;
	else if (cur > 0 && !(line_has_words(c + cur, end - cur) && ends_sentence(c, cur)))
		st = sentence_tail(c, cur);
	else
		st = cur;
	if (end - st > UNSUB_CTX_LOOK) {
		st = end - UNSUB_CTX_LOOK;
		while (st < end && ((unsigned char)c[st] & 0xc0) == 0x80)
			st++;
	}
	return phrase_in(s->ph, c + st, end - st);
}

/* The token is complete: a URL or a merge tag in a text/plain view. */
static void
ts_token_done(unsub_scan *s, vstate *v, tscan *t, bool tag)
{
	if (t->tlen == 0 || t->tok == NULL)
		return;
	if (!tag) {
		/* trailing punctuation belongs to the sentence */
		while (t->tlen > 0 && strchr(".,;:!?'*", t->tok[t->tlen - 1]))
			t->tok[--t->tlen] = 0;
		if (t->tlen > 0 && t->tok[t->tlen - 1] == ')' && memchr(t->tok, '(', t->tlen) == NULL)
			t->tok[--t->tlen] = 0;
	}
	if (tag) {
		if (t->label)
			v->unrendered = true;
		link_record(s, v->part, t->tok, "", true, NULL, t->label);
		return;
	}
	if (t->label && unsub_target_works(t->tok)) {
		v->ok = true;
		hvec_add(&s->known, hash_bytes(t->tok, t->tlen), NULL, s->maxlinks);
	} else if (t->label && unsub_target_unrendered(t->tok))
		v->unrendered = true;
	link_record(s, v->part, t->tok, "", true, NULL, t->label);
}

static bool
url_end_char(unsigned char c)
{
	return c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '`';
}

/* may c be inside a merge tag opened by t->close? ("[mailto:..." is not one) */
static bool
tag_char(const tscan *t, unsigned char c)
{
	if (is_alnum(c) || c == '_' || c == '.' || c == '-')
		return true;
	if ((c == ' ' || c == ':') && t->close[0] != ']')
		return true;
	return strchr(t->close, c) != NULL && c != 0;
}

static bool
tag_accept(const tscan *t)
{
	const char *in;
	size_t n;

	if (t->close[0] != ']')
		return true;
	/* [name]: only when it names an unsubscribe link or is an upper-case tag */
	in = t->tok + 1;
	n = t->tlen - 2;
	if (n == 0)
		return false;
	if (memcasemem(in, n, "unsub"))
		return true;
	for (size_t i = 0; i < n; i++)
		if ((in[i] >= 'a' && in[i] <= 'z') || in[i] == ' ')
			return false;
	return !(in[0] >= '0' && in[0] <= '9');
}

static void ts_text_byte(unsub_scan *s, vstate *v, tscan *t, unsigned char c);

static void
ts_start(unsub_scan *s, tscan *t, size_t seqlen, const char *seq, const char *close)
{
	/* the opening sequence leaves the text and starts the token */
	t->clen -= seqlen;
	ts_ctx_clamp(t);
	t->label = ts_label(s, t, t->clen);
	t->tlen = 0;
	for (size_t i = 0; i < seqlen; i++)
		ts_tok_put(s, t, seq[i]);
	t->state = close ? TS_TAG : TS_URL;
	t->close = close;
	t->openlen = seqlen;
}

/* after a token the text before the next one starts afresh */
static void
ts_after_token(tscan *t)
{
	t->clen = 0;
	t->base = t->line0 = 0;
	t->line_text = true;
	t->state = TS_TEXT;
}

static void
ts_text_byte(unsub_scan *s, vstate *v, tscan *t, unsigned char c)
{
	if (c == '\n') {
		if (t->line_text) {
			/* the current line becomes the previous one; ctx keeps
			   older text until it is full (no move at every line) */
			t->base = t->line0;
			ts_ctx_put(t, '\n');
			t->line0 = t->clen;
		} else
			t->clen = t->line0;   /* a blank line: keep the previous one */
		t->line_text = false;
		return;
	}
	ts_ctx_put(t, (char)c);
	if (!is_ws(c))
		t->line_text = true;
	switch (c) {
	case '/':
		if (ts_ctx_ends(t, "https://"))
			ts_start(s, t, 8, "https://", NULL);
		else if (ts_ctx_ends(t, "http://"))
			ts_start(s, t, 7, "http://", NULL);
		break;
	case ':':
		if (ts_ctx_ends(t, "mailto:"))
			ts_start(s, t, 7, "mailto:", NULL);
		break;
	case '|':
		if (ts_ctx_ends(t, "*|"))
			ts_start(s, t, 2, "*|", "|*");
		break;
	case '{':
		if (ts_ctx_ends(t, "{{"))
			ts_start(s, t, 2, "{{", "}}");
		break;
	case '%':
		if (ts_ctx_ends(t, "{%"))
			ts_start(s, t, 2, "{%", "%}");
		else if (ts_ctx_ends(t, "<%"))
			ts_start(s, t, 2, "<%", "%>");
		else if (ts_ctx_ends(t, "%%"))
			ts_start(s, t, 2, "%%", "%%");
		break;
	case '[':
		ts_start(s, t, 1, "[", "]");
		break;
	case '>':
		if (ts_ctx_ends(t, "<unsubscribe>")) {
			t->clen -= 13;
			ts_ctx_clamp(t);
			t->label = true;   /* the tag names itself */
			t->tlen = 0;
			for (const char *p = "<unsubscribe>"; *p; p++)
				ts_tok_put(s, t, *p);
			ts_token_done(s, v, t, true);
			ts_after_token(t);
		}
		break;
	default:
		break;
	}
}

static void
ts_byte(unsub_scan *s, vstate *v, tscan *t, unsigned char c)
{
	if (t->state == TS_URL) {
		if (!url_end_char(c)) {
			ts_tok_put(s, t, (char)c);
			return;
		}
		ts_token_done(s, v, t, false);
		ts_after_token(t);
		ts_text_byte(s, v, t, c);
		return;
	}
	if (t->state == TS_TAG) {
		size_t cl = strlen(t->close);

		if (tag_char(t, c) && t->tlen < UNSUB_TAG_MAX) {
			ts_tok_put(s, t, (char)c);
			if (t->tlen >= t->openlen + cl + (t->close[0] == ']' ? 0 : 1) &&
			    memcmp(t->tok + t->tlen - cl, t->close, cl) == 0) {
				if (tag_accept(t)) {
					ts_token_done(s, v, t, true);
					ts_after_token(t);
				} else {
					/* not a tag: its bytes are plain text again */
					for (size_t i = 0; i < t->tlen; i++)
						ts_ctx_put(t, t->tok[i]);
					t->state = TS_TEXT;
				}
			}
			return;
		}
		/* not a tag: give its bytes back as text, then look at c */
		for (size_t i = 0; i < t->tlen; i++)
			ts_ctx_put(t, t->tok[i]);
		t->state = TS_TEXT;
		ts_text_byte(s, v, t, c);
		return;
	}
	ts_text_byte(s, v, t, c);
}

/* bytes that may end a line or start a URL or a merge tag */
static const unsigned char ts_special[256] = {
	['\n'] = 1, ['/'] = 1, [':'] = 1, ['|'] = 1, ['{'] = 1, ['%'] = 1, ['['] = 1, ['>'] = 1,
};

/* how many bytes from b (n of them) are not ts_special: sixteen at a time
 * where the machine has SSE2 */
static inline size_t
ts_plain_span(const unsigned char *b, size_t n)
{
	size_t j = 0;
#ifdef __SSE2__
	const __m128i c1 = _mm_set1_epi8('\n'), c2 = _mm_set1_epi8('/'), c3 = _mm_set1_epi8(':'),
	    c4 = _mm_set1_epi8('|'), c5 = _mm_set1_epi8('{'), c6 = _mm_set1_epi8('%'),
	    c7 = _mm_set1_epi8('['), c8 = _mm_set1_epi8('>');

	for (; j + 16 <= n; j += 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + j));
		__m128i m = _mm_or_si128(
		    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, c1), _mm_cmpeq_epi8(x, c2)),
			_mm_or_si128(_mm_cmpeq_epi8(x, c3), _mm_cmpeq_epi8(x, c4))),
		    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, c5), _mm_cmpeq_epi8(x, c6)),
			_mm_or_si128(_mm_cmpeq_epi8(x, c7), _mm_cmpeq_epi8(x, c8))));
		unsigned k = (unsigned)_mm_movemask_epi8(m);
		if (k)
			return j + (size_t)__builtin_ctz(k);
	}
#endif
	while (j + 4 <= n && !(ts_special[b[j]] | ts_special[b[j + 1]] |
	    ts_special[b[j + 2]] | ts_special[b[j + 3]]))
		j += 4;
	while (j < n && !ts_special[b[j]])
		j++;
	return j;
}

static void
ts_feed(unsub_scan *s, vstate *v, tscan *t, const char *buf, size_t len)
{
	const unsigned char *b = (const unsigned char *)buf;
	size_t i = 0;

	while (i < len) {
		size_t j = i;

		if (t->state == TS_TEXT) {
			j += ts_plain_span(b + j, len - j);
			if (j > i)
				ts_ctx_append(t, buf + i, j - i);
		} else if (t->state == TS_URL) {
			while (j < len && !url_end_char(b[j]))
				j++;
			ts_tok_append(s, t, buf + i, j - i);
		}
		if (j == i)
			ts_byte(s, v, t, b[j++]);
		i = j;
	}
}

/* "<unsubscribe" and then '>', '/' or white space, at s (n bytes) */
static bool
cm_tag_at(const char *s, size_t n)
{
	static const char tag[] = "<unsubscribe";

	if (n < sizeof(tag))
		return false;
	for (size_t i = 1; i + 1 < sizeof(tag); i++)
		if (lower((unsigned char)s[i]) != tag[i])
			return false;
	return s[sizeof(tag) - 1] == '>' || s[sizeof(tag) - 1] == '/' ||
	    is_ws((unsigned char)s[sizeof(tag) - 1]);
}

/* Campaign Monitor's raw <unsubscribe> tag in the HTML source, found
 * across pieces: the end of the previous piece is kept. */
static void
html_tag_scan(vstate *v, const char *buf, size_t len)
{
	const char *p = buf, *e = buf + len;

	if (v->rawtag || len == 0)
		return;
	if (v->rtlen) {
		char j[UNSUB_TAG_TAIL + 13];
		size_t m = len < 13 ? len : 13;

		memcpy(j, v->rtail, v->rtlen);
		memcpy(j + v->rtlen, buf, m);
		for (size_t i = 0; i < v->rtlen; i++)
			if (j[i] == '<' && cm_tag_at(j + i, v->rtlen + m - i))
				v->rawtag = true;
	}
	/* "<u" or "<U": HTML has a '<' every few dozen bytes */
	for (;;) {
		size_t i = bw_find_pair(p, (size_t)(e - p), '<', 'u', 0x20);

		if (i == (size_t)(e - p))
			break;
		p += i;
		if (cm_tag_at(p, (size_t)(e - p)))
			v->rawtag = true;
		p++;
	}
	if (len >= UNSUB_TAG_TAIL) {
		memcpy(v->rtail, e - UNSUB_TAG_TAIL, UNSUB_TAG_TAIL);
		v->rtlen = UNSUB_TAG_TAIL;
	} else {
		size_t keep = v->rtlen + len > UNSUB_TAG_TAIL ? UNSUB_TAG_TAIL - len : v->rtlen;

		memmove(v->rtail, v->rtail + v->rtlen - keep, keep);
		memcpy(v->rtail + keep, buf, len);
		v->rtlen = keep + len;
	}
}

static void
ts_end(unsub_scan *s, vstate *v, tscan *t)
{
	if (t->state == TS_URL)
		ts_token_done(s, v, t, false);
	t->state = TS_TEXT;
	free(t->tok);
	t->tok = NULL;
	t->tlen = t->tcap = 0;
}

/* ---- HTML links ---- */

static void
unsub_on_link(void *ud, const html_link *l)
{
	unsub_scan *s = ud;
	vstate *v = s->cur;
	const char *href = l->href, *text = nz(l->text), *alt = nz(l->alt);
	const char *full_text = text, *full_alt = alt;
	bool has_href = href && *href;
	bool works, unrendered, labelled, honest, visible = l->visible;
	const char *why = l->why, *wh = NULL;
	size_t whl = 0;
	uint64_t h = has_href ? hash_href(href) : 0;

	if (v == NULL)
		return;
	/* a shown link is labelled by what the reader sees of it */
	if (visible && l->visible_text)
		text = l->visible_text;
	if (visible && l->visible_alt)
		alt = l->visible_alt;
	/* a <link> element in the document is never rendered */
	if (l->tag && strcmp(l->tag, "link") == 0) {
		visible = false;
		if (why == NULL)
			why = "a <link> element";
	}
	if (!visible && why == NULL)
		why = "markup that is not shown";
	works = has_href && target_works_host(href, &wh, &whl);
	unrendered = has_href && !works && unsub_target_unrendered(href);
	if (l->tag && strcmp(l->tag, "url") == 0)
		labelled = link_labelled(s->ph, has_href ? href : "", "", nz(l->before), "");
	else
		labelled = link_labelled(s->ph, text, alt, nz(l->before), nz(l->after));
	honest = !works || link_honest(text, href, wh, whl);
	if (labelled && works)
		hvec_add(&s->known, h, NULL, s->maxlinks);
	if (visible) {
		if (labelled && works && honest)
			v->ok = true;
		else if (labelled && unrendered)
			v->unrendered = true;
		else if (labelled && works)
			v->dishonest = true;
		else if (labelled)
			v->broken = true;
		if (works && !labelled && (strcmp(full_text, text) != 0 || strcmp(full_alt, alt) != 0) &&
		    link_labelled(s->ph, full_text, full_alt, "", ""))
			v->label_hidden = true;
		if (works && blank(text) && blank(alt)) {
			hvec_add(&v->notext, h, NULL, s->maxlinks);
			if (href_unsubish(href))
				v->notext_unsub = true;
		}
	} else if (works) {
		if ((labelled || href_unsubish(href)) && v->hidden == NULL)
			v->hidden = why;
		hvec_add(&v->invis, h, why, s->maxlinks);
	}
	link_record(s, "text/html", has_href ? href : NULL, blank(text) ? alt : text, visible, why,
	    labelled);
}

/* ---- MIME callbacks ---- */

static void
unsub_part_begin(void *ud, const mime_part *p)
{
	unsub_scan *s = ud;
	const bw_conf *c = &s->pol->conf;
	vstate *v;

	s->cur = NULL;
	if (p->charset_unknown)
		s->r.charset_unknown = true;
	if (!p->view || p->attachment || p->in_rfc822)
		return;
	if (strcmp(p->type, "text/html") != 0 && strcmp(p->type, "text/plain") != 0)
		return;
	if (s->nviews == s->capviews) {
		size_t nc = s->capviews ? s->capviews * 2 : 4;
		vstate *nv = realloc(s->views, nc * sizeof(*nv));
		if (nv == NULL) {
			s->view_lost = true;
			return;
		}
		s->views = nv;
		s->capviews = nc;
	}
	v = &s->views[s->nviews];
	memset(v, 0, sizeof(*v));
	v->html = strcmp(p->type, "text/html") == 0;
	v->index = p->index;
	if ((v->part = strdup(p->type)) == NULL) {
		s->view_lost = true;
		return;
	}
	if (v->html) {
		html_limits hl = {
			.max_depth = c->max_html_depth,
			.max_links = c->max_links,
			.max_url = (size_t)c->max_url_length,
			.min_font_px = (double)c->min_font_size,
			.max_css_rules = c->max_css_rules,
		};
		html_cb cb = { .link = unsub_on_link };

		if ((v->hp = html_new(&hl, &cb, s)) == NULL) {
			free(v->part);
			s->view_lost = true;
			return;
		}
	}
	s->nviews++;
	s->cur = v;
}

static void
unsub_part_text(void *ud, const mime_part *p, const char *utf8, size_t len)
{
	unsub_scan *s = ud;
	vstate *v = s->cur;

	(void)p;
	if (v == NULL)
		return;
	if (v->html) {
		html_feed(v->hp, utf8, len);
		html_tag_scan(v, utf8, len);
	} else
		ts_feed(s, v, &v->ts, utf8, len);
}

static void
unsub_part_end(void *ud, const mime_part *p)
{
	unsub_scan *s = ud;
	vstate *v = s->cur;

	if (p->charset_unknown)
		s->r.charset_unknown = true;
	if (v == NULL)
		return;
	if (v->html && v->hp) {
		const char *lim;

		html_finish(v->hp);
		if ((lim = html_limit_hit(v->hp)) != NULL && s->r.limit == NULL)
			s->r.limit = lim;
		html_free(v->hp);
		v->hp = NULL;
	}
	ts_end(s, v, &v->ts);
	s->cur = NULL;
}

/* ---------------------------------------------------------------- headers */

static void
set_detail(char *detail, size_t detsz, const char *what)
{
	if (detail && detsz)
		snprintf(detail, detsz, "%s", what);
}

/* skip white space and RFC 5322 comments; false on an unclosed comment */
static bool
skip_cfws(const char **pp)
{
	const char *p = *pp;

	for (;;) {
		while (is_ws((unsigned char)*p))
			p++;
		if (*p != '(')
			break;
		{
			unsigned depth = 0;
			do {
				if (*p == '\\' && p[1])
					p++;
				else if (*p == '(')
					depth++;
				else if (*p == ')')
					depth--;
				p++;
			} while (*p && depth > 0);
			if (depth > 0)
				return false;
		}
	}
	*pp = p;
	return true;
}

/* One URI from inside <...>, white space removed. */
static bool
lu_check_uri(const char *u, size_t len, bool *has_https, bool *has_mailto, char *detail,
    size_t detsz)
{
	const char *h;
	size_t hl;

	if (len == 0) {
		set_detail(detail, detsz, "empty <>");
		return false;
	}
	if (unsub_target_unrendered(u) || memchr(u, '|', len) || memchr(u, '{', len)) {
		set_detail(detail, detsz, "unrendered merge tag");
		return false;
	}
	if (prefix_ci(u, len, "mailto:")) {
		if (!mailto_domain(u, len, &h, &hl)) {
			set_detail(detail, detsz, "mailto: URI without an address");
			return false;
		}
		*has_mailto = true;
		return true;
	}
	if (prefix_ci(u, len, "https:") || prefix_ci(u, len, "http:")) {
		if (!url_host(u, len, &h, &hl)) {
			set_detail(detail, detsz, "http(s) URI without a host");
			return false;
		}
		if (prefix_ci(u, len, "https:"))
			*has_https = true;
		return true;
	}
	if (prefix_ci(u, len, "javascript:")) {
		set_detail(detail, detsz, "javascript: URI");
		return false;
	}
	{
		size_t i = 0;
		while (i < len && (is_alnum((unsigned char)u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.'))
			i++;
		if (i > 0 && i < len && u[i] == ':' && !(u[0] >= '0' && u[0] <= '9')) {
			set_detail(detail, detsz, "URI scheme other than mailto, http or https");
			return false;
		}
	}
	if (memchr(u, '@', len) && !memchr(u, '/', len)) {
		set_detail(detail, detsz, "bare address without mailto:");
		return false;
	}
	set_detail(detail, detsz, "relative URL");
	return false;
}

unsub_hdr
unsub_parse_list_unsubscribe(const char *value, bool *has_https, bool *has_mailto, char *detail,
    size_t detsz)
{
	const char *p = value;
	char *buf;
	bool ok = true, any = false;
	size_t vl;

	*has_https = *has_mailto = false;
	set_detail(detail, detsz, "");
	if (value == NULL)
		return UNSUB_HDR_ABSENT;
	vl = strlen(value);
	if ((buf = malloc(vl + 1)) == NULL) {
		set_detail(detail, detsz, "out of memory");
		return UNSUB_HDR_MALFORMED;
	}
	while (ok) {
		size_t bl = 0;

		if (!skip_cfws(&p)) {
			set_detail(detail, detsz, "unclosed comment");
			ok = false;
			break;
		}
		if (*p == 0) {
			if (!any) {
				set_detail(detail, detsz, "empty value");
				ok = false;
			} else {
				set_detail(detail, detsz, "empty item after ','");
				ok = false;
			}
			break;
		}
		if (*p != '<') {
			if (p[0] == '=' && p[1] == '?')
				set_detail(detail, detsz, "RFC 2047 encoded-word instead of <URI>");
			else if (*p == ';')
				set_detail(detail, detsz, "';' used as separator (RFC 2369 wants ',')");
			else if (*p == ',')
				set_detail(detail, detsz, "empty item before ','");
			else if (any)
				set_detail(detail, detsz, "text between items (URIs must be in angle brackets)");
			else {
				const char *e = p;
				while (*e && *e != ',' && !is_ws((unsigned char)*e))
					e++;
				if (memchr(p, '@', (size_t)(e - p)) && !prefix_ci(p, (size_t)(e - p), "mailto:") &&
				    !memchr(p, '/', (size_t)(e - p)))
					set_detail(detail, detsz, "bare address, not <mailto:...>");
				else
					set_detail(detail, detsz, "URI not in angle brackets");
			}
			ok = false;
			break;
		}
		p++;
		while (*p && *p != '>' && *p != '<') {
			if (!is_ws((unsigned char)*p))
				buf[bl++] = *p;
			p++;
		}
		buf[bl] = 0;
		if (*p != '>') {
			set_detail(detail, detsz, "unclosed '<'");
			ok = false;
			break;
		}
		p++;
		if (!lu_check_uri(buf, bl, has_https, has_mailto, detail, detsz)) {
			ok = false;
			break;
		}
		any = true;
		if (!skip_cfws(&p)) {
			set_detail(detail, detsz, "unclosed comment");
			ok = false;
			break;
		}
		if (*p == 0)
			break;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == ';')
			set_detail(detail, detsz, "';' used as separator (RFC 2369 wants ',')");
		else
			set_detail(detail, detsz, "text after '>' (items are separated by ',')");
		ok = false;
	}
	free(buf);
	if (!ok) {
		*has_https = *has_mailto = false;
		return UNSUB_HDR_MALFORMED;
	}
	return UNSUB_HDR_OK;
}

static char *
hdr_copy(const unsub_scan *s, const char *value)
{
	size_t max = (size_t)s->pol->conf.max_header_line;
	size_t len = strlen(value);

	return dup_cut(value, len, max ? max : len);
}

void
unsub_header(unsub_scan *s, const char *name, const char *value)
{
	if (s == NULL || name == NULL)
		return;
	value = nz(value);
	mime_header(s->mw, name, value);
	if (bw_ascii_caseeq(name, "list-unsubscribe")) {
		if (s->lu_count++ == 0)
			s->lu_value = hdr_copy(s, value);
	} else if (bw_ascii_caseeq(name, "list-unsubscribe-post")) {
		if (s->lup_count++ == 0)
			s->lup_value = hdr_copy(s, value);
	}
}

/* ---------------------------------------------------------------- life */

/* freed scans wait in a pool (pool.h), with their array of views */
static bw_pool scans = BW_POOL_INIT;

unsub_scan *
unsub_new(const bw_policy *pol)
{
	unsub_scan *s;
	const bw_conf *c;
	mime_limits ml;
	mime_cb cb = { unsub_part_begin, unsub_part_text, unsub_part_end };

	if (pol == NULL)
		return NULL;
	c = &pol->conf;
	if ((s = bw_pool_take(&scans)) != NULL) {
		/* the array of views is kept, with its size */
		vstate *views = s->views;
		size_t cap = s->capviews;
		memset(s, 0, sizeof(*s));
		s->views = views;
		s->capviews = cap;
	} else if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->pol = pol;
	s->ph = pol->phrases;
	s->maxlinks = c->max_links ? c->max_links : 1;
	ml.max_depth = c->max_mime_depth;
	ml.max_parts = c->max_mime_parts;
	ml.max_header_line = (size_t)c->max_header_line;
	ml.max_header_bytes = (size_t)c->max_header_bytes;
	ml.max_body_scan = (size_t)c->max_body_scan;
	if ((s->mw = mime_new(&ml, &cb, s)) == NULL) {
		free(s->views);
		free(s);
		return NULL;
	}
	return s;
}

void
unsub_skip_links(unsub_scan *s)
{
	if (s)
		s->skip_links = true;
}

bool
unsub_body_feed(unsub_scan *s, const char *buf, size_t len)
{
	if (s == NULL || s->finished)
		return false;
	if (s->mime_stopped)
		return false;
	if (mime_feed(s->mw, buf, len) != MIME_OK) {
		s->mime_stopped = true;
		return false;
	}
	return true;
}

/* Decide one view from its facts and the URLs labelled anywhere. */
static unsub_body
view_decide(const unsub_scan *s, vstate *v, const char **detail)
{
	if (v->ok) {
		*detail = "visible unsubscribe link";
		return UNSUB_VISIBLE;
	}
	if (v->unrendered || v->rawtag) {
		*detail = "unsubscribe link target is an unrendered merge tag";
		return UNSUB_UNRENDERED;
	}
	if (v->html) {
		if (v->hidden) {
			*detail = v->hidden;
			return UNSUB_HIDDEN;
		}
		if (v->label_hidden) {
			*detail = "unsubscribe wording of the link is hidden";
			return UNSUB_HIDDEN;
		}
		if (v->notext_unsub) {
			*detail = "unsubscribe link has no text (image without alt)";
			return UNSUB_HIDDEN;
		}
		for (size_t i = 0; i < v->notext.n; i++)
			if (hvec_has(&s->known, v->notext.h[i])) {
				*detail = "unsubscribe link has no text (image without alt)";
				return UNSUB_HIDDEN;
			}
		for (size_t i = 0; i < v->invis.n; i++)
			if (hvec_has(&s->known, v->invis.h[i])) {
				*detail = v->invis.why[i];
				return UNSUB_HIDDEN;
			}
	}
	if (v->dishonest)
		*detail = "link text shows another domain than its target";
	else if (v->broken)
		*detail = "unsubscribe link has no working target";
	else
		*detail = "no unsubscribe link";
	return UNSUB_ABSENT;
}

/* "link hidden by display:none"; '%' never reaches an SMTP reply */
static char *
view_detail(unsub_body b, const char *d, bool reason)
{
	char buf[200];

	if (b == UNSUB_HIDDEN && reason && strncmp(d, "inside ", 7) == 0)
		snprintf(buf, sizeof(buf), "link hidden %s", d);
	else if (b == UNSUB_HIDDEN && reason && strcmp(d, "no visible content") == 0)
		snprintf(buf, sizeof(buf), "link has no visible content");
	else if (b == UNSUB_HIDDEN && reason)
		snprintf(buf, sizeof(buf), "link hidden by %s", d);
	else
		snprintf(buf, sizeof(buf), "%s", d);
	for (char *p = buf; *p; p++)
		if (*p == '%' || (unsigned char)*p < 0x20)
			*p = ' ';
	return strdup(buf);
}

const unsub_result *
unsub_finish(unsub_scan *s)
{
	unsub_result *r;
	bool html_failed = false;
	size_t worst = 0;

	/* a view the reader sees was not checked: judging the others alone
	   could let a hidden link through */
	if (s == NULL || s->view_lost)
		return NULL;
	r = &s->r;
	if (s->finished)
		return r;
	s->finished = true;
	mime_finish(s->mw);
	if (r->limit == NULL)
		r->limit = mime_limit_hit(s->mw);
	if (s->known.n)
		qsort(s->known.h, s->known.n, sizeof(uint64_t), cmp_u64);
	/* views */
	if (s->nviews) {
		r->views = calloc(s->nviews, sizeof(*r->views));
		if (r->views == NULL)
			return NULL;
	}
	for (size_t i = 0; i < s->nviews; i++) {
		vstate *v = &s->views[i];
		const char *d = NULL;
		unsub_body b = view_decide(s, v, &d);
		bool reason = b == UNSUB_HIDDEN && d != NULL && strncmp(d, "unsubscribe", 11) != 0;

		r->views[i].part = v->part;
		v->part = NULL;
		r->views[i].index = v->index;
		r->views[i].result = b;
		r->views[i].detail = view_detail(b, d ? d : "not shown", reason);
		r->nviews++;
		if (v->html && b != UNSUB_VISIBLE)
			html_failed = true;
	}
	/*
	 * The message's result: when an HTML view fails, the worst HTML view;
	 * otherwise the worst of all views. No view at all: absent.
	 */
	r->body = UNSUB_ABSENT;
	r->worst = NULL;
	if (r->nviews) {
		r->body = UNSUB_VISIBLE;
		for (size_t i = 0; i < r->nviews; i++) {
			if (html_failed && !s->views[i].html)
				continue;
			if (r->worst == NULL || r->views[i].result > r->body) {
				r->body = r->views[i].result;
				worst = i;
				r->worst = &r->views[worst];
			}
		}
	}
	/* List-Unsubscribe */
	r->list_unsubscribe = UNSUB_HDR_ABSENT;
	r->lu_detail = NULL;
	if (s->lu_count > 1) {
		r->list_unsubscribe = UNSUB_HDR_MALFORMED;
		snprintf(s->lu_det, sizeof(s->lu_det), "List-Unsubscribe given %u times", s->lu_count);
		r->lu_detail = s->lu_det;
	} else if (s->lu_count == 1) {
		r->list_unsubscribe = unsub_parse_list_unsubscribe(nz(s->lu_value), &r->lu_https,
		    &r->lu_mailto, s->lu_det, sizeof(s->lu_det));
		if (r->list_unsubscribe == UNSUB_HDR_MALFORMED)
			r->lu_detail = s->lu_det;
	}
	/* List-Unsubscribe-Post */
	r->one_click = UNSUB_HDR_ABSENT;
	r->oc_detail = NULL;
	if (s->lup_count > 0) {
		const char *v = nz(s->lup_value);
		size_t a, z;

		trim_ws(v, &a, &z);
		r->one_click = UNSUB_HDR_MALFORMED;
		if (s->lup_count > 1)
			snprintf(s->oc_det, sizeof(s->oc_det), "List-Unsubscribe-Post given %u times",
			    s->lup_count);
		else if (z - a != 26 || memcmp(v + a, "List-Unsubscribe=One-Click", 26) != 0)
			snprintf(s->oc_det, sizeof(s->oc_det), "value is not \"List-Unsubscribe=One-Click\"");
		else if (r->list_unsubscribe == UNSUB_HDR_ABSENT)
			snprintf(s->oc_det, sizeof(s->oc_det), "no List-Unsubscribe header");
		else if (r->list_unsubscribe == UNSUB_HDR_MALFORMED)
			snprintf(s->oc_det, sizeof(s->oc_det), "List-Unsubscribe is malformed");
		else if (!r->lu_https)
			snprintf(s->oc_det, sizeof(s->oc_det), "List-Unsubscribe has no https URI");
		else
			r->one_click = UNSUB_HDR_OK;
		if (r->one_click == UNSUB_HDR_MALFORMED)
			r->oc_detail = s->oc_det;
	}
	return r;
}

void
unsub_free(unsub_scan *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nviews; i++) {
		vstate *v = &s->views[i];
		if (v->hp)
			html_free(v->hp);
		free(v->ts.tok);
		free(v->part);
		hvec_free(&v->notext);
		hvec_free(&v->invis);
	}
	for (size_t i = 0; i < s->r.nviews; i++) {
		free(s->r.views[i].part);
		free(s->r.views[i].detail);
	}
	free(s->r.views);
	for (size_t i = 0; i < s->r.nlinks; i++) {
		free(s->r.links[i].part);   /* the block of href, text and why too */
	}
	free(s->r.links);
	hvec_free(&s->known);
	free(s->lu_value);
	free(s->lup_value);
	mime_free(s->mw);
	if ((s = bw_pool_give(&scans, s)) != NULL) {
		free(s->views);
		free(s);
	}
}
