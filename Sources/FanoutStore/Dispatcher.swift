// Dispatcher: leases due deliveries from the store, publishes each through the one reactor, records the outcome.
import AlertFanout
import CoreMetrics
import Dispatch
import FanoutCore
import Logging
import NIOConcurrencyHelpers

/// Works the outbox: claims due deliveries (leases), hands each to the `FanoutPublisher` (one target per
/// delivery, or one group request for Slack and Alertmanager targets), decides what follows with
/// `DeliveryPolicy`, and records it. Completions are written in groups. Store outages are retried with
/// backoff; a delivery whose outcome could not be written is sent again after its lease expires (at least
/// once; the vendors' dedup keys make a repeat harmless where the vendor has one).
public final class Dispatcher: Sendable {
    public let store: any DeliveryStore
    let publisher: FanoutPublisher
    let policy: DeliveryPolicy
    /// This dispatcher's lease owner name (unique per process).
    public let owner: String
    let logger: Logger
    let metrics: MetricsFactory?
    let attemptDeadline: Duration
    let maxInFlight: Int
    let batchSize: Int
    private let state = NIOLockedValueBox(State())
    private let batches = NIOLockedValueBox(BatchCache())
    private let rng = NIOLockedValueBox(SystemRandomNumberGenerator())

    struct State {
        var running = false
        var stopping = false
        var inFlight: Set<Int64> = []
        /// Places promised to deliveries a caller is storing leased to this dispatcher (`reserve`).
        var reserved = 0
        var woken = false
        var sleeper: CheckedContinuation<Void, Never>?
        var sleepToken: UInt64 = 0
        var loop: Task<Void, Never>?
        var lastError: String?
    }

    /// Decoded notifications, most recent first out (bounded).
    struct BatchCache {
        var entries: [Int64: AlertBatch] = [:]
        var order: [Int64] = []
        mutating func put(_ id: Int64, _ b: AlertBatch) {
            if entries.updateValue(b, forKey: id) == nil { order.append(id) }
            if order.count > 4096 {
                for old in order.prefix(1024) { entries[old] = nil }
                order.removeFirst(1024)
            }
        }
    }

    public init(
        store: any DeliveryStore, publisher: FanoutPublisher, policy: DeliveryPolicy = .init(), owner: String,
        attemptDeadline: Duration = .seconds(10), maxInFlight: Int = 4096, batchSize: Int = 512,
        logger: Logger = Logger(label: "alertfanout.dispatcher", factory: { _ in SwiftLogNoOpLogHandler() }),
        metrics: MetricsFactory? = nil
    ) {
        self.store = store
        self.publisher = publisher
        self.policy = policy
        self.owner = owner
        self.attemptDeadline = attemptDeadline
        self.maxInFlight = maxInFlight
        self.batchSize = batchSize
        self.logger = logger
        self.metrics = metrics
    }

    /// Starts working the outbox (idempotent).
    public func start() {
        state.withLockedValue { s in
            guard !s.running else { return }
            s.running = true
            s.loop = Task { await self.loop() }
        }
    }

