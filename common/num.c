/*
 * num.c - numbers as users write them: decimal or 0x hex, N-M ranges, and
 * sizes, times, rates and percentages with their units.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "num.h"

/* Decimal, or C-style hex with 0x; never octal: "010" is ten, as users mean it. */
long
parse_ulong(const char *s, long min, long max)
{
	char *end;
	long v;
	int base = 10;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!isxdigit((unsigned char)*s))
			return -1;
	}
	errno = 0;
	v = strtol(s, &end, base);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	return v;
}

int
parse_range(const char *s, long max, long *lo, long *hi)
{
	char buf[32];
	char *dash;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash != NULL)
		*dash++ = '\0';
	*lo = parse_ulong(buf, 0, max);
	*hi = dash != NULL ? parse_ulong(dash, 0, max) : *lo;
	if (*lo < 0 || *hi < 0 || *lo > *hi)
		return -1;
	return 0;
}

size_t
parse_size(const char *s)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	if (*s < '0' || *s > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift != 0)
		end++;
	if (*end != '\0' || v > (1ULL << 40) >> shift)
		return 0;
	return (size_t)(v << shift);
}

/*
 * A non-negative decimal with an optional fraction, then a unit from
 * units (NULL-terminated names, each with its scale; "" for none): the
 * value times the scale, rounded to nearest.  -1 when malformed or above max.
 */
struct unit {
	const char	*name;
	double		 scale;
};

static double
scaled(const char *s, const struct unit *units, double max)
{
	char *end;
	double v;

	if (s == NULL || ((*s < '0' || *s > '9') && *s != '.'))
		return -1;
	errno = 0;
	v = strtod(s, &end);		/* the C locale: tools never call setlocale */
	if (errno != 0 || end == s || v != v)
		return -1;
	for (; units->name != NULL; units++)
		if (strcasecmp(end, units->name) == 0) {
			v = v * units->scale + 0.5;
			return v > max ? -1 : v;
		}
	return -1;
}

long long
parse_duration_us(const char *s, long long max_us)
{
	static const struct unit units[] = {
		{ "", 1e3 }, { "ms", 1e3 }, { "msec", 1e3 }, { "us", 1 }, { "usec", 1 },
		{ "s", 1e6 }, { "sec", 1e6 }, { NULL, 0 }
	};
	double v = scaled(s, units, (double)max_us);

	return v < 0 ? -1 : (long long)v;
}

long long
parse_rate_bps(const char *s, long long max)
{
	static const struct unit units[] = {
		{ "", 1 }, { "bit", 1 }, { "kbit", 1e3 }, { "mbit", 1e6 }, { "gbit", 1e9 },
		{ "tbit", 1e12 }, { "kibit", 1024.0 }, { "mibit", 1048576.0 },
		{ "gibit", 1073741824.0 }, { "tibit", 1099511627776.0 },
		{ "bps", 8 }, { "kbps", 8e3 }, { "mbps", 8e6 }, { "gbps", 8e9 }, { "tbps", 8e12 },
		{ "kibps", 8192.0 }, { "mibps", 8388608.0 }, { "gibps", 8589934592.0 },
		{ "tibps", 8796093022208.0 }, { NULL, 0 }
	};
	double v = scaled(s, units, (double)max);

	return v < 1 ? -1 : (long long)v;
}

double
parse_percent(const char *s)
{
	char *end;
	double v;

	/* Not scaled(): it rounds to a whole number. */
	if (s == NULL || ((*s < '0' || *s > '9') && *s != '.'))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || v != v || v > 100 || (*end != '\0' && strcmp(end, "%") != 0))
		return -1;
	return v / 100;
}
