// ServiceConfigTests: the `server:` section of `fanout serve`'s config file — defaults, every key, clear errors.
import AlertFanout
import Foundation
import XCTest

@testable import FanoutServer

final class ServiceConfigTests: XCTestCase {
    func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("svc-\(UUID().uuidString)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testDefaultsAndEveryKey() throws {
        let plain = try ServiceConfigLoader.load(text: "targets:\n  - {name: a, type: webhook, url: 'http://127.0.0.1:9/x'}\n", file: "f", environment: [:])
        XCTAssertEqual(plain.server, ServerSettings())
        XCTAssertEqual(plain.server.port, 9095)
        XCTAssertEqual(plain.server.host, "127.0.0.1")
        XCTAssertEqual(plain.server.maxBodyBytes, 8 << 20)
        let token = try file("tok-123\n")
        let pw = try file("pw-456")
        let config = try ServiceConfigLoader.load(
            text: """
                server:
                  listen: 0.0.0.0:8080
                  auth:
                    bearer_token_file: \(token)
                    basic_auth: {username: am, password_file: \(pw)}
                    protect_metrics: true
                  max_body_bytes: 4096
                  publish_deadline: 3s
                  idle_timeout: 5s
                targets:
                  - {name: a, type: webhook, url: 'http://127.0.0.1:9/x'}
                """, file: "f", environment: [:])
        let s = config.server
        XCTAssertEqual(s.host, "0.0.0.0")
        XCTAssertEqual(s.port, 8080)
        XCTAssertEqual(s.bearerToken?.reveal(), "tok-123", "a trailing newline in the token file is not part of the token")
        XCTAssertEqual(s.basicAuth?.username, "am")
        XCTAssertEqual(s.basicAuth?.password.reveal(), "pw-456")
        XCTAssertTrue(s.protectMetrics)
        XCTAssertEqual(s.maxBodyBytes, 4096)
        XCTAssertEqual(s.publishDeadlineSeconds, 3)
        XCTAssertEqual(s.idleTimeoutSeconds, 5)
        XCTAssertFalse(s.isLoopback)
        XCTAssertTrue(s.requiresAuth)
    }

    func testEveryProblemIsReportedWithItsField() throws {
        XCTAssertThrowsError(
            try ServiceConfigLoader.load(
                text: """
                    server:
                      listen: nowhere
                      auth: {bearer_token_file: /nonexistent/token, protect_metrics: maybe}
                      tls: {cert_file: /nonexistent/cert.pem}
                      max_body_bytes: 10
                      colour: red
                    targets:
                      - {name: a, type: webhook}
                    """, file: "svc.yaml", environment: [:])
        ) { error in
            let text = "\(error)"
            for fragment in [
                "svc.yaml", "server.listen: must be HOST:PORT", "server.auth.bearer_token_file: file '/nonexistent/token' does not exist",
                "server.auth.protect_metrics: must be true or false", "server.tls: must be a mapping with cert_file and key_file",
                "server.max_body_bytes: must be a whole number of bytes", "server.colour: unknown key",
                "targets[0] (a).url: is required",
            ] {
                XCTAssertTrue(text.contains(fragment), "missing '\(fragment)' in:\n\(text)")
            }
        }
    }

    func testListenForms() {
        XCTAssertEqual(ServiceConfigLoader.parseListen(":9095")?.host, "127.0.0.1")
        XCTAssertEqual(ServiceConfigLoader.parseListen("[::1]:80")?.host, "::1")
        XCTAssertEqual(ServiceConfigLoader.parseListen("127.0.0.1:0")?.port, 0)
        XCTAssertNil(ServiceConfigLoader.parseListen("127.0.0.1:70000"))
        XCTAssertNil(ServiceConfigLoader.parseListen("127.0.0.1"))
    }
}
