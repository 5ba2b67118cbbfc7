#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../torture.h"

#include "events/catalog.h"
#include "events/schema.h"
#include "util/err.h"

#define ABSENT "\"<absent>\"" /* a patch value that removes the member */

/*
 * One rule check: the type's sample with patch applied (members replaced,
 * ABSENT ones removed) must give exactly the problem (path, text), or none
 * when path is NULL.
 */
struct rule_case {
    const char *type;
    const char *patch;
    const char *path;
    const char *problem;
};

/* clang-format off */
#define OK(t, p) {t, p, NULL, NULL}
#define BAD(t, p, path, why) {t, p, path, why}
/* clang-format on */

#define NES "must be a non-empty string"
#define INT0 "must be an integer >= 0"
#define RATE "must be a number between 0 and 1"
#define SCORE "must be an integer between 1 and 5 or null"
#define PRIO "must be one of low, normal, high, urgent"
#define BOOLW "must be true or false"
#define EMAILW "must be a string containing one @"
#define ARRW "must be a non-empty array of strings"

static const struct rule_case rules[] = {
    /* conversation.started */
    OK("conversation.started", "{}"),
    BAD("conversation.started", "{\"conversation_id\": " ABSENT "}", "data.conversation_id",
        "required"),
    BAD("conversation.started", "{\"agent_id\": " ABSENT "}", "data.agent_id", "required"),
    BAD("conversation.started", "{\"channel\": " ABSENT "}", "data.channel", "required"),
    BAD("conversation.started", "{\"conversation_id\": 123}", "data.conversation_id", NES),
    BAD("conversation.started", "{\"agent_id\": \"\"}", "data.agent_id", NES),
    BAD("conversation.started", "{\"channel\": null}", "data.channel", NES),
    BAD("conversation.started", "{\"channel\": [\"chat\"]}", "data.channel", NES),
    OK("conversation.started", "{\"agent_name\": " ABSENT ", \"user_id\": " ABSENT
                               ", \"initial_message\": " ABSENT ", \"user_email\": " ABSENT "}"),
    BAD("conversation.started", "{\"agent_name\": \"\"}", "data.agent_name", NES),
    BAD("conversation.started", "{\"user_id\": 456}", "data.user_id", NES),
    BAD("conversation.started", "{\"initial_message\": false}", "data.initial_message", NES),
    BAD("conversation.started", "{\"agent_name\": null}", "data.agent_name", NES),
    OK("conversation.started", "{\"user_email\": \"a@b\"}"),
    BAD("conversation.started", "{\"user_email\": \"user.example.com\"}", "data.user_email",
        EMAILW),
    BAD("conversation.started", "{\"user_email\": \"a@b@c\"}", "data.user_email", EMAILW),
    BAD("conversation.started", "{\"user_email\": \"@@\"}", "data.user_email", EMAILW),
    BAD("conversation.started", "{\"user_email\": \"\"}", "data.user_email", EMAILW),
    BAD("conversation.started", "{\"user_email\": 7}", "data.user_email", EMAILW),
    OK("conversation.started", "{\"channel\": \" \", \"extra\": {\"x\": [1, null]}}"),

    /* conversation.completed */
    OK("conversation.completed", "{}"),
    BAD("conversation.completed", "{\"conversation_id\": " ABSENT "}", "data.conversation_id",
        "required"),
    BAD("conversation.completed", "{\"agent_id\": " ABSENT "}", "data.agent_id", "required"),
    BAD("conversation.completed", "{\"duration_seconds\": " ABSENT "}", "data.duration_seconds",
        "required"),
    BAD("conversation.completed", "{\"messages_count\": " ABSENT "}", "data.messages_count",
        "required"),
    BAD("conversation.completed", "{\"was_escalated\": " ABSENT "}", "data.was_escalated",
        "required"),
    BAD("conversation.completed", "{\"agent_id\": 1}", "data.agent_id", NES),
    OK("conversation.completed", "{\"duration_seconds\": 0, \"messages_count\": 0}"),
    OK("conversation.completed", "{\"duration_seconds\": 9223372036854775807}"),
    BAD("conversation.completed", "{\"duration_seconds\": -1}", "data.duration_seconds", INT0),
    BAD("conversation.completed", "{\"duration_seconds\": 5.0}", "data.duration_seconds", INT0),
    BAD("conversation.completed", "{\"duration_seconds\": 1e2}", "data.duration_seconds", INT0),
    BAD("conversation.completed", "{\"duration_seconds\": \"300\"}", "data.duration_seconds", INT0),
    BAD("conversation.completed", "{\"duration_seconds\": true}", "data.duration_seconds", INT0),
    BAD("conversation.completed", "{\"duration_seconds\": null}", "data.duration_seconds", INT0),
    BAD("conversation.completed", "{\"messages_count\": -9223372036854775807}",
        "data.messages_count", INT0),
    BAD("conversation.completed", "{\"messages_count\": 0.5}", "data.messages_count", INT0),
    BAD("conversation.completed", "{\"messages_count\": false}", "data.messages_count", INT0),
    OK("conversation.completed", "{\"was_escalated\": true}"),
    BAD("conversation.completed", "{\"was_escalated\": 0}", "data.was_escalated", BOOLW),
    BAD("conversation.completed", "{\"was_escalated\": \"false\"}", "data.was_escalated", BOOLW),
    BAD("conversation.completed", "{\"was_escalated\": null}", "data.was_escalated", BOOLW),
    OK("conversation.completed",
       "{\"resolution_rate\": " ABSENT ", \"satisfaction_score\": " ABSENT "}"),
    OK("conversation.completed", "{\"resolution_rate\": 0}"),
    OK("conversation.completed", "{\"resolution_rate\": 1}"),
    OK("conversation.completed", "{\"resolution_rate\": 0.0}"),
    OK("conversation.completed", "{\"resolution_rate\": 0.5}"),
    OK("conversation.completed", "{\"resolution_rate\": 1e0}"),
    BAD("conversation.completed", "{\"resolution_rate\": -0.0001}", "data.resolution_rate", RATE),
    BAD("conversation.completed", "{\"resolution_rate\": 1.0001}", "data.resolution_rate", RATE),
    BAD("conversation.completed", "{\"resolution_rate\": 2}", "data.resolution_rate", RATE),
    BAD("conversation.completed", "{\"resolution_rate\": \"1\"}", "data.resolution_rate", RATE),
    BAD("conversation.completed", "{\"resolution_rate\": null}", "data.resolution_rate", RATE),
    OK("conversation.completed", "{\"satisfaction_score\": 1}"),
    OK("conversation.completed", "{\"satisfaction_score\": 3}"),
    OK("conversation.completed", "{\"satisfaction_score\": 5}"),
    OK("conversation.completed", "{\"satisfaction_score\": null}"),
    BAD("conversation.completed", "{\"satisfaction_score\": 0}", "data.satisfaction_score", SCORE),
    BAD("conversation.completed", "{\"satisfaction_score\": 6}", "data.satisfaction_score", SCORE),
    BAD("conversation.completed", "{\"satisfaction_score\": -1}", "data.satisfaction_score", SCORE),
    BAD("conversation.completed", "{\"satisfaction_score\": 3.0}", "data.satisfaction_score",
        SCORE),
    BAD("conversation.completed", "{\"satisfaction_score\": 4.5}", "data.satisfaction_score",
        SCORE),
    BAD("conversation.completed", "{\"satisfaction_score\": \"5\"}", "data.satisfaction_score",
        SCORE),
    BAD("conversation.completed", "{\"satisfaction_score\": true}", "data.satisfaction_score",
        SCORE),

    /* conversation.escalated */
    OK("conversation.escalated", "{}"),
    BAD("conversation.escalated", "{\"conversation_id\": " ABSENT "}", "data.conversation_id",
        "required"),
    BAD("conversation.escalated", "{\"agent_id\": " ABSENT "}", "data.agent_id", "required"),
    BAD("conversation.escalated", "{\"reason\": " ABSENT "}", "data.reason", "required"),
    BAD("conversation.escalated", "{\"reason\": \"\"}", "data.reason", NES),
    OK("conversation.escalated",
       "{\"escalation_id\": " ABSENT ", \"escalated_to\": " ABSENT ", \"priority\": " ABSENT "}"),
    BAD("conversation.escalated", "{\"escalation_id\": 5}", "data.escalation_id", NES),
    BAD("conversation.escalated", "{\"escalated_to\": \"\"}", "data.escalated_to", NES),
    OK("conversation.escalated", "{\"priority\": \"low\"}"),
    OK("conversation.escalated", "{\"priority\": \"normal\"}"),
    OK("conversation.escalated", "{\"priority\": \"high\"}"),
    OK("conversation.escalated", "{\"priority\": \"urgent\"}"),
    BAD("conversation.escalated", "{\"priority\": \"LOW\"}", "data.priority", PRIO),
    BAD("conversation.escalated", "{\"priority\": \"critical\"}", "data.priority", PRIO),
    BAD("conversation.escalated", "{\"priority\": \"high \"}", "data.priority", PRIO),
    BAD("conversation.escalated", "{\"priority\": \"high\\u0000\"}", "data.priority", PRIO),
    BAD("conversation.escalated", "{\"priority\": \"\"}", "data.priority", PRIO),
    BAD("conversation.escalated", "{\"priority\": 1}", "data.priority", PRIO),
    BAD("conversation.escalated", "{\"priority\": null}", "data.priority", PRIO),

    /* agent.response */
    OK("agent.response", "{}"),
    BAD("agent.response", "{\"conversation_id\": " ABSENT "}", "data.conversation_id", "required"),
    BAD("agent.response", "{\"agent_id\": " ABSENT "}", "data.agent_id", "required"),
    BAD("agent.response", "{\"message_id\": " ABSENT "}", "data.message_id", "required"),
    BAD("agent.response", "{\"content\": " ABSENT "}", "data.content", "required"),
    BAD("agent.response", "{\"content\": \"\"}", "data.content", NES),
    BAD("agent.response", "{\"message_id\": {}}", "data.message_id", NES),
    OK("agent.response", "{\"response_time_ms\": " ABSENT ", \"confidence_score\": " ABSENT "}"),
    OK("agent.response", "{\"response_time_ms\": 0}"),
    BAD("agent.response", "{\"response_time_ms\": -1}", "data.response_time_ms", INT0),
    BAD("agent.response", "{\"response_time_ms\": 1200.5}", "data.response_time_ms", INT0),
    BAD("agent.response", "{\"response_time_ms\": \"1200\"}", "data.response_time_ms", INT0),
    OK("agent.response", "{\"confidence_score\": 0}"),
    OK("agent.response", "{\"confidence_score\": 1.0}"),
    BAD("agent.response", "{\"confidence_score\": -0.5}", "data.confidence_score", RATE),
    BAD("agent.response", "{\"confidence_score\": 1.5}", "data.confidence_score", RATE),
    BAD("agent.response", "{\"confidence_score\": false}", "data.confidence_score", RATE),

    /* user.message */
    OK("user.message", "{}"),
    BAD("user.message", "{\"conversation_id\": " ABSENT "}", "data.conversation_id", "required"),
    BAD("user.message", "{\"message_id\": " ABSENT "}", "data.message_id", "required"),
    BAD("user.message", "{\"user_id\": " ABSENT "}", "data.user_id", "required"),
    BAD("user.message", "{\"content\": " ABSENT "}", "data.content", "required"),
    BAD("user.message", "{\"user_id\": 456}", "data.user_id", NES),
    OK("user.message", "{\"channel\": " ABSENT "}"),
    BAD("user.message", "{\"channel\": \"\"}", "data.channel", NES),

    /* escalation.triggered */
    OK("escalation.triggered", "{}"),
    BAD("escalation.triggered", "{\"escalation_id\": " ABSENT "}", "data.escalation_id",
        "required"),
    BAD("escalation.triggered", "{\"conversation_id\": " ABSENT "}", "data.conversation_id",
        "required"),
    BAD("escalation.triggered", "{\"reason\": " ABSENT "}", "data.reason", "required"),
    BAD("escalation.triggered", "{\"escalation_id\": \"\"}", "data.escalation_id", NES),
    OK("escalation.triggered",
       "{\"agent_id\": " ABSENT ", \"priority\": " ABSENT ", \"requested_by\": " ABSENT "}"),
    BAD("escalation.triggered", "{\"agent_id\": 1}", "data.agent_id", NES),
    OK("escalation.triggered", "{\"priority\": \"low\"}"),
    OK("escalation.triggered", "{\"priority\": \"normal\"}"),
    OK("escalation.triggered", "{\"priority\": \"urgent\"}"),
    BAD("escalation.triggered", "{\"priority\": \"medium\"}", "data.priority", PRIO),
    OK("escalation.triggered", "{\"requested_by\": \"user\"}"),
    OK("escalation.triggered", "{\"requested_by\": \"agent\"}"),
    OK("escalation.triggered", "{\"requested_by\": \"rule\"}"),
    BAD("escalation.triggered", "{\"requested_by\": \"system\"}", "data.requested_by",
        "must be one of user, agent, rule"),
    BAD("escalation.triggered", "{\"requested_by\": [\"user\"]}", "data.requested_by",
        "must be one of user, agent, rule"),

    /* integration.sync */
    OK("integration.sync", "{}"),
    BAD("integration.sync", "{\"integration_id\": " ABSENT "}", "data.integration_id", "required"),
    BAD("integration.sync", "{\"integration_type\": " ABSENT "}", "data.integration_type",
        "required"),
    BAD("integration.sync", "{\"sync_type\": " ABSENT "}", "data.sync_type", "required"),
    BAD("integration.sync", "{\"records_synced\": " ABSENT "}", "data.records_synced", "required"),
    BAD("integration.sync", "{\"status\": " ABSENT "}", "data.status", "required"),
    BAD("integration.sync", "{\"integration_type\": \"\"}", "data.integration_type", NES),
    OK("integration.sync", "{\"sync_type\": \"incremental\"}"),
    BAD("integration.sync", "{\"sync_type\": \"partial\"}", "data.sync_type",
        "must be one of full, incremental"),
    BAD("integration.sync", "{\"sync_type\": \"Full\"}", "data.sync_type",
        "must be one of full, incremental"),
    OK("integration.sync", "{\"records_synced\": 0}"),
    BAD("integration.sync", "{\"records_synced\": -1}", "data.records_synced", INT0),
    BAD("integration.sync", "{\"records_synced\": 150.0}", "data.records_synced", INT0),
    OK("integration.sync", "{\"status\": \"partial\"}"),
    OK("integration.sync", "{\"status\": \"failed\"}"),
    BAD("integration.sync", "{\"status\": \"ok\"}", "data.status",
        "must be one of success, partial, failed"),
    OK("integration.sync", "{\"duration_seconds\": " ABSENT "}"),
    OK("integration.sync", "{\"duration_seconds\": 0}"),
    OK("integration.sync", "{\"duration_seconds\": 45.5}"),
    OK("integration.sync", "{\"duration_seconds\": 1e9}"),
    BAD("integration.sync", "{\"duration_seconds\": -0.5}", "data.duration_seconds",
        "must be a number >= 0"),
    BAD("integration.sync", "{\"duration_seconds\": -1}", "data.duration_seconds",
        "must be a number >= 0"),
    BAD("integration.sync", "{\"duration_seconds\": \"45\"}", "data.duration_seconds",
        "must be a number >= 0"),

    /* integration.error */
    OK("integration.error", "{}"),
    BAD("integration.error", "{\"integration_id\": " ABSENT "}", "data.integration_id", "required"),
    BAD("integration.error", "{\"integration_type\": " ABSENT "}", "data.integration_type",
        "required"),
    BAD("integration.error", "{\"error_code\": " ABSENT "}", "data.error_code", "required"),
    BAD("integration.error", "{\"error_message\": " ABSENT "}", "data.error_message", "required"),
    BAD("integration.error", "{\"error_code\": 401}", "data.error_code", NES),
    OK("integration.error", "{\"retryable\": " ABSENT "}"),
    OK("integration.error", "{\"retryable\": false}"),
    BAD("integration.error", "{\"retryable\": \"yes\"}", "data.retryable", BOOLW),
    BAD("integration.error", "{\"retryable\": 1}", "data.retryable", BOOLW),

    /* agent.updated */
    OK("agent.updated", "{}"),
    BAD("agent.updated", "{\"agent_id\": " ABSENT "}", "data.agent_id", "required"),
    BAD("agent.updated", "{\"updated_fields\": " ABSENT "}", "data.updated_fields", "required"),
    OK("agent.updated", "{\"updated_fields\": [\"model\"]}"),
    BAD("agent.updated", "{\"updated_fields\": []}", "data.updated_fields", ARRW),
    BAD("agent.updated", "{\"updated_fields\": \"model\"}", "data.updated_fields", ARRW),
    BAD("agent.updated", "{\"updated_fields\": null}", "data.updated_fields", ARRW),
    BAD("agent.updated", "{\"updated_fields\": {\"0\": \"model\"}}", "data.updated_fields", ARRW),
    BAD("agent.updated", "{\"updated_fields\": [\"a\", 1]}", "data.updated_fields[1]", NES),
    BAD("agent.updated", "{\"updated_fields\": [\"a\", \"b\", \"\"]}", "data.updated_fields[2]",
        NES),
    BAD("agent.updated", "{\"updated_fields\": [null]}", "data.updated_fields[0]", NES),
    BAD("agent.updated", "{\"updated_fields\": [[\"a\"]]}", "data.updated_fields[0]", NES),
    OK("agent.updated", "{\"agent_name\": " ABSENT ", \"updated_by\": " ABSENT "}"),
    BAD("agent.updated", "{\"agent_name\": \"\"}", "data.agent_name", NES),
    BAD("agent.updated", "{\"updated_by\": 789}", "data.updated_by", NES),
};

