/*
 * ctl_sender.c - bulkwardenctl's sender and rate commands: list and show
 * senders' states, suspend, resume, put in grace, acknowledge an incident,
 * resolve (and release the mail held meanwhile), show and reset rates,
 * add, list and import complaints.
 * Every change is a compare-and-set of the sender's record with a note
 * kept in its history (sender.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <dirent.h>
#include <sys/stat.h>

#include "clock.h"
#include "complaint.h"
#include "config.h"
#include "consent.h"
#include "ctl.h"
#include "feedback.h"
#include "rules.h"
#include "sender.h"
#include "store.h"

static bw_time_ms
now_ms(void)
{
	return bw_clock_now_ms();
}

static const char *
tfmt(bw_time_ms t, char buf[BW_TIME_MS_LEN])
{
	if (t == 0)
		return "-";
	bw_time_ms_fmt(t, buf, BW_TIME_MS_LEN);
	return buf;
}

/* The policy of conf and its store, writable; false (said why) when either fails. */
static bool
ctl_open(const char *conf, bw_policy **p, bw_store **st)
{
	if ((*p = ctl_policy(conf)) == NULL)
		return false;
	if ((*st = ctl_store(*p, 0)) == NULL) {
		bw_policy_unref(*p);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- held queue ids */

typedef struct held_list {
	char (*qid)[BW_QID_MAX + 1];
	bw_time_ms *at;
	size_t n, cap;
} held_list;

static int
held_collect(void *ud, const char *qid, bw_time_ms at)
{
	held_list *h = ud;

	if (h->n == h->cap) {
		size_t nc = h->cap ? h->cap * 2 : 16;
		void *q = realloc(h->qid, nc * sizeof(*h->qid)), *a;
		if (q == NULL)
			return 1;
		h->qid = q;
		if ((a = realloc(h->at, nc * sizeof(*h->at))) == NULL)
			return 1;
		h->at = a;
		h->cap = nc;
	}
	snprintf(h->qid[h->n], sizeof(h->qid[0]), "%s", qid);
	h->at[h->n++] = at;
	return 0;
}

static void
held_free(held_list *h)
{
	free(h->qid);
	free(h->at);
}

/* ---------------------------------------------------------------- list */

typedef struct list_ctx {
	bool json;
	char cur[BW_SENDER_MAX + 1];  /* the sender whose held ids are being counted */
	bw_sender_rec rec;
	bool have;
	unsigned held;
	unsigned bad;
} list_ctx;

static void
list_flush(list_ctx *c)
{
	char t[BW_TIME_MS_LEN];

	if (!c->have)
		return;
	if (c->json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s}", "sender", c->cur,
		    "state", bw_sender_state_name(c->rec.s.state), "since", tfmt(c->rec.s.since, t),
		    "held", (json_int_t)c->held, "reason", c->rec.s.reason);
		char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(o);
	} else
		printf("%-32s %-10s %-25s held=%-5u %s\n", c->cur, bw_sender_state_name(c->rec.s.state),
		    tfmt(c->rec.s.since, t), c->held, c->rec.s.reason);
	c->have = false;
	c->held = 0;
}

static int
list_one(void *ud, const char *key, const char *val)
{
	list_ctx *c = ud;
	const char *sp = strchr(key, ' ');
	char err[200];

	if (sp != NULL) {
		/* a held message of the sender before it */
		if (c->have && (size_t)(sp - key) == strlen(c->cur) && memcmp(key, c->cur, (size_t)(sp - key)) == 0)
			c->held++;
		return 0;
	}
	list_flush(c);
	snprintf(c->cur, sizeof(c->cur), "%s", key);
	if (!bw_sender_rec_from_json(val, &c->rec, err, sizeof(err))) {
		fprintf(stderr, "bulkwardenctl: sender %s: damaged record: %s\n", key, err);
		c->bad++;
		return 0;
	}
	c->have = true;
	return 0;
}

