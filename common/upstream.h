/*
 * upstream.h - the divert listener a pipe comes from, through /proc.
 *
 * In `divert-listen P | divert-mangle ... | divert-inject` the injector
 * finds the listener before the first packet: the process writing its
 * input pipe, or the one writing that process's standard input, and so on
 * up the pipeline, until one offers a divert port in this network namespace
 * (a listening "@divert/P" Unix socket).  Joining it then makes it hold
 * packets from the first one on.
 */
#ifndef DIVERT_UPSTREAM_H
#define DIVERT_UPSTREAM_H

#include <sys/types.h>

/*
 * The process up the pipeline of fd that offers a divert port here: its
 * pid, and the port in *port.  0 when none is found (fd is not a pipe, the
 * writer is gone, or is in another network or pid namespace).
 */
pid_t upstream_listener(int fd, int *port);

#endif
