/*
 * The HTTP client of the client commands: libcurl easy plus jansson, and the
 * mapping of outcomes to exit statuses.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/client.h"
#include "cli/output.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/suggest.h"

#define CLIENT_MAX_FILE (16 * 1024 * 1024) /* largest --data @FILE */

const struct config_opt client_opts[] = {
    {"url", "URL", CLIENT_DEFAULT_URL, "the fluxhook server (or FLUXHOOK_URL)", 1, 0},
    {"server", "URL", NULL, "the fluxhook server, where --url means something else", 0, 0},
    {"api-key", "KEY", NULL, "the API key (or FLUXHOOK_API_KEY)", 1, 0},
    {"account", "ID", NULL,
     "act for this account with an admin key (X-Workflux-Account; or FLUXHOOK_ACCOUNT)", 1, 0},
    {"json", NULL, NULL, "print the API's JSON instead of a table", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static volatile sig_atomic_t stop_flag;

static const struct cli_sub *
sub_find(const struct cli_cmd *cmd, const char *name)
{
    int i;

    for (i = 0; cmd->subs[i].name != NULL; i++) {
        if (strcmp(cmd->subs[i].name, name) == 0)
            return &cmd->subs[i];
    }
    return NULL;
}

/* Prints the command's usage: each subcommand's synopsis. */
static void
cmd_usage(FILE *f, const struct cli_cmd *cmd)
{
    int i;

    for (i = 0; cmd->subs[i].name != NULL; i++)
        fprintf(f, "%s fluxhook %s %s%s%s\n", i == 0 ? "usage:" : "      ", cmd->name,
                cmd->subs[i].name, cmd->subs[i].usage[0] != '\0' ? " " : "", cmd->subs[i].usage);
}

static int sub_opt_has(const struct cli_sub *sub, const char *name);

static void
sub_help(FILE *f, const struct cli_call *x)
{
    struct config_opt shown[CONFIG_MAX_OPTS + 1];
    int i, n = 0;

    fprintf(f, "usage: fluxhook %s%s%s%s%s\n\n%s\n", x->cmd->name,
            x->sub->name[0] != '\0' ? " " : "", x->sub->name, x->sub->usage[0] != '\0' ? " " : "",
            x->sub->usage, x->sub->summary);
    if (x->sub->description != NULL)
        fprintf(f, "\n%s\n", x->sub->description);
    if (x->sub->opts != NULL && x->sub->opts[0].name != NULL) {
        fprintf(f, "\noptions:\n");
        config_print_options(f, x->sub->opts);
    }
    if (x->cmd->local)
        return;
    fprintf(f, "\nclient options:\n");
    for (i = 0; client_opts[i].name != NULL; i++) {
        if (!sub_opt_has(x->sub, client_opts[i].name))
            shown[n++] = client_opts[i];
    }
    memset(&shown[n], 0, sizeof(shown[n]));
    config_print_options(f, shown);
}

int
client_usage(const struct cli_call *x, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "fluxhook %s%s%s: ", x->cmd->name, x->sub->name[0] != '\0' ? " " : "",
            x->sub->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: fluxhook %s%s%s%s%s\n", x->cmd->name,
            x->sub->name[0] != '\0' ? " " : "", x->sub->name, x->sub->usage[0] != '\0' ? " " : "",
            x->sub->usage);
    return CLI_USAGE;
}

const char *
client_opt(const struct cli_call *x, const char *name)
{
    return config_get(&x->conf, name);
}

const char *
client_arg(const struct cli_call *x, int i)
{
    return i >= 0 && i < x->conf.nargs ? x->conf.args[i] : NULL;
}

static int
sub_opt_has(const struct cli_sub *sub, const char *name)
{
    int i;

    for (i = 0; sub->opts != NULL && sub->opts[i].name != NULL; i++) {
        if (strcmp(sub->opts[i].name, name) == 0)
            return 1;
    }
    return 0;
}

/*
 * Joins the subcommand's options and the client options (unless the command
 * is local) into one table.
 */
static int
opts_merge(const struct cli_cmd *cmd, const struct cli_sub *sub, struct config_opt *out, int max)
{
    int n = 0, i;

    for (i = 0; sub->opts != NULL && sub->opts[i].name != NULL; i++) {
        if (n == max - 1)
            return ERR_INVAL;
        out[n++] = sub->opts[i];
    }
    for (i = 0; !cmd->local && client_opts[i].name != NULL; i++) {
        if (n == max - 1)
            return ERR_INVAL;
        /* The subcommand's own meaning of a name wins (endpoints create --url). */
        if (sub_opt_has(sub, client_opts[i].name))
            continue;
        out[n++] = client_opts[i];
    }
    memset(&out[n], 0, sizeof(out[n]));
    return 0;
}

static int sub_run(struct cli_call *xp, int argc, char **argv);

/* "unknown subcommand 'lst'" with "did you mean ..." when one is close. */
static void
unknown_sub(const struct cli_cmd *cmd, const char *name)
{
    struct suggest sg;
    const char *best;
    int i;

    suggest_init(&sg, name);
    for (i = 0; cmd->subs[i].name != NULL; i++)
        suggest_add(&sg, cmd->subs[i].name);
    best = suggest_best(&sg);
    if (best != NULL)
        fprintf(stderr, "fluxhook %s: unknown subcommand '%s'; did you mean 'fluxhook %s %s'?\n",
                cmd->name, name, cmd->name, best);
    else
        fprintf(stderr, "fluxhook %s: unknown subcommand '%s'\n", cmd->name, name);
}

int
client_cmd_run(const struct cli_cmd *cmd, int argc, char **argv)
{
    struct cli_call x;
    char *list_argv[CONFIG_MAX_ARGS + 2];
    int rc, i;

    memset(&x, 0, sizeof(x));
    x.cmd = cmd;
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "help") == 0)) {
        cli_cmd_help(stdout, cmd);
        rc = CLI_OK;
        goto out;
    }
    if (argc < 2 || argv[1][0] == '-') {
        /* No subcommand: "list" when the command has one. */
        x.sub = sub_find(cmd, "list");
        if (x.sub == NULL || argc > CONFIG_MAX_ARGS) {
            fprintf(stderr, "fluxhook %s: expected a subcommand\n", cmd->name);
            cmd_usage(stderr, cmd);
            rc = CLI_USAGE;
            goto out;
        }
        list_argv[0] = (char *)"list";
        for (i = 1; i < argc; i++)
            list_argv[i] = argv[i];
        list_argv[argc < 1 ? 1 : argc] = NULL;
        argv = list_argv;
        if (argc < 1)
            argc = 1;
    } else {
        x.sub = sub_find(cmd, argv[1]);
        if (x.sub == NULL) {
            unknown_sub(cmd, argv[1]);
            cmd_usage(stderr, cmd);
            rc = CLI_USAGE;
            goto out;
        }
        argc--;
        argv++;
    }
    rc = sub_run(&x, argc, argv);
