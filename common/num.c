/* num.c - numbers as users write them: decimal or 0x hex, and N-M ranges. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
