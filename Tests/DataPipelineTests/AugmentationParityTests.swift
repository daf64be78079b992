import DataPipeline
import Foundation
import Kernels
import TestSupport
import XCTest

// ColorJitter and TrivialAugmentWide against torchvision 0.29.2 on PIL (Pillow 13.0.0): the
// golden files in Fixtures/augment were made by Fixtures/augment/make_fixtures.py, which runs
// torchvision's own functional code with fixed parameters on small crops of committed photos.
// Every operation is expected byte for byte (tolerance 0): they are integer or float code
// whose every rounding step we reproduce (see PillowImageOps.swift).

private let augmentFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/augment")

/// One golden case from cases.json.
private struct AugmentCase {
    var index: Int
    var fields: [String: Any]
    var input: String { fields["input"] as! String }
    var kind: String { fields["kind"] as! String }
    var offset: Int { fields["offset"] as! Int }
    var length: Int { fields["length"] as! Int }
    /// Floats are stored as Python repr strings (exact; see make_fixtures.py).
    func double(_ key: String) -> Double? { (fields[key] as? String).map { Double($0)! } }
    /// The float32 factors torchvision drew, exactly (a repr of a float32 value reads back to it).
    func float(_ key: String) -> Float? { double(key).map { Float($0) } }
    var label: String {
        let parameters = fields.filter { !["input", "kind", "offset", "length"].contains($0.key) }
            .sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "case \(index): \(kind) on \(input) \(parameters)"
    }
}

private final class AugmentFixtures {
    let cases: [AugmentCase]
    let inputs: [String: RGBImage]
    let expected: [UInt8]
    let tables: [String: [Double]]
    let versions: [String: Any]

    init() {
        let manifest = try! JSONSerialization.jsonObject(
            with: Data(contentsOf: augmentFixtures.appendingPathComponent("cases.json"))) as! [String: Any]
        cases = (manifest["cases"] as! [[String: Any]]).enumerated().map { AugmentCase(index: $0.offset, fields: $0.element) }
        versions = manifest["versions"] as! [String: Any]
        var inputs: [String: RGBImage] = [:]
        for (name, size) in manifest["inputs"] as! [String: [Int]] {
            let bytes = try! [UInt8](Data(contentsOf: augmentFixtures.appendingPathComponent("\(name).rgb")))
            precondition(bytes.count == size[0] * size[1] * 3, "\(name).rgb has the wrong size")
            inputs[name] = RGBImage(width: size[0], height: size[1], pixels: bytes)
        }
        self.inputs = inputs
        expected = try! [UInt8](Data(contentsOf: augmentFixtures.appendingPathComponent("expected.rgb")))
        let raw = try! JSONSerialization.jsonObject(
            with: Data(contentsOf: augmentFixtures.appendingPathComponent("tables.json"))) as! [String: [Any]]
        // Posterize's table holds ints; the others repr strings.
        tables = raw.mapValues { $0.map { ($0 as? String).map { Double($0)! } ?? ($0 as! NSNumber).doubleValue } }
    }
}

final class AugmentationParityTests: XCTestCase {
    // XCTest makes one instance per test method, so each test reads the (small) files once.
    private lazy var fixtures = AugmentFixtures()

    /// Runs every case that `select` picks through `apply` and compares with torchvision's bytes.
    /// Returns the largest difference seen (printed per case: the tolerance each op reaches).
    @discardableResult
    private func check(_ select: (AugmentCase) -> Bool, tolerance: Int = 0, file: StaticString = #filePath,
                       line: UInt = #line, _ apply: (AugmentImage, AugmentCase) -> Void) -> Int {
        let selected = fixtures.cases.filter(select)
        XCTAssertFalse(selected.isEmpty, "no fixture case selected", file: file, line: line)
        var worstOverall = 0
        for c in selected {
            let canvas = AugmentImage(fixtures.inputs[c.input]!)
            apply(canvas, c)
            let actual = canvas.image
            let expected = Array(fixtures.expected[c.offset..<(c.offset + c.length)])
            XCTAssertEqual(actual.pixels.count, expected.count, c.label, file: file, line: line)
            guard actual.pixels.count == expected.count else { continue }
            var differing = 0, worst = 0, first = -1
            for i in 0..<expected.count where actual.pixels[i] != expected[i] {
                differing += 1
                worst = max(worst, abs(Int(actual.pixels[i]) - Int(expected[i])))
                if first < 0 { first = i }
            }
            worstOverall = max(worstOverall, worst)
            print("\(c.label): max |diff| \(worst), \(differing) of \(expected.count) bytes differ")
            if worst > tolerance {
                let pixel = first / 3
                XCTFail("\(c.label): \(differing) of \(expected.count) bytes differ, max |diff| \(worst) > \(tolerance); "
                        + "first at x \(pixel % actual.width), y \(pixel / actual.width), channel \(first % 3): "
                        + "\(actual.pixels[first]) vs torchvision \(expected[first])", file: file, line: line)
            }
        }
        return worstOverall
    }

