/*
 * fluxhook trigger: publishes the catalog's sample of an event type, as it
 * is or changed by --data (a whole data object) and --set (one field at a
 * path), so that a developer can make a delivery happen without writing a
 * payload. The server validates it as it validates any publish.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "util/err.h"

#define TRIGGER_MAX_SETS 32

static int trigger_run(int argc, char **argv);
static int trigger_send(struct cli_call *x);

static const struct config_opt trigger_opts[] = {
    {"data", "JSON|@FILE|@-", NULL, "the data object to send instead of the catalog's sample", 0,
     'd'},
    {"set", "PATH=VALUE", NULL,
     "change one field of the data, such as --set channel=email or --set usage.tokens=12 "
     "(VALUE is read as JSON when it is JSON, else as a string); may be repeated",
     0, 's'},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct cli_sub trigger_sub = {
    "",
    "TYPE [--data JSON|@FILE|@-] [--set PATH=VALUE]...",
    "publish the catalog's sample of an event type, optionally changed",
    trigger_opts,
    1,
    1,
    trigger_send,
    "The event is validated as 'fluxhook events publish' validates it: a field that breaks the "
    "catalog is refused with its path. See the samples with 'fluxhook event-types show TYPE'.",
};

const struct cli_cmd cmd_trigger = {
    .name = "trigger",
    .usage = "TYPE [--data JSON|@FILE|@-] [--set PATH=VALUE]...",
    .summary = "publish an event type's sample (optionally changed) to make a delivery happen",
    .opts = trigger_opts,
    .run = trigger_run,
};

/*
 * The --set values, in order: the option table keeps only the last value of
 * an option, so trigger_run collects them all from argv first.
 */
static const char *sets[TRIGGER_MAX_SETS];
static int nsets;

/*
 * Sets the member at the dotted path of data to value (JSON when it parses
 * as JSON, else a string), making the objects on the way. Returns 0, or
 * ERR_INVAL after saying why.
 */
static int
set_apply(json_t *data, const char *assign)
{
    const char *eq = strchr(assign, '='), *p, *dot;
    char key[256];
    json_t *v, *obj = data, *next;
    size_t len;

    if (eq == NULL || eq == assign) {
        fprintf(stderr,
                "fluxhook trigger: --set '%s': expected PATH=VALUE, such as "
                "channel=email\n",
                assign);
        return ERR_INVAL;
    }
    v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
    if (v == NULL)
        v = json_string(eq + 1);
    if (v == NULL) {
        fprintf(stderr, "fluxhook trigger: --set '%s': the value is not UTF-8 text\n", assign);
        return ERR_INVAL;
    }
    for (p = assign;;) {
        dot = memchr(p, '.', (size_t)(eq - p));
        len = (size_t)((dot != NULL ? dot : eq) - p);
        if (len == 0 || len >= sizeof(key)) {
            fprintf(stderr,
                    "fluxhook trigger: --set '%s': expected a path of field names "
                    "joined by dots\n",
                    assign);
            json_decref(v);
            return ERR_INVAL;
        }
        memcpy(key, p, len);
        key[len] = '\0';
        if (dot == NULL)
            break;
        next = json_object_get(obj, key);
        if (!json_is_object(next)) {
            next = json_object();
            if (next == NULL || json_object_set_new(obj, key, next) != 0) {
                json_decref(v);
                return ERR_NOMEM;
            }
        }
        obj = next;
        p = dot + 1;
    }
    return json_object_set_new(obj, key, v) != 0 ? ERR_NOMEM : 0;
}

static int
trigger_send(struct cli_call *x)
{
    const char *type = client_arg(x, 0), *data = client_opt(x, "data");
    struct client_reply rep;
    json_t *t = NULL, *d = NULL, *body = NULL;
    char *dump = NULL;
    int rc, i;

    memset(&rep, 0, sizeof(rep));
    rc = client_event_type_get(x, type, &t);
    if (rc != CLI_OK)
        goto out;
    if (data != NULL) {
        rc = client_json_arg(x, "--data", data, &d);
        if (rc != CLI_OK)
            goto out;
    } else {
        d = json_deep_copy(json_object_get(t, "sample"));
    }
    if (!json_is_object(d)) {
        rc = client_usage(x, "--data: expected a JSON object");
        goto out;
    }
    for (i = 0; i < nsets; i++) {
        if (set_apply(d, sets[i]) != 0) {
            rc = CLI_USAGE;
            goto out;
        }
    }
    body = json_pack("{s:s, s:O}", "event", type, "data", d);
    if (body == NULL) {
        rc = CLI_REFUSED;
        goto out;
    }
    rc = client_call(x, "POST", "/v1/events", body, NULL, &rep);
    if (rc != CLI_OK)
        goto out;
    if (x->json) {
        client_json_print(&rep);
        goto out;
    }
    dump = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("triggered %s: event %s, %lld deliver%s\n", type,
           json_string_value(json_object_get(rep.json, "id")),
           (long long)json_integer_value(json_object_get(rep.json, "deliveries")),
           json_integer_value(json_object_get(rep.json, "deliveries")) == 1 ? "y" : "ies");
    printf("  data %s\n", dump != NULL ? dump : "");
    if (json_integer_value(json_object_get(rep.json, "deliveries")) == 0)
        printf("  no endpoint is subscribed to %s: create one with 'fluxhook endpoints create "
               "--url URL'\n",
               type);
out:
    free(dump);
    client_reply_cleanup(&rep);
    json_decref(body);
    json_decref(d);
    json_decref(t);
    return rc;
}

static int
trigger_run(int argc, char **argv)
{
    const char *v;
    int i;

    nsets = 0;
    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if ((strcmp(argv[i], "--set") == 0 || strcmp(argv[i], "-s") == 0) && i + 1 < argc)
            v = argv[++i];
        else if (strncmp(argv[i], "--set=", 6) == 0)
            v = argv[i] + 6;
        else
            continue;
        if (nsets == TRIGGER_MAX_SETS) {
            fprintf(stderr, "fluxhook trigger: at most %d --set\n", TRIGGER_MAX_SETS);
            return CLI_USAGE;
        }
        sets[nsets++] = v;
    }
    return client_sub_run(&cmd_trigger, &trigger_sub, argc, argv);
}
