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
#include "events/envelope.h"
#include "events/events_int.h"
#include "util/err.h"
#include "util/id.h"

#define NOW 1704110400999LL /* 2024-01-01T12:00:00.999Z */

/* s with every ' turned into ", so JSON in this file stays readable. Static buffer. */
static const char *
dq(const char *s)
{
    static char out[2][8192];
    static int which;
    char *o = out[which ^= 1];
    size_t i;

    assert_true(strlen(s) < sizeof(out[0]));
    for (i = 0; s[i] != '\0'; i++)
        o[i] = s[i] == '\'' ? '"' : s[i];
    o[i] = '\0';
    return o;
}

/*
 * Publishes text from an exactly-sized heap copy (no NUL after it, so any
 * read past len trips AddressSanitizer). Returns the code.
 */
static int
publish(const char *text, struct event *ev, struct schema_report *rep, char *err, size_t errlen)
{
    size_t len = strlen(text);
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, text, len);
    memset(ev, 0, sizeof(*ev));
    rc = envelope_parse_publish(copy, len, NOW, ev, rep, err, errlen);
    free(copy);
    return rc;
}

/* Checks that body is the envelope of ev with exactly data_expected as data. */
static void
assert_envelope(const struct event *ev, const char *type, const char *ts, const char *data_expected)
{
    char want[8192];

    snprintf(want, sizeof(want),
             "{\"id\":\"%s\",\"event\":\"%s\",\"timestamp\":\"%s\",\"data\":%s}", ev->id, type, ts,
             data_expected);
    assert_non_null(ev->body);
    assert_string_equal(ev->body, want);
    assert_int_equal(ev->body_len, strlen(want));
    assert_string_equal(ev->type, type);
    assert_string_equal(ev->timestamp, ts);
}

/* Byte-exactness: input body, and the data the envelope must carry. Quotes written as '. */
static const struct {
    const char *body;
    const char *data;
} exact[] = {
    /* numbers exactly as sent */
    {"{'event': 'integration.sync', 'timestamp': '2024-01-01T12:00:00Z', 'data': {"
     "'integration_id': 'int-456', 'integration_type': 'salesforce', 'sync_type': 'full',"
     " 'records_synced': 150, 'status': 'success', 'duration_seconds': 0.95,"
     " 'x': [1e3, 1E+3, 2e-7, -0, -0.0, 0.1, 1.0, 12345678901234567890, -12345678901234567890,"
     " 100000000000000000000000000000000000000000.5, 0.30000000000000004]}}",
     "{'integration_id':'int-456','integration_type':'salesforce','sync_type':'full',"
     "'records_synced':150,'status':'success','duration_seconds':0.95,"
     "'x':[1e3,1E+3,2e-7,-0,-0.0,0.1,1.0,12345678901234567890,-12345678901234567890,"
     "100000000000000000000000000000000000000000.5,0.30000000000000004]}"},
    /* a huge integer in an int field passes and stays as sent */
    {"{'event': 'integration.sync', 'timestamp': '2024-01-01T12:00:00Z', 'data': {"
     "'integration_id': 'i', 'integration_type': 't', 'sync_type': 'incremental',"
     " 'records_synced': 12345678901234567890, 'status': 'partial'}}",
     "{'integration_id':'i','integration_type':'t','sync_type':'incremental',"
     "'records_synced':12345678901234567890,'status':'partial'}"},
    /* unicode: escapes stay escapes, raw UTF-8 stays raw, escaped NUL and slash too */
    {"{'event': 'user.message', 'timestamp': '2024-01-01T12:00:00Z', 'data': {"
     "'conversation_id': 'conv-\\u00e9', 'message_id': 'm', 'user_id': 'caf\xc3\xa9',"
     " 'content': '\\ud83d\\ude00 \xf0\x9f\x98\x80 \\u0000 \\/ \\b\\f\\n\\r\\t',"
     " '\\u006b\\u00e9y': '\xe2\x82\xac'}}",
     "{'conversation_id':'conv-\\u00e9','message_id':'m','user_id':'caf\xc3\xa9',"
     "'content':'\\ud83d\\ude00 \xf0\x9f\x98\x80 \\u0000 \\/ \\b\\f\\n\\r\\t',"
     "'\\u006b\\u00e9y':'\xe2\x82\xac'}"},
    /* key order as sent, extra fields kept, nested whitespace of every kind removed */
    {"{'event':'agent.updated','timestamp':'2024-01-01T12:00:00Z','data':\n\t{ 'z' : 1 ,\r\n"
     "  'updated_fields' : [ 'b' ,\t'a' ] , 'agent_id':'agent-1',\n"
     "  'a' : { 'm' : [ ] , 'k' : { } , 'n' : [ { } , [ [ null , true , false ] ] ] } ,"
     "  'm': 'x'  }\n}",
     "{'z':1,'updated_fields':['b','a'],'agent_id':'agent-1','a':{'m':[],'k':{},"
     "'n':[{},[[null,true,false]]]},'m':'x'}"},
    /* strings holding braces, brackets, quotes, backslashes, commas, colons and spaces */
    {"{'event': 'agent.response', 'timestamp': '2024-01-01T12:00:00Z', 'data': {"
     "'conversation_id': '} {', 'agent_id': '] [', 'message_id': '\\\\', "
     "'content': '  \\'data\\': {\\'x\\': 1} , :  \\\\\\' \\\\\\\\ '}}",
     "{'conversation_id':'} {','agent_id':'] [','message_id':'\\\\',"
     "'content':'  \\'data\\': {\\'x\\': 1} , :  \\\\\\' \\\\\\\\ '}"},
    /* data first, escaped member names, a nested 'data' key and 'data' strings */
    {"{ 'timestamp' : '2024-01-01T12:00:00.5Z' , '\\u0064ata' : {'agent_id': 'data',"
     " 'updated_fields': ['data'], 'data': {'data': 'data'}}, '\\u0065vent': 'agent.updated' }",
     "{'agent_id':'data','updated_fields':['data'],'data':{'data':'data'}}"},
};

