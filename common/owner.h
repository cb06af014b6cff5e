/*
 * owner.h - who holds a divert port or a rule table: the process whose
 * netlink socket bound the queue or owns the table, found through /proc
 * (this network namespace's view).
 */
#ifndef DIVERT_OWNER_H
#define DIVERT_OWNER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Whether queue num is bound in this namespace; if so, *pid is the process
 * holding the binding socket (0 when it cannot be found) and comm its name.
 */
int queue_owner(uint16_t num, pid_t *pid, char *comm, size_t commlen);

/* The process holding the netfilter netlink socket of that port id (0: none found), comm its name. */
pid_t netlink_owner(uint32_t portid, char *comm, size_t commlen);

/* Whether this process has CAP_NET_ADMIN in its effective set. */
int have_net_admin(void);

#endif
