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
};

/* Sets a JSON response; steals body. */
void http_json(struct http_resp *r, int status, json_t *body);

/* Sets {"detail": "..."} with the status. */
void http_error(struct http_resp *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sets a raw response; copies the bytes. */
void http_raw(struct http_resp *r, int status, const char *content_type, const char *body, size_t len);

/* Adds a response header (name must have static storage); ignored past the maximum. */
void http_header_add(struct http_resp *r, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses the body as JSON into *out (new reference). On failure fills r with 400 (malformed)
 * and returns 0. An empty body is malformed. */
int http_parse_body(const struct http_req *req, struct http_resp *r, json_t **out);

/* A query-string argument's value, or NULL. */
const char *http_query(const struct http_req *req, const char *name);

/* A request header's value, or NULL. */
const char *http_header(const struct http_req *req, const char *name);

#endif
