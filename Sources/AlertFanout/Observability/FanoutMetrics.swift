// FanoutMetrics: every metric AlertFanout emits — names, labels and meaning — defined once, fed from reports and guards.
import CoreMetrics
import Dispatch
import FanoutCore

/// Metric names. Labels carry bounded values only: target name and type (from the targets file), outcome,
/// error kind, skip reason and breaker state — never URLs, secrets, fingerprints or alert ids.
///
/// Mapping from the replaced system's `alert_history_publishing_parallel_*` metrics:
///
/// | old | new |
/// |---|---|
/// | `alert_history_publishing_parallel_total` | `alertfanout_publishes_total{result}` |
/// | `alert_history_publishing_parallel_success_total` (inverted meaning) | `alertfanout_publishes_total{result="success"}` + `{result="partial"}` |
/// | `alert_history_publishing_parallel_duration_seconds` | `alertfanout_publish_duration_seconds` |
/// | `alert_history_publishing_parallel_target_*` (per type, some never registered) | `alertfanout_target_requests_total{target,type,outcome,error_kind}` |
/// | `alert_history_publishing_parallel_target_duration_seconds` | `alertfanout_target_duration_seconds{target,type}` |
/// | `…_skipped_total` (never updated) | `alertfanout_target_skips_total{target,reason}` |
/// | `…_pagerduty_*{routing_key}` (a secret in a label) | `alertfanout_target_requests_total{type="pagerduty"}` |
public enum FanoutMetricNames {
    /// Publishes by result: `success` (every target), `partial`, `failure` (no target), `cancelled`.
    public static let publishes = "alertfanout_publishes_total"
    /// Whole-publish duration.
    public static let publishDuration = "alertfanout_publish_duration_seconds"
    /// Final per-target results: `outcome` succeeded|failed|skipped, `error_kind` (`none` when not failed).
    public static let targetRequests = "alertfanout_target_requests_total"
    /// Per-target duration from the publish's start to the target's final result (attempted targets only).
    public static let targetDuration = "alertfanout_target_duration_seconds"
    /// Attempts beyond the first.
    public static let retries = "alertfanout_target_retries_total"
    /// Skipped targets by `reason`: disabled, unhealthy, degraded, circuit_open, rate_limited.
    public static let skips = "alertfanout_target_skips_total"
    /// Breaker state: 0 closed, 1 half-open, 2 open.
    public static let breakerState = "alertfanout_breaker_state"
    /// Breaker state changes, by the state entered (`to`).
    public static let breakerTransitions = "alertfanout_breaker_transitions_total"
    /// Health: 0 unknown, 1 healthy, 2 degraded, 3 unhealthy.
    public static let health = "alertfanout_target_health"
    /// Requests that waited for a rate-limit token.
    public static let rateLimitWaits = "alertfanout_rate_limit_waits_total"
    /// The attempt deadline the target would get now (adaptive or configured), in seconds.
    public static let targetDeadline = "alertfanout_target_deadline_seconds"
    /// Reactor: requests admitted to libcurl.
    public static let reactorInFlight = "alertfanout_reactor_in_flight"
    /// Reactor: requests waiting for admission.
    public static let reactorQueued = "alertfanout_reactor_queued"
    /// Reactor: requests completed (any outcome).
    public static let reactorCompleted = "alertfanout_reactor_requests_completed_total"
    /// Reactor: new connections opened.
    public static let reactorConnections = "alertfanout_reactor_connections_opened_total"
    /// Reactor: socket readiness events handled.
    public static let reactorSocketEvents = "alertfanout_reactor_socket_events_total"
    /// Reactor: requests completed by the deadline backstop because libcurl had not.
    public static let reactorBackstop = "alertfanout_reactor_backstop_expiries_total"
    /// Reactor: how long a task waited for the reactor queue (its loop lag), sampled once per interval.
    public static let reactorLoopLag = "alertfanout_reactor_loop_lag_seconds"

    /// Service: HTTP requests served, by `route` (the route pattern, never the raw path), `method` and `status`.
    public static let httpRequests = "alertfanout_http_requests_total"
    /// Service: HTTP request duration by `route`.
    public static let httpDuration = "alertfanout_http_request_duration_seconds"
    /// Service: 1 when the last config (re)load succeeded, 0 until a good reload after a failed one.
    public static let configReloadSuccessful = "alertfanout_config_last_reload_successful"
    /// Service: alerts accepted by the HTTP API.
    public static let alertsAccepted = "alertfanout_alerts_accepted_total"

