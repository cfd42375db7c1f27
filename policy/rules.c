/*
 * rules.c - the policy file, read into lists of patterns.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules.h"

typedef enum { RULE_BULK, RULE_TRANSACTIONAL, RULE_EXEMPT } rule_kind;

typedef struct rule {
	rule_kind kind;
	char *pat;      /* lower case */
} rule;

struct bw_rules {
	rule *r;
	size_t n, cap;
};

static const struct { const char *name; rule_kind kind; } rule_directives[] = {
	{ "bulk-sender", RULE_BULK },
	{ "transactional-sender", RULE_TRANSACTIONAL },
	{ "exempt-recipient", RULE_EXEMPT },
};

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
		pat = strtok_r(NULL, " \t\r\n", &save);
		extra = strtok_r(NULL, " \t\r\n", &save);
		for (k = 0; k < sizeof(rule_directives) / sizeof(rule_directives[0]); k++)
			if (strcasecmp(dir, rule_directives[k].name) == 0)
				break;
		if (k == sizeof(rule_directives) / sizeof(rule_directives[0])) {
			bw_errs_add(errs, "%s:%u: unknown directive \"%.60s\" (expected bulk-sender, "
			    "transactional-sender or exempt-recipient)", path, lineno, dir);
			continue;
		}
		if (pat == NULL || extra != NULL) {
			bw_errs_add(errs, "%s:%u: %s takes exactly one pattern", path, lineno, dir);
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
		if ((rs->r[rs->n].pat = rules_lower(pat)) == NULL)
			break;
		rs->n++;
	}
	fclose(fp);
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
		free(rs->r[i].pat);
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