static void
test_envelope_bytes_exact(void **state)
{
    static struct schema_report rep;
    char err[256], data[8192];
    struct event ev;
    json_t *env, *in;
    const char *d;
    size_t i, dlen;
    int rc;

    (void)state;
    for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        snprintf(data, sizeof(data), "%s", dq(exact[i].data));
        rc = publish(dq(exact[i].body), &ev, &rep, err, sizeof(err));
        if (rc != 0)
            fail_msg("case %zu: rc %d (%s) %s: %s", i, rc, err, rep.items[0].path,
                     rep.items[0].problem);
        in = json_loads(dq(exact[i].body), JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
        assert_non_null(in);
        assert_envelope(&ev, json_string_value(json_object_get(in, "event")),
                        json_is_string(json_object_get(in, "timestamp"))
                            ? json_string_value(json_object_get(in, "timestamp"))
                            : "2024-01-01T12:00:00Z",
                        data);
        /* and the envelope is JSON whose data equals what was sent */
        env = json_loadb(ev.body, ev.body_len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
        assert_non_null(env);
        assert_true(json_equal(json_object_get(env, "data"), json_object_get(in, "data")));
        assert_string_equal(json_string_value(json_object_get(env, "id")), ev.id);
        d = envelope_data(ev.body, ev.body_len, &dlen);
        assert_non_null(d);
        assert_int_equal(dlen, strlen(data));
        assert_memory_equal(d, data, dlen);
        json_decref(env);
        json_decref(in);
        event_cleanup(&ev);
    }
}

static void
test_every_sample_publishes(void **state)
{
    static struct schema_report rep;
    const struct catalog_type *t;
    char body[4096], err[256];
    struct event ev;
    json_t *env, *sample;
    size_t i;

    (void)state;
    for (i = 0; (t = catalog_type_at(i)) != NULL; i++) {
        snprintf(body, sizeof(body),
                 "{\n  \"event\": \"%s\",\n  \"timestamp\": \"2024-01-01T12:05:00Z\",\n"
                 "  \"data\": %s\n}\n",
                 t->name, t->sample);
        if (publish(body, &ev, &rep, err, sizeof(err)) != 0)
            fail_msg("%s: %s", t->name, err);
        env = json_loadb(ev.body, ev.body_len, 0, NULL);
        sample = json_loads(t->sample, 0, NULL);
        assert_true(json_equal(json_object_get(env, "data"), sample));
        assert_string_equal(json_string_value(json_object_get(env, "event")), t->name);
        assert_string_equal(json_string_value(json_object_get(env, "timestamp")),
                            "2024-01-01T12:05:00Z");
        assert_int_equal(json_object_size(env), 4);
        json_decref(env);
        json_decref(sample);
        event_cleanup(&ev);
    }
}

static void
test_guide_example_exact(void **state)
{
    static struct schema_report rep;
    struct event ev;

    (void)state;
    /* The guide's first example, as a producer would paste it. */
    assert_int_equal(publish("{\n\"event\": \"conversation.started\",\n"
                             "\"timestamp\": \"2024-01-01T12:00:00Z\",\n\"data\": {\n"
                             "\"conversation_id\": \"conv-123\",\n\"agent_id\": \"agent-123\",\n"
                             "\"agent_name\": \"Customer Support Agent\",\n\"channel\": \"chat\",\n"
                             "\"user_id\": \"user-456\",\n\"user_email\": \"user@example.com\",\n"
                             "\"initial_message\": \"Hello, I need help\"\n}\n}\n",
                             &ev, &rep, NULL, 0),
                     0);
    assert_envelope(
        &ev, "conversation.started", "2024-01-01T12:00:00Z",
        "{\"conversation_id\":\"conv-123\",\"agent_id\":\"agent-123\",\"agent_name\":"
        "\"Customer Support Agent\",\"channel\":\"chat\",\"user_id\":\"user-456\","
        "\"user_email\":\"user@example.com\",\"initial_message\":\"Hello, I need help\"}");
    assert_true(strncmp(ev.body, "{\"id\":\"evt_", 11) == 0);
    event_cleanup(&ev);
}

static void
test_id_and_generated_timestamp(void **state)
{
    static struct schema_report rep;
    struct event a, b;
    const char *body = "{\"event\": \"user.message\", \"data\": {\"conversation_id\": \"c\","
                       " \"message_id\": \"m\", \"user_id\": \"u\", \"content\": \"hi\"}}";
    const char *with_null = "{\"event\": \"user.message\", \"timestamp\": null, \"data\": "
                            "{\"conversation_id\": \"c\", \"message_id\": \"m\", \"user_id\": "
                            "\"u\", \"content\": \"hi\"}}";

    (void)state;
    assert_int_equal(publish(body, &a, &rep, NULL, 0), 0);
    assert_int_equal(publish(with_null, &b, &rep, NULL, 0), 0);
    assert_true(id_valid("evt_", a.id));
    assert_true(id_valid("evt_", b.id));
    assert_true(strcmp(a.id, b.id) < 0);
    assert_string_equal(a.timestamp, "2024-01-01T12:00:00Z");
    assert_string_equal(b.timestamp, "2024-01-01T12:00:00Z");
    assert_int_equal(a.created_at, NOW);
    assert_envelope(&a, "user.message", "2024-01-01T12:00:00Z",
                    "{\"conversation_id\":\"c\",\"message_id\":\"m\",\"user_id\":\"u\","
                    "\"content\":\"hi\"}");
    event_cleanup(&a);
    event_cleanup(&b);
    assert_null(a.body);
}

static void
test_other_members_untouched(void **state)
{
    static struct schema_report rep;
    const char *body = "{\"event\":\"agent.updated\",\"data\":{\"agent_id\":\"a\","
                       "\"updated_fields\":[\"x\"]}}";
    struct event ev;

    (void)state;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.account_id, sizeof(ev.account_id), "%s", "acct_x");
    snprintf(ev.idempotency_key, sizeof(ev.idempotency_key), "%s", "k1");
    ev.deliveries = 7;
    assert_int_equal(envelope_parse_publish(body, strlen(body), NOW, &ev, &rep, NULL, 0), 0);
    assert_string_equal(ev.account_id, "acct_x");
    assert_string_equal(ev.idempotency_key, "k1");
    assert_int_equal(ev.deliveries, 7);
    event_cleanup(&ev);
}

