/*
 * tun.c - TUN + clsact + cls_bpf (mark) + mirred ingress redirect, one per
 * interface and mark.
 *
 * The classifier sets a constant mark: the handle's loop-avoidance bit, or
 * a record's own mark with the bit added.  So a record with a mark of its
 * own goes through a TUN of its own for that (interface, mark); the first
 * TUN_MARKS such marks are served so, later ones by the interface's plain
 * TUN (their mark is not restored: the bit alone).
 *
 * A redirect names its target by index, and the kernel drops what it
 * redirects to an interface that is down or gone without telling the
 * writer.  So the set follows the targets' links through rtnetlink's link
 * notifications (RTNLGRP_LINK): a packet for a target that is down or
 * deleted is refused, and a deleted target is picked up again when an
 * interface of the same name appears (its records keep naming the old
 * index).  The notification socket is read, without waiting, at most once
 * per tick of the coarse clock (a few milliseconds), when a write fails,
 * and at the end: reading it before every packet costs a system call each,
 * about 40% of the inbound rate (measured).  A change noticed a tick late
 * costs nothing in the accounting: packets written meanwhile to a target
 * that stopped are failed by its redirect, whose count is read as the
 * change is noticed (settle), and reported lost (tun_losses).
 *
 * Every request that waits for the kernel's answer goes through nl_talk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include <libmnl/libmnl.h>
#include <linux/bpf.h>
#include <linux/gen_stats.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>

#include "nl.h"
#include "tun.h"

#define FILTER_PRIO	1
#define FILTER_HANDLE	1
#define PROG_NAME	"divert_mark"
#define NL_BUF		8192	/* an answer: an ack with extended-ack text, a filter */
#define REQ_BUF		1024	/* a request */

#define NAMES		16	/* interface names remembered (tun_index_of) */
#define NAME_TTL	1	/* seconds a remembered index is trusted */

/* An interface name and the index it had when looked up (0: none here). */
struct name {
	char		name[IFNAMSIZ];
	uint32_t	index;
	time_t		when;		/* monotonic seconds; 0: empty */
};

/* What a target interface is now. */
enum link { L_UP, L_DOWN, L_GONE };

struct tun {
	uint32_t	ifindex;		/* the index records name: the key, */
	uint32_t	mark;			/* with the mark the classifier sets */
	uint32_t	target;			/* the interface X it means now */
	char		target_name[IFNAMSIZ];	/* X's name: how it is found again */
	int		link;			/* enum link, of X */
	int		fd;			/* the TUN; closing it removes everything; -1 */
	char		name[IFNAMSIZ];		/* the TUN's */
	int		index;			/* the TUN's */
	uint32_t	failed;			/* the redirect's failures, as last read */
};

struct tun_set {
	struct nl		 nl;		/* requests */
	struct mnl_socket	*ev;		/* link notifications, non-blocking */
	struct timespec		 looked;	/* when ev was last read (coarse clock) */
	uint32_t		 mark;		/* the loop-avoidance bit */
	int			 built;		/* a path was built: the kernel has what we need */
	uint64_t		 late_down, late_gone;	/* see tun_losses */
	int			 n;
	int			 nplain, nmarked;	/* entries of the bit alone, of other marks */
	struct tun		 t[TUN_MAX + TUN_MARKS];
	struct name		 names[NAMES];	/* tun_index_of's, by a hash of the name */
	char			 buf[NL_BUF];
	char			 evbuf[4 * NL_BUF];
};

/*
 * Subscribe to link notifications (made before any target is looked at:
 * none missed).  Non-blocking: follow_links reads what has come.
 */
