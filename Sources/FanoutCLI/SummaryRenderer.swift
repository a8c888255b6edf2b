// SummaryRenderer: the human-readable summary of a load run or demo burst.
import CurlReactor

func renderSummary(title: String, _ s: LoadSummary, stats: ReactorStats, cpuNote: String) -> String {
    var out = [title]
    let rate = s.elapsedSeconds > 0 ? Double(s.requests) / s.elapsedSeconds : 0
    out.append("  requests     \(s.requests) in \(fmt(s.elapsedSeconds, 2)) s = \(fmt(rate, 0)) req/s")
    let h = s.latencyMicros
    if h.totalCount > 0 {
        let p = [50.0, 90, 99, 99.9].map { "p\(trim($0)) \(ms(h.valueAtPercentile($0)))" }.joined(separator: "  ")
        out.append("  latency      \(p)  max \(ms(h.max)) ms")
    }
    let statuses = s.statuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    out.append("  statuses     \(statuses.isEmpty ? "none" : statuses)")
    if !s.errors.isEmpty {
        let errors = s.errors.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue): \($0.value)" }.joined(separator: ", ")
        out.append("  errors       \(errors)")
        if let first = s.firstError { out.append("  first error  \(first)") }
    }
    out.append("  connections  \(stats.connectionsOpened) opened")
    let perRequest = s.requests > 0 ? s.cpuSeconds / Double(s.requests) * 1e6 : 0
    out.append("  CPU          \(fmt(s.cpuSeconds, 2)) s = \(fmt(perRequest, 1)) µs/request (\(cpuNote))")
    return out.joined(separator: "\n")
}

private func ms(_ micros: UInt64) -> String { fmt(Double(micros) / 1000, 3) }

private func trim(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }

func fmt(_ v: Double, _ digits: Int) -> String {
    guard v.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let r = (v * scale).rounded() / scale
    if digits == 0 { return String(Int(r)) }
    var s = String(r)
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    }
    return s
}
