#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_int.h"

#define T0 1704110400123LL /* 2024-01-01T12:00:00.123Z */

static const char *
str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    if (!json_is_string(v))
        fail_msg("%s is not a string", k);
    return json_string_value(v);
}

static void
test_time(void **state)
{
    json_t *t;

    (void)state;
    t = api_time_json(0);
    assert_true(json_is_null(t));
    json_decref(t);
    t = api_time_json(T0);
    assert_string_equal(json_string_value(t), "2024-01-01T12:00:00.123Z");
    json_decref(t);
}

static void
test_endpoint(void **state)
{
    struct endpoint ep;
    json_t *o, *types;

    (void)state;
    memset(&ep, 0, sizeof(ep));
    strcpy(ep.id, "ep_1");
    ep.url = "https://example.com/h";
    ep.description = "";
    ep.event_types = "user.message,agent.updated";
    ep.secret = "whsec_abc";
    ep.created_at = T0;
    o = api_endpoint_json(&ep, 0);
    assert_string_equal(str(o, "id"), "ep_1");
    assert_string_equal(str(o, "status"), "enabled");
    types = json_object_get(o, "event_types");
    assert_int_equal(json_array_size(types), 2);
    assert_string_equal(json_string_value(json_array_get(types, 1)), "agent.updated");
    assert_true(json_is_null(json_object_get(o, "disabled_reason")));
    assert_true(json_is_null(json_object_get(o, "disabled_at")));
    assert_string_equal(str(o, "created_at"), "2024-01-01T12:00:00.123Z");
    assert_null(json_object_get(o, "secret"));
    json_decref(o);

    ep.event_types = "";
    ep.status = ENDPOINT_DISABLED;
    ep.disabled_reason = "retries exhausted";
    ep.disabled_at = T0;
    o = api_endpoint_json(&ep, 1);
    assert_int_equal(json_array_size(json_object_get(o, "event_types")), 0);
    assert_string_equal(str(o, "status"), "disabled");
    assert_string_equal(str(o, "disabled_reason"), "retries exhausted");
    assert_string_equal(str(o, "secret"), "whsec_abc");
    json_decref(o);
}

static void
test_event(void **state)
{
    struct api_req r;
    struct event ev;
    json_t *o;

    (void)state;
    memset(&ev, 0, sizeof(ev));
    memset(&r, 0, sizeof(r));
    buf_init(&r.out, 1 << 20);
    strcpy(ev.id, "evt_1");
    strcpy(ev.type, "user.message");
    strcpy(ev.timestamp, "2024-01-01T12:00:00Z");
    ev.created_at = T0;
    /* The stored envelope is answered byte for byte, then created_at. */
    ev.body = "{\"id\":\"evt_1\",\"event\":\"user.message\",\"timestamp\":\"2024-01-01T12:00:00Z\","
              "\"data\":{\"content\":\"hi\",\"score\":0.95}}";
    ev.body_len = strlen(ev.body);
    o = api_event_json(&ev);
    api_reply_json(&r, 200, o);
    assert_string_equal(buf_cstr(&r.out),
                        "{\"id\":\"evt_1\",\"event\":\"user.message\",\"timestamp\":"
                        "\"2024-01-01T12:00:00Z\",\"data\":{\"content\":\"hi\",\"score\":0.95},"
                        "\"created_at\":\"2024-01-01T12:00:00.123Z\"}\n");

    /* Without a usable envelope the fields are built one by one. */
    ev.body = NULL;
    ev.body_len = 0;
    o = api_event_json(&ev);
    assert_string_equal(str(o, "event"), "user.message");
    assert_string_equal(str(o, "timestamp"), "2024-01-01T12:00:00Z");
    assert_true(json_is_null(json_object_get(o, "data")));
    json_decref(o);
    buf_cleanup(&r.out);
}

