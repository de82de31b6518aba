import Testing
import CheckpointCore
import ShearsJSON
@testable import GGUF

/// The Python gguf package's files (Tools/make-gguf-fixtures) read exactly.
@Suite struct GGUFFixtureTests {
    static let folder = fixturesPath + "/gguf"

    static func expected() throws -> JSONValue {
        try JSONValue.parse(try FileSystem.readFile(folder + "/expected.json"))
    }

    @Test func readsHeaderAndMetadata() throws {
        let f = try GGUFFile(path: Self.folder + "/all-types.gguf")
        let e = try Self.expected()
        #expect(f.version == 3)
        #expect(f.alignment == e["alignment"]?.intValue)
        #expect(f.dataStart == e["data_offset"]?.intValue)
        #expect(f.architecture == "llama")
        #expect(f["test.uint8"] == .uint8(200))
        #expect(f["test.int8"] == .int8(-100))
        #expect(f["test.uint16"] == .uint16(60000))
        #expect(f["test.int16"] == .int16(-30000))
        #expect(f["test.uint32"] == .uint32(4_000_000_000))
        #expect(f["test.int32"] == .int32(-2_000_000_000))
        #expect(f["test.float32"] == .float32(0.1))
        #expect(f["test.bool"] == .bool(true))
        #expect(f["test.string"]?.stringValue == "héllo, wörld")
        #expect(f["test.uint64"] == .uint64(18_000_000_000_000_000_000))
        #expect(f["test.int64"] == .int64(-9_000_000_000_000_000_000))
        #expect(f["test.float64"] == .float64(2.5e-300))
        #expect(f["test.array.int32"] == .array(.int32, [.int32(1), .int32(-2), .int32(3)]))
        #expect(f["test.array.string"]?.arrayValue?.compactMap(\.stringValue) == ["a", "bc", ""])
        #expect(f["test.array.nested"] == .array(.array, [.array(.int32, [.int32(1), .int32(2)]), .array(.int32, [.int32(3), .int32(4), .int32(5)])]))
        #expect(f["test.array.bool"] == .array(.bool, [.bool(true), .bool(false)]))
        #expect(f["test.array.float"] == .array(.float32, [.float32(0.5), .float32(-1.25)]))
        // Every key the package reports is read, with the same type.
        for (k, v) in e["metadata"]!.objectValue!.members {
            guard let tname = v["type"]?.stringValue else { continue }
            #expect(f[k]?.type.name.uppercased() == tname, "\(k)")
        }
    }

    @Test func tensorsMatchTheDeclaredTypesAndShapes() throws {
        let f = try GGUFFile(path: Self.folder + "/all-types.gguf")
        let e = try Self.expected()
        let list = e["tensors"]!.arrayValue!
        #expect(f.tensors.map(\.name) == list.map { $0["name"]!.stringValue! })
        for (t, x) in zip(f.tensors, list) {
            #expect(t.type.name == x["type"]!.stringValue!)
            #expect(t.shape == x["shape"]!.arrayValue!.map { $0.intValue! })
        }
    }

    /// Element for element (bit for bit) equal to gguf.quants.dequantize.
    @Test(arguments: ["t.f32", "t.f16", "t.bf16", "t.q4_0", "t.q4_1", "t.q5_0", "t.q5_1", "t.q8_0",
                      "t.q2_k", "t.q3_k", "t.q4_k", "t.q5_k", "t.q6_k", "t.cube"])
    func dequantizesExactlyAsThePythonPackage(name: String) throws {
        let f = try GGUFFile(path: Self.folder + "/all-types.gguf")
        let got = try f.floats(named: name)
        let want = try readFloats(Self.folder + "/all-types.\(name).f32")
        #expect(got.count == want.count)
        let mismatches = zip(got, want).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
        #expect(mismatches.isEmpty, "\(name): \(mismatches.count) elements differ, first at \(mismatches.first.map { "\($0.offset): \($0.element.0) vs \($0.element.1)" } ?? "")")
    }

    @Test func undecodableTypesGetAClearError() throws {
        var raw = [UInt8](repeating: 0, count: 66)
        var out = [Float](repeating: 0, count: 256)
        let r: Result<Void, CheckpointError> = raw.withUnsafeMutableBytes { src in
            out.withUnsafeMutableBufferPointer { dst in
                Result { () throws(CheckpointError) in try Dequantize.decode(UnsafeRawBufferPointer(src), type: GGMLType(rawValue: 16), into: dst) }
            }
        }
        #expect(throws: CheckpointError.self) { try r.get() }
        if case .failure(let e) = r {
            #expect(e.code == .unsupportedQuantization)
            #expect(e.message.contains("IQ2_XXS"))
        }
    }

    @Test func acceptsVersion2() throws {
        var bytes = try FileSystem.readFile(Self.folder + "/all-types.gguf")
        bytes[4] = 2
        let h = try parseGGUF(bytes)
        #expect(h.version == 2 && h.tensors.count == 14)
    }
}
