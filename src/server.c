/* server.c — the HTTP front: libmicrohttpd with an epoll thread pool, one daemon for the API
 * port and one for the UI port.
 * Requests are received whole before a handler runs, within fixed caps (common.h): headers
 * over SCOUT_MAX_HEADERS get 431, bodies over SCOUT_MAX_BODY get 413 (read and discarded up to
 * SCOUT_MAX_BODY_DRAIN so the client sees the answer; beyond that the connection is closed
 * after the answer), and a connection that stalls mid-request is closed after the configured
 * timeout. Every answer, including these, is JSON in FastAPI's shape. */
#include "server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>
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
#include "obs/metrics.h"
#include "util/util.h"

struct server;

/* What a daemon's callbacks receive: the server and which port they serve. */
struct listener {
    struct server *srv;
    int is_ui;
};

#define MAX_LIST 16          /* CORS origins */
#define WATCHDOG_PERIOD_NS (250 * 1000000L)
#define STREAM_SNDBUF (64 * 1024)   /* socket send buffer of live log streams */

/* A connection as the slow-client watchdog sees it. libmicrohttpd's own timeout only measures
 * idleness, so a client trickling one byte at a time would hold a connection forever; here a
 * request must arrive whole within request_timeout of the connection's start or of the end
 * of its previous request. */
struct conn_track {
    int fd;
    double deadline;
    int busy;                   /* a handler or a response owns the connection */
    int cut;
    struct conn_track *prev, *next;
};

struct server {
    struct app *app;
    struct MHD_Daemon *api, *ui;
    struct listener api_l, ui_l;
    _Atomic int inflight;       /* requests received and not yet completed */
    _Atomic int deferred;       /* of those, suspended until their deferred answer is ready */
    _Atomic int draining;       /* SIGTERM received: new requests get 503 */
    char *origins[MAX_LIST];    /* origins allowed by CORS */
    int norigins;
    pthread_mutex_t track_lock;  /* guards the tracked list and every conn_track in it */
    struct conn_track *tracked;
    pthread_t watchdog;
    int watchdog_started;
    int stopping;               /* guarded by track_lock; wakes the watchdog through stop_cv */
    pthread_cond_t stop_cv;
};

static void track_busy(struct server *srv, struct MHD_Connection *c, int busy) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_track *t = ci ? ci->socket_context : NULL;
    if (!t) return;
    pthread_mutex_lock(&srv->track_lock);
    t->busy = busy;
    if (!busy) t->deadline = util_monotonic() + srv->app->cfg->request_timeout;
    pthread_mutex_unlock(&srv->track_lock);
}

