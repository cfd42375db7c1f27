/*
 * test_spf.c - SPF checks through the helper process, with records from
 * a zone file (libspf2's zone layer, no DNS): the results, and what a
 * crashed or hung helper costs (one answer, then a new helper). Then the
 * same through DNS at name servers of the configuration's choice
 * (SpfNameservers): a small name server of our own, in a thread, answers
 * the helper's questions; and how the key is checked as the file is read.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "config.h"
#include "spf.h"

static char zone[256];

static void
zone_make(void)
{
	const char *tmp = getenv("TMPDIR");
	FILE *fp;
	int fd;

	snprintf(zone, sizeof(zone), "%s/bw-spf-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
	ck_assert((fd = mkstemp(zone)) >= 0);
	ck_assert((fp = fdopen(fd, "w")) != NULL);
	fprintf(fp, "# domain TXT\n"
	    "example.com v=spf1 ip4:10.1.2.3 ip6:2001:db8::/32 -all\n"
	    "soft.example v=spf1 ip4:10.1.2.3 ~all\n"
	    "neutral.example v=spf1 ?all\n"
	    "loop.example v=spf1 include:loop.example -all\n");
	fclose(fp);
}

static void
zone_rm(void)
{
	unlink(zone);
}

static const struct {
	const char *ip, *from;
	bw_spf_result want;
} rows[] = {
	{ "10.1.2.3", "news@example.com", BW_SPF_PASS },
	{ "10.9.9.9", "news@example.com", BW_SPF_FAIL },
	{ "2001:db8::5", "news@example.com", BW_SPF_PASS },
	{ "2001:db9::5", "news@example.com", BW_SPF_FAIL },
	{ "10.9.9.9", "news@soft.example", BW_SPF_SOFTFAIL },
	{ "10.9.9.9", "news@neutral.example", BW_SPF_NEUTRAL },
	{ "10.9.9.9", "news@nothing.example", BW_SPF_NONE },
	{ "10.9.9.9", "news@loop.example", BW_SPF_PERMERROR },
};

START_TEST(test_results)
{
	bw_spf *s = bw_spf_new(zone, NULL, 5000);
	char why[200];
	bw_spf_result r;

	ck_assert_ptr_nonnull(s);
	r = bw_spf_check(s, rows[_i].ip, "client.example.com", rows[_i].from, why, sizeof(why));
	ck_assert_msg(r == rows[_i].want, "%s from %s: %s (%s), want %s", rows[_i].from, rows[_i].ip,
	    bw_spf_result_name(r), why, bw_spf_result_name(rows[_i].want));
	bw_spf_free(s);
}
END_TEST

START_TEST(test_crash_costs_one_answer)
{
	bw_spf *s = bw_spf_new(zone, NULL, 2000);
	char why[200];
	pid_t pid;

	ck_assert_int_eq(bw_spf_check(s, "10.1.2.3", "h", "a@example.com", why, sizeof(why)), BW_SPF_PASS);
	pid = bw_spf_pid(s);
	ck_assert_int_gt(pid, 0);
	/* the helper dies: the next answer is an error, the one after works */
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	usleep(100000);
	ck_assert_int_eq(bw_spf_check(s, "10.1.2.3", "h", "a@example.com", why, sizeof(why)), BW_SPF_ERROR);
	ck_assert_msg(strstr(why, "SPF helper"), "%s", why);
	ck_assert_int_eq(bw_spf_check(s, "10.1.2.3", "h", "a@example.com", why, sizeof(why)), BW_SPF_PASS);
	ck_assert_int_ne(bw_spf_pid(s), pid);
	/* the helper hangs: cut off after the timeout, then a new one */
	pid = bw_spf_pid(s);
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
	ck_assert_int_eq(bw_spf_check(s, "10.1.2.3", "h", "a@example.com", why, sizeof(why)), BW_SPF_ERROR);
	ck_assert_msg(strstr(why, "did not answer in 2000 ms"), "%s", why);
	ck_assert_int_eq(bw_spf_check(s, "10.9.9.9", "h", "a@example.com", why, sizeof(why)), BW_SPF_FAIL);
	bw_spf_free(s);
}
END_TEST

