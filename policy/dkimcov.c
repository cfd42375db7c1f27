/*
 * dkimcov.c - the h= list of DKIM signatures, read with libopendkim.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opendkim/dkim.h>

#include "dkimcov.h"
#include "log.h"

static DKIM_LIB *dkimcov_lib;
static pthread_once_t dkimcov_once = PTHREAD_ONCE_INIT;

/* never look a key up: only the signature's own tags are wanted */
static DKIM_STAT
dkimcov_nokey(DKIM *d, DKIM_SIGINFO *s, u_char *buf, size_t len)
{
	(void)d, (void)s, (void)buf, (void)len;
	return DKIM_STAT_NOKEY;
}

static void
dkimcov_init(void)
{
	if ((dkimcov_lib = dkim_init(NULL, NULL)) != NULL)
		dkim_set_key_lookup(dkimcov_lib, dkimcov_nokey);
}

/* is name in the colon-separated list h (case-insensitive, spaces allowed)? */
static bool
dkimcov_listed(const char *h, const char *name)
{
	size_t nl = strlen(name);

	for (const char *p = h; *p;) {
		const char *e;
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ':')
			p++;
		e = p;
		while (*e && *e != ':')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r' || t[-1] == '\n'))
			t--;
		if ((size_t)(t - p) == nl && strncasecmp(p, name, nl) == 0)
			return true;
		p = e;
	}
	return false;
}

bool
dkimcov_check(const char *const *names, const char *const *values, size_t n, dkimcov_result *r)
{
	DKIM *d;
	DKIM_STAT st;
	DKIM_SIGINFO **sigs;
	int nsigs = 0;
	bool fed = false;

	memset(r, 0, sizeof(*r));
	pthread_once(&dkimcov_once, dkimcov_init);
	if (dkimcov_lib == NULL)
		return false;
	if ((d = dkim_verify(dkimcov_lib, (u_char *)"bulkwarden", NULL, &st)) == NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		char *line;
		if (strcasecmp(names[i], "DKIM-Signature") != 0 && strcasecmp(names[i], "From") != 0)
			continue;
		if (asprintf(&line, "%s: %s", names[i], values[i]) < 0)
			continue;
		if (dkim_header(d, (u_char *)line, strlen(line)) == DKIM_STAT_OK)
			fed = true;
		free(line);
	}
	if (fed && dkim_eoh(d) == DKIM_STAT_OK && dkim_getsiglist(d, &sigs, &nsigs) == DKIM_STAT_OK) {
		for (int i = 0; i < nsigs; i++) {
			const u_char *h = dkim_sig_gettagvalue(sigs[i], false, (u_char *)"h");
			const u_char *dom = dkim_sig_getdomain(sigs[i]);
			bool lu, post;

			if (h == NULL)
				continue;
			r->nsigs++;
			lu = dkimcov_listed((const char *)h, "List-Unsubscribe");
			post = dkimcov_listed((const char *)h, "List-Unsubscribe-Post");
			/* report the best signature: both, else one, else the first */
			if (r->nsigs == 1 || (lu && post) || (lu && !r->covers_lu)) {
				r->covers_lu = lu;
				r->covers_post = post;
				snprintf(r->domain, sizeof(r->domain), "%s", dom ? (const char *)dom : "");
			}
			if (lu && post)
				break;
		}
	}
	dkim_free(d);
	return r->nsigs > 0;
}
