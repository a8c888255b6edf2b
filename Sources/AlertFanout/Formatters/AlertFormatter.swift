// AlertFormatter: what every vendor formatter provides — the request for an alert and how to read the vendor's answer.
import CurlReactor
import FanoutCore

/// An HTTP request ready for the reactor.
public struct OutboundRequest: Sendable, Hashable {
    /// The HTTP method (`POST` for every built-in formatter).
    public var method: String
    /// The full request URL. It may itself be a secret (a Slack webhook URL), so it is never logged or reported.
    public var url: String
    /// Request headers, in order: the formatter's own, then the target's configured ones.
    public var headers: [HTTPHeader]
    /// The request body (JSON for every built-in formatter).
    public var body: [UInt8]
    /// Safe to send again after an ambiguous failure (a dedup or idempotency key makes a repeat harmless).
    public var idempotent: Bool
    /// What this request does, for reports: `trigger`, `resolve`, `create`, `post`, `notify`.
    public var action: String

    /// A request; `method` defaults to `POST`.
    public init(method: String = "POST", url: String, headers: [HTTPHeader], body: [UInt8], idempotent: Bool, action: String) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.idempotent = idempotent
        self.action = action
    }

    /// The body decoded as UTF-8 (invalid sequences replaced with U+FFFD), for tests and debugging.
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// How a vendor's response is to be read.
public enum DeliveryVerdict: Sendable, Hashable {
    /// Accepted. `detail` carries what the vendor returned worth keeping (a dedup key, an alert id).
    case delivered(detail: String?)
    /// Rejected for good: sending it again will not help (bad payload, bad key).
    case permanent(message: String)
    /// Failed for now: may succeed later. `retryAfter` is the raw `Retry-After` header when present.
    case retryable(message: String, retryAfter: String?)
    /// The endpoint asked never to be sent to again (Standard Webhooks: "410 Gone … Sender should disable the
    /// webhook endpoint, and stop sending it messages"). This attempt fails for good (`endpoint_gone`), and
    /// the publisher skips the target afterwards (`skipped: endpoint_gone`).
    case gone(message: String)

    /// True when the vendor accepted the request (`delivered`).
    public var isSuccess: Bool { if case .delivered = self { return true } else { return false } }
}

/// What a formatter may use besides the alert and the target. Pure data: the caller supplies the clock.
public struct FormatContext: Sendable {
    /// The wall-clock time of the attempt: the `webhook-timestamp` of webhook requests, and the time a Rootly
    /// resolve reports when the alert has no `endsAt`.
    public var now: Timestamp
    /// Envelope fields when the alert arrived in an Alertmanager webhook payload.
    public var batch: AlertBatch?
    /// Rootly: the id of the Rootly alert created for this alert's fingerprint, when known.
    public var rootlyAlertID: String?

    /// What one publish's formatters share between its targets (nil: nothing is shared).
    var memo: FormatMemo?

    /// A context at `now`, with the alert's envelope and Rootly alert id when there are any.
    public init(now: Timestamp, batch: AlertBatch? = nil, rootlyAlertID: String? = nil) {
        self.now = now
        self.batch = batch
        self.rootlyAlertID = rootlyAlertID
    }
}

/// The parts of one alert's requests that do not depend on the target, made once per publish: five webhook
/// targets then serialize one body. Owned by one publish and used on the reactor queue only.
final class FormatMemo: @unchecked Sendable {
    /// The webhook message id and body (`WebhookFormatter`).
    var webhook: (id: String, body: [UInt8])?
}

/// Why no request could be built.
public struct FormatError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem.
    public enum Kind: String, Sendable {
        /// The target lacks the credential its type needs, or its webhook secret is not a valid Standard Webhooks
        /// secret (the target's result reports error kind `missing_secret`).
        case missingSecret = "missing_secret"
        /// The request needs state the publisher does not have: the Rootly alert id a resolve refers to (the
        /// target's result reports error kind `missing_state`).
        case missingState = "missing_state"
    }
    /// What kind of problem it is.
    public var kind: Kind
    /// What went wrong, naming the target or field but never a secret value.
    public var message: String
    /// An error of `kind` with `message`.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    /// The message.
    public var description: String { message }
}

