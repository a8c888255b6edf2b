// ChurnCommand: `fanout measure churn` — a long, bounded soak of the reactor under every kind of transfer life.
import ArgumentParser
import CurlReactor
import Dispatch
import FanoutLoad
import Foundation
import MockTarget
import Synchronization

/// Submits a fixed number of transfers mixing keep-alive, new connections, `localhost` names (the threaded
/// resolver), refused ports, connections reset by the server, hangs cut by short deadlines and random
/// cancels, to an in-process MockTarget and optionally a loopback nginx. Reports whether every transfer
/// completed exactly once, whether the file descriptors at the end equal those at the start, the deadline
/// backstop's expiries and the CPU per transfer. Exit status 1 when a transfer was lost or completed twice,
/// or a descriptor leaked.
struct ChurnCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "churn",
        abstract: "Soak: N transfers of every kind (keep-alive, new connections, localhost, refused, resets, hangs, cancels); lost, leaked, backstop, CPU.")

    @Option(help: "Transfers to submit.") var requests = 1_000_000
    @Option(help: "Transfers outstanding at once (the submitter waits for room).") var window = 512
    @Option(help: "A loopback nginx URL (e.g. http://127.0.0.1:18090/) to mix in as a second, keep-alive peer.") var nginx: String?
    @Option(help: "Stop submitting after this long (the run is bounded in count and time).", transform: parseDuration)
    var maxDuration: Duration = .seconds(1800)
    @Flag(help: "Watch sockets with a Dispatch source per socket instead of the epoll set.") var perSocket = false

    func validate() throws {
        guard requests >= 1, window >= 1 else { throw ValidationError("--requests and --window must be at least 1") }
        if let nginx {
            guard let u = URLComponents(string: nginx), u.scheme == "http", let host = u.host, isLoopbackHost(host) else {
                throw ValidationError("--nginx must be an http URL on loopback (127.0.0.1, localhost or ::1), not '\(nginx)'")
            }
        }
    }

    func run() async throws {
        let server = try MockTarget(recordRequests: false)
        defer { server.stop() }
        let refused = try unusedLoopbackPort()
        let nginxBase = nginx.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        let fdsBefore = openDescriptors()
        let reactor = try CurlReactor(
            configuration: .init(
                maxInFlightPerHost: 128, maxInFlightTotal: 256, label: "alertfanout.churn",
                socketWatching: perSocket ? .sourcePerSocket : ReactorConfiguration().socketWatching))
        let ledger = ChurnLedger(count: requests)
        let room = DispatchSemaphore(value: window)
        let cpu0 = processCPUSeconds()
        let clock = ContinuousClock()
        let start = clock.now
        let stopAt = start + maxDuration
        let total = requests

        // The submitter runs on its own thread: it blocks on the window, never on a cooperative thread.
        let submitted: Int = await withCheckedContinuation { (c: CheckedContinuation<Int, Never>) in
            Thread.detachNewThread {
                var rng = SystemRandomNumberGenerator()
                var i = 0
                while i < total && clock.now < stopAt {
                    room.wait()
                    let request: HTTPRequest
                    switch i % 20 {
                    case 0...5: request = HTTPRequest(url: server.url("/ok?i=\(i)"), timeout: .seconds(10))
                    case 6, 7: request = HTTPRequest(url: server.url("/new?i=\(i)"), timeout: .seconds(10), forbidReuse: true)
                    case 8, 9: request = HTTPRequest(url: "http://localhost:\(server.port)/name?i=\(i)", timeout: .seconds(10), forbidReuse: i % 40 == 8)
                    case 10: request = HTTPRequest(url: "http://127.0.0.1:\(refused)/", timeout: .seconds(10))
                    case 11: request = HTTPRequest(url: server.url("/reset?i=\(i)"), timeout: .seconds(10))
                    case 12, 13: request = HTTPRequest(url: server.url("/hang?i=\(i)"), timeout: .milliseconds(20))
                    default:
                        request = HTTPRequest(url: nginxBase.map { "\($0)/churn?i=\(i)" } ?? server.url("/ok?i=\(i)"), timeout: .seconds(10))
                    }
                    let index = i
                    let handle = reactor.submit(request) { result in
                        ledger.record(index, result)
                        room.signal()
                    }
                    // About 1 % cancelled: half at once (often before the reactor took it in), half a little later.
                    let roll = Int.random(in: 0..<200, using: &rng)
                    if roll == 0 {
                        handle.cancel()
                    } else if roll == 1 {
                        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int.random(in: 0...5, using: &rng))) { handle.cancel() }
                    }
                    i += 1
                }
                c.resume(returning: i)
            }
        }
        await ledger.wait(for: submitted)
        let elapsed = (clock.now - start).seconds
        let cpu = processCPUSeconds() - cpu0
        let stats = reactor.stats()
        await reactor.shutdown(.drain)
        let released = reactor.stats()
        server.stop()
        // Sockets close asynchronously in the server's event loop; give them a moment.
        var fdsAfter = openDescriptors()
        for _ in 0..<50 where fdsAfter.count > fdsBefore.count {
            try await Task.sleep(for: .milliseconds(100))
            fdsAfter = openDescriptors()
        }
        let snapshot = ledger.snapshot(submitted)
        let leaked = fdsAfter.subtracting(fdsBefore)
        print(
            "churn: \(submitted) of \(requests) transfers submitted in \(fmt(elapsed, 1)) s (\(Int(Double(submitted) / max(elapsed, 0.001))) /s), watcher \(perSocket ? "per-socket" : "default (\(ReactorConfiguration().socketWatching))")\(nginx == nil ? "" : ", MockTarget + nginx")"
        )
        print(
            "  completions: \(snapshot.completed) (exactly once: \(snapshot.lost == 0 && snapshot.duplicated == 0 ? "yes" : "NO — \(snapshot.lost) lost, \(snapshot.duplicated) completed twice"))"
        )
        print("  outcomes: " + snapshot.kinds.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        print(
            "  left in the reactor after the last completion: in flight \(stats.inFlight), queued \(stats.queued); after shutdown released: \(released.released ? "yes" : "NO (\(released))")"
        )
        print(
            "  file descriptors: \(fdsBefore.count) at the start, \(fdsAfter.count) at the end\(leaked.isEmpty ? "" : " — LEAKED: \(leaked.sorted().prefix(20).map(String.init).joined(separator: " "))")"
        )
        print(
            "  deadline backstop expiries: \(stats.backstopExpiries) (curl re-checks of passed deadlines: \(stats.deadlineRechecks)); connections opened: \(stats.connectionsOpened)"
        )
        print("  CPU: \(fmt(cpu, 2)) s = \(fmt(cpu / Double(max(submitted, 1)) * 1e6, 1)) µs per transfer (in-process MockTarget included)")
        if snapshot.lost > 0 || snapshot.duplicated > 0 || !leaked.isEmpty || !released.released { throw ExitCode(1) }
    }
}

