// URLTarget: a URL parsed and checked with libcurl's own URL parser, reduced to its admission key.
import CCurl

/// The parts of a request URL the reactor needs: the admission key `scheme://host:port`.
struct URLTarget: Sendable, Hashable {
    let scheme: String
    let host: String
    let port: Int
    var key: String { "\(scheme)://\(host):\(port)" }

    enum ParseError: Error {
        case malformed(String)
        case unsupportedScheme(String)
    }

    /// Parses `url` with `curl_url`, requiring an explicit `http` or `https` scheme and a host.
    static func parse(_ url: String) -> Result<URLTarget, ParseError> {
        if url.isEmpty { return .failure(.malformed("the URL is empty")) }
        if url.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
            return .failure(.malformed("the URL contains a space or control character"))
        }
        guard let u = curl_url() else { return .failure(.malformed("out of memory")) }
        defer { curl_url_cleanup(u) }
        let rc = curl_url_set(u, CURLUPART_URL, url, 0)
        if rc != CURLUE_OK {
            return .failure(.malformed(String(cString: curl_url_strerror(rc))))
        }
        func part(_ p: CURLUPart, _ flags: UInt32 = 0) -> String? {
            var out: UnsafeMutablePointer<CChar>? = nil
            guard curl_url_get(u, p, &out, flags) == CURLUE_OK, let out else { return nil }
            defer { curl_free(out) }
            return String(cString: out)
        }
        let scheme = (part(CURLUPART_SCHEME) ?? "").lowercased()
        guard scheme == "http" || scheme == "https" else {
            return .failure(.unsupportedScheme(scheme))
        }
        guard let host = part(CURLUPART_HOST), !host.isEmpty else {
            return .failure(.malformed("the URL has no host"))
        }
        let port = Int(part(CURLUPART_PORT, UInt32(CURLU_DEFAULT_PORT)) ?? "") ?? (scheme == "https" ? 443 : 80)
        return .success(URLTarget(scheme: scheme, host: host.lowercased(), port: port))
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