START_TEST(test_bad_input)
{
	bw_spf *s = bw_spf_new(zone, NULL, 2000);
	char why[200], big[700];

	ck_assert_int_eq(bw_spf_check(s, "not-an-ip", "h", "a@example.com", why, sizeof(why)),
	    BW_SPF_PERMERROR);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	ck_assert_int_eq(bw_spf_check(s, "10.1.2.3", "h", big, why, sizeof(why)), BW_SPF_PERMERROR);
	/* still answering */
	ck_assert_int_eq(bw_spf_check(s, "10.1.2.3", "h", "a@example.com", why, sizeof(why)), BW_SPF_PASS);
	bw_spf_free(s);
}
END_TEST

/* ---------------------------------------------------------------- SpfNameservers */

/* The name server: port 53 (the only port SpfNameservers names) on an
 * address of its own. Binding it needs root; without, the DNS tests say
 * so and pass. */
#define NS_ADDR "127.83.80.70"

static const struct {
	const char *name;
	int type;          /* ns_t_*; 0 with an rcode: every question for the name */
	int rcode;
	const char *data;  /* TXT: strings split at '|'; A, AAAA: an address; MX, PTR: a name */
} ns_zone[] = {
	{ "multi.example", ns_t_txt, 0, "v=spf1 ip4:10.1.2.3| -all" },
	{ "multi.example", ns_t_txt, 0, "site-verification=abc" },
	{ "mx.example", ns_t_txt, 0, "v=spf1 mx -all" },
	{ "mx.example", ns_t_mx, 0, "mail.mx.example" },
	{ "mail.mx.example", ns_t_a, 0, "10.5.5.5" },
	{ "aaaa.example", ns_t_txt, 0, "v=spf1 a -all" },
	{ "aaaa.example", ns_t_aaaa, 0, "2001:db8::7" },
	{ "ptr.example", ns_t_txt, 0, "v=spf1 ptr -all" },
	{ "6.6.6.10.in-addr.arpa", ns_t_ptr, 0, "host.ptr.example" },
	{ "host.ptr.example", ns_t_a, 0, "10.6.6.6" },
	{ "empty.example", ns_t_a, 0, "10.7.7.7" },
	{ "broken.example", 0, ns_r_servfail, NULL },
};

static int ns_fd = -1;
static pthread_t ns_thread;

static size_t
ns_put_name(unsigned char *p, const char *name)
{
	size_t o = 0;

	while (*name) {
		size_t l = strcspn(name, ".");

		p[o++] = (unsigned char)l;
		memcpy(p + o, name, l);
		o += l;
		name += l + (name[l] == '.');
	}
	p[o++] = 0;
	return o;
}

/* The answer section's records of ns_zone[i] at r + o; the new end. */
static size_t
ns_put_rr(unsigned char *r, size_t o, size_t i)
{
	const char *d = ns_zone[i].data;
	size_t len = o + 12, n;

	r[o] = 0xc0;   /* the name: the question's */
	r[o + 1] = 12;
	r[o + 2] = 0;
	r[o + 3] = (unsigned char)ns_zone[i].type;
	r[o + 4] = 0;
	r[o + 5] = ns_c_in;
	memcpy(r + o + 6, "\0\0\0\x3c", 4);   /* TTL 60 */
	switch (ns_zone[i].type) {
	case ns_t_a:
		inet_pton(AF_INET, d, r + len);
		len += 4;
		break;
	case ns_t_aaaa:
		inet_pton(AF_INET6, d, r + len);
		len += 16;
		break;
	case ns_t_mx:
		r[len++] = 0;
		r[len++] = 10;
		len += ns_put_name(r + len, d);
		break;
	case ns_t_ptr:
		len += ns_put_name(r + len, d);
		break;
	case ns_t_txt:
		while (*d) {
			n = strcspn(d, "|");
			r[len++] = (unsigned char)n;
			memcpy(r + len, d, n);
			len += n;
			d += n + (d[n] == '|');
		}
		break;
	}
	n = len - o - 12;
	r[o + 10] = (unsigned char)(n >> 8);
	r[o + 11] = (unsigned char)n;
	return len;
}

