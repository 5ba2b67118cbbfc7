/*
 * What the client commands print: aligned tables and key-value views for
 * people (colour only when stdout is a terminal and NO_COLOR is unset), a
 * progress bar on stderr when it is a terminal, and the man page and bash
 * completion generated from the command table.
 */
#ifndef FLUXHOOK_CLI_OUTPUT_H
#define FLUXHOOK_CLI_OUTPUT_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct cli_cmd;

#define OUT_MAX_COLS 12

/* A table: a header row and any number of rows of strings. */
struct out_table {
    int ncols;
    const char *heads[OUT_MAX_COLS]; /* borrowed */
    char **cells;                    /* nrows * ncols owned strings */
    int nrows;
    int caprows;
};

/* 1 when stdout is a terminal and NO_COLOR is unset or empty. */
int out_color_stdout(void);

/* 1 when stderr is a terminal (for the progress bar). */
int out_tty_stderr(void);

/* Prepares t with ncols headings (borrowed, must outlive t). */
void out_table_init(struct out_table *t, int ncols, const char *const *heads);

/* Adds a row of t->ncols strings (copied; NULL prints "-"). Returns 0, ERR_NOMEM, or ERR_INVAL
 * for a table of no columns. */
int out_table_add(struct out_table *t, const char *const *cells);

/*
 * Prints t to f, columns padded to their widest cell and separated by two
 * spaces. With color, the heading is bold and a column named STATUS is
 * coloured by value (delivered/enabled green, failed/disabled red, ...).
 */
void out_table_print(const struct out_table *t, FILE *f, int color);

/* Frees t's rows. */
void out_table_cleanup(struct out_table *t);

/* Prints one "key: value" line of a detail view, keys padded to one width. */
void out_kv(FILE *f, int color, const char *key, const char *value);

/* The text of member key of o for a table: strings as they are, numbers and booleans
 * formatted into scratch (size n), null or absent as "-". */
const char *out_field(json_t *o, const char *key, char *scratch, size_t n);

/* The ANSI colour sequence for a status value, or "" for none. */
const char *out_status_color(const char *status);

/* A column of a list: its heading, the member it shows, the text when empty. */
struct out_col {
    const char *head;  /* "STATUS" */
    const char *key;   /* "status" */
    const char *empty; /* shown for null, absent or [] (NULL: "-") */
};

/* Prints the objects of the array items as a table of cols (NULL-head-terminated). Returns 0
 * or ERR_NOMEM. */
int out_list(FILE *f, int color, json_t *items, const struct out_col *cols);

/* Prints every member of o as a detail view: scalars and lists of strings as text,
 * anything else as compact JSON. */
void out_object(FILE *f, int color, json_t *o);

/* A progress bar on stderr, drawn only when stderr is a terminal. */
struct out_progress {
    const char *label;
    long total;
    long done;
    int tty;
    int64_t drawn_ms; /* when it was last drawn */
};

/* Starts a bar for total steps (0 or less: unknown). */
void out_progress_start(struct out_progress *p, const char *label, long total);

/* Sets the steps done and redraws at most ten times a second. */
void out_progress_set(struct out_progress *p, long done);

/* Draws the final state and ends the line. */
void out_progress_end(struct out_progress *p);

/*
 * An RFC 3339 time from the API as local time with its zone, "2026-01-02
 * 10:00:05 CET", into out (n bytes). Returns out, or iso itself when it
 * cannot be read ("-" for NULL).
 */
const char *out_time_local(const char *iso, char *out, size_t n);

/* A duration for people: "8 s", "4 min", "1 h 5 min". Returns out. */
const char *out_duration(int64_t ms, char *out, size_t n);

/* Writes fluxhook(1) in roff, from the command table. Returns CLI_OK. */
int cli_man_write(FILE *f);

/* Writes the bash completion script, from the command table. Returns CLI_OK. */
int cli_completion_write(FILE *f);

/* Prints the subcommands of cmd (name, summary) for its --help. */
void cli_subs_help(FILE *f, const struct cli_cmd *cmd);

#endif
