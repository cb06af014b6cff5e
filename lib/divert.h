/*
 * divert.h - libdivert: BSD divert sockets on Linux.
 *
 * A divert rule (nftables, NFQUEUE) takes matching packets out of the IP
 * stack and hands them to a divert port.  A handle bound to that port
 * receives them with their divert address (direction, interface, port,
 * packet id, mark, hook); the program may send them back, changed or not,
 * outbound or inbound as if they arrived on an interface, or give each a
 * verdict in place.  See divert(3).
 *
 * Every function reports errors by return value and errno, with words in
 * the handle's error buffer (divert_geterr) or in the errbuf the caller
 * passes (DIVERT_ERRBUF_SIZE bytes): the library never prints, never
 * exits, and keeps no global state.
 */
#ifndef LIBDIVERT_H
#define LIBDIVERT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What this header declares is the library's interface; the rest is hidden. */
#pragma GCC visibility push(default)

#define DIVERT_VERSION		"0.2"
#define DIVERT_ERRBUF_SIZE	256
/* IF_NAMESIZE, without <net/if.h>: that header and <linux/if.h> exclude each other. */
#define DIVERT_IFNAMSIZ		16
#define DIVERT_TABLE		"divert"	/* the nftables table (inet) rules live in */

/*
 * Loop avoidance: packets a handle sends carry this mark bit, and divert
 * rules only take packets that lack it.  Programs and rules must agree on
 * the bit; the tools take it from the DIVERT_MARK environment variable.
 */
#define DIVERT_MARK_DEFAULT	0x10000000u

#define DIVERT_PORT_NONE	(-1)	/* divert_open: a handle that only sends */
#define DIVERT_BATCH		64	/* packets per receive (divert_dispatch) */
#define DIVERT_QUEUE_MAXLEN	8192	/* packets the kernel holds for one port */

enum divert_dir {
	DIVERT_DIR_UNKNOWN = 0,
	DIVERT_IN = 1,		/* arriving: the in-interface is ifindex */
	DIVERT_OUT = 2,		/* leaving (forwarded too): the out-interface */
};

/* The netfilter hook a packet was taken at (NF_INET_* numbering). */
enum divert_hook {
	DIVERT_HOOK_PREROUTING = 0,
	DIVERT_HOOK_INPUT = 1,
	DIVERT_HOOK_FORWARD = 2,
	DIVERT_HOOK_OUTPUT = 3,
	DIVERT_HOOK_POSTROUTING = 4,
	DIVERT_HOOK_UNKNOWN = 255,
};

/*
 * A packet's divert address: what divert(4)'s sockaddr said of it, and what
 * a program needs to hand the kernel back its own packet.
 */
struct divert_addr {
	struct timeval	ts;		/* when the kernel queued it (or was given it) */
	uint8_t		dir;		/* enum divert_dir */
	uint8_t		hook;		/* enum divert_hook */
	uint16_t	port;		/* divert port it came from */
	uint32_t	id;		/* packet id in that port's queue (verdicts) */
	uint32_t	ifindex;	/* in-interface (IN), out-interface (OUT); 0 none */
	uint32_t	other_ifindex;	/* a forwarded packet's in-interface; 0 none */
	uint32_t	mark;		/* the packet's mark (skb->mark) */
	uint16_t	proto;		/* ethertype: 0x0800, 0x86dd; 0 unknown */
	uint16_t	hatype;		/* ARPHRD_* of the link address; 0 unknown (a port never says) */
	uint8_t		halen;		/* link-layer source address (inbound), when known */
	uint8_t		haddr[8];
	uint32_t	cut;		/* bytes of the packet the kernel did not copy */
	char		ifname[DIVERT_IFNAMSIZ];	/* ifindex's name; "" unknown */
	char		other_ifname[DIVERT_IFNAMSIZ];	/* other_ifindex's name; "" unknown */
	/*
	 * The binding that holds the packet for an in-place verdict (a random
	 * number a bound handle draws at open: port and id alone repeat once a
	 * port is bound anew); 0: not held, a verdict cannot reach it.
	 */
	uint64_t	holder;
	uint32_t	uid, gid;	/* its socket's owner, when flags say so */
	uint32_t	flags;		/* DIVERT_ADDR_* */
	uint32_t	reserved[7];	/* zero: room to grow */
};
#define DIVERT_ADDR_QUEUE	0x1	/* port and id are known (a live port's packet) */
#define DIVERT_ADDR_UID		0x2	/* uid is known */
#define DIVERT_ADDR_GID		0x4	/* gid is known */
#define DIVERT_ADDR_GSO		0x8	/* a GSO packet (divert_set_gso), cut into
					   segments by the kernel once given back */

