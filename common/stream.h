/*
 * stream.h - the divert stream: pcapng (stream v2, ours: pcapng.h), or
 * classic pcap (through libpcap).
 *
 * Readers take either format, tell which from the first bytes, accept the
 * link types LINUX_SLL2, LINUX_SLL, RAW, IPV4, IPV6, EN10MB (VLAN tags
 * skipped), NULL and LOOP, and turn every record into one struct pkt; a
 * pcapng record's interface and options fill in the rest of its divert
 * address (name, port, id, hook, mark, ...).  Writers produce LINUX_SLL2
 * from a record's metadata, or keep the input's link type by copying each
 * record's own link-layer header; in pcapng they write each record's
 * divert address as it is.
 */
#ifndef DIVERT_STREAM_H
#define DIVERT_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "divert.h"

#define DLT_SLL2	276		/* LINKTYPE_LINUX_SLL2 */
#define SLL2_HDRLEN	20
#define STREAM_SNAPLEN	262144		/* libpcap's largest snapshot length */

#define SLL_HOST	0		/* SLL packet types, as in <linux/if_packet.h> */
#define SLL_OUTGOING	4

/* A stream's file format (-F). */
enum stream_format {
	STREAM_PCAPNG = 0,		/* stream v2: the default */
	STREAM_PCAP = 1,		/* classic pcap, as libpcap writes it */
};

/*
 * One record of the stream: the packet's divert address (what the divert
 * socket says of it: libdivert's), the packet, and the pcap record it came
 * in (link type, link header) -- the stream's own bookkeeping.
 */
struct pkt {
	struct divert_addr a;		/* time, direction, interface, ethertype, ... */
	uint8_t		*data;		/* network-layer packet (rec + l2len as read) */
	size_t		len;		/* bytes at data (a.cut more on the wire) */
	uint8_t		pkttype;	/* SLL packet type (SLL_HOST, SLL_OUTGOING, ...) */
	int		dlt;		/* link type of rec; 0: no header, build one */
	uint8_t		*rec;		/* the whole record: link header, then data */
	size_t		l2len;		/* bytes of link header in rec */
};

/* Fill the ethertype from the IP version nibble (0 when neither v4 nor v6). */
uint16_t pkt_ip_proto(const uint8_t *data, size_t len);

/*
 * Give p an SLL2 record built from its metadata in buf (size bytes): header,
 * then a copy of p->data; p->rec, p->data and p->dlt point there after.
 * -1 (EMSGSIZE) when it does not fit.
 */
int pkt_make_sll2(struct pkt *p, uint8_t *buf, size_t size);

struct stream_in;

/*
 * Open a stream to read ("-" or NULL: stdin), classic pcap or pcapng; NULL
 * with a message in err.  A pcapng stream is read up to its first interface
 * description (its link type; none before the end: an empty stream).
 */
struct stream_in *stream_in_open(const char *path, char *err, size_t errlen);

/* The input's libpcap link type (DLT_*): pcapng's first interface's. */
int stream_in_linktype(const struct stream_in *in);

/* The input's format. */
enum stream_format stream_in_format(const struct stream_in *in);

/*
 * Read the next record into p (valid until the next call; p->data may be
 * edited in place, up to stream_in_room bytes: the record is the reader's,
 * not copied).  Returns 1 for a record, 0 at a clean end, -1 for a broken
 * stream (stream_in_error says why).  A record whose link header does not
 * parse still returns 1, with proto 0.  Without pcapng options (classic
 * pcap) the address has what the link header says, hook
 * DIVERT_HOOK_UNKNOWN and nothing else.  In pcapng the options win over
 * the link header (direction, ifindex); records of an interface whose link
 * type differs from the first one's carry their own p->dlt.
 */
int stream_in_read(struct stream_in *in, struct pkt *p);

/* Bytes p->data may be edited in place: the record's, from p->data on. */
size_t stream_in_room(const struct stream_in *in, const struct pkt *p);

/* Why the last read failed. */
const char *stream_in_error(const struct stream_in *in);

/*
 * True when no further record can be read without waiting (input idle): no
 * whole record buffered (pcapng; classic: no byte), none in the pipe.
 */
int stream_in_idle(struct stream_in *in);

void stream_in_close(struct stream_in *in);

struct stream_out;

/*
 * Open a stream to write ("-" or NULL: stdout) in format fmt with link type
 * dlt (DLT_SLL2, or the input's type to keep each record's own header).
 * The file header (pcapng: the section header) is written and flushed at
 * once.  NULL with a message in err.
 */
struct stream_out *stream_out_open(const char *path, int dlt, enum stream_format fmt,
    char *err, size_t errlen);

/*
 * Append one record to the output's buffer.  A record read with the output's
 * link type keeps its own link header byte for byte (set p->dlt = 0 after
 * changing the metadata); otherwise an SLL2 header is built from the metadata
 * (RAW, IPV4, IPV6: none).  In pcapng its divert address goes into the
 * options, and an interface not seen before gets its description block
 * just before it (part of the record).  A full buffer is written out first,
 * which may wait for the reader.  -1 when the output failed (errno set:
 * EPIPE, or EAGAIN after a stop signal); the record is then not taken.
 *
 * Records reach the output whole: a stop signal (stop_signalled) ends the
 * stream after the last record the reader could take at once, never inside
 * one.  stream_out_records_out says how many went out.
 */
int stream_out_write(struct stream_out *out, const struct pkt *p);

/*
 * Write every buffered record, waiting for the reader unless a stop signal
 * came.  -1 when the output failed or a stop left records unwritten
 * (EAGAIN); stream_out_records_out says how far it got.
 */
int stream_out_flush(struct stream_out *out);

/*
 * Run fn(arg) on every wait for a slow reader, so that the writer's own
 * timers keep running while it waits (divert-listen's hold timeout).  fn
 * returns how long the wait may last at most (ms), or -1 for no limit.
 * NULL: none.
 */
void stream_out_set_wait_hook(struct stream_out *out, int (*fn)(void *), void *arg);

/* Records written whole to the output so far. */
uint64_t stream_out_records_out(const struct stream_out *out);

/*
 * Forget the records buffered but not written (after a stop, or once the
 * reader has gone); returns how many.  A record partly written is kept.
 * Interfaces described only by forgotten records are described again by
 * the next record that needs them.
 */
uint64_t stream_out_discard(struct stream_out *out);

/*
 * Flush (as stream_out_flush), forget what could not be written, close.
 * -1 when the output failed.
 */
int stream_out_close(struct stream_out *out);

/*
 * A tool's last step with its output: close out (as stream_out_close; NULL:
 * none) and report the first failure of writing it (err, seen earlier, or
 * the close's own) as "writing WHAT: ..." -- unless the reader simply left
 * (reader_gone), or what is NULL (an earlier failure was reported).
 * EX_RUNTIME when a failure counts, else 0.
 */
int stream_out_finish(struct stream_out *out, int err, const char *what);

#endif
