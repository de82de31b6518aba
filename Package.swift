// swift-tools-version: 6.0
// Shears: memory-mapped checkpoint I/O, inspection, conversion and LLM-Pruner-style
// structured pruning for LLaMA-family models. See README.md.
import PackageDescription

let package = Package(
    name: "Shears",
    products: [
        .executable(name: "shears", targets: ["shears"]),
        .executable(name: "shears-bench", targets: ["ShearsBench"]),
        .library(name: "CheckpointCore", targets: ["CheckpointCore"]),
        .library(name: "ModelArchitecture", targets: ["ModelArchitecture"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "ShearsBLAS", targets: ["ShearsBLAS"]),
        .library(name: "CompactFormat", targets: ["CompactFormat"]),
        .library(name: "GGUF", targets: ["GGUF"]),
        .library(name: "Pruning", targets: ["Pruning"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "ShearsPipeline", targets: ["ShearsPipeline"]),
        .library(name: "ModelSigning", targets: ["ModelSigning"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
    ],
    targets: [
        // System libraries: the product's C dependencies (pkg-config names, apt providers). Linux only:
        // the code uses Glibc and /proc, and the files that import Glibc stop with #error elsewhere.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CJSONC", path: "Sources/CJSONC", pkgConfig: "json-c",
                       providers: [.apt(["libjson-c-dev"])]),
        .systemLibrary(name: "COniguruma", path: "Sources/COniguruma", pkgConfig: "oniguruma",
                       providers: [.apt(["libonig-dev"])]),
        .systemLibrary(name: "CICU", path: "Sources/CICU", pkgConfig: "icu-uc",
                       providers: [.apt(["libicu-dev"])]),

        // The one lock, parallel-for helper and Sendable box that the other modules share.
        .target(name: "ShearsConcurrency"),
        // Hardware kernels chosen at run time: half-float conversion (F16C), CRC-32C (SSE4.2).
        .target(name: "CKernels", path: "Sources/CKernels"),
        // JSON values parsed and written through json-c, with the strictness checks json-c lacks.
        .target(name: "ShearsJSON", dependencies: ["CJSONC"]),
        // Formats core: mmap, dtypes, conversions, safetensors read/write, sharding. Knows no models.
        .target(name: "CheckpointCore", dependencies: ["ShearsJSON", "CKernels"]),
        // The compact checkpoint format (formats/compact.md): lossless, chunked, checksummed.
        .target(name: "CompactFormat", dependencies: [
            "CheckpointCore", "ShearsJSON", "ShearsConcurrency", "CZstd", "CKernels", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Model configurations (config.json) for LLaMA-family architectures.
        .target(name: "ModelArchitecture", dependencies: ["ShearsJSON", "CheckpointCore"]),
        // GGUF read/write, dequantization, and GGUF <-> Hugging Face folder conversion (llama family).
        .target(name: "GGUF", dependencies: ["CheckpointCore", "ShearsJSON", "ModelArchitecture"]),
        // LLM-Pruner-style structured pruning: plans, importance, selection, surgery, config and manifest.
        .target(name: "Pruning", dependencies: ["CheckpointCore", "ShearsJSON", "ModelArchitecture", "ShearsBLAS"]),
        // OpenBLAS wrapper and core-type selection.
        .target(name: "ShearsBLAS", dependencies: ["CBLAS"]),
        // The CPU transformer engine: forward, loss, backward with streamed gradients, generation.
        .target(name: "Engine", dependencies: ["CheckpointCore", "ModelArchitecture", "ShearsBLAS", "ShearsConcurrency"]),
        // tokenizer.json encoding/decoding, exact to the Hugging Face tokenizers library.
        .target(name: "Tokenizers", dependencies: ["ShearsJSON", "ShearsConcurrency", "COniguruma", "CICU"]),
        // The jobs as library calls over any model Shears opens: pruning (PruneJob), model sources,
        // the engine-backed gradient and activation sources, staged outputs.
        .target(name: "ShearsPipeline", dependencies: [
            "CheckpointCore", "CKernels", "ModelArchitecture", "ShearsJSON", "Tokenizers", "CompactFormat", "GGUF", "Pruning", "Engine",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // OpenSSF model signing (model-signing 1.1.1's `sign key` / `verify key` bundles): file
        // digests in parallel, the in-toto statement, DSSE, Sigstore bundle v0.3, PEM EC keys.
        .target(name: "ModelSigning", dependencies: [
            "CheckpointCore", "ShearsJSON", "ShearsConcurrency", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The command implementations, as a library so that tests can drive them.
        .target(name: "ShearsCommands", dependencies: [
            "CheckpointCore", "ModelArchitecture", "ShearsBLAS", "ShearsJSON", "Tokenizers", "CompactFormat", "GGUF", "Pruning", "Engine",
            "ShearsPipeline", "ShearsConcurrency", "ModelSigning", .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "shears", dependencies: [
            "ShearsCommands", "ShearsBLAS",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Benchmarks of the formats core and the recovery solve (run by Tools/bench and
        // `shears-bench refit` in a release build).
        .executableTarget(name: "ShearsBench", dependencies: ["CheckpointCore", "CompactFormat", "ModelArchitecture", "Pruning", "ShearsBLAS", "ShearsConcurrency"], path: "Sources/ShearsBench"),

        .testTarget(name: "ShearsConcurrencyTests", dependencies: ["ShearsConcurrency"]),
        .testTarget(name: "ShearsJSONTests", dependencies: ["ShearsJSON"]),
        .testTarget(name: "CheckpointCoreTests", dependencies: [
            "CheckpointCore", "ShearsJSON", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "CompactFormatTests", dependencies: ["CompactFormat", "CheckpointCore", "ShearsJSON"]),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "CheckpointCore", "ShearsJSON", "ModelArchitecture", "Tokenizers"]),
        .testTarget(name: "ModelArchitectureTests", dependencies: ["ModelArchitecture"]),
        .testTarget(name: "ShearsBLASTests", dependencies: ["ShearsBLAS"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "CheckpointCore", "ModelArchitecture", "ShearsBLAS", "ShearsJSON"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "ShearsConcurrency"]),
        .testTarget(name: "PruningTests", dependencies: [
            "Pruning", "CheckpointCore", "ShearsJSON", "ModelArchitecture", "ShearsCommands", "Tokenizers",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "ShearsPipelineTests", dependencies: [
            "ShearsPipeline", "Pruning", "ModelArchitecture", "CheckpointCore", "CompactFormat", "ShearsJSON",
            "Engine", "Tokenizers",
        ]),
        .testTarget(name: "ShearsCommandsTests", dependencies: [
            "ShearsCommands", "CheckpointCore", "ShearsBLAS", "ShearsJSON", "GGUF", "ModelSigning",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
    ]
)

// Fuzz targets (Fuzz/, issue 21): one libFuzzer entry point per parser of untrusted bytes. Declared
// only when SHEARS_FUZZ is set, as Tools/fuzz does (it builds them with the fuzzer and address
// sanitizers into .build/fuzz), so the normal build and test never see them.
if Context.environment["SHEARS_FUZZ"] != nil {
    let fuzzTargets: [(String, [Target.Dependency])] = [
        ("FuzzJSON", ["ShearsJSON"]),
        ("FuzzSafetensorsHeader", ["CheckpointCore"]),
        ("FuzzShardIndex", ["CheckpointCore"]),
        ("FuzzConfig", ["CheckpointCore", "ModelArchitecture", "ShearsJSON"]),
        ("FuzzGGUF", ["CheckpointCore", "GGUF"]),
        ("FuzzCompact", ["CheckpointCore", "CompactFormat"]),
        ("FuzzTokenizer", ["Tokenizers"]),
        ("FuzzManifest", ["CheckpointCore", "ModelArchitecture", "Pruning", "ShearsJSON"]),
        ("FuzzHashList", ["ShearsCommands"]),
        ("FuzzCalibrationTokens", ["CheckpointCore", "ShearsPipeline"]),
        ("FuzzTrainingData", ["CheckpointCore", "ShearsPipeline", "Tokenizers"]),
        ("FuzzPEFTAdapter", ["CheckpointCore", "ModelArchitecture", "ShearsPipeline"]),
    ]
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/Support"))
    for (name, deps) in fuzzTargets {
        package.targets.append(.executableTarget(name: name, dependencies: deps + ["FuzzSupport"], path: "Fuzz/\(name)",
                                                 swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
    }
}
