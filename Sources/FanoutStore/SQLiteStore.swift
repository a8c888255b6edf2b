// SQLiteStore: the embedded outbox on SQLite (GRDB, WAL, synchronous=FULL) with group commit; one process per file.
import FanoutCore
import Foundation
import GRDB

/// The default store: one SQLite file in WAL mode. `synchronous = FULL` makes every commit survive a power
/// loss, not only a crash; group commit keeps that to one sync per batch of concurrent requests. GRDB runs
/// writes on its own serial queue and reads on a pool of its own threads, never on the caller's.
/// One dispatcher per file: SQLite has no row locks to share work between processes (use PostgreSQL for that).
/// Opening the file therefore gives back every lease a previous process held (it died: after a crash the
/// deliveries it was sending are sent again at once).
public final class SQLiteStore: DeliveryStore {
    let pool: DatabasePool
    public let path: String
    private let enqueuer: GroupCommitter<EnqueueItem, Enqueued>
    private let completer: GroupCommitter<CompleteItem, Bool>
    /// A second connection that copies the WAL into the database file in the background (see `init`).
    private let checkpoints: DatabaseQueue
    private let checkpointer: Task<Void, Never>

    struct EnqueueItem: Sendable {
        var notification: NewNotification
        var now: Double
        var ttl: Double
        var lease: EnqueueLease? = nil
    }

    struct CompleteItem: Sendable {
        var completion: DeliveryCompletion
        var owner: String
        var now: Double
    }

