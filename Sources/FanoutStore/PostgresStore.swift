// PostgresStore: the shared outbox on PostgreSQL (postgres-nio) — several replicas lease work with FOR UPDATE SKIP LOCKED.
import FanoutCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO

/// The outbox for several replicas. Each claim takes due rows with `FOR UPDATE SKIP LOCKED` and a lease, so a
/// delivery is worked by one replica at a time; rows leased by a replica that died are taken over when their
/// lease runs out. Per (target, key) order holds across replicas: every insert first takes a transaction-scoped
/// advisory lock on its keys (sorted, so two batches cannot deadlock), so ids, claims and commits follow the same
/// order. Times are the replicas' wall clocks in milliseconds; keep them in sync (NTP) as for any lease.
/// postgres-nio runs on its own event loop thread; no call blocks the caller's thread.
public final class PostgresStore: DeliveryStore {
    let client: PostgresClient
    let runner: Task<Void, Never>
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    public let description: String
    private let enqueuer: GroupCommitter<SQLiteStore.EnqueueItem, Enqueued>
    private let completer: GroupCommitter<SQLiteStore.CompleteItem, Bool>
    /// A statement that cannot finish in this time fails (so HTTP answers 503 instead of waiting on a dead database).
    let deadline: Duration

    /// Connects, waits until the database answers, and migrates. Throws `StoreError` naming what failed.
    public static func open(
        url: String, logger: Logger = Logger(label: "alertfanout.store", factory: { _ in SwiftLogNoOpLogHandler() }),
        deadline: Duration = .seconds(5)
    ) async throws -> PostgresStore {
        let store = PostgresStore(configuration: try configuration(url: url), description: StoreLocation.redacted(url), logger: logger, deadline: deadline)
        do {
            try await store.migrate()
        } catch {
            await store.close()
            throw StoreError("cannot open the PostgreSQL store \(store.description): \(describe(error))")
        }
        return store
    }

