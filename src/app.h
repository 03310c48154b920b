/* app.h — the server context: everything a handler may use, passed to it explicitly.
 * There is no other global mutable state. */
#ifndef SCOUT_APP_H
#define SCOUT_APP_H

#include "config.h"
#include "registry.h"
#include "settings.h"
#include "store/store.h"

struct app {
    struct config *cfg;
    struct store *store;
    struct registry *reg;
    struct settings settings;
    double started_at;
};

/* Loads every test and replays every reward event from the store. */
int app_load(struct app *app);

#endif
