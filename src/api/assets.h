/* assets.h — files linked into scoutd as data (see ASSETS in the Makefile). */
#ifndef SCOUT_ASSETS_H
#define SCOUT_ASSETS_H

#include <stddef.h>

extern const char _binary_src_assets_openapi_json_start[], _binary_src_assets_openapi_json_end[];
extern const char _binary_src_assets_docs_html_start[], _binary_src_assets_docs_html_end[];

#define ASSET(name) _binary_src_assets_##name##_start, (size_t)(_binary_src_assets_##name##_end - _binary_src_assets_##name##_start)

#endif