/* The sample of type with patch applied, a new reference. */
static json_t *
patched_sample(const char *type, const char *patch)
{
    const struct catalog_type *t = catalog_type_find(type);
    json_t *data, *p, *v;
    const char *key;
    json_error_t e;

    assert_non_null(t);
    data = json_loads(t->sample, 0, &e);
    assert_non_null(data);
    p = json_loads(patch, JSON_ALLOW_NUL, &e);
    if (p == NULL)
        fail_msg("bad patch %s: %s", patch, e.text);
    json_object_foreach(p, key, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), "<absent>") == 0)
            json_object_del(data, key);
        else
            json_object_set(data, key, v);
    }
    json_decref(p);
    return data;
}

static void
test_every_rule(void **state)
{
    static struct schema_report rep;
    const struct catalog_type *t;
    json_t *data;
    size_t i;
    int rc;

    (void)state;
    for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        const struct rule_case *c = &rules[i];

        t = catalog_type_find(c->type);
        data = patched_sample(c->type, c->patch);
        schema_report_init(&rep);
        rc = schema_data_check(t, data, "data", &rep);
        json_decref(data);
        if (c->path == NULL) {
            if (rc != 0 || rep.n != 0)
                fail_msg("%s %s: expected valid, got %d problems, first %s: %s", c->type, c->patch,
                         rep.n, rep.items[0].path, rep.items[0].problem);
            continue;
        }
        if (rc != ERR_VALIDATION || rep.n != 1)
            fail_msg("%s %s: expected one problem, got rc %d and %d", c->type, c->patch, rc, rep.n);
        if (strcmp(rep.items[0].path, c->path) != 0 ||
            strcmp(rep.items[0].problem, c->problem) != 0)
            fail_msg("%s %s: expected %s: %s, got %s: %s", c->type, c->patch, c->path, c->problem,
                     rep.items[0].path, rep.items[0].problem);
    }
}

