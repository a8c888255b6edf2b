// CoreDecisionTests: the decisions FanoutCore owns — per-target lanes across publishes, guard events as actions,
// the classification of what an attempt observed, and what a publish amounts to.
import FanoutCore
import TestSupport
import XCTest

final class CoreDecisionTests: XCTestCase {
    typealias C = FanoutMachine.Candidate
    var book = GuardBook()
    var rng = SplitMix64(seed: 11)

    func machine(_ candidates: [C], run: UInt64, deadline: Double = 10, now: Double = 100) -> FanoutMachine {
        FanoutMachine(
            alertName: "A\(run)", fingerprint: "f\(run)", status: "firing", candidates: candidates,
            options: .init(deadlineSeconds: deadline, strategy: .publishToAll, defaultTimeoutSeconds: 4), now: now, runID: run)
    }

    func report(_ actions: [FanoutMachine.Action]) -> PublishReport? {
        for a in actions { if case .complete(let r) = a { return r } }
        return nil
    }

    let ok = FanoutMachine.AttemptOutcome.delivered(status: 200, action: "post", detail: nil)

    // MARK: lanes

    /// A book finds each target's guard by name, with a few guards (a scan of the names) and with many (the
    /// dictionary): marking a target gone changes that target alone.
    func testGuardBookKeepsOneGuardPerNameAtAnySize() {
        for size in [3, 16, 17, 40] {
            var book = GuardBook()
            let names = (0..<size).map { "target-\($0)-with-a-name-longer-than-fifteen-bytes" }
            for n in names { book[n] = book[n] }  // a guard for every target
            for (i, n) in names.enumerated() where i % 3 == 0 { book.markGone(n) }
            book.markGone("t\(size)")  // a short name, made on first use
            for (i, n) in names.enumerated() {
                // Looked up by an equal name in other storage.
                XCTAssertEqual(book[String(decoding: Array(n.utf8), as: UTF8.self)].endpointGone, i % 3 == 0, "\(size) targets, \(n)")
            }
            XCTAssertTrue(book["t\(size)"].endpointGone)
            XCTAssertFalse(book["unknown"].endpointGone)
            XCTAssertEqual(book.guards.count, size + 1)
        }
    }

    func testALaneAdmitsItsLimitAndHandsPlacesOnFirstComeFirstServed() throws {
        let lane = C(name: "t", type: "webhook", maxInFlight: 1)
        var a = machine([lane], run: 1)
        var b = machine([lane], run: 2)
        var c = machine([lane], run: 3)
        XCTAssertEqual(a.start(now: 100, book: &book).decisions, [.send(index: 0, attempt: 1, timeoutSeconds: 4)])
        XCTAssertEqual(b.start(now: 100.1, book: &book).decisions, [], "the lane is full: b waits, nothing is sent")
        XCTAssertEqual(c.start(now: 100.2, book: &book).decisions, [])
        XCTAssertEqual(book.lanes["t"]?.inFlight, 1)
        XCTAssertEqual(Array(book.lanes["t"]?.waiting ?? []), [LaneTicket(run: 2, index: 0), LaneTicket(run: 3, index: 0)])

        // a finishes: its place goes to b (the oldest waiting), not back to the lane.
        let done = a.attemptFinished(index: 0, outcome: ok, now: 100.5, book: &book, rng: &rng).decisions
        XCTAssertEqual(done.first, .resume(LaneTicket(run: 2, index: 0)))
        XCTAssertNotNil(report(done))
        XCTAssertEqual(book.lanes["t"]?.inFlight, 1, "the place moved to b; it was not freed")
        // b starts with what is left of its deadline (10 s from 100.1), capped by the attempt timeout.
        XCTAssertEqual(b.laneGranted(index: 0, now: 100.6, book: &book).decisions, [.send(index: 0, attempt: 1, timeoutSeconds: 4)])
        let bDone = b.attemptFinished(index: 0, outcome: ok, now: 101, book: &book, rng: &rng).decisions
        XCTAssertEqual(bDone.first, .resume(LaneTicket(run: 3, index: 0)))
        XCTAssertEqual(c.laneGranted(index: 0, now: 101, book: &book).decisions.count, 1)
        XCTAssertNotNil(report(c.attemptFinished(index: 0, outcome: ok, now: 101.2, book: &book, rng: &rng)))
        XCTAssertEqual(book.lanes["t"]?.inFlight, 0, "every place given back")
        XCTAssertEqual(book.lanes["t"]?.waiting.count, 0)
    }