static struct mnl_socket *
watch_links(void)
{
	struct mnl_socket *ev = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	int e;

	if (ev != NULL && mnl_socket_bind(ev, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		e = errno;
		mnl_socket_close(ev);
		errno = e;
		return NULL;
	}
	return ev;
}

struct tun_set *
tun_open(uint32_t mark, char *why, size_t whylen)
{
	struct tun_set *ts = calloc(1, sizeof(*ts));
	int rc;

	if (ts == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	ts->mark = mark;
	if ((rc = nl_open(&ts->nl, NETLINK_ROUTE)) < 0 || (ts->ev = watch_links()) == NULL) {
		snprintf(why, whylen, "cannot open rtnetlink: %s", strerror(rc < 0 ? -rc : errno));
		tun_close(ts);
		return NULL;
	}
	return ts;
}

/*
 * Send one request and wait for its ack: 0, or -errno (errno set too: nl_talk
 * leaves it as anything) with the kernel's words in why.
 */
static int
request(struct tun_set *ts, struct nlmsghdr *req, char *why, size_t whylen)
{
	char kernel[256];
	int rc;

	rc = nl_talk(&ts->nl, req, NULL, NULL, ts->buf, sizeof(ts->buf), kernel, sizeof(kernel));
	if (rc < 0) {
		snprintf(why, whylen, "%s%s%s", strerror(-rc), kernel[0] ? ": " : "", kernel);
		errno = -rc;
	}
	return rc;
}

/*
 * The classifier: skb->mark = mark; return -1 (a match: run the actions).
 * A store of an immediate into the context is refused by the verifier, so
 * the mark goes through r2.
 */
static int
load_program(uint32_t mark, char *why, size_t whylen)
{
	struct bpf_insn prog[] = {
		{ .code = BPF_ALU | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = (int32_t)mark },
		{ .code = BPF_STX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_2,
		  .off = offsetof(struct __sk_buff, mark) },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = -1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	char log[4096];
	union bpf_attr attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SCHED_CLS;
	attr.insns = (uintptr_t)prog;
	attr.insn_cnt = sizeof(prog) / sizeof(prog[0]);
	attr.license = (uintptr_t)"GPL";
	attr.log_buf = (uintptr_t)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	memcpy(attr.prog_name, PROG_NAME, sizeof(PROG_NAME));
	log[0] = '\0';
	fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (fd >= 0)
		return fd;
	switch (errno) {
	case ENOSYS:
		snprintf(why, whylen, "the kernel lacks the bpf() system call "
		    "(CONFIG_BPF_SYSCALL), needed for inbound injection");
		break;
	case EPERM:
	case EACCES:
		snprintf(why, whylen, "loading a BPF classifier needs CAP_BPF and "
		    "CAP_NET_ADMIN: run as root");
		break;
	default:
		log[strcspn(log, "\n")] = '\0';
		snprintf(why, whylen, "the kernel refused the BPF classifier (%s%s%s); "
		    "inbound injection needs CONFIG_NET_CLS_BPF", strerror(errno),
		    log[0] ? ": " : "", log);
	}
	return -1;
}

/* A TUN device (IFF_TUN, no packet information); its name goes to name. */
static int
create_tun(char *name, char *why, size_t whylen)
{
	struct ifreq ifr;
	int fd;

	if ((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) < 0) {
		snprintf(why, whylen, errno == ENOENT || errno == ENODEV || errno == ENXIO ?
		    "no /dev/net/tun: the kernel lacks TUN devices (CONFIG_TUN; try "
		    "modprobe tun), needed for inbound injection" :
		    "cannot open /dev/net/tun: %s", strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	strcpy(ifr.ifr_name, "divert%d");
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		snprintf(why, whylen, "cannot create a TUN device: %s",
		    errno == EPERM ? "needs CAP_NET_ADMIN: run as root" : strerror(errno));
		close(fd);
		return -1;
	}
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = '\0';
	return fd;
}

/* Bring a link up (a down TUN answers writes with EIO). */
static int
link_up(struct tun_set *ts, int ifindex, char *why, size_t whylen)
{
	union { char buf[REQ_BUF]; struct nlmsghdr align; } req;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req.buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_NEWLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return request(ts, nlh, why, whylen);
}

static struct tcmsg *
tc_header(struct nlmsghdr *nlh, int type, int ifindex, uint32_t parent)
{
	struct tcmsg *tcm;

	nlh->nlmsg_type = (uint16_t)type;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = parent;
	return tcm;
}

/* The clsact qdisc: the hook the classifier hangs on. */
static int
add_clsact(struct tun_set *ts, int ifindex, char *why, size_t whylen)
{
	union { char buf[REQ_BUF]; struct nlmsghdr align; } req;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req.buf);
	struct tcmsg *tcm = tc_header(nlh, RTM_NEWQDISC, ifindex, TC_H_CLSACT);

	tcm->tcm_handle = TC_H_MAKE(TC_H_CLSACT, 0);
	mnl_attr_put_strz(nlh, TCA_KIND, "clsact");
	return request(ts, nlh, why, whylen);
}

/*
 * Ingress filter: the marking program, then mirred "ingress redirect" to
 * target.  The protocol must be in network order, or it never matches.
 */
static int
add_redirect(struct tun_set *ts, int ifindex, uint32_t target, int prog, char *why,
    size_t whylen)
{
	union { char buf[REQ_BUF]; struct nlmsghdr align; } req;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req.buf);
	struct tcmsg *tcm = tc_header(nlh, RTM_NEWTFILTER, ifindex,
	    TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS));
	struct tc_mirred parms = { .action = TC_ACT_STOLEN, .eaction = TCA_INGRESS_REDIR,
		.ifindex = target };
	struct nlattr *opts, *acts, *act, *aopts;

	tcm->tcm_info = TC_H_MAKE(FILTER_PRIO << 16, htons(ETH_P_ALL));
	tcm->tcm_handle = FILTER_HANDLE;
	mnl_attr_put_strz(nlh, TCA_KIND, "bpf");
	opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put_u32(nlh, TCA_BPF_FD, (uint32_t)prog);
	mnl_attr_put_strz(nlh, TCA_BPF_NAME, PROG_NAME);
	acts = mnl_attr_nest_start(nlh, TCA_BPF_ACT);
	act = mnl_attr_nest_start(nlh, 1);
	mnl_attr_put_strz(nlh, TCA_ACT_KIND, "mirred");
	aopts = mnl_attr_nest_start(nlh, TCA_ACT_OPTIONS);
	mnl_attr_put(nlh, TCA_MIRRED_PARMS, sizeof(parms), &parms);
	mnl_attr_nest_end(nlh, aopts);
	mnl_attr_nest_end(nlh, act);
	mnl_attr_nest_end(nlh, acts);
	mnl_attr_nest_end(nlh, opts);
	return request(ts, nlh, why, whylen);
}

/* Prefix why with what was being done and the kernel option it needs (errno kept). */
static void
explain(char *why, size_t whylen, const char *doing, const char *config)
{
	char kernel[256];
	int e = errno;

	snprintf(kernel, sizeof(kernel), "%s", why);
	snprintf(why, whylen, "%s: %s (inbound injection needs %s)", doing, kernel, config);
	errno = e;
}

/* Up and running (carrier): what mirred needs to deliver to it. */
static int
link_of(unsigned flags)
{
	return (flags & IFF_UP) && (flags & IFF_RUNNING) ? L_UP : L_DOWN;
}

/* The state of the interface called name, asked directly (L_GONE: none). */
static int
link_by_name(struct tun_set *ts, const char *name)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(mnl_socket_get_fd(ts->ev), SIOCGIFFLAGS, &ifr) < 0)
		return L_GONE;
	return link_of((unsigned)(unsigned short)ifr.ifr_flags);
}

