// PublishOutput: `fanout publish` runs its alerts through a window and writes each report as soon as it and
// every report before it are in — tables or one JSON array — so a long alert file neither waits to the end for
// its first line nor keeps every report in memory.
import AlertFanout
import Dispatch
import FanoutCore
import FanoutLoad
import Foundation

/// Publishes a batch's alerts through the callback API, at most `window` at a time, and only as fast as the
/// targets' connections take their requests: an alert starts when one finishes and fewer than `backlog` requests
/// wait in the reactor for a connection (or none is in flight). Requests queued behind busy connections gain
/// nothing — they go out no sooner — but their memory is held and their alerts' deadlines run; a short queue
/// keeps every connection busy all the same. The reports that form an unbroken run from the first unwritten one go to `output`, in input order, on its
/// queue: every 50 ms, and as soon as 256 are ready or the last is — not once per alert, which would wake the
/// output thread as often as alerts finish. A task per alert would cost more than the delivery itself; thousands
/// of alerts at once would only queue their requests in the reactor (4,000 alerts × 5 targets: 73 MB peak
/// against 51 MB, twice the page faults).
final class PublishWindow: Sendable {
    private struct State {
        /// Results that finished, kept until the output takes them.
        var held: [Result<PublishReport, PublishError>?]
        /// Alerts `taken..<ready` have finished, every one of them, and wait for the output.
        var taken = 0
        var ready = 0
        var handOverQueued = false
        /// The next alert to start, and the alerts started and not finished.
        var next = 0
        var inFlight = 0
        /// Alerts to start, and whether a caller is starting them (see `start`).
        var pending: [Int] = []
        var starting = false
        var done: CheckedContinuation<Void, Never>?
    }

    private let publisher: FanoutPublisher
    private let batch: AlertBatch
    private let options: PublishOptions
    private let window: Int
    private let output: PublishOutput
    private let state: Locked<State>
    static let handOverEvery = 256
    /// Alerts started at once at the beginning (more follow as the reactor's queue allows).
    static let firstAlerts = 16
    /// Requests waiting for a connection above which no further alert starts.
    static let backlog = 64

    init(publisher: FanoutPublisher, batch: AlertBatch, options: PublishOptions, window: Int, output: PublishOutput) {
        self.publisher = publisher
        self.batch = batch
        self.options = options
        self.window = min(batch.alerts.count, window)
        self.output = output
        state = Locked(State(held: Array(repeating: nil, count: batch.alerts.count)))
    }

    /// Returns once every alert's report has been handed to the output and written.
    func run() async {
        guard !batch.alerts.isEmpty else { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            state.withLock { $0.done = c }
            output.startTimer { [self] in handOver() }
            for _ in 0..<min(window, PublishWindow.firstAlerts) {
                guard let i = state.withLock({ s -> Int? in take(&s) }) else { break }
                start(i)
            }
        }
    }

    /// Starts alert `i`, or leaves it to the caller already starting alerts: a publish that ends at once (every
    /// target skipped) completes inside `publish` and starts the next from there, which would nest one call per
    /// alert.
    private func start(_ i: Int) {
        let mine = state.withLock { s in
            s.pending.append(i)
            defer { s.starting = true }
            return !s.starting
        }
        guard mine else { return }
        while let j = state.withLock({ s -> Int? in
            if let j = s.pending.popLast() { return j }
            s.starting = false
            return nil
        }) {
            publisher.publish(batch.alerts[j], options: options, batch: batch) { [self] result in finished(j, result) }
        }
    }

    /// The next alert to start, counted as in flight, or nil when none is left or `window` are in flight.
    private func take(_ s: inout State) -> Int? {
        guard s.next < batch.alerts.count, s.inFlight < window else { return nil }
        defer {
            s.next += 1
            s.inFlight += 1
        }
        return s.next
    }

    private func finished(_ i: Int, _ result: Result<PublishReport, PublishError>) {
        let total = batch.alerts.count
        let handOverNow = state.withLock { s -> Bool in
            s.held[i] = result
            s.inFlight -= 1
            while s.ready < total, s.held[s.ready] != nil { s.ready += 1 }
            guard !s.handOverQueued, s.ready == total || s.ready - s.taken >= PublishWindow.handOverEvery else { return false }
            s.handOverQueued = true
            return true
        }
        if handOverNow { output.queue.async { [self] in handOver() } }
        // As many alerts as the window and the reactor's queue allow (one alert's requests may all have been
        // admitted at once, or not at all).
        while true {
            let waiting = publisher.reactor.waitingRequests
            guard let next = state.withLock({ s -> Int? in s.inFlight == 0 || waiting < PublishWindow.backlog ? take(&s) : nil }) else { break }
            start(next)
        }
    }

