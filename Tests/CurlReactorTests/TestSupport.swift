// TestSupport (reactor tests): the base class that runs every reactor test once per socket-watching mode.
import CurlReactor
import TestSupport
import XCTest

/// The base of every reactor test class: the tests of a class run once per socket-watching mode. The class as
/// written uses `watching` (the platform default, `.epollSet` on Linux); its `…SourcePerSocket` subclass overrides
/// `watching` and so runs the very same tests with a Dispatch source per socket.
class ReactorTestCase: XCTestCase {
    class var watching: SocketWatching { ReactorConfiguration().socketWatching }
    var watching: SocketWatching { type(of: self).watching }

    /// A reactor with `configuration`, watching sockets the way this test class does.
    func makeReactor(_ configuration: ReactorConfiguration = .init()) throws -> CurlReactor {
        var c = configuration
        c.socketWatching = watching
        return try CurlReactor(configuration: c)
    }

    func assertWatching(_ expected: SocketWatching, file: StaticString = #filePath, line: UInt = #line) throws {
        let reactor = try makeReactor()
        XCTAssertEqual(reactor.configuration.socketWatching, expected, file: file, line: line)
        reactor.shutdown(.cancel) {}
    }
}
