/// Consistent Overhead Byte Stuffing: removes every 0x00 from a frame so that 0x00 can delimit
/// frames on a byte stream, at a cost of at most one byte per 254.
public enum COBS {
    /// The largest encoding of `count` bytes (without the delimiter).
    public static func maxEncodedCount(_ count: Int) -> Int { count + count / 254 + 1 }

    /// Encodes `input` into `output` (no delimiter). Returns the encoded length, or nil if
    /// `output` is too small. Allocation-free.
    public static func encode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        guard output.count >= maxEncodedCount(input.count) else { return nil }
        var codeIndex = 0
        var write = 1
        var code: UInt8 = 1
        var remaining = input.count
        for byte in input {
            remaining -= 1
            if byte != 0 {
                output[write] = byte
                write += 1
                code += 1
            }
            if byte == 0 || code == 0xFF {
                output[codeIndex] = code
                code = 1
                codeIndex = write
                // A block that ends exactly with the input needs no further code byte.
                if byte == 0 || remaining > 0 { write += 1 }
            }
        }
        if codeIndex < write { output[codeIndex] = code }
        return write
    }

    /// Decodes one frame (without its delimiter) into `output`. Returns the decoded length, or
    /// nil for malformed input (a zero byte inside, or a code running past the end).
    public static func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        var read = 0
        var write = 0
        while read < input.count {
            let code = Int(input[read])
            guard code != 0, read + code <= input.count else { return nil }
            read += 1
            for _ in 1..<code {
                let byte = input[read]
                guard byte != 0, write < output.count else { return nil }
                output[write] = byte
                write += 1
                read += 1
            }
            if code != 0xFF && read < input.count {
                guard write < output.count else { return nil }
                output[write] = 0
                write += 1
            }
        }
        return write
    }

    public static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: maxEncodedCount(bytes.count))
        let n = bytes.withUnsafeBytes { input in out.withUnsafeMutableBytes { encode(input, into: $0) } }
        return Array(out.prefix(n ?? 0))
    }

    public static func decode(_ bytes: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: bytes.count)
        let n = bytes.withUnsafeBytes { input in out.withUnsafeMutableBytes { decode(input, into: $0) } }
        return n.map { Array(out.prefix($0)) }
    }
}
