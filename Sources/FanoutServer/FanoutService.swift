// FanoutService: the long-running side of AlertFanout — one publisher kept warm, reloads, stats, drain.
import AlertFanout
import CoreMetrics
import Dispatch
import FanoutCore
import Logging
import Synchronization

/// The engine behind `fanout serve`: one `FanoutPublisher` on one reactor for the life of the process, so
/// breakers, health, adaptive deadlines, rate limits and Rootly ids carry over from one request to the next.
/// Thread-safe; HTTP handlers call it from NIO's event loops, deliveries run on the reactor queue.
public final class FanoutService: Sendable {
    public let publisher: FanoutPublisher
    let stats = ServiceStats()
    let logger: Logger
    let configPath: String?
    let environment: [String: String]
    let metrics: MetricsFactory?
    private let state: Mutex<State>

    struct State {
        var server: ServerSettings
        var draining = false
        /// Publishes started by the HTTP API and not finished.
        var inFlight = 0
        var lastReloadOK = true
        var lastReloadProblems: [String] = []
        var drained: [CheckedContinuation<Void, Never>] = []
    }

    public init(config: ServiceConfig, configPath: String? = nil, environment: [String: String] = [:],
                logger: Logger = Logger(label: "alertfanout.serve", factory: { _ in SwiftLogNoOpLogHandler() }),
                metrics: MetricsFactory? = nil) throws {
        publisher = try FanoutPublisher(targets: config.targets, logger: logger, metrics: metrics)
        self.logger = logger
        self.configPath = configPath
        self.environment = environment
        self.metrics = metrics
        state = Mutex(State(server: config.server))
        recordReload(ok: true)
    }

    public var settings: ServerSettings { state.withLock { $0.server } }
    public var isDraining: Bool { state.withLock { $0.draining } }

    // MARK: publishing

