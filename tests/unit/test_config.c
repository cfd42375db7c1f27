/*
 * test_config.c - the config table and reader, address lists, the policy
 * file, and the snapshot loader.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "netaddr.h"
#include "rules.h"

static char tmpdir[] = "/tmp/bwtest-config-XXXXXX";

static const char *
write_file(const char *name, const char *text)
{
	static char path[8][512];
	static int k;
	char *p = path[k++ % 8];
	FILE *fp;

	snprintf(p, 512, "%s/%s", tmpdir, name);
	fp = fopen(p, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
	return p;
}

static bool
errs_have(const bw_errs *e, const char *needle)
{
	for (size_t i = 0; i < e->n; i++)
		if (strstr(e->msg[i], needle))
			return true;
	return false;
}

/* ---------------------------------------------------------------- table */

START_TEST(defaults_parse)
{
	bw_conf c;

	bw_conf_defaults(&c);
	ck_assert_str_eq(c.socket, "inet:8895@127.0.0.1");
	ck_assert_uint_eq(c.map_size, 1024ULL * 1024 * 1024);
	ck_assert_uint_eq(c.max_body_scan, 10ULL * 1024 * 1024);
	ck_assert_uint_eq(c.max_header_bytes, 64 * 1024);
	ck_assert_uint_eq(c.max_header_line, 16 * 1024);
	ck_assert_uint_eq(c.max_mime_depth, 32);
	ck_assert_uint_eq(c.max_mime_parts, 1000);
	ck_assert_uint_eq(c.max_html_depth, 256);
	ck_assert_uint_eq(c.max_links, 10000);
	ck_assert_uint_eq(c.max_url_length, 8192);
	ck_assert_int_eq(c.mode, BW_MODE_ENFORCE);
	ck_assert_int_eq(c.on_store_error, BW_ON_TEMPFAIL);
	ck_assert_int_eq(c.on_limit, BW_ON_TEMPFAIL);
	ck_assert(c.require_body_link);
	ck_assert(!c.require_one_click);
	ck_assert_uint_eq(c.stats_interval, 10);
	bw_conf_free(&c);
}
END_TEST

START_TEST(sizes_and_times)
{
	static const struct { const char *in; bool ok; uint64_t v; } sz[] = {
		{ "10M", true, 10485760 }, { "64K", true, 65536 }, { "1g", true, 1073741824 },
		{ "512", true, 512 }, { "", false, 0 }, { "M", false, 0 }, { "10MB", false, 0 },
		{ "-1", false, 0 }, { "99999999999999999999", false, 0 },
	};
	static const struct { const char *in; bool ok; uint64_t v; } tm[] = {
		{ "30s", true, 30 }, { "5m", true, 300 }, { "1h", true, 3600 }, { "7d", true, 604800 },
		{ "2w", true, 1209600 }, { "10", true, 10 }, { "1y", true, 31536000 }, { "1x", false, 0 },
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
		ck_assert_msg(bw_parse_size(sz[i].in, &v) == sz[i].ok, "size %s", sz[i].in);
		if (sz[i].ok)
			ck_assert_uint_eq(v, sz[i].v);
	}
	for (size_t i = 0; i < sizeof(tm) / sizeof(tm[0]); i++) {
		ck_assert_msg(bw_parse_seconds(tm[i].in, &v) == tm[i].ok, "time %s", tm[i].in);
		if (tm[i].ok)
			ck_assert_uint_eq(v, tm[i].v);
	}
}
END_TEST

START_TEST(read_good_file)
{
	bw_conf c;
	bw_errs e = { 0 };
	const char *f = write_file("good.conf",
	    "# comment\n"
	    "Socket   unix:/run/bulkwarden/bulkwarden.sock\n"
	    "\n"
	    "mode monitor   # trailing comment\n"
	    "MaxBodyScan 2M\n"
	    "InternalHosts 10.0.0.0/8, 192.0.2.1\n"
	    "RequireOneClick yes\n"
	    "PidFile \"\"\n"
	    "StatsInterval 1m\n");

	bw_conf_defaults(&c);
	ck_assert(bw_conf_read(&c, f, &e));
	ck_assert_uint_eq(e.n, 0);
	ck_assert_str_eq(c.socket, "unix:/run/bulkwarden/bulkwarden.sock");
	ck_assert_int_eq(c.mode, BW_MODE_MONITOR);
	ck_assert_uint_eq(c.max_body_scan, 2 * 1024 * 1024);
	ck_assert_str_eq(c.internal_hosts, "10.0.0.0/8, 192.0.2.1");
	ck_assert(c.require_one_click);
	ck_assert_str_eq(c.pid_file, "");
	ck_assert_uint_eq(c.stats_interval, 60);
	bw_conf_free(&c);
}
END_TEST

