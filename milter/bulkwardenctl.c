/*
 * bulkwardenctl.c - the admin tool: check the configuration, lint message
 * files with the same policy as the daemon, read the counters, dump and
 * restore the store, keep consent and suppression records (add, remove,
 * show, import, export), erase a recipient, and (ctl_sender.c) see and
 * change senders' states and rates.
 */
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "consent.h"
#include "consent_io.h"
#include "ctl.h"
#include "engine.h"
#include "log.h"
#include "optout.h"
#include "store.h"

static const char *conf_path = BW_SYSCONFDIR "/bulkwarden/bulkwarden.conf";

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bulkwardenctl [-c config] command [args]\n"
	    "commands:\n"
	    "  check-config                 check the configuration and every file it names\n"
	    "  config-keys                  list every configuration key with its default\n"
	    "  stats                        message counters from the store\n"
	    "  scan [--bulk|--no-bulk] [--format json|text] [--chunk N] FILE...\n"
	    "                               check message files as the filter would; exit 1 if any\n"
	    "                               would be refused\n"
	    "  dump [FILE]                  write the store as JSON lines (default: stdout)\n"
	    "  restore [FILE]               read JSON lines into the store (all or nothing)\n"
	    "  consent add SENDER RCPT --method M [--granted-at T] [--source S] [--source-ip IP]\n"
	    "              [--confirmed-at T] [--confirm-ip IP] [--text V] [--evidence E]\n"
	    "              [--expires-at T]\n"
	    "  consent remove SENDER RCPT\n"
	    "  consent show [--format json|text] SENDER|RCPT|SENDER RCPT\n"
	    "  consent import [--format csv|jsonl] [--abort-on-error] [--batch N] FILE|-\n"
	    "  consent export [--format csv|jsonl] [SENDER]\n"
	    "  suppress add SENDER|'*' RCPT --reason R [--source S] [--note N]\n"
	    "  suppress remove SENDER|'*' RCPT\n"
	    "  suppress show [--format json|text] SENDER|RCPT|SENDER RCPT\n"
	    "  suppress import [--format csv|jsonl] [--abort-on-error] [--batch N] FILE|-\n"
	    "  suppress export [--format csv|jsonl] [SENDER]\n"
	    "  forget RCPT                  erase a recipient (keeps its suppressions hashed)\n"
	    "  token make SENDER RCPT [--issued-at T]\n"
	    "                               print a signed unsubscribe token (TokenKeyFile)\n"
	    "  token check TOKEN            say whom a token names and whether it is valid\n"
	    "  unsubscribe TOKEN            act on a token as the filter would (suppress)\n"
	    "  sender list [--format json|text]\n"
	    "  sender show [--format json|text] SENDER\n"
	    "  sender suspend|resume|grace|ack-incident SENDER [--note TEXT]\n"
	    "  sender resolve SENDER [--release] [--note TEXT]\n"
	    "                               --release: HoldReleaseCommand with the held queue ids\n"
	    "  rate show SENDER             the sender's limits and state\n"
	    "  rate reset SENDER [--note TEXT]\n"
	    "                               give the sender full rate buckets again\n"
	    "  complaint add SENDER RCPT [--source S]\n"
	    "                               count a complaint (suppress, window, incident, state)\n"
	    "  complaint list [SENDER]\n"
	    "  complaint import FILE|DIR... ARF reports (.eml); only those DKIM-signed by\n"
	    "                               TrustedReporters count\n");
	exit(2);
}

int
ctl_usage(void)
{
	usage();
	return 2;
}

static bw_store *open_store(const bw_policy *p, int readonly);

static bw_policy *
load_policy(void)
{
	bw_errs errs = { 0 };
	bw_policy *p = bw_policy_load(conf_path, &errs);

	if (p == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		bw_errs_free(&errs);
	}
	return p;
}

bw_policy *
ctl_policy(const char *conf)
{
	conf_path = conf;
	return load_policy();
}

bw_store *
ctl_store(const bw_policy *p, int readonly)
{
	return open_store(p, readonly);
}

static bw_store *
open_store(const bw_policy *p, int readonly)
{
	bw_store_opts so = { .map_size = p->conf.map_size, .max_readers = p->conf.max_readers,
	    .readonly = readonly };
	char err[512];
	bw_store *st = bw_store_open(p->conf.store, &so, err, sizeof(err));

	if (st == NULL)
		fprintf(stderr, "bulkwardenctl: %s\n", err);
	return st;
}

static int
cmd_check_config(void)
{
	bw_policy *p = load_policy();

	if (p == NULL)
		return 1;
	printf("%s: configuration OK\n", conf_path);
	bw_policy_unref(p);
	return 0;
}

static int
cmd_config_keys(void)
{
	for (size_t i = 0; i < bw_conf_nkeys; i++) {
		const bw_conf_key *k = &bw_conf_keys[i];
		printf("%s\t%s\t%s%s\n", k->name, k->def[0] ? k->def : "\"\"",
		    k->reloadable ? "" : "(restart required) ", k->help);
	}
	return 0;
}

static int
print_counter(void *ud, const char *name, int64_t val)
{
	(void)ud;
	printf("%-28s %lld\n", name, (long long)val);
	return 0;
}

static int
cmd_stats(void)
{
	bw_policy *p = load_policy();
	bw_store *st;
	bw_store_err e;

	if (p == NULL)
		return 1;
	if ((st = open_store(p, 1)) == NULL) {
		bw_policy_unref(p);
		return 1;
	}
	e = bw_store_counter_scan(st, "", print_counter, NULL);
	if (e != BW_STORE_OK)
		fprintf(stderr, "bulkwardenctl: stats: %s\n", bw_store_last_error(st));
	bw_store_close(st);
	bw_policy_unref(p);
	return e == BW_STORE_OK ? 0 : 1;
}

