// FanoutService: the long-running side of AlertFanout — one publisher kept warm, reloads, stats, drain.
import AlertFanout
import CoreMetrics
import Dispatch
import FanoutCore
import FanoutStore
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The engine behind `fanout serve`: one `FanoutPublisher` on one reactor for the life of the process, so
/// breakers, health, adaptive deadlines, rate limits and Rootly ids carry over from one request to the next.
/// Thread-safe; HTTP handlers call it from NIO's event loops, deliveries run on the reactor queue.
public final class FanoutService: Sendable {
    public let publisher: FanoutPublisher
    /// The durable outbox, when the service runs with one (`--store`): `/webhook` then answers 202 once stored.
    public let store: (any DeliveryStore)?
    public let dispatcher: Dispatcher?
    public let policy: DeliveryPolicy
    let stats = ServiceStats()
    private let maintenance = Mutex<Task<Void, Never>?>(nil)
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

    /// With a `store`, a dispatcher starts working it at once (lease owner `owner`, unique per process).
    public init(
        config: ServiceConfig, configPath: String? = nil, environment: [String: String] = [:], store: (any DeliveryStore)? = nil,
        policy: DeliveryPolicy = .init(), resilience: ResilienceConfig = .init(), owner: String = "fanout-\(getpid())",
        logger: Logger = Logger(label: "alertfanout.serve", factory: { _ in SwiftLogNoOpLogHandler() }),
        metrics: MetricsFactory? = nil
    ) throws {
        // With an outbox a timed-out attempt is simply retried, so adaptive deadlines keep a floor of 1 s: on a busy
        // machine a 50 ms floor turned queueing into timeouts, the timeouts opened breakers, and the open breakers
        // held the whole backlog back (measured: 1,443 circuit_open skips from 19 timeouts in a 3 s burst).
        var resilience = resilience
        if store != nil { resilience.deadline.floorSeconds = max(resilience.deadline.floorSeconds, 1) }
        publisher = try FanoutPublisher(targets: config.targets, resilience: resilience, logger: logger, metrics: metrics)
        self.logger = logger
        self.configPath = configPath
        self.environment = environment
        self.metrics = metrics
        self.store = store
        self.policy = policy
        state = Mutex(State(server: config.server))
        if let store {
            dispatcher = Dispatcher(
                store: store, publisher: publisher, policy: policy, owner: owner,
                attemptDeadline: .milliseconds(Int64(config.server.publishDeadlineSeconds * 1000)), logger: logger, metrics: metrics)
        } else {
            dispatcher = nil
        }
        recordReload(ok: true)
        if let dispatcher, let store {
            dispatcher.start()
            maintenance.withLock { $0 = Task { [self] in await maintain(store) } }
        }
    }

    // MARK: the outbox

    /// Stores a received notification with one delivery per enabled target: one per alert, or one for the whole
    /// group for targets that take groups (Slack, Alertmanager receivers). Returns once committed.
    func accept(_ batch: AlertBatch, payload: [UInt8], receivedAt now: Double) async throws -> Int {
        guard let store, let dispatcher else { throw StoreError("the service runs without a store") }
        let group = batch.groupAlert
        var deliveries: [NewDelivery] = []
        for t in publisher.config.enabled {
            if t.type.takesGroups {
                if !batch.alerts.isEmpty {
                    deliveries.append(NewDelivery(target: t.name, alertIndex: -1, orderingKey: "group:" + group.fingerprint, status: group.status.rawValue))
                }
            } else {
                for (i, a) in batch.alerts.enumerated() {
                    deliveries.append(
                        NewDelivery(
                            target: t.name, alertIndex: i, orderingKey: a.fingerprint, status: a.status.rawValue,
                            isRootlyResolve: t.type == .rootly && a.status == .resolved))
                }
            }
        }
        // What this process stores it sends at once, leased to its dispatcher in the same transaction (no claim
        // round trip), when the dispatcher has room; otherwise the deliveries wait pending for its next claim.
        let reserved = dispatcher.reserve(deliveries.count) ? deliveries.count : 0
        let stored: Enqueued
        do {
            stored = try await store.enqueue(
                [NewNotification(payload: payload, receivedAt: now, deliveries: deliveries)], now: now, ttl: policy.ttlSeconds,
                lease: reserved > 0 ? EnqueueLease(owner: dispatcher.owner, seconds: policy.leaseSeconds) : nil)
        } catch {
            dispatcher.unreserve(reserved)
            throw error
        }
        // The dispatcher need not read back and decode what was just stored.
        if let id = stored.ids.first {
            dispatcher.remember(id, batch)
            await dispatcher.dispatchStored(stored.leased, reserved: reserved, notifications: [id: batch])
        } else {
            dispatcher.unreserve(reserved)
        }
        stats.accepted(alerts: batch.alerts.count, deliveries: 0)
        if let metrics { Counter(label: FanoutMetricNames.alertsAccepted, factory: metrics).increment(by: batch.alerts.count) }
        // Deliveries stored pending (no room, or waiting behind an older one of their key) are the claim loop's.
        if stored.leased.count < deliveries.count { dispatcher.wake() }
        return deliveries.count
    }

    /// Refreshes the outbox gauges every second and prunes finished records every minute, until shutdown.
    private func maintain(_ store: any DeliveryStore) async {
        var lastPrune = 0.0
        var knownTargets = Set<String>()
        while !Task.isCancelled {
            let now = WallTime.now()
            if let metrics, let counts = try? await store.counts(includingFinished: false) {
                knownTargets.formUnion(counts.byTarget.keys)
                for t in knownTargets {
                    let c = counts.byTarget[t] ?? [:]
                    Gauge(label: FanoutMetricNames.outboxPending, dimensions: [("target", t)], factory: metrics)
                        .record((c["pending"] ?? 0) + (c["leased"] ?? 0))
                    Gauge(label: FanoutMetricNames.outboxDead, dimensions: [("target", t)], factory: metrics).record(c["dead"] ?? 0)
                }
                Gauge(label: FanoutMetricNames.outboxOldestPending, factory: metrics).record(counts.oldestPendingCreatedAt.map { max(0, now - $0) } ?? 0)
            }
            if now - lastPrune >= 60 {
                lastPrune = now
                if let n = try? await store.prune(before: now - policy.retentionSeconds), n > 0 {
                    logger.info("pruned finished deliveries", metadata: ["count": "\(n)"])
                }
            }
            try? await Task.sleep(for: .seconds(1))
        }
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
                || new.server.tlsKeyFile != old.tlsKeyFile
            {
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
        return state.withLock { $0.inFlight == 0 }
    }

    /// Stops the dispatcher (deliveries in flight get `grace`, the rest go back to the store), cancels what is
    /// still in flight, releases the reactor and closes the store.
    public func shutdown(grace: Duration = .seconds(5)) async {
        maintenance.withLock { $0?.cancel() }
        await dispatcher?.stop(grace: grace)
        await publisher.shutdown()
        await store?.close()
    }
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
