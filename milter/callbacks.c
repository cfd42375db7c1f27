/*
 * callbacks.c - libmilter callbacks: facts to the engine, verdicts to replies.
 *
 * Each callback gets its context, hands the facts to the engine and maps the
 * answer to an sfsistat and a reply. Nothing is decided here. The protocol
 * steps and no-reply flags negotiated below are the ones the policy needs;
 * tests/bench/noop-milter.c mirrors them for the baseline.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "callbacks.h"
#include "engine.h"
#include "log.h"

typedef struct cb_conn {
	char addr[64];
	char host[256];
	bw_msg *msg;
	bool nr_conn;    /* the MTA agreed: no reply for connect */
	bool nr_hdr;     /* the MTA agreed: no reply for headers */
	bool skip_ok;    /* the MTA understands SMFIS_SKIP */
} cb_conn;

static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static bw_policy *cb_current;
static _Atomic(bw_store *) cb_store;   /* set late when the store opens late */
static atomic_long cb_active;
static atomic_bool cb_draining;

void
cb_set_policy(bw_policy *p)
{
	bw_policy *old;

	pthread_mutex_lock(&cb_lock);
	old = cb_current;
	cb_current = p;
	pthread_mutex_unlock(&cb_lock);
	bw_policy_unref(old);
}

bw_policy *
cb_policy(void)
{
	bw_policy *p;

	pthread_mutex_lock(&cb_lock);
	p = bw_policy_ref(cb_current);
	pthread_mutex_unlock(&cb_lock);
	return p;
}

void
cb_set_store(bw_store *st)
{
	atomic_store(&cb_store, st);
}

bw_store *
cb_get_store(void)
{
	return atomic_load(&cb_store);
}

void
cb_set_draining(void)
{
	atomic_store(&cb_draining, true);
}

long
cb_inflight(void)
{
	return atomic_load(&cb_active);
}

static void
cb_msg_done(cb_conn *c)
{
	if (c && c->msg) {
		bw_msg_free(c->msg);
		c->msg = NULL;
		atomic_fetch_sub(&cb_active, 1);
	}
}

/* libmilter passes no context when it has none: fail safe, never accept blindly */
static sfsistat
cb_no_context(SMFICTX *ctx, const char *where)
{
	bw_log(LOG_ERR, "%s: no connection context: temporary failure", where);
	smfi_setreply(ctx, "451", "4.3.0", "bulkwarden: internal error, try again later");
	return SMFIS_TEMPFAIL;
}

/* map an engine action and verdict to a reply */
static sfsistat
cb_reply(SMFICTX *ctx, bw_action a, const bw_verdict *v)
{
	switch (a) {
	case BW_ACT_CONTINUE:
		return SMFIS_CONTINUE;
	case BW_ACT_ACCEPT:
		return SMFIS_ACCEPT;
	case BW_ACT_REJECT:
		if (smfi_setreply(ctx, (char *)v->rcode, (char *)v->xcode, (char *)v->text) != MI_SUCCESS)
			bw_log(LOG_WARNING, "smfi_setreply failed for \"%.200s\"", v->text);
		return SMFIS_REJECT;
	case BW_ACT_TEMPFAIL:
		if (smfi_setreply(ctx, (char *)v->rcode, (char *)v->xcode, (char *)v->text) != MI_SUCCESS)
			bw_log(LOG_WARNING, "smfi_setreply failed for \"%.200s\"", v->text);
		return SMFIS_TEMPFAIL;
	case BW_ACT_HOLD:
		if (smfi_quarantine(ctx, (char *)v->text) != MI_SUCCESS) {
			bw_log(LOG_ERR, "smfi_quarantine failed: temporary failure instead");
			smfi_setreply(ctx, "451", "4.7.1", "bulkwarden: cannot hold the message, try later");
			return SMFIS_TEMPFAIL;
		}
		return SMFIS_ACCEPT;
	case BW_ACT_DISCARD:
		return SMFIS_DISCARD;
	}
	return SMFIS_TEMPFAIL;
}

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2, unsigned long f3,
    unsigned long *pf0, unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	const unsigned long want = SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NR_CONN
	    | SMFIP_NR_HDR | SMFIP_SKIP;
	cb_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		bw_log(LOG_ERR, "negotiate: out of memory");
		return SMFIS_REJECT;    /* libmilter: the filter will not be used */
	}
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_QUARANTINE | SMFIF_DELRCPT | SMFIF_SETSYMLIST);
	*pf1 = f1 & want;
	*pf2 = *pf3 = 0;
	c->nr_conn = (*pf1 & SMFIP_NR_CONN) != 0;
	c->nr_hdr = (*pf1 & SMFIP_NR_HDR) != 0;
	c->skip_ok = (*pf1 & SMFIP_SKIP) != 0;
	smfi_setpriv(ctx, c);
	if (*pf0 & SMFIF_SETSYMLIST) {
		smfi_setsymlist(ctx, SMFIM_ENVFROM, "{auth_authen} {i}");
		smfi_setsymlist(ctx, SMFIM_ENVRCPT, "{i}");
		smfi_setsymlist(ctx, SMFIM_EOM, "{i}");
	}
	return SMFIS_CONTINUE;
}

