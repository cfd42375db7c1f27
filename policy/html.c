/*
 * html.c - streaming HTML tokenizer and visibility tracker.
 *
 * One pass, no DOM, no copy of the document. The tokenizer is the WHATWG
 * state machine for every state that decides where a tag, an attribute, a
 * comment or raw text begins and ends (script data with its escapes
 * included); tree construction is cut down to what visibility needs: a
 * bounded stack of open elements with the head, the implied end tags and
 * scope rules of "in body", tables (and fostering out of them) and foreign
 * content, all iterative.
 *
 * Text is kept raw in three small buffers (the current block, for
 * "before"; each open link; the pending link's "after"), each run of text
 * marked with the reason it is not seen (or none). Character references
 * are decoded and white space collapsed only when a link needs its facts
 * ("cooking"). A comment's text goes through a second, lighter tokenizer
 * (no tree: nothing in it is rendered), so links in comments and in
 * <!--[if mso]> are reported as hidden. URLs in the raw text of title,
 * style, script, noembed and noframes are reported as tag "url".
 *
 * Styles: inline style attributes (parsed ones cached per string),
 * presentational attributes, and simple rules of <style> blocks (tag,
 * .class, tag.class, #id, comma lists; rules in @media and other @-rules,
 * and compound selectors, ignored) cascaded by specificity, order and
 * !important. Only rules seen before an element apply to it.
 *
 * Character references: numeric ones as WHATWG says; named ones from a
 * table holding every legacy (no semicolon) name and every name that has
 * one as a prefix, so that the longest match is always right, plus the
 * Latin-1, Latin Extended-A, Greek, punctuation, currency and common
 * symbol names. Other names stay as written.
 *
 * Beyond the WHATWG tokenizer, link text is normalised for matching: white
 * space (with no-break and other Unicode spaces) collapsed, soft hyphens and
 * zero-width characters dropped.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "pool.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HTML_LE 1   /* word tricks that find the first byte */
#else
#define HTML_LE 0
#endif

/* ---- bounds ---------------------------------------------------------- */
#define HTML_NAME_MAX     32      /* tag and attribute name bytes kept */
#define HTML_ATTR_MAX     8192    /* style and class values kept */
#define HTML_ATTR_ID      1024
#define HTML_ATTR_ALT     2048    /* alt, title */
#define HTML_ATTR_SMALL   64      /* colours, sizes */
#define HTML_RING         4096    /* raw text of the current block */
#define HTML_RING_KEEP    2048
#define HTML_BEFORE_SCAN  1024    /* raw bytes looked at for "before" */
#define HTML_LINK_RAW     4096    /* raw text inside one link */
#define HTML_LINK_NEST    4       /* links open at once (<a><table><td><a>) */
#define HTML_LINK_ALT     1024    /* alts inside one link, joined */
#define HTML_AROUND       200     /* bytes of text before / after a link */
#define HTML_AFTER_RAW    4096
#define HTML_TEXT_MAX     1024    /* link text */
#define HTML_URLRING      512     /* raw text before a URL in raw text */
#define HTML_URL_WINDOW   240
#define HTML_CSS_SEL      4096    /* one selector list */
#define HTML_CSS_DECL     8192    /* one declaration block */
#define HTML_CSS_DECLS    64      /* declarations of one rule that matter */
#define HTML_CSS_MATCH    64      /* rules matching one element */
#define HTML_CSS_NAMES    65536   /* class and id names of the rules */
#define HTML_CLASSES      32      /* class names of one element looked up */
#define HTML_COMMENT_BUF  2048    /* a comment's text held until its end */
#define HTML_HOLD_MAX     (1u << 20) /* facts of the links held to the end */
#define HTML_CHAIN        64      /* elements of a link's chain kept for it */
#define HTML_ELEM_NAMES   512     /* class and id bytes kept of one element */
#define HTML_NAMES_MAX    16384   /* class and id bytes of the open elements */

/* the parser's scratch space */
#define SC_WIN    0                                  /* a window of raw text */
#define SC_COOK   (HTML_BEFORE_SCAN + 16)             /* its cooked form */
#define SC_AROUND (SC_COOK + HTML_BEFORE_SCAN + 16)   /* before, both ways */
#define SC_SIZE   (SC_AROUND + 2 * (HTML_AROUND + 1) + HTML_TEXT_MAX + 16)

#define DEF_MAX_DEPTH     256
#define DEF_MAX_LINKS     10000
#define DEF_MAX_URL       8192
#define DEF_MIN_FONT      5.0
#define DEF_CSS_RULES     1000

/* ---- reasons a thing is not seen ---------------------------------------- */
enum {
	R_NONE, R_DISPLAY, R_VISIBILITY, R_OPACITY, R_FONT0, R_FONTSMALL, R_HEIGHT0,
	R_MAXHEIGHT0, R_WIDTH0, R_MAXWIDTH0, R_MSO, R_OFFSCREEN, R_TRANSPARENT,
	R_SAMECOLOR, R_HIDDENATTR, R_COMMENT, R_NOSCRIPT, R_HEAD, R_TEMPLATE, R_TITLE,
	R_STYLE, R_SCRIPT, R_NOEMBED, R_NOFRAMES, R_IFRAME, R_NOCONTENT, R_ATTRLONG,
	R_HEIGHTSMALL, R_MAXHEIGHTSMALL, R_CLIP, R_CLIPPATH, R_TRANSFORM, R_DETAILS, R_DIALOG,
	R_COUNT
};

static const char *const html_reasons[R_COUNT] = {
	NULL, "display:none", "visibility:hidden", "opacity:0", "font-size:0",
	"font-size too small", "height:0 with overflow:hidden",
	"max-height:0 with overflow:hidden", "width:0 with overflow:hidden",
	"max-width:0 with overflow:hidden", "mso-hide:all", "off-screen",
	"color:transparent", "color equals background", "hidden attribute",
	"inside comment", "inside <noscript>", "inside <head>", "inside <template>",
	"inside <title>", "inside <style>", "inside <script>", "inside <noembed>",
	"inside <noframes>", "inside <iframe>", "no visible content",
	"attribute too long", "tiny height with overflow:hidden",
	"tiny max-height with overflow:hidden", "clip:rect", "clip-path", "transform:scale",
	"inside closed <details>", "inside closed <dialog>",
};

/* ---- tags --------------------------------------------------------------- */
enum {
	T_OTHER, T_A, T_ABBR, T_ADDRESS, T_APPLET, T_AREA, T_ARTICLE, T_ASIDE, T_B,
	T_BASE, T_BASEFONT, T_BGSOUND, T_BIG, T_BLOCKQUOTE, T_BODY, T_BR, T_BUTTON,
	T_CAPTION, T_CENTER, T_CITE, T_CODE, T_COL, T_COLGROUP, T_DD, T_DETAILS,
	T_DIALOG, T_DIR, T_DIV, T_DL, T_DT, T_EM, T_EMBED, T_FIELDSET, T_FIGCAPTION,
	T_FIGURE, T_FONT, T_FOOTER, T_FORM, T_FRAME, T_FRAMESET, T_H1, T_H2, T_H3,
	T_H4, T_H5, T_H6, T_HEAD, T_HEADER, T_HGROUP, T_HR, T_HTML, T_I, T_IFRAME,
	T_IMAGE, T_IMG, T_INPUT, T_KEYGEN, T_LABEL, T_LI, T_LINK, T_LISTING, T_MAIN,
	T_MAP, T_MARQUEE, T_MATH, T_MENU, T_META, T_NAV, T_NOBR, T_NOEMBED,
	T_NOFRAMES, T_NOSCRIPT, T_OBJECT, T_OL, T_OPTGROUP, T_OPTION, T_P, T_PARAM,
	T_PLAINTEXT, T_PRE, T_Q, T_S, T_SCRIPT, T_SEARCH, T_SECTION, T_SELECT,
	T_SMALL, T_SOURCE, T_SPAN, T_STRIKE, T_STRONG, T_STYLE, T_SUB, T_SUMMARY,
	T_SUP, T_SVG, T_TABLE, T_TBODY, T_TD, T_TEMPLATE, T_TEXTAREA, T_TFOOT, T_TH,
	T_THEAD, T_TITLE, T_TR, T_TRACK, T_TT, T_U, T_UL, T_WBR, T_XMP,
	T_COUNT
};

#define TF_VOID     0x0001
#define TF_BLOCK    0x0002   /* starts a new block of text */
#define TF_SPECIAL  0x0004   /* the WHATWG "special" category */
#define TF_CLOSEP   0x0008   /* its start tag closes an open <p> */
#define TF_SCOPE    0x0010   /* bounds the default scope */
#define TF_TABLE    0x0020   /* table structure: never clips, never fostered */
#define TF_HEADOK   0x0040   /* may stay in <head> */
#define TF_RAW      0x0080   /* RAWTEXT content */
#define TF_RCDATA   0x0100   /* RCDATA content */
#define TF_FORMAT   0x0200   /* formatting element */
#define TF_HEADING  0x0400
#define TF_FOREIGN  0x0800   /* svg, math */
#define TF_TABLECTX 0x1000   /* table, tbody, thead, tfoot, tr: content is fostered */
/* Tags with rules of their own in tree_start and tree_end, tested at once:
 * the branches on the tag that follow are taken for few tags, and a branch
 * that depends on which tag it is goes wrong often (the tags of a page come
 * in no order a predictor learns). */
#define TF_BODYRULE  0x2000  /* in body, before the push: body, html, head,
                                frameset, li, dd, dt, and the cases of its switch */
#define TF_STARTRULE 0x4000  /* an imposed reason, or work after the push:
                                noscript, template, a, plaintext, script, raw text */
#define TF_STYLED    0x8000  /* styled() by its tag: small, sub, sup, details, dialog */
#define TF_ENDRULE   0x10000 /* the cases of tree_end's switch */
#define TF_NOFOSTER  0x20000 /* style, script, template, form, input: in a table,
                                not fostered out of it (as TF_TABLE) */

static const struct tagdef {
	char name[11];
	uint8_t len;
	uint32_t fl;
} tagdefs[T_COUNT] = {
	{ "", 0, 0 }, { "a", 1, TF_FORMAT|TF_BODYRULE|TF_STARTRULE }, { "abbr", 4, 0 },
	{ "address", 7, TF_BLOCK|TF_SPECIAL|TF_CLOSEP }, { "applet", 6, TF_SPECIAL|TF_SCOPE },
	{ "area", 4, TF_VOID|TF_SPECIAL }, { "article", 7, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "aside", 5, TF_BLOCK|TF_SPECIAL|TF_CLOSEP }, { "b", 1, TF_FORMAT },
	{ "base", 4, TF_VOID|TF_SPECIAL|TF_HEADOK },
	{ "basefont", 8, TF_VOID|TF_SPECIAL|TF_HEADOK },
	{ "bgsound", 7, TF_VOID|TF_SPECIAL|TF_HEADOK }, { "big", 3, TF_FORMAT },
	{ "blockquote", 10, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "body", 4, TF_BLOCK|TF_SPECIAL|TF_BODYRULE|TF_ENDRULE },
	{ "br", 2, TF_VOID|TF_SPECIAL|TF_BLOCK|TF_ENDRULE },
	{ "button", 6, TF_SPECIAL|TF_BODYRULE },
	{ "caption", 7, TF_BLOCK|TF_SPECIAL|TF_SCOPE|TF_TABLE|TF_BODYRULE|TF_ENDRULE },
	{ "center", 6, TF_BLOCK|TF_SPECIAL|TF_CLOSEP }, { "cite", 4, 0 },
	{ "code", 4, TF_FORMAT }, { "col", 3, TF_VOID|TF_SPECIAL|TF_TABLE|TF_BODYRULE },
	{ "colgroup", 8, TF_SPECIAL|TF_TABLE|TF_BODYRULE|TF_ENDRULE },
	{ "dd", 2, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_BODYRULE },
	{ "details", 7, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_STYLED },
	{ "dialog", 6, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_STYLED },
	{ "dir", 3, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "div", 3, TF_BLOCK|TF_SPECIAL|TF_CLOSEP }, { "dl", 2, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "dt", 2, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_BODYRULE }, { "em", 2, TF_FORMAT },
	{ "embed", 5, TF_VOID|TF_SPECIAL }, { "fieldset", 8, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "figcaption", 10, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "figure", 6, TF_BLOCK|TF_SPECIAL|TF_CLOSEP }, { "font", 4, TF_FORMAT },
	{ "footer", 6, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "form", 4, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_NOFOSTER },
	{ "frame", 5, TF_VOID|TF_SPECIAL }, { "frameset", 8, TF_SPECIAL|TF_BODYRULE },
	{ "h1", 2, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_HEADING },
	{ "h2", 2, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_HEADING },
	{ "h3", 2, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_HEADING },
	{ "h4", 2, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_HEADING },
	{ "h5", 2, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_HEADING },
	{ "h6", 2, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_HEADING },
	{ "head", 4, TF_BLOCK|TF_SPECIAL|TF_BODYRULE|TF_ENDRULE },
	{ "header", 6, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "hgroup", 6, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "hr", 2, TF_VOID|TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "html", 4, TF_BLOCK|TF_SPECIAL|TF_SCOPE|TF_BODYRULE|TF_ENDRULE },
	{ "i", 1, TF_FORMAT }, { "iframe", 6, TF_SPECIAL|TF_RAW|TF_STARTRULE },
	{ "image", 5, TF_VOID|TF_SPECIAL }, { "img", 3, TF_VOID|TF_SPECIAL },
	{ "input", 5, TF_VOID|TF_SPECIAL|TF_NOFOSTER }, { "keygen", 6, TF_VOID|TF_SPECIAL },
	{ "label", 5, 0 }, { "li", 2, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_BODYRULE|TF_ENDRULE },
	{ "link", 4, TF_VOID|TF_SPECIAL|TF_HEADOK },
	{ "listing", 7, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "main", 4, TF_BLOCK|TF_SPECIAL|TF_CLOSEP }, { "map", 3, 0 },
	{ "marquee", 7, TF_SPECIAL|TF_SCOPE }, { "math", 4, TF_FOREIGN },
	{ "menu", 4, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "meta", 4, TF_VOID|TF_SPECIAL|TF_HEADOK },
	{ "nav", 3, TF_BLOCK|TF_SPECIAL|TF_CLOSEP }, { "nobr", 4, TF_FORMAT|TF_BODYRULE },
	{ "noembed", 7, TF_SPECIAL|TF_RAW|TF_STARTRULE },
	{ "noframes", 8, TF_SPECIAL|TF_RAW|TF_HEADOK|TF_STARTRULE },
	{ "noscript", 8, TF_SPECIAL|TF_HEADOK|TF_STARTRULE },
	{ "object", 6, TF_SPECIAL|TF_SCOPE }, { "ol", 2, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "optgroup", 8, TF_BODYRULE }, { "option", 6, TF_BODYRULE },
	{ "p", 1, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_ENDRULE },
	{ "param", 5, TF_VOID|TF_SPECIAL },
	{ "plaintext", 9, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_STARTRULE },
	{ "pre", 3, TF_BLOCK|TF_SPECIAL|TF_CLOSEP }, { "q", 1, 0 }, { "s", 1, TF_FORMAT },
	{ "script", 6, TF_SPECIAL|TF_HEADOK|TF_STARTRULE|TF_NOFOSTER },
	{ "search", 6, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "section", 7, TF_BLOCK|TF_SPECIAL|TF_CLOSEP }, { "select", 6, TF_SPECIAL },
	{ "small", 5, TF_FORMAT|TF_STYLED }, { "source", 6, TF_VOID|TF_SPECIAL },
	{ "span", 4, 0 }, { "strike", 6, TF_FORMAT }, { "strong", 6, TF_FORMAT },
	{ "style", 5, TF_SPECIAL|TF_RAW|TF_HEADOK|TF_STARTRULE|TF_NOFOSTER },
	{ "sub", 3, TF_STYLED }, { "summary", 7, TF_BLOCK|TF_SPECIAL|TF_CLOSEP },
	{ "sup", 3, TF_STYLED }, { "svg", 3, TF_FOREIGN },
	{ "table", 5, TF_BLOCK|TF_SPECIAL|TF_SCOPE|TF_TABLE|TF_TABLECTX|TF_BODYRULE|TF_ENDRULE },
	{ "tbody", 5, TF_BLOCK|TF_SPECIAL|TF_TABLE|TF_TABLECTX|TF_BODYRULE|TF_ENDRULE },
	{ "td", 2, TF_BLOCK|TF_SPECIAL|TF_SCOPE|TF_TABLE|TF_BODYRULE|TF_ENDRULE },
	{ "template", 8, TF_SPECIAL|TF_SCOPE|TF_HEADOK|TF_STARTRULE|TF_NOFOSTER },
	{ "textarea", 8, TF_SPECIAL|TF_RCDATA|TF_STARTRULE },
	{ "tfoot", 5, TF_BLOCK|TF_SPECIAL|TF_TABLE|TF_TABLECTX|TF_BODYRULE|TF_ENDRULE },
	{ "th", 2, TF_BLOCK|TF_SPECIAL|TF_SCOPE|TF_TABLE|TF_BODYRULE|TF_ENDRULE },
	{ "thead", 5, TF_BLOCK|TF_SPECIAL|TF_TABLE|TF_TABLECTX|TF_BODYRULE|TF_ENDRULE },
	{ "title", 5, TF_SPECIAL|TF_RCDATA|TF_HEADOK|TF_STARTRULE },
	{ "tr", 2, TF_BLOCK|TF_SPECIAL|TF_TABLE|TF_TABLECTX|TF_BODYRULE|TF_ENDRULE },
	{ "track", 5, TF_VOID|TF_SPECIAL }, { "tt", 2, TF_FORMAT }, { "u", 1, TF_FORMAT },
	{ "ul", 2, TF_BLOCK|TF_SPECIAL|TF_CLOSEP }, { "wbr", 3, TF_VOID|TF_SPECIAL },
	{ "xmp", 3, TF_BLOCK|TF_SPECIAL|TF_CLOSEP|TF_RAW|TF_STARTRULE },
};

/* tagidx[(key * TAG_MUL) >> 22], key = the name's first four bytes (zero
 * padded, little-endian) ^ length << 27: the tag, collision free */
#define TAG_MUL 0xc5cefdd9u
static const uint8_t tagidx[1024] = {
	0,0,0,0,0,0,0,0,0,0,66,0,0,0,65,0,0,0,0,0,0,0,0,78,0,0,0,0,0,0,0,0,
	0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,98,0,0,0,0,0,62,0,0,0,0,0,0,
	0,0,0,0,0,99,0,0,56,0,0,0,14,0,0,33,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
	0,80,0,0,49,0,12,0,0,0,0,0,0,0,0,0,0,0,0,0,84,0,0,0,0,0,0,0,0,0,0,0,
	0,0,0,0,0,0,0,0,0,0,89,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,28,
	0,0,42,0,32,0,0,0,0,0,0,72,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,108,0,
	0,0,0,0,0,0,0,0,104,0,0,0,0,0,0,0,0,0,0,0,0,0,0,48,79,0,0,0,0,0,0,0,
	0,0,90,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
	0,0,0,0,0,0,0,0,111,0,0,0,0,0,0,0,0,0,0,0,0,70,36,0,0,0,91,0,0,0,0,0,
	0,0,0,102,0,0,0,0,0,0,109,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,52,0,0,0,0,0,
	0,0,0,0,0,0,39,0,0,0,76,0,0,0,57,0,0,0,0,0,0,0,0,34,25,0,0,0,0,0,0,0,
	0,13,0,0,0,0,41,0,0,0,0,0,101,0,0,0,97,0,0,0,0,0,100,0,0,0,0,105,0,0,0,0,
	5,0,0,0,0,0,0,0,0,0,0,0,0,0,0,82,0,0,0,0,0,0,22,0,0,24,0,0,0,0,0,0,
	17,0,0,0,74,47,0,0,53,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,68,0,0,0,0,0,0,0,
	0,0,0,0,0,0,0,0,0,71,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,15,0,0,0,0,0,0,
	0,0,0,0,0,7,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
	0,0,0,0,8,0,0,0,0,0,0,0,0,0,0,0,0,0,0,27,0,0,0,0,0,0,0,0,0,0,0,0,
	0,0,0,0,0,0,0,0,0,0,40,0,0,0,0,0,0,0,0,10,0,4,26,0,0,0,0,0,0,0,0,0,
	0,0,0,0,106,0,0,0,87,0,0,63,110,0,0,0,0,0,0,0,0,0,45,0,0,0,0,0,0,0,0,0,
	0,93,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,31,0,0,0,29,
	0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,81,0,0,0,0,0,0,0,0,0,0,0,0,0,83,0,73,
	0,0,50,0,0,0,38,0,0,0,85,0,0,0,0,0,0,0,0,9,0,0,0,0,0,0,21,0,0,0,0,0,
	23,0,0,0,0,3,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,64,0,0,0,0,0,0,0,0,0,
	0,88,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,0,30,0,0,0,0,0,0,54,0,0,0,95,0,0,
	0,0,103,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,44,0,67,0,0,0,
	0,0,0,11,0,0,0,0,0,0,0,0,75,0,0,0,0,0,0,0,0,0,0,60,0,0,0,0,0,0,0,6,
	0,0,0,0,0,86,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,35,
	0,0,0,0,0,46,0,0,0,0,0,0,0,0,0,0,0,0,0,94,0,0,0,0,0,0,0,0,0,0,2,0,
	37,18,0,0,96,0,0,0,0,0,0,0,0,61,0,0,0,77,0,20,0,0,0,0,0,0,0,0,0,0,0,0,
	0,19,0,0,0,58,0,51,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
	0,0,0,0,0,0,0,0,0,0,69,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,55,0,0,43,0,
	0,0,0,0,0,0,0,0,0,0,0,0,92,0,0,0,0,0,0,107,0,0,16,0,0,0,0,0,0,0,59,0,
};

#define FNV_INIT 2166136261u
#define FNV_STEP(h, c) (((h) ^ (uint8_t)(c)) * 16777619u)

/* The first eight bytes of a lower-case name as a number, byte k at bits
 * 8k: the tokenizer builds it as it reads the name. */
static inline uint64_t
name_word(const char *n, size_t len)
{
	uint64_t w = 0;

	for (size_t k = 0; k < len && k < 8; k++)
		w |= (uint64_t)(uint8_t)n[k] << (8 * k);
	return w;
}

/* the tag of a lower-case name of len bytes whose name_word is w */
static inline int
tag_lookup(uint64_t w, const char *n, size_t len)
{
	uint32_t key = (uint32_t)w ^ (uint32_t)len << 27;
	unsigned i = tagidx[(uint32_t)(key * TAG_MUL) >> 22];

	uint64_t d;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(&d, tagdefs[i].name, 8);
#else
	d = name_word(tagdefs[i].name, 8);
#endif
	if (tagdefs[i].len != len || d != w)  /* (tagdefs[0] is T_OTHER) */
		return T_OTHER;
	for (size_t k = 8; k < len; k++)
		if (tagdefs[i].name[k] != n[k])
			return T_OTHER;
	return (int)i;
}

