// RootlyFormatter: Rootly's Alerts API (JSON:API) — create on firing, resolve the created alert by id on resolved.
import CurlReactor

/// Rootly Alerts API (`https://api.rootly.com`, JSON:API, `Content-Type: application/vnd.api+json`,
/// `Authorization: Bearer <api_key>`), per Rootly's API reference and its official SDK's models
/// (`NewAlert`, `ResolveAlert`).
///
/// - Firing → `POST {base}/v1/alerts` with `data.type = "alerts"` and attributes `source` ("api"), `summary`,
///   `description`, `started_at`, `external_id` and `deduplication_key` (both the fingerprint),
///   `external_url` (the generator URL), `labels` as `{key, value}` pairs, `noise` for alerts classified as
///   noise, and `data` (annotations and classification). Success is 201; the new alert's id is `data.id`,
///   returned as the verdict's detail.
/// - Resolved → `POST {base}/v1/alerts/{id}/resolve` with a `resolution_message`. This needs the id Rootly gave
///   the alert when it was created: the caller keeps a fingerprint → id map (`FormatContext.rootlyAlertID`).
///   Without it (for instance after a restart that lost the map) the formatter throws `missing_state`, and the
///   target is reported as failed with that reason instead of sending a request that cannot work.
/// - Retries: the create carries a `deduplication_key` meant to fold a repeated create into the same alert
///   (unverified for API-created alerts: Rootly documents deduplication as an Alert Source setting,
///   docs.rootly.com/alerts/alert-deduplication); resolve is idempotent. 429 and 5xx are retryable (a 429 after
///   its `Retry-After`, within the publish deadline); 401, 403, 404 and 422 are permanent.
/// - Rate: "Alert ingestion is rate limited to 50 alerts per minute per source/API key by default"
///   (docs.rootly.com/alerts), so the default rate limit keeps to that (`Target.effectiveRateLimit`).
public struct RootlyFormatter: AlertFormatter {
    /// A Rootly formatter (it holds no state).
    public init() {}

    /// The create request for a firing alert, or the resolve request for a resolved one (see the type's
    /// documentation).
    ///
    /// - Throws: ``FormatError`` of kind `missingSecret` when the target has no `api_key`, or `missingState`
    ///   for a resolved alert whose Rootly id `context` does not carry.
    public func request(for alert: Alert, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest {
        guard let key = target.secret?.reveal() else {
            throw FormatError(.missingSecret, "Rootly target '\(target.name)' has no api_key")
        }
        var headers = [
            HTTPHeader("Content-Type", "application/vnd.api+json"),
            HTTPHeader("Accept", "application/vnd.api+json"),
            HTTPHeader("Authorization", "Bearer \(key)"),
        ]
        headers += target.headers.map { HTTPHeader($0.0, $0.1) }
        if alert.status == .resolved {
            guard let id = context.rootlyAlertID, !id.isEmpty else {
                throw FormatError(
                    .missingState,
                    "no Rootly alert id is known for fingerprint \(alert.fingerprint): the alert was not created through this publisher, or its state was lost")
            }
            let ended = alert.endsAt ?? context.now
            let body: JSONValue = .object([
                (
                    "data",
                    .object([
                        ("type", .string("alerts")),
                        ("attributes", .object([("resolution_message", .string("Resolved at \(ended.rfc3339) (AlertFanout)"))])),
                    ])
                )
            ])
            let url = joinURL(target.url, "/v1/alerts/\(percentEncodePathSegment(id))/resolve")
            return OutboundRequest(url: url, headers: headers, body: body.serialized(), idempotent: true, action: "resolve")
        }
        var attributes: [(String, JSONValue)] = [
            ("source", .string("api")),
            ("summary", .string(truncate(summaryLine(alert), maxScalars: 1024))),
        ]
        if let d = alert.annotations["description"], !d.isEmpty { attributes.append(("description", .string(d))) }
        attributes.append(("started_at", .string(alert.startsAt.rfc3339)))
        attributes.append(("external_id", .string(alert.fingerprint)))
        if isHTTPURL(alert.generatorURL) { attributes.append(("external_url", .string(alert.generatorURL))) }
        attributes.append(("deduplication_key", .string(alert.fingerprint)))
        attributes.append(("labels", .array(alert.sortedLabels.map { .strings([("key", $0.0), ("value", $0.1)]) })))
        if let c = alert.classification { attributes.append(("noise", .string(c.severity == .noise ? "noise" : "not_noise"))) }
        var data: [(String, JSONValue)] = [("annotations", alert.annotationsJSON)]
        if let c = alert.classification { data.append(("classification", c.json)) }
        attributes.append(("data", .object(data)))
        let body: JSONValue = .object([("data", .object([("type", .string("alerts")), ("attributes", .object(attributes))]))])
        return OutboundRequest(url: joinURL(target.url, "/v1/alerts"), headers: headers, body: body.serialized(), idempotent: true, action: "create")
    }

    /// 2xx is delivered, with the created alert's `data.id` as the detail. Otherwise the message is the JSON:API
    /// `errors` (`title: detail`, joined with `;`), else a body excerpt; 408, 425, 429 and 5xx are retryable,
    /// the rest permanent.
    public func verdict(status: Int, body: [UInt8], retryAfter: String?) -> DeliveryVerdict {
        let parsed = try? JSONValue.parse(body)
        if (200...299).contains(status) {
            return .delivered(detail: parsed?["data"]?["id"]?.stringValue)
        }
        var message = bodyExcerpt(body)
        if let errors = parsed?["errors"]?.arrayValue {
            let parts = errors.compactMap { e -> String? in
                let title = e["title"]?.stringValue
                let detail = e["detail"]?.stringValue
                switch (title, detail) {
                case (let t?, let d?) where t != d: return "\(t): \(d)"
                case (let t?, _): return t
                case (nil, let d?): return d
                default: return nil
                }
            }
            if !parts.isEmpty { message = parts.joined(separator: "; ") }
        }
        if message.isEmpty { message = "HTTP \(status)" }
        return defaultVerdict(status: status, message: message, retryAfter: retryAfter)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
func percentEncodePathSegment(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E: out.unicodeScalars.append(Unicode.Scalar(b))
        default:
            let hex = Array("0123456789ABCDEF")
            out += "%\(hex[Int(b >> 4)])\(hex[Int(b & 0xF)])"
        }
    }
    return out
}
