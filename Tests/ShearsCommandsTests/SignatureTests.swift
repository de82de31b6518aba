import Testing
#if canImport(Glibc)
import Glibc
#else
#error("Shears is built and tested on Linux only")
#endif
import CheckpointCore
import Crypto
import ModelSigning
import ShearsJSON

/// `shears sign` and `verify --signature` against bundles written by model_signing 1.1.1
/// (Fixtures/signing, made by Tools/make-signing-fixtures): model_signing's bundles verify, Shears'
/// own round-trip, and each kind of tampering fails with exit 1 and the file named.
@Suite(.serialized) struct SignatureTests {
    static let keys = fixturesPath + "/signing"
    static let model = fixturesPath + "/models/austen-llama"
    static let publicKey = keys + "/test-key.pub.pem"

    /// A copy of austen-llama in a new folder, and the folder it is in.
    func copyOfModel() -> (parent: String, model: String) {
        let parent = temporaryFolder("shears-sign")
        let model = parent + "/austen-llama"
        _ = system("cp -r '\(Self.model)' '\(model)'")
        return (parent, model)
    }

    func verify(_ model: String, _ signature: String, key: String = publicKey) -> CommandRunner.Output {
        CommandRunner.run(["verify", model, "--signature", signature, "--public-key", key])
    }

    /// The signature check's line of a verify report.
    func signatureLine(_ r: CommandRunner.Output) -> String {
        r.stdout.split(separator: "\n").first { $0.contains("signature ") }.map(String.init) ?? r.stdout + r.stderr
    }

    /// Rewrites a bundle's JSON.
    func rewrite(_ bundle: String, to out: String, _ edit: (inout JSONObject) throws -> Void) throws {
        var top = try JSONValue.parse(FileSystem.readFile(bundle)).objectValue!
        try edit(&top)
        try AtomicFile.write(JSONValue.object(top).serializedBytes(), to: out)
    }

    /// The bundle's statement text.
    func payload(_ bundle: String) throws -> String {
        let b = try SignatureBundle(path: bundle)
        return String(decoding: b.payload, as: UTF8.self)
    }

    /// A bundle over `payload` signed with the test key (a signer that writes what it likes).
    func signed(_ payload: String, to out: String) throws {
        let key = try ModelSigningKey(path: Self.keys + "/test-key.pem")
        let bytes = Array(payload.utf8)
        let b = SignatureBundle(payload: bytes, signature: try key.signature(for: SignatureBundle.pae(bytes)), keyHint: key.publicKey.hint)
        try AtomicFile.write(b.serialized, to: out)
    }

    // MARK: model_signing's bundles verify

    @Test(arguments: [
        ("models/austen-llama", "austen-llama.sig"),
        ("safetensors/tiny-llama", "tiny-llama.sig"),
        ("safetensors/tiny-llama-single/model.safetensors", "tiny-llama-single.safetensors.sig"),
    ])
    func modelSigningBundlesVerify(model: String, bundle: String) {
        let r = verify(fixturesPath + "/" + model, Self.keys + "/" + bundle)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(signatureLine(r).hasPrefix("PASSED"))
    }

    @Test func verifyCombinesWithHashes() throws {
        let dir = temporaryFolder("shears-sign-hashes")
        defer { _ = system("rm -rf '\(dir)'") }
        #expect(CommandRunner.run(["hash", Self.model, "-o", dir + "/h.json"]).status == 0)
        let r = CommandRunner.run(["verify", Self.model, "--hashes", dir + "/h.json", "--signature", Self.keys + "/austen-llama.sig", "--public-key", Self.publicKey, "--json"])
        #expect(r.status == 0, "\(r.stdout)")
        let checks = try JSONValue.parse(r.stdout)["checks"]!.arrayValue!
        for name in ["hashes", "signature"] {
            #expect(checks.first { $0["name"] == .string(name) }?["status"] == .string("passed"))
        }
    }

    // MARK: tampering: exit 1, the file named

