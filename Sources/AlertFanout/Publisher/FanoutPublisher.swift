// FanoutPublisher: publishes alerts to many targets at once on the one reactor, carrying out FanoutMachine's actions.
import CoreMetrics
import CurlReactor
import DequeModule
import Dispatch
import FanoutCore
import Logging
import Synchronization

/// Publishes each alert to its targets in parallel, on the reactor shared by every publish. Completions are
/// exact: one `PublishReport` per publish with one result per requested target, in request order.
///
/// Threading: methods may be called from any thread. All publisher state — per-target lanes, the Rootly id
/// index, active runs — lives on the reactor queue, so there are no locks on the hot path.
public final class FanoutPublisher: @unchecked Sendable {
    public let reactor: CurlReactor
    /// The targets now (replaced by `replaceTargets`, e.g. on a service reload).
    public var config: TargetsConfig { targetsBox.withLock { $0 } }
    let targetsBox: Mutex<TargetsConfig>
    let ownsReactor: Bool
    let queue: DispatchQueue

    // Reactor-queue state.
    var lanes: [String: TargetLane] = [:]
    var runs: [ObjectIdentifier: PublishRun] = [:]
    let rootlyIndex = RootlyAlertIndex()
    /// Breakers, health, adaptive deadlines, retry budgets and rate limits, shared by every publish.
    var book: GuardBook
    var rng = SystemRandomNumberGenerator()
    var prober: DispatchSourceTimer?
    let logger: Logger
    let metrics: FanoutMetrics?

    /// Uses `reactor` when given (shared with other users), else creates and owns one. `logger` gets one line
    /// per publish (info, warning on partial success, error when no target succeeded) and debug lines per
    /// target; `metrics` receives the metrics named in `FanoutMetricNames` (nil: none recorded).
    public init(
        targets: TargetsConfig, reactor: CurlReactor? = nil, resilience: ResilienceConfig = .init(),
        logger: Logger = Logger(label: "alertfanout", factory: { _ in SwiftLogNoOpLogHandler() }),
        metrics: MetricsFactory? = nil
    ) throws {
        book = GuardBook(config: resilience)
        self.logger = logger
        self.metrics = metrics.map(FanoutMetrics.init)
        if let reactor {
            self.reactor = reactor
            ownsReactor = false
        } else {
            self.reactor = try CurlReactor(configuration: .init(maxInFlightPerHost: 64, maxInFlightTotal: 1024, label: "alertfanout.publisher"))
            ownsReactor = true
        }
        targetsBox = Mutex(targets)
        queue = self.reactor.queue
    }

    /// Publishes `alert`. `completion` is called exactly once, on `callbackQueue` (or inline on the reactor
    /// queue when nil): with the report when at least one target succeeded, or a `PublishError` that still
    /// carries every per-target result.
    @discardableResult
    public func publish(
        _ alert: Alert, options: PublishOptions = .init(), batch: AlertBatch? = nil, callbackQueue: DispatchQueue? = nil,
        completion: @escaping @Sendable (Result<PublishReport, PublishError>) -> Void
    ) -> PublishHandle {
        start(alert, options: options, batch: batch, group: false, callbackQueue: callbackQueue, completion: completion)
    }

    func start(
        _ alert: Alert, options: PublishOptions, batch: AlertBatch?, group: Bool, callbackQueue: DispatchQueue?,
        completion: @escaping @Sendable (Result<PublishReport, PublishError>) -> Void
    ) -> PublishHandle {
        let deliver: @Sendable (Result<PublishReport, PublishError>) -> Void = { result in
            if let q = callbackQueue { q.async { completion(result) } } else { completion(result) }
        }
        let handle = PublishHandle()
        let selected: [Target]
        switch select(options.selection) {
        case .failure(let e):
            queue.async { deliver(.failure(e)) }
            return handle
        case .success(let t):
            selected = t
        }
        if let problem = validate(options) {
            queue.async { deliver(.failure(.invalidInput(problem))) }
            return handle
        }
        guard selected.contains(where: \.enabled) else {
            queue.async { deliver(.failure(.noEnabledTargets)) }
            return handle
        }
        let run = PublishRun(publisher: self, alert: alert, targets: selected, options: options, batch: batch, group: group, completion: deliver)
        handle.attach(run)
        onQueue { [self] in
            runs[ObjectIdentifier(run)] = run
            run.start()
        }
        return handle
    }

