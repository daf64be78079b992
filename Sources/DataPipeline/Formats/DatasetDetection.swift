import Foundation

/// Recognises a layout by the files only it has. More than one match is an error rather than
/// a guess: a wrong guess trains on the wrong labels without a word.
public func detectDatasetFormat(_ root: URL) throws -> DatasetFormat {
    guard isDirectory(root) else { throw DatasetError("\(root.path): dataset directory not found") }
    func has(_ path: String) -> Bool { fileExists(root.appendingPathComponent(path)) }
    var matches: [(DatasetFormat, String)] = []
    if has("wnids.txt") { matches.append((.tinyImageNet, "wnids.txt")) }
    if has(ImageNetKaggle.synsetMappingFile) { matches.append((.imageNet, ImageNetKaggle.synsetMappingFile)) }
    else if has(ImageNetKaggle.classIndexFile) { matches.append((.imageNet, ImageNetKaggle.classIndexFile)) }
    if has(WebVision.valFilelist) { matches.append((.webVision, WebVision.valFilelist)) }
    if matches.count > 1 {
        let found = matches.map { "\($0.1) (\($0.0.rawValue))" }.joined(separator: ", ")
        throw DatasetError("\(root.path): ambiguous dataset layout: found \(found); pass the format explicitly")
    }
    if let match = matches.first { return match.0 }
    // ImageFolder has no marker file: any visible sub-folder may be a class (or train/).
    let folders = (try? listDirectory(atPath: root.path).directories) ?? []
    if folders.contains(where: { !$0.hasPrefix(".") }) { return .imageFolder }
    throw DatasetError("\(root.path): unrecognised dataset layout; expected tiny-imagenet (wnids.txt, train/<wnid>/images/, val/val_annotations.txt), imagenet (LOC_synset_mapping.txt or imagenet_class_index.json, ILSVRC/Data/CLS-LOC/{train,val}/), webvision (info/val_filelist.txt, info/train_filelist_google.txt) or imagefolder (train/ and val/ of class folders, or class folders with a val split)")
}