    @Test func flippedByteInAWeightFile() throws {
        let (parent, model) = copyOfModel()
        defer { _ = system("rm -rf '\(parent)'") }
        var bytes = try FileSystem.readFile(model + "/model.safetensors")
        bytes[bytes.count - 3] ^= 0x01
        try AtomicFile.write(bytes, to: model + "/model.safetensors")
        let r = verify(model, Self.keys + "/austen-llama.sig")
        #expect(r.status == 1)
        #expect(signatureLine(r).contains(model + "/model.safetensors changed"), "\(r.stdout)")
    }

    @Test func addedFile() throws {
        let (parent, model) = copyOfModel()
        defer { _ = system("rm -rf '\(parent)'") }
        try AtomicFile.write(Array("extra".utf8), to: model + "/notes.txt")
        let r = verify(model, Self.keys + "/austen-llama.sig")
        #expect(r.status == 1)
        #expect(signatureLine(r).contains(model + "/notes.txt was added"), "\(r.stdout)")
    }

    @Test func addedFileInASubfolder() throws {
        let (parent, model) = copyOfModel()
        defer { _ = system("rm -rf '\(parent)'") }
        try FileSystem.createDirectory(model + "/extra")
        try AtomicFile.write(Array("x".utf8), to: model + "/extra/.hidden")
        let r = verify(model, Self.keys + "/austen-llama.sig")
        #expect(r.status == 1)
        #expect(signatureLine(r).contains(model + "/extra/.hidden was added"), "\(r.stdout)")
    }

    @Test func removedFile() throws {
        let (parent, model) = copyOfModel()
        defer { _ = system("rm -rf '\(parent)'") }
        unlink(model + "/tokenizer.json")
        let r = verify(model, Self.keys + "/austen-llama.sig")
        #expect(r.status == 1)
        #expect(signatureLine(r).contains(model + "/tokenizer.json was removed"), "\(r.stdout)")
    }

    @Test func renamedFile() throws {
        let (parent, model) = copyOfModel()
        defer { _ = system("rm -rf '\(parent)'") }
        rename(model + "/training.json", model + "/training-log.json")
        let r = verify(model, Self.keys + "/austen-llama.sig")
        #expect(r.status == 1)
        #expect(signatureLine(r).contains(model + "/training.json was renamed to " + model + "/training-log.json"), "\(r.stdout)")
    }

    @Test func gitFilesAreIgnoredAsModelSigningDoes() throws {
        let (parent, model) = copyOfModel()
        defer { _ = system("rm -rf '\(parent)'") }
        try FileSystem.createDirectory(model + "/.git")
        try AtomicFile.write(Array("ref".utf8), to: model + "/.git/HEAD")
        try AtomicFile.write(Array("*.bin".utf8), to: model + "/.gitattributes")
        #expect(verify(model, Self.keys + "/austen-llama.sig").status == 0)
    }

    @Test func signatureFromAnotherKey() throws {
        let r = verify(Self.model, Self.keys + "/austen-llama.sig", key: Self.keys + "/other-key.pub.pem")
        #expect(r.status == 1)
        #expect(signatureLine(r).contains("austen-llama.sig: signed by another key"), "\(r.stdout)")
        // Without the key hint, the ECDSA check itself refuses it.
        let dir = temporaryFolder("shears-sign-hint")
        defer { _ = system("rm -rf '\(dir)'") }
        try rewrite(Self.keys + "/austen-llama.sig", to: dir + "/nohint.sig") { top in
            top["verificationMaterial"] = .object(JSONObject([("publicKey", .object(JSONObject())), ("tlogEntries", .array([]))]))
        }
        let r2 = verify(Self.model, dir + "/nohint.sig", key: Self.keys + "/other-key.pub.pem")
        #expect(r2.status == 1)
        #expect(signatureLine(r2).contains("nohint.sig: the signature does not verify"), "\(r2.stdout)")
        #expect(verify(Self.model, dir + "/nohint.sig").status == 0)
    }