    private func trivial(_ op: TrivialAugmentWide.Op) -> (AugmentCase) -> Bool {
        { $0.kind == "trivial_augment" && $0.fields["op"] as? String == op.rawValue }
    }

    /// The fixtures were made with the reference versions and a vector build of torch
    /// (Note [Magnitude tables]).
    func testFixturesComeFromTheReferenceVersions() {
        XCTAssertEqual(fixtures.versions["torchvision"] as? String, "0.29.2+cu132")
        XCTAssertEqual(fixtures.versions["pillow"] as? String, "13.0.0")
        XCTAssertNotEqual(fixtures.versions["cpu_capability"] as? String, "DEFAULT")
        XCTAssertGreaterThan(fixtures.cases.count, 100)
    }

    // MARK: ColorJitter

    func testBrightnessMatchesTorchvision() {
        check({ $0.kind == "brightness" }) { $0.adjustBrightness($1.float("factor")!) }
    }

    func testContrastMatchesTorchvision() {
        check({ $0.kind == "contrast" }) { $0.adjustContrast($1.float("factor")!) }
    }

    func testSaturationMatchesTorchvision() {
        check({ $0.kind == "saturation" }) { $0.adjustSaturation($1.float("factor")!) }
    }

    /// Hue on both sides, the ±0.5 limits, one level (0.004 · 255 → 1) and a factor that
    /// truncates to no shift at all (the lossy HSV round trip alone).
    func testHueMatchesTorchvision() {
        check({ $0.kind == "hue" }) { $0.adjustHue($1.float("factor")!) }
    }

    /// A whole ColorJitter with its order and factors fixed, one with components switched off.
    func testColorJitterInAGivenOrderMatchesTorchvision() {
        check({ $0.kind == "color_jitter" }) { canvas, c in
            let order = (c.fields["order"] as! [Int]).map(UInt8.init)
            canvas.apply(ColorJitterChoice(order: SIMD4(order), brightness: c.float("brightness"),
                                           contrast: c.float("contrast"), saturation: c.float("saturation"),
                                           hue: c.float("hue")))
        }
    }

    // MARK: TrivialAugmentWide

    /// Our tables give the magnitudes torchvision's `_augmentation_space(31)` holds, bit for bit.
    func testMagnitudeTablesMatchTorchvision() {
        for op in TrivialAugmentWide.Op.allCases where op.hasMagnitudes {
            let table = fixtures.tables[op.rawValue]!
            XCTAssertEqual(table.count, TrivialAugmentWide.binCount, op.rawValue)
            for bin in 0..<table.count {
                XCTAssertEqual(TrivialAugmentWide.magnitude(op, bin: bin), table[bin], "\(op.rawValue) bin \(bin)")
                if op.isSigned {
                    XCTAssertEqual(TrivialAugmentWide.magnitude(op, bin: bin, negative: true), -table[bin])
                }
            }
        }
        XCTAssertEqual(Set(fixtures.tables.keys), Set(TrivialAugmentWide.Op.allCases.filter(\.hasMagnitudes).map(\.rawValue)))
        // The one bin where the vector build's rounding changes a whole pixel.
        XCTAssertEqual(Int(TrivialAugmentWide.magnitude(.translateX, bin: 15)), 15)
    }

