/* config.c — parses scoutd's flags, their environment twins and secret files.
 * Every flag of DESIGN.md has an environment twin; flags win. A secret read from a file
 * loses its trailing newline (what `kubectl create secret --from-file` leaves in). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>

#include "backup.h"

void config_usage(const char *prog) {
    fprintf(stderr,
            "usage: %s [--host H] [--port P] [--ui-port Q] [--data-dir DIR]\n"
            "          [--redis redis://[[user]:password@]host:port]\n"
            "environment: SCOUT_HOST SCOUT_PORT SCOUT_UI_PORT SCOUT_DATA_DIR REDIS_HOST REDIS_PORT\n"
            "  REDIS_USERNAME REDIS_PASSWORD(_FILE) REDIS_CONTEXT_TTL SCOUT_SNAPSHOT_INTERVAL SCOUT_EVENT_RETENTION\n"
            "  SCOUT_PROTECTED_API SCOUT_AUTH_TOKEN(_FILE)\n"
            "  SCOUT_TOKEN_TTL_HOURS SCOUT_REQUEST_TIMEOUT SCOUT_THREADS SCOUT_SYNC SCOUT_LOG_LEVEL\n"
            "  SCOUT_METRICS_REQUIRE_TOKEN SCOUT_AUTH_MAX_FAILURES SCOUT_AUTH_BACKOFF_SECONDS\n"
            "  SCOUT_TRUSTED_PROXIES SCOUT_CORS_ORIGINS SCOUT_BACKUP_KEEP\n"
            "subcommands (operator CLI, no token needed; STORE: --data-dir DIR or --redis URL):\n"
            "  %s token create|list|revoke [STORE]\n"
            "  %s backup [STORE] --out FILE [--force]\n"
            "  %s restore [STORE] --in FILE [--force]   (into a stopped installation)\n",
            prog, prog, prog, prog);
}

static int parse_int(const char *what, const char *s, int lo, int hi, int *out) {
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "scoutd: %s must be an integer in [%d, %d], got \"%s\"\n", what, lo, hi, s);
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int parse_bool(const char *what, const char *s, bool *out) {
    if (!strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on")) {
        *out = true;
        return 1;
    }
    if (!strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") || !*s) {
        *out = false;
        return 1;
    }
    fprintf(stderr, "scoutd: %s must be true or false, got \"%s\"\n", what, s);
    return 0;
}

/* SCOUT_TRUSTED_PROXIES: comma-separated addresses or ranges ("10.0.0.5, 10.244.0.0/16"). */
static int parse_proxies(struct config *cfg, const char *text) {
    const char *p = text;
    cfg->ntrusted_proxies = 0;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *a = p, *b = p + len;
        while (a < b && *a == ' ') a++;
        while (b > a && b[-1] == ' ') b--;
        if (b > a) {
            if (cfg->ntrusted_proxies == SCOUT_MAX_PROXIES) {
                fprintf(stderr, "scoutd: SCOUT_TRUSTED_PROXIES holds more than %d entries\n", SCOUT_MAX_PROXIES);
                return 0;
            }
            if (!netmask_parse(a, (size_t)(b - a), &cfg->trusted_proxies[cfg->ntrusted_proxies])) {
                fprintf(stderr, "scoutd: SCOUT_TRUSTED_PROXIES: \"%.*s\" is not an address or a range like 10.0.0.0/8\n",
                        (int)(b - a > 64 ? 64 : b - a), a);
                return 0;
            }
            cfg->ntrusted_proxies++;
        }
        p += len + (p[len] == ',');
    }
    return 1;
}

static void set_str(char **dst, const char *src) {
    free(*dst);
    *dst = src ? strdup(src) : NULL;
}

/* Reads a secret file whole (at most 4 KiB) and strips trailing whitespace. */
static int read_secret_file(const char *what, const char *path, char **out) {
    char buf[4097];
    size_t n;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "scoutd: cannot read %s file %s: %s\n", what, path, strerror(errno));
        return 0;
    }
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = '\0';
    set_str(out, buf);
    return 1;
}

