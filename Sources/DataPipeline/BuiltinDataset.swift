import Foundation
import Kernels

/// A small, learnable dataset generated on first use, so a newcomer's first run goes through
/// exactly the path real data takes: real 64×64 JPEG files in Tiny-ImageNet-200 layout.
/// Ten classes of drawn shapes (random position, size and colours, noisy backgrounds).
public enum BuiltinDataset {
    /// Bump when the generated content changes; the folder name carries it.
    public static let version = 1
    public static let classes: [(wnid: String, name: String)] = [
        ("n90000001", "circle"), ("n90000002", "square"), ("n90000003", "triangle"), ("n90000004", "cross"),
        ("n90000005", "ring"), ("n90000006", "horizontal stripes"), ("n90000007", "vertical stripes"),
        ("n90000008", "diagonal stripes"), ("n90000009", "checkerboard"), ("n90000010", "dots"),
    ]
    public static let size = 64

    /// `$SWIFT_DP_TRAIN_CACHE`, else `$XDG_CACHE_HOME/swift-dp-train`, else `~/.cache/swift-dp-train`.
    public static func defaultCacheDirectory() -> URL {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["SWIFT_DP_TRAIN_CACHE"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return URL(fileURLWithPath: xdg).appendingPathComponent("swift-dp-train") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/swift-dp-train")
    }

    /// Returns the dataset root, generating it first if needed. Safe when several processes on
    /// a host call it at once (mpirun ranks): an exclusive flock lets one generate, into a
    /// temporary folder renamed into place, while the others wait and then reuse it.
    public static func ensure(cacheDirectory: URL, trainPerClass: Int = 300, valPerClass: Int = 50,
                              log: (String) -> Void) throws -> URL {
        let fm = FileManager.default
        try fm.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
        let name = "builtin-v\(version)-\(trainPerClass)x\(valPerClass)"
        let root = cacheDirectory.appendingPathComponent(name)
        let marker = root.appendingPathComponent(".complete")
        if fm.fileExists(atPath: marker.path) { return root }

        let lockPath = cacheDirectory.appendingPathComponent(name + ".lock").path
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw DatasetError("\(lockPath): cannot create lock file") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw DatasetError("\(lockPath): cannot lock") }
        defer { flock(fd, LOCK_UN) }
        if fm.fileExists(atPath: marker.path) { return root }

        log("generating the built-in dataset (\(classes.count) classes, \(trainPerClass * classes.count) training and \(valPerClass * classes.count) validation 64×64 JPEGs) in \(root.path)")
        let started = Date()
        let temporary = cacheDirectory.appendingPathComponent("\(name).tmp-\(getpid())")
        try? fm.removeItem(at: temporary)
        try generate(at: temporary, trainPerClass: trainPerClass, valPerClass: valPerClass)
        try? fm.removeItem(at: root)
        try fm.moveItem(at: temporary, to: root)
        try Data("swift-dp-train built-in dataset v\(version)\n".utf8).write(to: marker)
        log(String(format: "generated in %.1f s", Date().timeIntervalSince(started)))
        return root
    }

