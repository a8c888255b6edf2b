// swift-tools-version:6.1
// AlertFanout's benchmarks (ordo-one/package-benchmark). A nested package: `swift test` at the root never builds it.
// Run: `cd Benchmarks && swift package benchmark` (thresholds: `swift package benchmark thresholds check`).
import PackageDescription

let package = Package(
    name: "AlertFanoutBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "AlertFanout", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "FanoutBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "CurlReactor", package: "AlertFanout"),
                .product(name: "AlertFanout", package: "AlertFanout"),
                .product(name: "MockTarget", package: "AlertFanout"),
            ],
            path: "Benchmarks/FanoutBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        )
    ]
)
