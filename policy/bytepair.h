/*
 * bytepair.h - finding where one byte is followed by another, thirty-two
 * places at a time where the machine has SSE2. Mail and HTML scanners
 * look for a two-byte start ("\n-" of a MIME delimiter, "<u" of a tag)
 * that the first byte alone would find every few dozen bytes.
 */
#ifndef BW_BYTEPAIR_H
#define BW_BYTEPAIR_H

#include <stddef.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The first i (i + 1 < n) with s[i] == a and (s[i + 1] | fold) == b; n
 * when there is none. fold 0x20 makes b an ASCII letter of either case. */
static inline size_t
bw_find_pair(const char *s, size_t n, char a, char b, unsigned char fold)
{
	size_t i = 0;
#ifdef __SSE2__
	const __m128i va = _mm_set1_epi8(a);

	/* thirty-two places for the first byte, then the second at each */
	for (; i + 32 <= n; i += 32) {
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
		    _mm_loadu_si128((const __m128i *)(const void *)(s + i)), va)) |
		    (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
		    _mm_loadu_si128((const __m128i *)(const void *)(s + i + 16)), va)) << 16;

		for (; m; m &= m - 1) {
			size_t k = i + (size_t)__builtin_ctz(m);
			if (k + 1 < n && (char)(s[k + 1] | (char)fold) == b)
				return k;
		}
	}
#endif
	for (; i + 1 < n; i++)
		if (s[i] == a && (char)(s[i + 1] | (char)fold) == b)
			return i;
	return n;
}

#endif
