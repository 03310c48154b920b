/* logstream.h — the live log: a bounded ring of recent JSON log records and the
 * Server-Sent-Events subscribers reading it (/logs/stream).
 * A subscriber that has nothing to read is suspended (it costs no thread); a new record
 * resumes it. One that falls behind the ring's oldest record is dropped rather than ever
 * slowing the server down. */
#ifndef SCOUT_LOGSTREAM_H
#define SCOUT_LOGSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LOGSTREAM_RING 1024          /* records kept */
#define LOGSTREAM_MAX_SUBSCRIBERS 32
#define LOGSTREAM_HEARTBEAT 15.0     /* seconds between keep-alive comments */

struct logstream;
struct logstream_sub;

int logstream_new(struct logstream **out);
void logstream_free(struct logstream *ls);

/* Adds a record (one JSON object, no newline) at the given level (0 debug .. 3 error). */
void logstream_push(struct logstream *ls, int level, const char *line);

/* A new subscriber for records of at least min_level; NULL when there are too many. */
struct logstream_sub *logstream_subscribe(struct logstream *ls, int min_level);

/* The libmicrohttpd content reader and free callback of a subscriber's response; bind
 * attaches the connection (needed to suspend and resume it). */
ssize_t logstream_read(void *sub, uint64_t pos, char *buf, size_t max);
void logstream_release(void *sub);
void logstream_bind(struct logstream_sub *sub, void *connection);

/* Resumes subscribers due a heartbeat; call a few times a second. */
void logstream_tick(struct logstream *ls);

/* Ends every stream (at shutdown) and refuses new subscribers. */
void logstream_close(struct logstream *ls);

#endif
