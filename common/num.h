/*
 * num.h - numbers as users write them on a command line or in a rule:
 * decimal or 0x hex, never octal.  Pure code, shared by the tools and
 * libdivert.
 */
#ifndef DIVERT_NUM_H
#define DIVERT_NUM_H

#include <stddef.h>

/* Parse an unsigned decimal or 0x hex number in [min,max]; -1 when it is not one. */
long parse_ulong(const char *s, long min, long max);

/* Parse "N" or "N-M" within [0,max] into *lo,*hi; -1 when malformed. */
int parse_range(const char *s, long max, long *lo, long *hi);

/* "4194304", "4096K", "4M", "1G" (powers of 1024) bytes, at most 1 TiB; 0 when malformed. */
size_t parse_size(const char *s);

/*
 * A time as tc writes it: "20ms", "500us", "1.5s", a bare number being
 * milliseconds; into microseconds, at most max_us.  -1 when malformed.
 */
long long parse_duration_us(const char *s, long long max_us);

/*
 * A rate as tc writes it: bits per second with bit, kbit, mbit, gbit, tbit
 * (powers of 1000) or kibit, mibit, gibit, tibit (1024), bytes per second
 * with bps, kbps, mbps, gbps, tbps (kibps...); a bare number is bits per
 * second.  Into bits per second, 1..max; -1 when malformed.
 */
long long parse_rate_bps(const char *s, long long max);

/* A percentage "5%", "0.5%" or "5" (0..100) as a probability 0..1; -1 when malformed. */
double parse_percent(const char *s);

#endif
