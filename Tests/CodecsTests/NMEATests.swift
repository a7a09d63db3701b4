import Testing
@testable import Codecs

/// Fixtures and where they come from:
/// - `$GPGGA,123519,…*47` and `$GPRMC,123519,…*6A`: Dale DePriest, "NMEA data" (gpsinformation.org),
///   the examples most NMEA documentation quotes.
/// - `$GPGGA,184353.07,…*6D`: the pynmea2 project's README.
/// - `$GPGGA,092750.000,…*76` and `$GPRMC,092750.000,…*43`: the sample in Wikipedia's "NMEA 0183" article.
/// - `$GPRMC,081836,…*62`: the RMC example of the widely mirrored "NMEA sentence information" pages (aprs.gids.nl).
/// - `$HEHDT,274.07,T*19`: constructed for this test; its checksum was computed independently (Python).
/// Every checksum above was re-verified with a separate Python XOR before use.
@Suite("NMEA 0183")
struct NMEATests {
    static func sentence(_ line: String) throws -> NMEA.Sentence {
        try NMEA.parse(line[...]).get()
    }

    @Test func when_depriest_gga_expect_position_in_decimal_degrees() throws {
        guard case .gga(let gga) = try Self.sentence("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47") else {
            Issue.record("not GGA"); return
        }
        #expect(gga.talker == "GP")
        #expect(gga.utcSeconds == 45_319.0)  // 12:35:19
        #expect(abs(gga.latitude! - (48 + 7.038 / 60)) < 1e-12)
        #expect(abs(gga.longitude! - (11 + 31.0 / 60)) < 1e-12)
        #expect(gga.fixQuality == 1 && gga.satellites == 8 && gga.hdop == 0.9)
        #expect(gga.altitude == 545.4 && gga.geoidSeparation == 46.9)
    }

    @Test func when_southern_and_western_hemispheres_expect_negative_degrees() throws {
        guard case .gga(let south) = try Self.sentence("$GPGGA,184353.07,1929.045,S,02410.506,E,1,04,2.6,100.00,M,-33.9,M,,0000*6D") else {
            Issue.record("not GGA"); return
        }
        #expect(abs(south.latitude! - -(19 + 29.045 / 60)) < 1e-12)
        #expect(abs(south.longitude! - (24 + 10.506 / 60)) < 1e-12)
        #expect(abs(south.utcSeconds! - (18 * 3600 + 43 * 60 + 53.07)) < 1e-9)
        guard case .gga(let west) = try Self.sentence("$GPGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,*76") else {
            Issue.record("not GGA"); return
        }
        #expect(abs(west.longitude! - -(6 + 30.3372 / 60)) < 1e-12)
    }

    @Test func when_rmc_expect_speed_in_metres_per_second_and_date() throws {
        guard case .rmc(let rmc) = try Self.sentence("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A") else {
            Issue.record("not RMC"); return
        }
        #expect(rmc.valid)
        #expect(abs(rmc.speed! - 22.4 * 1852 / 3600) < 1e-12)
        #expect(rmc.course == 84.4)
        #expect(rmc.date?.day == 23 && rmc.date?.month == 3 && rmc.date?.year == 1994)
        #expect(rmc.magneticVariation == -3.1)
        guard case .rmc(let second) = try Self.sentence("$GPRMC,092750.000,A,5321.6802,N,00630.3372,W,0.02,31.66,280511,,,A*43") else {
            Issue.record("not RMC"); return
        }
        #expect(second.date?.year == 2011 && second.magneticVariation == nil)
        guard case .rmc(let third) = try Self.sentence("$GPRMC,081836,A,3751.65,S,14507.36,E,000.0,360.0,130998,011.3,E*62") else {
            Issue.record("not RMC"); return
        }
        #expect(third.date?.year == 1998 && third.magneticVariation == 11.3)
        #expect(abs(third.latitude! - -(37 + 51.65 / 60)) < 1e-12)
    }

    @Test func when_hdt_expect_heading() throws {
        #expect(try Self.sentence("$HEHDT,274.07,T*19") == .hdt(NMEA.HDT(talker: "HE", heading: 274.07)))
    }

    @Test func when_checksum_is_wrong_expect_rejected_with_both_values() {
        let result = NMEA.parse("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48"[...])
        #expect(result == .failure(.badChecksum(expected: 0x47, found: 0x48)))
        #expect(NMEA.parse("$HEHDT,274.07,T*03"[...]) == .failure(.badChecksum(expected: 0x19, found: 0x03)))
        #expect(NMEA.parse("GPGGA,1*00"[...]) == .failure(.noStart))
        #expect(NMEA.parse("$GPGGA,1"[...]) == .failure(.noChecksum))
    }

    @Test func when_unsupported_type_expect_counted_not_rejected() throws {
        #expect(try Self.sentence("$GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1*39") == .unsupported(talker: "GP", type: "GSA"))
    }

    @Test func when_stream_has_noise_and_broken_lines_expect_every_byte_accounted_for() {
        let good = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
        let bad = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*00\r\n"
        var stream = Array(good.utf8) + Array("garbage\n".utf8) + Array("$GPRMC,12".utf8) + Array(good.utf8) + Array(bad.utf8)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            stream += (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            stream += Array(good.utf8)
        }
        var decoder = NMEALineDecoder()
        var parsed = 0
        decoder.feed(stream) { _ in parsed += 1 }
        #expect(decoder.bytesAccepted + decoder.bytesRejected + decoder.pending.count == stream.count)
        #expect(decoder.checksumErrors >= 1)
        #expect(parsed >= 2)  // random noise may glue onto a line; the checksum then rejects it
        #expect(parsed == decoder.sentences + decoder.unsupported)
    }

    @Test func when_key_value_lines_expect_pairs_and_rejections_counted() {
        var decoder = KeyValueLineDecoder()
        var got: [[String]] = []
        let stream = Array("ax=0.12 ay=-0.03 az=9.81 t=1234\ntemp=21.5,hum=40\nbroken line\nx=abc\n\n".utf8)
        decoder.feed(stream) { pairs in
            got.append(pairs.map { "\($0.key)=\($0.value)" })
        }
        #expect(got == [["ax=0.12", "ay=-0.03", "az=9.81", "t=1234.0"], ["temp=21.5", "hum=40.0"]])
        #expect(decoder.rejectedLines == 3)
        #expect(decoder.bytesAccepted + decoder.bytesRejected + decoder.pending.count == stream.count)
    }
}