    func testAnAttemptWhoseDeadlinePassedInTheLaneTimesOutAndPassesThePlaceOn() throws {
        let lane = C(name: "t", type: "webhook", maxInFlight: 1)
        var a = machine([lane], run: 1)
        var b = machine([lane], run: 2, deadline: 0.5)
        var c = machine([lane], run: 3)
        _ = a.start(now: 100, book: &book)
        _ = b.start(now: 100, book: &book)
        _ = c.start(now: 100, book: &book)
        XCTAssertEqual(
            a.attemptFinished(index: 0, outcome: ok, now: 101, book: &book, rng: &rng).decisions.first, .resume(LaneTicket(run: 2, index: 0)))
        // b's deadline (100.5) passed while it waited: it ends as a timeout and hands the place to c at once.
        let late = b.laneGranted(index: 0, now: 101, book: &book).decisions
        XCTAssertEqual(late.first, .resume(LaneTicket(run: 3, index: 0)))
        let r = try XCTUnwrap(report(late))
        XCTAssertEqual(r.results[0].errorKind, .timeout)
        XCTAssertEqual(r.results[0].attempts, 0, "nothing was sent")
        XCTAssertTrue(r.results[0].message?.contains("waiting for a slot") ?? false, r.results[0].message ?? "")
        XCTAssertEqual(c.laneGranted(index: 0, now: 101, book: &book).decisions.count, 1)
    }

    func testACancelledPublishLeavesTheQueueAndGivesItsPlaceBack() throws {
        let lane = C(name: "t", type: "webhook", maxInFlight: 1)
        var a = machine([lane], run: 1)
        var b = machine([lane], run: 2)
        var c = machine([lane], run: 3)
        _ = a.start(now: 100, book: &book)
        _ = b.start(now: 100, book: &book)
        _ = c.start(now: 100, book: &book)
        // b is cancelled while queued: it leaves the queue, so a's place goes to c.
        let cancelled = try XCTUnwrap(report(b.cancel(now: 100.1, book: &book)))
        XCTAssertEqual(cancelled.results[0].errorKind, .cancelled)
        XCTAssertEqual(Array(book.lanes["t"]?.waiting ?? []), [LaneTicket(run: 3, index: 0)])
        // a is cancelled in flight: its place goes to c at once (its late transfer completion changes nothing).
        XCTAssertEqual(a.cancel(now: 100.2, book: &book).decisions.first, .resume(LaneTicket(run: 3, index: 0)))
        XCTAssertEqual(a.attemptFinished(index: 0, outcome: ok, now: 100.3, book: &book, rng: &rng), [], "done is final")
        XCTAssertEqual(book.lanes["t"]?.inFlight, 1, "c holds the one place")
        // A place granted to a publish that no longer waits is passed on (here: freed).
        XCTAssertEqual(b.laneGranted(index: 0, now: 100.4, book: &book), [])
        XCTAssertEqual(book.lanes["t"]?.inFlight, 0)
    }

    func testTargetsWithoutALimitNeverQueue() {
        var m = machine([C(name: "free", type: "webhook")], run: 1)
        var n = machine([C(name: "free", type: "webhook")], run: 2)
        XCTAssertEqual(m.start(now: 100, book: &book).decisions.count, 1)
        XCTAssertEqual(n.start(now: 100, book: &book).decisions.count, 1)
        XCTAssertNil(book.lanes["free"])
    }

    // MARK: guard events

    func testEveryBreakerMoveIsItsOwnEventInOrder() {
        book = GuardBook(config: .init(breaker: .init(consecutiveFailures: 2, cooldownSeconds: 1, successesToClose: 1)))
        var events: [GuardEvent] = []
        let fail = FanoutMachine.AttemptOutcome.transportFailed(.refused, message: "refused", idempotent: false, action: "post")
        for i in 0..<2 {
            var m = machine([C(name: "t", type: "webhook")], run: UInt64(i), deadline: 0.02, now: Double(i))
            events += m.start(now: Double(i), book: &book).guardEvents
            events += m.attemptFinished(index: 0, outcome: fail, now: Double(i) + 0.01, book: &book, rng: &rng).guardEvents
        }
        var probe = machine([C(name: "t", type: "webhook")], run: 9, now: 2.5)
        events += probe.start(now: 2.5, book: &book).guardEvents
        events += probe.attemptFinished(index: 0, outcome: ok, now: 2.6, book: &book, rng: &rng).guardEvents
        XCTAssertEqual(
            events.filter { if case .breaker = $0 { return true } else { return false } },
            [
                .breaker(target: "t", from: .closed, to: .open), .breaker(target: "t", from: .open, to: .halfOpen),
                .breaker(target: "t", from: .halfOpen, to: .closed),
            ])
    }