struct divert;

/*
 * Bind divert port (0..65535), or DIVERT_PORT_NONE for a handle that only
 * sends.  Packets the handle sends carry mark (loop avoidance).  flags:
 * DIVERT_HOLD makes divert_recv leave each packet it returns waiting for
 * the program's verdict (divert_verdict) instead of taking it out of the
 * stack.  A send-only handle opens its sockets now (so that one that
 * cannot send fails here); a bound one on its first send.  NULL with errno
 * set and words in errbuf (NULL: none wanted; EPERM: not root, or the port
 * is bound by another socket).
 */
#define DIVERT_HOLD	0x1
struct divert *divert_open(int port, uint32_t mark, unsigned flags, char *errbuf);

/*
 * The port's netlink socket, for poll() (POLLIN: packets ready); -1
 * send-only.  A joined handle's: its Unix socket to the listener
 * (readable: the answer came, or the listener left: call divert_joined).
 */
int divert_fd(const struct divert *h);

/* Words for the handle's last error. */
const char *divert_geterr(const struct divert *h);

/*
 * Send what is batched and buffered, unbind and close: the kernel drops
 * what is still queued (as divert(4)), held packets included; inbound
 * devices go away.  An offered port stops being offered first; a joined
 * handle tells its listener what it answered, and leaves.
 */
void divert_close(struct divert *h);

/*
 * Receiving.  divert_dispatch hands every packet that is ready (at most
 * DIVERT_BATCH, never waiting) to cb, zero copy: pkt points into the
 * handle's buffers and may be edited in place, until cb returns.  cb's
 * return value is the packet's verdict: DIVERT_DROP (the program has it,
 * as divert(4)), DIVERT_ACCEPT (let it go on), or DIVERT_HOLD_IT (the
 * program answers later with divert_verdict).  cb may instead answer the
 * packet itself with divert_verdict(h, from->id, ...) (to let it go on
 * changed); its return value then does not count, unless divert_verdict
 * failed.  Returns the number of packets, 0 when none was ready, -1 on
 * error (ENOBUFS: the kernel dropped some for want of room; counted, go
 * on).  Verdicts are sent before it returns, consecutive equal ones in one
 * message when no held packet is older.  When a verdict fails the batch is
 * still handed out whole and the rest sent, then -1: a packet whose
 * verdict could not be buffered is kept held (divert_verdict_upto answers
 * it), and verdicts that could not be sent are retried by the next flush.
 */
enum divert_verdict { DIVERT_DROP = 0, DIVERT_ACCEPT = 1, DIVERT_HOLD_IT = 2,
	DIVERT_HOLD_SHARED = 3 };
typedef int (*divert_cb)(const struct divert_addr *from, uint8_t *pkt, size_t len,
    void *arg);
int divert_dispatch(struct divert *h, divert_cb cb, void *arg);

/*
 * Receive one packet, copying (as recvfrom(2) on a divert socket): waits
 * unless the handle's fd is non-blocking.  Copies at most size bytes into
 * buf and returns the packet's length (more than size: cut), -1 on error
 * (EAGAIN: nothing ready).  from (NULL: not wanted) gets its address.
 * Without DIVERT_HOLD the packet is the program's: taken out of the stack
 * (the verdicts go in batches, at the latest when nothing more is ready).
 */