static int
scan_one(bw_policy *p, const char *file, int bulk, int text, size_t chunk)
{
	int fd = open(file, O_RDONLY);
	struct stat sb;
	const char *data = "";
	bw_msg *m;
	bw_verdict v;
	bw_action a;
	int refused;

	if (fd < 0 || fstat(fd, &sb) != 0) {
		fprintf(stderr, "bulkwardenctl: %s: %s\n", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (sb.st_size > 0) {
		data = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (data == MAP_FAILED) {
			fprintf(stderr, "bulkwardenctl: %s: %s\n", file, strerror(errno));
			close(fd);
			return -1;
		}
	}
	if ((m = bw_msg_new(p, NULL, bw_clock_now())) == NULL) {
		fprintf(stderr, "bulkwardenctl: out of memory\n");
		close(fd);
		return -1;
	}
	bw_msg_connect(m, "", NULL);
	if (bulk >= 0)
		bw_msg_force_bulk(m, bulk == 1);
	a = bw_msg_feed_file(m, data, (size_t)sb.st_size, chunk, &v);
	(void)a;
	/* (each report replaces the one before: the JSON is made last) */
	const char *out = text ? bw_msg_report_text(m, file) : bw_msg_report_json(m, file);
	if (out != NULL) {
		fputs(out, stdout);
		if (!text)
			fputc('\n', stdout);
	}
	const char *json = out != NULL ? bw_msg_report_json(m, file) : NULL;
	if (json == NULL) {
		/* (out of memory): the verdict is not known to the caller */
		fprintf(stderr, "bulkwardenctl: %s: cannot make the report\n", file);
		refused = -1;
	} else
		refused = strstr(json, "\"verdict\":\"refuse\"") != NULL;
	bw_msg_free(m);
	if (sb.st_size > 0)
		munmap((void *)data, (size_t)sb.st_size);
	close(fd);
	return refused;
}

static int
cmd_scan(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bulk", no_argument, NULL, 'b' },
		{ "no-bulk", no_argument, NULL, 'n' },
		{ "format", required_argument, NULL, 'f' },
		{ "chunk", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 }
	};
	int bulk = 1, text = 0, ch, rc = 0;
	size_t chunk = 65535;
	bw_policy *p;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'b': bulk = 1; break;
		case 'n': bulk = -1; break;
		case 'f':
			if (strcmp(optarg, "text") == 0)
				text = 1;
			else if (strcmp(optarg, "json") == 0)
				text = 0;
			else
				usage();
			break;
		case 'k': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v == 0 || v > 1024 * 1024) {
				fprintf(stderr, "bulkwardenctl: --chunk takes 1 to 1048576\n");
				return 2;
			}
			chunk = v;
			break;
		}
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	if ((p = load_policy()) == NULL)
		return 2;
	for (int i = optind; i < argc; i++) {
		int r = scan_one(p, argv[i], bulk, text, chunk);
		if (r < 0)
			rc = 2;
		else if (r > 0 && rc == 0)
			rc = 1;
	}
	bw_policy_unref(p);
	return rc;
}

static int
dump_line(void *ud, const char *line, size_t len)
{
	FILE *fp = ud;

	if (fwrite(line, 1, len, fp) != len || fputc('\n', fp) == EOF)
		return -1;
	return 0;
}

