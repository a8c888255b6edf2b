// VendorSimulators: MockTarget routes shaped like PagerDuty, Slack, Rootly, an Alertmanager receiver and a signed
// webhook endpoint; each checks what it receives the way the vendor would and answers like the vendor.
import Crypto
import Foundation
import NIOConcurrencyHelpers

/// Vendor-shaped behaviours for loopback demos and tests. Each rejects malformed payloads with the vendor's
/// own status and message, so a formatter regression shows up as failures.
public enum VendorSimulators {
    /// PagerDuty Events API v2 at `/v2/enqueue`: 202 `{"status":"success",...}`, or 400 with `errors`.
    /// Events over 512 000 bytes are refused ("Events API payloads are limited to 512 KB"; PagerDuty's actual
    /// status and message for that are not documented, so these are a guess).
    public static func pagerDuty(delay: Duration = .zero) -> MockBehavior {
        .custom { req in
            guard let obj = json(req.body) else { return pdError(["JSON parse error"], delay) }
            var errors: [String] = []
            if req.body.count > 512_000 { errors.append("Event object is too large") }
            if (obj["routing_key"] as? String)?.count != 32 { errors.append("Length of 'routing_key' is incorrect (should be 32 characters)") }
            let action = obj["event_action"] as? String
            if !["trigger", "acknowledge", "resolve"].contains(action ?? "") { errors.append("'event_action' is invalid") }
            let dedup = obj["dedup_key"] as? String ?? ""
            if action == "trigger" {
                let p = obj["payload"] as? [String: Any] ?? [:]
                let summary = p["summary"] as? String ?? ""
                if summary.isEmpty || summary.unicodeScalars.count > 1024 { errors.append("'payload.summary' is missing or too long") }
                if (p["source"] as? String ?? "").isEmpty { errors.append("'payload.source' is missing") }
                if !["critical", "error", "warning", "info"].contains(p["severity"] as? String ?? "") { errors.append("'payload.severity' is invalid") }
            } else if dedup.isEmpty {
                errors.append("'dedup_key' is required for \(action ?? "this") events")
            }
            if dedup.count > 255 { errors.append("'dedup_key' is longer than 255 characters") }
            if !errors.isEmpty { return pdError(errors, delay) }
            return .respond(
                status: 202, body: body(["status": "success", "message": "Event processed", "dedup_key": dedup]),
                headers: [("Content-Type", "application/json")], delay: delay)
        }
    }

    /// Slack incoming webhook: 200 `ok`, or 400 `no_text` / `invalid_blocks` / `invalid_payload`. Block Kit's
    /// limits are checked in UTF-16 code units (Slack does not name its unit; this is the strictest reading
    /// short of bytes).
    public static func slack(delay: Duration = .zero) -> MockBehavior {
        .custom { req in
            guard let obj = json(req.body) else { return .text("invalid_payload", status: 400, delay: delay) }
            guard let text = obj["text"] as? String, !text.isEmpty else { return .text("no_text", status: 400, delay: delay) }
            let blocks = obj["blocks"] as? [[String: Any]] ?? []
            var ok = blocks.count <= 50
            for b in blocks {
                switch b["type"] as? String {
                case "header": ok = ok && (((b["text"] as? [String: Any])?["text"] as? String)?.utf16.count ?? 999) <= 150
                case "section":
                    if let t = (b["text"] as? [String: Any])?["text"] as? String { ok = ok && t.utf16.count <= 3000 }
                    let fields = b["fields"] as? [[String: Any]] ?? []
                    ok = ok && fields.count <= 10 && fields.allSatisfy { (($0["text"] as? String)?.utf16.count ?? 0) <= 2000 }
                case "context": ok = ok && ((b["elements"] as? [Any])?.count ?? 0) <= 10
                default: ok = false
                }
            }
            return ok ? .text("ok", delay: delay) : .text("invalid_blocks", status: 400, delay: delay)
        }
    }

