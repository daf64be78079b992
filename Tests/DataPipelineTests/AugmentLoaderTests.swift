import DataPipeline
import Foundation
import Kernels
import TestSupport
import XCTest

/// The loader's augmentation stage: TrivialAugmentWide and ColorJitter on the uint8 crop.
final class AugmentLoaderTests: XCTestCase {
    var root: URL!
    override func setUpWithError() throws {
        root = try makeTemporaryDirectory("sdt-augment").appendingPathComponent("tiny")
        try makeTinyImageNetFixture(at: root, classes: 2, trainPerClass: 6, valPerClass: 1, size: 20)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root.deletingLastPathComponent()) }

    private func batches(_ transform: TrainTransform, workers: Int, size: Int = 16) throws -> [Float] {
        let data = try TinyImageNet(root: root)
        let loader = BatchLoader(dataset: data.train, indices: Array((0..<12).reversed()), batchSize: 5, imageSize: size,
                                 augmentation: .train(transform), seed: 5, epoch: 2, workers: workers, warn: { _ in })
        defer { loader.stop() }
        var images: [Float] = []
        while let batch = loader.next() {
            images += batch.images.array
            loader.recycle(batch)
        }
        return images
    }

    /// Both presets with both augmentations: the same batches for one worker or three, and
    /// each image is exactly crop + flip → TrivialAugmentWide → ColorJitter → normalise, with
    /// the draws of its own sample index.
    func testLoaderAppliesTheSamplesDrawsWhateverTheWorkerCount() throws {
        let data = try TinyImageNet(root: root)
        for kind in TrainTransform.Kind.allCases {
            let transform = TrainTransform(kind: kind, fastDecode: false, colorJitter: ColorJitter(brightness: 0.4, contrast: 0.4,
                                           saturation: 0.4, hue: 0.2), autoAugment: .trivialAugmentWide)
            let one = try batches(transform, workers: 1), three = try batches(transform, workers: 3)
            XCTAssertEqual(one, three, "\(kind)")
            XCTAssertNotEqual(one, try batches(TrainTransform(kind: kind, fastDecode: false), workers: 1), "\(kind)")

            // The same image by hand, for the first position (sample index 11).
            let sample = 11, size = 16
            let decoded = try ImageDecoder().decode([UInt8](Data(contentsOf: URL(fileURLWithPath: data.train.samples[sample].path))))
            let canvas = AugmentImage()
            switch kind {
            case .padCrop:
                let source = resize(decoded, shorterSide: size)
                let crop = trainCropChoice(height: source.height, width: source.width, size: size, padding: 4, seed: 5,
                                           epoch: 2, sampleIndex: sample)
                canvas.loadCrop(of: source, crop, size: size)
            case .randomResizedCrop:
                let choice = trainResizedCropChoice(height: decoded.height, width: decoded.width, seed: 5, epoch: 2,
                                                    sampleIndex: sample)
                canvas.loadCrop(of: resizedCrop(decoded, region: choice.region, size: size),
                                CropChoice(top: 0, left: 0, flip: choice.flip), size: size)
            }
            canvas.apply(trainAugmentChoice(transform, seed: 5, epoch: 2, sampleIndex: sample)!)
            var expected = [Float](repeating: 0, count: size * size * 3)
            expected.withUnsafeMutableBufferPointer { normalize(canvas.pixels, pixelCount: size * size, into: $0.baseAddress!) }
            XCTAssertEqual(Array(one[0..<expected.count]), expected, "\(kind)")
        }
    }

    /// The byte path normalises exactly as the float path: crop + flip into bytes, then
    /// `normalize`, equals `cropFlipNormalize`, padding included.
    func testBytePathNormalisesLikeTheFloatPath() {
        let image = labelledImage(width: 13, height: 9)
        for choice in [CropChoice(top: -3, left: 2, flip: true), CropChoice(top: 1, left: -4, flip: false)] {
            var direct = [Float](repeating: 0, count: 10 * 10 * 3), viaBytes = direct
            direct.withUnsafeMutableBufferPointer { cropFlipNormalize(image, choice, size: 10, into: $0.baseAddress!) }
            let canvas = AugmentImage()
            canvas.loadCrop(of: image, choice, size: 10)
            viaBytes.withUnsafeMutableBufferPointer { normalize(canvas.pixels, pixelCount: 100, into: $0.baseAddress!) }
            XCTAssertEqual(direct, viaBytes)
        }
    }
}
