// WebhookFormatter: a generic JSON webhook, signed per the Standard Webhooks specification when a secret is set.
import Crypto

/// The alert (and its classification) as JSON in the Standard Webhooks envelope `{type, timestamp, data}`,
/// with `Idempotency-Key` and `webhook-id` headers derived from the alert, and — when the target has a
/// `secret` — `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>` over
/// `{webhook-id}.{webhook-timestamp}.{body}` (Standard Webhooks 1.0.0). A secret with the `whsec_` prefix is
/// base64 after the prefix, as in the reference libraries; any other secret is used as raw bytes.
///
/// The id is `msg_` + the first 32 hex digits of SHA-256(`fingerprint:status:startsAt`): the same for every
/// retry of one notification, different for a later firing of the same alert. Reading responses follows the
/// specification's advice: 2xx delivered; 408, 425, 429 and 5xx retryable; 3xx, 410 and other 4xx permanent.
public struct WebhookFormatter: AlertFormatter {
    public init() {}

    public func request(for alert: Alert, target: Target, context: FormatContext) throws(FormatError) -> OutboundRequest {
        let id = WebhookFormatter.messageID(alert)
        var data: [(String, JSONValue)] = [
            ("fingerprint", .string(alert.fingerprint)),
            ("status", .string(alert.status.rawValue)),
            ("labels", alert.labelsJSON),
            ("annotations", alert.annotationsJSON),
            ("startsAt", .string(alert.startsAt.rfc3339)),
        ]
        if let e = alert.endsAt { data.append(("endsAt", .string(e.rfc3339))) }
        data.append(("generatorURL", .string(alert.generatorURL)))
        if let c = alert.classification { data.append(("classification", c.json)) }
        let envelope: JSONValue = .object([
            ("type", .string("alert.\(alert.status.rawValue)")),
            ("timestamp", .string(context.now.rfc3339)),
            ("data", .object(data)),
        ])
        let body = envelope.serialized()
        var headers = [
            HTTPHeaderPair("Content-Type", "application/json"),
            HTTPHeaderPair("Idempotency-Key", id),
            HTTPHeaderPair("webhook-id", id),
            HTTPHeaderPair("webhook-timestamp", String(context.now.seconds)),
        ]
        if let secret = target.secret {
            headers.append(HTTPHeaderPair("webhook-signature", try WebhookFormatter.signature(
                secret: secret.reveal(), id: id, timestamp: context.now.seconds, body: body)))
        }
        headers += target.headers.map { HTTPHeaderPair($0.0, $0.1) }
        return OutboundRequest(url: target.url, headers: headers, body: body, idempotent: true, action: "post")
    }

    public func verdict(status: Int, body: [UInt8], retryAfter: String?) -> DeliveryVerdict {
        let text = bodyExcerpt(body)
        return defaultVerdict(status: status, message: text.isEmpty ? "HTTP \(status)" : text, retryAfter: retryAfter)
    }

    /// `msg_` + 32 hex digits of SHA-256(`fingerprint:status:startsAt`).
    public static func messageID(_ alert: Alert) -> String {
        let digest = SHA256.hash(data: Array("\(alert.fingerprint):\(alert.status.rawValue):\(alert.startsAt.rfc3339)".utf8))
        return "msg_" + digest.prefix(16).map { b in
            let h = String(b, radix: 16)
            return h.count == 1 ? "0" + h : h
        }.joined()
    }

    /// `v1,<base64(HMAC-SHA256(key, "id.timestamp.body"))>`.
    public static func signature(secret: String, id: String, timestamp: Int64, body: [UInt8]) throws(FormatError) -> String {
        let keyBytes: [UInt8]
        if secret.hasPrefix("whsec_") {
            guard let decoded = base64Decode(String(secret.dropFirst(6))), !decoded.isEmpty else {
                throw FormatError(.missingSecret, "the webhook secret starts with whsec_ but the rest is not base64")
            }
            keyBytes = decoded
        } else {
            keyBytes = Array(secret.utf8)
        }
        var content = Array("\(id).\(timestamp).".utf8)
        content.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: keyBytes))
        return "v1," + base64Encode(Array(mac))
    }
}

private let base64Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

/// Standard base64 with padding.
func base64Encode(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i + 3 <= bytes.count {
        let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
        out += [base64Alphabet[Int(n >> 18 & 63)], base64Alphabet[Int(n >> 12 & 63)], base64Alphabet[Int(n >> 6 & 63)], base64Alphabet[Int(n & 63)]]
        i += 3
    }
    let rest = bytes.count - i
    if rest == 1 {
        let n = UInt32(bytes[i]) << 16
        out += [base64Alphabet[Int(n >> 18 & 63)], base64Alphabet[Int(n >> 12 & 63)], 0x3D, 0x3D]
    } else if rest == 2 {
        let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
        out += [base64Alphabet[Int(n >> 18 & 63)], base64Alphabet[Int(n >> 12 & 63)], base64Alphabet[Int(n >> 6 & 63)], 0x3D]
    }
    return String(decoding: out, as: UTF8.self)
}

/// Standard base64 (padding optional); nil on any other character.
func base64Decode(_ text: String) -> [UInt8]? {
    var values: [UInt8] = []
    for c in text.utf8 {
        switch c {
        case 0x41...0x5A: values.append(c - 0x41)
        case 0x61...0x7A: values.append(c - 0x61 + 26)
        case 0x30...0x39: values.append(c - 0x30 + 52)
        case 0x2B: values.append(62)
        case 0x2F: values.append(63)
        case 0x3D: continue
        default: return nil
        }
    }
    guard values.count % 4 != 1 else { return nil }
    var out: [UInt8] = []
    var i = 0
    while i < values.count {
        let chunk = values[i..<min(i + 4, values.count)]
        var n: UInt32 = 0
        for (k, v) in chunk.enumerated() { n |= UInt32(v) << (18 - 6 * k) }
        out.append(UInt8(n >> 16 & 0xFF))
        if chunk.count > 2 { out.append(UInt8(n >> 8 & 0xFF)) }
        if chunk.count > 3 { out.append(UInt8(n & 0xFF)) }
        i += 4
    }
    return out
}
