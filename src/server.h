/* server.h — the HTTP listeners (API and UI port) on libmicrohttpd.
 * The server receives whole requests within the limits of common.h, routes them to the
 * handlers of api/ and sends their responses; it knows nothing about tests or policies. */
#ifndef SCOUT_SERVER_H
#define SCOUT_SERVER_H

#include "app.h"

struct server;

/* Starts listening on cfg->host:cfg->port (and :ui_port unless 0). */
int server_start(struct server **out, struct app *app);

/* Stops accepting, waits up to `grace` seconds for in-flight requests, then closes. */
void server_stop(struct server *srv, double grace);

#endif
