// TestSupport: helpers shared by the reactor tests — waiting for many completions, CPU time, drain checks.
import CurlReactor
import Dispatch
import MockTarget
import Synchronization
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Counts completions per request index and resumes a waiter when all have arrived.
final class CompletionTally: Sendable {
    struct State {
        var perIndex: [Int]
        var done = 0
        var successes = 0
        var failures: [TransferError.Kind: Int] = [:]
        var statuses: [Int: Int] = [:]
        var waiter: CheckedContinuation<Void, Never>?
    }

    let state: TestLock<State>
    let expected: Int

    init(expected: Int) {
        self.expected = expected
        state = TestLock(State(perIndex: [Int](repeating: 0, count: expected)))
    }

    func record(_ index: Int, _ result: Result<HTTPResponse, TransferError>) {
        let w = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.perIndex[index] += 1
            s.done += 1
            switch result {
            case .success(let r):
                s.successes += 1
                s.statuses[r.status, default: 0] += 1
            case .failure(let e):
                s.failures[e.kind, default: 0] += 1
            }
            if s.done == expected, let w = s.waiter {
                s.waiter = nil
                return w
            }
            return nil
        }
        w?.resume()
    }

    /// Waits until `expected` completions arrived (or fails the test after `seconds`).
    func wait(seconds: Double = 60, file: StaticString = #filePath, line: UInt = #line) async {
        let deadline = DispatchTime.now() + seconds
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                if s.done >= expected { return true }
                s.waiter = c
                return false
            }
            if ready { c.resume() }
            DispatchQueue.global().asyncAfter(deadline: deadline) { [self] in
                let w = state.withLock { s -> CheckedContinuation<Void, Never>? in
                    let w = s.waiter
                    s.waiter = nil
                    return w
                }
                if let w {
                    XCTFail("timed out waiting for \(expected) completions", file: file, line: line)
                    w.resume()
                }
            }
        }
    }

    var snapshot: State { state.withLock { $0 } }
}

/// A value behind a pthread mutex. Tests use it rather than `Synchronization.Mutex`, whose Linux priority-inheritance
/// futex hands a contended lock over inside the kernel, where the thread sanitizer cannot see the ordering (it then
/// reports races that are not there).
final class TestLock<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

/// Process CPU time (user + system) in seconds.
func processCPUSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}

func seconds(_ d: Duration) -> Double {
    let c = d.components
    return Double(c.seconds) + Double(c.attoseconds) / 1e18
}

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

extension XCTestCase {
    /// Shuts the reactor down (draining) and checks that nothing is left: no transfer, socket, source,
    /// pending close, easy handle or timer.
    func assertReleased(_ reactor: CurlReactor, mode: ShutdownMode = .drain, file: StaticString = #filePath, line: UInt = #line) async {
        await reactor.shutdown(mode)
        let s = reactor.stats()
        XCTAssertTrue(s.released, "reactor not released: \(s)", file: file, line: line)
        XCTAssertTrue(s.isIdleAndEmpty, "reactor left resources behind: \(s)", file: file, line: line)
        XCTAssertEqual(s.submitted, s.completed, "every submitted request must complete exactly once: \(s)", file: file, line: line)
    }

    /// A port on 127.0.0.1 with nothing listening (bound, then closed).
    func unusedPort() throws -> Int {
        let server = try MockTarget()
        let port = server.port
        server.stop()
        return port
    }
}

extension Result where Success == HTTPResponse, Failure == TransferError {
    var failureKind: TransferError.Kind? {
        if case .failure(let e) = self { return e.kind }
        return nil
    }

    var failure: TransferError? {
        if case .failure(let e) = self { return e }
        return nil
    }

    var response: HTTPResponse? {
        if case .success(let r) = self { return r }
        return nil
    }
}

/// The machine's host name, when every address it resolves to is a loopback address; nil otherwise
/// (the test then skips that host rather than risk traffic leaving the machine).
func loopbackHostname() -> (name: String, address: String)? {
    var buf = [CChar](repeating: 0, count: 256)
    guard gethostname(&buf, buf.count) == 0 else { return nil }
    let name = String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard !name.isEmpty, name != "localhost" else { return nil }
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var res: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(name, nil, &hints, &res) == 0, let first = res else { return nil }
    defer { freeaddrinfo(res) }
    var addresses: [String] = []
    var p: UnsafeMutablePointer<addrinfo>? = first
    while let a = p {
        var host = [CChar](repeating: 0, count: 64)
        if getnameinfo(a.pointee.ai_addr, a.pointee.ai_addrlen, &host, 64, nil, 0, NI_NUMERICHOST) == 0 {
            addresses.append(String(decoding: host.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        p = a.pointee.ai_next
    }
    guard !addresses.isEmpty, addresses.allSatisfy(MockTarget.isLoopback) else { return nil }
    let v4 = addresses.first { $0.hasPrefix("127.") } ?? addresses[0]
    return (name, v4)
}
