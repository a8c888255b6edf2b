// DeliveryStore: the durable outbox's interface — notifications and their deliveries, leases, dead letters, Rootly ids.
import AlertFanout
import FanoutCore

/// One delivery to create: one alert (`alertIndex` into the notification's alerts) or the whole notification
/// (`alertIndex == -1`, for targets that take groups) to one target.
public struct NewDelivery: Sendable, Hashable {
    public var target: String
    public var alertIndex: Int
    /// Deliveries with the same target and key are made in the order they were stored, and a newer one
    /// supersedes an older one not yet sent: the alert's fingerprint, or `group:` and the group's fingerprint.
    public var orderingKey: String
    /// `firing` or `resolved`.
    public var status: String
    /// A Rootly resolve: when it supersedes a firing that was never sent, there is nothing to resolve and it is
    /// stored as superseded too.
    public var isRootlyResolve: Bool

    public init(target: String, alertIndex: Int, orderingKey: String, status: String, isRootlyResolve: Bool = false) {
        self.target = target
        self.alertIndex = alertIndex
        self.orderingKey = orderingKey
        self.status = status
        self.isRootlyResolve = isRootlyResolve
    }
}

/// A received notification (the webhook body as received) and the deliveries it needs.
public struct NewNotification: Sendable {
    public var payload: [UInt8]
    public var receivedAt: Double
    public var deliveries: [NewDelivery]

    public init(payload: [UInt8], receivedAt: Double, deliveries: [NewDelivery]) {
        self.payload = payload
        self.receivedAt = receivedAt
        self.deliveries = deliveries
    }
}

/// Who takes the deliveries an `enqueue` stores, and for how long.
public struct EnqueueLease: Sendable, Hashable {
    public var owner: String
    public var seconds: Double

    public init(owner: String, seconds: Double) {
        self.owner = owner
        self.seconds = seconds
    }
}

/// What an `enqueue` stored: one id per notification, in order, and the deliveries leased to the enqueue's owner.
public struct Enqueued: Sendable, Hashable {
    public var ids: [Int64]
    public var leased: [ClaimedDelivery]

    public init(ids: [Int64], leased: [ClaimedDelivery]) {
        self.ids = ids
        self.leased = leased
    }
}

/// A delivery a dispatcher holds the lease of.
public struct ClaimedDelivery: Sendable, Hashable {
    public var id: Int64
    public var notificationID: Int64
    public var alertIndex: Int
    public var target: String
    public var orderingKey: String
    /// Failed attempts so far.
    public var attempts: Int
    public var createdAt: Double
    public var dueAt: Double
    public var expiresAt: Double
}

/// What became of a claimed delivery.
public struct DeliveryCompletion: Sendable, Hashable {
    public enum RootlyChange: Sendable, Hashable {
        case remember(target: String, fingerprint: String, id: String)
        case forget(target: String, fingerprint: String)
    }

    public var id: Int64
    public var decision: DeliveryPolicy.Decision
    public var httpStatus: Int?
    public var rootly: RootlyChange?

    public init(id: Int64, decision: DeliveryPolicy.Decision, httpStatus: Int? = nil, rootly: RootlyChange? = nil) {
        self.id = id
        self.decision = decision
        self.httpStatus = httpStatus
        self.rootly = rootly
    }
}

/// Deliveries by state, per target and in total, and the oldest unfinished one.
public struct DeliveryCounts: Sendable, Hashable {
    public var byTarget: [String: [String: Int]] = [:]
    public var oldestPendingCreatedAt: Double?

    public init() {}

    public func total(_ state: String) -> Int { byTarget.values.reduce(0) { $0 + ($1[state] ?? 0) } }
    /// Stored and not finished: pending or leased.
    public var unfinished: Int { total("pending") + total("leased") }
}

/// A delivery that will not be retried by itself.
public struct DeadLetter: Sendable, Hashable {
    public var id: Int64
    public var target: String
    public var notificationID: Int64
    public var alertIndex: Int
    public var orderingKey: String
    public var attempts: Int
    public var lastError: String?
    public var lastStatus: Int?
    public var createdAt: Double
    public var finishedAt: Double?
}

