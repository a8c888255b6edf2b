// SimpleURL: just enough URL parsing to validate target URLs (scheme, host, port) without Foundation or curl.
import CurlReactor

/// `scheme://[userinfo@]host[:port][/path][?query][#fragment]`, split and checked.
struct SimpleURL: Sendable, Hashable {
    var scheme: String
    var host: String
    var port: Int?
    var rest: String

    /// Nil with a reason when `text` is not an absolute http(s)-style URL.
    static func parse(_ text: String) -> Result<SimpleURL, URLProblem> {
        if text.isEmpty { return .failure(.init("is empty")) }
        if text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) { return .failure(.init("contains a space or control character")) }
        guard let sep = text.firstRange(of: "://") else { return .failure(.init("has no scheme (expected https://…)")) }
        let scheme = text[..<sep.lowerBound].lowercased()
        guard !scheme.isEmpty, scheme.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2B || $0 == 0x2D || $0 == 0x2E })
        else {
            return .failure(.init("has an invalid scheme"))
        }
        var remainder = text[sep.upperBound...]
        let authorityEnd = remainder.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? remainder.endIndex
        var authority = remainder[..<authorityEnd]
        remainder = remainder[authorityEnd...]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return .failure(.init("has an unterminated IPv6 address")) }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { return .failure(.init("has text after the IPv6 address")) }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { return .failure(.init("has no host")) }
        var port: Int?
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else { return .failure(.init("has an invalid port '\(portText)'")) }
            port = p
        }
        return .success(SimpleURL(scheme: scheme, host: host.lowercased(), port: port, rest: String(remainder)))
    }

    /// Loopback hosts: `localhost`, `*.localhost`, 127.0.0.0/8 and ::1.
    var isLoopback: Bool { isLoopbackHost(host) }
}

struct URLProblem: Error, Sendable, Hashable {
    var message: String
    init(_ message: String) { self.message = message }
}
