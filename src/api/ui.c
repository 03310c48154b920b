/* ui.c — serves the built web UI (SCOUT_UI_DIR, default ui/dist) on the UI port.
 * Paths are confined to that directory: any ".." segment is refused before the filesystem
 * is touched. Unknown paths without an extension get index.html, as single-page apps expect.
 * Files are read whole per request (the UI is a few hundred KiB; caching belongs to nginx). */
#include "api/ui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define UI_MAX_FILE (16 * 1024 * 1024)

static const char *mime_type(const char *path) {
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".json", "application/json"},
        {".svg", "image/svg+xml"},             {".png", "image/png"},
        {".ico", "image/x-icon"},              {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"}, {".map", "application/json"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
        if (!strcmp(dot, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

/* Reads a regular file whole; 1 on success. */
static int read_file(const char *path, char **out, size_t *len) {
    struct stat sb;
    FILE *f;
    char *buf;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > UI_MAX_FILE) return 0;
    if (!(f = fopen(path, "rb"))) return 0;
    buf = malloc((size_t)sb.st_size + 1);
    if (buf && fread(buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) return 0;
    *out = buf;
    *len = (size_t)sb.st_size;
    return 1;
}

void ui_serve(struct app *app, const char *url, struct http_resp *resp) {
    const char *dir = getenv("SCOUT_UI_DIR");
    char path[4096];
    char *body = NULL;
    size_t len = 0;
    (void)app;
    if (!dir || !*dir) dir = "ui/dist";
    if (strstr(url, "..") || url[0] != '/') {
        http_error(resp, 404, "Not Found");
        return;
    }
    snprintf(path, sizeof path, "%s%s", dir, strcmp(url, "/") ? url : "/index.html");
    if (!read_file(path, &body, &len)) {
        const char *last = strrchr(url, '/');
        if (last && strchr(last, '.')) {
            http_error(resp, 404, "Not Found");
            return;
        }
        snprintf(path, sizeof path, "%s/index.html", dir);
        if (!read_file(path, &body, &len)) {
            http_error(resp, 404, "the web UI is not built here (expected %s); the API is on this port too", path);
            return;
        }
    }
    http_raw(resp, 200, mime_type(path), body, len);
    free(body);
}