/* A body that cannot be read for want of memory is not the client's malformed JSON. */
static void
test_out_of_memory_is_not_malformed(void **state)
{
    static struct schema_report rep;
    const char *body = "{\"event\":\"agent.updated\",\"data\":{\"agent_id\":\"a\","
                       "\"updated_fields\":[\"x\"]}}";
    char err[200];
    struct event ev;

    (void)state;
    memset(&ev, 0, sizeof(ev));
    if (torture_fail_next(1) != 0)
        skip();
    assert_int_equal(envelope_parse_publish(body, strlen(body), NOW, &ev, &rep, err, sizeof(err)),
                     ERR_NOMEM);
    assert_null(strstr(err, "malformed"));
    event_cleanup(&ev);
    assert_int_equal(envelope_parse_publish(body, strlen(body), NOW, &ev, &rep, NULL, 0), 0);
    event_cleanup(&ev);
}

static void
test_parse_errors(void **state)
{
    static const struct {
        const char *body;
        const char *err;
    } cases[] = {
        {"{\"event\":}", "malformed JSON at line 1 column 10: unexpected token near '}'"},
        {"{\n\"event\": \"x\",\n\"data\": {,}}",
         "malformed JSON at line 3 column 10: string or '}' expected near ','"},
        {"", "request body is empty; expected a JSON object"},
        {"   ", "malformed JSON at line 1 column 3: '[' or '{' expected near end of file"},
        {"[1]", "request body must be a JSON object"},
        {"[]", "request body must be a JSON object"},
        {"\"str\"", "malformed JSON at line 1 column 5: '[' or '{' expected near '\"str\"'"},
        {"{} x", "malformed JSON at line 1 column 4: end of file expected near 'x'"},
        {"{\"a\":1e400}", "malformed JSON at line 1 column 10: real number overflow near '1e400'"},
        {"{\"a\":\"\xff\"}", NULL},
        {"\xef\xbb\xbf{}", NULL},
        {"{\"a\":1,}", NULL},
        {"{'a':1}", NULL},
        {"{\"a\":01}", NULL},
        {"{\"a\":NaN}", NULL},
        {"{\"a\":\"tab\there\"}", NULL},
        {"{\"a\\u0000b\":1}", NULL},
        {"{\"a\":[1,2}", NULL},
    };
    static struct schema_report rep;
    char err[256];
    struct event ev;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(publish(cases[i].body, &ev, &rep, err, sizeof(err)), ERR_PARSE);
        assert_null(ev.body);
        assert_int_equal(rep.n, 0);
        if (cases[i].err != NULL)
            assert_string_equal(err, cases[i].err);
        else
            assert_true(strncmp(err, "malformed JSON at line ", 23) == 0);
    }
    /* a raw NUL byte, which jansson skips after a number, is refused */
    assert_int_equal(
        envelope_parse_publish("{\"a\":[1\0,2]}", 13, NOW, &ev, &rep, err, sizeof(err)), ERR_PARSE);
    assert_string_equal(err, "malformed JSON at line 1 column 8: NUL byte");
    assert_int_equal(
        envelope_parse_publish("{\n\"a\":\"\0\"}", 9, NOW, &ev, &rep, err, sizeof(err)), ERR_PARSE);
    assert_string_equal(err, "malformed JSON at line 2 column 6: NUL byte");
    assert_int_equal(envelope_build("user.message", "{\"a\":1\0}", 8, NULL, NOW, &ev), ERR_INVAL);
    /* a tiny err buffer is cut, not overrun */
    assert_int_equal(publish("[1]", &ev, &rep, err, 8), ERR_PARSE);
    assert_string_equal(err, "request");
}

