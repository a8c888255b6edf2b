// WallClock: the current UTC time and a monotonic reading, for the publisher (FanoutCore never reads clocks itself).
import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

enum WallClock {
    /// The current UTC time.
    static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: Int64(ts.tv_sec), nanoseconds: Int32(ts.tv_nsec))
    }

    /// Seconds since the epoch (for `Retry-After` dates).
    static func epochSeconds() -> Double {
        let t = now()
        return Double(t.seconds) + Double(t.nanoseconds) / 1e9
    }

    /// Seconds on the monotonic clock.
    static func monotonic() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }
}
