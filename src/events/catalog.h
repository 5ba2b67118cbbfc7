/*
 * The WorkFlux event catalog (CONTRACT §1): the nine event types, the fields
 * of each one's `data` object and its sample payload, held in one constant
 * table. The validator (schema.h) and GET /v1/event-types both read it.
 */
#ifndef FLUXHOOK_EVENTS_CATALOG_H
#define FLUXHOOK_EVENTS_CATALOG_H

#include <stddef.h>

#include <jansson.h>

#define CATALOG_MAX_FIELDS 10 /* most fields one type declares */

/* What a field's value must be. */
enum catalog_kind {
    CATALOG_STRING,  /* a non-empty JSON string */
    CATALOG_EMAIL,   /* a non-empty JSON string containing exactly one '@' */
    CATALOG_INT,     /* a JSON integer (no fraction, no exponent), within min..max */
    CATALOG_NUMBER,  /* any JSON number, within min..max */
    CATALOG_BOOL,    /* true or false */
    CATALOG_ENUM,    /* a JSON string equal to one of values */
    CATALOG_STRINGS, /* a JSON array of non-empty strings (non-empty when nonempty is set) */
};

struct catalog_field {
    const char *name; /* member of data: "agent_id" */
    enum catalog_kind kind;
    int required;              /* 1: must be present */
    int nullable;              /* 1: JSON null is accepted too */
    int nonempty;              /* strings and arrays: 1 when "" or [] is refused */
    int has_min;               /* INT, NUMBER: min applies */
    int has_max;               /* INT, NUMBER: max applies */
    double min;                /* inclusive */
    double max;                /* inclusive */
    const char *const *values; /* ENUM: the accepted strings, NULL-terminated */
};

struct catalog_type {
    const char *name;        /* "conversation.started" */
    const char *description; /* the guide's words: "New conversation initiated" */
    const char *sample;      /* the sample `data` object, raw JSON */
    size_t nfields;
    struct catalog_field fields[CATALOG_MAX_FIELDS];
};

/* The type called name, or NULL when the catalog has none. */
const struct catalog_type *catalog_type_find(const char *name);

/*
 * fluxhook's own types (endpoint.disabled, endpoint.enabled, delivery.failed,
 * endpoint.recovered), sent only to operational endpoints; NULL for any other
 * name. catalog_type_find() and the count, at and names calls below cover
 * the producers' types only; catalog_any_find() finds either kind.
 */
const struct catalog_type *catalog_own_find(const char *name);
const struct catalog_type *catalog_any_find(const char *name);
/* "endpoint.disabled, endpoint.enabled, ..." like catalog_type_names(). */
const char *catalog_own_names(char *out, size_t outlen);

/* How many types the catalog holds (9). */
size_t catalog_type_count(void);

/* The i-th type in catalog order (the guide's order), or NULL when i is past the end. */
const struct catalog_type *catalog_type_at(size_t i);

/*
 * Writes "conversation.started, conversation.completed, ..." (every type, in
 * order) to out, truncated to outlen. Returns out.
 */
const char *catalog_type_names(char *out, size_t outlen);

/*
 * Writes the plain-words type of f to out ("string", "integer >= 0",
 * "one of low, normal, high, urgent", ...). Returns out.
 */
const char *catalog_field_describe(const struct catalog_field *f, char *out, size_t outlen);

/*
 * The whole catalog for GET /v1/event-types, a new reference:
 * {"data":[{"event","description","fields":[{"name","type","required",
 * "constraint"?}],"sample":{...}}]}, fluxhook's own types last, marked
 * "source":"fluxhook". "constraint" appears when the field has
 * bounds, values or is nullable: {"min"?, "max"?, "nullable"?, "values"?}.
 * Returns NULL when out of memory.
 */
json_t *catalog_json(void);

/*
 * The same document as catalog_json() as compact JSON text, except that each
 * sample keeps its own number tokens (0.95 stays 0.95, where jansson would
 * print 0.94999999999999996). Sets *len (when not NULL) to its length.
 * Returns a NUL-terminated string the caller frees, or NULL when out of memory.
 */
char *catalog_json_text(size_t *len);

#endif