/*
 * A sweep driven by the catalog itself, so that a field added to the table is
 * tested too: removing a field is "required" exactly when it is required, and
 * a value of the wrong kind (an object, or null where not nullable) is a
 * problem at that field's path.
 */
static void
test_catalog_sweep(void **state)
{
    static struct schema_report rep;
    const struct catalog_type *t;
    json_t *data;
    char path[128];
    size_t i, f;

    (void)state;
    for (i = 0; (t = catalog_type_at(i)) != NULL; i++) {
        for (f = 0; f < t->nfields; f++) {
            const struct catalog_field *fd = &t->fields[f];

            snprintf(path, sizeof(path), "data.%s", fd->name);
            data = json_loads(t->sample, 0, NULL);
            json_object_del(data, fd->name);
            schema_report_init(&rep);
            schema_data_check(t, data, "data", &rep);
            assert_int_equal(rep.n, fd->required ? 1 : 0);
            if (fd->required) {
                assert_string_equal(rep.items[0].path, path);
                assert_string_equal(rep.items[0].problem, "required");
            }

            json_object_set_new(data, fd->name, json_object());
            schema_report_init(&rep);
            assert_int_equal(schema_data_check(t, data, "data", &rep), ERR_VALIDATION);
            assert_int_equal(rep.n, 1);
            assert_string_equal(rep.items[0].path, path);
            assert_true(strncmp(rep.items[0].problem, "must be ", 8) == 0);

            json_object_set_new(data, fd->name, json_null());
            schema_report_init(&rep);
            schema_data_check(t, data, "data", &rep);
            assert_int_equal(rep.n, fd->nullable ? 0 : 1);
            json_decref(data);
        }
    }
}

