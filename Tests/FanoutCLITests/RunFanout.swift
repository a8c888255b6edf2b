// RunFanout: runs the built `fanout` executable as a user would, with a time limit, reading both pipes at once.
import Foundation
import TestSupport
import XCTest

/// Runs the built `fanout` with a time limit, reading standard output and error at the same time. `onStart` gets
/// the child's process id once it runs (to signal it); `whileRunning` the standard output so far, every few
/// milliseconds while the child runs.
func runFanout(
    _ args: [String], stdin: String? = nil, env: [String: String] = [:], seconds: Double = 60, onStart: (Int32) -> Void = { _ in },
    whileRunning: (String) -> Void = { _ in }
) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("fanout")
    p.arguments = args
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    let out = Pipe()
    let err = Pipe()
    let input = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = input
    let outData = TestLock(Data())
    let errData = TestLock(Data())
    out.fileHandleForReading.readabilityHandler = { h in
        let d = h.availableData
        outData.withLock { $0.append(d) }
    }
    err.fileHandleForReading.readabilityHandler = { h in
        let d = h.availableData
        errData.withLock { $0.append(d) }
    }
    try p.run()
    onStart(p.processIdentifier)
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    let deadline = Date().addingTimeInterval(seconds)
    while p.isRunning && Date() < deadline {
        usleep(5000)
        whileRunning(String(decoding: outData.withLock { $0 }, as: UTF8.self))
    }
    if p.isRunning {
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTFail("fanout \(args.joined(separator: " ")) did not finish within \(seconds) s")
    }
    p.waitUntilExit()
    out.fileHandleForReading.readabilityHandler = nil
    err.fileHandleForReading.readabilityHandler = nil
    let o = outData.withLock { $0 } + out.fileHandleForReading.readDataToEndOfFile()
    let e = errData.withLock { $0 } + err.fileHandleForReading.readDataToEndOfFile()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}
