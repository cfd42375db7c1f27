/*
 * optout.h - acting on an unsubscribe request that carries a signed token.
 *
 * The one place where a token becomes a suppression, whichever way it came:
 * mail to the unsubscribe address (milter, end of message), an RFC 8058
 * one-click POST (the daemon's HTTP listener), or bulkwardenctl. The token
 * names the sender and the recipient (consent.h); a valid one writes the
 * suppression (reason unsubscribe) and marks the consent withdrawn, in one
 * transaction, so the very next message to that recipient is refused.
 *
 * Replay: the same token again changes nothing (BW_OPTOUT_ALREADY). A token
 * issued before the recipient's current consent was granted is stale: it
 * cannot undo a newer opt-in (BW_OPTOUT_STALE).
 */
#ifndef BW_OPTOUT_H
#define BW_OPTOUT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

typedef enum {
	BW_OPTOUT_DONE = 0, /* suppression written now */
	BW_OPTOUT_ALREADY,  /* already suppressed: nothing changed */
	BW_OPTOUT_STALE,    /* issued before a newer consent: nothing changed */
	BW_OPTOUT_INVALID,  /* malformed, forged, unknown key, expired: nothing changed */
	BW_OPTOUT_STORE,    /* the store failed: try again later */
	BW_OPTOUT_NOKEY     /* no TokenKeyFile configured */
} bw_optout_result;

const char *bw_optout_name(bw_optout_result r);

/* source: "mailto", "one-click", "cli" (kept in the suppression record).
 * why gets a sentence for the log ("sender acme rcpt bob@example.com
 * unsubscribed", "token forged", ...), never the token's secret parts.
 * sender/rcpt, when not NULL, get what the token named (empty when invalid). */
bw_optout_result bw_optout_token(const bw_policy *pol, bw_store *st, const char *token,
    const char *source, int64_t now, char *sender, size_t slen, char *rcpt, size_t rlen,
    char *why, size_t whylen);

#endif
