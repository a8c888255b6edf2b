// PublishCommand: `fanout publish` — publish alerts from a file or stdin to the targets in a targets file.
import AlertFanout
import ArgumentParser
import FanoutCore
import FanoutLoad
import FanoutStore
import Foundation
import Synchronization

struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish alerts to every configured target at once and report one result per target.",
        discussion: """
            --alerts takes one alert object, an array of alerts, or an Alertmanager webhook payload (version "4"); '-' reads standard input. ${ENV} references in the targets file are expanded from the environment. Reports follow the input order of the alerts.

            Exit status: 0 every enabled target of every alert succeeded (targets with enabled: false are listed as skipped and do not count); 1 partial success; 2 an alert reached no target; 64 bad input (the message names the file and field).

            Example:
            fanout publish --targets targets.yaml --alerts alerts.json --json
            """)

    @Option(name: .long, help: "Targets file (YAML or JSON, a 'targets:' list).")
    var targets: String

    @Option(name: .long, help: "Alerts file, or '-' for standard input.")
    var alerts: String

    @Option(help: "Deadline for each alert's whole fan-out (e.g. 10s).", transform: parseDuration)
    var deadline: Duration = .seconds(10)

    @Option(help: "Health strategy: skip_unhealthy, publish_to_all or skip_unhealthy_and_degraded.")
    var strategy: String = HealthStrategy.skipUnhealthy.rawValue

    @Option(name: .customLong("target"), help: "Publish only to this target (repeatable; order kept).")
    var only: [String] = []

    @Option(help: "Requests in flight at once per target.")
    var maxInFlight: Int?

    @Option(
        help:
            "At most this many alerts being published at once. An alert starts as another finishes, while few requests wait for a connection: each alert's --deadline counts from its start, and memory stays bounded without slowing a long alert file (the targets' connections stay busy)."
    )
    var alertsInFlight: Int = 256

    @Flag(help: "Print the reports as JSON instead of tables.")
    var json = false

    @Option(
        help:
            "A store (sqlite:PATH or postgres://…) whose Rootly id map this run reads and updates, so a resolve published later, by this command or by fanout serve, finds the alert its create made."
    )
    var store: String?

    @OptionGroup var observability: ObservabilityOptions

    func validate() throws {
        guard HealthStrategy(rawValue: strategy) != nil else {
            throw ValidationError("--strategy must be one of \(HealthStrategy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard deadline > .zero else { throw ValidationError("--deadline must be positive") }
        if let m = maxInFlight, m < 1 { throw ValidationError("--max-in-flight must be at least 1") }
        guard alertsInFlight >= 1 else { throw ValidationError("--alerts-in-flight must be at least 1") }
        if let s = store {
            switch StoreLocation.parse(s) {
            case .failure(let e): throw ValidationError("--store: \(e.message)")
            case .success(.none): throw ValidationError("--store: none keeps no Rootly ids; give sqlite:PATH or postgres://…")
            case .success: break
            }
        }
    }

    func run() async throws {
        let config: TargetsConfig
        let batch: AlertBatch
        do {
            let text = try readText(targets, what: "targets file")
            config = try TargetsConfigLoader.load(text: text, file: targets, environment: ProcessInfo.processInfo.environment)
            let alertBytes = Array(try readText(alerts, what: "alerts file").utf8)
            do {
                batch = try AlertInput.decode(json: alertBytes, now: currentTimestamp())
            } catch let e as AlertDecodingError {
                throw InputError(message: "\(alerts == "-" ? "standard input" : alerts): \(e)")
            }
        } catch let e as InputError {
            FileHandle.standardError.write(Data("fanout publish: \(e.message)\n".utf8))
            throw ExitCode(64)
        } catch let e as TargetsConfigError {
            FileHandle.standardError.write(Data("fanout publish: \(e)\n".utf8))
            throw ExitCode(64)
        }
        let obs = try Observability(observability)
        let publisher = try FanoutPublisher(targets: config, logger: obs.logger("alertfanout.publish"), metrics: obs.exporting ? obs.factory : nil)
        let reactorMetrics = obs.reactorMetrics(publisher.reactor)
        let options = PublishOptions(
            deadline: deadline, strategy: HealthStrategy(rawValue: strategy)!,
            selection: only.isEmpty ? .all : .named(only), maxInFlightPerTarget: maxInFlight)
        // With --store: the Rootly ids earlier runs (or the service) stored, so resolves find their alerts.
        var rootlyStore: (any DeliveryStore)?
        if let s = store, case .success(let location) = StoreLocation.parse(s) {
            do { rootlyStore = try await location.open() } catch {
                FileHandle.standardError.write(Data("fanout publish: cannot open the store \(location): \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        let rootlyTargets = config.targets.filter { $0.type == .rootly }.map(\.name)
        if let rootlyStore, !rootlyTargets.isEmpty {
            try await rootlyStore.loadRootlyIDs(rootlyTargets.flatMap { t in batch.alerts.map { "\(t)|\($0.fingerprint)" } }, into: publisher)
        }
        // Reports are written as alerts finish, in input order, from a queue of their own (a slow reader of
        // standard output never holds up the reactor); each is dropped once written.
        fflush(nil)  // after whatever `print` buffered
        let output = PublishOutput(
            alerts: batch.alerts, json: json, rootlyTargets: rootlyStore == nil ? [] : Set(rootlyTargets), started: DispatchTime.now())
        await PublishWindow(publisher: publisher, batch: batch, options: options, window: alertsInFlight, output: output).run()
        output.finish()
        if let rootlyStore {
            for r in output.rootlyChanges {
                if r.action == "create" {
                    try await rootlyStore.rememberRootlyID(target: r.target, fingerprint: r.fingerprint, id: r.id, now: Double(Timestamp.now().seconds))
                } else {
                    try await rootlyStore.forgetRootlyID(target: r.target, fingerprint: r.fingerprint)
                }
            }
            await rootlyStore.close()
        }
        reactorMetrics?.sample()
        reactorMetrics?.stop()
        await publisher.shutdown()
        try obs.finish()
        if output.exitStatus != 0 { throw ExitCode(output.exitStatus) }
    }
}

struct InputError: Error { var message: String }

func readText(_ path: String, what: String) throws -> String {
    if path == "-" {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        guard let s = String(data: data, encoding: .utf8) else { throw InputError(message: "standard input is not UTF-8 text") }
        return s
    }
    guard FileManager.default.fileExists(atPath: path) else { throw InputError(message: "\(what) '\(path)' does not exist") }
    guard let data = FileManager.default.contents(atPath: path) else { throw InputError(message: "cannot read \(what) '\(path)'") }
    guard let s = String(data: data, encoding: .utf8) else { throw InputError(message: "\(what) '\(path)' is not UTF-8 text") }
    return s
}

func currentTimestamp() -> Timestamp {
    let now = Date().timeIntervalSince1970
    let s = now.rounded(.down)
    return Timestamp(seconds: Int64(s), nanoseconds: Int32((now - s) * 1e9))
}

/// `bytes` to standard output, unbuffered (callers write large chunks).
func writeStandardOutput(_ bytes: UnsafeBufferPointer<UInt8>) {
    var done = 0
    while done < bytes.count {
        let n = Foundation.write(1, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            return  // stdout closed: nothing more to do here
        }
        done += n
    }
}
