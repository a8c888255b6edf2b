// ServiceStats: totals since the service started — alerts accepted, publishes by result, per-target outcomes, deliveries.
import AlertFanout
import FanoutCore
import FanoutStore
import Synchronization

/// Counters behind `GET /api/v2/publishing/stats`. Updated once per finished publish; thread-safe.
final class ServiceStats: Sendable {
    struct Totals: Sendable {
        var alertsAccepted = 0
        var publishes: [String: Int] = [:]
        var perTarget: [String: [String: Int]] = [:]
        var retries = 0
        var skips: [String: Int] = [:]
        /// Target deliveries of accepted alerts not finished yet.
        var pending = 0
        var delivered = 0
        /// Target deliveries that ended failed (without a store, a failure is final).
        var dead = 0
    }

    private let totals = Mutex(Totals())

    /// `alerts` were accepted, each to be delivered to `targets` targets.
    func accepted(alerts: Int, deliveries: Int) {
        totals.withLock {
            $0.alertsAccepted += alerts
            $0.pending += deliveries
        }
    }

    /// One publish finished; `expected` is the number of deliveries counted as pending for it.
    func finished(_ result: Result<PublishReport, PublishError>, expected: Int) {
        totals.withLock { t in
            t.pending -= expected
            t.publishes[result.resultLabel, default: 0] += 1
            let report: PublishReport?
            switch result {
            case .success(let r): report = r
            case .failure(let e): report = e.report
            }
            guard let report else { return }
            for r in report.results {
                t.perTarget[r.target, default: [:]][r.outcome.rawValue, default: 0] += 1
                t.retries += max(0, r.attempts - 1)
                switch r.outcome {
                case .succeeded: t.delivered += 1
                case .failed: t.dead += 1
                case .skipped:
                    if let reason = r.skipReason { t.skips[reason.rawValue, default: 0] += 1 }
                    if r.skipReason != .disabled { t.dead += 1 }
                }
            }
        }
    }

    var snapshot: Totals { totals.withLock { $0 } }

    var json: JSONValue { json(deliveries: nil) }

    /// With a store, `deliveries` and per-target outcomes are the store's (the whole store, every replica).
    func json(deliveries store: DeliveryCounts?) -> JSONValue {
        var t = snapshot
        if let store {
            t.pending = store.unfinished
            t.delivered = store.total("delivered")
            t.dead = store.total("dead")
            t.perTarget = store.byTarget
        }
        func counts(_ d: [String: Int]) -> JSONValue { .object(d.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) }) }
        return .object([
            ("alerts_accepted", .int(t.alertsAccepted)),
            ("publishes", counts(t.publishes)),
            ("targets", .object(t.perTarget.sorted { $0.key < $1.key }.map { ($0.key, counts($0.value)) })),
            ("retries", .int(t.retries)),
            ("skips", counts(t.skips)),
            (
                "deliveries",
                .object(
                    [("pending", .int(t.pending)), ("delivered", .int(t.delivered)), ("dead", .int(t.dead))]
                        + (store.map { [("superseded", JSONValue.int($0.total("superseded")))] } ?? []))
            ),
        ])
    }
}