/* The nested attribute of type in a (NULL if none). */
static const struct nlattr *
nested(const struct nlattr *a, uint16_t type)
{
	const struct nlattr *n;

	if (a == NULL)
		return NULL;
	mnl_attr_for_each_nested(n, a)
		if (mnl_attr_get_type(n) == type)
			return n;
	return NULL;
}

/* The mirred action's overlimits in the filter nl_talk was answered with. */
static int
filter_stats(const struct nlmsghdr *nlh, void *data)
{
	int64_t *failed = data;
	const struct nlattr *a, *opts = NULL, *q;
	struct gnet_stats_queue stats;

	if (nlh->nlmsg_type != RTM_NEWTFILTER)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(struct tcmsg))
		if (mnl_attr_get_type(a) == TCA_OPTIONS)
			opts = a;
	/* options { bpf actions { 1 { stats { queue } } } } */
	q = nested(nested(nested(nested(opts, TCA_BPF_ACT), 1), TCA_ACT_STATS),
	    TCA_STATS_QUEUE);
	if (q != NULL && mnl_attr_get_payload_len(q) >= sizeof(stats)) {
		memcpy(&stats, mnl_attr_get_payload(q), sizeof(stats));
		*failed = stats.overlimits;
	}
	return MNL_CB_OK;
}

