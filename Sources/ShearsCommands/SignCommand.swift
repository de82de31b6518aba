import ArgumentParser
import CheckpointCore
import ModelSigning
import ShearsConcurrency

/// `shears sign MODEL --key PRIVATE.pem`: an OpenSSF model signature, as `model_signing sign key` writes it.
public struct SignCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign a model folder or file: an OpenSSF model-signing bundle (model_signing sign key).",
        discussion: """
            Hashes every file of MODEL (SHA-256, in parallel; a folder's hidden files included, git's \
            files and the signature itself left out) and writes a Sigstore bundle v0.3: a DSSE \
            envelope around an in-toto statement (predicate https://model_signing/signature/v1.0, \
            serialization method "files"), signed with ECDSA. `model_signing verify key` and \
            `shears verify --signature` check it. The key is a PEM elliptic-curve private key \
            (P-256, P-384 or P-521; SEC1 or PKCS#8), unencrypted.

            Exit status: 0 on success, 2 when the model or key is missing or unreadable, 64 for usage errors.
            """)

    @Argument(help: "A model folder or a single file.", completion: .file())
    var model: String

    @Option(help: "The PEM private key to sign with.", completion: .file())
    var key: String

    @Option(help: "The bundle to write (default: model.sig next to a folder, FILE.sig next to a file).", completion: .file())
    var signature: String?

    @Option(help: "Files hashed at the same time (default: all cores).")
    var threads = availableCores()

    public init() {}

    public func validate() throws {
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    public func run() throws {
        do {
            let signingKey = try ModelSigningKey(path: key)
            let r = try ModelSignature.sign(model: model, key: signingKey, signaturePath: signature, threads: threads)
            let n = r.statement.resources.count
            StandardOutput.write("signed \(n) file\(n == 1 ? "" : "s") (\(Format.bytes(r.bytes))) of \(model): \(r.signaturePath)\n")
        } catch {
            throw report(error)
        }
    }
}
