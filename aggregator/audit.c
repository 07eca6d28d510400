#include "audit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../lib/json/jenc.h"
#include "../lib/mem.h"

struct agg_audit {
    FILE *f;
    int owned;
    pthread_mutex_t mu;
};

int agg_audit_open(const char *path, agg_audit_t **out, err_t *err)
{
    agg_audit_t *a = mem_calloc(1, sizeof *a);
    if (!a)
        return err_set(err, ERR_NOMEM, NULL);
    if (!strcmp(path, "-")) {
        a->f = stdout;
    } else {
        a->f = fopen(path, "a");
        a->owned = 1;
    }
    if (!a->f) {
        int e = errno;
        mem_free(a);
        return err_set(err, ERR_IO, "--audit-log-path %s: %s", path, strerror(e));
    }
    pthread_mutex_init(&a->mu, NULL);
    *out = a;
    return 0;
}

void agg_audit_close(agg_audit_t *a)
{
    if (!a)
        return;
    if (a->owned)
        fclose(a->f);
    pthread_mutex_destroy(&a->mu);
    mem_free(a);
}

void agg_audit_write(agg_audit_t *a, const json_t *ev)
{
    if (!a)
        return;
    size_t n;
    char *line = jenc_dumps(ev, &n);
    if (!line)
        return;
    pthread_mutex_lock(&a->mu);
    fwrite(line, 1, n, a->f);
    fputc('\n', a->f);
    fflush(a->f);
    pthread_mutex_unlock(&a->mu);
    mem_free(line);
}
