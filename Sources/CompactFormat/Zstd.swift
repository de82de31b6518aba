import CZstd
import CheckpointCore

/// zstd frames for the compact format: one frame per chunk or plane, content size declared, no
/// frame checksum (chunks carry CRC-32C). Decoding never writes more than the expected size.
enum Zstd {
    static func compressBound(_ n: Int) -> Int { ZSTD_compressBound(n) }

    /// A reusable compression context (one per thread).
    final class Compressor {
        private let cctx: OpaquePointer
        /// - Parameter entropyOnly: tune for streams whose redundancy is in their symbol frequencies
        ///   (byte planes of weights): tiny match tables and a long minimum match, so zstd spends its
        ///   time on Huffman-coding literals instead of finding short, useless matches. On the
        ///   exponent plane of N(0, 0.02) bf16 weights this reaches 2.6 bits per byte (entropy 2.55)
        ///   at about 1.5× the speed of level 1, where level 3 gives 3.2 bits.
        init(level: Int32, entropyOnly: Bool = false) {
            cctx = ZSTD_createCCtx()!
            ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, entropyOnly ? 1 : level)
            if entropyOnly {
                ZSTD_CCtx_setParameter(cctx, ZSTD_c_minMatch, 7)
                ZSTD_CCtx_setParameter(cctx, ZSTD_c_searchLog, 1)
                ZSTD_CCtx_setParameter(cctx, ZSTD_c_hashLog, 6)
                ZSTD_CCtx_setParameter(cctx, ZSTD_c_chainLog, 6)
            }
            ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)
            ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0)
        }
        deinit { ZSTD_freeCCtx(cctx) }

        /// Compresses `src` into `dst` (capacity at least `compressBound(src.count)`); returns the size.
        func compress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Int? {
            let r = ZSTD_compress2(cctx, dst.baseAddress, dst.count, src.baseAddress, src.count)
            return ZSTD_isError(r) != 0 ? nil : r
        }
    }

    /// A reusable decompression context (one per thread).
    final class Decompressor {
        private let dctx: OpaquePointer
        init() { dctx = ZSTD_createDCtx()! }
        deinit { ZSTD_freeDCtx(dctx) }

        /// Decodes one frame that must fill `src` exactly and decode to exactly `dst.count` bytes.
        /// Returns a description of what is wrong, or nil.
        func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> String? {
            let declared = ZSTD_getFrameContentSize(src.baseAddress, src.count)
            if declared == ZSTD_CONTENTSIZE_ERROR { return "not a zstd frame" }
            if declared == ZSTD_CONTENTSIZE_UNKNOWN { return "zstd frame does not declare its size" }
            if declared != UInt64(dst.count) { return "zstd frame claims \(declared) bytes where \(dst.count) are expected" }
            let frameSize = ZSTD_findFrameCompressedSize(src.baseAddress, src.count)
            if ZSTD_isError(frameSize) != 0 { return "zstd frame is truncated or corrupt (\(String(cString: ZSTD_getErrorName(frameSize))))" }
            if frameSize != src.count { return "\(src.count - frameSize) bytes follow the zstd frame" }
            let r = ZSTD_decompressDCtx(dctx, dst.baseAddress, dst.count, src.baseAddress, src.count)
            if ZSTD_isError(r) != 0 { return "zstd: \(String(cString: ZSTD_getErrorName(r)))" }
            if r != dst.count { return "zstd frame decoded to \(r) bytes where \(dst.count) are expected" }
            return nil
        }
    }
}