    /// Writes the Tiny-ImageNet-200 layout at `root` (deterministic: same bytes every time).
    public static func generate(at root: URL, trainPerClass: Int, valPerClass: Int, seed: UInt64 = 2024) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: root.appendingPathComponent("val/images"), withIntermediateDirectories: true)
        // wnids.txt is deliberately not sorted, like the real one.
        let listed = classes.enumerated().sorted { ($0.offset * 7) % classes.count < ($1.offset * 7) % classes.count }
        try (listed.map(\.element.wnid).joined(separator: "\n") + "\n")
            .write(to: root.appendingPathComponent("wnids.txt"), atomically: true, encoding: .utf8)
        try (classes.map { "\($0.wnid)\t\($0.name)" }.joined(separator: "\n") + "\n")
            .write(to: root.appendingPathComponent("words.txt"), atomically: true, encoding: .utf8)
        let encoder = JPEGEncoder()
        var annotations = ""
        var valIndex = 0
        for (label, cls) in classes.enumerated() {
            let dir = root.appendingPathComponent("train/\(cls.wnid)/images")
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            for k in 0..<(trainPerClass + valPerClass) {
                var rng = SplitMix64(seed: seed, UInt64(label), UInt64(k))
                let pixels = draw(shape: label, rng: &rng)
                let gray = rng.nextInt(below: 20) == 0  // a few grayscale JPEGs, as in Tiny-ImageNet
                let bytes: [UInt8]
                if gray {
                    var luma = [UInt8](repeating: 0, count: size * size)
                    for i in 0..<(size * size) {
                        let r: Int = 299 * Int(pixels[3 * i]), g: Int = 587 * Int(pixels[3 * i + 1])
                        let b: Int = 114 * Int(pixels[3 * i + 2])
                        luma[i] = UInt8((r + g + b) / 1000)
                    }
                    bytes = try encoder.encode(luma, width: size, height: size, kind: .gray)
                } else {
                    bytes = try encoder.encode(pixels, width: size, height: size)
                }
                if k < trainPerClass {
                    try Data(bytes).write(to: dir.appendingPathComponent("\(cls.wnid)_\(k).JPEG"))
                } else {
                    let file = "val_\(valIndex).JPEG"
                    valIndex += 1
                    try Data(bytes).write(to: root.appendingPathComponent("val/images/\(file)"))
                    annotations += "\(file)\t\(cls.wnid)\t0\t0\t63\t63\n"
                }
            }
        }
        try annotations.write(to: root.appendingPathComponent("val/val_annotations.txt"), atomically: true, encoding: .utf8)
    }

    /// One image of class `shape`: a noisy two-tone background, a foreground colour far from it.
    static func draw(shape: Int, rng: inout SplitMix64) -> [UInt8] {
        func color() -> (Double, Double, Double) {
            (Double(rng.nextInt(below: 256)), Double(rng.nextInt(below: 256)), Double(rng.nextInt(below: 256)))
        }
        let background = color()
        var foreground = color()
        while abs(foreground.0 - background.0) + abs(foreground.1 - background.1) + abs(foreground.2 - background.2) < 240 {
            foreground = color()
        }
        let s = Double(size)
        let cx = s * (0.35 + 0.3 * Double(rng.nextUniform())), cy = s * (0.35 + 0.3 * Double(rng.nextUniform()))
        let radius = s * (0.18 + 0.12 * Double(rng.nextUniform()))
        let period = 6 + Double(rng.nextInt(below: 7))
        let phase = Double(rng.nextUniform()) * period
        let direction: Double = rng.nextUniform() < 0.5 ? 1 : -1
        let noise = 12 + Double(rng.nextInt(below: 24))
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            for x in 0..<size {
                let px = Double(x) + 0.5, py = Double(y) + 0.5
                let dx = px - cx, dy = py - cy
                let r = (dx * dx + dy * dy).squareRoot()
                let inside: Bool
                switch shape {
                case 0: inside = r < radius
                case 1: inside = abs(dx) < radius * 0.85 && abs(dy) < radius * 0.85
                case 2: inside = dy < radius * 0.8 && dy > -radius && abs(dx) < (dy + radius) * 0.6
                case 3: inside = (abs(dx) < radius * 0.3 && abs(dy) < radius) || (abs(dy) < radius * 0.3 && abs(dx) < radius)
                case 4: inside = r < radius && r > radius * 0.55
                case 5: inside = (py + phase).truncatingRemainder(dividingBy: period) < period / 2
                case 6: inside = (px + phase).truncatingRemainder(dividingBy: period) < period / 2
                case 7: inside = (px + direction * py + 2 * s + phase).truncatingRemainder(dividingBy: period * 1.4) < period * 0.7
                case 8: inside = (Int((px + phase) / period) + Int((py + phase) / period)) % 2 == 0
                default:
                    let gx = (px + phase).truncatingRemainder(dividingBy: period * 1.5) - period * 0.75
                    let gy = (py + phase).truncatingRemainder(dividingBy: period * 1.5) - period * 0.75
                    inside = gx * gx + gy * gy < period * period * 0.12
                }
                let base = inside ? foreground : background
                let n = (Double(rng.nextUniform()) - 0.5) * noise
                let i = (y * size + x) * 3
                pixels[i] = UInt8(clamping: Int(base.0 + n))
                pixels[i + 1] = UInt8(clamping: Int(base.1 + n))
                pixels[i + 2] = UInt8(clamping: Int(base.2 + n))
            }
        }
        return pixels
    }
}
