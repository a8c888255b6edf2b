// Admission: which submitted request goes to curl next — a value type with no I/O and no clock of its own.
import DequeModule
import HeapModule

/// The reactor's admission decisions: requests to one host are admitted first-in first-out, hosts with requests
/// waiting take turns (round-robin), at most `maxPerHost` requests per host and `maxTotal` in all are with curl,
/// at most `maxQueued` wait, and a waiting request whose overall deadline passes leaves the queue.
///
/// It holds the waiting requests as opaque items keyed by an id, and only decides; `ReactorCore` executes: it
/// hands to curl what ``submit(_:id:host:deadline:)`` and ``next()`` admit, completes what ``expire(now:)``,
/// ``remove(id:)`` and ``removeAll()`` return, and calls ``finished(host:)`` whenever a request it admitted
/// leaves curl (or could not be handed to it). Hosts are numbered slots (``slot(for:)``), so the per-request
/// path hashes the host's key once. Idle host records are kept while there are at most `idleHostsKept`.
///
/// Invariants (checked by the tests): `inFlight` is the number of admitted requests not yet `finished`; every
/// waiting item comes out exactly once, by `next`, `expire`, `remove` or `removeAll`.
struct Admission<Item> {
    /// What `submit` decided.
    enum Submission: Equatable {
        /// There was room: the request counts as in flight and goes to curl now.
        case admitted
        /// It waits for room (`next()` returns it when its turn comes).
        case queued
        /// The queue is full: refuse it.
        case overloaded
    }

    struct Host {
        var key: String
        var inFlight = 0
        /// Ids in arrival order; some may have left already (`stale` of them), dropped lazily.
        var waiting = Deque<UInt64>()
        var stale = 0
        var inReadyList = false
        var inUse = true
    }

    private struct Waiting {
        let item: Item
        let host: Int
        let deadline: UInt64
    }

    /// A waiting request's id as the key of `waiting`, hashed with the SplitMix64 finaliser instead of SipHash:
    /// ids are the reactor's own sequence numbers (nobody outside chooses them, so no flooding to defend
    /// against), and this map is on the path of every request that waits.
    private struct WaitingKey: Hashable {
        let id: UInt64
        init(_ id: UInt64) { self.id = id }
        func hash(into h: inout Hasher) { h.combine(id) }
        func _rawHashValue(seed: Int) -> Int {
            var x = id ^ UInt64(UInt(bitPattern: seed))
            x = (x ^ (x >> 30)) &* 0xbf58_476d_1ce4_e5b9
            x = (x ^ (x >> 27)) &* 0x94d0_49bb_1331_11eb
            return Int(truncatingIfNeeded: x ^ (x >> 31))
        }
    }

    private struct Due: Comparable {
        let due: UInt64
        let id: UInt64
        static func < (a: Due, b: Due) -> Bool { (a.due, a.id) < (b.due, b.id) }
    }

    let maxPerHost: Int
    let maxTotal: Int
    let maxQueued: Int
    let idleHostsKept: Int

    private(set) var hosts: [Host] = []
    private var slots: [String: Int] = [:]
    private var freeSlots: [Int] = []
    /// Hosts that have a request waiting and room for it, in turn order.
    private var ready = Deque<Int>()
    private var waiting: [WaitingKey: Waiting] = [:]
    private var deadlines = Heap<Due>()
    /// Admitted requests not yet finished.
    private(set) var inFlight = 0

    init(maxPerHost: Int, maxTotal: Int, maxQueued: Int, idleHostsKept: Int = 64) {
        self.maxPerHost = maxPerHost
        self.maxTotal = maxTotal
        self.maxQueued = maxQueued
        self.idleHostsKept = idleHostsKept
    }

    /// Requests waiting.
    var queued: Int { waiting.count }
    /// Host records kept (busy or idle).
    var hostCount: Int { slots.count }
    /// Entries in the hosts' FIFOs, including those already gone and not yet dropped (tests: the FIFOs do not
    /// hold on to finished requests).
    var fifoEntries: Int { hosts.reduce(0) { $0 + ($1.inUse ? $1.waiting.count : 0) } }

    /// The slot of the host with `key`, made on first use.
    mutating func slot(for key: String) -> Int {
        if let s = slots[key] { return s }
        let s: Int
        if let free = freeSlots.popLast() {
            s = free
            hosts[s] = Host(key: key)
        } else {
            s = hosts.count
            hosts.append(Host(key: key))
        }
        slots[key] = s
        return s
    }

    /// Takes a request in. `deadline`: its overall deadline on the caller's clock (`.max`: none).
    mutating func submit(_ item: Item, id: UInt64, host s: Int, deadline: UInt64) -> Submission {
        if hosts[s].waiting.count == hosts[s].stale && hosts[s].inFlight < maxPerHost && inFlight < maxTotal {
            hosts[s].inFlight += 1
            inFlight += 1
            return .admitted
        }
        guard waiting.count < maxQueued else {
            forgetIfIdle(s)
            return .overloaded
        }
        waiting[WaitingKey(id)] = Waiting(item: item, host: s, deadline: deadline)
        hosts[s].waiting.append(id)
        if deadline != .max { deadlines.insert(Due(due: deadline, id: id)) }
        markReady(s)
        return .queued
    }

