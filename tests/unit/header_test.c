/*
 * header_test - the public header stands alone: it compiles after
 * <linux/if.h> (which excludes <net/if.h>), and its names for interfaces
 * are the kernel's size.
 */
#include <linux/if.h>

#include "divert.h"
#include "tap.h"

int
main(void)
{
	struct divert_addr a;
	struct divert_rule r;

	ok(sizeof(a.ifname) == IFNAMSIZ, "divert_addr.ifname is IFNAMSIZ bytes");
	ok(sizeof(r.iif) == IFNAMSIZ && sizeof(r.oif) == IFNAMSIZ,
	    "divert_rule.iif and oif are IFNAMSIZ bytes");
	ok(DIVERT_IFNAMSIZ == IFNAMSIZ, "DIVERT_IFNAMSIZ is the kernel's");
	return tap_done();
}