/// Completions per transfer index (exactly-once check) and outcome kinds.
final class ChurnLedger: Sendable {
    private struct State {
        var seen: [UInt8]
        var completed = CountWaiter()
        var duplicated = 0
        var kinds: [String: Int] = [:]
    }

    private let state: Mutex<State>

    init(count: Int) { state = Mutex(State(seen: Array(repeating: 0, count: count))) }

    func record(_ index: Int, _ result: Result<HTTPResponse, TransferError>) {
        let kind: String
        switch result {
        case .success(let r): kind = "http \(r.status)"
        case .failure(let e): kind = e.kind.rawValue
        }
        let wake = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.seen[index] &+= 1
            s.kinds[kind, default: 0] += 1
            if s.seen[index] > 1 {
                s.duplicated += 1
                return nil
            }
            return s.completed.add()
        }
        wake?.resume()
    }

    func wait(for n: Int) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            if !state.withLock({ $0.completed.park(c, until: n) }) { c.resume() }
        }
    }

    func snapshot(_ submitted: Int) -> (completed: Int, lost: Int, duplicated: Int, kinds: [String: Int]) {
        state.withLock { s in
            let lost = s.seen.prefix(submitted).filter { $0 == 0 }.count
            return (s.completed.count, lost, s.duplicated, s.kinds)
        }
    }
}

/// The descriptor numbers open in this process now.
func openDescriptors() -> Set<Int> {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return Set(names.compactMap(Int.init))
}

/// A loopback port nothing listens on (bound, then closed).
func unusedLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ValidationError("cannot open a socket") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw ValidationError("cannot find a free loopback port") }
    return Int(UInt16(bigEndian: addr.sin_port))
}
