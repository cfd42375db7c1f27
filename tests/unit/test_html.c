/*
 * test_html.c - the HTML tokenizer and visibility tracker (policy/html.c).
 *
 * Tables of small documents: each visibility trick and its visible
 * counterpart, tokenizer edge cases, the text around a link, the places
 * that hide links but must still report them, the bounds; and for all of
 * them and every document in TEST_DATA/html, the same facts whatever the
 * input is cut into (chunks of 1, 3, 7, 4096 bytes and whole).
 */
#include <check.h>
#include <pthread.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "utf8.h"

#define U "https://t.example/u"

/* ---- collecting the links ---- */
typedef struct got_link {
	char *tag, *href, *text, *vtext, *alt, *valt, *before, *after, *why;
	int visible, trunc;
} got_link;

typedef struct got {
	got_link *l;
	size_t n, cap;
	const char *limit;
} got;

static char *
dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void
on_link(void *ud, const html_link *l)
{
	got *g = ud;

	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->l = realloc(g->l, g->cap * sizeof(*g->l));
		ck_assert_ptr_nonnull(g->l);
	}
	got_link *k = &g->l[g->n++];
	k->tag = dup(l->tag);
	k->href = dup(l->href);
	k->text = dup(l->text);
	k->vtext = dup(l->visible_text);
	k->alt = dup(l->alt);
	k->valt = dup(l->visible_alt);
	k->before = dup(l->before);
	k->after = dup(l->after);
	k->why = dup(l->why);
	k->visible = l->visible;
	k->trunc = l->href_truncated;
	/* the facts are consistent */
	ck_assert_msg(l->visible == (l->why == NULL), "visible and why disagree for %s", l->href);
	ck_assert_ptr_nonnull(l->text);
	ck_assert_ptr_nonnull(l->before);
	ck_assert_ptr_nonnull(l->after);
	ck_assert_ptr_nonnull(l->alt);
}

static void
got_free(got *g)
{
	for (size_t i = 0; i < g->n; i++) {
		got_link *k = &g->l[i];
		free(k->tag), free(k->href), free(k->text), free(k->vtext), free(k->alt);
		free(k->valt), free(k->before), free(k->after), free(k->why);
	}
	free(g->l);
	memset(g, 0, sizeof(*g));
}

static const html_limits deflim = {
	.max_depth = 256, .max_links = 10000, .max_url = 8192, .min_font_px = 5,
};

/* parse buf fed in chunks of chunk bytes (0: whole) */
static void
run_lim(const char *buf, size_t len, size_t chunk, const html_limits *lim, got *g)
{
	html_cb cb = { .link = on_link };
	html_parser *h = html_new(lim, &cb, g);

	memset(g, 0, sizeof(*g));
	ck_assert_ptr_nonnull(h);
	if (chunk == 0)
		chunk = len ? len : 1;
	for (size_t off = 0; off < len; off += chunk)
		html_feed(h, buf + off, len - off < chunk ? len - off : chunk);
	html_finish(h);
	g->limit = html_limit_hit(h);
	html_free(h);
}

static void
run(const char *html, got *g)
{
	run_lim(html, strlen(html), 0, &deflim, g);
}

static const got_link *
find(const got *g, const char *href)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->l[i].href && strcmp(g->l[i].href, href) == 0)
			return &g->l[i];
	return NULL;
}

static const got_link *
first_a(const got *g)
{
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->l[i].tag, "a") == 0)
			return &g->l[i];
	return NULL;
}

/* all the facts, one line per link, to compare runs */
static char *
facts(const got *g)
{
	size_t cap = 256, len = 0;
	char *s = malloc(cap);

	s[0] = 0;
	for (size_t i = 0; i < g->n; i++) {
		const got_link *k = &g->l[i];
		char line[8192];
		int n = snprintf(line, sizeof(line), "%s|%s|%s|%s|%s|%s|%s|%s|%d|%s|%d\n", k->tag,
		    k->href ? k->href : "(null)", k->text, k->vtext, k->alt, k->valt, k->before, k->after,
		    k->visible, k->why ? k->why : "-", k->trunc);
		if (n < 0)
			n = 0;
		if ((size_t)n >= sizeof(line))
			n = sizeof(line) - 1;
		while (len + (size_t)n + 1 > cap)
			s = realloc(s, cap *= 2);
		memcpy(s + len, line, (size_t)n + 1);
		len += (size_t)n;
	}
	size_t l = strlen(g->limit ? g->limit : "-");
	s = realloc(s, len + l + 2);
	memcpy(s + len, g->limit ? g->limit : "-", l + 1);
	return s;
}

/* the same facts whatever the chunks */
static void
check_chunks(const char *name, const char *buf, size_t len)
{
	static const size_t sizes[] = { 1, 3, 7, 4096 };
	got whole;
	char *want;

	run_lim(buf, len, 0, &deflim, &whole);
	want = facts(&whole);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		got g;
		run_lim(buf, len, sizes[i], &deflim, &g);
		char *have = facts(&g);
		ck_assert_msg(strcmp(want, have) == 0, "%s: chunks of %zu differ:\n%s\n--- whole:\n%s", name,
		    sizes[i], have, want);
		free(have);
		got_free(&g);
	}
	free(want);
	got_free(&whole);
}

