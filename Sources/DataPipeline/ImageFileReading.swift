import Foundation

/// Reads a whole image file into `buffer`, reusing its storage: one open, one fstat and
/// (normally) one read per file, and no allocation once the buffer has grown to the largest
/// file — the loader reads every training image every epoch. A file that cannot be read
/// throws the reason the system gives, e.g. "cannot read the file (Permission denied)".
public func readImageFile(_ path: String, into buffer: inout [UInt8]) throws {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ImageDecodeError("cannot read the file (\(String(cString: strerror(errno))))") }
    defer { close(fd) }
    var status = stat()
    guard fstat(fd, &status) == 0 else { throw ImageDecodeError("cannot read the file (\(String(cString: strerror(errno))))") }
    guard status.st_mode & S_IFMT == S_IFREG else { throw ImageDecodeError("cannot read the file (not a regular file)") }
    let size = Int(status.st_size)
    buffer.removeAll(keepingCapacity: true)
    buffer.append(contentsOf: repeatElement(0, count: size))
    var done = 0
    let failure: Int32? = buffer.withUnsafeMutableBytes { raw in
        while done < size {
            let n = read(fd, raw.baseAddress! + done, size - done)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { break }  // the file shrank since fstat
            done += n
        }
        return nil
    }
    if let failure { throw ImageDecodeError("cannot read the file (\(String(cString: strerror(failure))))") }
    if done < size { buffer.removeLast(size - done) }
}