/* Per-request state, from the first callback to the completion notice. */
struct request_state {
    char *body;
    size_t len, cap;
    int reject;                 /* status to answer instead of routing (413, 431), or 0 */
    size_t discarded;
    double start;
    int is_ui;
    struct http_deferred *deferred; /* the handler's answer comes later (the connection is suspended) */
    struct http_resp resp;          /* the response as the handler left it, while deferred */
    const char *template;           /* the route's template, while deferred */
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

/* A live log stream: chunked, read from the ring by logstream_read. */
static enum MHD_Result send_stream(struct MHD_Connection *c, struct http_resp *r) {
    struct logstream_sub *sub = r->stream;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int sndbuf = STREAM_SNDBUF;
    r->stream = NULL;
    /* A small send buffer: a viewer that stops reading is seen to fall behind (and is dropped)
     * after tens of kilobytes, instead of pinning megabytes of kernel memory first. */
    if (ci) setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    logstream_bind(sub, c);
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, logstream_read, sub, logstream_release);
    if (!resp) {
        logstream_release(sub);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");   /* nginx: pass events through */
    for (int i = 0; i < r->nheaders; i++) MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_response(struct MHD_Connection *c, struct http_resp *r) {
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char *body;
    size_t len;
    const char *ctype;
    if (r->stream) return send_stream(c, r);
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
    for (int i = 0; i < r->nheaders; i++) MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void log_request(const char *method, const char *route, int status, double start, const char *client) {
    /* Successful requests log at debug: at tens of thousands per second a line each would
     * cost more than the request. Refusals and errors log at info and above. */
    enum log_level level = status >= 500 ? LOG_ERROR : status >= 400 ? LOG_INFO : LOG_DEBUG;
    json_t *f;
    if (!log_enabled(level)) return;
    f = json_pack("{s:s, s:s, s:i, s:f, s:s}", "method", method, "route", route,
                  "status", status, "duration_ms", (util_monotonic() - start) * 1000.0, "client", client);
    log_fields(level, "request", f);
}

static int in_list(char *const *list, int n, const char *s, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(list[i]) == len && !strncmp(list[i], s, len)) return 1;
    return 0;
}

/* The client's address: the peer, or when the peer is a trusted proxy the rightmost
 * X-Forwarded-For entry that is not itself a trusted proxy. */
static void resolve_client(struct server *srv, struct MHD_Connection *c, char *client, size_t len) {
    const char *xff, *end;
    client_address(c, client, len);
    const struct config *cfg = srv->app->cfg;
    if (!cfg->ntrusted_proxies || !netmask_contains(cfg->trusted_proxies, cfg->ntrusted_proxies, client, strlen(client)))
        return;
    if (!(xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For"))) return;
    end = xff + strlen(xff);
    while (end > xff) {
        const char *start = end;
        while (start > xff && start[-1] != ',') start--;
        const char *a = start, *b = end;
        while (a < b && *a == ' ') a++;
        while (b > a && b[-1] == ' ') b--;
        if (b > a && !netmask_contains(cfg->trusted_proxies, cfg->ntrusted_proxies, a, (size_t)(b - a))) {
            char ip[INET6_ADDRSTRLEN];
            unsigned char bin[16];
            if ((size_t)(b - a) >= sizeof ip) return;
            memcpy(ip, a, (size_t)(b - a));
            ip[b - a] = '\0';
            if (inet_pton(AF_INET, ip, bin) == 1 || inet_pton(AF_INET6, ip, bin) == 1) snprintf(client, len, "%s", ip);
            return;
        }
        end = start > xff ? start - 1 : xff;
    }
}

/* CORS: an allowed Origin gets itself back; a preflight gets the methods and headers. */
static const char *allowed_origin(struct server *srv, struct MHD_Connection *c) {
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    return origin && in_list(srv->origins, srv->norigins, origin, strlen(origin)) ? origin : NULL;
}

static void resume_connection(void *conn) {
    MHD_resume_connection(conn);
}

/* A deferred answer is coming: the connection sleeps (no thread waits) until the work is done;
 * then the library calls on_request again and answer() finishes it. */
static enum MHD_Result suspend_for(struct server *srv, struct MHD_Connection *c, struct request_state *st,
                                   struct http_resp *resp, const char *template) {
    st->deferred = resp->deferred;
    st->resp = *resp;
    st->template = template;
    atomic_fetch_add(&srv->deferred, 1);
    MHD_suspend_connection(c);
    if (!http_deferred_park(st->deferred, resume_connection, c)) MHD_resume_connection(c);
    return MHD_YES;
}

static enum MHD_Result answer(struct server *srv, struct MHD_Connection *c, struct request_state *st,
                              const char *url, const char *method) {
    struct http_resp resp = {0};
    struct http_req req = {0};
    char param[SCOUT_MAX_REQUEST_ID + 64], client[INET6_ADDRSTRLEN];
    const struct api_route *route = NULL;
    const char *template = "unmatched", *origin = allowed_origin(srv, c);
    enum MHD_Result ret;
    int status = 404;

    resolve_client(srv, c, client, sizeof client);
    if (st->deferred) {   /* resumed: the deferred work is done */
        resp = st->resp;
        template = st->template;
        http_deferred_finish(st->deferred, &resp);
        st->deferred = NULL;
        atomic_fetch_sub(&srv->deferred, 1);
        goto respond;
    }
    track_busy(srv, c, 1);
    req.method = method;
    req.path = url;
    req.body = st->body ? st->body : "";
    req.body_len = st->len;
    req.client = client;
    req.conn = c;
    if (st->reject == 413) {
        http_error(&resp, 413, "request body is larger than %d bytes", SCOUT_MAX_BODY);
    } else if (st->reject == 503) {
        http_error(&resp, 503, "the server is shutting down; retry on another replica");
        http_header_add(&resp, "Connection", "close");
    } else if (st->reject == 414) {
        http_error(&resp, 414, "request URI is longer than %d bytes", SCOUT_MAX_URI);
    } else if (st->reject == 431) {
        http_error(&resp, 431, "request headers are larger than %d bytes", SCOUT_MAX_HEADERS);
    } else if (!strcmp(method, "OPTIONS")) {
        template = api_route_template(url);
        if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin") && !origin) {
            http_error(&resp, 403, "origin not allowed");
        } else {
            http_raw(&resp, 204, "text/plain", "", 0);
            http_header_add(&resp, "Allow", "GET, POST, OPTIONS");
            if (origin) {
                http_header_add(&resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
                http_header_add(&resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
                http_header_add(&resp, "Access-Control-Max-Age", "600");
            }
        }
    } else if ((route = api_route(method, url, param, sizeof param, &status))) {
        template = route->template;
        req.param = route->suffix ? param : NULL;
        if (auth_check(srv->app, &req, route->access, route->template, &resp)) route->fn(srv->app, &req, &resp);
    } else if (st->is_ui && status == 404 && (!strcmp(method, "GET") || !strcmp(method, "HEAD"))) {
        template = "ui";
        ui_serve(srv->app, url, &resp);
    } else if (status == 405) {
        template = api_route_template(url);
        http_error(&resp, 405, "Method Not Allowed");
    } else {
        http_error(&resp, 404, "Not Found");
    }
    if (resp.deferred) return suspend_for(srv, c, st, &resp, template);
respond:
    if (!resp.status) http_error(&resp, 500, "the handler produced no response");
    if (origin) {
        http_header_add(&resp, "Access-Control-Allow-Origin", "%s", origin);
        http_header_add(&resp, "Vary", "Origin");
    }
    metrics_request(srv->app->metrics, method, template, resp.status, util_monotonic() - st->start);
    log_request(method, template, resp.status, st->start, client);
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
        if (atomic_load(&l->srv->draining)) st->reject = 503;
        atomic_fetch_add(&l->srv->inflight, 1);
        size_t usize = strlen(url);
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_header_size, &usize);
        MHD_get_connection_values(c, MHD_HEADER_KIND, add_header_size, &hsize);
        if (atomic_load(&l->srv->draining)) return answer(l->srv, c, st, url, method);
        if (usize > SCOUT_MAX_URI) st->reject = 414;
        else if (hsize + usize > SCOUT_MAX_HEADERS) st->reject = 431;
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
    track_busy(l->srv, c, 0);
    atomic_fetch_sub(&l->srv->inflight, 1);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    struct listener *l = cls;
    struct server *srv = l->srv;
    struct conn_track *t = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci || !(t = calloc(1, sizeof *t))) return;
        t->fd = ci->connect_fd;
        t->deadline = util_monotonic() + srv->app->cfg->request_timeout;
        pthread_mutex_lock(&srv->track_lock);
        t->next = srv->tracked;
        if (t->next) t->next->prev = t;
        srv->tracked = t;
        pthread_mutex_unlock(&srv->track_lock);
        *socket_context = t;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && t) {
        /* Called before the library closes the socket: once unlinked under the lock, the
         * watchdog can never shut down a descriptor number that was reused. */
        pthread_mutex_lock(&srv->track_lock);
        if (t->prev) t->prev->next = t->next;
        else srv->tracked = t->next;
        if (t->next) t->next->prev = t->prev;
        pthread_mutex_unlock(&srv->track_lock);
        free(t);
        *socket_context = NULL;
    }
}

static void *watchdog_main(void *arg) {
    struct server *srv = arg;
    pthread_mutex_lock(&srv->track_lock);
    while (!srv->stopping) {
        struct timespec ts;
        int cut = 0;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WATCHDOG_PERIOD_NS;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&srv->stop_cv, &srv->track_lock, &ts);
        double now = util_monotonic();
        for (struct conn_track *t = srv->tracked; t; t = t->next) {
            if (!t->busy && !t->cut && now > t->deadline) {
                shutdown(t->fd, SHUT_RDWR);   /* the library sees the close and cleans up */
                t->cut = 1;
                cut++;
            }
        }
        if (cut) log_msg(LOG_DEBUG, "closed %d connection(s) idle or incomplete for %d s", cut, srv->app->cfg->request_timeout);
        logstream_tick(srv->app->logstream);   /* heartbeats for idle log streams */
    }
    pthread_mutex_unlock(&srv->track_lock);
    return NULL;
}

/* Percent-decoding of the path, except that %00 stays as it is: a decoded NUL would end
 * the C string early and "/api/model_details/<id>%00junk" would reach <id>. */
static size_t unescape_path(void *cls, struct MHD_Connection *c, char *s) {
    char *r = s, *w = s;
    (void)cls;
    (void)c;
    while (*r) {
        if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
            char hex[3] = {r[1], r[2], 0};
            long v = strtol(hex, NULL, 16);
            if (v != 0) {
                *w++ = (char)v;
                r += 3;
                continue;
            }
        }
        *w++ = *r++;
    }
    *w = '\0';
    return (size_t)(w - s);
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
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
                         MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
                         MHD_OPTION_UNESCAPE_CALLBACK, unescape_path, NULL,
                         MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d) log_msg(LOG_ERROR, "cannot listen on %s:%d (in use, or not allowed)", cfg->host, port);
    return d;
}