/* ---- visibility: one row per trick and per visible counterpart ---- */
static const struct vis_row {
	const char *name;
	const char *html;
	int visible;
	const char *why;
} vis_rows[] = {
	{ "a plain link is visible", "<p>To stop: <a href=\"" U "\">unsubscribe</a></p>", 1, NULL },
	{ "link hidden by display:none", "<p><a href=\"" U "\" style=\"display:none\">unsubscribe</a></p>", 0, "display:none" },
	{ "display:none in any case and spacing", "<a href=\"" U "\" style=\" DISPLAY : None ; color:red\">u</a>", 0, "display:none" },
	{ "display:none !important", "<a href=\"" U "\" style=\"display:none !important\">u</a>", 0, "display:none" },
	{ "the last declaration wins", "<a href=\"" U "\" style=\"display:none;display:inline\">u</a>", 1, NULL },
	{ "a wrapper with display:none", "<div style=\"display:none\"><p><b><a href=\"" U "\">u</a></b></p></div>", 0, "display:none" },
	{ "the outermost reason is named", "<div style=\"opacity:0\"><a href=\"" U "\" style=\"display:none\">u</a></div>", 0, "opacity:0" },
	{ "visibility:hidden", "<a href=\"" U "\" style=\"visibility:hidden\">u</a>", 0, "visibility:hidden" },
	{ "visibility:collapse", "<span style=\"visibility:collapse\"><a href=\"" U "\">u</a></span>", 0, "visibility:hidden" },
	{ "visibility:visible below hidden shows", "<div style=\"visibility:hidden\"><a href=\"" U "\" style=\"visibility:visible\">u</a></div>", 1, NULL },
	{ "opacity:0", "<a href=\"" U "\" style=\"opacity:0\">u</a>", 0, "opacity:0" },
	{ "opacity below 0.04", "<a href=\"" U "\" style=\"opacity:.03\">u</a>", 0, "opacity:0" },
	{ "opacity in percent", "<a href=\"" U "\" style=\"opacity:3%\">u</a>", 0, "opacity:0" },
	{ "opacity multiplies through nesting", "<div style=\"opacity:0.1\"><a href=\"" U "\" style=\"opacity:0.3\">u</a></div>", 0, "opacity:0" },
	{ "opacity 0.5 is visible", "<div style=\"opacity:0.5\"><a href=\"" U "\">u</a></div>", 1, NULL },
	{ "font-size:0", "<a href=\"" U "\" style=\"font-size:0\">u</a>", 0, "font-size:0" },
	{ "font-size:0px on the wrapper", "<td style=\"font-size:0px\"><a href=\"" U "\">u</a></td>", 0, "font-size:0" },
	{ "a size set again below font-size:0", "<td style=\"font-size:0px\"><div style=\"font-size:13px\"><a href=\"" U "\">u</a></div></td>", 1, NULL },
	{ "font-size:1px", "<a href=\"" U "\" style=\"font-size:1px\">u</a>", 0, "font-size too small" },
	{ "3pt is 4px", "<a href=\"" U "\" style=\"font-size:3pt\">u</a>", 0, "font-size too small" },
	{ "4pt is over 5px", "<a href=\"" U "\" style=\"font-size:4pt\">u</a>", 1, NULL },
	{ "0.2em of 16px", "<a href=\"" U "\" style=\"font-size:0.2em\">u</a>", 0, "font-size too small" },
	{ "50% of 8px", "<div style=\"font-size:8px\"><a href=\"" U "\" style=\"font-size:50%\">u</a></div>", 0, "font-size too small" },
	{ "rem is of the root, not the parent", "<div style=\"font-size:2px\"><a href=\"" U "\" style=\"font-size:1rem\">u</a></div>", 1, NULL },
	{ "xx-small is 9px", "<a href=\"" U "\" style=\"font-size:xx-small\">u</a>", 1, NULL },
	{ "font shorthand 0/0", "<a href=\"" U "\" style=\"font:0/0 a\">u</a>", 0, "font-size:0" },
	{ "font shorthand with a size", "<a href=\"" U "\" style=\"font:bold 1px/1 Arial\">u</a>", 0, "font-size too small" },
	{ "font size attribute 1 is 10px", "<font size=\"1\"><a href=\"" U "\">u</a></font>", 1, NULL },
	{ "max-height:0 with overflow:hidden", "<div style=\"max-height:0;overflow:hidden\"><a href=\"" U "\">u</a></div>", 0, "max-height:0 with overflow:hidden" },
	{ "display:block span with max-height:0", "<span style=\"display:block;max-height:0px;overflow:hidden\"><a href=\"" U "\">u</a></span>", 0, "max-height:0 with overflow:hidden" },
	{ "max-height does not apply to inline", "<span style=\"max-height:0;overflow:hidden\"><a href=\"" U "\">u</a></span>", 1, NULL },
	{ "max-height:0 without hidden overflow", "<div style=\"max-height:0\"><a href=\"" U "\">u</a></div>", 1, NULL },
	{ "height:0 with overflow:hidden", "<div style=\"height:0;overflow:hidden\"><a href=\"" U "\">u</a></div>", 0, "height:0 with overflow:hidden" },
	{ "width:0 with overflow:hidden", "<span style=\"display:inline-block;width:0;overflow:hidden\"><a href=\"" U "\">u</a></span>", 0, "width:0 with overflow:hidden" },
	{ "max-width:0 with overflow-x:hidden", "<div style=\"max-width:0;overflow-x:hidden\"><a href=\"" U "\">u</a></div>", 0, "max-width:0 with overflow:hidden" },
	{ "height:0 with overflow-x only", "<div style=\"height:0;overflow-x:hidden\"><a href=\"" U "\">u</a></div>", 1, NULL },
	{ "table cells do not clip", "<table><tr><td style=\"height:0;overflow:hidden\"><a href=\"" U "\">u</a></td></tr></table>", 1, NULL },
	{ "mso-hide:all", "<span style=\"mso-hide:all\"><a href=\"" U "\">u</a></span>", 0, "mso-hide:all" },
	{ "mso-hide:none", "<span style=\"mso-hide:none\"><a href=\"" U "\">u</a></span>", 1, NULL },
	{ "absolute left -9999px", "<a href=\"" U "\" style=\"position:absolute;left:-9999px\">u</a>", 0, "off-screen" },
	{ "fixed top -2000px", "<div style=\"position:fixed;top:-2000px\"><a href=\"" U "\">u</a></div>", 0, "off-screen" },
	{ "absolute left in em", "<a href=\"" U "\" style=\"position:absolute;left:-70em\">u</a>", 0, "off-screen" },
	{ "left without position", "<a href=\"" U "\" style=\"left:-9999px\">u</a>", 1, NULL },
	{ "absolute but near", "<a href=\"" U "\" style=\"position:absolute;left:-10px\">u</a>", 1, NULL },
	{ "text-indent far left", "<p style=\"text-indent:-9999px\"><a href=\"" U "\">u</a></p>", 0, "off-screen" },
	{ "color:transparent", "<a href=\"" U "\" style=\"color:transparent\">u</a>", 0, "color:transparent" },
	{ "rgba with alpha below 10/255", "<a href=\"" U "\" style=\"color:rgba(0, 0, 0, 0.03)\">u</a>", 0, "color:transparent" },
	{ "#rgba with zero alpha", "<a href=\"" U "\" style=\"color:#0000\">u</a>", 0, "color:transparent" },
	{ "half transparent black reads", "<a href=\"" U "\" style=\"color:rgba(0,0,0,.5)\">u</a>", 1, NULL },
	{ "colour equals the bgcolor", "<table><tr><td bgcolor=\"#1d3557\"><a href=\"" U "\" style=\"color:#1d3557\">u</a></td></tr></table>", 0, "color equals background" },
	{ "colour near the background", "<div style=\"background-color:#ffffff\"><a href=\"" U "\" style=\"color:#fefefe\">u</a></div>", 0, "color equals background" },
	{ "#ddd on white is under 1.5", "<a href=\"" U "\" style=\"color:#ddd\">u</a>", 0, "color equals background" },
	{ "#ccc on white is over 1.5", "<a href=\"" U "\" style=\"color:#ccc\">u</a>", 1, NULL },
	{ "the background shorthand", "<div style=\"background:#123456 no-repeat\"><a href=\"" U "\" style=\"color:#123456\">u</a></div>", 0, "color equals background" },
	{ "rgb() background", "<div style=\"background-color:rgb(18, 52, 86)\"><a href=\"" U "\" style=\"color:#123456\">u</a></div>", 0, "color equals background" },
	{ "a background image leaves colours unknown", "<div style=\"background:#fff url(https://t.example/b.png)\"><a href=\"" U "\" style=\"color:#fff\">u</a></div>", 1, NULL },
	{ "hsl colours", "<a href=\"" U "\" style=\"color:hsl(0, 0%, 100%)\">u</a>", 0, "color equals background" },
	{ "named colours", "<div style=\"background:WhiteSmoke\"><a href=\"" U "\" style=\"color:whitesmoke\">u</a></div>", 0, "color equals background" },
	{ "white on black", "<div style=\"background:black\"><a href=\"" U "\" style=\"color:white\">u</a></div>", 1, NULL },
	{ "a link is blue by default", "<div style=\"background:#0000ee\"><a href=\"" U "\">u</a></div>", 0, "color equals background" },
	{ "a link does not take its parent's colour", "<div style=\"background:#fff;color:#fff\"><a href=\"" U "\">u</a></div>", 1, NULL },
	{ "color:inherit takes it", "<div style=\"background:#fff;color:#fff\"><a href=\"" U "\" style=\"color:inherit\">u</a></div>", 0, "color equals background" },
	{ "body link attribute", "<body link=\"#ffffff\"><a href=\"" U "\">u</a></body>", 0, "color equals background" },
	{ "font color inside the link", "<a href=\"" U "\"><font color=\"#ffffff\">u</font></a>", 0, "color equals background" },
	{ "bgcolor without #", "<table><tr><td bgcolor=\"ffffff\"><a href=\"" U "\" style=\"color:#fff\">u</a></td></tr></table>", 0, "color equals background" },
	{ "a semi-transparent background blends", "<div style=\"background:#000\"><div style=\"background:rgba(255,255,255,0.5)\"><a href=\"" U "\" style=\"color:#808080\">u</a></div></div>", 0, "color equals background" },
	{ "hidden attribute", "<a hidden href=\"" U "\">u</a>", 0, "hidden attribute" },
	{ "display overrides hidden", "<div hidden style=\"display:block\"><a href=\"" U "\">u</a></div>", 1, NULL },
	{ "a class rule", "<style>.x{display:none}</style><a class=\"y x\" href=\"" U "\">u</a>", 0, "display:none" },
	{ "an id rule", "<style>#f{visibility:hidden}</style><p id=\"f\"><a href=\"" U "\">u</a></p>", 0, "visibility:hidden" },
	{ "a tag rule", "<style>center{display:none}</style><center><a href=\"" U "\">u</a></center>", 0, "display:none" },
	{ "a tag.class rule", "<style>p.k{display:none}</style><p class=\"k\"><a href=\"" U "\">u</a></p>", 0, "display:none" },
	{ "tag.class does not match another tag", "<style>p.k{display:none}</style><div class=\"k\"><a href=\"" U "\">u</a></div>", 1, NULL },
	{ "a comma list", "<style>.a, .b ,#c{display:none}</style><span class=\"b\"><a href=\"" U "\">u</a></span>", 0, "display:none" },
	{ "class names ignore case", "<style>.Foot{display:none}</style><p class=\"foot\"><a href=\"" U "\">u</a></p>", 0, "display:none" },
	{ "a:link is followed", "<style>a.w:link{color:#fff}</style><a class=\"w\" href=\"" U "\">u</a>", 0, "color equals background" },
	{ "rules in @media are not", "<style>@media screen{.x{display:none}}</style><a class=\"x\" href=\"" U "\">u</a>", 1, NULL },
	{ "other @-rules are skipped", "<style>@font-face{font-family:x}@import url(y.css);.z{color:red}</style><a class=\"x\" href=\"" U "\">u</a>", 1, NULL },
	{ "descendant selectors are not", "<style>.f a{display:none}</style><div class=\"f\"><a href=\"" U "\">u</a></div>", 1, NULL },
	{ "child selectors are not", "<style>div>a{display:none}</style><div><a href=\"" U "\">u</a></div>", 1, NULL },
	{ ":hover is not", "<style>a:hover{display:none}</style><a href=\"" U "\">u</a>", 1, NULL },
	{ "one bad selector leaves the others", "<style>.f a, .x{display:none}</style><a class=\"x\" href=\"" U "\">u</a>", 0, "display:none" },
	{ "the inline style wins over the sheet", "<style>.x{display:none}</style><a class=\"x\" style=\"display:inline\" href=\"" U "\">u</a>", 1, NULL },
	{ "!important in the sheet wins over inline", "<style>.x{display:none!important}</style><a class=\"x\" style=\"display:inline\" href=\"" U "\">u</a>", 0, "display:none" },
	{ "inline !important wins over both", "<style>.x{display:none!important}</style><a class=\"x\" style=\"display:inline !important\" href=\"" U "\">u</a>", 1, NULL },
	{ "specificity: id over class", "<style>#i{display:inline} .x{display:none}</style><a id=\"i\" class=\"x\" href=\"" U "\">u</a>", 1, NULL },
	{ "later rule of the same weight wins", "<style>.x{display:inline} .y{display:none}</style><a class=\"y x\" href=\"" U "\">u</a>", 0, "display:none" },
	{ "HTML comment tokens in a style sheet", "<style><!-- .x{display:none} --></style><a class=\"x\" href=\"" U "\">u</a>", 0, "display:none" },
	{ "a commented-out rule", "<style>/* .x{display:none} */</style><a class=\"x\" href=\"" U "\">u</a>", 1, NULL },
	{ "a brace in a string", "<style>.q{content:\"}\"} .x{display:none}</style><a class=\"x\" href=\"" U "\">u</a>", 0, "display:none" },
	{ "a style sheet in a template does not apply", "<template><style>.x{display:none}</style></template><a class=\"x\" href=\"" U "\">u</a>", 1, NULL },
	{ "rules after the element apply too", "<a class=\"x\" href=\"" U "\">u</a><style>.x{display:none}</style>", 0, "display:none" },
	{ "a late rule on an ancestor", "<div class=\"f\"><a href=\"" U "\">u</a></div><style>.f{visibility:hidden}</style>", 0, "visibility:hidden" },
	{ "a late rule for other elements", "<a class=\"x\" href=\"" U "\">u</a><style>.y{display:none}</style>", 1, NULL },
	{ "a comment inside a declaration", "<a style=\"display:/**/none\" href=\"" U "\">u</a>", 0, "display:none" },
	{ "a comment inside a sheet declaration", "<style>.x{display:/* x */none}</style><a class=\"x\" href=\"" U "\">u</a>", 0, "display:none" },
	{ "clip:rect with no area", "<div style=\"position:absolute;clip:rect(0 0 0 0)\"><a href=\"" U "\">u</a></div>", 0, "clip:rect" },
	{ "clip on a static box does nothing", "<div style=\"clip:rect(0 0 0 0)\"><a href=\"" U "\">u</a></div>", 1, NULL },
	{ "clip:rect with an area", "<div style=\"position:absolute;clip:rect(0,300px,40px,0)\"><a href=\"" U "\">u</a></div>", 1, NULL },
	{ "clip-path inset 50%", "<div style=\"clip-path:inset(50%)\"><a href=\"" U "\">u</a></div>", 0, "clip-path" },
	{ "clip-path circle(0)", "<div style=\"clip-path:circle(0)\"><a href=\"" U "\">u</a></div>", 0, "clip-path" },
	{ "transform:scale(0)", "<div style=\"transform:scale(0)\"><a href=\"" U "\">u</a></div>", 0, "transform:scale" },
	{ "transform:scale(0.05)", "<div style=\"transform:scale(0.05)\"><a href=\"" U "\">u</a></div>", 0, "transform:scale" },
	{ "transform:scale(1.5)", "<div style=\"transform:scale(1.5)\"><a href=\"" U "\">u</a></div>", 1, NULL },
	{ "transform on an inline element does nothing", "<span style=\"transform:scale(0)\"><a href=\"" U "\">u</a></span>", 1, NULL },
	{ "translated far off", "<div style=\"transform:translateX(-9999px)\"><a href=\"" U "\">u</a></div>", 0, "off-screen" },
	{ "a closed details", "<details><summary>More</summary><a href=\"" U "\">u</a></details>", 0, "inside closed <details>" },
	{ "an open details", "<details open><summary>More</summary><a href=\"" U "\">u</a></details>", 1, NULL },
	{ "the summary of a closed details", "<details><summary><a href=\"" U "\">u</a></summary></details>", 1, NULL },
	{ "a closed dialog", "<dialog><a href=\"" U "\">u</a></dialog>", 0, "inside closed <dialog>" },
	{ "an open dialog", "<dialog open><a href=\"" U "\">u</a></dialog>", 1, NULL },
	{ "height 1px with overflow hidden", "<div style=\"height:1px;overflow:hidden\"><a href=\"" U "\">u</a></div>", 0, "tiny height with overflow:hidden" },
	{ "max-height 2px with overflow hidden", "<div style=\"max-height:2px;overflow:hidden\"><a href=\"" U "\">u</a></div>", 0, "tiny max-height with overflow:hidden" },
	{ "height 40px with overflow hidden", "<div style=\"height:40px;overflow:hidden\"><a href=\"" U "\">u</a></div>", 1, NULL },
	{ "an empty link", "<a href=\"" U "\"></a>", 0, "no visible content" },
	{ "white space only", "<a href=\"" U "\"> &nbsp; &#32;</a>", 0, "no visible content" },
	{ "only hidden text inside", "<a href=\"" U "\"><span style=\"display:none\">unsubscribe</span></a>", 0, "display:none" },
	{ "some text shown is enough", "<a href=\"" U "\"><span style=\"display:none\">x</span>y</a>", 1, NULL },
	{ "an image inside", "<a href=\"" U "\"><img src=\"u.png\" alt=\"Unsubscribe\" width=\"80\" height=\"14\"></a>", 1, NULL },
	{ "a 1x1 image", "<a href=\"" U "\"><img src=\"p.gif\" alt=\"Unsubscribe\" width=\"1\" height=\"1\"></a>", 0, "no visible content" },
	{ "a zero-size image in style", "<a href=\"" U "\"><img src=\"u.png\" alt=\"u\" style=\"width:0;height:0\"></a>", 0, "no visible content" },
	{ "a hidden image", "<a href=\"" U "\"><img src=\"u.png\" alt=\"u\" style=\"display:none\"></a>", 0, "display:none" },
	{ "hidden far up", "<div style=\"display:none\"><table><tr><td><div><p><span><a href=\"" U "\">u</a></span></p></div></td></tr></table></div>", 0, "display:none" },
	{ "a stray end tag in a cell closes nothing", "<div style=\"display:none\"><table><tr><td></div><a href=\"" U "\">u</a></td></tr></table></div>", 0, "display:none" },
	{ "an end tag does not cross a block", "<span style=\"display:none\"><div></span><a href=\"" U "\">u</a></div></span>", 0, "display:none" },
	{ "a table's content is fostered out of it", "<table style=\"display:none\"><a href=\"" U "\">u</a><tr><td>c</td></tr></table>", 1, NULL },
	{ "body content written in the head", "<html><head><a href=\"" U "\">u</a></head><body></body></html>", 1, NULL },
	{ "text in the head starts the body", "<head>Unsubscribe: <a href=\"" U "\">here</a></head>", 1, NULL },
	{ "a link in noscript in the head ends both", "<head><noscript><a href=\"" U "\">u</a></noscript></head>", 1, NULL },
	{ "an unclosed hidden element hides the rest", "<div style=\"display:none\"><p>a<a href=\"" U "\">u</a>", 0, "display:none" },
	{ "a hidden element closed by its parent", "<div><span style=\"display:none\">x</div><a href=\"" U "\">u</a>", 1, NULL },
	{ "p closed by a block", "<p style=\"display:none\">x<div><a href=\"" U "\">u</a></div>", 1, NULL },
	{ "li closed by li", "<ul><li style=\"display:none\">x<li><a href=\"" U "\">u</a></ul>", 1, NULL },
	{ "td closed by td", "<table><tr><td style=\"display:none\">x<td><a href=\"" U "\">u</a></table>", 1, NULL },
	{ "a style attribute too long", NULL, 0, "attribute too long" },
};

