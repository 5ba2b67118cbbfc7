/*
 * The list-page helpers of src/api/h_common.c: the page a list answers, its
 * cursor, and a 500 instead of a page with items silently left out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_int.h"
#include "util/err.h"

#define NITEMS 8

struct item {
    char id[32];
    int fails; /* 1: making its JSON fails, as when out of memory */
};

static const char *
item_of(const void *items, size_t i, json_t **json)
{
    const struct item *it = (const struct item *)items + i;

    if (json != NULL)
        *json = it->fails ? NULL : json_pack("{s:s}", "id", it->id);
    return it->id;
}

static void
items_init(struct item *its, size_t n)
{
    size_t i;

    memset(its, 0, n * sizeof(*its));
    for (i = 0; i < n; i++)
        snprintf(its[i].id, sizeof(its[i].id), "x_%zu", i);
}

/*
 * Answers a page of limit from the first n of its, and checks that it shows
 * the ids want_ids ("x_0,x_1") with the cursor want_next ("" for null).
 */
static void
check_page(const struct item *its, int limit, size_t n, const char *want_ids, const char *want_next)
{
    struct api_req r;
    char ids[256];
    json_t *j;
    json_t *v;
    size_t i;

    memset(&r, 0, sizeof(r));
    r.method = "GET";
    r.path = "/v1/x";
    buf_init(&r.out, 1 << 20);
    assert_int_equal(api_page_reply(&r, limit, its, n, item_of), 0);
    assert_int_equal(r.status, 200);
    j = json_loadb(r.out.data, r.out.len, 0, NULL);
    assert_non_null(j);
    ids[0] = '\0';
    json_array_foreach(json_object_get(j, "data"), i, v)
    {
        snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%s", i > 0 ? "," : "",
                 json_string_value(json_object_get(v, "id")));
    }
    assert_string_equal(ids, want_ids);
    v = json_object_get(j, "next");
    assert_string_equal(json_is_string(v) ? json_string_value(v) : "", want_next);
    json_decref(j);
    buf_cleanup(&r.out);
}

static void
test_page_and_cursor(void **state)
{
    struct item its[NITEMS];

    (void)state;
    items_init(its, NITEMS);
    assert_int_equal(api_page_fetch(3), 4);
    assert_int_equal(api_page_fetch(STORE_MAX_PAGE), STORE_MAX_PAGE);
    /* limit 3, the store gave 4: three shown, and a cursor at the third. */
    check_page(its, 3, 4, "x_0,x_1,x_2", "x_2");
    /* The last page: no cursor. */
    check_page(its, 3, 3, "x_0,x_1,x_2", "");
    /* Nothing at all. */
    check_page(its, 3, 0, "", "");
}

static void
test_failed_item_answers_500(void **state)
{
    struct item its[NITEMS];
    struct api_req r;
    json_t *arr = (json_t *)1;
    json_t *j;

    (void)state;
    items_init(its, NITEMS);
    its[5].fails = 1;
    assert_int_equal(api_items_json(its, 5, item_of, &arr), 0);
    assert_int_equal(json_array_size(arr), 5);
    json_decref(arr);
    assert_int_equal(api_items_json(its, NITEMS, item_of, &arr), ERR_NOMEM);
    assert_null(arr);

    memset(&r, 0, sizeof(r));
    buf_init(&r.out, 1 << 20);
    assert_int_equal(api_page_reply(&r, 7, its, NITEMS, item_of), 0);
    assert_int_equal(r.status, 500);
    j = json_loadb(r.out.data, r.out.len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                        "internal_error");
    assert_null(json_object_get(j, "data"));
    json_decref(j);
    buf_cleanup(&r.out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_and_cursor),
        cmocka_unit_test(test_failed_item_answers_500),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
