/*
 * complaint.h - complaint reports (RFC 5965 ARF): what a report says, whether
 * it is authenticated, and the key that counts it once (DESIGN.md 4,
 * "Complaints and rates").
 *
 * The daemon collects a message sent to the complaint address (up to its
 * own size cap) and hands it over whole, as received. Three steps, each
 * usable alone:
 *   bw_arf_parse()        the report's fields and the original's headers;
 *   bw_arf_authenticate() a valid DKIM signature by a trusted reporter;
 *   bw_arf_dedupe_key()   one key per (original message, recipient).
 * Nothing here reads the store, logs, or talks to the MTA; errors are
 * values with a sentence.
 *
 * Bounds (a report is small; anything past them is refused, not cut):
 *   BW_ARF_SIZE_MAX    the whole message;
 *   BW_ARF_HDR_MAX     one header block: the report's own, a MIME part's,
 *                      the feedback-report fields, the original's headers;
 *   BW_ARF_LINE_MAX    one header field as written, folds included;
 *   BW_ARF_FIELDS_MAX  fields in one header block;
 *   BW_ARF_PARTS_MAX   parts of the top-level multipart/report;
 *   BW_ARF_BOUNDARY_MAX the MIME boundary (RFC 2046 says 70; longer ones
 *                      are seen);
 *   BW_ARF_MULTI_MAX   Original-Rcpt-To fields, and Reported-Domain fields;
 *   BW_ARF_SIGS_MAX    DKIM-Signature fields handed to libopendkim.
 */
#ifndef BW_COMPLAINT_H
#define BW_COMPLAINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BW_ARF_SIZE_MAX     (4u << 20)
#define BW_ARF_HDR_MAX      (64u << 10)
#define BW_ARF_LINE_MAX     (16u << 10)
#define BW_ARF_FIELDS_MAX   500
#define BW_ARF_PARTS_MAX    32
#define BW_ARF_BOUNDARY_MAX 200
#define BW_ARF_MULTI_MAX    16
#define BW_ARF_SIGS_MAX     8

/* The header the milter stamps on outbound bulk mail; its value (a signed
 * token) is opaque here and returned as found in the original. */
#define BW_TRACE_HEADER "X-Bulkwarden-Trace"

/* ---- parsing ----
 * A report is a top-level multipart/report with report-type=feedback-report
 * (parameter names and values case-insensitive, RFC 6522). Its parts are
 * found by type, not position: the first message/feedback-report part
 * (a second one is an error) and the first message/rfc822,
 * text/rfc822-headers, message/global or message/global-headers part (the
 * original, or its headers). Any part may be base64 or quoted-printable
 * encoded; other parts are skipped. Lines may end in CRLF or LF. A missing
 * closing delimiter is tolerated (the last part runs to the end).
 *
 * Feedback-report fields (RFC 5965 3.1-3.3, RFC 6591, RFC 6430):
 *   Feedback-Type      required, once: a token, kept lower-cased;
 *   User-Agent, Version  required by the RFC, once; accepted when absent
 *                      (the report is then not "conforming"); Version must
 *                      be 1 (or 1.0, or 0.1 from the ARF drafts);
 *   Original-Mail-From once, Arrival-Date once (Received-Date, its old name,
 *                      when there is no Arrival-Date), Source-IP once;
 *   Original-Rcpt-To, Reported-Domain  repeatable, up to BW_ARF_MULTI_MAX.
 * Other fields are ignored. A required field missing (Feedback-Type), a
 * once-only field repeated, or a value that does not parse is
 * BW_ARF_EFIELD naming the field. The fields end at the first empty line.
 *
 * From the original's header block (read up to its first empty line, or up
 * to a line that is not a header field: it is someone else's message, and
 * a broken line ends it rather than the report) the first Message-ID,
 * From, BW_TRACE_HEADER, CFBL-Feedback-ID (RFC 9477) and Feedback-ID are
 * kept, unfolded and trimmed, and all its fields are hashed (see
 * orig_hash). A report without an original part is accepted (has_original
 * false, not conforming): it can still be read, but not mapped back. */
typedef enum {
	BW_ARF_OK = 0,
	BW_ARF_ETOOBIG,     /* the message is over BW_ARF_SIZE_MAX */
	BW_ARF_ELIMIT,      /* a header, header block, field or part count over its bound */
	BW_ARF_EHEADER,     /* the report's or a part's header block does not parse */
	BW_ARF_ENOTREPORT,  /* not multipart/report */
	BW_ARF_ENOTFEEDBACK,/* a multipart/report of another type (delivery-status...) */
	BW_ARF_EMIME,       /* no boundary, no parts, an unknown transfer encoding */
	BW_ARF_ENOFEEDBACK, /* no message/feedback-report part, or two */
	BW_ARF_EFIELD,      /* a feedback-report field missing, repeated or malformed */
	BW_ARF_ENOMEM
} bw_arf_err;
const char *bw_arf_err_name(bw_arf_err e);

