// ServiceConfig: `fanout serve`'s config file — the targets plus an optional `server:` section — read and checked.
import AlertFanout
import CurlReactor
import FanoutCore
import FanoutStore

#if canImport(Glibc)
    import Glibc
#endif

/// The `server:` section: where to listen, who may call, TLS and request limits. Secrets (the bearer token,
/// the basic-auth password) are read from files named here and never printed.
public struct ServerSettings: Sendable, Equatable {
    public struct BasicAuth: Sendable, Equatable {
        public var username: String
        public var password: Secret
    }

    public var host: String
    public var port: Int
    public var bearerToken: Secret?
    public var basicAuth: BasicAuth?
    /// `/metrics` needs the credentials too.
    public var protectMetrics: Bool
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    /// Request bodies above this are refused with 413.
    public var maxBodyBytes: Int
    /// The deadline of each alert's fan-out when the service publishes it.
    public var publishDeadlineSeconds: Double
    /// A connection with nothing received or sent for this long is closed (slow or idle clients).
    public var idleTimeoutSeconds: Double
    /// `server.store`: where the outbox lives (`sqlite:PATH`, `postgres://…`, `none`); `--store` overrides it.
    public var store: String?
    /// How long a stored delivery is tried before it becomes a dead letter.
    public var deliveryTTLSeconds: Double = 3600
    /// How long delivered records are kept.
    public var retentionSeconds: Double = 86_400
    /// The longest wait between two attempts of a stored delivery.
    public var backoffCapSeconds: Double = 30
    /// How long a claimed delivery belongs to its replica before another may take it over.
    public var leaseSeconds: Double = 60

    public static let defaultPort = 9095

    public init(
        host: String = "127.0.0.1", port: Int = ServerSettings.defaultPort, bearerToken: Secret? = nil, basicAuth: BasicAuth? = nil,
        protectMetrics: Bool = false, tlsCertificateFile: String? = nil, tlsKeyFile: String? = nil,
        maxBodyBytes: Int = 8 << 20, publishDeadlineSeconds: Double = 10, idleTimeoutSeconds: Double = 30
    ) {
        self.host = host
        self.port = port
        self.bearerToken = bearerToken
        self.basicAuth = basicAuth
        self.protectMetrics = protectMetrics
        self.tlsCertificateFile = tlsCertificateFile
        self.tlsKeyFile = tlsKeyFile
        self.maxBodyBytes = maxBodyBytes
        self.publishDeadlineSeconds = publishDeadlineSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }

    /// Credentials are required on the API.
    public var requiresAuth: Bool { bearerToken != nil || basicAuth != nil }

    /// The listen address is 127.0.0.0/8, ::1 or localhost.
    public var isLoopback: Bool { isLoopbackHost(host) }
}

/// The whole service configuration.
public struct ServiceConfig: Sendable {
    public var targets: TargetsConfig
    public var server: ServerSettings
}

public enum ServiceConfigLoader {
    static let serverKeys: Set<String> = [
        "listen", "auth", "tls", "max_body_bytes", "publish_deadline", "idle_timeout", "store", "delivery_ttl",
        "retention", "backoff_cap", "lease",
    ]

    /// Reads `path`. Every problem in the file is reported at once (`TargetsConfigError`), naming its field.
    public static func load(path: String, environment: [String: String]) throws -> ServiceConfig {
        guard let text = readFile(path) else {
            throw TargetsConfigError.problems(file: path, [InputProblem("", "cannot read the file (missing, unreadable or not UTF-8)")])
        }
        return try load(text: text, file: path, environment: environment)
    }

    public static func load(text: String, file: String, environment: [String: String]) throws -> ServiceConfig {
        let tree = try ConfigDocument.parse(text, file: file)
        var problems: [InputProblem] = []
        let server = settings(tree["server"], environment: environment, problems: &problems)
        let targets: TargetsConfig
        do {
            targets = try TargetsConfigLoader.load(text: text, file: file, environment: environment)
        } catch let e as TargetsConfigError {
            throw TargetsConfigError.problems(file: file, problems + e.problems)
        }
        if !problems.isEmpty { throw TargetsConfigError.problems(file: file, problems) }
        return ServiceConfig(targets: targets, server: server)
    }

