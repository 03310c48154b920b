/* fuzz_route.c — libFuzzer target for the router: any method and path (as the HTTP library
 * hands them over) must map to a handler, 404 or 405, with the {id} segment bounded. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    char buf[4096], param[64];
    const char *methods[] = {"GET", "POST", "HEAD", "DELETE", "PUT"};
    int status = 0;
    if (size < 1 || size >= sizeof buf) return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    const struct api_route *r = api_route(methods[data[0] % 5], buf, param, sizeof param, &status);
    if (r && r->suffix && strlen(param) >= sizeof param) abort();
    if (!r && status != 404 && status != 405) abort();
    api_route_template(buf);
    return 0;
}
