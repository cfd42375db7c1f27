/*
 * fuzz_html.c - libFuzzer target for the HTML tokenizer (policy/html.c).
 *
 * The first three bytes choose the bounds and how the rest is cut into
 * chunks. The document is parsed whole and in those chunks: besides memory
 * and undefined behaviour errors, the target fails when the two runs report
 * different links, or a link's facts break their invariants (among them:
 * a document that is UTF-8 gives strings that are UTF-8).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ipolicy \
 *       tests/fuzz/fuzz_html.c policy/html.c -o fuzz_html
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct digest {
	uint64_t h;
	unsigned n;
	int utf8;     /* the document is UTF-8: so must every string be */
} digest;

/* s[0..n) is UTF-8 as RFC 3629 has it (no overlong form, no surrogate) */
static int
utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0, k;

	while (i < n && (k = bw_utf8_seq(s + i, n - i)) > 0)
		i += k;
	return i == n;
}

static void
str_ok(const digest *d, const char *s)
{
	if (d->utf8 && s != NULL && !utf8_ok((const uint8_t *)s, strlen(s)))
		abort();
}

static void
mix(digest *d, const char *s)
{
	if (s == NULL) {
		d->h = (d->h ^ 0xff) * 0x100000001b3ull;
		return;
	}
	for (; *s; s++)
		d->h = (d->h ^ (uint8_t)*s) * 0x100000001b3ull;
	d->h = (d->h ^ 0xfe) * 0x100000001b3ull;
}

static void
on_link(void *ud, const html_link *l)
{
	digest *d = ud;

	/* the facts hold together */
	if (l->tag == NULL || l->text == NULL || l->alt == NULL || l->before == NULL ||
	    l->after == NULL || l->visible_text == NULL || l->visible_alt == NULL)
		abort();
	if (l->visible != (l->why == NULL))
		abort();
	if (strlen(l->before) > 200 || strlen(l->after) > 200)
		abort();
	/* what a UTF-8 document reports is UTF-8 (a report of it is JSON) */
	str_ok(d, l->href);
	str_ok(d, l->text);
	str_ok(d, l->visible_text);
	str_ok(d, l->alt);
	str_ok(d, l->visible_alt);
	str_ok(d, l->before);
	str_ok(d, l->after);
	mix(d, l->tag);
	mix(d, l->href);
	mix(d, l->text);
	mix(d, l->visible_text);
	mix(d, l->alt);
	mix(d, l->visible_alt);
	mix(d, l->before);
	mix(d, l->after);
	mix(d, l->why);
	d->h ^= (uint64_t)l->visible << 1 | (uint64_t)l->href_truncated;
	d->n++;
}

static void
run(const uint8_t *buf, size_t len, uint8_t cut, const html_limits *lim, digest *d)
{
	html_cb cb = { .link = on_link };
	html_parser *h = html_new(lim, &cb, d);
	size_t off = 0, i = 0;

	if (h == NULL)
		return;
	while (off < len) {
		/* cut 0: whole; else sizes that vary around cut */
		size_t n = cut == 0 ? len : 1 + (size_t)((cut * (i + 1) * 7u) % (2u * cut + 1));
		if (n > len - off)
			n = len - off;
		html_feed(h, (const char *)buf + off, n);
		off += n;
		i++;
	}
	html_finish(h);
	mix(d, html_limit_hit(h));
	html_free(h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	html_limits lim = { .max_depth = 256, .max_links = 10000, .max_url = 8192, .min_font_px = 5 };
	digest whole = { 14695981039346656037ull, 0 }, cut = whole;

	if (size < 3)
		return 0;
	if (data[0] & 0x80) {
		/* small bounds, to reach them */
		lim.max_depth = 1 + (data[0] & 0x1f);
		lim.max_links = 1 + (data[1] & 0x0f);
		lim.max_url = 1 + (size_t)(data[1] >> 4) * 16;
		lim.max_css_rules = 1 + (data[0] >> 5 & 3);
	}
	whole.utf8 = cut.utf8 = utf8_ok(data + 3, size - 3);
	run(data + 3, size - 3, 0, &lim, &whole);
	run(data + 3, size - 3, (uint8_t)(data[2] | 1), &lim, &cut);
	if (whole.h != cut.h || whole.n != cut.n)
		abort();  /* the chunks changed the result */
	return 0;
}