/* every error names file:line and what is wrong */
static const struct {
	const char *line;
	const char *want;
} bad_lines[] = {
	{ "Sockett inet:1@127.0.0.1", ":2: unknown key \"Sockett\" (did you mean Socket?)" },
	{ "Mode enforcing", ":2: Mode: bad value \"enforcing\": expected one of enforce|monitor" },
	{ "Syslog maybe", ":2: Syslog: bad value \"maybe\": expected yes or no" },
	{ "MaxMimeDepth 0", ":2: MaxMimeDepth: 0 is out of range (1 to 1000)" },
	{ "MaxBodyScan ten", ":2: MaxBodyScan: bad value \"ten\": expected a size" },
	{ "StatsInterval 1x", ":2: StatsInterval: bad value \"1x\": expected a time" },
	{ "Socket 8895", ":2: Socket: \"8895\" is not unix:/path or inet:port@host" },
	{ "Store /var/lib/x", ":2: Store: \"/var/lib/x\" is not lmdb:/directory" },
	{ "SyslogFacility mial", ":2: SyslogFacility: unknown facility \"mial\"" },
	{ "OnStoreError reject", ":2: OnStoreError: bad value \"reject\": expected one of tempfail|accept" },
	{ "AutoRestartRate often", ":2: AutoRestartRate: \"often\" is not n/time" },
	{ "SpfNameservers 192.0.2.1,dns.example", ":2: SpfNameservers: \"192.0.2.1,dns.example\": want IPv4" },
	{ "ReporterNameservers 192.0.2.x", ":2: ReporterNameservers: \"192.0.2.x\": want IPv4" },
	{ "ReporterNameservers 192.0.2.1,192.0.2.2,192.0.2.3,192.0.2.4",
	  ":2: ReporterNameservers: \"192.0.2.1,192.0.2.2,192.0.2.3,192.0.2.4\": want IPv4" },
	{ "BulkRecipients", ":2: BulkRecipients needs a value" },
};

START_TEST(read_bad_line)
{
	bw_conf c;
	bw_errs e = { 0 };
	char text[256], want[512];
	const char *f;

	snprintf(text, sizeof(text), "LogLevel debug\n%s\n", bad_lines[_i].line);
	f = write_file("bad.conf", text);
	bw_conf_defaults(&c);
	ck_assert(!bw_conf_read(&c, f, &e));
	snprintf(want, sizeof(want), "%s%s", f, bad_lines[_i].want);
	ck_assert_msg(e.n == 1 && strncmp(e.msg[0], want, strlen(want)) == 0,
	    "got \"%s\", want \"%s\"", e.n ? e.msg[0] : "(nothing)", want);
	bw_errs_free(&e);
	bw_conf_free(&c);
}
END_TEST

/* name server lists: commas or white space between, quoted or not */
START_TEST(read_nameservers)
{
	bw_conf c;
	bw_errs e = { 0 };
	const char *f = write_file("ns.conf", "SpfNameservers 192.0.2.1,192.0.2.2\n"
	    "ReporterNameservers \"192.0.2.3, 192.0.2.4 192.0.2.5\"\n");

	bw_conf_defaults(&c);
	ck_assert_msg(bw_conf_read(&c, f, &e), "%s", e.n ? e.msg[0] : "");
	ck_assert_str_eq(c.spf_nameservers, "192.0.2.1,192.0.2.2");
	ck_assert_str_eq(c.reporter_nameservers, "192.0.2.3, 192.0.2.4 192.0.2.5");
	bw_errs_free(&e);
	bw_conf_free(&c);
}
END_TEST

START_TEST(every_error_reported)
{
	bw_conf c;
	bw_errs e = { 0 };
	const char *f = write_file("many.conf", "Mode x\nFoo 1\nMode enforce\nMode monitor\n");

	bw_conf_defaults(&c);
	ck_assert(!bw_conf_read(&c, f, &e));
	ck_assert_uint_eq(e.n, 4);
	ck_assert(errs_have(&e, ":1: Mode: bad value"));
	ck_assert(errs_have(&e, ":2: unknown key \"Foo\""));
	ck_assert(errs_have(&e, ":3: Mode given again (first at line 1)"));
	ck_assert(errs_have(&e, ":4: Mode given again (first at line 1)"));
	bw_errs_free(&e);
	bw_conf_free(&c);
}
END_TEST

