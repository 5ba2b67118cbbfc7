/*
 * fluxhook deliveries: list (and follow as they happen), show with every
 * attempt, retry one, and replay many with a progress bar.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/output.h"
#include "cli/replay.h"
#include "util/clock.h"
#include "util/err.h"

#define FOLLOW_PAGE "100" /* deliveries read per poll */
#define REPLAY_DEFAULT_MAX 10000

static int deliveries_run(int argc, char **argv);

static const char *const filter_params[] = {
    "endpoint_id", "endpoint", "event_id", "event", "status", "status", NULL,
};

static const struct out_col dlv_cols[] = {
    {"ID", "id", NULL},
    {"STATUS", "status", NULL},
    {"EVENT", "event", NULL},
    {"EVENT ID", "event_id", NULL},
    {"ENDPOINT", "endpoint_id", NULL},
    {"ATTEMPTS", "attempts_made", "0"},
    {"CODE", "last_status_code", NULL},
    {"STATE", "state", NULL},
    {NULL, NULL, NULL},
};

/* The statuses a receiver's answer may be retried on (CONTRACT §3). */
static int
retryable(long long code)
{
    return code == 408 || code == 429 || code == 500 || code == 502 || code == 503 || code == 504;
}

/*
 * A delivery's status in words, as the dashboard says it: "retrying —
 * attempt 3 of 5, next in 8 s", "held — endpoint disabled", "failed — 404,
 * not retried". now_ms places next_attempt_at. Returns out.
 */
static const char *
state_words(json_t *d, int64_t now_ms, char *out, size_t n)
{
    const char *st = json_string_value(json_object_get(d, "status"));
    const char *next = json_string_value(json_object_get(d, "next_attempt_at"));
    const char *err = json_string_value(json_object_get(d, "last_error"));
    json_t *roundj = json_object_get(d, "round_attempts");
    long long made = json_integer_value(json_is_integer(roundj) ? roundj
                                                                : json_object_get(d, "attempts_made"));
    long long max = json_integer_value(json_object_get(d, "max_attempts"));
    json_t *codej = json_object_get(d, "last_status_code");
    long long code = json_integer_value(codej);
    char of[32] = "", in[32], last[96];
    int64_t due = 0;

    if (max > 0)
        snprintf(of, sizeof(of), " of %lld", max);
    if (json_is_integer(codej))
        snprintf(last, sizeof(last), "%lld", code);
    else if (err != NULL && strstr(err, "blocked") != NULL)
        snprintf(last, sizeof(last), "address blocked");
    else
        snprintf(last, sizeof(last), "%.80s", err != NULL ? err : "no answer");
    if (st == NULL) {
        snprintf(out, n, "-");
    } else if (strcmp(st, "delivered") == 0) {
        snprintf(out, n, "delivered — %s on attempt %lld%s", last, made, of);
    } else if (strcmp(st, "held") == 0) {
        snprintf(out, n, "held — endpoint disabled, resumes when it is enabled");
    } else if (strcmp(st, "delivering") == 0) {
        snprintf(out, n, "delivering — attempt %lld%s under way", made + 1, of);
    } else if (strcmp(st, "pending") == 0) {
        if (next != NULL && clock_parse_rfc3339(next, &due) == 0 && due > now_ms)
            snprintf(in, sizeof(in), "next in %s", out_duration(due - now_ms, last, sizeof(last)));
        else
            snprintf(in, sizeof(in), "due now");
        snprintf(out, n, "%s — attempt %lld%s, %s", made > 0 ? "retrying" : "pending", made + 1, of,
                 in);
    } else if (strcmp(st, "failed") == 0) {
        if (max > 0 && made >= max && (!json_is_integer(codej) || retryable(code)))
            snprintf(out, n, "failed — all %lld attempts failed, last: %s", made, last);
        else
            snprintf(out, n, "failed — %s, not retried", last);
    } else {
        snprintf(out, n, "%s", st);
    }
    return out;
}

/* Adds "state" (state_words) to a delivery object for the table and the detail view. */
static void
state_add(json_t *d)
{
    char words[256];

    json_object_set_new(d, "state",
                        json_string(state_words(d, clock_now_ms(), words, sizeof(words))));
}

/* What follow remembers of a delivery it printed. */
struct seen {
    char *id;
    char *status;
    long long attempts;
};

