extension GroupReduction {
    /// Combines the members' per-channel vectors (all the same length, root member first) into one
    /// score per channel, as upstream's group reduction does (no normalization).
    public func combine(_ members: [[Double]]) -> [Double] {
        precondition(!members.isEmpty && members.allSatisfy { $0.count == members[0].count }, "members must align")
        let n = members[0].count
        switch self {
        case .first:
            return members[0]
        case .sum, .mean:
            var out = [Double](repeating: 0, count: n)
            for m in members { for i in 0..<n { out[i] += m[i] } }
            if self == .mean { let k = Double(members.count); for i in 0..<n { out[i] /= k } }
            return out
        case .max:
            var out = members[0]
            for m in members.dropFirst() { for i in 0..<n where m[i] > out[i] { out[i] = m[i] } }
            return out
        case .prod:
            var out = [Double](repeating: 1, count: n)
            for m in members { for i in 0..<n { out[i] *= m[i] } }
            return out
        }
    }
}

/// Sums consecutive runs of `size` channels into one score per unit (a head's score is the sum of
/// its head_dim channel scores).
public func sumConsecutive(_ v: [Double], size: Int) -> [Double] {
    precondition(size > 0 && v.count % size == 0, "length must be a multiple of the unit size")
    return stride(from: 0, to: v.count, by: size).map { s in v[s..<(s + size)].reduce(0, +) }
}
