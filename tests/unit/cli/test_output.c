/*
 * Unit tests of src/cli/output.c: table alignment, the text of JSON members,
 * status colours, and the roff escaping of the man page. The command table
 * is a small one defined here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../src/cli/output.c"

static int fake_run(int argc, char **argv);
static int fake_sub(struct cli_call *x);

static const struct config_opt fake_opts[] = {
    {"port", "P", "9000", "port - on loopback", 0, 'p'},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct cli_sub fake_subs[] = {
    {"rotate-secret", "ID [--grace D]", "give it a new secret", fake_opts, 1, 1, fake_sub, NULL},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL},
};

static const struct config_opt fake_copy_opts[] = {
    {"from", "URL", NULL, "the source", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct cli_sub fake_local_subs[] = {
    {"copy", "--from URL", "copy it", fake_copy_opts, 0, 0, fake_sub,
     "First line of more.\n.second line starts with a dot"},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL},
};

static const struct cli_cmd fake_plain = {.name = "listen",
                                          .usage = "[--port P]",
                                          .summary = "a receiver",
                                          .opts = fake_opts,
                                          .run = fake_run};
static const struct cli_cmd fake_parent = {.name = "endpoints",
                                           .usage = "SUBCOMMAND",
                                           .summary = ".starts with a dot",
                                           .run = fake_run,
                                           .subs = fake_subs};

/* Runs here, not through a server: no client options. */
static const struct cli_cmd fake_local = {.name = "db",
                                          .usage = "copy ...",
                                          .summary = "work on a store",
                                          .run = fake_run,
                                          .subs = fake_local_subs,
                                          .local = 1};

