/*
 * feedback.h - what complaints do to a sender (DESIGN.md 4, "Complaints
 * and rates"): the delivered mail they are measured against, the complaint
 * window read back from the store, and applying one complaint.
 *
 * Delivered recipients are counted per sender and hour in memory by the
 * daemon's threads (bw_feedback_delivered) and added to the store's
 * counters "delivered:SENDER:HOUR" with the message statistics
 * (bw_feedback_flush); complaints go straight to "complaints:SENDER:HOUR"
 * as they are applied. HOUR is the hour number since the epoch. The
 * complaint table (BW_TBL_COMPLAINT) keeps one record per counted
 * complaint, key "SENDER DEDUPE-KEY", value {"at","rcpt","source","type"}:
 * the same report twice is counted once, and the distinct complaining
 * recipients of the window are read from it.
 */
#ifndef BW_FEEDBACK_H
#define BW_FEEDBACK_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "consent.h"
#include "rate.h"
#include "store.h"

/* Counters of hours this far behind are removed: as a flush writes hour
 * H of a sender, H - BW_FEEDBACK_KEEP_HOURS of it goes (both kinds), and
 * a window read removes every older one it comes across. The longest
 * ComplaintWindow and a day of clock skew between the hosts of a fleet. */
#define BW_FEEDBACK_KEEP_HOURS (BW_WINDOW_HOURS_MAX + 24)

/* Count n recipients delivered for sender at now (in memory). */
void bw_feedback_delivered(const char *sender, bw_time_ms now, unsigned n);
/* Add what was counted since the last flush to the store; kept on failure. */
bw_store_err bw_feedback_flush(bw_store *st);

/* The sender's complaint window at now over hours: totals and the number
 * of distinct recipients who complained in it. */
bw_store_err bw_feedback_window(bw_store *st, const char *sender, bw_time_ms now, unsigned hours,
    bw_window_totals *t, unsigned *distinct);

typedef enum {
	BW_FB_APPLIED = 0,   /* counted: suppression written, window and state updated */
	BW_FB_DUPLICATE,     /* this complaint was counted before: nothing changed */
} bw_fb_outcome;

typedef struct bw_fb_result {
	bw_fb_outcome outcome;
	bw_sender_state before, after;  /* the sender's state */
	bw_window_totals totals;        /* the window after the complaint */
	unsigned distinct;
	char reason[BW_SENDER_REASON_MAX];  /* why the state changed, if it did */
} bw_fb_result;

/*
 * One complaint about mail of sender to rcpt (normalised), counted once
 * under dedupe (a key from bw_arf_dedupe_key, or any stable string without
 * spaces): suppresses rcpt for sender (reason complaint, source as given),
 * adds it to the window, opens an incident and steps the sender's state
 * with the window (p->sender). The dedupe record is claimed first (by
 * compare-and-set: of two copies arriving at once one counts); when a
 * later step fails it is taken back, so that a retry counts the complaint.
 */
bw_store_err bw_feedback_apply(const bw_policy *p, bw_store *st, const char *sender, const char *rcpt,
    const char *dedupe, const char *source, const char *type, bw_time_ms now, bw_fb_result *r,
    char *err, size_t errlen);

/* ---- a complaint report (ARF) as received ---- */
typedef enum {
	BW_FBR_APPLIED = 0,  /* counted (r.outcome says applied) */
	BW_FBR_DUPLICATE,    /* counted before */
	BW_FBR_UNAUTH,       /* not signed by a trusted reporter: not counted */
	BW_FBR_IGNORED,      /* not an abuse report, or no sender or recipient in it */
	BW_FBR_MALFORMED     /* not a feedback report */
} bw_fbr_status;
const char *bw_fbr_status_name(bw_fbr_status s);

typedef struct bw_fb_report {
	bw_fbr_status status;
	char sender[BW_SENDER_MAX + 1];
	char rcpt[BW_ADDR_MAX + 1];
	bw_fb_result r;
	char why[300];             /* for the log: what was found */
} bw_fb_report;

/*
 * Reads msg (len bytes, the report as received) as an ARF report, checks
 * its DKIM signature against TrustedReporters (p->arf), and counts an
 * abuse report for the sender and recipient the original's trace token
 * names (it must be one bulkwarden made for that Message-ID: else the
 * report is ignored), or, without a token, for the sender SenderIdentity
 * gives its Original-Mail-From; the recipient, when the token names none,
 * is its first Original-Rcpt-To. An unauthenticated report adds to the
 * counter "complaints:unauthenticated" and nothing else. A store error is
 * returned (nothing counted twice on a retry); else BW_STORE_OK and out.
 */
bw_store_err bw_feedback_report(const bw_policy *p, bw_store *st, const char *msg, size_t len,
    bw_time_ms now, bw_fb_report *out);

/*
 * A sender's state changed (a complaint, a deadline): logged at warning
 * ("sender S: OLD -> NEW: REASON"), and, when NotifyCommand is set, that
 * command is started without a shell with SENDER OLD NEW REASON appended;
 * nobody waits for it (a thread reaps it), so a slow command slows no mail.
 */
void bw_feedback_notify(const bw_policy *p, const char *sender, bw_sender_state from,
    bw_sender_state to, const char *reason);

/* Percent text ("0.1%", "0.25 %", "1") to parts per million; false when
 * malformed or over 100 %. */
bool bw_parse_percent_ppm(const char *s, uint32_t *ppm);

#endif
