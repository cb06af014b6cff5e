/*
 * num.h - numbers as users write them on a command line or in a rule:
 * decimal or 0x hex, never octal.  Pure code, shared by the tools and
 * libdivert.
 */
#ifndef DIVERT_NUM_H
#define DIVERT_NUM_H

/* Parse an unsigned decimal or 0x hex number in [min,max]; -1 when it is not one. */
long parse_ulong(const char *s, long min, long max);

/* Parse "N" or "N-M" within [0,max] into *lo,*hi; -1 when malformed. */
int parse_range(const char *s, long max, long *lo, long *hi);

#endif