static int
sender_list(bw_store *st, bool json)
{
	list_ctx c;
	bw_store_err e;

	memset(&c, 0, sizeof(c));
	c.json = json;
	if (!json)
		printf("%-32s %-10s %-25s %-10s %s\n", "sender", "state", "since", "held", "reason");
	e = bw_store_scan(st, BW_TBL_SENDER, "", list_one, &c);
	list_flush(&c);
	if (e != BW_STORE_OK) {
		fprintf(stderr, "bulkwardenctl: sender list: %s\n", bw_store_last_error(st));
		return 1;
	}
	return c.bad ? 1 : 0;
}

/* ---------------------------------------------------------------- show */

static int
sender_show(bw_store *st, const char *sender, bool json)
{
	bw_sender_rec r;
	held_list h = { 0 };
	char err[300], t[BW_TIME_MS_LEN];
	bw_store_err e = bw_sender_load(st, sender, now_ms(), &r, err, sizeof(err));

	if (e != BW_STORE_OK && e != BW_STORE_NOTFOUND) {
		fprintf(stderr, "bulkwardenctl: sender %s: %s\n", sender, err);
		return 1;
	}
	if (bw_sender_held_scan(st, sender, held_collect, &h) != BW_STORE_OK) {
		fprintf(stderr, "bulkwardenctl: sender %s: %s\n", sender, bw_store_last_error(st));
		held_free(&h);
		return 1;
	}
	if (json) {
		char *js = bw_sender_rec_to_json(&r);
		json_error_t je;
		json_t *o = js ? json_loads(js, 0, &je) : NULL, *a = json_array();
		for (size_t i = 0; o && a && i < h.n; i++)
			json_array_append_new(a, json_pack("{s:s, s:s}", "queue_id", h.qid[i], "at",
			    tfmt(h.at[i], t)));
		if (o && a) {
			json_object_set_new(o, "sender", json_string(sender));
			json_object_set_new(o, "recorded", json_boolean(e == BW_STORE_OK));
			json_object_set(o, "held", a);
			char *out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
			if (out)
				printf("%s\n", out);
			free(out);
		}
		json_decref(a);
		json_decref(o);
		free(js);
		held_free(&h);
		return 0;
	}
	printf("sender:      %s%s\n", sender, e == BW_STORE_NOTFOUND ? " (no record: active)" : "");
	printf("state:       %s since %s\n", bw_sender_state_name(r.s.state),
	    e == BW_STORE_NOTFOUND ? "-" : tfmt(r.s.since, t));
	if (r.s.reason[0])
		printf("reason:      %s\n", r.s.reason);
	if (r.s.state == BW_SS_GRACE)
		printf("grace until: %s\n", tfmt(r.s.grace_until, t));
	if (r.s.admin_flag)
		printf("admin flag:  set (grace at the next message)\n");
	if (r.s.incident_open) {
		printf("incident:    open since %s", tfmt(r.s.incident_opened_at, t));
		if (r.s.incident_acked_at)
			printf(", acknowledged %s", tfmt(r.s.incident_acked_at, t));
		printf("\n");
	}
	if (r.rate_reset_at)
		printf("rate reset:  %s\n", tfmt(r.rate_reset_at, t));
	printf("held:        %zu message%s\n", h.n, h.n == 1 ? "" : "s");
	for (size_t i = 0; i < h.n; i++)
		printf("  %-20s held %s\n", h.qid[i], tfmt(h.at[i], t));
	if (r.nnotes)
		printf("history:\n");
	for (unsigned i = 0; i < r.nnotes; i++)
		printf("  %s %-12s %s\n", tfmt(r.notes[i].at, t), r.notes[i].action, r.notes[i].note);
	held_free(&h);
	return 0;
}

/* ---------------------------------------------------------------- changes */

typedef enum { ACT_SUSPEND, ACT_RESUME, ACT_RESOLVE, ACT_ACK, ACT_GRACE, ACT_RATE_RESET } sender_act;

static const char *const act_word[] = { "suspend", "resume", "resolve", "ack-incident", "grace",
	"rate-reset" };

typedef struct change_ctx {
	sender_act act;
	const bw_sender_policy *pol;
	bw_time_ms now;
	const char *note;
	bool changed;
	const char *why;   /* why nothing changed */
} change_ctx;

