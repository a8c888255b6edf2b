// ServeProcessTests: the built `fanout serve` as an operator runs it — SIGTERM drains and exits 0, a second
// signal exits at once, SIGHUP reloads, a bad config exits 64.
import AlertFanout
import CurlReactor
import Foundation
import MockTarget
import Synchronization
import TestSupport
import XCTest

/// A running `fanout serve` child process whose standard error is collected as it arrives.
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    let stderr = Mutex("")
    let client: CurlReactor
    private(set) var port = 0

    /// `extra` defaults to `--store none` (answers after delivering); pass a `--store` to test the outbox.
    init(config: String, extra: [String] = ["--store", "none"]) throws {
        let fanout = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fanout")
        process.executableURL = fanout
        process.arguments = ["serve", "--config", config, "--listen", "127.0.0.1:0"] + extra
        client = try CurlReactor()
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        err.fileHandleForReading.readabilityHandler = { [self] h in
            let data = h.availableData
            if !data.isEmpty { self.stderr.withLock { $0 += String(decoding: data, as: UTF8.self) } }
        }
        try process.run()
    }

    /// Waits for the "listening" log line and reads the bound port from it.
    func waitUntilListening() async throws {
        for _ in 0..<1000 {
            let text = stderr.withLock { $0 }
            if let r = text.firstRange(of: /address=127\.0\.0\.1:(\d+)/) {
                port = Int(text[r].split(separator: ":").last ?? "") ?? 0
                return
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTFail("fanout serve did not start listening: \(stderr.withLock { $0 })")
    }

    func call(_ method: String, _ path: String, body: String? = nil) async -> Int {
        let r = await client.execute(
            HTTPRequest(
                method: method, url: "http://127.0.0.1:\(port)\(path)", body: body.map { Array($0.utf8) },
                timeout: .seconds(20)))
        return (try? r.get().status) ?? -1
    }

    func signal(_ s: Int32) { kill(process.processIdentifier, s) }

    /// The exit status, waiting at most `seconds` (then the child is killed and the test fails).
    func exitStatus(within seconds: Double, file: StaticString = #filePath, line: UInt = #line) async throws -> Int32 {
        for _ in 0..<Int(seconds * 100) {
            if !process.isRunning { return process.terminationStatus }
            try await Task.sleep(for: .milliseconds(10))
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTFail("fanout serve did not exit within \(seconds) s: \(stderr.withLock { $0 })", file: file, line: line)
        return -1
    }

    func close() async {
        (process.standardError as? Pipe)?.fileHandleForReading.readabilityHandler = nil
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        await client.shutdown(.drain)
    }
}

private let payload = #"{"version":"4","status":"firing","alerts":[{"labels":{"alertname":"Slow"},"startsAt":"2024-05-01T12:00:00Z"}]}"#

final class ServeProcessTests: XCTestCase {
    func config(_ yaml: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("serve-\(UUID().uuidString).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    override func setUpWithError() throws {
        let fanout = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fanout")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: fanout.path), "fanout is not built next to the tests")
    }

    func testSIGTERMDrainsAcceptedDeliveriesAndExitsZero() async throws {
        let slow = try MockTarget()
        defer { slow.stop() }
        let serve = try ServeProcess(config: try config("targets:\n  - {name: slow, type: webhook, url: '\(slow.url("/s?delay_ms=700"))'}\n"))
        try await serve.waitUntilListening()
        let readyAtStart = await serve.call("GET", "/-/ready")
        XCTAssertEqual(readyAtStart, 200)
        async let accepted = serve.call("POST", "/webhook", body: payload)
        try await waitUntil { slow.requestCount == 1 }
        serve.signal(SIGTERM)
        try await waitUntil { serve.stderr.withLock { $0.contains("draining") } }
        let ready = await serve.call("GET", "/-/ready")
        XCTAssertEqual(ready, 503, "readiness fails while draining")
        let refused = await serve.call("POST", "/webhook", body: payload)
        XCTAssertEqual(refused, 503, "new requests are refused while draining")
        let first = await accepted
        XCTAssertEqual(first, 200, "the delivery accepted before SIGTERM finished")
        let status = try await serve.exitStatus(within: 15)
        XCTAssertEqual(status, 0, serve.stderr.withLock { $0 })
        XCTAssertEqual(slow.requestCount, 1)
        await serve.close()
    }

    func testASecondSignalExitsAtOnce() async throws {
        let hang = try MockTarget()
        defer { hang.stop() }
        let serve = try ServeProcess(
            config: try config("targets:\n  - {name: hang, type: webhook, url: '\(hang.url("/hang"))'}\n"),
            extra: ["--store", "none", "--grace", "60s"])
        try await serve.waitUntilListening()
        async let stuck = serve.call("POST", "/webhook", body: payload)
        try await waitUntil { hang.requestCount == 1 }
        serve.signal(SIGTERM)
        try await waitUntil { serve.stderr.withLock { $0.contains("draining") } }
        serve.signal(SIGINT)
        let status = try await serve.exitStatus(within: 5)
        XCTAssertEqual(status, 1, "a second signal does not wait for the 60 s grace")
        _ = await stuck
        await serve.close()
    }

    func testSIGHUPReloadsAndABadConfigExits64() async throws {
        let t = try MockTarget()
        defer { t.stop() }
        let path = try config("targets:\n  - {name: one, type: webhook, url: '\(t.url("/one"))'}\n")
        let serve = try ServeProcess(config: path)
        try await serve.waitUntilListening()
        try "targets:\n  - {name: one, type: webhook, url: '\(t.url("/one"))'}\n  - {name: two, type: webhook, url: '\(t.url("/two"))'}\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        serve.signal(SIGHUP)
        try await waitUntil { serve.stderr.withLock { $0.contains("configuration reloaded") } }
        let delivered = await serve.call("POST", "/webhook", body: payload)
        XCTAssertEqual(delivered, 200)
        XCTAssertEqual(t.requests.map(\.path).sorted(), ["/one", "/two"], "the reloaded target receives deliveries")
        serve.signal(SIGTERM)
        let code = try await serve.exitStatus(within: 15)
        XCTAssertEqual(code, 0)
        await serve.close()

        let bad = try ServeProcess(config: try config("server: {listen: nowhere}\ntargets:\n  - {name: x, type: webhook}\n"))
        let badCode = try await bad.exitStatus(within: 10)
        XCTAssertEqual(badCode, 64)
        let err = bad.stderr.withLock { $0 }
        XCTAssertTrue(err.contains("server.listen") && err.contains("targets[0] (x).url"), err)
        await bad.close()
    }
}
