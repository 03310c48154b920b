/* log.c — JSON log lines on stdout. A record is built with jansson (so every string is escaped
 * correctly) and written with one fwrite under stdio's own lock, so lines from different
 * threads never interleave. */
#include "obs/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static _Atomic int min_level = LOG_INFO;
/* Set once at start-up and cleared at shutdown, like min_level: process-wide configuration. */
static void (*_Atomic sink_fn)(void *, int, const char *);
static void *_Atomic sink_ud;
static _Thread_local int in_sink;   /* a sink that logs must not re-enter itself */

void log_set_sink(void (*sink)(void *ud, int level, const char *line), void *ud) {
    sink_ud = ud;
    sink_fn = sink;
}
static const char *level_names[] = {"debug", "info", "warn", "error"};

int log_set_level(const char *name) {
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            min_level = i;
            return 1;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        min_level = LOG_WARN;
        return 1;
    }
    return 0;
}

int log_enabled(enum log_level level) {
    return (int)level >= min_level;
}

void log_fields(enum log_level level, const char *msg, json_t *fields) {
    char ts[32];
    json_t *rec;
    char *line;
    if ((int)level < min_level) {
        json_decref(fields);
        return;
    }
    rec = json_object();
    util_iso8601(util_now(), ts, sizeof ts);
    json_object_set_new(rec, "time", json_string(ts));
    json_object_set_new(rec, "level", json_string(level_names[level]));
    json_object_set_new(rec, "msg", json_string(msg ? msg : ""));
    if (fields) json_object_update(rec, fields);
    json_decref(fields);
    line = json_dumps(rec, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(rec);
    if (!line) return;
    flockfile(stdout);
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    funlockfile(stdout);
    void (*sink)(void *, int, const char *) = sink_fn;
    if (sink && !in_sink) {
        in_sink = 1;
        sink(sink_ud, (int)level, line);
        in_sink = 0;
    }
    free(line);
}

void log_msg(enum log_level level, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    if ((int)level < min_level) return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fields(level, buf, NULL);
}
