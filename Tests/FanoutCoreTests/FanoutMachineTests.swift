// FanoutMachineTests: the pure fan-out planner — skips, deadlines, ordering, exactly-once completion, cancellation.
import FanoutCore
import TestSupport
import XCTest

final class FanoutMachineTests: XCTestCase {
    typealias C = FanoutMachine.Candidate
    var book = GuardBook()
    var rng = SplitMix64(seed: 7)

    func machine(_ candidates: [C], deadline: Double = 10, strategy: HealthStrategy = .skipUnhealthy, now: Double = 100) -> FanoutMachine {
        FanoutMachine(
            alertName: "A", fingerprint: "0123456789abcdef", status: "firing", candidates: candidates,
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
            C(name: "c", type: "pagerduty"),
            C(name: "d", type: "rootly", timeoutSeconds: 30),
        ])
        teach(book: &book, "c", successes: 0, failures: 10)
        teach(book: &book, "d", successes: 8, failures: 2)
        XCTAssertNil(book.healthGate("c", strategy: .skipUnhealthy, now: 99.9), "the first encounter is a trial")
        let start = m.start(now: 100, book: &book).decisions
        XCTAssertEqual(sends(start), [0: 2, 3: 10], "own timeout, or the deadline when it is shorter")
        XCTAssertNil(report(start))
        XCTAssertEqual(
            m.attemptFinished(index: 3, outcome: .delivered(status: 202, action: "create", detail: "id1"), now: 100.5, book: &book, rng: &rng).decisions.count,
            0)
        let end = m.attemptFinished(
            index: 0,
            outcome: .transportFailed(.timeout, message: "slow", idempotent: false, action: "post"),
            now: 102, book: &book, rng: &rng
        ).decisions
        let r = try! XCTUnwrap(report(end))
        XCTAssertEqual(r.results.map(\.target), ["a", "b", "c", "d"])
        XCTAssertEqual(r.results.map(\.outcome), [.failed, .skipped, .skipped, .succeeded])
        XCTAssertEqual(r.results[1].skipReason, .disabled)
        XCTAssertEqual(r.results[2].skipReason, .unhealthy)
        XCTAssertEqual(r.results[0].errorKind, .timeout)
        XCTAssertEqual(r.results[0].deadlineSeconds, 2)
        XCTAssertEqual(r.results[3].durationSeconds, 0.5, accuracy: 1e-9)
        XCTAssertEqual(r.results[3].detail, "id1")
        XCTAssertTrue(r.isPartialSuccess)
        XCTAssertEqual(r.durationSeconds, 2, accuracy: 1e-9)
        XCTAssertTrue(m.isComplete)
        XCTAssertEqual(
            m.attemptFinished(index: 0, outcome: .delivered(status: 200, action: nil, detail: nil), now: 103, book: &book, rng: &rng).decisions.count, 0,
            "done is final")
        XCTAssertEqual(m.cancel(now: 104, book: &book).count, 0, "completion happens exactly once")
    }

    /// Feeds outcomes so the target's health becomes what the test needs (breakers off so nothing opens).
    func teach(book: inout GuardBook, _ name: String, successes: Int, failures: Int, at now: Double = 99) {
        for _ in 0..<successes { book.record(name, outcome: .success, latency: 0.01, timedOut: false, admission: .allowed, now: now) }
        for _ in 0..<failures { book.record(name, outcome: .failure, latency: 0.01, timedOut: false, admission: .allowed, now: now) }
    }

    func testHealthStrategies() {
        book = GuardBook(config: .init(breakersEnabled: false))
        teach(book: &book, "h", successes: 10, failures: 0)
        teach(book: &book, "d", successes: 8, failures: 2)
        teach(book: &book, "u", successes: 1, failures: 9)
        XCTAssertEqual(book.health("h", now: 100), .healthy)
        XCTAssertEqual(book.health("d", now: 100), .degraded)
        XCTAssertEqual(book.health("u", now: 100), .unhealthy)
        XCTAssertEqual(book.health("n", now: 100), .unknown)
        // Each skipped target gets one trial request per trial interval; use those up first.
        XCTAssertNil(book.healthGate("u", strategy: .skipUnhealthy, now: 99.5))
        XCTAssertEqual(book.healthGate("u", strategy: .skipUnhealthy, now: 99.6), .unhealthy)
        XCTAssertNil(book.healthGate("d", strategy: .skipUnhealthyAndDegraded, now: 99.5))
        XCTAssertNil(book.healthGate("u", strategy: .skipUnhealthy, now: 104.6), "another trial after the interval")
        XCTAssertNil(book.healthGate("u", strategy: .skipUnhealthy, now: 99.7), "a clock going backwards allows a trial")
        let cs = [C(name: "h", type: "w"), C(name: "d", type: "w"), C(name: "u", type: "w"), C(name: "n", type: "w")]
        var all = machine(cs, strategy: .publishToAll)
        XCTAssertEqual(Set(sends(all.start(now: 100, book: &book).decisions).keys), [0, 1, 2, 3])
        var strict = machine(cs, strategy: .skipUnhealthyAndDegraded)
        XCTAssertEqual(Set(sends(strict.start(now: 100, book: &book).decisions).keys), [0, 3], "unknown health fails open")
        var normal = machine(cs, strategy: .skipUnhealthy)
        XCTAssertEqual(Set(sends(normal.start(now: 100, book: &book).decisions).keys), [0, 1, 3])
    }

    func testAllSkippedCompletesAtOnceAndCancelAccountsForInFlight() {
        var m = machine([C(name: "x", type: "w", enabled: false)])
        let r = report(m.start(now: 100, book: &book).decisions)
        XCTAssertEqual(r?.results.first?.skipReason, .disabled)
        XCTAssertEqual(r?.reachedAnyTarget, false)

        var c = machine([C(name: "a", type: "w"), C(name: "b", type: "w")])
        _ = c.start(now: 100, book: &book).decisions
        _ = c.attemptFinished(index: 1, outcome: .delivered(status: 200, action: nil, detail: nil), now: 100.1, book: &book, rng: &rng).decisions
        XCTAssertEqual(c.inFlightIndices, [0])
        let rep = try! XCTUnwrap(report(c.cancel(now: 100.2, book: &book)))
        XCTAssertEqual(rep.results.map(\.outcome), [.failed, .succeeded])
        XCTAssertEqual(rep.results[0].errorKind, .cancelled)
    }

    func testAnExpiredDeadlineFailsTargetsAsTimeoutWithoutSending() {
        var m = machine([C(name: "a", type: "w")], deadline: 0)
        let actions = m.start(now: 100, book: &book).decisions
        XCTAssertTrue(sends(actions).isEmpty)
        XCTAssertEqual(report(actions)?.results.first?.errorKind, .timeout)
    }

    func testDisabledTargetsDoNotMakeAPublishPartial() {
        func rep(_ outcomes: [(TargetOutcome, SkipReason?)]) -> PublishReport {
            PublishReport(
                alertName: "A", fingerprint: "0000000000000001", status: "firing",
                results: outcomes.enumerated().map { TargetResult(target: "t\($0.offset)", type: "w", outcome: $0.element.0, skipReason: $0.element.1) },
                durationSeconds: 0, deadlineSeconds: 1)
        }
        let withDisabled = rep([(.succeeded, nil), (.skipped, .disabled), (.succeeded, nil)])
        XCTAssertTrue(withDisabled.allSucceeded, "enabled: false is the operator's choice, not a failure")
        XCTAssertFalse(withDisabled.isPartialSuccess)
        XCTAssertEqual(withDisabled.disabled, 1)
        let rateLimited = rep([(.succeeded, nil), (.skipped, .rateLimited)])
        XCTAssertFalse(rateLimited.allSucceeded, "a rate-limit skip is a delivery that did not happen")
        XCTAssertTrue(rateLimited.isPartialSuccess)
        let onlyDisabled = rep([(.skipped, .disabled)])
        XCTAssertFalse(onlyDisabled.allSucceeded, "nothing was delivered")
        XCTAssertFalse(onlyDisabled.isPartialSuccess)
    }

    func testFailuresFoundBeforeSendingDoNotOpenTheBreaker() {
        for i in 0..<12 {
            var m = machine([C(name: "r", type: "rootly")], now: 100 + Double(i))
            _ = m.start(now: 100 + Double(i), book: &book).decisions
            let done = m.attemptFinished(
                index: 0,
                outcome: .notSent(.missingState, message: "no id"),
                now: 100 + Double(i), book: &book, rng: &rng
            ).decisions
            XCTAssertEqual(report(done)?.results.first?.errorKind, .missingState, "attempt \(i) was tried, not skipped")
        }
        XCTAssertEqual(book["r"].breaker.state.name, "closed")
    }
}
