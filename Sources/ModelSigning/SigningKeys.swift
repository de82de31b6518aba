import CheckpointCore
import Crypto

/// An elliptic-curve private key read from PEM (SEC1 `EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`,
/// unencrypted) by swift-crypto: the key `model_signing sign key` takes. P-256 is the curve of the
/// OpenSSF examples; P-384 and P-521 are accepted as model_signing accepts them, each signing with
/// the hash of its size (SHA-256, SHA-384, SHA-512).
public struct ModelSigningKey: Sendable {
    enum Key: Sendable {
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        case p521(P521.Signing.PrivateKey)
    }
    let key: Key

    /// Reads a PEM private key.
    ///
    /// - Parameters:
    ///   - pem: the file's text.
    ///   - path: the file, for error messages.
    /// - Throws: ``CheckpointError`` (code `invalidArgument`): an encrypted key (with the command
    ///   that decrypts it), or anything that is not an unencrypted EC key on a supported curve.
    public init(pem: String, path: String) throws(CheckpointError) {
        try PEMCheck.refuseEncrypted(pem, path: path)
        if let k = try? P256.Signing.PrivateKey(pemRepresentation: pem) { key = .p256(k) }
        else if let k = try? P384.Signing.PrivateKey(pemRepresentation: pem) { key = .p384(k) }
        else if let k = try? P521.Signing.PrivateKey(pemRepresentation: pem) { key = .p521(k) }
        else {
            throw CheckpointError(.invalidArgument, "not a PEM elliptic-curve private key (EC PRIVATE KEY or PRIVATE KEY, curve P-256, P-384 or P-521)", path: path)
        }
    }

    /// Reads a PEM private key file (at most 1 MB).
    public init(path: String) throws(CheckpointError) {
        let bytes = try FileSystem.readFile(path, limit: 1 << 20)
        try self.init(pem: String(decoding: bytes, as: UTF8.self), path: path)
    }

    /// The matching public key.
    public var publicKey: ModelVerificationKey {
        switch key {
        case .p256(let k): ModelVerificationKey(key: .p256(k.publicKey))
        case .p384(let k): ModelVerificationKey(key: .p384(k.publicKey))
        case .p521(let k): ModelVerificationKey(key: .p521(k.publicKey))
        }
    }

    /// An ECDSA signature of `message` (hashed with the curve's hash), DER-encoded as in DSSE envelopes.
    public func signature(for message: [UInt8]) throws(CheckpointError) -> [UInt8] {
        do {
            switch key {
            case .p256(let k): return Array(try k.signature(for: message).derRepresentation)
            case .p384(let k): return Array(try k.signature(for: message).derRepresentation)
            case .p521(let k): return Array(try k.signature(for: message).derRepresentation)
            }
        } catch {
            throw CheckpointError(.io, "signing failed: \(error)")
        }
    }
}

/// An elliptic-curve public key read from PEM (`PUBLIC KEY`, SubjectPublicKeyInfo) by swift-crypto.
public struct ModelVerificationKey: Sendable {
    enum Key: Sendable {
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
    }
    let key: Key

    init(key: Key) { self.key = key }

    /// Reads a PEM public key.
    /// - Throws: ``CheckpointError`` (code `invalidArgument`) when it is not an EC public key on a supported curve.
    public init(pem: String, path: String) throws(CheckpointError) {
        if let k = try? P256.Signing.PublicKey(pemRepresentation: pem) { key = .p256(k) }
        else if let k = try? P384.Signing.PublicKey(pemRepresentation: pem) { key = .p384(k) }
        else if let k = try? P521.Signing.PublicKey(pemRepresentation: pem) { key = .p521(k) }
        else {
            throw CheckpointError(.invalidArgument, "not a PEM elliptic-curve public key (PUBLIC KEY, curve P-256, P-384 or P-521)", path: path)
        }
    }

    /// Reads a PEM public key file (at most 1 MB).
    public init(path: String) throws(CheckpointError) {
        let bytes = try FileSystem.readFile(path, limit: 1 << 20)
        try self.init(pem: String(decoding: bytes, as: UTF8.self), path: path)
    }

    /// SubjectPublicKeyInfo, DER.
    public var derRepresentation: [UInt8] {
        switch key {
        case .p256(let k): Array(k.derRepresentation)
        case .p384(let k): Array(k.derRepresentation)
        case .p521(let k): Array(k.derRepresentation)
        }
    }

    /// The key hint model_signing records in a bundle: the SHA-256 (hex) of the key's PEM text as
    /// OpenSSL and Python's cryptography write it (64-character lines, final newline).
    public var hint: String {
        var pem = "-----BEGIN PUBLIC KEY-----\n"
        let b64 = Array(Base64.encode(derRepresentation).utf8)
        var i = 0
        while i < b64.count {
            pem += String(decoding: b64[i ..< min(i + 64, b64.count)], as: UTF8.self) + "\n"
            i += 64
        }
        pem += "-----END PUBLIC KEY-----\n"
        return FileDigests.hex(SHA256.hash(data: Array(pem.utf8)))
    }

    /// Whether `der` is a valid ECDSA signature of `message` by this key. A signature that is not
    /// valid DER is simply not valid.
    public func isValidSignature(_ der: [UInt8], for message: [UInt8]) -> Bool {
        switch key {
        case .p256(let k):
            guard let s = try? P256.Signing.ECDSASignature(derRepresentation: der) else { return false }
            return k.isValidSignature(s, for: message)
        case .p384(let k):
            guard let s = try? P384.Signing.ECDSASignature(derRepresentation: der) else { return false }
            return k.isValidSignature(s, for: message)
        case .p521(let k):
            guard let s = try? P521.Signing.ECDSASignature(derRepresentation: der) else { return false }
            return k.isValidSignature(s, for: message)
        }
    }
}

enum PEMCheck {
    /// Encrypted PEM keys (PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's legacy `Proc-Type:
    /// 4,ENCRYPTED` header) need a passphrase; Shears takes none, so it says how to decrypt.
    static func refuseEncrypted(_ pem: String, path: String) throws(CheckpointError) {
        if pem.contains("ENCRYPTED PRIVATE KEY") || pem.contains("Proc-Type: 4,ENCRYPTED") {
            throw CheckpointError(.invalidArgument, "the private key is encrypted; Shears reads unencrypted PEM keys: decrypt it with `openssl pkey -in \(path) -out plain.pem` and sign with plain.pem (keep it private)", path: path)
        }
    }
}
