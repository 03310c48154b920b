/* main.c — scoutd's entry: read the configuration, open the store, replay it, serve, and on
 * SIGTERM or SIGINT drain requests in flight, commit what is queued and exit 0.
 * Signals are blocked in every thread and taken synchronously here with sigwait, so no
 * handler ever runs in the middle of a request. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "app.h"
#include "cli.h"
#include "obs/log.h"
#include "server.h"
#include "util/util.h"

#define DRAIN_SECONDS 10.0

static void stream_sink(void *ud, int level, const char *line) {
    logstream_push(ud, level, line);
}

int main(int argc, char **argv) {
    struct config cfg;
    struct app app = {0};
    struct server *srv = NULL;
    sigset_t sigs;
    int sig = 0, rc = 1;

    /* Fixed malloc thresholds. By default glibc raises its mmap threshold to the size of any
     * large block freed, so later large transient blocks (a 1 MB answer of GET /api/models, an
     * export) come from the thread arenas instead, whose footprint then swings by megabytes
     * from one request to the next. With the thresholds fixed, blocks over 128 KiB are mapped
     * and returned on free, and RSS under a steady load stays flat (docs/PERFORMANCE.md). */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    if (sodium_init() < 0) {
        fprintf(stderr, "scoutd: libsodium failed to initialise\n");
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "token")) return cli_token(argc - 1, argv + 1);
    if (argc > 1 && (!strcmp(argv[1], "backup") || !strcmp(argv[1], "restore"))) return cli_backup(argc - 1, argv + 1);
    if ((rc = config_load(&cfg, argc, argv)) != 0) {   /* (what it filled in before the error is freed) */
        config_free(&cfg);
        return rc;
    }
    rc = 1;
    if (!log_set_level(cfg.log_level)) {
        fprintf(stderr, "scoutd: SCOUT_LOG_LEVEL must be debug, info, warn or error\n");
        config_free(&cfg);
        return 2;
    }
    if (cfg.auth_token && strlen(cfg.auth_token) < TOKEN_MIN_BOOTSTRAP) {
        fprintf(stderr, "scoutd: SCOUT_AUTH_TOKEN must be at least %d characters (try: openssl rand -base64 32)\n",
                TOKEN_MIN_BOOTSTRAP);
        config_free(&cfg);
        return 2;
    }

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    app.cfg = &cfg;
    app.started_at = util_now();
    {
        char err[256];
        int orc = store_open_configured(&app.store, &cfg, err, sizeof err);
        if (orc != SCOUT_OK) {
            fprintf(stderr, "scoutd: %s\n", err);
            rc = orc == SCOUT_EINVAL ? 2 : 1;   /* refused credentials: a configuration error */
            goto out;
        }
    }
    settings_load(&app.settings, app.store, &cfg);
    if (registry_new(&app.reg) != SCOUT_OK || metrics_new(&app.metrics) != SCOUT_OK ||
        logstream_new(&app.logstream) != SCOUT_OK ||
        ratelimit_new(&app.ratelimit, cfg.auth_max_failures, cfg.auth_backoff_seconds) != SCOUT_OK ||
        tokens_open(&app.tokens, app.store, cfg.auth_token, cfg.token_ttl_hours) != SCOUT_OK)
        goto out;
    atomic_store(&app.protected_api, cfg.protected_api_set ? cfg.protected_api : settings_protection(app.store));
    if (atomic_load(&app.protected_api) && !tokens_have_admin(app.tokens, util_now()))
        log_msg(LOG_WARN, "API protection is on and no admin token exists: create one with "
                          "`scoutd token create --data-dir DIR` or set SCOUT_AUTH_TOKEN");
    {
        struct store_snapshots snap = {app_take_state, app_restore_state, &app, cfg.snapshot_interval,
                                       cfg.event_retention};
        store_set_snapshots(app.store, &snap);
    }
    if (app_load(&app) != SCOUT_OK) goto out;
    store_set_event_handler(app.store, app_on_event, &app);
    store_set_change_handler(app.store, app_on_change, &app);
    if (store_start(app.store) != SCOUT_OK) goto out;
    log_set_sink(stream_sink, app.logstream);
    if (server_start(&srv, &app) != SCOUT_OK) goto out;

    {
        char api[300], ui[300];
        const char *h = strchr(cfg.host, ':') ? "[%s]" : "%s";
        char host[280];
        snprintf(host, sizeof host, h, cfg.host);
        snprintf(api, sizeof api, "http://%s:%d", host, cfg.port);
        if (cfg.ui_port) snprintf(ui, sizeof ui, "http://%s:%d", host, cfg.ui_port);
        log_fields(LOG_INFO, "scoutd listening",
                   json_pack("{s:s, s:s, s:s, s:s, s:b}", "api_url", api, "ui_url", cfg.ui_port ? ui : "disabled",
                             "docs_url", "/docs", "data_dir", cfg.data_dir, "protected_api",
                             atomic_load(&app.protected_api)));
        fprintf(stderr, "Scout API: %s   (reference: %s/docs)\n", api, api);
        if (cfg.ui_port) fprintf(stderr, "Scout UI:  %s\n", ui);
    }

    while (sigwait(&sigs, &sig) != 0) {
    }
    log_msg(LOG_INFO, "received %s: draining requests in flight", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    rc = 0;
out:
    server_stop(srv, DRAIN_SECONDS);
    if (app.reg && app.store) app_save_all_counters(&app);
    store_close(app.store);   /* commits everything still queued */
    registry_free(app.reg);
    tokens_close(app.tokens);
    ratelimit_free(app.ratelimit);
    metrics_free(app.metrics);
    log_set_sink(NULL, NULL);
    logstream_free(app.logstream);
    if (app.store) settings_free(&app.settings);
    config_free(&cfg);
    if (rc == 0) log_msg(LOG_INFO, "scoutd stopped cleanly");
    return rc;
}