/*
 * How many packets t's redirect could not deliver (the mirred action's
 * overlimits: target down or gone), from the kernel; -1 if it cannot say.
 */
static int64_t
redirect_failures(struct tun_set *ts, const struct tun *t)
{
	union { char buf[REQ_BUF]; struct nlmsghdr align; } req;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req.buf);
	struct tcmsg *tcm = tc_header(nlh, RTM_GETTFILTER, t->index,
	    TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS));
	int64_t failed = -1;

	nlh->nlmsg_flags = 0;
	tcm->tcm_info = TC_H_MAKE(FILTER_PRIO << 16, htons(ETH_P_ALL));
	tcm->tcm_handle = FILTER_HANDLE;
	mnl_attr_put_strz(nlh, TCA_KIND, "bpf");
	if (nl_talk(&ts->nl, nlh, filter_stats, &failed, ts->buf, sizeof(ts->buf), NULL, 0) < 0)
		return -1;
	return failed;
}

/*
 * t's target stops taking packets (down, or gone): the packets its redirect
 * failed since the last look were counted injected, yet the kernel dropped
 * them (written as the change happened).  Count them as losses.
 */
static void
settle(struct tun_set *ts, struct tun *t, int link)
{
	int64_t failed;

	if (t->fd < 0 || (failed = redirect_failures(ts, t)) < 0 || (uint32_t)failed == t->failed)
		return;
	if (link == L_GONE)
		ts->late_gone += (uint32_t)failed - t->failed;
	else
		ts->late_down += (uint32_t)failed - t->failed;
	t->failed = (uint32_t)failed;
}

