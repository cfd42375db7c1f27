/*
 * phrases.h - the unsubscribe phrase dictionary.
 *
 * A file of phrases, one per line, "#" comments, grouped by language with
 * "[xx]" lines (for the reader; matching uses them all). Matching is on
 * case-folded UTF-8 (ASCII, Latin-1/Latin Extended-A, Greek, Cyrillic) with
 * runs of white space as one space; a phrase matches anywhere in the text.
 */
#ifndef BW_PHRASES_H
#define BW_PHRASES_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef struct bw_phrases bw_phrases;

/* NULL with errs ("file:line: what") on failure. */
bw_phrases *bw_phrases_load(const char *path, bw_errs *errs);
/* From a string (tests). */
bw_phrases *bw_phrases_parse(const char *text, size_t len, const char *name, bw_errs *errs);
void bw_phrases_free(bw_phrases *p);
size_t bw_phrases_count(const bw_phrases *p);
/* true when text (UTF-8, any case) contains a phrase */
bool bw_phrases_match(const bw_phrases *p, const char *text, size_t len);
/* The same for a text bw_fold() already gave (f[0..fl)). */
bool bw_phrases_match_folded(const bw_phrases *p, const char *f, size_t fl);
/* Case-fold and collapse white space into out (NUL-terminated, at most
 * outsz-1 bytes); returns the length written. */
size_t bw_fold(const char *in, size_t len, char *out, size_t outsz);

#endif