static int
cmd_dump(int argc, char **argv)
{
	bw_policy *p = load_policy();
	bw_store *st;
	FILE *out = stdout;
	bw_store_err e;

	if (p == NULL)
		return 1;
	if (argc > 1 && (out = fopen(argv[1], "w")) == NULL) {
		fprintf(stderr, "bulkwardenctl: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if ((st = open_store(p, 1)) == NULL)
		return 1;
	e = bw_store_dump(st, dump_line, out);
	if (e != BW_STORE_OK)
		fprintf(stderr, "bulkwardenctl: dump: %s\n", bw_store_last_error(st));
	if (out != stdout && fclose(out) != 0) {
		fprintf(stderr, "bulkwardenctl: %s: %s\n", argv[1], strerror(errno));
		e = BW_STORE_IO;
	}
	bw_store_close(st);
	bw_policy_unref(p);
	return e == BW_STORE_OK ? 0 : 1;
}

typedef struct restore_in {
	FILE *fp;
	char *buf;
	size_t cap;
} restore_in;

static int
restore_line(void *ud, char **line, size_t *len)
{
	restore_in *in = ud;
	ssize_t n = getline(&in->buf, &in->cap, in->fp);

	if (n < 0)
		return 0;
	while (n > 0 && (in->buf[n - 1] == '\n' || in->buf[n - 1] == '\r'))
		in->buf[--n] = 0;
	*line = in->buf;
	*len = (size_t)n;
	return 1;
}

static int
cmd_restore(int argc, char **argv)
{
	bw_policy *p = load_policy();
	bw_store *st;
	restore_in in = { stdin, NULL, 0 };
	char err[512] = "";
	bw_store_err e;

	if (p == NULL)
		return 1;
	if (argc > 1 && (in.fp = fopen(argv[1], "r")) == NULL) {
		fprintf(stderr, "bulkwardenctl: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if ((st = open_store(p, 0)) == NULL)
		return 1;
	e = bw_store_restore(st, restore_line, &in, err, sizeof(err));
	if (e != BW_STORE_OK)
		fprintf(stderr, "bulkwardenctl: restore %s: %s (nothing was written)\n",
		    argc > 1 ? argv[1] : "stdin", err[0] ? err : bw_store_last_error(st));
	free(in.buf);
	if (in.fp != stdin)
		fclose(in.fp);
	bw_store_close(st);
	bw_policy_unref(p);
	return e == BW_STORE_OK ? 0 : 1;
}

/* ---------------------------------------------------------------- records
 * consent, suppress, forget. Exit status: 0 done; 1 some input rows were
 * skipped or the import aborted on them, or show/remove found nothing;
 * 2 bad command line or configuration; 3 the store could not be opened,
 * read or written (or the output could not be written).
 */
#define RX_OK 0
#define RX_SOME 1
#define RX_USAGE 2
#define RX_STORE 3

typedef struct rec_env {
	bw_io_kind kind;
	const char *cmd;      /* "consent" or "suppress" */
	bw_policy *p;
	bw_store *st;
	bw_norm_opts norm;
	bw_keyring *erasure;  /* read here when the policy has none loaded */
} rec_env;

static bw_tbl
rec_tbl(bw_io_kind k)
{
	return k == BW_IO_SUPPRESS ? BW_TBL_SUPPRESS : BW_TBL_CONSENT;
}

static int
rec_begin(rec_env *e, bw_io_kind kind, const char *cmd)
{
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->cmd = cmd;
	if ((e->p = load_policy()) == NULL)
		return RX_USAGE;
	e->norm.fold_case = e->p->conf.fold_local_case;
	e->norm.fold_plus = e->p->conf.fold_plus_tag;
	return RX_OK;
}

static int
rec_store(rec_env *e, int readonly)
{
	if ((e->st = open_store(e->p, readonly)) == NULL)
		return RX_STORE;
	return RX_OK;
}

static int
rec_end(rec_env *e, int rc)
{
	if (e->st)
		bw_store_close(e->st);
	bw_keyring_free(e->erasure);
	if (e->p)
		bw_policy_unref(e->p);
	return rc;
}

/* The erasure key: the policy's, or read from ErasureKeyFile; NULL when
 * none is configured (said on stderr when need) or it cannot be read. */
static const bw_keyring *
rec_erasure(rec_env *e, bool need)
{
	const char *f = e->p->conf.erasure_key_file;
	char err[512];

	if (e->p->erasure_key)
		return e->p->erasure_key;
	if (e->erasure)
		return e->erasure;
	if (f == NULL || *f == 0) {
		if (need)
			fprintf(stderr, "bulkwardenctl: %s: no ErasureKeyFile in the configuration\n",
			    conf_path);
		return NULL;
	}
	if ((e->erasure = bw_keyring_load(f, err, sizeof(err))) == NULL)
		fprintf(stderr, "bulkwardenctl: ErasureKeyFile: %s\n", err);
	return e->erasure;
}

/* A sender operand: a sender id, or "*" for a suppression. */
static bool
rec_sender_arg(const rec_env *e, const char *arg)
{
	if (bw_sender_id_ok(arg) || (e->kind == BW_IO_SUPPRESS && strcmp(arg, "*") == 0))
		return true;
	fprintf(stderr, "bulkwardenctl: %s: \"%.100s\" is not a sender id%s\n", e->cmd, arg,
	    e->kind == BW_IO_SUPPRESS ? " or \"*\"" : "");
	return false;
}

/* A recipient operand, normalised into out: an address; "*@domain" for
 * consent; "#" and 64 hex digits (an erased address) for a suppression. */
static bool
rec_rcpt_arg(const rec_env *e, const char *arg, char out[BW_ADDR_MAX + 1])
{
	char why[256] = "";

	if (arg[0] == '#' && e->kind == BW_IO_SUPPRESS && strlen(arg) == BW_ADDR_HASH_LEN
	    && strspn(arg + 1, "0123456789abcdefABCDEF") == BW_ADDR_HASH_LEN - 1) {
		for (size_t i = 0; i < BW_ADDR_HASH_LEN; i++)
			out[i] = (char)((arg[i] >= 'A' && arg[i] <= 'F') ? arg[i] + 32 : arg[i]);
		out[BW_ADDR_HASH_LEN] = 0;
		return true;
	}
	if (bw_addr_normalise(arg, &e->norm, e->kind == BW_IO_CONSENT, out, BW_ADDR_MAX + 1, why,
		sizeof(why)))
		return true;
	fprintf(stderr, "bulkwardenctl: %s: recipient \"%.100s\": %s\n", e->cmd, arg,
	    why[0] ? why : "not an address");
	return false;
}

/* getopt_long over a subcommand's arguments (argv[0] is the subcommand). */
static void
rec_getopt_reset(void)
{
	optind = 0; /* GNU: start again, permuting: options may follow operands */
}

static bool
rec_format_opt(const char *arg, bool text_ok, bw_io_format *f, bool *text)
{
	if (text_ok && strcmp(arg, "text") == 0) {
		*text = true;
		return true;
	}
	*text = false;
	if (bw_io_format_parse(arg, f))
		return true;
	fprintf(stderr, "bulkwardenctl: --format takes csv, jsonl%s\n", text_ok ? " or text" : "");
	return false;
}

/* ---- writing records out */

typedef struct rec_out {
	bw_io_kind kind;
	bw_io_format fmt;
	bool text;
	FILE *fp;
	unsigned long n;   /* records written */
	unsigned long bad; /* records that could not be read */
	bool werr;         /* the output failed */
} rec_out;

static void
text_str(FILE *fp, const char *label, const char *v)
{
	if (v == NULL || *v == 0)
		return;
	fprintf(fp, "  %-14s", label);
	for (; *v; v++) {
		if (*v == '\n')
			fputs("\\n", fp);
		else if (*v == '\r')
			fputs("\\r", fp);
		else
			fputc(*v, fp);
	}
	fputc('\n', fp);
}

static void
text_time(FILE *fp, const char *label, int64_t t)
{
	char buf[40];

	if (t == 0)
		return;
	bw_time_fmt(t, buf, sizeof(buf));
	text_str(fp, label, buf);
}

static char *
rec_text_consent(const bw_consent *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (fp == NULL)
		return NULL;
	fprintf(fp, "consent %s %s\n", c->sender, c->rcpt);
	text_str(fp, "method", bw_consent_method_name(c->method));
	text_time(fp, "granted_at", c->granted_at);
	text_str(fp, "source", c->source);
	text_str(fp, "evidence", c->evidence);
	text_str(fp, "source_ip", c->source_ip);
	text_time(fp, "confirmed_at", c->confirmed_at);
	text_str(fp, "confirm_ip", c->confirm_ip);
	text_str(fp, "text", c->text);
	text_time(fp, "expires_at", c->expires_at);
	text_time(fp, "withdrawn_at", c->withdrawn_at);
	text_time(fp, "recorded_at", c->recorded_at);
	if (fclose(fp) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static char *
rec_text_supp(const bw_suppression *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (fp == NULL)
		return NULL;
	fprintf(fp, "suppression %s %s\n", s->sender, s->rcpt);
	text_str(fp, "reason", bw_supp_reason_name(s->reason));
	text_time(fp, "at", s->at);
	text_str(fp, "source", s->source);
	text_str(fp, "note", s->note);
	if (fclose(fp) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* One stored record out; returns non-zero to stop (the output failed). */
static int
rec_print(void *ud, const char *key, const char *val)
{
	rec_out *o = ud;
	char err[256], *line = NULL;
	bool ok;

	if (o->kind == BW_IO_CONSENT) {
		bw_consent c;
		if ((ok = bw_consent_from_json(key, val, &c, err, sizeof(err))))
			line = o->text ? rec_text_consent(&c) : bw_io_consent_line(&c, o->fmt);
		bw_consent_clear(&c);
	} else {
		bw_suppression s;
		if ((ok = bw_suppression_from_json(key, val, &s, err, sizeof(err))))
			line = o->text ? rec_text_supp(&s) : bw_io_suppression_line(&s, o->fmt);
		bw_suppression_clear(&s);
	}
	if (!ok) {
		fprintf(stderr, "bulkwardenctl: %s record \"%.200s\" cannot be read: %s\n",
		    bw_store_table_name(rec_tbl(o->kind)), key, err);
		o->bad++;
		return 0;
	}
	if (line == NULL || fputs(line, o->fp) == EOF) {
		fprintf(stderr, "bulkwardenctl: %s\n", line ? strerror(errno) : "out of memory");
		free(line);
		o->werr = true;
		return 1;
	}
	free(line);
	o->n++;
	return 0;
}

static int
rec_out_status(rec_env *e, rec_out *o, bw_store_err se)
{
	if (se != BW_STORE_OK) {
		fprintf(stderr, "bulkwardenctl: %s: %s\n", e->cmd, bw_store_last_error(e->st));
		return RX_STORE;
	}
	if (fflush(o->fp) != 0 || ferror(o->fp)) {
		if (!o->werr)
			fprintf(stderr, "bulkwardenctl: %s: output: %s\n", e->cmd, strerror(errno));
		return RX_STORE;
	}
	if (o->werr || o->bad)
		return RX_STORE;
	return RX_OK;
}

/* ---- show */

typedef struct show_match {
	rec_out *o;
	const char *rcpt[2]; /* print records whose recipient is one of these */
	const char *sender;  /* or whose sender is this (NULL: none) */
} show_match;

static int
show_if_rcpt(void *ud, const char *key, const char *val)
{
	show_match *m = ud;
	const char *sp = strchr(key, ' ');

	if (sp == NULL)
		return 0;
	if (m->sender && strlen(m->sender) == (size_t)(sp - key)
	    && memcmp(key, m->sender, (size_t)(sp - key)) == 0)
		return rec_print(m->o, key, val);
	for (size_t i = 0; i < 2; i++)
		if (m->rcpt[i] && strcmp(sp + 1, m->rcpt[i]) == 0)
			return rec_print(m->o, key, val);
	return 0;
}

static int
rec_show(rec_env *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 }
	};
	rec_out o = { e->kind, BW_IO_JSONL, false, stdout, 0, 0, false };
	char rcpt[BW_ADDR_MAX + 1], alt[BW_ADDR_MAX + 1], hash[BW_ADDR_HASH_LEN + 1];
	const char *sender = NULL, *arcpt = NULL;
	bw_store_err se = BW_STORE_OK;
	const bw_keyring *k = NULL;
	int ch, rc;

	rec_getopt_reset();
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'f' || !rec_format_opt(optarg, true, &o.fmt, &o.text))
			return RX_USAGE;
	}
	argc -= optind;
	argv += optind;
	if (argc == 2) {
		sender = argv[0];
		arcpt = argv[1];
	} else if (argc == 1 && (strchr(argv[0], '@') || argv[0][0] == '#')) {
		arcpt = argv[0];
	} else if (argc == 1) {
		sender = argv[0];
	} else {
		usage();
	}
	if ((sender && !rec_sender_arg(e, sender)) || (arcpt && !rec_rcpt_arg(e, arcpt, rcpt)))
		return RX_USAGE;
	if ((rc = rec_store(e, 1)) != RX_OK)
		return rc;
	alt[0] = hash[0] = 0;
	if (arcpt && e->kind == BW_IO_CONSENT && rcpt[0] != '*')
		snprintf(alt, sizeof(alt), "*@%s", strchr(rcpt, '@') + 1); /* domain-wide */
	if (arcpt && e->kind == BW_IO_SUPPRESS && rcpt[0] != '#' && (k = rec_erasure(e, false)))
		bw_addr_hash(k, rcpt, hash); /* the same address, erased */
	if (o.text == false && o.fmt == BW_IO_CSV)
		fputs(bw_io_csv_header(e->kind), stdout);
	if (sender && arcpt) {
		/* (sender, rcpt), and what else applies to it: the domain-wide
		 * consent; the global suppression and the erased address' */
		char keys[4][BW_STORE_KEY_MAX + 1];
		bw_store_key sk[4];
		char *vals[4] = { NULL };
		size_t n = 0;
		const char *senders[2] = { sender, strcmp(sender, "*") ? "*" : NULL };
		const char *rcpts[2] = { rcpt, alt[0] ? alt : hash[0] ? hash : NULL };
		for (size_t i = 0; i < 2; i++)
			for (size_t j = 0; j < 2; j++) {
				if (rcpts[j] == NULL || (i == 1 && (senders[1] == NULL
				    || e->kind == BW_IO_CONSENT)))
					continue;
				if (!bw_consent_key(senders[i], rcpts[j], keys[n], sizeof(keys[n])))
					continue;
				sk[n].tbl = rec_tbl(e->kind);
				sk[n].key = keys[n];
				n++;
			}
		se = bw_store_get_many(e->st, sk, n, vals);
		for (size_t i = 0; i < n; i++) {
			if (vals[i] && !o.werr)
				rec_print(&o, keys[i], vals[i]);
			free(vals[i]);
		}
	} else if (sender) {
		char prefix[BW_SENDER_MAX + 2];
		snprintf(prefix, sizeof(prefix), "%s ", sender);
		se = bw_store_scan(e->st, rec_tbl(e->kind), prefix, rec_print, &o);
	} else {
		/* an address may be a sender id too (SenderIdentity address) */
		show_match m = { &o, { rcpt, alt[0] ? alt : hash[0] ? hash : NULL },
			bw_sender_id_ok(arcpt) ? arcpt : NULL };
		se = bw_store_scan(e->st, rec_tbl(e->kind), "", show_if_rcpt, &m);
	}
	if ((rc = rec_out_status(e, &o, se)) != RX_OK)
		return rc;
	if (o.n == 0) {
		fprintf(stderr, "bulkwardenctl: no %s record for %s%s%s\n",
		    bw_io_kind_name(e->kind), sender ? sender : "", sender && arcpt ? " " : "",
		    arcpt ? rcpt : "");
		return RX_SOME;
	}
	return RX_OK;
}

/* ---- export */

static int
rec_export(rec_env *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 }
	};
	rec_out o = { e->kind, BW_IO_CSV, false, stdout, 0, 0, false };
	char prefix[BW_SENDER_MAX + 2] = "";
	bw_store_err se;
	int ch, rc;

	rec_getopt_reset();
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'f' || !rec_format_opt(optarg, false, &o.fmt, &o.text))
			return RX_USAGE;
	}
	if (argc - optind > 1)
		usage();
	if (argc - optind == 1) {
		if (!rec_sender_arg(e, argv[optind]))
			return RX_USAGE;
		snprintf(prefix, sizeof(prefix), "%s ", argv[optind]);
	}
	if ((rc = rec_store(e, 1)) != RX_OK)
		return rc;
	if (o.fmt == BW_IO_CSV && fputs(bw_io_csv_header(e->kind), stdout) == EOF)
		return RX_STORE;
	se = bw_store_scan(e->st, rec_tbl(e->kind), prefix, rec_print, &o);
	return rec_out_status(e, &o, se);
}

