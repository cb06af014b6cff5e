/* owner.c - find the process that holds a divert port or a table, through /proc. */
#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/netlink.h>

#include "tool.h"
#include "owner.h"

/* The netlink portid that bound queue num; 0 when the queue is not bound. */
static unsigned long
queue_portid(uint16_t num)
{
	struct divert_port_info pi;

	return divert_port_bound(num, num, &pi) == 1 ? pi.portid : 0;
}

/* The inode of the NETLINK_NETFILTER socket with that portid; 0 if none. */
static unsigned long
netlink_inode(unsigned long portid)
{
	unsigned long proto, pid, inode, found = 0;
	char line[256];
	FILE *fp;

	if ((fp = fopen("/proc/net/netlink", "r")) == NULL)
		return 0;
	/* sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode */
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "%*s %lu %lu %*s %*s %*s %*s %*s %*s %lu",
		    &proto, &pid, &inode) == 3 && proto == NETLINK_NETFILTER &&
		    pid == portid)
			found = inode;
	fclose(fp);
	return found;
}

/* Whether process pid has an fd on the socket named want ("socket:[inode]"). */
static int
holds_socket(long pid, const char *want)
{
	char dir[64], path[64 + sizeof(((struct dirent *)0)->d_name)], link[64];
	struct dirent *d;
	ssize_t n;
	DIR *fds;
	int found = 0;

	snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
	if ((fds = opendir(dir)) == NULL)
		return 0;
	while (!found && (d = readdir(fds)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = strcmp(link, want) == 0;
		}
	}
	closedir(fds);
	return found;
}

static pid_t
socket_holder(unsigned long inode, char *comm, size_t commlen)
{
	char want[64], path[64];
	struct dirent *d;
	pid_t pid = 0;
	DIR *proc;
	FILE *fp;

	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	if ((proc = opendir("/proc")) == NULL)
		return 0;
	while (pid == 0 && (d = readdir(proc)) != NULL)
		if (isdigit((unsigned char)d->d_name[0]) &&
		    holds_socket(atol(d->d_name), want))
			pid = (pid_t)atol(d->d_name);
	closedir(proc);
	if (pid != 0 && commlen > 0) {
		comm[0] = '\0';
		snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
		if ((fp = fopen(path, "r")) != NULL) {
			if (fgets(comm, (int)commlen, fp) != NULL)
				comm[strcspn(comm, "\n")] = '\0';
			fclose(fp);
		}
	}
	return pid;
}

pid_t
netlink_owner(uint32_t portid, char *comm, size_t commlen)
{
	unsigned long inode;

	if (commlen > 0)
		comm[0] = '\0';
	if ((inode = netlink_inode(portid)) == 0)
		return 0;
	return socket_holder(inode, comm, commlen);
}

int
queue_owner(uint16_t num, pid_t *pid, char *comm, size_t commlen)
{
	unsigned long portid;

	*pid = 0;
	if (commlen > 0)
		comm[0] = '\0';
	if ((portid = queue_portid(num)) == 0)
		return 0;
	*pid = netlink_owner((uint32_t)portid, comm, commlen);
	return 1;
}

int
have_net_admin(void)
{
	char line[256];
	uint64_t caps = 0;
	FILE *fp;

	if ((fp = fopen("/proc/self/status", "r")) == NULL)
		return geteuid() == 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "CapEff: %" SCNx64, &caps) == 1)
			break;
	fclose(fp);
	return (caps >> CAP_NET_ADMIN) & 1;
}
