/*
 * fluxhook endpoints: list, create, show, change, switch, test, measure and
 * replay the account's endpoints through the REST API. fluxhook
 * operational-endpoints: the same calls (list, create, show, update, delete,
 * secret) on /v1/operational-endpoints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/output.h"
#include "cli/replay.h"

static int endpoints_run(int argc, char **argv);
static int operational_run(int argc, char **argv);

/* The collection the call works on: "/v1/endpoints" or "/v1/operational-endpoints". */
static const char *
base(const struct cli_call *x)
{
    return x->cmd == &cmd_operational_endpoints ? "/v1/operational-endpoints" : "/v1/endpoints";
}

/* The path of the endpoint named by the first argument (secret: its secret's), or NULL. */
static char *
one_path(struct cli_call *x, int secret)
{
    if (x->cmd == &cmd_operational_endpoints)
        return secret ? client_path(x, "/v1/operational-endpoints/%s/secret", client_arg(x, 0))
                      : client_path(x, "/v1/operational-endpoints/%s", client_arg(x, 0));
    return secret ? client_path(x, "/v1/endpoints/%s/secret", client_arg(x, 0))
                  : client_path(x, "/v1/endpoints/%s", client_arg(x, 0));
}

static const struct out_col ep_cols[] = {
    {"ID", "id", NULL},    {"STATUS", "status", NULL},
    {"URL", "url", NULL},  {"EVENTS", "event_types", "all"},
    {"HELD", "held", "0"}, {"DESCRIPTION", "description", NULL},
    {NULL, NULL, NULL},
};

/* Splits "a,b" into a JSON array of strings; "" gives []. NULL when out of memory. */
static json_t *
types_split(const char *s)
{
    json_t *arr = json_array();
    const char *p = s, *comma;

    while (arr != NULL && *p != '\0') {
        comma = strchr(p, ',');
        if (comma == NULL)
            comma = p + strlen(p);
        if (comma > p && json_array_append_new(arr, json_stringn(p, (size_t)(comma - p))) != 0) {
            json_decref(arr);
            return NULL;
        }
        p = *comma == ',' ? comma + 1 : comma;
    }
    return arr;
}

static void
show_endpoint(struct cli_call *x, json_t *o)
{
    out_object(stdout, x->color, o);
}

static int
ep_list(struct cli_call *x)
{
    return client_list(x, base(x), NULL, ep_cols);
}

/* Adds --url, --description and --event-types, when given, to body. */
static int
fields_set(struct cli_call *x, json_t *body)
{
    const char *v;
    int err = 0;

    v = client_opt(x, "url");
    if (v != NULL)
        err |= json_object_set_new(body, "url", json_string(v));
    v = client_opt(x, "description");
    if (v != NULL)
        err |= json_object_set_new(body, "description", json_string(v));
    v = client_opt(x, "event-types");
    if (v != NULL)
        err |= json_object_set_new(body, "event_types", types_split(v));
    return err;
}

static int
ep_create(struct cli_call *x)
{
    json_t *body = json_object();
    const char *v;

    if (client_opt(x, "url") == NULL) {
        json_decref(body);
        return client_usage(x, "missing --url URL");
    }
    if (body == NULL || fields_set(x, body) != 0) {
        json_decref(body);
        return client_simple(x, "POST", NULL, NULL, NULL);
    }
    v = client_opt(x, "secret");
    if (v != NULL)
        json_object_set_new(body, "secret", json_string(v));
    if (config_bool(&x->conf, "disabled"))
        json_object_set_new(body, "enabled", json_false());
    return client_simple(x, "POST", strdup(base(x)), body, show_endpoint);
}

static int
ep_show(struct cli_call *x)
{
    return client_simple(x, "GET", one_path(x, 0), NULL, show_endpoint);
}

static int
ep_update(struct cli_call *x)
{
    json_t *body = json_object();

    if (body == NULL || fields_set(x, body) != 0) {
        json_decref(body);
        return client_simple(x, "PATCH", NULL, NULL, NULL);
    }
    if (json_object_size(body) == 0) {
        json_decref(body);
        return client_usage(x, "nothing to change: give --url, --description or --event-types");
    }
    return client_simple(x, "PATCH", one_path(x, 0), body, show_endpoint);
}

static void
show_deleted(struct cli_call *x, json_t *o)
{
    (void)o;
    printf("deleted %s\n", client_arg(x, 0));
}

static int
ep_delete(struct cli_call *x)
{
    return client_simple(x, "DELETE", one_path(x, 0), NULL, show_deleted);
}

