import CheckpointCore

/// Signing and verifying models in the OpenSSF model-signing format (`model-signing` 1.1.1's
/// `sign key` / `verify key`): a Sigstore bundle v0.3 holding a DSSE envelope around an in-toto
/// statement with one SHA-256 per file, signed with an elliptic-curve key. Works offline.
///
/// ### See Also
/// - ``ModelFiles`` (which files are covered), ``SignedStatement``, ``SignatureBundle``,
///   ``ModelSigningKey``, ``ModelVerificationKey``, ``FileDigests``
public enum ModelSignature {
    /// Where a signature goes when none is named: `model.sig` next to a model folder (in its
    /// parent folder), `FILE.sig` next to a single file.
    public static func defaultPath(for model: String) -> String {
        var m = model
        while m.count > 1 && m.hasSuffix("/") { m.removeLast() }
        guard FileSystem.isDirectory(m) else { return m + ".sig" }
        let last = FileSystem.baseName(m)
        let folder = (last == "." || last == ".." || last.isEmpty) ? ModelFiles.resolved(m) : m
        let parent = FileSystem.directoryName(folder)
        return parent == "." ? "model.sig" : FileSystem.join(parent, "model.sig")
    }

    /// What ``sign(model:key:signaturePath:threads:)`` wrote.
    public struct SigningResult: Sendable {
        public var signaturePath: String
        public var statement: SignedStatement
        /// Bytes hashed.
        public var bytes: Int
    }

    /// Hashes every file of `model` and writes a signature bundle (atomically).
    ///
    /// - Parameters:
    ///   - model: a model folder or a single file.
    ///   - key: the signer's private key.
    ///   - signaturePath: the bundle to write (default ``defaultPath(for:)``). When it lies inside the
    ///     model folder it is left out of the signature and recorded in `ignore_paths`.
    ///   - threads: files hashed at the same time.
    /// - Throws: ``CheckpointError``: a missing model, a symbolic link, an unreadable file, a write failure.
    public static func sign(model: String, key: ModelSigningKey, signaturePath: String? = nil, threads: Int) throws(CheckpointError) -> SigningResult {
        let output = signaturePath ?? defaultPath(for: model)
        var ignored: [String] = []
        if FileSystem.isDirectory(model), let inside = relativePath(of: output, inside: model) { ignored.append(inside) }
        ignored += ModelFiles.gitPaths
        let files = try ModelFiles(root: model, ignoring: ignored, allowSymlinks: false)
        let digests = try FileDigests.sha256(files.paths, threads: threads)
        var bytes = 0
        for p in files.paths { bytes += (try? FileSystem.size(of: p)) ?? 0 }
        let resources = zip(files.names, digests).map { SignedResource(name: $0, sha256: $1) }
        let statement = SignedStatement(modelName: ModelFiles.modelName(model), resources: resources, ignorePaths: ignored)
        let payload = statement.json.serializedBytes(style: .pretty)
        let signature = try key.signature(for: SignatureBundle.pae(payload))
        let bundle = SignatureBundle(payload: payload, signature: signature, keyHint: key.publicKey.hint)
        try AtomicFile.write(bundle.serialized, to: output)
        return SigningResult(signaturePath: output, statement: statement, bytes: bytes)
    }

    /// The outcome of ``verify(model:signaturePath:publicKey:threads:)``: verified when `problems`
    /// is empty. Each problem names the file (a model file, or the bundle) and what is wrong.
    public struct Report: Sendable {
        public var problems: [String] = []
        /// Files compared with the signature.
        public var filesChecked = 0
        /// The statement, when the bundle held one Shears reads.
        public var statement: SignedStatement?
        public var verified: Bool { problems.isEmpty }
    }

