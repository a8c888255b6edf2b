import CurlReactor
import FanoutCore
import Glibc
import MockTarget
import TestSupport
import XCTest

// PromiseTests: README promises about the publisher that no other test held it to — cancelling the task of an
// async publish mid-flight, Retry-After as an HTTP-date end to end, and Slack messages not repeated.
@testable import AlertFanout

final class PromiseTests: XCTestCase {
    /// Cancelling the task that awaits a publish cancels the publish: the request in flight ends `cancelled`, the
    /// finished target keeps its result, and the publish throws `.cancelled` with the report.
    func testCancellingTheTaskOfAnAsyncPublishMidFlightCancelsIt() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [
                Target(name: "ok", type: .webhook, url: server.url("/ok")), Target(name: "stuck", type: .webhook, url: server.url("/hang")),
            ]))
        let task = Task { () async -> Result<PublishReport, PublishError> in
            do throws(PublishError) { return .success(try await publisher.publish(Samples.firingFull, options: .init(deadline: .seconds(30)))) } catch {
                return .failure(error)
            }
        }
        try await waitUntil { server.requestCount >= 2 && publisher.reactor.stats().completed >= 1 }
        task.cancel()
        let result = await task.value
        guard case .failure(.cancelled(let report)) = result else { return XCTFail("\(result)") }
        XCTAssertEqual(report.results.map(\.outcome), [.succeeded, .failed])
        XCTAssertEqual(report.results[1].errorKind, .cancelled)
        XCTAssertLessThan(report.durationSeconds, 30, "ended by the cancel, not by the deadline")
        await assertDrained(publisher)
    }

    /// `Retry-After` as an IMF-fixdate two seconds ahead: the retry waits for it (at least one second, since the
    /// date has whole seconds) and succeeds; a date a minute ahead does not fit a 3 s deadline and is not waited for.
    func testRetryAfterAsAnHTTPDateIsHonouredEndToEnd() async throws {
        let seen = TestLock(0)
        let server = try MockTarget(routes: [
            "/soon": .custom { _ in
                let n = seen.withLock { n -> Int in
                    n += 1
                    return n
                }
                return n == 1 ? .retryAfter(status: 503, value: httpDate(secondsFromNow: 2)) : .text("ok")
            },
            "/later": .custom { _ in .retryAfter(status: 503, value: httpDate(secondsFromNow: 60)) },
        ])
        defer { server.stop() }
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [
                Target(name: "soon", type: .webhook, url: server.url("/soon")), Target(name: "later", type: .webhook, url: server.url("/later")),
            ]))
        let report = try await publisher.publish(Samples.numbered(1), options: .init(deadline: .seconds(3)))
        XCTAssertEqual(report.results[0].outcome, .succeeded, "\(report.results[0])")
        XCTAssertEqual(report.results[0].attempts, 2)
        XCTAssertGreaterThanOrEqual(report.results[0].durationSeconds, 1.0, "waited for the date")
        XCTAssertEqual(report.results[1].outcome, .failed)
        XCTAssertEqual(report.results[1].attempts, 1, "a date a minute ahead is not waited for")
        let message = report.results[1].message ?? ""
        XCTAssertTrue(message.contains("Retry-After") && message.contains("exceeds"), message)
        await assertDrained(publisher)
    }

    /// A Slack message is not idempotent: a 503 (the message may have been posted) is not repeated, while a 429
    /// proves it was not processed and is retried.
    func testSlackMessagesAreRepeatedOnlyWhenProvenUnprocessed() async throws {
        let server = try MockTarget(routes: [
            "/busy": .sequence([.text("busy", status: 503), .text("ok")]),
            "/limited": .sequence([.retryAfter(status: 429, value: "0"), .text("ok")]),
        ])
        defer { server.stop() }
        let publisher = try FanoutPublisher(
            targets: TargetsConfig(targets: [
                Target(name: "busy", type: .slack, url: server.url("/busy")), Target(name: "limited", type: .slack, url: server.url("/limited")),
            ]))
        let report = try await publisher.publish(Samples.numbered(2), options: .init(deadline: .seconds(5)))
        XCTAssertEqual(report.results[0].outcome, .failed)
        XCTAssertEqual(report.results[0].attempts, 1, "a 503 to Slack is not repeated: \(report.results[0])")
        XCTAssertEqual(report.results[1].outcome, .succeeded)
        XCTAssertEqual(report.results[1].attempts, 2, "a 429 is")
        XCTAssertEqual(server.requests.filter { $0.path == "/busy" }.count, 1)
        XCTAssertEqual(server.requests.filter { $0.path == "/limited" }.count, 2)
        await assertDrained(publisher)
    }
}

/// An IMF-fixdate (RFC 9110) `seconds` from now.
func httpDate(secondsFromNow seconds: Int) -> String {
    var t = time(nil) + seconds
    var parts = tm()
    gmtime_r(&t, &parts)
    var buffer = [CChar](repeating: 0, count: 64)
    let n = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
    return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
