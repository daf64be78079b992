import DataPipeline
import Foundation
import Kernels
import TestSupport
import XCTest

final class ImageFolderTests: XCTestCase {
    var tree: DatasetTree!
    override func setUpWithError() throws { tree = try DatasetTree("imagefolder") }
    override func tearDown() { tree.remove() }

    /// "e\u{301}x" (bytes 65 CC 81 …) sorts before "f" in Python; Swift's `<` compares it as
    /// "éx" and puts it after "f". Precomposed "é" (C3 A9) sorts after "z".
    func testClassOrderIsPythonsByteOrder() throws {
        for name in ["f", "e\u{301}x", "z", "\u{E9}", "B", "a"] { try tree.jpeg("\(name)/1.jpg") }
        let classes = try ImageFolder.classNames(in: tree.root)
        XCTAssertEqual(utf8(classes), utf8(["B", "a", "e\u{301}x", "f", "z", "\u{E9}"]))
        XCTAssertNotEqual(utf8(classes), utf8(classes.sorted()), "the names must tell the two orders apart")
        let data = try ImageFolder.load(tree.root) { XCTFail("unexpected warning \($0)") }
        XCTAssertEqual(data.samples.map(\.label), Array(0..<6))
        XCTAssertEqual(utf8(tree.relative(data)), utf8(classes.map { "\($0)/1.jpg" }))
    }

    /// The order of `sorted(os.walk(d, followlinks=True))` then `sorted(fnames)`, worked out
    /// with Python 3.11 on the same tree: folders by whole path ("sub-2" before "sub/deeper").
    func testSampleOrderIsSortedWalkOrder() throws {
        for file in ["a/x.jpg", "a/sub/y.jpg", "a/sub-2/z.jpg", "a/sub/deeper/w.jpg", "a/B.JPG", "a/sub.jpg",
                     "b/m.jpeg", "outside/l.jpg"] {
            try tree.jpeg(file)
        }
        try tree.png("a/c.Png")
        try tree.text("a/notes.txt", "not an image")
        try tree.jpeg("a/.hidden.jpg")  // hidden: skipped (torchvision would try to load it)
        try tree.folder("a/photo.jpg")  // a folder with an image name is a folder
        try tree.symlink("b/link", to: "../outside")
        try tree.symlink("b/loop", to: ".")
        let warnings = WarningLog()
        let data = try ImageFolder.load(tree.root, warn: warnings.add)
        XCTAssertEqual(data.classNames, ["a", "b", "outside"])
        XCTAssertEqual(tree.relative(data), [
            "a/B.JPG", "a/c.Png", "a/sub.jpg", "a/x.jpg", "a/sub/y.jpg", "a/sub-2/z.jpg", "a/sub/deeper/w.jpg",
            "b/m.jpeg", "b/link/l.jpg",
            "outside/l.jpg",
        ])
        XCTAssertEqual(data.samples.map(\.label), [0, 0, 0, 0, 0, 0, 0, 1, 1, 2])
        XCTAssertEqual(warnings.lines.count, 1)
        XCTAssertTrue(warnings.lines.first?.contains("b/loop: symbolic link loop") == true, "\(warnings.lines)")
    }

    func testEmptyClassIsKeptWithAWarningAndMissingClassesAreAnError() throws {
        try tree.jpeg("cat/1.jpg")
        try tree.text("dog/readme.txt", "no images here")
        try tree.jpeg("emu/1.jpg")
        let warnings = WarningLog()
        let data = try ImageFolder.load(tree.root, warn: warnings.add)
        XCTAssertEqual(data.classNames, ["cat", "dog", "emu"])
        XCTAssertEqual(data.samples.map(\.label), [0, 2])
        XCTAssertEqual(warnings.lines, ["\(tree.path("dog")): class 'dog' (index 1) has no images"])

        let flat = try DatasetTree("flat")
        defer { flat.remove() }
        try flat.jpeg("1.jpg")
        XCTAssertThrowsDatasetError(try ImageFolder.load(flat.root) { _ in }, containing: [flat.root.path, "no class folders"])
    }