    /// Rootly Alerts API: `POST /v1/alerts` → 201 with a new id; `POST /v1/alerts/{id}/resolve` → 200, 404 when unknown.
    public static func rootly(delay: Duration = .zero) -> MockBehavior {
        let ids = NIOLockedValueBox<(next: Int, open: Set<String>)>((1, []))
        return .custom { req in
            guard req.header("authorization")?.hasPrefix("Bearer ") == true else {
                return rootlyError(401, "Unauthorized", delay)
            }
            guard req.header("content-type") == "application/vnd.api+json" else { return rootlyError(415, "Unsupported media type", delay) }
            let parts = req.path.split(separator: "/")
            if parts.count == 4, parts[0] == "v1", parts[1] == "alerts", parts[3] == "resolve" {
                let id = String(parts[2])
                let known = ids.withLockedValue { $0.open.remove(id) != nil }
                return known
                    ? .respond(status: 200, body: body(["data": ["id": id, "type": "alerts"]]), delay: delay)
                    : rootlyError(404, "Not found", delay)
            }
            guard req.path == "/v1/alerts", let obj = json(req.body), let data = obj["data"] as? [String: Any],
                data["type"] as? String == "alerts", let attrs = data["attributes"] as? [String: Any]
            else {
                return rootlyError(422, "data.type must be alerts", delay)
            }
            guard !(attrs["summary"] as? String ?? "").isEmpty, !(attrs["source"] as? String ?? "").isEmpty else {
                return rootlyError(422, "summary and source are required", delay)
            }
            let id = ids.withLockedValue { s -> String in
                let id = "r-\(s.next)"
                s.next += 1
                s.open.insert(id)
                return id
            }
            return .respond(status: 201, body: body(["data": ["id": id, "type": "alerts"]]), delay: delay)
        }
    }

    /// An Alertmanager webhook receiver: 200 for a version "4" envelope with alerts, 400 otherwise.
    public static func alertmanagerReceiver(delay: Duration = .zero) -> MockBehavior {
        .custom { req in
            guard let obj = json(req.body), obj["version"] as? String == "4", let alerts = obj["alerts"] as? [[String: Any]], !alerts.isEmpty,
                alerts.allSatisfy({ ($0["fingerprint"] as? String)?.count == 16 && $0["labels"] is [String: Any] })
            else {
                return .text("bad alertmanager payload", status: 400, delay: delay)
            }
            return .text("", delay: delay)
        }
    }

    /// A Standard Webhooks endpoint that verifies `webhook-signature` with `secret`: 200, or 401. The key is read
    /// as the reference libraries read it: optional `whsec_` prefix stripped, the rest base64 (padded or not).
    public static func signedWebhook(secret: String, delay: Duration = .zero) -> MockBehavior {
        .custom { req in
            guard let id = req.header("webhook-id"), let ts = req.header("webhook-timestamp"), let sig = req.header("webhook-signature") else {
                return .text("missing webhook headers", status: 401, delay: delay)
            }
            let stripped = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
            let padded = stripped + String(repeating: "=", count: (4 - stripped.utf8.count % 4) % 4)
            let key = Array(Data(base64Encoded: padded) ?? Data())
            let mac = HMAC<SHA256>.authenticationCode(for: Array("\(id).\(ts).".utf8) + req.body, using: SymmetricKey(data: key))
            let expected = "v1," + Data(mac).base64EncodedString()
            guard sig.split(separator: " ").contains(where: { $0 == expected }) else {
                return .text("signature mismatch", status: 401, delay: delay)
            }
            return .text("ok", delay: delay)
        }
    }

    private static func json(_ bytes: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    private static func body(_ obj: [String: Any]) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data())
    }

    private static func pdError(_ errors: [String], _ delay: Duration) -> MockBehavior {
        .respond(status: 400, body: body(["status": "invalid event", "message": "Event object is invalid", "errors": errors]), delay: delay)
    }

    private static func rootlyError(_ status: Int, _ title: String, _ delay: Duration) -> MockBehavior {
        .respond(status: status, body: body(["errors": [["title": title, "status": String(status)]]]), delay: delay)
    }
}
