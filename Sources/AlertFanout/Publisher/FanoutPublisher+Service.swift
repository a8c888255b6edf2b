// FanoutPublisher+Service: what a long-running service needs from the publisher — target reload, one probe now, health.
import CurlReactor
import Dispatch
import FanoutCore

/// The result of one reachability probe (`HEAD`, status ignored).
public struct ProbeResult: Sendable, Hashable {
    /// The target's name.
    public var target: String
    /// False only when the transport failure shows the endpoint unreachable: connection refused, DNS, TLS or
    /// connect timeout. Any HTTP answer, whatever its status, counts as reachable.
    public var reachable: Bool
    /// The HTTP status, when the endpoint answered.
    public var httpStatus: Int?
    /// The transport error's kind (`refused`, `dns`, `tls`, …), when the probe got no HTTP answer.
    public var errorKind: String?
    /// The transport error's message, with the target's secret, proxy URL, key password and URL redacted.
    public var message: String?
    /// How long the probe took, in seconds.
    public var durationSeconds: Double
}

/// What the publisher knows about one target now.
public struct TargetHealthSnapshot: Sendable, Hashable {
    /// The target's name.
    public var target: String
    /// The target's type, as in the targets file (`pagerduty`, `slack`, …).
    public var type: String
    /// Whether the target is enabled.
    public var enabled: Bool
    /// The target's health now, from its recent outcomes and probes.
    public var health: HealthStatus
    /// The circuit breaker's state: `closed`, `open` or `half_open`.
    public var breaker: String
    /// How many times the breaker has changed state.
    public var breakerTransitions: Int
    /// The attempt deadline the target would get now (adaptive once learned, else the configured timeout).
    public var deadlineSeconds: Double
    /// True once enough latencies were seen to learn an adaptive deadline.
    public var deadlineLearned: Bool
    /// The share of successes among the outcomes in the health window, 0…1; nil when there are none.
    public var successRatio: Double?
    /// The mean latency of the outcomes in the health window, in seconds; nil when there are none.
    public var meanLatencySeconds: Double?
}

extension FanoutPublisher {
    /// Replaces the targets, as a service reload does. A target whose name, type, URL, secret and connection
    /// settings are unchanged keeps what was learned about it (breaker, health, adaptive deadline; rate limits
    /// are kept per credential anyway); any other target starts fresh. Publishes in flight finish with the
    /// targets they started with. A target that answered `410 Gone` is sent to again. Returns the names of
    /// targets that start fresh.
    @discardableResult
    public func replaceTargets(_ targets: TargetsConfig) -> [String] {
        let old = targetsBox.withLock { current -> TargetsConfig in
            let before = current
            current = targets
            return before
        }
        var fresh: [String] = []
        for t in targets.targets {
            if let o = old[t.name], o.type == t.type, o.url == t.url, o.secret == t.secret, o.connection == t.connection { continue }
            fresh.append(t.name)
        }
        let removed = old.targets.map(\.name).filter { targets[$0] == nil }
        let reset = fresh + removed
        let kept = targets.targets.map(\.name).filter { !fresh.contains($0) }
        onQueue { [self] in
            for name in reset { book.reset(name) }
            // A reload is the operator's answer to a 410 Gone: the kept targets get deliveries again.
            for name in kept { book.clearGone(name) }
            observePendingGuardEvents()
        }
        return fresh
    }

    /// One reachability probe of `target` now (a `HEAD` whose status is ignored: any HTTP answer proves the
    /// endpoint reachable). The result also feeds the target's health. `completion` runs on the reactor queue.
    func probe(_ target: Target, completion: @escaping @Sendable (ProbeResult) -> Void) {
        let request = HTTPRequest(
            method: "HEAD", url: target.url, timeout: .seconds(5), connectTimeout: .seconds(5),
            captureHeaders: [], maxResponseBodyBytes: 0, connection: target.connection)
        let started = WallClock.monotonic()
        reactor.submit(request) { [self] result in
            var probe = ProbeResult(target: target.name, reachable: true, durationSeconds: WallClock.monotonic() - started)
            switch result {
            case .success(let r): probe.httpStatus = r.status
            case .failure(let e):
                probe.reachable = ![.refused, .dns, .tls, .connectTimeout].contains(e.kind)
                probe.errorKind = e.kind.rawValue
                probe.message = PublishRun.scrubbedMessage(e.message, target: target)
            }
            book.recordProbe(target.name, reachable: probe.reachable, now: WallClock.monotonic())
            observePendingGuardEvents()
            completion(probe)
        }
    }