static void *
ns_serve(void *arg)
{
	unsigned char q[512], r[2048];

	(void)arg;
	for (;;) {
		struct sockaddr_in peer;
		socklen_t pl = sizeof(peer);
		ssize_t n = recvfrom(ns_fd, q, sizeof(q), 0, (struct sockaddr *)&peer, &pl);
		char name[256];
		size_t o = 12, nl = 0;
		int type, rcode = ns_r_nxdomain, an = 0;

		if (n <= 0)
			return NULL;   /* shut down */
		while (o < (size_t)n && q[o] != 0 && o + 1 + q[o] <= (size_t)n && nl + q[o] + 1 < sizeof(name)) {
			if (nl)
				name[nl++] = '.';
			memcpy(name + nl, q + o + 1, q[o]);
			nl += q[o];
			o += 1 + q[o];
		}
		name[nl] = 0;
		if (n < 12 || o + 5 > (size_t)n)
			continue;
		type = q[o + 1] << 8 | q[o + 2];
		o += 5;
		memcpy(r, q, o);
		r[2] = 0x84 | (q[2] & 1);       /* a response, authoritative, RD as asked */
		memset(r + 6, 0, 6);            /* no records yet, no OPT */
		for (size_t i = 0; i < sizeof(ns_zone) / sizeof(ns_zone[0]); i++) {
			if (strcasecmp(ns_zone[i].name, name) != 0)
				continue;
			rcode = ns_zone[i].rcode;   /* the name exists */
			if (rcode != 0)
				break;
			if (ns_zone[i].type == type) {
				o = ns_put_rr(r, o, i);
				an++;
			}
		}
		r[3] = (unsigned char)rcode;
		r[7] = (unsigned char)an;
		sendto(ns_fd, r, o, 0, (struct sockaddr *)&peer, pl);
	}
}

