// OutboxContractTests: the outbox's rules — commit, lease, order per key, supersede, dead letters, prune — run
// against a real SQLite file and a real PostgreSQL server (the same tests, two stores).
import FanoutCore
import Foundation
import GRDB
import TestSupport
import XCTest

@testable import FanoutStore

/// The contract every `DeliveryStore` keeps. Subclasses say how to open (and reopen) their store.
class OutboxContractTests: XCTestCase {
    var store: (any DeliveryStore)!

    /// A fresh, empty store (`reopen`: the same one again, as after a restart).
    func open(reopen: Bool = false) async throws -> any DeliveryStore { fatalError("subclass") }

    override func setUp() async throws {
        try XCTSkipIf(type(of: self) == OutboxContractTests.self, "the contract runs in its subclasses")
        store = try await open()
    }

    override func tearDown() async throws {
        await store?.close()
    }

    func note(_ deliveries: [NewDelivery], at t: Double = 1000) -> NewNotification {
        NewNotification(payload: Array(#"{"version":"4","alerts":[]}"#.utf8), receivedAt: t, deliveries: deliveries)
    }

    func testEnqueueCommitsAndClaimLeasesDueDeliveriesOnce() async throws {
        let ids = try await store.enqueue(
            [
                note([
                    NewDelivery(target: "a", alertIndex: 0, orderingKey: "f1", status: "firing"),
                    NewDelivery(target: "b", alertIndex: 0, orderingKey: "f1", status: "firing"),
                ])
            ], now: 1000, ttl: 3600)
        XCTAssertEqual(ids.count, 1)
        let first = try await store.claim(owner: "p1", limit: 10, now: 1000, leaseSeconds: 60)
        XCTAssertEqual(first.map(\.target).sorted(), ["a", "b"])
        XCTAssertEqual(first.first?.expiresAt, 4600)
        let again = try await store.claim(owner: "p2", limit: 10, now: 1001, leaseSeconds: 60)
        XCTAssertTrue(again.isEmpty, "a leased delivery is not claimed twice")
        let payloads = try await store.payloads([ids[0]])
        XCTAssertEqual(payloads[ids[0]].map { String(decoding: $0, as: UTF8.self) }, #"{"version":"4","alerts":[]}"#)

        // Reopening (a restart) keeps everything; the dead process's leases are taken over (SQLite: at once,
        // since one process owns the file; PostgreSQL: when they run out, since other replicas may be alive).
        await store.close()
        store = try await open(reopen: true)
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
        try await store.complete(
            [DeliveryCompletion(id: leased[0].id, decision: .retry(dueAt: 1005, countsAsAttempt: true, reason: "503"))], owner: "p", now: 1003)
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
        _ = try await store.enqueue(
            [note([NewDelivery(target: "r", alertIndex: 0, orderingKey: "fp", status: "resolved", isRootlyResolve: true)])], now: 1001, ttl: 3600)
        let counts = try await store.counts()
        XCTAssertEqual(counts.byTarget["r"]?["superseded"], 2, "the unsent create and the resolve that needed it")
        XCTAssertEqual(counts.unfinished, 0)
        let claimed = try await store.claim(owner: "p", limit: 10, now: 1002, leaseSeconds: 60)
        XCTAssertTrue(claimed.isEmpty)
    }

    func testSupersedeInsideOneBatchIsTheSameAsOneByOne() async throws {
        // Two states of one key in the same write: the later one wins, as if stored one after the other.
        _ = try await store.enqueue(
            [
                note([
                    NewDelivery(target: "r", alertIndex: 0, orderingKey: "fp", status: "firing"),
                    NewDelivery(target: "r", alertIndex: 1, orderingKey: "fp", status: "resolved", isRootlyResolve: true),
                    NewDelivery(target: "a", alertIndex: 0, orderingKey: "x", status: "firing"),
                    NewDelivery(target: "a", alertIndex: 1, orderingKey: "x", status: "resolved"),
                ])
            ], now: 1000, ttl: 3600)
        var counts = try await store.counts()
        XCTAssertEqual(counts.byTarget["r"]?["superseded"], 2, "the unsent create and the resolve that needed it")
        XCTAssertEqual(counts.byTarget["a"]?["superseded"], 1)
        XCTAssertEqual(counts.byTarget["a"]?["pending"], 1)
        let claimed = try await store.claim(owner: "p", limit: 10, now: 1001, leaseSeconds: 60)
        XCTAssertEqual(claimed.map(\.alertIndex), [1], "only the newest state of x is sent")

        // Many writers of one key at once share batches: whatever order they commit in, one stays pending.
        let shared: any DeliveryStore = store
        let notes = (0..<40).map { i in note([NewDelivery(target: "c", alertIndex: i, orderingKey: "k", status: i % 2 == 0 ? "firing" : "resolved")]) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in notes { group.addTask { _ = try await shared.enqueue([n], now: 1002, ttl: 3600) } }
            try await group.waitForAll()
        }
        counts = try await store.counts()
        XCTAssertEqual(counts.byTarget["c"]?["pending"], 1)
        XCTAssertEqual(counts.byTarget["c"]?["superseded"], 39)
    }

    func testDeadLettersReplayAndPurge() async throws {
        _ = try await store.enqueue(
            [
                note([
                    NewDelivery(target: "a", alertIndex: 0, orderingKey: "k1", status: "firing"),
                    NewDelivery(target: "b", alertIndex: 0, orderingKey: "k1", status: "firing"),
                ])
            ], now: 1000, ttl: 3600)
        let claimed = try await store.claim(owner: "p", limit: 10, now: 1000, leaseSeconds: 60)
        try await store.complete(
            claimed.map { DeliveryCompletion(id: $0.id, decision: .dead(reason: "http_status: HTTP 400: bad"), httpStatus: 400) },
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

    /// The process that stores a delivery may lease it in the same write and send it at once, but only the
    /// oldest unfinished delivery of its target and key: a newer one waits pending until the older is done.
    func testEnqueueLeasesWhatIsFirstInLineOnly() async throws {
        let lease = EnqueueLease(owner: "me", seconds: 60)
        let first = try await store.enqueue(
            [
                note([
                    NewDelivery(target: "a", alertIndex: 0, orderingKey: "k1", status: "firing"),
                    NewDelivery(target: "b", alertIndex: 0, orderingKey: "k1", status: "firing"),
                ])
            ], now: 1000, ttl: 3600, lease: lease)
        XCTAssertEqual(first.ids.count, 1)
        XCTAssertEqual(first.leased.map(\.target).sorted(), ["a", "b"])
        XCTAssertEqual(first.leased.first?.notificationID, first.ids[0])
        XCTAssertEqual(first.leased.first?.expiresAt, 4600)
        XCTAssertEqual(first.leased.first?.attempts, 0)
        var counts = try await store.counts()
        XCTAssertEqual(counts.total("leased"), 2)
        let none = try await store.claim(owner: "other", limit: 10, now: 1001, leaseSeconds: 60)
        XCTAssertTrue(none.isEmpty, "leased at enqueue: nobody else claims them while the lease runs")

        // A newer state of a key that is in flight waits (pending), and so does everything after it; a new key goes at once.
        let second = try await store.enqueue(
            [
                note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "k1", status: "resolved")], at: 1002),
                note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "k2", status: "firing")], at: 1002),
            ], now: 1002, ttl: 3600, lease: lease)
        XCTAssertEqual(second.ids.count, 2)
        XCTAssertEqual(second.leased.map(\.orderingKey), ["k2"])
        XCTAssertEqual(second.leased.first?.notificationID, second.ids[1])
        counts = try await store.counts()
        XCTAssertEqual(counts.total("pending"), 1)
        XCTAssertEqual(counts.total("leased"), 3)
        let blocked = try await store.claim(owner: "me", limit: 10, now: 1003, leaseSeconds: 60)
        XCTAssertTrue(blocked.isEmpty, "the resolve of k1 waits for the firing in flight")
        let a1 = try XCTUnwrap(first.leased.first { $0.target == "a" })
        try await store.complete([DeliveryCompletion(id: a1.id, decision: .delivered, httpStatus: 200)], owner: "me", now: 1004)
        let next = try await store.claim(owner: "me", limit: 10, now: 1004, leaseSeconds: 60)
        XCTAssertEqual(next.map(\.orderingKey), ["k1"])
        XCTAssertEqual(next.first?.notificationID, second.ids[0])