/* Splits a comma-separated list into at most MAX_LIST malloc'd strings. */
static int split_list(const char *text, char **out) {
    int n = 0;
    const char *p = text;
    while (p && *p && n < MAX_LIST) {
        size_t len = strcspn(p, ",");
        const char *a = p, *b = p + len;
        while (a < b && *a == ' ') a++;
        while (b > a && b[-1] == ' ') b--;
        if (b > a) out[n++] = strndup(a, (size_t)(b - a));
        p += len + (p[len] == ',');
    }
    return n;
}

static void free_lists(struct server *srv) {
    for (int i = 0; i < srv->norigins; i++) free(srv->origins[i]);
}

int server_start(struct server **out, struct app *app) {
    struct server *srv = calloc(1, sizeof *srv);
    char origins[256];
    if (!srv) return SCOUT_ENOMEM;
    srv->app = app;
    pthread_mutex_init(&srv->track_lock, NULL);
    pthread_cond_init(&srv->stop_cv, NULL);
    if (app->cfg->cors_origins) {
        srv->norigins = split_list(app->cfg->cors_origins, srv->origins);
    } else {
        /* Default: the UI served by this process, under the names a browser may use. */
        snprintf(origins, sizeof origins, "http://localhost:%d,http://127.0.0.1:%d", app->cfg->ui_port,
                 app->cfg->ui_port);
        srv->norigins = split_list(origins, srv->origins);
    }
    srv->api_l.is_ui = 0;
    srv->ui_l.is_ui = 1;
    srv->api = start_daemon(srv, &srv->api_l, app->cfg->port);
    if (!srv->api) goto fail;
    if (app->cfg->ui_port) {
        srv->ui = start_daemon(srv, &srv->ui_l, app->cfg->ui_port);
        if (!srv->ui) goto fail;
    }
    if (pthread_create(&srv->watchdog, NULL, watchdog_main, srv) != 0) goto fail;
    srv->watchdog_started = 1;
    *out = srv;
    return SCOUT_OK;
fail:
    if (srv->api) MHD_stop_daemon(srv->api);
    if (srv->ui) MHD_stop_daemon(srv->ui);
    free_lists(srv);
    pthread_cond_destroy(&srv->stop_cv);
    pthread_mutex_destroy(&srv->track_lock);
    free(srv);
    return SCOUT_ERR;
}

