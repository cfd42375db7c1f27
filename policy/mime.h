/*
 * mime.h - streaming MIME walker.
 *
 * Owns: splitting a message body into parts as chunks arrive (any split,
 * including inside a boundary line or a CRLF), nested multiparts and
 * message/rfc822, transfer decoding (base64, quoted-printable), charset
 * conversion to UTF-8 with iconv. It keeps no copy of the body: only the
 * current line fragment, the header block of the part being read (bounded)
 * and the decoder state.
 *
 * The top-level headers are given with mime_header() (the milter receives
 * them apart from the body); mime_feed() then takes the body only.
 */
#ifndef BW_MIME_H
#define BW_MIME_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mime_limits {
	unsigned max_depth;      /* MaxMimeDepth: multipart/rfc822 nesting (32) */
	unsigned max_parts;      /* MaxMimeParts: parts in all (1000) */
	size_t max_header_line;  /* MaxHeaderLine: one unfolded header (16 KB) */
	size_t max_header_bytes; /* MaxHeaderBytes: one part's header block (64 KB) */
	size_t max_body_scan;    /* MaxBodyScan: raw body bytes looked at (10 MB) */
} mime_limits;

typedef struct mime_part {
	int index;             /* leaf parts numbered from 0 in order of appearance */
	int depth;             /* 0 = the message body itself */
	const char *type;      /* lower case type/subtype; "text/plain" by default */
	const char *charset;   /* lower case as declared; "" when none */
	const char *encoding;  /* lower case transfer encoding; "7bit" by default */
	const char *filename;  /* from Content-Disposition filename= or name=; NULL */
	bool attachment;       /* Content-Disposition: attachment */
	bool in_alternative;   /* below a multipart/alternative */
	bool in_rfc822;        /* inside an encapsulated message/rfc822 */
	bool view;             /* text/html or text/plain that a reader sees as the
	                          body: not an attachment, not inside message/rfc822 */
	bool charset_unknown;  /* iconv cannot convert it; bytes passed with invalid
	                          UTF-8 sequences replaced by U+FFFD */
} mime_part;

typedef struct mime_cb {
	/* every leaf part (not multipart containers) */
	void (*part_begin)(void *ud, const mime_part *p);
	/* decoded UTF-8 content of text (text/...) leaf parts, in pieces of any
	   size; a piece never cuts a character in two */
	void (*part_text)(void *ud, const mime_part *p, const char *utf8, size_t len);
	void (*part_end)(void *ud, const mime_part *p);
} mime_cb;

typedef enum {
	MIME_OK = 0,
	MIME_LIMIT,   /* a bound was hit: see mime_limit_hit(); later input ignored */
	MIME_NOMEM
} mime_status;

typedef struct mime_walker mime_walker;

mime_walker *mime_new(const mime_limits *lim, const mime_cb *cb, void *ud);
/* A top-level header, unfolded, as the MTA gives it. Only the MIME ones matter. */
void mime_header(mime_walker *w, const char *name, const char *value);
/* Body bytes, as they come. */
mime_status mime_feed(mime_walker *w, const char *buf, size_t len);
/* End of body: flushes decoders, closes open parts. */
mime_status mime_finish(mime_walker *w);
/* Config key of the first bound hit ("MaxMimeDepth"...), or NULL. */
const char *mime_limit_hit(const mime_walker *w);
void mime_free(mime_walker *w);

#endif
