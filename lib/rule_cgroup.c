/*
 * rule_cgroup.c - cgroup v2 paths and ids for --cgroup.  The kernel's
 * socket expression takes a cgroup by id (the inode number of its
 * directory) and depth; people name it by path.  Where cgroup2 is mounted
 * differs (/sys/fs/cgroup, /sys/fs/cgroup/unified in the hybrid layout):
 * mountinfo says.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "rule_cgroup.h"
#include "rule_text.h"

/* mountinfo writes blanks and backslashes in paths as \ooo: undo it in place. */
static void
unescape(char *s)
{
	char *out = s;

	for (; *s != '\0'; s++, out++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out = *s;
		}
	}
	*out = '\0';
}

/* The first cgroup2 mount point: 0, or -1 with ENOENT. */
static int
cgroup2_root(char *root, size_t len)
{
	char *line = NULL, *f[5], *sep, *save;
	size_t cap = 0;
	int i, found = 0;
	FILE *mi;

	if ((mi = fopen("/proc/self/mountinfo", "re")) == NULL)
		return -1;
	while (!found && getline(&line, &cap, mi) >= 0) {
		/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE ..." */
		if ((sep = strstr(line, " - ")) == NULL ||
		    strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		*sep = '\0';
		f[0] = strtok_r(line, " ", &save);
		for (i = 1; i < 5 && f[i - 1] != NULL; i++)
			f[i] = strtok_r(NULL, " ", &save);
		if (i < 5 || f[4] == NULL)
			continue;
		unescape(f[4]);
		if (strlen(f[4]) < len) {
			strcpy(root, f[4]);
			found = 1;
		}
	}
	free(line);
	fclose(mi);
	if (!found)
		errno = ENOENT;
	return found ? 0 : -1;
}

/*
 * rel as a cgroup path from the root: one leading '/', single slashes, none
 * at the end ("/" for the root), and no "." or ".." in it; its depth in
 * *level.  NULL with EINVAL.
 */
static char *
canonical(const char *rel, uint32_t *level)
{
	char *out, *copy, *word, *save;
	size_t at = 0;

	if ((out = malloc(strlen(rel) + 2)) == NULL || (copy = strdup(rel)) == NULL) {
		free(out);
		return NULL;
	}
	*level = 0;
	for (word = strtok_r(copy, "/", &save); word != NULL;
	    word = strtok_r(NULL, "/", &save)) {
		if (strcmp(word, ".") == 0 || strcmp(word, "..") == 0) {
			free(copy);
			free(out);
			errno = EINVAL;
			return NULL;
		}
		at += (size_t)sprintf(out + at, "/%s", word);
		(*level)++;
	}
	if (at == 0)
		strcpy(out, "/");
	free(copy);
	return out;
}

int
rule_cgroup_lookup(const char *arg, uint64_t *id, uint32_t *level,
    char **path, char *errbuf)
{
	char root[PATH_MAX], *full, *rel;
	size_t rootlen;
	struct statfs sfs;
	struct stat st;
	int e;

	if (cgroup2_root(root, sizeof(root)) < 0)
		return rule_seterr(errbuf, EINVAL, "--cgroup: no cgroup2 file system "
		    "is mounted here (/proc/self/mountinfo)");
	rootlen = strlen(root);
	/* A path under the mount, else a cgroup path from the root. */
	if (strncmp(arg, root, rootlen) == 0 && (arg[rootlen] == '/' || arg[rootlen] == '\0'))
		arg += rootlen;
	if ((rel = canonical(arg, level)) == NULL)
		return rule_seterr(errbuf, errno, "--cgroup '%s': %s", arg, errno == EINVAL ?
		    "want a path without . or .." : strerror(errno));
	if (asprintf(&full, "%s%s", root, rel) < 0) {
		free(rel);
		return rule_seterr(errbuf, ENOMEM, "out of memory");
	}
	if (stat(full, &st) < 0 || statfs(full, &sfs) < 0) {
		e = EINVAL;
		rule_seterr(errbuf, e, "--cgroup '%s': no such cgroup (%s: %s)", arg, full,
		    strerror(errno));
	} else if (!S_ISDIR(st.st_mode) || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		e = EINVAL;
		rule_seterr(errbuf, e, "--cgroup '%s': %s is not a cgroup v2 directory",
		    arg, full);
	} else {
		e = 0;
		*id = st.st_ino;
		*path = rel;
	}
	free(full);
	if (e != 0) {
		free(rel);
		errno = e;
		return -1;
	}
	return 0;
}

/* Below dir (path from the root: rel), the directory id at depth level: its path. */
static char *
find_below(int dir, const char *rel, uint64_t id, uint32_t level)
{
	char *found = NULL, *sub;
	struct dirent *d;
	DIR *dp;
	int fd;

	if ((dp = fdopendir(dir)) == NULL) {
		close(dir);
		return NULL;
	}
	while (found == NULL && (d = readdir(dp)) != NULL) {
		if (d->d_type != DT_DIR || strcmp(d->d_name, ".") == 0 ||
		    strcmp(d->d_name, "..") == 0)
			continue;
		if (asprintf(&sub, "%s/%s", strcmp(rel, "/") == 0 ? "" : rel,
		    d->d_name) < 0)
			break;
		if (level == 1 && d->d_ino == id) {
			found = sub;
			break;
		}
		if (level > 1 && (fd = openat(dirfd(dp), d->d_name,
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
			found = find_below(fd, sub, id, level - 1);
		free(sub);
	}
	closedir(dp);
	return found;
}

char *
rule_cgroup_path(uint64_t id, uint32_t level)
{
	char root[PATH_MAX], *found;
	struct stat st;
	int fd;

	if (cgroup2_root(root, sizeof(root)) < 0)
		return NULL;
	if (level == 0) {
		if (stat(root, &st) < 0)
			return NULL;
		if (st.st_ino == id)
			return strdup("/");
		errno = ENOENT;
		return NULL;
	}
	if ((fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return NULL;
	if ((found = find_below(fd, "/", id, level)) == NULL)
		errno = ENOENT;
	return found;
}