static void
test_many_problems_at_once(void **state)
{
    static struct schema_report rep;
    json_t *data;
    int rc;

    (void)state;
    data = json_loads("{\"agent_id\": \"\", \"duration_seconds\": -5, \"messages_count\": 2.5,"
                      " \"was_escalated\": \"no\", \"resolution_rate\": 7,"
                      " \"satisfaction_score\": 0, \"unknown\": {\"kept\": true}}",
                      0, NULL);
    assert_non_null(data);
    schema_report_init(&rep);
    rc = schema_data_check(catalog_type_find("conversation.completed"), data, "data", &rep);
    json_decref(data);
    assert_int_equal(rc, ERR_VALIDATION);
    assert_int_equal(rep.n, 7);
    assert_int_equal(rep.truncated, 0);
    assert_string_equal(rep.items[0].path, "data.conversation_id");
    assert_string_equal(rep.items[0].problem, "required");
    assert_string_equal(rep.items[1].path, "data.agent_id");
    assert_string_equal(rep.items[1].problem, NES);
    assert_string_equal(rep.items[2].path, "data.duration_seconds");
    assert_string_equal(rep.items[2].problem, INT0);
    assert_string_equal(rep.items[3].path, "data.messages_count");
    assert_string_equal(rep.items[3].problem, INT0);
    assert_string_equal(rep.items[4].path, "data.was_escalated");
    assert_string_equal(rep.items[4].problem, BOOLW);
    assert_string_equal(rep.items[5].path, "data.resolution_rate");
    assert_string_equal(rep.items[5].problem, RATE);
    assert_string_equal(rep.items[6].path, "data.satisfaction_score");
    assert_string_equal(rep.items[6].problem, SCORE);
}

