/*
 * consent.h - consent records, suppressions, recipient normalisation,
 * signed unsubscribe tokens and the keyed hash that erasure leaves behind.
 *
 * A consent record says that SENDER may send bulk mail to RCPT: when it was
 * granted (and, for double opt-in, confirmed, and from which IP), how
 * (method, source), what the recipient was told (consent-text version),
 * an evidence reference, an optional expiry and, once withdrawn, when.
 * A suppression says that SENDER ("*": every sender) must not send to RCPT:
 * why (unsubscribe, complaint, admin, bounce), when, and from where.
 *
 * Keys in the store (tables BW_TBL_CONSENT and BW_TBL_SUPPRESS) are
 * "SENDER RCPT": the sender id, one space, the normalised recipient. RCPT is
 * "*@domain" for domain-wide consent (B2B), or "#" and 64 hex digits (the
 * keyed hash of an erased address) in a suppression. Sender ids are 1..128
 * bytes of printable ASCII other than space; "*" is reserved for global
 * suppressions.
 *
 * Precedence: a suppression beats consent unless the consent was granted
 * after the suppression by a method the policy lets lift one.
 *
 * Nothing here logs; errors are values with a sentence in err.
 */
#ifndef BW_CONSENT_H
#define BW_CONSENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

#define BW_SENDER_MAX   128 /* bytes in a sender id */
#define BW_ADDR_MAX     320 /* bytes in a normalised address (64 + @ + 255) */
#define BW_CFIELD_MAX   2048 /* bytes in a free-text field (source, evidence, ...) */

/* ---- recipient normalisation ----
 * Angle brackets and surrounding white space are removed; the domain is
 * lower-cased and an IDN (U-label) domain becomes its A-label (libidn2,
 * IDNA 2008 with the UTS#46 transitional mapping off, so "straße.de" is
 * "xn--strae-oqa.de"); ASCII domains are taken as written (lower-cased,
 * labels of letters, digits, '-', '_'); a trailing dot is dropped; an
 * address literal ("[192.0.2.1]") is kept, lower-cased. The local part is
 * kept as written unless fold_case (lower-case its ASCII letters) or
 * fold_plus (drop everything from the first '+': "bob+news+x" becomes
 * "bob"; kept when it starts with '+' or would become "*"). A quoted local part
 * that needs no quotes ("bob"@x) is unquoted, so it gets the same key as
 * bob@x, and folded; any other quoted local part is kept verbatim (only
 * '"' and '\' escaped) and never folded. Local parts may be UTF-8
 * (RFC 6531) and up to 128 octets (RFC 5321 says 64; VERP locals run
 * longer); the domain up to 253, the whole result up to BW_ADDR_MAX.
 * Refused: no '@', more than one '@' outside quotes, an empty local part
 * or domain, control characters, spaces or specials outside quotes,
 * invalid UTF-8, empty or over-long labels. "*@domain" is accepted only
 * when allow_wildcard (it is the domain-wide consent key). */
typedef struct bw_norm_opts {
	bool fold_case;
	bool fold_plus;
} bw_norm_opts;

/* Returns true with the result in out; false with a reason in err
 * ("no @", "empty local part", "bad domain: ...", "too long"). */
bool bw_addr_normalise(const char *in, const bw_norm_opts *o, bool allow_wildcard,
    char *out, size_t outlen, char *err, size_t errlen);
/* A sender id as used in keys: true when it is well formed (see above).
 * False for "*": that is not a sender but "every sender" in suppressions. */
bool bw_sender_id_ok(const char *sender);
/*
 * SenderIdentity: where the sender id comes from, as a list of sources
 * tried in order; the first that gives a well-formed id wins:
 *   login    the SASL login ({auth_authen}), at MAIL FROM;
 *   domain   the envelope sender's domain (case folded), at MAIL FROM;
 *   address  the envelope sender (case folded), at MAIL FROM;
 *   header   SenderIdHeader, when a TrustedUpstreamHosts client set it,
 *            at end of headers;
 *   dkim     the d= of a DKIM signature on the message that verifies,
 *            at end of message.
 * "login-or-domain" is "login domain". A source that is known only later
 * (header, dkim) defers the sources after it: "login header domain" is
 * the login at MAIL FROM when there is one, else, at end of headers, the
 * header, else the domain.
 */
