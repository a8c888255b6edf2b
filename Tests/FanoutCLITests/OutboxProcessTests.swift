// OutboxProcessTests: the built `fanout` with a SQLite outbox — SIGKILL mid-stream loses nothing answered 2xx, the
// dead letters CLI, and `fanout publish --store` keeping Rootly ids across runs.
import AlertFanout
import CurlReactor
import Foundation
import MockTarget
import Synchronization
import TestSupport
import XCTest

final class OutboxProcessTests: XCTestCase {
    func file(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
    }

    func config(_ yaml: String) throws -> String {
        let path = file("serve") + ".yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    override func setUpWithError() throws {
        let fanout = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fanout")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: fanout.path), "fanout is not built next to the tests")
    }

    func testSIGKILLMidStreamLosesNothingThatWasAnswered2xx() async throws {
        let sink = try MockTarget()
        defer { sink.stop() }
        let db = file("outbox") + ".db"
        let cfg = try config("targets:\n  - {name: sink, type: webhook, url: '\(sink.url("/sink?delay_ms=5"))'}\n")
        let first = try ServeProcess(config: cfg, extra: ["--store", "sqlite:\(db)"])
        try await first.waitUntilListening()
        let accepted = AcceptedNames()
        let port = first.port
        let client = try CurlReactor()
        // Four senders post alerts with unique names until the server is killed under them.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sender in 0..<4 {
                group.addTask {
                    for i in 0..<400 {
                        let name = "K\(sender)x\(i)"
                        let r = await client.execute(
                            HTTPRequest(
                                method: "POST", url: "http://127.0.0.1:\(port)/webhook",
                                body: Array(payload(name).utf8), timeout: .seconds(5)))
                        guard let status = try? r.get().status else { return }  // the server is gone
                        if status == 202 { accepted.names.withLock { $0.append(name) } }
                    }
                }
            }
            group.addTask {
                try await waitUntil { accepted.names.withLock { $0.count } >= 150 }
                first.signal(SIGKILL)
            }
            try await group.waitForAll()
        }
        _ = try await first.exitStatus(within: 10)
        await first.close()
        let acked = accepted.names.withLock { $0 }
        XCTAssertGreaterThanOrEqual(acked.count, 150)

        // Restart on the same file: everything answered 202 is delivered at least once.
        let second = try ServeProcess(config: cfg, extra: ["--store", "sqlite:\(db)"])
        try await second.waitUntilListening()
        let delivered: @Sendable () -> Set<String> = {
            Set(sink.requests.compactMap { try? JSONValue.parse($0.body) }.compactMap { $0["data"]?["labels"]?["alertname"]?.stringValue })
        }
        try await waitUntil { delivered().isSuperset(of: acked) }
        let missing = Set(acked).subtracting(delivered())
        XCTAssertTrue(missing.isEmpty, "\(missing.count) alerts answered 202 were never delivered: \(missing.sorted().prefix(10))")
        second.signal(SIGTERM)
        let code = try await second.exitStatus(within: 15)
        XCTAssertEqual(code, 0, second.stderr.withLock { $0 })
        await second.close()
        await client.shutdown(.drain)
    }

    func testDeadLettersFromTheCommandLine() async throws {
        let bad = try MockTarget(routes: ["/bad": .text("no such hook", status: 400)])
        defer { bad.stop() }
        let db = file("dlq") + ".db"
        let cfg = try config("targets:\n  - {name: picky, type: alertmanager, url: '\(bad.url("/bad"))'}\n")
        let serve = try ServeProcess(config: cfg, extra: ["--store", "sqlite:\(db)"])
        try await serve.waitUntilListening()
        let status = await serve.call("POST", "/webhook", body: payload("Rejected"))
        XCTAssertEqual(status, 202)
        try await waitUntil { bad.requestCount >= 1 }
        serve.signal(SIGTERM)
        _ = try await serve.exitStatus(within: 15)
        await serve.close()

        let list = try runFanout(["dlq", "list", "--store", "sqlite:\(db)", "--json"])
        XCTAssertEqual(list.status, 0, list.err)
        let letters = try XCTUnwrap(try JSONValue.parse(list.out).arrayValue)
        XCTAssertEqual(letters.count, 1, list.out)
        XCTAssertEqual(letters.first?["target"]?.stringValue, "picky")
        XCTAssertEqual(letters.first?["last_status"]?.intValue, 400)
        let id = try XCTUnwrap(letters.first?["id"]?.intValue)
        let replay = try runFanout(["dlq", "replay", "--store", "sqlite:\(db)", "--id", String(id)])
        XCTAssertEqual(replay.status, 0, replay.err)
        XCTAssertTrue(replay.out.contains("replayed 1 dead letter"), replay.out)
        let none = try runFanout(["dlq", "replay", "--store", "sqlite:\(db)", "--id", "999999"])
        XCTAssertEqual(none.status, 1)
        let table = try runFanout(["dlq", "list", "--store", "sqlite:\(db)"])
        XCTAssertTrue(table.out.contains("no dead letters"), "the replayed letter is pending again: \(table.out)")
        let purge = try runFanout(["dlq", "purge", "--store", "sqlite:\(db)"])
        XCTAssertEqual(purge.status, 0)
        let badStore = try runFanout(["dlq", "list", "--store", "mysql://x"])
        XCTAssertEqual(badStore.status, 64)
        XCTAssertTrue(badStore.err.contains("is not a store"), badStore.err)
    }

    func testPublishWithAStoreResolvesARootlyAlertCreatedByAnEarlierRun() async throws {
        let rootly = try MockTarget(routes: ["/v1/alerts": VendorSimulators.rootly()])
        defer { rootly.stop() }
        let db = file("rootly") + ".db"
        let targets = try config("targets:\n  - {name: rootly, type: rootly, url: '\(rootly.baseURL)', api_key: k}\n")
        let alert = #"{"labels":{"alertname":"Outage"},"startsAt":"2024-05-01T12:00:00Z"}"#
        let resolved = #"{"labels":{"alertname":"Outage"},"status":"resolved","startsAt":"2024-05-01T12:00:00Z","endsAt":"2024-05-01T12:10:00Z"}"#
        let create = try runFanout(["publish", "--targets", targets, "--alerts", "-", "--store", "sqlite:\(db)"], stdin: alert)
        XCTAssertEqual(create.status, 0, create.out + create.err)
        let withoutStore = try runFanout(["publish", "--targets", targets, "--alerts", "-"], stdin: resolved)
        XCTAssertEqual(withoutStore.status, 2, "without the store the id is unknown: \(withoutStore.out)")
        XCTAssertTrue(withoutStore.out.contains("missing_state"), withoutStore.out)
        let resolve = try runFanout(["publish", "--targets", targets, "--alerts", "-", "--store", "sqlite:\(db)"], stdin: resolved)
        XCTAssertEqual(resolve.status, 0, resolve.out + resolve.err)
        XCTAssertTrue(rootly.requests.last?.path.hasSuffix("/resolve") ?? false)
    }
}

