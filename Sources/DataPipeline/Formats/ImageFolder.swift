import Foundation

/// torchvision's `ImageFolder` (torchvision 0.29 `datasets/folder.py`, ../shared/formats.md):
/// one sub-folder per class, class index = position of the folder name in Python's sorted()
/// order (UTF-8 bytes, `pythonOrder`), images found by a recursive walk that follows links.
public enum ImageFolder {
    /// The class folder names, sorted as torchvision sorts them.
    public static func classNames(in root: URL) throws -> [String] {
        guard isDirectoryFollowingLinks(root.path) else { throw DatasetError("\(root.path): directory not found") }
        let names = try listDirectory(atPath: root.path).directories.sorted(by: pythonOrder)
        guard !names.isEmpty else {
            throw DatasetError("\(root.path): no class folders (ImageFolder expects one sub-folder per class)")
        }
        return names
    }

    /// Every image of every class, in torchvision's sample order. A class without images stays a
    /// class (so indices match a torchvision run with `allow_empty=True`) and gets a warning.
    public static func load(_ root: URL, warn: (String) -> Void) throws -> ImageDataset {
        let classes = try classNames(in: root)
        var samples: [ImageDataset.Sample] = []
        for (label, name) in classes.enumerated() {
            let classDirectory = root.path + "/" + name
            let files = imageFiles(under: classDirectory, warn: warn)
            if files.isEmpty {
                let hidden = name.hasPrefix(".") ? " (a hidden folder: torchvision counts it as a class too)" : ""
                warn("\(classDirectory): class '\(name)' (index \(label)) has no images\(hidden)")
            }
            samples += files.map { ImageDataset.Sample(path: $0, label: label) }
        }
        return ImageDataset(samples: samples, classNames: classes)
    }

    /// The image files under `directory` in the order of
    /// `for root, _, fnames in sorted(os.walk(directory, followlinks=True)): for f in sorted(fnames)`.
    /// Note [Walk order]: sorted() orders the walked folders by their whole path, not depth
    /// first: "a-b" (0x2D) comes before "a/x" (0x2F), and files of a folder come before files of
    /// its sub-folders only because a path sorts before its extensions.
    static func imageFiles(under directory: String, warn: (String) -> Void) -> [String] {
        var folders: [(path: String, files: [String])] = []
        // Python's walk would follow a link cycle until the OS refuses a path; we stop at the
        // first repeat of a real path on the current branch, with a warning.
        func walk(_ path: String, realPathsOnBranch: Set<String>) {
            guard let entries = try? listDirectory(atPath: path) else {
                warn("\(path): cannot be listed; skipped")  // os.walk skips these silently
                return
            }
            folders.append((path, entries.files))
            for name in entries.directories {
                let child = path + "/" + name, real = realPath(child)
                guard !realPathsOnBranch.contains(real) else {
                    warn("\(child): symbolic link loop; not followed")
                    continue
                }
                walk(child, realPathsOnBranch: realPathsOnBranch.union([real]))
            }
        }
        walk(directory, realPathsOnBranch: [realPath(directory)])
        folders.sort { pythonOrder($0.path, $1.path) }
        return folders.flatMap { folder in
            folder.files.filter(isImageFileName).sorted(by: pythonOrder).map { folder.path + "/" + $0 }
        }
    }
}

private func realPath(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
}
