/*
 * test_oneclick.c - the one-click listener's address syntax, socket and
 * per-client rate limiter (the HTTP side is tests/milter/oneclick.sh).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oneclick.h"

/* ---------------------------------------------------------------- OneClickListen */

static const struct {
	const char *spec;
	int family;        /* 0: refused */
	unsigned port;
	const char *err;   /* part of the reason when refused */
} listen_cases[] = {
	{ "127.0.0.1:8025", AF_INET, 8025, NULL },
	{ "0.0.0.0:25", AF_INET, 25, NULL },
	{ "192.0.2.1:65535", AF_INET, 65535, NULL },
	{ "[::1]:8025", AF_INET6, 8025, NULL },
	{ "[::]:1", AF_INET6, 1, NULL },
	{ "[2001:db8::5]:443", AF_INET6, 443, NULL },
	{ "", 0, 0, "empty" },
	{ "127.0.0.1", 0, 0, "address:port" },
	{ "127.0.0.1:", 0, 0, "port" },
	{ "127.0.0.1:0", 0, 0, "1 to 65535" },
	{ "127.0.0.1:65536", 0, 0, "1 to 65535" },
	{ "127.0.0.1:80x", 0, 0, "port" },
	{ "127.0.0.1:-80", 0, 0, "port" },
	{ "127.0.0.1: 80", 0, 0, "port" },
	{ ":8025", 0, 0, "address before" },
	{ "localhost:8025", 0, 0, "no host names" },
	{ "256.0.0.1:8025", 0, 0, "not an IPv4 address" },
	{ "::1:8025", 0, 0, "brackets" },
	{ "[::1]8025", 0, 0, "[IPv6 address]:port" },
	{ "[::1:8025", 0, 0, "[IPv6 address]:port" },
	{ "[127.0.0.1]:8025", 0, 0, "not an IPv6 address" },
	{ "[]:8025", 0, 0, "address before" },
	{ "[::1]:99999999999999999999", 0, 0, "1 to 65535" },
};

START_TEST(listen_syntax)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	char err[300] = "";
	bool got = oc_listen_parse(listen_cases[_i].spec, &ss, &len, err, sizeof(err));

	if (listen_cases[_i].family == 0) {
		ck_assert_msg(!got, "\"%s\" accepted", listen_cases[_i].spec);
		ck_assert_msg(strstr(err, listen_cases[_i].err) != NULL, "\"%s\": reason \"%s\"",
		    listen_cases[_i].spec, err);
		return;
	}
	ck_assert_msg(got, "\"%s\" refused: %s", listen_cases[_i].spec, err);
	ck_assert_int_eq(ss.ss_family, listen_cases[_i].family);
	if (ss.ss_family == AF_INET) {
		ck_assert_int_eq(len, sizeof(struct sockaddr_in));
		ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), listen_cases[_i].port);
	} else {
		ck_assert_int_eq(len, sizeof(struct sockaddr_in6));
		ck_assert_uint_eq(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), listen_cases[_i].port);
	}
}
END_TEST

START_TEST(listen_bind)
{
	char spec[64], err[300];
	int fd = -1, fd2;
	unsigned port = 0;

	/* a free port in a range no test layer uses */
	for (unsigned p = 33000 + (unsigned)getpid() % 2000; p < 36000 && fd < 0; p++) {
		snprintf(spec, sizeof(spec), "127.0.0.1:%u", p);
		fd = oc_listen_bind(spec, err, sizeof(err));
		port = p;
	}
	ck_assert_msg(fd >= 0, "no port could be bound: %s", err);
	/* it listens */
	{
		int c = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_int_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
		close(c);
	}
	/* a second bind names the address and the cause */
	fd2 = oc_listen_bind(spec, err, sizeof(err));
	ck_assert_int_lt(fd2, 0);
	ck_assert_msg(strstr(err, spec) && strstr(err, strerror(EADDRINUSE)), "%s", err);
	close(fd);
	ck_assert_int_lt(oc_listen_bind("nonsense", err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "address:port"));
}
END_TEST

/* ---------------------------------------------------------------- rate limiter */