    @Test func editedPayload() throws {
        // An attacker changes a weight file and writes its new digest into the payload.
        let (parent, model) = copyOfModel()
        defer { _ = system("rm -rf '\(parent)'") }
        let before = FileDigests.hex(try FileDigests.sha256([model + "/model.safetensors"], threads: 1)[0])
        var bytes = try FileSystem.readFile(model + "/model.safetensors")
        bytes[bytes.count - 3] ^= 0x01
        try AtomicFile.write(bytes, to: model + "/model.safetensors")
        let after = FileDigests.hex(try FileDigests.sha256([model + "/model.safetensors"], threads: 1)[0])
        let text = try payload(Self.keys + "/austen-llama.sig")
        #expect(text.contains(before))
        try rewrite(Self.keys + "/austen-llama.sig", to: parent + "/edited.sig") { top in
            var env = top["dsseEnvelope"]!.objectValue!
            env["payload"] = .string(Base64.encode(Array(text.replacing(before, with: after).utf8)))
            top["dsseEnvelope"] = .object(env)
        }
        let r = verify(model, parent + "/edited.sig")
        #expect(r.status == 1)
        #expect(signatureLine(r).contains(parent + "/edited.sig: the signature does not verify"), "\(r.stdout)")
    }

    @Test func truncatedBundleIsMalformed() throws {
        let dir = temporaryFolder("shears-sign-trunc")
        defer { _ = system("rm -rf '\(dir)'") }
        let bytes = try FileSystem.readFile(Self.keys + "/austen-llama.sig")
        try AtomicFile.write(Array(bytes.prefix(bytes.count / 2)), to: dir + "/truncated.sig")
        let r = verify(Self.model, dir + "/truncated.sig")
        #expect(r.status == 2)
        #expect(signatureLine(r).contains(dir + "/truncated.sig: malformed signature bundle"), "\(r.stdout)")
    }

    @Test func unknownPredicateAndMethodFail() throws {
        let dir = temporaryFolder("shears-sign-pred")
        defer { _ = system("rm -rf '\(dir)'") }
        let text = try payload(Self.keys + "/austen-llama.sig")
        try signed(text.replacing("https://model_signing/signature/v1.0", with: "https://example.com/model/v9"), to: dir + "/pred.sig")
        let r = verify(Self.model, dir + "/pred.sig")
        #expect(r.status == 1)
        #expect(signatureLine(r).contains("pred.sig: predicate type \"https://example.com/model/v9\" is not one Shears knows"), "\(r.stdout)")
        #expect(text.contains("\"method\": \"files\""))
        try signed(text.replacing("\"method\": \"files\"", with: "\"method\": \"shards\""), to: dir + "/shards.sig")
        let r2 = verify(Self.model, dir + "/shards.sig")
        #expect(r2.status == 1)
        #expect(signatureLine(r2).contains("shards.sig: serialization method \"shards\" is not one Shears knows"), "\(r2.stdout)")
        // A correctly signed payload that is not JSON is a malformed bundle.
        try signed("{\"_type\": ", to: dir + "/json.sig")
        #expect(verify(Self.model, dir + "/json.sig").status == 2)
    }

    @Test func keylessBundlesAreRefusedAsNeedingTheNetwork() throws {
        let dir = temporaryFolder("shears-sign-keyless")
        defer { _ = system("rm -rf '\(dir)'") }
        try rewrite(Self.keys + "/austen-llama.sig", to: dir + "/keyless.sig") { top in
            top["verificationMaterial"] = .object(JSONObject([
                ("certificate", .object(JSONObject([("rawBytes", .string("MIIB"))]))),
                ("tlogEntries", .array([.object(JSONObject([("logIndex", .string("1"))]))])),
            ]))
        }
        let r = verify(Self.model, dir + "/keyless.sig")
        #expect(r.status == 1)
        #expect(signatureLine(r).contains("needs the network"), "\(r.stdout)")
    }

    // MARK: shears sign

