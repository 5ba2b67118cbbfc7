/*
 * fluxhook events: publish one event (data from --data JSON, @FILE or @-),
 * publish a file of events one per line (500 to a POST /v1/events/batch)
 * with a progress bar, list and show.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/output.h"
#include "util/buf.h"
#include "util/err.h"

#define EVENTS_MAX_LINE (1024 * 1024) /* longest line of a bulk file */
#define EVENTS_MAX_BATCH 500          /* lines sent in one POST /v1/events/batch */

static int events_run(int argc, char **argv);

static const struct out_col ev_cols[] = {
    {"ID", "id", NULL},
    {"EVENT", "event", NULL},
    {"TIMESTAMP", "timestamp", NULL},
    {"CREATED", "created_at", NULL},
    {NULL, NULL, NULL},
};

static void
show_published(struct cli_call *x, json_t *o)
{
    char scr[32];

    (void)x;
    printf("published %s %s to %s endpoint(s)\n", json_string_value(json_object_get(o, "id")),
           json_string_value(json_object_get(o, "event")),
           out_field(o, "deliveries", scr, sizeof(scr)));
}

/* One line of a bulk file: prints why it was refused, with its line number. */
static void
line_error(long line, const struct client_reply *rep)
{
    fprintf(stderr, "line %ld: ", line);
    fflush(stderr);
    client_error_print(rep);
}

/* Counts the lines of f that are not blank, then rewinds it. */
static long
lines_count(FILE *f)
{
    long n = 0;
    int c, blank = 1;

    while ((c = fgetc(f)) != EOF) {
        if (c == '\n') {
            n += !blank;
            blank = 1;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            blank = 0;
        }
    }
    n += !blank;
    rewind(f);
    return n;
}

/* Lines of a bulk file on their way in one POST /v1/events/batch. */
struct bulk {
    struct cli_call *x;
    json_t *events;             /* the batch being filled */
    long lines[EVENTS_MAX_BATCH]; /* the line number of each of its events */
    long ok, failed;
};

/*
 * Sends the batch and reports each line: its result with --json, or why it
 * was refused. Returns CLI_OK or CLI_UNREACHABLE.
 */
static int
bulk_send(struct bulk *b)
{
    struct client_reply rep, item;
    json_t *body, *results, *res;
    size_t i, n = json_array_size(b->events);
    long status;
    int r;

    if (n == 0)
        return CLI_OK;
    memset(&rep, 0, sizeof(rep));
    body = json_pack("{s:O}", "events", b->events);
    r = body != NULL ? client_request(b->x, "POST", "/v1/events/batch", body, NULL, &rep) : ERR_NOMEM;
    json_decref(body);
    json_array_clear(b->events);
    if (r == ERR_NET) {
        client_reply_cleanup(&rep);
        return CLI_UNREACHABLE;
    }
    results = json_object_get(rep.json, "results");
    for (i = 0; i < n; i++) {
        res = json_array_get(results, i);
        status = (long)json_integer_value(json_object_get(res, "status"));
        if (r != 0 || rep.status != 200 || res == NULL) {
            /* The batch as a whole was refused: so was each of its lines. */
            if (r != 0)
                fprintf(stderr, "line %ld: fluxhook: %s\n", b->lines[i], err_str(r));
            else
                line_error(b->lines[i], &rep);
            b->failed++;
        } else if (status < 200 || status > 299) {
            memset(&item, 0, sizeof(item));
            item.status = status;
            item.json = res;
            line_error(b->lines[i], &item);
            b->failed++;
        } else {
            b->ok++;
            if (b->x->json && json_dumpf(res, stdout, JSON_COMPACT) == 0)
                fputc('\n', stdout);
        }
    }
    client_reply_cleanup(&rep);
    return CLI_OK;
}

static int
publish_file(struct cli_call *x, const char *path)
{
    struct out_progress bar;
    struct bulk b;
    json_error_t je;
    json_t *ev;
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, done = 0;
    int rc = CLI_OK;

    memset(&b, 0, sizeof(b));
    b.x = x;
    b.events = json_array();
    if (b.events == NULL) {
        fprintf(stderr, "fluxhook: out of memory\n");
        return CLI_REFUSED;
    }
    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL) {
        rc = client_usage(x, "--file: cannot open '%s': %s", path, strerror(errno));
        goto out;
    }
    out_progress_start(&bar, "publishing", f != stdin ? lines_count(f) : 0);
    while ((len = getline(&line, &cap, f)) >= 0 && !client_stopped()) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (strspn(line, " \t") == (size_t)len)
            continue;
        ev = len > EVENTS_MAX_LINE ? NULL : json_loadb(line, (size_t)len, 0, &je);
        if (ev == NULL) {
            if (len > EVENTS_MAX_LINE)
                fprintf(stderr, "line %ld: longer than %d bytes\n", lineno, EVENTS_MAX_LINE);
            else
                fprintf(stderr, "line %ld: not JSON: %s (column %d)\n", lineno, je.text,
                        je.column);
            b.failed++;
            out_progress_set(&bar, ++done);
            continue;
        }
        b.lines[json_array_size(b.events)] = lineno;
        json_array_append_new(b.events, ev);
        if (json_array_size(b.events) == EVENTS_MAX_BATCH) {
            rc = bulk_send(&b);
            if (rc != CLI_OK)
                goto out;
            done += EVENTS_MAX_BATCH;
            out_progress_set(&bar, done);
        }
    }
    done += (long)json_array_size(b.events);
    rc = bulk_send(&b);
    if (rc != CLI_OK)
        goto out;
    out_progress_set(&bar, done);
    out_progress_end(&bar);
    fprintf(x->json ? stderr : stdout, "published %ld events, %ld refused\n", b.ok, b.failed);
    if (b.failed > 0)
        rc = CLI_REFUSED;
