// WebhookFormatter: a generic JSON webhook, signed per the Standard Webhooks specification when a secret is set.
import Crypto
import CurlReactor

/// The alert (and its classification) as JSON in the Standard Webhooks envelope `{type, timestamp, data}`
/// (Standard Webhooks 1.0.0, `spec/standard-webhooks.md`).
///
/// - Headers: `Idempotency-Key`, `webhook-id` and `webhook-timestamp` always; `webhook-signature:
///   v1,<base64 HMAC-SHA256>` over `{webhook-id}.{webhook-timestamp}.{body}` when the target has a `secret`.
///   The secret is read as the reference libraries read it (`WebhookSecret`): optional `whsec_` prefix, the
///   rest always base64, at least 24 bytes.
/// - The body's `timestamp` is "the timestamp of when the event occurred (not necessarily the same of when it
///   was delivered)": `startsAt` while firing, `endsAt` once resolved. So every attempt of one notification
///   sends the same bytes; only the `webhook-timestamp` header (and with it the signature) is per attempt, as
///   the spec requires ("Every time an attempt is retried the timestamp of the attempt is updated") and as the
///   reference verifiers need (they reject a header more than 5 minutes old).
/// - The id is `msg_` + the first 32 hex digits of SHA-256(`fingerprint:status:startsAt`): the same for every
///   retry of one notification, different for a later firing of the same alert.
///
/// Responses follow the spec's "Delivery success and failure": 2xx delivered; `410 Gone` means "disable the
/// webhook endpoint, and stop sending it messages" (`DeliveryVerdict.gone`: the publisher skips the target
/// afterwards, reported `skipped: endpoint_gone`); 3xx is a failure (redirects are not followed: "update the
/// webhook URL instead"); every other status, 4xx included, is a failure to retry, 429/502/504 after
/// `Retry-After` when the receiver sends it.
public struct WebhookFormatter: AlertFormatter {
    /// A webhook formatter (it holds no state).
    public init() {}

