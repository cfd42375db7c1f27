/*
 * consent.c - consent records, suppressions and the consent decision
 * (DESIGN.md 4, "Consent" and "Unsubscribe handling").
 *
 * Owns: recipient normalisation (libidn2 for IDN domains), sender ids, the
 * keys and the JSON layout of consent and suppression records (jansson),
 * RFC 3339 times, key files, signed unsubscribe tokens and the erasure
 * hash (OpenSSL HMAC-SHA256), and, over the store's record API, the
 * per-recipient decision, suppression writes and erasure.
 *
 * Token layout (before base32):
 *   1 byte version (1) | 1 byte key id length | key id |
 *   5 bytes issued-at (unix seconds, big-endian) |
 *   1 byte sender length | sender | 2 bytes rcpt length (big-endian) | rcpt |
 *   16 bytes HMAC-SHA256(key, everything before), truncated.
 * The MAC input starts with byte 1 and an address never does, so a token
 * MAC and an address hash made with the same key cannot be confused.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* strnlen */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <idn2.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "clock.h"
#include "log.h"
#include "config.h"
#include "consent.h"

#define ADDR_IN_MAX 1024  /* bytes of input address looked at */
#define LOCAL_MAX 128     /* local-part octets: RFC 5321 says 64, VERP locals run longer */
#define DOMAIN_MAX 253    /* octets of a domain (A-labels, no trailing dot) */
#define LABEL_MAX 63      /* octets of one label */
#define KEY_ID_MAX 8      /* characters of a key id */
#define KEY_SECRET_MIN 32 /* bytes of a secret */
#define KEY_SECRET_MAX 256
#define KEYRING_MAX 16    /* keys in one file */
#define KEY_LINE_MAX 2048 /* bytes of one key-file line */
#define TOKEN_VERSION 1
#define TRACE_VERSION 2 /* a trace token: never taken for an unsubscribe token */
#define TOKEN_MAC_LEN 16
#define TOKEN_SKEW 300 /* seconds a token may be dated ahead of now */
#define TOKEN_BIN_MAX ((BW_TOKEN_MAX - 1) * 5 / 8)
#define TOKEN_TIME_LIM ((int64_t)1 << 40) /* issued-at must stay below (5 bytes) */
#define TIME_MIN (-62167219200LL)         /* 0000-01-01T00:00:00Z */
#define TIME_MAX 253402300799LL           /* 9999-12-31T23:59:59Z */
#define CHECK_KEYS 6                      /* lookups of one bw_consent_check */

/* ---------------------------------------------------------------- small helpers */

static bool
is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool
is_ctl(int c)
{
	return c < 0x20 || c == 0x7f;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool
utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], need;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else
			return false;
		if (n - i - 1 < need)
			return false;
		for (unsigned j = 1; j <= need; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

/* ---------------------------------------------------------------- normalisation */

/* A byte that may stand in an unquoted local part: RFC 5322 atext, the dot
 * (anywhere: "a..b" and "a.@" occur in real mail), and UTF-8 (RFC 6531). */
static bool
local_byte_ok(int c)
{
	if (c >= 0x80)
		return true;
	if (c <= 0x20 || c == 0x7f)
		return false;
	return strchr("\"(),:;<>@[\\]", c) == NULL;
}

/* Domain of A-labels, lower case: labels of letters, digits, '-' and '_'. */
static bool
domain_ascii_ok(const char *d, char *err, size_t errlen)
{
	size_t n = strlen(d), label = 0;

	if (n > DOMAIN_MAX) {
		bw_seterr(err, errlen, "bad domain: longer than %d bytes", DOMAIN_MAX);
		return false;
	}
	for (size_t i = 0; i <= n; i++) {
		int c = (unsigned char)d[i];

		if (c == '.' || c == '\0') {
			if (label == 0) {
				bw_seterr(err, errlen, "bad domain: empty label");
				return false;
			}
			if (label > LABEL_MAX) {
				bw_seterr(err, errlen, "bad domain: label longer than %d bytes",
				    LABEL_MAX);
				return false;
			}
			label = 0;
			continue;
		}
		if (!is_alnum(c) && c != '-' && c != '_') {
			if (c > 0x20 && c < 0x7f)
				bw_seterr(err, errlen, "bad domain: character '%c'", c);
			else
				bw_seterr(err, errlen, "bad domain: byte 0x%02x", c);
			return false;
		}
		label++;
	}
	return true;
}

/* [d, d+n) to the normalised domain in out (DOMAIN_MAX + 1 bytes). */
static bool
norm_domain(const char *d, size_t n, char *out, char *err, size_t errlen)
{
	char buf[ADDR_IN_MAX + 1];
	bool ascii = true;

	if (n > 0 && d[0] == '[') {
		/* address literal (RFC 5321 4.1.3): kept, lower-cased */
		if (n < 3 || d[n - 1] != ']') {
			bw_seterr(err, errlen, "bad domain: unclosed address literal");
			return false;
		}
		if (n > DOMAIN_MAX) {
			bw_seterr(err, errlen, "bad domain: longer than %d bytes", DOMAIN_MAX);
			return false;
		}
		for (size_t i = 1; i + 1 < n; i++) {
			int c = (unsigned char)d[i];

			if (c <= 0x20 || c >= 0x7f || c == '[' || c == ']' || c == '\\') {
				bw_seterr(err, errlen, "bad domain: bad address literal");
				return false;
			}
		}
		for (size_t i = 0; i < n; i++)
			out[i] = (char)lower((unsigned char)d[i]);
		out[n] = '\0';
		return true;
	}
	if (n > 0 && d[n - 1] == '.')
		n--;
	if (n == 0) {
		bw_seterr(err, errlen, "empty domain");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		buf[i] = (char)lower((unsigned char)d[i]);
		if ((unsigned char)d[i] >= 0x80)
			ascii = false;
	}
	buf[n] = '\0';
	if (ascii) {
		/* already A-labels; "xn--" labels are taken as written */
		if (!domain_ascii_ok(buf, err, errlen))
			return false;
		memcpy(out, buf, n + 1);
		return true;
	}
	if (!utf8_ok((const unsigned char *)buf, n)) {
		bw_seterr(err, errlen, "bad domain: not UTF-8");
		return false;
	}
	/*
	 * IDNA 2008 with the UTS#46 mapping, non-transitional: "ß" and "ς"
	 * stay themselves (xn--strae-oqa.de), as browsers and registries now
	 * do, instead of becoming "ss" and "σ" as IDNA 2003 had it.
	 */
	char *a = NULL;
	int rc = idn2_to_ascii_8z(buf, &a, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);

	if (rc != IDN2_OK) {
		bw_seterr(err, errlen, "bad domain: %s", idn2_strerror(rc));
		return false;
	}
	size_t an = strlen(a);
	bool ok = domain_ascii_ok(a, err, errlen);

	if (ok)
		memcpy(out, a, an + 1);
	idn2_free(a);
	return ok;
}

bool
bw_addr_normalise(const char *in, const bw_norm_opts *o, bool allow_wildcard, char *out,
    size_t outlen, char *err, size_t errlen)
{
	static const bw_norm_opts none;
	char local[2 * LOCAL_MAX + 3]; /* quoted, with escapes */
	char content[LOCAL_MAX + 1];
	char domain[DOMAIN_MAX + 1];
	size_t a, z, at, ln = 0, cn = 0;
	bool quoted, unquote = true;

	if (o == NULL)
		o = &none;
	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (in == NULL || (z = strnlen(in, ADDR_IN_MAX + 1)) == 0) {
		bw_seterr(err, errlen, "empty address");
		return false;
	}
	if (z > ADDR_IN_MAX) {
		bw_seterr(err, errlen, "too long");
		return false;
	}
	a = 0;
	while (a < z && is_ws((unsigned char)in[a]))
		a++;
	while (z > a && is_ws((unsigned char)in[z - 1]))
		z--;
	if (a < z && (in[a] == '<' || in[z - 1] == '>')) {
		if (z - a < 2 || in[a] != '<' || in[z - 1] != '>') {
			bw_seterr(err, errlen, "unbalanced angle brackets");
			return false;
		}
		a++;
		z--;
		while (a < z && is_ws((unsigned char)in[a]))
			a++;
		while (z > a && is_ws((unsigned char)in[z - 1]))
			z--;
	}
	if (a == z) {
		bw_seterr(err, errlen, "empty address");
		return false;
	}
	for (size_t i = a; i < z; i++)
		if (is_ctl((unsigned char)in[i])) {
			bw_seterr(err, errlen, "control character in address");
			return false;
		}

	/* split at the '@' that ends the local part */
	quoted = in[a] == '"';
	if (quoted) {
		size_t i = a + 1;

		while (i < z && in[i] != '"') {
			if (in[i] == '\\' && i + 1 < z)
				i++;
			if (cn == LOCAL_MAX) {
				bw_seterr(err, errlen, "local part too long");
				return false;
			}
			content[cn++] = in[i];
			if (!local_byte_ok((unsigned char)in[i]))
				unquote = false;
			i++;
		}
		if (i >= z) {
			bw_seterr(err, errlen, "unterminated quoted local part");
			return false;
		}
		if (i + 1 >= z || in[i + 1] != '@') {
			bw_seterr(err, errlen,
			    memchr(in + i, '@', z - i) ? "text after quoted local part" : "no @");
			return false;
		}
		at = i + 1;
		content[cn] = '\0';
		if (cn == 0) {
			bw_seterr(err, errlen, "empty local part");
			return false;
		}
		if (memchr(in + at + 1, '@', z - at - 1) != NULL) {
			bw_seterr(err, errlen, "more than one @");
			return false;
		}
	} else {
		const char *p = memchr(in + a, '@', z - a);

		if (p == NULL) {
			bw_seterr(err, errlen, "no @");
			return false;
		}
		at = (size_t)(p - in);
		if (memchr(p + 1, '@', z - at - 1) != NULL) {
			bw_seterr(err, errlen, "more than one @");
			return false;
		}
		for (size_t i = a; i < at; i++) {
			int c = (unsigned char)in[i];

			if (c == ' ') {
				bw_seterr(err, errlen, "space in address");
				return false;
			}
			if (!local_byte_ok(c)) {
				bw_seterr(err, errlen, "character '%c' in local part", c);
				return false;
			}
		}
		cn = at - a;
		if (cn == 0) {
			bw_seterr(err, errlen, "empty local part");
			return false;
		}
		if (cn > LOCAL_MAX) {
			bw_seterr(err, errlen, "local part too long");
			return false;
		}
		memcpy(content, in + a, cn);
		content[cn] = '\0';
	}
	for (size_t i = at + 1; i < z; i++)
		if (in[i] == ' ') {
			bw_seterr(err, errlen, "space in address");
			return false;
		}
	if (!utf8_ok((const unsigned char *)content, cn)) {
		bw_seterr(err, errlen, "local part not UTF-8");
		return false;
	}
	if (!norm_domain(in + at + 1, z - at - 1, domain, err, errlen))
		return false;

	/*
	 * A quoted local part that needs no quotes ("bob"@x) is the same
	 * mailbox as the unquoted one (RFC 5321 4.1.2), so it gets the same
	 * key; otherwise it keeps the quotes, minimally escaped, and no folding.
	 */
	if (quoted && !unquote) {
		local[ln++] = '"';
		for (size_t i = 0; i < cn; i++) {
			if (content[i] == '"' || content[i] == '\\')
				local[ln++] = '\\';
			local[ln++] = content[i];
		}
		local[ln++] = '"';
		local[ln] = '\0';
	} else {
		if (cn == 1 && content[0] == '*') {
			if (!allow_wildcard) {
				bw_seterr(
				    err, errlen, "'*' local part is only for domain-wide consent");
				return false;
			}
		} else {
			if (o->fold_plus) {
				char *p = strchr(content, '+');

				/* "+tag" alone, or "*+tag" (it would become the wildcard), is kept
				 */
				if (p != NULL && p != content &&
				    !(p == content + 1 && content[0] == '*'))
					*p = '\0';
			}
			if (o->fold_case)
				for (char *p = content; *p != '\0'; p++)
					*p = (char)lower((unsigned char)*p);
		}
		ln = strlen(content);
		memcpy(local, content, ln + 1);
	}
	if (ln + 1 + strlen(domain) > BW_ADDR_MAX || out == NULL ||
	    ln + 1 + strlen(domain) >= outlen) {
		bw_seterr(err, errlen, "too long");
		return false;
	}
	snprintf(out, outlen, "%s@%s", local, domain);
	return true;
}

bool
bw_sender_id_ok(const char *sender)
{
	size_t n;

	if (sender == NULL)
		return false;
	n = strnlen(sender, BW_SENDER_MAX + 1);
	if (n == 0 || n > BW_SENDER_MAX || strcmp(sender, "*") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)sender[i] <= 0x20 || (unsigned char)sender[i] >= 0x7f)
			return false;
	return true;
}