static void
test_report_truncated(void **state)
{
    static struct schema_report rep;
    json_t *data, *arr;
    int i;

    (void)state;
    data = json_loads(catalog_type_find("agent.updated")->sample, 0, NULL);
    arr = json_array();
    for (i = 0; i < 100; i++)
        json_array_append_new(arr, json_integer(i));
    json_object_set_new(data, "updated_fields", arr);
    schema_report_init(&rep);
    assert_int_equal(schema_data_check(catalog_type_find("agent.updated"), data, "data", &rep),
                     ERR_VALIDATION);
    json_decref(data);
    assert_int_equal(rep.n, SCHEMA_MAX_PROBLEMS);
    assert_int_equal(rep.truncated, 1);
    assert_string_equal(rep.items[0].path, "data.updated_fields[0]");
    assert_string_equal(rep.items[63].path, "data.updated_fields[63]");
}

static void
test_data_not_object(void **state)
{
    static struct schema_report rep;
    const char *bad[] = {"[]", "\"x\"", "1", "null", "true"};
    json_t *v;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        schema_report_init(&rep);
        assert_int_equal(schema_data_check(catalog_type_find("user.message"), v, "data", &rep),
                         ERR_VALIDATION);
        assert_int_equal(rep.n, 1);
        assert_string_equal(rep.items[0].path, "data");
        assert_string_equal(rep.items[0].problem, "must be an object");
        json_decref(v);
    }
}