    /// The next waiting request to admit, if there is room: hosts in turn, each host's requests in order. It
    /// counts as in flight from here.
    mutating func next() -> Item? {
        guard !waiting.isEmpty else { return nil }
        while inFlight < maxTotal, let s = ready.popFirst() {
            hosts[s].inReadyList = false
            var admitted: Item?
            while hosts[s].inFlight < maxPerHost, let id = hosts[s].waiting.popFirst() {
                guard let w = waiting.removeValue(forKey: WaitingKey(id)) else {
                    hosts[s].stale -= 1  // left the queue earlier
                    continue
                }
                hosts[s].inFlight += 1
                inFlight += 1
                admitted = w.item
                break
            }
            markReady(s)
            if let admitted { return admitted }
            forgetIfIdle(s)
        }
        return nil
    }

    /// An admitted request left curl (completed, cancelled, or never handed over): its place is free.
    mutating func finished(host s: Int) {
        precondition(hosts[s].inFlight > 0 && inFlight > 0, "finished(host:) without an admitted request")
        hosts[s].inFlight -= 1
        inFlight -= 1
        markReady(s)
        forgetIfIdle(s)
    }

    /// Takes a waiting request out (a cancel). Nil when it is not waiting (admitted or gone already).
    mutating func remove(id: UInt64) -> Item? {
        guard let w = waiting.removeValue(forKey: WaitingKey(id)) else { return nil }
        left(w.host)
        return w.item
    }

    /// Waiting requests whose overall deadline is at or before `now`, taken out, earliest first.
    mutating func expire(now: UInt64) -> [Item] {
        var out: [Item] = []
        while let first = deadlines.min, first.due <= now {
            _ = deadlines.popMin()
            if let item = remove(id: first.id) { out.append(item) }
        }
        return out
    }

    /// The earliest overall deadline of a waiting request, if any.
    mutating func nextDeadline() -> UInt64? {
        while let first = deadlines.min, waiting[WaitingKey(first.id)] == nil { _ = deadlines.popMin() }
        // Entries of admitted or removed requests leave lazily from the top; one long wait at the top would let
        // the rest pile up, so rebuild the heap once it holds far more entries than waiting requests.
        if deadlines.count > 2 * waiting.count + 1024 {
            deadlines = Heap(waiting.compactMap { key, w in w.deadline == .max ? nil : Due(due: w.deadline, id: key.id) })
        }
        return deadlines.min?.due
    }

    /// Every waiting request, taken out: each host's in arrival order, hosts in slot order (shutdown).
    mutating func removeAll() -> [Item] {
        var out: [Item] = []
        out.reserveCapacity(waiting.count)
        for s in hosts.indices where hosts[s].inUse {
            for id in hosts[s].waiting { if let w = waiting.removeValue(forKey: WaitingKey(id)) { out.append(w.item) } }
            hosts[s].waiting.removeAll()
            hosts[s].stale = 0
        }
        deadlines = Heap()
        ready.removeAll()
        for s in hosts.indices where hosts[s].inUse { hosts[s].inReadyList = false }
        return out
    }

    // MARK: - Internals

    private mutating func markReady(_ s: Int) {
        if !hosts[s].inReadyList && hosts[s].waiting.count > hosts[s].stale && hosts[s].inFlight < maxPerHost {
            hosts[s].inReadyList = true
            ready.append(s)
        }
    }

    /// A waiting request of host `s` left other than by `next()`: drop it from the FIFO at once when it is
    /// first, and compact the FIFO when gone entries make half of it.
    private mutating func left(_ s: Int) {
        hosts[s].stale += 1
        while let first = hosts[s].waiting.first, waiting[WaitingKey(first)] == nil {
            hosts[s].waiting.removeFirst()
            hosts[s].stale -= 1
        }
        if hosts[s].stale > 0 && hosts[s].stale * 2 >= hosts[s].waiting.count {
            let live = waiting
            hosts[s].waiting.removeAll { live[WaitingKey($0)] == nil }
            hosts[s].stale = 0
        }
        forgetIfIdle(s)
    }

    /// Past `idleHostsKept` records, a host's record goes as soon as nothing is in flight or waiting for it.
    private mutating func forgetIfIdle(_ s: Int) {
        guard slots.count > idleHostsKept, hosts[s].inUse, hosts[s].inFlight == 0, hosts[s].waiting.isEmpty, !hosts[s].inReadyList else { return }
        slots[hosts[s].key] = nil
        hosts[s] = Host(key: "", inUse: false)
        freeSlots.append(s)
    }
}
