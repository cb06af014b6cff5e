/*
 * format_argp.h - -F FORMAT on a writing tool's command line (pcapng, the
 * default, or pcap): an argp child whose input is a struct format_choice
 * the parent hands over in ARGP_KEY_INIT (state->child_inputs[i]).
 */
#ifndef DIVERT_FORMAT_ARGP_H
#define DIVERT_FORMAT_ARGP_H

#include <argp.h>

#include "stream.h"

struct format_choice {
	enum stream_format format;	/* zero: pcapng */
	int		 given;		/* -F came */
};

/* -F FORMAT; a bad one exits 64 with the formats to choose from. */
extern const struct argp format_argp;

#endif