    /// Publishes every alert to the selected targets at once and returns one outcome per alert, in input order.
    /// Deliveries run to completion even if the caller goes away (a client that disconnects does not cancel
    /// what was accepted).
    func publish(_ batch: AlertBatch, selection: TargetSelection, strategy: HealthStrategy) async -> [Result<PublishReport, PublishError>] {
        let alerts = batch.alerts
        guard !alerts.isEmpty else { return [] }
        let options = PublishOptions(deadline: .milliseconds(Int64(settings.publishDeadlineSeconds * 1000)), strategy: strategy, selection: selection)
        let selectedCount: Int
        switch selection {
        case .all: selectedCount = publisher.config.enabled.count
        case .named(let names): selectedCount = names.filter { publisher.config[$0]?.enabled ?? false }.count
        }
        stats.accepted(alerts: alerts.count, deliveries: selectedCount * alerts.count)
        if let metrics { Counter(label: FanoutMetricNames.alertsAccepted, factory: metrics).increment(by: alerts.count) }
        state.withLock { $0.inFlight += 1 }
        let collector = OutcomeCollector(count: alerts.count)
        let results = await withCheckedContinuation { (c: CheckedContinuation<[Result<PublishReport, PublishError>], Never>) in
            collector.onComplete(c)
            for (i, alert) in alerts.enumerated() {
                publisher.publish(alert, options: options, batch: batch) { [stats] result in
                    stats.finished(result, expected: selectedCount)
                    collector.set(i, result)
                }
            }
        }
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.inFlight -= 1
            guard s.inFlight == 0 else { return [] }
            defer { s.drained = [] }
            return s.drained
        }
        waiters.forEach { $0.resume() }
        return results
    }

    // MARK: reload

    /// Reads the config file again. A bad file keeps the running configuration; its problems are returned and
    /// logged, and `alertfanout_config_last_reload_successful` is 0 until a good reload.
    public func reload() -> Result<[String], TargetsConfigError> {
        guard let configPath else {
            return .failure(.problems(file: "config", [InputProblem("", "the service was started without a config file")]))
        }
        do {
            let new = try ServiceConfigLoader.load(path: configPath, environment: environment)
            let old = settings
            let fresh = publisher.replaceTargets(new.targets)
            state.withLock {
                $0.server = new.server
                $0.lastReloadOK = true
                $0.lastReloadProblems = []
            }
            if new.server.host != old.host || new.server.port != old.port || new.server.tlsCertificateFile != old.tlsCertificateFile
                || new.server.tlsKeyFile != old.tlsKeyFile {
                logger.warning("listen address or TLS changed: they take effect on restart")
            }
            recordReload(ok: true)
            logger.info("configuration reloaded", metadata: ["targets": "\(new.targets.targets.count)", "fresh_targets": "\(fresh.joined(separator: ","))"])
            return .success(fresh)
        } catch let e as TargetsConfigError {
            state.withLock {
                $0.lastReloadOK = false
                $0.lastReloadProblems = e.problems.map(\.description)
            }
            recordReload(ok: false)
            for p in e.problems { logger.error("configuration reload failed; keeping the running configuration", metadata: ["problem": "\(p)"]) }
            return .failure(e)
        } catch {
            let e = TargetsConfigError.problems(file: configPath, [InputProblem("", "\(error)")])
            recordReload(ok: false)
            return .failure(e)
        }
    }

    var lastReload: (ok: Bool, problems: [String]) { state.withLock { ($0.lastReloadOK, $0.lastReloadProblems) } }

    private func recordReload(ok: Bool) {
        guard let metrics else { return }
        Gauge(label: FanoutMetricNames.configReloadSuccessful, factory: metrics).record(ok ? 1 : 0)
    }

    // MARK: shutdown

    /// Stops taking new work: readiness and new API requests answer 503 from now on.
    public func beginDrain() { state.withLock { $0.draining = true } }

    /// Waits until no publish started by the API is in flight, or `grace` has passed. True when drained.
    public func waitForInFlight(grace: Duration) async -> Bool {
        let done = Mutex(false)
        let timeout = Task {
            try? await Task.sleep(for: grace)
            let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                defer { s.drained = [] }
                return s.drained
            }
            waiters.forEach { $0.resume() }
        }
        defer { timeout.cancel() }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.inFlight == 0 { return true }
                s.drained.append(c)
                return false
            }
            if now { c.resume() }
        }
        done.withLock { $0 = true }
        return state.withLock { $0.inFlight == 0 }
    }

    /// Cancels what is still in flight and releases the reactor.
    public func shutdown() async { await publisher.shutdown() }
}

/// Gathers one result per alert, in input order, and resumes its continuation once every result is in.
final class OutcomeCollector: Sendable {
    private struct Box {
        var results: [Result<PublishReport, PublishError>?]
        var left: Int
        var continuation: CheckedContinuation<[Result<PublishReport, PublishError>], Never>?
    }

    private let box: Mutex<Box>

    init(count: Int) { box = Mutex(Box(results: Array(repeating: nil, count: count), left: count)) }

    func onComplete(_ c: CheckedContinuation<[Result<PublishReport, PublishError>], Never>) {
        let ready = box.withLock { b -> [Result<PublishReport, PublishError>]? in
            if b.left == 0 { return b.results.map { $0! } }
            b.continuation = c
            return nil
        }
        if let ready { c.resume(returning: ready) }
    }

    func set(_ i: Int, _ r: Result<PublishReport, PublishError>) {
        let done = box.withLock { b -> (CheckedContinuation<[Result<PublishReport, PublishError>], Never>, [Result<PublishReport, PublishError>])? in
            precondition(b.results[i] == nil, "one result per alert")
            b.results[i] = r
            b.left -= 1
            guard b.left == 0, let c = b.continuation else { return nil }
            b.continuation = nil
            return (c, b.results.map { $0! })
        }
        if let (c, results) = done { c.resume(returning: results) }
    }
}
