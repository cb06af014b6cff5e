/* impair_test - divert-impair's models, scheduler and number parsers, with fixed seeds. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "csum.h"
#include "impair.h"
#include "num.h"
#include "tap.h"

#define DRAWS	1000000

static void
test_rng(void)
{
	struct impair_rng r = { { 1, 2, 3, 4 } }, a, b;
	double s = 0, q = 0, x;
	int i, hits = 0, same = 1;

	/* xoshiro256** from the state {1, 2, 3, 4}: its authors' first outputs. */
	ok(impair_rng_next(&r) == 0x2d00 && impair_rng_next(&r) == 0 &&
	    impair_rng_next(&r) == 0x5a007080, "xoshiro256** gives the reference outputs");
	impair_rng_seed(&r, 0);
	ok(r.s[0] == 0xe220a8397b1dcdafULL, "seeding runs splitmix64 (its first output from 0)");
	impair_rng_seed(&a, 7);
	impair_rng_seed(&b, 7);
	for (i = 0; i < 1000; i++)
		same &= impair_rng_next(&a) == impair_rng_next(&b);
	ok(same, "one seed, one sequence");
	impair_rng_seed(&b, 8);
	ok(impair_rng_next(&a) != impair_rng_next(&b), "another seed, another sequence");
	for (i = 0; i < DRAWS; i++) {
		x = impair_rng_double(&a);
		if (x < 0 || x >= 1)
			break;
		s += x;
		hits += impair_rng_chance(&a, 0.05);
	}
	ok(i == DRAWS && fabs(s / DRAWS - 0.5) < 0.002, "doubles in [0, 1), mean %.4f", s / DRAWS);
	ok(fabs(hits / (double)DRAWS - 0.05) < 0.001, "chance(5%%): %.4f", hits / (double)DRAWS);
	ok(!impair_rng_chance(&a, 0) && impair_rng_chance(&a, 1), "chance 0 never, 1 always");
	for (s = 0, i = 0; i < DRAWS; i++) {
		x = impair_rng_normal(&a);
		s += x;
		q += x * x;
	}
	ok(fabs(s / DRAWS) < 0.005 && fabs(sqrt(q / DRAWS) - 1) < 0.005,
	    "normal: mean %.4f, sd %.4f", s / DRAWS, sqrt(q / DRAWS));
}

/* Mean, standard deviation and range of n delays drawn from dist. */
static void
delays(enum impair_dist dist, uint64_t d, uint64_t j, double *mean, double *sd, uint64_t *lo,
    uint64_t *hi)
{
	struct impair_rng r;
	double s = 0, q = 0;
	uint64_t x;
	int i;

	impair_rng_seed(&r, 42);
	*lo = UINT64_MAX, *hi = 0;
	for (i = 0; i < DRAWS; i++) {
		x = impair_delay_draw(&r, dist, d, j);
		s += (double)x;
		q += (double)x * (double)x;
		*lo = x < *lo ? x : *lo;
		*hi = x > *hi ? x : *hi;
	}
	*mean = s / DRAWS;
	*sd = sqrt(q / DRAWS - *mean * *mean);
}

static void
test_delays(void)
{
	struct impair_rng r;
	double mean, sd;
	uint64_t lo, hi;

	impair_rng_seed(&r, 1);
	ok(impair_delay_draw(&r, IMPAIR_NORMAL, 20000, 0) == 20000, "no jitter: the delay itself");
	delays(IMPAIR_UNIFORM, 20000, 5000, &mean, &sd, &lo, &hi);
	ok(fabs(mean - 20000) < 10 && fabs(sd - 5000 / sqrt(3)) < 10 && lo >= 15000 && hi <= 25000,
	    "uniform: mean %.0f, sd %.0f, %ju..%ju", mean, sd, (uintmax_t)lo, (uintmax_t)hi);
	delays(IMPAIR_NORMAL, 20000, 5000, &mean, &sd, &lo, &hi);
	ok(fabs(mean - 20000) < 15 && fabs(sd - 5000) < 15, "normal: mean %.0f, sd %.0f", mean, sd);
	delays(IMPAIR_PARETO, 20000, 5000, &mean, &sd, &lo, &hi);
	/* Shape 3: a finite but heavy-tailed variance, so the sample sd converges slowly. */
	ok(fabs(mean - 20000) < 30 && fabs(sd - 5000) < 400 && lo >= 17113 && hi > 60000,
	    "pareto: mean %.0f, sd %.0f, min %ju (>= D - 0.577 J), a long tail (max %ju)",
	    mean, sd, (uintmax_t)lo, (uintmax_t)hi);
	delays(IMPAIR_NORMAL, 1000, 5000, &mean, &sd, &lo, &hi);
	ok(lo == 0, "never negative: clipped at 0");
}

