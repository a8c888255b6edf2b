// ProcessCPU: the process's own CPU time, for "CPU per request" figures (the load tool, measurements, tests).
#if canImport(Glibc)
    import Glibc
#endif

/// User plus system CPU seconds consumed by this process so far.
package func processCPUSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}