static const char *const sid_names[BW_SID__N] = { "login", "domain", "address", "header", "dkim" };

const char *
bw_sid_source_name(bw_sid_source s)
{
	return (unsigned)s < BW_SID__N ? sid_names[s] : "?";
}

bool
bw_sid_order_has(const bw_sid_order *o, bw_sid_source s)
{
	for (unsigned i = 0; i < o->n; i++)
		if (o->src[i] == s)
			return true;
	return false;
}

static bool
sid_order_add(bw_sid_order *o, bw_sid_source s, char *err, size_t errlen)
{
	if (bw_sid_order_has(o, s)) {
		bw_seterr(err, errlen, "%s named twice", sid_names[s]);
		return false;
	}
	o->src[o->n++] = (unsigned char)s;
	return true;
}

bool
bw_sid_order_parse(const char *s, bw_sid_order *o, char *err, size_t errlen)
{
	memset(o, 0, sizeof(*o));
	while (s != NULL && *s) {
		size_t n;
		unsigned i;

		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		for (n = 0; s[n] && s[n] != ' ' && s[n] != '\t' && s[n] != ','; n++)
			;
		if (n == 0)
			break;
		if (n == 15 && strncasecmp(s, "login-or-domain", n) == 0) {
			if (!sid_order_add(o, BW_SID_LOGIN, err, errlen) || !sid_order_add(o, BW_SID_DOMAIN, err,
			    errlen))
				return false;
		} else {
			for (i = 0; i < BW_SID__N; i++)
				if (strlen(sid_names[i]) == n && strncasecmp(s, sid_names[i], n) == 0)
					break;
			if (i == BW_SID__N) {
				bw_seterr(err, errlen, "unknown source \"%.*s\" (want login, domain, address, "
				    "header, dkim or login-or-domain)", (int)(n > 40 ? 40 : n), s);
				return false;
			}
			if (!sid_order_add(o, (bw_sid_source)i, err, errlen))
				return false;
		}
		s += n;
	}
	if (o->n == 0) {
		bw_seterr(err, errlen, "no source named");
		return false;
	}
	return true;
}

bool
bw_sender_id_from(bw_sid_source s, const char *from, const char *login, char out[BW_SENDER_MAX + 1])
{
	bw_norm_opts no = { .fold_case = true, .fold_plus = false };
	char norm[BW_ADDR_MAX + 1], err[100];
	const char *id = "", *at;

	out[0] = '\0';
	if (s == BW_SID_LOGIN && login != NULL)
		id = login;
	else if ((s == BW_SID_DOMAIN || s == BW_SID_ADDRESS) && from != NULL && *from
	    && bw_addr_normalise(from, &no, false, norm, sizeof(norm), err, sizeof(err))
	    && (at = strrchr(norm, '@')) != NULL)
		id = s == BW_SID_ADDRESS ? norm : at + 1;
	if (*id == '\0' || !bw_sender_id_ok(id))
		return false;
	strcpy(out, id);
	return true;
}

bool
bw_sender_id_of(const bw_sid_order *o, const char *from, const char *login, char out[BW_SENDER_MAX + 1])
{
	out[0] = '\0';
	for (unsigned i = 0; i < o->n; i++)
		if (bw_sender_id_from((bw_sid_source)o->src[i], from, login, out))
			return true;
	return false;
}

/* A sender as it may stand in a key: a sender id, or "*" (every sender). */
static bool
key_sender_ok(const char *sender)
{
	return sender != NULL && (strcmp(sender, "*") == 0 || bw_sender_id_ok(sender));
}