static struct sockaddr_storage
addr(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else {
		ck_assert_int_eq(inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
		ss.ss_family = AF_INET6;
	}
	return ss;
}

/* requests from text at now_ms that pass, out of n */
static unsigned
passes(oc_rate *r, const char *text, unsigned per_minute, int64_t now_ms, unsigned n)
{
	struct sockaddr_storage ss = addr(text);
	unsigned ok = 0;
	bool first;

	for (unsigned i = 0; i < n; i++)
		ok += oc_rate_take(r, (struct sockaddr *)&ss, per_minute, now_ms, &first) == 0;
	return ok;
}

static unsigned
wait_of(oc_rate *r, const char *text, unsigned per_minute, int64_t now_ms, bool *first)
{
	struct sockaddr_storage ss = addr(text);

	return oc_rate_take(r, (struct sockaddr *)&ss, per_minute, now_ms, first);
}

START_TEST(rate_burst_then_refill)
{
	oc_rate *r = oc_rate_new();
	bool first;
	int64_t t = 1000000;

	ck_assert_ptr_nonnull(r);
	/* 5 a minute: a burst of 5, then one every 12 s */
	ck_assert_uint_eq(passes(r, "192.0.2.1", 5, t, 5), 5);
	ck_assert_uint_eq(wait_of(r, "192.0.2.1", 5, t, &first), 12);
	ck_assert(first);
	ck_assert_uint_eq(wait_of(r, "192.0.2.1", 5, t + 2000, &first), 10);
	ck_assert(!first);   /* a flood is logged once */
	ck_assert_uint_eq(wait_of(r, "192.0.2.1", 5, t + 11999, &first), 1);
	ck_assert_uint_eq(wait_of(r, "192.0.2.1", 5, t + 12000, &first), 0);
	ck_assert(!first);
	/* a refusal after an allowed request is a new flood */
	ck_assert_uint_ne(wait_of(r, "192.0.2.1", 5, t + 12000, &first), 0);
	ck_assert(first);
	ck_assert_uint_eq(passes(r, "192.0.2.1", 5, t + 12000, 1), 0);
	/* a minute refills the whole burst, no more */
	ck_assert_uint_eq(passes(r, "192.0.2.1", 5, t + 3600000, 10), 5);
	/* another address has its own bucket */
	ck_assert_uint_eq(passes(r, "192.0.2.2", 5, t, 10), 5);
	oc_rate_free(r);
}
END_TEST

START_TEST(rate_high_and_low)
{
	oc_rate *r = oc_rate_new();
	bool first;
	int64_t t = 5000;

	/* 1 a minute: Retry-After is a minute */
	ck_assert_uint_eq(passes(r, "198.51.100.7", 1, t, 3), 1);
	ck_assert_uint_eq(wait_of(r, "198.51.100.7", 1, t, &first), 60);
	/* the largest OneClickRate */
	ck_assert_uint_eq(passes(r, "198.51.100.8", 1000000, t, 20000), 20000);
	/* 0 is taken as 1, never as "no limit" */
	ck_assert_uint_eq(passes(r, "198.51.100.9", 0, t, 3), 1);
	oc_rate_free(r);
}
END_TEST

START_TEST(rate_reload_lowers)
{
	oc_rate *r = oc_rate_new();
	int64_t t = 5000;

	/* a bucket filled at 1000 a minute holds 5 when the rate becomes 5 */
	ck_assert_uint_eq(passes(r, "203.0.113.1", 1000, t, 10), 10);
	ck_assert_uint_eq(passes(r, "203.0.113.1", 5, t + 1, 10), 5);
	oc_rate_free(r);
}
END_TEST

START_TEST(rate_address_kinds)
{
	oc_rate *r = oc_rate_new();
	int64_t t = 5000;

	/* IPv6: one /64 is one client */
	ck_assert_uint_eq(passes(r, "2001:db8:1:2::1", 3, t, 2), 2);
	ck_assert_uint_eq(passes(r, "2001:db8:1:2:ffff:1:2:3", 3, t, 5), 1);
	ck_assert_uint_eq(passes(r, "2001:db8:1:3::1", 3, t, 5), 3);
	/* an IPv4-mapped address is the IPv4 address */
	ck_assert_uint_eq(passes(r, "192.0.2.77", 3, t, 2), 2);
	ck_assert_uint_eq(passes(r, "::ffff:192.0.2.77", 3, t, 5), 1);
	/* ... and not the /64 it would otherwise fall in */
	ck_assert_uint_eq(passes(r, "::ffff:192.0.2.78", 3, t, 5), 3);
	oc_rate_free(r);
}
END_TEST

START_TEST(rate_eviction_keeps_the_limited)
{
	oc_rate *r = oc_rate_new();
	char a[64];
	bool first;
	int64_t t = 5000;

	/* a client drains its bucket, then many more addresses than the table
	 * holds come by once each: they are evicted before it is */
	ck_assert_uint_eq(passes(r, "192.0.2.200", 4, t, 4), 4);
	for (unsigned i = 0; i < 4 * OC_RATE_SLOTS; i++) {
		snprintf(a, sizeof(a), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		ck_assert_uint_eq(passes(r, a, 4, t, 1), 1);
	}
	ck_assert_uint_ne(wait_of(r, "192.0.2.200", 4, t, &first), 0);
	oc_rate_free(r);
}
END_TEST

static Suite *
oneclick_suite(void)
{
	Suite *s = suite_create("oneclick");
	TCase *t = tcase_create("oneclick");

	tcase_add_loop_test(t, listen_syntax, 0, sizeof(listen_cases) / sizeof(listen_cases[0]));
	tcase_add_test(t, listen_bind);
	tcase_add_test(t, rate_burst_then_refill);
	tcase_add_test(t, rate_high_and_low);
	tcase_add_test(t, rate_reload_lowers);
	tcase_add_test(t, rate_address_kinds);
	tcase_add_test(t, rate_eviction_keeps_the_limited);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(oneclick_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
