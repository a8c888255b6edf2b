// Timestamp: an instant with nanosecond precision, parsed from and printed as RFC 3339 the way Alertmanager does.

/// Seconds and nanoseconds since the Unix epoch (UTC).
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Whole seconds since 1970-01-01T00:00:00Z (negative before it).
    public var seconds: Int64
    /// The fraction of the second, in nanoseconds (0 up to 999 999 999).
    public var nanoseconds: Int32

    /// The instant `seconds` and `nanoseconds` after the epoch.
    public init(seconds: Int64, nanoseconds: Int32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// Go's zero time, `0001-01-01T00:00:00Z`: what Alertmanager sends as `endsAt` of a firing alert.
    public static let goZero = Timestamp(seconds: -62_135_596_800)

    /// True for Go's zero time (``Timestamp/goZero``), which means "no time".
    public var isGoZero: Bool { self == .goZero }

    /// True when `a` is earlier than `b`.
    public static func < (a: Timestamp, b: Timestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    /// This instant moved by `s` seconds (back when negative), with `Double` precision, rounded to the nanosecond.
    public func adding(seconds s: Double) -> Timestamp {
        let total = Double(nanoseconds) / 1e9 + s
        let whole = total.rounded(.down)
        return Timestamp(seconds: seconds + Int64(whole), nanoseconds: Int32(((total - whole) * 1e9).rounded()))
    }

    /// The ``Timestamp/rfc3339`` form.
    public var description: String { rfc3339 }

    /// RFC 3339 in UTC with the fraction's trailing zeros dropped (Go's `RFC3339Nano`):
    /// `2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.5Z`, `2024-05-01T12:00:00.123456789Z`.
    public var rfc3339: String {
        var b = dateTimeBytes()
        if nanoseconds > 0 {
            var frac = Int(nanoseconds)
            var digits = 9
            while frac % 10 == 0 {
                frac /= 10
                digits -= 1
            }
            b.append(0x2E)
            appendPadded(&b, frac, digits)
        }
        b.append(0x5A)
        return String(decoding: b, as: UTF8.self)
    }

    /// RFC 3339 in UTC with exactly milliseconds: `2024-05-01T12:00:00.000Z` (PagerDuty's examples' precision).
    public var rfc3339Millis: String {
        var b = dateTimeBytes()
        b.append(0x2E)
        appendPadded(&b, Int(nanoseconds / 1_000_000), 3)
        b.append(0x5A)
        return String(decoding: b, as: UTF8.self)
    }

    /// `YYYY-MM-DDTHH:MM:SS` as bytes (formatted by hand: this runs for every request a publish formats).
    private func dateTimeBytes() -> [UInt8] {
        let c = civil
        var b: [UInt8] = []
        b.reserveCapacity(32)
        appendPadded(&b, c.year, 4)
        b.append(0x2D)
        appendPadded(&b, c.month, 2)
        b.append(0x2D)
        appendPadded(&b, c.day, 2)
        b.append(0x54)
        appendPadded(&b, c.hour, 2)
        b.append(0x3A)
        appendPadded(&b, c.minute, 2)
        b.append(0x3A)
        appendPadded(&b, c.second, 2)
        return b
    }

    /// Parses RFC 3339 (`T` or `t` or a space between date and time; `Z`, `±HH:MM` or `±HHMM` offsets;
    /// any number of fraction digits, nanoseconds kept). Returns nil for anything else.
    public static func parse(_ text: String) -> Timestamp? {
        let b = Array(text.utf8)
        var i = 0
        func digits(_ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for k in 0..<n {
                let c = b[i + k]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            i += n
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(0x2D), let month = digits(2), expect(0x2D), let day = digits(2) else { return nil }
        guard i < b.count, b[i] == 0x54 || b[i] == 0x74 || b[i] == 0x20 else { return nil }
        i += 1
        guard let hour = digits(2), expect(0x3A), let minute = digits(2), expect(0x3A), let second = digits(2) else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year), hour < 24, minute < 60, second <= 60 else { return nil }
        var nanos = 0
        if i < b.count, b[i] == 0x2E {
            i += 1
            var n = 0
            var scale = 100_000_000
            let start = i
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
                if scale > 0 {
                    n += Int(b[i] - 0x30) * scale
                    scale /= 10
                }
                i += 1
            }
            guard i > start else { return nil }
            nanos = n
        }
        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == 0x5A || b[i] == 0x7A {
            i += 1
        } else if b[i] == 0x2B || b[i] == 0x2D {
            let sign = b[i] == 0x2D ? -1 : 1
            i += 1
            guard let oh = digits(2) else { return nil }
            _ = expect(0x3A)
            guard let om = digits(2), oh < 24, om < 60 else { return nil }
            offset = sign * (oh * 3600 + om * 60)
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let secs = Int64(days) * 86400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offset)
        return Timestamp(seconds: secs, nanoseconds: Int32(nanos))
    }

    private var civil: (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        var days = seconds / 86400
        var rem = seconds % 86400
        if rem < 0 {
            rem += 86400
            days -= 1
        }
        let (y, m, d) = Timestamp.civilFromDays(Int(days))
        return (y, m, d, Int(rem / 3600), Int(rem % 3600 / 60), Int(rem % 60))
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

/// `v` in decimal, zero-padded to at least `width` digits (a minus sign first for a negative year).
private func appendPadded(_ b: inout [UInt8], _ v: Int, _ width: Int) {
    if v < 0 {
        b.append(0x2D)
        return appendPadded(&b, -v, width)
    }
    var count = 1
    var scale = 1
    while scale <= v / 10 {
        scale *= 10
        count += 1
    }
    if count < width { b.append(contentsOf: repeatElement(0x30, count: width - count)) }
    var x = v
    while scale > 0 {
        b.append(UInt8(truncatingIfNeeded: 0x30 + x / scale))
        x %= scale
        scale /= 10
    }
}
