/*
 * upstream.c - the divert listener a pipe comes from, through /proc.
 *
 * A pipe is "pipe:[INODE]" in /proc/PID/fd; its writers have it open
 * O_WRONLY (/proc/PID/fdinfo).  A port offered here is a listening Unix
 * socket "@divert/PORT" in /proc/net/unix (which shows this network
 * namespace's sockets only), held by the listener as "socket:[INODE]".
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "upstream.h"

#define DEPTH		8	/* stages up the pipeline, at most */
#define OFFERS		32	/* offered ports remembered from one reading */
#define UNIX_LISTENING	0x10000	/* /proc/net/unix Flags: __SO_ACCEPTCON */

struct offer_sock {
	unsigned long	inode;
	int		port;
};

/* The offered ports of this namespace: their sockets' inodes. */
static int
read_offers(struct offer_sock *o, int max)
{
	char line[512], path[256];
	unsigned long flags, inode;
	unsigned port;
	FILE *fp;
	int n = 0;

	if ((fp = fopen("/proc/net/unix", "r")) == NULL)
		return 0;
	/* Num RefCount Protocol Flags Type St Inode Path */
	while (n < max && fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %255s", &flags, &inode, path) == 3 &&
		    (flags & UNIX_LISTENING) && sscanf(path, "@divert/%u", &port) == 1 &&
		    port <= 65535)
			o[n++] = (struct offer_sock){ inode, (int)port };
	fclose(fp);
	return n;
}

/* Whether pid's descriptor fd (a name in /proc/PID/fd) is open for writing. */
static int
writes(long pid, const char *fd)
{
	char path[64 + 256], line[64];
	unsigned long flags = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/fdinfo/%s", pid, fd);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "flags: %lo", &flags) == 1)
			break;
	fclose(fp);
	return (flags & O_ACCMODE) == O_WRONLY || (flags & O_ACCMODE) == O_RDWR;
}

/*
 * Look through pid's descriptors: whether one writes the pipe want
 * ("pipe:[N]"), and which offered port's socket it holds (-1 none).
 */
static void
look_at(long pid, const char *want, const struct offer_sock *o, int n, int *writer,
    int *port)
{
	char dir[64], path[64 + 256], link[64];
	unsigned long inode;
	struct dirent *d;
	ssize_t len;
	DIR *fds;
	int i;

	*writer = 0;
	*port = -1;
	snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
	if ((fds = opendir(dir)) == NULL)
		return;
	while ((d = readdir(fds)) != NULL) {
		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		if ((len = readlink(path, link, sizeof(link) - 1)) <= 0)
			continue;
		link[len] = '\0';
		if (strcmp(link, want) == 0 && writes(pid, d->d_name))
			*writer = 1;
		else if (sscanf(link, "socket:[%lu]", &inode) == 1)
			for (i = 0; i < n; i++)
				if (o[i].inode == inode)
					*port = o[i].port;
	}
	closedir(fds);
}

/* The process (not us) writing pipe ino, and the port it offers (-1 none); 0 none. */
static pid_t
pipe_writer(unsigned long ino, const struct offer_sock *o, int n, int *port)
{
	char want[64];
	struct dirent *d;
	pid_t found = 0;
	long pid;
	int writer, p;
	DIR *proc;

	snprintf(want, sizeof(want), "pipe:[%lu]", ino);
	if ((proc = opendir("/proc")) == NULL)
		return 0;
	while (found == 0 && (d = readdir(proc)) != NULL) {
		if (!isdigit((unsigned char)d->d_name[0]) || (pid = atol(d->d_name)) == getpid())
			continue;
		look_at(pid, want, o, n, &writer, &p);
		if (writer) {
			found = (pid_t)pid;
			*port = p;
		}
	}
	closedir(proc);
	return found;
}

/* The pipe inode a process reads its standard input from; 0 if not a pipe. */
static unsigned long
stdin_pipe(pid_t pid)
{
	char path[64], link[64];
	unsigned long ino;
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/%ld/fd/0", (long)pid);
	if ((len = readlink(path, link, sizeof(link) - 1)) <= 0)
		return 0;
	link[len] = '\0';
	return sscanf(link, "pipe:[%lu]", &ino) == 1 ? ino : 0;
}

pid_t
upstream_listener(int fd, int *port)
{
	struct offer_sock o[OFFERS];
	struct stat st;
	unsigned long ino;
	pid_t pid;
	int n, depth;

	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) || (n = read_offers(o, OFFERS)) == 0)
		return 0;
	for (ino = st.st_ino, depth = 0; ino != 0 && depth < DEPTH; depth++) {
		if ((pid = pipe_writer(ino, o, n, port)) == 0)
			return 0;
		if (*port >= 0)
			return pid;
		ino = stdin_pipe(pid);		/* a stage between: look further up */
	}
	return 0;
}
