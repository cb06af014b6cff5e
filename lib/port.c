/*
 * port.c - which divert ports are bound, from the kernel's list (its own
 * object: a tool that only asks this links nothing else of the library).
 */
#include <errno.h>
#include <stdio.h>

#include "divert.h"

int
divert_port_bound(long lo, long hi, struct divert_port_info *pi)
{
	unsigned long long num, portid, total, mode, range, qdrop, udrop;
	char line[256];
	int found = 0;
	FILE *fp;

	if ((fp = fopen("/proc/net/netfilter/nfnetlink_queue", "re")) == NULL)
		return errno == ENOENT ? 0 : -1;
	/* queue, portid, waiting, copy mode, copy range, queue drops, user drops, ... */
	while (!found && fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "%llu %llu %llu %llu %llu %llu %llu", &num, &portid,
		    &total, &mode, &range, &qdrop, &udrop) == 7 &&
		    (long long)num >= lo && (long long)num <= hi) {
			*pi = (struct divert_port_info){ .port = num, .portid = portid,
			    .drops = qdrop + udrop };
			found = 1;
		}
	if (!found && ferror(fp))
		found = -1;
	fclose(fp);
	if (found < 0)
		errno = EIO;
	return found;
}
