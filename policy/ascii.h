/*
 * ascii.h - case-insensitive comparison of ASCII names (header field
 * names, RFC 5322 2.2), whatever the locale says of case.
 */
#ifndef BW_ASCII_H
#define BW_ASCII_H

#include <stdbool.h>

/* a and b are the same but for the case of ASCII letters */
static inline bool
bw_ascii_caseeq(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char x = (unsigned char)*a, y = (unsigned char)*b;

		if (x >= 'A' && x <= 'Z')
			x += 32;
		if (y >= 'A' && y <= 'Z')
			y += 32;
		if (x != y)
			return false;
		if (x == 0)
			return true;
	}
}

#endif
