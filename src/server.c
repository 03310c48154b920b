/* server.c — the HTTP front: libmicrohttpd with an epoll thread pool, one daemon for the API
 * port and one for the UI port.
 * Requests are received whole before a handler runs, within fixed caps (common.h): headers
 * over SCOUT_MAX_HEADERS get 431, bodies over SCOUT_MAX_BODY get 413 (read and discarded up to
 * SCOUT_MAX_BODY_DRAIN so the client sees the answer; beyond that the connection is closed
 * after the answer), and a connection that stalls mid-request is closed after the configured
 * timeout. Every answer, including these, is JSON in FastAPI's shape. */
#include "server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/ui.h"
#include "http.h"
#include "obs/log.h"
#include "util/util.h"

struct server;

/* What a daemon's callbacks receive: the server and which port they serve. */
struct listener {
    struct server *srv;
    int is_ui;
};

struct server {
    struct app *app;
    struct MHD_Daemon *api, *ui;
    struct listener api_l, ui_l;
    _Atomic int inflight;       /* requests received and not yet completed */
};

/* Per-request state, from the first callback to the completion notice. */
struct request_state {
    char *body;
    size_t len, cap;
    int reject;                 /* status to answer instead of routing (413, 431), or 0 */
    size_t discarded;
    double start;
    int is_ui;
};

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    size_t *total = cls;
    (void)kind;
    *total += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

static void client_address(struct MHD_Connection *c, char *buf, size_t len) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = '\0';
    if (!ci || !ci->client_addr) return;
    if (ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, buf, (socklen_t)len);
    else if (ci->client_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, buf, (socklen_t)len);
}

