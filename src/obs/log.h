/* log.h — structured logging: one JSON object per line on stdout.
 * Every record has time, level and msg; callers add fields as a jansson object. Secrets must
 * never be passed in: this module cannot tell a token from a test name. */
#ifndef SCOUT_LOG_H
#define SCOUT_LOG_H

#include <jansson.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the lowest level written ("debug", "info", "warn", "error"); returns 0 on an unknown name. */
int log_set_level(const char *name);

/* Also hands every written record to sink (the live log stream); NULL detaches it. */
void log_set_sink(void (*sink)(void *ud, int level, const char *line), void *ud);

/* Writes a record with printf-style msg. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when records of this level are written: callers skip building fields that would be dropped. */
int log_enabled(enum log_level level);

/* Writes a record with msg and the extra fields; takes ownership of fields (may be NULL). */
void log_fields(enum log_level level, const char *msg, json_t *fields);

#endif
