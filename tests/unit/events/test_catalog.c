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
#include "util/buf.h"
#include "util/err.h"

/* CONTRACT §1, written out again by hand: name, description, required and optional fields. */
struct expected_type {
    const char *name;
    const char *description;
    const char *required;
    const char *optional;
};

static const struct expected_type contract[] = {
    {"conversation.started", "New conversation initiated", "conversation_id agent_id channel",
     "agent_name user_id initial_message user_email"},
    {"conversation.completed", "Conversation ended",
     "conversation_id agent_id duration_seconds messages_count was_escalated",
     "resolution_rate satisfaction_score"},
    {"conversation.escalated", "Conversation escalated to human", "conversation_id agent_id reason",
     "escalation_id escalated_to priority"},
    {"agent.response", "Agent generated response", "conversation_id agent_id message_id content",
     "response_time_ms confidence_score"},
    {"user.message", "User sent a message", "conversation_id message_id user_id content",
     "channel"},
    {"escalation.triggered", "Human escalation requested", "escalation_id conversation_id reason",
     "agent_id priority requested_by"},
    {"integration.sync", "Data synchronization completed",
     "integration_id integration_type sync_type records_synced status", "duration_seconds"},
    {"integration.error", "Integration error occurred",
     "integration_id integration_type error_code error_message", "retryable"},
    {"agent.updated", "Agent configuration updated", "agent_id updated_fields",
     "agent_name updated_by"},
};

#define NCONTRACT (sizeof(contract) / sizeof(contract[0]))

/* 1 when the space-separated list holds word. */
static int
list_has(const char *list, const char *word)
{
    size_t n = strlen(word);
    const char *p = list;

    while ((p = strstr(p, word)) != NULL) {
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
        p += n;
    }
    return 0;
}

static size_t
list_len(const char *list)
{
    size_t n = 0;
    const char *p;

    for (p = list; *p != '\0'; p++)
        n += (p == list || p[-1] == ' ') && *p != ' ';
    return n;
}

static void
test_types_match_contract(void **state)
{
    const struct catalog_type *t;
    size_t i, f;

    (void)state;
    assert_int_equal(catalog_type_count(), 9);
    assert_null(catalog_type_at(9));
    for (i = 0; i < NCONTRACT; i++) {
        t = catalog_type_at(i);
        assert_non_null(t);
        assert_string_equal(t->name, contract[i].name);
        assert_string_equal(t->description, contract[i].description);
        assert_ptr_equal(catalog_type_find(contract[i].name), t);
        assert_int_equal(t->nfields,
                         list_len(contract[i].required) + list_len(contract[i].optional));
        for (f = 0; f < t->nfields; f++) {
            const char *want = t->fields[f].required ? contract[i].required : contract[i].optional;

            if (!list_has(want, t->fields[f].name))
                fail_msg("%s: field %s is %s in the catalog but not in the contract", t->name,
                         t->fields[f].name, t->fields[f].required ? "required" : "optional");
        }
    }
}

static void
test_find_unknown(void **state)
{
    (void)state;
    assert_null(catalog_type_find("conversation"));
    assert_null(catalog_type_find("conversation.started "));
    assert_null(catalog_type_find("Conversation.Started"));
    assert_null(catalog_type_find(""));
    assert_null(catalog_type_find(NULL));
}

static void
test_type_names(void **state)
{
    char names[256], small[12];

    (void)state;
    assert_string_equal(catalog_type_names(names, sizeof(names)),
                        "conversation.started, conversation.completed, conversation.escalated, "
                        "agent.response, user.message, escalation.triggered, integration.sync, "
                        "integration.error, agent.updated");
    assert_string_equal(catalog_type_names(small, sizeof(small)), "conversatio");
}

/* The sample's text without the whitespace between tokens. */
static char *
compact(const char *s)
{
    struct buf b;
    int in_str = 0, esc = 0;

    buf_init(&b, 1 << 16);
    for (; *s != '\0'; s++) {
        if (in_str) {
            if (esc)
                esc = 0;
            else if (*s == '\\')
                esc = 1;
            else if (*s == '"')
                in_str = 0;
        } else if (*s == '"') {
            in_str = 1;
        } else if (*s == ' ' || *s == '\n') {
            continue;
        }
        assert_int_equal(buf_putc(&b, *s), 0);
    }
    return buf_steal(&b);
}