/* a style attribute over 8 KiB, then display:none */
static char *
long_style(void)
{
	size_t n = 10000;
	char *s = malloc(n + 200);

	strcpy(s, "<a href=\"" U "\" style=\"");
	size_t l = strlen(s);
	for (size_t i = 0; i < n; i++)
		s[l++] = i % 20 == 19 ? ';' : 'x';
	strcpy(s + l, ";display:none\">u</a>");
	return s;
}

START_TEST(test_visibility)
{
	const struct vis_row *r = &vis_rows[_i];
	char *own = r->html ? NULL : long_style();
	const char *html = r->html ? r->html : own;
	got g;

	run(html, &g);
	const got_link *l = find(&g, U);
	ck_assert_msg(l != NULL, "%s: link not reported", r->name);
	ck_assert_msg(l->visible == r->visible, "%s: visible %d, want %d (why %s)", r->name, l->visible,
	    r->visible, l->why ? l->why : "-");
	if (r->why)
		ck_assert_msg(l->why && strcmp(l->why, r->why) == 0, "%s: why \"%s\", want \"%s\"", r->name,
		    l->why ? l->why : "(null)", r->why);
	got_free(&g);
	check_chunks(r->name, html, strlen(html));
	free(own);
}
END_TEST

/* ---- the tokenizer: the first <a>'s href and text ---- */
static const struct tok_row {
	const char *name;
	const char *html;
	const char *href;     /* "(null)": no href attribute */
	const char *text;
	int count;            /* <a> links reported; -1: not checked */
} tok_rows[] = {
	{ "double quoted", "<a href=\"https://a.example/x?y=1&amp;z=2\">t</a>", "https://a.example/x?y=1&z=2", "t", 1 },
	{ "single quoted", "<a href='https://a.example/'>t</a>", "https://a.example/", "t", 1 },
	{ "unquoted", "<a href=https://a.example/u?x=1>t</a>", "https://a.example/u?x=1", "t", 1 },
	{ "the first of two wins", "<a href=\"https://one.example/\" HREF=\"https://two.example/\">t</a>", "https://one.example/", "t", 1 },
	{ "upper case names", "<A HREF=\"https://a.example/\">T</A>", "https://a.example/", "T", 1 },
	{ "spaces around =", "<a href = \"https://a.example/\" >t</a>", "https://a.example/", "t", 1 },
	{ "a slash before the attribute", "<a/href=\"https://a.example/\">t</a>", "https://a.example/", "t", 1 },
	{ "no space between attributes", "<a title=\"x\"href=\"https://a.example/\">t</a>", "https://a.example/", "t", 1 },
	{ "> inside a quoted value", "<a href=\"https://a.example/?q=a>b\">t</a>", "https://a.example/?q=a>b", "t", 1 },
	{ "white space around the href trimmed", "<a href=\"\n  https://a.example/ \t\">t</a>", "https://a.example/", "t", 1 },
	{ "tabs and newlines inside removed", "<a href=\"https://a.exa\nmple/x\ty\">t</a>", "https://a.example/xy", "t", 1 },
	{ "no href", "<a name=\"x\">t</a>", "(null)", "t", 1 },
	{ "an empty href", "<a href=\"\">t</a>", "", "t", 1 },
	{ "an attribute with no value", "<a href>t</a>", "", "t", 1 },
	{ "a legacy name before = stays", "<a href=\"https://a.example/?a=1&copy=2\">t</a>", "https://a.example/?a=1&copy=2", "t", 1 },
	{ "a legacy name before a letter stays", "<a href=\"https://a.example/?q=&copyx\">t</a>", "https://a.example/?q=&copyx", "t", 1 },
	{ "named and numeric in a value", "<a href=\"https://a.example/?q=&lt;&#62;&#x26;\">t</a>", "https://a.example/?q=<>&", "t", 1 },
	{ "NUL in a value", "<a href=\"https://a.example/\0x\">t</a>", "https://a.example/\xef\xbf\xbdx", "t", 1 },
	{ "entities in text", "<a href=u>AT&amp;T &lt;b&gt; &quot;q&quot; &copy; &trade; &hellip;</a>", "u", "AT&T <b> \"q\" \xc2\xa9 \xe2\x84\xa2 \xe2\x80\xa6", 1 },
	{ "legacy names without ; in text", "<a href=u>&copy2024 &amp &lt3</a>", "u", "\xc2\xa9" "2024 & <3", 1 },
	{ "numeric references", "<a href=u>&#65;&#x42;&#X43;&#x20ac;</a>", "u", "ABC\xe2\x82\xac", 1 },
	{ "windows-1252 numbers", "<a href=u>&#128;&#150;&#x99;</a>", "u", "\xe2\x82\xac\xe2\x80\x93\xe2\x84\xa2", 1 },
	{ "replacement numbers", "<a href=u>&#0;&#xD800;&#x110000;&#9999999999;</a>", "u", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 1 },
	{ "not references", "<a href=u>& &# &#x &; &nosuch;</a>", "u", "& &# &#x &; &nosuch;", 1 },
	{ "the longest name wins", "<a href=u>&notin; &notit;</a>", "u", "\xe2\x88\x89 \xc2\xacit;", 1 },
	{ "white space collapsed, nbsp is space", "<a href=u>\n  Un&nbsp;&nbsp;sub \t scribe \n</a>", "u", "Un sub scribe", 1 },
	{ "zero-width characters dropped", "<a href=u>Un&shy;sub&zwnj;scr&zwj;ibe&#x200B;</a>", "u", "Unsubscribe", 1 },
	{ "nested inline text", "<a href=u><b>Un</b><i>sub</i>scribe</a>", "u", "Unsubscribe", 1 },
	{ "br and blocks separate words", "<a href=u>Click<br>here<div>now</div>ok</a>", "u", "Click here now ok", 1 },
	{ "<!--> is an empty comment", "<a href=u>a<!-->b</a>", "u", "ab", 1 },
	{ "<!---> is an empty comment", "<a href=u>a<!--->b</a>", "u", "ab", 1 },
	{ "--!> ends a comment", "<!-- x --!><a href=u>t</a>", "u", "t", 1 },
	{ "-- inside a comment", "<!-- a -- b ---><a href=u>t</a>", "u", "t", 1 },
	{ "a comment splits no words", "<a href=u>un<!-- x -->sub</a>", "u", "unsub", 1 },
	{ "a bogus comment", "<?xml x?><!x><a href=u>t</a>", "u", "t", 1 },
	{ "a quoted > ends a doctype", "<!DOCTYPE html PUBLIC \"a>b\"><a href=u>t</a>", "u", "t", 1 },
	{ "a lone < is text", "<a href=u>1 < 2 <3</a>", "u", "1 < 2 <3", 1 },
	{ "</> is dropped", "<a href=u>a</>b</a>", "u", "ab", 1 },
	{ "script is not markup", "<script>var a='<a href=x>no</a>';</script><a href=u>t</a>", "u", "t", 1 },
	{ "an escaped script", "<script><!--<script></script>--></script><a href=u>t</a>", "u", "t", 1 },
	{ "style is not markup", "<style>a{}</style><a href=u>t<style><a href=v></style></a>", "u", "t", 1 },
	{ "title is not markup", "<title><a href=x>no</a></title><a href=u>t</a>", "u", "t", 1 },
	{ "textarea is RCDATA", "<a href=u>a<textarea><b>&amp;</b></textarea></a>", "u", "a<b>&</b>", 1 },
	{ "xmp is RAWTEXT", "<a href=u><xmp>&amp;<b></xmp></a>", "u", "&amp;<b>", -1 },
	{ "iframe content is not text", "<a href=u>t<iframe>no</iframe></a>", "u", "t", 1 },
	{ "plaintext takes the rest", "<a href=u>a<plaintext></a><b>", "u", "a </a><b>", 1 },
	{ "an end tag with attributes", "<a href=u>t</a class=x>", "u", "t", 1 },
	{ "an a start tag closes the open one", "<a href=u>one<a href=v>two</a>", "u", "one", 2 },
	{ "a cell keeps an outer link open", "<a href=u>x<table><tr><td><a href=v>in</a></td></tr></table>y</a>", "u", "x in y", 2 },
	{ "an unclosed link ends with the input", "<p><a href=u>tail", "u", "tail", 1 },
	{ "svg a is not a link", "<svg><a href=v>s</a></svg><a href=u>t</a>", "u", "t", 1 },
	{ "self-closing in svg", "<svg><rect/><a/></svg><a href=u>t</a>", "u", "t", 1 },
	{ "CDATA in svg is text", "<svg><text><![CDATA[<a href=v>]]></text></svg><a href=u>t</a>", "u", "t", 1 },
	{ "CDATA outside svg is a bogus comment", "<![CDATA[x]]><a href=u>t</a>", "u", "t", 1 },
};