/* ---- import */

typedef struct import_src {
	const char *name; /* file name, or "stdin" */
	int fd;
	int tee;          /* a copy of what was read goes here (or -1) */
} import_src;

static ssize_t
import_read(void *ud, char *buf, size_t len)
{
	import_src *in = ud;
	ssize_t n = read(in->fd, buf, len);

	for (ssize_t w = 0, k; in->tee >= 0 && n > 0 && w < n; w += k) {
		if ((k = write(in->tee, buf + w, (size_t)(n - w))) < 0) {
			if (errno == EINTR) {
				k = 0;
				continue;
			}
			return -1;
		}
	}
	return n;
}

typedef struct import_ctx {
	const char *cmd, *name;
	bool quiet; /* the second pass of --abort-on-error: rows were reported already */
} import_ctx;

static int
import_bad(void *ud, unsigned long line, const char *msg)
{
	import_ctx *x = ud;

	(void)line;
	if (!x->quiet)
		fprintf(stderr, "bulkwardenctl: %s import %s: %s\n", x->cmd, x->name, msg);
	return 0;
}

static void
import_committed(void *ud, unsigned long first, unsigned long last, size_t rows)
{
	import_ctx *x = ud;

	printf("%s import %s: committed %zu rows of input lines %lu-%lu\n", x->cmd, x->name, rows,
	    first, last);
	fflush(stdout);
}

