/*
 * The HTTP client behind the client commands (endpoints, events, deliveries,
 * event-types, accounts, keys): one libcurl easy handle per call, the base
 * URL from --url or FLUXHOOK_URL, the key from --api-key or
 * FLUXHOOK_API_KEY, and the mapping of outcomes to the exit statuses of
 * CONTRACT §5 (0 done, 1 refused, 2 bad usage, 3 unreachable).
 */
#ifndef FLUXHOOK_CLI_CLIENT_H
#define FLUXHOOK_CLI_CLIENT_H

#include <stdarg.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cli/output.h"
#include "util/buf.h"
#include "util/config.h"

#define CLIENT_DEFAULT_URL "http://127.0.0.1:8080"
#define CLIENT_MAX_BODY (16 * 1024 * 1024) /* largest answer read */

/* One parsed invocation of a client subcommand. */
struct cli_call {
    const struct cli_cmd *cmd; /* "endpoints" */
    const struct cli_sub *sub; /* "create" */
    struct config conf;        /* its options and positional arguments */
    CURL *curl;                /* reused across the requests of this call */
    const char *url;           /* base URL without a trailing slash, borrowed */
    char *url_own;             /* the base URL as trimmed, owned */
    const char *key;           /* API key, or NULL */
    const char *account;       /* X-Workflux-Account, or NULL */
    int json;                  /* --json: print the API's JSON */
    int color;                 /* colour on stdout */
};

/* The answer to one request. */
struct client_reply {
    long status;     /* HTTP status */
    struct buf body; /* the body as received */
    json_t *json;    /* the body parsed, new reference, or NULL when not JSON */
};

/* The options every client subcommand takes: --url, --api-key, --account, --json. */
extern const struct config_opt client_opts[];

/*
 * The run function of a client command: finds the subcommand in argv[1]
 * (the one named "list" when there is none), parses its options and runs
 * it. A local command's subcommands (cmd->local) run with their own
 * options only, without a server. Returns the exit status.
 */
int client_cmd_run(const struct cli_cmd *cmd, int argc, char **argv);

/*
 * Runs sub as the whole of cmd (fluxhook trigger TYPE): argv[0] is the
 * command's name and the rest its arguments, parsed against sub's options
 * and the client options. sub->name is "" so that messages say "fluxhook
 * trigger". Returns the exit status.
 */
int client_sub_run(const struct cli_cmd *cmd, const struct cli_sub *sub, int argc, char **argv);

/*
 * Sends method path (relative to the base URL, starting "/") with body
 * (borrowed; NULL for none) and the extra header line hdr (or NULL).
 * Fills rep, which the caller cleans up with client_reply_cleanup. Returns
 * 0 whatever the HTTP status, ERR_NET when no answer came (the reason
 * printed to stderr with the URL), or ERR_NOMEM.
 */
int client_request(struct cli_call *x, const char *method, const char *path, json_t *body,
                   const char *hdr, struct client_reply *rep);

/*
 * client_request, then the mapping to an exit status: CLI_OK on a 2xx,
 * CLI_REFUSED after printing the server's error (message and every
 * fields[].path: problem) to stderr, CLI_UNREACHABLE when the server could
 * not be reached. rep is filled in every case.
 */
int client_call(struct cli_call *x, const char *method, const char *path, json_t *body,
                const char *hdr, struct client_reply *rep);

/*
 * Reads the catalog and finds event type name in it: *out is its object
 * (new reference: name, description, fields, sample). Returns CLI_OK, or the
 * exit status after saying why (an unknown type with "did you mean").
 */
int client_event_type_get(struct cli_call *x, const char *name, json_t **out);

/* Frees what rep holds; rep may be zeroed or filled. */
void client_reply_cleanup(struct client_reply *rep);

/*
 * Prints the server's error in rep to stderr: "fluxhook: MESSAGE (HTTP 422
 * TYPE)" and one "  PATH: PROBLEM" line per field.
 */
void client_error_print(const struct client_reply *rep);

/*
 * Formats a path, escaping each string argument given with %s for a URL
 * path segment or query value. Returns a new string (free it) or NULL.
 */
char *client_path(struct cli_call *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "fluxhook CMD SUB: MESSAGE" and the usage line to stderr; returns CLI_USAGE. */
int client_usage(const struct cli_call *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The value of an option of the call, or NULL. */
const char *client_opt(const struct cli_call *x, const char *name);

/* Positional argument i of the call (0 is the first after the subcommand), or NULL. */
const char *client_arg(const struct cli_call *x, int i);

/*
 * Reads a JSON value given as text, "@FILE" or "@-" (standard input) into
 * *out (new reference). On failure prints why and returns CLI_USAGE.
 */
int client_json_arg(const struct cli_call *x, const char *what, const char *value, json_t **out);

/*
 * Parses a time for the API: RFC 3339 ("2024-01-01T12:00:00Z") or a
 * duration ago ("30m", "2h"). Writes RFC 3339 into out. Returns 0 or ERR_PARSE.
 */
int client_time_arg(const char *s, char *out, size_t outlen);

/*
 * The body of a rotation: {"grace_seconds"} from --grace (a duration) into
 * *body (new reference), or NULL without --grace. Returns 0, or prints the
 * usage error and returns CLI_USAGE.
 */
int client_grace_body(struct cli_call *x, json_t **body);

/* Prints the API answer as JSON (the bytes the server sent) to stdout. */
void client_json_print(const struct client_reply *rep);

/*
 * The usual shape of a subcommand: sends method path (takes ownership of
 * path; NULL counts as out of memory) with body (steals it; NULL for none),
 * then prints the answer: its JSON with --json, else show(x, answer) when
 * show is not NULL. Returns the exit status.
 */
int client_simple(struct cli_call *x, const char *method, char *path, json_t *body,
                  void (*show)(struct cli_call *x, json_t *answer));

/*
 * A list: GET base with the query parameters named in params (pairs of
 * query name and option name, NULL-terminated) taken from the options that
 * are set, plus limit and after. Prints the answer's JSON with --json, else
 * its data as a table of cols, and the next cursor on stderr. Returns the
 * exit status.
 */
int client_list(struct cli_call *x, const char *base, const char *const *params,
                const struct out_col *cols);

/*
 * client_list, calling prep (or nothing when NULL) on each item of the page
 * before the table is printed, so that it can add members for cols to show.
 */
int client_list_prep(struct cli_call *x, const char *base, const char *const *params,
                     const struct out_col *cols, void (*prep)(json_t *item));

/*
 * Builds base plus a query of params (as for client_list) into a new string.
 * Returns NULL when out of memory.
 */
char *client_query(struct cli_call *x, const char *base, const char *const *params);

/* Sleeps ms unless interrupted; returns 1 once SIGINT or SIGTERM came (see client_signals). */
int client_sleep(int ms);

/* Catches SIGINT and SIGTERM so a long call can stop cleanly; client_stopped() tells. */
void client_signals(void);

/* 1 once SIGINT or SIGTERM came after client_signals(). */
int client_stopped(void);

#endif