static enum MHD_Result send_response(struct MHD_Connection *c, struct http_resp *r) {
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char *body;
    size_t len;
    const char *ctype;
    if (r->json) {
        body = json_dumps(r->json, JSON_COMPACT);
        len = body ? strlen(body) : 0;
        ctype = "application/json";
    } else {
        body = r->body;
        r->body = NULL;
        len = r->body_len;
        ctype = r->content_type ? r->content_type : "text/plain; charset=utf-8";
    }
    if (!body) {
        body = strdup("{\"detail\":\"out of memory\"}");
        len = body ? strlen(body) : 0;
        ctype = "application/json";
        r->status = 500;
    }
    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void log_request(const char *method, const char *url, int status, double start, const char *client) {
    /* Successful requests log at debug: at tens of thousands per second a line each would
     * cost more than the request. Refusals and errors log at info and above. */
    enum log_level level = status >= 500 ? LOG_ERROR : status >= 400 ? LOG_INFO : LOG_DEBUG;
    json_t *f = json_pack("{s:s, s:s, s:i, s:f, s:s}", "method", method, "route", api_route_template(method, url),
                          "status", status, "duration_ms", (util_monotonic() - start) * 1000.0, "client", client);
    log_fields(level, "request", f);
}

static enum MHD_Result answer(struct server *srv, struct MHD_Connection *c, struct request_state *st,
                              const char *url, const char *method) {
    struct http_resp resp = {0};
    struct http_req req = {0};
    char param[SCOUT_MAX_REQUEST_ID + 64], client[INET6_ADDRSTRLEN];
    enum MHD_Result ret;
    int status = 404;
    api_handler fn;

    client_address(c, client, sizeof client);
    if (st->reject == 413) {
        http_error(&resp, 413, "request body is larger than %d bytes", SCOUT_MAX_BODY);
    } else if (st->reject == 431) {
        http_error(&resp, 431, "request headers are larger than %d bytes", SCOUT_MAX_HEADERS);
    } else if ((fn = api_route(method, url, param, sizeof param, &status))) {
        req.method = method;
        req.path = url;
        req.param = fn ? param : NULL;
        req.body = st->body ? st->body : "";
        req.body_len = st->len;
        req.client = client;
        req.conn = c;
        fn(srv->app, &req, &resp);
    } else if (st->is_ui && status == 404 && (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
        ui_serve(srv->app, url, &resp);
    } else if (status == 405) {
        http_error(&resp, 405, "Method Not Allowed");
    } else {
        http_error(&resp, 404, "Not Found");
    }
    if (!resp.status) http_error(&resp, 500, "the handler produced no response");
    log_request(method, url, resp.status, st->start, client);
    ret = send_response(c, &resp);
    json_decref(resp.json);
    free(resp.body);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls) {
    struct listener *l = cls;
    struct request_state *st = *con_cls;
    (void)version;
    if (!st) {
        size_t hsize = strlen(url);
        const char *cl;
        st = calloc(1, sizeof *st);
        if (!st) return MHD_NO;
        *con_cls = st;
        st->start = util_monotonic();
        st->is_ui = l->is_ui;
        atomic_fetch_add(&l->srv->inflight, 1);
        MHD_get_connection_values(c, MHD_HEADER_KIND, add_header_size, &hsize);
        if (hsize > SCOUT_MAX_HEADERS) st->reject = 431;
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && !st->reject) {
            unsigned long long n = strtoull(cl, NULL, 10);
            if (n > SCOUT_MAX_BODY) st->reject = 413;
            /* Too big to be worth reading: answer now; MHD closes the connection after. */
            if (n > SCOUT_MAX_BODY_DRAIN) return answer(l->srv, c, st, url, method);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (st->reject) {
            st->discarded += n;
            if (st->discarded > SCOUT_MAX_BODY_DRAIN) return answer(l->srv, c, st, url, method);
            return MHD_YES;
        }
        if (st->len + n > SCOUT_MAX_BODY) {
            st->reject = 413;
            st->discarded = st->len + n;
            free(st->body);
            st->body = NULL;
            st->len = 0;
            return MHD_YES;
        }
        if (st->len + n + 1 > st->cap) {
            size_t cap = st->cap ? st->cap : 4096;
            while (cap < st->len + n + 1) cap *= 2;
            char *b = realloc(st->body, cap);
            if (!b) return MHD_NO;
            st->body = b;
            st->cap = cap;
        }
        memcpy(st->body + st->len, upload_data, n);
        st->len += n;
        st->body[st->len] = '\0';
        return MHD_YES;
    }
    return answer(l->srv, c, st, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    struct listener *l = cls;
    struct request_state *st = *con_cls;
    (void)c;
    (void)toe;
    if (!st) return;
    free(st->body);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&l->srv->inflight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    char buf[512];
    (void)cls;
    vsnprintf(buf, sizeof buf, fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    log_msg(LOG_WARN, "http: %s", buf);
}

static struct MHD_Daemon *start_daemon(struct server *srv, struct listener *l, int port) {
    struct config *cfg = srv->app->cfg;
    struct addrinfo hints = {0}, *ai = NULL;
    char portbuf[16];
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    unsigned threads = (unsigned)cfg->threads;
    struct MHD_Daemon *d;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads == 0) threads = (unsigned)(ncpu > 2 ? 2 * ncpu : 4);
    snprintf(portbuf, sizeof portbuf, "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(cfg->host, portbuf, &hints, &ai) != 0 || !ai) {
        log_msg(LOG_ERROR, "cannot resolve listen address %s", cfg->host);
        return NULL;
    }
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    l->srv = srv;
    d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, l,
                         MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                         MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                         MHD_OPTION_THREAD_POOL_SIZE, threads,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->request_timeout,
                         /* Room for SCOUT_MAX_HEADERS and then some, so that our own check
                          * answers first (in JSON) rather than the library's fixed page. */
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(4 * SCOUT_MAX_HEADERS),
                         MHD_OPTION_CONNECTION_LIMIT, 4096u,
                         MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
                         MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d) log_msg(LOG_ERROR, "cannot listen on %s:%d (in use, or not allowed)", cfg->host, port);
    return d;
}

int server_start(struct server **out, struct app *app) {
    struct server *srv = calloc(1, sizeof *srv);
    if (!srv) return SCOUT_ENOMEM;
    srv->app = app;
    srv->api_l.is_ui = 0;
    srv->ui_l.is_ui = 1;
    srv->api = start_daemon(srv, &srv->api_l, app->cfg->port);
    if (!srv->api) goto fail;
    if (app->cfg->ui_port) {
        srv->ui = start_daemon(srv, &srv->ui_l, app->cfg->ui_port);
        if (!srv->ui) goto fail;
    }
    *out = srv;
    return SCOUT_OK;
fail:
    if (srv->api) MHD_stop_daemon(srv->api);
    free(srv);
    return SCOUT_ERR;
}

void server_stop(struct server *srv, double grace) {
    double deadline = util_monotonic() + grace;
    if (!srv) return;
    /* Stop accepting, let requests in flight finish, then close every connection. */
    MHD_socket fd;
    if (srv->api && (fd = MHD_quiesce_daemon(srv->api)) != MHD_INVALID_SOCKET) close(fd);
    if (srv->ui && (fd = MHD_quiesce_daemon(srv->ui)) != MHD_INVALID_SOCKET) close(fd);
    while (atomic_load(&srv->inflight) > 0 && util_monotonic() < deadline) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (srv->api) MHD_stop_daemon(srv->api);
    if (srv->ui) MHD_stop_daemon(srv->ui);
    free(srv);
}
