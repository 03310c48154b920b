/* ui.h — the web UI's static files, served on the UI port from the built ui/dist. */
#ifndef SCOUT_UI_H
#define SCOUT_UI_H

#include "app.h"
#include "http.h"

/* Answers GET url from the UI directory: a file, or index.html for client-side routes. */
void ui_serve(struct app *app, const char *url, struct http_resp *resp);

#endif
