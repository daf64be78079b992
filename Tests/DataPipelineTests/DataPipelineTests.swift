import DataPipeline
import Foundation
import Kernels
import TestSupport
import XCTest

final class ImageCodecTests: XCTestCase {
    func gradient(_ w: Int, _ h: Int) -> [UInt8] {
        (0..<(w * h * 3)).map { i in UInt8((i / 3 % w) * 255 / w / (i % 3 + 1)) }
    }

    func testRGBRoundTripWithinJPEGTolerance() throws {
        let pixels = gradient(32, 16)
        let bytes = try JPEGEncoder().encode(pixels, width: 32, height: 16, quality: 95)
        let image = try ImageDecoder().decode(bytes)
        XCTAssertEqual(image.width, 32)
        XCTAssertEqual(image.height, 16)
        let worst = zip(pixels, image.pixels).map { abs(Int($0) - Int($1)) }.max()!
        XCTAssertLessThan(worst, 24)
    }

    func testGrayscaleBecomesThreeEqualChannels() throws {
        let luma = (0..<(16 * 16)).map { UInt8($0 % 256) }
        let image = try ImageDecoder().decode(try JPEGEncoder().encode(luma, width: 16, height: 16, kind: .gray))
        for p in 0..<(16 * 16) {
            XCTAssertEqual(image.pixels[3 * p], image.pixels[3 * p + 1])
            XCTAssertEqual(image.pixels[3 * p], image.pixels[3 * p + 2])
        }
    }

    /// A flat CMYK image decodes to Pillow's cmyk2rgb of the raw (Adobe-inverted) values.
    func testCMYKConvertsLikePillow() throws {
        let raw: [UInt8] = [200, 100, 50, 180]
        let cmyk = (0..<(16 * 16)).flatMap { _ in raw }
        let image = try ImageDecoder().decode(try JPEGEncoder().encode(cmyk, width: 16, height: 16, kind: .cmyk, quality: 100))
        // c = 255 − raw, nk = raw K: R = nk − round(c·nk/255).
        let expected = (0..<3).map { ch -> Int in
            let c = 255 - Int(raw[ch]), nk = Int(raw[3])
            return nk - Int((Double(c * nk) / 255).rounded())
        }
        for ch in 0..<3 { XCTAssertEqual(Double(image.pixels[8 * 16 * 3 + 8 * 3 + ch]), Double(expected[ch]), accuracy: 3) }
        var out = [UInt8](repeating: 0, count: 3)
        cmykToRGB(raw, &out, pixels: 1)
        XCTAssertEqual(out.map(Int.init), expected)
    }

    /// TurboJPEG 2.1 leaves a handle unusable after a failed header read: one corrupt file must
    /// not make the same decoder (a loader worker's) reject the good files after it.
    func testDecoderRecoversAfterACorruptFile() throws {
        let decoder = ImageDecoder()
        let good = try JPEGEncoder().encode(gradient(16, 16), width: 16, height: 16)
        var corrupt = good
        for i in 2..<40 { corrupt[i] = 0x41 }
        XCTAssertThrowsError(try decoder.decode(corrupt))
        XCTAssertThrowsError(try decoder.decode(Array(good.prefix(20))))
        XCTAssertEqual(try decoder.decode(good).width, 16)
        // Damage at every offset and every truncation length, each followed by a good decode.
        for offset in stride(from: 2, to: good.count, by: 3) {
            var damaged = good
            damaged[offset] ^= 0xA5
            _ = try? decoder.decode(damaged)
            _ = try? decoder.decode(Array(good.prefix(offset)))
            XCTAssertNoThrow(try decoder.decode(good), "after damage at byte \(offset)")
        }
    }

    func testNonJPEGInputsGiveClearErrors() throws {
        let decoder = ImageDecoder()
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]
        XCTAssertThrowsError(try decoder.decode(png)) { XCTAssertTrue("\($0)".contains("PNG")) }
        XCTAssertThrowsError(try decoder.decode(Array("hello world".utf8))) { XCTAssertTrue("\($0)".contains("not a JPEG")) }
        let good = try JPEGEncoder().encode(gradient(16, 16), width: 16, height: 16)
        XCTAssertThrowsError(try decoder.decode(Array(good.prefix(20)))) { XCTAssertTrue("\($0)".contains("corrupt"), "\($0)") }
    }
}