/// One vendor's wire format.
public protocol AlertFormatter: Sendable {
    /// The request that delivers `alert` to `target`.
    ///
    /// - Throws: ``FormatError`` when no request can be built (a missing credential or missing state).
    func request(for alert: Alert, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest
    /// The one request that delivers a whole notification (an Alertmanager group) to `target`, for vendors that
    /// take a group at once (Slack: one message; Alertmanager receivers: the envelope); nil for the others.
    func request(forGroup batch: AlertBatch, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest?
    /// How to read the vendor's response to that request.
    func verdict(status: Int, body: [UInt8], retryAfter: String?) -> DeliveryVerdict
    /// Whether ``verdict(status:body:retryAfter:)`` reads the body or `Retry-After` of a 2xx response (Rootly's
    /// new incident id, Slack's `ok`). False lets the reactor keep neither for a 2xx (default: true).
    var readsSuccessDetails: Bool { get }
}

extension AlertFormatter {
    public var readsSuccessDetails: Bool { true }

    /// Nil: by default a formatter takes one alert per request.
    public func request(forGroup batch: AlertBatch, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest? { nil }
}

extension TargetType {
    /// Targets that get one request per Alertmanager notification (a group of alerts) rather than one per alert.
    public var takesGroups: Bool { self == .slack || self == .alertmanager }
}

/// The built-in formatters, by target type.
public enum Formatters {
    /// The formatter for a target type.
    public static func formatter(for type: TargetType) -> any AlertFormatter {
        switch type {
        case .pagerduty: return PagerDutyFormatter()
        case .slack: return SlackFormatter()
        case .rootly: return RootlyFormatter()
        case .alertmanager: return AlertmanagerFormatter()
        case .webhook: return WebhookFormatter()
        }
    }
}

/// The shared default reading of an HTTP status: 2xx delivered; 408, 425, 429 and 5xx retryable; the rest
/// permanent (redirects are not followed). Standard Webhooks targets read statuses their own way
/// (`WebhookFormatter.verdict`).
func defaultVerdict(status: Int, message: String, retryAfter: String?) -> DeliveryVerdict {
    if (200...299).contains(status) { return .delivered(detail: nil) }
    return RetryPolicy.isRetryableStatus(status) ? .retryable(message: message, retryAfter: retryAfter) : .permanent(message: message)
}

/// `url` with `path` appended unless it already ends with it; no doubled slash.
func joinURL(_ base: String, _ path: String) -> String {
    if base.hasSuffix(path) { return base }
    var b = base
    while b.hasSuffix("/") { b.removeLast() }
    return b + path
}

/// The first `maxLength` characters' worth of `text`, measured in Unicode scalars, never splitting a character
/// (grapheme) and so never a UTF-8 sequence; an ellipsis marks a cut.
func truncate(_ text: String, maxScalars: Int) -> String {
    if text.unicodeScalars.count <= maxScalars { return text }
    var out = ""
    var used = 0
    let budget = maxScalars - 1
    for ch in text {
        let n = ch.unicodeScalars.count
        if used + n > budget { break }
        out.append(ch)
        used += n
    }
    return out + "…"
}

/// A short body excerpt for error messages (first 300 characters, one line).
func bodyExcerpt(_ body: [UInt8]) -> String {
    let text = String(decoding: body.prefix(600), as: UTF8.self)
    return truncate(text.split(whereSeparator: \.isNewline).joined(separator: " "), maxScalars: 300)
}

/// The alert's one-line summary: `summary`, else `description`, else `message` annotation, else its name and labels.
func summaryLine(_ alert: Alert) -> String {
    for key in ["summary", "description", "message"] {
        if let s = alert.annotations[key], !s.isEmpty { return s }
    }
    let interesting = alert.sortedLabels.filter { $0.0 != "alertname" }.prefix(4).map { "\($0.0)=\($0.1)" }
    return interesting.isEmpty ? alert.name : "\(alert.name) (\(interesting.joined(separator: ", ")))"
}

extension Alert {
    /// Labels as an ordered JSON object (names in byte order).
    var labelsJSON: JSONValue { .strings(sortedLabels) }
    var annotationsJSON: JSONValue { .strings(sortedAnnotations) }
}

extension Classification {
    var json: JSONValue {
        var m: [(String, JSONValue)] = [("severity", .string(severity.rawValue)), ("confidence", .double(confidence))]
        if let reasoning { m.append(("reasoning", .string(reasoning))) }
        if !recommendations.isEmpty { m.append(("recommendations", .array(recommendations.map { .string($0) }))) }
        return .object(m)
    }
}
