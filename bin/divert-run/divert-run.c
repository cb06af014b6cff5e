/*
 * divert-run - run a program written for BSD divert(4) sockets, unchanged.
 *
 * Runs PROGRAM with libdivert-socket.so preloaded, which serves its
 * socket(AF_INET, SOCK_RAW, IPPROTO_DIVERT) and socket(PF_DIVERT, ...) with
 * libdivert.  Each --rule is added for every divert port the program binds,
 * before its bind() returns (the library asks over a socket pair named in
 * DIVERT_RUN_FD), in a table the kernel removes when divert-run exits, even
 * killed (divert_rules_open); divert-run waits for the program first.
 * Exits with the program's status.
 */
#include <argp.h>
#include <link.h>
#include <err.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "divert.h"
#include "mark_users.h"
#include "tool.h"

#ifndef PRELOAD_DIR
#define PRELOAD_DIR	"/usr/local/lib"
#endif
#define PRELOAD_NAME	"libdivert-socket.so"
#define RULES_MAX	16

const char *argp_program_version = "divert-run (divert) " DIVERT_VERSION;

enum { OPT_RULE = 256 };

static const struct argp_option options[] = {
	{ "rule", OPT_RULE, "SPEC", 0, "Add the rule 'CHAIN [PROTO] [options]' for each "
	    "divert port PROGRAM binds, remove it when PROGRAM exits (repeatable)", 0 },
	{ 0 }
};

struct args {
	const char	*rules[RULES_MAX];
	int		 nrules;
	char		**cmd;		/* PROGRAM [ARGS] */
};

