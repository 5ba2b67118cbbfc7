/*
 * Command-line configuration from one table per command: each option has a
 * name (--name VALUE or --name=VALUE), an optional environment twin
 * (FLUXHOOK_NAME, dashes as underscores), a default and its help text.
 * A flag given on the command line wins over its environment twin, which
 * wins over the default.
 */
#ifndef FLUXHOOK_UTIL_CONFIG_H
#define FLUXHOOK_UTIL_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_OPTS 48
#define CONFIG_MAX_ARGS 32

struct config_opt {
    const char *name;    /* "listen" for --listen */
    const char *metavar; /* "HOST:PORT"; NULL for a switch that takes no value */
    const char *def;     /* default value, or NULL for none */
    const char *help;    /* one line for --help and the man page */
    int env;             /* 1: FLUXHOOK_<NAME> is read too */
    char shortname;      /* 'n' for -n, or 0 */
};

struct config {
    const struct config_opt *opts;
    int nopts;
    const char *values[CONFIG_MAX_OPTS]; /* borrowed from argv, environ or opts */
    char *args[CONFIG_MAX_ARGS];         /* positional arguments, borrowed */
    int nargs;
    int help; /* 1 when -h or --help was given */
};

/*
 * Parses argv (argv[0] is the command's name and is skipped) against the
 * NULL-name-terminated table opts. On ERR_INVAL, err (size errlen) says what
 * was wrong, such as "unknown option '--foo'".
 */
int config_parse(struct config *c, const struct config_opt *opts, int argc, char **argv,
                 char *err, size_t errlen);

/* The value of an option, or NULL when neither given nor defaulted. */
const char *config_get(const struct config *c, const char *name);

/* 1 when a switch is on ("1", "true", "yes", "on" or given without a value). */
int config_bool(const struct config *c, const char *name);

/* The environment twin's name for an option: "FLUXHOOK_LISTEN" for "listen". */
void config_env_name(const char *name, char *out, size_t outlen);

/* Prints the options as an aligned list, for --help. */
void config_print_options(FILE *f, const struct config_opt *opts);

#endif
