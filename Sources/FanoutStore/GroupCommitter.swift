// GroupCommitter: runs work from many callers in batches — everything that arrived while one batch ran goes into the next.
import Synchronization

/// Many callers `submit` one item each and wait for its result; a single drainer hands every item that is
/// waiting to `flush` at once (at most `maxBatch`), so under load many items share one transaction and one
/// sync, and with one caller there is no added delay. `flush` returns one output per item, in order.
final class GroupCommitter<Item: Sendable, Output: Sendable>: Sendable {
    typealias Flush = @Sendable ([Item]) async throws -> [Output]

    private struct Waiting: Sendable {
        var item: Item
        var continuation: CheckedContinuation<Output, any Error>
    }

    private struct State: Sendable {
        var waiting: [Waiting] = []
        var draining = false
    }

    private let state = Mutex(State())
    private let flush: Flush
    private let maxBatch: Int

    init(maxBatch: Int, flush: @escaping Flush) {
        self.maxBatch = maxBatch
        self.flush = flush
    }

    func submit(_ item: Item) async throws -> Output {
        try await withCheckedThrowingContinuation { c in
            let startDrainer = state.withLock { s -> Bool in
                s.waiting.append(Waiting(item: item, continuation: c))
                guard !s.draining else { return false }
                s.draining = true
                return true
            }
            if startDrainer { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { s -> [Waiting] in
                guard !s.waiting.isEmpty else {
                    s.draining = false
                    return []
                }
                let n = min(maxBatch, s.waiting.count)
                let b = Array(s.waiting.prefix(n))
                s.waiting.removeFirst(n)
                return b
            }
            if batch.isEmpty { return }
            do {
                let out = try await flush(batch.map(\.item))
                precondition(out.count == batch.count, "one output per item")
                for (w, o) in zip(batch, out) { w.continuation.resume(returning: o) }
            } catch {
                for w in batch { w.continuation.resume(throwing: error) }
            }
        }
    }
}