    /// Async form: returns the report, throws `PublishError`. Cancelling the task cancels the publish — also
    /// when the task was cancelled before this was called, or while the publish was being started.
    public func publish(_ alert: Alert, options: PublishOptions = .init(), batch: AlertBatch? = nil) async throws(PublishError) -> PublishReport {
        // Whichever comes second — the handle being stored, or the cancellation — cancels the publish.
        let state = Mutex<(handle: PublishHandle?, cancelled: Bool)>((nil, false))
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Result<PublishReport, PublishError>, Never>) in
                let h = publish(alert, options: options, batch: batch) { c.resume(returning: $0) }
                let cancelled = state.withLock { s in
                    s.handle = h
                    return s.cancelled
                }
                if cancelled { h.cancel() }
            }
        } onCancel: {
            let h = state.withLock { s in
                s.cancelled = true
                return s.handle
            }
            h?.cancel()
        }
        return try result.get()
    }

    /// Cancels every publish in flight, then shuts the reactor down if this publisher created it.
    public func shutdown() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            onQueue { [self] in
                prober?.cancel()
                prober = nil
                for run in Array(runs.values) { run.cancel() }
                c.resume()
            }
        }
        if ownsReactor { await reactor.shutdown(.drain) }
    }

    /// A snapshot of what the publisher has learned about each target (reactor queue).
    public var guards: GuardBook {
        if reactor.isOnQueue { return book }
        return queue.sync { book }
    }

    /// Starts optional active reachability probes of every enabled target, every `interval` (with ±10 % jitter).
    /// A probe is a `HEAD` whose HTTP status is ignored: any response, even 401, 404 or 405, proves the endpoint
    /// reachable, so authenticated and POST-only endpoints cannot false-alarm; only transport failures (refused,
    /// DNS, TLS, connect timeout) count against the target's health.
    public func startProbing(every interval: Duration) {
        onQueue { [self] in
            prober?.cancel()
            let t = DispatchSource.makeTimerSource(queue: queue)
            t.schedule(deadline: .now() + interval.seconds * 0.1, repeating: interval.seconds, leeway: .milliseconds(Int(interval.seconds * 100)))
            t.setEventHandler { [self] in probeAll() }
            t.activate()
            prober = t
        }
    }

    func probeAll() {
        for target in config.enabled { probe(target) { _ in } }
    }

    /// Publishes in flight now (reactor queue snapshot).
    public var activePublishes: Int {
        if reactor.isOnQueue { return runs.count }
        return queue.sync { runs.count }
    }

    func onQueue(_ body: @escaping @Sendable () -> Void) {
        if reactor.isOnQueue { body() } else { queue.async(execute: body) }
    }

    func runFinished(_ run: PublishRun, _ result: Result<PublishReport, PublishError>) {
        runs[ObjectIdentifier(run)] = nil
        if let metrics {
            metrics.record(result)
            metrics.record(guards: book, targets: run.targets, now: WallClock.monotonic())
        }
        log(run.alert, result, quiet: !run.options.logsOutcome)
    }

    /// One line per publish with structured metadata; per-target details at debug. Never URLs or secrets.
    /// Nothing is formatted when the logger's level would drop the line.
    private func log(_ alert: Alert, _ result: Result<PublishReport, PublishError>, quiet: Bool) {
        let report = (try? result.get()) ?? result.failureReport
        var level: Logger.Level
        if let report {
            level = report.allSucceeded ? .info : report.succeeded > 0 ? .warning : .error
        } else {
            level = .error
        }
        if quiet { level = .debug }
        guard self.logger.logLevel <= level else { return }
        var logger = self.logger
        logger[metadataKey: "alert.fingerprint"] = "\(alert.fingerprint)"
        logger[metadataKey: "alert.name"] = "\(alert.name)"
        logger[metadataKey: "alert.status"] = "\(alert.status.rawValue)"
        guard let report else {
            if case .failure(let e) = result { logger.error("publish rejected", metadata: ["error": "\(e)"]) }
            return
        }
        if logger.logLevel <= .debug {
            for t in report.results {
                var meta: Logger.Metadata = [
                    "target": "\(t.target)", "type": "\(t.type)", "outcome": "\(t.outcome.rawValue)",
                    "attempts": "\(t.attempts)", "duration_ms": "\(Int(t.durationSeconds * 1000))",
                ]
                if let s = t.httpStatus { meta["http_status"] = "\(s)" }
                if let k = t.errorKind { meta["error_kind"] = "\(k)" }
                if let r = t.skipReason { meta["skip_reason"] = "\(r.rawValue)" }
                if let m = t.message { meta["message"] = "\(m)" }
                logger.debug("target result", metadata: meta)
            }
        }
        let message: Logger.Message =
            report.allSucceeded ? "alert delivered to every target" : report.succeeded > 0 ? "alert partially delivered" : "alert reached no target"
        logger.log(
            level: level, message,
            metadata: [
                "succeeded": "\(report.succeeded)", "failed": "\(report.failed)", "skipped": "\(report.skipped)",
                "duration_ms": "\(Int(report.durationSeconds * 1000))",
            ])
    }

    func lane(for target: Target, options: PublishOptions) -> TargetLane {
        if let l = lanes[target.name] { return l }
        let l = TargetLane(limit: options.maxInFlightPerTarget ?? target.maxInFlight ?? Int.max)
        lanes[target.name] = l
        return l
    }

    private func select(_ selection: TargetSelection) -> Result<[Target], PublishError> {
        switch selection {
        case .all:
            return .success(config.targets)
        case .named(let names):
            guard !names.isEmpty else { return .failure(.invalidInput("no targets named")) }
            var out: [Target] = []
            var unknown: [String] = []
            var seen = Set<String>()
            for n in names {
                guard seen.insert(n).inserted else { return .failure(.invalidInput("target '\(n)' is named twice")) }
                if let t = config[n] { out.append(t) } else { unknown.append(n) }
            }
            guard unknown.isEmpty else {
                return .failure(
                    .invalidInput(
                        "unknown target\(unknown.count == 1 ? "" : "s"): \(unknown.joined(separator: ", ")) (configured: \(config.targets.map(\.name).joined(separator: ", ")))"
                    ))
            }
            return .success(out)
        }
    }

    private func validate(_ o: PublishOptions) -> String? {
        if o.deadline <= .zero { return "the deadline must be positive" }
        if o.defaultTargetTimeout <= .zero { return "the default target timeout must be positive" }
        if let m = o.maxInFlightPerTarget, m < 1 { return "maxInFlightPerTarget must be at least 1" }
        return nil
    }
}