struct follow {
    struct seen *v;
    size_t n, cap;
    long delivered; /* deliveries seen delivered */
};

static struct seen *
seen_find(struct follow *fw, const char *id)
{
    size_t i;

    for (i = 0; i < fw->n; i++) {
        if (strcmp(fw->v[i].id, id) == 0)
            return &fw->v[i];
    }
    return NULL;
}

static struct seen *
seen_add(struct follow *fw, const char *id)
{
    struct seen *grown;

    if (fw->n == fw->cap) {
        grown = realloc(fw->v, (fw->cap == 0 ? 64 : fw->cap * 2) * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        fw->v = grown;
        fw->cap = fw->cap == 0 ? 64 : fw->cap * 2;
    }
    fw->v[fw->n].id = strdup(id);
    fw->v[fw->n].status = NULL;
    fw->v[fw->n].attempts = -1;
    if (fw->v[fw->n].id == NULL)
        return NULL;
    return &fw->v[fw->n++];
}

static void
follow_cleanup(struct follow *fw)
{
    size_t i;

    for (i = 0; i < fw->n; i++) {
        free(fw->v[i].id);
        free(fw->v[i].status);
    }
    free(fw->v);
}

/* Prints one change of d as a line: time, id, status, event, endpoint, attempt, code/error. */
static void
follow_print(struct cli_call *x, json_t *d)
{
    char now[CLOCK_RFC3339_MAX], local[64], scr[4][256];
    const char *status = json_string_value(json_object_get(d, "status"));
    const char *color = x->color && status != NULL ? out_status_color(status) : "";
    const char *err;
    char *line;

    if (x->json) {
        line = json_dumps(d, JSON_COMPACT);
        if (line != NULL)
            printf("%s\n", line);
        free(line);
        fflush(stdout);
        return;
    }
    /* The time of day in local time with its zone, as show prints times. */
    clock_format_rfc3339_s(clock_now_ms(), now);
    out_time_local(now, local, sizeof(local));
    err = json_string_value(json_object_get(d, "last_error"));
    state_words(d, clock_now_ms(), scr[3], sizeof(scr[3]));
    printf("%s  %s  %s%-10s%s  %s  %s  %s  attempts=%s  code=%s%s%s%s  %s\n",
           strlen(local) > 11 ? local + 11 : now + 11,
           out_field(d, "id", scr[0], sizeof(scr[0])), color, status != NULL ? status : "?",
           color[0] != '\0' ? "\033[0m" : "", json_string_value(json_object_get(d, "event")),
           json_string_value(json_object_get(d, "event_id")),
           json_string_value(json_object_get(d, "endpoint_id")),
           out_field(d, "attempts_made", scr[1], sizeof(scr[1])),
           out_field(d, "last_status_code", scr[2], sizeof(scr[2])),
           err != NULL ? "  error=\"" : "", err != NULL ? err : "", err != NULL ? "\"" : "",
           scr[3]);
    fflush(stdout);
}

/* Prints what changed in one page (newest first: walked oldest first). */
static int
follow_page(struct cli_call *x, struct follow *fw, json_t *items)
{
    const char *id, *status;
    long long attempts;
    struct seen *s;
    json_t *d;
    size_t i;

    for (i = json_array_size(items); i-- > 0;) {
        d = json_array_get(items, i);
        id = json_string_value(json_object_get(d, "id"));
        status = json_string_value(json_object_get(d, "status"));
        attempts = json_integer_value(json_object_get(d, "attempts_made"));
        if (id == NULL || status == NULL)
            continue;
        s = seen_find(fw, id);
        if (s == NULL && (s = seen_add(fw, id)) == NULL)
            return ERR_NOMEM;
        if (s->status != NULL && strcmp(s->status, status) == 0 && s->attempts == attempts)
            continue;
        if (strcmp(status, "delivered") == 0 &&
            (s->status == NULL || strcmp(s->status, "delivered") != 0))
            fw->delivered++;
        free(s->status);
        s->status = strdup(status);
        s->attempts = attempts;
        if (s->status == NULL)
            return ERR_NOMEM;
        follow_print(x, d);
    }
    return 0;
}

static int
dlv_follow(struct cli_call *x)
{
    const char *u = client_opt(x, "until-delivered"), *t = client_opt(x, "timeout");
    const char *iv = client_opt(x, "interval");
    struct client_reply rep;
    struct follow fw;
    int64_t timeout_ms = 0, interval_ms = 500, start;
    long until = 0;
    char *path = NULL, *end;
    int rc = CLI_OK;

    memset(&fw, 0, sizeof(fw));
    memset(&rep, 0, sizeof(rep));
    if (u != NULL) {
        until = strtol(u, &end, 10);
        if (*end != '\0' || until <= 0)
            return client_usage(x, "--until-delivered: expected a positive count");
    }
    if (t != NULL && clock_parse_duration(t, &timeout_ms) != 0)
        return client_usage(x, "--timeout: expected a duration such as 30s");
    if (iv != NULL && (clock_parse_duration(iv, &interval_ms) != 0 || interval_ms < 10))
        return client_usage(x, "--interval: expected a duration of 10ms or more");
    path = client_query(x, "/v1/deliveries", filter_params);
    if (path == NULL) {
        rc = CLI_REFUSED;
        goto out;
    }
    if (client_opt(x, "limit") == NULL) {
        end = NULL;
        if (asprintf(&end, "%s%climit=" FOLLOW_PAGE, path, strchr(path, '?') ? '&' : '?') < 0) {
            rc = CLI_REFUSED;
            goto out;
        }
        free(path);
        path = end;
    }
    client_signals();
    start = clock_mono_ms();
    for (;;) {
        rc = client_call(x, "GET", path, NULL, NULL, &rep);
        if (rc != CLI_OK)
            goto out;
        if (follow_page(x, &fw, json_object_get(rep.json, "data")) != 0) {
            rc = CLI_REFUSED;
            goto out;
        }
        client_reply_cleanup(&rep);
        if (until > 0 && fw.delivered >= until)
            break;
        if (timeout_ms > 0 && clock_mono_ms() - start >= timeout_ms) {
            fprintf(stderr, "fluxhook: timed out after %s with %ld delivered\n", t, fw.delivered);
            rc = CLI_REFUSED;
            goto out;
        }
        if (client_sleep((int)interval_ms))
            break;
    }
out:
    client_reply_cleanup(&rep);
    follow_cleanup(&fw);
    free(path);
    return rc;
}

static int
dlv_list(struct cli_call *x)
{
    if (config_bool(&x->conf, "follow"))
        return dlv_follow(x);
    if (client_opt(x, "until-delivered") != NULL || client_opt(x, "timeout") != NULL)
        return client_usage(x, "--until-delivered and --timeout go with --follow");
    return client_list_prep(x, "/v1/deliveries", filter_params, dlv_cols, state_add);
}

static void
show_delivery(struct cli_call *x, json_t *o)
{
    static const char *const heads[] = {"N", "AT", "CODE", "CLASS", "ERROR", "MS", "RESPONSE"};
    const char *key, *cells[7];
    char scr[7][256];
    struct out_table t;
    json_t *v, *a, *attempts = NULL;
    json_t *copy;
    size_t i;

    copy = json_object();
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "attempts") == 0)
            attempts = v;
        else if (copy != NULL && json_is_string(v) && strlen(key) > 3 &&
                 strcmp(key + strlen(key) - 3, "_at") == 0)
            json_object_set_new(
                copy, key,
                json_string(out_time_local(json_string_value(v), scr[0], sizeof(scr[0]))));
        else if (copy != NULL)
            json_object_set(copy, key, v);
    }
    /* Judged on o, whose times are still the API's. */
    if (copy != NULL)
        json_object_set_new(copy, "state",
                            json_string(state_words(o, clock_now_ms(), scr[1], sizeof(scr[1]))));
    out_object(stdout, x->color, copy);
    json_decref(copy);
    if (json_array_size(attempts) == 0)
        return;
    printf("\n");
    out_table_init(&t, 7, heads);
    json_array_foreach(attempts, i, a)
    {
        cells[0] = out_field(a, "n", scr[0], sizeof(scr[0]));
        cells[1] =
            out_time_local(json_string_value(json_object_get(a, "at")), scr[1], sizeof(scr[1]));
        cells[2] = out_field(a, "status_code", scr[2], sizeof(scr[2]));
        cells[3] = out_field(a, "error_class", scr[3], sizeof(scr[3]));
        cells[4] = out_field(a, "error", scr[4], sizeof(scr[4]));
        cells[5] = out_field(a, "duration_ms", scr[5], sizeof(scr[5]));
        /* The kept body on one line, cut to keep the table readable. */
        snprintf(scr[6], 61, "%s", out_field(a, "response_body", scr[6], sizeof(scr[6])));
        for (char *p = scr[6]; *p != '\0'; p++) {
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
        }
        cells[6] = json_is_string(json_object_get(a, "response_body")) ? scr[6] : "-";
        if (out_table_add(&t, cells) != 0)
            break;
    }
    out_table_print(&t, stdout, x->color);
    out_table_cleanup(&t);
}