/* Runs schema_publish_check on text; returns the report. */
static struct schema_report *
publish_check(const char *text, int expect_rc)
{
    static struct schema_report rep;
    json_error_t e;
    json_t *root;

    root = json_loads(text, JSON_ALLOW_NUL, &e);
    if (root == NULL)
        fail_msg("bad test JSON %s: %s", text, e.text);
    schema_report_init(&rep);
    assert_int_equal(schema_publish_check(root, &rep), expect_rc);
    json_decref(root);
    return &rep;
}

#define ALL_TYPES                                                                                  \
    "conversation.started, conversation.completed, conversation.escalated, agent.response, "       \
    "user.message, escalation.triggered, integration.sync, integration.error, agent.updated"

static void
test_publish_event_member(void **state)
{
    struct schema_report *rep;
    json_t *utf8;

    (void)state;
    rep = publish_check("{\"event\": \"conversation.ended\", \"data\": {}}", ERR_VALIDATION);
    assert_int_equal(rep->n, 1);
    assert_string_equal(rep->items[0].path, "event");
    assert_string_equal(rep->items[0].problem,
                        "unknown event type 'conversation.ended'; expected one of " ALL_TYPES);

    rep = publish_check("{\"event\": \"\", \"data\": {}}", ERR_VALIDATION);
    assert_string_equal(rep->items[0].problem, "unknown event type ''; expected one of " ALL_TYPES);

    rep = publish_check("{\"event\": \"agent.updated\\u0000x\", \"data\": {}}", ERR_VALIDATION);
    assert_int_equal(rep->n, 1);
    assert_string_equal(rep->items[0].problem,
                        "unknown event type 'agent.updated'; expected one of " ALL_TYPES);

    rep = publish_check("{\"event\": 5, \"data\": {}}", ERR_VALIDATION);
    assert_int_equal(rep->n, 1);
    assert_string_equal(rep->items[0].path, "event");
    assert_string_equal(rep->items[0].problem, "must be a string; expected one of " ALL_TYPES);

    rep = publish_check("{\"data\": {}}", ERR_VALIDATION);
    assert_int_equal(rep->n, 1);
    assert_string_equal(rep->items[0].path, "event");
    assert_string_equal(rep->items[0].problem, "required");

    /* An unknown type quoted back is cut at 64 bytes, on a character boundary. */
    rep = publish_check(
        "{\"event\": \""
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x\xc3\xa9\xc3\xa9\"}",
        ERR_VALIDATION);
    assert_int_equal(rep->n, 2);
    utf8 = json_string(rep->items[0].problem); /* NULL unless valid UTF-8 */
    assert_non_null(utf8);
    json_decref(utf8);
    assert_non_null(strstr(rep->items[0].problem, "\xc3\xa9x'; expected"));
}