    /// The envelope for `alert` with its `Idempotency-Key`, `webhook-id` and `webhook-timestamp` headers
    /// (`context.now`), and a `webhook-signature` when the target has a secret.
    ///
    /// - Throws: ``FormatError`` of kind `missingSecret` when the target's secret is not a valid Standard
    ///   Webhooks secret (``WebhookSecret/key(_:)``).
    public func request(for alert: Alert, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest {
        let (id, body) = WebhookFormatter.envelope(alert, memo: context.memo)
        var headers: [HTTPHeader] = []
        headers.reserveCapacity(5 + target.headers.count)
        headers.append(HTTPHeader("Content-Type", "application/json"))
        headers.append(HTTPHeader("Idempotency-Key", id))
        headers.append(HTTPHeader("webhook-id", id))
        headers.append(HTTPHeader("webhook-timestamp", String(context.now.seconds)))
        if let secret = target.secret {
            headers.append(
                HTTPHeader(
                    "webhook-signature",
                    try WebhookFormatter.signature(
                        secret: secret.reveal(), id: id, timestamp: context.now.seconds, body: body)))
        }
        for (name, value) in target.headers { headers.append(HTTPHeader(name, value)) }
        return OutboundRequest(url: target.url, headers: headers, body: body, idempotent: true, action: "post")
    }

    /// Standard Webhooks "Delivery success and failure": 2xx success; 410 → stop sending (`gone`); 3xx and every
    /// other status → retry ("The rest of the status codes should be treated as a failure"), honouring
    /// `Retry-After` ("429 … 502 … 504 … recommended to throttle").
    /// A 2xx is delivered, whatever its body says.
    public var readsSuccessDetails: Bool { false }

    public func verdict(status: Int, body: [UInt8], retryAfter: String?) -> DeliveryVerdict {
        if (200...299).contains(status) { return .delivered(detail: nil) }
        let text = bodyExcerpt(body)
        let message = text.isEmpty ? "HTTP \(status)" : text
        switch status {
        case 410:
            return .gone(
                message: (text.isEmpty ? "HTTP 410 Gone" : text)
                    + " (the receiver asked to stop deliveries: the target is skipped until its configuration changes or the publisher restarts)")
        case 300...399: return .retryable(message: "\(message) (redirect not followed: update the target URL)", retryAfter: retryAfter)
        default: return .retryable(message: message, retryAfter: retryAfter)
        }
    }

    /// The message id and the body, which depend on the alert alone (kept in `memo` for the publish's other targets).
    static func envelope(_ alert: Alert, memo: FormatMemo?) -> (id: String, body: [UInt8]) {
        if let made = memo?.webhook { return made }
        let startsAt = alert.startsAt.rfc3339
        var w = JSONWriter(capacity: 512)
        w.beginObject()
        w.member("type", alert.status == .resolved ? "alert.resolved" : "alert.firing")
        w.member("timestamp", alert.status == .resolved ? WebhookFormatter.eventTime(alert).rfc3339 : startsAt)
        w.key(literal: "data")
        w.beginObject()
        w.member("fingerprint", alert.fingerprint)
        w.member("status", alert.status.rawValue)
        w.key(literal: "labels")
        w.strings(alert.sortedLabels)
        w.key(literal: "annotations")
        w.strings(alert.sortedAnnotations)
        w.member("startsAt", startsAt)
        if let e = alert.endsAt { w.member("endsAt", e.rfc3339) }
        w.member("generatorURL", alert.generatorURL)
        if let c = alert.classification {
            w.key(literal: "classification")
            w.value(c.json)
        }
        w.endObject()
        w.endObject()
        let made = (messageID(alert, startsAt: startsAt), w.bytes)
        memo?.webhook = made
        return made
    }

    /// When the event occurred, for the body's `timestamp`: `startsAt` while firing, `endsAt` once resolved
    /// (`startsAt` for a resolved alert built without one; decoded input always has it).
    static func eventTime(_ alert: Alert) -> Timestamp {
        alert.status == .resolved ? (alert.endsAt ?? alert.startsAt) : alert.startsAt
    }

    /// `msg_` + 32 hex digits of SHA-256(`fingerprint:status:startsAt`).
    public static func messageID(_ alert: Alert) -> String { messageID(alert, startsAt: alert.startsAt.rfc3339) }

    /// ``messageID(_:)`` with `startsAt` already formatted.
    static func messageID(_ alert: Alert, startsAt: String) -> String {
        var h = SHA256()
        var fingerprint = alert.fingerprint
        var startsAt = startsAt
        fingerprint.withUTF8 { h.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        let status: StaticString = alert.status == .resolved ? ":resolved:" : ":firing:"  // ":\(status):"
        h.update(bufferPointer: UnsafeRawBufferPointer(start: status.utf8Start, count: status.utf8CodeUnitCount))
        startsAt.withUTF8 { h.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        return h.finalize().withUnsafeBytes { lowercaseHex(UnsafeRawBufferPointer(rebasing: $0.prefix(16)), prefix: "msg_") }
    }

    /// `v1,<base64(HMAC-SHA256(key, "id.timestamp.body"))>`, the key read by `WebhookSecret.key`.
    ///
    /// - Parameters:
    ///   - secret: The Standard Webhooks secret (optional `whsec_` prefix, then base64).
    ///   - id: The message id (`webhook-id`).
    ///   - timestamp: The attempt's time in seconds since the epoch (`webhook-timestamp`).
    ///   - body: The exact body bytes sent.
    /// - Returns: The `webhook-signature` header value.
    /// - Throws: ``FormatError`` of kind `missingSecret` when `secret` is not a valid Standard Webhooks secret.
    public static func signature(secret: String, id: String, timestamp: Int64, body: [UInt8]) throws(FormatError) -> String {
        let key: [UInt8]
        switch WebhookSecret.key(secret) {
        case .success(let k): key = k
        case .failure(let problem):  // the targets loader refuses these; a Target built in code may still carry one
            throw FormatError(.missingSecret, "the webhook secret \(problem)")
        }
        var content = Array("\(id).\(timestamp).".utf8)
        content.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: key))
        return "v1," + base64Encode(Array(mac))
    }
}
