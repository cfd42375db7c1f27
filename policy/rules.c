/*
 * rules.c - the policy file, read into lists of patterns.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "consent.h"
#include "rules.h"

typedef enum { RULE_BULK, RULE_TRANSACTIONAL, RULE_EXEMPT, RULE_SENDER, RULE_CLASS } rule_kind;

typedef struct rule {
	rule_kind kind;
	char *pat;      /* lower case; the class name for RULE_CLASS */
	char *cname;    /* class=NAME, or NULL */
	size_t cls;     /* index into classes once resolved */
	unsigned line;
} rule;

struct bw_rules {
	rule *r;
	size_t n, cap;
	bw_class_policy *cl;
	size_t ncl;
};

static const struct { const char *name; rule_kind kind; } rule_directives[] = {
	{ "bulk-sender", RULE_BULK },
	{ "transactional-sender", RULE_TRANSACTIONAL },
	{ "exempt-recipient", RULE_EXEMPT },
	{ "sender", RULE_SENDER },
	{ "sender-class", RULE_CLASS },
};

/* One "key=value" option of a sender-class line into c; false with a
 * sentence in err. */
static bool
rules_class_option(bw_class_policy *c, const char *opt, char *err, size_t errlen)
{
	const char *eq = strchr(opt, '=');
	char why[120];
	uint64_t t;
	unsigned mask;

	if (eq == NULL || eq[1] == 0) {
		snprintf(err, errlen, "\"%.60s\": want key=value", opt);
		return false;
	}
	if (strncasecmp(opt, "require-consent=", 16) == 0) {
		if (strcasecmp(eq + 1, "yes") == 0)
			c->require_consent = 1;
		else if (strcasecmp(eq + 1, "no") == 0)
			c->require_consent = 0;
		else {
			snprintf(err, errlen, "require-consent: yes or no");
			return false;
		}
	} else if (strncasecmp(opt, "consent-max-age=", 16) == 0) {
		if (!bw_parse_seconds(eq + 1, &t) || t > INT64_MAX) {
			snprintf(err, errlen, "consent-max-age: a time such as 3y, 180d or 0");
			return false;
		}
		c->consent_max_age = (int64_t)t;
	} else if (strncasecmp(opt, "consent-methods=", 16) == 0
	    || strncasecmp(opt, "consent-lift-methods=", 21) == 0) {
		if (!bw_consent_methods_parse(eq + 1, &mask, why, sizeof(why))) {
			snprintf(err, errlen, "%.*s: %s", (int)(eq - opt), opt, why);
			return false;
		}
		if (opt[8] == 'm')
			c->methods = mask;
		else
			c->lift = mask;
	} else if (strncasecmp(opt, "message-rate=", 13) == 0
	    || strncasecmp(opt, "recipient-rate=", 15) == 0) {
		bool msg = opt[0] == 'm' || opt[0] == 'M', on;
		if (!bw_parse_rate(eq + 1, msg ? &c->msg_rate : &c->rcpt_rate, &on, why, sizeof(why))) {
			snprintf(err, errlen, "%.*s: %s", (int)(eq - opt), opt, why);
			return false;
		}
		if (msg)
			c->msg_rate_set = on;
		else
			c->rcpt_rate_set = on;
	} else {
		snprintf(err, errlen, "unknown option \"%.*s\" (require-consent, consent-max-age, "
		    "consent-methods, consent-lift-methods, message-rate, recipient-rate)",
		    (int)(eq - opt), opt);
		return false;
	}
	return true;
}

/* A sender-class line: NAME then options. */
static void
rules_add_class(bw_rules *rs, const char *name, char **opts, size_t nopts, const char *path,
    unsigned lineno, bw_errs *errs)
{
	bw_class_policy c = { NULL, -1, -1, -1, -1, -1, -1, { 0, 0, 0 }, { 0, 0, 0 } }, *nc;
	char err[200];

	for (size_t i = 0; i < rs->ncl; i++)
		if (strcasecmp(rs->cl[i].name, name) == 0) {
			bw_errs_add(errs, "%s:%u: sender-class %s is defined twice", path, lineno, name);
			return;
		}
	for (size_t i = 0; i < nopts; i++)
		if (!rules_class_option(&c, opts[i], err, sizeof(err))) {
			bw_errs_add(errs, "%s:%u: sender-class %s: %s", path, lineno, name, err);
			return;
		}
	if ((nc = realloc(rs->cl, (rs->ncl + 1) * sizeof(*nc))) == NULL)
		return;
	rs->cl = nc;
	if ((c.name = strdup(name)) == NULL)
		return;
	rs->cl[rs->ncl++] = c;
}

