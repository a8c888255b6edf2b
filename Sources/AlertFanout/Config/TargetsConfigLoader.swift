// TargetsConfigLoader: reads the targets file (YAML or JSON), expands ${ENV} references and reports every problem at once.
import CurlReactor
import Yams

#if canImport(Glibc)
    import Glibc
#endif

/// Every problem in a targets file, each with the target and field it concerns. Never contains secret values.
public struct TargetsConfigError: Error, Sendable, CustomStringConvertible {
    /// The name the file was loaded under (the loader's `file:` argument).
    public var file: String
    /// Every problem found, in the order found; each names its target and field (`targets[1] (chat).url`).
    public var problems: [InputProblem]
    /// The file, the number of problems, then one indented `- path: problem` line per problem.
    public var description: String {
        "\(file): \(problems.count) problem\(problems.count == 1 ? "" : "s") in the targets configuration:\n"
            + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Reads a targets file: YAML (1.2 core schema) or JSON, `${NAME}` references expanded from the environment,
/// every target validated (names, types, URLs, secrets, headers, timeouts, limits, proxy and TLS settings) and
/// every problem of the file reported at once.
public enum TargetsConfigLoader {
    /// Top-level keys read by other parts of the same file (the service's `server:` section).
    static let extraTopLevelKeys: Set<String> = ["server"]

    /// Parses and validates a targets file's text. `environment` resolves `${NAME}` references (pass the
    /// process environment; tests pass their own). `file` names the source in error messages.
    ///
    /// - Throws: ``TargetsConfigError`` listing every problem: a syntax error, or each unknown key, invalid
    ///   value and unset environment variable. A file with any problem yields no targets.
    public static func load(text: String, file: String = "targets", environment: [String: String]) throws -> TargetsConfig {
        let tree: JSONValue
        do {
            tree = try parseDocument(text)
        } catch let e as JSONParseError {
            throw TargetsConfigError(file: file, problems: [InputProblem("", e.description)])
        } catch {
            throw TargetsConfigError(file: file, problems: [InputProblem("", "not valid YAML: \(error)")])
        }
        var problems: [InputProblem] = []
        let config = validate(tree, environment: environment, problems: &problems)
        if !problems.isEmpty { throw TargetsConfigError(file: file, problems: problems) }
        return config
    }

    /// JSON when the document starts with `{` or `[`, YAML otherwise.
    static func parseDocument(_ text: String) throws -> JSONValue {
        let first = text.utf8.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 })
        if first == 0x7B || first == 0x5B { return try JSONValue.parse(text) }
        guard let node = try Yams.compose(yaml: text) else { return .null }
        return try yamlToJSON(node)
    }

    struct YAMLShapeError: Error, CustomStringConvertible {
        var description: String
    }

    /// YAML to JSON with YAML 1.2 core-schema scalars: only `true`/`false` are booleans and only `null`/`~`/empty
    /// are null, so `name: off` or `name: no` stay strings (YAML 1.1 would make them false).
    static func yamlToJSON(_ node: Node) throws -> JSONValue {
        switch node {
        case .scalar(let s):
            guard s.style == .plain else { return .string(s.string) }
            switch s.string {
            case "", "~", "null", "Null", "NULL": return .null
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default: break
            }
            if let parsed = try? JSONValue.parse(s.string), case .number = parsed { return parsed }
            return .string(s.string)
        case .mapping(let m):
            var members: [(String, JSONValue)] = []
            for (k, v) in m {
                guard case .scalar(let ks) = k else { throw YAMLShapeError(description: "mapping keys must be strings") }
                members.append((ks.string, try yamlToJSON(v)))
            }
            return .object(members)
        case .sequence(let seq):
            return .array(try seq.map(yamlToJSON))
        case .alias:
            throw YAMLShapeError(description: "YAML aliases are not supported in the targets file")
        }
    }

    /// Connection keys, allowed per target and in the top-level `defaults:` mapping (a target's own value wins).
    static let connectionKeys: Set<String> = [
        "proxy", "no_proxy", "ca_file", "client_cert", "client_key", "client_key_password", "tls_min_version",
    ]

