/* config.h — scoutd's settings from the command line, the environment and secret files.
 * Precedence: flag > environment variable > built-in default. Secrets (token, Redis password)
 * may come from a file, as Kubernetes mounts them; they are kept here and never logged. */
#ifndef SCOUT_CONFIG_H
#define SCOUT_CONFIG_H

#include <stdbool.h>

#include "util/netmask.h"

#define SCOUT_MAX_PROXIES 16   /* entries of SCOUT_TRUSTED_PROXIES */

struct config {
    char *host;              /* listen address, default 127.0.0.1 */
    int port;                /* API port, default 8000 */
    int ui_port;             /* UI port, default 3000; 0 disables the UI listener */
    char *data_dir;          /* embedded store directory, default ./data */
    bool port_set, host_set; /* given by flag or environment (else stored system_config applies) */
    char *redis_host;        /* NULL: embedded store */
    int redis_port;
    char *redis_user;        /* ACL user, or NULL */
    char *redis_password;    /* secret */
    int context_ttl;         /* seconds a decision waits for its reward, default 86400 */
    int snapshot_interval;   /* Redis store: seconds between snapshots of a test's learned state, default 60 */
    int event_retention;     /* Redis store: seconds reward events outlive the snapshot covering them, default 7 days */
    bool context_ttl_set;
    bool protected_api;
    bool protected_api_set;
    char *auth_token;        /* secret: bootstrap admin token */
    int token_ttl_hours;     /* default 24; 0 = never expires */
    int request_timeout;     /* seconds a connection may idle mid-request, default 30 */
    int threads;             /* HTTP worker threads; 0 = two per core (at least 4) */
    bool sync_full;          /* SQLite synchronous=FULL: acknowledged rewards survive power loss */
    char *log_level;
    bool metrics_require_token;  /* /metrics needs a valid token too */
    int auth_max_failures;       /* refusals per address per minute before a backoff */
    int auth_backoff_seconds;
    struct netmask trusted_proxies[SCOUT_MAX_PROXIES];  /* peers allowed to set X-Forwarded-For */
    int ntrusted_proxies;
    char *cors_origins;          /* comma-separated allowed origins; NULL = the UI's own */
};

/* Fills cfg from argv and the environment. Returns 0 on success; on a usage error writes a
 * message to stderr and returns 2 (the exit status to use). The caller frees with config_free. */
int config_load(struct config *cfg, int argc, char **argv);
void config_free(struct config *cfg);
void config_usage(const char *prog);

#endif
