// PublishReport+JSON: the stable JSON shape of a publish report (used by `fanout publish --json`).
import FanoutCore

extension PublishReport {
    /// `{alert, fingerprint, status, duration_ms, deadline_ms, succeeded, failed, skipped, partial_success, results: [...]}`;
    /// each result: `target, type, outcome` and, when they apply, `action, http_status, error_kind, skip_reason,
    /// message, attempts, retryable, duration_ms, deadline_ms, detail`. Never contains URLs or secrets.
    public var json: JSONValue {
        .object([
            ("alert", .string(alertName)),
            ("fingerprint", .string(fingerprint)),
            ("status", .string(status)),
            ("duration_ms", .milliseconds(durationSeconds)),
            ("deadline_ms", .milliseconds(deadlineSeconds)),
            ("succeeded", .int(succeeded)),
            ("failed", .int(failed)),
            ("skipped", .int(skipped)),
            ("partial_success", .bool(isPartialSuccess)),
            ("results", .array(results.map(\.json))),
        ])
    }
}

extension TargetResult {
    /// `{target, type, outcome}` then, when they apply, `action, http_status, error_kind, skip_reason, message`;
    /// always `attempts`; `retryable` for failed targets; `duration_ms`, then `deadline_ms` and `detail` when set.
    /// Times are milliseconds with up to three decimals. Never contains URLs or secrets.
    public var json: JSONValue {
        var m: [(String, JSONValue)] = []
        m.reserveCapacity(12)  // every key below: one allocation per result
        m.append(("target", .string(target)))
        m.append(("type", .string(type)))
        m.append(("outcome", .string(outcome.rawValue)))
        if let action { m.append(("action", .string(action))) }
        if let httpStatus { m.append(("http_status", .int(httpStatus))) }
        if let errorKind { m.append(("error_kind", .string(errorKind.rawValue))) }
        if let skipReason { m.append(("skip_reason", .string(skipReason.rawValue))) }
        if let message { m.append(("message", .string(message))) }
        m.append(("attempts", .int(attempts)))
        if outcome == .failed { m.append(("retryable", .bool(retryable))) }
        m.append(("duration_ms", .milliseconds(durationSeconds)))
        if let deadlineSeconds { m.append(("deadline_ms", .milliseconds(deadlineSeconds))) }
        if let detail { m.append(("detail", .string(detail))) }
        return .object(m)
    }
}

extension PublishError {
    /// The `fanout publish --json` item for a failed publish: `{error, …report}` (just `{error}` when no target
    /// was attempted).
    public var json: JSONValue {
        if let rep = report { return .object([("error", .string(description))] + (rep.json.objectValue ?? [])) }
        return .object([("error", .string(description))])
    }
}

extension Result where Success == PublishReport, Failure == PublishError {
    /// One item of `fanout publish --json` and of the service's answers: the report, or the error with its report.
    public var json: JSONValue {
        switch self {
        case .success(let r): return r.json
        case .failure(let e): return e.json
        }
    }

    /// The publish's result as metrics and stats name it: `success` (every enabled target), `partial`,
    /// `failure` (no target) or `cancelled`.
    public var resultLabel: String {
        switch self {
        case .success(let r): return r.allSucceeded ? "success" : "partial"
        case .failure(.cancelled): return "cancelled"
        case .failure: return "failure"
        }
    }

    /// At least one target succeeded (partial success is success).
    public var reachedAnyTarget: Bool { (try? get())?.reachedAnyTarget ?? false }
}