/* Run one pass over the input; st NULL checks only. */
static bw_import_status
import_pass(rec_env *e, import_src *in, bw_io_format fmt, bw_store *st, size_t batch,
    import_ctx *x, bw_import_report *rep, char *err, size_t errlen)
{
	bw_import_hooks h = { import_bad, st ? import_committed : NULL, x };
	bw_import *im = bw_import_new(e->kind, fmt, &e->norm, (int64_t)bw_clock_now(), import_read, in);
	bw_import_status r;

	if (im == NULL) {
		snprintf(err, errlen, "out of memory");
		memset(rep, 0, sizeof(*rep));
		return BW_IMPORT_FAIL;
	}
	r = bw_import_run(im, st, batch, &h, rep, err, errlen);
	bw_import_free(im);
	return r;
}

static int
rec_import(rec_env *e, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "abort-on-error", no_argument, NULL, 'a' },
		{ "batch", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 }
	};
	bw_io_format fmt = BW_IO_AUTO;
	bool abort_on_error = false, text;
	size_t batch = BW_IO_BATCH_DEF;
	import_src in = { "stdin", 0, -1 };
	off_t start = 0;
	import_ctx x = { e->cmd, NULL, false };
	bw_import_report rep;
	bw_import_status r;
	char err[1024];
	struct stat sb;
	int ch, rc;

	rec_getopt_reset();
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			if (!rec_format_opt(optarg, false, &fmt, &text))
				return RX_USAGE;
			break;
		case 'a': abort_on_error = true; break;
		case 'b': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v == 0 || v > BW_IO_BATCH_MAX) {
				fprintf(stderr, "bulkwardenctl: --batch takes 1 to %d\n", BW_IO_BATCH_MAX);
				return RX_USAGE;
			}
			batch = v;
			break;
		}
		default: return RX_USAGE;
		}
	}
	if (argc - optind != 1)
		usage();
	if (strcmp(argv[optind], "-") != 0) {
		in.name = argv[optind];
		if ((in.fd = open(in.name, O_RDONLY)) < 0) {
			fprintf(stderr, "bulkwardenctl: %s: %s\n", in.name, strerror(errno));
			return RX_USAGE;
		}
	}
	x.name = in.name;
	if ((rc = rec_store(e, 0)) != RX_OK)
		goto out;
	if (abort_on_error) {
		/* check everything first; the input is read twice (a pipe through a
		 * temporary file) */
		bool seekable = fstat(in.fd, &sb) == 0 && S_ISREG(sb.st_mode)
		    && (start = lseek(in.fd, 0, SEEK_CUR)) >= 0;
		if (!seekable) {
			const char *tmp = getenv("TMPDIR");
			char path[4096];
			snprintf(path, sizeof(path), "%s/bulkwardenctl-import-XXXXXX",
			    tmp && *tmp ? tmp : P_tmpdir);
			if ((in.tee = mkstemp(path)) < 0) {
				fprintf(stderr, "bulkwardenctl: %s: %s\n", path, strerror(errno));
				rc = RX_USAGE;
				goto out;
			}
			unlink(path);
		}
		r = import_pass(e, &in, fmt, NULL, batch, &x, &rep, err, sizeof(err));
		if (r != BW_IMPORT_END || rep.skipped > 0) {
			if (r == BW_IMPORT_FAIL)
				fprintf(stderr, "bulkwardenctl: %s import %s: %s\n", e->cmd, in.name, err);
			fprintf(stderr, "bulkwardenctl: %s import %s: aborted: %lu of %lu rows are bad; "
			    "nothing was written\n", e->cmd, in.name, rep.skipped, rep.rows);
			rc = RX_SOME;
			goto out;
		}
		if (!seekable) {
			if (in.fd != 0)
				close(in.fd);
			in.fd = in.tee;
			in.tee = -1;
			start = 0;
		}
		if (lseek(in.fd, start, SEEK_SET) != start) {
			fprintf(stderr, "bulkwardenctl: %s: %s\n", in.name, strerror(errno));
			rc = RX_USAGE;
			goto out;
		}
		x.quiet = true;
	}
	r = import_pass(e, &in, fmt, e->st, batch, &x, &rep, err, sizeof(err));
	printf("%s import %s: %lu rows read, %lu imported, %lu skipped", e->cmd, in.name, rep.rows,
	    rep.imported, rep.skipped);
	if (rep.duplicates)
		printf(", %lu replaced by a later row with the same key", rep.duplicates);
	printf("\n");
	fflush(stdout);
	if (r == BW_IMPORT_FAIL) {
		fprintf(stderr, "bulkwardenctl: %s import %s: %s\n", e->cmd, in.name, err);
		if (rep.batches > 0)
			fprintf(stderr, "bulkwardenctl: %s import %s: committed: every good row of "
			    "input lines 1-%lu (%lu rows in %lu batches); nothing after line %lu was "
			    "written\n", e->cmd, in.name, rep.committed_line, rep.imported,
			    rep.batches, rep.committed_line);
		else
			fprintf(stderr, "bulkwardenctl: %s import %s: nothing was written\n", e->cmd,
			    in.name);
		if (rep.store_err != BW_STORE_OK) {
			fprintf(stderr, "bulkwardenctl: %s import %s: re-running the same import is "
			    "safe: a record replaces the one with the same key\n", e->cmd, in.name);
			rc = RX_STORE;
		} else {
			rc = RX_SOME;
		}
	} else {
		rc = rep.skipped ? RX_SOME : RX_OK;
	}