/* ---- named character references (see the header comment) ---------------- */
static const struct entity {
	const char *name;
	uint8_t len;
	const char *utf8;
} entities[] = {
	{ "AElig", 5, "\xc3\x86" }, { "AElig;", 6, "\xc3\x86" }, { "AMP", 3, "&" },
	{ "AMP;", 4, "&" }, { "Aacute", 6, "\xc3\x81" }, { "Aacute;", 7, "\xc3\x81" },
	{ "Acirc", 5, "\xc3\x82" }, { "Acirc;", 6, "\xc3\x82" }, { "Agrave", 6, "\xc3\x80" },
	{ "Agrave;", 7, "\xc3\x80" }, { "Alpha;", 6, "\xce\x91" }, { "Aring", 5, "\xc3\x85" },
	{ "Aring;", 6, "\xc3\x85" }, { "Atilde", 6, "\xc3\x83" }, { "Atilde;", 7, "\xc3\x83" },
	{ "Auml", 4, "\xc3\x84" }, { "Auml;", 5, "\xc3\x84" }, { "Beta;", 5, "\xce\x92" },
	{ "COPY", 4, "\xc2\xa9" }, { "COPY;", 5, "\xc2\xa9" }, { "Ccedil", 6, "\xc3\x87" },
	{ "Ccedil;", 7, "\xc3\x87" }, { "Cedilla;", 8, "\xc2\xb8" },
	{ "CenterDot;", 10, "\xc2\xb7" }, { "Chi;", 4, "\xce\xa7" },
	{ "CloseCurlyDoubleQuote;", 22, "\xe2\x80\x9d" },
	{ "CloseCurlyQuote;", 16, "\xe2\x80\x99" }, { "Dagger;", 7, "\xe2\x80\xa1" },
	{ "Delta;", 6, "\xce\x94" }, { "DiacriticalAcute;", 17, "\xc2\xb4" },
	{ "DiacriticalGrave;", 17, "`" }, { "DiacriticalTilde;", 17, "\xcb\x9c" },
	{ "Dot;", 4, "\xc2\xa8" }, { "DoubleDot;", 10, "\xc2\xa8" },
	{ "DownArrow;", 10, "\xe2\x86\x93" }, { "ETH", 3, "\xc3\x90" },
	{ "ETH;", 4, "\xc3\x90" }, { "Eacute", 6, "\xc3\x89" }, { "Eacute;", 7, "\xc3\x89" },
	{ "Ecirc", 5, "\xc3\x8a" }, { "Ecirc;", 6, "\xc3\x8a" }, { "Egrave", 6, "\xc3\x88" },
	{ "Egrave;", 7, "\xc3\x88" }, { "Epsilon;", 8, "\xce\x95" }, { "Eta;", 4, "\xce\x97" },
	{ "Euml", 4, "\xc3\x8b" }, { "Euml;", 5, "\xc3\x8b" }, { "GT", 2, ">" },
	{ "GT;", 3, ">" }, { "Gamma;", 6, "\xce\x93" }, { "GreaterEqual;", 13, "\xe2\x89\xa5" },
	{ "Hat;", 4, "^" }, { "Iacute", 6, "\xc3\x8d" }, { "Iacute;", 7, "\xc3\x8d" },
	{ "Icirc", 5, "\xc3\x8e" }, { "Icirc;", 6, "\xc3\x8e" }, { "Igrave", 6, "\xc3\x8c" },
	{ "Igrave;", 7, "\xc3\x8c" }, { "Iota;", 5, "\xce\x99" }, { "Iuml", 4, "\xc3\x8f" },
	{ "Iuml;", 5, "\xc3\x8f" }, { "Kappa;", 6, "\xce\x9a" }, { "LT", 2, "<" },
	{ "LT;", 3, "<" }, { "Lambda;", 7, "\xce\x9b" }, { "LeftArrow;", 10, "\xe2\x86\x90" },
	{ "LeftRightArrow;", 15, "\xe2\x86\x94" }, { "Mu;", 3, "\xce\x9c" },
	{ "NegativeMediumSpace;", 20, "\xe2\x80\x8b" },
	{ "NegativeThickSpace;", 19, "\xe2\x80\x8b" },
	{ "NegativeThinSpace;", 18, "\xe2\x80\x8b" },
	{ "NegativeVeryThinSpace;", 22, "\xe2\x80\x8b" }, { "NewLine;", 8, "\x0a" },
	{ "NonBreakingSpace;", 17, "\xc2\xa0" }, { "NotEqual;", 9, "\xe2\x89\xa0" },
	{ "Ntilde", 6, "\xc3\x91" }, { "Ntilde;", 7, "\xc3\x91" }, { "Nu;", 3, "\xce\x9d" },
	{ "OElig;", 6, "\xc5\x92" }, { "Oacute", 6, "\xc3\x93" }, { "Oacute;", 7, "\xc3\x93" },
	{ "Ocirc", 5, "\xc3\x94" }, { "Ocirc;", 6, "\xc3\x94" }, { "Ograve", 6, "\xc3\x92" },
	{ "Ograve;", 7, "\xc3\x92" }, { "Omega;", 6, "\xce\xa9" },
	{ "Omicron;", 8, "\xce\x9f" }, { "OpenCurlyDoubleQuote;", 21, "\xe2\x80\x9c" },
	{ "OpenCurlyQuote;", 15, "\xe2\x80\x98" }, { "Oslash", 6, "\xc3\x98" },
	{ "Oslash;", 7, "\xc3\x98" }, { "Otilde", 6, "\xc3\x95" }, { "Otilde;", 7, "\xc3\x95" },
	{ "Ouml", 4, "\xc3\x96" }, { "Ouml;", 5, "\xc3\x96" }, { "Phi;", 4, "\xce\xa6" },
	{ "Pi;", 3, "\xce\xa0" }, { "PlusMinus;", 10, "\xc2\xb1" },
	{ "Prime;", 6, "\xe2\x80\xb3" }, { "Psi;", 4, "\xce\xa8" }, { "QUOT", 4, "\x22" },
	{ "QUOT;", 5, "\x22" }, { "REG", 3, "\xc2\xae" }, { "REG;", 4, "\xc2\xae" },
	{ "Rho;", 4, "\xce\xa1" }, { "RightArrow;", 11, "\xe2\x86\x92" },
	{ "Scaron;", 7, "\xc5\xa0" }, { "ShortDownArrow;", 15, "\xe2\x86\x93" },
	{ "ShortLeftArrow;", 15, "\xe2\x86\x90" }, { "ShortRightArrow;", 16, "\xe2\x86\x92" },
	{ "ShortUpArrow;", 13, "\xe2\x86\x91" }, { "Sigma;", 6, "\xce\xa3" },
	{ "THORN", 5, "\xc3\x9e" }, { "THORN;", 6, "\xc3\x9e" },
	{ "TRADE;", 6, "\xe2\x84\xa2" }, { "Tab;", 4, "\x09" }, { "Tau;", 4, "\xce\xa4" },
	{ "Theta;", 6, "\xce\x98" }, { "ThinSpace;", 10, "\xe2\x80\x89" },
	{ "TildeTilde;", 11, "\xe2\x89\x88" }, { "Uacute", 6, "\xc3\x9a" },
	{ "Uacute;", 7, "\xc3\x9a" }, { "Ucirc", 5, "\xc3\x9b" }, { "Ucirc;", 6, "\xc3\x9b" },
	{ "Ugrave", 6, "\xc3\x99" }, { "Ugrave;", 7, "\xc3\x99" }, { "UnderBar;", 9, "_" },
	{ "UpArrow;", 8, "\xe2\x86\x91" }, { "Upsi;", 5, "\xcf\x92" },
	{ "Upsilon;", 8, "\xce\xa5" }, { "Uuml", 4, "\xc3\x9c" }, { "Uuml;", 5, "\xc3\x9c" },
	{ "Verbar;", 7, "\xe2\x80\x96" }, { "Vert;", 5, "\xe2\x80\x96" },
	{ "VerticalLine;", 13, "|" }, { "VeryThinSpace;", 14, "\xe2\x80\x8a" },
	{ "Xi;", 3, "\xce\x9e" }, { "Yacute", 6, "\xc3\x9d" }, { "Yacute;", 7, "\xc3\x9d" },
	{ "Yuml;", 5, "\xc5\xb8" }, { "ZeroWidthSpace;", 15, "\xe2\x80\x8b" },
	{ "Zeta;", 5, "\xce\x96" }, { "aacute", 6, "\xc3\xa1" }, { "aacute;", 7, "\xc3\xa1" },
	{ "acirc", 5, "\xc3\xa2" }, { "acirc;", 6, "\xc3\xa2" }, { "acute", 5, "\xc2\xb4" },
	{ "acute;", 6, "\xc2\xb4" }, { "aelig", 5, "\xc3\xa6" }, { "aelig;", 6, "\xc3\xa6" },
	{ "agrave", 6, "\xc3\xa0" }, { "agrave;", 7, "\xc3\xa0" }, { "alpha;", 6, "\xce\xb1" },
	{ "amp", 3, "&" }, { "amp;", 4, "&" }, { "angst;", 6, "\xc3\x85" },
	{ "ap;", 3, "\xe2\x89\x88" }, { "apos;", 5, "'" }, { "approx;", 7, "\xe2\x89\x88" },
	{ "aring", 5, "\xc3\xa5" }, { "aring;", 6, "\xc3\xa5" }, { "ast;", 4, "*" },
	{ "asymp;", 6, "\xe2\x89\x88" }, { "atilde", 6, "\xc3\xa3" },
	{ "atilde;", 7, "\xc3\xa3" }, { "auml", 4, "\xc3\xa4" }, { "auml;", 5, "\xc3\xa4" },
	{ "backprime;", 10, "\xe2\x80\xb5" }, { "bdquo;", 6, "\xe2\x80\x9e" },
	{ "beta;", 5, "\xce\xb2" }, { "bprime;", 7, "\xe2\x80\xb5" },
	{ "brvbar", 6, "\xc2\xa6" }, { "brvbar;", 7, "\xc2\xa6" }, { "bsol;", 5, "\x5c" },
	{ "bull;", 5, "\xe2\x80\xa2" }, { "bullet;", 7, "\xe2\x80\xa2" },
	{ "ccedil", 6, "\xc3\xa7" }, { "ccedil;", 7, "\xc3\xa7" }, { "cedil", 5, "\xc2\xb8" },
	{ "cedil;", 6, "\xc2\xb8" }, { "cent", 4, "\xc2\xa2" }, { "cent;", 5, "\xc2\xa2" },
	{ "centerdot;", 10, "\xc2\xb7" }, { "chi;", 4, "\xcf\x87" }, { "circ;", 5, "\xcb\x86" },
	{ "circledR;", 9, "\xc2\xae" }, { "colon;", 6, ":" }, { "comma;", 6, "," },
	{ "commat;", 7, "@" }, { "copy", 4, "\xc2\xa9" }, { "copy;", 5, "\xc2\xa9" },
	{ "copysr;", 7, "\xe2\x84\x97" }, { "curren", 6, "\xc2\xa4" },
	{ "curren;", 7, "\xc2\xa4" }, { "dagger;", 7, "\xe2\x80\xa0" },
	{ "darr;", 5, "\xe2\x86\x93" }, { "dash;", 5, "\xe2\x80\x90" },
	{ "ddagger;", 8, "\xe2\x80\xa1" }, { "deg", 3, "\xc2\xb0" }, { "deg;", 4, "\xc2\xb0" },
	{ "delta;", 6, "\xce\xb4" }, { "die;", 4, "\xc2\xa8" }, { "div;", 4, "\xc3\xb7" },
	{ "divide", 6, "\xc3\xb7" }, { "divide;", 7, "\xc3\xb7" },
	{ "divideontimes;", 14, "\xe2\x8b\x87" }, { "dollar;", 7, "$" },
	{ "downarrow;", 10, "\xe2\x86\x93" }, { "eacute", 6, "\xc3\xa9" },
	{ "eacute;", 7, "\xc3\xa9" }, { "ecirc", 5, "\xc3\xaa" }, { "ecirc;", 6, "\xc3\xaa" },
	{ "egrave", 6, "\xc3\xa8" }, { "egrave;", 7, "\xc3\xa8" },
	{ "emsp13;", 7, "\xe2\x80\x84" }, { "emsp14;", 7, "\xe2\x80\x85" },
	{ "emsp;", 5, "\xe2\x80\x83" }, { "ensp;", 5, "\xe2\x80\x82" },
	{ "epsi;", 5, "\xce\xb5" }, { "epsilon;", 8, "\xce\xb5" }, { "equals;", 7, "=" },
	{ "eta;", 4, "\xce\xb7" }, { "eth", 3, "\xc3\xb0" }, { "eth;", 4, "\xc3\xb0" },
	{ "euml", 4, "\xc3\xab" }, { "euml;", 5, "\xc3\xab" }, { "euro;", 5, "\xe2\x82\xac" },
	{ "excl;", 5, "!" }, { "fnof;", 5, "\xc6\x92" }, { "frac12", 6, "\xc2\xbd" },
	{ "frac12;", 7, "\xc2\xbd" }, { "frac14", 6, "\xc2\xbc" }, { "frac14;", 7, "\xc2\xbc" },
	{ "frac34", 6, "\xc2\xbe" }, { "frac34;", 7, "\xc2\xbe" },
	{ "frasl;", 6, "\xe2\x81\x84" }, { "gamma;", 6, "\xce\xb3" },
	{ "ge;", 3, "\xe2\x89\xa5" }, { "geq;", 4, "\xe2\x89\xa5" }, { "grave;", 6, "`" },
	{ "gt", 2, ">" }, { "gt;", 3, ">" }, { "gtcc;", 5, "\xe2\xaa\xa7" },
	{ "gtcir;", 6, "\xe2\xa9\xba" }, { "gtdot;", 6, "\xe2\x8b\x97" },
	{ "gtlPar;", 7, "\xe2\xa6\x95" }, { "gtquest;", 8, "\xe2\xa9\xbc" },
	{ "gtrapprox;", 10, "\xe2\xaa\x86" }, { "gtrarr;", 7, "\xe2\xa5\xb8" },
	{ "gtrdot;", 7, "\xe2\x8b\x97" }, { "gtreqless;", 10, "\xe2\x8b\x9b" },
	{ "gtreqqless;", 11, "\xe2\xaa\x8c" }, { "gtrless;", 8, "\xe2\x89\xb7" },
	{ "gtrsim;", 7, "\xe2\x89\xb3" }, { "hairsp;", 7, "\xe2\x80\x8a" },
	{ "half;", 5, "\xc2\xbd" }, { "harr;", 5, "\xe2\x86\x94" },
	{ "hellip;", 7, "\xe2\x80\xa6" }, { "horbar;", 7, "\xe2\x80\x95" },
	{ "hyphen;", 7, "\xe2\x80\x90" }, { "iacute", 6, "\xc3\xad" },
	{ "iacute;", 7, "\xc3\xad" }, { "icirc", 5, "\xc3\xae" }, { "icirc;", 6, "\xc3\xae" },
	{ "iexcl", 5, "\xc2\xa1" }, { "iexcl;", 6, "\xc2\xa1" }, { "igrave", 6, "\xc3\xac" },
	{ "igrave;", 7, "\xc3\xac" }, { "infin;", 6, "\xe2\x88\x9e" },
	{ "iota;", 5, "\xce\xb9" }, { "iquest", 6, "\xc2\xbf" }, { "iquest;", 7, "\xc2\xbf" },
	{ "iuml", 4, "\xc3\xaf" }, { "iuml;", 5, "\xc3\xaf" }, { "kappa;", 6, "\xce\xba" },
	{ "lambda;", 7, "\xce\xbb" }, { "laquo", 5, "\xc2\xab" }, { "laquo;", 6, "\xc2\xab" },
	{ "larr;", 5, "\xe2\x86\x90" }, { "lbrace;", 7, "{" }, { "lbrack;", 7, "[" },
	{ "lcub;", 5, "{" }, { "ldquo;", 6, "\xe2\x80\x9c" }, { "ldquor;", 7, "\xe2\x80\x9e" },
	{ "le;", 3, "\xe2\x89\xa4" }, { "leftarrow;", 10, "\xe2\x86\x90" },
	{ "leftrightarrow;", 15, "\xe2\x86\x94" }, { "leq;", 4, "\xe2\x89\xa4" },
	{ "lowbar;", 7, "_" }, { "lpar;", 5, "(" }, { "lrm;", 4, "\xe2\x80\x8e" },
	{ "lsaquo;", 7, "\xe2\x80\xb9" }, { "lsqb;", 5, "[" }, { "lsquo;", 6, "\xe2\x80\x98" },
	{ "lsquor;", 7, "\xe2\x80\x9a" }, { "lt", 2, "<" }, { "lt;", 3, "<" },
	{ "ltcc;", 5, "\xe2\xaa\xa6" }, { "ltcir;", 6, "\xe2\xa9\xb9" },
	{ "ltdot;", 6, "\xe2\x8b\x96" }, { "lthree;", 7, "\xe2\x8b\x8b" },
	{ "ltimes;", 7, "\xe2\x8b\x89" }, { "ltlarr;", 7, "\xe2\xa5\xb6" },
	{ "ltquest;", 8, "\xe2\xa9\xbb" }, { "ltrPar;", 7, "\xe2\xa6\x96" },
	{ "ltri;", 5, "\xe2\x97\x83" }, { "ltrie;", 6, "\xe2\x8a\xb4" },
	{ "ltrif;", 6, "\xe2\x97\x82" }, { "macr", 4, "\xc2\xaf" }, { "macr;", 5, "\xc2\xaf" },
	{ "mdash;", 6, "\xe2\x80\x94" }, { "micro", 5, "\xc2\xb5" },
	{ "micro;", 6, "\xc2\xb5" }, { "midast;", 7, "*" }, { "middot", 6, "\xc2\xb7" },
	{ "middot;", 7, "\xc2\xb7" }, { "minus;", 6, "\xe2\x88\x92" },
	{ "mldr;", 5, "\xe2\x80\xa6" }, { "mu;", 3, "\xce\xbc" }, { "nbsp", 4, "\xc2\xa0" },
	{ "nbsp;", 5, "\xc2\xa0" }, { "ndash;", 6, "\xe2\x80\x93" },
	{ "ne;", 3, "\xe2\x89\xa0" }, { "nldr;", 5, "\xe2\x80\xa5" }, { "not", 3, "\xc2\xac" },
	{ "not;", 4, "\xc2\xac" }, { "notin;", 6, "\xe2\x88\x89" },
	{ "notinE;", 7, "\xe2\x8b\xb9\xcc\xb8" }, { "notindot;", 9, "\xe2\x8b\xb5\xcc\xb8" },
	{ "notinva;", 8, "\xe2\x88\x89" }, { "notinvb;", 8, "\xe2\x8b\xb7" },
	{ "notinvc;", 8, "\xe2\x8b\xb6" }, { "notni;", 6, "\xe2\x88\x8c" },
	{ "notniva;", 8, "\xe2\x88\x8c" }, { "notnivb;", 8, "\xe2\x8b\xbe" },
	{ "notnivc;", 8, "\xe2\x8b\xbd" }, { "ntilde", 6, "\xc3\xb1" },
	{ "ntilde;", 7, "\xc3\xb1" }, { "nu;", 3, "\xce\xbd" }, { "num;", 4, "#" },
	{ "numsp;", 6, "\xe2\x80\x87" }, { "oacute", 6, "\xc3\xb3" },
	{ "oacute;", 7, "\xc3\xb3" }, { "ocirc", 5, "\xc3\xb4" }, { "ocirc;", 6, "\xc3\xb4" },
	{ "oelig;", 6, "\xc5\x93" }, { "ograve", 6, "\xc3\xb2" }, { "ograve;", 7, "\xc3\xb2" },
	{ "ohm;", 4, "\xce\xa9" }, { "omega;", 6, "\xcf\x89" }, { "omicron;", 8, "\xce\xbf" },
	{ "ordf", 4, "\xc2\xaa" }, { "ordf;", 5, "\xc2\xaa" }, { "ordm", 4, "\xc2\xba" },
	{ "ordm;", 5, "\xc2\xba" }, { "oslash", 6, "\xc3\xb8" }, { "oslash;", 7, "\xc3\xb8" },
	{ "otilde", 6, "\xc3\xb5" }, { "otilde;", 7, "\xc3\xb5" }, { "ouml", 4, "\xc3\xb6" },
	{ "ouml;", 5, "\xc3\xb6" }, { "para", 4, "\xc2\xb6" }, { "para;", 5, "\xc2\xb6" },
	{ "parallel;", 9, "\xe2\x88\xa5" }, { "percnt;", 7, "%" }, { "period;", 7, "." },
	{ "permil;", 7, "\xe2\x80\xb0" }, { "pertenk;", 8, "\xe2\x80\xb1" },
	{ "phi;", 4, "\xcf\x86" }, { "pi;", 3, "\xcf\x80" }, { "piv;", 4, "\xcf\x96" },
	{ "plus;", 5, "+" }, { "plusmn", 6, "\xc2\xb1" }, { "plusmn;", 7, "\xc2\xb1" },
	{ "pm;", 3, "\xc2\xb1" }, { "pound", 5, "\xc2\xa3" }, { "pound;", 6, "\xc2\xa3" },
	{ "prime;", 6, "\xe2\x80\xb2" }, { "psi;", 4, "\xcf\x88" },
	{ "puncsp;", 7, "\xe2\x80\x88" }, { "quest;", 6, "?" }, { "quot", 4, "\x22" },
	{ "quot;", 5, "\x22" }, { "raquo", 5, "\xc2\xbb" }, { "raquo;", 6, "\xc2\xbb" },
	{ "rarr;", 5, "\xe2\x86\x92" }, { "rbrace;", 7, "}" }, { "rbrack;", 7, "]" },
	{ "rcub;", 5, "}" }, { "rdquo;", 6, "\xe2\x80\x9d" }, { "rdquor;", 7, "\xe2\x80\x9d" },
	{ "reg", 3, "\xc2\xae" }, { "reg;", 4, "\xc2\xae" }, { "rho;", 4, "\xcf\x81" },
	{ "rightarrow;", 11, "\xe2\x86\x92" }, { "rlm;", 4, "\xe2\x80\x8f" },
	{ "rpar;", 5, ")" }, { "rsaquo;", 7, "\xe2\x80\xba" }, { "rsqb;", 5, "]" },
	{ "rsquo;", 6, "\xe2\x80\x99" }, { "rsquor;", 7, "\xe2\x80\x99" },
	{ "sbquo;", 6, "\xe2\x80\x9a" }, { "scaron;", 7, "\xc5\xa1" },
	{ "sect", 4, "\xc2\xa7" }, { "sect;", 5, "\xc2\xa7" }, { "semi;", 5, ";" },
	{ "shy", 3, "\xc2\xad" }, { "shy;", 4, "\xc2\xad" }, { "sigma;", 6, "\xcf\x83" },
	{ "sigmaf;", 7, "\xcf\x82" }, { "sigmav;", 7, "\xcf\x82" },
	{ "slarr;", 6, "\xe2\x86\x90" }, { "sol;", 4, "/" }, { "srarr;", 6, "\xe2\x86\x92" },
	{ "strns;", 6, "\xc2\xaf" }, { "sup1", 4, "\xc2\xb9" }, { "sup1;", 5, "\xc2\xb9" },
	{ "sup2", 4, "\xc2\xb2" }, { "sup2;", 5, "\xc2\xb2" }, { "sup3", 4, "\xc2\xb3" },
	{ "sup3;", 5, "\xc2\xb3" }, { "szlig", 5, "\xc3\x9f" }, { "szlig;", 6, "\xc3\x9f" },
	{ "tau;", 4, "\xcf\x84" }, { "theta;", 6, "\xce\xb8" }, { "thetasym;", 9, "\xcf\x91" },
	{ "thetav;", 7, "\xcf\x91" }, { "thickapprox;", 12, "\xe2\x89\x88" },
	{ "thinsp;", 7, "\xe2\x80\x89" }, { "thkap;", 6, "\xe2\x89\x88" },
	{ "thorn", 5, "\xc3\xbe" }, { "thorn;", 6, "\xc3\xbe" }, { "tilde;", 6, "\xcb\x9c" },
	{ "times", 5, "\xc3\x97" }, { "times;", 6, "\xc3\x97" },
	{ "timesb;", 7, "\xe2\x8a\xa0" }, { "timesbar;", 9, "\xe2\xa8\xb1" },
	{ "timesd;", 7, "\xe2\xa8\xb0" }, { "tprime;", 7, "\xe2\x80\xb4" },
	{ "trade;", 6, "\xe2\x84\xa2" }, { "uacute", 6, "\xc3\xba" },
	{ "uacute;", 7, "\xc3\xba" }, { "uarr;", 5, "\xe2\x86\x91" },
	{ "ucirc", 5, "\xc3\xbb" }, { "ucirc;", 6, "\xc3\xbb" }, { "ugrave", 6, "\xc3\xb9" },
	{ "ugrave;", 7, "\xc3\xb9" }, { "uml", 3, "\xc2\xa8" }, { "uml;", 4, "\xc2\xa8" },
	{ "uparrow;", 8, "\xe2\x86\x91" }, { "upsi;", 5, "\xcf\x85" },
	{ "upsih;", 6, "\xcf\x92" }, { "upsilon;", 8, "\xcf\x85" }, { "uuml", 4, "\xc3\xbc" },
	{ "uuml;", 5, "\xc3\xbc" }, { "varpi;", 6, "\xcf\x96" }, { "varsigma;", 9, "\xcf\x82" },
	{ "vartheta;", 9, "\xcf\x91" }, { "verbar;", 7, "|" }, { "vert;", 5, "|" },
	{ "xi;", 3, "\xce\xbe" }, { "yacute", 6, "\xc3\xbd" }, { "yacute;", 7, "\xc3\xbd" },
	{ "yen", 3, "\xc2\xa5" }, { "yen;", 4, "\xc2\xa5" }, { "yuml", 4, "\xc3\xbf" },
	{ "yuml;", 5, "\xc3\xbf" }, { "zeta;", 5, "\xce\xb6" }, { "zwj;", 4, "\xe2\x80\x8d" },
	{ "zwnj;", 5, "\xe2\x80\x8c" },
};

/* windows-1252 for numeric references 0x80-0x9f (0: keep) */
static const uint16_t cp1252[32] = {
	0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030,
	0x0160, 0x2039, 0x0152, 0, 0x017d, 0, 0, 0x2018, 0x2019, 0x201c, 0x201d,
	0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e,
	0x0178,
};

/* sRGB component to linear light, for relative luminance */
static const float srgb_lin[256] = {
	0.000000f, 0.000304f, 0.000607f, 0.000911f, 0.001214f, 0.001518f, 0.001821f, 0.002125f,
	0.002428f, 0.002732f, 0.003035f, 0.003347f, 0.003677f, 0.004025f, 0.004391f, 0.004777f,
	0.005182f, 0.005605f, 0.006049f, 0.006512f, 0.006995f, 0.007499f, 0.008023f, 0.008568f,
	0.009134f, 0.009721f, 0.010330f, 0.010960f, 0.011612f, 0.012286f, 0.012983f, 0.013702f,
	0.014444f, 0.015209f, 0.015996f, 0.016807f, 0.017642f, 0.018500f, 0.019382f, 0.020289f,
	0.021219f, 0.022174f, 0.023153f, 0.024158f, 0.025187f, 0.026241f, 0.027321f, 0.028426f,
	0.029557f, 0.030713f, 0.031896f, 0.033105f, 0.034340f, 0.035601f, 0.036889f, 0.038204f,
	0.039546f, 0.040915f, 0.042311f, 0.043735f, 0.045186f, 0.046665f, 0.048172f, 0.049707f,
	0.051269f, 0.052861f, 0.054480f, 0.056128f, 0.057805f, 0.059511f, 0.061246f, 0.063010f,
	0.064803f, 0.066626f, 0.068478f, 0.070360f, 0.072272f, 0.074214f, 0.076185f, 0.078187f,
	0.080220f, 0.082283f, 0.084376f, 0.086500f, 0.088656f, 0.090842f, 0.093059f, 0.095307f,
	0.097587f, 0.099899f, 0.102242f, 0.104616f, 0.107023f, 0.109462f, 0.111932f, 0.114435f,
	0.116971f, 0.119538f, 0.122139f, 0.124772f, 0.127438f, 0.130136f, 0.132868f, 0.135633f,
	0.138432f, 0.141263f, 0.144128f, 0.147027f, 0.149960f, 0.152926f, 0.155926f, 0.158961f,
	0.162029f, 0.165132f, 0.168269f, 0.171441f, 0.174647f, 0.177888f, 0.181164f, 0.184475f,
	0.187821f, 0.191202f, 0.194618f, 0.198069f, 0.201556f, 0.205079f, 0.208637f, 0.212231f,
	0.215861f, 0.219526f, 0.223228f, 0.226966f, 0.230740f, 0.234551f, 0.238398f, 0.242281f,
	0.246201f, 0.250158f, 0.254152f, 0.258183f, 0.262251f, 0.266356f, 0.270498f, 0.274677f,
	0.278894f, 0.283149f, 0.287441f, 0.291771f, 0.296138f, 0.300544f, 0.304987f, 0.309469f,
	0.313989f, 0.318547f, 0.323143f, 0.327778f, 0.332452f, 0.337164f, 0.341914f, 0.346704f,
	0.351533f, 0.356400f, 0.361307f, 0.366253f, 0.371238f, 0.376262f, 0.381326f, 0.386429f,
	0.391572f, 0.396755f, 0.401978f, 0.407240f, 0.412543f, 0.417885f, 0.423268f, 0.428690f,
	0.434154f, 0.439657f, 0.445201f, 0.450786f, 0.456411f, 0.462077f, 0.467784f, 0.473531f,
	0.479320f, 0.485150f, 0.491021f, 0.496933f, 0.502886f, 0.508881f, 0.514918f, 0.520996f,
	0.527115f, 0.533276f, 0.539479f, 0.545724f, 0.552011f, 0.558340f, 0.564712f, 0.571125f,
	0.577580f, 0.584078f, 0.590619f, 0.597202f, 0.603827f, 0.610496f, 0.617207f, 0.623960f,
	0.630757f, 0.637597f, 0.644480f, 0.651406f, 0.658375f, 0.665387f, 0.672443f, 0.679542f,
	0.686685f, 0.693872f, 0.701102f, 0.708376f, 0.715694f, 0.723055f, 0.730461f, 0.737910f,
	0.745404f, 0.752942f, 0.760525f, 0.768151f, 0.775822f, 0.783538f, 0.791298f, 0.799103f,
	0.806952f, 0.814847f, 0.822786f, 0.830770f, 0.838799f, 0.846873f, 0.854993f, 0.863157f,
	0.871367f, 0.879622f, 0.887923f, 0.896269f, 0.904661f, 0.913099f, 0.921582f, 0.930111f,
	0.938686f, 0.947307f, 0.955973f, 0.964686f, 0.973445f, 0.982251f, 0.991102f, 1.000000f,
};

/* the 148 CSS named colours */
static const struct named_color {
	const char *name;
	uint32_t rgb;
} named_colors[] = {
	{ "aliceblue", 0xf0f8ff }, { "antiquewhite", 0xfaebd7 }, { "aqua", 0x00ffff },
	{ "aquamarine", 0x7fffd4 }, { "azure", 0xf0ffff }, { "beige", 0xf5f5dc },
	{ "bisque", 0xffe4c4 }, { "black", 0x000000 }, { "blanchedalmond", 0xffebcd },
	{ "blue", 0x0000ff }, { "blueviolet", 0x8a2be2 }, { "brown", 0xa52a2a },
	{ "burlywood", 0xdeb887 }, { "cadetblue", 0x5f9ea0 }, { "chartreuse", 0x7fff00 },
	{ "chocolate", 0xd2691e }, { "coral", 0xff7f50 }, { "cornflowerblue", 0x6495ed },
	{ "cornsilk", 0xfff8dc }, { "crimson", 0xdc143c }, { "cyan", 0x00ffff },
	{ "darkblue", 0x00008b }, { "darkcyan", 0x008b8b }, { "darkgoldenrod", 0xb8860b },
	{ "darkgray", 0xa9a9a9 }, { "darkgreen", 0x006400 }, { "darkgrey", 0xa9a9a9 },
	{ "darkkhaki", 0xbdb76b }, { "darkmagenta", 0x8b008b },
	{ "darkolivegreen", 0x556b2f }, { "darkorange", 0xff8c00 },
	{ "darkorchid", 0x9932cc }, { "darkred", 0x8b0000 }, { "darksalmon", 0xe9967a },
	{ "darkseagreen", 0x8fbc8f }, { "darkslateblue", 0x483d8b },
	{ "darkslategray", 0x2f4f4f }, { "darkslategrey", 0x2f4f4f },
	{ "darkturquoise", 0x00ced1 }, { "darkviolet", 0x9400d3 }, { "deeppink", 0xff1493 },
	{ "deepskyblue", 0x00bfff }, { "dimgray", 0x696969 }, { "dimgrey", 0x696969 },
	{ "dodgerblue", 0x1e90ff }, { "firebrick", 0xb22222 }, { "floralwhite", 0xfffaf0 },
	{ "forestgreen", 0x228b22 }, { "fuchsia", 0xff00ff }, { "gainsboro", 0xdcdcdc },
	{ "ghostwhite", 0xf8f8ff }, { "gold", 0xffd700 }, { "goldenrod", 0xdaa520 },
	{ "gray", 0x808080 }, { "green", 0x008000 }, { "greenyellow", 0xadff2f },
	{ "grey", 0x808080 }, { "honeydew", 0xf0fff0 }, { "hotpink", 0xff69b4 },
	{ "indianred", 0xcd5c5c }, { "indigo", 0x4b0082 }, { "ivory", 0xfffff0 },
	{ "khaki", 0xf0e68c }, { "lavender", 0xe6e6fa }, { "lavenderblush", 0xfff0f5 },
	{ "lawngreen", 0x7cfc00 }, { "lemonchiffon", 0xfffacd }, { "lightblue", 0xadd8e6 },
	{ "lightcoral", 0xf08080 }, { "lightcyan", 0xe0ffff },
	{ "lightgoldenrodyellow", 0xfafad2 }, { "lightgray", 0xd3d3d3 },
	{ "lightgreen", 0x90ee90 }, { "lightgrey", 0xd3d3d3 }, { "lightpink", 0xffb6c1 },
	{ "lightsalmon", 0xffa07a }, { "lightseagreen", 0x20b2aa },
	{ "lightskyblue", 0x87cefa }, { "lightslategray", 0x778899 },
	{ "lightslategrey", 0x778899 }, { "lightsteelblue", 0xb0c4de },
	{ "lightyellow", 0xffffe0 }, { "lime", 0x00ff00 }, { "limegreen", 0x32cd32 },
	{ "linen", 0xfaf0e6 }, { "magenta", 0xff00ff }, { "maroon", 0x800000 },
	{ "mediumaquamarine", 0x66cdaa }, { "mediumblue", 0x0000cd },
	{ "mediumorchid", 0xba55d3 }, { "mediumpurple", 0x9370db },
	{ "mediumseagreen", 0x3cb371 }, { "mediumslateblue", 0x7b68ee },
	{ "mediumspringgreen", 0x00fa9a }, { "mediumturquoise", 0x48d1cc },
	{ "mediumvioletred", 0xc71585 }, { "midnightblue", 0x191970 },
	{ "mintcream", 0xf5fffa }, { "mistyrose", 0xffe4e1 }, { "moccasin", 0xffe4b5 },
	{ "navajowhite", 0xffdead }, { "navy", 0x000080 }, { "oldlace", 0xfdf5e6 },
	{ "olive", 0x808000 }, { "olivedrab", 0x6b8e23 }, { "orange", 0xffa500 },
	{ "orangered", 0xff4500 }, { "orchid", 0xda70d6 }, { "palegoldenrod", 0xeee8aa },
	{ "palegreen", 0x98fb98 }, { "paleturquoise", 0xafeeee },
	{ "palevioletred", 0xdb7093 }, { "papayawhip", 0xffefd5 }, { "peachpuff", 0xffdab9 },
	{ "peru", 0xcd853f }, { "pink", 0xffc0cb }, { "plum", 0xdda0dd },
	{ "powderblue", 0xb0e0e6 }, { "purple", 0x800080 }, { "rebeccapurple", 0x663399 },
	{ "red", 0xff0000 }, { "rosybrown", 0xbc8f8f }, { "royalblue", 0x4169e1 },
	{ "saddlebrown", 0x8b4513 }, { "salmon", 0xfa8072 }, { "sandybrown", 0xf4a460 },
	{ "seagreen", 0x2e8b57 }, { "seashell", 0xfff5ee }, { "sienna", 0xa0522d },
	{ "silver", 0xc0c0c0 }, { "skyblue", 0x87ceeb }, { "slateblue", 0x6a5acd },
	{ "slategray", 0x708090 }, { "slategrey", 0x708090 }, { "snow", 0xfffafa },
	{ "springgreen", 0x00ff7f }, { "steelblue", 0x4682b4 }, { "tan", 0xd2b48c },
	{ "teal", 0x008080 }, { "thistle", 0xd8bfd8 }, { "tomato", 0xff6347 },
	{ "turquoise", 0x40e0d0 }, { "violet", 0xee82ee }, { "wheat", 0xf5deb3 },
	{ "white", 0xffffff }, { "whitesmoke", 0xf5f5f5 }, { "yellow", 0xffff00 },
	{ "yellowgreen", 0x9acd32 },
};

/* ---- small helpers -------------------------------------------------------- */
static inline bool
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static inline bool
is_alpha(int c)
{
	return (unsigned)((c | 0x20) - 'a') < 26;
}

static inline bool
is_digit(int c)
{
	return (unsigned)(c - '0') < 10;
}

static inline bool
is_alnum(int c)
{
	return is_alpha(c) || is_digit(c);
}

static inline int
lower(int c)
{
	return (unsigned)(c - 'A') < 26 ? c + 32 : c;
}

static int
hexval(int c)
{
	if (is_digit(c))
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* bytes that end a tag or attribute name */
#define CC_WS    1
#define CC_END   2   /* '/' or '>' */
#define CC_EQ    4
static const uint8_t cclass[256] = {
	[' '] = CC_WS, ['\t'] = CC_WS, ['\n'] = CC_WS, ['\f'] = CC_WS, ['\r'] = CC_WS,
	['/'] = CC_END, ['>'] = CC_END, ['='] = CC_EQ,
};

#ifdef __SSE2__
/* 0xff for the bytes of v that are white space, '/' or '>' (the end of a
 * tag name; cclass CC_WS and CC_END), or '=' too (the end of an attribute
 * name) when eq: worked out, not looked up, so that the end of a name is
 * known as soon as the bytes are loaded */
static inline __m128i
sse_name_end(__m128i v, bool eq)
{
	/* '\t' to '\r' is 9 to 13: biased by 0x77, -128 to -124, signed */
	__m128i ctl = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(0x77)), _mm_set1_epi8(-123));
	__m128i m = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\v')), ctl),
	    _mm_cmpeq_epi8(v, _mm_set1_epi8(' ')));

	m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('/')),
	    _mm_cmpeq_epi8(v, _mm_set1_epi8('>'))));
	return eq ? _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('='))) : m;
}
#endif

/* past the white space at p (indentation eight bytes at a time) */
static inline const char *
skip_ws(const char *p, const char *e)
{
	while (p < e && is_ws((unsigned char)*p)) {
		if (e - p >= 8) {
			uint64_t w;
			memcpy(&w, p, 8);
			if (w == 0x2020202020202020ull) {
				p += 8;
				continue;
			}
		}
		p++;
	}
	return p;
}

/* case-insensitive: does s[0..n) equal the lower-case literal lit? */
static bool
ieq(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lit[i] == 0 || lower((unsigned char)s[i]) != lit[i])
			return false;
	return lit[i] == 0;
}

/* case-insensitive prefix test */
static bool
iprefix(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; lit[i]; i++)
		if (i >= n || lower((unsigned char)s[i]) != lit[i])
			return false;
	return true;
}

static inline void
trim(const char **s, size_t *n)
{
	const char *p = *s;
	size_t k = *n;

	while (k && is_ws((unsigned char)*p))
		p++, k--;
	while (k && is_ws((unsigned char)p[k - 1]))
		k--;
	*s = p;
	*n = k;
}

static size_t
utf8_put(char *d, uint32_t c)
{
	if (c < 0x80) {
		d[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		d[0] = (char)(0xc0 | c >> 6);
		d[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		d[0] = (char)(0xe0 | c >> 12);
		d[1] = (char)(0x80 | (c >> 6 & 0x3f));
		d[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	d[0] = (char)(0xf0 | c >> 18);
	d[1] = (char)(0x80 | (c >> 12 & 0x3f));
	d[2] = (char)(0x80 | (c >> 6 & 0x3f));
	d[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* memcpy for the short runs of text between tags: no call */
static inline void
copy_short(char *d, const char *s, size_t n)
{
	if (n >= 16) {
		memcpy(d, s, n);
	} else if (n >= 8) {
		memcpy(d, s, 8);
		memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		memcpy(d, s, 4);
		memcpy(d + n - 4, s + n - 4, 4);
	} else if (n) {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

/* memcpy of a short run, with no call: most copies here are of tens of
 * bytes, which a call to the library's memcpy takes longer to start than
 * to make (and where GCC knows a bound of the length, it makes memcpy a
 * "rep movs", slower still) */
static inline void
copy_var(char *d, const char *s, size_t n)
{
#ifdef __SSE2__
	if (n > 16) {
		size_t i;
		for (i = 0; i + 16 < n; i += 16)
			_mm_storeu_si128((__m128i *)(void *)(d + i),
			    _mm_loadu_si128((const __m128i *)(const void *)(s + i)));
		_mm_storeu_si128((__m128i *)(void *)(d + n - 16),
		    _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16)));
		return;
	}
	copy_short(d, s, n);
#else
	memcpy(d, s, n);
#endif
}

/* the first c in [p, e), or NULL: sixteen bytes at a time (with SSE2) or
 * eight for the first reach bytes, memchr for the rest */
static inline const char *
find_byte_reach(const char *p, const char *e, char c, size_t reach)
{
	const char *stop = (size_t)(e - p) > reach ? p + reach : e;
#ifdef __SSE2__
	const __m128i pat = _mm_set1_epi8(c);

	if (stop - p >= 16) {
		for (; stop - p >= 16; p += 16) {
			unsigned m = (unsigned)_mm_movemask_epi8(
			    _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)p), pat));
			if (m)
				return p + __builtin_ctz(m);
		}
		if (p < stop) {
			/* the last sixteen, less what was looked at */
			unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
			    _mm_loadu_si128((const __m128i *)(const void *)(stop - 16)), pat));
			m >>= 16 - (stop - p);
			if (m)
				return p + __builtin_ctz(m);
			p = stop;
		}
	}
#endif
	const uint64_t ones = 0x0101010101010101ull, pat8 = ones * (uint8_t)c;

	for (; stop - p >= 8; p += 8) {
		uint64_t w, m;
		memcpy(&w, p, 8);
		w ^= pat8;
		m = (w - ones) & ~w & 0x8080808080808080ull;
		if (m && HTML_LE)
			return p + (__builtin_ctzll(m) >> 3);
		if (m)
			break;
	}
	for (; p < stop; p++)
		if (*p == c)
			return p;
	return p < e ? memchr(p, c, (size_t)(e - p)) : NULL;
}

/* the first a or b in [p, e), or e: sixteen bytes at a time (with SSE2) */
static inline const char *
find_either(const char *p, const char *e, char a, char b)
{
#ifdef __SSE2__
	for (; e - p >= 16; p += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(
		    _mm_cmpeq_epi8(v, _mm_set1_epi8(a)), _mm_cmpeq_epi8(v, _mm_set1_epi8(b))));
		if (m)
			return p + __builtin_ctz(m);
	}
#endif
	while (p < e && *p != a && *p != b)
		p++;
	return p;
}

/* the runs of text between tags are mostly short */
static inline const char *
find_byte(const char *p, const char *e, char c)
{
	return find_byte_reach(p, e, c, 64);
}

/* the first c or NUL in [p, e), or NULL: as find_byte, and the long runs
 * looked through twice with memchr, which beats one pass here */
static inline const char *
find_byte_nul(const char *p, const char *e, char c, size_t reach)
{
	const char *stop = (size_t)(e - p) > reach ? p + reach : e;
#ifdef __SSE2__
	const __m128i pat = _mm_set1_epi8(c), zero = _mm_setzero_si128();

	for (; stop - p >= 16; p += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned m = (unsigned)_mm_movemask_epi8(
		    _mm_or_si128(_mm_cmpeq_epi8(v, pat), _mm_cmpeq_epi8(v, zero)));
		if (m)
			return p + __builtin_ctz(m);
	}
#endif
	const uint64_t ones = 0x0101010101010101ull, pat8 = ones * (uint8_t)c;

	for (; stop - p >= 8; p += 8) {
		uint64_t w, x, m;
		memcpy(&w, p, 8);
		x = w ^ pat8;
		m = (((w - ones) & ~w) | ((x - ones) & ~x)) & 0x8080808080808080ull;
		if (m && HTML_LE)
			return p + (__builtin_ctzll(m) >> 3);
		if (m)
			break;
	}
	for (; p < stop; p++)
		if (*p == c || *p == 0)
			return p;
	if (p == e)
		return NULL;
	const char *q = memchr(p, c, (size_t)(e - p)), *z = memchr(p, 0, (size_t)((q ? q : e) - p));
	return z ? z : q;
}

/* the first NUL in s[0..n), or NULL; text runs are mostly short */
static inline const char *
find_nul(const char *s, size_t n)
{
	return find_byte(s, s + n, 0);
}

/* length of the UTF-8 sequence at s (1 for a stray byte) */
static size_t
utf8_len(const unsigned char *s, const unsigned char *e)
{
	size_t n = *s < 0xc0 ? 1 : *s < 0xe0 ? 2 : *s < 0xf0 ? 3 : 4;

	if ((size_t)(e - s) < n)
		return 1;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 1;
	return n;
}

/* grow an array of *cap elements of size sz to hold need, at most max; false
 * when it cannot */
static bool
grow(void **p, unsigned *cap, size_t sz, unsigned need, unsigned max)
{
	unsigned n = *cap ? *cap : 16;
	void *np;

	if (need > max)
		return false;
	if (need <= *cap)
		return true;
	if (n > max)
		n = max;
	while (n < need)
		n = n > max / 2 ? max : n * 2;
	if ((np = realloc(*p, (size_t)n * sz)) == NULL)
		return false;
	*p = np;
	*cap = n;
	return true;
}

