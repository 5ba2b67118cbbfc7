#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_int.h"
#include "util/err.h"

static void
test_status_table(void **state)
{
    (void)state;
    assert_int_equal(api_err_status(ERR_PARSE), 400);
    assert_int_equal(api_err_status(ERR_INVAL), 400);
    assert_int_equal(api_err_status(ERR_AUTH), 401);
    assert_int_equal(api_err_status(ERR_FORBIDDEN), 403);
    assert_int_equal(api_err_status(ERR_NOTFOUND), 404);
    assert_int_equal(api_err_status(ERR_CONFLICT), 409);
    assert_int_equal(api_err_status(ERR_TOOBIG), 413);
    assert_int_equal(api_err_status(ERR_MEDIA), 415);
    assert_int_equal(api_err_status(ERR_VALIDATION), 422);
    assert_int_equal(api_err_status(ERR_RATE), 429);
    assert_int_equal(api_err_status(ERR_STORE), 500);
    assert_int_equal(api_err_status(ERR_NOMEM), 500);
    assert_int_equal(api_err_status(-999), 500);
    assert_string_equal(api_err_type(ERR_NOTFOUND), "not_found");
    assert_string_equal(api_err_type(ERR_VALIDATION), "validation_failed");
    assert_string_equal(api_err_type(ERR_STORE), "internal_error");
}

static void
req_init(struct api_req *r)
{
    memset(r, 0, sizeof(*r));
    r->method = "GET";
    r->path = "/v1/x";
    buf_init(&r->out, 1 << 20);
}

static json_t *
body_of(struct api_req *r)
{
    json_t *j = json_loadb(r->out.data, r->out.len, 0, NULL);

    assert_non_null(j);
    return j;
}

static void
test_error_body(void **state)
{
    struct api_req r;
    json_t *j, *err, *fields;

    (void)state;
    req_init(&r);
    fields = json_pack("[{s:s, s:s}]", "path", "data.agent_id", "problem", "is required");
    api_reply_error(&r, ERR_VALIDATION, fields, "data: %d problem", 1);
    assert_int_equal(r.status, 422);
    assert_string_equal(r.content_type, "application/json");
    j = body_of(&r);
    assert_int_equal(json_object_size(j), 1);
    err = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "validation_failed");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "data: 1 problem");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(err, "fields"), 0), "path")),
                        "data.agent_id");
    json_decref(j);
    buf_cleanup(&r.out);
}

static void
test_error_without_fields(void **state)
{
    struct api_req r;
    json_t *j;

    (void)state;
    req_init(&r);
    api_reply_error(&r, ERR_NOTFOUND, json_array(), "no endpoint with id '%s'", "ep_1");
    assert_int_equal(r.status, 404);
    j = body_of(&r);
    assert_null(json_object_get(json_object_get(j, "error"), "fields"));
    json_decref(j);
    /* A second answer replaces the first. */
    api_reply_error_status(&r, 405, "method_not_allowed", NULL, "no");
    assert_int_equal(r.status, 405);
    j = body_of(&r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                        "method_not_allowed");
    json_decref(j);
    buf_cleanup(&r.out);
}

static void
test_json_and_raw(void **state)
{
    struct api_req r;

    (void)state;
    req_init(&r);
    api_reply_json(&r, 201, json_pack("{s:i}", "a", 1));
    assert_int_equal(r.status, 201);
    assert_string_equal(buf_cstr(&r.out), "{\"a\":1}\n");
    api_reply_raw(&r, 204, NULL, NULL, 0);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.out.len, 0);
    assert_null(r.content_type);
    api_reply_json(&r, 200, NULL);
    assert_int_equal(r.status, 500);
    buf_cleanup(&r.out);
}

static void
test_raw_objects_are_spliced(void **state)
{
    struct api_req r;
    json_t *o, *e, *list;
    const char *text = "{\"a\":0.95,\"big\":123456789012345678901234567890,\"s\":\"\\u00e9\"}\n";

    (void)state;
    req_init(&r);
    o = api_json_raw_object(text, strlen(text));
    json_object_set_new(o, "b", json_integer(1));
    json_object_set_new(o, "c", json_pack("{s:[i]}", "x", 2));
    api_reply_json(&r, 200, o);
    assert_string_equal(buf_cstr(&r.out), "{\"a\":0.95,\"big\":123456789012345678901234567890,"
                                          "\"s\":\"\\u00e9\",\"b\":1,\"c\":{\"x\":[2]}}\n");

    /* An empty raw object, and raw objects inside a list. */
    e = api_json_raw_object("{}", 2);
    json_object_set_new(e, "k", json_string("v\"q"));
    list = json_pack("[o, o]", e, api_json_raw_object("{\"n\":1.10}", 10));
    api_reply_json(&r, 200, api_list_json(list, "evt_1"));
    assert_string_equal(buf_cstr(&r.out),
                        "{\"data\":[{\"k\":\"v\\\"q\"},{\"n\":1.10}],\"next\":\"evt_1\"}\n");

    /* Text that is not an object is refused, not sent. */
    api_reply_json(&r, 200, api_json_raw_object("[1]", 3));
    assert_int_equal(r.status, 500);
    buf_cleanup(&r.out);
}

/* api_reply_published() gives the bytes api_reply_json() gives for the same object. */
static void
test_published_answer(void **state)
{
    static const struct {
        const char *id, *type, *timestamp;
        int deliveries;
    } cases[] = {
        {"evt_01J0000000000000000000000", "user.message", "2024-01-01T12:00:00Z", 0},
        {"evt_01J0000000000000000000001", "agent.updated", "2024-01-01T12:00:00.5+02:00", 7},
        {"evt_1", "integration.sync", "2024-01-01T12:00:00Z", 123456789},
        {"evt_1", "user.message", "2024-01-01T12:00:00Z", -1},
        {"evt_1", "a\"quoted\\type", "2024-01-01T12:00:00Z", 2}, /* jansson escapes these */
        {"evt_1", "user.message", "tab\there", 1},
        {"", "", "", 0},
    };
    struct event ev;
    struct api_req r, want;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&ev, 0, sizeof(ev));
        snprintf(ev.id, sizeof(ev.id), "%s", cases[i].id);
        snprintf(ev.type, sizeof(ev.type), "%s", cases[i].type);
        snprintf(ev.timestamp, sizeof(ev.timestamp), "%s", cases[i].timestamp);
        ev.deliveries = cases[i].deliveries;
        req_init(&r);
        req_init(&want);
        api_reply_published(&r, i % 2 == 0 ? 202 : 200, &ev);
        api_reply_json(&want, i % 2 == 0 ? 202 : 200,
                       json_pack("{s:s, s:s, s:s, s:i}", "id", ev.id, "event", ev.type, "timestamp",
                                 ev.timestamp, "deliveries", ev.deliveries));
        assert_int_equal(r.status, want.status);
        assert_string_equal(r.content_type, "application/json");
        assert_string_equal(buf_cstr(&r.out), buf_cstr(&want.out));
        buf_cleanup(&r.out);
        buf_cleanup(&want.out);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_error_without_fields),
        cmocka_unit_test(test_json_and_raw),
        cmocka_unit_test(test_raw_objects_are_spliced),
        cmocka_unit_test(test_published_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