ssize_t divert_recv(struct divert *h, void *buf, size_t size, struct divert_addr *from);

/*
 * Verdicts for held packets (DIVERT_HOLD, DIVERT_HOLD_IT): DIVERT_DROP, or
 * DIVERT_ACCEPT with pkt (len bytes) as its new contents (NULL: unchanged;
 * the kernel does not fix an IPv4 header checksum).  The packet goes on
 * from where the kernel took it, with its conntrack entry, mark and
 * socket.  Verdicts are buffered until divert_flush (one with new contents
 * is sent at once, after them).  divert_verdict_upto gives one verdict to
 * every packet still held with an id up to id, in one message.  0, or -1
 * with errno (EMSGSIZE: new contents over 65531 bytes): the packet then
 * stays held, or, for dispatch's packet in hand, the callback's return
 * value counts.  divert_verdict_upto leaves the packets held for joiners
 * (DIVERT_HOLD_SHARED) alone.
 */
int divert_verdict(struct divert *h, uint32_t id, int verdict, const void *pkt, size_t len);
int divert_verdict_upto(struct divert *h, uint32_t id, int verdict);

/*
 * In place, across processes.  A bound handle offers its port: other
 * processes of the same network namespace join it (divert_join) and answer
 * the packets it holds for them with their own verdicts, on the port's
 * socket itself (passed to them over a Unix socket), with no extra hop.
 *
 * The session is a random non-zero number a bound handle draws at open: a
 * program that holds a packet for the joiners (its callback returns
 * DIVERT_HOLD_SHARED) sets the packet address's holder to it, and a joined
 * handle answers only packets whose holder is its listener's session (port
 * and id alone are not enough: ids start again at each binding).  0 for a
 * send-only handle, and for a joined one until the listener answered.
 */
uint64_t divert_session(const struct divert *h);

/*
 * Offer the port to joiners, who may answer each packet up to hold_ms
 * after it was held (the listener's hold timeout, which they are told).
 * Only processes of the same user, or root, may join.  0, or -1 with errno
 * (EADDRINUSE: another process offers this port here; EINVAL: send-only).
 */
int divert_offer(struct divert *h, unsigned hold_ms);

/* A descriptor for poll() (POLLIN: joiners to take in or hear; -1: not offered). */
int divert_offer_fd(const struct divert *h);

/*
 * Take in the joins that are waiting, hear what joiners say and see which
 * left, without waiting: 0, or -1 with errno.  A few looks per call, never
 * a loop (call it again when divert_offer_fd is readable); a process that connected and
 * has not asked to join within a second is dropped, and past 16 such, a
 * newcomer is refused.
 */
int divert_offer_run(struct divert *h);

/* Who has joined an offered port, and what those that left reported doing. */
struct divert_joiners {
	unsigned	joined;		/* processes joined now */
	unsigned	injectors;	/* ...of which injectors (DIVERT_JOIN_INJECT) */
	uint64_t	joins;		/* joins accepted so far */
	uint64_t	accepted;	/* packets accepted in place, by those that left */
	uint64_t	dropped;	/* packets dropped in place, by those that left */
};
int divert_offer_info(const struct divert *h, struct divert_joiners *j);

/*
 * Packets held for the joiners (DIVERT_HOLD_SHARED) are listed with the
 * time they were held, answered or not (the joiners answer them on the
 * port's socket: this side does not see it).  divert_held_age: how long
 * the oldest has waited (ms), -1 when none is listed.
 * divert_verdict_expired gives verdict (DIVERT_DROP, DIVERT_ACCEPT) to
 * every one listed for ms or more, in one message (the kernel answers only
 * those it still holds) and forgets them: their number, or -1 with errno.
 */
long divert_held_age(const struct divert *h);
int divert_verdict_expired(struct divert *h, unsigned ms, int verdict);

