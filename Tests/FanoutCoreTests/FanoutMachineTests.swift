// FanoutMachineTests: the pure fan-out planner — skips, deadlines, ordering, exactly-once completion, cancellation.
import FanoutCore
import XCTest

final class FanoutMachineTests: XCTestCase {
    typealias C = FanoutMachine.Candidate

    func machine(_ candidates: [C], deadline: Double = 10, strategy: HealthStrategy = .skipUnhealthy, now: Double = 100) -> FanoutMachine {
        FanoutMachine(alertName: "A", fingerprint: "0123456789abcdef", status: "firing", candidates: candidates,
                      options: .init(deadlineSeconds: deadline, strategy: strategy, defaultTimeoutSeconds: 4), now: now)
    }

    func sends(_ actions: [FanoutMachine.Action]) -> [Int: Double] {
        var out: [Int: Double] = [:]
        for a in actions { if case .send(let i, _, let t) = a { out[i] = t } }
        return out
    }

    func report(_ actions: [FanoutMachine.Action]) -> PublishReport? {
        for a in actions { if case .complete(let r) = a { return r } }
        return nil
    }

    func testPlansSkipsAndDeadlinesThenReportsInRequestOrder() {
        var m = machine([
            C(name: "a", type: "webhook", timeoutSeconds: 2),
            C(name: "b", type: "slack", enabled: false),
            C(name: "c", type: "pagerduty", health: .unhealthy),
            C(name: "d", type: "rootly", health: .degraded, timeoutSeconds: 30),
        ])
        let start = m.start(now: 100)
        XCTAssertEqual(sends(start), [0: 2, 3: 10], "own timeout, or the deadline when it is shorter")
        XCTAssertNil(report(start))
        XCTAssertEqual(m.attemptFinished(index: 3, outcome: .delivered(status: 202, action: "create", detail: "id1"), now: 100.5).count, 0)
        let end = m.attemptFinished(index: 0, outcome: .failed(kind: "timeout", status: nil, message: "slow", retryable: true, action: "post"), now: 102)
        let r = try! XCTUnwrap(report(end))
        XCTAssertEqual(r.results.map(\.target), ["a", "b", "c", "d"])
        XCTAssertEqual(r.results.map(\.outcome), [.failed, .skipped, .skipped, .succeeded])
        XCTAssertEqual(r.results[1].skipReason, .disabled)
        XCTAssertEqual(r.results[2].skipReason, .unhealthy)
        XCTAssertEqual(r.results[0].errorKind, "timeout")
        XCTAssertEqual(r.results[0].deadlineSeconds, 2)
        XCTAssertEqual(r.results[3].durationSeconds, 0.5, accuracy: 1e-9)
        XCTAssertEqual(r.results[3].detail, "id1")
        XCTAssertTrue(r.isPartialSuccess)
        XCTAssertEqual(r.durationSeconds, 2, accuracy: 1e-9)
        XCTAssertTrue(m.isComplete)
        XCTAssertEqual(m.attemptFinished(index: 0, outcome: .delivered(status: 200, action: nil, detail: nil), now: 103).count, 0, "done is final")
        XCTAssertEqual(m.cancel(now: 104).count, 0, "completion happens exactly once")
    }

    func testHealthStrategies() {
        let cs = [C(name: "h", type: "w", health: .healthy), C(name: "d", type: "w", health: .degraded),
                  C(name: "u", type: "w", health: .unhealthy), C(name: "n", type: "w", health: .unknown)]
        var all = machine(cs, strategy: .publishToAll)
        XCTAssertEqual(Set(sends(all.start(now: 100)).keys), [0, 1, 2, 3])
        var strict = machine(cs, strategy: .skipUnhealthyAndDegraded)
        XCTAssertEqual(Set(sends(strict.start(now: 100)).keys), [0, 3], "unknown health fails open")
        var normal = machine(cs, strategy: .skipUnhealthy)
        XCTAssertEqual(Set(sends(normal.start(now: 100)).keys), [0, 1, 3])
    }

    func testAllSkippedCompletesAtOnceAndCancelAccountsForInFlight() {
        var m = machine([C(name: "x", type: "w", enabled: false)])
        let r = report(m.start(now: 100))
        XCTAssertEqual(r?.results.first?.skipReason, .disabled)
        XCTAssertEqual(r?.reachedAnyTarget, false)

        var c = machine([C(name: "a", type: "w"), C(name: "b", type: "w")])
        _ = c.start(now: 100)
        _ = c.attemptFinished(index: 1, outcome: .delivered(status: 200, action: nil, detail: nil), now: 100.1)
        XCTAssertEqual(c.inFlightIndices, [0])
        let rep = try! XCTUnwrap(report(c.cancel(now: 100.2)))
        XCTAssertEqual(rep.results.map(\.outcome), [.failed, .succeeded])
        XCTAssertEqual(rep.results[0].errorKind, "cancelled")
    }

    func testAnExpiredDeadlineFailsTargetsAsTimeoutWithoutSending() {
        var m = machine([C(name: "a", type: "w")], deadline: 0)
        let actions = m.start(now: 100)
        XCTAssertTrue(sends(actions).isEmpty)
        XCTAssertEqual(report(actions)?.results.first?.errorKind, "timeout")
    }
}