static bool
change_fn(bw_sender_rec *r, void *ud)
{
	change_ctx *c = ud;
	bool ch = false;

	c->why = NULL;
	switch (c->act) {
	case ACT_SUSPEND:
		ch = bw_sender_suspend(&r->s, c->now);
		c->why = "already suspended";
		break;
	case ACT_RESUME:
	case ACT_RESOLVE:
		ch = bw_sender_resolve(&r->s, c->now);
		c->why = "already active, with no incident";
		break;
	case ACT_ACK:
		ch = bw_sender_ack_incident(&r->s, c->now);
		c->why = "no open incident to acknowledge";
		break;
	case ACT_GRACE:
		ch = bw_sender_flag_grace(&r->s, c->now);
		if (ch)
			bw_sender_step(c->pol, &r->s, NULL, 0, c->now);  /* at once */
		c->why = r->s.state == BW_SS_SUSPENDED ? "suspended already" : "in grace already";
		break;
	case ACT_RATE_RESET:
		r->rate_reset_at = c->now;
		ch = true;
		break;
	}
	c->changed = ch;
	if (!ch)
		return false;
	bw_sender_rec_note(r, c->now, act_word[c->act], c->note);
	return true;
}

/* Runs HoldReleaseCommand with the queue ids (no shell); true when it
 * exits 0. */