    /// `HOST:PORT`, `[::1]:PORT` or `:PORT` (loopback). Nil when malformed.
    public static func parseListen(_ s: String) -> (host: String, port: Int)? {
        var host: Substring
        var portText: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]"), s[s.index(after: close)...].hasPrefix(":") else { return nil }
            host = s[s.index(after: s.startIndex)..<close]
            portText = s[s.index(close, offsetBy: 2)...]
        } else {
            guard let colon = s.lastIndex(of: ":") else { return nil }
            host = s[..<colon]
            portText = s[s.index(after: colon)...]
        }
        if host.isEmpty { host = "127.0.0.1" }
        guard let port = Int(portText), (0...65535).contains(port), !host.contains(" ") else { return nil }
        return (String(host), port)
    }

    static func settings(_ v: JSONValue?, environment: [String: String], problems: inout [InputProblem]) -> ServerSettings {
        var s = ServerSettings()
        guard let v, v != .null else { return s }
        guard let members = v.objectValue else {
            problems.append(InputProblem("server", "must be a mapping, not \(v.typeName)"))
            return s
        }
        func add(_ field: String, _ message: String) { problems.append(InputProblem("server.\(field)", message)) }
        for (k, _) in members where !serverKeys.contains(k) { add(k, "unknown key (server takes \(serverKeys.sorted().joined(separator: ", ")))") }
        func text(_ value: JSONValue?, _ field: String) -> String? {
            guard let value else { return nil }
            guard let raw = value.textValue else {
                add(field, "must be a string")
                return nil
            }
            return ConfigDocument.expand(raw, path: "server.\(field)", environment: environment, problems: &problems)
        }
        func secretFile(_ value: JSONValue?, _ field: String) -> Secret? {
            guard let path = text(value, field) else { return nil }
            guard let content = readFile(path) else {
                add(field, "file '\(path)' does not exist or cannot be read")
                return nil
            }
            let trimmed = content.trimmingTrailingNewlines()
            guard !trimmed.isEmpty else {
                add(field, "file '\(path)' is empty")
                return nil
            }
            return Secret(trimmed)
        }
        if let l = text(v["listen"], "listen") {
            if let (h, p) = parseListen(l) { (s.host, s.port) = (h, p) } else { add("listen", "must be HOST:PORT, [IPv6]:PORT or :PORT, not '\(l)'") }
        }
        if let auth = v["auth"] {
            if let am = auth.objectValue {
                for (k, _) in am where !["bearer_token_file", "basic_auth", "protect_metrics"].contains(k) {
                    add("auth.\(k)", "unknown key (auth takes bearer_token_file, basic_auth, protect_metrics)")
                }
                s.bearerToken = secretFile(auth["bearer_token_file"], "auth.bearer_token_file")
                if let b = auth["basic_auth"] {
                    let user = text(b["username"], "auth.basic_auth.username")
                    let password = secretFile(b["password_file"], "auth.basic_auth.password_file")
                    if b.objectValue == nil {
                        add("auth.basic_auth", "must be a mapping {username, password_file}")
                    } else if user == nil || user!.isEmpty {
                        add("auth.basic_auth.username", "is required")
                    } else if b["password_file"] == nil {
                        add("auth.basic_auth.password_file", "is required")
                    } else if let user, let password {
                        s.basicAuth = .init(username: user, password: password)
                    }
                }
                if let p = auth["protect_metrics"] {
                    if let b = p.boolValue { s.protectMetrics = b } else { add("auth.protect_metrics", "must be true or false") }
                }
            } else {
                add("auth", "must be a mapping")
            }
        }
        if let tls = v["tls"] {
            let cert = text(tls["cert_file"], "tls.cert_file")
            let key = text(tls["key_file"], "tls.key_file")
            if tls.objectValue == nil || cert == nil || key == nil {
                add("tls", "must be a mapping with cert_file and key_file")
            } else if let cert, let key {
                for (f, field) in [(cert, "tls.cert_file"), (key, "tls.key_file")] where access(f, R_OK) != 0 {
                    add(field, "file '\(f)' does not exist or cannot be read")
                }
                (s.tlsCertificateFile, s.tlsKeyFile) = (cert, key)
            }
        }
        if let m = v["max_body_bytes"] {
            if let n = m.intValue, n >= 1024 { s.maxBodyBytes = n } else { add("max_body_bytes", "must be a whole number of bytes, at least 1024") }
        }
        if let d = v["publish_deadline"] {
            if let sec = ConfigDocument.durationSeconds(d), sec > 0, sec <= 3600 {
                s.publishDeadlineSeconds = sec
            } else {
                add("publish_deadline", "must be a duration between 0 and 1h, such as 10s")
            }
        }
        if let d = v["idle_timeout"] {
            if let sec = ConfigDocument.durationSeconds(d), sec > 0 {
                s.idleTimeoutSeconds = sec
            } else {
                add("idle_timeout", "must be a positive duration, such as 30s")
            }
        }
        if let st = text(v["store"], "store") {
            if case .failure(let e) = StoreLocation.parse(st) { add("store", e.message) } else { s.store = st }
        }
        for (key, minimum, maximum) in [
            ("delivery_ttl", 1.0, 7 * 86_400.0), ("retention", 60.0, 365 * 86_400.0), ("backoff_cap", 0.1, 3600.0),
            ("lease", 1.0, 3600.0),
        ] {
            guard let d = v[key] else { continue }
            guard let sec = ConfigDocument.durationSeconds(d), sec >= minimum, sec <= maximum else {
                add(key, "must be a duration between \(Int(minimum))s and \(Int(maximum))s, such as 1h")
                continue
            }
            switch key {
            case "delivery_ttl": s.deliveryTTLSeconds = sec
            case "retention": s.retentionSeconds = sec
            case "lease": s.leaseSeconds = sec
            default: s.backoffCapSeconds = sec
            }
        }
        return s
    }
}

extension ServerSettings {
    /// The delivery policy these settings ask for.
    public var deliveryPolicy: DeliveryPolicy {
        DeliveryPolicy(ttlSeconds: deliveryTTLSeconds, backoffCapSeconds: backoffCapSeconds, leaseSeconds: leaseSeconds, retentionSeconds: retentionSeconds)
    }
}

/// The whole file as UTF-8 text, or nil.
func readFile(_ path: String) -> String? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n > 0 { bytes.append(contentsOf: buffer[0..<n]) }
        if n < buffer.count { break }
    }
    return String(validating: bytes, as: UTF8.self)
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while let l = s.last, l == "\n" || l == "\r" || l == " " { s = s.dropLast() }
        return String(s)
    }
}
