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
        w.member("alert", alertName)
        w.member("fingerprint", fingerprint)
        w.member("status", status)
        w.member("duration_ms", milliseconds: durationSeconds)
        w.member("deadline_ms", milliseconds: deadlineSeconds)
        w.member("succeeded", int: succeeded)
        w.member("failed", int: failed)
        w.member("skipped", int: skipped)
        w.member("partial_success", bool: isPartialSuccess)
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
        w.member("target", target)
        w.member("type", type)
        w.member("outcome", outcome.rawValue)
        if let action { w.member("action", action) }
        if let httpStatus { w.member("http_status", int: httpStatus) }
        if let errorKind { w.member("error_kind", errorKind.rawValue) }
        if let skipReason { w.member("skip_reason", skipReason.rawValue) }
        if let message { w.member("message", message) }
        w.member("attempts", int: attempts)
        if outcome == .failed { w.member("retryable", bool: retryable) }
        w.member("duration_ms", milliseconds: durationSeconds)
        if let deadlineSeconds { w.member("deadline_ms", milliseconds: deadlineSeconds) }
        if let detail { w.member("detail", detail) }
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
        w.member("error", description)
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
