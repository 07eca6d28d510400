/*
 * A stand-in for libFuzzer's main, so the fuzz targets build with any
 * compiler and their corpora run as regression tests (`make unit`, under
 * AddressSanitizer and UBSan): feeds every regular file of the directories
 * (or files) named on the command line to LLVMFuzzerTestOneInput, once, in
 * name order. A target reports a failure by crashing or aborting.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs the target on one file; -1 if it cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    struct stat st;
    int rc = -1;
    /* An exact-size copy, so reading past the input is an ASan report. */
    uint8_t *data = NULL;
    if (fstat(fileno(f), &st) == 0 && (data = malloc(st.st_size ? (size_t)st.st_size : 1)) &&
        fread(data, 1, (size_t)st.st_size, f) == (size_t)st.st_size) {
        LLVMFuzzerTestOneInput(data, (size_t)st.st_size);
        rc = 0;
    } else {
        fprintf(stderr, "%s: cannot read\n", path);
    }
    free(data);
    fclose(f);
    return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    int files = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && !S_ISDIR(st.st_mode)) {
            failed |= replay_file(argv[i]);
            files++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, by_name);
        if (n < 0) {
            perror(argv[i]);
            return 1;
        }
        for (int j = 0; j < n; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                failed |= replay_file(path);
                files++;
            }
            free(names[j]);
        }
        free(names);
    }
    printf("%s: %d inputs replayed\n", argv[0], files);
    return failed || !files;
}