static void
show_switched(struct cli_call *x, json_t *o)
{
    json_t *resumed = json_object_get(o, "resumed");

    printf("%s %s", client_arg(x, 0), strcmp(x->sub->name, "enable") == 0 ? "enabled" : "disabled");
    if (json_is_integer(resumed))
        printf(", %lld held deliveries resumed", (long long)json_integer_value(resumed));
    printf("\n");
}

static int
ep_enable(struct cli_call *x)
{
    json_t *body = NULL;

    if (config_bool(&x->conf, "skip-held"))
        body = json_pack("{s:b}", "skip_held", 1);
    return client_simple(x, "POST", client_path(x, "/v1/endpoints/%s/enable", client_arg(x, 0)),
                         body, show_switched);
}

static int
ep_disable(struct cli_call *x)
{
    return client_simple(x, "POST", client_path(x, "/v1/endpoints/%s/disable", client_arg(x, 0)),
                         NULL, show_switched);
}

static void
show_secret(struct cli_call *x, json_t *o)
{
    json_t *prev = json_object_get(o, "previous");

    out_kv(stdout, x->color, "secret", json_string_value(json_object_get(o, "secret")));
    if (json_is_object(prev)) {
        out_kv(stdout, x->color, "previous", json_string_value(json_object_get(prev, "secret")));
        out_kv(stdout, x->color, "previous until",
               json_string_value(json_object_get(prev, "expires_at")));
    }
}

static int
ep_secret(struct cli_call *x)
{
    return client_simple(x, "GET", one_path(x, 1), NULL, show_secret);
}

static int
ep_rotate(struct cli_call *x)
{
    json_t *body;
    int rc = client_grace_body(x, &body);

    if (rc != 0)
        return rc;
    return client_simple(x, "POST",
                         client_path(x, "/v1/endpoints/%s/secret/rotate", client_arg(x, 0)), body,
                         show_secret);
}

static int
ep_test(struct cli_call *x)
{
    const char *ev = client_opt(x, "event");

    if (ev == NULL)
        return client_usage(x, "missing --event TYPE");
    return client_simple(x, "POST", client_path(x, "/v1/endpoints/%s/test", client_arg(x, 0)),
                         json_pack("{s:s}", "event", ev), show_endpoint);
}

static void
show_stats(struct cli_call *x, json_t *o)
{
    static const char *const heads[] = {"WINDOW",  "DELIVERIES", "DELIVERED", "FAILED", "HELD",
                                        "PENDING", "SUCCESS",    "P50_MS",    "P95_MS", "P99_MS"};
    static const char *const windows[] = {"hour", "day"};
    const char *cells[10];
    char scr[10][64];
    struct out_table t;
    json_t *w, *counts, *lat;
    int i;

    out_table_init(&t, 10, heads);
    for (i = 0; i < 2; i++) {
        w = json_object_get(o, windows[i]);
        counts = json_object_get(w, "counts");
        lat = json_object_get(w, "latency_ms");
        cells[0] = windows[i];
        cells[1] = out_field(w, "deliveries", scr[1], sizeof(scr[1]));
        cells[2] = out_field(counts, "delivered", scr[2], sizeof(scr[2]));
        cells[3] = out_field(counts, "failed", scr[3], sizeof(scr[3]));
        cells[4] = out_field(counts, "held", scr[4], sizeof(scr[4]));
        cells[5] = out_field(counts, "pending", scr[5], sizeof(scr[5]));
        if (json_is_number(json_object_get(w, "success_rate")))
            snprintf(scr[6], sizeof(scr[6]), "%.1f%%",
                     100.0 * json_number_value(json_object_get(w, "success_rate")));
        else
            snprintf(scr[6], sizeof(scr[6]), "-");
        cells[6] = scr[6];
        cells[7] = out_field(lat, "p50", scr[7], sizeof(scr[7]));
        cells[8] = out_field(lat, "p95", scr[8], sizeof(scr[8]));
        cells[9] = out_field(lat, "p99", scr[9], sizeof(scr[9]));
        if (out_table_add(&t, cells) != 0)
            break;
    }
    out_table_print(&t, stdout, x->color);
    out_table_cleanup(&t);
}

static int
ep_stats(struct cli_call *x)
{
    return client_simple(x, "GET", client_path(x, "/v1/endpoints/%s/stats", client_arg(x, 0)), NULL,
                         show_stats);
}

static void
show_replayed(struct cli_call *x, json_t *o)
{
    (void)x;
    printf("%lld deliveries replayed\n",
           (long long)json_integer_value(json_object_get(o, "replayed")));
}