static bool
release_run(const char *command, const held_list *h)
{
	char *cmd = strdup(command), *save = NULL, *w;
	char **argv = calloc(h->n + 64, sizeof(*argv));
	size_t argc = 0;
	int status;
	pid_t pid;

	if (cmd == NULL || argv == NULL) {
		free(cmd);
		free(argv);
		return false;
	}
	for (w = strtok_r(cmd, " \t", &save); w && argc < 60; w = strtok_r(NULL, " \t", &save))
		argv[argc++] = w;
	if (argc == 0) {
		fprintf(stderr, "bulkwardenctl: HoldReleaseCommand is empty\n");
		free(cmd);
		free(argv);
		return false;
	}
	for (size_t i = 0; i < h->n; i++)
		argv[argc++] = h->qid[i];
	fflush(stdout);
	if ((pid = fork()) == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "bulkwardenctl: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	free(cmd);
	free(argv);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int
sender_change(const bw_policy *p, bw_store *st, const char *sender, sender_act act, const char *note,
    bool release)
{
	change_ctx c = { act, &p->sender, now_ms(), note ? note : "", false, NULL };
	bw_sender_rec r;
	char err[300], t[BW_TIME_MS_LEN];
	bw_store_err e;

	if (!bw_sender_id_ok(sender)) {
		fprintf(stderr, "bulkwardenctl: \"%.100s\" is not a sender id\n", sender);
		return 2;
	}
	e = bw_sender_change(st, sender, c.now, change_fn, &c, &r, err, sizeof(err));
	if (e != BW_STORE_OK) {
		fprintf(stderr, "bulkwardenctl: sender %s: %s\n", sender, err);
		return 1;
	}
	if (c.changed)
		printf("sender %s: %s; now %s%s%s\n", sender, act_word[act], bw_sender_state_name(r.s.state),
		    r.s.state == BW_SS_GRACE ? " until " : "",
		    r.s.state == BW_SS_GRACE ? tfmt(r.s.grace_until, t) : "");
	else
		printf("sender %s: %s\n", sender, c.why);
	if (release) {
		held_list h = { 0 };
		size_t gone = 0;

		if (bw_sender_held_scan(st, sender, held_collect, &h) != BW_STORE_OK) {
			fprintf(stderr, "bulkwardenctl: sender %s: %s\n", sender, bw_store_last_error(st));
			held_free(&h);
			return 1;
		}
		if (h.n && !release_run(p->conf.hold_release_command, &h)) {
			fprintf(stderr, "bulkwardenctl: sender %s: \"%s\" failed; the %zu queue ids stay "
			    "recorded (sender show %s)\n", sender, p->conf.hold_release_command, h.n, sender);
			held_free(&h);
			return 1;
		}
		for (size_t i = 0; i < h.n; i++)
			if (bw_sender_held_del(st, sender, h.qid[i]) == BW_STORE_OK)
				gone++;
		printf("sender %s: released %zu held message%s\n", sender, gone, gone == 1 ? "" : "s");
		held_free(&h);
	}
	return 0;
}

/* ---------------------------------------------------------------- rates */

static void
rate_print(const char *what, int set, const bw_gcra_limit *l, const char *from)
{
	if (set)
		printf("%-16s %u per %llds, burst %u (%s)\n", what, l->count,
		    (long long)(l->period / 1000), l->burst, from);
	else
		printf("%-16s no limit (%s)\n", what, from);
}

static int
rate_show(const bw_policy *p, bw_store *st, const char *sender)
{
	bw_sender_rec r;
	char err[300], t[BW_TIME_MS_LEN];
	bw_store_err e = bw_sender_load(st, sender, now_ms(), &r, err, sizeof(err));
	char from[BW_SENDER_MAX + 16];
	const bw_class_policy *cl;
	double f;

	/* the class of the sender id: a login, an address, or a domain */
	snprintf(from, sizeof(from), "%s%s", strchr(sender, '@') || !strchr(sender, '.') ? ""
	    : "postmaster@", sender);
	cl = bw_rules_class(p->rules, from, sender);

	if (e != BW_STORE_OK && e != BW_STORE_NOTFOUND) {
		fprintf(stderr, "bulkwardenctl: sender %s: %s\n", sender, err);
		return 1;
	}
	f = bw_sender_rate_factor(&p->sender, &r.s);
	printf("sender:          %s (%s)\n", sender, bw_sender_state_name(r.s.state));
	if (cl && cl->msg_rate_set >= 0)
		rate_print("message rate:", cl->msg_rate_set, &cl->msg_rate, "sender-class");
	else
		rate_print("message rate:", p->msg_rate_on, &p->msg_rate, "MessageRate");
	if (cl && cl->rcpt_rate_set >= 0)
		rate_print("recipient rate:", cl->rcpt_rate_set, &cl->rcpt_rate, "sender-class");
	else
		rate_print("recipient rate:", p->rcpt_rate_on, &p->rcpt_rate, "RecipientRate");
	if (f < 1)
		printf("%-16s %.2f of those (ThrottleFactor)\n", "cut to:", f);
	printf("%-16s %s\n", "last reset:", tfmt(r.rate_reset_at, t));
	printf("(the counters themselves live in each daemon's memory; a reset reaches them "
	    "with the sender's next message)\n");
	return 0;
}

/* ---------------------------------------------------------------- entry points */

/* sender list|show|suspend|resume|resolve|ack-incident|grace ... */
int
ctl_sender(const char *conf, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "note", required_argument, NULL, 'n' },
		{ "release", no_argument, NULL, 'r' },
		{ "format", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *note = NULL, *sub;
	bool release = false, json = false;
	bw_policy *p;
	bw_store *st;
	int ch, rc;

	if (argc < 2)
		return ctl_usage();
	sub = argv[1];
	argc--;
	argv++;
	optind = 0;  /* GNU getopt: start afresh (main used it) */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1)
		switch (ch) {
		case 'n': note = optarg; break;
		case 'r': release = true; break;
		case 'f':
			if (strcmp(optarg, "json") == 0)
				json = true;
			else if (strcmp(optarg, "text") != 0)
				return ctl_usage();
			break;
		default: return ctl_usage();
		}
	argc -= optind;
	argv += optind;
	if (strcmp(sub, "list") == 0 ? argc != 0 : argc != 1)
		return ctl_usage();
	if (release && strcmp(sub, "resolve") != 0)
		return ctl_usage();
	if (!ctl_open(conf, &p, &st))
		return 1;
	if (strcmp(sub, "list") == 0)
		rc = sender_list(st, json);
	else if (strcmp(sub, "show") == 0)
		rc = sender_show(st, argv[0], json);
	else if (strcmp(sub, "suspend") == 0)
		rc = sender_change(p, st, argv[0], ACT_SUSPEND, note, false);
	else if (strcmp(sub, "resume") == 0)
		rc = sender_change(p, st, argv[0], ACT_RESUME, note, false);
	else if (strcmp(sub, "resolve") == 0)
		rc = sender_change(p, st, argv[0], ACT_RESOLVE, note, release);
	else if (strcmp(sub, "ack-incident") == 0)
		rc = sender_change(p, st, argv[0], ACT_ACK, note, false);
	else if (strcmp(sub, "grace") == 0)
		rc = sender_change(p, st, argv[0], ACT_GRACE, note, false);
	else
		rc = ctl_usage();
	bw_store_close(st);
	bw_policy_unref(p);
	return rc;
}

/* rate show|reset SENDER [--note TEXT] */
int
ctl_rate(const char *conf, int argc, char **argv)
{
	bw_policy *p;
	bw_store *st;
	int rc;
	const char *note = NULL;

	if (argc == 5 && strcmp(argv[3], "--note") == 0)
		note = argv[4];
	else if (argc != 3)
		return ctl_usage();
	if (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "reset") != 0)
		return ctl_usage();
	if (!ctl_open(conf, &p, &st))
		return 1;
	if (strcmp(argv[1], "show") == 0)
		rc = rate_show(p, st, argv[2]);
	else {
		rc = sender_change(p, st, argv[2], ACT_RATE_RESET, note, false);
		if (rc == 0 && bw_store_rate_reset(st, argv[2]) != BW_STORE_OK) {
			fprintf(stderr, "bulkwardenctl: rate reset %s: %s\n", argv[2], bw_store_last_error(st));
			rc = 1;
		}
	}
	bw_store_close(st);
	bw_policy_unref(p);
	return rc;
}

