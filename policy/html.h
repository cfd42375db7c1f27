/*
 * html.h - streaming HTML tokenizer and visibility tracker.
 *
 * Owns: WHATWG tokenizer rules (tags, attributes quoted/unquoted/duplicated,
 * comments including "<!-->" and unterminated ones, raw-text and RCDATA
 * elements, character references), an element stack bounded by
 * MaxHtmlDepth, and the visibility of text and links through nesting:
 * hidden attribute, inline style (display:none, visibility:hidden,
 * opacity:0, font-size below the minimum, zero height/width with hidden
 * overflow, mso-hide:all, off-screen positioning, transparent colour),
 * text colour (nearly) equal to the inherited background, and simple class
 * rules from <style> blocks. Fed UTF-8 in chunks of any size; keeps no copy
 * of the document.
 *
 * Links carry facts (href, text, alt, surrounding text, visible, why);
 * deciding what an unsubscribe link is belongs to unsub.c.
 */
#ifndef BW_HTML_H
#define BW_HTML_H

#include <stdbool.h>
#include <stddef.h>

typedef struct html_limits {
	unsigned max_depth;   /* MaxHtmlDepth (256) */
	unsigned max_links;   /* MaxLinks (10000) */
	size_t max_url;       /* MaxUrlLength (8192): longer hrefs are cut and flagged */
	double min_font_px;   /* MinFontSize: smaller text is invisible (5) */
	unsigned max_css_rules; /* MaxCssRules: <style> rules kept (1000); 0: default */
} html_limits;

typedef struct html_link {
	const char *tag;      /* "a", "area", or "link" (a <link> in the document) */
	const char *href;     /* decoded, trimmed; NULL when the element has no href */
	const char *text;     /* text inside the element, whitespace collapsed */
	const char *alt;      /* alt text of images inside, joined by spaces; "" */
	const char *visible_text; /* the part of text a reader sees; "" when none */
	const char *visible_alt;  /* alt of the images inside that are shown */
	const char *before;   /* up to ~200 bytes of text before it in the same block */
	const char *after;    /* up to ~200 bytes of text after it in the same block */
	bool visible;
	const char *why;      /* when !visible: a short static reason such as
	                         "display:none", "inside comment", "color equals
	                         background"; NULL when visible */
	bool href_truncated;  /* href longer than max_url */
} html_link;

typedef struct html_cb {
	/* called once per link, when its surrounding text is known */
	void (*link)(void *ud, const html_link *l);
} html_cb;

typedef struct html_parser html_parser;

html_parser *html_new(const html_limits *lim, const html_cb *cb, void *ud);
void html_feed(html_parser *h, const char *buf, size_t len);
void html_finish(html_parser *h);
/* Config key of the first bound hit ("MaxHtmlDepth", "MaxLinks"), or NULL. */
const char *html_limit_hit(const html_parser *h);
/* A freed parser keeps its buffers in a pool shared by the threads (up to
 * 16 parsers): the next html_new() with the same limits, in any thread,
 * takes back the one freed last. */
void html_free(html_parser *h);
/* Frees the parsers of the pool (the next html_new() makes a new one). */
void html_spares_free(void);

#endif