typedef enum {
	BW_FT_ABUSE = 0,    /* "abuse": unsolicited mail (the complaint) */
	BW_FT_FRAUD,        /* "fraud" */
	BW_FT_VIRUS,        /* "virus" */
	BW_FT_OTHER,        /* "other" */
	BW_FT_NOT_SPAM,     /* "not-spam" (RFC 6430) */
	BW_FT_AUTH_FAILURE, /* "auth-failure" (RFC 6591) */
	BW_FT_UNKNOWN       /* any other token; feedback_type has it */
} bw_arf_ftype;
const char *bw_arf_ftype_name(bw_arf_ftype t);

typedef enum {
	BW_ARF_ORIG_NONE = 0,
	BW_ARF_ORIG_MESSAGE, /* message/rfc822 or message/global */
	BW_ARF_ORIG_HEADERS  /* text/rfc822-headers or message/global-headers */
} bw_arf_orig;

/* Strings are malloc'd and NUL-terminated; NULL when the field is absent. */
typedef struct bw_arf {
	/* the report's own header */
	char *report_msgid;          /* its Message-ID, as written */
	/* message/feedback-report */
	bw_arf_ftype ftype;
	char *feedback_type;         /* lower case, e.g. "abuse" */
	char *user_agent;
	char *version;
	char *mail_from;             /* Original-Mail-From, angle brackets removed;
	                                "" for the null path <> */
	char *rcpt[BW_ARF_MULTI_MAX];/* Original-Rcpt-To, brackets removed, in order */
	size_t nrcpt;
	char *arrival_date;          /* Arrival-Date as written ... */
	int64_t arrival;             /* ... and in unix seconds (when arrival_date) */
	char source_ip[46];          /* Source-IP in canonical text form; "" if absent */
	char *domains[BW_ARF_MULTI_MAX]; /* Reported-Domain, lower case, no trailing dot */
	size_t ndomains;
	/* the original message */
	bw_arf_orig has_original;
	char *orig_msgid;            /* Message-ID, as written (unfolded) */
	char *orig_from;             /* From */
	char *trace;                 /* BW_TRACE_HEADER: opaque */
	char *cfbl_id;               /* CFBL-Feedback-ID */
	char *feedback_id;           /* Feedback-ID */
	/* SHA-256 of the original's header fields in order, each as
	   "name:value\r\n" with the name lower-cased and the value unfolded,
	   runs of white space made one space, trimmed (DKIM relaxed style), so
	   that re-folding on the way does not change it; all zero when
	   has_original is NONE */
	unsigned char orig_hash[32];
	/* Feedback-Type, User-Agent and Version present and an original part */
	bool conforming;
} bw_arf;

/* Parse msg (len bytes, any content: NULs and 8-bit bytes are data).
 * BW_ARF_OK fills *r (free with bw_arf_clear); otherwise *r holds nothing
 * to free and err has a sentence ("report-type is delivery-status, not
 * feedback-report"). */
bw_arf_err bw_arf_parse(const char *msg, size_t len, bw_arf *r, char *err, size_t errlen);
void bw_arf_clear(bw_arf *r); /* frees the strings, zeroes the rest */

/* ---- authentication ----
 * A report counts only when the report message as received carries a
 * DKIM signature that libopendkim verifies (header signature and body
 * hash), by a d= on the trusted-reporters list, covering the whole body:
 * a signature with l= shorter than the canonicalised body is refused (text
 * may have been added after the signed part). Signatures by domains that
 * are not trusted are skipped before any key lookup, so a report cannot
 * make the daemon query arbitrary domains. The header block is checked
 * against BW_ARF_HDR_MAX, BW_ARF_LINE_MAX and BW_ARF_FIELDS_MAX, and
 * DKIM-Signature fields against BW_ARF_SIGS_MAX, before the library sees
 * any of it. SPF is not looked at (it can only corroborate: the caller's
 * business). */
typedef enum {
	BW_ARF_QUERY_DNS = 0,  /* keys from DNS (the daemon) */
	BW_ARF_QUERY_FILE      /* keys from a file of "selector._domainkey.domain
	                          TXT-value" lines (tests) */
} bw_arf_query;

typedef struct bw_arf_verifier_opts {
	bw_arf_query query;
	const char *query_info;  /* BW_ARF_QUERY_FILE: the file; else NULL */
	unsigned timeout;        /* DNS seconds; 0: the library's default */
	unsigned min_key_bits;   /* 0: the library's default (1024) */
	const char *nameservers; /* DNS: "ADDR[,ADDR...]" instead of the system's; NULL or "" */
} bw_arf_verifier_opts;

/* One libopendkim library handle; safe to share between threads once made
 * (libopendkim handles are made per message). NULL with err on failure. */
typedef struct bw_arf_verifier bw_arf_verifier;
bw_arf_verifier *bw_arf_verifier_new(const bw_arf_verifier_opts *o, char *err, size_t errlen);
void bw_arf_verifier_free(bw_arf_verifier *v);