static void
test_publish_data_member(void **state)
{
    struct schema_report *rep;

    (void)state;
    rep = publish_check("{\"event\": \"user.message\"}", ERR_VALIDATION);
    assert_int_equal(rep->n, 1);
    assert_string_equal(rep->items[0].path, "data");
    assert_string_equal(rep->items[0].problem, "required");

    rep = publish_check("{\"event\": \"user.message\", \"data\": [1]}", ERR_VALIDATION);
    assert_int_equal(rep->n, 1);
    assert_string_equal(rep->items[0].path, "data");
    assert_string_equal(rep->items[0].problem, "must be an object");

    rep = publish_check("{\"event\": \"user.message\", \"data\": null}", ERR_VALIDATION);
    assert_string_equal(rep->items[0].problem, "must be an object");

    /* With an unknown type, data is not checked against any type. */
    rep = publish_check("{\"event\": \"nope\", \"data\": {}}", ERR_VALIDATION);
    assert_int_equal(rep->n, 1);

    rep = publish_check("{\"event\": \"user.message\", \"data\": {\"message_id\": 1}}",
                        ERR_VALIDATION);
    assert_int_equal(rep->n, 4);
    assert_string_equal(rep->items[0].path, "data.conversation_id");
    assert_string_equal(rep->items[1].path, "data.message_id");
    assert_string_equal(rep->items[1].problem, NES);
    assert_string_equal(rep->items[2].path, "data.user_id");
    assert_string_equal(rep->items[3].path, "data.content");
}