/*
 * How many packets the kernel may hold for the port (queued, not yet
 * answered; DIVERT_QUEUE_MAXLEN at open); more are dropped.  The socket's
 * receive buffer is sized to hold n packets of the largest copy (at most
 * 64 MiB).  Call it right after divert_open: packets that come meanwhile
 * are let through.  0, or -1 with errno.
 */
int divert_set_queue_len(struct divert *h, uint32_t n);

/* on: a full queue lets packets through (uncounted) instead of dropping them; 0, or -1. */
int divert_set_fail_open(struct divert *h, int on);

/*
 * on: the kernel queues GSO packets whole (up to 64 KiB of TCP or UDP that
 * it would otherwise cut into what goes on the wire before queueing), many
 * times fewer packets for a bulk flow.  Their L4 checksums, which the kernel
 * leaves for the device to finish, are summed here before the packet is
 * read.  Such a packet can be larger than the MTU: give it back in place
 * (divert_verdict, divert_verdict_in_place); sent as a copy, IPv4 with DF
 * is refused (EMSGSIZE), the rest fragmented.  0, or -1 with errno.
 */
int divert_set_gso(struct divert *h, int on);

/*
 * Join the port offered in this network namespace: a handle that answers
 * its held packets (divert_verdict_in_place).  DIVERT_JOIN_INJECT: this
 * process gives packets back (the listener holds while an injector is
 * joined); without it, it only drops some.  The request is sent here and
 * the answer taken later, never waiting (the listener may be busy writing
 * to this very process): divert_joined says when it came.  NULL with errno
 * (ECONNREFUSED: no process offers the port here; EPERM) and words in
 * errbuf.
 */
#define DIVERT_JOIN_INJECT	0x1
struct divert *divert_join(int port, unsigned flags, char *errbuf);

/*
 * Whether a joined handle is joined, without waiting: 1, with the
 * listener's session and hold timeout known; 0 while its answer has not
 * come (divert_fd is readable when it has); -1 with errno once it refused
 * (EPERM) or left (EPIPE): the handle has then closed its copy of the
 * port's socket, at once, so that the port is free for another binding.
 */
int divert_joined(struct divert *h);

/* A joined handle's listener's hold timeout (ms); 0 until joined. */
unsigned divert_hold_timeout(const struct divert *h);

/*
 * Answer a held packet, given the address its listener gave it: a->port,
 * a->id and a->holder must be the joined (or this bound) handle's port and
 * session, and a->ts younger than the hold timeout.  DIVERT_DROP, or
 * DIVERT_ACCEPT with pkt (len bytes, copied) as its new contents (NULL:
 * unchanged).  A joined handle buffers verdicts (one message each, sent
 * together at divert_flush or when the buffer is full).  0, or -1 with
 * errno: ESRCH (not a packet this binding holds: give a copy instead),
 * ETIMEDOUT (too old: the listener drops it), EAGAIN (not joined yet),
 * EPIPE (the listener left), EMSGSIZE.
 */
int divert_verdict_in_place(struct divert *h, const struct divert_addr *a, int verdict,
    const void *pkt, size_t len);

/*
 * A joined handle's verdicts so far: those sent (accepted, dropped: what
 * it tells its listener as it leaves), and those lost (failed): their send
 * failed, or the listener left before they went.  Buffered verdicts are in
 * none yet.  0, or -1 with errno EINVAL (not a joined handle).
 */
struct divert_join_stats {
	uint64_t	accepted;
	uint64_t	dropped;
	uint64_t	failed;
};
int divert_join_stats(const struct divert *h, struct divert_join_stats *st);

