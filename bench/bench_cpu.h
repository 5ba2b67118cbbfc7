/*
 * The benches' CPU clock: the process's user + system time, in microseconds
 * (every thread's: a store's writer, a dispatcher, an in-process sink).
 */
#ifndef FLUXHOOK_BENCH_CPU_H
#define FLUXHOOK_BENCH_CPU_H

#include <stdint.h>
#include <sys/resource.h>

static inline int64_t
bench_cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

#endif