    /// Outbox: deliveries stored and not finished, by `target`.
    public static let outboxPending = "alertfanout_outbox_pending"
    /// Outbox: age of the oldest unfinished delivery, in seconds (0 when none).
    public static let outboxOldestPending = "alertfanout_outbox_oldest_pending_seconds"
    /// Outbox: dead letters kept, by `target`.
    public static let outboxDead = "alertfanout_outbox_dead_letters"
    /// Outbox: deliveries finished by the dispatcher, by `target` and `result` (delivered, retry, dead, superseded).
    public static let outboxFinished = "alertfanout_outbox_deliveries_total"
    /// Outbox: how late the dispatcher claimed a due delivery, in seconds.
    public static let dispatcherLag = "alertfanout_dispatcher_lag_seconds"

    /// One line of help per metric (Prometheus `# HELP`).
    public static let help: [String: String] = [
        publishes: "Publishes by result: success (every target), partial, failure (no target), cancelled.",
        publishDuration: "Duration of a whole publish, from start to the last target's result.",
        targetRequests: "Final per-target results by outcome (succeeded, failed, skipped) and error kind.",
        targetDuration: "Per-target time from the publish's start to the target's final result.",
        retries: "Attempts beyond the first, per target.",
        skips: "Targets skipped, by reason (disabled, unhealthy, degraded, circuit_open, rate_limited).",
        breakerState: "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        breakerTransitions: "Circuit breaker state changes, by the state entered.",
        health: "Target health: 0 unknown, 1 healthy, 2 degraded, 3 unhealthy.",
        rateLimitWaits: "Requests that waited for a rate-limit token.",
        targetDeadline: "The attempt deadline a target gets now (adaptive or configured), in seconds.",
        reactorInFlight: "Requests admitted to libcurl.",
        reactorQueued: "Requests waiting for admission to libcurl.",
        reactorCompleted: "Requests the reactor completed, any outcome.",
        reactorConnections: "New connections the reactor opened.",
        reactorSocketEvents: "Socket readiness events the reactor handled.",
        reactorBackstop: "Requests the reactor completed at their deadline because libcurl had not.",
        reactorLoopLag: "How long a task last waited for the reactor queue, in seconds.",
        httpRequests: "HTTP requests the service answered, by route pattern, method and status.",
        httpDuration: "HTTP request duration by route pattern, in seconds.",
        configReloadSuccessful: "1 when the last configuration (re)load succeeded, else 0.",
        alertsAccepted: "Alerts accepted by the service's HTTP API.",
        outboxPending: "Stored deliveries not finished yet (pending or being sent), by target.",
        outboxOldestPending: "Age of the oldest unfinished stored delivery, in seconds.",
        outboxDead: "Dead letters kept in the store, by target.",
        outboxFinished: "Attempts the dispatcher finished, by target and result (delivered, retry, dead, superseded).",
        dispatcherLag: "How long after its due time the dispatcher claimed a delivery, in seconds.",
    ]

    /// Every metric name above, in declaration order (each has a line in ``FanoutMetricNames/help``).
    public static let all = [
        publishes, publishDuration, targetRequests, targetDuration, retries, skips, breakerState,
        breakerTransitions, health, rateLimitWaits, targetDeadline, reactorInFlight, reactorQueued,
        reactorCompleted, reactorConnections, reactorSocketEvents, reactorBackstop, reactorLoopLag,
        httpRequests, httpDuration, configReloadSuccessful, alertsAccepted, outboxPending, outboxOldestPending,
        outboxDead, outboxFinished, dispatcherLag,
    ]
}

/// Records publish reports and guard state through a `MetricsFactory`. Used on the reactor queue only:
/// every handle is made once and kept per target, so a publish costs a few dictionary look-ups and atomic
/// increments, no string building and no locks of ours; gauges are written only when their value changes.
final class FanoutMetrics: @unchecked Sendable {
    let factory: MetricsFactory
    private var publishes: [String: Counter] = [:]
    private lazy var publishDuration = CoreMetrics.Timer(label: FanoutMetricNames.publishDuration, preferredDisplayUnit: .seconds, factory: factory)
    private var targets: [String: TargetHandles] = [:]