static void
test_validation_problems(void **state)
{
    static struct schema_report rep;
    char err[256];
    struct event ev;

    (void)state;
    assert_int_equal(publish(dq("{'event': 'conversation.completed', 'dat': {}, 'data': {"
                                "'conversation_id': 'c', 'agent_id': '', 'duration_seconds': 5.0,"
                                " 'messages_count': -12345678901234567890, 'was_escalated': true,"
                                " 'satisfaction_score': 12345678901234567890, 'extra': 1}}"),
                             &ev, &rep, err, sizeof(err)),
                     ERR_VALIDATION);
    assert_null(ev.body);
    assert_string_equal(err, "the event breaks the catalog");
    assert_int_equal(rep.n, 5);
    assert_string_equal(rep.items[0].path, "data.agent_id");
    assert_string_equal(rep.items[0].problem, "must be a non-empty string");
    assert_string_equal(rep.items[1].path, "data.duration_seconds");
    assert_string_equal(rep.items[1].problem, "must be an integer >= 0");
    assert_string_equal(rep.items[2].path, "data.messages_count");
    assert_string_equal(rep.items[2].problem, "must be an integer >= 0");
    assert_string_equal(rep.items[3].path, "data.satisfaction_score");
    assert_string_equal(rep.items[3].problem, "must be an integer between 1 and 5 or null");
    assert_string_equal(rep.items[4].path, "dat");
    assert_string_equal(rep.items[4].problem, "unknown field; expected event, data, timestamp");

    /* a huge integer behind an escaped name is still checked as that field */
    assert_int_equal(publish(dq("{'event': 'conversation.completed', 'data': {"
                                "'conversation_id': 'c', 'agent_id': 'a', 'duration_seconds': 1,"
                                " 'messages_count': 2, 'was_escalated': false,"
                                " '\\u0073atisfaction_score': 99999999999999999999}}"),
                             &ev, &rep, err, sizeof(err)),
                     ERR_VALIDATION);
    assert_int_equal(rep.n, 1);
    assert_string_equal(rep.items[0].path, "data.satisfaction_score");

    /* while 5 stays fine and 5.0 does not, with or without a huge integer nearby */
    assert_int_equal(publish(dq("{'event': 'conversation.completed', 'data': {"
                                "'conversation_id': 'c', 'agent_id': 'a', 'duration_seconds': 5,"
                                " 'messages_count': 9223372036854775807, 'was_escalated': false,"
                                " 'satisfaction_score': 5, 'x': 99999999999999999999}}"),
                             &ev, &rep, err, sizeof(err)),
                     0);
    event_cleanup(&ev);

    assert_int_equal(publish(dq("{'event': 'nope', 'data': 7, 'timestamp': 'now'}"), &ev, &rep, err,
                             sizeof(err)),
                     ERR_VALIDATION);
    assert_int_equal(rep.n, 3);
    assert_string_equal(rep.items[0].path, "event");
    assert_string_equal(rep.items[1].path, "data");
    assert_string_equal(rep.items[1].problem, "must be an object");
    assert_string_equal(rep.items[2].path, "timestamp");
}

static void
test_duplicate_keys(void **state)
{
    static const struct {
        const char *body, *path;
    } cases[] = {
        {"{'event': 'a', 'event': 'b', 'data': {}}", "event"},
        {"{'event': 'user.message', 'data': {'meta': {'k': 1, 'k': 2}}}", "data.meta.k"},
        {"{'event': 'user.message', 'data': {'list': [{'k': 1}, {'j': 1, 'j': 2}]}}",
         "data.list[1].j"},
        {"{'event': 'user.message', 'data': {'a': 1, '\\u0061': 2}}", "data.a"},
        {"{'event': 'user.message', 'data': {'n': 123456789012345678901, 'n': 1}}", "data.n"},
        {"{'data': {'x': [[], [[{'a': {'b': [0, 1, {'c': 1, 'c': 1}]}}]]]}}",
         "data.x[1][0][0].a.b[2].c"},
    };
    static struct schema_report rep;
    char err[256];
    struct event ev;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(publish(dq(cases[i].body), &ev, &rep, err, sizeof(err)), ERR_VALIDATION);
        assert_int_equal(rep.n, 1);
        assert_string_equal(rep.items[0].path, cases[i].path);
        assert_string_equal(rep.items[0].problem, "duplicate key");
        assert_null(ev.body);
    }
}

static void
test_build_samples(void **state)
{
    const struct catalog_type *t;
    struct event ev;
    json_t *env, *sample;
    size_t i;

    (void)state;
    for (i = 0; (t = catalog_type_at(i)) != NULL; i++) {
        memset(&ev, 0, sizeof(ev));
        assert_int_equal(envelope_build(t->name, NULL, 0, NULL, NOW, &ev), 0);
        assert_true(id_valid("evt_", ev.id));
        assert_string_equal(ev.timestamp, "2024-01-01T12:00:00Z");
        assert_int_equal(ev.created_at, NOW);
        env = json_loadb(ev.body, ev.body_len, 0, NULL);
        sample = json_loads(t->sample, 0, NULL);
        assert_true(json_equal(json_object_get(env, "data"), sample));
        assert_null(strstr(ev.body, "\": ")); /* compacted */
        json_decref(env);
        json_decref(sample);
        event_cleanup(&ev);
    }
    memset(&ev, 0, sizeof(ev));
    assert_int_equal(envelope_build("agent.response", catalog_type_find("agent.response")->sample,
                                    strlen(catalog_type_find("agent.response")->sample),
                                    "2024-01-01T12:01:00Z", NOW, &ev),
                     0);
    assert_envelope(&ev, "agent.response", "2024-01-01T12:01:00Z",
                    "{\"conversation_id\":\"conv-123\",\"agent_id\":\"agent-123\",\"message_id\":"
                    "\"msg-789\",\"content\":\"I can help you with that...\",\"response_time_ms\":"
                    "1200,\"confidence_score\":0.95}");
    event_cleanup(&ev);
}

static void
test_build_errors(void **state)
{
    struct event ev;
    const char *big =
        "{\"integration_id\": \"i\", \"integration_type\": \"t\", \"sync_type\":"
        " \"full\", \"records_synced\": 99999999999999999999, \"status\": \"failed\"}";

    (void)state;
    memset(&ev, 0, sizeof(ev));
    assert_int_equal(envelope_build("nope", NULL, 0, NULL, NOW, &ev), ERR_INVAL);
    assert_int_equal(envelope_build("user.message", NULL, 0, "2024-01-01", NOW, &ev), ERR_INVAL);
    assert_int_equal(envelope_build("user.message", "[1]", 3, NULL, NOW, &ev), ERR_INVAL);
    assert_int_equal(envelope_build("user.message", "{", 1, NULL, NOW, &ev), ERR_INVAL);
    assert_int_equal(envelope_build("user.message", "{} {}", 5, NULL, NOW, &ev), ERR_INVAL);
    assert_int_equal(envelope_build("user.message", "{}", 2, NULL, NOW, &ev), ERR_VALIDATION);
    assert_null(ev.body);
    assert_int_equal(envelope_build("integration.sync", big, strlen(big), NULL, NOW, &ev), 0);
    assert_non_null(strstr(ev.body, "\"records_synced\":99999999999999999999,"));
    event_cleanup(&ev);
}

