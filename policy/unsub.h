/*
 * unsub.h - unsubscribe evidence.
 *
 * Owns the rule of DESIGN.md 4 "Visible unsubscribe": for every body view
 * (the HTML and text parts of an alternative, the one part of a single-part
 * message; not attachments) is there a working, labelled, visible, honest
 * unsubscribe link; and the List-Unsubscribe (RFC 2369) and
 * List-Unsubscribe-Post (RFC 8058) headers, parsed strictly.
 *
 * Fed the message's headers and body chunks; runs the MIME walker and, per
 * view, the HTML tokenizer or the text/plain scanner; keeps only the facts.
 */
#ifndef BW_UNSUB_H
#define BW_UNSUB_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "phrases.h"

/* Body link result, from best to worst; a message's result is its worst view's. */
typedef enum {
	UNSUB_VISIBLE = 0,
	UNSUB_UNRENDERED,   /* labelled and shown, target an unrendered merge tag */
	UNSUB_HIDDEN,       /* a working unsubscribe link exists but is not shown */
	UNSUB_ABSENT        /* no working unsubscribe link */
} unsub_body;

typedef enum { UNSUB_HDR_ABSENT = 0, UNSUB_HDR_OK, UNSUB_HDR_MALFORMED } unsub_hdr;

const char *unsub_body_name(unsub_body b);  /* "visible", "unrendered", ... */
const char *unsub_hdr_name(unsub_hdr h);    /* "ok", "absent", "malformed" */

/* One link found in a view, as reported by scan. */
typedef struct unsub_link {
	char *part;         /* "text/html", "text/plain" */
	char *href;
	char *text;
	bool visible;
	char *why;          /* NULL when visible */
	bool unsubscribe;   /* labelled as an unsubscribe link */
} unsub_link;

/* One body view's finding. */
typedef struct unsub_view {
	char *part;         /* "text/html" */
	int index;          /* MIME leaf index */
	unsub_body result;
	char *detail;       /* "link hidden by display:none", "no unsubscribe link" */
} unsub_view;

typedef struct unsub_result {
	unsub_body body;           /* worst view */
	const unsub_view *worst;   /* the view that gave it, or NULL when no view */
	unsub_hdr list_unsubscribe;
	char *lu_detail;           /* why malformed, or NULL */
	bool lu_https, lu_mailto;  /* List-Unsubscribe has such a URI */
	unsub_hdr one_click;
	char *oc_detail;
	unsub_view *views; size_t nviews;
	unsub_link *links; size_t nlinks;   /* bounded by MaxLinks; none after
	                                       unsub_skip_links() */
	const char *limit;         /* config key of a bound hit, or NULL */
	bool charset_unknown;      /* some view had a charset iconv does not know */
} unsub_result;

typedef struct unsub_scan unsub_scan;

/* pol supplies the phrases and the bounds; it must outlive the scan. */
unsub_scan *unsub_new(const bw_policy *pol);
/* The links are not listed in the result (the milter's verdict does not
 * need them; a scan report does): call before the body. */
void unsub_skip_links(unsub_scan *s);
void unsub_header(unsub_scan *s, const char *name, const char *value);
/* body chunks; false once more body cannot change the result */
bool unsub_body_feed(unsub_scan *s, const char *buf, size_t len);
/* Finish and fill r (owned by the scan until unsub_free). */
/* NULL when out of memory, or when a view could not be set up (then no
 * verdict can be given: the caller defers, OnInternalError). */
const unsub_result *unsub_finish(unsub_scan *s);
void unsub_free(unsub_scan *s);

/* ---- pieces, exported for tests ---- */
/* RFC 2369: one or more <URI>, comma separated; each https/http with a host
 * or mailto with an address. detail gets why when malformed. */
unsub_hdr unsub_parse_list_unsubscribe(const char *value, bool *has_https, bool *has_mailto,
    char *detail, size_t detsz);
/* A working target: http(s) URL with a host, or mailto: with an address. */
bool unsub_target_works(const char *href);
/* An unrendered merge tag: *|UNSUB|*, {{...}}, %%...%%, [unsubscribe], <%...%> ... */
bool unsub_target_unrendered(const char *href);
/* Registrable domain (eTLD+1, built-in list of common multi-label suffixes). */
size_t unsub_registrable_domain(const char *host, size_t len, const char **start);

#endif
