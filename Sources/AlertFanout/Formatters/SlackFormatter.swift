// SlackFormatter: Slack incoming webhooks — a `text` fallback plus Block Kit blocks within Slack's limits.
import CurlReactor

/// Slack incoming webhook messages, per Slack's Block Kit reference (header ≤ 150 characters of plain text,
/// section text ≤ 3000, ≤ 10 fields of ≤ 2000, context ≤ 10 elements, ≤ 50 blocks) and its formatting guide
/// (`&`, `<`, `>` escaped in mrkdwn and in `text`: "only the specific characters shown above will be decoded").
///
/// Layout: a header (`🔥 FIRING: name` / `✅ RESOLVED: name`), a section with the summary and description,
/// a section of up to 10 fields (severity, status, start/end, then the labels worth reading), an optional
/// classification section, and a context line with the fingerprint and links to the source and runbook.
///
/// Limits, because `invalid_blocks` is a permanent 400 and the message is lost:
/// - Slack states them in "characters" without naming the unit. We count UTF-16 code units, never fewer than
///   Unicode scalars or graphemes, so a text within our limit is within Slack's whichever of those it counts.
/// - Text is cut *before* it is escaped, on grapheme boundaries, so an entity such as `&amp;` is never split;
///   "…" marks a cut.
/// - Slack also rejects a message whose blocks hold too much text in total (`msg_blocks_too_long`, undocumented;
///   Slack engineers quote "12,000 text characters with a buffer for block containers", slackapi/bolt-js#2509
///   and #2867). So a field's text is kept to 500 units, the classification to 1000 and each link to 500
///   (a longer link is left out): at most 150 + 3000 + 10 × 500 + 1000 + 2 × 500 + the fingerprint ≈ 10 200.
/// - Bold (`*text*`) only renders on text that neither starts nor ends with a space and holds no newline
///   (observed, not documented): such text is trimmed before it is bolded, and text with a newline or `*` is
///   sent unstyled rather than with literal asterisks.
///
/// Success is 200 with body `ok`; Slack's error bodies (`invalid_payload`, `no_text`, `channel_not_found`, …)
/// are kept verbatim. 429 and 5xx are retryable; other statuses are permanent. A repeat posts a second
/// message, so Slack requests are not marked idempotent.
public struct SlackFormatter: AlertFormatter {
    /// A Slack formatter (it holds no state).
    public init() {}

    static let headerLimit = 150
    static let sectionLimit = 3000
    /// Slack's limit for one field's text.
    static let fieldLimit = 2000
    /// Ours, well inside `fieldLimit`, to keep the message's total text small.
    static let fieldTextLimit = 500
    static let maxFields = 10
    static let textLimit = 3000
    static let classificationLimit = 1000
    static let linkLimit = 500

