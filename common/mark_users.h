/*
 * mark_users.h - tell the user of other rules that use the toolkit's mark bit
 * (kept apart from tool.h: it needs libnftnl, which not every tool links).
 */
#ifndef DIVERT_MARK_USERS_H
#define DIVERT_MARK_USERS_H

#include <stdint.h>

/* Warn on stderr of each rule outside the divert tables that uses a bit of mark. */
void warn_mark_users(uint32_t mark);

#endif