out:
    return rc;
}

int
client_sub_run(const struct cli_cmd *cmd, const struct cli_sub *sub, int argc, char **argv)
{
    struct cli_call x;

    memset(&x, 0, sizeof(x));
    x.cmd = cmd;
    x.sub = sub;
    return sub_run(&x, argc, argv);
}

/* Parses argv (argv[0] is the subcommand's name) for x->sub, connects and runs it. */
static int
sub_run(struct cli_call *xp, int argc, char **argv)
{
    struct config_opt merged[CONFIG_MAX_OPTS + 1];
    struct cli_call x = *xp;
    char err[256];
    const char *url;
    size_t len;
    int rc;

    if (opts_merge(x.cmd, x.sub, merged, CONFIG_MAX_OPTS + 1) != 0 ||
        config_parse(&x.conf, merged, argc, argv, err, sizeof(err)) != 0) {
        rc = client_usage(&x, "%s", err);
        goto out;
    }
    if (x.conf.help) {
        sub_help(stdout, &x);
        rc = CLI_OK;
        goto out;
    }
    if (x.conf.nargs < x.sub->min_args) {
        rc = client_usage(&x, "missing argument");
        goto out;
    }
    if (x.conf.nargs > x.sub->max_args) {
        rc = client_usage(&x, "unexpected argument '%s'", x.conf.args[x.sub->max_args]);
        goto out;
    }
    if (x.cmd->local) {
        rc = x.sub->run(&x);
        goto out;
    }
    url = client_opt(&x, "server");
    if (url == NULL && !sub_opt_has(x.sub, "url"))
        url = client_opt(&x, "url");
    if (url == NULL)
        url = getenv("FLUXHOOK_URL");
    if (url == NULL || url[0] == '\0')
        url = CLIENT_DEFAULT_URL;
    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        rc = client_usage(&x, "the server URL '%s': expected http://HOST:PORT or https://HOST:PORT",
                          url);
        goto out;
    }
    x.url_own = strdup(url);
    if (x.url_own == NULL) {
        rc = CLI_REFUSED;
        goto out;
    }
    len = strlen(x.url_own);
    while (len > 0 && x.url_own[len - 1] == '/')
        x.url_own[--len] = '\0';
    x.url = x.url_own;
    x.key = client_opt(&x, "api-key");
    x.account = client_opt(&x, "account");
    x.json = config_bool(&x.conf, "json");
    x.color = out_color_stdout();
    x.curl = curl_easy_init();
    if (x.curl == NULL) {
        fprintf(stderr, "fluxhook: cannot start libcurl\n");
        rc = CLI_REFUSED;
        goto out;
    }
    rc = x.sub->run(&x);
