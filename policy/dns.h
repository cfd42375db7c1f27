/*
 * dns.h - DNS questions to name servers of the configuration's choice
 * (ReporterNameservers, SpfNameservers).
 *
 * glibc has no res_setservers, so a library's own resolver (libopendkim's
 * for reporters' keys, libspf2's for SPF) cannot be pointed at other name
 * servers; each caller hooks its library's lookups to bw_dns_query, which
 * asks the chosen servers with res_nsend from a resolver state of its own
 * (the rest of it, timeouts and attempts, from /etc/resolv.conf).
 */
#ifndef BW_DNS_H
#define BW_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>

#define BW_DNS_MAXNS 3   /* glibc's MAXNS: the servers one resolver state holds */

typedef struct bw_dns_servers {
	struct sockaddr_in addr[BW_DNS_MAXNS];
	int n;
} bw_dns_servers;

/* "ADDR[,ADDR...]": IPv4 addresses (port 53), separated by commas or
 * blanks, at most BW_DNS_MAXNS. False for none, or anything else. */
bool bw_dns_servers_parse(const char *list, bw_dns_servers *ns);

/* One question, class IN, to the servers in turn: the reply (up to buflen
 * bytes) in buf and its length, or -1 when none answered (timeouts,
 * SERVFAIL, REFUSED). A truncated UDP reply is asked again over TCP. */
int bw_dns_query(const bw_dns_servers *ns, const char *name, int type, unsigned char *buf,
    size_t buflen);

#endif
