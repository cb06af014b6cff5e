/*
 * rule_argp.h - the rule options on a tool's command line (divert-rule):
 * an argp child that hands each option to libdivert's divert_rule_option,
 * into the struct divert_rule its parent passes as child input.
 */
#ifndef DIVERT_RULE_ARGP_H
#define DIVERT_RULE_ARGP_H

#include <argp.h>

/* -4 -6 -s -d --sport --dport -i -o --pass-through --priority --fanout;
 * a bad value is argp_error()'s, with the library's words. */
extern const struct argp rule_argp;

#endif
