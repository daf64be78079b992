import DataParallel
import DataPipeline
import Foundation

/// The train and validation sets of a dataset directory, with its class names (label order).
struct OpenedData {
    var train: ImageDataset
    var val: ImageDataset
    var classNames: [String]
    /// Readable names where the layout has them (Tiny-ImageNet's words.txt), else the names.
    var classDescriptions: [String]
}

/// Opens `directory` (Tiny-ImageNet-200 layout), or the built-in dataset when nil.
func openData(directory: String?, communicator comm: any Communicator) throws -> OpenedData {
    let root: URL
    if let directory {
        root = URL(fileURLWithPath: directory)
    } else {
        root = try BuiltinDataset.ensure(cacheDirectory: BuiltinDataset.defaultCacheDirectory(),
                                         log: { message in if comm.rank == 0 { print(message) } })
    }
    let dataset = try TinyImageNet(root: root)
    return OpenedData(train: dataset.train, val: dataset.val, classNames: dataset.classNames,
                      classDescriptions: dataset.classDescriptions)
}