/*
 * Sending (as sendto(2) on a divert socket).  to->dir DIVERT_OUT (or
 * unknown): out through a raw socket, routed by destination.  DIVERT_IN:
 * into the stack as if it arrived on the interface named to->ifname, or
 * on to->ifindex when the name is empty or not here.  pkt is a whole IPv4
 * or IPv6 packet; its length fields and IPv4 header checksum are set from
 * len (a longer length field: len wins; a shorter one trims the packet),
 * an outbound IPv4 ID 0 is filled (DF clear), and a packet over the route
 * MTU is fragmented (IPv4 without DF, IPv6 with a fragment header).  The
 * packet carries the handle's mark: outbound with to->mark not 0, it is
 * sent and routed with to->mark, and the loop tag chain divert_rule_add
 * makes adds the handle's bit after routing; with 0, the handle's mark is
 * its whole mark; inbound, its mark is to->mark | the handle's mark.  pkt
 * is changed in place (length fields, ID).
 *
 * Without a report function (divert_set_report) the packet is sent at once:
 * 0, or -1 with errno and words in divert_geterr.  With one, outbound
 * packets are batched (sendmmsg) until divert_flush or a full batch, every
 * packet's fate reaches the report function in the order given, and
 * divert_send returns 0 (-1 only when nothing can be sent: the send path
 * cannot be opened, or DIVERT_E_SYSTEM).  A packet refused by the checks
 * (DIVERT_E_NOTIP..DIVERT_E_TOOLONG) is reported before divert_send
 * returns.  The report and tap functions must not send on the handle.
 */
int divert_send(struct divert *h, uint8_t *pkt, size_t len, const struct divert_addr *to);

/* A packet's fate (divert_report.result); error is its errno. */
enum divert_result {
	DIVERT_SENT = 0,
	DIVERT_E_NOTIP,		/* not an IPv4 or IPv6 packet (EPROTONOSUPPORT) */
	DIVERT_E_MALFORMED,	/* its IP header is broken (EINVAL) */
	DIVERT_E_CUT,		/* incomplete: to->cut bytes missing (EINVAL) */
	DIVERT_E_TOOLONG,	/* longer than IP allows (EMSGSIZE) */
	DIVERT_E_DF,		/* over the route MTU with Don't Fragment (EMSGSIZE) */
	DIVERT_E_NOFRAG,	/* over the route MTU and cannot be fragmented (EMSGSIZE) */
	DIVERT_E_NOIF,		/* inbound: no interface to arrive on: none given
				   (EDESTADDRREQ), none such here (ENXIO), it went
				   away (ENODEV), too many (ENOSPC) */
	DIVERT_E_IFDOWN,	/* inbound: the interface is down (ENETDOWN) */
	DIVERT_E_SNDBUF,	/* send buffer full: the neighbour does not answer (EAGAIN) */
	DIVERT_E_KERNEL,	/* the kernel refused it (a firewall rule, ...) */
	DIVERT_E_SYSTEM,	/* the inbound path cannot be built: nothing inbound will work */
};

struct divert_report {
	const struct divert_addr *to;	/* as given, dir IN or OUT (ifindex: where it went) */
	const uint8_t	*pkt;		/* the packet as sent (length fixed), len bytes */
	size_t		 len;
	int		 result;	/* enum divert_result */
	int		 error;		/* the errno behind a refusal */
	unsigned	 fragments;	/* the pieces it went in: 1 whole, more fragmented */
	const char	*why;		/* words for a refusal */
};
typedef void (*divert_report_fn)(const struct divert_report *r, void *arg);
void divert_set_report(struct divert *h, divert_report_fn fn, void *arg);

/*
 * A tap: fn sees every packet the handle put into the stack, as it went
 * (each fragment of a fragmented one), with to's direction and interface,
 * before the packet's report.
 */
typedef void (*divert_tap_fn)(const struct divert_addr *to, const uint8_t *pkt,
    size_t len, void *arg);
void divert_set_tap(struct divert *h, divert_tap_fn fn, void *arg);

/* Send buffered verdicts and batched packets.  0, or -1 with errno. */
int divert_flush(struct divert *h);

/*
 * Build the inbound path to ifindex now (it is otherwise built on first
 * use), so that a kernel lacking something fails at once: 0, or -1.
 */