START_TEST(test_tokenizer)
{
	const struct tok_row *r = &tok_rows[_i];
	size_t len = strlen(r->html);
	got g;

	if (strcmp(r->name, "NUL in a value") == 0)
		len = strlen(r->html) + 1 + strlen(r->html + strlen(r->html) + 1);
	run_lim(r->html, len, 0, &deflim, &g);
	/* nested links are reported as they close: look the first one up */
	const got_link *l = strcmp(r->href, "(null)") ? find(&g, r->href) : first_a(&g);
	ck_assert_msg(l != NULL, "%s: no link", r->name);
	ck_assert_msg(strcmp(l->href ? l->href : "(null)", r->href) == 0, "%s: href \"%s\", want \"%s\"",
	    r->name, l->href ? l->href : "(null)", r->href);
	ck_assert_msg(strcmp(l->text, r->text) == 0, "%s: text \"%s\", want \"%s\"", r->name, l->text,
	    r->text);
	if (r->count >= 0) {
		int n = 0;
		for (size_t i = 0; i < g.n; i++)
			n += strcmp(g.l[i].tag, "a") == 0 && (!g.l[i].why || strcmp(g.l[i].why, "inside comment"));
		ck_assert_msg(n == r->count, "%s: %d links, want %d", r->name, n, r->count);
	}
	got_free(&g);
	check_chunks(r->name, r->html, len);
}
END_TEST