static void
test_ge(void)
{
	struct impair_ge ge = { .enter = 0.01, .leave = 0.25 };
	struct impair_rng r;
	int i, lost = 0, run = 0, runs = 0, inrun = 0;

	impair_rng_seed(&r, 3);
	for (i = 0; i < DRAWS; i++) {
		if (impair_ge_lost(&ge, &r)) {
			lost++;
			inrun++;
		} else if (inrun) {
			runs++;
			run += inrun;
			inrun = 0;
		}
	}
	ok(fabs((double)run / runs - 4) < 0.1, "Gilbert-Elliott: mean burst %.3f (1/R = 4)",
	    (double)run / runs);
	ok(fabs((double)lost / DRAWS - 0.01 / 0.26) < 0.003, "loss %.4f (P/(P+R) = 0.0385)",
	    (double)lost / DRAWS);
}

static void
test_bucket(void)
{
	struct impair_bucket b;
	uint64_t dep[2000], t;
	size_t i, j, most = 0, in;
	int ordered = 1;

	/* 1 Mbit/s = 125 bytes a ms; 1000-byte packets, all at once at t = 1 s. */
	impair_bucket_init(&b, 1000000, 1500);
	for (i = 0; i < 2000; i++)
		dep[i] = impair_bucket_depart(&b, 1000000, 1000);
	ok(dep[0] == 1000000, "the first packet goes at once (a full bucket)");
	ok(dep[1] == 1000000 + 4000, "the second when the bucket holds 1000 again (4 ms): %ju",
	    (uintmax_t)(dep[1] - 1000000));
	for (i = 1; i < 2000; i++)
		ordered &= dep[i] >= dep[i - 1];
	ok(ordered, "in order");
	for (i = 0, j = 0, in = 0; i < 2000; i++) {
		in += 1000;
		while (dep[i] - dep[j] >= 100000) {
			in -= 1000;
			j++;
		}
		most = in > most ? in : most;
	}
	ok(most <= 12500 + 1500, "any 100 ms: %zu bytes, at most rate x 100 ms + burst", most);
	ok(dep[1999] - dep[1] == 1998 * 8000, "then exactly 8 ms a packet");
	/* A packet larger than the bucket waits for a full one, and leaves it in debt. */
	impair_bucket_init(&b, 8000000, 1000);
	t = impair_bucket_depart(&b, 0, 3000);
	ok(t == 0 && impair_bucket_depart(&b, 0, 100) == 2100, "larger than the bucket: "
	    "goes when full, the next waits out the debt");
	/* Idle time refills the bucket to its size, no more. */
	impair_bucket_init(&b, 8000000, 1000);
	impair_bucket_depart(&b, 0, 1000);
	ok(impair_bucket_depart(&b, 10000000, 1000) == 10000000 &&
	    impair_bucket_depart(&b, 10000000, 1000) == 10001000, "idle refills up to the burst");
}

/* A held item: its number; the scheduler hands it back. */
static int items[4096];

static void
conf_init(struct impair_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->queue_pkts = 1000000;
}