/* ---- character references ------------------------------------------------ */
/* the entities starting with each letter 'A' ... 'z': [first, end) */
static const struct { uint16_t lo, hi; } entity_letter['z' - 'A' + 1] = {
	{ 0, 17 }, { 17, 18 }, { 18, 27 }, { 27, 35 }, { 35, 47 }, { 0, 0 }, { 47, 51 },
	{ 51, 52 }, { 52, 61 }, { 0, 0 }, { 61, 62 }, { 62, 67 }, { 67, 68 }, { 68, 78 },
	{ 78, 95 }, { 95, 100 }, { 100, 102 }, { 102, 106 }, { 106, 112 }, { 112, 120 },
	{ 120, 132 }, { 132, 136 }, { 0, 0 }, { 136, 137 }, { 137, 140 }, { 140, 142 },
	{ 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 }, { 142, 167 }, { 167, 176 },
	{ 176, 194 }, { 194, 208 }, { 208, 228 }, { 228, 236 }, { 236, 254 }, { 254, 260 },
	{ 260, 274 }, { 0, 0 }, { 274, 275 }, { 275, 308 }, { 308, 319 }, { 319, 341 },
	{ 341, 361 }, { 361, 380 }, { 380, 383 }, { 383, 401 }, { 401, 423 }, { 423, 440 },
	{ 440, 455 }, { 455, 460 }, { 0, 0 }, { 460, 461 }, { 461, 467 }, { 467, 470 },
};

static const char *
entity_find(const char *n, size_t len)
{
	size_t lo, hi;

	if (len == 0 || (unsigned char)n[0] < 'A' || (unsigned char)n[0] > 'z')
		return NULL;
	lo = entity_letter[n[0] - 'A'].lo;
	hi = entity_letter[n[0] - 'A'].hi;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *k = entities[mid].name;
		size_t klen = entities[mid].len, m = len < klen ? len : klen, i;
		int c = 0;

		for (i = 1; i < m && n[i] == k[i]; i++)
			;
		if (i < m)
			c = (unsigned char)n[i] < (unsigned char)k[i] ? -1 : 1;
		else
			c = len < klen ? -1 : len > klen;
		if (c == 0)
			return entities[mid].utf8;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* the UTF-8 of an entity (a few bytes) to out, its length: no calls */
static inline size_t
entity_put(char out[8], const char *v)
{
	size_t n;

	for (n = 0; v[n]; n++)
		out[n] = v[n];
	return n;
}

/*
 * The character reference at s ('&') in text ending at e. Writes its UTF-8
 * to out and returns the bytes it takes, or 0 when '&' stands for itself.
 * attr: the attribute value rules (a legacy name followed by '=' or an
 * alphanumeric is not a reference).
 */
static size_t
charref(const char *s, const char *e, bool attr, char out[8], size_t *olen)
{
	const char *p = s + 1, *q;

	if (p < e && *p == '#') {
		bool hex = false;
		uint32_t v = 0;

		p++;
		if (p < e && (*p == 'x' || *p == 'X'))
			hex = true, p++;
		for (q = p; p < e; p++) {
			int d = hex ? hexval((unsigned char)*p) : is_digit(*p) ? *p - '0' : -1;
			if (d < 0)
				break;
			v = v * (hex ? 16 : 10) + (uint32_t)d;
			if (v > 0x10ffff)
				v = 0x110000;
		}
		if (p == q)
			return 0;
		if (p < e && *p == ';')
			p++;
		if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
			v = 0xfffd;
		else if (v >= 0x80 && v <= 0x9f && cp1252[v - 0x80])
			v = cp1252[v - 0x80];
		*olen = utf8_put(out, v);
		return (size_t)(p - s);
	}
	for (q = p; p < e && is_alnum((unsigned char)*p) && p - q < 32; p++)
		;
	size_t run = (size_t)(p - q);
	const char *v;
	if (run == 0)
		return 0;
	if (p < e && *p == ';') {
		/* the usual ones first */
		v = run == 3 && q[0] == 'a' && q[1] == 'm' && q[2] == 'p' ? "&"
		    : run == 4 && q[0] == 'n' && q[1] == 'b' && q[2] == 's' && q[3] == 'p' ? "\xc2\xa0"
		    : NULL;
		if (v != NULL) {
			*olen = v[0] == '&' ? 1 : 2;
			memcpy(out, v, *olen);
			return run + 2;
		}
	}
	if (p < e && *p == ';' && (v = entity_find(q, run + 1)) != NULL) {
		*olen = entity_put(out, v);
		return run + 2;
	}
	for (size_t l = run < 6 ? run : 6; l >= 2; l--) {
		if ((v = entity_find(q, l)) == NULL)
			continue;
		if (attr && q + l < e && (q[l] == '=' || is_alnum((unsigned char)q[l])))
			return 0;
		*olen = entity_put(out, v);
		return l + 1;
	}
	return 0;
}

/* decode an attribute value in place (decoding never lengthens it) */
static size_t
attr_decode(char *s, size_t n)
{
	char *r = (char *)find_byte(s, s + n, '&'), *w, *e = s + n;

	if (r == NULL)
		return n;
	for (w = r; r < e;) {
		char out[8];
		size_t ol, k;

		if (*r == '&' && (k = charref(r, e, true, out, &ol)) != 0) {
			memcpy(w, out, ol);
			w += ol, r += k;
		} else
			*w++ = *r++;
	}
	return (size_t)(w - s);
}

/* ---- text buffers and cooking ------------------------------------------------
 * Text goes into the buffers raw, each run of text (between two tags) led by
 * a mark: a NUL and a class byte, 1 + (reason << 1 | verbatim); a NUL of the
 * text goes in as 0x01 (controls are dropped when cooked). What a buffer
 * keeps (its first bytes, or its last ones) is so a function of the text
 * alone, not of how the input was cut into chunks. */
#define SEG_CLASS(reason, verbatim) ((uint8_t)(1 + ((reason) << 1 | (verbatim))))
#define SEG_REASON(cls) (((cls) - 1) >> 1)
#define SEG_VERBATIM(cls) (((cls) - 1) & 1)

typedef struct hbuf {
	char *p;
	size_t len, cap;
	unsigned run;      /* run of the last bytes added; 0: next add needs a mark */
} hbuf;

static void
buf_reset(hbuf *b)
{
	b->len = 0;
	b->run = 0;
}

/* start a run in b if it needs a mark; false when there is no room */
static bool
buf_mark(hbuf *b, uint8_t cls, unsigned run)
{
	size_t len = b->len;  /* a store through b->p may alias it: kept here */

	if (b->run == run && run != 0 && len)
		return true;
	if (len + 2 > b->cap)
		return false;
	b->p[len] = 0;
	b->p[len + 1] = (char)cls;
	b->len = len + 2;
	b->run = run;
	return true;
}

/* add text with no NUL in it to a buffer that keeps the first bytes */
static void
seg_head(hbuf *b, const char *s, size_t n, uint8_t cls, unsigned run)
{
	if (!buf_mark(b, cls, run))
		return;

	size_t len = b->len;

	if (n > b->cap - len)
		n = b->cap - len;
	copy_var(b->p + len, s, n);
	b->len = len + n;
}

/* add text with no NUL in it to the block ring: it keeps at least its last
 * HTML_RING_KEEP bytes */
static void
seg_ring(hbuf *b, const char *s, size_t n, uint8_t cls, unsigned run)
{
	if (n > HTML_RING - HTML_RING_KEEP - 8) {
		size_t k = n < HTML_RING_KEEP ? n : HTML_RING_KEEP;
		b->p[0] = 0;
		b->p[1] = (char)cls;
		memcpy(b->p + 2, s + n - k, k);
		b->len = k + 2;
		b->run = run;
		return;
	}
	if (b->len + n + 2 > b->cap) {
		size_t cut = b->len - HTML_RING_KEEP, m = cut;

		while (m > 0 && b->p[m - 1] != 0)
			m--;
		if (b->p[cut] == 0 || m == cut) {
			if (m == cut && cut > 0)
				cut--;
			memmove(b->p, b->p + cut, b->len - cut);
			b->len -= cut;
		} else {
			char c = m > 0 ? b->p[m] : (char)SEG_CLASS(R_NONE, 0);
			memmove(b->p + 2, b->p + cut, b->len - cut);
			b->p[0] = 0;
			b->p[1] = c;
			b->len = b->len - cut + 2;
		}
	}
	buf_mark(b, cls, run);
	copy_short(b->p + b->len, s, n);
	b->len += n;
}

typedef struct cookst {
	char *d;
	size_t len, cap;
	bool space, full;
} cookst;

static inline void
cook_put(cookst *c, const char *s, size_t n)
{
	size_t sp = c->space && c->len > 0;

	if (c->full)
		return;
	if (c->len + sp + n > c->cap) {
		size_t room = c->cap - c->len;
		/* an ASCII run may be cut anywhere; a character never */
		c->full = true;
		if ((unsigned char)s[0] >= 0x80 || room <= sp)
			return;
		n = room - sp;
	}
	if (sp)
		c->d[c->len++] = ' ';
	c->space = false;
	if (n <= 16) {
		for (size_t i = 0; i < n; i++)
			c->d[c->len + i] = s[i];
	} else
		memcpy(c->d + c->len, s, n);
	c->len += n;
}

/* one character: white space, zero-width and control characters normalised */
static void
cook_char(cookst *c, const unsigned char *s, size_t n)
{
	if (n == 1) {
		if (is_ws(s[0]))
			c->space = true;
		else if (s[0] >= 0x20 && s[0] != 0x7f)
			cook_put(c, (const char *)s, 1);
		return;
	}
	if (n == 2 && s[0] == 0xc2) {
		if (s[1] == 0xa0) {
			c->space = true;
			return;
		}
		if (s[1] == 0xad || s[1] < 0xa0)  /* soft hyphen, C1 controls */
			return;
	}
	if (n == 3 && s[0] == 0xe2 && s[1] == 0x80) {
		if (s[2] <= 0x8a || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf) {
			c->space = true;
			return;
		}
		if (s[2] <= 0x8d)  /* zero width space, non-joiner, joiner */
			return;
	}
	if (n == 3 && s[0] == 0xe2 && s[1] == 0x81) {
		if (s[2] == 0x9f) {
			c->space = true;
			return;
		}
		if (s[2] == 0xa0)  /* word joiner */
			return;
	}
	if (n == 3 && s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) {
		c->space = true;
		return;
	}
	if (n == 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf)
		return;
	cook_put(c, (const char *)s, n);
}

/* printable ASCII but '&': copied as it is when cooking */
static const uint8_t plain[256] = {
#define P8(c) [c] = 1, [c + 1] = 1, [c + 2] = 1, [c + 3] = 1, [c + 4] = 1, [c + 5] = 1, \
	[c + 6] = 1, [c + 7] = 1
	[0x21] = 1, [0x22] = 1, [0x23] = 1, [0x24] = 1, [0x25] = 1, [0x27] = 1, [0x28] = 1,
	P8(0x29), P8(0x31), P8(0x39), P8(0x41), P8(0x49), P8(0x51), P8(0x59), P8(0x61),
	P8(0x69), P8(0x71), [0x79] = 1, [0x7a] = 1, [0x7b] = 1, [0x7c] = 1, [0x7d] = 1,
	[0x7e] = 1,
#undef P8
};

/* Copy the run at p of plain bytes and of single spaces between them (what
 * cooking leaves as it is), up to lim, to *d, where as many bytes as [p, lim)
 * holds fit. Sixteen bytes at a time (and more written than copied, never
 * past that room), or eight: bits 7 of the masks mark, exactly, the bytes
 * below '!', from DEL up, '&' and ' '. */
static inline const unsigned char *
plain_copy(char **dp, const unsigned char *p, const unsigned char *lim)
{
	const uint64_t low = 0x7f7f7f7f7f7f7f7full, high = 0x8080808080808080ull;
	const uint64_t ones = 0x0101010101010101ull;
	char *d = *dp;

#ifdef __SSE2__
	while (lim - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* signed: below '!' or from 0x80 */
		unsigned stop = (unsigned)_mm_movemask_epi8(_mm_or_si128(
		    _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8('!')), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))),
		    _mm_cmpeq_epi8(v, _mm_set1_epi8('&'))));
		unsigned sp = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')));
		stop &= ~(sp & ~(stop >> 1) & 0x7fffu);
		_mm_storeu_si128((__m128i *)(void *)d, v);
		if (stop) {
			size_t k = (size_t)__builtin_ctz(stop);
			/* a space last, with a plain byte after it: it goes on
			 * (copied already), as the caller would take it */
			if (k == 15 && sp >> 15 && lim - p > 16 && plain[p[16]]) {
				d += 16;
				p += 16;
				continue;
			}
			*dp = d + k;
			return p + k;
		}
		d += 16;
		p += 16;
	}
#endif
	while (HTML_LE && lim - p >= 8) {
		uint64_t w, x, y, stop, sp;
		memcpy(&w, p, 8);
		x = w ^ (ones * '&');
		y = w ^ (ones * ' ');
		stop = ~(((w & low) + ones * (0x80 - 0x21)) | w) & high;   /* below '!' */
		stop |= (((w & low) + ones) | w) & high;                     /* DEL and up */
		stop |= ~(((x & low) + low) | x) & high;                     /* '&' */
		sp = ~(((y & low) + low) | y) & high;                        /* ' ' */
		/* a space with a plain byte after it in the word goes as it is */
		stop &= ~(sp & ~(stop >> 8) & ~(high << 56 >> 56 << 56));
		memcpy(d, &w, 8);
		if (stop) {
			size_t k = (size_t)__builtin_ctzll(stop) >> 3;
			*dp = d + k;
			return p + k;
		}
		d += 8;
		p += 8;
	}
	while (p < lim && plain[*p])
		*d++ = (char)*p++;
	*dp = d;
	return p;
}

/*
 * Cook raw text: decode character references, drop what is not shown unless
 * all, collapse white space, trim. cls: the class of bytes before the first
 * mark. Stops when dst (cap bytes, plus a NUL) is full; *full says so.
 */
#define COOK_TEXT SEG_CLASS(R_NONE, 0)
#define COOK_PLAIN SEG_CLASS(R_NONE, 1)   /* already decoded */
static size_t
cook(const char *src, size_t n, bool all, unsigned cls, char *dst, size_t cap, bool *full)
{
	cookst c = { dst, 0, cap, false, false };
	const unsigned char *p = (const unsigned char *)src, *e = p + n;

	while (p < e && !c.full) {
		if (*p == 0) {
			if (p + 1 < e)
				cls = p[1];
			p += 2;
			continue;
		}
		if (!all && SEG_REASON(cls) != R_NONE) {
			const unsigned char *m = memchr(p, 0, (size_t)(e - p));
			p = m ? m : e;
			continue;
		}
		if (c.cap - c.len > 1 && (plain[*p] || is_ws(*p))) {
			/* words and the white space between them, while what is
			 * written (at most one byte per byte read, and a pending
			 * space) cannot reach the end of dst */
			size_t k = (size_t)(e - p), room = c.cap - c.len - 1;
			const unsigned char *lim = p + (k < room ? k : room);
			char *d = c.d + c.len;
			bool sp = c.space;

			while (p < lim) {
				if (plain[*p]) {
					if (sp && d > c.d)
						*d++ = ' ';
					sp = false;
					p = plain_copy(&d, p, lim);
				} else if (*p == ' ' && p + 1 < e && plain[p[1]]) {
					sp = true;  /* the one space between two words */
					p++;
				} else if (is_ws(*p)) {
					for (p++; e - p >= 8; p += 8) {
						uint64_t w;
						memcpy(&w, p, 8);
						if (w != 0x2020202020202020ull && w != 0x0909090909090909ull)
							break;
					}
					while (p < e && is_ws(*p))
						p++;
					sp = true;
				} else
					break;
			}
			c.len = (size_t)(d - c.d);
			c.space = sp;
			continue;
		}
		const unsigned char *q = p;
		while (q < e && plain[*q])
			q++;
		if (q > p) {
			cook_put(&c, (const char *)p, (size_t)(q - p));
			p = q;
			continue;
		}
		if (is_ws(*p)) {
			/* indentation: eight spaces (or tabs) at a time */
			for (p++; e - p >= 8; p += 8) {
				uint64_t w;
				memcpy(&w, p, 8);
				if (w != 0x2020202020202020ull && w != 0x0909090909090909ull)
					break;
			}
			while (p < e && is_ws(*p))
				p++;
			c.space = true;
			continue;
		}
		if (*p == '&' && !SEG_VERBATIM(cls)) {
			char out[8];
			size_t ol, k = charref((const char *)p, (const char *)e, false, out, &ol);
			if (k) {
				const unsigned char *o = (const unsigned char *)out, *oe = o + ol;
				while (o < oe) {
					size_t l = utf8_len(o, oe);
					cook_char(&c, o, l);
					o += l;
				}
				p += k;
				continue;
			}
		}
		size_t l = utf8_len(p, e);
		cook_char(&c, p, l);
		p += l;
	}
	dst[c.len] = 0;
	if (full)
		*full = c.full;
	return c.len;
}

/* cook into tmp, keep the last max bytes (whole characters) in dst */
static size_t
cook_tail(const char *src, size_t n, bool all, char *tmp, size_t tmpcap, char *dst, size_t max)
{
	size_t len = cook(src, n, all, COOK_TEXT, tmp, tmpcap, NULL), off = 0;

	if (len > max) {
		off = len - max;
		while (off < len && ((unsigned char)tmp[off] & 0xc0) == 0x80)
			off++;
		if (off < len && tmp[off] == ' ')
			off++;
	}
	memcpy(dst, tmp + off, len - off);
	dst[len - off] = 0;
	return len - off;
}

/* one past the last NUL in s[0..n), or 0 */
static size_t
last_nul(const char *s, size_t n)
{
#ifdef __SSE2__
	const __m128i zero = _mm_setzero_si128();

	for (; n >= 16; n -= 16) {
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
		    _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16)), zero));
		if (m)
			return n - 16 + (size_t)(31 - __builtin_clz(m)) + 1;
	}
#endif
	for (; n > 0 && s[n - 1] != 0; n--)
		;
	return n;
}

/* The last `window` bytes of a buffer, starting at a mark or with the class
 * of the run they start in (*cls0, else 0); returns the start. */
static size_t
window_start(const hbuf *b, size_t window, uint8_t *cls0)
{
	size_t ws, m;

	*cls0 = 0;
	if (b->len <= window)
		return 0;
	ws = b->len - window;
	if (b->p[ws] == 0)
		return ws;
	if (b->p[ws - 1] == 0)
		return ws - 1;
	m = last_nul(b->p, ws);
	*cls0 = m > 0 ? (uint8_t)b->p[m] : SEG_CLASS(R_NONE, 0);
	return ws;
}

/* ---- colours and CSS values ------------------------------------------------ */
static bool
css_number(const char **pp, const char *e, float *out)
{
	const char *p = *pp;
	float v = 0, scale = 1;
	bool neg = false, digits = false;

	if (p < e && (*p == '-' || *p == '+'))
		neg = *p++ == '-';
	for (; p < e && is_digit(*p); p++)
		v = v * 10 + (float)(*p - '0'), digits = true;
	if (p < e && *p == '.') {
		for (p++; p < e && is_digit(*p); p++)
			scale /= 10, v += (float)(*p - '0') * scale, digits = true;
	}
	if (!digits)
		return false;
	if (p + 1 < e && (*p == 'e' || *p == 'E') && (is_digit(p[1]) || p[1] == '-')) {
		/* exponents: only their sign matters here */
		bool eneg = *++p == '-';
		if (eneg)
			p++;
		int x = 0;
		for (; p < e && is_digit(*p); p++)
			x = x < 40 ? x * 10 + (*p - '0') : 40;
		while (x-- > 0)
			v = eneg ? v / 10 : (v < 1e30f ? v * 10 : v);
	}
	*out = neg ? -v : v;
	*pp = p;
	return true;
}

static uint8_t
clamp255(float v)
{
	return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5f);
}

static float
hue_rgb(float m1, float m2, float h)
{
	if (h < 0)
		h += 1;
	if (h > 1)
		h -= 1;
	if (h * 6 < 1)
		return m1 + (m2 - m1) * h * 6;
	if (h * 2 < 1)
		return m2;
	if (h * 3 < 2)
		return m1 + (m2 - m1) * (2.0f / 3 - h) * 6;
	return m1;
}

/* rgb()/rgba()/hsl()/hsla() arguments */
static bool
css_color_fn(const char *p, const char *e, bool hsl, uint32_t *argb)
{
	float v[4] = { 0, 0, 0, 1 };
	bool pct[4] = { false, false, false, false };
	int n = 0;

	while (p < e && n < 4) {
		while (p < e && (is_ws(*p) || *p == ',' || *p == '/'))
			p++;
		if (p >= e || *p == ')')
			break;
		if (!css_number(&p, e, &v[n]))
			return false;
		if (p < e && *p == '%')
			pct[n] = true, p++;
		while (p < e && is_alpha(*p))  /* deg */
			p++;
		n++;
	}
	if (n < 3)
		return false;
	float a = pct[3] ? v[3] / 100 : v[3];
	a = a < 0 ? 0 : a > 1 ? 1 : a;
	float r, g, b;
	if (hsl) {
		float h = v[0] / 360, s = v[1] / 100, l = v[2] / 100;
		h -= (float)(int)h;
		if (h < 0)
			h += 1;
		s = s < 0 ? 0 : s > 1 ? 1 : s;
		l = l < 0 ? 0 : l > 1 ? 1 : l;
		float m2 = l <= 0.5f ? l * (s + 1) : l + s - l * s, m1 = l * 2 - m2;
		r = hue_rgb(m1, m2, h + 1.0f / 3) * 255;
		g = hue_rgb(m1, m2, h) * 255;
		b = hue_rgb(m1, m2, h - 1.0f / 3) * 255;
	} else {
		r = pct[0] ? v[0] * 2.55f : v[0];
		g = pct[1] ? v[1] * 2.55f : v[1];
		b = pct[2] ? v[2] * 2.55f : v[2];
	}
	*argb = (uint32_t)clamp255(a * 255) << 24 | (uint32_t)clamp255(r) << 16 |
	    (uint32_t)clamp255(g) << 8 | clamp255(b);
	return true;
}

