// Formatting: number formatting shared by the load report and the CLI's tables and summaries.

/// `v` with `digits` decimals (trailing zeros kept), or "-" when not finite.
package func fmt(_ v: Double, _ digits: Int) -> String {
    guard v.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let r = (v * scale).rounded() / scale
    if digits == 0 { return String(Int(r)) }
    var s = String(r)
    if s.contains("e") { return String(r) }
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    }
    return s
}

/// Whole microseconds of a duration.
package func micros(_ d: Duration) -> Int64 { d.wholeMicroseconds }
