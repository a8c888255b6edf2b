// PublisherSupport: the drain check every publisher and resilience test ends with.
import AlertFanout
import CurlReactor
import XCTest

extension XCTestCase {
    /// Checks that no publish is left in flight (no run waiting on a lane, a retry timer or a response), shuts the
    /// publisher down and checks that its reactor completed every request it was given. With
    /// `releasesReactor` (a publisher that made its own reactor), also that the reactor released everything:
    /// no transfer, socket, source, easy handle or timer.
    public func assertDrained(
        _ publisher: FanoutPublisher, releasesReactor: Bool = true, file: StaticString = #filePath, line: UInt = #line
    ) async {
        XCTAssertEqual(publisher.activePublishes, 0, "publishes left in flight", file: file, line: line)
        await publisher.shutdown()
        let s = publisher.reactor.stats()
        XCTAssertEqual(s.submitted, s.completed, "every request the publisher sent must complete: \(s)", file: file, line: line)
        if releasesReactor {
            XCTAssertTrue(s.released, "reactor not released: \(s)", file: file, line: line)
            XCTAssertTrue(s.isIdleAndEmpty, "reactor left resources behind: \(s)", file: file, line: line)
        }
    }
}
