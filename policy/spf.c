/*
 * spf.c - SPF checks in a helper process (see spf.h).
 *
 * Protocol over an AF_UNIX SOCK_SEQPACKET pair, one datagram each way:
 *   question: ip NUL helo NUL from NUL
 *   answer:   one byte bw_spf_result, then a sentence (no NUL)
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_zone.h>

#include "dns.h"
#include "spf.h"

#define SPF_MSG_MAX   1100             /* a question: 46 + 255 + 320 and NULs */
#define SPF_CHILD_AS  (256u << 20)     /* address space of the child */

struct bw_spf {
	pthread_mutex_t mu;
	pid_t pid;
	int fd;
	char *zone;
	bw_dns_servers ns;     /* SpfNameservers; none: the system's resolver */
	unsigned timeout_ms;
};

const char *
bw_spf_result_name(bw_spf_result r)
{
	static const char *const n[] = { "pass", "fail", "softfail", "neutral", "none", "temperror",
		"permerror", "error" };
	return (unsigned)r < sizeof(n) / sizeof(n[0]) ? n[r] : "?";
}

bw_spf *
bw_spf_new(const char *zone, const char *nameservers, unsigned timeout_ms)
{
	bw_spf *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (nameservers != NULL && nameservers[0] != 0 && !bw_dns_servers_parse(nameservers, &s->ns)) {
		free(s);
		return NULL;
	}
	if ((s->zone = strdup(zone ? zone : "")) == NULL || pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s->zone);
		free(s);
		return NULL;
	}
	s->fd = -1;
	s->timeout_ms = timeout_ms ? timeout_ms : 5000;
	return s;
}

static void
spf_stop(bw_spf *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	s->pid = 0;
}

void
bw_spf_free(bw_spf *s)
{
	if (s == NULL)
		return;
	spf_stop(s);
	pthread_mutex_destroy(&s->mu);
	free(s->zone);
	free(s);
}

pid_t
bw_spf_pid(bw_spf *s)
{
	pid_t p;

	pthread_mutex_lock(&s->mu);
	p = s->pid;
	pthread_mutex_unlock(&s->mu);
	return p;
}

/* ---------------------------------------------------------------- the child */

/*
 * SpfNameservers. libspf2's resolv layer asks through a resolver state per
 * thread that it sets up itself (res_ninit, behind a pthread key of its
 * own): nothing can hand it other servers, and glibc has no res_setservers.
 * So this small layer of ours answers libspf2's lookups (TXT for records;
 * A, AAAA, MX and PTR for the mechanisms) by asking the chosen servers with
 * bw_dns_query, decoding the answer as the resolv layer does. No failure
 * is hidden: no answer or a broken one is TRY_AGAIN (temperror), NXDOMAIN
 * is HOST_NOT_FOUND, an answer without records of the type NO_DATA (none).
 * No libspf2 cache above it: the servers chosen cache, and libspf2's keeps
 * even a temporary failure for half an hour.
 */
static SPF_dns_rr_t *
ns_lookup(SPF_dns_server_t *d, const char *domain, ns_type type, int should_cache)
{
	static unsigned char msg[NS_MAXMSG];   /* the child asks one question at a time */
	int len = bw_dns_query(d->hook, domain, type, msg, sizeof(msg)), cnt = 0;
	SPF_dns_rr_t *a;
	ns_msg m;

	(void)should_cache;
	if (len < 0 || ns_initparse(msg, len, &m) < 0)
		return SPF_dns_rr_new_init(d, domain, type, 0, TRY_AGAIN);
	if (ns_msg_getflag(m, ns_f_rcode) == ns_r_nxdomain)
		return SPF_dns_rr_new_init(d, domain, type, 0, HOST_NOT_FOUND);
	if (ns_msg_getflag(m, ns_f_rcode) != ns_r_noerror
	    || (a = SPF_dns_rr_new_init(d, domain, type, 0, NETDB_SUCCESS)) == NULL)
		return SPF_dns_rr_new_init(d, domain, type, 0, TRY_AGAIN);
	for (int i = 0; i < ns_msg_count(m, ns_s_an); i++) {
		ns_rr rr;
		const unsigned char *p;
		size_t n, o = 0;
		char name[NS_MAXDNAME];

		if (ns_parserr(&m, ns_s_an, i, &rr) < 0) {
			cnt = 0;   /* a broken reply: no answer */
			a->herrno = TRY_AGAIN;
			break;
		}
		if (ns_rr_type(rr) != type || ns_rr_class(rr) != ns_c_in)
			continue;   /* the CNAMEs on the way */
		p = ns_rr_rdata(rr);
		n = ns_rr_rdlen(rr);
		switch (type) {
		case ns_t_a:
		case ns_t_aaaa:
			if (n != (type == ns_t_a ? 4u : 16u) || SPF_dns_rr_buf_realloc(a, cnt, n) != SPF_E_SUCCESS)
				continue;
			memcpy(type == ns_t_a ? (void *)&a->rr[cnt]->a : (void *)&a->rr[cnt]->aaaa, p, n);
			break;
		case ns_t_mx:
		case ns_t_ptr:
			if ((type == ns_t_mx && n < 2)
			    || ns_name_uncompress(msg, msg + len, type == ns_t_mx ? p + 2 : p, name,
			        sizeof(name)) < 0
			    || SPF_dns_rr_buf_realloc(a, cnt, strlen(name) + 1) != SPF_E_SUCCESS)
				continue;
			strcpy(type == ns_t_mx ? a->rr[cnt]->mx : a->rr[cnt]->ptr, name);
			break;
		case ns_t_txt:
			/* the record's strings joined without a separator (RFC 7208 3.3) */
			if (SPF_dns_rr_buf_realloc(a, cnt, n + 1) != SPF_E_SUCCESS)
				continue;
			for (size_t j = 0; j < n;) {
				size_t l = p[j++];

				if (l > n - j)
					l = n - j;
				memcpy(a->rr[cnt]->txt + o, p + j, l);
				o += l;
				j += l;
			}
			a->rr[cnt]->txt[o] = 0;
			break;
		default:
			continue;
		}
		cnt++;
	}
	a->num_rr = cnt;
	if (cnt == 0 && a->herrno == NETDB_SUCCESS)
		a->herrno = NO_DATA;
	return a;
}

