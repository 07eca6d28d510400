/*
 * In-process JSON encoding benchmark (not a test: prints figures).
 *
 *   bench_jenc [ITERATIONS]
 *
 * Encodes a representative stored object (~1.7 KB: metadata with labels,
 * a 1 KB annotation, managedFields; spec) with json_dumps(JSON_COMPACT) and
 * with jenc_dumps, and prints ns per encode for each (best of 5 rounds).
 * Two variants of the annotation: plain prose, and JSON text full of
 * quotes to escape (as kubectl's last-applied-configuration is).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/json/jenc.h"
#include "../../lib/mem.h"

#define ROUNDS 5

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static json_t *sample(int quoted)
{
    char note[1025];
    static const char prose[] = "Role for the web tier of the storefront; owned by team "
                                "payments-platform, reviewed quarterly. ";
    static const char jsonish[] = "{\"apiVersion\":\"iam.theriseunion.io/v1alpha1\","
                                  "\"kind\":\"IAMRole\",\"spec\":{\"rules\":[\"get\"]}} ";
    const char *unit = quoted ? jsonish : prose;
    size_t ul = strlen(unit);
    for (size_t i = 0; i < 1024; i++)
        note[i] = unit[i % ul];
    note[1024] = 0;
    json_error_t e;
    json_t *o = json_pack_ex(&e, 0,
        "{s:s, s:s,"
        " s:{s:s, s:s, s:s, s:s, s:I, s:s, s:{s:s, s:s, s:s}, s:{s:s},"
        "    s:[{s:s, s:s, s:s, s:s, s:s, s:{s:{s:{s:{}}, s:{s:{}}}, s:{s:{}}}}]},"
        " s:{s:s, s:[{s:[s,s], s:[s,s], s:[s]}], s:b}}",
        "apiVersion", "iam.theriseunion.io/v1alpha1", "kind", "IAMRole",
        "metadata",
            "name", "storefront-web-reader", "namespace", "payments",
            "uid", "0c7d9b8e-3f2a-4c1d-9e8f-7a6b5c4d3e2f", "resourceVersion", "184467",
            "generation", (json_int_t)3, "creationTimestamp", "2024-05-17T09:21:44Z",
            "labels", "app.kubernetes.io/name", "storefront",
                "app.kubernetes.io/part-of", "shop", "tier", "web",
            "annotations", "iam.theriseunion.io/description", note,
            "managedFields",
                "manager", "kubectl-client-side-apply", "operation", "Update",
                "apiVersion", "iam.theriseunion.io/v1alpha1", "time", "2024-05-17T09:21:44Z",
                "fieldsType", "FieldsV1",
                "fieldsV1", "f:metadata", "f:labels", "f:tier",
                    "f:annotations", "f:iam.theriseunion.io/description",
                    "f:spec", "f:rules",
        "spec", "displayName", "Storefront web reader",
            "rules", "apiGroups", "", "apps", "resources", "pods", "services",
                "verbs", "get",
            "aggregate", 0);
    if (!o) {
        fprintf(stderr, "sample: %s\n", e.text);
        exit(1);
    }
    return o;
}

static void run(const char *name, json_t *o, long iters)
{
    char *a = json_dumps(o, JSON_COMPACT);
    size_t n;
    char *b = jenc_dumps(o, &n);
    if (!a || !b || strcmp(a, b) || n != strlen(a)) {
        fprintf(stderr, "%s: outputs differ\n", name);
        exit(1);
    }
    double best_j = 1e18, best_e = 1e18;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (long i = 0; i < iters; i++)
            mem_free(json_dumps(o, JSON_COMPACT));
        double t1 = now_ns();
        for (long i = 0; i < iters; i++)
            mem_free(jenc_dumps(o, NULL));
        double t2 = now_ns();
        if ((t1 - t0) / (double)iters < best_j)
            best_j = (t1 - t0) / (double)iters;
        if ((t2 - t1) / (double)iters < best_e)
            best_e = (t2 - t1) / (double)iters;
    }
    printf("%-22s %5zu bytes  json_dumps %7.0f ns/encode  jenc %6.0f ns/encode  (%.1fx)\n",
           name, strlen(a), best_j, best_e, best_j / best_e);
    mem_free(a);
    mem_free(b);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    mem_init();
    json_t *plain = sample(0), *quoted = sample(1);
    run("plain annotation", plain, iters);
    run("JSON-text annotation", quoted, iters);
    json_decref(plain);
    json_decref(quoted);
    return 0;
}