static int
dlv_show(struct cli_call *x)
{
    return client_simple(x, "GET", client_path(x, "/v1/deliveries/%s", client_arg(x, 0)), NULL,
                         show_delivery);
}

static void
show_retried(struct cli_call *x, json_t *o)
{
    const char *st = json_string_value(json_object_get(o, "status"));

    printf("retrying %s%s%s\n", client_arg(x, 0), st != NULL ? ", now " : "", st != NULL ? st : "");
}

static int
dlv_retry(struct cli_call *x)
{
    return client_simple(x, "POST", client_path(x, "/v1/deliveries/%s/retry", client_arg(x, 0)),
                         NULL, show_retried);
}

/* Collects the ids of every delivery that matches the filters, up to max. */
static int
replay_collect(struct cli_call *x, json_t *ids, long max)
{
    struct client_reply rep;
    const char *next = NULL;
    char *base = NULL, *path = NULL, *esc;
    json_t *d;
    size_t i;
    int rc = CLI_OK;

    memset(&rep, 0, sizeof(rep));
    base = client_query(x, "/v1/deliveries", filter_params);
    if (base == NULL) {
        rc = CLI_REFUSED;
        goto out;
    }
    path = strdup(base);
    while (path != NULL && (long)json_array_size(ids) < max) {
        rc = client_call(x, "GET", path, NULL, NULL, &rep);
        if (rc != CLI_OK)
            goto out;
        json_array_foreach(json_object_get(rep.json, "data"), i, d)
        {
            if ((long)json_array_size(ids) < max)
                json_array_append(ids, json_object_get(d, "id"));
        }
        next = json_string_value(json_object_get(rep.json, "next"));
        free(path);
        path = NULL;
        if (next == NULL || json_array_size(json_object_get(rep.json, "data")) == 0)
            break;
        esc = curl_easy_escape(x->curl, next, 0);
        if (esc == NULL ||
            asprintf(&path, "%s%cafter=%s", base, strchr(base, '?') ? '&' : '?', esc) < 0)
            path = NULL;
        curl_free(esc);
        client_reply_cleanup(&rep);
        if (path == NULL)
            rc = CLI_REFUSED;
    }
out:
    client_reply_cleanup(&rep);
    free(base);
    free(path);
    return rc;
}