        // Two states of one key in one write: the older is superseded, the newer leased.
        let third = try await store.enqueue(
            [
                note([NewDelivery(target: "c", alertIndex: 0, orderingKey: "k3", status: "firing")], at: 1005),
                note([NewDelivery(target: "c", alertIndex: 0, orderingKey: "k3", status: "resolved")], at: 1005),
            ], now: 1005, ttl: 3600, lease: lease)
        XCTAssertEqual(third.leased.map(\.notificationID), [third.ids[1]])
        // Without a lease nothing is leased.
        let fourth = try await store.enqueue(
            [note([NewDelivery(target: "d", alertIndex: 0, orderingKey: "k4", status: "firing")], at: 1006)], now: 1006, ttl: 3600, lease: nil)
        XCTAssertTrue(fourth.leased.isEmpty)
        counts = try await store.counts()
        XCTAssertEqual(counts.byTarget["c"]?["superseded"], 1)
        XCTAssertEqual(counts.byTarget["d"]?["pending"], 1)
    }

    func testOpenCountsLeaveOutFinishedRecords() async throws {
        _ = try await store.enqueue(
            [
                note([
                    NewDelivery(target: "a", alertIndex: 0, orderingKey: "k1", status: "firing"),
                    NewDelivery(target: "a", alertIndex: 1, orderingKey: "k2", status: "firing"),
                    NewDelivery(target: "a", alertIndex: 2, orderingKey: "k3", status: "firing"),
                    NewDelivery(target: "b", alertIndex: 0, orderingKey: "k1", status: "firing"),
                ])
            ], now: 1000, ttl: 3600)
        let claimed = try await store.claim(owner: "p", limit: 3, now: 1000, leaseSeconds: 60)
        XCTAssertEqual(claimed.count, 3)
        try await store.complete([DeliveryCompletion(id: claimed[0].id, decision: .delivered, httpStatus: 200)], owner: "p", now: 1001)
        try await store.complete([DeliveryCompletion(id: claimed[1].id, decision: .dead(reason: "gone"))], owner: "p", now: 1001)
        let all = try await store.counts(includingFinished: true)
        let open = try await store.counts(includingFinished: false)
        XCTAssertEqual(all.total("delivered"), 1)
        XCTAssertEqual(open.total("delivered"), 0, "finished records are not read for the gauges")
        for state in ["pending", "leased", "dead"] {
            XCTAssertEqual(open.total(state), all.total(state), state)
            for t in ["a", "b"] { XCTAssertEqual(open.byTarget[t]?[state], all.byTarget[t]?[state], "\(t) \(state)") }
        }
        XCTAssertEqual(open.total("pending") + open.total("leased") + open.total("dead"), 3)
        XCTAssertEqual(open.oldestPendingCreatedAt, 1000)
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
        store = try await open(reopen: true)
        let v7 = try await store.rootlyIDs(["r|fp", "r|other"])
        XCTAssertEqual(v7, ["r|fp": "01HX"])
    }

}