    /// Writes the reports ready since the last hand-over (on the output queue); after the last, stops the timer
    /// and lets `run` return.
    private func handOver() {
        let total = batch.alerts.count
        let (first, reports, done) = state.withLock { s -> (Int, [Result<PublishReport, PublishError>], CheckedContinuation<Void, Never>?) in
            s.handOverQueued = false
            let first = s.taken
            var reports: [Result<PublishReport, PublishError>] = []
            reports.reserveCapacity(s.ready - s.taken)
            while s.taken < s.ready {
                reports.append(s.held[s.taken].take()!)
                s.taken += 1
            }
            return (first, reports, s.taken == total ? s.done.take() : nil)
        }
        guard !reports.isEmpty else { return }
        for (k, r) in reports.enumerated() { output.write(first + k, r) }
        output.flush()
        if let done {
            output.stopTimer()
            done.resume()
        }
    }
}

/// A value behind a pthread mutex (`NSLock`). The window's state is touched from the reactor queue, the output
/// queue and the starting thread; the thread sanitizer follows a pthread mutex but not `Synchronization.Mutex`,
/// whose futex it cannot see (it reported every such pair of accesses as a race).
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// Writes reports to standard output on its own queue, in the order handed over: tables, or the elements of one
/// indented JSON array (the text `JSONValue.writePrettyLines` writes for the whole list). Counts what the exit
/// status and the closing summary need, and the Rootly ids a store should remember.
final class PublishOutput: @unchecked Sendable {
    struct RootlyChange {
        var target: String
        var fingerprint: String
        /// "create" (remember `id`) or "resolve" (forget).
        var action: String
        var id: String
    }

    let queue = DispatchQueue(label: "alertfanout.publish.output")
    private let alerts: [Alert]
    private let json: Bool
    private let rootlyTargets: Set<String>
    private let started: DispatchTime
    // Everything below is touched on `queue` only, and read by the command after `PublishWindow.run` returned.
    private var writer = JSONWriter(pretty: true, capacity: 1 << 16 + 4096)
    private var text = ""
    private(set) var exitStatus: Int32 = 0
    private(set) var rootlyChanges: [RootlyChange] = []
    private var written = 0
    private var delivered = 0
    private var partial = 0
    private var notDelivered = 0
    private var targetCounts = (succeeded: 0, failed: 0, skipped: 0)

    init(alerts: [Alert], json: Bool, rootlyTargets: Set<String>, started: DispatchTime) {
        self.alerts = alerts
        self.json = json
        self.rootlyTargets = rootlyTargets
        self.started = started
        if json { writer.beginArray() }
    }

    /// Alert `index`'s result (on `queue`).
    func write(_ index: Int, _ r: Result<PublishReport, PublishError>) {
        written += 1
        var report: PublishReport?
        switch r {
        case .success(let rep):
            report = rep
            if rep.allSucceeded {
                delivered += 1
            } else {
                partial += 1
                exitStatus = max(exitStatus, 1)
            }
            for t in rep.results where rootlyTargets.contains(t.target) && t.outcome == .succeeded {
                if t.action == "create", let id = t.detail {
                    rootlyChanges.append(RootlyChange(target: t.target, fingerprint: rep.fingerprint, action: "create", id: id))
                } else if t.action == "resolve" {
                    rootlyChanges.append(RootlyChange(target: t.target, fingerprint: rep.fingerprint, action: "resolve", id: ""))
                }
            }
        case .failure(let e):
            report = e.report
            notDelivered += 1
            if case .invalidInput = e { exitStatus = max(exitStatus, 64) } else { exitStatus = max(exitStatus, 2) }
        }
        if let report {
            targetCounts.succeeded += report.succeeded
            targetCounts.failed += report.failed
            targetCounts.skipped += report.skipped
        }
        let buffered: Int
        if json {
            r.write(to: &writer)
            buffered = writer.bytes.count
        } else {
            renderPublish(alert: alerts[index], r, into: &text)
            text.append("\n")
            buffered = text.utf8.count
        }
        if buffered >= 1 << 16 { flush() }
    }

    private var timer: (any DispatchSourceTimer)?

    /// Calls `tick` on `queue` every 50 ms until `stopTimer`.
    func startTimer(_ tick: @escaping @Sendable () -> Void) {
        queue.sync {
            let t = DispatchSource.makeTimerSource(queue: queue)
            t.schedule(deadline: .now() + .milliseconds(50), repeating: .milliseconds(50))
            t.setEventHandler(handler: tick)
            t.resume()
            timer = t
        }
    }

