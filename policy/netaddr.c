/*
 * netaddr.c - address lists with CIDR ranges, matched by prefix.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "netaddr.h"

typedef struct net_entry {
	unsigned char addr[16];  /* IPv4 stored as IPv4-mapped IPv6 */
	unsigned prefix;         /* in bits of the 128 */
} net_entry;

struct bw_netlist {
	net_entry *e;
	size_t n, cap;
};

static bool
net_to16(const char *s, unsigned char out[16], bool *v4)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		*v4 = true;
		return true;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		memcpy(out, &a6, 16);
		*v4 = false;
		return true;
	}
	return false;
}

static bool
net_add(bw_netlist *l, const char *tok, const char *where, bw_errs *errs)
{
	char buf[128];
	char *slash;
	bool v4;
	net_entry ent;

	if (strlen(tok) >= sizeof(buf)) {
		bw_errs_add(errs, "%s: address too long: %.60s...", where, tok);
		return false;
	}
	strcpy(buf, tok);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = 0;
	if (!net_to16(buf, ent.addr, &v4)) {
		bw_errs_add(errs, "%s: not an IP address or CIDR range: \"%.100s\"", where, tok);
		return false;
	}
	ent.prefix = 128;
	if (slash) {
		char *end;
		unsigned long p;

		errno = 0;
		p = strtoul(slash, &end, 10);
		if (*slash == 0 || *end || errno || p > (v4 ? 32u : 128u)) {
			bw_errs_add(errs, "%s: bad prefix length in \"%.100s\"", where, tok);
			return false;
		}
		ent.prefix = (unsigned)p + (v4 ? 96 : 0);
	}
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 8;
		net_entry *ne = realloc(l->e, nc * sizeof(*ne));
		if (ne == NULL) {
			bw_errs_add(errs, "%s: out of memory", where);
			return false;
		}
		l->e = ne;
		l->cap = nc;
	}
	l->e[l->n++] = ent;
	return true;
}

/* Split a line on commas and white space, add every token. */
static bool
net_add_line(bw_netlist *l, char *line, const char *where, bw_errs *errs)
{
	bool ok = true;
	char *save = NULL;

	for (char *t = strtok_r(line, ", \t\r\n", &save); t; t = strtok_r(NULL, ", \t\r\n", &save))
		if (!net_add(l, t, where, errs))
			ok = false;
	return ok;
}

bw_netlist *
bw_netlist_parse(const char *spec, const char *where, bw_errs *errs)
{
	bw_netlist *l = calloc(1, sizeof(*l));
	bool ok = true;

	if (l == NULL) {
		bw_errs_add(errs, "%s: out of memory", where);
		return NULL;
	}
	if (spec[0] == '/') {
		FILE *fp = fopen(spec, "r");
		char line[4096];
		unsigned lineno = 0;

		if (fp == NULL) {
			bw_errs_add(errs, "%s: cannot open InternalHosts file %s: %s", where, spec,
			    strerror(errno));
			free(l);
			return NULL;
		}
		while (fgets(line, sizeof(line), fp)) {
			char here[512];
			char *hash = strchr(line, '#');

			lineno++;
			if (hash)
				*hash = 0;
			snprintf(here, sizeof(here), "%s:%u", spec, lineno);
			if (!net_add_line(l, line, here, errs))
				ok = false;
		}
		fclose(fp);
	} else {
		char *copy = strdup(spec);

		if (copy == NULL) {
			bw_errs_add(errs, "%s: out of memory", where);
			free(l);
			return NULL;
		}
		ok = net_add_line(l, copy, where, errs);
		free(copy);
	}
	if (!ok) {
		bw_netlist_free(l);
		return NULL;
	}
	return l;
}

void
bw_netlist_free(bw_netlist *l)
{
	if (l) {
		free(l->e);
		free(l);
	}
}

bool
bw_netlist_match(const bw_netlist *l, const char *addr)
{
	unsigned char a[16];
	bool v4;

	if (l == NULL || addr == NULL || *addr == 0)
		return false;
	/* libmilter and Postfix may write IPv6 as "IPv6:..." */
	if (strncasecmp(addr, "IPv6:", 5) == 0)
		addr += 5;
	if (!net_to16(addr, a, &v4))
		return false;
	for (size_t i = 0; i < l->n; i++) {
		const net_entry *e = &l->e[i];
		unsigned full = e->prefix / 8, rest = e->prefix % 8;

		if (memcmp(a, e->addr, full) != 0)
			continue;
		if (rest) {
			unsigned char mask = (unsigned char)(0xff << (8 - rest));
			if ((a[full] & mask) != (e->addr[full] & mask))
				continue;
		}
		return true;
	}
	return false;
}