/* ---------------------------------------------------------------- complaints */

static void
fb_print(const char *what, const char *sender, const char *rcpt, const bw_fb_result *r)
{
	if (r->outcome == BW_FB_DUPLICATE) {
		printf("%s: duplicate: sender=%s rcpt=%s counted before, nothing changed\n", what, sender, rcpt);
		return;
	}
	printf("%s: applied: sender=%s rcpt=%s window=%llu/%llu from %u recipients state=%s",
	    what, sender, rcpt, (unsigned long long)r->totals.complaints,
	    (unsigned long long)r->totals.delivered, r->distinct, bw_sender_state_name(r->before));
	if (r->after != r->before)
		printf("->%s (%s)", bw_sender_state_name(r->after), r->reason);
	printf("\n");
}

static bool
norm_rcpt(const bw_policy *p, const char *in, char out[BW_ADDR_MAX + 1])
{
	bw_norm_opts no = { p->conf.fold_local_case, p->conf.fold_plus_tag };
	char err[120];

	return bw_addr_normalise(in, &no, false, out, BW_ADDR_MAX + 1, err, sizeof(err));
}

static int
complaint_add(const bw_policy *p, bw_store *st, const char *sender, const char *rcpt_in,
    const char *source)
{
	char rcpt[BW_ADDR_MAX + 1], key[BW_ADDR_MAX + 8], err[300];
	bw_fb_result r;

	if (!bw_sender_id_ok(sender) || !norm_rcpt(p, rcpt_in, rcpt)) {
		fprintf(stderr, "bulkwardenctl: complaint add: bad sender or recipient\n");
		return 2;
	}
	snprintf(key, sizeof(key), "cli:%s", rcpt);
	for (char *k = key; *k; k++)   /* a quoted local part may hold spaces; keys may not */
		if (*k == ' ')
			*k = '_';
	if (bw_feedback_apply(p, st, sender, rcpt, key, source ? source : "cli", "abuse", now_ms(), &r,
	    err, sizeof(err)) != BW_STORE_OK) {
		fprintf(stderr, "bulkwardenctl: complaint add: %s\n", err);
		return 1;
	}
	fb_print("complaint", sender, rcpt, &r);
	if (r.after != r.before)
		bw_feedback_notify(p, sender, r.before, r.after, r.reason);
	return 0;
}

static int
complaint_list_one(void *ud, const char *key, const char *val)
{
	(void)ud;
	printf("%.*s %s\n", (int)strcspn(key, " "), key, val);
	return 0;
}

