/*
 * bulkwardenctl.c - the admin tool: check the configuration, lint message
 * files with the same policy as the daemon, read the counters, dump and
 * restore the store.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "log.h"
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
	    "  restore [FILE]               read JSON lines into the store (all or nothing)\n");
	exit(2);
}

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
	if ((m = bw_msg_new(p, NULL, time(NULL))) == NULL) {
		fprintf(stderr, "bulkwardenctl: out of memory\n");
		close(fd);
		return -1;
	}
	bw_msg_connect(m, "", NULL);
	if (bulk >= 0)
		bw_msg_force_bulk(m, bulk == 1);
	a = bw_msg_feed_file(m, data, (size_t)sb.st_size, chunk, &v);
	(void)a;
	fputs(text ? bw_msg_report_text(m, file) : bw_msg_report_json(m, file), stdout);
	if (!text)
		fputc('\n', stdout);
	refused = strstr(bw_msg_report_json(m, file), "\"verdict\":\"refuse\"") != NULL;
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

int
main(int argc, char **argv)
{
	int ch;
	const char *cmd;

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
	fprintf(stderr, "bulkwardenctl: unknown command \"%s\"\n", cmd);
	usage();
	return 2;
}