/* ---- the text around a link ---- */
static const struct ctx_row {
	const char *name;
	const char *html;
	const char *before, *after;
} ctx_rows[] = {
	{ "in the same block", "<p>To stop getting these, <a href=\"" U "\">click here</a> at any time.</p><p>Next.</p>", "To stop getting these,", "at any time." },
	{ "a block ends the text before", "<p>Old paragraph.</p><p>Now <a href=\"" U "\">here</a></p>", "Now", "" },
	{ "br ends it too", "<td>First line<br>second <a href=\"" U "\">x</a><br>third</td>", "second", "" },
	{ "the next link ends after", "<p><a href=\"" U "\">a</a> between <a href=\"https://t.example/v\">b</a></p>", "", "between" },
	{ "inline elements do not", "<p>Please <b>do</b> <i>click</i> <a href=\"" U "\">here</a> <em>now</em>.</p>", "Please do click", "now." },
	{ "references decoded, space collapsed", "<p>Caf&eacute;\n\n  &amp; bar: <a href=\"" U "\">x</a>&nbsp;&mdash;&nbsp;bye</p>", "Caf\xc3\xa9 & bar:", "\xe2\x80\x94 bye" },
	{ "hidden text is not before a visible link", "<p>Keep <span style=\"display:none\">secret</span> reading <a href=\"" U "\">x</a></p>", "Keep reading", "" },
	{ "a hidden link gets the hidden text", "<div style=\"display:none\">To unsubscribe <a href=\"" U "\">click</a> here.</div>", "To unsubscribe", "here." },
	{ "text before, in a comment", "<!-- To unsubscribe <a href=\"" U "\">click</a> -->", "To unsubscribe", "" },
	{ "a comment does not end the block", "<p>One <!-- c --> two <a href=\"" U "\">x</a> three <!-- d --> four</p>", "One two", "three four" },
};

START_TEST(test_context)
{
	const struct ctx_row *r = &ctx_rows[_i];
	got g;

	run(r->html, &g);
	const got_link *l = find(&g, U);
	ck_assert_msg(l != NULL, "%s: no link", r->name);
	ck_assert_msg(strcmp(l->before, r->before) == 0, "%s: before \"%s\", want \"%s\"", r->name,
	    l->before, r->before);
	ck_assert_msg(strcmp(l->after, r->after) == 0, "%s: after \"%s\", want \"%s\"", r->name, l->after,
	    r->after);
	got_free(&g);
	check_chunks(r->name, r->html, strlen(r->html));
}
END_TEST

START_TEST(test_context_bounded)
{
	/* ~200 bytes each side, the nearest ones, cut at a character */
	char html[20000];
	size_t n = 0;
	got g;

	n += (size_t)sprintf(html + n, "<p>");
	for (int i = 0; i < 300; i++)
		n += (size_t)sprintf(html + n, "w%d \xc3\xa9 ", i);
	n += (size_t)sprintf(html + n, "last <a href=\"" U "\">x</a> first ");
	for (int i = 0; i < 300; i++)
		n += (size_t)sprintf(html + n, "v%d ", i);
	strcpy(html + n, "</p>");
	run(html, &g);
	const got_link *l = find(&g, U);
	ck_assert_ptr_nonnull(l);
	ck_assert_uint_le(strlen(l->before), 200);
	ck_assert_uint_ge(strlen(l->before), 150);
	ck_assert_msg(strlen(l->before) >= 5 && strcmp(l->before + strlen(l->before) - 5, " last") == 0,
	    "before ends \"%s\"", l->before);
	ck_assert_uint_le(strlen(l->after), 200);
	ck_assert_msg(strncmp(l->after, "first v0 v1 ", 12) == 0, "after \"%s\"", l->after);
	ck_assert_msg(((unsigned char)l->before[0] & 0xc0) != 0x80, "before cut inside a character");
	got_free(&g);
	check_chunks("bounded context", html, strlen(html));
}
END_TEST

/* ---- the places that hide a link must still report it ---- */
static const struct place_row {
	const char *name;
	const char *html;
	const char *tag;
	const char *why;      /* NULL: visible */
	const char *text;     /* NULL: not checked */
} place_rows[] = {
	{ "a comment", "<p>Stop: <!-- <a href=\"" U "\">unsubscribe</a> --></p>", "a", "inside comment", "unsubscribe" },
	{ "an unterminated comment", "<p>Stop: <!-- <a href=\"" U "\">unsubscribe</a>", "a", "inside comment", "unsubscribe" },
	{ "an Outlook conditional comment", "<!--[if mso]><table><tr><td><a href=\"" U "\">unsubscribe</a></td></tr></table><![endif]-->", "a", "inside comment", "unsubscribe" },
	{ "downlevel-revealed is visible", "<!--[if !mso]><!--><a href=\"" U "\">unsubscribe</a><!--<![endif]-->", "a", NULL, "unsubscribe" },
	{ "noscript", "<p><noscript><a href=\"" U "\">unsubscribe</a></noscript></p>", "a", "inside <noscript>", "unsubscribe" },
	{ "template", "<p>x</p><template><p><a href=\"" U "\">unsubscribe</a></p></template>", "a", "inside <template>", "unsubscribe" },
	{ "a template before the body is in the head", "<template><p><a href=\"" U "\">u</a></p></template>", "a", "inside <head>", NULL },
	{ "a link element in the head", "<head><link rel=\"alternate\" title=\"Unsubscribe\" href=\"" U "\"></head>", "link", "inside <head>", "Unsubscribe" },
	{ "a link element after the head", "<head></head><link href=\"" U "\"><body>x</body>", "link", "inside <head>", NULL },
	{ "a URL in the title", "<head><title>News | Unsubscribe: " U "?a=1&amp;b=2 now</title></head>", "url", "inside <head>", NULL },
	{ "a URL in a style sheet", "<head><style>/* Unsubscribe: " U " */ p{}</style></head>", "url", "inside <head>", NULL },
	{ "a URL in a script in the body", "<body><script>var u = \"" U "\";</script></body>", "url", "inside <script>", NULL },
	{ "a URL in a style in the body", "<body><p>x</p><style>/* " U " */</style></body>", "url", "inside <style>", NULL },
	{ "a URL in a title in the body", "<body><p>x</p><title>" U "</title></body>", "url", "inside <title>", NULL },
	{ "a URL in a comment's title", "<!-- <title>" U "</title> -->", "url", "inside comment", NULL },
	{ "an upper case scheme", "<head><title>HTTPS://t.example/u</title></head>", "url", "inside <head>", NULL },
	{ "an area", "<map name=m><area href=\"" U "\" alt=\"Unsubscribe\"></map>", "area", NULL, NULL },
	{ "an area in a hidden map", "<div style=\"display:none\"><map><area href=\"" U "\" alt=\"u\"></map></div>", "area", "display:none", NULL },
	{ "a link in a comment in noscript", "<noscript><!-- <a href=\"" U "\">u</a> --></noscript>", "a", "inside comment", NULL },
};

