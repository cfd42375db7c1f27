/*
 * noop-milter.c - the benchmark baseline: a libmilter filter that does
 * nothing, negotiated exactly like bulkwarden.
 *
 * bwbench against this filter measures what the milter protocol and
 * libmilter cost; against bulkwarden, that plus the policy work. For the
 * comparison to mean anything the two must ask the MTA for the same steps,
 * no-reply flags, actions and macro lists: NOOP_STEPS, NOOP_ACTIONS and the
 * lists in noop_negotiate() MUST mirror cb_negotiate() in milter/callbacks.c
 * (change both together). Callbacks return SMFIS_NOREPLY for the steps
 * negotiated without reply (as callbacks.c does; libmilter logs an error
 * for any other answer there), SMFIS_CONTINUE elsewhere, SMFIS_ACCEPT at
 * end of message.
 *
 * usage: noop-milter -s unix:/path|inet:port@host [-f]
 *   -f  stay in the foreground (otherwise detach)
 */
#define _DEFAULT_SOURCE

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

/* Mirror of milter/callbacks.c: what bulkwarden asks for. */
#define NOOP_STEPS (SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NR_CONN | SMFIP_NR_HDR \
	| SMFIP_SKIP)
#define NOOP_ACTIONS (SMFIF_ADDHDRS | SMFIF_QUARANTINE | SMFIF_DELRCPT | SMFIF_SETSYMLIST)

/* Per connection: which no-reply flags the MTA agreed to. */
typedef struct noop_conn {
	bool nr_conn;
	bool nr_hdr;
} noop_conn;

static sfsistat
noop_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
    unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
    unsigned long *pf3)
{
	noop_conn *c = calloc(1, sizeof(*c));

	(void)f2;
	(void)f3;
	if (c == NULL)
		return SMFIS_REJECT;
	*pf0 = f0 & NOOP_ACTIONS;
	*pf1 = f1 & NOOP_STEPS;
	*pf2 = *pf3 = 0;
	c->nr_conn = (*pf1 & SMFIP_NR_CONN) != 0;
	c->nr_hdr = (*pf1 & SMFIP_NR_HDR) != 0;
	smfi_setpriv(ctx, c);
	if (*pf0 & SMFIF_SETSYMLIST) {
		smfi_setsymlist(ctx, SMFIM_ENVFROM, "{auth_authen} {i}");
		smfi_setsymlist(ctx, SMFIM_ENVRCPT, "{i}");
		smfi_setsymlist(ctx, SMFIM_EOM, "{i}");
	}
	return SMFIS_CONTINUE;
}

static sfsistat
noop_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	noop_conn *c = smfi_getpriv(ctx);

	(void)host;
	(void)sa;
	return c && c->nr_conn ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
noop_envfrom(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat
noop_envrcpt(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat
noop_header(SMFICTX *ctx, char *name, char *value)
{
	noop_conn *c = smfi_getpriv(ctx);

	(void)name;
	(void)value;
	return c && c->nr_hdr ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
noop_eoh(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
noop_body(SMFICTX *ctx, unsigned char *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return SMFIS_CONTINUE;
}

static sfsistat
noop_eom(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_ACCEPT;
}

static sfsistat
noop_abort(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
noop_close(SMFICTX *ctx)
{
	free(smfi_getpriv(ctx));
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

static struct smfiDesc noop_desc = {
	.xxfi_name = "noop-milter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = NOOP_ACTIONS,
	.xxfi_connect = noop_connect,
	.xxfi_envfrom = noop_envfrom,
	.xxfi_envrcpt = noop_envrcpt,
	.xxfi_header = noop_header,
	.xxfi_eoh = noop_eoh,
	.xxfi_body = noop_body,
	.xxfi_eom = noop_eom,
	.xxfi_abort = noop_abort,
	.xxfi_close = noop_close,
	.xxfi_negotiate = noop_negotiate,
};

static void
usage(void)
{
	fprintf(stderr, "usage: noop-milter -s unix:/path|inet:port@host [-f]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *sock = NULL;
	bool foreground = false;
	int ch;

	while ((ch = getopt(argc, argv, "s:f")) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 'f': foreground = true; break;
		default: usage();
		}
	}
	if (sock == NULL || optind != argc)
		usage();
	if (smfi_setconn((char *)sock) != MI_SUCCESS || smfi_register(noop_desc) != MI_SUCCESS) {
		fprintf(stderr, "noop-milter: cannot set up %s\n", sock);
		return 1;
	}
	/* open (and replace a stale unix socket) now, so errors show here */
	if (smfi_opensocket(true) != MI_SUCCESS) {
		fprintf(stderr, "noop-milter: cannot open socket %s\n", sock);
		return 1;
	}
	if (!foreground && daemon(0, 0) < 0) {
		fprintf(stderr, "noop-milter: daemon: %s\n", strerror(errno));
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
