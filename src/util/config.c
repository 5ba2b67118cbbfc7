#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util/config.h"
#include "util/err.h"
#include "util/suggest.h"

void
config_env_name(const char *name, char *out, size_t outlen)
{
    size_t i, n;

    n = (size_t)snprintf(out, outlen, "FLUXHOOK_");
    for (i = 0; name[i] != '\0' && n + 1 < outlen; i++)
        out[n++] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    out[n < outlen ? n : outlen - 1] = '\0';
}

static int
find(const struct config *c, const char *name, size_t len)
{
    int i;

    for (i = 0; i < c->nopts; i++) {
        if (strlen(c->opts[i].name) == len && strncmp(c->opts[i].name, name, len) == 0)
            return i;
    }
    return -1;
}

static int
find_short(const struct config *c, char s)
{
    int i;

    for (i = 0; i < c->nopts; i++) {
        if (c->opts[i].shortname == s)
            return i;
    }
    return -1;
}

/* "unknown option '--endpont'", and "(did you mean --endpoint?)" when one is close. */
static void
unknown_option(const struct config *c, const char *a, char *err, size_t errlen)
{
    char typed[72];
    struct suggest sg;
    const char *best;
    size_t len;
    int i;

    len = strcspn(a + 2, "=");
    snprintf(typed, sizeof(typed), "%.*s", (int)(len < 64 ? len : 64), a + 2);
    suggest_init(&sg, typed);
    for (i = 0; a[1] == '-' && i < c->nopts; i++)
        suggest_add(&sg, c->opts[i].name);
    best = suggest_best(&sg);
    if (best != NULL)
        snprintf(err, errlen, "unknown option '%s' (did you mean --%s?)", a, best);
    else
        snprintf(err, errlen, "unknown option '%s'", a);
}

int
config_parse(struct config *c, const struct config_opt *opts, int argc, char **argv, char *err,
             size_t errlen)
{
    char envname[96];
    int given[CONFIG_MAX_OPTS] = {0};
    int i, k, only_args = 0;

    memset(c, 0, sizeof(*c));
    c->opts = opts;
    while (opts[c->nopts].name != NULL)
        c->nopts++;
    if (c->nopts > CONFIG_MAX_OPTS) {
        snprintf(err, errlen, "too many options in one table");
        return ERR_INVAL;
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq;
        size_t len;

        if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
            if (c->nargs == CONFIG_MAX_ARGS) {
                snprintf(err, errlen, "too many arguments");
                return ERR_INVAL;
            }
            c->args[c->nargs++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            c->help = 1;
            continue;
        }
        if (a[1] != '-') {
            k = a[2] == '\0' ? find_short(c, a[1]) : -1;
            eq = NULL;
        } else {
            eq = strchr(a + 2, '=');
            len = eq != NULL ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            k = find(c, a + 2, len);
        }
        if (k < 0) {
            unknown_option(c, a, err, errlen);
            return ERR_INVAL;
        }
        if (opts[k].metavar == NULL) {
            if (eq != NULL) {
                c->values[k] = eq + 1;
            } else {
                c->values[k] = "1";
            }
        } else if (eq != NULL) {
            c->values[k] = eq + 1;
        } else if (i + 1 < argc) {
            c->values[k] = argv[++i];
        } else {
            snprintf(err, errlen, "option '--%s' needs a value (%s)", opts[k].name,
                     opts[k].metavar);
            return ERR_INVAL;
        }
        given[k] = 1;
    }
    for (k = 0; k < c->nopts; k++) {
        const char *v;

        if (given[k])
            continue;
        if (opts[k].env) {
            config_env_name(opts[k].name, envname, sizeof(envname));
            v = getenv(envname);
            if (v != NULL && v[0] != '\0') {
                c->values[k] = v;
                continue;
            }
        }
        c->values[k] = opts[k].def;
    }
    return 0;
}

const char *
config_get(const struct config *c, const char *name)
{
    int k = find(c, name, strlen(name));

    return k >= 0 ? c->values[k] : NULL;
}

int
config_bool(const struct config *c, const char *name)
{
    const char *v = config_get(c, name);

    if (v == NULL)
        return 0;
    return strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
           strcasecmp(v, "on") == 0;
}

void
config_print_options(FILE *f, const struct config_opt *opts)
{
    char left[128];
    int i;

    for (i = 0; opts[i].name != NULL; i++) {
        if (opts[i].shortname)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", opts[i].shortname, opts[i].name,
                     opts[i].metavar ? " " : "", opts[i].metavar ? opts[i].metavar : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", opts[i].name,
                     opts[i].metavar ? " " : "", opts[i].metavar ? opts[i].metavar : "");
        fprintf(f, "  %-34s %s", left, opts[i].help);
        if (opts[i].def != NULL && opts[i].metavar != NULL)
            fprintf(f, " (default %s)", opts[i].def);
        fputc('\n', f);
    }
}