/* envelope_data on s, a C string. */
static const char *
data_of(const char *s, size_t *n)
{
    return envelope_data(s, strlen(s), n);
}

static void
test_envelope_data_shape(void **state)
{
    size_t n = 0;

    (void)state;
    assert_null(envelope_data(NULL, 0, &n));
    assert_null(data_of("{}", &n));
    assert_null(data_of("{\"id\":\"x\",\"data\":}", &n));
    assert_null(data_of("{\"id\":\"x\",\"event\":\"e\"}", &n));
    assert_null(data_of("{\"id\":\"x\",\"data\":1", &n));
    assert_non_null(data_of("{\"id\":\"x\",\"data\":1}", &n));
    assert_int_equal(n, 1);
}

/* The scanner on its own, including text that is not JSON: it must fail cleanly. */
/* What test_batch saw of each item. */
struct batch_seen {
    int n;
    int errs[8];
    char data[8][256];
    char keys[8][EVENT_IDEMPOTENCY_MAX];
    char paths[8][SCHEMA_PATH_MAX];
    char types[8][EVENT_TYPE_MAX];
    char stamps[8][CLOCK_RFC3339_MAX];
};

static int
batch_seen_item(void *ctx, size_t i, struct event *ev, int err, const struct schema_report *rep,
                const char *why)
{
    struct batch_seen *seen = ctx;
    const char *d;
    size_t dlen;

    assert_int_equal(i, seen->n);
    assert_true(i < 8);
    seen->errs[i] = err;
    if (ev != NULL) {
        d = envelope_data(ev->body, ev->body_len, &dlen);
        assert_non_null(d);
        snprintf(seen->data[i], sizeof(seen->data[i]), "%.*s", (int)dlen, d);
        snprintf(seen->keys[i], sizeof(seen->keys[i]), "%s", ev->idempotency_key);
        snprintf(seen->types[i], sizeof(seen->types[i]), "%s", ev->type);
        snprintf(seen->stamps[i], sizeof(seen->stamps[i]), "%s", ev->timestamp);
    } else {
        assert_non_null(why);
        if (rep->n > 0)
            snprintf(seen->paths[i], sizeof(seen->paths[i]), "%s", rep->items[0].path);
    }
    seen->n++;
    return 0;
}

static int
batch(const char *text, struct batch_seen *seen, struct schema_report *rep, char *err)
{
    size_t len = strlen(text);
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, text, len);
    memset(seen, 0, sizeof(*seen));
    rc = envelope_parse_batch(copy, len, 4, NOW, batch_seen_item, seen, rep, err, 256);
    free(copy);
    return rc;
}

static void
test_batch(void **state)
{
    static struct schema_report rep;
    struct batch_seen seen;
    char err[256];

    (void)state;
    /* Items in order, each with its own bytes, key and problems. */
    assert_int_equal(batch(dq("{'events': [{'event':'agent.response','data':{'conversation_id':"
                              "'c','agent_id':'a','message_id':'m','content':'x', 'n': 1.50e1}"
                              ",'idempotency_key':'k-1'}, 7, {'event':'agent.response','data'"
                              ":{}}, {'event':'agent.response','data':{'conversation_id':'c',"
                              "'agent_id':'a','message_id':'m','content':'x'},"
                              "'idempotency_key':''}]}"),
                           &seen, &rep, err),
                     0);
    assert_int_equal(seen.n, 4);
    assert_int_equal(seen.errs[0], 0);
    assert_string_equal(seen.data[0],
                        dq("{'conversation_id':'c','agent_id':'a','message_id':'m','content':'x',"
                           "'n':1.50e1}"));
    assert_string_equal(seen.keys[0], "k-1");
    assert_int_equal(seen.errs[1], ERR_INVAL);
    assert_int_equal(seen.errs[2], ERR_VALIDATION);
    assert_string_equal(seen.paths[2], "data.conversation_id");
    assert_int_equal(seen.errs[3], ERR_VALIDATION);
    assert_string_equal(seen.paths[3], "idempotency_key");
    /* The body as a whole. */
    assert_int_equal(batch("{\"events\": [", &seen, &rep, err), ERR_PARSE);
    assert_int_equal(batch("[]", &seen, &rep, err), ERR_PARSE);
    assert_int_equal(batch("{\"events\": []}", &seen, &rep, err), ERR_VALIDATION);
    assert_string_equal(rep.items[0].path, "events");
    assert_int_equal(batch("{\"events\": [1,2,3,4,5]}", &seen, &rep, err), ERR_VALIDATION);
    assert_int_equal(batch("{\"events\": [1], \"x\": 1}", &seen, &rep, err), ERR_VALIDATION);
    assert_string_equal(rep.items[0].path, "x");
    assert_int_equal(batch("{\"events\": [{\"a\":1,\"a\":2}]}", &seen, &rep, err),
                     ERR_VALIDATION);
    assert_string_equal(rep.items[0].path, "events[0].a");
    assert_int_equal(seen.n, 0);
}