/* What the filters of a replay say, for its messages: "status failed, endpoint ep_1". */
static void
filters_words(struct cli_call *x, char *out, size_t n)
{
    static const char *const names[] = {"status", "endpoint", "event"};
    size_t i, used = 0;
    const char *v;

    out[0] = '\0';
    for (i = 0; i < sizeof(names) / sizeof(names[0]) && used < n; i++) {
        v = client_opt(x, names[i]);
        if (v != NULL)
            used += (size_t)snprintf(out + used, n - used, "%s%s %s", used > 0 ? ", " : "",
                                     names[i], v);
    }
}

static int
dlv_replay(struct cli_call *x)
{
    const char *m = client_opt(x, "max");
    struct out_progress bar;
    struct client_reply rep;
    json_t *ids = json_array(), *id;
    long max = REPLAY_DEFAULT_MAX, ok = 0, refused = 0;
    char *path, *end, what[256];
    size_t i;
    int rc;

    memset(&rep, 0, sizeof(rep));
    if (m != NULL) {
        max = strtol(m, &end, 10);
        if (*end != '\0' || max <= 0) {
            json_decref(ids);
            return client_usage(x, "--max: expected a positive count");
        }
    }
    if (client_opt(x, "status") == NULL && client_opt(x, "endpoint") == NULL &&
        client_opt(x, "event") == NULL) {
        json_decref(ids);
        return client_usage(x, "say which: --status, --endpoint or --event");
    }
    if (ids == NULL)
        return CLI_REFUSED;
    rc = replay_collect(x, ids, max);
    if (rc != CLI_OK)
        goto out;
    filters_words(x, what, sizeof(what));
    if (config_bool(&x->conf, "dry-run")) {
        rc = replay_preview_print(x, (int64_t)json_array_size(ids), ids, what);
        goto out;
    }
    rc = replay_confirm(x, (int64_t)json_array_size(ids), what);
    if (rc != CLI_OK)
        goto out;
    client_signals();
    out_progress_start(&bar, "replaying", (long)json_array_size(ids));
    json_array_foreach(ids, i, id)
    {
        path = client_path(x, "/v1/deliveries/%s/retry", json_string_value(id));
        if (path == NULL) {
            rc = CLI_REFUSED;
            goto out;
        }
        if (client_request(x, "POST", path, NULL, NULL, &rep) == ERR_NET) {
            free(path);
            rc = CLI_UNREACHABLE;
            goto out;
        }
        free(path);
        if (rep.status >= 200 && rep.status <= 299) {
            ok++;
        } else {
            fprintf(stderr, "%s: ", json_string_value(id));
            client_error_print(&rep);
            refused++;
        }
        client_reply_cleanup(&rep);
        out_progress_set(&bar, (long)i + 1);
        if (client_stopped())
            break;
    }
    out_progress_end(&bar);
    if (x->json)
        printf("{\"replayed\":%ld,\"refused\":%ld}\n", ok, refused);
    else
        printf("%ld deliveries replayed, %ld refused\n", ok, refused);
    rc = refused > 0 ? CLI_REFUSED : CLI_OK;
out:
    client_reply_cleanup(&rep);
    json_decref(ids);
    return rc;
}

