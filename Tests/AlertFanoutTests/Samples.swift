// Samples: the alerts and targets the formatter goldens and config tests are built from.
@testable import AlertFanout

enum Samples {
    static let now = Timestamp.parse("2024-05-01T12:34:56Z")!
    /// The host Alertmanager envelopes name when neither the input nor the target gives an externalURL.
    static let hostname = "alertfanout.test"

    static let classification = Classification(
        severity: .critical, confidence: 0.92,
        reasoning: "Disk usage grew 10% in an hour & is still <rising>",
        recommendations: ["Rotate logs on db-1", "Expand the volume"])

    static let firingFull = Alert(
        labels: [
            "alertname": "DiskFull", "severity": "critical", "instance": "db-1:9100", "job": "node",
            "component": "storage", "group": "db", "class": "disk",
        ],
        annotations: [
            "summary": "Disk / is 97% full on db-1",
            "description": "Only 3% left & <growing> \"fast\"",
            "runbook_url": "https://runbooks.example.com/disk",
        ],
        status: .firing,
        startsAt: Timestamp.parse("2024-05-01T12:00:00.123456789Z")!,
        generatorURL: "http://prometheus.local:9090/graph?g0.expr=disk&g0.tab=1",
        classification: classification)

    static var resolved: Alert {
        var a = firingFull
        a.status = .resolved
        a.endsAt = Timestamp.parse("2024-05-01T12:30:00Z")!
        a.classification = nil
        return a
    }

    /// Non-ASCII everywhere and a summary far past every vendor limit, made of multi-scalar graphemes.
    static let unicodeLong = Alert(
        labels: ["alertname": "Überlast-" + String(repeating: "Ж", count: 160), "severity": "warning", "service": "支付"],
        annotations: ["summary": String(repeating: "👩‍💻 Überlast ", count: 150)],
        startsAt: Timestamp.parse("2024-05-01T12:00:00+02:00")!)

    static let minimal = Alert(labels: ["alertname": "Ping"], startsAt: Timestamp.parse("2024-05-01T12:00:00Z")!)

    /// `minimal` with an `i` label, so each number is its own alert (its own fingerprint).
    static func numbered(_ i: Int) -> Alert {
        var a = minimal
        a.labels["i"] = String(i)
        a.fingerprint = Alert.fingerprint(of: a.labels)
        return a
    }

    static let emptyLabels = Alert(labels: [:], startsAt: Timestamp.parse("2024-05-01T12:00:00Z")!)

    static let alerts: [(String, Alert)] = [
        ("firing_full", firingFull), ("resolved", resolved), ("unicode_long", unicodeLong),
        ("minimal", minimal), ("empty_labels", emptyLabels),
    ]

    static let targets: [TargetType: Target] = [
        .pagerduty: Target(
            name: "pd", type: .pagerduty, url: "https://events.pagerduty.com",
            secret: Secret("R0123456789abcdef0123456789abcde")),
        .slack: Target(name: "slack", type: .slack, url: "https://hooks.slack.com/services/T000/B000/XXXX"),
        .rootly: Target(name: "rootly", type: .rootly, url: "https://api.rootly.com", secret: Secret("rootly-test-key")),
        .alertmanager: Target(name: "am", type: .alertmanager, url: "http://127.0.0.1:9095/hook", receiver: "team-x"),
        .webhook: Target(
            name: "hook", type: .webhook, url: "https://hooks.example.com/alert",
            secret: Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")),
    ]
}