    /// PNGs (also one named .JPEG) decode through the dataset's paths as Pillow decodes them.
    func testPNGFilesInAFolderDecodeLikePillow() throws {
        try tree.png("train/x/a.png", fixture: "palette8_trns")
        try tree.png("train/x/b.JPEG", fixture: "gray16")
        try tree.jpeg("val/x/c.jpg")
        let opened = try openDataset(DatasetRequest(root: tree.root)) { XCTFail($0) }
        let decoder = ImageDecoder()
        for (sample, fixture) in zip(opened.train.samples, ["palette8_trns", "gray16"]) {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: sample.path)))
            XCTAssertEqual(try decoder.decode(bytes).pixels, try pngFixture(fixture).rgb, sample.path)
        }
    }

    func testTrainAndValFolders() throws {
        for file in ["train/cat/1.jpg", "train/cat/2.jpg", "train/dog/1.jpg", "val/cat/3.jpg", "val/dog/2.jpg", "val/dog/3.jpg"] {
            try tree.jpeg(file)
        }
        let opened = try openDataset(DatasetRequest(root: tree.root)) { XCTFail($0) }
        XCTAssertEqual(opened.format, .imageFolder)
        XCTAssertEqual(opened.classNames, ["cat", "dog"])
        XCTAssertEqual(tree.relative(opened.train), ["train/cat/1.jpg", "train/cat/2.jpg", "train/dog/1.jpg"])
        XCTAssertEqual(opened.val.samples.map(\.label), [0, 1, 1])

        // The same folders given explicitly (val from another place).
        let explicit = try openDataset(DatasetRequest(root: URL(fileURLWithPath: "/nonexistent"),
                                                      trainDir: tree.url("train"), valDir: tree.url("val"))) { XCTFail($0) }
        XCTAssertEqual(explicit.train.samples, opened.train.samples)
        XCTAssertEqual(explicit.val.samples, opened.val.samples)

        // Same names to Swift's ==, different folders to the file system and to torchvision.
        try FileManager.default.moveItem(at: tree.url("train/cat"), to: tree.url("train/caf\u{E9}"))
        try FileManager.default.moveItem(at: tree.url("val/cat"), to: tree.url("val/cafe\u{301}"))
        XCTAssertThrowsDatasetError(try openDataset(DatasetRequest(root: tree.root)) { _ in },
                                    containing: ["missing in val: caf\u{E9}", "not in train: cafe\u{301}"])
        try FileManager.default.moveItem(at: tree.url("val/cafe\u{301}"), to: tree.url("val/caf\u{E9}"))
        try tree.jpeg("val/emu/1.jpg")
        try FileManager.default.removeItem(at: tree.url("val/dog"))
        XCTAssertThrowsDatasetError(try openDataset(DatasetRequest(root: tree.root)) { _ in },
                                    containing: [tree.path("val"), "missing in val: dog", "not in train: emu"])
    }

    func testSplitIsStratifiedDisjointAndDeterministic() throws {
        let sizes = ["big": 40, "mid": 10, "three": 3, "two": 2, "one": 1]
        for (name, n) in sizes { for k in 0..<n { try tree.jpeg("\(name)/\(k).jpg") } }
        func open(seed: UInt64) throws -> OpenedDataset {
            try openDataset(DatasetRequest(root: tree.root, valSplit: 0.2, splitSeed: seed)) { XCTFail($0) }
        }
        let opened = try open(seed: 7)
        let all = try ImageFolder.load(tree.root) { _ in }
        // round(0.2·n), at least 1 and at most n − 1: 40 → 8, 10 → 2, 3 → 1 (0.6), 2 → 1 (0.4 → 1), 1 → 0.
        let valCounts = Dictionary(grouping: opened.val.samples, by: \.label).mapValues(\.count)
        XCTAssertEqual(valCounts, [0: 8, 1: 2, 3: 1, 4: 1], "labels: big, mid, one, three, two")
        XCTAssertEqual(opened.classNames, ["big", "mid", "one", "three", "two"])
        let trainPaths = Set(opened.train.samples.map(\.path)), valPaths = Set(opened.val.samples.map(\.path))
        XCTAssertTrue(trainPaths.isDisjoint(with: valPaths))
        XCTAssertEqual(trainPaths.union(valPaths), Set(all.samples.map(\.path)))
        // Both parts keep the walk order.
        let position = Dictionary(uniqueKeysWithValues: all.samples.enumerated().map { ($1.path, $0) })
        for part in [opened.train, opened.val] {
            let positions = part.samples.map { position[$0.path]! }
            XCTAssertEqual(positions, positions.sorted())
        }
        XCTAssertEqual(try open(seed: 7).val.samples, opened.val.samples)
        XCTAssertNotEqual(try open(seed: 8).val.samples, opened.val.samples)

        // Only class folders and no split: the error says what to add.
        XCTAssertThrowsDatasetError(try openDataset(DatasetRequest(root: tree.root)) { _ in },
                                    containing: [tree.root.path, "--val-split"])
        XCTAssertThrowsDatasetError(try openDataset(DatasetRequest(root: tree.root, valSplit: 1.5)) { _ in },
                                    containing: ["--val-split must be between 0 and 1"])
    }

    /// The split rule pinned on plain data, so a change of the shuffle cannot go unnoticed.
    func testSplitSelectionIsPinned() {
        let dataset = ImageDataset(samples: (0..<10).map { .init(path: "\($0)", label: 0) }, classNames: ["c"])
        let split = stratifiedSplit(dataset, valFraction: 0.3, seed: 42)
        var rng = SplitMix64(seed: 42, 0)
        var order = Array(0..<10)
        for i in stride(from: 9, to: 0, by: -1) { order.swapAt(i, rng.nextInt(below: i + 1)) }
        XCTAssertEqual(split.val.samples.map(\.path), order.prefix(3).sorted().map { "\($0)" })
        XCTAssertEqual(split.train.count, 7)
    }
}

