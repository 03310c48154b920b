/* context.h — validation of the context a client sends with a decision or a reward.
 * A context is a flat JSON object {feature: string | number | bool}; null values mean
 * "unknown" and are dropped. Limits (keys, key length, string length) are enforced here, once,
 * for every way a context can arrive: a `context` object, inline `feature_*` keys, or
 * `context_used_for_prediction`. Encoding into feature vectors belongs to the policies. */
#ifndef SCOUT_CONTEXT_H
#define SCOUT_CONTEXT_H

#include <stddef.h>
#include <jansson.h>

/* Adds the valid entries of src (a JSON object; NULL or json null adds nothing) to *dst,
 * creating *dst when needed. prefix, when not NULL, selects only keys starting with it and
 * strips it ("feature_"). Returns SCOUT_OK, or SCOUT_EINVAL with a sentence in err when a
 * limit or a type is violated. *dst is owned by the caller. */
int context_merge(json_t **dst, const json_t *src, const char *prefix, char *err, size_t errlen);

/* Same limits applied to an object that must be a context (a JSON object or null):
 * returns a new normalised object in *out (NULL for null / empty). */
int context_normalize(const json_t *src, json_t **out, char *err, size_t errlen);

#endif
