/*
 * engine.h - the decision engine: a message's facts in, a verdict out.
 *
 * The milter glue (and bulkwardenctl scan) turns what it learns into calls
 * here, in SMTP order, and maps the verdict it gets back to a reply. No
 * libmilter type appears in this interface.
 *
 *   bw_msg_new -> bw_msg_connect -> bw_msg_envfrom -> bw_msg_rcpt* ->
 *   bw_msg_header* -> bw_msg_eoh -> bw_msg_body* -> bw_msg_eom -> bw_msg_free
 *
 * A step returns BW_ACT_CONTINUE while no decision is made. Any other action
 * is final for the message (or, from bw_msg_rcpt, for that recipient).
 */
#ifndef BW_ENGINE_H
#define BW_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "store.h"

typedef enum {
	BW_ACT_CONTINUE = 0,
	BW_ACT_ACCEPT,    /* accept, nothing more to look at */
	BW_ACT_REJECT,    /* 5xx */
	BW_ACT_TEMPFAIL,  /* 4xx: the MTA keeps the mail */
	BW_ACT_HOLD,      /* accept into the MTA's hold queue */
	BW_ACT_DISCARD
} bw_action;

const char *bw_action_name(bw_action a);

typedef struct bw_verdict {
	bw_action action;
	char rcode[4];        /* "550" */
	char xcode[8];        /* "5.7.1" */
	char text[512];       /* the reply text, no '%' in it */
	const char *rule;     /* "unsubscribe", "store", "limit", ... or NULL */
	bool would;           /* monitor mode: this is what enforce would do */
} bw_verdict;

typedef struct bw_msg bw_msg;

/* A header the milter should add at end of message (up to seven). */
typedef struct bw_addhdr {
	const char *name;
	const char *value;
} bw_addhdr;

bw_msg *bw_msg_new(bw_policy *pol, bw_store *st, time_t now);
/* Another store handle for the rest of the message (NULL: the store is
 * down); tests use it to lose the store between MAIL FROM and RCPT. */
void bw_msg_set_store(bw_msg *m, bw_store *st);
void bw_msg_free(bw_msg *m);

/* Client address as text ("192.0.2.1", "2001:db8::1"); NULL or "" for a
 * local (unix socket or command line) submission. */
void bw_msg_connect(bw_msg *m, const char *addr, const char *hostname);
/* MAIL FROM (angle brackets optional), SASL login or NULL, queue id or NULL */
bw_action bw_msg_envfrom(bw_msg *m, const char *from, const char *auth_authen, bw_verdict *v);
bw_action bw_msg_rcpt(bw_msg *m, const char *rcpt, bw_verdict *v);
void bw_msg_queueid(bw_msg *m, const char *qid);
void bw_msg_header(bw_msg *m, const char *name, const char *value);
bw_action bw_msg_eoh(bw_msg *m, bw_verdict *v);
/* BW_ACT_CONTINUE while the body still matters; BW_ACT_ACCEPT when no more
 * body can change the verdict (the milter may answer SMFIS_SKIP). */
bw_action bw_msg_body(bw_msg *m, const char *buf, size_t len);
bw_action bw_msg_eom(bw_msg *m, bw_verdict *v);

/* After eom: headers to add (NULL-terminated array owned by m). */
const bw_addhdr *bw_msg_add_headers(bw_msg *m);
/* After eom: recipients (as given to bw_msg_rcpt) the milter must remove,
 * NULL-terminated, or NULL. Consent missing at end of message (ConsentAtEnd
 * remove) and consumed unsubscribe requests. */
const char *const *bw_msg_del_rcpts(bw_msg *m);
/* After eom: the one summary line for the log. */
const char *bw_msg_summary(bw_msg *m);
/* After eom: the unsubscribe findings as one JSON object (for scan). */
const char *bw_msg_report_json(bw_msg *m, const char *file);
const char *bw_msg_report_text(bw_msg *m, const char *file);
/* Whether the message was classified bulk / outbound. */
bool bw_msg_is_bulk(const bw_msg *m);
bool bw_msg_is_outbound(const bw_msg *m);

/* Treat every message as bulk and outbound (bulkwardenctl scan --bulk). */
void bw_msg_force_bulk(bw_msg *m, bool bulk);
/* A whole message file: headers then body, LF or CRLF line ends. */
bw_action bw_msg_feed_file(bw_msg *m, const char *data, size_t len, size_t chunk, bw_verdict *v);

/* ---- statistics: counted in memory, flushed to the store by the daemon ---- */
void bw_stats_count(const char *name);
/* Adds what was counted since the last flush to the store; keeps it on failure. */
bw_store_err bw_stats_flush(bw_store *st);

#endif
