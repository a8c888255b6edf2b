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
        .target(name: "FanoutCore"),
        .target(
            name: "AlertFanout",
            dependencies: [
                "CurlReactor",
                "FanoutCore",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "MockTarget",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
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
        .executableTarget(
            name: "FanoutCLI",
            dependencies: [
                "CurlReactor",
                "AlertFanout",
                "MockTarget",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(name: "CurlReactorTests", dependencies: ["CurlReactor", "MockTarget"]),
        .testTarget(name: "AlertFanoutTests", dependencies: ["AlertFanout", "MockTarget"], exclude: ["Fixtures"]),
        .testTarget(name: "FanoutCoreTests", dependencies: ["FanoutCore"]),
        .testTarget(name: "FanoutCLITests", dependencies: ["FanoutCLI", "MockTarget"]),
        .testTarget(name: "MockTargetTests", dependencies: ["MockTarget", "CurlReactor"]),
    ],
    swiftLanguageModes: [.v6]
)
