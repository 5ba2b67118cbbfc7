/*
 * Validation of published events against the catalog (catalog.h). It reports
 * every problem at once, each with the path it concerns ("data.agent_id",
 * "data.updated_fields[2]", "event", "timestamp") and what was expected in
 * plain words, for the 422 answer's "fields".
 */
#ifndef FLUXHOOK_EVENTS_SCHEMA_H
#define FLUXHOOK_EVENTS_SCHEMA_H

#include <stdint.h>

#include <jansson.h>

#include "events/catalog.h"

#define SCHEMA_MAX_PROBLEMS 64
#define SCHEMA_PATH_MAX 128
/*
 * Room for the longest message: "unknown event type '<64 bytes>'; expected
 * one of <all nine names>" is about 280 bytes.
 */
#define SCHEMA_PROBLEM_MAX 320

struct schema_problem {
    char path[SCHEMA_PATH_MAX];       /* "data.agent_id"; valid UTF-8, cut if longer */
    char problem[SCHEMA_PROBLEM_MAX]; /* "must be an integer >= 0" */
};

struct schema_report {
    struct schema_problem items[SCHEMA_MAX_PROBLEMS];
    int n;         /* problems in items */
    int truncated; /* 1 when more problems were found than items holds */
};

/* Empties rep. */
void schema_report_init(struct schema_report *rep);

/*
 * Appends one problem (printf-style text) at path; past SCHEMA_MAX_PROBLEMS
 * it only sets rep->truncated. Path and text are cut at a UTF-8 boundary.
 */
void schema_report_add(struct schema_report *rep, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The problems as a new JSON array of {"path", "problem"}, for the error
 * body's "fields". Returns NULL when out of memory.
 */
json_t *schema_report_json(const struct schema_report *rep);

/*
 * Checks data against type t: every field of t, in catalog order. Problems
 * are appended to rep with paths under prefix ("data" gives
 * "data.agent_id"). Members that t does not name are not looked at. When
 * data is not an object, reports "must be an object" at prefix.
 * Returns 0 when nothing was wrong, else ERR_VALIDATION.
 */
int schema_data_check(const struct catalog_type *t, const json_t *data, const char *prefix,
                      struct schema_report *rep);

/*
 * 1 when s is an RFC 3339 UTC timestamp that fluxhook accepts and delivers
 * as is: "2024-01-01T12:00:00Z", optionally with up to 9 fraction digits,
 * upper-case T and Z. Sets *ms when ms is not NULL. Else 0.
 */
int schema_timestamp_ok(const char *s, int64_t *ms);

/*
 * Checks a whole publish request {"event", "data", "timestamp"?}: event is a
 * catalog type, data an object that passes schema_data_check(), timestamp (when
 * present and not null) acceptable to schema_timestamp_ok(), and no other
 * member. root must be an object (the caller reports anything else).
 * Appends every problem to rep. Returns 0 or ERR_VALIDATION.
 */
int schema_publish_check(const json_t *root, struct schema_report *rep);

#endif
