// SQLiteStoreTests: the outbox's rules on a real SQLite file — commit, lease, order per key, supersede, dead letters, prune.
import FanoutCore
@testable import FanoutStore
import Foundation
import XCTest

final class SQLiteStoreTests: XCTestCase {
    var store: SQLiteStore!
    var path: String!

    override func setUp() async throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-\(UUID().uuidString).db").path
        store = try SQLiteStore(path: path)
    }

    override func tearDown() async throws {
        await store.close()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    func note(_ deliveries: [NewDelivery], at t: Double = 1000) -> NewNotification {
        NewNotification(payload: Array(#"{"version":"4","alerts":[]}"#.utf8), receivedAt: t, deliveries: deliveries)
    }

    func testEnqueueCommitsAndClaimLeasesDueDeliveriesOnce() async throws {
        let ids = try await store.enqueue([note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "f1", status: "firing"),
                                                NewDelivery(target: "b", alertIndex: 0, orderingKey: "f1", status: "firing")])], now: 1000, ttl: 3600)
        XCTAssertEqual(ids.count, 1)
        let first = try await store.claim(owner: "p1", limit: 10, now: 1000, leaseSeconds: 60)
        XCTAssertEqual(first.map(\.target).sorted(), ["a", "b"])
        XCTAssertEqual(first.first?.expiresAt, 4600)
        let again = try await store.claim(owner: "p2", limit: 10, now: 1001, leaseSeconds: 60)
        XCTAssertTrue(again.isEmpty, "a leased delivery is not claimed twice")
        let payloads = try await store.payloads([ids[0]])
        XCTAssertEqual(payloads[ids[0]].map { String(decoding: $0, as: UTF8.self) }, #"{"version":"4","alerts":[]}"#)

        // Reopening the file (a restart) keeps everything.
        await store.close()
        store = try SQLiteStore(path: path)
        let expired = try await store.claim(owner: "p2", limit: 10, now: 1061, leaseSeconds: 60)
        XCTAssertEqual(expired.count, 2, "leases of a dead process run out and the deliveries are taken over")
        try await store.complete([DeliveryCompletion(id: expired[0].id, decision: .delivered, httpStatus: 200)], owner: "p1", now: 1062)
        var counts = try await store.counts()
        XCTAssertEqual(counts.total("delivered"), 0, "a completion from an owner that lost the lease is ignored")
        try await store.complete(expired.map { DeliveryCompletion(id: $0.id, decision: .delivered, httpStatus: 200) }, owner: "p2", now: 1062)
        counts = try await store.counts()
        XCTAssertEqual(counts.total("delivered"), 2)
        XCTAssertEqual(counts.unfinished, 0)
    }

    func testANewerStateSupersedesAnUnsentOlderOneAndOrderIsKept() async throws {
        _ = try await store.enqueue([note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "fp", status: "firing")])], now: 1000, ttl: 3600)
        let leased = try await store.claim(owner: "p", limit: 10, now: 1000, leaseSeconds: 60)
        XCTAssertEqual(leased.count, 1)
        // A resolved arrives while the firing is being sent: it waits for it (never delivered before it).
        _ = try await store.enqueue([note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "fp", status: "resolved")])], now: 1001, ttl: 3600)
        let blocked = try await store.claim(owner: "p", limit: 10, now: 1002, leaseSeconds: 60)
        XCTAssertTrue(blocked.isEmpty, "an older state of the same key is still unfinished")
        try await store.complete([DeliveryCompletion(id: leased[0].id, decision: .retry(dueAt: 1005, countsAsAttempt: true, reason: "503"))], owner: "p", now: 1003)
        // Still pending (retrying): a third state supersedes the pending ones.
        _ = try await store.enqueue([note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "fp", status: "firing")])], now: 1004, ttl: 3600)
        let counts = try await store.counts()
        XCTAssertEqual(counts.total("superseded"), 2, "the retrying firing and the waiting resolved are superseded by the newest state")
        let next = try await store.claim(owner: "p", limit: 10, now: 1010, leaseSeconds: 60)
        XCTAssertEqual(next.count, 1)
        XCTAssertEqual(next.first?.orderingKey, "fp")
    }

    func testARootlyResolveWhoseCreateNeverHappenedIsNotSent() async throws {
        _ = try await store.enqueue([note([NewDelivery(target: "r", alertIndex: 0, orderingKey: "fp", status: "firing")])], now: 1000, ttl: 3600)
        _ = try await store.enqueue([note([NewDelivery(target: "r", alertIndex: 0, orderingKey: "fp", status: "resolved", isRootlyResolve: true)])], now: 1001, ttl: 3600)
        let counts = try await store.counts()
        XCTAssertEqual(counts.byTarget["r"]?["superseded"], 2, "the unsent create and the resolve that needed it")
        XCTAssertEqual(counts.unfinished, 0)
        let claimed = try await store.claim(owner: "p", limit: 10, now: 1002, leaseSeconds: 60)
        XCTAssertTrue(claimed.isEmpty)
    }

    func testDeadLettersReplayAndPurge() async throws {
        _ = try await store.enqueue([note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "k1", status: "firing"),
                                           NewDelivery(target: "b", alertIndex: 0, orderingKey: "k1", status: "firing")])], now: 1000, ttl: 3600)
        let claimed = try await store.claim(owner: "p", limit: 10, now: 1000, leaseSeconds: 60)
        try await store.complete(claimed.map { DeliveryCompletion(id: $0.id, decision: .dead(reason: "http_status: HTTP 400: bad"), httpStatus: 400) },
                                 owner: "p", now: 1001)
        let dead = try await store.deadLetters(target: nil, limit: 10)
        XCTAssertEqual(dead.count, 2)
        XCTAssertEqual(dead.first?.lastError, "http_status: HTTP 400: bad")
        XCTAssertEqual(dead.first?.lastStatus, 400)
        let v1 = try await store.deadLetters(target: "a", limit: 10)
        XCTAssertEqual(v1.count, 1)
        let one = dead.first { $0.target == "a" }!
        let v2 = try await store.replay(id: one.id, target: nil, now: 2000, ttl: 3600)
        XCTAssertEqual(v2, 1)
        let again = try await store.claim(owner: "p", limit: 10, now: 2000, leaseSeconds: 60)
        XCTAssertEqual(again.map(\.id), [one.id])
        XCTAssertEqual(again.first?.attempts, 0)
        XCTAssertEqual(again.first?.expiresAt, 5600, "a replay gets a new TTL")
        let v3 = try await store.purge(target: "b")
        XCTAssertEqual(v3, 1)
        let v4 = try await store.deadLetters(target: nil, limit: 10)
        XCTAssertEqual(v4.count, 0)
    }

    func testPruneRemovesOnlyOldFinishedRecords() async throws {
        _ = try await store.enqueue([note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "old", status: "firing")], at: 1000)], now: 1000, ttl: 3600)
        _ = try await store.enqueue([note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "new", status: "firing")], at: 1000)], now: 1000, ttl: 3600)
        let claimed = try await store.claim(owner: "p", limit: 10, now: 1000, leaseSeconds: 60)
        let old = claimed.first { $0.orderingKey == "old" }!
        try await store.complete([DeliveryCompletion(id: old.id, decision: .delivered)], owner: "p", now: 1000)
        let v5 = try await store.prune(before: 999)
        XCTAssertEqual(v5, 0)
        let v6 = try await store.prune(before: 1001)
        XCTAssertEqual(v6, 1)
        let counts = try await store.counts()
        XCTAssertEqual(counts.total("delivered"), 0)
        XCTAssertEqual(counts.total("leased"), 1, "unfinished deliveries are never pruned")
    }

    func testRootlyIDsPersist() async throws {
        try await store.rememberRootlyID(target: "r", fingerprint: "fp", id: "01HX", now: 1000)
        await store.close()
        store = try SQLiteStore(path: path)
        let v7 = try await store.rootlyIDs(["r|fp", "r|other"])
        XCTAssertEqual(v7, ["r|fp": "01HX"])
    }

    func testAnUnusableFileIsAClearError() {
        XCTAssertThrowsError(try SQLiteStore(path: "/nonexistent-dir/x.db")) { error in
            XCTAssertTrue("\(error)".contains("cannot open the SQLite store '/nonexistent-dir/x.db'"), "\(error)")
        }
    }
}
