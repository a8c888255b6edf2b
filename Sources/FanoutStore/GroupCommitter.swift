// GroupCommitter: runs work from many callers in batches — everything that arrived while one batch ran goes into the next.
import NIOConcurrencyHelpers

/// Many callers `submit` items and wait for their results; a single drainer hands every item that is waiting
/// to `flush` at once (about `maxBatch`; one caller's items are never split), so under load many items share
/// one transaction and one sync, and with one caller there is no added delay. `flush` returns one output per
/// item, in order.
final class GroupCommitter<Item: Sendable, Output: Sendable>: Sendable {
    typealias Flush = @Sendable ([Item]) async throws -> [Output]

    private struct Waiting: Sendable {
        var items: [Item]
        var continuation: CheckedContinuation<[Output], any Error>
    }

    private struct State: Sendable {
        var waiting: [Waiting] = []
        var draining = false
    }

    private let state = NIOLockedValueBox(State())
    private let flush: Flush
    private let maxBatch: Int

    init(maxBatch: Int, flush: @escaping Flush) {
        self.maxBatch = maxBatch
        self.flush = flush
    }

    func submit(_ item: Item) async throws -> Output {
        try await submit([item])[0]
    }

    /// Submits `items` together (they go into one flush) and returns their outputs in order.
    func submit(_ items: [Item]) async throws -> [Output] {
        guard !items.isEmpty else { return [] }
        return try await withCheckedThrowingContinuation { c in
            let startDrainer = state.withLockedValue { s -> Bool in
                s.waiting.append(Waiting(items: items, continuation: c))
                guard !s.draining else { return false }
                s.draining = true
                return true
            }
            if startDrainer { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLockedValue { s -> [Waiting] in
                guard !s.waiting.isEmpty else {
                    s.draining = false
                    return []
                }
                var n = 0
                var items = 0
                while n < s.waiting.count, n == 0 || items + s.waiting[n].items.count <= maxBatch {
                    items += s.waiting[n].items.count
                    n += 1
                }
                let b = Array(s.waiting.prefix(n))
                s.waiting.removeFirst(n)
                return b
            }
            if batch.isEmpty { return }
            do {
                let out = try await flush(batch.flatMap(\.items))
                precondition(out.count == batch.reduce(0) { $0 + $1.items.count }, "one output per item")
                var i = 0
                for w in batch {
                    w.continuation.resume(returning: Array(out[i..<i + w.items.count]))
                    i += w.items.count
                }
            } catch {
                for w in batch { w.continuation.resume(throwing: error) }
            }
        }
    }
}
