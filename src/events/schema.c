#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "events/events_int.h"
#include "events/schema.h"
#include "util/clock.h"
#include "util/err.h"

#define SHOWN_TYPE_MAX 64 /* bytes of an unknown event type quoted back */

void
schema_report_init(struct schema_report *rep)
{
    rep->n = 0;
    rep->truncated = 0;
}

void
schema_report_add(struct schema_report *rep, const char *path, const char *fmt, ...)
{
    char text[1024];
    struct schema_problem *p;
    va_list ap;
    int n;

    if (rep->n >= SCHEMA_MAX_PROBLEMS) {
        rep->truncated = 1;
        return;
    }
    p = &rep->items[rep->n++];
    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        text[0] = '\0';
    rawjson_utf8_copy(p->path, sizeof(p->path), path, strlen(path));
    rawjson_utf8_copy(p->problem, sizeof(p->problem), text, strlen(text));
}

json_t *
schema_report_json(const struct schema_report *rep)
{
    json_t *arr, *o;
    int i, bad = 0;

    arr = json_array();
    for (i = 0; arr != NULL && i < rep->n && !bad; i++) {
        o = json_object();
        if (o == NULL) {
            bad = 1;
            break;
        }
        bad |= json_object_set_new(o, "path", json_string(rep->items[i].path));
        bad |= json_object_set_new(o, "problem", json_string(rep->items[i].problem));
        bad |= json_array_append_new(arr, o);
    }
    if (bad) {
        json_decref(arr);
        arr = NULL;
    }
    return arr;
}

int
schema_timestamp_ok(const char *s, int64_t *ms)
{
    size_t n = strlen(s);
    int64_t v;

    /* clock_parse_rfc3339 also takes 't' and 'z'; the envelope promises "T" and "Z". */
    if (n < 20 || s[10] != 'T' || s[n - 1] != 'Z')
        return 0;
    if (clock_parse_rfc3339(s, &v) != 0)
        return 0;
    if (ms != NULL)
        *ms = v;
    return 1;
}

/* 1 when v is a JSON string of at least one byte. */
static int
nonempty_string(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0;
}

static int
in_range(const struct catalog_field *f, double x)
{
    return (!f->has_min || x >= f->min) && (!f->has_max || x <= f->max);
}

static int
enum_has(const struct catalog_field *f, const json_t *v)
{
    size_t i, n;

    if (!json_is_string(v))
        return 0;
    n = json_string_length(v);
    for (i = 0; f->values[i] != NULL; i++) {
        if (strlen(f->values[i]) == n && memcmp(f->values[i], json_string_value(v), n) == 0)
            return 1;
    }
    return 0;
}

static int
one_at(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t i, n = json_string_length(v), ats = 0;

    for (i = 0; i < n; i++)
        ats += s[i] == '@';
    return ats == 1;
}

/* Checks an array of strings; problems go to path and path[i]. */
static void
strings_check(const struct catalog_field *f, const json_t *v, const char *path,
              struct schema_report *rep)
{
    char at[SCHEMA_PATH_MAX + 32];
    size_t i;

    if (!json_is_array(v) || (f->nonempty && json_array_size(v) == 0)) {
        schema_report_add(rep, path, "must be a %sarray of strings",
                          f->nonempty ? "non-empty " : "");
        return;
    }
    for (i = 0; i < json_array_size(v); i++) {
        if (!nonempty_string(json_array_get(v, i))) {
            snprintf(at, sizeof(at), "%s[%zu]", path, i);
            schema_report_add(rep, at, "must be a non-empty string");
        }
    }
}

/* Checks one field; v is NULL when absent. */
static void
field_check(const struct catalog_field *f, const json_t *v, const char *path,
            struct schema_report *rep)
{
    char words[256];