    /// Probes the named target now; nil when no such target is configured.
    public func probe(named name: String) async -> ProbeResult? {
        guard let target = config[name] else { return nil }
        return await withCheckedContinuation { c in probe(target) { c.resume(returning: $0) } }
    }

    /// Health, breaker and deadline of every configured target, in file order.
    public func healthSnapshot() -> [TargetHealthSnapshot] {
        let targets = config.targets
        let book = guards
        let now = WallClock.monotonic()
        return targets.map { t in
            let g = book[t.name]
            let configured = t.timeoutSeconds ?? PublishOptions().defaultTargetTimeout.seconds
            return TargetHealthSnapshot(
                target: t.name, type: t.type.rawValue, enabled: t.enabled, health: g.health.status(now: now),
                breaker: g.breaker.state.name, breakerTransitions: g.breaker.transitions,
                deadlineSeconds: book.attemptTimeout(t.name, configured: configured), deadlineLearned: g.latency.learned != nil,
                successRatio: g.health.successRatio(now: now), meanLatencySeconds: g.health.meanLatency(now: now))
        }
    }
}

extension Timestamp {
    /// The current wall-clock time.
    public static func now() -> Timestamp { WallClock.now() }
}

extension FanoutPublisher {
    /// Publishes a whole Alertmanager notification as ONE request to each selected target that takes groups
    /// (`TargetType.takesGroups`: Slack gets one message, Alertmanager receivers the envelope as received). Other
    /// target types are reported failed (`format`): select them per alert with `publish(_:)`. The report names
    /// the group (`AlertBatch.groupAlert`). `completion` is called exactly once, as for `publish(_:)`.
    @discardableResult
    public func publish(
        group batch: AlertBatch, options: PublishOptions = .init(), callbackQueue: DispatchQueue? = nil,
        completion: @escaping @Sendable (Result<PublishReport, PublishError>) -> Void
    ) -> PublishHandle {
        start(batch.groupAlert, options: options, batch: batch, group: true, callbackQueue: callbackQueue, completion: completion)
    }

    /// Async form of `publish(group:)`. It is not cancelled with the task: a group, once sent, is reported.
    public func publish(group batch: AlertBatch, options: PublishOptions = .init()) async throws(PublishError) -> PublishReport {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<PublishReport, PublishError>, Never>) in
            publish(group: batch, options: options) { c.resume(returning: $0) }
        }
        return try result.get()
    }
}

extension AlertBatch {
    /// The group as one alert, for reports and logs: the group's labels (or the alerts' common labels), firing
    /// when any alert fires, the earliest start, and a fingerprint of the labels and the group key.
    public var groupAlert: Alert {
        var labels = groupLabels
        if labels.isEmpty {
            labels = Dictionary(uniqueKeysWithValues: AlertmanagerFormatter.common(alerts.map(\.labels)))
        }
        var keyed = labels
        keyed["__group_key__"] = groupKey ?? ""
        let firing = alerts.contains { $0.status == .firing }
        let start = alerts.map(\.startsAt).min() ?? Timestamp(seconds: 0)
        return Alert(
            labels: labels, status: firing ? .firing : .resolved, startsAt: start,
            endsAt: firing ? nil : alerts.compactMap(\.endsAt).max(),
            fingerprint: Alert.fingerprint(of: keyed))
    }
}

extension FanoutPublisher {
    /// Seeds the Rootly id of `target`'s alert for `fingerprint`, as stored by an earlier run or another replica,
    /// so that a resolve finds it. Runs on the reactor queue; call before publishing the resolve.
    public func rememberRootlyIDs(_ ids: [(target: String, fingerprint: String, id: String)]) async {
        guard !ids.isEmpty else { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            onQueue { [self] in
                for e in ids { rootlyIndex.remember(target: e.target, fingerprint: e.fingerprint, id: e.id) }
                c.resume()
            }
        }
    }
}