/* The target is gone: its TUN redirects nowhere; keep its name to find it again. */
static void
target_gone(struct tun_set *ts, struct tun *t)
{
	settle(ts, t, L_GONE);
	t->link = L_GONE;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

/*
 * A link changed: the names remembered for its index (renamed, or gone),
 * and, if it has a name, that name's (it may be new) are looked up again.
 */
static void
forget_names(struct tun_set *ts, uint32_t index, const char *name)
{
	struct name *n;

	for (n = ts->names; n < ts->names + NAMES; n++)
		if (n->index == index || (name != NULL && strcmp(n->name, name) == 0))
			n->when = 0;
}

/* One link notification: targets go down, come up, go, come back by name. */
static void
link_event(struct tun_set *ts, const struct nlmsghdr *nlh)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	const char *name = NULL;
	uint32_t index = (uint32_t)ifi->ifi_index;
	struct tun *t;

	mnl_attr_for_each(a, nlh, sizeof(*ifi))
		if (mnl_attr_get_type(a) == IFLA_IFNAME &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			name = mnl_attr_get_str(a);
	forget_names(ts, index, name);
	for (t = ts->t; t < ts->t + ts->n; t++) {
		if (t->link != L_GONE && t->target == index) {
			if (nlh->nlmsg_type == RTM_DELLINK) {
				target_gone(ts, t);
				continue;
			}
			if (link_of(ifi->ifi_flags) == L_DOWN)
				settle(ts, t, L_DOWN);
			t->link = link_of(ifi->ifi_flags);
			if (name != NULL)	/* renamed: it is still the same interface */
				snprintf(t->target_name, sizeof(t->target_name), "%s", name);
		} else if (t->link == L_GONE && nlh->nlmsg_type == RTM_NEWLINK &&
		    name != NULL && strcmp(name, t->target_name) == 0) {
			t->target = index;	/* back: a new TUN is made on its next packet */
			t->link = link_of(ifi->ifi_flags);
		}
	}
}

/* Notifications were lost (the socket overflowed): ask about every target. */
static void
resync(struct tun_set *ts)
{
	char name[IF_NAMESIZE];
	struct tun *t;
	uint32_t index;
	int link;

	for (t = ts->t; t < ts->t + ts->n; t++) {
		if (t->link != L_GONE && if_indextoname(t->target, name) == NULL)
			target_gone(ts, t);
		else if (t->link != L_GONE)
			memcpy(t->target_name, name, sizeof(t->target_name));
		if (t->link == L_GONE && (index = if_nametoindex(t->target_name)) != 0)
			t->target = index;
		else if (t->link == L_GONE)
			continue;
		/* Asked once: a second look could see another state than the one settled. */
		link = link_by_name(ts, t->target_name);
		if (link == L_DOWN)
			settle(ts, t, L_DOWN);
		t->link = link;
		if (link == L_GONE)
			target_gone(ts, t);
	}
}

/* Whether the coarse clock has moved since the notifications were last read. */
static int
tick_passed(struct tun_set *ts)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	if (now.tv_sec == ts->looked.tv_sec && now.tv_nsec == ts->looked.tv_nsec)
		return 0;
	ts->looked = now;
	return 1;
}

/*
 * Apply every link notification that has come: when forced, or once a
 * tick (the first call always reads).
 */
static void
follow_links(struct tun_set *ts, int force)
{
	const struct nlmsghdr *nlh;
	ssize_t got;
	int n;

	if (!tick_passed(ts) && !force)
		return;
	for (;;) {
		got = mnl_socket_recvfrom(ts->ev, ts->evbuf, sizeof(ts->evbuf));
		if (got < 0 && errno == ENOBUFS) {
			memset(ts->names, 0, sizeof(ts->names));
			resync(ts);
			continue;
		}
		if (got <= 0)
			return;		/* EAGAIN: nothing more (other errors: as good as nothing) */
		n = (int)got;
		for (nlh = (void *)ts->evbuf; mnl_nlmsg_ok(nlh, n); nlh = mnl_nlmsg_next(nlh, &n))
			if ((nlh->nlmsg_type == RTM_NEWLINK || nlh->nlmsg_type == RTM_DELLINK) &&
			    nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifinfomsg)))
				link_event(ts, nlh);
	}
}

/*
 * The path for records naming ifindex: by that index, or the one a
 * recreated target now has (a live listener's records carry the new one);
 * of mark, or of any mark when any.
 */
static struct tun *
find(struct tun_set *ts, uint32_t ifindex, uint32_t mark, bool any)
{
	struct tun *t;

	for (t = ts->t; t < ts->t + ts->n; t++)
		if (t->ifindex == ifindex && (any || t->mark == mark))
			return t;
	for (t = ts->t; t < ts->t + ts->n; t++)
		if (t->link != L_GONE && t->target == ifindex && (any || t->mark == mark))
			return t;
	return NULL;
}

