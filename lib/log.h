/*
 * log: the server's one way to say something on stderr, in klog's shape.
 *
 * Each line is "<L><MMDD hh:mm:ss.uuuuuu> edge-apiserver: <message>", L
 * being E (error), W (warning) or I (info), as kube-apiserver's klog
 * writes them. Errors, warnings and info are always written; log_v(n,
 * ...) only when the verbosity (the -v flag, as klog's) is at least n:
 * 1 for what an operator may want while debugging, 2 for per-connection
 * noise such as a client that went away. A line is written with one
 * write(2), so lines of different threads do not interleave.
 *
 * Thread-safe. log_set_verbosity is meant for start-up, before threads.
 */
#ifndef EDGE_LIB_LOG_H
#define EDGE_LIB_LOG_H

void log_set_verbosity(int v);
int log_verbosity(void);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_v(n, ...)                      \
    do {                                   \
        if (log_verbosity() >= (n))        \
            log_info(__VA_ARGS__);         \
    } while (0)

#endif