    /// Checks `model` against a bundle: the signature over the payload with `publicKey`, the
    /// statement's type, predicate and serialization, the subject digest, and every file's SHA-256
    /// (changed, added, removed and renamed files are each reported).
    ///
    /// Bundles that need the network (a Sigstore keyless certificate, a transparency-log entry) are
    /// refused as unverified, but their file digests are still compared.
    ///
    /// - Throws: ``CheckpointError`` when the bundle is malformed (not JSON, truncated, bad base64,
    ///   a payload that is not a statement) or the model cannot be read. Everything that was checked
    ///   and found different is a problem in the report instead.
    public static func verify(model: String, signaturePath: String, publicKey: ModelVerificationKey, threads: Int) throws(CheckpointError) -> Report {
        let bundle = try SignatureBundle(path: signaturePath)
        var report = Report()
        if let network = bundle.needsNetwork {
            report.problems.append("\(signaturePath): the bundle relies on \(network) (Sigstore keyless or certificate signing); checking it needs the network, so Shears does not verify its signature: sign with a key (`shears sign --key`, `model_signing sign key`) for offline verification")
        } else {
            if let hint = bundle.keyHint, hint.lowercased() != publicKey.hint {
                report.problems.append("\(signaturePath): signed by another key (the bundle's key hint \(hint.prefix(16))… is not the given public key's \(publicKey.hint.prefix(16))…)")
                return report
            }
            guard bundle.payloadType == SignatureBundle.payloadType else {
                report.problems.append("\(signaturePath): payload type \"\(bundle.payloadType)\" is not one Shears knows (\(SignatureBundle.payloadType))")
                return report
            }
            guard publicKey.isValidSignature(bundle.signature, for: SignatureBundle.pae(bundle.payload)) else {
                report.problems.append("\(signaturePath): the signature does not verify with the given public key: the payload was changed or another key signed it")
                return report
            }
        }
        let statement: SignedStatement
        do {
            statement = try SignedStatement(payload: bundle.payload)
        } catch {
            switch error {
            case .malformed(let m): throw CheckpointError(.invalidFormat, "malformed signature bundle: " + m, path: signaturePath)
            case .unsupported(let m): report.problems.append("\(signaturePath): \(m)"); return report
            }
        }
        report.statement = statement
        if SignedStatement.rootDigest(statement.resources) != statement.subjectDigest {
            report.problems.append("\(signaturePath): the subject digest does not match the listed files' digests")
        }
        var ignored = statement.ignorePaths + ModelFiles.gitPaths
        if FileSystem.isDirectory(model), let inside = relativePath(of: signaturePath, inside: model) { ignored.append(inside) }
        let files = try ModelFiles(root: model, ignoring: ignored, allowSymlinks: statement.allowSymlinks)
        let digests = try FileDigests.sha256(files.paths, threads: threads)
        report.filesChecked = files.names.count
        report.problems += compare(model: model, signed: statement.resources, actual: Array(zip(files.names, digests)))
        return report
    }

    /// Problems between the signed resources and the model's files: changed, renamed (a removed
    /// file's digest reappears under a new name), added and removed files, each named by its path.
    static func compare(model: String, signed: [SignedResource], actual: [(String, [UInt8])]) -> [String] {
        func file(_ name: String) -> String { name == "." ? model : FileSystem.join(model, name) }
        var expected: [String: [UInt8]] = [:]
        for r in signed { expected[r.name] = r.sha256 }
        var found: [String: [UInt8]] = [:]
        for (n, d) in actual { found[n] = d }
        var problems: [String] = []
        var added = actual.map(\.0).filter { expected[$0] == nil }
        var removed = signed.map(\.name).filter { found[$0] == nil }
        for (n, d) in actual {
            if let e = expected[n], e != d {
                problems.append("\(file(n)) changed (sha256 \(FileDigests.hex(d).prefix(16))…, signed \(FileDigests.hex(e).prefix(16))…)")
            }
        }
        for r in removed {
            if let i = added.firstIndex(where: { found[$0] == expected[r] }) {
                problems.append("\(file(r)) was renamed to \(file(added[i])) (same SHA-256; the signature names \(r))")
                added.remove(at: i)
                removed.removeAll { $0 == r }
            }
        }
        for n in added { problems.append("\(file(n)) was added (not in the signature)") }
        for n in removed { problems.append("\(file(n)) was removed (signed, but missing)") }
        return problems
    }

    static func relativePath(of path: String, inside root: String) -> String? {
        ModelFiles.relativePath(of: path, inside: root)
    }
}
