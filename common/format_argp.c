/* format_argp.c - the stream's format (-F) as an argp child. */
#include <argp.h>
#include <strings.h>

#include "format_argp.h"
#include "tool.h"

static const struct argp_option format_options[] = {
	{ "format", 'F', "FORMAT", 0, "Write the stream as pcapng (the default: "
	    "interfaces by name, port, packet id, hook, mark) or pcap (classic, "
	    "LINUX_SLL2 as tcpdump -w writes)", 0 },
	{ 0 }
};

static error_t
parse_format(int key, char *arg, struct argp_state *state)
{
	struct format_choice *c = state->input;

	if (key != 'F')
		return ARGP_ERR_UNKNOWN;
	if (strcasecmp(arg, "pcapng") == 0)
		c->format = STREAM_PCAPNG;
	else if (strcasecmp(arg, "pcap") == 0)
		c->format = STREAM_PCAP;
	else
		usage_errx("bad -F '%s': want pcapng (the default) or pcap", arg);
	c->given = 1;
	return 0;
}

const struct argp format_argp = {
	format_options, parse_format, NULL, NULL, NULL, NULL, NULL
};
