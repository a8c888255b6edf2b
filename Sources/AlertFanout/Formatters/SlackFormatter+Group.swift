// SlackFormatter+Group: one Slack message for a whole Alertmanager notification, within Block Kit's limits.
import CurlReactor

extension SlackFormatter {
    /// Alerts listed one per section before the rest are summed up as "and K more".
    static let groupListed = 20
    /// Units per listed alert (name, summary and its distinguishing labels).
    static let groupLineLimit = 400

    /// One message for the group: a header with the counts and the group's labels, one section per alert
    /// (firing first, at most `groupListed`: 20 × 400 units keeps the total text near Slack's undocumented
    /// ~12,000 limit, see the type's documentation), "and K more" beyond them, and a context line with the group
    /// key. A burst of alerts in a few notifications is then a few messages, not one per alert. Not idempotent,
    /// like every Slack post.
    public func request(forGroup batch: AlertBatch, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest? {
        let alerts = batch.alerts.filter { $0.status == .firing } + batch.alerts.filter { $0.status != .firing }
        let firing = alerts.count { $0.status == .firing }
        let resolved = alerts.count - firing
        let groupName = SlackFormatter.groupName(batch)
        var counts: [String] = []
        if firing > 0 { counts.append("\(firing) firing") }
        if resolved > 0 { counts.append("\(resolved) resolved") }
        let countText = counts.isEmpty ? "no alerts" : counts.joined(separator: ", ")
        let headerText = SlackFormatter.fit("\(firing > 0 ? "🔥" : "✅") \(countText): \(groupName)", limit: SlackFormatter.headerLimit, escaping: false)
        var blocks: [JSONValue] = [
            .object([
                ("type", .string("header")),
                ("text", .object([("type", .string("plain_text")), ("text", .string(headerText)), ("emoji", .bool(true))])),
            ])
        ]
        let common = Set(AlertmanagerFormatter.common(alerts.map(\.labels)).map(\.0))
        for alert in alerts.prefix(SlackFormatter.groupListed) {
            let state = alert.status == .firing ? "FIRING" : "RESOLVED"
            let title = SlackFormatter.bold("[\(state)] \(alert.name)", limit: 150)
            var line = title
            let summary = summaryLine(alert).split(separator: "\n").first.map(String.init) ?? ""
            if !summary.isEmpty { line += " " + SlackFormatter.fit(summary, limit: max(0, SlackFormatter.groupLineLimit - SlackFormatter.units(line) - 1)) }
            // The labels that tell this alert from the others in the group.
            let distinct = alert.sortedLabels.filter { !common.contains($0.0) && $0.0 != "alertname" }.map { "\($0.0)=\($0.1)" }.joined(separator: ", ")
            if !distinct.isEmpty && SlackFormatter.units(line) + 3 < SlackFormatter.groupLineLimit {
                line += "\n" + SlackFormatter.fit(distinct, limit: SlackFormatter.groupLineLimit - SlackFormatter.units(line) - 1)
            }
            blocks.append(SlackFormatter.section(line))
        }
        let more = alerts.count - min(alerts.count, SlackFormatter.groupListed) + batch.truncatedAlerts
        if more > 0 { blocks.append(SlackFormatter.section("_and \(more) more_")) }
        var contextText = "Group `\(SlackFormatter.fit(batch.groupKey ?? groupName, limit: 200))`"
        if let url = batch.externalURL, isHTTPURL(url), let link = SlackFormatter.link(url, "Alertmanager") { contextText += " · " + link }
        blocks.append(.object([("type", .string("context")), ("elements", .array([.object([("type", .string("mrkdwn")), ("text", .string(contextText))])]))]))

        let firstSummary = alerts.first.map { summaryLine($0) } ?? ""
        let prefix = "[\(firing > 0 ? "FIRING" : "RESOLVED"):\(alerts.count + batch.truncatedAlerts)] \(SlackFormatter.fit(groupName, limit: 200)): "
        let text = prefix + SlackFormatter.fit(firstSummary, limit: SlackFormatter.textLimit - SlackFormatter.units(prefix))
        let message: JSONValue = .object([("text", .string(text)), ("blocks", .array(blocks))])
        var headers = [HTTPHeader("Content-Type", "application/json")]
        headers += target.headers.map { HTTPHeader($0.0, $0.1) }
        return OutboundRequest(url: target.url, headers: headers, body: message.serialized(), idempotent: false, action: "post")
    }

    /// The group's labels as `name=value, …` (Alertmanager's group_by labels), else the alerts' common alertname.
    static func groupName(_ batch: AlertBatch) -> String {
        let g = Alert.sorted(batch.groupLabels)
        if !g.isEmpty { return g.map { $0.0 == "alertname" ? $0.1 : "\($0.0)=\($0.1)" }.joined(separator: ", ") }
        let names = Set(batch.alerts.map(\.name))
        return names.count == 1 ? names.first! : "\(names.count) alert names"
    }
}