int divert_prepare_in(struct divert *h, uint32_t ifindex);

/*
 * Inbound packets reported sent that the kernel dropped after all: their
 * interface went down (*down) or away (*gone) in the instant they were
 * written.  final: ask about every interface now (at the end).  Counts
 * since the last call.
 */
void divert_inbound_losses(struct divert *h, int final, uint64_t *down, uint64_t *gone);

/* Counters of a bound port (all 0 for a send-only handle): 0, or -1 with errno. */
struct divert_stats {
	uint64_t	received;	/* packets handed to the program */
	uint64_t	overruns;	/* receives that found messages lost (ENOBUFS) */
	uint64_t	kernel_drops;	/* dropped by the kernel: queue full, failed send */
};
int divert_stats(const struct divert *h, struct divert_stats *st);

/* A bound port, as /proc/net/netfilter/nfnetlink_queue shows it. */
struct divert_port_info {
	unsigned long	port;
	unsigned long	portid;		/* netlink portid of the socket that bound it */
	uint64_t	drops;		/* dropped by the kernel */
};

/*
 * The first port bound in this network namespace within [lo,hi]: 1 and *pi,
 * 0 when none (or nfnetlink_queue is not loaded), -1 with errno when the
 * list cannot be read.
 */
int divert_port_bound(long lo, long hi, struct divert_port_info *pi);

/*
 * Rules: the nftables rules that feed divert ports, in the toolkit's own
 * table (inet divert).  Nothing else in the ruleset is touched.
 */
enum divert_chain {
	DIVERT_CHAIN_PREROUTING, DIVERT_CHAIN_INPUT, DIVERT_CHAIN_FORWARD,
	DIVERT_CHAIN_OUTPUT, DIVERT_CHAIN_POSTROUTING, DIVERT_CHAIN_NONE = -1
};

struct divert_rule_addr {
	int		family;		/* 0: no match, AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network order, host bits cleared */
	int		prefix;		/* 0..32 or 0..128 */
};

struct divert_rule {
	int		chain;		/* enum divert_chain */
	int		proto;		/* IPPROTO_*, -1: any protocol */
	int		family;		/* 0: both (or the addresses'), AF_INET, AF_INET6 */
	long		sport_lo, sport_hi;	/* -1: any */
	long		dport_lo, dport_hi;	/* -1: any */
	char		iif[DIVERT_IFNAMSIZ], oif[DIVERT_IFNAMSIZ];	/* "": any */
	int		pass_through;	/* packets go on when nobody listens */
	int		priority;	/* chain priority (the hook's default unless set) */
	int		priority_set;	/* priority given */
	int		fanout;		/* balance by CPU over port_lo..port_hi */
	long		port_lo, port_hi;	/* divert port(s) */
	uint32_t	mark;		/* loop-avoidance bit the rule skips (non-zero) */
	uint64_t	handle;		/* kernel handle once added or listed; 0 unknown */
	/*
	 * The rule's own tag: a random number divert_rule_add puts in the
	 * rule's comment and divert_rule_list reads back; 0 none.  A handle
	 * may be reused after a flush; a tag names one rule only.
	 */
	uint64_t	tag;
	uint64_t	packets, bytes;	/* the rule's counter, as listed */
	/*
	 * As listed: the netlink port id of the socket that owns the rule's
	 * table (divert_rules_open), 0 for the shared table.
	 */
	uint32_t	owner;
	/*
	 * -s, -d: any of nsrc (ndst) prefixes, all of one family; none: any
	 * address.  Heap arrays the rule owns: divert_rule_clear frees them.
	 */
	struct divert_rule_addr	*src, *dst;
	size_t		nsrc, ndst;
	long		uid_lo, uid_hi;	/* --uid: the socket owner's uid in lo..hi; -1: any */
	long		gid_lo, gid_hi;	/* --gid: its gid; -1: any */
	/*
	 * --cgroup: the socket's cgroup (v2) is this one or below it: its id
	 * (the directory's inode number) and depth (the root is 0); 0: any.
	 * cgroup is its path from the cgroup2 root ("/system.slice/x.service"),
	 * owned by the rule; NULL when unknown (gone since the rule was added).
	 */
	uint64_t	cgroup_id;
	uint32_t	cgroup_level;
	char		*cgroup;
	uint32_t	ct_state;	/* --ct-state: DIVERT_CT_* bits, any of them; 0: any */
	uint64_t	first;		/* --first N: the connection's first N packets; 0: all */
	uint32_t	mark_value, mark_mask;	/* --mark V/M: mark & M == V; M 0: any */
};