/* The replay's filters in words, for its messages: "endpoint ep_1, since ..., status failed". */
static void
replay_words(struct cli_call *x, const char *since, char *out, size_t n)
{
    const char *u = client_opt(x, "until"), *st = client_opt(x, "status");

    snprintf(out, n, "endpoint %s, since %s%s%s%s%s", client_arg(x, 0), since,
             u != NULL ? ", until " : "", u != NULL ? u : "", st != NULL ? ", status " : "",
             st != NULL ? st : "");
}

/*
 * Asks the server what the replay would take (it counts; nothing changes).
 * With --dry-run that is the answer (*done set); otherwise it is what
 * replay_confirm() asks about. Returns CLI_OK to go on, or the exit status.
 */
static int
ep_replay_preview(struct cli_call *x, json_t *body, const char *what, int *done)
{
    struct client_reply rep;
    json_t *dry = json_deep_copy(body);
    char *path = client_path(x, "/v1/endpoints/%s/replay", client_arg(x, 0));
    int64_t n;
    int rc = CLI_REFUSED;

    memset(&rep, 0, sizeof(rep));
    if (dry == NULL || path == NULL || json_object_set_new(dry, "dry_run", json_true()) != 0)
        goto out;
    rc = client_call(x, "POST", path, dry, NULL, &rep);
    if (rc != CLI_OK)
        goto out;
    n = (int64_t)json_integer_value(json_object_get(rep.json, "would_replay"));
    *done = config_bool(&x->conf, "dry-run");
    if (*done)
        rc = replay_preview_print(x, n, json_object_get(rep.json, "ids"), what);
    else
        rc = replay_confirm(x, n, what);
out:
    client_reply_cleanup(&rep);
    json_decref(dry);
    free(path);
    return rc;
}

static int
ep_replay(struct cli_call *x)
{
    char since[64], until[64], what[256];
    const char *s = client_opt(x, "since"), *u = client_opt(x, "until");
    const char *st = client_opt(x, "status");
    json_t *body;
    int rc = CLI_OK, done = 0;

    if (s == NULL)
        return client_usage(x, "missing --since TIME");
    if (client_time_arg(s, since, sizeof(since)) != 0)
        return client_usage(x, "--since: expected an RFC 3339 time or a duration ago (2h)");
    if (u != NULL && client_time_arg(u, until, sizeof(until)) != 0)
        return client_usage(x, "--until: expected an RFC 3339 time or a duration ago (5m)");
    if (config_bool(&x->conf, "dry-run") && config_bool(&x->conf, "yes"))
        return client_usage(x, "--dry-run and --yes: choose one");
    body = json_pack("{s:s}", "since", since);
    if (body != NULL && u != NULL)
        json_object_set_new(body, "until", json_string(until));
    if (body != NULL && st != NULL)
        json_object_set_new(body, "status", json_string(st));
    if (body == NULL)
        return CLI_REFUSED;
    replay_words(x, since, what, sizeof(what));
    if (!config_bool(&x->conf, "yes"))
        rc = ep_replay_preview(x, body, what, &done);
    if (rc != CLI_OK || done) {
        json_decref(body);
        return rc;
    }
    return client_simple(x, "POST", client_path(x, "/v1/endpoints/%s/replay", client_arg(x, 0)),
                         body, show_replayed);
}