/* Trusted reporters: DKIM d= domains (ASCII, A-labels for IDNs), compared
 * without regard to case or a trailing dot. subdomains: a d= below a listed
 * domain counts too ("fbl.example.net" for "example.net"; never
 * "badexample.net"). */
typedef struct bw_arf_trust {
	const char *const *domains;
	size_t n;
	bool subdomains;
} bw_arf_trust;
bool bw_arf_trusted(const bw_arf_trust *t, const char *domain);

typedef enum {
	BW_ARF_AUTH_OK = 0,    /* authenticated */
	BW_ARF_AUTH_NOSIG,     /* no DKIM-Signature field */
	BW_ARF_AUTH_UNTRUSTED, /* signed, but by no trusted reporter */
	BW_ARF_AUTH_BADSIG,    /* the signature does not verify, or does not parse */
	BW_ARF_AUTH_BODYHASH,  /* the header signature holds, the body hash does not */
	BW_ARF_AUTH_SHORT_L,   /* valid, but l= leaves part of the body unsigned */
	BW_ARF_AUTH_NOKEY,     /* no usable key: none published, revoked, unusable */
	BW_ARF_AUTH_TEMPFAIL,  /* the key lookup failed for now: try again later */
	BW_ARF_AUTH_TOOBIG,    /* over a bound above; the library was not asked */
	BW_ARF_AUTH_MALFORMED, /* the header block does not parse */
	BW_ARF_AUTH_ERROR      /* libopendkim failed (no memory, internal) */
} bw_arf_auth_status;
const char *bw_arf_auth_status_name(bw_arf_auth_status s);

typedef struct bw_arf_auth {
	bool authenticated;        /* status == BW_ARF_AUTH_OK */
	bw_arf_auth_status status;
	char domain[256];          /* d= of the signature that decided; "" if none */
	char why[256];             /* a sentence for the log */
} bw_arf_auth;

/* When several signatures are there, one that passes wins; else the
 * outcome of a trusted reporter's signature is told, TEMPFAIL first (a
 * retry may pass), then SHORT_L, BODYHASH, BADSIG, NOKEY; UNTRUSTED only
 * when no trusted reporter signed. */
void bw_arf_authenticate(bw_arf_verifier *v, const bw_arf_trust *t, const char *msg, size_t len,
    bw_arf_auth *a);

/* ---- a message's own DKIM signatures (SenderIdentity dkim) ----
 * Fed as the MTA hands the message over: header fields (the name, and the
 * value without the space after the colon), end of headers, body chunks;
 * nothing of the body is kept. The same bounds as for reports apply to
 * the header block (over one, no signature counts). Every d= is looked up,
 * not only trusted reporters: the caller decides whose mail is checked. A
 * signature with l= never counts (the body is not kept to compare). */
typedef struct bw_dkim_stream bw_dkim_stream;
bw_dkim_stream *bw_dkim_stream_new(bw_arf_verifier *v); /* NULL: no memory, no verifier */
void bw_dkim_stream_header(bw_dkim_stream *s, const char *name, const char *value);
void bw_dkim_stream_eoh(bw_dkim_stream *s);
/* Whether body chunks are still wanted (false: no signature, or failed). */
bool bw_dkim_stream_wants_body(const bw_dkim_stream *s);
void bw_dkim_stream_body(bw_dkim_stream *s, const char *p, size_t n);
/* At end of message: BW_ARF_AUTH_OK with the d= in dom of a signature that
 * verifies, one aligned with from_dom (the From header's domain, or NULL)
 * preferred; else the most telling failure (TEMPFAIL before SHORT_L,
 * BODYHASH, BADSIG, NOKEY; NOSIG with no signature at all) with its d=
 * when there is one. why gets a sentence either way. */
bw_arf_auth_status bw_dkim_stream_finish(bw_dkim_stream *s, const char *from_dom, char dom[256],
    char *why, size_t whylen);
void bw_dkim_stream_free(bw_dkim_stream *s);

/* ---- counting once ----
 * "arf1:" and 64 lower-case hex digits: SHA-256 over the original's
 * Message-ID (the part between the first < and the next >, white space
 * removed; the whole value when there are no brackets), or, lacking one,
 * orig_hash, and the recipient (rcpt: an Original-Rcpt-To, or the one the
 * trace header names, as the caller chose; angle brackets and white space
 * around it removed, ASCII lower-cased). The same report delivered twice
 * gives the same key; so does a second report on the same message and
 * recipient, which is meant: count complaints by type before keying. False
 * (out empty) when rcpt is empty or there is neither a Message-ID nor an
 * original part. */
#define BW_ARF_KEY_LEN 69
bool bw_arf_dedupe_key(const bw_arf *r, const char *rcpt, char out[BW_ARF_KEY_LEN + 1]);

#endif