static void
test_delivery_and_attempts(void **state)
{
    struct delivery d;
    struct attempt a[2];
    json_t *o, *arr, *at;

    (void)state;
    memset(&d, 0, sizeof(d));
    memset(a, 0, sizeof(a));
    strcpy(d.id, "dlv_1");
    strcpy(d.event_type, "user.message");
    d.status = DELIVERY_PENDING;
    d.next_attempt_at = T0;
    d.attempts_made = 2;
    a[0].n = 1;
    a[0].at = T0;
    a[0].status_code = 0;
    a[0].error = "cannot connect to 192.0.2.1 port 443: connection refused";
    a[0].error_class = ATTEMPT_ERROR_CONNECT;
    a[1].n = 2;
    a[1].status_code = 503;
    a[1].response_body = "ok\xff\xc3(\xe2\x82\xac";
    a[1].response_len = strlen(a[1].response_body);

    o = api_delivery_json(&d, a, 2, 0);
    assert_null(json_object_get(o, "attempts"));
    assert_string_equal(str(o, "status"), "pending");
    assert_string_equal(str(o, "event"), "user.message");
    assert_string_equal(str(o, "next_attempt_at"), "2024-01-01T12:00:00.123Z");
    assert_int_equal(json_integer_value(json_object_get(o, "attempts_made")), 2);
    json_decref(o);

    d.status = DELIVERY_DELIVERED;
    o = api_delivery_json(&d, a, 2, 1);
    assert_true(json_is_null(json_object_get(o, "next_attempt_at")));
    arr = json_object_get(o, "attempts");
    assert_int_equal(json_array_size(arr), 2);
    at = json_array_get(arr, 0);
    assert_true(json_is_null(json_object_get(at, "status_code")));
    assert_string_equal(str(at, "error"),
                        "cannot connect to 192.0.2.1 port 443: connection refused");
    assert_string_equal(str(at, "error_class"), "connect");
    assert_true(json_is_null(json_object_get(at, "response_body")));
    at = json_array_get(arr, 1);
    assert_int_equal(json_integer_value(json_object_get(at, "status_code")), 503);
    assert_true(json_is_null(json_object_get(at, "error")));
    /* An answer came: no error_class at all (CONTRACT §6). */
    assert_null(json_object_get(at, "error_class"));
    /* 0xff and the broken 0xc3 become U+FFFD; the euro sign is kept. */
    assert_string_equal(str(at, "response_body"), "ok\xef\xbf\xbd\xef\xbf\xbd(\xe2\x82\xac");
    json_decref(o);

    o = api_delivery_json(&d, NULL, 0, 1);
    assert_int_equal(json_array_size(json_object_get(o, "attempts")), 0);
    json_decref(o);
}

static void
test_account_and_key(void **state)
{
    struct account a;
    struct api_key k;
    json_t *o;

    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&k, 0, sizeof(k));
    strcpy(a.id, "acct_default");
    a.name = "default";
    a.created_at = T0;
    o = api_account_json(&a);
    assert_string_equal(str(o, "name"), "default");
    json_decref(o);
    strcpy(k.id, "key_1");
    strcpy(k.account_id, "acct_default");
    k.admin = 1;
    strcpy(k.hash, "abcd");
    o = api_key_json(&k, NULL);
    assert_true(json_is_true(json_object_get(o, "admin")));
    assert_null(json_object_get(o, "secret"));
    assert_null(json_object_get(o, "hash"));
    json_decref(o);
    o = api_key_json(&k, "fhk_x");
    assert_string_equal(str(o, "secret"), "fhk_x");
    json_decref(o);
}

static void
test_key_new_and_hash(void **state)
{
    char k1[API_KEY_MAX], k2[API_KEY_MAX], h[65];
    size_t i;

    (void)state;
    assert_int_equal(api_key_new(k1), 0);
    assert_int_equal(api_key_new(k2), 0);
    assert_int_equal(strlen(k1), 47);
    assert_memory_equal(k1, "fhk_", 4);
    for (i = 4; i < strlen(k1); i++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", k1[i]));
    assert_string_not_equal(k1, k2);
    api_key_hash("abc", h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_event),
        cmocka_unit_test(test_delivery_and_attempts),
        cmocka_unit_test(test_account_and_key),
        cmocka_unit_test(test_key_new_and_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