START_TEST(test_places)
{
	const struct place_row *r = &place_rows[_i];
	got g;

	run(r->html, &g);
	const got_link *l = find(&g, strcmp(r->name, "an upper case scheme") == 0 ? "https://t.example/u" : U);
	if (l == NULL && strcmp(r->tag, "url") == 0)
		for (size_t i = 0; i < g.n; i++)
			if (strcmp(g.l[i].tag, "url") == 0 && strstr(g.l[i].href, "t.example/u"))
				l = &g.l[i];
	ck_assert_msg(l != NULL, "%s: link not reported", r->name);
	ck_assert_msg(strcmp(l->tag, r->tag) == 0, "%s: tag %s, want %s", r->name, l->tag, r->tag);
	if (r->why == NULL)
		ck_assert_msg(l->visible, "%s: hidden by %s", r->name, l->why);
	else
		ck_assert_msg(!l->visible && strcmp(l->why, r->why) == 0, "%s: why %s, want %s", r->name,
		    l->why ? l->why : "(null)", r->why);
	if (r->text)
		ck_assert_msg(strcmp(l->text, r->text) == 0, "%s: text \"%s\"", r->name, l->text);
	got_free(&g);
	check_chunks(r->name, r->html, strlen(r->html));
}
END_TEST

START_TEST(test_url_in_title)
{
	got g;

	run("<head><title>Weekly | Unsubscribe: https://t.example/u?a=1&amp;b=2 now</title></head>", &g);
	ck_assert_uint_eq(g.n, 1);
	ck_assert_str_eq(g.l[0].tag, "url");
	ck_assert_str_eq(g.l[0].href, "https://t.example/u?a=1&b=2");
	ck_assert_str_eq(g.l[0].before, "Weekly | Unsubscribe:");
	ck_assert_str_eq(g.l[0].after, "now");
	ck_assert_str_eq(g.l[0].text, "Weekly | Unsubscribe: now");
	got_free(&g);
}
END_TEST

/* s is UTF-8 (no stray continuation byte, no cut sequence) */
static bool
utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t k;

	while (*p && (k = bw_utf8_seq(p, SIZE_MAX)) > 0)
		p += k;
	return *p == 0;
}

/* The text before a URL in raw text is the end of a window over the raw
 * bytes; a window that begins inside a character must not report half of
 * it (the report would not be UTF-8: bulkwardenctl's JSON failed). */
START_TEST(test_url_window_utf8)
{
	/* white space between the characters: the cooked window is short
	 * enough to be reported whole, from its first byte on */
	for (int pad = 0; pad < 6; pad++) {
		char html[2048];
		int n = snprintf(html, sizeof(html), "<head><title>%.*s", pad, "xxxxxx");
		for (int i = 0; i < 150; i++)
			n += snprintf(html + n, sizeof(html) - (size_t)n, "\xe2\x82\xac   ");
		snprintf(html + n, sizeof(html) - (size_t)n, " https://t.example/u now</title></head>");
		got g;
		run(html, &g);
		ck_assert_uint_eq(g.n, 1);
		ck_assert_str_eq(g.l[0].tag, "url");
		ck_assert_msg(utf8_ok(g.l[0].before), "pad %d: before is not UTF-8", pad);
		ck_assert_msg(utf8_ok(g.l[0].text), "pad %d: text is not UTF-8", pad);
		ck_assert_msg(strlen(g.l[0].before) > 100, "pad %d: before lost: %zu bytes", pad,
		    strlen(g.l[0].before));
		got_free(&g);
	}
}
END_TEST

/* ---- what the link carries ---- */
START_TEST(test_visible_text_and_alt)
{
	got g;

	run("<a href=\"" U "\">click <span style=\"display:none\">to unsubscribe</span>"
	    "<img alt=\"Leave\" src=a.png><img alt=\"list\" src=b.png width=0></a>", &g);
	const got_link *l = find(&g, U);
	ck_assert_ptr_nonnull(l);
	ck_assert(l->visible);
	ck_assert_str_eq(l->text, "click to unsubscribe");
	ck_assert_str_eq(l->vtext, "click");
	ck_assert_str_eq(l->alt, "Leave list");
	ck_assert_str_eq(l->valt, "Leave");
	got_free(&g);
}
END_TEST

START_TEST(test_order_and_counts)
{
	got g;

	run("<p><a href=1>a</a><a href=2>b</a></p><!--<a href=3>c</a>--><a href=4>d</a>"
	    "<area href=5><link href=6>", &g);
	ck_assert_uint_eq(g.n, 6);
	for (size_t i = 0; i < g.n; i++) {
		char want[24];
		snprintf(want, sizeof(want), "%zu", i + 1);
		ck_assert_str_eq(g.l[i].href, want);
	}
	ck_assert_ptr_null(g.limit);
	got_free(&g);
}
END_TEST

/* ---- bounds ---- */
START_TEST(test_max_links)
{
	html_limits lim = deflim;
	got g;

	lim.max_links = 3;
	const char *html = "<a href=1>a</a><a href=2>b</a><a href=3>c</a><a href=4>d</a><a href=5>e</a>";
	run_lim(html, strlen(html), 0, &lim, &g);
	ck_assert_uint_eq(g.n, 3);
	ck_assert_str_eq(g.l[2].href, "3");
	ck_assert_str_eq(g.limit, "MaxLinks");
	got_free(&g);
}
END_TEST

START_TEST(test_max_depth)
{
	html_limits lim = deflim;
	size_t n = 200000, len = 0;
	char *html = malloc(n * 5 + 100);
	got g;

	/* far deeper than the bound: no crash, no recursion, the bound named */
	for (size_t i = 0; i < n; i++)
		memcpy(html + len, "<div>", 5), len += 5;
	len += (size_t)sprintf(html + len, "<a href=\"%s\">deep</a>", U);
	lim.max_depth = 64;
	run_lim(html, len, 0, &lim, &g);
	ck_assert_str_eq(g.limit, "MaxHtmlDepth");
	got_free(&g);
	run_lim(html, len, 4096, &lim, &g);
	ck_assert_str_eq(g.limit, "MaxHtmlDepth");
	got_free(&g);

	/* a bound under the 32 frames the stack starts with (MaxHtmlDepth may
	   be as low as 8): the parser is made, and the bound holds */
	lim.max_depth = 8;
	len = (size_t)sprintf(html, "<div><p><a href=\"%s\">Unsubscribe</a></p></div>", U);
	run_lim(html, len, 0, &lim, &g);
	ck_assert_ptr_null(g.limit);
	ck_assert_ptr_nonnull(find(&g, U));
	ck_assert(find(&g, U)->visible);
	got_free(&g);
	len = 0;
	for (size_t i = 0; i < 12; i++)
		memcpy(html + len, "<div>", 5), len += 5;
	run_lim(html, len, 0, &lim, &g);
	ck_assert_str_eq(g.limit, "MaxHtmlDepth");
	got_free(&g);
	lim.max_depth = 64;

	/* within the bound the elements are tracked */
	len = 0;
	for (size_t i = 0; i < 60; i++)
		memcpy(html + len, "<div>", 5), len += 5;
	len += (size_t)sprintf(html + len, "<span style=\"display:none\"><a href=\"%s\">x</a></span>", U);
	run_lim(html, len, 0, &lim, &g);
	ck_assert_ptr_null(g.limit);
	ck_assert_ptr_nonnull(find(&g, U));
	ck_assert(!find(&g, U)->visible);
	got_free(&g);
	free(html);
}
END_TEST

START_TEST(test_deep_inline_nesting)
{
	size_t n = 100000, len = 0;
	char *html = malloc(n * 3 + 100);
	got g;

	for (size_t i = 0; i < n; i++)
		memcpy(html + len, "<b>", 3), len += 3;
	len += (size_t)sprintf(html + len, "<a href=\"%s\">x</a>", U);
	run_lim(html, len, 0, &deflim, &g);
	ck_assert_str_eq(g.limit, "MaxHtmlDepth");
	got_free(&g);
	free(html);
}
END_TEST

