// URLTarget: a URL parsed and checked with libcurl's own URL parser (ParsedURL), reduced to its admission key.
import CCurl

/// A URL split by libcurl's URL parser (`curl_url`), the parser that sends the request later: the package's one
/// URL parser (target URLs, proxies, generator URLs, the reactor's admission key).
package struct ParsedURL: Sendable, Hashable {
    /// Lower case.
    package var scheme: String
    /// Lower case; an IPv6 address keeps its brackets. Empty when the URL has none (`file:///x`).
    package var host: String
    /// The port written in the URL, if any.
    package var port: Int?

    /// Loopback hosts: `localhost`, `*.localhost`, 127.0.0.0/8 and ::1.
    package var isLoopback: Bool { isLoopbackHost(host) }

    /// `text` parsed as an absolute URL; any scheme libcurl can parse, not only those it supports. A failure
    /// reads after "the URL …" ("is empty", "has an invalid port", …).
    package static func parse(_ text: String) -> Result<ParsedURL, URLProblem> {
        if text.isEmpty { return .failure(URLProblem("is empty")) }
        if text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) { return .failure(URLProblem("contains a space or control character")) }
        guard text.contains("://") else { return .failure(URLProblem("has no scheme (expected https://…)")) }
        guard let u = curl_url() else { return .failure(URLProblem("cannot be parsed (out of memory)")) }
        defer { curl_url_cleanup(u) }
        let rc = curl_url_set(u, CURLUPART_URL, text, UInt32(CURLU_NON_SUPPORT_SCHEME))
        guard rc == CURLUE_OK else {
            let why: String
            switch rc {
            case CURLUE_BAD_PORT_NUMBER: why = "has an invalid port"
            case CURLUE_NO_HOST: why = "has no host"
            case CURLUE_BAD_SCHEME: why = "has an invalid scheme"
            case CURLUE_BAD_IPV6: why = "has a malformed IPv6 address"
            default: why = "is malformed (libcurl: \(String(cString: curl_url_strerror(rc))))"
            }
            return .failure(URLProblem(why))
        }
        func part(_ p: CURLUPart, _ flags: UInt32 = 0) -> String? {
            var out: UnsafeMutablePointer<CChar>? = nil
            guard curl_url_get(u, p, &out, flags) == CURLUE_OK, let out else { return nil }
            defer { curl_free(out) }
            return String(cString: out)
        }
        let host = part(CURLUPART_HOST) ?? ""
        let port = part(CURLUPART_PORT).flatMap { Int($0) }
        return .success(ParsedURL(scheme: (part(CURLUPART_SCHEME) ?? "").lowercased(), host: host.lowercased(), port: port))
    }
}

/// Why a URL cannot be used, phrased to follow "the URL …".
package struct URLProblem: Error, Sendable, Hashable {
    package var message: String
    package init(_ message: String) { self.message = message }
}

/// The parts of a request URL the reactor needs: the admission key `scheme://host:port`.
struct URLTarget: Sendable, Hashable {
    let scheme: String
    let host: String
    let port: Int
    /// Made once per parse (the reactor caches parsed URLs), not once per request.
    let key: String

    init(scheme: String, host: String, port: Int) {
        self.scheme = scheme
        self.host = host
        self.port = port
        key = "\(scheme)://\(host):\(port)"
    }

    enum ParseError: Error {
        case malformed(String)
        case unsupportedScheme(String)
    }

    /// Parses `url` with `ParsedURL`, requiring an explicit `http` or `https` scheme and a host.
    static func parse(_ url: String) -> Result<URLTarget, ParseError> {
        switch ParsedURL.parse(url) {
        case .failure(let p):
            return .failure(.malformed("the URL \(p.message)"))
        case .success(let u):
            guard u.scheme == "http" || u.scheme == "https" else { return .failure(.unsupportedScheme(u.scheme)) }
            guard !u.host.isEmpty else { return .failure(.malformed("the URL has no host")) }
            return .success(URLTarget(scheme: u.scheme, host: u.host, port: u.port ?? (u.scheme == "https" ? 443 : 80)))
        }
    }
}

/// Whether `host` names this machine's loopback: `localhost` and `*.localhost` (RFC 6761), 127.0.0.0/8, or ::1
/// (with or without brackets). The one loopback rule of the package (targets, the service's listen address, tools).
package func isLoopbackHost(_ host: String) -> Bool {
    let h = host.lowercased()
    if h == "localhost" || h.hasSuffix(".localhost") || h == "::1" || h == "[::1]" { return true }
    let parts = h.split(separator: ".", omittingEmptySubsequences: false)
    return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { p in p.count <= 3 && (Int(p).map { (0...255).contains($0) } ?? false) }
}