/// Why the store could not do what was asked.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The outbox. Every method is safe from any thread and never blocks an event loop or the reactor queue: the
/// I/O runs on the store's own threads. `enqueue` returns only once the notification and its deliveries are
/// durably committed; concurrent calls are committed together (one transaction and one sync for many).
public protocol DeliveryStore: Sendable {
    /// A short description for logs (`sqlite:PATH`, `postgres://host:port/db`; never a password).
    var description: String { get }
    /// Stores notifications with their deliveries (due now, expiring after `ttl`). Older unsent deliveries of
    /// the same target and key are superseded. With a `lease`, every stored delivery that is the oldest
    /// unfinished one of its target and key is leased to `lease.owner` in the same transaction and returned, so
    /// the process that stored it sends it at once (no claim round trip); the others stay pending.
    func enqueue(_ notifications: [NewNotification], now: Double, ttl: Double, lease: EnqueueLease?) async throws -> Enqueued
    /// Leases up to `limit` due deliveries to `owner` until `now + leaseSeconds`: pending ones whose time has
    /// come and leased ones whose lease ran out, only the oldest unfinished one of each target and key.
    func claim(owner: String, limit: Int, now: Double, leaseSeconds: Double) async throws -> [ClaimedDelivery]
    /// The stored payloads of these notifications.
    func payloads(_ ids: [Int64]) async throws -> [Int64: [UInt8]]
    /// Records outcomes of deliveries leased by `owner` (a delivery whose lease another owner took is left alone).
    func complete(_ completions: [DeliveryCompletion], owner: String, now: Double) async throws
    /// Gives back deliveries leased by `owner` without an attempt (shutdown).
    func release(_ ids: [Int64], owner: String) async throws
    /// Rootly alert ids by `target|fingerprint`.
    func rootlyIDs(_ keys: [String]) async throws -> [String: String]
    func rememberRootlyID(target: String, fingerprint: String, id: String, now: Double) async throws
    func forgetRootlyID(target: String, fingerprint: String) async throws
    /// Deliveries by target and state. Without `includingFinished`, only the open (`pending`, `leased`) and `dead`
    /// ones, which costs what is open rather than everything retained (the service's gauges ask every second).
    func counts(includingFinished: Bool) async throws -> DeliveryCounts
    func deadLetters(target: String?, limit: Int) async throws -> [DeadLetter]
    /// Makes dead letters pending again (one by id, or all of a target, or all). Returns how many.
    func replay(id: Int64?, target: String?, now: Double, ttl: Double) async throws -> Int
    /// Deletes dead letters (of a target, or all). Returns how many.
    func purge(target: String?) async throws -> Int
    /// Deletes delivered and superseded records finished before `before`, and notifications left without
    /// deliveries. Returns how many deliveries.
    func prune(before: Double) async throws -> Int
    /// Checks that the database answers.
    func ping() async throws
    func close() async
}

extension DeliveryStore {
    /// Stores notifications without leasing anything; returns their ids.
    public func enqueue(_ notifications: [NewNotification], now: Double, ttl: Double) async throws -> [Int64] {
        try await enqueue(notifications, now: now, ttl: ttl, lease: nil).ids
    }

    /// Every delivery still stored, by target and state.
    public func counts() async throws -> DeliveryCounts { try await counts(includingFinished: true) }

    /// Seeds `publisher` with the Rootly ids stored for these `target|fingerprint` keys, so that resolves find the
    /// alerts their creates made (in another run, process or replica).
    public func loadRootlyIDs(_ keys: [String], into publisher: FanoutPublisher) async throws {
        guard !keys.isEmpty else { return }
        let ids = try await rootlyIDs(keys)
        await publisher.rememberRootlyIDs(
            ids.compactMap { key, id in
                let p = key.split(separator: "|", maxSplits: 1).map(String.init)
                return p.count == 2 ? (p[0], p[1], id) : nil
            })
    }
}

extension DeadLetter {
    /// The shape the dead-letter API and `fanout dlq list --json` print.
    public var json: JSONValue {
        var m: [(String, JSONValue)] = [
            ("id", .int(id)), ("target", .string(target)), ("notification", .int(notificationID)),
            ("alert_index", .int(alertIndex)), ("key", .string(orderingKey)), ("attempts", .int(attempts)),
        ]
        if let e = lastError { m.append(("last_error", .string(e))) }
        if let s = lastStatus { m.append(("last_status", .int(s))) }
        m.append(("created_at", .string(Timestamp(seconds: Int64(createdAt)).rfc3339)))
        if let f = finishedAt { m.append(("finished_at", .string(Timestamp(seconds: Int64(f)).rfc3339))) }
        return .object(m)
    }
}