/* redis://[[user]:password@]host[:port] — user names an ACL user (Redis 6+). */
static int parse_redis_url(struct config *cfg, const char *url) {
    const char *p = url, *at, *colon;
    char host[256];
    if (strncmp(p, "redis://", 8) != 0) goto bad;
    p += 8;
    at = strrchr(p, '@');
    if (at) {
        const char *pc = memchr(p, ':', (size_t)(at - p));
        if (pc) {
            char *pw = strndup(pc + 1, (size_t)(at - pc - 1));
            free(cfg->redis_password);
            cfg->redis_password = pw;
        }
        if ((pc ? pc : at) > p) {
            char *user = strndup(p, (size_t)((pc ? pc : at) - p));
            free(cfg->redis_user);
            cfg->redis_user = user;
        }
        p = at + 1;
    }
    colon = strchr(p, ':');
    size_t hl = colon ? (size_t)(colon - p) : strcspn(p, "/");
    if (hl == 0 || hl >= sizeof host) goto bad;
    memcpy(host, p, hl);
    host[hl] = '\0';
    set_str(&cfg->redis_host, host);
    if (colon) {
        char portbuf[16];
        size_t pl = strcspn(colon + 1, "/");
        if (pl == 0 || pl >= sizeof portbuf) goto bad;
        memcpy(portbuf, colon + 1, pl);
        portbuf[pl] = '\0';
        if (!parse_int("redis port", portbuf, 1, 65535, &cfg->redis_port)) return 0;
    }
    return 1;
bad:
    fprintf(stderr, "scoutd: --redis must look like redis://[[user]:password@]host[:port]\n");
    return 0;
}

static int load_env(struct config *cfg) {
    const char *v;
    if ((v = getenv("SCOUT_HOST")) && *v) { set_str(&cfg->host, v); cfg->host_set = true; }
    if ((v = getenv("SCOUT_PORT")) && *v) {
        if (!parse_int("SCOUT_PORT", v, 1, 65535, &cfg->port)) return 0;
        cfg->port_set = true;
    }
    if ((v = getenv("SCOUT_UI_PORT")) && *v && !parse_int("SCOUT_UI_PORT", v, 0, 65535, &cfg->ui_port)) return 0;
    if ((v = getenv("SCOUT_DATA_DIR")) && *v) set_str(&cfg->data_dir, v);
    if ((v = getenv("REDIS_HOST")) && *v) set_str(&cfg->redis_host, v);
    if ((v = getenv("REDIS_PORT")) && *v && !parse_int("REDIS_PORT", v, 1, 65535, &cfg->redis_port)) return 0;
    if ((v = getenv("REDIS_USERNAME")) && *v) set_str(&cfg->redis_user, v);
    if ((v = getenv("REDIS_PASSWORD")) && *v) set_str(&cfg->redis_password, v);
    if ((v = getenv("REDIS_PASSWORD_FILE")) && *v && !read_secret_file("REDIS_PASSWORD", v, &cfg->redis_password)) return 0;
    if ((v = getenv("REDIS_CONTEXT_TTL")) && *v) {
        if (!parse_int("REDIS_CONTEXT_TTL", v, 1, INT_MAX, &cfg->context_ttl)) return 0;
        cfg->context_ttl_set = true;
    }
    if ((v = getenv("SCOUT_SNAPSHOT_INTERVAL")) && *v &&
        !parse_int("SCOUT_SNAPSHOT_INTERVAL", v, 1, 86400, &cfg->snapshot_interval))
        return 0;
    if ((v = getenv("SCOUT_EVENT_RETENTION")) && *v &&
        !parse_int("SCOUT_EVENT_RETENTION", v, 0, INT_MAX, &cfg->event_retention))
        return 0;
    if ((v = getenv("SCOUT_PROTECTED_API")) && *v) {
        if (!parse_bool("SCOUT_PROTECTED_API", v, &cfg->protected_api)) return 0;
        cfg->protected_api_set = true;
    }
    if ((v = getenv("SCOUT_AUTH_TOKEN")) && *v) set_str(&cfg->auth_token, v);
    if ((v = getenv("SCOUT_AUTH_TOKEN_FILE")) && *v && !read_secret_file("SCOUT_AUTH_TOKEN", v, &cfg->auth_token)) return 0;
    if ((v = getenv("SCOUT_TOKEN_TTL_HOURS")) && *v && !parse_int("SCOUT_TOKEN_TTL_HOURS", v, 0, 24 * 365 * 100, &cfg->token_ttl_hours)) return 0;
    if ((v = getenv("SCOUT_REQUEST_TIMEOUT")) && *v && !parse_int("SCOUT_REQUEST_TIMEOUT", v, 1, 3600, &cfg->request_timeout)) return 0;
    if ((v = getenv("SCOUT_THREADS")) && *v && !parse_int("SCOUT_THREADS", v, 0, 256, &cfg->threads)) return 0;
    if ((v = getenv("SCOUT_SYNC")) && *v) {
        if (!strcasecmp(v, "full")) cfg->sync_full = true;
        else if (!strcasecmp(v, "normal")) cfg->sync_full = false;
        else {
            fprintf(stderr, "scoutd: SCOUT_SYNC must be \"normal\" or \"full\"\n");
            return 0;
        }
    }
    if ((v = getenv("SCOUT_LOG_LEVEL")) && *v) set_str(&cfg->log_level, v);
    if ((v = getenv("SCOUT_METRICS_REQUIRE_TOKEN")) && *v &&
        !parse_bool("SCOUT_METRICS_REQUIRE_TOKEN", v, &cfg->metrics_require_token))
        return 0;
    if ((v = getenv("SCOUT_AUTH_MAX_FAILURES")) && *v &&
        !parse_int("SCOUT_AUTH_MAX_FAILURES", v, 1, 1000000, &cfg->auth_max_failures))
        return 0;
    if ((v = getenv("SCOUT_AUTH_BACKOFF_SECONDS")) && *v &&
        !parse_int("SCOUT_AUTH_BACKOFF_SECONDS", v, 1, 86400, &cfg->auth_backoff_seconds))
        return 0;
    if ((v = getenv("SCOUT_TRUSTED_PROXIES")) && *v && !parse_proxies(cfg, v)) return 0;
    if ((v = getenv("SCOUT_CORS_ORIGINS")) && *v) set_str(&cfg->cors_origins, v);
    {
        /* read where it is used (POST /admin/backup, the CLI); a bad value stops start-up */
        char err[128];
        int keep;
        if (backup_keep_from_env(&keep, err, sizeof err) != SCOUT_OK) {
            fprintf(stderr, "scoutd: %s\n", err);
            return 0;
        }
    }
    return 1;
}

