/* logstream.c — ring buffer of log records and SSE subscribers.
 * One mutex guards the ring and the subscriber list. The content reader copies whole records
 * ("data: <json>\n\n") into libmicrohttpd's buffer; with nothing to send it suspends the
 * connection and returns 0, and logstream_push resumes every suspended subscriber. Records
 * are kept LOGSTREAM_RING deep: a reader whose cursor falls off the ring's end is ended. */
#include "obs/logstream.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"
#include "util/util.h"

struct record {
    char *line;
    int level;
};

struct logstream_sub {
    struct logstream *ls;
    struct MHD_Connection *conn;
    uint64_t cursor;           /* sequence number of the next record to send */
    int min_level;
    int suspended;
    int greeted;
    double last_sent;
    struct logstream_sub *next;
};

struct logstream {
    pthread_mutex_t lock;
    struct record ring[LOGSTREAM_RING];
    uint64_t next_seq;         /* the ring holds [next_seq - LOGSTREAM_RING, next_seq) */
    struct logstream_sub *subs;
    int nsubs;
    int closed;
};

int logstream_new(struct logstream **out) {
    struct logstream *ls = calloc(1, sizeof *ls);
    if (!ls) return SCOUT_ENOMEM;
    pthread_mutex_init(&ls->lock, NULL);
    *out = ls;
    return SCOUT_OK;
}

void logstream_free(struct logstream *ls) {
    if (!ls) return;
    for (int i = 0; i < LOGSTREAM_RING; i++) free(ls->ring[i].line);
    pthread_mutex_destroy(&ls->lock);
    free(ls);
}

static void resume_locked(struct logstream *ls, int only_due) {
    double now = util_monotonic();
    for (struct logstream_sub *s = ls->subs; s; s = s->next) {
        if (!s->suspended || !s->conn) continue;
        if (only_due && now - s->last_sent < LOGSTREAM_HEARTBEAT) continue;
        s->suspended = 0;
        MHD_resume_connection(s->conn);
    }
}

void logstream_push(struct logstream *ls, int level, const char *line) {
    char *copy = strdup(line);
    if (!copy) return;
    pthread_mutex_lock(&ls->lock);
    struct record *r = &ls->ring[ls->next_seq % LOGSTREAM_RING];
    free(r->line);
    r->line = copy;
    r->level = level;
    ls->next_seq++;
    resume_locked(ls, 0);
    pthread_mutex_unlock(&ls->lock);
}

struct logstream_sub *logstream_subscribe(struct logstream *ls, int min_level) {
    struct logstream_sub *s = NULL;
    pthread_mutex_lock(&ls->lock);
    if (!ls->closed && ls->nsubs < LOGSTREAM_MAX_SUBSCRIBERS && (s = calloc(1, sizeof *s))) {
        s->ls = ls;
        s->min_level = min_level;
        /* Start with what is still in the ring: a new viewer sees recent history at once. */
        s->cursor = ls->next_seq > LOGSTREAM_RING ? ls->next_seq - LOGSTREAM_RING : 0;
        s->last_sent = util_monotonic();
        s->next = ls->subs;
        ls->subs = s;
        ls->nsubs++;
    }
    pthread_mutex_unlock(&ls->lock);
    return s;
}

void logstream_bind(struct logstream_sub *sub, void *connection) {
    pthread_mutex_lock(&sub->ls->lock);
    sub->conn = connection;
    pthread_mutex_unlock(&sub->ls->lock);
}

ssize_t logstream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    struct logstream_sub *s = cls;
    struct logstream *ls = s->ls;
    size_t len = 0;
    (void)pos;
    pthread_mutex_lock(&ls->lock);
    if (ls->closed) {
        pthread_mutex_unlock(&ls->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    uint64_t oldest = ls->next_seq > LOGSTREAM_RING ? ls->next_seq - LOGSTREAM_RING : 0;
    /* A new viewer starts at the oldest record still kept; if the ring moved on before its
     * first read, it simply starts later. Only a viewer that fell behind is dropped. */
    if (!s->greeted && s->cursor < oldest) s->cursor = oldest;
    if (s->cursor < oldest) {
        pthread_mutex_unlock(&ls->lock);   /* too slow: records it never saw are gone */
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (!s->greeted && max > 32) {
        len += (size_t)snprintf(buf, max, "retry: 3000\n\n");
        s->greeted = 1;
    }
    while (s->cursor < ls->next_seq) {
        struct record *r = &ls->ring[s->cursor % LOGSTREAM_RING];
        size_t need = strlen(r->line) + 8;
        if (r->level < s->min_level) {
            s->cursor++;
            continue;
        }
        if (len + need >= max) break;   /* snprintf needs room for its NUL too */
        len += (size_t)snprintf(buf + len, max - len, "data: %s\n\n", r->line);
        s->cursor++;
    }
    if (len == 0 && util_monotonic() - s->last_sent >= LOGSTREAM_HEARTBEAT && max > 16)
        len = (size_t)snprintf(buf, max, ": keep-alive\n\n");
    if (len > 0) {
        s->last_sent = util_monotonic();
    } else if (s->conn) {
        s->suspended = 1;   /* nothing to send: wait, holding no thread, for push or tick */
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&ls->lock);
    return (ssize_t)len;
}

void logstream_release(void *cls) {
    struct logstream_sub *s = cls;
    struct logstream *ls = s->ls;
    pthread_mutex_lock(&ls->lock);
    for (struct logstream_sub **pp = &ls->subs; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            ls->nsubs--;
            break;
        }
    }
    pthread_mutex_unlock(&ls->lock);
    free(s);
}

void logstream_tick(struct logstream *ls) {
    pthread_mutex_lock(&ls->lock);
    resume_locked(ls, 1);
    pthread_mutex_unlock(&ls->lock);
}

void logstream_close(struct logstream *ls) {
    pthread_mutex_lock(&ls->lock);
    ls->closed = 1;
    resume_locked(ls, 0);
    pthread_mutex_unlock(&ls->lock);
}
