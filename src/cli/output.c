/*
 * Tables, detail views, the progress bar, and the man page and bash
 * completion generated from the command table.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/output.h"
#include "util/clock.h"
#include "util/err.h"

#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_RED "\033[31m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"
#define C_CYAN "\033[36m"
#define C_DIM "\033[2m"

#define KV_WIDTH 18 /* width of the keys of a detail view */
#define BAR_WIDTH 30

int
out_color_stdout(void)
{
    const char *nc = getenv("NO_COLOR");

    return isatty(STDOUT_FILENO) && (nc == NULL || nc[0] == '\0');
}

int
out_tty_stderr(void)
{
    return isatty(STDERR_FILENO);
}

void
out_table_init(struct out_table *t, int ncols, const char *const *heads)
{
    int i;

    memset(t, 0, sizeof(*t));
    t->ncols = ncols > OUT_MAX_COLS ? OUT_MAX_COLS : ncols;
    for (i = 0; i < t->ncols; i++)
        t->heads[i] = heads[i];
}

int
out_table_add(struct out_table *t, const char *const *cells)
{
    char **grown;
    int i, cap;

    if (t->ncols == 0)
        return ERR_INVAL;
    if (t->nrows == t->caprows) {
        cap = t->caprows == 0 ? 16 : t->caprows * 2;
        grown = realloc(t->cells, (size_t)cap * (size_t)t->ncols * sizeof(*grown));
        if (grown == NULL)
            return ERR_NOMEM;
        t->cells = grown;
        t->caprows = cap;
    }
    for (i = 0; i < t->ncols; i++) {
        t->cells[t->nrows * t->ncols + i] = strdup(cells[i] != NULL ? cells[i] : "-");
        if (t->cells[t->nrows * t->ncols + i] == NULL) {
            while (i-- > 0)
                free(t->cells[t->nrows * t->ncols + i]);
            return ERR_NOMEM;
        }
    }
    t->nrows++;
    return 0;
}

/* Display width of UTF-8 text: code points, not bytes. */
static int
text_width(const char *s)
{
    int w = 0;

    for (; *s != '\0'; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    }
    return w;
}

const char *
out_status_color(const char *status)
{
    static const struct {
        const char *word;
        const char *color;
    } colors[] = {
        {"delivered", C_GREEN}, {"enabled", C_GREEN}, {"failed", C_RED},      {"disabled", C_RED},
        {"held", C_YELLOW},     {"pending", C_CYAN},  {"delivering", C_CYAN}, {"retrying", C_CYAN},
    };
    size_t i, len = strcspn(status, " ");

    /* The first word decides: "retrying — attempt 3 of 5, next in 8 s" is cyan. */
    for (i = 0; i < sizeof(colors) / sizeof(colors[0]); i++) {
        if (strlen(colors[i].word) == len && strncmp(status, colors[i].word, len) == 0)
            return colors[i].color;
    }
    return "";
}

static void
cell_print(FILE *f, const char *s, int width, int last, const char *color)
{
    int pad = width - text_width(s);

    if (color != NULL && color[0] != '\0')
        fprintf(f, "%s%s%s", color, s, C_RESET);
    else
        fputs(s, f);
    if (!last)
        fprintf(f, "%*s", pad + 2, "");
}

void
out_table_print(const struct out_table *t, FILE *f, int color)
{
    int width[OUT_MAX_COLS];
    int r, i, w;

    for (i = 0; i < t->ncols; i++) {
        width[i] = text_width(t->heads[i]);
        for (r = 0; r < t->nrows; r++) {
            w = text_width(t->cells[r * t->ncols + i]);
            if (w > width[i])
                width[i] = w;
        }
    }
    for (i = 0; i < t->ncols; i++)
        cell_print(f, t->heads[i], width[i], i == t->ncols - 1, color ? C_BOLD : NULL);
    fputc('\n', f);
    for (r = 0; r < t->nrows; r++) {
        for (i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];

            cell_print(
                f, s, width[i], i == t->ncols - 1,
                color && (strcmp(t->heads[i], "STATUS") == 0 || strcmp(t->heads[i], "STATE") == 0)
                    ? out_status_color(s)
                    : NULL);
        }
        fputc('\n', f);
    }
}