out:
    json_decref(b.events);
    if (f != NULL && f != stdin)
        fclose(f);
    free(line);
    return rc;
}

static int
ev_publish(struct cli_call *x)
{
    const char *type = client_arg(x, 0), *data = client_opt(x, "data");
    const char *file = client_opt(x, "file"), *ts = client_opt(x, "timestamp");
    const char *idem = client_opt(x, "idempotency-key");
    struct client_reply rep;
    char *hdr = NULL;
    json_t *body = NULL, *d = NULL;
    int rc;

    memset(&rep, 0, sizeof(rep));
    if (file != NULL) {
        if (type != NULL || data != NULL)
            return client_usage(x, "--file takes neither TYPE nor --data");
        client_signals();
        return publish_file(x, file);
    }
    if (type == NULL)
        return client_usage(x, "missing TYPE (or --file)");
    rc = client_json_arg(x, "--data", data != NULL ? data : "{}", &d);
    if (rc != CLI_OK)
        goto out;
    body = json_pack("{s:s, s:O}", "event", type, "data", d);
    if (body != NULL && ts != NULL)
        json_object_set_new(body, "timestamp", json_string(ts));
    if (idem != NULL && asprintf(&hdr, "Idempotency-Key: %s", idem) < 0)
        hdr = NULL;
    if (body == NULL || (idem != NULL && hdr == NULL)) {
        fprintf(stderr, "fluxhook: out of memory\n");
        rc = CLI_REFUSED;
        goto out;
    }
    rc = client_call(x, "POST", "/v1/events", body, hdr, &rep);
    if (rc != CLI_OK)
        goto out;
    if (x->json)
        client_json_print(&rep);
    else
        show_published(x, rep.json);
out:
    client_reply_cleanup(&rep);
    json_decref(body);
    json_decref(d);
    free(hdr);
    return rc;
}

static int
ev_list(struct cli_call *x)
{
    static const char *const params[] = {"event", "type", NULL};

    return client_list(x, "/v1/events", params, ev_cols);
}

static void
show_event(struct cli_call *x, json_t *o)
{
    out_object(stdout, x->color, o);
}

static int
ev_show(struct cli_call *x)
{
    return client_simple(x, "GET", client_path(x, "/v1/events/%s", client_arg(x, 0)), NULL,
                         show_event);
}

static const struct config_opt publish_opts[] = {
    {"data", "JSON", NULL, "the event's data: JSON text, @FILE, or @- for standard input", 0, 'd'},
    {"timestamp", "TIME", NULL, "the producer's RFC 3339 time (default: now)", 0, 0},
    {"idempotency-key", "KEY", NULL, "a repeat within 24 h publishes nothing", 0, 0},
    {"file", "FILE", NULL,
     "publish every line of FILE (- for standard input), each {\"event\", \"data\"} with "
     "an optional \"idempotency_key\", 500 lines per request",
     0, 'f'},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct config_opt list_opts[] = {
    {"type", "TYPE", NULL, "only events of this type", 0, 0},
    {"limit", "N", NULL, "at most N per page", 0, 0},
    {"after", "CURSOR", NULL, "the page after this cursor (printed as \"more:\")", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct cli_sub events_subs[] = {
    {"publish",
     "TYPE [--data JSON|@FILE|@-] [--timestamp TIME] [--idempotency-key KEY] | --file FILE",
     "publish an event, or a file of events one per line", publish_opts, 0, 1, ev_publish, NULL},
    {"list", "[--type TYPE] [--limit N] [--after CURSOR]", "list events, newest first", list_opts,
     0, 0, ev_list, NULL},
    {"show", "ID", "show one event with its data", NULL, 1, 1, ev_show, NULL},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL},
};

const struct cli_cmd cmd_events = {
    .name = "events",
    .usage = "SUBCOMMAND [ARGS]",
    .summary = "publish and read events",
    .run = events_run,
    .subs = events_subs,
};

static int
events_run(int argc, char **argv)
{
    return client_cmd_run(&cmd_events, argc, argv);
}