static SPF_server_t *
child_server(const char *zone, bw_dns_servers *ns)
{
	static SPF_dns_server_t ns_layer;   /* the child's, for its life */
	SPF_dns_server_t *dns;
	FILE *fp;
	char line[2048];

	if (zone[0] == 0 && ns->n > 0) {
		/* no destroy: libspf2 leaves the layer alone */
		ns_layer.lookup = ns_lookup;
		ns_layer.name = "nameservers";
		ns_layer.hook = ns;
		return SPF_server_new_dns(&ns_layer, 0);
	}
	if (zone[0] == 0)
		return SPF_server_new(SPF_DNS_CACHE, 0);
	if ((dns = SPF_dns_zone_new(NULL, "zone", 0)) == NULL || (fp = fopen(zone, "r")) == NULL)
		return NULL;
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *p = line, *dom, *val;
		line[strcspn(line, "\r\n")] = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == 0 || *p == '#')
			continue;
		dom = p;
		p += strcspn(p, " \t");
		if (*p == 0)
			continue;
		*p++ = 0;
		val = p + strspn(p, " \t");
		SPF_dns_zone_add_str(dns, dom, ns_t_txt, NETDB_SUCCESS, val);
	}
	fclose(fp);
	return SPF_server_new_dns(dns, 0);
}

static bw_spf_result
child_result(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_PASS: return BW_SPF_PASS;
	case SPF_RESULT_FAIL: return BW_SPF_FAIL;
	case SPF_RESULT_SOFTFAIL: return BW_SPF_SOFTFAIL;
	case SPF_RESULT_NEUTRAL: return BW_SPF_NEUTRAL;
	case SPF_RESULT_NONE: return BW_SPF_NONE;
	case SPF_RESULT_TEMPERROR: return BW_SPF_TEMPERROR;
	default: return BW_SPF_PERMERROR;
	}
}

static bw_spf_result
child_dns_error(SPF_response_t *resp, char *why, size_t whylen)
{
	snprintf(why, whylen, "temperror: DNS failure");
	for (int i = 0; i < SPF_response_messages(resp); i++) {
		SPF_error_t *e = SPF_response_message(resp, i);

		if (SPF_error_code(e) == SPF_E_DNS_ERROR) {
			snprintf(why, whylen, "temperror: %s", SPF_error_message(e));
			break;
		}
	}
	return BW_SPF_TEMPERROR;
}

/* The child inherits the filter's mappings (the store's map among them):
 * its address space may grow by SPF_CHILD_AS beyond them. Not under
 * AddressSanitizer, whose shadow memory is mapped on demand. */
static void
child_limit(void)
{
#if !defined(__SANITIZE_ADDRESS__)
	unsigned long pages = 0;
	FILE *fp = fopen("/proc/self/statm", "r");
	struct rlimit rl;

	if (fp == NULL)
		return;
	if (fscanf(fp, "%lu", &pages) == 1) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + SPF_CHILD_AS;
		setrlimit(RLIMIT_AS, &rl);
	}
	fclose(fp);
#endif
}