static void
test_rawjson(void **state)
{
    static const char *broken[] = {
        "",
        "{",
        "{\"a\"",
        "{\"a\":",
        "{\"a\":1,",
        "{\"a\":[1,2",
        "{\"a\":\"x\\",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "[1]",
        "{\"a\":}",
        "{1:2}",
    };
    struct rawjson_span whole, v;
    char out[16];
    size_t i;
    const char *s;

    (void)state;
    for (i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        whole.start = 0;
        whole.end = strlen(broken[i]);
        assert_true(rawjson_member_find(broken[i], whole, "zzz", &v) != 0);
    }
    s = " { \"a\" : [ 1 , \"]\" ] , \"b\" : { \"c\" : null } } ";
    whole.start = 0;
    whole.end = strlen(s);
    assert_int_equal(rawjson_member_find(s, whole, "b", &v), 0);
    assert_int_equal(v.end - v.start, strlen("{ \"c\" : null }"));
    assert_int_equal(rawjson_member_find(s, whole, "c", &v), ERR_NOTFOUND);
    assert_int_equal(rawjson_path_at(s, strlen(s), 34, out, sizeof(out)), 0);
    assert_string_equal(out, "b.c");
    assert_int_equal(rawjson_path_at(s, strlen(s), 33, out, sizeof(out)), ERR_NOTFOUND);

    /* Escapes: a quote after a backslash is data, a quote after an escaped backslash ends. */
    {
        static const struct {
            const char *json;
            const char *b;
        } esc[] = {
            {"{\"a\":\"x\\\"y\",\"b\":1}", "1"},
            {"{\"a\":\"\\\\\",\"b\":\"2\"}", "\"2\""},
            {"{\"a\":\"\\\\\\\"\\\\\",\"b\":[3]}", "[3]"},
            {"{\"a\\\"\":\"\\u0022\",\"b\":{}}", "{}"},
        };

        for (i = 0; i < sizeof(esc) / sizeof(esc[0]); i++) {
            whole.start = 0;
            whole.end = strlen(esc[i].json);
            assert_int_equal(rawjson_member_find(esc[i].json, whole, "b", &v), 0);
            assert_int_equal(v.end - v.start, strlen(esc[i].b));
            assert_memory_equal(esc[i].json + v.start, esc[i].b, strlen(esc[i].b));
        }
        s = "{\"a\":\"x\\\"}";
        whole.start = 0;
        whole.end = strlen(s);
        assert_true(rawjson_member_find(s, whole, "b", &v) != 0);
    }

    assert_int_equal(rawjson_utf8_copy(out, 4, "ab\xc3\xa9", 4), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(rawjson_utf8_copy(out, 5, "ab\xc3\xa9", 4), 4);
    assert_int_equal(rawjson_utf8_copy(out, 5, "a\0b", 3), 1);
    assert_int_equal(rawjson_utf8_copy(out, 3, "\xe2\x82\xac", 3), 0);
}

/* Which way quick_publish() must go on a body: take it, or leave it to jansson. */
enum quick_want { QUICK_TAKES, QUICK_DECLINES };

/*
 * quick_publish() and the jansson path on text (len bytes, from an
 * exactly-sized heap copy): when the quick path takes a body, jansson takes
 * it too and builds the same envelope; want says which way the quick path
 * goes.
 */
static void
assert_quick_agrees(const char *text, size_t len, enum quick_want want)
{
    static struct schema_report rep;
    struct event q, j;
    char *copy = malloc(len > 0 ? len : 1);
    size_t idlen;
    int qrc, jrc;

    assert_non_null(copy);
    memcpy(copy, text, len);
    memset(&q, 0, sizeof(q));
    memset(&j, 0, sizeof(j));
    qrc = quick_publish(copy, len, NOW, &q);
    jrc = envelope_publish_jansson(copy, len, NOW, &j, &rep, NULL, 0);
    free(copy);
    if (qrc == ERR_NOMEM || jrc == ERR_NOMEM) { /* torture mode */
        event_cleanup(&q);
        event_cleanup(&j);
        fail();
    }
    if (want == QUICK_TAKES)
        assert_int_equal(qrc, 0);
    else
        assert_int_equal(qrc, ERR_PARSE);
    if (qrc == 0) {
        assert_int_equal(jrc, 0);
        assert_string_equal(q.type, j.type);
        assert_string_equal(q.timestamp, j.timestamp);
        assert_int_equal(q.created_at, j.created_at);
        /* The same bytes but for the new id. */
        idlen = strlen(q.id);
        assert_int_equal(strlen(j.id), idlen);
        assert_int_equal(q.body_len, j.body_len);
        assert_string_equal(q.body + 7 + idlen, j.body + 7 + idlen);
        assert_memory_equal(q.body, j.body, 7);
    } else {
        assert_null(q.body);
        assert_string_equal(q.id, "");
    }
    event_cleanup(&q);
    event_cleanup(&j);
}

static void
test_quick_path_agrees(void **state)
{
    static const struct {
        const char *body; /* ' stands for " */
        enum quick_want want;
    } cases[] = {
        /* What bench/http_load.c publishes, spaced out, with a timestamp, with null. */
        {"{'event':'user.message','data':{'conversation_id':'conv-1','agent_id':'agent-7',"
         "'message_id':'msg-1','user_id':'user-1','content':'Hello','integration_id':'int-1',"
         "'records_synced':5,'status':'success'}}",
         QUICK_TAKES},
        {" {\n 'event' : 'user.message' ,\t'data' : { 'conversation_id' : 'c' , 'message_id':"
         "'m','user_id':'u','content':'x' } , 'timestamp' : '2024-05-01T10:00:00Z' }\r\n ",
         QUICK_TAKES},
        {"{'timestamp':null,'data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x','channel':'chat'},'event':'user.message'}",
         QUICK_TAKES},
        /* A member named data inside data is not the one the catalog reads. */
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x','data':{'content':''}}}",
         QUICK_TAKES},
        /* Tokens kept as sent; escapes and UTF-8 in strings the catalog does not read. */
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'a\\n\\u00e9\\u0000\\'\\\\\\/ \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80',"
         "'x':[0.95,1e3,-0,1E-2,-12.5e+3,true,false,null,{},[],{'a':{'b':[1,{'c':2}]}}]}}",
         QUICK_TAKES},
        /* Every kind of field the catalog checks, in range. */
        {"{'event':'conversation.completed','data':{'conversation_id':'c','agent_id':'a',"
         "'duration_seconds':12,'messages_count':3,'satisfaction_score':5,'was_escalated':false,"
         "'resolution_rate':0.5}}",
         QUICK_TAKES},
        {"{'event':'integration.sync','data':{'integration_id':'i','integration_type':'crm',"
         "'sync_type':'full','records_synced':0,'status':'success','duration_seconds':1.5}}",
         QUICK_TAKES},
        {"{'event':'agent.updated','data':{'agent_id':'a','updated_fields':['x','y']}}",
         QUICK_TAKES},
        /* Left to jansson though valid: escapes where compared, pairs, big integers, depth. */
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x','ext\\u0061':1}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'\\ud83d\\ude00'}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x','n':12345678901234567890}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x','d':[[[[[[[[[[1]]]]]]]]]]}}",
         QUICK_DECLINES},
        {"{'event':'user\\u002emessage','data':{'conversation_id':'c','message_id':'m',"
         "'user_id':'u','content':'x'}}",
         QUICK_DECLINES},
        /* Refused by both: JSON errors. */
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'\xff'}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'\xc0\xaf'}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'\xed\xa0\x80'}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'\xf4\x90\x80\x80'}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'a\tb'}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x','x':{'a':1,'a':2}}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x','x':1e999}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x','x':01}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x','x':1.}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x','x':[1,]}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x','x':tru}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x'}} x",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'\\x'}}",
         QUICK_DECLINES},
        {"[]", QUICK_DECLINES},
        {"", QUICK_DECLINES},
        /* Refused by both: the catalog. */
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u'}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':''}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x'},'extra':1}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x'},'timestamp':'yesterday'}",
         QUICK_DECLINES},
        {"{'event':'endpoint.disabled','data':{}}", QUICK_DECLINES},
        {"{'event':'user.message','data':[]}", QUICK_DECLINES},
        {"{'event':'user.message','data':'x'}", QUICK_DECLINES},
        /* data twice, whichever of the two would pass: data's members are read in the one pass. */
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'x'},'data':{'conversation_id':'c','message_id':'m','user_id':'u',"
         "'content':'y'}}",
         QUICK_DECLINES},
        {"{'event':'user.message','data':{'conversation_id':'c','message_id':'m','user_id':'u'},"
         "'data':{'conversation_id':'c','message_id':'m','user_id':'u','content':'y'}}",
         QUICK_DECLINES},
        {"{'event':'integration.sync','data':{'integration_id':'i','integration_type':'crm',"
         "'sync_type':'full','records_synced':-1,'status':'success'}}",
         QUICK_DECLINES},
        {"{'event':'integration.sync','data':{'integration_id':'i','integration_type':'crm',"
         "'sync_type':'full','records_synced':1.0,'status':'success'}}",
         QUICK_DECLINES},
        {"{'event':'integration.sync','data':{'integration_id':'i','integration_type':'crm',"
         "'sync_type':'fully','records_synced':1,'status':'success'}}",
         QUICK_DECLINES},
        {"{'event':'conversation.completed','data':{'conversation_id':'c','agent_id':'a',"
         "'duration_seconds':12,'messages_count':3,'satisfaction_score':5,'was_escalated':0,"
         "'resolution_rate':0.5}}",
         QUICK_DECLINES},
        {"{'event':'conversation.completed','data':{'conversation_id':'c','agent_id':'a',"
         "'duration_seconds':12,'messages_count':3,'satisfaction_score':5,'was_escalated':true,"
         "'resolution_rate':1.5}}",
         QUICK_DECLINES},
        {"{'event':'agent.updated','data':{'agent_id':'a','updated_fields':[]}}", QUICK_DECLINES},
        {"{'event':'agent.updated','data':{'agent_id':'a','updated_fields':['x','']}}",
         QUICK_DECLINES},
    };
    static const char nul_body[] = "{\"event\":\"user.message\",\"data\":{\"conversation_id\":"
                                   "\"c\",\"message_id\":\"m\",\"user_id\":\"u\",\"content\":"
                                   "\"x\"},\"timestamp\":null}\0";
    char body[1024];
    const struct catalog_type *t;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case %zu\n", i);
        assert_quick_agrees(dq(cases[i].body), strlen(cases[i].body), cases[i].want);
    }
    /* A NUL byte after the object, and inside it. */
    assert_quick_agrees(nul_body, sizeof(nul_body) - 1, QUICK_DECLINES);
    assert_quick_agrees(nul_body, sizeof(nul_body) - 2, QUICK_TAKES);
    /* Every catalog sample: whichever way the quick path goes, the paths agree. */
    for (i = 0; (t = catalog_type_at(i)) != NULL; i++) {
        snprintf(body, sizeof(body), "{\"event\":\"%s\",\"data\":%s}", t->name, t->sample);
        assert_quick_agrees(body, strlen(body), QUICK_TAKES);
    }
}