out:
	if (in.fd > 0)
		close(in.fd);
	if (in.tee >= 0)
		close(in.tee);
	return rc;
}

/* ---- add, remove */

static const char *
now_text(char *buf, size_t len)
{
	bw_time_fmt((int64_t)bw_clock_now(), buf, len);
	return buf;
}

/* What a new consent will and will not do, on stderr: a method the policy
 * does not count, a suppression it does not lift. */
static void
consent_notes(rec_env *e, const bw_consent *c)
{
	unsigned count = e->p->consent_methods, lift = e->p->consent_lift;
	char keys[4][BW_STORE_KEY_MAX + 1], hash[BW_ADDR_HASH_LEN + 1], err[256];
	bw_store_key sk[4];
	char *vals[4] = { NULL };
	const bw_keyring *k;
	size_t n = 0;

	bw_consent_methods_parse(e->p->conf.consent_methods, &count, err, sizeof(err));
	bw_consent_methods_parse(e->p->conf.consent_lift_methods, &lift, err, sizeof(err));
	if (!(count & (1u << c->method)))
		fprintf(stderr, "bulkwardenctl: note: ConsentMethods does not count %s consent\n",
		    bw_consent_method_name(c->method));
	if (c->rcpt[0] == '*')
		return;
	bw_consent_key(c->sender, c->rcpt, keys[n++], sizeof(keys[0]));
	bw_consent_key("*", c->rcpt, keys[n++], sizeof(keys[0]));
	if ((k = rec_erasure(e, false)) != NULL) {
		bw_addr_hash(k, c->rcpt, hash);
		bw_consent_key(c->sender, hash, keys[n++], sizeof(keys[0]));
		bw_consent_key("*", hash, keys[n++], sizeof(keys[0]));
	}
	for (size_t i = 0; i < n; i++)
		sk[i] = (bw_store_key){ BW_TBL_SUPPRESS, keys[i] };
	if (bw_store_get_many(e->st, sk, n, vals) != BW_STORE_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		bw_suppression s;
		char at[40];
		if (vals[i] && bw_suppression_from_json(keys[i], vals[i], &s, err, sizeof(err))) {
			bw_time_fmt(s.at, at, sizeof(at));
			fprintf(stderr, "bulkwardenctl: note: %s %s is suppressed (%s %s); a consent "
			    "lifts that only when given after it by a method in ConsentLiftMethods "
			    "(%s): this one %s\n", s.sender, s.rcpt, bw_supp_reason_name(s.reason), at,
			    e->p->conf.consent_lift_methods,
			    (lift & (1u << c->method)) && c->granted_at > s.at ? "does" : "does not");
			bw_suppression_clear(&s);
		}
		free(vals[i]);
	}
}

