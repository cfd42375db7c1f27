/*
 * dkimcov.h - does the message's DKIM signature cover List-Unsubscribe and
 * List-Unsubscribe-Post (RFC 8058 section 4)?
 *
 * libopendkim parses the DKIM-Signature headers; no key is fetched and
 * nothing is verified here (the signature is the sender's own, added before
 * or after this filter), only the h= list is read.
 */
#ifndef BW_DKIMCOV_H
#define BW_DKIMCOV_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dkimcov_result {
	unsigned nsigs;          /* DKIM signatures libopendkim could parse */
	bool covers_lu;          /* some signature's h= has List-Unsubscribe */
	bool covers_post;        /* ... and List-Unsubscribe-Post (the same one) */
	char domain[256];        /* d= of the signature looked at */
} dkimcov_result;

/* headers: name/value pairs, n of them; only DKIM-Signature and From are used.
 * false when libopendkim could not be set up or parse anything. */
bool dkimcov_check(const char *const *names, const char *const *values, size_t n,
    dkimcov_result *r);

#endif
