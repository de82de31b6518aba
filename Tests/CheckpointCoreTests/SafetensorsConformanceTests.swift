import Testing
@testable import CheckpointCore

/// One malformed file per rule of the reference reader (in its order), plus the rules it misses.
@Suite struct SafetensorsConformanceTests {
    static let f32x2 = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#

    struct Case: CustomTestStringConvertible, Sendable {
        var label: String
        var bytes: [UInt8]
        var code: CheckpointError.Code
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "empty file", bytes: [], code: .headerTooSmall),
        Case(label: "7 bytes", bytes: [1, 0, 0, 0, 0, 0, 0], code: .headerTooSmall),
        Case(label: "header length over 100 MB", bytes: safetensorsBytes(header: "{}", declaredLength: 100_000_001), code: .headerTooLarge),
        Case(label: "header length u64 max", bytes: safetensorsBytes(header: "{}", declaredLength: UInt64.max), code: .headerTooLarge),
        Case(label: "huge header length is checked before the file length", bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], code: .headerTooLarge),
        Case(label: "header length past end of file", bytes: safetensorsBytes(header: "{}", declaredLength: 100), code: .invalidHeaderLength),
        Case(label: "header not UTF-8", bytes: safetensorsBytes(header: "{\"\u{00}\"}").enumerated().map { $0.offset == 10 ? 0xFF : $0.element }, code: .invalidHeaderUTF8),
        Case(label: "invalid JSON", bytes: safetensorsBytes(header: "{\"w\":"), code: .invalidHeaderDeserialization),
        Case(label: "JSON array", bytes: safetensorsBytes(header: "[]"), code: .invalidHeaderDeserialization),
        Case(label: "trailing garbage after the object", bytes: safetensorsBytes(header: "{} x"), code: .invalidHeaderDeserialization),
        Case(label: "unknown dtype", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), code: .invalidHeaderDeserialization),
        Case(label: "dtype not a string", bytes: safetensorsBytes(header: #"{"w":{"dtype":7,"shape":[2],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), code: .invalidHeaderDeserialization),
        Case(label: "shape not an array", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), code: .invalidHeaderDeserialization),
        Case(label: "negative dimension", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), code: .invalidHeaderDeserialization),
        Case(label: "fractional dimension", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), code: .invalidHeaderDeserialization),
        Case(label: "dimension as a string", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), code: .invalidHeaderDeserialization),
        Case(label: "dimension beyond u64", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), code: .invalidHeaderDeserialization),
        Case(label: "three data offsets", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}"#, data: .init(repeating: 0, count: 8)), code: .invalidHeaderDeserialization),
        Case(label: "missing data_offsets", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[2]}}"#, data: .init(repeating: 0, count: 8)), code: .invalidHeaderDeserialization),
        Case(label: "tensor entry not an object", bytes: safetensorsBytes(header: #"{"w":[1,2]}"#), code: .invalidHeaderDeserialization),
        Case(label: "metadata value not a string", bytes: safetensorsBytes(header: #"{"__metadata__":{"n":1}}"#), code: .invalidHeaderDeserialization),
        Case(label: "metadata not an object", bytes: safetensorsBytes(header: #"{"__metadata__":"pt"}"#), code: .invalidHeaderDeserialization),
        Case(label: "NUL in a tensor name", bytes: safetensorsBytes(header: #"{"a\u0000b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), code: .invalidHeaderDeserialization),
        Case(label: "duplicate tensor name", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, data: .init(repeating: 0, count: 16)), code: .duplicateTensorName),
        Case(label: "duplicate with identical offsets", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), code: .duplicateTensorName),
        Case(label: "tensor named __metadata__", bytes: safetensorsBytes(header: #"{"__metadata__":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), code: .reservedTensorName),
        Case(label: "offsets not starting at 0", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: .init(repeating: 0, count: 12)), code: .invalidOffset),
        Case(label: "gap between tensors", bytes: safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, data: .init(repeating: 0, count: 12)), code: .invalidOffset),
        Case(label: "overlapping tensors", bytes: safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: .init(repeating: 0, count: 8)), code: .invalidOffset),
        Case(label: "END before BEGIN", bytes: safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: .init(repeating: 0, count: 4)), code: .invalidOffset),
        Case(label: "shape × dtype overflow (TOB-SFTN-2)", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[2,18446744073709551614],"data_offsets":[0,16]}}"#, data: .init(repeating: 0, count: 16)), code: .validationOverflow),
        Case(label: "bit count overflow", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)), code: .validationOverflow),
        Case(label: "sub-byte tensor not whole bytes", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#, data: .init(repeating: 0, count: 2)), code: .misalignedSlice),
        Case(label: "byte length not matching shape", bytes: safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: .init(repeating: 0, count: 4)), code: .tensorInvalidInfo),
        Case(label: "trailing bytes (polyglot)", bytes: safetensorsBytes(header: f32x2, data: .init(repeating: 0, count: 8) + Array("PK\u{3}\u{4}zipzipzip".utf8)), code: .metadataIncompleteBuffer),
        Case(label: "truncated data", bytes: safetensorsBytes(header: f32x2, data: .init(repeating: 0, count: 7)), code: .metadataIncompleteBuffer),
        Case(label: "no tensors but data follows", bytes: safetensorsBytes(header: "{}", data: [1, 2, 3]), code: .metadataIncompleteBuffer),
        Case(label: "offsets beyond the file", bytes: safetensorsBytes(header: #"{"w":{"dtype":"U8","shape":[1152921504606846976],"data_offsets":[0,1152921504606846976]}}"#), code: .metadataIncompleteBuffer),
    ]

    @Test(arguments: cases)
    func rejectsWithTheRightError(_ c: Case) {
        #expect {
            try parseHeader(c.bytes)
        } throws: { error in
            guard let e = error as? CheckpointError else { return false }
            return e.code == c.code && !e.message.isEmpty
        }
    }

    @Test func errorsNameTheFileAndTensor() throws {
        let dir = temporaryFolder()
        defer { removeTree(dir) }
        let path = dir + "/bad.safetensors"
        writeFile(path, safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
        #expect { try SafetensorsFile(path: path) } throws: { error in
            let e = error as! CheckpointError
            return e.path == path && e.tensor == "w" && "\(e)".hasPrefix(path + ": tensor 'w': ")
        }
    }

    @Test func acceptsLeadingAndTrailingWhitespace() throws {
        // The reference test `test_whitespace_leading_padded_header`: N = 6, TAB LF { } CR SPACE.
        let h = try parseHeader(safetensorsBytes(header: "\t\n{}\r "))
        #expect(h.tensors.isEmpty && h.headerLength == 6)
        #expect(h.warnings.count == 1)  // 6 is not a multiple of 8
    }

    @Test func acceptsAnyHeaderOrderAndSortsByOffset() throws {
        let header = #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"__metadata__":{"format":"pt"},"a":{"dtype":"U8","shape":[2,2],"data_offsets":[0,4]}}"#
        let h = try parseHeader(safetensorsBytes(header: header, data: [1, 2, 3, 4, 0, 0, 0x80, 0x3F]))
        #expect(h.tensors.map(\.name) == ["a", "b"])
        #expect(h.tensors[0].shape == [2, 2] && h.tensors[1].dataOffsets == 4..<8)
        #expect(h.metadata?["format"] == "pt")
    }

    @Test func acceptsEmptyTensorsScalarsAndNullMetadata() throws {
        let header = #"{"__metadata__":null,"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}"#
        let h = try parseHeader(safetensorsBytes(header: header, data: [7, 0, 0, 0, 0, 0, 0, 0]))
        #expect(h.metadata == nil)
        #expect(h.tensors.map(\.name) == ["e", "s"])
        #expect(h.tensors[0].elementCount == 0 && h.tensors[1].elementCount == 1)
    }

    @Test func ignoresUnknownFieldsWithAWarning() throws {
        let h = try parseHeader(safetensorsBytes(header: #"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}"#, data: [1]))
        #expect(h.tensors.count == 1)
        #expect(h.warnings.contains { $0.contains("x") })
    }
}

/// Random mutations of valid files: every outcome is a correct read or a thrown error.
@Suite struct SafetensorsMutationTests {
    static func validFile() -> [UInt8] {
        let header = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},"c":{"dtype":"I64","shape":[],"data_offsets":[22,30]},"d":{"dtype":"U8","shape":[0],"data_offsets":[30,30]}}"#
        return safetensorsBytes(header: header, data: (0..<30).map { UInt8($0) })
    }

    @Test func mutatedFilesNeverCrash() throws {
        var rng = SplitMix64(seed: 42)
        let original = Self.validFile()
        var accepted = 0, rejected = 0
        for round in 0..<4000 {
            var b = original
            switch round % 5 {
            case 0:  // bit flips
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let i = Int.random(in: 0..<b.count, using: &rng)
                    b[i] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
                }
            case 1:  // truncation
                b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
            case 2:  // header digit edits
                let digits = b.indices.filter { $0 >= 8 && $0 < b.count - 30 && b[$0] >= 0x30 && b[$0] <= 0x39 }
                let i = digits.randomElement(using: &rng)!
                b[i] = UInt8.random(in: 0x30...0x39, using: &rng)
            case 3:  // length prefix edits
                let n = UInt64.random(in: 0...UInt64(b.count + 16), using: &rng)
                withUnsafeBytes(of: n.littleEndian) { for k in 0..<8 { b[k] = $0[k] } }
            default:  // inserted or removed bytes
                let i = Int.random(in: 8..<b.count, using: &rng)
                if Bool.random(using: &rng) { b.insert(UInt8.random(in: 0...255, using: &rng), at: i) } else { b.remove(at: i) }
            }
            do {
                let h = try parseHeader(b)
                // A correct read: every tensor inside the data section, sizes consistent.
                var end = 0
                for t in h.tensors {
                    #expect(t.dataOffsets.lowerBound == end)
                    let spec = TensorSpec(name: t.name, dtype: t.dtype, shape: t.shape)
                    #expect(try spec.byteCount() == t.byteCount)
                    end = t.dataOffsets.upperBound
                }
                #expect(h.dataStart + end == b.count)
                accepted += 1
            } catch {
                rejected += 1
            }
        }
        #expect(accepted > 0 && rejected > 1000)
    }
}