typedef struct import_ctx {
	const bw_policy *p;
	bw_store *st;
	unsigned applied, dup, unauth, bad, failed;
} import_ctx;

/* One report file. */
static void
complaint_import_file(import_ctx *c, const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;
	bw_fb_report rep;

	if (fp == NULL || (buf = malloc(BW_ARF_SIZE_MAX + 1)) == NULL) {
		fprintf(stderr, "bulkwardenctl: %s: %s\n", path, strerror(errno));
		if (fp)
			fclose(fp);
		c->failed++;
		return;
	}
	len = fread(buf, 1, BW_ARF_SIZE_MAX + 1, fp);
	fclose(fp);
	if (bw_feedback_report(c->p, c->st, buf, len, now_ms(), &rep) != BW_STORE_OK) {
		fprintf(stderr, "bulkwardenctl: %s: %s\n", path, rep.why);
		c->failed++;
		free(buf);
		return;
	}
	switch (rep.status) {
	case BW_FBR_APPLIED:
	case BW_FBR_DUPLICATE:
		fb_print(path, rep.sender, rep.rcpt, &rep.r);
		if (rep.r.after != rep.r.before)
			bw_feedback_notify(c->p, rep.sender, rep.r.before, rep.r.after, rep.r.reason);
		if (rep.status == BW_FBR_APPLIED)
			c->applied++;
		else
			c->dup++;
		break;
	case BW_FBR_UNAUTH:
		printf("%s: not counted: unauthenticated (%s)\n", path, rep.why);
		c->unauth++;
		break;
	default:
		printf("%s: not counted: %s\n", path, rep.why);
		c->bad++;
		break;
	}
	free(buf);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory: its *.eml files in name order. */
static void
complaint_import_dir(import_ctx *c, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (d == NULL) {
		fprintf(stderr, "bulkwardenctl: %s: %s\n", dir, strerror(errno));
		c->failed++;
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".eml") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof(*names));
			if (nn == NULL)
				break;
			names = nn;
		}
		if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0)
			break;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		complaint_import_file(c, names[i]);
		free(names[i]);
	}
	free(names);
}

/* complaint add SENDER RCPT [--source S] | list [SENDER] | import FILE|DIR... */
int
ctl_complaint(const char *conf, int argc, char **argv)
{
	bw_policy *p;
	bw_store *st;
	int rc = 0;

	if (argc < 2)
		return ctl_usage();
	if (strcmp(argv[1], "add") == 0 ? !(argc == 4 || (argc == 6 && strcmp(argv[4], "--source") == 0))
	    : strcmp(argv[1], "list") == 0 ? argc > 3 : strcmp(argv[1], "import") == 0 ? argc < 3 : 1)
		return ctl_usage();
	if (!ctl_open(conf, &p, &st))
		return 1;
	if (strcmp(argv[1], "add") == 0)
		rc = complaint_add(p, st, argv[2], argv[3], argc == 6 ? argv[5] : NULL);
	else if (strcmp(argv[1], "list") == 0) {
		char prefix[BW_SENDER_MAX + 2] = "";
		if (argc == 3)
			snprintf(prefix, sizeof(prefix), "%s ", argv[2]);
		if (bw_store_scan(st, BW_TBL_COMPLAINT, prefix, complaint_list_one, NULL) != BW_STORE_OK) {
			fprintf(stderr, "bulkwardenctl: complaint list: %s\n", bw_store_last_error(st));
			rc = 1;
		}
	} else {
		import_ctx c = { .p = p, .st = st };

		if (p->ntrusted == 0)
			fprintf(stderr, "bulkwardenctl: complaint import: TrustedReporters is empty: no "
			    "report will count\n");
		for (int i = 2; i < argc; i++) {
			struct stat sb;
			if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode))
				complaint_import_dir(&c, argv[i]);
			else
				complaint_import_file(&c, argv[i]);
		}
		printf("complaint import: %u applied, %u duplicate, %u unauthenticated, %u not "
		    "counted, %u failed\n", c.applied, c.dup, c.unauth, c.bad, c.failed);
		rc = c.failed ? 1 : 0;
	}
	bw_store_close(st);
	bw_policy_unref(p);
	return rc;
}