static void __attribute__((noreturn))
child_main(int fd, const char *zone, bw_dns_servers *ns)
{
	SPF_server_t *srv;
	char q[SPF_MSG_MAX + 1], a[400];

	/* nothing of the filter's but its socket: not the store, not the MTA */
	if (fd != 3) {
		dup2(fd, 3);
		fd = 3;
	}
	if (close_range(4, ~0U, 0) != 0)
		for (long i = 4, max = sysconf(_SC_OPEN_MAX); i < max && i < 65536; i++)
			close((int)i);
	child_limit();
	srv = child_server(zone, ns);
	for (;;) {
		ssize_t n = recv(fd, q, SPF_MSG_MAX, 0);
		const char *ip, *helo, *from;
		SPF_request_t *req;
		SPF_response_t *resp = NULL;
		SPF_errcode_t err;
		bw_spf_result r = BW_SPF_TEMPERROR;
		size_t l;

		if (n <= 0)
			_exit(0);
		q[n] = 0;
		ip = q;
		l = strlen(ip) + 1;
		helo = (size_t)n > l ? q + l : "";
		l += strlen(helo) + 1;
		from = (size_t)n > l ? q + l : "";
		snprintf(a + 1, sizeof(a) - 1, "no SPF server");
		if (srv != NULL && (req = SPF_request_new(srv)) != NULL) {
			if ((strchr(ip, ':') ? SPF_request_set_ipv6_str(req, ip)
			    : SPF_request_set_ipv4_str(req, ip)) != SPF_E_SUCCESS) {
				r = BW_SPF_PERMERROR;
				snprintf(a + 1, sizeof(a) - 1, "bad client address %.60s", ip);
			} else {
				if (*helo)
					SPF_request_set_helo_dom(req, helo);
				if (*from)
					SPF_request_set_env_from(req, from);
				err = SPF_request_query_mailfrom(req, &resp);
				if (resp != NULL) {
					r = child_result(SPF_response_result(resp));
					snprintf(a + 1, sizeof(a) - 1, "%s",
					    SPF_strresult(SPF_response_result(resp)));
					/* libspf2 1.2.10 leaves no result when the record
					   itself could not be fetched: temperror (RFC 7208
					   4.4), with libspf2's sentence */
					if (SPF_response_result(resp) == SPF_RESULT_INVALID
					    && err == SPF_E_DNS_ERROR)
						r = child_dns_error(resp, a + 1, sizeof(a) - 1);
					SPF_response_free(resp);
				}
			}
			SPF_request_free(req);
		}
		a[0] = (char)r;
		if (send(fd, a, 1 + strlen(a + 1), MSG_NOSIGNAL) < 0)
			_exit(0);
	}
}

/* ---------------------------------------------------------------- the parent */

static bool
spf_start(bw_spf *s)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return false;
	if ((pid = fork()) < 0) {
		close(sv[0]);
		close(sv[1]);
		return false;
	}
	if (pid == 0) {
		close(sv[0]);
		child_main(sv[1], s->zone, &s->ns);
	}
	close(sv[1]);
	s->fd = sv[0];
	s->pid = pid;
	return true;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bw_spf_result
bw_spf_check(bw_spf *s, const char *ip, const char *helo, const char *from, char *why, size_t whylen)
{
	char q[SPF_MSG_MAX], a[400];
	size_t il = strlen(ip), hl = strlen(helo ? helo : ""), fl = strlen(from ? from : "");
	bw_spf_result r = BW_SPF_ERROR;
	int64_t end;
	ssize_t n = -1;

	snprintf(why, whylen, "the SPF helper failed");
	if (il > 45 || hl > 255 || fl > 600) {
		snprintf(why, whylen, "question too long");
		return BW_SPF_PERMERROR;
	}
	memcpy(q, ip, il + 1);
	memcpy(q + il + 1, helo ? helo : "", hl + 1);
	memcpy(q + il + 1 + hl + 1, from ? from : "", fl + 1);
	pthread_mutex_lock(&s->mu);
	if (s->fd < 0 && !spf_start(s)) {
		snprintf(why, whylen, "the SPF helper cannot start: %s", strerror(errno));
		goto out;
	}
	if (send(s->fd, q, il + hl + fl + 3, MSG_NOSIGNAL) < 0) {
		spf_stop(s);
		goto out;
	}
	end = mono_ms() + s->timeout_ms;
	for (;;) {
		struct pollfd pfd = { s->fd, POLLIN, 0 };
		int64_t left = end - mono_ms();
		int rc;

		if (left <= 0) {
			snprintf(why, whylen, "the SPF helper did not answer in %u ms", s->timeout_ms);
			spf_stop(s);
			goto out;
		}
		rc = poll(&pfd, 1, (int)left);
		if ((rc < 0 && errno == EINTR) || rc == 0)
			continue;
		if (rc > 0)
			n = recv(s->fd, a, sizeof(a) - 1, 0);
		break;
	}
	if (n <= 0 || (unsigned char)a[0] > BW_SPF_ERROR) {
		snprintf(why, whylen, "the SPF helper died");
		spf_stop(s);
		goto out;
	}
	a[n] = 0;
	r = (bw_spf_result)a[0];
	snprintf(why, whylen, "%s", a + 1);
out:
	pthread_mutex_unlock(&s->mu);
	return r;
}