static const struct config_opt page_opts[] = {
    {"limit", "N", NULL, "at most N per page", 0, 0},
    {"after", "CURSOR", NULL, "the page after this cursor (printed as \"more:\")", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct config_opt create_opts[] = {
    {"url", "URL", NULL,
     "where deliveries go (https://, or http:// with serve --allow-http); the server is then "
     "--server or FLUXHOOK_URL",
     0, 0},
    {"description", "TEXT", NULL, "what it is for", 0, 0},
    {"event-types", "A,B", NULL, "the event types it receives (absent or empty: all)", 0, 0},
    {"secret", "S", NULL, "its signing secret, whsec_... (default: generated)", 0, 0},
    {"disabled", NULL, NULL, "create it disabled", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct config_opt update_opts[] = {
    {"url", "URL", NULL, "where deliveries go; the server is then --server or FLUXHOOK_URL", 0, 0},
    {"description", "TEXT", NULL, "what it is for", 0, 0},
    {"event-types", "A,B", NULL, "the event types it receives (empty: all)", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct config_opt enable_opts[] = {
    {"skip-held", NULL, NULL, "do not deliver the deliveries held while it was disabled", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct config_opt rotate_opts[] = {
    {"grace", "DURATION", NULL, "how long the old secret keeps signing (default 24h)", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct config_opt test_opts[] = {
    {"event", "TYPE", NULL, "the event type whose sample is sent", 0, 'e'},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct config_opt replay_opts[] = {
    {"since", "TIME", NULL, "deliveries created since then (RFC 3339, or a duration ago: 2h)", 0,
     0},
    {"until", "TIME", NULL, "and before then", 0, 0},
    {"status", "S", NULL, "only delivered or only failed ones (default both)", 0, 0},
    {"dry-run", NULL, NULL,
     "say how many deliveries would be replayed (counted by the server) and the first of them; "
     "change nothing",
     0, 'n'},
    {"yes", NULL, NULL,
     "replay more than one delivery without asking (needed when standard input is not a "
     "terminal)",
     0, 'y'},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct cli_sub endpoints_subs[] = {
    {"list", "[--limit N] [--after CURSOR]", "list the endpoints", page_opts, 0, 0, ep_list, NULL},
    {"create", "--url URL [--description TEXT] [--event-types A,B] [--secret S] [--disabled]",
     "create an endpoint; prints it with its secret", create_opts, 0, 0, ep_create, NULL},
    {"show", "ID", "show one endpoint", NULL, 1, 1, ep_show, NULL},
    {"update", "ID [--url URL] [--description TEXT] [--event-types A,B]", "change an endpoint",
     update_opts, 1, 1, ep_update, NULL},
    {"delete", "ID", "delete an endpoint", NULL, 1, 1, ep_delete, NULL},
    {"enable", "ID [--skip-held]", "enable an endpoint; its held deliveries resume", enable_opts, 1,
     1, ep_enable, NULL},
    {"disable", "ID", "disable an endpoint; its deliveries are held", NULL, 1, 1, ep_disable, NULL},
    {"secret", "ID", "show an endpoint's secret (and the previous one during a rotation)", NULL, 1,
     1, ep_secret, NULL},
    {"rotate-secret", "ID [--grace DURATION]", "give an endpoint a new secret", rotate_opts, 1, 1,
     ep_rotate, NULL},
    {"test", "ID --event TYPE", "send the sample of an event type as a real delivery", test_opts, 1,
     1, ep_test, NULL},
    {"stats", "ID", "delivery counts, success rate and latency over the last hour and day", NULL, 1,
     1, ep_stats, NULL},
    {"replay", "ID --since TIME [--until TIME] [--status delivered|failed] [--dry-run | --yes]",
     "deliver again every matching delivery of an endpoint", replay_opts, 1, 1, ep_replay,
     "More than one delivery is replayed only after a yes on the terminal, or with --yes; "
     "--dry-run says how many and the first of them, and changes nothing."},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL},
};

const struct cli_cmd cmd_endpoints = {
    .name = "endpoints",
    .usage = "SUBCOMMAND [ARGS]",
    .summary = "manage the endpoints that receive deliveries",
    .run = endpoints_run,
    .subs = endpoints_subs,
};

static int
endpoints_run(int argc, char **argv)
{
    return client_cmd_run(&cmd_endpoints, argc, argv);
}

static const struct cli_sub operational_subs[] = {
    {"list", "[--limit N] [--after CURSOR]", "list the operational endpoints", page_opts, 0, 0,
     ep_list, NULL},
    {"create", "--url URL [--description TEXT] [--event-types A,B] [--secret S] [--disabled]",
     "create an operational endpoint; prints it with its secret", create_opts, 0, 0, ep_create,
     "It receives fluxhook's own events about the account's endpoints: endpoint.disabled, "
     "endpoint.enabled, delivery.failed and endpoint.recovered (--event-types picks among "
     "them), signed like any delivery."},
    {"show", "ID", "show one operational endpoint", NULL, 1, 1, ep_show, NULL},
    {"update", "ID [--url URL] [--description TEXT] [--event-types A,B]",
     "change an operational endpoint", update_opts, 1, 1, ep_update, NULL},
    {"delete", "ID", "delete an operational endpoint", NULL, 1, 1, ep_delete, NULL},
    {"secret", "ID", "show an operational endpoint's secret", NULL, 1, 1, ep_secret, NULL},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL},
};

const struct cli_cmd cmd_operational_endpoints = {
    .name = "operational-endpoints",
    .usage = "SUBCOMMAND [ARGS]",
    .summary = "manage the endpoints that receive fluxhook's own events about the others",
    .run = operational_run,
    .subs = operational_subs,
};

static int
operational_run(int argc, char **argv)
{
    return client_cmd_run(&cmd_operational_endpoints, argc, argv);
}
