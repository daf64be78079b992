import DataPipeline
import Foundation
import Kernels

/// Writes a small Tiny-ImageNet-200 tree of real JPEGs: class k is a colour-coded pattern
/// with noise, so a small network's loss falls within a few epochs.
public func makeTinyImageNetFixture(at root: URL, classes: Int, trainPerClass: Int, valPerClass: Int,
                                    size: Int, seed: UInt64 = 5) throws {
    let fm = FileManager.default
    try fm.createDirectory(at: root.appendingPathComponent("val/images"), withIntermediateDirectories: true)
    let wnids = (0..<classes).map { String(format: "n%08d", 1000 + $0) }
    try (wnids.reversed().joined(separator: "\n") + "\n").write(to: root.appendingPathComponent("wnids.txt"),
                                                                 atomically: true, encoding: .utf8)
    let encoder = JPEGEncoder()
    var annotations = ""
    var valIndex = 0
    for (label, wnid) in wnids.enumerated() {
        let dir = root.appendingPathComponent("train/\(wnid)/images")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        for k in 0..<(trainPerClass + valPerClass) {
            var rng = SplitMix64(seed: seed, UInt64(label), UInt64(k))
            var pixels = [UInt8](repeating: 0, count: size * size * 3)
            for y in 0..<size {
                for x in 0..<size {
                    let stripe = ((x + y * (label % 2 == 0 ? 1 : -1) + 4 * size) / (2 + label)) % 2
                    for c in 0..<3 {
                        let base = c == label % 3 ? 200 : 50
                        let value = base + stripe * 40 + rng.nextInt(below: 30) - 15
                        pixels[(y * size + x) * 3 + c] = UInt8(clamping: value)
                    }
                }
            }
            let bytes = try encoder.encode(pixels, width: size, height: size)
            if k < trainPerClass {
                try Data(bytes).write(to: dir.appendingPathComponent("\(wnid)_\(k).JPEG"))
            } else {
                try Data(bytes).write(to: root.appendingPathComponent("val/images/val_\(valIndex).JPEG"))
                annotations += "val_\(valIndex).JPEG\t\(wnid)\t0\t0\t\(size - 1)\t\(size - 1)\n"
                valIndex += 1
            }
        }
    }
    try annotations.write(to: root.appendingPathComponent("val/val_annotations.txt"), atomically: true, encoding: .utf8)
}