static void
test_guide_samples_exact(void **state)
{
    /* The guide's four example payloads, compacted by hand. */
    static const struct {
        const char *type;
        const char *data;
    } guide[] = {
        {"conversation.started",
         "{\"conversation_id\":\"conv-123\",\"agent_id\":\"agent-123\",\"agent_name\":\"Customer "
         "Support Agent\",\"channel\":\"chat\",\"user_id\":\"user-456\",\"user_email\":\"user@"
         "example.com\",\"initial_message\":\"Hello, I need help\"}"},
        {"conversation.completed",
         "{\"conversation_id\":\"conv-123\",\"agent_id\":\"agent-123\",\"duration_seconds\":300,"
         "\"messages_count\":8,\"resolution_rate\":1.0,\"satisfaction_score\":5,\"was_escalated\":"
         "false}"},
        {"agent.response",
         "{\"conversation_id\":\"conv-123\",\"agent_id\":\"agent-123\",\"message_id\":\"msg-789\","
         "\"content\":\"I can help you with that...\",\"response_time_ms\":1200,"
         "\"confidence_score\":0.95}"},
        {"integration.sync",
         "{\"integration_id\":\"int-456\",\"integration_type\":\"salesforce\",\"sync_type\":"
         "\"full\",\"records_synced\":150,\"duration_seconds\":45,\"status\":\"success\"}"},
    };
    char *c;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(guide) / sizeof(guide[0]); i++) {
        c = compact(catalog_type_find(guide[i].type)->sample);
        assert_string_equal(c, guide[i].data);
        free(c);
    }
}

static void
test_every_sample_validates(void **state)
{
    static struct schema_report rep;
    const struct catalog_type *t;
    json_error_t e;
    json_t *data;
    size_t i, f;

    (void)state;
    for (i = 0; (t = catalog_type_at(i)) != NULL; i++) {
        data = json_loads(t->sample, JSON_REJECT_DUPLICATES, &e);
        if (data == NULL)
            fail_msg("%s: sample does not parse: %s", t->name, e.text);
        schema_report_init(&rep);
        if (schema_data_check(t, data, "data", &rep) != 0)
            fail_msg("%s: sample fails: %s %s", t->name, rep.items[0].path, rep.items[0].problem);
        /* The samples show every field, optional ones too. */
        for (f = 0; f < t->nfields; f++) {
            if (json_object_get(data, t->fields[f].name) == NULL)
                fail_msg("%s: sample lacks %s", t->name, t->fields[f].name);
        }
        assert_int_equal(json_object_size(data), t->nfields);
        json_decref(data);
    }
}

static void
test_field_words(void **state)
{
    static const struct {
        const char *type, *field, *words;
    } cases[] = {
        {"conversation.started", "agent_id", "string"},
        {"conversation.started", "user_email", "string containing one @"},
        {"conversation.completed", "duration_seconds", "integer >= 0"},
        {"conversation.completed", "was_escalated", "boolean"},
        {"conversation.completed", "resolution_rate", "number between 0 and 1"},
        {"conversation.completed", "satisfaction_score", "integer between 1 and 5 or null"},
        {"conversation.escalated", "priority", "one of low, normal, high, urgent"},
        {"escalation.triggered", "requested_by", "one of user, agent, rule"},
        {"integration.sync", "sync_type", "one of full, incremental"},
        {"integration.sync", "status", "one of success, partial, failed"},
        {"integration.sync", "duration_seconds", "number >= 0"},
        {"agent.updated", "updated_fields", "non-empty array of strings"},
    };
    const struct catalog_type *t;
    char words[128];
    size_t i, f;
    int found;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t = catalog_type_find(cases[i].type);
        found = 0;
        for (f = 0; f < t->nfields; f++) {
            if (strcmp(t->fields[f].name, cases[i].field) != 0)
                continue;
            found = 1;
            assert_string_equal(catalog_field_describe(&t->fields[f], words, sizeof(words)),
                                cases[i].words);
        }
        assert_true(found);
    }
}