START_TEST(test_max_url)
{
	html_limits lim = deflim;
	char html[600];
	got g;

	lim.max_url = 64;
	strcpy(html, "<a href=\"https://t.example/");
	size_t l = strlen(html);
	for (int i = 0; i < 200; i++)
		html[l++] = 'a' + i % 26;
	strcpy(html + l, "\">x</a><a href=\"https://t.example/short\">y</a>");
	run_lim(html, strlen(html), 0, &lim, &g);
	ck_assert_uint_eq(g.n, 2);
	ck_assert_uint_eq(strlen(g.l[0].href), 64);
	ck_assert(g.l[0].trunc);
	ck_assert_str_eq(g.l[1].href, "https://t.example/short");
	ck_assert(!g.l[1].trunc);
	got_free(&g);
}
END_TEST

START_TEST(test_max_css_rules)
{
	html_limits lim = deflim;
	const char *html = "<style>.a{color:red}.b{color:red}.c{color:red}.d{display:none}</style>"
	    "<a class=d href=\"" U "\">x</a>";
	got g;

	lim.max_css_rules = 2;
	run_lim(html, strlen(html), 0, &lim, &g);
	ck_assert_str_eq(g.limit, "MaxCssRules");
	got_free(&g);
	run(html, &g);
	ck_assert_ptr_null(g.limit);
	ck_assert(!find(&g, U)->visible);
	got_free(&g);
}
END_TEST

START_TEST(test_api_edges)
{
	got g;
	html_cb cb = { .link = on_link };

	/* NULL limits take the defaults; a NULL callback is fine */
	html_parser *h = html_new(NULL, NULL, NULL);
	ck_assert_ptr_nonnull(h);
	html_feed(h, "<a href=x>y</a>", 15);
	html_finish(h);
	html_finish(h);
	html_free(h);
	html_free(NULL);
	ck_assert_ptr_null(html_limit_hit(NULL));

	/* input after the end is ignored; nothing is reported twice */
	memset(&g, 0, sizeof(g));
	h = html_new(NULL, &cb, &g);
	html_feed(h, "<a href=x>y", 11);
	html_finish(h);
	html_feed(h, "<a href=z>w</a>", 15);
	html_finish(h);
	html_free(h);
	ck_assert_uint_eq(g.n, 1);
	ck_assert_str_eq(g.l[0].text, "y");
	got_free(&g);

	/* empty input, empty chunks */
	memset(&g, 0, sizeof(g));
	h = html_new(NULL, &cb, &g);
	html_feed(h, "", 0);
	html_finish(h);
	html_free(h);
	ck_assert_uint_eq(g.n, 0);
}
END_TEST

START_TEST(test_binary_input)
{
	/* bytes of every kind, no crash, chunk invariance holds */
	char buf[65536];
	unsigned x = 12345;

	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245 + 12345;
		static const char pool[] = "<>/=\"' !-&#;abcdehlmnprstxy\n\0\x80\xc3\xff";
		buf[i] = pool[(x >> 16) % (sizeof(pool) - 1)];
	}
	check_chunks("binary", buf, sizeof(buf));
}
END_TEST

/* ---- the documents in TEST_DATA/html ---- */
static const struct file_row {
	const char *file;
	const char *href;
	int visible;
	const char *why;
} file_rows[] = {
	{ "trick-display-none-inline.html", NULL, 0, "display:none" },
	{ "trick-display-none-wrapper.html", NULL, 0, "display:none" },
	{ "trick-visibility-hidden.html", NULL, 0, "visibility:hidden" },
	{ "trick-visibility-hidden.html", "https://harbor.example.com/shown", 1, NULL },
	{ "trick-visibility-collapse.html", NULL, 0, "visibility:hidden" },
	{ "trick-opacity-zero.html", NULL, 0, "opacity:0" },
	{ "trick-clip.html", NULL, 0, "clip:rect" },
	{ "trick-clip.html", "https://harbor.example.com/unsubscribe?u=8f2f", 0, "clip-path" },
	{ "trick-transform.html", NULL, 0, "transform:scale" },
	{ "trick-transform.html", "https://harbor.example.com/unsubscribe?u=8f2f", 0, "off-screen" },
	{ "trick-details.html", NULL, 0, "inside closed <details>" },
	{ "trick-details.html", "https://harbor.example.com/unsubscribe?u=8f2f", 0, "inside closed <dialog>" },
	{ "trick-style-after.html", NULL, 0, "display:none" },
	{ "trick-style-after.html", "https://harbor.example.com/preferences", 1, NULL },
	{ "trick-opacity-zero.html", "https://harbor.example.com/faint", 0, "opacity:0" },
	{ "trick-opacity-zero.html", "https://harbor.example.com/half", 1, NULL },
	{ "trick-font-size-zero.html", NULL, 0, "font-size:0" },
	{ "trick-font-size-zero.html", "https://harbor.example.com/reset", 1, NULL },
	{ "trick-font-size-zero.html", "https://harbor.example.com/font-shorthand", 0, "font-size:0" },
	{ "trick-font-size-tiny.html", NULL, 0, "font-size too small" },
	{ "trick-font-size-tiny.html", "https://harbor.example.com/pt", 0, "font-size too small" },
	{ "trick-font-size-tiny.html", "https://harbor.example.com/em", 0, "font-size too small" },
	{ "trick-font-size-tiny.html", "https://harbor.example.com/kw", 1, NULL },
	{ "trick-max-height-zero.html", NULL, 0, "max-height:0 with overflow:hidden" },
	{ "trick-max-height-zero.html", "https://harbor.example.com/inline", 1, NULL },
	{ "trick-zero-size-box.html", NULL, 0, "height:0 with overflow:hidden" },
	{ "trick-zero-size-box.html", "https://harbor.example.com/width", 0, "width:0 with overflow:hidden" },
	{ "trick-zero-size-box.html", "https://harbor.example.com/overflow", 1, NULL },
	{ "trick-mso-hide.html", NULL, 0, "mso-hide:all" },
	{ "trick-offscreen.html", NULL, 0, "off-screen" },
	{ "trick-offscreen.html", "https://harbor.example.com/indent", 0, "off-screen" },
	{ "trick-offscreen.html", "https://harbor.example.com/relative", 1, NULL },
	{ "trick-color-transparent.html", NULL, 0, "color:transparent" },
	{ "trick-color-transparent.html", "https://harbor.example.com/rgba", 0, "color:transparent" },
	{ "trick-color-equals-background.html", NULL, 0, "color equals background" },
	{ "trick-color-equals-background.html", "https://harbor.example.com/white", 1, NULL },
	{ "trick-color-equals-background.html", "https://harbor.example.com/gold", 0, "color equals background" },
	{ "trick-color-near-background.html", NULL, 0, "color equals background" },
	{ "trick-color-near-background.html", "https://harbor.example.com/light", 1, NULL },
	{ "trick-font-color-attr.html", NULL, 0, "color equals background" },
	{ "trick-font-color-attr.html", "https://harbor.example.com/blue", 1, NULL },
	{ "trick-named-colors.html", NULL, 0, "color equals background" },
	{ "trick-named-colors.html", "https://harbor.example.com/lavender", 1, NULL },
	{ "trick-hidden-attribute.html", NULL, 0, "hidden attribute" },
	{ "trick-hidden-attribute.html", "https://harbor.example.com/shown", 1, NULL },
	{ "trick-class-display-none.html", NULL, 0, "display:none" },
	{ "trick-class-color.html", NULL, 0, "color equals background" },
	{ "trick-id-rule.html", NULL, 0, "visibility:hidden" },
	{ "trick-tag-rule.html", NULL, 0, "display:none" },
	{ "trick-media-query.html", NULL, 1, NULL },
	{ "trick-descendant-selector.html", NULL, 1, NULL },
	{ "trick-important.html", NULL, 0, "display:none" },
	{ "trick-important.html", "https://harbor.example.com/inline-wins", 1, NULL },
	{ "trick-html-comment.html", NULL, 0, "inside comment" },
	{ "trick-mso-conditional.html", NULL, 0, "inside comment" },
	{ "trick-downlevel-revealed.html", NULL, 1, NULL },
	{ "trick-noscript.html", NULL, 0, "inside <noscript>" },
	{ "trick-template.html", NULL, 0, "inside <template>" },
	{ "trick-head-link.html", NULL, 0, "inside <head>" },
	{ "trick-title-url.html", "https://harbor.example.com/unsubscribe?u=8f2e&s=1", 0, "inside <head>" },
	{ "trick-style-url.html", NULL, 0, "inside <head>" },
	{ "trick-script-url.html", NULL, 0, "inside <head>" },
	{ "trick-image-link.html", NULL, 1, NULL },
	{ "trick-image-link.html", "https://harbor.example.com/pixel", 0, "no visible content" },
	{ "trick-image-link.html", "https://harbor.example.com/none", 0, "display:none" },
	{ "trick-deep-nesting.html", NULL, 0, "display:none" },
	{ "trick-deep-nesting.html", "https://harbor.example.com/still-inside", 0, "display:none" },
	{ "trick-head-content.html", NULL, 1, NULL },
	{ "trick-table-foster.html", NULL, 1, NULL },
	{ "trick-table-foster.html", "https://harbor.example.com/cell", 0, "display:none" },
	{ "newsletter-tables.html", "https://lumen-gardens.example.com/unsubscribe?m=4f1c&l=spring", 1, NULL },
	{ "newsletter-classes.html", "https://quarterly-tide.example.org/list/unsubscribe?u=1c0ffee&id=77a1", 1, NULL },
	{ "newsletter-letter.html", "https://fieldnotes.example.net/leave?who=ab12cd", 1, NULL },
};

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	ck_assert_msg(fp != NULL, "cannot open %s", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	buf[n] = 0;
	*len = (size_t)n;
	return buf;
}

