// SlackFormatter: Slack incoming webhooks — a `text` fallback plus Block Kit blocks within Slack's limits.

/// Slack incoming webhook messages, per Slack's Block Kit reference (header ≤ 150 characters of plain text,
/// section text ≤ 3000, ≤ 10 fields of ≤ 2000, context ≤ 10 elements, ≤ 50 blocks) and its formatting guide
/// (`&`, `<`, `>` escaped in mrkdwn and in `text`).
///
/// Layout: a header (`🔥 FIRING: name` / `✅ RESOLVED: name`), a section with the summary and description,
/// a section of up to 10 fields (severity, status, start/end, then the labels worth reading), an optional
/// classification section, and a context line with the fingerprint and a link to the source.
/// Success is 200 with body `ok`; Slack's error bodies (`invalid_payload`, `no_text`, `channel_not_found`, …)
/// are kept verbatim. 429 and 5xx are retryable; other statuses are permanent. A repeat posts a second
/// message, so Slack requests are not marked idempotent.
public struct SlackFormatter: AlertFormatter {
    public init() {}

    static let headerLimit = 150
    static let sectionLimit = 3000
    static let fieldLimit = 2000
    static let maxFields = 10
    static let textLimit = 3000

    public func request(for alert: Alert, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest {
        let firing = alert.status == .firing
        let state = firing ? "FIRING" : "RESOLVED"
        let summary = summaryLine(alert)
        let text = truncate("[\(state)] \(SlackFormatter.escape(alert.name)): \(SlackFormatter.escape(summary))", maxScalars: SlackFormatter.textLimit)

        var blocks: [JSONValue] = []
        let headerText = truncate("\(firing ? "🔥" : "✅") \(state): \(alert.name)", maxScalars: SlackFormatter.headerLimit)
        blocks.append(.object([
            ("type", .string("header")),
            ("text", .object([("type", .string("plain_text")), ("text", .string(headerText)), ("emoji", .bool(true))])),
        ]))
        var body = "*\(SlackFormatter.escape(summary))*"
        if let d = alert.annotations["description"], !d.isEmpty, d != summary {
            body += "\n" + SlackFormatter.escape(d)
        }
        blocks.append(SlackFormatter.section(truncate(body, maxScalars: SlackFormatter.sectionLimit)))

        var fields: [(String, String)] = []
        if let sev = alert.classification?.severity.rawValue ?? alert.labels["severity"] { fields.append(("Severity", sev)) }
        fields.append(("Status", firing ? "firing" : "resolved"))
        fields.append(("Started", alert.startsAt.rfc3339))
        if let e = alert.endsAt, !firing { fields.append(("Ended", e.rfc3339)) }
        for (k, v) in alert.sortedLabels where k != "alertname" && k != "severity" {
            guard fields.count < SlackFormatter.maxFields else { break }
            fields.append((k, v))
        }
        blocks.append(.object([
            ("type", .string("section")),
            ("fields", .array(fields.prefix(SlackFormatter.maxFields).map { name, value in
                .object([("type", .string("mrkdwn")),
                         ("text", .string(truncate("*\(SlackFormatter.escape(name))*\n\(SlackFormatter.escape(value))", maxScalars: SlackFormatter.fieldLimit)))])
            })),
        ]))
        if let c = alert.classification {
            var t = "*Classification:* \(c.severity.rawValue) (confidence \(Int((c.confidence * 100).rounded()))%)"
            if let r = c.reasoning, !r.isEmpty { t += "\n" + SlackFormatter.escape(r) }
            for rec in c.recommendations.prefix(5) { t += "\n• " + SlackFormatter.escape(rec) }
            blocks.append(SlackFormatter.section(truncate(t, maxScalars: SlackFormatter.sectionLimit)))
        }
        var context: [JSONValue] = [.object([("type", .string("mrkdwn")), ("text", .string("Fingerprint `\(alert.fingerprint)`"))])]
        if isHTTPURL(alert.generatorURL), let link = SlackFormatter.link(alert.generatorURL, "Source") {
            context.append(.object([("type", .string("mrkdwn")), ("text", .string(link))]))
        }
        if let runbook = alert.annotations["runbook_url"], isHTTPURL(runbook), let link = SlackFormatter.link(runbook, "Runbook") {
            context.append(.object([("type", .string("mrkdwn")), ("text", .string(link))]))
        }
        blocks.append(.object([("type", .string("context")), ("elements", .array(context))]))

        let message: JSONValue = .object([("text", .string(text)), ("blocks", .array(blocks))])
        var headers = [HTTPHeaderPair("Content-Type", "application/json")]
        headers += target.headers.map { HTTPHeaderPair($0.0, $0.1) }
        return OutboundRequest(url: target.url, headers: headers, body: message.serialized(), idempotent: false, action: "post")
    }

    public func verdict(status: Int, body: [UInt8], retryAfter: String?) -> DeliveryVerdict {
        let text = bodyExcerpt(body)
        if status == 200 { return .delivered(detail: nil) }
        return defaultVerdict(status: status, message: text.isEmpty ? "HTTP \(status)" : text, retryAfter: retryAfter)
    }

    static func section(_ mrkdwn: String) -> JSONValue {
        .object([("type", .string("section")), ("text", .object([("type", .string("mrkdwn")), ("text", .string(mrkdwn))]))])
    }

    /// Slack's control characters in text: `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;` (in that order).
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// `<url|label>`, or nil when the URL holds characters that would break Slack's link syntax.
    static func link(_ url: String, _ label: String) -> String? {
        guard !url.contains("|"), !url.contains(">"), !url.contains("<") else { return nil }
        return "<\(url)|\(label)>"
    }
}