/* The listed field called name of the listed type called type. */
static json_t *
listed_field(json_t *root, const char *type, const char *name)
{
    json_t *t, *f;
    size_t i, j;

    json_array_foreach(json_object_get(root, "data"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "event")), type) != 0)
            continue;
        json_array_foreach(json_object_get(t, "fields"), j, f)
        {
            if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0)
                return f;
        }
    }
    return NULL;
}

static void
test_catalog_json(void **state)
{
    const struct catalog_type *ct;
    json_t *root, *list, *t, *sample, *f, *c;
    char *text;
    size_t i;

    (void)state;
    root = catalog_json();
    assert_non_null(root);
    list = json_object_get(root, "data");
    assert_true(json_is_array(list));
    /* The nine producers' types, then fluxhook's own four, marked as such. */
    assert_int_equal(json_array_size(list), 13);
    json_array_foreach(list, i, t)
    {
        ct = i < 9 ? catalog_type_at(i)
                   : catalog_own_find(json_string_value(json_object_get(t, "event")));
        assert_non_null(ct);
        assert_int_equal(json_object_size(t), i < 9 ? 4 : 5);
        if (i >= 9)
            assert_string_equal(json_string_value(json_object_get(t, "source")), "fluxhook");
        assert_string_equal(json_string_value(json_object_get(t, "event")), ct->name);
        assert_string_equal(json_string_value(json_object_get(t, "description")), ct->description);
        assert_int_equal(json_array_size(json_object_get(t, "fields")), ct->nfields);
        sample = json_loads(ct->sample, 0, NULL);
        assert_true(json_equal(sample, json_object_get(t, "sample")));
        json_decref(sample);
    }

    f = listed_field(root, "conversation.completed", "satisfaction_score");
    assert_non_null(f);
    assert_string_equal(json_string_value(json_object_get(f, "type")),
                        "integer between 1 and 5 or null");
    assert_true(json_is_false(json_object_get(f, "required")));
    c = json_object_get(f, "constraint");
    assert_int_equal(json_integer_value(json_object_get(c, "min")), 1);
    assert_int_equal(json_integer_value(json_object_get(c, "max")), 5);
    assert_true(json_is_true(json_object_get(c, "nullable")));

    f = listed_field(root, "conversation.completed", "conversation_id");
    assert_true(json_is_true(json_object_get(f, "required")));
    assert_null(json_object_get(f, "constraint"));
    assert_int_equal(json_object_size(f), 3);

    f = listed_field(root, "agent.response", "confidence_score");
    c = json_object_get(f, "constraint");
    assert_true(json_is_real(json_object_get(c, "min")));
    assert_true(json_number_value(json_object_get(c, "max")) == 1.0);
    assert_null(json_object_get(c, "nullable"));

    f = listed_field(root, "integration.sync", "status");
    c = json_object_get(json_object_get(f, "constraint"), "values");
    assert_int_equal(json_array_size(c), 3);
    assert_string_equal(json_string_value(json_array_get(c, 2)), "failed");

    text = json_dumps(root, JSON_COMPACT);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"type\":\"one of low, normal, high, urgent\""));
    free(text);
    json_decref(root);
}

static void
test_catalog_json_text(void **state)
{
    json_t *a, *b;
    char *text;
    size_t len = 0;

    (void)state;
    text = catalog_json_text(&len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    a = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    b = catalog_json();
    assert_non_null(a);
    assert_true(json_equal(a, b));
    /* the sample numbers as written in the guide */
    assert_non_null(strstr(text, "\"confidence_score\":0.95}"));
    assert_non_null(strstr(text, "\"resolution_rate\":1.0,"));
    assert_non_null(strstr(text, "\"sample\":{\"conversation_id\":\"conv-123\",\"agent_id\""));
    assert_true(strncmp(text, "{\"data\":[{\"event\":\"conversation.started\",", 41) == 0);
    assert_true(text[len - 1] == '}' && text[len - 2] == ']');
    json_decref(a);
    json_decref(b);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_match_contract),
        cmocka_unit_test(test_find_unknown),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_guide_samples_exact),
        cmocka_unit_test(test_every_sample_validates),
        cmocka_unit_test(test_field_words),
        cmocka_unit_test(test_catalog_json),
        cmocka_unit_test(test_catalog_json_text),
    };
    return torture_run_group_tests("catalog", tests, NULL, NULL);
}
