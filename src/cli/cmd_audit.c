/*
 * fluxhook audit: the account's audit log (GET /v1/audit-log), newest first,
 * filtered by action, target, actor and time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/output.h"
#include "util/buf.h"
#include "util/err.h"

static int audit_run(int argc, char **argv);

static const struct out_col audit_cols[] = {
    {"TIME", "created_at", NULL}, {"ACTOR", "actor", NULL}, {"ACTION", "action", NULL},
    {"TARGET", "target", NULL},   {NULL, NULL, NULL},
};

/* Appends "&name=<RFC 3339 of option name>" to b when the option is set; CLI_OK or CLI_USAGE. */
static int
time_add(struct cli_call *x, struct buf *b, const char *name)
{
    const char *v = client_opt(x, name);
    char t[64];

    if (v == NULL)
        return CLI_OK;
    if (client_time_arg(v, t, sizeof(t)) != 0)
        return client_usage(x, "--%s: expected an RFC 3339 time or a duration ago (2h), got '%s'",
                            name, v);
    return buf_printf(b, "%c%s=%s", strchr(b->data, '?') != NULL ? '&' : '?', name, t) == 0
               ? CLI_OK
               : CLI_REFUSED;
}

static int
audit_list(struct cli_call *x)
{
    static const char *const params[] = {"action", "action", "target", "target",
                                         "actor",  "actor",  NULL};
    struct buf base;
    int rc;

    buf_init(&base, 1024);
    rc = buf_puts(&base, "/v1/audit-log") == 0 ? CLI_OK : CLI_REFUSED;
    if (rc == CLI_OK)
        rc = time_add(x, &base, "since");
    if (rc == CLI_OK)
        rc = time_add(x, &base, "until");
    if (rc == CLI_OK)
        rc = client_list(x, base.data, params, audit_cols);
    buf_cleanup(&base);
    return rc;
}

static const struct config_opt list_opts[] = {
    {"action", "ACTION", NULL, "only this action, such as endpoint.updated", 0, 0},
    {"target", "ID", NULL, "only changes of this object (ep_..., key_..., dlv_...)", 0, 0},
    {"actor", "ID", NULL, "only changes made by this credential (key_...)", 0, 0},
    {"since", "TIME", NULL, "from then on (RFC 3339, or a duration ago: 2h)", 0, 0},
    {"until", "TIME", NULL, "before then (RFC 3339, or a duration ago)", 0, 0},
    {"limit", "N", NULL, "at most N per page", 0, 0},
    {"after", "CURSOR", NULL, "the page after this cursor (printed as \"more:\")", 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0},
};

static const struct cli_sub audit_subs[] = {
    {"list",
     "[--action ACTION] [--target ID] [--actor ID] [--since TIME] [--until TIME] [--limit N] "
     "[--after CURSOR]",
     "list the account's audit log, newest first (--json shows each change's details)", list_opts,
     0, 0, audit_list,
     "Every change made through the API is recorded with the credential that made it:\n"
     "endpoints created, updated, deleted, enabled and disabled, secrets revealed and\n"
     "rotated, replays and retries, accounts and API keys created and deleted."},
    {NULL, NULL, NULL, NULL, 0, 0, NULL, NULL},
};

const struct cli_cmd cmd_audit = {
    .name = "audit",
    .usage = "list [OPTIONS]",
    .summary = "read the audit log: who changed what, and when",
    .run = audit_run,
    .subs = audit_subs,
};

static int
audit_run(int argc, char **argv)
{
    return client_cmd_run(&cmd_audit, argc, argv);
}