/* A freed parser waits in a pool shared by the threads (html_free): a
   parser taken back must find what a new one finds. Each file is parsed by
   a new parser (the pool emptied), and again by the parser that has just
   read another file in another thread, whole and in small chunks, and under
   other limits between (which make a new parser again). */
typedef struct other_job {
	const char *buf;
	size_t len, chunk;
	html_parser *used;   /* the parser it had */
} other_job;

static void
note_parser(void *ud, const html_link *l)
{
	(void)ud, (void)l;
}

static void *
parse_other(void *arg)
{
	other_job *j = arg;
	html_cb cb = { .link = note_parser };
	html_parser *h = html_new(&deflim, &cb, NULL);

	ck_assert_ptr_nonnull(h);
	html_feed(h, j->buf, j->len);
	html_finish(h);
	j->used = h;
	html_free(h);
	return NULL;
}

START_TEST(test_parser_taken_back)
{
	enum { NF = sizeof(file_rows) / sizeof(file_rows[0]) };
	static const html_limits small = { .max_depth = 12, .max_links = 3, .max_url = 100, .min_font_px = 5 };
	char *bufs[NF];
	size_t lens[NF];

	for (size_t i = 0; i < NF; i++) {
		char path[1024];

		snprintf(path, sizeof(path), "%s/html/%s", TEST_DATA, file_rows[i].file);
		bufs[i] = slurp(path, &lens[i]);
	}
	for (size_t chunk = 0; chunk <= 7; chunk += 7)
		for (size_t i = 0; i < NF; i++) {
			other_job j = { bufs[(i + 1) % NF], lens[(i + 1) % NF], chunk, NULL };
			pthread_t th;
			got g;
			char *fresh, *again;

			html_spares_free();
			run_lim(bufs[i], lens[i], chunk, &deflim, &g);
			fresh = facts(&g);
			got_free(&g);
			ck_assert_int_eq(pthread_create(&th, NULL, parse_other, &j), 0);
			ck_assert_int_eq(pthread_join(th, NULL), 0);
			/* the parser of the other thread, freed last, is taken back
			   here, having read the next file */
			html_cb cb = { .link = on_link };
			html_parser *h = html_new(&deflim, &cb, &g);
			ck_assert_ptr_eq(h, j.used);
			html_free(h);
			run_lim(bufs[i], lens[i], chunk, &deflim, &g);
			again = facts(&g);
			ck_assert_msg(strcmp(again, fresh) == 0, "%s (chunk %zu): taken back:\n%s\nnew:\n%s",
			    file_rows[i].file, chunk, again, fresh);
			got_free(&g);
			free(again);
			free(fresh);
			if (i % 5 == 4) {
				run_lim(bufs[i], lens[i], chunk, &small, &g);
				got_free(&g);
			}
		}
	for (size_t i = 0; i < NF; i++)
		free(bufs[i]);
	/* what a document learnt of its style sheet is not taken into the
	   next: the same style attribute under another sheet of as many rules */
	{
		static const char a[] = "<style>p{display:none}</style><p style=\"color:#333\">x</p>"
		    "<p style=\"color:#333\"><a href=\"https://a.example/u\">Unsubscribe</a></p>";
		static const char b[] = "<style>div{color:blue}</style><p style=\"color:#333\">"
		    "<a href=\"https://b.example/u\">Unsubscribe</a></p>";
		got g;

		run(a, &g);
		ck_assert_uint_eq(g.n, 1);
		ck_assert(!g.l[0].visible);
		got_free(&g);
		run(b, &g);
		ck_assert_uint_eq(g.n, 1);
		ck_assert_msg(g.l[0].visible, "hidden by the style sheet of the document before: %s",
		    g.l[0].why ? g.l[0].why : "-");
		got_free(&g);
	}
	/* the declarations of style attributes are kept for the next
	   document: a style of the same length that differs only where the
	   cache's set is not chosen is not taken for the one before, and the
	   same style still hides */
	{
		static const char a[] = "<p style=\"font-size:0px;line-height:16px;color:#333;margin:0\">"
		    "<a href=\"https://a.example/u\">Unsubscribe</a></p>";
		static const char b[] = "<p style=\"font-size:9px;line-height:16px;color:#333;margin:0\">"
		    "<a href=\"https://b.example/u\">Unsubscribe</a></p>";
		got g;

		for (int k = 0; k < 2; k++) {
			run(a, &g);
			ck_assert_uint_eq(g.n, 1);
			ck_assert_msg(!g.l[0].visible, "round %d: a font size of 0 shown", k);
			got_free(&g);
			run(b, &g);
			ck_assert_uint_eq(g.n, 1);
			ck_assert_msg(g.l[0].visible, "round %d: hidden by the style of the document before: %s",
			    k, g.l[0].why ? g.l[0].why : "-");
			got_free(&g);
		}
	}
}
END_TEST

START_TEST(test_files)
{
	const struct file_row *r = &file_rows[_i];
	const char *href = r->href ? r->href : "https://harbor.example.com/unsubscribe?u=8f2e";
	char path[1024];
	size_t len;
	got g;

	snprintf(path, sizeof(path), "%s/html/%s", TEST_DATA, r->file);
	char *buf = slurp(path, &len);
	run_lim(buf, len, 0, &deflim, &g);
	const got_link *l = find(&g, href);
	ck_assert_msg(l != NULL, "%s: %s not reported", r->file, href);
	ck_assert_msg(l->visible == r->visible, "%s: %s visible %d (%s)", r->file, href, l->visible,
	    l->why ? l->why : "-");
	if (r->why)
		ck_assert_msg(strcmp(l->why, r->why) == 0, "%s: why %s, want %s", r->file, l->why, r->why);
	got_free(&g);
	free(buf);
}
END_TEST

/* every document: the same facts whatever the chunks */
START_TEST(test_files_chunks)
{
	char dir[1024];
	DIR *d;
	struct dirent *de;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/html", TEST_DATA);
	d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name), len;
		char path[2048];
		if (l < 6 || strcmp(de->d_name + l - 5, ".html") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		char *buf = slurp(path, &len);
		check_chunks(de->d_name, buf, len);
		free(buf);
		n++;
	}
	closedir(d);
	ck_assert_int_ge(n, 40);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *
html_suite(void)
{
	Suite *s = suite_create("html");
	TCase *tc;

	tc = tcase_create("visibility");
	tcase_add_loop_test(tc, test_visibility, 0, N(vis_rows));
	suite_add_tcase(s, tc);

	tc = tcase_create("tokenizer");
	tcase_add_loop_test(tc, test_tokenizer, 0, N(tok_rows));
	suite_add_tcase(s, tc);

	tc = tcase_create("context");
	tcase_add_loop_test(tc, test_context, 0, N(ctx_rows));
	tcase_add_test(tc, test_context_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("places");
	tcase_add_loop_test(tc, test_places, 0, N(place_rows));
	tcase_add_test(tc, test_url_in_title);
	tcase_add_test(tc, test_url_window_utf8);
	tcase_add_test(tc, test_visible_text_and_alt);
	tcase_add_test(tc, test_order_and_counts);
	suite_add_tcase(s, tc);

	tc = tcase_create("bounds");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_max_links);
	tcase_add_test(tc, test_max_depth);
	tcase_add_test(tc, test_deep_inline_nesting);
	tcase_add_test(tc, test_max_url);
	tcase_add_test(tc, test_max_css_rules);
	tcase_add_test(tc, test_api_edges);
	tcase_add_test(tc, test_binary_input);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_files, 0, N(file_rows));
	tcase_add_test(tc, test_parser_taken_back);
	tcase_add_test(tc, test_files_chunks);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(html_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
