/*
 * rule_cgroup.h - cgroup v2 paths and ids for --cgroup (internal): the
 * cgroup2 mount is found in /proc/self/mountinfo, never assumed.
 */
#ifndef DIVERT_RULE_CGROUP_H
#define DIVERT_RULE_CGROUP_H

#include <stdint.h>

/*
 * The cgroup arg names: a directory under the cgroup2 mount
 * ("/sys/fs/cgroup/unified/a/b"), or a cgroup path as /proc/PID/cgroup
 * shows it ("/a/b", "a/b").  *id (its inode number), *level (its depth,
 * the root 0) and *path (malloc'd, from the root: "/a/b").  0, or -1 with
 * errno and words in errbuf.
 */
int rule_cgroup_lookup(const char *arg, uint64_t *id, uint32_t *level,
    char **path, char *errbuf);

/* The path from the root ("/a/b") of cgroup id at depth level: malloc'd; NULL with errno (ENOENT: gone). */
char *rule_cgroup_path(uint64_t id, uint32_t level);

#endif
