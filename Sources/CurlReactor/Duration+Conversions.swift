// Duration+Conversions: the one home of Duration → number conversions for every module of the package.

extension Duration {
    /// Nanoseconds, clamped to `0...UInt64.max`: every negative duration is 0.
    package var nanosecondsClamped: UInt64 {
        let c = components
        if c.seconds < 0 || c.attoseconds < 0 { return 0 }
        if c.seconds >= Int64(UInt64.max / 1_000_000_000) - 1 { return .max }
        return UInt64(c.seconds) * 1_000_000_000 + UInt64(c.attoseconds / 1_000_000_000)
    }

    /// Seconds as a floating-point number (negative durations stay negative).
    package var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }

    /// Whole microseconds, truncated toward zero.
    package var wholeMicroseconds: Int64 {
        let c = components
        return c.seconds * 1_000_000 + c.attoseconds / 1_000_000_000_000
    }
}
