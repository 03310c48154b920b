/* fuzz_snapshot.c — libFuzzer target for the snapshot decoder, which parses bytes read back from
 * a shared store. Input: a 4-byte preamble, then the snapshot. The preamble picks the policy
 * the bytes are decoded into (kind, 1..256 variants, discount) and whether to reseal: a mutated
 * snapshot almost never keeps a valid checksum, so when the flag is set the last 8 bytes are
 * replaced by snapshot_checksum() of the rest and the mutation reaches the field parsing.
 * Whatever the input: no crash, leak or overread; a refusal says why and leaves the policy
 * untouched; an accepted snapshot re-encodes to exactly the same bytes, and the decoded policy
 * can go on learning and deciding. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "bandit/policy.h"
#include "bandit/rng.h"
#include "bandit/snapshot.h"
#include "util/common.h"

#define PREAMBLE 4
#define FLAG_RESEAL 0x01

static const enum policy_kind kinds[] = {POLICY_THOMPSON, POLICY_EGREEDY, POLICY_UCB1,
                                         POLICY_AUTO,     POLICY_LINUCB,  POLICY_LINTS};

/* A freshly initialised policy: no rewards, a model with the intercept only. */
static int is_fresh(const struct policy *p) {
    for (int i = 0; i < p->narms; i++)
        if (p->arms[i].n || p->arms[i].w != 0.0) return 0;
    if (p->updates || p->version) return 0;
    return !p->lin || (p->lin->d == 1 && p->lin->nfeat == 0 && p->lin->arm_updates[0] == 0);
}

static void learn_and_decide(struct policy *p) {
    double probs[SCOUT_MAX_VARIANTS];
    json_t *ctx = json_pack("{s:s, s:i, s:b, s:s}", "color", "red", "age", 41, "mobile", 1, "city", "city7");
    rng_t rng;
    rng_seed(&rng, 1);
    policy_update(p, p->narms - 1, 0.5, ctx);
    policy_update(p, 0, 3.0, NULL);
    struct choice c = policy_choose(p, &rng, ctx, 0);
    if (c.arm < 0 || c.arm >= p->narms) abort();
    policy_probabilities(p, &rng, ctx, 0, 20, probs);
    json_decref(ctx);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    struct policy p;
    unsigned char *body, *again = NULL;
    size_t len, again_len;
    double when = 0;
    char err[256] = "";
    int rc;
    if (size < PREAMBLE) return 0;
    len = size - PREAMBLE;
    if (policy_init(&p, kinds[data[1] % 6], 1 + data[2], 0.1, (data[3] & 1) ? 0.9 : 1.0) != SCOUT_OK) return 0;
    if (!(body = malloc(len ? len : 1))) {   /* exactly len bytes: ASan sees any overread */
        policy_free(&p);
        return 0;
    }
    memcpy(body, data + PREAMBLE, len);
    if ((data[0] & FLAG_RESEAL) && len >= 8) {
        uint64_t h = snapshot_checksum(body, len - 8);
        for (int i = 0; i < 8; i++) body[len - 8 + i] = (unsigned char)(h >> (8 * i));
    }
    rc = snapshot_decode(body, len, &p, &when, err, sizeof err);
    if (rc == SCOUT_OK) {
        if (snapshot_encode(&p, when, &again, &again_len) != SCOUT_OK) abort();
        if (again_len != len || memcmp(again, body, len) != 0) abort();   /* decode lost or invented a bit */
        free(again);
        learn_and_decide(&p);
    } else if (rc == SCOUT_EINVAL) {
        if (!err[0] || !is_fresh(&p) || when != 0) abort();
    } else if (rc != SCOUT_ENOMEM) {
        abort();
    }
    free(body);
    policy_free(&p);
    return 0;
}