final class ImageNetKaggleTests: XCTestCase {
    var tree: DatasetTree!
    let wnids = ["n01440764", "n01443537", "n01484850"]

    override func setUpWithError() throws {
        tree = try DatasetTree("kaggle")
        try tree.text("LOC_synset_mapping.txt", "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\nn01484850 great white shark\n")
        for (label, wnid) in wnids.enumerated() {
            for k in 0..<2 { try tree.jpeg("ILSVRC/Data/CLS-LOC/train/\(wnid)/\(wnid)_\(k).JPEG", shade: label) }
        }
        for k in 1...4 { try tree.jpeg(String(format: "ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_%08d.JPEG", k)) }
        // Out of order, and rows with several boxes (the first token is the class).
        try tree.text("LOC_val_solution.csv", """
            ImageId,PredictionString
            ILSVRC2012_val_00000003,n01484850 10 20 30 40 n01440764 1 2 3 4 
            ILSVRC2012_val_00000001,n01443537 156 48 272 332 n01443537 42 9 322 285
            ILSVRC2012_val_00000002,n01440764 1 1 5 5
            ILSVRC2012_val_00000004,n01484850 0 0 1 1\r

            """)
    }
    override func tearDown() { tree.remove() }

    func expectStandardResult(_ opened: OpenedDataset, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(opened.format, .imageNet, file: file, line: line)
        XCTAssertEqual(opened.classNames, wnids, file: file, line: line)
        XCTAssertEqual(opened.train.samples.map(\.label), [0, 0, 1, 1, 2, 2], file: file, line: line)
        XCTAssertEqual(tree.relative(opened.train).first, "ILSVRC/Data/CLS-LOC/train/n01440764/n01440764_0.JPEG", file: file, line: line)
        XCTAssertEqual(tree.relative(opened.val), (1...4).map { String(format: "ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_%08d.JPEG", $0) },
                       file: file, line: line)
        XCTAssertEqual(opened.val.samples.map(\.label), [1, 0, 2, 2], file: file, line: line)
    }

