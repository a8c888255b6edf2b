import CurlReactor
import FanoutCore
import Foundation
import MockTarget
import TestSupport
import XCTest

// ConnectionOptionsTests: proxy and TLS keys of the targets file reach libcurl — a loopback TLS MockTarget with
// its own CA that requires a client certificate, and a loopback MockTarget standing in as an HTTP proxy.
@testable import AlertFanout

/// A throw-away PKI made with the `openssl` command: a CA, a server certificate for 127.0.0.1 and a client
/// certificate, all signed by the CA, plus a second CA that signed nothing we use.
struct TestPKI {
    let dir: String
    var caFile: String { dir + "/ca.pem" }
    var otherCAFile: String { dir + "/other-ca.pem" }
    var serverCert: String { dir + "/server.pem" }
    var serverKey: String { dir + "/server.key" }
    var clientCert: String { dir + "/client.pem" }
    var clientKey: String { dir + "/client.key" }

    static func make() throws -> TestPKI {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pki-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let script = """
            set -e
            cd '\(dir)'
            key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
            key ca.key; key other-ca.key; key server.key; key client.key
            openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj '/CN=AlertFanout Test CA'
            openssl req -x509 -new -key other-ca.key -out other-ca.pem -days 2 -subj '/CN=Unrelated CA'
            printf 'basicConstraints=CA:FALSE\\nsubjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > server.ext
            printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n' > client.ext
            openssl req -new -key server.key -out server.csr -subj '/CN=127.0.0.1'
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null
            openssl req -new -key client.key -out client.csr -subj '/CN=alertfanout-client'
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext 2>/dev/null
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("openssl could not make a test PKI (exit \(p.terminationStatus))") }
        return TestPKI(dir: dir)
    }
}

final class ConnectionOptionsTests: XCTestCase {
    func load(_ yaml: String) throws -> TargetsConfig {
        try TargetsConfigLoader.load(text: yaml, file: "test.yaml", environment: ["KEY_PASSWORD": "unused"])
    }

    func testTLSKeysReachLibcurlAgainstAServerThatRequiresAClientCertificate() async throws {
        let pki = try TestPKI.make()
        let server = try MockTarget(tls: MockTLS(certificateFile: pki.serverCert, keyFile: pki.serverKey, clientCAFile: pki.caFile))
        defer { server.stop() }
        let url = server.url("/hook")
        XCTAssertTrue(url.hasPrefix("https://127.0.0.1:"))
        let config = try load(
            """
            defaults:
              ca_file: \(pki.caFile)
            targets:
              - {name: mtls, type: webhook, url: '\(url)', client_cert: \(pki.clientCert), client_key: \(pki.clientKey), tls_min_version: 1.2}
              - {name: no-client-cert, type: webhook, url: '\(url)'}
              - {name: wrong-ca, type: webhook, url: '\(url)', ca_file: \(pki.otherCAFile), client_cert: \(pki.clientCert), client_key: \(pki.clientKey)}
            """)
        XCTAssertEqual(config["mtls"]?.connection?.caFile, pki.caFile, "defaults apply")
        XCTAssertEqual(config["mtls"]?.connection?.tlsMinimumVersion, .tls1_2, "YAML's number 1.2 is read as the version")
        XCTAssertEqual(config["wrong-ca"]?.connection?.caFile, pki.otherCAFile, "a target's own value wins")
        let publisher = try FanoutPublisher(targets: config, resilience: ResilienceConfig(retry: .init(maxAttempts: 1)))
        let report = try await publisher.publish(Samples.firingFull, options: .init(deadline: .seconds(5)))
        XCTAssertEqual(report.results.map(\.outcome), [.succeeded, .failed, .failed], "\(report.results)")
        XCTAssertEqual(report.results[0].httpStatus, 200)
        XCTAssertNotNil(report.results[1].errorKind, "without a client certificate the server refuses the handshake")
        XCTAssertEqual(report.results[2].errorKind, .tls, "a server certificate from an untrusted CA fails verification: \(report.results[2])")
        XCTAssertEqual(server.requests.count, 1, "only the mutually authenticated target got through")
        XCTAssertEqual(server.requests.first?.path, "/hook")

        // The same handles then serve a plain request with libcurl's defaults again (options are restored).
        let plain = try MockTarget()
        defer { plain.stop() }
        let r2 = await publisher.reactor.execute(HTTPRequest(url: plain.url("/after"), timeout: .seconds(5)))
        XCTAssertEqual(try r2.get().status, 200)
        await assertDrained(publisher)
    }

    func testTLSMinimumVersionIsEnforced() async throws {
        let pki = try TestPKI.make()
        let server = try MockTarget(tls: MockTLS(certificateFile: pki.serverCert, keyFile: pki.serverKey, maximumVersion: .tls12))
        defer { server.stop() }
        let config = try load(
            """
            targets:
              - {name: tls12-ok, type: webhook, url: '\(server.url("/a"))', ca_file: \(pki.caFile)}
              - {name: needs-tls13, type: webhook, url: '\(server.url("/b"))', ca_file: \(pki.caFile), tls_min_version: '1.3'}
            """)
        let publisher = try FanoutPublisher(targets: config, resilience: ResilienceConfig(retry: .init(maxAttempts: 1)))
        let report = try await publisher.publish(Samples.firingFull, options: .init(deadline: .seconds(5)))
        XCTAssertEqual(report.results.map(\.outcome), [.succeeded, .failed], "\(report.results)")
        XCTAssertEqual(report.results[1].errorKind, .tls)
        XCTAssertEqual(server.requests.map(\.path), ["/a"])
        await assertDrained(publisher)
    }

    func testProxyKeyRoutesRequestsThroughTheProxyAndIsRedacted() async throws {
        let proxy = try MockTarget()
        defer { proxy.stop() }
        // Port 9 on 127.0.0.2 has no server: only a proxy can answer for it.
        let config = try load(
            """
            targets:
              - {name: via-proxy, type: webhook, url: 'http://127.0.0.2:9/hook', proxy: 'http://user:s3cret-proxy-pw@127.0.0.1:\(proxy.port)', no_proxy: 'example.invalid'}
              - {name: no-proxy, type: webhook, url: 'http://127.0.0.2:9/hook', proxy: ''}
            """)
        XCTAssertEqual(config["no-proxy"]?.connection?.proxy, "", "an empty proxy is kept: it turns environment proxies off")
        let publisher = try FanoutPublisher(targets: config, resilience: ResilienceConfig(retry: .init(maxAttempts: 1)))
        let report = try await publisher.publish(Samples.firingFull, options: .init(deadline: .seconds(5)))
        XCTAssertEqual(report.results.map(\.outcome), [.succeeded, .failed], "\(report.results)")
        XCTAssertEqual(report.results[1].errorKind, .refused)
        let seen = try XCTUnwrap(proxy.requests.first)
        XCTAssertEqual(proxy.requests.count, 1)
        XCTAssertEqual(seen.uri, "http://127.0.0.2:9/hook", "an HTTP proxy gets the absolute-form target")
        XCTAssertEqual(seen.header("proxy-authorization"), "Basic " + Data("user:s3cret-proxy-pw".utf8).base64EncodedString())
        XCTAssertFalse("\(report.results)".contains("s3cret-proxy-pw"))
        await assertDrained(publisher)
    }

    /// Environment proxies are read as a reactor starts. Set then, a request without a proxy of its own goes
    /// through it (an empty proxy of its own still turns it off); unset then, requests go direct, also after the
    /// variable appears (libcurl is not asked to look the variables up per request).
    func testEnvironmentProxyIsReadAsTheReactorStarts() async throws {
        let proxy = try MockTarget()
        defer { proxy.stop() }
        defer { unsetenv("http_proxy") }
        // Port 9 on 127.0.0.2 has no server: only a proxy can answer for it.
        setenv("http_proxy", "http://127.0.0.1:\(proxy.port)", 1)
        let withEnvironment = try CurlReactor()
        let viaEnvironment = await withEnvironment.execute(HTTPRequest(url: "http://127.0.0.2:9/env"))
        XCTAssertEqual(try viaEnvironment.get().status, 200, "\(viaEnvironment)")
        let ownEmpty = await withEnvironment.execute(HTTPRequest(url: "http://127.0.0.2:9/own-empty", connection: ConnectionOptions(proxy: "")))
        XCTAssertEqual(ownEmpty.failureKind, .refused, "\(ownEmpty)")
        await withEnvironment.shutdown(.drain)

        unsetenv("http_proxy")
        let withoutEnvironment = try CurlReactor()
        setenv("http_proxy", "http://127.0.0.1:\(proxy.port)", 1)
        let direct = await withoutEnvironment.execute(HTTPRequest(url: "http://127.0.0.2:9/direct"))
        XCTAssertEqual(direct.failureKind, .refused, "the environment as the reactor started (no proxy) holds: \(direct)")
        let own = await withoutEnvironment.execute(
            HTTPRequest(url: "http://127.0.0.2:9/own", connection: ConnectionOptions(proxy: "http://127.0.0.1:\(proxy.port)")))
        XCTAssertEqual(try own.get().status, 200, "a request's own proxy is used: \(own)")
        let ownExcluded = await withoutEnvironment.execute(
            HTTPRequest(url: "http://127.0.0.2:9/excluded", connection: ConnectionOptions(proxy: "http://127.0.0.1:\(proxy.port)", noProxy: "127.0.0.2")))
        XCTAssertEqual(ownExcluded.failureKind, .refused, "a request's own no-proxy list is honoured: \(ownExcluded)")
        await withoutEnvironment.shutdown(.drain)
        XCTAssertEqual(proxy.requests.map(\.uri), ["http://127.0.0.2:9/env", "http://127.0.0.2:9/own"])
    }

    func testBadConnectionKeysAreReportedWithoutValues() throws {
        let yaml = """
            defaults:
              tls_min_version: '1.1'
              colour: blue
            targets:
              - {name: a, type: webhook, url: 'https://a.example', ca_file: /nonexistent/ca.pem, proxy: 'ftp://u:pw-secret@p:1'}
              - {name: b, type: webhook, url: 'https://b.example', client_key: /etc/hostname, client_key_password: '${KEY_PASSWORD}'}
            """
        XCTAssertThrowsError(try load(yaml)) { error in
            let text = "\(error)"
            for fragment in [
                "defaults.tls_min_version: must be '1.2' or '1.3', not '1.1'", "defaults.colour: unknown key",
                "targets[0] (a).ca_file: file '/nonexistent/ca.pem' does not exist or cannot be read",
                "targets[0] (a).proxy: must use http, https, socks4, socks4a, socks5 or socks5h, not 'ftp'",
                "targets[1] (b).client_key: needs client_cert as well",
            ] {
                XCTAssertTrue(text.contains(fragment), "missing '\(fragment)' in:\n\(text)")
            }
            XCTAssertFalse(text.contains("pw-secret"), "the proxy's credentials never appear")
        }
    }
}