/* (bw_sid_source and bw_sid_order are in config.h) */
const char *bw_sid_source_name(bw_sid_source s);
/* Parse a SenderIdentity value; false with a sentence in err. */
bool bw_sid_order_parse(const char *s, bw_sid_order *o, char *err, size_t errlen);
/* Does the order name this source? */
bool bw_sid_order_has(const bw_sid_order *o, bw_sid_source s);

/* The id one envelope source gives mail from the envelope sender from,
 * submitted with the SASL login (NULL: none). False, out "", when it gives
 * none (header and dkim never give one here). */
bool bw_sender_id_from(bw_sid_source s, const char *from, const char *login,
    char out[BW_SENDER_MAX + 1]);
/* The first id the envelope sources of o give (header and dkim skipped:
 * for a complaint report, which has no trusted header of its own). */
bool bw_sender_id_of(const bw_sid_order *o, const char *from, const char *login,
    char out[BW_SENDER_MAX + 1]);

/* ---- records ---- */
typedef enum {
	BW_CM_DOUBLE_OPT_IN = 0, /* "double-opt-in" */
	BW_CM_SINGLE_OPT_IN,     /* "single-opt-in" */
	BW_CM_IMPORT,            /* "import" */
	BW_CM_API,               /* "api" */
	BW_CM__N
} bw_consent_method;
const char *bw_consent_method_name(bw_consent_method m);
/* -1 when unknown */
int bw_consent_method_parse(const char *s);
/* "double-opt-in,single-opt-in" -> a bit mask (1u << method); false with
 * the bad word in err. */
bool bw_consent_methods_parse(const char *list, unsigned *mask, char *err, size_t errlen);

typedef struct bw_consent {
	char sender[BW_SENDER_MAX + 1];
	char rcpt[BW_ADDR_MAX + 1];  /* normalised, or "*@domain" */
	bw_consent_method method;
	int64_t granted_at;    /* unix seconds, required */
	int64_t confirmed_at;  /* double opt-in: when the recipient confirmed; 0 = none */
	int64_t expires_at;    /* 0 = only the policy's maximum age applies */
	int64_t withdrawn_at;  /* 0 = not withdrawn */
	int64_t recorded_at;   /* when bulkwarden wrote it */
	char *source;          /* form URL, list name, API client; may be NULL */
	char *source_ip;       /* where the request came from; may be NULL */
	char *confirm_ip;      /* double opt-in: where the confirmation came from */
	char *text;            /* consent-text version or hash the recipient saw */
	char *evidence;        /* reference to the sender's proof */
} bw_consent;
void bw_consent_clear(bw_consent *c); /* frees the strings, zeroes the rest */

typedef enum {
	BW_SR_UNSUBSCRIBE = 0, /* "unsubscribe" */
	BW_SR_COMPLAINT,       /* "complaint" */
	BW_SR_ADMIN,           /* "admin" */
	BW_SR_BOUNCE,          /* "bounce" */
	BW_SR__N
} bw_supp_reason;
const char *bw_supp_reason_name(bw_supp_reason r);
int bw_supp_reason_parse(const char *s);

typedef struct bw_suppression {
	char sender[BW_SENDER_MAX + 1]; /* "*" = every sender */
	char rcpt[BW_ADDR_MAX + 1];     /* normalised, or "#<64 hex>" after erasure */
	bw_supp_reason reason;
	int64_t at;            /* unix seconds */
	char *source;          /* "mailto", "one-click", "cli", a report id; may be NULL */
	char *note;            /* free text; may be NULL */
} bw_suppression;
void bw_suppression_clear(bw_suppression *s);

/* "SENDER RCPT" into key; false when it does not fit BW_STORE_KEY_MAX. */
bool bw_consent_key(const char *sender, const char *rcpt, char *key, size_t keylen);
/* Split a key back; false when malformed. */
bool bw_consent_key_split(const char *key, char *sender, size_t slen, char *rcpt, size_t rlen);

