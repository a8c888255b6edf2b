// ResilienceTests: table tests for the breaker, health, retry policy and budget, rate limiter and adaptive deadline,
// and the machine's retry, rate-limit and breaker paths — all with an injected clock and RNG.
import FanoutCore
import TestSupport
import XCTest

final class ResilienceTests: XCTestCase {
    func testBreakerOpensOnARunOfFailuresAdmitsExactlyOneProbeAndCloses() {
        var b = CircuitBreaker(config: .init(minimumVolume: 100, consecutiveFailures: 3, cooldownSeconds: 10, successesToClose: 2))
        for t in 0..<3 {
            XCTAssertEqual(b.admit(now: Double(t)), .allowed)
            b.record(.failure, admission: .allowed, now: Double(t))
        }
        XCTAssertEqual(b.state, .open(until: 12))
        XCTAssertEqual(b.admit(now: 5), .rejected(retryAt: 12))
        XCTAssertEqual(b.admit(now: 12), .probe, "after the cooldown one caller probes")
        XCTAssertEqual(b.admit(now: 12.1), .rejected(retryAt: 22.1), "exactly one probe at a time")
        b.record(.success, admission: .probe, now: 12.2)
        XCTAssertEqual(b.state, .halfOpen(probeOut: false, successes: 1))
        XCTAssertEqual(b.admit(now: 12.3), .probe, "the next probe")
        b.record(.success, admission: .probe, now: 12.4)
        XCTAssertEqual(b.state, .closed)
        XCTAssertEqual(b.admit(now: 12.5), .allowed)
        XCTAssertEqual(b.transitions, 3)
    }

    func testBreakerFailureRateNeedsMinimumVolumeAndProbeFailureReopens() {
        var b = CircuitBreaker(config: .init(failureRateThreshold: 0.5, minimumVolume: 10, windowSeconds: 30, consecutiveFailures: 100, cooldownSeconds: 5))
        for i in 0..<9 { b.record(i % 2 == 0 ? .failure : .success, admission: .allowed, now: Double(i)) }
        XCTAssertEqual(b.state, .closed, "9 calls are below the minimum volume")
        b.record(.failure, admission: .allowed, now: 9)
        XCTAssertEqual(b.state, .open(until: 14), "6 of 10 failed")
        XCTAssertEqual(b.admit(now: 14), .probe)
        b.record(.failure, admission: .probe, now: 14.5)
        XCTAssertEqual(b.state, .open(until: 19.5), "a failed probe re-opens with a fresh cooldown")
        XCTAssertEqual(b.admit(now: 19.5), .probe)
        b.record(.neutral, admission: .probe, now: 19.6)
        XCTAssertEqual(b.admit(now: 19.7), .probe, "a cancelled probe frees the slot")
        // Old outcomes leave the window.
        var w = CircuitBreaker(config: .init(failureRateThreshold: 0.5, minimumVolume: 4, windowSeconds: 10, consecutiveFailures: 100))
        for i in 0..<3 { w.record(.failure, admission: .allowed, now: Double(i)) }
        w.record(.failure, admission: .allowed, now: 100)
        XCTAssertEqual(w.state, .closed, "failures 100 s ago do not count")
    }