/// Cancels one publish.
public final class PublishHandle: Sendable {
    private let run = Mutex<PublishRun?>(nil)

    init() {}

    func attach(_ r: PublishRun) { run.withLock { $0 = r } }

    /// Ends the publish now: targets still in flight are reported failed (`cancelled`) and the completion
    /// receives `PublishError.cancelled` with the report, unless it had already completed. Always queued behind
    /// the publish's start (never run inline, even on the reactor queue), so it cannot overtake it.
    public func cancel() {
        guard let r = run.withLock({ $0 }) else { return }
        r.publisher.queue.async { r.cancel() }
    }
}

/// Requests in flight to one target, across publishes, with a FIFO of attempts waiting for a slot.
/// Reactor queue only.
final class TargetLane: @unchecked Sendable {
    let limit: Int
    var inFlight = 0
    var waiting = Deque<() -> Void>()

    init(limit: Int) { self.limit = limit }

    func acquire(_ start: @escaping () -> Void) {
        if inFlight < limit {
            inFlight += 1
            start()
        } else {
            waiting.append(start)
        }
    }

    func release() {
        if let next = waiting.popFirst() {
            next()
        } else {
            inFlight -= 1
        }
    }
}

/// Rootly alert ids by target and fingerprint, so a resolved alert resolves the Rootly alert created for it.
/// In memory and bounded (oldest entries dropped past 100,000); lost on restart, after which a resolve is
/// reported failed with kind `missing_state`.
final class RootlyAlertIndex: @unchecked Sendable {
    private var ids: [String: String] = [:]
    private var order = Deque<String>()
    let capacity = 100_000

    func id(target: String, fingerprint: String) -> String? { ids["\(target)|\(fingerprint)"] }

    func remember(target: String, fingerprint: String, id: String) {
        let key = "\(target)|\(fingerprint)"
        if ids.updateValue(id, forKey: key) == nil { order.append(key) }
        while order.count > capacity, let old = order.popFirst() { ids[old] = nil }
    }

    func forget(target: String, fingerprint: String) { ids["\(target)|\(fingerprint)"] = nil }
}