START_TEST(unreloadable_change_named)
{
	bw_conf a, b;
	bw_errs e = { 0 };

	bw_conf_defaults(&a);
	bw_conf_defaults(&b);
	free(b.socket);
	b.socket = strdup("unix:/tmp/x.sock");
	b.mode = BW_MODE_MONITOR;     /* reloadable: not named */
	bw_conf_diff_unreloadable(&a, &b, &e);
	ck_assert_uint_eq(e.n, 1);
	ck_assert(errs_have(&e, "Socket changed: restart required"));
	bw_errs_free(&e);
	bw_conf_free(&a);
	bw_conf_free(&b);
}
END_TEST

/* The sample file and the man page list exactly the keys of the table. */
static void
check_lists_every_key(const char *path, const char *before, const char *after)
{
	FILE *fp = fopen(path, "r");
	char *text;
	long n;

	ck_assert_msg(fp != NULL, "cannot open %s", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	text = calloc(1, (size_t)n + 1);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	for (size_t i = 0; i < bw_conf_nkeys; i++) {
		char want[128];
		snprintf(want, sizeof(want), "%s%s%s", before, bw_conf_keys[i].name, after);
		ck_assert_msg(strstr(text, want) != NULL, "%s does not list %s", path, bw_conf_keys[i].name);
	}
	free(text);
}

START_TEST(sample_lists_every_key)
{
	check_lists_every_key(TEST_CONF "/bulkwarden.conf", "\n# ", " ");
}
END_TEST

START_TEST(manpage_lists_every_key)
{
	check_lists_every_key(TEST_CONF "/../man/bulkwarden.conf.5", "\n.B ", "\n");
}
END_TEST

/* ---------------------------------------------------------------- netaddr */

START_TEST(netlist_match)
{
	bw_errs e = { 0 };
	bw_netlist *l = bw_netlist_parse("127.0.0.1, 10.0.0.0/8 192.168.1.0/24,2001:db8::/32,::1", "t", &e);
	static const struct { const char *a; bool in; } rows[] = {
		{ "127.0.0.1", true }, { "127.0.0.2", false }, { "10.200.3.4", true },
		{ "11.0.0.1", false }, { "192.168.1.255", true }, { "192.168.2.1", false },
		{ "2001:db8:1::5", true }, { "2001:db9::1", false }, { "::1", true },
		{ "::ffff:10.1.2.3", true }, { "IPv6:::1", true }, { "", false }, { "junk", false },
	};

	ck_assert_ptr_nonnull(l);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		ck_assert_msg(bw_netlist_match(l, rows[i].a) == rows[i].in, "%s", rows[i].a);
	ck_assert(!bw_netlist_match(l, NULL));
	bw_netlist_free(l);
}
END_TEST

START_TEST(netlist_errors)
{
	bw_errs e = { 0 };
	const char *f = write_file("hosts", "# internal\n10.0.0.0/8\n10.0.0.0/33\n300.1.1.1\n");

	ck_assert_ptr_null(bw_netlist_parse("10.0.0.1, 10.0.0.0/x", "bw.conf:4", &e));
	ck_assert(errs_have(&e, "bw.conf:4: bad prefix length in \"10.0.0.0/x\""));
	bw_errs_free(&e);
	ck_assert_ptr_null(bw_netlist_parse(f, "bw.conf:4", &e));
	ck_assert_uint_eq(e.n, 2);
	ck_assert(errs_have(&e, "hosts:3: bad prefix length"));
	ck_assert(errs_have(&e, "hosts:4: not an IP address or CIDR range: \"300.1.1.1\""));
	bw_errs_free(&e);
}
END_TEST

/* ---------------------------------------------------------------- rules */

START_TEST(rules_classify)
{
	bw_errs e = { 0 };
	const char *f = write_file("policy",
	    "bulk-sender news@example.com\n"
	    "bulk-sender @lists.example.org\n"
	    "bulk-sender @.example.net\n"
	    "bulk-sender auth:campaigns\n"
	    "transactional-sender receipts@lists.example.org\n"
	    "exempt-recipient abuse@example.com\n");
	bw_rules *r = bw_rules_load(f, &e);

	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(bw_rules_count(r), 6);
	ck_assert_int_eq(bw_rules_sender(r, "News@Example.COM", NULL), BW_SENDER_BULK);
	ck_assert_int_eq(bw_rules_sender(r, "x@lists.example.org", NULL), BW_SENDER_BULK);
	ck_assert_int_eq(bw_rules_sender(r, "x@sub.lists.example.org", NULL), BW_SENDER_UNKNOWN);
	ck_assert_int_eq(bw_rules_sender(r, "x@example.net", NULL), BW_SENDER_BULK);
	ck_assert_int_eq(bw_rules_sender(r, "x@a.b.example.net", NULL), BW_SENDER_BULK);
	ck_assert_int_eq(bw_rules_sender(r, "x@badexample.net", NULL), BW_SENDER_UNKNOWN);
	ck_assert_int_eq(bw_rules_sender(r, "x@other.test", "campaigns"), BW_SENDER_BULK);
	ck_assert_int_eq(bw_rules_sender(r, "receipts@lists.example.org", NULL), BW_SENDER_TRANSACTIONAL);
	ck_assert_int_eq(bw_rules_sender(r, "", NULL), BW_SENDER_UNKNOWN);
	ck_assert(bw_rules_exempt_rcpt(r, "ABUSE@example.com"));
	ck_assert(!bw_rules_exempt_rcpt(r, "abuse@example.org"));
	bw_rules_free(r);
}
END_TEST

START_TEST(rules_errors)
{
	bw_errs e = { 0 };
	const char *f = write_file("policy.bad",
	    "bulk-sender news@example.com\n"
	    "bulk-sendr x@example.com\n"
	    "bulk-sender\n"
	    "bulk-sender a@b c@d\n"
	    "exempt-recipient nobody\n");

	ck_assert_ptr_null(bw_rules_load(f, &e));
	ck_assert_uint_eq(e.n, 4);
	ck_assert(errs_have(&e, "policy.bad:2: unknown directive \"bulk-sendr\""));
	ck_assert(errs_have(&e, "policy.bad:3: bulk-sender takes one pattern"));
	ck_assert(errs_have(&e, "policy.bad:4: bulk-sender takes one pattern"));
	ck_assert(errs_have(&e, "policy.bad:5: bad pattern \"nobody\""));
	bw_errs_free(&e);
}
END_TEST

/* ---------------------------------------------------------------- snapshot */

START_TEST(policy_load_and_refs)
{
	bw_errs e = { 0 };
	char text[1024];
	bw_policy *p, *q;

	snprintf(text, sizeof(text), "PhraseFile %s/unsubscribe-phrases\nPolicyFile %s\n"
	    "InternalHosts 10.0.0.0/8\n", TEST_CONF, write_file("p1", "bulk-sender @example.com\n"));
	p = bw_policy_load(write_file("ok.conf", text), &e);
	ck_assert_msg(p != NULL, "%s", e.n ? e.msg[0] : "");
	q = bw_policy_load(write_file("ok.conf", text), &e);
	ck_assert_ptr_nonnull(q);
	ck_assert(q->generation > p->generation);
	ck_assert(bw_netlist_match(p->internal, "10.9.9.9"));
	ck_assert_int_eq(bw_rules_sender(p->rules, "a@example.com", NULL), BW_SENDER_BULK);
	bw_policy_ref(p);
	bw_policy_unref(p);
	bw_policy_unref(p);
	bw_policy_unref(q);
}
END_TEST

START_TEST(policy_load_collects_all_files_errors)
{
	bw_errs e = { 0 };
	char text[1024];
	const char *pf = write_file("p2", "bulk-sender nobody\n");

	snprintf(text, sizeof(text), "PhraseFile %s/no-such-file\nPolicyFile %s\n"
	    "InternalHosts 10.0.0.0/88\n", tmpdir, pf);
	ck_assert_ptr_null(bw_policy_load(write_file("bad2.conf", text), &e));
	ck_assert(errs_have(&e, "InternalHosts: bad prefix length"));
	ck_assert(errs_have(&e, "p2:1: bad pattern"));
	ck_assert(errs_have(&e, "no-such-file"));
	bw_errs_free(&e);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *t = tcase_create("config");

	tcase_add_test(t, defaults_parse);
	tcase_add_test(t, sizes_and_times);
	tcase_add_test(t, read_good_file);
	tcase_add_loop_test(t, read_bad_line, 0, sizeof(bad_lines) / sizeof(bad_lines[0]));
	tcase_add_test(t, read_nameservers);
	tcase_add_test(t, every_error_reported);
	tcase_add_test(t, unreloadable_change_named);
	tcase_add_test(t, sample_lists_every_key);
	tcase_add_test(t, manpage_lists_every_key);
	tcase_add_test(t, netlist_match);
	tcase_add_test(t, netlist_errors);
	tcase_add_test(t, rules_classify);
	tcase_add_test(t, rules_errors);
	tcase_add_test(t, policy_load_and_refs);
	tcase_add_test(t, policy_load_collects_all_files_errors);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;
	char cmd[600];

	if (mkdtemp(tmpdir) == NULL)
		return 1;
	sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return failed ? 1 : 0;
}