static void
test_publish_timestamp(void **state)
{
    static const char *good[] = {
        "2024-01-01T12:00:00Z",   "2024-01-01T12:00:00.123Z", "2024-01-01T12:00:00.123456789Z",
        "2024-02-29T23:59:59Z",   "1970-01-01T00:00:00Z",     "2016-12-31T23:59:60Z",
        "9999-12-31T23:59:59.9Z",
    };
    static const char *bad[] = {
        "",
        "2024-01-01",
        "2024-01-01 12:00:00Z",
        "2024-01-01t12:00:00Z",
        "2024-01-01T12:00:00z",
        "2024-01-01T12:00:00",
        "2024-01-01T12:00:00+00:00",
        "2024-01-01T12:00:00.Z",
        "2024-01-01T12:00:00.1234567890Z",
        "2024-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-01-32T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T12:60:00Z",
        " 2024-01-01T12:00:00Z",
        "2024-01-01T12:00:00Z ",
        "24-01-01T12:00:00Z",
    };
    char text[256];
    struct schema_report *rep;
    size_t i;
    int64_t ms = 0;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!schema_timestamp_ok(good[i], NULL))
            fail_msg("'%s' should be accepted", good[i]);
        snprintf(text, sizeof(text),
                 "{\"event\": \"agent.updated\", \"timestamp\": \"%s\", "
                 "\"data\": {\"agent_id\": \"a\", \"updated_fields\": [\"x\"]}}",
                 good[i]);
        publish_check(text, 0);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (schema_timestamp_ok(bad[i], NULL))
            fail_msg("'%s' should be refused", bad[i]);
        snprintf(text, sizeof(text),
                 "{\"event\": \"agent.updated\", \"timestamp\": \"%s\", "
                 "\"data\": {\"agent_id\": \"a\", \"updated_fields\": [\"x\"]}}",
                 bad[i]);
        rep = publish_check(text, ERR_VALIDATION);
        assert_int_equal(rep->n, 1);
        assert_string_equal(rep->items[0].path, "timestamp");
        assert_string_equal(rep->items[0].problem,
                            "must be an RFC 3339 UTC timestamp such as 2024-01-01T12:00:00Z");
    }
    assert_true(schema_timestamp_ok("2024-01-01T12:00:00.5Z", &ms));
    assert_int_equal(ms, 1704110400500LL);

    rep = publish_check("{\"event\": \"agent.updated\", \"timestamp\": 1704110400, "
                        "\"data\": {\"agent_id\": \"a\", \"updated_fields\": [\"x\"]}}",
                        ERR_VALIDATION);
    assert_string_equal(rep->items[0].path, "timestamp");
    rep = publish_check(
        "{\"event\": \"agent.updated\", \"timestamp\": \"2024-01-01T12:00:00Z\\u0000\", "
        "\"data\": {\"agent_id\": \"a\", \"updated_fields\": [\"x\"]}}",
        ERR_VALIDATION);
    assert_string_equal(rep->items[0].path, "timestamp");
    /* null is the same as no timestamp */
    publish_check("{\"event\": \"agent.updated\", \"timestamp\": null, "
                  "\"data\": {\"agent_id\": \"a\", \"updated_fields\": [\"x\"]}}",
                  0);
}

static void
test_publish_unknown_members_and_order(void **state)
{
    struct schema_report *rep;
    json_t *fields;

    (void)state;
    rep = publish_check("{\"id\": \"evt_x\", \"event\": \"nope\", \"payload\": {}, "
                        "\"timestamp\": \"yesterday\"}",
                        ERR_VALIDATION);
    assert_int_equal(rep->n, 5);
    assert_string_equal(rep->items[0].path, "event");
    assert_string_equal(rep->items[1].path, "data");
    assert_string_equal(rep->items[1].problem, "required");
    assert_string_equal(rep->items[2].path, "timestamp");
    assert_string_equal(rep->items[3].path, "id");
    assert_string_equal(rep->items[3].problem, "unknown field; expected event, data, timestamp");
    assert_string_equal(rep->items[4].path, "payload");

    fields = schema_report_json(rep);
    assert_non_null(fields);
    assert_int_equal(json_array_size(fields), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 3), "path")),
                        "id");
    assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 1), "problem")),
                        "required");
    json_decref(fields);
}

static void
test_report_add_limits(void **state)
{
    static struct schema_report rep;
    char longpath[300];
    int i;

    (void)state;
    schema_report_init(&rep);
    memset(longpath, 'a', sizeof(longpath) - 3);
    memcpy(longpath + 126, "\xc3\xa9", 2); /* straddles the 127-byte cut */
    longpath[sizeof(longpath) - 1] = '\0';
    schema_report_add(&rep, longpath, "%s", "x");
    assert_int_equal(strlen(rep.items[0].path), 126);
    for (i = 1; i < 70; i++)
        schema_report_add(&rep, "p", "problem %d", i);
    assert_int_equal(rep.n, SCHEMA_MAX_PROBLEMS);
    assert_int_equal(rep.truncated, 1);
    assert_string_equal(rep.items[63].problem, "problem 63");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_rule),
        cmocka_unit_test(test_catalog_sweep),
        cmocka_unit_test(test_many_problems_at_once),
        cmocka_unit_test(test_report_truncated),
        cmocka_unit_test(test_data_not_object),
        cmocka_unit_test(test_publish_event_member),
        cmocka_unit_test(test_publish_data_member),
        cmocka_unit_test(test_publish_timestamp),
        cmocka_unit_test(test_publish_unknown_members_and_order),
        cmocka_unit_test(test_report_add_limits),
    };
    return torture_run_group_tests("schema", tests, NULL, NULL);
}
