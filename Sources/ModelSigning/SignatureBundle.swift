import CheckpointCore
import ShearsJSON

/// A Sigstore bundle v0.3 holding a DSSE envelope, as `model_signing sign key` writes it:
/// `{"mediaType", "verificationMaterial": {"publicKey": {"hint"}, "tlogEntries": []},
/// "dsseEnvelope": {"payload", "payloadType", "signatures": [{"sig", "keyid"}]}}`, with the
/// payload and the signature in base64.
public struct SignatureBundle: Sendable {
    public static let mediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
    public static let payloadType = "application/vnd.in-toto+json"

    /// The signed bytes (the statement's JSON).
    public var payload: [UInt8]
    /// The DSSE payload type.
    public var payloadType: String
    /// The first signature, DER-encoded ECDSA for key-signed bundles.
    public var signature: [UInt8]
    /// The SHA-256 of the signer's public key PEM, when the bundle records it.
    public var keyHint: String?
    /// Why checking this bundle needs the network (a certificate, a transparency-log entry), or
    /// nil for a bundle signed with a bare key.
    public var needsNetwork: String?

    /// A key-signed bundle.
    public init(payload: [UInt8], signature: [UInt8], keyHint: String) {
        self.payload = payload
        self.payloadType = SignatureBundle.payloadType
        self.signature = signature
        self.keyHint = keyHint
        self.needsNetwork = nil
    }

    /// DSSE's pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(payload)> <payload>`,
    /// the bytes the signature covers.
    public static func pae(payloadType: String = SignatureBundle.payloadType, _ payload: [UInt8]) -> [UInt8] {
        Array("DSSEv1 \(payloadType.utf8.count) \(payloadType) \(payload.count) ".utf8) + payload
    }

    /// The bundle's JSON (compact, as model_signing writes it).
    public var serialized: [UInt8] {
        var material: [(String, JSONValue)] = []
        if let keyHint { material.append(("publicKey", .object(JSONObject([("hint", .string(keyHint))])))) }
        material.append(("tlogEntries", .array([])))
        let envelope = JSONValue.object(JSONObject([
            ("payload", .string(Base64.encode(payload))),
            ("payloadType", .string(payloadType)),
            ("signatures", .array([.object(JSONObject([("sig", .string(Base64.encode(signature))), ("keyid", .string(""))]))])),
        ]))
        return JSONValue.object(JSONObject([
            ("mediaType", .string(SignatureBundle.mediaType)),
            ("verificationMaterial", .object(JSONObject(material))),
            ("dsseEnvelope", envelope),
        ])).serializedBytes()
    }

    /// Reads a bundle file (at most 64 MB).
    /// - Throws: ``CheckpointError`` (code `invalidFormat`) naming the file and what is wrong.
    public init(path: String) throws(CheckpointError) {
        let bytes = try FileSystem.readFile(path, limit: 64 << 20)
        try self.init(bytes: bytes, path: path)
    }

    /// Parses bundle bytes; `path` names the file in errors. Never traps on hostile input.
    public init(bytes: [UInt8], path: String) throws(CheckpointError) {
        func bad(_ m: String) -> CheckpointError { CheckpointError(.invalidFormat, "malformed signature bundle: " + m, path: path) }
        let json: JSONValue
        do { json = try JSONValue.parse(bytes) } catch { throw bad("not valid JSON (\(error.message)); a truncated or edited file?") }
        guard json.objectValue != nil else { throw bad("not a JSON object") }
        guard let media = json["mediaType"]?.stringValue else { throw bad("no mediaType") }
        guard media == SignatureBundle.mediaType else { throw bad("media type \"\(media)\" is not \(SignatureBundle.mediaType)") }
        guard let material = json["verificationMaterial"], material.objectValue != nil else { throw bad("no verificationMaterial") }
        var network: [String] = []
        if material["certificate"] != nil || material["x509CertificateChain"] != nil { network.append("a signing certificate") }
        if let entries = material["tlogEntries"] {
            guard let list = entries.arrayValue else { throw bad("tlogEntries is not a list") }
            if !list.isEmpty { network.append("transparency-log entries") }
        }
        var hint: String? = nil
        if let key = material["publicKey"] {
            guard key.objectValue != nil else { throw bad("publicKey is not an object") }
            if let h = key["hint"], !h.isNull {
                guard let s = h.stringValue else { throw bad("the public key hint is not a string") }
                hint = s.isEmpty ? nil : s
            }
        } else if network.isEmpty {
            throw bad("verificationMaterial names no public key and no certificate")
        }
        guard let envelope = json["dsseEnvelope"], envelope.objectValue != nil else {
            throw bad(json["messageSignature"] != nil ? "a message signature, not a DSSE envelope (model signatures are DSSE)" : "no dsseEnvelope")
        }
        guard let p = envelope["payload"]?.stringValue, let payload = Base64.decode(p) else { throw bad("the DSSE payload is missing or not base64") }
        guard let type = envelope["payloadType"]?.stringValue else { throw bad("the DSSE envelope has no payloadType") }
        guard let sigs = envelope["signatures"]?.arrayValue, let first = sigs.first else { throw bad("the DSSE envelope has no signatures") }
        guard let s = first["sig"]?.stringValue, let signature = Base64.decode(s) else { throw bad("the DSSE signature is missing or not base64") }
        self.payload = payload
        self.payloadType = type
        self.signature = signature
        self.keyHint = hint
        self.needsNetwork = network.isEmpty ? nil : network.joined(separator: " and ")
    }
}
