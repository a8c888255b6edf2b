// DeliveryPolicyTests: the durable delivery lifecycle's decisions, with a seeded RNG and an injected clock.
import FanoutCore
import XCTest

final class DeliveryPolicyTests: XCTestCase {
    var rng = SplitMix64(seed: 42)
    let policy = DeliveryPolicy()

    func failed(_ kind: FailureKind, status: Int? = nil, retryable: Bool) -> TargetResult {
        TargetResult(target: "t", type: "webhook", outcome: .failed, errorKind: kind, httpStatus: status, message: "boom", attempts: 1, retryable: retryable)
    }

    func skipped(_ reason: SkipReason) -> TargetResult { TargetResult(target: "t", type: "webhook", outcome: .skipped, skipReason: reason) }

    func testBackoffCeilingsMatchTheTable() {
        XCTAssertEqual((1...8).map { policy.backoffCeiling(attempts: $0) }, [1, 2, 4, 8, 16, 30, 30, 30])
    }

    func testEachOutcomeMapsToItsState() {
        let now = 1000.0
        let expires = 1000.0 + 3600
        XCTAssertEqual(
            policy.decide(TargetResult(target: "t", type: "w", outcome: .succeeded), attempts: 0, now: now, expiresAt: expires, ratePerSecond: nil, rng: &rng),
            .delivered)
        guard
            case .retry(let due, true, _) = policy.decide(
                failed(.httpStatus, status: 503, retryable: true), attempts: 3, now: now, expiresAt: expires, ratePerSecond: nil, rng: &rng)
        else {
            return XCTFail("a 503 is retried")
        }
        XCTAssertGreaterThanOrEqual(due, now + policy.minimumDelaySeconds)
        XCTAssertLessThanOrEqual(due, now + 8, "the fourth attempt waits at most 8 s")
        guard
            case .dead(let why) = policy.decide(
                failed(.httpStatus, status: 400, retryable: false), attempts: 0, now: now, expiresAt: expires, ratePerSecond: nil, rng: &rng)
        else {
            return XCTFail("a permanent failure is a dead letter")
        }
        XCTAssertTrue(why.contains("HTTP 400"), why)
        guard
            case .superseded = policy.decide(
                failed(.missingState, retryable: false), attempts: 0, now: now, expiresAt: expires, ratePerSecond: nil, rng: &rng)
        else {
            return XCTFail("a Rootly resolve without a create is not sent")
        }
        guard
            case .dead = policy.decide(
                failed(.endpointGone, status: 410, retryable: false), attempts: 0, now: now, expiresAt: expires, ratePerSecond: nil, rng: &rng)
        else {
            return XCTFail("410 Gone is a dead letter")
        }
    }

    func testRateLimitAndBreakerSkipsWaitWithoutCountingAnAttempt() {
        guard case .retry(let due, false, _) = policy.decide(skipped(.rateLimited), attempts: 5, now: 0, expiresAt: 3600, ratePerSecond: 0.5, rng: &rng) else {
            return XCTFail("a rate-limited delivery waits for its token, it is not dropped")
        }
        XCTAssertTrue((2...3).contains(due), "one token interval (2 s at 0.5/s), with jitter: \(due)")
        guard case .retry(let due2, false, _) = policy.decide(skipped(.circuitOpen), attempts: 0, now: 0, expiresAt: 3600, ratePerSecond: nil, rng: &rng) else {
            return XCTFail("an open breaker delays")
        }
        XCTAssertTrue((2...3).contains(due2))
    }

    func testTheTTLTurnsARetryIntoADeadLetter() {
        guard case .dead(let why) = policy.decide(failed(.refused, retryable: true), attempts: 9, now: 3599.99, expiresAt: 3600, ratePerSecond: nil, rng: &rng)
        else {
            return XCTFail("past the TTL a delivery is dead")
        }
        XCTAssertTrue(why.contains("delivery_ttl"), why)
        XCTAssertTrue(why.contains("refused"), "the last error is kept: \(why)")
    }
}