/// A one-alert Alertmanager payload named `name`.
func payload(_ name: String) -> String {
    #"{"version":"4","status":"firing","alerts":[{"labels":{"alertname":"\#(name)"},"startsAt":"2024-05-01T12:00:00Z"}]}"#
}

/// Names answered 202, shared by the senders.
final class AcceptedNames: Sendable {
    let names = Mutex<[String]>([])
}

final class ReplicaProcessTests: XCTestCase {
    override func setUpWithError() throws {
        let fanout = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fanout")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: fanout.path), "fanout is not built next to the tests")
    }

    /// Two `fanout serve` replicas on one PostgreSQL outbox; one is killed mid-stream. Every alert answered 202 is
    /// delivered, and no delivery is worked by two replicas at once (the sink counts requests per alert).
    func testTwoReplicasShareThePostgresOutboxAndSurviveAKill() async throws {
        let cluster = try PostgresCluster()
        defer { cluster.destroy() }
        let sink = try MockTarget()
        defer { sink.stop() }
        let cfgPath = FileManager.default.temporaryDirectory.appendingPathComponent("replicas-\(UUID().uuidString).yaml").path
        try "server: {lease: 2s}\ntargets:\n  - {name: sink, type: webhook, url: '\(sink.url("/sink?delay_ms=2"))'}\n"
            .write(toFile: cfgPath, atomically: true, encoding: .utf8)
        let a = try ServeProcess(config: cfgPath, extra: ["--store", cluster.url])
        let b = try ServeProcess(config: cfgPath, extra: ["--store", cluster.url])
        try await a.waitUntilListening()
        try await b.waitUntilListening()
        let accepted = AcceptedNames()
        let client = try CurlReactor()
        let ports = [a.port, b.port]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sender in 0..<4 {
                group.addTask {
                    for i in 0..<150 {
                        let name = "R\(sender)x\(i)"
                        let port = ports[(sender + i) % 2]
                        let r = await client.execute(
                            HTTPRequest(
                                method: "POST", url: "http://127.0.0.1:\(port)/webhook",
                                body: Array(payload(name).utf8), timeout: .seconds(10)))
                        if (try? r.get().status) == 202 { accepted.names.withLock { $0.append(name) } }
                    }
                }
            }
            group.addTask {
                try await waitUntil { accepted.names.withLock { $0.count } >= 100 }
                a.signal(SIGKILL)
            }
            try await group.waitForAll()
        }
        _ = try await a.exitStatus(within: 10)
        let acked = Set(accepted.names.withLock { $0 })
        XCTAssertGreaterThanOrEqual(acked.count, 300, "replica B kept accepting after A died")
        @Sendable func received() -> [String: Int] {
            var n: [String: Int] = [:]
            for r in sink.requests { if let name = (try? JSONValue.parse(r.body))?["data"]?["labels"]?["alertname"]?.stringValue { n[name, default: 0] += 1 } }
            return n
        }
        try await waitUntil { Set(received().keys).isSuperset(of: acked) }
        let counts = received()
        let missing = acked.subtracting(counts.keys)
        XCTAssertTrue(missing.isEmpty, "\(missing.count) accepted alerts were never delivered: \(missing.sorted().prefix(10))")
        // Only what A had in flight when it died can be sent twice (its lease ran out and B took over).
        let repeated = counts.filter { $0.value > 1 }
        XCTAssertLessThanOrEqual(repeated.count, 20, "deliveries worked twice: \(repeated.sorted { $0.key < $1.key }.prefix(10))")
        XCTAssertTrue(counts.values.allSatisfy { $0 <= 2 }, "no delivery is worked by two replicas over and over")
        let stats = await b.call("GET", "/api/v2/publishing/stats")
        XCTAssertEqual(stats, 200)
        b.signal(SIGTERM)
        let code = try await b.exitStatus(within: 15)
        XCTAssertEqual(code, 0, b.stderr.withLock { $0 })
        await a.close()
        await b.close()
        await client.shutdown(.drain)
    }

    /// PostgreSQL restarted under a running service: 503 while it is away (so Alertmanager retries), nothing
    /// accepted is lost, and it works again once the database is back.
    func testTheDatabaseGoingAwayAnswers503AndNothingAcceptedIsLost() async throws {
        let cluster = try PostgresCluster()
        defer { cluster.destroy() }
        let sink = try MockTarget()
        defer { sink.stop() }
        let cfgPath = FileManager.default.temporaryDirectory.appendingPathComponent("pgdown-\(UUID().uuidString).yaml").path
        try "targets:\n  - {name: sink, type: webhook, url: '\(sink.url("/sink"))'}\n".write(toFile: cfgPath, atomically: true, encoding: .utf8)
        let serve = try ServeProcess(config: cfgPath, extra: ["--store", cluster.url])
        try await serve.waitUntilListening()
        let before = await serve.call("POST", "/webhook", body: payload("Before"))
        XCTAssertEqual(before, 202)
        try cluster.stop()
        let during = await serve.call("POST", "/webhook", body: payload("During"))
        XCTAssertEqual(during, 503, "never a 2xx for what could not be stored")
        let ready = await serve.call("GET", "/-/ready")
        XCTAssertEqual(ready, 503)
        try cluster.start()
        var after = 0
        for _ in 0..<100 where after != 202 {
            after = await serve.call("POST", "/webhook", body: payload("After"))
            if after != 202 { try await Task.sleep(for: .milliseconds(100)) }
        }
        XCTAssertEqual(after, 202, "accepting again once the database is back")
        try await waitUntil {
            let names = Set(sink.requests.compactMap { (try? JSONValue.parse($0.body))?["data"]?["labels"]?["alertname"]?.stringValue })
            return names.isSuperset(of: ["Before", "After"])
        }
        serve.signal(SIGTERM)
        _ = try await serve.exitStatus(within: 15)
        await serve.close()
    }
}
