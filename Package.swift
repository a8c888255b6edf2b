// swift-tools-version:6.0
// AlertFanout: fan alerts out to many targets on one libcurl reactor driven by Dispatch.
import PackageDescription

let package = Package(
    name: "AlertFanout",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "CurlReactor", targets: ["CurlReactor"]),
        .library(name: "AlertFanout", targets: ["AlertFanout"]),
        .library(name: "FanoutCore", targets: ["FanoutCore"]),
        .library(name: "FanoutServer", targets: ["FanoutServer"]),
        .library(name: "FanoutStore", targets: ["FanoutStore"]),
        .library(name: "FanoutLoad", targets: ["FanoutLoad"]),
        .library(name: "MockTarget", targets: ["MockTarget"]),
        .executable(name: "fanout", targets: ["FanoutCLI"]),
        .executable(name: "mock-target", targets: ["MockTargetMain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // Documentation only: `swift package generate-documentation --target CurlReactor` (also AlertFanout, FanoutLoad).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CCurl",
            path: "Sources/CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(
            name: "CurlReactor",
            dependencies: [
                "CCurl",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        .target(name: "FanoutCore", dependencies: [.product(name: "DequeModule", package: "swift-collections")]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "AlertFanout",
            dependencies: [
                "CurlReactor",
                "FanoutCore",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "FanoutStore",
            dependencies: [
                "AlertFanout",
                "FanoutCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "FanoutServer",
            dependencies: [
                "AlertFanout",
                "FanoutStore",
                "CurlReactor",
                "FanoutCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "MockTarget",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "tools/MockTarget/Sources/MockTarget"
        ),
        .executableTarget(
            name: "MockTargetMain",
            dependencies: [
                "MockTarget",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/MockTarget/Sources/mock-target"
        ),
        .target(
            name: "FanoutLoad",
            dependencies: [
                "CurlReactor",
                "AlertFanout",
                "FanoutCore",
                "CZlib",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .executableTarget(
            name: "FanoutCLI",
            dependencies: [
                "CurlReactor",
                "AlertFanout",
                "FanoutCore",
                "FanoutLoad",
                "FanoutServer",
                "FanoutStore",
                "MockTarget",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "CurlReactorTests", dependencies: ["CurlReactor", "MockTarget", "TestSupport"]),
        .testTarget(
            name: "AlertFanoutTests",
            dependencies: [
                "AlertFanout", "FanoutCore", "CurlReactor", "MockTarget", "TestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ],
            exclude: ["Fixtures"]
        ),
        .testTarget(name: "FanoutCoreTests", dependencies: ["FanoutCore", "TestSupport"]),
        .target(name: "TestSupport", dependencies: ["AlertFanout", "CurlReactor", "FanoutCore", "MockTarget"], path: "Tests/TestSupport"),
        .testTarget(
            name: "FanoutStoreTests", dependencies: ["FanoutStore", "FanoutCore", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "FanoutServerTests",
            dependencies: [
                "FanoutServer", "FanoutStore", "AlertFanout", "CurlReactor", "MockTarget", "TestSupport",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "FanoutCLITests", dependencies: ["FanoutCLI", "FanoutLoad", "MockTarget", "CZlib", "AlertFanout", "CurlReactor", "TestSupport"]),
        .testTarget(name: "MockTargetTests", dependencies: ["MockTarget", "CurlReactor", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
