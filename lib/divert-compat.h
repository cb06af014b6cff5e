/*
 * divert-compat.h - what a program written for BSD divert(4) needs to build
 * on Linux, pulled in without editing it:
 *
 *	cc $(pkg-config --cflags divert-compat) prog.c	(adds -include divert-compat.h)
 *
 * and run under divert-run(1), whose preloaded library serves the divert
 * sockets.  Nothing here calls libdivert: the program stays a BSD program.
 */
#ifndef DIVERT_COMPAT_H
#define DIVERT_COMPAT_H

#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

/*
 * FreeBSD's number (before 14).  An enum constant, not a macro: a program
 * that defines its own (the Linux HOWTO's 254, FreeBSD's 258) keeps it,
 * and the preloaded library takes both.
 */
enum { IPPROTO_DIVERT = 258 };

/*
 * FreeBSD 14's divert family.  Its number there (44) is AF_XDP here: this
 * one is no Linux family, so without the preloaded library socket() fails
 * with EAFNOSUPPORT instead of opening something else.
 */
#ifndef AF_DIVERT
#define AF_DIVERT	0x4456
#endif
#ifndef PF_DIVERT
#define PF_DIVERT	AF_DIVERT
#endif

/* The BSD string functions divert programs use; glibc has them from 2.38. */
#if defined(__GLIBC__) && (__GLIBC__ < 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ < 38))
static inline size_t
strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size > 0) {
		size_t k = n < size - 1 ? n : size - 1;

		memcpy(dst, src, k);
		dst[k] = '\0';
	}
	return n;
}

static inline size_t
strlcat(char *dst, const char *src, size_t size)
{
	size_t d = 0;

	while (d < size && dst[d] != '\0')
		d++;

	if (d == size)
		return size + strlen(src);
	return d + strlcpy(dst + d, src, size - d);
}
#endif

#endif
