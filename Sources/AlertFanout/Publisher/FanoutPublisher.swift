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
    /// The reactor every request goes through: the one passed to the initializer, or the one this publisher
    /// created (and shuts down in `shutdown()`).
    public let reactor: CurlReactor
    /// The targets now (replaced by `replaceTargets`, e.g. on a service reload).
    public var config: TargetsConfig { targetsBox.withLock { $0 } }
    let targetsBox: Mutex<TargetsConfig>
    let ownsReactor: Bool
    let queue: DispatchQueue

    // Reactor-queue state.
    var runs: [UInt64: PublishRun] = [:]
    var nextRunID: UInt64 = 0
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
    ///
    /// - Throws: The error of creating the publisher's own reactor (only when `reactor` is nil).
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
        onQueue { [self] in
            nextRunID &+= 1
            let run = PublishRun(
                publisher: self, id: nextRunID, alert: alert, targets: selected, options: options, batch: batch, group: group,
                completion: deliver)
            runs[run.id] = run
            run.start()
            handle.attach(run)
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
        runs[run.id] = nil
        if let metrics {
            metrics.record(result)
            for t in run.targets where t.enabled {
                metrics.recordDeadline(
                    t.name, type: t.type.rawValue,
                    seconds: book.attemptTimeout(t.name, configured: t.timeoutSeconds ?? run.options.defaultTargetTimeout.seconds))
            }
        }
        log(run.alert, result, quiet: !run.options.logsOutcome)
    }

    /// A lane place went to another publish's waiting attempt (`FanoutMachine.Action.resume`). A publish that
    /// has ended gives the place straight back (its machine passes it on).
    func resume(_ ticket: LaneTicket) {
        if let run = runs[ticket.run] {
            run.laneGranted(index: ticket.index)
        }
    }

    /// Turns a guard event into metrics and a log line. `targets`: where to find the target's type.
    func observe(_ event: GuardEvent, targets: [Target]) {
        let name: String
        switch event {
        case .breaker(let t, _, _), .health(let t, _, _), .rateLimitWait(let t, _), .retryDeniedByBudget(let t), .endpointGone(let t):
            name = t
        }
        let type = targets.first { $0.name == name }?.type ?? config[name]?.type
        if let metrics, let type { metrics.observe(event, type: type.rawValue) }
        switch event {
        case .breaker(_, let from, let to):
            logger.log(
                level: to == .open ? .warning : .notice, "circuit breaker moved",
                metadata: ["target": "\(name)", "from": "\(from.rawValue)", "to": "\(to.rawValue)"])
        case .health(_, let from, let to):
            logger.log(
                level: to == .unhealthy ? .warning : .info, "target health changed",
                metadata: ["target": "\(name)", "from": "\(from.rawValue)", "to": "\(to.rawValue)"])
        case .endpointGone:
            logger.warning("the endpoint answered 410 Gone; it is skipped until the configuration is reloaded", metadata: ["target": "\(name)"])
        case .retryDeniedByBudget:
            logger.notice("retry refused: the target's retry budget is spent", metadata: ["target": "\(name)"])
        case .rateLimitWait(_, let seconds):
            logger.debug("waiting for a rate-limit token", metadata: ["target": "\(name)", "wait_ms": "\(Int(seconds * 1000))"])
        }
    }

    /// Observes the guard events that calls outside a publish (probes, reloads) left in the book.
    func observePendingGuardEvents() {
        let targets = config.targets
        for e in book.takeEvents() { observe(e, targets: targets) }
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
    private let state = Mutex<(run: PublishRun?, cancelled: Bool)>((nil, false))

    init() {}

    /// The run has started (reactor queue). A cancel that came before takes effect now.
    func attach(_ r: PublishRun) {
        let cancelled = state.withLock { s in
            s.run = r
            return s.cancelled
        }
        if cancelled { r.cancel() }
    }

    /// Ends the publish now: targets still in flight are reported failed (`cancelled`) and the completion
    /// receives `PublishError.cancelled` with the report, unless it had already completed. A cancel that comes
    /// before the publish has started takes effect as it starts; otherwise it is queued behind the start
    /// (never run inline, even on the reactor queue), so it cannot overtake it.
    public func cancel() {
        let r = state.withLock { s -> PublishRun? in
            s.cancelled = true
            return s.run
        }
        guard let r else { return }
        r.publisher.queue.async { r.cancel() }
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
