/*
 * sender.c - a sender's record in the store (see sender.h): the state of
 * rate.h with the admin's notes, compare-and-set changes, held mail.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "consent.h"
#include "sender.h"

#define SENDER_CAS_TRIES 8

void
bw_sender_rec_init(bw_sender_rec *r, bw_time_ms now)
{
	memset(r, 0, sizeof(*r));
	bw_sender_init(&r->s, now);
}

/* Length of the longest prefix of s of at most max bytes that ends on a
 * UTF-8 character boundary. */
static size_t
utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

void
bw_sender_rec_note(bw_sender_rec *r, bw_time_ms at, const char *action, const char *text)
{
	bw_sender_note *n;
	size_t len;

	if (r->nnotes == BW_SENDER_NOTES) {
		memmove(&r->notes[0], &r->notes[1], (BW_SENDER_NOTES - 1) * sizeof(r->notes[0]));
		r->nnotes--;
	}
	n = &r->notes[r->nnotes++];
	n->at = at;
	snprintf(n->action, sizeof(n->action), "%s", action);
	text = text ? text : "";
	len = utf8_cut(text, BW_SENDER_NOTE_MAX);
	memcpy(n->note, text, len);
	n->note[len] = 0;
	for (char *p = n->note; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

char *
bw_sender_rec_to_json(const bw_sender_rec *r)
{
	char *inner = bw_sender_to_json(&r->s), *out = NULL, t[BW_TIME_MS_LEN];
	json_t *o = NULL, *arr;
	json_error_t je;

	if (inner == NULL)
		return NULL;
	if ((o = json_loads(inner, 0, &je)) == NULL || !json_is_object(o))
		goto out;
	if (r->rate_reset_at) {
		bw_time_ms_fmt(r->rate_reset_at, t, sizeof(t));
		if (json_object_set_new(o, "rate_reset_at", json_string(t)) != 0)
			goto out;
	}
	if (r->nnotes) {
		if ((arr = json_array()) == NULL || json_object_set_new(o, "notes", arr) != 0)
			goto out;
		for (unsigned i = 0; i < r->nnotes; i++) {
			json_t *n = json_object();
			bw_time_ms_fmt(r->notes[i].at, t, sizeof(t));
			if (n == NULL || json_array_append_new(arr, n) != 0
			    || json_object_set_new(n, "at", json_string(t)) != 0
			    || json_object_set_new(n, "action", json_string(r->notes[i].action)) != 0
			    || json_object_set_new(n, "note", json_string(r->notes[i].note)) != 0)
				goto out;
		}
	}
	out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(o);
	free(inner);
	return out;
}

static bool
note_from_json(json_t *n, bw_sender_note *out, unsigned i, char *err, size_t errlen)
{
	const char *name;
	json_t *v;
	bool seen_at = false;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(n)) {
		snprintf(err, errlen, "notes[%u]: not an object", i);
		return false;
	}
	json_object_foreach(n, name, v) {
		const char *s = json_string_value(v);
		if (s == NULL) {
			snprintf(err, errlen, "notes[%u].%.40s: not a string", i, name);
			return false;
		}
		if (strcmp(name, "at") == 0) {
			if (!bw_time_ms_parse(s, &out->at)) {
				snprintf(err, errlen, "notes[%u].at: not a time: \"%.40s\"", i, s);
				return false;
			}
			seen_at = true;
		} else if (strcmp(name, "action") == 0) {
			if (strlen(s) >= sizeof(out->action) || !*s) {
				snprintf(err, errlen, "notes[%u].action: \"%.40s\"", i, s);
				return false;
			}
			strcpy(out->action, s);
		} else if (strcmp(name, "note") == 0) {
			if (strlen(s) > BW_SENDER_NOTE_MAX) {
				snprintf(err, errlen, "notes[%u].note: longer than %d bytes", i,
				    BW_SENDER_NOTE_MAX);
				return false;
			}
			strcpy(out->note, s);
		} else {
			snprintf(err, errlen, "notes[%u]: unknown field \"%.40s\"", i, name);
			return false;
		}
	}
	if (!seen_at || !out->action[0]) {
		snprintf(err, errlen, "notes[%u]: \"at\" and \"action\" are required", i);
		return false;
	}
	return true;
}

/*
 * The last record text a thread decoded and what it gave. A sender's
 * record is read at every MAIL FROM of its mail and seldom changes: the
 * same bytes are not decoded again. Keyed by the whole text, so a changed
 * record is always decoded afresh.
 */
typedef struct sender_memo {
	char *json;
	size_t len, cap;
	bw_sender_rec rec;
} sender_memo;

static pthread_key_t memo_key;
static pthread_once_t memo_once = PTHREAD_ONCE_INIT;
static bool memo_ready;

static void
memo_free(void *p)
{
	sender_memo *m = p;

	if (m) {
		free(m->json);
		free(m);
	}
}

static void
memo_init(void)
{
	memo_ready = pthread_key_create(&memo_key, memo_free) == 0;
}

/* this thread's memo, NULL when there can be none (no memory) */
static sender_memo *
memo_get(void)
{
	sender_memo *m;

	pthread_once(&memo_once, memo_init);
	if (!memo_ready)
		return NULL;
	if ((m = pthread_getspecific(memo_key)) == NULL && (m = calloc(1, sizeof(*m))) != NULL &&
	    pthread_setspecific(memo_key, m) != 0) {
		free(m);
		m = NULL;
	}
	return m;
}

static bool sender_rec_decode(const char *json, bw_sender_rec *r, char *err, size_t errlen);

bool
bw_sender_rec_from_json(const char *json, bw_sender_rec *r, char *err, size_t errlen)
{
	sender_memo *m = json ? memo_get() : NULL;
	size_t len = json ? strlen(json) : 0;

	if (m && m->json && m->len == len && memcmp(m->json, json, len) == 0) {
		*r = m->rec;
		return true;
	}
	if (!sender_rec_decode(json, r, err, errlen))
		return false;
	if (m) {
		if (len + 1 > m->cap) {
			char *nj = realloc(m->json, len + 1);
			if (nj == NULL) {
				m->len = 0;   /* the old text no longer stands for rec */
				return true;
			}
			m->json = nj;
			m->cap = len + 1;
		}
		memcpy(m->json, json, len + 1);
		m->len = len;
		m->rec = *r;
	}
	return true;
}

static bool
sender_rec_decode(const char *json, bw_sender_rec *r, char *err, size_t errlen)
{
	json_t *o, *v;
	bool ok = false;

	memset(r, 0, sizeof(*r));
	if ((o = bw_store_json_object(json, err, errlen)) == NULL)
		return false;
	if ((v = json_object_get(o, "rate_reset_at")) != NULL) {
		if (!json_is_string(v) || !bw_time_ms_parse(json_string_value(v), &r->rate_reset_at)) {
			snprintf(err, errlen, "rate_reset_at: not a time");
			goto out;
		}
		json_object_del(o, "rate_reset_at");
	}
	if ((v = json_object_get(o, "notes")) != NULL) {
		size_t i;
		json_t *n;
		if (!json_is_array(v) || json_array_size(v) > BW_SENDER_NOTES) {
			snprintf(err, errlen, "notes: not an array of at most %d notes", BW_SENDER_NOTES);
			goto out;
		}
		json_array_foreach(v, i, n) {
			if (!note_from_json(n, &r->notes[i], (unsigned)i, err, errlen))
				goto out;
			r->nnotes++;
		}
		json_object_del(o, "notes");
	}
	ok = bw_sender_from_jobj(o, NULL, &r->s, err, errlen);
out:
	json_decref(o);
	if (!ok)
		memset(r, 0, sizeof(*r));
	return ok;
}

/* The record and its text as stored (*raw, malloc'd; NULL when absent). */
static bw_store_err
sender_read(bw_store *st, const char *sender, bw_time_ms now, bw_sender_rec *r, char **raw,
    char *err, size_t errlen)
{
	bw_store_err e;

	*raw = NULL;
	if (!bw_sender_id_ok(sender)) {
		snprintf(err, errlen, "\"%.100s\" is not a sender id", sender);
		return BW_STORE_INVALID;
	}
	e = bw_store_get(st, BW_TBL_SENDER, sender, raw);
	if (e == BW_STORE_NOTFOUND) {
		bw_sender_rec_init(r, now);
		return e;
	}
	if (e != BW_STORE_OK) {
		snprintf(err, errlen, "%s", bw_store_last_error(st));
		return e;
	}
	char why[200];
	if (!bw_sender_rec_from_json(*raw, r, why, sizeof(why))) {
		snprintf(err, errlen, "sender record \"%.100s\": %s", sender, why);
		free(*raw);
		*raw = NULL;
		return BW_STORE_CORRUPT;
	}
	return BW_STORE_OK;
}

bw_store_err
bw_sender_load(bw_store *st, const char *sender, bw_time_ms now, bw_sender_rec *r, char *err,
    size_t errlen)
{
	char *raw;
	bw_store_err e = sender_read(st, sender, now, r, &raw, err, errlen);

	free(raw);
	return e;
}

bw_store_err
bw_sender_change(bw_store *st, const char *sender, bw_time_ms now, bw_sender_fn fn, void *ud,
    bw_sender_rec *out, char *err, size_t errlen)
{
	bw_sender_rec *r = malloc(sizeof(*r));
	bw_store_err e = BW_STORE_CONFLICT;

	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return BW_STORE_NOMEM;
	}
	for (int tries = 0; tries < SENDER_CAS_TRIES; tries++) {
		char *raw, *js;

		e = sender_read(st, sender, now, r, &raw, err, errlen);
		if (e != BW_STORE_OK && e != BW_STORE_NOTFOUND)
			break;
		if (!fn(r, ud)) {
			free(raw);
			e = BW_STORE_OK;
			break;
		}
		if ((js = bw_sender_rec_to_json(r)) == NULL) {
			free(raw);
			snprintf(err, errlen, "sender \"%.100s\": the record cannot be written", sender);
			e = BW_STORE_INVALID;
			break;
		}
		e = bw_store_cas(st, BW_TBL_SENDER, sender, raw, js);
		free(raw);
		free(js);
		if (e != BW_STORE_CONFLICT) {
			if (e != BW_STORE_OK)
				snprintf(err, errlen, "%s", bw_store_last_error(st));
			break;
		}
		snprintf(err, errlen, "sender \"%.100s\": the record kept changing", sender);
	}
	if (out != NULL && (e == BW_STORE_OK))
		*out = *r;
	free(r);
	return e;
}