    init(configuration: PostgresClient.Configuration, description: String, logger: Logger, deadline: Duration) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = PostgresClient(configuration: configuration, eventLoopGroup: group, backgroundLogger: logger)
        self.client = client
        self.group = group
        self.logger = logger
        self.description = description
        self.deadline = deadline
        runner = Task { await client.run() }
        enqueuer = GroupCommitter(maxBatch: 256) { [client, logger] items in
            try await client.withTransaction(logger: logger) { conn in try await PostgresStore.insert(items, conn, logger) }
        }
        completer = GroupCommitter(maxBatch: 512) { [client, logger] items in
            try await client.withTransaction(logger: logger) { conn in
                // An outcome lost to a database crash only sends its delivery again (at least once, never lost), so
                // its commit does not wait for the WAL flush; what a 2xx promised (the enqueue) still does.
                try await drain(conn.query("SET LOCAL synchronous_commit TO off", logger: logger))
                try await PostgresStore.apply(items, conn, logger)
                return Array(repeating: true, count: items.count)
            }
        }
    }

    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=disable|prefer|require]`.
    static func configuration(url: String) throws -> PostgresClient.Configuration {
        guard let c = URLComponents(string: url), ["postgres", "postgresql"].contains(c.scheme ?? ""), let host = c.host, !host.isEmpty,
            let user = c.user, !user.isEmpty
        else {
            throw StoreError("'\(StoreLocation.redacted(url))' is not a PostgreSQL URL: use postgres://USER:PASSWORD@HOST:PORT/DB")
        }
        let db = String(c.path.drop { $0 == "/" })
        let tls: PostgresClient.Configuration.TLS
        switch c.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "prefer" {
        case "disable": tls = .disable
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: tls = .prefer(.makeClientConfiguration())
        }
        var config = PostgresClient.Configuration(
            host: host, port: c.port ?? 5432, username: user, password: c.password,
            database: db.isEmpty ? nil : db, tls: tls)
        config.options.connectTimeout = .seconds(3)
        config.options.maximumConnections = 8
        return config
    }

    static let migrations: [(Int, String)] = [
        (
            1,
            """
            CREATE TABLE IF NOT EXISTS notifications (
                id BIGSERIAL PRIMARY KEY,
                received_at BIGINT NOT NULL,
                payload BYTEA NOT NULL
            );
            CREATE TABLE IF NOT EXISTS deliveries (
                id BIGSERIAL PRIMARY KEY,
                notification_id BIGINT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
                alert_index INTEGER NOT NULL,
                target TEXT NOT NULL,
                ordering_key TEXT NOT NULL,
                status TEXT NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                created_at BIGINT NOT NULL,
                due_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                lease_owner TEXT,
                lease_until BIGINT,
                last_error TEXT,
                last_status INTEGER,
                finished_at BIGINT
            );
            CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries(due_at) WHERE state IN ('pending', 'leased');
            CREATE INDEX IF NOT EXISTS deliveries_key ON deliveries(target, ordering_key, id) WHERE state IN ('pending', 'leased');
            CREATE INDEX IF NOT EXISTS deliveries_finished ON deliveries(state, finished_at);
            CREATE INDEX IF NOT EXISTS deliveries_notification ON deliveries(notification_id);
            CREATE TABLE IF NOT EXISTS rootly_ids (
                target TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                alert_id TEXT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (target, fingerprint)
            );
            """
        ),
        (
            2,
            // As in SQLite's migration 2: (state, finished_at) for every row made each state change rewrite that index;
            // finished and dead rows get partial indexes of their own, open rows stay in deliveries_open/deliveries_key.
            """
            DROP INDEX IF EXISTS deliveries_finished;
            CREATE INDEX IF NOT EXISTS deliveries_finished ON deliveries(finished_at) WHERE state IN ('delivered', 'superseded');
            CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries(target, id) WHERE state = 'dead'
            """
        ),
        (
            3,
            // The foreign key's check ran a query per inserted delivery (half the cost of the insert). A notification
            // and its deliveries are written in one transaction, and pruning and purging delete a notification only
            // once no delivery refers to it, so the reference holds without it.
            """
            ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_notification_id_fkey
            """
        ),
    ]

    /// Versioned migrations, one replica at a time (an advisory lock), each in its own transaction.
    func migrate() async throws {
        try await timed {
            try await self.client.withTransaction(logger: self.logger) { conn in
                try await drain(conn.query("SELECT pg_advisory_xact_lock(7263541)", logger: self.logger))
                try await drain(
                    conn.query("CREATE TABLE IF NOT EXISTS alertfanout_schema (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)", logger: self.logger))
                var applied = Set<Int>()
                for try await v in try await conn.query("SELECT version FROM alertfanout_schema", logger: self.logger).decode(Int.self) { applied.insert(v) }
                for (version, sql) in PostgresStore.migrations where !applied.contains(version) {
                    for statement in sql.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }) where !statement.isEmpty {
                        try await drain(conn.query(PostgresQuery(unsafeSQL: statement), logger: self.logger))
                    }
                    try await drain(
                        conn.query(
                            "INSERT INTO alertfanout_schema (version, applied_at) VALUES (\(version), \(ms(Date().timeIntervalSince1970)))", logger: self.logger
                        ))
                }
            }
        }
    }

    // MARK: enqueue

    public func enqueue(_ notifications: [NewNotification], now: Double, ttl: Double, lease: EnqueueLease?) async throws -> Enqueued {
        let out = try await timed {
            try await self.enqueuer.submit(notifications.map { SQLiteStore.EnqueueItem(notification: $0, now: now, ttl: ttl, lease: lease) })
        }
        return Enqueued(ids: out.flatMap(\.ids), leased: out.flatMap(\.leased))
    }

    /// A group of notifications in three statements (plus BEGIN and COMMIT): the locks and every id; the
    /// notifications with the store's older open rows of the group's keys; the deliveries.
    static func insert(_ items: [SQLiteStore.EnqueueItem], _ conn: PostgresConnection, _ logger: Logger) async throws -> [Enqueued] {
        // Serialise writers of the same (target, key) so that id order is commit order for every key; ids are taken
        // after the locks (the lock count is an argument of the first generate_series, so the locks are all held
        // before the first nextval), in batch order, so every key's deliveries are numbered in the order stored.
        // Delivery ids are taken for every planned row (resolving supersedes keeps the count).
        var keys = Set<Int64>()
        var deliveryCount = 0
        for item in items {
            deliveryCount += item.notification.deliveries.count
            for d in item.notification.deliveries { keys.insert(lockKey(d.target, d.orderingKey)) }
        }
        var nids: [Int64] = []
        var dids: [Int64] = []
        let idRows = try await conn.query(
            """
            SELECT 0, nextval('notifications_id_seq') FROM generate_series(1, \(items.count)
                + 0 * (SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k FROM unnest(\(keys.sorted())::bigint[]) AS k ORDER BY k) l))
            UNION ALL
            SELECT 1, nextval('deliveries_id_seq') FROM generate_series(1, \(deliveryCount))
            """, logger: logger)
        for try await (which, id) in idRows.decode((Int, Int64).self) {
            if which == 0 { nids.append(id) } else { dids.append(id) }
        }
        nids.sort()
        dids.sort()
        guard nids.count == items.count, dids.count == deliveryCount else { throw StoreError("PostgreSQL returned too few ids") }
        let rows = EnqueuePlan(items: items, notificationIDs: nids)
        // The notifications, and the store's open rows of the batch's keys: pending ones are superseded by the batch
        // (their statuses decide whether a Rootly resolve still has something to resolve); a leased (in-flight) one
        // keeps the batch's rows pending. The open rows are locked, so a claim racing this cannot lease a row that
        // is reported pending here (FOR UPDATE waits for it and reports the row as it is then).
        guard !rows.deliveries.isEmpty else {
            try await drain(
                conn.query(
                    """
                    INSERT INTO notifications (id, received_at, payload)
                    SELECT * FROM unnest(\(nids)::bigint[], \(items.map { ms($0.notification.receivedAt) })::bigint[],
                                         \(items.map { ByteBuffer(bytes: $0.notification.payload) })::bytea[])
                    """, logger: logger))
            return nids.map { Enqueued(ids: [$0], leased: []) }
        }
        var supersededInStore: [EnqueuePlan.Key: Set<String>] = [:]
        var leasedInStore = Set<EnqueuePlan.Key>()
        let keyList = rows.firstSeen
        let open = try await conn.query(
            """
            WITH n AS (
                INSERT INTO notifications (id, received_at, payload)
                SELECT * FROM unnest(\(nids)::bigint[], \(items.map { ms($0.notification.receivedAt) })::bigint[],
                                     \(items.map { ByteBuffer(bytes: $0.notification.payload) })::bytea[])),
            k AS (SELECT * FROM unnest(\(keyList.map(\.target))::text[], \(keyList.map(\.orderingKey))::text[]) AS k(t, o)),
            open AS (
                SELECT d.id, d.target, d.ordering_key, d.status, d.state FROM deliveries d JOIN k ON d.target = k.t AND d.ordering_key = k.o
                WHERE d.state IN ('pending', 'leased') FOR UPDATE OF d),
            sup AS (
                UPDATE deliveries d SET state = 'superseded', finished_at = \(rows.supersedeTime), last_error = \(EnqueuePlan.supersededReason)
                FROM open WHERE d.id = open.id AND open.state = 'pending')
            SELECT target, ordering_key, status, state FROM open
            """, logger: logger)
        for try await (t, o, status, state) in open.decode((String, String, String, String).self) {
            let key = EnqueuePlan.Key(target: t, orderingKey: o)
            if state == "leased" {
                leasedInStore.insert(key)
            } else {
                supersededInStore[key, default: []].insert(status)
            }
        }
        let planned = rows.resolve(supersededInStore: supersededInStore, leasedInStore: leasedInStore)
        try await drain(
            conn.query(
                """
                INSERT INTO deliveries (id, notification_id, alert_index, target, ordering_key, status, state, created_at, due_at, expires_at,
                                        lease_owner, lease_until, last_error, finished_at)
                SELECT id, nid, idx, t, o, st, state, now, due, exp, NULLIF(owner, ''), CASE WHEN owner = '' THEN NULL ELSE due END,
                       NULLIF(err, ''), NULLIF(fin, 0)
                FROM unnest(\(dids)::bigint[], \(planned.map(\.notificationID))::bigint[], \(planned.map(\.alertIndex))::bigint[],
                            \(planned.map(\.target))::text[], \(planned.map(\.orderingKey))::text[], \(planned.map(\.status))::text[],
                            \(planned.map(\.state))::text[], \(planned.map(\.createdAt))::bigint[], \(planned.map(\.dueAt))::bigint[],
                            \(planned.map(\.expiresAt))::bigint[], \(planned.map(\.leaseOwner))::text[],
                            \(planned.map(\.lastError))::text[], \(planned.map(\.finishedAt))::bigint[])
                     AS r(id, nid, idx, t, o, st, state, now, due, exp, owner, err, fin)
                """, logger: logger))
        var leased: [Int64: [ClaimedDelivery]] = [:]
        for (row, id) in zip(planned, dids) where row.state == "leased" {
            leased[row.notificationID, default: []].append(EnqueuePlan.claimed(row, id: id))
        }
        return nids.map { Enqueued(ids: [$0], leased: leased[$0] ?? []) }
    }

    /// 64-bit FNV-1a of target and key, for the advisory lock.
    static func lockKey(_ target: String, _ key: String) -> Int64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in target.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        h = (h ^ 0xFF) &* 0x100_0000_01b3
        for b in key.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Int64(bitPattern: h)
    }

    // MARK: claim and complete

    public func claim(owner: String, limit: Int, now: Double, leaseSeconds: Double) async throws -> [ClaimedDelivery] {
        let t = ms(now)
        let until = ms(now + leaseSeconds)
        return try await timed {
            // A leased row's due_at is its lease's end, so live leases are never scanned and expired ones are due.
            let rows = try await self.client.query(
                """
                UPDATE deliveries d SET state = 'leased', lease_owner = \(owner), lease_until = \(until), due_at = \(until)
                FROM (SELECT x.id, x.due_at AS old_due FROM deliveries x
                      WHERE x.state IN ('pending', 'leased') AND x.due_at <= \(t)
                        AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.target = x.target AND o.ordering_key = x.ordering_key
                                        AND o.id < x.id AND o.state IN ('pending', 'leased'))
                      ORDER BY x.due_at, x.id LIMIT \(limit)
                      FOR UPDATE OF x SKIP LOCKED) due
                WHERE d.id = due.id
                RETURNING d.id, d.notification_id, d.alert_index, d.target, d.ordering_key, d.attempts, d.created_at, due.old_due, d.expires_at
                """, logger: self.logger)
            var out: [ClaimedDelivery] = []
            for try await (id, nid, index, target, key, attempts, created, due, expires) in rows.decode(
                (Int64, Int64, Int, String, String, Int, Int64, Int64, Int64).self)
            {
                out.append(
                    ClaimedDelivery(
                        id: id, notificationID: nid, alertIndex: index, target: target, orderingKey: key, attempts: attempts,
                        createdAt: seconds(created), dueAt: seconds(due), expiresAt: seconds(expires)))
            }
            return out.sorted { $0.id < $1.id }
        }
    }

    public func payloads(_ ids: [Int64]) async throws -> [Int64: [UInt8]] {
        guard !ids.isEmpty else { return [:] }
        return try await timed {
            var out: [Int64: [UInt8]] = [:]
            let rows = try await self.client.query("SELECT id, payload FROM notifications WHERE id = ANY(\(ids))", logger: self.logger)
            for try await (id, payload) in rows.decode((Int64, ByteBuffer).self) { out[id] = Array(payload.readableBytesView) }
            return out
        }
    }

    public func complete(_ completions: [DeliveryCompletion], owner: String, now: Double) async throws {
        try await timed {
            _ = try await self.completer.submit(completions.map { SQLiteStore.CompleteItem(completion: $0, owner: owner, now: now) })
        }
    }

    /// Every completion of a batch in one UPDATE (plus the Rootly id changes, which are few).
    static func apply(_ items: [SQLiteStore.CompleteItem], _ conn: PostgresConnection, _ logger: Logger) async throws {
        guard !items.isEmpty else { return }
        var ids: [Int64] = []
        var owners: [String] = []
        var states: [String] = []
        var adds: [Int] = []
        var dues: [Int64] = []
        var errors: [String] = []
        var statuses: [Int] = []
        var finished: [Int64] = []
        for item in items {
            let c = item.completion
            let now = ms(item.now)
            // -1, "" and 0 stand for "unchanged" / NULL: arrays sent to PostgreSQL cannot hold NULL here.
            let (state, add, due, error, fin): (String, Int, Int64, String, Int64)
            switch c.decision {
            case .delivered: (state, add, due, error, fin) = ("delivered", 0, -1, "", now)
            case .retry(let dueAt, let counts, let reason): (state, add, due, error, fin) = ("pending", counts ? 1 : 0, ms(dueAt), reason, 0)
            case .dead(let reason): (state, add, due, error, fin) = ("dead", 1, -1, reason, now)
            case .superseded(let reason): (state, add, due, error, fin) = ("superseded", 0, -1, reason, now)
            }
            ids.append(c.id)
            owners.append(item.owner)
            states.append(state)
            adds.append(add)
            dues.append(due)
            errors.append(error)
            statuses.append(c.httpStatus ?? -1)
            finished.append(fin)
        }
        try await drain(
            conn.query(
                """
                UPDATE deliveries d SET state = c.state, attempts = d.attempts + c.add, due_at = CASE WHEN c.due < 0 THEN d.due_at ELSE c.due END,
                    lease_owner = NULL, lease_until = NULL, last_error = coalesce(NULLIF(c.err, ''), d.last_error),
                    last_status = CASE WHEN c.status < 0 THEN d.last_status ELSE c.status END, finished_at = NULLIF(c.fin, 0)
                FROM unnest(\(ids)::bigint[], \(owners)::text[], \(states)::text[], \(adds)::bigint[], \(dues)::bigint[], \(errors)::text[],
                            \(statuses)::bigint[], \(finished)::bigint[]) AS c(id, owner, state, add, due, err, status, fin)
                WHERE d.id = c.id AND d.state = 'leased' AND d.lease_owner = c.owner
                """, logger: logger))
        for item in items {
            switch item.completion.rootly {
            case .remember(let target, let fingerprint, let id):
                try await drain(
                    conn.query(
                        """
                        INSERT INTO rootly_ids (target, fingerprint, alert_id, updated_at) VALUES (\(target), \(fingerprint), \(id), \(ms(item.now)))
                        ON CONFLICT (target, fingerprint) DO UPDATE SET alert_id = excluded.alert_id, updated_at = excluded.updated_at
                        """, logger: logger))
            case .forget(let target, let fingerprint):
                try await drain(conn.query("DELETE FROM rootly_ids WHERE target = \(target) AND fingerprint = \(fingerprint)", logger: logger))
            case nil:
                break
            }
        }
    }

    public func release(_ ids: [Int64], owner: String) async throws {
        guard !ids.isEmpty else { return }
        try await timed {
            try await drain(
                self.client.query(
                    """
                    UPDATE deliveries SET state = 'pending', lease_owner = NULL, lease_until = NULL, due_at = created_at WHERE id = ANY(\(ids)) AND state = 'leased' AND lease_owner = \(owner)
                    """, logger: self.logger))
        }
    }

    // MARK: Rootly ids

    public func rootlyIDs(_ keys: [String]) async throws -> [String: String] {
        guard !keys.isEmpty else { return [:] }
        let pairs = keys.map { $0.split(separator: "|", maxSplits: 1).map(String.init) }.filter { $0.count == 2 }
        return try await timed {
            var out: [String: String] = [:]
            let rows = try await self.client.query(
                """
                SELECT r.target, r.fingerprint, r.alert_id FROM rootly_ids r
                JOIN unnest(\(pairs.map { $0[0] })::text[], \(pairs.map { $0[1] })::text[]) AS k(t, f) ON r.target = k.t AND r.fingerprint = k.f
                """, logger: self.logger)
            for try await (t, f, id) in rows.decode((String, String, String).self) { out["\(t)|\(f)"] = id }
            return out
        }
    }

    public func rememberRootlyID(target: String, fingerprint: String, id: String, now: Double) async throws {
        try await timed {
            try await drain(
                self.client.query(
                    """
                    INSERT INTO rootly_ids (target, fingerprint, alert_id, updated_at) VALUES (\(target), \(fingerprint), \(id), \(ms(now)))
                    ON CONFLICT (target, fingerprint) DO UPDATE SET alert_id = excluded.alert_id, updated_at = excluded.updated_at
                    """, logger: self.logger))
        }
    }

    public func forgetRootlyID(target: String, fingerprint: String) async throws {
        try await timed {
            try await drain(self.client.query("DELETE FROM rootly_ids WHERE target = \(target) AND fingerprint = \(fingerprint)", logger: self.logger))
        }
    }

    // MARK: counts, dead letters, pruning

    public func counts(includingFinished: Bool) async throws -> DeliveryCounts {
        try await timed {
            var c = DeliveryCounts()
            let rows = try await self.client.query(
                includingFinished
                    ? "SELECT target, state, count(*) FROM deliveries GROUP BY target, state"
                    : """
                    SELECT target, state, count(*) FROM deliveries WHERE state IN ('pending', 'leased') GROUP BY target, state
                    UNION ALL
                    SELECT target, state, count(*) FROM deliveries WHERE state = 'dead' GROUP BY target, state
                    """, logger: self.logger)
            for try await (target, state, n) in rows.decode((String, String, Int64).self) { c.byTarget[target, default: [:]][state] = Int(n) }
            let oldest = try await self.client.query("SELECT min(created_at) FROM deliveries WHERE state IN ('pending', 'leased')", logger: self.logger)
            for try await v in oldest.decode(Int64?.self) { c.oldestPendingCreatedAt = v.map(seconds) }
            return c
        }
    }

    public func deadLetters(target: String?, limit: Int) async throws -> [DeadLetter] {
        try await timed {
            let rows = try await self.client.query(
                """
                SELECT id, target, notification_id, alert_index, ordering_key, attempts, last_error, last_status, created_at, finished_at
                FROM deliveries WHERE state = 'dead' AND (\(target)::text IS NULL OR target = \(target)) ORDER BY id DESC LIMIT \(limit)
                """, logger: self.logger)
            var out: [DeadLetter] = []
            for try await (id, t, nid, index, key, attempts, error, status, created, finished) in rows.decode(
                (Int64, String, Int64, Int, String, Int, String?, Int?, Int64, Int64?).self)
            {
                out.append(
                    DeadLetter(
                        id: id, target: t, notificationID: nid, alertIndex: index, orderingKey: key, attempts: attempts, lastError: error,
                        lastStatus: status, createdAt: seconds(created), finishedAt: finished.map(seconds)))
            }
            return out
        }
    }

    public func replay(id: Int64?, target: String?, now: Double, ttl: Double) async throws -> Int {
        try await timed {
            let rows = try await self.client.query(
                """
                UPDATE deliveries SET state = 'pending', attempts = 0, due_at = \(ms(now)), expires_at = \(ms(now + ttl)), finished_at = NULL,
                    lease_owner = NULL, lease_until = NULL
                WHERE state = 'dead' AND (\(id)::bigint IS NULL OR id = \(id)) AND (\(target)::text IS NULL OR target = \(target))
                RETURNING id
                """, logger: self.logger)
            var n = 0
            for try await _ in rows.decode(Int64.self) { n += 1 }
            return n
        }
    }

    public func purge(target: String?) async throws -> Int {
        try await timed {
            let rows = try await self.client.query(
                "DELETE FROM deliveries WHERE state = 'dead' AND (\(target)::text IS NULL OR target = \(target)) RETURNING id",
                logger: self.logger)
            var n = 0
            for try await _ in rows.decode(Int64.self) { n += 1 }
            try await drain(
                self.client.query(
                    "DELETE FROM notifications n WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id)",
                    logger: self.logger))
            return n
        }
    }

    public func prune(before: Double) async throws -> Int {
        try await timed {
            let rows = try await self.client.query(
                """
                DELETE FROM deliveries WHERE state IN ('delivered', 'superseded') AND finished_at < \(ms(before)) RETURNING id
                """, logger: self.logger)
            var n = 0
            for try await _ in rows.decode(Int64.self) { n += 1 }
            try await drain(
                self.client.query(
                    """
                    DELETE FROM notifications n WHERE received_at < \(ms(before)) AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id)
                    """, logger: self.logger))
            return n
        }
    }

    public func ping() async throws {
        try await timed { try await drain(self.client.query("SELECT 1", logger: self.logger)) }
    }

    public func close() async {
        runner.cancel()
        await runner.value
        try? await group.shutdownGracefully()
    }

    /// Runs `body` within `deadline` (postgres-nio waits up to 60 s for a connection to a database that went
    /// away); failures become `StoreError`s that say what failed.
    /// The caller gets the timeout at once even if postgres-nio does not notice the cancellation (it does not
    /// while it waits for a connection); the abandoned operation ends on its own.
    @discardableResult
    private func timed<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let description = self.description
        let deadline = self.deadline
        let once = Once()
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            let op = Task {
                do {
                    let v = try await body()
                    if once.take() { c.resume(returning: v) }
                } catch let e as StoreError {
                    if once.take() { c.resume(throwing: e) }
                } catch {
                    if once.take() { c.resume(throwing: StoreError("PostgreSQL store \(description): \(PostgresStore.describe(error))")) }
                }
            }
            Task {
                try? await Task.sleep(for: deadline)
                if once.take() {
                    op.cancel()
                    c.resume(throwing: StoreError("PostgreSQL store \(description) did not answer within \(deadline)"))
                }
            }
        }
    }

    static func describe(_ error: any Error) -> String {
        if let p = error as? PSQLError {
            if let message = p.serverInfo?[.message] { return message }
            return "\(p.code)"
        }
        return "\(error)"
    }
}

extension PostgresStore {
    /// Runs one statement as given (administration and tests only: no binds).
    public func execute(_ sql: String) async throws {
        try await timed { try await drain(self.client.query(PostgresQuery(unsafeSQL: sql), logger: self.logger)) }
    }
}

/// Reads a result to its end: postgres-nio runs the next statement on a connection only after that.
@discardableResult
func drain(_ rows: PostgresRowSequence) async throws -> Int {
    var n = 0
    for try await _ in rows { n += 1 }
    return n
}

/// True exactly once.
final class Once: Sendable {
    private let done = NIOLockedValueBox(false)
    func take() -> Bool {
        done.withLockedValue { d in
            defer { d = true }
            return !d
        }
    }
}