static sfsistat
cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
	cb_conn *c = smfi_getpriv(ctx);

	if (c == NULL) {
		/* an MTA that does not negotiate options */
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			bw_log(LOG_ERR, "connect: out of memory");
			return SMFIS_TEMPFAIL;
		}
		smfi_setpriv(ctx, c);
	}
	snprintf(c->host, sizeof(c->host), "%s", hostname ? hostname : "");
	c->addr[0] = 0;
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, c->addr, sizeof(c->addr));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, c->addr, sizeof(c->addr));
	return c->nr_conn ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
	cb_conn *c = smfi_getpriv(ctx);
	bw_policy *p;
	bw_verdict v;
	bw_action a;

	if (c == NULL)
		return cb_no_context(ctx, "MAIL FROM");
	cb_msg_done(c);
	if (atomic_load(&cb_draining)) {
		smfi_setreply(ctx, "451", "4.3.2", "bulkwarden is restarting, try again later");
		return SMFIS_TEMPFAIL;
	}
	p = cb_policy();
	c->msg = bw_msg_new(p, atomic_load(&cb_store), bw_clock_now());
	bw_policy_unref(p);
	if (c->msg == NULL)
		return cb_no_context(ctx, "MAIL FROM");
	atomic_fetch_add(&cb_active, 1);
	bw_msg_connect(c->msg, c->addr, c->host);
	bw_msg_queueid(c->msg, smfi_getsymval(ctx, "{i}"));
	a = bw_msg_envfrom(c->msg, argv[0], smfi_getsymval(ctx, "{auth_authen}"), &v);
	if (a != BW_ACT_CONTINUE) {
		bw_log(LOG_DEBUG, "%s: decided at MAIL FROM: %s", c->addr, bw_action_name(a));
		cb_msg_done(c);
	}
	return cb_reply(ctx, a, &v);
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	cb_conn *c = smfi_getpriv(ctx);
	bw_verdict v;

	if (c == NULL || c->msg == NULL)
		return cb_no_context(ctx, "RCPT TO");
	bw_msg_queueid(c->msg, smfi_getsymval(ctx, "{i}"));
	return cb_reply(ctx, bw_msg_rcpt(c->msg, argv[0], &v), &v);
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	cb_conn *c = smfi_getpriv(ctx);

	if (c == NULL || c->msg == NULL)
		return c && c->nr_hdr ? SMFIS_NOREPLY : cb_no_context(ctx, "header");
	bw_msg_header(c->msg, name, value);
	return c->nr_hdr ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
cb_eoh(SMFICTX *ctx)
{
	cb_conn *c = smfi_getpriv(ctx);
	bw_verdict v;
	bw_action a;

	if (c == NULL || c->msg == NULL)
		return cb_no_context(ctx, "end of headers");
	a = bw_msg_eoh(c->msg, &v);
	if (a == BW_ACT_ACCEPT) {
		/* decided: log the summary of an unchecked message */
		bw_msg_eom(c->msg, &v);
		bw_log(LOG_INFO, "%s", bw_msg_summary(c->msg));
		cb_msg_done(c);
		return SMFIS_ACCEPT;
	}
	if (a != BW_ACT_CONTINUE)
		cb_msg_done(c);
	return cb_reply(ctx, a, &v);
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *buf, size_t len)
{
	cb_conn *c = smfi_getpriv(ctx);

	if (c == NULL || c->msg == NULL)
		return cb_no_context(ctx, "body");
	if (bw_msg_body(c->msg, (const char *)buf, len) != BW_ACT_CONTINUE && c->skip_ok)
		return SMFIS_SKIP;
	return SMFIS_CONTINUE;
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	cb_conn *c = smfi_getpriv(ctx);
	bw_verdict v;
	bw_action a;
	const bw_addhdr *h;
	sfsistat r;

	if (c == NULL || c->msg == NULL)
		return cb_no_context(ctx, "end of message");
	bw_msg_queueid(c->msg, smfi_getsymval(ctx, "{i}"));
	a = bw_msg_eom(c->msg, &v);
	if (a == BW_ACT_ACCEPT || a == BW_ACT_HOLD) {
		const char *const *d = bw_msg_del_rcpts(c->msg);
		for (; d && *d; d++)
			if (smfi_delrcpt(ctx, (char *)*d) != MI_SUCCESS) {
				/* the policy refused this recipient: never deliver to it anyway */
				bw_log(LOG_ERR, "cannot remove recipient %.200s: temporary failure", *d);
				smfi_setreply(ctx, "451", "4.3.0", "bulkwarden: cannot remove a recipient, try later");
				cb_msg_done(c);
				return SMFIS_TEMPFAIL;
			}
		for (h = bw_msg_add_headers(c->msg); h && h->name; h++)
			if (smfi_addheader(ctx, (char *)h->name, (char *)h->value) != MI_SUCCESS)
				bw_log(LOG_WARNING, "cannot add header %s", h->name);
	}
	bw_log(a == BW_ACT_ACCEPT ? LOG_INFO : LOG_NOTICE, "%s", bw_msg_summary(c->msg));
	r = cb_reply(ctx, a, &v);
	cb_msg_done(c);
	return r;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
	cb_msg_done(smfi_getpriv(ctx));
	return SMFIS_CONTINUE;
}

static sfsistat
cb_close(SMFICTX *ctx)
{
	cb_conn *c = smfi_getpriv(ctx);

	if (c) {
		cb_msg_done(c);
		free(c);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

struct smfiDesc bw_milter_desc = {
	.xxfi_name = "bulkwarden",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_QUARANTINE | SMFIF_DELRCPT | SMFIF_SETSYMLIST,
	.xxfi_connect = cb_connect,
	.xxfi_envfrom = cb_envfrom,
	.xxfi_envrcpt = cb_envrcpt,
	.xxfi_header = cb_header,
	.xxfi_eoh = cb_eoh,
	.xxfi_body = cb_body,
	.xxfi_eom = cb_eom,
	.xxfi_abort = cb_abort,
	.xxfi_close = cb_close,
	.xxfi_negotiate = cb_negotiate,
};
