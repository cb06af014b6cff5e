/* stream.c - read any capture into struct pkt, write SLL2 or keep the link type. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <net/if_arp.h>
#include <pcap/pcap.h>
#include <sys/stat.h>

#include "bytes.h"
#include "divert.h"
#include "stream.h"

#define STREAM_BUF	(1 << 16)	/* stdio buffer: one default pipe's worth */
#define PIPE_BUF_BYTES	(1 << 20)	/* pipe-max-size's default */

struct stream_in {
	pcap_t		*pcap;
	FILE		*fp;
	int		 dlt;
	char		 error[PCAP_ERRBUF_SIZE + 64];
	uint8_t		 buf[STREAM_SNAPLEN + 256];	/* record, room to grow */
	char		 iobuf[STREAM_BUF];		/* stdio's buffer for fp */
};

/*
 * stdio buffers.  glibc ignores setvbuf's size unless given the buffer, so
 * we give it one; stdin's and stdout's are static, as those streams may
 * outlive a struct that failed to open.
 */
static char stdin_buf[STREAM_BUF], stdout_buf[STREAM_BUF];

struct stream_out {
	pcap_t		*pcap;
	pcap_dumper_t	*dump;
	FILE		*fp;
	int		 dlt;
	uint8_t		 buf[SLL2_HDRLEN + STREAM_SNAPLEN];
	char		 iobuf[STREAM_BUF];		/* stdio's buffer for fp */
};

uint16_t
pkt_ip_proto(const uint8_t *data, size_t len)
{
	if (len < 1)
		return 0;
	switch (data[0] >> 4) {
	case 4:
		return ETH_P_IP;
	case 6:
		return ETH_P_IPV6;
	default:
		return 0;
	}
}

/* Link header length of an Ethernet frame, VLAN/QinQ tags included; 0 if short. */
static size_t
ether_hdrlen(const uint8_t *rec, size_t caplen, uint16_t *type)
{
	size_t off = 12;

	for (;;) {
		if (caplen < off + 2)
			return 0;
		*type = get16(rec + off);
		if (*type != ETH_P_8021Q && *type != ETH_P_8021AD && *type != 0x9100)
			return off + 2;
		off += 4;
	}
}

/* Fill p's metadata from the link header of a record of type dlt; 0 or -1. */
static int
parse_link(int dlt, struct pkt *p, size_t caplen)
{
	const uint8_t *r = p->rec;
	uint16_t type = 0;

	switch (dlt) {
	case DLT_SLL2:
		if (caplen < SLL2_HDRLEN)
			return -1;
		p->l2len = SLL2_HDRLEN;
		p->proto = get16(r);
		p->ifindex = get32(r + 4);
		p->hatype = get16(r + 8);
		p->pkttype = r[10];
		p->halen = r[11] > 8 ? 8 : r[11];
		memcpy(p->haddr, r + 12, 8);
		p->dir = p->pkttype == SLL_OUTGOING ? DIR_OUT : DIR_IN;
		return 0;
	case DLT_LINUX_SLL:
		if (caplen < 16)
			return -1;
		p->l2len = 16;
		p->pkttype = (uint8_t)get16(r);
		p->hatype = get16(r + 2);
		p->halen = get16(r + 4) > 8 ? 8 : (uint8_t)get16(r + 4);
		memcpy(p->haddr, r + 6, 8);
		p->proto = get16(r + 14);
		p->dir = p->pkttype == SLL_OUTGOING ? DIR_OUT : DIR_IN;
		return 0;
	case DLT_EN10MB:
		p->l2len = ether_hdrlen(r, caplen, &type);
		if (p->l2len == 0)
			return -1;
		p->proto = type;
		p->halen = 6;
		memcpy(p->haddr, r + 6, 6);
		return 0;
	case DLT_NULL:
	case DLT_LOOP:
		/* The family's byte order varies with the writer: trust the IP version. */
		if (caplen < 4)
			return -1;
		p->l2len = 4;
		p->proto = pkt_ip_proto(r + 4, caplen - 4);
		return 0;
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
		p->l2len = 0;
		p->proto = pkt_ip_proto(r, caplen);
		return 0;
	default:
		return -1;
	}
}

static int
dlt_supported(int dlt)
{
	switch (dlt) {
	case DLT_SLL2: case DLT_LINUX_SLL: case DLT_EN10MB: case DLT_NULL:
	case DLT_LOOP: case DLT_RAW: case DLT_IPV4: case DLT_IPV6:
		return 1;
	default:
		return 0;
	}
}