    func testHealthFromOutcomesWithStalenessAndProbes() {
        var h = TargetHealth(config: .init(windowSeconds: 60, minimumSamples: 5, staleAfterSeconds: 120, degradedLatencySeconds: 1))
        XCTAssertEqual(h.status(now: 0), .unknown)
        for i in 0..<4 { h.record(success: true, latencySeconds: 0.1, now: Double(i)) }
        XCTAssertEqual(h.status(now: 4), .unknown, "too few samples")
        h.record(success: true, latencySeconds: 0.1, now: 4)
        XCTAssertEqual(h.status(now: 5), .healthy)
        for i in 0..<5 { h.record(success: true, latencySeconds: 3, now: 5 + Double(i)) }
        XCTAssertEqual(h.status(now: 10), .degraded, "slow on average")
        for i in 0..<20 { h.record(success: false, latencySeconds: 0.1, now: 10 + Double(i) * 0.1) }
        XCTAssertEqual(h.status(now: 12), .unhealthy)
        XCTAssertEqual(h.status(now: 500), .unknown, "stale evidence is no evidence")
        // Recovery: three successes in a row while unhealthy clear the old evidence.
        var r = TargetHealth(config: .init(minimumSamples: 5, recoveryRun: 3))
        for i in 0..<10 { r.record(success: false, latencySeconds: 0.1, now: Double(i)) }
        XCTAssertEqual(r.status(now: 10), .unhealthy)
        r.record(success: true, latencySeconds: 0.1, now: 11)
        r.record(success: true, latencySeconds: 0.1, now: 12)
        XCTAssertEqual(r.status(now: 12), .unhealthy)
        r.record(success: true, latencySeconds: 0.1, now: 13)
        XCTAssertEqual(r.status(now: 13), .unknown, "eligible again")
        var p = TargetHealth()
        p.recordProbe(reachable: false, now: 10)
        XCTAssertEqual(p.status(now: 11), .unhealthy, "an unreachable endpoint")
        p.recordProbe(reachable: true, now: 20)
        XCTAssertEqual(p.status(now: 21), .unknown)
    }