static void
test_sched(void)
{
	struct impair_conf c;
	struct impair *im, *im2;
	uint64_t when, last = 0;
	int *it, i, n, ok1 = 1, order[200], same = 1, full = 0;

	/* Delay with jitter: in order, every departure at least the delay after arrival. */
	conf_init(&c);
	c.delay = 20000, c.jitter = 15000;
	im = impair_new(&c, 1, 9);
	for (i = 0; i < 1000; i++)
		impair_hold(im, 0, (uint64_t)i * 1000, 100, &items[i]);
	for (n = 0; (it = impair_due(im, UINT64_MAX, &when)) != NULL; n++) {
		ok1 &= *it == n && when >= last && when >= (uint64_t)n * 1000 + 5000;
		last = when;
	}
	ok(n == 1000 && ok1, "jitter larger than the spacing: still in order");
	ok(impair_stats(im)->delayed == 1000 && impair_held(im) == 0, "all delayed, none left");
	impair_free(im);

	/* Reorder, gap 2: a packet held back leaves right after the next two. */
	conf_init(&c);
	c.reorder = 0.1, c.reorder_gap = 2;
	im = impair_new(&c, 1, 5);
	im2 = impair_new(&c, 1, 5);
	for (i = 0; i < 200; i++) {
		impair_hold(im, 0, (uint64_t)i * 1000, 100, &items[i]);
		impair_hold(im2, 0, (uint64_t)i * 1000, 100, &items[i]);
	}
	for (n = 0; (it = impair_due(im, UINT64_MAX, &when)) != NULL; n++)
		order[n] = *it;
	for (i = 0; (it = impair_due(im2, UINT64_MAX, &when)) != NULL; i++)
		same &= *it == order[i];
	ok(same && i == n, "one seed, one order");
	/* Each held back: exactly two later packets went before it. */
	for (i = 0, ok1 = 0; i < n; i++) {
		int k, before = 0;

		for (k = 0; k < i; k++)
			before += order[k] > order[i];
		ok1 += before == 2;
		full += before != 0 && before != 2;
	}
	ok(n == 200 && impair_stats(im)->reordered > 5 && (uint64_t)ok1 ==
	    impair_stats(im)->reordered && full == 0, "%ju of 200 held back, each 2 places "
	    "behind", (uintmax_t)impair_stats(im)->reordered);
	full = 0;
	impair_free(im);
	impair_free(im2);

	/* Held back with nothing after it: it goes IMPAIR_REORDER_MAX_US late at most. */
	conf_init(&c);
	c.reorder = 1;
	im = impair_new(&c, 1, 1);
	impair_hold(im, 0, 5000, 100, &items[0]);
	ok(impair_next(im) == 5000 + IMPAIR_REORDER_MAX_US && impair_due(im, 5000 +
	    IMPAIR_REORDER_MAX_US - 1, &when) == NULL && impair_due(im, UINT64_MAX, &when) ==
	    &items[0] && when == 5000 + IMPAIR_REORDER_MAX_US, "a packet held back with none "
	    "after it leaves after %d us", IMPAIR_REORDER_MAX_US);
	impair_free(im);

	/* The queue: tail drop when full, room again once packets left. */
	conf_init(&c);
	c.delay = 1000, c.queue_pkts = 3;
	im = impair_new(&c, 1, 1);
	for (i = 0; i < 5; i++)
		full += impair_hold(im, 0, 0, 100, &items[i]) < 0;
	ok(full == 2 && impair_held(im) == 3 && impair_stats(im)->queue_full == 2,
	    "a queue of 3 takes 3, drops 2");
	ok(impair_due(im, 999, &when) == NULL && impair_due(im, 1000, &when) == &items[0],
	    "nothing before its time; then the first");
	ok(impair_hold(im, 0, 1000, 100, &items[9]) == 0, "room again");
	impair_free(im);
	conf_init(&c);
	c.queue_pkts = 0, c.queue_bytes = 250, c.delay = 10;
	im = impair_new(&c, 1, 1);
	ok(impair_hold(im, 0, 0, 100, &items[0]) == 0 && impair_hold(im, 0, 0, 100, &items[1]) == 0 &&
	    impair_hold(im, 0, 0, 100, &items[2]) < 0, "a queue in bytes");
	while (impair_due(im, UINT64_MAX, &when) != NULL)
		;
	impair_free(im);

	/* Two groups: their own order, one timeline. */
	{
		struct impair_conf two[2];

		conf_init(&two[0]);
		conf_init(&two[1]);
		two[0].delay = 10000;
		im = impair_new(two, 2, 1);
		impair_hold(im, 0, 0, 100, &items[0]);
		impair_hold(im, 1, 1, 100, &items[1]);
		ok(impair_due(im, 5000, &when) == &items[1] && when == 1 &&
		    impair_due(im, 5000, &when) == NULL && impair_due(im, 10000, &when) == &items[0],
		    "groups: an undelayed packet passes a delayed one of another group");
		impair_free(im);
	}

	/* Judge: every kind draws on its own stream. */
	{
		struct impair_fate f;
		struct impair *a, *b;
		int samelost = 1, lost = 0;

		conf_init(&c);
		c.loss = 0.1;
		a = impair_new(&c, 1, 77);
		c.duplicate = 0.5, c.corrupt = 0.5;
		b = impair_new(&c, 1, 77);
		for (i = 0; i < 10000; i++) {
			impair_judge(a, 0, &f);
			n = f.lost;
			lost += n != 0;
			impair_judge(b, 0, &f);
			samelost &= (n != 0) == (f.lost != 0);
		}
		ok(samelost && lost > 900 && lost < 1100, "the same losses with or without "
		    "--duplicate and --corrupt (%d of 10000)", lost);
		impair_free(a);
		impair_free(b);
	}
}