    /// New work was stored: look now rather than at the next poll.
    public func wake() {
        let c = state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
            if let c = s.sleeper {
                s.sleeper = nil
                return c
            }
            s.woken = true
            return nil
        }
        c?.resume()
    }

    /// Keeps a notification the caller just stored (decoded from its payload with its receive time), so its
    /// deliveries need no read-back.
    public func remember(_ notificationID: Int64, _ batch: AlertBatch) {
        batches.withLockedValue { $0.put(notificationID, batch) }
    }

    /// Promises room for `count` deliveries that the caller is about to store leased to this dispatcher
    /// (`DeliveryStore.enqueue(…, lease:)`), to be handed over with `dispatchStored`. False when there is no
    /// room or the dispatcher is not running: then store them pending and `wake()` it.
    public func reserve(_ count: Int) -> Bool {
        state.withLockedValue { s in
            guard s.running, !s.stopping, s.inFlight.count + s.reserved + count <= maxInFlight else { return false }
            s.reserved += count
            return true
        }
    }

    /// Gives back places `reserve` promised and that will not be used (the store write failed).
    public func unreserve(_ count: Int) {
        state.withLockedValue { $0.reserved -= count }
    }

    /// Sends deliveries that were just stored leased to this dispatcher (fewer than reserved when some were
    /// superseded or must wait behind an older one of their key). `notifications` holds their notifications.
    public func dispatchStored(_ leased: [ClaimedDelivery], reserved: Int, notifications: [Int64: AlertBatch]) async {
        let accepted = state.withLockedValue { s -> Bool in
            s.reserved -= reserved
            guard !s.stopping else { return false }
            for d in leased { s.inFlight.insert(d.id) }
            return true
        }
        guard accepted else {
            // Stopping: `stop` no longer sees new work, so these go back to the store for the next dispatcher.
            try? await store.release(leased.map(\.id), owner: owner)
            return
        }
        do {
            try await start(leased, notifications: notifications)
        } catch {
            // Only the Rootly id look-up can fail here; the deliveries are given back and claimed again later.
            logger.error("the store failed; deliveries go back to the outbox", metadata: ["error": "\(error)"])
            state.withLockedValue { s in for d in leased { s.inFlight.remove(d.id) } }
            try? await store.release(leased.map(\.id), owner: owner)
            wake()
        }
    }

    /// Deliveries being sent now.
    public var inFlight: Int { state.withLockedValue { $0.inFlight.count } }
    /// The last store error, while the store is failing.
    public var lastError: String? { state.withLockedValue { $0.lastError } }

    /// Stops claiming, lets deliveries in flight finish within `grace`, then gives the rest back to the store
    /// (they are sent again by the next dispatcher). Returns when the loop has ended.
    public func stop(grace: Duration) async {
        let loop = state.withLockedValue { s -> Task<Void, Never>? in
            s.stopping = true
            return s.loop
        }
        wake()
        await loop?.value
        let deadline = ContinuousClock.now + grace
        while inFlight > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let left = state.withLockedValue { Array($0.inFlight) }
        if !left.isEmpty {
            logger.warning("giving deliveries back to the store at shutdown", metadata: ["count": "\(left.count)"])
            try? await store.release(left, owner: owner)
        }
    }

    // MARK: the loop

    private func loop() async {
        var failures = 0
        while !state.withLockedValue({ $0.stopping }) {
            let room = state.withLockedValue { maxInFlight - $0.inFlight.count - $0.reserved }
            guard room > 0 else {
                await sleep(0.05)
                continue
            }
            do {
                let now = WallTime.now()
                let claimed = try await store.claim(owner: owner, limit: min(batchSize, room), now: now, leaseSeconds: policy.leaseSeconds)
                if failures > 0 { logger.notice("store reachable again") }
                failures = 0
                state.withLockedValue { $0.lastError = nil }
                if claimed.isEmpty {
                    // Nothing due: wake-ups that arrive now (every completion sends one, and an accept that stored
                    // something pending) are served together after a short gap, so a busy service does not ask an
                    // empty outbox hundreds of times a second (each claim is planned by the database anew).
                    try? await Task.sleep(for: .milliseconds(20))
                    await sleep(0.18)
                    continue
                }
                if let metrics {
                    let lag = CoreMetrics.Timer(label: FanoutMetricNames.dispatcherLag, preferredDisplayUnit: .seconds, factory: metrics)
                    for d in claimed { lag.recordNanoseconds(Int64(max(0, now - d.dueAt) * 1e9)) }
                }
                state.withLockedValue { s in for d in claimed { s.inFlight.insert(d.id) } }
                do {
                    try await dispatch(claimed)
                } catch {
                    // Not sent: their leases run out and they are claimed again.
                    state.withLockedValue { s in for d in claimed { s.inFlight.remove(d.id) } }
                    throw error
                }
            } catch {
                failures += 1
                state.withLockedValue { $0.lastError = "\(error)" }
                logger.error("the store failed; retrying", metadata: ["error": "\(error)", "failures": "\(failures)"])
                await sleep(min(5, 0.1 * Double(1 << min(failures, 6))))
            }
        }
    }

    /// Sleeps up to `seconds`, or until `wake()`.
    private func sleep(_ seconds: Double) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let token = state.withLockedValue { s -> UInt64? in
                if s.woken || s.stopping {
                    s.woken = false
                    return nil
                }
                s.sleepToken &+= 1
                s.sleeper = c
                return s.sleepToken
            }
            guard let token else { return c.resume() }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [self] in
                let c = state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
                    guard s.sleepToken == token, let c = s.sleeper else { return nil }
                    s.sleeper = nil
                    return c
                }
                c?.resume()
            }
        }
    }

    private func dispatch(_ claimed: [ClaimedDelivery]) async throws {
        // The notifications, decoded once and cached. Taken out of the cache here, so that the cache making room
        // for newer ones (the service adds every notification it stores) cannot take them from this dispatch.
        var notes: [Int64: AlertBatch] = [:]
        for id in Set(claimed.map(\.notificationID)) {
            if let b = batches.withLockedValue({ $0.entries[id] }) { notes[id] = b }
        }
        let missing = Set(claimed.map(\.notificationID)).subtracting(notes.keys)
        if !missing.isEmpty {
            let payloads = try await store.payloads(Array(missing))
            // Decoded with the time it was received (as the service did), so missing times are filled the same way.
            var received: [Int64: Double] = [:]
            for d in claimed { received[d.notificationID] = d.createdAt }
            for (id, bytes) in payloads {
                let now = WallTime.timestamp(milliseconds: Int64(((received[id] ?? 0) * 1000).rounded())).timestamp
                if let b = try? AlertInput.decode(json: bytes, now: now) {
                    notes[id] = b
                    batches.withLockedValue { $0.put(id, b) }
                }
            }
        }
        try await start(claimed, notifications: notes)
    }

    /// Starts publishing deliveries already counted in flight, grouped by alert.
    private func start(_ claimed: [ClaimedDelivery], notifications notes: [Int64: AlertBatch]) async throws {
        let config = publisher.config
        // Rootly resolves need the id the create stored (maybe by another process).
        var rootlyKeys: [String] = []
        for d in claimed where config[d.target]?.type == .rootly && d.alertIndex >= 0 { rootlyKeys.append("\(d.target)|\(d.orderingKey)") }
        try await store.loadRootlyIDs(rootlyKeys, into: publisher)
        // The deliveries of one alert (or one group) to several targets go out as one publish: the request
        // bodies are made once and the targets are sent to in parallel, each with its own result and decision.
        // The outcomes are recorded together when the publish ends, so a slow target holds its siblings' records
        // (not their sending) until its attempt deadline; a crash in between sends those again (at least once).
        var groups: [[ClaimedDelivery]] = []
        var groupOf: [AlertKey: Int] = [:]
        for d in claimed {
            let key = AlertKey(notificationID: d.notificationID, alertIndex: d.alertIndex)
            if let i = groupOf[key], !groups[i].contains(where: { $0.target == d.target }) {
                groups[i].append(d)
            } else {
                groupOf[key] = groups.count
                groups.append([d])
            }
        }
        for g in groups { send(g, config: config, notifications: notes) }
    }

    private struct AlertKey: Hashable {
        var notificationID: Int64
        var alertIndex: Int
    }

    /// Sends deliveries of one stored alert (or group) to their targets in one publish.
    private func send(_ deliveries: [ClaimedDelivery], config: TargetsConfig, notifications: [Int64: AlertBatch]) {
        var live: [(ClaimedDelivery, Target)] = []
        var done: [DeliveryCompletion] = []
        for d in deliveries {
            guard let target = config[d.target] else {
                done.append(outcome(d, .dead(reason: "target '\(d.target)' is no longer configured"), result: nil))
                continue
            }
            live.append((d, target))
        }
        defer { if !done.isEmpty { record(done) } }
        guard let first = live.first?.0 else { return }
        guard let batch = notifications[first.notificationID] else {
            for (d, _) in live { done.append(outcome(d, .dead(reason: "the stored notification cannot be read"), result: nil)) }
            return
        }
        guard first.alertIndex < batch.alerts.count else {
            for (d, _) in live { done.append(outcome(d, .dead(reason: "the stored notification has no alert \(d.alertIndex)"), result: nil)) }
            return
        }
        // Health does not skip here: a skipped delivery would only wait; the breaker still guards the target.
        let options = PublishOptions(deadline: attemptDeadline, strategy: .publishToAll, selection: .named(live.map(\.0.target)), logsOutcome: false)
        let sending = live
        let alert = first.alertIndex < 0 ? nil : batch.alerts[first.alertIndex]
        let finished: @Sendable (Result<PublishReport, PublishError>) -> Void = { [self] r in
            record(sending.map { d, target in decide(d, target: target, alert: alert, r) })
        }
        if let alert {
            publisher.publish(alert, options: options, batch: batch, completion: finished)
        } else {
            publisher.publish(group: batch, options: options, completion: finished)
        }
    }

    /// What follows one delivery's attempt, from its target's result in the publish.
    private func decide(_ d: ClaimedDelivery, target: Target, alert: Alert?, _ r: Result<PublishReport, PublishError>) -> DeliveryCompletion {
        let result: TargetResult
        switch r {
        case .success(let report):
            result =
                report.results.first { $0.target == d.target }
                ?? TargetResult(target: d.target, type: target.type.rawValue, outcome: .failed, errorKind: .format)
        case .failure(.noEnabledTargets):
            result = TargetResult(target: d.target, type: target.type.rawValue, outcome: .skipped, skipReason: .disabled)
        case .failure(.invalidInput(let m)):
            result = TargetResult(target: d.target, type: target.type.rawValue, outcome: .failed, errorKind: .format, message: m)
        case .failure(let e):
            result =
                e.report?.results.first { $0.target == d.target }
                ?? TargetResult(target: d.target, type: target.type.rawValue, outcome: .failed, errorKind: .format, message: "\(e)")
        }
        let decision = rng.withLockedValue { g in
            policy.decide(
                result, attempts: d.attempts, now: WallTime.now(), expiresAt: d.expiresAt,
                ratePerSecond: target.effectiveRateLimit?.perSecond, rng: &g)
        }
        var rootly: DeliveryCompletion.RootlyChange?
        if target.type == .rootly, result.outcome == .succeeded, let alert {
            if result.action == "create", let id = result.detail {
                rootly = .remember(target: target.name, fingerprint: alert.fingerprint, id: id)
            } else if result.action == "resolve" {
                rootly = .forget(target: target.name, fingerprint: alert.fingerprint)
            }
        }
        return outcome(d, decision, result: result, rootly: rootly)
    }

    /// Counts and logs one delivery's decision; the completion to record.
    private func outcome(
        _ d: ClaimedDelivery, _ decision: DeliveryPolicy.Decision, result: TargetResult?,
        rootly: DeliveryCompletion.RootlyChange? = nil
    ) -> DeliveryCompletion {
        if let metrics {
            let label: String
            switch decision {
            case .delivered: label = "delivered"
            case .retry: label = "retry"
            case .dead: label = "dead"
            case .superseded: label = "superseded"
            }
            Counter(label: FanoutMetricNames.outboxFinished, dimensions: [("target", d.target), ("result", label)], factory: metrics).increment()
        }
        // One line per attempt, at the level its consequence deserves (the publisher logs these at debug only).
        switch decision {
        case .delivered:
            logger.debug("delivered", metadata: ["target": "\(d.target)", "delivery": "\(d.id)", "attempts": "\(d.attempts + 1)"])
        case .retry(let dueAt, _, let reason):
            logger.info(
                "delivery attempt failed; will retry",
                metadata: [
                    "target": "\(d.target)", "delivery": "\(d.id)", "attempts": "\(d.attempts + 1)", "reason": "\(reason)",
                    "retry_in_s": "\(Int(max(0, dueAt - WallTime.now()).rounded(.up)))",
                ])
        case .dead(let reason):
            logger.warning("delivery became a dead letter", metadata: ["target": "\(d.target)", "delivery": "\(d.id)", "reason": "\(reason)"])
        case .superseded(let reason):
            logger.debug("delivery superseded", metadata: ["target": "\(d.target)", "delivery": "\(d.id)", "reason": "\(reason)"])
        }
        return DeliveryCompletion(id: d.id, decision: decision, httpStatus: result?.httpStatus, rootly: rootly)
    }

    /// Writes the outcomes (one store call for all of them), then frees their in-flight places.
    private func record(_ completions: [DeliveryCompletion]) {
        Task {
            // The outcome must reach the store; while it cannot, the lease keeps the delivery from being sent twice.
            for attempt in 0..<20 {
                do {
                    try await store.complete(completions, owner: owner, now: WallTime.now())
                    break
                } catch {
                    logger.error(
                        "cannot record delivery outcomes; retrying",
                        metadata: ["deliveries": "\(completions.map(\.id))", "error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(100 << min(attempt, 5)))
                }
            }
            state.withLockedValue { s in for c in completions { s.inFlight.remove(c.id) } }
            wake()
        }
    }
}

/// Wall-clock seconds since 1970 (stored times are wall-clock so replicas agree).
public enum WallTime {
    public static func now() -> Double {
        let t = Timestamp.now()
        return Double(t.seconds) + Double(t.nanoseconds) / 1e9
    }

    /// Now, rounded down to the whole millisecond the stores keep, as seconds and as a `Timestamp`.
    public static func millisecondInstant() -> (seconds: Double, timestamp: Timestamp) {
        timestamp(milliseconds: Int64((now() * 1000).rounded(.down)))
    }

    /// A stored time (milliseconds since 1970) as seconds and as a `Timestamp`.
    public static func timestamp(milliseconds ms: Int64) -> (seconds: Double, timestamp: Timestamp) {
        let (s, r) = ms.quotientAndRemainder(dividingBy: 1000)
        let whole = r < 0 ? (s - 1, r + 1000) : (s, r)
        return (Double(ms) / 1000, Timestamp(seconds: whole.0, nanoseconds: Int32(whole.1) * 1_000_000))
    }
}
