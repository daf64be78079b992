import Foundation

/// A list of labelled image files; the readers for each on-disk layout produce these.
public struct ImageDataset: Sendable {
    public struct Sample: Sendable, Equatable {
        public var path: String
        public var label: Int
        public init(path: String, label: Int) { self.path = path; self.label = label }
    }
    public var samples: [Sample]
    public var classNames: [String]
    public var count: Int { samples.count }
    public init(samples: [Sample], classNames: [String]) {
        self.samples = samples; self.classNames = classNames
    }
}

public struct DatasetError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Python's string order (code points = UTF-8 bytes), which torchvision's sorted() uses;
/// Swift's `String <` compares canonically and can differ.
@inlinable
public func pythonOrder(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

/// torchvision's IMG_EXTENSIONS, matched case-insensitively; hidden files are skipped.
public func isImageFileName(_ name: String) -> Bool {
    guard !name.hasPrefix(".") else { return false }
    let lower = name.lowercased()
    return [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"].contains { lower.hasSuffix($0) }
}
