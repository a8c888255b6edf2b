// ReactorSupport: helpers every test target shares — completion tallies, waiting on a condition, drain and release checks.
import CurlReactor
import Dispatch
import MockTarget
import Synchronization
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Counts completions per request index and resumes a waiter when all have arrived.
public final class CompletionTally: Sendable {
    public struct State: Sendable {
        public var perIndex: [Int]
        public var done = 0
        public var successes = 0
        public var failures: [TransferError.Kind: Int] = [:]
        public var statuses: [Int: Int] = [:]
        var waiter: CheckedContinuation<Void, Never>?
    }

    let state: TestLock<State>
    public let expected: Int

    public init(expected: Int) {
        self.expected = expected
        state = TestLock(State(perIndex: [Int](repeating: 0, count: expected)))
    }

    public func record(_ index: Int, _ result: Result<HTTPResponse, TransferError>) {
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
    public func wait(seconds: Double = 60, file: StaticString = #filePath, line: UInt = #line) async {
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

    public var snapshot: State { state.withLock { $0 } }
}

/// A value behind a pthread mutex. Tests use it rather than `Synchronization.Mutex`, whose Linux priority-inheritance
/// futex hands a contended lock over inside the kernel, where the thread sanitizer cannot see the ordering (it then
/// reports races that are not there).
public final class TestLock<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

public func seconds(_ d: Duration) -> Double {
    let c = d.components
    return Double(c.seconds) + Double(c.attoseconds) / 1e18
}

extension XCTestCase {
    /// Shuts the reactor down (draining) and checks that nothing is left: no transfer, socket, source,
    /// pending close, easy handle or timer.
    public func assertReleased(_ reactor: CurlReactor, mode: ShutdownMode = .drain, file: StaticString = #filePath, line: UInt = #line) async {
        await reactor.shutdown(mode)
        let s = reactor.stats()
        XCTAssertTrue(s.released, "reactor not released: \(s)", file: file, line: line)
        XCTAssertTrue(s.isIdleAndEmpty, "reactor left resources behind: \(s)", file: file, line: line)
        XCTAssertEqual(s.submitted, s.completed, "every submitted request must complete exactly once: \(s)", file: file, line: line)
    }

    /// A port on 127.0.0.1 with nothing listening (bound, then closed).
    public func unusedPort() throws -> Int {
        let server = try MockTarget()
        let port = server.port
        server.stop()
        return port
    }
}

extension Result where Success == HTTPResponse, Failure == TransferError {
    public var failureKind: TransferError.Kind? {
        if case .failure(let e) = self { return e.kind }
        return nil
    }

    public var failure: TransferError? {
        if case .failure(let e) = self { return e }
        return nil
    }

    public var response: HTTPResponse? {
        if case .success(let r) = self { return r }
        return nil
    }
}

/// The machine's host name, when every address it resolves to is a loopback address; nil otherwise
/// (the test then skips that host rather than risk traffic leaving the machine).
public func loopbackHostname() -> (name: String, address: String)? {
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

/// Polls `condition` every 10 ms until it holds; fails the test after `seconds`.
public func waitUntil(seconds: Double = 10, file: StaticString = #filePath, line: UInt = #line, _ condition: @Sendable () -> Bool) async throws {
    let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while !condition() {
        if ContinuousClock.now > end {
            XCTFail("condition not met within \(seconds) s", file: file, line: line)
            return
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// Polls an async `condition` (one that asks a server, say) every 20 ms until it holds; fails the test after `seconds`.
public func waitUntil(seconds: Double = 10, file: StaticString = #filePath, line: UInt = #line, _ condition: @Sendable () async -> Bool) async throws {
    let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while !(await condition()) {
        if ContinuousClock.now > end {
            XCTFail("condition not met within \(seconds) s", file: file, line: line)
            return
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// Results by index, for tests that inspect individual completions.
public final class ResultBox: Sendable {
    private let box = TestLock<[Int: Result<HTTPResponse, TransferError>]>([:])
    public init() {}
    public func set(_ i: Int, _ r: Result<HTTPResponse, TransferError>) { box.withLock { $0[i] = r } }
    public func get(_ i: Int) -> Result<HTTPResponse, TransferError>? { box.withLock { $0[i] } }
}
