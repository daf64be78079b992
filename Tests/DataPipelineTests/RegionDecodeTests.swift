import DataPipeline
import Foundation
import Kernels
import TestSupport
import XCTest

/// The training fast path's region decode (`ImageDecoder.decode(_:region:eighths:into:)`, the C
/// target CJPEGRegion): for every kind of JPEG, every DCT scale and regions touching each edge,
/// its pixels must be the same rectangle of a whole-image decode at that scale, byte for byte,
/// and bad files must fail or warn as the whole-image decode does.
final class RegionDecodeTests: XCTestCase {
    struct Sample {
        let name: String
        let bytes: [UInt8]
    }

    /// Photo-like content: gradients, blocks of colour and noise, so that chroma differs from
    /// pixel to pixel and any upsampling shortcut at a region's edge shows in the bytes.
    static func photoPixels(width: Int, height: Int, channels: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        let blocks = (0..<6).map { _ in (rng.nextInt(below: max(width, 1)), rng.nextInt(below: max(height, 1)),
                                         (0..<channels).map { _ in rng.nextInt(below: 256) }) }
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    var v = (x * (3 + c) + y * (5 - c) * 2) % 256
                    for (bx, by, colour) in blocks where abs(x - bx) < width / 5 && abs(y - by) < height / 5 { v = colour[c] }
                    v += rng.nextInt(below: 49) - 24
                    pixels[(y * width + x) * channels + c] = UInt8(clamping: v)
                }
            }
        }
        return pixels
    }

    static func encoded(_ name: String, _ width: Int, _ height: Int, kind: JPEGEncoder.PixelKind = .rgb,
                        subsampling: JPEGEncoder.Subsampling = .s420, progressive: Bool = false,
                        restart: String? = nil) throws -> Sample {
        let channels = kind == .rgb ? 3 : kind == .gray ? 1 : 4
        let pixels = photoPixels(width: width, height: height, channels: channels, seed: UInt64(width * 1000 + height))
        // TurboJPEG 2.1 takes the restart interval only from the environment.
        if let restart { setenv("TJ_RESTART", restart, 1) }
        defer { if restart != nil { unsetenv("TJ_RESTART") } }
        let bytes = try JPEGEncoder().encode(pixels, width: width, height: height, kind: kind, quality: 88,
                                             subsampling: subsampling, progressive: progressive)
        return Sample(name: name, bytes: bytes)
    }

    static func samples() throws -> [Sample] {
        var samples = [
            try encoded("4:2:0 500×375", 500, 375),
            try encoded("4:2:0 97×61 (odd)", 97, 61),
            try encoded("4:2:2 61×97", 61, 97, subsampling: .s422),
            try encoded("4:4:0 45×29", 45, 29, subsampling: .s440),
            try encoded("4:4:4 33×17", 33, 17, subsampling: .s444),
            try encoded("gray 23×40", 23, 40, kind: .gray),
            try encoded("CMYK 40×23", 40, 23, kind: .cmyk),
            try encoded("progressive 4:2:0 131×77", 131, 77, progressive: true),
            try encoded("progressive 4:4:4 50×38", 50, 38, subsampling: .s444, progressive: true),
            try encoded("restart every MCU, 4:2:0 99×70", 99, 70, restart: "1B"),
            try encoded("restart every row, 4:2:2 70×99", 70, 99, subsampling: .s422, restart: "1"),
            try encoded("4:2:0 1×1", 1, 1),
            try encoded("4:2:0 3×200", 3, 200),
        ]
        // Real camera files and Pillow re-encodes (4:4:4, progressive, gray, Adobe CMYK).
        let photos = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/photos")
        for file in ["grace_hopper.jpg", "rocket.jpg", "chelsea_444.jpg", "coffee_progressive.jpg", "camera_gray.jpg",
                     "chelsea_cmyk.jpg"] {
            samples.append(Sample(name: file, bytes: [UInt8](try Data(contentsOf: photos.appendingPathComponent(file)))))
        }
        return samples
    }

    /// Regions in full-image coordinates: the whole image, each corner, a strip along each
    /// edge, single pixels and columns, edges on and off iMCU boundaries, and random ones.
    static func regions(width w: Int, height h: Int, seed: UInt64) -> [CropRegion] {
        func r(_ top: Int, _ left: Int, _ height: Int, _ width: Int) -> CropRegion? {
            let top = min(max(top, 0), h - 1), left = min(max(left, 0), w - 1)
            let height = min(max(height, 1), h - top), width = min(max(width, 1), w - left)
            return CropRegion(top: top, left: left, height: height, width: width)
        }
        var list: [CropRegion?] = [
            r(0, 0, h, w), r(0, 0, h / 2, w / 2), r(0, w / 2, h / 2, w - w / 2), r(h / 2, 0, h - h / 2, w / 2),
            r(h / 2, w / 2, h - h / 2, w - w / 2),
            r(0, 0, h, 1), r(0, w - 1, h, 1), r(0, 0, 1, w), r(h - 1, 0, 1, w), r(h / 2, w / 2, 1, 1),
            r(0, 1, h, w - 2), r(1, 0, h - 2, w), r(h / 3, w / 3, h / 3, w / 3),
            // Left and right ends exactly on 8- and 16-pixel (iMCU) boundaries, and one either side.
            r(3, 16, h - 6, 32), r(3, 15, h - 6, 34), r(3, 17, h - 6, 15), r(8, 8, 16, 8), r(16, 32, 16, 16),
            r(7, 31, 9, 2), r(0, 16, h, w - 16), r(0, 0, h, 16),
        ]
        var rng = SplitMix64(seed: seed)
        for _ in 0..<12 {
            let width = 1 + rng.nextInt(below: w), height = 1 + rng.nextInt(below: h)
            list.append(r(rng.nextInt(below: h - height + 1), rng.nextInt(below: w - width + 1), height, width))
        }
        var seen: [CropRegion] = []
        for region in list.compactMap({ $0 }) where !seen.contains(region) { seen.append(region) }
        return seen
    }

    /// Every sample, every scale, every region: the region decode equals the crop of the
    /// whole-image decode exactly.
    func testRegionDecodeEqualsCropOfWholeDecode() throws {
        let decoder = ImageDecoder()
        var compared = 0
        for sample in try Self.samples() {
            let (width, height) = try decoder.imageSize(sample.bytes)
            for eighths in [1, 2, 4, 8] {
                var whole = RGBImage(width: 0, height: 0, pixels: [])
                try decoder.decode(sample.bytes, into: &whole, eighths: eighths)
                var part = RGBImage(width: 0, height: 0, pixels: [])
                for region in Self.regions(width: width, height: height, seed: UInt64(eighths)) {
                    let scaled = scaleRegion(region, width: width, height: height, scaledWidth: whole.width,
                                             scaledHeight: whole.height)
                    try decoder.decode(sample.bytes, region: region, eighths: eighths, into: &part)
                    let expected = crop(whole, scaled)
                    XCTAssertEqual([part.width, part.height], [expected.width, expected.height], "\(sample.name) \(eighths)/8 \(region)")
                    if part.pixels != expected.pixels {
                        let differing = zip(part.pixels, expected.pixels).filter { $0 != $1 }.count
                        XCTFail("\(sample.name) at \(eighths)/8, region \(region) → \(scaled): \(differing) bytes differ")
                    }
                    compared += 1
                }
            }
        }
        XCTAssertGreaterThan(compared, 1000)
    }

    /// The fast settings change pixels, so they are opt-in; this pins how much (the figures in
    /// the Note [Fast region decode] comment of BatchLoader.swift).
    func testFastSettingsDifferFromTheExactDecodeBoundedly() throws {
        let decoder = ImageDecoder()
        let photos = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/photos")
        let samples = [try Self.encoded("noisy 4:2:0 500×375", 500, 375),
                       Sample(name: "grace_hopper.jpg", bytes: [UInt8](try Data(contentsOf: photos.appendingPathComponent("grace_hopper.jpg"))))]
        for sample in samples {
            let (width, height) = try decoder.imageSize(sample.bytes)
            let region = CropRegion(top: height / 9, left: width / 7, height: height * 2 / 3, width: width * 2 / 3)
            var exact = RGBImage(width: 0, height: 0, pixels: []), fast = exact
            try decoder.decode(sample.bytes, region: region, into: &exact)
            for speed in [RegionDecodeOptions(fastIDCT: true), RegionDecodeOptions(fastUpsampling: true),
                          RegionDecodeOptions(fastIDCT: true, fastUpsampling: true)] {
                try decoder.decode(sample.bytes, region: region, into: &fast, options: speed)
                let differences = zip(exact.pixels, fast.pixels).map { abs(Int($0) - Int($1)) }
                let mean = Double(differences.reduce(0, +)) / Double(differences.count)
                let resized = zip(resize(exact, width: 224, height: 224).pixels, resize(fast, width: 224, height: 224).pixels)
                    .map { abs(Int($0) - Int($1)) }
                print(String(format: "%@, %@: mean |diff| %.3f, max %d; after resize to 224: mean %.3f, max %d", sample.name,
                             "\(speed)", mean, differences.max()!, Double(resized.reduce(0, +)) / Double(resized.count), resized.max()!))
                XCTAssertGreaterThan(differences.max()!, 0, "\(speed) changes nothing: is the option passed through?")
                XCTAssertLessThan(mean, 6, "\(speed)")
            }
        }
    }

    /// Truncated, damaged, trailing-garbage and non-JPEG inputs: a region decode of the whole
    /// image fails with the whole-image decode's message or gives its pixels (warnings, such as
    /// "Premature end of JPEG file", still give an image); a region in the top half does the
    /// same, except that damage below the region can go unseen (it is never read).
    func testBadFilesFailOrWarnAsTheWholeImageDecodeDoes() throws {
        let decoder = ImageDecoder()
        for sample in try Self.samples() where sample.bytes.count > 400 && sample.bytes.count < 200_000 {
            let good = sample.bytes
            let (width, height) = try decoder.imageSize(good)
            var variants: [(String, [UInt8])] = []
            for length in stride(from: 2, to: good.count, by: max(good.count / 37, 1)) {
                variants.append(("truncated to \(length)", Array(good.prefix(length))))
            }
            for offset in stride(from: 2, to: good.count, by: max(good.count / 29, 1)) {
                var damaged = good
                damaged[offset] ^= 0x5A
                variants.append(("byte \(offset) damaged", damaged))
            }
            variants.append(("trailing garbage", good + Array(repeating: 0x41, count: 100)))
            variants.append(("garbage after EOI marker", good + [0xFF, 0xD8, 0xFF, 0xC0, 0, 3]))
            for (what, bytes) in variants {
                var whole = RGBImage(width: 0, height: 0, pixels: [])
                var region = whole
                let wholeResult = Result { try decoder.decode(bytes, into: &whole) }
                let all = CropRegion(top: 0, left: 0, height: height, width: width)
                let regionResult = Result { try decoder.decode(bytes, region: all, into: &region) }
                switch (wholeResult, regionResult) {
                case (.success, .success):
                    XCTAssertEqual(whole.pixels, region.pixels, "\(sample.name), \(what)")
                case let (.failure(a), .failure(b)):
                    XCTAssertEqual("\(a)", "\(b)", "\(sample.name), \(what)")
                default:
                    XCTFail("\(sample.name), \(what): whole image \(wholeResult), region \(regionResult)")
                }
                // The top-left quarter: where the whole decode gives an image, the region is its crop.
                let quarter = CropRegion(top: 0, left: 0, height: max(height / 2, 1), width: max(width / 2, 1))
                let quarterResult = Result { try decoder.decode(bytes, region: quarter, into: &region) }
                switch (wholeResult, quarterResult) {
                case (.success, .success):
                    XCTAssertEqual(crop(whole, quarter).pixels, region.pixels, "\(sample.name), \(what), quarter")
                case (.success, .failure(let error)):
                    XCTFail("\(sample.name), \(what): the whole image decodes but its top-left quarter fails: \(error)")
                case let (.failure(a), .failure(b)):
                    XCTAssertEqual("\(a)", "\(b)", "\(sample.name), \(what), quarter")
                case (.failure, .success):
                    break  // damage below the quarter, never read
                }
            }
        }
        // Errors that never reach the pixels, word for word as the whole-image decode says them.
        let good = try Self.encoded("small", 16, 16).bytes
        let region = CropRegion(top: 2, left: 3, height: 4, width: 5)
        var image = RGBImage(width: 0, height: 0, pixels: [])
        for (what, bytes) in [("empty", [UInt8]()), ("text", Array("hello world".utf8)), ("header only", Array(good.prefix(20))),
                              ("SOI only", [0xFF, 0xD8, 0xFF, 0x00])] {
            let expected = Result { try decoder.decode(bytes, into: &image) }
            let got = Result { try decoder.decode(bytes, region: region, into: &image) }
            guard case .failure(let a) = expected, case .failure(let b) = got else {
                XCTFail("\(what): whole image \(expected), region \(got)"); continue
            }
            XCTAssertEqual("\(a)", "\(b)", what)
        }
        // --max-pixels refuses by the header, before any pixel is decoded.
        decoder.maxPixels = 255
        XCTAssertThrowsError(try decoder.decode(good, region: region, into: &image)) {
            XCTAssertEqual("\($0)", "JPEG header claims 16×16 = 256 pixels, more than --max-pixels 255")
        }
        decoder.maxPixels = 256
        XCTAssertNoThrow(try decoder.decode(good, region: region, into: &image))
        // The decoder keeps working after all of the above.
        var whole = RGBImage(width: 0, height: 0, pixels: [])
        try decoder.decode(good, into: &whole)
        try decoder.decode(good, region: region, into: &image)
        XCTAssertEqual(image.pixels, crop(whole, region).pixels)
    }

    /// A PNG (ImageNet has some named .JPEG) is decoded whole and cropped.
    func testPNGRegionIsACropOfTheWholeImage() throws {
        let png = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/png")
        let file = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: png.path).sorted().first { $0.hasSuffix(".png") })
        let bytes = [UInt8](try Data(contentsOf: png.appendingPathComponent(file)))
        let decoder = ImageDecoder()
        let whole = try decoder.decode(bytes)
        let region = CropRegion(top: whole.height / 4, left: whole.width / 3, height: whole.height / 2, width: whole.width / 3)
        var part = RGBImage(width: 0, height: 0, pixels: [])
        try decoder.decode(bytes, region: region, eighths: 2, into: &part)
        XCTAssertEqual(part.pixels, crop(whole, region).pixels)
    }

    /// The loader's fast RandomResizedCrop path gives, for every sample, the float resize
    /// (`resizeFlipNormalize`) of the crop of a whole-image decode at the chosen DCT scale, bit
    /// for bit: the region decode and its row stride change nothing.
    func testLoaderFastPathEqualsWholeDecodeThenCrop() throws {
        let root = try makeTemporaryDirectory("sdt-region")
        defer { try? FileManager.default.removeItem(at: root) }
        var samples: [ImageDataset.Sample] = []
        for (k, size) in [(500, 375), (375, 500), (640, 480), (97, 61), (300, 300), (1000, 700)].enumerated() {
            let sample = try Self.encoded("\(k)", size.0, size.1, kind: k == 5 ? .cmyk : .rgb,
                                          subsampling: k % 2 == 0 ? .s420 : .s444)
            let path = root.appendingPathComponent("\(k).JPEG").path
            try Data(sample.bytes).write(to: URL(fileURLWithPath: path))
            samples.append(.init(path: path, label: k))
        }
        let dataset = ImageDataset(samples: samples, classNames: samples.map { "\($0.label)" })
        let size = 64
        let scratch = ResizeScratch()
        for epoch in 0..<3 {
            let loader = BatchLoader(dataset: dataset, indices: Array(0..<samples.count), batchSize: 4, imageSize: size,
                                     augmentation: .train(TrainTransform(kind: .randomResizedCrop)), seed: 7, epoch: epoch,
                                     workers: 2, warn: { XCTFail($0) })
            var images: [Float] = []
            while let batch = loader.next() {
                images += batch.images.array
                loader.recycle(batch)
            }
            loader.stop()
            let decoder = ImageDecoder()
            var expected: [Float] = []
            var flips = 0
            for (index, sample) in samples.enumerated() {
                let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: sample.path)))
                let (width, height) = try decoder.imageSize(bytes)
                let choice = trainResizedCropChoice(height: height, width: width, seed: 7, epoch: epoch, sampleIndex: index)
                var image = RGBImage(width: 0, height: 0, pixels: [])
                try decoder.decode(bytes, into: &image, eighths: decodeEighths(for: choice.region, size: size))
                let region = scaleRegion(choice.region, width: width, height: height, scaledWidth: image.width,
                                         scaledHeight: image.height)
                var slot = [Float](repeating: 0, count: size * size * 3)
                slot.withUnsafeMutableBufferPointer {
                    resizeFlipNormalize(crop(image, region), size: size, flip: choice.flip, scratch: scratch, into: $0.baseAddress!)
                }
                expected += slot
                flips += choice.flip ? 1 : 0
            }
            XCTAssertEqual(images.count, expected.count)
            XCTAssertTrue(images == expected, "epoch \(epoch): the fast path's batches differ from whole decode + crop")
            XCTAssertTrue(flips > 0 && flips < samples.count || epoch > 0, "epoch \(epoch): \(flips) flips")
        }
    }
}
