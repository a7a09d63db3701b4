/// CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR.
/// Check value ("123456789") = 0x29B1. Table-driven; the table is built once.
public enum CRC16 {
    static let table: [UInt16] = (0..<256).map { byte -> UInt16 in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }

    public static let initial: UInt16 = 0xFFFF

    @inlinable public static func update(_ crc: UInt16, _ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var crc = crc
        for byte in bytes { crc = (crc << 8) ^ lookup(UInt8(truncatingIfNeeded: crc >> 8) ^ byte) }
        return crc
    }

    @usableFromInline static func lookup(_ index: UInt8) -> UInt16 { table[Int(index)] }

    public static func checksum<C: Collection<UInt8>>(_ bytes: C) -> UInt16 {
        var crc = initial
        for byte in bytes { crc = (crc << 8) ^ lookup(UInt8(truncatingIfNeeded: crc >> 8) ^ byte) }
        return crc
    }
}
