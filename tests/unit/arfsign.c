/*
 * arfsign.c - sign a message with DKIM (rsa-sha256, relaxed/relaxed) as a
 * complaint reporter would, for the end-to-end tests:
 *
 *   arfsign DOMAIN SELECTOR KEYFILE < message > signed-message
 *
 * KEYFILE is a PEM private key (opendkim-genkey's .private). The input may
 * have LF or CRLF line ends; the output is the input with a
 * DKIM-Signature field on top.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opendkim/dkim.h>

static char *
slurp(FILE *fp, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);

	while (buf != NULL) {
		n += fread(buf + n, 1, cap - n, fp);
		if (n < cap)
			break;
		char *nb = realloc(buf, (cap *= 2) + 1);
		if (nb == NULL)
			free(buf);
		buf = nb;
	}
	if (buf != NULL)
		buf[n] = 0;
	*len = n;
	return buf;
}

int
main(int argc, char **argv)
{
	DKIM_LIB *lib;
	DKIM *d;
	DKIM_STAT st;
	FILE *kf;
	size_t len, klen;
	char *msg, *key;
	const char *p, *end;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	unsigned flags = DKIM_LIBFLAGS_FIXCRLF;

	if (argc != 4) {
		fprintf(stderr, "usage: arfsign DOMAIN SELECTOR KEYFILE < message\n");
		return 2;
	}
	if ((kf = fopen(argv[3], "r")) == NULL || (key = slurp(kf, &klen)) == NULL) {
		perror(argv[3]);
		return 1;
	}
	fclose(kf);
	if ((msg = slurp(stdin, &len)) == NULL || (lib = dkim_init(NULL, NULL)) == NULL) {
		fprintf(stderr, "arfsign: out of memory\n");
		return 1;
	}
	dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags));
	d = dkim_sign(lib, (const unsigned char *)"arfsign", NULL, (unsigned char *)key,
	    (const unsigned char *)argv[2], (const unsigned char *)argv[1], DKIM_CANON_RELAXED,
	    DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1, &st);
	if (d == NULL) {
		fprintf(stderr, "arfsign: dkim_sign: %d\n", (int)st);
		return 1;
	}
	/* each header field with its folds, without its line end */
	for (p = msg, end = msg + len; p < end && *p != '\n' && !(*p == '\r' && p + 1 < end && p[1] == '\n');) {
		const char *s = p, *e;
		do {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			p = nl ? nl + 1 : end;
		} while (p < end && (*p == ' ' || *p == '\t'));
		for (e = p; e > s && (e[-1] == '\n' || e[-1] == '\r'); e--)
			;
		if (dkim_header(d, (unsigned char *)(uintptr_t)s, (size_t)(e - s)) != DKIM_STAT_OK) {
			fprintf(stderr, "arfsign: a header field does not parse\n");
			return 1;
		}
	}
	if (p < end)
		p += *p == '\r' ? 2 : 1;
	if (dkim_eoh(d) != DKIM_STAT_OK || (p < end && dkim_body(d, (unsigned char *)(uintptr_t)p,
	    (size_t)(end - p)) != DKIM_STAT_OK) || dkim_eom(d, NULL) != DKIM_STAT_OK
	    || dkim_getsighdr_d(d, strlen("DKIM-Signature: "), &sig, &siglen) != DKIM_STAT_OK) {
		fprintf(stderr, "arfsign: signing failed\n");
		return 1;
	}
	printf("DKIM-Signature: %s\n", (char *)sig);
	fwrite(msg, 1, len, stdout);
	dkim_free(d);
	dkim_close(lib);
	free(msg);
	free(key);
	return 0;
}