void
out_table_cleanup(struct out_table *t)
{
    int i;

    for (i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
    t->caprows = 0;
}

void
out_kv(FILE *f, int color, const char *key, const char *value)
{
    const char *c = "";

    if (color && (strcmp(key, "status") == 0 || strcmp(key, "STATUS") == 0))
        c = out_status_color(value);
    fprintf(f, "%s%-*s%s %s%s%s\n", color ? C_DIM : "", KV_WIDTH, key, color ? C_RESET : "", c,
            value, c[0] != '\0' ? C_RESET : "");
}

const char *
out_field(json_t *o, const char *key, char *scratch, size_t n)
{
    json_t *v = json_object_get(o, key);
    size_t i;
    json_t *e;

    if (v == NULL || json_is_null(v))
        return "-";
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(scratch, n, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(scratch, n, "%g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(scratch, n, "%s", json_is_true(v) ? "yes" : "no");
    } else if (json_is_array(v)) {
        /* A list of strings joins with commas; empty reads as "-". */
        scratch[0] = '\0';
        json_array_foreach(v, i, e)
        {
            size_t used = strlen(scratch);

            snprintf(scratch + used, n - used, "%s%s", i > 0 ? "," : "",
                     json_is_string(e) ? json_string_value(e) : "?");
        }
        if (scratch[0] == '\0')
            return "-";
    } else {
        return "...";
    }
    return scratch;
}

int
out_list(FILE *f, int color, json_t *items, const struct out_col *cols)
{
    struct out_table t;
    const char *heads[OUT_MAX_COLS] = {0}, *cells[OUT_MAX_COLS];
    char scratch[OUT_MAX_COLS][512];
    json_t *it;
    size_t i;
    int n, c, err = 0;

    for (n = 0; n < OUT_MAX_COLS && cols[n].head != NULL; n++)
        heads[n] = cols[n].head;
    out_table_init(&t, n, heads);
    json_array_foreach(items, i, it)
    {
        for (c = 0; c < n; c++) {
            cells[c] = out_field(it, cols[c].key, scratch[c], sizeof(scratch[c]));
            if (strcmp(cells[c], "-") == 0 && cols[c].empty != NULL)
                cells[c] = cols[c].empty;
        }
        err = out_table_add(&t, cells);
        if (err != 0)
            goto out;
    }
    out_table_print(&t, f, color);
out:
    out_table_cleanup(&t);
    return err;
}

void
out_object(FILE *f, int color, json_t *o)
{
    const char *key, *text;
    char scratch[1024];
    json_t *v, *e;
    char *dump;
    size_t i;
    int plain;

    json_object_foreach(o, key, v)
    {
        plain = !json_is_object(v);
        if (json_is_array(v)) {
            json_array_foreach(v, i, e)
            {
                if (!json_is_string(e))
                    plain = 0;
            }
        }
        if (plain) {
            text = out_field(o, key, scratch, sizeof(scratch));
            out_kv(f, color, key, text);
            continue;
        }
        dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        out_kv(f, color, key, dump != NULL ? dump : "?");
        free(dump);
    }
}

void
out_progress_start(struct out_progress *p, const char *label, long total)
{
    memset(p, 0, sizeof(*p));
    p->label = label;
    p->total = total;
    p->tty = out_tty_stderr();
}

static void
progress_draw(struct out_progress *p)
{
    int fill, i;

    if (!p->tty)
        return;
    if (p->total > 0) {
        fill = (int)(p->done * BAR_WIDTH / p->total);
        if (fill > BAR_WIDTH)
            fill = BAR_WIDTH;
        fprintf(stderr, "\r%s [", p->label);
        for (i = 0; i < BAR_WIDTH; i++)
            fputc(i < fill ? '#' : '.', stderr);
        fprintf(stderr, "] %ld/%ld", p->done, p->total);
    } else {
        fprintf(stderr, "\r%s %ld", p->label, p->done);
    }
    fflush(stderr);
    p->drawn_ms = clock_mono_ms();
}

void
out_progress_set(struct out_progress *p, long done)
{
    p->done = done;
    if (p->tty && clock_mono_ms() - p->drawn_ms >= 100)
        progress_draw(p);
}

void
out_progress_end(struct out_progress *p)
{
    if (!p->tty)
        return;
    progress_draw(p);
    fputc('\n', stderr);
}

void
cli_subs_help(FILE *f, const struct cli_cmd *cmd)
{
    int i;

    fprintf(f, "\nsubcommands:\n");
    for (i = 0; cmd->subs[i].name != NULL; i++)
        fprintf(f, "  %-15s %s\n", cmd->subs[i].name, cmd->subs[i].summary);
    fprintf(f, "\nRun 'fluxhook %s SUBCOMMAND --help' for its options.\n", cmd->name);
}

/* Writes s for roff: backslashes and dashes escaped, a leading dot or quote guarded. */
static void
roff(FILE *f, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", f);
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
}

/* Writes text of several lines for roff: each line as roff() writes it. */
static void
roff_text(FILE *f, const char *text)
{
    char line[1024];
    const char *p = text, *nl;
    size_t len;

    while (*p != '\0') {
        nl = strchr(p, '\n');
        len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (len >= sizeof(line))
            len = sizeof(line) - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        roff(f, line);
        fputc('\n', f);
        p += nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);
    }
}

static void
man_opts(FILE *f, const struct config_opt *opts)
{
    int i;

    for (i = 0; opts != NULL && opts[i].name != NULL; i++) {
        fputs(".TP\n", f);
        if (opts[i].shortname)
            fprintf(f, "\\fB\\-%c\\fR, ", opts[i].shortname);
        fputs("\\fB\\-\\-", f);
        roff(f, opts[i].name);
        fputs("\\fR", f);
        if (opts[i].metavar != NULL) {
            fputs(" \\fI", f);
            roff(f, opts[i].metavar);
            fputs("\\fR", f);
        }
        fputc('\n', f);
        roff(f, opts[i].help);
        if (opts[i].def != NULL && opts[i].metavar != NULL) {
            fputs(" (default ", f);
            roff(f, opts[i].def);
            fputc(')', f);
        }
        fputc('\n', f);
    }
}

int
cli_man_write(FILE *f)
{
    const struct cli_cmd *cmd;
    int i, j;

    fprintf(f, ".\\\" generated by 'fluxhook help --man' from src/cli; do not edit\n");
    fprintf(f, ".TH FLUXHOOK 1 \"\" \"fluxhook %s\" \"User Commands\"\n", FLUXHOOK_VERSION);
    fprintf(f, ".SH NAME\nfluxhook \\- deliver webhooks, and manage them from a terminal\n");
    fprintf(f, ".SH SYNOPSIS\n");
    for (i = 0; cli_cmds[i] != NULL; i++) {
        cmd = cli_cmds[i];
        if (cmd->subs == NULL) {
            fputs(".B fluxhook ", f);
            roff(f, cmd->name);
            fputc('\n', f);
            if (cmd->usage[0] != '\0') {
                roff(f, cmd->usage);
                fputc('\n', f);
            }
            fputs(".br\n", f);
            continue;
        }
        for (j = 0; cmd->subs[j].name != NULL; j++) {
            fputs(".B fluxhook ", f);
            roff(f, cmd->name);
            fputc(' ', f);
            roff(f, cmd->subs[j].name);
            fputc('\n', f);
            if (cmd->subs[j].usage[0] != '\0') {
                roff(f, cmd->subs[j].usage);
                fputc('\n', f);
            }
            fputs(".br\n", f);
        }
    }
    fprintf(f, ".SH DESCRIPTION\n"
               "fluxhook stores published events, signs them and delivers them to the\n"
               "endpoints subscribed to them, with retries.\n"
               "\\fBfluxhook serve\\fR runs the service; the client commands manage it\n"
               "through its REST API.\n");
    fprintf(f, ".SH COMMANDS\n");
    for (i = 0; cli_cmds[i] != NULL; i++) {
        cmd = cli_cmds[i];
        fputs(".SS ", f);
        roff(f, cmd->name);
        fputc('\n', f);
        roff(f, cmd->summary);
        fputc('\n', f);
        man_opts(f, cmd->opts);
        for (j = 0; cmd->subs != NULL && cmd->subs[j].name != NULL; j++) {
            fputs(".TP\n\\fBfluxhook ", f);
            roff(f, cmd->name);
            fputc(' ', f);
            roff(f, cmd->subs[j].name);
            fputs("\\fR ", f);
            roff(f, cmd->subs[j].usage);
            fputc('\n', f);
            roff(f, cmd->subs[j].summary);
            fputc('\n', f);
            if (cmd->subs[j].description != NULL) {
                fputs(".IP\n", f);
                roff_text(f, cmd->subs[j].description);
            }
            if (cmd->subs[j].opts != NULL && cmd->subs[j].opts[0].name != NULL) {
                fputs(".RS\n", f);
                man_opts(f, cmd->subs[j].opts);
                fputs(".RE\n", f);
            }
        }
    }
    fprintf(f, ".SH CLIENT OPTIONS\nEvery subcommand of endpoints, events, deliveries, "
               "event\\-types, accounts and keys, and trigger, also take:\n");
    man_opts(f, client_opts);
    fprintf(f,
            ".SH ENVIRONMENT\n"
            ".TP\n.B FLUXHOOK_URL\nthe server of the client commands (default %s)\n"
            ".TP\n.B FLUXHOOK_API_KEY\nthe API key of the client commands\n"
            ".TP\n.B FLUXHOOK_ACCOUNT\nthe account an admin key acts for\n"
            ".TP\n.B NO_COLOR\nwhen set and not empty, output has no colour\n",
            CLIENT_DEFAULT_URL);
    fprintf(f, ".SH EXIT STATUS\n"
               ".TP\n.B 0\ndone\n"
               ".TP\n.B 1\nthe server refused (its message is printed), or a check failed\n"
               ".TP\n.B 2\nbad usage\n"
               ".TP\n.B 3\nthe server could not be reached\n");
    fprintf(f, ".SH EXAMPLES\n.nf\n"
               "fluxhook listen \\-\\-port 9000 \\-\\-secret whsec_...\n"
               "fluxhook endpoints create \\-\\-url http://127.0.0.1:9000/hook\n"
               "fluxhook events publish conversation.started \\-\\-data @event.json\n"
               "fluxhook deliveries list \\-\\-follow\n.fi\n");
    fprintf(f, ".SH SEE ALSO\n.BR fluxhook\\-verify (3)\n");
    return CLI_OK;
}

static void
words_opts(FILE *f, const struct config_opt *opts)
{
    int i;

    for (i = 0; opts != NULL && opts[i].name != NULL; i++)
        fprintf(f, " --%s", opts[i].name);
}

int
cli_completion_write(FILE *f)
{
    const struct cli_cmd *cmd;
    int i, j;

    fprintf(f, "# bash completion for fluxhook\n"
               "# generated by 'fluxhook help --completion' from src/cli; do not edit\n\n"
               "_fluxhook()\n{\n"
               "    local cur cmd sub words\n"
               "    cur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
               "    cmd=\"${COMP_WORDS[1]}\"\n"
               "    sub=\"${COMP_WORDS[2]}\"\n"
               "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
               "        words=\"");
    for (i = 0; cli_cmds[i] != NULL; i++)
        fprintf(f, "%s%s", i > 0 ? " " : "", cli_cmds[i]->name);
    fprintf(f, "\"\n"
               "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
               "        return\n"
               "    fi\n"
               "    case \"$cmd\" in\n");
    for (i = 0; cli_cmds[i] != NULL; i++) {
        cmd = cli_cmds[i];
        fprintf(f, "    %s)\n", cmd->name);
        if (cmd->subs == NULL) {
            fprintf(f, "        words=\"--help");
            words_opts(f, cmd->opts);
            fprintf(f, "\"\n");
        } else {
            fprintf(f, "        if [ \"$COMP_CWORD\" -eq 2 ]; then\n            words=\"");
            for (j = 0; cmd->subs[j].name != NULL; j++)
                fprintf(f, "%s%s", j > 0 ? " " : "", cmd->subs[j].name);
            fprintf(f, "\"\n        else\n            case \"$sub\" in\n");
            for (j = 0; cmd->subs[j].name != NULL; j++) {
                fprintf(f, "            %s) words=\"--help", cmd->subs[j].name);
                words_opts(f, cmd->subs[j].opts);
                if (!cmd->local)
                    words_opts(f, client_opts);
                fprintf(f, "\" ;;\n");
            }
            fprintf(f, "            *) words=\"\" ;;\n            esac\n        fi\n");
        }
        fprintf(f, "        ;;\n");
    }
    fprintf(f, "    *) words=\"\" ;;\n"
               "    esac\n"
               "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
               "}\n"
               "complete -o default -F _fluxhook fluxhook\n");
    return CLI_OK;
}

const char *
out_time_local(const char *iso, char *out, size_t n)
{
    struct tm tm;
    int64_t ms;
    time_t t;

    if (iso == NULL || clock_parse_rfc3339(iso, &ms) != 0)
        return iso != NULL ? iso : "-";
    t = (time_t)(ms / 1000);
    if (localtime_r(&t, &tm) == NULL || strftime(out, n, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
        return iso;
    return out;
}

const char *
out_duration(int64_t ms, char *out, size_t n)
{
    int64_t s = (ms + 999) / 1000;

    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(out, n, "%lld s", (long long)s);
    else if (s < 600 && s % 60 != 0)
        snprintf(out, n, "%lld min %lld s", (long long)(s / 60), (long long)(s % 60));
    else if (s < 3600)
        snprintf(out, n, "%lld min", (long long)(s / 60));
    else
        snprintf(out, n, "%lld h %lld min", (long long)(s / 3600), (long long)(s % 3600 / 60));
    return out;
}
