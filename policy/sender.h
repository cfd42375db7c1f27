/*
 * sender.h - a sender's record in the store: its state (rate.h), the
 * admin's notes, when its rate counters were last reset, and the queue ids
 * of the mail held for it while suspended.
 *
 * Table BW_TBL_SENDER. Key "SENDER" (a sender id, see consent.h): the
 * record, one JSON object: the fields of bw_sender_to_json() plus
 * "rate_reset_at" (RFC 3339, optional) and "notes" (an array, optional, of
 * {"at": TIME, "action": WORD, "note": TEXT}, oldest first, the last
 * BW_SENDER_NOTES kept). Key "SENDER QUEUEID": one message held for it,
 * {"at": TIME}. A sender without a record is active.
 *
 * Changes go through bw_sender_change(): read, change, compare-and-set,
 * again from the read when another writer came first, so the daemon and
 * the admin tool never undo each other. Nothing here logs.
 */
#ifndef BW_SENDER_H
#define BW_SENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "rate.h"
#include "store.h"

#define BW_SENDER_NOTES    16   /* notes kept in a record */
#define BW_SENDER_NOTE_MAX 200  /* bytes of one note's text */
#define BW_QID_MAX         64   /* bytes of a queue id */

typedef struct bw_sender_note {
	bw_time_ms at;
	char action[16];            /* "suspend", "resume", "resolve", "ack-incident", "grace", "state" */
	char note[BW_SENDER_NOTE_MAX + 1];
} bw_sender_note;

typedef struct bw_sender_rec {
	bw_sender s;
	bw_time_ms rate_reset_at;   /* 0: never */
	unsigned nnotes;
	bw_sender_note notes[BW_SENDER_NOTES];
} bw_sender_rec;

/* Active since now, no notes. */
void bw_sender_rec_init(bw_sender_rec *r, bw_time_ms now);
/* Appends a note (the oldest goes when full); the text is cut to
 * BW_SENDER_NOTE_MAX bytes at a character boundary, control characters
 * become spaces. */
void bw_sender_rec_note(bw_sender_rec *r, bw_time_ms at, const char *action, const char *text);

/* JSON text of the record (malloc'd), or NULL. */
char *bw_sender_rec_to_json(const bw_sender_rec *r);
/* Strict, like bw_sender_from_json(); false with a sentence in err. */
bool bw_sender_rec_from_json(const char *json, bw_sender_rec *r, char *err, size_t errlen);

/*
 * The record of sender: BW_STORE_OK and *r, or BW_STORE_NOTFOUND and *r
 * an active record since now; BW_STORE_CORRUPT (sentence in err) when the
 * stored record does not parse; another store error.
 */
bw_store_err bw_sender_load(bw_store *st, const char *sender, bw_time_ms now, bw_sender_rec *r,
    char *err, size_t errlen);

/*
 * Reads the record (or a new active one), calls fn, and writes what fn
 * left when fn returns true, by compare-and-set, retrying from the read
 * when the record changed meanwhile (a few times, then BW_STORE_CONFLICT).
 * fn returning false writes nothing (BW_STORE_OK). *out, when not NULL,
 * gets the record as written (or as read, when fn declined).
 */
typedef bool (*bw_sender_fn)(bw_sender_rec *r, void *ud);
bw_store_err bw_sender_change(bw_store *st, const char *sender, bw_time_ms now, bw_sender_fn fn,
    void *ud, bw_sender_rec *out, char *err, size_t errlen);

/* ---- held mail ---- */
/* Records that the message qid of sender is held (idempotent). */
bw_store_err bw_sender_held_add(bw_store *st, const char *sender, const char *qid, bw_time_ms now);
/* The queue ids held for sender, in byte order; fn returns non-zero to stop. */
bw_store_err bw_sender_held_scan(bw_store *st, const char *sender,
    int (*fn)(void *ud, const char *qid, bw_time_ms at), void *ud);
/* Forgets one (after it was released). */
bw_store_err bw_sender_held_del(bw_store *st, const char *sender, const char *qid);
/* A queue id as Postfix and sendmail write them: 1..BW_QID_MAX of
 * letters and digits. */
bool bw_qid_ok(const char *qid);

#endif