const struct cli_cmd *const cli_cmds[] = {&fake_plain, &fake_parent, &fake_local, NULL};
const struct config_opt client_opts[] = {
    {"json", NULL, NULL, "print JSON", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static int
fake_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static int
fake_sub(struct cli_call *x)
{
    (void)x;
    return 0;
}

/* Runs fn into a memory stream and returns what it wrote (free it). */
static char *
capture_table(const struct out_table *t, int color)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    out_table_print(t, f, color);
    fclose(f);
    return text;
}

static void
test_table_aligns_columns(void **state)
{
    static const char *const heads[] = {"ID", "STATUS", "URL"};
    const char *r1[] = {"ep_1", "enabled", "https://a.example/x"};
    const char *r2[] = {"ep_22222", NULL, "https://b"};
    struct out_table t;
    char *text;

    (void)state;
    out_table_init(&t, 3, heads);
    assert_int_equal(out_table_add(&t, r1), 0);
    assert_int_equal(out_table_add(&t, r2), 0);
    text = capture_table(&t, 0);
    assert_string_equal(text, "ID        STATUS   URL\n"
                              "ep_1      enabled  https://a.example/x\n"
                              "ep_22222  -        https://b\n");
    free(text);
    out_table_cleanup(&t);
}

static void
test_table_counts_code_points(void **state)
{
    static const char *const heads[] = {"NAME", "X"};
    const char *r1[] = {"caf\xc3\xa9", "1"};
    struct out_table t;
    char *text;

    (void)state;
    out_table_init(&t, 2, heads);
    assert_int_equal(out_table_add(&t, r1), 0);
    text = capture_table(&t, 0);
    /* "café" is 4 wide like "NAME", though 5 bytes. */
    assert_string_equal(text, "NAME  X\ncaf\xc3\xa9  1\n");
    free(text);
    out_table_cleanup(&t);
}

static void
test_table_colours_status_only_with_color(void **state)
{
    static const char *const heads[] = {"STATUS", "NOTE"};
    const char *r1[] = {"failed", "failed"};
    struct out_table t;
    char *text;

    (void)state;
    out_table_init(&t, 2, heads);
    assert_int_equal(out_table_add(&t, r1), 0);
    text = capture_table(&t, 1);
    assert_non_null(strstr(text, "\033[31mfailed\033[0m  failed\n"));
    assert_non_null(strstr(text, "\033[1mSTATUS\033[0m"));
    free(text);
    text = capture_table(&t, 0);
    assert_null(strchr(text, '\033'));
    free(text);
    out_table_cleanup(&t);
}

static void
test_field_text(void **state)
{
    json_t *o = json_loads("{\"s\":\"x\",\"i\":42,\"r\":0.5,\"b\":true,\"n\":null,"
                           "\"a\":[\"p\",\"q\"],\"e\":[],\"o\":{}}",
                           0, NULL);
    char scr[64];

    (void)state;
    assert_non_null(o);
    assert_string_equal(out_field(o, "s", scr, sizeof(scr)), "x");
    assert_string_equal(out_field(o, "i", scr, sizeof(scr)), "42");
    assert_string_equal(out_field(o, "r", scr, sizeof(scr)), "0.5");
    assert_string_equal(out_field(o, "b", scr, sizeof(scr)), "yes");
    assert_string_equal(out_field(o, "n", scr, sizeof(scr)), "-");
    assert_string_equal(out_field(o, "missing", scr, sizeof(scr)), "-");
    assert_string_equal(out_field(o, "a", scr, sizeof(scr)), "p,q");
    assert_string_equal(out_field(o, "e", scr, sizeof(scr)), "-");
    assert_string_equal(out_field(o, "o", scr, sizeof(scr)), "...");
    json_decref(o);
}

static void
test_status_colours(void **state)
{
    (void)state;
    assert_string_equal(out_status_color("delivered"), C_GREEN);
    assert_string_equal(out_status_color("enabled"), C_GREEN);
    assert_string_equal(out_status_color("disabled"), C_RED);
    assert_string_equal(out_status_color("held"), C_YELLOW);
    assert_string_equal(out_status_color("pending"), C_CYAN);
    assert_string_equal(out_status_color("other"), "");
}

static void
test_color_needs_no_no_color(void **state)
{
    (void)state;
    /* Under the test runner stdout is not a terminal: never colour. */
    setenv("NO_COLOR", "", 1);
    if (!isatty(STDOUT_FILENO))
        assert_int_equal(out_color_stdout(), 0);
    setenv("NO_COLOR", "1", 1);
    assert_int_equal(out_color_stdout(), 0);
    unsetenv("NO_COLOR");
}

static void
test_man_escapes_and_lists_everything(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    (void)state;
    assert_non_null(f);
    assert_int_equal(cli_man_write(f), 0);
    fclose(f);
    assert_non_null(strstr(text, ".B fluxhook endpoints rotate\\-secret\nID [\\-\\-grace D]\n"));
    assert_non_null(strstr(text, "\\fBfluxhook endpoints rotate\\-secret\\fR ID"));
    assert_non_null(strstr(text, ".B fluxhook listen\n[\\-\\-port P]\n"));
    assert_non_null(strstr(text, "\\fB\\-p\\fR, \\fB\\-\\-port\\fR \\fIP\\fR\n"
                                 "port \\- on loopback (default 9000)\n"));
    /* A summary starting with a dot would be a roff request: guarded. */
    assert_non_null(strstr(text, "\n\\&.starts with a dot\n"));
    /* A subcommand's description follows its summary, each line guarded. */
    assert_non_null(
        strstr(text, "copy it\n.IP\nFirst line of more.\n\\&.second line starts with a dot\n"));
    free(text);
}

static void
test_completion_lists_commands_and_flags(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    (void)state;
    assert_non_null(f);
    assert_int_equal(cli_completion_write(f), 0);
    fclose(f);
    assert_non_null(strstr(text, "words=\"listen endpoints db\""));
    assert_non_null(strstr(text, "rotate-secret) words=\"--help --port --json\" ;;"));
    /* A local command's subcommands take no client options. */
    assert_non_null(strstr(text, "copy) words=\"--help --from\" ;;"));
    assert_non_null(strstr(text, "complete -o default -F _fluxhook fluxhook\n"));
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_aligns_columns),
        cmocka_unit_test(test_table_counts_code_points),
        cmocka_unit_test(test_table_colours_status_only_with_color),
        cmocka_unit_test(test_field_text),
        cmocka_unit_test(test_status_colours),
        cmocka_unit_test(test_color_needs_no_no_color),
        cmocka_unit_test(test_man_escapes_and_lists_everything),
        cmocka_unit_test(test_completion_lists_commands_and_flags),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