static const struct config_opt list_opts[] = {
    {"endpoint", "ID", NULL, "only this endpoint's deliveries", 0, 0},
    {"event", "ID", NULL, "only this event's deliveries", 0, 0},
    {"status", "S", NULL, "only pending, delivering, delivered, failed or held ones", 0, 0},
    {"limit", "N", NULL, "at most N per page", 0, 0},
    {"after", "CURSOR", NULL, "the page after this cursor (printed as \"more:\")", 0, 0},
    {"follow", NULL, NULL, "keep printing new deliveries and status changes until Ctrl-C", 0, 'f'},
    {"until-delivered", "N", NULL, "with --follow: stop once N deliveries are delivered", 0, 0},
    {"timeout", "DURATION", NULL, "with --follow: give up after this long (exit 1)", 0, 0},
    {"interval", "DURATION", NULL, "with --follow: time between polls (default 500ms)", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct config_opt replay_opts[] = {
    {"endpoint", "ID", NULL, "only this endpoint's deliveries", 0, 0},
    {"event", "ID", NULL, "only this event's deliveries", 0, 0},
    {"status", "S", NULL, "only deliveries in this status, such as failed", 0, 0},
    {"max", "N", NULL, "retry at most N deliveries (default 10000)", 0, 0},
    {"dry-run", NULL, NULL, "say how many deliveries and which would be replayed; change nothing",
     0, 'n'},
    {"yes", NULL, NULL,
     "replay more than one delivery without asking (needed when standard input is not a "
     "terminal)",
     0, 'y'},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct cli_sub deliveries_subs[] = {
    {"list",
     "[--endpoint ID] [--event ID] [--status S] [--limit N] [--after CURSOR] "
     "[--follow [--until-delivered N] [--timeout DURATION] [--interval DURATION]]",
     "list deliveries, newest first, or follow them as they happen", list_opts, 0, 0, dlv_list,
     NULL},
    {"show", "ID", "show one delivery with every attempt", NULL, 1, 1, dlv_show, NULL},
    {"retry", "ID", "deliver one delivery again now", NULL, 1, 1, dlv_retry, NULL},
    {"replay", "{--status S | --endpoint ID | --event ID} [--max N] [--dry-run | --yes]",
     "deliver again every delivery that matches, with a progress bar", replay_opts, 0, 0,
     dlv_replay,
     "More than one delivery is replayed only after a yes on the terminal, or with --yes; "
     "--dry-run lists them and changes nothing."},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL},
};

const struct cli_cmd cmd_deliveries = {
    .name = "deliveries",
    .usage = "SUBCOMMAND [ARGS]",
    .summary = "read, follow, retry and replay deliveries",
    .run = deliveries_run,
    .subs = deliveries_subs,
};

static int
deliveries_run(int argc, char **argv)
{
    return client_cmd_run(&cmd_deliveries, argc, argv);
}