    static let knownKeys: Set<String> = connectionKeys.union([
        "name", "type", "url", "enabled", "headers", "routing_key", "api_key", "secret", "timeout",
        "max_in_flight", "rate_limit", "insecure", "receiver", "external_url",
    ])

    static func validate(_ tree: JSONValue, environment: [String: String], problems: inout [InputProblem]) -> TargetsConfig {
        guard case .object = tree, let list = tree["targets"] else {
            problems.append(InputProblem("", "expected a top-level 'targets:' list"))
            return TargetsConfig(targets: [])
        }
        for (k, _) in tree.objectValue ?? [] where k != "targets" && k != "defaults" && !extraTopLevelKeys.contains(k) {
            problems.append(
                InputProblem(k, "unknown top-level key (understood: \((["targets", "defaults"] + extraTopLevelKeys.sorted()).joined(separator: ", ")))"))
        }
        var defaults: [(String, JSONValue)] = []
        if let d = tree["defaults"] {
            if let members = d.objectValue {
                for (k, v) in members {
                    if connectionKeys.contains(k) {
                        defaults.append((k, v))
                    } else {
                        problems.append(InputProblem("defaults.\(k)", "unknown key (defaults take \(connectionKeys.sorted().joined(separator: ", ")))"))
                    }
                }
            } else {
                problems.append(InputProblem("defaults", "must be a mapping, not \(d.typeName)"))
            }
        }
        guard let items = list.arrayValue else {
            problems.append(InputProblem("targets", "must be a list of targets, not \(list.typeName)"))
            return TargetsConfig(targets: [])
        }
        if items.isEmpty { problems.append(InputProblem("targets", "the list is empty")) }
        var targets: [Target] = []
        var seen: [String: Int] = [:]
        for (i, item) in items.enumerated() {
            let before = problems.count
            let t = target(item, index: i, defaults: defaults, environment: environment, problems: &problems)
            if let t {
                if let j = seen[t.name] {
                    problems.append(InputProblem(label(i, t.name) + ".name", "duplicates the name of targets[\(j)]"))
                } else {
                    seen[t.name] = i
                }
                if problems.count == before { targets.append(t) }
            }
        }
        return TargetsConfig(targets: targets)
    }

    static func label(_ i: Int, _ name: String?) -> String {
        if let name, !name.isEmpty { return "targets[\(i)] (\(name))" }
        return "targets[\(i)]"
    }