    if (v == NULL) {
        if (f->required)
            schema_report_add(rep, path, "required");
        return;
    }
    if (f->nullable && json_is_null(v))
        return;
    switch (f->kind) {
    case CATALOG_STRING:
        if (!json_is_string(v) || (f->nonempty && json_string_length(v) == 0))
            schema_report_add(rep, path, "must be a %sstring", f->nonempty ? "non-empty " : "");
        break;
    case CATALOG_EMAIL:
        if (!nonempty_string(v) || !one_at(v))
            schema_report_add(rep, path, "must be a string containing one @");
        break;
    case CATALOG_BOOL:
        if (!json_is_boolean(v))
            schema_report_add(rep, path, "must be true or false");
        break;
    case CATALOG_INT:
        /* json_is_integer is true only for tokens without fraction or exponent. */
        if (!json_is_integer(v) || !in_range(f, (double)json_integer_value(v)))
            schema_report_add(rep, path, "must be an %s",
                              catalog_field_describe(f, words, sizeof(words)));
        break;
    case CATALOG_NUMBER:
        if (!json_is_number(v) || !in_range(f, json_number_value(v)))
            schema_report_add(rep, path, "must be a %s",
                              catalog_field_describe(f, words, sizeof(words)));
        break;
    case CATALOG_ENUM:
        if (!enum_has(f, v))
            schema_report_add(rep, path, "must be %s",
                              catalog_field_describe(f, words, sizeof(words)));
        break;
    case CATALOG_STRINGS:
        strings_check(f, v, path, rep);
        break;
    }
}

int
schema_data_check(const struct catalog_type *t, const json_t *data, const char *prefix,
                  struct schema_report *rep)
{
    char path[SCHEMA_PATH_MAX];
    int before = rep->n + rep->truncated;
    size_t i;

    if (!json_is_object(data)) {
        schema_report_add(rep, prefix, "must be an object");
        return ERR_VALIDATION;
    }
    for (i = 0; i < t->nfields; i++) {
        snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] != '\0' ? "." : "",
                 t->fields[i].name);
        field_check(&t->fields[i], json_object_get(data, t->fields[i].name), path, rep);
    }
    return rep->n + rep->truncated > before ? ERR_VALIDATION : 0;
}

/* The catalog type named by the string v, or NULL (also for "a\0b"). */
static const struct catalog_type *
type_of(const json_t *v)
{
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return catalog_type_find(json_string_value(v));
}

static void
event_check(const json_t *v, struct schema_report *rep)
{
    char names[256], shown[SHOWN_TYPE_MAX + 1];

    if (v == NULL) {
        schema_report_add(rep, "event", "required");
        return;
    }
    if (type_of(v) != NULL)
        return;
    catalog_type_names(names, sizeof(names));
    if (!json_is_string(v)) {
        schema_report_add(rep, "event", "must be a string; expected one of %s", names);
        return;
    }
    rawjson_utf8_copy(shown, sizeof(shown), json_string_value(v), json_string_length(v));
    if (catalog_own_find(json_string_value(v)) != NULL) {
        schema_report_add(rep, "event",
                          "'%s' is one of fluxhook's own operational event types, which only "
                          "fluxhook publishes; expected one of %s",
                          shown, names);
        return;
    }
    schema_report_add(rep, "event", "unknown event type '%s'; expected one of %s", shown, names);
}

int
schema_publish_check(const json_t *root, struct schema_report *rep)
{
    const json_t *ev, *data, *ts, *v;
    const struct catalog_type *t;
    int before = rep->n + rep->truncated;
    const char *key;

    ev = json_object_get(root, "event");
    data = json_object_get(root, "data");
    ts = json_object_get(root, "timestamp");
    event_check(ev, rep);
    t = type_of(ev);
    if (data == NULL)
        schema_report_add(rep, "data", "required");
    else if (!json_is_object(data))
        schema_report_add(rep, "data", "must be an object");
    else if (t != NULL)
        schema_data_check(t, data, "data", rep);
    if (ts != NULL && !json_is_null(ts) &&
        (!json_is_string(ts) || strlen(json_string_value(ts)) != json_string_length(ts) ||
         !schema_timestamp_ok(json_string_value(ts), NULL)))
        schema_report_add(rep, "timestamp",
                          "must be an RFC 3339 UTC timestamp such as 2024-01-01T12:00:00Z");
    json_object_foreach((json_t *)root, key, v)
    {
        if (strcmp(key, "event") != 0 && strcmp(key, "data") != 0 && strcmp(key, "timestamp") != 0)
            schema_report_add(rep, key, "unknown field; expected event, data, timestamp");
    }
    return rep->n + rep->truncated > before ? ERR_VALIDATION : 0;
}