/* Record <-> the JSON object stored as the value (and exported): times are
 * RFC 3339 UTC strings, names as in the import format (granted_at, method,
 * source, source_ip, confirmed_at, confirm_ip, text, evidence, expires_at,
 * withdrawn_at, recorded_at; reason, at, source, note). The value does not
 * repeat sender and rcpt (they are the key); from_json takes them from key
 * (key NULL: they are left empty, for an import that has them elsewhere).
 * to_json returns a malloc'd string or NULL (no memory, a string field
 * not UTF-8, or a method/reason out of range); optional fields that are
 * NULL or 0 are left out. from_json overwrites *c (it does not free it) and
 * is strict: an unknown field, a field of the wrong type, a time that is
 * not RFC 3339, an unknown method/reason, a missing required field
 * (granted_at and method; reason and at), duplicate names or a string over
 * BW_CFIELD_MAX is an error naming the field; JSON null counts as absent
 * for an optional field. On error *c holds nothing to free. */
char *bw_consent_to_json(const bw_consent *c);
bool bw_consent_from_json(const char *key, const char *json, bw_consent *c, char *err, size_t errlen);
char *bw_suppression_to_json(const bw_suppression *s);
bool bw_suppression_from_json(const char *key, const char *json, bw_suppression *s,
    char *err, size_t errlen);

/* RFC 3339 ("2024-05-01T12:00:00Z", offsets and fractions accepted) to unix
 * seconds; false when malformed. fmt writes "YYYY-MM-DDTHH:MM:SSZ"; times
 * outside the years 0000..9999 are clamped to them. */
bool bw_time_parse(const char *s, int64_t *t);
void bw_time_fmt(int64_t t, char *buf, size_t len);

/* ---- keys for tokens and erasure ----
 * A key file has one key per line, "ID SECRET": ID is 1..8 letters or
 * digits, SECRET at least 32 bytes as base64 or hex; '#' comments. The
 * first key signs; every key verifies (rotation). An erasure key file has
 * one such line and must never change (the hashes depend on it).
 * A secret of hex digits only is read as hex, anything else as base64
 * (standard or URL alphabet, padding optional); at most 16 keys. The file
 * must be a regular file that others cannot read and the group cannot
 * write (0600, or 0640 with the daemon's group), else it is refused, as
 * OpenDKIM refuses unsafe key files. Errors say "file:line: ...". */
typedef struct bw_keyring bw_keyring;
bw_keyring *bw_keyring_load(const char *path, char *err, size_t errlen);
void bw_keyring_free(bw_keyring *k);

/* ---- unsubscribe tokens ----
 * token = lower-case base32 of (version, key id, issued-at, sender, rcpt,
 * truncated HMAC-SHA256), so that it survives being the +extension of a
 * local part (MTAs may change its case: verify accepts either case).
 * Verification is constant-time on the MAC. It checks, in order, the form
 * (MALFORMED), the key id (BADKEY), the MAC (FORGED), then the times:
 * FUTURE when issued more than 300 s after now, EXPIRED when now - issued
 * > max_age (0: no limit). sender, rcpt and *issued are set when the MAC
 * holds (OK, EXPIRED, FUTURE), else empty and 0. Issued must be 0..2^40-1.
 * Replay is the caller's concern: a token stays valid until it expires. */
#define BW_TOKEN_MAX 512
/* false when it does not fit (sender + rcpt too long). */
bool bw_token_make(const bw_keyring *k, const char *sender, const char *rcpt, int64_t issued,
    char *out, size_t outlen);
typedef enum {
	BW_TOKEN_OK = 0,
	BW_TOKEN_MALFORMED, /* not a token */
	BW_TOKEN_BADKEY,    /* key id unknown */
	BW_TOKEN_FORGED,    /* MAC does not match */
	BW_TOKEN_EXPIRED,   /* older than max_age */
	BW_TOKEN_FUTURE     /* issued in the future (beyond a small skew) */
} bw_token_status;
const char *bw_token_status_name(bw_token_status s);
bw_token_status bw_token_verify(const bw_keyring *k, const char *tok, int64_t now, int64_t max_age,
    char *sender, size_t slen, char *rcpt, size_t rlen, int64_t *issued);

/* ---- trace tokens ----
 * The token of the trace header bulkwarden stamps on outbound bulk mail:
 * the layout of an unsubscribe token with another version byte (so that
 * neither is ever taken for the other), naming the sender, the recipient
 * ("*" for a message to several) and a hash of the message's Message-ID,
 * so that a complaint maps back to its sender and recipient even when the
 * reporter redacts addresses, and a token copied into another message
 * does not count. verify: FORGED also when msgid is not the message's. */