static error_t
parse_opt(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;

	switch (key) {
	case OPT_RULE:
		if (a->nrules == RULES_MAX)
			argp_error(state, "at most %d --rule options", RULES_MAX);
		a->rules[a->nrules++] = arg;
		break;
	case ARGP_KEY_ARG:
		/* PROGRAM: the rest of the line is its own, options included. */
		a->cmd = &state->argv[state->next - 1];
		state->next = state->argc;
		break;
	case ARGP_KEY_END:
		if (a->cmd == NULL)
			argp_error(state, "no PROGRAM to run");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const struct argp argp = {
	options, parse_opt, "[--] PROGRAM [ARGS...]",
	"Run PROGRAM, a program written for BSD divert(4) sockets, unchanged: its "
	"socket(AF_INET, SOCK_RAW, IPPROTO_DIVERT) (258, or 254 of the old Linux patch) "
	"and socket(PF_DIVERT, SOCK_RAW, 0) are divert ports served by libdivert "
	"(libdivert-socket.so is preloaded).  Exits with PROGRAM's status.",
	NULL, NULL, NULL
};

static struct divert_rule specs[RULES_MAX];	/* the --rule texts, parsed; no port yet */
static const char *spec_text[RULES_MAX];
static int nspecs;
static struct divert_rules *rules;	/* what was added, for our lifetime */

/* Each --rule, checked as it will be added (any port will do for now). */
static void
check_rules(const struct args *a, uint32_t mark)
{
	char why[DIVERT_ERRBUF_SIZE];
	int i;

	for (i = 0; i < a->nrules; i++) {
		divert_rule_init(&specs[i]);
		specs[i].mark = mark;
		specs[i].port_lo = specs[i].port_hi = 1;
		if (divert_rule_parse(&specs[i], a->rules[i], DIVERT_RULE_NOPORT, why) < 0)
			usage_errx("--rule '%s': %s", a->rules[i], why);
		spec_text[i] = a->rules[i];
	}
	nspecs = a->nrules;
}

/* The preloaded library: $DIVERT_PRELOAD, beside this program (a build), or installed. */
static const char *
preload_path(void)
{
	static char path[PATH_MAX + sizeof(PRELOAD_NAME)];
	const char *env = getenv("DIVERT_PRELOAD");
	char *slash;
	ssize_t n;

	if (env != NULL && *env != '\0')
		return env;
	if ((n = readlink("/proc/self/exe", path, PATH_MAX - 1)) > 0) {
		path[n] = '\0';
		if ((slash = strrchr(path, '/')) != NULL) {
			strcpy(slash + 1, PRELOAD_NAME);
			if (access(path, R_OK) == 0)
				return path;
		}
	}
	snprintf(path, sizeof(path), "%s/%s", PRELOAD_DIR, PRELOAD_NAME);
	return path;
}

#ifdef __SANITIZE_ADDRESS__
/* The AddressSanitizer runtime this build runs with (the library's needs it first). */
static int
asan_runtime(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	if (strstr(info->dlpi_name, "/libasan.so") == NULL)
		return 0;
	*(const char **)arg = info->dlpi_name;
	return 1;
}

/* A sanitizer build (make check-asan): its library runs in programs that are not. */
static void
set_sanitizer(char **lib)
{
	const char *asan = NULL, *opts = getenv("ASAN_OPTIONS");
	char *v;

	dl_iterate_phdr(asan_runtime, &asan);
	if (asan == NULL || asprintf(&v, "%s:%s", asan, *lib) < 0)
		return;
	free(*lib);
	*lib = v;
	/* Leaks are the program's business (python's are many), errors ours. */
	if (asprintf(&v, "%s%sdetect_leaks=0", opts ? opts : "", opts ? ":" : "") >= 0) {
		setenv("ASAN_OPTIONS", v, 1);
		free(v);
	}
}
#endif

/* LD_PRELOAD for the child: the library first, then whatever was there. */
static void
set_preload(void)
{
	const char *old = getenv("LD_PRELOAD"), *path = preload_path();
	char *lib, *v;

	if (access(path, R_OK) < 0)
		errx(EX_RUNTIME, "%s: %s: reinstall divert, or name it in DIVERT_PRELOAD", path,
		    strerror(errno));
	if ((lib = strdup(path)) == NULL)
		err(EX_RUNTIME, "strdup");
#ifdef __SANITIZE_ADDRESS__
	set_sanitizer(&lib);
#endif
	if (asprintf(&v, "%s%s%s", lib, old != NULL && *old ? ":" : "", old ? old : "") < 0)
		err(EX_RUNTIME, "asprintf");
	setenv("LD_PRELOAD", v, 1);
	free(v);
	free(lib);
}

/* The child: PROGRAM, with the library preloaded and the rule socket named. */
static void __attribute__((noreturn))
run(char **cmd, int ctl)
{
	char num[16];

	if (ctl >= 0) {
		snprintf(num, sizeof(num), "%d", ctl);
		setenv("DIVERT_RUN_FD", num, 1);
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	execvp(cmd[0], cmd);
	warn("%s", cmd[0]);
	_exit(errno == ENOENT ? 127 : 126);	/* as env(1) and the shells */
}

/* Add every --rule for port: 0, or the errno of the one that failed (those added stay). */
static int
add_rules(long port)
{
	char why[DIVERT_ERRBUF_SIZE];
	struct divert_rule r;
	int i, e;

	for (i = 0; i < nspecs; i++) {
		r = specs[i];
		r.port_lo = r.port_hi = port;
		if (divert_rules_add(rules, &r, why) < 0) {
			if (errno == EEXIST)
				continue;	/* there already (the port bound again): not ours */
			e = errno;
			warnx("cannot add rule '%s' for port %ld: %s", spec_text[i], port,
			    errno_hint(e));
			return e;
		}
	}
	return 0;
}

/* The table our rules will go to, made before PROGRAM runs; exits on failure. */
static void
open_rules(void)
{
	char why[DIVERT_ERRBUF_SIZE];

	if (nspecs == 0)
		return;
	if ((rules = divert_rules_open(why)) == NULL)
		errx(EX_RUNTIME, "cannot add rules: %s", errno_hint(errno));
	warn_mark_users(specs[0].mark);
}

/*
 * A request from the library: "bind PORT"; the answer is an errno, 0 when
 * the rules are in.  0 once nobody holds the other end any more.
 */
static int
answer(int ctl)
{
	char msg[64];
	ssize_t n;
	long port;
	int e;

	if ((n = recv(ctl, msg, sizeof(msg) - 1, MSG_DONTWAIT)) <= 0)
		return n < 0 && errno == EAGAIN;
	msg[n] = '\0';
	e = sscanf(msg, "bind %ld", &port) == 1 && port > 0 && port <= 65535 ?
	    add_rules(port) : EINVAL;
	n = snprintf(msg, sizeof(msg), "%d", e);
	send(ctl, msg, (size_t)n, MSG_NOSIGNAL);
	return 1;
}

/* Pass a stop signal on to the program; we wait for it to go. */
static volatile sig_atomic_t child, signalled;

static void
forward(int sig)
{
	signalled = 1;
	if (child > 0)
		kill(child, sig);
}

/*
 * Serve the library's requests until the program has exited and nothing it
 * started holds the socket pair any more (a daemon that forked away keeps
 * its port, and its rules with it); the program's wait status.
 */
static int
serve(pid_t pid, int ctl)
{
	struct pollfd pfd[2];
	struct timespec nap = { 0, 100 * 1000000 };
	sigset_t stops, during;
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), n = 0, status = 0, exited = 0;
	pid_t r;

	/* The stop signals come only inside ppoll: none between a look and a sleep. */
	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGHUP);
	sigprocmask(SIG_BLOCK, &stops, &during);
	if (pidfd >= 0)
		pfd[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	if (ctl >= 0)
		pfd[n++] = (struct pollfd){ .fd = ctl, .events = POLLIN };
	for (;;) {
		if (!exited && ((r = waitpid(pid, &status, WNOHANG)) == pid ||
		    (r < 0 && errno == ECHILD))) {
			exited = 1;
			child = 0;	/* its pid may be another's now: no more signals */
			if (pidfd >= 0) {	/* done with: only the socket pair is left */
				close(pidfd);
				pfd[0] = pfd[--n];
				pidfd = -1;
			}
		}
		/* A stop signal once the program is gone: its daemon's rules go now. */
		if (exited && (ctl < 0 || signalled))
			return status;
		/* No pidfd (a kernel before 5.3, a seccomp policy): look again now and then. */
		if (ppoll(pfd, (nfds_t)n, pidfd >= 0 || exited ? NULL : &nap, &during) < 0 &&
		    errno != EINTR)
			err(EX_RUNTIME, "poll");
		if (ctl >= 0 && pfd[n - 1].revents != 0 && !answer(ctl)) {
			ctl = -1, n--;	/* the program and its children closed it */
			close(pfd[n].fd);
		}
	}
}

int
main(int argc, char **argv)
{
	struct args a = { 0 };
	struct sigaction sa = { .sa_handler = forward };
	int sv[2] = { -1, -1 }, status;
	pid_t pid;

	argp_parse(&argp, argc, argv, ARGP_IN_ORDER, NULL, &a);
	signal(SIGCHLD, SIG_DFL);	/* inherited as ignored, the program could not be waited for */
	check_rules(&a, mark_in_force());
	open_rules();
	set_preload();
	/* The library asks for rules only when there are some to add. */
	if (nspecs > 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		err(EX_RUNTIME, "socketpair");
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if ((pid = fork()) < 0)
		err(EX_RUNTIME, "fork");
	if (pid == 0) {
		if (sv[1] >= 0 && (sv[1] = dup(sv[1])) < 0)	/* without CLOEXEC: PROGRAM's */
			err(EX_RUNTIME, "dup");
		run(a.cmd, sv[1]);
	}
	child = pid;
	if (sv[1] >= 0)
		close(sv[1]);
	status = serve(pid, sv[0]);
	divert_rules_close(rules);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
