/*
 * libFuzzer target for configuration from flags and environment: argv and
 * FLUXHOOK_* twins through config_parse() (src/util/config.c) against every
 * option table of the command line, and for `fluxhook serve` through the
 * whole check of its values (`fluxhook serve --check`, which stops before
 * opening anything).
 *
 * Input: byte 0 picks the option table (0: serve, then every command's,
 * subcommand's and the client options); the rest is split at '\n' into
 * items: an item "FLUXHOOK_NAME=value" is put in the environment, any other
 * is the next argument. The environment is put back as it was (without
 * FLUXHOOK_* variables: they are removed at start) after every input.
 *
 * Besides crashes it checks that every value comes from an argument, its
 * environment twin or its default, and that a refusal says why. For serve,
 * "-n" is appended so most inputs reach the value checks; an input whose
 * arguments still do not turn --check on (it was eaten as another option's
 * value) is not run, so no server is ever started.
 *
 * Host names are not resolved: getaddrinfo() below passes AI_NUMERICHOST to
 * the C library's, so --listen with a name is refused here instead of
 * waiting on DNS (slow, and a fuzzer sends no packets).
 */
#include <dlfcn.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "util/config.h"

#define MAX_ITEMS 64
#define MAX_TABLES 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int getaddrinfo_fn(const char *, const char *, const struct addrinfo *, struct addrinfo **);

int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
            struct addrinfo **res)
{
    static getaddrinfo_fn *real;
    struct addrinfo h;

    if (real == NULL)
        real = (getaddrinfo_fn *)dlsym(RTLD_NEXT, "getaddrinfo");
    if (real == NULL)
        return EAI_FAIL;
    memset(&h, 0, sizeof(h));
    if (hints != NULL)
        h = *hints;
    h.ai_flags |= AI_NUMERICHOST;
    return real(node, service, &h, res);
}

static const struct config_opt *tables[MAX_TABLES];
static size_t ntables;
static FILE *devnull;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    extern char **environ;
    char name[256];
    const char *eq;
    size_t i, j;

    (void)argc;
    (void)argv;
    /* This process's own FLUXHOOK_* variables would make runs depend on where they ran. */
    for (i = 0; environ[i] != NULL;) {
        eq = strchr(environ[i], '=');
        if (strncmp(environ[i], "FLUXHOOK_", 9) == 0 && eq != NULL &&
            (size_t)(eq - environ[i]) < sizeof(name)) {
            snprintf(name, sizeof(name), "%.*s", (int)(eq - environ[i]), environ[i]);
            unsetenv(name);
            continue;
        }
        i++;
    }
    tables[ntables++] = cmd_serve.opts;
    tables[ntables++] = client_opts;
    for (i = 0; cli_cmds[i] != NULL; i++) {
        if (cli_cmds[i]->opts != NULL && cli_cmds[i] != &cmd_serve && ntables < MAX_TABLES)
            tables[ntables++] = cli_cmds[i]->opts;
        for (j = 0; cli_cmds[i]->subs != NULL && cli_cmds[i]->subs[j].name != NULL; j++) {
            if (cli_cmds[i]->subs[j].opts != NULL && ntables < MAX_TABLES)
                tables[ntables++] = cli_cmds[i]->subs[j].opts;
        }
    }
    devnull = fopen("/dev/null", "w");
    if (devnull == NULL)
        abort();
    return 0;
}

/* v points into one of the n arguments. */
static int
from_args(const char *v, char **args, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        if (v >= args[i] && v <= args[i] + strlen(args[i]))
            return 1;
    }
    return 0;
}

static void
check(const struct config *c, const struct config_opt *opts, char **args, int n)
{
    char env[96];
    const char *v;
    int k, i;

    for (k = 0; opts[k].name != NULL; k++) {
        v = c->values[k];
        if (v == NULL || v == opts[k].def || strcmp(v, "1") == 0 || from_args(v, args, n))
            continue;
        config_env_name(opts[k].name, env, sizeof(env));
        if (opts[k].env && v == getenv(env))
            continue;
        abort(); /* a value from nowhere */
    }
    for (i = 0; i < c->nargs; i++) {
        if (!from_args(c->args[i], args, n))
            abort();
    }
}

/* Runs `fluxhook serve ARGS` when its arguments turn --check on. */
static void
serve_check(char **args, int n)
{
    char *argv[MAX_ITEMS + 3];
    struct config c;
    char err[256];
    FILE *out = stdout, *errf = stderr;
    int i;

    if (config_parse(&c, cmd_serve.opts, n, args, err, sizeof(err)) == 0 && !c.help &&
        !config_bool(&c, "check"))
        return;
    argv[0] = "fluxhook";
    for (i = 0; i < n; i++)
        argv[i + 1] = args[i];
    argv[n + 1] = NULL;
    stdout = devnull;
    stderr = devnull;
    (void)cli_run(n + 1, argv);
    stdout = out;
    stderr = errf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *args[MAX_ITEMS + 2], *envs[MAX_ITEMS], *copy, *p, *nl, *eq;
    char name[128], err[256];
    const struct config_opt *opts;
    struct config c;
    int n = 0, nenv = 0, i;

    if (size < 1 || size > 8192)
        return 0;
    opts = tables[data[0] % ntables];
    copy = malloc(size);
    if (copy == NULL)
        return 0;
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    args[n++] = opts == cmd_serve.opts ? "serve" : "cmd";
    for (p = copy; p != NULL && n < MAX_ITEMS && nenv < MAX_ITEMS; p = nl) {
        nl = strchr(p, '\n');
        if (nl != NULL)
            *nl++ = '\0';
        eq = strchr(p, '=');
        if (strncmp(p, "FLUXHOOK_", 9) == 0 && eq != NULL && eq - p < (int)sizeof(name)) {
            /* putenv keeps our string: nothing is copied, so nothing piles up. */
            if (putenv(p) == 0)
                envs[nenv++] = p;
            continue;
        }
        if (nl == NULL && *p == '\0')
            break;
        args[n++] = p;
    }
    if (opts == cmd_serve.opts)
        args[n++] = "-n";
    args[n] = NULL;

    err[0] = '\0';
    if (config_parse(&c, opts, n, args, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort(); /* a refusal says why */
    } else {
        check(&c, opts, args, n);
    }
    if (opts == cmd_serve.opts)
        serve_check(args, n);

    for (i = 0; i < nenv; i++) {
        eq = strchr(envs[i], '=');
        snprintf(name, sizeof(name), "%.*s", (int)(eq - envs[i]), envs[i]);
        unsetenv(name);
    }
    free(copy);
    return 0;
}