    func testHealthChangesAreAnnouncedOnceEach() {
        book = GuardBook(config: .init(breakersEnabled: false))
        var events: [GuardEvent] = []
        for i in 0..<6 {
            book.record("t", outcome: .failure, latency: 0.01, timedOut: false, admission: .allowed, now: 100 + Double(i) * 0.1)
            events += book.takeEvents()
        }
        XCTAssertEqual(events, [.health(target: "t", from: .unknown, to: .unhealthy)], "unknown until five samples, then one change")
        XCTAssertEqual(book.takeEvents(), [], "taken events are gone")
        book.reset("t")
        XCTAssertEqual(book.takeEvents(), [.health(target: "t", from: .unhealthy, to: .unknown)], "a reset is announced")
    }

    func testRateLimitWaitsAndGoneEndpointsAreEvents() {
        var m = machine([C(name: "r", type: "rootly", rateKey: "k", ratePerSecond: 1, rateBurst: 1)], run: 1)
        var n = machine([C(name: "r", type: "rootly", rateKey: "k", ratePerSecond: 1, rateBurst: 1)], run: 2)
        XCTAssertEqual(m.start(now: 100, book: &book).guardEvents, [])
        let waited = n.start(now: 100, book: &book)
        XCTAssertEqual(waited.guardEvents, [.rateLimitWait(target: "r", seconds: 1)])
        XCTAssertEqual(waited.decisions, [.wait(index: 0, seconds: 1)])
        let gone = m.attemptFinished(
            index: 0, outcome: .rejected(status: 410, reading: .gone, message: "gone", retryAfterSeconds: nil, idempotent: true, action: "create"),
            now: 100.1, book: &book, rng: &rng)
        XCTAssertTrue(gone.guardEvents.contains(.endpointGone(target: "r")))
    }

    // MARK: classification

    /// One attempt that fails once with `outcome`, then is retried or not.
    func retried(_ outcome: FanoutMachine.AttemptOutcome) -> (retried: Bool, result: TargetResult?) {
        book = GuardBook()
        var m = machine([C(name: "t", type: "webhook")], run: 1)
        _ = m.start(now: 100, book: &book)
        let actions = m.attemptFinished(index: 0, outcome: outcome, now: 100.01, book: &book, rng: &rng).decisions
        if case .wait? = actions.first { return (true, nil) }
        return (false, report(actions)?.results[0])
    }

    func testTheClassificationTable() {
        func transport(_ k: FailureKind, idempotent: Bool = false) -> FanoutMachine.AttemptOutcome {
            .transportFailed(k, message: k.rawValue, idempotent: idempotent, action: "post")
        }
        func answered(_ status: Int, _ reading: FanoutMachine.Rejection, idempotent: Bool = false) -> FanoutMachine.AttemptOutcome {
            .rejected(status: status, reading: reading, message: "HTTP \(status)", retryAfterSeconds: nil, idempotent: idempotent, action: "post")
        }
        // Provably not processed: repeated even without an idempotency key.
        for k in [FailureKind.refused, .dns, .connectTimeout, .overloaded] { XCTAssertTrue(retried(transport(k)).retried, "\(k)") }
        XCTAssertTrue(retried(answered(429, .retryable)).retried, "429")
        // May have been processed: repeated only with an idempotency key.
        for k in [FailureKind.reset, .timeout] {
            XCTAssertFalse(retried(transport(k)).retried, "\(k) without a key")
            XCTAssertTrue(retried(transport(k, idempotent: true)).retried, "\(k) with a key")
        }
        XCTAssertFalse(retried(answered(503, .retryable)).retried)
        XCTAssertTrue(retried(answered(503, .retryable, idempotent: true)).retried)
        // Never repeated.
        for k in [FailureKind.tls, .bodyTooLarge, .invalidRequest, .other, .cancelled] {
            let r = retried(transport(k, idempotent: true))
            XCTAssertFalse(r.retried, "\(k)")
            XCTAssertEqual(r.result?.errorKind, k)
        }
        let permanent = retried(answered(400, .permanent, idempotent: true))
        XCTAssertFalse(permanent.retried)
        XCTAssertEqual(permanent.result?.errorKind, .httpStatus)
        XCTAssertEqual(permanent.result?.retryable, false)
        let gone = retried(answered(410, .gone, idempotent: true))
        XCTAssertEqual(gone.result?.errorKind, .endpointGone)
        let unsent = retried(.notSent(.missingSecret, message: "no key"))
        XCTAssertEqual(unsent.result?.errorKind, .missingSecret)
        XCTAssertEqual(unsent.result?.attempts, 1)
    }

