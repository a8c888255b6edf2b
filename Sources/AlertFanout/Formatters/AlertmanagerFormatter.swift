// AlertmanagerFormatter: the exact Alertmanager webhook envelope (version "4"), so existing receivers work unchanged.

/// The payload Alertmanager's webhook notifier sends (prometheus/alertmanager `notify/webhook/webhook.go` and
/// `template/template.go`), members in Go's marshalling order: `receiver`, `status`, `alerts`, `groupLabels`,
/// `commonLabels`, `commonAnnotations`, `externalURL`, `version` ("4"), `groupKey`, `truncatedAlerts`.
/// Each alert carries `status`, `labels`, `annotations`, `startsAt`, `endsAt` (Go's zero time
/// `0001-01-01T00:00:00Z` while firing), `generatorURL` and `fingerprint`.
///
/// One alert is sent per notification: common labels and annotations are that alert's own. When the alert
/// came in an Alertmanager payload, its `groupLabels`, `groupKey` and `externalURL` are passed through;
/// otherwise the group is the alert name and the key `{}:{alertname="NAME"}`.
/// 2xx is success; 5xx (and 429) are retryable, as Alertmanager itself treats them; other statuses are permanent.
public struct AlertmanagerFormatter: AlertFormatter {
    public init() {}

    public func request(for alert: Alert, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest {
        let groupLabels: [(String, String)] = context.batch.map { Alert.sorted($0.groupLabels) }.flatMap { $0.isEmpty ? nil : $0 }
            ?? [("alertname", alert.name)]
        let groupKey = context.batch?.groupKey ?? "{}:" + AlertmanagerFormatter.labelSetString(groupLabels)
        let envelope: JSONValue = .object([
            ("receiver", .string(target.receiver ?? target.name)),
            ("status", .string(alert.status.rawValue)),
            ("alerts", .array([AlertmanagerFormatter.alertJSON(alert)])),
            ("groupLabels", .strings(groupLabels)),
            ("commonLabels", alert.labelsJSON),
            ("commonAnnotations", alert.annotationsJSON),
            ("externalURL", .string(context.batch?.externalURL ?? "")),
            ("version", .string("4")),
            ("groupKey", .string(groupKey)),
            ("truncatedAlerts", .int(0)),
        ])
        var headers = [HTTPHeaderPair("Content-Type", "application/json")]
        headers += target.headers.map { HTTPHeaderPair($0.0, $0.1) }
        return OutboundRequest(url: target.url, headers: headers, body: envelope.serialized(), idempotent: true, action: "notify")
    }

    public func verdict(status: Int, body: [UInt8], retryAfter: String?) -> DeliveryVerdict {
        let text = bodyExcerpt(body)
        return defaultVerdict(status: status, message: text.isEmpty ? "HTTP \(status)" : text, retryAfter: retryAfter)
    }

    static func alertJSON(_ a: Alert) -> JSONValue {
        .object([
            ("status", .string(a.status.rawValue)),
            ("labels", a.labelsJSON),
            ("annotations", a.annotationsJSON),
            ("startsAt", .string(a.startsAt.rfc3339)),
            ("endsAt", .string((a.status == .firing ? nil : a.endsAt)?.rfc3339 ?? Timestamp.goZero.rfc3339)),
            ("generatorURL", .string(a.generatorURL)),
            ("fingerprint", .string(a.fingerprint)),
        ])
    }

    /// Prometheus' `LabelSet.String()`: `{a="x", b="y"}` with Go-quoted values.
    static func labelSetString(_ labels: [(String, String)]) -> String {
        "{" + labels.map { "\($0.0)=\(goQuote($0.1))" }.joined(separator: ", ") + "}"
    }

    static func goQuote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    let hex = String(u.value, radix: 16)
                    out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
