// Target: one configured destination — its type, URL, secret, headers, connection settings and per-target limits.
import CurlReactor

/// The kinds of target AlertFanout can publish to.
public enum TargetType: String, Sendable, Hashable, CaseIterable {
    /// A target type, spelled as in the targets file's `type:` key: `pagerduty` (PagerDuty Events API v2),
    /// `slack` (Slack incoming webhook), `rootly` (Rootly Alerts API), `webhook` (generic JSON webhook, signed
    /// per Standard Webhooks when it has a secret) or `alertmanager` (an Alertmanager webhook receiver).
    case pagerduty, slack, rootly, webhook, alertmanager

    /// The URL used when a target of this type gives none.
    public var defaultURL: String? {
        switch self {
        case .pagerduty: return "https://events.pagerduty.com"
        case .rootly: return "https://api.rootly.com"
        case .slack, .webhook, .alertmanager: return nil
        }
    }

    /// The configuration key of this type's secret.
    public var secretKey: String? {
        switch self {
        case .pagerduty: return "routing_key"
        case .rootly: return "api_key"
        case .webhook: return "secret"
        case .slack, .alertmanager: return nil
        }
    }
}

/// A credential. It never prints: `description` is `<redacted>`; `reveal()` is for building requests only.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    private let value: String
    /// Wraps a credential's value.
    public init(_ value: String) { self.value = value }
    /// The credential's value, for building a request only: never log it or put it in a report.
    public func reveal() -> String { value }
    /// Always `<redacted>`, so printing or interpolating a secret never shows it.
    public var description: String { "<redacted>" }
    /// Always `<redacted>`, in debug output (`debugPrint`, `String(reflecting:)`) too.
    public var debugDescription: String { "<redacted>" }
}

/// A token-bucket rate limit: `requests` per `period`, bursts up to `burst`.
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    /// Requests allowed per period (may be fractional).
    public var requests: Double
    /// The period's length, in seconds.
    public var periodSeconds: Double
    /// The bucket's capacity: how many requests may go at once after a quiet spell.
    public var burst: Int

    /// A limit of `requests` per `periodSeconds` seconds. `burst` defaults to `requests` rounded down, at least 1.
    public init(requests: Double, periodSeconds: Double, burst: Int? = nil) {
        self.requests = requests
        self.periodSeconds = periodSeconds
        self.burst = burst ?? max(1, Int(requests.rounded(.down)))
    }

    /// The sustained rate, in requests per second.
    public var perSecond: Double { requests / periodSeconds }
    /// `<requests>/<period>s burst <burst>`, for example `100.0/60.0s burst 20`.
    public var description: String { "\(requests)/\(periodSeconds)s burst \(burst)" }
}

/// One target from the targets file, validated.
public struct Target: Sendable, Hashable {
    /// The target's unique name; from a targets file, a DNS label (1–63 lowercase letters, digits or `-`).
    public var name: String
    /// The vendor format the target receives.
    public var type: TargetType
    /// The endpoint. For PagerDuty and Rootly the API base (paths are added by the formatter).
    /// It may itself be a secret (Slack webhook URLs are): it is never logged, put in metrics or in results.
    public var url: String
    /// False keeps the target configured but out of publishes (reported skipped, `disabled`). Default true.
    public var enabled: Bool
    /// Extra request headers (name, value), in order, sent after the formatter's own.
    public var headers: [(String, String)]
    /// The type's credential: PagerDuty's `routing_key`, Rootly's `api_key` or a webhook's signing `secret`
    /// (nil for Slack and Alertmanager targets and for unsigned webhooks).
    public var secret: Secret?
    /// The attempt timeout, in seconds (nil: ``PublishOptions/defaultTargetTimeout``). Adaptive deadlines may
    /// shorten an attempt's deadline below it, never lengthen it; the publish deadline bounds it too.
    public var timeoutSeconds: Double?
    /// Requests in flight at once to this target across all publishes (nil: no limit of its own);
    /// ``PublishOptions/maxInFlightPerTarget`` takes precedence.
    public var maxInFlight: Int?
    /// The configured rate limit (`rate_limit:`); nil falls back to the vendor default
    /// (``Target/effectiveRateLimit``).
    public var rateLimit: RateLimit?
    /// Allows plain `http` to a host that is not loopback (`insecure: true`). It does not turn off TLS
    /// certificate verification. Default false.
    public var insecure: Bool
    /// Alertmanager targets: the `receiver` named in the envelope (defaults to the target name).
    public var receiver: String?
    /// Alertmanager targets: the envelope's `externalURL` when the alert did not arrive with one (defaults to
    /// `http://<hostname>`; Alertmanager itself never sends an empty one).
    public var externalURL: String?
    /// Proxy, CA file, client certificate and TLS floor (`nil`: libcurl's defaults, environment proxies honoured).
    /// The proxy URL and the key password may hold credentials: never logged, put in metrics or in results.
    public var connection: ConnectionOptions?