/* Make t's TUN, redirecting to t->target; an enum tun_result (errno set). */
static int
build(struct tun_set *ts, struct tun *t, char *why, size_t whylen)
{
	char name[IF_NAMESIZE];
	int idx, e, prog;

	if ((prog = load_program(t->mark, why, whylen)) < 0)
		return TUN_E_SYSTEM;
	if ((t->fd = create_tun(t->name, why, whylen)) < 0) {
		close(prog);
		return TUN_E_SYSTEM;
	}
	t->failed = 0;
	if ((t->index = idx = (int)if_nametoindex(t->name)) == 0) {
		snprintf(why, whylen, "TUN device %s vanished", t->name);
		errno = ENODEV;
		goto fail;
	}
	if (link_up(ts, idx, why, whylen) < 0) {
		explain(why, whylen, "cannot bring the TUN device up", "CAP_NET_ADMIN");
		goto fail;
	}
	if (add_clsact(ts, idx, why, whylen) < 0) {
		explain(why, whylen, "cannot add a clsact qdisc", "CONFIG_NET_SCH_INGRESS");
		goto fail;
	}
	if (add_redirect(ts, idx, t->target, prog, why, whylen) < 0) {
		explain(why, whylen, "cannot add the redirecting bpf filter",
		    "CONFIG_NET_CLS_BPF and CONFIG_NET_ACT_MIRRED");
		goto fail;
	}
	/* The filter holds the program now: it goes with the TUN. */
	close(prog);
	ts->built = 1;
	return TUN_OK;
fail:
	e = errno;		/* the kernel's refusal, for the caller's report */
	close(prog);
	close(t->fd);
	t->fd = -1;
	/*
	 * The target left while we set it up, or other targets work (so the
	 * kernel has what we need): only this packet is refused.  (t->name
	 * stays the TUN's: the target's name is only looked at.)
	 */
	if (ts->built || if_indextoname(t->target, name) == NULL) {
		errno = ENODEV;
		return TUN_E_NOIF;
	}
	errno = e;
	return TUN_E_SYSTEM;
}

/*
 * A new entry for records naming ifindex, of mark (not yet built); NULL
 * with why.  Another mark's entry for ifindex says what it means now.
 */
static struct tun *
add_target(struct tun_set *ts, uint32_t ifindex, uint32_t mark, char *why, size_t whylen)
{
	struct tun *t = &ts->t[ts->n], *known = find(ts, ifindex, 0, true);

	if (mark == ts->mark && ts->nplain == TUN_MAX) {
		snprintf(why, whylen, "more than %d inbound interfaces", TUN_MAX);
		errno = ENOSPC;
		return NULL;
	}
	if (known != NULL) {
		*t = *known;
		t->ifindex = ifindex;
	} else if (ifindex == 0 || if_indextoname(ifindex, t->target_name) == NULL) {
		snprintf(why, whylen, "no interface with index %u here", ifindex);
		errno = ENXIO;
		return NULL;
	} else {
		t->ifindex = t->target = ifindex;
		t->link = link_by_name(ts, t->target_name);
	}
	t->mark = mark;
	t->fd = -1;
	t->failed = 0;
	t->name[0] = '\0';
	t->index = 0;
	if (mark == ts->mark)
		ts->nplain++;
	else
		ts->nmarked++;
	ts->n++;
	return t;
}

/*
 * The entry for ifindex and mark, made if need be; past TUN_MARKS marks
 * other than the bit alone, the plain one.  NULL with why.
 */
static struct tun *
entry(struct tun_set *ts, uint32_t ifindex, uint32_t mark, char *why, size_t whylen)
{
	struct tun *t;

	if ((t = find(ts, ifindex, mark, false)) != NULL)
		return t;
	if (mark != ts->mark && ts->nmarked == TUN_MARKS)
		return entry(ts, ifindex, ts->mark, why, whylen);
	return add_target(ts, ifindex, mark, why, whylen);
}

/*
 * The path for ifindex and mark, ready to take a packet; an enum
 * tun_result, words in why.
 */