bool bw_trace_make(const bw_keyring *k, const char *sender, const char *rcpt, const char *msgid,
    int64_t issued, char *out, size_t outlen);
bw_token_status bw_trace_verify(const bw_keyring *k, const char *tok, const char *msgid,
    char *sender, size_t slen, char *rcpt, size_t rlen);

/* The keyed hash of a normalised address that erasure keeps: "#" and 64
 * lower-case hex digits of HMAC-SHA256(first key, address); "" when k is
 * NULL. */
#define BW_ADDR_HASH_LEN 65
void bw_addr_hash(const bw_keyring *k, const char *rcpt, char out[BW_ADDR_HASH_LEN + 1]);

/* ---- the decision ---- */
typedef struct bw_consent_policy {
	int64_t max_age;       /* seconds; 0 = no limit */
	unsigned methods;      /* mask of methods that count */
	unsigned lift;         /* mask of methods whose newer consent lifts a suppression */
	bw_norm_opts norm;
	const bw_keyring *erasure; /* NULL: erased addresses are not looked up */
} bw_consent_policy;

typedef enum {
	BW_CONSENT_OK = 0,
	BW_CONSENT_NONE,       /* no record */
	BW_CONSENT_EXPIRED,    /* older than max_age or past expires_at */
	BW_CONSENT_WITHDRAWN,
	BW_CONSENT_METHOD,     /* a method the policy does not count */
	BW_CONSENT_SUPPRESSED  /* a suppression wins */
} bw_consent_result;
const char *bw_consent_result_name(bw_consent_result r);

/* One recipient: reads, from one snapshot (bw_store_get_many), the consent
 * for (sender, rcpt) and (sender, *@domain), and the suppressions for
 * (sender, rcpt), (*, rcpt) and, when p->erasure, the same for the hashed
 * address. rcpt must be normalised already. On BW_STORE_OK *res says what
 * holds and why gets a short phrase for the reply and log ("no consent
 * record", "unsubscribed 2026-01-02T...", "consent expired 2020-...").
 * Rules: a consent record is WITHDRAWN (withdrawn_at set), else METHOD
 * (not in p->methods), else EXPIRED (now - granted_at > max_age, or
 * now >= expires_at), else OK. The exact record decides when withdrawn;
 * otherwise a valid one wins, exact before "*@domain"; else the worse of
 * the two (withdrawn > method > expired); no record is NONE. Any
 * suppression then wins (SUPPRESSED) unless the exact consent is OK, by a
 * method in p->lift, and was given (confirmed_at for double opt-in, else
 * granted_at) after it; a domain-wide consent never lifts one. A record
 * that does not parse gives BW_STORE_CORRUPT with its key in why. */
bw_store_err bw_consent_check(bw_store *st, const bw_consent_policy *p, const char *sender,
    const char *rcpt, int64_t now, bw_consent_result *res, char *why, size_t whylen);

/* Write a suppression (and, for an unsubscribe, keep the consent record
 * but set its withdrawn_at): one transaction. Idempotent: an existing
 * suppression of the same (sender, rcpt) keeps its earlier time, except
 * when that sender's consent was given after it (it may have been lifted:
 * the new one replaces it so that it counts). withdrawn_at is set only
 * when not set yet and s->at is not before the consent was given. rcpt is
 * a normalised address or "#<64 hex>"; BW_STORE_INVALID for a bad record. */
bw_store_err bw_suppress(bw_store *st, const bw_suppression *s);

/* Erasure: deletes every consent and suppression record of rcpt (any
 * sender) and writes, for each suppression it had, one with the hashed
 * address, in one transaction. *n_deleted counts the records removed.
 * Requires an erasure key. The hashed suppressions keep reason and time,
 * with source "erasure" (the old source and note may name the address);
 * one that is there already keeps its earlier time. Keys are by sender,
 * so this reads both tables whole. A suppression of rcpt that does not
 * parse stops it (BW_STORE_CORRUPT, key in err) before anything is written. */
bw_store_err bw_forget(bw_store *st, const bw_keyring *erasure, const char *rcpt,
    size_t *n_deleted, char *err, size_t errlen);

#endif
