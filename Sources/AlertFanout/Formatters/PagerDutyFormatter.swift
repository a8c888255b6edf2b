// PagerDutyFormatter: PagerDuty Events API v2 (`POST /v2/enqueue`) — trigger and resolve by dedup key, no stored state.
import CurlReactor

/// PagerDuty Events API v2, as documented in PagerDuty's developer docs ("Send an Alert Event", Events API v2
/// overview and rate limits) and its OpenAPI schema `reference/events-v2/openapiv3.json` (version 2.0).
///
/// - Trigger: `routing_key`, `event_action: trigger`, `dedup_key` = the alert fingerprint, `payload` with
///   `summary` (≤ 1024 characters), `source`, `severity`, `timestamp`, and `component`/`group`/`class` from the
///   labels of those names when present, `custom_details`; `links` from `generatorURL` and a `runbook_url`
///   annotation; `images` from an `image_url` annotation served over https.
/// - Resolve: `routing_key`, `event_action: resolve` and the same `dedup_key` — so it needs no stored state.
/// - Size: "Events API payloads are limited to 512 KB" (`maxEventBytes`). A trigger that would be larger has
///   its largest `custom_details` values cut (whole characters, "…") and a `truncated` member naming them; if
///   it still does not fit, `custom_details` is replaced by an `error` note and links and images are left out,
///   as Alertmanager does. `component`, `group` and `class` are kept to 1024 characters.
/// - Success is 202. 400 is permanent; 429 and 5xx are retryable (PagerDuty's own table). Repeating an event
///   with the same dedup key is harmless, so both actions are safe to retry.
///
/// Severity: the classification's severity when present (noise → info); else the `severity` label:
///
/// | label | PagerDuty |
/// |---|---|
/// | critical, fatal, page, p1, emergency | critical |
/// | error, high, major, p2 | error |
/// | warning, warn, medium, minor, p3 | warning |
/// | info, informational, low, none, p4, p5 | info |
/// | anything else or absent | warning |
public struct PagerDutyFormatter: AlertFormatter {
    /// A PagerDuty formatter (it holds no state).
    public init() {}

