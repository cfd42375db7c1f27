/*
 * utf8.h - one UTF-8 character, as RFC 3629 has it.
 */
#ifndef BW_UTF8_H
#define BW_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * The length (1 to 4) of the UTF-8 character at p, of at most n bytes: no
 * overlong form, surrogate or code point past U+10FFFF; 0 when p does not
 * start one. A NUL is no continuation byte, so in a NUL-terminated string
 * n may be SIZE_MAX: reading stops there.
 */
static inline size_t
bw_utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c, need;
	uint32_t cp;

	if (n == 0)
		return 0;
	c = p[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		need = 2, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 3, cp = c & 0x07;
	else
		return 0;
	if (n <= need)
		return 0;
	for (unsigned k = 1; k <= need; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need + 1;
}

#endif
