/*
 * fluxhook event-types: the event catalog, or one type's fields and sample.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/output.h"
#include "util/suggest.h"

static int event_types_run(int argc, char **argv);

static const struct out_col type_cols[] = {
    {"TYPE", "name", NULL},
    {"DESCRIPTION", "description", NULL},
    {NULL, NULL, NULL},
};

/* The catalog's list of types: the answer itself or its "data". */
static json_t *
types_of(json_t *answer)
{
    return json_is_array(answer) ? answer : json_object_get(answer, "data");
}

/* A type's name, under "name", "event" or "type". */
static const char *
type_name(json_t *t)
{
    const char *n = json_string_value(json_object_get(t, "name"));

    if (n == NULL)
        n = json_string_value(json_object_get(t, "event"));
    if (n == NULL)
        n = json_string_value(json_object_get(t, "type"));
    return n;
}

static int
et_list(struct cli_call *x)
{
    struct client_reply rep;
    struct out_table t;
    static const char *const heads[] = {"TYPE", "REQUIRED", "OPTIONAL"};
    const char *cells[3];
    char req[1024], opt[1024];
    json_t *it, *f;
    const char *fname;
    size_t i, j;
    int rc;

    (void)type_cols;
    rc = client_call(x, "GET", "/v1/event-types", NULL, NULL, &rep);
    if (rc != CLI_OK)
        goto out;
    if (x->json) {
        client_json_print(&rep);
        goto out;
    }
    out_table_init(&t, 3, heads);
    json_array_foreach(types_of(rep.json), i, it)
    {
        req[0] = opt[0] = '\0';
        json_array_foreach(json_object_get(it, "fields"), j, f)
        {
            char *dst = json_is_true(json_object_get(f, "required")) ? req : opt;
            size_t used = strlen(dst);

            fname = json_string_value(json_object_get(f, "name"));
            if (fname == NULL)
                fname = json_string_value(json_object_get(f, "path"));
            snprintf(dst + used, sizeof(req) - used, "%s%s", used > 0 ? "," : "",
                     fname != NULL ? fname : "?");
        }
        cells[0] = type_name(it);
        cells[1] = req[0] != '\0' ? req : NULL;
        cells[2] = opt[0] != '\0' ? opt : NULL;
        if (out_table_add(&t, cells) != 0)
            break;
    }
    out_table_print(&t, stdout, x->color);
    out_table_cleanup(&t);
out:
    client_reply_cleanup(&rep);
    return rc;
}

/* One type: its name and description, a table of its fields, and its sample. */
static void
show_type(struct cli_call *x, json_t *t)
{
    static const char *const heads[] = {"FIELD", "TYPE", "REQUIRED"};
    const char *cells[3];
    char scr[3][256];
    struct out_table tab;
    json_t *f;
    char *dump;
    size_t i;

    out_kv(stdout, x->color, "event", type_name(t));
    out_kv(stdout, x->color, "description", out_field(t, "description", scr[0], sizeof(scr[0])));
    printf("\n");
    out_table_init(&tab, 3, heads);
    json_array_foreach(json_object_get(t, "fields"), i, f)
    {
        cells[0] = out_field(f, "name", scr[0], sizeof(scr[0]));
        cells[1] = out_field(f, "type", scr[1], sizeof(scr[1]));
        cells[2] = out_field(f, "required", scr[2], sizeof(scr[2]));
        if (out_table_add(&tab, cells) != 0)
            break;
    }
    out_table_print(&tab, stdout, x->color);
    out_table_cleanup(&tab);
    dump = json_dumps(json_object_get(t, "sample"), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (dump != NULL)
        printf("\nsample:\n%s\n", dump);
    free(dump);
}

int
client_event_type_get(struct cli_call *x, const char *want, json_t **out)
{
    struct client_reply rep;
    struct suggest sg;
    const char *n;
    json_t *it;
    size_t i;
    int rc;

    *out = NULL;
    rc = client_call(x, "GET", "/v1/event-types", NULL, NULL, &rep);
    if (rc != CLI_OK)
        goto out;
    suggest_init(&sg, want);
    json_array_foreach(types_of(rep.json), i, it)
    {
        n = type_name(it);
        if (n != NULL && strcmp(n, want) == 0)
            *out = json_incref(it);
        suggest_add(&sg, n);
    }
    if (*out == NULL) {
        n = suggest_best(&sg);
        fprintf(stderr, "fluxhook: unknown event type '%s'%s%s%s (see 'fluxhook event-types')\n",
                want, n != NULL ? "; did you mean '" : "", n != NULL ? n : "",
                n != NULL ? "'?" : "");
        rc = CLI_REFUSED;
    }
out:
    client_reply_cleanup(&rep);
    return rc;
}

static int
et_show(struct cli_call *x)
{
    json_t *found = NULL;
    char *dump;
    int rc;

    rc = client_event_type_get(x, client_arg(x, 0), &found);
    if (rc != CLI_OK)
        goto out;
    if (x->json) {
        dump = json_dumps(found, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", dump != NULL ? dump : "null");
        free(dump);
    } else {
        show_type(x, found);
    }
out:
    json_decref(found);
    return rc;
}

static const struct cli_sub event_types_subs[] = {
    {"list", "", "list the event catalog: each type with its fields", NULL, 0, 0, et_list, NULL},
    {"show", "TYPE", "show one event type: its fields and its sample", NULL, 1, 1, et_show, NULL},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL},
};

const struct cli_cmd cmd_event_types = {
    .name = "event-types",
    .usage = "[list | show TYPE]",
    .summary = "the event catalog",
    .run = event_types_run,
    .subs = event_types_subs,
};

static int
event_types_run(int argc, char **argv)
{
    return client_cmd_run(&cmd_event_types, argc, argv);
}
