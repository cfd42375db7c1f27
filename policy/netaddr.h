/*
 * netaddr.h - lists of addresses and CIDR ranges (InternalHosts).
 *
 * "127.0.0.1, ::1, 10.0.0.0/8, 2001:db8::/32", or a file of such entries
 * (one or more per line, "#" comments). IPv4-mapped IPv6 addresses match
 * their IPv4 entries.
 */
#ifndef BW_NETADDR_H
#define BW_NETADDR_H

#include <stdbool.h>
#include "config.h"

typedef struct bw_netlist bw_netlist;

/* spec is the config value; where names the place for errors ("file:line").
 * A spec starting with '/' is a file. NULL with errs filled on error. */
bw_netlist *bw_netlist_parse(const char *spec, const char *where, bw_errs *errs);
void bw_netlist_free(bw_netlist *l);
/* addr as text; false for NULL, "" or an unparsable address */
bool bw_netlist_match(const bw_netlist *l, const char *addr);

#endif
