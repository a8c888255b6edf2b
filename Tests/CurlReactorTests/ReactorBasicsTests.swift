// ReactorBasicsTests: requests against a real MockTarget — methods, headers, bodies, reuse, bad input.
import CurlReactor
import MockTarget
import TestSupport
import XCTest

class ReactorBasicsTests: ReactorTestCase {
    func testGetWithHeadersIsReceivedAsSent() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor()
        let r = await reactor.execute(
            HTTPRequest(
                url: server.url("/status/201?body=hello&retry_after=7"),
                headers: [HTTPHeader("X-Trace", "abc 123"), HTTPHeader("Accept", "text/plain")]))
        let resp = try XCTUnwrap(r.response, "\(r)")
        XCTAssertEqual(resp.status, 201)
        XCTAssertEqual(resp.bodyText, "hello")
        XCTAssertEqual(resp.header("Retry-After"), "7")
        XCTAssertTrue(resp.newConnection)
        XCTAssertGreaterThan(resp.timings.total, .zero)
        let rec = try XCTUnwrap(server.requests.first)
        XCTAssertEqual(server.requests.count, 1)
        XCTAssertEqual(rec.method, "GET")
        XCTAssertEqual(rec.path, "/status/201")
        XCTAssertEqual(rec.header("x-trace"), "abc 123")
        XCTAssertEqual(rec.header("accept"), "text/plain")
        XCTAssertTrue(rec.body.isEmpty)
        // Capture names match whatever their case, and come back lowercased.
        let mixed = await reactor.execute(HTTPRequest(url: server.url("/status/503?retry_after=9"), captureHeaders: ["Retry-AFTER", "x-none"]))
        XCTAssertEqual(try XCTUnwrap(mixed.response).headers.map(\.name), ["retry-after"])
        XCTAssertEqual(mixed.response?.header("retry-after"), "9")
        await assertReleased(reactor)
    }

    func testPostBodyAndOtherMethods() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor()
        let payload = Array(#"{"summary":"disk full ✓","n":1}"#.utf8) + [UInt8](repeating: 0x20, count: 5000)
        let post = await reactor.execute(
            HTTPRequest(
                method: "POST", url: server.url("/events"),
                headers: [HTTPHeader("Content-Type", "application/json")], body: payload))
        XCTAssertEqual(post.response?.status, 200, "\(post)")
        let put = await reactor.execute(HTTPRequest(method: "PUT", url: server.url("/thing"), body: Array("x".utf8)))
        XCTAssertEqual(put.response?.status, 200, "\(put)")
        let del = await reactor.execute(HTTPRequest(method: "DELETE", url: server.url("/thing")))
        XCTAssertEqual(del.response?.status, 200, "\(del)")
        let head = await reactor.execute(HTTPRequest(method: "HEAD", url: server.url("/thing")))
        XCTAssertEqual(head.response?.status, 200, "\(head)")
        XCTAssertEqual(head.response?.body.count, 0)
        let get = await reactor.execute(HTTPRequest(url: server.url("/after-head")))
        XCTAssertEqual(get.response?.bodyText, "ok", "a GET after HEAD must read its body again")
        // Over 1 MiB curl 7.88 would ask `Expect: 100-continue` and wait for the answer: the request turns it off.
        let big = [UInt8](repeating: 0x61, count: (1 << 20) + 10)
        let bigPost = await reactor.execute(HTTPRequest(method: "POST", url: server.url("/big"), body: big))
        XCTAssertEqual(bigPost.response?.status, 200, "\(bigPost)")

        let recs = server.requests
        XCTAssertEqual(recs.map(\.method), ["POST", "PUT", "DELETE", "HEAD", "GET", "POST"])
        XCTAssertEqual(recs[5].body.count, big.count)
        XCTAssertNil(recs[5].header("expect"), "no 100-continue round trip for a large body either")
        XCTAssertEqual(recs[0].body, payload)
        XCTAssertEqual(recs[0].header("content-type"), "application/json")
        XCTAssertNil(recs[0].header("expect"), "no 100-continue round trip")
        XCTAssertEqual(recs[1].bodyText, "x")
        XCTAssertTrue(recs[2].body.isEmpty)
        await assertReleased(reactor)
    }

    func testSequentialRequestsReuseOneConnection() async throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxInFlightPerHost: 4))
        var newConnections = 0
        for i in 0..<1000 {
            let r = await reactor.execute(HTTPRequest(url: server.url("/seq?i=\(i)")))
            let resp = try XCTUnwrap(r.response, "request \(i): \(r)")
            XCTAssertEqual(resp.status, 200)
            if resp.newConnection { newConnections += 1 }
        }
        let stats = reactor.stats()
        XCTAssertEqual(stats.completed, 1000)
        // One request at a time: the first opens the connection, the other 999 reuse it.
        XCTAssertEqual(stats.connectionsOpened, 1, "\(stats)")
        XCTAssertEqual(newConnections, 1)
        XCTAssertEqual(server.connectionCount, 1)
        XCTAssertEqual(server.requestCount, 1000)
        await assertReleased(reactor)
    }

    func testBadInputIsATypedErrorNotACrash() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxRequestBodyBytes: 1024))
        let cases: [(HTTPRequest, String)] = [
            (HTTPRequest(url: "not a url"), "space"),
            (HTTPRequest(url: "http//missing-colon"), "malformed"),
            (HTTPRequest(url: ""), "empty"),
            (HTTPRequest(url: "ftp://127.0.0.1/file"), "ftp"),
            (HTTPRequest(url: "file:///etc/passwd"), "file"),
            (HTTPRequest(url: server.url("/"), headers: [HTTPHeader("X-Evil", "a\r\nInjected: yes")]), "CR, LF"),
            (HTTPRequest(url: server.url("/"), headers: [HTTPHeader("Bad Name", "v")]), "header name"),
            (HTTPRequest(method: "PO ST", url: server.url("/")), "method"),
            (HTTPRequest(method: "POST", url: server.url("/"), body: [UInt8](repeating: 1, count: 2048)), "exceeds"),
            (HTTPRequest(url: server.url("/"), timeout: .zero), "timeout"),
        ]
        for (req, expected) in cases {
            let r = await reactor.execute(req)
            let e = try XCTUnwrap(r.failure, "\(req.url) should fail")
            XCTAssertEqual(e.kind, .invalidRequest, "\(req.url): \(e)")
            XCTAssertTrue(e.message.contains(expected), "'\(e.message)' should mention '\(expected)'")
        }
        XCTAssertEqual(server.requestCount, 0, "nothing invalid may reach the server")
        await assertReleased(reactor)
    }

    func testResponseBodyCapAndSlowBody() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxResponseBodyBytes: 1000))
        let big = await reactor.execute(HTTPRequest(url: server.url("/big?bytes=50000")))
        XCTAssertEqual(big.failureKind, .bodyTooLarge, "\(big)")
        let fits = await reactor.execute(HTTPRequest(url: server.url("/big?bytes=50000"), maxResponseBodyBytes: 60000))
        XCTAssertEqual(fits.response?.body.count, 50000)
        let slow = await reactor.execute(HTTPRequest(url: server.url("/slow?chunks=4&bytes=25&interval_ms=50")))
        let resp = try XCTUnwrap(slow.response, "\(slow)")
        XCTAssertEqual(resp.body.count, 100)
        XCTAssertGreaterThanOrEqual(seconds(resp.timings.total), 0.15)
        await assertReleased(reactor)
    }

    /// A body that is not kept is counted, whatever the cap; header capture on and off on the same easy handles.
    func testUnkeptBodyIsCountedAndCaptureSwitchesPerRequest() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let reactor = try makeReactor(.init(maxInFlightTotal: 1, maxResponseBodyBytes: 1000))
        let counted = await reactor.execute(HTTPRequest(url: server.url("/big?bytes=50000&retry_after=3"), keepResponseBody: false))
        let resp = try XCTUnwrap(counted.response, "\(counted)")
        XCTAssertEqual(resp.bodyBytes, 50000)
        XCTAssertTrue(resp.body.isEmpty)
        XCTAssertEqual(resp.header("retry-after"), "3", "capture works with an unkept body")
        let kept = await reactor.execute(HTTPRequest(url: server.url("/k?body=hello&retry_after=4"), captureHeaders: []))
        XCTAssertEqual(kept.response?.bodyText, "hello")
        XCTAssertEqual(kept.response?.bodyBytes, 5)
        XCTAssertEqual(kept.response?.headers.count, 0, "nothing captured when nothing is asked for")
        let again = await reactor.execute(HTTPRequest(url: server.url("/k?body=again&retry_after=5")))
        XCTAssertEqual(again.response?.header("retry-after"), "5", "the same easy handle captures again")
        XCTAssertEqual(again.response?.bodyText, "again")
        let capped = await reactor.execute(HTTPRequest(url: server.url("/big?bytes=50000")))
        XCTAssertEqual(capped.failureKind, .bodyTooLarge, "a kept body still has the cap: \(capped)")
        await assertReleased(reactor)
    }

    func testLargeBodiesRoundTrip() async throws {
        let server = try MockTarget()
        defer { server.stop() }
        let r = try makeReactor()
        let payload = [UInt8](repeating: 0x41, count: 70_000)
        let post = await r.execute(HTTPRequest(method: "POST", url: server.url("/p"), body: payload))
        XCTAssertEqual(post.response?.status, 200)
        XCTAssertEqual(server.requests.last?.body, payload)
        let big = await r.execute(HTTPRequest(url: server.url("/b?bytes=300000"), maxResponseBodyBytes: 400_000))
        XCTAssertEqual(big.response?.body.count, 300_000)
        await assertReleased(r)
    }

    func testInvalidConfigurationIsRejected() {
        XCTAssertThrowsError(try CurlReactor(configuration: .init(maxInFlightPerHost: 0, maxInFlightTotal: -1))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("maxInFlightPerHost") && text.contains("maxInFlightTotal"), text)
        }
    }
}

/// The same tests with a Dispatch source per socket (the portable fallback).
final class ReactorBasicsSourcePerSocketTests: ReactorBasicsTests {
    override class var watching: SocketWatching { .sourcePerSocket }
    /// Also makes Linux test discovery list the inherited tests, which it does only for a class with a test of its own.
    func testRunsWithASourcePerSocket() throws { try assertWatching(.sourcePerSocket) }
}