final class SQLiteStoreTests: OutboxContractTests {
    var path = ""

    override func open(reopen: Bool) async throws -> any DeliveryStore {
        if !reopen { path = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-\(UUID().uuidString).db").path }
        return try SQLiteStore(path: path)
    }

    func testReopeningTheFileGivesBackLeasesAtOnce() async throws {
        _ = try await store.enqueue([note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "k", status: "firing")])], now: 1000, ttl: 3600)
        let first = try await store.claim(owner: "crashed", limit: 10, now: 1000, leaseSeconds: 60)
        XCTAssertEqual(first.count, 1)
        await store.close()
        store = try await open(reopen: true)
        let again = try await store.claim(owner: "restarted", limit: 10, now: 1001, leaseSeconds: 60)
        XCTAssertEqual(again.map(\.id), first.map(\.id), "not after the 60 s lease: the file's only process died")
    }

    /// Outcomes commit with synchronous=NORMAL, and the writer is FULL again right after, so what a 2xx promises
    /// (an enqueue) is still synced to disk.
    func testOutcomesDoNotLeaveTheWriterUnsynced() async throws {
        let sqlite = try XCTUnwrap(store as? SQLiteStore)
        func writerSync() async throws -> Int { try await sqlite.pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 } }
        let full = 2
        let before = try await writerSync()
        XCTAssertEqual(before, full)
        _ = try await store.enqueue([note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "k", status: "firing")])], now: 1000, ttl: 3600)
        let claimed = try await store.claim(owner: "p", limit: 10, now: 1000, leaseSeconds: 60)
        try await store.complete(claimed.map { DeliveryCompletion(id: $0.id, decision: .delivered, httpStatus: 200) }, owner: "p", now: 1001)
        let delivered = try await store.counts().total("delivered")
        XCTAssertEqual(delivered, 1, "the outcome was committed")
        let after = try await writerSync()
        XCTAssertEqual(after, full, "FULL again for the next enqueue")
    }

    /// The statements run per delivery or per second use an index, never a scan of every retained row (schema
    /// version 1 let the planner scan every pending row per enqueue, which turned a backlog quadratic).
    func testHotStatementsUseTheirIndexes() async throws {
        let sqlite = try XCTUnwrap(store as? SQLiteStore)
        try await sqlite.pool.read { db in
            for sql in SQLiteStore.SQL.planned {
                let nulls = StatementArguments(Array(repeating: nil as String?, count: sql.filter { $0 == "?" }.count))
                let plan = try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: nulls).map { $0["detail"] as String }
                XCTAssertFalse(plan.isEmpty, sql)
                for step in plan {
                    XCTAssertFalse(["SCAN deliveries", "SCAN d", "SCAN o"].contains(step), "a table scan in \(sql): \(plan)")
                    XCTAssertFalse(step.contains("deliveries_finished") && !sql.hasPrefix("DELETE"), "\(sql): \(plan)")
                }
            }
        }
    }

    /// Commits only append to the WAL; the background connection copies it into the database file (the writer's
    /// own checkpoint would wait for 8,192 pages, far more than this test writes).
    func testTheWALIsCheckpointedInTheBackground() async throws {
        let before = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        for i in 0..<400 {
            _ = try await store.enqueue(
                [note((0..<5).map { NewDelivery(target: "t\($0)", alertIndex: 0, orderingKey: "k\(i)", status: "firing") })], now: 1000, ttl: 3600)
        }
        let wal = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int ?? 0
        XCTAssertGreaterThan(wal, 100 * 4096, "the writes went to the WAL")
        // The database file grows only by checkpoints; no commit here passed the writer's threshold.
        let file = path
        try await waitUntil(seconds: 10) { ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0) > before + 20 * 4096 }
    }

    func testAnUnusableFileIsAClearError() {
        XCTAssertThrowsError(try SQLiteStore(path: "/nonexistent-dir/x.db")) { error in
            XCTAssertTrue("\(error)".contains("cannot open the SQLite store '/nonexistent-dir/x.db'"), "\(error)")
        }
    }
}