/* A CSS colour (or, with legacy, a bare hex string as bgcolor takes it). */
static bool
css_color(const char *s, size_t n, bool legacy, uint32_t *argb)
{
	char name[24];
	size_t i;

	trim(&s, &n);
	if (n == 0)
		return false;
	if (s[0] == '#' || (legacy && (n == 6 || n == 3))) {
		const char *h = s[0] == '#' ? s + 1 : s;
		size_t hl = (size_t)(s + n - h);
		uint32_t d[8];
		for (i = 0; i < hl && i < 8; i++) {
			int hv = hexval((unsigned char)h[i]);
			if (hv < 0)
				break;
			d[i] = (uint32_t)hv;
		}
		if (i != hl)
			goto named;
		switch (hl) {
		case 3:
		case 4:
			*argb = (hl == 4 ? d[3] * 17 : 255) << 24 | d[0] * 17 << 16 | d[1] * 17 << 8 |
			    d[2] * 17;
			return true;
		case 6:
		case 8:
			*argb = (hl == 8 ? d[6] << 4 | d[7] : 255) << 24 | (d[0] << 4 | d[1]) << 16 |
			    (d[2] << 4 | d[3]) << 8 | (d[4] << 4 | d[5]);
			return true;
		}
		if (s[0] == '#')
			return false;
	}
	if (iprefix(s, n, "rgb(") || iprefix(s, n, "rgba("))
		return css_color_fn((const char *)memchr(s, '(', n) + 1, s + n, false, argb);
	if (iprefix(s, n, "hsl(") || iprefix(s, n, "hsla("))
		return css_color_fn((const char *)memchr(s, '(', n) + 1, s + n, true, argb);
named:
	if (n >= sizeof(name))
		return false;
	for (i = 0; i < n; i++)
		name[i] = (char)lower((unsigned char)s[i]);
	name[n] = 0;
	if (strcmp(name, "transparent") == 0) {
		*argb = 0;
		return true;
	}
	size_t lo = 0, hi = sizeof(named_colors) / sizeof(named_colors[0]);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, named_colors[mid].name);
		if (c == 0) {
			*argb = 0xff000000u | named_colors[mid].rgb;
			return true;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

enum { L_BAD, L_PX, L_EM, L_REM, L_PCT, L_OTHER };

/* A length: px (absolute units converted), em (ex, ch as half an em), rem,
 * percent, or another unit. A bare number is taken as px (quirks mode). */
static int
css_length(const char *s, size_t n, float *v)
{
	const char *p = s, *e = s + n;

	if (!css_number(&p, e, v))
		return L_BAD;
	size_t u = (size_t)(e - p);
	if (u == 0)
		return L_PX;
	if (u == 1)
		return *p == '%' ? L_PCT : is_alpha(*p) ? L_OTHER : L_BAD;
	int a = lower((unsigned char)p[0]), b = lower((unsigned char)p[1]);
	if (u == 3)
		return a == 'r' && b == 'e' && lower((unsigned char)p[2]) == 'm' ? L_REM
		    : is_alpha(a) ? L_OTHER : L_BAD;
	if (u != 2)
		return is_alpha(a) ? L_OTHER : L_BAD;
	switch (a << 8 | b) {
	case 'p' << 8 | 'x':
		return L_PX;
	case 'p' << 8 | 't':
		*v = *v * 4 / 3;
		return L_PX;
	case 'p' << 8 | 'c':
		*v *= 16;
		return L_PX;
	case 'i' << 8 | 'n':
		*v *= 96;
		return L_PX;
	case 'c' << 8 | 'm':
		*v = *v * 96 / 2.54f;
		return L_PX;
	case 'm' << 8 | 'm':
		*v = *v * 96 / 25.4f;
		return L_PX;
	case 'e' << 8 | 'm':
		return L_EM;
	case 'e' << 8 | 'x':
	case 'c' << 8 | 'h':
		*v /= 2;
		return L_EM;
	}
	return is_alpha(a) ? L_OTHER : L_BAD;
}

/* ---- declarations ---------------------------------------------------------- */
enum {
	P_DISPLAY, P_VISIBILITY, P_OPACITY, P_FONT_SIZE, P_FONT, P_HEIGHT, P_MAX_HEIGHT,
	P_WIDTH, P_MAX_WIDTH, P_OVERFLOW, P_OVERFLOW_X, P_OVERFLOW_Y, P_MSO_HIDE,
	P_POSITION, P_LEFT, P_TOP, P_TEXT_INDENT, P_COLOR, P_BACKGROUND_COLOR,
	P_BACKGROUND, P_BACKGROUND_IMAGE, P_CLIP, P_CLIP_PATH, P_TRANSFORM, P_SCALE
};

enum { D_NONE = 1, D_HIDDENATTR, D_INLINE, D_BLOCK };
enum { F_PX, F_FACTOR };
#define SZ_NONZERO (-2.0f)     /* a size that is not zero, in no known px */

typedef struct css_decl {
	uint8_t prop;
	uint8_t imp;      /* !important */
	uint8_t kw;       /* keyword or unit kind, per property */
	float v;
	uint32_t color;
} css_decl;

static int
css_prop(const char *n, size_t len)
{
	int c0;

	if (len < 3)
		return -1;
	c0 = lower((unsigned char)n[0]);
#define PROP(lit, id) if (c0 == lit[0] && ieq(n, len, lit)) return id
	switch (len) {
	case 3:
		PROP("top", P_TOP);
		break;
	case 4:
		PROP("font", P_FONT);
		PROP("left", P_LEFT);
		PROP("clip", P_CLIP);
		break;
	case 5:
		PROP("color", P_COLOR);
		PROP("width", P_WIDTH);
		PROP("scale", P_SCALE);
		break;
	case 6:
		PROP("height", P_HEIGHT);
		break;
	case 7:
		PROP("display", P_DISPLAY);
		PROP("opacity", P_OPACITY);
		break;
	case 8:
		PROP("overflow", P_OVERFLOW);
		PROP("position", P_POSITION);
		PROP("mso-hide", P_MSO_HIDE);
		break;
	case 9:
		PROP("font-size", P_FONT_SIZE);
		PROP("max-width", P_MAX_WIDTH);
		PROP("clip-path", P_CLIP_PATH);
		PROP("transform", P_TRANSFORM);
		break;
	case 10:
		PROP("visibility", P_VISIBILITY);
		PROP("background", P_BACKGROUND);
		PROP("max-height", P_MAX_HEIGHT);
		PROP("overflow-x", P_OVERFLOW_X);
		PROP("overflow-y", P_OVERFLOW_Y);
		break;
	case 11:
		PROP("text-indent", P_TEXT_INDENT);
		break;
	case 16:
		PROP("background-color", P_BACKGROUND_COLOR);
		PROP("background-image", P_BACKGROUND_IMAGE);
		break;
	}
#undef PROP
	return -1;
}

static const struct {
	const char *kw;
	float px;
} font_keywords[] = {
	{ "xx-small", 9 }, { "x-small", 10 }, { "small", 13 }, { "medium", 16 },
	{ "large", 18 }, { "x-large", 24 }, { "xx-large", 32 }, { "xxx-large", 48 },
};

/* a font size value: px or a factor of the parent's size */
static bool
font_size_value(const char *v, size_t n, css_decl *d)
{
	float x;
	int u;

	if (n && is_alpha(v[0])) {
		for (size_t i = 0; i < sizeof(font_keywords) / sizeof(font_keywords[0]); i++)
			if (ieq(v, n, font_keywords[i].kw)) {
				d->kw = F_PX;
				d->v = font_keywords[i].px;
				return true;
			}
		if (ieq(v, n, "smaller") || ieq(v, n, "larger")) {
			d->kw = F_FACTOR;
			d->v = v[0] == 's' || v[0] == 'S' ? 1 / 1.2f : 1.2f;
			return true;
		}
		return false;
	}
	switch (u = css_length(v, n, &x)) {
	case L_PX:
	case L_REM:
		d->kw = F_PX;
		d->v = u == L_REM ? x * 16 : x;
		return x >= 0;
	case L_EM:
	case L_PCT:
		d->kw = F_FACTOR;
		d->v = u == L_PCT ? x / 100 : x;
		return x >= 0;
	}
	return false;
}

/* split a value into white space separated tokens, parentheses kept whole */
static bool
next_token(const char **pp, const char *e, const char **t, size_t *tn)
{
	const char *p = *pp;
	int depth = 0;

	while (p < e && (is_ws(*p) || *p == ','))
		p++;
	if (p >= e)
		return false;
	*t = p;
	for (; p < e; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
		else if (depth == 0 && (is_ws(*p) || *p == ',' || *p == '/'))
			break;
	}
	*tn = (size_t)(p - *t);
	if (*tn == 0)  /* a lone '/' */
		*tn = 1, p++;
	*pp = p;
	return true;
}

/* The arguments of a call of the function name (lower case, with its '(')
 * at v, or NULL; *an: their length, up to ')' or the end. */
static const char *
css_fn_args(const char *v, size_t n, const char *name, size_t *an)
{
	size_t k = strlen(name);
	const char *close;

	if (n < k || !iprefix(v, n, name))
		return NULL;
	close = memchr(v + k, ')', n - k);
	*an = (size_t)((close ? close : v + n) - (v + k));
	return v + k;
}

/* beside the L_* units of css_length: a zero (of any unit), auto */
enum { U_ZERO = 16, U_AUTO };

/* Up to max lengths (or auto) separated by white space or commas: their
 * values in px (an em taken as 16px) or percent (unit[i] L_PCT); returns
 * how many, or -1 for one this cannot size. Stops at a keyword other than
 * auto (as "round" in inset()). */
static int
css_lengths(const char *p, const char *e, float *v, int *unit, int max)
{
	const char *t;
	size_t tn;
	int k = 0;

	while (k < max && next_token(&p, e, &t, &tn)) {
		if (ieq(t, tn, "auto")) {
			unit[k] = U_AUTO;
			v[k++] = 0;
			continue;
		}
		if (is_alpha(*t))
			break;
		switch (unit[k] = css_length(t, tn, &v[k])) {
		case L_PX:
		case L_PCT:
			break;
		case L_EM:
		case L_REM:
			v[k] *= 16;
			unit[k] = L_PX;
			break;
		default:
			return -1;
		}
		if (v[k] == 0)
			unit[k] = U_ZERO;  /* zero: px and percent alike */
		k++;
	}
	return k;
}

/* clip: rect(top, right, bottom, left) with no area */
static bool
clip_empty(const char *v, size_t n)
{
	size_t an;
	const char *a = css_fn_args(v, n, "rect(", &an);
	float x[4];
	int u[4];

	if (a == NULL || css_lengths(a, a + an, x, u, 4) != 4)
		return false;
	for (int i = 0; i < 4; i++)
		if (u[i] == L_PCT)
			return false;
	float top = u[0] == U_AUTO ? 0 : x[0], left = u[3] == U_AUTO ? 0 : x[3];
	return (u[2] != U_AUTO && x[2] <= top) || (u[1] != U_AUTO && x[1] <= left);
}

/* clip-path: inset() of half the box or more from both sides, or a circle
 * or ellipse of radius zero */
static bool
clip_path_empty(const char *v, size_t n)
{
	size_t an;
	const char *a;
	float x[4];
	int u[4], k;

	if ((a = css_fn_args(v, n, "inset(", &an)) != NULL) {
		if ((k = css_lengths(a, a + an, x, u, 4)) < 1)
			return false;
		for (int i = 0; i < k; i++)
			if (u[i] != L_PCT && u[i] != U_ZERO)
				return false;  /* px: the box is not known */
		float t = x[0], r = k > 1 ? x[1] : t, b = k > 2 ? x[2] : t, l = k > 3 ? x[3] : r;
		return t + b >= 100 || l + r >= 100;
	}
	if ((a = css_fn_args(v, n, "circle(", &an)) != NULL)
		return css_lengths(a, a + an, x, u, 1) == 1 && u[0] == U_ZERO;
	if ((a = css_fn_args(v, n, "ellipse(", &an)) != NULL)
		return (k = css_lengths(a, a + an, x, u, 2)) >= 1 &&
		    (u[0] == U_ZERO || (k == 2 && u[1] == U_ZERO));
	return false;
}

/* Numbers separated by white space or commas (units dropped); how many. */
static int
css_numbers(const char *p, const char *e, float *v, int max)
{
	int k = 0;

	while (k < max && p < e) {
		while (p < e && (is_ws(*p) || *p == ','))
			p++;
		if (p >= e || !css_number(&p, e, &v[k]))
			break;
		k++;
		while (p < e && !is_ws(*p) && *p != ',')
			p++;  /* a unit */
	}
	return k;
}

static float
fabs_(float x)
{
	return x < 0 ? -x : x;
}

/* a square root good enough to size a transform, with no libm */
static float
sqrt_(float x)
{
	float r = x > 1 ? x : 1;

	if (!(x > 0))
		return 0;
	for (int i = 0; i < 64; i++) {
		float n = (r + x / r) / 2;
		if (n >= r)
			break;
		r = n;
	}
	return r;
}

/* transform: the smaller factor it scales text by (1: none), and whether
 * it moves the box far off to the left or top (*off) */
static float
transform_scale(const char *v, size_t n, bool *off)
{
	const char *p = v, *e = v + n, *t;
	size_t tn, an;
	float scale = 1, x[6];
	int u[2], k;

	*off = false;
	while (next_token(&p, e, &t, &tn)) {
		const char *a;
		float f = 1;
		if ((a = css_fn_args(t, tn, "scale(", &an)) != NULL ||
		    (a = css_fn_args(t, tn, "scale3d(", &an)) != NULL) {
			if ((k = css_numbers(a, a + an, x, 2)) == 0)
				continue;
			f = fabs_(x[0]);
			if (k > 1 && fabs_(x[1]) < f)
				f = fabs_(x[1]);
		} else if ((a = css_fn_args(t, tn, "scalex(", &an)) != NULL ||
		    (a = css_fn_args(t, tn, "scaley(", &an)) != NULL) {
			if (css_numbers(a, a + an, x, 1) == 1)
				f = fabs_(x[0]);
		} else if ((a = css_fn_args(t, tn, "matrix(", &an)) != NULL) {
			if (css_numbers(a, a + an, x, 6) != 6)
				continue;
			/* the smaller singular value of [a c; b d] */
			float sq = x[0] * x[0] + x[1] * x[1] + x[2] * x[2] + x[3] * x[3];
			float det = fabs_(x[0] * x[3] - x[1] * x[2]), disc = sq * sq - 4 * det * det;
			float lo = (sq - sqrt_(disc)) / 2;
			f = sqrt_(lo);
			if (x[4] <= -1000 || x[5] <= -1000)
				*off = true;
		} else if ((a = css_fn_args(t, tn, "translate(", &an)) != NULL ||
		    (a = css_fn_args(t, tn, "translatex(", &an)) != NULL ||
		    (a = css_fn_args(t, tn, "translatey(", &an)) != NULL ||
		    (a = css_fn_args(t, tn, "translate3d(", &an)) != NULL) {
			if ((k = css_lengths(a, a + an, x, u, 2)) < 1)
				continue;
			for (int i = 0; i < k; i++)
				if (u[i] == L_PX && x[i] <= -1000)
					*off = true;
		}
		scale *= f;
	}
	return scale;
}

/* Parse one declaration's value (trimmed, !important removed). */
static bool
decl_value(int prop, const char *v, size_t n, css_decl *d)
{
	float x;
	int u;

	d->prop = (uint8_t)prop;
	d->kw = 0;
	d->v = 0;
	d->color = 0;
	switch (prop) {
	case P_DISPLAY:
		if (ieq(v, n, "none"))
			d->kw = D_NONE;
		else if (ieq(v, n, "inline"))
			d->kw = D_INLINE;
		else if (ieq(v, n, "inherit") || ieq(v, n, "initial") || ieq(v, n, "unset") ||
		    ieq(v, n, "revert") || n == 0)
			return false;
		else
			d->kw = D_BLOCK;
		return true;
	case P_VISIBILITY:
		if (ieq(v, n, "hidden") || ieq(v, n, "collapse"))
			d->kw = 1;
		else if (!ieq(v, n, "visible"))
			return false;
		return true;
	case P_OPACITY: {
		const char *q = v;
		if (!css_number(&q, v + n, &x))
			return false;
		if (q < v + n && *q == '%')
			x /= 100;
		d->v = x < 0 ? 0 : x > 1 ? 1 : x;
		return true;
	}
	case P_FONT_SIZE:
		return font_size_value(v, n, d);
	case P_FONT: {
		/* the size is the first token that is one: [style variant weight] size[/lh] family */
		const char *p = v, *e = v + n, *t;
		size_t tn;
		while (next_token(&p, e, &t, &tn)) {
			if (tn == 1 && *t == '/')
				return false;
			if (is_digit(*t) && css_length(t, tn, &x) == L_PX && x >= 100 && tn == 3 &&
			    (int)x % 100 == 0)
				continue;  /* a weight: 100 ... 900 */
			if (font_size_value(t, tn, d)) {
				d->prop = P_FONT_SIZE;
				return true;
			}
		}
		return false;
	}
	case P_HEIGHT:
	case P_MAX_HEIGHT:
	case P_WIDTH:
	case P_MAX_WIDTH:
		u = css_length(v, n, &x);
		if (u == L_BAD)
			d->v = ieq(v, n, "inherit") || ieq(v, n, "initial") ? -1 : SZ_NONZERO;
		else if (x == 0)
			d->v = 0;
		else
			d->v = u == L_PX ? x : SZ_NONZERO;
		return d->v != -1;
	case P_OVERFLOW: {
		const char *p = v, *e = v + n, *t;
		size_t tn;
		int i = 0;
		while (i < 2 && next_token(&p, e, &t, &tn)) {
			if (ieq(t, tn, "hidden") || ieq(t, tn, "clip"))
				d->kw |= (uint8_t)(i == 0 ? 3 : 2);
			else if (i == 1)
				d->kw &= 1;
			i++;
		}
		return i > 0;
	}
	case P_OVERFLOW_X:
	case P_OVERFLOW_Y:
		d->kw = ieq(v, n, "hidden") || ieq(v, n, "clip");
		return true;
	case P_MSO_HIDE:
		d->kw = ieq(v, n, "all");
		return true;
	case P_POSITION:
		d->kw = ieq(v, n, "absolute") || ieq(v, n, "fixed");
		return true;
	case P_LEFT:
	case P_TOP:
	case P_TEXT_INDENT:
		u = css_length(v, n, &x);
		if (u == L_PX || u == L_REM) {
			d->kw = F_PX;
			d->v = u == L_REM ? x * 16 : x;
		} else if (u == L_EM) {
			d->kw = F_FACTOR;
			d->v = x;
		} else {
			d->kw = F_PX;
			d->v = 0;
		}
		return true;
	case P_COLOR:
		if (ieq(v, n, "inherit") || ieq(v, n, "currentcolor")) {
			d->kw = 1;  /* the parent's colour (a link's own blue undone) */
			return true;
		}
		return css_color(v, n, false, &d->color);
	case P_BACKGROUND_COLOR:
		return css_color(v, n, false, &d->color);
	case P_BACKGROUND:
	case P_BACKGROUND_IMAGE: {
		const char *p = v, *e = v + n, *t;
		size_t tn;
		uint32_t c;
		while (next_token(&p, e, &t, &tn)) {
			if (iprefix(t, tn, "url(") || iprefix(t, tn, "linear-gradient(") ||
			    iprefix(t, tn, "radial-gradient(") || iprefix(t, tn, "image-set("))
				d->kw |= 2;
			else if (prop == P_BACKGROUND && css_color(t, tn, false, &c))
				d->kw |= 1, d->color = c;
		}
		return !(ieq(v, n, "inherit") || ieq(v, n, "initial"));
	}
	case P_CLIP:
		d->kw = clip_empty(v, n);
		return true;
	case P_CLIP_PATH:
		d->kw = clip_path_empty(v, n);
		return true;
	case P_TRANSFORM: {
		bool off;
		d->v = transform_scale(v, n, &off);
		d->kw = off;
		return true;
	}
	case P_SCALE: {
		float f[3];
		int k = css_numbers(v, v + n, f, 3);
		d->v = 1;
		if (k >= 1)
			d->v = k > 1 && fabs_(f[1]) < fabs_(f[0]) ? fabs_(f[1]) : fabs_(f[0]);
		return true;
	}
	}
	return false;
}

/* the value of a declaration of prop: "!important" taken off, parsed */
static bool
decl_finish(int prop, const char *v, size_t vn, css_decl *d)
{
	const char *bang;

	trim(&v, &vn);
	d->imp = 0;
	if (vn && (bang = memchr(v, '!', vn)) != NULL) {
		const char *k = bang + 1;
		size_t kn = (size_t)(v + vn - k);
		trim(&k, &kn);
		if (!ieq(k, kn, "important"))
			return false;
		d->imp = 1;
		vn = (size_t)(bang - v);
		trim(&v, &vn);
	}
	return decl_value(prop, v, vn, d);
}

/* Parse "name: value" into d; false when it does not matter here. */
static bool
decl_parse(const char *s, size_t n, css_decl *d)
{
	const char *colon = memchr(s, ':', n);
	const char *name = s;
	size_t nn;
	int prop;

	if (colon == NULL)
		return false;
	nn = (size_t)(colon - s);
	trim(&name, &nn);
	if ((prop = css_prop(name, nn)) < 0)
		return false;
	return decl_finish(prop, colon + 1, (size_t)(s + n - colon - 1), d);
}

/* ---- computed style of one element ------------------------------------------ */
typedef struct hstyle {
	int8_t disp;          /* 0 unset, D_* */
	int8_t vis;           /* -1 unset, 0 visible, 1 hidden */
	int8_t mso, pos;      /* -1 unset, 0, 1 */
	int8_t ovx, ovy;      /* -1 unset, 0, 1 hidden */
	int8_t fk;            /* -1 unset, F_PX, F_FACTOR */
	int8_t col;           /* -1 unset, 1 set, 2 inherit */
	int8_t bgc;           /* -1 unset, 0 none, 1 colour */
	int8_t bgi;           /* -1 unset, 0 none, 1 image */
	int8_t lk, tk, ik;    /* -1 unset, F_PX, F_FACTOR */
	float opacity;        /* < 0: unset */
	float fv, left, top, indent;
	float w, h, mw, mh;   /* px; -1 unset; SZ_NONZERO */
	uint32_t color, bg;
	int8_t clip, cpath;   /* -1 unset, 0, 1 with no area */
	int8_t toff;          /* -1 unset, 0, 1 translated far off */
	float tscale, pscale; /* transform, scale: factor; < 0 unset */
	uint32_t inl, inl_imp;  /* 1 << P_* its style attribute sets, !important */
} hstyle;

static void
style_init(hstyle *s)
{
	memset(s, 0, sizeof(*s));
	s->vis = s->mso = s->pos = s->ovx = s->ovy = s->fk = s->col = s->bgc = s->bgi = -1;
	s->lk = s->tk = s->ik = -1;
	s->opacity = -1;
	s->w = s->h = s->mw = s->mh = -1;
	s->clip = s->cpath = s->toff = -1;
	s->tscale = s->pscale = -1;
}

static void
style_apply(hstyle *s, const css_decl *d)
{
	switch (d->prop) {
	case P_DISPLAY:
		s->disp = (int8_t)d->kw;
		break;
	case P_VISIBILITY:
		s->vis = (int8_t)d->kw;
		break;
	case P_OPACITY:
		s->opacity = d->v;
		break;
	case P_FONT_SIZE:
		s->fk = (int8_t)d->kw;
		s->fv = d->v;
		break;
	case P_HEIGHT:
		s->h = d->v;
		break;
	case P_MAX_HEIGHT:
		s->mh = d->v;
		break;
	case P_WIDTH:
		s->w = d->v;
		break;
	case P_MAX_WIDTH:
		s->mw = d->v;
		break;
	case P_OVERFLOW:
		s->ovx = d->kw & 1;
		s->ovy = d->kw >> 1 & 1;
		break;
	case P_OVERFLOW_X:
		s->ovx = (int8_t)d->kw;
		break;
	case P_OVERFLOW_Y:
		s->ovy = (int8_t)d->kw;
		break;
	case P_MSO_HIDE:
		s->mso = (int8_t)d->kw;
		break;
	case P_POSITION:
		s->pos = (int8_t)d->kw;
		break;
	case P_LEFT:
		s->lk = (int8_t)d->kw;
		s->left = d->v;
		break;
	case P_TOP:
		s->tk = (int8_t)d->kw;
		s->top = d->v;
		break;
	case P_TEXT_INDENT:
		s->ik = (int8_t)d->kw;
		s->indent = d->v;
		break;
	case P_COLOR:
		s->col = d->kw ? 2 : 1;
		s->color = d->color;
		break;
	case P_BACKGROUND_COLOR:
		s->bgc = 1;
		s->bg = d->color;
		break;
	case P_BACKGROUND:
		s->bgc = d->kw & 1;
		s->bg = d->color;
		s->bgi = d->kw >> 1 & 1;
		break;
	case P_BACKGROUND_IMAGE:
		s->bgi = d->kw >> 1 & 1;
		break;
	case P_CLIP:
		s->clip = (int8_t)d->kw;
		break;
	case P_CLIP_PATH:
		s->cpath = (int8_t)d->kw;
		break;
	case P_TRANSFORM:
		s->tscale = d->v;
		s->toff = (int8_t)d->kw;
		break;
	case P_SCALE:
		s->pscale = d->v;
		break;
	}
}

/* An inline declaration list: pass 0 applies the normal declarations, pass 1
 * the !important ones. Returns whether there was an !important one. */
static bool
style_inline(const char *s, size_t n, hstyle *st, int pass)
{
	const char *e = s + n, *name, *semi;
	bool imp = false;
	css_decl d;

	while (s < e) {
		while (s < e && (is_ws(*s) || *s == ';'))
			s++;
		/* the property name, up to ':' */
		name = s;
		s = find_either(s, e, ':', ';');
		if (s == e)
			break;
		if (*s == ';')
			continue;
		size_t nn = (size_t)(s - name);
		while (nn && is_ws(name[nn - 1]))
			nn--;
		int prop = css_prop(name, nn);
		s++;
		semi = memchr(s, ';', (size_t)(e - s));
		if (semi == NULL)
			semi = e;
		if (prop >= 0 && decl_finish(prop, s, (size_t)(semi - s), &d)) {
			imp |= d.imp;
			if (d.imp == pass)
				style_apply(st, &d);
		}
		s = semi;
	}
	return imp;
}

/* The declarations of an inline style that matter, in order; -1 when there
 * are more than max. */
static int
style_decls(const char *s, size_t n, css_decl *out, int max)
{
	const char *e = s + n, *name, *semi;
	int nd = 0;

	while (s < e) {
		while (s < e && (is_ws(*s) || *s == ';'))
			s++;
		name = s;
		s = find_either(s, e, ':', ';');
		if (s == e)
			break;
		if (*s == ';')
			continue;
		size_t nn = (size_t)(s - name);
		while (nn && is_ws(name[nn - 1]))
			nn--;
		int prop = css_prop(name, nn);
		s++;
		semi = memchr(s, ';', (size_t)(e - s));
		if (semi == NULL)
			semi = e;
		if (prop >= 0 && decl_finish(prop, s, (size_t)(semi - s), &out[nd < max ? nd : 0])) {
			if (nd == max)
				return -1;
			nd++;
		}
		s = semi;
	}
	return nd;
}

/* Templates repeat the same style attributes: their parsed declarations are
 * kept, keyed by the whole string (compared, not only hashed), in sets of
 * two entries, the most recently used first. */
#define STYLE_SETS       64
#define STYLE_CACHE_LEN  256
#define STYLE_CACHE_DECL 6

typedef struct style_entry {
	css_decl d[STYLE_CACHE_DECL];
	uint32_t gen;          /* changes when the entry is replaced */
	uint16_t len;          /* 0: empty */
	int8_t nd;
	char s[STYLE_CACHE_LEN];
} style_entry;

/* ---- frames: the look of each open element ------------------------------ */
typedef struct hframe {
	uint16_t tag;
	uint8_t fl;
	uint8_t why;          /* not rendered at all: outermost reason */
	uint8_t vwhy;         /* visibility:hidden (a descendant may undo it) */
	uint8_t cwhy;         /* its colours hide text */
	uint8_t twhy;         /* text directly inside is unseen */
	uint8_t pad;
	uint32_t hash;        /* FNV-1a of the lower-case name */
	uint32_t tab;         /* stack index of the nearest <table> at or below; 0: none */
	float opacity, font, bglum;
	uint32_t color;       /* text, 0xAARRGGBB */
	uint32_t bg;          /* what is behind, 0xRRGGBB */
} hframe;

#define FR_FOREIGN  0x01
#define FR_BGUNK    0x02  /* a background image: colours cannot be compared */
#define FR_LINK     0x04  /* the element of the open link */
#define FR_TABLECTX 0x08  /* table, tbody, thead, tfoot, tr: content is fostered */
#define FR_BLOCK    0x10
#define FR_RAW      0x20  /* a raw text element */
#define FR_CLOSED   0x40  /* a <details> with no open attribute */
#define FR_SUMMARY  0x80  /* ... whose summary has been seen */

/* What the end of the document needs to know of an open element, beside
 * its frame: see late_why(). */
typedef struct hside {
	uint32_t rules;       /* style sheet rules known when it was started */
	uint32_t par;         /* the stack index of the frame its look comes from */
	uint32_t noff;        /* its class, then its id, in the names stack */
	uint16_t ncls, nid;
	uint32_t inl, inl_imp;
	uint32_t cel;         /* its hcel in the chains + 1, of generation gen */
	uint32_t gen;
} hside;

/* an element in the chain of a link (see chain_keep), followed by its class
 * and its id */
typedef struct hcel {
	uint32_t up;          /* the hcel its look comes from + 1; 0: the root */
	uint16_t tag;
	uint16_t ncls, nid;
	uint32_t rules, inl, inl_imp;
} hcel;

/* What frame_make reads of a parent frame. */
typedef struct hlook {
	uint8_t why, vwhy, cwhy, fl;
	float opacity, font, bglum;
	uint32_t color, bg;
} hlook;

/* An element styled by its style attribute alone (see frame_memo_entry)
 * below a parent that looks the same gets the same frame; templates repeat
 * both, so the last few frames made are kept. */
#define FRAME_MEMO 64   /* in sets of two */

typedef struct fmemo {
	const style_entry *se;     /* NULL: empty; memo_nostyle: no style attribute */
	uint32_t gen;
	uint32_t rules;            /* rules of the style sheet then */
	uint32_t link;             /* an <a href>: the document's link colour then */
	uint16_t tag;
	uint8_t force;
	bool href;                 /* an <a href> */
	uint8_t lru;               /* first of a set: which of the two goes next */
	hlook par;
	hframe out;
	uint32_t inl, inl_imp;
} fmemo;

typedef struct style_cache {
	uint8_t mru[STYLE_SETS];   /* the entry of each set used last */
	style_entry e[2 * STYLE_SETS];
	fmemo memo[FRAME_MEMO];
} style_cache;

/* the memo key of an element with no attribute of the cascade */
static const style_entry memo_nostyle;

static unsigned
style_set(const char *s, size_t n)
{
	uint64_t a = 0, b = 0, c = 0;

	if (n >= 8)
		memcpy(&a, s, 8);
	else
		memcpy(&a, s, n);
	if (n > 8)
		memcpy(&b, s + n - 8, 8);
	if (n > 16)
		memcpy(&c, s + n / 2 - 4, 8);
	uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull) ^ (c * 0xc2b2ae3d27d4eb4full) ^ n) *
	    0xff51afd7ed558ccdull;
	return (unsigned)(h >> 58) & (STYLE_SETS - 1);
}


/* ---- the style sheet ---------------------------------------------------------- */
enum { SEL_TAG, SEL_CLASS, SEL_ID };
#define SHEET_TAGHASH 0x80  /* some rule names a tag: elements need the name's hash */

typedef struct css_rule {
	uint32_t key;        /* hash of the tag name, class or id, by kind */
	uint32_t tag;        /* SEL_CLASS with a tag: the tag name's hash; else 0 */
	uint32_t next;       /* next rule in the bucket + 1 */
	uint32_t d0;         /* first declaration */
	uint16_t nd;
	uint16_t spec;       /* specificity */
	uint32_t name;       /* offset of the name in names */
	uint16_t namelen;
	uint8_t kind;
} css_rule;

enum { C_SEL, C_DECL, C_SKIP };

typedef struct hsheet {
	css_rule *r;
	unsigned nr, rcap, maxr;
	css_decl *d;
	unsigned nd, dcap, maxd;
	char *names;
	unsigned nnames, ncap;
	uint32_t bucket[256];
	bool any;
	uint8_t kinds;        /* 1 << SEL_* of the rules held; SHEET_TAGHASH */
	uint8_t tagrule[T_COUNT]; /* some rule names the tag alone (T_OTHER: an unknown one) */
	/* the streaming parser */
	uint8_t st;
	bool comment, star, slash, esc;
	char quote;
	unsigned depth;
	char *sel;
	size_t sl;
	bool sover;
	char *dec;
	size_t dl;
	bool dover;
} hsheet;

#define SALT_TAG   0x00000000u
#define SALT_CLASS 0x9e3779b9u
#define SALT_ID    0x7f4a7c15u

/* FNV-1a of a lower-case name */
static inline uint32_t
name_fnv(const char *s, size_t n)
{
	uint32_t h = FNV_INIT;

	for (size_t i = 0; i < n; i++)
		h = FNV_STEP(h, s[i]);
	return h;
}

static uint32_t
name_hash(const char *s, size_t n)
{
	uint32_t h = FNV_INIT;

	for (size_t i = 0; i < n; i++)
		h = FNV_STEP(h, lower((unsigned char)s[i]));
	return h;
}

static bool
css_name_char(int c)
{
	return is_alnum(c) || c == '-' || c == '_' || c >= 0x80;
}

/* ---- the parser ---------------------------------------------------------------- */
enum {
	S_DATA, S_TAG_OPEN, S_END_TAG_OPEN, S_TAG_NAME, S_BEFORE_ATTR_NAME, S_ATTR_NAME,
	S_AFTER_ATTR_NAME, S_BEFORE_ATTR_VALUE, S_AV_DQ, S_AV_SQ, S_AV_UNQ,
	S_AFTER_AV_QUOTED, S_SELF_CLOSING, S_MARKUP_DECL, S_COMMENT_START,
	S_COMMENT_START_DASH, S_COMMENT, S_COMMENT_END_DASH, S_COMMENT_END,
	S_COMMENT_END_BANG, S_BOGUS_COMMENT, S_CDATA, S_CDATA_B1, S_CDATA_B2,
	S_RAW, S_RAW_LT, S_RAW_END_OPEN, S_RAW_END_NAME, S_PLAINTEXT,
	S_SD, S_SD_LT, S_SD_END_OPEN, S_SD_END_NAME, S_SD_ESC_START, S_SD_ESC_START_DASH,
	S_SD_ESC, S_SD_ESC_DASH, S_SD_ESC_DASH2, S_SD_ESC_LT, S_SD_ESC_END_OPEN,
	S_SD_ESC_END_NAME, S_SD_DESC_START, S_SD_DESC, S_SD_DESC_DASH, S_SD_DESC_DASH2,
	S_SD_DESC_LT, S_SD_DESC_END
};

/* insertion modes that matter */
enum { M_BEFORE_HEAD, M_IN_HEAD, M_IN_HEAD_NOSCRIPT, M_AFTER_HEAD, M_IN_BODY };

/* attributes kept */
enum {
	A_HREF, A_STYLE, A_CLASS, A_ID, A_ALT, A_TITLE, A_HIDDEN, A_BGCOLOR, A_COLOR,
	A_WIDTH, A_HEIGHT, A_SIZE, A_TEXT, A_LINK, A_BACKGROUND, A_OPEN, A_COUNT
};

typedef struct hattr {
	char *v;
	size_t len, cap;
	bool trunc;
} hattr;


typedef struct hlink {
	bool open;
	unsigned at;          /* stack index of its element */
	bool has_href, trunc;
	char *href;           /* max_url + 1 */
	size_t hlen;
	uint8_t why;          /* the element itself is not rendered */
	bool img_shown;       /* some image inside is shown */
	uint8_t img_why;      /* why the first image inside is not */
	hbuf raw;             /* text inside */
	hbuf alt, valt;       /* alts of all images / of the shown ones */
	char bvis[HTML_AROUND + 1], ball[HTML_AROUND + 1];
	size_t bvis_len, ball_len;
	bool ball_ok;         /* ball was made */
	uint32_t chain;       /* its chain in the parser's, + 1; 0: none */
} hlink;

typedef struct hurl {
	uint8_t m;            /* 1: the text so far ends in "http:/" or "https:/" */
	bool https, in, trunc, decode;
	char tail[8];         /* the last bytes before this piece, for looking back */
	uint8_t why;
	char *buf;            /* max_url + 1 */
	size_t len;
	char ring[HTML_URLRING];
	size_t rlen;
} hurl;

struct htok;

/* the strings of a link's facts */
enum { HS_HREF, HS_TEXT, HS_VTEXT, HS_ALT, HS_VALT, HS_BEFORE, HS_AFTER, HS_COUNT };

typedef struct hpend {
	bool on, url, all;
	struct htok *owner;
	html_link l;
	char *href;
	char text[HTML_TEXT_MAX + 1], vtext[HTML_TEXT_MAX + 1];
	char alt[HTML_LINK_ALT + 1], valt[HTML_LINK_ALT + 1];
	char before[HTML_AROUND + 1], after[HTML_AROUND + 1];
	size_t len[HS_COUNT]; /* the lengths of href and of the strings */
	hbuf araw;
	uint32_t chain;       /* as hlink's */
} hpend;

/* a link reported at the end of the document: the facts of html_link, the
 * strings in the parser's hold */
typedef struct hheld {
	const char *tag, *why;
	uint32_t off[HS_COUNT];   /* in the hold; href: UINT32_MAX when NULL */
	uint32_t chain;
	bool visible, trunc;
} hheld;

typedef struct htok {
	html_parser *h;
	bool inner;           /* tokenizes the text of a comment */
	uint8_t state, mode;
	bool endtag, selfclose, doctype;
	char name[HTML_NAME_MAX];
	uint64_t nword;       /* name_word() of name */
	size_t nlen, nall;
	int ntag;             /* tag_id() of the name, once it is read */
	uint32_t nhash;       /* FNV-1a of name, when nhashed */
	bool nhashed;
	char an[HTML_NAME_MAX];
	size_t alen, aall;
	int aslot;            /* attribute being read, -1: not kept */
	uint32_t aseen;
	uint32_t adec;        /* attributes whose character references are decoded */
	hattr *attr;          /* the parser's: one tag is read at a time */
	char tmp[16];         /* markup declaration and end tag lookahead */
	size_t tlen;
	int rawtag;           /* element whose end tag ends raw text */
	hframe *st;
	hside *side;          /* parallel to st, for the document */
	unsigned depth, stcap, sidecap, over, templates;
	char *nms;            /* HTML_NAMES_MAX: classes and ids of the open elements */
	size_t nmlen;
	uint32_t open[T_COUNT];  /* open elements of each tag, so that most
	                            scope checks need no walk down the stack */
	unsigned run;         /* text runs: a tag or comment ends one */
	uint8_t twhy;         /* class of text here */
	hbuf ring;
	hlink link[HTML_LINK_NEST];   /* the open links, outermost first */
	unsigned nlink;
	hurl url;
} htok;

struct html_parser {
	html_limits lim;
	html_cb cb;
	void *ud;
	htok tok[2];          /* the document, the text of a comment */
	hattr attr[A_COUNT];
	char *urlbuf;         /* max_url + 1: one URL in raw text at a time */
	hpend pend;
	hsheet sheet;
	unsigned links;
	const char *limit;
	uint32_t linkcolor;   /* <body link>, else blue */
	struct style_cache *styles;  /* parsed inline styles, at the first one */
	char *scratch;        /* cooking */
	char *cbuf;           /* HTML_COMMENT_BUF: the text of a comment, held */
	size_t clen;
	bool cdirect;         /* this comment is tokenized as it comes */
	bool cfed;            /* the comment tokenizer has had some of it */
	hheld *held;          /* the links, in order, until the end */
	unsigned nheld, heldcap;
	char *hold;           /* their strings */
	size_t holdlen, holdcap;
	char *chains;         /* chains of links (hcel records), by offset */
	size_t chainlen, chaincap;
	uint32_t chaingen;    /* changes when the chains are dropped */
	uint32_t celrules;    /* the fewest rules an element of a chain was started with */
	bool finished;
};

static void
limit_hit(html_parser *h, const char *key)
{
	if (h->limit == NULL)
		h->limit = key;
}

/* ---- the style sheet: streaming parser and rules -------------------------------- */
static void
sheet_add(html_parser *h, int kind, const char *name, size_t nlen, uint32_t tag,
    uint32_t d0, unsigned nd, unsigned spec)
{
	hsheet *s = &h->sheet;
	css_rule *r;

	if (!grow((void **)&s->r, &s->rcap, sizeof(*s->r), s->nr + 1, s->maxr) ||
	    !grow((void **)&s->names, &s->ncap, 1, s->nnames + (unsigned)nlen, HTML_CSS_NAMES)) {
		limit_hit(h, "MaxCssRules");
		return;
	}
	/* the name lowered and hashed (as name_hash()) in one pass */
	char *d = s->names + s->nnames;
	uint32_t hash = FNV_INIT;
	for (size_t i = 0; i < nlen; i++) {
		char c = (char)lower((unsigned char)name[i]);
		d[i] = c;
		hash = FNV_STEP(hash, c);
	}
	r = &s->r[s->nr];
	r->kind = (uint8_t)kind;
	r->key = hash ^ (kind == SEL_TAG ? SALT_TAG : kind == SEL_CLASS ? SALT_CLASS : SALT_ID);
	r->tag = tag;
	r->d0 = d0;
	r->nd = (uint16_t)nd;
	r->spec = (uint16_t)spec;
	r->name = s->nnames;
	r->namelen = (uint16_t)nlen;
	s->nnames += (unsigned)nlen;
	r->next = s->bucket[r->key & 255];
	s->bucket[r->key & 255] = ++s->nr;
	s->any = true;
	s->kinds |= (uint8_t)(1 << kind | (kind == SEL_TAG || tag ? SHEET_TAGHASH : 0));
}

/* one selector of a list: tag, .class, tag.class, #id, tag#id, with :link or
 * :visited allowed on links; anything else is not followed */
static void
sheet_selector(html_parser *h, const char *s, size_t n, uint32_t d0, unsigned nd)
{
	const char *p = s, *e, *tag = NULL, *name = NULL;
	size_t tn = 0, nn = 0;
	int kind = SEL_TAG;

	trim(&s, &n);
	p = s;
	e = s + n;
	if (p < e && is_alpha(*p)) {
		tag = p;
		while (p < e && css_name_char((unsigned char)*p))
			p++;
		tn = (size_t)(p - tag);
	}
	if (p < e && (*p == '.' || *p == '#')) {
		kind = *p++ == '.' ? SEL_CLASS : SEL_ID;
		name = p;
		while (p < e && css_name_char((unsigned char)*p))
			p++;
		nn = (size_t)(p - name);
		if (nn == 0)
			return;
	}
	if (p < e && *p == ':') {
		if (!(ieq(p, (size_t)(e - p), ":link") || ieq(p, (size_t)(e - p), ":visited")))
			return;
		if (tag && !ieq(tag, tn, "a"))
			return;
		p = e;
	}
	if (p != e || (tag == NULL && name == NULL))
		return;
	if (kind == SEL_TAG) {
		char lname[16];
		int id = T_OTHER;
		if (tn <= 12) {
			for (size_t i = 0; i < tn; i++)
				lname[i] = (char)lower((unsigned char)tag[i]);
			id = tag_lookup(name_word(lname, tn), lname, tn);
		}
		h->sheet.tagrule[id] = 1;
		if (id == T_IMAGE || id == T_IMG)  /* <image> is taken for <img> */
			h->sheet.tagrule[T_IMAGE] = h->sheet.tagrule[T_IMG] = 1;
		sheet_add(h, SEL_TAG, tag, tn, 0, d0, nd, 1);
	}
	else
		sheet_add(h, kind, name, nn, tag ? name_hash(tag, tn) : 0, d0, nd,
		    (kind == SEL_ID ? 100 : 10) + (tag ? 1 : 0));
}

/* a complete rule: selector list in sel, declarations in dec */
static void
sheet_rule(html_parser *h)
{
	hsheet *s = &h->sheet;
	css_decl tmp[HTML_CSS_DECLS];
	unsigned nd = 0;
	const char *p = s->dec, *e = s->dec + s->dl;

	if (s->sover || s->dover) {
		limit_hit(h, "MaxCssRules");
		return;
	}
	while (p < e) {
		const char *semi = memchr(p, ';', (size_t)(e - p)), *end = semi ? semi : e;
		if (nd < HTML_CSS_DECLS && decl_parse(p, (size_t)(end - p), &tmp[nd]))
			nd++;
		p = end + 1;
	}
	if (nd == 0)
		return;
	if (!grow((void **)&s->d, &s->dcap, sizeof(*s->d), s->nd + nd, s->maxd)) {
		limit_hit(h, "MaxCssRules");
		return;
	}
	uint32_t d0 = s->nd;
	memcpy(s->d + s->nd, tmp, nd * sizeof(tmp[0]));
	s->nd += nd;
	for (p = s->sel, e = s->sel + s->sl; p < e;) {
		const char *comma = memchr(p, ',', (size_t)(e - p)), *end = comma ? comma : e;
		sheet_selector(h, p, (size_t)(end - p), d0, nd);
		p = end + 1;
	}
}

/* the selector text before '{': CDO and CDC tokens and white space dropped */
static const char *
sheet_prelude(hsheet *s, size_t *n)
{
	const char *p = s->sel, *e = s->sel + s->sl;

	for (;;) {
		while (p < e && is_ws(*p))
			p++;
		if (e - p >= 4 && memcmp(p, "<!--", 4) == 0)
			p += 4;
		else if (e - p >= 3 && memcmp(p, "-->", 3) == 0)
			p += 3;
		else
			break;
	}
	*n = (size_t)(e - p);
	return p;
}

/* bytes the style sheet scanner must look at one by one */
static const uint8_t css_special[256] = {
	['/'] = 1, ['"'] = 1, ['\''] = 1, ['{'] = 1, ['}'] = 1, [';'] = 1,
};

/* past the bytes at p that are not css_special */
static inline const char *
css_run(const char *p, const char *e)
{
#ifdef __SSE2__
	for (; e - p >= 16; p += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i m = _mm_or_si128(
		    _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('/')), _mm_cmpeq_epi8(v, _mm_set1_epi8(';'))),
		    _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('{')), _mm_cmpeq_epi8(v, _mm_set1_epi8('}'))));
		m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
		    _mm_cmpeq_epi8(v, _mm_set1_epi8('\''))));
		unsigned b = (unsigned)_mm_movemask_epi8(m);
		if (b)
			return p + __builtin_ctz(b);
	}
#endif
	while (p < e && !css_special[(unsigned char)*p])
		p++;
	return p;
}

