/*
 * pcapng.h - the blocks of stream v2 (pcapng), in memory: encoded for the
 * writer, decoded for the reader.  I/O and buffering are stream.c's.
 *
 * What the stream puts where (man/divert.7 has the table):
 *   SHB  one at the start of the stream, shb_userappl = the tool.
 *   IDB  one per (ifindex, interface name) seen: the output's link type,
 *        snaplen 0, if_name when the name is known, and a custom option
 *        holding the ifindex (TLV 8).
 *   EPB  the record: link header + packet as in a classic record, time in
 *        microseconds; epb_flags (direction), epb_queue (divert port) and
 *        epb_packetid (queue packet id) when the port is known; a custom
 *        option holding the rest of the divert address as TLVs.
 * The custom option is code 2989 (binary, may be copied), Private
 * Enterprise Number 32473 (RFC 5612's number for documentation: none is
 * registered to the project), then TLVs {u8 type, u8 length, value} in the
 * section's byte order.  The writer writes host order; the reader honours
 * each section's byte-order magic and skips what it does not know.
 */
#ifndef DIVERT_PCAPNG_H
#define DIVERT_PCAPNG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "divert.h"

#define PCAPNG_SHB		0x0A0D0D0Au	/* the same in both byte orders */
#define PCAPNG_IDB		1u
#define PCAPNG_SPB		3u
#define PCAPNG_EPB		6u
#define PCAPNG_MAGIC		0x1A2B3C4Du	/* byte-order magic */
#define PCAPNG_PEN		32473u		/* RFC 5612: documentation */

#define PCAPNG_OPT_END		0
#define PCAPNG_OPT_SHB_USERAPPL	4
#define PCAPNG_OPT_IF_NAME	2
#define PCAPNG_OPT_IF_TSRESOL	9
#define PCAPNG_OPT_IF_TSOFFSET	14
#define PCAPNG_OPT_EPB_FLAGS	2
#define PCAPNG_OPT_EPB_PACKETID	5
#define PCAPNG_OPT_EPB_QUEUE	6
#define PCAPNG_OPT_CUSTOM	2989		/* binary, copyable */
#define PCAPNG_OPT_CUSTOM_NOCOPY 19373		/* binary, not copyable: read too */

/* The TLVs of the custom option. */
enum pcapng_tlv {
	PCAPNG_TLV_HOOK = 1,		/* u8, enum divert_hook */
	PCAPNG_TLV_MARK = 2,		/* u32 */
	PCAPNG_TLV_OTHER_IFINDEX = 3,	/* u32 */
	PCAPNG_TLV_OTHER_IFNAME = 4,	/* string, no NUL */
	PCAPNG_TLV_HOLDER = 5,		/* u64 */
	PCAPNG_TLV_UID = 6,		/* u32 */
	PCAPNG_TLV_GID = 7,		/* u32 */
	PCAPNG_TLV_IFINDEX = 8,		/* u32, in IDBs */
	PCAPNG_TLV_GSO = 9,		/* empty: a GSO packet (DIVERT_ADDR_GSO) */
};

/* Largest blocks the writer makes, beyond the packet's bytes. */
#define PCAPNG_SHB_MAX		128
#define PCAPNG_IDB_MAX		64
#define PCAPNG_EPB_EXTRA	160	/* header, padding, options, trailer */

/* Blocks the reader takes whole into memory at most (libpcap's limit). */
#define PCAPNG_BLOCK_MAX	(16u << 20)

/* ---- writing (host byte order) ---------------------------------------- */

/* The section header, shb_userappl = appl (may be NULL); its length. */
size_t pcapng_put_shb(uint8_t *b, const char *appl);

/*
 * An interface: link type dlt, snaplen 0, if_name = name ("" or NULL:
 * none), the ifindex TLV unless ifindex is 0; its length.
 */
size_t pcapng_put_idb(uint8_t *b, int dlt, const char *name, uint32_t ifindex);

/*
 * A packet on interface ifid: hlen bytes of link header then len bytes of
 * packet (origlen adds a->cut), a's time and context as options; its
 * length (at most hlen + len + PCAPNG_EPB_EXTRA).
 */
size_t pcapng_put_epb(uint8_t *b, uint32_t ifid, const struct divert_addr *a,
    const uint8_t *hdr, size_t hlen, const uint8_t *data, size_t len);

/* ---- reading ---------------------------------------------------------- */

/* What an IDB says. */
struct pcapng_if {
	int		dlt;
	uint32_t	snaplen;
	uint32_t	ifindex;	/* TLV 8; has_ifindex says whether it came */
	int		has_ifindex;
	char		name[DIVERT_IFNAMSIZ];	/* "" when none (or too long for Linux) */
	uint64_t	units;		/* time stamp units per second (if_tsresol) */
	int64_t		offset;		/* if_tsoffset, seconds */
};

/* What an EPB or SPB says of its packet; options are read by pcapng_epb_options. */
struct pcapng_pkt {
	uint32_t	ifid;
	uint32_t	caplen, origlen;
	uint64_t	ts;		/* in the interface's units */
	size_t		data;		/* offset of the packet in the block */
	size_t		opts, optlen;	/* the options' place in the block */
};

/*
 * A section header (the whole block, len bytes): its byte order (*swap:
 * not the host's).  0, or -1 with why.
 */
int pcapng_read_shb(const uint8_t *b, size_t len, int *swap, const char **why);

/* An interface description block; 0, or -1 with why (the block is broken). */
int pcapng_read_idb(const uint8_t *b, size_t len, int swap, struct pcapng_if *ifc,
    const char **why);

/* An enhanced packet block; 0, or -1 with why. */
int pcapng_read_epb(const uint8_t *b, size_t len, int swap, struct pcapng_pkt *pk,
    const char **why);

/* A simple packet block on interface 0 (snaplen: its IDB's); 0, or -1 with why. */
int pcapng_read_spb(const uint8_t *b, size_t len, int swap, uint32_t snaplen,
    struct pcapng_pkt *pk, const char **why);

/*
 * Apply an EPB's options to a: direction (when the flags give one), port
 * and id (DIVERT_ADDR_QUEUE), and the custom option's TLVs.  Malformed or
 * unknown options are skipped.
 */
void pcapng_epb_options(const uint8_t *opts, size_t len, int swap, struct divert_addr *a);

/* A time stamp in the interface's units as a timeval. */
void pcapng_time(const struct pcapng_if *ifc, uint64_t ts, struct timeval *tv);

/* Load a 32-bit field of a section of byte order swap. */
static inline uint32_t
pcapng_u32(const uint8_t *p, int swap)
{
	uint32_t v;

	__builtin_memcpy(&v, p, 4);
	return swap ? __builtin_bswap32(v) : v;
}

#endif