static void
ipv4_udp(uint8_t *p, size_t len)
{
	memset(p, 0, len);
	p[0] = 0x45;
	put16(p + 2, (uint16_t)len);
	p[8] = 64, p[9] = 17;
	p[12] = 10, p[15] = 1, p[16] = 10, p[19] = 2;
	put16(p + 10, csum(p, 20));
	put16(p + 24, (uint16_t)(len - 20));
}

static void
test_packets(void)
{
	uint8_t p[200], q[200];
	size_t len = 200, i, diff = 0, where = 0;
	uint32_t cut = 0;

	ipv4_udp(p, 200);
	ok(impair_payload_off(p, 200, 0) == 20, "IPv4 UDP: the payload is after the IP header");
	memcpy(q, p, 200);
	impair_flip_bit(q, 200, 20, 12345);
	for (i = 0; i < 200; i++)
		if (p[i] != q[i]) {
			diff += (size_t)__builtin_popcount(p[i] ^ q[i]);
			where = i;
		}
	ok(diff == 1 && where >= 20 && where == 20 + (12345 % 1440) / 8, "one bit flipped, "
	    "at the one picked");
	ok(impair_truncate(p, &len, &cut, 60) == 60 && len == 60 && get16(p + 2) == 60 &&
	    csum(p, 20) == 0, "truncated to 60: the length and the header checksum follow");
	ok(impair_truncate(p, &len, &cut, 100) == 0 && len == 60, "longer: unchanged");
	ok(impair_truncate(p, &len, &cut, 8) == 20 && len == 20, "never below the IP header");
	memset(p, 0, 80);
	p[0] = 0x60;
	put16(p + 4, 40);
	p[6] = 17;
	len = 80, cut = 0;
	ok(impair_truncate(p, &len, &cut, 50) == 50 && get16(p + 4) == 10, "IPv6: the payload "
	    "length follows");
	len = 40, cut = 40;			/* 40 bytes captured of 80 */
	put16(p + 4, 40);
	ok(impair_truncate(p, &len, &cut, 60) == 60 && len == 40 && cut == 20,
	    "a cut record keeps what it has, the wire length shrinks");
	ok(impair_payload_off((const uint8_t *)"\x10", 1, 0) == 0, "not IP: no payload offset");
}

static void
test_parsers(void)
{
	ok(parse_duration_us("20ms", 3600000000LL) == 20000 &&
	    parse_duration_us("500us", 3600000000LL) == 500 &&
	    parse_duration_us("1.5s", 3600000000LL) == 1500000 &&
	    parse_duration_us("20", 3600000000LL) == 20000 &&
	    parse_duration_us("0.25ms", 3600000000LL) == 250, "times: 20ms 500us 1.5s 20 0.25ms");
	ok(parse_duration_us("x", 1000) < 0 && parse_duration_us("-1ms", 100000) < 0 &&
	    parse_duration_us("2ms", 1000) < 0 && parse_duration_us("3h", 1LL << 40) < 0 &&
	    parse_duration_us("", 1000) < 0, "bad times refused");
	ok(parse_rate_bps("8mbit", 1LL << 50) == 8000000 &&
	    parse_rate_bps("1gbit", 1LL << 50) == 1000000000 &&
	    parse_rate_bps("100kbit", 1LL << 50) == 100000 &&
	    parse_rate_bps("125kbps", 1LL << 50) == 1000000 &&
	    parse_rate_bps("1kibit", 1LL << 50) == 1024 &&
	    parse_rate_bps("1.5Mbit", 1LL << 50) == 1500000 &&
	    parse_rate_bps("9600", 1LL << 50) == 9600, "rates as tc writes them");
	ok(parse_rate_bps("8mbitt", 1LL << 50) < 0 && parse_rate_bps("0", 1LL << 50) < 0 &&
	    parse_rate_bps("2gbit", 1000000000) < 0, "bad rates refused");
	ok(parse_percent("5%") == 0.05 && parse_percent("0.5%") == 0.005 &&
	    parse_percent("100") == 1 && parse_percent("0") == 0, "percentages");
	ok(parse_percent("101%") < 0 && parse_percent("5%%") < 0 && parse_percent("-1") < 0 &&
	    parse_percent("%") < 0, "bad percentages refused");
	ok(parse_size("64K") == 65536 && parse_size("1M") == 1048576 && parse_size("1500") == 1500 &&
	    parse_size("1X") == 0, "sizes");
}

int
main(void)
{
	int i;

	for (i = 0; i < 4096; i++)
		items[i] = i;
	test_rng();
	test_delays();
	test_ge();
	test_bucket();
	test_sched();
	test_packets();
	test_parsers();
	return tap_done();
}