    func testLocalKindsLeaveTheTargetsRecordAlone() {
        for k in FailureKind.allCases {
            book = GuardBook(config: .init(breaker: .init(consecutiveFailures: 1)))
            var m = machine([C(name: "t", type: "webhook")], run: 1)
            _ = m.start(now: 100, book: &book)
            let outcome: FanoutMachine.AttemptOutcome =
                k == .format || k == .missingState || k == .missingSecret
                ? .notSent(k, message: "x") : .transportFailed(k, message: "x", idempotent: false, action: "post")
            _ = m.attemptFinished(index: 0, outcome: outcome, now: 100.01, book: &book, rng: &rng)
            XCTAssertEqual(book["t"].breaker.state.phase == .closed, k.isLocal, "\(k): local kinds do not open the breaker, others do")
        }
    }

    // MARK: the publish-result policy

    func testWhatAPublishAmountsTo() {
        func outcome(_ results: [(TargetOutcome, FailureKind?, SkipReason?)]) -> PublishOutcome {
            PublishReport(
                alertName: "A", fingerprint: "f", status: "firing",
                results: results.enumerated().map {
                    TargetResult(target: "t\($0.offset)", type: "w", outcome: $0.element.0, errorKind: $0.element.1, skipReason: $0.element.2)
                }, durationSeconds: 0, deadlineSeconds: 1
            ).outcome
        }
        XCTAssertEqual(outcome([(.succeeded, nil, nil), (.failed, .timeout, nil)]), .succeeded, "partial success is success")
        XCTAssertEqual(outcome([(.succeeded, nil, nil), (.failed, .cancelled, nil)]), .cancelled)
        XCTAssertEqual(outcome([(.succeeded, nil, nil), (.succeeded, nil, nil)]), .succeeded)
        XCTAssertEqual(outcome([(.failed, .refused, nil), (.skipped, nil, .circuitOpen)]), .allFailed)
        XCTAssertEqual(outcome([(.skipped, nil, .disabled), (.skipped, nil, .rateLimited)]), .noHealthyTargets)
        XCTAssertEqual(outcome([(.skipped, nil, .disabled)]), .noEnabledTargets)
    }

    // MARK: the defaults the README states

    /// "It opens when the failure rate reaches 50 % over at least 10 calls in 30 s, or after 5 failures in a row.
    /// After a 10 s cooldown it admits exactly one probe at a time. Two probe successes close it."
    func testTheBreakerDefaultsAreTheREADMEs() {
        var run = CircuitBreaker()
        for t in 0..<4 { run.record(.failure, admission: .allowed, now: Double(t)) }
        XCTAssertEqual(run.state, .closed, "4 failures in a row are not enough")
        run.record(.failure, admission: .allowed, now: 4)
        XCTAssertEqual(run.state, .open(until: 14), "the 5th opens it, for 10 s")
        XCTAssertEqual(run.admit(now: 13.9), .rejected(retryAt: 14))
        XCTAssertEqual(run.admit(now: 14), .probe)
        XCTAssertEqual(run.admit(now: 14), .rejected(retryAt: 24), "one probe at a time")
        run.record(.success, admission: .probe, now: 14.1)
        XCTAssertEqual(run.state.phase, .halfOpen, "one probe success is not enough")
        XCTAssertEqual(run.admit(now: 14.2), .probe)
        run.record(.success, admission: .probe, now: 14.3)
        XCTAssertEqual(run.state, .closed, "two close it")

        // The rate: alternating failures never make 5 in a row; the 10th call at 50 % opens it.
        var rate = CircuitBreaker()
        for i in 0..<9 { rate.record(i % 2 == 0 ? .success : .failure, admission: .allowed, now: Double(i)) }
        XCTAssertEqual(rate.state, .closed, "4 of 9 failed, below the volume of 10")
        rate.record(.failure, admission: .allowed, now: 9)
        XCTAssertEqual(rate.state.phase, .open, "5 of 10 failed: 50 %")
        // … within 30 s: the same calls spread over more than 30 s do not open it.
        var spread = CircuitBreaker()
        for i in 0..<10 { spread.record(i % 2 == 0 ? .success : .failure, admission: .allowed, now: Double(i) * 4) }
        XCTAssertEqual(spread.state, .closed, "only the last 30 s count")
    }