    /// One target's metric handles and the gauge values last written.
    private final class TargetHandles {
        let type: String
        let duration: CoreMetrics.Timer
        let breakerState: Gauge
        let health: Gauge
        let deadline: Gauge
        let retries: Counter
        let rateLimitWaits: Counter
        /// By outcome and error kind ("succeeded|none").
        var requests: [String: Counter] = [:]
        var skips: [SkipReason: Counter] = [:]
        var transitions: [CircuitBreaker.Phase: Counter] = [:]
        var writtenDeadline: Double?

        init(name: String, type: String, factory: MetricsFactory) {
            self.type = type
            let dims = [("target", name)]
            duration = CoreMetrics.Timer(
                label: FanoutMetricNames.targetDuration, dimensions: [("target", name), ("type", type)],
                preferredDisplayUnit: .seconds, factory: factory)
            breakerState = Gauge(label: FanoutMetricNames.breakerState, dimensions: dims, factory: factory)
            health = Gauge(label: FanoutMetricNames.health, dimensions: dims, factory: factory)
            deadline = Gauge(label: FanoutMetricNames.targetDeadline, dimensions: dims, factory: factory)
            retries = Counter(label: FanoutMetricNames.retries, dimensions: dims, factory: factory)
            rateLimitWaits = Counter(label: FanoutMetricNames.rateLimitWaits, dimensions: dims, factory: factory)
            // A target starts closed and of unknown health; guard events move the gauges from there.
            breakerState.record(CircuitBreaker.Phase.closed.gaugeValue)
            health.record(HealthStatus.unknown.gaugeValue)
        }
    }

    init(factory: MetricsFactory) { self.factory = factory }

    private func handles(_ name: String, type: String) -> TargetHandles {
        if let h = targets[name], h.type == type { return h }
        let h = TargetHandles(name: name, type: type, factory: factory)
        targets[name] = h
        return h
    }

    /// One finished publish.
    func record(_ result: Result<PublishReport, PublishError>) {
        let label = result.resultLabel
        if let c = publishes[label] {
            c.increment()
        } else {
            let c = Counter(label: FanoutMetricNames.publishes, dimensions: [("result", label)], factory: factory)
            publishes[label] = c
            c.increment()
        }
        guard let report = (try? result.get()) ?? result.failureReport else { return }
        publishDuration.recordNanoseconds(Int64(report.durationSeconds * 1e9))
        for t in report.results {
            let h = handles(t.target, type: t.type)
            let kind = t.errorKind?.rawValue ?? "none"
            let key = t.outcome.rawValue + "|" + kind
            if let c = h.requests[key] {
                c.increment()
            } else {
                let c = Counter(
                    label: FanoutMetricNames.targetRequests,
                    dimensions: [("target", t.target), ("type", t.type), ("outcome", t.outcome.rawValue), ("error_kind", kind)], factory: factory)
                h.requests[key] = c
                c.increment()
            }
            if t.outcome != .skipped { h.duration.recordNanoseconds(Int64(t.durationSeconds * 1e9)) }
            if t.attempts > 1 { h.retries.increment(by: t.attempts - 1) }
            if let reason = t.skipReason {
                if let c = h.skips[reason] {
                    c.increment()
                } else {
                    let c = Counter(label: FanoutMetricNames.skips, dimensions: [("target", t.target), ("reason", reason.rawValue)], factory: factory)
                    h.skips[reason] = c
                    c.increment()
                }
            }
        }
    }

    /// One guard event: a breaker move (counted by the state it moved to, gauge updated), a health change
    /// (gauge), a rate-limit wait (counted). `type` is the target's type.
    func observe(_ event: GuardEvent, type: String) {
        switch event {
        case .breaker(let target, _, let to):
            let h = handles(target, type: type)
            let c: Counter
            if let existing = h.transitions[to] {
                c = existing
            } else {
                c = Counter(label: FanoutMetricNames.breakerTransitions, dimensions: [("target", target), ("to", to.rawValue)], factory: factory)
                h.transitions[to] = c
            }
            c.increment()
            h.breakerState.record(to.gaugeValue)
        case .health(let target, _, let to):
            handles(target, type: type).health.record(to.gaugeValue)
        case .rateLimitWait(let target, _):
            handles(target, type: type).rateLimitWaits.increment()
        case .retryDeniedByBudget, .endpointGone:
            break
        }
    }

    /// The attempt deadline `target` would get now (written when it changed).
    func recordDeadline(_ target: String, type: String, seconds: Double) {
        let h = handles(target, type: type)
        guard h.writtenDeadline != seconds else { return }
        h.writtenDeadline = seconds
        h.deadline.record(seconds)
    }
}
