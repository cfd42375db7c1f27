/*
 * optout.c - a signed unsubscribe token becomes a suppression.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "optout.h"

const char *
bw_optout_name(bw_optout_result r)
{
	static const char *names[] = { "done", "already", "stale", "invalid", "store-error", "no-key" };
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

/* The (sender, rcpt) records that decide whether the token still applies. */
static bw_store_err
optout_lookup(bw_store *st, const char *sender, const char *rcpt, bw_suppression *sup,
    bool *have_sup, bw_consent *con, bool *have_con)
{
	char key[BW_STORE_KEY_MAX + 1];
	bw_store_key k[2];
	char *v[2] = { NULL, NULL };
	bw_store_err e;

	*have_sup = *have_con = false;
	if (!bw_consent_key(sender, rcpt, key, sizeof(key)))
		return BW_STORE_INVALID;
	k[0].tbl = BW_TBL_SUPPRESS, k[0].key = key;
	k[1].tbl = BW_TBL_CONSENT, k[1].key = key;
	if ((e = bw_store_get_many(st, k, 2, v)) != BW_STORE_OK)
		return e;
	if (v[0])
		*have_sup = bw_suppression_from_json(key, v[0], sup, NULL, 0);
	if (v[1])
		*have_con = bw_consent_from_json(key, v[1], con, NULL, 0);
	free(v[0]);
	free(v[1]);
	return BW_STORE_OK;
}

bw_optout_result
bw_optout_token(const bw_policy *pol, bw_store *st, const char *token, const char *source,
    int64_t now, char *sender, size_t slen, char *rcpt, size_t rlen, char *why, size_t whylen)
{
	char s[BW_SENDER_MAX + 1], r[BW_ADDR_MAX + 1];
	int64_t issued = 0;
	bw_token_status ts;
	bw_suppression sup, nsup;
	bw_consent con;
	bool have_sup, have_con;
	bw_store_err e;
	bw_optout_result res;

	s[0] = r[0] = 0;
	if (sender && slen)
		sender[0] = 0;
	if (rcpt && rlen)
		rcpt[0] = 0;
	if (pol->token_keys == NULL) {
		snprintf(why, whylen, "no TokenKeyFile configured");
		return BW_OPTOUT_NOKEY;
	}
	ts = bw_token_verify(pol->token_keys, token, now, (int64_t)pol->conf.token_max_age,
	    s, sizeof(s), r, sizeof(r), &issued);
	if (ts != BW_TOKEN_OK) {
		snprintf(why, whylen, "token %s", bw_token_status_name(ts));
		return BW_OPTOUT_INVALID;
	}
	if (sender && slen)
		snprintf(sender, slen, "%s", s);
	if (rcpt && rlen)
		snprintf(rcpt, rlen, "%s", r);
	if (st == NULL) {
		snprintf(why, whylen, "sender %s rcpt %s: the store is not open", s, r);
		return BW_OPTOUT_STORE;
	}
	memset(&sup, 0, sizeof(sup));
	memset(&con, 0, sizeof(con));
	e = optout_lookup(st, s, r, &sup, &have_sup, &con, &have_con);
	if (e != BW_STORE_OK) {
		snprintf(why, whylen, "sender %s rcpt %s: %s", s, r, bw_store_last_error(st));
		return BW_OPTOUT_STORE;
	}
	if (have_sup && !(have_con && con.granted_at > sup.at)) {
		char t[32];
		bw_time_fmt(sup.at, t, sizeof(t));
		snprintf(why, whylen, "sender %s rcpt %s: already suppressed (%s) since %s", s, r,
		    bw_supp_reason_name(sup.reason), t);
		res = BW_OPTOUT_ALREADY;
	} else if (have_con && con.granted_at > issued) {
		char t[32];
		bw_time_fmt(con.granted_at, t, sizeof(t));
		snprintf(why, whylen, "sender %s rcpt %s: token older than the consent of %s", s, r, t);
		res = BW_OPTOUT_STALE;
	} else {
		memset(&nsup, 0, sizeof(nsup));
		snprintf(nsup.sender, sizeof(nsup.sender), "%s", s);
		snprintf(nsup.rcpt, sizeof(nsup.rcpt), "%s", r);
		nsup.reason = BW_SR_UNSUBSCRIBE;
		nsup.at = now;
		nsup.source = (char *)(uintptr_t)source;
		if ((e = bw_suppress(st, &nsup)) != BW_STORE_OK) {
			snprintf(why, whylen, "sender %s rcpt %s: %s", s, r, bw_store_last_error(st));
			res = BW_OPTOUT_STORE;
		} else {
			snprintf(why, whylen, "sender %s rcpt %s: unsubscribed", s, r);
			res = BW_OPTOUT_DONE;
		}
	}
	if (have_sup)
		bw_suppression_clear(&sup);
	if (have_con)
		bw_consent_clear(&con);
	return res;
}
