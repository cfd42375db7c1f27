/*
 * spf.h - SPF checks (libspf2) in a helper process.
 *
 * Debian's libspf2 lacks the fix for CVE-2023-42118 (a heap overflow in
 * macro expansion), so it never runs in the filter process: a child
 * process, forked on first use with its address space capped, answers one
 * question at a time over a socket pair. A crash or a hang there costs
 * the one answer (BW_SPF_ERROR; a hang is cut off after the timeout and
 * the child killed); the next question starts a new child.
 *
 * Records come from DNS: the system's resolver, or name servers of the
 * configuration's choice (SpfNameservers, through a DNS layer of ours, see
 * spf.c); or, for closed networks and tests, from a zone file of "domain
 * TXT-value" lines read by the child (libspf2's zone layer).
 */
#ifndef BW_SPF_H
#define BW_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef enum {
	BW_SPF_PASS = 0,
	BW_SPF_FAIL,
	BW_SPF_SOFTFAIL,
	BW_SPF_NEUTRAL,
	BW_SPF_NONE,
	BW_SPF_TEMPERROR,
	BW_SPF_PERMERROR,
	BW_SPF_ERROR       /* the helper crashed, hung or could not start */
} bw_spf_result;
const char *bw_spf_result_name(bw_spf_result r);

typedef struct bw_spf bw_spf;

/* zone: NULL or "" for DNS. nameservers: "ADDR[,ADDR...]" (dns.h) to ask
 * instead of the system's resolver, NULL or "" for it; unused with a zone.
 * timeout_ms: per question. Nothing is started yet. NULL when out of
 * memory or when nameservers does not parse. */
bw_spf *bw_spf_new(const char *zone, const char *nameservers, unsigned timeout_ms);
void bw_spf_free(bw_spf *s);   /* kills the child */

/* The SPF result for MAIL FROM:<from> (helo when from is empty) from ip.
 * why gets a sentence. Thread-safe: questions wait their turn. */
bw_spf_result bw_spf_check(bw_spf *s, const char *ip, const char *helo, const char *from,
    char *why, size_t whylen);

/* The child's pid, or 0 (tests). */
pid_t bw_spf_pid(bw_spf *s);

#endif