static void
sheet_feed(html_parser *h, const char *p, size_t n)
{
	hsheet *s = &h->sheet;
	const char *e = p + n;

	if (s->sel == NULL) {
		/* the first style sheet */
		s->sel = malloc(HTML_CSS_SEL);
		s->dec = malloc(HTML_CSS_DECL);
		if (s->sel == NULL || s->dec == NULL) {
			free(s->sel);
			free(s->dec);
			s->sel = s->dec = NULL;
			limit_hit(h, "MaxCssRules");
			return;
		}
	}

	for (; p < e; p++) {
		char c = *p;

		if (!s->comment && !s->slash && !s->quote && !css_special[(unsigned char)c]) {
			/* a run of ordinary bytes */
			const char *q = css_run(p + 1, e);
			size_t k = (size_t)(q - p);
			if (s->st == C_SEL) {
				if (k > HTML_CSS_SEL - s->sl)
					k = HTML_CSS_SEL - s->sl, s->sover = true;
				memcpy(s->sel + s->sl, p, k);
				s->sl += k;
			} else if (s->st == C_DECL) {
				if (k > HTML_CSS_DECL - s->dl)
					k = HTML_CSS_DECL - s->dl, s->dover = true;
				memcpy(s->dec + s->dl, p, k);
				s->dl += k;
			}
			p = q - 1;
			continue;
		}
		if (s->comment) {
			/* skip quickly to a possible end */
			if (!s->star) {
				const char *q = memchr(p, '*', (size_t)(e - p));
				if (q == NULL)
					return;
				p = q;
				c = '*';
			}
			if (s->star && c == '/')
				s->comment = false;
			s->star = c == '*';
			continue;
		}
		if (s->slash) {
			s->slash = false;
			if (c == '*') {
				s->comment = true;
				s->star = false;
				continue;
			}
			/* the '/' was an ordinary character */
			if (s->st == C_SEL) {
				if (s->sl < HTML_CSS_SEL) s->sel[s->sl++] = '/'; else s->sover = true;
			} else if (s->st == C_DECL) {
				if (s->dl < HTML_CSS_DECL) s->dec[s->dl++] = '/'; else s->dover = true;
			}
		}
		if (s->quote) {
			if (s->esc)
				s->esc = false;
			else if (c == '\\')
				s->esc = true;
			else if (c == s->quote || c == '\n')
				s->quote = 0;
		} else if (c == '/') {
			s->slash = true;
			continue;
		} else if (c == '"' || c == '\'') {
			s->quote = c;
		} else if (s->st == C_SKIP) {
			if (c == '{')
				s->depth++;
			else if (c == '}' && --s->depth == 0) {
				s->st = C_SEL;
				s->sl = 0;
				s->sover = false;
			}
			continue;
		} else if (c == '{') {
			size_t pn = 0;
			const char *pre = s->st == C_SEL ? sheet_prelude(s, &pn) : NULL;
			if (s->st == C_DECL || (pre && pn && pre[0] == '@')) {
				/* an @-rule's block, or a nested block: skipped */
				s->st = C_SKIP;
				s->depth = 1;
				continue;
			}
			s->st = C_DECL;
			s->dl = 0;
			s->dover = false;
			if (pre != s->sel) {
				memmove(s->sel, pre, pn);
				s->sl = pn;
			}
			continue;
		} else if (c == '}') {
			if (s->st == C_DECL)
				sheet_rule(h);
			s->st = C_SEL;
			s->sl = 0;
			s->sover = false;
			continue;
		} else if (c == ';' && s->st == C_SEL) {
			/* the end of an @-rule statement, or junk */
			s->sl = 0;
			s->sover = false;
			continue;
		}
		if (s->st == C_SEL) {
			if (s->sl < HTML_CSS_SEL)
				s->sel[s->sl++] = c;
			else
				s->sover = true;
		} else if (s->st == C_DECL) {
			if (s->dl < HTML_CSS_DECL)
				s->dec[s->dl++] = c;
			else
				s->dover = true;
		}
	}
}

typedef struct cmatch {
	uint16_t spec;
	uint32_t order;
} cmatch;

static unsigned
sheet_lookup(const hsheet *s, uint32_t key, int kind, const char *name, size_t nlen,
    uint32_t taghash, cmatch *m, unsigned nm)
{
	for (uint32_t i = s->bucket[key & 255]; i; i = s->r[i - 1].next) {
		const css_rule *r = &s->r[i - 1];
		if (r->key != key || r->kind != kind || r->namelen != nlen)
			continue;
		if (r->tag && r->tag != taghash)
			continue;
		size_t k;
		for (k = 0; k < nlen; k++)
			if (s->names[r->name + k] != lower((unsigned char)name[k]))
				break;
		if (k != nlen)
			continue;
		if (nm < HTML_CSS_MATCH) {
			m[nm].spec = r->spec;
			m[nm].order = i - 1;
			nm++;
		}
	}
	return nm;
}

/* ---- frames ------------------------------------------------------------------ */
static float
luminance(uint32_t rgb)
{
	return 0.2126f * srgb_lin[rgb >> 16 & 255] + 0.7152f * srgb_lin[rgb >> 8 & 255] +
	    0.0722f * srgb_lin[rgb & 255];
}

/* a over b with a's alpha */
static uint32_t
blend(uint32_t a, uint32_t b)
{
	unsigned al = a >> 24, r, g, bl;

	r = ((a >> 16 & 255) * al + (b >> 16 & 255) * (255 - al) + 127) / 255;
	g = ((a >> 8 & 255) * al + (b >> 8 & 255) * (255 - al) + 127) / 255;
	bl = ((a & 255) * al + (b & 255) * (255 - al) + 127) / 255;
	return r << 16 | g << 8 | bl;
}

static uint8_t
color_why(const hframe *f)
{
	if ((f->color >> 24) < 10)
		return R_TRANSPARENT;
	if (f->fl & FR_BGUNK)
		return R_NONE;
	float lt = luminance(blend(f->color, f->bg)), lb = f->bglum;
	float hi = lt > lb ? lt : lb, lo = lt > lb ? lb : lt;
	return (hi + 0.05f) < 1.5f * (lo + 0.05f) ? R_SAMECOLOR : R_NONE;
}

static uint8_t
text_why(const html_parser *h, const hframe *f)
{
	if (f->why)
		return f->why;
	if (f->vwhy)
		return f->vwhy;
	if (f->font <= 0)
		return R_FONT0;
	if (f->font < h->lim.min_font_px)
		return R_FONTSMALL;
	return f->cwhy;
}

static float
style_px(int8_t kind, float v, float font)
{
	return kind == F_FACTOR ? v * font : v;
}

static const float font_size_attr[8] = { 10, 10, 13, 16, 18, 24, 32, 48 };

/* Comments out of a CSS declaration list, in place: each becomes a space,
 * as it separates tokens (display:, a comment and none is display:none; a
 * comment inside a name splits it); strings are kept as they are. */
static size_t
css_uncomment(char *s, size_t n)
{
	char *r = s, *w, *e = s + n, q = 0;

	if (find_byte(s, e, '/') == NULL)
		return n;
	while (r + 1 < e && !(r[0] == '/' && r[1] == '*') && r[0] != '"' && r[0] != '\'')
		r++;
	if (r + 1 >= e)
		return n;
	for (w = r; r < e;) {
		if (q) {
			if (*r == '\\' && r + 1 < e)
				*w++ = *r++;
			else if (*r == q)
				q = 0;
			*w++ = *r++;
		} else if (*r == '"' || *r == '\'') {
			q = *r;
			*w++ = *r++;
		} else if (r + 1 < e && r[0] == '/' && r[1] == '*') {
			char *c;
			for (c = r + 2; c + 1 < e && !(c[0] == '*' && c[1] == '/'); c++)
				;
			r = c + 1 < e ? c + 2 : e;
			*w++ = ' ';
		} else
			*w++ = *r++;
	}
	return (size_t)(w - s);
}

/* an attribute of the tag, its character references decoded (at its first
 * use: most are never looked at, or only through the style cache); the
 * comments of a style attribute taken out */
static hattr *
attr_get(htok *t, int slot)
{
	hattr *a = &t->attr[slot];

	if (!(t->adec & 1u << slot)) {
		t->adec |= 1u << slot;
		a->len = attr_decode(a->v, a->len);
		if (slot == A_STYLE)
			a->len = css_uncomment(a->v, a->len);
	}
	return a;
}

/* presentational attributes: the lowest layer of the cascade */
static void
style_attrs(htok *t, int tag, hstyle *s)
{
	uint32_t c;
	hattr *a;

	if (t->aseen & 1u << A_HIDDEN)
		s->disp = D_HIDDENATTR;
	if (t->aseen & 1u << A_BGCOLOR) {
		a = attr_get(t, A_BGCOLOR);
		if (css_color(a->v, a->len, true, &c))
			s->bgc = 1, s->bg = c;
	}
	if (t->aseen & 1u << A_BACKGROUND && t->attr[A_BACKGROUND].len)
		s->bgi = 1;
	if ((tag == T_FONT && t->aseen & 1u << A_COLOR) || (tag == T_BODY && t->aseen & 1u << A_TEXT)) {
		a = attr_get(t, tag == T_FONT ? A_COLOR : A_TEXT);
		if (css_color(a->v, a->len, true, &c))
			s->col = 1, s->color = c;
	}
	if (tag == T_FONT && t->aseen & 1u << A_SIZE) {
		hattr *a1 = attr_get(t, A_SIZE);
		const char *p = a1->v, *e = p + a1->len;
		float v;
		while (p < e && is_ws(*p))
			p++;
		char sign = p < e && (*p == '+' || *p == '-') ? *p : 0;
		if (css_number(&p, e, &v)) {
			int n = (int)v;
			if (sign)
				n = 3 + n;  /* css_number kept the sign */
			n = n < 1 ? 1 : n > 7 ? 7 : n;
			s->fk = F_PX;
			s->fv = font_size_attr[n];
		}
	}
	if (tag == T_IMG || tag == T_IMAGE) {
		for (int i = 0; i < 2; i++) {
			hattr *d;
			const char *p;
			float v;
			if (!(t->aseen & 1u << (i ? A_HEIGHT : A_WIDTH)))
				continue;
			d = attr_get(t, i ? A_HEIGHT : A_WIDTH);
			p = d->v;
			while (p < d->v + d->len && is_ws(*p))
				p++;
			if (css_number(&p, d->v + d->len, &v) && v >= 0) {
				if (p < d->v + d->len && *p == '%')
					v = v == 0 ? 0 : SZ_NONZERO;
				*(i ? &s->h : &s->w) = v;
			}
		}
	}
}

static int
cmatch_cmp(const cmatch *a, const cmatch *b)
{
	if (a->spec != b->spec)
		return a->spec < b->spec ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* The sheet's rules that match an element into m, in cascade order
 * (specificity, then source order); their count. tagrule: look its tag
 * (tn, hashed taghash) up; id and cls: its id and class attributes (n 0:
 * none or not looked up). For the element being started and for one
 * held until the sheet is complete. */
static unsigned
sheet_match(const hsheet *sh, bool tagrule, uint32_t taghash, const char *tn, size_t tl,
    const char *id, size_t nid, const char *cls, size_t ncls, cmatch *m)
{
	unsigned nm = 0;

	if (tagrule)
		nm = sheet_lookup(sh, taghash ^ SALT_TAG, SEL_TAG, tn, tl, 0, m, nm);
	if (nid) {
		trim(&id, &nid);
		if (nid)
			nm = sheet_lookup(sh, name_hash(id, nid) ^ SALT_ID, SEL_ID, id, nid, taghash, m, nm);
	}
	if (ncls) {
		const char *p = cls, *e = cls + ncls;
		for (unsigned k = 0; k < HTML_CLASSES && p < e; k++) {
			while (p < e && is_ws(*p))
				p++;
			const char *q = p;
			while (q < e && !is_ws(*q))
				q++;
			if (q > p)
				nm = sheet_lookup(sh, name_hash(p, (size_t)(q - p)) ^ SALT_CLASS, SEL_CLASS, p,
				    (size_t)(q - p), taghash, m, nm);
			p = q;
		}
	}
	for (unsigned i = 1; i < nm; i++)  /* insertion sort: a handful */
		for (unsigned j = i; j > 0 && cmatch_cmp(&m[j], &m[j - 1]) < 0; j--) {
			cmatch x = m[j];
			m[j] = m[j - 1];
			m[j - 1] = x;
		}
	return nm;
}

/* attributes that take part in the cascade of an element tag (style_attrs) */
#define STYLE_ATTRS (1u << A_STYLE | 1u << A_HIDDEN | 1u << A_BGCOLOR | 1u << A_BACKGROUND)
static inline uint32_t
style_attrs_of(int tag)
{
	return STYLE_ATTRS | (tag == T_FONT ? 1u << A_COLOR | 1u << A_SIZE : 0) |
	    (tag == T_BODY ? 1u << A_TEXT : 0) |
	    (tag == T_IMG || tag == T_IMAGE ? 1u << A_WIDTH | 1u << A_HEIGHT : 0);
}

/* Could the element being started have a style of its own? When not, its
 * frame is its parent's (frame_make with no style), which style_for and
 * frame_make would work out the long way. */
static bool
styled(const htok *t, int tag)
{
	const hsheet *sh = &t->h->sheet;
	uint32_t a = t->aseen;

	if (a & style_attrs_of(tag) || sh->tagrule[tag] || tagdefs[tag].fl & TF_STYLED ||
	    (tag == T_A && a & 1u << A_HREF))
		return true;
	if (a & 1u << A_CLASS && (sh->kinds & 1 << SEL_CLASS || t->attr[A_CLASS].trunc))
		return true;
	if (a & 1u << A_ID && (sh->kinds & 1 << SEL_ID || t->attr[A_ID].trunc))
		return true;
	return false;
}

/* The frames made in a document depend on its style sheet and its link
 * colour: they are forgotten when the next document starts. */
static void
style_memo_clear(style_cache *c)
{
	for (unsigned i = 0; i < FRAME_MEMO; i++)
		c->memo[i].se = NULL, c->memo[i].lru = 0;
}

/* empty, as at the first style attribute of a parser */
static void
style_cache_clear(style_cache *c)
{
	memset(c->mru, 0, sizeof(c->mru));
	for (unsigned i = 0; i < 2 * STYLE_SETS; i++)
		c->e[i].len = 0, c->e[i].gen = 0;
	style_memo_clear(c);
}

/* the parser's style cache, made at its first use; NULL when out of memory */
static style_cache *
style_cache_get(html_parser *h)
{
	if (h->styles == NULL && (h->styles = malloc(sizeof(style_cache))) != NULL)
		style_cache_clear(h->styles);
	return h->styles;
}

/* The parsed declarations of the style attribute of the tag: from the cache
 * (keyed by the value as written: references are decoded only to parse it)
 * or parsed into tmp; NULL when there are too many to list (the caller
 * parses as it goes, the value decoded). */
static const css_decl *
style_lookup(htok *t, style_cache *cache, css_decl *tmp, int *nd)
{
	hattr *a = t->attr + A_STYLE;
	const char *s = a->v;
	size_t n = a->len;
	style_entry *set, *x;
	unsigned k;

	if (cache == NULL || n >= STYLE_CACHE_LEN || n == 0) {
		a = attr_get(t, A_STYLE);
		*nd = style_decls(a->v, a->len, tmp, HTML_CSS_DECLS);
		return *nd < 0 ? NULL : tmp;
	}
	k = style_set(s, n);
	set = &cache->e[2 * k];
	for (unsigned i = 0; i < 2; i++)
		if (set[i].len == n && memcmp(set[i].s, s, n) == 0) {
			cache->mru[k] = (uint8_t)i;
			*nd = set[i].nd;
			return set[i].d;
		}
	char raw[STYLE_CACHE_LEN];
	memcpy(raw, s, n);
	a = attr_get(t, A_STYLE);
	*nd = style_decls(a->v, a->len, tmp, HTML_CSS_DECLS);
	if (*nd < 0)
		return NULL;
	if (*nd <= STYLE_CACHE_DECL) {
		/* in place of the one used less recently */
		cache->mru[k] ^= 1;
		x = &set[cache->mru[k]];
		x->gen++;
		x->len = (uint16_t)n;
		x->nd = (int8_t)*nd;
		memcpy(x->s, raw, n);
		memcpy(x->d, tmp, (size_t)*nd * sizeof(css_decl));
	}
	return tmp;
}

/* The cascade for the element being started: attributes, sheet, inline. */
static void
style_for(htok *t, int tag, hstyle *s)
{
	html_parser *h = t->h;
	hsheet *sh = &h->sheet;
	cmatch m[HTML_CSS_MATCH];
	unsigned nm = 0, i, j;
	bool sheet_imp = false, inline_imp = false;
	hattr *st = &t->attr[A_STYLE];
	bool has_style = t->aseen & 1u << A_STYLE && st->len;

	if (sh->kinds & SHEET_TAGHASH && !t->nhashed) {
		t->nhash = name_fnv(t->name, t->nlen);
		t->nhashed = true;
	}
	style_init(s);
	style_attrs(t, tag, s);
	if (sh->any) {
		const hattr *id = t->aseen & 1u << A_ID && sh->kinds & 1 << SEL_ID ? attr_get(t, A_ID) : NULL;
		const hattr *cls = t->aseen & 1u << A_CLASS && sh->kinds & 1 << SEL_CLASS
		    ? attr_get(t, A_CLASS) : NULL;

		nm = sheet_match(sh, sh->kinds & 1 << SEL_TAG && sh->tagrule[tag], t->nhash, t->name, t->nlen,
		    id ? id->v : NULL, id ? id->len : 0, cls ? cls->v : NULL, cls ? cls->len : 0, m);
		for (i = 0; i < nm; i++) {
			const css_rule *r = &sh->r[m[i].order];
			for (j = 0; j < r->nd; j++) {
				const css_decl *d = &sh->d[r->d0 + j];
				if (d->imp)
					sheet_imp = true;
				else
					style_apply(s, d);
			}
		}
	}
	css_decl tmp[HTML_CSS_DECLS];
	const css_decl *sd = NULL;
	int snd = 0;
	if (has_style) {
		sd = style_lookup(t, style_cache_get(h), tmp, &snd);
		if (sd == NULL) {
			inline_imp = style_inline(st->v, st->len, s, 0);
			s->inl = s->inl_imp = ~0u;  /* too many to say: all of them */
		} else
			for (i = 0; i < (unsigned)snd; i++) {
				s->inl |= 1u << sd[i].prop;
				if (sd[i].imp) {
					inline_imp = true;
					s->inl_imp |= 1u << sd[i].prop;
				} else
					style_apply(s, &sd[i]);
			}
	}
	if (sheet_imp)
		for (i = 0; i < nm; i++) {
			const css_rule *r = &sh->r[m[i].order];
			for (j = 0; j < r->nd; j++)
				if (sh->d[r->d0 + j].imp)
					style_apply(s, &sh->d[r->d0 + j]);
		}
	if (inline_imp && sd == NULL)
		style_inline(st->v, st->len, s, 1);
	else if (inline_imp)
		for (i = 0; i < (unsigned)snd; i++)
			if (sd[i].imp)
				style_apply(s, &sd[i]);
}

/* the flags of a frame that its tag's flags tfl give */
static inline uint8_t
tag_frame_fl(uint32_t tfl)
{
	return (uint8_t)((tfl & TF_BLOCK ? FR_BLOCK : 0) | (tfl & TF_FOREIGN ? FR_FOREIGN : 0) |
	    (tfl & TF_TABLECTX ? FR_TABLECTX : 0));
}

/* frame_make() for an element with no style of its own: all as the
 * parent's but the structure */
static inline void
frame_inherit(htok *t, hframe *f, const hframe *par, int tag, uint8_t force)
{
	*f = *par;
	f->tag = (uint16_t)tag;
	f->hash = t->nhash;
	f->fl = (uint8_t)((par->fl & (FR_FOREIGN | FR_BGUNK)) | tag_frame_fl(tagdefs[tag].fl));
	if (!par->why && force) {
		f->why = force;
		f->twhy = text_why(t->h, f);
	}
}

/* Fill f for an element tag below par, with computed style s (NULL: the
 * element has none, see styled()) and an imposed reason (or R_NONE). */
static void
frame_make(htok *t, hframe *f, const hframe *par, int tag, const hstyle *s, uint8_t force)
{
	html_parser *h = t->h;
	uint32_t tfl = tagdefs[tag].fl;
	uint8_t why = par->why;

	if (s == NULL) {
		frame_inherit(t, f, par, tag, force);
		return;
	}

	f->tag = (uint16_t)tag;
	f->hash = t->nhash;
	f->fl = (uint8_t)((par->fl & (FR_FOREIGN | FR_BGUNK)) | tag_frame_fl(tfl));
	f->vwhy = par->vwhy;
	f->opacity = par->opacity;
	f->font = par->font;
	f->color = par->color;
	f->bg = par->bg;
	f->bglum = par->bglum;
	if (!why)
		why = force;
	if (!why && ((t->aseen & 1u << A_STYLE && t->attr[A_STYLE].trunc) ||
	    (t->aseen & 1u << A_CLASS && t->attr[A_CLASS].trunc) ||
	    (t->aseen & 1u << A_ID && t->attr[A_ID].trunc)))
		why = R_ATTRLONG;

	/* display, and the clipping that only boxes do */
	if (!why && (s->disp == D_NONE || s->disp == D_HIDDENATTR))
		why = s->disp == D_NONE ? R_DISPLAY : R_HIDDENATTR;
	if (s->vis >= 0)
		f->vwhy = s->vis ? R_VISIBILITY : R_NONE;
	if (s->opacity >= 0) {
		f->opacity *= s->opacity;
		if (!why && f->opacity < 0.04f)
			why = R_OPACITY;
	}
	if (!why && s->mso == 1)
		why = R_MSO;
	bool inl = s->disp ? s->disp == D_INLINE : !(tfl & (TF_BLOCK | TF_TABLE));
	if (!why && !inl && !(tfl & TF_TABLE)) {
		/* a box lower than the smallest font shown hides its text too */
		float lo = h->lim.min_font_px;
		if (s->ovy == 1 && (s->h == 0 || s->mh == 0))
			why = s->h == 0 ? R_HEIGHT0 : R_MAXHEIGHT0;
		else if (s->ovy == 1 && ((s->h > 0 && s->h < lo) || (s->mh > 0 && s->mh < lo)))
			why = s->h > 0 && s->h < lo ? R_HEIGHTSMALL : R_MAXHEIGHTSMALL;
		else if (s->ovx == 1 && (s->w == 0 || s->mw == 0))
			why = s->w == 0 ? R_WIDTH0 : R_MAXWIDTH0;
	}
	if (!why && s->clip == 1 && s->pos == 1)
		why = R_CLIP;  /* clip applies to absolute and fixed boxes only */
	if (!why && s->cpath == 1)
		why = R_CLIPPATH;
	if (s->fk >= 0)
		f->font = s->fk == F_FACTOR ? par->font * s->fv : s->fv;
	else if (tag == T_SMALL || tag == T_SUB || tag == T_SUP)
		f->font = par->font / 1.2f;
	if (!why && s->pos == 1 &&
	    ((s->lk >= 0 && style_px(s->lk, s->left, f->font) <= -1000) ||
	     (s->tk >= 0 && style_px(s->tk, s->top, f->font) <= -1000)))
		why = R_OFFSCREEN;
	if (!why && s->ik >= 0 && style_px(s->ik, s->indent, f->font) <= -1000)
		why = R_OFFSCREEN;
	if (!why && !inl && (s->tscale >= 0 || s->pscale >= 0 || s->toff == 1)) {
		/* transforms move boxes, not the text of an inline element */
		float k = (s->tscale >= 0 ? s->tscale : 1) * (s->pscale >= 0 ? s->pscale : 1);
		if (k * f->font < h->lim.min_font_px)
			why = R_TRANSFORM;
		else if (s->toff == 1)
			why = R_OFFSCREEN;
	}
	/* a closed <dialog> is not shown, unless the page says how to show it */
	if (!why && tag == T_DIALOG && !(t->aseen & 1u << A_OPEN) && (s->disp == 0 || s->disp == D_HIDDENATTR))
		why = R_DIALOG;
	f->why = why;

	/* colours */
	bool recolor = false;
	if (tag == T_A && t->aseen & 1u << A_HREF)
		f->color = h->linkcolor, recolor = true;
	if (s->col == 1)
		f->color = s->color, recolor = true;
	else if (s->col == 2)
		f->color = par->color, recolor = true;
	if (s->bgi == 1) {
		f->fl |= FR_BGUNK;
		recolor = true;
	}
	if (s->bgc == 1 && (s->bg >> 24) >= 10) {
		f->bg = blend(s->bg, par->bg);
		f->bglum = luminance(f->bg);
		if (s->bgi != 1)
			f->fl &= (uint8_t)~FR_BGUNK;
		recolor = true;
	}
	f->cwhy = recolor ? color_why(f) : par->cwhy;
	f->twhy = text_why(h, f);
	/* the content of a closed <details> but its summary is not shown */
	if (tag == T_DETAILS && !(t->aseen & 1u << A_OPEN))
		f->fl |= FR_CLOSED;
}

/* ---- links held to the end of the document --------------------------------------- */
/* Links are reported at html_finish(), so that the rules of a <style> that
 * comes after a link still apply to it (late_why()). Up to HTML_HOLD_MAX of
 * their facts are held; past that, the links held so far are reported at
 * once, as they are. */

/* room for need more bytes in an arena of at most max bytes */
static bool
arena_room(char **p, size_t *len, size_t *cap, size_t need, size_t max)
{
	size_t n = *cap ? *cap : 32768;
	char *np;

	if (*len + need <= *cap)
		return true;
	if (*len + need > max)
		return false;
	while (n < *len + need)
		n *= 2;
	if (n > max)
		n = max;
	if ((np = realloc(*p, n)) == NULL)
		return false;
	*p = np;
	*cap = n;
	return true;
}

/* report the links held, in order */
static void
hold_flush(html_parser *h)
{
	for (unsigned i = 0; i < h->nheld; i++) {
		const hheld *k = &h->held[i];
		html_link l;
		l.tag = k->tag;
		l.href = k->off[HS_HREF] == UINT32_MAX ? NULL : h->hold + k->off[HS_HREF];
		l.text = h->hold + k->off[HS_TEXT];
		l.visible_text = h->hold + k->off[HS_VTEXT];
		l.alt = h->hold + k->off[HS_ALT];
		l.visible_alt = h->hold + k->off[HS_VALT];
		l.before = h->hold + k->off[HS_BEFORE];
		l.after = h->hold + k->off[HS_AFTER];
		l.visible = k->visible;
		l.why = k->why;
		l.href_truncated = k->trunc;
		if (h->cb.link)
			h->cb.link(h->ud, &l);
	}
	h->nheld = 0;
	h->holdlen = 0;
	if (h->tok[0].nlink == 0 && h->tok[1].nlink == 0 && !h->pend.on) {
		h->chainlen = 0;  /* no link left that has one */
		h->chaingen++;
		h->celrules = UINT32_MAX;
	}
}

/* hold the facts of a link (and its chain); len: the lengths of its strings
 * (known where they are made: no strlen) */
static void
hold_add(html_parser *h, const html_link *l, uint32_t chain, const size_t len[HS_COUNT])
{
	const char *str[HS_COUNT] = {
		l->href, l->text, l->visible_text, l->alt, l->visible_alt, l->before, l->after,
	};
	size_t need = 0;
	hheld *k;

	for (int i = 0; i < HS_COUNT; i++)
		need += (str[i] ? len[i] : 0) + 1;
	for (int tries = 0;; tries++) {
		if (grow((void **)&h->held, &h->heldcap, sizeof(hheld), h->nheld + 1, UINT32_MAX / 2) &&
		    arena_room(&h->hold, &h->holdlen, &h->holdcap, need, HTML_HOLD_MAX))
			break;
		if (tries || h->nheld == 0) {
			/* no room at all: reported now, as it is */
			hold_flush(h);
			if (h->cb.link)
				h->cb.link(h->ud, l);
			return;
		}
		hold_flush(h);
	}
	k = &h->held[h->nheld++];
	k->tag = l->tag;
	k->why = l->why;
	k->visible = l->visible;
	k->trunc = l->href_truncated;
	k->chain = chain;
	for (int i = 0; i < HS_COUNT; i++) {
		if (str[i] == NULL) {
			k->off[i] = UINT32_MAX;
			continue;
		}
		k->off[i] = (uint32_t)h->holdlen;
		copy_var(h->hold + h->holdlen, str[i], len[i] + 1);
		h->holdlen += len[i] + 1;
	}
}

/* ---- text and links ------------------------------------------------------------- */
static void pend_deliver(html_parser *h);

static bool
link_budget(html_parser *h)
{
	if (h->links >= h->lim.max_links) {
		h->links++;
		limit_hit(h, "MaxLinks");
		return false;
	}
	h->links++;
	return true;
}

/* "after" is complete at the next block or link; the raw buffer bounds it too */
static void
pend_check(html_parser *h)
{
	if (h->pend.araw.len >= h->pend.araw.cap)
		pend_deliver(h);
}

static void
pend_deliver(html_parser *h)
{
	hpend *pd = &h->pend;

	if (!pd->on)
		return;
	pd->on = false;
	pd->len[HS_AFTER] = cook(pd->araw.p, pd->araw.len, pd->all, COOK_TEXT, pd->after, HTML_AROUND,
	    NULL);
	if (pd->url) {
		/* the text around a URL in raw text */
		size_t b = pd->len[HS_BEFORE], a = pd->len[HS_AFTER], n = 0;
		if (b > HTML_TEXT_MAX)
			b = HTML_TEXT_MAX;
		memcpy(pd->text, pd->before, b);
		n = b;
		if (a && n + 1 + a <= HTML_TEXT_MAX) {
			if (n)
				pd->text[n++] = ' ';
			memcpy(pd->text + n, pd->after, a);
			n += a;
		}
		pd->text[n] = 0;
		pd->len[HS_TEXT] = n;
	}
	hold_add(h, &pd->l, pd->chain, pd->len);
}

/* the pending link is taken: fill the parts every kind has */
static hpend *
pend_take(htok *t, const char *tag, const char *href, size_t hlen, bool has, bool trunc,
    bool visible, uint8_t why)
{
	html_parser *h = t->h;
	hpend *pd = &h->pend;
	size_t n = hlen;

	pend_deliver(h);
	if (n > h->lim.max_url) {
		n = h->lim.max_url;
		while (n > 0 && ((unsigned char)href[n] & 0xc0) == 0x80)
			n--;
		trunc = true;
	}
	copy_var(pd->href, href, n);
	pd->href[n] = 0;
	pd->l.tag = tag;
	pd->l.href = has ? pd->href : NULL;
	pd->l.href_truncated = trunc;
	pd->l.visible = visible;
	pd->l.why = visible ? NULL : html_reasons[why ? why : R_NOCONTENT];
	pd->l.text = pd->text;
	pd->l.visible_text = pd->vtext;
	pd->l.alt = pd->alt;
	pd->l.visible_alt = pd->valt;
	pd->l.before = pd->before;
	pd->l.after = pd->after;
	pd->text[0] = pd->vtext[0] = pd->alt[0] = pd->valt[0] = pd->before[0] = pd->after[0] = 0;
	memset(pd->len, 0, sizeof(pd->len));
	pd->len[HS_HREF] = n;
	pd->all = !visible;
	pd->url = false;
	pd->owner = t;
	pd->chain = 0;
	buf_reset(&pd->araw);
	pd->on = true;
	return pd;
}

/* "before" of a link starting now, both ways */
/* "before" of a link starting now: the text shown (vis), or all of it (all),
 * whichever is asked for (NULL: not needed), and their lengths (*vlen,
 * *alen). A short window is tried first. */
static void
link_before(htok *t, char *vis, size_t *vlen, char *all, size_t *alen)
{
	html_parser *h = t->h;
	char *win = h->scratch + SC_WIN, *tmp = h->scratch + SC_COOK;

	for (size_t window = HTML_AROUND + 120;; window = HTML_BEFORE_SCAN) {
		uint8_t cls0;
		size_t ws = window_start(&t->ring, window, &cls0), n = t->ring.len - ws, got = 0;
		const char *src = t->ring.p + ws;

		if (cls0) {
			/* the window starts inside a run: lead it with the run's mark */
			win[0] = 0;
			win[1] = (char)cls0;
			memcpy(win + 2, src, n);
			src = win;
			n += 2;
		}
		if (vis)
			got = *vlen = cook_tail(src, n, false, tmp, HTML_BEFORE_SCAN + 8, vis, HTML_AROUND);
		if (all)
			got = *alen = cook_tail(src, n, true, tmp, HTML_BEFORE_SCAN + 8, all, HTML_AROUND);
		if (got >= HTML_AROUND - 8 || ws == 0 || window == HTML_BEFORE_SCAN)
			return;
	}
}

/* clean an href: decoded already; ASCII space and controls trimmed, tab and
 * newlines removed (as URL parsing does) */
static size_t
href_clean(char *s, size_t n)
{
	size_t i, w = 0;

	while (n && (unsigned char)s[n - 1] <= ' ')
		n--;
	for (i = 0; i < n && (unsigned char)s[i] <= ' '; i++)
		;
	if (i > 0)
		memmove(s, s + i, n - i);
	n -= i;
	/* tabs and newlines inside: rare */
	i = 0;
#ifdef __SSE2__
	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		unsigned m = (unsigned)_mm_movemask_epi8(
		    _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8('\r')), v));
		if (m) {
			i += (size_t)__builtin_ctz(m);
			break;
		}
	}
#endif
	for (; i < n && (unsigned char)s[i] > '\r'; i++)
		;
	for (w = i; i < n; i++)
		if (s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			s[w++] = s[i];
	return w;
}