/* Connection states (--ct-state), as nftables' ct state bits. */
#define DIVERT_CT_INVALID	0x01
#define DIVERT_CT_ESTABLISHED	0x02
#define DIVERT_CT_RELATED	0x04
#define DIVERT_CT_NEW		0x08
#define DIVERT_CT_UNTRACKED	0x40

/*
 * A rule with nothing chosen yet: no chain, any protocol, no port, the
 * mark DIVERT_MARK_DEFAULT (set r->mark to the one the program uses).
 */
void divert_rule_init(struct divert_rule *r);

/*
 * Free what r owns (its prefix lists, its cgroup path) and init it again.
 * A rule that divert_rule_parse, divert_rule_option or divert_rule_copy
 * filled must be cleared once done with.
 */
void divert_rule_clear(struct divert_rule *r);

/*
 * A deep copy of src into dst (which owns nothing yet): what the rule that
 * divert_rule_list passes its callback is needed for past the call.  0, or
 * -1 with errno ENOMEM (dst is then as divert_rule_init left it).
 */
int divert_rule_copy(struct divert_rule *dst, const struct divert_rule *src);

/*
 * A rule from text: "CHAIN [PROTO] PORT [options]", the syntax of
 * divert-rule(1) add and list, words separated by blanks; options as
 * getopt_long reads them (-s ADDR, -sADDR, --src=ADDR, a unique prefix of
 * a long name), before, between or after the words; "--" ends them.  What
 * the text says is added to r, as divert_rule_init left it (r->mark may be
 * set).  DIVERT_RULE_NOPORT: the text has no PORT, r->port_lo..port_hi are
 * set already (a program that chose its port).  The whole rule is checked
 * (divert_rule_check).  0, or -1 with errno (EINVAL, ENOMEM) and words in
 * errbuf.
 */
#define DIVERT_RULE_NOPORT	0x1
int divert_rule_parse(struct divert_rule *r, const char *text, unsigned flags,
    char *errbuf);

/*
 * The parts of divert_rule_parse, for a program with its own command-line
 * parser.  divert_rule_words takes the positional words "CHAIN [PROTO]
 * PORT" (flags as above; PROTO is there when a word is left for it).
 * divert_rule_option takes one option spelt as in the text, short or long
 * ("-s", "--src", "--dport", "--fanout"), with its value (NULL for an
 * option without one).  divert_rule_check checks the rule as a whole
 * (CHAIN and PORT given, ports only with a protocol that has them, ...)
 * once all is set.  0, or -1 with EINVAL and words in errbuf.
 */
int divert_rule_words(struct divert_rule *r, char *const *words, int n,
    unsigned flags, char *errbuf);
int divert_rule_option(struct divert_rule *r, const char *opt, const char *arg,
    char *errbuf);
int divert_rule_check(const struct divert_rule *r, char *errbuf);

/*
 * The rule in that syntax, as divert_rule_parse takes it back (no handle,
 * no mark); snprintf's return (-1 with errno ENOMEM when it could not be
 * made).  A rule with no chain renders its options alone ("" when none was
 * given).  Several prefixes come out as one list ("-d A,B,C"), the
 * smallest that covers the same addresses, sorted: a rule's text can be
 * far longer than DIVERT_RULE_TEXT_MAX (call with len 0 for its length).
 */
