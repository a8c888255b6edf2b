// CountWaiter: the waiting half of the CLI's tallies — a completion count and the one caller waiting for it to reach a number.
import Synchronization

/// A count that one caller can wait on. It lives inside its owner's locked state, so the count and the waiter
/// change together; continuations are resumed by the caller outside the lock.
struct CountWaiter {
    private(set) var count = 0
    private var waiter: (target: Int, continuation: CheckedContinuation<Void, Never>)?

    /// Counts `n` more; the waiter to resume if the count just reached its target.
    mutating func add(_ n: Int = 1) -> CheckedContinuation<Void, Never>? {
        count += n
        guard let w = waiter, count >= w.target else { return nil }
        waiter = nil
        return w.continuation
    }

    /// Parks `c` until the count reaches `target`; false when it already has (then resume `c` at once).
    mutating func park(_ c: CheckedContinuation<Void, Never>, until target: Int) -> Bool {
        guard count < target else { return false }
        precondition(waiter == nil, "one waiter at a time")
        waiter = (target, c)
        return true
    }
}

/// Completions counted from any thread; `wait(for:)` returns once that many arrived.
final class CompletionCount: Sendable {
    private let state = Mutex(CountWaiter())

    func tick() { state.withLock { $0.add() }?.resume() }

    func wait(for n: Int) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            if !state.withLock({ $0.park(c, until: n) }) { c.resume() }
        }
    }
}