/* ---------------------------------------------------------------- held mail */

bool
bw_qid_ok(const char *qid)
{
	size_t n = 0;

	for (; qid[n]; n++)
		if (!isalnum((unsigned char)qid[n]))
			return false;
	return n > 0 && n <= BW_QID_MAX;
}

static bool
held_key(const char *sender, const char *qid, char *key, size_t len)
{
	if (!bw_sender_id_ok(sender) || !bw_qid_ok(qid))
		return false;
	return (size_t)snprintf(key, len, "%s %s", sender, qid) < len;
}

bw_store_err
bw_sender_held_add(bw_store *st, const char *sender, const char *qid, bw_time_ms now)
{
	char key[BW_SENDER_MAX + BW_QID_MAX + 2], val[64], t[BW_TIME_MS_LEN];

	if (!held_key(sender, qid, key, sizeof(key)))
		return BW_STORE_INVALID;
	bw_time_ms_fmt(now, t, sizeof(t));
	snprintf(val, sizeof(val), "{\"at\":\"%s\"}", t);
	return bw_store_put(st, BW_TBL_SENDER, key, val);
}

bw_store_err
bw_sender_held_del(bw_store *st, const char *sender, const char *qid)
{
	char key[BW_SENDER_MAX + BW_QID_MAX + 2];

	if (!held_key(sender, qid, key, sizeof(key)))
		return BW_STORE_INVALID;
	return bw_store_del(st, BW_TBL_SENDER, key);
}

struct held_walk {
	size_t plen;
	int (*fn)(void *ud, const char *qid, bw_time_ms at);
	void *ud;
};

static int
held_one(void *ud, const char *key, const char *val)
{
	struct held_walk *w = ud;
	bw_time_ms at = 0;
	const char *p = strstr(val, "\"at\":\"");
	char t[BW_TIME_MS_LEN + 1];

	if (p != NULL) {
		size_t n = strcspn(p + 6, "\"");
		if (n < sizeof(t)) {
			memcpy(t, p + 6, n);
			t[n] = 0;
			if (!bw_time_ms_parse(t, &at))
				at = 0;
		}
	}
	return w->fn(w->ud, key + w->plen, at);
}

bw_store_err
bw_sender_held_scan(bw_store *st, const char *sender,
    int (*fn)(void *ud, const char *qid, bw_time_ms at), void *ud)
{
	char prefix[BW_SENDER_MAX + 2];
	struct held_walk w = { 0, fn, ud };

	if (!bw_sender_id_ok(sender))
		return BW_STORE_INVALID;
	snprintf(prefix, sizeof(prefix), "%s ", sender);
	w.plen = strlen(prefix);
	return bw_store_scan(st, BW_TBL_SENDER, prefix, held_one, &w);
}
