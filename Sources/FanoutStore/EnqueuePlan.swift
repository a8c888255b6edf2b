// EnqueuePlan: the rows a batch of notifications adds, with the batch's own supersede rules worked out in memory.

/// A batch of notifications becomes delivery rows in a few set-based statements instead of one round trip per
/// delivery. The result must equal storing the deliveries one by one in batch order: a newer delivery of a
/// (target, key) supersedes an older pending one, whether the older one is already in the store or earlier in
/// the same batch, and a Rootly resolve whose firing was superseded unsent is stored as superseded itself.
struct EnqueuePlan {
    struct Key: Hashable {
        var target: String
        var orderingKey: String
    }

    struct Row: Equatable {
        var notificationID: Int64
        var alertIndex: Int
        var target: String
        var orderingKey: String
        var status: String
        var isRootlyResolve: Bool
        var createdAt: Int64
        var expiresAt: Int64
        /// The notification's enqueue lease (nil: stored pending).
        var lease: EnqueueLease?
        var state = "pending"
        /// Empty unless leased at enqueue.
        var leaseOwner = ""
        /// The lease's end when leased at enqueue (a leased row is due when its lease runs out), else `createdAt`.
        var dueAt: Int64 = 0
        /// Empty for none (arrays sent to PostgreSQL cannot hold NULL here).
        var lastError = ""
        /// 0 for none.
        var finishedAt: Int64 = 0
    }

    static let supersededReason = "superseded by a newer state of the same alert"
    static let nothingToResolve = "the Rootly alert was never created: nothing to resolve"

    private(set) var deliveries: [Row] = []
    /// The batch's keys, each once, in first-seen order.
    private(set) var firstSeen: [Key] = []
    /// When older pending rows in the store are marked superseded (milliseconds).
    private(set) var supersedeTime: Int64 = 0

    init(items: [SQLiteStore.EnqueueItem], notificationIDs: [Int64]) {
        precondition(items.count == notificationIDs.count, "one id per notification")
        var seen = Set<Key>()
        for (item, nid) in zip(items, notificationIDs) {
            let now = Int64((item.now * 1000).rounded())
            supersedeTime = max(supersedeTime, now)
            for d in item.notification.deliveries {
                let key = Key(target: d.target, orderingKey: d.orderingKey)
                if seen.insert(key).inserted { firstSeen.append(key) }
                deliveries.append(
                    Row(
                        notificationID: nid, alertIndex: d.alertIndex, target: d.target, orderingKey: d.orderingKey,
                        status: d.status, isRootlyResolve: d.isRootlyResolve, createdAt: now,
                        expiresAt: Int64(((item.now + item.ttl) * 1000).rounded()), lease: item.lease, dueAt: now))
            }
        }
    }

    /// The rows to insert, in order, given the statuses of the store's pending rows that the batch superseded and
    /// the keys that still have a leased (in-flight) row in the store. A row that is left pending, has an enqueue
    /// lease, and has nothing older unfinished (no leased row in the store, no earlier open row in the batch) is
    /// leased at once; anything else waits for the claim, which keeps the order per key.
    func resolve(supersededInStore: [Key: Set<String>], leasedInStore: Set<Key> = []) -> [Row] {
        var rows = deliveries
        var pending: [Key: Int] = [:]  // the batch's newest pending row per key
        var storeConsumed = Set<Key>()
        for i in rows.indices {
            let key = Key(target: rows[i].target, orderingKey: rows[i].orderingKey)
            var superseded = Set<String>()
            if storeConsumed.insert(key).inserted { superseded.formUnion(supersededInStore[key] ?? []) }
            if let older = pending.removeValue(forKey: key) {
                superseded.insert(rows[older].status)
                rows[older].state = "superseded"
                rows[older].lastError = Self.supersededReason
                rows[older].finishedAt = rows[i].createdAt
            }
            if rows[i].isRootlyResolve && superseded.contains("firing") {
                rows[i].state = "superseded"
                rows[i].lastError = Self.nothingToResolve
                rows[i].finishedAt = rows[i].createdAt
            } else {
                pending[key] = i
            }
        }
        // At most one row per key is left pending (each newer one superseded the older); it may go out now.
        for i in pending.values {
            let key = Key(target: rows[i].target, orderingKey: rows[i].orderingKey)
            guard let lease = rows[i].lease, !leasedInStore.contains(key) else { continue }
            rows[i].state = "leased"
            rows[i].leaseOwner = lease.owner
            rows[i].dueAt = rows[i].createdAt + Int64((lease.seconds * 1000).rounded())
        }
        return rows
    }

    /// The delivery a row leased at enqueue becomes, once it has its id.
    static func claimed(_ row: Row, id: Int64) -> ClaimedDelivery {
        ClaimedDelivery(
            id: id, notificationID: row.notificationID, alertIndex: row.alertIndex, target: row.target, orderingKey: row.orderingKey,
            attempts: 0, createdAt: seconds(row.createdAt), dueAt: seconds(row.createdAt), expiresAt: seconds(row.expiresAt))
    }
}