#define DIVERT_RULE_TEXT_MAX	512
int divert_rule_format(const struct divert_rule *r, char *buf, size_t len);

/*
 * Kernel operations: 0, or -1 with errno and words in errbuf (EPERM: not
 * root; EINVAL: a rule divert_rule_check refuses).  Rules are the same
 * when their text and their mark are.
 *
 * add sets r->handle and r->tag; EEXIST: the same rule is there, r->handle
 * is its handle; ENOENT: the kernel has neither the nft queue expression
 * nor the xt NFQUEUE target.
 *
 * del removes by handle if set (a handle alone, chain DIVERT_CHAIN_NONE,
 * removes whatever rule of the table has it), else the first rule of the
 * same spec; with a tag only the rule carrying it; ENOENT: no such rule.
 * A chain (or the table) that it leaves empty goes too.
 *
 * list calls cb for every rule of the table, in order, with its handle,
 * tag, counter and mark: a rule of another program (another mark) is one
 * to leave alone; a rule that is not a divert rule comes with chain
 * DIVERT_CHAIN_NONE and only its handle.  cb returns 0 to go on, or a
 * value (best positive) that stops the walk and that list returns.  No
 * table: no calls.  The rule cb gets is valid during the call only (its
 * lists are freed after): divert_rule_copy keeps one.
 *
 * flush removes the whole table (there was none: 0).
 */
int divert_rule_add(struct divert_rule *r, char *errbuf);
int divert_rule_del(const struct divert_rule *r, char *errbuf);
typedef int (*divert_rule_cb)(const struct divert_rule *r, void *arg);
int divert_rule_list(divert_rule_cb cb, void *arg, char *errbuf);
int divert_rule_flush(char *errbuf);

/*
 * Rules outside the toolkit's tables that use a bit of mark (a meta or ct
 * mark match or set whose constant has it, as nft writes them; the values
 * of iptables-nft's xt matches and targets are not looked into): cb for
 * each, with its family (NFPROTO_*), table, chain and handle, valid during
 * the call.  cb returns 0 to go on, or a value (best positive) that stops
 * the walk and that divert_mark_users returns; 0 when the walk ended, or
 * -1 with errno and words in errbuf.
 */
struct divert_mark_user {
	int		 family;
	const char	*table, *chain;
	uint64_t	 handle;
};
typedef int (*divert_mark_cb)(const struct divert_mark_user *u, void *arg);
int divert_mark_users(uint32_t mark, divert_mark_cb cb, void *arg, char *errbuf);

/*
 * Rules for a process's lifetime.  divert_rules_open makes a table of the
 * caller's own, "divert-<port id>" (inet), that belongs to a netlink socket
 * (NFT_TABLE_F_OWNER, kernel 5.12+): only that socket may change it, and
 * the kernel deletes it, rules and all, when the socket closes -- at
 * divert_rules_close, at exit, or when the process is killed, even by
 * SIGKILL or the OOM killer.  The socket is close-on-exec; a child forked
 * without exec keeps the table alive until it exits too.  Where the kernel
 * has no owned tables, rules go to the shared table and divert_rules_close
 * removes them (divert_rules_owned says 0; nothing removes them after
 * SIGKILL).  NULL, or -1, with errno and words in errbuf.
 *
 * divert_rules_add adds r as divert_rule_add does (EEXIST: the same rule
 * is in the shared table or in any process's, and r->owner says whose);
 * r->owner is set.  Closing removes the table: every packet then queued
 * in the network namespace is dropped by the kernel (as at any chain's
 * removal), so a listener drains its queue first.
 */
struct divert_rules;
struct divert_rules *divert_rules_open(char *errbuf);
int divert_rules_add(struct divert_rules *o, struct divert_rule *r, char *errbuf);
int divert_rules_owned(const struct divert_rules *o);
void divert_rules_close(struct divert_rules *o);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
