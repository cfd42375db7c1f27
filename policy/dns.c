/*
 * dns.c - DNS questions to name servers of the configuration's choice
 * (see dns.h).
 */
#include <sys/types.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdint.h>
#include <string.h>

#include "dns.h"

_Static_assert(BW_DNS_MAXNS <= MAXNS, "a resolver state holds MAXNS servers");

bool
bw_dns_servers_parse(const char *list, bw_dns_servers *ns)
{
	char buf[300], *save = NULL;

	memset(ns, 0, sizeof(*ns));
	if (strlen(list) >= sizeof(buf))
		return false;
	strcpy(buf, list);
	for (char *w = strtok_r(buf, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save)) {
		if (ns->n == BW_DNS_MAXNS || inet_pton(AF_INET, w, &ns->addr[ns->n].sin_addr) != 1)
			return false;
		ns->addr[ns->n].sin_family = AF_INET;
		ns->addr[ns->n].sin_port = htons(53);
		ns->n++;
	}
	return ns->n > 0;
}

int
bw_dns_query(const bw_dns_servers *ns, const char *name, int type, unsigned char *buf, size_t buflen)
{
	struct __res_state st;
	unsigned char q[NS_PACKETSZ];
	int ql, n = -1, max = buflen > INT32_MAX ? INT32_MAX : (int)buflen;

	/* a state of its own each time: cheap next to the question, and
	   nothing shared between threads */
	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) != 0)
		return -1;
	for (int i = 0; i < ns->n; i++)
		st.nsaddr_list[i] = ns->addr[i];
	st.nscount = ns->n;
	ql = res_nmkquery(&st, ns_o_query, name, ns_c_in, type, NULL, 0, NULL, q, sizeof(q));
	if (ql > 0)
		n = res_nsend(&st, q, ql, buf, max);
	res_nclose(&st);
	/* over TCP, the length of a reply cut to fit is the whole one's */
	return n > max ? max : n;
}