static int
rec_add(rec_env *e, int argc, char **argv)
{
	static const struct option copts[] = {
		{ "method", required_argument, NULL, 'm' },
		{ "granted-at", required_argument, NULL, 'g' },
		{ "source", required_argument, NULL, 's' },
		{ "source-ip", required_argument, NULL, 'i' },
		{ "confirmed-at", required_argument, NULL, 'C' },
		{ "confirm-ip", required_argument, NULL, 'I' },
		{ "text", required_argument, NULL, 't' },
		{ "evidence", required_argument, NULL, 'e' },
		{ "expires-at", required_argument, NULL, 'x' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct option sopts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ "source", required_argument, NULL, 's' },
		{ "note", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	const char *names[16], *vals[16];
	size_t n = 2;
	char now[40], key[BW_STORE_KEY_MAX + 1], err[512], *json = NULL, *line = NULL;
	bool have_source = false, have_time = false;
	bw_consent c;
	bw_suppression s;
	bw_store_err se;
	int ch, rc;

	rec_getopt_reset();
	while ((ch = getopt_long(argc, argv, "", e->kind == BW_IO_CONSENT ? copts : sopts,
		    NULL)) != -1) {
		const char *name = NULL;
		switch (ch) {
		case 'm': name = "method"; break;
		case 'g': name = "granted_at"; have_time = true; break;
		case 's': name = "source"; have_source = true; break;
		case 'i': name = "source_ip"; break;
		case 'C': name = "confirmed_at"; break;
		case 'I': name = "confirm_ip"; break;
		case 't': name = "text"; break;
		case 'e': name = "evidence"; break;
		case 'x': name = "expires_at"; break;
		case 'r': name = "reason"; break;
		case 'n': name = "note"; break;
		default: return RX_USAGE;
		}
		for (size_t i = 2; i < n; i++)
			if (strcmp(names[i], name) == 0) {
				fprintf(stderr, "bulkwardenctl: %s add: %s given twice\n", e->cmd,
				    name);
				return RX_USAGE;
			}
		names[n] = name;
		vals[n++] = optarg;
	}
	if (argc - optind != 2)
		usage();
	names[0] = "sender";
	vals[0] = argv[optind];
	names[1] = "recipient";
	vals[1] = argv[optind + 1];
	if (!have_source) {
		names[n] = "source";
		vals[n++] = "cli";
	}
	if (!have_time) {
		names[n] = e->kind == BW_IO_CONSENT ? "granted_at" : "at";
		vals[n++] = now_text(now, sizeof(now));
	}
	if (e->kind == BW_IO_CONSENT) {
		if (!bw_io_consent_from_fields(names, vals, n, &e->norm, (int64_t)bw_clock_now(), &c, err,
			sizeof(err))) {
			fprintf(stderr, "bulkwardenctl: consent add: %s\n", err);
			return RX_USAGE;
		}
		if ((rc = rec_store(e, 0)) != RX_OK) {
			bw_consent_clear(&c);
			return rc;
		}
		bw_consent_key(c.sender, c.rcpt, key, sizeof(key));
		if ((json = bw_consent_to_json(&c)) == NULL)
			se = BW_STORE_NOMEM;
		else
			se = bw_store_put(e->st, BW_TBL_CONSENT, key, json);
		if (se == BW_STORE_OK) {
			line = bw_io_consent_line(&c, BW_IO_JSONL);
			consent_notes(e, &c);
		}
		bw_consent_clear(&c);
	} else {
		if (!bw_io_suppression_from_fields(names, vals, n, &e->norm, (int64_t)bw_clock_now(), &s,
			err, sizeof(err))) {
			fprintf(stderr, "bulkwardenctl: suppress add: %s\n", err);
			return RX_USAGE;
		}
		if ((rc = rec_store(e, 0)) != RX_OK) {
			bw_suppression_clear(&s);
			return rc;
		}
		bw_consent_key(s.sender, s.rcpt, key, sizeof(key));
		se = bw_suppress(e->st, &s);
		if (se == BW_STORE_OK)
			line = bw_io_suppression_line(&s, BW_IO_JSONL);
		bw_suppression_clear(&s);
	}
	free(json);
	if (se != BW_STORE_OK) {
		fprintf(stderr, "bulkwardenctl: %s add: %s\n", e->cmd, se == BW_STORE_NOMEM ?
		    "out of memory" : bw_store_last_error(e->st));
		return RX_STORE;
	}
	if (line)
		fputs(line, stdout);
	free(line);
	return RX_OK;
}

static int
rec_remove(rec_env *e, int argc, char **argv)
{
	char rcpt[BW_ADDR_MAX + 1], key[BW_STORE_KEY_MAX + 1];
	bw_store_err se;
	int rc;

	if (argc != 3)
		usage();
	if (!rec_sender_arg(e, argv[1]) || !rec_rcpt_arg(e, argv[2], rcpt))
		return RX_USAGE;
	if (!bw_consent_key(argv[1], rcpt, key, sizeof(key))) {
		fprintf(stderr, "bulkwardenctl: %s remove: sender and recipient too long\n", e->cmd);
		return RX_USAGE;
	}
	if ((rc = rec_store(e, 0)) != RX_OK)
		return rc;
	se = bw_store_del(e->st, rec_tbl(e->kind), key);
	if (se == BW_STORE_NOTFOUND) {
		fprintf(stderr, "bulkwardenctl: no %s record for %s\n", bw_io_kind_name(e->kind), key);
		return RX_SOME;
	}
	if (se != BW_STORE_OK) {
		fprintf(stderr, "bulkwardenctl: %s remove: %s\n", e->cmd, bw_store_last_error(e->st));
		return RX_STORE;
	}
	printf("removed %s %s\n", bw_io_kind_name(e->kind), key);
	return RX_OK;
}

/* consent|suppress SUBCOMMAND ... */
static int
cmd_records(bw_io_kind kind, int argc, char **argv)
{
	const char *cmd = argv[0], *sub;
	rec_env e;
	int rc;

	if (argc < 2)
		usage();
	sub = argv[1];
	argc--;
	argv++;
	if (strcmp(sub, "add") != 0 && strcmp(sub, "remove") != 0 && strcmp(sub, "show") != 0
	    && strcmp(sub, "import") != 0 && strcmp(sub, "export") != 0) {
		fprintf(stderr, "bulkwardenctl: %s: unknown subcommand \"%s\"\n", cmd, sub);
		usage();
	}
	if ((rc = rec_begin(&e, kind, cmd)) != RX_OK)
		return rec_end(&e, rc);
	if (strcmp(sub, "add") == 0)
		rc = rec_add(&e, argc, argv);
	else if (strcmp(sub, "remove") == 0)
		rc = rec_remove(&e, argc, argv);
	else if (strcmp(sub, "show") == 0)
		rc = rec_show(&e, argc, argv);
	else if (strcmp(sub, "import") == 0)
		rc = rec_import(&e, argc, argv);
	else
		rc = rec_export(&e, argc, argv);
	return rec_end(&e, rc);
}

/* forget RCPT */
static int
cmd_forget(int argc, char **argv)
{
	char rcpt[BW_ADDR_MAX + 1], hash[BW_ADDR_HASH_LEN + 1], err[512] = "";
	const bw_keyring *k;
	size_t n = 0;
	bw_store_err se;
	rec_env e;
	int rc;

	if (argc != 2)
		usage();
	if ((rc = rec_begin(&e, BW_IO_SUPPRESS, "forget")) != RX_OK)
		return rec_end(&e, rc);
	if ((k = rec_erasure(&e, true)) == NULL)
		return rec_end(&e, RX_USAGE);
	if (argv[1][0] == '#' || strncmp(argv[1], "*@", 2) == 0) {
		fprintf(stderr, "bulkwardenctl: forget: \"%.100s\" is not an address\n", argv[1]);
		return rec_end(&e, RX_USAGE);
	}
	if (!rec_rcpt_arg(&e, argv[1], rcpt))
		return rec_end(&e, RX_USAGE);
	if ((rc = rec_store(&e, 0)) != RX_OK)
		return rec_end(&e, rc);
	se = bw_forget(e.st, k, rcpt, &n, err, sizeof(err));
	if (se != BW_STORE_OK) {
		fprintf(stderr, "bulkwardenctl: forget %s: %s\n", rcpt, err[0] ? err :
		    bw_store_last_error(e.st));
		return rec_end(&e, RX_STORE);
	}
	bw_addr_hash(k, rcpt, hash);
	printf("forget %s: %zu records deleted; its suppressions are kept as %s\n", rcpt, n, hash);
	return rec_end(&e, RX_OK);
}

/* The policy of a token command, with its TokenKeyFile. */
static bw_policy *
token_policy(void)
{
	bw_policy *p = load_policy();

	if (p && p->token_keys == NULL) {
		fprintf(stderr, "bulkwardenctl: %s: no TokenKeyFile in the configuration\n", conf_path);
		bw_policy_unref(p);
		return NULL;
	}
	return p;
}

/* token make SENDER RCPT [--issued-at T] | token check TOKEN */
static int
cmd_token(int argc, char **argv)
{
	char tok[BW_TOKEN_MAX + 1], rcpt[BW_ADDR_MAX + 1], sender[BW_SENDER_MAX + 1], err[200];
	char t[40];
	int64_t issued = (int64_t)bw_clock_now();
	bw_token_status ts;
	bw_policy *p;
	int rc = 0;

	if (argc < 3 || (strcmp(argv[1], "make") == 0 && argc != 4 && argc != 6)
	    || (strcmp(argv[1], "check") == 0 && argc != 3))
		usage();
	if ((p = token_policy()) == NULL)
		return 2;
	if (strcmp(argv[1], "make") == 0) {
		bw_norm_opts no = { p->conf.fold_local_case, p->conf.fold_plus_tag };
		if (argc == 6 && (strcmp(argv[4], "--issued-at") != 0 || !bw_time_parse(argv[5], &issued))) {
			fprintf(stderr, "bulkwardenctl: token make: --issued-at wants an RFC 3339 time\n");
			rc = 2;
		} else if (!bw_sender_id_ok(argv[2])) {
			fprintf(stderr, "bulkwardenctl: token make: \"%.100s\" is not a sender id\n", argv[2]);
			rc = 2;
		} else if (!bw_addr_normalise(argv[3], &no, false, rcpt, sizeof(rcpt), err, sizeof(err))) {
			fprintf(stderr, "bulkwardenctl: token make: %.100s: %s\n", argv[3], err);
			rc = 2;
		} else if (!bw_token_make(p->token_keys, argv[2], rcpt, issued, tok, sizeof(tok))) {
			fprintf(stderr, "bulkwardenctl: token make: sender and recipient too long for a token\n");
			rc = 2;
		} else
			printf("%s\n", tok);
	} else if (strcmp(argv[1], "check") == 0) {
		ts = bw_token_verify(p->token_keys, argv[2], (int64_t)bw_clock_now(), (int64_t)p->conf.token_max_age,
		    sender, sizeof(sender), rcpt, sizeof(rcpt), &issued);
		bw_time_fmt(issued, t, sizeof(t));
		if (ts == BW_TOKEN_OK || ts == BW_TOKEN_EXPIRED || ts == BW_TOKEN_FUTURE)
			printf("%s sender=%s rcpt=%s issued=%s\n", bw_token_status_name(ts), sender, rcpt, t);
		else
			printf("%s\n", bw_token_status_name(ts));
		rc = ts == BW_TOKEN_OK ? 0 : 1;
	} else
		usage();
	bw_policy_unref(p);
	return rc;
}

/* unsubscribe TOKEN: what mail to the unsubscribe address would do */
static int
cmd_unsubscribe(int argc, char **argv)
{
	char why[600];
	bw_optout_result r;
	bw_policy *p;
	bw_store *st;

	if (argc != 2)
		usage();
	if ((p = token_policy()) == NULL)
		return 2;
	if ((st = open_store(p, 0)) == NULL) {
		bw_policy_unref(p);
		return 3;
	}
	r = bw_optout_token(p, st, argv[1], "cli", (int64_t)bw_clock_now(), NULL, 0, NULL, 0, why, sizeof(why));
	printf("%s: %s\n", bw_optout_name(r), why);
	bw_store_close(st);
	bw_policy_unref(p);
	return r == BW_OPTOUT_DONE || r == BW_OPTOUT_ALREADY ? 0 : r == BW_OPTOUT_STORE ? 3 : 1;
}

int
main(int argc, char **argv)
{
	int ch;
	const char *cmd;

#ifdef M_MXFAST
	mallopt(M_MXFAST, 0);   /* as the daemon: a scan costs what the milter's does */
#endif
	while ((ch = getopt(argc, argv, "+c:h")) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	bw_log_open("bulkwardenctl", false, LOG_MAIL, LOG_WARNING);
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check_config();
	if (strcmp(cmd, "config-keys") == 0)
		return cmd_config_keys();
	if (strcmp(cmd, "stats") == 0)
		return cmd_stats();
	if (strcmp(cmd, "scan") == 0)
		return cmd_scan(argc, argv);
	if (strcmp(cmd, "dump") == 0)
		return cmd_dump(argc, argv);
	if (strcmp(cmd, "restore") == 0)
		return cmd_restore(argc, argv);
	if (strcmp(cmd, "consent") == 0)
		return cmd_records(BW_IO_CONSENT, argc, argv);
	if (strcmp(cmd, "suppress") == 0)
		return cmd_records(BW_IO_SUPPRESS, argc, argv);
	if (strcmp(cmd, "forget") == 0)
		return cmd_forget(argc, argv);
	if (strcmp(cmd, "token") == 0)
		return cmd_token(argc, argv);
	if (strcmp(cmd, "unsubscribe") == 0)
		return cmd_unsubscribe(argc, argv);
	if (strcmp(cmd, "sender") == 0)
		return ctl_sender(conf_path, argc, argv);
	if (strcmp(cmd, "rate") == 0)
		return ctl_rate(conf_path, argc, argv);
	if (strcmp(cmd, "complaint") == 0)
		return ctl_complaint(conf_path, argc, argv);
	fprintf(stderr, "bulkwardenctl: unknown command \"%s\"\n", cmd);
	usage();
	return 2;
}