final class TinyImageNetTests: XCTestCase {
    var root: URL!
    override func setUpWithError() throws {
        root = try makeTemporaryDirectory("sdt-tin").appendingPathComponent("tiny")
        try makeTinyImageNetFixture(at: root, classes: 3, trainPerClass: 4, valPerClass: 2, size: 16)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root.deletingLastPathComponent()) }

    func testClassIndexIsSortedWnidOrderNotFileOrder() throws {
        // The fixture writes wnids.txt in reverse order.
        let wnids = try String(contentsOf: root.appendingPathComponent("wnids.txt"), encoding: .utf8)
        XCTAssertTrue(wnids.hasPrefix("n00001002"))
        let data = try TinyImageNet(root: root)
        XCTAssertEqual(data.classNames, ["n00001000", "n00001001", "n00001002"])
        XCTAssertEqual(data.train.count, 12)
        XCTAssertEqual(data.val.count, 6)
        XCTAssertTrue(data.train.samples.allSatisfy { $0.path.contains("/train/\(data.classNames[$0.label])/") })
        // val_4 and val_5 belong to the third class (n00001002) in the fixture.
        XCTAssertEqual(data.val.samples.first { $0.path.hasSuffix("val_5.JPEG") }?.label, 2)
    }

    func testMalformedFilesNameThePath() throws {
        let annotations = root.appendingPathComponent("val/val_annotations.txt")
        try "val_0.JPEG\tn99999999\t0\t0\t1\t1\n".write(to: annotations, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TinyImageNet(root: root)) {
            XCTAssertEqual("\($0)", "\(annotations.path) line 1: unknown wnid n99999999")
        }
        try FileManager.default.removeItem(at: root.appendingPathComponent("wnids.txt"))
        XCTAssertThrowsError(try TinyImageNet(root: root)) { XCTAssertTrue("\($0)".contains("wnids.txt")) }
        XCTAssertThrowsError(try TinyImageNet(root: root.appendingPathComponent("nope"))) {
            XCTAssertTrue("\($0)".contains("nope: dataset directory not found"))
        }
    }

    /// Same batches, bit for bit, with one worker or three; a corrupt file is skipped and named.
    func testLoaderIsDeterministicAndSkipsBadFiles() throws {
        let data = try TinyImageNet(root: root)
        var train = data.train
        let bad = root.appendingPathComponent("bad.JPEG").path
        try Data([0xFF, 0xD8, 0xFF, 0x00]).write(to: URL(fileURLWithPath: bad))
        train.samples.append(.init(path: bad, label: 0))
        let indices = DistributedSampler(datasetSize: train.count, worldSize: 1, rank: 0, seed: 3).indices(epoch: 1)
        func collect(workers: Int) -> ([[Float]], [[Int32]], Int, [String]) {
            let warnings = WarningLog()
            let loader = BatchLoader(dataset: train, indices: indices, batchSize: 5, imageSize: 16, augmentation: .train,
                                     seed: 9, epoch: 1, workers: workers, warn: { warnings.add($0) })
            var images: [[Float]] = [], labels: [[Int32]] = [], skipped = 0
            while let batch = loader.next() {
                images.append(batch.images.array); labels.append(batch.labels); skipped += batch.skipped
                loader.recycle(batch)
            }
            loader.stop()
            return (images, labels, skipped, warnings.lines)
        }
        let one = collect(workers: 1), three = collect(workers: 3)
        XCTAssertEqual(one.0, three.0)
        XCTAssertEqual(one.1, three.1)
        XCTAssertEqual(one.2, 1)
        XCTAssertEqual(one.1.reduce(0) { $0 + $1.count }, 12)
        XCTAssertEqual(one.3.count, 1)
        XCTAssertTrue(one.3[0].contains(bad), one.3[0])
    }

    /// Both training presets: the crop is drawn before the flip, so flip probability 1 gives
    /// exactly the mirror images of probability 0; RandomResizedCrop fills S×S from any size.
    func testTrainTransformsFlipWithTheGivenProbability() throws {
        let data = try TinyImageNet(root: root)
        for kind in TrainTransform.Kind.allCases {
            func images(flip: Float) -> [Float] {
                let loader = BatchLoader(dataset: data.train, indices: Array(0..<6), batchSize: 6, imageSize: 12,
                                         augmentation: .train(TrainTransform(kind: kind, flipProbability: flip)),
                                         seed: 4, epoch: 2, workers: 2, warn: { _ in })
                defer { loader.stop() }
                let batch = loader.next()!
                XCTAssertEqual(batch.images.shape, [6, 12, 12, 3])
                return batch.images.array
            }
            let plain = images(flip: 0), flipped = images(flip: 1)
            XCTAssertNotEqual(plain, flipped, "\(kind)")
            var mirrored = plain
            for n in 0..<6 { for y in 0..<12 { for x in 0..<12 { for c in 0..<3 {
                mirrored[((n * 12 + y) * 12 + x) * 3 + c] = plain[((n * 12 + y) * 12 + (11 - x)) * 3 + c]
            } } } }
            XCTAssertEqual(flipped, mirrored, "\(kind): p = 1 is not the mirror of p = 0")
        }
    }

    func testStoppingEarlyDoesNotHang() throws {
        let data = try TinyImageNet(root: root)
        let loader = BatchLoader(dataset: data.train, indices: Array(0..<12), batchSize: 2, imageSize: 16,
                                 augmentation: .eval(resize: nil), seed: 0, epoch: 0, workers: 2, warn: { _ in })
        _ = loader.next()
        loader.stop()
        loader.stop()
    }
}

