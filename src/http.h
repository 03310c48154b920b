/* http.h — the request and response every handler sees, independent of the HTTP library.
 * A handler reads a fully received, size-checked request and fills a response; errors use
 * FastAPI's shape {"detail": "<sentence>"} so the original's clients read them unchanged. */
#ifndef SCOUT_HTTP_H
#define SCOUT_HTTP_H

#include <stddef.h>
#include <jansson.h>

struct logstream_sub;

struct http_req {
    const char *method;       /* "GET", "POST", ... (HEAD is routed as GET) */
    const char *path;         /* decoded path, without the query string */
    const char *param;        /* the {id} segment of the route, or NULL */
    const char *body;         /* NUL-terminated; body_len bytes */
    size_t body_len;
    const char *client;       /* peer address as text */
    void *conn;               /* the library's connection, for http_header */
};

#define HTTP_MAX_EXTRA_HEADERS 8

struct http_resp {
    int status;
    int nheaders;             /* extra headers (WWW-Authenticate, Retry-After, ...) */
    struct {
        const char *name;     /* static storage */
        char value[128];
    } headers[HTTP_MAX_EXTRA_HEADERS];
    json_t *json;             /* owned; sent as application/json when set */
    char *body;               /* owned raw body when json is NULL */
    size_t body_len;
    const char *content_type; /* for a raw body */
    struct logstream_sub *stream; /* set: answer with this live log stream (owned) */
    struct http_deferred *deferred; /* set by http_defer: the answer comes later */
};

/* Sets a JSON response; steals body. */
void http_json(struct http_resp *r, int status, json_t *body);

/* Sets {"detail": "..."} with the status. */
void http_error(struct http_resp *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets a raw response; copies the bytes. */
void http_raw(struct http_resp *r, int status, const char *content_type, const char *body, size_t len);

/* The same, taking ownership of body (malloc'd, len bytes): no copy. */
void http_raw_take(struct http_resp *r, int status, const char *content_type, char *body, size_t len);

/* Adds a response header (name must have static storage); ignored past the maximum. */
void http_header_add(struct http_resp *r, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses the body as JSON into *out (new reference). On failure fills r with 400 (malformed)
 * and returns 0. An empty body is malformed. */
int http_parse_body(const struct http_req *req, struct http_resp *r, json_t **out);

/* A query-string argument's value, or NULL. */
const char *http_query(const struct http_req *req, const char *name);

/* A request header's value, or NULL. */
const char *http_header(const struct http_req *req, const char *name);

/* A deferred answer: a handler that waits for slow work (the store's commit) without holding a
 * server thread. It calls http_defer(), hands the result to that work, and returns; the work
 * calls http_deferred_done() exactly once, from any thread, when it has finished. The server
 * then calls finish(arg, r) on one of its own threads, with the response as the handler left
 * it, to fill in the answer; finish owns arg. NULL when out of memory (nothing is deferred). */
typedef void (*http_finish_fn)(void *arg, struct http_resp *r);
struct http_deferred *http_defer(struct http_resp *r, http_finish_fn finish, void *arg);

/* The deferred work has finished: wakes whoever waits for the answer. Call once. */
void http_deferred_done(struct http_deferred *d);

/* For the server: arranges for wake(ud) to be called when the work finishes. 0 when it has
 * finished already (no wake will come: finish now), 1 when wake will be called. */
int http_deferred_park(struct http_deferred *d, void (*wake)(void *ud), void *ud);

/* For the server: fills r through the handler's finish and frees d. Only once the work has
 * finished. */
void http_deferred_finish(struct http_deferred *d, struct http_resp *r);

/* For callers without an event loop (fuzzers, tests): waits for the work to finish, then
 * http_deferred_finish(r->deferred, r). Does nothing when nothing was deferred. */
void http_deferred_wait(struct http_resp *r);

#endif
