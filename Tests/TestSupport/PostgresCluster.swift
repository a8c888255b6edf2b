// PostgresCluster: a throw-away PostgreSQL server on 127.0.0.1 for tests — Debian's initdb/pg_ctl run as `postgres`.
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Starts a private cluster in a temporary folder on a free port (trust auth, loopback only) and stops it.
/// Tests run as root here; PostgreSQL refuses root, so the binaries run as the `postgres` user via `runuser`.
public final class PostgresCluster: @unchecked Sendable {
    public private(set) var port: Int
    public let dir: String
    let bin: String

    /// The binaries of the newest installed PostgreSQL (`/usr/lib/postgresql/N/bin`), or nil.
    public static var binaries: String? {
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).compactMap(Int.init).sorted()
        return versions.reversed().map { "\(base)/\($0)/bin" }.first { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }
    }

    /// Creates and starts a cluster with a database `fanout`. Skips the test when PostgreSQL is not installed
    /// (`tools/run test` and `.ci/run` install Debian's `postgresql`).
    public init() throws {
        guard let bin = PostgresCluster.binaries else {
            throw XCTSkip("PostgreSQL's server binaries are not installed (apt-get install postgresql; tools/run test does it)")
        }
        self.bin = bin
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        port = 0
        try PostgresCluster.run("/bin/chown", ["postgres:postgres", dir])
        try asPostgres("initdb", ["-D", "\(dir)/data", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"])
        // A port that was free a moment ago; another process may take it first, so try a few.
        var lastError: (any Error)?
        for _ in 0..<5 {
            port = try PostgresCluster.freePort()
            do {
                try start()
                lastError = nil
                break
            } catch {
                lastError = error
            }
        }
        if let lastError { throw lastError }
        try PostgresCluster.run("\(bin)/psql", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-q", "-c", "CREATE DATABASE fanout"])
    }

    /// `postgres://postgres@127.0.0.1:PORT/fanout?sslmode=disable`.
    public var url: String { "postgres://postgres@127.0.0.1:\(port)/fanout?sslmode=disable" }

    public func start() throws {
        try asPostgres(
            "pg_ctl",
            [
                "-D", "\(dir)/data", "-l", "\(dir)/log", "-w", "-t", "30",
                "-o", "-p \(port) -k \(dir) -c listen_addresses=127.0.0.1 -c max_connections=100", "start",
            ])
    }

    /// Stops at once (`-m immediate`: what a crash or a restart looks like to clients).
    public func stop() throws {
        try asPostgres("pg_ctl", ["-D", "\(dir)/data", "-m", "immediate", "-w", "stop"])
    }

    /// Stops the server (if running) and removes its files.
    public func destroy() {
        try? stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    func asPostgres(_ tool: String, _ args: [String]) throws {
        try PostgresCluster.run("/usr/sbin/runuser", ["-u", "postgres", "--", "\(bin)/\(tool)"] + args)
    }

    /// A TCP port free on 127.0.0.1 right now (bound to port 0, then released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw NSError(domain: "PostgresCluster", code: 1, userInfo: [NSLocalizedDescriptionKey: "no free port"]) }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Runs a tool to its end with `posix_spawn`, output to a file. Not Foundation's `Process`: `pg_ctl start`
    /// leaves the server running, and the server would inherit what `Process` watches for the child's exit.
    static func run(_ path: String, _ args: [String]) throws {
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent("pgtool-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: outPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard rc == 0 else { throw NSError(domain: "PostgresCluster", code: Int(rc), userInfo: [NSLocalizedDescriptionKey: "cannot run \(path)"]) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let exited = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        guard exited == 0 else {
            throw NSError(
                domain: "PostgresCluster", code: Int(exited),
                userInfo: [NSLocalizedDescriptionKey: "\(path) \(args.joined(separator: " ")) failed: \(text)"])
        }
    }
}