    /// Each case is applied from (op, bin, sign) through our tables, as the loader does.
    private func checkTrivial(_ op: TrivialAugmentWide.Op, file: StaticString = #filePath, line: UInt = #line) {
        check(trivial(op), file: file, line: line) { canvas, c in
            let choice = TrivialAugmentChoice(op: op, bin: c.fields["bin"] as? Int ?? 0,
                                              negative: c.fields["negative"] as! Bool)
            XCTAssertEqual(choice.magnitude, c.double("magnitude"), c.label, file: file, line: line)
            canvas.apply(choice)
        }
    }

    func testIdentity() { checkTrivial(.identity) }
    /// Shear about the top-left corner by atan(magnitude), both signs, square and 40×30.
    func testShearX() { checkTrivial(.shearX) }
    func testShearY() { checkTrivial(.shearY) }
    /// Translation by int(magnitude) pixels; bin 15 is 15 pixels (Note [Magnitude tables]).
    func testTranslateX() { checkTrivial(.translateX) }
    func testTranslateY() { checkTrivial(.translateY) }
    /// 13.5°, 45°, ±90° (a transpose on the square image, an affine map on the 40×30 one) and ±135°.
    func testRotate() { checkTrivial(.rotate) }
    func testBrightness() { checkTrivial(.brightness) }
    func testColor() { checkTrivial(.color) }
    func testContrast() { checkTrivial(.contrast) }
    /// Including the 40×30 image and a 2×2 one (smaller than the kernel: no smoothing at all).
    func testSharpness() { checkTrivial(.sharpness) }
    func testPosterize() { checkTrivial(.posterize) }
    /// Threshold 255 (bin 0) still inverts level 255; threshold 0 inverts everything.
    func testSolarize() { checkTrivial(.solarize) }
    /// Including a one-colour image (kept as it is).
    func testAutoContrast() { checkTrivial(.autoContrast) }
    /// Including a histogram whose table reaches 256 and more (clipped to 255 as Pillow does).
    func testEqualize() { checkTrivial(.equalize) }

    func testEveryOperationHasGoldenCases() {
        for op in TrivialAugmentWide.Op.allCases {
            XCTAssertTrue(fixtures.cases.contains(where: trivial(op)), op.rawValue)
            if op.isSigned {
                XCTAssertTrue(fixtures.cases.contains { trivial(op)($0) && $0.fields["negative"] as! Bool }, op.rawValue)
            }
        }
    }
}

final class AugmentChoiceTests: XCTestCase {
    private let both = TrainTransform(kind: .padCrop, colorJitter: ColorJitter(brightness: 0.4, contrast: 0.3, saturation: 0.2, hue: 0.1),
                                      autoAugment: .trivialAugmentWide)

    /// The draws depend on (seed, epoch, sample index) and nothing else.
    func testDrawsDependOnlyOnSeedEpochAndSample() {
        let a = trainAugmentChoice(both, seed: 7, epoch: 3, sampleIndex: 11)
        XCTAssertNotNil(a?.trivialAugment)
        XCTAssertNotNil(a?.colorJitter)
        XCTAssertEqual(a, trainAugmentChoice(both, seed: 7, epoch: 3, sampleIndex: 11))
        let others = [trainAugmentChoice(both, seed: 8, epoch: 3, sampleIndex: 11),
                      trainAugmentChoice(both, seed: 7, epoch: 4, sampleIndex: 11),
                      trainAugmentChoice(both, seed: 7, epoch: 3, sampleIndex: 12)]
        for other in others { XCTAssertNotEqual(a, other) }
        // Off: no draw at all; one policy alone draws only its own part.
        XCTAssertNil(trainAugmentChoice(TrainTransform(), seed: 7, epoch: 3, sampleIndex: 11))
        XCTAssertNil(trainAugmentChoice(TrainTransform(colorJitter: ColorJitter(0)), seed: 7, epoch: 3, sampleIndex: 11))
        let jitterOnly = trainAugmentChoice(TrainTransform(colorJitter: ColorJitter(0.4)), seed: 7, epoch: 3, sampleIndex: 11)
        XCTAssertNil(jitterOnly?.trivialAugment)
        XCTAssertNil(jitterOnly?.colorJitter?.hue)
        XCTAssertNotNil(jitterOnly?.colorJitter?.brightness)
        let trivialOnly = trainAugmentChoice(TrainTransform(autoAugment: .trivialAugmentWide), seed: 7, epoch: 3, sampleIndex: 11)
        XCTAssertNil(trivialOnly?.colorJitter)
        XCTAssertNotNil(trivialOnly?.trivialAugment)
    }