    /// A target with the given settings, used as given: nothing is validated here (``TargetsConfigLoader``
    /// validates what it reads from a file).
    public init(
        name: String, type: TargetType, url: String, enabled: Bool = true, headers: [(String, String)] = [],
        secret: Secret? = nil, timeoutSeconds: Double? = nil, maxInFlight: Int? = nil,
        rateLimit: RateLimit? = nil, insecure: Bool = false, receiver: String? = nil, connection: ConnectionOptions? = nil,
        externalURL: String? = nil
    ) {
        self.connection = connection
        self.externalURL = externalURL
        self.name = name
        self.type = type
        self.url = url
        self.enabled = enabled
        self.headers = headers
        self.secret = secret
        self.timeoutSeconds = timeoutSeconds
        self.maxInFlight = maxInFlight
        self.rateLimit = rateLimit
        self.insecure = insecure
        self.receiver = receiver
    }

    /// Equal when every setting is equal, headers compared in order.
    public static func == (a: Target, b: Target) -> Bool {
        a.name == b.name && a.type == b.type && a.url == b.url && a.enabled == b.enabled
            && a.headers.map { "\($0.0):\($0.1)" } == b.headers.map { "\($0.0):\($0.1)" } && a.secret == b.secret
            && a.timeoutSeconds == b.timeoutSeconds && a.maxInFlight == b.maxInFlight && a.rateLimit == b.rateLimit
            && a.insecure == b.insecure && a.receiver == b.receiver && a.connection == b.connection
            && a.externalURL == b.externalURL
    }

    /// Hashes the name, type and URL only (targets that are equal have equal hashes).
    public func hash(into h: inout Hasher) {
        h.combine(name)
        h.combine(type)
        h.combine(url)
    }

    /// The vendor's documented default rate limit for this target's credential, used when none is configured
    /// (`rate_limit:` overrides it). A token bucket that starts full lets through at most `burst + rate × 60`
    /// requests in any 60 s window, so burst and rate are chosen to keep that sum within the vendor's window:
    ///
    /// | vendor | documented limit | default here | most in any 60 s |
    /// |---|---|---|---|
    /// | Slack | 1 message/s per webhook, short bursts allowed | 1/s, burst 3 | 63 |
    /// | PagerDuty | "approximately 120 calls/minute per integration key … 60 second window looking back" (developer-docs events-API-v2 rate limits) | 100/min, burst 20 | 120 |
    /// | Rootly | "Alert ingestion is rate limited to 50 alerts per minute per source/API key by default" (docs.rootly.com/alerts; 3000/min is its general API limit) | 45/min, burst 5 | 50 |
    ///
    /// A 429 is still retried after its `Retry-After` within the publish deadline; a storm that outlasts the
    /// deadline ends in `rate_limited` skips or 429 failures, both reported retryable.
    public var effectiveRateLimit: RateLimit? {
        if let rateLimit { return rateLimit }
        switch type {
        case .slack: return RateLimit(requests: 1, periodSeconds: 1, burst: 3)
        case .pagerduty: return RateLimit(requests: 100, periodSeconds: 60, burst: 20)
        case .rootly: return RateLimit(requests: 45, periodSeconds: 60, burst: 5)
        case .webhook, .alertmanager: return nil
        }
    }
}

/// All configured targets, in file order, with unique names.
public struct TargetsConfig: Sendable {
    /// The targets, in file order.
    public var targets: [Target]
    /// A configuration of `targets`, kept in the given order (names are not checked for uniqueness here).
    public init(targets: [Target]) { self.targets = targets }
    /// The first target named `name`, or nil when there is none.
    public subscript(name: String) -> Target? { targets.first { $0.name == name } }
    /// The enabled targets, in file order.
    public var enabled: [Target] { targets.filter(\.enabled) }
}