final class PostgresStoreTests: OutboxContractTests {
    nonisolated(unsafe) static var cluster: PostgresCluster?
    var database = ""

    override class func tearDown() {
        cluster?.destroy()
        cluster = nil
    }

    override func open(reopen: Bool) async throws -> any DeliveryStore {
        if PostgresStoreTests.cluster == nil { PostgresStoreTests.cluster = try PostgresCluster() }
        let cluster = PostgresStoreTests.cluster!
        if !reopen {
            // A database per test, so every test starts empty.
            database = "t\(UUID().uuidString.prefix(8).lowercased())"
            let admin = try await PostgresStore.open(url: cluster.url)
            try await admin.execute("CREATE DATABASE \(database)")
            await admin.close()
        }
        return try await PostgresStore.open(url: cluster.url.replacingOccurrences(of: "/fanout?", with: "/\(database)?"))
    }

    /// Another replica claims the older state of a key while this one stores a newer state: the enqueue waits for
    /// that claim's commit and then sees the older one in flight, so the newer waits pending instead of being
    /// leased at once (two states of one key in flight could arrive in either order).
    func testAClaimRacingAnEnqueueIsSeenInFlight() async throws {
        let pg = try XCTUnwrap(store as? PostgresStore)
        _ = try await store.enqueue([note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "k", status: "firing")])], now: 1000, ttl: 3600)
        let (updated, signal) = AsyncStream<Void>.makeStream()
        let claim = Task {
            try await pg.client.withTransaction(logger: pg.logger) { conn in
                try await drain(
                    conn.query(
                        "UPDATE deliveries SET state = 'leased', lease_owner = 'other', lease_until = 9999999999999, due_at = 9999999999999 WHERE state = 'pending'",
                        logger: pg.logger))
                signal.yield()
                try await Task.sleep(for: .milliseconds(400))  // the row stays locked, not yet committed, meanwhile
            }
        }
        for await _ in updated { break }
        let newer = try await store.enqueue(
            [note([NewDelivery(target: "a", alertIndex: 0, orderingKey: "k", status: "resolved")], at: 1001)], now: 1001, ttl: 3600,
            lease: EnqueueLease(owner: "me", seconds: 60))
        try await claim.value
        XCTAssertTrue(newer.leased.isEmpty, "the older state is in flight at the other replica: the newer one waits")
        let counts = try await store.counts()
        XCTAssertEqual(counts.total("leased"), 1)
        XCTAssertEqual(counts.total("pending"), 1)
        XCTAssertEqual(counts.total("superseded"), 0, "a delivery in flight is not superseded")
    }

    func testAnUnreachableServerIsAClearError() async throws {
        do {
            _ = try await PostgresStore.open(url: "postgres://postgres:pw-secret@127.0.0.1:1/none?sslmode=disable", deadline: .seconds(3))
            XCTFail("nothing listens on port 1")
        } catch {
            XCTAssertTrue("\(error)".contains("cannot open the PostgreSQL store postgres://postgres:<redacted>@127.0.0.1:1/none"), "\(error)")
            XCTAssertFalse("\(error)".contains("pw-secret"))
        }
    }
}