/* A recipient as it may stand in a key: an address with '@', or "#<64 hex>". */
static bool
key_rcpt_ok(const char *rcpt)
{
	size_t n;

	if (rcpt == NULL || (n = strnlen(rcpt, BW_ADDR_MAX + 1)) == 0 || n > BW_ADDR_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (is_ctl((unsigned char)rcpt[i]))
			return false;
	if (rcpt[0] == '#') {
		if (n != BW_ADDR_HASH_LEN)
			return false;
		for (size_t i = 1; i < n; i++)
			if (!((rcpt[i] >= '0' && rcpt[i] <= '9') ||
			        (rcpt[i] >= 'a' && rcpt[i] <= 'f')))
				return false;
		return true;
	}
	return strchr(rcpt, '@') != NULL && utf8_ok((const unsigned char *)rcpt, n);
}

/* ---------------------------------------------------------------- names */

static const char *const method_names[BW_CM__N] = {
    [BW_CM_DOUBLE_OPT_IN] = "double-opt-in",
    [BW_CM_SINGLE_OPT_IN] = "single-opt-in",
    [BW_CM_IMPORT] = "import",
    [BW_CM_API] = "api",
};

static const char *const reason_names[BW_SR__N] = {
    [BW_SR_UNSUBSCRIBE] = "unsubscribe",
    [BW_SR_COMPLAINT] = "complaint",
    [BW_SR_ADMIN] = "admin",
    [BW_SR_BOUNCE] = "bounce",
};

const char *
bw_consent_method_name(bw_consent_method m)
{
	return (unsigned)m < BW_CM__N ? method_names[m] : NULL;
}

int
bw_consent_method_parse(const char *s)
{
	for (int i = 0; s != NULL && i < BW_CM__N; i++)
		if (strcasecmp(s, method_names[i]) == 0)
			return i;
	return -1;
}

bool
bw_consent_methods_parse(const char *list, unsigned *mask, char *err, size_t errlen)
{
	unsigned m = 0;
	const char *p = list != NULL ? list : "";

	while (*p != '\0') {
		char word[32];
		size_t n = 0;
		int i;

		while (*p == ',' || is_ws((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		while (p[n] != '\0' && p[n] != ',' && !is_ws((unsigned char)p[n]))
			n++;
		i = -1;
		if (n < sizeof(word)) {
			memcpy(word, p, n);
			word[n] = '\0';
			i = bw_consent_method_parse(word);
		}
		if (i < 0) {
			bw_seterr(err, errlen, "unknown consent method '%.*s'", (int)(n > 40 ? 40 : n),
			    p);
			return false;
		}
		m |= 1u << i;
		p += n;
	}
	*mask = m;
	return true;
}

const char *
bw_supp_reason_name(bw_supp_reason r)
{
	return (unsigned)r < BW_SR__N ? reason_names[r] : NULL;
}

int
bw_supp_reason_parse(const char *s)
{
	for (int i = 0; s != NULL && i < BW_SR__N; i++)
		if (strcasecmp(s, reason_names[i]) == 0)
			return i;
	return -1;
}

const char *
bw_consent_result_name(bw_consent_result r)
{
	static const char *const names[] = {
	    "ok", "none", "expired", "withdrawn", "method", "suppressed"};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

const char *
bw_token_status_name(bw_token_status s)
{
	static const char *const names[] = {
	    "ok", "malformed", "bad-key", "forged", "expired", "future"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

/* ---------------------------------------------------------------- records and keys */

void
bw_consent_clear(bw_consent *c)
{
	if (c == NULL)
		return;
	free(c->source);
	free(c->source_ip);
	free(c->confirm_ip);
	free(c->text);
	free(c->evidence);
	memset(c, 0, sizeof(*c));
}

void
bw_suppression_clear(bw_suppression *s)
{
	if (s == NULL)
		return;
	free(s->source);
	free(s->note);
	memset(s, 0, sizeof(*s));
}

bool
bw_consent_key(const char *sender, const char *rcpt, char *key, size_t keylen)
{
	size_t sl, rl;

	if (key != NULL && keylen > 0)
		key[0] = '\0';
	if (!key_sender_ok(sender) || !key_rcpt_ok(rcpt) || key == NULL)
		return false;
	sl = strlen(sender);
	rl = strlen(rcpt);
	if (sl + 1 + rl > BW_STORE_KEY_MAX || sl + 1 + rl >= keylen)
		return false;
	memcpy(key, sender, sl);
	key[sl] = ' ';
	memcpy(key + sl + 1, rcpt, rl + 1);
	return true;
}

bool
bw_consent_key_split(const char *key, char *sender, size_t slen, char *rcpt, size_t rlen)
{
	const char *sp;
	size_t sl, rl;

	if (sender != NULL && slen > 0)
		sender[0] = '\0';
	if (rcpt != NULL && rlen > 0)
		rcpt[0] = '\0';
	if (key == NULL || sender == NULL || rcpt == NULL || (sp = strchr(key, ' ')) == NULL)
		return false;
	sl = (size_t)(sp - key);
	rl = strlen(sp + 1);
	if (sl > BW_SENDER_MAX || sl >= slen || rl >= rlen)
		return false;
	memcpy(sender, key, sl);
	sender[sl] = '\0';
	memcpy(rcpt, sp + 1, rl + 1);
	if (!key_sender_ok(sender) || !key_rcpt_ok(rcpt)) {
		sender[0] = rcpt[0] = '\0';
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- times */

bool
bw_time_parse(const char *s, int64_t *t)
{
	char day[19];
	int64_t secs;
	int off = 0;
	bool leapsec;
	const char *p;

	if (s == NULL || strnlen(s, 20) < 20)
		return false;
	/* RFC 3339 also writes 't' or a space, and a leap second */
	memcpy(day, s, sizeof(day));
	if (day[10] == 't' || day[10] == ' ')
		day[10] = 'T';
	if ((leapsec = day[17] == '6' && day[18] == '0'))
		day[17] = '5', day[18] = '9';
	if (!bw_time_get(day, &secs))
		return false;
	secs += leapsec;   /* a leap second becomes the next minute's first */
	p = s + 19;
	if (*p == '.') {
		size_t n = 0;

		while (p[1 + n] >= '0' && p[1 + n] <= '9' && n < 18)
			n++;
		if (n == 0)
			return false;
		p += 1 + n; /* a fraction does not change the second */
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		int oh = bw_time_digits(p + 1, 2), om = oh < 0 || p[3] != ':' ? -1 : bw_time_digits(p + 4, 2);

		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return false;
		off = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
		p += 6;
	} else
		return false;
	if (*p != '\0')
		return false;
	*t = secs - off;
	return true;
}

void
bw_time_fmt(int64_t t, char *buf, size_t len)
{
	char out[21];
	size_t n = 20;

	if (buf == NULL || len == 0)
		return;
	/* clamped to the years RFC 3339 can write */
	bw_time_put(t < TIME_MIN ? TIME_MIN : t > TIME_MAX ? TIME_MAX : t, out);
	out[19] = 'Z';
	if (n > len - 1)
		n = len - 1;
	memcpy(buf, out, n);
	buf[n] = '\0';
}

/* ---------------------------------------------------------------- JSON codec */

typedef enum { F_TIME, F_STR, F_METHOD, F_REASON } field_kind;

typedef struct field {
	const char *name;
	field_kind kind;
	bool required;
	size_t off;
} field;

#define CF(n, k, r)                                                                                \
	{                                                                                          \
#n, k, r, offsetof(bw_consent, n)                                                  \
	}
static const field consent_fields[] = {
    CF(granted_at, F_TIME, true),
    {"method", F_METHOD, true, offsetof(bw_consent, method)},
    CF(source, F_STR, false),
    CF(source_ip, F_STR, false),
    CF(confirmed_at, F_TIME, false),
    CF(confirm_ip, F_STR, false),
    CF(text, F_STR, false),
    CF(evidence, F_STR, false),
    CF(expires_at, F_TIME, false),
    CF(withdrawn_at, F_TIME, false),
    CF(recorded_at, F_TIME, false),
};
#undef CF

#define SF(n, k, r)                                                                                \
	{                                                                                          \
#n, k, r, offsetof(bw_suppression, n)                                              \
	}
static const field supp_fields[] = {
    SF(reason, F_REASON, true),
    SF(at, F_TIME, true),
    SF(source, F_STR, false),
    SF(note, F_STR, false),
};
#undef SF

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* NULL when out of memory, a string is not UTF-8 or an enum is out of range. */
static char *
rec_to_json(const void *rec, const field *f, size_t nf)
{
	json_t *o = json_object();
	char *out = NULL;

	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < nf; i++) {
		const char *base = (const char *)rec + f[i].off;
		char tbuf[32];
		const char *s = NULL;
		int64_t t;

		switch (f[i].kind) {
		case F_TIME:
			memcpy(&t, base, sizeof(t));
			if (t == 0 && !f[i].required)
				continue;
			bw_time_fmt(t, tbuf, sizeof(tbuf));
			s = tbuf;
			break;
		case F_STR:
			memcpy(&s, base, sizeof(s));
			if (s == NULL)
				continue;
			break;
		case F_METHOD:
			s = bw_consent_method_name(*(const bw_consent_method *)(const void *)base);
			break;
		case F_REASON:
			s = bw_supp_reason_name(*(const bw_supp_reason *)(const void *)base);
			break;
		}
		if (s == NULL || json_object_set_new(o, f[i].name, json_string(s)) != 0)
			goto out;
	}
	out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(o);
	return out;
}

#define FLAT_SHORT 64   /* a time, a method or a reason is shorter */

static const char *
flat_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* A JSON string with no escape and only printable ASCII at p (after its
 * '"'): its length, its end past the closing '"' in *end; -1 otherwise. */
static long
flat_str(const char *p, const char **end)
{
	const char *q = p;

	while ((unsigned char)*q >= 0x20 && (unsigned char)*q < 0x80 && *q != '"' && *q != '\\')
		q++;
	if (*q != '"')
		return -1;
	*end = q + 1;
	return (long)(q - p);
}

/*
 * The records bulkwarden writes, read without building a JSON tree: an
 * object of known names, each once, with a printable ASCII string without
 * escapes or null as each value, every required field there and valid. 1
 * when rec is filled; 0 when the text is anything else (rec untouched), for
 * the full decoder to read or to explain. A record is read for every
 * recipient, so this is on the path of every message.
 */
static int
rec_from_flat(const char *json, void *rec, const field *f, size_t nf)
{
	struct { const char *v; long len; } val[16];
	bool named[16] = {false}, seen[16] = {false};
	const char *p = flat_ws(json), *end;
	size_t i;

	if (nf > 16 || *p++ != '{')
		return 0;
	p = flat_ws(p);
	if (*p == '}')
		return 0;   /* no field: the required ones are missing */
	for (;;) {
		const char *name, *v;
		long nl, vl;

		if (*p++ != '"' || (nl = flat_str(name = p, &p)) < 0)
			return 0;
		for (i = 0; i < nf && !(strncmp(f[i].name, name, (size_t)nl) == 0 && f[i].name[nl] == 0); i++)
			;
		if (i == nf || named[i])
			return 0;   /* unknown, or named twice */
		named[i] = true;
		p = flat_ws(p);
		if (*p++ != ':')
			return 0;
		p = flat_ws(p);
		if (strncmp(p, "null", 4) == 0) {
			if (f[i].required)
				return 0;
			v = NULL;
			vl = 0;
			p += 4;
		} else if (*p++ != '"' || (vl = flat_str(v = p, &p)) < 0)
			return 0;
		if (v != NULL && (f[i].kind == F_STR ? vl > BW_CFIELD_MAX : vl >= FLAT_SHORT))
			return 0;
		seen[i] = v != NULL;
		val[i].v = v;
		val[i].len = vl;
		p = flat_ws(p);
		if (*p == '}')
			break;
		if (*p++ != ',')
			return 0;
		p = flat_ws(p);
	}
	end = flat_ws(p + 1);
	if (*end != 0 || (size_t)(end - json) > BW_STORE_VAL_MAX)
		return 0;
	for (i = 0; i < nf; i++)
		if (f[i].required && !seen[i])
			return 0;
	/* every short value valid before anything is written */
	int64_t times[16];
	int enums[16];
	for (i = 0; i < nf; i++) {
		char b[FLAT_SHORT];

		if (!seen[i] || f[i].kind == F_STR)
			continue;
		memcpy(b, val[i].v, (size_t)val[i].len);
		b[val[i].len] = 0;
		if (f[i].kind == F_TIME ? !bw_time_parse(b, &times[i])
		    : (enums[i] = f[i].kind == F_METHOD ? bw_consent_method_parse(b)
		                                       : bw_supp_reason_parse(b)) < 0)
			return 0;
	}
	char *dup[16] = {NULL};
	for (i = 0; i < nf; i++)
		if (seen[i] && f[i].kind == F_STR &&
		    (dup[i] = strndup(val[i].v, (size_t)val[i].len)) == NULL) {
			while (i-- > 0)
				free(dup[i]);
			return 0;
		}
	for (i = 0; i < nf; i++) {
		char *base = (char *)rec + f[i].off;

		if (!seen[i])
			continue;
		switch (f[i].kind) {
		case F_TIME:
			memcpy(base, &times[i], sizeof(times[i]));
			break;
		case F_STR:
			memcpy(base, &dup[i], sizeof(dup[i]));
			break;
		case F_METHOD:
			*(bw_consent_method *)(void *)base = (bw_consent_method)enums[i];
			break;
		case F_REASON:
			*(bw_supp_reason *)(void *)base = (bw_supp_reason)enums[i];
			break;
		}
	}
	return 1;
}

/* Fills rec (zeroed by the caller) from json; false with a sentence in err. */
static bool
rec_from_json(const char *json, void *rec, const field *f, size_t nf, char *err, size_t errlen)
{
	json_t *o, *v;
	const char *name;
	bool seen[16] = {false};
	bool ok = false;

	if (json != NULL && rec_from_flat(json, rec, f, nf))
		return true;
	if ((o = bw_store_json_object(json, err, errlen)) == NULL)
		return false;
	json_object_foreach(o, name, v)
	{
		size_t i;
		char *base;

		for (i = 0; i < nf && strcmp(name, f[i].name) != 0; i++)
			;
		if (i == nf) {
			bw_seterr(err, errlen, "unknown field '%.64s'", name);
			goto out;
		}
		if (json_is_null(v) && !f[i].required)
			continue; /* the same as absent */
		if (!json_is_string(v)) {
			bw_seterr(err, errlen, "field '%s': expected a string", name);
			goto out;
		}
		seen[i] = true;
		base = (char *)rec + f[i].off;
		const char *s = json_string_value(v);
		int64_t t;
		int e;
		char *dup;

		switch (f[i].kind) {
		case F_TIME:
			if (!bw_time_parse(s, &t)) {
				bw_seterr(err, errlen, "field '%s': not an RFC 3339 time: '%.40s'",
				    name, s);
				goto out;
			}
			memcpy(base, &t, sizeof(t));
			break;
		case F_STR:
			if (json_string_length(v) > BW_CFIELD_MAX) {
				bw_seterr(err, errlen, "field '%s': longer than %d bytes", name,
				    BW_CFIELD_MAX);
				goto out;
			}
			if ((dup = strdup(s)) == NULL) {
				bw_seterr(err, errlen, "out of memory");
				goto out;
			}
			memcpy(base, &dup, sizeof(dup));
			break;
		case F_METHOD:
			if ((e = bw_consent_method_parse(s)) < 0) {
				bw_seterr(err, errlen, "field '%s': unknown method '%.40s'", name, s);
				goto out;
			}
			*(bw_consent_method *)(void *)base = (bw_consent_method)e;
			break;
		case F_REASON:
			if ((e = bw_supp_reason_parse(s)) < 0) {
				bw_seterr(err, errlen, "field '%s': unknown reason '%.40s'", name, s);
				goto out;
			}
			*(bw_supp_reason *)(void *)base = (bw_supp_reason)e;
			break;
		}
	}
	for (size_t i = 0; i < nf; i++)
		if (f[i].required && !seen[i]) {
			bw_seterr(err, errlen, "missing field '%s'", f[i].name);
			goto out;
		}
	ok = true;
out:
	json_decref(o);
	return ok;
}

char *
bw_consent_to_json(const bw_consent *c)
{
	return c != NULL ? rec_to_json(c, consent_fields, NFIELDS(consent_fields)) : NULL;
}

char *
bw_suppression_to_json(const bw_suppression *s)
{
	return s != NULL ? rec_to_json(s, supp_fields, NFIELDS(supp_fields)) : NULL;
}

bool
bw_consent_from_json(const char *key, const char *json, bw_consent *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	if (key != NULL &&
	    !bw_consent_key_split(key, c->sender, sizeof(c->sender), c->rcpt, sizeof(c->rcpt))) {
		bw_seterr(err, errlen, "bad key '%.100s'", key);
		return false;
	}
	if (key != NULL && strcmp(c->sender, "*") == 0) {
		bw_seterr(err, errlen, "bad key '%.100s': consent needs a sender id", key);
		return false;
	}
	if (!rec_from_json(json, c, consent_fields, NFIELDS(consent_fields), err, errlen)) {
		bw_consent_clear(c);
		return false;
	}
	return true;
}

bool
bw_suppression_from_json(
    const char *key, const char *json, bw_suppression *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (key != NULL &&
	    !bw_consent_key_split(key, s->sender, sizeof(s->sender), s->rcpt, sizeof(s->rcpt))) {
		bw_seterr(err, errlen, "bad key '%.100s'", key);
		return false;
	}
	if (!rec_from_json(json, s, supp_fields, NFIELDS(supp_fields), err, errlen)) {
		bw_suppression_clear(s);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- keyring */

struct bw_key {
	char id[KEY_ID_MAX + 1];
	size_t idlen;
	size_t len;
	unsigned char secret[KEY_SECRET_MAX];
};

struct bw_keyring {
	size_t n;
	struct bw_key key[KEYRING_MAX];
};

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* A secret written as hex (when every character is a hex digit) or as
 * base64 (standard or URL alphabet, padding optional). -1 when neither,
 * -2 when longer than max; else the byte count. */
static long
secret_decode(const char *s, size_t n, unsigned char *out, size_t max)
{
	size_t i, o = 0;
	bool hex = n % 2 == 0;

	for (i = 0; i < n && hex; i++)
		hex = hexval((unsigned char)s[i]) >= 0;
	if (hex) {
		if (n / 2 > max)
			return -2;
		for (i = 0; i < n; i += 2)
			out[o++] = (unsigned char)(hexval((unsigned char)s[i]) << 4 |
			                           hexval((unsigned char)s[i + 1]));
		return (long)o;
	}
	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -1;
	if (n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > max)
		return -2;
	uint32_t acc = 0;
	unsigned bits = 0;

	for (i = 0; i < n; i++) {
		int v = b64val((unsigned char)s[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return (long)o;
}

/* One line: a key into k, or nothing; false with "path:line: ..." in err. */
static bool
keyring_line(bw_keyring *k, char *line, const char *path, unsigned lno, char *err, size_t errlen)
{
	char *p = line, *id, *sec;
	size_t idn, secn;
	long len;
	struct bw_key *key;

	while (is_ws((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == '#')
		return true;
	id = p;
	while (*p != '\0' && !is_ws((unsigned char)*p))
		p++;
	idn = (size_t)(p - id);
	for (size_t i = 0; i < idn; i++)
		if (!is_alnum((unsigned char)id[i]))
			idn = 0;
	if (idn == 0 || idn > KEY_ID_MAX) {
		bw_seterr(err, errlen, "%s:%u: bad key id '%.*s' (1 to %d letters or digits)", path,
		    lno, (int)((size_t)(p - id) > 16 ? 16 : (size_t)(p - id)), id, KEY_ID_MAX);
		return false;
	}
	while (is_ws((unsigned char)*p))
		p++;
	sec = p;
	while (*p != '\0' && !is_ws((unsigned char)*p))
		p++;
	secn = (size_t)(p - sec);
	while (is_ws((unsigned char)*p))
		p++;
	if (secn == 0 || *sec == '#') {
		bw_seterr(err, errlen, "%s:%u: no secret after the key id", path, lno);
		return false;
	}
	if (*p != '\0' && *p != '#') {
		bw_seterr(err, errlen, "%s:%u: text after the secret", path, lno);
		return false;
	}
	for (size_t i = 0; i < k->n; i++)
		if (k->key[i].idlen == idn && memcmp(k->key[i].id, id, idn) == 0) {
			bw_seterr(err, errlen, "%s:%u: key id '%.*s' given twice", path, lno, (int)idn,
			    id);
			return false;
		}
	if (k->n == KEYRING_MAX) {
		bw_seterr(err, errlen, "%s:%u: more than %d keys", path, lno, KEYRING_MAX);
		return false;
	}
	key = &k->key[k->n];
	len = secret_decode(sec, secn, key->secret, sizeof(key->secret));
	if (len == -1) {
		bw_seterr(err, errlen, "%s:%u: the secret is neither hex nor base64", path, lno);
		return false;
	}
	if (len == -2 || len > KEY_SECRET_MAX) {
		bw_seterr(err, errlen, "%s:%u: the secret is longer than %d bytes", path, lno,
		    KEY_SECRET_MAX);
		return false;
	}
	if (len < KEY_SECRET_MIN) {
		OPENSSL_cleanse(key->secret, sizeof(key->secret));
		bw_seterr(err, errlen,
		    "%s:%u: the secret is %ld bytes; at least %d are needed "
		    "(openssl rand -hex 32)",
		    path, lno, len, KEY_SECRET_MIN);
		return false;
	}
	memcpy(key->id, id, idn);
	key->id[idn] = '\0';
	key->idlen = idn;
	key->len = (size_t)len;
	k->n++;
	return true;
}

/*
 * The file must be a regular file that no one but its owner and group can
 * read and no one but its owner can write (0600 or 0640 with the daemon's
 * group), as OpenDKIM's RequireSafeKeys: a secret others can read signs
 * tokens for anyone, so such a file is refused, not just warned about.
 */
bw_keyring *
bw_keyring_load(const char *path, char *err, size_t errlen)
{
	char line[KEY_LINE_MAX + 2];
	bw_keyring *k = NULL;
	struct stat st;
	unsigned lno = 0;
	FILE *f;
	int fd;
	bool ok = false;

	if (path == NULL) {
		bw_seterr(err, errlen, "no key file");
		return NULL;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		bw_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		bw_seterr(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		bw_seterr(err, errlen, "%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	if (st.st_mode & (S_IRWXO | S_IWGRP)) {
		bw_seterr(err, errlen,
		    "%s: unsafe permissions %04o (others may read or write it): "
		    "chmod 0600 or 0640",
		    path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return NULL;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		bw_seterr(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		bw_seterr(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line);

		lno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		else if (!feof(f) || n > KEY_LINE_MAX) {
			bw_seterr(err, errlen, "%s:%u: line longer than %d bytes", path, lno,
			    KEY_LINE_MAX);
			goto out;
		}
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (!keyring_line(k, line, path, lno, err, errlen))
			goto out;
	}
	if (ferror(f)) {
		bw_seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (k->n == 0) {
		bw_seterr(err, errlen, "%s: no key in the file", path);
		goto out;
	}
	ok = true;
out:
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	if (!ok) {
		bw_keyring_free(k);
		return NULL;
	}
	return k;
}

void
bw_keyring_free(bw_keyring *k)
{
	if (k == NULL)
		return;
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

static bool
hmac256(const struct bw_key *key, const void *data, size_t n, unsigned char md[32])
{
	unsigned int mdlen = 0;

	return HMAC(EVP_sha256(), key->secret, (int)key->len, data, n, md, &mdlen) != NULL &&
	       mdlen == 32;
}

void
bw_addr_hash(const bw_keyring *k, const char *rcpt, char out[BW_ADDR_HASH_LEN + 1])
{
	static const char hx[] = "0123456789abcdef";
	unsigned char md[32];

	out[0] = '\0';
	if (k == NULL || k->n == 0 || rcpt == NULL || !hmac256(&k->key[0], rcpt, strlen(rcpt), md))
		return;
	out[0] = '#';
	for (size_t i = 0; i < 32; i++) {
		out[1 + 2 * i] = hx[md[i] >> 4];
		out[2 + 2 * i] = hx[md[i] & 15];
	}
	out[BW_ADDR_HASH_LEN] = '\0';
}

/* ---------------------------------------------------------------- tokens */

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

static size_t
b32_len(size_t n)
{
	return (n * 8 + 4) / 5;
}

static void
b32_encode(const unsigned char *in, size_t n, char *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | in[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = b32[(acc >> bits) & 31];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0)
		out[o++] = b32[(acc << (5 - bits)) & 31];
	out[o] = '\0';
}

/* Either case; no padding; the unused low bits of the last character must
 * be zero, so that every byte string has exactly one spelling. */
static bool
b32_decode(const char *s, size_t n, unsigned char *out, size_t max, size_t *outn)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	if (n % 8 == 1 || n % 8 == 3 || n % 8 == 6 || b32_len(n * 5 / 8) != n || n * 5 / 8 > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		int c = lower((unsigned char)s[i]), v;

		if (c >= 'a' && c <= 'z')
			v = c - 'a';
		else if (c >= '2' && c <= '7')
			v = c - '2' + 26;
		else
			return false;
		acc = acc << 5 | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
		acc &= (1u << bits) - 1;
	}
	if (acc != 0)
		return false;
	*outn = o;
	return true;
}

/* The data field of a trace token: "RCPT/HASH", RCPT an address or "*",
 * HASH 16 lower-case hex digits. */
static bool
trace_data_ok(const char *d)
{
	const char *slash = strrchr(d, '/');
	char rcpt[BW_ADDR_MAX + 1];
	size_t rl;

	if (slash == NULL || strlen(slash + 1) != 16 || (rl = (size_t)(slash - d)) == 0 || rl > BW_ADDR_MAX)
		return false;
	for (const char *h = slash + 1; *h; h++)
		if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f')))
			return false;
	memcpy(rcpt, d, rl);
	rcpt[rl] = '\0';
	return strcmp(rcpt, "*") == 0 || (key_rcpt_ok(rcpt) && rcpt[0] != '#');
}

/* A token of version ver (TOKEN_VERSION: unsubscribe; TRACE_VERSION: trace)
 * whose data field is rcpt. */
static bool
token_make(unsigned ver, const bw_keyring *k, const char *sender, const char *rcpt, int64_t issued,
    char *out, size_t outlen)
{
	unsigned char b[TOKEN_BIN_MAX + 32], md[32];
	const struct bw_key *key;
	size_t n = 0, sl, rl;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (k == NULL || k->n == 0 || out == NULL || !bw_sender_id_ok(sender) || rcpt == NULL ||
	    !(ver == TRACE_VERSION ? trace_data_ok(rcpt) : key_rcpt_ok(rcpt) && rcpt[0] != '#') ||
	    issued < 0 || issued >= TOKEN_TIME_LIM)
		return false;
	key = &k->key[0];
	sl = strlen(sender);
	rl = strlen(rcpt);
	n = 1 + 1 + key->idlen + 5 + 1 + sl + 2 + rl + TOKEN_MAC_LEN;
	if (n > TOKEN_BIN_MAX || b32_len(n) >= outlen || b32_len(n) >= BW_TOKEN_MAX)
		return false;
	n = 0;
	b[n++] = (unsigned char)ver;
	b[n++] = (unsigned char)key->idlen;
	memcpy(b + n, key->id, key->idlen);
	n += key->idlen;
	for (int i = 4; i >= 0; i--)
		b[n++] = (unsigned char)((uint64_t)issued >> (8 * i));
	b[n++] = (unsigned char)sl;
	memcpy(b + n, sender, sl);
	n += sl;
	b[n++] = (unsigned char)(rl >> 8);
	b[n++] = (unsigned char)rl;
	memcpy(b + n, rcpt, rl);
	n += rl;
	if (!hmac256(key, b, n, md))
		return false;
	memcpy(b + n, md, TOKEN_MAC_LEN);
	n += TOKEN_MAC_LEN;
	b32_encode(b, n, out);
	return true;
}

bool
bw_token_make(const bw_keyring *k, const char *sender, const char *rcpt, int64_t issued, char *out,
    size_t outlen)
{
	return token_make(TOKEN_VERSION, k, sender, rcpt, issued, out, outlen);
}

static bw_token_status token_verify(unsigned ver, const bw_keyring *k, const char *tok, int64_t now,
    int64_t max_age, char *sender, size_t slen, char *rcpt, size_t rlen, int64_t *issued);

bw_token_status
bw_token_verify(const bw_keyring *k, const char *tok, int64_t now, int64_t max_age, char *sender,
    size_t slen, char *rcpt, size_t rlen, int64_t *issued)
{
	return token_verify(TOKEN_VERSION, k, tok, now, max_age, sender, slen, rcpt, rlen, issued);
}

/* "RCPT/HASH": HASH the first 8 bytes of SHA-256 of the Message-ID between
 * its angle brackets, white space removed, in hex */
static bool
trace_data(const char *rcpt, const char *msgid, char *out, size_t outlen)
{
	static const char hx[] = "0123456789abcdef";
	unsigned char md[32];
	char id[1000];
	const char *lt = msgid ? strchr(msgid, '<') : NULL, *gt = lt ? strchr(lt, '>') : NULL;
	const char *s = lt && gt ? lt + 1 : msgid, *e = lt && gt ? gt : msgid ? msgid + strlen(msgid) : NULL;
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; s < e && n < sizeof(id) - 1; s++)
		if (!is_ctl((unsigned char)*s) && *s != ' ' && *s != '\t')
			id[n++] = *s;
	if (n == 0)
		return false;
	SHA256((const unsigned char *)id, n, md);
	if ((size_t)snprintf(out, outlen, "%s/", rcpt) >= outlen - 16)
		return false;
	n = strlen(out);
	for (int i = 0; i < 8; i++) {
		out[n++] = hx[md[i] >> 4];
		out[n++] = hx[md[i] & 15];
	}
	out[n] = '\0';
	return true;
}

bool
bw_trace_make(const bw_keyring *k, const char *sender, const char *rcpt, const char *msgid,
    int64_t issued, char *out, size_t outlen)
{
	char d[BW_ADDR_MAX + 32];

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	return trace_data(rcpt ? rcpt : "*", msgid, d, sizeof(d))
	    && token_make(TRACE_VERSION, k, sender, d, issued, out, outlen);
}

bw_token_status
bw_trace_verify(const bw_keyring *k, const char *tok, const char *msgid, char *sender, size_t slen,
    char *rcpt, size_t rlen)
{
	char d[BW_ADDR_MAX + 32], want[BW_ADDR_MAX + 32];
	bw_token_status st;
	char *slash;

	if (rcpt != NULL && rlen > 0)
		rcpt[0] = '\0';
	st = token_verify(TRACE_VERSION, k, tok, 0, 0, sender, slen, d, sizeof(d), NULL);
	if (st == BW_TOKEN_FUTURE)
		st = BW_TOKEN_OK;  /* a trace token has no age */
	if (st != BW_TOKEN_OK)
		return st;
	slash = strrchr(d, '/');
	*slash = '\0';
	/* bound to its message: a token copied into another one is not ours */
	if (!trace_data(d, msgid, want, sizeof(want)) || strcmp(want + strlen(d) + 1, slash + 1) != 0) {
		if (sender != NULL && slen > 0)
			sender[0] = '\0';
		return BW_TOKEN_FORGED;
	}
	if (rcpt == NULL || strlen(d) >= rlen)
		return BW_TOKEN_MALFORMED;
	strcpy(rcpt, d);
	return BW_TOKEN_OK;
}

/*
 * Checks, in order: the form (MALFORMED), the key id (BADKEY), the MAC
 * (FORGED), then the times (FUTURE, EXPIRED; max_age 0: no limit). sender,
 * rcpt and *issued are set once the MAC holds (OK, EXPIRED, FUTURE), else
 * they are empty and 0.
 */
static bw_token_status
token_verify(unsigned ver, const bw_keyring *k, const char *tok, int64_t now, int64_t max_age,
    char *sender, size_t slen, char *rcpt, size_t rlen, int64_t *issued)
{
	unsigned char b[TOKEN_BIN_MAX + 8], md[32];
	const struct bw_key *key = NULL;
	size_t n, tl, p = 0, idl, sl, rl, so, ro;
	int64_t t = 0;

	if (sender != NULL && slen > 0)
		sender[0] = '\0';
	if (rcpt != NULL && rlen > 0)
		rcpt[0] = '\0';
	if (issued != NULL)
		*issued = 0;
	if (k == NULL || tok == NULL || (tl = strnlen(tok, BW_TOKEN_MAX)) == 0 ||
	    tl >= BW_TOKEN_MAX || !b32_decode(tok, tl, b, sizeof(b), &n))
		return BW_TOKEN_MALFORMED;
	/* version, key id */
	if (n < 2 || b[p++] != ver)
		return BW_TOKEN_MALFORMED;
	idl = b[p++];
	if (idl == 0 || idl > KEY_ID_MAX || n - p < idl + 5 + 1)
		return BW_TOKEN_MALFORMED;
	for (size_t i = 0; i < idl; i++)
		if (!is_alnum(b[p + i]))
			return BW_TOKEN_MALFORMED;
	for (size_t i = 0; i < k->n && key == NULL; i++)
		if (k->key[i].idlen == idl && memcmp(k->key[i].id, b + p, idl) == 0)
			key = &k->key[i];
	p += idl;
	/* issued-at, sender, rcpt, MAC */
	for (int i = 0; i < 5; i++)
		t = t << 8 | b[p++];
	sl = b[p++];
	if (sl == 0 || sl > BW_SENDER_MAX || n - p < sl + 2)
		return BW_TOKEN_MALFORMED;
	so = p;
	p += sl;
	rl = (size_t)b[p] << 8 | b[p + 1];
	p += 2;
	if (rl == 0 || rl > BW_ADDR_MAX + (ver == TRACE_VERSION ? 17 : 0) || n - p != rl + TOKEN_MAC_LEN)
		return BW_TOKEN_MALFORMED;
	ro = p;
	p += rl;
	if (memchr(b + so, '\0', sl) != NULL || memchr(b + ro, '\0', rl) != NULL)
		return BW_TOKEN_MALFORMED;
	if (key == NULL)
		return BW_TOKEN_BADKEY;
	if (!hmac256(key, b, p, md) || CRYPTO_memcmp(md, b + p, TOKEN_MAC_LEN) != 0)
		return BW_TOKEN_FORGED;
	if (sender == NULL || rcpt == NULL || sl >= slen || rl >= rlen)
		return BW_TOKEN_MALFORMED;
	memcpy(sender, b + so, sl);
	sender[sl] = '\0';
	memcpy(rcpt, b + ro, rl);
	rcpt[rl] = '\0';
	if (!bw_sender_id_ok(sender) || !(ver == TRACE_VERSION ? trace_data_ok(rcpt) : key_rcpt_ok(rcpt))) {
		sender[0] = rcpt[0] = '\0';
		return BW_TOKEN_MALFORMED;
	}
	if (issued != NULL)
		*issued = t;
	if (t > now + TOKEN_SKEW)
		return BW_TOKEN_FUTURE;
	if (max_age > 0 && now - t > max_age)
		return BW_TOKEN_EXPIRED;
	return BW_TOKEN_OK;
}

/* ---------------------------------------------------------------- the decision */

/* When the recipient last said yes: the confirmation, else the grant. */
static int64_t
consent_given(const bw_consent *c)
{
	return c->confirmed_at > c->granted_at ? c->confirmed_at : c->granted_at;
}

/* One consent record on its own; *until gets the expiry time when EXPIRED. */
static bw_consent_result
consent_state(const bw_consent *c, const bw_consent_policy *p, int64_t now, int64_t *until)
{
	int64_t end = 0;

	if (c->withdrawn_at != 0)
		return BW_CONSENT_WITHDRAWN;
	if (!(p->methods & (1u << c->method)))
		return BW_CONSENT_METHOD;
	if (p->max_age > 0 && now - c->granted_at > p->max_age)
		end = c->granted_at + p->max_age;
	if (c->expires_at != 0 && now >= c->expires_at && (end == 0 || c->expires_at < end))
		end = c->expires_at;
	if (end != 0) {
		*until = end;
		return BW_CONSENT_EXPIRED;
	}
	return BW_CONSENT_OK;
}

/* How bad a consent state is, for choosing between exact and domain-wide. */
static int
consent_rank(bw_consent_result r)
{
	switch (r) {
	case BW_CONSENT_WITHDRAWN:
		return 3;
	case BW_CONSENT_METHOD:
		return 2;
	case BW_CONSENT_EXPIRED:
		return 1;
	default:
		return 0;
	}
}

static void
why_consent(
    char *why, size_t whylen, bw_consent_result r, const bw_consent *c, int64_t until, bool domain)
{
	char t[32];
	const char *kind = domain ? "domain-wide consent" : "consent";

	switch (r) {
	case BW_CONSENT_OK:
		bw_time_fmt(consent_given(c), t, sizeof(t));
		bw_seterr(why, whylen, "%s %s %s", kind, bw_consent_method_name(c->method), t);
		break;
	case BW_CONSENT_WITHDRAWN:
		bw_time_fmt(c->withdrawn_at, t, sizeof(t));
		bw_seterr(why, whylen, "%s withdrawn %s", kind, t);
		break;
	case BW_CONSENT_METHOD:
		bw_seterr(why, whylen, "%s method %s not accepted", kind,
		    bw_consent_method_name(c->method));
		break;
	case BW_CONSENT_EXPIRED:
		bw_time_fmt(until, t, sizeof(t));
		bw_seterr(why, whylen, "%s expired %s", kind, t);
		break;
	default:
		bw_seterr(why, whylen, "no consent record");
		break;
	}
}

static void
why_suppressed(char *why, size_t whylen, const bw_suppression *s)
{
	char t[32];
	bool all = strcmp(s->sender, "*") == 0;

	bw_time_fmt(s->at, t, sizeof(t));
	if (s->reason == BW_SR_UNSUBSCRIBE)
		bw_seterr(why, whylen, "unsubscribed%s %s", all ? " from all senders" : "", t);
	else
		bw_seterr(why, whylen, "suppressed%s (%s) %s", all ? " for all senders" : "",
		    bw_supp_reason_name(s->reason), t);
}

/*
 * Consent: the exact record decides when it is withdrawn (one person's
 * "no" beats their organisation's "yes"); otherwise a valid record wins,
 * exact before domain-wide; else the worse state of the two.
 * Suppressions: any of them wins unless the exact consent is valid, by a
 * method in p->lift, and was given (confirmed, for double opt-in) after
 * it. A domain-wide consent never lifts a suppression.
 */
bw_store_err
bw_consent_check(bw_store *st, const bw_consent_policy *p, const char *sender, const char *rcpt,
    int64_t now, bw_consent_result *res, char *why, size_t whylen)
{
	char kbuf[CHECK_KEYS][BW_STORE_KEY_MAX + 1], hash[BW_ADDR_HASH_LEN + 1],
	    dom[BW_ADDR_MAX + 1];
	bw_store_key keys[CHECK_KEYS];
	char *vals[CHECK_KEYS] = {NULL};
	bw_consent cons[2];
	bw_suppression supp[4];
	bool have_c[2] = {false, false}, have_s[4] = {false, false, false, false};
	bw_consent_result cst[2] = {BW_CONSENT_NONE, BW_CONSENT_NONE};
	int64_t until[2] = {0, 0};
	const char *at;
	size_t nk = 0;
	bw_store_err e;
	int best = -1;

	memset(cons, 0, sizeof(cons));
	memset(supp, 0, sizeof(supp));
	if (res != NULL)
		*res = BW_CONSENT_NONE;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (st == NULL || p == NULL || res == NULL || !bw_sender_id_ok(sender) ||
	    !key_rcpt_ok(rcpt) || (at = strrchr(rcpt, '@')) == NULL) {
		bw_seterr(why, whylen, "bad sender or recipient");
		return BW_STORE_INVALID;
	}
	snprintf(dom, sizeof(dom), "*%s", at);
	/* 0: consent exact, 1: consent domain, 2..5: suppressions */
	const char *ks[CHECK_KEYS][2] = {{sender, rcpt}, {sender, dom}, {sender, rcpt}, {"*", rcpt},
	    {sender, hash}, {"*", hash}};
	nk = 4;
	if (p->erasure != NULL) {
		bw_addr_hash(p->erasure, rcpt, hash);
		if (hash[0] == '#')
			nk = 6;
	}
	for (size_t i = 0; i < nk; i++) {
		if (!bw_consent_key(ks[i][0], ks[i][1], kbuf[i], sizeof(kbuf[i]))) {
			bw_seterr(why, whylen, "recipient too long for a key");
			return BW_STORE_INVALID;
		}
		keys[i].tbl = i < 2 ? BW_TBL_CONSENT : BW_TBL_SUPPRESS;
		keys[i].key = kbuf[i];
	}
	if ((e = bw_store_get_many(st, keys, nk, vals)) != BW_STORE_OK) {
		bw_seterr(why, whylen, "store: %s", bw_store_strerror(e));
		return e;
	}
	for (size_t i = 0; i < nk; i++) {
		char err[200];
		bool ok;

		if (vals[i] == NULL)
			continue;
		if (i < 2)
			ok = have_c[i] =
			    bw_consent_from_json(kbuf[i], vals[i], &cons[i], err, sizeof(err));
		else
			ok = have_s[i - 2] = bw_suppression_from_json(
			    kbuf[i], vals[i], &supp[i - 2], err, sizeof(err));
		if (!ok) {
			bw_seterr(why, whylen, "bad record '%.200s': %s", kbuf[i], err);
			e = BW_STORE_CORRUPT;
			goto out;
		}
	}

	for (int i = 0; i < 2; i++)
		if (have_c[i])
			cst[i] = consent_state(&cons[i], p, now, &until[i]);
	if (have_c[0] && cst[0] == BW_CONSENT_WITHDRAWN)
		best = 0;
	else if (have_c[0] && cst[0] == BW_CONSENT_OK)
		best = 0;
	else if (have_c[1] && cst[1] == BW_CONSENT_OK)
		best = 1;
	else if (have_c[0] || have_c[1])
		best = !have_c[0] || (have_c[1] && consent_rank(cst[1]) > consent_rank(cst[0]));

	for (int i = 0; i < 4; i++) {
		if (!have_s[i])
			continue;
		if (best == 0 && cst[0] == BW_CONSENT_OK && (p->lift & (1u << cons[0].method)) &&
		    consent_given(&cons[0]) > supp[i].at)
			continue; /* lifted */
		*res = BW_CONSENT_SUPPRESSED;
		why_suppressed(why, whylen, &supp[i]);
		goto out;
	}
	if (best < 0) {
		*res = BW_CONSENT_NONE;
		bw_seterr(why, whylen, "no consent record");
	} else {
		*res = cst[best];
		why_consent(why, whylen, cst[best], &cons[best], until[best], best == 1);
	}
out:
	for (int i = 0; i < 2; i++)
		bw_consent_clear(&cons[i]);
	for (int i = 0; i < 4; i++)
		bw_suppression_clear(&supp[i]);
	for (size_t i = 0; i < nk; i++)
		free(vals[i]);
	return e;
}

/* ---------------------------------------------------------------- writes */

/*
 * The suppression is written unless one for the same (sender, rcpt) holds
 * already from the same time or earlier; it is replaced when the consent
 * of that sender was given after it (it may have been lifted), so a new
 * complaint or bounce after a re-subscription counts. For "*" the earlier
 * time is kept (which sender's consent lifted it is not looked up).
 * An unsubscribe of a sender also sets withdrawn_at on that sender's
 * consent, unless it is withdrawn already or was given after s->at.
 * Between the read and the write another writer may come; both writes
 * are idempotent, so the worst case is a later time kept.
 */
bw_store_err
bw_suppress(bw_store *st, const bw_suppression *s)
{
	char key[BW_STORE_KEY_MAX + 1];
	bw_store_key keys[2];
	char *vals[2] = {NULL, NULL};
	bw_store_kv kv[2];
	char *js = NULL, *jc = NULL, err[128];
	bw_suppression old;
	bw_consent c;
	bool have_old = false, have_c = false, global;
	size_t nk = 1, nkv = 0;
	bw_store_err e;

	memset(&old, 0, sizeof(old));
	memset(&c, 0, sizeof(c));
	if (st == NULL || s == NULL || (unsigned)s->reason >= BW_SR__N ||
	    !bw_consent_key(s->sender, s->rcpt, key, sizeof(key)))
		return BW_STORE_INVALID;
	global = strcmp(s->sender, "*") == 0;
	keys[0].tbl = BW_TBL_SUPPRESS;
	keys[0].key = key;
	if (!global) {
		keys[1].tbl = BW_TBL_CONSENT;
		keys[1].key = key;
		nk = 2;
	}
	if ((e = bw_store_get_many(st, keys, nk, vals)) != BW_STORE_OK)
		return e;
	/* an unreadable record is replaced by the new suppression, left alone for consent */
	if (vals[0] != NULL)
		have_old = bw_suppression_from_json(key, vals[0], &old, err, sizeof(err));
	if (nk == 2 && vals[1] != NULL)
		have_c = bw_consent_from_json(key, vals[1], &c, err, sizeof(err));

	if (!have_old || s->at < old.at ||
	    (have_c && consent_given(&c) > old.at && s->at > old.at)) {
		if ((js = bw_suppression_to_json(s)) == NULL) {
			e = BW_STORE_NOMEM;
			goto out;
		}
		kv[nkv++] = (bw_store_kv){BW_TBL_SUPPRESS, key, js};
	}
	if (have_c && s->reason == BW_SR_UNSUBSCRIBE && c.withdrawn_at == 0 &&
	    s->at >= consent_given(&c)) {
		c.withdrawn_at = s->at;
		if ((jc = bw_consent_to_json(&c)) == NULL) {
			e = BW_STORE_NOMEM;
			goto out;
		}
		kv[nkv++] = (bw_store_kv){BW_TBL_CONSENT, key, jc};
	}
	if (nkv > 0)
		e = bw_store_write_many(st, kv, nkv);
out:
	free(js);
	free(jc);
	free(vals[0]);
	free(vals[1]);
	bw_suppression_clear(&old);
	bw_consent_clear(&c);
	return e;
}

/* ---------------------------------------------------------------- erasure */

typedef struct forget_rec {
	bw_tbl tbl;
	char *key;
	bw_suppression s; /* BW_TBL_SUPPRESS: the record (clear address, or a hashed one) */
} forget_rec;

typedef struct forget_ctx {
	const char *rcpt;
	const char *hash;
	forget_rec *v;
	size_t n, cap;
	bw_store_err e;
	char *err;
	size_t errlen;
} forget_ctx;

static int
forget_scan(void *ud, const char *key, const char *val, bw_tbl tbl)
{
	forget_ctx *x = ud;
	const char *sp = strchr(key, ' ');
	forget_rec *r;
	char e[200];

	if (sp == NULL)
		return 0;
	if (strcmp(sp + 1, x->rcpt) != 0 &&
	    (tbl != BW_TBL_SUPPRESS || strcmp(sp + 1, x->hash) != 0))
		return 0;
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 16;
		forget_rec *nv = realloc(x->v, cap * sizeof(*nv));

		if (nv == NULL) {
			x->e = BW_STORE_NOMEM;
			return 1;
		}
		x->v = nv;
		x->cap = cap;
	}
	r = &x->v[x->n];
	memset(r, 0, sizeof(*r));
	r->tbl = tbl;
	if ((r->key = strdup(key)) == NULL) {
		x->e = BW_STORE_NOMEM;
		return 1;
	}
	x->n++;
	if (tbl == BW_TBL_SUPPRESS && !bw_suppression_from_json(key, val, &r->s, e, sizeof(e))) {
		bw_seterr(x->err, x->errlen,
		    "bad suppression record '%.200s': %s (delete or fix it first)", key, e);
		x->e = BW_STORE_CORRUPT;
		return 1;
	}
	return 0;
}

static int
forget_scan_consent(void *ud, const char *key, const char *val)
{
	return forget_scan(ud, key, val, BW_TBL_CONSENT);
}

static int
forget_scan_supp(void *ud, const char *key, const char *val)
{
	return forget_scan(ud, key, val, BW_TBL_SUPPRESS);
}

/*
 * The tables are keyed by sender, so finding rcpt reads all of both. The
 * hashed suppressions keep reason and time; source and note may name the
 * address and are not kept. A hashed record there already keeps its
 * earlier time.
 */
bw_store_err
bw_forget(bw_store *st, const bw_keyring *erasure, const char *rcpt, size_t *n_deleted, char *err,
    size_t errlen)
{
	char hash[BW_ADDR_HASH_LEN + 1];
	forget_ctx x;
	bw_store_kv *kv = NULL;
	char **keys = NULL, **vals = NULL;
	size_t nkv = 0, nput = 0, ndel = 0;
	bw_store_err e;

	memset(&x, 0, sizeof(x));
	if (n_deleted != NULL)
		*n_deleted = 0;
	bw_seterr(err, errlen, "%s", "");
	if (st == NULL || erasure == NULL) {
		bw_seterr(err, errlen, "erasure needs an erasure key");
		return BW_STORE_INVALID;
	}
	if (!key_rcpt_ok(rcpt) || rcpt[0] == '#' || strncmp(rcpt, "*@", 2) == 0) {
		bw_seterr(err, errlen, "not a normalised address: '%.100s'", rcpt ? rcpt : "");
		return BW_STORE_INVALID;
	}
	bw_addr_hash(erasure, rcpt, hash);
	if (hash[0] != '#') {
		bw_seterr(err, errlen, "cannot hash the address");
		return BW_STORE_NOMEM;
	}
	x.rcpt = rcpt;
	x.hash = hash;
	x.err = err;
	x.errlen = errlen;
	x.e = BW_STORE_OK;
	e = bw_store_scan(st, BW_TBL_CONSENT, "", forget_scan_consent, &x);
	if (e == BW_STORE_OK && x.e == BW_STORE_OK)
		e = bw_store_scan(st, BW_TBL_SUPPRESS, "", forget_scan_supp, &x);
	if (e == BW_STORE_OK)
		e = x.e;
	if (e != BW_STORE_OK) {
		if (err != NULL && errlen > 0 && err[0] == '\0')
			bw_seterr(err, errlen, "scan: %s", bw_store_strerror(e));
		goto out;
	}

	kv = calloc(2 * x.n + 1, sizeof(*kv)); /* a delete and a put per suppression */
	keys = calloc(x.n + 1, sizeof(*keys));
	vals = calloc(x.n + 1, sizeof(*vals));
	if (kv == NULL || keys == NULL || vals == NULL) {
		e = BW_STORE_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < x.n; i++) {
		forget_rec *r = &x.v[i];
		bw_suppression h;
		char hk[BW_STORE_KEY_MAX + 1];
		bool keep = false;

		if (r->tbl == BW_TBL_SUPPRESS && r->s.rcpt[0] == '#')
			continue; /* already hashed: looked at below */
		kv[nkv++] = (bw_store_kv){r->tbl, r->key, NULL};
		ndel++;
		if (r->tbl != BW_TBL_SUPPRESS)
			continue;
		for (size_t j = 0; j < x.n; j++)
			if (x.v[j].tbl == BW_TBL_SUPPRESS && x.v[j].s.rcpt[0] == '#' &&
			    strcmp(x.v[j].s.sender, r->s.sender) == 0 && x.v[j].s.at <= r->s.at)
				keep = true;
		if (keep)
			continue;
		memset(&h, 0, sizeof(h));
		snprintf(h.sender, sizeof(h.sender), "%s", r->s.sender);
		snprintf(h.rcpt, sizeof(h.rcpt), "%s", hash);
		h.reason = r->s.reason;
		h.at = r->s.at;
		h.source = (char *)"erasure";
		if (!bw_consent_key(h.sender, h.rcpt, hk, sizeof(hk)) ||
		    (keys[nput] = strdup(hk)) == NULL ||
		    (vals[nput] = bw_suppression_to_json(&h)) == NULL) {
			e = BW_STORE_NOMEM;
			goto out;
		}
		kv[nkv++] = (bw_store_kv){BW_TBL_SUPPRESS, keys[nput], vals[nput]};
		nput++;
	}
	if (nkv > 0 && (e = bw_store_write_many(st, kv, nkv)) != BW_STORE_OK) {
		bw_seterr(err, errlen, "write: %s", bw_store_strerror(e));
		goto out;
	}
	if (n_deleted != NULL)
		*n_deleted = ndel;
out:
	for (size_t i = 0; keys != NULL && vals != NULL && i <= nput && i <= x.n; i++) {
		free(keys[i]);
		free(vals[i]);
	}
	free(keys);
	free(vals);
	free(kv);
	for (size_t i = 0; i < x.n; i++) {
		free(x.v[i].key);
		bw_suppression_clear(&x.v[i].s);
	}
	free(x.v);
	return e;
}