final class WarningLog: @unchecked Sendable {
    // @unchecked Sendable: guarded by `lock`.
    private let lock = NSLock()
    private var stored: [String] = []
    func add(_ s: String) { lock.lock(); stored.append(s); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return stored }
}

final class SamplerTests: XCTestCase {
    func testShardsAreDisjointCoverAndHaveEqualLength() {
        for (n, w) in [(10, 4), (10, 3), (12, 4), (7, 2), (3, 5)] {
            let shards = (0..<w).map { DistributedSampler(datasetSize: n, worldSize: w, rank: $0, seed: 1).indices(epoch: 2) }
            let expected = (n + w - 1) / w
            XCTAssertTrue(shards.allSatisfy { $0.count == expected }, "N=\(n) W=\(w)")
            XCTAssertEqual(Set(shards.flatMap { $0 }), Set(0..<n), "N=\(n) W=\(w) covers")
            // Padding repeats the head of the permutation: exactly total − N duplicates.
            XCTAssertEqual(shards.flatMap { $0 }.count - n, expected * w - n)
            let permutation = DistributedSampler(datasetSize: n, worldSize: w, rank: 0, seed: 1).permutation(epoch: 2)
            let padded = permutation + (0..<(expected * w - n)).map { permutation[$0 % n] }
            for r in 0..<w { XCTAssertEqual(shards[r], stride(from: r, to: padded.count, by: w).map { padded[$0] }) }
        }
    }

    func testOrderChangesWithEpochAndIsSharedByRanks() {
        let a = DistributedSampler(datasetSize: 100, worldSize: 2, rank: 0, seed: 7)
        let b = DistributedSampler(datasetSize: 100, worldSize: 2, rank: 1, seed: 7)
        XCTAssertNotEqual(a.permutation(epoch: 0), a.permutation(epoch: 1))
        XCTAssertEqual(a.permutation(epoch: 3), b.permutation(epoch: 3))
        XCTAssertEqual(a.permutation(epoch: 3).sorted(), Array(0..<100))
    }

    func testDropLast() {
        let s = DistributedSampler(datasetSize: 10, worldSize: 4, rank: 3, seed: 0, dropLast: true)
        XCTAssertEqual(s.numSamples, 2)
        XCTAssertEqual(s.indices(epoch: 0).count, 2)
    }

    func testEvaluationShardCountsEveryImageOnce() {
        let shards = (0..<3).map { evaluationShard(datasetSize: 10, worldSize: 3, rank: $0) }
        XCTAssertEqual(shards.flatMap { $0 }.sorted(), Array(0..<10))
        XCTAssertEqual(shards.map(\.count), [4, 3, 3])
    }
}

final class TransformTests: XCTestCase {
    func image(_ w: Int, _ h: Int) -> RGBImage {
        RGBImage(width: w, height: h, pixels: (0..<(w * h * 3)).map { UInt8(($0 / 3) % 251) })
    }