    /// Opens (creating if needed) and migrates the database at `path`.
    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(10)
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: config)
            // GRDB sets WAL databases to synchronous=NORMAL after opening (which survives a crash but can lose
            // the last commits on power loss); a 2xx promises durability, so the writer goes back to FULL.
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                // SQLite checkpoints inside the commit that passes 1,000 WAL pages, so now and then one accept
                // waited for 4 MB to be copied and synced. A background connection checkpoints instead (passive:
                // it never blocks the writer); the writer's own checkpoint stays as a bound (32 MB) in case the
                // background one falls behind.
                try db.execute(sql: "PRAGMA wal_autocheckpoint = 8192")
            }
            try SQLiteStore.migrator.migrate(pool)
            // One process per file: a lease still held now belongs to a process that died, so its deliveries
            // are due again at once rather than when the lease would have run out.
            try pool.write { db in
                try db.execute(sql: SQL.releaseAllLeases)
            }
            checkpoints = try DatabaseQueue(path: path, configuration: config)
        } catch {
            throw StoreError("cannot open the SQLite store '\(path)': \(error)")
        }
        self.pool = pool
        checkpointer = Task.detached { [checkpoints] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                _ = try? await checkpoints.writeWithoutTransaction { db in try db.checkpoint(.passive) }
            }
        }
        enqueuer = GroupCommitter(maxBatch: 512) { items in
            try await pool.write { db in try SQLiteStore.insert(items, db) }
        }
        completer = GroupCommitter(maxBatch: 1024) { items in
            // Outcomes are committed without waiting for the disk (synchronous=NORMAL: they survive a crash of the
            // process, and the next accepted notification's FULL commit syncs them too); one lost to a power cut
            // only sends its delivery again. What a 2xx promised (the enqueue) is always synced.
            try await pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                defer { try? db.execute(sql: "PRAGMA synchronous = FULL") }
                try db.inTransaction {
                    for item in items { try SQLiteStore.apply(item, db) }
                    return .commit
                }
                return Array(repeating: true, count: items.count)
            }
        }
    }

    deinit { checkpointer.cancel() }

    public var description: String { "sqlite:\(path)" }

    /// Versioned schema migrations, run at open. Times are milliseconds since 1970.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("1-outbox") { db in
            try db.execute(
                sql: """
                    CREATE TABLE notifications (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        received_at INTEGER NOT NULL,
                        payload BLOB NOT NULL
                    );
                    CREATE TABLE deliveries (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        notification_id INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
                        alert_index INTEGER NOT NULL,
                        target TEXT NOT NULL,
                        ordering_key TEXT NOT NULL,
                        status TEXT NOT NULL,
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        created_at INTEGER NOT NULL,
                        due_at INTEGER NOT NULL,
                        expires_at INTEGER NOT NULL,
                        lease_owner TEXT,
                        lease_until INTEGER,
                        last_error TEXT,
                        last_status INTEGER,
                        finished_at INTEGER
                    );
                    CREATE INDEX deliveries_open ON deliveries(due_at) WHERE state IN ('pending', 'leased');
                    CREATE INDEX deliveries_key ON deliveries(target, ordering_key, id) WHERE state IN ('pending', 'leased');
                    CREATE INDEX deliveries_finished ON deliveries(state, finished_at);
                    CREATE INDEX deliveries_notification ON deliveries(notification_id);
                    CREATE TABLE rootly_ids (
                        target TEXT NOT NULL,
                        fingerprint TEXT NOT NULL,
                        alert_id TEXT NOT NULL,
                        updated_at INTEGER NOT NULL,
                        PRIMARY KEY (target, fingerprint)
                    );
                    """)
        }
        // Version 1 indexed (state, finished_at) for every row, so each state change rewrote that index and, without
        // statistics, SQLite's planner preferred it (an equality on `state`) over the open-delivery indexes: the
        // supersede at enqueue and the claim then scanned every pending row (quadratic under a backlog). Finished
        // rows get their own partial indexes instead; open rows are only in `deliveries_open` and `deliveries_key`.
        m.registerMigration("2-partial-indexes") { db in
            try db.execute(
                sql: """
                    DROP INDEX deliveries_finished;
                    CREATE INDEX deliveries_finished ON deliveries(finished_at) WHERE state IN ('delivered', 'superseded');
                    CREATE INDEX deliveries_dead ON deliveries(target, id) WHERE state = 'dead';
                    """)
        }
        return m
    }

    /// The statements whose plans matter under load. Each names the index it must use (`INDEXED BY` makes SQLite
    /// fail the statement rather than fall back to a scan); `SQLiteStoreTests` checks the plans.
    enum SQL {
        static let openOfKey = """
            SELECT state FROM deliveries INDEXED BY deliveries_key WHERE target = ? AND ordering_key = ? AND state IN ('pending', 'leased')
            """
        static let supersede = """
            UPDATE deliveries INDEXED BY deliveries_key SET state = 'superseded', finished_at = ?, last_error = ?
            WHERE target = ? AND ordering_key = ? AND state IN ('pending', 'leased') AND state = 'pending' RETURNING status
            """
        static let claim = """
            SELECT d.id, d.notification_id, d.alert_index, d.target, d.ordering_key, d.attempts, d.created_at, d.due_at, d.expires_at
            FROM deliveries d INDEXED BY deliveries_open
            WHERE d.state IN ('pending', 'leased') AND d.due_at <= ?
              AND NOT EXISTS (SELECT 1 FROM deliveries o INDEXED BY deliveries_key WHERE o.target = d.target AND o.ordering_key = d.ordering_key
                              AND o.id < d.id AND o.state IN ('pending', 'leased'))
            ORDER BY d.due_at, d.id LIMIT ?
            """
        static let releaseAllLeases = """
            UPDATE deliveries INDEXED BY deliveries_open SET state = 'pending', lease_owner = NULL, lease_until = NULL, due_at = created_at
            WHERE state IN ('pending', 'leased') AND state = 'leased'
            """
        static let oldestOpen = "SELECT min(created_at) FROM deliveries INDEXED BY deliveries_open WHERE state IN ('pending', 'leased')"
        static let deadLetters = """
            SELECT id, target, notification_id, alert_index, ordering_key, attempts, last_error, last_status, created_at, finished_at
            FROM deliveries INDEXED BY deliveries_dead WHERE state = 'dead' AND (? IS NULL OR target = ?) ORDER BY id DESC LIMIT ?
            """
        static let replay = """
            UPDATE deliveries INDEXED BY deliveries_dead SET state = 'pending', attempts = 0, due_at = ?, expires_at = ?, finished_at = NULL,
                lease_owner = NULL, lease_until = NULL
            WHERE state = 'dead' AND (? IS NULL OR id = ?) AND (? IS NULL OR target = ?)
            """
        static let purge = "DELETE FROM deliveries INDEXED BY deliveries_dead WHERE state = 'dead' AND (? IS NULL OR target = ?)"
        static let prune = "DELETE FROM deliveries INDEXED BY deliveries_finished WHERE state IN ('delivered', 'superseded') AND finished_at < ?"
        static let countOpen = """
            SELECT target, state, count(*) FROM deliveries INDEXED BY deliveries_key WHERE state IN ('pending', 'leased') GROUP BY target, state
            UNION ALL
            SELECT target, 'dead', count(*) FROM deliveries INDEXED BY deliveries_dead WHERE state = 'dead' GROUP BY target
            """
        /// Reads every retained row: for the stats endpoint, not for a loop.
        static let countAll = "SELECT target, state, count(*) FROM deliveries GROUP BY target, state"
        /// Every statement above that must not scan the table, for the plan check.
        static let planned = [openOfKey, supersede, claim, releaseAllLeases, oldestOpen, deadLetters, replay, purge, prune, countOpen]
    }

    // MARK: enqueue

    public func enqueue(_ notifications: [NewNotification], now: Double, ttl: Double, lease: EnqueueLease?) async throws -> Enqueued {
        do {
            let out = try await enqueuer.submit(notifications.map { EnqueueItem(notification: $0, now: now, ttl: ttl, lease: lease) })
            return Enqueued(ids: out.flatMap(\.ids), leased: out.flatMap(\.leased))
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError("SQLite store: \(error)")
        }
    }

    /// Stores a group of notifications in one transaction (one output per item): the same rules as PostgreSQL's
    /// set-based insert (`EnqueuePlan`), with the store's open rows of each key read through `deliveries_key`.
    static func insert(_ items: [EnqueueItem], _ db: Database) throws -> [Enqueued] {
        let insertNotification = try db.cachedStatement(sql: "INSERT INTO notifications (received_at, payload) VALUES (?, ?)")
        var nids: [Int64] = []
        for item in items {
            try insertNotification.execute(arguments: [ms(item.notification.receivedAt), Data(item.notification.payload)])
            nids.append(db.lastInsertedRowID)
        }
        let plan = EnqueuePlan(items: items, notificationIDs: nids)
        let open = try db.cachedStatement(sql: SQL.openOfKey)
        let supersede = try db.cachedStatement(sql: SQL.supersede)
        var supersededInStore: [EnqueuePlan.Key: Set<String>] = [:]
        var leasedInStore = Set<EnqueuePlan.Key>()
        for key in plan.firstSeen {
            // Usually nothing is open for a key; then one index probe is all it costs.
            let states = try String.fetchAll(open, arguments: [key.target, key.orderingKey])
            if states.contains("leased") { leasedInStore.insert(key) }
            if states.contains("pending") {
                let older = try String.fetchAll(supersede, arguments: [plan.supersedeTime, EnqueuePlan.supersededReason, key.target, key.orderingKey])
                supersededInStore[key] = Set(older)
            }
        }
        let insertDelivery = try db.cachedStatement(
            sql: """
                INSERT INTO deliveries (notification_id, alert_index, target, ordering_key, status, state, created_at, due_at, expires_at,
                                        lease_owner, lease_until, last_error, finished_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        var leased: [Int64: [ClaimedDelivery]] = [:]
        for row in plan.resolve(supersededInStore: supersededInStore, leasedInStore: leasedInStore) {
            let isLeased = row.state == "leased"
            try insertDelivery.execute(arguments: [
                row.notificationID, row.alertIndex, row.target, row.orderingKey, row.status, row.state, row.createdAt, row.dueAt,
                row.expiresAt, isLeased ? row.leaseOwner : nil, isLeased ? row.dueAt : nil, row.lastError.isEmpty ? nil : row.lastError,
                row.finishedAt == 0 ? nil : row.finishedAt,
            ])
            if isLeased { leased[row.notificationID, default: []].append(EnqueuePlan.claimed(row, id: db.lastInsertedRowID)) }
        }
        return nids.map { Enqueued(ids: [$0], leased: leased[$0] ?? []) }
    }

    // MARK: claim and complete

    public func claim(owner: String, limit: Int, now: Double, leaseSeconds: Double) async throws -> [ClaimedDelivery] {
        let t = ms(now)
        return try await wrap {
            try await pool.write { db in
                // A leased row's due_at is its lease's end, so live leases are never scanned and expired ones are due.
                let rows = try Row.fetchAll(try db.cachedStatement(sql: SQL.claim), arguments: [t, limit])
                let claimed = rows.map(SQLiteStore.claimed)
                let lease = try db.cachedStatement(sql: "UPDATE deliveries SET state = 'leased', lease_owner = ?, lease_until = ?, due_at = ? WHERE id = ?")
                let until = t + ms(leaseSeconds)
                for c in claimed { try lease.execute(arguments: [owner, until, until, c.id]) }
                return claimed
            }
        }
    }

    static func claimed(_ r: Row) -> ClaimedDelivery {
        // By position (the claim query's column order): a look-up by name costs more than the rest of the row.
        ClaimedDelivery(
            id: r[0], notificationID: r[1], alertIndex: r[2], target: r[3], orderingKey: r[4], attempts: r[5],
            createdAt: seconds(r[6]), dueAt: seconds(r[7]), expiresAt: seconds(r[8]))
    }

    public func payloads(_ ids: [Int64]) async throws -> [Int64: [UInt8]] {
        guard !ids.isEmpty else { return [:] }
        return try await wrap {
            try await pool.read { db in
                var out: [Int64: [UInt8]] = [:]
                let placeholders = Array(repeating: "?", count: ids.count).joined(separator: ",")
                for r in try Row.fetchAll(db, sql: "SELECT id, payload FROM notifications WHERE id IN (\(placeholders))", arguments: StatementArguments(ids)) {
                    let data: Data = r["payload"]
                    out[r["id"]] = Array(data)
                }
                return out
            }
        }
    }

    public func complete(_ completions: [DeliveryCompletion], owner: String, now: Double) async throws {
        try await wrap {
            _ = try await self.completer.submit(completions.map { CompleteItem(completion: $0, owner: owner, now: now) })
        }
    }

    static func apply(_ item: CompleteItem, _ db: Database) throws {
        let c = item.completion
        let now = ms(item.now)
        let update = try db.cachedStatement(
            sql: """
                UPDATE deliveries SET state = ?, attempts = attempts + ?, due_at = coalesce(?, due_at), lease_owner = NULL, lease_until = NULL,
                    last_error = coalesce(?, last_error), last_status = coalesce(?, last_status), finished_at = ?
                WHERE id = ? AND state = 'leased' AND lease_owner = ?
                """)
        switch c.decision {
        case .delivered:
            try update.execute(arguments: ["delivered", 0, nil, nil, c.httpStatus, now, c.id, item.owner])
        case .retry(let dueAt, let counts, let reason):
            try update.execute(arguments: ["pending", counts ? 1 : 0, ms(dueAt), reason, c.httpStatus, nil, c.id, item.owner])
        case .dead(let reason):
            try update.execute(arguments: ["dead", 1, nil, reason, c.httpStatus, now, c.id, item.owner])
        case .superseded(let reason):
            try update.execute(arguments: ["superseded", 0, nil, reason, c.httpStatus, now, c.id, item.owner])
        }
        switch c.rootly {
        case .remember(let target, let fingerprint, let id):
            try db.cachedStatement(
                sql: """
                    INSERT INTO rootly_ids (target, fingerprint, alert_id, updated_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (target, fingerprint) DO UPDATE SET alert_id = excluded.alert_id, updated_at = excluded.updated_at
                    """
            ).execute(arguments: [target, fingerprint, id, now])
        case .forget(let target, let fingerprint):
            try db.cachedStatement(sql: "DELETE FROM rootly_ids WHERE target = ? AND fingerprint = ?").execute(arguments: [target, fingerprint])
        case nil:
            break
        }
    }

    public func release(_ ids: [Int64], owner: String) async throws {
        guard !ids.isEmpty else { return }
        try await wrap {
            try await pool.write { db in
                let s = try db.cachedStatement(
                    sql:
                        "UPDATE deliveries SET state = 'pending', lease_owner = NULL, lease_until = NULL, due_at = created_at WHERE id = ? AND state = 'leased' AND lease_owner = ?"
                )
                for id in ids { try s.execute(arguments: [id, owner]) }
            }
        }
    }

    // MARK: Rootly ids

    public func rootlyIDs(_ keys: [String]) async throws -> [String: String] {
        guard !keys.isEmpty else { return [:] }
        return try await wrap {
            try await pool.read { db in
                var out: [String: String] = [:]
                let s = try db.cachedStatement(sql: "SELECT alert_id FROM rootly_ids WHERE target = ? AND fingerprint = ?")
                for key in keys {
                    let parts = key.split(separator: "|", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { continue }
                    if let id = try String.fetchOne(s, arguments: [parts[0], parts[1]]) { out[key] = id }
                }
                return out
            }
        }
    }

    public func rememberRootlyID(target: String, fingerprint: String, id: String, now: Double) async throws {
        try await wrap {
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO rootly_ids (target, fingerprint, alert_id, updated_at) VALUES (?, ?, ?, ?)
                        ON CONFLICT (target, fingerprint) DO UPDATE SET alert_id = excluded.alert_id, updated_at = excluded.updated_at
                        """, arguments: [target, fingerprint, id, ms(now)])
            }
        }
    }

    public func forgetRootlyID(target: String, fingerprint: String) async throws {
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM rootly_ids WHERE target = ? AND fingerprint = ?", arguments: [target, fingerprint])
            }
        }
    }

    // MARK: counts, dead letters, pruning

    public func counts(includingFinished: Bool) async throws -> DeliveryCounts {
        try await wrap {
            try await pool.read { db in
                var c = DeliveryCounts()
                for r in try Row.fetchAll(db, sql: includingFinished ? SQL.countAll : SQL.countOpen) {
                    c.byTarget[r[0], default: [:]][r[1]] = r[2]
                }
                if let oldest = try Int64.fetchOne(db, sql: SQL.oldestOpen) {
                    c.oldestPendingCreatedAt = seconds(oldest)
                }
                return c
            }
        }
    }

    public func deadLetters(target: String?, limit: Int) async throws -> [DeadLetter] {
        try await wrap {
            try await pool.read { db in
                let rows = try Row.fetchAll(db, sql: SQL.deadLetters, arguments: [target, target, limit])
                return rows.map { r in
                    DeadLetter(
                        id: r["id"], target: r["target"], notificationID: r["notification_id"], alertIndex: r["alert_index"],
                        orderingKey: r["ordering_key"], attempts: r["attempts"], lastError: r["last_error"], lastStatus: r["last_status"],
                        createdAt: seconds(r["created_at"]), finishedAt: (r["finished_at"] as Int64?).map(seconds))
                }
            }
        }
    }

    public func replay(id: Int64?, target: String?, now: Double, ttl: Double) async throws -> Int {
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: SQL.replay, arguments: [ms(now), ms(now + ttl), id, id, target, target])
                return db.changesCount
            }
        }
    }

    public func purge(target: String?) async throws -> Int {
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: SQL.purge, arguments: [target, target])
                let n = db.changesCount
                try db.execute(sql: "DELETE FROM notifications WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = notifications.id)")
                return n
            }
        }
    }

    public func prune(before: Double) async throws -> Int {
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: SQL.prune, arguments: [ms(before)])
                let n = db.changesCount
                try db.execute(
                    sql: """
                        DELETE FROM notifications WHERE received_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = notifications.id)
                        """, arguments: [ms(before)])
                return n
            }
        }
    }

    public func ping() async throws {
        try await wrap { _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") } }
    }

    public func close() async {
        checkpointer.cancel()
        await checkpointer.value
        try? checkpoints.close()
        try? pool.close()
    }

    /// Errors as `StoreError`, naming the file (never the payload).
    private func wrap<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as StoreError { throw e } catch { throw StoreError("SQLite store '\(path)': \(error)") }
    }
}

/// Seconds ↔ the milliseconds stored.
func ms(_ seconds: Double) -> Int64 { Int64((seconds * 1000).rounded()) }
func seconds(_ ms: Int64) -> Double { Double(ms) / 1000 }