    /// "Success ratio and mean latency over 60 s; degraded (ratio < 0.9 or mean latency > 2 s), unhealthy
    /// (ratio < 0.5), unknown (fewer than 5 samples, or nothing for 5 min); one trial every 5 s; 3 successes in
    /// a row clear the old evidence."
    func testTheHealthDefaultsAreTheREADMEs() {
        var h = TargetHealth()
        for i in 0..<4 { h.record(success: true, latencySeconds: 0.1, now: Double(i)) }
        XCTAssertEqual(h.status(now: 4), .unknown, "4 samples")
        h.record(success: true, latencySeconds: 0.1, now: 4)
        XCTAssertEqual(h.status(now: 4), .healthy, "5 samples")
        XCTAssertEqual(h.status(now: 59), .healthy)
        XCTAssertEqual(h.status(now: 65), .unknown, "the samples left the 60 s window")
        var probed = TargetHealth()
        probed.recordProbe(reachable: false, now: 10)
        XCTAssertEqual(probed.status(now: 309), .unhealthy, "an unreachable endpoint stays evidence for 5 min")
        XCTAssertEqual(probed.status(now: 311), .unknown)

        var ratio = TargetHealth()
        for i in 0..<10 { ratio.record(success: i != 0, latencySeconds: 0.1, now: Double(i)) }
        XCTAssertEqual(ratio.status(now: 10), .healthy, "0.9 is not below 0.9")
        ratio.record(success: false, latencySeconds: 0.1, now: 10)
        XCTAssertEqual(ratio.status(now: 10), .degraded, "9 of 11 < 0.9")
        var half = TargetHealth()
        for i in 0..<10 { half.record(success: i % 2 == 0, latencySeconds: 0.1, now: Double(i)) }
        XCTAssertEqual(half.status(now: 10), .degraded, "0.5 is not below 0.5")
        half.record(success: false, latencySeconds: 0.1, now: 10)
        XCTAssertEqual(half.status(now: 10), .unhealthy, "5 of 11 < 0.5")
        // Old samples leave the 60 s window: the bad ones above are gone a minute later.
        for i in 0..<5 { half.record(success: true, latencySeconds: 0.1, now: 80 + Double(i)) }
        XCTAssertEqual(half.status(now: 85), .healthy)

        var slow = TargetHealth()
        for i in 0..<5 { slow.record(success: true, latencySeconds: 2.0, now: Double(i)) }
        XCTAssertEqual(slow.status(now: 5), .healthy, "a mean of exactly 2 s is not above 2 s")
        slow.record(success: true, latencySeconds: 2.6, now: 5)
        XCTAssertEqual(slow.status(now: 5), .degraded, "a mean above 2 s")

        var trial = TargetHealth()
        XCTAssertTrue(trial.admitTrial(now: 100))
        XCTAssertFalse(trial.admitTrial(now: 104.9))
        XCTAssertTrue(trial.admitTrial(now: 105), "one trial every 5 s")

        var recover = TargetHealth()
        for i in 0..<10 { recover.record(success: false, latencySeconds: 0.1, now: Double(i)) }
        for i in 0..<2 { recover.record(success: true, latencySeconds: 0.1, now: 10 + Double(i)) }
        XCTAssertEqual(recover.status(now: 12), .unhealthy, "2 successes")
        recover.record(success: true, latencySeconds: 0.1, now: 12)
        XCTAssertEqual(recover.status(now: 12), .unknown, "the 3rd in a row clears the evidence")
    }
}