    func testKaggleLayoutWithCSVLabels() throws {
        let opened = try openDataset(DatasetRequest(root: tree.root)) { XCTFail($0) }
        expectStandardResult(opened)
        XCTAssertEqual(opened.classDescriptions, ["tench, Tinca tinca", "goldfish, Carassius auratus", "great white shark"])
    }

    func testJSONClassIndexAndValLabels() throws {
        try FileManager.default.removeItem(at: tree.url("LOC_synset_mapping.txt"))
        try FileManager.default.removeItem(at: tree.url("LOC_val_solution.csv"))
        try tree.text("imagenet_class_index.json", #"{"2": ["n01484850", "great_white_shark"], "0": ["n01440764", "tench"], "1": ["n01443537", "goldfish"]}"#)
        try tree.text("ILSVRC2012_val_labels.json", """
            {"ILSVRC2012_val_00000004.JPEG": "n01484850", "ILSVRC2012_val_00000001.JPEG": "n01443537",
             "ILSVRC2012_val_00000002.JPEG": "n01440764", "ILSVRC2012_val_00000003.JPEG": "n01484850"}
            """)
        let opened = try openDataset(DatasetRequest(root: tree.root, format: .imageNet)) { XCTFail($0) }
        expectStandardResult(opened)
        XCTAssertEqual(opened.classDescriptions, ["tench", "goldfish", "great_white_shark"])

        try tree.text("imagenet_class_index.json", #"{"0": ["n01443537", "goldfish"], "1": ["n01440764", "tench"], "2": ["n01484850", "shark"]}"#)
        XCTAssertThrowsDatasetError(try openDataset(DatasetRequest(root: tree.root)) { _ in },
                                    containing: ["imagenet_class_index.json key \"1\"", "n01440764 comes after n01443537"])
    }

    func testInconsistentFilesAreNamedWithTheirLine() throws {
        let mapping = tree.path("LOC_synset_mapping.txt"), csv = tree.path("LOC_val_solution.csv")
        try tree.text("LOC_synset_mapping.txt", "n01443537 goldfish\nn01440764 tench\nn01484850 shark\n")
        XCTAssertThrowsDatasetError(try ImageNetKaggle(root: tree.root) { _ in },
                                    containing: ["\(mapping) line 2", "sorted wnid order"])
        try tree.text("LOC_synset_mapping.txt", "n01440764 tench\nn01443537 goldfish\nn01484850 shark\n")
        try tree.text("LOC_val_solution.csv", "ImageId,PredictionString\nILSVRC2012_val_00000001,n01443537 1 2 3 4\nILSVRC2012_val_00000002,n99999999 1 2 3 4\n")
        XCTAssertThrowsDatasetError(try ImageNetKaggle(root: tree.root) { _ in }, containing: ["\(csv) line 3: unknown wnid n99999999"])
        try tree.text("LOC_val_solution.csv", "ImageId,PredictionString\nILSVRC2012_val_00000009,n01443537 1 2 3 4\n")
        XCTAssertThrowsDatasetError(try ImageNetKaggle(root: tree.root) { _ in }, containing: ["\(csv) line 2", "ILSVRC2012_val_00000009.JPEG not found"])
        try tree.text("LOC_val_solution.csv", "ImageId,PredictionString\nILSVRC2012_val_00000001,n01443537 1 2 3 4\n")
        let warnings = WarningLog()
        XCTAssertEqual(try ImageNetKaggle(root: tree.root, warn: warnings.add).val.count, 1)
        XCTAssertEqual(warnings.lines, ["\(tree.path("ILSVRC/Data/CLS-LOC/val")): 3 images have no label and are not used"])
        try tree.jpeg("ILSVRC/Data/CLS-LOC/train/n09999999/x.JPEG")
        XCTAssertThrowsDatasetError(try ImageNetKaggle(root: tree.root) { _ in }, containing: ["train/n09999999", "not in the class list"])
    }
}

final class WebVisionTests: XCTestCase {
    var tree: DatasetTree!
    override func setUpWithError() throws {
        tree = try DatasetTree("webvision")
        try tree.text("info/synsets.txt", "n01440764 tench, Tinca tinca\nn01443537 goldfish\nn01484850 great white shark\nn01491361 tiger shark\n")
        try tree.text("info/train_filelist_google.txt", "google/q0001/a.jpg 0\ngoogle/q0003/b.jpg 2\n  google/q0002/c.jpg\t1\n")
        try tree.text("info/train_filelist_flickr.txt", "flickr/q0004/d.jpg 3\nflickr/q0001/e.jpg 0\n")
        try tree.text("info/val_filelist.txt", "val000001.jpg 3\nval000002.jpg 0\nval000003.jpg 1\n")
    }
    override func tearDown() { tree.remove() }

    func testFilelistsGoogleThenFlickr() throws {
        let opened = try openDataset(DatasetRequest(root: tree.root)) { XCTFail($0) }
        XCTAssertEqual(opened.format, .webVision)
        XCTAssertEqual(opened.classNames, ["n01440764", "n01443537", "n01484850", "n01491361"])
        XCTAssertEqual(opened.classDescriptions[2], "great white shark")
        XCTAssertEqual(tree.relative(opened.train), ["google/q0001/a.jpg", "google/q0003/b.jpg", "google/q0002/c.jpg",
                                                     "flickr/q0004/d.jpg", "flickr/q0001/e.jpg"])
        XCTAssertEqual(opened.train.samples.map(\.label), [0, 2, 1, 3, 0])
        XCTAssertEqual(tree.relative(opened.val), ["val_images_256/val000001.jpg", "val_images_256/val000002.jpg", "val_images_256/val000003.jpg"])
        XCTAssertEqual(opened.val.samples.map(\.label), [3, 0, 1])
    }

    func testMiniWebVisionKeepsTheFirstClassesOfGoogleOnly() throws {
        let opened = try openDataset(DatasetRequest(root: tree.root, numClasses: 2, includeFlickr: false)) { XCTFail($0) }
        XCTAssertEqual(opened.classNames, ["n01440764", "n01443537"])
        XCTAssertEqual(tree.relative(opened.train), ["google/q0001/a.jpg", "google/q0002/c.jpg"])
        XCTAssertEqual(tree.relative(opened.val), ["val_images_256/val000002.jpg", "val_images_256/val000003.jpg"])
        XCTAssertThrowsDatasetError(try openDataset(DatasetRequest(root: tree.root, numClasses: 5)) { _ in },
                                    containing: ["numClasses 5", "4 classes"])
    }

    func testPathsLeavingTheRootAreRefused() throws {
        let list = tree.path("info/train_filelist_google.txt")
        for bad in ["../../etc/passwd", "google/../../secret.jpg", "/etc/passwd"] {
            try tree.text("info/train_filelist_google.txt", "google/q0001/a.jpg 0\n\(bad) 1\n")
            XCTAssertThrowsDatasetError(try WebVision(root: tree.root), containing: ["\(list) line 2", bad, "refused"])
        }
        try tree.text("info/val_filelist.txt", "val000001.jpg 3\n..\\ok.jpg 0\nval000003.jpg -1\n")
        try tree.text("info/train_filelist_google.txt", "google/q0001/a.jpg 0\n")
        XCTAssertThrowsDatasetError(try WebVision(root: tree.root), containing: ["\(tree.path("info/val_filelist.txt")) line 3", "label"])
        try tree.text("info/val_filelist.txt", "val000001.jpg 7\n")
        XCTAssertThrowsDatasetError(try WebVision(root: tree.root), containing: ["line 1: label 7", "4 classes"])
    }

    func testClassNamesWithoutSynsets() throws {
        try FileManager.default.removeItem(at: tree.url("info/synsets.txt"))
        let opened = try openDataset(DatasetRequest(root: tree.root, format: .webVision)) { XCTFail($0) }
        XCTAssertEqual(opened.classNames, ["0", "1", "2", "3"])
    }
}

final class DatasetDetectionTests: XCTestCase {
    var tree: DatasetTree!
    override func setUpWithError() throws { tree = try DatasetTree("detect") }
    override func tearDown() { tree.remove() }

    func testEachLayoutIsRecognised() throws {
        try makeTinyImageNetFixture(at: tree.url("tiny"), classes: 2, trainPerClass: 1, valPerClass: 1, size: 8)
        XCTAssertEqual(try detectDatasetFormat(tree.url("tiny")), .tinyImageNet)
        let tiny = try openDataset(DatasetRequest(root: tree.url("tiny"))) { XCTFail($0) }
        XCTAssertEqual(tiny.format, .tinyImageNet)
        XCTAssertEqual(tiny.classNames, try TinyImageNet(root: tree.url("tiny")).classNames)
        XCTAssertEqual(tiny.train.count, 2)

        try tree.text("kaggle/LOC_synset_mapping.txt", "n1 a\n")
        XCTAssertEqual(try detectDatasetFormat(tree.url("kaggle")), .imageNet)
        try tree.text("kagglejson/imagenet_class_index.json", "{}")
        XCTAssertEqual(try detectDatasetFormat(tree.url("kagglejson")), .imageNet)
        try tree.text("web/info/val_filelist.txt", "a.jpg 0\n")
        XCTAssertEqual(try detectDatasetFormat(tree.url("web")), .webVision)
        try tree.jpeg("folders/train/cat/1.jpg")
        try tree.jpeg("folders/val/cat/1.jpg")
        XCTAssertEqual(try detectDatasetFormat(tree.url("folders")), .imageFolder)
        try tree.jpeg("classes/cat/1.jpg")
        XCTAssertEqual(try detectDatasetFormat(tree.url("classes")), .imageFolder)
        XCTAssertEqual(DatasetFormat.allCases.map(\.rawValue), ["auto", "imagefolder", "tiny-imagenet", "imagenet", "webvision"])
    }

    func testUnknownAndAmbiguousDirectoriesGetOneLine() throws {
        try tree.jpeg("loose/1.jpg")
        try tree.folder("loose/.git")
        for root in [tree.url("loose"), tree.url("loose/.git")] {
            XCTAssertThrowsError(try openDataset(DatasetRequest(root: root)) { _ in }) { error in
                let text = "\(error)"
                XCTAssertFalse(text.contains("\n"))
                for part in [root.path, "unrecognised", "tiny-imagenet (wnids.txt", "imagenet (LOC_synset_mapping.txt",
                             "webvision (info/val_filelist.txt", "imagefolder (train/ and val/"] {
                    XCTAssertTrue(text.contains(part), "'\(text)' lacks '\(part)'")
                }
            }
        }
        try tree.text("both/wnids.txt", "n1\n")
        try tree.text("both/info/val_filelist.txt", "a.jpg 0\n")
        XCTAssertThrowsDatasetError(try detectDatasetFormat(tree.url("both")),
                                    containing: ["ambiguous", "wnids.txt (tiny-imagenet)", "info/val_filelist.txt (webvision)"])
        XCTAssertThrowsDatasetError(try openDataset(DatasetRequest(root: tree.url("nope"))) { _ in },
                                    containing: ["nope: dataset directory not found"])
    }

    func testOptionsForAnotherFormatAreRefused() throws {
        try tree.text("kaggle/LOC_synset_mapping.txt", "n1 a\n")
        XCTAssertThrowsDatasetError(try openDataset(DatasetRequest(root: tree.url("kaggle"), valSplit: 0.1)) { _ in },
                                    containing: ["--val-split applies to the imagefolder format only"])
        XCTAssertThrowsDatasetError(try openDataset(DatasetRequest(root: tree.url("kaggle"), numClasses: 50)) { _ in },
                                    containing: ["numClasses applies to the webvision format only"])
        XCTAssertThrowsDatasetError(try openDataset(DatasetRequest(root: tree.url("kaggle"), format: .webVision,
                                                                   trainDir: tree.url("kaggle"))) { _ in },
                                    containing: ["--train-dir/--val-dir apply to the imagefolder format only"])
    }
}