    static func target(
        _ v: JSONValue, index i: Int, defaults: [(String, JSONValue)] = [], environment: [String: String],
        problems: inout [InputProblem]
    ) -> Target? {
        guard let members = v.objectValue else {
            problems.append(InputProblem("targets[\(i)]", "must be a mapping, not \(v.typeName)"))
            return nil
        }
        let rawName = v["name"]?.textValue
        let at = label(i, rawName)
        func add(_ field: String, _ message: String) { problems.append(InputProblem("\(at).\(field)", message)) }

        for (k, _) in members where !knownKeys.contains(k) {
            let hint = suggestion(for: k).map { " (did you mean '\($0)'?)" } ?? ""
            add(k, "unknown key\(hint)")
        }
        var name = ""
        if let n = rawName {
            if isDNSLabel(n) {
                name = n
            } else {
                add("name", "'\(n)' must be a DNS label: 1–63 lowercase letters, digits or '-', starting and ending with a letter or digit")
            }
        } else {
            add("name", v["name"] == nil ? "is required" : "must be a string")
        }
        var type: TargetType?
        if let raw = v["type"]?.textValue {
            type = TargetType(rawValue: raw.lowercased())
            if type == nil { add("type", "'\(raw)' is not one of \(TargetType.allCases.map(\.rawValue).joined(separator: ", "))") }
        } else {
            add("type", v["type"] == nil ? "is required (one of \(TargetType.allCases.map(\.rawValue).joined(separator: ", ")))" : "must be a string")
        }
        var enabled = true
        if let e = v["enabled"] {
            if let b = e.boolValue { enabled = b } else { add("enabled", "must be true or false, not \(e.typeName)") }
        }
        var insecure = false
        if let e = v["insecure"] {
            if let b = e.boolValue { insecure = b } else { add("insecure", "must be true or false, not \(e.typeName)") }
        }
        // URL (may hold ${ENV}; Slack webhook URLs are secrets themselves).
        var url = ""
        if let u = v["url"] {
            if let s = u.textValue {
                url = expand(s, field: "url", at: at, environment: environment, problems: &problems) ?? ""
            } else {
                add("url", "must be a string")
            }
        } else if let d = type?.defaultURL {
            url = d
        } else if type != nil {
            add("url", "is required for \(type!.rawValue) targets")
        }
        if !url.isEmpty {
            switch ParsedURL.parse(url) {
            case .failure(let p):
                add("url", "is not a valid URL: it \(p.message)")
            case .success(let parsed):
                if parsed.scheme != "https" && parsed.scheme != "http" {
                    add("url", "must use https (or http for loopback), not '\(parsed.scheme)'")
                } else if parsed.host.isEmpty {
                    add("url", "is not a valid URL: it has no host")
                } else if parsed.scheme == "http" && !parsed.isLoopback && !insecure {
                    add("url", "must use https; plain http is allowed only for loopback hosts or with 'insecure: true'")
                }
            }
        }
        // The type's secret.
        var secret: Secret?
        if let type {
            for key in ["routing_key", "api_key", "secret"] where v[key] != nil && key != type.secretKey {
                add(key, "does not apply to \(type.rawValue) targets" + (type.secretKey.map { " (they use '\($0)')" } ?? ""))
            }
            if let key = type.secretKey {
                if let raw = v[key] {
                    if let s = raw.textValue, let value = expand(s, field: key, at: at, environment: environment, problems: &problems) {
                        if value.isEmpty {
                            add(key, "is empty")
                        } else if type == .pagerduty && value.count != 32 {
                            add(key, "must be PagerDuty's 32-character integration key (got \(value.count) characters)")
                        } else if type == .webhook, case .failure(let problem) = WebhookSecret.key(value) {
                            add(key, problem.description)  // says why, never the value
                        } else {
                            secret = Secret(value)
                        }
                    } else if raw.textValue == nil {
                        add(key, "must be a string")
                    }
                } else if type != .webhook {
                    add(key, "is required for \(type.rawValue) targets")
                }
            }
        }
        var headers: [(String, String)] = []
        if let h = v["headers"] {
            if let pairs = h.objectValue {
                for (hn, hv) in pairs {
                    guard !hn.isEmpty, hn.utf8.allSatisfy(isTokenByte) else {
                        add("headers.\(hn)", "is not a valid header name")
                        continue
                    }
                    guard let s = hv.textValue, let value = expand(s, field: "headers.\(hn)", at: at, environment: environment, problems: &problems) else {
                        if hv.textValue == nil { add("headers.\(hn)", "must be a string") }
                        continue
                    }
                    if value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) {
                        add("headers.\(hn)", "contains a CR, LF or NUL")
                        continue
                    }
                    headers.append((hn, value))
                }
            } else {
                add("headers", "must be a mapping of header name to value")
            }
        }
        var timeout: Double?
        if let t = v["timeout"] {
            if let s = durationSeconds(t), s > 0 { timeout = s } else { add("timeout", "must be a positive duration such as 5s or 500ms, not \(t.jsonText)") }
        }
        var maxInFlight: Int?
        if let m = v["max_in_flight"] {
            if let n = m.intValue, n >= 1 { maxInFlight = n } else { add("max_in_flight", "must be a whole number of at least 1, not \(m.jsonText)") }
        }
        var rateLimit: RateLimit?
        if let r = v["rate_limit"] {
            if let parsed = parseRateLimit(r) {
                rateLimit = parsed
            } else {
                add("rate_limit", "must look like '1/s', '120/min' or {requests: 120, per: 60s, burst: 10}, not \(r.jsonText)")
            }
        }
        var receiver: String?
        if let r = v["receiver"] {
            if type != .alertmanager { add("receiver", "applies only to alertmanager targets") }
            if let s = r.textValue { receiver = s } else { add("receiver", "must be a string") }
        }
        var externalURL: String?
        if let e = v["external_url"] {
            if type != .alertmanager { add("external_url", "applies only to alertmanager targets") }
            if let s = e.textValue {
                if let value = expand(s, field: "external_url", at: at, environment: environment, problems: &problems) {
                    if case .success(let u) = ParsedURL.parse(value), u.scheme == "http" || u.scheme == "https", !u.host.isEmpty {
                        externalURL = value
                    } else {
                        add("external_url", "must be an http or https URL (the envelope's externalURL, a link back to the sender)")
                    }
                }
            } else {
                add("external_url", "must be a string")
            }
        }
        let connection = connectionOptions(members, defaults: defaults, at: at, environment: environment, problems: &problems)
        guard let type, !name.isEmpty else { return nil }
        return Target(
            name: name, type: type, url: url, enabled: enabled, headers: headers, secret: secret,
            timeoutSeconds: timeout, maxInFlight: maxInFlight, rateLimit: rateLimit, insecure: insecure, receiver: receiver,
            connection: connection, externalURL: externalURL)
    }

    /// Proxy and TLS keys of one target, over the file's `defaults:`. Values may use `${ENV}`; files must be
    /// readable now; messages never show the proxy URL or the key password (they may hold credentials).
    static func connectionOptions(
        _ members: [(String, JSONValue)], defaults: [(String, JSONValue)], at: String,
        environment: [String: String], problems: inout [InputProblem]
    ) -> ConnectionOptions? {
        var o = ConnectionOptions()
        var merged: [String: (JSONValue, String)] = [:]
        for (k, v) in defaults { merged[k] = (v, "defaults.\(k)") }
        for (k, v) in members where connectionKeys.contains(k) { merged[k] = (v, "\(at).\(k)") }
        func text(_ key: String) -> (String, String)? {
            guard let (v, path) = merged[key] else { return nil }
            guard let raw = v.textValue else {
                problems.append(InputProblem(path, "must be a string"))
                return nil
            }
            let field = String(path.split(separator: ".").last ?? "")
            let scope = path.hasPrefix("defaults.") ? "defaults" : at
            guard let value = expand(raw, field: field, at: scope, environment: environment, problems: &problems) else { return nil }
            return (value, path)
        }
        if let (p, path) = text("proxy") {
            if !p.isEmpty {
                switch ParsedURL.parse(p) {
                case .failure(let why): problems.append(InputProblem(path, "is not a valid proxy URL: it \(why.message)"))
                case .success(let u) where !["http", "https", "socks4", "socks4a", "socks5", "socks5h"].contains(u.scheme):
                    problems.append(InputProblem(path, "must use http, https, socks4, socks4a, socks5 or socks5h, not '\(u.scheme)'"))
                case .success(let u) where u.host.isEmpty:
                    problems.append(InputProblem(path, "is not a valid proxy URL: it has no host"))
                case .success: o.proxy = p
                }
            } else {
                o.proxy = ""  // explicitly no proxy, environment variables included
            }
        }
        if let (n, _) = text("no_proxy") { o.noProxy = n }
        func file(_ key: String) -> String? {
            guard let (f, path) = text(key) else { return nil }
            guard !f.isEmpty, access(f, R_OK) == 0 else {
                problems.append(InputProblem(path, f.isEmpty ? "is empty" : "file '\(f)' does not exist or cannot be read"))
                return nil
            }
            return f
        }
        o.caFile = file("ca_file")
        o.clientCertificateFile = file("client_cert")
        o.clientKeyFile = file("client_key")
        if let (pw, _) = text("client_key_password") { o.clientKeyPassword = pw }
        if o.clientKeyFile != nil && o.clientCertificateFile == nil, let (_, path) = merged["client_key"] {
            problems.append(InputProblem(path, "needs client_cert as well"))
        }
        if o.clientKeyPassword != nil && merged["client_key"] == nil && merged["client_cert"] == nil, let (_, path) = merged["client_key_password"] {
            problems.append(InputProblem(path, "applies only with client_cert/client_key"))
        }
        if let (v, path) = text("tls_min_version") {
            if let version = ConnectionOptions.TLSVersion(rawValue: v) {
                o.tlsMinimumVersion = version
            } else {
                problems.append(
                    InputProblem(path, "must be \(ConnectionOptions.TLSVersion.allCases.map { "'\($0.rawValue)'" }.joined(separator: " or ")), not '\(v)'"))
            }
        }
        return o.isDefault ? nil : o
    }

    /// Replaces `${NAME}` with the environment's value. A reference to an unset variable is a problem that
    /// names the variable (never a value).
    static func expand(_ s: String, field: String, at: String, environment: [String: String], problems: inout [InputProblem]) -> String? {
        guard s.contains("${") else { return s }
        var out = ""
        var rest = Substring(s)
        var ok = true
        while let open = rest.firstRange(of: "${") {
            out += rest[..<open.lowerBound]
            let after = rest[open.upperBound...]
            guard let close = after.firstIndex(of: "}") else {
                problems.append(InputProblem("\(at).\(field)", "has an unterminated ${ reference"))
                return nil
            }
            let name = String(after[..<close])
            if name.isEmpty || !name.utf8.allSatisfy({ $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) {
                problems.append(InputProblem("\(at).\(field)", "'${\(name)}' is not a valid environment variable reference"))
                ok = false
            } else if let value = environment[name] {
                out += value
            } else {
                problems.append(InputProblem("\(at).\(field)", "environment variable \(name) is not set"))
                ok = false
            }
            rest = after[after.index(after: close)...]
        }
        out += rest
        return ok ? out : nil
    }

    static func isDNSLabel(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard (1...63).contains(b.count) else { return false }
        func alnum(_ c: UInt8) -> Bool { (0x61...0x7A).contains(c) || (0x30...0x39).contains(c) }
        return alnum(b.first!) && alnum(b.last!) && b.allSatisfy { alnum($0) || $0 == 0x2D }
    }

    /// `5s`, `500ms`, `2m`, `1h` or a bare number of seconds.
    static func durationSeconds(_ v: JSONValue) -> Double? {
        if let d = v.doubleValue { return d }
        guard let s = v.stringValue else { return nil }
        for (suffix, scale) in [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)] where s.hasSuffix(suffix) {
            if let d = Double(s.dropLast(suffix.count)), d.isFinite { return d * scale }
        }
        return Double(s)
    }

    static func parseRateLimit(_ v: JSONValue) -> RateLimit? {
        if let s = v.stringValue {
            let parts = s.split(separator: "/")
            guard parts.count == 2, let n = Double(parts[0]), n > 0 else { return nil }
            let unit: Double
            switch parts[1].lowercased() {
            case "s", "sec", "second": unit = 1
            case "m", "min", "minute": unit = 60
            case "h", "hour": unit = 3600
            default: return nil
            }
            return RateLimit(requests: n, periodSeconds: unit)
        }
        guard case .object = v, let n = v["requests"]?.doubleValue, n > 0 else { return nil }
        let per = v["per"].flatMap(durationSeconds) ?? 1
        guard per > 0 else { return nil }
        var burst: Int?
        if let b = v["burst"] {
            guard let bi = b.intValue, bi >= 1 else { return nil }
            burst = bi
        }
        return RateLimit(requests: n, periodSeconds: per, burst: burst)
    }

    static func suggestion(for key: String) -> String? {
        knownKeys.map { ($0, editDistance($0, key)) }.filter { $0.1 <= 2 }.min { $0.1 < $1.1 }?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a)
        let y = Array(b)
        var prev = Array(0...y.count)
        for i in 1...max(1, x.count) where !x.isEmpty {
            var cur = [i] + [Int](repeating: 0, count: y.count)
            for j in stride(from: 1, through: y.count, by: 1) {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[y.count]
    }
}