struct stream_in *
stream_in_open(const char *path, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	struct stream_in *in;

	if ((in = calloc(1, sizeof(*in))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (path == NULL || strcmp(path, "-") == 0)
		in->fp = stdin;
	else if ((in->fp = fopen(path, "rb")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(in);
		return NULL;
	}
	setvbuf(in->fp, in->fp == stdin ? stdin_buf : in->iobuf, _IOFBF, STREAM_BUF);
	if ((in->pcap = pcap_fopen_offline(in->fp, ebuf)) == NULL) {
		snprintf(err, errlen, "%s: not a pcap stream: %s",
		    in->fp == stdin ? "standard input" : path, ebuf);
		if (in->fp != stdin)
			fclose(in->fp);
		free(in);
		return NULL;
	}
	in->dlt = pcap_datalink(in->pcap);
	if (!dlt_supported(in->dlt)) {
		snprintf(err, errlen, "link type %s is not supported (want SLL2, SLL, "
		    "RAW, IPV4, IPV6, EN10MB, NULL or LOOP)",
		    pcap_datalink_val_to_name(in->dlt) ?: "unknown");
		pcap_close(in->pcap);
		free(in);
		return NULL;
	}
	return in;
}

int
stream_in_linktype(const struct stream_in *in)
{
	return in->dlt;
}

int
stream_in_read(struct stream_in *in, struct pkt *p)
{
	struct pcap_pkthdr *h;
	const u_char *data;
	int rc;

	rc = pcap_next_ex(in->pcap, &h, &data);
	if (rc == PCAP_ERROR_BREAK)
		return 0;
	if (rc != 1) {
		snprintf(in->error, sizeof(in->error), "broken stream: %s",
		    pcap_geterr(in->pcap));
		return -1;
	}
	memset(p, 0, sizeof(*p));
	memcpy(in->buf, data, h->caplen);
	p->dlt = in->dlt;
	p->rec = in->buf;
	p->ts = h->ts;
	p->cut = h->len > h->caplen ? h->len - h->caplen : 0;
	if (parse_link(in->dlt, p, h->caplen) < 0) {
		p->l2len = h->caplen;		/* unparseable: all of it is "header" */
		p->proto = 0;
	}
	p->data = p->rec + p->l2len;
	p->len = h->caplen - p->l2len;
	return 1;
}

size_t
stream_in_room(const struct stream_in *in, const struct pkt *p)
{
	return sizeof(in->buf) - (size_t)(p->data - in->buf);
}

const char *
stream_in_error(const struct stream_in *in)
{
	return in->error;
}

int
stream_in_idle(struct stream_in *in)
{
	struct pollfd pfd = { .fd = fileno(in->fp), .events = POLLIN };

	/*
	 * Bytes already in stdio's buffer are a record waiting, not idleness.
	 * glibc has no call that says so; gnulib's freadahead reads the same
	 * two FILE fields.
	 */
	if (in->fp->_IO_read_ptr < in->fp->_IO_read_end)
		return 0;
	return poll(&pfd, 1, 0) == 0;
}

void
stream_in_close(struct stream_in *in)
{
	if (in == NULL)
		return;
	pcap_close(in->pcap);
	free(in);
}

/*
 * A pipe of 1 MiB instead of 64 KiB lets a writer run ahead of a busy reader
 * instead of sleeping: fewer context switches under load.  Best effort.  A
 * stop signal makes the pipe non-blocking, so a stalled reader cannot hold
 * the writer past SIGTERM.
 */
static void
setup_pipe(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
		fcntl(fd, F_SETPIPE_SZ, PIPE_BUF_BYTES);
		stop_unblocks(fd);
	}
}

struct stream_out *
stream_out_open(const char *path, int dlt, char *err, size_t errlen)
{
	struct stream_out *out;

	if ((out = calloc(1, sizeof(*out))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	out->dlt = dlt;
	if (path == NULL || strcmp(path, "-") == 0)
		out->fp = stdout;
	else if ((out->fp = fopen(path, "wb")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(out);
		return NULL;
	}
	setvbuf(out->fp, out->fp == stdout ? stdout_buf : out->iobuf, _IOFBF, STREAM_BUF);
	setup_pipe(fileno(out->fp));
	out->pcap = pcap_open_dead(dlt, STREAM_SNAPLEN);
	if (out->pcap == NULL || (out->dump = pcap_dump_fopen(out->pcap, out->fp)) == NULL) {
		snprintf(err, errlen, "cannot start the stream: %s",
		    out->pcap ? pcap_geterr(out->pcap) : "out of memory");
		if (out->pcap)
			pcap_close(out->pcap);
		if (out->fp != stdout)
			fclose(out->fp);
		free(out);
		return NULL;
	}
	/* The header goes out now, so a reader (tcpdump -r -) starts at once. */
	if (stream_out_flush(out) < 0) {
		snprintf(err, errlen, "cannot write the stream: %s", strerror(errno));
		pcap_dump_close(out->dump);
		pcap_close(out->pcap);
		free(out);
		return NULL;
	}
	return out;
}

/* Build the SLL2 header (what a divert socket's sockaddr carried) into hdr. */
static void
sll2_header(uint8_t *hdr, const struct pkt *p)
{
	uint16_t hatype = p->hatype ? p->hatype : p->halen == 6 ? ARPHRD_ETHER : ARPHRD_NONE;
	uint16_t proto = htons(p->proto ? p->proto : pkt_ip_proto(p->data, p->len));
	uint32_t ifindex = htonl(p->ifindex);
	uint8_t pkttype = p->dir == DIR_OUT ? SLL_OUTGOING :
	    p->dir == DIR_IN ? p->pkttype : SLL_HOST;

	if (p->dir == DIR_IN && pkttype == SLL_OUTGOING)
		pkttype = SLL_HOST;
	hatype = htons(hatype);
	memset(hdr, 0, SLL2_HDRLEN);
	memcpy(hdr, &proto, 2);
	memcpy(hdr + 4, &ifindex, 4);
	memcpy(hdr + 8, &hatype, 2);
	hdr[10] = pkttype;
	hdr[11] = p->halen;
	memcpy(hdr + 12, p->haddr, p->halen > 8 ? 8 : p->halen);
}

int
pkt_make_sll2(struct pkt *p, uint8_t *buf, size_t size)
{
	if (SLL2_HDRLEN + p->len > size)
		return errno = EMSGSIZE, -1;
	memmove(buf + SLL2_HDRLEN, p->data, p->len);
	sll2_header(buf, p);
	p->rec = buf;
	p->dlt = DLT_SLL2;
	p->l2len = SLL2_HDRLEN;
	p->data = buf + SLL2_HDRLEN;
	return 0;
}

/* Bytes of link header a record of type dlt gets when built from metadata; -1 if none can be. */
static int
built_hdrlen(int dlt)
{
	switch (dlt) {
	case DLT_SLL2:
		return SLL2_HDRLEN;
	case DLT_RAW: case DLT_IPV4: case DLT_IPV6:
		return 0;
	default:
		return -1;
	}
}

int
stream_out_write(struct stream_out *out, const struct pkt *p)
{
	struct pcap_pkthdr h = { .ts = p->ts };
	const uint8_t *rec = out->buf;
	size_t l2len;

	if (p->rec != NULL && p->dlt == out->dlt) {
		/* Same link type: the record's own header, byte for byte. */
		l2len = p->l2len;
		if (p->data == p->rec + l2len)
			rec = p->rec;
		else if (l2len + p->len <= sizeof(out->buf))
			memcpy(out->buf, p->rec, l2len);
		else
			return errno = EMSGSIZE, -1;
	} else {
		if (built_hdrlen(out->dlt) < 0)
			return errno = EPROTOTYPE, -1;
		l2len = (size_t)built_hdrlen(out->dlt);
		if (l2len + p->len > sizeof(out->buf))
			return errno = EMSGSIZE, -1;
		if (l2len == SLL2_HDRLEN)
			sll2_header(out->buf, p);
	}
	if (rec == out->buf)
		memcpy(out->buf + l2len, p->data, p->len);
	h.caplen = (bpf_u_int32)(l2len + p->len);
	h.len = (bpf_u_int32)(h.caplen + p->cut);
	pcap_dump((u_char *)out->dump, &h, rec);
	return ferror(out->fp) ? -1 : 0;
}

int
stream_out_flush(struct stream_out *out)
{
	if (fflush(out->fp) != 0 || ferror(out->fp))
		return -1;
	return 0;
}

int
stream_out_close(struct stream_out *out)
{
	int rc;

	if (out == NULL)
		return 0;
	rc = stream_out_flush(out);
	pcap_dump_close(out->dump);	/* closes out->fp, stdout included */
	pcap_close(out->pcap);
	free(out);
	return rc;
}