    /// The trigger event for a firing alert, or the resolve event for a resolved one, posted to
    /// `{url}/v2/enqueue` (see the type's documentation).
    ///
    /// - Throws: ``FormatError`` of kind `missingSecret` when the target has no `routing_key`.
    public func request(for alert: Alert, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest {
        guard let key = target.secret?.reveal() else {
            throw FormatError(.missingSecret, "PagerDuty target '\(target.name)' has no routing_key")
        }
        let url = joinURL(target.url, "/v2/enqueue")
        var headers = [HTTPHeader("Content-Type", "application/json")]
        headers += target.headers.map { HTTPHeader($0.0, $0.1) }
        if alert.status == .resolved {
            let body: JSONValue = .object([
                ("routing_key", .string(key)),
                ("event_action", .string("resolve")),
                ("dedup_key", .string(alert.fingerprint)),
            ])
            return OutboundRequest(url: url, headers: headers, body: body.serialized(), idempotent: true, action: "resolve")
        }
        var payload: [(String, JSONValue)] = [
            ("summary", .string(truncate(summaryLine(alert), maxScalars: 1024))),
            ("source", .string(PagerDutyFormatter.source(of: alert))),
            ("severity", .string(PagerDutyFormatter.severity(of: alert))),
            ("timestamp", .string(alert.startsAt.rfc3339Millis)),
        ]
        for field in ["component", "group", "class"] {  // no documented limit; bounded so the event always fits
            if let v = alert.labels[field], !v.isEmpty { payload.append((field, .string(truncate(v, maxScalars: 1024)))) }
        }
        var links: [JSONValue] = []
        if isHTTPURL(alert.generatorURL) {
            links.append(.strings([("href", alert.generatorURL), ("text", "Alert source")]))
        }
        if let runbook = alert.annotations["runbook_url"], isHTTPURL(runbook) {
            links.append(.strings([("href", runbook), ("text", "Runbook")]))
        }
        // The event with these custom details; `extras` adds links, images and client_url.
        func event(_ details: JSONValue, extras: Bool) -> [UInt8] {
            var event: [(String, JSONValue)] = [
                ("routing_key", .string(key)),
                ("event_action", .string("trigger")),
                ("dedup_key", .string(alert.fingerprint)),
                ("payload", .object(payload + [("custom_details", details)])),
            ]
            if extras && !links.isEmpty { event.append(("links", .array(links))) }
            if extras, let image = alert.annotations["image_url"], image.hasPrefix("https://") {
                event.append(("images", .array([.strings([("src", image), ("alt", truncate(alert.name, maxScalars: 1024))])])))
            }
            event.append(("client", .string("AlertFanout")))
            if extras, let ext = context.batch?.externalURL, isHTTPURL(ext) { event.append(("client_url", .string(ext))) }
            return JSONValue.object(event).serialized()
        }
        var details = CutDetails(alert)
        func detailsJSON(_ note: String?) -> JSONValue {
            var d: [(String, JSONValue)] = [
                ("alertname", .string(truncate(alert.name, maxScalars: 1024))),
                ("fingerprint", .string(alert.fingerprint)),
                ("labels", .strings(details.labels)),
                ("annotations", .strings(details.annotations)),
            ]
            if let c = details.classification { d.append(("classification", c.json)) }
            if let note { d.append(("truncated", .string(note))) }
            return .object(d)
        }
        var body = event(detailsJSON(nil), extras: true)
        if body.count > PagerDutyFormatter.maxEventBytes {
            // Cut the largest values, keep the small ones, and say so.
            let cap = PagerDutyFormatter.waterLevel(
                sizes: details.sizes,
                excess: body.count - PagerDutyFormatter.maxEventBytes + PagerDutyFormatter.noteReserveBytes)
            let cut = details.cut(to: cap)
            body = event(detailsJSON(PagerDutyFormatter.truncationNote(cap: cap, cut: cut)), extras: true)
        }
        if body.count > PagerDutyFormatter.maxEventBytes {
            // The names or the links themselves are too big: Alertmanager's fallback, details replaced by a note.
            body = event(.strings([("error", "custom details removed: the event exceeded PagerDuty's 512 KB limit")]), extras: false)
        }
        return OutboundRequest(url: url, headers: headers, body: body, idempotent: true, action: "trigger")
    }

    /// 2xx is delivered, with the returned `dedup_key` as the detail. Otherwise the message is PagerDuty's
    /// `message` (else `status`, else a body excerpt) followed by its `errors`; 408, 425, 429 and 5xx are
    /// retryable, the rest permanent.
    public func verdict(status: Int, body: [UInt8], retryAfter: String?) -> DeliveryVerdict {
        let parsed = try? JSONValue.parse(body)
        var message = parsed?["message"]?.stringValue ?? parsed?["status"]?.stringValue ?? bodyExcerpt(body)
        if let errors = parsed?["errors"]?.arrayValue?.compactMap(\.stringValue), !errors.isEmpty {
            message += ": " + errors.joined(separator: "; ")
        }
        if (200...299).contains(status) {
            return .delivered(detail: parsed?["dedup_key"]?.stringValue)
        }
        if message.isEmpty { message = "HTTP \(status)" }
        return defaultVerdict(status: status, message: message, retryAfter: retryAfter)
    }

    /// `instance`, `host`, `hostname`, `job`, `service` label, else the generator URL's host, else "alertfanout".
    static func source(of alert: Alert) -> String {
        for key in ["instance", "host", "hostname", "job", "service"] {
            if let v = alert.labels[key], !v.isEmpty { return truncate(v, maxScalars: 255) }
        }
        if case .success(let u) = ParsedURL.parse(alert.generatorURL), !u.host.isEmpty { return truncate(u.host, maxScalars: 255) }
        return "alertfanout"
    }

    static func severity(of alert: Alert) -> String {
        if let c = alert.classification {
            switch c.severity {
            case .critical: return "critical"
            case .warning: return "warning"
            case .info, .noise: return "info"
            }
        }
        switch (alert.labels["severity"] ?? "").lowercased() {
        case "critical", "fatal", "page", "p1", "emergency": return "critical"
        case "error", "high", "major", "p2": return "error"
        case "warning", "warn", "medium", "minor", "p3": return "warning"
        case "info", "informational", "low", "none", "p4", "p5": return "info"
        default: return "warning"
        }
    }
}

func isHTTPURL(_ s: String) -> Bool {
    guard s.hasPrefix("http://") || s.hasPrefix("https://") else { return false }
    if case .success(let u) = ParsedURL.parse(s) { return !u.host.isEmpty }
    return false
}