    /// Over many samples: every op about 1/14 of the time, every bin of the ops with magnitudes,
    /// both signs of the signed ones only; every order of the four jitter components; factors
    /// inside torchvision's ranges and reaching close to both ends.
    func testDrawsCoverTorchvisionsRanges() {
        let samples = 28_000
        var opCounts: [TrivialAugmentWide.Op: Int] = [:]
        var bins: [TrivialAugmentWide.Op: Set<Int>] = [:]
        var signs: [TrivialAugmentWide.Op: Set<Bool>] = [:]
        var orders = Set<[UInt8]>()
        var ranges: [String: (Float, Float)] = [:]
        func note(_ name: String, _ value: Float?) {
            guard let value else { return XCTFail("\(name) missing") }
            let (low, high) = ranges[name] ?? (.infinity, -.infinity)
            ranges[name] = (min(low, value), max(high, value))
        }
        for sample in 0..<samples {
            let choice = trainAugmentChoice(both, seed: 1, epoch: 0, sampleIndex: sample)!
            let trivial = choice.trivialAugment!
            opCounts[trivial.op, default: 0] += 1
            bins[trivial.op, default: []].insert(trivial.bin)
            signs[trivial.op, default: []].insert(trivial.negative)
            let jitter = choice.colorJitter!
            orders.insert([jitter.order[0], jitter.order[1], jitter.order[2], jitter.order[3]])
            note("brightness", jitter.brightness)
            note("contrast", jitter.contrast)
            note("saturation", jitter.saturation)
            note("hue", jitter.hue)
        }
        let expected = Double(samples) / 14
        for op in TrivialAugmentWide.Op.allCases {
            let count = Double(opCounts[op] ?? 0)
            // 5 standard deviations of a binomial count (≈ 215 here).
            XCTAssertEqual(count, expected, accuracy: 5 * (expected * 13 / 14).squareRoot(), op.rawValue)
            XCTAssertEqual(bins[op], op.hasMagnitudes ? Set(0..<31) : [0], op.rawValue)
            XCTAssertEqual(signs[op], op.isSigned ? [false, true] : [false], op.rawValue)
        }
        XCTAssertEqual(orders.count, 24)
        XCTAssertTrue(orders.allSatisfy { Set($0) == [0, 1, 2, 3] })
        for (name, low, high) in [("brightness", Float(0.6), Float(1.4)), ("contrast", 0.7, 1.3),
                                  ("saturation", 0.8, 1.2), ("hue", -0.1, 0.1)] {
            let (seenLow, seenHigh) = ranges[name]!
            XCTAssertGreaterThanOrEqual(seenLow, low, name)
            XCTAssertLessThanOrEqual(seenHigh, high, name)
            // 28,000 uniform draws come within 1% of both ends of the range.
            XCTAssertLessThan(seenLow - low, 0.01 * (high - low), name)
            XCTAssertLessThan(high - seenHigh, 0.01 * (high - low), name)
        }
        // A jitter above 1 keeps the lower end at 0 (torchvision's max(0, 1 − x)).
        let strong = TrainTransform(colorJitter: ColorJitter(1.5))
        let lows = (0..<2000).compactMap { trainAugmentChoice(strong, seed: 2, epoch: 0, sampleIndex: $0)?.colorJitter?.brightness }
        XCTAssertGreaterThanOrEqual(lows.min()!, 0)
        XCTAssertLessThan(lows.min()!, 0.01)
        XCTAssertGreaterThan(lows.max()!, 2.49)
    }

    /// Options that torchvision refuses are refused here too, with the reason.
    func testColorJitterValidation() {
        XCTAssertNil(ColorJitter(brightness: 0.4, contrast: 0, saturation: 2, hue: 0.5).problem)
        XCTAssertNotNil(ColorJitter(brightness: -0.1).problem)
        XCTAssertNotNil(ColorJitter(hue: 0.6).problem)
        XCTAssertNotNil(ColorJitter(brightness: .nan).problem)
    }
}