void server_stop(struct server *srv, double grace) {
    double deadline = util_monotonic() + grace;
    if (!srv) return;
    /* Stop accepting, let requests in flight finish, then close every connection. */
    /* Requests that arrive from now on get 503 and a closed connection, while those in flight
     * finish. (MHD_quiesce_daemon would stop accepting instead, but with an epoll thread pool
     * it races with the workers and can abort the process.) */
    atomic_store(&srv->draining, 1);
    logstream_close(srv->app->logstream);   /* live log streams end: they never finish alone */
    while (atomic_load(&srv->inflight) > 0 && util_monotonic() < deadline) util_sleep(0.005);
    /* A suspended connection must not be closed under its deferred work, which will resume
     * it: that work is the store's, which finishes all it was given (the store closes after
     * the server). */
    while (atomic_load(&srv->deferred) > 0) util_sleep(0.005);
    if (srv->api) MHD_stop_daemon(srv->api);
    if (srv->ui) MHD_stop_daemon(srv->ui);
    pthread_mutex_lock(&srv->track_lock);
    srv->stopping = 1;
    pthread_cond_signal(&srv->stop_cv);
    pthread_mutex_unlock(&srv->track_lock);
    if (srv->watchdog_started) pthread_join(srv->watchdog, NULL);
    free_lists(srv);
    pthread_cond_destroy(&srv->stop_cv);
    pthread_mutex_destroy(&srv->track_lock);
    free(srv);
}
