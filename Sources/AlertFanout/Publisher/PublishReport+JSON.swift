// PublishReport+JSON: the stable JSON shape of a publish report (used by `fanout publish --json`).
import FanoutCore

extension PublishReport {
    /// `{alert, fingerprint, status, duration_ms, deadline_ms, succeeded, failed, skipped, partial_success, results: [...]}`;
    /// each result: `target, type, outcome` and, when they apply, `action, http_status, error_kind, skip_reason,
    /// message, attempts, retryable, duration_ms, deadline_ms, detail`. Never contains URLs or secrets.
    public var json: JSONValue { JSONValue(writtenBy: write) }

    /// Writes ``json``'s text (one object) without building the tree.
    public func write(to w: inout JSONWriter) {
        w.beginObject()
        writeMembers(to: &w)
        w.endObject()
    }

    fileprivate func writeMembers(to w: inout JSONWriter) {
        w.key(literal: "alert")
        w.string(alertName)
        w.key(literal: "fingerprint")
        w.string(fingerprint)
        w.key(literal: "status")
        w.string(status)
        w.key(literal: "duration_ms")
        w.milliseconds(durationSeconds)
        w.key(literal: "deadline_ms")
        w.milliseconds(deadlineSeconds)
        w.key(literal: "succeeded")
        w.int(succeeded)
        w.key(literal: "failed")
        w.int(failed)
        w.key(literal: "skipped")
        w.int(skipped)
        w.key(literal: "partial_success")
        w.bool(isPartialSuccess)
        w.key(literal: "results")
        w.beginArray()
        for i in results.indices { results[i].write(to: &w) }  // in place: no copy of each result
        w.endArray()
    }
}

extension TargetResult {
    /// `{target, type, outcome}` then, when they apply, `action, http_status, error_kind, skip_reason, message`;
    /// always `attempts`; `retryable` for failed targets; `duration_ms`, then `deadline_ms` and `detail` when set.
    /// Times are milliseconds with up to three decimals. Never contains URLs or secrets.
    public var json: JSONValue { JSONValue(writtenBy: write) }

    /// Writes ``json``'s text (one object) without building the tree.
    public func write(to w: inout JSONWriter) {
        w.beginObject()
        w.key(literal: "target")
        w.string(target)
        w.key(literal: "type")
        w.string(type)
        w.key(literal: "outcome")
        w.string(outcome.rawValue)
        if let action {
            w.key(literal: "action")
            w.string(action)
        }
        if let httpStatus {
            w.key(literal: "http_status")
            w.int(httpStatus)
        }
        if let errorKind {
            w.key(literal: "error_kind")
            w.string(errorKind.rawValue)
        }
        if let skipReason {
            w.key(literal: "skip_reason")
            w.string(skipReason.rawValue)
        }
        if let message {
            w.key(literal: "message")
            w.string(message)
        }
        w.key(literal: "attempts")
        w.int(attempts)
        if outcome == .failed {
            w.key(literal: "retryable")
            w.bool(retryable)
        }
        w.key(literal: "duration_ms")
        w.milliseconds(durationSeconds)
        if let deadlineSeconds {
            w.key(literal: "deadline_ms")
            w.milliseconds(deadlineSeconds)
        }
        if let detail {
            w.key(literal: "detail")
            w.string(detail)
        }
        w.endObject()
    }
}

extension PublishError {
    /// The `fanout publish --json` item for a failed publish: `{error, …report}` (just `{error}` when no target
    /// was attempted).
    public var json: JSONValue { JSONValue(writtenBy: write) }

    /// Writes ``json``'s text (one object) without building the tree.
    public func write(to w: inout JSONWriter) {
        w.beginObject()
        w.key(literal: "error")
        w.string(description)
        report?.writeMembers(to: &w)
        w.endObject()
    }
}

extension Result where Success == PublishReport, Failure == PublishError {
    /// One item of `fanout publish --json` and of the service's answers: the report, or the error with its report.
    public var json: JSONValue { JSONValue(writtenBy: write) }

    /// Writes ``json``'s text without building the tree.
    public func write(to w: inout JSONWriter) {
        switch self {
        case .success(let r): r.write(to: &w)
        case .failure(let e): e.write(to: &w)
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