    /// On `queue`.
    func stopTimer() {
        timer?.cancel()
        timer = nil
    }

    /// Writes what is buffered (on `queue`).
    func flush() {
        if json { writer.drain(writeStandardOutput) } else { drainText() }
    }

    /// Closes the JSON array, or adds a summary line after the tables of more than one alert. Call once the
    /// window's `run` returned (every `write` is done).
    func finish() {
        queue.sync {
            if json {
                writer.endArray()
                writer.bytes.append(0x0A)
                writer.drain(writeStandardOutput)
                return
            }
            if written > 1 {
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
                let took = seconds < 1 ? "\(fmt(seconds * 1000, 1)) ms" : "\(fmt(seconds, 2)) s"
                // Counts that are not zero: "2 alerts: 2 delivered — targets 4 ok in 3.1 ms".
                let alertsPart = [(delivered, "delivered"), (partial, "partial"), (notDelivered, "not delivered")]
                    .filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
                var targetsPart = "\(targetCounts.succeeded) ok"
                if targetCounts.failed > 0 { targetsPart += ", \(targetCounts.failed) failed" }
                if targetCounts.skipped > 0 { targetsPart += ", \(targetCounts.skipped) skipped" }
                text.append("\(written) alerts: \(alertsPart) — targets \(targetsPart) in \(took)\n")
            }
            drainText()
        }
    }

    private func drainText() {
        guard !text.isEmpty else { return }
        text.withUTF8 { writeStandardOutput($0) }
        text.removeAll(keepingCapacity: true)
    }
}

/// One alert's table — target, type, outcome, HTTP status, attempts, milliseconds, and the reason or message —
/// appended to `out` (no line break after the last row).
func renderPublish(alert: Alert, _ r: Result<PublishReport, PublishError>, into out: inout String) {
    let report: PublishReport
    var head: String
    switch r {
    case .success(let rep):
        report = rep
        head = rep.allSucceeded ? "delivered" : "partial"
    case .failure(let e):
        guard let rep = e.report else {
            out += "alert \(alert.name) [\(alert.fingerprint)]: \(e)"
            return
        }
        report = rep
        head = e.description
    }
    out += "alert \(alert.name) [\(alert.fingerprint)] \(alert.status.rawValue): \(head) — \(report.succeeded) ok, \(report.failed) failed, "
    out += "\(report.skipped) skipped in \(fmt(report.durationSeconds * 1000, 1)) ms"
    var rows = [["TARGET", "TYPE", "OUTCOME", "HTTP", "TRIES", "MS", "DETAIL"]]
    rows.reserveCapacity(report.results.count + 1)
    for t in report.results {
        let outcome = t.outcome == .skipped ? "skipped" : t.outcome.rawValue
        let detail = t.skipReason?.rawValue ?? [t.errorKind?.rawValue, t.message].compactMap { $0 }.joined(separator: ": ")
        rows.append([
            t.target, t.type, outcome, t.httpStatus.map(String.init) ?? "-", String(t.attempts),
            t.outcome == .skipped ? "-" : fmt(t.durationSeconds * 1000, 1), String(detail.prefix(80)),
        ])
    }
    appendTable(rows, indent: "  ", to: &out)
}

/// `rows` as text columns two spaces apart, each line after a line break and `indent`; the last column unpadded.
func appendTable(_ rows: [[String]], indent: String, to out: inout String) {
    let widths = columnWidths(rows)
    for r in rows {
        out += "\n"
        out += indent
        appendRow(r, widths: widths, to: &out)
    }
}

/// `rows` as text columns two spaces apart (the last unpadded), one string per row.
func table(_ rows: [[String]]) -> [String] {
    let widths = columnWidths(rows)
    return rows.map { r in
        var line = ""
        appendRow(r, widths: widths, to: &line)
        return line
    }
}

private func columnWidths(_ rows: [[String]]) -> [Int] {
    var widths: [Int] = []
    for r in rows {
        for i in r.indices {
            if i == widths.count { widths.append(0) }
            widths[i] = max(widths[i], r[i].count)
        }
    }
    return widths
}

/// One row, each cell but the last padded to its column's width and followed by two spaces.
private func appendRow(_ r: [String], widths: [Int], to out: inout String) {
    for i in r.indices {
        out += r[i]
        guard i < r.count - 1 else { break }
        for _ in 0..<(widths[i] - r[i].count + 2) { out.append(" ") }
    }
}
