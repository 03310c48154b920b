/* fuzz_api.c — libFuzzer target for every JSON request body, through the real handlers on a
 * real (temporary) store: the first input byte picks the endpoint, the rest is the body.
 * Whatever the body, the answer must be a 2xx or 4xx with a JSON detail: a 5xx, a crash, a
 * leak or a sanitizer report is a finding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "api/api.h"
#include "app.h"
#include "obs/log.h"

static struct app app;
static struct config cfg;
static char test_id[SCOUT_ID_LEN + 1];
static char dir[] = "/tmp/scout-fuzz-XXXXXX";

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* libFuzzer ends with exit(): leave no store behind in /tmp. */
static void cleanup(void) {
    store_close(app.store);
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

struct target {
    api_handler fn;
    int needs_id;
};

static const struct target TARGETS[] = {
    {api_create_model, 0},   {api_fetch, 0},          {api_update, 1},           {api_rollout, 1},
    {api_model_config, 0},   {api_system_config, 0},  {api_redis_config, 0},     {api_set_protection, 0},
    {api_generate_token, 0}, {api_rotate_token, 1},   {api_model_details, 1},    {api_clear_rollout, 1},
    {api_evaluate, 1},
};
#define NTARGETS (sizeof TARGETS / sizeof *TARGETS)

static void call(api_handler fn, const char *method, const char *param, const char *body, size_t len,
                 struct http_resp *resp) {
    struct http_req req = {method, "/fuzz", param, body, len, "127.0.0.1", NULL};
    memset(resp, 0, sizeof *resp);
    fn(&app, &req, resp);
    http_deferred_wait(resp);   /* an update answers once the store has committed */
}

static void setup(void) {
    char *argv[] = {"fuzz", NULL};
    struct http_resp resp;
    const char *def = "{\"name\":\"fuzz\",\"variants\":{\"0\":\"A\",\"1\":\"B\",\"2\":7}}";
    if (sodium_init() < 0 || !mkdtemp(dir) || config_load(&cfg, 1, argv) != 0) abort();
    log_set_level("error");
    app.cfg = &cfg;
    if (store_open_sqlite(&app.store, dir, false) != SCOUT_OK) abort();
    settings_load(&app.settings, app.store, &cfg);
    if (registry_new(&app.reg) || metrics_new(&app.metrics) || ratelimit_new(&app.ratelimit, 10, 60) ||
        tokens_open(&app.tokens, app.store, NULL, 24) || store_start(app.store))
        abort();
    atexit(cleanup);
    call(api_create_model, "POST", NULL, def, strlen(def), &resp);
    if (resp.status != 200) abort();
    snprintf(test_id, sizeof test_id, "%s", json_string_value(json_object_get(resp.json, "model_id")));
    json_decref(resp.json);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static int ready;
    struct http_resp resp;
    char *body;
    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1) return 0;
    const struct target *t = &TARGETS[data[0] % NTARGETS];
    body = malloc(size);
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    call(t->fn, "POST", t->needs_id ? test_id : NULL, body, size - 1, &resp);
    if (resp.status < 200 || resp.status >= 500) {
        fprintf(stderr, "status %d for target %d\n", resp.status, data[0] % (int)NTARGETS);
        abort();
    }
    if (resp.status >= 400 && !json_is_string(json_object_get(resp.json, "detail"))) abort();
    json_decref(resp.json);
    free(resp.body);
    free(body);
    return 0;
}