    /// One message for `alert` (see the type's documentation), posted to the target's webhook URL. It never
    /// throws: a Slack target's only credential is its URL.
    public func request(for alert: Alert, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest {
        let firing = alert.status == .firing
        let state = firing ? "FIRING" : "RESOLVED"
        let summary = summaryLine(alert)
        let prefix = "[\(state)] \(SlackFormatter.fit(alert.name, limit: 200)): "
        let text = prefix + SlackFormatter.fit(summary, limit: SlackFormatter.textLimit - SlackFormatter.units(prefix))

        var blocks: [JSONValue] = []
        let headerText = SlackFormatter.fit("\(firing ? "🔥" : "✅") \(state): \(alert.name)", limit: SlackFormatter.headerLimit, escaping: false)
        blocks.append(
            .object([
                ("type", .string("header")),
                ("text", .object([("type", .string("plain_text")), ("text", .string(headerText)), ("emoji", .bool(true))])),
            ]))
        // The summary's first line in bold; the rest of it and the description below.
        let lines = summary.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        var body = SlackFormatter.bold(String(lines.first ?? ""), limit: SlackFormatter.sectionLimit)
        if body.isEmpty { body = SlackFormatter.bold(alert.name, limit: SlackFormatter.sectionLimit) }
        if body.isEmpty { body = state }
        var rest = lines.count > 1 ? String(lines[1]) : ""
        if let d = alert.annotations["description"], !d.isEmpty, d != summary { rest += (rest.isEmpty ? "" : "\n") + d }
        if !rest.isEmpty && SlackFormatter.units(body) + 2 < SlackFormatter.sectionLimit {
            body += "\n" + SlackFormatter.fit(rest, limit: SlackFormatter.sectionLimit - SlackFormatter.units(body) - 1)
        }
        blocks.append(SlackFormatter.section(body))

        var fields: [(String, String)] = []
        if let sev = alert.classification?.severity.rawValue ?? alert.labels["severity"] { fields.append(("Severity", sev)) }
        fields.append(("Status", firing ? "firing" : "resolved"))
        fields.append(("Started", alert.startsAt.rfc3339))
        if let e = alert.endsAt, !firing { fields.append(("Ended", e.rfc3339)) }
        for (k, v) in alert.sortedLabels where k != "alertname" && k != "severity" {
            guard fields.count < SlackFormatter.maxFields else { break }
            fields.append((k, v))
        }
        blocks.append(
            .object([
                ("type", .string("section")),
                (
                    "fields",
                    .array(
                        fields.prefix(SlackFormatter.maxFields).map { name, value in
                            let n = SlackFormatter.bold(name, limit: 100)
                            let v = SlackFormatter.fit(value, limit: SlackFormatter.fieldTextLimit - SlackFormatter.units(n) - 1)
                            return .object([("type", .string("mrkdwn")), ("text", .string(n + "\n" + v))])
                        })
                ),
            ]))
        if let c = alert.classification {
            var t = "*Classification:* \(c.severity.rawValue) (confidence \(Int((c.confidence * 100).rounded()))%)"
            var more = c.reasoning ?? ""
            for rec in c.recommendations.prefix(5) { more += (more.isEmpty ? "" : "\n") + "• " + rec }
            if !more.isEmpty { t += "\n" + SlackFormatter.fit(more, limit: SlackFormatter.classificationLimit - SlackFormatter.units(t) - 1) }
            blocks.append(SlackFormatter.section(t))
        }
        var context: [JSONValue] = [
            .object([("type", .string("mrkdwn")), ("text", .string("Fingerprint `\(SlackFormatter.fit(alert.fingerprint, limit: 64))`"))])
        ]
        if isHTTPURL(alert.generatorURL), let link = SlackFormatter.link(alert.generatorURL, "Source") {
            context.append(.object([("type", .string("mrkdwn")), ("text", .string(link))]))
        }
        if let runbook = alert.annotations["runbook_url"], isHTTPURL(runbook), let link = SlackFormatter.link(runbook, "Runbook") {
            context.append(.object([("type", .string("mrkdwn")), ("text", .string(link))]))
        }
        blocks.append(.object([("type", .string("context")), ("elements", .array(context))]))

        let message: JSONValue = .object([("text", .string(text)), ("blocks", .array(blocks))])
        var headers = [HTTPHeader("Content-Type", "application/json")]
        headers += target.headers.map { HTTPHeader($0.0, $0.1) }
        return OutboundRequest(url: target.url, headers: headers, body: message.serialized(), idempotent: false, action: "post")
    }

    /// The unit Slack's limits are counted in here: UTF-16 code units (see the type's documentation).
    static func units(_ s: String) -> Int { s.utf16.count }

    /// `raw`, escaped when `escaping`, within `limit` UTF-16 units: cut before escaping on grapheme boundaries,
    /// so an entity is never split, and "…" (one unit) marks the cut.
    static func fit(_ raw: String, limit: Int, escaping: Bool = true) -> String {
        let whole = escaping ? escape(raw) : raw
        if units(whole) <= limit { return whole }
        guard limit >= 1 else { return "" }
        var out = ""
        var used = 0
        for ch in raw {
            let piece = escaping ? escape(String(ch)) : String(ch)
            let n = units(piece)
            if used + n > limit - 1 { break }
            out += piece
            used += n
        }
        return out + "…"
    }

    /// `*text*` where Slack renders it bold: `raw` trimmed, on one line and without `*`; otherwise `raw` (trimmed)
    /// escaped and unstyled rather than with literal asterisks. Within `limit` units, markers included.
    static func bold(_ raw: String, limit: Int) -> String {
        var s = Substring(raw)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        guard !s.isEmpty, !s.contains(where: \.isNewline), !s.contains("*"), limit > 3 else { return fit(String(s), limit: limit) }
        return "*" + fit(String(s), limit: limit - 2) + "*"  // a cut ends in "…", never in a space
    }

    /// 2xx is delivered. Otherwise the message is Slack's error body (`invalid_blocks`, `no_text`, …), at most
    /// 300 characters on one line; 408, 425, 429 and 5xx are retryable, the rest permanent.
    public func verdict(status: Int, body: [UInt8], retryAfter: String?) -> DeliveryVerdict {
        if status == 200 { return .delivered(detail: nil) }
        let text = bodyExcerpt(body)
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

    /// `<url|label>`, or nil when the URL holds characters that would break Slack's link syntax or the link is
    /// longer than `linkLimit` units (a cut URL would lead nowhere).
    static func link(_ url: String, _ label: String) -> String? {
        guard !url.contains("|"), !url.contains(">"), !url.contains("<") else { return nil }
        let link = "<\(url)|\(label)>"
        return units(link) <= linkLimit ? link : nil
    }
}