/*
 * The quick path reads strings 8 bytes at a time: a byte that ends a plain
 * run (a quote, a backslash, a control byte, UTF-8, a byte that is not
 * UTF-8) is found at every offset inside and across those words.
 */
static void
test_quick_string_bytes_at_every_offset(void **state)
{
    static const struct {
        const char *bytes;
        enum quick_want want;
    } kinds[] = {
        {"\\\"", QUICK_TAKES},  /* an escaped quote */
        {"\\\\", QUICK_TAKES}, /* an escaped backslash */
        {"\\u00e9", QUICK_TAKES},
        {"\xc3\xa9", QUICK_TAKES},
        {"\xf0\x9f\x98\x80", QUICK_TAKES},
        {"\x7f", QUICK_TAKES},
        {" ~", QUICK_TAKES},
        {"\t", QUICK_DECLINES},
        {"\x1f", QUICK_DECLINES},
        {"\x01", QUICK_DECLINES},
        {"\xff", QUICK_DECLINES},
        {"\x80", QUICK_DECLINES},
        {"\\q", QUICK_DECLINES},
    };
    char content[64], body[512];
    size_t k, at;

    (void)state;
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        for (at = 0; at <= 20; at++) {
            memset(content, 'a', at);
            snprintf(content + at, sizeof(content) - at, "%s%s", kinds[k].bytes,
                     "bcdefghijklmnopq");
            snprintf(body, sizeof(body),
                     "{\"event\":\"user.message\",\"data\":{\"conversation_id\":\"c\","
                     "\"message_id\":\"m\",\"user_id\":\"u\",\"content\":\"x\","
                     "\"note\":\"%s\"}}",
                     content);
            print_message("kind %zu at %zu\n", k, at);
            assert_quick_agrees(body, strlen(body), kinds[k].want);
        }
    }
}