out:
    if (x.curl != NULL)
        curl_easy_cleanup(x.curl);
    free(x.url_own);
    return rc;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;

    if (buf_append(b, p, size * n) != 0)
        return 0;
    return size * n;
}

int
client_request(struct cli_call *x, const char *method, const char *path, json_t *body,
               const char *hdr, struct client_reply *rep)
{
    struct curl_slist *hl = NULL, *tmp;
    struct buf line;
    char *payload = NULL, *full = NULL;
    CURLcode cc;
    int err = 0;

    memset(rep, 0, sizeof(*rep));
    buf_init(&rep->body, CLIENT_MAX_BODY);
    buf_init(&line, 8192);
    if (buf_printf(&line, "%s%s", x->url, path) != 0) {
        err = ERR_NOMEM;
        goto out;
    }
    full = buf_steal(&line);
    curl_easy_reset(x->curl);
    curl_easy_setopt(x->curl, CURLOPT_URL, full);
    curl_easy_setopt(x->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(x->curl, CURLOPT_USERAGENT, "fluxhook-cli/" FLUXHOOK_VERSION);
    curl_easy_setopt(x->curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(x->curl, CURLOPT_TIMEOUT_MS, 120000L);
    curl_easy_setopt(x->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->curl, CURLOPT_WRITEDATA, &rep->body);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(x->curl, CURLOPT_NOBODY, 1L);
    tmp = curl_slist_append(hl, "Accept: application/json");
    if (tmp == NULL) {
        err = ERR_NOMEM;
        goto out;
    }
    hl = tmp;
    if (x->key != NULL && x->key[0] != '\0') {
        buf_reset(&line);
        if (buf_printf(&line, "Authorization: Bearer %s", x->key) != 0 ||
            (tmp = curl_slist_append(hl, buf_cstr(&line))) == NULL) {
            err = ERR_NOMEM;
            goto out;
        }
        hl = tmp;
    }
    if (x->account != NULL && x->account[0] != '\0') {
        buf_reset(&line);
        if (buf_printf(&line, "X-Workflux-Account: %s", x->account) != 0 ||
            (tmp = curl_slist_append(hl, buf_cstr(&line))) == NULL) {
            err = ERR_NOMEM;
            goto out;
        }
        hl = tmp;
    }
    if (hdr != NULL) {
        tmp = curl_slist_append(hl, hdr);
        if (tmp == NULL) {
            err = ERR_NOMEM;
            goto out;
        }
        hl = tmp;
    }
    if (body != NULL) {
        payload = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        tmp = payload != NULL ? curl_slist_append(hl, "Content-Type: application/json") : NULL;
        if (tmp == NULL) {
            err = ERR_NOMEM;
            goto out;
        }
        hl = tmp;
        curl_easy_setopt(x->curl, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(x->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
    }
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, hl);
    cc = curl_easy_perform(x->curl);
    if (cc != CURLE_OK) {
        fprintf(stderr, "fluxhook: cannot reach %s: %s\n", x->url, curl_easy_strerror(cc));
        err = ERR_NET;
        goto out;
    }
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &rep->status);
    if (rep->body.len > 0)
        rep->json = json_loadb(rep->body.data, rep->body.len, JSON_DECODE_ANY, NULL);
out:
    curl_slist_free_all(hl);
    buf_cleanup(&line);
    free(payload);
    free(full);
    return err;
}

void
client_reply_cleanup(struct client_reply *rep)
{
    json_decref(rep->json);
    rep->json = NULL;
    buf_cleanup(&rep->body);
}

void
client_error_print(const struct client_reply *rep)
{
    json_t *e, *fields, *f;
    const char *msg, *type;
    size_t i;

    e = json_object_get(rep->json, "error");
    msg = json_string_value(json_object_get(e, "message"));
    type = json_string_value(json_object_get(e, "type"));
    if (msg == NULL) {
        fprintf(stderr, "fluxhook: the server answered HTTP %ld%s%.*s\n", rep->status,
                rep->body.len > 0 ? ": " : "", rep->body.len > 500 ? 500 : (int)rep->body.len,
                rep->body.len > 0 ? rep->body.data : "");
        return;
    }
    fprintf(stderr, "fluxhook: %s (HTTP %ld%s%s)\n", msg, rep->status, type != NULL ? " " : "",
            type != NULL ? type : "");
    fields = json_object_get(e, "fields");
    json_array_foreach(fields, i, f)
    {
        fprintf(stderr, "  %s: %s\n", json_string_value(json_object_get(f, "path")),
                json_string_value(json_object_get(f, "problem")));
    }
}

int
client_call(struct cli_call *x, const char *method, const char *path, json_t *body, const char *hdr,
            struct client_reply *rep)
{
    int err;

    err = client_request(x, method, path, body, hdr, rep);
    if (err == ERR_NET)
        return CLI_UNREACHABLE;
    if (err != 0) {
        fprintf(stderr, "fluxhook: %s\n", err_str(err));
        return CLI_REFUSED;
    }
    if (rep->status == 401 && (x->key == NULL || x->key[0] == '\0')) {
        fprintf(stderr, "fluxhook: no API key (HTTP 401): set FLUXHOOK_API_KEY (or pass --api-key "
                        "KEY); the admin key of a new server is in var/root.key:\n"
                        "  export FLUXHOOK_API_KEY=$(cat var/root.key)\n");
        return CLI_REFUSED;
    }
    if (rep->status == 401) {
        client_error_print(rep);
        fprintf(stderr, "fluxhook: the server refused the key in %s\n",
                client_opt(x, "api-key") != NULL && getenv("FLUXHOOK_API_KEY") == NULL
                    ? "--api-key"
                    : "FLUXHOOK_API_KEY (or --api-key)");
        return CLI_REFUSED;
    }
    if (rep->status < 200 || rep->status > 299) {
        client_error_print(rep);
        return CLI_REFUSED;
    }
    return CLI_OK;
}

char *
client_path(struct cli_call *x, const char *fmt, ...)
{
    struct buf b;
    const char *p, *s;
    char *esc;
    va_list ap;
    int err = 0;

    buf_init(&b, 8192);
    va_start(ap, fmt);
    for (p = fmt; *p != '\0' && err == 0; p++) {
        if (p[0] == '%' && p[1] == 's') {
            s = va_arg(ap, const char *);
            esc = curl_easy_escape(x->curl, s != NULL ? s : "", 0);
            err = esc != NULL ? buf_puts(&b, esc) : ERR_NOMEM;
            curl_free(esc);
            p++;
        } else {
            err = buf_putc(&b, *p);
        }
    }
    va_end(ap);
    if (err != 0 || b.len == 0) {
        buf_cleanup(&b);
        return NULL;
    }
    return buf_steal(&b);
}

int
client_json_arg(const struct cli_call *x, const char *what, const char *value, json_t **out)
{
    struct buf b;
    json_error_t je;
    int rc = CLI_OK;
    int err;

    *out = NULL;
    buf_init(&b, CLIENT_MAX_FILE);
    if (value[0] == '@') {
        err = buf_file_read(&b, value + 1);
        if (err == ERR_NOTFOUND) {
            rc = client_usage(x, "%s: cannot open '%s': %s", what, value + 1, strerror(errno));
            goto out;
        }
        if (err != 0) {
            rc = client_usage(x, "%s: cannot read '%s': %s", what, value + 1,
                              err == ERR_IO ? strerror(errno) : err_str(err));
            goto out;
        }
        *out = json_loadb(b.data != NULL ? b.data : "", b.len, JSON_DECODE_ANY, &je);
    } else {
        *out = json_loads(value, JSON_DECODE_ANY, &je);
    }
    if (*out == NULL)
        rc = client_usage(x, "%s: not JSON: %s (line %d, column %d)", what, je.text, je.line,
                          je.column);
out:
    buf_cleanup(&b);
    return rc;
}

int
client_time_arg(const char *s, char *out, size_t outlen)
{
    char tmp[CLOCK_RFC3339_MAX];
    int64_t ms;

    if (clock_parse_rfc3339(s, &ms) == 0) {
        snprintf(out, outlen, "%s", s);
        return 0;
    }
    if (clock_parse_duration(s, &ms) != 0)
        return ERR_PARSE;
    clock_format_rfc3339(clock_now_ms() - ms, tmp);
    snprintf(out, outlen, "%s", tmp);
    return 0;
}

void
client_json_print(const struct client_reply *rep)
{
    /* An empty answer (204) prints nothing. */
    if (rep->body.len == 0)
        return;
    fwrite(rep->body.data, 1, rep->body.len, stdout);
    if (rep->body.data[rep->body.len - 1] != '\n')
        fputc('\n', stdout);
}

static void
on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

void
client_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int
client_stopped(void)
{
    return stop_flag != 0;
}

int
client_sleep(int ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    if (!stop_flag)
        nanosleep(&ts, NULL);
    return stop_flag != 0;
}

int
client_simple(struct cli_call *x, const char *method, char *path, json_t *body,
              void (*show)(struct cli_call *x, json_t *answer))
{
    struct client_reply rep;
    int rc;

    memset(&rep, 0, sizeof(rep));
    if (path == NULL) {
        fprintf(stderr, "fluxhook: out of memory\n");
        rc = CLI_REFUSED;
        goto out;
    }
    rc = client_call(x, method, path, body, NULL, &rep);
    if (rc != CLI_OK)
        goto out;
    if (x->json)
        client_json_print(&rep);
    else if (show != NULL)
        show(x, rep.json);
out:
    client_reply_cleanup(&rep);
    json_decref(body);
    free(path);
    return rc;
}

char *
client_query(struct cli_call *x, const char *base, const char *const *params)
{
    static const char *const paging[] = {"limit", "limit", "after", "after", NULL};
    const char *const *lists[2];
    const char *v;
    struct buf b;
    char *esc;
    int i, k, err;

    lists[0] = params;
    lists[1] = paging;
    buf_init(&b, 8192);
    err = buf_puts(&b, base);
    for (k = 0; k < 2 && err == 0; k++) {
        for (i = 0; lists[k] != NULL && lists[k][i] != NULL && err == 0; i += 2) {
            v = client_opt(x, lists[k][i + 1]);
            if (v == NULL)
                continue;
            esc = curl_easy_escape(x->curl, v, 0);
            err = esc != NULL
                      ? buf_printf(&b, "%c%s=%s", strchr(b.data, '?') ? '&' : '?', lists[k][i], esc)
                      : ERR_NOMEM;
            curl_free(esc);
        }
    }
    if (err != 0) {
        buf_cleanup(&b);
        return NULL;
    }
    return buf_steal(&b);
}

int
client_list(struct cli_call *x, const char *base, const char *const *params,
            const struct out_col *cols)
{
    return client_list_prep(x, base, params, cols, NULL);
}

int
client_list_prep(struct cli_call *x, const char *base, const char *const *params,
                 const struct out_col *cols, void (*prep)(json_t *item))
{
    json_t *it;
    size_t i;
    struct client_reply rep;
    const char *next;
    char *path;
    int rc;

    memset(&rep, 0, sizeof(rep));
    path = client_query(x, base, params);
    if (path == NULL) {
        fprintf(stderr, "fluxhook: out of memory\n");
        rc = CLI_REFUSED;
        goto out;
    }
    rc = client_call(x, "GET", path, NULL, NULL, &rep);
    if (rc != CLI_OK)
        goto out;
    if (x->json) {
        client_json_print(&rep);
        goto out;
    }
    json_array_foreach(json_object_get(rep.json, "data"), i, it)
    {
        if (prep != NULL)
            prep(it);
    }
    if (out_list(stdout, x->color, json_object_get(rep.json, "data"), cols) != 0) {
        rc = CLI_REFUSED;
        goto out;
    }
    next = json_string_value(json_object_get(rep.json, "next"));
    if (next != NULL)
        fprintf(stderr, "more: --after %s\n", next);
out:
    client_reply_cleanup(&rep);
    free(path);
    return rc;
}

int
client_grace_body(struct cli_call *x, json_t **body)
{
    const char *g = client_opt(x, "grace");
    int64_t ms;

    *body = NULL;
    if (g == NULL)
        return 0;
    if (clock_parse_duration(g, &ms) != 0)
        return client_usage(x, "--grace: expected a duration such as 0s, 30m or 24h");
    *body = json_pack("{s:I}", "grace_seconds", (json_int_t)(ms / 1000));
    return 0;
}
