/* fuzz_linear.c — libFuzzer target for the contextual learner: a stream of JSON lines, each
 * {"arm": n, "reward": r, "context": {...}}, folded into linear Thompson and LinUCB policies
 * exactly as the server would (context checked first, rewards within the server's bounds),
 * each followed by a decision. Whatever the input, the encoded dimension stays within
 * LIN_MAX_DIM and every probability vector is finite, within [floor, 1] and sums to 1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "bandit/context.h"
#include "bandit/policy.h"
#include "bandit/rng.h"
#include "util/common.h"

#define ARMS 3
#define FLOOR 0.01

static void check(const struct policy *p, rng_t *rng, const json_t *ctx) {
    double probs[ARMS], total = 0;
    policy_probabilities(p, rng, ctx, 0, 200, probs);
    for (int i = 0; i < ARMS; i++) {
        if (!isfinite(probs[i]) || probs[i] < FLOOR - 1e-12 || probs[i] > 1.0 + 1e-12) abort();
        total += probs[i];
    }
    if (fabs(total - 1.0) > 1e-9) abort();
    if (p->lin->d > LIN_MAX_DIM) abort();
    struct choice c = policy_choose(p, rng, ctx, 0);
    if (c.arm < 0 || c.arm >= ARMS) abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    struct policy ts, ucb;
    rng_t rng;
    const char *p = (const char *)data, *end = p + size;
    if (policy_init(&ts, POLICY_LINTS, ARMS, 0, 1.0) != SCOUT_OK) return 0;
    if (policy_init(&ucb, POLICY_LINUCB, ARMS, 0, 0.9) != SCOUT_OK) {
        policy_free(&ts);
        return 0;
    }
    ts.floor = ucb.floor = FLOOR;
    rng_seed(&rng, 1);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *ev = json_loadb(p, len, 0, NULL), *ctx = NULL;
        char err[256];
        p += len + (nl ? 1 : 0);
        if (!ev) continue;
        json_t *arm = json_object_get(ev, "arm"), *reward = json_object_get(ev, "reward");
        if (context_normalize(json_object_get(ev, "context"), &ctx, err, sizeof err) == SCOUT_OK &&
            json_is_integer(arm) && json_is_number(reward) && fabs(json_number_value(reward)) <= SCOUT_MAX_REWARD) {
            int a = (int)((unsigned long long)json_integer_value(arm) % ARMS);
            policy_update(&ts, a, json_number_value(reward), ctx);
            policy_update(&ucb, a, json_number_value(reward), ctx);
            check(&ts, &rng, ctx);
            check(&ucb, &rng, ctx);
        }
        json_decref(ctx);
        json_decref(ev);
    }
    policy_free(&ts);
    policy_free(&ucb);
    return 0;
}
