/*
 * Logging in klog's shape. See log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level;

void log_set_verbosity(int v)
{
    atomic_store(&log_level, v);
}

int log_verbosity(void)
{
    return atomic_load_explicit(&log_level, memory_order_relaxed);
}

static void log_line(char level, const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%c%02d%02d %02d:%02d:%02d.%06ld edge-apiserver: ", level,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)tv.tv_usec);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;  /* truncated: still one line */
    while (len > (size_t)n && line[len - 1] == '\n')
        len--;
    line[len++] = '\n';
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

#define LOG_FN(name, letter)          \
    void name(const char *fmt, ...)   \
    {                                 \
        va_list ap;                   \
        va_start(ap, fmt);            \
        log_line(letter, fmt, ap);    \
        va_end(ap);                   \
    }

LOG_FN(log_error, 'E')
LOG_FN(log_warning, 'W')
LOG_FN(log_info, 'I')