/* The quick path of a batch takes it or not as want says, and then hands out what jansson's would.
 */
static void
assert_quick_batch_agrees(const char *text, enum quick_want want)
{
    static struct schema_report rep;
    static struct batch_seen q, j;
    size_t len = strlen(text), i;
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, text, len);
    rc = quick_batch_check(copy, len, 4);
    assert_int_equal(rc, want == QUICK_TAKES ? 0 : ERR_PARSE);
    if (rc == 0) {
        memset(&q, 0, sizeof(q));
        memset(&j, 0, sizeof(j));
        rc = quick_batch(copy, len, 4, NOW, batch_seen_item, &q, &rep);
        if (rc == 0)
            rc = envelope_batch_jansson(copy, len, 4, NOW, batch_seen_item, &j, &rep, NULL, 0);
        if (rc == ERR_NOMEM) { /* torture mode */
            free(copy);
            fail();
        }
        assert_int_equal(rc, 0);
        assert_int_equal(q.n, j.n);
        for (i = 0; i < (size_t)q.n; i++) {
            assert_int_equal(q.errs[i], 0);
            assert_int_equal(j.errs[i], 0);
            assert_string_equal(q.data[i], j.data[i]);
            assert_string_equal(q.keys[i], j.keys[i]);
            assert_string_equal(q.types[i], j.types[i]);
            assert_string_equal(q.stamps[i], j.stamps[i]);
        }
    }
    free(copy);
}

static void
test_quick_batch_agrees(void **state)
{
#define ITEM                                                                                       \
    "{'event':'user.message','data':{'conversation_id':'c','message_id':'m',"                      \
    "'user_id':'u','content':'x','n':[1.50e1,{'a':null}]}"
    static const struct {
        const char *body; /* ' stands for " */
        enum quick_want want;
    } cases[] = {
        {"{'events':[" ITEM "}]}", QUICK_TAKES},
        {" { 'events' : [ " ITEM ",'idempotency_key':'k-1'} , " ITEM ",'idempotency_key':null,"
         "'timestamp':'2024-05-01T10:00:00Z'},\n" ITEM ",'timestamp':null} ] }\n",
         QUICK_TAKES},
        {"{'events':[" ITEM "}," ITEM "}," ITEM "}," ITEM "}]}", QUICK_TAKES},
        /* Left to the jansson path, which judges the batch as a whole. */
        {"{'events':[" ITEM "}," ITEM "}," ITEM "}," ITEM "}," ITEM "}]}", QUICK_DECLINES},
        {"{'events':[]}", QUICK_DECLINES},
        {"{'events':[" ITEM "}],'x':1}", QUICK_DECLINES},
        {"{'x':1,'events':[" ITEM "}]}", QUICK_DECLINES},
        {"{'events':[" ITEM "},7]}", QUICK_DECLINES},
        {"{'events':[" ITEM ",'idempotency_key':''}]}", QUICK_DECLINES},
        {"{'events':[" ITEM ",'idempotency_key':'k\\u0031'}]}", QUICK_DECLINES},
        {"{'events':[" ITEM ",'idempotency_key':1}]}", QUICK_DECLINES},
        {"{'events':[" ITEM ",'other':1}]}", QUICK_DECLINES},
        {"{'events':[{'event':'user.message','data':{}}]}", QUICK_DECLINES},
        {"{'event\\u0073':[" ITEM "}]}", QUICK_DECLINES},
        {"{'events':[" ITEM "}]} x", QUICK_DECLINES},
        {"{'events':[" ITEM "},]}", QUICK_DECLINES},
        {"{'events':[" ITEM ",'data':{}}]}", QUICK_DECLINES},
        {"{'events':{}}", QUICK_DECLINES},
        {"", QUICK_DECLINES},
    };
#undef ITEM
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case %zu\n", i);
        assert_quick_batch_agrees(dq(cases[i].body), cases[i].want);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_bytes_exact),
        cmocka_unit_test(test_every_sample_publishes),
        cmocka_unit_test(test_guide_example_exact),
        cmocka_unit_test(test_id_and_generated_timestamp),
        cmocka_unit_test(test_out_of_memory_is_not_malformed),
        cmocka_unit_test(test_other_members_untouched),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_validation_problems),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_build_samples),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_envelope_data_shape),
        cmocka_unit_test(test_rawjson),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_quick_path_agrees),
        cmocka_unit_test(test_quick_string_bytes_at_every_offset),
        cmocka_unit_test(test_quick_batch_agrees),
    };
    return torture_run_group_tests("envelope", tests, NULL, NULL);
}
