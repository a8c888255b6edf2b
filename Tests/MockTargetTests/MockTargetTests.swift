// MockTargetTests: the loopback server's scripted behaviours, recording and lifecycle, driven through the reactor.
import CurlReactor
import MockTarget
import TestSupport
import XCTest

final class MockTargetTests: XCTestCase {
    func testRefusesNonLoopbackAddresses() {
        for host in ["0.0.0.0", "10.0.0.1", "192.168.1.1", "example.com", "128.0.0.1"] {
            XCTAssertThrowsError(try MockTarget(host: host), host)
        }
        XCTAssertTrue(MockTarget.isLoopback("127.1.2.3"))
        XCTAssertTrue(MockTarget.isLoopback("::1"))
        XCTAssertFalse(MockTarget.isLoopback("127.0.0.256"))
    }

    func testRoutesFlappingSequencesAndCustomBehaviours() async throws {
        let server = try MockTarget(routes: [
            "/flap": .flap(every: 3, failure: .text("down", status: 503), success: .text("up")),
            "/seq": .sequence([.retryAfter(status: 429, value: "2"), .text("second", status: 202)]),
            "/echo": .custom { req in .text("\(req.method) \(req.bodyText)", status: 200) },
        ])
        defer { server.stop() }
        let reactor = try CurlReactor()
        var flap: [Int] = []
        for _ in 0..<6 {
            flap.append(await reactor.execute(HTTPRequest(url: server.url("/flap"))).response?.status ?? -1)
        }
        XCTAssertEqual(flap, [200, 200, 503, 200, 200, 503])
        let first = await reactor.execute(HTTPRequest(url: server.url("/seq")))
        XCTAssertEqual(first.response?.status, 429)
        XCTAssertEqual(first.response?.header("retry-after"), "2")
        for _ in 0..<2 {
            let next = await reactor.execute(HTTPRequest(url: server.url("/seq")))
            XCTAssertEqual(next.response?.status, 202, "the last behaviour repeats")
        }
        let echo = await reactor.execute(HTTPRequest(method: "POST", url: server.url("/echo"), body: Array("hi".utf8)))
        XCTAssertEqual(echo.response?.bodyText, "POST hi")
        let delayed = await reactor.execute(HTTPRequest(url: server.url("/x?delay_ms=120&status=418&body=teapot")))
        XCTAssertEqual(delayed.response?.status, 418)
        XCTAssertEqual(delayed.response?.bodyText, "teapot")
        XCTAssertGreaterThanOrEqual(delayed.response.map { $0.timings.total } ?? .zero, .milliseconds(110))
        let queryFlap = await (0..<4).asyncMap { _ in await reactor.execute(HTTPRequest(url: server.url("/qf?flap_every=2"))).response?.status }
        XCTAssertEqual(queryFlap, [200, 503, 200, 503])
        XCTAssertEqual(server.requestCount, 6 + 3 + 1 + 1 + 4)
        XCTAssertEqual(server.requests.filter { $0.path == "/flap" }.map(\.routeIndex), [1, 2, 3, 4, 5, 6])
        await reactor.shutdown()
    }

    func testStopClosesHangingConnectionsAndCountsThem() async throws {
        let server = try MockTarget()
        let reactor = try CurlReactor()
        let pending = Task { await reactor.execute(HTTPRequest(url: server.url("/hang"), timeout: .seconds(10))) }
        try await waitUntil { server.requestCount >= 1 }
        XCTAssertEqual(server.openConnections, 1)
        XCTAssertEqual(server.connectionCount, 1)
        server.stop()
        let r = await pending.value
        XCTAssertEqual(r.failureKindForTest, .reset, "stopping the server ends the hanging request at once")
        XCTAssertEqual(server.openConnections, 0)
        await reactor.shutdown()
    }
}

extension Result where Success == HTTPResponse, Failure == TransferError {
    var response: HTTPResponse? { if case .success(let r) = self { return r } else { return nil } }
    var failureKindForTest: TransferError.Kind? { if case .failure(let e) = self { return e.kind } else { return nil } }
}

extension Sequence {
    func asyncMap<T>(_ f: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await f(e)) }
        return out
    }
}
