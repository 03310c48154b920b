/* http.c — response builders, body parsing and deferred answers, shared by every handler. */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void http_json(struct http_resp *r, int status, json_t *body) {
    json_decref(r->json);
    free(r->body);
    r->body = NULL;
    r->status = status;
    r->json = body;
}

void http_error(struct http_resp *r, int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages may quote client input; should one still not be valid UTF-8, its non-ASCII
     * bytes become '?' rather than the sentence being lost. */
    json_t *detail = json_string(msg);
    if (!detail) {
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80) *p = '?';
        detail = json_string(msg);
    }
    http_json(r, status, json_pack("{s:o}", "detail", detail));
}

void http_raw_take(struct http_resp *r, int status, const char *content_type, char *body, size_t len) {
    json_decref(r->json);
    r->json = NULL;
    free(r->body);
    r->body = body;
    r->body_len = body ? len : 0;
    r->status = status;
    r->content_type = content_type;
}

void http_raw(struct http_resp *r, int status, const char *content_type, const char *body, size_t len) {
    char *copy = malloc(len ? len : 1);
    if (copy) memcpy(copy, body, len);
    http_raw_take(r, status, content_type, copy, len);
}

void http_header_add(struct http_resp *r, const char *name, const char *fmt, ...) {
    va_list ap;
    if (r->nheaders >= HTTP_MAX_EXTRA_HEADERS) return;
    r->headers[r->nheaders].name = name;
    va_start(ap, fmt);
    vsnprintf(r->headers[r->nheaders].value, sizeof r->headers[r->nheaders].value, fmt, ap);
    va_end(ap);
    r->nheaders++;
}

int http_parse_body(const struct http_req *req, struct http_resp *r, json_t **out) {
    json_error_t jerr;
    json_t *v;
    if (req->body_len == 0) {
        http_error(r, 400, "the request body must be JSON");
        return 0;
    }
    v = json_loadb(req->body, req->body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        http_error(r, 400, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return 0;
    }
    *out = v;
    return 1;
}

const char *http_query(const struct http_req *req, const char *name) {
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(const struct http_req *req, const char *name) {
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_HEADER_KIND, name);
}

/* ---- deferred answers ---------------------------------------------------------------- */

enum { DEFER_RUNNING, DEFER_PARKED, DEFER_DONE };

struct http_deferred {
    _Atomic int state;
    http_finish_fn finish;
    void *arg;
    void (*wake)(void *ud);   /* set by park before the state becomes PARKED */
    void *wake_ud;
};

struct http_deferred *http_defer(struct http_resp *r, http_finish_fn finish, void *arg) {
    struct http_deferred *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    atomic_init(&d->state, DEFER_RUNNING);
    d->finish = finish;
    d->arg = arg;
    r->deferred = d;
    return d;
}

void http_deferred_done(struct http_deferred *d) {
    int expected = DEFER_RUNNING;
    if (atomic_compare_exchange_strong(&d->state, &expected, DEFER_DONE)) return;   /* not parked yet */
    /* Parked: the server sleeps until wake; nothing else touches d meanwhile. */
    void (*wake)(void *) = d->wake;
    void *ud = d->wake_ud;
    atomic_store(&d->state, DEFER_DONE);
    wake(ud);
}

int http_deferred_park(struct http_deferred *d, void (*wake)(void *ud), void *ud) {
    int expected = DEFER_RUNNING;
    d->wake = wake;
    d->wake_ud = ud;
    return atomic_compare_exchange_strong(&d->state, &expected, DEFER_PARKED);
}

void http_deferred_finish(struct http_deferred *d, struct http_resp *r) {
    r->deferred = NULL;
    d->finish(d->arg, r);
    free(d);
}

static void post_sem(void *ud) {
    sem_post(ud);
}

void http_deferred_wait(struct http_resp *r) {
    sem_t done;
    if (!r->deferred) return;
    sem_init(&done, 0, 0);
    if (http_deferred_park(r->deferred, post_sem, &done))
        while (sem_wait(&done) != 0 && errno == EINTR) {
        }
    sem_destroy(&done);
    http_deferred_finish(r->deferred, r);
}