static char *
rules_lower(const char *s)
{
	char *d = strdup(s);

	if (d)
		for (char *p = d; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return d;
}

static bool
rules_pattern_ok(const char *p)
{
	if (strncmp(p, "auth:", 5) == 0)
		return p[5] != 0;
	if (p[0] == '@')
		return p[1] != 0 && strchr(p + 1, '@') == NULL;
	const char *at = strchr(p, '@');
	return at && at != p && at[1] && strchr(at + 1, '@') == NULL;
}

bw_rules *
bw_rules_load(const char *path, bw_errs *errs)
{
	bw_rules *rs = calloc(1, sizeof(*rs));
	FILE *fp;
	char line[2048];
	unsigned lineno = 0;
	size_t nerr = errs->n;

	if (rs == NULL)
		return NULL;
	if (path == NULL || *path == 0)
		return rs;
	if ((fp = fopen(path, "r")) == NULL) {
		bw_errs_add(errs, "%s: cannot open policy file: %s", path, strerror(errno));
		free(rs);
		return NULL;
	}
	while (fgets(line, sizeof(line), fp)) {
		char *save = NULL, *dir, *pat, *extra;
		size_t k;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			bw_errs_add(errs, "%s:%u: line too long", path, lineno);
			int c;
			while ((c = fgetc(fp)) != EOF && c != '\n')
				;
			continue;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		if ((dir = strtok_r(line, " \t\r\n", &save)) == NULL)
			continue;
		char *opts[8];
		size_t nopts = 0;
		char *cname = NULL;

		pat = strtok_r(NULL, " \t\r\n", &save);
		while (nopts < 8 && (extra = strtok_r(NULL, " \t\r\n", &save)) != NULL)
			opts[nopts++] = extra;
		for (k = 0; k < sizeof(rule_directives) / sizeof(rule_directives[0]); k++)
			if (strcasecmp(dir, rule_directives[k].name) == 0)
				break;
		if (k == sizeof(rule_directives) / sizeof(rule_directives[0])) {
			bw_errs_add(errs, "%s:%u: unknown directive \"%.60s\" (expected bulk-sender, "
			    "transactional-sender, exempt-recipient, sender or sender-class)", path, lineno, dir);
			continue;
		}
		if (rule_directives[k].kind == RULE_CLASS) {
			if (pat == NULL)
				bw_errs_add(errs, "%s:%u: sender-class needs a name", path, lineno);
			else
				rules_add_class(rs, pat, opts, nopts, path, lineno, errs);
			continue;
		}
		if (pat == NULL) {
			bw_errs_add(errs, "%s:%u: %s takes one pattern", path, lineno, dir);
			continue;
		}
		if (nopts == 1 && strncasecmp(opts[0], "class=", 6) == 0 && opts[0][6]
		    && (rule_directives[k].kind == RULE_BULK || rule_directives[k].kind == RULE_SENDER))
			cname = opts[0] + 6;
		else if (nopts > 0) {
			bw_errs_add(errs, "%s:%u: %s takes one pattern%s", path, lineno, dir,
			    rule_directives[k].kind == RULE_BULK || rule_directives[k].kind == RULE_SENDER
			    ? " and an optional class=NAME" : "");
			continue;
		}
		if (rule_directives[k].kind == RULE_SENDER && cname == NULL) {
			bw_errs_add(errs, "%s:%u: sender needs class=NAME", path, lineno);
			continue;
		}
		if (!rules_pattern_ok(pat)) {
			bw_errs_add(errs, "%s:%u: bad pattern \"%.100s\" (user@domain, @domain, "
			    "@.domain or auth:login)", path, lineno, pat);
			continue;
		}
		if (rs->n == rs->cap) {
			size_t nc = rs->cap ? rs->cap * 2 : 16;
			rule *nr = realloc(rs->r, nc * sizeof(*nr));
			if (nr == NULL)
				break;
			rs->r = nr;
			rs->cap = nc;
		}
		rs->r[rs->n].kind = rule_directives[k].kind;
		rs->r[rs->n].line = lineno;
		rs->r[rs->n].cname = cname ? strdup(cname) : NULL;
		if ((rs->r[rs->n].pat = rules_lower(pat)) == NULL)
			break;
		rs->n++;
	}
	fclose(fp);
	/* classes may be defined after the rules that name them */
	for (size_t i = 0; i < rs->n; i++) {
		size_t c;
		if (rs->r[i].cname == NULL)
			continue;
		for (c = 0; c < rs->ncl; c++)
			if (strcasecmp(rs->cl[c].name, rs->r[i].cname) == 0)
				break;
		if (c == rs->ncl)
			bw_errs_add(errs, "%s:%u: no sender-class named \"%.60s\"", path, rs->r[i].line,
			    rs->r[i].cname);
		rs->r[i].cls = c;
	}
	if (errs->n != nerr) {
		bw_rules_free(rs);
		return NULL;
	}
	return rs;
}

void
bw_rules_free(bw_rules *rs)
{
	if (rs == NULL)
		return;
	for (size_t i = 0; i < rs->n; i++)
		free(rs->r[i].pat), free(rs->r[i].cname);
	for (size_t i = 0; i < rs->ncl; i++)
		free(rs->cl[i].name);
	free(rs->cl);
	free(rs->r);
	free(rs);
}

size_t
bw_rules_count(const bw_rules *rs)
{
	return rs ? rs->n : 0;
}

/* Does address addr (any case) match pattern pat (lower case)? */
static bool
rules_addr_match(const char *pat, const char *addr)
{
	const char *at;

	if (addr == NULL || *addr == 0)
		return false;
	if (pat[0] != '@')
		return strcasecmp(pat, addr) == 0;
	if ((at = strrchr(addr, '@')) == NULL)
		return false;
	at++;
	if (pat[1] == '.') {
		/* the domain itself or any subdomain */
		size_t pl = strlen(pat + 2), al = strlen(at);
		if (strcasecmp(at, pat + 2) == 0)
			return true;
		return al > pl + 1 && at[al - pl - 1] == '.' && strcasecmp(at + al - pl, pat + 2) == 0;
	}
	return strcasecmp(at, pat + 1) == 0;
}

static bool
rules_match(const rule *r, const char *addr, const char *auth)
{
	if (strncmp(r->pat, "auth:", 5) == 0)
		return auth && *auth && strcasecmp(r->pat + 5, auth) == 0;
	return rules_addr_match(r->pat, addr);
}

bw_sender_class
bw_rules_sender(const bw_rules *rs, const char *from, const char *auth)
{
	if (rs == NULL)
		return BW_SENDER_UNKNOWN;
	/* transactional declarations win: they are the narrower statement */
	for (size_t i = 0; i < rs->n; i++)
		if (rs->r[i].kind == RULE_TRANSACTIONAL && rules_match(&rs->r[i], from, auth))
			return BW_SENDER_TRANSACTIONAL;
	for (size_t i = 0; i < rs->n; i++)
		if (rs->r[i].kind == RULE_BULK && rules_match(&rs->r[i], from, auth))
			return BW_SENDER_BULK;
	return BW_SENDER_UNKNOWN;
}

bool
bw_rules_exempt_rcpt(const bw_rules *rs, const char *rcpt)
{
	if (rs == NULL)
		return false;
	for (size_t i = 0; i < rs->n; i++)
		if (rs->r[i].kind == RULE_EXEMPT && rules_match(&rs->r[i], rcpt, NULL))
			return true;
	return false;
}

const bw_class_policy *
bw_rules_class(const bw_rules *rs, const char *from, const char *auth)
{
	if (rs == NULL)
		return NULL;
	for (size_t i = 0; i < rs->n; i++)
		if (rs->r[i].cname && rules_match(&rs->r[i], from, auth))
			return &rs->cl[rs->r[i].cls];
	return NULL;
}