    func testRetryAfterFormatsAndBackoffCeilings() {
        let now = 784_111_777.0  // Sun, 06 Nov 1994 08:49:37 GMT
        XCTAssertEqual(RetryAfter.seconds("120", nowEpochSeconds: now), 120)
        XCTAssertEqual(RetryAfter.seconds(" 1 ", nowEpochSeconds: now), 1)
        XCTAssertEqual(RetryAfter.seconds("Sun, 06 Nov 1994 08:49:47 GMT", nowEpochSeconds: now), 10)
        XCTAssertEqual(RetryAfter.seconds("Sunday, 06-Nov-94 08:50:37 GMT", nowEpochSeconds: now), 60)
        XCTAssertEqual(RetryAfter.seconds("Sun Nov  6 08:49:40 1994", nowEpochSeconds: now), 3)
        XCTAssertEqual(RetryAfter.seconds("Sun, 06 Nov 1994 08:00:00 GMT", nowEpochSeconds: now), 0, "past dates mean now")
        for bad in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994 25:00:00 GMT", "Sun, 06 Foo 1994 08:49:37 GMT"] {
            XCTAssertNil(RetryAfter.seconds(bad, nowEpochSeconds: now), bad)
        }
        let p = RetryPolicy(maxAttempts: 5, baseSeconds: 0.1, capSeconds: 2)
        XCTAssertEqual([1, 2, 3, 5, 6, 40].map { p.backoffCeiling(afterAttempt: $0) }, [0.1, 0.2, 0.4, 1.6, 2, 2])
        var rng = SplitMix64(seed: 1)
        for attempt in 1...8 {
            let d = p.backoff(afterAttempt: attempt, rng: &rng)
            XCTAssertTrue(d >= 0 && d <= p.backoffCeiling(afterAttempt: attempt))
        }
        XCTAssertTrue(RetryPolicy.isRetryableStatus(429) && RetryPolicy.isRetryableStatus(503) && RetryPolicy.isRetryableStatus(408))
        XCTAssertFalse(RetryPolicy.isRetryableStatus(404) || RetryPolicy.isRetryableStatus(400) || RetryPolicy.isRetryableStatus(200))
        XCTAssertTrue(RetryPolicy.provesNotProcessed(.refused, status: nil))
        XCTAssertFalse(RetryPolicy.provesNotProcessed(.reset, status: nil), "a reset request may have been processed")
        XCTAssertTrue(RetryPolicy.provesNotProcessed(.httpStatus, status: 429), "429: the vendor refused it before processing")
        XCTAssertFalse(RetryPolicy.provesNotProcessed(.httpStatus, status: 503))
    }

    func testRetryBudgetAndTokenBucket() {
        var budget = RetryBudget(ratio: 0.2, floorPerSecond: 1, maxTokens: 10)
        var granted = 0
        for i in 0..<100 {  // 100 failing requests in one second
            let now = Double(i) / 100
            budget.deposit(now: now)
            if budget.withdraw(now: now) { granted += 1 }
        }
        XCTAssertLessThanOrEqual(granted, 10 + 20 + 1, "initial tokens + 20 % + the floor")
        XCTAssertGreaterThanOrEqual(granted, 20)

        var bucket = TokenBucket(ratePerSecond: 1, burst: 3)
        XCTAssertEqual((0..<3).map { _ in bucket.reserve(now: 0, maxWait: 10) }, [0, 0, 0])
        XCTAssertEqual(bucket.reserve(now: 0, maxWait: 10), 1)
        XCTAssertEqual(bucket.reserve(now: 0, maxWait: 10), 2, "waiters queue in order")
        XCTAssertNil(bucket.reserve(now: 0, maxWait: 2.5), "a wait past the deadline books nothing")
        XCTAssertEqual(bucket.reserve(now: 0, maxWait: 10), 3)
        XCTAssertEqual(bucket.reserve(now: 100, maxWait: 0), 0, "refilled (capped at the burst)")
    }

    func testAdaptiveDeadlineTable() {
        var d = AdaptiveDeadline(config: .init(alpha: 0.1, minimumSamples: 20, floorSeconds: 0.05))
        for _ in 0..<19 { d.record(latencySeconds: 0.05) }
        XCTAssertEqual(d.deadline(configured: 10), 10, "the configured timeout until enough samples")
        d.record(latencySeconds: 0.05)
        XCTAssertEqual(d.deadline(configured: 10), 0.1, accuracy: 1e-9, "2μ + 4σ with σ = 0")
        var slow = AdaptiveDeadline(config: .init(minimumSamples: 1))
        slow.record(latencySeconds: 3)
        XCTAssertEqual(slow.deadline(configured: 2), 2, "never above the configured timeout")
        var fast = AdaptiveDeadline(config: .init(minimumSamples: 1, floorSeconds: 0.05))
        fast.record(latencySeconds: 0.005)
        XCTAssertEqual(fast.deadline(configured: 10), 0.05, "never below the floor")
        var noisy = AdaptiveDeadline(config: .init(alpha: 0.1, minimumSamples: 20))
        var rng = SplitMix64(seed: 3)
        for _ in 0..<500 { noisy.record(latencySeconds: Double.random(in: 0.04...0.06, using: &rng)) }
        XCTAssertEqual(noisy.mean, 0.05, accuracy: 0.005)
        XCTAssertGreaterThan(noisy.deviation, 0.002)
        XCTAssertEqual(noisy.deadline(configured: 10), 2 * noisy.mean + 4 * noisy.deviation, accuracy: 1e-12)
    }

    // MARK: - The machine's resilience paths

    var book = GuardBook()
    var rng = SplitMix64(seed: 42)

    func start(_ m: inout FanoutMachine, _ now: Double) -> [FanoutMachine.Action] { m.start(now: now, book: &book).decisions }
    func finish(_ m: inout FanoutMachine, _ i: Int, _ o: FanoutMachine.AttemptOutcome, _ now: Double) -> [FanoutMachine.Action] {
        m.attemptFinished(index: i, outcome: o, now: now, book: &book, rng: &rng).decisions
    }
    func fire(_ m: inout FanoutMachine, _ i: Int, _ now: Double) -> [FanoutMachine.Action] { m.timerFired(index: i, now: now, book: &book).decisions }
    func machine(_ cs: [FanoutMachine.Candidate], deadline: Double = 10, now: Double = 0) -> FanoutMachine {
        FanoutMachine(alertName: "A", fingerprint: "f", status: "firing", candidates: cs, options: .init(deadlineSeconds: deadline), now: now)
    }
    func failed(_ status: Int = 503, safe: Bool = true, retryAfter: Double? = nil) -> FanoutMachine.AttemptOutcome {
        .rejected(
            status: status, reading: RetryPolicy.isRetryableStatus(status) ? .retryable : .permanent, message: "HTTP \(status)",
            retryAfterSeconds: retryAfter, idempotent: safe, action: "post")
    }

    func testRetryHonoursRetryAfterThenSucceeds() {
        var m = machine([.init(name: "t", type: "w")])
        XCTAssertEqual(start(&m, 0), [.send(index: 0, attempt: 1, timeoutSeconds: 10)])
        XCTAssertEqual(finish(&m, 0, failed(429, safe: true, retryAfter: 1), 0.01), [.wait(index: 0, seconds: 1)], "Retry-After beats the shorter backoff")
        XCTAssertEqual(fire(&m, 0, 1.01), [.send(index: 0, attempt: 2, timeoutSeconds: 10 - 1.01)])
        guard case .complete(let r)? = finish(&m, 0, .delivered(status: 200, action: "post", detail: nil), 1.02).last else { return XCTFail() }
        XCTAssertEqual(r.results[0].attempts, 2)
        XCTAssertEqual(r.results[0].outcome, .succeeded)
    }

    func testNoRetryWhenUnsafeNotRetryableTooLateOrOutOfAttempts() {
        var m = machine([.init(name: "a", type: "w"), .init(name: "b", type: "w"), .init(name: "c", type: "w"), .init(name: "d", type: "w")], deadline: 5)
        _ = start(&m, 0)
        XCTAssertTrue(finish(&m, 0, failed(503, safe: false), 0.1).isEmpty, "not safe to repeat: final")
        XCTAssertTrue(finish(&m, 1, failed(400), 0.1).isEmpty, "permanent: final")
        XCTAssertTrue(finish(&m, 2, failed(503, retryAfter: 30), 0.1).isEmpty, "Retry-After beyond the deadline: final")
        XCTAssertEqual(finish(&m, 3, failed(503), 0.1).count, 1)
        _ = fire(&m, 3, 0.3)
        XCTAssertEqual(finish(&m, 3, failed(503), 0.4).count, 1)
        _ = fire(&m, 3, 0.8)
        guard case .complete(let r)? = finish(&m, 3, failed(503), 0.9).last else { return XCTFail("three attempts then stop") }
        XCTAssertEqual(r.results.map(\.attempts), [1, 1, 1, 3])
        XCTAssertTrue(r.results[2].message!.contains("Retry-After 30 s exceeds"), r.results[2].message!)
    }

    func testRetryBudgetCapsRetriesAcrossPublishes() {
        book = GuardBook(config: .init(budgetRatio: 0.2, budgetFloorPerSecond: 0, budgetMaxTokens: 2, breakersEnabled: false))
        var retries = 0
        var denied = 0
        for p in 0..<50 {
            // publish_to_all: health would otherwise skip the failing target after five failures.
            var m = FanoutMachine(
                alertName: "A", fingerprint: "f", status: "firing", candidates: [.init(name: "down", type: "w")],
                options: .init(deadlineSeconds: 10, strategy: .publishToAll), now: Double(p) * 0.001)
            _ = start(&m, Double(p) * 0.001)
            let actions = m.attemptFinished(index: 0, outcome: failed(503), now: Double(p) * 0.001, book: &book, rng: &rng)
            if case .wait? = actions.decisions.first { retries += 1 }
            denied += actions.guardEvents.count { $0 == .retryDeniedByBudget(target: "down") }
        }
        XCTAssertLessThanOrEqual(retries, 2 + 10, "2 saved tokens plus 20 % of 50 requests")
        XCTAssertGreaterThanOrEqual(retries, 10)
        XCTAssertEqual(denied, 50 - retries, "every refused retry is announced as an event")
    }

    func testRateLimitWaitsWhenItFitsAndSkipsWhenItDoesNot() {
        let c = FanoutMachine.Candidate(name: "slack", type: "slack", rateKey: "slack:k", ratePerSecond: 1, rateBurst: 1)
        var first = machine([c], deadline: 5)
        XCTAssertEqual(start(&first, 0), [.send(index: 0, attempt: 1, timeoutSeconds: 5)])
        var second = machine([c], deadline: 5)
        XCTAssertEqual(start(&second, 0), [.wait(index: 0, seconds: 1)], "the next token in 1 s fits the deadline")
        XCTAssertEqual(fire(&second, 0, 1), [.send(index: 0, attempt: 1, timeoutSeconds: 4)])
        var third = FanoutMachine(alertName: "A", fingerprint: "f", status: "firing", candidates: [c], options: .init(deadlineSeconds: 0.5), now: 0)
        guard case .complete(let r)? = start(&third, 0).last else { return XCTFail() }
        XCTAssertEqual(r.results[0].skipReason, .rateLimited, "a 2 s wait does not fit a 0.5 s deadline")
    }

    func testOpenBreakerSkipsAsCircuitOpenAndAProbeRecovers() {
        book = GuardBook(config: .init(breaker: .init(consecutiveFailures: 2, cooldownSeconds: 5, successesToClose: 1), retry: .init(maxAttempts: 1)))
        for t in 0..<2 {
            var m = machine([.init(name: "x", type: "w")])
            _ = m.start(now: Double(t), book: &book).decisions
            _ = m.attemptFinished(index: 0, outcome: failed(503), now: Double(t) + 0.1, book: &book, rng: &rng).decisions
        }
        var skipped = FanoutMachine(alertName: "A", fingerprint: "f", status: "firing", candidates: [.init(name: "x", type: "w")], options: .init(), now: 2)
        guard case .complete(let r)? = skipped.start(now: 2, book: &book).decisions.last else { return XCTFail() }
        XCTAssertEqual(r.results[0].skipReason, .circuitOpen)
        var probe = FanoutMachine(alertName: "A", fingerprint: "f", status: "firing", candidates: [.init(name: "x", type: "w")], options: .init(), now: 6.2)
        XCTAssertEqual(probe.start(now: 6.2, book: &book).decisions.count, 1, "after the cooldown, one probe")
        var blocked = FanoutMachine(alertName: "A", fingerprint: "f", status: "firing", candidates: [.init(name: "x", type: "w")], options: .init(), now: 6.3)
        guard case .complete(let r2)? = blocked.start(now: 6.3, book: &book).decisions.last else { return XCTFail() }
        XCTAssertEqual(r2.results[0].skipReason, .circuitOpen, "only one probe while half-open")
        _ = probe.attemptFinished(index: 0, outcome: .delivered(status: 200, action: nil, detail: nil), now: 6.4, book: &book, rng: &rng).decisions
        XCTAssertEqual(book["x"].breaker.state, .closed)
    }

    func testAdaptiveDeadlineTightensAsHistoryBuilds() {
        var timeouts: [Double] = []
        for p in 0..<25 {
            let t0 = Double(p)
            var m = machine([.init(name: "t", type: "w", timeoutSeconds: 5)], now: t0)
            guard case .send(_, _, let timeout)? = start(&m, t0).first else { return XCTFail() }
            timeouts.append(timeout)
            _ = finish(&m, 0, .delivered(status: 200, action: nil, detail: nil), t0 + 0.05)
        }
        XCTAssertEqual(timeouts.first, 5, "configured until 20 samples")
        XCTAssertEqual(timeouts.last!, 0.1, accuracy: 1e-9, "then 2μ + 4σ")
        var fixed = GuardBook(config: .init(adaptiveDeadlines: false))
        for _ in 0..<30 { fixed.record("t", outcome: .success, latency: 0.05, timedOut: false, admission: .allowed, now: 1) }
        XCTAssertEqual(fixed.attemptTimeout("t", configured: 5), 5)
    }

    func testClockJumpsDoNotBreakTheMachines() {
        var b = CircuitBreaker(config: .init(consecutiveFailures: 1, cooldownSeconds: 10))
        b.record(.failure, admission: .allowed, now: 1000)
        XCTAssertEqual(b.admit(now: 500), .rejected(retryAt: 1010), "a clock going backwards keeps it open")
        var bucket = TokenBucket(ratePerSecond: 1, burst: 1)
        _ = bucket.reserve(now: 1000, maxWait: 0)
        XCTAssertNil(bucket.reserve(now: 10, maxWait: 0.5), "no refill from a backwards clock")
        var h = TargetHealth()
        h.record(success: false, latencySeconds: 1, now: 1e6)
        XCTAssertEqual(h.status(now: 0), .unknown)
    }
}