static int
ready(struct tun_set *ts, uint32_t ifindex, uint32_t mark, struct tun **tp, char *why,
    size_t whylen)
{
	struct tun *t;
	int rc;

	follow_links(ts, 0);
	if ((t = entry(ts, ifindex, mark, why, whylen)) == NULL)
		return TUN_E_NOIF;
	*tp = t;
	if (t->link == L_GONE) {
		snprintf(why, whylen, "%s (index %u) is gone; refused until an interface of "
		    "that name comes back", t->target_name, t->target);
		errno = ENODEV;
		return TUN_E_NOIF;
	}
	if (t->link == L_DOWN) {
		snprintf(why, whylen, "%s is down (or has no carrier); refused until it is up",
		    t->target_name);
		return TUN_E_DOWN;
	}
	if (t->fd < 0 && (rc = build(ts, t, why, whylen)) != TUN_OK)
		return rc;
	return TUN_OK;
}

int
tun_prepare(struct tun_set *ts, uint32_t ifindex, char *why, size_t whylen)
{
	struct tun *t;
	int rc = ready(ts, ifindex, ts->mark, &t, why, whylen);

	return rc == TUN_E_DOWN ? TUN_OK : rc;	/* down now: it may come up */
}

int
tun_inject(struct tun_set *ts, uint32_t *ifindex, uint32_t mark, const uint8_t *data,
    size_t len, char *why, size_t whylen)
{
	struct tun *t;
	uint64_t down, gone;
	ssize_t n;
	int rc, e;

	if ((rc = ready(ts, *ifindex, mark | ts->mark, &t, why, whylen)) != TUN_OK)
		return rc;
	*ifindex = t->target;
	while ((n = write(t->fd, data, len)) < 0 && errno == EINTR)
		;
	if (n < 0) {
		e = errno;
		snprintf(why, whylen, "write to %s: %s", t->name, strerror(e));
		follow_links(ts, 1);	/* a link change may be why */
		errno = e;
		return TUN_E_WRITE;
	}
	/*
	 * The write ran the redirect to its end (ingress redirects are
	 * synchronous).  If a link change has been told meanwhile, and the
	 * target stopped and its redirect failed packets, this one is the
	 * likeliest of them.
	 */
	down = ts->late_down;
	gone = ts->late_gone;
	follow_links(ts, 0);
	if (ts->late_down > down || ts->late_gone > gone) {
		snprintf(why, whylen, "%s went %s as the packet was written", t->target_name,
		    ts->late_gone > gone ? "away" : "down");
		if (ts->late_gone > gone) {
			ts->late_gone--;
			errno = ENODEV;
			return TUN_E_NOIF;
		}
		ts->late_down--;
		return TUN_E_DOWN;
	}
	return TUN_OK;
}

/* A hash of name, for the cache (FNV-1a). */
static unsigned
name_hash(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name != '\0'; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h % NAMES;
}

uint32_t
tun_index_of(struct tun_set *ts, const char *name)
{
	struct name *n = &ts->names[name_hash(name)];
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	follow_links(ts, 0);		/* a rename or a deletion forgets the names */
	if (n->when == 0 || now.tv_sec - n->when >= NAME_TTL || strcmp(n->name, name) != 0) {
		snprintf(n->name, sizeof(n->name), "%s", name);
		n->index = if_nametoindex(name);
		/* Seconds from 1: 0 marks an empty slot. */
		n->when = now.tv_sec > 0 ? now.tv_sec : 1;
	}
	return n->index;
}

void
tun_losses(struct tun_set *ts, int final, uint64_t *down, uint64_t *gone)
{
	struct tun *t;

	if (final) {
		follow_links(ts, 1);
		for (t = ts->t; t < ts->t + ts->n; t++)
			if (t->link == L_UP)
				settle(ts, t, L_DOWN);	/* carrier lost, not yet told */
	}
	*down = ts->late_down;
	*gone = ts->late_gone;
	ts->late_down = ts->late_gone = 0;
}

void
tun_close(struct tun_set *ts)
{
	int i;

	if (ts == NULL)
		return;
	for (i = 0; i < ts->n; i++)
		if (ts->t[i].fd >= 0)
			close(ts->t[i].fd);
	nl_close(&ts->nl);
	if (ts->ev != NULL)
		mnl_socket_close(ts->ev);
	free(ts);
}
