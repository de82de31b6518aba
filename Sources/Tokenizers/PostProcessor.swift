/// A `tokenizer.json` post-processor: adds special tokens around the encoded ids (only when
/// encoding with `addSpecialTokens`).
indirect enum PostProcessor: Sendable {
    /// `TemplateProcessing`'s `single` template: special-token ids and the sequence, in order.
    case template([TemplatePart])
    /// ByteLevel only adjusts offsets, which Shears does not compute: ids are unchanged.
    case byteLevel
    /// `BertProcessing` / `RobertaProcessing`: `cls` ids, the sequence, `sep` ids.
    case wrap(prefix: [Int32], suffix: [Int32])
    case sequence([PostProcessor])

    enum TemplatePart: Sendable, Equatable {
        case special([Int32])
        case sequence
    }

    init(_ f: JSONFields) throws(TokenizerError) {
        let type = try f.type()
        switch type {
        case "TemplateProcessing":
            let specials = try f.fields("special_tokens")
            var parts: [TemplatePart] = []
            for (k, item) in try f.array("single").enumerated() {
                let part = try JSONFields(item, at: "\(f.path("single"))[\(k)]")
                if part.has("Sequence") {
                    let id = try part.fields("Sequence").string("id")
                    guard id == "A" else {
                        throw TokenizerError(.unsupported, "\(part.where_): the single template uses sequence \(id)")
                    }
                    parts.append(.sequence)
                } else if part.has("SpecialToken") {
                    let name = try part.fields("SpecialToken").string("id")
                    guard specials.has(name) else {
                        throw TokenizerError(.malformed, "\(part.where_): special token \(name) is not in special_tokens")
                    }
                    var ids: [Int32] = []
                    for v in try specials.fields(name).array("ids") {
                        guard let i = v.intValue, let i32 = Int32(exactly: i) else {
                            throw TokenizerError(.malformed, "\(specials.path(name)).ids should hold integer ids")
                        }
                        ids.append(i32)
                    }
                    parts.append(.special(ids))
                } else {
                    throw TokenizerError(.malformed, "\(part.where_) should be a Sequence or a SpecialToken")
                }
            }
            self = .template(parts)
        case "ByteLevel":
            self = .byteLevel
        case "BertProcessing", "RobertaProcessing":
            func pair(_ key: String) throws(TokenizerError) -> Int32 {
                let a = try f.array(key)
                guard a.count == 2, let i = a[1].intValue, let i32 = Int32(exactly: i) else {
                    throw TokenizerError(.malformed, "\(f.path(key)) should be [token, id]")
                }
                return i32
            }
            self = .wrap(prefix: [try pair("cls")], suffix: [try pair("sep")])
        case "Sequence":
            var items: [PostProcessor] = []
            for p in try f.objects("processors") { items.append(try PostProcessor(p)) }
            self = .sequence(items)
        default:
            throw TokenizerError(.unsupported, "unsupported post-processor \(type) (\(f.where_))")
        }
    }

    /// Applies the processor to the ids of one sequence.
    func apply(_ ids: [Int32], addSpecialTokens: Bool) -> [Int32] {
        guard addSpecialTokens else { return ids }
        switch self {
        case .template(let parts):
            var out: [Int32] = []
            out.reserveCapacity(ids.count + parts.count)
            for p in parts {
                switch p {
                case .special(let s): out.append(contentsOf: s)
                case .sequence: out.append(contentsOf: ids)
                }
            }
            return out
        case .byteLevel:
            return ids
        case .wrap(let prefix, let suffix):
            return prefix + ids + suffix
        case .sequence(let items):
            var out = ids
            for p in items { out = p.apply(out, addSpecialTokens: addSpecialTokens) }
            return out
        }
    }

    /// The special-token ids the processor puts before and after the sequence.
    var surroundingIDs: (before: [Int32], after: [Int32]) {
        switch self {
        case .template(let parts):
            guard let k = parts.firstIndex(of: .sequence) else { return ([], []) }
            func flat(_ s: ArraySlice<TemplatePart>) -> [Int32] {
                var out: [Int32] = []
                for part in s { if case .special(let ids) = part { out.append(contentsOf: ids) } }
                return out
            }
            return (flat(parts[..<k]), flat(parts[(k + 1)...]))
        case .byteLevel: return ([], [])
        case .wrap(let prefix, let suffix): return (prefix, suffix)
        case .sequence(let items):
            var before: [Int32] = [], after: [Int32] = []
            for p in items { let s = p.surroundingIDs; before = s.before + before; after += s.after }
            return (before, after)
        }
    }
}
