/*
 * test_spf.c - SPF checks through the helper process, with records from
 * a zone file (libspf2's zone layer, no DNS): the results, and what a
 * crashed or hung helper costs (one answer, then a new helper).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

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
	bw_spf *s = bw_spf_new(zone, 5000);
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
	bw_spf *s = bw_spf_new(zone, 2000);
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
	bw_spf *s = bw_spf_new(zone, 2000);
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

int
main(void)
{
	Suite *su = suite_create("spf");
	TCase *tc = tcase_create("helper");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, zone_make, zone_rm);
	tcase_add_loop_test(tc, test_results, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(tc, test_crash_costs_one_answer);
	tcase_add_test(tc, test_bad_input);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