    @Test func signDefaultPathsAndRoundTrip() throws {
        let (parent, model) = copyOfModel()
        defer { _ = system("rm -rf '\(parent)'") }
        let r = CommandRunner.run(["sign", model, "--key", Self.keys + "/test-key.pem"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileSystem.isFile(parent + "/model.sig"))
        #expect(verify(model, parent + "/model.sig").status == 0)
        // The same files give the same statement as model_signing's (subject digest included).
        let mine = try SignedStatement(payload: SignatureBundle(path: parent + "/model.sig").payload)
        let theirs = try SignedStatement(payload: SignatureBundle(path: Self.keys + "/austen-llama.sig").payload)
        #expect(mine.resources == theirs.resources)
        #expect(mine.subjectDigest == theirs.subjectDigest)
        #expect(mine.modelName == "austen-llama")

        let single = CommandRunner.run(["sign", model + "/model.safetensors", "--key", Self.keys + "/test-key.pkcs8.pem"])
        #expect(single.status == 0, "\(single.stderr)")
        #expect(verify(model + "/model.safetensors", model + "/model.safetensors.sig").status == 0)
    }

    @Test func signatureInsideTheFolderIsLeftOut() throws {
        let (parent, model) = copyOfModel()
        defer { _ = system("rm -rf '\(parent)'") }
        #expect(CommandRunner.run(["sign", model, "--key", Self.keys + "/test-key.pem", "--signature", model + "/model.sig"]).status == 0)
        let s = try SignedStatement(payload: SignatureBundle(path: model + "/model.sig").payload)
        #expect(s.ignorePaths.contains("model.sig"))
        #expect(!s.resources.contains { $0.name == "model.sig" })
        #expect(verify(model, model + "/model.sig").status == 0)
    }

    @Test func keysAndUsage() {
        let enc = CommandRunner.run(["sign", Self.model, "--key", Self.keys + "/test-key.encrypted.pem", "--signature", "/tmp/never.sig"])
        #expect(enc.status == 2)
        #expect(enc.stderr.contains("test-key.encrypted.pem: the private key is encrypted") && enc.stderr.contains("openssl pkey -in"), "\(enc.stderr)")
        let pub = CommandRunner.run(["sign", Self.model, "--key", Self.publicKey, "--signature", "/tmp/never.sig"])
        #expect(pub.status == 2)
        #expect(pub.stderr.contains("test-key.pub.pem: not a PEM elliptic-curve private key"), "\(pub.stderr)")
        #expect(!FileSystem.isFile("/tmp/never.sig"))
        #expect(CommandRunner.run(["sign", Self.model]).status == 64)
        #expect(CommandRunner.run(["verify", Self.model, "--signature", Self.keys + "/austen-llama.sig"]).status == 64)
        let badKey = verify(Self.model, Self.keys + "/austen-llama.sig", key: Self.keys + "/test-key.pem")
        #expect(badKey.status == 2)
        #expect(badKey.stderr.contains("test-key.pem: not a PEM elliptic-curve public key"), "\(badKey.stderr)")
    }

    // MARK: hostile bundles never trap

    @Test func everyPrefixOfABundleIsRefused() throws {
        let bytes = try FileSystem.readFile(Self.keys + "/austen-llama.sig")
        for n in 0 ..< bytes.count {
            #expect(throws: CheckpointError.self) { try SignatureBundle(bytes: Array(bytes.prefix(n)), path: "b.sig") }
        }
        let payload = try SignatureBundle(bytes: bytes, path: "b.sig").payload
        for n in 0 ..< payload.count {
            #expect(throws: SignedStatement.ParseFailure.self) { try SignedStatement(payload: Array(payload.prefix(n))) }
        }
    }

    @Test func base64AndOrder() {
        for n in 0 ..< 40 {
            let b = (0 ..< n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Base64.decode(Base64.encode(b)) == b)
        }
        #expect(Base64.decode("Zm9v") == Array("foo".utf8))
        #expect(Base64.decode("Zm9vYg") == Array("foob".utf8))
        #expect(Base64.decode("Z") == nil)
        #expect(Base64.decode("Zm9v!") == nil)
        #expect(Base64.decode("Zm=v") == nil)
        #expect(ModelFiles.precedes(["a", "b"], ["a.txt"]))
        #expect(ModelFiles.precedes(["B"], ["a"]))
        #expect(!ModelFiles.precedes(["a"], ["a"]))
    }
}