int config_load(struct config *cfg, int argc, char **argv) {
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"ui-port", required_argument, NULL, 'u'},
        {"data-dir", required_argument, NULL, 'd'},
        {"redis", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, '?'},
        {NULL, 0, NULL, 0},
    };
    int c;
    memset(cfg, 0, sizeof *cfg);
    cfg->host = strdup("127.0.0.1");
    cfg->port = 8000;
    cfg->ui_port = 3000;
    cfg->data_dir = strdup("./data");
    cfg->redis_port = 6379;
    cfg->context_ttl = 86400;
    cfg->snapshot_interval = 60;
    cfg->event_retention = 7 * 86400;
    cfg->token_ttl_hours = 24;
    cfg->request_timeout = 30;
    cfg->log_level = strdup("info");
    cfg->auth_max_failures = 10;
    cfg->auth_backoff_seconds = 60;
    if (!load_env(cfg)) return 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'h': set_str(&cfg->host, optarg); cfg->host_set = true; break;
        case 'p':
            if (!parse_int("--port", optarg, 1, 65535, &cfg->port)) return 2;
            cfg->port_set = true;
            break;
        case 'u': if (!parse_int("--ui-port", optarg, 0, 65535, &cfg->ui_port)) return 2; break;
        case 'd': set_str(&cfg->data_dir, optarg); break;
        case 'r': if (!parse_redis_url(cfg, optarg)) return 2; break;
        default: config_usage(argv[0]); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "scoutd: unexpected argument \"%s\"\n", argv[optind]);
        config_usage(argv[0]);
        return 2;
    }
    return 0;
}

void config_free(struct config *cfg) {
    free(cfg->host);
    free(cfg->data_dir);
    free(cfg->redis_host);
    free(cfg->redis_user);
    if (cfg->redis_password) sodium_memzero(cfg->redis_password, strlen(cfg->redis_password));
    free(cfg->redis_password);
    if (cfg->auth_token) sodium_memzero(cfg->auth_token, strlen(cfg->auth_token));
    free(cfg->auth_token);
    free(cfg->log_level);
    free(cfg->cors_origins);
    memset(cfg, 0, sizeof *cfg);
}
