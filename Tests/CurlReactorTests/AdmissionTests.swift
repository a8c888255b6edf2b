// AdmissionTests: the reactor's admission decisions as a value type — caps, FIFO per host, round-robin across
// hosts, the bounded queue, deadlines, removal and host records — with plain values for requests and an injected clock.
import XCTest

@testable import CurlReactor

final class AdmissionTests: XCTestCase {
    typealias A = Admission<String>

    /// Submits `names` to host `key`, each with its index as id offset by `base`.
    func submit(_ a: inout A, _ key: String, _ names: [String], base: UInt64, deadline: UInt64 = .max) -> [A.Submission] {
        let slot = a.slot(for: key)
        return names.enumerated().map { a.submit($0.element, id: base + UInt64($0.offset), host: slot, deadline: deadline) }
    }

    func drain(_ a: inout A) -> [String] {
        var out: [String] = []
        while let x = a.next() { out.append(x) }
        return out
    }

    func testPerHostAndTotalCaps() {
        var a = A(maxPerHost: 2, maxTotal: 3, maxQueued: 100)
        XCTAssertEqual(submit(&a, "h1", ["a1", "a2", "a3"], base: 0), [.admitted, .admitted, .queued], "two per host")
        XCTAssertEqual(submit(&a, "h2", ["b1", "b2"], base: 10), [.admitted, .queued], "three in all")
        XCTAssertEqual(a.inFlight, 3)
        XCTAssertEqual(a.queued, 2)
        XCTAssertNil(a.next(), "no room")
        a.finished(host: a.slot(for: "h2"))
        XCTAssertEqual(drain(&a), ["b2"], "h1 is at its own cap, so the free place goes to h2")
        a.finished(host: a.slot(for: "h1"))
        XCTAssertEqual(drain(&a), ["a3"])
        XCTAssertEqual(a.inFlight, 3)
        XCTAssertEqual(a.queued, 0)
    }

    func testFIFOPerHostAndHostsTakeTurns() {
        var a = A(maxPerHost: 4, maxTotal: 1, maxQueued: 100)
        XCTAssertEqual(submit(&a, "A", ["A1", "A2", "A3", "A4"], base: 0), [.admitted, .queued, .queued, .queued])
        XCTAssertEqual(submit(&a, "B", ["B1", "B2", "B3", "B4"], base: 10), Array(repeating: .queued, count: 4))
        var order = ["A1"]
        let slots = ["A": a.slot(for: "A"), "B": a.slot(for: "B")]
        while let last = order.last {
            a.finished(host: slots[String(last.prefix(1)), default: -1])
            guard let next = a.next() else { break }
            XCTAssertNil(a.next(), "one at a time under a total cap of 1")
            order.append(next)
        }
        XCTAssertEqual(order, ["A1", "A2", "B1", "A3", "B2", "A4", "B3", "B4"])
        XCTAssertEqual(a.inFlight, 0)
        XCTAssertEqual(a.queued, 0)
    }

    func testTheQueueIsBounded() {
        var a = A(maxPerHost: 1, maxTotal: 1, maxQueued: 2)
        XCTAssertEqual(submit(&a, "h", ["1", "2", "3", "4"], base: 0), [.admitted, .queued, .queued, .overloaded])
        XCTAssertEqual(a.queued, 2)
    }

    func testDeadlinesExpireWaitingRequestsOnly() {
        var a = A(maxPerHost: 1, maxTotal: 1, maxQueued: 100)
        let h = a.slot(for: "h")
        XCTAssertEqual(a.submit("running", id: 1, host: h, deadline: 50), .admitted)
        XCTAssertEqual(a.submit("late", id: 2, host: h, deadline: 100), .queued)
        XCTAssertEqual(a.submit("later", id: 3, host: h, deadline: 300), .queued)
        XCTAssertEqual(a.submit("never", id: 4, host: h, deadline: .max), .queued)
        XCTAssertEqual(a.nextDeadline(), 100, "an admitted request's deadline is curl's, not admission's")
        XCTAssertEqual(a.expire(now: 99), [])
        XCTAssertEqual(a.expire(now: 100), ["late"])
        XCTAssertEqual(a.nextDeadline(), 300)
        a.finished(host: h)
        XCTAssertEqual(a.next(), "later", "FIFO continues past the expired one")
        XCTAssertNil(a.nextDeadline(), "the admitted one's entry left the heap")
        XCTAssertEqual(a.expire(now: 1_000), [], "admitted: no longer admission's to expire")
        XCTAssertEqual(a.queued, 1)
    }

    func testRemovedRequestsLeaveTheFIFOAtOnceAndAreNeverAdmitted() {
        var a = A(maxPerHost: 1, maxTotal: 1, maxQueued: 1000)
        _ = submit(&a, "h", (0..<101).map(String.init), base: 0)
        XCTAssertEqual(a.remove(id: 0), nil, "admitted: not waiting")
        for id in 1...60 { XCTAssertEqual(a.remove(id: UInt64(id)), String(id)) }
        XCTAssertNil(a.remove(id: 5), "twice")
        XCTAssertLessThanOrEqual(a.fifoEntries, 40, "removed entries do not pile up in the FIFO")
        a.finished(host: a.slot(for: "h"))
        XCTAssertEqual(a.next(), "61")
        XCTAssertEqual(a.queued, 39)
        let rest = a.removeAll()
        XCTAssertEqual(rest, (62...100).map(String.init), "shutdown gets each waiting request once, in order")
        XCTAssertEqual(a.queued, 0)
        XCTAssertEqual(a.fifoEntries, 0)
        XCTAssertNil(a.next())
    }

    func testIdleHostRecordsArePrunedPastTheKeptNumber() {
        var a = A(maxPerHost: 1, maxTotal: 100, maxQueued: 100, idleHostsKept: 3)
        for i in 0..<10 {
            let s = a.slot(for: "h\(i)")
            XCTAssertEqual(a.submit("r\(i)", id: UInt64(i), host: s, deadline: .max), .admitted)
        }
        XCTAssertEqual(a.hostCount, 10, "busy hosts are kept")
        for i in 0..<10 { a.finished(host: a.slot(for: "h\(i)")) }
        XCTAssertEqual(a.hostCount, 3, "idle hosts beyond three go")
        let reused = a.slot(for: "new")
        XCTAssertLessThan(reused, 10, "a freed slot is reused")
        XCTAssertEqual(a.submit("x", id: 99, host: reused, deadline: .max), .admitted)
        XCTAssertEqual(a.inFlight, 1)
    }
}