    func testCenterCropUsesTorchvisionRounding() {
        XCTAssertEqual(centerCropRegion(height: 64, width: 64, cropHeight: 64, cropWidth: 64).cropChoice(),
                       CropChoice(top: 0, left: 0, flip: false))
        // (67 − 64) / 2 = 1.5 → 2 (half to even); (65 − 64) / 2 = 0.5 → 0.
        XCTAssertEqual(centerCropRegion(height: 67, width: 65, cropHeight: 64, cropWidth: 64).cropChoice(),
                       CropChoice(top: 2, left: 0, flip: false))
    }

    func testCropFlipNormalize() {
        let img = image(4, 4)
        var out = [Float](repeating: 0, count: 2 * 2 * 3)
        cropFlipNormalize(img, CropChoice(top: 1, left: -1, flip: true), size: 2, into: &out)
        // Output x = 0 reads source column left + (size − 1 − 0) = 0; x = 1 reads column −1 (zero fill).
        let source = img.pixels[(1 * 4 + 0) * 3]
        XCTAssertEqual(out[0], (Float(source) / 255 - 0.485) / 0.229, accuracy: 1e-5)
        XCTAssertEqual(out[3], -0.485 / 0.229, accuracy: 1e-5)
    }

    func testTrainCropDependsOnlyOnSeedEpochAndIndex() {
        let a = trainCropChoice(height: 64, width: 64, size: 64, padding: 4, seed: 1, epoch: 2, sampleIndex: 3)
        XCTAssertEqual(a, trainCropChoice(height: 64, width: 64, size: 64, padding: 4, seed: 1, epoch: 2, sampleIndex: 3))
        let all = (0..<200).map { trainCropChoice(height: 64, width: 64, size: 64, padding: 4, seed: 1, epoch: 0, sampleIndex: $0) }
        XCTAssertTrue(all.allSatisfy { (-4...4).contains($0.top) && (-4...4).contains($0.left) })
        XCTAssertTrue(all.contains { $0.flip } && all.contains { !$0.flip })
    }
}

final class BuiltinDatasetTests: XCTestCase {
    func testGenerationIsDeterministicAndReadable() throws {
        let base = try makeTemporaryDirectory("sdt-builtin")
        defer { try? FileManager.default.removeItem(at: base) }
        let a = try BuiltinDataset.ensure(cacheDirectory: base.appendingPathComponent("a"), trainPerClass: 6,
                                          valPerClass: 2, log: { _ in })
        let b = base.appendingPathComponent("b")
        try BuiltinDataset.generate(at: b, trainPerClass: 6, valPerClass: 2)
        let data = try TinyImageNet(root: a)
        XCTAssertEqual(data.classNames.count, 10)
        XCTAssertEqual(data.train.count, 60)
        XCTAssertEqual(data.val.count, 20)
        XCTAssertEqual(data.classDescriptions.first, "circle")
        for sample in data.train.samples + data.val.samples {
            let relative = String(sample.path.dropFirst(a.path.count))
            XCTAssertEqual(FileManager.default.contents(atPath: sample.path),
                           FileManager.default.contents(atPath: b.path + relative), relative)
            XCTAssertNoThrow(try ImageDecoder().decode([UInt8](FileManager.default.contents(atPath: sample.path)!)))
        }
        // A second call reuses the finished dataset.
        var logged: [String] = []
        _ = try BuiltinDataset.ensure(cacheDirectory: base.appendingPathComponent("a"), trainPerClass: 6,
                                      valPerClass: 2, log: { logged.append($0) })
        XCTAssertTrue(logged.isEmpty)
    }

    /// Ranks on one host call `ensure` at once: exactly one generates, the others wait for it.
    func testConcurrentCallersGenerateOnce() throws {
        let base = try makeTemporaryDirectory("sdt-builtin-race")
        defer { try? FileManager.default.removeItem(at: base) }
        let generations = WarningLog(), roots = WarningLog()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let root = try? BuiltinDataset.ensure(cacheDirectory: base, trainPerClass: 4, valPerClass: 1) { message in
                if message.hasPrefix("generating") { generations.add(message) }
            }
            roots.add(root?.path ?? "failed")
        }
        XCTAssertEqual(generations.lines.count, 1)
        XCTAssertEqual(Set(roots.lines).count, 1)
        XCTAssertFalse(roots.lines.contains("failed"))
        XCTAssertEqual(try TinyImageNet(root: URL(fileURLWithPath: roots.lines[0])).train.count, 40)
    }
}