static void
ns_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(53) };

	inet_pton(AF_INET, NS_ADDR, &a.sin_addr);
	if ((ns_fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		return;
	if (bind(ns_fd, (struct sockaddr *)&a, sizeof(a)) != 0
	    || pthread_create(&ns_thread, NULL, ns_serve, NULL) != 0) {
		fprintf(stderr, "# cannot serve DNS on %s:53 (%s): the SpfNameservers tests are skipped\n",
		    NS_ADDR, strerror(errno));
		close(ns_fd);
		ns_fd = -1;
	}
}

static void
ns_stop(void)
{
	if (ns_fd < 0)
		return;
	shutdown(ns_fd, SHUT_RDWR);
	pthread_join(ns_thread, NULL);
	close(ns_fd);
	ns_fd = -1;
}

static const struct {
	const char *ip, *from;
	bw_spf_result want;
} dns_rows[] = {
	{ "10.1.2.3", "news@multi.example", BW_SPF_PASS },      /* TXT strings joined */
	{ "10.9.9.9", "news@multi.example", BW_SPF_FAIL },
	{ "10.5.5.5", "news@mx.example", BW_SPF_PASS },         /* MX, then A */
	{ "10.5.5.6", "news@mx.example", BW_SPF_FAIL },
	{ "2001:db8::7", "news@aaaa.example", BW_SPF_PASS },    /* AAAA */
	{ "2001:db8::8", "news@aaaa.example", BW_SPF_FAIL },
	{ "10.6.6.6", "news@ptr.example", BW_SPF_PASS },        /* PTR, then A */
	{ "10.6.6.7", "news@ptr.example", BW_SPF_FAIL },
	{ "10.9.9.9", "news@gone.example", BW_SPF_NONE },       /* NXDOMAIN */
	{ "10.9.9.9", "news@empty.example", BW_SPF_NONE },      /* no TXT record */
	{ "10.9.9.9", "news@broken.example", BW_SPF_TEMPERROR }, /* SERVFAIL */
};

START_TEST(test_nameservers)
{
	bw_spf *s;
	char why[200];
	bw_spf_result r;

	if (ns_fd < 0)
		return;
	ck_assert_ptr_nonnull(s = bw_spf_new(NULL, NS_ADDR, 5000));
	r = bw_spf_check(s, dns_rows[_i].ip, "client.example.com", dns_rows[_i].from, why, sizeof(why));
	ck_assert_msg(r == dns_rows[_i].want, "%s from %s: %s (%s), want %s", dns_rows[_i].from,
	    dns_rows[_i].ip, bw_spf_result_name(r), why, bw_spf_result_name(dns_rows[_i].want));
	if (r == BW_SPF_TEMPERROR)   /* libspf2's sentence, for the log */
		ck_assert_msg(strstr(why, "broken.example") != NULL, "%s", why);
	bw_spf_free(s);
}
END_TEST

START_TEST(test_nameservers_after_zone)
{
	bw_spf *s = bw_spf_new(zone, NS_ADDR, 5000);
	char why[200];

	/* with a zone file, the name servers are not asked */
	ck_assert_int_eq(bw_spf_check(s, "10.1.2.3", "h", "a@example.com", why, sizeof(why)), BW_SPF_PASS);
	ck_assert_int_eq(bw_spf_check(s, "10.1.2.3", "h", "a@multi.example", why, sizeof(why)), BW_SPF_NONE);
	bw_spf_free(s);
}
END_TEST

START_TEST(test_nameservers_parse)
{
	bw_spf *s;

	ck_assert_ptr_null(bw_spf_new(NULL, "ns.example", 2000));
	ck_assert_ptr_null(bw_spf_new(NULL, "192.0.2.1,192.0.2.2,192.0.2.3,192.0.2.4", 2000));
	ck_assert_ptr_nonnull(s = bw_spf_new(NULL, "192.0.2.1, 192.0.2.2 192.0.2.3", 2000));
	bw_spf_free(s);
	ck_assert_ptr_nonnull(s = bw_spf_new(NULL, "", 2000));
	bw_spf_free(s);
}
END_TEST

/* SpfNameservers is checked as the file is read: file:line and what is wrong */
START_TEST(test_nameservers_key)
{
	static const struct {
		const char *line, *want;   /* want: NULL for no error */
	} rows[] = {
		{ "SpfNameservers 192.0.2.1, 192.0.2.2", NULL },
		{ "SpfNameservers \"\"", NULL },
		{ "SpfNameservers 192.0.2.1,ns.example",
		  ":2: SpfNameservers: \"192.0.2.1,ns.example\": want IPv4 addresses, separated by commas" },
		{ "SpfNameservers 2001:db8::53", ":2: SpfNameservers: \"2001:db8::53\": want IPv4" },
		{ "SpfNameservers 192.0.2.1,192.0.2.2,192.0.2.3,192.0.2.4", ":2: SpfNameservers: " },
	};
	char conf[256], want[512];
	FILE *fp;
	int fd;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bw_conf c;
		bw_errs e = { 0 };
		bool ok;

		snprintf(conf, sizeof(conf), "%s/bw-spf-conf-XXXXXX", P_tmpdir);
		ck_assert((fd = mkstemp(conf)) >= 0);
		ck_assert((fp = fdopen(fd, "w")) != NULL);
		fprintf(fp, "LogLevel debug\n%s\n", rows[i].line);
		fclose(fp);
		bw_conf_defaults(&c);
		ok = bw_conf_read(&c, conf, &e);
		unlink(conf);
		if (rows[i].want == NULL) {
			ck_assert_msg(ok && e.n == 0, "%s: %s", rows[i].line, e.n ? e.msg[0] : "?");
		} else {
			snprintf(want, sizeof(want), "%s%s", conf, rows[i].want);
			ck_assert_msg(!ok && e.n == 1 && strncmp(e.msg[0], want, strlen(want)) == 0,
			    "got \"%s\", want \"%s\"", e.n ? e.msg[0] : "(nothing)", want);
		}
		bw_errs_free(&e);
		bw_conf_free(&c);
	}
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("spf");
	TCase *tc = tcase_create("helper");
	TCase *tn = tcase_create("nameservers");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, zone_make, zone_rm);
	tcase_add_loop_test(tc, test_results, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, test_crash_costs_one_answer);
	tcase_add_test(tc, test_bad_input);
	suite_add_tcase(su, tc);
	tcase_set_timeout(tn, 30);
	tcase_add_checked_fixture(tn, zone_make, zone_rm);
	tcase_add_checked_fixture(tn, ns_start, ns_stop);
	tcase_add_loop_test(tn, test_nameservers, 0, (int)(sizeof(dns_rows) / sizeof(dns_rows[0])));
	tcase_add_test(tn, test_nameservers_after_zone);
	tcase_add_test(tn, test_nameservers_parse);
	tcase_add_test(tn, test_nameservers_key);
	suite_add_tcase(su, tn);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