static void
alt_add(hbuf *b, const char *s, size_t n)
{
	if (n == 0)
		return;
	if (b->len && b->len < b->cap)
		b->p[b->len++] = ' ';
	if (n > b->cap - b->len)
		n = b->cap - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void link_close(htok *t);
static inline const hframe *parent_for(const htok *t, int tag);

/* bytes of a chain element with its names, a multiple of 4 */
static size_t
cel_size(size_t names)
{
	return (sizeof(hcel) + names + 3) & ~(size_t)3;
}

/* append a chain element (there is room); its offset + 1. Its fields are
 * stored one by one where it goes: a copy of one just made on the stack
 * would load what was stored a moment ago in wider pieces, which stalls. */
static inline uint32_t
cel_add(html_parser *h, uint32_t up, int tag, uint16_t ncls, uint16_t nid, uint32_t rules,
    uint32_t inl, uint32_t inl_imp, const char *cls, const char *id)
{
	size_t off = h->chainlen;
	hcel *e = (hcel *)(void *)(h->chains + off);  /* off is a multiple of 4 */

	e->up = up;
	e->tag = (uint16_t)tag;
	e->ncls = ncls;
	e->nid = nid;
	e->rules = rules;
	e->inl = inl;
	e->inl_imp = inl_imp;
	if (rules < h->celrules)
		h->celrules = rules;
	if (ncls)
		copy_var(h->chains + off + sizeof(*e), cls, ncls);
	if (nid)
		copy_var(h->chains + off + sizeof(*e) + ncls, id, nid);
	h->chainlen += cel_size((size_t)ncls + nid);
	return (uint32_t)off + 1;
}

/*
 * Keep the chain of a link that is shown for now, for late_why(): the
 * element at stack index at, or (self not NULL) the void element being read
 * with the style self, below the element at; then the elements their look
 * comes from, up to the root. The elements are kept once, however many
 * links are in them. Returns the hcel of the link + 1, or 0 when there is
 * no room.
 */
static uint32_t
chain_keep(htok *t, unsigned at, const hstyle *self)
{
	html_parser *h = t->h;
	unsigned path[HTML_CHAIN], n = 0, i;
	uint32_t up = 0;
	size_t need = 0;
	hattr *c = NULL, *d = NULL;
	uint16_t ncls = 0, nid = 0;

	if (t->inner || t->side == NULL)
		return 0;
	/* the elements not kept yet, from the link up */
	for (i = at; i > 0 && i < t->depth && n < HTML_CHAIN; i = t->side[i].par) {
		const hside *sd = &t->side[i];
		if (sd->cel && sd->gen == h->chaingen) {
			up = sd->cel;
			break;
		}
		path[n++] = i;
		need += cel_size((size_t)sd->ncls + sd->nid);
	}
	if (self != NULL) {
		c = t->aseen & 1u << A_CLASS ? attr_get(t, A_CLASS) : NULL;
		d = t->aseen & 1u << A_ID ? attr_get(t, A_ID) : NULL;
		ncls = (uint16_t)(c == NULL ? 0 : c->len < HTML_ELEM_NAMES ? c->len : HTML_ELEM_NAMES);
		nid = (uint16_t)(d == NULL ? 0 : d->len < HTML_ELEM_NAMES ? d->len : HTML_ELEM_NAMES);
		need += cel_size((size_t)ncls + nid);
	}
	if (!arena_room(&h->chains, &h->chainlen, &h->chaincap, need, HTML_HOLD_MAX))
		return 0;
	while (n-- > 0) {
		hside *sd = &t->side[path[n]];
		const char *nm = t->nms ? t->nms + sd->noff : NULL;  /* none kept: no names */
		up = cel_add(h, up, t->st[path[n]].tag, sd->ncls, sd->nid, sd->rules, sd->inl,
		    sd->inl_imp, nm, nm ? nm + sd->ncls : NULL);
		sd->cel = up;
		sd->gen = h->chaingen;
	}
	if (self != NULL) {
		/* the void element last, on top of its chain */
		up = cel_add(h, up, T_AREA, ncls, nid, h->sheet.nr, self->inl, self->inl_imp,
		    c ? c->v : NULL, d ? d->v : NULL);
	}
	return up;
}

static void
link_free(hlink *L)
{
	free(L->href);
	free(L->raw.p);
	free(L->alt.p);
	free(L->valt.p);
	L->href = L->raw.p = L->alt.p = L->valt.p = NULL;
}

static bool
link_alloc(html_parser *h, hlink *L)
{
	if (L->raw.p)
		return true;
	L->href = malloc(h->lim.max_url + 1);
	L->raw.p = malloc(HTML_LINK_RAW);
	L->alt.p = malloc(HTML_LINK_ALT);
	L->valt.p = malloc(HTML_LINK_ALT);
	L->raw.cap = HTML_LINK_RAW;
	L->alt.cap = L->valt.cap = HTML_LINK_ALT;
	if (L->href && L->raw.p && L->alt.p && L->valt.p)
		return true;
	link_free(L);
	return false;
}

static void
link_open(htok *t, unsigned at)
{
	html_parser *h = t->h;
	hlink *L;
	hattr *href = attr_get(t, A_HREF);

	if (t->nlink == HTML_LINK_NEST || (t->nlink && !link_alloc(h, &t->link[t->nlink])))
		link_close(t);
	if (!link_alloc(h, &t->link[t->nlink]))
		return;
	L = &t->link[t->nlink++];
	pend_deliver(h);
	L->open = true;
	L->at = at;
	t->st[at].fl |= FR_LINK;
	L->has_href = t->aseen & 1u << A_HREF;
	L->hlen = L->has_href ? href_clean(href->v, href->len) : 0;
	L->trunc = L->has_href && href->trunc;
	if (L->hlen > h->lim.max_url) {
		L->hlen = h->lim.max_url;
		while (L->hlen > 0 && ((unsigned char)href->v[L->hlen] & 0xc0) == 0x80)
			L->hlen--;
		L->trunc = true;
	}
	copy_var(L->href, href->v, L->hlen);
	L->why = t->st[at].why;
	L->img_shown = false;
	L->img_why = R_NONE;
	buf_reset(&L->raw);
	L->alt.len = L->valt.len = 0;
	L->bvis[0] = L->ball[0] = 0;
	L->bvis_len = L->ball_len = 0;
	L->ball_ok = false;
	if (h->links < h->lim.max_links) {
		/* a hidden element gets the text around it, hidden or not; a
		 * visible one the shown text, and all of it too when its own text
		 * is not shown (colours, font) */
		if (L->why)
			link_before(t, NULL, NULL, L->ball, &L->ball_len);
		else
			link_before(t, L->bvis, &L->bvis_len, t->st[at].twhy ? L->ball : NULL, &L->ball_len);
		L->ball_ok = L->why || t->st[at].twhy;
	}
	L->chain = L->why ? 0 : chain_keep(t, at, NULL);
}

/* does b hold a run of hidden text? */
static bool
has_hidden(const hbuf *b)
{
	const char *p = b->p, *e = b->p + b->len;

	while ((p = memchr(p, 0, (size_t)(e - p))) != NULL && p + 1 < e) {
		if (SEG_REASON((uint8_t)p[1]) != R_NONE)
			return true;
		p += 2;
	}
	return false;
}

/* the reason of the first run of hidden text with something in it */
static uint8_t
first_hidden(const hbuf *b)
{
	const char *p = b->p, *e = b->p + b->len;
	char tmp[8];

	while (p + 2 <= e) {
		uint8_t cls = (uint8_t)p[1];
		const char *s = p + 2, *m = s < e ? memchr(s, 0, (size_t)(e - s)) : NULL;
		const char *end = m ? m : e;
		if (SEG_REASON(cls) != R_NONE && cook(p, (size_t)(end - p), true, COOK_TEXT, tmp, 4, NULL))
			return (uint8_t)SEG_REASON(cls);
		p = end;
	}
	return R_NONE;
}

static void
link_close(htok *t)
{
	html_parser *h = t->h;
	hlink *L;
	hpend *pd;
	char *vt = h->scratch;
	bool shown;
	uint8_t why;

	if (t->nlink == 0)
		return;
	L = &t->link[--t->nlink];
	L->open = false;
	if (L->at < t->depth)
		t->st[L->at].fl &= (uint8_t)~FR_LINK;
	if (!link_budget(h))
		return;
	size_t vlen = cook(L->raw.p, L->raw.len, false, COOK_TEXT, vt, HTML_TEXT_MAX, NULL);
	shown = L->img_shown || vlen > 0;
	why = L->why;
	if (!why && !shown) {
		why = first_hidden(&L->raw);
		if (!why)
			why = L->img_why;
	}
	pd = pend_take(t, "a", L->href, L->hlen, L->has_href, L->trunc, !L->why && shown, why);
	pd->chain = pd->l.visible ? L->chain : 0;
	if (has_hidden(&L->raw))
		pd->len[HS_TEXT] = cook(L->raw.p, L->raw.len, true, COOK_TEXT, pd->text, HTML_TEXT_MAX,
		    NULL);
	else {
		copy_var(pd->text, vt, vlen + 1);
		pd->len[HS_TEXT] = vlen;
	}
	copy_var(pd->vtext, vt, vlen + 1);
	pd->len[HS_VTEXT] = vlen;
	pd->len[HS_ALT] = cook(L->alt.p, L->alt.len, true, COOK_PLAIN, pd->alt, HTML_LINK_ALT, NULL);
	pd->len[HS_VALT] = cook(L->valt.p, L->valt.len, true, COOK_PLAIN, pd->valt, HTML_LINK_ALT,
	    NULL);
	bool bv = pd->l.visible || !L->ball_ok;
	pd->len[HS_BEFORE] = bv ? L->bvis_len : L->ball_len;
	copy_var(pd->before, bv ? L->bvis : L->ball, pd->len[HS_BEFORE] + 1);
}

/* <area href> and <link href>: a link with no content */
static void
link_empty(htok *t, const char *tag, uint8_t why, int textattr, const hstyle *self)
{
	html_parser *h = t->h;
	bool has = t->aseen & 1u << A_HREF;
	hattr *href = has ? attr_get(t, A_HREF) : &t->attr[A_HREF];
	hpend *pd;

	pend_deliver(h);
	if (!link_budget(h))
		return;
	char *bvis = h->scratch + SC_AROUND, *ball = bvis + HTML_AROUND + 1;
	size_t blen = 0;
	if (why == R_NONE)
		link_before(t, bvis, &blen, NULL, NULL);
	else
		link_before(t, NULL, NULL, ball, &blen);
	size_t hl = has ? href_clean(href->v, href->len) : 0;
	pd = pend_take(t, tag, href->v, hl, has, has && href->trunc, why == R_NONE, why);
	if (t->aseen & 1u << textattr) {
		hattr *a = attr_get(t, textattr);
		pd->len[textattr == A_ALT ? HS_ALT : HS_TEXT] = cook(a->v, a->len, true, COOK_PLAIN,
		    textattr == A_ALT ? pd->alt : pd->text, textattr == A_ALT ? HTML_LINK_ALT : HTML_TEXT_MAX,
		    NULL);
		if (why == R_NONE && textattr == A_ALT) {
			memcpy(pd->valt, pd->alt, pd->len[HS_ALT] + 1);
			pd->len[HS_VALT] = pd->len[HS_ALT];
		}
	}
	copy_var(pd->before, why == R_NONE ? bvis : ball, blen + 1);
	pd->len[HS_BEFORE] = blen;
	if (why == R_NONE && self != NULL)
		pd->chain = chain_keep(t, (unsigned)(parent_for(t, T_AREA) - t->st), self);
}

static void tok_text_all(htok *t, const char *p, size_t n, bool verbatim);

/* text with no NUL in it: the white space between two tags, most often, for
 * the block ring alone */
static inline void
tok_text_nonul(htok *t, const char *p, size_t n, bool verbatim)
{
	hbuf *b = &t->ring;
	const hpend *pd = &t->h->pend;
	size_t len = b->len;  /* stores through b->p may alias b: read once */
	char *d = b->p;

	if (n <= 16 && len + n + 2 <= b->cap && t->nlink == 0 && !(pd->on && pd->owner == t)) {
		unsigned run = t->run;
		if (b->run != run || run == 0 || len == 0) {
			b->run = run;
			d[len] = 0;
			d[len + 1] = (char)SEG_CLASS(t->twhy, verbatim);
			len += 2;
		}
		copy_short(d + len, p, n);
		b->len = len + n;
		return;
	}
	tok_text_all(t, p, n, verbatim);
}

/* text with no NUL in it, for every buffer that wants it */
static void
tok_text_all(htok *t, const char *p, size_t n, bool verbatim)
{
	uint8_t cls = SEG_CLASS(t->twhy, verbatim);
	hpend *pd = &t->h->pend;

	seg_ring(&t->ring, p, n, cls, t->run);
	for (unsigned i = 0; i < t->nlink; i++)
		seg_head(&t->link[i].raw, p, n, cls, t->run);
	if (pd->on && pd->owner == t && !pd->url) {
		seg_head(&pd->araw, p, n, cls, t->run);
		pend_check(t->h);
	}
}

static void
tok_text(htok *t, const char *p, size_t n, bool verbatim)
{
	const char *z;

	while ((z = find_nul(p, n)) != NULL) {
		/* a NUL must not pass for a mark: it goes in as 0x01 (dropped later) */
		if (z > p)
			tok_text_nonul(t, p, (size_t)(z - p), verbatim);
		tok_text_nonul(t, "\x01", 1, verbatim);
		n -= (size_t)(z - p) + 1;
		p = z + 1;
	}
	if (n)
		tok_text_nonul(t, p, n, verbatim);
}

/* a block starts or ends */
static void
boundary(htok *t)
{
	hpend *pd = &t->h->pend;

	buf_reset(&t->ring);
	for (unsigned i = 0; i < t->nlink; i++)
		seg_head(&t->link[i].raw, " ", 1, SEG_CLASS(R_NONE, 1), 0);
	if (pd->on && pd->owner == t && !pd->url)
		pend_deliver(t->h);
}

/* boundary() when fl, the flags of an element pushed or popped, say it is a
 * block: whether it is varies from one element to the next, so the ring is
 * reset with no branch on it, and the rest is done when there is a link
 * open or pending (a branch taken a few times per link) */
static inline void
block_edge(htok *t, uint8_t fl)
{
	bool block = (fl & FR_BLOCK) != 0;
	size_t keep = (size_t)block - 1;  /* 0 for a block, all ones else */

	t->ring.len &= keep;
	t->ring.run &= (unsigned)keep;
	if (block & ((t->nlink != 0) | t->h->pend.on))
		boundary(t);
}

/* ---- URLs in raw text ---------------------------------------------------------------- */
static bool
url_stop(int c)
{
	return c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`' ||
	    c == '(' || c == ')' || c == '{' || c == '}' || c == '|' || c == '\\' || c == '^' ||
	    c == 0x7f;
}

static void
url_ring_raw(hurl *u, const char *s, size_t n)
{
	if (n >= HTML_URLRING / 2) {
		memcpy(u->ring, s + n - HTML_URLRING / 2, HTML_URLRING / 2);
		u->rlen = HTML_URLRING / 2;
		return;
	}
	if (u->rlen + n > HTML_URLRING) {
		memmove(u->ring, u->ring + u->rlen - HTML_URLRING / 2, HTML_URLRING / 2);
		u->rlen = HTML_URLRING / 2;
	}
	memcpy(u->ring + u->rlen, s, n);
	u->rlen += n;
}

static void
url_ring(hurl *u, const char *s, size_t n)
{
	const char *z;

	while ((z = find_nul(s, n)) != NULL) {
		url_ring_raw(u, s, (size_t)(z - s));
		url_ring_raw(u, "\x01", 1);
		n -= (size_t)(z - s) + 1;
		s = z + 1;
	}
	url_ring_raw(u, s, n);
}

/* text after a URL, for the pending url link */
static void
url_after(htok *t, const char *s, size_t n)
{
	hpend *pd = &t->h->pend;
	const char *z;

	if (n && pd->on && pd->url && pd->owner == t) {
		if ((z = find_nul(s, n)) != NULL) {
			if (z > s)
				url_after(t, s, (size_t)(z - s));
			url_after(t, "\x01", 1);
			if (z + 1 < s + n)
				url_after(t, z + 1, (size_t)(s + n - z - 1));
			return;
		}
		seg_head(&pd->araw, s, n, SEG_CLASS(t->url.why ? t->url.why : R_HEAD, !t->url.decode),
		    t->run);
		pend_check(t->h);
	}
}

static void
url_done(htok *t)
{
	html_parser *h = t->h;
	hurl *u = &t->url;
	hpend *pd;

	u->in = false;
	u->m = 0;
	if (u->len <= (size_t)(u->https ? 8 : 7) || !link_budget(h))
		return;
	if (u->decode)
		u->len = attr_decode(u->buf, u->len);  /* RCDATA: &amp; and the like */
	size_t w = u->rlen > HTML_URL_WINDOW ? HTML_URL_WINDOW : u->rlen;
	/* the window starts at a character: the ring's bytes are UTF-8, and
	 * the text before the URL is reported as such */
	while (w > 0 && ((unsigned char)u->ring[u->rlen - w] & 0xc0) == 0x80)
		w--;
	char *win = h->scratch + SC_WIN;
	win[0] = 0;
	win[1] = (char)SEG_CLASS(R_NONE, !u->decode);
	memcpy(win + 2, u->ring + u->rlen - w, w);
	pd = pend_take(t, "url", u->buf, u->len, true, u->trunc, false, u->why ? u->why : R_HEAD);
	pd->len[HS_BEFORE] = cook_tail(win, w + 2, true, h->scratch + SC_COOK, HTML_BEFORE_SCAN + 8,
	    pd->before, HTML_AROUND);
	pd->url = true;
}

/* the scheme before the ':' ending just before q, looked for in [s0, q) and
 * before that in the tail: 7 for "http:", 8 for "https:" (prefix lengths
 * with "//"), or 0 */
static size_t
url_scheme(const hurl *u, const char *s0, const char *q)
{
	char b[6];
	int i;

	if ((q > s0 ? q[-1] : u->tail[7]) != ':')
		return 0;
	for (i = 0; i < 6; i++) {
		const char *x = q - 1 - i;
		b[5 - i] = x >= s0 ? *x : u->tail[7 - (s0 - x - 1)];
	}
	if (b[5] != ':')
		return 0;
	if (lower((unsigned char)b[1]) == 'h' && lower((unsigned char)b[2]) == 't' &&
	    lower((unsigned char)b[3]) == 't' && lower((unsigned char)b[4]) == 'p')
		return 7;
	if (lower((unsigned char)b[0]) == 'h' && lower((unsigned char)b[1]) == 't' &&
	    lower((unsigned char)b[2]) == 't' && lower((unsigned char)b[3]) == 'p' &&
	    lower((unsigned char)b[4]) == 's')
		return 8;
	return 0;
}

static void
url_tail(hurl *u, const char *s0, const char *e)
{
	size_t n = (size_t)(e - s0);

	if (n >= 8) {
		memcpy(u->tail, e - 8, 8);
	} else {
		memmove(u->tail, u->tail + n, 8 - n);
		memcpy(u->tail + 8 - n, s0, n);
	}
}

/* raw text of title, style, script, noembed, noframes: find http(s) URLs */
static void
url_feed(htok *t, const char *s, size_t n)
{
	hurl *u = &t->url;
	const char *e = s + n, *s0 = s;

	while (s < e) {
		if (u->in) {
			const char *q = s;
			while (q < e && !url_stop((unsigned char)*q))
				q++;
			size_t k = (size_t)(q - s);
			if (k > t->h->lim.max_url - u->len)
				k = t->h->lim.max_url - u->len, u->trunc = true;
			memcpy(u->buf + u->len, s, k);
			u->len += k;
			s = q;
			if (q < e)
				url_done(t);
			continue;
		}
		/* "http://" or "https://": a '/' after the scheme and ':', then '/' */
		const char *r = s, *hit = NULL;
		size_t pl = 0;
		if (u->m) {
			u->m = 0;
			if (*s == '/')
				hit = s + 1, pl = u->https ? 8 : 7;
		}
		while (hit == NULL) {
			const char *q = find_byte(s, e, '/');
			if (q == NULL) {
				s = e;
				break;
			}
			s = q + 1;
			if ((pl = url_scheme(u, s0, q)) == 0)
				continue;
			if (s == e) {
				u->m = 1;
				u->https = pl == 8;
				break;
			}
			if (*s == '/')
				hit = s + 1;
		}
		if (hit)
			s = hit;
		url_ring(u, r, (size_t)(s - r));
		url_after(t, r, (size_t)(s - r));
		if (hit) {
			/* the prefix belongs to the URL, not to the text around it */
			hpend *pd = &t->h->pend;
			u->rlen = u->rlen > pl ? u->rlen - pl : 0;
			if (pd->on && pd->url && pd->owner == t) {
				if (pd->araw.len >= pl + 2)
					pd->araw.len -= pl;
				else
					buf_reset(&pd->araw);
			}
			pend_deliver(t->h);
			memcpy(u->buf, pl == 8 ? "https://" : "http://", pl);
			u->https = pl == 8;
			u->len = pl;
			u->in = true;
			u->trunc = false;
		}
	}
	url_tail(u, s0, e);
}

static void
url_begin(htok *t, int tag, uint8_t why)
{
	hurl *u = &t->url;

	u->m = 0;
	u->in = u->https = false;
	u->rlen = 0;
	memset(u->tail, 0, sizeof(u->tail));
	u->decode = tag == T_TITLE;
	u->why = why;
}

/* the raw text element ends */
static void
raw_end(htok *t)
{
	hpend *pd = &t->h->pend;

	if (t->url.in)
		url_done(t);
	t->url.m = 0;
	if (pd->on && pd->url && pd->owner == t)
		pend_deliver(t->h);
}

static void
raw_text(htok *t, const char *p, size_t n)
{
	switch (t->rawtag) {
	case T_STYLE:
		if (!t->inner && t->templates == 0)
			sheet_feed(t->h, p, n);  /* a sheet in a comment does not apply */
		url_feed(t, p, n);
		break;
	case T_TITLE:
	case T_SCRIPT:
	case T_NOEMBED:
	case T_NOFRAMES:
		url_feed(t, p, n);
		break;
	case T_TEXTAREA:
		tok_text(t, p, n, false);
		break;
	case T_XMP:
		tok_text(t, p, n, true);
		break;
	}
}

/* ---- tree construction ---------------------------------------------------------------- */
static inline void
tok_refresh(htok *t)
{
	const hframe *top = &t->st[t->depth - 1];
	/* text here is fostered out of the table; told with no branch, as it
	 * varies from one element to the next */
	bool fost = ((top->fl & FR_TABLECTX) != 0) & (top->tab > 0);
	const hframe *f = &t->st[fost ? top->tab - 1 : t->depth - 1];

	t->twhy = f->twhy || !(f->fl & FR_CLOSED) ? f->twhy : R_DETAILS;
}

static void
pop_to(htok *t, unsigned idx)
{
	while (t->depth > idx && t->depth > 1) {
		hframe *f = &t->st[t->depth - 1];
		uint8_t fl = f->fl;
		int tag = f->tag;

		if (fl & FR_LINK && t->nlink && t->link[t->nlink - 1].at == t->depth - 1)
			link_close(t);
		t->depth--;
		t->open[tag]--;
		t->nmlen = t->side[t->depth].noff;
		block_edge(t, fl);
		if (fl & FR_RAW)
			raw_end(t);
		if (tag == T_TEMPLATE && t->templates)
			t->templates--;
		if (tag == T_HEAD && (t->mode == M_IN_HEAD || t->mode == M_IN_HEAD_NOSCRIPT))
			t->mode = M_AFTER_HEAD;
		if (tag == T_NOSCRIPT && t->mode == M_IN_HEAD_NOSCRIPT)
			t->mode = M_IN_HEAD;
	}
	tok_refresh(t);
}

static bool
frame_is(const hframe *f, int tag, uint32_t hash)
{
	return f->tag == tag && (tag != T_OTHER || f->hash == hash);
}

enum { SC_DEFAULT, SC_BUTTON, SC_LIST, SC_TABLE };

/* the open element tag (-1: any heading) in scope, or -1 */
static inline int
scope_find(const htok *t, int tag, uint32_t hash, int sc)
{
	if (tag >= 0 ? t->open[tag] == 0
	    : (t->open[T_H1] | t->open[T_H2] | t->open[T_H3] | t->open[T_H4] | t->open[T_H5] |
	          t->open[T_H6]) == 0)
		return -1;
	for (int i = (int)t->depth - 1; i >= 1; i--) {
		const hframe *f = &t->st[i];
		int ft = f->tag;

		if (tag < 0 ? (tagdefs[ft].fl & TF_HEADING) != 0 : frame_is(f, tag, hash))
			return i;
		if (sc == SC_TABLE) {
			if (ft == T_HTML || ft == T_TABLE || ft == T_TEMPLATE)
				return -1;
			continue;
		}
		if (tagdefs[ft].fl & TF_SCOPE && !(f->fl & FR_FOREIGN))
			return -1;
		if ((sc == SC_BUTTON && ft == T_BUTTON) || (sc == SC_LIST && (ft == T_OL || ft == T_UL)))
			return -1;
	}
	return -1;
}

static inline const hframe *
parent_for(const htok *t, int tag)
{
	const hframe *top = &t->st[t->depth - 1];
	/* fostered out of the table (as tok_refresh, no branch) */
	bool fost = ((top->fl & FR_TABLECTX) != 0) & (top->tab > 0) &
	    !(tagdefs[tag].fl & (TF_TABLE | TF_NOFOSTER));

	return &t->st[fost ? top->tab - 1 : t->depth - 1];
}

/* Push an element with computed style s (NULL: none) or, when ready is not
 * NULL, the frame made for it already. */
/* The reason imposed on an element started in a closed <details>: all of
 * its content is hidden but its first <summary>. */
static inline uint8_t
closed_force(htok *t, int tag, uint8_t force)
{
	if (t->open[T_DETAILS] == 0)
		return force;
	hframe *par = (hframe *)parent_for(t, tag);
	if (!(par->fl & FR_CLOSED))
		return force;
	if (tag == T_SUMMARY && !(par->fl & FR_SUMMARY)) {
		par->fl |= FR_SUMMARY;
		return force;
	}
	return force ? force : R_DETAILS;
}

/* the class and id of the element being started, on the names stack */
static void
side_names(htok *t, hside *sd)
{
	size_t nc = 0, ni = 0;
	hattr *c = NULL, *i = NULL;

	sd->noff = (uint32_t)t->nmlen;
	sd->ncls = sd->nid = 0;
	if (!(t->aseen & (1u << A_CLASS | 1u << A_ID)))
		return;
	if (t->aseen & 1u << A_CLASS)
		c = attr_get(t, A_CLASS), nc = c->len < HTML_ELEM_NAMES ? c->len : HTML_ELEM_NAMES;
	if (t->aseen & 1u << A_ID)
		i = attr_get(t, A_ID), ni = i->len < HTML_ELEM_NAMES ? i->len : HTML_ELEM_NAMES;
	if (t->nmlen + nc + ni > HTML_NAMES_MAX ||
	    (t->nms == NULL && (t->nms = malloc(HTML_NAMES_MAX)) == NULL))
		return;
	if (nc)
		copy_var(t->nms + t->nmlen, c->v, nc);
	if (ni)
		copy_var(t->nms + t->nmlen + nc, i->v, ni);
	t->nmlen += nc + ni;
	sd->ncls = (uint16_t)nc;
	sd->nid = (uint16_t)ni;
}

static inline __attribute__((always_inline)) hframe *
push_frame(htok *t, int tag, const hstyle *s, uint8_t force, const hframe *ready, uint32_t inl,
    uint32_t inl_imp)
{
	html_parser *h = t->h;
	const hframe *par;
	hframe *f;
	hside *sd;

	if (t->depth > h->lim.max_depth || (t->depth + 1 > t->stcap &&
	    !grow((void **)&t->st, &t->stcap, sizeof(hframe), t->depth + 1, h->lim.max_depth + 1)) ||
	    (t->depth + 1 > t->sidecap &&
	    !grow((void **)&t->side, &t->sidecap, sizeof(hside), t->depth + 1, h->lim.max_depth + 1))) {
		t->over++;
		limit_hit(h, "MaxHtmlDepth");
		return NULL;
	}
	par = parent_for(t, tag);
	f = &t->st[t->depth];
	if (ready != NULL) {
		*f = *ready;
		f->hash = t->nhash;
	} else if (s == NULL)
		frame_inherit(t, f, par, tag, force);
	else
		frame_make(t, f, par, tag, s, force);
	sd = &t->side[t->depth];
	sd->rules = h->sheet.nr;
	sd->par = (uint32_t)(par - t->st);
	sd->inl = inl;
	sd->inl_imp = inl_imp;
	sd->cel = 0;
	if (t->aseen & (1u << A_CLASS | 1u << A_ID))
		side_names(t, sd);
	else {
		sd->noff = (uint32_t)t->nmlen;
		sd->ncls = sd->nid = 0;
	}
	f->tab = tag == T_TABLE ? t->depth : t->st[t->depth - 1].tab;
	t->open[tag]++;
	t->depth++;
	block_edge(t, f->fl);
	if (tag == T_TEMPLATE)
		t->templates++;
	tok_refresh(t);
	return f;
}

static inline hframe *
push(htok *t, int tag, const hstyle *s, uint8_t force)
{
	return push_frame(t, tag, s, force, NULL, s ? s->inl : 0, s ? s->inl_imp : 0);
}

/* the bits of a float: looks are told apart as memcmp would */
static inline uint32_t
fbits(float v)
{
	uint32_t b;

	memcpy(&b, &v, sizeof(b));
	return b;
}

static void
look_of(const hframe *f, hlook *k)
{
	k->why = f->why;
	k->vwhy = f->vwhy;
	k->cwhy = f->cwhy;
	k->fl = f->fl & (FR_FOREIGN | FR_BGUNK);
	k->opacity = f->opacity;
	k->font = f->font;
	k->bglum = f->bglum;
	k->color = f->color;
	k->bg = f->bg;
}

/* does k equal look_of(f)? Compared field by field, not with memcmp of a
 * look just made: wide loads of bytes stored one by one stall. */
static inline bool
look_is(const hlook *k, const hframe *f)
{
	return k->why == f->why && k->vwhy == f->vwhy && k->cwhy == f->cwhy &&
	    k->fl == (f->fl & (FR_FOREIGN | FR_BGUNK)) && fbits(k->opacity) == fbits(f->opacity) &&
	    fbits(k->font) == fbits(f->font) && fbits(k->bglum) == fbits(f->bglum) &&
	    k->color == f->color && k->bg == f->bg;
}

/* The style cache entry of the element being started when its computed
 * style is that entry's and the style sheet's alone: its only attribute of
 * the cascade is a style attribute (in the cache), or it has none
 * (memo_nostyle); no rule naming a class or an id can apply, only rules
 * naming its tag, which the sheet's number of rules tells; and it is not
 * one of the elements with an open attribute. Then frame_make depends on
 * that entry, the tag, the imposed reason, the style sheet, the look of the
 * parent and, for an <a href>, the document's link colour alone. NULL
 * otherwise. */
static const style_entry *
frame_memo_entry(htok *t, int tag)
{
	const hsheet *sh = &t->h->sheet;
	style_cache *c;
	uint32_t a = t->aseen, cascade = a & style_attrs_of(tag);
	hattr *st = &t->attr[A_STYLE];

	if ((cascade != 0 && cascade != 1u << A_STYLE) || tag == T_DETAILS || tag == T_DIALOG ||
	    (tag == T_OTHER && sh->tagrule[T_OTHER]) ||
	    (a & 1u << A_CLASS && (sh->kinds & 1 << SEL_CLASS || t->attr[A_CLASS].trunc)) ||
	    (a & 1u << A_ID && (sh->kinds & 1 << SEL_ID || t->attr[A_ID].trunc)))
		return NULL;
	if (cascade == 0)
		return style_cache_get(t->h) ? &memo_nostyle : NULL;
	if ((c = t->h->styles) == NULL || st->trunc || st->len == 0 || st->len >= STYLE_CACHE_LEN)
		return NULL;
	style_entry *set = &c->e[2 * style_set(st->v, st->len)];
	for (unsigned i = 0; i < 2; i++)
		if (set[i].len == st->len && memcmp(set[i].s, st->v, st->len) == 0)
			return &set[i];
	return NULL;
}

/* push an element that styled() says may have a style of its own */
static hframe *
push_styled(htok *t, int tag, uint8_t force)
{
	const style_entry *se = frame_memo_entry(t, tag);
	uint32_t rules = t->h->sheet.nr, link = t->h->linkcolor;
	bool href = tag == T_A && t->aseen & 1u << A_HREF;
	fmemo *m = NULL;
	hlook k;
	hstyle s;
	hframe *f;

	if (se != NULL) {
		style_cache *c = t->h->styles;
		size_t i = se == &memo_nostyle ? 2 * STYLE_SETS : (size_t)(se - c->e);
		const hframe *par = parent_for(t, tag);

		m = &c->memo[(i * 7 + (unsigned)tag * 5 + par->why + par->cwhy) * 2 & (FRAME_MEMO - 1)];
		unsigned w;
		for (w = 0; w < 2; w++)
			if (m[w].se == se && m[w].gen == se->gen && m[w].tag == tag &&
			    m[w].force == force && m[w].rules == rules && m[w].href == href &&
			    (!href || m[w].link == link) && look_is(&m[w].par, par))
				break;
		/* the hit taken out of the loop: GCC deems an early return from
		 * it unlikely and copies the frame with a slow "rep movs" */
		if (w < 2) {
			m[0].lru = (uint8_t)(w ^ 1);
			return push_frame(t, tag, NULL, force, &m[w].out, m[w].inl, m[w].inl_imp);
		}
		m += m[0].lru;  /* replaced: the one of the two used less recently */
		c->memo[(size_t)(m - c->memo) & ~(size_t)1].lru ^= 1;
		look_of(par, &k);  /* push may move the stack */
	}
	style_for(t, tag, &s);
	f = push(t, tag, &s, force);
	if (f != NULL && m != NULL && (se->len || se == &memo_nostyle)) {
		m->se = se;
		m->gen = se->gen;
		m->rules = rules;
		m->link = link;
		m->href = href;
		m->tag = (uint16_t)tag;
		m->force = force;
		m->par = k;
		m->out = *f;
		m->inl = s.inl;
		m->inl_imp = s.inl_imp;
	}
	return f;
}

static void
push_plain(htok *t, int tag, uint8_t force)
{
	force = closed_force(t, tag, force);
	if (!styled(t, tag))
		push(t, tag, NULL, force);
	else
		push_styled(t, tag, force);
}

/* an element no tag names (the implied head): no attributes */
static void
push_implied(htok *t, int tag, uint8_t force)
{
	uint32_t seen = t->aseen;

	t->aseen = 0;  /* the attributes are the next element's */
	push(t, tag, NULL, force);
	t->aseen = seen;
}

static void
close_p(htok *t)
{
	int i = scope_find(t, T_P, 0, SC_BUTTON);

	if (i > 0)
		pop_to(t, (unsigned)i);
}

static void
close_head(htok *t)
{
	for (unsigned i = t->depth - 1; i >= 1; i--)
		if (t->st[i].tag == T_HEAD) {
			pop_to(t, i);
			break;
		}
	t->mode = M_AFTER_HEAD;
}

/* li, dd, dt: close the open item */
static void
close_item(htok *t, int a, int b)
{
	for (unsigned i = t->depth - 1; i >= 1; i--) {
		int ft = t->st[i].tag;
		if (ft == a || ft == b) {
			pop_to(t, i);
			return;
		}
		if (tagdefs[ft].fl & TF_SPECIAL && ft != T_ADDRESS && ft != T_DIV && ft != T_P)
			return;
	}
}

/* a table structure tag: pop what it implicitly ends, down to its context */
static void
table_clear(htok *t, int tag)
{
	int ti = scope_find(t, T_TABLE, 0, SC_TABLE);
	unsigned i;

	if (ti < 0)
		return;
	for (i = t->depth - 1; i > (unsigned)ti; i--) {
		int ft = t->st[i].tag;
		if (tag == T_TD || tag == T_TH) {
			if (ft == T_TR || ft == T_TBODY || ft == T_THEAD || ft == T_TFOOT)
				break;
		} else if (tag == T_TR) {
			if (ft == T_TBODY || ft == T_THEAD || ft == T_TFOOT)
				break;
		} else if (tag == T_COL) {
			if (ft == T_COLGROUP)
				break;
		}
	}
	if (i + 1 < t->depth)  /* (nothing to pop: nothing changes) */
		pop_to(t, i + 1);
}

/* an image: content of the open link */
static void
image(htok *t, int tag, uint8_t force)
{
	hstyle s;
	hframe f;

	if (t->nlink == 0)
		return;
	style_for(t, tag, &s);
	frame_make(t, &f, parent_for(t, tag), tag, &s, closed_force(t, tag, force));
	uint8_t why = f.why ? f.why : f.vwhy;
	bool tiny = (s.w >= 0 && s.w <= 1) || (s.h >= 0 && s.h <= 1);
	bool shown = !why && !tiny;
	for (unsigned i = 0; i < t->nlink; i++) {
		hlink *L = &t->link[i];
		if (t->aseen & 1u << A_ALT) {
			hattr *a = attr_get(t, A_ALT);
			alt_add(&L->alt, a->v, a->len);
			if (shown)
				alt_add(&L->valt, a->v, a->len);
		}
		if (shown)
			L->img_shown = true;
		else if (!L->img_why)
			L->img_why = why ? why : R_NOCONTENT;
	}
}

static void
void_element(htok *t, int tag, uint8_t force)
{
	const hframe *par = parent_for(t, tag);
	uint8_t why;

	switch (tag) {
	case T_BR:
	case T_HR:
		boundary(t);
		break;
	case T_IMG:
	case T_IMAGE:
		image(t, tag, force);
		break;
	case T_AREA: {
		hstyle s;
		hframe f;
		style_for(t, tag, &s);
		frame_make(t, &f, par, tag, &s, closed_force(t, tag, force));
		link_empty(t, "area", f.why ? f.why : f.vwhy, A_ALT, &s);
		break;
	}
	case T_LINK:
		why = par->why ? par->why : force ? force : R_HEAD;
		if (t->aseen & 1u << A_HREF)
			link_empty(t, "link", why, A_TITLE, NULL);
		break;
	}
}

static uint8_t
raw_reason(int tag)
{
	switch (tag) {
	case T_TITLE: return R_TITLE;
	case T_STYLE: return R_STYLE;
	case T_SCRIPT: return R_SCRIPT;
	case T_NOEMBED: return R_NOEMBED;
	case T_NOFRAMES: return R_NOFRAMES;
	case T_IFRAME: return R_IFRAME;
	}
	return R_NONE;
}

/* in foreign content, these start tags leave it */
static bool
breakout(htok *t, int tag)
{
	switch (tag) {
	case T_B: case T_BIG: case T_BLOCKQUOTE: case T_BODY: case T_BR: case T_CENTER:
	case T_CODE: case T_DD: case T_DIV: case T_DL: case T_DT: case T_EM: case T_EMBED:
	case T_H1: case T_H2: case T_H3: case T_H4: case T_H5: case T_H6: case T_HEAD:
	case T_HR: case T_I: case T_IMG: case T_LI: case T_LISTING: case T_MENU: case T_META:
	case T_NOBR: case T_OL: case T_P: case T_PRE: case T_S: case T_SMALL: case T_SPAN:
	case T_STRONG: case T_STRIKE: case T_SUB: case T_SUP: case T_TABLE: case T_TT:
	case T_U: case T_UL:
		return true;
	case T_FONT:
		return (t->aseen & (1u << A_COLOR | 1u << A_SIZE)) != 0;
	}
	return false;
}

static bool
has_body(const htok *t)
{
	for (unsigned i = 1; i < t->depth && i < 3; i++)
		if (t->st[i].tag == T_BODY)
			return true;
	return false;
}

/* foreign elements whose content is HTML */
static bool
integration_point(const htok *t)
{
	static const char *const names[] = {
		"foreignobject", "desc", "title", "mi", "mo", "mn", "ms", "mtext", "annotation-xml",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (ieq(t->name, t->nlen, names[i]))
			return true;
	return false;
}

/* The rules of "in body" of the few tags with one of their own (TF_BODYRULE)
 * that come before the push. */
static void
body_rules(htok *t, int tag)
{
	switch (tag) {
	case T_A:
		if (t->nlink) {
			/* an open <a> is closed, unless a cell or the like lies
			 * between: then the new one is inside it */
			unsigned i, at = t->link[t->nlink - 1].at;
			for (i = t->depth - 1; i > at; i--) {
				int ft = t->st[i].tag;
				if (ft == T_TD || ft == T_TH || ft == T_CAPTION || ft == T_TEMPLATE ||
				    ft == T_APPLET || ft == T_OBJECT || ft == T_MARQUEE)
					break;
			}
			if (i == at)
				pop_to(t, at);
			else if (t->nlink == HTML_LINK_NEST)
				link_close(t);
		}
		break;
	case T_BUTTON: {
		int i = scope_find(t, T_BUTTON, 0, SC_DEFAULT);
		if (i > 0)
			pop_to(t, (unsigned)i);
		break;
	}
	case T_NOBR: {
		int i = scope_find(t, T_NOBR, 0, SC_DEFAULT);
		if (i > 0)
			pop_to(t, (unsigned)i);
		break;
	}
	case T_OPTION:
	case T_OPTGROUP:
		if (t->st[t->depth - 1].tag == T_OPTION)
			pop_to(t, t->depth - 1);
		if (tag == T_OPTGROUP && t->st[t->depth - 1].tag == T_OPTGROUP)
			pop_to(t, t->depth - 1);
		break;
	case T_TR: case T_TD: case T_TH: case T_TBODY: case T_THEAD: case T_TFOOT:
	case T_CAPTION: case T_COLGROUP: case T_COL:
		table_clear(t, tag);
		break;
	case T_TABLE:
		if (t->st[t->depth - 1].fl & FR_TABLECTX) {
			int i = scope_find(t, T_TABLE, 0, SC_TABLE);
			if (i > 0)
				pop_to(t, (unsigned)i);
		}
		break;
	}
}

/* A start tag; returns the tokenizer state that follows. */
static int
tree_start(htok *t, int tag)
{
	uint32_t tfl = tagdefs[tag].fl;
	uint8_t force = R_NONE;
	hframe *f;

	if (t->st[t->depth - 1].fl & FR_FOREIGN) {
		if (!breakout(t, tag)) {
			if (!t->selfclose) {
				push_plain(t, tag, R_NONE);
				if (integration_point(t) && t->depth > 1)
					t->st[t->depth - 1].fl &= (uint8_t)~FR_FOREIGN;
			}
			return S_DATA;
		}
		while (t->depth > 1 && t->st[t->depth - 1].fl & FR_FOREIGN)
			pop_to(t, t->depth - 1);
	}
	/* (in body, as most tags are, the loop does nothing) */
	for (; t->mode != M_IN_BODY && t->templates == 0;) {
		if (t->mode == M_BEFORE_HEAD) {
			if (tag == T_HTML)
				return S_DATA;
			if (tag == T_BODY) {
				push_plain(t, T_BODY, R_NONE);
				t->mode = M_IN_BODY;
				return S_DATA;
			}
			if (tag == T_HEAD || tfl & TF_HEADOK) {
				if (tag == T_HEAD)
					push_plain(t, T_HEAD, R_HEAD);
				else
					push_implied(t, T_HEAD, R_HEAD);
				t->mode = M_IN_HEAD;
				if (tag == T_HEAD)
					return S_DATA;
				continue;
			}
			t->mode = M_IN_BODY;
			continue;
		}
		if (t->mode == M_IN_HEAD) {
			if (tag == T_HEAD || tag == T_HTML)
				return S_DATA;
			if (tfl & TF_HEADOK)
				break;
			close_head(t);
			continue;
		}
		if (t->mode == M_IN_HEAD_NOSCRIPT) {
			if (tag == T_LINK || tag == T_META || tag == T_STYLE || tag == T_NOFRAMES ||
			    tag == T_BASEFONT || tag == T_BGSOUND)
				break;
			for (unsigned i = t->depth - 1; i >= 1; i--)
				if (t->st[i].tag == T_NOSCRIPT) {
					pop_to(t, i);
					break;
				}
			t->mode = M_IN_HEAD;
			continue;
		}
		if (t->mode == M_AFTER_HEAD) {
			if (tag == T_HTML)
				return S_DATA;
			if (tag == T_BODY) {
				push_plain(t, T_BODY, R_NONE);
				t->mode = M_IN_BODY;
				return S_DATA;
			}
			if (tfl & TF_HEADOK && tag != T_NOSCRIPT) {
				force = R_HEAD;
				break;
			}
			t->mode = M_IN_BODY;
			continue;
		}
		break;
	}

	if (t->mode == M_IN_BODY || t->templates) {
		if (tfl & TF_BODYRULE) {
			if (tag == T_BODY && !has_body(t)) {
				/* a late <body>: its colours apply from here on */
				push_plain(t, T_BODY, R_NONE);
				return S_DATA;
			}
			if (tag == T_HTML || tag == T_BODY || tag == T_HEAD || tag == T_FRAMESET)
				return S_DATA;
			if (tag == T_LI)
				close_item(t, T_LI, T_LI);
			else if (tag == T_DD || tag == T_DT)
				close_item(t, T_DD, T_DT);
		}
		/* (a <p> is open rarely when a tag that closes it comes) */
		if (((tfl & TF_CLOSEP) != 0) & (t->open[T_P] != 0) && (tag != T_TABLE || t->doctype))
			close_p(t);
		if (tfl & TF_HEADING && tagdefs[t->st[t->depth - 1].tag].fl & TF_HEADING)
			pop_to(t, t->depth - 1);
		if (tfl & TF_BODYRULE)
			body_rules(t, tag);
	}

	if (tfl & TF_VOID) {
		void_element(t, tag, force);
		return S_DATA;
	}
	if (tfl & TF_STARTRULE) {
		if (tag == T_NOSCRIPT)
			force = force ? force : R_NOSCRIPT;
		else if (tag == T_TEMPLATE)
			force = force ? force : R_TEMPLATE;
		else if (raw_reason(tag))
			force = force ? force : raw_reason(tag);
	}

	if (tfl & TF_FOREIGN && t->selfclose)
		return S_DATA;
	force = closed_force(t, tag, force);
	if (styled(t, tag))
		f = push_styled(t, tag, force);
	else
		f = push(t, tag, NULL, force);

	if (!(tfl & TF_STARTRULE))
		return S_DATA;
	if (tag == T_NOSCRIPT && t->mode == M_IN_HEAD)
		t->mode = M_IN_HEAD_NOSCRIPT;
	if (tag == T_A && f)
		link_open(t, t->depth - 1);
	if (tfl & (TF_RAW | TF_RCDATA) || tag == T_SCRIPT) {
		t->rawtag = tag;
		if (f) {
			f->fl |= FR_RAW;
			url_begin(t, tag, f->why);
		} else
			url_begin(t, tag, raw_reason(tag));
		return tag == T_SCRIPT ? S_SD : S_RAW;
	}
	if (tag == T_PLAINTEXT)
		return S_PLAINTEXT;
	return S_DATA;
}

/* An end tag. */
static void
tree_end(htok *t, int tag, uint32_t hash)
{
	uint32_t tfl = tagdefs[tag].fl;
	int i;

	if (t->over) {
		t->over--;
		return;
	}
	if (t->st[t->depth - 1].fl & FR_FOREIGN) {
		for (i = (int)t->depth - 1; i >= 1 && t->st[i].fl & FR_FOREIGN; i--)
			if (frame_is(&t->st[i], tag, hash)) {
				pop_to(t, (unsigned)i);
				return;
			}
	}
	for (; t->mode != M_IN_BODY && t->templates == 0;) {
		if (t->mode == M_BEFORE_HEAD) {
			if (tag != T_HEAD && tag != T_BODY && tag != T_HTML && tag != T_BR)
				return;
			t->mode = M_IN_BODY;
			break;
		}
		if (t->mode == M_IN_HEAD || t->mode == M_IN_HEAD_NOSCRIPT) {
			if (t->mode == M_IN_HEAD_NOSCRIPT && tag != T_NOSCRIPT && tag != T_BR)
				return;
			if (tag == T_HEAD) {
				close_head(t);
				return;
			}
			if (tag == T_BODY || tag == T_HTML || tag == T_BR) {
				close_head(t);
				continue;
			}
			/* the end of title, style, script, noscript, template */
			for (i = (int)t->depth - 1; i >= 1 && t->st[i].tag != T_HEAD; i--)
				if (frame_is(&t->st[i], tag, hash)) {
					pop_to(t, (unsigned)i);
					break;
				}
			return;
		}
		if (t->mode == M_AFTER_HEAD) {
			if (tag == T_BODY || tag == T_HTML || tag == T_BR) {
				t->mode = M_IN_BODY;
				continue;
			}
			if (frame_is(&t->st[t->depth - 1], tag, hash))
				pop_to(t, t->depth - 1);
			return;
		}
		break;
	}

	/* Most often the element ended is the current one; then all the rules
	 * below pop it alone, but for the end tags that pop nothing. */
	if (!(tfl & TF_VOID) && tag != T_BODY && tag != T_HTML && tag != T_HEAD && t->depth > 1 &&
	    frame_is(&t->st[t->depth - 1], tag, hash)) {
		pop_to(t, t->depth - 1);
		return;
	}
	if (tfl & TF_ENDRULE) {
		switch (tag) {
		case T_BODY:
		case T_HTML:
		case T_HEAD:
			return;
		case T_BR:
			boundary(t);
			return;
		case T_P:
			i = scope_find(t, T_P, 0, SC_BUTTON);
			break;
		case T_LI:
			i = scope_find(t, T_LI, 0, SC_LIST);
			break;
		case T_TD: case T_TH: case T_TR: case T_TBODY: case T_THEAD: case T_TFOOT:
		case T_TABLE: case T_CAPTION: case T_COLGROUP:
			i = scope_find(t, tag, 0, SC_TABLE);
			break;
		default:
			return;  /* none: TF_ENDRULE is for the cases above */
		}
	} else {
		if (tfl & TF_HEADING)
			i = scope_find(t, -1, 0, SC_DEFAULT);
		else if (tfl & TF_VOID)
			return;
		else if (tfl & (TF_SPECIAL | TF_FORMAT))
			i = scope_find(t, tag, hash, SC_DEFAULT);
		else {
			/* any other end tag: the nearest such element, unless a special one
			 * is in the way */
			for (i = (int)t->depth - 1; i >= 1; i--) {
				if (frame_is(&t->st[i], tag, hash))
					break;
				if (tagdefs[t->st[i].tag].fl & TF_SPECIAL)
					return;
			}
			if (i < 1)
				return;
		}
	}
	if (i > 0)
		pop_to(t, (unsigned)i);
}

/* ---- the tokenizer --------------------------------------------------------------------- */
/* The slot of the attribute named n[0..len) in any case, or -1; room bytes
 * from n may be read (at least len). Every name kept is letters only, so
 * n[i] | 0x20 equals a letter only when n[i] is that letter in either case:
 * the first eight bytes are taken at once, as a number, all with 0x20 set,
 * and looked up in a perfect hash of the names kept. */
#define ATTR_MUL 0xd23f0824128b2f33ull
static inline int
attr_slot(const char *n, size_t len, size_t room)
{
	/* at (name_word * ATTR_MUL) >> 59; "background" has two more letters */
	static const struct {
		char name[8];
		uint8_t len, slot;
	} names[32] = {
		[2] = { "href", 4, A_HREF }, [4] = { "link", 4, A_LINK }, [9] = { "text", 4, A_TEXT },
		[10] = { "title", 5, A_TITLE }, [12] = { "style", 5, A_STYLE },
		[13] = { "size", 4, A_SIZE }, [14] = { "open", 4, A_OPEN },
		[16] = { "class", 5, A_CLASS }, [20] = { "width", 5, A_WIDTH },
		[21] = { "hidden", 6, A_HIDDEN }, [23] = { "height", 6, A_HEIGHT },
		[25] = { "backgrou", 10, A_BACKGROUND }, [26] = { "bgcolor", 7, A_BGCOLOR },
		[27] = { "id", 2, A_ID }, [30] = { "alt", 3, A_ALT }, [31] = { "color", 5, A_COLOR },
	};
	uint64_t w, k, mask;

	if (len < 2 || len > 10)
		return -1;
	mask = len < 8 ? (1ull << (8 * len)) - 1 : ~0ull;
	if (HTML_LE && room >= 8) {
		memcpy(&w, n, 8);
		w &= mask;
	} else
		w = name_word(n, len);
	w |= 0x2020202020202020ull & mask;
	unsigned i = (unsigned)((w * ATTR_MUL) >> 59);
	if (HTML_LE)
		memcpy(&k, names[i].name, 8);
	else
		k = name_word(names[i].name, 8);
	if (names[i].len != len || k != w ||
	    (len == 10 && ((n[8] | 0x20) != 'n' || (n[9] | 0x20) != 'd')))
		return -1;
	return names[i].slot;
}

static void
attr_begin(htok *t)
{
	t->alen = t->aall = 0;
	t->aslot = -1;
}

/* the attribute's name is n[0..len) (in any case), or the first bytes of
 * it when len is over HTML_NAME_MAX; room bytes from n may be read */
static inline void
attr_name_done(htok *t, const char *n, size_t len, size_t room)
{
	int slot = len <= HTML_NAME_MAX ? attr_slot(n, len, room) : -1;

	if (t->inner && slot != A_HREF && slot != A_ALT && slot != A_TITLE)
		slot = -1;  /* in a comment only what a hidden link carries matters */

	if (slot >= 0 && !(t->aseen & 1u << slot)) {
		t->aseen |= 1u << slot;
		t->attr[slot].len = 0;
		t->attr[slot].trunc = false;
		t->aslot = slot;
	} else
		t->aslot = -1;
}

/* a piece of the value of the attribute being read, with no NUL in it */
static inline void
attr_value_nonul(htok *t, const char *s, size_t n)
{
	hattr *a = &t->attr[t->aslot];

	if (n > a->cap - a->len)
		n = a->cap - a->len, a->trunc = true;
	copy_var(a->v + a->len, s, n);
	a->len += n;
}

static void
attr_value(htok *t, const char *s, size_t n)
{
	hattr *a = &t->attr[t->aslot];

	while (n) {
		const char *z = find_nul(s, n);
		size_t k = z ? (size_t)(z - s) : n, room = a->cap - a->len;
		if (k > room)
			k = room, a->trunc = true;
		memcpy(a->v + a->len, s, k);
		a->len += k;
		if (z == NULL || a->trunc)
			return;
		/* U+0000 becomes U+FFFD */
		if (a->cap - a->len < 3) {
			a->trunc = true;
			return;
		}
		memcpy(a->v + a->len, "\xef\xbf\xbd", 3);
		a->len += 3;
		n -= (size_t)(z - s) + 1;
		s = z + 1;
	}
}

static void
name_begin(htok *t, bool end)
{
	t->nword = 0;
	t->endtag = end;
	t->selfclose = false;
	t->nlen = t->nall = 0;
	t->aseen = 0;
}

static void
name_add(htok *t, int c)
{
	c = lower(c);
	if (t->nlen < 8)
		t->nword |= (uint64_t)(uint8_t)c << (8 * t->nlen);
	if (t->nlen < HTML_NAME_MAX)
		t->name[t->nlen++] = (char)c;
	t->nall++;
}

static int
tag_id(const htok *t)
{
	return t->nall > 12 ? T_OTHER : tag_lookup(t->nword, t->name, t->nlen);
}

/* A tag in a comment's text. Nothing there is rendered, so no tree is built:
 * a link runs from <a> to </a> (or to the next <a>, or the comment's end). */
static int
inner_tag(htok *t, int tag)
{
	uint32_t tfl = tagdefs[tag].fl;

	if (tfl & TF_BLOCK)
		boundary(t);
	if (t->endtag) {
		if (tag == T_A)
			while (t->nlink)
				link_close(t);
		return S_DATA;
	}
	for (uint32_t dec = t->aseen; dec; dec &= dec - 1) {
		hattr *a = &t->attr[__builtin_ctz(dec)];
		a->len = attr_decode(a->v, a->len);
	}
	t->adec = t->aseen;
	switch (tag) {
	case T_A:
		while (t->nlink)
			link_close(t);
		link_open(t, 0);
		return S_DATA;
	case T_IMG:
	case T_IMAGE:
		if (t->aseen & 1u << A_ALT)
			for (unsigned i = 0; i < t->nlink; i++)
				alt_add(&t->link[i].alt, t->attr[A_ALT].v, t->attr[A_ALT].len);
		return S_DATA;
	case T_AREA:
		link_empty(t, "area", R_COMMENT, A_ALT, NULL);
		return S_DATA;
	case T_LINK:
		if (t->aseen & 1u << A_HREF)
			link_empty(t, "link", R_COMMENT, A_TITLE, NULL);
		return S_DATA;
	case T_PLAINTEXT:
		return S_PLAINTEXT;
	}
	if (tfl & (TF_RAW | TF_RCDATA) || tag == T_SCRIPT) {
		t->rawtag = tag;
		url_begin(t, tag, R_COMMENT);
		return tag == T_SCRIPT ? S_SD : S_RAW;
	}
	return S_DATA;
}

/* the tag token is complete; tag: tag_id() */
static int
emit_tag(htok *t, int tag)
{
	int st = S_DATA;

	t->run++;
	if (t->inner)
		return inner_tag(t, tag);
	/* the name's hash tells unknown elements apart; style_for works it
	 * out for the others when the style sheet needs it */
	t->nhash = 0;
	t->nhashed = tag == T_OTHER;
	if (tag == T_OTHER)
		t->nhash = name_fnv(t->name, t->nlen);
	if (t->endtag) {
		tree_end(t, tag, t->nhash);
		return S_DATA;
	}
	t->adec = 0;  /* attr_get decodes them as they are needed */
	if (tag == T_IMAGE)
		tag = T_IMG;
	st = tree_start(t, tag);
	if (t->aseen & 1u << A_LINK && tag == T_BODY) {
		uint32_t c;
		hattr *a = attr_get(t, A_LINK);
		if (css_color(a->v, a->len, true, &c))
			t->h->linkcolor = c;
	}
	return st;
}

static void tok_feed(htok *t, const char *p, size_t n);
static void tok_finish(htok *t);
static void tok_reset(htok *t);

static bool tok_alloc(htok *t);

/*
 * Could the text of a comment hold a link? Only an <a>, <area> or <link>
 * makes one, or a URL ("http://", "https://") in the raw text of an element
 * in it; a comment with no "<a", "<l" (in any case) and no ":/" is tokenized
 * for nothing, as most of the <!--[if mso]> blocks of templates are.
 */
static bool
comment_matters(const char *s, size_t n)
{
	size_t i = 0;

#ifdef __SSE2__
	const __m128i lt = _mm_set1_epi8('<'), colon = _mm_set1_epi8(':');
	for (; i + 17 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		unsigned m = (unsigned)_mm_movemask_epi8(
		    _mm_or_si128(_mm_cmpeq_epi8(v, lt), _mm_cmpeq_epi8(v, colon)));
		for (; m; m &= m - 1) {
			size_t k = i + (size_t)__builtin_ctz(m);
			int c = s[k + 1] | 0x20;
			if (s[k] == '<' ? c == 'a' || c == 'l' : s[k + 1] == '/')
				return true;
		}
	}
#endif
	for (; i + 1 < n; i++) {
		int c = s[i + 1] | 0x20;
		if ((s[i] == '<' && (c == 'a' || c == 'l')) || (s[i] == ':' && s[i + 1] == '/'))
			return true;
	}
	return false;
}

/* The text of a comment: held back (HTML_COMMENT_BUF) until the end of the
 * comment says whether it can matter, and tokenized as it comes when it is
 * too long to hold. */
static void
comment_data(htok *t, const char *p, size_t n)
{
	html_parser *h = t->h;
	htok *in = &h->tok[1];

	if (t->inner || n == 0)
		return;
	if (!h->cdirect) {
		if (h->clen + n <= HTML_COMMENT_BUF &&
		    (h->cbuf != NULL || (h->cbuf = malloc(HTML_COMMENT_BUF)) != NULL)) {
			memcpy(h->cbuf + h->clen, p, n);
			h->clen += n;
			return;
		}
		h->cdirect = true;
		if (h->clen && (in->st || tok_alloc(in))) {
			tok_feed(in, h->cbuf, h->clen);
			h->cfed = true;
		}
		h->clen = 0;
	}
	if (in->st || tok_alloc(in)) {
		tok_feed(in, p, n);
		h->cfed = true;
	}
}

static void
comment_end(htok *t)
{
	html_parser *h = t->h;
	htok *in = &h->tok[1];

	t->run++;
	if (t->inner)
		return;
	if (h->clen && comment_matters(h->cbuf, h->clen) && (in->st || tok_alloc(in))) {
		tok_feed(in, h->cbuf, h->clen);
		h->cfed = true;
	}
	h->clen = 0;
	h->cdirect = false;
	if (h->cfed) {
		h->cfed = false;
		tok_finish(in);
		tok_reset(in);
		if (h->pend.on && h->pend.owner == in)
			pend_deliver(h);
	}
}

/* data text; it may end the head */
static void
data_text_mode(htok *t, const char *p, size_t n)
{
	if (t->mode != M_IN_BODY && t->templates == 0) {
		size_t i;
		for (i = 0; i < n && is_ws((unsigned char)p[i]); i++)
			;
		if (i < n) {
			if (t->mode == M_IN_HEAD_NOSCRIPT) {
				for (unsigned k = t->depth - 1; k >= 1; k--)
					if (t->st[k].tag == T_NOSCRIPT) {
						pop_to(t, k);
						break;
					}
				t->mode = M_IN_HEAD;
			}
			if (t->mode == M_IN_HEAD)
				close_head(t);
			t->mode = M_IN_BODY;
		}
	}
}

static void
data_text(htok *t, const char *p, size_t n, bool verbatim)
{
	if (t->mode != M_IN_BODY && t->templates == 0)
		data_text_mode(t, p, n);
	tok_text(t, p, n, verbatim);
}

static inline void
data_text_nonul(htok *t, const char *p, size_t n, bool verbatim)
{
	if (t->mode != M_IN_BODY && t->templates == 0)
		data_text_mode(t, p, n);
	tok_text_nonul(t, p, n, verbatim);
}

static bool
tmp_is(const htok *t, const char *name)
{
	return ieq(t->tmp, t->tlen, name);
}

/* a candidate end tag of raw text was not one: its bytes are text */
static void
raw_flush(htok *t)
{
	raw_text(t, "</", 2);
	raw_text(t, t->tmp, t->tlen);
}

static void
tok_feed(htok *t, const char *p, size_t n)
{
	const char *e = p + n, *q;
	char c;
	int st;

/* go to state s: directly while there is input, else remember it */
#define GO(s) do { t->state = (s); if (p >= e) return; goto L_##s; } while (0)
/* go to a state known only at run time */
#define GOTO_STATE(s) do { t->state = (uint8_t)(s); if (p >= e) return; goto dispatch; } while (0)
/* the tag token of tag is complete */
#define EMIT_TAG(tag) do { st = emit_tag(t, (tag)); if (st == S_DATA) GO(S_DATA); GOTO_STATE(st); } while (0)
/* ... its name read earlier */
#define EMIT() EMIT_TAG(t->ntag)

	if (p >= e)
		return;
dispatch:
	switch (t->state) {
	case S_DATA: goto L_S_DATA;
	case S_TAG_OPEN: goto L_S_TAG_OPEN;
	case S_END_TAG_OPEN: goto L_S_END_TAG_OPEN;
	case S_TAG_NAME: goto L_S_TAG_NAME;
	case S_BEFORE_ATTR_NAME: goto L_S_BEFORE_ATTR_NAME;
	case S_ATTR_NAME: goto L_S_ATTR_NAME;
	case S_AFTER_ATTR_NAME: goto L_S_AFTER_ATTR_NAME;
	case S_BEFORE_ATTR_VALUE: goto L_S_BEFORE_ATTR_VALUE;
	case S_AV_DQ: goto L_S_AV_DQ;
	case S_AV_SQ: goto L_S_AV_SQ;
	case S_AV_UNQ: goto L_S_AV_UNQ;
	case S_AFTER_AV_QUOTED: goto L_S_AFTER_AV_QUOTED;
	case S_SELF_CLOSING: goto L_S_SELF_CLOSING;
	case S_MARKUP_DECL: goto L_S_MARKUP_DECL;
	case S_COMMENT_START: goto L_S_COMMENT_START;
	case S_COMMENT_START_DASH: goto L_S_COMMENT_START_DASH;
	case S_COMMENT: goto L_S_COMMENT;
	case S_COMMENT_END_DASH: goto L_S_COMMENT_END_DASH;
	case S_COMMENT_END: goto L_S_COMMENT_END;
	case S_COMMENT_END_BANG: goto L_S_COMMENT_END_BANG;
	case S_BOGUS_COMMENT: goto L_S_BOGUS_COMMENT;
	case S_CDATA: goto L_S_CDATA;
	case S_CDATA_B1: goto L_S_CDATA_B1;
	case S_CDATA_B2: goto L_S_CDATA_B2;
	case S_RAW: goto L_S_RAW;
	case S_RAW_LT: goto L_S_RAW_LT;
	case S_RAW_END_OPEN: goto L_S_RAW_END_OPEN;
	case S_RAW_END_NAME: goto L_S_RAW_END_NAME;
	case S_PLAINTEXT: goto L_S_PLAINTEXT;
	case S_SD: goto L_S_SD;
	case S_SD_LT: goto L_S_SD_LT;
	case S_SD_END_OPEN: goto L_S_SD_END_OPEN;
	case S_SD_END_NAME: goto L_S_SD_END_NAME;
	case S_SD_ESC_START: goto L_S_SD_ESC_START;
	case S_SD_ESC_START_DASH: goto L_S_SD_ESC_START_DASH;
	case S_SD_ESC: goto L_S_SD_ESC;
	case S_SD_ESC_DASH: goto L_S_SD_ESC_DASH;
	case S_SD_ESC_DASH2: goto L_S_SD_ESC_DASH2;
	case S_SD_ESC_LT: goto L_S_SD_ESC_LT;
	case S_SD_ESC_END_OPEN: goto L_S_SD_ESC_END_OPEN;
	case S_SD_ESC_END_NAME: goto L_S_SD_ESC_END_NAME;
	case S_SD_DESC_START: goto L_S_SD_DESC_START;
	case S_SD_DESC: goto L_S_SD_DESC;
	case S_SD_DESC_DASH: goto L_S_SD_DESC_DASH;
	case S_SD_DESC_DASH2: goto L_S_SD_DESC_DASH2;
	case S_SD_DESC_LT: goto L_S_SD_DESC_LT;
	case S_SD_DESC_END: goto L_S_SD_DESC_END;
	}
	return;

	/* ---- data, tags, attributes ---- */
L_S_DATA:
#ifdef __SSE2__
	if (t->mode == M_IN_BODY || t->templates) {
		/* Text in the body: looked through and copied in one pass, 32
		 * bytes at a time, where it goes in the block ring (and then to
		 * the open links and the pending link's "after", as
		 * tok_text_all() does). It is kept when the run ends with a '<'
		 * before the end of the room that seg_ring() would fill as it
		 * is (with no trimming); else the ring is as it was (what was
		 * written is past its end), and the text goes the usual way
		 * below. */
		hbuf *b = &t->ring;
		size_t len = b->len;
		bool mark = b->run != t->run || t->run == 0 || len == 0;
		size_t at = len + (mark ? 2 : 0);
		char *d = b->p + at;
		const __m128i lt = _mm_set1_epi8('<'), zero = _mm_setzero_si128();
		for (size_t off = 0; at + off + 32 <= b->cap && e - p >= (ptrdiff_t)off + 32; off += 32) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + off));
			__m128i w = _mm_loadu_si128((const __m128i *)(const void *)(p + off + 16));
			unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, lt),
			    _mm_cmpeq_epi8(v, zero))) | (unsigned)_mm_movemask_epi8(_mm_or_si128(
			    _mm_cmpeq_epi8(w, lt), _mm_cmpeq_epi8(w, zero))) << 16;
			_mm_storeu_si128((__m128i *)(void *)(d + off), v);
			_mm_storeu_si128((__m128i *)(void *)(d + off + 16), w);
			if (m == 0)
				continue;
			size_t k = off + (size_t)__builtin_ctz(m);
			if (p[k] != '<' || k > HTML_RING - HTML_RING_KEEP - 8 || len + k + 2 > b->cap)
				break;
			if (k > 0) {
				hpend *pd = &t->h->pend;
				if (mark) {
					b->p[len] = 0;
					b->p[len + 1] = (char)SEG_CLASS(t->twhy, 0);
					b->run = t->run;
				}
				b->len = at + k;
				for (unsigned i = 0; i < t->nlink; i++)
					seg_head(&t->link[i].raw, p, k, SEG_CLASS(t->twhy, 0), t->run);
				if (pd->on && pd->owner == t && !pd->url) {
					seg_head(&pd->araw, p, k, SEG_CLASS(t->twhy, 0), t->run);
					pend_check(t->h);
				}
			}
			p += k + 1;
			GO(S_TAG_OPEN);
		}
	}
#endif
	q = find_byte_nul(p, e, '<', 64);
	if (q && *q == 0) {
		/* a NUL in the text: data_text looks for them */
		q = find_byte(q, e, '<');
		data_text(t, p, (size_t)((q ? q : e) - p), false);
	} else if (q == NULL || q > p)
		data_text_nonul(t, p, (size_t)((q ? q : e) - p), false);
	if (q == NULL)
		return;
	p = q + 1;
	GO(S_TAG_OPEN);

L_S_TAG_OPEN:
	c = *p;
	if (is_alpha(c)) {
		name_begin(t, false);
		GO(S_TAG_NAME);
	}
	if (c == '/') {
		p++;
		GO(S_END_TAG_OPEN);
	}
	if (c == '!') {
		p++;
		t->tlen = 0;
		GO(S_MARKUP_DECL);
	}
	if (c == '?')
		GO(S_BOGUS_COMMENT);
	data_text(t, "<", 1, false);
	GO(S_DATA);

L_S_END_TAG_OPEN:
	c = *p;
	if (is_alpha(c)) {
		name_begin(t, true);
		GO(S_TAG_NAME);
	}
	if (c == '>') {
		p++;
		GO(S_DATA);
	}
	GO(S_BOGUS_COMMENT);

L_S_TAG_NAME: {
	size_t nl = t->nlen, na = t->nall;
	uint64_t nw = t->nword;
#ifdef __SSE2__
	if (na == 0 && e - p >= 16) {
		/* A whole name of at most fifteen bytes, as most are: its end
		 * found and its letters lowered sixteen bytes at a time; a
		 * longer one is read byte by byte below. */
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned m = (unsigned)_mm_movemask_epi8(sse_name_end(v, false));
		if (m) {
			/* The tag is looked up here, and given to emit_tag() (not
			 * through memory), so that what follows does not wait on it
			 * long; the bytes past the name (stored too) are not read,
			 * and its first eight are cut to it in a register. */
			unsigned k = (unsigned)__builtin_ctz(m);
			__m128i up = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)),
			    _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
			v = _mm_add_epi8(v, _mm_and_si128(up, _mm_set1_epi8(0x20)));
			_mm_storeu_si128((__m128i *)(void *)t->name, v);
#ifdef __x86_64__
			nw = (uint64_t)_mm_cvtsi128_si64(v);
#else
			memcpy(&nw, t->name, 8);
#endif
			if (k < 8)
				nw &= (1ull << (8 * k)) - 1;
			t->nword = nw;
			t->nlen = t->nall = k;
			int tag = k > 12 ? T_OTHER : tag_lookup(nw, t->name, k);
			t->ntag = tag;
			c = p[k];
			p += k + 1;
			if (c == '>')
				EMIT_TAG(tag);
			if (c == '/')
				GO(S_SELF_CLOSING);
			GO(S_BEFORE_ATTR_NAME);
		}
	}
#endif
	while (p < e) {
		c = *p++;
		if (cclass[(unsigned char)c] & (CC_WS | CC_END)) {
			t->nlen = nl;
			t->nall = na;
			t->nword = nw;
			t->ntag = tag_id(t);
			if (c == '>')
				EMIT();
			if (c == '/')
				GO(S_SELF_CLOSING);
			GO(S_BEFORE_ATTR_NAME);
		}
		c = (char)lower((unsigned char)c);
		if (nl < 8)
			nw |= (uint64_t)(uint8_t)c << (8 * nl);
		if (nl < HTML_NAME_MAX)
			t->name[nl++] = c;
		na++;
	}
	t->nlen = nl;
	t->nall = na;
	t->nword = nw;
	return;
}

L_S_BEFORE_ATTR_NAME:
	p = skip_ws(p, e);
	if (p == e)
		return;
	c = *p;
	if (c == '>') {
		p++;
		EMIT();
	}
	if (c == '/') {
		p++;
		GO(S_SELF_CLOSING);
	}
	attr_begin(t);
	if (c == '=') {
		t->an[t->alen++] = '=';
		t->aall++;
		p++;
	}
	GO(S_ATTR_NAME);

L_S_ATTR_NAME:
	q = p;
#ifdef __SSE2__
	if (e - p >= 16) {
		/* the end of the name in the next sixteen bytes, most often */
		unsigned m = (unsigned)_mm_movemask_epi8(
		    sse_name_end(_mm_loadu_si128((const __m128i *)(const void *)p), true));
		q = p + (m ? __builtin_ctz(m) : 16);
		if (m == 0)
			for (; q < e && !cclass[(unsigned char)*q]; q++)
				;
	} else
#endif
	for (; q < e && !cclass[(unsigned char)*q]; q++)
		;
	if (t->aall == 0 && q < e) {
		/* all of the name is in this piece: looked up where it is */
		attr_name_done(t, p, (size_t)(q - p), (size_t)(e - p));
	} else {
		size_t k = (size_t)(q - p);
		if (t->alen + k > HTML_NAME_MAX)
			k = HTML_NAME_MAX - t->alen;
		memcpy(t->an + t->alen, p, k);
		t->alen += k;
		t->aall += (size_t)(q - p);
		if (q == e)
			return;
		attr_name_done(t, t->an, t->aall, sizeof(t->an));
	}
	p = q;
	if (*p++ == '=')
		GO(S_BEFORE_ATTR_VALUE);
	p--;
	GO(S_AFTER_ATTR_NAME);

L_S_AFTER_ATTR_NAME:
	p = skip_ws(p, e);
	if (p == e)
		return;
	c = *p;
	if (c == '/') {
		p++;
		GO(S_SELF_CLOSING);
	}
	if (c == '=') {
		p++;
		GO(S_BEFORE_ATTR_VALUE);
	}
	if (c == '>') {
		p++;
		EMIT();
	}
	attr_begin(t);
	GO(S_ATTR_NAME);

L_S_BEFORE_ATTR_VALUE:
	p = skip_ws(p, e);
	if (p == e)
		return;
	c = *p;
	if (c == '"') {
		p++;
		GO(S_AV_DQ);
	}
	if (c == '\'') {
		p++;
		GO(S_AV_SQ);
	}
	if (c == '>') {
		p++;
		EMIT();
	}
	GO(S_AV_UNQ);

L_S_AV_DQ:
L_S_AV_SQ:
	c = t->state == S_AV_DQ ? '"' : '\'';
	if (t->aslot < 0) {
		q = find_byte_reach(p, e, c, 256);  /* long style values */
	} else if ((q = find_byte_nul(p, e, c, 256)) && *q == 0) {
		q = find_byte(q, e, c);
		attr_value(t, p, (size_t)((q ? q : e) - p));
	} else
		attr_value_nonul(t, p, (size_t)((q ? q : e) - p));
	if (q == NULL)
		return;
	p = q + 1;
	GO(S_AFTER_AV_QUOTED);

L_S_AV_UNQ:
	for (q = p; q < e && !is_ws(*q) && *q != '>'; q++)
		;
	if (t->aslot >= 0 && q > p)
		attr_value(t, p, (size_t)(q - p));
	p = q;
	if (p == e)
		return;
	if (*p++ == '>')
		EMIT();
	GO(S_BEFORE_ATTR_NAME);

L_S_AFTER_AV_QUOTED:
	c = *p;
	if (is_ws(c)) {
		p++;
		GO(S_BEFORE_ATTR_NAME);
	}
	if (c == '>') {
		p++;
		EMIT();
	}
	if (c == '/') {
		p++;
		GO(S_SELF_CLOSING);
	}
	GO(S_BEFORE_ATTR_NAME);

L_S_SELF_CLOSING:
	if (*p == '>') {
		p++;
		t->selfclose = true;
		EMIT();
	}
	GO(S_BEFORE_ATTR_NAME);

	/* ---- markup declarations and comments ---- */
L_S_MARKUP_DECL:
	/* "--", "DOCTYPE" or "[CDATA[", decided as the bytes come */
	while (p < e) {
		c = *p++;
		t->tmp[t->tlen++] = c;
		if (t->tmp[0] == '-') {
			if (t->tlen < 2)
				continue;
			if (c == '-') {
				t->run++;
				if (t->inner)
					GO(S_DATA);  /* "<!--" inside a comment's text: nothing */
				GO(S_COMMENT_START);
			}
		} else if (lower((unsigned char)t->tmp[0]) == 'd') {
			if (lower((unsigned char)c) == "doctype"[t->tlen - 1]) {
				if (t->tlen < 7)
					continue;
				t->doctype = true;
				GO(S_BOGUS_COMMENT);
			}
		} else if (t->tmp[0] == '[') {
			if (c == "[CDATA["[t->tlen - 1]) {
				if (t->tlen < 7)
					continue;
				if (t->st[t->depth - 1].fl & FR_FOREIGN)
					GO(S_CDATA);
				GO(S_BOGUS_COMMENT);
			}
		}
		/* a bogus comment; it may end right here */
		if (c == '>') {
			t->run++;
			GO(S_DATA);
		}
		GO(S_BOGUS_COMMENT);
	}
	return;

L_S_COMMENT_START:
	if (*p == '-') {
		p++;
		GO(S_COMMENT_START_DASH);
	}
	if (*p == '>') {
		p++;
		comment_end(t);
		GO(S_DATA);
	}
	GO(S_COMMENT);

L_S_COMMENT_START_DASH:
	if (*p == '-') {
		p++;
		GO(S_COMMENT_END);
	}
	if (*p == '>') {
		p++;
		comment_end(t);
		GO(S_DATA);
	}
	comment_data(t, "-", 1);
	GO(S_COMMENT);

L_S_COMMENT:
	/* a '-' with another byte than '-' after it is text (the comment end
	 * dash state would give it and go on here): looked past at once, so
	 * that the names of CSS properties in <!--[if mso]> go as one piece */
	for (q = p; (q = find_byte(q, e, '-')) != NULL && e - q > 1 && q[1] != '-'; q++)
		;
	comment_data(t, p, (size_t)((q ? q : e) - p));
	if (q == NULL)
		return;
	p = q + 1;
	GO(S_COMMENT_END_DASH);

L_S_COMMENT_END_DASH:
	if (*p == '-') {
		p++;
		GO(S_COMMENT_END);
	}
	comment_data(t, "-", 1);
	GO(S_COMMENT);

L_S_COMMENT_END:
	c = *p;
	if (c == '>') {
		p++;
		comment_end(t);
		GO(S_DATA);
	}
	if (c == '!') {
		p++;
		GO(S_COMMENT_END_BANG);
	}
	if (c == '-') {
		p++;
		comment_data(t, "-", 1);
		GO(S_COMMENT_END);
	}
	comment_data(t, "--", 2);
	GO(S_COMMENT);

L_S_COMMENT_END_BANG:
	c = *p;
	if (c == '-') {
		p++;
		comment_data(t, "--!", 3);
		GO(S_COMMENT_END_DASH);
	}
	if (c == '>') {
		p++;
		comment_end(t);
		GO(S_DATA);
	}
	comment_data(t, "--!", 3);
	GO(S_COMMENT);

L_S_BOGUS_COMMENT:
	q = memchr(p, '>', (size_t)(e - p));
	if (q == NULL)
		return;
	p = q + 1;
	t->run++;
	GO(S_DATA);

L_S_CDATA:
	q = memchr(p, ']', (size_t)(e - p));
	if ((q ? q : e) > p)
		data_text(t, p, (size_t)((q ? q : e) - p), true);
	if (q == NULL)
		return;
	p = q + 1;
	GO(S_CDATA_B1);

L_S_CDATA_B1:
	if (*p == ']') {
		p++;
		GO(S_CDATA_B2);
	}
	data_text(t, "]", 1, true);
	GO(S_CDATA);

L_S_CDATA_B2:
	if (*p == '>') {
		p++;
		t->run++;
		GO(S_DATA);
	}
	if (*p == ']') {
		p++;
		data_text(t, "]", 1, true);
		GO(S_CDATA_B2);
	}
	data_text(t, "]]", 2, true);
	GO(S_CDATA);

	/* ---- RAWTEXT and RCDATA ---- */
L_S_RAW:
	q = memchr(p, '<', (size_t)(e - p));
	if ((q ? q : e) > p)
		raw_text(t, p, (size_t)((q ? q : e) - p));
	if (q == NULL)
		return;
	p = q + 1;
	GO(S_RAW_LT);

L_S_RAW_LT:
	if (*p == '/') {
		p++;
		t->tlen = 0;
		GO(S_RAW_END_OPEN);
	}
	raw_text(t, "<", 1);
	GO(S_RAW);

L_S_RAW_END_OPEN:
L_S_SD_END_OPEN:
L_S_SD_ESC_END_OPEN:
	if (is_alpha(*p))
		GOTO_STATE(t->state == S_RAW_END_OPEN ? S_RAW_END_NAME
		    : t->state == S_SD_END_OPEN ? S_SD_END_NAME : S_SD_ESC_END_NAME);
	raw_text(t, "</", 2);
	GOTO_STATE(t->state == S_RAW_END_OPEN ? S_RAW
	    : t->state == S_SD_END_OPEN ? S_SD : S_SD_ESC);

L_S_RAW_END_NAME:
L_S_SD_END_NAME:
L_S_SD_ESC_END_NAME:
	st = t->state == S_RAW_END_NAME ? S_RAW : t->state == S_SD_END_NAME ? S_SD : S_SD_ESC;
	while (p < e) {
		c = *p;
		if ((is_ws(c) || c == '/' || c == '>') && tmp_is(t, tagdefs[t->rawtag].name)) {
			/* the end tag of the raw text element */
			p++;
			raw_end(t);
			name_begin(t, true);
			for (size_t i = 0; i < t->tlen; i++)
				name_add(t, (unsigned char)t->tmp[i]);
			t->ntag = tag_id(t);
			if (c == '>')
				EMIT();
			if (c == '/')
				GO(S_SELF_CLOSING);
			GO(S_BEFORE_ATTR_NAME);
		}
		if (!is_alpha(c) || t->tlen >= tagdefs[t->rawtag].len) {
			raw_flush(t);
			GOTO_STATE(st);
		}
		t->tmp[t->tlen++] = c;
		p++;
	}
	return;

L_S_PLAINTEXT:
	data_text(t, p, (size_t)(e - p), true);
	return;

	/* ---- script data, with the escapes of "<!--" and "<script" inside ---- */
L_S_SD:
	q = memchr(p, '<', (size_t)(e - p));
	if ((q ? q : e) > p)
		raw_text(t, p, (size_t)((q ? q : e) - p));
	if (q == NULL)
		return;
	p = q + 1;
	GO(S_SD_LT);

L_S_SD_LT:
	if (*p == '/') {
		p++;
		t->tlen = 0;
		GO(S_SD_END_OPEN);
	}
	if (*p == '!') {
		p++;
		raw_text(t, "<!", 2);
		GO(S_SD_ESC_START);
	}
	raw_text(t, "<", 1);
	GO(S_SD);

L_S_SD_ESC_START:
	if (*p == '-') {
		raw_text(t, p++, 1);
		GO(S_SD_ESC_START_DASH);
	}
	GO(S_SD);

L_S_SD_ESC_START_DASH:
	if (*p == '-') {
		raw_text(t, p++, 1);
		GO(S_SD_ESC_DASH2);
	}
	GO(S_SD);

L_S_SD_ESC:
	for (q = p; q < e && *q != '-' && *q != '<'; q++)
		;
	if (q > p)
		raw_text(t, p, (size_t)(q - p));
	p = q;
	if (p == e)
		return;
	if (*p++ == '-') {
		raw_text(t, "-", 1);
		GO(S_SD_ESC_DASH);
	}
	GO(S_SD_ESC_LT);

L_S_SD_ESC_DASH:
L_S_SD_ESC_DASH2:
	c = *p++;
	if (c == '<')
		GO(S_SD_ESC_LT);
	raw_text(t, &c, 1);
	if (c == '-')
		GO(S_SD_ESC_DASH2);
	if (c == '>' && t->state == S_SD_ESC_DASH2)
		GO(S_SD);
	GO(S_SD_ESC);

L_S_SD_ESC_LT:
	if (*p == '/') {
		p++;
		t->tlen = 0;
		GO(S_SD_ESC_END_OPEN);
	}
	raw_text(t, "<", 1);
	if (is_alpha(*p)) {
		t->tlen = 0;
		GO(S_SD_DESC_START);
	}
	GO(S_SD_ESC);

L_S_SD_DESC_START:
L_S_SD_DESC_END:
	c = *p;
	if (is_ws(c) || c == '/' || c == '>') {
		bool is_script = tmp_is(t, "script");
		raw_text(t, p++, 1);
		if (t->state == S_SD_DESC_START)
			GOTO_STATE(is_script ? S_SD_DESC : S_SD_ESC);
		GOTO_STATE(is_script ? S_SD_ESC : S_SD_DESC);
	}
	if (is_alpha(c)) {
		if (t->tlen < sizeof(t->tmp))
			t->tmp[t->tlen++] = c;
		else
			t->tmp[0] = '#';  /* too long to be "script" */
		raw_text(t, p++, 1);
		GOTO_STATE(t->state);
	}
	GOTO_STATE(t->state == S_SD_DESC_START ? S_SD_ESC : S_SD_DESC);

L_S_SD_DESC:
	for (q = p; q < e && *q != '-' && *q != '<'; q++)
		;
	if (q > p)
		raw_text(t, p, (size_t)(q - p));
	p = q;
	if (p == e)
		return;
	c = *p++;
	raw_text(t, &c, 1);
	if (c == '-')
		GO(S_SD_DESC_DASH);
	GO(S_SD_DESC_LT);

L_S_SD_DESC_DASH:
L_S_SD_DESC_DASH2:
	c = *p++;
	raw_text(t, &c, 1);
	if (c == '-')
		GO(S_SD_DESC_DASH2);
	if (c == '<')
		GO(S_SD_DESC_LT);
	if (c == '>' && t->state == S_SD_DESC_DASH2)
		GO(S_SD);
	GO(S_SD_DESC);

L_S_SD_DESC_LT:
	if (*p == '/') {
		raw_text(t, p++, 1);
		t->tlen = 0;
		GO(S_SD_DESC_END);
	}
	GO(S_SD_DESC);
#undef GO
#undef GOTO_STATE
#undef EMIT
}

/* the end of input: what the pending states stand for */
static void
tok_finish(htok *t)
{
	switch (t->state) {
	case S_TAG_OPEN:
		data_text(t, "<", 1, false);
		break;
	case S_END_TAG_OPEN:
		data_text(t, "</", 2, false);
		break;
	case S_RAW_LT:
	case S_SD_LT:
	case S_SD_ESC_LT:
		raw_text(t, "<", 1);
		break;
	case S_RAW_END_OPEN:
	case S_SD_END_OPEN:
	case S_SD_ESC_END_OPEN:
		raw_text(t, "</", 2);
		break;
	case S_RAW_END_NAME:
	case S_SD_END_NAME:
	case S_SD_ESC_END_NAME:
		raw_flush(t);
		break;
	case S_COMMENT_START:
	case S_COMMENT_START_DASH:
	case S_COMMENT:
	case S_COMMENT_END_DASH:
	case S_COMMENT_END:
	case S_COMMENT_END_BANG:
		comment_end(t);
		break;
	case S_CDATA_B1:
		data_text(t, "]", 1, true);
		break;
	case S_CDATA_B2:
		data_text(t, "]]", 2, true);
		break;
	}
	t->state = S_DATA;
	t->run++;
	pop_to(t, 1);
	while (t->nlink)
		link_close(t);
	if (t->url.in)
		url_done(t);
}

static void
tok_reset(htok *t)
{
	t->state = S_DATA;
	t->mode = t->inner ? M_IN_BODY : M_BEFORE_HEAD;
	t->depth = 1;
	t->nmlen = 0;
	memset(t->open, 0, sizeof(t->open));
	t->over = t->templates = 0;
	t->run++;
	buf_reset(&t->ring);
	t->nlink = 0;
	t->url.in = false;
	t->url.m = 0;
	t->aseen = 0;
	t->twhy = t->st[0].twhy;
}

/* ---- allocation and the API ------------------------------------------------------------- */
static void
tok_free(htok *t)
{
	for (int i = 0; i < HTML_LINK_NEST; i++)
		link_free(&t->link[i]);
	free(t->st);
	free(t->side);
	free(t->nms);
	free(t->ring.p);
	t->st = NULL;
	t->side = NULL;
	t->sidecap = 0;
	t->nms = NULL;
	t->ring.p = NULL;
}

static void tok_begin(htok *t);

/* the buffers of a tokenizer; the comment one gets them at the first comment */
static bool
tok_alloc(htok *t)
{
	html_parser *h = t->h;

	t->stcap = t->sidecap = 0;
	t->st = NULL;
	t->side = NULL;
	t->nms = NULL;
	t->ring.p = malloc(HTML_RING);
	t->ring.cap = HTML_RING;
	/* 32 frames to start with, fewer under a smaller MaxHtmlDepth */
	if (!grow((void **)&t->st, &t->stcap, sizeof(hframe), h->lim.max_depth < 31 ? h->lim.max_depth + 1 : 32,
	    h->lim.max_depth + 1) ||
	    t->ring.p == NULL || !link_alloc(h, &t->link[0])) {
		tok_free(t);
		return false;
	}
	tok_begin(t);
	return true;
}

/* a tokenizer with its buffers at the start of a document: the frame of
 * the document, nothing read */
static void
tok_begin(htok *t)
{
	html_parser *h = t->h;
	hframe *r = &t->st[0];

	memset(r, 0, sizeof(*r));
	r->tag = T_OTHER;
	r->tab = 0;
	r->why = t->inner ? R_COMMENT : R_NONE;
	r->opacity = 1;
	r->font = 16;
	r->color = 0xff000000u;
	r->bg = 0xffffff;
	r->bglum = 1;
	r->cwhy = color_why(r);
	r->twhy = text_why(h, r);
	tok_reset(t);
}

static void
tok_setup(htok *t, html_parser *h, bool inner)
{
	t->h = h;
	t->inner = inner;
	t->attr = h->attr;
	t->url.buf = h->urlbuf;
}

/* ---- rules that come after the link -------------------------------------------- */
#define LATE_PROPS (1u << P_DISPLAY | 1u << P_VISIBILITY | 1u << P_OPACITY | \
	1u << P_FONT_SIZE | 1u << P_MSO_HIDE)

/* what the rules that came after it do to one element of a chain */
typedef struct hlate {
	uint8_t why;          /* it is not rendered at all */
	bool vis, font;       /* it is made invisible, its text too small ... */
	uint8_t fwhy;
	bool dvis, dfont;     /* ... and it sets visibility, font size at all */
} hlate;

static void
late_cel(const html_parser *h, const hcel *e, hlate *r)
{
	const hsheet *sh = &h->sheet;
	const char *names = (const char *)(e + 1), *tn = tagdefs[e->tag].name;
	size_t tl = tagdefs[e->tag].len;
	uint32_t taghash = e->tag == T_OTHER ? 0 : name_fnv(tn, tl), inl = e->inl | e->inl_imp;
	const css_decl *win[2][P_SCALE + 1];
	uint32_t from[2][P_SCALE + 1];
	cmatch m[HTML_CSS_MATCH];
	unsigned nm = 0, i, j;
	hstyle st;

	memset(r, 0, sizeof(*r));
	memset(win, 0, sizeof(win));
	nm = sheet_match(sh, e->tag != T_OTHER && sh->kinds & 1 << SEL_TAG && sh->tagrule[e->tag], taghash,
	    tn, tl, sh->kinds & 1 << SEL_ID ? names + e->ncls : NULL, sh->kinds & 1 << SEL_ID ? e->nid : 0,
	    sh->kinds & 1 << SEL_CLASS ? names : NULL, sh->kinds & 1 << SEL_CLASS ? e->ncls : 0, m);
	/* the last declaration of each property wins, !important ones apart */
	for (i = 0; i < nm; i++) {
		const css_rule *rl = &sh->r[m[i].order];
		for (j = 0; j < rl->nd; j++) {
			const css_decl *d = &sh->d[rl->d0 + j];
			if (d->prop == P_VISIBILITY)
				r->dvis = true;
			if (d->prop == P_FONT_SIZE)
				r->dfont = true;
			if (!(LATE_PROPS & 1u << d->prop))
				continue;
			win[d->imp][d->prop] = d;
			from[d->imp][d->prop] = m[i].order;
		}
	}
	r->dvis |= (inl & 1u << P_VISIBILITY) != 0;
	r->dfont |= (inl & 1u << P_FONT_SIZE) != 0;
	/* the style attribute beats the sheet but for its !important
	 * declarations: what is left and came late applies */
	style_init(&st);
	for (int p = 0; p <= P_SCALE; p++) {
		int k;
		if (!(LATE_PROPS & 1u << p) || e->inl_imp & 1u << p)
			continue;
		k = win[1][p] ? 1 : e->inl & 1u << p ? -1 : win[0][p] ? 0 : -1;
		if (k >= 0 && from[k][p] >= e->rules)
			style_apply(&st, win[k][p]);
	}
	if (st.disp == D_NONE)
		r->why = R_DISPLAY;
	else if (st.opacity >= 0 && st.opacity < 0.04f)
		r->why = R_OPACITY;
	else if (st.mso == 1)
		r->why = R_MSO;
	r->vis = st.vis == 1;
	if (st.fk >= 0 && st.fv < h->lim.min_font_px && (st.fk == F_PX || st.fv <= 0)) {
		r->font = true;
		r->fwhy = st.fv <= 0 ? R_FONT0 : R_FONTSMALL;
	}
}

/*
 * Rules of a <style> that comes after an element (one in the body, after the
 * link it hides): at the end of the document, each element of the chain of
 * a link still shown (see chain_keep) is looked up again in the whole sheet.
 * A declaration that wins its cascade and comes from a rule added after the
 * element was started hides the link when it is display:none, opacity:0 or
 * mso-hide:all, or visibility:hidden or a font size too small that no
 * element nearer the link sets again. A later rule does not show what an
 * earlier one hid, and other properties are not followed.
 */
static uint8_t
late_why(const html_parser *h, uint32_t chain)
{
	const hcel *cel[HTML_CHAIN];
	hlate r[HTML_CHAIN];
	uint32_t n = 0, i;
	bool late = false;

	for (uint32_t c = chain; c != 0 && n < HTML_CHAIN; c = cel[n - 1]->up) {
		cel[n] = (const hcel *)(const void *)(h->chains + c - 1);
		late |= cel[n++]->rules < h->sheet.nr;
	}
	if (!late)
		return R_NONE;
	for (i = 0; i < n; i++)
		late_cel(h, cel[i], &r[i]);
	/* from the outermost element in */
	for (i = n; i-- > 0;) {
		if (r[i].why)
			return r[i].why;
		bool vis = r[i].vis, font = r[i].font;
		for (uint32_t k = i; k-- > 0;) {
			vis &= !r[k].dvis;
			font &= !r[k].dfont;
		}
		if (vis)
			return R_VISIBILITY;
		if (font)
			return r[i].fwhy;
	}
	return R_NONE;
}

/* the limits as the parser takes them: defaults for zeros, bounds */
static void
limits_norm(const html_limits *lim, html_limits *out)
{
	memset(out, 0, sizeof(*out));
	if (lim)
		*out = *lim;
	if (out->max_depth == 0)
		out->max_depth = DEF_MAX_DEPTH;
	if (out->max_links == 0)
		out->max_links = DEF_MAX_LINKS;
	if (out->max_url == 0)
		out->max_url = DEF_MAX_URL;
	if (out->max_url > (size_t)1 << 24)
		out->max_url = (size_t)1 << 24;
	if (out->max_url < 64)
		out->max_url = 64;
	if (!(out->min_font_px > 0))
		out->min_font_px = DEF_MIN_FONT;
	if (out->max_css_rules == 0)
		out->max_css_rules = DEF_CSS_RULES;
}

static bool
limits_same(const html_limits *a, const html_limits *b)
{
	return a->max_depth == b->max_depth && a->max_links == b->max_links &&
	    a->max_url == b->max_url && a->min_font_px == b->min_font_px &&
	    a->max_css_rules == b->max_css_rules;
}

/* what a parser holds besides its buffers, as a new one has it */
static void
parser_start(html_parser *h, const html_limits *lim, const html_cb *cb, void *ud)
{
	h->lim = *lim;
	if (cb)
		h->cb = *cb;
	h->ud = ud;
	h->linkcolor = 0xff0000eeu;
	h->celrules = UINT32_MAX;
	h->sheet.maxr = h->lim.max_css_rules;
	h->sheet.maxd = h->sheet.maxr * 8;
}

static void
parser_destroy(html_parser *h)
{
	if (h == NULL)
		return;
	tok_free(&h->tok[0]);
	tok_free(&h->tok[1]);
	for (int i = 0; i < A_COUNT; i++)
		free(h->attr[i].v);
	free(h->urlbuf);
	free(h->styles);
	free(h->sheet.r);
	free(h->sheet.d);
	free(h->sheet.names);
	free(h->sheet.sel);
	free(h->sheet.dec);
	free(h->pend.href);
	free(h->pend.araw.p);
	free(h->scratch);
	free(h->cbuf);
	free(h->held);
	free(h->hold);
	free(h->chains);
	free(h);
}

/*
 * Every HTML part of every message gets a parser, and its buffers are some
 * thirty blocks. html_free() leaves it in a pool shared by the threads, and
 * html_new() with the same limits takes back the one left last, set to what
 * a new parser is: every field cleared but the buffers (whose bytes a new
 * parser does not read before it writes them either) and their sizes. (A
 * spare of each thread's own went cold while the other threads ran.)
 */
static bw_pool spares = BW_POOL_INIT;

/* the buffers of a parser, with their sizes */
typedef struct hkept {
	struct { char *v; size_t cap; } attr[A_COUNT];
	char *urlbuf, *phref, *scratch, *cbuf, *hold, *chains, *names, *sel, *dec;
	hbuf araw;
	style_cache *styles;
	css_rule *r;
	css_decl *d;
	hheld *held;
	unsigned rcap, dcap, ncap, heldcap;
	size_t holdcap, chaincap;
	struct {
		hframe *st;
		hside *side;
		char *nms;
		hbuf ring;
		unsigned stcap, sidecap;
		struct { char *href; hbuf raw, alt, valt; } link[HTML_LINK_NEST];
	} tok[2];
} hkept;

static void
parser_renew(html_parser *h, const html_limits *lim, const html_cb *cb, void *ud)
{
	hkept k;

	for (int i = 0; i < A_COUNT; i++)
		k.attr[i].v = h->attr[i].v, k.attr[i].cap = h->attr[i].cap;
	k.urlbuf = h->urlbuf, k.phref = h->pend.href, k.scratch = h->scratch, k.cbuf = h->cbuf;
	k.araw = h->pend.araw;
	k.styles = h->styles;
	k.r = h->sheet.r, k.rcap = h->sheet.rcap, k.d = h->sheet.d, k.dcap = h->sheet.dcap;
	k.names = h->sheet.names, k.ncap = h->sheet.ncap, k.sel = h->sheet.sel, k.dec = h->sheet.dec;
	k.held = h->held, k.heldcap = h->heldcap, k.hold = h->hold, k.holdcap = h->holdcap;
	k.chains = h->chains, k.chaincap = h->chaincap;
	for (int j = 0; j < 2; j++) {
		const htok *t = &h->tok[j];
		k.tok[j].st = t->st, k.tok[j].stcap = t->stcap;
		k.tok[j].side = t->side, k.tok[j].sidecap = t->sidecap;
		k.tok[j].nms = t->nms, k.tok[j].ring = t->ring;
		for (int i = 0; i < HTML_LINK_NEST; i++) {
			k.tok[j].link[i].href = t->link[i].href;
			k.tok[j].link[i].raw = t->link[i].raw;
			k.tok[j].link[i].alt = t->link[i].alt;
			k.tok[j].link[i].valt = t->link[i].valt;
		}
	}
	memset(h, 0, sizeof(*h));
	for (int i = 0; i < A_COUNT; i++)
		h->attr[i].v = k.attr[i].v, h->attr[i].cap = k.attr[i].cap;
	h->urlbuf = k.urlbuf, h->pend.href = k.phref, h->scratch = k.scratch, h->cbuf = k.cbuf;
	h->pend.araw.p = k.araw.p, h->pend.araw.cap = k.araw.cap;
	/* the declarations of a style attribute are those of its text alone
	 * (the next message of a campaign repeats them): they are kept */
	if ((h->styles = k.styles) != NULL)
		style_memo_clear(h->styles);
	h->sheet.r = k.r, h->sheet.rcap = k.rcap, h->sheet.d = k.d, h->sheet.dcap = k.dcap;
	h->sheet.names = k.names, h->sheet.ncap = k.ncap, h->sheet.sel = k.sel, h->sheet.dec = k.dec;
	h->held = k.held, h->heldcap = k.heldcap, h->hold = k.hold, h->holdcap = k.holdcap;
	h->chains = k.chains, h->chaincap = k.chaincap;
	parser_start(h, lim, cb, ud);
	for (int j = 0; j < 2; j++) {
		htok *t = &h->tok[j];
		tok_setup(t, h, j == 1);
		t->st = k.tok[j].st, t->stcap = k.tok[j].stcap;
		t->side = k.tok[j].side, t->sidecap = k.tok[j].sidecap;
		t->nms = k.tok[j].nms;
		t->ring.p = k.tok[j].ring.p, t->ring.cap = k.tok[j].ring.cap;
		for (int i = 0; i < HTML_LINK_NEST; i++) {
			hlink *L = &t->link[i];
			L->href = k.tok[j].link[i].href;
			L->raw.p = k.tok[j].link[i].raw.p, L->raw.cap = k.tok[j].link[i].raw.cap;
			L->alt.p = k.tok[j].link[i].alt.p, L->alt.cap = k.tok[j].link[i].alt.cap;
			L->valt.p = k.tok[j].link[i].valt.p, L->valt.cap = k.tok[j].link[i].valt.cap;
		}
		if (t->st)
			tok_begin(t);
	}
}

html_parser *
html_new(const html_limits *lim, const html_cb *cb, void *ud)
{
	html_limits nl;
	html_parser *h;

	limits_norm(lim, &nl);
	if ((h = bw_pool_take(&spares)) != NULL) {
		if (limits_same(&h->lim, &nl)) {
			parser_renew(h, &nl, cb, ud);
			return h;
		}
		parser_destroy(h);
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	parser_start(h, &nl, cb, ud);
	bool ok = true;
	for (int i = 0; i < A_COUNT; i++) {
		static const size_t caps[A_COUNT] = {
			[A_STYLE] = HTML_ATTR_MAX, [A_CLASS] = HTML_ATTR_MAX, [A_ID] = HTML_ATTR_ID,
			[A_ALT] = HTML_ATTR_ALT, [A_TITLE] = HTML_ATTR_ALT,
		};
		h->attr[i].cap = i == A_HREF ? h->lim.max_url + 1024 : caps[i] ? caps[i] : HTML_ATTR_SMALL;
		ok &= (h->attr[i].v = malloc(h->attr[i].cap)) != NULL;
	}
	h->urlbuf = malloc(h->lim.max_url + 1);
	h->pend.href = malloc(h->lim.max_url + 1);
	h->pend.araw.p = malloc(HTML_AFTER_RAW);
	h->pend.araw.cap = HTML_AFTER_RAW;
	h->scratch = malloc(SC_SIZE);
	tok_setup(&h->tok[0], h, false);
	tok_setup(&h->tok[1], h, true);
	if (!ok || !h->urlbuf || !h->pend.href || !h->pend.araw.p || !h->scratch ||
	    !tok_alloc(&h->tok[0])) {
		parser_destroy(h);
		return NULL;
	}
	return h;
}

void
html_feed(html_parser *h, const char *buf, size_t len)
{
	if (h == NULL || h->finished || len == 0)
		return;
	tok_feed(&h->tok[0], buf, len);
}

void
html_finish(html_parser *h)
{
	if (h == NULL || h->finished)
		return;
	h->finished = true;
	tok_finish(&h->tok[0]);
	pend_deliver(h);
	for (unsigned i = 0; i < h->nheld && h->sheet.nr > h->celrules; i++) {
		hheld *k = &h->held[i];
		uint8_t why;
		if (k->visible && k->chain && (why = late_why(h, k->chain)) != R_NONE) {
			k->visible = false;
			k->why = html_reasons[why];
		}
	}
	hold_flush(h);
}

const char *
html_limit_hit(const html_parser *h)
{
	return h ? h->limit : NULL;
}

void
html_free(html_parser *h)
{
	if (h == NULL)
		return;
	parser_destroy(bw_pool_give(&spares, h));
}

void
html_spares_free(void)
{
	html_parser *h;

	while ((h = bw_pool_take(&spares)) != NULL)
		parser_destroy(h);
}
